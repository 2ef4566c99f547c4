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
