//! The selected session's CPU, memory, pids, I/O and disk, charted over
//! the last minutes (`ui::charts`).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use super::{Component, Pane, pane_block};
use crate::tui::app::App;
use crate::tui::keymap::{Action, Scope};
use crate::tui::ui::charts::StatsCharts;
use crate::tui::ui::layout::Areas;

pub struct StatsPane;

impl Component for StatsPane {
    fn scope(&self) -> Scope {
        Scope::Stats
    }

    fn area(&self, areas: &Areas) -> Option<Rect> {
        areas.stats
    }

    fn hints(&self) -> &'static [Action] {
        &[
            Action::NextPane,
            Action::CycleTheme,
            Action::Help,
            Action::Quit,
        ]
    }

    fn draw(&self, frame: &mut Frame, area: Rect, app: &App) {
        draw(frame, area, app);
    }
}

fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = app.theme();
    let focused = app.focus == Pane::Stats;
    let user = app.selected_user();
    let title = match &user {
        Some(user) => format!(" Stats — {user} "),
        None => " Stats ".to_string(),
    };
    let block = pane_block(title, focused, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let history = user.as_deref().and_then(|user| app.stats.get(user));
    let Some(history) = history.filter(|h| !h.is_empty()) else {
        let running = app.selected().is_some_and(|s| s.sandbox.is_running());
        let text = if running {
            "waiting for samples… (a running session streams one a second)".to_string()
        } else if user.is_some() {
            format!(
                "the session is not running; press {} to start it",
                app.keymap.first(Action::StartStop)
            )
        } else {
            "select a session to see its CPU and memory".to_string()
        };
        let mut lines = vec![Line::from(text)];
        if let Some(disk) = app.selected().and_then(|s| s.disk.as_ref()) {
            lines.push(Line::from(format!(
                "disk {}",
                crate::units::disk_text(Some(disk))
            )));
        }
        frame.render_widget(Paragraph::new(lines).style(theme.muted()), inner);
        return;
    };
    let mut charts = StatsCharts::new(history, theme);
    if let Some(disk) = app.selected().and_then(|s| s.disk.as_ref()) {
        charts = charts.note(format!("disk {}", crate::units::disk_text(Some(disk))));
    }
    frame.render_widget(charts, inner);
}
