//! The SQLite store behind the activity log.
//!
//! Several processes (CLI commands, `sandpit mcp` servers, dashboards), run
//! by several OS users, write and read one file at once. WAL mode lets
//! readers go on while one writer commits; writers take turns, each waiting
//! up to [`BUSY_TIMEOUT`] for the lock. Every record is its own short
//! transaction, so a turn lasts well under a millisecond.

use std::collections::VecDeque;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use futures_util::Stream;
use rusqlite::Connection;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, Value, ValueRef};

use super::{Activity, ActivityFlags, ActivityQuery, ActivityRow, Retention, Source};

/// The database's file name inside `<workspace_root>/.sandpit`.
pub const DB_FILE: &str = "activity.db";
/// One process prunes after this many records (and on open), so pruning
/// costs nothing on the usual record.
pub const PRUNE_EVERY: u64 = 500;
/// How often [`ActivityLog::follow`] looks for new rows. SQLite cannot tell
/// another process that a row arrived, so followers poll; one poll is one
/// indexed query.
pub const FOLLOW_INTERVAL: Duration = Duration::from_millis(250);
/// How long a writer waits for another process's write to end.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Bumped when the table changes; a newer file is refused, not misread.
const SCHEMA_VERSION: i64 = 1;
/// `.sandpit` when sandpit creates it: the group may write (operators who
/// share the workspaces share one log), and setgid makes new files take the
/// folder's group rather than each user's own; others may list it.
const DIR_MODE: u32 = 0o2775;
/// The database when sandpit creates it: owner and group read and write, as
/// every writer and every follower (WAL readers write the shared-memory
/// file) must; others nothing, since summaries may name private things.
/// SQLite gives its `-wal` and `-shm` files the same mode.
const FILE_MODE: u32 = 0o660;

const SCHEMA: &str = "
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS activity (
    -- AUTOINCREMENT: an id is never reused, even when pruning empties the
    -- table, so a follower asking for rows after id N never misses one.
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ms INTEGER NOT NULL,
    user TEXT NOT NULL,
    source TEXT NOT NULL,
    action TEXT NOT NULL,
    summary TEXT NOT NULL,
    exit_code INTEGER,
    duration_ms INTEGER NOT NULL,
    timed_out INTEGER NOT NULL,
    truncated INTEGER NOT NULL,
    oom_killed INTEGER NOT NULL,
    cancelled INTEGER NOT NULL,
    sandbox_restarted INTEGER NOT NULL,
    sandbox_lost INTEGER NOT NULL,
    stdout_bytes INTEGER NOT NULL,
    stderr_bytes INTEGER NOT NULL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS activity_time ON activity (time_ms);
CREATE INDEX IF NOT EXISTS activity_user ON activity (user, id);
PRAGMA user_version = 1;
COMMIT;
";

const COLUMNS: &str = "id, time_ms, user, source, action, summary, exit_code, duration_ms, \
    timed_out, truncated, oom_killed, cancelled, sandbox_restarted, sandbox_lost, stdout_bytes, stderr_bytes, \
    error";

/// `<workspace_root>/.sandpit/activity.db`.
pub fn db_path(workspace_root: &Path) -> PathBuf {
    workspace_root
        .join(crate::sessions::STATE_DIR)
        .join(DB_FILE)
}

/// The activity log of one workspace root. Cheap to clone and share across
/// tasks and threads: clones share one SQLite connection behind a mutex.
/// One connection suffices because SQLite lets one writer in at a time
/// anyway, and this process's reads are few and small; it spares each call
/// the open and the pragmas.
///
/// Every call blocks its thread on SQLite: usually well under a
/// millisecond, up to [`BUSY_TIMEOUT`] while another process holds the write
/// lock. From async code use [`ActivityLog::record_async`] and
/// [`ActivityLog::follow`], which run on tokio's blocking pool.
#[derive(Clone)]
pub struct ActivityLog {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    retention: Retention,
    /// `None` until an open succeeds; opening is retried on use, so a log
    /// made by [`ActivityLog::open_or_warn`] starts recording once it can.
    conn: Mutex<Option<Connection>>,
    recorded: AtomicU64,
}

impl std::fmt::Debug for ActivityLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActivityLog")
            .field("path", &self.inner.path)
            .field("retention", &self.inner.retention)
            .finish_non_exhaustive()
    }
}

impl ActivityLog {
    /// Opens (creating when missing) the log of `workspace_root`, with the
    /// default [`Retention`].
    pub fn open(workspace_root: &Path) -> anyhow::Result<Self> {
        Self::open_with(workspace_root, Retention::default())
    }

    /// Opens (creating when missing) the log of `workspace_root` and prunes
    /// it to `retention`.
    ///
    /// Errors: the folder or the file cannot be created or opened, or the
    /// file is not an activity log sandpit can read (another format, or a
    /// newer schema), naming the path. A failed prune is only logged: a user
    /// who may read the log but not write it can still read it.
    pub fn open_with(workspace_root: &Path, retention: Retention) -> anyhow::Result<Self> {
        let log = Self::unopened(workspace_root, retention);
        let conn = connect(&log.inner.path)?;
        if let Err(err) = prune(&conn, &retention) {
            tracing::warn!(
                "cannot prune the activity log {}: {err}",
                log.inner.path.display()
            );
        }
        *log.lock() = Some(conn);
        Ok(log)
    }

    /// The log for recording, which never fails: when it cannot be opened
    /// now, a warning is logged and each record tries again.
    pub fn open_or_warn(workspace_root: &Path, retention: Retention) -> Self {
        match Self::open_with(workspace_root, retention) {
            Ok(log) => log,
            Err(err) => {
                tracing::warn!("activity log unavailable, actions are not recorded: {err:#}");
                Self::unopened(workspace_root, retention)
            }
        }
    }

    fn unopened(workspace_root: &Path, retention: Retention) -> Self {
        Self {
            inner: Arc::new(Inner {
                path: db_path(workspace_root),
                retention,
                conn: Mutex::new(None),
                recorded: AtomicU64::new(0),
            }),
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub fn retention(&self) -> Retention {
        self.inner.retention
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Connection>> {
        // A panic elsewhere while holding the lock leaves the connection
        // usable: every write is one statement, committed or not.
        self.inner
            .conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn with_conn<T>(
        &self,
        what: &str,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> anyhow::Result<T> {
        let mut guard = self.lock();
        let conn = match &mut *guard {
            Some(conn) => conn,
            empty => empty.insert(connect(&self.inner.path)?),
        };
        f(conn).with_context(|| format!("cannot {what} the activity log {}", self.path().display()))
    }

    /// Records one action. Never fails and never panics: a failure (a
    /// read-only file, a full disk, a lock held past the busy timeout) is
    /// logged as a warning, and the action it describes goes on.
    ///
    /// Blocking; see [`ActivityLog`].
    pub fn record(&self, activity: &Activity) {
        if let Err(err) = self.try_record(activity) {
            tracing::warn!(
                "not recorded: {} {} of `{}`: {err:#}",
                activity.source,
                activity.action,
                activity.user
            );
        }
    }

    /// [`ActivityLog::record`] on tokio's blocking pool, so the runtime's
    /// workers never wait on SQLite's lock.
    pub async fn record_async(&self, activity: Activity) {
        let log = self.clone();
        if let Err(err) = tokio::task::spawn_blocking(move || log.record(&activity)).await {
            tracing::warn!("activity record task failed: {err}");
        }
    }

    /// Records one action and returns its id.
    ///
    /// Errors: the log cannot be opened or written, naming the file.
    pub fn try_record(&self, activity: &Activity) -> anyhow::Result<i64> {
        let Activity {
            time_ms,
            user,
            source,
            action,
            summary,
            exit_code,
            duration_ms,
            flags:
                ActivityFlags {
                    timed_out,
                    truncated,
                    oom_killed,
                    cancelled,
                    sandbox_restarted,
                    sandbox_lost,
                },
            stdout_bytes,
            stderr_bytes,
            error,
        } = activity;
        let id = self.with_conn("write", |conn| {
            conn.execute(
                "INSERT INTO activity (time_ms, user, source, action, summary, exit_code, \
                 duration_ms, timed_out, truncated, oom_killed, cancelled, sandbox_restarted, \
                 sandbox_lost, stdout_bytes, stderr_bytes, error) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                rusqlite::params![
                    time_ms,
                    user,
                    source.as_str(),
                    action,
                    summary,
                    exit_code,
                    to_i64(*duration_ms),
                    timed_out,
                    truncated,
                    oom_killed,
                    cancelled,
                    sandbox_restarted,
                    sandbox_lost,
                    to_i64(*stdout_bytes),
                    to_i64(*stderr_bytes),
                    error,
                ],
            )?;
            Ok(conn.last_insert_rowid())
        })?;
        if (self.inner.recorded.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(PRUNE_EVERY)
            && let Err(err) = self.prune()
        {
            tracing::warn!("{err:#}");
        }
        Ok(id)
    }

    /// Deletes the rows past the retention now; returns how many went.
    ///
    /// Errors: the log cannot be written.
    pub fn prune(&self) -> anyhow::Result<u64> {
        let retention = self.inner.retention;
        self.with_conn("prune", |conn| prune(conn, &retention))
    }

    /// The rows `query` selects, in ascending id order (oldest first).
    ///
    /// Errors: the log cannot be read, or holds a row this sandpit cannot
    /// read (e.g. an unknown source), naming the file.
    pub fn query(&self, query: &ActivityQuery) -> anyhow::Result<Vec<ActivityRow>> {
        let mut clauses = Vec::new();
        let mut params: Vec<Value> = Vec::new();
        if let Some(user) = &query.user {
            clauses.push("user = ?");
            params.push(Value::Text(user.as_str().to_string()));
        }
        if let Some(source) = query.source {
            clauses.push("source = ?");
            params.push(Value::Text(source.as_str().to_string()));
        }
        if let Some(since) = query.since_ms {
            clauses.push("time_ms >= ?");
            params.push(Value::Integer(since));
        }
        if let Some(after) = query.after_id {
            clauses.push("id > ?");
            params.push(Value::Integer(after));
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        // Forward from `after_id` (a follower's next page), else the newest.
        let order = if query.after_id.is_some() {
            "ASC"
        } else {
            "DESC"
        };
        let limit = query.limit.unwrap_or(ActivityQuery::DEFAULT_LIMIT);
        params.push(Value::Integer(to_i64(limit as u64)));
        let sql = format!("SELECT {COLUMNS} FROM activity {filter} ORDER BY id {order} LIMIT ?");
        let mut rows = self.with_conn("read", |conn| {
            let mut statement = conn.prepare(&sql)?;
            let rows = statement
                .query_map(rusqlite::params_from_iter(params), read_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        if order == "DESC" {
            rows.reverse();
        }
        Ok(rows)
    }

    /// The highest id recorded so far, 0 when none is: follow from here to
    /// see only what comes next.
    ///
    /// Errors: the log cannot be read.
    pub fn latest_id(&self) -> anyhow::Result<i64> {
        self.with_conn("read", |conn| {
            conn.query_row("SELECT COALESCE(MAX(id), 0) FROM activity", [], |row| {
                row.get(0)
            })
        })
    }

    /// New rows as they are recorded, by this process or any other: the
    /// rows matching `query` after `query.after_id`, or, when that is
    /// `None`, after the newest row at the stream's first poll. Polls every
    /// `interval` (see [`FOLLOW_INTERVAL`]) on tokio's blocking pool, and at
    /// once while a poll returns a full page.
    ///
    /// The stream never ends by itself; drop it to stop. A failed poll
    /// yields an `Err` and the next poll tries again.
    pub fn follow(
        &self,
        query: ActivityQuery,
        interval: Duration,
    ) -> impl Stream<Item = anyhow::Result<ActivityRow>> + Send + 'static {
        let state = Follow {
            log: self.clone(),
            query,
            pending: VecDeque::new(),
            wait: false,
            interval,
        };
        futures_util::stream::unfold(state, |mut state| async move {
            loop {
                if let Some(row) = state.pending.pop_front() {
                    return Some((Ok(row), state));
                }
                if state.wait {
                    tokio::time::sleep(state.interval).await;
                }
                let log = state.log.clone();
                let query = state.query.clone();
                let polled = tokio::task::spawn_blocking(move || poll(&log, query)).await;
                match polled {
                    Ok(Ok((after, rows))) => {
                        let limit = state.query.limit.unwrap_or(ActivityQuery::DEFAULT_LIMIT);
                        state.wait = rows.len() < limit;
                        state.query.after_id = Some(rows.last().map_or(after, |row| row.id));
                        state.pending.extend(rows);
                    }
                    Ok(Err(err)) => {
                        state.wait = true;
                        return Some((Err(err), state));
                    }
                    Err(err) => {
                        state.wait = true;
                        let err = anyhow::anyhow!("activity follow task failed: {err}");
                        return Some((Err(err), state));
                    }
                }
            }
        })
    }
}

struct Follow {
    log: ActivityLog,
    query: ActivityQuery,
    pending: VecDeque<ActivityRow>,
    /// Sleep before the next poll: the last one found all there was.
    wait: bool,
    interval: Duration,
}

/// One follower poll: where it started and the rows after that.
fn poll(log: &ActivityLog, query: ActivityQuery) -> anyhow::Result<(i64, Vec<ActivityRow>)> {
    let after = match query.after_id {
        Some(id) => id,
        None => log.latest_id()?,
    };
    let rows = log.query(&ActivityQuery {
        after_id: Some(after),
        ..query
    })?;
    Ok((after, rows))
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl FromSql for Source {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value
            .as_str()?
            .parse()
            .map_err(|err: String| FromSqlError::Other(err.into()))
    }
}

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ActivityRow> {
    Ok(ActivityRow {
        id: row.get(0)?,
        activity: Activity {
            time_ms: row.get(1)?,
            user: row.get(2)?,
            source: row.get(3)?,
            action: row.get(4)?,
            summary: row.get(5)?,
            exit_code: row.get(6)?,
            duration_ms: to_u64(row.get(7)?),
            flags: ActivityFlags {
                timed_out: row.get(8)?,
                truncated: row.get(9)?,
                oom_killed: row.get(10)?,
                cancelled: row.get(11)?,
                sandbox_restarted: row.get(12)?,
                sandbox_lost: row.get(13)?,
            },
            stdout_bytes: to_u64(row.get(14)?),
            stderr_bytes: to_u64(row.get(15)?),
            error: row.get(16)?,
        },
    })
}

/// Deletes rows older than the age bound, then those more than `max_rows`
/// ids below the newest. Ids are consecutive (one insert per transaction,
/// pruning only takes the oldest), so that keeps the newest `max_rows` rows,
/// and at most that many in any case. Both are index range deletes found in
/// O(log n), nearly free when nothing is due: unlike counting rows or an
/// `OFFSET`, which walk all of them.
fn prune(conn: &Connection, retention: &Retention) -> rusqlite::Result<u64> {
    let mut deleted = 0;
    if let Some(age) = retention.max_age {
        let cutoff = super::now_ms()
            .saturating_sub(to_i64(u64::try_from(age.as_millis()).unwrap_or(u64::MAX)));
        deleted += conn.execute("DELETE FROM activity WHERE time_ms < ?1", [cutoff])?;
    }
    if let Some(rows) = retention.max_rows {
        deleted += conn.execute(
            "DELETE FROM activity WHERE id <= (SELECT MAX(id) FROM activity) - ?1",
            [to_i64(rows)],
        )?;
    }
    Ok(deleted as u64)
}

/// Opens the database at `path`, creating its folder and file with shared
/// modes when missing, in WAL mode with the schema in place.
fn connect(path: &Path) -> anyhow::Result<Connection> {
    if let Some(dir) = path.parent() {
        create_state_dir(dir)?;
    }
    create_db_file(path)?;
    let shown = path.display();
    let conn = Connection::open(path).with_context(|| format!("cannot open {shown}"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .with_context(|| format!("cannot set a busy timeout on {shown}"))?;
    // WAL is a property of the file: set once, every later connection of
    // every process uses it. A user who may only read cannot set it.
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0))
        .with_context(|| format!("cannot put {shown} in WAL mode (is it an SQLite database?)"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!("{shown} is in {mode} journal mode, not WAL: writers may block readers");
    }
    // In WAL mode NORMAL keeps the database consistent through a crash; at
    // worst the last records before a power cut are lost, a fair price for
    // not syncing the disk on every record.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .with_context(|| format!("cannot set synchronous mode on {shown}"))?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .with_context(|| format!("cannot read the schema version of {shown}"))?;
    if version > SCHEMA_VERSION {
        anyhow::bail!(
            "{shown} was written by a newer sandpit (schema {version}; this one reads {SCHEMA_VERSION})"
        );
    }
    if version < SCHEMA_VERSION {
        conn.execute_batch(SCHEMA)
            .with_context(|| format!("cannot create the activity table in {shown}"))?;
    }
    Ok(conn)
}

/// Creates `.sandpit` when missing with [`DIR_MODE`]. An existing folder is
/// left as it is: its modes are the operator's choice.
fn create_state_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(root) = dir.parent() {
        std::fs::create_dir_all(root)
            .with_context(|| format!("cannot create the workspace root {}", root.display()))?;
    }
    match std::fs::DirBuilder::new().mode(DIR_MODE).create(dir) {
        // The umask took bits off; the mode is meant as written.
        Ok(()) => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))
            .with_context(|| format!("cannot set the mode of {}", dir.display())),
        // Another process made it meanwhile.
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err).with_context(|| format!("cannot create {}", dir.display())),
    }
}

/// Creates the database file when missing with [`FILE_MODE`]; SQLite reads
/// an empty file as an empty database.
fn create_db_file(path: &Path) -> anyhow::Result<()> {
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path);
    match created {
        Ok(file) => file
            .set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
            .with_context(|| format!("cannot set the mode of {}", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err).with_context(|| format!("cannot create {}", path.display())),
    }
}
