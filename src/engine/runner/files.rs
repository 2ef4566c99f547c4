//! Workspace file operations through the runner: list, read, write, mkdir,
//! rename, delete. The runner confines paths beneath the workspace itself
//! (component by component, links not followed, or `openat2` with
//! `RESOLVE_BENEATH`); sandpit confines them lexically first, as for the
//! engine path, and maps the runner's refusals to the same errors.

use std::sync::Arc;

use anyhow::{anyhow, bail};
use sandpit_runner::proto::{self, ClientFrame, RunnerFrame};

use super::transport::{Connection, RunnerExec};
use crate::engine::files::{DirEntry, EntryKind};
use crate::engine::sandbox::Sandbox;

/// Bytes of a write sent in its first frame; the rest follows in
/// `WriteData` frames of up to [`proto::MAX_CHUNK`] bytes.
const FIRST_WRITE_CHUNK: usize = 64 << 10;
/// The most a listing may take (names and a fixed cost per entry), as the
/// engine path's cap on `find`'s output.
const MAX_LISTING: usize = 16 << 20;

/// A runner ready for file operations, from [`Sandbox::runner_files`].
pub(crate) struct RunnerFiles {
    exec: Arc<RunnerExec>,
    conn: Arc<Connection>,
}

impl Sandbox {
    /// The runner for a file operation; `None` when the engine path must be
    /// used (no runner, or it cannot be reached now).
    pub(crate) async fn runner_files(&self) -> Option<RunnerFiles> {
        let exec = self.runner()?.clone();
        let conn = exec.connection().await?;
        Some(RunnerFiles { exec, conn })
    }
}

/// What a request came back with.
enum Answer {
    Frame(RunnerFrame),
    /// A refusal: its code (one of `proto::code`) and message.
    Refused(u32, Vec<u8>),
}

impl RunnerFiles {
    /// Sends `build`'s frame and waits for its first answer. A runner that
    /// fails meanwhile is recorded as faulty (the next request goes through
    /// the engine's exec) and the operation fails.
    async fn ask(
        &self,
        op: &str,
        paths: &[&[u8]],
        build: impl FnOnce(u32) -> ClientFrame,
    ) -> anyhow::Result<Answer> {
        match self
            .conn
            .call(build, Connection::file_deadline_duration())
            .await
        {
            Ok(RunnerFrame::Error { code, message, .. }) => Ok(Answer::Refused(code, message)),
            Ok(frame) => Ok(Answer::Frame(frame)),
            Err(err) => Err(self.fault(op, paths, err).await),
        }
    }

    /// The error for an operation on `paths` cut short by the runner
    /// failing (or the sandbox going away under it).
    async fn fault(&self, op: &str, paths: &[&[u8]], err: anyhow::Error) -> anyhow::Error {
        let reason = format!("{err:#}");
        self.exec.note_fault(&self.conn, &reason).await;
        let paths: Vec<String> = paths
            .iter()
            .map(|path| format!("`{}`", crate::engine::names::escape(path)))
            .collect();
        anyhow!(
            "file operation `{op}` on {} failed: the runner in {} failed ({reason}); the next one uses the engine's exec",
            paths.join(" and "),
            self.exec.target().container
        )
    }

    fn refused(
        sandbox: &Sandbox,
        op: &str,
        paths: &[&[u8]],
        code: u32,
        message: &[u8],
        asked: &str,
    ) -> anyhow::Error {
        let detail = String::from_utf8_lossy(message).trim().to_string();
        sandbox.refusal(op, Some(i64::from(code)), paths, &detail, asked, message)
    }

    /// A folder's entries, gathered from the runner's `Entries` frames (a
    /// big folder comes in several, the last marked).
    pub(crate) async fn list(
        &self,
        sandbox: &Sandbox,
        path: &[u8],
    ) -> anyhow::Result<Vec<DirEntry>> {
        let (id, mut answers) = match self
            .conn
            .send_request(|id| ClientFrame::List {
                id,
                path: path.to_vec(),
            })
            .await
        {
            Ok(request) => request,
            Err(err) => return Err(self.fault("ls", &[path], err).await),
        };
        let by = Connection::file_deadline();
        let mut listed = Vec::new();
        let mut names_bytes = 0usize;
        loop {
            let frame = match self.conn.next_answer(&mut answers, by).await {
                Ok(frame) => frame,
                Err(err) => {
                    self.conn.forget(id);
                    return Err(self.fault("ls", &[path], err).await);
                }
            };
            match frame {
                RunnerFrame::Entries { entries, last, .. } => {
                    // As much as the engine path reads back, no more.
                    names_bytes += entries
                        .iter()
                        .map(|entry| entry.name.len() + 32)
                        .sum::<usize>();
                    if names_bytes > MAX_LISTING {
                        self.conn.forget(id);
                        bail!(
                            "the folder `{}` holds too many entries to list (over {MAX_LISTING} bytes)",
                            crate::engine::names::escape(path)
                        );
                    }
                    listed.extend(entries.into_iter().map(|entry| DirEntry {
                        kind: match entry.kind {
                            proto::entry_kind::FILE => EntryKind::File,
                            proto::entry_kind::DIR => EntryKind::Dir,
                            proto::entry_kind::SYMLINK => EntryKind::Symlink,
                            _ => EntryKind::Other,
                        },
                        size: entry.size,
                        mtime: entry.mtime_ns as f64 / 1e9,
                        name: entry.name,
                    }));
                    if last {
                        break;
                    }
                }
                RunnerFrame::Error { code, message, .. } => {
                    self.conn.forget(id);
                    return Err(Self::refused(sandbox, "ls", &[path], code, &message, ""));
                }
                other => {
                    self.conn.forget(id);
                    return Err(self.unexpected("ls", &[path], &other).await);
                }
            }
        }
        self.conn.forget(id);
        Ok(listed)
    }

    /// A file of at most `cap` bytes, gathered from the runner's chunks.
    pub(crate) async fn read(
        &self,
        sandbox: &Sandbox,
        path: &[u8],
        cap: u64,
    ) -> anyhow::Result<Vec<u8>> {
        let (id, mut answers) = match self
            .conn
            .send_request(|id| ClientFrame::Read {
                id,
                path: path.to_vec(),
                cap,
            })
            .await
        {
            Ok(request) => request,
            Err(err) => return Err(self.fault("read", &[path], err).await),
        };
        let by = Connection::file_deadline();
        let mut bytes = Vec::new();
        let result = loop {
            let frame = match self.conn.next_answer(&mut answers, by).await {
                Ok(frame) => frame,
                Err(err) => {
                    self.conn.forget(id);
                    return Err(self.fault("read", &[path], err).await);
                }
            };
            match frame {
                RunnerFrame::Data { data, last, .. } => {
                    // Never more than asked for, whatever the runner sends.
                    if (bytes.len() + data.len()) as u64 > cap {
                        break Err(anyhow!(
                            "file operation `read` on `{}` returned more than {cap} bytes; \
                             the file grew past the read limit while it was read",
                            crate::engine::names::escape(path)
                        ));
                    }
                    bytes.extend_from_slice(&data);
                    if last {
                        break Ok(std::mem::take(&mut bytes));
                    }
                }
                RunnerFrame::Error { code, message, .. } => {
                    break Err(Self::refused(sandbox, "read", &[path], code, &message, ""));
                }
                other => {
                    self.conn.forget(id);
                    return Err(self.unexpected("read", &[path], &other).await);
                }
            }
        };
        self.conn.forget(id);
        result
    }

    /// Writes a whole file; the runner replaces it atomically once every
    /// byte arrived.
    pub(crate) async fn write(
        &self,
        sandbox: &Sandbox,
        path: &[u8],
        contents: Vec<u8>,
    ) -> anyhow::Result<()> {
        let size = contents.len() as u64;
        let first = contents.len().min(FIRST_WRITE_CHUNK);
        let (id, mut answers) = match self
            .conn
            .send_request(|id| ClientFrame::Write {
                id,
                path: path.to_vec(),
                size,
                data: contents[..first].to_vec(),
            })
            .await
        {
            Ok(request) => request,
            Err(err) => return Err(self.fault("write", &[path], err).await),
        };
        for chunk in contents[first..].chunks(proto::MAX_CHUNK) {
            if let Err(err) = self
                .conn
                .send(ClientFrame::WriteData {
                    id,
                    data: chunk.to_vec(),
                })
                .await
            {
                self.conn.forget(id);
                return Err(self.fault("write", &[path], err).await);
            }
        }
        let answer = self
            .conn
            .next_answer(&mut answers, Connection::file_deadline())
            .await;
        self.conn.forget(id);
        match answer {
            Ok(RunnerFrame::Done { .. }) => Ok(()),
            Ok(RunnerFrame::Error { code, message, .. }) => Err(Self::refused(
                sandbox,
                "write",
                &[path],
                code,
                &message,
                &size.to_string(),
            )),
            Ok(other) => Err(self.unexpected("write", &[path], &other).await),
            Err(err) => Err(self.fault("write", &[path], err).await),
        }
    }

    pub(crate) async fn mkdir(&self, sandbox: &Sandbox, path: &[u8]) -> anyhow::Result<()> {
        let answer = self
            .ask("mkdir", &[path], |id| ClientFrame::Mkdir {
                id,
                path: path.to_vec(),
            })
            .await?;
        self.done(sandbox, "mkdir", &[path], answer).await
    }

    pub(crate) async fn rename(
        &self,
        sandbox: &Sandbox,
        from: &[u8],
        to: &[u8],
    ) -> anyhow::Result<()> {
        let answer = self
            .ask("rename", &[from, to], |id| ClientFrame::Rename {
                id,
                from: from.to_vec(),
                to: to.to_vec(),
            })
            .await?;
        self.done(sandbox, "rename", &[from, to], answer).await
    }

    /// Deletes a file, or a folder with its contents.
    pub(crate) async fn delete(&self, sandbox: &Sandbox, path: &[u8]) -> anyhow::Result<()> {
        let answer = self
            .ask("delete", &[path], |id| ClientFrame::Delete {
                id,
                path: path.to_vec(),
                recursive: true,
            })
            .await?;
        self.done(sandbox, "delete", &[path], answer).await
    }

    async fn done(
        &self,
        sandbox: &Sandbox,
        op: &str,
        paths: &[&[u8]],
        answer: Answer,
    ) -> anyhow::Result<()> {
        match answer {
            Answer::Frame(RunnerFrame::Done { .. }) => Ok(()),
            Answer::Refused(code, message) => {
                Err(Self::refused(sandbox, op, paths, code, &message, ""))
            }
            Answer::Frame(other) => Err(self.unexpected(op, paths, &other).await),
        }
    }

    /// An answer of the wrong kind: the runner is out of step.
    async fn unexpected(&self, op: &str, paths: &[&[u8]], frame: &RunnerFrame) -> anyhow::Error {
        self.fault(
            op,
            paths,
            anyhow!(
                "it answered `{op}` with {}",
                super::transport::frame_name(frame)
            ),
        )
        .await
    }
}
