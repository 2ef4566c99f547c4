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

/// Every exec carries this variable with a unique value; the killer finds
/// the command's processes by it, wherever they moved in the process tree.
pub const EXEC_TAG_VAR: &str = "SANDPIT_EXEC_TAG";
const KILLER_MARK_VAR: &str = "SANDPIT_KILLER";

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

    /// One line saying why sandpit ended or reports the command as it does,
    /// naming `container`; `None` when the command simply exited.
    pub fn reason(&self, container: &str) -> Option<String> {
        let seconds = self.duration.as_secs_f64();
        let reason = match self.outcome() {
            ExecOutcome::Exited => return None,
            ExecOutcome::TimedOut => {
                format!("timed out after {seconds:.1}s; its process tree was killed")
            }
            ExecOutcome::MemoryLimit => match self.memory_limit {
                Some(limit) => format!(
                    "killed by the memory limit ({})",
                    super::policy::ByteSize(limit)
                ),
                None => "killed by the sandbox's memory limit".to_string(),
            },
            ExecOutcome::OutputCap => {
                "output cap reached: the command wrote more than its cap on one stream and was stopped"
                    .to_string()
            }
            ExecOutcome::SandboxLost => format!(
                "sandbox `{container}` was {} during the command",
                self.sandbox_lost.map_or("lost", SandboxLoss::as_str)
            ),
            ExecOutcome::StatusUnknown => format!(
                "the command's exit status could not be read back from `{container}`"
            ),
            ExecOutcome::Cancelled => "cancelled; its process tree was killed".to_string(),
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

/// Exec through the Docker engine API.
#[derive(Clone)]
pub struct EngineExec {
    engine: Engine,
}

impl EngineExec {
    pub fn new(engine: Engine) -> Self {
        Self { engine }
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
        ))
    }
}

fn new_exec_tag() -> String {
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
/// time in clock ticks since boot), for a killer that judges membership by
/// it; this one goes by the tag.
pub(crate) async fn kill_exec_tree(
    engine: &Engine,
    target: &ExecTarget,
    tag: &str,
    root: Option<(u32, u64)>,
) -> anyhow::Result<bool> {
    let _ = root;
    kill_tree(engine, target, tag).await
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

/// Keeps up to `cap` bytes of one stream and counts them all.
struct CappedBuffer {
    kept: Vec<u8>,
    cap: usize,
    total: u64,
}

impl CappedBuffer {
    fn new(cap: usize) -> Self {
        Self {
            kept: Vec::new(),
            cap,
            total: 0,
        }
    }

    /// Appends what fits; returns the part kept and whether anything overflowed.
    fn push<'d>(&mut self, data: &'d [u8]) -> (&'d [u8], bool) {
        self.total = self.total.saturating_add(data.len() as u64);
        let room = self.cap.saturating_sub(self.kept.len());
        let kept = &data[..data.len().min(room)];
        self.kept.extend_from_slice(kept);
        (kept, data.len() > room)
    }
}

async fn run_engine_exec(
    engine: &Engine,
    target: &ExecTarget,
    request: ExecRequest,
    events: Option<mpsc::Sender<ExecEvent>>,
    cancel: CancellationToken,
) -> anyhow::Result<ExecResult> {
    let docker = engine.docker();
    let started = Instant::now();
    let tag = new_exec_tag();
    let mut env: Vec<String> = request
        .env
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    env.push(format!("{EXEC_TAG_VAR}={tag}"));
    let work_dir = request.work_dir.clone().unwrap_or(target.work_dir.clone());
    let created = docker
        .create_exec(
            &target.container,
            CreateExecOptions {
                attach_stdin: Some(request.has_stdin()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                tty: Some(false),
                env: Some(env),
                cmd: Some(request.command.argv()),
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

    let stdin_task = request.has_stdin().then(|| {
        let (bytes, stream) = (request.stdin, request.stdin_stream);
        tokio::spawn(async move {
            // A command that exits without reading its stdin closes the pipe;
            // that is its business, not an error.
            if let Some(bytes) = bytes
                && input.write_all(&bytes).await.is_err()
            {
                return;
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
        })
    });

    let mut stdout = CappedBuffer::new(request.output_cap);
    let mut stderr = CappedBuffer::new(request.output_cap);
    let deadline = request
        .timeout
        .map(|timeout| tokio::time::Instant::now() + timeout);
    let mut stop: Option<StopReason> = None;
    loop {
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
        let (stream, buffer, data) = match chunk {
            bollard::container::LogOutput::StdOut { message } => {
                (Stream::Stdout, &mut stdout, message)
            }
            bollard::container::LogOutput::StdErr { message } => {
                (Stream::Stderr, &mut stderr, message)
            }
            _ => continue,
        };
        let (kept, overflowed) = buffer.push(&data);
        if !kept.is_empty()
            && let Some(events) = &events
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
                _ = sleep_until_opt(deadline) => { stop = Some(StopReason::Timeout); break; }
                _ = cancel.cancelled() => { stop = Some(StopReason::Cancel); break; }
            }
        }
        if overflowed {
            stop = Some(StopReason::Cap);
            break;
        }
    }

    let mut sandbox_restarted = false;
    if stop.is_some() {
        // Keep reading (and dropping) output while killing: a command blocked
        // on a full pipe must not stall the engine's exec machinery.
        let drain = tokio::time::timeout(KILL_SETTLE, async {
            while output.next().await.is_some() {}
        });
        let (killed, _) = tokio::join!(kill_tree(engine, target, &tag), drain);
        sandbox_restarted = killed?;
    }
    if let Some(task) = stdin_task {
        task.abort();
    }
    drop(output);

    let exit_code = wait_exec_exit(engine, &created.id).await;
    Ok(ExecResult {
        exit_code,
        duration: started.elapsed(),
        timed_out: stop == Some(StopReason::Timeout),
        truncated: stop == Some(StopReason::Cap),
        cancelled: stop == Some(StopReason::Cancel),
        oom_killed: false,
        sandbox_restarted,
        sandbox_lost: None,
        memory_limit: None,
        stdout_bytes: stdout.total,
        stderr_bytes: stderr.total,
        stdout: stdout.kept,
        stderr: stderr.kept,
    })
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

/// Kills every process of an exec from inside the sandbox, in rounds until
/// none is left: those carrying its tag (however deep, whatever their
/// process group), untagged children of those (they scrubbed their
/// environment), and untagged orphans of init other than the sandbox's main
/// process (children that hid by double-forking). Processes of other execs,
/// including ones not started by sandpit, are left alone. Only bash builtins
/// are used, so it still works while the pids limit is full.
const KILLER_BASH: &str = r#"
tag="SANDPIT_EXEC_TAG=$1"
for ((round = 0; round < 100; round++)); do
  unset mark parent started
  declare -A mark=() parent=() started=()
  for dir in /proc/[0-9]*; do
    pid=${dir#/proc/}
    [[ $pid == 1 || $pid == "$$" ]] && continue
    ours="" other="" killer=""
    while IFS= read -r -d '' entry; do
      if [[ $entry == "$tag" ]]; then ours=1
      elif [[ $entry == SANDPIT_EXEC_TAG=* ]]; then other=1
      elif [[ $entry == SANDPIT_KILLER=1 ]]; then killer=1
      fi
    done 2>/dev/null < "$dir/environ"
    # A process that made itself undumpable hides its environment but not
    # its place in the tree, so it is still judged by its parent.
    read -r stat 2>/dev/null < "$dir/stat" || continue
    fields=(${stat##*) })
    if [[ -n $ours ]]; then mark[$pid]=ours
    elif [[ -n $other || -n $killer ]]; then mark[$pid]=other
    else mark[$pid]=none
    fi
    parent[$pid]=${fields[1]}
    started[$pid]=${fields[19]}
  done
  main_pid="" main_start=""
  for pid in "${!parent[@]}"; do
    [[ ${parent[$pid]} == 1 ]] || continue
    if [[ -z $main_start || ${started[$pid]} -lt $main_start ]]; then
      main_start=${started[$pid]}; main_pid=$pid
    fi
  done
  victims=()
  for pid in "${!mark[@]}"; do
    case ${mark[$pid]} in
      ours) victims+=("$pid") ;;
      none)
        ppid=${parent[$pid]}
        if [[ $ppid == 1 && $pid != "$main_pid" ]] || [[ ${mark[$ppid]:-} == ours ]]; then
          victims+=("$pid")
        fi ;;
    esac
  done
  # Only processes this uid may signal count: others are not the command's.
  killable=()
  for pid in "${victims[@]}"; do
    kill -0 "$pid" 2>/dev/null && killable+=("$pid")
  done
  ((${#killable[@]})) || exit 0
  kill -KILL "${killable[@]}" 2>/dev/null
done
exit 1
"#;

/// For images without bash: tagged processes only.
const KILLER_SH: &str = r#"
tag="SANDPIT_EXEC_TAG=$1"
round=0
while [ $round -lt 100 ]; do
  found=""
  for dir in /proc/[0-9]*; do
    pid=${dir#/proc/}
    [ "$pid" = 1 ] || [ "$pid" = $$ ] && continue
    if tr '\0' '\n' < "$dir/environ" 2>/dev/null | grep -qx "$tag"; then
      kill -9 "$pid" 2>/dev/null; found=1
    fi
  done
  [ -z "$found" ] && exit 0
  round=$((round + 1))
done
exit 1
"#;

/// Kills an exec's process tree. Returns true when that was impossible from
/// inside and the sandbox had to be restarted instead.
async fn kill_tree(engine: &Engine, target: &ExecTarget, tag: &str) -> anyhow::Result<bool> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut pause = Duration::from_millis(20);
    loop {
        match run_killer(engine, target, tag).await {
            Ok(0) => return Ok(false),
            Ok(code) => tracing::debug!("killer for {tag} exited {code}; trying again"),
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
    Ok(true)
}

async fn run_killer(engine: &Engine, target: &ExecTarget, tag: &str) -> anyhow::Result<i64> {
    match run_killer_with(engine, target, tag, "bash", KILLER_BASH).await? {
        // No bash in this image.
        126 | 127 => run_killer_with(engine, target, tag, "sh", KILLER_SH).await,
        code => Ok(code),
    }
}

async fn run_killer_with(
    engine: &Engine,
    target: &ExecTarget,
    tag: &str,
    shell: &str,
    script: &str,
) -> anyhow::Result<i64> {
    let docker = engine.docker();
    let created = docker
        .create_exec(
            &target.container,
            CreateExecOptions {
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                env: Some(vec![format!("{KILLER_MARK_VAR}=1")]),
                cmd: Some(vec![
                    shell.to_string(),
                    "-c".to_string(),
                    script.to_string(),
                    "sandpit-killer".to_string(),
                    tag.to_string(),
                ]),
                user: Some(target.user.clone()),
                working_dir: Some("/".to_string()),
                ..Default::default()
            },
        )
        .await?;
    if let StartExecResults::Attached { mut output, .. } =
        docker.start_exec(&created.id, None).await?
    {
        while output.next().await.is_some() {}
    }
    wait_exec_exit(engine, &created.id)
        .await
        .ok_or_else(|| anyhow::anyhow!("the killer did not report an exit code"))
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
    fn tags_are_unique() {
        assert_ne!(new_exec_tag(), new_exec_tag());
    }
}
