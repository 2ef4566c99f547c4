use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};

use super::{frame_popup, title_hints};
use crate::tui::app::{App, IsolationView};
use crate::tui::collector::Request;
use crate::tui::keymap::Action;
use crate::tui::popups::Popup;

/// Keys of the picker of the session to probe.
pub fn handle_picker_key(
    app: &mut App,
    from: String,
    choices: Vec<String>,
    selected: usize,
    action: Option<Action>,
) -> Option<Popup> {
    let selected = match action {
        Some(Action::PickCancel) => return None,
        Some(Action::PickUp) => selected.saturating_sub(1),
        Some(Action::PickDown) => (selected + 1).min(choices.len().saturating_sub(1)),
        Some(Action::PickChoose) => {
            let target = choices.get(selected).cloned()?;
            if !app.engine_ready() {
                return None;
            }
            app.isolation = Some(IsolationView {
                from: from.clone(),
                target: target.clone(),
                result: None,
            });
            app.outbox.push(Request::CheckIsolation { from, target });
            return Some(Popup::Isolation);
        }
        _ => selected,
    };
    Some(Popup::PickIsolationTarget {
        from,
        choices,
        selected,
    })
}

pub fn handle_result_key(action: Option<Action>) -> Option<Popup> {
    match action {
        Some(Action::IsolationClose) => None,
        _ => Some(Popup::Isolation),
    }
}

pub fn draw_picker(frame: &mut Frame, app: &App, from: &str, choices: &[String], selected: usize) {
    let theme = app.theme();
    let height = (choices.len() as u16).min(12) + 4;
    let inner = frame_popup(
        frame,
        theme,
        &format!("Isolation check from {from}"),
        56,
        height,
    );
    let mut lines = vec![Line::styled(
        format!(
            "probe against which session? ({})",
            title_hints(app, &[&[Action::PickChoose], &[Action::PickCancel]])
        ),
        theme.muted(),
    )];
    let first = selected.saturating_sub(usize::from(inner.height.saturating_sub(2)));
    for (index, user) in choices.iter().enumerate().skip(first) {
        let style = if index == selected {
            theme.selected()
        } else {
            theme.text()
        };
        lines.push(Line::styled(format!("  {user}"), style));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// The result popup: one row per probe with its verdict and evidence, sized
/// to the number of probes (and clamped to the screen). Probes that were not
/// blocked come first, so a short screen never hides a leak.
pub fn draw_result(frame: &mut Frame, app: &App) {
    let theme = app.theme();
    let Some(view) = &app.isolation else { return };
    let title = format!(
        "Isolation of {} as seen from {} — {}",
        view.target,
        view.from,
        title_hints(app, &[&[Action::IsolationClose]])
    );
    // Borders, header and footer around one line per probe.
    let height = match &view.result {
        Some(Ok(results)) => (results.len() as u16).saturating_add(4).max(12),
        _ => 12,
    };
    let width = frame.area().width.saturating_sub(4).clamp(90, 160);
    let inner = frame_popup(frame, theme, &title, width, height);
    match &view.result {
        None => frame.render_widget(
            Paragraph::new("running probes…").style(theme.muted()),
            inner,
        ),
        Some(Err(error)) => frame.render_widget(
            Paragraph::new(error.clone())
                .style(theme.text().fg(theme.error))
                .wrap(ratatui::widgets::Wrap { trim: true }),
            inner,
        ),
        Some(Ok(results)) => {
            let mut ordered: Vec<_> = results.iter().collect();
            ordered.sort_by_key(|result| result.blocked);
            // Below the header, above the summary.
            let room = usize::from(inner.height.saturating_sub(2));
            let hidden = ordered.len().saturating_sub(room);
            let rows = ordered.into_iter().take(room).map(|result| {
                let verdict_style = if result.blocked {
                    theme.text().fg(theme.ok)
                } else {
                    theme.banner()
                };
                Row::new([
                    Cell::from(result.probe.clone()),
                    Cell::from(Span::styled(result.verdict(), verdict_style)),
                    Cell::from(result.evidence.clone()),
                ])
                .style(theme.text())
            });
            let leaked = results.iter().filter(|r| !r.blocked).count();
            let more = if hidden > 0 {
                format!(" ({hidden} blocked probes below the screen's edge)")
            } else {
                String::new()
            };
            let summary = if leaked == 0 {
                Span::styled(
                    format!("all {} probes blocked{more}", results.len()),
                    theme.text().fg(theme.ok),
                )
            } else {
                Span::styled(
                    format!(
                        "{leaked} of {} probes LEAKED or untested{more}",
                        results.len()
                    ),
                    theme.banner(),
                )
            };
            let table = Table::new(
                rows,
                [
                    Constraint::Length(32),
                    Constraint::Length(8),
                    Constraint::Fill(1),
                ],
            )
            .header(Row::new(["PROBE", "RESULT", "EVIDENCE"]).style(theme.muted()));
            // The summary spans the whole width on the last line.
            let [table_area, summary_area] =
                Layout::vertical([Constraint::Fill(1), Constraint::Length(1)]).areas(inner);
            frame.render_widget(table, table_area);
            frame.render_widget(Paragraph::new(Line::from(summary)), summary_area);
        }
    }
}
