//! Background processes from the CLI: `exec --background`, `ps`, `logs`,
//! `kill`. They need the sandbox's runner; a sandbox without one is named
//! with what to do.

use std::io::Write as _;
use std::time::Duration;

use crate::engine::exec::{ExecRequest, Stream};
use crate::engine::runner::background::MAX_READ;
use crate::engine::sandbox::{Sandbox, UserId};

use super::Context;

/// How often `logs --follow` looks for new output.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Starts `request` in the background and prints its id (JSON with `json`).
pub async fn start(sandbox: &Sandbox, request: ExecRequest, json: bool) -> anyhow::Result<i32> {
    let id = sandbox.start_background(request).await?;
    let user = sandbox.user();
    if json {
        println!("{}", serde_json::json!({ "id": id }));
    } else {
        println!("{id}");
        eprintln!(
            "sandpit: background process {id} started; `sandpit logs {user} {id}` shows its output, `sandpit kill {user} {id}` stops it"
        );
    }
    Ok(0)
}

/// `sandpit ps USER`: the sandbox's background processes.
pub async fn ps(context: &Context, user: &UserId, json: bool) -> anyhow::Result<i32> {
    let sandbox = context.sessions().await?.get(user).await?;
    let list = sandbox.list_background().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    println!(
        "{:>6} {:>7} {:<12} {:<20} COMMAND",
        "ID", "PID", "STATE", "STARTED"
    );
    for bg in &list {
        let state = match (bg.running, bg.exit_code) {
            (true, _) => "running".to_string(),
            (false, Some(code)) => format!("exited {code}"),
            (false, None) => "ended".to_string(),
        };
        let started =
            crate::units::utc_datetime(i64::try_from(bg.started_unix_ms).unwrap_or(i64::MAX));
        println!(
            "{:>6} {:>7} {:<12} {:<20} {}",
            bg.id,
            bg.pid,
            state,
            started,
            bg.argv.join(" ")
        );
    }
    Ok(0)
}

/// `sandpit logs USER ID`: a background process's output so far (what its
/// ring buffers still hold), stdout to stdout and stderr to stderr; with
/// `follow`, until it ends.
pub async fn logs(context: &Context, user: &UserId, id: u64, follow: bool) -> anyhow::Result<i32> {
    let sandbox = context.sessions().await?.get(user).await?;
    let mut offsets = [0u64; 2];
    loop {
        let mut got = false;
        for (index, stream) in [Stream::Stdout, Stream::Stderr].into_iter().enumerate() {
            loop {
                let chunk = sandbox
                    .background_output(id, stream, offsets[index], MAX_READ)
                    .await?;
                if chunk.dropped_before > offsets[index] {
                    eprintln!(
                        "sandpit: {} bytes of {} were overwritten before they were read",
                        chunk.dropped_before - offsets[index],
                        match stream {
                            Stream::Stdout => "stdout",
                            Stream::Stderr => "stderr",
                        }
                    );
                }
                if chunk.data.is_empty() || chunk.next_offset <= offsets[index] {
                    offsets[index] = offsets[index].max(chunk.next_offset);
                    break;
                }
                got = true;
                offsets[index] = chunk.next_offset;
                match stream {
                    Stream::Stdout => {
                        let mut out = std::io::stdout().lock();
                        out.write_all(&chunk.data)?;
                        out.flush()?;
                    }
                    Stream::Stderr => {
                        let mut err = std::io::stderr().lock();
                        err.write_all(&chunk.data)?;
                        err.flush()?;
                    }
                }
            }
        }
        if !follow || got {
            if !follow {
                return Ok(0);
            }
            continue;
        }
        // Nothing new: done once the process ended (and all was read).
        let running = sandbox
            .list_background()
            .await?
            .iter()
            .any(|bg| bg.id == id && bg.running);
        if !running {
            return Ok(0);
        }
        tokio::time::sleep(FOLLOW_POLL).await;
    }
}

/// `sandpit kill USER ID`: kills a background process's whole tree.
pub async fn kill(context: &Context, user: &UserId, id: u64) -> anyhow::Result<i32> {
    let sandbox = context.sessions().await?.get(user).await?;
    sandbox.stop_background(id).await?;
    eprintln!("sandpit: background process {id} of `{user}` stopped");
    Ok(0)
}
