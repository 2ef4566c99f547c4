use ratatui::Frame;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::frame_popup;
use crate::tui::app::App;

/// A one-line text prompt: file names and searches.
pub fn draw(frame: &mut Frame, app: &App, title: &str, text: &str) {
    let theme = app.theme();
    let inner = frame_popup(frame, theme, title, 64, 4);
    let lines = vec![
        Line::styled(format!("{text}▏"), theme.selected()),
        Line::styled("enter confirm · esc cancel", theme.muted()),
    ];
    frame.render_widget(Paragraph::new(lines), inner);
}

pub fn draw_confirm_delete(frame: &mut Frame, app: &App, path: &str) {
    let theme = app.theme();
    let inner = frame_popup(frame, theme, "Delete from the workspace", 60, 5);
    let lines = vec![
        Line::from(vec![
            Span::styled("Delete ", theme.text()),
            Span::styled(path.to_string(), theme.accent()),
            Span::styled(" (and anything in it)?", theme.text()),
        ]),
        Line::raw(""),
        Line::styled("y delete · esc keep", theme.muted()),
    ];
    frame.render_widget(Paragraph::new(lines), inner);
}
