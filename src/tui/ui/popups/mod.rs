//! The popups: one file each, drawing the popup and handling its keys
//! (named in the keymap under the popup's [`Scope`]). A popup's state is a
//! variant of [`Popup`]; a key handler returns the popup to keep open.

mod build_log;
mod confirm;
pub mod help;
mod isolation;
mod new_session;
mod prompt;

use crossterm::event::{KeyEvent, KeyModifiers};
use ratatui::Frame;
use ratatui::widgets::{Block, BorderType, Borders, Clear};

use super::layout::centered;
use crate::tui::app::App;
use crate::tui::keymap::{Action, Scope};
use crate::tui::popups::Popup;
use crate::tui::theme::Theme;

pub use confirm::proceed;

pub fn draw(frame: &mut Frame, app: &App) {
    let Some(popup) = &app.popup else { return };
    match popup {
        Popup::Help { scroll } => help::draw(frame, app, *scroll),
        Popup::NewSession(form) => new_session::draw(frame, app, form),
        Popup::Confirm(confirm) => confirm::draw(frame, app, confirm),
        Popup::BuildLog { scroll_back } => build_log::draw(frame, app, *scroll_back),
        Popup::PickIsolationTarget {
            from,
            choices,
            selected,
        } => isolation::draw_picker(frame, app, from, choices, *selected),
        Popup::Isolation => isolation::draw_result(frame, app),
        Popup::Prompt { purpose, text } => prompt::draw(frame, app, &purpose.title(), text),
    }
}

/// The keymap section of a popup's keys.
pub fn scope(popup: &Popup) -> Scope {
    match popup {
        Popup::Help { .. } => Scope::Help,
        Popup::NewSession(_) => Scope::NewSession,
        Popup::Confirm(_) => Scope::Confirm,
        Popup::BuildLog { .. } => Scope::BuildLog,
        Popup::PickIsolationTarget { .. } => Scope::PickTarget,
        Popup::Isolation => Scope::Isolation,
        Popup::Prompt { .. } => Scope::Prompt,
    }
}

/// A key while `popup` is open; returns the popup to keep open.
pub fn handle_key(app: &mut App, popup: Popup, key: &KeyEvent) -> Option<Popup> {
    let action = app.keymap.action_in(scope(&popup), key);
    match popup {
        Popup::Help { scroll } => help::handle_key(app, scroll, action),
        Popup::Confirm(confirm) => confirm::handle_key(app, confirm, key, action),
        Popup::BuildLog { scroll_back } => build_log::handle_key(scroll_back, action),
        Popup::PickIsolationTarget {
            from,
            choices,
            selected,
        } => isolation::handle_picker_key(app, from, choices, selected, action),
        Popup::Isolation => isolation::handle_result_key(action),
        Popup::Prompt { purpose, text } => prompt::handle_key(app, purpose, text, key, action),
        Popup::NewSession(form) => new_session::handle_key(app, form, key, action),
    }
}

/// Pasted text while `popup` is open: typed into a text field, refused as
/// an answer. Returns the popup to keep open.
pub fn paste(app: &mut App, popup: Popup, text: &str) -> Option<Popup> {
    match popup {
        Popup::Prompt {
            purpose,
            text: mut so_far,
        } => {
            if let Some(line) = app.one_line(text) {
                so_far.push_str(line);
            }
            Some(Popup::Prompt {
                purpose,
                text: so_far,
            })
        }
        Popup::NewSession(mut form) => {
            if let Some(line) = app.one_line(text)
                && !form.paste(line)
            {
                app.warn("pasted text ignored: this field is chosen with ←/→");
            }
            Some(Popup::NewSession(form))
        }
        Popup::Confirm(confirm) => {
            app.warn(format!(
                "{} cancelled: pasted text is not an answer",
                confirm.title()
            ));
            None
        }
        other => {
            app.warn("pasted text ignored");
            Some(other)
        }
    }
}

/// A printable character typed into a text field: no ctrl or alt.
fn typed_char(key: &KeyEvent) -> Option<char> {
    match key.code {
        crossterm::event::KeyCode::Char(c)
            if !key
                .modifiers
                .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) =>
        {
            Some(c)
        }
        _ => None,
    }
}

/// `↑/↓ scroll, esc close`-style hints for a popup: each group of actions
/// by the first key of each, with the first action's hint.
fn title_hints(app: &App, groups: &[&[Action]]) -> String {
    groups
        .iter()
        .filter_map(|group| {
            let first = group.first()?;
            let keys: Vec<String> = group.iter().map(|a| app.keymap.first(*a)).collect();
            Some(format!("{} {}", keys.join("/"), first.hint()))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Clears a centred area and frames it; returns the inner area.
fn frame_popup(
    frame: &mut Frame,
    theme: &Theme,
    title: &str,
    width: u16,
    height: u16,
) -> ratatui::layout::Rect {
    let area = centered(frame.area(), width, height);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Double)
        .border_style(theme.border(true))
        .title(format!(" {title} "))
        .title_style(theme.accent());
    let inner = block.inner(area);
    frame.render_widget(Clear, area);
    frame.render_widget(block, area);
    inner
}
