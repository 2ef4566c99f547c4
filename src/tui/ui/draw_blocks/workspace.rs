//! The session's workspace. The editor, output and file browser of the next
//! step live here; until then it shows where the session's files are.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::pane_block;
use crate::tui::app::App;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = app.theme();
    let block = pane_block(" Workspace ", false, theme);
    let lines = match app.selected() {
        None => vec![Line::styled("no session selected", theme.muted())],
        Some(session) => {
            let sandbox = &session.sandbox;
            let row = |key: &str, value: String| {
                Line::from(vec![
                    Span::styled(format!("{key:<10}"), theme.muted()),
                    Span::styled(value, theme.text()),
                ])
            };
            vec![
                row("folder", sandbox.workspace.clone()),
                row("container", sandbox.container_id.chars().take(12).collect()),
                row("image", sandbox.image.clone()),
                row("status", sandbox.status.clone()),
            ]
        }
    };
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        area,
    );
}
