//! `sandpit shell USER`: an interactive shell in the user's running sandbox
//! on this terminal (see [`crate::engine::shell`] and
//! [`crate::tui::handover`]).

use std::io::IsTerminal as _;

use crate::activity::{Activity, Source};
use crate::engine::sandbox::UserId;

use super::Context;

/// Runs the shell; the result is the shell's exit status, or sandpit's
/// (see [`crate::engine::shell::ShellExit::status_code`]).
///
/// Refused, before anything is asked of the engine, when stdin or stdout is
/// not a terminal: a shell needs one (`sandpit exec -i` pipes instead). The
/// sandbox is neither created nor started: a user without one, or with a
/// stopped one, is told what to run.
pub async fn shell(context: &Context, user: &UserId) -> anyhow::Result<i32> {
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        anyhow::bail!(
            "`sandpit shell` needs a terminal on stdin and stdout; without one, run commands with \
             `sandpit exec --user {user} -i -- sh`"
        );
    }
    let sessions = context.sessions().await?;
    let Some(sandbox) = sessions.engine().find_sandbox(user).await? else {
        anyhow::bail!("user `{user}` has no sandbox: create one with `sandpit new {user}`");
    };
    // An open shell is use, for the idle reaper; so is its end.
    sessions.touch(user)?;
    let log = context.cli_activity_log()?;
    let activity = Activity::new(Source::Cli, user, "shell", "interactive");
    let started = std::time::Instant::now();
    let exit = crate::tui::handover::run_shell(&sandbox).await;
    let released = sessions.release(user);
    log.record_async(crate::tui::handover::shell_activity(
        activity, &exit, started,
    ))
    .await;
    let exit = exit?;
    released?;
    if let Some(reason) = exit.reason(sandbox.container_name()) {
        eprintln!("sandpit: {reason}");
    }
    Ok(i32::try_from(exit.status_code()).unwrap_or(1))
}
