mod build_log;
mod confirm;
mod help;
mod isolation;
mod new_session;
mod prompt;

use ratatui::Frame;
use ratatui::widgets::{Block, BorderType, Borders, Clear};

use super::layout::centered;
use crate::tui::app::App;
use crate::tui::popups::Popup;
use crate::tui::theme::Theme;

pub fn draw(frame: &mut Frame, app: &App) {
    let Some(popup) = &app.popup else { return };
    match popup {
        Popup::Help => help::draw(frame, app),
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
