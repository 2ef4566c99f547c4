use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;

use anyhow::{Context as _, bail};

use crate::activity::{Activity, Source};
use crate::engine::files::EntryKind;
use crate::engine::sandbox::UserId;

use super::{Context, FilesOp};

/// The activity log's name for an operation, and its paths in escaped form.
fn describe(op: &FilesOp) -> (&'static str, String) {
    match op {
        FilesOp::Ls { path, .. } => ("files.ls", path.to_string()),
        FilesOp::Cat { path, .. } => ("files.cat", path.to_string()),
        FilesOp::Put { local, path } => (
            "files.put",
            match path {
                Some(path) => format!("{} -> {path}", local.display()),
                None => local.display().to_string(),
            },
        ),
        FilesOp::Rm { path } => ("files.rm", path.to_string()),
        FilesOp::Mv { from, to } => ("files.mv", format!("{from} -> {to}")),
        FilesOp::Mkdir { path } => ("files.mkdir", path.to_string()),
    }
}

/// Runs one file operation, recording it in the activity log (a failure of
/// the log never fails the operation).
pub async fn files(context: &Context, user: &UserId, op: FilesOp) -> anyhow::Result<i32> {
    let (action, summary) = describe(&op);
    let started = std::time::Instant::now();
    let outcome = carry_out(context, user, op).await;
    context
        .cli_activity_log()?
        .record_async(Activity::new(Source::Cli, user, action, &summary).finish(&outcome, started))
        .await;
    outcome.map(|()| 0)
}

async fn carry_out(context: &Context, user: &UserId, op: FilesOp) -> anyhow::Result<()> {
    let sessions = context.sessions().await?;
    let sandbox = sessions.get(user).await?;
    match op {
        FilesOp::Ls { path, json } => {
            let entries = sandbox.list_dir(&path.0).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
            } else {
                for entry in entries {
                    let kind = match entry.kind {
                        EntryKind::Dir => "dir",
                        EntryKind::File => "file",
                        EntryKind::Symlink => "link",
                        EntryKind::Other => "other",
                    };
                    println!("{kind:<5} {:>10}  {}", entry.size, entry.display_name());
                }
            }
        }
        FilesOp::Cat {
            path,
            output,
            max_size,
        } => {
            let data = sandbox.read_file(&path.0, max_size).await?;
            match output {
                Some(local) => std::fs::write(&local, &data.bytes)
                    .with_context(|| format!("cannot write {}", local.display()))?,
                None if data.binary => bail!(
                    "`{path}` is a binary file ({} bytes); use --output FILE to save it",
                    data.bytes.len()
                ),
                None => {
                    let mut stdout = std::io::stdout().lock();
                    stdout.write_all(&data.bytes)?;
                    stdout.flush()?;
                }
            }
        }
        FilesOp::Put { local, path } => {
            let contents = std::fs::read(&local)
                .with_context(|| format!("cannot read {}", local.display()))?;
            let path = match path {
                Some(path) => path.0,
                // Unix file names are bytes: any name can be copied as is.
                None => local
                    .file_name()
                    .map(|name| name.as_bytes().to_vec())
                    .ok_or_else(|| {
                        anyhow::anyhow!("{} has no file name to copy to", local.display())
                    })?,
            };
            sandbox.write_file(&path, contents).await?;
        }
        FilesOp::Rm { path } => sandbox.delete(&path.0).await?,
        FilesOp::Mv { from, to } => sandbox.rename(&from.0, &to.0).await?,
        FilesOp::Mkdir { path } => sandbox.make_dir(&path.0).await?,
    }
    sessions.release(user)?;
    Ok(())
}
