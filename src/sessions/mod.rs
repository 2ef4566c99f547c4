//! Sessions: one sandbox and one persistent workspace folder per user.
//!
//! The engine is the source of truth: sandboxes are found by name and labels,
//! so every sandpit process (CLI or dashboard) sees the same sessions.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use tokio::sync::Mutex;

use crate::engine::Engine;
use crate::engine::images::{BuildEvent, BuildOptions};
use crate::engine::policy::{PolicyOverrides, SandboxPolicy};
use crate::engine::runtimes::RuntimeSet;
use crate::engine::sandbox::{Sandbox, SandboxSpec, UserId};

/// How sessions are made.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub workspace_root: PathBuf,
    pub default_runtime: String,
    /// Policy for all sandboxes (the config file's `[sandbox]`).
    pub policy: PolicyOverrides,
    pub build: BuildOptions,
}

/// Gives each user their sandbox, creating it on first use.
pub struct SessionManager {
    engine: Engine,
    runtimes: RuntimeSet,
    config: SessionConfig,
    /// One lock per user, so concurrent calls never create two sandboxes.
    creating: Mutex<HashMap<UserId, Arc<Mutex<()>>>>,
}

impl SessionManager {
    pub fn new(engine: Engine, runtimes: RuntimeSet, config: SessionConfig) -> Self {
        Self {
            engine,
            runtimes,
            config,
            creating: Mutex::new(HashMap::new()),
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

    /// The user's running sandbox, started or created as needed. `runtime`
    /// defaults to the configured default; `overrides` loosen or tighten the
    /// policy of a sandbox being created.
    pub async fn get_or_create(
        &self,
        user: &UserId,
        runtime: Option<&str>,
        overrides: &PolicyOverrides,
        on_build: &mut (dyn FnMut(BuildEvent) + Send),
    ) -> anyhow::Result<Sandbox> {
        let lock = self
            .creating
            .lock()
            .await
            .entry(user.clone())
            .or_default()
            .clone();
        let _guard = lock.lock().await;

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
            if !details.info.is_running() {
                sandbox.start().await?;
            }
            return Ok(sandbox);
        }

        let runtime_name = runtime.unwrap_or(&self.config.default_runtime);
        let runtime = self.runtimes.require(runtime_name)?.clone();
        let policy = SandboxPolicy::resolve([&self.config.policy, &runtime.sandbox, overrides])
            .map_err(|msg| anyhow::anyhow!("sandbox policy for `{user}`: {msg}"))?;
        let image = self
            .engine
            .build_runtime(&runtime, &self.config.build, on_build)
            .await
            .with_context(|| format!("cannot prepare the image of runtime `{}`", runtime.name))?;
        let spec = SandboxSpec {
            user: user.clone(),
            workspace: self.workspace_of(user),
            runtime,
            image,
            policy,
        };
        match self.engine.create_sandbox(&spec).await {
            Ok(sandbox) => Ok(sandbox),
            // Another sandpit process created it meanwhile: use that one.
            Err(err) => match self.engine.find_sandbox(user).await {
                Ok(Some(sandbox)) => {
                    sandbox.start().await?;
                    Ok(sandbox)
                }
                _ => Err(err),
            },
        }
    }

    /// The user's sandbox if it exists, without creating one.
    pub async fn get(&self, user: &UserId) -> anyhow::Result<Sandbox> {
        self.engine
            .find_sandbox(user)
            .await?
            .ok_or_else(|| anyhow::anyhow!("user `{user}` has no sandbox"))
    }
}
