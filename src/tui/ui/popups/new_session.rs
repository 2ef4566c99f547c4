use ratatui::Frame;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crossterm::event::KeyEvent;

use super::{frame_popup, title_hints};
use crate::tui::app::App;
use crate::tui::collector::Request;
use crate::tui::keymap::Action;
use crate::tui::popups::{Field, NETWORKS, NewSessionForm, Popup};

pub fn handle_key(
    app: &mut App,
    mut form: NewSessionForm,
    key: &KeyEvent,
    action: Option<Action>,
) -> Option<Popup> {
    // Text fields take typed characters before any action.
    if !form.handle_key(key, action) {
        match action {
            Some(Action::FormCancel) => return None,
            Some(Action::FormCreate) => match form.validate() {
                Ok((user, runtime, overrides)) => {
                    app.inform(format!("creating `{user}` with {runtime}…"));
                    app.outbox.push(Request::Create {
                        user,
                        runtime,
                        overrides,
                    });
                    return None;
                }
                Err(_) => form.show_errors = true,
            },
            _ => {}
        }
    }
    Some(Popup::NewSession(form))
}

pub fn draw(frame: &mut Frame, app: &App, form: &NewSessionForm) {
    let theme = app.theme();
    let title = format!(
        "New session — {}",
        title_hints(
            app,
            &[
                &[Action::FormNext],
                &[Action::FormCreate],
                &[Action::FormCancel]
            ]
        )
    );
    let inner = frame_popup(frame, theme, &title, 70, 13);
    let mut lines = Vec::new();
    for field in Field::ORDER {
        let focused = form.field == field;
        let value = match field {
            Field::User => form.user.clone(),
            Field::Runtime => format!(
                "◀ {} ▶",
                form.runtimes.get(form.runtime).map_or("-", String::as_str)
            ),
            Field::Memory if form.memory.is_empty() && !focused => "default (1g)".to_string(),
            Field::Memory => form.memory.clone(),
            Field::Cpus if form.cpus.is_empty() && !focused => "default (1)".to_string(),
            Field::Cpus => form.cpus.clone(),
            Field::Network => format!("◀ {} ▶", NETWORKS[form.network]),
        };
        let cursor = if focused && matches!(field, Field::User | Field::Memory | Field::Cpus) {
            "▏"
        } else {
            ""
        };
        let label_style = if focused {
            theme.accent()
        } else {
            theme.muted()
        };
        let value_style = if focused {
            theme.selected()
        } else {
            theme.text()
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{:>9}  ", field.label()), label_style),
            Span::styled(format!("{value}{cursor}"), value_style),
        ]));
        // Errors show as soon as the field has been typed in, or after a refused enter.
        let touched = match field {
            Field::User => !form.user.is_empty(),
            Field::Memory => !form.memory.is_empty(),
            Field::Cpus => !form.cpus.is_empty(),
            _ => false,
        };
        let error = form.error(field).filter(|_| touched || form.show_errors);
        lines.push(match error {
            Some(error) => {
                Line::styled(format!("           {error}"), theme.text().fg(theme.error))
            }
            None => Line::raw(""),
        });
    }
    let ready = form.validate().is_ok();
    lines.push(Line::styled(
        if ready {
            format!(
                "           ready: {} creates the session",
                app.keymap.label(Action::FormCreate)
            )
        } else {
            String::new()
        },
        theme.text().fg(theme.ok),
    ));
    frame.render_widget(Paragraph::new(lines), inner);
}
