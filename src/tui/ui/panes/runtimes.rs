//! The runtimes and the state of their images; `build` builds the selected
//! one.

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::{Constraint, Position, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Cell, Row, Table, TableState};

use super::{Component, Pane, pane_block, table_row};
use crate::engine::images::ImageState;
use crate::tui::app::App;
use crate::tui::keymap::{Action, Scope};
use crate::tui::ui::layout::Areas;

pub struct RuntimesPane;

impl RuntimesPane {
    fn move_selection(app: &mut App, delta: isize) {
        let len = app.runtimes.len();
        app.selected_runtime = super::moved(app.selected_runtime, len, delta);
    }
}

impl Component for RuntimesPane {
    fn scope(&self) -> Scope {
        Scope::Runtimes
    }

    fn area(&self, areas: &Areas) -> Option<Rect> {
        areas.runtimes
    }

    fn hints(&self) -> &'static [Action] {
        &[
            Action::Build,
            Action::NewSession,
            Action::NextPane,
            Action::Help,
            Action::Quit,
        ]
    }

    fn draw(&self, frame: &mut Frame, area: Rect, app: &App) {
        draw(frame, area, app);
    }

    fn handle_key(&self, app: &mut App, _key: &KeyEvent, action: Option<Action>) -> bool {
        match action {
            Some(Action::RuntimeUp) => Self::move_selection(app, -1),
            Some(Action::RuntimeDown) => Self::move_selection(app, 1),
            _ => return false,
        }
        true
    }

    fn click(&self, app: &mut App, area: Rect, position: Position) {
        if let Some(row) = table_row(area, position) {
            let row = row + app.runtimes_offset.get();
            if row < app.runtimes.len() {
                app.selected_runtime = row;
            }
        }
    }

    fn scroll(&self, app: &mut App, down: bool) {
        Self::move_selection(app, if down { 1 } else { -1 });
    }
}

fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = app.theme();
    let focused = app.focus == Pane::Runtimes;
    // The language column goes first when the pane is narrow.
    let wide = area.width >= 44;
    let header = if wide {
        Row::new(["NAME", "LANGUAGE", "IMAGE"])
    } else {
        Row::new(["NAME", "IMAGE"])
    }
    .style(theme.muted());
    let building = app
        .build
        .as_ref()
        .filter(|b| b.finished.is_none())
        .map(|b| b.runtime.as_str());
    let rows = app.runtimes.iter().map(|runtime| {
        let (label, color) = if building == Some(runtime.name.as_str()) {
            ("building…", theme.accent)
        } else {
            match runtime.state {
                Some(ImageState::Built) => ("built", theme.ok),
                Some(ImageState::Stale) => ("stale", theme.warning),
                Some(ImageState::Missing) => ("missing", theme.error),
                None => ("unknown", theme.muted),
            }
        };
        let name = Cell::from(runtime.name.clone());
        let state = Cell::from(Span::styled(label, theme.text().fg(color)));
        if wide {
            Row::new(vec![name, Cell::from(runtime.language.as_str()), state])
        } else {
            Row::new(vec![name, state])
        }
        .style(theme.text())
    });
    let widths = if wide {
        vec![
            Constraint::Fill(3),
            Constraint::Length(9),
            Constraint::Length(10),
        ]
    } else {
        vec![Constraint::Fill(3), Constraint::Length(9)]
    };
    let table = Table::new(rows, widths)
        .header(header)
        .row_highlight_style(if focused {
            theme.selected()
        } else {
            theme.text()
        })
        .block(pane_block(" Runtimes ", focused, theme));
    let mut state = TableState::default()
        .with_selected((!app.runtimes.is_empty()).then_some(app.selected_runtime));
    frame.render_stateful_widget(table, area, &mut state);
    app.runtimes_offset.set(state.offset());
}
