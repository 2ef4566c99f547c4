use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Cell, Row, Table, TableState};

use super::pane_block;
use crate::engine::images::ImageState;
use crate::tui::app::{App, Pane};

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
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
