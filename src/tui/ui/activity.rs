//! The Activity pane's table: time, (session,) source, the tool or command
//! with its arguments, exit code and duration, newest at the bottom.
//!
//! Every text from the log is escaped again here before it reaches the
//! terminal: the log is a file shared by every sandpit process, and what
//! another writer put there must not move the cursor or change colours.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Widget, Wrap};

use crate::activity::{self, ActivityRow};
use crate::tui::activity::{ActivityView, Scope};
use crate::tui::theme::Theme;
use crate::units::{human_duration_ms, utc_datetime};

/// Characters kept of a user id in the table (ids are at most 64).
const USER_MAX_CHARS: usize = 64;

/// The pane's title: whose activity it lists.
pub fn title(view: &ActivityView) -> String {
    match (view.scope, view.selected_user()) {
        (Scope::All, _) => " Activity — all sessions ".to_string(),
        (Scope::Selected, Some(user)) => format!(" Activity — {user} "),
        (Scope::Selected, None) => " Activity ".to_string(),
    }
}

/// The table, drawn into the pane's inner area. `scope_key` names the key
/// that switches between one session and all, for the hints shown when
/// there is nothing to list.
pub struct ActivityTable<'a> {
    view: &'a ActivityView,
    theme: &'a Theme,
    scope_key: String,
}

impl<'a> ActivityTable<'a> {
    /// The table of `view`'s rows in view, in `theme`'s colours.
    pub fn new(view: &'a ActivityView, theme: &'a Theme, scope_key: impl Into<String>) -> Self {
        Self {
            view,
            theme,
            scope_key: scope_key.into(),
        }
    }

    /// What to say instead of rows, if anything.
    fn empty_text(&self) -> Option<String> {
        let view = self.view;
        if !view.rows().is_empty() {
            return None;
        }
        let other = match view.scope {
            Scope::Selected => "all sessions",
            Scope::All => "the selected session",
        };
        Some(if view.loading() {
            "reading the activity log…".to_string()
        } else if view.scope == Scope::Selected && view.selected_user().is_none() {
            format!(
                "select a session to see what is done in it ({} shows {other})",
                self.scope_key
            )
        } else {
            format!(
                "nothing done yet: commands and tool calls from the CLI, MCP and the dashboard \
                 show here as they happen ({} shows {other})",
                self.scope_key
            )
        })
    }

    fn row(&self, row: &'a ActivityRow, with_user: bool) -> Row<'a> {
        let theme = self.theme;
        let a = &row.activity;
        let time = utc_datetime(a.time_ms);
        // `2026-11-29 14:47:03`: the time of day is what changes in a pane.
        let time = time.get(11..).unwrap_or(&time).to_string();
        let exit = match a.exit_code {
            Some(code) => Span::styled(
                code.to_string(),
                Style::new().fg(if code == 0 { theme.ok } else { theme.error }),
            ),
            None if a.error.is_some() => Span::styled("err", Style::new().fg(theme.error)),
            None => Span::styled("-", theme.muted()),
        };
        let mut command = vec![
            Span::styled(
                activity::clean(&a.action, activity::ACTION_MAX_CHARS),
                theme.accent(),
            ),
            Span::raw(" "),
            Span::styled(
                activity::clean(&a.summary, activity::SUMMARY_MAX_CHARS),
                theme.text(),
            ),
        ];
        let flags = a.flags.words();
        if !flags.is_empty() {
            command.push(Span::styled(
                format!(" [{}]", flags.join(",")),
                Style::new().fg(theme.warning),
            ));
        }
        if let Some(error) = &a.error {
            command.push(Span::styled(
                format!(
                    " [error: {}]",
                    activity::clean(error, activity::ERROR_MAX_CHARS)
                ),
                Style::new().fg(theme.error),
            ));
        }
        let mut cells = vec![Cell::from(time)];
        if with_user {
            cells.push(Cell::from(activity::clean(&a.user, USER_MAX_CHARS)));
        }
        cells.extend([
            Cell::from(a.source.as_str()),
            Cell::from(Line::from(command)),
            Cell::from(Line::from(exit).right_aligned()),
            Cell::from(Line::from(human_duration_ms(a.duration_ms)).right_aligned()),
        ]);
        Row::new(cells).style(theme.text())
    }
}

impl Widget for ActivityTable<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.is_empty() {
            return;
        }
        let theme = self.theme;
        let error_lines = u16::from(self.view.error.is_some());
        let table_area = Rect {
            height: area.height.saturating_sub(error_lines),
            ..area
        };
        if let Some(error) = &self.view.error {
            let line = Rect {
                y: area.bottom().saturating_sub(1),
                height: 1,
                ..area
            };
            Paragraph::new(format!(
                "activity log: {}",
                activity::clean(error, activity::ERROR_MAX_CHARS)
            ))
            .style(Style::new().fg(theme.error))
            .render(line, buf);
        }
        if let Some(text) = self.empty_text() {
            Paragraph::new(text)
                .style(theme.muted())
                .wrap(Wrap { trim: true })
                .render(table_area, buf);
            return;
        }
        let with_user = self.view.scope == Scope::All;
        let mut header = vec!["TIME UTC"];
        if with_user {
            header.push("SESSION");
        }
        header.extend(["SOURCE", "TOOL OR COMMAND", "EXIT", "TOOK"]);
        // Newest at the bottom, `scroll` rows back from it.
        let rows = self.view.rows();
        let visible = usize::from(table_area.height.saturating_sub(1));
        let end = rows.len().saturating_sub(self.view.scroll);
        let start = end.saturating_sub(visible);
        let mut widths = vec![Constraint::Length(8)];
        if with_user {
            // As wide as the longest id shown, within reason.
            let longest = rows
                .range(start..end)
                .map(|row| row.activity.user.chars().count())
                .max()
                .unwrap_or(0);
            widths.push(Constraint::Length(longest.clamp(7, 16) as u16));
        }
        widths.extend([
            Constraint::Length(9),
            Constraint::Fill(1),
            Constraint::Length(4),
            Constraint::Length(6),
        ]);
        let shown = rows
            .range(start..end)
            .map(|row| self.row(row, with_user))
            .collect::<Vec<_>>();
        Table::new(shown, widths)
            .header(Row::new(header).style(theme.muted()))
            .column_spacing(1)
            .render(table_area, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::{Activity, ActivityFlags, Source};
    use crate::engine::sandbox::UserId;
    use crate::tui::activity::ActivityUpdate;
    use crate::tui::theme::ThemeSet;

    fn text(buf: &Buffer) -> String {
        let area = buf.area;
        (area.top()..area.bottom())
            .map(|y| {
                (area.left()..area.right())
                    .map(|x| buf[(x, y)].symbol())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn untrusted_text_reaches_the_screen_escaped() {
        let user = UserId::parse("mallory").unwrap();
        let mut activity = Activity::new(Source::Mcp, &user, "execute", "ok");
        // As if another writer had put raw control characters in the file.
        activity.summary = "printf '\u{1b}[2J\u{1b}]0;pwned\u{7}'".to_string();
        activity.action = "exe\u{202e}cute".to_string();
        activity.error = Some("bad\rthing".to_string());
        activity.flags = ActivityFlags {
            timed_out: true,
            ..Default::default()
        };
        let mut view = ActivityView::new();
        view.toggle_scope();
        view.apply(ActivityUpdate::Rows(vec![ActivityRow { id: 1, activity }]));
        let theme = ThemeSet::builtin().themes.remove(0);
        let area = Rect::new(0, 0, 200, 3);
        let mut buf = Buffer::empty(area);
        ActivityTable::new(&view, &theme, "a").render(area, &mut buf);
        let screen = text(&buf);
        assert!(
            !screen
                .lines()
                .any(|line| line.chars().any(char::is_control)),
            "{screen:?}"
        );
        assert!(
            screen.contains(r"printf '\u{1b}[2J\u{1b}]0;pwned\u{7}'"),
            "{screen}"
        );
        assert!(screen.contains(r"exe\u{202e}cute"), "{screen}");
        assert!(screen.contains(r"[error: bad\rthing]"), "{screen}");
        assert!(screen.contains("[timeout]"), "{screen}");
        assert!(screen.contains("mallory"), "{screen}");
    }
}
