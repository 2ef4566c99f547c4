use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::app::{App, EngineStatus};

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = app.theme();
    let line = match &app.engine {
        EngineStatus::Down { error } => Line::from(Span::styled(
            format!(" Docker engine not answering — reconnecting… ({error})"),
            theme.banner(),
        )),
        EngineStatus::Connecting => Line::from(vec![
            Span::styled(" sandpit ", theme.accent()),
            Span::styled("· connecting to the Docker engine…", theme.muted()),
        ]),
        EngineStatus::Up { version } => {
            let running = app
                .sessions
                .iter()
                .filter(|s| s.sandbox.is_running())
                .count();
            Line::from(vec![
                Span::styled(" sandpit ", theme.accent()),
                Span::styled(
                    format!(
                        "· Docker {version} · {}, {running} running · theme {}",
                        sessions_count(app.sessions.len()),
                        theme.name
                    ),
                    theme.muted(),
                ),
            ])
        }
    };
    let style = if matches!(app.engine, EngineStatus::Down { .. }) {
        theme.banner()
    } else {
        theme.text()
    };
    frame.render_widget(Paragraph::new(line).style(style), area);
}

/// `1 session`, `2 sessions`.
pub fn sessions_count(count: usize) -> String {
    if count == 1 {
        "1 session".to_string()
    } else {
        format!("{count} sessions")
    }
}
