use ratatui::Frame;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use super::{frame_popup, title_hints};
use crate::tui::app::App;
use crate::tui::keymap::Action;
use crate::tui::popups::Popup;

/// `scroll_back` is lines scrolled back from the end of the log.
pub fn handle_key(scroll_back: usize, action: Option<Action>) -> Option<Popup> {
    match action {
        Some(Action::BuildLogClose) => None,
        Some(Action::BuildLogUp) => Some(Popup::BuildLog {
            scroll_back: scroll_back + 1,
        }),
        Some(Action::BuildLogDown) => Some(Popup::BuildLog {
            scroll_back: scroll_back.saturating_sub(1),
        }),
        _ => Some(Popup::BuildLog { scroll_back }),
    }
}

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
    let title = format!(
        "Build {} — {status} — {}",
        build.runtime,
        title_hints(
            app,
            &[
                &[Action::BuildLogUp, Action::BuildLogDown],
                &[Action::BuildLogClose]
            ]
        )
    );
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
