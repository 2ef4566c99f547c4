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
use std::time::{Duration, Instant};

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
    assert_eq!(work.output.lines.back().unwrap().1, "hi");
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
    // shift-tab goes round to the output.
    press(&mut app, KeyCode::Esc);
    app.handle_key(KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT));
    assert_eq!(app.focus, Pane::Output);
    press(&mut app, KeyCode::PageUp);
    assert!(!app.selected_work().unwrap().output.following());
    press(&mut app, KeyCode::End);
    assert!(app.selected_work().unwrap().output.following());
    press(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "line 42");
    press(&mut app, KeyCode::Enter);
    let output = &app.selected_work().unwrap().output;
    assert_eq!(output.window(1).next().unwrap().1, "line 42");
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
