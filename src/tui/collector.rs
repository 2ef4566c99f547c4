//! The dashboard's engine worker. It owns every engine call and talks to the
//! UI only through messages: it sends whole snapshots and samples as
//! [`Update`]s and carries out [`Request`]s, so the UI never waits on Docker.

use crate::activity::{Activity, ActivityLog, Source};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt as _;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use tokio_util::sync::CancellationToken;

use crate::engine::Engine;
use crate::engine::exec::{ExecEvent, ExecRequest, ExecResult, Stream};
use crate::engine::files::{DirEntry, FileData};
use crate::engine::images::{BuildEvent, ImageState};
use crate::engine::names;
use crate::engine::policy::PolicyOverrides;
use crate::engine::runtimes::RuntimeSet;
use crate::engine::sandbox::UserId;
use crate::engine::stats::StatsSample;
use crate::sessions::isolation::{self, ProbeResult};
use crate::sessions::{Session, SessionConfig, SessionManager};
use crate::tui::run_input::ChannelReader;

/// How often the engine is asked whether it is still there.
const HEALTH_INTERVAL: Duration = Duration::from_secs(2);
const RECONNECT_INTERVAL: Duration = Duration::from_secs(1);
const REAP_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub enum Update {
    EngineUp {
        version: String,
    },
    EngineDown {
        error: String,
    },
    Sessions(Vec<Session>),
    Runtimes(Vec<(String, Option<ImageState>)>),
    Stats {
        user: String,
        sample: StatsSample,
    },
    /// When a running session's container started, in Unix seconds (sent
    /// once per start, after the `Sessions` that lists it running).
    Started {
        user: String,
        at: i64,
    },
    BuildLog {
        runtime: String,
        line: String,
    },
    BuildFinished {
        runtime: String,
        result: Result<String, String>,
    },
    Isolation {
        from: String,
        target: String,
        result: Result<Vec<ProbeResult>, String>,
    },
    RunOutput {
        user: String,
        stream: Stream,
        data: Vec<u8>,
    },
    RunFinished {
        user: String,
        result: Result<ExecResult, String>,
    },
    DirListing {
        user: String,
        path: String,
        result: Result<Vec<DirEntry>, String>,
    },
    FileOpened {
        user: String,
        path: String,
        result: Result<FileData, String>,
    },
    /// A file operation finished: these folders' listings changed.
    FilesChanged {
        user: String,
        dirs: Vec<String>,
    },
    /// The activity log changed or answered (see [`super::activity`]).
    Activity(super::activity::ActivityUpdate),
    Notice(String),
    Failure(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Create {
        user: UserId,
        runtime: String,
        overrides: PolicyOverrides,
    },
    Start(String),
    Stop(String),
    Restart(String),
    Delete {
        user: String,
        purge: bool,
    },
    Build(String),
    CheckIsolation {
        from: String,
        target: String,
    },
    /// Save the buffer to `file` in the workspace, then run `command` with
    /// `TERM` and a `COLUMNS` x `LINES` size matching the Output pane.
    Run {
        user: String,
        file: String,
        contents: String,
        command: String,
        columns: u16,
        lines: u16,
    },
    CancelRun(String),
    /// Input for the stdin of `user`'s run under way: `Some` bytes are
    /// written to it, `None` closes it (end of input). Ignored when no run
    /// is under way or its stdin is already closed.
    RunInput {
        user: String,
        data: Option<Vec<u8>>,
    },
    ListDir {
        user: String,
        path: String,
    },
    OpenFile {
        user: String,
        path: String,
    },
    FileOp {
        user: String,
        op: FileOp,
    },
    Save {
        user: String,
        file: String,
        contents: String,
    },
    /// The newest activity of one session, for the Activity pane; answered
    /// whether or not the engine is up.
    ActivityBacklog {
        user: String,
    },
}

/// Changes to a workspace from the Files pane; paths relative to it, in
/// escaped form ([`crate::engine::names`]) like the tree's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOp {
    NewFile(String),
    NewDir(String),
    Rename { from: String, to: String },
    Delete(String),
}

impl FileOp {
    /// The same operation with each path in canonical escaped form (as the
    /// tree shows it), so the folders it changes match the tree's keys.
    fn canonical(&self) -> anyhow::Result<FileOp> {
        let canon = |path: &str| path_bytes(path).map(|bytes| names::escape(&bytes));
        Ok(match self {
            FileOp::NewFile(path) => FileOp::NewFile(canon(path)?),
            FileOp::NewDir(path) => FileOp::NewDir(canon(path)?),
            FileOp::Rename { from, to } => FileOp::Rename {
                from: canon(from)?,
                to: canon(to)?,
            },
            FileOp::Delete(path) => FileOp::Delete(canon(path)?),
        })
    }

    /// The folders whose listings the operation changes.
    fn dirs(&self) -> Vec<String> {
        let parent = |path: &str| {
            path.rsplit_once('/')
                .map_or(String::new(), |(dir, _)| dir.to_string())
        };
        match self {
            FileOp::NewFile(path) | FileOp::NewDir(path) | FileOp::Delete(path) => {
                vec![parent(path)]
            }
            FileOp::Rename { from, to } => vec![parent(from), parent(to)],
        }
    }
}

/// The bytes a path from the dashboard (escaped text) stands for.
fn path_bytes(path: &str) -> anyhow::Result<Vec<u8>> {
    names::unescape(path).map_err(|err| anyhow::anyhow!("path `{path}`: {err}"))
}

/// Output kept per stream of a dashboard run; the scrollback bounds what
/// the dashboard holds, this bounds how long a flood runs.
const RUN_OUTPUT_CAP: usize = 16 << 20;

/// What a run's programs are told the terminal is. Their output is drawn
/// by the Output pane's terminal log, which renders its colours.
const RUN_TERM: &str = "xterm-256color";

/// A run under way: its cancel switch and the feed of its stdin (`None`
/// once the user closed it).
struct RunHandle {
    cancel: CancellationToken,
    stdin: Option<mpsc::UnboundedSender<Vec<u8>>>,
}

/// The runs under way, by user.
type Runs = Arc<std::sync::Mutex<HashMap<String, RunHandle>>>;

/// Starts the engine worker. Each dashboard run is recorded in `activity`,
/// and the log is followed for the Activity pane, engine or no engine.
pub fn spawn(
    config: SessionConfig,
    runtimes: RuntimeSet,
    activity: ActivityLog,
    updates: mpsc::UnboundedSender<Update>,
    requests: mpsc::UnboundedReceiver<Request>,
) -> JoinHandle<()> {
    let feed = tokio::spawn(super::activity::feed(activity.clone(), updates.clone()));
    tokio::spawn(async move {
        // Ends with the worker, however the worker ends.
        let _feed = tokio_util::task::AbortOnDropHandle::new(feed);
        run(config, runtimes, activity, updates, requests).await;
    })
}

async fn run(
    config: SessionConfig,
    runtimes: RuntimeSet,
    activity: ActivityLog,
    updates: mpsc::UnboundedSender<Update>,
    mut requests: mpsc::UnboundedReceiver<Request>,
) {
    loop {
        let engine = match Engine::connect().await {
            Ok(engine) => engine,
            Err(err) => {
                let _ = updates.send(Update::EngineDown {
                    error: format!("{err:#}"),
                });
                // Requests made while the engine is away are answered, not queued.
                let deadline = tokio::time::Instant::now() + RECONNECT_INTERVAL;
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep_until(deadline) => break,
                        request = requests.recv() => match request {
                            None => return,
                            Some(Request::ActivityBacklog { user }) => {
                                tokio::spawn(super::activity::backlog(
                                    activity.clone(),
                                    user,
                                    updates.clone(),
                                ));
                            }
                            Some(_) => {
                                let _ = updates.send(Update::Failure(
                                    "the Docker engine is not answering; try again when it is back".to_string(),
                                ));
                            }
                        },
                    }
                }
                continue;
            }
        };
        let version = engine
            .info()
            .await
            .map(|info| info.engine_version)
            .unwrap_or_default();
        let _ = updates.send(Update::EngineUp { version });
        let manager = Arc::new(SessionManager::new(
            engine.clone(),
            runtimes.clone(),
            config.clone(),
        ));
        let connected = Connected {
            engine,
            manager,
            updates: updates.clone(),
            stats_tasks: HashMap::new(),
            runs: Runs::default(),
            activity: activity.clone(),
            started: HashMap::new(),
        };
        if connected.serve(&mut requests).await == Serve::Quit {
            return;
        }
        tokio::time::sleep(RECONNECT_INTERVAL).await;
    }
}

#[derive(PartialEq, Eq)]
enum Serve {
    Quit,
    Lost,
}

struct Connected {
    engine: Engine,
    manager: Arc<SessionManager>,
    updates: mpsc::UnboundedSender<Update>,
    /// One stats stream per running sandbox: user → (container id, task).
    stats_tasks: HashMap<String, (String, JoinHandle<()>)>,
    runs: Runs,
    activity: ActivityLog,
    /// Start times already sent, by container id; a start, restart or stop
    /// event forgets its container's, so it is read again.
    started: HashMap<String, i64>,
}

impl Drop for Connected {
    fn drop(&mut self) {
        for (_, (_, task)) in self.stats_tasks.drain() {
            task.abort();
        }
    }
}

impl Connected {
    async fn serve(mut self, requests: &mut mpsc::UnboundedReceiver<Request>) -> Serve {
        // Subscribe before listing, so nothing between the two is missed.
        let mut events = Box::pin(self.manager.watch());
        self.send_runtimes().await;
        if self.refresh_sessions().await.is_err() {
            return Serve::Lost;
        }
        let mut health = tokio::time::interval(HEALTH_INTERVAL);
        let mut reap = tokio::time::interval(REAP_INTERVAL);
        loop {
            tokio::select! {
                event = events.next() => match event {
                    Some(Ok(event)) => {
                        if matches!(event.action.as_str(), "start" | "restart" | "die" | "stop" | "destroy") {
                            self.started.remove(&event.container_id);
                        }
                        if self.refresh_sessions().await.is_err() {
                            return Serve::Lost;
                        }
                    }
                    Some(Err(err)) => {
                        self.lost(format!("{err:#}"));
                        return Serve::Lost;
                    }
                    None => {
                        self.lost("the engine closed its event stream".to_string());
                        return Serve::Lost;
                    }
                },
                request = requests.recv() => match request {
                    None => return Serve::Quit,
                    Some(request) => self.handle(request),
                },
                _ = health.tick() => {
                    if let Err(err) = self.engine.docker().ping().await {
                        self.lost(format!("the engine stopped answering: {err}"));
                        return Serve::Lost;
                    }
                }
                _ = reap.tick() => {
                    if let Err(err) = self.manager.reap_idle(SystemTime::now()).await {
                        tracing::warn!("idle reaping failed: {err:#}");
                    }
                }
            }
        }
    }

    fn lost(&self, error: String) {
        let _ = self.updates.send(Update::EngineDown { error });
    }

    async fn send_runtimes(&self) {
        send_runtimes(&self.manager, &self.updates).await;
    }

    async fn refresh_sessions(&mut self) -> anyhow::Result<()> {
        let sessions = match self.manager.list().await {
            Ok(sessions) => sessions,
            Err(err) => {
                self.lost(format!("{err:#}"));
                return Err(err);
            }
        };
        self.sync_stats(&sessions);
        let running: Vec<(String, String)> = sessions
            .iter()
            .filter(|s| s.sandbox.is_running())
            .map(|s| (s.sandbox.user.clone(), s.sandbox.container_id.clone()))
            .collect();
        let _ = self.updates.send(Update::Sessions(sessions));
        self.send_start_times(running).await;
        Ok(())
    }

    /// Reads the start time of each running container not yet sent (the
    /// list the engine gives has only a status text such as "Up 5
    /// minutes"), a few at a time.
    async fn send_start_times(&mut self, running: Vec<(String, String)>) {
        self.started
            .retain(|container, _| running.iter().any(|(_, id)| id == container));
        let unknown: Vec<(String, String)> = running
            .into_iter()
            .filter(|(_, container)| !self.started.contains_key(container))
            .collect();
        let docker = self.engine.docker().clone();
        let found: Vec<(String, String, Option<i64>)> = futures_util::stream::iter(unknown)
            .map(|(user, container)| {
                let docker = docker.clone();
                async move {
                    let at = docker
                        .inspect_container(&container, None)
                        .await
                        .ok()
                        .and_then(|inspect| inspect.state)
                        .and_then(|state| state.started_at)
                        .and_then(|text| unix_from_rfc3339(&text));
                    (user, container, at)
                }
            })
            .buffer_unordered(8)
            .collect()
            .await;
        for (user, container, at) in found {
            // A container gone since the list has no start time; the next
            // event lists it again.
            if let Some(at) = at {
                self.started.insert(container, at);
                let _ = self.updates.send(Update::Started { user, at });
            }
        }
    }

    /// Starts a stats stream for each running sandbox and ends the others.
    fn sync_stats(&mut self, sessions: &[Session]) {
        let running: HashMap<&str, &str> = sessions
            .iter()
            .filter(|s| s.sandbox.is_running())
            .map(|s| (s.sandbox.user.as_str(), s.sandbox.container_id.as_str()))
            .collect();
        self.stats_tasks.retain(|user, (container, task)| {
            let keep =
                running.get(user.as_str()) == Some(&container.as_str()) && !task.is_finished();
            if !keep {
                task.abort();
            }
            keep
        });
        for (user, container) in running {
            if self.stats_tasks.contains_key(user) {
                continue;
            }
            let stream = self.engine.stats_stream(container);
            let updates = self.updates.clone();
            let user_name = user.to_string();
            let task = tokio::spawn(async move {
                let mut stream = Box::pin(stream);
                while let Some(Ok(sample)) = stream.next().await {
                    let update = Update::Stats {
                        user: user_name.clone(),
                        sample,
                    };
                    if updates.send(update).is_err() {
                        break;
                    }
                }
            });
            self.stats_tasks
                .insert(user.to_string(), (container.to_string(), task));
        }
    }

    /// Carries out a request in its own task; the engine's events bring the
    /// session list up to date afterwards.
    fn handle(&self, request: Request) {
        let manager = self.manager.clone();
        let updates = self.updates.clone();
        let runs = self.runs.clone();
        let activity = self.activity.clone();
        tokio::spawn(async move {
            let outcome = carry_out(&manager, &updates, &runs, &activity, request).await;
            let update = match outcome {
                Ok(Some(notice)) => Update::Notice(notice),
                Ok(None) => return,
                Err(err) => Update::Failure(format!("{err:#}")),
            };
            let _ = updates.send(update);
        });
    }
}

async fn carry_out(
    manager: &SessionManager,
    updates: &mpsc::UnboundedSender<Update>,
    runs: &Runs,
    activity: &ActivityLog,
    request: Request,
) -> anyhow::Result<Option<String>> {
    let user_id = |name: &str| UserId::parse(name).map_err(anyhow::Error::msg);
    match request {
        Request::ActivityBacklog { user } => {
            super::activity::backlog(activity.clone(), user, updates.clone()).await;
            Ok(None)
        }
        Request::Create {
            user,
            runtime,
            overrides,
        } => {
            let built = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let mut forward = build_forwarder(updates.clone(), runtime.clone());
            let saw_build = built.clone();
            let mut on_build = move |event: BuildEvent| {
                // A session on an image that exists needs no build log.
                if !matches!(event, BuildEvent::Cached { .. }) {
                    saw_build.store(true, std::sync::atomic::Ordering::Relaxed);
                    forward(event);
                }
            };
            let outcome = manager
                .get_or_create(&user, Some(&runtime), &overrides, &mut on_build)
                .await;
            if built.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = updates.send(Update::BuildFinished {
                    runtime: runtime.clone(),
                    result: outcome
                        .as_ref()
                        .map(|_| runtime.clone())
                        .map_err(|err| format!("{err:#}")),
                });
            }
            outcome?;
            Ok(Some(format!("session `{user}` is running")))
        }
        Request::Start(user) => {
            manager.start(&user_id(&user)?).await?;
            Ok(Some(format!("started `{user}`")))
        }
        Request::Stop(user) => {
            manager.stop(&user_id(&user)?).await?;
            Ok(Some(format!("stopped `{user}`; its workspace is kept")))
        }
        Request::Restart(user) => {
            manager.restart(&user_id(&user)?).await?;
            Ok(Some(format!("restarted `{user}`")))
        }
        Request::Delete { user, purge } => {
            manager.destroy(&user_id(&user)?, purge).await?;
            Ok(Some(if purge {
                format!("deleted `{user}` and its workspace")
            } else {
                format!("deleted `{user}`; its workspace is kept")
            }))
        }
        Request::Build(runtime_name) => {
            let runtime = manager.runtimes().require(&runtime_name)?.clone();
            let mut on_build = build_forwarder(updates.clone(), runtime_name.clone());
            let result = manager
                .engine()
                .build_runtime(&runtime, &manager.config().build, &mut on_build)
                .await
                .map_err(|err| format!("{err:#}"));
            let _ = updates.send(Update::BuildFinished {
                runtime: runtime_name,
                result,
            });
            send_runtimes(manager, updates).await;
            Ok(None)
        }
        Request::Run {
            user,
            file,
            contents,
            command,
            columns,
            lines,
        } => {
            let started = std::time::Instant::now();
            let summary = command.clone();
            let run = RunCode {
                user: &user,
                file: &file,
                contents,
                command,
                size: (columns, lines),
            };
            let result = run_code(manager, updates, runs, run).await;
            if let Ok(id) = user_id(&user) {
                let entry = Activity::new(Source::Dashboard, &id, "run", &summary);
                activity
                    .record_async(entry.finish_exec(&result, started))
                    .await;
            }
            let result = result.map_err(|err| format!("{err:#}"));
            let _ = updates.send(Update::RunFinished { user, result });
            Ok(None)
        }
        Request::ListDir { user, path } => {
            let sandbox = manager.get(&user_id(&user)?).await?;
            let result = async { sandbox.list_dir(path_bytes(&path)?).await }
                .await
                .map_err(|err| format!("{err:#}"));
            let _ = updates.send(Update::DirListing { user, path, result });
            Ok(None)
        }
        Request::OpenFile { user, path } => {
            let sandbox = manager.get(&user_id(&user)?).await?;
            let result = async {
                sandbox
                    .read_file(path_bytes(&path)?, crate::tui::files::MAX_EDITABLE_SIZE)
                    .await
            }
            .await
            .map_err(|err| format!("{err:#}"));
            let _ = updates.send(Update::FileOpened { user, path, result });
            Ok(None)
        }
        Request::FileOp { user, op } => {
            let sandbox = manager.get(&user_id(&user)?).await?;
            let op = op.canonical()?;
            let notice = match &op {
                FileOp::NewFile(path) => {
                    sandbox.write_file(path_bytes(path)?, Vec::new()).await?;
                    format!("created {path}")
                }
                FileOp::NewDir(path) => {
                    sandbox.make_dir(path_bytes(path)?).await?;
                    format!("created folder {path}")
                }
                FileOp::Rename { from, to } => {
                    sandbox.rename(path_bytes(from)?, path_bytes(to)?).await?;
                    format!("renamed {from} to {to}")
                }
                FileOp::Delete(path) => {
                    sandbox.delete(path_bytes(path)?).await?;
                    format!("deleted {path}")
                }
            };
            let _ = updates.send(Update::FilesChanged {
                user,
                dirs: op.dirs(),
            });
            Ok(Some(notice))
        }
        Request::CancelRun(user) => {
            if let Ok(runs) = runs.lock()
                && let Some(run) = runs.get(&user)
            {
                run.cancel.cancel();
            }
            Ok(None)
        }
        Request::RunInput { user, data } => {
            if let Ok(mut runs) = runs.lock()
                && let Some(run) = runs.get_mut(&user)
            {
                match data {
                    // A program that closed its stdin drops what it would
                    // have read, as a closed pipe does.
                    Some(data) => {
                        if let Some(stdin) = &run.stdin {
                            let _ = stdin.send(data);
                        }
                    }
                    None => run.stdin = None,
                }
            }
            Ok(None)
        }
        Request::Save {
            user,
            file,
            contents,
        } => {
            manager
                .get(&user_id(&user)?)
                .await?
                .write_file(path_bytes(&file)?, contents.into_bytes())
                .await?;
            Ok(Some(format!("saved {file} in `{user}`'s workspace")))
        }
        Request::CheckIsolation { from, target } => {
            let from_box = manager.get(&user_id(&from)?).await;
            let target_box = manager.get(&user_id(&target)?).await;
            let result = match (from_box, target_box) {
                (Ok(from_box), Ok(target_box)) => {
                    let mut stopped = None;
                    for (name, sandbox) in [(&from, &from_box), (&target, &target_box)] {
                        let running = sandbox.inspect().await.map(|d| d.info.is_running());
                        if !running.unwrap_or(false) {
                            stopped = Some(name.clone());
                        }
                    }
                    if let Some(name) = stopped {
                        let _ = updates.send(Update::Isolation {
                            from,
                            target,
                            result: Err(format!("session `{name}` is not running; start it first")),
                        });
                        return Ok(None);
                    }
                    let workspace = manager
                        .workspace_of(target_box.user())
                        .display()
                        .to_string();
                    isolation::check_isolation(&from_box, &target_box, &workspace)
                        .await
                        .map_err(|err| format!("{err:#}"))
                }
                (Err(err), _) | (_, Err(err)) => Err(format!("{err:#}")),
            };
            let _ = updates.send(Update::Isolation {
                from,
                target,
                result,
            });
            Ok(None)
        }
    }
}

/// Sends the image state of every runtime.
async fn send_runtimes(manager: &SessionManager, updates: &mpsc::UnboundedSender<Update>) {
    let mut rows = Vec::new();
    for runtime in manager.runtimes().iter() {
        let state = manager.engine().image_state(runtime).await.ok();
        rows.push((runtime.name.clone(), state));
    }
    let _ = updates.send(Update::Runtimes(rows));
}

fn build_forwarder(
    updates: mpsc::UnboundedSender<Update>,
    runtime: String,
) -> impl FnMut(BuildEvent) + Send {
    move |event| {
        let line = match event {
            BuildEvent::Cached { tag } => format!("image {tag} is up to date"),
            BuildEvent::Pull { image, status } => format!("pull {image}: {status}"),
            BuildEvent::Log(line) => line,
            BuildEvent::Built { tag } => format!("built {tag}"),
        };
        let _ = updates.send(Update::BuildLog {
            runtime: runtime.clone(),
            line,
        });
    }
}

/// One dashboard run: the buffer saved to `file`, then `command` run with a
/// terminal of `size` (columns, lines).
struct RunCode<'a> {
    user: &'a str,
    file: &'a str,
    contents: String,
    command: String,
    size: (u16, u16),
}

/// Saves the buffer and runs it, streaming its output to the dashboard and
/// the user's input to its stdin.
async fn run_code(
    manager: &SessionManager,
    updates: &mpsc::UnboundedSender<Update>,
    runs: &Runs,
    run: RunCode<'_>,
) -> anyhow::Result<ExecResult> {
    let RunCode {
        user,
        file,
        contents,
        command,
        size: (columns, lines),
    } = run;
    let sandbox = manager
        .get(&UserId::parse(user).map_err(anyhow::Error::msg)?)
        .await?;
    sandbox
        .write_file(path_bytes(file)?, contents.into_bytes())
        .await?;
    let cancel = CancellationToken::new();
    let (stdin, stdin_reader) = ChannelReader::new();
    if let Ok(mut runs) = runs.lock() {
        let handle = RunHandle {
            cancel: cancel.clone(),
            stdin: Some(stdin),
        };
        runs.insert(user.to_string(), handle);
    }
    let (events, mut received) = mpsc::channel::<ExecEvent>(64);
    let forward_updates = updates.clone();
    let forward_user = user.to_string();
    let forwarder = tokio::spawn(async move {
        while let Some(event) = received.recv().await {
            let update = Update::RunOutput {
                user: forward_user.clone(),
                stream: event.stream,
                data: event.data,
            };
            if forward_updates.send(update).is_err() {
                break;
            }
        }
    });
    let request = ExecRequest::shell(command)
        .output_cap(RUN_OUTPUT_CAP)
        .env("TERM", RUN_TERM)
        .env("COLUMNS", columns.max(1).to_string())
        .env("LINES", lines.max(1).to_string())
        .stdin_stream(stdin_reader);
    let result = sandbox.exec(request, Some(events), cancel).await;
    let _ = forwarder.await;
    if let Ok(mut runs) = runs.lock() {
        runs.remove(user);
    }
    let _ = manager.release(sandbox.user());
    let mut result = result?;
    // The dashboard shows the output as it streamed; the copy is not needed.
    result.stdout = Vec::new();
    result.stderr = Vec::new();
    Ok(result)
}
/// Unix seconds of an RFC 3339 UTC time as the engine writes it, e.g.
/// `2024-05-01T12:34:56.123456789Z`; None for anything else (the engine
/// writes `0001-01-01T00:00:00Z` for a container never started).
fn unix_from_rfc3339(text: &str) -> Option<i64> {
    let (date, time) = text.split_once('T')?;
    let mut date = date.splitn(3, '-');
    let year: i64 = date.next()?.parse().ok()?;
    let month: i64 = date.next()?.parse().ok()?;
    let day: i64 = date.next()?.parse().ok()?;
    let time = time.strip_suffix('Z')?;
    let time = time.split_once('.').map_or(time, |(whole, _)| whole);
    let mut time = time.splitn(3, ':');
    let hour: i64 = time.next()?.parse().ok()?;
    let minute: i64 = time.next()?.parse().ok()?;
    let second: i64 = time.next()?.parse().ok()?;
    if year < 1970 || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

#[cfg(test)]
mod tests {
    use super::unix_from_rfc3339;

    #[test]
    fn engine_times_become_unix_seconds() {
        assert_eq!(unix_from_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            unix_from_rfc3339("2024-02-29T12:34:56.123456789Z"),
            Some(1_709_210_096)
        );
        assert_eq!(
            unix_from_rfc3339("2026-11-29T17:36:40Z"),
            Some(1_795_973_800)
        );
        assert_eq!(unix_from_rfc3339("0001-01-01T00:00:00Z"), None);
        assert_eq!(unix_from_rfc3339("yesterday"), None);
        assert_eq!(unix_from_rfc3339("2024-02-29T12:34:56+02:00"), None);
    }
}
