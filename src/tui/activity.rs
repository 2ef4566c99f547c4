//! The Activity pane's model and its feed: what was done in the sandboxes,
//! live from the shared activity log ([`crate::activity`]), whichever
//! sandpit process did it (an MCP agent, a CLI `exec`, this dashboard).
//!
//! The feed runs in the engine worker's process but needs no engine: it
//! polls the log for new ids on tokio's blocking pool (SQLite calls never
//! run on the async threads) and sends what it finds as [`Update::Activity`]
//! messages. The model keeps two bounded lists: the newest rows of every
//! session, for the global view, and the newest of the selected session,
//! loaded when the selection changes ([`Request::ActivityBacklog`]) so a
//! quiet session's history is not crowded out by a busy one.

use std::collections::VecDeque;

use futures_util::StreamExt as _;
use tokio::sync::mpsc;

use super::collector::{Request, Update};
use crate::activity::{self, ActivityLog, ActivityQuery, ActivityRow};
use crate::engine::sandbox::UserId;

/// Rows of all sessions kept for the global view.
pub const FEED_ROWS: usize = 500;
/// Rows of the selected session kept for its view.
pub const USER_ROWS: usize = 200;

/// Which rows the pane lists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Scope {
    /// The selected session's.
    #[default]
    Selected,
    /// Every session's.
    All,
}

/// What the feed sends.
#[derive(Debug, Clone, PartialEq)]
pub enum ActivityUpdate {
    /// New rows, oldest first: at the start the newest [`FEED_ROWS`] of the
    /// log, then each batch recorded since the one before.
    Rows(Vec<ActivityRow>),
    /// The newest [`USER_ROWS`] rows of one user, oldest first, as asked for
    /// with [`Request::ActivityBacklog`].
    Backlog {
        user: String,
        rows: Vec<ActivityRow>,
    },
    /// Reading the log failed; the feed tries again at its next poll.
    Error(String),
}

/// The selected session's rows.
#[derive(Debug, Clone)]
struct UserRows {
    user: String,
    rows: VecDeque<ActivityRow>,
    /// The backlog arrived; until then `rows` holds what the feed had.
    loaded: bool,
}

/// The Activity pane's state.
#[derive(Debug, Clone, Default)]
pub struct ActivityView {
    all: VecDeque<ActivityRow>,
    selected: Option<UserRows>,
    pub scope: Scope,
    /// Rows scrolled back from the newest; 0 keeps the newest in view.
    pub scroll: usize,
    /// The last failure to read the log, cleared by the next rows.
    pub error: Option<String>,
    /// The feed has answered at least once.
    started: bool,
}

impl ActivityView {
    /// Empty, showing the selected session's rows once the feed answers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Follows the selection: when it names another session, its rows so
    /// far come from the global list at once and the request for its
    /// backlog is returned, for the outbox.
    pub fn select(&mut self, user: Option<&str>) -> Option<Request> {
        if self.selected.as_ref().map(|s| s.user.as_str()) == user {
            return None;
        }
        if self.scope == Scope::Selected {
            self.scroll = 0;
        }
        let Some(user) = user else {
            self.selected = None;
            return None;
        };
        let mut rows: VecDeque<ActivityRow> = self
            .all
            .iter()
            .filter(|row| row.activity.user == user)
            .cloned()
            .collect();
        while rows.len() > USER_ROWS {
            rows.pop_front();
        }
        self.selected = Some(UserRows {
            user: user.to_string(),
            rows,
            loaded: false,
        });
        Some(Request::ActivityBacklog {
            user: user.to_string(),
        })
    }

    /// Takes in what the feed sent: rows go to the global list and, for
    /// the selected session, to its list; a backlog replaces the selected
    /// session's list (keeping rows that came meanwhile); both stay bounded
    /// ([`FEED_ROWS`], [`USER_ROWS`]) and never hold an id twice.
    pub fn apply(&mut self, update: ActivityUpdate) {
        match update {
            ActivityUpdate::Rows(rows) => {
                self.started = true;
                self.error = None;
                for row in rows {
                    let to_selected = self
                        .selected
                        .as_mut()
                        .filter(|s| s.user == row.activity.user)
                        .is_some_and(|selected| {
                            push_newer(&mut selected.rows, row.clone(), USER_ROWS)
                        });
                    let to_all = push_newer(&mut self.all, row, FEED_ROWS);
                    let in_view = match self.scope {
                        Scope::All => to_all,
                        Scope::Selected => to_selected,
                    };
                    if in_view && self.scroll > 0 {
                        // Keep the rows being read in place.
                        self.scroll += 1;
                    }
                }
            }
            ActivityUpdate::Backlog { user, rows } => {
                let Some(selected) = self.selected.as_mut().filter(|s| s.user == user) else {
                    return; // The selection moved on.
                };
                let newest = rows.last().map_or(0, |row| row.id);
                // Rows the feed brought while the backlog was read.
                let later: Vec<ActivityRow> = selected
                    .rows
                    .drain(..)
                    .filter(|row| row.id > newest)
                    .collect();
                selected.rows = rows.into_iter().chain(later).collect();
                while selected.rows.len() > USER_ROWS {
                    selected.rows.pop_front();
                }
                selected.loaded = true;
            }
            ActivityUpdate::Error(error) => {
                self.started = true;
                self.error = Some(error);
            }
        }
    }

    /// The rows in view, oldest first.
    pub fn rows(&self) -> &VecDeque<ActivityRow> {
        static EMPTY: VecDeque<ActivityRow> = VecDeque::new();
        match self.scope {
            Scope::All => &self.all,
            Scope::Selected => self.selected.as_ref().map_or(&EMPTY, |s| &s.rows),
        }
    }

    /// The session whose rows the Selected scope shows.
    pub fn selected_user(&self) -> Option<&str> {
        self.selected.as_ref().map(|s| s.user.as_str())
    }

    /// Nothing to show yet because the log has not answered.
    pub fn loading(&self) -> bool {
        match self.scope {
            Scope::All => !self.started,
            Scope::Selected => self
                .selected
                .as_ref()
                .is_some_and(|s| !s.loaded && s.rows.is_empty()),
        }
    }

    /// Between the selected session's rows and every session's.
    pub fn toggle_scope(&mut self) {
        self.scope = match self.scope {
            Scope::Selected => Scope::All,
            Scope::All => Scope::Selected,
        };
        self.scroll = 0;
    }

    /// Back towards older rows, at most to the oldest.
    pub fn scroll_up(&mut self, rows: usize) {
        let len = self.rows().len();
        self.scroll = (self.scroll.saturating_add(rows)).min(len.saturating_sub(1));
    }

    /// Forward towards the newest.
    pub fn scroll_down(&mut self, rows: usize) {
        self.scroll = self.scroll.saturating_sub(rows);
    }

    /// Back to the newest row, following new ones.
    pub fn follow(&mut self) {
        self.scroll = 0;
    }
}

/// Appends `row` unless a row with its id or a later one is there already
/// (the feed and a backlog overlap); drops the oldest past `cap`. Whether
/// it was added.
fn push_newer(rows: &mut VecDeque<ActivityRow>, row: ActivityRow, cap: usize) -> bool {
    if rows.back().is_some_and(|last| last.id >= row.id) {
        return false;
    }
    rows.push_back(row);
    while rows.len() > cap {
        rows.pop_front();
    }
    true
}

/// Follows the log until the dashboard goes away: first the newest
/// [`FEED_ROWS`] rows, then every new row, in batches, as
/// [`ActivityUpdate`]s. A failure is sent and retried at the next poll.
pub async fn feed(log: ActivityLog, updates: mpsc::UnboundedSender<Update>) {
    let send = |update| updates.send(Update::Activity(update)).is_ok();
    // The starting rows, retried until the log answers; a failure that
    // repeats at every poll is sent once, so a log that stays unreadable
    // does not redraw the dashboard at each poll.
    let mut failing: Option<String> = None;
    let after = loop {
        let reader = log.clone();
        let first = tokio::task::spawn_blocking(move || {
            // Read the id first: a row recorded in between is then either in
            // the page or followed, never lost.
            let latest = reader.latest_id()?;
            let rows = reader.query(&ActivityQuery {
                limit: Some(FEED_ROWS),
                ..ActivityQuery::default()
            })?;
            anyhow::Ok((latest, rows))
        })
        .await;
        let error = match first {
            Ok(Ok((latest, rows))) => {
                let after = rows.last().map_or(latest, |row| row.id.max(latest));
                if !send(ActivityUpdate::Rows(rows)) {
                    return;
                }
                break after;
            }
            Ok(Err(err)) => format!("{err:#}"),
            Err(err) => format!("activity log read failed: {err}"),
        };
        if failing.as_ref() != Some(&error) {
            failing = Some(error.clone());
            if !send(ActivityUpdate::Error(error)) {
                return;
            }
        }
        tokio::time::sleep(activity::FOLLOW_INTERVAL).await;
    };
    let query = ActivityQuery {
        after_id: Some(after),
        limit: Some(FEED_ROWS),
        ..ActivityQuery::default()
    };
    // Rows that are ready together (a page) go as one message.
    let mut batches = Box::pin(
        log.follow(query, activity::FOLLOW_INTERVAL)
            .ready_chunks(FEED_ROWS),
    );
    failing = None;
    while let Some(batch) = batches.next().await {
        let mut rows = Vec::new();
        let mut error = None;
        for item in batch {
            match item {
                Ok(row) => rows.push(row),
                Err(err) => error = Some(format!("{err:#}")),
            }
        }
        if !rows.is_empty() {
            failing = None;
            if !send(ActivityUpdate::Rows(rows)) {
                return;
            }
        }
        if let Some(error) = error
            && failing.as_ref() != Some(&error)
        {
            failing = Some(error.clone());
            if !send(ActivityUpdate::Error(error)) {
                return;
            }
        }
    }
}

/// Reads the newest [`USER_ROWS`] rows of `user` on the blocking pool and
/// sends them as an [`ActivityUpdate::Backlog`] (or the failure).
pub async fn backlog(log: ActivityLog, user: String, updates: mpsc::UnboundedSender<Update>) {
    let update = match UserId::parse(&user) {
        Err(err) => ActivityUpdate::Error(format!("activity of `{user}`: {err}")),
        Ok(id) => {
            let read = tokio::task::spawn_blocking(move || {
                log.query(&ActivityQuery {
                    user: Some(id),
                    limit: Some(USER_ROWS),
                    ..ActivityQuery::default()
                })
            })
            .await;
            match read {
                Ok(Ok(rows)) => ActivityUpdate::Backlog { user, rows },
                Ok(Err(err)) => ActivityUpdate::Error(format!("{err:#}")),
                Err(err) => ActivityUpdate::Error(format!("activity log read failed: {err}")),
            }
        }
    };
    let _ = updates.send(Update::Activity(update));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::{Activity, Source};

    fn row(id: i64, user: &str) -> ActivityRow {
        let user = UserId::parse(user).unwrap();
        ActivityRow {
            id,
            activity: Activity::new(Source::Cli, &user, "exec", &format!("echo {id}")),
        }
    }

    fn ids(view: &ActivityView) -> Vec<i64> {
        view.rows().iter().map(|row| row.id).collect()
    }

    #[test]
    fn the_selected_view_follows_its_session_and_the_global_view_all() {
        let mut view = ActivityView::new();
        assert!(view.rows().is_empty() && view.selected_user().is_none());
        view.apply(ActivityUpdate::Rows(vec![
            row(1, "alice"),
            row(2, "bob"),
            row(3, "alice"),
        ]));
        let request = view.select(Some("alice"));
        assert_eq!(
            request,
            Some(Request::ActivityBacklog {
                user: "alice".to_string()
            })
        );
        // What the feed had shows at once.
        assert_eq!(ids(&view), [1, 3]);
        assert_eq!(view.select(Some("alice")), None, "no change, no request");
        view.apply(ActivityUpdate::Rows(vec![row(4, "bob"), row(5, "alice")]));
        assert_eq!(ids(&view), [1, 3, 5]);
        view.toggle_scope();
        assert_eq!(view.scope, Scope::All);
        assert_eq!(ids(&view), [1, 2, 3, 4, 5]);
        view.select(None);
        view.toggle_scope();
        assert!(view.rows().is_empty());
    }

    #[test]
    fn a_backlog_merges_with_rows_that_came_meanwhile() {
        let mut view = ActivityView::new();
        view.apply(ActivityUpdate::Rows(Vec::new()));
        view.select(Some("alice"));
        assert!(view.loading());
        // Live rows arrive before the backlog does.
        view.apply(ActivityUpdate::Rows(vec![row(10, "alice"), row(11, "bob")]));
        assert!(!view.loading());
        view.apply(ActivityUpdate::Backlog {
            user: "alice".to_string(),
            rows: vec![row(2, "alice"), row(7, "alice")],
        });
        assert_eq!(ids(&view), [2, 7, 10]);
        // A backlog that already holds the live row: no duplicate.
        view.apply(ActivityUpdate::Backlog {
            user: "alice".to_string(),
            rows: vec![row(7, "alice"), row(10, "alice")],
        });
        assert_eq!(ids(&view), [7, 10]);
        // A late backlog of a session no longer selected is dropped.
        view.select(Some("bob"));
        view.apply(ActivityUpdate::Backlog {
            user: "alice".to_string(),
            rows: vec![row(1, "alice")],
        });
        assert_eq!(ids(&view), [11]);
    }

    #[test]
    fn lists_stay_bounded_and_ids_only_grow() {
        let mut view = ActivityView::new();
        view.select(Some("alice"));
        let rows: Vec<ActivityRow> = (1..=(FEED_ROWS as i64 + 50))
            .map(|id| row(id, "alice"))
            .collect();
        view.apply(ActivityUpdate::Rows(rows));
        assert_eq!(view.rows().len(), USER_ROWS);
        assert_eq!(view.rows().back().unwrap().id, FEED_ROWS as i64 + 50);
        view.toggle_scope();
        assert_eq!(view.rows().len(), FEED_ROWS);
        assert_eq!(view.rows().front().unwrap().id, 51);
        // A repeated or older row (overlapping pages) is not added again.
        view.apply(ActivityUpdate::Rows(vec![
            row(3, "alice"),
            row(FEED_ROWS as i64 + 50, "bob"),
        ]));
        assert_eq!(view.rows().len(), FEED_ROWS);
        assert_eq!(view.rows().back().unwrap().activity.user, "alice");
    }

    #[test]
    fn scrolling_stays_in_range_and_keeps_its_place() {
        let mut view = ActivityView::new();
        view.toggle_scope();
        view.apply(ActivityUpdate::Rows(
            (1..=10).map(|id| row(id, "bob")).collect(),
        ));
        view.scroll_up(3);
        assert_eq!(view.scroll, 3);
        view.scroll_up(100);
        assert_eq!(view.scroll, 9);
        // New rows while scrolled back: the same rows stay in view.
        view.apply(ActivityUpdate::Rows(vec![row(11, "bob"), row(12, "bob")]));
        assert_eq!(view.scroll, 11);
        view.scroll_down(5);
        assert_eq!(view.scroll, 6);
        view.follow();
        assert_eq!(view.scroll, 0);
        view.apply(ActivityUpdate::Rows(vec![row(13, "bob")]));
        assert_eq!(view.scroll, 0);
        // The same in one session's view, counting only its own rows.
        view.toggle_scope();
        view.select(Some("bob"));
        view.scroll_up(2);
        view.apply(ActivityUpdate::Rows(vec![row(14, "alice"), row(15, "bob")]));
        assert_eq!(view.scroll, 3);
    }

    #[test]
    fn errors_show_until_rows_come() {
        let mut view = ActivityView::new();
        view.toggle_scope();
        assert!(view.loading());
        view.apply(ActivityUpdate::Error("locked".to_string()));
        assert_eq!(view.error.as_deref(), Some("locked"));
        assert!(!view.loading());
        view.apply(ActivityUpdate::Rows(vec![row(1, "bob")]));
        assert_eq!(view.error, None);
    }

    #[tokio::test]
    async fn the_feed_sends_the_log_then_new_rows() {
        let root = tempfile::tempdir().unwrap();
        let log = ActivityLog::open(root.path()).unwrap();
        let user = UserId::parse("alice").unwrap();
        for n in 0..3 {
            log.try_record(&Activity::new(
                Source::Mcp,
                &user,
                "execute",
                &format!("n={n}"),
            ))
            .unwrap();
        }
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(feed(log.clone(), tx.clone()));
        let next = async |rx: &mut mpsc::UnboundedReceiver<Update>| {
            let update = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
                .await
                .expect("an activity update within 10 s");
            match update {
                Some(Update::Activity(update)) => update,
                other => panic!("not an activity update: {other:?}"),
            }
        };
        let ActivityUpdate::Rows(first) = next(&mut rx).await else {
            panic!("the first update is rows");
        };
        assert_eq!(first.len(), 3);
        // Another process's row (another handle on the same file).
        let other = ActivityLog::open(root.path()).unwrap();
        other
            .try_record(&Activity::new(Source::Cli, &user, "exec", "echo \u{1b}[2J"))
            .unwrap();
        let ActivityUpdate::Rows(live) = next(&mut rx).await else {
            panic!("then new rows");
        };
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].activity.summary, r"echo \u{1b}[2J");
        // The backlog of one user.
        backlog(log, "alice".to_string(), tx).await;
        let ActivityUpdate::Backlog { user, rows } = next(&mut rx).await else {
            panic!("a backlog");
        };
        assert_eq!((user.as_str(), rows.len()), ("alice", 4));
        task.abort();
    }

    #[tokio::test]
    async fn an_unreadable_log_is_reported_once() {
        let root = tempfile::tempdir().unwrap();
        // A folder where the database should be: every open fails.
        std::fs::create_dir_all(crate::activity::db_path(root.path())).unwrap();
        let log = ActivityLog::open_or_warn(root.path(), crate::activity::Retention::default());
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(feed(log, tx));
        let first = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
            .await
            .expect("an update within 10 s");
        let Some(Update::Activity(ActivityUpdate::Error(error))) = first else {
            panic!("not an error: {first:?}");
        };
        assert!(error.contains("activity.db"), "{error}");
        // Four more polls fail the same way, silently.
        tokio::time::sleep(activity::FOLLOW_INTERVAL * 4).await;
        assert!(rx.try_recv().is_err(), "the same failure was sent again");
        task.abort();
    }
}
