//! The dashboard's state driven by key and mouse events, as a user would.

use crossterm::event::{
    Event, KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use sandpit::engine::policy::ByteSize;
use sandpit::engine::runtimes::RuntimeSet;
use sandpit::engine::sandbox::{SandboxInfo, UserId};
use sandpit::sessions::Session;
use std::time::{Duration, Instant};

use sandpit::activity::{Activity, ActivityRow, Source};
use sandpit::tui::activity::ActivityUpdate;
use sandpit::tui::app::{App, BURST_GAP, EngineStatus, Pane};
use sandpit::tui::collector::{Request, Update};
use sandpit::tui::keymap::{Action, KeyMap};
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
            disk_limit: None,
        },
        last_used: 0,
        disk: None,
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
fn delete_is_answered_by_a_focused_button_and_purge_by_the_typed_id() {
    let mut app = app();
    let delete = |purge| {
        Some(Request::Delete {
            user: "alice".to_string(),
            purge,
        })
    };
    press(&mut app, KeyCode::Char('d'));
    assert!(matches!(app.popup, Some(Popup::Confirm(_))));
    press(&mut app, KeyCode::Esc);
    assert!(app.popup.is_none() && app.outbox.is_empty());
    // The old one-letter answers, and any other key, close it unanswered.
    for stray in ['k', 'p', 'y', 'x', 'P'] {
        press(&mut app, KeyCode::Char('d'));
        press(&mut app, KeyCode::Char(stray));
        assert!(app.popup.is_none(), "{stray} closes it");
        assert!(app.outbox.is_empty(), "{stray} deletes nothing");
    }
    // Enter on the focused Cancel does nothing.
    press(&mut app, KeyCode::Char('d'));
    press(&mut app, KeyCode::Enter);
    assert!(app.popup.is_none() && app.outbox.is_empty());
    // The second button keeps the workspace.
    press(&mut app, KeyCode::Char('d'));
    press(&mut app, KeyCode::Right);
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.outbox.pop(), delete(false));
    // The third asks for the user id; a wrong one cancels.
    press(&mut app, KeyCode::Char('d'));
    press(&mut app, KeyCode::Left);
    press(&mut app, KeyCode::Enter);
    type_text(&mut app, "alic");
    press(&mut app, KeyCode::Enter);
    assert!(
        app.popup.is_none() && app.outbox.is_empty(),
        "alic is not alice"
    );
    press(&mut app, KeyCode::Char('d'));
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Enter);
    type_text(&mut app, "alicex");
    press(&mut app, KeyCode::Backspace);
    assert!(app.outbox.is_empty(), "typing is not answering");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.outbox.pop(), delete(true));
    // A paste is no answer either.
    press(&mut app, KeyCode::Char('d'));
    press(&mut app, KeyCode::Left);
    press(&mut app, KeyCode::Enter);
    app.handle_event(Event::Paste("alice\n".to_string()));
    assert!(app.popup.is_none() && app.outbox.is_empty(), "pasted id");
}

#[test]
fn stopping_a_session_with_a_run_in_progress_asks_first() {
    let mut app = app();
    focus_editor(&mut app);
    press(&mut app, KeyCode::F(5));
    assert!(matches!(app.outbox.pop(), Some(Request::Run { .. })));
    app.outbox.clear();
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Char('s'));
    assert!(matches!(app.popup, Some(Popup::Confirm(_))), "asks first");
    press(&mut app, KeyCode::Char('s'));
    assert!(
        app.popup.is_none() && app.outbox.is_empty(),
        "s is no answer: {:?} {:?}",
        app.popup,
        app.outbox
    );
    press(&mut app, KeyCode::Char('r'));
    press(&mut app, KeyCode::Right);
    press(&mut app, KeyCode::Enter);
    assert_eq!(
        app.outbox.pop(),
        Some(Request::Restart("alice".to_string()))
    );
    press(&mut app, KeyCode::Char('s'));
    press(&mut app, KeyCode::Right);
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.outbox.pop(), Some(Request::Stop("alice".to_string())));
}

/// Keys as a terminal delivers them, `gap` apart, starting at `start`.
fn keys_at(app: &mut App, start: Instant, gap: Duration, keys: &[KeyCode]) -> Instant {
    let mut at = start;
    for code in keys {
        at += gap;
        app.handle_event_at(Event::Key(KeyEvent::new(*code, KeyModifiers::NONE)), at);
    }
    at
}

/// Every single-letter key of the keymap, and then some text.
fn paste_text(app: &App) -> String {
    let mut letters: String = Action::ALL
        .iter()
        .flat_map(|action| app.keymap.keys(*action))
        .filter_map(|key| match key.code {
            KeyCode::Char(c) => Some(c),
            _ => None,
        })
        .collect();
    letters.insert_str(0, "def parse(x): return x\n");
    letters.push_str("\nkpyKPY");
    letters
}

#[test]
fn a_paste_is_text_and_triggers_nothing() {
    let mut app = app();
    let text = paste_text(&app);
    assert!(text.contains('d') && text.contains('p') && text.contains('q'));
    let theme = app.theme_index;
    for pane in 0..3 {
        app.handle_event(Event::Paste(text.clone()));
        assert!(app.popup.is_none(), "pane {pane}: no dialog");
        assert!(app.outbox.is_empty(), "pane {pane}: no request");
        assert!(!app.should_quit && app.pending().is_none());
        assert_eq!(app.theme_index, theme);
        assert!(
            app.notice
                .as_ref()
                .is_some_and(|n| n.text.contains("ignored"))
        );
        press(&mut app, KeyCode::Tab);
    }
    // In the editor it is one edit: one undo takes it all back.
    let mut app = self::app();
    focus_editor(&mut app);
    let before = app.selected_work().unwrap().contents();
    app.handle_event(Event::Paste("def parse(x):\r    return x\r".to_string()));
    let after = app.selected_work().unwrap().contents();
    assert!(after.contains("def parse(x):\n    return x\n"), "{after:?}");
    app.handle_key(KeyEvent::new(KeyCode::Char('z'), KeyModifiers::CONTROL));
    assert_eq!(app.selected_work().unwrap().contents(), before);
    // In a text field it is typed; a second line refuses it.
    let mut app = self::app();
    press(&mut app, KeyCode::Char('n'));
    app.handle_event(Event::Paste("dave\n".to_string()));
    app.handle_event(Event::Paste("x\ny".to_string()));
    let Some(Popup::NewSession(form)) = &app.popup else {
        panic!("the dialog stays open");
    };
    assert_eq!(form.user, "dave");
}

#[test]
fn a_key_burst_stops_deletes_and_quits_nothing() {
    let mut app = app();
    let mut keys: Vec<KeyCode> = paste_text(&app).chars().map(KeyCode::Char).collect();
    keys.extend([KeyCode::Tab, KeyCode::Enter, KeyCode::Right, KeyCode::Enter]);
    // A burst starting with each destructive key, then the whole text.
    let mut at = Instant::now();
    for first in ['s', 'r', 'q', 'd'] {
        let mut burst = vec![KeyCode::Char(first)];
        burst.extend(keys.iter().copied());
        at = keys_at(&mut app, at, Duration::from_millis(1), &burst);
        at += Duration::from_secs(1);
        app.settle(at);
        let destructive: Vec<&Request> = app
            .outbox
            .iter()
            .filter(|r| {
                matches!(
                    r,
                    Request::Stop(_) | Request::Restart(_) | Request::Delete { .. }
                )
            })
            .collect();
        assert!(
            destructive.is_empty(),
            "burst from {first}: {destructive:?}"
        );
        assert!(!app.should_quit, "burst from {first} quit");
        app.popup = None;
        app.outbox.clear();
    }
    // The same keys typed at a person's pace do act.
    let at = keys_at(
        &mut app,
        at,
        Duration::from_millis(120),
        &[KeyCode::Char('s')],
    );
    assert!(app.outbox.is_empty(), "held back for a possible burst");
    app.settle(at + BURST_GAP);
    assert_eq!(app.outbox.pop(), Some(Request::Stop("alice".to_string())));
    let at = keys_at(
        &mut app,
        at + Duration::from_secs(1),
        Duration::from_millis(150),
        &[KeyCode::Char('d'), KeyCode::Right, KeyCode::Enter],
    );
    app.settle(at + BURST_GAP);
    assert_eq!(
        app.outbox.pop(),
        Some(Request::Delete {
            user: "alice".to_string(),
            purge: false
        })
    );
    // A key following within the gap takes the held-back one back.
    let at = keys_at(
        &mut app,
        at + Duration::from_secs(1),
        Duration::ZERO,
        &[KeyCode::Char('q')],
    );
    keys_at(
        &mut app,
        at,
        Duration::from_millis(2),
        &[KeyCode::Char('x')],
    );
    app.settle(at + Duration::from_secs(1));
    assert!(!app.should_quit);
    assert!(
        app.notice
            .as_ref()
            .is_some_and(|n| n.text.contains("did not quit"))
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
    assert_eq!(app.popup, Some(Popup::Help { scroll: 0 }));
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
    let areas = sandpit::tui::ui::layout::Areas::compute(ratatui::layout::Rect::new(0, 0, 120, 32));
    let (sessions, runtimes) = (areas.sessions.unwrap(), areas.runtimes.unwrap());
    // Rows start under a pane's border and header: the third session row.
    click(
        &mut app,
        MouseEventKind::Down(MouseButton::Left),
        sessions.x + 3,
        sessions.y + 4,
    );
    assert_eq!(app.selected_user().as_deref(), Some("carol"));
    click(
        &mut app,
        MouseEventKind::ScrollUp,
        sessions.x + 3,
        sessions.y + 4,
    );
    assert_eq!(app.selected_user().as_deref(), Some("bob"));
    click(
        &mut app,
        MouseEventKind::Down(MouseButton::Left),
        runtimes.x + 3,
        runtimes.y + 3,
    );
    assert_eq!(app.focus, Pane::Runtimes);
    assert_eq!(app.selected_runtime, 1);
    click(
        &mut app,
        MouseEventKind::ScrollDown,
        runtimes.x + 3,
        runtimes.y + 3,
    );
    assert_eq!(app.selected_runtime, 2);
    let editor = areas.editor.unwrap();
    click(
        &mut app,
        MouseEventKind::Down(MouseButton::Left),
        editor.x + 3,
        editor.y + 3,
    );
    assert_eq!(app.focus, Pane::Editor);
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

fn focus_editor(app: &mut App) {
    // Bounded: a pane Tab never reaches fails instead of spinning.
    for _ in 0..16 {
        if app.focus == Pane::Editor {
            break;
        }
        press(app, KeyCode::Tab);
    }
    assert!(app.focus == Pane::Editor, "Tab never reached Editor");
}

#[test]
fn type_code_run_it_and_see_the_output() {
    let mut app = app();
    focus_editor(&mut app);
    // The buffer starts with the runtime's starter code; replace it.
    let starter = app.selected_work().unwrap().contents();
    assert!(starter.contains("print"), "{starter}");
    app.selected_work_mut().unwrap().1.editor.select_all();
    press(&mut app, KeyCode::Delete);
    type_text(&mut app, "print('hi')");
    assert!(app.selected_work().unwrap().modified);
    press(&mut app, KeyCode::F(5));
    let Some(Request::Run {
        user,
        file,
        contents,
        command,
        ..
    }) = app.outbox.pop()
    else {
        panic!("no run request");
    };
    assert_eq!((user.as_str(), file.as_str()), ("alice", "main.py"));
    assert_eq!(contents, "print('hi')\n");
    assert_eq!(command, "python3 'main.py'");

    // While it runs, ctrl-c cancels it rather than quitting.
    app.handle_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert_eq!(
        app.outbox.pop(),
        Some(Request::CancelRun("alice".to_string()))
    );
    assert!(!app.should_quit);

    app.apply(Update::RunOutput {
        user: "alice".to_string(),
        stream: sandpit::engine::exec::Stream::Stdout,
        data: b"hi\n".to_vec(),
    });
    app.apply(Update::RunFinished {
        user: "alice".to_string(),
        result: Ok(sandpit::engine::exec::ExecResult {
            exit_code: Some(0),
            ..Default::default()
        }),
    });
    let work = app.selected_work().unwrap();
    assert_eq!(work.output.text(), "hi\n");
    assert!(!work.is_running());
}

#[test]
fn each_session_keeps_its_own_buffer() {
    let mut app = app();
    focus_editor(&mut app);
    type_text(&mut app, "# alice's");
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.focus, Pane::Sessions);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    focus_editor(&mut app);
    type_text(&mut app, "# carol's");
    let carol = app.selected_work().unwrap().contents();
    assert!(
        carol.contains("# carol's") && !carol.contains("alice"),
        "{carol}"
    );
    let alice = app.work.get("alice").unwrap().contents();
    assert!(
        alice.contains("# alice's") && !alice.contains("carol"),
        "{alice}"
    );
    // Undo and redo work on the buffer.
    app.handle_key(KeyEvent::new(KeyCode::Char('z'), KeyModifiers::CONTROL));
    assert!(
        !app.selected_work()
            .unwrap()
            .contents()
            .contains("# carol's")
    );
    app.handle_key(KeyEvent::new(KeyCode::Char('y'), KeyModifiers::CONTROL));
    assert!(
        app.selected_work()
            .unwrap()
            .contents()
            .contains("# carol's")
    );
    // Runs need a running session: bob is stopped.
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Up);
    app.outbox.clear();
    press(&mut app, KeyCode::F(5));
    assert!(app.outbox.is_empty(), "{:?}", app.outbox);
    assert!(app.notice.as_ref().unwrap().text.contains("not running"));
}

#[test]
fn files_pane_lists_opens_creates_renames_and_deletes() {
    use sandpit::engine::files::{DirEntry, EntryKind, FileData};
    use sandpit::tui::collector::FileOp;
    let entry = |name: &str, kind, size| DirEntry {
        name: name.as_bytes().to_vec(),
        kind,
        size,
        mtime: 0.0,
    };
    let mut app = app();
    // Bounded: a pane Tab never reaches fails instead of spinning.
    for _ in 0..16 {
        if app.focus == Pane::Files {
            break;
        }
        press(&mut app, KeyCode::Tab);
    }
    assert!(app.focus == Pane::Files, "Tab never reached Files");
    // Focusing the pane asks for the workspace listing.
    assert!(app.outbox.contains(&Request::ListDir {
        user: "alice".to_string(),
        path: String::new()
    }));
    app.outbox.clear();
    app.apply(Update::DirListing {
        user: "alice".to_string(),
        path: String::new(),
        result: Ok(vec![
            entry("src", EntryKind::Dir, 0),
            entry("data.bin", EntryKind::File, 5 << 20),
            entry("main.py", EntryKind::File, 10),
        ]),
    });
    // Expanding a folder asks for its listing.
    press(&mut app, KeyCode::Enter);
    assert_eq!(
        app.outbox.pop(),
        Some(Request::ListDir {
            user: "alice".to_string(),
            path: "src".to_string()
        })
    );
    // A large file is not opened.
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Enter);
    assert!(app.outbox.is_empty());
    assert!(app.notice.as_ref().unwrap().text.contains("too large"));
    // A text file opens into the editor.
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Enter);
    assert_eq!(
        app.outbox.pop(),
        Some(Request::OpenFile {
            user: "alice".to_string(),
            path: "main.py".to_string()
        })
    );
    app.apply(Update::FileOpened {
        user: "alice".to_string(),
        path: "main.py".to_string(),
        result: Ok(FileData {
            bytes: b"print('opened')\n".to_vec(),
            binary: false,
        }),
    });
    assert_eq!(app.focus, Pane::Editor);
    let work = app.selected_work().unwrap();
    assert_eq!(work.file, "main.py");
    assert_eq!(work.contents(), "print('opened')\n");
    // A binary file is reported, not opened.
    app.apply(Update::FileOpened {
        user: "alice".to_string(),
        path: "x.bin".to_string(),
        result: Ok(FileData {
            bytes: vec![0, 1, 2],
            binary: true,
        }),
    });
    assert_eq!(app.selected_work().unwrap().file, "main.py");
    assert!(app.notice.as_ref().unwrap().text.contains("binary"));
    // ctrl-s saves the buffer to its own file.
    app.handle_key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL));
    assert_eq!(
        app.outbox.pop(),
        Some(Request::Save {
            user: "alice".to_string(),
            file: "main.py".to_string(),
            contents: "print('opened')\n".to_string()
        })
    );

    // New file in the selected folder, rename, delete after a confirmation.
    press(&mut app, KeyCode::Esc);
    for _ in 0..3 {
        press(&mut app, KeyCode::Tab);
    }
    assert_eq!(app.focus, Pane::Files);
    app.outbox.clear();
    press(&mut app, KeyCode::Up);
    press(&mut app, KeyCode::Up);
    press(&mut app, KeyCode::Char('a'));
    type_text(&mut app, "new.py");
    press(&mut app, KeyCode::Enter);
    assert_eq!(
        app.outbox.pop(),
        Some(Request::FileOp {
            user: "alice".to_string(),
            op: FileOp::NewFile("src/new.py".to_string())
        })
    );
    press(&mut app, KeyCode::Char('R'));
    for _ in 0.."src".len() {
        press(&mut app, KeyCode::Backspace);
    }
    type_text(&mut app, "lib");
    press(&mut app, KeyCode::Enter);
    assert_eq!(
        app.outbox.pop(),
        Some(Request::FileOp {
            user: "alice".to_string(),
            op: FileOp::Rename {
                from: "src".to_string(),
                to: "lib".to_string()
            }
        })
    );
    press(&mut app, KeyCode::Char('D'));
    press(&mut app, KeyCode::Esc);
    assert!(app.outbox.is_empty(), "cancelled");
    press(&mut app, KeyCode::Char('D'));
    press(&mut app, KeyCode::Char('y'));
    assert!(
        app.popup.is_none() && app.outbox.is_empty(),
        "y is no answer"
    );
    press(&mut app, KeyCode::Char('D'));
    press(&mut app, KeyCode::Right);
    press(&mut app, KeyCode::Enter);
    assert_eq!(
        app.outbox.pop(),
        Some(Request::FileOp {
            user: "alice".to_string(),
            op: FileOp::Delete("src".to_string())
        })
    );
}

#[test]
fn output_scrolls_searches_and_saves() {
    let mut app = app();
    // Bounded: a pane Tab never reaches fails instead of spinning.
    for _ in 0..16 {
        if app.focus == Pane::Editor {
            break;
        }
        press(&mut app, KeyCode::Tab);
    }
    assert!(app.focus == Pane::Editor, "Tab never reached Editor");
    press(&mut app, KeyCode::F(5));
    for i in 0..100 {
        app.apply(Update::RunOutput {
            user: "alice".to_string(),
            stream: sandpit::engine::exec::Stream::Stdout,
            data: format!("line {i}\n").into_bytes(),
        });
    }
    // Tab indents in the editor; esc leaves it for the sessions, and
    // shift-tab goes round past the last pane (Activity) to the output.
    press(&mut app, KeyCode::Esc);
    app.handle_key(KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT));
    assert_eq!(app.focus, Pane::Activity);
    app.handle_key(KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT));
    assert_eq!(app.focus, Pane::Output);
    // Page keys scroll while typed text goes to the run's stdin.
    press(&mut app, KeyCode::PageUp);
    assert!(!app.selected_work().unwrap().output.following());
    press(&mut app, KeyCode::End);
    assert!(app.selected_work().unwrap().output.following());
    // Esc gives the letter keys back to the pane.
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "line 42");
    press(&mut app, KeyCode::Enter);
    let output = &app.selected_work().unwrap().output;
    assert_eq!(output.bottom_line(), Some("line 42"));
    app.outbox.clear();
    app.handle_key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL));
    let Some(Request::Save { file, contents, .. }) = app.outbox.pop() else {
        panic!("no save");
    };
    assert_eq!(file, "output.log");
    assert!(contents.starts_with("line 0\nline 1\n"));
}

#[test]
fn runs_in_different_sessions_go_on_at_once() {
    let mut app = app();
    press(&mut app, KeyCode::F(5));
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::F(5));
    let users: Vec<String> = app
        .outbox
        .iter()
        .filter_map(|request| match request {
            Request::Run { user, .. } => Some(user.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(users, ["alice", "carol"]);
    assert!(app.work["alice"].is_running() && app.work["carol"].is_running());
    // A second f5 while a session's run goes on does not start another.
    app.outbox.clear();
    press(&mut app, KeyCode::F(5));
    assert!(app.outbox.is_empty());
}

#[test]
fn files_pane_acts_on_odd_names_by_their_escaped_form() {
    use sandpit::engine::files::{DirEntry, EntryKind};
    use sandpit::tui::collector::FileOp;
    let mut app = app();
    // Bounded: a pane Tab never reaches fails instead of spinning.
    for _ in 0..16 {
        if app.focus == Pane::Files {
            break;
        }
        press(&mut app, KeyCode::Tab);
    }
    assert!(app.focus == Pane::Files, "Tab never reached Files");
    app.apply(Update::DirListing {
        user: "alice".to_string(),
        path: String::new(),
        result: Ok(vec![DirEntry {
            name: b"bad\xc3(\n".to_vec(),
            kind: EntryKind::File,
            size: 3,
            mtime: 0.0,
        }]),
    });
    app.outbox.clear();
    // The escaped form is the path the engine worker gets (and unescapes).
    press(&mut app, KeyCode::Enter);
    assert_eq!(
        app.outbox.pop(),
        Some(Request::OpenFile {
            user: "alice".to_string(),
            path: "bad\\xc3(\\n".to_string()
        })
    );
    // Renaming starts from the escaped form and takes escapes back.
    press(&mut app, KeyCode::Char('R'));
    press(&mut app, KeyCode::Backspace);
    type_text(&mut app, "t");
    press(&mut app, KeyCode::Enter);
    assert_eq!(
        app.outbox.pop(),
        Some(Request::FileOp {
            user: "alice".to_string(),
            op: FileOp::Rename {
                from: "bad\\xc3(\\n".to_string(),
                to: "bad\\xc3(\\t".to_string()
            }
        })
    );
    press(&mut app, KeyCode::Char('D'));
    press(&mut app, KeyCode::Right);
    press(&mut app, KeyCode::Enter);
    assert_eq!(
        app.outbox.pop(),
        Some(Request::FileOp {
            user: "alice".to_string(),
            op: FileOp::Delete("bad\\xc3(\\n".to_string())
        })
    );
}

// --- every pane and every key, from the tables ------------------------

use sandpit::tui::keymap::{Key, Scope};
use sandpit::tui::ui::panes::sessions::Column;
use sandpit::tui::ui::popups::help::{HelpLine, lines as help_lines};

/// Every pane of the table has a place on screen that a click reaches,
/// hints in the status bar and a section in help.
#[test]
fn panes_are_complete() {
    let mut app = app();
    let (width, height) = (120, 32);
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| sandpit::tui::ui::draw(frame, &mut app))
        .unwrap();
    let areas =
        sandpit::tui::ui::layout::Areas::compute(ratatui::layout::Rect::new(0, 0, width, height));
    let help = help_lines(&app.keymap);
    for pane in Pane::ALL {
        let component = pane.component();
        // Mouse: a click in the middle of its area focuses it.
        let area = component
            .area(&areas)
            .unwrap_or_else(|| panic!("{pane:?} has no place in the full layout"));
        let other = pane.cycle(true);
        app.focus = other;
        click(
            &mut app,
            MouseEventKind::Down(MouseButton::Left),
            area.x + area.width / 2,
            area.y + area.height / 2,
        );
        assert_eq!(app.focus, pane, "a click on {pane:?} did not reach it");
        // Hints: some, each bound and shown in the status bar.
        let hints = component.hints();
        assert!(!hints.is_empty(), "{pane:?} has no key hints");
        app.notice = None;
        app.popup = None;
        terminal
            .draw(|frame| sandpit::tui::ui::draw(frame, &mut app))
            .unwrap();
        let buffer = terminal.backend().buffer();
        let status: String = (0..width)
            .map(|x| buffer[(x, height - 1)].symbol())
            .collect();
        for action in hints {
            assert!(
                action.scope() == Scope::Global || action.scope() == component.scope(),
                "{pane:?} hints {action:?} of another scope"
            );
            let hint = format!("{} {}", app.keymap.label(*action), action.hint());
            assert!(
                status.contains(&hint),
                "{pane:?}: `{hint}` not in the status bar:\n{status}"
            );
        }
        // Help: a heading and every action of its scope.
        assert!(
            help.contains(&HelpLine::Heading(component.scope())),
            "{pane:?} has no section in help"
        );
        for action in component.scope().actions() {
            assert!(
                help.contains(&HelpLine::Action {
                    keys: app.keymap.label(action),
                    description: action.description().to_string(),
                }),
                "{action:?} is not in help"
            );
        }
        app.outbox.clear();
    }
    // Scopes of panes and popups alike: all of help is on screen when it is
    // scrolled through.
    let mut app = self::app();
    app.perform(Action::Help);
    let mut seen = String::new();
    for _ in 0..help.len() {
        terminal
            .draw(|frame| sandpit::tui::ui::draw(frame, &mut app))
            .unwrap();
        let buffer = terminal.backend().buffer();
        for y in 0..height {
            seen.extend((0..width).map(|x| buffer[(x, y)].symbol().to_string()));
            seen.push('\n');
        }
        press_action(&mut app, Action::HelpDown);
    }
    for scope in Scope::ALL {
        assert!(
            seen.contains(scope.title()),
            "{scope:?} never shown in help"
        );
        for action in scope.actions() {
            assert!(
                seen.contains(action.description()),
                "{action:?} never shown in help"
            );
        }
    }
}

/// A key event as a terminal sends it (shift with capitals and shift-tab).
fn event_for(key: &Key) -> KeyEvent {
    let mut modifiers = key.modifiers;
    if matches!(key.code, KeyCode::BackTab)
        || matches!(key.code, KeyCode::Char(c) if c.is_uppercase())
    {
        modifiers |= KeyModifiers::SHIFT;
    }
    KeyEvent::new(key.code, modifiers)
}

/// Presses the first key the app's keymap binds to `action`.
fn press_action(app: &mut App, action: Action) {
    let key = *app
        .keymap
        .keys(action)
        .first()
        .unwrap_or_else(|| panic!("{action:?} has no key"));
    app.handle_key(event_for(&key));
}

fn with_files(app: &mut App) {
    use sandpit::engine::files::{DirEntry, EntryKind};
    let entry = |name: &str, kind, size| DirEntry {
        name: name.as_bytes().to_vec(),
        kind,
        size,
        mtime: 0.0,
    };
    app.focus_pane(Pane::Files);
    app.apply(Update::DirListing {
        user: "alice".to_string(),
        path: String::new(),
        result: Ok(vec![
            entry("src", EntryKind::Dir, 0),
            entry("data.bin", EntryKind::File, 5 << 20),
            entry("main.py", EntryKind::File, 10),
        ]),
    });
}

/// Puts the app where the actions of `scope` apply, using the keymap's keys
/// to open popups.
fn enter_scope(app: &mut App, scope: Scope) {
    match scope {
        Scope::Global | Scope::Sessions => app.focus_pane(Pane::Sessions),
        Scope::Runtimes => app.focus_pane(Pane::Runtimes),
        Scope::Stats => app.focus_pane(Pane::Stats),
        Scope::Files => with_files(app),
        Scope::Editor => app.focus_pane(Pane::Editor),
        Scope::Output => {
            app.focus_pane(Pane::Output);
            let (_, work) = app.selected_work_mut().unwrap();
            for i in 0..100 {
                work.output.push(
                    sandpit::engine::exec::Stream::Stdout,
                    format!("line {i}\n").as_bytes(),
                );
            }
        }
        Scope::RunInput => {
            app.focus_pane(Pane::Output);
            app.selected_work_mut().unwrap().1.start_run();
            type_text(app, "typed");
        }
        Scope::Activity => {
            app.focus_pane(Pane::Activity);
            app.apply(Update::Activity(ActivityUpdate::Rows(
                (1..=40)
                    .map(|id| ActivityRow {
                        id,
                        activity: Activity::new(
                            Source::Cli,
                            &UserId::parse("alice").unwrap(),
                            "exec",
                            &format!("echo {id}"),
                        ),
                    })
                    .collect(),
            )));
            app.sync_activity();
        }
        Scope::Filter => {
            press_action(app, Action::Filter);
            type_text(app, "car");
        }
        Scope::Help => press_action(app, Action::Help),
        Scope::NewSession => press_action(app, Action::NewSession),
        Scope::Confirm => press_action(app, Action::Delete),
        Scope::BuildLog => press_action(app, Action::Build),
        Scope::PickTarget => press_action(app, Action::Isolation),
        Scope::Isolation => app.popup = Some(Popup::Isolation),
        Scope::Prompt => {
            with_files(app);
            press_action(app, Action::FileNew);
            type_text(app, "x.py");
        }
    }
    assert!(!app.should_quit, "entering {scope:?} quit");
    app.outbox.clear();
    app.notice = None;
}

/// Sets up what `action` needs to show an effect (beyond its scope).
fn prepare(app: &mut App, action: Action) {
    use sandpit::tui::popups::Field;
    match action {
        Action::ClearFilter => app.filter = "car".to_string(),
        Action::Up | Action::Down => app.selected_session = 1,
        Action::RuntimeUp => app.selected_runtime = 1,
        Action::FileUp => app.selected_work_mut().unwrap().1.tree.selected = 1,
        Action::FileCollapse => {
            let tree = &mut app.selected_work_mut().unwrap().1.tree;
            tree.expand("src");
            tree.set_listing("src".to_string(), Vec::new());
        }
        Action::EditorSearchNext => {
            let work = sandpit::tui::work::Work::new("main.py", "one\ntwo x\n", "python3 {file}");
            app.work.insert("alice".to_string(), work);
            let (_, work) = app.selected_work_mut().unwrap();
            work.editor.set_search_pattern("x").unwrap();
        }
        Action::EditorUndo => {
            app.selected_work_mut().unwrap().1.editor.insert_str("ZZ");
        }
        Action::EditorRedo => {
            let (_, work) = app.selected_work_mut().unwrap();
            work.editor.insert_str("ZZ");
            work.editor.undo();
        }
        Action::EditorPaste => {
            let (_, work) = app.selected_work_mut().unwrap();
            work.editor.set_yank_text("PASTED");
        }
        Action::EditorDedent => {
            app.selected_work_mut().unwrap().1.editor.insert_str("    ");
        }
        Action::OutputDown | Action::OutputFollow => {
            app.selected_work_mut().unwrap().1.output.scroll_up(5, 80)
        }
        Action::OutputPageDown => app.selected_work_mut().unwrap().1.output.scroll_up(15, 80),
        Action::OutputLeft | Action::OutputRight => {
            let output = &mut app.selected_work_mut().unwrap().1.output;
            output.push(sandpit::engine::exec::Stream::Stdout, &[b'x'; 100]);
            output.toggle_wrap();
            if action == Action::OutputLeft {
                output.scroll_sideways(16);
            }
        }
        Action::OutputType => {
            let work = app.selected_work_mut().unwrap().1;
            work.start_run();
            work.typing = false;
        }
        Action::ActivityDown | Action::ActivityFollow => app.activity.scroll_up(5),
        Action::ActivityPageDown => app.activity.scroll_up(15),
        Action::OutputSearchNext => {
            app.selected_work_mut().unwrap().1.output_search = "line 42".to_string()
        }
        Action::HelpUp => app.popup = Some(Popup::Help { scroll: 3 }),
        Action::FormChoiceNext | Action::FormChoicePrev => {
            if let Some(Popup::NewSession(form)) = &mut app.popup {
                form.field = Field::Runtime;
            }
        }
        Action::FormCreate => {
            if let Some(Popup::NewSession(form)) = &mut app.popup {
                form.user = "dave".to_string();
            }
        }
        Action::ConfirmAnswer => {
            if let Some(Popup::Confirm(confirm)) = &mut app.popup {
                confirm.focused = 1;
            }
        }
        Action::BuildLogDown => app.popup = Some(Popup::BuildLog { scroll_back: 2 }),
        Action::PickUp => {
            if let Some(Popup::PickIsolationTarget { selected, .. }) = &mut app.popup {
                *selected = 1;
            }
        }
        _ => {}
    }
}

/// What `action` must have done; an error says what is missing.
fn check(app: &App, action: Action) -> Result<(), String> {
    use sandpit::tui::collector::FileOp;
    use sandpit::tui::popups::{Confirmable, Field, Prompt};
    let last = app.outbox.last();
    let work = app.selected_work();
    let output = work.map(|w| &w.output);
    let form = match &app.popup {
        Some(Popup::NewSession(form)) => Some(form),
        _ => None,
    };
    let ok = match action {
        Action::Interrupt | Action::Quit => app.should_quit,
        Action::Run => matches!(last, Some(Request::Run { user, .. }) if user == "alice"),
        Action::NewSession => form.is_some(),
        Action::StartStop => last == Some(&Request::Stop("alice".to_string())),
        Action::Restart => last == Some(&Request::Restart("alice".to_string())),
        Action::Delete => matches!(
            &app.popup,
            Some(Popup::Confirm(c)) if matches!(c.subject, Confirmable::DeleteSession { .. })
        ),
        Action::Build => {
            matches!(last, Some(Request::Build(_)))
                && matches!(app.popup, Some(Popup::BuildLog { .. }))
        }
        Action::Isolation => matches!(app.popup, Some(Popup::PickIsolationTarget { .. })),
        Action::Filter => app.filtering,
        Action::ClearFilter => app.filter.is_empty(),
        Action::Help => matches!(app.popup, Some(Popup::Help { scroll: 0 })),
        Action::NextPane => app.focus == Pane::Runtimes,
        Action::PrevPane => app.focus == *Pane::ALL.last().unwrap(),
        Action::Up => app.selected_session == 0,
        Action::Down => app.selected_session == 2,
        Action::CycleTheme => app.theme_index != 0,
        Action::Shell => app.shell_request.as_deref() == Some("alice"),
        Action::SessionsSort => {
            app.sort.column == Column::Runtime && app.selected_user().as_deref() == Some("alice")
        }
        Action::SessionsReverse => {
            app.sort.descending
                && app.selected_session == 2
                && app.selected_user().as_deref() == Some("alice")
        }
        Action::RuntimeUp => app.selected_runtime == 0,
        Action::RuntimeDown => app.selected_runtime == 1,
        Action::FileUp => work.unwrap().tree.selected == 0,
        Action::FileDown => work.unwrap().tree.selected == 1,
        Action::FileOpen | Action::FileExpand => {
            last == Some(&Request::ListDir {
                user: "alice".to_string(),
                path: "src".to_string(),
            }) && work.unwrap().tree.is_expanded("src")
        }
        Action::FileCollapse => !work.unwrap().tree.is_expanded("src"),
        Action::FileNew => matches!(
            &app.popup,
            Some(Popup::Prompt { purpose: Prompt::NewFile { dir }, .. }) if dir == "src"
        ),
        Action::FileNewDir => matches!(
            &app.popup,
            Some(Popup::Prompt { purpose: Prompt::NewDir { dir }, .. }) if dir == "src"
        ),
        Action::FileRename => matches!(
            &app.popup,
            Some(Popup::Prompt { purpose: Prompt::Rename { from }, .. }) if from == "src"
        ),
        Action::FileDelete => matches!(
            &app.popup,
            Some(Popup::Confirm(c)) if matches!(&c.subject, Confirmable::DeleteFile { path, .. } if path == "src")
        ),
        Action::FileRefresh => app.outbox.contains(&Request::ListDir {
            user: "alice".to_string(),
            path: String::new(),
        }),
        Action::EditorSave => {
            matches!(last, Some(Request::Save { file, .. }) if file == "main.py")
        }
        Action::EditorSearch => matches!(
            &app.popup,
            Some(Popup::Prompt {
                purpose: Prompt::SearchEditor,
                ..
            })
        ),
        Action::EditorSearchNext => {
            let cursor = work.unwrap().editor.cursor();
            (cursor.0, cursor.1) == (1, 4)
        }
        Action::EditorUndo => !work.unwrap().contents().contains("ZZ"),
        Action::EditorRedo => work.unwrap().contents().contains("ZZ"),
        Action::EditorPaste => work.unwrap().contents().contains("PASTED"),
        // The buffer is Python (python-minimal): 4 spaces.
        Action::EditorIndent => work.unwrap().contents().starts_with("    "),
        Action::EditorDedent => !work.unwrap().contents().starts_with(' '),
        Action::EditorLeave => app.focus == Pane::Sessions,
        Action::OutputUp => output.unwrap().lines_back() == 1,
        Action::OutputDown => output.unwrap().lines_back() == 4,
        Action::OutputPageUp => output.unwrap().lines_back() == 10,
        Action::OutputPageDown => output.unwrap().lines_back() == 5,
        Action::OutputTop => output.unwrap().bottom_line() == Some("line 0"),
        Action::OutputFollow => output.unwrap().following(),
        Action::OutputSearch => matches!(
            &app.popup,
            Some(Popup::Prompt {
                purpose: Prompt::SearchOutput,
                ..
            })
        ),
        Action::OutputSearchNext => output.unwrap().bottom_line() == Some("line 42"),
        Action::OutputWrap => !output.unwrap().wrap,
        Action::OutputLeft | Action::OutputRight => output.unwrap().hscroll == 8,
        Action::OutputType => work.unwrap().typing,
        Action::InputSend => {
            last == Some(&Request::RunInput {
                user: "alice".to_string(),
                data: Some(b"typed\n".to_vec()),
            }) && output.unwrap().text().ends_with("typed\n")
        }
        Action::InputEnd => {
            app.outbox
                == [
                    Request::RunInput {
                        user: "alice".to_string(),
                        data: Some(b"typed".to_vec()),
                    },
                    Request::RunInput {
                        user: "alice".to_string(),
                        data: None,
                    },
                ]
                && !work.unwrap().stdin_open
        }
        Action::InputLeave => !work.unwrap().typing && work.unwrap().stdin_line == "typed",
        Action::OutputSave => {
            matches!(last, Some(Request::Save { file, .. }) if file == "output.log")
        }
        Action::ActivityScope => app.activity.scope == sandpit::tui::activity::Scope::All,
        Action::ActivityUp => app.activity.scroll == 1,
        Action::ActivityDown => app.activity.scroll == 4,
        Action::ActivityPageUp => app.activity.scroll == 10,
        Action::ActivityPageDown => app.activity.scroll == 5,
        Action::ActivityFollow => app.activity.scroll == 0,
        Action::FilterKeep => !app.filtering && app.filter == "car",
        Action::FilterClear => !app.filtering && app.filter.is_empty(),
        Action::HelpClose => app.popup.is_none(),
        Action::HelpUp => app.popup == Some(Popup::Help { scroll: 2 }),
        Action::HelpDown => app.popup == Some(Popup::Help { scroll: 1 }),
        Action::FormNext => form.is_some_and(|f| f.field == Field::Runtime),
        Action::FormPrev => form.is_some_and(|f| f.field == Field::Network),
        Action::FormChoiceNext => form.is_some_and(|f| f.runtime == 1),
        Action::FormChoicePrev => form.is_some_and(|f| f.runtime == f.runtimes.len() - 1),
        Action::FormCreate => {
            app.popup.is_none()
                && matches!(last, Some(Request::Create { user, .. }) if user.as_str() == "dave")
        }
        Action::FormCancel => app.popup.is_none() && app.outbox.is_empty(),
        Action::ConfirmNext => matches!(&app.popup, Some(Popup::Confirm(c)) if c.focused == 1),
        Action::ConfirmPrev => matches!(&app.popup, Some(Popup::Confirm(c)) if c.focused == 2),
        Action::ConfirmAnswer => {
            last == Some(&Request::Delete {
                user: "alice".to_string(),
                purge: false,
            })
        }
        Action::BuildLogClose => app.popup.is_none(),
        Action::BuildLogUp => app.popup == Some(Popup::BuildLog { scroll_back: 1 }),
        Action::BuildLogDown => app.popup == Some(Popup::BuildLog { scroll_back: 1 }),
        Action::PickUp => matches!(
            &app.popup,
            Some(Popup::PickIsolationTarget { selected: 0, .. })
        ),
        Action::PickDown => matches!(
            &app.popup,
            Some(Popup::PickIsolationTarget { selected: 1, .. })
        ),
        Action::PickChoose => {
            app.popup == Some(Popup::Isolation)
                && last
                    == Some(&Request::CheckIsolation {
                        from: "alice".to_string(),
                        target: "bob".to_string(),
                    })
        }
        Action::PickCancel | Action::IsolationClose => app.popup.is_none(),
        Action::PromptSubmit => {
            app.popup.is_none()
                && last
                    == Some(&Request::FileOp {
                        user: "alice".to_string(),
                        op: FileOp::NewFile("src/x.py".to_string()),
                    })
        }
        Action::PromptCancel => app.popup.is_none() && app.outbox.is_empty(),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "focus {:?}, popup {:?}, outbox {:?}, notice {:?}",
            app.focus,
            app.popup,
            app.outbox,
            app.notice.as_ref().map(|n| &n.text)
        ))
    }
}

/// Presses every key the keymap binds, in the place its action applies,
/// and checks the action happened.
fn every_key_does_its_action(keymap: KeyMap) {
    let mut checked = 0;
    for action in Action::ALL {
        let keys = keymap.keys(action).to_vec();
        assert!(!keys.is_empty(), "{action:?} has no key");
        for key in keys {
            let mut app = app_with(keymap.clone());
            enter_scope(&mut app, action.scope());
            prepare(&mut app, action);
            app.handle_key(event_for(&key));
            if let Err(state) = check(&app, action) {
                panic!(
                    "{key} did not {action:?} ({}): {state}",
                    action.qualified_name()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= Action::ALL.len());
}

#[test]
fn every_default_key_of_every_pane_and_popup_works() {
    every_key_does_its_action(KeyMap::default());
}

/// The same with every action moved to another key by a keymap.toml: an
/// override works for pane and popup keys as for global ones.
#[test]
fn every_overridden_key_works_and_the_old_one_does_not() {
    let letters: Vec<char> = ('a'..='z').collect();
    let mut text = String::new();
    for scope in Scope::ALL {
        // Global keys differ in their modifiers from every pane's, so a
        // pane never shadows one.
        let (header, modifier) = match scope {
            Scope::Global => (String::new(), "alt-"),
            other => (format!("[{}]\n", other.name()), "ctrl-alt-"),
        };
        text.push_str(&header);
        for (index, action) in scope.actions().enumerate() {
            text.push_str(&format!(
                "{} = \"{modifier}{}\"\n",
                action.name(),
                letters[index]
            ));
        }
    }
    let keymap = KeyMap::with_overrides(&text, "keymap.toml").unwrap();
    for action in Action::ALL {
        assert_eq!(keymap.keys(action).len(), 1, "{action:?}");
    }
    every_key_does_its_action(keymap.clone());
    // The default keys of pane actions are gone with the override.
    let mut app = app_with(keymap);
    with_files(&mut app);
    app.outbox.clear();
    press(&mut app, KeyCode::Char('a'));
    assert!(app.popup.is_none(), "a still makes a file");
}

/// Typing into a run from the Output pane: keys build a line, enter sends
/// it, a paste sends its whole lines, ctrl-d ends the input; esc and `i`
/// hand the letter keys back and forth.
#[test]
fn typing_in_the_output_pane_feeds_the_runs_stdin() {
    let mut app = app();
    app.focus_pane(Pane::Output);
    app.selected_work_mut().unwrap().1.start_run();
    app.apply(Update::RunOutput {
        user: "alice".to_string(),
        stream: sandpit::engine::exec::Stream::Stdout,
        data: b"name? ".to_vec(),
    });
    type_text(&mut app, "Adx");
    press(&mut app, KeyCode::Backspace);
    type_text(&mut app, "a");
    press(&mut app, KeyCode::Enter);
    let sent = |data: &[u8]| Request::RunInput {
        user: "alice".to_string(),
        data: Some(data.to_vec()),
    };
    assert_eq!(app.outbox, [sent(b"Ada\n")]);
    assert_eq!(app.selected_work().unwrap().output.text(), "name? Ada\n");
    // Letter keys are the pane's again after esc, and typed text after i.
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Char('w'));
    assert!(!app.selected_work().unwrap().output.wrap);
    press(&mut app, KeyCode::Char('i'));
    app.outbox.clear();
    app.handle_event(Event::Paste("one\ntwo".to_string()));
    assert_eq!(app.outbox, [sent(b"one\n")]);
    assert_eq!(app.selected_work().unwrap().stdin_line, "two");
    app.outbox.clear();
    app.handle_key(KeyEvent::new(KeyCode::Char('d'), KeyModifiers::CONTROL));
    assert_eq!(
        app.outbox,
        [
            sent(b"two"),
            Request::RunInput {
                user: "alice".to_string(),
                data: None,
            }
        ]
    );
    // With the input closed, keys are the pane's.
    app.outbox.clear();
    type_text(&mut app, "x");
    assert!(app.outbox.is_empty());
    assert!(!app.selected_work().unwrap().stdin_open);
}

// ---------------------------------------------------------------------------
// The shell key (issue 12, part 3): the event loop hands the terminal over
// for `shell_request`; tests/dashboard_e2e.rs drives the real thing.
// ---------------------------------------------------------------------------

#[test]
fn the_shell_key_asks_for_a_shell_only_in_a_running_session() {
    let mut app = app();
    press_action(&mut app, Action::Shell);
    assert_eq!(app.shell_request.as_deref(), Some("alice"));
    assert!(app.outbox.is_empty(), "a shell is no engine request");

    // A stopped session: told how to start it, no shell.
    let mut app = self::app();
    app.selected_session = 1;
    press_action(&mut app, Action::Shell);
    assert_eq!(app.shell_request, None);
    let notice = app
        .notice
        .as_ref()
        .map(|n| n.text.clone())
        .unwrap_or_default();
    assert!(notice.contains("`bob` is not running; press s"), "{notice}");

    // The engine away: no shell either.
    let mut app = self::app();
    app.apply(Update::EngineDown {
        error: "gone".to_string(),
    });
    press_action(&mut app, Action::Shell);
    assert_eq!(app.shell_request, None);

    // Only in the Sessions pane: elsewhere the key is the pane's or nothing.
    let mut app = self::app();
    app.focus_pane(Pane::Runtimes);
    press_action(&mut app, Action::Shell);
    assert_eq!(app.shell_request, None);

    // Within a burst (a paste without bracketed paste), never: the rest of
    // the paste would be typed into the shell.
    let mut app = self::app();
    let start = Instant::now();
    let end = keys_at(
        &mut app,
        start,
        Duration::from_millis(1),
        &[KeyCode::Char('x'), KeyCode::Char('e'), KeyCode::Char('x')],
    );
    app.settle(end + Duration::from_secs(1));
    assert_eq!(app.shell_request, None);
    let notice = app
        .notice
        .as_ref()
        .map(|n| n.text.clone())
        .unwrap_or_default();
    assert!(
        notice.contains("did not open a shell in `alice`"),
        "{notice}"
    );
    // A key typed alone opens it once no key follows within the burst gap.
    let mut app = self::app();
    let at = keys_at(
        &mut app,
        start,
        Duration::from_secs(1),
        &[KeyCode::Char('e')],
    );
    assert_eq!(app.shell_request, None, "not before the gap has passed");
    app.settle(at + Duration::from_secs(1));
    assert_eq!(app.shell_request.as_deref(), Some("alice"));
}

// ---- editor indentation (branch `editor`) ----

/// An app with one running session of `runtime`, its editor focused and
/// its buffer emptied.
fn editing(runtime: &str) -> App {
    let mut app = app();
    let mut node = session("dave", true);
    node.sandbox.runtime = runtime.to_string();
    app.apply(Update::Sessions(vec![node]));
    app.focus = Pane::Editor;
    let (_, work) = app.selected_work_mut().expect("a session is selected");
    work.editor.select_all();
    work.editor.cut();
    app
}

fn buffer(app: &App) -> Vec<String> {
    app.selected_work()
        .expect("a buffer")
        .editor
        .lines()
        .to_vec()
}

#[test]
fn tab_indents_by_the_runtime_s_language_and_shift_tab_dedents() {
    for (runtime, indent) in [("python-minimal", "    "), ("node-minimal", "  ")] {
        let mut app = editing(runtime);
        type_text(&mut app, "x");
        press(&mut app, KeyCode::Enter);
        press(&mut app, KeyCode::Tab);
        type_text(&mut app, "y");
        assert_eq!(buffer(&app), ["x", &format!("{indent}y")], "{runtime}");
        assert_eq!(app.focus, Pane::Editor, "Tab stays in the editor");
        app.handle_key(KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT));
        assert_eq!(buffer(&app), ["x", "y"], "{runtime}");
        assert_eq!(app.selected_work().unwrap().editor.cursor(), (1, 1));
        press(&mut app, KeyCode::Home);
        press(&mut app, KeyCode::Tab);
        assert_eq!(buffer(&app), ["x", &format!("{indent}y")], "{runtime}");
        assert!(app.selected_work().unwrap().modified);
    }
}

#[test]
fn backspace_over_indentation_and_the_config_s_indent() {
    let mut editor = editing("python-minimal");
    let app = &mut editor;
    press(app, KeyCode::Tab);
    press(app, KeyCode::Tab);
    press(app, KeyCode::Backspace);
    assert_eq!(buffer(app), ["    "]);
    type_text(app, "z");
    press(app, KeyCode::Backspace);
    assert_eq!(buffer(app), ["    "], "after text, one character");

    // The config's indent for a language applies to buffers made after it.
    let mut app = crate::app();
    app.editor_config =
        sandpit::config::Config::parse("[editor]\nindent = { python = \"tab\" }\n", "c.toml")
            .unwrap()
            .editor;
    app.focus = Pane::Editor;
    let (_, work) = app.selected_work_mut().unwrap();
    work.editor.select_all();
    work.editor.cut();
    press(&mut app, KeyCode::Tab);
    assert_eq!(buffer(&app), ["\t"]);
}

/// The sessions table's column titles sort on a click, as in oxker: the
/// first click sorts by the column, the second reverses.
#[test]
fn clicking_a_column_title_sorts_by_it() {
    let mut app = app();
    let mut terminal = Terminal::new(TestBackend::new(120, 32)).unwrap();
    let draw = |app: &mut App, terminal: &mut Terminal<TestBackend>| {
        terminal
            .draw(|frame| sandpit::tui::ui::draw(frame, app))
            .unwrap();
        let buffer = terminal.backend().buffer();
        (0..120)
            .map(|x| buffer[(x, 2)].symbol())
            .collect::<String>()
    };
    // The header row is the pane's second line; find STATE's column (in
    // cells: the line has box-drawing characters of several bytes).
    let header = draw(&mut app, &mut terminal);
    let column = header
        .char_indices()
        .position(|(byte, _)| header[byte..].starts_with("STATE"))
        .unwrap() as u16;
    let areas = sandpit::tui::ui::layout::Areas::compute(ratatui::layout::Rect::new(0, 0, 120, 32));
    let sessions = areas.sessions.unwrap();
    click(
        &mut app,
        MouseEventKind::Down(MouseButton::Left),
        column + 1,
        sessions.y + 1,
    );
    assert_eq!(app.sort.column, Column::State);
    assert!(!app.sort.descending);
    // exited sorts before running: bob first, alice still selected.
    let users: Vec<String> = app
        .visible_sessions()
        .iter()
        .map(|s| s.sandbox.user.clone())
        .collect();
    assert_eq!(users, ["bob", "alice", "carol"]);
    assert_eq!(app.selected_user().as_deref(), Some("alice"));
    assert!(draw(&mut app, &mut terminal).contains("STATE▲"));
    click(
        &mut app,
        MouseEventKind::Down(MouseButton::Left),
        column + 1,
        sessions.y + 1,
    );
    assert!(app.sort.descending);
    assert!(draw(&mut app, &mut terminal).contains("STATE▼"));
}
