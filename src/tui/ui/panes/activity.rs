//! What is done in the sandboxes, live from the activity log: the selected
//! session's actions, or every session's. The model is
//! `tui::activity::ActivityView`; the table is `ui::activity`.

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;

use super::{Component, Pane, pane_block};
use crate::tui::app::App;
use crate::tui::keymap::{Action, Scope};
use crate::tui::ui::activity::{ActivityTable, title};
use crate::tui::ui::layout::Areas;

/// Rows a wheel turn scrolls.
const WHEEL_ROWS: usize = 3;
/// Rows a page key scrolls before a frame has given the pane a size.
const DEFAULT_PAGE_ROWS: usize = 10;

/// The Activity pane (see the module comment).
pub struct ActivityPane;

impl Component for ActivityPane {
    fn scope(&self) -> Scope {
        Scope::Activity
    }

    fn area(&self, areas: &Areas) -> Option<Rect> {
        areas.activity
    }

    fn hints(&self) -> &'static [Action] {
        &[
            Action::ActivityScope,
            Action::ActivityUp,
            Action::ActivityDown,
            Action::ActivityFollow,
            Action::NextPane,
            Action::Help,
        ]
    }

    fn draw(&self, frame: &mut Frame, area: Rect, app: &App) {
        let theme = app.theme();
        let block = pane_block(title(&app.activity), app.focus == Pane::Activity, theme);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        frame.render_widget(
            ActivityTable::new(
                &app.activity,
                theme,
                app.keymap.first(Action::ActivityScope),
            ),
            inner,
        );
    }

    fn handle_key(&self, app: &mut App, _key: &KeyEvent, action: Option<Action>) -> bool {
        // A page is what the pane shows: its height less border and header.
        let page = Areas::compute(app.area)
            .activity
            .map_or(DEFAULT_PAGE_ROWS, |area| {
                usize::from(area.height.saturating_sub(3)).max(1)
            });
        let view = &mut app.activity;
        match action {
            Some(Action::ActivityScope) => view.toggle_scope(),
            Some(Action::ActivityUp) => view.scroll_up(1),
            Some(Action::ActivityDown) => view.scroll_down(1),
            Some(Action::ActivityPageUp) => view.scroll_up(page),
            Some(Action::ActivityPageDown) => view.scroll_down(page),
            Some(Action::ActivityFollow) => view.follow(),
            _ => return false,
        }
        true
    }

    fn scroll(&self, app: &mut App, down: bool) {
        if down {
            app.activity.scroll_down(WHEEL_ROWS);
        } else {
            app.activity.scroll_up(WHEEL_ROWS);
        }
    }
}
