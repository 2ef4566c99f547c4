//! A destructive confirmation: what is at stake, the buttons with the focused
//! one highlighted, and for a purge the user id being typed.

use ratatui::Frame;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::frame_popup;
use crate::tui::app::App;
use crate::tui::popups::{Choice, Confirm, Confirmable};

pub fn draw(frame: &mut Frame, app: &App, confirm: &Confirm) {
    let theme = app.theme();
    let text = |s: &str| Span::styled(s.to_string(), theme.text());
    let accent = |s: &str| Span::styled(s.to_string(), theme.accent());
    let question = match &confirm.subject {
        Confirmable::DeleteSession { user } if confirm.typed.is_some() => Line::from(vec![
            text("This deletes the sandbox of "),
            accent(user),
            text(" and every file in its workspace. Type the user id to purge:"),
        ]),
        Confirmable::DeleteSession { user } => Line::from(vec![
            text("Delete the sandbox of "),
            accent(user),
            text("?"),
        ]),
        Confirmable::StopSession { user, restart } => Line::from(vec![
            text(if *restart { "Restart " } else { "Stop " }),
            accent(user),
            text("? A run is in progress there; it will be killed."),
        ]),
        Confirmable::DeleteFile { path, .. } => Line::from(vec![
            text("Delete "),
            accent(path),
            text(" (and anything in it)?"),
        ]),
    };
    let mut lines = vec![question, Line::raw("")];
    match &confirm.typed {
        Some(typed) => {
            lines.push(Line::styled(format!(" {typed}▏"), theme.selected()));
            lines.push(Line::raw(""));
            lines.push(Line::styled(
                "enter purge · any other key cancels",
                theme.muted(),
            ));
        }
        None => {
            let mut buttons = Vec::new();
            for (index, (choice, label)) in confirm.choices().iter().enumerate() {
                let style = if index == confirm.focused {
                    theme.selected()
                } else if *choice == Choice::Cancel {
                    theme.text()
                } else {
                    theme.text().fg(theme.error)
                };
                // The focus shows without colour too.
                let button = if index == confirm.focused {
                    format!("» {label} «")
                } else {
                    format!("[ {label} ]")
                };
                buttons.push(Span::styled(button, style));
                buttons.push(Span::raw(" "));
            }
            lines.push(Line::from(buttons));
            lines.push(Line::raw(""));
            lines.push(Line::styled(
                "←/→ choose · enter answer · any other key cancels",
                theme.muted(),
            ));
        }
    }
    let inner = frame_popup(frame, theme, confirm.title(), 72, 8);
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}
