use std::io::Write as _;
use std::time::Instant;

use anyhow::Context as _;

use crate::engine::images::{self, BuildEvent, BuildOptions};
use crate::engine::runtimes::Runtime;

use super::{Context, connect};

pub async fn build(
    context: &Context,
    names: &[String],
    all: bool,
    force: bool,
) -> anyhow::Result<i32> {
    let selected: Vec<&Runtime> = if all {
        context.runtimes.iter().collect()
    } else {
        names
            .iter()
            .map(|name| context.runtimes.require(name))
            .collect::<anyhow::Result<_>>()?
    };
    let engine = connect().await?;
    let options = BuildOptions {
        ca_file: context.config.build.ca_file.clone(),
        force,
    };
    let mut failed = Vec::new();
    for runtime in selected {
        let started = Instant::now();
        eprintln!("==> {} ({})", runtime.name, images::image_ref(runtime));
        let mut cached = false;
        let mut progress = build_progress();
        let mut on_event = |event: BuildEvent| {
            if matches!(event, BuildEvent::Cached { .. }) {
                cached = true;
            }
            progress(event);
        };
        match engine.build_runtime(runtime, &options, &mut on_event).await {
            Ok(tag) => {
                let verb = if cached { "up to date" } else { "built" };
                println!(
                    "{}: {verb} {tag} in {:.1}s",
                    runtime.name,
                    started.elapsed().as_secs_f64()
                );
            }
            Err(err) => {
                eprintln!("error: {err:#}");
                failed.push(runtime.name.clone());
            }
        }
    }
    if failed.is_empty() {
        Ok(0)
    } else {
        eprintln!("failed: {}", failed.join(", "));
        Ok(1)
    }
}

pub async fn prune(context: &Context) -> anyhow::Result<i32> {
    let engine = connect().await?;
    let current: Vec<String> = context.runtimes.iter().map(images::image_ref).collect();
    let removed = engine
        .prune_images(&current)
        .await
        .context("cannot prune sandpit images")?;
    for name in &removed {
        println!("removed {name}");
    }
    println!("{} image(s) removed", removed.len());
    // Runner volumes of other sandpit builds that no sandbox uses any more.
    let current =
        crate::engine::runner::volume::volume_name(crate::engine::runner::binary::RUNNER_BINARY);
    let volumes = engine
        .prune_runner_volumes(&current)
        .await
        .context("cannot prune runner volumes")?;
    for name in &volumes {
        println!("removed {name}");
    }
    println!("{} runner volume(s) or helper(s) removed", volumes.len());
    Ok(0)
}

/// Prints build progress to stderr, so stdout stays the command's own.
pub(super) fn build_progress() -> impl FnMut(BuildEvent) + Send {
    |event| {
        let mut stderr = std::io::stderr().lock();
        let _ = match event {
            BuildEvent::Pull { image, status } => writeln!(stderr, "    pull {image}: {status}"),
            BuildEvent::Log(line) => writeln!(stderr, "    {line}"),
            BuildEvent::Cached { .. } | BuildEvent::Built { .. } => Ok(()),
        };
    }
}
