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
}
