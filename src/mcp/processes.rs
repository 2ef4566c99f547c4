//! Background processes: commands started by `process_start` that outlive
//! the call. They run through the engine's exec like any command; their
//! output is kept in this MCP server's memory, the last 1 MiB of each
//! stream in a ring buffer, and stopping one (or the server) kills its tree.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::engine::exec::{ExecEvent, ExecRequest, Stream};
use crate::engine::sandbox::Sandbox;

/// Bytes kept per stream of each process.
pub const RING_CAPACITY: usize = 1 << 20;
/// Output a background process may write per stream before it is stopped.
/// The engine's exec keeps what it captures until the command ends (it has
/// no streaming-only mode yet), so this bounds that copy; the ring is what
/// `process_output` reads.
pub const OUTPUT_LIMIT: usize = 16 << 20;
/// Background processes one user may have at once (running or finished but
/// not yet stopped).
pub const MAX_PROCESSES: usize = 16;

/// The last `capacity` bytes of a stream, with how many came before them.
#[derive(Debug)]
pub struct Ring {
    bytes: VecDeque<u8>,
    capacity: usize,
    /// Bytes ever written: the offset just past the newest byte.
    total: u64,
}

impl Ring {
    pub fn new(capacity: usize) -> Self {
        Self {
            bytes: VecDeque::new(),
            capacity,
            total: 0,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.total += data.len() as u64;
        let data = &data[data.len().saturating_sub(self.capacity)..];
        let overflow = (self.bytes.len() + data.len()).saturating_sub(self.capacity);
        self.bytes.drain(..overflow);
        self.bytes.extend(data);
    }

    /// Offset of the oldest byte kept.
    pub fn start(&self) -> u64 {
        self.total - self.bytes.len() as u64
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// The bytes from `offset` (or from the oldest kept, when older) to the
    /// end, with the offset they really start at.
    pub fn read_from(&self, offset: u64) -> (u64, Vec<u8>) {
        let from = offset.clamp(self.start(), self.total);
        let skip = usize::try_from(from - self.start()).unwrap_or(usize::MAX);
        (from, self.bytes.iter().skip(skip).copied().collect())
    }
}

/// Where a background process is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Running,
    Exited(i64),
    Stopped,
    /// Stopped for writing more than [`OUTPUT_LIMIT`] bytes on one stream.
    OutputLimit,
    /// The exec itself failed.
    Failed(String),
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            State::Running => f.write_str("running"),
            State::Exited(code) => write!(f, "exited with code {code}"),
            State::Stopped => f.write_str("stopped (process tree killed)"),
            State::OutputLimit => write!(
                f,
                "stopped after writing {} MiB on one stream (process tree killed)",
                OUTPUT_LIMIT >> 20
            ),
            State::Failed(err) => write!(f, "failed: {err}"),
        }
    }
}

struct Output {
    stdout: Ring,
    stderr: Ring,
    state: State,
}

struct Process {
    command: String,
    started: Instant,
    output: Arc<Mutex<Output>>,
    cancel: CancellationToken,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// One user's background processes, shared by every client of that user in
/// this server.
#[derive(Default)]
pub struct Registry {
    next: Mutex<u64>,
    processes: Mutex<BTreeMap<String, Arc<Process>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Registry {
    /// Starts `command`; `shutdown` stops it with the server.
    pub fn start(
        &self,
        sandbox: &Sandbox,
        command: String,
        shutdown: &CancellationToken,
    ) -> Result<String, String> {
        let mut processes = lock(&self.processes);
        if processes.len() >= MAX_PROCESSES {
            return Err(format!(
                "Error: {MAX_PROCESSES} background processes exist already; stop one with process_stop first"
            ));
        }
        let id = {
            let mut next = lock(&self.next);
            *next += 1;
            format!("p{next}")
        };
        let output = Arc::new(Mutex::new(Output {
            stdout: Ring::new(RING_CAPACITY),
            stderr: Ring::new(RING_CAPACITY),
            state: State::Running,
        }));
        let cancel = shutdown.child_token();
        let (events, mut received) = mpsc::channel::<ExecEvent>(64);
        let request = ExecRequest::shell(command.clone()).output_cap(OUTPUT_LIMIT);
        let task = {
            let sandbox = sandbox.clone();
            let output = output.clone();
            let cancel = cancel.clone();
            tokio::spawn(async move {
                let collector = {
                    let output = output.clone();
                    tokio::spawn(async move {
                        while let Some(event) = received.recv().await {
                            let mut output = lock(&output);
                            match event.stream {
                                Stream::Stdout => output.stdout.push(&event.data),
                                Stream::Stderr => output.stderr.push(&event.data),
                            }
                        }
                    })
                };
                let result = sandbox.exec(request, Some(events), cancel).await;
                let _ = collector.await;
                let state = match result {
                    Ok(result) if result.cancelled => State::Stopped,
                    Ok(result) if result.truncated => State::OutputLimit,
                    Ok(result) => State::Exited(result.status_code()),
                    Err(err) => State::Failed(format!("{err:#}")),
                };
                lock(&output).state = state;
            })
        };
        processes.insert(
            id.clone(),
            Arc::new(Process {
                command,
                started: Instant::now(),
                output,
                cancel,
                task: Mutex::new(Some(task)),
            }),
        );
        Ok(id)
    }

    fn get(&self, id: &str) -> Result<Arc<Process>, String> {
        lock(&self.processes)
            .get(id)
            .cloned()
            .ok_or_else(|| format!("Error: no background process `{id}`; process_list shows them"))
    }

    /// Output of one stream from `offset`, with the process's state.
    pub fn output(&self, id: &str, offset: u64, stream: &str) -> Result<String, String> {
        let process = self.get(id)?;
        let output = lock(&process.output);
        let ring = match stream {
            "stdout" => &output.stdout,
            "stderr" => &output.stderr,
            other => {
                return Err(format!(
                    "Error: stream must be `stdout` or `stderr`, got `{other}`"
                ));
            }
        };
        let (from, bytes) = ring.read_from(offset);
        let mut text = format!(
            "Process {id}: {}\n{stream} bytes {from}..{} (next offset {})",
            output.state,
            ring.total(),
            ring.total()
        );
        if from > offset {
            text.push_str(&format!(
                "; bytes {offset}..{from} were dropped (only the last {RING_CAPACITY} bytes are kept)"
            ));
        }
        text.push('\n');
        text.push_str(&String::from_utf8_lossy(&bytes));
        Ok(text)
    }

    /// Kills the process's tree and forgets it.
    pub async fn stop(&self, id: &str) -> Result<String, String> {
        let process = self.get(id)?;
        process.cancel.cancel();
        let task = lock(&process.task).take();
        if let Some(task) = task {
            let _ = task.await;
        }
        lock(&self.processes).remove(id);
        let state = lock(&process.output).state.clone();
        Ok(format!("Process {id}: {state}"))
    }

    /// One line per process: id, state, age in seconds, command.
    pub fn list(&self) -> String {
        let processes = lock(&self.processes);
        if processes.is_empty() {
            return "No background processes".to_string();
        }
        let mut lines = vec!["Background processes:".to_string()];
        for (id, process) in processes.iter() {
            lines.push(format!(
                "  {id}  {}  {}s  {}",
                lock(&process.output).state,
                process.started.elapsed().as_secs(),
                process.command
            ));
        }
        lines.join("\n")
    }

    /// Kills every process and waits for their trees to be gone.
    pub async fn stop_all(&self) {
        let processes: Vec<(String, Arc<Process>)> = lock(&self.processes)
            .iter()
            .map(|(id, process)| (id.clone(), process.clone()))
            .collect();
        for (id, _) in processes {
            let _ = self.stop(&id).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_the_newest_bytes() {
        let mut ring = Ring::new(4);
        ring.push(b"ab");
        assert_eq!(ring.read_from(0), (0, b"ab".to_vec()));
        ring.push(b"cdef");
        assert_eq!(ring.total(), 6);
        assert_eq!(ring.start(), 2);
        assert_eq!(ring.read_from(0), (2, b"cdef".to_vec()));
        assert_eq!(ring.read_from(5), (5, b"f".to_vec()));
        assert_eq!(ring.read_from(99), (6, Vec::new()));
        ring.push(b"0123456789");
        assert_eq!(ring.read_from(0), (12, b"6789".to_vec()));
    }
}
