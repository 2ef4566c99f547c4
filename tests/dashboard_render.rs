//! Snapshots of each pane and dialog, drawn with ratatui's TestBackend.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use sandpit::engine::images::ImageState;
use sandpit::engine::runtimes::RuntimeSet;
use sandpit::engine::sandbox::SandboxInfo;
use sandpit::engine::stats::StatsSample;
use sandpit::sessions::Session;
use sandpit::sessions::isolation::{PROBES, ProbeResult, Verdict};
use sandpit::tui::app::App;
use sandpit::tui::collector::Update;
use sandpit::tui::keymap::KeyMap;
use sandpit::tui::theme::ThemeSet;
use sandpit::tui::ui;

fn session(user: &str, runtime: &str, running: bool) -> Session {
    Session {
        sandbox: SandboxInfo {
            user: user.to_string(),
            runtime: runtime.to_string(),
            container_id: format!("{:0<64}", user.len()),
            state: if running { "running" } else { "exited" }.to_string(),
            status: if running {
                "Up 12 minutes".to_string()
            } else {
                "Exited (0) 3 minutes ago".to_string()
            },
            image: format!("sandpit/{runtime}:0123456789ab"),
            workspace: format!("/srv/workspaces/{user}"),
            created: 1_700_000_000,
            disk_limit: None,
        },
        last_used: 1_700_000_100,
        disk: None,
    }
}

/// An app as it looks with two sessions, one streaming stats.
pub fn demo_app() -> App {
    let mut app = App::new(
        ThemeSet::builtin(),
        0,
        KeyMap::default(),
        &RuntimeSet::builtin().unwrap(),
    );
    app.apply(Update::EngineUp {
        version: "20.10.24".to_string(),
    });
    app.apply(Update::Sessions(vec![
        session("alice", "python-datascience", true),
        session("bob", "node-minimal", false),
    ]));
    app.apply(Update::Runtimes(vec![
        ("python-minimal".to_string(), Some(ImageState::Built)),
        ("python-datascience".to_string(), Some(ImageState::Built)),
        ("python-web".to_string(), Some(ImageState::Stale)),
        ("node-minimal".to_string(), Some(ImageState::Missing)),
    ]));
    for i in 0..40u64 {
        app.apply(Update::Stats {
            user: "alice".to_string(),
            sample: StatsSample {
                at_ms: 1_700_000_000_000 + i as i64 * 1000,
                cpu_percent: (i % 10) as f64 * 10.0,
                memory_used: (100 + i * 5) << 20,
                memory_limit: 1 << 30,
                pids: 3,
                ..Default::default()
            },
        });
    }
    app
}

fn render(app: &mut App, width: u16, height: u16) -> String {
    // As the event loop does before each frame.
    app.sync_activity();
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| ui::draw(frame, app)).unwrap();
    let buffer = terminal.backend().buffer();
    (0..height)
        .map(|y| {
            (0..width)
                .map(|x| buffer[(x, y)].symbol())
                .collect::<String>()
                .trim_end()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn key(app: &mut App, code: KeyCode) {
    app.handle_key(KeyEvent::new(code, KeyModifiers::NONE));
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}

#[test]
fn dashboard_full_layout() {
    insta::assert_snapshot!(render(&mut demo_app(), 120, 32));
}

#[test]
fn runtimes_pane_focused() {
    let mut app = demo_app();
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Down);
    insta::assert_snapshot!(render(&mut app, 120, 32));
}

#[test]
fn small_terminal_gets_the_sessions_list() {
    insta::assert_snapshot!(render(&mut demo_app(), 70, 12));
}

#[test]
fn tiny_terminal_gets_a_notice() {
    insta::assert_snapshot!(render(&mut demo_app(), 24, 4));
}

#[test]
fn engine_down_banner() {
    let mut app = demo_app();
    app.apply(Update::EngineDown {
        error: "the Docker engine at unix:///var/run/docker.sock does not answer".to_string(),
    });
    insta::assert_snapshot!(render(&mut app, 120, 32));
}

#[test]
fn filter_in_progress() {
    let mut app = demo_app();
    key(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "bo");
    insta::assert_snapshot!(render(&mut app, 120, 32));
}

#[test]
fn new_session_dialog_validates() {
    let mut app = demo_app();
    key(&mut app, KeyCode::Char('n'));
    type_text(&mut app, "../x");
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Tab);
    type_text(&mut app, "lots");
    insta::assert_snapshot!(render(&mut app, 120, 32));
}

#[test]
fn delete_confirmation() {
    let mut app = demo_app();
    key(&mut app, KeyCode::Char('d'));
    key(&mut app, KeyCode::Right);
    insta::assert_snapshot!(render(&mut app, 120, 32));
}

#[test]
fn purge_asks_for_the_user_id() {
    let mut app = demo_app();
    key(&mut app, KeyCode::Char('d'));
    key(&mut app, KeyCode::Left);
    key(&mut app, KeyCode::Enter);
    type_text(&mut app, "ali");
    insta::assert_snapshot!(render(&mut app, 120, 32));
}

#[test]
fn build_log() {
    let mut app = demo_app();
    key(&mut app, KeyCode::Char('b'));
    for line in [
        "Step 1/4 : FROM debian:trixie-slim",
        "Step 2/4 : RUN sh /tmp/sandpit-build/apt.sh",
        "Setting up python3 (3.13.5-1) ...",
    ] {
        app.apply(Update::BuildLog {
            runtime: "python-datascience".to_string(),
            line: line.to_string(),
        });
    }
    insta::assert_snapshot!(render(&mut app, 120, 32));
}

#[test]
fn isolation_table() {
    let mut app = demo_app();
    app.apply(Update::Sessions(vec![
        session("alice", "python-datascience", true),
        session("bob", "node-minimal", true),
    ]));
    key(&mut app, KeyCode::Char('i'));
    let picker = render(&mut app, 120, 32);
    key(&mut app, KeyCode::Enter);
    app.apply(Update::Isolation {
        from: "alice".to_string(),
        target: "bob".to_string(),
        result: Ok(PROBES
            .iter()
            .map(|probe| {
                let leaked = probe.name == "reach the network";
                ProbeResult {
                    probe: probe.name.to_string(),
                    verdict: if leaked {
                        Verdict::Leaked
                    } else {
                        Verdict::Blocked
                    },
                    blocked: !leaked,
                    evidence: if leaked {
                        "interface eth0".to_string()
                    } else {
                        "refused".to_string()
                    },
                }
            })
            .collect()),
    });
    insta::assert_snapshot!("isolation_picker", picker);
    insta::assert_snapshot!("isolation_result", render(&mut app, 120, 32));
}

#[test]
fn help_overlay() {
    let mut app = demo_app();
    key(&mut app, KeyCode::Char('?'));
    insta::assert_snapshot!(render(&mut app, 120, 32));
}

#[test]
fn every_size_renders_without_panicking() {
    let mut app = demo_app();
    for width in [0, 1, 10, 29, 30, 60, 99, 100, 200] {
        for height in [0, 1, 5, 6, 12, 29, 30, 60] {
            render(&mut app, width, height);
        }
    }
    key(&mut app, KeyCode::Char('n'));
    for (width, height) in [(10, 5), (40, 8), (200, 60)] {
        render(&mut app, width, height);
    }
}

#[test]
fn editor_and_output_after_a_run() {
    let mut app = demo_app();
    // Bounded: a pane Tab never reaches fails instead of spinning.
    for _ in 0..16 {
        if app.focus == sandpit::tui::app::Pane::Editor {
            break;
        }
        key(&mut app, KeyCode::Tab);
    }
    assert!(
        app.focus == sandpit::tui::app::Pane::Editor,
        "Tab never reached Editor"
    );
    key(&mut app, KeyCode::F(5));
    app.apply(Update::RunOutput {
        user: "alice".to_string(),
        stream: sandpit::engine::exec::Stream::Stdout,
        data: b"hello from Python 3.13.5\n".to_vec(),
    });
    app.apply(Update::RunOutput {
        user: "alice".to_string(),
        stream: sandpit::engine::exec::Stream::Stderr,
        data: b"a warning\n".to_vec(),
    });
    app.apply(Update::RunFinished {
        user: "alice".to_string(),
        result: Ok(sandpit::engine::exec::ExecResult {
            exit_code: Some(0),
            duration: std::time::Duration::from_millis(120),
            ..Default::default()
        }),
    });
    insta::assert_snapshot!(render(&mut app, 120, 32));
}

#[test]
fn files_pane_tree() {
    use sandpit::engine::files::{DirEntry, EntryKind};
    let entry = |name: &str, kind, size| DirEntry {
        name: name.as_bytes().to_vec(),
        kind,
        size,
        mtime: 0.0,
    };
    let mut app = demo_app();
    // Bounded: a pane Tab never reaches fails instead of spinning.
    for _ in 0..16 {
        if app.focus == sandpit::tui::app::Pane::Files {
            break;
        }
        key(&mut app, KeyCode::Tab);
    }
    assert!(
        app.focus == sandpit::tui::app::Pane::Files,
        "Tab never reached Files"
    );
    app.apply(Update::DirListing {
        user: "alice".to_string(),
        path: String::new(),
        result: Ok(vec![
            entry("src", EntryKind::Dir, 4096),
            entry("data.csv", EntryKind::File, 3 << 20),
            entry("main.py", EntryKind::File, 120),
        ]),
    });
    key(&mut app, KeyCode::Enter);
    app.apply(Update::DirListing {
        user: "alice".to_string(),
        path: "src".to_string(),
        result: Ok(vec![entry("app.py", EntryKind::File, 42)]),
    });
    key(&mut app, KeyCode::Char('a'));
    type_text(&mut app, "notes.md");
    insta::assert_snapshot!(render(&mut app, 120, 32));
}

#[test]
fn files_pane_shows_odd_names_escaped() {
    use sandpit::engine::files::{DirEntry, EntryKind};
    let entry = |name: &[u8]| DirEntry {
        name: name.to_vec(),
        kind: EntryKind::File,
        size: 1,
        mtime: 0.0,
    };
    let mut app = demo_app();
    // Bounded: a pane Tab never reaches fails instead of spinning.
    for _ in 0..16 {
        if app.focus == sandpit::tui::app::Pane::Files {
            break;
        }
        key(&mut app, KeyCode::Tab);
    }
    assert!(
        app.focus == sandpit::tui::app::Pane::Files,
        "Tab never reached Files"
    );
    app.apply(Update::DirListing {
        user: "alice".to_string(),
        path: String::new(),
        result: Ok(vec![
            entry(b"bad\xc3(.py"),
            entry(b"clear\x1b[2J\n"),
            entry("rtl\u{202e}yp.exe".as_bytes()),
        ]),
    });
    let screen = render(&mut app, 120, 32);
    for shown in ["bad\\xc3(.py", "clear\\x1b[2J\\n", "rtl\\u{202e}yp.exe"] {
        assert!(screen.contains(shown), "{shown} not in\n{screen}");
    }
    assert!(
        !screen.contains(['\x1b', '\u{202e}', '\u{fffd}']),
        "{screen}"
    );
}

#[test]
fn stats_pane_shows_workspace_usage_against_its_limit() {
    let mut app = demo_app();
    let mut alice = session("alice", "python-datascience", true);
    alice.sandbox.disk_limit = Some(1 << 30);
    alice.disk = Some(sandpit::engine::quota::DiskUsage {
        used: 3 << 20,
        limit: Some(1 << 30),
        enforced: true,
        complete: true,
        image: None,
        image_size: None,
        note: None,
    });
    let mut bob = session("bob", "node-minimal", false);
    bob.disk = Some(sandpit::engine::quota::DiskUsage {
        used: 5 << 20,
        limit: Some(1 << 30),
        enforced: false,
        complete: true,
        image: None,
        image_size: None,
        note: Some("not root".to_string()),
    });
    app.apply(Update::Sessions(vec![alice, bob]));
    let screen = render(&mut app, 120, 32);
    assert!(
        screen.contains("disk 3.0 MiB / 1.0 GiB"),
        "no disk usage in\n{screen}"
    );
    // A stopped session shows it too, and says when nothing holds the limit.
    app.selected_session = 1;
    let screen = render(&mut app, 120, 32);
    assert!(
        screen.contains("disk 5.0 MiB / 1.0 GiB (not enforced)"),
        "no disk usage in\n{screen}"
    );
}

// ---- Output pane as a terminal shows it (issue 12, part 2) ----

/// The Output pane's rows at `width` x `height`, each cell run written as
/// `{style}text` whenever the style changes, so colours show in a snapshot.
fn output_pane_styled(app: &mut App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| ui::draw(frame, app)).unwrap();
    let area = ui::layout::Areas::compute(ratatui::layout::Rect::new(0, 0, width, height))
        .output
        .expect("the full layout has an Output pane");
    let buffer = terminal.backend().buffer();
    let mut rows = Vec::new();
    for y in area.y..area.y + area.height {
        let mut row = String::new();
        let mut last = None;
        let mut covered = 0;
        for x in area.x..area.x + area.width {
            let cell = &buffer[(x, y)];
            // The cells a wide character covers are drawn by it.
            if covered > 0 {
                covered -= 1;
                continue;
            }
            covered = unicode_width::UnicodeWidthStr::width(cell.symbol()).saturating_sub(1);
            let style = (cell.fg, cell.bg, cell.modifier);
            if last != Some(style) {
                let mut parts = vec![format!("{:?}", cell.fg)];
                if cell.bg != ratatui::style::Color::Reset {
                    parts.push(format!("on {:?}", cell.bg));
                }
                if !cell.modifier.is_empty() {
                    parts.push(format!("{:?}", cell.modifier));
                }
                row.push_str(&format!("{{{}}}", parts.join(" ")));
                last = Some(style);
            }
            row.push_str(cell.symbol());
        }
        rows.push(row);
    }
    rows.join("\n")
}

/// Starts a run of alice's buffer from the editor, as F5 does.
fn start_run(app: &mut App) {
    for _ in 0..16 {
        if app.focus == sandpit::tui::app::Pane::Editor {
            break;
        }
        key(app, KeyCode::Tab);
    }
    key(app, KeyCode::F(5));
    assert!(
        app.selected_work().is_some_and(|w| w.is_running()),
        "F5 did not start a run"
    );
}

fn run_output(app: &mut App, stream: sandpit::engine::exec::Stream, data: &[u8]) {
    app.apply(Update::RunOutput {
        user: "alice".to_string(),
        stream,
        data: data.to_vec(),
    });
}

#[test]
fn output_pane_with_colours_and_a_finished_progress_bar() {
    use sandpit::engine::exec::Stream;
    let mut app = demo_app();
    start_run(&mut app);
    run_output(
        &mut app,
        Stream::Stdout,
        b"\x1b[1;32mPASS\x1b[0m test_one\n\x1b[31mFAIL\x1b[0m \x1b[4mtest_two\x1b[24m\n",
    );
    // A tqdm bar on stderr, redrawn with \r, the last byte of a block
    // character held back to the next chunk.
    let bar = "\r 50%|█████     | 2/4\r100%|██████████| 4/4\n".as_bytes();
    run_output(&mut app, Stream::Stderr, b"\r  0%|          | 0/4");
    run_output(&mut app, Stream::Stderr, &bar[..bar.len() - 10]);
    run_output(&mut app, Stream::Stderr, &bar[bar.len() - 10..]);
    run_output(&mut app, Stream::Stderr, b"a warning on stderr\n");
    run_output(
        &mut app,
        Stream::Stdout,
        "日本語も\x1b[38;5;208m橙色\x1b[m\n".as_bytes(),
    );
    app.apply(Update::RunFinished {
        user: "alice".to_string(),
        result: Ok(sandpit::engine::exec::ExecResult {
            exit_code: Some(0),
            duration: std::time::Duration::from_millis(1500),
            ..Default::default()
        }),
    });
    let text = app.selected_work().unwrap().output.text();
    assert_eq!(
        text,
        "PASS test_one\nFAIL test_two\n100%|██████████| 4/4\na warning on stderr\n日本語も橙色\n"
    );
    insta::assert_snapshot!(output_pane_styled(&mut app, 120, 32));
}

#[test]
fn output_pane_typing_into_a_run() {
    use sandpit::engine::exec::Stream;
    let mut app = demo_app();
    start_run(&mut app);
    // Esc leaves the editor for the Output pane.
    key(&mut app, KeyCode::Esc);
    app.focus_pane(sandpit::tui::app::Pane::Output);
    run_output(&mut app, Stream::Stdout, b"What is your name? ");
    type_text(&mut app, "Ada");
    insta::assert_snapshot!(render(&mut app, 120, 32));
}

// --- Stats charts and the Activity pane (issue 12, parts 4 and 5) --------

/// The demo app with five minutes of stats for alice (network and block I/O
/// included) and the log's rows for both sessions.
fn app_with_history_and_activity() -> App {
    use sandpit::activity::{Activity, ActivityRow, Source};
    use sandpit::engine::sandbox::UserId;
    use sandpit::engine::stats::ByteCounters;
    use sandpit::tui::activity::ActivityUpdate;
    let mut app = demo_app();
    app.stats.clear();
    let (mut rx, mut written) = (0u64, 0u64);
    for s in 0..300u64 {
        rx += if s % 20 < 10 { 30 << 10 } else { 2 << 10 };
        written += if s % 15 == 0 { 4 << 20 } else { 0 };
        app.apply(Update::Stats {
            user: "alice".to_string(),
            sample: StatsSample {
                at_ms: 1_764_427_623_000 + s as i64 * 1000,
                cpu_percent: if s < 150 { 20.0 } else { 85.0 + (s % 6) as f64 },
                memory_used: (120 + s) << 20,
                memory_limit: 1 << 30,
                pids: 4 + s / 100,
                pids_limit: Some(256),
                net: Some(ByteCounters {
                    read: rx,
                    written: rx / 3,
                }),
                block: Some(ByteCounters { read: 0, written }),
            },
        });
    }
    let alice = UserId::parse("alice").unwrap();
    let bob = UserId::parse("bob").unwrap();
    let rows = [
        Activity::new(Source::Mcp, &alice, "write_file", "train.py (2.1 KiB)"),
        Activity::new(
            Source::Mcp,
            &alice,
            "execute",
            "python3 train.py --epochs 3",
        )
        .with_exit_code(0)
        .with_duration(std::time::Duration::from_millis(48_200)),
        Activity::new(Source::Cli, &bob, "exec", "npm test").with_exit_code(1),
        Activity::new(Source::Dashboard, &alice, "run", "python3 main.py")
            .with_exit_code(0)
            .with_duration(std::time::Duration::from_millis(930)),
    ];
    app.apply(Update::Activity(ActivityUpdate::Rows(
        rows.into_iter()
            .enumerate()
            .map(|(i, activity)| ActivityRow {
                id: i as i64 + 1,
                activity: Activity {
                    time_ms: 1_764_427_623_000 + i as i64 * 7000,
                    ..activity
                },
            })
            .collect(),
    )));
    app
}

#[test]
fn stats_charts_and_activity_in_the_dashboard() {
    let mut app = app_with_history_and_activity();
    insta::assert_snapshot!(render(&mut app, 140, 45));
}

#[test]
fn activity_pane_focused_lists_every_session() {
    let mut app = app_with_history_and_activity();
    let activity = app
        .keymap
        .first(sandpit::tui::keymap::Action::ActivityScope);
    app.focus_pane(sandpit::tui::app::Pane::Activity);
    type_text(&mut app, &activity);
    insta::assert_snapshot!(render(&mut app, 120, 32));
}

// ---- editor syntax highlighting (branch `editor`) ----

/// The editor pane's cells: each text row, then under it a row naming the
/// syntax colour of each cell (k keyword, s string, c comment, n constant,
/// f function, t type; blank for anything else).
fn render_editor_colours(app: &mut App, width: u16, height: u16) -> String {
    use sandpit::tui::highlight::Kind;
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| ui::draw(frame, app)).unwrap();
    let buffer = terminal.backend().buffer();
    let editor =
        sandpit::tui::ui::layout::Areas::compute(ratatui::layout::Rect::new(0, 0, width, height))
            .editor
            .expect("the editor pane is laid out at this size");
    let theme = app.theme();
    let letter = |color| {
        Kind::ALL
            .into_iter()
            .find(|kind| theme.syntax(*kind) == color)
            .map_or(' ', |kind| match kind {
                Kind::Keyword => 'k',
                Kind::String => 's',
                Kind::Comment => 'c',
                Kind::Constant => 'n',
                Kind::Function => 'f',
                Kind::Type => 't',
            })
    };
    let mut out = Vec::new();
    for y in editor.top()..editor.bottom() {
        let cells = editor.left()..editor.right();
        let text: String = cells.clone().map(|x| buffer[(x, y)].symbol()).collect();
        let colours: String = cells.map(|x| letter(buffer[(x, y)].fg)).collect();
        out.push(text.trim_end().to_string());
        out.push(colours.trim_end().to_string());
    }
    out.join("\n")
}

#[test]
fn editor_colours_python() {
    let mut app = demo_app();
    for _ in 0..16 {
        if app.focus == sandpit::tui::app::Pane::Editor {
            break;
        }
        key(&mut app, KeyCode::Tab);
    }
    assert!(
        app.focus == sandpit::tui::app::Pane::Editor,
        "Tab never reached Editor"
    );
    app.handle_paste(concat!(
        "class Greeter(Base):\n",
        "    \"\"\"Says hello.\"\"\"\n",
        "    def greet(self, name=None):\n",
        "        # the name or the world\n",
        "        return f\"hi {name}\" * 2 if name else 'hi'\n",
    ));
    let screen = render_editor_colours(&mut app, 120, 32);
    // Each kind shows up at least once, so the snapshot cannot pass plain.
    for letter in ['k', 's', 'c', 'n', 'f', 't'] {
        assert!(
            screen
                .lines()
                .skip(1)
                .step_by(2)
                .any(|row| row.contains(letter)),
            "no `{letter}` cell:\n{screen}"
        );
    }
    insta::assert_snapshot!(screen);
}
#[test]
fn sessions_sorted_by_cpu_with_live_uptime() {
    let mut app = demo_app();
    app.fixed_now = Some(1_700_010_000);
    app.apply(Update::Sessions(vec![
        session("alice", "python-datascience", true),
        session("bob", "node-minimal", false),
        session("carol", "python-minimal", true),
        session("dave", "node-react", true),
    ]));
    for (user, cpu, started) in [
        ("alice", 12.5, 1_700_009_955),
        ("carol", 80.0, 1_700_010_000 - 3 * 3600 - 420),
        ("dave", 3.0, 1_700_010_000 - 2 * 86_400 - 3600),
    ] {
        app.apply(Update::Started {
            user: user.to_string(),
            at: started,
        });
        app.apply(Update::Stats {
            user: user.to_string(),
            sample: StatsSample {
                cpu_percent: cpu,
                memory_used: 64 << 20,
                memory_limit: 1 << 30,
                pids: 2,
                ..Default::default()
            },
        });
    }
    // o cycles the column (user → runtime → state → cpu), O reverses.
    for _ in 0..3 {
        key(&mut app, KeyCode::Char('o'));
    }
    key(&mut app, KeyCode::Char('O'));
    let screen = render(&mut app, 120, 32);
    let order: Vec<&str> = ["carol", "alice", "dave", "bob"]
        .into_iter()
        .filter(|user| screen.contains(&format!("┃{user} ")))
        .collect();
    assert_eq!(order.len(), 4, "{screen}");
    let rows: Vec<usize> = order
        .iter()
        .map(|user| screen.find(&format!("┃{user} ")).unwrap())
        .collect();
    assert!(rows.windows(2).all(|w| w[0] < w[1]), "{screen}");
    assert!(screen.contains("CPU %▼"), "{screen}");
    insta::assert_snapshot!(screen);
    // Uptime is computed from the start time: it advances with the clock.
    app.fixed_now = Some(1_700_010_060);
    let later = render(&mut app, 120, 32);
    assert!(
        screen.contains("45s") && later.contains("1m 45s"),
        "{later}"
    );
}

#[test]
fn one_session_is_one_session() {
    let mut app = demo_app();
    app.apply(Update::Sessions(vec![session(
        "alice",
        "python-datascience",
        true,
    )]));
    let screen = render(&mut app, 120, 32);
    assert!(screen.contains("· 1 session, 1 running"), "{screen}");
}

#[test]
fn help_scrolled_to_the_pane_keys() {
    let mut app = demo_app();
    key(&mut app, KeyCode::Char('?'));
    for _ in 0..24 {
        key(&mut app, KeyCode::Down);
    }
    insta::assert_snapshot!(render(&mut app, 120, 32));
}
