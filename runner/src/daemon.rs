//! The per-sandbox background daemon, and how `serve` reaches it.
//!
//! Background commands must outlive the engine exec that started them, so
//! they live in a daemon (a `setsid` double-forked process); every `serve`
//! hands its connection (its stdin and stdout, over `SCM_RIGHTS`) to the
//! daemon, then only waits until the daemon is done with it.
//!
//! Trust: code in the sandbox runs as the same uid as the runner, so it can
//! bind the socket path before the daemon, and no file or directory
//! permission can keep it out. What it cannot do is know the sandbox's
//! runner key: the host sends it in `Hello` on the exec's stdin (the runner
//! is undumpable before reading it, so its stdin and memory are closed to
//! same-uid processes), and the daemon got it from the `serve` that forked
//! it. Before handing anything over, `serve` makes the daemon prove it knows
//! the key (a keyed hash of both sides' fresh nonces and both pids as the
//! kernel reports them with `SO_PEERCRED`, SipHash-2-4 keyed with the key's
//! first 16 bytes), and the daemon checks `serve`'s proof in turn. An
//! impostor fails the proof; `serve` then falls back to serving commands
//! itself (foreground only) rather than failing. The 0700 folder only keeps
//! other uids out.
//!
//! Socket messages (SOCK_SEQPACKET, so each is whole): serve → daemon: its
//! nonce (16 bytes); daemon → serve: its nonce (16) and its proof (8);
//! serve → daemon: its proof (8) with the two descriptors attached. The
//! socket then stays open as the link: the daemon closes it when the
//! connection ends, and `serve` exits.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crate::server::{ConnFds, Listener, Server};
use crate::sys;

/// Bytes of the runner key the proofs use; a shorter key means no daemon.
pub const KEY_LEN: usize = 16;
const NONCE_LEN: usize = 16;
const PROOF_LEN: usize = 8;
/// How long each side of the handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);

/// The socket's folder: `SANDPIT_RUNNER_DIR` if set (the host picks a
/// writable tmpfs; only the host sets the runner's environment), else
/// `/tmp/.sandpit-runner-<uid>`.
fn dir() -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt as _;
    match std::env::var_os("SANDPIT_RUNNER_DIR") {
        Some(dir) => dir.as_bytes().to_vec(),
        None => format!("/tmp/.sandpit-runner-{}", sys::getuid()).into_bytes(),
    }
}

/// Who is at the other end of a unix socket: (pid, uid), as the kernel
/// recorded it at `connect` (client) or `listen` (server).
fn peer(fd: RawFd) -> io::Result<(libc::pid_t, libc::uid_t)> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: a valid ucred and its size.
    sys::cvt(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    })?;
    Ok((cred.pid, cred.uid))
}

/// The pids a proof binds, (daemon, client), from one side's view (`peer`
/// from SO_PEERCRED, `me` from getpid): both 0 when SO_PEERCRED named the
/// caller itself, a kernel that cannot tell the peer. Both sides run the
/// same kernel, so both fall back together.
fn pids(peer: libc::pid_t, me: libc::pid_t) -> (libc::pid_t, libc::pid_t) {
    if peer == me { (0, 0) } else { (peer, me) }
}

/// A side's proof: a keyed hash of the side, both nonces (the client's
/// first) and both pids (the daemon's first) as each side sees them with
/// `SO_PEERCRED`. The pids stop a relay: an impostor that passes the
/// serve's nonce on to the real daemon gets back a proof naming the
/// impostor's pid as the client, which is not the serve.
fn proof(
    key: &[u8],
    side: u8,
    client_nonce: &[u8; NONCE_LEN],
    daemon_nonce: &[u8; NONCE_LEN],
    daemon_pid: libc::pid_t,
    client_pid: libc::pid_t,
) -> [u8; PROOF_LEN] {
    use std::hash::Hasher as _;
    #[allow(deprecated)]
    use std::hash::SipHasher;
    let word = |at: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&key[at..at + 8]);
        u64::from_le_bytes(bytes)
    };
    #[allow(deprecated)]
    let mut hasher = SipHasher::new_with_keys(word(0), word(8));
    hasher.write(&[side]);
    hasher.write(client_nonce);
    hasher.write(daemon_nonce);
    hasher.write(&daemon_pid.to_le_bytes());
    hasher.write(&client_pid.to_le_bytes());
    hasher.finish().to_le_bytes()
}

fn sockaddr(path: &[u8]) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: plain-old-data.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    if path.len() >= addr.sun_path.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    for (slot, byte) in addr.sun_path.iter_mut().zip(path) {
        *slot = *byte as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + path.len() + 1;
    Ok((addr, len as libc::socklen_t))
}

fn socket() -> io::Result<OwnedFd> {
    // SAFETY: socket with integer arguments.
    let fd = sys::cvt(unsafe {
        libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0)
    })?;
    // SAFETY: fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn connect(path: &[u8]) -> io::Result<OwnedFd> {
    let fd = socket()?;
    let (addr, len) = sockaddr(path)?;
    // SAFETY: a valid sockaddr_un of `len` bytes.
    sys::cvt(unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_un).cast(),
            len,
        )
    })?;
    Ok(fd)
}

fn set_timeout(fd: RawFd, timeout: Option<Duration>) {
    let t = timeout.unwrap_or_default();
    let tv = libc::timeval {
        tv_sec: t.as_secs() as libc::time_t,
        tv_usec: t.subsec_micros() as libc::suseconds_t,
    };
    for opt in [libc::SO_RCVTIMEO, libc::SO_SNDTIMEO] {
        // SAFETY: a valid timeval of its size.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
    }
}

fn send(fd: RawFd, data: &[u8]) -> io::Result<()> {
    // SAFETY: `data` is valid for its length.
    let n = unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), libc::MSG_NOSIGNAL) };
    if n as usize == data.len() {
        Ok(())
    } else if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Err(io::ErrorKind::WriteZero.into())
    }
}

/// One message into `buf`; its length.
fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for its length.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Sends `data` with descriptors attached.
fn send_fds(fd: RawFd, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let payload = std::mem::size_of_val(fds);
    // SAFETY: CMSG_SPACE is a pure computation.
    let space = unsafe { libc::CMSG_SPACE(payload as u32) } as usize;
    let mut control = vec![0u8; space];
    // SAFETY: plain-old-data.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: the control buffer has room for one header and `fds`.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(payload as u32) as _;
        std::ptr::copy_nonoverlapping(
            fds.as_ptr(),
            libc::CMSG_DATA(cmsg).cast::<RawFd>(),
            fds.len(),
        );
    }
    // SAFETY: `msg` points at live buffers.
    let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL) };
    if n as usize == data.len() {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// One message and the descriptors attached to it (close-on-exec).
fn recv_fds(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: CMSG_SPACE is a pure computation.
    let space = unsafe { libc::CMSG_SPACE((4 * std::mem::size_of::<RawFd>()) as u32) } as usize;
    let mut control = vec![0u8; space];
    // SAFETY: plain-old-data.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: `msg` points at live buffers.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut fds = Vec::new();
    // SAFETY: walking the control messages the kernel wrote.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                let count = ((*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize)
                    / std::mem::size_of::<RawFd>();
                for i in 0..count {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n as usize, fds))
}

/// The 0700 folder of the socket and lock; refused when it is not a
/// folder of ours closed to others.
fn ensure_dir() -> io::Result<Vec<u8>> {
    let dir = dir();
    let c = sys::cstring(&dir)?;
    // SAFETY: a valid C string.
    if unsafe { libc::mkdir(c.as_ptr(), 0o700) } != 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EEXIST) {
            return Err(err);
        }
    }
    // SAFETY: zeroed plain-old-data, filled by lstat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers.
    sys::cvt(unsafe { libc::lstat(c.as_ptr(), &mut st) })?;
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR
        || st.st_uid != sys::getuid()
        || st.st_mode & 0o077 != 0
    {
        return Err(io::Error::other(
            "the runner's socket folder is not a 0700 folder of ours",
        ));
    }
    Ok(dir)
}

/// Hands this process's stdin/stdout to the daemon (spawning it if none
/// answers) and returns once the daemon is done with them. `Err`: nothing
/// was handed over; the caller serves itself.
pub fn attach(key: &[u8]) -> Result<(), String> {
    if key.len() < KEY_LEN {
        return Err(format!("the runner key is shorter than {KEY_LEN} bytes"));
    }
    let dir = ensure_dir().map_err(|err| format!("socket folder: {err}"))?;
    let sock_path = [&dir[..], b"/sock"].concat();
    let link = match connect(&sock_path) {
        Ok(fd) => fd,
        Err(_) => {
            spawn(key, &dir)?;
            let give_up = Instant::now() + HANDSHAKE_TIMEOUT;
            loop {
                match connect(&sock_path) {
                    Ok(fd) => break fd,
                    Err(err) if Instant::now() >= give_up => {
                        return Err(format!("cannot reach the daemon: {err}"));
                    }
                    // Another serve's daemon won the lock and is binding.
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }
    };
    let fd = link.as_raw_fd();
    set_timeout(fd, Some(HANDSHAKE_TIMEOUT));
    let (daemon_pid, daemon_uid) = peer(fd).map_err(|err| format!("SO_PEERCRED: {err}"))?;
    if daemon_uid != sys::getuid() {
        return Err(format!("the socket's owner is uid {daemon_uid}, not ours"));
    }
    let me = sys::getpid();
    // Some kernels (gVisor releases of 2022) answer SO_PEERCRED with the
    // caller itself: no pid binding there, on either side (see `pids`).
    let (daemon_pid, me) = pids(daemon_pid, me);
    let mut ours = [0u8; NONCE_LEN];
    sys::random_bytes(&mut ours).map_err(|err| format!("random nonce: {err}"))?;
    send(fd, &ours).map_err(|err| format!("handshake: {err}"))?;
    let mut reply = [0u8; NONCE_LEN + PROOF_LEN + 1];
    let n = recv(fd, &mut reply).map_err(|err| format!("handshake: {err}"))?;
    if n != NONCE_LEN + PROOF_LEN {
        return Err("the daemon's answer has the wrong size (an impostor?)".into());
    }
    let mut theirs = [0u8; NONCE_LEN];
    theirs.copy_from_slice(&reply[..NONCE_LEN]);
    if reply[NONCE_LEN..n] != proof(key, b'D', &ours, &theirs, daemon_pid, me) {
        return Err("the daemon does not know the runner key (an impostor?)".into());
    }
    send_fds(
        fd,
        &proof(key, b'C', &ours, &theirs, daemon_pid, me),
        &[0, 1],
    )
    .map_err(|err| format!("handing over the connection: {err}"))?;
    // Handed over: from here on the daemon owns the conversation.
    set_timeout(fd, None);
    let mut buf = [0u8; 16];
    loop {
        match recv(fd, &mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Ok(()),
        }
    }
}

/// Starts a daemon (double fork, new session) and waits until it listens
/// or says another one holds the lock.
fn spawn(key: &[u8], dir: &[u8]) -> Result<(), String> {
    let (ready_r, ready_w) = sys::pipe().map_err(|err| format!("pipe: {err}"))?;
    let pid = sys::fork().map_err(|err| format!("fork: {err}"))?;
    if pid == 0 {
        // SAFETY: setsid in the fresh child, which leads no group.
        unsafe { libc::setsid() };
        match sys::fork() {
            Ok(0) => {
                let code = daemon_main(key, dir, ready_w);
                sys::exit_now(code);
            }
            _ => sys::exit_now(0),
        }
    }
    drop(ready_w);
    let _ = sys::wait_blocking(pid);
    let mut fds = [sys::pollfd(ready_r.as_raw_fd(), libc::POLLIN)];
    let _ = sys::poll(&mut fds, Some(HANDSHAKE_TIMEOUT));
    let mut byte = [0u8; 1];
    match sys::read(ready_r.as_raw_fd(), &mut byte) {
        Ok(1) if byte[0] == b'R' || byte[0] == b'L' => Ok(()),
        _ => Err("the daemon did not start".into()),
    }
}

fn daemon_main(key: &[u8], dir: &[u8], ready: OwnedFd) -> i32 {
    sys::set_undumpable();
    sys::set_name(c"sandpit-daemon");
    sys::close_all_but(&[ready.as_raw_fd()]);
    sys::stdio_to_devnull();
    let ready_fd = ready.as_raw_fd();
    let say = |byte: u8| {
        let _ = sys::write_all(ready_fd, &[byte]);
    };
    let lock = match listen_locked(dir) {
        Ok(Some(pair)) => pair,
        Ok(None) => {
            say(b'L');
            return 0;
        }
        Err(_) => {
            say(b'E');
            return 1;
        }
    };
    say(b'R');
    drop(ready);
    let (lock_fd, sock) = lock;
    let mut listener = DaemonListener {
        sock,
        key: key.to_vec(),
        pending: Vec::new(),
        done: Vec::new(),
        _lock: lock_fd,
    };
    Server::new(true).run(Some(&mut listener));
    0
}

/// Takes the daemon lock and binds the socket; `None` when another daemon
/// holds the lock.
fn listen_locked(dir: &[u8]) -> io::Result<Option<(OwnedFd, OwnedFd)>> {
    let lock_path = sys::cstring(&[dir, b"/lock"].concat())?;
    // SAFETY: a valid C string; a fresh descriptor or -1.
    let lock = sys::cvt(unsafe {
        libc::open(
            lock_path.as_ptr(),
            libc::O_RDWR | libc::O_CREAT | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            0o600,
        )
    })?;
    // SAFETY: fresh descriptor we own.
    let lock = unsafe { OwnedFd::from_raw_fd(lock) };
    // SAFETY: flock on our descriptor.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Ok(None);
    }
    let sock_path = [dir, b"/sock"].concat();
    let c = sys::cstring(&sock_path)?;
    // SAFETY: a valid C string; a stale socket of a dead daemon goes.
    unsafe { libc::unlink(c.as_ptr()) };
    let sock = socket()?;
    let (addr, len) = sockaddr(&sock_path)?;
    // SAFETY: a valid sockaddr_un of `len` bytes.
    sys::cvt(unsafe {
        libc::bind(
            sock.as_raw_fd(),
            (&addr as *const libc::sockaddr_un).cast(),
            len,
        )
    })?;
    // SAFETY: listen on our socket.
    sys::cvt(unsafe { libc::listen(sock.as_raw_fd(), 128) })?;
    sys::set_nonblocking(sock.as_raw_fd(), true)?;
    Ok(Some((lock, sock)))
}

struct Handshake {
    fd: OwnedFd,
    /// The connecting process, from SO_PEERCRED.
    client_pid: libc::pid_t,
    theirs: Option<[u8; NONCE_LEN]>,
    ours: [u8; NONCE_LEN],
    deadline: Instant,
    failed: bool,
}

struct DaemonListener {
    sock: OwnedFd,
    key: Vec<u8>,
    pending: Vec<Handshake>,
    done: Vec<ConnFds>,
    _lock: OwnedFd,
}

impl Listener for DaemonListener {
    fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    fn accept(&mut self) -> Vec<ConnFds> {
        loop {
            // SAFETY: accept4 without an address; a fresh descriptor or -1.
            let fd = unsafe {
                libc::accept4(
                    self.sock.as_raw_fd(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                )
            };
            if fd < 0 {
                break;
            }
            let mut ours = [0u8; NONCE_LEN];
            // SAFETY: fresh descriptor we own.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let peer = peer(fd.as_raw_fd());
            let failed = sys::random_bytes(&mut ours).is_err()
                || !matches!(peer, Ok((_, uid)) if uid == sys::getuid());
            self.pending.push(Handshake {
                client_pid: peer.map_or(0, |(pid, _)| pid),
                fd,
                theirs: None,
                ours,
                deadline: Instant::now() + HANDSHAKE_TIMEOUT,
                failed,
            });
        }
        let now = Instant::now();
        self.pending.retain(|h| !h.failed && h.deadline > now);
        std::mem::take(&mut self.done)
    }

    fn extra(&self) -> (Vec<RawFd>, Option<Instant>) {
        let fds = self.pending.iter().map(|h| h.fd.as_raw_fd()).collect();
        let deadline = self.pending.iter().map(|h| h.deadline).min();
        (fds, deadline)
    }

    fn ready(&mut self, fd: RawFd) {
        let Some(i) = self.pending.iter().position(|h| h.fd.as_raw_fd() == fd) else {
            return;
        };
        let key = &self.key;
        let h = &mut self.pending[i];
        match h.theirs {
            None => {
                let mut nonce = [0u8; NONCE_LEN + 1];
                match recv(fd, &mut nonce) {
                    Ok(NONCE_LEN) => {
                        let mut theirs = [0u8; NONCE_LEN];
                        theirs.copy_from_slice(&nonce[..NONCE_LEN]);
                        // Its nonce first: the proof binds both, in the
                        // client's order.
                        let answer = [&h.ours[..], &{
                            let (client, daemon) = pids(h.client_pid, sys::getpid());
                            proof(key, b'D', &theirs, &h.ours, daemon, client)
                        }]
                        .concat();
                        h.theirs = Some(theirs);
                        h.failed = send(fd, &answer).is_err();
                    }
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                    _ => h.failed = true,
                }
            }
            Some(theirs) => {
                let mut buf = [0u8; PROOF_LEN + 1];
                match recv_fds(fd, &mut buf) {
                    Ok((PROOF_LEN, fds))
                        if buf[..PROOF_LEN] == {
                            let (client, daemon) = pids(h.client_pid, sys::getpid());
                            proof(key, b'C', &theirs, &h.ours, daemon, client)
                        } && fds.len() == 2 =>
                    {
                        let h = self.pending.remove(i);
                        let mut fds = fds.into_iter();
                        if let (Some(input), Some(output)) = (fds.next(), fds.next()) {
                            self.done.push(ConnFds {
                                input,
                                output,
                                link: Some(h.fd),
                            });
                        }
                    }
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                    _ => h.failed = true,
                }
            }
        }
    }
}
