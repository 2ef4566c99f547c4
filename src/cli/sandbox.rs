use futures_util::StreamExt as _;

use crate::engine::policy::PolicyOverrides;
use crate::engine::sandbox::UserId;
use crate::engine::stats::StatsSample;

use super::Context;
use super::build::build_progress;
use crate::units::{disk_text, human_bytes};

pub async fn new(
    context: &Context,
    user: &UserId,
    runtime: Option<&str>,
    overrides: &PolicyOverrides,
) -> anyhow::Result<i32> {
    let sessions = context.sessions().await?;
    let existed = sessions.engine().find_sandbox(user).await?.is_some();
    if existed && *overrides != PolicyOverrides::default() {
        eprintln!(
            "sandpit: `{user}` already has a sandbox; the policy flags given apply only to a new one (`sandpit rm {user}` first to change them)"
        );
    }
    let sandbox = sessions
        .get_or_create(user, runtime, overrides, &mut build_progress())
        .await?;
    let details = sandbox.inspect_with_usage().await?;
    println!(
        "{}: {} ({}), workspace {} ({})",
        user,
        details.name,
        details.info.runtime,
        details.info.workspace,
        disk_text(details.disk.as_ref())
    );
    if let Some(note) = details.disk.as_ref().and_then(|disk| disk.note.as_ref()) {
        eprintln!("sandpit: workspace disk: {note}");
    }
    Ok(0)
}

pub async fn lifecycle(context: &Context, user: &UserId, action: &str) -> anyhow::Result<i32> {
    let sessions = context.sessions().await?;
    match action {
        "start" => sessions.start(user).await?,
        "stop" => sessions.stop(user).await?,
        _ => sessions.restart(user).await?,
    }
    println!(
        "{user}: {}",
        sessions.get(user).await?.inspect().await?.info.state
    );
    Ok(0)
}

pub async fn remove(context: &Context, user: &UserId, purge: bool) -> anyhow::Result<i32> {
    let sessions = context.sessions().await?;
    let workspace = sessions.get(user).await?.inspect().await?.info.workspace;
    sessions.destroy(user, purge).await?;
    if purge {
        println!("{user}: removed, workspace {workspace} deleted");
    } else {
        println!("{user}: removed, workspace {workspace} kept");
    }
    Ok(0)
}

pub async fn inspect(context: &Context, user: &UserId, json: bool) -> anyhow::Result<i32> {
    let details = context
        .sessions()
        .await?
        .get(user)
        .await?
        .inspect_with_usage()
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&details)?);
        return Ok(0);
    }
    let policy = &details.policy;
    let rows = [
        ("user", details.info.user.clone()),
        (
            "container",
            format!(
                "{} ({})",
                details.name,
                short_id(&details.info.container_id)
            ),
        ),
        ("state", details.info.state.clone()),
        ("runtime", details.info.runtime.clone()),
        ("image", details.info.image.clone()),
        (
            "workspace",
            format!("{} -> {}", details.info.workspace, details.work_dir),
        ),
        ("runs as", policy.user.clone()),
        (
            "memory",
            format!("{} (swap limit {})", policy.memory, policy.memory_swap),
        ),
        ("cpus", policy.cpus.to_string()),
        ("pids limit", policy.pids_limit.to_string()),
        ("network", policy.network.clone()),
        ("read-only root", policy.read_only.to_string()),
        ("/tmp", format!("tmpfs {}", policy.tmp_size)),
        ("open files", policy.nofile.to_string()),
        (
            "capabilities",
            if policy.cap_drop_all {
                "all dropped".into()
            } else {
                "engine default".into()
            },
        ),
        ("no-new-privileges", policy.no_new_privileges.to_string()),
        ("init", policy.init.to_string()),
        ("disk", disk_text(details.disk.as_ref())),
        (
            "OCI runtime",
            policy
                .oci_runtime
                .clone()
                .unwrap_or_else(|| "engine default".to_string()),
        ),
        (
            "exec transport",
            match &details.transport.reason {
                Some(reason) => format!("{} ({reason})", details.transport.name),
                None => details.transport.name.to_string(),
            },
        ),
    ];
    for (key, value) in rows {
        println!("{key:<18} {value}");
    }
    if let Some(disk) = &details.disk {
        if disk.limit.is_some() && !disk.enforced {
            println!("{:<18} NOT ENFORCED: writes are not limited", "disk limit");
        }
        if let Some(image) = &disk.image {
            let size = disk
                .image_size
                .map_or(String::new(), |size| format!(" ({})", human_bytes(size)));
            println!("{:<18} {image}{size}", "disk image");
        }
        if let Some(note) = &disk.note {
            println!("{:<18} {note}", "disk note");
        }
    }
    for volume in &policy.volumes {
        println!(
            "{:<18} {} -> {} ({})",
            "volume",
            volume.host,
            volume.container,
            if volume.read_only { "ro" } else { "rw" }
        );
    }
    Ok(0)
}

fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

pub async fn stats(
    context: &Context,
    user: &UserId,
    json: bool,
    follow: bool,
) -> anyhow::Result<i32> {
    let sessions = context.sessions().await?;
    let sandbox = sessions.get(user).await?;
    let mut samples = Box::pin(sessions.engine().stats_stream(sandbox.container_name()));
    if !json {
        println!("{:>7}  {:>21}  {:>5}", "CPU %", "MEMORY / LIMIT", "PIDS");
    }
    while let Some(sample) = samples.next().await {
        print_sample(&sample?, json)?;
        if !follow {
            break;
        }
    }
    Ok(0)
}

fn print_sample(sample: &StatsSample, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(sample)?);
    } else {
        println!(
            "{:>6.1}%  {:>21}  {:>5}",
            sample.cpu_percent,
            format!(
                "{} / {}",
                human_bytes(sample.memory_used),
                human_bytes(sample.memory_limit)
            ),
            sample.pids
        );
    }
    Ok(())
}
