use ratatui::Frame;
use ratatui::text::Line;
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
