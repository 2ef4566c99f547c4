use ratatui::Frame;
use ratatui::layout::Constraint;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};

use super::frame_popup;
use crate::tui::app::App;

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
        "probe against which session? (enter, esc)",
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

pub fn draw_result(frame: &mut Frame, app: &App) {
    let theme = app.theme();
    let Some(view) = &app.isolation else { return };
    let title = format!(
        "Isolation of {} as seen from {} — esc close",
        view.target, view.from
    );
    let inner = frame_popup(frame, theme, &title, 90, 12);
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
            let rows = results.iter().map(|result| {
                let verdict_style = if result.blocked {
                    theme.text().fg(theme.ok)
                } else {
                    theme.banner()
                };
                Row::new([
                    Cell::from(result.probe.clone()),
                    Cell::from(Span::styled(result.verdict(), verdict_style)),
                    Cell::from(result.detail.clone()),
                ])
                .style(theme.text())
            });
            let leaked = results.iter().filter(|r| !r.blocked).count();
            let summary = if leaked == 0 {
                Span::styled("every probe blocked", theme.text().fg(theme.ok))
            } else {
                Span::styled(format!("{leaked} probe(s) LEAKED"), theme.banner())
            };
            let table = Table::new(
                rows,
                [
                    Constraint::Length(33),
                    Constraint::Length(8),
                    Constraint::Fill(1),
                ],
            )
            .header(Row::new(["PROBE", "RESULT", "DETAIL"]).style(theme.muted()))
            .footer(Row::new([Cell::from(summary)]));
            frame.render_widget(table, inner);
        }
    }
}
