//! The output of the selected session's runs: scroll, search, save. The
//! model is `work::OutputLog`; this file is all the pane knows of it.

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{Component, Pane, pane_block};
use crate::engine::exec::Stream;
use crate::tui::app::{App, OUTPUT_FILE};
use crate::tui::collector::Request;
use crate::tui::keymap::{Action, Scope};
use crate::tui::popups::{Popup, Prompt};
use crate::tui::ui::layout::Areas;
use crate::tui::work::RunState;

/// Lines a page key scrolls, and a wheel turn.
const PAGE_LINES: usize = 10;
const WHEEL_LINES: usize = 3;

pub struct OutputPane;

impl Component for OutputPane {
    fn scope(&self) -> Scope {
        Scope::Output
    }

    fn area(&self, areas: &Areas) -> Option<Rect> {
        areas.output
    }

    fn hints(&self) -> &'static [Action] {
        &[
            Action::OutputUp,
            Action::OutputPageUp,
            Action::OutputFollow,
            Action::OutputSearch,
            Action::OutputSearchNext,
            Action::OutputSave,
            Action::Interrupt,
            Action::NextPane,
        ]
    }

    fn draw(&self, frame: &mut Frame, area: Rect, app: &App) {
        draw(frame, area, app);
    }

    fn handle_key(&self, app: &mut App, _key: &KeyEvent, action: Option<Action>) -> bool {
        let Some(action) = action else { return false };
        let user = app.selected_user().unwrap_or_default();
        let Some((_, work)) = app.selected_work_mut() else {
            return false;
        };
        let output = &mut work.output;
        match action {
            Action::OutputUp => output.scroll_up(1),
            Action::OutputDown => output.scroll_down(1),
            Action::OutputPageUp => output.scroll_up(PAGE_LINES),
            Action::OutputPageDown => output.scroll_down(PAGE_LINES),
            Action::OutputTop => output.scroll_up(usize::MAX / 2),
            Action::OutputFollow => output.follow(),
            Action::OutputSearch => {
                app.popup = Some(Popup::Prompt {
                    purpose: Prompt::SearchOutput,
                    text: String::new(),
                });
            }
            Action::OutputSearchNext => {
                let needle = work.output_search.clone();
                if !work.output.find_back(&needle) {
                    app.warn(format!("no earlier `{needle}` in the output"));
                }
            }
            Action::OutputSave => {
                let contents = output.text();
                app.outbox.push(Request::Save {
                    user,
                    file: OUTPUT_FILE.to_string(),
                    contents,
                });
            }
            _ => return false,
        }
        true
    }

    fn scroll(&self, app: &mut App, down: bool) {
        if let Some((_, work)) = app.selected_work_mut() {
            if down {
                work.output.scroll_down(WHEEL_LINES);
            } else {
                work.output.scroll_up(WHEEL_LINES);
            }
        }
    }
}

fn draw(frame: &mut Frame, area: Rect, app: &App) {
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
            Paragraph::new(format!(
                "{} runs the editor's code in the selected session",
                app.keymap
                    .keys(Action::Run)
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" or ")
            ))
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
        RunState::Running => Line::styled(
            format!("running… ({} cancels)", app.keymap.label(Action::Interrupt)),
            theme.accent(),
        ),
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
