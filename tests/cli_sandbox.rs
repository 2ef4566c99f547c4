//! The sandbox CLI end to end: exit statuses, stdin, run, files, and bounded
//! memory under an output flood and a large stdin.

mod common;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Cli {
    workspace_root: tempfile::TempDir,
    user: String,
}

impl Drop for Cli {
    fn drop(&mut self) {
        common::remove_container_now(&format!("sandpit-{}", self.user));
        // Workspace disk images the test left mounted (`rm` keeps them).
        common::unmount_under(self.workspace_root.path());
    }
}

impl Cli {
    /// A CLI with its own workspace root, for one test user.
    fn new(tag: &str) -> Self {
        Self {
            workspace_root: tempfile::tempdir().unwrap(),
            user: common::test_user(tag).to_string(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sandpit"));
        command
            .arg("--workspace-root")
            .arg(self.workspace_root.path())
            .args(args);
        if let Some(ca) = common::build_options().ca_file {
            command.env(sandpit::config::CA_FILE_ENV, ca);
        }
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        common::output_within(
            &mut self.command(args),
            common::CLI_DEADLINE,
            &format!("sandpit {args:?}"),
        )
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn exec_exit_statuses_follow_the_command() {
    let cli = Cli::new("cli-exec");
    let user = cli.user.clone();
    let user = user.as_str();
    let ok = cli.run(&[
        "exec",
        "--user",
        user,
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(ok.status.code(), Some(3), "{}", text(&ok.stderr));
    assert_eq!(text(&ok.stdout), "out\n");
    assert!(text(&ok.stderr).contains("err\n"));

    let timed_out = cli.run(&[
        "exec",
        "--user",
        user,
        "--timeout",
        "1",
        "--",
        "sleep",
        "30",
    ]);
    assert_eq!(
        timed_out.status.code(),
        Some(124),
        "{}",
        text(&timed_out.stderr)
    );
    assert!(text(&timed_out.stderr).contains("timed out"));

    let env = cli.run(&[
        "exec",
        "--user",
        user,
        "--env",
        "A=b c",
        "--",
        "sh",
        "-c",
        "echo \"$A\"",
    ]);
    assert_eq!(text(&env.stdout), "b c\n");

    let bad_env = cli.run(&["exec", "--user", user, "--env", "A;B=1", "--", "true"]);
    assert_eq!(bad_env.status.code(), Some(2), "clap usage error");

    // The workspace is the user's folder under the root.
    cli.run(&[
        "exec",
        "--user",
        user,
        "--",
        "sh",
        "-c",
        "echo hi > made.txt",
    ]);
    assert_eq!(
        std::fs::read_to_string(cli.workspace_root.path().join(user).join("made.txt")).unwrap(),
        "hi\n"
    );

    let inspect = cli.run(&["inspect", user, "--json"]);
    let details: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(details["policy"]["network"], "none");
    assert_eq!(details["policy"]["pids_limit"], 256);

    let removed = cli.run(&["rm", user]);
    assert!(removed.status.success(), "{}", text(&removed.stderr));
    // `rm` keeps the workspace's disk image mounted: its files stay put.
    assert!(
        cli.workspace_root
            .path()
            .join(user)
            .join("made.txt")
            .exists(),
        "kept without --purge"
    );
    let gone = cli.run(&["inspect", user]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(
        text(&gone.stderr).contains("has no sandbox"),
        "{}",
        text(&gone.stderr)
    );
}

#[test]
fn exec_reports_the_memory_limit_with_137() {
    let cli = Cli::new("cli-oom");
    let user = cli.user.clone();
    let user = user.as_str();
    let created = cli.run(&["new", user, "--memory", "96m"]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    let oom = cli.run(&[
        "exec",
        "--user",
        user,
        "--",
        "python3",
        "-c",
        "x = bytearray(512 * 1024 * 1024)",
    ]);
    assert_eq!(oom.status.code(), Some(137));
    assert!(
        text(&oom.stderr).contains("sandpit: killed by the memory limit (96m)"),
        "{}",
        text(&oom.stderr)
    );
    cli.run(&["rm", user, "--purge"]);
    assert!(
        !cli.workspace_root.path().join(user).exists(),
        "--purge deletes the workspace"
    );
}

#[test]
fn run_copies_a_file_and_runs_it_with_the_runtime_template() {
    let cli = Cli::new("cli-run");
    let user = cli.user.clone();
    let user = user.as_str();
    let local = tempfile::tempdir().unwrap();
    let script = local.path().join("hello.py");
    std::fs::write(&script, "import sys\nprint('hello from', sys.argv[0])\n").unwrap();
    let output = cli.run(&["run", "--user", user, script.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "hello from hello.py\n");

    // files: put, ls, cat, mv, mkdir, rm
    let blob = local.path().join("blob.bin");
    std::fs::write(&blob, [0u8, 159, 146, 150, 1, 2, 3]).unwrap();
    assert!(
        cli.run(&[
            "files",
            "--user",
            user,
            "put",
            blob.to_str().unwrap(),
            "data/blob.bin"
        ])
        .status
        .success()
    );
    let refused = cli.run(&["files", "--user", user, "cat", "data/blob.bin"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("binary file (7 bytes)"),
        "{}",
        text(&refused.stderr)
    );
    let saved = local.path().join("back.bin");
    assert!(
        cli.run(&[
            "files",
            "--user",
            user,
            "cat",
            "data/blob.bin",
            "-o",
            saved.to_str().unwrap()
        ])
        .status
        .success()
    );
    assert_eq!(
        std::fs::read(&saved).unwrap(),
        std::fs::read(&blob).unwrap()
    );
    assert!(
        cli.run(&["files", "--user", user, "mv", "hello.py", "app.py"])
            .status
            .success()
    );
    assert!(
        cli.run(&["files", "--user", user, "mkdir", "empty"])
            .status
            .success()
    );
    let listing = cli.run(&["files", "--user", user, "ls"]);
    let listing = text(&listing.stdout);
    assert!(
        listing.contains("app.py") && listing.contains("data") && listing.contains("empty"),
        "{listing}"
    );
    assert_eq!(
        text(&cli.run(&["files", "--user", user, "cat", "app.py"]).stdout),
        std::fs::read_to_string(&script).unwrap()
    );
    let escape = cli.run(&["files", "--user", user, "cat", "../../etc/passwd"]);
    assert_eq!(escape.status.code(), Some(1));
    assert!(
        text(&escape.stderr).contains("refused"),
        "{}",
        text(&escape.stderr)
    );
    assert!(
        cli.run(&["files", "--user", user, "rm", "data"])
            .status
            .success()
    );
    assert!(!cli.workspace_root.path().join(user).join("data").exists());

    let stats = cli.run(&["stats", "--user", user, "--json"]);
    let sample: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(sample["memory_limit"], 1u64 << 30);
    assert!(sample["pids"].as_u64().unwrap() >= 1);

    for action in ["stop", "start", "restart"] {
        let out = cli.run(&[action, user]);
        assert!(out.status.success(), "{action}: {}", text(&out.stderr));
    }
    cli.run(&["rm", user, "--purge"]);
}

#[test]
fn bad_user_ids_are_refused_before_anything_happens() {
    let cli = Cli::new("cli-bad");
    for bad in ["../x", "/", "", "a b", ".hidden", "-x"] {
        let output = cli.run(&["exec", &format!("--user={bad}"), "--", "true"]);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{bad:?}: {}",
            text(&output.stderr)
        );
        assert!(
            text(&output.stderr).contains("user id"),
            "{}",
            text(&output.stderr)
        );
    }
    assert_eq!(
        std::fs::read_dir(cli.workspace_root.path())
            .unwrap()
            .count(),
        0
    );
}

/// The peak resident set of a running process, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches(" kB").trim().parse().ok())
}

#[test]
fn an_output_flood_keeps_sandpit_memory_bounded() {
    let cli = Cli::new("cli-flood");
    let user = cli.user.clone();
    let user = user.as_str();
    assert!(cli.run(&["new", user]).status.success());
    // 8 MiB kept per stream of a 2 GB flood.
    let mut child = cli
        .command(&[
            "exec",
            "--user",
            user,
            "--output-cap",
            "8388608",
            "--",
            "sh",
            "-c",
            "head -c 2000000000 /dev/zero | tr '\\0' x",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // VmHWM is the peak so far, so the last reading before exit is the peak
    // of the whole run.
    let mut peak_kib = 0;
    let until = std::time::Instant::now() + common::CLI_DEADLINE;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() >= until {
            let _ = child.kill();
            panic!(
                "timed out after {:?} waiting for the flood's command to end",
                common::CLI_DEADLINE
            );
        }
        if let Some(kib) = peak_rss_kib(child.id()) {
            peak_kib = peak_kib.max(kib);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(141), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("sandpit: output cap reached"),
        "{}",
        text(&output.stderr)
    );
    assert!(peak_kib > 0, "the process was never observed");
    assert!(
        peak_kib < 48 * 1024,
        "sandpit grew to {} MiB",
        peak_kib / 1024
    );
    cli.run(&["rm", user, "--purge"]);
}

#[test]
fn sessions_and_check_isolation_from_the_cli() {
    let cli = Cli::new("cli-sess-a");
    let a = cli.user.clone();
    let b = common::test_user("cli-sess-b").to_string();
    let _cleanup = common::Cleanup(vec![format!("sandpit-{b}")]);
    let check = cli.run(&["check-isolation", &a, &b]);
    // Every probe holds, and the exit status says so.
    assert!(
        check.status.success(),
        "{}{}",
        text(&check.stdout),
        text(&check.stderr)
    );
    let table = text(&check.stdout);
    let probes = sandpit::sessions::isolation::PROBES.len();
    assert_eq!(table.matches("  blocked   ").count(), probes, "{table}");
    assert!(
        table
            .lines()
            .any(|line| line.starts_with("workspace disk quota") && line.contains("  blocked  ")),
        "{table}"
    );
    assert!(
        table.contains(&format!("every probe blocked ({probes} probes)")),
        "{table}"
    );
    let json = cli.run(&["check-isolation", &a, &b, "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), probes);
    for row in rows {
        assert!(!row["evidence"].as_str().unwrap().is_empty(), "{row}");
        let verdict = row["verdict"].as_str().unwrap();
        assert_eq!(row["blocked"], verdict == "blocked", "{row}");
    }

    let listed = cli.run(&["sessions", "--json"]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["user"] == a.as_str())
        .expect("listed");
    assert_eq!(row["runtime"], "python-minimal");
    assert_eq!(row["state"], "running");
    assert!(row["last_used"].as_i64().unwrap() >= row["created"].as_i64().unwrap());
    assert!(row["stats"]["memory_limit"].as_u64().unwrap() > 0);
    let plain = text(&cli.run(&["sessions"]).stdout);
    assert!(plain.contains(&a) && plain.contains("CPU %"), "{plain}");
}

/// Waits for a child with an overall deadline, killing it when it passes.
fn wait_with_deadline(mut child: Child, limit: Duration, what: &str) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn stdin_reaches_the_command() {
    let cli = Cli::new("cli-stdin");
    let user = cli.user.clone();
    let user = user.as_str();
    let piped = |args: &[&str], input: &[u8]| {
        let mut child = cli
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            use std::io::Write as _;
            stdin.write_all(&input).unwrap();
        });
        // The first call may build the runtime image; nextest ends a test
        // at four minutes, so this fails first and says why.
        let output = wait_with_deadline(child, Duration::from_secs(200), "sandpit");
        writer.join().unwrap();
        output
    };
    let read = piped(
        &[
            "exec",
            "--user",
            user,
            "--",
            "python3",
            "-c",
            "import sys; print(len(sys.stdin.read()))",
        ],
        b"a,b\n1,2\n",
    );
    assert!(read.status.success(), "{}", text(&read.stderr));
    assert_eq!(text(&read.stdout), "8\n");

    // Bytes pass unchanged, NULs and newlines included.
    let bytes: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    let counted = piped(
        &[
            "exec",
            "--user",
            user,
            "--",
            "sh",
            "-c",
            "od -An -tx1 | wc -l; true",
        ],
        &bytes,
    );
    // od prints 16 bytes a line.
    assert_eq!(
        text(&counted.stdout).trim(),
        "18750",
        "{}",
        text(&counted.stderr)
    );
    let summed = piped(&["exec", "--user", user, "--", "cksum"], &bytes);
    let local = Command::new("sh")
        .args(["-c", "cksum"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(&bytes)?;
            child.wait_with_output()
        })
        .unwrap();
    assert_eq!(text(&summed.stdout), text(&local.stdout));

    // /dev/null and a closed stdin are both an empty one.
    let null = cli.run(&["exec", "--user", user, "--", "wc", "-c"]);
    assert!(null.status.success(), "{}", text(&null.stderr));
    assert_eq!(text(&null.stdout).trim(), "0");
    let closed = Command::new("sh")
        .arg("-c")
        .arg("exec <&- \"$@\"")
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_sandpit"))
        .arg("--workspace-root")
        .arg(cli.workspace_root.path())
        .args(["exec", "--user", user, "--", "wc", "-c"])
        .output()
        .unwrap();
    assert!(closed.status.success(), "{}", text(&closed.stderr));
    assert_eq!(text(&closed.stdout).trim(), "0");

    // `run FILE` forwards stdin too.
    let local = tempfile::tempdir().unwrap();
    let script = local.path().join("upper.py");
    std::fs::write(
        &script,
        "import sys\nprint(sys.stdin.read().upper(), end='')\n",
    )
    .unwrap();
    let ran = piped(
        &["run", "--user", user, script.to_str().unwrap()],
        b"shout\n",
    );
    assert!(ran.status.success(), "{}", text(&ran.stderr));
    assert_eq!(text(&ran.stdout), "SHOUT\n");

    // A command that never reads does not wait for a writer that never
    // closes.
    let mut writer = Command::new("sleep")
        .arg("600")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let idle = cli
        .command(&["exec", "--user", user, "--", "true"])
        .stdin(Stdio::from(writer.stdout.take().unwrap()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let idle = wait_with_deadline(idle, Duration::from_secs(60), "sandpit with an open stdin");
    let _ = writer.kill();
    let _ = writer.wait();
    assert!(idle.status.success(), "{}", text(&idle.stderr));
}

#[test]
fn a_large_stdin_streams_with_bounded_memory() {
    let cli = Cli::new("cli-bigin");
    let user = cli.user.clone();
    let user = user.as_str();
    assert!(cli.run(&["new", user]).status.success());
    let mut source = Command::new("head")
        .args(["-c", "1G", "/dev/zero"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = cli
        .command(&["exec", "--user", user, "--", "wc", "-c"])
        .stdin(Stdio::from(source.stdout.take().unwrap()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut peak_kib = 0;
    while child.try_wait().unwrap().is_none() {
        if let Some(kib) = peak_rss_kib(child.id()) {
            peak_kib = peak_kib.max(kib);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = source.kill();
            panic!("1 GiB of stdin did not pass within 120 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = source.wait();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout).trim(), (1u64 << 30).to_string());
    assert!(peak_kib > 0, "the process was never observed");
    assert!(
        peak_kib < 48 * 1024,
        "sandpit grew to {} MiB",
        peak_kib / 1024
    );
}

/// Starts `sandpit exec` of a command that marks its start with a file in
/// the workspace and then sleeps, and returns once the command runs.
fn exec_until_started(cli: &Cli, extra: &[&str]) -> Child {
    let marker = cli.workspace_root.path().join(&cli.user).join("started");
    let _ = std::fs::remove_file(&marker);
    let mut args = vec!["exec", "--user", cli.user.as_str()];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "sh", "-c", "touch started; exec sleep 600"]);
    let mut child = cli
        .command(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !marker.exists() {
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "the command did not start within 120 s; stderr: {}",
                text(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn exit_statuses_tell_faults_apart() {
    let cli = Cli::new("cli-faults");
    let user = cli.user.clone();
    let user = user.as_str();
    let container = format!("sandpit-{user}");

    let capped = cli.run(&["exec", "--user", user, "--output-cap", "1000", "--", "yes"]);
    assert_eq!(capped.status.code(), Some(141), "{}", text(&capped.stderr));
    assert_eq!(capped.stdout.len(), 1000);
    assert!(
        text(&capped.stderr).contains("sandpit: output cap reached"),
        "{}",
        text(&capped.stderr)
    );

    let json = cli.run(&[
        "exec",
        "--user",
        user,
        "--json",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(json.status.code(), Some(3), "{}", text(&json.stderr));
    let result: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(result["status"], "exited");
    assert_eq!(result["status_code"], 3);
    assert_eq!(result["exit_code"], 3);
    assert_eq!(result["reason"], serde_json::Value::Null);
    assert_eq!(result["stdout"], "out\n");
    assert_eq!(result["stderr"], "err\n");
    assert_eq!(result["stdout_bytes"], 4);
    let timed_out = cli.run(&[
        "exec",
        "--user",
        user,
        "--json",
        "--timeout",
        "1",
        "--",
        "sleep",
        "30",
    ]);
    assert_eq!(timed_out.status.code(), Some(124));
    let result: serde_json::Value = serde_json::from_slice(&timed_out.stdout).unwrap();
    assert_eq!(result["status"], "timed_out");
    assert_eq!(result["timed_out"], true);
    assert!(
        result["reason"]
            .as_str()
            .is_some_and(|reason| reason.starts_with("timed out after")),
        "{result}"
    );
    assert!(
        text(&timed_out.stderr).contains("sandpit: timed out after"),
        "{}",
        text(&timed_out.stderr)
    );

    // Ctrl-C ends the command's process tree and exits 130.
    let child = exec_until_started(&cli, &[]);
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let cancelled = wait_with_deadline(child, Duration::from_secs(60), "a cancelled exec");
    assert_eq!(
        cancelled.status.code(),
        Some(130),
        "{}",
        text(&cancelled.stderr)
    );
    assert!(
        text(&cancelled.stderr).contains("sandpit: cancelled"),
        "{}",
        text(&cancelled.stderr)
    );

    let child = exec_until_started(&cli, &["--json"]);
    let stopped = Command::new("docker")
        .args(["stop", "-t", "1", &container])
        .output()
        .unwrap();
    assert!(stopped.status.success(), "{}", text(&stopped.stderr));
    let output = wait_with_deadline(
        child,
        Duration::from_secs(60),
        "an exec whose sandbox stopped",
    );
    assert_eq!(output.status.code(), Some(125), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains(&format!(
            "sandpit: sandbox `{container}` was stopped during the command"
        )),
        "{}",
        text(&output.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(result["status"], "sandbox_lost");
    assert_eq!(result["sandbox_lost"], "stopped");

    // exec starts the stopped sandbox again.
    let child = exec_until_started(&cli, &[]);
    let removed = Command::new("docker")
        .args(["rm", "-f", &container])
        .output()
        .unwrap();
    assert!(removed.status.success(), "{}", text(&removed.stderr));
    let output = wait_with_deadline(
        child,
        Duration::from_secs(60),
        "an exec whose sandbox was removed",
    );
    assert_eq!(output.status.code(), Some(125), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains(&format!(
            "sandpit: sandbox `{container}` was removed during the command"
        )),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn completions_and_man_pages_from_the_binary() {
    let cli = Cli::new("cli-docs");
    for shell in ["bash", "zsh", "fish"] {
        let output = cli.run(&["completions", shell]);
        assert!(output.status.success(), "{shell}: {}", text(&output.stderr));
        assert!(text(&output.stdout).contains("check-isolation"), "{shell}");
    }
    let man = cli.run(&["man"]);
    assert!(man.status.success(), "{}", text(&man.stderr));
    assert!(
        text(&man.stdout).contains(".TH sandpit"),
        "{}",
        text(&man.stdout)
    );
    // A broken config file does not stand in the way of documentation.
    let bad = cli.workspace_root.path().join("bad.toml");
    std::fs::write(&bad, "this is = = not toml").unwrap();
    let output = cli
        .command(&["completions", "bash"])
        .env("SANDPIT_CONFIG", &bad)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    // ...while other commands read it from the environment.
    let output = cli
        .command(&["runtimes"])
        .env("SANDPIT_CONFIG", &bad)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("bad.toml"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn exec_run_and_files_are_in_the_activity_log() {
    let cli = Cli::new("cli-activity");
    let user = cli.user.clone();
    let user = user.as_str();
    let failed = cli.run(&["exec", "--user", user, "--", "sh", "-c", "echo hi; exit 3"]);
    assert_eq!(failed.status.code(), Some(3), "{}", text(&failed.stderr));
    let timed_out = cli.run(&[
        "exec",
        "--user",
        user,
        "--timeout",
        "1",
        "--",
        "sleep",
        "30",
    ]);
    assert_eq!(timed_out.status.code(), Some(124));
    // The default runtime is Python's.
    let script = cli.workspace_root.path().join("hello.sh");
    std::fs::write(&script, "print('from run')\n").unwrap();
    let ran = cli.run(&["run", "--user", user, script.to_str().unwrap()]);
    assert!(ran.status.success(), "{}", text(&ran.stderr));
    let moved = cli.run(&["files", "--user", user, "mv", "hello.sh", "moved.sh"]);
    assert!(moved.status.success(), "{}", text(&moved.stderr));
    let missing = cli.run(&["files", "--user", user, "rm", "nothing-here"]);
    assert!(!missing.status.success());

    let listed = cli.run(&["activity", "--user", user, "--source", "cli", "--json"]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let rows: Vec<serde_json::Value> = text(&listed.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let find = |action: &str| {
        rows.iter()
            .filter(|row| row["action"] == action)
            .cloned()
            .collect::<Vec<_>>()
    };
    let execs = find("exec");
    assert_eq!(execs.len(), 2, "{rows:#?}");
    assert_eq!(execs[0]["exit_code"], 3);
    assert_eq!(execs[0]["stdout_bytes"], 3);
    assert!(execs[0]["summary"].as_str().unwrap().contains("exit 3"));
    assert_eq!(execs[1]["timed_out"], true);
    assert_eq!(find("run")[0]["exit_code"], 0);
    assert_eq!(find("files.mv")[0]["summary"], "hello.sh -> moved.sh");
    let rm = &find("files.rm")[0];
    assert!(
        rm["error"].as_str().unwrap().contains("nothing-here"),
        "{rm:#}"
    );
    assert!(
        rows.iter()
            .all(|row| row["source"] == "cli" && row["user"] == user)
    );
}

#[test]
fn doctor_lists_oci_runtimes_and_a_sandbox_runs_under_gvisor() {
    let cli = Cli::new("cli-gvisor");
    let user = cli.user.as_str();
    let doctor = cli.run(&["doctor", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    let runtimes = report["oci_runtimes"].as_array().unwrap();
    assert!(
        runtimes.iter().any(|r| r["default"] == true),
        "{runtimes:?}"
    );
    let gvisor = runtimes
        .iter()
        .find(|r| r["name"] == "runsc")
        .expect("runsc registered: run scripts/test-setup");
    assert_eq!(gvisor["args"], serde_json::json!(["--network=none"]));
    let plain = text(&cli.run(&["doctor"]).stdout);
    assert!(plain.contains("OCI runtime runsc"), "{plain}");

    let new = cli.run(&["new", user, "--oci-runtime", "runsc"]);
    assert!(new.status.success(), "{}", text(&new.stderr));
    // gVisor's own kernel answers, not the host's.
    let dmesg = cli.run(&["exec", "--user", user, "--", "dmesg"]);
    assert!(
        text(&dmesg.stdout).contains("gVisor"),
        "{}",
        text(&dmesg.stdout)
    );
    let inspect = cli.run(&["inspect", user, "--json"]);
    let details: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(details["policy"]["oci_runtime"], "runsc");
    assert!(text(&cli.run(&["inspect", user]).stdout).contains("runsc"));

    let missing = cli.run(&[
        "new",
        "--oci-runtime",
        "sandpit-missing",
        &format!("{user}-x"),
    ]);
    assert_eq!(missing.status.code(), Some(1));
    let err = text(&missing.stderr);
    assert!(
        err.contains("no OCI runtime `sandpit-missing`") && err.contains("daemon.json"),
        "{err}"
    );
}
