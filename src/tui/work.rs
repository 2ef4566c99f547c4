//! Each session's work in the dashboard: its editor buffer and the output of
//! its runs. Kept per session, so switching sessions keeps each one's text.

use std::time::Duration;

use ratatui_textarea::TextArea;

use crate::config::EditorConfig;
use crate::engine::exec::ExecResult;
use crate::engine::runtimes::{Indent, Language};
use crate::tui::highlight::{Highlighter, language_of};
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

/// How a session's buffer indents and colours code: from its runtime, with
/// the config's indents for files of other languages.
#[derive(Debug, Clone)]
pub struct CodeStyle {
    /// The runtime's language and the indent resolved for it.
    pub language: Language,
    pub indent: Indent,
    /// The runtime's default file: without an extension, it is still code
    /// in the runtime's language.
    pub file: String,
    pub editor: EditorConfig,
}

impl CodeStyle {
    /// The language whose colours `file` gets (none for files that are not
    /// code sandpit knows) and its indent.
    pub fn for_file(&self, file: &str, first_line: &str) -> (Option<Language>, Indent) {
        let language =
            language_of(file, first_line).or_else(|| (file == self.file).then_some(self.language));
        let indent = match language {
            Some(language) if language != self.language => self.editor.indent(language, None),
            _ => self.indent,
        };
        (language, indent)
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
    /// What Tab inserts and shift-tab removes in this buffer.
    pub indent: Indent,
    /// The buffer's syntax colours.
    pub highlight: Highlighter,
    style: Option<CodeStyle>,
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
            indent: Indent::Spaces(4),
            highlight: Highlighter::new(None),
            style: None,
        }
    }

    /// Sets how the buffer indents and colours code, for its current file
    /// and the files opened later.
    pub fn set_code_style(&mut self, style: CodeStyle) {
        self.style = Some(style);
        self.apply_code_style();
    }

    fn apply_code_style(&mut self) {
        let Some(style) = &self.style else { return };
        let first_line = self.editor.lines().first().map_or("", String::as_str);
        let (language, indent) = style.for_file(&self.file, first_line);
        self.indent = indent;
        self.highlight = Highlighter::new(language);
        // The text area draws hard tabs this wide, and inserts the same
        // indent should a Tab ever reach it directly.
        self.editor.set_tab_length(indent.width());
        self.editor.set_hard_tab_indent(indent == Indent::Tab);
    }

    /// Tab: the buffer's indent at the cursor, or before each selected line.
    pub fn indent(&mut self) {
        self.modified |= crate::tui::indent::indent(&mut self.editor, self.indent);
    }

    /// Shift-tab: one level less on the cursor's or each selected line.
    pub fn dedent(&mut self) {
        self.modified |= crate::tui::indent::dedent(&mut self.editor, self.indent);
    }

    /// Backspace, one indent level at a time over leading spaces.
    pub fn backspace(&mut self) {
        self.modified |= crate::tui::indent::backspace(&mut self.editor, self.indent);
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
        self.apply_code_style();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_style_follows_the_file_and_the_runtime() {
        let editor = EditorConfig {
            indent: [(Language::Shell, Indent::Tab)].into_iter().collect(),
        };
        let style = CodeStyle {
            language: Language::Node,
            indent: Indent::Spaces(3),
            file: "app".to_string(),
            editor,
        };
        let mut work = Work::new("app", "let x;\n", "node {file}");
        work.set_code_style(style);
        assert_eq!(work.indent, Indent::Spaces(3));
        assert!(work.highlight.is_active(), "the runtime's file is its code");
        assert_eq!(work.editor.tab_length(), 3);
        work.open("deploy.sh", "echo hi\n");
        assert_eq!(work.indent, Indent::Tab, "the config's indent for shell");
        assert!(work.editor.hard_tab_indent());
        work.open("notes.txt", "hi\n");
        assert_eq!(work.indent, Indent::Spaces(3));
        assert!(!work.highlight.is_active(), "text is not coloured");
        work.open("tool", "#!/usr/bin/env python3\n");
        assert_eq!(work.indent, Indent::Spaces(4));
        assert!(work.highlight.is_active());
    }

    #[test]
    fn buffer_contents_end_with_a_newline() {
        let work = Work::new("main.py", "print(1)\nprint(2)\n", "python3 {file}");
        assert_eq!(work.contents(), "print(1)\nprint(2)\n");
    }
}
