//! Workspace folders on the host: created for a sandbox and handed, the
//! whole tree at once, to the uid the sandbox runs as.
//!
//! A workspace outlives its sandbox, and the next sandbox of the same user may
//! run as another uid (`[sandbox] user`, or a runtime with its own `user`).
//! Handing over only the top folder would leave the user's own files and
//! folders inside unwritable; so either the whole tree changes owner, or,
//! when sandpit has no right to give files away, the sandbox is refused
//! before anything is made.

use std::ffi::{CStr, CString, OsStr};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::Context as _;
use rustix::fs::{AtFlags, Dir, FileType, Gid, Mode, OFlags, Uid};

use super::images::shell_quote;

/// Entries looked at between two progress lines in the log.
const PROGRESS_EVERY: u64 = 10_000;

/// Bit of CAP_CHOWN in the capability sets of /proc/self/status.
const CAP_CHOWN_BIT: u64 = 1 << 0;

/// What one hand-over did, in entries (files, folders, links, …).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Handover {
    /// Entries looked at, the top folder excluded.
    pub seen: u64,
    /// Entries given to the new owner, the top folder included.
    pub changed: u64,
    /// Entries that had the new owner already.
    pub already: u64,
    /// Entries of neither the old nor the new owner, left as they were.
    pub kept: u64,
    /// One of the kept entries, to show in the log.
    pub kept_example: Option<(PathBuf, u32, u32)>,
    /// Mount points inside the tree: neither changed nor entered.
    pub mounts: u64,
}

/// Refuses early, before anything is made or built, a workspace that sandpit
/// could not give to `uid:gid`: one owned by another uid while sandpit may
/// not give files away (it is not root). A missing folder is judged by the
/// owner it would get, this process's. Anything unknown passes: [`prepare`]
/// has the last word.
pub(crate) fn check(path: &Path, uid: u32, gid: u32) -> anyhow::Result<()> {
    check_with(path, (uid, gid), may_chown())
}

/// Creates the workspace folder when missing and makes it the sandbox's.
///
/// When the folder's owner is not `uid:gid`, every entry of the tree owned by
/// the folder's owner (the previous sandbox's uid) is given to `uid:gid`:
/// what the last sandbox could write, the next one can. Entries of other
/// owners (say root's, put there from the host) are left as they were and
/// logged; they were never the sandbox's, and a file of someone else's
/// hard-linked into the tree must not change hands. The walk never follows a
/// symbolic link (a link is handed over itself, its target is untouched) and
/// never enters another file system mounted inside the tree; it goes through
/// folder handles, so a link swapped in during the walk cannot redirect it.
/// The top folder changes owner last: a hand-over cut short leaves it with
/// its old owner, and the next sandbox creation walks the tree again.
///
/// Blocking: on a large tree this takes a while; progress goes to the log.
///
/// Errors: sandpit may not give files away (not root) and the owner differs,
/// with what to do about it, and nothing is created or changed; an entry
/// cannot be read or changed, naming it.
pub(crate) fn prepare(path: &Path, uid: u32, gid: u32) -> anyhow::Result<()> {
    prepare_with(path, (uid, gid), may_chown()).map(drop)
}

fn prepare_with(
    path: &Path,
    wanted: (u32, u32),
    may_chown: bool,
) -> anyhow::Result<Option<Handover>> {
    check_with(path, wanted, may_chown)?;
    let created = !path.exists();
    std::fs::create_dir_all(path)
        .with_context(|| format!("cannot create the workspace folder {}", path.display()))?;
    // Followed like the bind mount follows it: the folder sandpit itself
    // names may be a link; nothing below it is followed.
    let metadata = std::fs::metadata(path)
        .with_context(|| format!("cannot read the workspace folder {}", path.display()))?;
    if !metadata.is_dir() {
        anyhow::bail!("the workspace {} is not a folder", path.display());
    }
    let owner = (metadata.uid(), metadata.gid());
    if owner == wanted {
        return Ok(None);
    }
    let (uid, gid) = wanted;
    tracing::info!(
        "handing the workspace {} from {}:{} to the sandbox's {uid}:{gid}",
        path.display(),
        owner.0,
        owner.1
    );
    match hand_over(path, owner.0, wanted) {
        Ok(done) => {
            tracing::info!(
                "handed the workspace {} to {uid}:{gid}: {} entries changed, {} had that owner, {} of other owners kept, {} mount points skipped",
                path.display(),
                done.changed,
                done.already,
                done.kept,
                done.mounts
            );
            if let Some((example, other_uid, other_gid)) = &done.kept_example {
                tracing::warn!(
                    "{} entries in the workspace {} belong to neither {}:{} nor {uid}:{gid} and were left as they are (e.g. {} of {other_uid}:{other_gid}); if the sandbox should write them: chown -R {uid}:{gid} {}",
                    done.kept,
                    path.display(),
                    owner.0,
                    owner.1,
                    example.display(),
                    shell_quote(&path.display().to_string())
                );
            }
            Ok(Some(done))
        }
        Err(err) => {
            if created {
                // Leave nothing half-created: the folder was new and empty.
                let _ = std::fs::remove_dir(path);
            }
            Err(err.context(format!(
                "cannot hand the workspace folder {} from {}:{} to the sandbox's {uid}:{gid}; its top folder keeps its owner, so the hand-over is tried again when the sandbox is next created",
                path.display(),
                owner.0,
                owner.1
            )))
        }
    }
}

fn check_with(path: &Path, wanted: (u32, u32), may_chown: bool) -> anyhow::Result<()> {
    if may_chown {
        return Ok(());
    }
    let (uid, gid) = wanted;
    let quoted = shell_quote(&path.display().to_string());
    match std::fs::metadata(path) {
        Ok(metadata) => {
            let owner = (metadata.uid(), metadata.gid());
            if owner == wanted {
                return Ok(());
            }
            anyhow::bail!(
                "the workspace folder {} belongs to {}:{} but the sandbox runs as {uid}:{gid}, and sandpit, not running as root, cannot hand it over; run sandpit as root, or hand it over yourself (`sudo chown -R {uid}:{gid} {quoted}`), or set the sandbox user back to \"{}:{}\" (`user` in the config file's [sandbox] table, or the runtime's)",
                path.display(),
                owner.0,
                owner.1,
                owner.0,
                owner.1
            )
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => match process_owner() {
            Some(own) if own != wanted => anyhow::bail!(
                "sandpit runs as {}:{}, not as root, so it cannot make the workspace folder {} for the sandbox's {uid}:{gid}; run sandpit as root, or make the folder yourself (`sudo install -d -o {uid} -g {gid} {quoted}`), or set the sandbox user to \"{}:{}\" (`user` in the config file's [sandbox] table, or the runtime's)",
                own.0,
                own.1,
                path.display(),
                own.0,
                own.1
            ),
            _ => Ok(()),
        },
        // The creation reports it, naming the cause.
        Err(_) => Ok(()),
    }
}

/// Whether this process may give files to another uid: CAP_CHOWN in its
/// effective set, which root has. Unknown counts as yes; the chown then
/// reports any refusal itself.
fn may_chown() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| has_cap_chown(&status))
        .unwrap_or(true)
}

/// CAP_CHOWN from the text of /proc/self/status; `None` when the line is
/// missing or unreadable.
fn has_cap_chown(status: &str) -> Option<bool> {
    super::quota::cap_eff(status).map(|caps| caps & CAP_CHOWN_BIT != 0)
}

/// This process's uid:gid, which a folder it makes gets: /proc/self belongs
/// to them.
fn process_owner() -> Option<(u32, u32)> {
    let metadata = std::fs::metadata("/proc/self").ok()?;
    Some((metadata.uid(), metadata.gid()))
}

/// A folder still to walk: its name in its parent, whose handle stays open
/// only while some of its subfolders wait, so at most one handle per level
/// of the folder being walked is open.
struct Pending {
    parent: Rc<OwnedFd>,
    name: CString,
    path: PathBuf,
}

/// Walks the tree at `top` without recursion and hands every entry owned by
/// `from_uid` to `wanted`, the top folder last.
fn hand_over(top: &Path, from_uid: u32, wanted: (u32, u32)) -> anyhow::Result<Handover> {
    let mut done = Handover::default();
    let top_fd = rustix::fs::open(
        top,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("cannot open {}", top.display()))?;
    let device = device_of(
        &rustix::fs::fstat(&top_fd).with_context(|| format!("cannot read {}", top.display()))?,
    );
    let top_fd = Rc::new(top_fd);
    let mut pending = Vec::new();
    walk_folder(
        &top_fd,
        top,
        device,
        from_uid,
        wanted,
        &mut pending,
        &mut done,
    )?;
    while let Some(folder) = pending.pop() {
        let opened = rustix::fs::openat(
            &*folder.parent,
            folder.name.as_c_str(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        );
        let fd = match opened {
            Ok(fd) => Rc::new(fd),
            // Gone since it was listed: nothing left to hand over.
            Err(rustix::io::Errno::NOENT) => continue,
            Err(err) => {
                return Err(err)
                    .with_context(|| format!("cannot open the folder {}", folder.path.display()))
                    .with_context(|| progress(&done));
            }
        };
        drop(folder.parent);
        walk_folder(
            &fd,
            &folder.path,
            device,
            from_uid,
            wanted,
            &mut pending,
            &mut done,
        )
        .with_context(|| progress(&done))?;
    }
    let (uid, gid) = wanted;
    rustix::fs::fchown(&*top_fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
        .with_context(|| format!("cannot give {} to {uid}:{gid}", top.display()))
        .with_context(|| progress(&done))?;
    done.changed += 1;
    Ok(done)
}

fn progress(done: &Handover) -> String {
    format!(
        "{} of the {} entries looked at were handed over",
        done.changed, done.seen
    )
}

/// Hands over the entries of one open folder and queues its subfolders.
fn walk_folder(
    folder: &Rc<OwnedFd>,
    path: &Path,
    device: u64,
    from_uid: u32,
    wanted: (u32, u32),
    pending: &mut Vec<Pending>,
    done: &mut Handover,
) -> anyhow::Result<()> {
    let (uid, gid) = wanted;
    let names = list_names(folder).with_context(|| format!("cannot list {}", path.display()))?;
    for name in names {
        let entry_path = path.join(OsStr::from_bytes(name.to_bytes()));
        let stat = match rustix::fs::statat(&**folder, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(rustix::io::Errno::NOENT) => continue,
            Err(err) => {
                return Err(err).with_context(|| format!("cannot read {}", entry_path.display()));
            }
        };
        done.seen += 1;
        if done.seen.is_multiple_of(PROGRESS_EVERY) {
            tracing::info!(
                "handing over {}: {} entries looked at, {} changed",
                path.display(),
                done.seen,
                done.changed
            );
        }
        if device_of(&stat) != device {
            done.mounts += 1;
            continue;
        }
        let owner = (stat.st_uid, stat.st_gid);
        if owner == wanted {
            done.already += 1;
        } else if owner.0 == from_uid {
            rustix::fs::chownat(
                &**folder,
                name.as_c_str(),
                Some(Uid::from_raw(uid)),
                Some(Gid::from_raw(gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .with_context(|| format!("cannot give {} to {uid}:{gid}", entry_path.display()))?;
            done.changed += 1;
        } else {
            done.kept += 1;
            if done.kept_example.is_none() {
                done.kept_example = Some((entry_path.clone(), owner.0, owner.1));
            }
        }
        if FileType::from_raw_mode(stat.st_mode) == FileType::Directory {
            pending.push(Pending {
                parent: Rc::clone(folder),
                name,
                path: entry_path,
            });
        }
    }
    Ok(())
}

/// The file system an entry is on.
// `st_dev`'s type differs between platforms; on some it is `u64` already.
#[allow(clippy::useless_conversion)]
fn device_of(stat: &rustix::fs::Stat) -> u64 {
    u64::from(stat.st_dev)
}

/// The names in an open folder, `.` and `..` left out.
fn list_names(folder: &OwnedFd) -> rustix::io::Result<Vec<CString>> {
    let mut names = Vec::new();
    for entry in Dir::read_from(folder)? {
        let entry = entry?;
        let name: &CStr = entry.file_name();
        if name != c"." && name != c".." {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{lchown, symlink};

    /// Every entry under `top`, links not followed, with its owner.
    fn owners(top: &Path) -> Vec<(PathBuf, u32, u32)> {
        let mut found = Vec::new();
        let mut folders = vec![top.to_path_buf()];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).unwrap() {
                let path = entry.unwrap().path();
                let metadata = std::fs::symlink_metadata(&path).unwrap();
                if metadata.is_dir() {
                    folders.push(path.clone());
                }
                found.push((path, metadata.uid(), metadata.gid()));
            }
        }
        found
    }

    fn owner(path: &Path) -> (u32, u32) {
        let metadata = std::fs::symlink_metadata(path).unwrap();
        (metadata.uid(), metadata.gid())
    }

    /// Gives the whole tree to `uid:gid`, as a sandbox of that uid would
    /// have left it.
    fn give_all(top: &Path, uid: u32, gid: u32) {
        for (path, _, _) in owners(top) {
            lchown(&path, Some(uid), Some(gid)).unwrap();
        }
        lchown(top, Some(uid), Some(gid)).unwrap();
    }

    /// These tests run as root, like the integration tests: only root may
    /// give files away.
    #[test]
    fn the_whole_tree_is_handed_over_and_links_are_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(outside.join("inner")).unwrap();
        std::fs::write(outside.join("secret"), "host").unwrap();
        std::fs::write(outside.join("inner/file"), "host").unwrap();

        let ws = tmp.path().join("ws");
        std::fs::create_dir_all(ws.join("a/b/c")).unwrap();
        std::fs::write(ws.join("a/b/c/deep.txt"), "x").unwrap();
        std::fs::write(ws.join("a/top.txt"), "x").unwrap();
        std::fs::write(ws.join("hidden.txt"), "x").unwrap();
        symlink(outside.join("secret"), ws.join("file-link")).unwrap();
        symlink(&outside, ws.join("dir-link")).unwrap();
        symlink("../../../outside", ws.join("a/b/up-link")).unwrap();
        symlink("dangling-target", ws.join("a/dangling")).unwrap();
        // Deeper than any recursion would like: the walk is iterative.
        let mut deep = ws.join("chain");
        for _ in 0..300 {
            deep.push("d");
        }
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(deep.join("bottom.txt"), "x").unwrap();
        give_all(&ws, 1000, 1000);
        // Root's file, put there from the host, and one a half-done earlier
        // hand-over already gave away.
        std::fs::write(ws.join("a/roots.txt"), "x").unwrap();
        lchown(ws.join("a/roots.txt"), Some(0), Some(0)).unwrap();
        lchown(ws.join("a/b/c/deep.txt"), Some(1500), Some(1500)).unwrap();
        let entries = owners(&ws).len() as u64;

        let done = prepare_with(&ws, (1500, 1500), true)
            .unwrap()
            .expect("a hand-over");
        assert_eq!(done.seen, entries);
        assert_eq!(done.kept, 1);
        assert_eq!(done.already, 1);
        assert_eq!(done.changed, entries - 2 + 1, "{done:?}");
        assert_eq!(done.mounts, 0);
        assert_eq!(owner(&ws), (1500, 1500));
        for (path, uid, gid) in owners(&ws) {
            let wanted = if path.ends_with("a/roots.txt") {
                (0, 0)
            } else {
                (1500, 1500)
            };
            assert_eq!((uid, gid), wanted, "{}", path.display());
        }
        // What the links point to out of the tree kept its owner.
        for (path, uid, gid) in owners(&outside) {
            assert_eq!((uid, gid), (0, 0), "{}", path.display());
        }
        assert_eq!(owner(&outside), (0, 0));

        // Done once: the next sandbox of that uid finds it ready.
        assert_eq!(prepare_with(&ws, (1500, 1500), true).unwrap(), None);
    }

    #[test]
    fn a_missing_folder_is_made_for_the_sandbox() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path().join("new/ws");
        prepare_with(&ws, (1000, 1000), true).unwrap();
        assert_eq!(owner(&ws), (1000, 1000));
    }

    #[test]
    fn without_the_right_to_give_files_away_a_differing_owner_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path().join("ws");
        std::fs::create_dir_all(ws.join("sub")).unwrap();
        give_all(&ws, 1000, 1000);
        let err = prepare_with(&ws, (1500, 1501), false).unwrap_err();
        let text = format!("{err:#}");
        for part in [
            &ws.display().to_string(),
            "belongs to 1000:1000",
            "runs as 1500:1501",
            "root",
            "chown -R 1500:1501",
            "\"1000:1000\"",
        ] {
            assert!(text.contains(part), "{part:?} missing from: {text}");
        }
        assert!(check_with(&ws, (1500, 1501), false).is_err());
        // Nothing changed.
        assert_eq!(owner(&ws), (1000, 1000));
        assert_eq!(owner(&ws.join("sub")), (1000, 1000));
        // The owner it has already passes.
        assert_eq!(prepare_with(&ws, (1000, 1000), false).unwrap(), None);

        // A missing folder this process could not give away is not made.
        let missing = tmp.path().join("missing");
        let err = prepare_with(&missing, (1500, 1501), false).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("install -d -o 1500 -g 1501"), "{text}");
        assert!(text.contains(&missing.display().to_string()), "{text}");
        assert!(!missing.exists());
    }

    #[test]
    fn a_mount_inside_is_neither_changed_nor_entered() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path().join("ws");
        let mount = ws.join("mnt");
        std::fs::create_dir_all(&mount).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "mode=0755", "sandpit-test"])
            .arg(&mount)
            .status()
            .is_ok_and(|status| status.success());
        if !mounted {
            eprintln!("skipped: this test needs to mount a tmpfs (root with CAP_SYS_ADMIN)");
            return;
        }
        struct Unmount(PathBuf);
        impl Drop for Unmount {
            fn drop(&mut self) {
                let _ = std::process::Command::new("umount").arg(&self.0).status();
            }
        }
        let _unmount = Unmount(mount.clone());
        std::fs::write(mount.join("inside"), "x").unwrap();
        std::fs::write(ws.join("beside"), "x").unwrap();
        let done = prepare_with(&ws, (1500, 1500), true)
            .unwrap()
            .expect("a hand-over");
        assert_eq!(done.mounts, 1);
        assert_eq!(owner(&mount), (0, 0));
        assert_eq!(owner(&mount.join("inside")), (0, 0));
        assert_eq!(owner(&ws.join("beside")), (1500, 1500));
        assert_eq!(owner(&ws), (1500, 1500));
    }

    #[test]
    fn cap_chown_is_read_from_the_status() {
        assert_eq!(
            has_cap_chown("Name:\tx\nCapEff:\t000001ffffffffff\n"),
            Some(true)
        );
        assert_eq!(has_cap_chown("CapEff:\t0000000000000000\n"), Some(false));
        assert_eq!(has_cap_chown("CapEff:\t00000000a80425fa\n"), Some(false));
        assert_eq!(has_cap_chown("CapEff:\t00000000a80425fb\n"), Some(true));
        assert_eq!(has_cap_chown("Name:\tx\n"), None);
        assert_eq!(has_cap_chown("CapEff:\tzz\n"), None);
    }
}
