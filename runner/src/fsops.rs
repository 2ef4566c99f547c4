//! Workspace file operations, confined to `SANDPIT_WORKSPACE`, with the
//! semantics of the engine-exec file script (`src/engine/files.rs`):
//! symlinks that stay inside the workspace are followed, any that leave it
//! (absolute or through `..`) are refused, and the last part of a rename or
//! delete is the entry itself (a symlink is renamed or deleted, not its
//! target).
//!
//! Resolution never lets the kernel follow a symlink outside our control:
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)` where the kernel has it,
//! else (and for what it refuses, such as an absolute symlink that points
//! back inside) a walk one component at a time from a descriptor of the
//! workspace, each opened with `O_NOFOLLOW` relative to its parent's
//! descriptor. A symlink met on the walk is read and its target walked the
//! same way; `..` pops the walk's own stack of descriptors and may not pop
//! the workspace. A symlink swapped in during the operation is therefore
//! seen as a symlink by the `O_NOFOLLOW` open (which fails) and handled by
//! these rules, never followed blindly.

use std::collections::VecDeque;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::proto::{Entry, code, entry_kind};
use crate::sys;

/// How many symlinks one resolution may follow, as the kernel's limit.
const MAX_LINKS: u32 = 40;
/// How often a component that changes under us is looked at again.
const MAX_RETRIES: u32 = 100;

/// A refusal or failure: a [`code`] value, the errno if any, and a message
/// that holds no path (the host names the path itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsError {
    pub code: u32,
    pub errno: i32,
    pub message: String,
}

impl FsError {
    fn new(code: u32, errno: i32, message: impl Into<String>) -> FsError {
        FsError {
            code,
            errno,
            message: message.into(),
        }
    }

    fn os(err: &io::Error) -> FsError {
        let errno = sys::errno_of(err);
        let code = match errno {
            libc::ENOENT => code::NOT_FOUND,
            _ => code::OTHER,
        };
        FsError::new(code, errno, err.to_string())
    }

    fn outside() -> FsError {
        FsError::new(
            code::OUTSIDE,
            libc::EXDEV,
            "it resolves outside the workspace",
        )
    }

    /// The same error, about the second path of a rename.
    fn second(mut self) -> FsError {
        if self.code == code::OUTSIDE {
            self.code = code::OUTSIDE_SECOND;
        }
        self
    }
}

type Result<T> = std::result::Result<T, FsError>;

/// The workspace: its path as given and as resolved (absolute symlinks are
/// compared against both).
pub struct Workspace {
    given: Vec<u8>,
    real: Vec<u8>,
}

impl Workspace {
    /// From `SANDPIT_WORKSPACE`; `None` when it is unset.
    pub fn from_env() -> Option<Workspace> {
        use std::os::unix::ffi::OsStrExt as _;
        let given = std::env::var_os("SANDPIT_WORKSPACE")?;
        let real = std::fs::canonicalize(&given)
            .map(|p| p.as_os_str().as_bytes().to_vec())
            .unwrap_or_else(|_| given.as_bytes().to_vec());
        Some(Workspace {
            given: trim_slash(given.as_bytes()).to_vec(),
            real: trim_slash(&real).to_vec(),
        })
    }

    /// A workspace at `path` (tests).
    #[cfg(test)]
    fn at(path: &std::path::Path) -> Workspace {
        use std::os::unix::ffi::OsStrExt as _;
        let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        Workspace {
            given: trim_slash(path.as_os_str().as_bytes()).to_vec(),
            real: trim_slash(real.as_os_str().as_bytes()).to_vec(),
        }
    }

    fn root(&self) -> Result<OwnedFd> {
        let path = if self.given.is_empty() {
            b"/".to_vec()
        } else {
            self.given.clone()
        };
        open_at(
            libc::AT_FDCWD,
            &path,
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
        .map_err(|err| {
            FsError::new(
                code::NO_WORKSPACE,
                sys::errno_of(&err),
                format!("the workspace is missing: {err}"),
            )
        })
    }

    /// `path` (relative, or absolute inside the workspace) as components,
    /// without `.`, empty parts or `..` (resolved lexically; one above the
    /// workspace is refused).
    fn components(&self, path: &[u8]) -> Result<Vec<Vec<u8>>> {
        if path.contains(&0) {
            return Err(FsError::new(
                code::OTHER,
                libc::EINVAL,
                "it contains a NUL byte",
            ));
        }
        let relative = if path.starts_with(b"/") {
            [&self.given, &self.real]
                .into_iter()
                .find_map(|root| strip_root(path, root))
                .ok_or_else(FsError::outside)?
        } else {
            path
        };
        let mut parts: Vec<Vec<u8>> = Vec::new();
        for part in relative.split(|&b| b == b'/') {
            match part {
                b"" | b"." => {}
                b".." => {
                    parts.pop().ok_or_else(FsError::outside)?;
                }
                part => parts.push(part.to_vec()),
            }
        }
        Ok(parts)
    }
}

fn trim_slash(path: &[u8]) -> &[u8] {
    let mut path = path;
    while let Some(rest) = path.strip_suffix(b"/") {
        path = rest;
    }
    path
}

/// The rest of absolute `path` below `root`, if it is inside.
fn strip_root<'p>(path: &'p [u8], root: &[u8]) -> Option<&'p [u8]> {
    let rest = path.strip_prefix(root)?;
    if rest.is_empty() || rest.starts_with(b"/") {
        Some(rest)
    } else {
        None
    }
}

fn open_at(dir: RawFd, name: &[u8], flags: libc::c_int) -> io::Result<OwnedFd> {
    let name = sys::cstring(name)?;
    // SAFETY: a valid C string; the result is a fresh descriptor or -1.
    let fd = sys::cvt(unsafe { libc::openat(dir, name.as_ptr(), flags, 0o666) })?;
    // SAFETY: fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn stat_at(dir: RawFd, name: &[u8]) -> io::Result<libc::stat> {
    let name = sys::cstring(name)?;
    // SAFETY: zeroed plain-old-data, filled by fstatat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers.
    sys::cvt(unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(st)
}

fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: zeroed plain-old-data, filled by fstat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer.
    sys::cvt(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st)
}

fn read_link_at(dir: RawFd, name: &[u8]) -> io::Result<Vec<u8>> {
    let name = sys::cstring(name)?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: valid pointers; `buf` has room for `buf.len()` bytes.
    let n = unsafe { libc::readlinkat(dir, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

fn is_kind(st: &libc::stat, kind: libc::mode_t) -> bool {
    st.st_mode & libc::S_IFMT == kind
}

fn dup(fd: &OwnedFd) -> Result<OwnedFd> {
    fd.try_clone().map_err(|err| FsError::os(&err))
}

/// `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`. `Ok(None)`:
/// the kernel lacks it or refused a path the walk must judge (a symlink
/// leaving or an absolute one, a loop).
fn open_beneath(root: &OwnedFd, path: &[u8], flags: libc::c_int) -> Result<Option<OwnedFd>> {
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
    const RESOLVE_BENEATH: u64 = 0x08;
    let path = if path.is_empty() { &b"."[..] } else { path };
    let cpath = sys::cstring(path).map_err(|err| FsError::os(&err))?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: valid pointers and the struct's size, as openat2 expects.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            cpath.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd >= 0 {
        // SAFETY: fresh descriptor we own.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }));
    }
    let err = io::Error::last_os_error();
    match sys::errno_of(&err) {
        libc::ENOSYS
        | libc::EXDEV
        | libc::ELOOP
        | libc::EPERM
        | libc::EINVAL
        | libc::E2BIG
        | libc::EAGAIN => Ok(None),
        _ => Err(FsError::os(&err)),
    }
}

#[cfg(test)]
thread_local! {
    /// Tests take the walk a kernel without openat2 takes.
    static FORCE_WALK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(test)]
fn force_walk() -> bool {
    FORCE_WALK.with(std::cell::Cell::get)
}

#[cfg(not(test))]
fn force_walk() -> bool {
    false
}

/// What the last component is resolved to.
#[derive(Clone, Copy)]
enum Last {
    /// The entry itself: its parent (resolved) and its name, not followed.
    Entry,
    /// Like `Entry`, but a symlink there is followed (it may not exist).
    EntryFollow,
    /// Opened with these flags (plus `O_NOFOLLOW`), symlinks followed.
    Open(libc::c_int),
}

enum Walked {
    Entry(OwnedFd, Vec<u8>),
    Opened(OwnedFd),
}

/// Resolves `parts` from the workspace root; see the module docs.
fn walk(ws: &Workspace, parts: &[Vec<u8>], last: Last) -> Result<Walked> {
    let root = ws.root()?;
    if let Last::Open(flags) = last
        && !force_walk()
        && let Some(fd) = open_beneath(&root, &parts.join(&b'/'), flags)?
    {
        return Ok(Walked::Opened(fd));
    }
    let mut stack: Vec<OwnedFd> = vec![root];
    let mut queue: VecDeque<Vec<u8>> = parts.iter().cloned().collect();
    let (mut links, mut retries) = (0u32, 0u32);
    while let Some(name) = queue.pop_front() {
        match name.as_slice() {
            b"" | b"." => continue,
            b".." => {
                if stack.len() == 1 {
                    return Err(FsError::outside());
                }
                stack.pop();
                continue;
            }
            _ => {}
        }
        let is_last = queue.is_empty();
        let dir = stack.last().ok_or_else(FsError::outside)?;
        let dirfd = dir.as_raw_fd();
        if is_last && matches!(last, Last::Entry) {
            return Ok(Walked::Entry(dup(dir)?, name));
        }
        let st = match stat_at(dirfd, &name) {
            Ok(st) => st,
            Err(err)
                if is_last
                    && matches!(last, Last::EntryFollow)
                    && err.raw_os_error() == Some(libc::ENOENT) =>
            {
                return Ok(Walked::Entry(dup(dir)?, name));
            }
            Err(err) if err.raw_os_error() == Some(libc::ENOTDIR) => {
                return Err(FsError::new(
                    code::NOT_FOUND,
                    libc::ENOTDIR,
                    err.to_string(),
                ));
            }
            Err(err) => return Err(FsError::os(&err)),
        };
        if is_kind(&st, libc::S_IFLNK) {
            links += 1;
            if links > MAX_LINKS {
                return Err(FsError::new(
                    code::OTHER,
                    libc::ELOOP,
                    "too many levels of symbolic links",
                ));
            }
            let target = match read_link_at(dirfd, &name) {
                Ok(target) => target,
                // It stopped being a symlink in between: look again.
                Err(err) if err.raw_os_error() == Some(libc::EINVAL) && retries < MAX_RETRIES => {
                    retries += 1;
                    queue.push_front(name);
                    continue;
                }
                Err(err) => return Err(FsError::os(&err)),
            };
            let rest: &[u8] = if target.starts_with(b"/") {
                let rest = [&ws.given, &ws.real]
                    .into_iter()
                    .find_map(|root| strip_root(&target, root))
                    .ok_or_else(FsError::outside)?;
                stack.truncate(1);
                rest
            } else {
                &target
            };
            for part in rest.split(|&b| b == b'/').rev() {
                queue.push_front(part.to_vec());
            }
            continue;
        }
        let flags = if is_last {
            match last {
                Last::EntryFollow | Last::Entry => return Ok(Walked::Entry(dup(dir)?, name)),
                Last::Open(flags) => flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            }
        } else {
            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC
        };
        match open_at(dirfd, &name, flags) {
            Ok(fd) if is_last => return Ok(Walked::Opened(fd)),
            Ok(fd) => stack.push(fd),
            Err(err) => {
                // A symlink swapped in after the stat fails the no-follow
                // open (ELOOP, or ENOTDIR for a folder): judge it again.
                let swapped = stat_at(dirfd, &name).is_ok_and(|st| is_kind(&st, libc::S_IFLNK));
                if swapped && retries < MAX_RETRIES {
                    retries += 1;
                    queue.push_front(name);
                    continue;
                }
                if !is_last && err.raw_os_error() == Some(libc::ENOTDIR) {
                    return Err(FsError::new(
                        code::NOT_FOUND,
                        libc::ENOTDIR,
                        err.to_string(),
                    ));
                }
                return Err(FsError::os(&err));
            }
        }
    }
    // The path ended on a folder reached through `..` or a symlink to one
    // (or was empty): the workspace or a folder in it.
    let dir = stack.last().ok_or_else(FsError::outside)?;
    match last {
        Last::Open(flags) => open_at(dir.as_raw_fd(), b".", flags | libc::O_CLOEXEC)
            .map(Walked::Opened)
            .map_err(|err| FsError::os(&err)),
        Last::Entry | Last::EntryFollow => Err(FsError::new(
            code::IS_A_DIR,
            libc::EISDIR,
            "the path names the workspace folder itself",
        )),
    }
}

fn walk_open(ws: &Workspace, parts: &[Vec<u8>], flags: libc::c_int) -> Result<OwnedFd> {
    match walk(ws, parts, Last::Open(flags))? {
        Walked::Opened(fd) => Ok(fd),
        Walked::Entry(..) => Err(FsError::new(code::OTHER, libc::EINVAL, "unexpected entry")),
    }
}

fn walk_entry(ws: &Workspace, parts: &[Vec<u8>], last: Last) -> Result<(OwnedFd, Vec<u8>)> {
    match walk(ws, parts, last)? {
        Walked::Entry(dir, name) => Ok((dir, name)),
        Walked::Opened(_) => Err(FsError::new(code::OTHER, libc::EINVAL, "unexpected open")),
    }
}

/// Whether `name` is a write's temporary (`.sandpit-write.` and hex digits
/// or dashes), as `src/engine/files.rs` tells them; listings leave them out.
pub fn is_write_temporary(name: &[u8]) -> bool {
    name.strip_prefix(b".sandpit-write.").is_some_and(|tag| {
        !tag.is_empty()
            && tag
                .iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b) || *b == b'-')
    })
}

/// Removes the write temporaries in `dir` whose writer is gone (its sandbox
/// removed, or its runner killed, mid-write), as the engine path's write
/// does; a failure to look or to remove leaves them (they are never listed).
fn clear_stale_temporaries(dir: &OwnedFd) {
    let Ok(names) = read_names(dir) else {
        return;
    };
    for name in names.iter().filter(|name| is_write_temporary(name)) {
        let tag = &name[b".sandpit-write.".len()..];
        if !writer_alive(tag) {
            let _ = unlink_at(dir, name, 0);
        }
    }
}

/// Whether the writer of a temporary tagged `tag` still runs: a runner's
/// tag is `PID-START-N` (hex; START its start time in clock ticks since
/// boot, so a reused pid does not count), an engine exec's is its
/// `SANDPIT_EXEC_TAG`, alive while a process carries it.
fn writer_alive(tag: &[u8]) -> bool {
    let mut fields = tag.split(|b| *b == b'-').map(|field| {
        std::str::from_utf8(field)
            .ok()
            .and_then(|f| u64::from_str_radix(f, 16).ok())
    });
    if let (Some(Some(pid)), Some(Some(start))) = (fields.next(), fields.next())
        && let Ok(pid) = libc::pid_t::try_from(pid)
        && pid > 0
        && crate::shepherd::start_time(pid) == Some(start)
    {
        return true;
    }
    let wanted = [b"SANDPIT_EXEC_TAG=".as_slice(), tag].concat();
    let Ok(processes) = std::fs::read_dir("/proc") else {
        // Cannot look: keep it.
        return true;
    };
    processes.flatten().any(|process| {
        std::fs::read(process.path().join("environ"))
            .is_ok_and(|environ| environ.split(|b| *b == 0).any(|var| var == wanted))
    })
}

/// Names in a folder (without `.` and `..`).
fn read_names(dir: &OwnedFd) -> Result<Vec<Vec<u8>>> {
    use std::os::unix::ffi::OsStrExt as _;
    // The listing gets its own descriptor: fdopendir takes it over.
    let fd = open_at(
        dir.as_raw_fd(),
        b".",
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
    )
    .map_err(|err| FsError::os(&err))?;
    let raw = std::mem::ManuallyDrop::new(fd).as_raw_fd();
    // SAFETY: `raw` is an open directory descriptor handed to fdopendir.
    let handle = unsafe { libc::fdopendir(raw) };
    if handle.is_null() {
        let err = io::Error::last_os_error();
        // SAFETY: fdopendir failed, so the descriptor is still ours.
        unsafe { libc::close(raw) };
        return Err(FsError::os(&err));
    }
    let mut names = Vec::new();
    loop {
        // SAFETY: `handle` is a valid DIR*; the entry is read before the next call.
        let entry = unsafe { libc::readdir(handle) };
        if entry.is_null() {
            break;
        }
        // SAFETY: d_name is NUL-terminated.
        let name = unsafe { std::ffi::CStr::from_ptr((*entry).d_name.as_ptr()) };
        let name = std::ffi::OsStr::from_bytes(name.to_bytes()).as_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    // SAFETY: closes the DIR* and its descriptor.
    unsafe { libc::closedir(handle) };
    Ok(names)
}

/// Entries of a folder, unsorted, without write temporaries.
pub fn list(ws: &Workspace, path: &[u8]) -> Result<Vec<Entry>> {
    let parts = ws.components(path)?;
    let dir = walk_open(ws, &parts, libc::O_RDONLY | libc::O_DIRECTORY).map_err(|err| {
        if err.errno == libc::ENOTDIR {
            FsError::new(code::NOT_A_DIR, libc::ENOTDIR, "not a folder")
        } else {
            err
        }
    })?;
    let mut entries = Vec::new();
    for name in read_names(&dir)? {
        if is_write_temporary(&name) {
            continue;
        }
        // Gone in between: not listed.
        let Ok(st) = stat_at(dir.as_raw_fd(), &name) else {
            continue;
        };
        let kind = match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => entry_kind::FILE,
            libc::S_IFDIR => entry_kind::DIR,
            libc::S_IFLNK => entry_kind::SYMLINK,
            _ => entry_kind::OTHER,
        };
        entries.push(Entry {
            name,
            kind,
            size: st.st_size as u64,
            mode: st.st_mode,
            mtime_ns: st
                .st_mtime
                .saturating_mul(1_000_000_000)
                .saturating_add(st.st_mtime_nsec),
        });
    }
    Ok(entries)
}

/// A file's bytes and its size when opened. Errors: over `cap` (code
/// `TOO_LARGE`, message the size), not a regular file (`IS_A_DIR`).
pub fn read(ws: &Workspace, path: &[u8], cap: u64) -> Result<(Vec<u8>, u64)> {
    let parts = ws.components(path)?;
    // O_NONBLOCK: opening a FIFO must not hang the runner.
    let fd = walk_open(
        ws,
        &parts,
        libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY,
    )?;
    let st = fstat(fd.as_raw_fd()).map_err(|err| FsError::os(&err))?;
    if !is_kind(&st, libc::S_IFREG) {
        return Err(FsError::new(
            code::IS_A_DIR,
            libc::EISDIR,
            "not a regular file",
        ));
    }
    let size = st.st_size as u64;
    if size > cap {
        return Err(FsError::new(code::TOO_LARGE, libc::EFBIG, size.to_string()));
    }
    let mut data = Vec::with_capacity(size as usize);
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = sys::read(fd.as_raw_fd(), &mut buf).map_err(|err| FsError::os(&err))?;
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
        if data.len() as u64 > cap {
            return Err(FsError::new(
                code::OTHER,
                libc::EFBIG,
                "the file grew past the read limit while it was read",
            ));
        }
    }
    Ok((data, size))
}

/// A write in progress: a temporary beside the file, renamed over it once
/// every byte arrived; removed if dropped before.
pub struct PendingWrite {
    dir: OwnedFd,
    name: CString,
    temp: CString,
    file: Option<OwnedFd>,
    pub size: u64,
    pub written: u64,
}

impl Drop for PendingWrite {
    fn drop(&mut self) {
        if self.file.is_some() {
            // SAFETY: valid descriptor and C string.
            unsafe { libc::unlinkat(self.dir.as_raw_fd(), self.temp.as_ptr(), 0) };
        }
    }
}

impl PendingWrite {
    /// Appends bytes; `Ok(true)` once the file is complete and in place.
    pub fn push(&mut self, data: &[u8]) -> Result<bool> {
        if self.written + data.len() as u64 > self.size {
            return Err(FsError::new(
                code::OTHER,
                libc::EFBIG,
                "more bytes arrived than the write announced",
            ));
        }
        let fd = self.file.as_ref().map(AsRawFd::as_raw_fd).unwrap_or(-1);
        sys::write_all(fd, data).map_err(|err| FsError::os(&err))?;
        self.written += data.len() as u64;
        if self.written < self.size {
            return Ok(false);
        }
        // SAFETY: valid descriptors and C strings.
        let renamed = sys::cvt(unsafe {
            libc::renameat(
                self.dir.as_raw_fd(),
                self.temp.as_ptr(),
                self.dir.as_raw_fd(),
                self.name.as_ptr(),
            )
        });
        renamed.map_err(|err| FsError::os(&err))?;
        self.file = None;
        Ok(true)
    }
}

static WRITE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Starts writing a file of `size` bytes, creating its parents. Errors: the
/// path is a folder (`IS_A_DIR`), or resolves outside.
pub fn write_begin(ws: &Workspace, path: &[u8], size: u64) -> Result<PendingWrite> {
    let parts = ws.components(path)?;
    let Some((_, parents)) = parts.split_last() else {
        return Err(FsError::new(
            code::IS_A_DIR,
            libc::EISDIR,
            "the path is the workspace folder",
        ));
    };
    mkdir_parts(ws, parents)?;
    let (dir, name) = walk_entry(ws, &parts, Last::EntryFollow)?;
    if stat_at(dir.as_raw_fd(), &name).is_ok_and(|st| is_kind(&st, libc::S_IFDIR)) {
        return Err(FsError::new(code::IS_A_DIR, libc::EISDIR, "it is a folder"));
    }
    clear_stale_temporaries(&dir);
    // The writer's pid and start time name it, so a later write can tell a
    // leftover (its writer gone) from a write in progress.
    let pid = sys::getpid();
    let started = crate::shepherd::start_time(pid).unwrap_or(0);
    let temp = format!(
        ".sandpit-write.{pid:x}-{started:x}-{:x}",
        WRITE_COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let file = open_at(
        dir.as_raw_fd(),
        temp.as_bytes(),
        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
    )
    .map_err(|err| FsError::os(&err))?;
    let to_c = |bytes: &[u8]| sys::cstring(bytes).map_err(|err| FsError::os(&err));
    Ok(PendingWrite {
        name: to_c(&name)?,
        temp: to_c(temp.as_bytes())?,
        dir,
        file: Some(file),
        size,
        written: 0,
    })
}

/// Makes a folder and its missing parents; an existing folder is fine.
pub fn mkdir(ws: &Workspace, path: &[u8]) -> Result<()> {
    let parts = ws.components(path)?;
    mkdir_parts(ws, &parts)
}

fn mkdir_parts(ws: &Workspace, parts: &[Vec<u8>]) -> Result<()> {
    for end in 1..=parts.len() {
        let (dir, name) = walk_entry(ws, &parts[..end], Last::EntryFollow)?;
        let name_c = sys::cstring(&name).map_err(|err| FsError::os(&err))?;
        // SAFETY: valid descriptor and C string.
        let made = unsafe { libc::mkdirat(dir.as_raw_fd(), name_c.as_ptr(), 0o777) };
        if made == 0 {
            continue;
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EEXIST) {
            return Err(FsError::os(&err));
        }
        if !stat_at(dir.as_raw_fd(), &name).is_ok_and(|st| is_kind(&st, libc::S_IFDIR)) {
            return Err(FsError::new(
                code::OTHER,
                libc::ENOTDIR,
                "a part of the path is not a folder",
            ));
        }
    }
    Ok(())
}

/// Renames an entry (a symlink itself), never replacing one; parents of
/// `to` are made. Errors name the path they are about: `OUTSIDE_SECOND`
/// for `to`.
pub fn rename(ws: &Workspace, from: &[u8], to: &[u8]) -> Result<()> {
    let from_parts = ws.components(from)?;
    let to_parts = ws.components(to).map_err(FsError::second)?;
    if from_parts.is_empty() || to_parts.is_empty() {
        return Err(FsError::new(
            code::OTHER,
            libc::EBUSY,
            "the workspace folder itself cannot be renamed",
        ));
    }
    let (from_dir, from_name) = walk_entry(ws, &from_parts, Last::Entry)?;
    stat_at(from_dir.as_raw_fd(), &from_name).map_err(|err| FsError::os(&err))?;
    let to_entry = match walk_entry(ws, &to_parts, Last::Entry) {
        Err(err) if err.code == code::NOT_FOUND => {
            mkdir_parts(ws, &to_parts[..to_parts.len() - 1]).map_err(FsError::second)?;
            walk_entry(ws, &to_parts, Last::Entry)
        }
        other => other,
    };
    let (to_dir, to_name) = to_entry.map_err(FsError::second)?;
    let exists = || FsError::new(code::EXISTS, libc::EEXIST, "the destination exists already");
    if stat_at(to_dir.as_raw_fd(), &to_name).is_ok() {
        return Err(exists());
    }
    let to_c = |bytes: &[u8]| sys::cstring(bytes).map_err(|err| FsError::os(&err));
    let (from_c, to_c) = (to_c(&from_name)?, to_c(&to_name)?);
    const RENAME_NOREPLACE: libc::c_uint = 1;
    // SAFETY: valid descriptors and C strings.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            from_dir.as_raw_fd(),
            from_c.as_ptr(),
            to_dir.as_raw_fd(),
            to_c.as_ptr(),
            RENAME_NOREPLACE,
        )
    };
    if ret == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EEXIST) => Err(exists()),
        // Filesystems without RENAME_NOREPLACE, or a seccomp profile that
        // refuses renameat2 (EPERM): the check above stands.
        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EPERM) => {
            // SAFETY: as above.
            sys::cvt(unsafe {
                libc::renameat(
                    from_dir.as_raw_fd(),
                    from_c.as_ptr(),
                    to_dir.as_raw_fd(),
                    to_c.as_ptr(),
                )
            })
            .map(drop)
            .map_err(|err| FsError::os(&err))
        }
        _ => Err(FsError::os(&err)),
    }
}

/// Deletes an entry (a symlink itself); a folder with its contents when
/// `recursive`, else only when empty.
pub fn delete(ws: &Workspace, path: &[u8], recursive: bool) -> Result<()> {
    let parts = ws.components(path)?;
    if parts.is_empty() {
        return Err(FsError::new(
            code::OTHER,
            libc::EBUSY,
            "the workspace folder itself cannot be deleted",
        ));
    }
    let (dir, name) = walk_entry(ws, &parts, Last::Entry)?;
    let st = stat_at(dir.as_raw_fd(), &name).map_err(|err| FsError::os(&err))?;
    if is_kind(&st, libc::S_IFDIR) && recursive {
        remove_tree(&dir, &name)
    } else {
        let flags = if is_kind(&st, libc::S_IFDIR) {
            libc::AT_REMOVEDIR
        } else {
            0
        };
        unlink_at(&dir, &name, flags)
    }
}

fn unlink_at(dir: &OwnedFd, name: &[u8], flags: libc::c_int) -> Result<()> {
    let name = sys::cstring(name).map_err(|err| FsError::os(&err))?;
    // SAFETY: valid descriptor and C string.
    sys::cvt(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) })
        .map(drop)
        .map_err(|err| FsError::os(&err))
}

/// Removes a folder's contents, then the folder; every folder is opened
/// with `O_NOFOLLOW` relative to its parent, so a symlink swapped in is
/// removed itself, never followed.
fn remove_tree(dir: &OwnedFd, name: &[u8]) -> Result<()> {
    let sub = match open_at(
        dir.as_raw_fd(),
        name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
    ) {
        Ok(sub) => sub,
        Err(err) if matches!(err.raw_os_error(), Some(libc::ENOTDIR) | Some(libc::ELOOP)) => {
            return unlink_at(dir, name, 0);
        }
        Err(err) => return Err(FsError::os(&err)),
    };
    for child in read_names(&sub)? {
        match stat_at(sub.as_raw_fd(), &child) {
            Ok(st) if is_kind(&st, libc::S_IFDIR) => remove_tree(&sub, &child)?,
            Ok(_) => unlink_at(&sub, &child, 0)?,
            Err(_) => {}
        }
    }
    unlink_at(dir, name, libc::AT_REMOVEDIR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "sandpit-fsops-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Runs `check` with the openat2 fast path and with the walk alone.
    fn both_ways(check: impl Fn()) {
        for walk in [false, true] {
            FORCE_WALK.with(|f| f.set(walk));
            check();
        }
        FORCE_WALK.with(|f| f.set(false));
    }

    #[test]
    fn links_inside_are_followed_and_links_out_refused() {
        let ws_dir = dir("links");
        let outside = dir("links-out");
        std::fs::write(outside.join("secret"), "secret").unwrap();
        std::fs::create_dir(ws_dir.join("d")).unwrap();
        std::fs::write(ws_dir.join("d/f"), "inside").unwrap();
        symlink(ws_dir.join("d"), ws_dir.join("abs")).unwrap();
        symlink("d", ws_dir.join("rel")).unwrap();
        symlink("d/../../..", ws_dir.join("up")).unwrap();
        symlink(&outside, ws_dir.join("out")).unwrap();
        symlink("/proc/self/root/etc", ws_dir.join("magic")).unwrap();
        symlink("loop2", ws_dir.join("loop1")).unwrap();
        symlink("loop1", ws_dir.join("loop2")).unwrap();
        let ws = Workspace::at(&ws_dir);
        both_ways(|| {
            for path in [
                "d/f",
                "abs/f",
                "rel/f",
                "rel/../d/f",
                &format!("{}/d/f", ws_dir.display()),
            ] {
                let (data, _) = read(&ws, path.as_bytes(), 100).unwrap();
                assert_eq!(data, b"inside", "{path}");
            }
            for path in [
                "up/etc/passwd",
                "out/secret",
                "magic/passwd",
                "../x",
                "/etc/passwd",
            ] {
                let err = read(&ws, path.as_bytes(), 100_000).unwrap_err();
                assert_eq!(err.code, code::OUTSIDE, "{path}: {err:?}");
            }
            assert_eq!(read(&ws, b"loop1", 10).unwrap_err().errno, libc::ELOOP);
            assert_eq!(read(&ws, b"nope", 10).unwrap_err().code, code::NOT_FOUND);
            assert_eq!(list(&ws, b"out").unwrap_err().code, code::OUTSIDE);
            assert_eq!(list(&ws, b"d/f").unwrap_err().code, code::NOT_A_DIR);
        });
        // Writes through a link out are refused and leave nothing outside.
        let err = write_begin(&ws, b"out/planted", 1).map(drop).unwrap_err();
        assert_eq!(err.code, code::OUTSIDE);
        assert!(!outside.join("planted").exists());
        assert_eq!(mkdir(&ws, b"out/x").unwrap_err().code, code::OUTSIDE);
        assert_eq!(
            rename(&ws, b"d/f", b"out/f").unwrap_err().code,
            code::OUTSIDE_SECOND
        );
        assert_eq!(
            rename(&ws, b"out/secret", b"s").unwrap_err().code,
            code::OUTSIDE
        );
        // The link itself is an entry of the workspace: renamed, deleted.
        rename(&ws, b"out", b"out2").unwrap();
        delete(&ws, b"out2", true).unwrap();
        assert!(outside.join("secret").exists());
    }

    #[test]
    fn a_write_replaces_the_file_whole_and_a_dropped_one_leaves_nothing() {
        let ws_dir = dir("write");
        let ws = Workspace::at(&ws_dir);
        std::fs::write(ws_dir.join("f"), "old").unwrap();
        let mut pending = write_begin(&ws, b"f", 6).unwrap();
        assert!(!pending.push(b"new").unwrap());
        assert_eq!(std::fs::read(ws_dir.join("f")).unwrap(), b"old");
        drop(pending);
        assert_eq!(std::fs::read(ws_dir.join("f")).unwrap(), b"old");
        let names: Vec<_> = std::fs::read_dir(&ws_dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 1, "a temporary was left: {names:?}");
        let mut pending = write_begin(&ws, b"a/b/f", 3).unwrap();
        assert!(pending.push(b"abc").unwrap());
        assert_eq!(std::fs::read(ws_dir.join("a/b/f")).unwrap(), b"abc");
        assert!(pending.push(b"x").is_err(), "more bytes than announced");
        assert_eq!(
            write_begin(&ws, b"a", 1).map(drop).unwrap_err().code,
            code::IS_A_DIR
        );
    }

    #[test]
    fn the_walk_never_follows_a_link_swapped_in_to_the_outside() {
        let ws_dir = dir("swap");
        let outside = dir("swap-out");
        std::fs::write(outside.join("f"), "OUTSIDE").unwrap();
        std::fs::create_dir(ws_dir.join("real")).unwrap();
        std::fs::write(ws_dir.join("real/f"), "inside").unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let swapper = {
            let (ws_dir, outside, stop) = (ws_dir.clone(), outside.clone(), stop.clone());
            std::thread::spawn(move || {
                let link = ws_dir.join("d");
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = std::fs::remove_file(&link);
                    let _ = symlink(ws_dir.join("real"), &link);
                    let _ = std::fs::remove_file(&link);
                    let _ = symlink(&outside, &link);
                    let _ = std::fs::remove_file(&link);
                    let _ = std::fs::create_dir(&link);
                    let _ = std::fs::remove_dir(&link);
                }
            })
        };
        let ws = Workspace::at(&ws_dir);
        FORCE_WALK.with(|f| f.set(true));
        for _ in 0..2000 {
            if let Ok((data, _)) = read(&ws, b"d/f", 100) {
                assert_eq!(data, b"inside", "read outside the workspace");
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        swapper.join().unwrap();
    }
}
