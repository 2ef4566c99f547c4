//! Snapshots of the Stats charts at the sizes the dashboard gives them, drawn
//! from a made-up five minutes: a busy spell, a restart (a gap, counters
//! from zero), memory growing towards its limit, network and disk traffic.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use sandpit::engine::stats::{ByteCounters, StatsSample};
use sandpit::tui::history::SessionHistory;
use sandpit::tui::theme::ThemeSet;
use sandpit::tui::ui::charts::StatsCharts;

/// A sample a second for `seconds`, with a 20 s gap (a restart) at 120 s.
fn history(seconds: u64, io: bool) -> SessionHistory {
    let mut history = SessionHistory::new();
    let (mut rx, mut written) = (0u64, 0u64);
    for s in 0..seconds {
        if (120..140).contains(&s) {
            // Stopped: no samples; the counters start again from zero.
            rx = 0;
            written = 0;
            continue;
        }
        // Busy for a minute, idle, then busy on two cores.
        let cpu = match s {
            0..60 => 95.0 + (s % 5) as f64,
            60..120 => 2.0,
            _ => 150.0 + (s % 7) as f64 * 5.0,
        };
        rx += if s % 10 < 5 { 40 << 10 } else { 0 };
        written += if s % 30 == 0 { 8 << 20 } else { 0 };
        history.push(StatsSample {
            at_ms: 1_700_000_000_000 + s as i64 * 1000,
            cpu_percent: cpu,
            memory_used: (64 + (s % 120) * 6) << 20,
            memory_limit: 1 << 30,
            pids: 3 + s % 4,
            pids_limit: Some(64),
            net: io.then_some(ByteCounters {
                read: rx,
                written: rx / 4,
            }),
            block: io.then_some(ByteCounters { read: 0, written }),
        });
    }
    history
}

fn render(history: &SessionHistory, width: u16, height: u16) -> String {
    let theme = ThemeSet::builtin().themes.remove(0);
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| {
            frame.render_widget(
                StatsCharts::new(history, &theme).note("disk 8.0 KiB / 1.0 GiB"),
                frame.area(),
            )
        })
        .unwrap();
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

#[test]
fn charts_in_the_default_pane() {
    // The Stats pane's inside at 120x32.
    insta::assert_snapshot!(render(&history(300, false), 46, 10));
}

#[test]
fn charts_stacked_in_a_tall_pane() {
    insta::assert_snapshot!(render(&history(300, false), 70, 24));
}

#[test]
fn io_charts_where_the_engine_reports_counters() {
    insta::assert_snapshot!(render(&history(300, true), 100, 30));
}

#[test]
fn a_small_pane_gets_sparklines() {
    insta::assert_snapshot!(render(&history(300, true), 34, 8));
}

#[test]
fn a_tiny_pane_gets_the_figures() {
    insta::assert_snapshot!(render(&history(300, true), 40, 3));
}

#[test]
fn a_short_history_sits_at_the_right() {
    insta::assert_snapshot!(render(&history(20, false), 60, 14));
}
