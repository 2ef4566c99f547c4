//! The runner's wire protocol: length-prefixed binary frames, host → runner
//! ([`ClientFrame`]) and runner → host ([`RunnerFrame`]).
//!
//! A frame is `u32 LE length of the rest | u8 kind | u32 LE request id |
//! payload`. The length counts the kind, the id and the payload, and is at
//! most [`MAX_FRAME`]; a [`Decoder`] refuses a longer one before reading or
//! allocating it. Payload fields are, in order: `u8`/`u32`/`u64`/`i32`/`i64`
//! little-endian, `bool` as one byte (0 or 1), bytes as `u32 LE length |
//! bytes`, lists as `u32 LE count | items`, `Option<T>` as `u8 (0 or 1) | T`.
//!
//! Both sides treat every frame from the other as untrusted: every length is
//! checked against what is left of the frame, so a lying count can neither
//! read past the frame nor make the decoder allocate more than the frame.
//!
//! Conversation: the host sends [`ClientFrame::Hello`]; the runner answers
//! [`RunnerFrame::HelloOk`] (or [`RunnerFrame::Error`] with id 0). Then any
//! number of requests, each with a request id chosen by the host and unique
//! among its requests in flight; every answer carries the id of its request.

use std::fmt;

/// Version of this protocol; `Hello` and `HelloOk` carry it, and a runner
/// refuses a host of another version.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest value of a frame's length field (kind + id + payload), in bytes.
pub const MAX_FRAME: usize = (1 << 20) + 64;

/// Largest data chunk a sender puts in one `Output`, `Stdin`, `Data`,
/// `Write`/`WriteData` or `BgData` frame, in bytes; with the other fields it
/// stays below [`MAX_FRAME`].
pub const MAX_CHUNK: usize = 1 << 20;

/// Bytes before the payload: length (4), kind (1), request id (4).
pub const HEADER_LEN: usize = 9;

/// Stream numbers of `Output`, `BgRead` and `BgData`.
pub const STDOUT: u8 = 1;
/// See [`STDOUT`].
pub const STDERR: u8 = 2;

/// `Error::code` values. File operations use the same numbers as the
/// engine-exec file script's refusals (`src/engine/files.rs`), so the host
/// maps both transports with one table.
pub mod code {
    /// Anything else; `errno` and `message` say what.
    pub const OTHER: u32 = 1;
    /// The protocol was broken (bad frame, unknown request id, wrong version).
    pub const PROTOCOL: u32 = 2;
    /// The command could not be started (fork failed, e.g. the pids limit);
    /// `errno` says why.
    pub const SPAWN: u32 = 3;
    /// Background processes are unavailable (no daemon could be reached).
    pub const NO_BACKGROUND: u32 = 4;
    /// No background process has this id.
    pub const NO_SUCH_BACKGROUND: u32 = 5;
    /// The path does not exist.
    pub const NOT_FOUND: u32 = 81;
    /// The destination of a rename exists already.
    pub const EXISTS: u32 = 82;
    /// The (first) path resolves outside the workspace, e.g. through a symlink.
    pub const OUTSIDE: u32 = 83;
    /// The workspace itself (`SANDPIT_WORKSPACE`) is missing or unset.
    pub const NO_WORKSPACE: u32 = 84;
    /// The file is over the read cap; `message` is its size in decimal digits.
    pub const TOO_LARGE: u32 = 85;
    /// A listing's path is not a folder.
    pub const NOT_A_DIR: u32 = 86;
    /// A read's or write's path is a folder (or not a regular file).
    pub const IS_A_DIR: u32 = 87;
    /// The second path (a rename's destination) resolves outside the workspace.
    pub const OUTSIDE_SECOND: u32 = 88;
}

/// Kinds of [`Entry`].
pub mod entry_kind {
    /// A device, FIFO, socket or anything else.
    pub const OTHER: u8 = 0;
    /// A regular file.
    pub const FILE: u8 = 1;
    /// A folder.
    pub const DIR: u8 = 2;
    /// A symlink (not followed: its own size).
    pub const SYMLINK: u8 = 3;
}

/// A command to run: host → runner.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Run {
    /// Request id; every answer about this command carries it.
    pub id: u32,
    /// Program and arguments; the program is looked up in `PATH` when it has
    /// no `/`, as `execvp` does. Must not be empty.
    pub argv: Vec<Vec<u8>>,
    /// Set on top of the runner's environment (minus its `SANDPIT_*` variables).
    pub env: Vec<(Vec<u8>, Vec<u8>)>,
    /// Working directory; empty means the runner's own.
    pub cwd: Vec<u8>,
    /// Whether stdin is a pipe fed by `Stdin`/`StdinEof`; otherwise the
    /// command reads EOF at once.
    pub stdin: bool,
    /// Milliseconds until the runner kills the whole tree; 0 = no deadline.
    pub timeout_ms: u64,
    /// Bytes kept per stream; past it the command is stopped and its `Exit`
    /// says `truncated`. 0 = no cap.
    pub output_cap: u64,
    /// Run in the background: the answer is only `Started` with a
    /// `background_id`; the command outlives this connection; its output is
    /// read with `BgRead`.
    pub background: bool,
}

/// Host → runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    /// First frame of a connection (request id 0). `key`: the sandbox's
    /// runner key, at least 16 bytes, the same for every connection to this
    /// sandbox and unknown inside it (e.g. random, kept in a container
    /// label): the runner and its background daemon prove knowledge of it to
    /// each other, so code in the sandbox cannot pose as the daemon. Empty:
    /// no daemon, so no background processes (foreground commands work).
    Hello {
        version: u32,
        key: Vec<u8>,
    },
    Run(Run),
    /// Bytes for a command's stdin (at most [`MAX_CHUNK`]).
    Stdin {
        id: u32,
        data: Vec<u8>,
    },
    /// Closes a command's stdin.
    StdinEof {
        id: u32,
    },
    /// Kills a command's whole tree; its `Exit` says `cancelled`.
    Cancel {
        id: u32,
    },
    /// Lists a folder → `Entries`.
    List {
        id: u32,
        path: Vec<u8>,
    },
    /// Reads a file of at most `cap` bytes → `Data` frames, the last with
    /// `last` set; or `Error` (`TOO_LARGE` when over `cap`).
    Read {
        id: u32,
        path: Vec<u8>,
        cap: u64,
    },
    /// Starts writing a file of `size` bytes (parents created), `data` being
    /// its first bytes; `WriteData` frames bring the rest. Once `size` bytes
    /// arrived the file is replaced atomically (temporary + rename) → `Done`.
    /// A connection that ends first leaves the file unchanged.
    Write {
        id: u32,
        path: Vec<u8>,
        size: u64,
        data: Vec<u8>,
    },
    /// More bytes of a `Write`.
    WriteData {
        id: u32,
        data: Vec<u8>,
    },
    /// Makes a folder and its missing parents (an existing folder is fine) → `Done`.
    Mkdir {
        id: u32,
        path: Vec<u8>,
    },
    /// Renames an entry (the entry itself, even a symlink), refusing to
    /// replace one; parents of `to` are created → `Done`.
    Rename {
        id: u32,
        from: Vec<u8>,
        to: Vec<u8>,
    },
    /// Deletes an entry (a symlink itself, never its target); a folder with
    /// its contents when `recursive`, else only if empty → `Done`.
    Delete {
        id: u32,
        path: Vec<u8>,
        recursive: bool,
    },
    /// Lists background processes → `BgEntries`.
    BgList {
        id: u32,
    },
    /// Reads a background process's output from `offset` (bytes since it
    /// started), at most `max` bytes → `BgData`.
    BgRead {
        id: u32,
        background_id: u64,
        stream: u8,
        offset: u64,
        max: u32,
    },
    /// Kills a background process's tree → `Done` once it is dead.
    BgStop {
        id: u32,
        background_id: u64,
    },
}

/// How a command ended: runner → host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Exit {
    /// The `Run`'s request id.
    pub id: u32,
    /// As the engine reports it: the exit status, or 128+n for signal n.
    pub exit_code: i64,
    /// The signal that ended the command's main process, if one did.
    pub signal: Option<i32>,
    /// From start to end, in microseconds.
    pub duration_us: u64,
    /// The runner killed the tree at `timeout_ms`.
    pub timed_out: bool,
    /// The runner killed the tree on `Cancel` (or `BgStop`).
    pub cancelled: bool,
    /// A stream passed `output_cap`; the command was stopped.
    pub truncated: bool,
    /// After a kill (timeout, cancel, cap): every process of the tree was
    /// seen gone (the shepherd had no child left). False when there was no
    /// kill or when the check failed.
    pub killed_verified: bool,
    /// Processes of the tree still alive when the runner gave up killing.
    pub survivors: u32,
    /// Bytes the command wrote per stream, kept or not, until it ended or
    /// was stopped.
    pub stdout_bytes: u64,
    /// As `stdout_bytes`, for stderr.
    pub stderr_bytes: u64,
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// The name's bytes.
    pub name: Vec<u8>,
    /// One of [`entry_kind`].
    pub kind: u8,
    /// As `lstat` says (a symlink's own size), in bytes.
    pub size: u64,
    /// `st_mode`.
    pub mode: u32,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
}

/// One background process.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bg {
    /// The id `Started` gave it, unique in its sandbox's daemon.
    pub background_id: u64,
    /// Its main process (0 until forked).
    pub pid: u32,
    /// As it was asked for.
    pub argv: Vec<Vec<u8>>,
    /// Milliseconds since the Unix epoch.
    pub started_unix_ms: u64,
    /// Its main process has not ended yet.
    pub running: bool,
    /// Set once it ended: as in [`Exit::exit_code`].
    pub exit_code: Option<i64>,
}

/// Runner → host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunnerFrame {
    /// Answer to `Hello`: the runner's version and pid, and whether
    /// background processes are available (a daemon was reached).
    HelloOk {
        version: u32,
        pid: u32,
        background: bool,
    },
    /// The command started; `pid` is its main process (in the sandbox's pid
    /// namespace); `background_id` is set for background commands.
    Started {
        id: u32,
        pid: u32,
        background_id: Option<u64>,
    },
    /// Output of a command, in order per stream; `stream` is [`STDOUT`] or
    /// [`STDERR`].
    Output {
        id: u32,
        stream: u8,
        data: Vec<u8>,
    },
    Exit(Exit),
    /// A request failed; `code` is one of [`code`], `errno` the OS error (0
    /// if none). `message` never holds a path.
    Error {
        id: u32,
        code: u32,
        errno: i32,
        message: Vec<u8>,
    },
    /// A listing, unsorted, without write temporaries, in one or more
    /// frames (each within [`MAX_FRAME`]; see [`entries_frames`]); the last
    /// has `last` set.
    Entries {
        id: u32,
        entries: Vec<Entry>,
        last: bool,
    },
    /// A chunk of a file; `total_size` is the file's size when opened.
    Data {
        id: u32,
        data: Vec<u8>,
        total_size: u64,
        last: bool,
    },
    /// A file operation or `BgStop` succeeded.
    Done {
        id: u32,
    },
    BgEntries {
        id: u32,
        list: Vec<Bg>,
    },
    /// Output of a background process from `next_offset - data.len()`;
    /// `dropped_before` is the first offset still in its ring buffer (bytes
    /// before it were overwritten).
    BgData {
        id: u32,
        data: Vec<u8>,
        next_offset: u64,
        dropped_before: u64,
    },
}

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtoError {
    /// The length field is over [`MAX_FRAME`] (or under the header).
    FrameSize(u64),
    /// A kind byte this side does not know.
    UnknownKind(u8),
    /// A field runs past the end of its frame, or bytes are left over.
    Malformed(&'static str),
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoError::FrameSize(len) => {
                write!(f, "frame length {len} is outside 5..={MAX_FRAME}")
            }
            ProtoError::UnknownKind(kind) => write!(f, "unknown frame kind {kind:#04x}"),
            ProtoError::Malformed(what) => write!(f, "malformed frame: {what}"),
        }
    }
}

impl std::error::Error for ProtoError {}

mod kind {
    pub const HELLO: u8 = 0x01;
    pub const RUN: u8 = 0x02;
    pub const STDIN: u8 = 0x03;
    pub const STDIN_EOF: u8 = 0x04;
    pub const CANCEL: u8 = 0x05;
    pub const LIST: u8 = 0x10;
    pub const READ: u8 = 0x11;
    pub const WRITE: u8 = 0x12;
    pub const WRITE_DATA: u8 = 0x13;
    pub const MKDIR: u8 = 0x14;
    pub const RENAME: u8 = 0x15;
    pub const DELETE: u8 = 0x16;
    pub const BG_LIST: u8 = 0x20;
    pub const BG_READ: u8 = 0x21;
    pub const BG_STOP: u8 = 0x22;

    pub const HELLO_OK: u8 = 0x81;
    pub const STARTED: u8 = 0x82;
    pub const OUTPUT: u8 = 0x83;
    pub const EXIT: u8 = 0x84;
    pub const ERROR: u8 = 0x85;
    pub const ENTRIES: u8 = 0x86;
    pub const DATA: u8 = 0x87;
    pub const DONE: u8 = 0x88;
    pub const BG_ENTRIES: u8 = 0x89;
    pub const BG_DATA: u8 = 0x8a;
}

/// Appends one frame's fields to a buffer; `finish` writes the length.
struct Writer<'a> {
    out: &'a mut Vec<u8>,
    start: usize,
}

impl<'a> Writer<'a> {
    fn new(out: &'a mut Vec<u8>, kind: u8, id: u32) -> Self {
        let start = out.len();
        out.extend_from_slice(&[0; 4]);
        out.push(kind);
        out.extend_from_slice(&id.to_le_bytes());
        Writer { out, start }
    }
    fn u8(&mut self, v: u8) -> &mut Self {
        self.out.push(v);
        self
    }
    fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(u8::from(v))
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn i32(&mut self, v: i32) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn i64(&mut self, v: i64) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn bytes(&mut self, v: &[u8]) -> &mut Self {
        // A longer field cannot fit a frame; the decoder refuses the frame.
        self.u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
        self.out.extend_from_slice(v);
        self
    }
    fn count(&mut self, n: usize) -> &mut Self {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX))
    }
    fn finish(&mut self) {
        let len = self.out.len() - self.start - 4;
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        self.out[self.start..self.start + 4].copy_from_slice(&len.to_le_bytes());
    }
}

/// Reads fields of one frame's payload, never past its end.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        if n > self.rest.len() {
            return Err(ProtoError::Malformed("a field runs past the frame"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtoError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, ProtoError> {
        Ok(self.array::<1>()?[0])
    }
    fn bool(&mut self) -> Result<bool, ProtoError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(ProtoError::Malformed("a flag is neither 0 nor 1")),
        }
    }
    fn u32(&mut self) -> Result<u32, ProtoError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn i32(&mut self) -> Result<i32, ProtoError> {
        Ok(i32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, ProtoError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, ProtoError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    fn bytes(&mut self) -> Result<Vec<u8>, ProtoError> {
        let len = self.u32()? as usize;
        Ok(self.take(len)?.to_vec())
    }
    /// A list count, checked against what is left: every item takes at
    /// least `min_item` bytes, so a lying count is refused before allocating.
    fn count(&mut self, min_item: usize) -> Result<usize, ProtoError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_item) > self.rest.len() {
            return Err(ProtoError::Malformed("a list count runs past the frame"));
        }
        Ok(n)
    }
    fn option<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, ProtoError>,
    ) -> Result<Option<T>, ProtoError> {
        if self.bool()? {
            Ok(Some(read(self)?))
        } else {
            Ok(None)
        }
    }
    fn end(&self) -> Result<(), ProtoError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(ProtoError::Malformed(
                "bytes left over after the last field",
            ))
        }
    }
}

fn read_byte_list(r: &mut Reader<'_>) -> Result<Vec<Vec<u8>>, ProtoError> {
    let n = r.count(4)?;
    (0..n).map(|_| r.bytes()).collect()
}

impl ClientFrame {
    /// The request id this frame carries (0 for `Hello`).
    pub fn id(&self) -> u32 {
        match self {
            ClientFrame::Hello { .. } => 0,
            ClientFrame::Run(run) => run.id,
            ClientFrame::Stdin { id, .. }
            | ClientFrame::StdinEof { id }
            | ClientFrame::Cancel { id }
            | ClientFrame::List { id, .. }
            | ClientFrame::Read { id, .. }
            | ClientFrame::Write { id, .. }
            | ClientFrame::WriteData { id, .. }
            | ClientFrame::Mkdir { id, .. }
            | ClientFrame::Rename { id, .. }
            | ClientFrame::Delete { id, .. }
            | ClientFrame::BgList { id }
            | ClientFrame::BgRead { id, .. }
            | ClientFrame::BgStop { id, .. } => *id,
        }
    }

    /// Appends this frame, length prefix included, to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let id = self.id();
        match self {
            ClientFrame::Hello { version, key } => Writer::new(out, kind::HELLO, id)
                .u32(*version)
                .bytes(key)
                .finish(),
            ClientFrame::Run(run) => {
                let mut w = Writer::new(out, kind::RUN, id);
                w.count(run.argv.len());
                for arg in &run.argv {
                    w.bytes(arg);
                }
                w.count(run.env.len());
                for (key, value) in &run.env {
                    w.bytes(key).bytes(value);
                }
                w.bytes(&run.cwd)
                    .bool(run.stdin)
                    .u64(run.timeout_ms)
                    .u64(run.output_cap)
                    .bool(run.background)
                    .finish();
            }
            ClientFrame::Stdin { data, .. } => {
                Writer::new(out, kind::STDIN, id).bytes(data).finish()
            }
            ClientFrame::StdinEof { .. } => Writer::new(out, kind::STDIN_EOF, id).finish(),
            ClientFrame::Cancel { .. } => Writer::new(out, kind::CANCEL, id).finish(),
            ClientFrame::List { path, .. } => Writer::new(out, kind::LIST, id).bytes(path).finish(),
            ClientFrame::Read { path, cap, .. } => Writer::new(out, kind::READ, id)
                .bytes(path)
                .u64(*cap)
                .finish(),
            ClientFrame::Write {
                path, size, data, ..
            } => Writer::new(out, kind::WRITE, id)
                .bytes(path)
                .u64(*size)
                .bytes(data)
                .finish(),
            ClientFrame::WriteData { data, .. } => {
                Writer::new(out, kind::WRITE_DATA, id).bytes(data).finish()
            }
            ClientFrame::Mkdir { path, .. } => {
                Writer::new(out, kind::MKDIR, id).bytes(path).finish()
            }
            ClientFrame::Rename { from, to, .. } => Writer::new(out, kind::RENAME, id)
                .bytes(from)
                .bytes(to)
                .finish(),
            ClientFrame::Delete {
                path, recursive, ..
            } => Writer::new(out, kind::DELETE, id)
                .bytes(path)
                .bool(*recursive)
                .finish(),
            ClientFrame::BgList { .. } => Writer::new(out, kind::BG_LIST, id).finish(),
            ClientFrame::BgRead {
                background_id,
                stream,
                offset,
                max,
                ..
            } => Writer::new(out, kind::BG_READ, id)
                .u64(*background_id)
                .u8(*stream)
                .u64(*offset)
                .u32(*max)
                .finish(),
            ClientFrame::BgStop { background_id, .. } => Writer::new(out, kind::BG_STOP, id)
                .u64(*background_id)
                .finish(),
        }
    }

    fn decode(kind: u8, id: u32, payload: &[u8]) -> Result<Self, ProtoError> {
        let mut r = Reader { rest: payload };
        let frame = match kind {
            kind::HELLO => ClientFrame::Hello {
                version: r.u32()?,
                key: r.bytes()?,
            },
            kind::RUN => {
                let argv = read_byte_list(&mut r)?;
                let n = r.count(8)?;
                let env = (0..n)
                    .map(|_| Ok((r.bytes()?, r.bytes()?)))
                    .collect::<Result<_, ProtoError>>()?;
                ClientFrame::Run(Run {
                    id,
                    argv,
                    env,
                    cwd: r.bytes()?,
                    stdin: r.bool()?,
                    timeout_ms: r.u64()?,
                    output_cap: r.u64()?,
                    background: r.bool()?,
                })
            }
            kind::STDIN => ClientFrame::Stdin {
                id,
                data: r.bytes()?,
            },
            kind::STDIN_EOF => ClientFrame::StdinEof { id },
            kind::CANCEL => ClientFrame::Cancel { id },
            kind::LIST => ClientFrame::List {
                id,
                path: r.bytes()?,
            },
            kind::READ => ClientFrame::Read {
                id,
                path: r.bytes()?,
                cap: r.u64()?,
            },
            kind::WRITE => ClientFrame::Write {
                id,
                path: r.bytes()?,
                size: r.u64()?,
                data: r.bytes()?,
            },
            kind::WRITE_DATA => ClientFrame::WriteData {
                id,
                data: r.bytes()?,
            },
            kind::MKDIR => ClientFrame::Mkdir {
                id,
                path: r.bytes()?,
            },
            kind::RENAME => ClientFrame::Rename {
                id,
                from: r.bytes()?,
                to: r.bytes()?,
            },
            kind::DELETE => ClientFrame::Delete {
                id,
                path: r.bytes()?,
                recursive: r.bool()?,
            },
            kind::BG_LIST => ClientFrame::BgList { id },
            kind::BG_READ => ClientFrame::BgRead {
                id,
                background_id: r.u64()?,
                stream: r.u8()?,
                offset: r.u64()?,
                max: r.u32()?,
            },
            kind::BG_STOP => ClientFrame::BgStop {
                id,
                background_id: r.u64()?,
            },
            other => return Err(ProtoError::UnknownKind(other)),
        };
        r.end()?;
        Ok(frame)
    }
}

impl RunnerFrame {
    /// The request id this frame answers (0 for `HelloOk`).
    pub fn id(&self) -> u32 {
        match self {
            RunnerFrame::HelloOk { .. } => 0,
            RunnerFrame::Exit(exit) => exit.id,
            RunnerFrame::Started { id, .. }
            | RunnerFrame::Output { id, .. }
            | RunnerFrame::Error { id, .. }
            | RunnerFrame::Entries { id, .. }
            | RunnerFrame::Data { id, .. }
            | RunnerFrame::Done { id }
            | RunnerFrame::BgEntries { id, .. }
            | RunnerFrame::BgData { id, .. } => *id,
        }
    }

    /// Appends this frame, length prefix included, to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let id = self.id();
        match self {
            RunnerFrame::HelloOk {
                version,
                pid,
                background,
            } => Writer::new(out, kind::HELLO_OK, id)
                .u32(*version)
                .u32(*pid)
                .bool(*background)
                .finish(),
            RunnerFrame::Started {
                pid, background_id, ..
            } => {
                let mut w = Writer::new(out, kind::STARTED, id);
                w.u32(*pid);
                match background_id {
                    Some(bg) => w.bool(true).u64(*bg),
                    None => w.bool(false),
                };
                w.finish();
            }
            RunnerFrame::Output { stream, data, .. } => Writer::new(out, kind::OUTPUT, id)
                .u8(*stream)
                .bytes(data)
                .finish(),
            RunnerFrame::Exit(exit) => {
                let mut w = Writer::new(out, kind::EXIT, id);
                w.i64(exit.exit_code);
                match exit.signal {
                    Some(signal) => w.bool(true).i32(signal),
                    None => w.bool(false),
                };
                w.u64(exit.duration_us)
                    .bool(exit.timed_out)
                    .bool(exit.cancelled)
                    .bool(exit.truncated)
                    .bool(exit.killed_verified)
                    .u32(exit.survivors)
                    .u64(exit.stdout_bytes)
                    .u64(exit.stderr_bytes)
                    .finish();
            }
            RunnerFrame::Error {
                code,
                errno,
                message,
                ..
            } => Writer::new(out, kind::ERROR, id)
                .u32(*code)
                .i32(*errno)
                .bytes(message)
                .finish(),
            RunnerFrame::Entries { entries, last, .. } => {
                let mut w = Writer::new(out, kind::ENTRIES, id);
                w.count(entries.len());
                for e in entries {
                    w.bytes(&e.name)
                        .u8(e.kind)
                        .u64(e.size)
                        .u32(e.mode)
                        .i64(e.mtime_ns);
                }
                w.bool(*last).finish();
            }
            RunnerFrame::Data {
                data,
                total_size,
                last,
                ..
            } => Writer::new(out, kind::DATA, id)
                .bytes(data)
                .u64(*total_size)
                .bool(*last)
                .finish(),
            RunnerFrame::Done { .. } => Writer::new(out, kind::DONE, id).finish(),
            RunnerFrame::BgEntries { list, .. } => {
                let mut w = Writer::new(out, kind::BG_ENTRIES, id);
                w.count(list.len());
                for bg in list {
                    w.u64(bg.background_id).u32(bg.pid).count(bg.argv.len());
                    for arg in &bg.argv {
                        w.bytes(arg);
                    }
                    w.u64(bg.started_unix_ms).bool(bg.running);
                    match bg.exit_code {
                        Some(code) => w.bool(true).i64(code),
                        None => w.bool(false),
                    };
                }
                w.finish();
            }
            RunnerFrame::BgData {
                data,
                next_offset,
                dropped_before,
                ..
            } => Writer::new(out, kind::BG_DATA, id)
                .bytes(data)
                .u64(*next_offset)
                .u64(*dropped_before)
                .finish(),
        }
    }

    fn decode(kind: u8, id: u32, payload: &[u8]) -> Result<Self, ProtoError> {
        let mut r = Reader { rest: payload };
        let frame = match kind {
            kind::HELLO_OK => RunnerFrame::HelloOk {
                version: r.u32()?,
                pid: r.u32()?,
                background: r.bool()?,
            },
            kind::STARTED => RunnerFrame::Started {
                id,
                pid: r.u32()?,
                background_id: r.option(Reader::u64)?,
            },
            kind::OUTPUT => RunnerFrame::Output {
                id,
                stream: r.u8()?,
                data: r.bytes()?,
            },
            kind::EXIT => RunnerFrame::Exit(Exit {
                id,
                exit_code: r.i64()?,
                signal: r.option(Reader::i32)?,
                duration_us: r.u64()?,
                timed_out: r.bool()?,
                cancelled: r.bool()?,
                truncated: r.bool()?,
                killed_verified: r.bool()?,
                survivors: r.u32()?,
                stdout_bytes: r.u64()?,
                stderr_bytes: r.u64()?,
            }),
            kind::ERROR => RunnerFrame::Error {
                id,
                code: r.u32()?,
                errno: r.i32()?,
                message: r.bytes()?,
            },
            kind::ENTRIES => {
                // name length (4) + kind (1) + size (8) + mode (4) + mtime (8)
                let n = r.count(25)?;
                let entries = (0..n)
                    .map(|_| {
                        Ok(Entry {
                            name: r.bytes()?,
                            kind: r.u8()?,
                            size: r.u64()?,
                            mode: r.u32()?,
                            mtime_ns: r.i64()?,
                        })
                    })
                    .collect::<Result<_, ProtoError>>()?;
                RunnerFrame::Entries {
                    id,
                    entries,
                    last: r.bool()?,
                }
            }
            kind::DATA => RunnerFrame::Data {
                id,
                data: r.bytes()?,
                total_size: r.u64()?,
                last: r.bool()?,
            },
            kind::DONE => RunnerFrame::Done { id },
            kind::BG_ENTRIES => {
                // id (8) + pid (4) + argc (4) + started (8) + running (1) + option (1)
                let n = r.count(26)?;
                let list = (0..n)
                    .map(|_| {
                        Ok(Bg {
                            background_id: r.u64()?,
                            pid: r.u32()?,
                            argv: read_byte_list(&mut r)?,
                            started_unix_ms: r.u64()?,
                            running: r.bool()?,
                            exit_code: r.option(Reader::i64)?,
                        })
                    })
                    .collect::<Result<_, ProtoError>>()?;
                RunnerFrame::BgEntries { id, list }
            }
            kind::BG_DATA => RunnerFrame::BgData {
                id,
                data: r.bytes()?,
                next_offset: r.u64()?,
                dropped_before: r.u64()?,
            },
            other => return Err(ProtoError::UnknownKind(other)),
        };
        r.end()?;
        Ok(frame)
    }
}

/// Appends `RunnerFrame::Output { id, stream, data }` to `out` without
/// copying `data` into a frame value first (the runner's hot path).
pub fn encode_output(id: u32, stream: u8, data: &[u8], out: &mut Vec<u8>) {
    Writer::new(out, kind::OUTPUT, id)
        .u8(stream)
        .bytes(data)
        .finish();
}

/// Bytes [`encode_output_header`] writes.
pub const OUTPUT_HEADER_LEN: usize = HEADER_LEN + 1 + 4;

/// Appends the first [`OUTPUT_HEADER_LEN`] bytes of
/// `RunnerFrame::Output { id, stream, data }` for a `data` of `len` bytes
/// (at most [`MAX_CHUNK`]) that the caller sends right after them, byte for
/// byte: the runner moves a command's output with `splice(2)` rather than
/// copying it through a buffer.
pub fn encode_output_header(id: u32, stream: u8, len: usize, out: &mut Vec<u8>) {
    let len = u32::try_from(len.min(MAX_CHUNK)).unwrap_or(u32::MAX);
    let frame_len = (OUTPUT_HEADER_LEN - 4) as u32 + len;
    out.extend_from_slice(&frame_len.to_le_bytes());
    out.push(kind::OUTPUT);
    out.extend_from_slice(&id.to_le_bytes());
    out.push(stream);
    out.extend_from_slice(&len.to_le_bytes());
}

/// Bytes an [`Entry`] takes in a frame.
fn entry_len(entry: &Entry) -> usize {
    4 + entry.name.len() + 1 + 8 + 4 + 8
}

/// A listing as `Entries` frames that each fit [`MAX_FRAME`] (a name is at
/// most 255 bytes on Linux, so any entry fits one), the last with `last`
/// set; one empty frame for an empty listing.
pub fn entries_frames(id: u32, entries: Vec<Entry>) -> Vec<RunnerFrame> {
    let mut frames = Vec::new();
    let mut chunk: Vec<Entry> = Vec::new();
    let mut size = 0;
    for entry in entries {
        let len = entry_len(&entry);
        if !chunk.is_empty() && size + len > MAX_CHUNK {
            frames.push(RunnerFrame::Entries {
                id,
                entries: std::mem::take(&mut chunk),
                last: false,
            });
            size = 0;
        }
        size += len;
        chunk.push(entry);
    }
    frames.push(RunnerFrame::Entries {
        id,
        entries: chunk,
        last: true,
    });
    frames
}

/// Frames that a [`Decoder`] can produce.
pub trait Frame: Sized {
    /// Decodes one frame's kind, id and payload.
    fn decode_frame(kind: u8, id: u32, payload: &[u8]) -> Result<Self, ProtoError>;
}

impl Frame for ClientFrame {
    fn decode_frame(kind: u8, id: u32, payload: &[u8]) -> Result<Self, ProtoError> {
        ClientFrame::decode(kind, id, payload)
    }
}

impl Frame for RunnerFrame {
    fn decode_frame(kind: u8, id: u32, payload: &[u8]) -> Result<Self, ProtoError> {
        RunnerFrame::decode(kind, id, payload)
    }
}

/// Cuts a byte stream into frames of type `F` ([`ClientFrame`] or
/// [`RunnerFrame`]). Holds at most one frame plus what `push` was given.
/// After an error the stream is out of step: drop the connection.
#[derive(Debug)]
pub struct Decoder<F> {
    buf: Vec<u8>,
    start: usize,
    _frame: std::marker::PhantomData<fn() -> F>,
}

impl<F> Default for Decoder<F> {
    fn default() -> Self {
        Decoder {
            buf: Vec::new(),
            start: 0,
            _frame: std::marker::PhantomData,
        }
    }
}

impl<F: Frame> Decoder<F> {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes received.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > (64 << 10) && self.start * 2 > self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes pushed but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next whole frame, `None` until one has fully arrived. Errors: the
    /// length field is over [`MAX_FRAME`] (found as soon as the 4 length
    /// bytes are in, before the frame itself), an unknown kind, or a payload
    /// that does not parse.
    // Not an Iterator: "nothing yet" and "broken" must stay apart.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<F>, ProtoError> {
        let avail = &self.buf[self.start..];
        if avail.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_le_bytes([avail[0], avail[1], avail[2], avail[3]]) as usize;
        if !(HEADER_LEN - 4..=MAX_FRAME).contains(&len) {
            return Err(ProtoError::FrameSize(len as u64));
        }
        if avail.len() < 4 + len {
            return Ok(None);
        }
        let kind = avail[4];
        let id = u32::from_le_bytes([avail[5], avail[6], avail[7], avail[8]]);
        let payload = &avail[HEADER_LEN..4 + len];
        let frame = F::decode_frame(kind, id, payload);
        self.start += 4 + len;
        frame.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_header_then_data_is_an_output_frame() {
        let data: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        let mut whole = Vec::new();
        encode_output(7, STDERR, &data, &mut whole);
        let mut split = Vec::new();
        encode_output_header(7, STDERR, data.len(), &mut split);
        assert_eq!(split.len(), OUTPUT_HEADER_LEN);
        split.extend_from_slice(&data);
        assert_eq!(split, whole);
        let mut decoder = Decoder::<RunnerFrame>::new();
        decoder.push(&split);
        assert_eq!(
            decoder.next().ok().flatten(),
            Some(RunnerFrame::Output {
                id: 7,
                stream: STDERR,
                data
            })
        );
    }

    fn client_frames() -> Vec<ClientFrame> {
        vec![
            ClientFrame::Hello {
                version: PROTOCOL_VERSION,
                key: vec![9; 16],
            },
            ClientFrame::Run(Run {
                id: 7,
                argv: vec![b"sh".to_vec(), b"-c".to_vec(), b"echo \xff".to_vec()],
                env: vec![
                    (b"A".to_vec(), b"b=c".to_vec()),
                    (b"E".to_vec(), Vec::new()),
                ],
                cwd: b"/work".to_vec(),
                stdin: true,
                timeout_ms: 1500,
                output_cap: 1 << 20,
                background: true,
            }),
            ClientFrame::Run(Run::default()),
            ClientFrame::Stdin {
                id: 7,
                data: vec![0, 1, 2, 255],
            },
            ClientFrame::StdinEof { id: 7 },
            ClientFrame::Cancel { id: u32::MAX },
            ClientFrame::List {
                id: 1,
                path: b"a/b".to_vec(),
            },
            ClientFrame::Read {
                id: 2,
                path: b"f".to_vec(),
                cap: u64::MAX,
            },
            ClientFrame::Write {
                id: 3,
                path: b"f".to_vec(),
                size: 10,
                data: b"hello".to_vec(),
            },
            ClientFrame::WriteData {
                id: 3,
                data: b"world".to_vec(),
            },
            ClientFrame::Mkdir {
                id: 4,
                path: b"d".to_vec(),
            },
            ClientFrame::Rename {
                id: 5,
                from: b"x".to_vec(),
                to: b"y/z".to_vec(),
            },
            ClientFrame::Delete {
                id: 6,
                path: b"d".to_vec(),
                recursive: true,
            },
            ClientFrame::BgList { id: 8 },
            ClientFrame::BgRead {
                id: 9,
                background_id: 3,
                stream: STDERR,
                offset: 12,
                max: 4096,
            },
            ClientFrame::BgStop {
                id: 10,
                background_id: 3,
            },
        ]
    }

    fn runner_frames() -> Vec<RunnerFrame> {
        vec![
            RunnerFrame::HelloOk {
                version: 1,
                pid: 42,
                background: true,
            },
            RunnerFrame::Started {
                id: 1,
                pid: 99,
                background_id: None,
            },
            RunnerFrame::Started {
                id: 1,
                pid: 99,
                background_id: Some(5),
            },
            RunnerFrame::Output {
                id: 1,
                stream: STDOUT,
                data: b"out\n".to_vec(),
            },
            RunnerFrame::Exit(Exit {
                id: 1,
                exit_code: 137,
                signal: Some(9),
                duration_us: 1234,
                timed_out: true,
                cancelled: false,
                truncated: true,
                killed_verified: true,
                survivors: 0,
                stdout_bytes: 5,
                stderr_bytes: 6,
            }),
            RunnerFrame::Exit(Exit::default()),
            RunnerFrame::Error {
                id: 2,
                code: code::OUTSIDE,
                errno: 18,
                message: b"outside".to_vec(),
            },
            RunnerFrame::Entries {
                id: 3,
                entries: vec![
                    Entry {
                        name: b"a\tb".to_vec(),
                        kind: entry_kind::FILE,
                        size: 3,
                        mode: 0o100644,
                        mtime_ns: -5,
                    },
                    Entry::default(),
                ],
                last: true,
            },
            RunnerFrame::Entries {
                id: 3,
                entries: Vec::new(),
                last: false,
            },
            RunnerFrame::Data {
                id: 4,
                data: b"abc".to_vec(),
                total_size: 3,
                last: true,
            },
            RunnerFrame::Done { id: 5 },
            RunnerFrame::BgEntries {
                id: 6,
                list: vec![
                    Bg {
                        background_id: 1,
                        pid: 10,
                        argv: vec![b"sleep".to_vec(), b"9".to_vec()],
                        started_unix_ms: 1_700_000_000_000,
                        running: false,
                        exit_code: Some(-1),
                    },
                    Bg::default(),
                ],
            },
            RunnerFrame::BgData {
                id: 7,
                data: b"xyz".to_vec(),
                next_offset: 10,
                dropped_before: 7,
            },
        ]
    }

    fn round_trip<F: Frame + PartialEq + fmt::Debug>(
        frames: Vec<F>,
        encode: impl Fn(&F, &mut Vec<u8>),
    ) {
        let mut bytes = Vec::new();
        for frame in &frames {
            encode(frame, &mut bytes);
        }
        // Whole, then one byte at a time: a frame split anywhere decodes the same.
        let mut whole = Decoder::<F>::new();
        whole.push(&bytes);
        let mut got = Vec::new();
        while let Some(frame) = whole.next().unwrap() {
            got.push(frame);
        }
        assert_eq!(got, frames);
        assert_eq!(whole.buffered(), 0);

        let mut trickle = Decoder::<F>::new();
        let mut got = Vec::new();
        for byte in &bytes {
            trickle.push(std::slice::from_ref(byte));
            while let Some(frame) = trickle.next().unwrap() {
                got.push(frame);
            }
        }
        assert_eq!(got, frames);
    }

    #[test]
    fn client_frames_round_trip() {
        round_trip(client_frames(), ClientFrame::encode);
    }

    #[test]
    fn runner_frames_round_trip() {
        round_trip(runner_frames(), RunnerFrame::encode);
    }

    #[test]
    fn a_big_listing_is_split_into_frames_that_fit() {
        let entries: Vec<Entry> = (0..30_000)
            .map(|i| Entry {
                name: format!("{i:0>60}").into_bytes(),
                ..Entry::default()
            })
            .collect();
        let frames = entries_frames(9, entries.clone());
        assert!(frames.len() > 1);
        let mut decoder = Decoder::<RunnerFrame>::new();
        let mut back = Vec::new();
        for (i, frame) in frames.iter().enumerate() {
            let mut bytes = Vec::new();
            frame.encode(&mut bytes);
            assert!(bytes.len() - 4 <= MAX_FRAME);
            decoder.push(&bytes);
            match decoder.next() {
                Ok(Some(RunnerFrame::Entries { entries, last, .. })) => {
                    assert_eq!(last, i + 1 == frames.len());
                    back.extend(entries);
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(back, entries);
        assert!(matches!(
            entries_frames(1, Vec::new()).as_slice(),
            [RunnerFrame::Entries { last: true, .. }]
        ));
    }

    #[test]
    fn output_encodes_the_same_without_a_frame_value() {
        let (mut direct, mut via_frame) = (Vec::new(), Vec::new());
        encode_output(3, STDERR, b"abc", &mut direct);
        RunnerFrame::Output {
            id: 3,
            stream: STDERR,
            data: b"abc".to_vec(),
        }
        .encode(&mut via_frame);
        assert_eq!(direct, via_frame);
    }

    #[test]
    fn a_truncated_frame_waits_for_the_rest() {
        let mut bytes = Vec::new();
        ClientFrame::List {
            id: 1,
            path: b"abc".to_vec(),
        }
        .encode(&mut bytes);
        let mut decoder = Decoder::<ClientFrame>::new();
        decoder.push(&bytes[..bytes.len() - 1]);
        assert_eq!(decoder.next(), Ok(None));
        decoder.push(&bytes[bytes.len() - 1..]);
        assert!(matches!(
            decoder.next(),
            Ok(Some(ClientFrame::List { id: 1, .. }))
        ));
    }

    #[test]
    fn an_oversize_frame_is_refused_from_its_length_alone() {
        let mut decoder = Decoder::<ClientFrame>::new();
        let len = (MAX_FRAME as u32 + 1).to_le_bytes();
        decoder.push(&len);
        assert_eq!(
            decoder.next(),
            Err(ProtoError::FrameSize(MAX_FRAME as u64 + 1))
        );
        // The largest allowed length is accepted (it waits for the bytes).
        let mut decoder = Decoder::<ClientFrame>::new();
        decoder.push(&(MAX_FRAME as u32).to_le_bytes());
        assert_eq!(decoder.next(), Ok(None));
        // Too short to hold a kind and an id.
        let mut decoder = Decoder::<ClientFrame>::new();
        decoder.push(&[4, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(decoder.next(), Err(ProtoError::FrameSize(4)));
    }

    #[test]
    fn the_biggest_chunk_fits_a_frame() {
        let mut bytes = Vec::new();
        RunnerFrame::Data {
            id: 1,
            data: vec![7; MAX_CHUNK],
            total_size: 1,
            last: false,
        }
        .encode(&mut bytes);
        assert!(bytes.len() - 4 <= MAX_FRAME);
        let mut decoder = Decoder::<RunnerFrame>::new();
        decoder.push(&bytes);
        assert!(matches!(decoder.next(), Ok(Some(RunnerFrame::Data { .. }))));
    }

    #[test]
    fn unknown_kinds_are_refused() {
        let mut decoder = Decoder::<ClientFrame>::new();
        decoder.push(&[5, 0, 0, 0, 0x7f, 1, 0, 0, 0]);
        assert_eq!(decoder.next(), Err(ProtoError::UnknownKind(0x7f)));
        // A runner kind is not a client kind, and the other way round.
        let mut bytes = Vec::new();
        RunnerFrame::Done { id: 1 }.encode(&mut bytes);
        let mut decoder = Decoder::<ClientFrame>::new();
        decoder.push(&bytes);
        assert_eq!(decoder.next(), Err(ProtoError::UnknownKind(0x88)));
        let mut bytes = Vec::new();
        ClientFrame::BgList { id: 1 }.encode(&mut bytes);
        let mut decoder = Decoder::<RunnerFrame>::new();
        decoder.push(&bytes);
        assert_eq!(decoder.next(), Err(ProtoError::UnknownKind(0x20)));
    }

    #[test]
    fn lying_lengths_inside_a_frame_are_refused() {
        // A List whose path claims 1000 bytes but the frame holds 3.
        let mut bytes = vec![0, 0, 0, 0, 0x10, 1, 0, 0, 0];
        bytes.extend_from_slice(&1000u32.to_le_bytes());
        bytes.extend_from_slice(b"abc");
        let len = (bytes.len() - 4) as u32;
        bytes[..4].copy_from_slice(&len.to_le_bytes());
        let mut decoder = Decoder::<ClientFrame>::new();
        decoder.push(&bytes);
        assert!(matches!(decoder.next(), Err(ProtoError::Malformed(_))));

        // A Run claiming four billion arguments in a tiny frame.
        let mut bytes = vec![0, 0, 0, 0, 0x02, 1, 0, 0, 0];
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        let len = (bytes.len() - 4) as u32;
        bytes[..4].copy_from_slice(&len.to_le_bytes());
        let mut decoder = Decoder::<ClientFrame>::new();
        decoder.push(&bytes);
        assert!(matches!(decoder.next(), Err(ProtoError::Malformed(_))));

        // Trailing bytes after the last field.
        let mut bytes = Vec::new();
        ClientFrame::Cancel { id: 1 }.encode(&mut bytes);
        bytes.push(0);
        bytes[0] += 1;
        let mut decoder = Decoder::<ClientFrame>::new();
        decoder.push(&bytes);
        assert!(matches!(decoder.next(), Err(ProtoError::Malformed(_))));

        // A flag that is neither 0 nor 1.
        let mut bytes = Vec::new();
        ClientFrame::Delete {
            id: 1,
            path: Vec::new(),
            recursive: true,
        }
        .encode(&mut bytes);
        let last = bytes.len() - 1;
        bytes[last] = 2;
        let mut decoder = Decoder::<ClientFrame>::new();
        decoder.push(&bytes);
        assert!(matches!(decoder.next(), Err(ProtoError::Malformed(_))));
    }
}
