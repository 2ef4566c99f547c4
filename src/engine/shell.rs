//! An interactive shell in a sandbox: a TTY exec as the sandbox's `uid:gid`,
//! in its work dir, hardened as commands are (the container's dropped
//! capabilities and no-new-privileges hold for every exec, and this one asks
//! for no privileges), with the environment commands get plus the caller's
//! `TERM`. The image's `bash` is used when it has one, else `sh`.
//!
//! Leaving ends everything the shell started. Its processes carry an exec
//! tag, and the killer of [`super::exec`] finds them wherever they moved.
//! The orderly ways out (the shell exits, the client detaches or is
//! cancelled) run that killer from here. A client that dies without a word
//! (SIGKILL, a lost connection) cannot, so a tether waits inside the sandbox:
//! a second exec reading a stdin this process holds open. The engine closes
//! that stdin when this process's connection goes, and the tether then runs
//! the same killer from inside.

use std::pin::Pin;
use std::time::Duration;

use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecOptions, StartExecResults};
use tokio::io::{
    AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::exec::{
    CANCELLED_EXIT_CODE, EXEC_TAG_VAR, ExecTarget, SANDBOX_LOST_EXIT_CODE, SandboxLoss,
    exec_exit_code, exec_tag, kill_exec_tree, killer_scripts,
};
use super::sandbox::Sandbox;
use super::{Engine, is_not_found};

/// Starts the shell: first says its own pid and start time (clock ticks
/// since boot, `/proc/PID/stat` field 22) as the terminal's first line,
/// [`HELLO`] `PID T0` (nothing typed or run can come before it, so it
/// cannot be forged), then becomes `bash` when the image has it, else `sh`.
/// `exec` keeps the one process: the root reported, with the exec's tag.
const PICK_SHELL: &str = r#"sandpit_t0() { [ $# -ge 20 ] && shift 19 && T0=$1; }
T0=
if read -r s < /proc/$$/stat; then sandpit_t0 ${s##*) }; fi 2>/dev/null
printf '\036sandpit-shell %s %s\n' "$$" "${T0:--}"
unset -v s T0
unset -f sandpit_t0
if command -v bash >/dev/null 2>&1; then exec bash; fi
exec sh"#;

/// Whether the killer judges the shell's processes by its root (the tree
/// under it, and every orphan of init born since it started) rather than by
/// the tag (tagged processes and their descendants). Off: a shell lives for
/// hours, and for all that time any orphan another command leaves (a
/// server started with `setsid`, the runner's own background daemon) would
/// count as the shell's and die when it is left. By the tag, only a process
/// that both scrubbed its environment and left the tree escapes, and it
/// stays confined to the sandbox like everything else in it.
const JUDGE_BY_ROOT: bool = false;

/// The start of the shell's first line; see [`PICK_SHELL`].
const HELLO: &[u8] = b"\x1esandpit-shell ";
/// Bytes read at most looking for that line.
const HELLO_MAX: usize = 96;
/// How long the shell may take to say it.
const HELLO_WAIT: Duration = Duration::from_secs(10);

/// The tether: reads the shell's root (`PID T0` lines; the last counts)
/// from its stdin until that ends (this process's connection to the engine
/// is gone, or it let go), then becomes the killer for the tag (`$3`) and
/// that root (`-` when never told), bash's (`$1`) when the image has bash,
/// else sh's (`$2`). It ignores the polite signals an engine may send an
/// exec whose client went away. Killers leave it alone: it is an exec's
/// root of its own (parent pid 0), without the shell's tag.
const TETHER: &str = r#"trap '' HUP INT TERM
root=- t0=-
while read -r r t _; do root=$r t0=$t; done
if command -v bash >/dev/null 2>&1; then exec bash -c "$1" sandpit-killer "$3" "$root" "$t0"; fi
exec sh -c "$2" sandpit-killer "$3" "$root" "$t0""#;

/// How often the shell's exec is asked whether it still runs: a background
/// job holding the terminal keeps the output open after the shell exits.
const EXIT_POLL: Duration = Duration::from_millis(250);
/// How long output still arriving after the shell ended is waited for.
const OUTPUT_SETTLE: Duration = Duration::from_secs(3);
/// How long the engine may take to accept the first window size: an exec
/// just started can be briefly unknown to it.
const FIRST_RESIZE: Duration = Duration::from_secs(2);

/// Bytes of the shell's output read at a time.
const OUTPUT_CHUNK: usize = 16 << 10;
/// How long the engine may take to answer the request that starts the
/// shell, and the most it may say before the stream begins.
const START_ANSWER: Duration = Duration::from_secs(30);
const START_HEAD_LIMIT: u64 = 64 << 10;

/// A terminal's size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TermSize {
    pub cols: u16,
    pub rows: u16,
}

/// How to open a shell.
#[derive(Debug, Clone, Default)]
pub struct ShellOptions {
    /// The caller's `TERM`, so programs in the shell draw for the terminal
    /// in use; `None` leaves the engine's default (`xterm`).
    pub term: Option<String>,
    /// The window size to start with; `None` leaves the engine's default.
    pub size: Option<TermSize>,
}

/// Why a shell session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellEnd {
    /// The shell exited (or the sandbox went away under it).
    Exited,
    /// The client left first: its input ended, its output could not be
    /// written, or it was cancelled.
    Detached,
}

/// How a shell session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellExit {
    pub end: ShellEnd,
    /// The shell's exit status; `None` when it could not be read back.
    pub code: Option<i64>,
    /// The shell's processes could not be killed from inside, so the sandbox
    /// was restarted to stop them.
    pub sandbox_restarted: bool,
    /// Set when the sandbox went away while the shell ran.
    pub sandbox_lost: Option<SandboxLoss>,
}

impl ShellExit {
    /// The status a CLI should exit with: the shell's own, else 130 for a
    /// client that left first and 125 for a sandbox lost or a status unknown
    /// (the same numbers as commands, see [`super::exec::ExecOutcome`]).
    pub fn status_code(&self) -> i64 {
        if self.end == ShellEnd::Detached {
            CANCELLED_EXIT_CODE
        } else if self.sandbox_lost.is_some() {
            SANDBOX_LOST_EXIT_CODE
        } else {
            self.code.unwrap_or(SANDBOX_LOST_EXIT_CODE)
        }
    }

    /// One line saying why the status is not simply the shell's own, naming
    /// `container`; `None` when the shell simply exited.
    pub fn reason(&self, container: &str) -> Option<String> {
        let mut reason = if self.end == ShellEnd::Detached {
            "the shell was left before it exited; its processes were killed".to_string()
        } else if let Some(loss) = self.sandbox_lost {
            format!(
                "sandbox `{container}` was {} during the shell",
                loss.as_str()
            )
        } else if self.code.is_none() {
            format!("the shell's exit status could not be read back from `{container}`")
        } else {
            String::new()
        };
        if self.sandbox_restarted {
            if !reason.is_empty() {
                reason.push_str("; ");
            }
            reason.push_str("the sandbox was restarted to stop the shell's processes");
        }
        (!reason.is_empty()).then_some(reason)
    }
}

type Output = Pin<Box<dyn AsyncRead + Send>>;
type Input = Pin<Box<dyn AsyncWrite + Send>>;

/// An open shell, not yet attached; see [`Shell::attach`]. Dropped without
/// attaching, it lets go of its tether, which kills the shell from inside.
pub struct Shell {
    /// For telling a sandbox that went away from a shell that ended.
    sandbox: Sandbox,
    engine: Engine,
    target: ExecTarget,
    tag: String,
    exec_id: String,
    input: Input,
    output: Output,
    /// Output read with the shell's first line that was not that line.
    pending: Vec<u8>,
    /// The shell's root process (pid, start time), as it reported itself.
    root: Option<(u32, u64)>,
    /// Told the root, then held open: its end tells the tether to kill.
    tether: Input,
}

impl std::fmt::Debug for Shell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shell")
            .field("target", &self.target)
            .field("tag", &self.tag)
            .field("exec_id", &self.exec_id)
            .finish()
    }
}

impl Sandbox {
    /// Opens an interactive shell in this sandbox (see the module's doc).
    ///
    /// Errors, each naming the user and what to do: the sandbox is gone,
    /// not running (stopped, paused, restarting), or the engine refused or
    /// did not answer.
    pub async fn open_shell(&self, options: &ShellOptions) -> anyhow::Result<Shell> {
        let details = self.inspect().await?;
        let user = self.user();
        if !details.info.is_running() {
            anyhow::bail!(
                "the sandbox of user `{user}` is not running (state: {}): start it with `sandpit start {user}`",
                if details.info.state.is_empty() {
                    "unknown"
                } else {
                    details.info.state.as_str()
                }
            );
        }
        let engine = self.engine().clone();
        let target = self.exec_target().clone();
        let docker = engine.docker();
        let refused = |err: bollard::errors::Error| shell_error(err, self);
        let tag = exec_tag();

        // The tether first, so that no moment passes with a shell and no
        // one to end it.
        let (killer_bash, killer_sh) = killer_scripts();
        let tether = docker
            .create_exec(
                &target.container,
                CreateExecOptions {
                    attach_stdin: Some(true),
                    attach_stdout: Some(false),
                    attach_stderr: Some(false),
                    tty: Some(false),
                    privileged: Some(false),
                    cmd: Some(vec![
                        "/bin/sh".to_string(),
                        "-c".to_string(),
                        TETHER.to_string(),
                        "sandpit-tether".to_string(),
                        killer_bash.to_string(),
                        killer_sh.to_string(),
                        tag.clone(),
                    ]),
                    user: Some(target.user.clone()),
                    working_dir: Some("/".to_string()),
                    ..Default::default()
                },
            )
            .await
            .map_err(refused)?;
        let StartExecResults::Attached {
            input: mut tether, ..
        } = docker
            .start_exec(&tether.id, Some(StartExecOptions::default()))
            .await
            .map_err(refused)?
        else {
            anyhow::bail!("the engine started the shell's tether detached; expected it attached");
        };

        let mut env = vec![format!("{EXEC_TAG_VAR}={tag}")];
        if let Some(term) = options.term.as_deref().filter(|term| valid_term(term)) {
            env.push(format!("TERM={term}"));
        }
        // Should anything below fail, dropping the tether ends what started.
        let created = docker
            .create_exec(
                &target.container,
                CreateExecOptions {
                    attach_stdin: Some(true),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    tty: Some(true),
                    privileged: Some(false),
                    env: Some(env),
                    cmd: Some(vec![
                        "/bin/sh".to_string(),
                        "-c".to_string(),
                        PICK_SHELL.to_string(),
                    ]),
                    user: Some(target.user.clone()),
                    working_dir: Some(target.work_dir.clone()),
                    ..Default::default()
                },
            )
            .await
            .map_err(refused)?;
        let (mut output, input) = start_raw(&engine, &created.id).await.map_err(|err| {
            match err.downcast::<bollard::errors::Error>() {
                Ok(err) => refused(err),
                Err(err) => err.context(format!(
                    "cannot open a shell in {} for user `{user}`",
                    target.container
                )),
            }
        })?;
        let (root, pending) = read_hello(&mut output).await;
        if let Some((pid, start)) = root.filter(|_| JUDGE_BY_ROOT) {
            // A tether that cannot be told goes by the tag alone.
            let told = format!("{pid} {start}\n");
            if tether.write_all(told.as_bytes()).await.is_err() || tether.flush().await.is_err() {
                tracing::warn!(
                    "cannot tell the shell's tether its root in {}",
                    target.container
                );
            }
        }
        let shell = Shell {
            sandbox: self.clone(),
            engine,
            target,
            tag,
            exec_id: created.id,
            input,
            output,
            pending,
            root,
            tether,
        };
        if let Some(size) = options.size {
            shell.first_resize(size).await;
        }
        Ok(shell)
    }
}

impl Shell {
    /// The engine's id of the shell's exec.
    pub fn exec_id(&self) -> &str {
        &self.exec_id
    }

    /// The tag the shell's processes carry (as `SANDPIT_EXEC_TAG`).
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// Sets the shell's window size. A failure only warns: the shell keeps
    /// its old size.
    pub async fn resize(&self, size: TermSize) {
        resize_or_warn(&self.engine, &self.target.container, &self.exec_id, size).await;
    }

    /// The first size, retried while the engine does not know the exec yet.
    async fn first_resize(&self, size: TermSize) {
        let deadline = tokio::time::Instant::now() + FIRST_RESIZE;
        let mut pause = Duration::from_millis(10);
        loop {
            match try_resize(&self.engine, &self.exec_id, size).await {
                Ok(()) => return,
                Err(err) if tokio::time::Instant::now() >= deadline => {
                    tracing::warn!(
                        "cannot set the shell's size in {}: {err}",
                        self.target.container
                    );
                    return;
                }
                Err(_) => {}
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    /// Runs the session until the shell exits or the client leaves: bytes
    /// from `input` are typed into the shell, its output (one stream: a
    /// terminal's) is written to `output`, sizes from `resizes` reach its
    /// terminal. `input` ending, `output` failing or `cancel` firing is the
    /// client leaving. Either way the shell's whole process tree is killed
    /// before this returns.
    ///
    /// Errors only when the tree cannot be killed (nor the sandbox
    /// restarted to stop it).
    pub async fn attach<W: AsyncWrite + Unpin>(
        self,
        mut input: mpsc::Receiver<Vec<u8>>,
        output: &mut W,
        mut resizes: mpsc::Receiver<TermSize>,
        cancel: CancellationToken,
    ) -> anyhow::Result<ShellExit> {
        let Shell {
            sandbox,
            engine,
            target,
            tag,
            exec_id,
            input: mut shell_input,
            output: mut shell_output,
            pending,
            root,
            tether,
        } = self;
        let started = std::time::SystemTime::now();
        // Typing runs apart from the loop: a shell that does not read its
        // input must not hold back its output, its exit or a cancel.
        let mut typing = tokio::spawn(async move {
            while let Some(bytes) = input.recv().await {
                if shell_input.write_all(&bytes).await.is_err()
                    || shell_input.flush().await.is_err()
                {
                    // The shell's terminal is closing: it is exiting, which
                    // the loop sees; keep the client's input open meanwhile.
                    while input.recv().await.is_some() {}
                    break;
                }
            }
        });
        let mut poll = tokio::time::interval(EXIT_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut resizes_open = true;
        let mut output_ended = false;
        let mut chunk = vec![0u8; OUTPUT_CHUNK];
        let written = output.write_all(&pending).await.and(output.flush().await);
        let end = if written.is_err() {
            ShellEnd::Detached
        } else {
            loop {
                tokio::select! {
                    read = shell_output.read(&mut chunk) => match read {
                        Ok(0) => {
                            output_ended = true;
                            break ShellEnd::Exited;
                        }
                        Ok(read) => {
                            if output.write_all(&chunk[..read]).await.is_err() || output.flush().await.is_err() {
                                break ShellEnd::Detached;
                            }
                        }
                        Err(err) => {
                            tracing::warn!("the shell's output from {} broke: {err}", target.container);
                            output_ended = true;
                            break ShellEnd::Exited;
                        }
                    },
                    _ = &mut typing => break ShellEnd::Detached,
                    size = resizes.recv(), if resizes_open => match size {
                        Some(size) => resize_or_warn(&engine, &target.container, &exec_id, size).await,
                        None => resizes_open = false,
                    },
                    _ = poll.tick() => {
                        if !exec_running(&engine, &exec_id).await {
                            break ShellEnd::Exited;
                        }
                    }
                    _ = cancel.cancelled() => break ShellEnd::Detached,
                }
            }
        };
        typing.abort();

        // A shell killed by a signal may have gone with its sandbox, which
        // took every process with it. The killer would fail there and, in
        // the end, restart the sandbox: it is not run then.
        let code = match end {
            ShellEnd::Exited => exec_exit_code(&engine, &exec_id).await,
            ShellEnd::Detached => None,
        };
        let sandbox_lost = if end == ShellEnd::Exited && code.is_none_or(|code| code > 128) {
            sandbox.loss_since(started).await
        } else {
            None
        };
        let killed = if sandbox_lost.is_some() {
            Ok(false)
        } else {
            kill_exec_tree(&engine, &target, &tag, root.filter(|_| JUDGE_BY_ROOT)).await
        };
        if end == ShellEnd::Exited && !output_ended {
            // What the shell wrote last (often the echo of `exit`) may still
            // be on its way; the stream ends once its terminal is closed.
            let _ = tokio::time::timeout(OUTPUT_SETTLE, async {
                while let Ok(read) = shell_output.read(&mut chunk).await
                    && read > 0
                {
                    if output.write_all(&chunk[..read]).await.is_err() {
                        break;
                    }
                }
                let _ = output.flush().await;
            })
            .await;
        }
        drop(shell_output);
        // Letting go of the tether ends it; its own killer run finds nothing.
        drop(tether);
        let sandbox_restarted = killed?;
        let code = match code {
            Some(code) => Some(code),
            None => exec_exit_code(&engine, &exec_id).await,
        };
        Ok(ShellExit {
            end,
            code,
            sandbox_restarted,
            sandbox_lost,
        })
    }
}

/// Reads the shell's first line, [`HELLO`] `PID T0`, for its root process.
/// Anything else read meanwhile (say, the engine's message when the image
/// has no `/bin/sh`) is returned to be shown. `None` as root when the line
/// did not come within [`HELLO_WAIT`] and [`HELLO_MAX`] bytes, or says the
/// start time is unknown.
async fn read_hello(output: &mut Output) -> (Option<(u32, u64)>, Vec<u8>) {
    let mut line = Vec::new();
    let read = tokio::time::timeout(HELLO_WAIT, async {
        let mut byte = [0u8; 1];
        while line.len() < HELLO_MAX && !line.ends_with(b"\n") {
            match output.read(&mut byte).await {
                Ok(1) => line.push(byte[0]),
                _ => break,
            }
            // Not the line: stop at once, so what came is shown as it came.
            if !HELLO.starts_with(&line) && !line.starts_with(HELLO) {
                break;
            }
        }
    })
    .await;
    if read.is_err() || !line.ends_with(b"\n") {
        return (None, line);
    }
    (parse_hello(&line), Vec::new())
}

/// `PID T0` from the shell's first line (a terminal's line end, `\r\n`).
fn parse_hello(line: &[u8]) -> Option<(u32, u64)> {
    let rest = std::str::from_utf8(line.strip_prefix(HELLO)?).ok()?;
    let mut words = rest.split_whitespace();
    let pid = words.next()?.parse().ok()?;
    let start = words.next()?.parse().ok()?;
    Some((pid, start))
}

/// Starts a TTY exec and returns its stream: what the shell writes, and
/// where to write what it reads.
///
/// bollard's `start_exec` reads every exec through its decoder of
/// multiplexed streams, which takes output starting with byte 0, 1 or 2 (a
/// program printing ^A, say) for a frame header and then waits for a frame
/// that never comes: the session stalls. A terminal's stream has no frames,
/// so it is started here with the engine's own request and read raw. The
/// engine is reached as bollard reaches it: a unix socket or plain TCP.
///
/// Errors: the engine's refusal as a [`bollard::errors::Error`] (status
/// and message), or why it could not be asked.
async fn start_raw(engine: &Engine, exec_id: &str) -> anyhow::Result<(Output, Input)> {
    let host = engine.host();
    let request = format!(
        "POST /v{version}/exec/{exec_id}/start HTTP/1.1\r\nHost: docker\r\n\
         User-Agent: sandpit\r\nContent-Type: application/json\r\n\
         Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: {length}\r\n\r\n{body}",
        version = engine.docker().client_version(),
        length = START_BODY.len(),
        body = START_BODY,
    );
    let started = async {
        if let Some(path) = host.strip_prefix("unix://") {
            let stream = tokio::net::UnixStream::connect(path).await?;
            hijack(stream, &request).await
        } else if let Some(address) = host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"))
        {
            let stream = tokio::net::TcpStream::connect(address.trim_end_matches('/')).await?;
            hijack(stream, &request).await
        } else {
            anyhow::bail!("only unix:// and tcp:// engines can run a shell, not {host}")
        }
    };
    tokio::time::timeout(START_ANSWER, started)
        .await
        .map_err(|_| {
            anyhow::anyhow!("the engine at {host} did not start the shell within {START_ANSWER:?}")
        })?
}

/// The body of the start request: attached, with a terminal.
const START_BODY: &str = r#"{"Detach":false,"Tty":true}"#;

/// Sends `request` on `stream` and reads the engine's answer: past a `101`
/// (or, from older engines, `200`) head the connection is the exec's raw
/// stream; anything else is a refusal, read into an error.
async fn hijack<S>(stream: S, request: &str) -> anyhow::Result<(Output, Input)>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (read, mut write) = tokio::io::split(stream);
    write.write_all(request.as_bytes()).await?;
    write.flush().await?;
    // Buffered: bytes of the stream read along with the head stay in it.
    let mut reader = tokio::io::BufReader::new(read);
    let mut head = Vec::new();
    loop {
        let before = head.len();
        let read = (&mut reader)
            .take(START_HEAD_LIMIT.saturating_sub(before as u64))
            .read_until(b'\n', &mut head)
            .await?;
        if read == 0 {
            anyhow::bail!("the engine closed the connection before it started the shell");
        }
        if head.ends_with(b"\r\n\r\n") || head.ends_with(b"\n\n") {
            break;
        }
    }
    let head = String::from_utf8_lossy(&head);
    let status_code = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the engine answered the shell's start with `{}`",
                head.lines().next().unwrap_or_default()
            )
        })?;
    if matches!(status_code, 101 | 200) {
        return Ok((Box::pin(reader), Box::pin(write)));
    }
    let length = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<u64>().ok())
        .unwrap_or(START_HEAD_LIMIT)
        .min(START_HEAD_LIMIT);
    let mut body = Vec::new();
    let _ = (&mut reader).take(length).read_to_end(&mut body).await;
    // The engine says why as JSON: {"message": "..."}.
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|json| json.get("message")?.as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
    Err(bollard::errors::Error::DockerResponseServerError {
        status_code,
        message,
    }
    .into())
}

async fn try_resize(
    engine: &Engine,
    exec_id: &str,
    size: TermSize,
) -> Result<(), bollard::errors::Error> {
    engine
        .docker()
        .resize_exec(
            exec_id,
            ResizeExecOptions {
                width: size.cols,
                height: size.rows,
            },
        )
        .await
}

async fn resize_or_warn(engine: &Engine, container: &str, exec_id: &str, size: TermSize) {
    if let Err(err) = try_resize(engine, exec_id, size).await {
        tracing::warn!("cannot resize the shell in {container}: {err}");
    }
}

/// Whether the engine still reports the exec as running; an exec it cannot
/// answer for counts as running (the output ending says the rest).
async fn exec_running(engine: &Engine, exec_id: &str) -> bool {
    match engine.docker().inspect_exec(exec_id).await {
        Ok(info) => info.running != Some(false),
        Err(err) => !is_not_found(&err),
    }
}

/// A `TERM` value passed on: a terminal name, nothing that could smuggle
/// more into the environment.
fn valid_term(term: &str) -> bool {
    !term.is_empty()
        && term.len() <= 64
        && term
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'))
}

fn shell_error(err: bollard::errors::Error, sandbox: &Sandbox) -> anyhow::Error {
    let user = sandbox.user();
    let container = sandbox.container_name();
    match &err {
        err if is_not_found(err) => anyhow::anyhow!(
            "the sandbox of user `{user}` is gone: its container {container} was removed outside sandpit"
        ),
        bollard::errors::Error::DockerResponseServerError {
            status_code: 409,
            message,
        } => anyhow::anyhow!(
            "the sandbox of user `{user}` is not running ({message}): start it with `sandpit start {user}`"
        ),
        _ => anyhow::Error::new(err).context(format!(
            "cannot open a shell in {container} for user `{user}`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn term_values_are_names_only() {
        for good in [
            "xterm-256color",
            "screen.xterm-256color",
            "tmux-256color",
            "vt100",
            "rxvt-unicode+x",
        ] {
            assert!(valid_term(good), "{good}");
        }
        for bad in ["", "xterm\nPATH=/evil", "a b", "x=y", &"x".repeat(65)] {
            assert!(!valid_term(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_shells_first_line_names_its_root() {
        assert_eq!(
            parse_hello(b"\x1esandpit-shell 42 123456\r\n"),
            Some((42, 123456))
        );
        assert_eq!(parse_hello(b"\x1esandpit-shell 42 -\r\n"), None);
        assert_eq!(parse_hello(b"sandpit-shell 42 7\r\n"), None);
        assert_eq!(parse_hello(b"OCI runtime exec failed\r\n"), None);
    }

    #[test]
    fn statuses_and_reasons() {
        let exited = ShellExit {
            end: ShellEnd::Exited,
            code: Some(3),
            sandbox_restarted: false,
            sandbox_lost: None,
        };
        assert_eq!(exited.status_code(), 3);
        assert_eq!(exited.reason("c"), None);
        let left = ShellExit {
            end: ShellEnd::Detached,
            code: Some(137),
            ..exited.clone()
        };
        assert_eq!(left.status_code(), 130);
        assert!(left.reason("c").is_some_and(|r| r.contains("killed")));
        let lost = ShellExit {
            code: None,
            sandbox_lost: Some(SandboxLoss::Stopped),
            ..exited.clone()
        };
        assert_eq!(lost.status_code(), 125);
        assert_eq!(
            lost.reason("sandpit-u").as_deref(),
            Some("sandbox `sandpit-u` was stopped during the shell")
        );
        let unknown = ShellExit {
            code: None,
            ..exited.clone()
        };
        assert_eq!(unknown.status_code(), 125);
        let restarted = ShellExit {
            sandbox_restarted: true,
            ..exited
        };
        assert_eq!(restarted.status_code(), 3);
        assert!(
            restarted
                .reason("c")
                .is_some_and(|r| r.contains("restarted"))
        );
    }
}
