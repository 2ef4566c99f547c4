//! Background processes: commands that return an id at once, keep running
//! after the client that started them leaves, and keep their output in a
//! bounded ring buffer per stream (1 MiB each, in the runner). They need the
//! runner; they die with their sandbox.

use std::time::Duration;

use anyhow::{anyhow, bail};
use sandpit_runner::proto::{self, ClientFrame, RunnerFrame};

use crate::engine::exec::{ExecRequest, Stream};
use crate::engine::names;
use crate::engine::sandbox::Sandbox;

/// How long the runner has to answer a background request.
const ANSWER_DEADLINE: Duration = Duration::from_secs(30);
/// The most output one [`Sandbox::background_output`] call returns.
pub const MAX_READ: u32 = proto::MAX_CHUNK as u32;

/// A background process as listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BackgroundProcess {
    /// Its id in the sandbox, as `start_background` returned it.
    pub id: u64,
    /// Its main process's pid in the sandbox.
    pub pid: u32,
    /// Its argv, each argument escaped ([`names::escape`]).
    pub argv: Vec<String>,
    /// Milliseconds since the Unix epoch.
    pub started_unix_ms: u64,
    pub running: bool,
    /// Set once it ended: its status, 128+n for signal n.
    pub exit_code: Option<i64>,
}

/// A piece of a background process's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackgroundOutput {
    /// The bytes from the offset asked for (or from `dropped_before`, when
    /// that was later).
    pub data: Vec<u8>,
    /// The offset to ask for next: bytes the stream produced up to the end
    /// of `data`.
    pub next_offset: u64,
    /// The first offset still kept; output before it was overwritten in
    /// the ring buffer.
    pub dropped_before: u64,
}

impl Sandbox {
    /// The error for a sandbox whose commands do not go through the runner.
    fn no_runner_for_background(&self) -> anyhow::Error {
        let why = self
            .transport_info()
            .reason
            .unwrap_or_else(|| "the runner is unavailable".to_string());
        anyhow!(
            "background processes need the in-sandbox runner, and the sandbox of `{}` runs its commands through the engine's exec ({why}); \
             a sandbox made by this sandpit has it: `sandpit rm {}` and run again to make one",
            self.user(),
            self.user()
        )
    }

    /// One request about background processes and its answer.
    async fn background_call(
        &self,
        build: impl FnOnce(u32) -> ClientFrame,
    ) -> anyhow::Result<RunnerFrame> {
        let Some(runner) = self.runner() else {
            return Err(self.no_runner_for_background());
        };
        let Some(conn) = runner.connection().await else {
            bail!(
                "the runner of `{}`'s sandbox cannot be reached right now (see the log); background processes need it",
                self.user()
            );
        };
        if !conn.background {
            bail!(
                "the runner of `{}`'s sandbox offers no background processes (it could not reach its daemon)",
                self.user()
            );
        }
        match conn.call(build, ANSWER_DEADLINE).await {
            Ok(RunnerFrame::Error { code, message, .. }) => Err(match code {
                proto::code::NO_SUCH_BACKGROUND => {
                    anyhow!(
                        "the sandbox of `{}` has no such background process",
                        self.user()
                    )
                }
                _ => anyhow!(
                    "the runner refused: {} (code {code})",
                    names::escape(message.trim_ascii())
                ),
            }),
            Ok(frame) => Ok(frame),
            Err(err) => {
                let reason = format!("{err:#}");
                runner.note_fault(&conn, &reason).await;
                Err(anyhow!(
                    "the runner of `{}`'s sandbox failed: {reason}",
                    self.user()
                ))
            }
        }
    }

    /// Starts `request` as a background process and returns its id at once.
    /// Its timeout, if any, still kills it; stdin is not supported (it reads
    /// EOF). Errors: the sandbox has no runner, the request has stdin, or
    /// the command cannot start.
    pub async fn start_background(&self, request: ExecRequest) -> anyhow::Result<u64> {
        if request.stdin.is_some() || request.stdin_stream.is_some() {
            bail!("a background process takes no stdin");
        }
        let run = proto::Run {
            background: true,
            ..super::transport::run_frame(&request, self.work_dir())
        };
        match self
            .background_call(|id| ClientFrame::Run(proto::Run { id, ..run }))
            .await?
        {
            RunnerFrame::Started {
                background_id: Some(id),
                ..
            } => Ok(id),
            other => bail!(
                "the runner answered a background start with {}",
                super::transport::frame_name(&other)
            ),
        }
    }

    /// The sandbox's background processes, running or ended, by id.
    pub async fn list_background(&self) -> anyhow::Result<Vec<BackgroundProcess>> {
        match self
            .background_call(|id| ClientFrame::BgList { id })
            .await?
        {
            RunnerFrame::BgEntries { list, .. } => {
                let mut list: Vec<BackgroundProcess> = list
                    .into_iter()
                    .map(|bg| BackgroundProcess {
                        id: bg.background_id,
                        pid: bg.pid,
                        argv: bg.argv.iter().map(|arg| names::escape(arg)).collect(),
                        started_unix_ms: bg.started_unix_ms,
                        running: bg.running,
                        exit_code: bg.exit_code,
                    })
                    .collect();
                list.sort_by_key(|bg| bg.id);
                Ok(list)
            }
            other => bail!(
                "the runner answered a background listing with {}",
                super::transport::frame_name(&other)
            ),
        }
    }

    /// Up to `max` bytes (at most [`MAX_READ`]) of a background process's
    /// `stream` from `offset`, a count of bytes since it started.
    pub async fn background_output(
        &self,
        id: u64,
        stream: Stream,
        offset: u64,
        max: u32,
    ) -> anyhow::Result<BackgroundOutput> {
        let stream = match stream {
            Stream::Stdout => proto::STDOUT,
            Stream::Stderr => proto::STDERR,
        };
        let max = max.min(MAX_READ);
        match self
            .background_call(|request| ClientFrame::BgRead {
                id: request,
                background_id: id,
                stream,
                offset,
                max,
            })
            .await?
        {
            RunnerFrame::BgData {
                mut data,
                next_offset,
                dropped_before,
                ..
            } => {
                // Never more than asked for, whatever the runner sends.
                data.truncate(max as usize);
                Ok(BackgroundOutput {
                    data,
                    next_offset,
                    dropped_before,
                })
            }
            other => bail!(
                "the runner answered a background read with {}",
                super::transport::frame_name(&other)
            ),
        }
    }

    /// Kills a background process's whole tree; returns once it is dead.
    pub async fn stop_background(&self, id: u64) -> anyhow::Result<()> {
        match self
            .background_call(|request| ClientFrame::BgStop {
                id: request,
                background_id: id,
            })
            .await?
        {
            RunnerFrame::Done { .. } => Ok(()),
            other => bail!(
                "the runner answered a background stop with {}",
                super::transport::frame_name(&other)
            ),
        }
    }
}
