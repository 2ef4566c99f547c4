//! `sandpit mcp` latency against the real engine: p50 and p95 of an MCP
//! `execute` of `true` over stdio and over streamable HTTP, beside the
//! library call it wraps (`Sandbox::exec` of the same shell command), all
//! in one run on one sandbox.
//!
//! `cargo bench --bench mcp` (needs a running engine; builds python-minimal
//! when missing).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rmcp::ServiceExt as _;
use rmcp::model::CallToolRequestParams;
use rmcp::service::ServerSink;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{ConfigureCommandExt as _, StreamableHttpClientTransport, TokioChildProcess};
use sandpit::engine::Engine;
use sandpit::engine::exec::ExecRequest;
use sandpit::engine::runtimes::RuntimeSet;
use sandpit::engine::sandbox::UserId;
use sandpit::sessions::{SessionConfig, SessionManager};
use tokio::io::AsyncBufReadExt as _;

const RUNS: usize = 50;
const WARMUP: usize = 3;

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index]
}

fn report(name: &str, mut samples: Vec<Duration>, baseline: Option<Duration>) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (p50, p95) = (
        percentile(&mut samples, 0.5),
        percentile(&mut samples, 0.95),
    );
    let ratio = baseline.map_or(String::new(), |base| {
        format!("  ({:.2}x the library p50)", ms(p50) / ms(base))
    });
    println!(
        "{name:<38} p50 {:>7.1} ms  p95 {:>7.1} ms{ratio}",
        ms(p50),
        ms(p95)
    );
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bench())
}

fn ca_file() -> Option<PathBuf> {
    std::env::var_os(sandpit::config::CA_FILE_ENV)
        .map(PathBuf::from)
        .or_else(|| {
            Some(PathBuf::from("/etc/ssl/certs/ca-certificates.crt")).filter(|p| p.is_file())
        })
}

fn sandpit_command(root: &std::path::Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_sandpit"));
    command
        .arg("--config")
        .arg(root.join("config.toml"))
        .arg("--workspace-root")
        .arg(root.join("ws"));
    if let Some(ca) = ca_file() {
        command.env(sandpit::config::CA_FILE_ENV, ca);
    }
    command
}

async fn execute_true(peer: &ServerSink) -> anyhow::Result<Duration> {
    let serde_json::Value::Object(arguments) = serde_json::json!({"command": "true"}) else {
        unreachable!()
    };
    let started = Instant::now();
    let result = peer
        .call_tool(CallToolRequestParams::new("execute").with_arguments(arguments))
        .await?;
    let elapsed = started.elapsed();
    anyhow::ensure!(result.is_error != Some(true), "execute failed: {result:?}");
    Ok(elapsed)
}

async fn time_mcp(peer: &ServerSink) -> anyhow::Result<Vec<Duration>> {
    for _ in 0..WARMUP {
        execute_true(peer).await?;
    }
    let mut samples = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        samples.push(execute_true(peer).await?);
    }
    Ok(samples)
}

async fn bench() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    std::fs::write(root.path().join("config.toml"), "")?;
    std::fs::create_dir_all(root.path().join("ws"))?;
    let user =
        UserId::parse(&format!("bench-mcp-{}", std::process::id())).map_err(anyhow::Error::msg)?;
    let container = user.container_name();
    let result = run(root.path(), &user).await;
    let _ = std::process::Command::new("docker")
        .args(["rm", "-f", &container])
        .output();
    result
}

async fn run(root: &std::path::Path, user: &UserId) -> anyhow::Result<()> {
    // The library call `execute` wraps, on the same sandbox.
    let mut config = SessionConfig::new(root.join("ws"));
    config.build.ca_file = ca_file();
    let sessions = SessionManager::new(Engine::connect().await?, RuntimeSet::builtin()?, config);
    let sandbox = sessions
        .get_or_create(user, None, &Default::default(), &mut |_| {})
        .await?;
    let request = || {
        ExecRequest::shell("true")
            .timeout(Duration::from_secs(120))
            .output_cap(sandpit::mcp::execute::CAPTURE_CAP)
    };
    for _ in 0..WARMUP {
        sandbox.exec_collect(request()).await?;
    }
    let mut library = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        let result = sandbox.exec_collect(request()).await?;
        library.push(started.elapsed());
        anyhow::ensure!(result.exit_code == Some(0), "true failed: {result:?}");
    }

    // stdio
    let command = sandpit_command(root).configure(|cmd| {
        cmd.args(["mcp", "--user", user.as_str()]);
    });
    let (transport, _) = TokioChildProcess::builder(command)
        .stderr(std::process::Stdio::inherit())
        .spawn()?;
    let client = ().serve(transport).await?;
    let stdio = time_mcp(client.peer()).await?;
    client.cancel().await?;

    // streamable HTTP, with a bearer token
    let token = "bench-token-0123456789abcdef";
    let tokens = root.join("tokens.toml");
    std::fs::write(
        &tokens,
        format!("[[token]]\ntoken = \"{token}\"\nuser = \"{user}\"\n"),
    )?;
    std::fs::set_permissions(&tokens, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    let mut server = sandpit_command(root)
        .args(["mcp", "--listen", "127.0.0.1:0", "--tokens"])
        .arg(&tokens)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stderr = server
        .stderr
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stderr"))?;
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let url = tokio::time::timeout(Duration::from_secs(600), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(url) = line.strip_prefix("sandpit mcp: listening on ") {
                return Ok(url.to_string());
            }
        }
        anyhow::bail!("sandpit mcp exited before listening")
    })
    .await??;
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url).auth_header(token),
    );
    let client = ().serve(transport).await?;
    let http = time_mcp(client.peer()).await?;
    drop(client);
    server.start_kill()?;

    let mut sorted = library.clone();
    let library_p50 = percentile(&mut sorted, 0.5);
    println!("{RUNS} runs each of `true`, one sandbox (python-minimal):");
    report("library Sandbox::exec", library, None);
    report("MCP execute over stdio", stdio, Some(library_p50));
    report("MCP execute over streamable HTTP", http, Some(library_p50));
    Ok(())
}
