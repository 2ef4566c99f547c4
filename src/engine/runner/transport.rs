//! [`RunnerExec`]: commands through the in-sandbox runner, one long-lived
//! engine exec per client process and sandbox, many commands multiplexed
//! over it by request id.
//!
//! The runner is started lazily, on the first command. Everything it sends
//! is untrusted: frames are bounded by the decoder, output by the request's
//! caps, and every wait has a deadline of sandpit's own, so a runner that
//! dies or stops answering (user code can SIGKILL or SIGSTOP it) makes the
//! command in flight fail with an error instead of hanging. Its processes
//! are then killed with the engine exec's killer, the next command runs
//! through the engine's exec, and the one after starts a new runner. A
//! runner that cannot start is logged and the engine's exec is used: a
//! command the engine exec could run never fails because of the runner.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use bollard::exec::{CreateExecOptions, StartExecResults};
use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use sandpit_runner::proto::{self, ClientFrame, Decoder, RunnerFrame};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::volume::BINARY_PATH;
use crate::engine::Engine;
use crate::engine::exec::{
    CappedBuffer, EXEC_TAG_VAR, EngineExec, ExecEvent, ExecRequest, ExecResult, ExecTarget,
    ExecTransport, Stream, kill_tree, new_exec_tag,
};

/// Set to `engine` to run every command through the engine's exec even in
/// sandboxes that have the runner; anything else (or unset) picks the
/// runner where there is one. Read once per process.
pub const TRANSPORT_ENV: &str = "SANDPIT_EXEC_TRANSPORT";

/// How long a new runner has to answer `Hello`, exec creation included.
const START_DEADLINE: Duration = Duration::from_secs(10);
/// With requests in flight and nothing heard for this long, the runner is
/// probed.
const PROBE_AFTER: Duration = Duration::from_millis(500);
/// With requests in flight and nothing heard for this long (probes
/// included), the runner is taken for dead. Generous: a sandbox at its pids
/// or CPU limit may starve the runner for a while.
const SILENCE_LIMIT: Duration = Duration::from_secs(10);
/// Past a command's own timeout, how long the runner has to report its end
/// before sandpit cancels it, and again before it gives up on the runner.
const EXIT_GRACE: Duration = Duration::from_secs(3);
/// After a runner could not start a command for a reason other than a
/// lack of resources, how long the sandbox stays on the engine's exec.
const RUNNER_UNFIT_PAUSE: Duration = Duration::from_secs(600);
/// After a runner could not start, how long until another is tried.
const RESTART_BACKOFF: Duration = Duration::from_secs(10);
/// Frames queued per request before the reader waits for its consumer.
const ROUTE_DEPTH: usize = 16;
/// Encoded frames queued for the runner's stdin.
const OUTGOING_DEPTH: usize = 64;
/// Bytes of stdin per `Stdin` frame.
const STDIN_CHUNK: usize = 64 << 10;
/// Bytes of the runner's stderr kept to explain its death; more is logged
/// and dropped.
const STDERR_KEPT: usize = 2048;
/// The longest a file operation may take.
const FILE_DEADLINE: Duration = Duration::from_secs(120);

/// A new runner key: 32 hex digits from the kernel's random source; empty
/// (no background daemon, foreground commands still work) if it cannot be
/// read.
pub fn new_runner_key() -> String {
    use std::io::Read as _;
    let mut bytes = [0u8; 16];
    match std::fs::File::open("/dev/urandom").and_then(|mut file| file.read_exact(&mut bytes)) {
        Ok(()) => bytes.iter().map(|byte| format!("{byte:02x}")).collect(),
        Err(err) => {
            tracing::warn!("no runner key ({err}): the sandbox gets no background processes");
            String::new()
        }
    }
}

/// The folder of the runner daemon's socket for a sandbox running as
/// `user` (`uid:gid`).
fn runner_dir(user: &str) -> String {
    let uid = user.split(':').next().unwrap_or_default();
    format!("/dev/shm/.sandpit-runner-{uid}")
}

/// Whether the engine reported a kill, stop or removal of `container` since
/// `since`: a runner whose exec ended then went with its sandbox.
async fn container_killed_since(
    engine: &Engine,
    container: &str,
    since: std::time::SystemTime,
) -> bool {
    let stamp = |time: std::time::SystemTime| {
        let time = time
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        format!("{}.{:09}", time.as_secs(), time.subsec_nanos())
    };
    let filters = HashMap::from([
        ("type".to_string(), vec!["container".to_string()]),
        ("container".to_string(), vec![container.to_string()]),
        (
            "event".to_string(),
            ["kill", "die", "stop", "destroy"]
                .map(str::to_string)
                .to_vec(),
        ),
    ]);
    let options = bollard::query_parameters::EventsOptionsBuilder::new()
        .since(&stamp(since))
        .until(&stamp(std::time::SystemTime::now()))
        .filters(&filters)
        .build();
    let mut events = engine.docker().events(Some(options));
    // With `until` in the past, the engine sends what it has and ends.
    matches!(
        tokio::time::timeout(Duration::from_secs(10), events.next()).await,
        Ok(Some(Ok(_)))
    )
}

/// Whether this process was told to use the engine's exec only.
pub fn engine_forced() -> bool {
    static FORCED: OnceLock<bool> = OnceLock::new();
    *FORCED.get_or_init(|| {
        std::env::var(TRANSPORT_ENV).is_ok_and(|value| value.trim().eq_ignore_ascii_case("engine"))
    })
}

/// The runner transport of one sandbox in this process, shared by every
/// [`crate::engine::sandbox::Sandbox`] handle on it.
pub struct RunnerExec {
    engine: Engine,
    target: ExecTarget,
    /// The sandbox's runner key (see `Hello`); empty: no background daemon.
    key: Vec<u8>,
    fallback: EngineExec,
    state: tokio::sync::Mutex<State>,
    /// Foreground commands running through the runner now.
    running: AtomicUsize,
}

enum State {
    /// Not started yet.
    Idle,
    Up(Arc<Connection>),
    /// Gone or never came up: the engine's exec is used until `retry_at`,
    /// and at least once when `skip_next` is set.
    Down {
        retry_at: Instant,
        skip_next: bool,
    },
}

/// Runner transports by engine address and container id.
type Registry = StdMutex<HashMap<(String, String), Arc<RunnerExec>>>;

/// The runner transports of this process, by engine address and container
/// id: one runner exec per client process and sandbox, however many handles
/// the callers make.
fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

impl RunnerExec {
    /// The transport for container `container_id` (its full id: a sandbox
    /// made again gets a new one) reached as `target`; `runner_key` is the
    /// sandbox's runner key (its label), empty for none.
    pub fn for_container(
        engine: &Engine,
        container_id: &str,
        target: &ExecTarget,
        runner_key: &str,
    ) -> Arc<Self> {
        let key = (engine.host().to_string(), container_id.to_string());
        let make = || {
            Arc::new(Self {
                engine: engine.clone(),
                target: target.clone(),
                key: runner_key.as_bytes().to_vec(),
                fallback: EngineExec::new(engine.clone()),
                state: tokio::sync::Mutex::new(State::Idle),
                running: AtomicUsize::new(0),
            })
        };
        match registry().lock() {
            Ok(mut map) => map.entry(key).or_insert_with(make).clone(),
            Err(_) => make(),
        }
    }

    /// Foreground commands of this process running through the runner in
    /// the container `container_id` right now.
    pub fn running_in(engine: &Engine, container_id: &str) -> usize {
        let key = (engine.host().to_string(), container_id.to_string());
        registry()
            .lock()
            .ok()
            .and_then(|map| {
                map.get(&key)
                    .map(|exec| exec.running.load(Ordering::Relaxed))
            })
            .unwrap_or(0)
    }

    /// The live connection, starting the runner when there is none; `None`
    /// when the engine's exec must be used for this request.
    pub(crate) async fn connection(&self) -> Option<Arc<Connection>> {
        let mut state = self.state.lock().await;
        match &mut *state {
            State::Up(conn) if !conn.is_dead() => return Some(conn.clone()),
            State::Up(conn) => {
                tracing::warn!(
                    "the runner in {} went away ({}); this request uses the engine's exec, and a new runner starts after it",
                    self.target.container,
                    conn.why_dead()
                );
                *state = State::Down {
                    retry_at: Instant::now(),
                    skip_next: false,
                };
                return None;
            }
            State::Down { skip_next, .. } if *skip_next => {
                *skip_next = false;
                return None;
            }
            State::Down { retry_at, .. } if Instant::now() < *retry_at => return None,
            State::Down { .. } | State::Idle => {}
        }
        match tokio::time::timeout(
            START_DEADLINE,
            Connection::start(&self.engine, &self.target, &self.key),
        )
        .await
        {
            Ok(Ok(conn)) => {
                *state = State::Up(conn.clone());
                Some(conn)
            }
            Ok(Err(err)) => {
                tracing::warn!(
                    "cannot start the runner in {}: {err:#}; using the engine's exec",
                    self.target.container
                );
                *state = State::Down {
                    retry_at: Instant::now() + RESTART_BACKOFF,
                    skip_next: false,
                };
                None
            }
            Err(_) => {
                tracing::warn!(
                    "the runner in {} did not answer within {START_DEADLINE:?}; using the engine's exec",
                    self.target.container
                );
                *state = State::Down {
                    retry_at: Instant::now() + RESTART_BACKOFF,
                    skip_next: false,
                };
                None
            }
        }
    }

    /// Records that the runner failed during a request: the next request
    /// uses the engine's exec; the one after starts a new runner.
    pub(crate) async fn note_fault(&self, conn: &Arc<Connection>, reason: &str) {
        conn.fail(reason);
        let mut state = self.state.lock().await;
        if let State::Up(current) = &*state
            && Arc::ptr_eq(current, conn)
        {
            *state = State::Down {
                retry_at: Instant::now(),
                skip_next: true,
            };
        }
        drop(state);
        self.kill_runner(conn.pid).await;
    }

    /// Kills a runner that stopped answering (it may be stopped, holding
    /// its exec open), once its command line shows it is the runner.
    async fn kill_runner(&self, pid: u32) {
        // The runner that served the connection, and any runner left
        // stopped (a stopped `serve` holds its exec open forever).
        let script = format!(
            r#"for p in /proc/[0-9]*; do
  pid=${{p#/proc/}}
  case "$(tr '\0' ' ' < $p/cmdline 2>/dev/null)" in
    "{BINARY_PATH} "*)
      state=$(sed 's/.*) //' $p/stat 2>/dev/null | cut -d' ' -f1)
      if [ "$pid" = "$1" ] || [ "$state" = T ]; then kill -KILL "$pid"; fi ;;
  esac
done"#
        );
        let request =
            ExecRequest::argv(["sh", "-c", &script, "sandpit-kill-runner", &pid.to_string()])
                .work_dir("/")
                .timeout(Duration::from_secs(10));
        if let Err(err) = self
            .fallback
            .run(&self.target, request, None, CancellationToken::new())
            .await
        {
            tracing::warn!(
                "cannot kill the runner (pid {pid}) in {}: {err:#}",
                self.target.container
            );
        }
    }

    /// The engine-exec transport this one falls back to.
    pub fn fallback(&self) -> &EngineExec {
        &self.fallback
    }

    pub fn target(&self) -> &ExecTarget {
        &self.target
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// The runner's `Run` frame for `request` (id 0: set when sent): its argv,
/// environment, work dir (`work_dir` unless the request names one) and
/// timeout in ms (0: none); no stdin, no output cap, in the foreground.
pub(crate) fn run_frame(request: &ExecRequest, work_dir: &str) -> proto::Run {
    proto::Run {
        id: 0,
        argv: request
            .command
            .argv()
            .into_iter()
            .map(String::into_bytes)
            .collect(),
        env: request
            .env
            .iter()
            .map(|(key, value)| (key.clone().into_bytes(), value.clone().into_bytes()))
            .collect(),
        cwd: request
            .work_dir
            .clone()
            .unwrap_or_else(|| work_dir.to_string())
            .into_bytes(),
        stdin: false,
        timeout_ms: request
            .timeout
            .map_or(0, |timeout| (timeout.as_millis() as u64).max(1)),
        output_cap: 0,
        background: false,
    }
}

impl ExecTransport for RunnerExec {
    fn run<'a>(
        &'a self,
        target: &'a ExecTarget,
        request: ExecRequest,
        events: Option<mpsc::Sender<ExecEvent>>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, anyhow::Result<ExecResult>> {
        Box::pin(async move {
            let Some(conn) = self.connection().await else {
                return self.fallback.run(target, request, events, cancel).await;
            };
            self.running.fetch_add(1, Ordering::Relaxed);
            let result = self.run_on(&conn, target, request, events, cancel).await;
            self.running.fetch_sub(1, Ordering::Relaxed);
            result
        })
    }
}

/// Why sandpit stopped a command (as the engine exec path says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Timeout,
    Cancel,
    Cap,
}

impl RunnerExec {
    async fn run_on(
        &self,
        conn: &Arc<Connection>,
        target: &ExecTarget,
        mut request: ExecRequest,
        events: Option<mpsc::Sender<ExecEvent>>,
        cancel: CancellationToken,
    ) -> anyhow::Result<ExecResult> {
        let started = Instant::now();
        let started_at = std::time::SystemTime::now();
        let tag = new_exec_tag();
        let mut run = run_frame(&request, &target.work_dir);
        // The killer finds the command's processes by it if the runner dies.
        run.env
            .push((EXEC_TAG_VAR.as_bytes().to_vec(), tag.clone().into_bytes()));
        run.stdin = request.stdin.is_some() || request.stdin_stream.is_some();
        // The runner's 0 means no cap; a cap of 0 keeps nothing, which
        // sandpit enforces itself.
        run.output_cap = (request.output_cap as u64).max(1);
        let (id, mut frames) = conn
            .send_request(|id| ClientFrame::Run(proto::Run { id, ..run }))
            .await?;
        let guard = RouteGuard { conn, id };

        // Nothing of the request is used up until the runner says the
        // command started: before that it can still go to the engine.
        let first = tokio::select! {
            frame = frames.recv() => frame,
            _ = conn.shared.dead.cancelled() => None,
            _ = tokio::time::sleep(START_DEADLINE) => None,
        };
        match first {
            Some(RunnerFrame::Started { .. }) => {}
            Some(RunnerFrame::Error {
                code,
                errno,
                message,
                ..
            }) if code == proto::code::SPAWN => {
                drop(guard);
                // The engine's exec may manage where the runner could not:
                // the command goes there. A lack of resources passes; any
                // other failure (a kernel without what the runner needs,
                // e.g. gVisor's) keeps this sandbox off the runner a while.
                let transient = [rustix::io::Errno::AGAIN, rustix::io::Errno::NOMEM]
                    .iter()
                    .any(|known| known.raw_os_error() == errno);
                let message = crate::engine::names::escape(&message);
                if !transient {
                    tracing::warn!(
                        "the runner in {} cannot start commands ({message}, errno {errno}); \
                         using the engine's exec for {RUNNER_UNFIT_PAUSE:?}",
                        target.container
                    );
                    let mut state = self.state.lock().await;
                    *state = State::Down {
                        retry_at: Instant::now() + RUNNER_UNFIT_PAUSE,
                        skip_next: false,
                    };
                } else {
                    tracing::debug!(
                        "the runner in {} could not start a command ({message}); the engine's exec tries",
                        target.container
                    );
                }
                return self.fallback.run(target, request, events, cancel).await;
            }
            other => {
                let reason = match other {
                    Some(RunnerFrame::Error { message, .. }) => format!(
                        "it refused the command: {}",
                        crate::engine::names::escape(&message)
                    ),
                    Some(frame) => format!("it answered {:?} before Started", frame_name(&frame)),
                    None if conn.is_dead() => conn.why_dead(),
                    None => format!("no answer within {START_DEADLINE:?}"),
                };
                drop(guard);
                self.note_fault(conn, &reason).await;
                // It may have started the command without saying so.
                let _ = kill_tree(&self.engine, target, &tag, None).await;
                tracing::warn!(
                    "the runner in {} failed to start a command ({reason}); it runs through the engine's exec",
                    target.container
                );
                return self.fallback.run(target, request, events, cancel).await;
            }
        }

        let stdin_task = run.stdin.then(|| {
            let bytes = request.stdin.take();
            let stream = request.stdin_stream.take();
            let conn = conn.clone();
            tokio::spawn(async move { feed_stdin(&conn, id, bytes, stream).await })
        });

        let mut stdout = CappedBuffer::new(request.output_cap);
        let mut stderr = CappedBuffer::new(request.output_cap);
        let own_deadline = request
            .timeout
            .map(|timeout| tokio::time::Instant::now() + timeout);
        // The runner enforces the timeout; sandpit waits a grace past it.
        let mut give_up = own_deadline.map(|deadline| deadline + EXIT_GRACE);
        let mut stop: Option<Stop> = None;
        let mut cancel_sent = false;
        let exit = loop {
            let frame = tokio::select! {
                frame = frames.recv() => frame,
                _ = conn.shared.dead.cancelled() => None,
                _ = sleep_until_opt(give_up) => {
                    if cancel_sent {
                        None
                    } else {
                        // Past the timeout and the runner has not ended it.
                        stop.get_or_insert(Stop::Timeout);
                        cancel_sent = true;
                        let _ = conn.send(ClientFrame::Cancel { id }).await;
                        give_up = Some(tokio::time::Instant::now() + EXIT_GRACE);
                        continue;
                    }
                }
                _ = cancel.cancelled(), if !cancel_sent => {
                    stop.get_or_insert(Stop::Cancel);
                    cancel_sent = true;
                    let _ = conn.send(ClientFrame::Cancel { id }).await;
                    give_up = Some(tokio::time::Instant::now() + EXIT_GRACE * 2);
                    continue;
                }
            };
            let Some(frame) = frame else { break None };
            match frame {
                RunnerFrame::Output { stream, data, .. } => {
                    let (kind, buffer) = match stream {
                        proto::STDOUT => (Stream::Stdout, &mut stdout),
                        proto::STDERR => (Stream::Stderr, &mut stderr),
                        _ => continue,
                    };
                    let (kept, overflowed) = buffer.push(&data);
                    if !kept.is_empty()
                        && let Some(events) = &events
                    {
                        let event = ExecEvent {
                            stream: kind,
                            data: kept.to_vec(),
                        };
                        // A slow reader holds the output back, never the
                        // deadline or a cancel; one gone only ends the view.
                        tokio::select! {
                            _ = events.send(event) => {}
                            _ = cancel.cancelled(), if !cancel_sent => {
                                stop.get_or_insert(Stop::Cancel);
                                cancel_sent = true;
                                let _ = conn.send(ClientFrame::Cancel { id }).await;
                                give_up = Some(tokio::time::Instant::now() + EXIT_GRACE * 2);
                            }
                        }
                    }
                    if overflowed && !cancel_sent {
                        stop.get_or_insert(Stop::Cap);
                        cancel_sent = true;
                        let _ = conn.send(ClientFrame::Cancel { id }).await;
                        give_up = Some(tokio::time::Instant::now() + EXIT_GRACE * 2);
                    }
                }
                RunnerFrame::Exit(exit) => break Some(exit),
                RunnerFrame::Error { message, .. } => {
                    // The runner lost track of the command: treat it as a
                    // fault, so its processes are killed.
                    let reason = format!(
                        "it reported an error for the command: {}",
                        crate::engine::names::escape(&message)
                    );
                    return self
                        .fault_in_flight(
                            conn,
                            target,
                            &tag,
                            &reason,
                            (started, started_at),
                            stdout,
                            stderr,
                            stdin_task,
                        )
                        .await;
                }
                _ => {}
            }
        };
        if let Some(task) = &stdin_task {
            task.abort();
        }
        let Some(exit) = exit else {
            let reason = if conn.is_dead() {
                conn.why_dead()
            } else {
                "it did not report the command's end in time".to_string()
            };
            return self
                .fault_in_flight(
                    conn,
                    target,
                    &tag,
                    &reason,
                    (started, started_at),
                    stdout,
                    stderr,
                    None,
                )
                .await;
        };
        drop(guard);
        let stop = stop.or(if exit.timed_out {
            Some(Stop::Timeout)
        } else if exit.truncated {
            Some(Stop::Cap)
        } else if exit.cancelled {
            Some(Stop::Cancel)
        } else {
            None
        });
        if stop.is_some() && (!exit.killed_verified || exit.survivors > 0) {
            // The runner could not show the tree gone: the killer makes sure.
            tracing::warn!(
                "the runner could not verify the kill of a command in {} ({} survivors); killing by tag",
                target.container,
                exit.survivors
            );
            let _ = kill_tree(&self.engine, target, &tag, None).await;
        }
        Ok(ExecResult {
            exit_code: Some(exit.exit_code),
            duration: started.elapsed(),
            timed_out: stop == Some(Stop::Timeout),
            truncated: stop == Some(Stop::Cap),
            cancelled: stop == Some(Stop::Cancel),
            stdout_bytes: stdout.total.max(exit.stdout_bytes),
            stderr_bytes: stderr.total.max(exit.stderr_bytes),
            stdout: stdout.kept,
            stderr: stderr.kept,
            ..Default::default()
        })
    }

    /// The runner failed with a command in flight: its processes are killed
    /// by tag. A sandbox that stopped or went away is reported as the
    /// engine exec path reports it (no exit status; the caller looks at the
    /// container); otherwise the command fails with an error.
    #[allow(clippy::too_many_arguments)]
    async fn fault_in_flight(
        &self,
        conn: &Arc<Connection>,
        target: &ExecTarget,
        tag: &str,
        reason: &str,
        (started, started_at): (Instant, std::time::SystemTime),
        stdout: CappedBuffer,
        stderr: CappedBuffer,
        stdin_task: Option<tokio::task::JoinHandle<()>>,
    ) -> anyhow::Result<ExecResult> {
        if let Some(task) = stdin_task {
            task.abort();
        }
        let running = self
            .engine
            .docker()
            .inspect_container(&target.container, None)
            .await
            .ok()
            .and_then(|inspect| inspect.state)
            .and_then(|state| state.running)
            .unwrap_or(false);
        // A sandbox being stopped or removed still reads "running" for a
        // moment after its processes died: the engine's events tell.
        let lost =
            !running || container_killed_since(&self.engine, &target.container, started_at).await;
        self.note_fault(conn, reason).await;
        if lost {
            return Ok(ExecResult {
                exit_code: None,
                duration: started.elapsed(),
                stdout_bytes: stdout.total,
                stderr_bytes: stderr.total,
                stdout: stdout.kept,
                stderr: stderr.kept,
                ..Default::default()
            });
        }
        // The runner knew the command's tree; without it only the tag is
        // left to go by, so the kill is reported as not checked.
        let killed = kill_tree(&self.engine, target, tag, None).await;
        let what = match killed {
            Ok(report) if report.restarted => {
                "the sandbox was restarted to stop its processes".to_string()
            }
            Ok(report) if !report.survivors.is_empty() => format!(
                "processes tagged with it were killed, but {} could not be (pids {:?})",
                report.survivors.len(),
                report.survivors
            ),
            Ok(_) => {
                "the processes tagged with it were killed (membership by tag only: not checked)"
                    .to_string()
            }
            Err(err) => format!("its processes could not be killed: {err:#}"),
        };
        Err(anyhow!(
            "the runner in {} failed during the command ({reason}); {what}. The next command uses the engine's exec",
            target.container
        ))
    }
}

/// Removes a request's route when its consumer is done with it.
struct RouteGuard<'a> {
    conn: &'a Arc<Connection>,
    id: u32,
}

impl Drop for RouteGuard<'_> {
    fn drop(&mut self) {
        self.conn.forget(self.id);
    }
}

async fn feed_stdin(
    conn: &Arc<Connection>,
    id: u32,
    bytes: Option<Vec<u8>>,
    stream: Option<crate::engine::exec::StdinStream>,
) {
    if let Some(bytes) = bytes {
        for chunk in bytes.chunks(STDIN_CHUNK) {
            if conn
                .send(ClientFrame::Stdin {
                    id,
                    data: chunk.to_vec(),
                })
                .await
                .is_err()
            {
                return;
            }
        }
    }
    if let Some(mut stream) = stream {
        let mut buffer = vec![0u8; STDIN_CHUNK];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) => break,
                Ok(read) => {
                    if conn
                        .send(ClientFrame::Stdin {
                            id,
                            data: buffer[..read].to_vec(),
                        })
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Err(err) => {
                    tracing::debug!("stdin stream broke: {err}");
                    break;
                }
            }
        }
    }
    let _ = conn.send(ClientFrame::StdinEof { id }).await;
}

pub(crate) fn frame_name(frame: &RunnerFrame) -> &'static str {
    match frame {
        RunnerFrame::HelloOk { .. } => "HelloOk",
        RunnerFrame::Started { .. } => "Started",
        RunnerFrame::Output { .. } => "Output",
        RunnerFrame::Exit(_) => "Exit",
        RunnerFrame::Error { .. } => "Error",
        RunnerFrame::Entries { .. } => "Entries",
        RunnerFrame::Data { .. } => "Data",
        RunnerFrame::Done { .. } => "Done",
        RunnerFrame::BgEntries { .. } => "BgEntries",
        RunnerFrame::BgData { .. } => "BgData",
    }
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// One runner: its exec's stdin (through a writer task) and the routes of
/// the requests in flight (filled by a reader task).
pub(crate) struct Connection {
    shared: Arc<Shared>,
    outgoing: mpsc::Sender<Vec<u8>>,
    /// The runner's pid in the sandbox.
    pub(crate) pid: u32,
    /// Whether the runner offers background processes.
    pub(crate) background: bool,
}

struct Shared {
    routes: StdMutex<HashMap<u32, mpsc::Sender<RunnerFrame>>>,
    next_id: AtomicU32,
    dead: CancellationToken,
    why_dead: StdMutex<Option<String>>,
    last_heard: StdMutex<Instant>,
    stderr_head: StdMutex<Vec<u8>>,
}

impl Shared {
    fn fail(&self, reason: &str) {
        if let Ok(mut why) = self.why_dead.lock()
            && why.is_none()
        {
            *why = Some(reason.to_string());
        }
        self.dead.cancel();
        // Every consumer sees its route closed.
        if let Ok(mut routes) = self.routes.lock() {
            routes.clear();
        }
    }

    fn heard(&self) {
        if let Ok(mut last) = self.last_heard.lock() {
            *last = Instant::now();
        }
    }

    fn silent_for(&self) -> Duration {
        self.last_heard
            .lock()
            .map_or(Duration::ZERO, |last| last.elapsed())
    }

    fn in_flight(&self) -> bool {
        self.routes.lock().is_ok_and(|routes| !routes.is_empty())
    }

    async fn deliver(&self, frame: RunnerFrame) {
        let id = match &frame {
            RunnerFrame::HelloOk { .. } => 0,
            RunnerFrame::Started { id, .. }
            | RunnerFrame::Output { id, .. }
            | RunnerFrame::Error { id, .. }
            | RunnerFrame::Entries { id, .. }
            | RunnerFrame::Data { id, .. }
            | RunnerFrame::Done { id }
            | RunnerFrame::BgEntries { id, .. }
            | RunnerFrame::BgData { id, .. } => *id,
            RunnerFrame::Exit(exit) => exit.id,
        };
        let route = self
            .routes
            .lock()
            .ok()
            .and_then(|routes| routes.get(&id).cloned());
        // Frames for requests nobody waits for (probes, a command whose
        // caller left) are dropped.
        if let Some(route) = route {
            tokio::select! {
                _ = route.send(frame) => {}
                _ = self.dead.cancelled() => {}
            }
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Closing the runner's stdin (the writer task ends with the last
        // sender) makes it kill this connection's foreground commands.
        self.shared.dead.cancel();
    }
}

impl Connection {
    async fn start(engine: &Engine, target: &ExecTarget, key: &[u8]) -> anyhow::Result<Arc<Self>> {
        let docker = engine.docker();
        let created = docker
            .create_exec(
                &target.container,
                CreateExecOptions {
                    attach_stdin: Some(true),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    tty: Some(false),
                    env: Some(vec![
                        format!("SANDPIT_WORKSPACE={}", target.work_dir),
                        // The daemon's socket folder: in /dev/shm (a tmpfs
                        // every container has) rather than the user's /tmp.
                        format!("SANDPIT_RUNNER_DIR={}", runner_dir(&target.user)),
                    ]),
                    cmd: Some(vec![BINARY_PATH.to_string(), "serve".to_string()]),
                    user: Some(target.user.clone()),
                    working_dir: Some(target.work_dir.clone()),
                    ..Default::default()
                },
            )
            .await
            .with_context(|| format!("cannot create the runner's exec in {}", target.container))?;
        let StartExecResults::Attached { output, input } = docker
            .start_exec(&created.id, None)
            .await
            .with_context(|| format!("cannot start the runner's exec in {}", target.container))?
        else {
            bail!("the engine started the runner's exec detached");
        };
        let shared = Arc::new(Shared {
            routes: StdMutex::new(HashMap::new()),
            next_id: AtomicU32::new(1),
            dead: CancellationToken::new(),
            why_dead: StdMutex::new(None),
            last_heard: StdMutex::new(Instant::now()),
            stderr_head: StdMutex::new(Vec::new()),
        });
        let (outgoing, to_write) = mpsc::channel::<Vec<u8>>(OUTGOING_DEPTH);
        tokio::spawn(write_frames(shared.clone(), input, to_write));
        tokio::spawn(read_frames(
            shared.clone(),
            output,
            target.container.clone(),
        ));

        // The answer to Hello comes on request id 0.
        let (hello_tx, mut hello_rx) = mpsc::channel(1);
        if let Ok(mut routes) = shared.routes.lock() {
            routes.insert(0, hello_tx);
        }
        let mut hello = Vec::new();
        ClientFrame::Hello {
            version: proto::PROTOCOL_VERSION,
            key: key.to_vec(),
        }
        .encode(&mut hello);
        outgoing
            .send(hello)
            .await
            .map_err(|_| anyhow!("the runner's stdin closed at once"))?;
        let answer = tokio::select! {
            answer = hello_rx.recv() => answer,
            _ = shared.dead.cancelled() => None,
        };
        if let Ok(mut routes) = shared.routes.lock() {
            routes.remove(&0);
        }
        let why = || {
            let reason = shared
                .why_dead
                .lock()
                .ok()
                .and_then(|why| why.clone())
                .unwrap_or_else(|| "it ended".to_string());
            let stderr = shared
                .stderr_head
                .lock()
                .map(|head| crate::engine::names::escape(head.trim_ascii()))
                .unwrap_or_default();
            if stderr.is_empty() {
                reason
            } else {
                format!("{reason}; it said: {stderr}")
            }
        };
        let (pid, background) = match answer {
            Some(RunnerFrame::HelloOk {
                version,
                pid,
                background,
            }) => {
                if version != proto::PROTOCOL_VERSION {
                    shared.fail("wrong protocol version");
                    bail!(
                        "the runner speaks protocol {version}, this sandpit {}",
                        proto::PROTOCOL_VERSION
                    );
                }
                (pid, background)
            }
            Some(RunnerFrame::Error { message, .. }) => {
                shared.fail("it refused the connection");
                bail!(
                    "the runner refused the connection: {}",
                    crate::engine::names::escape(&message)
                );
            }
            Some(other) => {
                shared.fail("it answered Hello wrongly");
                bail!("the runner answered Hello with {}", frame_name(&other));
            }
            None => bail!("the runner did not answer: {}", why()),
        };
        let conn = Arc::new(Self {
            shared: shared.clone(),
            outgoing,
            pid,
            background,
        });
        tokio::spawn(watch(Arc::downgrade(&conn), shared));
        tracing::debug!("runner started in {} (pid {pid})", target.container);
        Ok(conn)
    }

    pub(crate) fn is_dead(&self) -> bool {
        self.shared.dead.is_cancelled()
    }

    pub(crate) fn why_dead(&self) -> String {
        self.shared
            .why_dead
            .lock()
            .ok()
            .and_then(|why| why.clone())
            .unwrap_or_else(|| "its connection ended".to_string())
    }

    pub(crate) fn fail(&self, reason: &str) {
        self.shared.fail(reason);
    }

    /// Sends one frame; fails when the runner is gone.
    pub(crate) async fn send(&self, frame: ClientFrame) -> anyhow::Result<()> {
        let mut bytes = Vec::new();
        frame.encode(&mut bytes);
        tokio::select! {
            sent = self.outgoing.send(bytes) => sent.map_err(|_| anyhow!("the runner's connection is closed")),
            _ = self.shared.dead.cancelled() => Err(anyhow!("the runner is gone: {}", self.why_dead())),
        }
    }

    /// Registers a new request id, sends the frame `build` makes with it,
    /// and returns the id with the receiver of its answers.
    pub(crate) async fn send_request(
        &self,
        build: impl FnOnce(u32) -> ClientFrame,
    ) -> anyhow::Result<(u32, mpsc::Receiver<RunnerFrame>)> {
        let id = self.new_id();
        let (tx, rx) = mpsc::channel(ROUTE_DEPTH);
        if let Ok(mut routes) = self.shared.routes.lock() {
            // Silence counts from when something waits: an idle runner (or
            // a caller that blocked this thread a while) is not a dead one.
            if routes.is_empty() {
                self.shared.heard();
            }
            routes.insert(id, tx);
        }
        if let Err(err) = self.send(build(id)).await {
            self.forget(id);
            return Err(err);
        }
        Ok((id, rx))
    }

    /// One request with one answer, within `deadline`; the answer's frame.
    /// Errors when the runner is gone or silent past the deadline.
    pub(crate) async fn call(
        &self,
        build: impl FnOnce(u32) -> ClientFrame,
        deadline: Duration,
    ) -> anyhow::Result<RunnerFrame> {
        let (id, mut rx) = self.send_request(build).await?;
        let answer = tokio::select! {
            answer = rx.recv() => answer,
            _ = tokio::time::sleep(deadline) => {
                self.forget(id);
                bail!("the runner did not answer within {deadline:?}");
            }
        };
        self.forget(id);
        answer.ok_or_else(|| anyhow!("the runner went away: {}", self.why_dead()))
    }

    /// The next answer of a request, by `by`; errors when the runner went
    /// away or `by` passed.
    pub(crate) async fn next_answer(
        &self,
        rx: &mut mpsc::Receiver<RunnerFrame>,
        by: tokio::time::Instant,
    ) -> anyhow::Result<RunnerFrame> {
        tokio::select! {
            answer = rx.recv() => answer.ok_or_else(|| anyhow!("the runner went away: {}", self.why_dead())),
            _ = tokio::time::sleep_until(by) => bail!("the runner did not answer within {FILE_DEADLINE:?}"),
        }
    }

    /// When a file operation started now must have ended.
    pub(crate) fn file_deadline() -> tokio::time::Instant {
        tokio::time::Instant::now() + FILE_DEADLINE
    }

    /// How long a file operation may take.
    pub(crate) fn file_deadline_duration() -> Duration {
        FILE_DEADLINE
    }

    pub(crate) fn forget(&self, id: u32) {
        if let Ok(mut routes) = self.shared.routes.lock() {
            routes.remove(&id);
        }
    }

    fn new_id(&self) -> u32 {
        loop {
            let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
            // 0 is Hello's.
            if id != 0 {
                return id;
            }
        }
    }
}

async fn write_frames(
    shared: Arc<Shared>,
    mut input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    mut frames: mpsc::Receiver<Vec<u8>>,
) {
    loop {
        let frame = tokio::select! {
            frame = frames.recv() => frame,
            _ = shared.dead.cancelled() => None,
        };
        let Some(frame) = frame else { break };
        let written = tokio::select! {
            written = async {
                input.write_all(&frame).await?;
                // Frames queued behind this one go in the same flush.
                while let Ok(more) = frames.try_recv() {
                    input.write_all(&more).await?;
                }
                input.flush().await
            } => written,
            _ = shared.dead.cancelled() => break,
        };
        if let Err(err) = written {
            shared.fail(&format!("writing to it failed: {err}"));
            break;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), input.shutdown()).await;
}

async fn read_frames(
    shared: Arc<Shared>,
    mut output: std::pin::Pin<
        Box<
            dyn futures_util::Stream<
                    Item = Result<bollard::container::LogOutput, bollard::errors::Error>,
                > + Send,
        >,
    >,
    container: String,
) {
    let mut decoder = Decoder::<RunnerFrame>::new();
    loop {
        let chunk = tokio::select! {
            chunk = output.next() => chunk,
            _ = shared.dead.cancelled() => return,
        };
        match chunk {
            None => {
                shared.fail("its exec ended");
                return;
            }
            Some(Err(err)) => {
                shared.fail(&format!("its output broke: {err}"));
                return;
            }
            Some(Ok(bollard::container::LogOutput::StdOut { message })) => {
                shared.heard();
                decoder.push(&message);
                loop {
                    match decoder.next() {
                        Ok(Some(frame)) => shared.deliver(frame).await,
                        Ok(None) => break,
                        Err(err) => {
                            shared.fail(&format!("it sent a bad frame: {err}"));
                            return;
                        }
                    }
                }
            }
            Some(Ok(bollard::container::LogOutput::StdErr { message })) => {
                if let Ok(mut head) = shared.stderr_head.lock() {
                    let room = STDERR_KEPT.saturating_sub(head.len());
                    head.extend_from_slice(&message[..message.len().min(room)]);
                }
                let shown = &message[..message.len().min(STDERR_KEPT)];
                tracing::debug!(
                    "runner in {container}: {}",
                    crate::engine::names::escape(shown.trim_ascii())
                );
            }
            Some(Ok(_)) => {}
        }
    }
}

/// Probes a runner that is silent while requests wait, and declares it dead
/// past [`SILENCE_LIMIT`]. Ends with the connection.
async fn watch(conn: std::sync::Weak<Connection>, shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(PROBE_AFTER);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shared.dead.cancelled() => return,
        }
        if !shared.in_flight() {
            // Nothing waits: silence is fine.
            shared.heard();
            continue;
        }
        let silent = shared.silent_for();
        if silent >= SILENCE_LIMIT {
            shared.fail(&format!("it stopped answering (silent for {silent:.1?})"));
            return;
        }
        if silent >= PROBE_AFTER {
            let Some(conn) = conn.upgrade() else { return };
            // Any answer counts as a sign of life; this one is dropped.
            let id = conn.new_id();
            let mut bytes = Vec::new();
            ClientFrame::BgList { id }.encode(&mut bytes);
            let _ = conn.outgoing.try_send(bytes);
        }
    }
}
