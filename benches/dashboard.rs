//! Frame render time of the dashboard with 100 sessions streaming stats,
//! beside a baseline frame with no sessions, in the same run.
//!
//! `cargo bench --bench dashboard`

use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use sandpit::engine::runtimes::RuntimeSet;
use sandpit::engine::sandbox::SandboxInfo;
use sandpit::engine::stats::StatsSample;
use sandpit::sessions::Session;
use sandpit::tui::app::{App, HISTORY_LEN};
use sandpit::tui::collector::Update;
use sandpit::tui::keymap::KeyMap;
use sandpit::tui::theme::ThemeSet;

const FRAMES: usize = 300;

fn app_with(sessions: usize) -> App {
    let mut app = App::new(
        ThemeSet::builtin(),
        0,
        KeyMap::default(),
        &RuntimeSet::builtin().unwrap(),
    );
    app.apply(Update::EngineUp {
        version: "20.10".to_string(),
    });
    app.apply(Update::Sessions(
        (0..sessions)
            .map(|i| Session {
                sandbox: SandboxInfo {
                    user: format!("user-{i:03}"),
                    runtime: "python-datascience".to_string(),
                    container_id: format!("{i:064}"),
                    state: "running".to_string(),
                    status: "Up 2 hours".to_string(),
                    image: "sandpit/python-datascience:0123456789ab".to_string(),
                    workspace: format!("/srv/workspaces/user-{i:03}"),
                    created: 1_700_000_000,
                    disk_limit: Some(1 << 30),
                },
                last_used: 1_700_000_000,
                disk: None,
            })
            .collect(),
    ));
    for i in 0..sessions {
        for t in 0..HISTORY_LEN {
            app.apply(Update::Stats {
                user: format!("user-{i:03}"),
                sample: StatsSample {
                    at_ms: 1_700_000_000_000 + t as i64 * 1000,
                    cpu_percent: ((i + t) % 100) as f64,
                    memory_used: ((i + t) as u64 % 512) << 20,
                    memory_limit: 1 << 30,
                    pids: 4,
                    pids_limit: Some(256),
                    ..Default::default()
                },
            });
        }
    }
    app
}

fn frame_times(app: &mut App, width: u16, height: u16) -> Vec<Duration> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    (0..FRAMES)
        .map(|i| {
            // Move the selection so each frame draws a different session's charts.
            app.selected_session = i % app.visible_sessions().len().max(1);
            let started = Instant::now();
            terminal
                .draw(|frame| sandpit::tui::ui::draw(frame, app))
                .unwrap();
            started.elapsed()
        })
        .collect()
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    for (width, height) in [(120, 35), (200, 60)] {
        let mut baseline = frame_times(&mut app_with(0), width, height);
        let mut busy = frame_times(&mut app_with(100), width, height);
        let (b50, b95) = (
            percentile(&mut baseline, 0.5),
            percentile(&mut baseline, 0.95),
        );
        let (s50, s95) = (percentile(&mut busy, 0.5), percentile(&mut busy, 0.95));
        println!(
            "frame {width}x{height}: 100 sessions p50 {:.3} ms p95 {:.3} ms | no sessions p50 {:.3} ms p95 {:.3} ms | ratio p50 {:.2}",
            ms(s50),
            ms(s95),
            ms(b50),
            ms(b95),
            ms(s50) / ms(b50)
        );
    }
    editor_highlight();
}

// ---- editor syntax highlighting (branch `editor`) ----

/// A 500-line Python file of the usual mix: functions, docstrings, strings,
/// comments, numbers.
fn python_file(lines: usize) -> Vec<String> {
    let mut text = Vec::with_capacity(lines);
    let mut i = 0;
    while text.len() < lines {
        text.extend([
            format!("def handler_{i}(request, limit={i}):"),
            "    \"\"\"Answer one request; the docstring spans".to_string(),
            "    two lines.\"\"\"".to_string(),
            format!("    # step {i}: read the body and count its words"),
            "    body = request.get(\"body\", \"\")".to_string(),
            format!(
                "    words = [w for w in body.split() if len(w) > {}]",
                i % 7
            ),
            "    if not words and limit > 0:".to_string(),
            "        raise ValueError(f\"empty body for {request!r}\")".to_string(),
            format!("    return {{\"count\": len(words), \"ratio\": {i}.5 / limit}}"),
            String::new(),
        ]);
        i += 1;
    }
    text.truncate(lines);
    text
}

/// Per keystroke: one character typed inside the visible window of a
/// 500-line file, then the window re-highlighted and painted, as the
/// editor's draw does. Two cases: an edit that leaves the parser's state as
/// it was (most typing), and quotes typed one after another (every third
/// opens or closes a triple-quoted string, so every visible line below it
/// is parsed again).
fn editor_highlight() {
    use ratatui::buffer::Buffer;
    use ratatui::layout::Rect;
    use ratatui::widgets::Widget as _;
    use ratatui_textarea::{CursorMove, TextArea};
    use sandpit::engine::runtimes::Language;
    use sandpit::tui::highlight::{Budget, Highlighter};

    const KEYS: usize = 300;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let theme = ThemeSet::builtin().themes.remove(0);
    let area = Rect::new(0, 0, 100, 40);
    let mut buf = Buffer::empty(area);

    let started = Instant::now();
    let highlighter = Highlighter::new(Some(Language::Python));
    let mut editor = TextArea::from(python_file(500));
    // The window shows lines 221..261; typing goes on near its top, so a
    // state change reaches 38 visible lines below it.
    editor.move_cursor(CursorMove::Jump(260, 8));
    (&editor).render(area, &mut buf);
    highlighter.paint(&editor, area, &mut buf, &theme);
    let first = started.elapsed();
    editor.move_cursor(CursorMove::Jump(222, 8));
    let started = Instant::now();
    highlighter.update(editor.lines(), 500, Budget::Unlimited);
    let whole = started.elapsed();
    println!(
        "highlight: first window {:.1} ms (grammar load and regex compile included), the rest of 500 lines {:.1} ms",
        ms(first),
        ms(whole)
    );
    // The editor opens files up to 1 MiB; jumping to the end of one parses
    // every line before the window, a frame's budget at a time.
    let big = python_file(24_000);
    let bytes: usize = big.iter().map(|line| line.len() + 1).sum();
    let cold = Highlighter::new(Some(Language::Python));
    let mut frames = Vec::new();
    let started = Instant::now();
    while cold.cached_lines() < big.len() && frames.len() < 10_000 {
        let frame = Instant::now();
        cold.update(&big, big.len(), Budget::frame());
        frames.push(frame.elapsed());
    }
    let total = started.elapsed();
    let count = frames.len();
    println!(
        "highlight: jump to the end of a {:.2} MiB file ({} lines): {count} frames of parsing, {:.0} ms in all, the longest {:.1} ms",
        bytes as f64 / f64::from(1 << 20),
        big.len(),
        ms(total),
        ms(percentile(&mut frames, 1.0)),
    );

    for (case, text) in [("same state", 'x'), ("state change", '"')] {
        let mut paint_times = Vec::with_capacity(KEYS);
        let mut frame_times = Vec::with_capacity(KEYS);
        for _ in 0..KEYS {
            editor.insert_char(text);
            let frame = Instant::now();
            (&editor).render(area, &mut buf);
            let paint = Instant::now();
            highlighter.paint(&editor, area, &mut buf, &theme);
            paint_times.push(paint.elapsed());
            frame_times.push(frame.elapsed());
        }
        println!(
            "highlight per key ({case}), 100x40 window of 500 lines: highlight+paint p50 {:.3} ms p95 {:.3} ms | with the text area's own draw p50 {:.3} ms p95 {:.3} ms",
            ms(percentile(&mut paint_times, 0.5)),
            ms(percentile(&mut paint_times, 0.95)),
            ms(percentile(&mut frame_times, 0.5)),
            ms(percentile(&mut frame_times, 0.95)),
        );
        assert_eq!(editor.scroll_offset().0, 221, "the window stayed put");
        // Back to the original line, so the next case starts alike.
        for _ in 0..KEYS {
            editor.delete_char();
        }
    }
}
