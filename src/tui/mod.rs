//! The dashboard: sessions, runtimes and live stats, with actions to create,
//! stop, restart, delete, build and check isolation.
//!
//! - `terminal`: entering and always restoring the terminal
//! - `app`: state, and the router of keys and clicks; `popups`: popup state
//! - `collector`: the engine worker, talking to the app through messages
//! - `history`: each session's stats as time series, for the charts
//! - `activity`: the Activity pane's rows, fed from the shared activity log
//! - `ui`: one file per pane (`ui/panes/`, listed in one table) and per
//!   popup (`ui/popups/`), each drawing itself and handling its keys
//! - `keymap`, `theme`: user-configurable keys (every key of every pane and
//!   popup) and colours
//! - `indent`, `highlight`: the editor's indentation and syntax colours

pub mod activity;
pub mod app;
pub mod collector;
pub mod files;
pub mod handover;
pub mod highlight;
pub mod history;
pub mod indent;
pub mod keymap;
pub mod popups;
pub mod run_input;
pub mod terminal;
pub mod terminal_output;
pub mod theme;
pub mod ui;
pub mod work;

use std::time::Duration;

use anyhow::Context as _;
use crossterm::event::EventStream;
use futures_util::StreamExt as _;
use tokio::sync::mpsc;

use crate::engine::runtimes::RuntimeSet;
use crate::sessions::SessionConfig;
use app::App;
use keymap::KeyMap;
use theme::ThemeSet;

/// Frames are drawn at most this often, and only when something changed.
pub const RENDER_INTERVAL: Duration = Duration::from_millis(33);
pub const TICK_INTERVAL: Duration = Duration::from_secs(1);

pub struct DashboardOptions {
    pub sessions: SessionConfig,
    /// Where the dashboard's runs are recorded.
    pub activity: crate::activity::ActivityLog,
    pub runtimes: RuntimeSet,
    pub theme: Option<String>,
    /// The config's `[editor]`: indentation by language.
    pub editor: crate::config::EditorConfig,
}

/// Loads themes and the keymap from the user's config folder. Problems are
/// returned as messages; the dashboard starts with defaults regardless.
pub fn load_look(theme: Option<&str>) -> (ThemeSet, usize, KeyMap, Vec<String>) {
    let config_dir = crate::config::user_config_dir();
    let mut themes = ThemeSet::load(config_dir.as_ref().map(|dir| dir.join("themes")).as_deref());
    let theme_index = themes.select(theme);
    let mut problems = Vec::new();
    let keymap_path = config_dir.map(|dir| dir.join("keymap.toml"));
    let keymap = match keymap_path.filter(|path| path.is_file()) {
        None => KeyMap::default(),
        Some(path) => match std::fs::read_to_string(&path)
            .map_err(|err| format!("cannot read {}: {err}", path.display()))
            .and_then(|text| KeyMap::with_overrides(&text, &path.display().to_string()))
        {
            Ok(keymap) => keymap,
            Err(problem) => {
                problems.push(format!("{problem} — using the default keys"));
                KeyMap::default()
            }
        },
    };
    (themes, theme_index, keymap, problems)
}

pub async fn run(options: DashboardOptions) -> anyhow::Result<i32> {
    let (themes, theme_index, keymap, problems) = load_look(options.theme.as_deref());
    for problem in themes.problems.iter().chain(&problems) {
        tracing::warn!("{problem}");
    }
    // The editor's grammars load off the UI thread, before they are needed.
    std::thread::spawn(highlight::warm_up);
    let mut app = App::new(themes, theme_index, keymap, &options.runtimes);
    app.editor_config = options.editor.clone();
    if !problems.is_empty() {
        app.warn(problems.join("; "));
    }

    let (update_tx, mut updates) = mpsc::unbounded_channel();
    let (request_tx, request_rx) = mpsc::unbounded_channel();
    let activity_log = options.activity.clone();
    let mut collector = collector::spawn(
        options.sessions,
        options.runtimes,
        options.activity,
        update_tx,
        request_rx,
    );

    let mut guard = terminal::TerminalGuard::enter().context("cannot set up the terminal")?;
    let mut events = EventStream::new();
    let mut render = tokio::time::interval(RENDER_INTERVAL);
    let mut tick = tokio::time::interval(TICK_INTERVAL);
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut hangup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;

    while !app.should_quit {
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(event)) => app.handle_event(event),
                Some(Err(err)) => {
                    tracing::error!("terminal input failed: {err}");
                    break;
                }
                None => break,
            },
            Some(update) = updates.recv() => app.apply(update),
            _ = tick.tick() => app.tick(),
            _ = render.tick() => {
                app.settle(std::time::Instant::now());
                if app.dirty {
                    guard.terminal.draw(|frame| ui::draw(frame, &mut app)).context("cannot draw")?;
                    // The editor's colours of a big file come over a few frames.
                    app.dirty = app
                        .selected_work()
                        .is_some_and(|work| work.highlight.catching_up());
                }
            }
            ended = &mut collector => {
                // The engine worker never ends on its own: a panic there must
                // not leave a dashboard that looks alive but is not.
                drop(guard);
                return Err(anyhow::anyhow!("the engine worker stopped: {ended:?}"));
            }
            _ = terminate.recv() => app.should_quit = true,
            _ = hangup.recv() => app.should_quit = true,
        }
        // Only after an event or update: a frame changes no selection.
        if app.dirty {
            app.sync_activity();
        }
        for request in app.outbox.drain(..) {
            let _ = request_tx.send(request);
        }
        if let Some(user) = app.shell_request.take() {
            // The terminal is the shell's until it exits: no events are read
            // meanwhile, or they would take key presses meant for it.
            drop(events);
            handover::dashboard_shell(&mut guard.terminal, &mut app, &user, &activity_log).await;
            events = EventStream::new();
            // Frames and ticks missed meanwhile are not caught up in a burst.
            render.reset();
            tick.reset();
        }
    }
    drop(guard);
    collector.abort();
    Ok(0)
}
