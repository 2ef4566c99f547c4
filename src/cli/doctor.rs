use std::collections::BTreeSet;

use crate::engine::images::{self, ImageState};
use crate::engine::oci::{self, OciRuntime};
use crate::engine::policy::SandboxPolicy;
use crate::engine::runtimes::ImageSource;
use crate::engine::{EngineInfo, engine_host};

use super::{Context, connect};

#[derive(serde::Serialize)]
struct Report {
    engine: Result<EngineInfo, String>,
    base_images: Vec<Presence>,
    runtimes: Vec<RuntimeImage>,
    /// The OCI runtimes the engine offers (runc, runsc, ...).
    oci_runtimes: Vec<OciRuntime>,
    build_ca_file: Option<String>,
    disk_quota: DiskQuota,
    problems: Vec<String>,
}

/// Whether workspace size limits hold on this host, and how.
#[derive(serde::Serialize)]
struct DiskQuota {
    enforced: bool,
    /// How they are enforced, or why they are not.
    detail: String,
}

fn disk_quota(problems: &mut Vec<String>) -> DiskQuota {
    use crate::engine::quota;
    if let Some(reason) = quota::hard_limit_unavailable() {
        problems.push(format!("workspace size limits are NOT ENFORCED: {reason}"));
        return DiskQuota {
            enforced: false,
            detail: reason,
        };
    }
    if let Some(missing) = quota::tools_missing() {
        problems.push(format!("workspace size limits cannot be set up: {missing}"));
        return DiskQuota {
            enforced: false,
            detail: missing,
        };
    }
    DiskQuota {
        enforced: true,
        detail: "each workspace is its own ext4 image on a loop device (<workspace_root>/.sandpit/disks)".to_string(),
    }
}

#[derive(serde::Serialize)]
struct Presence {
    image: String,
    present: bool,
}

#[derive(serde::Serialize)]
struct RuntimeImage {
    runtime: String,
    image: String,
    state: ImageState,
}

pub async fn doctor(context: &Context, json: bool) -> anyhow::Result<i32> {
    let mut problems = Vec::new();
    let build_ca_file = context.config.build.ca_file.as_ref().map(|path| {
        if !path.is_file() {
            problems.push(format!("build CA file {} does not exist", path.display()));
        }
        path.display().to_string()
    });
    let disk_quota = disk_quota(&mut problems);
    let mut report = Report {
        engine: Err(String::new()),
        base_images: Vec::new(),
        runtimes: Vec::new(),
        oci_runtimes: Vec::new(),
        build_ca_file,
        disk_quota,
        problems: Vec::new(),
    };
    match connect().await {
        Err(err) => {
            problems.push(format!("{err:#}"));
            report.engine = Err(format!("no answer from {}", engine_host()));
        }
        Ok(engine) => {
            report.engine = engine.info().await.map_err(|err| format!("{err:#}"));
            match engine.oci_runtimes().await {
                Ok(runtimes) => report.oci_runtimes = runtimes,
                Err(err) => problems.push(format!("{err:#}")),
            }
            // Every OCI runtime the configuration asks for must be offered,
            // with the network each runtime's policy gives its sandboxes.
            let wanted: BTreeSet<(String, String, i64)> = context
                .runtimes
                .iter()
                .filter_map(|runtime| {
                    SandboxPolicy::resolve([&context.config.sandbox, &runtime.sandbox]).ok()
                })
                .filter_map(|policy| Some((policy.oci_runtime?, policy.network, policy.pids_limit)))
                .collect();
            for (name, network, pids_limit) in wanted {
                if !report.oci_runtimes.is_empty()
                    && let Err(problem) =
                        oci::check_offered(&report.oci_runtimes, &name, &network, pids_limit)
                {
                    problems.push(format!("configured {problem}"));
                }
            }
            let bases: BTreeSet<&str> = context
                .runtimes
                .iter()
                .filter_map(|runtime| match &runtime.source {
                    ImageSource::Build { base_image } => Some(base_image.as_str()),
                    ImageSource::Prebuilt { .. } => None,
                })
                .collect();
            for base in bases {
                let present = engine.image_exists(base).await?;
                if !present {
                    problems.push(format!(
                        "base image {base} is missing: it is pulled on the first build, or, without a registry, created by scripts/offline-base-image"
                    ));
                }
                report.base_images.push(Presence {
                    image: base.to_string(),
                    present,
                });
            }
            for runtime in context.runtimes.iter() {
                report.runtimes.push(RuntimeImage {
                    runtime: runtime.name.clone(),
                    image: images::image_ref(runtime),
                    state: engine.image_state(runtime).await?,
                });
            }
        }
    }
    let engine_ok = report.engine.is_ok();
    report.problems = problems;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(if engine_ok { 0 } else { 1 })
}

fn print_report(report: &Report) {
    match &report.engine {
        Ok(info) => println!(
            "engine      ok: Docker {} (API {}, sandpit speaks {}) at {}, {}/{}",
            info.engine_version,
            info.api_version,
            info.negotiated_api_version,
            info.host,
            info.os,
            info.arch
        ),
        Err(err) => println!("engine      NOT ANSWERING: {err}"),
    }
    for base in &report.base_images {
        println!(
            "base image  {}: {}",
            base.image,
            if base.present { "present" } else { "missing" }
        );
    }
    for runtime in &report.runtimes {
        println!(
            "runtime     {:<20} {:<7} {}",
            runtime.runtime,
            runtime.state.as_str(),
            runtime.image
        );
    }
    for runtime in &report.oci_runtimes {
        println!(
            "OCI runtime {:<20} {}{}{}",
            runtime.name,
            runtime.path,
            if runtime.args.is_empty() {
                String::new()
            } else {
                format!(" {}", runtime.args.join(" "))
            },
            if runtime.default { " (default)" } else { "" }
        );
    }
    if !report.oci_runtimes.is_empty() && !report.oci_runtimes.iter().any(|r| r.name == oci::GVISOR)
    {
        println!(
            "gVisor      not offered: to use oci_runtime = \"{}\", {}",
            oci::GVISOR,
            oci::how_to_add(oci::GVISOR)
        );
    }
    println!(
        "build CA    {}",
        report
            .build_ca_file
            .as_deref()
            .unwrap_or("not set (builds use the image's own CAs)")
    );
    println!(
        "disk quota  {}: {}",
        if report.disk_quota.enforced {
            "enforced"
        } else {
            "NOT ENFORCED"
        },
        report.disk_quota.detail
    );
    for problem in &report.problems {
        println!("problem     {problem}");
    }
}
