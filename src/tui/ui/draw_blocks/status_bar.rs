//! The status line: a notice, or the focused pane's key hints, named from
//! the keymap.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::app::App;
use crate::tui::keymap::{Action, Scope};

/// The actions hinted now: the filter's while typing one, else the focused
/// pane's.
pub fn hinted(app: &App) -> Vec<Action> {
    if app.filtering {
        Scope::Filter.actions().collect()
    } else {
        app.focus.component().current_hints(app)
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = app.theme();
    let line = if let Some(notice) = &app.notice {
        let color = if notice.error { theme.error } else { theme.ok };
        Line::from(Span::styled(
            format!(" {}", notice.text),
            theme.text().fg(color),
        ))
    } else {
        let mut spans = vec![Span::raw(" ")];
        if app.filtering {
            spans.push(Span::styled("type to filter · ", theme.muted()));
        }
        for (index, action) in hinted(app).into_iter().enumerate() {
            if index > 0 {
                spans.push(Span::styled(" · ", theme.muted()));
            }
            spans.push(Span::styled(app.keymap.label(action), theme.accent()));
            spans.push(Span::styled(format!(" {}", action.hint()), theme.muted()));
        }
        Line::from(spans)
    };
    frame.render_widget(Paragraph::new(line), area);
}
