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
use serde::Serialize;
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

use super::exec::{
    EngineExec, ExecEvent, ExecRequest, ExecResult, ExecTarget, ExecTransport, SIGKILL_EXIT_CODE,
};
use super::policy::SandboxPolicy;
use super::runtimes::Runtime;
use super::{Engine, is_not_found, labels};

pub const CONTAINER_PREFIX: &str = "sandpit-";

/// Label keys on sandbox containers, beside [`labels::MANAGED`] and
/// [`labels::RUNTIME`].
pub mod sandbox_labels {
    pub const USER: &str = "sandpit.user";
    pub const WORKSPACE: &str = "sandpit.workspace";
    pub const CREATED: &str = "sandpit.created";
    pub const KIND: &str = "sandpit.kind";
    pub const KIND_SANDBOX: &str = "sandbox";
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
    pub async fn create_sandbox(&self, spec: &SandboxSpec) -> anyhow::Result<Sandbox> {
        let name = spec.user.container_name();
        if let Some(runtime) = &spec.policy.oci_runtime {
            self.check_oci_runtime(runtime, &spec.policy.network, spec.policy.pids_limit)
                .await
                .with_context(|| format!("cannot create the sandbox of `{}`", spec.user))?;
        }
        let (uid, gid) = spec.policy.uid_gid();
        prepare_workspace(spec.workspace.clone(), uid, gid).await?;
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
            host_config: Some(spec.policy.host_config(&workspace, &spec.runtime.work_dir)),
            ..Default::default()
        };
        self.docker()
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
        Ok(Sandbox {
            engine: self.clone(),
            user: spec.user.clone(),
            target: ExecTarget {
                container: name,
                user: spec.policy.user.clone(),
                work_dir: spec.runtime.work_dir.clone(),
            },
            transport: Arc::new(EngineExec::new(self.clone())),
            // A new cgroup has seen no OOM kill.
            oom_kills_seen: Arc::new(Mutex::new(Some(0))),
            oci_runtime: spec.policy.oci_runtime.clone(),
        })
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
        let config = inspect.config.unwrap_or_default();
        let managed = config
            .labels
            .as_ref()
            .and_then(|labels| labels.get(labels::MANAGED))
            .is_some_and(|value| value == "true");
        if !managed {
            bail!("container {name} exists but is not a sandpit sandbox; remove or rename it");
        }
        Ok(Some(Sandbox {
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
        }))
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
async fn prepare_workspace(path: PathBuf, uid: u32, gid: u32) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || super::workspace::prepare(&path, uid, gid))
        .await
        .context("preparing the workspace folder stopped")?
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

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Replaces how commands reach this sandbox.
    pub fn with_transport(mut self, transport: Arc<dyn ExecTransport>) -> Self {
        self.transport = transport;
        self
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

    pub async fn start(&self) -> anyhow::Result<()> {
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
    /// `delete_workspace` is set.
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
            },
            name: self.target.container.clone(),
            started_at: state.started_at.unwrap_or_default(),
            oom_killed: state.oom_killed.unwrap_or(false),
            policy: SandboxPolicy::from_host_config(
                config.user.as_deref().unwrap_or_default(),
                &host_config,
                &work_dir,
            ),
            work_dir,
        })
    }

    /// Whether any command is running in the sandbox right now, from any
    /// sandpit process.
    pub async fn has_running_exec(&self) -> anyhow::Result<bool> {
        let inspect = self.inspect_container().await?;
        for exec_id in inspect.exec_ids.unwrap_or_default() {
            if let Ok(exec) = self.engine.docker().inspect_exec(&exec_id).await
                && exec.running == Some(true)
            {
                return Ok(true);
            }
        }
        Ok(false)
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
        let started = std::time::Instant::now();
        let run = self.transport.run(&self.target, request, events, cancel);
        let mut result = if self.oci_runtime.as_deref() == Some(super::oci::GVISOR) {
            // Under gVisor the memory limit kills the whole sandbox, and the
            // engine then never ends the exec: watch the container too.
            tokio::select! {
                result = run => result?,
                died = self.container_died() => self.after_death(died, started).await?,
            }
        } else {
            run.await?
        };
        if result.sandbox_restarted {
            self.forget_oom_baseline().await;
        }
        if result.exit_code == Some(SIGKILL_EXIT_CODE)
            && !result.timed_out
            && !result.truncated
            && !result.cancelled
            && let Some(now) = self.read_oom_kills().await
        {
            let mut seen = self.oom_kills_seen.lock().await;
            result.oom_killed = seen.is_none_or(|before| now > before);
            *seen = Some(now);
        }
        Ok(result)
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
            if let Ok(inspect) = self
                .engine
                .docker()
                .inspect_container(&self.target.container, None)
                .await
            {
                let state = inspect.state.unwrap_or_default();
                if state.running == Some(false) {
                    return state.oom_killed.unwrap_or(false);
                }
            }
        }
    }

    /// The result of a command whose sandbox died under it: it is started
    /// again (its workspace untouched) and the command reported killed.
    async fn after_death(
        &self,
        oom_killed: bool,
        started: std::time::Instant,
    ) -> anyhow::Result<ExecResult> {
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
