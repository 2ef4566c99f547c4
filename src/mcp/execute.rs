//! `execute`: one shell command, its output streamed as MCP progress
//! notifications when the client asked for them, its whole process tree
//! killed when the request is cancelled or times out.

use std::time::Duration;

use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::{Peer, RoleServer};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::engine::exec::{ExecEvent, ExecRequest};
use crate::engine::sandbox::Sandbox;

use super::ToolOutcome;
use super::text::{self, Ending};
use super::tools::ExecuteParams;

/// Bytes captured per stream before a command is stopped: the reference's
/// run ceiling. The model sees at most 100,000 of them.
pub const CAPTURE_CAP: usize = 10 << 20;

/// Where to send live output, when the client sent a progress token.
pub struct Progress {
    pub peer: Peer<RoleServer>,
    pub token: ProgressToken,
}

/// The timeout a call gets: its own (`None` means none asked for) held to
/// the operator's maximum. Zero or negative is the model's mistake.
pub fn clamp_timeout(asked: Option<i64>, max: Duration) -> Result<Duration, String> {
    match asked {
        None => Ok(max),
        Some(seconds) if seconds <= 0 => Err(format!(
            "Error: timeout must be a positive number of seconds, got {seconds}"
        )),
        Some(seconds) => Ok(Duration::from_secs(seconds.unsigned_abs()).min(max)),
    }
}

/// `execute`: runs `sh -c command` with the clamped timeout; the answer is
/// the reference's text, with the exit code and flags for the activity log.
pub async fn execute(
    sandbox: &Sandbox,
    params: ExecuteParams,
    max_timeout: Duration,
    progress: Option<Progress>,
    cancel: CancellationToken,
) -> ToolOutcome {
    let timeout = match clamp_timeout(params.timeout, max_timeout) {
        Ok(timeout) => timeout,
        Err(message) => return ToolOutcome::tool_error(message),
    };
    let request = ExecRequest::shell(params.command)
        .timeout(timeout)
        .output_cap(CAPTURE_CAP);
    let (events, forwarder) = match progress {
        Some(progress) => {
            let (sender, receiver) = mpsc::channel::<ExecEvent>(64);
            (
                Some(sender),
                Some(tokio::spawn(forward_progress(progress, receiver))),
            )
        }
        None => (None, None),
    };
    let result = sandbox.exec(request, events, cancel).await;
    if let Some(forwarder) = forwarder {
        // Every chunk is announced before the result, which ends the request.
        let _ = forwarder.await;
    }
    let result = match result {
        Ok(result) => result,
        // The reference reports a workspace that cannot run the command as
        // a failed command the model can read.
        Err(err) => {
            let mut outcome = ToolOutcome::text(text::execute(
                "",
                &format!("Error: {err:#}"),
                Ending::Exited(1),
            ));
            outcome.exit_code = Some(1);
            return outcome;
        }
    };
    let ending = if result.timed_out {
        Ending::TimedOut
    } else if result.truncated {
        Ending::OutputLimit
    } else {
        Ending::Exited(result.status_code())
    };
    let mut outcome = ToolOutcome::text(text::execute(
        &result.stdout_text(),
        &result.stderr_text(),
        ending,
    ));
    outcome.exit_code = Some(result.status_code());
    outcome.stdout_bytes = result.stdout_bytes;
    outcome.stderr_bytes = result.stderr_bytes;
    outcome.flags = crate::activity::ActivityFlags::from(&result);
    outcome
}

/// Sends each chunk of output as a progress notification: `progress` is
/// the bytes seen so far (so it only grows), `message` the chunk's text.
async fn forward_progress(progress: Progress, mut events: mpsc::Receiver<ExecEvent>) {
    let mut seen: u64 = 0;
    while let Some(event) = events.recv().await {
        seen += event.data.len() as u64;
        let message = String::from_utf8_lossy(&event.data).into_owned();
        let param = ProgressNotificationParam::new(progress.token.clone(), seen as f64)
            .with_message(message);
        if let Err(err) = progress.peer.notify_progress(param).await {
            // A client that went away only loses the live view.
            tracing::debug!("cannot send progress: {err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_clamped() {
        let max = Duration::from_secs(600);
        assert_eq!(clamp_timeout(Some(120), max), Ok(Duration::from_secs(120)));
        assert_eq!(clamp_timeout(Some(3600), max), Ok(max));
        assert_eq!(clamp_timeout(None, max), Ok(max));
        assert!(clamp_timeout(Some(0), max).is_err());
        assert!(clamp_timeout(Some(-5), max).is_err());
    }
}
