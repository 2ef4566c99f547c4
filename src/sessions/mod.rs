//! Sessions: one sandbox and one persistent workspace folder per user.
//!
//! The engine is the source of truth: sandboxes are found by name and labels,
//! so every sandpit process (CLI or dashboard) sees the same sessions, and a
//! sandpit started later picks up the ones an earlier one left running.

pub mod isolation;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use futures_util::Stream;
use tokio::sync::Mutex;

use crate::engine::Engine;
use crate::engine::events::SandboxEvent;
use crate::engine::images::{BuildEvent, BuildOptions};
use crate::engine::policy::{PolicyOverrides, SandboxPolicy};
use crate::engine::runtimes::RuntimeSet;
use crate::engine::sandbox::{
    Sandbox, SandboxExists, SandboxInfo, SandboxSpec, UserId, workspace_usage,
};

pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

use crate::engine::quota::{self, DiskUsage};

/// Folder under the workspace root for sandpit's own bookkeeping (use
/// records, quota images, the activity log). User ids cannot start with `.`,
/// so it never collides with a workspace.
pub(crate) use crate::engine::quota::STATE_DIR;

/// How sessions are made.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub workspace_root: PathBuf,
    pub default_runtime: String,
    /// Policy for all sandboxes (the config file's `[sandbox]`).
    pub policy: PolicyOverrides,
    pub build: BuildOptions,
    /// Creating a session past this many is refused.
    pub max_sessions: Option<usize>,
    /// A running session unused this long is stopped; zero means never.
    pub idle_timeout: Duration,
}

impl SessionConfig {
    pub fn new(workspace_root: PathBuf) -> Self {
        Self {
            workspace_root,
            default_runtime: crate::config::DEFAULT_RUNTIME.to_string(),
            policy: PolicyOverrides::default(),
            build: BuildOptions::default(),
            max_sessions: None,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

/// A session as listed: the sandbox's facts plus when it was last used.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Session {
    #[serde(flatten)]
    pub sandbox: SandboxInfo,
    /// Unix seconds.
    pub last_used: i64,
    /// The workspace's usage against its limit; `None` when its folder is
    /// not on this host.
    pub disk: Option<DiskUsage>,
}

/// Gives each user their sandbox, creating it on first use.
pub struct SessionManager {
    engine: Engine,
    runtimes: RuntimeSet,
    config: SessionConfig,
    /// One lock per user, so concurrent calls never create two sandboxes.
    user_locks: Mutex<HashMap<UserId, Arc<Mutex<()>>>>,
    /// Held while counting and creating, so `max_sessions` holds under
    /// concurrent calls for different users.
    creating: Mutex<()>,
}

impl SessionManager {
    pub fn new(engine: Engine, runtimes: RuntimeSet, config: SessionConfig) -> Self {
        Self {
            engine,
            runtimes,
            config,
            user_locks: Mutex::new(HashMap::new()),
            creating: Mutex::new(()),
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn runtimes(&self) -> &RuntimeSet {
        &self.runtimes
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The host folder of a user's workspace.
    pub fn workspace_of(&self, user: &UserId) -> PathBuf {
        self.config.workspace_root.join(user.as_str())
    }

    fn last_used_file(&self, user: &UserId) -> PathBuf {
        self.config
            .workspace_root
            .join(STATE_DIR)
            .join("last-used")
            .join(user.as_str())
    }

    /// Records that the user's session is in use now. Every sandpit process
    /// shares the record, so the reaper in one sees use through another.
    pub fn touch(&self, user: &UserId) -> anyhow::Result<()> {
        let path = self.last_used_file(user);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        file.set_modified(SystemTime::now())
            .with_context(|| format!("cannot record use in {}", path.display()))
    }

    /// When the user's session was last used, in Unix seconds, if recorded.
    pub fn last_used(&self, user: &UserId) -> Option<i64> {
        let modified = std::fs::metadata(self.last_used_file(user))
            .and_then(|m| m.modified())
            .ok()?;
        Some(unix_seconds(modified))
    }

    /// The user's running sandbox, started or created as needed. `runtime`
    /// defaults to the configured default; `overrides` set the policy of a
    /// sandbox being created.
    pub async fn get_or_create(
        &self,
        user: &UserId,
        runtime: Option<&str>,
        overrides: &PolicyOverrides,
        on_build: &mut (dyn FnMut(BuildEvent) + Send),
    ) -> anyhow::Result<Sandbox> {
        let lock = self
            .user_locks
            .lock()
            .await
            .entry(user.clone())
            .or_default()
            .clone();
        let _user_guard = lock.lock().await;

        if let Some(sandbox) = self.engine.find_sandbox(user).await? {
            let details = sandbox.inspect().await?;
            if let Some(wanted) = runtime
                && wanted != details.info.runtime
            {
                bail!(
                    "user `{user}` already has a sandbox with runtime `{}`; remove it (`sandpit rm {user}`) to switch to `{wanted}`",
                    details.info.runtime
                );
            }
            // After a host reboot the workspace image is there but not
            // mounted: mount it again (stopping a running container first,
            // whose view of the folder would be stale).
            let workspace = std::path::Path::new(&details.info.workspace);
            if !details.info.workspace.is_empty() && quota::needs_remount(workspace) {
                sandbox.ensure_workspace_mounted().await?;
            }
            if !details.info.is_running() {
                sandbox.start().await?;
            }
            self.touch(user)?;
            return Ok(sandbox);
        }

        // Everything that can be refused is checked before anything is made.
        let runtime_name = runtime.unwrap_or(&self.config.default_runtime);
        let runtime = self.runtimes.require(runtime_name)?.clone();
        let policy = SandboxPolicy::resolve([&self.config.policy, &runtime.sandbox, overrides])
            .map_err(|msg| anyhow::anyhow!("sandbox policy for `{user}`: {msg}"))?;
        // A workspace sandpit could not hand to the sandbox's uid is refused
        // before a long image build.
        let (uid, gid) = policy.uid_gid();
        crate::engine::workspace::check(&self.workspace_of(user), uid, gid)?;
        quota::check(&self.workspace_of(user), policy.disk.bytes())?;
        let image = self
            .engine
            .build_runtime(&runtime, &self.config.build, on_build)
            .await
            .with_context(|| format!("cannot prepare the image of runtime `{}`", runtime.name))?;

        let _create_guard = self.creating.lock().await;
        if let Some(max) = self.config.max_sessions {
            let existing = self.engine.list_sandboxes().await?;
            if existing.len() >= max {
                bail!(
                    "cannot create a session for `{user}`: max_sessions is {max} and {} sessions exist ({}); remove one with `sandpit rm USER` or raise sessions.max_sessions",
                    existing.len(),
                    existing
                        .iter()
                        .map(|s| s.user.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        let spec = SandboxSpec {
            user: user.clone(),
            workspace: self.workspace_of(user),
            runtime,
            image,
            policy,
        };
        let sandbox = match self.engine.create_sandbox(&spec).await {
            Ok(sandbox) => sandbox,
            // Another sandpit process is creating it right now: use that one
            // once it is there.
            Err(err) if err.is::<SandboxExists>() => match self.wait_for_sandbox(user).await {
                Some(sandbox) => {
                    sandbox.start().await?;
                    sandbox
                }
                None => return Err(err),
            },
            Err(err) => return Err(err),
        };
        self.touch(user)?;
        Ok(sandbox)
    }

    /// The engine reserves a container's name before the container can be
    /// inspected, so a sandbox another process is creating can be briefly
    /// invisible: wait for it with a deadline.
    async fn wait_for_sandbox(&self, user: &UserId) -> Option<Sandbox> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(sandbox)) = self.engine.find_sandbox(user).await {
                return Some(sandbox);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The user's sandbox if it exists, without creating or starting one.
    pub async fn get(&self, user: &UserId) -> anyhow::Result<Sandbox> {
        self.engine
            .find_sandbox(user)
            .await?
            .ok_or_else(|| anyhow::anyhow!("user `{user}` has no sandbox"))
    }

    /// Ends a use of the session: it counts as used until now.
    pub fn release(&self, user: &UserId) -> anyhow::Result<()> {
        self.touch(user)
    }

    /// Starts the user's stopped sandbox; it counts as used from now.
    pub async fn start(&self, user: &UserId) -> anyhow::Result<()> {
        self.get(user).await?.start().await?;
        self.touch(user)
    }

    pub async fn restart(&self, user: &UserId) -> anyhow::Result<()> {
        self.get(user).await?.restart().await?;
        self.touch(user)
    }

    /// Stops the user's sandbox; the workspace stays.
    pub async fn stop(&self, user: &UserId) -> anyhow::Result<()> {
        self.get(user).await?.stop().await
    }

    /// Removes the user's sandbox, and the workspace too when `purge` is set.
    pub async fn destroy(&self, user: &UserId, purge: bool) -> anyhow::Result<()> {
        self.get(user).await?.remove(purge).await?;
        let _ = std::fs::remove_file(self.last_used_file(user));
        Ok(())
    }

    /// Every session on the engine, by user, with its workspace usage.
    pub async fn list(&self) -> anyhow::Result<Vec<Session>> {
        self.list_sessions(true).await
    }

    /// Every session; its workspace measured only when `with_usage` (the
    /// reaper has no use for it, and an unlimited workspace is walked).
    async fn list_sessions(&self, with_usage: bool) -> anyhow::Result<Vec<Session>> {
        let sandboxes = self.engine.list_sandboxes().await?;
        let mut sessions = Vec::with_capacity(sandboxes.len());
        for sandbox in sandboxes {
            let recorded = UserId::parse(&sandbox.user)
                .ok()
                .and_then(|user| self.last_used(&user));
            let last_used = recorded.unwrap_or(sandbox.created).max(sandbox.created);
            let disk = if with_usage {
                workspace_usage(&sandbox, quota::USAGE_WALK_EACH).await
            } else {
                None
            };
            sessions.push(Session {
                sandbox,
                last_used,
                disk,
            });
        }
        Ok(sessions)
    }

    /// Stops every running session unused for longer than the idle timeout,
    /// as of `now`. Workspaces are kept; `get_or_create` brings a stopped
    /// session back. Returns the users whose sessions were stopped.
    ///
    /// Only sessions whose workspace lies under this manager's root are
    /// considered: use is recorded under that root, so sessions of another
    /// root would look idle when they are not.
    pub async fn reap_idle(&self, now: SystemTime) -> anyhow::Result<Vec<UserId>> {
        if self.config.idle_timeout.is_zero() {
            return Ok(Vec::new());
        }
        let now = unix_seconds(now);
        let timeout = i64::try_from(self.config.idle_timeout.as_secs()).unwrap_or(i64::MAX);
        let mut stopped = Vec::new();
        for session in self.list_sessions(false).await? {
            let ours = std::path::Path::new(&session.sandbox.workspace).parent()
                == Some(self.config.workspace_root.as_path());
            if !ours || !session.sandbox.is_running() || now - session.last_used <= timeout {
                continue;
            }
            let Ok(user) = UserId::parse(&session.sandbox.user) else {
                continue;
            };
            // One session's trouble must not stop the reaping of the others.
            let sandbox = match self.get(&user).await {
                Ok(sandbox) => sandbox,
                Err(err) => {
                    tracing::warn!("cannot reap `{user}`: {err:#}");
                    continue;
                }
            };
            // A long command counts as use, whoever started it.
            if sandbox.has_running_exec().await.unwrap_or(true) {
                let _ = self.touch(&user);
                continue;
            }
            match sandbox.stop().await {
                Ok(()) => {
                    tracing::info!("stopped idle session of `{user}`");
                    stopped.push(user);
                }
                Err(err) => tracing::warn!("cannot stop idle session of `{user}`: {err:#}"),
            }
        }
        Ok(stopped)
    }

    /// Live changes to sessions from any sandpit process: created, started,
    /// died, killed for memory, removed.
    pub fn watch(&self) -> impl Stream<Item = anyhow::Result<SandboxEvent>> + Send + 'static {
        self.engine.sandbox_events()
    }
}

fn unix_seconds(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
