//! The dashboard at scale, in one run:
//! - frame render time with 0, 100 and 1,000 sessions streaming stats, at
//!   120x35 and 200x60 (budget: 1,000 sessions at 200x60 in ≤ 2 ms);
//! - CPU used while idle with 1,000 running sessions (budget: ≤ 2 % of one
//!   core).
//!
//! `cargo bench --bench dashboard`
//!
//! How idle CPU is measured: the dashboard's event loop (`tui::run`) is
//! replayed on this thread for `IDLE_SECONDS` of wall time, with what an
//! idle dashboard receives: one stats sample per running session per second
//! (the engine's rate, delivered in small batches), a tick every
//! `TICK_INTERVAL` and a render check every `RENDER_INTERVAL`, drawing only
//! when something changed. Frames go through ratatui's crossterm backend
//! into a sink, so diffing and escape-code writing count, the terminal
//! emulator does not. The CPU time is this thread's, from
//! /proc/thread-self/schedstat (nanoseconds on CPU), over the wall time.
//! Not counted: the engine worker decoding the stats streams from Docker
//! (it runs in other tasks and needs the real engine with 1,000 containers).

use std::io;
use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::{CrosstermBackend, TestBackend};
use sandpit::engine::runtimes::RuntimeSet;
use sandpit::engine::sandbox::SandboxInfo;
use sandpit::engine::stats::StatsSample;
use sandpit::sessions::Session;
use sandpit::tui::app::{App, HISTORY_LEN};
use sandpit::tui::collector::Update;
use sandpit::tui::keymap::KeyMap;
use sandpit::tui::theme::ThemeSet;
use sandpit::tui::{RENDER_INTERVAL, TICK_INTERVAL};

const FRAMES: usize = 300;
const FRAME_BUDGET: Duration = Duration::from_millis(2);
const IDLE_SESSIONS: usize = 1_000;
const IDLE_SECONDS: u64 = 10;
const IDLE_BUDGET_PERCENT: f64 = 2.0;

fn user(i: usize) -> String {
    format!("user-{i:04}")
}

/// Session `i`'s sample at second `t` (one a second, as the engine sends).
fn sample(i: usize, t: usize) -> StatsSample {
    StatsSample {
        at_ms: 1_700_000_000_000 + t as i64 * 1000,
        cpu_percent: ((i + t) % 100) as f64,
        memory_used: ((i + t) as u64 % 512) << 20,
        memory_limit: 1 << 30,
        pids: 4,
        pids_limit: Some(256),
        ..Default::default()
    }
}

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
                    user: user(i),
                    runtime: "python-datascience".to_string(),
                    container_id: format!("{i:064}"),
                    state: "running".to_string(),
                    status: "Up 2 hours".to_string(),
                    image: "sandpit/python-datascience:0123456789ab".to_string(),
                    workspace: format!("/srv/workspaces/{}", user(i)),
                    created: 1_700_000_000,
                    disk_limit: Some(1 << 30),
                },
                last_used: 1_700_000_000,
                disk: None,
            })
            .collect(),
    ));
    for i in 0..sessions {
        app.apply(Update::Started {
            user: user(i),
            at: 1_700_000_000 - i as i64,
        });
        for t in 0..HISTORY_LEN {
            app.apply(Update::Stats {
                user: user(i),
                sample: sample(i, t),
            });
        }
    }
    app
}

/// Times of this thread being taken off its core (another task ran).
fn preemptions() -> u64 {
    let text = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("nonvoluntary_ctxt_switches:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap()
}

/// What one size and session count measured.
struct Frames {
    /// Wall time of each frame.
    walls: Vec<Duration>,
    /// Wall time of each frame that kept its core throughout.
    unpreempted: Vec<Duration>,
    /// CPU time per frame, on average.
    cpu_mean: Duration,
}

/// Each frame's wall time, and the mean CPU time per frame. On a shared
/// machine a frame's wall time includes any wait for a core, so frames the
/// scheduler preempted are also counted apart. The CPU time is the work
/// itself, but the kernel updates it only at scheduler ticks, so it is
/// measured over all frames (± a tick, a few ms, in total).
fn frame_times(app: &mut App, width: u16, height: u16) -> Frames {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    let selections: Vec<usize> = (0..FRAMES)
        .map(|i| (i * 7) % app.visible_sessions().len().max(1))
        .collect();
    // Yield first, so the CPU clock starts fresh at a scheduling point.
    std::thread::sleep(Duration::from_millis(1));
    let cpu = thread_cpu();
    let mut walls = Vec::new();
    let mut unpreempted = Vec::new();
    for selected in selections {
        // Move the selection so each frame draws a different session's
        // charts, and the table scrolls through the whole list.
        app.selected_session = selected;
        let before = preemptions();
        let started = Instant::now();
        terminal
            .draw(|frame| sandpit::tui::ui::draw(frame, app))
            .unwrap();
        let wall = started.elapsed();
        walls.push(wall);
        if preemptions() == before {
            unpreempted.push(wall);
        }
    }
    std::thread::sleep(Duration::from_millis(1));
    let cpu_mean = (thread_cpu() - cpu) / FRAMES as u32;
    Frames {
        walls,
        unpreempted,
        cpu_mean,
    }
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nanoseconds this thread has spent on a CPU.
fn thread_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    let nanos: u64 = text.split_whitespace().next().unwrap().parse().unwrap();
    Duration::from_nanos(nanos)
}

/// The idle dashboard's loop for `seconds`; returns (CPU %, frames drawn).
fn idle_cpu(sessions: usize, seconds: u64) -> (f64, usize) {
    let mut app = app_with(sessions);
    let mut terminal = Terminal::new(CrosstermBackend::new(io::sink())).unwrap();
    terminal
        .resize(ratatui::layout::Rect::new(0, 0, 200, 60))
        .unwrap();
    // Samples arrive spread over each second, in batches of this many.
    const BATCH_EVERY: Duration = Duration::from_millis(10);
    let per_batch = sessions.div_ceil(100);
    let start = Instant::now();
    let cpu_start = thread_cpu();
    let (mut next_render, mut next_tick, mut next_batch) = (start, start, start);
    let (mut frames, mut sent, mut second) = (0, 0usize, HISTORY_LEN);
    let end = start + Duration::from_secs(seconds);
    while Instant::now() < end {
        let now = Instant::now();
        if now >= next_batch {
            for _ in 0..per_batch {
                let i = sent % sessions.max(1);
                if i == 0 && sent > 0 {
                    second += 1;
                }
                app.apply(Update::Stats {
                    user: user(i),
                    sample: sample(i, second),
                });
                sent += 1;
            }
            next_batch += BATCH_EVERY;
        }
        if now >= next_tick {
            app.tick();
            next_tick += TICK_INTERVAL;
        }
        if now >= next_render {
            app.settle(now);
            if app.dirty {
                terminal
                    .draw(|frame| sandpit::tui::ui::draw(frame, &mut app))
                    .unwrap();
                app.dirty = false;
                frames += 1;
            }
            next_render += RENDER_INTERVAL;
        }
        let wake = next_batch.min(next_tick).min(next_render);
        std::thread::sleep(wake.saturating_duration_since(Instant::now()));
    }
    let cpu = thread_cpu() - cpu_start;
    let wall = start.elapsed();
    (cpu.as_secs_f64() / wall.as_secs_f64() * 100.0, frames)
}

fn main() {
    for (width, height) in [(120, 35), (200, 60)] {
        let mut baseline = frame_times(&mut app_with(0), width, height).walls;
        let (b50, b95) = (
            percentile(&mut baseline, 0.5),
            percentile(&mut baseline, 0.95),
        );
        for sessions in [100, 1_000] {
            let mut frames = frame_times(&mut app_with(sessions), width, height);
            let (w50, w95) = (
                percentile(&mut frames.walls, 0.5),
                percentile(&mut frames.walls, 0.95),
            );
            let kept = frames.unpreempted.len();
            let (u50, u95) = (
                percentile(&mut frames.unpreempted, 0.5),
                percentile(&mut frames.unpreempted, 0.95),
            );
            let verdict = if width == 200 && sessions == 1_000 {
                if u95 <= FRAME_BUDGET {
                    " | within the 2 ms budget (p95 of frames not preempted)"
                } else {
                    " | OVER the 2 ms budget (p95 of frames not preempted)"
                }
            } else {
                ""
            };
            println!(
                "frame {width}x{height}: {sessions} sessions p50 {:.3} ms p95 {:.3} ms; not preempted ({kept}/{FRAMES}) p50 {:.3} ms p95 {:.3} ms; CPU mean {:.3} ms | no sessions p50 {:.3} ms p95 {:.3} ms{verdict}",
                ms(w50),
                ms(w95),
                ms(u50),
                ms(u95),
                ms(frames.cpu_mean),
                ms(b50),
                ms(b95),
            );
        }
    }
    let (percent, frames) = idle_cpu(IDLE_SESSIONS, IDLE_SECONDS);
    let verdict = if percent <= IDLE_BUDGET_PERCENT {
        "within"
    } else {
        "OVER"
    };
    println!(
        "idle: {IDLE_SESSIONS} sessions streaming stats, {IDLE_SECONDS} s at 200x60: {percent:.2} % of one core, {frames} frames drawn ({verdict} the {IDLE_BUDGET_PERCENT} % budget)"
    );
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
