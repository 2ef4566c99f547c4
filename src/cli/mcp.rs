//! `sandpit mcp`: serve the console toolset over MCP, on stdio for one
//! client or over streamable HTTP for many.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::bail;
use tokio_util::sync::CancellationToken;

use crate::engine::policy::PolicyOverrides;
use crate::engine::sandbox::UserId;
use crate::mcp::http::{HttpOptions, load_tokens};
use crate::mcp::{Binding, DEFAULT_MAX_TIMEOUT, Hub};

use super::Context;
use super::build::build_progress;

pub struct McpOptions {
    pub user: Option<UserId>,
    pub runtime: Option<String>,
    pub policy: PolicyOverrides,
    pub listen: Option<SocketAddr>,
    pub tokens: Option<PathBuf>,
}

pub async fn mcp(context: &Context, options: McpOptions) -> anyhow::Result<i32> {
    let max_timeout = context
        .config
        .mcp
        .max_timeout
        .map_or(DEFAULT_MAX_TIMEOUT, |d| d.0);
    if max_timeout.is_zero() {
        bail!("mcp.max_timeout must be above zero");
    }
    let shutdown = CancellationToken::new();
    crate::mcp::http::cancel_on_signals(shutdown.clone());
    match options.listen {
        None => {
            let Some(user) = options.user else {
                bail!("sandpit mcp over stdio needs --user USER (or --listen ADDR for HTTP)");
            };
            if options.tokens.is_some() {
                bail!("--tokens goes with --listen: stdio serves the one --user");
            }
            let sessions = context.sessions().await?;
            // Made before the first request, so no tool call waits on an
            // image build; the build log goes to stderr, never to the
            // protocol on stdout.
            sessions
                .get_or_create(
                    &user,
                    options.runtime.as_deref(),
                    &options.policy,
                    &mut build_progress(),
                )
                .await?;
            let hub = Hub::new(sessions, context.cli_activity_log()?, max_timeout, shutdown);
            let binding = Binding {
                user,
                runtime: options.runtime,
                overrides: options.policy,
            };
            crate::mcp::serve_stdio(hub, binding).await?;
            Ok(0)
        }
        Some(listen) => {
            let tokens = options.tokens.as_deref().map(load_tokens).transpose()?;
            if tokens.is_some() && (options.user.is_some() || options.runtime.is_some()) {
                bail!(
                    "with --tokens each token names its user and runtime; drop --user and --runtime"
                );
            }
            if tokens.is_some()
                && options.policy != crate::engine::policy::PolicyOverrides::default()
            {
                bail!(
                    "with --tokens, policy flags (--memory, --disk, …) are not applied: put them in each token's `sandbox` table or in the config's [sandbox]"
                );
            }
            let open_binding = options.user.map(|user| Binding {
                user,
                runtime: options.runtime.clone(),
                overrides: options.policy.clone(),
            });
            let http = HttpOptions {
                listen,
                tokens,
                open_binding,
            };
            crate::mcp::http::check_options(&http)?;
            let sessions = context.sessions().await?;
            // Images are built now, not in a client's first call: sandboxes
            // themselves are made on a token's first use, so a rejected
            // request creates nothing.
            let mut runtimes: Vec<String> = match &http.tokens {
                Some(tokens) => tokens
                    .iter()
                    .map(|t| {
                        t.runtime
                            .clone()
                            .unwrap_or_else(|| sessions.config().default_runtime.clone())
                    })
                    .collect(),
                None => vec![
                    options
                        .runtime
                        .clone()
                        .unwrap_or_else(|| sessions.config().default_runtime.clone()),
                ],
            };
            runtimes.sort();
            runtimes.dedup();
            for name in &runtimes {
                let runtime = sessions.runtimes().require(name)?.clone();
                sessions
                    .engine()
                    .build_runtime(&runtime, &sessions.config().build, &mut build_progress())
                    .await?;
            }
            let hub = Hub::new(sessions, context.cli_activity_log()?, max_timeout, shutdown);
            crate::mcp::http::serve(hub, http, |address| {
                eprintln!(
                    "sandpit mcp: listening on http://{address}{}",
                    crate::mcp::http::MCP_PATH
                );
            })
            .await?;
            Ok(0)
        }
    }
}
