//! `sandpit mcp`: the console toolset of pydantic-ai-backend, and a few tools
//! beyond it, served over the Model Context Protocol (stdio or streamable
//! HTTP) on one user's sandbox.
//!
//! The operator binds each client to a user, a runtime and a policy (flags
//! for stdio, the tokens file for HTTP); no tool chooses them. Every client
//! of one user in this process shares that user's [`UserSlot`]: its sandbox
//! handle, its background processes and its edit lock.

pub mod console;
pub mod execute;
pub mod http;
pub mod processes;
pub mod text;
pub mod tools;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData, ServerHandler};
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::activity::{Activity, ActivityFlags, ActivityLog, Source};
use crate::engine::policy::PolicyOverrides;
use crate::engine::sandbox::{Sandbox, UserId};
use crate::sessions::SessionManager;

/// The longest `execute` timeout unless the config says otherwise.
pub const DEFAULT_MAX_TIMEOUT: Duration = Duration::from_secs(600);

/// Who a client is bound to: chosen by the operator, never by a tool.
#[derive(Debug, Clone)]
pub struct Binding {
    pub user: UserId,
    /// `None`: the configured default (or the existing sandbox's).
    pub runtime: Option<String>,
    /// Policy of a sandbox created for this binding.
    pub overrides: PolicyOverrides,
}

/// What all clients of one user share in this process.
#[derive(Default)]
pub struct UserSlot {
    /// The last sandbox handle, checked before each use.
    sandbox: Mutex<Option<Sandbox>>,
    processes: processes::Registry,
    /// Held across an edit's read and write.
    edits: Mutex<()>,
}

/// The server's shared state: sessions, per-user slots, and the token that
/// ends every command when the server stops.
pub struct Hub {
    sessions: SessionManager,
    /// Every tool call is recorded here (source `mcp`).
    activity: ActivityLog,
    users: std::sync::Mutex<HashMap<UserId, Arc<UserSlot>>>,
    shutdown: CancellationToken,
    max_timeout: Duration,
}

impl Hub {
    /// `max_timeout` caps every `execute`; `shutdown` is cancelled to stop
    /// the server, killing in-flight commands and background processes.
    pub fn new(
        sessions: SessionManager,
        activity: ActivityLog,
        max_timeout: Duration,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        Arc::new(Self {
            sessions,
            activity,
            users: std::sync::Mutex::new(HashMap::new()),
            shutdown,
            max_timeout,
        })
    }

    pub fn sessions(&self) -> &SessionManager {
        &self.sessions
    }

    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.shutdown
    }

    fn slot(&self, user: &UserId) -> Arc<UserSlot> {
        self.users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(user.clone())
            .or_default()
            .clone()
    }

    /// A server (one MCP handler) for a client bound to `binding`.
    pub fn server(self: &Arc<Self>, binding: Binding) -> McpServer {
        let slot = self.slot(&binding.user);
        McpServer {
            hub: self.clone(),
            binding: Arc::new(binding),
            slot,
        }
    }

    /// Kills every background process of every user, waiting for them.
    pub async fn stop_processes(&self) {
        let slots: Vec<Arc<UserSlot>> = self
            .users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        for slot in slots {
            slot.processes.stop_all().await;
        }
    }
}

/// What one tool call produced, seen by [`McpServer::dispatch`] for every
/// call.
#[derive(Debug, Clone, Default)]
pub struct ToolOutcome {
    pub text: String,
    /// A mistake the model can fix (`isError`), so clients ask it to retry.
    pub is_error: bool,
    /// The command's status, for tools that run one.
    pub exit_code: Option<i64>,
    /// How the command ended, for tools that run one.
    pub flags: ActivityFlags,
    /// Bytes the command wrote on each stream, kept or not.
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
}

impl ToolOutcome {
    pub fn text(text: String) -> Self {
        Self {
            text,
            ..Default::default()
        }
    }

    pub fn tool_error(text: String) -> Self {
        Self {
            text,
            is_error: true,
            ..Default::default()
        }
    }

    /// A failure of sandpit or the engine rather than of the arguments:
    /// still a tool error, since the model may retry it.
    pub fn failure(err: &anyhow::Error) -> Self {
        Self::tool_error(format!("Error: {err:#}"))
    }

    fn into_result(self) -> CallToolResult {
        let content = vec![ContentBlock::text(self.text)];
        if self.is_error {
            CallToolResult::error(content)
        } else {
            CallToolResult::success(content)
        }
    }
}

/// The MCP handler of one client. Cheap to clone; state lives in the hub.
#[derive(Clone)]
pub struct McpServer {
    hub: Arc<Hub>,
    binding: Arc<Binding>,
    slot: Arc<UserSlot>,
}

fn parse<T: DeserializeOwned>(tool: &str, arguments: JsonObject) -> Result<T, ToolOutcome> {
    serde_json::from_value(serde_json::Value::Object(arguments)).map_err(|err| {
        ToolOutcome::tool_error(format!("Error: invalid arguments for `{tool}`: {err}"))
    })
}

/// A short, one-line account of a call's arguments for logs: long values
/// (file contents, commands) are cut.
pub fn summarize_arguments(arguments: &JsonObject) -> String {
    const MAX_VALUE: usize = 80;
    let parts: Vec<String> = arguments
        .iter()
        .map(|(key, value)| {
            let shown = match value {
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            let mut shown: String = shown
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            if shown.chars().count() > MAX_VALUE {
                shown = shown.chars().take(MAX_VALUE).collect::<String>() + "…";
            }
            format!("{key}={shown}")
        })
        .collect();
    parts.join(" ")
}

impl McpServer {
    pub fn binding(&self) -> &Binding {
        &self.binding
    }

    /// The bound user's running sandbox: the cached handle when it still
    /// runs, else started or created (the sessions manager serialises that
    /// across clients and processes). Each use counts for the idle reaper.
    pub async fn sandbox(&self) -> anyhow::Result<Sandbox> {
        let mut cached = self.slot.sandbox.lock().await;
        if let Some(sandbox) = cached.as_ref()
            && let Ok(details) = sandbox.inspect().await
            && details.info.is_running()
        {
            self.hub.sessions.touch(&self.binding.user)?;
            return Ok(sandbox.clone());
        }
        let sandbox = self
            .hub
            .sessions
            .get_or_create(
                &self.binding.user,
                self.binding.runtime.as_deref(),
                &self.binding.overrides,
                &mut |_| {},
            )
            .await?;
        *cached = Some(sandbox.clone());
        Ok(sandbox)
    }

    /// Runs one tool call. Every call of every tool passes here, once.
    pub async fn dispatch(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let started = Instant::now();
        let name = request.name.to_string();
        let arguments = request.arguments.unwrap_or_default();
        let summary = summarize_arguments(&arguments);
        let outcome = self.run_tool(&name, arguments, &context).await;
        let duration = started.elapsed();
        let mut entry = Activity::new(Source::Mcp, &self.binding.user, &name, &summary)
            .with_duration(duration)
            .with_flags(outcome.flags)
            .with_output_bytes(outcome.stdout_bytes, outcome.stderr_bytes);
        if let Some(code) = outcome.exit_code {
            entry = entry.with_exit_code(code);
        }
        if outcome.is_error {
            entry = entry.with_error(&outcome.text);
        }
        // A failure of the log never fails the call; it only warns.
        self.hub.activity.record_async(entry).await;
        tracing::info!(
            user = %self.binding.user,
            tool = %name,
            arguments = %summary,
            exit_code = ?outcome.exit_code,
            is_error = outcome.is_error,
            flags = ?outcome.flags,
            duration_ms = duration.as_millis() as u64,
            "mcp tool call"
        );
        outcome.into_result()
    }

    async fn run_tool(
        &self,
        name: &str,
        arguments: JsonObject,
        context: &RequestContext<RoleServer>,
    ) -> ToolOutcome {
        match self.try_run_tool(name, arguments, context).await {
            Ok(outcome) | Err(outcome) => outcome,
        }
    }

    /// The cancellation of one call: the client's cancel (or, over HTTP,
    /// its disconnect) or the server stopping. The guard ends the link when
    /// the call is over, so no watcher outlives it.
    fn call_cancel(&self, context: &RequestContext<RoleServer>) -> (CancellationToken, DropGuard) {
        let cancel = self.hub.shutdown.child_token();
        let request = context.ct.clone();
        let linked = cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = request.cancelled() => linked.cancel(),
                _ = linked.cancelled() => {}
            }
        });
        let guard = cancel.clone().drop_guard();
        (cancel, guard)
    }

    async fn try_run_tool(
        &self,
        name: &str,
        arguments: JsonObject,
        context: &RequestContext<RoleServer>,
    ) -> Result<ToolOutcome, ToolOutcome> {
        use tools::*;
        // Arguments first: a malformed call never creates a sandbox.
        let sandbox = || async {
            self.sandbox()
                .await
                .map_err(|err| ToolOutcome::failure(&err))
        };
        Ok(match name {
            "ls" => {
                let params: LsParams = parse(name, arguments)?;
                console::ls(&sandbox().await?, params).await
            }
            "read_file" => {
                let params: ReadFileParams = parse(name, arguments)?;
                console::read_file(&sandbox().await?, params).await
            }
            "write_file" => {
                let params: WriteFileParams = parse(name, arguments)?;
                let sandbox = sandbox().await?;
                let _edits = self.slot.edits.lock().await;
                console::write_file(&sandbox, params).await
            }
            "edit_file" => {
                let params: EditFileParams = parse(name, arguments)?;
                let sandbox = sandbox().await?;
                let _edits = self.slot.edits.lock().await;
                console::edit_file(&sandbox, params).await
            }
            "glob" => {
                let params: GlobParams = parse(name, arguments)?;
                let (cancel, _done) = self.call_cancel(context);
                console::glob(&sandbox().await?, params, cancel).await
            }
            "grep" => {
                let params: GrepParams = parse(name, arguments)?;
                let (cancel, _done) = self.call_cancel(context);
                console::grep(&sandbox().await?, params, cancel).await
            }
            "execute" => {
                let params: ExecuteParams = parse(name, arguments)?;
                let progress = context
                    .meta
                    .get_progress_token()
                    .map(|token| execute::Progress {
                        peer: context.peer.clone(),
                        token,
                    });
                let (cancel, _done) = self.call_cancel(context);
                let sandbox = sandbox().await?;
                execute::execute(&sandbox, params, self.hub.max_timeout, progress, cancel).await
            }
            "process_start" => {
                let params: ProcessStartParams = parse(name, arguments)?;
                let sandbox = sandbox().await?;
                match self
                    .slot
                    .processes
                    .start(&sandbox, params.command, &self.hub.shutdown)
                {
                    Ok(id) => ToolOutcome::text(format!(
                        "Started background process {id}; read its output with process_output(id=\"{id}\")"
                    )),
                    Err(message) => ToolOutcome::tool_error(message),
                }
            }
            "process_output" => {
                let params: ProcessOutputParams = parse(name, arguments)?;
                match self
                    .slot
                    .processes
                    .output(&params.id, params.offset, &params.stream)
                {
                    Ok(text) => ToolOutcome::text(text),
                    Err(message) => ToolOutcome::tool_error(message),
                }
            }
            "process_stop" => {
                let params: ProcessIdParams = parse(name, arguments)?;
                match self.slot.processes.stop(&params.id).await {
                    Ok(text) => ToolOutcome::text(text),
                    Err(message) => ToolOutcome::tool_error(message),
                }
            }
            "process_list" => ToolOutcome::text(self.slot.processes.list()),
            "sandbox_info" => {
                let sandbox = sandbox().await?;
                match sandbox_info(&self.hub.sessions, &sandbox).await {
                    Ok(text) => ToolOutcome::text(text),
                    Err(err) => ToolOutcome::failure(&err),
                }
            }
            other => ToolOutcome::tool_error(format!(
                "Error: no tool `{other}`; the tools are {}",
                tools::definitions()
                    .iter()
                    .map(|tool| tool.name.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        })
    }
}

/// `sandbox_info`: identity, limits and one live stats sample, as JSON.
async fn sandbox_info(sessions: &SessionManager, sandbox: &Sandbox) -> anyhow::Result<String> {
    let details = sandbox.inspect().await?;
    let mut samples = Box::pin(sessions.engine().stats_stream(sandbox.container_name()));
    let live = match tokio::time::timeout(Duration::from_secs(5), samples.next()).await {
        Ok(Some(Ok(sample))) => serde_json::json!({
            "cpu_percent": (sample.cpu_percent * 10.0).round() / 10.0,
            "memory_used_bytes": sample.memory_used,
            "memory_limit_bytes": sample.memory_limit,
            "pids": sample.pids,
        }),
        Ok(Some(Err(err))) => serde_json::json!({ "error": format!("{err:#}") }),
        Ok(None) | Err(_) => serde_json::json!({ "error": "no stats sample within 5 s" }),
    };
    let policy = &details.policy;
    let info = serde_json::json!({
        "user": details.info.user,
        "runtime": details.info.runtime,
        "image": details.info.image,
        "state": details.info.state,
        "work_dir": details.work_dir,
        "limits": {
            "memory": policy.memory.to_string(),
            "cpus": policy.cpus,
            "pids_limit": policy.pids_limit,
            "tmp_size": policy.tmp_size.to_string(),
            "open_files": policy.nofile,
            "read_only_root": policy.read_only,
        },
        "network": policy.network,
        "live": live,
    });
    Ok(serde_json::to_string_pretty(&info)?)
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("sandpit", env!("CARGO_PKG_VERSION")))
            .with_instructions(format!(
                "Console tools (ls, read_file, write_file, edit_file, glob, grep, execute) \
                 working in the sandbox of user `{}`; paths are relative to its workspace.",
                self.binding.user
            ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools::definitions()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        Ok(self.dispatch(request, context).await.into())
    }

    fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        tools::definitions()
            .into_iter()
            .find(|tool| tool.name == name)
    }
}

/// Serves one client on stdin/stdout until it disconnects or `shutdown`
/// is cancelled; background processes end with it.
pub async fn serve_stdio(hub: Arc<Hub>, binding: Binding) -> anyhow::Result<()> {
    use rmcp::ServiceExt as _;
    let server = hub.server(binding);
    let running = server
        .serve_with_ct(rmcp::transport::stdio(), hub.shutdown.child_token())
        .await
        .map_err(|err| anyhow::anyhow!("the MCP client's handshake failed: {err}"))?;
    let ended = running.waiting().await;
    hub.shutdown.cancel();
    hub.stop_processes().await;
    ended
        .map(drop)
        .map_err(|err| anyhow::anyhow!("the MCP session ended badly: {err}"))
}
