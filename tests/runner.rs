//! The runner transport against the real engine: its volume, the choice of
//! transport, its faults and the fallback to the engine's exec, background
//! processes, and a client killed mid-command.

mod common;

use std::time::Duration;

use common::{process_list, sandbox, sh};
use sandpit::engine::exec::ExecRequest;
use sandpit::engine::runner::volume;

fn runner_expected() -> bool {
    !common::engine_transport_forced()
}

#[tokio::test]
async fn a_new_sandbox_carries_the_runner_read_only() {
    let (sandbox, _root) = sandbox("rvol").await;
    let result = sh(
        &sandbox,
        &format!(
            "stat -c '%a %s' {path} && (echo x > {dir}/probe) 2>&1; true",
            path = volume::BINARY_PATH,
            dir = volume::MOUNT_POINT
        ),
    )
    .await;
    let text = result.stdout_text();
    let size = sandpit::engine::runner::binary::RUNNER_BINARY.len();
    assert!(
        text.starts_with(&format!("555 {size}\n")),
        "the runner binary is not whole and read-only-executable: {text:?}"
    );
    assert!(
        text.contains("Read-only file system"),
        "the runner's volume is writable from the sandbox: {text:?}"
    );
    let details = sandbox.inspect().await.unwrap();
    let expected = if runner_expected() {
        "runner"
    } else {
        "engine"
    };
    assert_eq!(details.transport.name, expected, "{:?}", details.transport);
}

#[tokio::test]
async fn a_sandbox_without_the_runner_volume_uses_the_engine_exec() {
    let engine = common::engine().await;
    let image = common::python_image(&engine).await;
    let user = common::test_user("rnone");
    let root = common::TestRoot::new(user.container_name());
    let spec = sandpit::engine::sandbox::SandboxSpec {
        user: user.clone(),
        runtime: common::builtin("python-minimal"),
        image,
        workspace: root.path().join("ws"),
        policy: sandpit::engine::policy::SandboxPolicy::resolve([&Default::default()]).unwrap(),
    };
    engine
        .create_sandbox_without_runner(&spec)
        .await
        .expect("create sandbox");
    // Found again as any later sandpit process would.
    let sandbox = engine.find_sandbox(&user).await.unwrap().unwrap();
    let details = sandbox.inspect().await.unwrap();
    assert_eq!(details.transport.name, "engine");
    assert!(
        details
            .transport
            .reason
            .as_deref()
            .is_some_and(|reason| reason.contains("no runner volume")),
        "{:?}",
        details.transport
    );
    let result = sh(&sandbox, "echo hi; test -e /.sandpit-runner || echo none").await;
    assert_eq!(result.exit_code, Some(0));
    assert_eq!(result.stdout_text(), "hi\nnone\n");
}

#[tokio::test]
async fn filling_the_volume_again_and_at_once_is_harmless() {
    let engine = common::engine().await;
    let image = common::python_image(&engine).await;
    // A binary of its own, so this test's volume is new and its own.
    let binary = format!("test binary {}", std::process::id()).into_bytes();
    let name = volume::volume_name(&binary);
    let _cleanup = VolumeCleanup(name.clone());
    let fills = (0..3).map(|_| engine.ensure_runner_volume(&binary, &image));
    let results = tokio::time::timeout(
        Duration::from_secs(120),
        futures_util::future::join_all(fills),
    )
    .await
    .expect("three concurrent fills did not end within 120 s");
    for result in results {
        assert_eq!(result.expect("a fill failed"), name);
    }
    let again = engine.ensure_runner_volume(&binary, &image).await.unwrap();
    assert_eq!(again, name);
    // No helper container is left behind.
    let left = std::process::Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            "label=sandpit.kind=runner-helper",
            "--filter",
        ])
        .arg(format!(
            "label=sandpit.hash={}",
            name.trim_start_matches(volume::VOLUME_PREFIX)
        ))
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "helpers left: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

struct VolumeCleanup(String);

impl Drop for VolumeCleanup {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["volume", "rm", "-f", &self.0])
            .output();
    }
}

#[tokio::test]
async fn commands_run_whatever_the_runner_does() {
    let (sandbox, _root) = sandbox("rbasic").await;
    for _ in 0..3 {
        let result = sandbox
            .exec_collect(ExecRequest::argv([
                "sh",
                "-c",
                "echo out; echo err >&2; exit 3",
            ]))
            .await
            .unwrap();
        assert_eq!(result.exit_code, Some(3));
        assert_eq!(result.stdout_text(), "out\n");
        assert_eq!(result.stderr_text(), "err\n");
    }
    let listed = process_list(&sandbox).await;
    assert!(!listed.is_empty());
}

/// The pids of processes in the sandbox whose command line is exactly
/// `cmdline` (arguments joined by spaces).
async fn pids_of(sandbox: &sandpit::engine::sandbox::Sandbox, cmdline: &str) -> Vec<String> {
    process_list(sandbox)
        .await
        .into_iter()
        .filter_map(|line| {
            let (pid, command) = line.split_once(' ')?;
            (command.trim_end() == cmdline).then(|| pid.to_string())
        })
        .collect()
}

/// Waits until no process runs `cmdline`; returns how long that took, or
/// panics past `limit` naming what survived.
async fn gone_within(
    sandbox: &sandpit::engine::sandbox::Sandbox,
    cmdline: &str,
    limit: Duration,
) -> Duration {
    let started = std::time::Instant::now();
    loop {
        let left = pids_of(sandbox, cmdline).await;
        if left.is_empty() {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "`{cmdline}` still runs {:?} later: pids {left:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until some process runs `cmdline`, within 60 s.
async fn running_within(sandbox: &sandpit::engine::sandbox::Sandbox, cmdline: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while pids_of(sandbox, cmdline).await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "`{cmdline}` did not start within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `sandpit` CLI with its own workspace root, for one test user.
struct Cli {
    root: tempfile::TempDir,
    user: String,
}

impl Drop for Cli {
    fn drop(&mut self) {
        common::remove_container_now(&format!("sandpit-{}", self.user));
        common::unmount_under(self.root.path());
    }
}

impl Cli {
    fn new(tag: &str) -> Self {
        Self {
            root: tempfile::tempdir().unwrap(),
            user: common::test_user(tag).to_string(),
        }
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sandpit"));
        command
            .arg("--workspace-root")
            .arg(self.root.path())
            .args(args);
        if let Some(ca) = common::build_options().ca_file {
            command.env(sandpit::config::CA_FILE_ENV, ca);
        }
        command
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        common::output_within(
            &mut self.command(args),
            common::CLI_DEADLINE,
            &format!("sandpit {args:?}"),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "sandpit {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    async fn sandbox(&self) -> sandpit::engine::sandbox::Sandbox {
        let user = sandpit::engine::sandbox::UserId::parse(&self.user).unwrap();
        common::engine()
            .await
            .find_sandbox(&user)
            .await
            .unwrap()
            .expect("the CLI made the sandbox")
    }
}

#[tokio::test]
async fn a_sandpit_exec_killed_mid_run_leaves_no_process_behind() {
    let cli = Cli::new("rkill9");
    cli.ok(&["exec", "--user", &cli.user, "--", "true"]);
    let sandbox = cli.sandbox().await;
    let mut child = cli
        .command(&[
            "exec",
            "--user",
            &cli.user,
            "--timeout",
            "60",
            "--",
            "sh",
            "-c",
            "sleep 777 & sleep 778",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    running_within(&sandbox, "sleep 777").await;
    running_within(&sandbox, "sleep 778").await;
    // SIGKILL: sandpit gets no chance to clean up.
    child.kill().unwrap();
    child.wait().unwrap();
    let took = gone_within(&sandbox, "sleep 778", Duration::from_secs(2)).await;
    gone_within(
        &sandbox,
        "sleep 777",
        Duration::from_secs(2) - took.min(Duration::from_secs(2)),
    )
    .await;
    eprintln!("the command's processes were gone {took:?} after its client was killed");
}

/// Finds the runner serving this test's connection from inside the sandbox
/// and sends it `signal`, then sleeps: the command user code runs.
fn attack_runner(signal: &str) -> String {
    format!(
        r#"for p in /proc/[0-9]*; do case "$(tr '\0' ' ' < $p/cmdline 2>/dev/null)" in "{} serve"*) kill -{signal} ${{p#/proc/}};; esac; done; sleep 779"#,
        volume::BINARY_PATH
    )
}

async fn a_runner_attacked_with(signal: &str, tag: &str) {
    let (sandbox, _root) = sandbox(tag).await;
    assert_eq!(sandbox.transport_info().name, "runner");
    // The runner is up before it is attacked.
    assert_eq!(sh(&sandbox, "true").await.exit_code, Some(0));
    let started = std::time::Instant::now();
    let attacked = tokio::time::timeout(
        Duration::from_secs(60),
        sandbox.exec_collect(ExecRequest::shell(attack_runner(signal))),
    )
    .await
    .expect("the command whose runner was attacked hung for 60 s");
    let err = attacked.expect_err("the command in flight must report the runner's failure");
    assert!(
        format!("{err:#}").contains("runner"),
        "the error does not name the runner: {err:#}"
    );
    eprintln!(
        "the command failed {:?} after it started: {err:#}",
        started.elapsed()
    );
    // Its processes were killed.
    gone_within(&sandbox, "sleep 779", Duration::from_secs(10)).await;
    // The next command goes through the engine's exec, the one after
    // through a new runner: both succeed.
    for round in 0..3 {
        let result = tokio::time::timeout(
            Duration::from_secs(60),
            sandbox.exec_collect(ExecRequest::shell("echo ok")),
        )
        .await
        .unwrap_or_else(|_| panic!("command {round} after the fault hung for 60 s"))
        .unwrap_or_else(|err| panic!("command {round} after the fault failed: {err:#}"));
        assert_eq!(result.stdout_text(), "ok\n", "round {round}");
    }
    // No stopped runner is left holding its exec.
    let stopped = sh(
        &sandbox,
        &format!(
            r#"for p in /proc/[0-9]*; do s=$(cut -d' ' -f3 $p/stat 2>/dev/null); case "$(tr '\0' ' ' < $p/cmdline 2>/dev/null)" in "{} serve"*) [ "$s" = T ] && echo stopped;; esac; done; true"#,
            volume::BINARY_PATH
        ),
    )
    .await;
    assert_eq!(stopped.stdout_text(), "", "a stopped runner was left");
}

#[tokio::test]
async fn a_runner_killed_by_user_code_fails_the_command_in_flight_only() {
    a_runner_attacked_with("KILL", "rsigkill").await;
}

#[tokio::test]
async fn a_runner_stopped_by_user_code_fails_the_command_in_flight_only() {
    a_runner_attacked_with("STOP", "rsigstop").await;
}

#[tokio::test]
async fn background_processes_outlive_their_client_and_stop_with_their_tree() {
    let cli = Cli::new("rbg");
    let id = cli.ok(&[
        "exec",
        "--user",
        &cli.user,
        "--background",
        "--",
        "sh",
        "-c",
        "echo started; echo warn >&2; (sleep 781 &); sleep 780",
    ]);
    let id = id.trim().to_string();
    let number: u64 = id
        .parse()
        .unwrap_or_else(|_| panic!("exec --background printed {id:?}"));
    // The client that started it has exited; it still runs.
    let sandbox = cli.sandbox().await;
    running_within(&sandbox, "sleep 780").await;
    running_within(&sandbox, "sleep 781").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let logs = cli.run(&["logs", &cli.user, &id]);
        assert!(
            logs.status.success(),
            "{}",
            String::from_utf8_lossy(&logs.stderr)
        );
        if String::from_utf8_lossy(&logs.stdout) == "started\n" {
            assert!(String::from_utf8_lossy(&logs.stderr).contains("warn\n"));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "logs did not show the output within 30 s: {:?}",
            String::from_utf8_lossy(&logs.stdout)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ps = cli.ok(&["ps", &cli.user]);
    let row = ps
        .lines()
        .find(|line| line.split_whitespace().next() == Some(id.as_str()))
        .unwrap_or_else(|| panic!("ps does not list {id}: {ps}"));
    assert!(row.contains("running"), "{row}");
    let listed = sandbox.list_background().await.unwrap();
    assert!(
        listed
            .iter()
            .any(|bg| bg.id.to_string() == id && bg.running)
    );

    cli.ok(&["kill", &cli.user, &id]);
    gone_within(&sandbox, "sleep 780", Duration::from_secs(5)).await;
    gone_within(&sandbox, "sleep 781", Duration::from_secs(5)).await;
    let ps = cli.ok(&["ps", "--json", &cli.user]);
    let list: serde_json::Value = serde_json::from_str(&ps).unwrap();
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|bg| bg["id"].as_u64() == Some(number))
        .unwrap_or_else(|| panic!("ps --json lost {id}: {ps}"));
    assert_eq!(entry["running"], false, "{entry}");
}

#[tokio::test]
async fn background_processes_need_the_runner_and_say_so() {
    let engine = common::engine().await;
    let image = common::python_image(&engine).await;
    let user = common::test_user("rbgnone");
    let root = common::TestRoot::new(user.container_name());
    let spec = sandpit::engine::sandbox::SandboxSpec {
        user: user.clone(),
        runtime: common::builtin("python-minimal"),
        image,
        workspace: root.path().join("ws"),
        policy: sandpit::engine::policy::SandboxPolicy::resolve([&Default::default()]).unwrap(),
    };
    let sandbox = engine.create_sandbox_without_runner(&spec).await.unwrap();
    let err = sandbox
        .start_background(ExecRequest::argv(["sleep", "1"]))
        .await
        .expect_err("no runner, no background process");
    let text = format!("{err:#}");
    assert!(text.contains("need the in-sandbox runner"), "{text}");
    assert!(text.contains(user.as_str()), "{text}");
}

#[tokio::test]
async fn inspect_names_the_transport_and_the_reaper_ignores_an_idle_runner() {
    let cli = Cli::new("rinspect");
    cli.ok(&["exec", "--user", &cli.user, "--", "true"]);
    let inspect = cli.ok(&["inspect", &cli.user]);
    let line = inspect
        .lines()
        .find(|line| line.starts_with("exec transport"))
        .unwrap_or_else(|| panic!("inspect does not name the transport:\n{inspect}"));
    let json: serde_json::Value =
        serde_json::from_str(&cli.ok(&["inspect", "--json", &cli.user])).unwrap();
    if runner_expected() {
        assert!(line.ends_with(" runner"), "{line}");
        assert_eq!(json["transport"]["name"], "runner");
    } else {
        assert!(line.contains(" engine ("), "{line}");
        assert_eq!(json["transport"]["name"], "engine");
    }

    // This process's runner is up and idle: no command runs.
    let sandbox = cli.sandbox().await;
    assert_eq!(sh(&sandbox, "true").await.exit_code, Some(0));
    assert!(
        !sandbox.has_running_exec().await.unwrap(),
        "an idle runner counted as a command"
    );
    let running = {
        let sandbox = sandbox.clone();
        tokio::spawn(async move { sh(&sandbox, "sleep 5").await })
    };
    running_within(&sandbox, "sleep 5").await;
    assert!(
        sandbox.has_running_exec().await.unwrap(),
        "a command through the runner was not counted"
    );
    // Another process's command through its own runner counts too.
    let mut other = cli
        .command(&["exec", "--user", &cli.user, "--", "sleep", "782"])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    running_within(&sandbox, "sleep 782").await;
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("sleep 5 did not end within 30 s")
        .unwrap();
    assert!(
        sandbox.has_running_exec().await.unwrap(),
        "another process's command was not counted"
    );
    other.kill().unwrap();
    other.wait().unwrap();
}

#[tokio::test]
async fn clients_coming_and_going_leave_the_runner_answering() {
    let cli = Cli::new("rchurn");
    cli.ok(&["exec", "--user", &cli.user, "--", "true"]);
    let sandbox = cli.sandbox().await;
    // This process's connection, made before the others come and go.
    assert_eq!(sh(&sandbox, "true").await.exit_code, Some(0));
    for round in 0..30 {
        let output = cli.run(&["files", "--user", &cli.user, "ls"]);
        assert!(
            output.status.success(),
            "ls {round}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let listed = tokio::time::timeout(Duration::from_secs(30), sandbox.list_dir("."))
        .await
        .expect("list_dir hung for 30 s");
    listed.unwrap_or_else(|err| panic!("the first connection stopped working: {err:#}"));
    let runners = sh(
        &sandbox,
        &format!(
            r#"for p in /proc/[0-9]*; do tr '\0' ' ' < $p/cmdline 2>/dev/null; echo; done | grep -c '^{} '"#,
            volume::BINARY_PATH
        ),
    )
    .await
    .stdout_text()
    .trim()
    .parse::<usize>()
    .unwrap();
    assert!(
        runners <= 4,
        "{runners} runner processes are left after 30 clients came and went"
    );
}
