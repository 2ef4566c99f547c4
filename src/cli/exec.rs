use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::engine::exec::{ExecEvent, ExecRequest, Stream};
use crate::engine::policy::PolicyOverrides;
use crate::engine::runtimes::run_command;
use crate::engine::sandbox::{Sandbox, UserId};

use super::Context;
use super::build::build_progress;

/// Exit status after Ctrl-C, as shells report SIGINT.
const CANCELLED_EXIT_CODE: i32 = 130;

pub struct ExecOptions {
    pub runtime: Option<String>,
    pub timeout: Option<f64>,
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    pub output_cap: Option<usize>,
    pub shell: bool,
    pub policy: PolicyOverrides,
}

pub async fn exec(
    context: &Context,
    user: &UserId,
    options: &ExecOptions,
    command: Vec<String>,
) -> anyhow::Result<i32> {
    let sessions = context.sessions().await?;
    let sandbox = sessions
        .get_or_create(
            user,
            options.runtime.as_deref(),
            &options.policy,
            &mut build_progress(),
        )
        .await?;
    let mut request = if options.shell {
        ExecRequest::shell(command.join(" "))
    } else {
        ExecRequest::argv(command)
    };
    request.timeout = parse_timeout(options.timeout)?;
    request.env = options.env.clone();
    request.work_dir = options.workdir.clone();
    if let Some(cap) = options.output_cap {
        request.output_cap = cap;
    }
    let status = stream_exec(&sandbox, request).await;
    // A long command is use until its end, for the idle reaper.
    sessions.release(user)?;
    status
}

pub async fn run_file(
    context: &Context,
    user: &UserId,
    runtime: Option<&str>,
    timeout: Option<f64>,
    file: &Path,
) -> anyhow::Result<i32> {
    let contents =
        std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let name = file
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| anyhow::anyhow!("{} has no usable file name", file.display()))?
        .to_string();
    let sessions = context.sessions().await?;
    let sandbox = sessions
        .get_or_create(
            user,
            runtime,
            &PolicyOverrides::default(),
            &mut build_progress(),
        )
        .await?;
    let runtime_name = sandbox.inspect().await?.info.runtime;
    let runtime = context.runtimes.require(&runtime_name)?;
    sandbox.write_file(&name, contents).await?;
    let mut request = ExecRequest::shell(run_command(&runtime.run, &name));
    request.timeout = parse_timeout(timeout)?;
    let status = stream_exec(&sandbox, request).await;
    sessions.release(user)?;
    status
}

fn parse_timeout(seconds: Option<f64>) -> anyhow::Result<Option<Duration>> {
    seconds
        .map(|seconds| {
            Duration::try_from_secs_f64(seconds)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    anyhow::anyhow!("--timeout must be a positive number of seconds, got {seconds}")
                })
        })
        .transpose()
}

/// Runs a request, copying output live to this process's stdout and stderr.
/// Ctrl-C cancels it, killing its process tree.
async fn stream_exec(sandbox: &Sandbox, request: ExecRequest) -> anyhow::Result<i32> {
    let cap = request.output_cap;
    let (events, mut received) = mpsc::channel::<ExecEvent>(64);
    let cancel = CancellationToken::new();
    let on_interrupt = cancel.clone();
    // Ctrl-C, a terminal hang-up or a polite kill all end the command in
    // the sandbox too: a plain `docker exec` would leave it running.
    let interrupt = tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut terminate), Ok(mut hangup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            let _ = tokio::signal::ctrl_c().await;
            on_interrupt.cancel();
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
            _ = hangup.recv() => {}
        }
        on_interrupt.cancel();
    });
    let printer = tokio::spawn(async move {
        while let Some(event) = received.recv().await {
            let _ = match event.stream {
                Stream::Stdout => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&event.data).and_then(|()| out.flush())
                }
                Stream::Stderr => {
                    let mut err = std::io::stderr().lock();
                    err.write_all(&event.data).and_then(|()| err.flush())
                }
            };
        }
    });
    let result = sandbox.exec(request, Some(events), cancel).await;
    let _ = printer.await;
    interrupt.abort();
    let result = result?;
    let seconds = result.duration.as_secs_f64();
    if result.timed_out {
        eprintln!(
            "sandpit: timed out after {seconds:.1}s; every process of the command was killed"
        );
    }
    if result.truncated {
        eprintln!("sandpit: output passed {cap} bytes on one stream; the command was stopped");
    }
    if result.oom_killed {
        eprintln!("sandpit: killed by the sandbox's memory limit");
    }
    if result.sandbox_restarted {
        eprintln!("sandpit: the sandbox was restarted to stop the command's processes");
    }
    if result.cancelled {
        eprintln!("sandpit: interrupted; every process of the command was killed");
        return Ok(CANCELLED_EXIT_CODE);
    }
    Ok(i32::try_from(result.status_code()).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_template_quotes_the_file() {
        assert_eq!(
            run_command("python3 {file}", "main.py"),
            "python3 'main.py'"
        );
        assert_eq!(
            run_command("node {file} --x", "it's.js"),
            r"node 'it'\''s.js' --x"
        );
    }

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout(None).unwrap(), None);
        assert_eq!(
            parse_timeout(Some(1.5)).unwrap(),
            Some(Duration::from_millis(1500))
        );
        assert!(parse_timeout(Some(0.0)).is_err());
        assert!(parse_timeout(Some(-1.0)).is_err());
        assert!(parse_timeout(Some(f64::NAN)).is_err());
    }
}
