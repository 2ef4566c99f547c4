//! One shepherd process per command. The runner forks it; it becomes a
//! child subreaper (`PR_SET_CHILD_SUBREAPER`) and forks the command. Every
//! process of the command's tree is then a descendant of the shepherd, and
//! stays one whatever it does (`setsid`, double fork, a scrubbed environment,
//! another process group): an orphan is re-parented to the nearest
//! subreaper, i.e. the shepherd. So the tree is "the shepherd's
//! descendants", which nothing in the tree can forge, and "the shepherd has
//! no child left" (`waitpid` says ECHILD) proves the whole tree is gone.
//!
//! The shepherd enforces the command's deadline itself, so it holds even if
//! the runner's main process dies; and it kills the tree when the runner
//! goes away (its control pipe reaches EOF) or asks it to.
//!
//! Control pipe (runner → shepherd): one byte per request, [`KILL_CANCEL`] or
//! [`KILL_CAP`]; EOF means the runner (or the command's client) is gone.
//! Status pipe (shepherd → runner): fixed-size messages, see [`Status`].

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crate::sys;

/// Control byte: kill the tree, the command was cancelled.
pub const KILL_CANCEL: u8 = b'c';
/// Control byte: kill the tree, an output stream passed its cap.
pub const KILL_CAP: u8 = b't';

/// How long a kill may take before the shepherd gives up and reports the
/// processes still alive.
pub const KILL_DEADLINE: Duration = Duration::from_secs(5);

/// Buffer size asked for a command's output pipes.
const PIPE_SIZE: libc::c_int = 1 << 20;

/// Why a command ended, as its final status says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Exited = 0,
    Timeout = 1,
    Cancel = 2,
    Cap = 3,
    /// The runner or the client went away.
    Gone = 4,
}

impl Reason {
    fn from_u8(byte: u8) -> Option<Reason> {
        Some(match byte {
            0 => Reason::Exited,
            1 => Reason::Timeout,
            2 => Reason::Cancel,
            3 => Reason::Cap,
            4 => Reason::Gone,
            _ => return None,
        })
    }
}

/// A message on the status pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `P` + pid (u32 LE): the command was forked.
    Forked(u32),
    /// `F` + errno (i32 LE): the command could not be forked.
    ForkFailed(i32),
    /// `X` + reason (u8) + wait status (i32 LE) + killed_verified (u8) +
    /// survivors (u32 LE) + leftovers (u8): the command's main process
    /// ended (or the tree was killed). `leftovers`: processes of the tree
    /// still run (the shepherd lingers to kill them at the deadline or when
    /// its control pipe closes).
    Ended {
        reason: Reason,
        wait_status: i32,
        killed_verified: bool,
        survivors: u32,
        leftovers: bool,
    },
}

const ENDED_LEN: usize = 12;

impl Status {
    fn encode(self) -> Vec<u8> {
        match self {
            Status::Forked(pid) => [&[b'P'][..], &pid.to_le_bytes()].concat(),
            Status::ForkFailed(errno) => [&[b'F'][..], &errno.to_le_bytes()].concat(),
            Status::Ended {
                reason,
                wait_status,
                killed_verified,
                survivors,
                leftovers,
            } => [
                &[b'X', reason as u8][..],
                &wait_status.to_le_bytes(),
                &[u8::from(killed_verified)],
                &survivors.to_le_bytes(),
                &[u8::from(leftovers)],
            ]
            .concat(),
        }
    }

    /// Takes one message from the front of `buf`, if a whole one is there.
    /// Errors: a byte that starts no message.
    pub fn take(buf: &mut Vec<u8>) -> Result<Option<Status>, ()> {
        let Some(&tag) = buf.first() else {
            return Ok(None);
        };
        let need = match tag {
            b'P' | b'F' => 5,
            b'X' => ENDED_LEN,
            _ => return Err(()),
        };
        if buf.len() < need {
            return Ok(None);
        }
        let word = |at: usize| [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
        let status = match tag {
            b'P' => Status::Forked(u32::from_le_bytes(word(1))),
            b'F' => Status::ForkFailed(i32::from_le_bytes(word(1))),
            _ => Status::Ended {
                reason: Reason::from_u8(buf[1]).ok_or(())?,
                wait_status: i32::from_le_bytes(word(2)),
                killed_verified: buf[6] == 1,
                survivors: u32::from_le_bytes(word(7)),
                leftovers: buf[11] == 1,
            },
        };
        buf.drain(..need);
        Ok(Some(status))
    }
}

/// What to run; everything already checked and converted by the runner.
pub struct Spec {
    pub argv: Vec<Vec<u8>>,
    /// `KEY=VALUE` entries, complete.
    pub env: Vec<Vec<u8>>,
    /// Empty: the runner's own.
    pub cwd: Vec<u8>,
    pub stdin: bool,
    pub timeout: Option<Duration>,
}

/// The runner's ends of a started shepherd, all non-blocking.
pub struct Spawned {
    pub shepherd_pid: libc::pid_t,
    pub ctl: OwnedFd,
    pub status: OwnedFd,
    pub stdin: Option<OwnedFd>,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// Forks a shepherd that runs `spec`. Errors: pipes or the fork failed (e.g.
/// the pids limit is full); nothing is left behind then.
pub fn spawn(spec: &Spec) -> io::Result<Spawned> {
    let (ctl_r, ctl_w) = sys::pipe()?;
    let (status_r, status_w) = sys::pipe()?;
    let (out_r, out_w) = sys::pipe()?;
    let (err_r, err_w) = sys::pipe()?;
    let stdin = if spec.stdin { Some(sys::pipe()?) } else { None };
    for fd in [&out_r, &err_r] {
        sys::grow_pipe(fd.as_raw_fd(), PIPE_SIZE);
    }
    let pid = sys::fork()?;
    if pid == 0 {
        let stdin_r = stdin.as_ref().map(|(r, _)| r.as_raw_fd());
        shepherd(
            spec,
            ctl_r.as_raw_fd(),
            status_w.as_raw_fd(),
            stdin_r,
            out_w.as_raw_fd(),
            err_w.as_raw_fd(),
        );
    }
    let stdin = stdin.map(|(_, w)| w);
    for fd in [&ctl_w, &status_r, &out_r, &err_r]
        .into_iter()
        .chain(stdin.as_ref())
    {
        sys::set_nonblocking(fd.as_raw_fd(), true)?;
    }
    Ok(Spawned {
        shepherd_pid: pid,
        ctl: ctl_w,
        status: status_r,
        stdin,
        stdout: out_r,
        stderr: err_r,
    })
}

/// The shepherd's life; never returns.
fn shepherd(
    spec: &Spec,
    ctl: RawFd,
    status: RawFd,
    stdin: Option<RawFd>,
    stdout: RawFd,
    stderr: RawFd,
) -> ! {
    let started = Instant::now();
    let deadline = spec.timeout.map(|t| started + t);
    let report = |s: Status| {
        // Nobody left to tell is no reason to stop shepherding.
        let _ = sys::write_all(status, &s.encode());
    };
    sys::set_name(c"sandpit-shep");
    let mut keep = vec![ctl, status, stdout, stderr];
    keep.extend(stdin);
    sys::close_all_but(&keep);
    sys::stdio_to_devnull();
    // Without it (gVisor releases before 2023 answer EINVAL) orphans of
    // the tree go to init: the shepherd kills what it can still reach and
    // never reports that kill as verified.
    let subreaper = sys::set_child_subreaper().is_ok();
    // Only needed without subreaper rights; a few syscalls saved per command.
    let since = if subreaper {
        0
    } else {
        start_time(sys::getpid()).unwrap_or(0)
    };
    let sigchld = match SigChld::new() {
        Ok(s) => s,
        Err(err) => {
            report(Status::ForkFailed(sys::errno_of(&err)));
            sys::exit_now(1);
        }
    };
    let child = match sys::fork() {
        Ok(0) => exec_command(spec, stdin, stdout, stderr),
        Ok(pid) => pid,
        Err(err) => {
            report(Status::ForkFailed(sys::errno_of(&err)));
            sys::exit_now(1);
        }
    };
    for fd in [Some(stdout), Some(stderr), stdin].into_iter().flatten() {
        // SAFETY: the command has its copies; the shepherd's must go so the
        // runner sees EOF when the command's tree closes them.
        unsafe { libc::close(fd) };
    }
    report(Status::Forked(child as u32));
    let _ = sys::set_nonblocking(ctl, true);

    let mut main_status: Option<i32> = None;
    let mut reported = false;
    loop {
        let mut fds = [
            sys::pollfd(ctl, libc::POLLIN),
            sys::pollfd(sigchld.fd.as_raw_fd(), libc::POLLIN),
        ];
        let _ = sys::poll(&mut fds, deadline.map(sys::until));
        sigchld.drain();
        let no_children = reap(child, &mut main_status);
        let mut kill: Option<Reason> = None;
        if fds[0].revents != 0 {
            let mut byte = [0u8; 1];
            match sys::read(ctl, &mut byte) {
                Ok(0) => kill = Some(Reason::Gone),
                Ok(_) if byte[0] == KILL_CANCEL => kill = Some(Reason::Cancel),
                Ok(_) if byte[0] == KILL_CAP => kill = Some(Reason::Cap),
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => kill = Some(Reason::Gone),
            }
        }
        if kill.is_none() && deadline.is_some_and(|d| Instant::now() >= d) {
            kill = Some(Reason::Timeout);
        }
        if reported {
            // The command ended; only leftovers of its tree remain.
            if no_children {
                sys::exit_now(0);
            }
            if kill.is_some() {
                let _ = kill_tree(child, &mut main_status, &sigchld, subreaper, since);
                sys::exit_now(0);
            }
            continue;
        }
        if let Some(reason) = kill {
            // The main process may have ended in the same instant: then it
            // ended on its own, and only its leftovers are killed.
            let (reason, killed) = match main_status {
                Some(_) => (
                    Reason::Exited,
                    kill_tree(child, &mut main_status, &sigchld, subreaper, since),
                ),
                None => (
                    reason,
                    kill_tree(child, &mut main_status, &sigchld, subreaper, since),
                ),
            };
            report(Status::Ended {
                reason,
                wait_status: main_status.unwrap_or(libc::SIGKILL),
                killed_verified: killed.0,
                survivors: killed.1,
                leftovers: false,
            });
            sys::exit_now(0);
        }
        if let Some(wait_status) = main_status {
            report(Status::Ended {
                reason: Reason::Exited,
                wait_status,
                killed_verified: false,
                survivors: 0,
                leftovers: !no_children,
            });
            if no_children {
                sys::exit_now(0);
            }
            reported = true;
        }
    }
}

/// Reaps every child that ended, noting the main one's status. True when
/// the shepherd has no child left at all.
fn reap(child: libc::pid_t, main_status: &mut Option<i32>) -> bool {
    loop {
        match sys::wait_nohang(-1) {
            Ok(Some((pid, status))) => {
                if pid == child {
                    *main_status = Some(status);
                }
            }
            Ok(None) => return false,
            Err(err) => return err.raw_os_error() == Some(libc::ECHILD),
        }
    }
}

/// Kills the whole tree: every descendant, in rounds (each kill orphans
/// the victim's children onto the shepherd), reaping as it goes, until the
/// shepherd has no child left (verified) or [`KILL_DEADLINE`] passes.
/// Returns (verified, processes still alive).
///
/// Without subreaper rights the tree is what the parent links still reach;
/// the kill is never verified, and the survivors counted are the processes
/// orphaned to init since the command started (they may have escaped it).
fn kill_tree(
    child: libc::pid_t,
    main_status: &mut Option<i32>,
    sigchld: &SigChld,
    subreaper: bool,
    since: u64,
) -> (bool, u32) {
    let me = sys::getpid();
    let give_up = Instant::now() + KILL_DEADLINE;
    loop {
        if reap(child, main_status) && subreaper {
            return (true, 0);
        }
        if !subreaper
            && main_status.is_some()
            && descendants(me).is_none_or(|tree| tree.pids.is_empty())
        {
            return (false, orphans_since(since));
        }
        let tree = descendants(me);
        match &tree {
            Some(tree) => {
                for &pid in &tree.pids {
                    kill_member(pid, &tree.members);
                }
            }
            // No /proc: the main process at least; its orphans come back
            // to the shepherd and are its children, but their pids are
            // unknown without /proc, so only the overall deadline helps.
            None => {
                if main_status.is_none() {
                    let _ = sys::kill(child, libc::SIGKILL);
                }
            }
        }
        if Instant::now() >= give_up {
            let left = tree.map_or(1, |t| t.pids.len().max(1));
            return (false, u32::try_from(left).unwrap_or(u32::MAX));
        }
        let mut fds = [sys::pollfd(sigchld.fd.as_raw_fd(), libc::POLLIN)];
        let _ = sys::poll(&mut fds, Some(Duration::from_millis(5)));
        sigchld.drain();
    }
}

/// The pids in /proc now; `None` when /proc cannot be read.
pub(crate) fn pids() -> Option<impl Iterator<Item = libc::pid_t>> {
    Some(
        std::fs::read_dir("/proc")
            .ok()?
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse().ok()),
    )
}

/// Processes orphaned to init (parent 1) that started at or after `since`
/// (clock ticks since boot), other than the runner's own.
fn orphans_since(since: u64) -> u32 {
    let Some(pids) = pids() else {
        return 0;
    };
    let mut count = 0u32;
    for pid in pids {
        let Some(stat) = read_stat(pid) else { continue };
        if pid != 1 && stat.ppid == 1 && stat.start >= since && !stat.comm.starts_with(b"sandpit-")
        {
            count = count.saturating_add(1);
        }
    }
    count
}

struct Stat {
    comm: Vec<u8>,
    ppid: libc::pid_t,
    /// Clock ticks since boot.
    start: u64,
}

/// Fields of `/proc/<pid>/stat`; the name (in parentheses) may hold
/// anything, so the rest is read after its last `)`.
fn read_stat(pid: libc::pid_t) -> Option<Stat> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.iter().position(|&b| b == b'(')?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    let comm = stat.get(open + 1..close)?.to_vec();
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // After the name: state (field 3), ppid (4), ..., starttime (22).
    Some(Stat {
        comm,
        ppid: fields.get(1)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

pub(crate) fn start_time(pid: libc::pid_t) -> Option<u64> {
    read_stat(pid).map(|stat| stat.start)
}

/// SIGKILLs `pid` if it still is a member of the tree. With a pidfd, the
/// check and the kill are about the same process even if `pid` is reused
/// in between.
fn kill_member(pid: libc::pid_t, members: &HashSet<libc::pid_t>) {
    match sys::pidfd_open(pid) {
        Ok(pidfd) => {
            if parent_of(pid).is_some_and(|ppid| members.contains(&ppid)) {
                let _ = sys::pidfd_send_signal(&pidfd, libc::SIGKILL);
            }
        }
        Err(err) if err.raw_os_error() == Some(libc::ESRCH) => {}
        Err(_) => {
            if parent_of(pid).is_some_and(|ppid| members.contains(&ppid)) {
                let _ = sys::kill(pid, libc::SIGKILL);
            }
        }
    }
}

struct Tree {
    /// Descendants of the shepherd.
    pids: Vec<libc::pid_t>,
    /// The shepherd and its descendants.
    members: HashSet<libc::pid_t>,
}

/// Every descendant of `root`, from the parent links in /proc. `None` when
/// /proc cannot be read.
fn descendants(root: libc::pid_t) -> Option<Tree> {
    let mut children: HashMap<libc::pid_t, Vec<libc::pid_t>> = HashMap::new();
    for pid in pids()? {
        if let Some(ppid) = parent_of(pid) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut pids = Vec::new();
    let mut members = HashSet::from([root]);
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        for &kid in children.get(&pid).map(Vec::as_slice).unwrap_or_default() {
            if members.insert(kid) {
                pids.push(kid);
                queue.push(kid);
            }
        }
    }
    Some(Tree { pids, members })
}

/// The parent pid from `/proc/<pid>/stat` (after the last `)`: the name may
/// hold anything).
pub fn parent_of(pid: libc::pid_t) -> Option<libc::pid_t> {
    read_stat(pid).map(|stat| stat.ppid)
}

/// SIGCHLD as a readable descriptor (signalfd), so the shepherd's one poll
/// wakes on a child's end, on its control pipe and on its deadline.
struct SigChld {
    fd: OwnedFd,
}

impl SigChld {
    fn new() -> io::Result<SigChld> {
        // SAFETY: sigset manipulation on a local, then sigprocmask and
        // signalfd with valid pointers.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGCHLD);
            sys::cvt(libc::sigprocmask(
                libc::SIG_BLOCK,
                &set,
                std::ptr::null_mut(),
            ))?;
            let fd = sys::cvt(libc::signalfd(
                -1,
                &set,
                libc::SFD_CLOEXEC | libc::SFD_NONBLOCK,
            ))?;
            Ok(SigChld {
                fd: OwnedFd::from_raw_fd(fd),
            })
        }
    }

    fn drain(&self) {
        let mut buf = [0u8; 128 * 8];
        while matches!(sys::read(self.fd.as_raw_fd(), &mut buf), Ok(n) if n > 0) {}
    }
}

/// The command's side of the fork: stdio, work dir, environment, then
/// `exec` with a `PATH` lookup as `execvp` does. On failure: a message on
/// the command's stderr and exit 127 (not found) or 126 (found but not
/// runnable, or the work dir is missing), as the engine reports them.
fn exec_command(spec: &Spec, stdin: Option<RawFd>, stdout: RawFd, stderr: RawFd) -> ! {
    // SAFETY: plain syscalls on descriptors and a local signal set, in the
    // single-threaded child.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        // Rust ignores SIGPIPE; an ignored signal stays ignored across exec,
        // and `yes | head` must end.
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        let stdin = stdin.unwrap_or(null);
        libc::dup2(stdin, 0);
        libc::dup2(stdout, 1);
        libc::dup2(stderr, 2);
    }
    let fail = |code: i32, what: &[u8], err: &io::Error| -> ! {
        let mut msg = b"sandpit-runner: ".to_vec();
        msg.extend_from_slice(what);
        msg.extend_from_slice(format!(": {err}\n").as_bytes());
        let _ = sys::write_all(2, &msg);
        sys::exit_now(code)
    };
    if !spec.cwd.is_empty() {
        let chdir = sys::cstring(&spec.cwd)
            // SAFETY: a valid C string.
            .and_then(|dir| sys::cvt(unsafe { libc::chdir(dir.as_ptr()) }));
        if let Err(err) = chdir {
            fail(126, &[b"chdir to ", &spec.cwd[..]].concat(), &err);
        }
    }
    let Some(program) = spec.argv.first() else {
        fail(127, b"exec", &io::Error::from_raw_os_error(libc::ENOENT));
    };
    let to_c = |list: &[Vec<u8>]| -> io::Result<Vec<std::ffi::CString>> {
        list.iter().map(|item| sys::cstring(item)).collect()
    };
    let (argv, env) = match (to_c(&spec.argv), to_c(&spec.env)) {
        (Ok(argv), Ok(env)) => (argv, env),
        (Err(err), _) | (_, Err(err)) => fail(126, program, &err),
    };
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut env_ptrs: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    env_ptrs.push(std::ptr::null());
    let exec = |path: &[u8]| -> io::Error {
        match sys::cstring(path) {
            // SAFETY: NULL-terminated arrays of valid C strings that outlive the call.
            Ok(path) => unsafe {
                libc::execve(path.as_ptr(), argv_ptrs.as_ptr(), env_ptrs.as_ptr());
                io::Error::last_os_error()
            },
            Err(err) => err,
        }
    };
    if program.contains(&b'/') {
        let err = exec(program);
        let code = if err.raw_os_error() == Some(libc::ENOENT) {
            127
        } else {
            126
        };
        fail(code, program, &err);
    }
    let path = spec
        .env
        .iter()
        .find_map(|entry| entry.strip_prefix(b"PATH="))
        .unwrap_or(b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let mut denied: Option<io::Error> = None;
    for dir in path.split(|&b| b == b':') {
        let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
        let candidate = [dir, b"/", program].concat();
        let err = exec(&candidate);
        match err.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ESTALE) | Some(libc::ELOOP) => {}
            Some(libc::EACCES) => denied = Some(err),
            _ => fail(126, program, &err),
        }
    }
    match denied {
        Some(err) => fail(126, program, &err),
        None => fail(
            127,
            program,
            &io::Error::other("executable file not found in $PATH"),
        ),
    }
}
