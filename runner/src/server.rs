//! The runner's event loop: one thread, one `poll`, many connections and
//! commands. Used by `serve` directly (one connection: its stdin/stdout)
//! and by the background daemon (connections handed over by `serve`
//! processes, plus background commands that outlive them).
//!
//! Memory stays bounded: a connection's pending output over
//! [`OUT_HIGH_WATER`] stops reading its commands' output (they block on
//! their pipes) and its own input; a command's pending stdin over
//! [`STDIN_HIGH_WATER`] stops reading its connection's input. That is the
//! flow control of stdin, as a pipe gives: the host's writes block. Frames
//! behind it on the connection (a `Cancel` too) then wait until the command
//! reads, ends or meets its deadline; a client that goes away is still seen
//! at once (POLLHUP), and its commands killed.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crate::fsops::{self, FsError, PendingWrite, Workspace};
use crate::proto::{self, Bg, ClientFrame, Decoder, Exit, RunnerFrame, code};
use crate::shepherd::{self, Reason, Spawned, Status};
use crate::sys;

const OUT_HIGH_WATER: usize = 4 << 20;
/// Buffer size asked for a connection's output pipe: about a whole
/// `Output` frame (1 MiB is the unprivileged maximum by default).
const CONN_PIPE_SIZE: libc::c_int = 1 << 20;
const STDIN_HIGH_WATER: usize = 16 << 20;
/// Bytes read from a pipe or connection at a time: a whole grown pipe, and
/// at most one frame's data.
const READ_CHUNK: usize = proto::MAX_CHUNK;
/// Output a command's pipe must hold for the runner to splice it rather
/// than read it: a small write stays one frame written at once.
const SPLICE_MIN: usize = 16 << 10;
/// Bytes kept per stream of a background command.
pub const RING_SIZE: usize = 1 << 20;
/// Reads of a stream once its command ended: what the pipe held when the
/// main process ended, not what leftovers of its tree keep writing.
const MAX_DRAIN_READS: usize = 16;
/// Background commands running at once, at most; with [`FINISHED_KEPT`]
/// and [`ARGV_LISTED`] this keeps a `BgEntries` frame within `MAX_FRAME`.
const MAX_BACKGROUND: usize = 256;
/// Bytes of a background command's argv that `BgList` shows.
const ARGV_LISTED: usize = 2048;
/// Finished background commands kept for `BgList`/`BgRead`.
const FINISHED_KEPT: usize = 64;

/// What a connection is read from and written to.
pub struct ConnFds {
    pub input: OwnedFd,
    pub output: OwnedFd,
    /// Daemon mode: the socket to the `serve` process that handed this
    /// connection over; closing it lets that process end.
    pub link: Option<OwnedFd>,
}

struct Conn {
    fds: ConnFds,
    decoder: Decoder<ClientFrame>,
    out: Vec<u8>,
    out_pos: usize,
    /// The rest of a spliced `Output` frame whose header is written: a
    /// command pipe (a duplicate, so it outlives the command) and the bytes
    /// of it that still belong to the frame. Nothing else is written or
    /// queued until they are (see [`Conn::prepare`]).
    splice: Option<(OwnedFd, usize)>,
    /// The output refused bytes (`WouldBlock`) since it last took some:
    /// commands' output waits for `POLLOUT` rather than being copied in.
    full: bool,
    writes: HashMap<u32, PendingWrite>,
    /// Control pipes of ended commands whose leftovers still run: closed
    /// with the connection, which makes their shepherds kill them.
    lingering: Vec<OwnedFd>,
    dead: bool,
}

impl Conn {
    fn pending(&self) -> usize {
        self.out.len() - self.out_pos + self.splice.as_ref().map_or(0, |(_, n)| *n)
    }

    /// Readies the output buffer for a frame: empties it if all of it was
    /// written, and first queues the rest of a spliced frame (read from its
    /// pipe), so the new frame follows it.
    fn prepare(&mut self) {
        if self.out_pos > 0 && self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
        if let Some((fd, remaining)) = self.splice.take() {
            self.read_into_out(fd.as_raw_fd(), remaining);
        }
    }

    /// Appends exactly `len` bytes of the pipe `fd`, which holds them (only
    /// the runner reads a command's pipes, and they were counted in it).
    fn read_into_out(&mut self, fd: RawFd, mut len: usize) {
        while len > 0 {
            let at = self.out.len();
            self.out.resize(at + len, 0);
            match sys::read(fd, &mut self.out[at..]) {
                Ok(n) if n > 0 => {
                    self.out.truncate(at + n);
                    len -= n.min(len);
                }
                _ => {
                    // Cannot happen; a frame left short would corrupt the
                    // stream, so the connection ends instead.
                    self.out.truncate(at);
                    self.dead = true;
                    return;
                }
            }
        }
    }

    /// Moves the rest of a spliced frame while the output takes it; on
    /// `WouldBlock` it waits for the next `POLLOUT`, on any other refusal
    /// it is queued as bytes instead.
    fn continue_splice(&mut self) {
        let Some((fd, mut remaining)) = self.splice.take() else {
            return;
        };
        while remaining > 0 {
            match sys::splice(fd.as_raw_fd(), self.fds.output.as_raw_fd(), remaining) {
                Ok(n) if n > 0 => remaining -= n.min(remaining),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    self.full = true;
                    self.splice = Some((fd, remaining));
                    return;
                }
                _ => {
                    self.read_into_out(fd.as_raw_fd(), remaining);
                    return;
                }
            }
        }
    }

    fn send(&mut self, frame: &RunnerFrame) {
        self.prepare();
        frame.encode(&mut self.out);
    }

    fn error(&mut self, id: u32, code: u32, errno: i32, message: impl Into<String>) {
        self.send(&RunnerFrame::Error {
            id,
            code,
            errno,
            message: message.into().into_bytes(),
        });
    }

    /// Writes what the output takes now; a broken output kills the connection.
    fn flush(&mut self) {
        if self.splice.is_some() {
            // The queue is empty while a splice is pending (prepare).
            self.continue_splice();
            if self.splice.is_some() {
                return;
            }
        }
        while self.pending() > 0 {
            match sys::write(self.fds.output.as_raw_fd(), &self.out[self.out_pos..]) {
                Ok(0) => {
                    self.dead = true;
                    return;
                }
                Ok(n) => self.out_pos += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    self.full = true;
                    break;
                }
                Err(_) => {
                    self.dead = true;
                    return;
                }
            }
        }
        if self.pending() == 0 {
            self.out.clear();
            self.out_pos = 0;
        } else if self.out_pos > (1 << 20) {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
    }
}

/// A bounded byte ring that remembers how many bytes passed through it.
#[derive(Default)]
struct Ring {
    data: VecDeque<u8>,
    total: u64,
}

impl Ring {
    fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let bytes = &bytes[bytes.len().saturating_sub(RING_SIZE)..];
        let overflow = (self.data.len() + bytes.len()).saturating_sub(RING_SIZE);
        self.data.drain(..overflow);
        self.data.extend(bytes);
    }

    fn first(&self) -> u64 {
        self.total - self.data.len() as u64
    }

    /// Bytes from `offset` (clamped into what is kept), at most `max`.
    fn read(&self, offset: u64, max: usize) -> (Vec<u8>, u64) {
        let start = offset.clamp(self.first(), self.total);
        let skip = (start - self.first()) as usize;
        let data: Vec<u8> = self.data.iter().skip(skip).take(max).copied().collect();
        let next = start + data.len() as u64;
        (data, next)
    }
}

struct Background {
    id: u64,
    pid: u32,
    argv: Vec<Vec<u8>>,
    started_unix_ms: u64,
    exit_code: Option<i64>,
    running: bool,
    rings: [Ring; 2],
    /// Requests waiting for it to end: (connection, request id).
    stop_waiters: Vec<(usize, u32)>,
    /// The shepherd's control pipe once the command ended with leftovers.
    lingering: Option<OwnedFd>,
}

struct Cmd {
    /// The connection to answer; `None` when it went away or for background.
    conn: Option<usize>,
    id: u32,
    background: Option<u64>,
    shepherd_pid: libc::pid_t,
    ctl: Option<OwnedFd>,
    status: Option<OwnedFd>,
    status_buf: Vec<u8>,
    stdin: Option<OwnedFd>,
    stdin_queue: VecDeque<u8>,
    stdin_eof: bool,
    out: [Option<OwnedFd>; 2],
    bytes: [u64; 2],
    cap: u64,
    truncated: bool,
    started: Instant,
    child_pid: Option<u32>,
    /// Past this, a shepherd that has not reported is stopped or stuck
    /// (code of the command can signal it: same uid): it is killed, and
    /// its orphans, which come to the runner, with it.
    watchdog: Option<Instant>,
}

impl Cmd {
    fn send_ctl(&mut self, byte: u8) {
        if let Some(ctl) = &self.ctl {
            let _ = sys::write(ctl.as_raw_fd(), &[byte]);
        }
    }
}

#[derive(Clone, Copy)]
enum Tag {
    Listener,
    ConnIn(usize),
    ConnOut(usize),
    ConnLink(usize),
    ConnHup(usize),
    CmdStatus(usize),
    CmdOut(usize, usize),
    CmdIn(usize),
    /// A lingering control pipe; its read end closes when the shepherd
    /// exits (its leftovers ended), and then the pipe is dropped.
    Linger(RawFd),
}

/// Accepts new connections (the daemon's socket); see `daemon.rs`.
pub trait Listener {
    fn fd(&self) -> RawFd;
    /// Called when the descriptor is readable or a deadline passed; returns
    /// connections that completed their handshake.
    fn accept(&mut self) -> Vec<ConnFds>;
    /// Extra descriptors to poll (handshakes in progress), and the earliest
    /// deadline among them.
    fn extra(&self) -> (Vec<RawFd>, Option<Instant>);
    /// Called when one of `extra`'s descriptors is ready.
    fn ready(&mut self, fd: RawFd);
}

pub struct Server {
    conns: Vec<Option<Conn>>,
    cmds: Vec<Option<Cmd>>,
    by_request: HashMap<(usize, u32), usize>,
    backgrounds: Vec<Background>,
    next_background: u64,
    base_env: Vec<(Vec<u8>, Vec<u8>)>,
    workspace: Option<Workspace>,
    /// Daemon mode: background commands allowed; runs as long as the
    /// sandbox (an exit when idle would race a `serve` connecting).
    daemon: bool,
    /// Shepherds (and other children) the runner made and has not reaped.
    children: HashSet<libc::pid_t>,
    /// One read buffer of [`READ_CHUNK`] bytes for pipes and connections.
    scratch: Vec<u8>,
    /// Until then, children of the runner it did not make are killed: the
    /// runner is a subreaper, so the tree of a shepherd that died comes to it.
    sweep_until: Option<Instant>,
}

/// How long after a shepherd's death its orphans are swept.
const SWEEP: Duration = Duration::from_secs(5);
/// How long past a command's deadline its shepherd may stay silent.
const WATCHDOG_GRACE: Duration = Duration::from_secs(2);

impl Server {
    pub fn new(daemon: bool) -> Server {
        use std::os::unix::ffi::OsStrExt as _;
        // Commands get the runner's environment minus sandpit's own
        // variables, then the request's.
        let base_env = std::env::vars_os()
            .filter(|(key, _)| !key.as_bytes().starts_with(b"SANDPIT_"))
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        Server {
            conns: Vec::new(),
            cmds: Vec::new(),
            by_request: HashMap::new(),
            backgrounds: Vec::new(),
            next_background: 1,
            base_env,
            workspace: Workspace::from_env(),
            daemon,
            children: HashSet::new(),
            scratch: vec![0u8; READ_CHUNK],
            sweep_until: None,
        }
    }

    /// Adds a connection whose `Hello` was read already, answering `HelloOk`.
    pub fn add_conn(&mut self, fds: ConnFds) {
        for fd in [&fds.input, &fds.output] {
            let _ = sys::set_nonblocking(fd.as_raw_fd(), true);
        }
        // The engine gives the exec a 64 KiB pipe: a 1 MiB Output frame
        // would take 16 writes, each a round of the loop, while the engine
        // waits. Not a pipe (tests' sockets): nothing changes.
        sys::grow_pipe(fds.output.as_raw_fd(), CONN_PIPE_SIZE);
        let mut conn = Conn {
            fds,
            decoder: Decoder::new(),
            out: Vec::new(),
            out_pos: 0,
            splice: None,
            full: false,
            writes: HashMap::new(),
            lingering: Vec::new(),
            dead: false,
        };
        conn.send(&RunnerFrame::HelloOk {
            version: proto::PROTOCOL_VERSION,
            pid: sys::getpid() as u32,
            background: self.daemon,
        });
        conn.flush();
        let slot = self.conns.iter().position(Option::is_none);
        match slot {
            Some(i) => self.conns[i] = Some(conn),
            None => self.conns.push(Some(conn)),
        }
    }

    /// Runs until the last connection is gone (direct mode); the daemon
    /// runs for good.
    pub fn run(&mut self, mut listener: Option<&mut dyn Listener>) {
        // Orphans of a shepherd killed by the command's own code come here
        // rather than to init, where no one would kill them.
        if let Err(err) = sys::set_child_subreaper() {
            eprintln!("sandpit-runner: cannot become a subreaper: {err}");
        }
        loop {
            if !self.daemon && self.conns.iter().all(Option::is_none) {
                return;
            }
            let mut fds: Vec<libc::pollfd> = Vec::new();
            let mut tags: Vec<Tag> = Vec::new();
            let mut timeout: Option<Instant> = None;
            if let Some(l) = listener.as_deref() {
                fds.push(sys::pollfd(l.fd(), libc::POLLIN));
                tags.push(Tag::Listener);
                let (extra, deadline) = l.extra();
                for fd in extra {
                    fds.push(sys::pollfd(fd, libc::POLLIN));
                    tags.push(Tag::Listener);
                }
                timeout = deadline;
            }
            let stdin_full: Vec<usize> = self
                .cmds
                .iter()
                .flatten()
                .filter(|c| c.stdin_queue.len() > STDIN_HIGH_WATER)
                .filter_map(|c| c.conn)
                .collect();
            for (i, conn) in self.conns.iter().enumerate() {
                let Some(conn) = conn else { continue };
                if conn.pending() < OUT_HIGH_WATER && !stdin_full.contains(&i) {
                    fds.push(sys::pollfd(conn.fds.input.as_raw_fd(), libc::POLLIN));
                    tags.push(Tag::ConnIn(i));
                } else {
                    // Not read for now (flow control), but a client that
                    // goes away (POLLHUP) still kills its commands.
                    fds.push(sys::pollfd(conn.fds.input.as_raw_fd(), 0));
                    tags.push(Tag::ConnHup(i));
                }
                if conn.pending() > 0 || conn.full {
                    fds.push(sys::pollfd(conn.fds.output.as_raw_fd(), libc::POLLOUT));
                    tags.push(Tag::ConnOut(i));
                }
                if let Some(link) = &conn.fds.link {
                    fds.push(sys::pollfd(link.as_raw_fd(), libc::POLLIN));
                    tags.push(Tag::ConnLink(i));
                }
                for ctl in &conn.lingering {
                    fds.push(sys::pollfd(ctl.as_raw_fd(), 0));
                    tags.push(Tag::Linger(ctl.as_raw_fd()));
                }
            }
            for ctl in self
                .backgrounds
                .iter()
                .filter_map(|bg| bg.lingering.as_ref())
            {
                fds.push(sys::pollfd(ctl.as_raw_fd(), 0));
                tags.push(Tag::Linger(ctl.as_raw_fd()));
            }
            for (k, cmd) in self.cmds.iter().enumerate() {
                let Some(cmd) = cmd else { continue };
                if let Some(status) = &cmd.status {
                    fds.push(sys::pollfd(status.as_raw_fd(), libc::POLLIN));
                    tags.push(Tag::CmdStatus(k));
                }
                let room = match cmd.conn {
                    Some(c) => self.conns[c].as_ref().is_some_and(|conn| {
                        conn.splice.is_none() && !conn.full && conn.pending() < OUT_HIGH_WATER
                    }),
                    None => true,
                };
                // Output waits for `Started` (the command's pid), which
                // the client must see first.
                if room && cmd.child_pid.is_some() {
                    for (s, out) in cmd.out.iter().enumerate() {
                        if let Some(out) = out {
                            fds.push(sys::pollfd(out.as_raw_fd(), libc::POLLIN));
                            tags.push(Tag::CmdOut(k, s));
                        }
                    }
                }
                if let Some(stdin) = &cmd.stdin
                    && (!cmd.stdin_queue.is_empty() || cmd.stdin_eof)
                {
                    fds.push(sys::pollfd(stdin.as_raw_fd(), libc::POLLOUT));
                    tags.push(Tag::CmdIn(k));
                }
            }
            for cmd in self.cmds.iter().flatten() {
                if let Some(watchdog) = cmd.watchdog {
                    timeout = Some(timeout.map_or(watchdog, |t| t.min(watchdog)));
                }
            }
            if let Some(sweep) = self.sweep_until {
                // Sweep every 20 ms while it lasts, then once more at its end.
                let next = (Instant::now() + Duration::from_millis(20)).min(sweep);
                timeout = Some(timeout.map_or(next, |t| t.min(next)));
            }
            let wait = timeout.map(sys::until);
            if sys::poll(&mut fds, wait).is_err() {
                // EINVAL/ENOMEM: back off briefly rather than spin.
                std::thread::sleep(Duration::from_millis(10));
            }
            let mut listener_ready = false;
            let mut gone_lingering: Vec<RawFd> = Vec::new();
            for (pfd, tag) in fds.iter().zip(&tags) {
                if pfd.revents == 0 {
                    continue;
                }
                match *tag {
                    Tag::Listener => {
                        listener_ready = true;
                        if let Some(l) = listener.as_deref_mut()
                            && pfd.fd != l.fd()
                        {
                            l.ready(pfd.fd);
                        }
                    }
                    Tag::ConnIn(c) => self.read_conn(c),
                    Tag::ConnOut(c) => {
                        if let Some(conn) = self.conns[c].as_mut() {
                            conn.full = false;
                            conn.flush();
                        }
                    }
                    Tag::ConnHup(c) => {
                        if pfd.revents & (libc::POLLHUP | libc::POLLERR) != 0
                            && let Some(conn) = self.conns[c].as_mut()
                        {
                            conn.dead = true;
                        }
                    }
                    Tag::ConnLink(c) => {
                        // The serve process at the other end went away.
                        if let Some(conn) = self.conns[c].as_mut() {
                            conn.dead = true;
                        }
                    }
                    Tag::Linger(fd) => gone_lingering.push(fd),
                    Tag::CmdStatus(k) => self.read_status(k),
                    Tag::CmdOut(k, s) => self.read_output(k, s, false),
                    Tag::CmdIn(k) => self.write_stdin(k),
                }
            }
            if let Some(l) = listener.as_deref_mut()
                && (listener_ready || timeout.is_some_and(|t| Instant::now() >= t))
            {
                for conn in l.accept() {
                    self.add_conn(conn);
                }
            }
            if !gone_lingering.is_empty() {
                for conn in self.conns.iter_mut().flatten() {
                    conn.lingering
                        .retain(|ctl| !gone_lingering.contains(&ctl.as_raw_fd()));
                }
                for bg in &mut self.backgrounds {
                    if bg
                        .lingering
                        .as_ref()
                        .is_some_and(|ctl| gone_lingering.contains(&ctl.as_raw_fd()))
                    {
                        bg.lingering = None;
                    }
                }
            }
            self.reap_shepherds();
            self.watch();
            for c in 0..self.conns.len() {
                let dead = match self.conns[c].as_mut() {
                    Some(conn) => {
                        conn.flush();
                        conn.dead
                    }
                    None => false,
                };
                if dead {
                    self.close_conn(c);
                }
            }
        }
    }

    fn reap_shepherds(&mut self) {
        while let Ok(Some((pid, _))) = sys::wait_nohang(-1) {
            self.children.remove(&pid);
        }
    }

    /// Kills silent shepherds past their command's deadline, and sweeps
    /// orphans after a shepherd died.
    fn watch(&mut self) {
        let now = Instant::now();
        for cmd in self.cmds.iter_mut().flatten() {
            if cmd.watchdog.is_some_and(|w| now >= w) {
                cmd.watchdog = None;
                let _ = sys::kill(cmd.shepherd_pid, libc::SIGKILL);
            }
        }
        let Some(until) = self.sweep_until else {
            return;
        };
        if now >= until {
            self.sweep_until = None;
            return;
        }
        let me = sys::getpid();
        let Some(pids) = shepherd::pids() else {
            return;
        };
        for pid in pids {
            if !self.children.contains(&pid) && shepherd::parent_of(pid) == Some(me) {
                let _ = sys::kill(pid, libc::SIGKILL);
            }
        }
        self.reap_shepherds();
    }

    /// The client of a connection is gone: its foreground commands are
    /// killed (their shepherds see their control pipes close), its writes
    /// in progress dropped (the files stay unchanged).
    fn close_conn(&mut self, c: usize) {
        let Some(conn) = self.conns[c].take() else {
            return;
        };
        drop(conn);
        for cmd in self.cmds.iter_mut().flatten() {
            if cmd.conn == Some(c) {
                cmd.conn = None;
                // A background command not yet forked stays; a foreground
                // one dies as its shepherd sees the control pipe close.
                if cmd.background.is_none() {
                    cmd.ctl = None;
                    cmd.stdin = None;
                }
            }
        }
        self.by_request.retain(|(conn, _), _| *conn != c);
        for bg in &mut self.backgrounds {
            bg.stop_waiters.retain(|(conn, _)| *conn != c);
        }
    }

    fn read_conn(&mut self, c: usize) {
        let Some(conn) = self.conns[c].as_mut() else {
            return;
        };
        let buf = &mut self.scratch;
        match sys::read(conn.fds.input.as_raw_fd(), buf) {
            Ok(0) => {
                conn.dead = true;
                return;
            }
            Ok(n) => conn.decoder.push(&buf[..n]),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
            Err(_) => {
                conn.dead = true;
                return;
            }
        }
        loop {
            let Some(conn) = self.conns[c].as_mut() else {
                return;
            };
            match conn.decoder.next() {
                Ok(Some(frame)) => self.handle(c, frame),
                Ok(None) => return,
                Err(err) => {
                    // Out of step: nothing more from it can be trusted.
                    conn.error(0, code::PROTOCOL, 0, err.to_string());
                    conn.flush();
                    conn.dead = true;
                    return;
                }
            }
        }
    }

    fn conn(&mut self, c: usize) -> Option<&mut Conn> {
        self.conns.get_mut(c).and_then(Option::as_mut)
    }

    fn fs_error(&mut self, c: usize, id: u32, err: FsError) {
        if let Some(conn) = self.conn(c) {
            conn.error(id, err.code, err.errno, err.message);
        }
    }

    fn handle(&mut self, c: usize, frame: ClientFrame) {
        let id = frame.id();
        match frame {
            ClientFrame::Hello { .. } => {
                if let Some(conn) = self.conn(c) {
                    conn.error(0, code::PROTOCOL, 0, "Hello was sent twice");
                }
            }
            ClientFrame::Run(run) => self.run_command(c, run),
            ClientFrame::Stdin { id, data } => {
                if let Some(&k) = self.by_request.get(&(c, id))
                    && let Some(cmd) = self.cmds[k].as_mut()
                    && cmd.stdin.is_some()
                    && !cmd.stdin_eof
                {
                    cmd.stdin_queue.extend(data);
                    self.write_stdin(k);
                }
            }
            ClientFrame::StdinEof { id } => {
                if let Some(&k) = self.by_request.get(&(c, id))
                    && let Some(cmd) = self.cmds[k].as_mut()
                {
                    cmd.stdin_eof = true;
                    self.write_stdin(k);
                }
            }
            ClientFrame::Cancel { id } => {
                if let Some(&k) = self.by_request.get(&(c, id))
                    && let Some(cmd) = self.cmds[k].as_mut()
                {
                    cmd.send_ctl(shepherd::KILL_CANCEL);
                }
            }
            ClientFrame::List { path, .. } => match self.workspace() {
                Ok(ws) => match fsops::list(ws, &path) {
                    Ok(entries) => {
                        if let Some(conn) = self.conn(c) {
                            for frame in proto::entries_frames(id, entries) {
                                conn.send(&frame);
                            }
                        }
                    }
                    Err(err) => self.fs_error(c, id, err),
                },
                Err(err) => self.fs_error(c, id, err),
            },
            ClientFrame::Read { path, cap, .. } => {
                let result = self.workspace().and_then(|ws| fsops::read(ws, &path, cap));
                match result {
                    Ok((data, total_size)) => {
                        let Some(conn) = self.conn(c) else { return };
                        let mut chunks = data.chunks(proto::MAX_CHUNK).peekable();
                        if chunks.peek().is_none() {
                            conn.send(&RunnerFrame::Data {
                                id,
                                data: Vec::new(),
                                total_size,
                                last: true,
                            });
                        }
                        while let Some(chunk) = chunks.next() {
                            conn.send(&RunnerFrame::Data {
                                id,
                                data: chunk.to_vec(),
                                total_size,
                                last: chunks.peek().is_none(),
                            });
                        }
                    }
                    Err(err) => self.fs_error(c, id, err),
                }
            }
            ClientFrame::Write {
                path, size, data, ..
            } => {
                let result = self
                    .workspace()
                    .and_then(|ws| fsops::write_begin(ws, &path, size));
                match result {
                    Ok(pending) => {
                        if let Some(conn) = self.conn(c) {
                            conn.writes.insert(id, pending);
                        }
                        self.write_data(c, id, &data);
                    }
                    Err(err) => self.fs_error(c, id, err),
                }
            }
            ClientFrame::WriteData { id, data } => self.write_data(c, id, &data),
            ClientFrame::Mkdir { path, .. } => {
                let result = self.workspace().and_then(|ws| fsops::mkdir(ws, &path));
                self.done_or_error(c, id, result);
            }
            ClientFrame::Rename { from, to, .. } => {
                let result = self
                    .workspace()
                    .and_then(|ws| fsops::rename(ws, &from, &to));
                self.done_or_error(c, id, result);
            }
            ClientFrame::Delete {
                path, recursive, ..
            } => {
                let result = self
                    .workspace()
                    .and_then(|ws| fsops::delete(ws, &path, recursive));
                self.done_or_error(c, id, result);
            }
            ClientFrame::BgList { id } => {
                if !self.check_daemon(c, id) {
                    return;
                }
                let list = self
                    .backgrounds
                    .iter()
                    .map(|bg| Bg {
                        background_id: bg.id,
                        pid: bg.pid,
                        argv: listed_argv(&bg.argv),
                        started_unix_ms: bg.started_unix_ms,
                        running: bg.running,
                        exit_code: bg.exit_code,
                    })
                    .collect();
                if let Some(conn) = self.conn(c) {
                    conn.send(&RunnerFrame::BgEntries { id, list });
                }
            }
            ClientFrame::BgRead {
                id,
                background_id,
                stream,
                offset,
                max,
            } => {
                if !self.check_daemon(c, id) {
                    return;
                }
                let Some(bg) = self.backgrounds.iter().find(|bg| bg.id == background_id) else {
                    self.no_such_background(c, id);
                    return;
                };
                let ring = match stream {
                    proto::STDOUT => &bg.rings[0],
                    proto::STDERR => &bg.rings[1],
                    _ => {
                        if let Some(conn) = self.conn(c) {
                            conn.error(id, code::PROTOCOL, 0, "stream must be 1 or 2");
                        }
                        return;
                    }
                };
                let max = (max as usize).min(proto::MAX_CHUNK);
                let (data, next_offset) = ring.read(offset, max);
                let dropped_before = ring.first();
                if let Some(conn) = self.conn(c) {
                    conn.send(&RunnerFrame::BgData {
                        id,
                        data,
                        next_offset,
                        dropped_before,
                    });
                }
            }
            ClientFrame::BgStop { id, background_id } => {
                if !self.check_daemon(c, id) {
                    return;
                }
                let Some(b) = self
                    .backgrounds
                    .iter()
                    .position(|bg| bg.id == background_id)
                else {
                    self.no_such_background(c, id);
                    return;
                };
                // Leftovers of an ended one die as its control pipe closes.
                self.backgrounds[b].lingering = None;
                if self.backgrounds[b].running {
                    self.backgrounds[b].stop_waiters.push((c, id));
                    let k = self.cmds.iter().position(|cmd| {
                        cmd.as_ref()
                            .is_some_and(|cmd| cmd.background == Some(background_id))
                    });
                    if let Some(cmd) = k.and_then(|k| self.cmds[k].as_mut()) {
                        cmd.send_ctl(shepherd::KILL_CANCEL);
                    }
                } else if let Some(conn) = self.conn(c) {
                    conn.send(&RunnerFrame::Done { id });
                }
            }
        }
    }

    fn workspace(&self) -> Result<&Workspace, FsError> {
        self.workspace.as_ref().ok_or(FsError {
            code: code::NO_WORKSPACE,
            errno: 0,
            message: "SANDPIT_WORKSPACE is not set".into(),
        })
    }

    fn done_or_error(&mut self, c: usize, id: u32, result: Result<(), FsError>) {
        match result {
            Ok(()) => {
                if let Some(conn) = self.conn(c) {
                    conn.send(&RunnerFrame::Done { id });
                }
            }
            Err(err) => self.fs_error(c, id, err),
        }
    }

    fn write_data(&mut self, c: usize, id: u32, data: &[u8]) {
        let Some(conn) = self.conn(c) else { return };
        let Some(pending) = conn.writes.get_mut(&id) else {
            conn.error(id, code::PROTOCOL, 0, "WriteData for no write in progress");
            return;
        };
        match pending.push(data) {
            Ok(false) => {}
            Ok(true) => {
                conn.writes.remove(&id);
                conn.send(&RunnerFrame::Done { id });
            }
            Err(err) => {
                // Dropping the write removes its temporary.
                conn.writes.remove(&id);
                conn.error(id, err.code, err.errno, err.message);
            }
        }
    }

    fn check_daemon(&mut self, c: usize, id: u32) -> bool {
        if self.daemon {
            return true;
        }
        if let Some(conn) = self.conn(c) {
            conn.error(
                id,
                code::NO_BACKGROUND,
                0,
                "background processes are unavailable: no runner daemon was reached",
            );
        }
        false
    }

    fn no_such_background(&mut self, c: usize, id: u32) {
        if let Some(conn) = self.conn(c) {
            conn.error(
                id,
                code::NO_SUCH_BACKGROUND,
                0,
                "no background process has this id",
            );
        }
    }

    fn run_command(&mut self, c: usize, run: proto::Run) {
        let id = run.id;
        let refuse = |server: &mut Server, code: u32, errno: i32, message: String| {
            if let Some(conn) = server.conn(c) {
                conn.error(id, code, errno, message);
            }
        };
        if run.argv.is_empty() {
            return refuse(self, code::PROTOCOL, libc::EINVAL, "argv is empty".into());
        }
        if self.by_request.contains_key(&(c, id)) {
            return refuse(self, code::PROTOCOL, 0, "this request id is in use".into());
        }
        if run.background && !self.check_daemon(c, id) {
            return;
        }
        if run.background
            && self.backgrounds.iter().filter(|bg| bg.running).count() >= MAX_BACKGROUND
        {
            return refuse(
                self,
                code::OTHER,
                libc::EAGAIN,
                format!("{MAX_BACKGROUND} background processes run already"),
            );
        }
        let mut env: Vec<(Vec<u8>, Vec<u8>)> = self.base_env.clone();
        for (key, value) in &run.env {
            env.retain(|(k, _)| k != key);
            env.push((key.clone(), value.clone()));
        }
        let spec = shepherd::Spec {
            argv: run.argv.clone(),
            env: env
                .into_iter()
                .map(|(k, v)| [k, b"=".to_vec(), v].concat())
                .collect(),
            cwd: run.cwd,
            stdin: run.stdin && !run.background,
            timeout: (run.timeout_ms > 0).then(|| Duration::from_millis(run.timeout_ms)),
        };
        let started = Instant::now();
        let spawned: Spawned = match shepherd::spawn(&spec) {
            Ok(spawned) => spawned,
            Err(err) => {
                return refuse(
                    self,
                    code::SPAWN,
                    sys::errno_of(&err),
                    format!("cannot start the command: {err}"),
                );
            }
        };
        let background = run.background.then(|| {
            let bg_id = self.next_background;
            self.next_background += 1;
            self.backgrounds.push(Background {
                id: bg_id,
                pid: 0,
                argv: run.argv.clone(),
                started_unix_ms: sys::unix_ms(),
                exit_code: None,
                running: true,
                rings: Default::default(),
                stop_waiters: Vec::new(),
                lingering: None,
            });
            bg_id
        });
        let spawned_pid = spawned.shepherd_pid;
        let cmd = Cmd {
            conn: Some(c),
            id,
            background,
            shepherd_pid: spawned.shepherd_pid,
            ctl: Some(spawned.ctl),
            status: Some(spawned.status),
            status_buf: Vec::new(),
            stdin: spawned.stdin,
            stdin_queue: VecDeque::new(),
            stdin_eof: false,
            out: [Some(spawned.stdout), Some(spawned.stderr)],
            bytes: [0, 0],
            cap: if run.background { 0 } else { run.output_cap },
            truncated: false,
            started,
            child_pid: None,
            watchdog: spec
                .timeout
                .map(|t| started + t + shepherd::KILL_DEADLINE + WATCHDOG_GRACE),
        };
        self.children.insert(spawned_pid);
        let k = match self.cmds.iter().position(Option::is_none) {
            Some(k) => {
                self.cmds[k] = Some(cmd);
                k
            }
            None => {
                self.cmds.push(Some(cmd));
                self.cmds.len() - 1
            }
        };
        if !run.background {
            self.by_request.insert((c, id), k);
        }
    }

    fn write_stdin(&mut self, k: usize) {
        let Some(cmd) = self.cmds[k].as_mut() else {
            return;
        };
        let Some(stdin) = &cmd.stdin else {
            cmd.stdin_queue.clear();
            return;
        };
        while !cmd.stdin_queue.is_empty() {
            let (front, _) = cmd.stdin_queue.as_slices();
            match sys::write(stdin.as_raw_fd(), front) {
                Ok(n) => {
                    cmd.stdin_queue.drain(..n);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    // The command closed its stdin: the rest is not wanted.
                    cmd.stdin_queue.clear();
                    cmd.stdin = None;
                    return;
                }
            }
        }
        if cmd.stdin_eof {
            cmd.stdin = None;
        }
    }

    /// Reads a command's stream once (`drain`: until it has nothing more).
    fn read_output(&mut self, k: usize, s: usize, drain: bool) {
        let mut buf = std::mem::take(&mut self.scratch);
        self.read_output_with(k, s, drain, &mut buf);
        self.scratch = buf;
    }

    fn read_output_with(&mut self, k: usize, s: usize, drain: bool, buf: &mut [u8]) {
        let mut reads = 0;
        loop {
            let Some(cmd) = self.cmds[k].as_mut() else {
                return;
            };
            let Some(fd) = cmd.out[s].as_ref() else {
                return;
            };
            if !drain || reads < MAX_DRAIN_READS {
                let fd = fd.as_raw_fd();
                if self.splice_output(k, s, fd) {
                    reads += 1;
                    if !drain {
                        return;
                    }
                    continue;
                }
            }
            let Some(cmd) = self.cmds[k].as_mut() else {
                return;
            };
            // A spliced frame's rest is at the front of this pipe, maybe:
            // queued first, so this read takes what follows it.
            if let Some(conn) = cmd.conn.and_then(|c| self.conns[c].as_mut())
                && conn.splice.is_some()
            {
                conn.prepare();
            }
            let Some(fd) = cmd.out[s].as_ref() else {
                return;
            };
            let n = match sys::read(fd.as_raw_fd(), buf) {
                Ok(0) => {
                    cmd.out[s] = None;
                    return;
                }
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    cmd.out[s] = None;
                    return;
                }
            };
            let data = &buf[..n];
            if cmd.truncated {
                // Being killed past its cap: read (so it cannot block on a
                // full pipe) and drop, as the engine path does.
                if drain && reads < MAX_DRAIN_READS {
                    reads += 1;
                    continue;
                }
                return;
            }
            cmd.bytes[s] += n as u64;
            if let Some(bg_id) = cmd.background {
                if let Some(bg) = self.backgrounds.iter_mut().find(|bg| bg.id == bg_id) {
                    bg.rings[s].push(data);
                }
            } else {
                let kept = if cmd.cap > 0 {
                    let room = cmd.cap.saturating_sub(cmd.bytes[s] - n as u64);
                    (room.min(n as u64)) as usize
                } else {
                    n
                };
                let overflow = kept < n;
                if kept > 0
                    && let Some(c) = cmd.conn
                    && let Some(conn) = self.conns[c].as_mut()
                {
                    let stream = if s == 0 { proto::STDOUT } else { proto::STDERR };
                    conn.prepare();
                    proto::encode_output(cmd.id, stream, &data[..kept], &mut conn.out);
                    // Written now rather than a round of the loop later:
                    // the engine reads while the command refills its pipe.
                    conn.flush();
                }
                if overflow {
                    // Past the cap: stop the command; what it writes while
                    // it is killed is neither kept nor counted.
                    cmd.truncated = true;
                    cmd.send_ctl(shepherd::KILL_CAP);
                    return;
                }
            }
            reads += 1;
            if !drain || reads >= MAX_DRAIN_READS {
                return;
            }
        }
    }

    /// Sends what command `k`'s stream `s` (pipe `fd`) holds as one
    /// `Output` frame whose data moves from pipe to connection inside the
    /// kernel (`splice`), not through the runner's memory: a heavy stream
    /// costs the runner a header and a syscall per MiB rather than three
    /// copies. `false`: not done (little data, within reach of the cap, a
    /// background command, output still queued before it), read instead.
    fn splice_output(&mut self, k: usize, s: usize, fd: RawFd) -> bool {
        let Some(cmd) = self.cmds[k].as_mut() else {
            return false;
        };
        if cmd.truncated || cmd.background.is_some() {
            return false;
        }
        let Some(conn) = cmd.conn.and_then(|c| self.conns[c].as_mut()) else {
            return false;
        };
        // Frames queued before this one go first: per-stream order.
        if conn.dead || conn.pending() > 0 {
            return false;
        }
        let len = sys::pipe_available(fd).min(proto::MAX_CHUNK);
        if len < SPLICE_MIN || (cmd.cap > 0 && cmd.bytes[s] + len as u64 > cmd.cap) {
            return false;
        }
        let stream = if s == 0 { proto::STDOUT } else { proto::STDERR };
        conn.prepare();
        proto::encode_output_header(cmd.id, stream, len, &mut conn.out);
        conn.flush();
        if conn.pending() == 0 && !conn.dead {
            match sys::dup(fd) {
                Ok(dup) => {
                    conn.splice = Some((dup, len));
                    conn.continue_splice();
                }
                Err(_) => conn.read_into_out(fd, len),
            }
        } else {
            conn.read_into_out(fd, len);
        }
        cmd.bytes[s] += len as u64;
        true
    }

    fn read_status(&mut self, k: usize) {
        let Some(cmd) = self.cmds[k].as_mut() else {
            return;
        };
        let Some(status) = cmd.status.as_ref() else {
            return;
        };
        let mut buf = [0u8; 64];
        let eof = match sys::read(status.as_raw_fd(), &mut buf) {
            Ok(0) => true,
            Ok(n) => {
                cmd.status_buf.extend_from_slice(&buf[..n]);
                false
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => false,
            Err(_) => true,
        };
        loop {
            let Some(cmd) = self.cmds[k].as_mut() else {
                return;
            };
            match Status::take(&mut cmd.status_buf) {
                Ok(Some(Status::Forked(pid))) => {
                    cmd.child_pid = Some(pid);
                    let frame = RunnerFrame::Started {
                        id: cmd.id,
                        pid,
                        background_id: cmd.background,
                    };
                    if let Some(bg_id) = cmd.background
                        && let Some(bg) = self.backgrounds.iter_mut().find(|bg| bg.id == bg_id)
                    {
                        bg.pid = pid;
                    }
                    if let Some(c) = cmd.conn
                        && let Some(conn) = self.conns[c].as_mut()
                    {
                        conn.send(&frame);
                    }
                    if cmd.background.is_some() {
                        // Started is all its client gets; it now belongs
                        // to no connection.
                        cmd.conn = None;
                    }
                }
                Ok(Some(Status::ForkFailed(errno))) => {
                    let message = format!(
                        "cannot start the command: {}",
                        io::Error::from_raw_os_error(errno)
                    );
                    self.finish(k, Err((code::SPAWN, errno, message)));
                    return;
                }
                Ok(Some(Status::Ended {
                    reason,
                    wait_status,
                    killed_verified,
                    survivors,
                    leftovers,
                })) => {
                    for s in 0..2 {
                        self.read_output(k, s, true);
                    }
                    let Some(cmd) = self.cmds[k].as_mut() else {
                        return;
                    };
                    let (exit_code, signal) = sys::exit_code_of(wait_status);
                    let exit = Exit {
                        id: cmd.id,
                        exit_code,
                        signal,
                        duration_us: cmd.started.elapsed().as_micros() as u64,
                        timed_out: reason == Reason::Timeout,
                        cancelled: reason == Reason::Cancel,
                        truncated: cmd.truncated || reason == Reason::Cap,
                        killed_verified,
                        survivors,
                        stdout_bytes: cmd.bytes[0],
                        stderr_bytes: cmd.bytes[1],
                    };
                    if !leftovers {
                        cmd.ctl = None;
                    }
                    self.finish(k, Ok(exit));
                    return;
                }
                Ok(None) if eof => {
                    // The shepherd died without a word (killed by the
                    // command's own code?): kill what we know of the tree.
                    if let Some(pid) = cmd.child_pid {
                        let _ = sys::kill(pid as libc::pid_t, libc::SIGKILL);
                    }
                    let _ = sys::kill(cmd.shepherd_pid, libc::SIGKILL);
                    self.sweep_until = Some(Instant::now() + SWEEP);
                    self.finish(
                        k,
                        Err((code::OTHER, 0, "the command's shepherd process died".into())),
                    );
                    return;
                }
                Ok(None) => return,
                Err(()) => {
                    cmd.status_buf.clear();
                    return;
                }
            }
        }
    }

    /// The command is over: answer its client, record a background one.
    fn finish(&mut self, k: usize, result: Result<Exit, (u32, i32, String)>) {
        let Some(mut cmd) = self.cmds[k].take() else {
            return;
        };
        if let Some(c) = cmd.conn {
            self.by_request.remove(&(c, cmd.id));
            if let Some(conn) = self.conns[c].as_mut() {
                match &result {
                    Ok(exit) => conn.send(&RunnerFrame::Exit(exit.clone())),
                    Err((code, errno, message)) => {
                        conn.error(cmd.id, *code, *errno, message.clone())
                    }
                }
                if let Some(ctl) = cmd.ctl.take() {
                    conn.lingering.push(ctl);
                }
            }
        }
        if let Some(bg_id) = cmd.background
            && let Some(bg) = self.backgrounds.iter_mut().find(|bg| bg.id == bg_id)
        {
            bg.running = false;
            bg.exit_code = result.as_ref().ok().map(|exit| exit.exit_code);
            bg.lingering = cmd.ctl.take();
            for (c, id) in std::mem::take(&mut bg.stop_waiters) {
                if let Some(conn) = self.conns.get_mut(c).and_then(Option::as_mut) {
                    conn.send(&RunnerFrame::Done { id });
                }
            }
            let finished = self.backgrounds.iter().filter(|bg| !bg.running).count();
            if finished > FINISHED_KEPT
                && let Some(oldest) = self.backgrounds.iter().position(|bg| !bg.running)
            {
                self.backgrounds.remove(oldest);
            }
        }
    }
}

/// The first arguments of `argv`, at most [`ARGV_LISTED`] bytes (the last
/// one shown may be cut).
fn listed_argv(argv: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut room = ARGV_LISTED;
    let mut listed = Vec::new();
    for arg in argv {
        if room == 0 {
            break;
        }
        let take = arg.len().min(room);
        listed.push(arg[..take].to_vec());
        room -= take;
    }
    listed
}
