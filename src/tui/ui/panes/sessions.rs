//! The sessions list: the selected session is what the other panes show.
//! Its columns are one table ([`Column`]): title, width, value and sort key;
//! its own keys sort and open a shell in the selected session; the rest
//! are the global ones (start, stop, delete, …).

use std::cmp::Ordering;

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::{Constraint, Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row, Table, TableState};

use super::{Component, Pane, pane_block, table_row};
use crate::sessions::Session;
use crate::tui::app::{App, Deliberate};
use crate::tui::keymap::{Action, Scope, listed_enum};
use crate::tui::theme::Theme;
use crate::tui::ui::layout::Areas;
use crate::units::human_bytes;

listed_enum! {
    /// A column of the sessions table, in display order.
    #[derive(Default)]
    pub enum Column {
        #[default]
        User,
        Runtime,
        State,
        Cpu,
        Memory,
        Uptime,
    }
}

impl Column {
    pub fn title(self) -> &'static str {
        match self {
            Column::User => "USER",
            Column::Runtime => "RUNTIME",
            Column::State => "STATE",
            Column::Cpu => "CPU %",
            Column::Memory => "MEMORY",
            Column::Uptime => "UPTIME",
        }
    }

    /// Room for the title and its sort marker.
    pub fn width(self) -> Constraint {
        match self {
            Column::User => Constraint::Fill(3),
            Column::Runtime => Constraint::Length(18),
            Column::State => Constraint::Length(7),
            Column::Cpu => Constraint::Length(6),
            Column::Memory => Constraint::Length(10),
            Column::Uptime => Constraint::Fill(2),
        }
    }

    /// Whether the order by this column changes as samples arrive.
    pub fn sorts_by_stats(self) -> bool {
        matches!(self, Column::Cpu | Column::Memory)
    }

    /// The cell shown for `session`; `now` in Unix seconds.
    fn cell(self, session: &Session, app: &App, now: i64, theme: &Theme) -> Cell<'static> {
        let sandbox = &session.sandbox;
        let stats = || {
            app.latest_stats(&sandbox.user)
                .filter(|_| sandbox.is_running())
        };
        match self {
            Column::User => Cell::from(sandbox.user.clone()),
            Column::Runtime => Cell::from(sandbox.runtime.clone()),
            Column::State => {
                let style = match sandbox.state.as_str() {
                    "running" => theme.text().fg(theme.ok),
                    "exited" | "dead" => theme.text().fg(theme.error),
                    _ => theme.text().fg(theme.warning),
                };
                Cell::from(Span::styled(sandbox.state.clone(), style))
            }
            Column::Cpu => {
                Cell::from(stats().map_or("-".to_string(), |s| format!("{:.1}", s.cpu_percent)))
            }
            Column::Memory => {
                Cell::from(stats().map_or("-".to_string(), |s| human_bytes(s.memory_used)))
            }
            Column::Uptime => Cell::from(match app.uptime(session, now) {
                Some(seconds) => uptime_text(seconds),
                // Until the collector has read the start time: the engine's words.
                None if sandbox.is_running() => sandbox
                    .status
                    .strip_prefix("Up ")
                    .unwrap_or(&sandbox.status)
                    .to_string(),
                None => "-".to_string(),
            }),
        }
    }

    /// The number a numeric column sorts by; None when the session has
    /// none (stopped, no sample yet). Text columns have no number.
    fn number(self, session: &Session, app: &App, now: i64) -> Option<f64> {
        let stats = || {
            app.latest_stats(&session.sandbox.user)
                .filter(|_| session.sandbox.is_running())
        };
        match self {
            Column::User | Column::Runtime | Column::State => None,
            Column::Cpu => stats().map(|x| x.cpu_percent),
            Column::Memory => stats().map(|x| x.memory_used as f64),
            Column::Uptime => app.uptime(session, now).map(|x| x as f64),
        }
    }

    /// Orders two sessions by this column, ascending. `None` when one of
    /// them has no value: it goes last whichever the direction.
    fn compare(self, a: &Session, b: &Session, app: &App, now: i64) -> Result<Ordering, Ordering> {
        let text = |f: fn(&Session) -> &str| Ok(f(a).cmp(f(b)));
        match self {
            Column::User => text(|s| &s.sandbox.user),
            Column::Runtime => text(|s| &s.sandbox.runtime),
            Column::State => text(|s| &s.sandbox.state),
            Column::Cpu | Column::Memory | Column::Uptime => {
                match (self.number(a, app, now), self.number(b, app, now)) {
                    (Some(x), Some(y)) => Ok(x.total_cmp(&y)),
                    (Some(_), None) => Err(Ordering::Less),
                    (None, Some(_)) => Err(Ordering::Greater),
                    (None, None) => Err(Ordering::Equal),
                }
            }
        }
    }
}

/// `45s`, `12m 05s`, `3h 07m`, `2d 04h`: an uptime in its two largest units.
pub fn uptime_text(seconds: i64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds % 86_400 / 3_600,
        seconds % 3_600 / 60,
        seconds % 60,
    );
    if d > 0 {
        format!("{d}d {h:02}h")
    } else if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// How the sessions list is sorted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionSort {
    pub column: Column,
    pub descending: bool,
}

impl SessionSort {
    /// Orders two sessions; ties go by user id, so the order is stable.
    pub fn compare(&self, a: &Session, b: &Session, app: &App, now: i64) -> Ordering {
        let order = match self.column.compare(a, b, app, now) {
            Ok(order) if self.descending => order.reverse(),
            Ok(order) => order,
            // Sessions without a value stay at the end.
            Err(order) => order,
        };
        order.then_with(|| a.sandbox.user.cmp(&b.sandbox.user))
    }

    /// The next column, ascending.
    pub fn next_column(self) -> Self {
        let index = Column::ALL
            .iter()
            .position(|c| *c == self.column)
            .unwrap_or(0);
        Self {
            column: Column::ALL[(index + 1) % Column::ALL.len()],
            descending: false,
        }
    }

    /// The header's title for `column`, marked when the list sorts by it.
    fn title(&self, column: Column) -> String {
        match (column == self.column, self.descending) {
            (false, _) => column.title().to_string(),
            (true, false) => format!("{}▲", column.title()),
            (true, true) => format!("{}▼", column.title()),
        }
    }
}

pub struct SessionsPane;

impl Component for SessionsPane {
    fn scope(&self) -> Scope {
        Scope::Sessions
    }

    fn area(&self, areas: &Areas) -> Option<Rect> {
        areas.sessions
    }

    fn hints(&self) -> &'static [Action] {
        &[
            Action::NewSession,
            Action::StartStop,
            // Restart is in help: the bar has room for eleven hints at 120
            // columns, and starting, stopping and the shell come first.
            Action::Delete,
            Action::Isolation,
            Action::Shell,
            Action::Filter,
            Action::SessionsSort,
            Action::NextPane,
            Action::Help,
            Action::Quit,
        ]
    }

    fn draw(&self, frame: &mut Frame, area: Rect, app: &App) {
        draw(frame, area, app);
    }

    fn handle_key(&self, app: &mut App, _key: &KeyEvent, action: Option<Action>) -> bool {
        match action {
            Some(Action::SessionsSort) => app.sort_sessions(app.sort.next_column()),
            Some(Action::Shell) => open_shell(app),
            Some(Action::SessionsReverse) => {
                let mut sort = app.sort;
                sort.descending = !sort.descending;
                app.sort_sessions(sort);
            }
            _ => return false,
        }
        true
    }

    /// A click on a row selects it; on a column's title sorts by that
    /// column, or reverses the order when it already sorts by it.
    fn click(&self, app: &mut App, area: Rect, position: Position) {
        if position.y == area.y + 1 {
            if let Some(column) = column_at(area, position) {
                let descending = app.sort.column == column && !app.sort.descending;
                app.sort_sessions(SessionSort { column, descending });
            }
            return;
        }
        if let Some(row) = table_row(area, position) {
            let row = row + app.sessions_offset.get();
            if row < app.visible_rows().len() {
                app.selected_session = row;
            }
        }
    }
}

/// The column under `position`, laid out as the table lays out its columns
/// (inside the border, one space apart).
fn column_at(area: Rect, position: Position) -> Option<Column> {
    let inner = area.inner(ratatui::layout::Margin::new(1, 1));
    let cells = ratatui::layout::Layout::horizontal(Column::ALL.map(Column::width))
        .spacing(1)
        .split(inner);
    Column::ALL
        .into_iter()
        .zip(cells.iter())
        .find(|(_, cell)| position.x >= cell.x && position.x < cell.x + cell.width)
        .map(|(column, _)| column)
}

/// The first row to show so that `selected` is in a window of `height`
/// rows, moving as little as possible from `offset` (as ratatui's table
/// does), and not leaving rows empty at the bottom.
fn window_start(offset: usize, selected: usize, height: usize, len: usize) -> usize {
    if height == 0 {
        return selected;
    }
    let mut start = offset.min(selected);
    if selected >= start + height {
        start = selected + 1 - height;
    }
    start.min(len.saturating_sub(height))
}

fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = app.theme();
    let focused = app.focus == Pane::Sessions;
    let rows = app.visible_rows();
    let len = rows.len();
    let mut title = vec![Span::raw(format!(" Sessions ({len}) "))];
    if app.filtering || !app.filter.is_empty() {
        let cursor = if app.filtering { "▏" } else { "" };
        title.push(Span::styled(
            format!("filter: {}{cursor} ", app.filter),
            theme.accent(),
        ));
    }
    let header = Row::new(Column::ALL.map(|column| app.sort.title(column))).style(theme.muted());
    // Only the rows that fit are built: a frame costs the same with ten
    // sessions or a thousand. Below the border and the header.
    let height = usize::from(area.height.saturating_sub(3));
    let selected = app.selected_session.min(len.saturating_sub(1));
    let start = window_start(app.sessions_offset.get(), selected, height, len);
    let end = (start + height).min(len);
    let now = app.now();
    let shown = rows[start.min(end)..end].iter().filter_map(|index| {
        let session = app.sessions.get(*index)?;
        let cells = Column::ALL.map(|column| column.cell(session, app, now, theme));
        Some(Row::new(cells).style(theme.text()))
    });
    let table = Table::new(shown, Column::ALL.map(Column::width))
        .header(header)
        .row_highlight_style(theme.selected())
        .block(pane_block(Line::from(title), focused, theme));
    let mut state =
        TableState::default().with_selected((len > 0).then_some(selected - start.min(selected)));
    frame.render_stateful_widget(table, area, &mut state);
    app.sessions_offset.set(start);
    if len == 0 && area.height > 3 {
        let hint = if app.sessions.is_empty() {
            format!(
                "no sessions yet — press {} to create one",
                app.keymap.first(Action::NewSession)
            )
        } else {
            "no session matches the filter".to_string()
        };
        let inner = Rect::new(area.x + 2, area.y + 2, area.width.saturating_sub(4), 1);
        frame.render_widget(
            ratatui::widgets::Paragraph::new(hint).style(theme.muted()),
            inner,
        );
    }
}

/// A key while the filter is being typed: characters type, the keymap's
/// filter actions keep or clear it.
pub fn filter_key(app: &mut App, key: &crossterm::event::KeyEvent) {
    use crossterm::event::KeyCode;
    match app.keymap.action_in(Scope::Filter, key) {
        Some(Action::FilterClear) => {
            app.filtering = false;
            app.filter.clear();
        }
        Some(Action::FilterKeep) => app.filtering = false,
        _ => match key.code {
            KeyCode::Backspace => {
                app.filter.pop();
            }
            KeyCode::Char(c) => app.filter.push(c),
            _ => {}
        },
    }
    app.selected_session = 0;
}

/// Asks the event loop for a shell in the selected session, when it runs;
/// never from a key in a burst (a paste would be typed into the shell).
fn open_shell(app: &mut App) {
    let Some(session) = app.selected() else {
        app.warn("select a session to open a shell in");
        return;
    };
    let running = session.sandbox.is_running();
    let user = session.sandbox.user.clone();
    if !running {
        let start = app.keymap.first(Action::StartStop);
        app.warn(format!(
            "`{user}` is not running; press {start} to start it first"
        ));
        return;
    }
    if app.engine_ready() {
        app.deliberate(Deliberate::Shell(user));
    }
}
