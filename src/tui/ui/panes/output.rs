//! The output of the selected session's runs: scroll, search, save. The
//! model is `work::OutputLog`; this file is all the pane knows of it.

//! The output of the selected session's runs, as a terminal shows it:
//! scroll, search, save, wrap or scroll sideways, and type into a run's
//! stdin. The model is `terminal_output::TerminalLog`.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{Component, Pane, pane_block};
use crate::tui::app::{App, OUTPUT_FILE};
use crate::tui::collector::Request;
use crate::tui::keymap::{Action, Scope};
use crate::tui::popups::{Popup, Prompt};
use crate::tui::terminal_output::{SourceColors, text_area};
use crate::tui::ui::layout::Areas;
use crate::tui::work::{RunState, Work};

/// Rows a page key scrolls, and a wheel turn; columns a sideways key does.
const PAGE_LINES: usize = 10;
const WHEEL_LINES: usize = 3;
const SIDEWAYS_COLUMNS: isize = 8;
/// The size runs are told when the pane is not on screen (`COLUMNS` x
/// `LINES`), as a terminal's default.
const UNSEEN_SIZE: (u16, u16) = (80, 24);

/// The columns and rows the log is drawn in, in a terminal of `area`; runs
/// are told this size.
pub fn text_size(area: Rect) -> (u16, u16) {
    Areas::compute(area)
        .output
        .map(text_area)
        .filter(|text| text.width > 0 && text.height > 0)
        .map_or(UNSEEN_SIZE, |text| (text.width, text.height))
}

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
            Action::OutputType,
            Action::OutputPageUp,
            Action::OutputWrap,
            Action::OutputSearch,
            Action::OutputSearchNext,
            Action::OutputSave,
            Action::Interrupt,
            Action::NextPane,
        ]
    }

    /// While typing into a run, the keys of that.
    fn current_hints(&self, app: &App) -> Vec<Action> {
        if app.selected_work().is_some_and(typing) {
            let mut hints: Vec<Action> = Scope::RunInput.actions().collect();
            hints.extend([Action::OutputPageUp, Action::Interrupt, Action::NextPane]);
            hints
        } else {
            self.hints().to_vec()
        }
    }

    fn draw(&self, frame: &mut Frame, area: Rect, app: &App) {
        draw(frame, area, app);
    }

    fn handle_key(&self, app: &mut App, key: &KeyEvent, action: Option<Action>) -> bool {
        if app.selected_work().is_some_and(typing) && type_key(app, key) {
            return true;
        }
        let Some(action) = action else { return false };
        let (width, _) = text_size(app.area);
        let user = app.selected_user().unwrap_or_default();
        let Some((_, work)) = app.selected_work_mut() else {
            return false;
        };
        let output = &mut work.output;
        match action {
            Action::OutputUp => output.scroll_up(1, width),
            Action::OutputDown => output.scroll_down(1, width),
            Action::OutputPageUp => output.scroll_up(PAGE_LINES, width),
            Action::OutputPageDown => output.scroll_down(PAGE_LINES, width),
            Action::OutputTop => output.scroll_to_top(),
            Action::OutputFollow => output.follow(),
            Action::OutputWrap => {
                output.toggle_wrap();
                let state = if output.wrap {
                    "long lines wrap"
                } else {
                    "long lines are cut at the edge; scroll sideways"
                };
                app.inform(state);
            }
            Action::OutputLeft | Action::OutputRight if output.wrap => {
                let wrap = app.keymap.label(Action::OutputWrap);
                app.inform(format!("lines wrap; {wrap} cuts them to scroll sideways"));
            }
            Action::OutputLeft => output.scroll_sideways(-SIDEWAYS_COLUMNS),
            Action::OutputRight => output.scroll_sideways(SIDEWAYS_COLUMNS),
            // With no run under way the key is not this pane's.
            Action::OutputType if work.run != RunState::Running => return false,
            Action::OutputType if !work.stdin_open => app.warn("the run's input is closed"),
            Action::OutputType => work.typing = true,
            Action::OutputSearch => {
                app.popup = Some(Popup::Prompt {
                    purpose: Prompt::SearchOutput,
                    text: String::new(),
                });
            }
            Action::OutputSearchNext => {
                let needle = work.output_search.clone();
                if !work.output.find_back(&needle, width) {
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
        let (width, _) = text_size(app.area);
        if let Some((_, work)) = app.selected_work_mut() {
            if down {
                work.output.scroll_down(WHEEL_LINES, width);
            } else {
                work.output.scroll_up(WHEEL_LINES, width);
            }
        }
    }

    /// Pasted text while typing into a run: each whole line is sent, the
    /// rest waits for Enter.
    fn paste(&self, app: &mut App, text: &str) -> bool {
        if !app.selected_work().is_some_and(typing) {
            return false;
        }
        let mut pieces = text.split('\n').peekable();
        while let Some(piece) = pieces.next() {
            if let Some((_, work)) = app.selected_work_mut() {
                work.stdin_line
                    .extend(piece.chars().filter(|c| !c.is_control()));
            }
            if pieces.peek().is_some() {
                send_line(app);
            }
        }
        true
    }
}

/// Keys go to the run's stdin: a run is under way, its stdin is open, and
/// the user has not given the keys back to the pane.
fn typing(work: &Work) -> bool {
    work.is_running() && work.stdin_open && work.typing
}

/// A key while typing into a run: the input's own actions, or text; other
/// keys (page keys, Tab, …) are left to the pane and the globals.
fn type_key(app: &mut App, key: &KeyEvent) -> bool {
    let action = app.keymap.action_in(Scope::RunInput, key);
    let Some((_, work)) = app.selected_work_mut() else {
        return false;
    };
    match action {
        Some(Action::InputSend) => send_line(app),
        Some(Action::InputEnd) => {
            if !work.stdin_line.is_empty() {
                let line = std::mem::take(&mut work.stdin_line);
                work.output.echo_input(&line);
                send(app, Some(line.into_bytes()));
            }
            send(app, None);
            if let Some((_, work)) = app.selected_work_mut() {
                work.stdin_open = false;
                work.typing = false;
            }
            app.inform("the run's input is closed (end of input)");
        }
        Some(Action::InputLeave) => work.typing = false,
        _ => match key.code {
            KeyCode::Char(c)
                if !key
                    .modifiers
                    .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) =>
            {
                work.stdin_line.push(c)
            }
            KeyCode::Backspace => {
                work.stdin_line.pop();
            }
            _ => return false,
        },
    }
    true
}

/// Sends the typed line and its newline; the log echoes it, as a terminal
/// in line mode does.
fn send_line(app: &mut App) {
    if let Some((_, work)) = app.selected_work_mut() {
        let mut line = std::mem::take(&mut work.stdin_line);
        work.output.echo_input(&line);
        line.push('\n');
        send(app, Some(line.into_bytes()));
    }
}

fn send(app: &mut App, data: Option<Vec<u8>>) {
    if let Some(user) = app.selected_user() {
        app.outbox.push(Request::RunInput { user, data });
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
    if let Some(work) = work.filter(|w| !w.output.wrap) {
        title.push_str(&format!("[no wrap · col {}] ", work.output.hscroll + 1));
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
    let colors = SourceColors {
        stdout: theme.stdout,
        stderr: theme.stderr,
        input: theme.accent,
    };
    let pending = (typing(work) && focused).then_some(work.stdin_line.as_str());
    let lines = work
        .output
        .view(lines_area.width, lines_area.height, colors, pending);
    frame.render_widget(Paragraph::new(lines), lines_area);
    let status = match &work.run {
        RunState::Idle => Line::styled("not run yet", theme.muted()),
        RunState::Running => {
            let input = if typing(work) && focused {
                "typing goes to its stdin".to_string()
            } else if typing(work) {
                "focus here to type to its stdin".to_string()
            } else if work.stdin_open {
                format!(
                    "{} types to its stdin",
                    app.keymap.label(Action::OutputType)
                )
            } else {
                "its stdin is closed".to_string()
            };
            Line::styled(format!("running… · {input}"), theme.accent())
        }
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
            if work.output.dropped() > 0 {
                spans.push(Span::styled(
                    format!(" · {} older lines scrolled away", work.output.dropped()),
                    theme.muted(),
                ));
            }
            Line::from(spans)
        }
    };
    frame.render_widget(Paragraph::new(status), status_area);
}
