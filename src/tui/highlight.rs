//! Syntax colours in the editor: Python, JavaScript/TypeScript and shell,
//! parsed with syntect's Sublime Text grammars and painted over the cells
//! the text area has drawn.
//!
//! ratatui-textarea 0.9 has no hook for colouring text, so the text area
//! draws as usual (it stays the model for the cursor, selection, search and
//! scrolling) and [`Highlighter::paint`] then sets the foreground of the
//! visible text cells it left plain. Cells the text area styled itself —
//! cursor, selection, search matches — keep their look.
//!
//! Parsing is incremental: each line's parser state at its end is cached
//! with its text. A frame re-parses only lines whose text changed, and from
//! the first of them on only until a line ends in the state it ended in
//! before (then the rest of the cache still holds), and never past the last
//! visible line. A frame parses for at most [`FRAME_BUDGET`] (once it has
//! parsed [`MIN_LINES_PER_FRAME`]): after a jump deep into a big file the
//! window is plain for some frames while the parse catches up
//! ([`Highlighter::catching_up`] asks for them), and typing is not held up.

use std::cell::{Cell, RefCell};
use std::ops::Range;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use ratatui_textarea::{TextArea, WrapMode};
use syntect::parsing::{ParseState, Scope, ScopeStack, SyntaxReference, SyntaxSet};
use unicode_width::UnicodeWidthChar as _;

use crate::engine::runtimes::Language;
use crate::tui::theme::Theme;

/// What a piece of code is, for its colour. The one table of kinds: each
/// has its theme key, the grammar scopes it covers and the colour a theme
/// without that key falls back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Comment,
    String,
    /// Numbers, `True`/`null`-like constants and escapes.
    Constant,
    Keyword,
    Function,
    Type,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Comment,
        Kind::String,
        Kind::Constant,
        Kind::Keyword,
        Kind::Function,
        Kind::Type,
    ];

    /// The colour's key in a theme file's `[colors]`.
    pub fn theme_key(self) -> &'static str {
        match self {
            Kind::Comment => "syntax_comment",
            Kind::String => "syntax_string",
            Kind::Constant => "syntax_constant",
            Kind::Keyword => "syntax_keyword",
            Kind::Function => "syntax_function",
            Kind::Type => "syntax_type",
        }
    }

    /// Scope prefixes, matched from the innermost scope out; the first
    /// scope that anything claims decides, by its longest matching prefix
    /// (so an escape inside a string is a constant, and a string's quote
    /// marks are string).
    fn scopes(self) -> &'static [&'static str] {
        match self {
            Kind::Comment => &["comment"],
            // Python's `f` and `r` string prefixes are storage types.
            Kind::String => &["string", "storage.type.string"],
            Kind::Constant => &[
                "constant.numeric",
                "constant.language",
                "constant.character",
                "constant.other",
                "support.constant",
            ],
            Kind::Keyword => &["keyword", "storage"],
            Kind::Function => &[
                "entity.name.function",
                "support.function",
                "variable.function",
                "meta.function-call.identifier",
            ],
            Kind::Type => &[
                "entity.name.class",
                "entity.name.type",
                "entity.other.inherited-class",
                "support.class",
                "support.type",
            ],
        }
    }

    /// The colour for a theme file that does not name this kind's key, from
    /// the colours every theme has.
    pub fn fallback(self, theme: &Theme) -> Color {
        match self {
            Kind::Comment => theme.muted,
            Kind::String => theme.ok,
            Kind::Constant => theme.warning,
            Kind::Keyword => theme.accent,
            Kind::Function => theme.cpu,
            Kind::Type => theme.memory,
        }
    }

    /// Where the kind's colour sits in [`Theme::syntax`]'s table.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// What a scope makes of the text under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    Kind(Kind),
    /// Operators: keywords when they are words (`and`, `in`, `typeof`,
    /// `new`), plain when they are symbols, which would be noise in colour.
    Operator,
}

/// Scopes claimed, built once (syntect's scopes are interned).
static CLAIMS: LazyLock<Vec<(Scope, Claim)>> = LazyLock::new(|| {
    let kinds = Kind::ALL.iter().flat_map(|kind| {
        kind.scopes()
            .iter()
            .map(move |scope| (*scope, Claim::Kind(*kind)))
    });
    kinds
        .chain([("keyword.operator", Claim::Operator)])
        .filter_map(|(scope, claim)| Scope::new(scope).ok().map(|scope| (scope, claim)))
        .collect()
});

/// The grammars, loaded on first use (a few milliseconds; each grammar's
/// regexes compile the first time they are needed).
static SYNTAXES: LazyLock<SyntaxSet> = LazyLock::new(SyntaxSet::load_defaults_newlines);

/// Lines longer than this are shown plain and not parsed: one minified
/// line must not stall typing. The parser state passes over them unchanged.
pub const MAX_LINE_BYTES: usize = 4096;

/// How long one frame may parse, once it has parsed [`MIN_LINES_PER_FRAME`].
/// A line of Python cost 0.15 to 0.3 ms in a release build on a busy 2-core
/// host (`cargo bench --bench dashboard`), so a catching-up frame parses
/// for 12 to 55 ms and typing between frames is not held up.
pub const FRAME_BUDGET: Duration = Duration::from_millis(12);

/// Lines a frame parses whatever the clock says: a screenful, so a window
/// whose lines changed is always coloured whole in one frame (and frames
/// do not depend on the host's speed in tests).
pub const MIN_LINES_PER_FRAME: usize = 100;

/// How much one [`Highlighter::update`] may parse.
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    /// Everything asked for.
    Unlimited,
    /// At least this many lines, then until the deadline.
    Frame { min_lines: usize, until: Instant },
}

impl Budget {
    /// One frame's budget, starting now.
    pub fn frame() -> Self {
        Budget::Frame {
            min_lines: MIN_LINES_PER_FRAME,
            until: Instant::now() + FRAME_BUDGET,
        }
    }

    fn spent(self, parsed: usize) -> bool {
        match self {
            Budget::Unlimited => false,
            Budget::Frame { min_lines, until } => parsed >= min_lines && Instant::now() >= until,
        }
    }
}

/// Loads the grammars and compiles the regexes each language's code needs
/// first, so the editor's first frame of code does not pay for it (some
/// 150 ms in a release build). Meant for a background thread at start-up.
pub fn warm_up() {
    for (language, sample) in [
        (
            Language::Python,
            "def f(x):\n    return f\"{x}\" * 2  # c\n",
        ),
        (Language::Node, "const f = (x) => `${x}` * 2; // c\n"),
        (Language::Shell, "if [ -n \"$x\" ]; then echo 'y'; fi # c\n"),
    ] {
        let lines: Vec<String> = sample.lines().map(str::to_string).collect();
        Highlighter::new(Some(language)).update(&lines, lines.len(), Budget::Unlimited);
    }
}

/// The language whose grammar colours `file`: by extension (TypeScript uses
/// the JavaScript grammar, which reads most of it), else by a `#!` line,
/// else none.
pub fn language_of(file: &str, first_line: &str) -> Option<Language> {
    let extension = file
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase());
    match extension.as_deref() {
        Some("py" | "pyw" | "pyi") => return Some(Language::Python),
        Some("js" | "mjs" | "cjs" | "jsx" | "ts" | "mts" | "cts" | "tsx") => {
            return Some(Language::Node);
        }
        Some("sh" | "bash") => return Some(Language::Shell),
        _ => {}
    }
    let shebang = first_line.strip_prefix("#!")?;
    let program = shebang
        .split_whitespace()
        .find(|word| !word.ends_with("/env"))?;
    let program = program.rsplit('/').next().unwrap_or(program);
    if program.starts_with("python") {
        Some(Language::Python)
    } else if program.starts_with("node") {
        Some(Language::Node)
    } else if matches!(program, "sh" | "bash" | "dash" | "ash" | "ksh" | "zsh") {
        Some(Language::Shell)
    } else {
        None
    }
}

fn syntax_for(language: Language) -> Option<&'static SyntaxReference> {
    let extension = match language {
        Language::Python => "py",
        Language::Node => "js",
        Language::Shell => "sh",
    };
    SYNTAXES.find_syntax_by_extension(extension)
}

/// One parsed line: its text, the parser state at its end and its coloured
/// byte ranges.
#[derive(Debug, Clone)]
struct CachedLine {
    text: String,
    end: (ParseState, ScopeStack),
    spans: Vec<(Range<usize>, Kind)>,
}

/// Syntax colours for one editor buffer. Parsing happens while drawing
/// (`&self`), hence the cache's `RefCell`.
#[derive(Debug, Default)]
pub struct Highlighter {
    syntax: Option<&'static SyntaxReference>,
    cache: RefCell<Vec<CachedLine>>,
    /// The last paint stopped short of the visible lines.
    behind: Cell<bool>,
}

impl Highlighter {
    /// A highlighter for code in `language`; `None` colours nothing.
    pub fn new(language: Option<Language>) -> Self {
        Self {
            syntax: language.and_then(syntax_for),
            cache: RefCell::default(),
            behind: Cell::new(false),
        }
    }

    /// Whether the last paint left visible lines plain to keep the frame
    /// short, so another frame should be drawn soon. Reading it clears it:
    /// a buffer no longer drawn asks for no more frames.
    pub fn catching_up(&self) -> bool {
        self.behind.replace(false)
    }

    pub fn is_active(&self) -> bool {
        self.syntax.is_some()
    }

    /// The coloured byte ranges of line `row`, parsing what is needed.
    pub fn line_spans(&self, lines: &[String], row: usize) -> Vec<(Range<usize>, Kind)> {
        self.update(lines, row + 1, Budget::Unlimited);
        self.cache
            .borrow()
            .get(row)
            .map(|line| line.spans.clone())
            .unwrap_or_default()
    }

    /// Lines parsed so far and still valid: how much a frame can reuse.
    pub fn cached_lines(&self) -> usize {
        self.cache.borrow().len()
    }

    /// Brings the cache up to date for `lines[..upto]` within `budget`;
    /// returns how many lines were parsed. Lines past the budget stay out
    /// of the cache (shown plain) until a later call.
    pub fn update(&self, lines: &[String], upto: usize, budget: Budget) -> usize {
        let Some(syntax) = self.syntax else {
            return 0;
        };
        let upto = upto.min(lines.len());
        let mut cache = self.cache.borrow_mut();
        cache.truncate(lines.len());
        let mut parsed = 0;
        let mut row = 0;
        while row < upto {
            // Skip lines whose text is unchanged: their cached state holds
            // because every line before them holds.
            match cache.get(row) {
                Some(cached) if cached.text == lines[row] => {
                    row += 1;
                    continue;
                }
                _ => {}
            }
            if budget.spent(parsed) {
                // Later lines were parsed from states this pass may have
                // changed: keep only what is known to hold.
                cache.truncate(row);
                break;
            }
            let start = match row.checked_sub(1).and_then(|prev| cache.get(prev)) {
                Some(prev) => prev.end.clone(),
                None => (ParseState::new(syntax), ScopeStack::new()),
            };
            let line = parse_line(&lines[row], start);
            parsed += 1;
            if row < cache.len() {
                let same_end = cache[row].end == line.end;
                cache[row] = line;
                if !same_end {
                    // Every later line was parsed from the old state.
                    cache.truncate(row + 1);
                }
            } else {
                cache.push(line);
            }
            row += 1;
        }
        parsed
    }

    /// Colours the text cells of `editor`, just drawn into `area` of `buf`.
    /// Needs the editor not to wrap lines (the dashboard's never does);
    /// with wrapping it leaves the text plain.
    pub fn paint(&self, editor: &TextArea<'_>, area: Rect, buf: &mut Buffer, theme: &Theme) {
        if self.syntax.is_none() || editor.wrap_mode() != WrapMode::None {
            return;
        }
        let (top_row, top_col) = editor.scroll_offset();
        let (top_row, top_col) = (usize::from(top_row), usize::from(top_col));
        let lines = editor.lines();
        let bottom = (top_row + usize::from(area.height)).min(lines.len());
        self.update(lines, bottom, Budget::frame());
        self.behind.set(self.cached_lines() < bottom);
        let cache = self.cache.borrow();
        let gutter = if editor.line_number_style().is_some() {
            usize::from(editor.line_number_width())
        } else {
            0
        };
        let tab = usize::from(editor.tab_length());
        let width = usize::from(area.width);
        for (y, row) in (top_row..bottom).enumerate() {
            let Some(cached) = cache.get(row) else { break };
            let mut spans = cached.spans.iter().peekable();
            // Columns as the text area lays them out: tabs to the next
            // stop, wide characters two cells, control characters none.
            let mut column = 0usize;
            for (offset, c) in cached.text.char_indices() {
                let cells = if c == '\t' {
                    if tab == 0 { 0 } else { tab - column % tab }
                } else if c.is_control() {
                    0
                } else {
                    c.width().unwrap_or(0)
                };
                let first = column;
                column += cells;
                let kind = loop {
                    match spans.peek() {
                        Some((range, _)) if range.end <= offset => {
                            spans.next();
                        }
                        Some((range, kind)) if range.start <= offset => break Some(*kind),
                        _ => break None,
                    }
                };
                let Some(kind) = kind else { continue };
                let color = theme.syntax(kind);
                for cell_column in first..column {
                    let Some(x) = (gutter + cell_column).checked_sub(top_col) else {
                        continue;
                    };
                    if x >= width {
                        break;
                    }
                    let position = (area.x + x as u16, area.y + y as u16);
                    if let Some(cell) = buf.cell_mut(position) {
                        // The cursor, selection and search matches keep the
                        // text area's own look.
                        if cell.bg == Color::Reset && !cell.modifier.contains(Modifier::REVERSED) {
                            cell.fg = color;
                        }
                    }
                }
                if gutter + column >= top_col + width {
                    break;
                }
            }
        }
    }
}

/// Parses one line from `start`. A grammar error or an over-long line
/// leaves the line plain and the state as it was.
fn parse_line(text: &str, start: (ParseState, ScopeStack)) -> CachedLine {
    let (mut state, mut stack) = start.clone();
    let mut spans: Vec<(Range<usize>, Kind)> = Vec::new();
    if text.len() > MAX_LINE_BYTES {
        return CachedLine {
            text: text.to_string(),
            end: start,
            spans,
        };
    }
    // The grammars are the "newlines" ones: each line is fed with its end.
    let mut with_newline = String::with_capacity(text.len() + 1);
    with_newline.push_str(text);
    with_newline.push('\n');
    let ops = match state.parse_line(&with_newline, &SYNTAXES) {
        Ok(ops) => ops,
        Err(err) => {
            tracing::debug!("syntax highlighting stopped on a line: {err}");
            return CachedLine {
                text: text.to_string(),
                end: start,
                spans,
            };
        }
    };
    let mut from = 0;
    let mut push = |range: Range<usize>, claim: Option<Claim>| {
        if range.start >= range.end {
            return;
        }
        let kind = match claim {
            Some(Claim::Kind(kind)) => kind,
            Some(Claim::Operator)
                if text[range.clone()]
                    .chars()
                    .all(|c| c.is_alphabetic() || c == ' ') =>
            {
                Kind::Keyword
            }
            _ => return,
        };
        match spans.last_mut() {
            Some((last, last_kind)) if *last_kind == kind && last.end == range.start => {
                last.end = range.end;
            }
            _ => spans.push((range, kind)),
        }
    };
    for (at, op) in &ops {
        let at = (*at).min(text.len());
        push(from..at, claim_of(&stack));
        from = at;
        if stack.apply(op).is_err() {
            return CachedLine {
                text: text.to_string(),
                end: start,
                spans: Vec::new(),
            };
        }
    }
    push(from..text.len(), claim_of(&stack));
    CachedLine {
        text: text.to_string(),
        end: (state, stack),
        spans,
    }
}

/// The claim on the innermost scope that anything claims, by the longest
/// matching prefix.
fn claim_of(stack: &ScopeStack) -> Option<Claim> {
    stack.as_slice().iter().rev().find_map(|scope| {
        CLAIMS
            .iter()
            .filter(|(prefix, _)| prefix.is_prefix_of(*scope))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, claim)| *claim)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui_textarea::CursorMove;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    /// The text of each coloured piece of `row`, with its kind.
    fn pieces(highlighter: &Highlighter, lines: &[String], row: usize) -> Vec<(String, Kind)> {
        highlighter
            .line_spans(lines, row)
            .into_iter()
            .map(|(range, kind)| (lines[row][range].to_string(), kind))
            .collect()
    }

    fn has(pieces: &[(String, Kind)], text: &str, kind: Kind) -> bool {
        pieces.iter().any(|(t, k)| t == text && *k == kind)
    }

    #[test]
    fn python_keywords_strings_comments_numbers_and_names() {
        let code = lines(
            "def greet(name):\n    # say hi\n    return f\"hi {name}\" * 2\nclass Box(Base):\n    pass",
        );
        let h = Highlighter::new(Some(Language::Python));
        let first = pieces(&h, &code, 0);
        assert!(has(&first, "def", Kind::Keyword), "{first:?}");
        assert!(has(&first, "greet", Kind::Function), "{first:?}");
        let comment = pieces(&h, &code, 1);
        assert_eq!(comment, [("# say hi".to_string(), Kind::Comment)]);
        let ret = pieces(&h, &code, 2);
        assert!(has(&ret, "return", Kind::Keyword), "{ret:?}");
        assert!(has(&ret, "2", Kind::Constant), "{ret:?}");
        assert!(
            !ret.iter().any(|(t, _)| t == "*"),
            "symbols stay plain: {ret:?}"
        );
        assert!(
            ret.iter()
                .any(|(t, k)| t.starts_with("f\"hi ") && *k == Kind::String),
            "{ret:?}"
        );
        let class = pieces(&h, &code, 3);
        assert!(has(&class, "class", Kind::Keyword), "{class:?}");
        assert!(has(&class, "Box", Kind::Type), "{class:?}");
    }

    #[test]
    fn javascript_and_typescript_and_shell() {
        let js = lines("const n = 42; // answer\nfunction f() { return \"x\"; }");
        let h = Highlighter::new(language_of("main.ts", ""));
        let first = pieces(&h, &js, 0);
        assert!(has(&first, "const", Kind::Keyword), "{first:?}");
        assert!(has(&first, "42", Kind::Constant), "{first:?}");
        assert!(has(&first, "// answer", Kind::Comment), "{first:?}");
        let second = pieces(&h, &js, 1);
        assert!(has(&second, "\"x\"", Kind::String), "{second:?}");
        assert!(has(&second, "f", Kind::Function), "{second:?}");

        let sh = lines("if [ -n \"$x\" ]; then\n  echo 'hi' # greet\nfi");
        let h = Highlighter::new(Some(Language::Shell));
        let first = pieces(&h, &sh, 0);
        assert!(has(&first, "if", Kind::Keyword), "{first:?}");
        let second = pieces(&h, &sh, 1);
        assert!(has(&second, "'hi'", Kind::String), "{second:?}");
        assert!(has(&second, "# greet", Kind::Comment), "{second:?}");
    }

    #[test]
    fn languages_by_extension_and_shebang() {
        assert_eq!(language_of("main.py", ""), Some(Language::Python));
        assert_eq!(language_of("app.TSX", ""), Some(Language::Node));
        assert_eq!(language_of("run.sh", ""), Some(Language::Shell));
        assert_eq!(
            language_of("tool", "#!/usr/bin/env python3"),
            Some(Language::Python)
        );
        assert_eq!(
            language_of("tool", "#!/bin/bash -eu"),
            Some(Language::Shell)
        );
        assert_eq!(language_of("data.csv", "a,b"), None);
        assert!(!Highlighter::new(None).is_active());
        assert!(
            Highlighter::new(None)
                .line_spans(&lines("x = 1"), 0)
                .is_empty()
        );
    }

    #[test]
    fn a_multi_line_string_colours_the_lines_after_it_and_an_edit_reparses_little() {
        let mut code = lines("x = 1\ns = \"\"\"\nnot code\n\"\"\"\ny = 2");
        for i in 0..100 {
            code.push(format!("v{i} = {i}"));
        }
        let h = Highlighter::new(Some(Language::Python));
        assert_eq!(
            pieces(&h, &code, 2),
            [("not code".to_string(), Kind::String)]
        );
        assert_eq!(
            h.update(&code, code.len(), Budget::Unlimited),
            code.len() - 3
        );
        // Editing one line inside the same context re-parses that line only.
        code[50] = "v48 = 4800".to_string();
        assert_eq!(h.update(&code, code.len(), Budget::Unlimited), 1);
        assert_eq!(h.cached_lines(), code.len());
        // Opening a string changes the state: the lines after it are parsed
        // again, up to the visible bottom only.
        code[0] = "x = \"\"\"".to_string();
        assert_eq!(h.update(&code, 10, Budget::Unlimited), 10);
        assert_eq!(
            h.cached_lines(),
            10,
            "stale lines past the edit are dropped"
        );
        // The old closing quotes now open a string, a bare one, which the
        // Python grammar reads as a docstring (a comment).
        let now = pieces(&h, &code, 4);
        assert!(
            matches!(now.as_slice(), [(text, Kind::String | Kind::Comment)] if text == "y = 2"),
            "{now:?}"
        );
    }

    #[test]
    fn a_deep_jump_is_parsed_over_several_frames() {
        let theme = crate::tui::theme::ThemeSet::builtin().themes.remove(0);
        let code: Vec<String> = (0..20 * MIN_LINES_PER_FRAME + 50)
            .map(|i| format!("x{i} = {i}"))
            .collect();
        let mut editor = TextArea::from(code);
        editor.move_cursor(CursorMove::Bottom);
        let area = Rect::new(0, 0, 30, 5);
        let h = Highlighter::new(Some(Language::Python));
        let mut frames = 0;
        loop {
            let mut buf = Buffer::empty(area);
            ratatui::widgets::Widget::render(&editor, area, &mut buf);
            h.paint(&editor, area, &mut buf, &theme);
            frames += 1;
            let last_row_coloured =
                (0..area.width).any(|x| buf[(x, 4)].fg == theme.syntax(Kind::Constant));
            if !h.catching_up() {
                assert!(last_row_coloured, "caught up, so coloured");
                break;
            }
            assert!(!h.catching_up(), "reading it clears it");
            assert!(!last_row_coloured, "behind, so the window is plain");
            assert!(
                frames <= 21,
                "at least 100 lines a frame, yet {frames} frames"
            );
        }
        assert!(frames > 1, "a frame's budget is far less than 2,050 lines");
        assert_eq!(h.cached_lines(), 20 * MIN_LINES_PER_FRAME + 50);
    }

    #[test]
    fn paint_colours_text_cells_but_not_the_cursor_or_gutter() {
        let theme = crate::tui::theme::ThemeSet::builtin().themes.remove(0);
        let mut editor = TextArea::from(["def f():", "\treturn 1"]);
        editor.set_line_number_style(ratatui::style::Style::new());
        editor.move_cursor(CursorMove::Jump(1, 1));
        let area = Rect::new(0, 0, 20, 3);
        let mut buf = Buffer::empty(area);
        ratatui::widgets::Widget::render(&editor, area, &mut buf);
        Highlighter::new(Some(Language::Python)).paint(&editor, area, &mut buf, &theme);
        let keyword = theme.syntax(Kind::Keyword);
        // Gutter " 1 " is three cells; `def` follows.
        assert_eq!(buf[(0, 0)].fg, Color::Reset, "the gutter is left alone");
        assert_eq!(buf[(3, 0)].symbol(), "d");
        assert_eq!(buf[(3, 0)].fg, keyword);
        assert_eq!(buf[(7, 0)].fg, theme.syntax(Kind::Function));
        // The tab takes four cells, so `return` starts at 3 + 4 = 7; its
        // first cell holds the cursor and keeps the cursor's look.
        assert_eq!(buf[(7, 1)].symbol(), "r");
        assert!(buf[(7, 1)].modifier.contains(Modifier::REVERSED));
        assert_eq!(buf[(7, 1)].fg, Color::Reset);
        assert_eq!(buf[(8, 1)].fg, keyword);
        assert_eq!(buf[(14, 1)].fg, theme.syntax(Kind::Constant));
    }
}
