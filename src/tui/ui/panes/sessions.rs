//! The sessions list: the selected session is what the other panes show.
//! Its keys are the global ones (start, stop, delete, …).

use ratatui::Frame;
use ratatui::layout::{Constraint, Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row, Table, TableState};

use super::{Component, Pane, pane_block, table_row};
use crate::tui::app::App;
use crate::tui::keymap::{Action, Scope};
use crate::tui::ui::layout::Areas;
use crate::units::human_bytes;

pub struct SessionsPane;

impl Component for SessionsPane {
    fn scope(&self) -> Scope {
        Scope::Sessions
    }

    fn area(&self, areas: &Areas) -> Option<Rect> {
        areas.sessions
    }

    fn hints(&self) -> &'static [Action] {
        &[
            Action::NewSession,
            Action::StartStop,
            Action::Restart,
            Action::Delete,
            Action::Isolation,
            Action::Filter,
            Action::NextPane,
            Action::Help,
            Action::Quit,
        ]
    }

    fn draw(&self, frame: &mut Frame, area: Rect, app: &App) {
        draw(frame, area, app);
    }

    fn click(&self, app: &mut App, area: Rect, position: Position) {
        if let Some(row) = table_row(area, position) {
            let row = row + app.sessions_offset.get();
            if row < app.visible_sessions().len() {
                app.selected_session = row;
            }
        }
    }
}

fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = app.theme();
    let focused = app.focus == Pane::Sessions;
    let visible = app.visible_sessions();
    let mut title = vec![Span::raw(format!(" Sessions ({}) ", visible.len()))];
    if app.filtering || !app.filter.is_empty() {
        let cursor = if app.filtering { "▏" } else { "" };
        title.push(Span::styled(
            format!("filter: {}{cursor} ", app.filter),
            theme.accent(),
        ));
    }
    let header =
        Row::new(["USER", "RUNTIME", "STATE", "CPU %", "MEMORY", "UPTIME"]).style(theme.muted());
    let rows = visible.iter().map(|session| {
        let sandbox = &session.sandbox;
        let stats = app
            .latest_stats(&sandbox.user)
            .filter(|_| sandbox.is_running());
        let state_style = match sandbox.state.as_str() {
            "running" => theme.text().fg(theme.ok),
            "exited" | "dead" => theme.text().fg(theme.error),
            _ => theme.text().fg(theme.warning),
        };
        let uptime = if sandbox.is_running() {
            sandbox
                .status
                .strip_prefix("Up ")
                .unwrap_or(&sandbox.status)
                .to_string()
        } else {
            "-".to_string()
        };
        Row::new([
            Cell::from(sandbox.user.clone()),
            Cell::from(sandbox.runtime.clone()),
            Cell::from(Span::styled(sandbox.state.clone(), state_style)),
            Cell::from(stats.map_or("-".to_string(), |s| format!("{:.1}", s.cpu_percent))),
            Cell::from(stats.map_or("-".to_string(), |s| human_bytes(s.memory_used))),
            Cell::from(uptime),
        ])
        .style(theme.text())
    });
    let table = Table::new(
        rows,
        [
            Constraint::Fill(3),
            Constraint::Length(18),
            Constraint::Length(7),
            Constraint::Length(6),
            Constraint::Length(10),
            Constraint::Fill(2),
        ],
    )
    .header(header)
    .row_highlight_style(theme.selected())
    .block(pane_block(Line::from(title), focused, theme));
    let mut state =
        TableState::default().with_selected((!visible.is_empty()).then_some(app.selected_session));
    frame.render_stateful_widget(table, area, &mut state);
    app.sessions_offset.set(state.offset());
    if visible.is_empty() && area.height > 3 {
        let hint = if app.sessions.is_empty() {
            format!(
                "no sessions yet — press {} to create one",
                app.keymap.first(Action::NewSession)
            )
        } else {
            "no session matches the filter".to_string()
        };
        let inner = Rect::new(area.x + 2, area.y + 2, area.width.saturating_sub(4), 1);
        frame.render_widget(
            ratatui::widgets::Paragraph::new(hint).style(theme.muted()),
            inner,
        );
    }
}

/// A key while the filter is being typed: characters type, the keymap's
/// filter actions keep or clear it.
pub fn filter_key(app: &mut App, key: &crossterm::event::KeyEvent) {
    use crossterm::event::KeyCode;
    match app.keymap.action_in(Scope::Filter, key) {
        Some(Action::FilterClear) => {
            app.filtering = false;
            app.filter.clear();
        }
        Some(Action::FilterKeep) => app.filtering = false,
        _ => match key.code {
            KeyCode::Backspace => {
                app.filter.pop();
            }
            KeyCode::Char(c) => app.filter.push(c),
            _ => {}
        },
    }
    app.selected_session = 0;
}
