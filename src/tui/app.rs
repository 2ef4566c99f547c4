//! The dashboard's state and the router of its events: a key goes to the
//! open popup (`ui/popups/`), the focused pane (`ui/panes/`) or the global
//! actions, each looked up in the keymap; a click goes to the pane under it
//! through the pane table. Engine updates replace snapshots, and anything
//! that needs the engine goes out as a [`Request`] in the outbox.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crossterm::event::{Event, KeyEvent, KeyEventKind, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::{Position, Rect};

use super::activity::ActivityView;
use super::collector::{FileOp, Request, Update};
use super::history::SessionHistory;
use super::keymap::{Action, KeyMap};
use super::popups::{Confirm, Confirmable, NewSessionForm, Popup, Prompt};
use super::theme::{Theme, ThemeSet};
use super::ui::layout::Areas;
use super::ui::{panes, popups};
use super::work::{CodeStyle, RunState, Work};
use crate::engine::images::ImageState;
use crate::engine::runtimes::run_command;
use crate::engine::runtimes::{Indent, Language, RuntimeSet};
use crate::engine::stats::StatsSample;
use crate::sessions::Session;
use crate::sessions::isolation::ProbeResult;

/// Samples kept per session for the charts: five minutes at one a second.
pub const HISTORY_LEN: usize = super::history::CAPACITY;
const BUILD_LOG_LINES: usize = 500;
const NOTICE_TTL: Duration = Duration::from_secs(6);

/// Keys closer together than this come from a paste in a terminal without
/// bracketed paste (or a macro), not from a person: people type at most about
/// 15 keys a second and key repeat runs near 30 a second. A destructive answer
/// waits this long, and is dropped when another key follows within it.
pub const BURST_GAP: Duration = Duration::from_millis(15);

/// An effect that only a deliberate key may cause: it cannot be undone, so a
/// key inside a burst never causes it (see [`BURST_GAP`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Deliberate {
    /// Leave the dashboard (sessions keep running).
    Quit,
    /// Hand the terminal to a shell in this session: what follows a key
    /// in a burst (a paste) would be typed into it.
    Shell(String),
    /// Send a destructive request, announcing it with `notice`.
    Send {
        notice: String,
        request: Box<Request>,
    },
}

impl Deliberate {
    fn describe(&self) -> String {
        match self {
            Deliberate::Quit => "quit".to_string(),
            Deliberate::Shell(user) => format!("open a shell in `{user}`"),
            Deliberate::Send { request, .. } => match request.as_ref() {
                Request::Stop(user) => format!("stop `{user}`"),
                Request::Restart(user) => format!("restart `{user}`"),
                Request::Delete { user, purge: true } => format!("purge `{user}`"),
                Request::Delete { user, .. } => format!("delete `{user}`"),
                Request::FileOp {
                    op: FileOp::Delete(path),
                    ..
                } => format!("delete {path}"),
                other => format!("{other:?}"),
            },
        }
    }
}

/// How the key being handled arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyTiming {
    /// Handed in directly (tests, scripts): deliberate, effects at once.
    Untimed,
    /// From the terminal at this time, not within a burst: a destructive
    /// effect waits out [`BURST_GAP`] in case a burst follows.
    Timed(Instant),
    /// Within a burst: no destructive effect.
    Burst,
}

pub use super::ui::panes::Pane;
use super::ui::panes::sessions::{Column, SessionSort};

/// Where the Output pane's ctrl-s saves the output, in the workspace.
pub const OUTPUT_FILE: &str = "output.log";

/// Ticks between refreshes of the selected session's file tree.
const FILES_REFRESH_TICKS: u64 = 2;

/// What a runtime gives a new editor buffer.
#[derive(Debug, Clone)]
struct RuntimeCode {
    file: String,
    starter: String,
    run: String,
    language: Language,
    /// The runtime's own `indent`, over the config's.
    indent: Option<Indent>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineStatus {
    Connecting,
    Up { version: String },
    Down { error: String },
}

#[derive(Debug, Clone)]
pub struct RuntimeRow {
    pub name: String,
    pub language: Language,
    pub state: Option<ImageState>,
}

#[derive(Debug, Clone)]
pub struct BuildView {
    pub runtime: String,
    pub lines: VecDeque<String>,
    pub finished: Option<Result<String, String>>,
}

#[derive(Debug, Clone)]
pub struct IsolationView {
    pub from: String,
    pub target: String,
    pub result: Option<Result<Vec<ProbeResult>, String>>,
}

#[derive(Debug, Clone)]
pub struct Notice {
    pub text: String,
    pub error: bool,
    pub at: Instant,
}

/// The visible sessions (filtered and sorted) as indices into
/// [`App::sessions`], with what they were computed from.
#[derive(Debug, Default)]
struct VisibleCache {
    generation: u64,
    filter: String,
    sort: SessionSort,
    valid: bool,
    rows: Vec<usize>,
}

pub struct App {
    pub themes: ThemeSet,
    pub theme_index: usize,
    pub keymap: KeyMap,
    pub engine: EngineStatus,
    pub sessions: Vec<Session>,
    /// Each session's recent resource use, by user.
    pub stats: HashMap<String, SessionHistory>,
    /// The Activity pane's rows.
    pub activity: ActivityView,
    pub runtimes: Vec<RuntimeRow>,
    pub focus: Pane,
    /// Index into the visible (filtered) sessions.
    pub selected_session: usize,
    pub selected_runtime: usize,
    pub filter: String,
    pub filtering: bool,
    pub popup: Option<Popup>,
    pub build: Option<BuildView>,
    pub isolation: Option<IsolationView>,
    pub notice: Option<Notice>,
    /// Requests for the engine worker, drained by the event loop.
    pub outbox: Vec<Request>,
    /// A session to open a shell in: the event loop hands the terminal
    /// over (see `tui::handover`) and takes it back when the shell exits.
    pub shell_request: Option<String>,
    /// Something changed since the last frame.
    pub dirty: bool,
    pub should_quit: bool,
    /// The size of the last frame, for mouse hit-testing.
    pub area: Rect,
    /// Each session's editor buffer and run output, by user.
    pub work: HashMap<String, Work>,
    /// The config's `[editor]`: indentation by language.
    pub editor_config: crate::config::EditorConfig,
    runtime_code: HashMap<String, RuntimeCode>,
    ticks: u64,
    /// First rows shown by the last frame, so clicks land on the row seen.
    pub sessions_offset: std::cell::Cell<usize>,
    pub runtimes_offset: std::cell::Cell<usize>,
    pub files_offset: std::cell::Cell<usize>,
    /// How the sessions list is sorted.
    pub sort: SessionSort,
    /// When each running session's container started (Unix seconds), by
    /// user, from the engine through the collector.
    pub started: HashMap<String, i64>,
    /// The Unix time drawing uses instead of the clock (tests, benches).
    pub fixed_now: Option<i64>,
    /// The visible sessions' indices, recomputed when what they depend on
    /// changes (see [`App::visible_rows`]).
    visible: std::cell::RefCell<VisibleCache>,
    /// Bumped whenever the sessions or what they sort by change.
    generation: u64,
    /// A destructive effect waiting out [`BURST_GAP`], with its key's time.
    pending: Option<(Deliberate, Instant)>,
    /// When the last key from the terminal arrived.
    last_key_at: Option<Instant>,
    key_timing: KeyTiming,
}

impl App {
    pub fn new(
        themes: ThemeSet,
        theme_index: usize,
        keymap: KeyMap,
        runtimes: &RuntimeSet,
    ) -> Self {
        let notice = (!themes.problems.is_empty()).then(|| Notice {
            text: themes.problems.join("; "),
            error: true,
            at: Instant::now(),
        });
        Self {
            themes,
            theme_index,
            keymap,
            engine: EngineStatus::Connecting,
            sessions: Vec::new(),
            stats: HashMap::new(),
            activity: ActivityView::new(),
            runtimes: runtimes
                .iter()
                .map(|runtime| RuntimeRow {
                    name: runtime.name.clone(),
                    language: runtime.language,
                    state: None,
                })
                .collect(),
            focus: Pane::Sessions,
            selected_session: 0,
            selected_runtime: 0,
            filter: String::new(),
            filtering: false,
            popup: None,
            build: None,
            isolation: None,
            notice,
            outbox: Vec::new(),
            shell_request: None,
            dirty: true,
            should_quit: false,
            area: Rect::default(),
            work: HashMap::new(),
            editor_config: crate::config::EditorConfig::default(),
            ticks: 0,
            sessions_offset: std::cell::Cell::new(0),
            runtimes_offset: std::cell::Cell::new(0),
            files_offset: std::cell::Cell::new(0),
            sort: SessionSort::default(),
            started: HashMap::new(),
            fixed_now: None,
            visible: std::cell::RefCell::new(VisibleCache::default()),
            generation: 0,
            pending: None,
            last_key_at: None,
            key_timing: KeyTiming::Untimed,
            runtime_code: runtimes
                .iter()
                .map(|runtime| {
                    let code = RuntimeCode {
                        file: runtime.file.clone(),
                        starter: runtime.starter.clone(),
                        run: runtime.run.clone(),
                        language: runtime.language,
                        indent: runtime.indent,
                    };
                    (runtime.name.clone(), code)
                })
                .collect(),
        }
    }

    /// The selected session's work, made from its runtime's starter on first use.
    pub fn selected_work_mut(&mut self) -> Option<(String, &mut Work)> {
        let session = self.selected()?.clone();
        let user = session.sandbox.user.clone();
        let code = self
            .runtime_code
            .get(&session.sandbox.runtime)
            .cloned()
            .unwrap_or(RuntimeCode {
                file: "main.sh".to_string(),
                starter: String::new(),
                run: "sh {file}".to_string(),
                language: Language::Shell,
                indent: None,
            });
        let editor = &self.editor_config;
        let work = self.work.entry(user.clone()).or_insert_with(|| {
            let mut work = Work::new(&code.file, &code.starter, &code.run);
            work.set_code_style(CodeStyle {
                language: code.language,
                indent: editor.indent(code.language, code.indent),
                file: code.file.clone(),
                editor: editor.clone(),
            });
            work
        });
        Some((user, work))
    }

    pub fn selected_work(&self) -> Option<&Work> {
        self.selected().and_then(|s| self.work.get(&s.sandbox.user))
    }

    /// Gives a pane the focus, letting it prepare (e.g. a fresh listing).
    pub fn focus_pane(&mut self, pane: Pane) {
        self.focus = pane;
        pane.component().on_focus(self);
    }

    /// Saves the selected session's buffer and runs it with its runtime.
    pub(crate) fn run_selected(&mut self) {
        if !self.engine_ready() {
            return;
        }
        let Some(running) = self.selected().map(|s| s.sandbox.is_running()) else {
            self.warn("select a session to run code in");
            return;
        };
        if !running {
            let start = self.keymap.first(Action::StartStop);
            self.warn(format!(
                "the session is not running; press {start} to start it"
            ));
            return;
        }
        let (columns, lines) = panes::output::text_size(self.area);
        let Some((user, work)) = self.selected_work_mut() else {
            return;
        };
        if work.is_running() {
            return;
        }
        work.start_run();
        work.modified = false;
        let request = Request::Run {
            user,
            file: work.file.clone(),
            contents: work.contents(),
            // The file name is in its escaped form (see `engine::names`).
            command: run_command(
                &work.run_template,
                crate::engine::names::unescape(&work.file)
                    .unwrap_or_else(|_| work.file.clone().into_bytes()),
            ),
            columns,
            lines,
        };
        self.outbox.push(request);
    }

    pub(crate) fn save_selected(&mut self) {
        if !self.engine_ready() {
            return;
        }
        if let Some((user, work)) = self.selected_work_mut() {
            work.modified = false;
            let request = Request::Save {
                user,
                file: work.file.clone(),
                contents: work.contents(),
            };
            self.outbox.push(request);
        }
    }

    /// Carries out a file-name or search prompt.
    pub(crate) fn submit_prompt(&mut self, purpose: Prompt, text: String) {
        let (width, _) = panes::output::text_size(self.area);
        let Some((user, work)) = self.selected_work_mut() else {
            return;
        };
        let text = text.trim().to_string();
        let op = match purpose {
            Prompt::SearchEditor => {
                match work.editor.set_search_pattern(&text) {
                    Ok(()) => {
                        if !work.editor.search_forward(true) {
                            self.warn(format!("`{text}` is not in the buffer"));
                        }
                    }
                    Err(err) => self.warn(format!("`{text}` is not a valid search: {err}")),
                }
                return;
            }
            Prompt::SearchOutput => {
                work.output_search = text.clone();
                if !work.output.find_back(&text, width) {
                    self.warn(format!("`{text}` is not in the output above"));
                }
                return;
            }
            _ if text.is_empty() => {
                self.warn("a name is needed");
                return;
            }
            Prompt::NewFile { dir } => FileOp::NewFile(crate::tui::files::join(&dir, &text)),
            Prompt::NewDir { dir } => FileOp::NewDir(crate::tui::files::join(&dir, &text)),
            Prompt::Rename { from } => FileOp::Rename { from, to: text },
        };
        self.outbox.push(Request::FileOp { user, op });
    }

    pub fn theme(&self) -> &Theme {
        // select() and cycling keep the index in range; fall back regardless.
        self.themes
            .themes
            .get(self.theme_index)
            .or_else(|| self.themes.themes.first())
            .unwrap_or_else(|| unreachable!("the built-in themes always parse"))
    }

    /// Reports a problem (e.g. a bad keymap file) in the status line.
    pub fn warn(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice {
            text: text.into(),
            error: true,
            at: Instant::now(),
        });
        self.dirty = true;
    }

    pub(crate) fn inform(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice {
            text: text.into(),
            error: false,
            at: Instant::now(),
        });
    }

    /// Sessions matching the filter, in the list's sort order.
    pub fn visible_sessions(&self) -> Vec<&Session> {
        self.visible_rows()
            .iter()
            .filter_map(|index| self.sessions.get(*index))
            .collect()
    }

    /// The visible sessions as indices into [`App::sessions`], filtered and
    /// sorted; computed again only when the sessions, the filter or the sort
    /// changed, so a frame costs no work proportional to all sessions.
    pub fn visible_rows(&self) -> std::cell::Ref<'_, [usize]> {
        {
            let cache = self.visible.borrow();
            let fresh = cache.valid
                && cache.generation == self.generation
                && cache.sort == self.sort
                && cache.filter == self.filter;
            if fresh {
                return std::cell::Ref::map(cache, |c| c.rows.as_slice());
            }
        }
        let rows = self.compute_visible();
        {
            let mut cache = self.visible.borrow_mut();
            *cache = VisibleCache {
                generation: self.generation,
                filter: self.filter.clone(),
                sort: self.sort,
                valid: true,
                rows,
            };
        }
        std::cell::Ref::map(self.visible.borrow(), |c| c.rows.as_slice())
    }

    fn compute_visible(&self) -> Vec<usize> {
        let filter = self.filter.to_lowercase();
        let mut rows: Vec<usize> = self
            .sessions
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                filter.is_empty()
                    || s.sandbox.user.to_lowercase().contains(&filter)
                    || s.sandbox.runtime.to_lowercase().contains(&filter)
            })
            .map(|(index, _)| index)
            .collect();
        let now = self.now();
        rows.sort_by(|a, b| {
            let (a, b) = (&self.sessions[*a], &self.sessions[*b]);
            self.sort.compare(a, b, self, now)
        });
        rows
    }

    /// Sorts again, keeping the same session selected.
    fn resort(&mut self) {
        let selected = self.selected_user();
        self.reselect(selected);
    }

    /// Computes the visible sessions again and selects `selected` (a user)
    /// among them when it is there.
    fn reselect(&mut self, selected: Option<String>) {
        self.generation += 1;
        let index = selected.and_then(|user| {
            self.visible_rows()
                .iter()
                .position(|i| self.sessions[*i].sandbox.user == user)
        });
        let len = self.visible_rows().len();
        self.selected_session = index
            .unwrap_or(self.selected_session)
            .min(len.saturating_sub(1));
    }

    /// Sorts the sessions by `column` (descending when asked), keeping the
    /// same session selected.
    pub fn sort_sessions(&mut self, sort: SessionSort) {
        let selected = self.selected_user();
        self.sort = sort;
        self.reselect(selected);
    }

    pub fn selected(&self) -> Option<&Session> {
        let index = self.visible_rows().get(self.selected_session).copied()?;
        self.sessions.get(index)
    }

    /// Unix seconds now (or [`App::fixed_now`]).
    pub fn now(&self) -> i64 {
        self.fixed_now.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        })
    }

    /// How long a running session has been up, in seconds, when its start
    /// time is known.
    pub fn uptime(&self, session: &Session, now: i64) -> Option<i64> {
        if !session.sandbox.is_running() {
            return None;
        }
        let started = self.started.get(&session.sandbox.user)?;
        Some((now - started).max(0))
    }

    pub fn selected_user(&self) -> Option<String> {
        self.selected().map(|s| s.sandbox.user.clone())
    }

    /// Points the Activity pane at the selected session, asking the worker
    /// for its backlog when the selection moved. The event loop calls it
    /// after every event and update, before sending the outbox.
    pub fn sync_activity(&mut self) {
        let user = self.selected_user();
        if let Some(request) = self.activity.select(user.as_deref()) {
            self.outbox.push(request);
            self.dirty = true;
        }
    }

    pub fn latest_stats(&self, user: &str) -> Option<&StatsSample> {
        self.stats.get(user).and_then(SessionHistory::latest)
    }

    // --- engine updates -------------------------------------------------

    pub fn apply(&mut self, update: Update) {
        // A sample of a session not shown in the Stats pane changes only
        // the table's numbers, which the once-a-second tick redraws: with
        // many sessions, a frame per sample would be most of the CPU.
        let shown = match &update {
            Update::Stats { user, .. } => self.selected().is_some_and(|s| s.sandbox.user == *user),
            _ => true,
        };
        self.dirty |= shown;
        match update {
            Update::EngineUp { version } => self.engine = EngineStatus::Up { version },
            Update::EngineDown { error } => self.engine = EngineStatus::Down { error },
            Update::Sessions(sessions) => {
                let selected = self.selected_user();
                self.sessions = sessions;
                let users: std::collections::HashSet<&str> = self
                    .sessions
                    .iter()
                    .map(|s| s.sandbox.user.as_str())
                    .collect();
                self.stats.retain(|user, _| users.contains(user.as_str()));
                let running: std::collections::HashSet<&str> = self
                    .sessions
                    .iter()
                    .filter(|s| s.sandbox.is_running())
                    .map(|s| s.sandbox.user.as_str())
                    .collect();
                self.started
                    .retain(|user, _| running.contains(user.as_str()));
                // Keep the same session selected when it still exists.
                self.reselect(selected);
            }
            Update::Started { user, at } => {
                self.started.insert(user, at);
                if self.sort.column == Column::Uptime {
                    self.resort();
                }
            }
            Update::Runtimes(rows) => {
                for (name, state) in rows {
                    if let Some(row) = self.runtimes.iter_mut().find(|r| r.name == name) {
                        row.state = state;
                    }
                }
            }
            Update::Stats { user, sample } => {
                self.stats.entry(user).or_default().push(sample);
            }
            Update::BuildLog { runtime, line } => {
                let build = self.build.get_or_insert_with(|| BuildView {
                    runtime: runtime.clone(),
                    lines: VecDeque::new(),
                    finished: None,
                });
                if build.runtime != runtime {
                    *build = BuildView {
                        runtime,
                        lines: VecDeque::new(),
                        finished: None,
                    };
                }
                if build.lines.len() == BUILD_LOG_LINES {
                    build.lines.pop_front();
                }
                build.lines.push_back(line);
            }
            Update::BuildFinished { runtime, result } => {
                match &result {
                    Ok(tag) => self.inform(format!("{runtime}: {tag} is ready")),
                    Err(_) => {
                        let build = self.keymap.first(Action::Build);
                        self.warn(format!(
                            "{runtime}: build failed; see the build log ({build})"
                        ))
                    }
                }
                let build = self.build.get_or_insert_with(|| BuildView {
                    runtime: runtime.clone(),
                    lines: VecDeque::new(),
                    finished: None,
                });
                build.finished = Some(result);
            }
            Update::Isolation {
                from,
                target,
                result,
            } => {
                self.isolation = Some(IsolationView {
                    from,
                    target,
                    result: Some(result),
                });
            }
            Update::RunOutput { user, stream, data } => {
                if let Some(work) = self.work.get_mut(&user) {
                    work.output.push(stream, &data);
                }
            }
            Update::RunFinished { user, result } => {
                if let Some(work) = self.work.get_mut(&user) {
                    work.end_run(match &result {
                        Ok(result) => RunState::finished(result),
                        Err(error) => RunState::Failed(error.clone()),
                    });
                }
            }
            Update::DirListing { user, path, result } => {
                if let Some(work) = self.work.get_mut(&user) {
                    match result {
                        Ok(entries) => work.tree.set_listing(path, entries),
                        // A folder that went away folds up; a root error shows.
                        Err(error) if path.is_empty() => work.tree.error = Some(error),
                        Err(_) => work.tree.forget(&path),
                    }
                }
            }
            Update::FileOpened { user, path, result } => match result {
                Ok(data) if data.binary => {
                    self.warn(format!(
                        "{path} is a binary file; it is not opened in the editor"
                    ));
                }
                Ok(data) => {
                    if let Some(work) = self.work.get_mut(&user) {
                        work.open(&path, &String::from_utf8_lossy(&data.bytes));
                    }
                    self.focus = Pane::Editor;
                    let save = self.keymap.first(Action::EditorSave);
                    self.inform(format!("opened {path}; {save} saves it"));
                }
                Err(error) => self.warn(error),
            },
            Update::FilesChanged { user, dirs } => {
                let running = self
                    .sessions
                    .iter()
                    .any(|s| s.sandbox.user == user && s.sandbox.is_running());
                if running && self.work.contains_key(&user) {
                    self.outbox
                        .extend(dirs.into_iter().map(|path| Request::ListDir {
                            user: user.clone(),
                            path,
                        }));
                }
            }
            Update::Notice(text) => self.inform(text),
            Update::Failure(text) => self.warn(text),
            Update::Activity(update) => self.activity.apply(update),
        }
    }

    /// Once a second: expire notices and let ages and uptimes move.
    /// Asks for fresh listings of the selected session's visible folders.
    pub(crate) fn refresh_files(&mut self) {
        let running = self.selected().is_some_and(|s| s.sandbox.is_running());
        let ready = matches!(self.engine, EngineStatus::Up { .. });
        if !running || !ready {
            return;
        }
        if let Some((user, work)) = self.selected_work_mut() {
            let requests: Vec<Request> = work
                .tree
                .watched()
                .into_iter()
                .map(|path| Request::ListDir {
                    user: user.clone(),
                    path,
                })
                .collect();
            self.outbox.extend(requests);
        }
    }

    pub fn tick(&mut self) {
        self.ticks += 1;
        // Samples arrived since the last tick: a list sorted by them is
        // sorted again once a second, not once per sample.
        if self.sort.column.sorts_by_stats() {
            self.resort();
        }
        if self.ticks.is_multiple_of(FILES_REFRESH_TICKS) {
            self.refresh_files();
        }
        if self
            .notice
            .as_ref()
            .is_some_and(|notice| notice.at.elapsed() > NOTICE_TTL)
        {
            self.notice = None;
        }
        self.dirty = true;
    }

    // --- input ----------------------------------------------------------

    /// An event from the terminal, arriving now.
    pub fn handle_event(&mut self, event: Event) {
        self.handle_event_at(event, Instant::now());
    }

    /// An event from the terminal that arrived at `at`: keys closer together
    /// than [`BURST_GAP`] are a burst, and cause nothing destructive.
    pub fn handle_event_at(&mut self, event: Event, at: Instant) {
        match event {
            Event::Key(key) if key.kind != KeyEventKind::Release => {
                let burst = self
                    .last_key_at
                    .is_some_and(|last| at.saturating_duration_since(last) < BURST_GAP);
                self.last_key_at = Some(at);
                if burst {
                    if let Some((effect, _)) = self.pending.take() {
                        self.refuse_in_burst(&effect);
                    }
                    self.key_timing = KeyTiming::Burst;
                } else {
                    self.settle(at);
                    self.key_timing = KeyTiming::Timed(at);
                }
                self.handle_key(key);
                self.key_timing = KeyTiming::Untimed;
            }
            Event::Paste(text) => self.handle_paste(&text),
            Event::Mouse(mouse) => self.handle_mouse(mouse),
            Event::Resize(..) => self.dirty = true,
            _ => {}
        }
    }

    /// Carries out a destructive effect held back since its key, once no key
    /// followed it within [`BURST_GAP`]. The event loop calls it every frame.
    pub fn settle(&mut self, now: Instant) {
        if let Some((_, at)) = &self.pending
            && now.saturating_duration_since(*at) >= BURST_GAP
            && let Some((effect, _)) = self.pending.take()
        {
            self.commit(effect);
        }
    }

    /// A destructive effect waiting out [`BURST_GAP`], if any.
    pub fn pending(&self) -> Option<&Deliberate> {
        self.pending.as_ref().map(|(effect, _)| effect)
    }

    /// Asks for a destructive effect: at once for a deliberate key, after
    /// [`BURST_GAP`] for a terminal key, never for a key inside a burst.
    pub(crate) fn deliberate(&mut self, effect: Deliberate) {
        match self.key_timing {
            KeyTiming::Untimed => self.commit(effect),
            KeyTiming::Timed(at) => self.pending = Some((effect, at)),
            KeyTiming::Burst => self.refuse_in_burst(&effect),
        }
    }

    fn commit(&mut self, effect: Deliberate) {
        self.dirty = true;
        match effect {
            Deliberate::Quit => self.should_quit = true,
            Deliberate::Shell(user) => self.shell_request = Some(user),
            Deliberate::Send { notice, request } => {
                self.inform(notice);
                self.outbox.push(*request);
            }
        }
    }

    fn refuse_in_burst(&mut self, effect: &Deliberate) {
        self.warn(format!(
            "did not {}: keys arrived faster than anyone types (a paste?); press the key again",
            effect.describe()
        ));
    }

    /// Pasted text (bracketed paste): text for the editor or the focused
    /// text field, as one edit; anywhere else it is ignored. A paste never
    /// triggers an action.
    pub fn handle_paste(&mut self, text: &str) {
        self.dirty = true;
        // Terminals send pasted line ends as CR (tmux turns LF into CR).
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        if let Some(popup) = self.popup.take() {
            self.popup = popups::paste(self, popup, &text);
            return;
        }
        if self.filtering {
            if let Some(line) = self.one_line(&text) {
                self.filter.push_str(line);
                self.selected_session = 0;
            }
            return;
        }
        if self.focus.component().paste(self, &text) {
            return;
        }
        self.warn(format!(
            "pasted text ignored ({} characters): paste into the editor or a text field",
            text.chars().count()
        ));
    }

    /// A pasted value for a one-line field: one trailing line end is
    /// dropped; more lines or control characters refuse the paste.
    pub(crate) fn one_line<'t>(&mut self, text: &'t str) -> Option<&'t str> {
        let line = text.strip_suffix('\n').unwrap_or(text);
        if line.chars().any(char::is_control) {
            self.warn("pasted text ignored: this field takes one line of text");
            return None;
        }
        Some(line)
    }

    /// A key typed deliberately. Keys from the terminal go through
    /// [`App::handle_event`], which also tells bursts from typing.
    ///
    /// The route: `interrupt` first, everywhere; then an open popup takes
    /// the key; then `run` (not while filtering); then the filter being
    /// typed; then the focused pane; what it leaves goes to the global
    /// actions. Every key is looked up in the keymap by scope.
    pub fn handle_key(&mut self, key: KeyEvent) {
        self.dirty = true;
        if self.keymap.is(Action::Interrupt, &key) {
            self.interrupt();
            return;
        }
        if let Some(popup) = self.popup.take() {
            self.popup = popups::handle_key(self, popup, &key);
            return;
        }
        if self.filtering {
            panes::sessions::filter_key(self, &key);
            return;
        }
        if self.keymap.is(Action::Run, &key) {
            self.run_selected();
            return;
        }
        let pane = self.focus.component();
        let action = self.keymap.action_in(pane.scope(), &key);
        if pane.handle_key(self, &key, action) {
            return;
        }
        if let Some(action) = self.keymap.action_for(&key) {
            self.perform(action);
        }
    }

    /// Ctrl-C: stops the selected session's run; with none, it copies in
    /// the editor, and quits elsewhere.
    fn interrupt(&mut self) {
        let running = self.selected_work().is_some_and(Work::is_running);
        if running && let Some(user) = self.selected_user() {
            self.inform(format!("cancelling the run in `{user}`…"));
            self.outbox.push(Request::CancelRun(user));
        } else if self.focus == Pane::Editor && self.popup.is_none() {
            if let Some((_, work)) = self.selected_work_mut() {
                work.editor.copy();
            }
        } else {
            self.deliberate(Deliberate::Quit);
        }
    }

    pub fn perform(&mut self, action: Action) {
        self.dirty = true;
        match action {
            Action::Interrupt => self.interrupt(),
            Action::Run => self.run_selected(),
            Action::Quit => self.deliberate(Deliberate::Quit),
            Action::Help => self.popup = Some(Popup::Help { scroll: 0 }),
            Action::NextPane | Action::PrevPane => {
                self.focus_pane(self.focus.cycle(action == Action::NextPane));
            }
            Action::ClearFilter => {
                self.filter.clear();
                self.selected_session = 0;
            }
            Action::Up => self.move_session_selection(-1),
            Action::Down => self.move_session_selection(1),
            Action::Filter => {
                self.focus = Pane::Sessions;
                self.filtering = true;
            }
            Action::CycleTheme => {
                self.theme_index = (self.theme_index + 1) % self.themes.themes.len().max(1);
                let name = self.theme().name.clone();
                self.inform(format!("theme: {name}"));
            }
            Action::NewSession => self.open_new_session(),
            Action::StartStop => {
                if let Some(session) = self.selected().cloned()
                    && self.engine_ready()
                {
                    let running = session.sandbox.is_running();
                    let user = session.sandbox.user;
                    if running {
                        self.stop_or_restart(user, false);
                    } else {
                        self.inform(format!("starting `{user}`…"));
                        self.outbox.push(Request::Start(user));
                    }
                }
            }
            Action::Restart => {
                if let Some(user) = self.selected_user()
                    && self.engine_ready()
                {
                    self.stop_or_restart(user, true);
                }
            }
            Action::Delete => {
                if let Some(user) = self.selected_user() {
                    self.popup = Some(Popup::Confirm(Confirm::new(Confirmable::DeleteSession {
                        user,
                    })));
                }
            }
            Action::Build => {
                // The selected runtime, or the selected session's.
                let runtime = match self.focus {
                    Pane::Runtimes => self
                        .runtimes
                        .get(self.selected_runtime)
                        .map(|r| r.name.clone()),
                    _ => self
                        .selected()
                        .map(|s| s.sandbox.runtime.clone())
                        .or_else(|| {
                            self.runtimes
                                .get(self.selected_runtime)
                                .map(|r| r.name.clone())
                        }),
                };
                if let Some(runtime) = runtime {
                    let running = self
                        .build
                        .as_ref()
                        .is_some_and(|b| b.runtime == runtime && b.finished.is_none());
                    if !running && self.engine_ready() {
                        self.build = Some(BuildView {
                            runtime: runtime.clone(),
                            lines: VecDeque::new(),
                            finished: None,
                        });
                        self.outbox.push(Request::Build(runtime));
                    }
                    self.popup = Some(Popup::BuildLog { scroll_back: 0 });
                }
            }
            Action::Isolation => {
                let Some(from) = self.selected_user() else {
                    self.warn("select a session to check isolation from");
                    return;
                };
                let choices: Vec<String> = self
                    .sessions
                    .iter()
                    .map(|s| s.sandbox.user.clone())
                    .filter(|user| *user != from)
                    .collect();
                if choices.is_empty() {
                    self.warn("an isolation check needs a second session");
                } else {
                    self.popup = Some(Popup::PickIsolationTarget {
                        from,
                        choices,
                        selected: 0,
                    });
                }
            }
            // A pane's or popup's own actions are carried out by it.
            _ => {}
        }
    }

    fn open_new_session(&mut self) {
        if self.engine_ready() {
            let runtimes = self.runtimes.iter().map(|r| r.name.clone()).collect();
            self.popup = Some(Popup::NewSession(NewSessionForm::new(runtimes)));
        }
    }

    /// Stops or restarts a session: at once when idle, after a confirmation
    /// when a dashboard run is in progress in it (the run would be killed).
    fn stop_or_restart(&mut self, user: String, restart: bool) {
        let running = self.work.get(&user).is_some_and(Work::is_running);
        if running {
            self.popup = Some(Popup::Confirm(Confirm::new(Confirmable::StopSession {
                user,
                restart,
            })));
        } else {
            self.deliberate(popups::proceed(Confirmable::StopSession { user, restart }));
        }
    }

    pub(crate) fn engine_ready(&mut self) -> bool {
        let ready = matches!(self.engine, EngineStatus::Up { .. });
        if !ready {
            self.warn("the Docker engine is not answering yet");
        }
        ready
    }

    /// Moves the session selection within the visible sessions.
    pub fn move_session_selection(&mut self, delta: isize) {
        let len = self.visible_sessions().len();
        self.selected_session = panes::moved(self.selected_session, len, delta);
    }

    /// A click focuses the pane under it (and selects the row under it); the
    /// wheel scrolls the pane under it. Hit-testing uses the same layout as
    /// drawing, through the pane table.
    pub fn handle_mouse(&mut self, mouse: MouseEvent) {
        if self.popup.is_some() {
            return;
        }
        let areas = Areas::compute(self.area);
        let position = Position::new(mouse.column, mouse.row);
        let Some((pane, area)) = Pane::at(&areas, position) else {
            return;
        };
        self.dirty = true;
        match mouse.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                self.focus_pane(pane);
                pane.component().click(self, area, position);
            }
            MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => {
                self.focus = pane;
                pane.component()
                    .scroll(self, mouse.kind == MouseEventKind::ScrollDown);
            }
            _ => {}
        }
    }
}
