use ratatui::Frame;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::frame_popup;
use crate::tui::app::App;

pub fn draw(frame: &mut Frame, app: &App, user: &str) {
    let theme = app.theme();
    let lines = vec![
        Line::from(vec![
            Span::styled("Delete the sandbox of ", theme.text()),
            Span::styled(user.to_string(), theme.accent()),
            Span::styled("?", theme.text()),
        ]),
        Line::raw(""),
        Line::from(vec![
            Span::styled("  k ", theme.accent()),
            Span::styled("delete, keep the workspace folder", theme.text()),
        ]),
        Line::from(vec![
            Span::styled("  p ", theme.text().fg(theme.error)),
            Span::styled("delete, and purge the workspace folder", theme.text()),
        ]),
        Line::from(vec![
            Span::styled("esc ", theme.accent()),
            Span::styled("cancel", theme.text()),
        ]),
    ];
    let inner = frame_popup(frame, theme, "Delete session", 52, 7);
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}
