//! Sandbox latency against the real engine, beside the same operations done
//! through the docker CLI in the same run: p50 and p95 of each. Commands,
//! file operations and a 1 GB stdout flood are measured on each transport
//! (the in-sandbox runner, the engine's exec) and through `docker exec`.
//!
//! `cargo bench --bench sandbox` (needs a running engine; builds
//! python-minimal when missing).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use sandpit::engine::Engine;
use std::sync::Arc;

use sandpit::engine::exec::{EngineExec, ExecRequest};
use sandpit::engine::images::BuildOptions;
use sandpit::engine::policy::SandboxPolicy;
use sandpit::engine::runtimes::RuntimeSet;
use sandpit::engine::sandbox::{SandboxSpec, UserId};

const CREATE_RUNS: usize = 10;
const EXEC_RUNS: usize = 50;
const PYTHON_RUNS: usize = 30;
const FILE_RUNS: usize = 50;
const THROUGHPUT_RUNS: usize = 5;

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index]
}

fn report(name: &str, mut ours: Vec<Duration>, mut docker: Vec<Duration>) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (o50, o95) = (percentile(&mut ours, 0.5), percentile(&mut ours, 0.95));
    let (d50, d95) = (percentile(&mut docker, 0.5), percentile(&mut docker, 0.95));
    println!(
        "{name:<34} sandpit p50 {:>7.1} ms  p95 {:>7.1} ms | docker CLI p50 {:>7.1} ms  p95 {:>7.1} ms | ratio p50 {:.2}  p95 {:.2}",
        ms(o50),
        ms(o95),
        ms(d50),
        ms(d95),
        ms(o50) / ms(d50),
        ms(o95) / ms(d95)
    );
}

/// One line per operation and transport: p50 first, then p95.
fn line(operation: &str, transport: &str, mut samples: Vec<Duration>) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (p50, p95) = (
        percentile(&mut samples, 0.5),
        percentile(&mut samples, 0.95),
    );
    println!(
        "{operation:<24} {transport:<12} p50 {:>8.2} ms  p95 {:>8.2} ms  ({} runs)",
        ms(p50),
        ms(p95),
        samples.len()
    );
}

/// As [`line`], with the rate `bytes` per run makes.
fn throughput_line(operation: &str, transport: &str, mut samples: Vec<Duration>, bytes: usize) {
    let rate = |d: Duration| bytes as f64 / d.as_secs_f64() / 1e6;
    let (p50, p95) = (
        percentile(&mut samples, 0.5),
        percentile(&mut samples, 0.95),
    );
    println!(
        "{operation:<24} {transport:<12} p50 {:>8.0} MB/s ({:.2} s)  p95 {:>8.0} MB/s ({:.2} s)  ({} runs)",
        rate(p50),
        p50.as_secs_f64(),
        rate(p95),
        p95.as_secs_f64(),
        samples.len()
    );
}

fn docker(args: &[&str]) -> Duration {
    let started = Instant::now();
    let output = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    elapsed
}

/// The docker CLI flags that match sandpit's default policy.
fn hardened_run_args<'a>(name: &'a str, workspace: &'a str, image: &'a str) -> Vec<String> {
    [
        "run",
        "-d",
        "--name",
        name,
        "--user",
        "1000:1000",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges:true",
        "--init",
        "--pids-limit",
        "256",
        "--memory",
        "1g",
        "--memory-swap",
        "1g",
        "--cpus",
        "1",
        "--read-only",
        "--tmpfs",
        "/tmp:rw,nosuid,nodev,size=67108864,mode=1777",
        "--network",
        "none",
        "--ulimit",
        "nofile=1024:1024",
        "-e",
        "HOME=/tmp",
        "-w",
        "/workspace",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        "-v".to_string(),
        format!("{workspace}:/workspace:rw"),
        "--entrypoint".to_string(),
        "sleep".to_string(),
        image.to_string(),
        "infinity".to_string(),
    ])
    .collect()
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bench())
}

async fn bench() -> anyhow::Result<()> {
    let engine = Engine::connect().await?;
    let runtimes = RuntimeSet::builtin()?;
    let python = runtimes.require("python-minimal")?.clone();
    let ca_file = std::env::var_os(sandpit::config::CA_FILE_ENV)
        .map(PathBuf::from)
        .or_else(|| {
            Some(PathBuf::from("/etc/ssl/certs/ca-certificates.crt")).filter(|p| p.is_file())
        });
    let image = engine
        .build_runtime(
            &python,
            &BuildOptions {
                ca_file,
                force: false,
            },
            &mut |_| {},
        )
        .await?;
    let root = tempfile::tempdir()?;
    let workspace = root.path().join("ws");
    std::fs::create_dir_all(&workspace)?;
    std::os::unix::fs::chown(&workspace, Some(1000), Some(1000))?;
    let workspace_str = workspace.display().to_string();
    println!(
        "engine {} · image {image}",
        engine.info().await?.engine_version
    );

    // 1. Create through to the first command done.
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for i in 0..CREATE_RUNS {
        let user = UserId::parse(&format!("bench-create-{i}")).map_err(anyhow::Error::msg)?;
        let spec = SandboxSpec {
            user: user.clone(),
            runtime: python.clone(),
            image: image.clone(),
            workspace: workspace.clone(),
            policy: SandboxPolicy::default(),
        };
        let started = Instant::now();
        let sandbox = engine.create_sandbox(&spec).await?;
        let result = sandbox.exec_collect(ExecRequest::argv(["true"])).await?;
        ours.push(started.elapsed());
        assert_eq!(result.exit_code, Some(0));
        sandbox.remove(false).await?;

        let name = format!("bench-docker-create-{i}");
        let args = hardened_run_args(&name, &workspace_str, &image);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let started = Instant::now();
        docker(&args);
        docker(&["exec", &name, "true"]);
        theirs.push(started.elapsed());
        docker(&["rm", "-f", &name]);
    }
    report("create -> first command done", ours, theirs);

    // A long-lived pair for the exec figures.
    let user = UserId::parse("bench-exec").map_err(anyhow::Error::msg)?;
    if let Some(old) = engine.find_sandbox(&user).await? {
        old.remove(false).await?;
    }
    let sandbox = engine
        .create_sandbox(&SandboxSpec {
            user,
            runtime: python.clone(),
            image: image.clone(),
            workspace: workspace.clone(),
            policy: SandboxPolicy::default(),
        })
        .await?;
    let docker_name = "bench-docker-exec";
    let _ = Command::new("docker")
        .args(["rm", "-f", docker_name])
        .output();
    let args = hardened_run_args(docker_name, &workspace_str, &image);
    docker(&args.iter().map(String::as_str).collect::<Vec<_>>());

    // The same sandbox through each transport: the runner (the default for
    // a new sandbox) and the engine's exec.
    let engine_exec = sandbox
        .clone()
        .with_transport(Arc::new(EngineExec::new(engine.clone())));
    assert_eq!(sandbox.transport_info().name, "runner");
    let transports = [("runner", &sandbox), ("engine exec", &engine_exec)];

    for (name, runs, argv) in [
        ("exec `true`", EXEC_RUNS, vec!["true"]),
        (
            "python hello world",
            PYTHON_RUNS,
            vec!["python3", "-c", "print('hello world')"],
        ),
    ] {
        for (transport, target) in transports {
            // One warm-up each, so no side pays first-use costs (the
            // runner's start) in the figures.
            target.exec_collect(ExecRequest::argv(argv.clone())).await?;
            let mut samples = Vec::new();
            for _ in 0..runs {
                let started = Instant::now();
                let result = target.exec_collect(ExecRequest::argv(argv.clone())).await?;
                samples.push(started.elapsed());
                assert_eq!(result.exit_code, Some(0), "{}", result.stderr_text());
            }
            line(name, transport, samples);
        }
        docker(&[&["exec", docker_name][..], &argv[..]].concat());
        let samples = (0..runs)
            .map(|_| docker(&[&["exec", docker_name][..], &argv[..]].concat()))
            .collect();
        line(name, "docker exec", samples);
    }

    // A 1 KiB file written, then read back.
    let kib: Vec<u8> = (0..1024).map(|i| (i % 251) as u8).collect();
    for (transport, target) in transports {
        target.write_file("bench-1k.bin", kib.clone()).await?;
        let (mut writes, mut reads) = (Vec::new(), Vec::new());
        for _ in 0..FILE_RUNS {
            let started = Instant::now();
            target.write_file("bench-1k.bin", kib.clone()).await?;
            writes.push(started.elapsed());
            let started = Instant::now();
            let read = target.read_file("bench-1k.bin", 1 << 20).await?;
            reads.push(started.elapsed());
            assert_eq!(read.bytes, kib);
        }
        line("write a 1 KiB file", transport, writes);
        line("read a 1 KiB file", transport, reads);
    }

    // 1 GB of stdout, kept whole by sandpit, dropped by the docker CLI.
    let gigabyte: usize = 1_000_000_000;
    let flood = ["head", "-c", "1000000000", "/dev/zero"];
    for (transport, target) in transports {
        let mut samples = Vec::new();
        for _ in 0..THROUGHPUT_RUNS {
            let started = Instant::now();
            let result = target
                .exec_collect(ExecRequest::argv(flood).output_cap(gigabyte + 1))
                .await?;
            samples.push(started.elapsed());
            assert_eq!(result.exit_code, Some(0), "{}", result.stderr_text());
            assert_eq!(result.stdout_bytes, gigabyte as u64);
        }
        throughput_line("1 GB of stdout", transport, samples, gigabyte);
    }
    let mut samples = Vec::new();
    for _ in 0..THROUGHPUT_RUNS {
        let started = Instant::now();
        let status = Command::new("docker")
            .args([&["exec", docker_name][..], &flood[..]].concat())
            .stdout(std::process::Stdio::null())
            .status()?;
        samples.push(started.elapsed());
        assert!(status.success());
    }
    throughput_line("1 GB of stdout", "docker exec", samples, gigabyte);
    sandbox.remove(false).await?;
    docker(&["rm", "-f", docker_name]);
    Ok(())
}
