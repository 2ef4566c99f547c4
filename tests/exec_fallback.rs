//! The engine-exec transport (the fallback where no runner serves): timeouts
//! kill every process the command started, however it hid, on time; a
//! command outlives a SIGKILLed client by at most its deadline plus the
//! watchdog's grace; a process it may not kill is reported, not hidden.

mod common;

use std::io::BufRead as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sandpit::engine::exec::{EngineExec, ExecRequest, WATCHDOG_GRACE};
use sandpit::engine::sandbox::Sandbox;

/// The sandbox forced onto the engine-exec transport, whatever the default.
async fn engine_exec_sandbox(tag: &str) -> (Sandbox, common::TestRoot) {
    let (sandbox, root) = common::sandbox(tag).await;
    let transport = Arc::new(EngineExec::new(sandbox.engine().clone()));
    (sandbox.with_transport(transport), root)
}

/// Polls the sandbox's process list until none contains `needle`; fails
/// naming `what` at `deadline`. Returns when they were gone, and the list.
async fn gone_by(sandbox: &Sandbox, needle: &str, deadline: Instant, what: &str) -> Instant {
    loop {
        let left = common::process_list(sandbox).await;
        if left.iter().all(|p| !p.contains(needle)) {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "{what}: `{needle}` still running at its deadline: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every way a command can try to leave its tree behind: a forged tag (as
/// `env` and Python's `Popen(env=...)` do), a scrubbed environment after
/// setsid and a double fork, other `SANDPIT_*` variables set by the
/// children themselves, a new process group.
const ESCAPER: &str = r#"env SANDPIT_EXEC_TAG=x sh -c "(sleep 401 &)"
env -i setsid sh -c "(sleep 402 &)"
env SANDPIT_KILLER=1 SANDPIT_EXEC_TAG= SANDPIT_ANY=1 sh -c "(sleep 403 &)"
python3 -c 'import subprocess; subprocess.Popen(["sleep", "404"], env={"SANDPIT_EXEC_TAG": "x"}, start_new_session=True)'
python3 -c 'import os; os.setpgid(0, 0); os.fork() or os.execvp("sleep", ["sleep", "405"])'
echo started
sleep 300"#;

#[tokio::test]
async fn hidden_children_die_on_time_and_nothing_survives() {
    let (sandbox, _root) = engine_exec_sandbox("fb-escape").await;
    let timeout = Duration::from_secs(3);
    let began = Instant::now();
    let result = sandbox
        .exec_collect(ExecRequest::shell(ESCAPER).timeout(timeout))
        .await
        .unwrap();
    let took = began.elapsed();
    assert!(result.timed_out, "{result:?}");
    assert_eq!(result.stdout_text(), "started\n", "{result:?}");
    assert_eq!(result.status_code(), 124);
    assert!(
        result.survivors.is_empty() && !result.kill_unverified,
        "{result:?}"
    );
    assert_eq!(
        result.reason(sandbox.container_name()).unwrap(),
        format!(
            "timed out after {:.1}s; its process tree was killed",
            result.duration.as_secs_f64()
        )
    );
    // On time: the deadline counts from the call, and the kill (an exec of
    // its own) follows within a second.
    assert!(
        took < timeout + Duration::from_secs(1),
        "the timeout returned {took:?} after the call, for a {timeout:?} deadline"
    );
    eprintln!("timed out command returned after {took:?} (timeout {timeout:?})");
    // Checked from inside: only init and the sandbox's main process remain.
    let left = common::process_list(&sandbox).await;
    assert!(
        left.iter().all(|p| !p.contains("sleep 40")),
        "escaped children left after the timeout: {left:?}"
    );
    assert_eq!(left.len(), 2, "{left:?}");
    sandbox.remove(true).await.unwrap();
}

#[tokio::test]
async fn output_and_exit_statuses_pass_the_wrapper_unchanged() {
    let (sandbox, _root) = engine_exec_sandbox("fb-wrap").await;
    let result = sandbox
        .exec_collect(
            ExecRequest::shell("echo out; echo err >&2; cat; exit 3")
                .stdin(b"in\n".to_vec())
                .timeout(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    assert_eq!(result.exit_code, Some(3), "{result:?}");
    assert_eq!(result.stdout_text(), "out\nin\n");
    assert_eq!(
        result.stderr_text(),
        "err\n",
        "the wrapper's line is stripped"
    );
    for (argv, code) in [
        (vec!["no-such-command"], 127),
        (vec!["/etc/passwd"], 126),
        (vec!["sh", "-c", "kill -TERM $$"], 143),
    ] {
        let result = sandbox
            .exec_collect(ExecRequest::argv(argv.clone()))
            .await
            .unwrap();
        assert_eq!(result.exit_code, Some(code), "{argv:?}: {result:?}");
    }
    // A command that ended by itself took its watchdog along, well before
    // its 60 s deadline.
    let until = Instant::now() + Duration::from_secs(10);
    gone_by(
        &sandbox,
        "sandpit-watchdog",
        until,
        "the finished command's watchdog",
    )
    .await;
    sandbox.remove(true).await.unwrap();
}

#[tokio::test]
async fn a_command_whose_client_was_killed_dies_by_its_deadline() {
    if common::under_gvisor() {
        // gVisor sandboxes run without the watchdog (it took the isolation
        // battery over gVisor's pids limit): there the deadline is the
        // client's alone, as `EngineExec::without_watchdog` says.
        eprintln!("skipped under gVisor: its sandboxes have no in-sandbox watchdog");
        return;
    }
    let (sandbox, root) = engine_exec_sandbox("fb-client").await;
    // The CLI finds the sandbox the library made, by user and workspace.
    let workspace_root = root.path().join("cli");
    std::fs::create_dir_all(&workspace_root).unwrap();
    let timeout = Duration::from_secs(3);
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sandpit"));
    command
        .arg("--workspace-root")
        .arg(&workspace_root)
        .args(["exec", "--user", &sandbox.user().to_string(), "--timeout"])
        .arg(timeout.as_secs().to_string())
        .args(["--", "sh", "-c", "echo started; sleep 777"])
        // The runner kills a vanished client's commands at once; this is
        // about the engine exec, where only the in-sandbox watchdog is left.
        .env(sandpit::engine::runner::transport::TRANSPORT_ENV, "engine")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if let Some(ca) = common::build_options().ca_file {
        command.env(sandpit::config::CA_FILE_ENV, ca);
    }
    let spawned = Instant::now();
    let mut child = command.spawn().expect("start sandpit exec");
    let stdout = child.stdout.take().unwrap();
    let (said, heard) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = said.send(line);
    });
    let line = heard.recv_timeout(common::CLI_DEADLINE);
    let started = Instant::now();
    // SIGKILL: the client gets no chance to clean up.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err);
    assert_eq!(
        line.as_deref(),
        Ok("started\n"),
        "sandpit exec did not start the command: {status:?} {err}"
    );
    // The command is still there without its client, until the deadline.
    let left = common::process_list(&sandbox).await;
    assert!(
        left.iter().any(|p| p.contains("sleep 777")),
        "the command should still run right after its client died: {left:?}"
    );
    // The deadline counts from before the spawn; the watchdog kills within
    // its grace after it, and the test allows 2 s in all.
    let deadline = spawned.max(started - Duration::from_millis(1)) + timeout;
    let gone = gone_by(
        &sandbox,
        "sleep 777",
        deadline + Duration::from_secs(2),
        "a command whose client was SIGKILLed",
    )
    .await;
    eprintln!(
        "the orphaned command was gone {:?} after the client saw it start (timeout {timeout:?}, grace {WATCHDOG_GRACE:?})",
        gone - started
    );
    sandbox.remove(true).await.unwrap();
}

#[tokio::test]
async fn a_process_the_killer_may_not_signal_is_reported() {
    let (sandbox, _root) = engine_exec_sandbox("fb-survivor").await;
    let container = sandbox.container_name().to_string();
    let (events, mut received) = tokio::sync::mpsc::channel(8);
    // Stopped by a cancel once the orphan is planted, so a slow engine
    // cannot make the stop come before it.
    let cancel = tokio_util::sync::CancellationToken::new();
    let run = {
        let sandbox = sandbox.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            sandbox
                .exec(
                    ExecRequest::shell("echo started; sleep 300"),
                    Some(events),
                    cancel,
                )
                .await
        })
    };
    let first = tokio::time::timeout(Duration::from_secs(30), received.recv())
        .await
        .expect("output within 30 s")
        .expect("an event");
    assert_eq!(first.data, b"started\n");
    // While it runs, root (a uid the sandbox user may not signal) leaves an
    // orphan of init behind: born during the command, so it may be the
    // command's, and the killer cannot kill it.
    let planted = common::output_within(
        std::process::Command::new("docker").args([
            "exec",
            "-u",
            "0",
            &container,
            "sh",
            "-c",
            // Its stdio is not the planting exec's: an orphan holding an
            // exec's output makes the engine hold every later exec's end in
            // that container for 2 s (measured), the killer's too.
            "(sleep 501 </dev/null >/dev/null 2>&1 & echo $!)",
        ]),
        Duration::from_secs(60),
        "docker exec planting a root orphan",
    );
    let orphan: u32 = String::from_utf8_lossy(&planted.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no pid from the planting exec: {planted:?}"));
    cancel.cancel();
    let cancelled = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the cancelled command ends within 30 s")
        .unwrap()
        .unwrap();
    let took = cancelled.elapsed();
    // A survivor costs the killer a few re-scans, not a wait.
    assert!(
        took < Duration::from_secs(1),
        "the cancel with a survivor took {took:?}"
    );
    eprintln!("cancel with a survivor returned after {took:?}");
    assert!(result.cancelled, "{result:?}");
    assert_eq!(result.survivors, vec![orphan], "{result:?}");
    let reason = result.reason(&container).unwrap();
    assert!(
        reason.contains("1 process that may be its own could not be")
            && reason.contains(&orphan.to_string()),
        "{reason}"
    );
    // The command itself is gone all the same; the orphan is what was said.
    let left = common::process_list(&sandbox).await;
    assert!(left.iter().all(|p| !p.contains("sleep 300")), "{left:?}");
    assert!(
        left.iter()
            .any(|p| p.starts_with(&format!("{orphan} sleep 501"))),
        "{left:?}"
    );
    sandbox.remove(true).await.unwrap();
}

/// The python-minimal image without bash (as in a dash- or busybox-only
/// image), built once per test binary with the docker CLI: no network, one
/// layer that deletes bash.
async fn image_without_bash(engine: &sandpit::engine::Engine) -> String {
    static TAG: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    TAG.get_or_init(|| async {
        let base = common::python_image(engine).await;
        derived_image(
            &base,
            "no-bash",
            "rm -f /bin/bash /usr/bin/bash && ! command -v bash",
        )
    })
    .await
    .clone()
}

/// That image without any shell either (as distroless images are).
async fn image_without_a_shell(engine: &sandpit::engine::Engine) -> String {
    static TAG: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    let base = image_without_bash(engine).await;
    TAG.get_or_init(|| async {
        derived_image(
            &base,
            "no-shell",
            "rm -f /bin/sh /usr/bin/sh /bin/dash /usr/bin/dash",
        )
    })
    .await
    .clone()
}

/// Builds `FROM base` plus one `RUN` as root, tagged
/// `sandpit-test/NAME:<base's tag>`.
fn derived_image(base: &str, name: &str, run: &str) -> String {
    let tag = format!(
        "sandpit-test/{name}:{}",
        base.rsplit(':').next().unwrap_or("x")
    );
    let dockerfile = format!("FROM {base}\nUSER root\nRUN {run}\n");
    let mut build = std::process::Command::new("sh");
    build
        .arg("-c")
        .arg("printf '%s' \"$1\" | docker build -q -t \"$2\" -")
        .arg("sh")
        .arg(&dockerfile)
        .arg(&tag);
    let built = common::output_within(&mut build, Duration::from_secs(300), "docker build");
    assert!(built.status.success(), "{built:?}");
    tag
}

/// A sandbox of `image` on the engine-exec transport; the guard removes it
/// even when the test fails.
async fn sandbox_of(
    engine: &sandpit::engine::Engine,
    tag: &str,
    image: String,
) -> (Sandbox, common::Cleanup, tempfile::TempDir) {
    let user = common::test_user(tag);
    let root = tempfile::tempdir().unwrap();
    let cleanup = common::Cleanup(vec![user.container_name()]);
    let overrides = sandpit::engine::policy::PolicyOverrides {
        oci_runtime: common::test_oci_runtime(),
        ..Default::default()
    };
    let spec = sandpit::engine::sandbox::SandboxSpec {
        user,
        runtime: common::builtin("python-minimal"),
        image,
        workspace: root.path().join("ws"),
        policy: sandpit::engine::policy::SandboxPolicy::resolve([&overrides]).unwrap(),
    };
    let sandbox = engine.create_sandbox(&spec).await.expect("create sandbox");
    let sandbox = sandbox.with_transport(Arc::new(EngineExec::new(engine.clone())));
    (sandbox, cleanup, root)
}

#[tokio::test]
async fn without_a_shell_commands_run_unwrapped_with_their_stdin() {
    let engine = common::engine().await;
    let image = image_without_a_shell(&engine).await;
    let (sandbox, _cleanup, _root) = sandbox_of(&engine, "fb-noshell", image).await;
    // The wrapper cannot start; the command runs as it is, stdin whole.
    let result = sandbox
        .exec_collect(
            ExecRequest::argv([
                "python3",
                "-c",
                "import sys; print(sys.stdin.read().upper())",
            ])
            .stdin(b"whole\n".to_vec())
            .timeout(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    assert_eq!(result.exit_code, Some(0), "{result:?}");
    assert_eq!(result.stdout_text(), "WHOLE\n\n", "{result:?}");
    assert_eq!(result.stderr_text(), "", "{result:?}");
    let missing = sandbox
        .exec_collect(ExecRequest::argv(["no-such-command"]))
        .await
        .unwrap();
    // Unwrapped, the engine's own status and message (Docker 20.10 says
    // 126, with "executable file not found" on stdout).
    assert!(
        matches!(missing.exit_code, Some(126 | 127))
            && missing.stdout_text().contains("no-such-command"),
        "{missing:?}"
    );
    sandbox.remove(true).await.unwrap();
}

#[tokio::test]
async fn without_bash_the_posix_killer_and_watchdog_hold_the_same_line() {
    let engine = common::engine().await;
    let image = image_without_bash(&engine).await;
    let (sandbox, _cleanup, _root) = sandbox_of(&engine, "fb-nobash", image).await;
    assert_ne!(
        common::sh(&sandbox, "command -v bash").await.exit_code,
        Some(0),
        "the image should have no bash"
    );

    // A live client's timeout: the POSIX killer, verified.
    let timeout = Duration::from_secs(3);
    let began = Instant::now();
    let result = sandbox
        .exec_collect(ExecRequest::shell(ESCAPER).timeout(timeout))
        .await
        .unwrap();
    let took = began.elapsed();
    assert!(result.timed_out, "{result:?}");
    assert!(
        result.survivors.is_empty() && !result.kill_unverified,
        "{result:?}"
    );
    assert!(took < timeout + Duration::from_secs(1), "took {took:?}");
    let left = common::process_list(&sandbox).await;
    assert!(left.iter().all(|p| !p.contains("sleep 40")), "{left:?}");

    // A client that vanished (its future dropped mid-run, as a crash
    // would): the POSIX watchdog kills at the deadline.
    let (events, mut received) = tokio::sync::mpsc::channel(8);
    let run = {
        let sandbox = sandbox.clone();
        tokio::spawn(async move {
            sandbox
                .exec(
                    ExecRequest::shell("echo started; sleep 778").timeout(timeout),
                    Some(events),
                    tokio_util::sync::CancellationToken::new(),
                )
                .await
        })
    };
    let spawned = Instant::now();
    let first = tokio::time::timeout(Duration::from_secs(30), received.recv())
        .await
        .expect("output within 30 s")
        .expect("an event");
    assert_eq!(first.data, b"started\n");
    run.abort();
    let deadline = spawned + timeout;
    gone_by(
        &sandbox,
        "sleep 778",
        deadline + Duration::from_secs(2),
        "a command whose client vanished, without bash",
    )
    .await;
    sandbox.remove(true).await.unwrap();
}

#[tokio::test]
async fn a_timeout_spares_other_commands_and_earlier_daemons() {
    let (sandbox, _root) = engine_exec_sandbox("fb-spare").await;
    // A daemon an earlier command left running (started before the one
    // that times out, so not its orphan).
    let daemon = common::sh(&sandbox, "setsid sleep 611 </dev/null >/dev/null 2>&1 &").await;
    assert_eq!(daemon.exit_code, Some(0), "{daemon:?}");
    // Another command in flight, with a child of its own.
    let (events, mut received) = tokio::sync::mpsc::channel(8);
    let cancel = tokio_util::sync::CancellationToken::new();
    let other = {
        let sandbox = sandbox.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            sandbox
                .exec(
                    ExecRequest::shell("sleep 612 & echo started; wait"),
                    Some(events),
                    cancel,
                )
                .await
        })
    };
    let first = tokio::time::timeout(Duration::from_secs(30), received.recv())
        .await
        .expect("output within 30 s")
        .expect("an event");
    assert_eq!(first.data, b"started\n");
    let result = sandbox
        .exec_collect(ExecRequest::shell(ESCAPER).timeout(Duration::from_secs(2)))
        .await
        .unwrap();
    assert!(
        result.timed_out && result.survivors.is_empty(),
        "{result:?}"
    );
    let left = common::process_list(&sandbox).await;
    assert!(left.iter().all(|p| !p.contains("sleep 40")), "{left:?}");
    for spared in ["sleep 611", "sleep 612"] {
        assert!(
            left.iter().any(|p| p.contains(spared)),
            "`{spared}` is not the timed-out command's: {left:?}"
        );
    }
    cancel.cancel();
    let other = tokio::time::timeout(Duration::from_secs(30), other)
        .await
        .expect("the other command ends within 30 s of its cancel")
        .unwrap()
        .unwrap();
    assert!(other.cancelled && other.survivors.is_empty(), "{other:?}");
    sandbox.remove(true).await.unwrap();
}
