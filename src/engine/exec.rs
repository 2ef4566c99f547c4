//! Running commands in a sandbox: live stdout/stderr events, wall-clock
//! timeouts and cancellation that kill the command's whole process tree, and
//! per-stream output caps enforced while streaming.
//!
//! Everything goes through [`ExecTransport`], so a faster transport can
//! replace the engine's exec without touching callers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use tokio::io::AsyncWriteExt as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Engine, is_not_found};

/// Output kept per stream unless a request says otherwise.
pub const DEFAULT_OUTPUT_CAP: usize = 1 << 20;
/// Exit status reported for a timed-out command, as coreutils' `timeout` does.
pub const TIMEOUT_EXIT_CODE: i64 = 124;
/// Exit status of a process killed by SIGKILL (the memory limit's killer).
pub const SIGKILL_EXIT_CODE: i64 = 137;
/// Exit status reported when the output cap stopped the command: 128 +
/// SIGPIPE, as for a writer whose reader went away.
pub const OUTPUT_CAP_EXIT_CODE: i64 = 141;
/// Exit status reported when the sandbox went away under the command, or its
/// status was lost; `docker run` uses it for the engine's own failures.
pub const SANDBOX_LOST_EXIT_CODE: i64 = 125;
/// Exit status reported for a cancelled command, as shells report SIGINT.
pub const CANCELLED_EXIT_CODE: i64 = 130;

/// Every exec carries this variable with a unique value. The killer takes
/// processes carrying it as the command's, wherever they moved in the
/// process tree, but never relies on it alone: the command controls its
/// environment (see the killer, `kill_fn`, in this module).
pub const EXEC_TAG_VAR: &str = "SANDPIT_EXEC_TAG";

/// Bytes read from a stdin stream at a time.
const STDIN_CHUNK: usize = 64 << 10;

/// How long to wait for a killed command to report its end.
const KILL_SETTLE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecCommand {
    /// Run as given, without a shell.
    Argv(Vec<String>),
    /// Run with `/bin/sh -c`.
    Shell(String),
}

impl ExecCommand {
    pub fn argv(&self) -> Vec<String> {
        match self {
            ExecCommand::Argv(argv) => argv.clone(),
            ExecCommand::Shell(script) => vec!["/bin/sh".into(), "-c".into(), script.clone()],
        }
    }
}

/// A reader streamed into a command's stdin, e.g. this process's own stdin.
pub type StdinStream = Box<dyn tokio::io::AsyncRead + Send + Unpin>;

/// One command to run. Not `Clone`: a [`StdinStream`] can be read only once.
pub struct ExecRequest {
    pub command: ExecCommand,
    /// Defaults to the sandbox's work dir.
    pub work_dir: Option<String>,
    pub env: Vec<(String, String)>,
    /// Bytes written to the command's stdin (before `stdin_stream`, if any).
    /// With neither set, no stdin is attached: the command reads EOF.
    pub stdin: Option<Vec<u8>>,
    /// Copied to the command's stdin until EOF, after `stdin`, in bounded
    /// chunks. A read error ends the stdin like EOF does. The command may
    /// end before reading it all; the rest is left unread.
    pub stdin_stream: Option<StdinStream>,
    pub timeout: Option<Duration>,
    /// Bytes kept per stream; past it the command is stopped and the result
    /// marked truncated.
    pub output_cap: usize,
}

impl std::fmt::Debug for ExecRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecRequest")
            .field("command", &self.command)
            .field("work_dir", &self.work_dir)
            .field("env", &self.env)
            .field("stdin", &self.stdin.as_ref().map(Vec::len))
            .field("stdin_stream", &self.stdin_stream.is_some())
            .field("timeout", &self.timeout)
            .field("output_cap", &self.output_cap)
            .finish()
    }
}

impl ExecRequest {
    pub fn new(command: ExecCommand) -> Self {
        Self {
            command,
            work_dir: None,
            env: Vec::new(),
            stdin: None,
            stdin_stream: None,
            timeout: None,
            output_cap: DEFAULT_OUTPUT_CAP,
        }
    }

    pub fn shell(script: impl Into<String>) -> Self {
        Self::new(ExecCommand::Shell(script.into()))
    }

    pub fn argv<S: Into<String>>(argv: impl IntoIterator<Item = S>) -> Self {
        Self::new(ExecCommand::Argv(
            argv.into_iter().map(Into::into).collect(),
        ))
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    pub fn stdin(mut self, stdin: Vec<u8>) -> Self {
        self.stdin = Some(stdin);
        self
    }

    /// Streams `reader` into the command's stdin; see [`ExecRequest::stdin_stream`].
    pub fn stdin_stream(
        mut self,
        reader: impl tokio::io::AsyncRead + Send + Unpin + 'static,
    ) -> Self {
        self.stdin_stream = Some(Box::new(reader));
        self
    }

    fn has_stdin(&self) -> bool {
        self.stdin.is_some() || self.stdin_stream.is_some()
    }

    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn output_cap(mut self, cap: usize) -> Self {
        self.output_cap = cap;
        self
    }

    pub fn work_dir(mut self, dir: impl Into<String>) -> Self {
        self.work_dir = Some(dir.into());
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// A piece of output, as it arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecEvent {
    pub stream: Stream,
    pub data: Vec<u8>,
}

/// What became of a sandbox that went away while a command ran in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxLoss {
    /// Its container was removed.
    Removed,
    /// Its container was stopped (and is not running now).
    Stopped,
}

impl SandboxLoss {
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxLoss::Removed => "removed",
            SandboxLoss::Stopped => "stopped",
        }
    }
}

/// How a command ended, as far as a caller must tell apart: the one table of
/// sandpit's exit statuses. [`ExecResult::outcome`] picks one; the CLI exits
/// with [`ExecResult::status_code`] and prints [`ExecResult::reason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecOutcome {
    /// The command ended by itself; its own exit status is passed on.
    Exited,
    /// The timeout passed; its process tree was killed.
    TimedOut,
    /// The sandbox's memory limit killed it.
    MemoryLimit,
    /// It wrote more than the output cap on one stream and was stopped.
    OutputCap,
    /// The sandbox was removed or stopped while it ran.
    SandboxLost,
    /// Its exit status could not be read back from the engine.
    StatusUnknown,
    /// It was cancelled (Ctrl-C, SIGTERM or SIGHUP to the CLI).
    Cancelled,
}

impl ExecOutcome {
    /// Every outcome, in the order the help lists them.
    pub const ALL: [ExecOutcome; 7] = [
        ExecOutcome::Exited,
        ExecOutcome::TimedOut,
        ExecOutcome::SandboxLost,
        ExecOutcome::StatusUnknown,
        ExecOutcome::Cancelled,
        ExecOutcome::MemoryLimit,
        ExecOutcome::OutputCap,
    ];

    /// The exit status sandpit reports; `None` for [`ExecOutcome::Exited`],
    /// which passes on the command's own.
    pub fn code(self) -> Option<i64> {
        match self {
            ExecOutcome::Exited => None,
            ExecOutcome::TimedOut => Some(TIMEOUT_EXIT_CODE),
            ExecOutcome::MemoryLimit => Some(SIGKILL_EXIT_CODE),
            ExecOutcome::OutputCap => Some(OUTPUT_CAP_EXIT_CODE),
            ExecOutcome::SandboxLost | ExecOutcome::StatusUnknown => Some(SANDBOX_LOST_EXIT_CODE),
            ExecOutcome::Cancelled => Some(CANCELLED_EXIT_CODE),
        }
    }

    /// The `status` field of JSON results, e.g. `"timed_out"`.
    pub fn name(self) -> &'static str {
        match self {
            ExecOutcome::Exited => "exited",
            ExecOutcome::TimedOut => "timed_out",
            ExecOutcome::MemoryLimit => "memory_limit",
            ExecOutcome::OutputCap => "output_cap",
            ExecOutcome::SandboxLost => "sandbox_lost",
            ExecOutcome::StatusUnknown => "status_unknown",
            ExecOutcome::Cancelled => "cancelled",
        }
    }

    /// One line for a help table.
    pub fn summary(self) -> &'static str {
        match self {
            ExecOutcome::Exited => "the command's own exit status",
            ExecOutcome::TimedOut => "timed out; the command's process tree was killed",
            ExecOutcome::MemoryLimit => "killed by the sandbox's memory limit",
            ExecOutcome::OutputCap => {
                "output cap reached on stdout or stderr; the command was stopped"
            }
            ExecOutcome::SandboxLost => "the sandbox was removed or stopped during the command",
            ExecOutcome::StatusUnknown => "the command's exit status could not be read back",
            ExecOutcome::Cancelled => {
                "cancelled (Ctrl-C, SIGTERM or SIGHUP); its process tree was killed"
            }
        }
    }

    /// The exit-status table for help texts: one line per outcome, with its
    /// status and JSON `status` name.
    pub fn help_table() -> String {
        let mut table = String::from("Exit status:\n");
        for outcome in Self::ALL {
            let code = outcome
                .code()
                .map_or("N".to_string(), |code| code.to_string());
            table.push_str(&format!(
                "  {code:>3}  {:<15} {}\n",
                outcome.name(),
                outcome.summary()
            ));
        }
        table
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExecResult {
    /// The command's exit status; `None` when it could not be read back.
    pub exit_code: Option<i64>,
    #[serde(serialize_with = "serialize_duration_ms", rename = "duration_ms")]
    pub duration: Duration,
    pub timed_out: bool,
    pub truncated: bool,
    pub oom_killed: bool,
    pub cancelled: bool,
    /// The process tree could not be killed from inside (e.g. the pids limit
    /// was exhausted), so the sandbox was restarted to stop it.
    pub sandbox_restarted: bool,
    /// Set when the sandbox went away while the command ran.
    pub sandbox_lost: Option<SandboxLoss>,
    /// After sandpit stopped the command (timeout, cancel, output cap): pids
    /// (inside the sandbox) of processes that may be the command's and were
    /// still running when the killer re-scanned, because it may not signal
    /// them (another uid). At most 64, ascending. Empty when every process
    /// was checked gone, or nothing was stopped.
    pub survivors: Vec<u32>,
    /// Set when sandpit stopped the command but could not check that its
    /// whole tree is gone: the image has no `/bin/sh` for the wrapper that
    /// reports the command's root process, or the wrapper did not report
    /// it. Only processes carrying the exec's tag (and their descendants)
    /// were killed then.
    pub kill_unverified: bool,
    /// The sandbox's memory limit in bytes, read when the limit killed the
    /// command (for its message); `None` otherwise or when unknown.
    pub memory_limit: Option<u64>,
    /// Bytes received per stream, kept or not, until the command ended or
    /// sandpit stopped it (output drained while killing is not counted).
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    /// Output kept, up to the cap, per stream.
    #[serde(skip)]
    pub stdout: Vec<u8>,
    #[serde(skip)]
    pub stderr: Vec<u8>,
}

fn serialize_duration_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

impl ExecResult {
    /// How the command ended. Sandpit's own stops come first (they explain
    /// the kill that follows), then the sandbox going away, then the memory
    /// limit.
    pub fn outcome(&self) -> ExecOutcome {
        if self.cancelled {
            ExecOutcome::Cancelled
        } else if self.timed_out {
            ExecOutcome::TimedOut
        } else if self.truncated {
            ExecOutcome::OutputCap
        } else if self.sandbox_lost.is_some() {
            ExecOutcome::SandboxLost
        } else if self.oom_killed {
            ExecOutcome::MemoryLimit
        } else if self.exit_code.is_none() {
            ExecOutcome::StatusUnknown
        } else {
            ExecOutcome::Exited
        }
    }

    /// The status a CLI should exit with: the outcome's (see
    /// [`ExecOutcome::code`]), else the command's own.
    pub fn status_code(&self) -> i64 {
        let outcome = self.outcome();
        outcome
            .code()
            .or(self.exit_code)
            .unwrap_or(SANDBOX_LOST_EXIT_CODE)
    }

    /// What became of the process tree of a command sandpit stopped, as
    /// checked: killed, killed but with survivors, or not checked.
    fn kill_text(&self) -> String {
        if !self.survivors.is_empty() {
            let pids: Vec<String> = self.survivors.iter().map(u32::to_string).collect();
            format!(
                "it was killed, but {} process{} that may be its own could not be (pid {})",
                self.survivors.len(),
                if self.survivors.len() == 1 { "" } else { "es" },
                pids.join(", ")
            )
        } else if self.kill_unverified {
            "its processes were killed, but sandpit could not check that none is left".to_string()
        } else {
            "its process tree was killed".to_string()
        }
    }

    /// One line saying why sandpit ended or reports the command as it does,
    /// naming `container`; `None` when the command simply exited. After a
    /// stop it says what the killer checked: the whole tree gone, survivors
    /// by pid, or that it could not check.
    pub fn reason(&self, container: &str) -> Option<String> {
        let seconds = self.duration.as_secs_f64();
        let reason = match self.outcome() {
            ExecOutcome::Exited => return None,
            ExecOutcome::TimedOut => {
                format!("timed out after {seconds:.1}s; {}", self.kill_text())
            }
            ExecOutcome::MemoryLimit => match self.memory_limit {
                Some(limit) => format!(
                    "killed by the memory limit ({})",
                    super::policy::ByteSize(limit)
                ),
                None => "killed by the sandbox's memory limit".to_string(),
            },
            ExecOutcome::OutputCap => format!(
                "output cap reached: the command wrote more than its cap on one stream and was stopped; {}",
                self.kill_text()
            ),
            ExecOutcome::SandboxLost => format!(
                "sandbox `{container}` was {} during the command",
                self.sandbox_lost.map_or("lost", SandboxLoss::as_str)
            ),
            ExecOutcome::StatusUnknown => {
                format!("the command's exit status could not be read back from `{container}`")
            }
            ExecOutcome::Cancelled => format!("cancelled; {}", self.kill_text()),
        };
        Some(reason)
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Where an exec runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecTarget {
    pub container: String,
    /// `uid:gid`
    pub user: String,
    pub work_dir: String,
}

/// The seam between callers and how commands reach a sandbox.
pub trait ExecTransport: Send + Sync {
    fn run<'a>(
        &'a self,
        target: &'a ExecTarget,
        request: ExecRequest,
        events: Option<mpsc::Sender<ExecEvent>>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, anyhow::Result<ExecResult>>;
}

/// Exec through the Docker engine API: the fallback where no in-sandbox
/// runner serves. Each command runs under a small `/bin/sh` wrapper that
/// reports its root process (pid and start time) before the command
/// starts; timeouts, cancels and output caps kill the command's tree by
/// that root (see the killer, `kill_fn`, in this module), look again, and
/// report survivors in [`ExecResult::survivors`] instead of claiming
/// success. The timeout counts from the call, so it returns within about a
/// killer's exec (measured 0.1 to 0.3 s) of the deadline.
///
/// Deadlines are enforced inside the sandbox too: with a timeout, the
/// wrapper starts a watchdog that kills the tree [`WATCHDOG_GRACE`] after
/// the deadline, so a command outlives a client that was SIGKILLed, crashed
/// or lost the engine by at most that. Without a timeout, nothing here can
/// notice that a client went away: such a command runs until it ends by
/// itself, is cancelled by a live client, or its sandbox stops (the runner
/// transport kills a vanished client's commands).
#[derive(Clone)]
pub struct EngineExec {
    engine: Engine,
    /// Whether a command with a timeout gets the in-sandbox watchdog.
    watchdog: bool,
}

impl EngineExec {
    pub fn new(engine: Engine) -> Self {
        Self {
            engine,
            watchdog: true,
        }
    }

    /// No in-sandbox watchdog: the deadline is then the client's alone.
    /// For gVisor, which counts its own threads against the pids limit and
    /// stops the whole sandbox at it: a watchdog beside every probe of the
    /// isolation battery took a default gVisor sandbox over it every time
    /// (measured: 3 runs of 3 with the watchdog, none without).
    pub fn without_watchdog(mut self) -> Self {
        self.watchdog = false;
        self
    }
}

impl ExecTransport for EngineExec {
    fn run<'a>(
        &'a self,
        target: &'a ExecTarget,
        request: ExecRequest,
        events: Option<mpsc::Sender<ExecEvent>>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, anyhow::Result<ExecResult>> {
        Box::pin(run_engine_exec(
            &self.engine,
            target,
            request,
            events,
            cancel,
            self.watchdog,
        ))
    }
}

pub(crate) fn new_exec_tag() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{:x}-{:x}-{:x}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Entry points for an exec started outside [`EngineExec`] (the interactive
/// shell, `engine::shell`), so that its processes are tagged, found and
/// killed exactly as a command's are: a fresh tag (as [`EXEC_TAG_VAR`]), the
/// killer run from here, the killer's scripts (bash, then sh; `$1` is the
/// tag) for running it from inside, and an exec's exit status once it
/// ended.
pub(crate) fn exec_tag() -> String {
    new_exec_tag()
}

/// `root` is the exec's root process as it reported itself (pid, and start
/// time in clock ticks since boot): membership is judged by it, as for a
/// wrapped command; without it, by the tag.
pub(crate) async fn kill_exec_tree(
    engine: &Engine,
    target: &ExecTarget,
    tag: &str,
    root: Option<(u32, u64)>,
) -> anyhow::Result<bool> {
    let root = root.map(|(pid, start)| RootProcess { pid, start });
    kill_tree(engine, target, tag, root)
        .await
        .map(|report| report.restarted)
}

pub(crate) fn killer_scripts() -> (&'static str, &'static str) {
    (KILLER_BASH, KILLER_SH)
}

pub(crate) async fn exec_exit_code(engine: &Engine, exec_id: &str) -> Option<i64> {
    wait_exec_exit(engine, exec_id).await
}

/// Why sandpit stopped a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopReason {
    Timeout,
    Cancel,
    Cap,
}

/// Keeps up to `cap` bytes of one stream and counts them all; both
/// transports cap output with it.
pub(crate) struct CappedBuffer {
    pub(crate) kept: Vec<u8>,
    cap: usize,
    pub(crate) total: u64,
}

impl CappedBuffer {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            kept: Vec::new(),
            cap,
            total: 0,
        }
    }

    /// Appends what fits; returns the part kept and whether anything overflowed.
    pub(crate) fn push<'d>(&mut self, data: &'d [u8]) -> (&'d [u8], bool) {
        self.total = self.total.saturating_add(data.len() as u64);
        let room = self.cap.saturating_sub(self.kept.len());
        let kept = &data[..data.len().min(room)];
        self.kept.extend_from_slice(kept);
        (kept, data.len() > room)
    }
}

/// Stdin not yet handed to a command: given back when the wrapper could
/// not start, so the unwrapped run gets it whole.
type HeldStdin = (Option<Vec<u8>>, Option<StdinStream>);

/// How one attempt ended.
enum Attempt {
    Done(Box<ExecResult>),
    /// The wrapper could not start (no `/bin/sh` in the image); nothing of
    /// the command ran.
    NoWrapper(HeldStdin),
}

async fn run_engine_exec(
    engine: &Engine,
    target: &ExecTarget,
    mut request: ExecRequest,
    events: Option<mpsc::Sender<ExecEvent>>,
    cancel: CancellationToken,
    watchdog: bool,
) -> anyhow::Result<ExecResult> {
    let started = Instant::now();
    // An empty argv is the engine's to refuse, as before.
    let wrap = !request.command.argv().is_empty();
    match run_attempt(
        engine,
        target,
        &mut request,
        &events,
        &cancel,
        Wrap {
            wrapped: wrap,
            watchdog,
        },
        started,
    )
    .await?
    {
        Attempt::Done(result) => Ok(*result),
        Attempt::NoWrapper((stdin, stdin_stream)) => {
            tracing::debug!(
                "no /bin/sh for the exec wrapper in {}; running the command unwrapped",
                target.container
            );
            request.stdin = stdin;
            request.stdin_stream = stdin_stream;
            match run_attempt(
                engine,
                target,
                &mut request,
                &events,
                &cancel,
                Wrap {
                    wrapped: false,
                    watchdog,
                },
                started,
            )
            .await?
            {
                Attempt::Done(result) => Ok(*result),
                Attempt::NoWrapper(_) => {
                    anyhow::bail!("the unwrapped command reported no wrapper (a bug)")
                }
            }
        }
    }
}

/// Bytes received per stream after a kill are waited for at most this long
/// once the killer is done: a survivor may hold the output open.
const DRAIN_AFTER_KILL: Duration = Duration::from_millis(500);
/// How long a stop waits for the wrapper's line (it comes first, within
/// milliseconds of the start) so the killer knows the root.
const HELLO_WAIT: Duration = Duration::from_secs(1);

/// How [`run_attempt`] starts a command.
#[derive(Debug, Clone, Copy)]
struct Wrap {
    /// Under the wrapper that reports the command's root.
    wrapped: bool,
    /// With the in-sandbox watchdog, when the command has a timeout.
    watchdog: bool,
}

async fn run_attempt(
    engine: &Engine,
    target: &ExecTarget,
    request: &mut ExecRequest,
    events: &Option<mpsc::Sender<ExecEvent>>,
    cancel: &CancellationToken,
    wrap: Wrap,
    started: Instant,
) -> anyhow::Result<Attempt> {
    let Wrap { wrapped, watchdog } = wrap;
    let docker = engine.docker();
    let tag = new_exec_tag();
    let mut env: Vec<String> = request
        .env
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    env.push(format!("{EXEC_TAG_VAR}={tag}"));
    let work_dir = request.work_dir.clone().unwrap_or(target.work_dir.clone());
    let argv = if wrapped {
        wrapped_argv(request.command.argv(), request.timeout.filter(|_| watchdog))
    } else {
        request.command.argv()
    };
    let created = docker
        .create_exec(
            &target.container,
            CreateExecOptions {
                attach_stdin: Some(request.has_stdin()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                tty: Some(false),
                env: Some(env),
                cmd: Some(argv),
                user: Some(target.user.clone()),
                working_dir: Some(work_dir),
                ..Default::default()
            },
        )
        .await
        .map_err(|err| exec_error(err, &target.container))?;
    let started_exec = docker
        .start_exec(&created.id, Some(StartExecOptions::default()))
        .await
        .map_err(|err| exec_error(err, &target.container))?;
    let StartExecResults::Attached {
        mut output,
        mut input,
    } = started_exec
    else {
        anyhow::bail!("the engine started the exec detached; expected an attached stream");
    };

    // Stdin waits for the wrapper's line: a wrapper that cannot start gives
    // it back whole for the unwrapped run.
    let (go, gate) = tokio::sync::oneshot::channel::<()>();
    let mut go = Some(go);
    if !wrapped && let Some(go) = go.take() {
        let _ = go.send(());
    }
    let stdin_task = request.has_stdin().then(|| {
        let (bytes, stream) = (request.stdin.take(), request.stdin_stream.take());
        tokio::spawn(async move {
            if gate.await.is_err() {
                return Some((bytes, stream));
            }
            // A command that exits without reading its stdin closes the pipe;
            // that is its business, not an error.
            if let Some(bytes) = bytes
                && input.write_all(&bytes).await.is_err()
            {
                return None;
            }
            if let Some(stream) = stream {
                // Large chunks keep a big stdin fast; one buffer keeps it
                // bounded in memory. A failing reader (e.g. a closed fd 0)
                // ends the stdin as EOF would.
                let mut reader = tokio::io::BufReader::with_capacity(STDIN_CHUNK, stream);
                match tokio::io::copy_buf(&mut reader, &mut input).await {
                    Ok(bytes) => tracing::debug!("stdin stream ended after {bytes} bytes"),
                    Err(err) => tracing::debug!("stdin stream broke: {err}"),
                }
            }
            let _ = input.shutdown().await;
            None
        })
    });

    let mut greeting = Greeting::new(wrapped);
    let mut stdout = CappedBuffer::new(request.output_cap);
    let mut stderr = CappedBuffer::new(request.output_cap);
    let deadline = request
        .timeout
        .map(|timeout| tokio::time::Instant::from_std(started) + timeout);
    let mut stop: Option<StopReason> = None;
    'read: loop {
        let next = tokio::select! {
            next = output.next() => next,
            _ = sleep_until_opt(deadline) => { stop = Some(StopReason::Timeout); break; }
            _ = cancel.cancelled() => { stop = Some(StopReason::Cancel); break; }
        };
        let Some(chunk) = next else { break };
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(err) => {
                tracing::warn!("exec output stream of {} broke: {err}", target.container);
                break;
            }
        };
        let (stream, data) = match chunk {
            bollard::container::LogOutput::StdOut { message } => (Stream::Stdout, message),
            bollard::container::LogOutput::StdErr { message } => (Stream::Stderr, message),
            _ => continue,
        };
        let was_waiting = greeting.waiting();
        let passed = greeting.feed(stream, data.to_vec());
        if was_waiting
            && !greeting.waiting()
            && let Some(go) = go.take()
        {
            let _ = go.send(());
        }
        for (stream, data) in passed {
            let buffer = match stream {
                Stream::Stdout => &mut stdout,
                Stream::Stderr => &mut stderr,
            };
            let (kept, overflowed) = buffer.push(&data);
            if !kept.is_empty()
                && let Some(events) = events
            {
                // A slow reader holds the output back, but never the deadline or
                // a cancel. A reader that went away only ends the live view; the
                // result still carries the output.
                let event = ExecEvent {
                    stream,
                    data: kept.to_vec(),
                };
                tokio::select! {
                    _ = events.send(event) => {}
                    _ = sleep_until_opt(deadline) => { stop = Some(StopReason::Timeout); break 'read; }
                    _ = cancel.cancelled() => { stop = Some(StopReason::Cancel); break 'read; }
                }
            }
            if overflowed {
                stop = Some(StopReason::Cap);
                break 'read;
            }
        }
    }

    if stop.is_none() && greeting.waiting() {
        // The output ended before the wrapper spoke: it never ran when the
        // engine could not start /bin/sh (126 or 127).
        let held = greeting.release();
        drop(output);
        let code = wait_exec_exit(engine, &created.id).await;
        if matches!(code, Some(126 | 127)) {
            drop(go);
            let stdin = match stdin_task {
                Some(task) => task.await.ok().flatten().unwrap_or((None, None)),
                None => (None, None),
            };
            return Ok(Attempt::NoWrapper(stdin));
        }
        for (stream, data) in held {
            match stream {
                Stream::Stdout => stdout.push(&data),
                Stream::Stderr => stderr.push(&data),
            };
        }
        return Ok(Attempt::Done(Box::new(ExecResult {
            exit_code: code,
            duration: started.elapsed(),
            kill_unverified: false,
            stdout_bytes: stdout.total,
            stderr_bytes: stderr.total,
            stdout: stdout.kept,
            stderr: stderr.kept,
            ..Default::default()
        })));
    }
    // Killed at the deadline without sandpit's stop (the in-sandbox watchdog
    // of a client that was too slow): that is still the timeout.
    if stop.is_none() && deadline.is_some_and(|deadline| tokio::time::Instant::now() >= deadline) {
        stop = Some(StopReason::Timeout);
    }

    let mut kill = KillReport::default();
    if stop.is_some() {
        // The killer needs the root: the wrapper's line is the first output,
        // so wait for it a moment when a stop came before it.
        let hello_by = tokio::time::Instant::now() + HELLO_WAIT;
        let mut ended = false;
        while greeting.waiting() {
            match tokio::time::timeout_at(hello_by, output.next()).await {
                Ok(Some(Ok(bollard::container::LogOutput::StdOut { message }))) => {
                    greeting.feed(Stream::Stdout, message.to_vec());
                }
                Ok(Some(Ok(bollard::container::LogOutput::StdErr { message }))) => {
                    greeting.feed(Stream::Stderr, message.to_vec());
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_)) | None) => {
                    ended = true;
                    break;
                }
                Err(_) => break,
            }
        }
        if greeting.waiting() {
            greeting.give_up();
        }
        // Keep reading (and dropping) output while killing: a command blocked
        // on a full pipe must not stall the engine's exec machinery. Once the
        // killer is done, a survivor holding the output open is not waited
        // for long.
        let killing = kill_tree(engine, target, &tag, greeting.root());
        tokio::pin!(killing);
        let killed = loop {
            tokio::select! {
                killed = &mut killing => break killed,
                next = output.next(), if !ended => ended = next.is_none(),
            }
        };
        if !ended {
            let _ = tokio::time::timeout(DRAIN_AFTER_KILL, async {
                while output.next().await.is_some() {}
            })
            .await;
        }
        kill = killed?;
        if !greeting.wrapper_ran() || greeting.root().is_none() {
            kill.verified = false;
        }
    }
    if let Some(task) = stdin_task {
        task.abort();
    }
    drop(output);

    let exit_code = wait_exec_exit(engine, &created.id).await;
    Ok(Attempt::Done(Box::new(ExecResult {
        exit_code,
        duration: started.elapsed(),
        timed_out: stop == Some(StopReason::Timeout),
        truncated: stop == Some(StopReason::Cap),
        cancelled: stop == Some(StopReason::Cancel),
        oom_killed: false,
        sandbox_restarted: kill.restarted,
        sandbox_lost: None,
        memory_limit: None,
        survivors: kill.survivors,
        kill_unverified: stop.is_some() && !kill.verified,
        stdout_bytes: stdout.total,
        stderr_bytes: stderr.total,
        stdout: stdout.kept,
        stderr: stderr.kept,
    })))
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn exec_error(err: bollard::errors::Error, container: &str) -> anyhow::Error {
    if is_not_found(&err) {
        anyhow::anyhow!("sandbox container {container} is gone (removed outside sandpit?)")
    } else if let bollard::errors::Error::DockerResponseServerError {
        status_code: 409,
        message,
    } = &err
    {
        anyhow::anyhow!("sandbox container {container} is not running: {message}")
    } else {
        anyhow::Error::new(err).context(format!("cannot run a command in {container}"))
    }
}

/// The exit code once the engine reports the exec finished.
async fn wait_exec_exit(engine: &Engine, exec_id: &str) -> Option<i64> {
    let deadline = Instant::now() + KILL_SETTLE;
    let mut pause = Duration::from_millis(2);
    loop {
        match engine.docker().inspect_exec(exec_id).await {
            Ok(info) if info.running != Some(true) => return info.exit_code,
            Ok(_) if Instant::now() < deadline => {}
            Ok(_) => return None,
            Err(err) => {
                tracing::warn!("cannot inspect exec {exec_id}: {err}");
                return None;
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// The bash function that kills an exec's processes from inside the sandbox:
/// `sandpit_kill TAG ROOT T0`, where ROOT and T0 are the pid and start time
/// (clock ticks since boot, `/proc/PID/stat` field 22) that the wrapper
/// reported for the command's root process (`-` when unknown).
///
/// Membership rests on what the command cannot forge: the process tree
/// under its root (pid and start time, so a reused pid is not taken for
/// it), and every orphan of init started since the root began. An orphan
/// was reparented because its parent died; the command cannot make its
/// children anyone else's, so an orphan born during the command is
/// presumed its own (setsid, double fork, `env -i` and a forged tag change
/// none of that). Processes started before the command, init, and the
/// trees of other execs (their roots have parent pid 0: the engine started
/// them from outside, e.g. another command, a killer or the runner) are
/// left alone. Measured trade-off: an orphan that another command, running
/// at the same time, left behind during this one (e.g. a server started
/// with `setsid ... &`) is killed with it; membership by tag would spare it
/// but is forgeable. The tag stays one signal: processes carrying it are
/// members too, wherever they are.
///
/// It kills in rounds and re-scans until no member it may signal is left,
/// then prints `survivor PID` for each member still there that it may not
/// signal (another uid). Exit status: 0 none left, 2 survivors printed, 1
/// members still appearing after 100 rounds (a flood; survivors printed).
/// Only bash builtins are used, so it still works while the pids limit is
/// full.
macro_rules! kill_fn {
    () => {
        r#"
sandpit_kill() {
  local tag="SANDPIT_EXEC_TAG=$1" root=$2 t0=$3 me=$$
  local round confirm=0 pid dir stat entry changed line
  local -a f ppid member killable stuck
  [[ -n $t0 && $t0 != *[!0-9]* ]] || t0=""
  for ((round = 0; round < 100; round++)); do
    ppid=() member=()
    for dir in /proc/[0-9]*; do
      pid=${dir#/proc/}
      [[ $pid == 1 || $pid == "$me" ]] && continue
      read -r stat 2>/dev/null < "$dir/stat" || continue
      f=(${stat##*) })
      [[ ${f[0]} == [ZX] ]] && continue
      ppid[pid]=${f[1]}
      if [[ -n $t0 ]] && { [[ $pid == "$root" && ${f[19]} == "$t0" ]] ||
          [[ ${f[1]} == 1 && ${f[19]} -ge $t0 ]]; }; then
        member[pid]=1
        continue
      fi
      while IFS= read -r -d '' entry; do
        [[ $entry == "$tag" ]] && { member[pid]=1; break; }
      done 2>/dev/null < "$dir/environ"
    done
    changed=1
    while ((changed)); do
      changed=0
      for pid in "${!ppid[@]}"; do
        if [[ -z ${member[pid]} && -n ${member[ppid[pid]]} ]]; then
          member[pid]=1 changed=1
        fi
      done
    done
    killable=() stuck=()
    for pid in "${!member[@]}"; do
      f=()
      while read -r line; do
        [[ $line == Uid:* ]] && { f=($line); break; }
      done 2>/dev/null < "/proc/$pid/status"
      if [[ ${f[1]} == "$UID" || ${f[3]} == "$UID" || ${f[1]} == "$EUID" || ${f[3]} == "$EUID" ]]; then
        killable+=("$pid")
      else
        stuck+=("$pid")
      fi
    done
    if ((${#killable[@]} == 0)); then
      ((${#stuck[@]} == 0)) && return 0
      ((confirm++ < 5)) && continue
      for pid in "${stuck[@]}"; do echo "survivor $pid"; done
      return 2
    fi
    kill -KILL "${killable[@]}" "${stuck[@]}" 2>/dev/null
  done
  for pid in "${!member[@]}"; do echo "survivor $pid"; done
  return 1
}
"#
    };
}

/// The killer run as its own exec: `bash -c KILLER_BASH sandpit-killer TAG
/// ROOT T0`; see [`kill_fn`].
const KILLER_BASH: &str = concat!(kill_fn!(), r#"sandpit_kill "$@""#);

/// The killer for images without bash (dash, busybox ash): `sh -c
/// KILLER_SH sandpit-killer TAG ROOT T0`, the same rounds, report and exit
/// statuses as [`kill_fn`], and the same membership except the tag: reading
/// environments takes `tr | grep` forks per process and round (measured:
/// a 3 s timeout then returned over 1 s late under gVisor on the loaded
/// 2-core host), and with the root known the tag adds nothing the tree and
/// the orphans miss (it is inherited from the root). Only when the root is
/// unknown are tagged processes and their descendants killed.
const KILLER_SH: &str = r#"
tag="SANDPIT_EXEC_TAG=$1" root=$2 t0=$3 me=$$ uid="" euid=""
case $t0 in '' | *[!0-9]*) t0="" ;; esac
while read -r key real eff _; do
  [ "$key" = Uid: ] && { uid=$real euid=$eff; break; }
done < /proc/$$/status
round=0 confirm=0
while [ $round -lt 100 ]; do
  round=$((round + 1))
  table="" members=" "
  for dir in /proc/[0-9]*; do
    pid=${dir#/proc/}
    { [ "$pid" = 1 ] || [ "$pid" = "$me" ]; } && continue
    read -r stat 2>/dev/null < "$dir/stat" || continue
    set -- ${stat##*) }
    [ $# -ge 20 ] || continue
    state=$1 ppid=$2
    shift 19
    case $state in Z | X) continue ;; esac
    table="$table $pid:$ppid"
    if [ -n "$t0" ]; then
      if { [ "$pid" = "$root" ] && [ "$1" = "$t0" ]; } ||
          { [ "$ppid" = 1 ] && [ "$1" -ge "$t0" ]; }; then
        members="$members$pid "
      fi
    elif tr '\0' '\n' < "$dir/environ" 2>/dev/null | grep -qxF "$tag"; then
      members="$members$pid "
    fi
  done
  changed=1
  while [ -n "$changed" ]; do
    changed=""
    for entry in $table; do
      pid=${entry%:*} ppid=${entry#*:}
      case $members in *" $pid "*) continue ;; esac
      case $members in *" $ppid "*) members="$members$pid " changed=1 ;; esac
    done
  done
  killable="" stuck=""
  for pid in $members; do
    real="" saved=""
    while read -r key real eff saved _; do
      [ "$key" = Uid: ] && break
    done 2>/dev/null < "/proc/$pid/status"
    case " $real $saved " in
      *" $uid "* | *" $euid "*) killable="$killable $pid" ;;
      *) stuck="$stuck $pid" ;;
    esac
  done
  if [ -z "$killable" ]; then
    [ -z "$stuck" ] && exit 0
    confirm=$((confirm + 1))
    [ $confirm -le 5 ] && continue
    for pid in $stuck; do echo "survivor $pid"; done
    exit 2
  fi
  kill -9 $killable $stuck 2>/dev/null
done
for pid in $members; do echo "survivor $pid"; done
exit 1
"#;

/// The in-sandbox deadline: `bash -c WATCHDOG_BASH sandpit-watchdog ROOT T0
/// MS`, started by the wrapper in the background when the request has a
/// timeout. It sleeps (a `read -t` on a pipe nobody writes, woken every
/// 250 ms to see whether the root still runs) until MS milliseconds plus
/// [`WATCHDOG_GRACE`] have passed, then runs the killer itself, so a
/// command whose client died (SIGKILL, crash, lost engine connection) still
/// dies at its deadline. The grace lets a live client's own kill come first
/// and report the timeout. It is a child of the root, so other commands'
/// killers leave it alone and this command's killer takes it along; its
/// stdio is /dev/null, so it never holds the exec's output open; it exits
/// as soon as the root has ended (a normal exit leaves background processes
/// alone, as without a timeout). Without bash in the image there is no
/// watchdog. The command itself can still find and kill it (same uid): it
/// is a backstop for a vanished client, not a wall against the command.
const WATCHDOG_BASH: &str = concat!(
    kill_fn!(),
    r#"
root=$1 t0=$2 ms=$3
now_us() {
  if [[ -n ${EPOCHREALTIME:-} ]]; then us=${EPOCHREALTIME//[!0-9]/}
  else us=$((SECONDS * 1000000)); fi
}
alive() {
  local s f
  read -r s 2>/dev/null < "/proc/$root/stat" || return 1
  f=(${s##*) })
  [[ ${f[0]} != [ZX] && ${f[19]} == "$t0" ]]
}
now_us
end=$((us + ms * 1000 + GRACE_MS * 1000))
exec {pause}<> <(:) 2>/dev/null || pause=""
while alive; do
  now_us
  if ((us >= end)); then
    sandpit_kill "${SANDPIT_EXEC_TAG:-}" "$root" "$t0" >/dev/null 2>&1
    exit
  fi
  left=$((end - us))
  ((left > 250000)) && left=250000
  if [[ -n $pause ]]; then
    printf -v t '%d.%06d' $((left / 1000000)) $((left % 1000000))
    read -r -t "$t" -u "$pause"
  else
    sleep 0.25 || exit
  fi
done
"#
);

/// The watchdog for images without bash: `sh -c WATCHDOG_SH
/// sandpit-watchdog ROOT T0 MS`, as [`WATCHDOG_BASH`] but timed by
/// `/proc/uptime` (read with the `read` builtin) and paced by the `sleep`
/// program, and running [`KILLER_SH`] as a child at the deadline.
const WATCHDOG_SH: &str = r#"root=$1 t0=$2 ms=$3
now() {
  read -r up _ < /proc/uptime || exit
  frac=${up#*.}
  cs=$((${up%.*} * 100 + ${frac#0}))
}
alive() {
  read -r s 2>/dev/null < "/proc/$root/stat" || return 1
  set -- ${s##*) }
  [ $# -ge 20 ] || return 1
  st=$1
  shift 19
  [ "$st" != Z ] && [ "$st" != X ] && [ "$1" = "$t0" ]
}
now
end=$((cs + (ms + GRACE_MS) / 10))
while alive; do
  now
  if [ $cs -ge $end ]; then
    sh -c "$SANDPIT_KILLER_SH" sandpit-killer "${SANDPIT_EXEC_TAG:-}" "$root" "$t0" >/dev/null 2>&1
    exit
  fi
  sleep 0.25 2>/dev/null || sleep 1 || exit
done
"#;

/// How long after the deadline the in-sandbox watchdog kills, leaving the
/// client's own kill (which reports the timeout) the first go.
pub const WATCHDOG_GRACE: Duration = Duration::from_millis(500);

/// The command's wrapper: `/bin/sh -c WRAPPER_SH sandpit MS WATCHDOG_BASH
/// WATCHDOG_SH KILLER_SH ARGV...`
/// (plain POSIX sh: dash, bash and busybox run it). It reads its own pid
/// and start time, says them on stderr as the first bytes of the exec
/// ([`WRAPPER_HELLO`]; nothing of the command can come before, so it cannot
/// be forged), starts the watchdog when MS is not 0 (the bash one, else the
/// POSIX one; the latter finds its killer in `SANDPIT_KILLER_SH`, set for
/// it alone), and
/// execs the command in its own place: the root keeps the pid reported, and
/// exit statuses (126 not executable, 127 not found, 128+n) are the
/// command's.
const WRAPPER_SH: &str = r#"sandpit_t0() { [ $# -ge 20 ] && shift 19 && T0=$1; }
T0=
if read -r s < /proc/$$/stat; then sandpit_t0 ${s##*) }; fi 2>/dev/null
printf '\036sandpit-exec %s %s\n' "$$" "${T0:--}" >&2
ms=$1 wd=$2 wdsh=$3 ksh=$4
shift 4
if [ "$ms" != 0 ] && [ -n "$T0" ]; then
  if command -v bash >/dev/null 2>&1; then
    bash -c "$wd" sandpit-watchdog "$$" "$T0" "$ms" </dev/null >/dev/null 2>&1 &
  else
    SANDPIT_KILLER_SH=$ksh sh -c "$wdsh" sandpit-watchdog "$$" "$T0" "$ms" </dev/null >/dev/null 2>&1 &
  fi
fi
unset -v s ms wd wdsh ksh T0
unset -f sandpit_t0
exec "$@"
"#;

/// The start of the wrapper's line on stderr: `\x1esandpit-exec PID T0\n`.
const WRAPPER_HELLO: &[u8] = b"\x1esandpit-exec ";
/// Bytes of stderr held back waiting for the wrapper's line before giving
/// up on it.
const WRAPPER_HELLO_MAX: usize = 96;
/// Bytes of both streams held back in all: enough for the engine's own
/// message when it cannot start `/bin/sh` (on stdout: about 140 bytes under
/// runc, 6 KiB under gVisor, which quotes the whole command line), so that
/// message is dropped for the unwrapped run instead of shown. (A wrapped
/// command line past it, with no `/bin/sh`, ends with the engine's message
/// and its status, 126 or 127, instead of an unwrapped run.)
const WRAPPER_HOLD_MAX: usize = 64 << 10;

/// The argv that runs `argv` under the wrapper, with the watchdog when
/// `timeout` is set.
fn wrapped_argv(argv: Vec<String>, timeout: Option<Duration>) -> Vec<String> {
    let ms = timeout.map_or(0, |timeout| timeout.as_millis().max(1));
    let grace = WATCHDOG_GRACE.as_millis().to_string();
    let mut wrapped = vec![
        "/bin/sh".to_string(),
        "-c".to_string(),
        WRAPPER_SH.to_string(),
        "sandpit".to_string(),
        ms.to_string(),
    ];
    // Without a deadline no watchdog runs: its scripts are not sent.
    if ms == 0 {
        wrapped.extend([String::new(), String::new(), String::new()]);
    } else {
        wrapped.extend([
            WATCHDOG_BASH.replace("GRACE_MS", &grace),
            WATCHDOG_SH.replace("GRACE_MS", &grace),
            KILLER_SH.to_string(),
        ]);
    }
    wrapped.extend(argv);
    wrapped
}

/// The command's root process as its wrapper reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RootProcess {
    pid: u32,
    /// Clock ticks since boot (`/proc/PID/stat` field 22).
    start: u64,
}

/// Parses the wrapper's line (without its newline); `None` when it is not
/// one.
fn parse_hello(line: &[u8]) -> Option<Option<RootProcess>> {
    let rest = std::str::from_utf8(line.strip_prefix(WRAPPER_HELLO)?).ok()?;
    let (pid, start) = rest.split_once(' ')?;
    let pid: u32 = pid.parse().ok()?;
    Some(start.parse().ok().map(|start| RootProcess { pid, start }))
}

/// Holds output back until the wrapper's line has come, then strips it.
enum Greeting {
    /// Nothing of the wrapper seen yet: output held, per stream.
    Waiting { out: Vec<u8>, err: Vec<u8> },
    /// The wrapper spoke (with the root when it could read it), or never
    /// will (unwrapped, or its line did not come): output passes.
    Done {
        wrapper: bool,
        root: Option<RootProcess>,
    },
}

impl Greeting {
    fn new(wrapped: bool) -> Self {
        if wrapped {
            Greeting::Waiting {
                out: Vec::new(),
                err: Vec::new(),
            }
        } else {
            Greeting::Done {
                wrapper: false,
                root: None,
            }
        }
    }

    fn waiting(&self) -> bool {
        matches!(self, Greeting::Waiting { .. })
    }

    /// Whether the wrapper ran (said its line).
    fn wrapper_ran(&self) -> bool {
        matches!(self, Greeting::Done { wrapper: true, .. })
    }

    fn root(&self) -> Option<RootProcess> {
        match self {
            Greeting::Done { root, .. } => *root,
            Greeting::Waiting { .. } => None,
        }
    }

    /// Takes a chunk; returns what may pass on now.
    fn feed(&mut self, stream: Stream, data: Vec<u8>) -> Vec<(Stream, Vec<u8>)> {
        let Greeting::Waiting { out, err } = self else {
            return vec![(stream, data)];
        };
        match stream {
            Stream::Stdout => out.extend_from_slice(&data),
            Stream::Stderr => err.extend_from_slice(&data),
        }
        let newline = err.iter().position(|&byte| byte == b'\n');
        let hello = newline.and_then(|at| parse_hello(&err[..at]));
        let (out, mut err) = (std::mem::take(out), std::mem::take(err));
        match (newline, hello) {
            (Some(at), Some(root)) => {
                err.drain(..=at);
                *self = Greeting::Done {
                    wrapper: true,
                    root,
                };
            }
            // Not the wrapper's line, or too long without one: pass it all.
            (Some(_), None) => self.give_up(),
            (None, _)
                if err.len() > WRAPPER_HELLO_MAX || out.len() + err.len() > WRAPPER_HOLD_MAX =>
            {
                self.give_up()
            }
            (None, _) => {
                *self = Greeting::Waiting { out, err };
                return Vec::new();
            }
        }
        [(Stream::Stdout, out), (Stream::Stderr, err)]
            .into_iter()
            .filter(|(_, data)| !data.is_empty())
            .collect()
    }

    fn give_up(&mut self) {
        *self = Greeting::Done {
            wrapper: false,
            root: None,
        };
    }

    /// What is held when the stream ended without the wrapper's line.
    fn release(&mut self) -> Vec<(Stream, Vec<u8>)> {
        let held = match std::mem::replace(
            self,
            Greeting::Done {
                wrapper: false,
                root: None,
            },
        ) {
            Greeting::Waiting { out, err } => vec![(Stream::Stdout, out), (Stream::Stderr, err)],
            done => {
                *self = done;
                Vec::new()
            }
        };
        held.into_iter().filter(|(_, d)| !d.is_empty()).collect()
    }
}

/// What the killer established.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KillReport {
    /// The sandbox was restarted because nothing could run inside it.
    pub(crate) restarted: bool,
    /// Members still there that it may not signal.
    pub(crate) survivors: Vec<u32>,
    /// Whether membership rested on the root and the tree (not the tag
    /// alone) and the end was checked by a re-scan.
    pub(crate) verified: bool,
}

/// The pids of `survivor PID` lines of the killer's output; anything else
/// (bounded: at most [`MAX_SURVIVORS`]) is ignored.
fn parse_survivors(report: &str) -> Vec<u32> {
    let mut pids: Vec<u32> = report
        .lines()
        .filter_map(|line| line.strip_prefix("survivor ")?.trim().parse().ok())
        .take(MAX_SURVIVORS)
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Survivors listed at most, so a flood cannot grow a result without bound.
const MAX_SURVIVORS: usize = 64;

/// Kills an exec's process tree; see [`kill_fn`].
pub(crate) async fn kill_tree(
    engine: &Engine,
    target: &ExecTarget,
    tag: &str,
    root: Option<RootProcess>,
) -> anyhow::Result<KillReport> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut pause = Duration::from_millis(20);
    loop {
        match run_killer(engine, target, tag, root).await {
            Ok((_, code @ (0 | 2), report)) => {
                return Ok(KillReport {
                    restarted: false,
                    survivors: if code == 2 {
                        parse_survivors(&report)
                    } else {
                        Vec::new()
                    },
                    verified: root.is_some(),
                });
            }
            Ok((killer, code, _)) => {
                tracing::debug!("{killer:?} killer for {tag} exited {code}; trying again")
            }
            Err(err) => tracing::debug!("killer for {tag} could not run: {err:#}"),
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
    // A process flood that fills the pids limit leaves no room to start the
    // killer; only restarting the container stops it.
    tracing::warn!(
        "cannot kill the processes of an exec in {} from inside; restarting the sandbox",
        target.container
    );
    engine
        .docker()
        .restart_container(
            &target.container,
            Some(
                bollard::query_parameters::RestartContainerOptionsBuilder::new()
                    .t(1)
                    .build(),
            ),
        )
        .await
        .with_context(|| {
            format!(
                "cannot restart {} to stop a runaway command",
                target.container
            )
        })?;
    // Every process of the sandbox is gone with the restart.
    Ok(KillReport {
        restarted: true,
        survivors: Vec::new(),
        verified: true,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Killer {
    Bash,
    Sh,
}

/// Runs the killer: its kind, exit status and output.
async fn run_killer(
    engine: &Engine,
    target: &ExecTarget,
    tag: &str,
    root: Option<RootProcess>,
) -> anyhow::Result<(Killer, i64, String)> {
    let (pid, start) = root.map_or(("-".to_string(), "-".to_string()), |root| {
        (root.pid.to_string(), root.start.to_string())
    });
    let args = [tag.to_string(), pid, start];
    match run_killer_with(engine, target, "bash", KILLER_BASH, &args).await? {
        // No bash in this image.
        (126 | 127, _) => {
            let (code, report) = run_killer_with(engine, target, "sh", KILLER_SH, &args).await?;
            Ok((Killer::Sh, code, report))
        }
        (code, report) => Ok((Killer::Bash, code, report)),
    }
}

/// Bytes of the killer's output read at most.
const KILLER_OUTPUT_MAX: usize = 16 << 10;

async fn run_killer_with(
    engine: &Engine,
    target: &ExecTarget,
    shell: &str,
    script: &str,
    args: &[String],
) -> anyhow::Result<(i64, String)> {
    let docker = engine.docker();
    let mut cmd = vec![
        shell.to_string(),
        "-c".to_string(),
        script.to_string(),
        "sandpit-killer".to_string(),
    ];
    cmd.extend_from_slice(args);
    let created = docker
        .create_exec(
            &target.container,
            CreateExecOptions {
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                cmd: Some(cmd),
                user: Some(target.user.clone()),
                working_dir: Some("/".to_string()),
                ..Default::default()
            },
        )
        .await?;
    let mut report = Vec::new();
    if let StartExecResults::Attached { mut output, .. } =
        docker.start_exec(&created.id, None).await?
    {
        while let Some(chunk) = output.next().await {
            if let Ok(bollard::container::LogOutput::StdOut { message }) = chunk {
                let room = KILLER_OUTPUT_MAX.saturating_sub(report.len());
                report.extend_from_slice(&message[..message.len().min(room)]);
            }
        }
    }
    let code = wait_exec_exit(engine, &created.id)
        .await
        .ok_or_else(|| anyhow::anyhow!("the killer did not report an exit code"))?;
    Ok((code, String::from_utf8_lossy(&report).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_buffer_keeps_up_to_the_cap() {
        let mut buffer = CappedBuffer::new(5);
        assert_eq!(buffer.push(b"abc"), (&b"abc"[..], false));
        assert_eq!(buffer.push(b"de"), (&b"de"[..], false));
        assert_eq!(buffer.push(b"f"), (&b""[..], true));
        assert_eq!(buffer.kept, b"abcde");
        let mut buffer = CappedBuffer::new(2);
        assert_eq!(buffer.push(b"xyz"), (&b"xy"[..], true));
    }

    #[test]
    fn status_codes() {
        let timed_out = ExecResult {
            timed_out: true,
            exit_code: Some(137),
            ..Default::default()
        };
        assert_eq!(timed_out.status_code(), 124);
        let oom = ExecResult {
            oom_killed: true,
            exit_code: Some(137),
            ..Default::default()
        };
        assert_eq!(oom.status_code(), 137);
        assert_eq!(
            oom.reason("c"),
            Some("killed by the sandbox's memory limit".to_string())
        );
        let plain = ExecResult {
            exit_code: Some(3),
            ..Default::default()
        };
        assert_eq!(plain.status_code(), 3);
        assert_eq!(plain.outcome(), ExecOutcome::Exited);
        assert_eq!(plain.reason("c"), None);
        let capped = ExecResult {
            truncated: true,
            exit_code: Some(137),
            ..Default::default()
        };
        assert_eq!(capped.status_code(), 141);
        assert!(
            capped
                .reason("c")
                .is_some_and(|reason| reason.starts_with("output cap reached"))
        );
        let removed = ExecResult {
            sandbox_lost: Some(SandboxLoss::Removed),
            ..Default::default()
        };
        assert_eq!(removed.status_code(), 125);
        assert_eq!(
            removed.reason("sandpit-u"),
            Some("sandbox `sandpit-u` was removed during the command".to_string())
        );
        let stopped = ExecResult {
            sandbox_lost: Some(SandboxLoss::Stopped),
            exit_code: Some(137),
            ..Default::default()
        };
        assert_eq!(stopped.outcome(), ExecOutcome::SandboxLost);
        let cancelled = ExecResult {
            cancelled: true,
            exit_code: Some(137),
            ..Default::default()
        };
        assert_eq!(cancelled.status_code(), 130);
        let lost = ExecResult::default();
        assert_eq!(lost.outcome(), ExecOutcome::StatusUnknown);
        assert_eq!(lost.status_code(), 125);
    }

    #[test]
    fn every_outcome_is_in_the_help_table_once() {
        let table = ExecOutcome::help_table();
        for outcome in ExecOutcome::ALL {
            let rows = table
                .lines()
                .filter(|line| line.split_whitespace().nth(1) == Some(outcome.name()))
                .count();
            assert_eq!(rows, 1, "{}: {table}", outcome.name());
        }
        // Distinct faults never share a status, except the two ways the
        // engine loses a command.
        let mut codes: Vec<i64> = ExecOutcome::ALL.iter().filter_map(|o| o.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ExecOutcome::ALL.len() - 2);
    }

    #[test]
    fn capped_buffer_counts_what_it_drops() {
        let mut buffer = CappedBuffer::new(2);
        buffer.push(b"xyz");
        buffer.push(b"uvw");
        assert_eq!(buffer.total, 6);
        assert_eq!(buffer.kept, b"xy");
    }

    #[test]
    fn shell_commands_use_sh() {
        assert_eq!(
            ExecCommand::Shell("echo hi".into()).argv(),
            ["/bin/sh", "-c", "echo hi"]
        );
    }

    #[test]
    fn survivors_are_parsed_bounded_and_reported() {
        assert_eq!(
            parse_survivors("survivor 42\nnoise\nsurvivor 7\nsurvivor 42\nsurvivor x\n"),
            vec![7, 42]
        );
        assert!(parse_survivors("").is_empty());
        let flood: String = (0..1000).map(|pid| format!("survivor {pid}\n")).collect();
        assert_eq!(parse_survivors(&flood).len(), MAX_SURVIVORS);

        let one = ExecResult {
            timed_out: true,
            survivors: vec![42],
            duration: Duration::from_secs(2),
            ..Default::default()
        };
        assert_eq!(
            one.reason("c").unwrap(),
            "timed out after 2.0s; it was killed, but 1 process that may be its own could not be (pid 42)"
        );
        let two = ExecResult {
            cancelled: true,
            survivors: vec![7, 42],
            ..Default::default()
        };
        assert!(
            two.reason("c")
                .unwrap()
                .ends_with("2 processes that may be its own could not be (pid 7, 42)")
        );
        let unchecked = ExecResult {
            truncated: true,
            kill_unverified: true,
            ..Default::default()
        };
        assert!(
            unchecked
                .reason("c")
                .unwrap()
                .ends_with("sandpit could not check that none is left")
        );
    }

    #[test]
    fn the_wrappers_line_is_parsed_and_stripped() {
        let root = RootProcess {
            pid: 12,
            start: 3456,
        };
        assert_eq!(parse_hello(b"\x1esandpit-exec 12 3456"), Some(Some(root)));
        assert_eq!(parse_hello(b"\x1esandpit-exec 12 -"), Some(None));
        assert_eq!(parse_hello(b"sandpit-exec 12 3456"), None);
        assert_eq!(parse_hello(b"\x1esandpit-exec x 3456"), None);

        // Split across chunks, with the command's stderr right behind it.
        let mut greeting = Greeting::new(true);
        assert!(
            greeting
                .feed(Stream::Stderr, b"\x1esandpit-ex".to_vec())
                .is_empty()
        );
        assert_eq!(
            greeting.feed(Stream::Stderr, b"ec 12 3456\nerr".to_vec()),
            vec![(Stream::Stderr, b"err".to_vec())]
        );
        assert!(greeting.wrapper_ran());
        assert_eq!(greeting.root(), Some(root));
        assert_eq!(
            greeting.feed(Stream::Stdout, b"out".to_vec()),
            vec![(Stream::Stdout, b"out".to_vec())]
        );

        // Anything else first (the engine's own error when /bin/sh is
        // missing) is passed on whole, once it is clearly not the line.
        let mut greeting = Greeting::new(true);
        assert!(
            greeting
                .feed(Stream::Stdout, b"OCI runtime".to_vec())
                .is_empty()
        );
        let passed = greeting.feed(Stream::Stderr, b"oops\n".to_vec());
        assert_eq!(
            passed,
            vec![
                (Stream::Stdout, b"OCI runtime".to_vec()),
                (Stream::Stderr, b"oops\n".to_vec())
            ]
        );
        assert!(!greeting.wrapper_ran() && greeting.root().is_none());
        let mut greeting = Greeting::new(true);
        let engine_message = vec![b'y'; 200];
        assert!(greeting.feed(Stream::Stdout, engine_message).is_empty());
        assert!(greeting.waiting());
        let flood = vec![b'y'; WRAPPER_HOLD_MAX];
        let passed = greeting.feed(Stream::Stdout, flood);
        assert_eq!(passed.len(), 1);
        assert_eq!(passed[0].1.len(), 200 + WRAPPER_HOLD_MAX);
        let mut greeting = Greeting::new(true);
        let long_line = vec![b'e'; WRAPPER_HELLO_MAX + 1];
        assert_eq!(
            greeting.feed(Stream::Stderr, long_line.clone()),
            vec![(Stream::Stderr, long_line)]
        );
        let mut greeting = Greeting::new(true);
        greeting.feed(Stream::Stdout, b"held".to_vec());
        assert_eq!(greeting.release(), vec![(Stream::Stdout, b"held".to_vec())]);
        // Unwrapped, nothing is held.
        let mut greeting = Greeting::new(false);
        assert_eq!(
            greeting.feed(Stream::Stderr, b"x".to_vec()),
            vec![(Stream::Stderr, b"x".to_vec())]
        );
    }

    #[test]
    fn the_wrapper_keeps_the_argv_and_passes_the_deadline() {
        let argv = wrapped_argv(
            vec!["echo".into(), "a b".into()],
            Some(Duration::from_secs(2)),
        );
        assert_eq!(argv[..2], ["/bin/sh", "-c"]);
        assert_eq!(argv[4], "2000");
        assert!(
            argv[5].contains("end=$((us + ms * 1000 + 500 * 1000))"),
            "{}",
            argv[5]
        );
        assert!(
            argv[6].contains("end=$((cs + (ms + 500) / 10))"),
            "{}",
            argv[6]
        );
        assert_eq!(argv[7], KILLER_SH);
        assert_eq!(argv[8..], ["echo", "a b"]);
        let untimed = wrapped_argv(vec!["true".into()], None);
        assert_eq!(untimed[4..], ["0", "", "", "", "true"]);
    }

    #[test]
    fn tags_are_unique() {
        assert_ne!(new_exec_tag(), new_exec_tag());
    }
}
