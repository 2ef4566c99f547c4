//! Where each pane goes. Computed from the terminal size alone, so drawing
//! and mouse hit-testing always agree.

use ratatui::layout::{Constraint, Layout, Rect};

/// The smallest terminal that gets every pane.
pub const FULL_WIDTH: u16 = 100;
pub const FULL_HEIGHT: u16 = 30;
/// Below this, only a notice is shown.
pub const MIN_WIDTH: u16 = 30;
pub const MIN_HEIGHT: u16 = 6;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Areas {
    pub title: Option<Rect>,
    pub sessions: Option<Rect>,
    pub runtimes: Option<Rect>,
    pub stats: Option<Rect>,
    pub files: Option<Rect>,
    pub editor: Option<Rect>,
    pub output: Option<Rect>,
    pub activity: Option<Rect>,
    pub status: Option<Rect>,
    /// Set when the terminal is too small for anything but a notice.
    pub too_small: Option<Rect>,
}

impl Areas {
    pub fn compute(area: Rect) -> Self {
        if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
            return Self {
                too_small: Some(area),
                ..Self::default()
            };
        }
        let [title, body, status] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(1),
            Constraint::Length(1),
        ])
        .areas(area);
        if area.width < FULL_WIDTH || area.height < FULL_HEIGHT {
            // A simpler layout: the sessions list alone.
            return Self {
                title: Some(title),
                sessions: Some(body),
                status: Some(status),
                ..Self::default()
            };
        }
        // Three rows: the sessions with their live stats on top; below,
        // the runtimes and workspace beside the editor and its output; at
        // the bottom, across the width, what is being done in the sandboxes
        // (a fifth of the height, 5 to 10 rows: 3 to 8 actions).
        let activity_rows = (body.height / 5).clamp(5, 10);
        let [top, bottom, activity] = Layout::vertical([
            Constraint::Percentage(35),
            Constraint::Fill(1),
            Constraint::Length(activity_rows),
        ])
        .areas(body);
        let [sessions, stats] =
            Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(top);
        let [side, editor, output] = Layout::horizontal([
            Constraint::Percentage(25),
            Constraint::Percentage(40),
            Constraint::Percentage(35),
        ])
        .areas(bottom);
        let [runtimes, files] =
            Layout::vertical([Constraint::Length(8), Constraint::Min(3)]).areas(side);
        Self {
            title: Some(title),
            sessions: Some(sessions),
            runtimes: Some(runtimes),
            stats: Some(stats),
            files: Some(files),
            editor: Some(editor),
            output: Some(output),
            activity: Some(activity),
            status: Some(status),
            too_small: None,
        }
    }
}

/// A rectangle of at most `width` x `height` centred in `area`.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_layout_from_100x30() {
        let areas = Areas::compute(Rect::new(0, 0, 100, 30));
        assert!(areas.sessions.is_some() && areas.runtimes.is_some());
        assert!(areas.stats.is_some() && areas.files.is_some());
        let activity = areas.activity.unwrap();
        // Across the width, above the status bar, with room for 3 actions.
        assert_eq!((activity.x, activity.width), (0, 100));
        assert_eq!(activity.bottom(), areas.status.unwrap().y);
        assert!(activity.height >= 5, "{activity:?}");
        // The runtimes and files column keeps its rows.
        assert!(areas.files.unwrap().height >= 3);
    }

    #[test]
    fn smaller_terminals_degrade_without_panicking() {
        for (w, h) in [
            (99, 30),
            (100, 29),
            (40, 10),
            (30, 6),
            (29, 6),
            (5, 2),
            (0, 0),
            (1, 200),
            (300, 1),
        ] {
            let areas = Areas::compute(Rect::new(0, 0, w, h));
            if w >= MIN_WIDTH && h >= MIN_HEIGHT {
                assert!(areas.sessions.is_some(), "{w}x{h}");
                assert!(areas.runtimes.is_none(), "{w}x{h}");
            } else {
                assert!(areas.too_small.is_some(), "{w}x{h}");
            }
        }
    }

    #[test]
    fn centered_fits_inside() {
        let area = Rect::new(0, 0, 10, 5);
        assert_eq!(centered(area, 20, 20), area);
        assert_eq!(centered(area, 4, 3), Rect::new(3, 1, 4, 3));
    }
}
