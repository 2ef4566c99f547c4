//! The sandbox CLI end to end: exit statuses, run, files, and bounded memory
//! under an output flood.

mod common;

use std::process::{Command, Output};

struct Cli {
    workspace_root: tempfile::TempDir,
    user: String,
}

impl Drop for Cli {
    fn drop(&mut self) {
        common::remove_container_now(&format!("sandpit-{}", self.user));
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
        self.command(args).output().unwrap()
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
        text(&oom.stderr).contains("memory limit"),
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
    while child.try_wait().unwrap().is_none() {
        if let Some(kib) = peak_rss_kib(child.id()) {
            peak_kib = peak_kib.max(kib);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        text(&output.stderr).contains("output passed 8388608 bytes"),
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
    // Every probe holds but the disk quota: workspaces have none yet (issue
    // 13 §1), and the battery says so; a leak makes the exit status 1.
    assert_eq!(
        check.status.code(),
        Some(1),
        "{}{}",
        text(&check.stdout),
        text(&check.stderr)
    );
    let table = text(&check.stdout);
    let probes = sandpit::sessions::isolation::PROBES.len();
    assert_eq!(table.matches("  blocked   ").count(), probes - 1, "{table}");
    assert!(
        table
            .lines()
            .any(|line| line.starts_with("workspace disk quota") && line.contains("  LEAKED  ")),
        "{table}"
    );
    assert!(table.contains(&format!("1 probe(s) LEAKED, 0 untested, of {probes}")));
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
