//! The activity log: every action on a sandbox (an MCP tool call, a CLI
//! `exec`, `run` or `files` action, a dashboard run), recorded so operators
//! can see what agents do, live or afterwards.
//!
//! Rows live in an SQLite database beside the workspaces they describe,
//! `<workspace_root>/.sandpit/activity.db` (no user id starts with `.`), so
//! every sandpit process managing those workspaces shares one log, whichever
//! OS user runs it. See [`ActivityLog`] for the store and its guarantees.
//!
//! Wiring a call site is one line once the action is done:
//!
//! ```ignore
//! let started = Instant::now();
//! let result = sandbox.exec(request).await;
//! log.record(&Activity::new(Source::Cli, &user, "exec", &argv_summary(&argv))
//!     .finish_exec(&result, started));
//! ```

mod store;
mod text;

use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::engine::exec::ExecResult;
use crate::engine::sandbox::UserId;

pub use store::{ActivityLog, DB_FILE, FOLLOW_INTERVAL, PRUNE_EVERY, db_path};
pub use text::{ACTION_MAX_CHARS, ERROR_MAX_CHARS, SUMMARY_MAX_CHARS, argv_summary, clean};

/// Rows kept by default: about 30 MB of database.
pub const DEFAULT_MAX_ROWS: u64 = 100_000;
/// Age past which rows are deleted by default.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(30 * 86_400);

/// Where an action came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A tool call through `sandpit mcp`.
    Mcp,
    /// A `sandpit` command line.
    Cli,
    /// The dashboard.
    Dashboard,
}

impl Source {
    pub const ALL: [Source; 3] = [Source::Mcp, Source::Cli, Source::Dashboard];

    /// `mcp`, `cli` or `dashboard`: the word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Mcp => "mcp",
            Source::Cli => "cli",
            Source::Dashboard => "dashboard",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for Source {
    type Err = String;

    /// Errors: a word other than `mcp`, `cli` or `dashboard`, naming it.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Source::ALL
            .into_iter()
            .find(|source| source.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "unknown source `{}`: use mcp, cli or dashboard",
                    text.escape_debug()
                )
            })
    }
}

/// How an action ended besides its exit code, as in [`ExecResult`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityFlags {
    /// Stopped by its wall-clock limit.
    pub timed_out: bool,
    /// Output past the cap was dropped and the command stopped.
    pub truncated: bool,
    /// Killed by the memory limit.
    pub oom_killed: bool,
    /// Cancelled by its caller (e.g. an MCP `notifications/cancelled`).
    pub cancelled: bool,
    /// The sandbox was restarted to stop the command.
    pub sandbox_restarted: bool,
    /// The sandbox was removed or stopped while the command ran.
    pub sandbox_lost: bool,
}

impl ActivityFlags {
    /// The flags set, as short words for a table: `timeout,oom`; empty when
    /// none is.
    pub fn words(&self) -> Vec<&'static str> {
        let Self {
            timed_out,
            truncated,
            oom_killed,
            cancelled,
            sandbox_restarted,
            sandbox_lost,
        } = *self;
        [
            (timed_out, "timeout"),
            (truncated, "truncated"),
            (oom_killed, "oom"),
            (cancelled, "cancelled"),
            (sandbox_restarted, "restarted"),
            (sandbox_lost, "sandbox-lost"),
        ]
        .into_iter()
        .filter_map(|(set, word)| set.then_some(word))
        .collect()
    }
}

impl From<&ExecResult> for ActivityFlags {
    fn from(result: &ExecResult) -> Self {
        Self {
            timed_out: result.timed_out,
            truncated: result.truncated,
            oom_killed: result.oom_killed,
            cancelled: result.cancelled,
            sandbox_restarted: result.sandbox_restarted,
            sandbox_lost: result.sandbox_lost.is_some(),
        }
    }
}

/// One action, as recorded. Build it with [`Activity::new`] and the
/// `finish…`/`with_…` methods, which keep every text bounded and escaped.
///
/// Serialised (inside [`ActivityRow`]) flat: `time_ms`, `user`, `source`,
/// `action`, `summary`, `exit_code`, `duration_ms`, the flags,
/// `stdout_bytes`, `stderr_bytes`, `error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    /// When the action started, Unix milliseconds.
    pub time_ms: i64,
    pub user: String,
    pub source: Source,
    /// The tool or command: `execute`, `exec`, `run`, `files.write`, …
    pub action: String,
    /// The arguments, at most [`SUMMARY_MAX_CHARS`] characters, escaped.
    pub summary: String,
    /// The command's exit status, when it ran and reported one.
    pub exit_code: Option<i64>,
    /// Wall-clock milliseconds the action took.
    pub duration_ms: u64,
    #[serde(flatten)]
    pub flags: ActivityFlags,
    /// Bytes of output, kept or not, per stream.
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    /// Why the action failed, at most [`ERROR_MAX_CHARS`] characters.
    pub error: Option<String>,
}

impl Activity {
    /// An action of `user` starting now: `action` names the tool or command
    /// (cut to [`ACTION_MAX_CHARS`]), `summary` its arguments (cut to
    /// [`SUMMARY_MAX_CHARS`]); both are escaped, so untrusted text is fine.
    pub fn new(source: Source, user: &UserId, action: &str, summary: &str) -> Self {
        Self {
            time_ms: now_ms(),
            user: user.as_str().to_string(),
            source,
            action: clean(action, ACTION_MAX_CHARS),
            summary: clean(summary, SUMMARY_MAX_CHARS),
            exit_code: None,
            duration_ms: 0,
            flags: ActivityFlags::default(),
            stdout_bytes: 0,
            stderr_bytes: 0,
            error: None,
        }
    }

    /// Ends an action whose outcome is an exec: on success the exit code,
    /// duration, flags and output sizes of the result; on failure the error
    /// and the time since `started`.
    pub fn finish_exec<E: fmt::Display>(
        self,
        result: &Result<ExecResult, E>,
        started: Instant,
    ) -> Self {
        match result {
            Ok(exec) => self.with_exec(exec),
            Err(err) => self.with_duration(started.elapsed()).with_error(err),
        }
    }

    /// Ends any other action (a file operation, a tool with no command):
    /// the time since `started`, and the error when it failed.
    pub fn finish<T, E: fmt::Display>(self, result: &Result<T, E>, started: Instant) -> Self {
        let this = self.with_duration(started.elapsed());
        match result {
            Ok(_) => this,
            Err(err) => this.with_error(err),
        }
    }

    /// The exit code, duration, flags and output sizes of an exec.
    pub fn with_exec(mut self, result: &ExecResult) -> Self {
        self.exit_code = result.exit_code;
        self.flags = ActivityFlags::from(result);
        // What the command wrote, kept or not (the kept part is capped).
        self.stdout_bytes = result.stdout_bytes;
        self.stderr_bytes = result.stderr_bytes;
        self.with_duration(result.duration)
    }

    pub fn with_duration(mut self, duration: Duration) -> Self {
        self.duration_ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        self
    }

    pub fn with_exit_code(mut self, code: i64) -> Self {
        self.exit_code = Some(code);
        self
    }

    pub fn with_flags(mut self, flags: ActivityFlags) -> Self {
        self.flags = flags;
        self
    }

    /// Bytes of output per stream, for actions that count them themselves.
    pub fn with_output_bytes(mut self, stdout: u64, stderr: u64) -> Self {
        self.stdout_bytes = stdout;
        self.stderr_bytes = stderr;
        self
    }

    /// The error, with its causes (`{:#}`), escaped and cut to
    /// [`ERROR_MAX_CHARS`].
    pub fn with_error(mut self, err: &dyn fmt::Display) -> Self {
        self.error = Some(clean(&format!("{err:#}"), ERROR_MAX_CHARS));
        self
    }
}

/// A stored [`Activity`] with its id: ids only grow, never reused, and a
/// row with a higher id was committed after every row with a lower one, so
/// "rows after id N" never misses one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityRow {
    pub id: i64,
    #[serde(flatten)]
    pub activity: Activity,
}

/// Which rows [`ActivityLog::query`] returns. Every filter is optional and
/// they combine with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityQuery {
    pub user: Option<UserId>,
    pub source: Option<Source>,
    /// Only rows whose `time_ms` is at or after this, Unix milliseconds.
    pub since_ms: Option<i64>,
    /// Only rows with a higher id. When set, the query pages forward (the
    /// oldest `limit` rows after it); when not, it returns the newest
    /// `limit` rows.
    pub after_id: Option<i64>,
    /// Most rows returned [default: [`ActivityQuery::DEFAULT_LIMIT`]].
    pub limit: Option<usize>,
}

impl ActivityQuery {
    pub const DEFAULT_LIMIT: usize = 1000;
}

/// How much of the log is kept. Rows past either bound are deleted when a
/// log is opened and every [`PRUNE_EVERY`] records of one process, so the
/// log may briefly hold a little more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// `None` keeps rows of any age.
    pub max_age: Option<Duration>,
    /// `None` keeps any number of rows.
    pub max_rows: Option<u64>,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_age: Some(DEFAULT_MAX_AGE),
            max_rows: Some(DEFAULT_MAX_ROWS),
        }
    }
}

impl Retention {
    /// The config's `[activity]`, with defaults for missing keys; a zero
    /// means no bound.
    pub fn from_config(config: &crate::config::ActivityConfig) -> Self {
        Self {
            max_age: config
                .max_age
                .map_or(Some(DEFAULT_MAX_AGE), |d| (!d.0.is_zero()).then_some(d.0)),
            max_rows: config
                .max_rows
                .map_or(Some(DEFAULT_MAX_ROWS), |rows| (rows != 0).then_some(rows)),
        }
    }
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ActivityConfig, DurationSetting};

    fn user() -> UserId {
        UserId::parse("alice").unwrap()
    }

    #[test]
    fn sources_are_words() {
        for source in Source::ALL {
            assert_eq!(source.as_str().parse::<Source>(), Ok(source));
            assert_eq!(
                serde_json::to_string(&source).unwrap(),
                format!("\"{source}\"")
            );
        }
        let err = "web".parse::<Source>().unwrap_err();
        assert!(err.contains("`web`") && err.contains("dashboard"), "{err}");
    }

    #[test]
    fn untrusted_text_is_bounded_and_escaped() {
        let activity = Activity::new(
            Source::Mcp,
            &user(),
            "execute\u{1b}[2J",
            &format!("echo \u{1b}]0;pwned\u{7}{}", "x".repeat(1000)),
        );
        assert_eq!(activity.action, r"execute\u{1b}[2J");
        assert!(activity.summary.starts_with(r"echo \u{1b}]0;pwned\u{7}x"));
        assert_eq!(activity.summary.chars().count(), SUMMARY_MAX_CHARS);
        assert!(!activity.summary.chars().any(char::is_control));
        let failed = activity.with_error(&"line one\nline two".to_string());
        assert_eq!(failed.error.as_deref(), Some(r"line one\nline two"));
    }

    #[test]
    fn exec_outcomes_fill_the_row() {
        let result = ExecResult {
            exit_code: Some(3),
            duration: Duration::from_millis(1234),
            timed_out: true,
            oom_killed: true,
            stdout: b"hello".to_vec(),
            stderr: b"oops!!".to_vec(),
            // What the command wrote, past what was kept.
            stdout_bytes: 5,
            stderr_bytes: 6_000_000,
            sandbox_lost: Some(crate::engine::exec::SandboxLoss::Removed),
            ..Default::default()
        };
        let started = Instant::now();
        let ok: anyhow::Result<ExecResult> = Ok(result);
        let row = Activity::new(Source::Cli, &user(), "exec", "true").finish_exec(&ok, started);
        assert_eq!(row.exit_code, Some(3));
        assert_eq!(row.duration_ms, 1234);
        assert_eq!((row.stdout_bytes, row.stderr_bytes), (5, 6_000_000));
        assert_eq!(row.flags.words(), ["timeout", "oom", "sandbox-lost"]);
        assert_eq!(row.error, None);

        let failed: anyhow::Result<ExecResult> =
            Err(anyhow::anyhow!("engine gone").context("cannot exec"));
        let row = Activity::new(Source::Cli, &user(), "exec", "true").finish_exec(&failed, started);
        assert_eq!(row.exit_code, None);
        assert_eq!(row.error.as_deref(), Some("cannot exec: engine gone"));

        let files: Result<(), String> = Err("no such file".into());
        let row = Activity::new(Source::Mcp, &user(), "read_file", "a.txt").finish(&files, started);
        assert_eq!(row.error.as_deref(), Some("no such file"));
    }

    #[test]
    fn rows_serialise_flat() {
        let row = ActivityRow {
            id: 7,
            activity: Activity::new(Source::Dashboard, &user(), "run", "main.py").with_exit_code(0),
        };
        let json = serde_json::to_value(&row).unwrap();
        assert_eq!(json["id"], 7);
        assert_eq!(json["source"], "dashboard");
        assert_eq!(json["exit_code"], 0);
        assert_eq!(json["timed_out"], false);
        assert_eq!(json["stdout_bytes"], 0);
        let back: ActivityRow = serde_json::from_value(json).unwrap();
        assert_eq!(back, row);
    }

    #[test]
    fn retention_from_config() {
        assert_eq!(
            Retention::from_config(&ActivityConfig::default()),
            Retention::default()
        );
        let unbounded = ActivityConfig {
            max_age: Some(DurationSetting(Duration::ZERO)),
            max_rows: Some(0),
        };
        assert_eq!(
            Retention::from_config(&unbounded),
            Retention {
                max_age: None,
                max_rows: None
            }
        );
        let set = ActivityConfig {
            max_age: Some(DurationSetting(Duration::from_secs(60))),
            max_rows: Some(5),
        };
        assert_eq!(
            Retention::from_config(&set),
            Retention {
                max_age: Some(Duration::from_secs(60)),
                max_rows: Some(5)
            }
        );
    }
}
