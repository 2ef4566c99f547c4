use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use super::{frame_popup, title_hints, typed_char};
use crate::tui::app::App;
use crate::tui::keymap::Action;
use crate::tui::popups::{Popup, Prompt};

/// Keys of a one-line prompt: characters type, the keymap's submit and
/// cancel end it.
pub fn handle_key(
    app: &mut App,
    purpose: Prompt,
    mut text: String,
    key: &KeyEvent,
    action: Option<Action>,
) -> Option<Popup> {
    if let Some(c) = typed_char(key) {
        text.push(c);
    } else if key.code == KeyCode::Backspace {
        text.pop();
    } else if action == Some(Action::PromptCancel) {
        return None;
    } else if action == Some(Action::PromptSubmit) {
        app.submit_prompt(purpose, text);
        return None;
    }
    Some(Popup::Prompt { purpose, text })
}

/// A one-line text prompt: file names and searches.
pub fn draw(frame: &mut Frame, app: &App, title: &str, text: &str) {
    let theme = app.theme();
    let inner = frame_popup(frame, theme, title, 64, 4);
    let lines = vec![
        Line::styled(format!("{text}▏"), theme.selected()),
        Line::styled(
            title_hints(app, &[&[Action::PromptSubmit], &[Action::PromptCancel]])
                .replace(", ", " · "),
            theme.muted(),
        ),
    ];
    frame.render_widget(Paragraph::new(lines), inner);
}
