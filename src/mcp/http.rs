//! The streamable-HTTP transport: `POST /mcp`, stateless per request (any
//! instance behind a load balancer can answer any request), bearer tokens
//! mapped to users by a tokens file.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rmcp::transport::StreamableHttpServerConfig;
use rmcp::transport::streamable_http_server::StreamableHttpService;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use tokio_util::sync::CancellationToken;

use super::{Binding, Hub, McpServer};
use crate::engine::policy::PolicyOverrides;
use crate::engine::sandbox::UserId;

/// The path MCP is served at.
/// How long a client may take to send a request's headers.
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
pub const MCP_PATH: &str = "/mcp";

/// One `[[token]]` of the tokens file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// Sent as `Authorization: Bearer <token>`; at least 16 characters.
    pub token: String,
    #[serde(deserialize_with = "user_id")]
    pub user: UserId,
    pub runtime: Option<String>,
    /// Policy of a sandbox created for this token: the keys of `[sandbox]`.
    #[serde(default)]
    pub sandbox: PolicyOverrides,
}

fn user_id<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<UserId, D::Error> {
    let text = String::deserialize(deserializer)?;
    UserId::parse(&text).map_err(serde::de::Error::custom)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    token: Vec<TokenEntry>,
}

/// Shortest token accepted: guessing one must be hopeless.
const MIN_TOKEN_LEN: usize = 16;

/// Reads a tokens file, refusing one that others may read or change, and
/// entries that are short, repeated, or carry a bad policy.
pub fn load_tokens(path: &Path) -> anyhow::Result<Vec<TokenEntry>> {
    use std::os::unix::fs::PermissionsExt as _;
    let metadata = std::fs::metadata(path)
        .with_context(|| format!("cannot read tokens file {}", path.display()))?;
    let mode = metadata.permissions().mode();
    if mode & 0o077 != 0 {
        bail!(
            "tokens file {} is open to group or others (mode {:o}); run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read tokens file {}", path.display()))?;
    let name = path.display().to_string();
    let file: TokensFile = crate::toml_file::Locator::new(&text, &name).parse()?;
    if file.token.is_empty() {
        bail!("tokens file {name} has no [[token]] entry");
    }
    let mut seen = std::collections::HashSet::new();
    for (index, entry) in file.token.iter().enumerate() {
        let which = format!("{name}: token #{} (user `{}`)", index + 1, entry.user);
        if entry.token.chars().count() < MIN_TOKEN_LEN {
            bail!("{which}: the token is shorter than {MIN_TOKEN_LEN} characters");
        }
        if entry
            .token
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            bail!("{which}: the token contains whitespace or a control character");
        }
        if !seen.insert(entry.token.clone()) {
            bail!("{which}: the same token appears twice");
        }
        entry
            .sandbox
            .validate()
            .map_err(|msg| anyhow::anyhow!("{which}: sandbox: {msg}"))?;
    }
    Ok(file.token)
}

/// A token's digest: tokens are compared as digests, so the comparison
/// takes the same time whatever the token's length or where it differs.
fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

/// Equal digests, compared without an early exit.
fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

type Service = StreamableHttpService<McpServer, NeverSessionManager>;

/// Who may call: each token's digest with its service, or one service for
/// everyone (loopback without a tokens file).
enum Access {
    Tokens(Vec<([u8; 32], Arc<Service>)>),
    Open(Arc<Service>),
}

impl Access {
    /// The service for a request's `Authorization` header. Every token is
    /// compared, so the time does not tell which one nearly matched.
    fn service_for(&self, authorization: Option<&[u8]>) -> Option<Arc<Service>> {
        match self {
            Access::Open(service) => Some(service.clone()),
            Access::Tokens(tokens) => {
                let presented = authorization?;
                let token = presented
                    .strip_prefix(b"Bearer ")
                    .or_else(|| presented.strip_prefix(b"bearer "))?;
                let presented = digest(token);
                let mut found = None;
                for (known, service) in tokens {
                    if same_digest(known, &presented) {
                        found = Some(service.clone());
                    }
                }
                found
            }
        }
    }
}

/// How the HTTP transport is set up.
pub struct HttpOptions {
    pub listen: SocketAddr,
    /// `None`: open to anyone who can connect, which is refused beyond
    /// loopback; then `open_binding` is who they work as.
    pub tokens: Option<Vec<TokenEntry>>,
    pub open_binding: Option<Binding>,
}

fn service(hub: &Arc<Hub>, binding: Binding, config: &StreamableHttpServerConfig) -> Arc<Service> {
    let hub = hub.clone();
    Arc::new(StreamableHttpService::new(
        move || Ok(hub.server(binding.clone())),
        Arc::new(NeverSessionManager::default()),
        config.clone(),
    ))
}

fn plain(status: StatusCode, text: &str) -> Response<BoxBody<Bytes, Infallible>> {
    let mut response = Response::new(Full::new(Bytes::from(text.to_string())).boxed());
    *response.status_mut() = status;
    response
}

/// Checks the options before anything listens: beyond loopback, tokens are
/// required.
pub fn check_options(options: &HttpOptions) -> anyhow::Result<()> {
    if options.tokens.is_none() && !options.listen.ip().is_loopback() {
        bail!(
            "refusing to listen on {} without a tokens file: anyone who can reach it could run code; \
             pass --tokens FILE, or listen on 127.0.0.1",
            options.listen
        );
    }
    if options.tokens.is_none() && options.open_binding.is_none() {
        bail!("without --tokens, --user names the user every HTTP client works as");
    }
    Ok(())
}

/// Serves until `hub`'s shutdown token is cancelled (SIGTERM): then stops
/// accepting, cancels in-flight requests (killing their commands' trees),
/// stops background processes, and returns. `ready` receives the bound
/// address once listening.
pub async fn serve(
    hub: Arc<Hub>,
    options: HttpOptions,
    ready: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    check_options(&options)?;
    let shutdown = hub.shutdown_token().clone();
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_sse_keep_alive(None)
        .with_cancellation_token(shutdown.child_token());
    let access = match options.tokens {
        Some(tokens) => {
            // Bearer tokens protect every request; the Host check, meant for
            // unauthenticated loopback servers, would only stop a proxy.
            config = config.disable_allowed_hosts();
            Access::Tokens(
                tokens
                    .into_iter()
                    .map(|entry| {
                        let binding = Binding {
                            user: entry.user,
                            runtime: entry.runtime,
                            overrides: entry.sandbox,
                        };
                        (
                            digest(entry.token.as_bytes()),
                            service(&hub, binding, &config),
                        )
                    })
                    .collect(),
            )
        }
        None => {
            let binding = options
                .open_binding
                .ok_or_else(|| anyhow::anyhow!("no user to serve"))?;
            Access::Open(service(&hub, binding, &config))
        }
    };
    let access = Arc::new(access);
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.listen))?;
    ready(listener.local_addr()?);
    let connections = tokio_util::task::TaskTracker::new();
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!("accept failed: {err}");
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let access = access.clone();
        let stopping = shutdown.clone();
        connections.spawn(async move {
            let handler = hyper::service::service_fn(move |request: Request<Incoming>| {
                let access = access.clone();
                async move { Ok::<_, Infallible>(handle(&access, request).await) }
            });
            // A client that never finishes its headers is dropped, so idle
            // connections cannot pile up (the timeout needs a timer).
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), handler);
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(err) = result {
                        tracing::debug!("HTTP connection ended: {err}");
                    }
                }
                _ = stopping.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), connection).await;
                }
            }
        });
    }
    drop(listener);
    connections.close();
    hub.stop_processes().await;
    if tokio::time::timeout(std::time::Duration::from_secs(15), connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("some HTTP connections did not close within 15 s");
    }
    Ok(())
}

async fn handle(
    access: &Access,
    request: Request<Incoming>,
) -> Response<BoxBody<Bytes, Infallible>> {
    if request.uri().path() != MCP_PATH {
        return plain(StatusCode::NOT_FOUND, "not found: MCP is served at /mcp\n");
    }
    let authorization = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .map(|value| value.as_bytes().to_vec());
    match access.service_for(authorization.as_deref()) {
        Some(service) => service.handle(request).await,
        None => {
            let mut response = plain(
                StatusCode::UNAUTHORIZED,
                "unauthorized: send Authorization: Bearer <token> with a token from the tokens file\n",
            );
            response.headers_mut().insert(
                hyper::header::WWW_AUTHENTICATE,
                hyper::header::HeaderValue::from_static("Bearer"),
            );
            response
        }
    }
}

/// Waits for SIGTERM, SIGINT or SIGHUP, then cancels `shutdown`.
pub fn cancel_on_signals(shutdown: CancellationToken) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut terminate), Ok(mut interrupt), Ok(mut hangup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) else {
            tracing::warn!("cannot watch for signals; stop the server by closing its input");
            return;
        };
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
            _ = hangup.recv() => {}
            _ = shutdown.cancelled() => return,
        }
        tracing::info!("signal received: stopping");
        shutdown.cancel();
    });
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn file(text: &str, mode: u32) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        file
    }

    const GOOD: &str = "[[token]]\ntoken = \"0123456789abcdef-alice\"\nuser = \"alice\"\nruntime = \"python-minimal\"\nsandbox = { memory = \"2g\" }\n";

    #[test]
    fn tokens_file_is_read() {
        let tokens = load_tokens(file(GOOD, 0o600).path()).unwrap();
        assert_eq!(tokens.len(), 1);
        assert_eq!(tokens[0].user.as_str(), "alice");
        assert_eq!(tokens[0].sandbox.memory.unwrap().0, 2 << 30);
    }

    #[test]
    fn tokens_file_open_to_others_is_refused() {
        let err = load_tokens(file(GOOD, 0o644).path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("chmod 600"), "{err}");
        assert!(load_tokens(file(GOOD, 0o640).path()).is_err());
    }

    #[test]
    fn bad_entries_are_named() {
        let short = "[[token]]\ntoken = \"short\"\nuser = \"bob\"\n";
        let err = load_tokens(file(short, 0o600).path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("user `bob`") && err.contains("shorter"),
            "{err}"
        );
        let unknown = "[[token]]\ntoken = \"0123456789abcdef\"\nuser = \"bob\"\nsandbox = { memroy = \"1g\" }\n";
        assert!(load_tokens(file(unknown, 0o600).path()).is_err());
        let bad_user = "[[token]]\ntoken = \"0123456789abcdef\"\nuser = \"../x\"\n";
        assert!(load_tokens(file(bad_user, 0o600).path()).is_err());
    }

    #[test]
    fn non_loopback_without_tokens_is_refused() {
        let options = HttpOptions {
            listen: "0.0.0.0:7070".parse().unwrap(),
            tokens: None,
            open_binding: Some(Binding {
                user: UserId::parse("alice").unwrap(),
                runtime: None,
                overrides: PolicyOverrides::default(),
            }),
        };
        let err = check_options(&options).unwrap_err().to_string();
        assert!(err.contains("without a tokens file"), "{err}");
        let loopback = HttpOptions {
            listen: "127.0.0.1:7070".parse().unwrap(),
            ..options
        };
        assert!(check_options(&loopback).is_ok());
    }

    #[test]
    fn digests_compare() {
        assert!(same_digest(&digest(b"abc"), &digest(b"abc")));
        assert!(!same_digest(&digest(b"abc"), &digest(b"abd")));
    }
}
