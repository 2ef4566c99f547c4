use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::pane_block;
use crate::engine::exec::Stream;
use crate::tui::app::{App, Pane};
use crate::tui::work::RunState;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = app.theme();
    let focused = app.focus == Pane::Output;
    let work = app.selected_work();
    let mut title = match app.selected_user() {
        Some(user) => format!(" Output — {user} "),
        None => " Output ".to_string(),
    };
    if work.is_some_and(|w| !w.output.following()) {
        title.push_str("[scrolled · end follows] ");
    }
    let block = pane_block(title, focused, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(work) = work else {
        frame.render_widget(
            Paragraph::new("f5 or ctrl-r runs the editor's code in the selected session")
                .style(theme.muted()),
            inner,
        );
        return;
    };
    let [lines_area, status_area] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(inner);
    let lines: Vec<Line> = work
        .output
        .window(usize::from(lines_area.height))
        .map(|(stream, text)| {
            let color = match stream {
                Stream::Stdout => theme.stdout,
                Stream::Stderr => theme.stderr,
            };
            Line::styled(text.clone(), theme.text().fg(color))
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), lines_area);
    let status = match &work.run {
        RunState::Idle => Line::styled("not run yet", theme.muted()),
        RunState::Running => Line::styled("running… (ctrl-c cancels)", theme.accent()),
        RunState::Failed(error) => Line::styled(error.clone(), theme.text().fg(theme.error)),
        RunState::Finished {
            exit_code,
            duration,
            timed_out,
            truncated,
            oom_killed,
            cancelled,
        } => {
            let code = exit_code.map_or("?".to_string(), |code| code.to_string());
            let ok = *exit_code == Some(0) && !timed_out && !truncated && !oom_killed && !cancelled;
            let mut spans = vec![Span::styled(
                format!("exit {code} in {:.2}s", duration.as_secs_f64()),
                theme.text().fg(if ok { theme.ok } else { theme.error }),
            )];
            for (flag, label) in [
                (*timed_out, "timed out"),
                (*truncated, "output truncated"),
                (*oom_killed, "killed: memory limit"),
                (*cancelled, "cancelled"),
            ] {
                if flag {
                    spans.push(Span::styled(
                        format!(" · {label}"),
                        theme.text().fg(theme.warning),
                    ));
                }
            }
            if work.output.dropped > 0 {
                spans.push(Span::styled(
                    format!(" · {} older lines scrolled away", work.output.dropped),
                    theme.muted(),
                ));
            }
            Line::from(spans)
        }
    };
    frame.render_widget(Paragraph::new(status), status_area);
}
