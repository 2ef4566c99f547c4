//! The panes: one file and one type each, listed once in the `panes!` table
//! below.
//! That table drives focus order, layout, drawing, mouse hit-testing, key
//! hints and help, so they cannot drift apart.
//!
//! Adding a pane (e.g. an Activity pane):
//! 1. a file here with a unit struct implementing [`Component`];
//! 2. one row in the `panes!` table (its place is its Tab order);
//! 3. its keys: a [`Scope`] and its actions in `keymap.rs`'s table;
//! 4. where it goes: a field in [`Areas`] (`layout.rs`), returned by
//!    [`Component::area`].
//!
//! The `panes_are_complete` tests in tests/dashboard_app.rs then check that
//! the new pane can be clicked, shows hints and is in help.

pub mod activity;
pub mod editor;
pub mod files;
pub mod output;
pub mod runtimes;
pub mod sessions;
pub mod stats;

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::widgets::{Block, BorderType, Borders};

use super::layout::Areas;
use crate::tui::app::App;
use crate::tui::keymap::{Action, Scope, listed_enum};
use crate::tui::theme::Theme;

/// One pane: what it draws, which keys it takes, what it hints.
///
/// Panes are stateless unit types; what they show lives in [`App`] (the
/// selected session is shared by several panes), so a pane reads and
/// changes the app it is handed.
pub trait Component: Sync {
    /// The keymap section of its own keys.
    fn scope(&self) -> Scope;

    /// Where it is drawn in this layout, if it is shown at all.
    fn area(&self, areas: &Areas) -> Option<Rect>;

    /// The actions worth a hint in the status bar while it has focus, in
    /// order; labels come from the keymap.
    fn hints(&self) -> &'static [Action];

    /// The hints for the pane's state now (e.g. while it takes text); by
    /// default [`Component::hints`].
    fn current_hints(&self, _app: &App) -> Vec<Action> {
        self.hints().to_vec()
    }

    fn draw(&self, frame: &mut Frame, area: Rect, app: &App);

    /// A key while the pane has focus; `action` is the key's action in the
    /// pane's [`Scope`], if any. Returns whether the key was consumed; if not,
    /// it goes on to the global actions.
    fn handle_key(&self, _app: &mut App, _key: &KeyEvent, _action: Option<Action>) -> bool {
        false
    }

    /// The pane just got the focus.
    fn on_focus(&self, _app: &mut App) {}

    /// A left click at `position` inside `area` (focus is already given).
    fn click(&self, _app: &mut App, _area: Rect, _position: Position) {}

    /// A mouse wheel turn over the pane: by default, the session selection.
    fn scroll(&self, app: &mut App, down: bool) {
        app.move_session_selection(if down { 1 } else { -1 });
    }

    /// Pasted text (line ends normalised to `\n`); false when the pane does
    /// not take text.
    fn paste(&self, _app: &mut App, _text: &str) -> bool {
        false
    }
}

/// The pane table: declares [`Pane`], its `ALL` (in Tab order) and each
/// pane's [`Component`].
macro_rules! panes {
    ($($variant:ident => $component:path),* $(,)?) => {
        listed_enum! {
            /// A pane of the dashboard, in Tab order.
            pub enum Pane { $($variant),* }
        }
        impl Pane {
            /// The type that draws the pane and handles its keys.
            pub fn component(self) -> &'static dyn Component {
                match self {
                    $(Pane::$variant => &$component),*
                }
            }
        }
    };
}

panes! {
    Sessions => sessions::SessionsPane,
    Runtimes => runtimes::RuntimesPane,
    Stats => stats::StatsPane,
    Files => files::FilesPane,
    Editor => editor::EditorPane,
    Output => output::OutputPane,
    Activity => activity::ActivityPane,
}

impl Pane {
    /// The pane after (or before) this one in Tab order, wrapping around.
    pub fn cycle(self, forward: bool) -> Pane {
        let len = Pane::ALL.len();
        let index = Pane::ALL.iter().position(|p| *p == self).unwrap_or(0);
        let next = if forward {
            (index + 1) % len
        } else {
            (index + len - 1) % len
        };
        Pane::ALL[next]
    }

    /// The pane drawn at `position`, with its area.
    pub fn at(areas: &Areas, position: Position) -> Option<(Pane, Rect)> {
        Pane::ALL.into_iter().find_map(|pane| {
            pane.component()
                .area(areas)
                .filter(|area| area.contains(position))
                .map(|area| (pane, area))
        })
    }
}

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

/// The row of a table (border, then a header line) under a click, counted
/// from the first row shown; None on the border or header.
pub fn table_row(area: Rect, position: Position) -> Option<usize> {
    let first = area.y + 2;
    (position.y >= first).then(|| usize::from(position.y - first))
}

/// `index` moved by `delta` within `0..len`, clamped at both ends.
pub fn moved(index: usize, len: usize, delta: isize) -> usize {
    if len == 0 {
        return 0;
    }
    (index as isize + delta).clamp(0, len as isize - 1) as usize
}
