//! Faults against the real engine, with nothing lost: a sandbox container
//! removed (`docker rm -f`) during a command, a file write and a build, and
//! a sandpit process SIGKILLed during a file write. Each ends in a clear
//! error (never a hang or a panic), and the next `get_or_create` brings the
//! user back with their workspace.
//!
//! The engine-restart fault, which needs the dashboard in tmux, is in
//! `dashboard_e2e.rs`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sandpit::engine::exec::ExecRequest;
use sandpit::engine::policy::PolicyOverrides;
use sandpit::engine::runtimes::{Origin, RuntimeSet, parse_runtimes};
use sandpit::engine::sandbox::{Sandbox, UserId};
use sandpit::sessions::SessionManager;

/// How long any one fault may take to turn into an error.
const FAULT_DEADLINE: Duration = Duration::from_secs(60);

async fn session(manager: &SessionManager, user: &UserId) -> Sandbox {
    manager
        .get_or_create(user, None, &PolicyOverrides::default(), &mut |_| {})
        .await
        .unwrap_or_else(|err| panic!("session for {user}: {err:#}"))
}

/// Polls `done` every 5 ms until it holds; panics naming `what` at the
/// deadline.
async fn wait_until(deadline: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let until = tokio::time::Instant::now() + deadline;
    while !done() {
        assert!(
            tokio::time::Instant::now() < until,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Names in a host folder that are sandpit's write temporaries.
fn write_temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with(".sandpit-write."))
                .collect()
        })
        .unwrap_or_default()
}

fn docker_rm_f(container: &str) {
    let output = Command::new("docker")
        .args(["rm", "-f", container])
        .output()
        .expect("docker CLI");
    assert!(
        output.status.success(),
        "docker rm -f {container}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `size` bytes that differ at every 8-byte step, so a mix of two versions
/// or a cut is visible.
fn patterned(size: usize, seed: u8) -> Vec<u8> {
    (0..size)
        .map(|index| (index / 8) as u8 ^ seed ^ (index % 8) as u8)
        .collect()
}

#[tokio::test]
async fn a_sandbox_removed_during_a_command_ends_it_with_an_error() {
    let root = tempfile::tempdir().unwrap();
    let user = common::test_user("fault-run");
    let _cleanup = common::Cleanup(vec![user.container_name()]);
    let manager = common::manager(root.path(), |_| {}).await;
    let sandbox = session(&manager, &user).await;
    sandbox
        .write_file("keep.txt", b"kept across the fault".to_vec())
        .await
        .unwrap();

    let running = sandbox.clone();
    let command = tokio::spawn(async move {
        running
            .exec_collect(ExecRequest::shell("touch started; sleep 120"))
            .await
    });
    let started = manager.workspace_of(&user).join("started");
    wait_until(FAULT_DEADLINE, "the command to start", || started.exists()).await;
    docker_rm_f(&user.container_name());

    let outcome = tokio::time::timeout(FAULT_DEADLINE, command)
        .await
        .expect("the command must end once its sandbox is removed, not hang")
        .expect("the command's task must not panic");
    // Reported as its own outcome: the sandbox was removed (exit 125).
    let result = outcome.unwrap_or_else(|err| panic!("expected a result, got {err:#}"));
    assert_eq!(
        result.sandbox_lost,
        Some(sandpit::engine::exec::SandboxLoss::Removed),
        "{result:?}"
    );
    assert_eq!(result.status_code(), 125, "{result:?}");
    // A new command in the removed sandbox is a clear error naming it.
    let err = sandbox
        .exec_collect(ExecRequest::shell("true"))
        .await
        .expect_err("a removed sandbox cannot run commands");
    assert!(
        format!("{err:#}").contains(&user.container_name()),
        "the error names the sandbox: {err:#}"
    );

    let back = session(&manager, &user).await;
    let kept = back.read_file("keep.txt", 1024).await.unwrap();
    assert_eq!(kept.bytes, b"kept across the fault");
    assert_eq!(
        common::sh(&back, "echo alive").await.stdout_text(),
        "alive\n"
    );
}

#[tokio::test]
async fn a_sandbox_removed_during_a_file_write_keeps_the_old_file() {
    let root = tempfile::tempdir().unwrap();
    let user = common::test_user("fault-write");
    let _cleanup = common::Cleanup(vec![user.container_name()]);
    let manager = common::manager(root.path(), |_| {}).await;
    let sandbox = session(&manager, &user).await;
    let old = b"the old contents".to_vec();
    sandbox.write_file("data.bin", old.clone()).await.unwrap();
    // Big enough that the write is still going when the sandbox goes.
    let contents = patterned(256 << 20, 0x5a);

    let writer = sandbox.clone();
    let write = tokio::spawn(async move { writer.write_file("data.bin", contents).await });
    let workspace = manager.workspace_of(&user);
    wait_until(FAULT_DEADLINE, "the write's temporary file", || {
        !write_temporaries(&workspace).is_empty()
    })
    .await;
    docker_rm_f(&user.container_name());

    let outcome = tokio::time::timeout(FAULT_DEADLINE, write)
        .await
        .expect("the write must end once its sandbox is removed, not hang")
        .expect("the write's task must not panic");
    let err = outcome.expect_err("a write cut short by the sandbox's removal is an error");
    eprintln!("write into a removed sandbox: {err:#}");
    assert!(format!("{err:#}").contains("data.bin"), "{err:#}");

    let back = session(&manager, &user).await;
    let now = back.read_file("data.bin", 1 << 30).await.unwrap();
    assert!(
        now.bytes == old,
        "the old contents stay whole after a cut write"
    );
    // The cut write's temporary is not the user's file: not listed, and
    // cleared by the next write to that folder.
    let listed = back.list_dir(".").await.unwrap();
    let names: Vec<String> = listed.iter().map(|entry| entry.display_name()).collect();
    assert!(
        !names.iter().any(|name| name.starts_with(".sandpit-write.")),
        "a leftover temporary is listed: {names:?}"
    );
    back.write_file("other.txt", b"x".to_vec()).await.unwrap();
    assert_eq!(write_temporaries(&workspace), Vec::<String>::new());
}

/// A runtime that must be built, with a step slow enough to interrupt; the
/// token makes its image this test's own and marks its step's process.
fn slow_runtime(token: &str) -> sandpit::engine::runtimes::Runtime {
    let text = format!(
        r#"
[[runtime]]
name = "fault-build"
language = "shell"
base_image = "debian:trixie-slim"
setup = ["sh -c 'sleep 8; true' {token}"]
"#
    );
    parse_runtimes(&text, "faults.toml", Origin::Builtin)
        .expect("the test runtime parses")
        .remove(0)
}

/// The id of the container running a process whose command line holds
/// `token`: the build's step container. Found through the host's /proc, as
/// the classic builder gives its containers neither names nor labels.
fn build_container(token: &str) -> Option<String> {
    for entry in std::fs::read_dir("/proc").ok()?.filter_map(Result::ok) {
        let dir = entry.path();
        let Ok(cmdline) = std::fs::read(dir.join("cmdline")) else {
            continue;
        };
        if !String::from_utf8_lossy(&cmdline).contains(token) {
            continue;
        }
        let cgroup = std::fs::read_to_string(dir.join("cgroup")).unwrap_or_default();
        let id = cgroup
            .split(|c: char| !c.is_ascii_hexdigit())
            .find(|part| part.len() == 64);
        if let Some(id) = id {
            return Some(id.to_string());
        }
    }
    None
}

#[tokio::test]
async fn a_build_whose_container_is_removed_fails_clearly_and_the_next_call_works() {
    let root = tempfile::tempdir().unwrap();
    let user = common::test_user("fault-build");
    let token = format!("fault{}x{}", std::process::id(), unix_nanos());
    let runtime = slow_runtime(&token);
    let tag = sandpit::engine::images::image_ref(&runtime);
    // Dropped after the container, which uses the image.
    let _image = RemoveImage(tag.clone());
    let _cleanup = common::Cleanup(vec![user.container_name()]);
    let mut runtimes = RuntimeSet::builtin().unwrap();
    runtimes.overlay(vec![runtime]);
    let mut config = sandpit::sessions::SessionConfig::new(root.path().to_path_buf());
    config.build = common::build_options();
    let manager = SessionManager::new(common::engine().await, runtimes, config);

    // The user's workspace holds work from before.
    let workspace = manager.workspace_of(&user);
    std::fs::create_dir_all(&workspace).unwrap();
    std::fs::write(workspace.join("before.txt"), "from before").unwrap();

    let builder = std::sync::Arc::new(manager);
    let creating = {
        let manager = builder.clone();
        let user = user.clone();
        tokio::spawn(async move {
            manager
                .get_or_create(
                    &user,
                    Some("fault-build"),
                    &PolicyOverrides::default(),
                    &mut |_| {},
                )
                .await
        })
    };
    let mut found = None;
    wait_until(FAULT_DEADLINE, "the build's step container", || {
        found = build_container(&token);
        found.is_some()
    })
    .await;
    docker_rm_f(&found.unwrap_or_default());

    let outcome = tokio::time::timeout(FAULT_DEADLINE, creating)
        .await
        .expect("the build must end once its container is removed, not hang")
        .expect("the build's task must not panic");
    let err = outcome.expect_err("a build whose step container was removed fails");
    let message = format!("{err:#}");
    eprintln!("build with its container removed: {message}");
    assert!(
        message.contains("fault-build"),
        "names the runtime: {message}"
    );
    // Nothing half-made: no sandbox, no image.
    assert!(
        builder
            .engine()
            .find_sandbox(&user)
            .await
            .unwrap()
            .is_none(),
        "a failed build leaves no sandbox"
    );
    assert!(!builder.engine().image_exists(&tag).await.unwrap());

    // The next call builds again, undisturbed, and brings the user back
    // with their workspace.
    let back = tokio::time::timeout(
        Duration::from_secs(180),
        builder.get_or_create(
            &user,
            Some("fault-build"),
            &PolicyOverrides::default(),
            &mut |_| {},
        ),
    )
    .await
    .expect("the retried build ends within its deadline")
    .unwrap_or_else(|err| panic!("the retried get_or_create: {err:#}"));
    let before = back.read_file("before.txt", 1024).await.unwrap();
    assert_eq!(before.bytes, b"from before");
}

fn unix_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Removes a test's image when dropped.
struct RemoveImage(String);

impl Drop for RemoveImage {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.0])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// The CLI for one test user, with its own workspace root.
fn cli(root: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sandpit"));
    command.arg("--workspace-root").arg(root).args(args);
    if let Some(ca) = common::build_options().ca_file {
        command.env(sandpit::config::CA_FILE_ENV, ca);
    }
    command
}

/// Runs a CLI command to its end, within a deadline.
fn cli_output(root: &Path, args: &[&str]) -> std::process::Output {
    common::output_within(
        &mut cli(root, args),
        FAULT_DEADLINE,
        &format!("sandpit {args:?}"),
    )
}

#[tokio::test]
async fn sigkill_during_a_file_write_leaves_the_old_or_the_new_file_whole() {
    let root = tempfile::tempdir().unwrap();
    let user = common::test_user("fault-kill");
    let _cleanup = common::Cleanup(vec![user.container_name()]);
    let workspace: PathBuf = root.path().join(user.as_str());
    let local = tempfile::tempdir().unwrap();
    let old = patterned(1 << 20, 0x11);
    let new = patterned(256 << 20, 0x22);
    std::fs::write(local.path().join("old"), &old).unwrap();
    std::fs::write(local.path().join("new"), &new).unwrap();
    let put = |name: &str| {
        let file = local.path().join(name);
        let file = file.to_str().unwrap().to_string();
        cli(
            root.path(),
            &["files", "--user", user.as_str(), "put", &file, "data.bin"],
        )
    };
    let made = cli_output(root.path(), &["new", user.as_str()]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let first = cli_output(
        root.path(),
        &[
            "files",
            "--user",
            user.as_str(),
            "put",
            local.path().join("old").to_str().unwrap(),
            "data.bin",
        ],
    );
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );

    let mut child = put("new").spawn().expect("spawn sandpit files put");
    wait_until(FAULT_DEADLINE, "the write's temporary file", || {
        !write_temporaries(&workspace).is_empty()
    })
    .await;
    child.kill().expect("SIGKILL sandpit");
    let status = child.wait().expect("reap sandpit");
    assert!(!status.success());

    // The command inside the sandbox ends on its own once its client is
    // gone; wait for its temporary to go (or stay, if the sandbox left it).
    let sandbox = common::engine()
        .await
        .find_sandbox(&user)
        .await
        .unwrap()
        .unwrap();
    let until = tokio::time::Instant::now() + FAULT_DEADLINE;
    loop {
        let busy = common::process_list(&sandbox)
            .await
            .iter()
            .any(|line| line.contains("sandpit-files"));
        if !busy {
            break;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "timed out waiting for the cut write to end inside the sandbox"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let now = std::fs::read(workspace.join("data.bin")).unwrap();
    assert!(
        now == old || now == new,
        "after SIGKILL the file is {} bytes: neither the old ({}) nor the new ({}) contents",
        now.len(),
        old.len(),
        new.len()
    );
    eprintln!(
        "after SIGKILL mid-write the file holds the {} contents",
        if now == old { "old" } else { "new" }
    );
    let listing = cli_output(root.path(), &["files", "--user", user.as_str(), "ls"]);
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    assert!(
        !listing.contains(".sandpit-write."),
        "a leftover temporary is listed:\n{listing}"
    );
    assert_eq!(write_temporaries(&workspace), Vec::<String>::new());
}

#[tokio::test]
async fn the_cli_ends_a_command_whose_sandbox_is_removed_with_a_failure() {
    let root = tempfile::tempdir().unwrap();
    let user = common::test_user("fault-cli-run");
    let _cleanup = common::Cleanup(vec![user.container_name()]);
    let made = cli_output(root.path(), &["new", user.as_str()]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let mut running = cli(
        root.path(),
        &[
            "exec",
            "--user",
            user.as_str(),
            "--",
            "sh",
            "-c",
            "touch started; sleep 120",
        ],
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("spawn sandpit exec");
    let started = root.path().join(user.as_str()).join("started");
    wait_until(FAULT_DEADLINE, "the command to start", || started.exists()).await;
    docker_rm_f(&user.container_name());

    let until = std::time::Instant::now() + FAULT_DEADLINE;
    let status = loop {
        if let Some(status) = running.try_wait().expect("wait for sandpit exec") {
            break status;
        }
        if std::time::Instant::now() >= until {
            let _ = running.kill();
            panic!("sandpit exec did not end within {FAULT_DEADLINE:?} of its sandbox's removal");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let stderr = running.wait_with_output().expect("sandpit's stderr").stderr;
    let stderr = String::from_utf8_lossy(&stderr);
    eprintln!("sandpit exec in a removed sandbox: {status}; stderr: {stderr}");
    // Its own status and a one-line message naming what happened.
    assert_eq!(status.code(), Some(125), "{stderr}");
    assert!(stderr.contains("was removed"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // The next command brings the user back.
    let again = cli_output(
        root.path(),
        &["exec", "--user", user.as_str(), "--", "echo", "back"],
    );
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&again.stdout), "back\n");
}
