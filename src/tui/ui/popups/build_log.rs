use ratatui::Frame;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use super::frame_popup;
use crate::tui::app::App;

pub fn draw(frame: &mut Frame, app: &App, scroll_back: usize) {
    let theme = app.theme();
    let area = frame.area();
    let width = area.width.saturating_sub(8).max(20);
    let height = area.height.saturating_sub(6).max(6);
    let Some(build) = &app.build else {
        let inner = frame_popup(frame, theme, "Build", width, 5);
        frame.render_widget(Paragraph::new("no build yet").style(theme.muted()), inner);
        return;
    };
    let status = match &build.finished {
        None => "building…".to_string(),
        Some(Ok(tag)) => format!("done: {tag}"),
        Some(Err(_)) => "FAILED".to_string(),
    };
    let title = format!("Build {} — {status} — ↑/↓ scroll, esc close", build.runtime);
    let inner = frame_popup(frame, theme, &title, width, height);
    let mut lines: Vec<Line> = build
        .lines
        .iter()
        .map(|line| Line::styled(line.clone(), theme.text()))
        .collect();
    if let Some(Err(error)) = &build.finished {
        lines.extend(
            error
                .lines()
                .map(|line| Line::styled(line.to_string(), theme.text().fg(theme.error))),
        );
    }
    let visible = usize::from(inner.height);
    let end = lines
        .len()
        .saturating_sub(scroll_back.min(lines.len().saturating_sub(visible)));
    let start = end.saturating_sub(visible);
    let shown: Vec<Line> = lines[start..end].to_vec();
    frame.render_widget(Paragraph::new(shown), inner);
}
