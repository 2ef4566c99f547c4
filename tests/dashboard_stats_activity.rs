//! Snapshots of the Stats charts at the sizes the dashboard gives them, drawn
//! from a made-up five minutes: a busy spell, a restart (a gap, counters
//! from zero), memory growing towards its limit, network and disk traffic;
//! and of the Activity table, for one session and for all.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::widgets::Widget;
use sandpit::activity::{Activity, ActivityFlags, ActivityRow, Source};
use sandpit::engine::sandbox::UserId;
use sandpit::engine::stats::{ByteCounters, StatsSample};
use sandpit::tui::activity::{ActivityUpdate, ActivityView};
use sandpit::tui::history::SessionHistory;
use sandpit::tui::theme::ThemeSet;
use sandpit::tui::ui::activity::ActivityTable;
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
    draw(
        width,
        height,
        StatsCharts::new(history, &theme).note("disk 8.0 KiB / 1.0 GiB"),
    )
}

fn draw(width: u16, height: u16, widget: impl Widget) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| frame.render_widget(widget, frame.area()))
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

/// What an agent, a person at the CLI and the dashboard did in two
/// sessions, a few seconds apart.
fn activity_view() -> ActivityView {
    let alice = UserId::parse("alice").unwrap();
    let bob = UserId::parse("bob").unwrap();
    let at = |seconds: i64, activity: Activity| Activity {
        time_ms: 1_764_427_623_000 + seconds * 1000,
        ..activity
    };
    let rows = [
        at(
            0,
            Activity::new(Source::Mcp, &alice, "write_file", "main.py (120 bytes)"),
        ),
        at(
            1,
            Activity::new(Source::Mcp, &alice, "execute", "python3 main.py")
                .with_exit_code(0)
                .with_duration(std::time::Duration::from_millis(840)),
        ),
        at(
            5,
            Activity::new(Source::Cli, &bob, "exec", "sh -c 'sleep 100'")
                .with_exit_code(137)
                .with_duration(std::time::Duration::from_secs(30))
                .with_flags(ActivityFlags {
                    timed_out: true,
                    ..Default::default()
                }),
        ),
        at(
            9,
            Activity::new(Source::Dashboard, &alice, "run", "python3 main.py")
                .with_exit_code(1)
                .with_duration(std::time::Duration::from_millis(1250)),
        ),
        at(
            12,
            Activity::new(Source::Mcp, &alice, "read_file", "missing.txt")
                .with_duration(std::time::Duration::from_millis(3))
                .with_error(&"no such file: missing.txt"),
        ),
    ];
    let mut view = ActivityView::new();
    view.apply(ActivityUpdate::Rows(
        rows.into_iter()
            .enumerate()
            .map(|(i, activity)| ActivityRow {
                id: i as i64 + 1,
                activity,
            })
            .collect(),
    ));
    view
}

fn render_activity(view: &ActivityView, width: u16, height: u16) -> String {
    let theme = ThemeSet::builtin().themes.remove(0);
    draw(width, height, ActivityTable::new(view, &theme, "a"))
}

#[test]
fn activity_of_the_selected_session() {
    let mut view = activity_view();
    view.select(Some("alice"));
    insta::assert_snapshot!(render_activity(&view, 80, 6));
}

#[test]
fn activity_of_all_sessions() {
    let mut view = activity_view();
    view.toggle_scope();
    insta::assert_snapshot!(render_activity(&view, 100, 7));
}

#[test]
fn activity_scrolled_back_in_a_short_pane() {
    let mut view = activity_view();
    view.toggle_scope();
    view.scroll_up(2);
    insta::assert_snapshot!(render_activity(&view, 60, 3));
}

#[test]
fn activity_with_nothing_to_show() {
    let mut view = ActivityView::new();
    view.apply(ActivityUpdate::Rows(Vec::new()));
    let none_selected = render_activity(&view, 60, 3);
    view.select(Some("carol"));
    view.apply(ActivityUpdate::Backlog {
        user: "carol".to_string(),
        rows: Vec::new(),
    });
    let empty = render_activity(&view, 60, 3);
    view.apply(ActivityUpdate::Error("database is locked".to_string()));
    let failed = render_activity(&view, 60, 4);
    insta::assert_snapshot!(format!("{none_selected}\n---\n{empty}\n---\n{failed}"));
}
