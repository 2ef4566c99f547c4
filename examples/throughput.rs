//! A quick stdout throughput check (issue 10's 1 GB target, smaller):
//! one sandbox, `head -c N /dev/zero` through the runner and through the
//! engine's exec, several runs each, MB/s and this process's CPU time per
//! run. `cargo run --release --example throughput [MB] [runs]`.

use std::sync::Arc;
use std::time::Instant;

use sandpit::engine::Engine;
use sandpit::engine::exec::{EngineExec, ExecRequest};
use sandpit::engine::images::BuildOptions;
use sandpit::engine::policy::SandboxPolicy;
use sandpit::engine::runtimes::RuntimeSet;
use sandpit::engine::sandbox::{SandboxSpec, UserId};

/// User + system CPU time of this process, in seconds (clock ticks of
/// 1/100 s, from /proc/self/stat).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let megabytes: usize = args.first().map_or(Ok(300), |a| a.parse())?;
    let runs: usize = args.get(1).map_or(Ok(3), |a| a.parse())?;
    let only: Option<String> = args.get(2).cloned();
    let bytes = megabytes * 1_000_000;
    let engine = Engine::connect().await?;
    let runtimes = RuntimeSet::builtin()?;
    let python = runtimes.require("python-minimal")?.clone();
    let image = engine
        .build_runtime(
            &python,
            &BuildOptions {
                ca_file: None,
                force: false,
            },
            &mut |_| {},
        )
        .await?;
    let root = tempfile::tempdir()?;
    let workspace = root.path().join("ws");
    std::fs::create_dir_all(&workspace)?;
    std::os::unix::fs::chown(&workspace, Some(1000), Some(1000))?;
    let user = UserId::parse("throughput-check").map_err(anyhow::Error::msg)?;
    if let Some(old) = engine.find_sandbox(&user).await? {
        old.remove(false).await?;
    }
    let sandbox = engine
        .create_sandbox(&SandboxSpec {
            user,
            runtime: python,
            image,
            workspace,
            policy: SandboxPolicy::default(),
        })
        .await?;
    let engine_exec = sandbox
        .clone()
        .with_transport(Arc::new(EngineExec::new(engine.clone())));
    let count = bytes.to_string();
    let flood = ["head", "-c", count.as_str(), "/dev/zero"];
    // The sandbox's CPU time (cgroup v1 cpuacct, in ns), when readable.
    let id = std::process::Command::new("docker")
        .args(["inspect", "-f", "{{.Id}}", sandbox.container_name()])
        .output()?;
    let usage_path = format!(
        "/sys/fs/cgroup/cpuacct/docker/{}/cpuacct.usage",
        String::from_utf8_lossy(&id.stdout).trim()
    );
    let sandbox_cpu = || {
        std::fs::read_to_string(&usage_path)
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .map_or(0.0, |ns| ns / 1e9)
    };
    let transports = [("runner", &sandbox), ("engine exec", &engine_exec)];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); transports.len()];
    for (_, target) in transports {
        target.exec_collect(ExecRequest::argv(["true"])).await?;
    }
    // Alternating runs, so both transports see the same load.
    for _ in 0..runs {
        for (i, (name, target)) in transports.iter().enumerate() {
            if only.as_deref().is_some_and(|o| o != *name) {
                continue;
            }
            let cpu = cpu_seconds();
            let inside = sandbox_cpu();
            let started = Instant::now();
            let result = target
                .exec_collect(ExecRequest::argv(flood).output_cap(bytes + 1))
                .await?;
            let elapsed = started.elapsed().as_secs_f64();
            let cpu = cpu_seconds() - cpu;
            let inside = sandbox_cpu() - inside;
            assert_eq!(result.stdout_bytes, bytes as u64);
            let rate = bytes as f64 / elapsed / 1e6;
            rates[i].push(rate);
            println!(
                "{name:<12} {rate:>7.0} MB/s  ({elapsed:.2} s, host CPU {cpu:.2} s, sandbox CPU {inside:.2} s)"
            );
        }
    }
    for (i, (name, _)) in transports.iter().enumerate() {
        let mut r = rates[i].clone();
        r.sort_by(f64::total_cmp);
        if let Some(median) = r.get(r.len() / 2) {
            println!("median {name:<12} {median:>7.0} MB/s");
        }
    }
    sandbox.remove(false).await?;
    Ok(())
}
