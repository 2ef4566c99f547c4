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
    let waited = tokio::time::timeout(
        std::time::Duration::from_secs(300),
        docker.wait_container(&name, None).next(),
    )
    .await
    .unwrap_or_else(|_| panic!("timed out after 300 s waiting for {cmd:?} in {name} to end"));
    let exit_code = match waited {
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
    let logs_by = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while let Some(chunk) = tokio::time::timeout_at(logs_by, logs.next())
        .await
        .unwrap_or_else(|_| panic!("timed out after 60 s reading the logs of {name}"))
    {
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

/// The python-minimal image, built once per test binary.
pub async fn python_image(engine: &Engine) -> String {
    static TAG: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    TAG.get_or_init(|| async { build(engine, &builtin("python-minimal")).await.0 })
        .await
        .clone()
}

/// A user id unique to this test run.
pub fn test_user(tag: &str) -> sandpit::engine::sandbox::UserId {
    sandpit::engine::sandbox::UserId::parse(&format!("t-{tag}-{}", std::process::id()))
        .expect("valid test user id")
}

/// Removes a test's container even when the test fails, and holds the
/// temporary folder of its workspace.
pub struct TestRoot {
    dir: tempfile::TempDir,
    container: String,
}

impl TestRoot {
    /// A fresh temporary folder; `container` is removed on drop.
    pub fn new(container: String) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            container,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// scripts/run-tests sets `SANDPIT_EXEC_TRANSPORT=engine` (the library's
/// own switch, inherited by the `sandpit` processes the tests start) for
/// its pass that runs the exec and files tests through the engine's exec
/// instead of the runner.
pub fn engine_transport_forced() -> bool {
    std::env::var(sandpit::engine::runner::transport::TRANSPORT_ENV)
        .is_ok_and(|value| value.trim().eq_ignore_ascii_case("engine"))
}

impl Drop for TestRoot {
    fn drop(&mut self) {
        remove_container_now(&self.container);
        unmount_under(self.dir.path());
    }
}

/// Unmounts every mount at or under `root` (workspace disk images a test
/// left mounted), deepest first, so the temporary folder can go and no loop
/// device stays taken: `mount -o loop` frees it on unmount.
pub fn unmount_under(root: &Path) {
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let mut points: Vec<PathBuf> = mount_points()
        .into_iter()
        .filter(|point| point.starts_with(&root))
        .collect();
    points.sort_by_key(|point| std::cmp::Reverse(point.components().count()));
    for point in points {
        let _ = std::process::Command::new("umount")
            .arg(&point)
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// The mount points of this process's mount namespace, from mountinfo
/// (`\040` and such undone).
pub fn mount_points() -> Vec<PathBuf> {
    mounts().into_iter().map(|(point, _)| point).collect()
}

/// Every mount of this process's mount namespace: its point and source.
pub fn mounts() -> Vec<(PathBuf, String)> {
    use std::os::unix::ffi::OsStrExt as _;
    let unescape = |field: &str| {
        let bytes = field.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let octal = bytes
                .get(i + 1..i + 4)
                .and_then(|o| std::str::from_utf8(o).ok())
                .and_then(|o| u8::from_str_radix(o, 8).ok());
            match octal {
                Some(value) if bytes[i] == b'\\' => {
                    out.push(value);
                    i += 4;
                }
                _ => {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
        }
        out
    };
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let point = unescape(left.split(' ').nth(4)?);
            let source = unescape(right.split(' ').nth(1)?);
            Some((
                PathBuf::from(std::ffi::OsStr::from_bytes(&point)),
                String::from_utf8_lossy(&source).into_owned(),
            ))
        })
        .collect()
}

/// Force-removes a container with the docker CLI: usable from Drop, where
/// nothing async can run.
/// Bounded: an engine that does not answer within a minute is given up on
/// (never a panic: this runs in Drop).
pub fn remove_container_now(name: &str) {
    let child = std::process::Command::new("docker")
        .args(["rm", "-f", name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    let Ok(mut child) = child else { return };
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while matches!(child.try_wait(), Ok(None)) {
        if std::time::Instant::now() >= until {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("gave up removing {name}: the engine did not answer within 60 s");
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The environment variable that runs the sandbox, session and isolation
/// tests under another OCI runtime (`runsc` for gVisor): scripts/run-tests
/// sets it for its gVisor pass.
pub const OCI_RUNTIME_ENV: &str = "SANDPIT_TEST_OCI_RUNTIME";

/// The OCI runtime the tests run sandboxes with, when not the engine's
/// default.
pub fn test_oci_runtime() -> Option<String> {
    std::env::var(OCI_RUNTIME_ENV)
        .ok()
        .filter(|value| !value.is_empty())
}

/// Whether the tests run under gVisor, whose kernel shows less (no cgroup
/// files, no NoNewPrivs line) and answers statx with EINVAL (so no `ls`).
pub fn under_gvisor() -> bool {
    test_oci_runtime().as_deref() == Some(sandpit::engine::oci::GVISOR)
}

/// A fresh python-minimal sandbox with the given policy overrides (under
/// the OCI runtime of [`OCI_RUNTIME_ENV`] unless they name one). The
/// returned root holds its workspace (at `ws/`).
pub async fn sandbox_with(
    tag: &str,
    mut overrides: sandpit::engine::policy::PolicyOverrides,
) -> (sandpit::engine::sandbox::Sandbox, TestRoot) {
    if overrides.oci_runtime.is_none() {
        overrides.oci_runtime = test_oci_runtime();
    }
    let engine = engine().await;
    let image = python_image(&engine).await;
    let user = test_user(tag);
    if let Some(old) = engine.find_sandbox(&user).await.unwrap() {
        old.remove(false).await.unwrap();
    }
    let root = TestRoot {
        dir: tempfile::tempdir().unwrap(),
        container: user.container_name(),
    };
    let spec = sandpit::engine::sandbox::SandboxSpec {
        user,
        runtime: builtin("python-minimal"),
        image,
        workspace: root.path().join("ws"),
        policy: sandpit::engine::policy::SandboxPolicy::resolve([&overrides]).unwrap(),
    };
    let sandbox = engine.create_sandbox(&spec).await.expect("create sandbox");
    (sandbox, root)
}

pub async fn sandbox(tag: &str) -> (sandpit::engine::sandbox::Sandbox, TestRoot) {
    sandbox_with(tag, Default::default()).await
}

/// Runs a shell command in the sandbox and returns its result.
pub async fn sh(
    sandbox: &sandpit::engine::sandbox::Sandbox,
    script: &str,
) -> sandpit::engine::exec::ExecResult {
    sandbox
        .exec_collect(sandpit::engine::exec::ExecRequest::shell(script))
        .await
        .unwrap_or_else(|err| panic!("exec `{script}` failed: {err:#}"))
}

/// Command lines of every process in the sandbox but the one looking and
/// the in-sandbox runner's (which serves commands and is none of theirs).
pub async fn process_list(sandbox: &sandpit::engine::sandbox::Sandbox) -> Vec<String> {
    let result = sh(
        sandbox,
        r#"for d in /proc/[0-9]*; do [ "${d#/proc/}" = $$ ] && continue; c=$(tr '\0' ' ' < $d/cmdline 2>/dev/null) && echo "${d#/proc/} $c"; done"#,
    )
    .await;
    result
        .stdout_text()
        .lines()
        .filter(|line| !line.contains("/proc/[0-9]*"))
        .filter(|line| !line.contains(sandpit::engine::runner::volume::BINARY_PATH))
        .map(str::to_string)
        .collect()
}

/// A session manager over a temporary workspace root, its sandboxes under
/// the OCI runtime of [`OCI_RUNTIME_ENV`] when set.
pub async fn manager(
    root: &Path,
    tweak: impl FnOnce(&mut sandpit::sessions::SessionConfig),
) -> sandpit::sessions::SessionManager {
    let mut config = sandpit::sessions::SessionConfig::new(root.to_path_buf());
    config.build = build_options();
    config.policy.oci_runtime = test_oci_runtime();
    tweak(&mut config);
    sandpit::sessions::SessionManager::new(
        engine().await,
        RuntimeSet::builtin().expect("built-in runtimes"),
        config,
    )
}

/// Removes the named users' containers when dropped, even if a test fails,
/// and unmounts their workspace disk images (mount points named for the
/// user, under a `.sandpit/disks` layout; test user ids are unique per run).
pub struct Cleanup(pub Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for container in &self.0 {
            remove_container_now(container);
            let Some(user) = container.strip_prefix("sandpit-") else {
                continue;
            };
            // Found by the loop device's backing file, which sysfs still
            // names (with " (deleted)") after a temporary folder went first.
            let image = format!("/.sandpit/disks/{user}.ext4");
            for (point, source) in mounts() {
                let backing = Path::new(&source)
                    .file_name()
                    .and_then(|name| {
                        std::fs::read_to_string(format!(
                            "/sys/block/{}/loop/backing_file",
                            name.to_string_lossy()
                        ))
                        .ok()
                    })
                    .unwrap_or_default();
                let ours =
                    point.file_name().is_some_and(|name| name == user) && backing.contains(&image);
                if ours {
                    let _ = std::process::Command::new("umount")
                        .arg(&point)
                        .stderr(std::process::Stdio::null())
                        .status();
                }
            }
        }
    }
}

/// Runs a command to its end and returns its output, like
/// `Command::output`, but fails naming `what` if it has not ended within
/// `deadline` (it is killed then, and what it printed so far is shown).
pub fn output_within(
    command: &mut std::process::Command,
    deadline: std::time::Duration,
    what: &str,
) -> std::process::Output {
    use std::io::Read;
    let mut child = command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {what}: {err}"));
    // Drained while waiting, so a chatty child never blocks on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let until = std::time::Instant::now() + deadline;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for a child") {
            break status;
        }
        if std::time::Instant::now() >= until {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = stderr.join().unwrap_or_default();
            panic!(
                "timed out after {deadline:?} waiting for {what}; its stderr so far:\n{}",
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// How long one sandpit CLI command may take in a test: long enough for a
/// cold image build of python-minimal on a busy host.
pub const CLI_DEADLINE: std::time::Duration = std::time::Duration::from_secs(180);
