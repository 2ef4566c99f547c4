use crate::engine::images::{self, ImageState};
use crate::engine::runtimes::{ImageSource, Origin};

use super::{Context, connect};

#[derive(serde::Serialize)]
struct RuntimeRow<'a> {
    name: &'a str,
    language: &'a str,
    description: &'a str,
    image: String,
    /// built, stale or missing; absent when the engine does not answer
    state: Option<ImageState>,
    origin: &'a Origin,
    source: &'a ImageSource,
}

pub async fn list(context: &Context, json: bool) -> anyhow::Result<i32> {
    // The list is useful without an engine too: show definitions, and say why
    // states are unknown.
    let engine = connect().await;
    let mut rows = Vec::with_capacity(context.runtimes.len());
    for runtime in context.runtimes.iter() {
        let state = match &engine {
            Ok(engine) => Some(engine.image_state(runtime).await?),
            Err(_) => None,
        };
        rows.push(RuntimeRow {
            name: &runtime.name,
            language: runtime.language.as_str(),
            description: &runtime.description,
            image: images::image_ref(runtime),
            state,
            origin: &runtime.origin,
            source: &runtime.source,
        });
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        let name_width = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
        let image_width = rows.iter().map(|r| r.image.len()).max().unwrap_or(5).max(5);
        println!(
            "{:<name_width$}  {:<8}  {:<7}  {:<image_width$}  DESCRIPTION",
            "NAME", "LANGUAGE", "STATE", "IMAGE"
        );
        for row in &rows {
            println!(
                "{:<name_width$}  {:<8}  {:<7}  {:<image_width$}  {}",
                row.name,
                row.language,
                row.state.map_or("unknown", ImageState::as_str),
                row.image,
                row.description
            );
        }
    }
    if let Err(err) = engine {
        eprintln!("note: image states are unknown: {err:#}");
    }
    Ok(0)
}
