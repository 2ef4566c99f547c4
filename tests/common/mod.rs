//! Helpers shared by the integration tests. They talk to the real engine.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures_util::StreamExt as _;
use sandpit::engine::Engine;
use sandpit::engine::images::{BuildEvent, BuildOptions};
use sandpit::engine::runtimes::{Runtime, RuntimeSet};

/// The system CA bundle from Debian's ca-certificates: this machine reaches
/// package registries through a TLS-intercepting proxy whose CA is in it.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

pub async fn engine() -> Engine {
    Engine::connect()
        .await
        .expect("integration tests need a Docker engine: run scripts/docker-up")
}

/// Build options as CI uses them: the CA from SANDPIT_BUILD_CA_FILE, or the
/// system bundle when that is unset.
pub fn build_options() -> BuildOptions {
    let ca_file = std::env::var_os(sandpit::config::CA_FILE_ENV)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from(SYSTEM_CA_BUNDLE)).filter(|path| path.is_file()));
    BuildOptions {
        ca_file,
        force: false,
    }
}

pub fn builtin(name: &str) -> Runtime {
    RuntimeSet::builtin()
        .expect("built-in runtimes parse")
        .get(name)
        .unwrap_or_else(|| panic!("no built-in runtime {name}"))
        .clone()
}

/// Builds a runtime, collecting its events.
pub async fn build(engine: &Engine, runtime: &Runtime) -> (String, Vec<BuildEvent>) {
    let mut events = Vec::new();
    let tag = engine
        .build_runtime(runtime, &build_options(), &mut |event| events.push(event))
        .await
        .unwrap_or_else(|err| panic!("building {} failed: {err:#}", runtime.name));
    (tag, events)
}

pub struct RunOutput {
    pub exit_code: i64,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` once in a fresh container of `image`, with `workspace` mounted
/// at `work_dir` (as a session's workspace is) and no network.
pub async fn run_once(
    engine: &Engine,
    image: &str,
    workspace: &Path,
    work_dir: &str,
    cmd: &[&str],
) -> RunOutput {
    static COUNTER: OnceLock<std::sync::atomic::AtomicU32> = OnceLock::new();
    let n = COUNTER
        .get_or_init(Default::default)
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let name = format!("sandpit-test-run-{}-{n}", std::process::id());
    let docker = engine.docker();
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
        working_dir: Some(work_dir.to_string()),
        host_config: Some(HostConfig {
            binds: Some(vec![format!("{}:{work_dir}", workspace.display())]),
            network_mode: Some("none".to_string()),
            ..Default::default()
        }),
        ..Default::default()
    };
    docker
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name(&name).build()),
            body,
        )
        .await
        .expect("create container");
    docker
        .start_container(&name, None)
        .await
        .expect("start container");
    let exit_code = match docker.wait_container(&name, None).next().await {
        Some(Ok(response)) => response.status_code,
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
        other => panic!("waiting for {name}: {other:?}"),
    };
    let mut logs = docker.logs(
        &name,
        Some(
            LogsOptionsBuilder::new()
                .stdout(true)
                .stderr(true)
                .tail("all")
                .build(),
        ),
    );
    let (mut stdout, mut stderr) = (String::new(), String::new());
    while let Some(chunk) = logs.next().await {
        match chunk.expect("read logs") {
            bollard::container::LogOutput::StdOut { message } => {
                stdout.push_str(&String::from_utf8_lossy(&message))
            }
            bollard::container::LogOutput::StdErr { message } => {
                stderr.push_str(&String::from_utf8_lossy(&message))
            }
            _ => {}
        }
    }
    docker
        .remove_container(
            &name,
            Some(RemoveContainerOptionsBuilder::new().force(true).build()),
        )
        .await
        .expect("remove container");
    RunOutput {
        exit_code,
        stdout,
        stderr,
    }
}

/// Builds a built-in runtime and runs `script` (written to the workspace as
/// `file`) with it. Asserts success and returns the output.
pub async fn build_and_run(
    runtime_name: &str,
    workspace: &Path,
    files: &[(&str, &str)],
    cmd: &[&str],
) -> RunOutput {
    let engine = engine().await;
    let runtime = builtin(runtime_name);
    let (tag, _) = build(&engine, &runtime).await;
    for (path, contents) in files {
        let path = workspace.join(path);
        std::fs::create_dir_all(path.parent().expect("file has a parent")).expect("mkdir");
        std::fs::write(&path, contents).expect("write workspace file");
    }
    let output = run_once(&engine, &tag, workspace, &runtime.work_dir, cmd).await;
    assert_eq!(
        output.exit_code, 0,
        "{runtime_name}: {cmd:?} failed\nstdout:\n{}\nstderr:\n{}",
        output.stdout, output.stderr
    );
    output
}
