pub mod editor;
pub mod files;
pub mod output;
pub mod runtimes;
pub mod sessions;
pub mod stats;
pub mod status_bar;
pub mod title;

use ratatui::widgets::{Block, BorderType, Borders};

use crate::tui::theme::Theme;

/// A pane's frame, highlighted when it has focus.
pub fn pane_block<'a>(
    title: impl Into<ratatui::text::Line<'a>>,
    focused: bool,
    theme: &Theme,
) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_type(if focused {
            BorderType::Thick
        } else {
            BorderType::Rounded
        })
        .border_style(theme.border(focused))
        .title(title)
        .title_style(if focused {
            theme.accent()
        } else {
            theme.text()
        })
}

pub use crate::units::human_bytes;
