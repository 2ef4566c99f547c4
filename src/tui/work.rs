//! Each session's work in the dashboard: its editor buffer and the output of
//! its runs. Kept per session, so switching sessions keeps each one's text.

use std::collections::VecDeque;
use std::time::Duration;

use ratatui_textarea::TextArea;

use crate::config::EditorConfig;
use crate::engine::exec::{ExecResult, Stream};
use crate::engine::runtimes::{Indent, Language};
use crate::tui::highlight::{Highlighter, language_of};

/// Lines of output kept per session; older ones scroll away.
pub const SCROLLBACK_LINES: usize = 10_000;
/// A line longer than this is cut, so one endless line cannot grow memory.
const MAX_LINE_LEN: usize = 4096;

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

/// Output lines with a bounded scrollback. Partial lines are held per stream
/// until their newline arrives.
#[derive(Debug, Clone, Default)]
pub struct OutputLog {
    pub lines: VecDeque<(Stream, String)>,
    partial: [String; 2],
    /// Lines scrolled up from the end; 0 follows new output.
    pub scroll_back: usize,
    /// Lines dropped off the top since the run started.
    pub dropped: usize,
}

impl OutputLog {
    fn slot(stream: Stream) -> usize {
        match stream {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }

    pub fn clear(&mut self) {
        *self = Self::default();
    }

    pub fn push(&mut self, stream: Stream, data: &[u8]) {
        let text = String::from_utf8_lossy(data);
        let slot = Self::slot(stream);
        for piece in text.split_inclusive('\n') {
            let partial = &mut self.partial[slot];
            let room = MAX_LINE_LEN.saturating_sub(partial.len());
            let content = piece.strip_suffix('\n').unwrap_or(piece);
            let cut = content
                .char_indices()
                .map(|(index, c)| index + c.len_utf8())
                .take_while(|end| *end <= room)
                .last()
                .unwrap_or(0);
            partial.push_str(&content[..cut]);
            if piece.ends_with('\n') {
                let line = std::mem::take(partial);
                self.push_line(stream, line);
            }
        }
    }

    fn push_line(&mut self, stream: Stream, line: String) {
        if self.lines.len() == SCROLLBACK_LINES {
            self.lines.pop_front();
            self.dropped += 1;
        }
        self.lines.push_back((stream, line.replace('\t', "    ")));
        // Someone reading back keeps their place while output arrives.
        if self.scroll_back > 0 {
            self.scroll_back = (self.scroll_back + 1).min(self.lines.len());
        }
    }

    /// Ends the run: partial lines become lines.
    pub fn flush(&mut self) {
        for (slot, stream) in [(0, Stream::Stdout), (1, Stream::Stderr)] {
            if !self.partial[slot].is_empty() {
                let line = std::mem::take(&mut self.partial[slot]);
                self.push_line(stream, line);
            }
        }
    }

    pub fn scroll_up(&mut self, lines: usize) {
        self.scroll_back = (self.scroll_back + lines).min(self.lines.len().saturating_sub(1));
    }

    pub fn scroll_down(&mut self, lines: usize) {
        self.scroll_back = self.scroll_back.saturating_sub(lines);
    }

    pub fn follow(&mut self) {
        self.scroll_back = 0;
    }

    /// Scrolls to the nearest line above the last one shown that contains
    /// `needle`; false when there is none.
    pub fn find_back(&mut self, needle: &str) -> bool {
        if needle.is_empty() {
            return false;
        }
        let last_shown = self.lines.len().saturating_sub(self.scroll_back);
        let found = self
            .lines
            .range(..last_shown.saturating_sub(1))
            .rposition(|(_, line)| line.contains(needle));
        match found {
            Some(index) => {
                self.scroll_back = self.lines.len() - 1 - index;
                true
            }
            None => false,
        }
    }

    /// Everything kept, as text, for saving.
    pub fn text(&self) -> String {
        let mut text = String::new();
        for (_, line) in &self.lines {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    pub fn following(&self) -> bool {
        self.scroll_back == 0
    }

    /// The lines that fit in `height` rows at the current scroll position.
    pub fn window(&self, height: usize) -> impl Iterator<Item = &(Stream, String)> {
        let end = self.lines.len().saturating_sub(self.scroll_back);
        let start = end.saturating_sub(height);
        self.lines.range(start..end)
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
    pub output: OutputLog,
    pub run: RunState,
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
            output: OutputLog::default(),
            run: RunState::Idle,
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
    fn lines_are_split_and_partial_lines_held() {
        let mut log = OutputLog::default();
        log.push(Stream::Stdout, b"hel");
        assert!(log.lines.is_empty());
        log.push(Stream::Stderr, b"oops\n");
        log.push(Stream::Stdout, b"lo\nworld");
        log.flush();
        let lines: Vec<_> = log.lines.iter().map(|(s, l)| (*s, l.as_str())).collect();
        assert_eq!(
            lines,
            [
                (Stream::Stderr, "oops"),
                (Stream::Stdout, "hello"),
                (Stream::Stdout, "world")
            ]
        );
    }

    #[test]
    fn scrollback_is_bounded_and_long_lines_are_cut() {
        let mut log = OutputLog::default();
        for i in 0..SCROLLBACK_LINES + 5 {
            log.push(Stream::Stdout, format!("{i}\n").as_bytes());
        }
        assert_eq!(log.lines.len(), SCROLLBACK_LINES);
        assert_eq!(log.dropped, 5);
        assert_eq!(log.lines.front().unwrap().1, "5");
        log.push(Stream::Stdout, &vec![b'x'; 100_000]);
        log.push(Stream::Stdout, b"\n");
        assert_eq!(log.lines.back().unwrap().1.len(), MAX_LINE_LEN);
    }

    #[test]
    fn scrolling_and_following() {
        let mut log = OutputLog::default();
        for i in 0..50 {
            log.push(Stream::Stdout, format!("{i}\n").as_bytes());
        }
        let last: Vec<_> = log.window(3).map(|(_, l)| l.clone()).collect();
        assert_eq!(last, ["47", "48", "49"]);
        log.scroll_up(10);
        assert!(!log.following());
        let back: Vec<_> = log.window(2).map(|(_, l)| l.clone()).collect();
        assert_eq!(back, ["38", "39"]);
        // New output does not move a reader's place.
        log.push(Stream::Stdout, b"50\n");
        let still: Vec<_> = log.window(2).map(|(_, l)| l.clone()).collect();
        assert_eq!(still, ["38", "39"]);
        log.follow();
        assert_eq!(log.window(1).next().unwrap().1, "50");
    }

    #[test]
    fn output_search_goes_back_match_by_match() {
        let mut log = OutputLog::default();
        for i in 0..20 {
            log.push(
                Stream::Stdout,
                format!("{} {i}\n", if i % 5 == 0 { "mark" } else { "line" }).as_bytes(),
            );
        }
        assert!(log.find_back("mark"));
        assert_eq!(log.window(1).next().unwrap().1, "mark 15");
        assert!(log.find_back("mark"));
        assert_eq!(log.window(1).next().unwrap().1, "mark 10");
        assert!(!log.find_back("absent"));
        assert!(log.text().starts_with("mark 0\nline 1\n"));
    }

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
