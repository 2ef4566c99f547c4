use std::io::{IsTerminal as _, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::activity::{Activity, ActivityLog, Source, argv_summary};
use crate::engine::exec::{ExecEvent, ExecRequest, ExecResult, Stream};
use crate::engine::policy::PolicyOverrides;
use crate::engine::runtimes::run_command;
use crate::engine::sandbox::{Sandbox, UserId};

use super::Context;
use super::build::build_progress;

pub struct ExecOptions {
    /// Start the command as a background process and print its id.
    pub background: bool,
    pub runtime: Option<String>,
    pub timeout: Option<f64>,
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    pub output_cap: Option<usize>,
    pub shell: bool,
    pub policy: PolicyOverrides,
    pub io: IoOptions,
}

/// How a command's stdin and output meet this process's.
#[derive(Debug, Clone, Copy, Default)]
pub struct IoOptions {
    /// Forward stdin even when it is a terminal.
    pub interactive: bool,
    /// Capture the output and print one JSON result instead of streaming it.
    pub json: bool,
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
    let command_words = command.clone();
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
    if options.background {
        let status = super::processes::start(&sandbox, request, options.io.json).await;
        sessions.release(user)?;
        return status;
    }
    let journal = Journal::new(context, user, "exec", &argv_summary(&command_words))?;
    let status = stream_exec(&sandbox, request, options.io, journal).await;
    // A long command is use until its end, for the idle reaper.
    sessions.release(user)?;
    status
}

pub async fn run_file(
    context: &Context,
    user: &UserId,
    runtime: Option<&str>,
    timeout: Option<f64>,
    io: IoOptions,
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
    let journal = Journal::new(context, user, "run", &name)?;
    let status = stream_exec(&sandbox, request, io, journal).await;
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

/// Whether this process's stdin goes to the command: when forced, or when
/// it is not a terminal (a pipe, a file, /dev/null or closed), as
/// `docker exec -i` would. A terminal is left alone unless asked for, so an
/// interactive shell does not hang a command that never reads.
fn forwards_stdin(interactive: bool) -> bool {
    interactive || !std::io::stdin().is_terminal()
}

/// Where and how a command is recorded in the activity log.
struct Journal {
    log: ActivityLog,
    entry: Activity,
    started: Instant,
}

impl Journal {
    fn new(context: &Context, user: &UserId, action: &str, summary: &str) -> anyhow::Result<Self> {
        Ok(Self {
            log: context.cli_activity_log()?,
            entry: Activity::new(Source::Cli, user, action, summary),
            started: Instant::now(),
        })
    }

    /// Records how the command ended; a failure of the log only warns.
    async fn record(self, result: &anyhow::Result<ExecResult>) {
        let entry = self.entry.finish_exec(result, self.started);
        self.log.record_async(entry).await;
    }
}

/// The JSON result of `exec --json` and `run --json`: how the command ended
/// and its captured output (invalid UTF-8 replaced).
#[derive(serde::Serialize)]
struct JsonResult<'a> {
    status: &'static str,
    status_code: i64,
    reason: Option<String>,
    #[serde(flatten)]
    result: &'a ExecResult,
    stdout: String,
    stderr: String,
}

/// Runs a request, copying output live to this process's stdout and stderr
/// (or capturing it for one JSON result), and forwarding stdin when
/// [`forwards_stdin`]. Ctrl-C cancels it, killing its process tree. Returns
/// the exit status from [`ExecResult::status_code`]; sandpit's reason for it,
/// when it has one, goes to stderr as one line.
async fn stream_exec(
    sandbox: &Sandbox,
    request: ExecRequest,
    io: IoOptions,
    journal: Journal,
) -> anyhow::Result<i32> {
    let request = if forwards_stdin(io.interactive) {
        // Read in the background in bounded chunks: a stdin of any size
        // streams through.
        request.stdin_stream(tokio::io::stdin())
    } else {
        request
    };
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
    let live = (!io.json).then_some(events);
    let result = sandbox.exec(request, live, cancel).await;
    let _ = printer.await;
    interrupt.abort();
    journal.record(&result).await;
    let result = result?;
    let reason = result.reason(sandbox.container_name());
    if let Some(reason) = &reason {
        eprintln!("sandpit: {reason}");
    }
    if result.sandbox_restarted {
        eprintln!("sandpit: the sandbox was restarted to stop the command's processes");
    }
    let status_code = result.status_code();
    if io.json {
        let json = JsonResult {
            status: result.outcome().name(),
            status_code,
            reason,
            result: &result,
            stdout: result.stdout_text(),
            stderr: result.stderr_text(),
        };
        println!("{}", serde_json::to_string_pretty(&json)?);
    }
    Ok(i32::try_from(status_code).unwrap_or(1))
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
