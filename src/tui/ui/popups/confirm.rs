//! A destructive confirmation: what is at stake, the buttons with the focused
//! one highlighted, and for a purge the user id being typed.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{frame_popup, typed_char};
use crate::tui::app::{App, Deliberate};
use crate::tui::collector::{FileOp, Request};
use crate::tui::keymap::Action;
use crate::tui::popups::{Choice, Confirm, Confirmable, Popup};

/// Keys of a destructive confirmation: the keymap's next/previous move
/// between the buttons and its answer key answers; a purge then wants the
/// user id typed and the answer key. Any other key closes it, doing nothing.
pub fn handle_key(
    app: &mut App,
    mut confirm: Confirm,
    key: &KeyEvent,
    action: Option<Action>,
) -> Option<Popup> {
    if let Some(typed) = confirm.typed.as_mut() {
        if let Some(c) = typed_char(key) {
            typed.push(c);
        } else if key.code == KeyCode::Backspace {
            typed.pop();
        } else if action == Some(Action::ConfirmAnswer) {
            let typed = typed.clone();
            match confirm.subject {
                Confirmable::DeleteSession { user } if typed == user => {
                    app.deliberate(Deliberate::Send {
                        notice: format!("deleting `{user}` and its workspace…"),
                        request: Box::new(Request::Delete { user, purge: true }),
                    });
                }
                Confirmable::DeleteSession { user } => app.warn(format!(
                    "purge cancelled: `{typed}` is not the user id `{user}`"
                )),
                _ => {}
            }
            return None;
        } else {
            app.inform("purge cancelled");
            return None;
        }
        return Some(Popup::Confirm(confirm));
    }
    match action {
        Some(Action::ConfirmNext) => confirm.move_focus(true),
        Some(Action::ConfirmPrev) => confirm.move_focus(false),
        Some(Action::ConfirmAnswer) => match confirm.focused_choice() {
            Choice::Cancel => return None,
            Choice::Purge => confirm.typed = Some(String::new()),
            Choice::Proceed => {
                app.deliberate(proceed(confirm.subject));
                return None;
            }
        },
        _ => {
            app.inform(format!("{} cancelled", confirm.title()));
            return None;
        }
    }
    Some(Popup::Confirm(confirm))
}

/// What answering yes to a confirmation does.
pub fn proceed(subject: Confirmable) -> Deliberate {
    match subject {
        Confirmable::DeleteSession { user } => Deliberate::Send {
            notice: format!("deleting `{user}`, keeping its workspace…"),
            request: Box::new(Request::Delete { user, purge: false }),
        },
        Confirmable::StopSession {
            user,
            restart: false,
        } => Deliberate::Send {
            notice: format!("stopping `{user}`…"),
            request: Box::new(Request::Stop(user)),
        },
        Confirmable::StopSession {
            user,
            restart: true,
        } => Deliberate::Send {
            notice: format!("restarting `{user}`…"),
            request: Box::new(Request::Restart(user)),
        },
        Confirmable::DeleteFile { user, path } => Deliberate::Send {
            notice: format!("deleting {path}…"),
            request: Box::new(Request::FileOp {
                user,
                op: FileOp::Delete(path),
            }),
        },
    }
}

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
                format!(
                    "{} purge · any other key cancels",
                    app.keymap.first(Action::ConfirmAnswer)
                ),
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
                format!(
                    "{} · any other key cancels",
                    super::title_hints(
                        app,
                        &[
                            &[Action::ConfirmPrev, Action::ConfirmNext],
                            &[Action::ConfirmAnswer]
                        ]
                    )
                    .replace(", ", " · ")
                ),
                theme.muted(),
            ));
        }
    }
    let inner = frame_popup(frame, theme, confirm.title(), 72, 8);
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}
