//! Each session's work in the dashboard: its editor buffer and the output of
//! its runs. Kept per session, so switching sessions keeps each one's text.

use std::time::Duration;

use ratatui_textarea::TextArea;

use crate::engine::exec::ExecResult;
use crate::tui::terminal_output::TerminalLog;

/// How a run ended, as shown under the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    Idle,
    Running,
    Finished {
        exit_code: Option<i64>,
        duration: Duration,
        timed_out: bool,
        truncated: bool,
        oom_killed: bool,
        cancelled: bool,
    },
    Failed(String),
}

impl RunState {
    pub fn finished(result: &ExecResult) -> Self {
        RunState::Finished {
            exit_code: result.exit_code,
            duration: result.duration,
            timed_out: result.timed_out,
            truncated: result.truncated,
            oom_killed: result.oom_killed,
            cancelled: result.cancelled,
        }
    }
}

/// One session's editor and run output.
pub struct Work {
    pub editor: TextArea<'static>,
    /// The workspace file the buffer saves to.
    pub file: String,
    /// The runtime's command template, `{file}` standing for the file.
    pub run_template: String,
    pub modified: bool,
    pub output: TerminalLog,
    pub run: RunState,
    /// The line being typed for the run's stdin, sent on Enter.
    pub stdin_line: String,
    /// Keys typed in the Output pane go to the run's stdin (set when a run
    /// starts; esc gives the keys back to the pane, `i` takes them again).
    pub typing: bool,
    /// The run's stdin is still open (ctrl-d closes it).
    pub stdin_open: bool,
    pub tree: crate::tui::files::FileTree,
    /// The last output search, for finding the next match.
    pub output_search: String,
}

impl Work {
    pub fn new(file: &str, starter: &str, run_template: &str) -> Self {
        let mut editor = TextArea::from(starter.lines().map(str::to_string).collect::<Vec<_>>());
        editor.set_max_histories(200);
        editor.set_line_number_style(
            ratatui::style::Style::new().add_modifier(ratatui::style::Modifier::DIM),
        );
        Self {
            editor,
            file: file.to_string(),
            run_template: run_template.to_string(),
            modified: false,
            output: TerminalLog::new(),
            run: RunState::Idle,
            stdin_line: String::new(),
            typing: false,
            stdin_open: false,
            tree: crate::tui::files::FileTree::default(),
            output_search: String::new(),
        }
    }

    /// The buffer as file contents, ending in a newline.
    pub fn contents(&self) -> String {
        let mut text = self.editor.lines().join("\n");
        text.push('\n');
        text
    }

    pub fn is_running(&self) -> bool {
        self.run == RunState::Running
    }

    /// Starts a run's output: the log empties, typing goes to its stdin.
    pub fn start_run(&mut self) {
        self.output.clear();
        self.run = RunState::Running;
        self.stdin_line.clear();
        self.typing = true;
        self.stdin_open = true;
    }

    /// Ends a run's input: what was typed and not sent is dropped.
    pub fn end_run(&mut self, state: RunState) {
        self.run = state;
        self.stdin_line.clear();
        self.typing = false;
        self.stdin_open = false;
    }

    /// Replaces the buffer with a file's text.
    pub fn open(&mut self, path: &str, text: &str) {
        let line_numbers = self.editor.line_number_style();
        self.editor = TextArea::from(text.lines().map(str::to_string).collect::<Vec<_>>());
        self.editor.set_max_histories(200);
        if let Some(style) = line_numbers {
            self.editor.set_line_number_style(style);
        }
        self.file = path.to_string();
        self.modified = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_contents_end_with_a_newline() {
        let work = Work::new("main.py", "print(1)\nprint(2)\n", "python3 {file}");
        assert_eq!(work.contents(), "print(1)\nprint(2)\n");
    }
}
