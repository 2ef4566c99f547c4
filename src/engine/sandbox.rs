//! Sandboxes: one long-lived, hardened container each, named for its user,
//! carrying labels that let any sandpit process find it again.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder,
};
use futures_util::StreamExt as _;
use serde::Serialize;
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

use super::exec::{
    EngineExec, ExecEvent, ExecRequest, ExecResult, ExecTarget, ExecTransport, SIGKILL_EXIT_CODE,
    SandboxLoss,
};
use super::policy::{ByteSize, DiskLimit, SandboxPolicy};
use super::quota::{self, DiskUsage};
use super::runner::transport::{self as runner_transport, RunnerExec};
use super::runner::volume as runner_volume;
use super::runtimes::Runtime;
use super::{Engine, is_not_found, labels};

pub const CONTAINER_PREFIX: &str = "sandpit-";

/// How long a gVisor sandbox is given to show it stopped after runsc's exec
/// ended without a real status.
const GVISOR_DEATH_SETTLE: std::time::Duration = std::time::Duration::from_secs(3);
/// How long a sandbox killed during a command may take to stop or go.
const LOSS_SETTLE: std::time::Duration = std::time::Duration::from_secs(15);

/// Label keys on sandbox containers, beside [`labels::MANAGED`] and
/// [`labels::RUNTIME`].
pub mod sandbox_labels {
    pub const USER: &str = "sandpit.user";
    pub const WORKSPACE: &str = "sandpit.workspace";
    pub const CREATED: &str = "sandpit.created";
    pub const KIND: &str = "sandpit.kind";
    pub const KIND_SANDBOX: &str = "sandbox";
    /// The workspace limit asked for, in bytes; `0` for none.
    pub const DISK: &str = "sandpit.disk";
    /// The sandbox's runner key (hex): the runner and its background daemon
    /// prove to each other that they know it. Labels are not visible
    /// inside the sandbox.
    pub const RUNNER_KEY: &str = "sandpit.runner-key";
}

/// A user id: letters, digits, `-`, `_` and `.`, 1 to 64 characters, not
/// starting with `.` or `-`. It names a container and a workspace folder, so
/// nothing else gets through.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    pub fn parse(text: &str) -> Result<Self, String> {
        let shown = text.escape_debug();
        if text.is_empty() {
            return Err("user id is empty".to_string());
        }
        if text.len() > 64 {
            return Err(format!("user id `{shown}` is longer than 64 characters"));
        }
        if text.starts_with(['.', '-']) {
            return Err(format!("user id `{shown}` must not start with `.` or `-`"));
        }
        if let Some(bad) = text
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(format!(
                "user id `{shown}` contains {}: use letters, digits, `-`, `_` and `.`",
                match bad {
                    ' ' => "a space".to_string(),
                    c if c.is_control() => "a control character".to_string(),
                    c => format!("`{c}`"),
                }
            ));
        }
        Ok(Self(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn container_name(&self) -> String {
        format!("{CONTAINER_PREFIX}{}", self.0)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for UserId {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        Self::parse(text)
    }
}

/// Creating a sandbox whose container name is taken.
#[derive(Debug, thiserror::Error)]
#[error("a sandbox for user `{user}` exists already ({container})")]
pub struct SandboxExists {
    pub user: String,
    pub container: String,
}

/// Everything needed to create a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    pub user: UserId,
    pub runtime: Runtime,
    /// The runtime's built image.
    pub image: String,
    /// Host folder mounted at the runtime's work dir.
    pub workspace: PathBuf,
    pub policy: SandboxPolicy,
}

/// What the engine says about a sandbox, from its labels and state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SandboxInfo {
    pub user: String,
    pub runtime: String,
    pub container_id: String,
    pub state: String,
    /// The engine's words for the state, e.g. "Up 5 minutes".
    pub status: String,
    pub image: String,
    pub workspace: String,
    /// Unix seconds.
    pub created: i64,
    /// The workspace limit the sandbox was made with, in bytes; `None` for
    /// none.
    pub disk_limit: Option<u64>,
}

impl SandboxInfo {
    pub fn is_running(&self) -> bool {
        self.state == "running"
    }
}

/// The full picture `inspect` shows: identity, state and the policy the
/// engine enforces.
#[derive(Debug, Clone, Serialize)]
pub struct SandboxDetails {
    pub info: SandboxInfo,
    pub name: String,
    pub work_dir: String,
    pub started_at: String,
    pub oom_killed: bool,
    pub policy: SandboxPolicy,
    /// The workspace's usage and whether its limit is enforced; filled by
    /// [`Sandbox::inspect_with_usage`] only (measuring may walk the folder),
    /// and `None` when the folder is not on this host.
    pub disk: Option<DiskUsage>,
    /// How this process runs commands in the sandbox.
    pub transport: TransportInfo,
}

/// Which transport carries a sandbox's commands (see [`Sandbox::transport_info`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransportInfo {
    /// `runner` (the in-sandbox runner, falling back to the engine's exec
    /// when it fails) or `engine` (the engine's exec API).
    pub name: &'static str,
    /// Why the engine's exec is used, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A handle on one sandbox container.
#[derive(Clone)]
pub struct Sandbox {
    engine: Engine,
    user: UserId,
    target: ExecTarget,
    transport: Arc<dyn ExecTransport>,
    /// The cgroup's OOM-kill count when last looked at, to tell an OOM kill
    /// from any other SIGKILL.
    oom_kills_seen: Arc<Mutex<Option<u64>>>,
    /// The OCI runtime the container runs under, when not the default.
    oci_runtime: Option<String>,
    /// The runner transport, when the sandbox has the runner's volume (and
    /// the engine's exec is not forced): also the way to its file
    /// operations and background processes.
    runner: Option<Arc<RunnerExec>>,
    /// Why there is no runner, for `inspect`.
    no_runner: Option<&'static str>,
}

impl fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sandbox")
            .field("user", &self.user)
            .field("target", &self.target)
            .finish()
    }
}

impl Engine {
    /// Creates and starts a sandbox. An OCI runtime the policy asks for
    /// must be one the engine offers (see [`Engine::check_oci_runtime`]). Its workspace folder is created when
    /// missing and made the sandbox's uid's: a workspace another uid owns is
    /// handed over whole, links not followed (see `prepare_workspace`), or
    /// refused, before any container exists, when sandpit cannot give files
    /// away. Nothing is left behind on failure.
    ///
    /// With a disk limit (`policy.disk`), the workspace is first made its
    /// own size-limited file system (see [`quota`]); where that is not
    /// possible the sandbox is made without one and `inspect` says why.
    pub async fn create_sandbox(&self, spec: &SandboxSpec) -> anyhow::Result<Sandbox> {
        self.create_sandbox_with(spec, true).await
    }

    /// [`Engine::create_sandbox`] without the runner's volume: the sandbox
    /// runs every command through the engine's exec, as one made before the
    /// runner existed does.
    pub async fn create_sandbox_without_runner(
        &self,
        spec: &SandboxSpec,
    ) -> anyhow::Result<Sandbox> {
        self.create_sandbox_with(spec, false).await
    }

    async fn create_sandbox_with(
        &self,
        spec: &SandboxSpec,
        with_runner: bool,
    ) -> anyhow::Result<Sandbox> {
        let name = spec.user.container_name();
        if let Some(runtime) = &spec.policy.oci_runtime {
            self.check_oci_runtime(runtime, &spec.policy.network, spec.policy.pids_limit)
                .await
                .with_context(|| format!("cannot create the sandbox of `{}`", spec.user))?;
        }
        let (uid, gid) = spec.policy.uid_gid();
        let disk = prepare_workspace(spec.workspace.clone(), spec.policy.disk, uid, gid).await?;
        match disk.enforced {
            Some(limit) => tracing::info!(
                "workspace {}: size limit {} enforced",
                spec.workspace.display(),
                ByteSize(limit)
            ),
            None if spec.policy.disk.bytes().is_some() => tracing::warn!(
                "workspace {}: size limit NOT ENFORCED: {}",
                spec.workspace.display(),
                disk.note.as_deref().unwrap_or("unknown reason")
            ),
            None => {}
        }
        match self.create_container(spec, &name, with_runner).await {
            Ok(sandbox) => Ok(sandbox),
            // Another process made this user's sandbox meanwhile: the image
            // is that sandbox's now, and stays mounted.
            Err(err) if err.is::<SandboxExists>() => Err(err),
            Err(err) => {
                // The image mounted for a sandbox that never came to be is
                // released; one made just now goes too.
                let workspace = spec.workspace.clone();
                let created = disk.created;
                let _ =
                    tokio::task::spawn_blocking(move || quota::release(&workspace, created)).await;
                Err(err)
            }
        }
    }

    async fn create_container(
        &self,
        spec: &SandboxSpec,
        name: &str,
        with_runner: bool,
    ) -> anyhow::Result<Sandbox> {
        let name = name.to_string();
        // The runner makes commands fast, but a sandbox works without it:
        // a volume that cannot be made leaves the engine's exec in charge.
        let runner_volume = if with_runner {
            match self
                .ensure_runner_volume(super::runner::binary::RUNNER_BINARY, &spec.image)
                .await
            {
                Ok(volume) => Some(volume),
                Err(err) => {
                    tracing::warn!(
                        "sandbox {name} is made without the runner ({err:#}); its commands use the engine's exec"
                    );
                    None
                }
            }
        } else {
            None
        };
        let runner_key = if runner_volume.is_some() {
            runner_transport::new_runner_key()
        } else {
            String::new()
        };
        let mut host_config = spec.policy.host_config(
            &spec.workspace.display().to_string(),
            &spec.runtime.work_dir,
        );
        if let Some(volume) = &runner_volume {
            host_config
                .mounts
                .get_or_insert_with(Vec::new)
                .push(runner_volume::sandbox_mount(volume));
        }
        let workspace = spec.workspace.display().to_string();
        let created_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let container_labels = HashMap::from([
            (labels::MANAGED.to_string(), "true".to_string()),
            (
                sandbox_labels::KIND.to_string(),
                sandbox_labels::KIND_SANDBOX.to_string(),
            ),
            (sandbox_labels::USER.to_string(), spec.user.to_string()),
            (labels::RUNTIME.to_string(), spec.runtime.name.clone()),
            (sandbox_labels::WORKSPACE.to_string(), workspace.clone()),
            (sandbox_labels::CREATED.to_string(), created_at.to_string()),
            (
                sandbox_labels::DISK.to_string(),
                spec.policy.disk.bytes().unwrap_or(0).to_string(),
            ),
            (sandbox_labels::RUNNER_KEY.to_string(), runner_key.clone()),
        ]);
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            // Long-lived and idle: commands arrive as execs. Init reaps them.
            entrypoint: Some(vec!["sleep".to_string()]),
            cmd: Some(vec!["infinity".to_string()]),
            user: Some(spec.policy.user.clone()),
            working_dir: Some(spec.runtime.work_dir.clone()),
            hostname: Some("sandpit".to_string()),
            // The root filesystem may be read-only; /tmp is the writable home.
            env: Some(vec!["HOME=/tmp".to_string()]),
            labels: Some(container_labels),
            network_disabled: Some(spec.policy.network == "none"),
            stop_timeout: Some(2),
            host_config: Some(host_config),
            ..Default::default()
        };
        let created = self
            .docker()
            .create_container(
                Some(CreateContainerOptionsBuilder::new().name(&name).build()),
                body,
            )
            .await
            .map_err(|err| match &err {
                bollard::errors::Error::DockerResponseServerError {
                    status_code: 409, ..
                } => anyhow::Error::new(SandboxExists {
                    user: spec.user.to_string(),
                    container: name.clone(),
                }),
                _ => anyhow::Error::new(err)
                    .context(format!("cannot create the sandbox container {name}")),
            })?;
        if let Err(err) = self.docker().start_container(&name, None).await {
            // Leave nothing half-created.
            let _ = self
                .docker()
                .remove_container(
                    &name,
                    Some(RemoveContainerOptionsBuilder::new().force(true).build()),
                )
                .await;
            return Err(anyhow::Error::new(err).context(format!("cannot start {name}")));
        }
        let target = ExecTarget {
            container: name,
            user: spec.policy.user.clone(),
            work_dir: spec.runtime.work_dir.clone(),
        };
        let mut sandbox = Sandbox {
            engine: self.clone(),
            user: spec.user.clone(),
            transport: Arc::new(EngineExec::new(self.clone())),
            // A new cgroup has seen no OOM kill.
            oom_kills_seen: Arc::new(Mutex::new(Some(0))),
            oci_runtime: spec.policy.oci_runtime.clone(),
            runner: None,
            no_runner: None,
            target,
        };
        sandbox.pick_transport(&created.id, runner_volume.is_some(), &runner_key);
        Ok(sandbox)
    }

    /// The user's sandbox, when one exists (running or not).
    pub async fn find_sandbox(&self, user: &UserId) -> anyhow::Result<Option<Sandbox>> {
        let name = user.container_name();
        let inspect = match self.docker().inspect_container(&name, None).await {
            Ok(inspect) => inspect,
            Err(err) if is_not_found(&err) => return Ok(None),
            Err(err) => {
                return Err(anyhow::Error::new(err).context(format!("cannot inspect {name}")));
            }
        };
        let oci_runtime = inspect
            .host_config
            .as_ref()
            .and_then(|host| host.runtime.clone());
        let has_runner =
            runner_volume::has_runner_mount(inspect.mounts.as_deref().unwrap_or_default());
        let container_id = inspect.id.clone().unwrap_or_default();
        let config = inspect.config.unwrap_or_default();
        let runner_key = config
            .labels
            .as_ref()
            .and_then(|labels| labels.get(sandbox_labels::RUNNER_KEY))
            .cloned()
            .unwrap_or_default();
        let managed = config
            .labels
            .as_ref()
            .and_then(|labels| labels.get(labels::MANAGED))
            .is_some_and(|value| value == "true");
        if !managed {
            bail!("container {name} exists but is not a sandpit sandbox; remove or rename it");
        }
        let mut sandbox = Sandbox {
            engine: self.clone(),
            user: user.clone(),
            target: ExecTarget {
                container: name,
                user: config.user.unwrap_or_default(),
                work_dir: config.working_dir.unwrap_or_else(|| "/".to_string()),
            },
            transport: Arc::new(EngineExec::new(self.clone())),
            oom_kills_seen: Arc::new(Mutex::new(None)),
            oci_runtime,
            runner: None,
            no_runner: None,
        };
        sandbox.pick_transport(&container_id, has_runner, &runner_key);
        Ok(Some(sandbox))
    }

    /// Every sandpit sandbox on the engine, in any state.
    pub async fn list_sandboxes(&self) -> anyhow::Result<Vec<SandboxInfo>> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!(
                "{}={}",
                sandbox_labels::KIND,
                sandbox_labels::KIND_SANDBOX
            )],
        )]);
        let containers = self
            .docker()
            .list_containers(Some(
                ListContainersOptionsBuilder::new()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .context("cannot list sandboxes")?;
        let mut sandboxes: Vec<SandboxInfo> = containers
            .into_iter()
            .map(|container| {
                let labels = container.labels.unwrap_or_default();
                let label = |key: &str| labels.get(key).cloned().unwrap_or_default();
                SandboxInfo {
                    user: label(sandbox_labels::USER),
                    runtime: label(labels::RUNTIME),
                    container_id: container.id.unwrap_or_default(),
                    state: container
                        .state
                        .map(|state| state.to_string())
                        .unwrap_or_default(),
                    status: container.status.unwrap_or_default(),
                    image: container.image.unwrap_or_default(),
                    workspace: label(sandbox_labels::WORKSPACE),
                    created: label(sandbox_labels::CREATED).parse().unwrap_or_default(),
                    disk_limit: disk_label(&labels),
                }
            })
            .collect();
        sandboxes.sort_by(|a, b| a.user.cmp(&b.user));
        Ok(sandboxes)
    }
}

/// Creates the workspace folder when missing and gives it to the sandbox's
/// `uid:gid`, so code inside can write to it. When another uid owns it (the
/// workspace of an earlier sandbox that ran as another user), every entry of
/// the tree that uid owns is handed over, symbolic links themselves and never
/// their targets, without entering mounts inside it, the top folder last so
/// that an interrupted hand-over is retried next time. Entries of other
/// owners (root's, say) are left as they are and logged. When sandpit is not
/// root it cannot give files away: a differing owner is then refused with
/// what to do, and nothing is created. The walk runs on a blocking thread.
///
/// The disk image (see [`quota::prepare`]) is mounted first, so the
/// hand-over works on the file system the sandbox will see.
async fn prepare_workspace(
    path: PathBuf,
    disk: DiskLimit,
    uid: u32,
    gid: u32,
) -> anyhow::Result<quota::Prepared> {
    tokio::task::spawn_blocking(move || {
        let prepared = quota::prepare(&path, disk.bytes(), uid, gid)?;
        if let Err(err) = super::workspace::prepare(&path, uid, gid) {
            let _ = quota::release(&path, prepared.created);
            return Err(err);
        }
        Ok(prepared)
    })
    .await
    .context("preparing the workspace folder stopped")?
}

/// A sandbox's workspace usage against its limit (see [`quota::usage`],
/// which walks at most `walk_limit` entries of a workspace without a mounted
/// image); `None` when the workspace folder is not on this host.
pub async fn workspace_usage(info: &SandboxInfo, walk_limit: u64) -> Option<DiskUsage> {
    if info.workspace.is_empty() {
        return None;
    }
    let path = PathBuf::from(&info.workspace);
    let limit = info.disk_limit;
    tokio::task::spawn_blocking(move || quota::usage(&path, limit, walk_limit))
        .await
        .ok()
        .flatten()
}

/// The sandbox's disk limit from its label: bytes, `0` for none.
fn disk_label(labels: &HashMap<String, String>) -> Option<u64> {
    labels
        .get(sandbox_labels::DISK)
        .and_then(|value| value.parse().ok())
        .filter(|bytes| *bytes > 0)
}

impl Sandbox {
    pub fn user(&self) -> &UserId {
        &self.user
    }

    pub fn container_name(&self) -> &str {
        &self.target.container
    }

    pub fn work_dir(&self) -> &str {
        &self.target.work_dir
    }

    /// Where execs in this sandbox run: container, `uid:gid` and work dir.
    pub(crate) fn exec_target(&self) -> &ExecTarget {
        &self.target
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Replaces how commands reach this sandbox. File operations then go
    /// through it too (as engine-exec scripts), and background processes
    /// are unavailable.
    pub fn with_transport(mut self, transport: Arc<dyn ExecTransport>) -> Self {
        self.transport = transport;
        self.runner = None;
        self.no_runner = Some("its transport was replaced by the caller");
        self
    }

    /// Uses the runner when the container has its volume, unless this
    /// process was told to use the engine's exec (see
    /// [`runner_transport::TRANSPORT_ENV`]).
    fn pick_transport(&mut self, container_id: &str, has_runner_volume: bool, runner_key: &str) {
        let gvisor = self.oci_runtime.as_deref() == Some(super::oci::GVISOR);
        if gvisor {
            // gVisor counts its own threads against the pids limit and
            // stops the whole sandbox at it; see `without_watchdog`.
            self.transport = Arc::new(EngineExec::new(self.engine.clone()).without_watchdog());
        }
        if !has_runner_volume {
            self.no_runner = Some(
                "the sandbox has no runner volume (made before the runner, or the volume could not be made)",
            );
        } else if gvisor {
            // runsc refuses PR_SET_CHILD_SUBREAPER, so the runner cannot
            // prove a killed tree gone there (it says so, unverified); the
            // engine exec's killer checks.
            self.no_runner = Some(
                "gVisor refuses the runner's per-command subreaper, so the runner could not check its kills",
            );
        } else if runner_transport::engine_forced() {
            self.no_runner = Some("SANDPIT_EXEC_TRANSPORT=engine");
        } else if container_id.is_empty() {
            self.no_runner = Some("the engine gave no container id");
        } else {
            let runner =
                RunnerExec::for_container(&self.engine, container_id, &self.target, runner_key);
            self.transport = runner.clone();
            self.runner = Some(runner);
            self.no_runner = None;
        }
    }

    /// Which transport this handle runs commands through, and why the
    /// engine's exec when it is that.
    pub fn transport_info(&self) -> TransportInfo {
        match (&self.runner, self.no_runner) {
            (Some(_), _) => TransportInfo {
                name: "runner",
                reason: None,
            },
            (None, reason) => TransportInfo {
                name: "engine",
                reason: reason.map(str::to_string),
            },
        }
    }

    /// The runner transport, when this sandbox uses one.
    pub(crate) fn runner(&self) -> Option<&Arc<RunnerExec>> {
        self.runner.as_ref()
    }

    fn gone_or(&self, err: bollard::errors::Error, what: &str) -> anyhow::Error {
        if is_not_found(&err) {
            anyhow::anyhow!(
                "the sandbox of user `{}` is gone: its container {} was removed outside sandpit",
                self.user,
                self.target.container
            )
        } else {
            anyhow::Error::new(err).context(format!("cannot {what} {}", self.target.container))
        }
    }

    /// A (re)started container has a new memory cgroup whose OOM-kill
    /// count starts again.
    async fn forget_oom_baseline(&self) {
        *self.oom_kills_seen.lock().await = None;
    }

    /// Mounts the workspace's disk image again when it has one that is not
    /// mounted (after a host reboot, or an `rm` without `--purge`). A
    /// running container would keep its view of the unmounted folder, so it
    /// is stopped first and started again after.
    pub async fn ensure_workspace_mounted(&self) -> anyhow::Result<()> {
        let details = self.inspect().await?;
        if details.info.workspace.is_empty() {
            return Ok(());
        }
        let workspace = PathBuf::from(&details.info.workspace);
        if !quota::needs_remount(&workspace) {
            return Ok(());
        }
        let running = details.info.is_running();
        if running {
            self.stop().await?;
        }
        tokio::task::spawn_blocking(move || quota::remount(&workspace))
            .await
            .context("mounting the workspace image stopped")??;
        if running {
            self.start_container().await?;
        }
        Ok(())
    }

    /// Starts the sandbox, its workspace image mounted first.
    pub async fn start(&self) -> anyhow::Result<()> {
        self.ensure_workspace_mounted().await?;
        self.start_container().await
    }

    async fn start_container(&self) -> anyhow::Result<()> {
        self.forget_oom_baseline().await;
        match self
            .engine
            .docker()
            .start_container(&self.target.container, None)
            .await
        {
            Ok(()) => Ok(()),
            Err(err) => self.already_or(err, "start"),
        }
    }

    /// The engine answers 304 when a container is already in the state
    /// asked for: that is success.
    fn already_or(&self, err: bollard::errors::Error, what: &str) -> anyhow::Result<()> {
        match err {
            bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            } => Ok(()),
            err => Err(self.gone_or(err, what)),
        }
    }

    pub async fn stop(&self) -> anyhow::Result<()> {
        match self
            .engine
            .docker()
            .stop_container(
                &self.target.container,
                Some(StopContainerOptionsBuilder::new().t(2).build()),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(err) => self.already_or(err, "stop"),
        }
    }

    pub async fn restart(&self) -> anyhow::Result<()> {
        self.ensure_workspace_mounted().await?;
        self.forget_oom_baseline().await;
        self.engine
            .docker()
            .restart_container(
                &self.target.container,
                Some(
                    bollard::query_parameters::RestartContainerOptionsBuilder::new()
                        .t(2)
                        .build(),
                ),
            )
            .await
            .map_err(|err| self.gone_or(err, "restart"))
    }

    /// Removes the container; the workspace folder is deleted only when
    /// `delete_workspace` is set. Without it the workspace's disk image
    /// stays mounted, so its files stay where they were on the host; with
    /// it the image is unmounted (its loop device freed) and deleted first.
    pub async fn remove(&self, delete_workspace: bool) -> anyhow::Result<()> {
        let workspace = self.inspect().await?.info.workspace;
        self.engine
            .docker()
            .remove_container(
                &self.target.container,
                Some(RemoveContainerOptionsBuilder::new().force(true).build()),
            )
            .await
            .map_err(|err| self.gone_or(err, "remove"))?;
        if delete_workspace && !workspace.is_empty() {
            let path = PathBuf::from(&workspace);
            tokio::task::spawn_blocking(move || quota::release(&path, true))
                .await
                .context("releasing the workspace image stopped")?
                .with_context(|| {
                    format!("removed the sandbox but cannot release its workspace {workspace}")
                })?;
        }
        if delete_workspace && !workspace.is_empty() {
            match std::fs::remove_dir_all(&workspace) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => {
                    return Err(err).with_context(|| {
                        format!("removed the sandbox but cannot delete its workspace {workspace}")
                    });
                }
            }
        }
        Ok(())
    }

    async fn inspect_container(&self) -> anyhow::Result<bollard::models::ContainerInspectResponse> {
        self.engine
            .docker()
            .inspect_container(&self.target.container, None)
            .await
            .map_err(|err| self.gone_or(err, "inspect"))
    }

    pub async fn inspect(&self) -> anyhow::Result<SandboxDetails> {
        let inspect = self.inspect_container().await?;
        let config = inspect.config.unwrap_or_default();
        let labels = config.labels.clone().unwrap_or_default();
        let label = |key: &str| labels.get(key).cloned().unwrap_or_default();
        let state = inspect.state.unwrap_or_default();
        let host_config = inspect.host_config.unwrap_or_default();
        let work_dir = config.working_dir.clone().unwrap_or_default();
        let disk_limit = disk_label(&labels);
        Ok(SandboxDetails {
            info: SandboxInfo {
                user: label(sandbox_labels::USER),
                runtime: label(labels::RUNTIME),
                container_id: inspect.id.unwrap_or_default(),
                state: state.status.map(|s| s.to_string()).unwrap_or_default(),
                status: String::new(),
                image: config.image.clone().unwrap_or_default(),
                workspace: label(sandbox_labels::WORKSPACE),
                created: label(sandbox_labels::CREATED).parse().unwrap_or_default(),
                disk_limit,
            },
            name: self.target.container.clone(),
            started_at: state.started_at.unwrap_or_default(),
            oom_killed: state.oom_killed.unwrap_or(false),
            policy: SandboxPolicy::from_host_config(
                config.user.as_deref().unwrap_or_default(),
                &host_config,
                &work_dir,
                DiskLimit(disk_limit.map(ByteSize)),
            ),
            work_dir,
            disk: None,
            transport: self.transport_info(),
        })
    }

    /// [`Sandbox::inspect`] with the workspace's usage against its limit.
    pub async fn inspect_with_usage(&self) -> anyhow::Result<SandboxDetails> {
        let mut details = self.inspect().await?;
        details.disk = workspace_usage(&details.info, quota::USAGE_WALK_ONE).await;
        Ok(details)
    }

    /// Whether any command is running in the sandbox right now, from any
    /// sandpit process.
    ///
    /// A runner's own exec is not a command (it lives as long as its
    /// client): while one runs, the sandbox's processes are looked at
    /// instead, and any but its init, its `sleep` and runners counts,
    /// background processes included.
    pub async fn has_running_exec(&self) -> anyhow::Result<bool> {
        let inspect = self.inspect_container().await?;
        let mut runner_running = false;
        for exec_id in inspect.exec_ids.clone().unwrap_or_default() {
            if let Ok(exec) = self.engine.docker().inspect_exec(&exec_id).await
                && exec.running == Some(true)
            {
                let entrypoint = exec.process_config.and_then(|config| config.entrypoint);
                if entrypoint.as_deref() == Some(runner_volume::BINARY_PATH) {
                    runner_running = true;
                    continue;
                }
                return Ok(true);
            }
        }
        if !runner_running {
            return Ok(false);
        }
        let container_id = inspect.id.clone().unwrap_or_default();
        if RunnerExec::running_in(&self.engine, &container_id) > 0 {
            return Ok(true);
        }
        let main_pid = inspect.state.and_then(|state| state.pid).unwrap_or(0);
        let top = self
            .engine
            .docker()
            .top_processes(
                &self.target.container,
                Some(
                    bollard::query_parameters::TopOptionsBuilder::new()
                        .ps_args("-o pid,ppid,args")
                        .build(),
                ),
            )
            .await
            .map_err(|err| self.gone_or(err, "list the processes of"))?;
        Ok(busy_processes(&top, main_pid))
    }

    /// Runs a command, streaming output events to `events` when given.
    pub async fn exec(
        &self,
        request: ExecRequest,
        events: Option<mpsc::Sender<ExecEvent>>,
        cancel: CancellationToken,
    ) -> anyhow::Result<ExecResult> {
        // The OOM baseline must be known before the command can be killed.
        let baseline_known = self.oom_kills_seen.lock().await.is_some();
        if !baseline_known {
            let count = self.read_oom_kills().await;
            *self.oom_kills_seen.lock().await = count;
        }
        // Wall-clock time for the engine's events, a monotonic one for waits.
        let started = std::time::SystemTime::now();
        let started_at = std::time::Instant::now();
        let run = self.transport.run(&self.target, request, events, cancel);
        let mut result = if self.oci_runtime.as_deref() == Some(super::oci::GVISOR) {
            // Under gVisor the memory limit kills the whole sandbox, and the
            // engine then never ends the exec: watch the container too.
            let result = tokio::select! {
                result = run => result?,
                died = self.container_died() => self.after_death(died, started, started_at).await?,
            };
            // runsc's exec can end first, with 128 ("WaitPID failed: EOF")
            // or no status, as the sandbox goes down: look once more.
            let runsc_lost = result.exit_code.is_none()
                || (result.exit_code == Some(128)
                    && String::from_utf8_lossy(&result.stderr).contains("WaitPID"));
            if runsc_lost
                && !result.sandbox_restarted
                && let Some(oom_killed) = self.stopped_within(GVISOR_DEATH_SETTLE).await
            {
                self.after_death(oom_killed, started, started_at).await?
            } else {
                result
            }
        } else {
            run.await?
        };
        if result.sandbox_restarted {
            self.forget_oom_baseline().await;
        }
        // A sandbox sandpit restarted to end the command is not a loss.
        let stopped_by_sandpit =
            result.timed_out || result.truncated || result.cancelled || result.sandbox_restarted;
        // A command whose sandbox is removed leaves no exit status; one whose
        // sandbox is stopped dies of SIGKILL. Only then is the container
        // looked at, so a plain exit costs nothing more.
        if !stopped_by_sandpit && result.exit_code.is_none_or(|code| code > 128) {
            result.sandbox_lost = self.loss_since(started).await;
        }
        if result.exit_code == Some(SIGKILL_EXIT_CODE)
            && !stopped_by_sandpit
            && result.sandbox_lost.is_none()
        {
            match self.read_oom_kills().await {
                Some(now) => {
                    let mut seen = self.oom_kills_seen.lock().await;
                    result.oom_killed = seen.is_none_or(|before| now > before);
                    *seen = Some(now);
                }
                // Nothing runs in the sandbox any more: it may have been on
                // its way out when first looked at.
                None => result.sandbox_lost = self.loss_since(started).await,
            }
            if result.oom_killed {
                result.memory_limit = self.memory_limit().await;
            }
        }
        Ok(result)
    }

    /// Whether the sandbox's container went away (or is going away) since
    /// `since`. A container being killed still reads "running" for a moment
    /// after its processes died, so a running one is judged by the engine's
    /// events: after a kill, die or stop it is waited for until it settles.
    pub(crate) async fn loss_since(&self, since: std::time::SystemTime) -> Option<SandboxLoss> {
        if let Some(loss) = self.loss_now().await? {
            return Some(loss);
        }
        if !self.killed_since(since).await {
            return None;
        }
        let deadline = std::time::Instant::now() + LOSS_SETTLE;
        let mut pause = std::time::Duration::from_millis(10);
        while std::time::Instant::now() < deadline {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(std::time::Duration::from_millis(200));
            if let Some(loss) = self.loss_now().await? {
                return Some(loss);
            }
        }
        tracing::warn!(
            "{} was killed during a command but is still running after {LOSS_SETTLE:?}",
            self.target.container
        );
        None
    }

    /// The container's state now: `Some(None)` when it runs, `None` when it
    /// cannot be read.
    async fn loss_now(&self) -> Option<Option<SandboxLoss>> {
        match self
            .engine
            .docker()
            .inspect_container(&self.target.container, None)
            .await
        {
            Err(err) if is_not_found(&err) => Some(Some(SandboxLoss::Removed)),
            Ok(inspect) => {
                let state = inspect.state.unwrap_or_default();
                // The engine shows "removing" once a removal's kill is done;
                // "dead" is a removal that failed half way.
                Some(match state.status {
                    Some(
                        bollard::models::ContainerStateStatusEnum::REMOVING
                        | bollard::models::ContainerStateStatusEnum::DEAD,
                    ) => Some(SandboxLoss::Removed),
                    _ if state.running == Some(true) => None,
                    _ => Some(SandboxLoss::Stopped),
                })
            }
            Err(err) => {
                tracing::warn!("cannot inspect {}: {err}", self.target.container);
                None
            }
        }
    }

    /// Whether the engine killed, stopped or removed the container since
    /// `since` (this host's clock, as the engine's events are stamped).
    async fn killed_since(&self, since: std::time::SystemTime) -> bool {
        self.events_since(since, &["kill", "die", "stop", "destroy"])
            .await
    }

    /// Whether the engine reported any of `events` for the container since
    /// `since`.
    async fn events_since(&self, since: std::time::SystemTime, events: &[&str]) -> bool {
        let stamp = |time: std::time::SystemTime| {
            let time = time
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            format!("{}.{:09}", time.as_secs(), time.subsec_nanos())
        };
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            ("container".to_string(), vec![self.target.container.clone()]),
            (
                "event".to_string(),
                events.iter().map(|event| event.to_string()).collect(),
            ),
        ]);
        let options = bollard::query_parameters::EventsOptionsBuilder::new()
            .since(&stamp(since))
            .until(&stamp(std::time::SystemTime::now()))
            .filters(&filters)
            .build();
        let mut events = self.engine.docker().events(Some(options));
        // With `until` in the past, the engine sends what it has and ends.
        let first = tokio::time::timeout(LOSS_SETTLE, events.next()).await;
        matches!(first, Ok(Some(Ok(_))))
    }

    /// The memory limit the engine enforces, in bytes; `None` when unlimited
    /// or unreadable.
    async fn memory_limit(&self) -> Option<u64> {
        let inspect = self.inspect_container().await.ok()?;
        let memory = inspect.host_config?.memory?;
        u64::try_from(memory).ok().filter(|bytes| *bytes > 0)
    }

    /// Runs a command and returns its result with output kept, no streaming.
    pub async fn exec_collect(&self, request: ExecRequest) -> anyhow::Result<ExecResult> {
        self.exec(request, None, CancellationToken::new()).await
    }

    /// Resolves when the container stops running, with whether the engine
    /// says the memory limit killed it. Never resolves while the engine
    /// cannot be asked (a transport without one, an engine restarting).
    async fn container_died(&self) -> bool {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tick.tick().await;
            if let Some(oom_killed) = self.stopped_now().await {
                return oom_killed;
            }
        }
    }

    /// The engine's out-of-memory flag when the container is not running;
    /// `None` while it runs or cannot be inspected.
    async fn stopped_now(&self) -> Option<bool> {
        let inspect = self
            .engine
            .docker()
            .inspect_container(&self.target.container, None)
            .await
            .ok()?;
        let state = inspect.state.unwrap_or_default();
        (state.running == Some(false)).then(|| state.oom_killed.unwrap_or(false))
    }

    /// Whether the container stops within `within` (polled), with the
    /// engine's out-of-memory flag when it does.
    async fn stopped_within(&self, within: std::time::Duration) -> Option<bool> {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(oom_killed) = self.stopped_now().await {
                return Some(oom_killed);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// The result of a command whose gVisor sandbox died under it: when its
    /// own limits stopped it, it is started again (its workspace untouched)
    /// and the command reported killed; when it was stopped or removed on
    /// purpose, the command is reported as having lost its sandbox.
    async fn after_death(
        &self,
        oom_killed: bool,
        since: std::time::SystemTime,
        started: std::time::Instant,
    ) -> anyhow::Result<ExecResult> {
        // Stopped or removed on purpose (`sandpit stop`, `docker rm -f`):
        // that is a lost sandbox, never started again behind the stopper.
        if self.events_since(since, &["kill", "stop", "destroy"]).await {
            return Ok(ExecResult {
                duration: started.elapsed(),
                sandbox_lost: Some(
                    self.loss_now()
                        .await
                        .flatten()
                        .unwrap_or(SandboxLoss::Stopped),
                ),
                ..Default::default()
            });
        }
        self.start().await.with_context(|| {
            format!(
                "the sandbox of `{}` stopped while a command ran and cannot be started again",
                self.user
            )
        })?;
        let why = if oom_killed {
            "the memory limit killed the whole gVisor sandbox"
        } else {
            // Measured: a process flood at the pids limit stops gVisor whole.
            "the gVisor sandbox stopped (reaching its pids limit stops it whole)"
        };
        Ok(ExecResult {
            exit_code: Some(SIGKILL_EXIT_CODE),
            duration: started.elapsed(),
            oom_killed,
            sandbox_restarted: true,
            stderr: format!("sandpit: {why} while the command ran; it was started again\n")
                .into_bytes(),
            ..Default::default()
        })
    }

    /// The memory cgroup's OOM-kill counter, read from inside (cgroup v1 or v2).
    async fn read_oom_kills(&self) -> Option<u64> {
        let request = ExecRequest::argv([
            "cat",
            "/sys/fs/cgroup/memory.events",
            "/sys/fs/cgroup/memory/memory.oom_control",
        ])
        .work_dir("/");
        let result = self
            .transport
            .run(&self.target, request, None, CancellationToken::new())
            .await
            .ok()?;
        parse_oom_kill_count(&result.stdout_text())
    }
}

/// Whether `top` (columns `PID PPID COMMAND`, host pids) shows a process
/// other than the container's main one (`main_pid`), its `sleep infinity`
/// and the runner's.
fn busy_processes(top: &bollard::models::ContainerTopResponse, main_pid: i64) -> bool {
    let titles = top.titles.clone().unwrap_or_default();
    let column = |name: &str| titles.iter().position(|title| title == name);
    let (Some(pid_at), Some(ppid_at)) = (column("PID"), column("PPID")) else {
        // Unreadable: count it as busy rather than stop a command.
        return true;
    };
    let args_at = titles.len().saturating_sub(1);
    top.processes.iter().flatten().any(|row| {
        let field = |at: usize| row.get(at).map(String::as_str).unwrap_or_default();
        let pid: i64 = field(pid_at).parse().unwrap_or(-1);
        let ppid: i64 = field(ppid_at).parse().unwrap_or(-1);
        let args = field(args_at);
        // A zombie runs nothing: a runner's shepherd is one for a moment
        // after it reported its command's end (ps shows `[name] <defunct>`).
        let idle = pid == main_pid
            || (ppid == main_pid && args == "sleep infinity")
            || args.starts_with(runner_volume::BINARY_PATH)
            || args.ends_with("<defunct>");
        !idle
    })
}

/// The `oom_kill N` line of memory.events (v2) or memory.oom_control (v1).
pub fn parse_oom_kill_count(text: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        line.strip_prefix("oom_kill ")
            .and_then(|count| count.trim().parse().ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids() {
        for ok in ["alice", "Bob_2", "a.b-c", "x", &"a".repeat(64)] {
            assert!(UserId::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "../x",
            "/",
            ".hidden",
            "-rf",
            "a b",
            "a/b",
            "a\nb",
            "a\u{7}",
            "ü",
            &"a".repeat(65),
        ] {
            assert!(UserId::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            UserId::parse("alice").unwrap().container_name(),
            "sandpit-alice"
        );
        assert!(UserId::parse("../x").unwrap_err().contains("`.`"));
    }

    #[test]
    fn only_commands_make_a_sandbox_busy() {
        let top = |rows: &[[&str; 3]]| bollard::models::ContainerTopResponse {
            titles: Some(vec!["PID".into(), "PPID".into(), "COMMAND".into()]),
            processes: Some(
                rows.iter()
                    .map(|row| row.iter().map(|field| field.to_string()).collect())
                    .collect(),
            ),
        };
        let idle = [
            ["100", "1", "/sbin/docker-init -- sleep infinity"],
            ["120", "100", "sleep infinity"],
            ["130", "0", "/.sandpit-runner/sandpit-runner serve"],
        ];
        assert!(!busy_processes(&top(&idle), 100));
        let mut busy = idle.to_vec();
        busy.push(["140", "130", "python3 train.py"]);
        assert!(busy_processes(&top(&busy), 100));
        // A user's own `sleep infinity` is a command.
        let mut sleeper = idle.to_vec();
        sleeper.push(["150", "130", "sleep infinity"]);
        assert!(busy_processes(&top(&sleeper), 100));
        // A shepherd not yet reaped is no command.
        let mut zombie = idle.to_vec();
        zombie.push(["160", "130", "[sandpit-shep] <defunct>"]);
        assert!(!busy_processes(&top(&zombie), 100));
    }

    #[test]
    fn oom_kill_counts() {
        assert_eq!(
            parse_oom_kill_count("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"),
            Some(3)
        );
        assert_eq!(
            parse_oom_kill_count("low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n"),
            Some(1)
        );
        assert_eq!(parse_oom_kill_count("nothing"), None);
    }
}
