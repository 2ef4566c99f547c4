//! The dashboard's state driven by key and mouse events, as a user would.

use crossterm::event::{
    Event, KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use sandpit::engine::policy::ByteSize;
use sandpit::engine::runtimes::RuntimeSet;
use sandpit::engine::sandbox::SandboxInfo;
use sandpit::sessions::Session;
use sandpit::tui::app::{App, EngineStatus, Pane};
use sandpit::tui::collector::{Request, Update};
use sandpit::tui::keymap::KeyMap;
use sandpit::tui::popups::Popup;
use sandpit::tui::theme::ThemeSet;

fn session(user: &str, running: bool) -> Session {
    Session {
        sandbox: SandboxInfo {
            user: user.to_string(),
            runtime: "python-minimal".to_string(),
            container_id: format!("id-{user}"),
            state: if running { "running" } else { "exited" }.to_string(),
            status: String::new(),
            image: String::new(),
            workspace: format!("/ws/{user}"),
            created: 0,
        },
        last_used: 0,
    }
}

fn app_with(keymap: KeyMap) -> App {
    let mut app = App::new(
        ThemeSet::builtin(),
        0,
        keymap,
        &RuntimeSet::builtin().unwrap(),
    );
    app.apply(Update::EngineUp {
        version: "20.10".to_string(),
    });
    app.apply(Update::Sessions(vec![
        session("alice", true),
        session("bob", false),
        session("carol", true),
    ]));
    app
}

fn app() -> App {
    app_with(KeyMap::default())
}

fn press(app: &mut App, code: KeyCode) {
    app.handle_key(KeyEvent::new(code, KeyModifiers::NONE));
}

fn type_text(app: &mut App, text: &str) {
    text.chars().for_each(|c| press(app, KeyCode::Char(c)));
}

fn click(app: &mut App, kind: MouseEventKind, column: u16, row: u16) {
    app.handle_event(Event::Mouse(MouseEvent {
        kind,
        column,
        row,
        modifiers: KeyModifiers::NONE,
    }));
}

#[test]
fn q_and_ctrl_c_quit() {
    let mut app = app();
    press(&mut app, KeyCode::Char('q'));
    assert!(app.should_quit);
    let mut app = self::app();
    app.handle_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert!(app.should_quit);
    assert!(app.outbox.is_empty(), "quitting leaves sessions running");
}

#[test]
fn selection_moves_and_stays_in_range() {
    let mut app = app();
    assert_eq!(app.selected_user().as_deref(), Some("alice"));
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    assert_eq!(app.selected_user().as_deref(), Some("carol"));
    press(&mut app, KeyCode::Char('k'));
    assert_eq!(app.selected_user().as_deref(), Some("bob"));
    // A refreshed list keeps the same session selected.
    app.apply(Update::Sessions(vec![
        session("aaron", true),
        session("alice", true),
        session("bob", false),
    ]));
    assert_eq!(app.selected_user().as_deref(), Some("bob"));
}

#[test]
fn tab_and_shift_tab_move_focus() {
    let mut app = app();
    assert_eq!(app.focus, Pane::Sessions);
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.focus, Pane::Runtimes);
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.focus, Pane::Stats);
    app.handle_key(KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT));
    assert_eq!(app.focus, Pane::Runtimes);
}

#[test]
fn new_session_dialog_refuses_bad_input_and_sends_good() {
    let mut app = app();
    press(&mut app, KeyCode::Char('n'));
    type_text(&mut app, "../x");
    press(&mut app, KeyCode::Enter);
    assert!(
        matches!(app.popup, Some(Popup::NewSession(_))),
        "stays open"
    );
    assert!(app.outbox.is_empty());
    for _ in 0..4 {
        press(&mut app, KeyCode::Backspace);
    }
    type_text(&mut app, "dave");
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Right); // the second runtime
    press(&mut app, KeyCode::Tab);
    type_text(&mut app, "2g");
    press(&mut app, KeyCode::Tab);
    type_text(&mut app, "0.5");
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Right); // bridge
    press(&mut app, KeyCode::Enter);
    assert!(app.popup.is_none());
    let Some(Request::Create {
        user,
        runtime,
        overrides,
    }) = app.outbox.pop()
    else {
        panic!("no create request");
    };
    assert_eq!(user.as_str(), "dave");
    assert_eq!(runtime, RuntimeSet::builtin().unwrap().names()[1]);
    assert_eq!(overrides.memory, Some(ByteSize(2 << 30)));
    assert_eq!(overrides.cpus, Some(0.5));
    assert_eq!(overrides.network.as_deref(), Some("bridge"));
}

#[test]
fn stop_start_and_restart_follow_the_state() {
    let mut app = app();
    press(&mut app, KeyCode::Char('s'));
    assert_eq!(app.outbox.pop(), Some(Request::Stop("alice".to_string())));
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Char('s'));
    assert_eq!(app.outbox.pop(), Some(Request::Start("bob".to_string())));
    press(&mut app, KeyCode::Char('r'));
    assert_eq!(app.outbox.pop(), Some(Request::Restart("bob".to_string())));
}

#[test]
fn delete_asks_whether_to_keep_the_workspace() {
    let mut app = app();
    press(&mut app, KeyCode::Char('d'));
    assert!(matches!(app.popup, Some(Popup::ConfirmDelete { .. })));
    press(&mut app, KeyCode::Esc);
    assert!(app.popup.is_none() && app.outbox.is_empty());
    press(&mut app, KeyCode::Char('d'));
    press(&mut app, KeyCode::Char('k'));
    assert_eq!(
        app.outbox.pop(),
        Some(Request::Delete {
            user: "alice".to_string(),
            purge: false
        })
    );
    press(&mut app, KeyCode::Char('d'));
    press(&mut app, KeyCode::Char('p'));
    assert_eq!(
        app.outbox.pop(),
        Some(Request::Delete {
            user: "alice".to_string(),
            purge: true
        })
    );
}

#[test]
fn build_the_selected_runtime_with_a_log() {
    let mut app = app();
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Char('b'));
    let second = RuntimeSet::builtin().unwrap().names()[1].to_string();
    assert_eq!(app.outbox.pop(), Some(Request::Build(second.clone())));
    assert!(matches!(app.popup, Some(Popup::BuildLog { .. })));
    // Pressing b again while it builds does not start a second build.
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Char('b'));
    assert!(app.outbox.is_empty());
    app.apply(Update::BuildLog {
        runtime: second.clone(),
        line: "Step 1/3".to_string(),
    });
    app.apply(Update::BuildFinished {
        runtime: second.clone(),
        result: Ok("sandpit/x:1".to_string()),
    });
    let build = app.build.as_ref().unwrap();
    assert_eq!(build.lines.back().map(String::as_str), Some("Step 1/3"));
    assert!(app.notice.as_ref().unwrap().text.contains("is ready"));
}

#[test]
fn isolation_check_between_two_chosen_sessions() {
    let mut app = app();
    press(&mut app, KeyCode::Char('i'));
    let Some(Popup::PickIsolationTarget { choices, .. }) = &app.popup else {
        panic!("no picker");
    };
    assert_eq!(choices, &["bob", "carol"]);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Enter);
    assert_eq!(
        app.outbox.pop(),
        Some(Request::CheckIsolation {
            from: "alice".to_string(),
            target: "carol".to_string()
        })
    );
    assert!(matches!(app.popup, Some(Popup::Isolation)));
}

#[test]
fn filter_narrows_the_list_and_escape_clears_it() {
    let mut app = app();
    press(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "car");
    let users: Vec<_> = app
        .visible_sessions()
        .iter()
        .map(|s| s.sandbox.user.clone())
        .collect();
    assert_eq!(users, ["carol"]);
    // While filtering, letters are text, not commands.
    type_text(&mut app, "q");
    assert!(!app.should_quit);
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.visible_sessions().len(), 3);
}

#[test]
fn help_and_theme_keys() {
    let mut app = app();
    press(&mut app, KeyCode::Char('?'));
    assert_eq!(app.popup, Some(Popup::Help));
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.popup, None);
    let before = app.theme().name.clone();
    press(&mut app, KeyCode::Char('t'));
    assert_ne!(app.theme().name, before);
}

#[test]
fn actions_wait_for_the_engine() {
    let mut app = app();
    app.apply(Update::EngineDown {
        error: "gone".to_string(),
    });
    assert!(matches!(app.engine, EngineStatus::Down { .. }));
    press(&mut app, KeyCode::Char('n'));
    press(&mut app, KeyCode::Char('s'));
    assert!(app.popup.is_none() && app.outbox.is_empty());
    assert!(app.notice.as_ref().unwrap().error);
}

#[test]
fn mouse_clicks_focus_and_select_and_the_wheel_scrolls() {
    let mut app = app();
    // Draw once so the app knows its size.
    let mut terminal = Terminal::new(TestBackend::new(120, 32)).unwrap();
    terminal
        .draw(|frame| sandpit::tui::ui::draw(frame, &mut app))
        .unwrap();
    // Sessions pane: title line at row 1, header at row 2, rows from 3.
    click(&mut app, MouseEventKind::Down(MouseButton::Left), 10, 5);
    assert_eq!(app.selected_user().as_deref(), Some("carol"));
    click(&mut app, MouseEventKind::ScrollUp, 10, 5);
    assert_eq!(app.selected_user().as_deref(), Some("bob"));
    // The runtimes pane is in the lower left: border at row 20, header at
    // 21, its first row at 22.
    click(&mut app, MouseEventKind::Down(MouseButton::Left), 10, 23);
    assert_eq!(app.focus, Pane::Runtimes);
    assert_eq!(app.selected_runtime, 1);
    click(&mut app, MouseEventKind::ScrollDown, 10, 23);
    assert_eq!(app.selected_runtime, 2);
}

#[test]
fn a_user_keymap_changes_the_keys() {
    let keymap = KeyMap::with_overrides("quit = \"x\"\n", "keymap.toml").unwrap();
    let mut app = app_with(keymap);
    press(&mut app, KeyCode::Char('q'));
    assert!(!app.should_quit);
    press(&mut app, KeyCode::Char('x'));
    assert!(app.should_quit);
}
