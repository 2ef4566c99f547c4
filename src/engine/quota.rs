//! Workspace quotas: each workspace is its own ext4 file system, held in a
//! sparse image file and mounted through a loop device at the workspace
//! folder, so a sandbox that fills it gets "No space left on device" and the
//! host's disk, the engine and every other workspace are untouched.
//!
//! Why not the engine: its `local` volume driver calls mount(2) itself and
//! cannot set up a loop device (`o=loop` answers "invalid argument"), so
//! sandpit mounts the image on the host and bind-mounts the folder as before.
//!
//! Layout, beside the workspaces: `<workspace_root>/.sandpit/disks/<user>.ext4`.
//! The image outlives mounts: after a host reboot it is there, unmounted,
//! and the next start of the sandbox mounts it again; `rm` keeps it mounted
//! (the files stay where they were on the host), `rm --purge` unmounts and
//! deletes it.
//!
//! Only root (CAP_SYS_ADMIN) with a local engine can do this. Elsewhere the
//! limit is not enforced, and [`hard_limit_unavailable`] says why, for
//! `doctor` and `inspect`; usage is still measured.
//!
//! Decisions:
//! - The limit is fixed when the image is made. A larger limit on a later
//!   sandbox grows the image (e2fsck, then resize2fs); a smaller one, or none,
//!   is not applied (shrinking could lose data) and a note says how to start
//!   over.
//! - A workspace folder that already holds files and has no image (made before
//!   quotas) is left as it is, without a limit, and `inspect` says so: its
//!   files are never moved behind the user's back.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use serde::Serialize;

/// Folder under the workspace root for sandpit's own bookkeeping. User ids
/// cannot start with `.`, so it never collides with a workspace.
pub const STATE_DIR: &str = ".sandpit";

/// Mount options of a workspace image: nothing setuid, no device nodes;
/// `discard` gives the host back the space of deleted files;
/// `noinit_itable` because a fresh sparse image reads as zeros already, so
/// the kernel need not zero its inode tables (which would fill the image).
const MOUNT_OPTIONS: &str = "loop,nosuid,nodev,noatime,discard,noinit_itable";

/// Entries [`usage`] looks at in a workspace without a mounted image before
/// it stops and reports what it counted: for one sandbox (`inspect`), and
/// for each of a list (`sessions`, and the dashboard on every change).
pub const USAGE_WALK_ONE: u64 = 100_000;
pub const USAGE_WALK_EACH: u64 = 2_000;

/// How long a removed container's hold on a workspace image may take to go
/// before the image is grown (see `prepare_existing`).
const LOOP_RELEASE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// Bit of CAP_SYS_ADMIN, which mount needs, in /proc/self/status.
const CAP_SYS_ADMIN_BIT: u64 = 1 << 21;

/// How to get the file system tools when they are missing.
const E2FSPROGS_HINT: &str = "install e2fsprogs (`apt-get install e2fsprogs`), or set `disk = 0` (the config file's [sandbox] table, the runtime's, or `--disk 0`) for workspaces without a size limit";

/// A workspace's size and limit, for `sessions`, `inspect` and the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiskUsage {
    /// Bytes in use; when not enforced, the bytes the files take on the host,
    /// counted up to a bound (see `complete`).
    pub used: u64,
    /// The limit in bytes. When enforced, what files can fill: the image's
    /// size less the file system's own journal and tables (a few percent);
    /// else the limit asked for. `None` for no limit.
    pub limit: Option<u64>,
    /// Whether writes past `limit` fail (the workspace is a mounted image).
    pub enforced: bool,
    /// False when counting stopped early in a very large workspace: `used`
    /// is then a lower bound.
    pub complete: bool,
    /// The image file, when the workspace has one.
    pub image: Option<String>,
    /// The image file's size in bytes: the limit it was made or grown to.
    pub image_size: Option<u64>,
    /// Why the limit is not enforced, or differs from the one asked for.
    pub note: Option<String>,
}

/// The image file of the workspace at `workspace` (`<root>/<user>`):
/// `<root>/.sandpit/disks/<user>.ext4`. `None` for a path without a parent
/// or a name.
pub fn image_path(workspace: &Path) -> Option<PathBuf> {
    let name = workspace.file_name()?;
    let root = workspace.parent()?;
    let mut file = name.to_os_string();
    file.push(".ext4");
    Some(root.join(STATE_DIR).join("disks").join(file))
}

/// Why this sandpit cannot enforce a workspace limit, or `None` when it can:
/// it needs CAP_SYS_ADMIN (root) to mount, and the engine on this host, so
/// that the folder it bind-mounts is the one mounted here.
pub fn hard_limit_unavailable() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    unavailable_with(&super::engine_host(), &status)
}

/// [`hard_limit_unavailable`] for an engine address and the text of
/// /proc/self/status.
fn unavailable_with(host: &str, status: &str) -> Option<String> {
    if !host.starts_with("unix://") {
        return Some(format!(
            "the engine is remote (DOCKER_HOST={host}): sandpit cannot mount a size-limited file system on the engine's host, so workspaces have no hard size limit"
        ));
    }
    if cap_eff(status).is_some_and(|caps| caps & CAP_SYS_ADMIN_BIT == 0) {
        return Some(
            "sandpit does not run as root (no CAP_SYS_ADMIN): it cannot mount a size-limited file system at each workspace, so workspaces have no hard size limit; run sandpit as root to enforce `disk`".to_string(),
        );
    }
    None
}

/// The effective capability set from the text of /proc/self/status.
pub(super) fn cap_eff(status: &str) -> Option<u64> {
    let hex = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// Where `e2fsprogs`' tools are missing, what to do; `None` when present.
pub fn tools_missing() -> Option<String> {
    let missing: Vec<&str> = ["mkfs.ext4", "e2fsck", "resize2fs"]
        .into_iter()
        .filter(|tool| find_tool(tool).is_none())
        .collect();
    (!missing.is_empty()).then(|| format!("{} not found: {E2FSPROGS_HINT}", missing.join(", ")))
}

/// A tool on PATH or in the sbin folders, which a non-login root shell may
/// lack on its PATH.
fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Runs a tool, naming the command and its error output when it fails.
/// `ok_codes` are the exit codes that count as success.
fn run(name: &str, args: &[&OsStr], ok_codes: &[i32]) -> anyhow::Result<()> {
    let program =
        find_tool(name).ok_or_else(|| anyhow::anyhow!("{name} not found: {E2FSPROGS_HINT}"))?;
    let shown = || {
        std::iter::once(name.to_string())
            .chain(args.iter().map(|arg| arg.to_string_lossy().into_owned()))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let output = Command::new(&program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run `{}`", shown()))?;
    match output.status.code() {
        Some(code) if ok_codes.contains(&code) => Ok(()),
        code => bail!(
            "`{}` failed ({}): {}",
            shown(),
            code.map_or("killed by a signal".to_string(), |c| format!("exit {c}")),
            String::from_utf8_lossy(&output.stderr).trim()
        ),
    }
}

/// One line of /proc/self/mountinfo that matters here.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mount {
    point: PathBuf,
    fstype: String,
    source: String,
}

/// Every mount of this process's mount namespace, in mount order.
fn mounts() -> Vec<Mount> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|text| parse_mountinfo(&text))
        .unwrap_or_default()
}

/// Parses mountinfo: `id parent major:minor root point options [optional…] -
/// fstype source super-options`, with spaces and such escaped as `\040`.
fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            let mut right = right.split(' ');
            Some(Mount {
                point: PathBuf::from(OsStr::from_bytes(&unescape(point))),
                fstype: right.next()?.to_string(),
                source: String::from_utf8_lossy(&unescape(right.next()?)).into_owned(),
            })
        })
        .collect()
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(octal) = bytes.get(i + 1..i + 4)
            && let Ok(text) = std::str::from_utf8(octal)
            && let Ok(value) = u8::from_str_radix(text, 8)
        {
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// The path as mountinfo shows it: links in it resolved.
fn real(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The topmost mount at exactly `point`, if any.
fn mount_at(point: &Path) -> Option<Mount> {
    let point = real(point);
    mounts().into_iter().rev().find(|m| m.point == point)
}

/// The file behind a loop device, from sysfs.
fn backing_file(device: &str) -> Option<PathBuf> {
    let name = Path::new(device).file_name()?.to_str()?;
    let text = std::fs::read_to_string(format!("/sys/block/{name}/loop/backing_file")).ok()?;
    Some(PathBuf::from(text.trim_end_matches('\n')))
}

/// Loop devices attached to `image`, from sysfs.
fn loops_of(image: &Path) -> Vec<String> {
    let image = real(image);
    let Ok(devices) = std::fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    devices
        .flatten()
        .filter_map(|device| {
            let name = device.file_name().to_string_lossy().into_owned();
            let backing = std::fs::read_to_string(device.path().join("loop/backing_file")).ok()?;
            (Path::new(backing.trim_end_matches('\n')) == image).then_some(name)
        })
        .collect()
}

/// Waits, up to [`LOOP_RELEASE_DEADLINE`], until no loop device is attached
/// to `image`; false when one still is.
fn loop_released(image: &Path) -> bool {
    let deadline = std::time::Instant::now() + LOOP_RELEASE_DEADLINE;
    loop {
        let attached = loops_of(image);
        if attached.is_empty() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            tracing::warn!(
                "the workspace image {} is still attached to {} after {:?}",
                image.display(),
                attached.join(", "),
                LOOP_RELEASE_DEADLINE
            );
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Whether the workspace's own image is mounted at it.
fn image_mounted(workspace: &Path, image: &Path) -> bool {
    mount_at(workspace).is_some_and(|m| backing_file(&m.source).is_some_and(|b| b == real(image)))
}

/// Holds `<image>.lock` exclusively while a workspace's image is made,
/// grown, mounted or unmounted, so two sandpit processes never do it at
/// once (say, two creating the same user's sandbox). The lock is held
/// while the returned file is open.
fn lock(image: &Path) -> anyhow::Result<std::fs::File> {
    let dir = image
        .parent()
        .ok_or_else(|| anyhow::anyhow!("{} has no parent folder", image.display()))?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // `.sandpit` may be writable by a group (the activity log is shared):
    // the images' folder and the image itself must be what they seem, not
    // links planted to turn root's mkfs, resize or mount on another file.
    refuse_links(dir, true)?;
    refuse_links(image, false)?;
    // Images hold users' files: only root reads them on the host.
    let _ = std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700));
    let mut name = image.as_os_str().to_os_string();
    name.push(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&name)
        .with_context(|| format!("cannot open {}", Path::new(&name).display()))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
        .with_context(|| format!("cannot lock {}", Path::new(&name).display()))?;
    Ok(file)
}

/// Refuses `path` when it is a symbolic link or not owned by this process's
/// user; a folder (`dir`) must be a folder. A missing file passes.
fn refuse_links(path: &Path, dir: bool) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound && !dir => return Ok(()),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    let euid = rustix::process::geteuid().as_raw();
    if metadata.file_type().is_symlink()
        || (dir && !metadata.is_dir())
        || (!dir && !metadata.is_file())
        || metadata.uid() != euid
    {
        anyhow::bail!(
            "{} is not a {} of uid {euid} (a link or someone else's?); sandpit will not mount or change it: remove it and try again",
            path.display(),
            if dir { "folder" } else { "regular file" }
        );
    }
    Ok(())
}

/// What [`prepare`] set up, for the sandbox's labels and the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Prepared {
    /// The limit in force in bytes; `None` when writes are not limited.
    pub enforced: Option<u64>,
    /// Why no limit, or not the one asked for, is in force.
    pub note: Option<String>,
    /// Whether the image was made just now (and is to be deleted if the
    /// sandbox cannot be made after all).
    pub created: bool,
}

/// Makes the workspace at `workspace` size-limited to `limit` bytes before a
/// sandbox is created over it: its image is made (sparse, ext4, root folder
/// owned by `uid:gid`) or grown, and mounted there. A workspace that has an
/// image is always mounted, whatever the limit, because its files are in it.
///
/// Blocking (runs mkfs, e2fsck, resize2fs and mount).
///
/// Errors, each naming the command and its error output: the tools are
/// missing (with how to install them), the image cannot be made, checked,
/// grown or mounted. A workspace with an image that this sandpit cannot mount
/// (not root, remote engine) is refused, since its files are in the image.
/// Nothing half-made is left: a new image that fails is deleted.
pub(crate) fn prepare(
    workspace: &Path,
    limit: Option<u64>,
    uid: u32,
    gid: u32,
) -> anyhow::Result<Prepared> {
    let Some(image) = image_path(workspace) else {
        return Ok(Prepared {
            note: limit.map(|_| {
                format!(
                    "{} has no parent folder for its disk image",
                    workspace.display()
                )
            }),
            ..Prepared::default()
        });
    };
    if image.exists() {
        let _lock = lock(&image)?;
        return prepare_existing(workspace, &image, limit);
    }
    let Some(limit) = limit else {
        return Ok(Prepared::default());
    };
    if let Some(reason) = hard_limit_unavailable() {
        tracing::warn!("workspace {}: {reason}", workspace.display());
        return Ok(Prepared {
            note: Some(reason),
            ..Prepared::default()
        });
    }
    if holds_files(workspace)? {
        let note = format!(
            "the workspace {} was made before workspace quotas and holds files: it is left as it is, with no size limit; to give it one, copy its files out, `sandpit rm --purge` the user, and copy them back in through the new sandbox",
            workspace.display()
        );
        tracing::warn!("{note}");
        return Ok(Prepared {
            note: Some(note),
            ..Prepared::default()
        });
    }
    if let Some(missing) = tools_missing() {
        bail!(
            "cannot give the workspace {} its size limit: {missing}",
            workspace.display()
        );
    }
    let _lock = lock(&image)?;
    // Another process may have made it while this one waited for the lock.
    if image.exists() {
        return prepare_existing(workspace, &image, Some(limit));
    }
    create_image(&image, limit, uid, gid).and_then(|()| {
        mount(&image, workspace).inspect_err(|_| {
            let _ = std::fs::remove_file(&image);
        })
    })?;
    // mkfs leaves a root-only lost+found, which the sandbox would see but not
    // open; e2fsck makes it again when it needs it.
    let _ = std::fs::remove_dir(workspace.join("lost+found"));
    Ok(Prepared {
        enforced: Some(limit),
        note: None,
        created: true,
    })
}

/// The workspace already has an image: grow it when a larger limit is asked
/// for and it is not in use, then mount it.
fn prepare_existing(
    workspace: &Path,
    image: &Path,
    limit: Option<u64>,
) -> anyhow::Result<Prepared> {
    if let Some(reason) = hard_limit_unavailable() {
        bail!(
            "the files of the workspace {} are in the disk image {}, which this sandpit cannot mount: {reason}",
            workspace.display(),
            image.display()
        );
    }
    let size = image_size(image)?;
    let mut note = None;
    let mut size_now = size;
    match limit {
        Some(wanted) if wanted > size => {
            if image_mounted(workspace, image) {
                // Unmounted only when nothing uses it; otherwise it keeps its size.
                let _ = unmount(workspace);
            }
            // A container just removed may hold the file system a moment
            // longer in its own mount namespace: checking or resizing it
            // then could corrupt it, so wait for its loop device to go.
            if image_mounted(workspace, image) || !loop_released(image) {
                note = Some(format!(
                    "the workspace image {} is in use, so it keeps its size {} rather than {}",
                    image.display(),
                    super::policy::ByteSize(size),
                    super::policy::ByteSize(wanted)
                ));
            } else {
                match grow(image, wanted) {
                    Ok(()) => size_now = wanted,
                    // The files are safe at the old size: mount it as it is.
                    Err(err) => {
                        size_now = image_size(image)?;
                        note = Some(format!(
                            "the workspace image {} could not grow to {}, so it keeps its file system's size: {err:#}",
                            image.display(),
                            super::policy::ByteSize(wanted)
                        ));
                    }
                }
            }
        }
        Some(wanted) if wanted < size => {
            note = Some(shrink_note(
                image,
                size,
                &super::policy::ByteSize(wanted).to_string(),
            ));
        }
        None => note = Some(shrink_note(image, size, "none")),
        Some(_) => {}
    }
    if let Some(note) = &note {
        tracing::warn!("{note}");
    }
    if !image_mounted(workspace, image) {
        mount(image, workspace)?;
    }
    if size_now != size {
        // e2fsck may have made lost+found again (see `prepare`).
        let _ = std::fs::remove_dir(workspace.join("lost+found"));
    }
    Ok(Prepared {
        enforced: Some(size_now),
        note,
        created: false,
    })
}

fn shrink_note(image: &Path, size: u64, asked: &str) -> String {
    format!(
        "the workspace image {} keeps its size {}: a smaller limit ({asked}) is never applied to an existing workspace, since shrinking could lose files; to start over, copy the files out and `sandpit rm --purge` the user",
        image.display(),
        super::policy::ByteSize(size)
    )
}

fn image_size(image: &Path) -> anyhow::Result<u64> {
    Ok(std::fs::metadata(image)
        .with_context(|| format!("cannot read the workspace image {}", image.display()))?
        .len())
}

/// Whether the folder exists and holds anything (a mount point holds its
/// mounted file system's entries).
fn holds_files(folder: &Path) -> anyhow::Result<bool> {
    match std::fs::read_dir(folder) {
        Ok(mut entries) => Ok(entries.next().is_some()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err).with_context(|| format!("cannot list {}", folder.display())),
    }
}

/// A sparse file of `size` bytes with an ext4 file system on it, its root
/// folder `uid:gid`'s. Deleted again when mkfs fails.
fn create_image(image: &Path, size: u64, uid: u32, gid: u32) -> anyhow::Result<()> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(image)
        .with_context(|| format!("cannot create the workspace image {}", image.display()))?;
    let made = file
        .set_len(size)
        .with_context(|| format!("cannot size the workspace image {}", image.display()))
        .and_then(|()| {
            let root_owner = format!(
                // Lazy init: the sparse file already reads as zeros.
                "root_owner={uid}:{gid},lazy_itable_init=1,lazy_journal_init=1,nodiscard"
            );
            run(
                "mkfs.ext4",
                &[
                    "-q".as_ref(),
                    "-F".as_ref(),
                    // No blocks kept back for root: the limit is the user's.
                    "-m".as_ref(),
                    "0".as_ref(),
                    "-E".as_ref(),
                    root_owner.as_ref(),
                    image.as_os_str(),
                ],
                &[0],
            )
        });
    if made.is_err() {
        let _ = std::fs::remove_file(image);
    }
    made
}

/// Grows an unmounted image to `size` bytes: the file, then the file system
/// (resize2fs wants a freshly checked one).
fn grow(image: &Path, size: u64) -> anyhow::Result<()> {
    tracing::info!(
        "growing the workspace image {} to {}",
        image.display(),
        super::policy::ByteSize(size)
    );
    // e2fsck: 0 clean, 1 errors fixed.
    run(
        "e2fsck",
        &["-f".as_ref(), "-p".as_ref(), image.as_os_str()],
        &[0, 1],
    )?;
    std::fs::OpenOptions::new()
        .write(true)
        .open(image)
        .and_then(|file| file.set_len(size))
        .with_context(|| format!("cannot grow the workspace image {}", image.display()))?;
    run("resize2fs", &[image.as_os_str()], &[0])
}

/// Mounts the image at the workspace folder, made when missing.
fn mount(image: &Path, workspace: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(workspace)
        .with_context(|| format!("cannot create the workspace folder {}", workspace.display()))?;
    if holds_files(workspace)? {
        // The files stay on the host file system under the mount; nothing is
        // lost, but the sandbox will not see them.
        tracing::warn!(
            "the folder {} holds files of its own; the workspace image mounted over it hides them until it is unmounted",
            workspace.display()
        );
    }
    run(
        "mount",
        &[
            "-t".as_ref(),
            "ext4".as_ref(),
            "-o".as_ref(),
            MOUNT_OPTIONS.as_ref(),
            image.as_os_str(),
            workspace.as_os_str(),
        ],
        &[0],
    )
    .context("cannot mount the workspace image")
}

fn unmount(workspace: &Path) -> anyhow::Result<()> {
    // The loop device goes with the mount: `mount -o loop` sets autoclear.
    run("umount", &[workspace.as_os_str()], &[0])
        .context("cannot unmount the workspace image (is something on the host using it?)")
}

/// Mounts the workspace's image again when it has one and it is not mounted
/// (after a host reboot). Does nothing for a
/// workspace without an image. Blocking.
///
/// Errors: the image cannot be mounted, naming the command's error; the
/// image exists but this sandpit cannot mount (not root, remote engine).
pub fn remount(workspace: &Path) -> anyhow::Result<()> {
    let Some(image) = image_path(workspace).filter(|image| image.exists()) else {
        return Ok(());
    };
    if image_mounted(workspace, &image) {
        return Ok(());
    }
    if let Some(reason) = hard_limit_unavailable() {
        bail!(
            "the files of the workspace {} are in the disk image {}, which this sandpit cannot mount: {reason}",
            workspace.display(),
            image.display()
        );
    }
    let _lock = lock(&image)?;
    if image_mounted(workspace, &image) {
        return Ok(());
    }
    tracing::info!("mounting the workspace image {} again", image.display());
    mount(&image, workspace)
}

/// Refuses early, before a long image build, a workspace limit that cannot
/// be set up because e2fsprogs is missing; passes whenever [`prepare`] would
/// not need it (no limit, an image already made, no hard limit possible, a
/// workspace made before quotas).
pub fn check(workspace: &Path, limit: Option<u64>) -> anyhow::Result<()> {
    let needs_mkfs = limit.is_some()
        && image_path(workspace).is_some_and(|image| !image.exists())
        && hard_limit_unavailable().is_none()
        && !holds_files(workspace).unwrap_or(true);
    match tools_missing() {
        Some(missing) if needs_mkfs => bail!(
            "cannot give the workspace {} its size limit: {missing}",
            workspace.display()
        ),
        _ => Ok(()),
    }
}

/// Whether the workspace has an image that is not mounted at it.
pub fn needs_remount(workspace: &Path) -> bool {
    image_path(workspace)
        .filter(|image| image.exists())
        .is_some_and(|image| !image_mounted(workspace, &image))
}

/// Unmounts the workspace's image, keeping it; with `purge`, deletes the
/// image too. Does nothing for a workspace without one. Blocking.
///
/// Errors: the unmount fails (something on the host holds the folder), or
/// the image cannot be deleted; the image is then kept.
pub fn release(workspace: &Path, purge: bool) -> anyhow::Result<()> {
    let Some(image) = image_path(workspace).filter(|image| image.exists()) else {
        return Ok(());
    };
    let _lock = lock(&image)?;
    // Every mount of the image at the folder, in case one was stacked.
    while image_mounted(workspace, &image) {
        unmount(workspace)?;
    }
    if purge {
        let mut name = image.as_os_str().to_os_string();
        name.push(".lock");
        let _ = std::fs::remove_file(name);
        match std::fs::remove_file(&image) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                return Err(err).with_context(|| {
                    format!("cannot delete the workspace image {}", image.display())
                });
            }
        }
    }
    Ok(())
}

/// The workspace's usage against its limit. `asked` is the limit the sandbox
/// was made with (`None`: no limit). `None` when the folder does not exist.
/// Blocking: cheap for a mounted image (statvfs), otherwise a walk of at
/// most `walk_limit` entries (see [`USAGE_WALK_ONE`]).
pub fn usage(workspace: &Path, asked: Option<u64>, walk_limit: u64) -> Option<DiskUsage> {
    let image = image_path(workspace).filter(|image| image.exists());
    if let Some(image) = &image
        && image_mounted(workspace, image)
        && let Ok(stats) = rustix::fs::statvfs(workspace)
    {
        let used = stats.f_blocks.saturating_sub(stats.f_bfree) * stats.f_frsize;
        let size = std::fs::metadata(image).map(|m| m.len()).ok();
        let note = match (asked, size) {
            (asked, Some(size)) if asked != Some(size) => Some(format!(
                "the image keeps its size {} ({} asked for): a smaller limit is never applied to an existing workspace, a larger one only while the image is not in use",
                super::policy::ByteSize(size),
                asked.map_or("no limit".to_string(), |asked| super::policy::ByteSize(
                    asked
                )
                .to_string())
            )),
            _ => None,
        };
        return Some(DiskUsage {
            used,
            limit: Some(stats.f_blocks * stats.f_frsize),
            enforced: true,
            complete: true,
            image: Some(image.display().to_string()),
            image_size: size,
            note,
        });
    }
    let metadata = std::fs::metadata(workspace).ok()?;
    let (used, complete) = walk_usage(workspace, metadata.dev(), walk_limit);
    let note = if let Some(image) = &image {
        Some(format!(
            "the workspace image {} is not mounted (after a reboot?): sandpit mounts it when the sandbox starts or is next used",
            image.display()
        ))
    } else if asked.is_some() {
        Some(hard_limit_unavailable().unwrap_or_else(|| {
            "the workspace was made before workspace quotas, or with `disk = 0`: it has no hard size limit".to_string()
        }))
    } else {
        None
    };
    Some(DiskUsage {
        used,
        limit: asked,
        enforced: false,
        complete,
        image_size: image
            .as_ref()
            .and_then(|image| std::fs::metadata(image).ok())
            .map(|m| m.len()),
        image: image.map(|image| image.display().to_string()),
        note,
    })
}

/// Bytes allocated under `top` on its own file system, links not followed,
/// up to `limit` entries; and whether the walk was complete.
fn walk_usage(top: &Path, device: u64, limit: u64) -> (u64, bool) {
    let mut total = 0u64;
    let mut seen = 0u64;
    let mut folders = vec![top.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            seen += 1;
            if seen > limit {
                return (total, false);
            }
            let Ok(metadata) = entry.metadata() else {
                continue;
            };
            if metadata.dev() != device {
                continue;
            }
            total = total.saturating_add(metadata.blocks() * 512);
            if metadata.is_dir() {
                folders.push(entry.path());
            }
        }
    }
    (total, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planted_links_are_refused_before_anything_is_touched() {
        let root = tempfile::tempdir().unwrap();
        let disks = root.path().join("disks");
        std::fs::create_dir(&disks).unwrap();
        let outside = root.path().join("outside.img");
        std::fs::write(&outside, b"not an image").unwrap();
        // An image that is a link to another file.
        let image = disks.join("alice.ext4");
        std::os::unix::fs::symlink(&outside, &image).unwrap();
        let err = lock(&image).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        // The images' folder itself a link.
        let elsewhere = root.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let linked = root.path().join("linked");
        std::os::unix::fs::symlink(&elsewhere, &linked).unwrap();
        let err = lock(&linked.join("bob.ext4")).unwrap_err().to_string();
        assert!(err.contains("not a folder"), "{err}");
        assert_eq!(std::fs::read(&outside).unwrap(), b"not an image");
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
        // A plain folder and a missing image pass, and the lock is taken.
        assert!(lock(&disks.join("carol.ext4")).is_ok());
    }

    #[test]
    fn images_live_beside_the_workspaces() {
        assert_eq!(
            image_path(Path::new("/srv/ws/alice")),
            Some(PathBuf::from("/srv/ws/.sandpit/disks/alice.ext4"))
        );
        assert_eq!(image_path(Path::new("/")), None);
    }

    #[test]
    fn an_unlimited_workspace_is_measured_within_a_bound() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path().join("ws");
        std::fs::create_dir_all(ws.join("sub")).unwrap();
        for i in 0..10 {
            std::fs::write(ws.join("sub").join(i.to_string()), vec![1u8; 10_000]).unwrap();
        }
        let whole = usage(&ws, None, 100).unwrap();
        assert!(whole.complete && !whole.enforced && whole.limit.is_none());
        assert!(whole.used >= 100_000, "{whole:?}");
        assert!(whole.note.is_none(), "no limit asked, nothing to say");
        let cut = usage(&ws, Some(1 << 30), 5).unwrap();
        assert!(!cut.complete && cut.used < whole.used, "{cut:?}");
        assert_eq!(cut.limit, Some(1 << 30));
        assert!(
            cut.note.is_some(),
            "a limit that does not hold is explained"
        );
        assert_eq!(usage(&tmp.path().join("missing"), None, 100), None);
    }

    #[test]
    fn mountinfo_is_parsed_with_its_escapes() {
        let text = "22 1 0:21 / /proc rw,nosuid shared:12 - proc proc rw\n\
                    51 27 7:0 / /tmp/a\\040b/ws rw,nosuid,nodev,relatime - ext4 /dev/loop0 rw\n\
                    garbage\n";
        let mounts = parse_mountinfo(text);
        assert_eq!(mounts.len(), 2);
        assert_eq!(mounts[1].point, PathBuf::from("/tmp/a b/ws"));
        assert_eq!(mounts[1].fstype, "ext4");
        assert_eq!(mounts[1].source, "/dev/loop0");
    }

    #[test]
    fn no_hard_limit_without_root_or_with_a_remote_engine() {
        let root = "CapEff:\t000001ffffffffff\n";
        let user = "CapEff:\t0000000000000000\n";
        assert_eq!(unavailable_with("unix:///var/run/docker.sock", root), None);
        let remote = unavailable_with("tcp://10.0.0.5:2376", root).unwrap();
        assert!(
            remote.contains("the engine is remote (DOCKER_HOST=tcp://10.0.0.5:2376)"),
            "{remote}"
        );
        let ssh = unavailable_with("ssh://me@host", root).unwrap();
        assert!(ssh.contains("remote"), "{ssh}");
        let not_root = unavailable_with("unix:///var/run/docker.sock", user).unwrap();
        assert!(not_root.contains("does not run as root"), "{not_root}");
        assert!(not_root.contains("no hard size limit"), "{not_root}");
    }

    #[test]
    fn capabilities_are_read_from_the_status() {
        assert_eq!(
            cap_eff("Name:\tx\nCapEff:\t000001ffffffffff\n"),
            Some(0x1ff_ffff_ffff)
        );
        assert_eq!(cap_eff("Name:\tx\n"), None);
        assert_eq!(
            cap_eff("CapEff:\t0000000000000000\n").map(|c| c & CAP_SYS_ADMIN_BIT),
            Some(0)
        );
    }
}
