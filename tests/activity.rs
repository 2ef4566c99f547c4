//! The activity log against real SQLite files in temporary folders: filters,
//! retention, writers in several processes, failures that only warn, and
//! the `sandpit activity` command. No engine is needed.

use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader, Read as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use sandpit::activity::{
    Activity, ActivityFlags, ActivityLog, ActivityQuery, ActivityRow, PRUNE_EVERY, Retention,
    Source, db_path, now_ms,
};
use sandpit::engine::sandbox::UserId;

const CHILD_ROOT_ENV: &str = "SANDPIT_TEST_ACTIVITY_ROOT";
const CHILD_NAME_ENV: &str = "SANDPIT_TEST_ACTIVITY_WRITER";
const CHILD_GO_ENV: &str = "SANDPIT_TEST_ACTIVITY_GO";
const ROWS_PER_CHILD: usize = 500;

fn user(name: &str) -> UserId {
    UserId::parse(name).unwrap()
}

fn at(activity: Activity, time_ms: i64) -> Activity {
    Activity {
        time_ms,
        ..activity
    }
}

fn count(log: &ActivityLog) -> usize {
    log.query(&ActivityQuery {
        limit: Some(usize::MAX >> 1),
        ..Default::default()
    })
    .unwrap()
    .len()
}

#[test]
fn record_and_query_with_each_filter() {
    let root = tempfile::tempdir().unwrap();
    let log = ActivityLog::open(root.path()).unwrap();
    assert_eq!(log.path(), db_path(root.path()));
    assert_eq!(log.latest_id().unwrap(), 0);
    let now = now_ms();
    let full = Activity::new(Source::Cli, &user("alice"), "exec", "python3 -c 'print(1)'")
        .with_exit_code(3)
        .with_duration(Duration::from_millis(42))
        .with_flags(ActivityFlags {
            timed_out: true,
            truncated: true,
            oom_killed: false,
            cancelled: true,
            sandbox_restarted: false,
            sandbox_lost: true,
        })
        .with_output_bytes(10, 20)
        .with_error(&"it went wrong");
    let recorded = [
        at(full, now - 2 * 3_600_000),
        at(
            Activity::new(Source::Mcp, &user("bob"), "execute", "ls"),
            now - 30 * 60_000,
        ),
        at(
            Activity::new(Source::Dashboard, &user("alice"), "run", "main.py"),
            now - 60_000,
        ),
        Activity::new(Source::Mcp, &user("alice"), "write_file", "notes.txt"),
    ];
    let ids: Vec<i64> = recorded
        .iter()
        .map(|activity| log.try_record(activity).unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert_eq!(log.latest_id().unwrap(), ids[3]);

    let select = |query: ActivityQuery| -> Vec<usize> {
        log.query(&query)
            .unwrap()
            .iter()
            .map(|row| ids.iter().position(|id| *id == row.id).unwrap())
            .collect()
    };
    let all = log.query(&ActivityQuery::default()).unwrap();
    let stored: Vec<&Activity> = all.iter().map(|row| &row.activity).collect();
    assert_eq!(stored, recorded.iter().collect::<Vec<_>>(), "round trip");
    let alice = Some(user("alice"));
    let query = |f: fn(&mut ActivityQuery)| {
        let mut query = ActivityQuery::default();
        f(&mut query);
        query
    };
    assert_eq!(
        select(ActivityQuery {
            user: alice.clone(),
            ..Default::default()
        }),
        [0, 2, 3]
    );
    assert_eq!(select(query(|q| q.source = Some(Source::Mcp))), [1, 3]);
    assert_eq!(select(query(|q| q.source = Some(Source::Dashboard))), [2]);
    assert_eq!(
        select(ActivityQuery {
            since_ms: Some(now - 3_600_000),
            ..Default::default()
        }),
        [1, 2, 3]
    );
    assert_eq!(
        select(ActivityQuery {
            user: alice,
            source: Some(Source::Mcp),
            ..Default::default()
        }),
        [3]
    );
    assert_eq!(
        select(query(|q| q.limit = Some(2))),
        [2, 3],
        "the newest two"
    );
    assert_eq!(
        select(ActivityQuery {
            after_id: Some(ids[0]),
            limit: Some(2),
            ..Default::default()
        }),
        [1, 2],
        "paging forward from an id"
    );
    assert_eq!(
        select(ActivityQuery {
            after_id: Some(ids[3]),
            ..Default::default()
        }),
        Vec::<usize>::new()
    );
    assert_eq!(
        select(ActivityQuery {
            user: Some(user("carol")),
            ..Default::default()
        }),
        Vec::<usize>::new()
    );
}

#[test]
fn retention_by_rows_on_open_and_every_so_many_records() {
    let root = tempfile::tempdir().unwrap();
    let retention = Retention {
        max_age: None,
        max_rows: Some(10),
    };
    let log = ActivityLog::open_with(root.path(), retention).unwrap();
    let record = |log: &ActivityLog, i: usize| {
        log.try_record(&Activity::new(
            Source::Cli,
            &user("alice"),
            "exec",
            &format!("row {i}"),
        ))
        .unwrap()
    };
    let ids: Vec<i64> = (0..25).map(|i| record(&log, i)).collect();
    assert_eq!(count(&log), 25, "no prune before {PRUNE_EVERY} records");
    drop(log);

    let log = ActivityLog::open_with(root.path(), retention).unwrap();
    let kept: Vec<i64> = log
        .query(&ActivityQuery::default())
        .unwrap()
        .iter()
        .map(|row| row.id)
        .collect();
    assert_eq!(kept, ids[15..], "opening keeps the newest 10");

    for i in 0..PRUNE_EVERY as usize - 1 {
        record(&log, i);
    }
    assert_eq!(count(&log), 10 + PRUNE_EVERY as usize - 1);
    let last = record(&log, 0);
    let rows = log.query(&ActivityQuery::default()).unwrap();
    assert_eq!(rows.len(), 10, "record number {PRUNE_EVERY} prunes");
    assert_eq!(rows.last().map(|row| row.id), Some(last));
}

#[test]
fn retention_by_age_and_ids_never_reused() {
    let root = tempfile::tempdir().unwrap();
    let retention = Retention {
        max_age: Some(Duration::from_secs(3600)),
        max_rows: None,
    };
    let log = ActivityLog::open_with(root.path(), retention).unwrap();
    let old = at(
        Activity::new(Source::Mcp, &user("alice"), "ls", "."),
        now_ms() - 2 * 3_600_000,
    );
    let old_id = log.try_record(&old).unwrap();
    log.try_record(&old).unwrap();
    assert_eq!(log.prune().unwrap(), 2, "both rows are past an hour");
    assert_eq!(count(&log), 0);

    // An emptied table still never hands out an old id: followers asking
    // for rows after it would miss the new ones.
    let fresh = log
        .try_record(&Activity::new(Source::Mcp, &user("alice"), "ls", "."))
        .unwrap();
    assert!(fresh > old_id + 1, "{fresh} after {old_id}");
    log.try_record(&old).unwrap();
    drop(log);
    let log = ActivityLog::open_with(root.path(), retention).unwrap();
    let rows = log.query(&ActivityQuery::default()).unwrap();
    assert_eq!(
        rows.iter().map(|row| row.id).collect::<Vec<_>>(),
        [fresh],
        "opening prunes by age"
    );
}

/// Writes [`ROWS_PER_CHILD`] rows when run by
/// `two_processes_writing_at_once_lose_no_row`; does nothing otherwise.
#[test]
#[ignore = "a child process of two_processes_writing_at_once_lose_no_row"]
fn child_writer() {
    let (Some(root), Some(name), Some(go)) = (
        std::env::var_os(CHILD_ROOT_ENV),
        std::env::var(CHILD_NAME_ENV).ok(),
        std::env::var_os(CHILD_GO_ENV),
    ) else {
        return;
    };
    // Both writers start together, so their writes overlap.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !Path::new(&go).exists() {
        assert!(Instant::now() < deadline, "no go file {go:?} within 30s");
        std::thread::sleep(Duration::from_millis(1));
    }
    let log = ActivityLog::open(Path::new(&root)).unwrap();
    for i in 0..ROWS_PER_CHILD {
        let activity = Activity::new(Source::Cli, &user(&name), "exec", &i.to_string());
        log.try_record(&activity)
            .unwrap_or_else(|err| panic!("{name} row {i}: {err:#}"));
    }
}

fn spawn_writer(root: &Path, name: &str, go: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_writer", "--ignored", "--nocapture"])
        .env(CHILD_ROOT_ENV, root)
        .env(CHILD_NAME_ENV, name)
        .env(CHILD_GO_ENV, go)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for `child` to exit, failing after `limit`; returns its output.
fn wait_output(mut child: Child, limit: Duration, what: &str) -> (bool, String, String) {
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).map(|_| text)
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).map(|_| text)
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (
        status.success(),
        out.join().unwrap().unwrap(),
        err.join().unwrap().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_writing_at_once_lose_no_row() {
    let root = tempfile::tempdir().unwrap();
    let workspaces = root.path().join("workspaces");
    let go = root.path().join("go");
    // The database does not exist yet: the two writers and this follower
    // race to create it, too.
    let mut children = [
        spawn_writer(&workspaces, "writer-a", &go),
        spawn_writer(&workspaces, "writer-b", &go),
    ];
    let log = ActivityLog::open(&workspaces).unwrap();
    let mut follow = Box::pin(log.follow(
        ActivityQuery {
            after_id: Some(0),
            ..Default::default()
        },
        Duration::from_millis(20),
    ));
    std::fs::write(&go, "").unwrap();

    let expected = 2 * ROWS_PER_CHILD;
    let mut followed: Vec<ActivityRow> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while followed.len() < expected {
        assert!(
            Instant::now() < deadline,
            "followed {} of {expected} rows from the writers within 60s",
            followed.len()
        );
        match tokio::time::timeout(Duration::from_millis(500), follow.next()).await {
            Ok(Some(row)) => followed.push(row.unwrap()),
            Ok(None) => panic!("the follow stream ended"),
            // A writer that failed will never write the rest: say why now.
            Err(_) => {
                for child in &mut children {
                    if let Some(status) = child.try_wait().unwrap()
                        && !status.success()
                    {
                        let mut stderr = String::new();
                        let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
                        panic!(
                            "a writer failed ({status}) after {} rows:\n{stderr}",
                            followed.len()
                        );
                    }
                }
            }
        }
    }
    for (child, name) in children.into_iter().zip(["writer-a", "writer-b"]) {
        let (ok, stdout, stderr) = wait_output(child, Duration::from_secs(60), name);
        assert!(ok, "{name} failed:\n{stdout}\n{stderr}");
        assert!(
            stdout.contains("1 passed"),
            "{name} wrote nothing:\n{stdout}"
        );
    }

    let stored = log
        .query(&ActivityQuery {
            limit: Some(10 * expected),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(stored.len(), expected, "rows in the file");
    assert_eq!(followed, stored, "the follower saw every row, in id order");
    let written: BTreeSet<(String, String)> = stored
        .iter()
        .map(|row| (row.activity.user.clone(), row.activity.summary.clone()))
        .collect();
    for name in ["writer-a", "writer-b"] {
        for i in 0..ROWS_PER_CHILD {
            assert!(
                written.contains(&(name.to_string(), i.to_string())),
                "row {i} of {name} is missing"
            );
        }
    }
    // Whether the writes interleaved depends on scheduling; say so, since a
    // run where they did not proves less.
    let switches = stored
        .windows(2)
        .filter(|w| w[0].activity.user != w[1].activity.user)
        .count();
    eprintln!("writers alternated {switches} times");
}

/// A subscriber that keeps what is logged, to check warnings.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn with_captured_log<T>(f: impl FnOnce() -> T) -> (T, String) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::WARN)
        .finish();
    let value = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    (value, text)
}

#[test]
fn a_log_that_cannot_be_opened_only_warns() {
    let root = tempfile::tempdir().unwrap();
    // A folder where the database file should be: nothing can open it,
    // whoever runs the test (root included).
    std::fs::create_dir_all(db_path(root.path())).unwrap();
    let err = ActivityLog::open(root.path()).unwrap_err();
    assert!(
        format!("{err:#}").contains(&db_path(root.path()).display().to_string()),
        "{err:#}"
    );
    let activity = Activity::new(Source::Mcp, &user("alice"), "execute", "true");
    let (log, logged) = with_captured_log(|| {
        let log = ActivityLog::open_or_warn(root.path(), Retention::default());
        log.record(&activity);
        assert!(log.try_record(&activity).is_err());
        log
    });
    assert!(logged.contains("activity log unavailable"), "{logged}");
    assert!(
        logged.contains("not recorded: mcp execute of `alice`"),
        "{logged}"
    );

    // Once the path is usable, the same log records: it tries again.
    std::fs::remove_dir(db_path(root.path())).unwrap();
    let id = log.try_record(&activity).unwrap();
    let rows = log.query(&ActivityQuery::default()).unwrap();
    assert_eq!(rows.iter().map(|row| row.id).collect::<Vec<_>>(), [id]);
}

#[test]
fn a_failed_write_only_warns() {
    let root = tempfile::tempdir().unwrap();
    let log = ActivityLog::open(root.path()).unwrap();
    let activity = Activity::new(Source::Cli, &user("alice"), "exec", "true");
    log.try_record(&activity).unwrap();
    // Another process breaks the file under this one's feet.
    let other = rusqlite::Connection::open(db_path(root.path())).unwrap();
    other.execute_batch("DROP TABLE activity").unwrap();
    let ((), logged) = with_captured_log(|| log.record(&activity));
    assert!(logged.contains("WARN"), "{logged}");
    assert!(
        logged.contains("not recorded: cli exec of `alice`"),
        "{logged}"
    );
    assert!(logged.contains("no such table"), "{logged}");
    let err = log.try_record(&activity).unwrap_err();
    assert!(
        format!("{err:#}").contains("cannot write the activity log"),
        "{err:#}"
    );
}

#[tokio::test]
async fn record_async_records_off_the_runtime() {
    let root = tempfile::tempdir().unwrap();
    let log = ActivityLog::open(root.path()).unwrap();
    let activity = Activity::new(Source::Mcp, &user("alice"), "glob", "**/*.py");
    log.record_async(activity.clone()).await;
    let rows = log.query(&ActivityQuery::default()).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].activity, activity);
}

#[test]
fn a_newer_schema_is_refused() {
    let root = tempfile::tempdir().unwrap();
    drop(ActivityLog::open(root.path()).unwrap());
    let other = rusqlite::Connection::open(db_path(root.path())).unwrap();
    other.pragma_update(None, "user_version", 9).unwrap();
    let err = ActivityLog::open(root.path()).unwrap_err();
    assert!(format!("{err:#}").contains("newer sandpit"), "{err:#}");
}

#[test]
fn the_folder_and_file_are_shared_with_the_group() {
    use std::os::unix::fs::PermissionsExt as _;
    let root = tempfile::tempdir().unwrap();
    let workspaces = root.path().join("workspaces");
    let log = ActivityLog::open(&workspaces).unwrap();
    log.try_record(&Activity::new(Source::Cli, &user("alice"), "exec", "true"))
        .unwrap();
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o7777;
    let db = db_path(&workspaces);
    assert_eq!(mode(db.parent().unwrap()), 0o2775);
    assert_eq!(mode(&db), 0o660);
    // While a connection is open, SQLite's own files exist with the
    // database's mode: a follower of the group must write the -shm file.
    for suffix in ["-wal", "-shm"] {
        let path = db.with_file_name(format!("activity.db{suffix}"));
        assert_eq!(mode(&path), 0o660, "{}", path.display());
    }
}

// --- the CLI ---

fn sandpit(root: &Path, config_home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sandpit"));
    command
        .arg("--workspace-root")
        .arg(root)
        // No config or runtimes file of whoever runs the tests.
        .env("XDG_CONFIG_HOME", config_home)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn activity_cli(root: &Path, config_home: &Path, args: &[&str]) -> (String, String) {
    let child = sandpit(root, config_home)
        .arg("activity")
        .args(args)
        .spawn()
        .unwrap();
    let (ok, stdout, stderr) = wait_output(
        child,
        Duration::from_secs(30),
        &format!("sandpit activity {args:?}"),
    );
    assert!(ok, "sandpit activity {args:?} failed: {stderr}");
    (stdout, stderr)
}

fn json_rows(stdout: &str) -> Vec<ActivityRow> {
    stdout
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: not a row: {line}"))
        })
        .collect()
}

#[test]
fn cli_lists_as_json_lines_with_filters() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("workspaces");
    let log = ActivityLog::open(&root).unwrap();
    let old = at(
        Activity::new(Source::Cli, &user("alice"), "exec", "make test"),
        now_ms() - 2 * 3_600_000,
    );
    let new = Activity::new(
        Source::Mcp,
        &user("bob"),
        "execute",
        "printf '\u{1b}[2J\u{1b}]0;title\u{7}'",
    )
    .with_exit_code(0);
    log.try_record(&old).unwrap();
    log.try_record(&new).unwrap();

    let (stdout, _) = activity_cli(&root, dir.path(), &["--json"]);
    let rows = json_rows(&stdout);
    assert_eq!(
        rows.iter().map(|row| &row.activity).collect::<Vec<_>>(),
        [&old, &new]
    );
    let users = |args: &[&str]| -> Vec<String> {
        let (stdout, _) = activity_cli(&root, dir.path(), args);
        json_rows(&stdout)
            .into_iter()
            .map(|row| row.activity.user)
            .collect()
    };
    assert_eq!(users(&["--json", "--since", "1h"]), ["bob"]);
    assert_eq!(users(&["--json", "--since", "3h"]), ["alice", "bob"]);
    assert_eq!(users(&["--json", "--user", "alice"]), ["alice"]);
    assert_eq!(users(&["--json", "--source", "mcp"]), ["bob"]);
    assert_eq!(users(&["--json", "--limit", "1"]), ["bob"]);

    let (table, _) = activity_cli(&root, dir.path(), &[]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("TIME (UTC)"), "{table}");
    assert!(lines[1].contains("alice") && lines[1].contains("make test"));
    assert!(
        lines[2].contains(r"printf '\u{1b}[2J\u{1b}]0;title\u{7}'"),
        "{table}"
    );
    assert!(!table.contains('\u{1b}'), "raw escape reached the terminal");

    let child = sandpit(&root, dir.path())
        .args(["activity", "--since", "soon"])
        .spawn()
        .unwrap();
    let (ok, _, stderr) = wait_output(child, Duration::from_secs(30), "activity --since soon");
    assert!(!ok);
    assert!(stderr.contains("`soon` is not a duration"), "{stderr}");
}

/// Kills the child when the test ends, passing or not.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn cli_follow_prints_rows_as_they_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("workspaces");
    let log = ActivityLog::open(&root).unwrap();
    let before = Activity::new(Source::Cli, &user("alice"), "exec", "before");
    log.try_record(&before).unwrap();

    let mut child = KillOnDrop(
        sandpit(&root, dir.path())
            .args(["activity", "--json", "--follow", "--user", "alice"])
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut stderr = child.0.stderr.take().unwrap();
    let mut next_row = |what: &str| -> ActivityRow {
        let line = match lines.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => line.unwrap(),
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("no line for {what} within 20s"),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let mut text = String::new();
                let _ = stderr.read_to_string(&mut text);
                panic!("sandpit activity --follow ended before printing {what}: {text}")
            }
        };
        serde_json::from_str(&line).unwrap_or_else(|err| panic!("{err}: {line}"))
    };
    // Printed at start: after it, the follower's start point is fixed.
    assert_eq!(next_row("the row recorded before").activity, before);

    // Another user's row is filtered out; alice's next one comes through.
    let other = Activity::new(Source::Mcp, &user("bob"), "execute", "not shown");
    log.try_record(&other).unwrap();
    let after = Activity::new(Source::Dashboard, &user("alice"), "run", "after");
    let id = log.try_record(&after).unwrap();
    let row = next_row("the row recorded while following");
    assert_eq!(row.id, id);
    assert_eq!(row.activity, after);

    assert!(
        child.0.try_wait().unwrap().is_none(),
        "--follow exited by itself"
    );
}
