//! The selected session's CPU, memory, pids and disk.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Sparkline};

use super::{Component, Pane, pane_block};
use crate::tui::app::App;
use crate::tui::keymap::{Action, Scope};
use crate::tui::ui::layout::Areas;
use crate::units::human_bytes;

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
    let Some(latest) = history.latest() else {
        return;
    };
    let [cpu_label, cpu_chart, memory_label, memory_chart] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Fill(1),
    ])
    .areas(inner);
    // Sparklines draw the newest samples at the right: take what fits.
    let width = usize::from(inner.width);
    let skip = history.len().saturating_sub(width);
    let cpu: Vec<u64> = history
        .iter()
        .skip(skip)
        .map(|s| (s.cpu_percent * 10.0).round() as u64)
        .collect();
    let memory: Vec<u64> = history.iter().skip(skip).map(|s| s.memory_used).collect();
    frame.render_widget(
        Paragraph::new(Line::from(
            match app.selected().and_then(|s| s.disk.as_ref()) {
                Some(disk) => format!(
                    "CPU {:.1}%   pids {}   disk {}",
                    latest.cpu_percent,
                    latest.pids,
                    crate::units::disk_text(Some(disk))
                ),
                None => format!("CPU {:.1}%   pids {}", latest.cpu_percent, latest.pids),
            },
        ))
        .style(theme.text().fg(theme.cpu)),
        cpu_label,
    );
    let cpu_max = history
        .iter()
        .map(|s| (s.cpu_percent * 10.0).round() as u64)
        .max()
        .unwrap_or(0)
        .max(1000);
    frame.render_widget(
        Sparkline::default()
            .data(&cpu)
            .max(cpu_max)
            .style(theme.text().fg(theme.cpu)),
        cpu_chart,
    );
    frame.render_widget(
        Paragraph::new(format!(
            "memory {} / {} ({:.1}%)",
            human_bytes(latest.memory_used),
            human_bytes(latest.memory_limit),
            latest.memory_percent()
        ))
        .style(theme.text().fg(theme.memory)),
        memory_label,
    );
    frame.render_widget(
        Sparkline::default()
            .data(&memory)
            .max(latest.memory_limit.max(1))
            .style(theme.text().fg(theme.memory)),
        memory_chart,
    );
}
