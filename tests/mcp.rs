//! `sandpit mcp` driven as a child process through rmcp's client, against
//! the real engine: every tool's results and errors, confinement,
//! cancellation killing the process tree, progress, the timeout clamp, and
//! HTTP with a good token, a wrong one and none.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientRequest, ProgressNotificationParam, Request,
};
use rmcp::service::{
    NotificationContext, PeerRequestOptions, RoleClient, RunningService, ServerSink,
};
use rmcp::transport::{ConfigureCommandExt as _, TokioChildProcess};
use rmcp::{ClientHandler, ServiceExt as _};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};

use common::{Cleanup, test_user};

/// Collects progress notifications.
#[derive(Clone, Default)]
struct Client {
    progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl ClientHandler for Client {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(params);
    }
}

/// A config file, workspace root and the environment `sandpit mcp` runs in.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        std::fs::create_dir_all(dir.path().join("ws")).unwrap();
        Self { dir }
    }

    fn command(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_sandpit"));
        command
            .arg("--config")
            .arg(self.dir.path().join("config.toml"))
            .arg("--workspace-root")
            .arg(self.dir.path().join("ws"))
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg"));
        if let Some(ca) = common::build_options().ca_file {
            command.env(sandpit::config::CA_FILE_ENV, ca);
        }
        command
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

async fn stdio_client(
    setup: &Setup,
    user: &str,
    extra: &[&str],
) -> RunningService<RoleClient, Client> {
    let command = setup.command().configure(|cmd| {
        cmd.args(["mcp", "--user", user]).args(extra);
    });
    let (transport, _stderr) = TokioChildProcess::builder(command)
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn sandpit mcp");
    tokio::time::timeout(Duration::from_secs(600), Client::default().serve(transport))
        .await
        .expect("sandpit mcp did not finish the handshake within 10 minutes (image build?)")
        .expect("MCP handshake")
}

async fn call(peer: &ServerSink, tool: &str, arguments: Value) -> CallToolResult {
    let Value::Object(arguments) = arguments else {
        panic!("arguments must be an object")
    };
    tokio::time::timeout(
        Duration::from_secs(120),
        peer.call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(arguments)),
    )
    .await
    .unwrap_or_else(|_| panic!("{tool} did not answer within 120 s"))
    .unwrap_or_else(|err| panic!("{tool} failed at the protocol level: {err}"))
}

fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|text| text.text.clone()))
        .collect::<Vec<_>>()
        .join("")
}

/// The text of a successful call.
async fn ok(peer: &ServerSink, tool: &str, arguments: Value) -> String {
    let result = call(peer, tool, arguments.clone()).await;
    let text = text_of(&result);
    assert_ne!(
        result.is_error,
        Some(true),
        "{tool} {arguments}: tool error: {text}"
    );
    text
}

/// The text of a call that must be a tool error (`isError`).
async fn tool_error(peer: &ServerSink, tool: &str, arguments: Value) -> String {
    let result = call(peer, tool, arguments.clone()).await;
    let text = text_of(&result);
    assert_eq!(
        result.is_error,
        Some(true),
        "{tool} {arguments}: expected a tool error, got: {text}"
    );
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn console_tools_over_stdio() {
    let user = test_user("mcp-console");
    let _cleanup = Cleanup(vec![user.container_name()]);
    let setup = Setup::new("");
    let client = stdio_client(&setup, user.as_str(), &[]).await;
    let peer = client.peer().clone();

    let tools = peer.list_all_tools().await.unwrap();
    for name in [
        "ls",
        "read_file",
        "write_file",
        "edit_file",
        "glob",
        "grep",
        "execute",
    ] {
        let tool = tools
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no {name}"));
        let read_only = matches!(name, "ls" | "read_file" | "glob" | "grep");
        let annotations = tool.annotations.clone().unwrap();
        assert_eq!(annotations.read_only_hint, Some(read_only), "{name}");
        assert_eq!(annotations.destructive_hint, Some(!read_only), "{name}");
    }

    // write_file, read_file
    assert_eq!(
        ok(
            &peer,
            "write_file",
            json!({"path": "hello.py", "content": "x = 1\nprint('hello', x)\nx = 1\n"})
        )
        .await,
        "Wrote 3 lines to hello.py"
    );
    assert_eq!(
        ok(
            &peer,
            "write_file",
            json!({"path": "sub/deep/b.py", "content": "print('b')\n"})
        )
        .await,
        "Wrote 1 lines to sub/deep/b.py"
    );
    assert_eq!(
        ok(&peer, "read_file", json!({"path": "hello.py"})).await,
        "     1\tx = 1\n     2\tprint('hello', x)\n     3\tx = 1"
    );
    assert_eq!(
        ok(
            &peer,
            "read_file",
            json!({"path": "hello.py", "offset": 1, "limit": 1})
        )
        .await,
        "     2\tprint('hello', x)\n\n... (1 more lines)"
    );
    assert_eq!(
        tool_error(&peer, "read_file", json!({"path": "hello.py", "offset": 3})).await,
        "Error: Offset 3 exceeds file length (3 lines)"
    );
    assert_eq!(
        tool_error(&peer, "read_file", json!({"path": "nope.py"})).await,
        "Error: File 'nope.py' not found"
    );
    let missing_arg = tool_error(&peer, "read_file", json!({})).await;
    assert!(missing_arg.contains("path"), "{missing_arg}");

    // edit_file: ambiguous, absent, missing file, then a good one
    assert_eq!(
        tool_error(
            &peer,
            "edit_file",
            json!({"path": "hello.py", "old_string": "x = 1", "new_string": "x = 2"})
        )
        .await,
        "Error: String 'x = 1' found 2 times. Use replace_all=True to replace all, or provide more context."
    );
    assert_eq!(
        tool_error(
            &peer,
            "edit_file",
            json!({"path": "hello.py", "old_string": "zzz", "new_string": "y"})
        )
        .await,
        "Error: String 'zzz' not found in file"
    );
    assert_eq!(
        tool_error(
            &peer,
            "edit_file",
            json!({"path": "gone.py", "old_string": "a", "new_string": "b"})
        )
        .await,
        "Error: File 'gone.py' not found"
    );
    assert_eq!(
        ok(&peer, "edit_file", json!({"path": "hello.py", "old_string": "x = 1", "new_string": "x = 2", "replace_all": true})).await,
        "Edited hello.py: replaced 2 occurrence(s)"
    );

    // ls
    let listing = ok(&peer, "ls", json!({})).await;
    assert_eq!(listing, "Contents of .:\n  sub/\n  hello.py (30 bytes)");
    assert_eq!(
        ok(&peer, "ls", json!({"path": "missing"})).await,
        "Directory 'missing' is empty or does not exist"
    );

    // glob
    assert_eq!(
        ok(&peer, "glob", json!({"pattern": "*.py"})).await,
        "Found 2 file(s) matching '*.py':\n  hello.py\n  sub/deep/b.py"
    );
    assert_eq!(
        ok(&peer, "glob", json!({"pattern": "**/*.py", "path": "sub"})).await,
        "Found 1 file(s) matching '**/*.py':\n  sub/deep/b.py"
    );
    assert_eq!(
        ok(&peer, "glob", json!({"pattern": "*.rs"})).await,
        "No files matching '*.rs' in ."
    );

    // grep, all three modes, hidden files skipped by default
    ok(
        &peer,
        "write_file",
        json!({"path": ".hidden/h.py", "content": "print('hidden')\n"}),
    )
    .await;
    assert_eq!(
        ok(&peer, "grep", json!({"pattern": "print"})).await,
        "Files containing 'print':\n  ./hello.py\n  ./sub/deep/b.py"
    );
    // Content comes in grep's (directory) order, as the reference's does.
    let content = ok(
        &peer,
        "grep",
        json!({"pattern": "print", "output_mode": "content"}),
    )
    .await;
    let mut found: Vec<&str> = content.lines().collect();
    assert_eq!(found.remove(0), "Matches for 'print':");
    found.sort();
    assert_eq!(
        found,
        [
            "  ./hello.py:2: print('hello', x)",
            "  ./sub/deep/b.py:1: print('b')"
        ]
    );
    assert_eq!(
        ok(
            &peer,
            "grep",
            json!({"pattern": "print", "output_mode": "count", "ignore_hidden": false})
        )
        .await,
        "Found 3 match(es) for 'print'"
    );
    assert_eq!(
        ok(
            &peer,
            "grep",
            json!({"pattern": "print", "glob_pattern": "b.py", "path": "sub"})
        )
        .await,
        "Files containing 'print':\n  sub/deep/b.py"
    );
    assert_eq!(
        ok(&peer, "grep", json!({"pattern": "nomatch_xyz"})).await,
        "No matches for 'nomatch_xyz'"
    );
    let bad_mode = tool_error(
        &peer,
        "grep",
        json!({"pattern": "x", "output_mode": "lines"}),
    )
    .await;
    assert!(
        bad_mode.contains("output_mode") || bad_mode.contains("lines"),
        "{bad_mode}"
    );

    // execute
    assert_eq!(
        ok(
            &peer,
            "execute",
            json!({"command": "echo out; echo err >&2"})
        )
        .await,
        "out\nerr\n"
    );
    assert_eq!(
        ok(&peer, "execute", json!({"command": "echo no; exit 3"})).await,
        "Command failed (exit code 3):\nno\n"
    );
    assert_eq!(
        ok(&peer, "execute", json!({"command": "python3 hello.py"})).await,
        "hello 2\n"
    );
    let timed_out = ok(
        &peer,
        "execute",
        json!({"command": "echo started; sleep 30", "timeout": 1}),
    )
    .await;
    assert_eq!(
        timed_out,
        "Command failed (exit code 124):\nError: Command timed out\nstarted"
    );
    let big = ok(
        &peer,
        "execute",
        json!({"command": "head -c 150000 /dev/zero | tr '\\0' x"}),
    )
    .await;
    assert!(
        big.ends_with("x\n\n... (output truncated)"),
        "{}",
        &big[big.len() - 40..]
    );
    assert_eq!(big.len(), 100_000 + "\n\n... (output truncated)".len());

    // Confinement: `..`, absolute paths elsewhere, and symlinks out.
    for path in ["../x", "/etc/passwd", "sub/../../x"] {
        let refused = tool_error(&peer, "read_file", json!({"path": path})).await;
        assert!(refused.contains("refused"), "{path}: {refused}");
        let refused = tool_error(&peer, "write_file", json!({"path": path, "content": "x"})).await;
        assert!(refused.contains("refused"), "{path}: {refused}");
    }
    ok(
        &peer,
        "execute",
        json!({"command": "ln -s /etc/passwd leak && ln -s /etc linkdir && ln -s / root"}),
    )
    .await;
    // Links out of the workspace are listed, but nothing of their target.
    let listing = ok(&peer, "ls", json!({})).await;
    let lines: Vec<&str> = listing.lines().collect();
    for bare in ["  leak", "  linkdir", "  root"] {
        assert!(lines.contains(&bare), "{bare:?} not listed bare: {listing}");
    }
    let refused = tool_error(&peer, "read_file", json!({"path": "leak"})).await;
    assert!(refused.contains("refused"), "{refused}");
    let refused = tool_error(
        &peer,
        "edit_file",
        json!({"path": "linkdir/passwd", "old_string": "root", "new_string": "x"}),
    )
    .await;
    assert!(refused.contains("refused"), "{refused}");
    for tool in ["ls", "glob", "grep"] {
        let arguments = match tool {
            "ls" => json!({"path": "linkdir"}),
            "glob" => json!({"pattern": "*", "path": "linkdir"}),
            _ => json!({"pattern": "root", "path": "linkdir"}),
        };
        let refused = tool_error(&peer, tool, arguments).await;
        assert!(refused.contains("refused"), "{tool}: {refused}");
    }
    // A search from the workspace never follows a link out of it.
    assert_eq!(
        ok(&peer, "grep", json!({"pattern": "root:x:0"})).await,
        "No matches for 'root:x:0'"
    );
    let everything = ok(&peer, "glob", json!({"pattern": "**/passwd"})).await;
    assert_eq!(everything, "No files matching '**/passwd' in .");
    let root_listing = tool_error(&peer, "ls", json!({"path": "/"})).await;
    assert!(root_listing.contains("refused"), "{root_listing}");

    // Background processes.
    let started = ok(
        &peer,
        "process_start",
        json!({"command": "echo ready; echo oops >&2; sleep 300"}),
    )
    .await;
    assert!(started.contains("p1"), "{started}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let output = ok(&peer, "process_output", json!({"id": "p1"})).await;
        if output.ends_with("ready\n") {
            assert!(
                output.starts_with("Process p1: running\nstdout bytes 0..6 (next offset 6)"),
                "{output}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "process p1 never printed `ready`: {output}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stderr = ok(
        &peer,
        "process_output",
        json!({"id": "p1", "stream": "stderr"}),
    )
    .await;
    assert!(stderr.ends_with("oops\n"), "{stderr}");
    let from_end = ok(&peer, "process_output", json!({"id": "p1", "offset": 6})).await;
    assert!(from_end.ends_with("(next offset 6)\n"), "{from_end}");
    let list = ok(&peer, "process_list", json!({})).await;
    assert!(
        list.contains("p1  running") && list.contains("sleep 300"),
        "{list}"
    );
    let stopped = ok(&peer, "process_stop", json!({"id": "p1"})).await;
    assert!(stopped.contains("stopped"), "{stopped}");
    assert_eq!(
        ok(&peer, "process_list", json!({})).await,
        "No background processes"
    );
    tool_error(&peer, "process_output", json!({"id": "p1"})).await;
    let ps = ok(
        &peer,
        "execute",
        json!({"command": "for d in /proc/[0-9]*; do tr '\\0' ' ' < $d/cmdline; echo; done"}),
    )
    .await;
    assert!(
        !ps.contains("sleep 300"),
        "the stopped process lives on: {ps}"
    );

    // sandbox_info
    let info: Value = serde_json::from_str(&ok(&peer, "sandbox_info", json!({})).await).unwrap();
    assert_eq!(info["runtime"], "python-minimal");
    assert_eq!(info["network"], "none");
    assert_eq!(info["limits"]["pids_limit"], 256);
    assert!(info["live"]["pids"].as_u64().is_some(), "{info}");

    let unknown = tool_error(&peer, "rm_rf", json!({})).await;
    assert!(unknown.contains("no tool `rm_rf`"), "{unknown}");
    client.cancel().await.unwrap();
}

/// Command lines of the processes in a user's sandbox.
async fn processes_of(user: &sandpit::engine::sandbox::UserId) -> Vec<String> {
    let engine = common::engine().await;
    let sandbox = engine
        .find_sandbox(user)
        .await
        .unwrap()
        .expect("sandbox exists");
    common::process_list(&sandbox).await
}

/// Waits until no process in the sandbox has `marker` in its command line.
async fn wait_gone(user: &sandpit::engine::sandbox::UserId, marker: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let left: Vec<String> = processes_of(user)
            .await
            .into_iter()
            .filter(|p| p.contains(marker))
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes with `{marker}` still run after {within:?}: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_running(user: &sandpit::engine::sandbox::UserId, marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !processes_of(user).await.iter().any(|p| p.contains(marker)) {
        assert!(
            Instant::now() < deadline,
            "no process with `{marker}` started within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn execute_streams_progress_is_cancelled_and_clamped() {
    let user = test_user("mcp-exec");
    let _cleanup = Cleanup(vec![user.container_name()]);
    let setup = Setup::new("[mcp]\nmax_timeout = \"3s\"\n");
    let client = stdio_client(&setup, user.as_str(), &[]).await;
    let peer = client.peer().clone();

    // Progress: output arrives as notifications while the command runs.
    let request = |command: &str, timeout: i64| {
        let Value::Object(arguments) = json!({"command": command, "timeout": timeout}) else {
            unreachable!()
        };
        ClientRequest::CallToolRequest(Request::new(
            CallToolRequestParams::new("execute").with_arguments(arguments),
        ))
    };
    let handle = peer
        .send_cancellable_request(
            request("for i in 1 2 3; do echo line$i; sleep 0.3; done", 30),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    let token = handle.progress_token.clone();
    let response = tokio::time::timeout(Duration::from_secs(60), handle.await_response())
        .await
        .expect("execute answered within 60 s")
        .unwrap();
    let rmcp::model::ServerResult::CallToolResult(result) = response else {
        panic!("not a tool result: {response:?}")
    };
    assert_eq!(text_of(&result), "line1\nline2\nline3\n");
    let progress = client.service().progress.lock().unwrap().clone();
    let ours: Vec<&ProgressNotificationParam> = progress
        .iter()
        .filter(|p| p.progress_token == token)
        .collect();
    let streamed: String = ours.iter().filter_map(|p| p.message.clone()).collect();
    assert_eq!(streamed, "line1\nline2\nline3\n", "progress: {ours:?}");
    assert!(
        ours.len() >= 2,
        "output came in one piece, not streamed: {ours:?}"
    );
    assert!(
        ours.windows(2).all(|w| w[0].progress < w[1].progress),
        "progress must grow: {ours:?}"
    );

    // Cancelling the request kills the whole tree, background children too.
    let handle = peer
        .send_cancellable_request(
            request("sleep 1001 & sleep 1002 & sleep 1003; wait", 60),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    wait_running(&user, "sleep 1003").await;
    let started = Instant::now();
    handle.cancel(Some("test".to_string())).await.unwrap();
    wait_gone(&user, "sleep 100", Duration::from_secs(20)).await;
    assert!(started.elapsed() < Duration::from_secs(20));

    // The timeout asked for is held to the operator's maximum (3 s here).
    let started = Instant::now();
    let clamped = ok(
        &peer,
        "execute",
        json!({"command": "echo begun; sleep 60", "timeout": 600}),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(
        clamped,
        "Command failed (exit code 124):\nError: Command timed out\nbegun"
    );
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(20),
        "took {took:?}"
    );
    wait_gone(&user, "sleep 60", Duration::from_secs(10)).await;
    let bad = tool_error(&peer, "execute", json!({"command": "true", "timeout": 0})).await;
    assert!(bad.contains("positive"), "{bad}");
    client.cancel().await.unwrap();
}

/// A raw HTTP POST; returns the status code and the body.
async fn raw_post(address: &str, authorization: Option<&str>) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#;
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(30),
        stream.read_to_string(&mut response),
    )
    .await
    .expect("HTTP answer within 30 s")
    .unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"));
    (status, response)
}

struct HttpServer {
    child: tokio::process::Child,
    address: String,
}

async fn http_server(setup: &Setup, args: &[&str]) -> HttpServer {
    let mut child = setup
        .command()
        .args(["mcp", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let address = tokio::time::timeout(Duration::from_secs(600), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            eprintln!("sandpit mcp: {line}");
            if let Some(url) = line.strip_prefix("sandpit mcp: listening on http://") {
                return url.trim_end_matches("/mcp").to_string();
            }
        }
        panic!("sandpit mcp exited before listening")
    })
    .await
    .expect("sandpit mcp listens within 10 minutes");
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("sandpit mcp: {line}");
        }
    });
    HttpServer { child, address }
}

fn write_tokens(path: &Path, text: &str, mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let file = path.join("tokens.toml");
    std::fs::write(&file, text).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
    file
}

#[tokio::test(flavor = "multi_thread")]
async fn http_tokens_and_sigterm() {
    let alice = test_user("mcp-http-a");
    let bob = test_user("mcp-http-b");
    let _cleanup = Cleanup(vec![alice.container_name(), bob.container_name()]);
    let setup = Setup::new("");
    let good = "alice-token-0123456789abcdef";
    let tokens_text = format!(
        "[[token]]\ntoken = \"{good}\"\nuser = \"{alice}\"\n\n[[token]]\ntoken = \"bob-token-0123456789abcdef\"\nuser = \"{bob}\"\nsandbox = {{ memory = \"512m\" }}\n"
    );

    // A tokens file others can read is refused before anything listens.
    let open = write_tokens(setup.path(), &tokens_text, 0o644);
    let output = setup
        .command()
        .args(["mcp", "--listen", "127.0.0.1:0", "--tokens"])
        .arg(&open)
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("chmod 600"));
    // So is listening beyond loopback without tokens.
    let output = setup
        .command()
        .args(["mcp", "--listen", "0.0.0.0:0", "--user", alice.as_str()])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("without a tokens file"));

    let tokens = write_tokens(setup.path(), &tokens_text, 0o600);
    let mut server = http_server(&setup, &["--tokens", tokens.to_str().unwrap()]).await;
    let engine = common::engine().await;

    // No token and a wrong token (bob's with a typo): 401, and bob gets no sandbox.
    let (status, _) = raw_post(&server.address, None).await;
    assert_eq!(status, 401);
    let (status, body) = raw_post(&server.address, Some("Bearer bob-token-0123456789abcdeF")).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = raw_post(&server.address, Some("Basic Ym9iOmJvYg==")).await;
    assert_eq!(status, 401);
    assert!(
        engine.find_sandbox(&bob).await.unwrap().is_none(),
        "a rejected request created a sandbox"
    );
    assert!(
        engine.find_sandbox(&alice).await.unwrap().is_none(),
        "sandboxes are made on first use"
    );

    // The good token works as alice.
    let config =
        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
            format!("http://{}/mcp", server.address),
        )
        .auth_header(good);
    let transport = rmcp::transport::StreamableHttpClientTransport::from_config(config);
    let client = Client::default()
        .serve(transport)
        .await
        .expect("HTTP handshake");
    let peer = client.peer().clone();
    assert_eq!(
        ok(
            &peer,
            "write_file",
            json!({"path": "via_http.py", "content": "print('over http')\n"})
        )
        .await,
        "Wrote 1 lines to via_http.py"
    );
    assert_eq!(
        ok(&peer, "execute", json!({"command": "python3 via_http.py"})).await,
        "over http\n"
    );
    assert!(engine.find_sandbox(&alice).await.unwrap().is_some());
    assert!(engine.find_sandbox(&bob).await.unwrap().is_none());
    assert!(
        setup
            .path()
            .join("ws")
            .join(alice.as_str())
            .join("via_http.py")
            .is_file()
    );

    // Two clients of one user share its one sandbox, at the same time.
    let second = Client::default()
        .serve(rmcp::transport::StreamableHttpClientTransport::from_config(
            rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
                format!("http://{}/mcp", server.address),
            )
            .auth_header(good),
        ))
        .await
        .expect("second HTTP handshake");
    let other = second.peer().clone();
    // Each waits (up to 20 s) for the other's file: both run at once.
    let (a, b) = tokio::join!(
        call(
            &peer,
            "execute",
            json!({"command": "for i in $(seq 200); do [ -e b.txt ] && break; sleep 0.1; done; echo from-a > a.txt"})
        ),
        call(
            &other,
            "execute",
            json!({"command": "echo from-b > b.txt; for i in $(seq 200); do [ -e a.txt ] && break; sleep 0.1; done; cat a.txt"})
        ),
    );
    assert_eq!(a.is_error, Some(false));
    assert_eq!(
        text_of(&b),
        "from-a\n",
        "the second client did not see the first's file"
    );
    let sandboxes: Vec<_> = engine
        .list_sandboxes()
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.user == alice.as_str())
        .collect();
    assert_eq!(sandboxes.len(), 1, "one sandbox for alice: {sandboxes:?}");
    drop(second);

    // SIGTERM: in-flight commands and background processes die with the server.
    ok(&peer, "process_start", json!({"command": "sleep 2001"})).await;
    let in_flight = {
        let peer = peer.clone();
        tokio::spawn(async move {
            call(
                &peer,
                "execute",
                json!({"command": "sleep 2002", "timeout": 300}),
            )
            .await
        })
    };
    wait_running(&alice, "sleep 2002").await;
    wait_running(&alice, "sleep 2001").await;
    let pid = server.child.id().expect("server runs");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(30), server.child.wait())
        .await
        .expect("sandpit mcp exits within 30 s of SIGTERM")
        .unwrap();
    assert!(exit.success(), "sandpit mcp exited with {exit}");
    wait_gone(&alice, "sleep 200", Duration::from_secs(10)).await;
    in_flight.abort();
    drop(client);
}
