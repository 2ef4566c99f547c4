//! The session's workspace as a tree.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState, Paragraph};

use super::{human_bytes, pane_block};
use crate::engine::files::EntryKind;
use crate::tui::app::{App, Pane};
use crate::tui::files::MAX_EDITABLE_SIZE;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = app.theme();
    let focused = app.focus == Pane::Files;
    let Some(session) = app.selected() else {
        let block = pane_block(" Files ", focused, theme);
        frame.render_widget(
            Paragraph::new("no session selected")
                .style(theme.muted())
                .block(block),
            area,
        );
        return;
    };
    let block = pane_block(
        format!(" Files — {} ", session.sandbox.user),
        focused,
        theme,
    );
    let work = app.work.get(&session.sandbox.user);
    let Some(tree) = work
        .map(|w| &w.tree)
        .filter(|t| t.has_root() || t.error.is_some())
    else {
        let hint = if session.sandbox.is_running() {
            format!("{}\ntab here to browse it", session.sandbox.workspace)
        } else {
            format!(
                "{}\nstart the session to browse it",
                session.sandbox.workspace
            )
        };
        frame.render_widget(Paragraph::new(hint).style(theme.muted()).block(block), area);
        return;
    };
    if let Some(error) = &tree.error {
        frame.render_widget(
            Paragraph::new(error.clone())
                .style(theme.text().fg(theme.error))
                .block(block),
            area,
        );
        return;
    }
    let rows = tree.rows();
    if rows.is_empty() {
        frame.render_widget(
            Paragraph::new("empty — a creates a file, A a folder")
                .style(theme.muted())
                .block(block),
            area,
        );
        return;
    }
    let items: Vec<ListItem> = rows
        .iter()
        .map(|row| {
            let indent = "  ".repeat(row.depth);
            let (marker, name_style) = match row.entry.kind {
                EntryKind::Dir if row.expanded => ("▾ ", theme.accent()),
                EntryKind::Dir => ("▸ ", theme.accent()),
                EntryKind::Symlink => ("@ ", theme.muted()),
                _ => ("  ", theme.text()),
            };
            let mut spans = vec![
                Span::raw(indent),
                Span::styled(marker, theme.muted()),
                Span::styled(row.entry.display_name(), name_style),
            ];
            if row.entry.kind == EntryKind::File {
                let note = if row.entry.size > MAX_EDITABLE_SIZE {
                    " (large)"
                } else {
                    ""
                };
                spans.push(Span::styled(
                    format!("  {}{note}", human_bytes(row.entry.size)),
                    theme.muted(),
                ));
            }
            ListItem::new(Line::from(spans))
        })
        .collect();
    let list = List::new(items).block(block).highlight_style(if focused {
        theme.selected()
    } else {
        theme.text()
    });
    let mut state = ListState::default().with_selected(Some(tree.selected));
    frame.render_stateful_widget(list, area, &mut state);
}
