//! A run's output as a terminal shows it, kept as a scrollback log.
//!
//! Bytes go through `vte` (alacritty's terminal parser, which `vt100` is
//! built on): it decodes UTF-8 across chunk boundaries and splits escape
//! sequences out. What the sequences do is applied here to a log of lines
//! rather than to a fixed grid, so that the scrollback reflows when the pane
//! is resized, wraps or scrolls sideways at the user's choice, costs about
//! its text in memory, and saves back to the program's own bytes:
//! - SGR colours and styles (16, 256 and 24-bit colours, bold, dim, italic,
//!   underline, reverse, crossed out);
//! - `\r` returns to the start of the line, so a redrawn progress bar
//!   overwrites itself; `\n` starts the next line (as a terminal's `onlcr`
//!   makes it); `\b` steps back; tabs are kept as tabs and drawn to the
//!   next multiple of 8;
//! - cursor movement within the log (CSI A/B/C/D/E/F/G) and erasing in line
//!   and below (CSI K, CSI J) for multi-line progress displays.
//!
//! Other sequences (cursor addressing, screen modes, OSC titles) are dropped.
//! Columns are counted in characters: a wide character moved over with CSI
//! C/D counts as one column, unlike in a terminal.
//!
//! stdout and stderr each have their own parser and pen, so a character or a
//! sequence split between two chunks of one stream is whole even when the
//! other stream writes in between, and a colour left set on one stream does
//! not leak into the other. Both write at the same cursor, as they would in
//! a terminal.

use std::collections::{HashMap, VecDeque};

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use unicode_width::UnicodeWidthChar as _;

use crate::engine::exec::Stream;

/// Lines kept; older ones scroll away.
pub const SCROLLBACK_LINES: usize = 10_000;
/// Characters kept per line; past it a line's output is dropped, so one
/// endless line cannot grow memory.
pub const MAX_LINE_LEN: usize = 4096;
/// Columns between tab stops.
const TAB_WIDTH: usize = 8;
/// Distinct styles kept per log; later new styles draw plain.
const MAX_PENS: usize = 4096;
/// Pen ids of typed input not yet sent and of the cursor after it, drawn
/// over the log but never stored in it.
const OVERLAY_INPUT: u16 = u16::MAX;
const OVERLAY_CURSOR: u16 = u16::MAX - 1;

/// Where the Output pane draws the log within its `pane` area: inside its
/// border, above its one-row status line. Runs are told this size.
pub fn text_area(pane: Rect) -> Rect {
    let inner = pane.inner(ratatui::layout::Margin::new(1, 1));
    Rect {
        height: inner.height.saturating_sub(1),
        ..inner
    }
}

/// Who wrote a character: the run's two streams, or the user's typed input
/// echoed as a terminal echoes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Stdout,
    Stderr,
    Input,
}

impl From<Stream> for Source {
    fn from(stream: Stream) -> Self {
        match stream {
            Stream::Stdout => Source::Stdout,
            Stream::Stderr => Source::Stderr,
        }
    }
}

/// The colours of text that set none itself, by source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceColors {
    pub stdout: Color,
    pub stderr: Color,
    pub input: Color,
}

/// A style and who wrote with it; interned per log as a `u16` id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Pen {
    style: Style,
    source: Source,
}

/// One line of the log: its text and the pens of its characters as runs
/// `(first character, pen id)`, sorted, the first starting at 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct LogLine {
    text: String,
    /// Characters in `text`; equal to `text.len()` while it is ASCII.
    chars: usize,
    runs: Vec<(usize, u16)>,
}

impl LogLine {
    fn byte_at(&self, col: usize) -> usize {
        if self.chars == self.text.len() {
            return col.min(self.text.len());
        }
        self.text
            .char_indices()
            .nth(col)
            .map_or(self.text.len(), |(index, _)| index)
    }

    fn pen_at(&self, col: usize) -> Option<u16> {
        let index = self.runs.partition_point(|(start, _)| *start <= col);
        index.checked_sub(1).map(|i| self.runs[i].1)
    }

    /// Writes `c` at character column `col`, padding with spaces first.
    fn put(&mut self, col: usize, c: char, pen: u16) {
        if col >= MAX_LINE_LEN {
            return;
        }
        while self.chars < col {
            self.push(' ', pen);
        }
        if col == self.chars {
            self.push(c, pen);
            return;
        }
        let start = self.byte_at(col);
        let end = start + self.text[start..].chars().next().map_or(0, char::len_utf8);
        let mut buf = [0; 4];
        self.text.replace_range(start..end, c.encode_utf8(&mut buf));
        if self.pen_at(col) != Some(pen) {
            self.set_pens(col, col + 1, pen);
        }
    }

    fn push(&mut self, c: char, pen: u16) {
        self.text.push(c);
        if self.runs.last().map(|(_, last)| *last) != Some(pen) {
            self.runs.push((self.chars, pen));
        }
        self.chars += 1;
    }

    /// Gives characters `start..end` (within the line) the pen `pen`.
    fn set_pens(&mut self, start: usize, end: usize, pen: u16) {
        let after = self.pen_at(end).filter(|_| end < self.chars);
        self.runs
            .retain(|(first, _)| *first < start || *first > end);
        let at = self.runs.partition_point(|(first, _)| *first < start);
        self.runs.insert(at, (start, pen));
        if let Some(after) = after
            && self.runs.get(at + 1).is_none_or(|(first, _)| *first != end)
        {
            self.runs.insert(at + 1, (end, after));
        }
        self.runs.dedup_by(|later, earlier| later.1 == earlier.1);
    }

    /// Drops everything from character `col` on.
    fn truncate(&mut self, col: usize) {
        if col >= self.chars {
            return;
        }
        let byte = self.byte_at(col);
        self.text.truncate(byte);
        self.chars = col;
        self.runs.retain(|(first, _)| *first < col);
    }

    /// Blanks characters `0..=col`, as erasing to the cursor does.
    fn blank_to(&mut self, col: usize, pen: u16) {
        for at in 0..=col.min(self.chars.saturating_sub(1)) {
            self.put(at, ' ', pen);
        }
    }

    /// The line as `(text, pen)` pieces.
    fn pieces(&self) -> impl Iterator<Item = (&str, u16)> {
        let mut starts = self.runs.iter().peekable();
        let mut text = self.text.as_str();
        std::iter::from_fn(move || {
            let (first, pen) = *starts.next()?;
            let next = starts.peek().map_or(self.chars, |(next, _)| *next);
            let len: usize = text.chars().take(next - first).map(char::len_utf8).sum();
            let (piece, rest) = text.split_at(len);
            text = rest;
            Some((piece, pen))
        })
    }

    /// Display columns the line takes, tabs expanded.
    fn width(&self) -> usize {
        let mut col = 0;
        for c in self.text.chars() {
            col += char_width(c, col);
        }
        col
    }
}

fn char_width(c: char, col: usize) -> usize {
    if c == '\t' {
        TAB_WIDTH - col % TAB_WIDTH
    } else {
        c.width().unwrap_or(0)
    }
}

/// Places characters on rows `width` columns wide, as a terminal wraps:
/// a character that does not fit starts the next row; a tab stops at the
/// row's end.
struct Wrapper {
    width: usize,
    used: usize,
    rows: usize,
}

impl Wrapper {
    fn new(width: u16) -> Self {
        Self {
            width: usize::from(width.max(1)),
            used: 0,
            rows: 1,
        }
    }

    /// The columns `c` takes and whether it starts a new row.
    fn place(&mut self, c: char) -> (usize, bool) {
        let mut new_row = false;
        let mut w = self.width_of(c);
        if self.used + w > self.width && self.used > 0 {
            self.used = 0;
            self.rows += 1;
            new_row = true;
            w = self.width_of(c);
        }
        self.used += w;
        (w, new_row)
    }

    fn width_of(&self, c: char) -> usize {
        if c == '\t' {
            char_width(c, self.used).min(self.width.saturating_sub(self.used).max(1))
        } else {
            char_width(c, self.used)
        }
    }
}

/// Where the shown part of the log ends: row `row` of the line numbered
/// `line` (counting lines dropped off the top), as the bottom row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Anchor {
    line: usize,
    row: usize,
}

/// The lines, cursor and pens the parsers write to.
#[derive(Debug, Default)]
struct Screen {
    lines: VecDeque<LogLine>,
    /// Lines dropped off the top.
    dropped: usize,
    /// The cursor: an index into `lines` (the log is empty until the first
    /// character arrives) and a character column.
    row: usize,
    col: usize,
    pens: Vec<Pen>,
    pen_ids: HashMap<Pen, u16>,
}

impl Screen {
    fn pen_id(&mut self, pen: Pen) -> u16 {
        if let Some(id) = self.pen_ids.get(&pen) {
            return *id;
        }
        if self.pens.len() >= MAX_PENS {
            return self.pen_id(Pen {
                style: Style::new(),
                source: pen.source,
            });
        }
        let id = self.pens.len() as u16;
        self.pens.push(pen);
        self.pen_ids.insert(pen, id);
        id
    }

    fn cursor_line(&mut self) -> &mut LogLine {
        if self.lines.is_empty() {
            self.lines.push_back(LogLine::default());
            self.row = 0;
        }
        let last = self.lines.len() - 1;
        let row = self.row.min(last);
        &mut self.lines[row]
    }

    fn print(&mut self, c: char, pen: u16) {
        let col = self.col;
        self.cursor_line().put(col, c, pen);
        self.col = (col + 1).min(MAX_LINE_LEN);
    }

    fn newline(&mut self) {
        self.col = 0;
        if self.lines.is_empty() {
            self.cursor_line();
        }
        if self.row + 1 < self.lines.len() {
            self.row += 1;
            return;
        }
        self.lines.push_back(LogLine::default());
        self.row = self.lines.len() - 1;
        if self.lines.len() > SCROLLBACK_LINES {
            self.lines.pop_front();
            self.dropped += 1;
            self.row -= 1;
        }
    }

    fn up(&mut self, rows: usize) {
        self.row = self.row.saturating_sub(rows);
    }

    fn down(&mut self, rows: usize) {
        self.row = (self.row + rows).min(self.lines.len().saturating_sub(1));
    }

    /// CSI K: 0 erases to the end of the line, 1 to the cursor, 2 all of it.
    fn erase_in_line(&mut self, mode: u16, pen: u16) {
        let col = self.col;
        let line = self.cursor_line();
        match mode {
            0 => line.truncate(col),
            1 => line.blank_to(col, pen),
            2 => line.truncate(0),
            _ => {}
        }
    }

    /// CSI J 0: erases from the cursor to the end of the log. Erasing the
    /// whole screen (1, 2, 3) has no meaning in a log and is ignored.
    fn erase_below(&mut self, mode: u16) {
        if mode == 0 && !self.lines.is_empty() {
            let col = self.col;
            self.cursor_line().truncate(col);
            self.lines.truncate(self.row + 1);
        }
    }
}

/// One stream's SGR state.
#[derive(Debug, Clone, Copy)]
struct PenState {
    style: Style,
    id: Option<u16>,
}

/// The [`vte::Perform`] of one stream: its pen on the shared screen.
struct Writer<'a> {
    screen: &'a mut Screen,
    pen: &'a mut PenState,
    source: Source,
}

impl Writer<'_> {
    fn pen(&mut self) -> u16 {
        if let Some(id) = self.pen.id {
            return id;
        }
        let id = self.screen.pen_id(Pen {
            style: self.pen.style,
            source: self.source,
        });
        self.pen.id = Some(id);
        id
    }
}

impl vte::Perform for Writer<'_> {
    fn print(&mut self, c: char) {
        if c == '\u{7f}' {
            return;
        }
        let pen = self.pen();
        self.screen.print(c, pen);
    }

    fn execute(&mut self, byte: u8) {
        match byte {
            b'\n' | 0x0b | 0x0c => self.screen.newline(),
            b'\r' => self.screen.col = 0,
            0x08 => self.screen.col = self.screen.col.saturating_sub(1),
            b'\t' => {
                let pen = self.pen();
                self.screen.print('\t', pen);
            }
            _ => {}
        }
    }

    fn csi_dispatch(
        &mut self,
        params: &vte::Params,
        intermediates: &[u8],
        ignore: bool,
        action: char,
    ) {
        if ignore || !intermediates.is_empty() {
            return;
        }
        // Private sequences (`CSI ? 25 l` and the like) change modes a log has not.
        let first = params.iter().next().and_then(|p| p.first()).copied();
        let count = usize::from(first.unwrap_or(1).max(1));
        let screen = &mut *self.screen;
        match action {
            'm' => apply_sgr(&mut self.pen.style, params, &mut self.pen.id),
            'A' => screen.up(count),
            'B' => screen.down(count),
            'C' => screen.col = (screen.col + count).min(MAX_LINE_LEN),
            'D' => screen.col = screen.col.saturating_sub(count),
            'E' => {
                screen.down(count);
                screen.col = 0;
            }
            'F' => {
                screen.up(count);
                screen.col = 0;
            }
            'G' => screen.col = (count - 1).min(MAX_LINE_LEN),
            'K' => {
                let pen = self.pen();
                self.screen.erase_in_line(first.unwrap_or(0), pen);
            }
            'J' => screen.erase_below(first.unwrap_or(0)),
            _ => {}
        }
    }
}

/// Applies one SGR sequence (`CSI … m`) to `style`; `id` is forgotten when
/// the style changes.
fn apply_sgr(style: &mut Style, params: &vte::Params, id: &mut Option<u16>) {
    let before = *style;
    if params.is_empty() {
        *style = Style::new();
    }
    let mut params = params.iter();
    while let Some(param) = params.next() {
        let code = param.first().copied().unwrap_or(0);
        match code {
            0 => *style = Style::new(),
            1 => set(style, Modifier::BOLD),
            2 => set(style, Modifier::DIM),
            3 => set(style, Modifier::ITALIC),
            // `4:0` is "no underline" in the colon form.
            4 if param.get(1) == Some(&0) => unset(style, Modifier::UNDERLINED),
            4 | 21 => set(style, Modifier::UNDERLINED),
            5 => set(style, Modifier::SLOW_BLINK),
            6 => set(style, Modifier::RAPID_BLINK),
            7 => set(style, Modifier::REVERSED),
            8 => set(style, Modifier::HIDDEN),
            9 => set(style, Modifier::CROSSED_OUT),
            22 => unset(style, Modifier::BOLD | Modifier::DIM),
            23 => unset(style, Modifier::ITALIC),
            24 => unset(style, Modifier::UNDERLINED),
            25 => unset(style, Modifier::SLOW_BLINK | Modifier::RAPID_BLINK),
            27 => unset(style, Modifier::REVERSED),
            28 => unset(style, Modifier::HIDDEN),
            29 => unset(style, Modifier::CROSSED_OUT),
            30..=37 => style.fg = Some(Color::Indexed((code - 30) as u8)),
            38 => style.fg = extended_color(param, &mut params),
            39 => style.fg = None,
            40..=47 => style.bg = Some(Color::Indexed((code - 40) as u8)),
            48 => style.bg = extended_color(param, &mut params),
            49 => style.bg = None,
            90..=97 => style.fg = Some(Color::Indexed((code - 90 + 8) as u8)),
            100..=107 => style.bg = Some(Color::Indexed((code - 100 + 8) as u8)),
            _ => {}
        }
    }
    // Base colours as ratatui's named ones, so themes and snapshots read them.
    for color in [&mut style.fg, &mut style.bg] {
        if let Some(Color::Indexed(index)) = *color
            && index < 16
        {
            *color = Some(NAMED[usize::from(index)]);
        }
    }
    if *style != before {
        *id = None;
    }
}

fn set(style: &mut Style, modifier: Modifier) {
    style.add_modifier.insert(modifier);
}

// A pen's modifiers are absolute: removing one leaves no "sub" modifier
// behind, so equal pens compare equal.
fn unset(style: &mut Style, modifier: Modifier) {
    style.add_modifier.remove(modifier);
}

const NAMED: [Color; 16] = [
    Color::Black,
    Color::Red,
    Color::Green,
    Color::Yellow,
    Color::Blue,
    Color::Magenta,
    Color::Cyan,
    Color::Gray,
    Color::DarkGray,
    Color::LightRed,
    Color::LightGreen,
    Color::LightYellow,
    Color::LightBlue,
    Color::LightMagenta,
    Color::LightCyan,
    Color::White,
];

/// The colour of `38`/`48`, in the colon form (`38:5:n`, `38:2::r:g:b`) or
/// the semicolon form (`38;5;n`, `38;2;r;g;b`); `None` (the default
/// colour) when malformed.
fn extended_color<'p>(param: &[u16], rest: &mut impl Iterator<Item = &'p [u16]>) -> Option<Color> {
    let byte = |value: u16| u8::try_from(value).ok();
    if param.len() > 1 {
        return match param.get(1) {
            Some(5) => param.get(2).copied().and_then(byte).map(Color::Indexed),
            Some(2) => {
                // The colour space id is optional: 38:2:r:g:b or 38:2::r:g:b.
                let rgb = &param[param.len().saturating_sub(3)..];
                match rgb {
                    [r, g, b] if param.len() >= 5 => {
                        Some(Color::Rgb(byte(*r)?, byte(*g)?, byte(*b)?))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
    }
    let mut next = || rest.next().and_then(|p| p.first().copied());
    match next() {
        Some(5) => next().and_then(byte).map(Color::Indexed),
        Some(2) => {
            let (r, g, b) = (next(), next(), next());
            Some(Color::Rgb(byte(r?)?, byte(g?)?, byte(b?)?))
        }
        _ => None,
    }
}

/// A run's output: a bounded scrollback of styled lines, the cursor's line
/// always among them (so a progress line redrawn with `\r` shows live), and
/// the reader's place.
#[derive(Default)]
pub struct TerminalLog {
    screen: Screen,
    parsers: [vte::Parser; 2],
    pens: [Option<PenState>; 2],
    /// `None` follows new output.
    anchor: Option<Anchor>,
    /// Long lines wrap at the pane's edge; otherwise they are cut there and
    /// the pane scrolls sideways.
    pub wrap: bool,
    /// Display columns scrolled right, while not wrapping.
    pub hscroll: usize,
}

impl std::fmt::Debug for TerminalLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TerminalLog")
            .field("lines", &self.screen.lines.len())
            .field("dropped", &self.screen.dropped)
            .field("cursor", &(self.screen.row, self.screen.col))
            .field("anchor", &self.anchor)
            .field("wrap", &self.wrap)
            .field("hscroll", &self.hscroll)
            .finish()
    }
}

impl TerminalLog {
    /// An empty log that wraps long lines.
    pub fn new() -> Self {
        Self {
            wrap: true,
            ..Self::default()
        }
    }

    /// Empties the log for a new run; the wrap choice stays.
    pub fn clear(&mut self) {
        *self = Self {
            wrap: self.wrap,
            ..Self::default()
        };
    }

    /// Feeds a chunk of one stream's bytes, as they arrived.
    pub fn push(&mut self, stream: Stream, data: &[u8]) {
        let slot = match stream {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        };
        let pen = self.pens[slot].get_or_insert(PenState {
            style: Style::new(),
            id: None,
        });
        let mut writer = Writer {
            screen: &mut self.screen,
            pen,
            source: stream.into(),
        };
        self.parsers[slot].advance(&mut writer, data);
    }

    /// Echoes a line the user typed for the program's stdin at the cursor,
    /// then starts a new line, as a terminal in line mode does.
    pub fn echo_input(&mut self, text: &str) {
        let pen = self.screen.pen_id(Pen {
            style: Style::new(),
            source: Source::Input,
        });
        for c in text.chars().filter(|c| !c.is_control()) {
            self.screen.print(c, pen);
        }
        self.screen.newline();
    }

    /// Lines kept, the cursor's line included.
    pub fn len(&self) -> usize {
        self.screen.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.screen.lines.is_empty()
    }

    /// Lines dropped off the top of the scrollback.
    pub fn dropped(&self) -> usize {
        self.screen.dropped
    }

    /// Everything kept, as plain text: lines joined by `\n`, no escape
    /// sequences. For output that moves no cursor back (no `\r`, `\b` or
    /// CSI) and fits the scrollback, it equals the program's bytes
    /// (invalid UTF-8 aside, which reads as U+FFFD).
    pub fn text(&self) -> String {
        let mut text = String::new();
        for (index, line) in self.screen.lines.iter().enumerate() {
            if index > 0 {
                text.push('\n');
            }
            text.push_str(&line.text);
        }
        text
    }

    /// The text of each kept line, oldest first.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.screen.lines.iter().map(|line| line.text.as_str())
    }

    pub fn following(&self) -> bool {
        self.anchor.is_none()
    }

    /// Lines from the bottom one shown to the last one: 0 while following.
    pub fn lines_back(&self) -> usize {
        let last = self.screen.dropped + self.len().saturating_sub(1);
        self.anchor.map_or(0, |anchor| {
            last - anchor.line.clamp(self.screen.dropped, last)
        })
    }

    /// The text of the bottom line shown.
    pub fn bottom_line(&self) -> Option<&str> {
        let last = self.screen.dropped + self.len().checked_sub(1)?;
        let line = self
            .anchor
            .map_or(last, |anchor| anchor.line.clamp(self.screen.dropped, last));
        self.screen
            .lines
            .get(line - self.screen.dropped)
            .map(|line| line.text.as_str())
    }

    pub fn follow(&mut self) {
        self.anchor = None;
    }

    /// Toggles wrapping long lines; the view follows again.
    pub fn toggle_wrap(&mut self) {
        self.wrap = !self.wrap;
        self.hscroll = 0;
        self.anchor = None;
    }

    /// Scrolls sideways by `columns` (negative: left), while not wrapping.
    pub fn scroll_sideways(&mut self, columns: isize) {
        if !self.wrap {
            self.hscroll = self.hscroll.saturating_add_signed(columns);
            let widest = self.screen.lines.iter().map(LogLine::width).max();
            self.hscroll = self.hscroll.min(widest.unwrap_or(0));
        }
    }

    /// Rows `line` takes at `width` columns.
    fn rows_of(&self, line: &LogLine, width: u16) -> usize {
        if !self.wrap {
            return 1;
        }
        let mut wrapper = Wrapper::new(width);
        for c in line.text.chars() {
            wrapper.place(c);
        }
        wrapper.rows
    }

    /// The last row of the log.
    fn end(&self, width: u16) -> Option<Anchor> {
        let last = self.screen.lines.back()?;
        Some(Anchor {
            line: self.screen.dropped + self.screen.lines.len() - 1,
            row: self.rows_of(last, width) - 1,
        })
    }

    /// The bottom row shown: the anchor, or the end of the log.
    fn bottom(&self, width: u16) -> Option<Anchor> {
        let end = self.end(width)?;
        let Some(anchor) = self.anchor else {
            return Some(end);
        };
        let dropped = self.screen.dropped;
        if anchor.line < dropped {
            return Some(Anchor {
                line: dropped,
                row: 0,
            });
        }
        let line = anchor.line.min(end.line);
        let rows = self.rows_of(&self.screen.lines[line - dropped], width);
        Some(Anchor {
            line,
            row: anchor.row.min(rows - 1),
        })
    }

    /// Scrolls up `rows` rows of the pane, `width` columns wide.
    pub fn scroll_up(&mut self, rows: usize, width: u16) {
        let Some(mut at) = self.bottom(width) else {
            return;
        };
        let dropped = self.screen.dropped;
        let mut rows = rows;
        while rows > 0 {
            if at.row >= rows {
                at.row -= rows;
                break;
            }
            if at.line == dropped {
                at.row = 0;
                break;
            }
            rows -= at.row + 1;
            at.line -= 1;
            at.row = self.rows_of(&self.screen.lines[at.line - dropped], width) - 1;
        }
        self.anchor = Some(at);
    }

    /// Scrolls down `rows` rows; reaching the end follows again.
    pub fn scroll_down(&mut self, rows: usize, width: u16) {
        let (Some(mut at), Some(end)) = (self.bottom(width), self.end(width)) else {
            return;
        };
        let dropped = self.screen.dropped;
        let mut rows = rows;
        while rows > 0 && at != end {
            let line_rows = self.rows_of(&self.screen.lines[at.line - dropped], width);
            if at.row + rows < line_rows {
                at.row += rows;
                break;
            }
            rows -= line_rows - at.row;
            if at.line == end.line {
                at = end;
                break;
            }
            at.line += 1;
            at.row = 0;
        }
        self.anchor = if at == end { None } else { Some(at) };
    }

    /// Scrolls to the top of the log.
    pub fn scroll_to_top(&mut self) {
        if !self.is_empty() {
            self.anchor = Some(Anchor {
                line: self.screen.dropped,
                row: 0,
            });
        }
    }

    /// Scrolls so the nearest line above the bottom one shown that contains
    /// `needle` is the bottom one, its match in view; false when there is
    /// none.
    pub fn find_back(&mut self, needle: &str, width: u16) -> bool {
        let Some(bottom) = self.bottom(width) else {
            return false;
        };
        if needle.is_empty() {
            return false;
        }
        let dropped = self.screen.dropped;
        let found = self
            .screen
            .lines
            .range(..bottom.line - dropped)
            .rposition(|line| line.text.contains(needle));
        let Some(index) = found else {
            return false;
        };
        let line = &self.screen.lines[index];
        let row = if self.wrap {
            let at = line.text.find(needle).unwrap_or(0);
            let mut wrapper = Wrapper::new(width);
            for c in line.text[..=at.min(line.text.len().saturating_sub(1))].chars() {
                wrapper.place(c);
            }
            wrapper.rows - 1
        } else {
            0
        };
        self.anchor = Some(Anchor {
            line: dropped + index,
            row,
        });
        true
    }

    /// The rows that fill a `width` x `height` view at the current place,
    /// top to bottom. `pending` is typed input not yet sent, drawn at the
    /// cursor with a block cursor after it while following.
    pub fn view(
        &self,
        width: u16,
        height: u16,
        colors: SourceColors,
        pending: Option<&str>,
    ) -> Vec<Line<'static>> {
        let pending = pending.filter(|_| self.following());
        let overlay = pending.map(|text| {
            let mut line = match self.screen.lines.get(self.screen.row) {
                Some(line) => line.clone(),
                None => LogLine::default(),
            };
            let mut col = self.screen.col;
            for c in text.chars() {
                line.put(col, c, OVERLAY_INPUT);
                col += 1;
            }
            line.put(col, ' ', OVERLAY_CURSOR);
            line
        });
        let Some(bottom) = self.bottom(width) else {
            return overlay
                .map(|line| self.rows(&line, width, colors))
                .unwrap_or_default();
        };
        let dropped = self.screen.dropped;
        let height = usize::from(height);
        let mut rows: Vec<Line<'static>> = Vec::new();
        let mut index = bottom.line - dropped;
        let mut first = true;
        while rows.len() < height {
            let line = match &overlay {
                Some(line) if index == self.screen.row => line,
                _ => &self.screen.lines[index],
            };
            let mut line_rows = self.rows(line, width, colors);
            if first {
                line_rows.truncate(bottom.row + 1);
                first = false;
            }
            while rows.len() < height
                && let Some(row) = line_rows.pop()
            {
                rows.push(row);
            }
            if index == 0 {
                break;
            }
            index -= 1;
        }
        rows.reverse();
        rows
    }

    fn style_of(&self, pen: u16, colors: SourceColors) -> Style {
        let (style, source) = match pen {
            OVERLAY_INPUT => (Style::new(), Source::Input),
            OVERLAY_CURSOR => (
                Style::new().add_modifier(Modifier::REVERSED),
                Source::Stdout,
            ),
            _ => match self.screen.pens.get(usize::from(pen)) {
                Some(pen) => (pen.style, pen.source),
                None => (Style::new(), Source::Stdout),
            },
        };
        if style.fg.is_some() {
            return style;
        }
        style.fg(match source {
            Source::Stdout => colors.stdout,
            Source::Stderr => colors.stderr,
            Source::Input => colors.input,
        })
    }

    /// A line as rows of the view: wrapped at `width`, or cut to the
    /// `hscroll..hscroll + width` columns.
    fn rows(&self, line: &LogLine, width: u16, colors: SourceColors) -> Vec<Line<'static>> {
        let (first_col, end_col) = (self.hscroll, self.hscroll + usize::from(width.max(1)));
        let mut rows = vec![Vec::<Span<'static>>::new()];
        let mut wrapper = Wrapper::new(width);
        let mut col = 0;
        for (piece, pen) in line.pieces() {
            let style = self.style_of(pen, colors);
            let mut text = String::new();
            for c in piece.chars() {
                let w = if self.wrap {
                    let (w, new_row) = wrapper.place(c);
                    if new_row {
                        if let Some(row) = rows.last_mut()
                            && !text.is_empty()
                        {
                            row.push(Span::styled(std::mem::take(&mut text), style));
                        }
                        rows.push(Vec::new());
                    }
                    w
                } else {
                    let w = char_width(c, col);
                    let start = col;
                    col += w;
                    if start < first_col || col > end_col {
                        continue;
                    }
                    w
                };
                if c == '\t' {
                    text.extend(std::iter::repeat_n(' ', w));
                } else {
                    text.push(c);
                }
            }
            if let Some(row) = rows.last_mut()
                && !text.is_empty()
            {
                row.push(Span::styled(text, style));
            }
        }
        rows.into_iter().map(Line::from).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLORS: SourceColors = SourceColors {
        stdout: Color::White,
        stderr: Color::LightRed,
        input: Color::Cyan,
    };

    fn log_of(chunks: &[(Stream, &[u8])]) -> TerminalLog {
        let mut log = TerminalLog::new();
        for (stream, data) in chunks {
            log.push(*stream, data);
        }
        log
    }

    /// The rows as text, the way the pane shows them.
    fn shown(log: &TerminalLog, width: u16, height: u16) -> Vec<String> {
        log.view(width, height, COLORS, None)
            .iter()
            .map(|line| line.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect()
    }

    /// `(text, style)` of each span of the rows, empty spans left out.
    fn spans(log: &TerminalLog, width: u16, height: u16) -> Vec<(String, Style)> {
        log.view(width, height, COLORS, None)
            .iter()
            .flat_map(|line| line.spans.iter())
            .map(|span| (span.content.to_string(), span.style))
            .collect()
    }

    #[test]
    fn sgr_colours_and_styles_are_rendered_not_printed() {
        let log = log_of(&[(
            Stream::Stdout,
            b"\x1b[31mred\x1b[0m plain \x1b[1;4mbold-under\x1b[22;24m \x1b[38;5;208mo\x1b[38;2;1;2;3mrgb\x1b[92mbright\x1b[m\n",
        )]);
        assert_eq!(log.text(), "red plain bold-under orgbbright\n");
        let white = Style::new().fg(Color::White);
        assert_eq!(
            spans(&log, 80, 2),
            [
                ("red".to_string(), Style::new().fg(Color::Red)),
                (" plain ".to_string(), white),
                (
                    "bold-under".to_string(),
                    white.add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
                ),
                (" ".to_string(), white),
                ("o".to_string(), Style::new().fg(Color::Indexed(208))),
                ("rgb".to_string(), Style::new().fg(Color::Rgb(1, 2, 3))),
                ("bright".to_string(), Style::new().fg(Color::LightGreen)),
            ]
        );
    }

    #[test]
    fn colon_form_colours_and_background() {
        let log = log_of(&[(Stream::Stdout, b"\x1b[38:2::9:8:7;44mx\x1b[4:0m")]);
        assert_eq!(
            spans(&log, 10, 1),
            [(
                "x".to_string(),
                Style::new().fg(Color::Rgb(9, 8, 7)).bg(Color::Blue)
            )]
        );
    }

    #[test]
    fn carriage_return_overwrites_the_line() {
        let log = log_of(&[(
            Stream::Stdout,
            b"before\nProgress 10%\rProgress 50%\rProgress 100%\nafter\n",
        )]);
        assert_eq!(log.text(), "before\nProgress 100%\nafter\n");
        // A shorter redraw leaves the tail, as in a terminal.
        let log = log_of(&[(Stream::Stdout, b"abcdef\rXY")]);
        assert_eq!(log.text(), "XYcdef");
    }

    /// tqdm's own bytes (to stderr, redrawn with `\r`), three updates and
    /// its closing newline, split where its writes were.
    #[test]
    fn a_tqdm_bar_ends_as_one_line() {
        let writes: [&[u8]; 5] = [
            "\r  0%|          | 0/4 [00:00<?, ?it/s]".as_bytes(),
            "\r 25%|\u{2588}\u{2588}\u{258c}       | 1/4 [00:00<00:00,  9.96it/s]".as_bytes(),
            "\r 50%|\u{2588}\u{2588}\u{2588}\u{2588}\u{2588}     | 2/4 [00:00<00:00,  9.93it/s]"
                .as_bytes(),
            "\r100%|\u{2588}\u{2588}\u{2588}\u{2588}\u{2588}\u{2588}\u{2588}\u{2588}\u{2588}\u{2588}| 4/4 [00:00<00:00,  9.91it/s]"
                .as_bytes(),
            b"\n",
        ];
        let mut log = TerminalLog::new();
        log.push(Stream::Stdout, b"training\n");
        for write in writes {
            log.push(Stream::Stderr, write);
        }
        log.push(Stream::Stdout, b"done\n");
        let lines: Vec<_> = log.lines().collect();
        assert_eq!(
            lines,
            [
                "training",
                "100%|\u{2588}\u{2588}\u{2588}\u{2588}\u{2588}\u{2588}\u{2588}\u{2588}\u{2588}\u{2588}| 4/4 [00:00<00:00,  9.91it/s]",
                "done",
                ""
            ]
        );
    }

    #[test]
    fn the_partial_line_shows_live_whatever_it_ends_with() {
        let mut log = TerminalLog::new();
        log.push(Stream::Stdout, b"downloading\n");
        log.push(Stream::Stdout, b"  0%");
        assert_eq!(shown(&log, 40, 5), ["downloading", "  0%"]);
        log.push(Stream::Stdout, b"\r 25%");
        assert_eq!(shown(&log, 40, 5), ["downloading", " 25%"]);
        log.push(Stream::Stdout, b"\r 50%\r");
        assert_eq!(shown(&log, 40, 5), ["downloading", " 50%"]);
    }

    const JAPANESE: &str = "日本語のテキスト、一行目です。\n二行目：かな・カナ・漢字が混ざる。\n三行目は絵文字も🎌含む\n";

    #[test]
    fn multi_byte_characters_split_at_every_offset_decode_whole() {
        let bytes = JAPANESE.as_bytes();
        for cut in 0..=bytes.len() {
            let log = log_of(&[
                (Stream::Stdout, &bytes[..cut]),
                (Stream::Stdout, &bytes[cut..]),
            ]);
            assert_eq!(log.text(), JAPANESE, "split at byte {cut}");
        }
        let mut log = TerminalLog::new();
        for byte in bytes {
            log.push(Stream::Stdout, std::slice::from_ref(byte));
        }
        assert_eq!(log.text(), JAPANESE, "one byte at a time");
    }

    #[test]
    fn a_character_split_around_the_other_stream_decodes_whole() {
        let word = "語".as_bytes();
        let log = log_of(&[
            (Stream::Stdout, &word[..1]),
            (Stream::Stderr, b"E"),
            (Stream::Stdout, &word[1..]),
        ]);
        assert_eq!(log.text(), "E語");
    }

    #[test]
    fn invalid_bytes_read_as_replacement_without_eating_the_next() {
        let log = log_of(&[(Stream::Stdout, b"a\xffb\xe6\nc")]);
        assert_eq!(log.text(), "a\u{fffd}b\u{fffd}\nc");
    }

    #[test]
    fn plain_output_saves_as_its_bytes() {
        let plain =
            "tab\tseparated\ttext  \ntrailing spaces   \n\nünïcödé and 日本語\nno final newline";
        let bytes = plain.as_bytes();
        for cut in [1, 7, 30, bytes.len() / 2] {
            let log = log_of(&[
                (Stream::Stdout, &bytes[..cut]),
                (Stream::Stdout, &bytes[cut..]),
            ]);
            assert_eq!(log.text(), plain);
        }
        let coloured = log_of(&[(
            Stream::Stdout,
            b"\x1b[1;31merror\x1b[0m: \x1b[4mx\x1b[24m\n",
        )]);
        assert_eq!(coloured.text(), "error: x\n");
    }

    #[test]
    fn long_lines_wrap_or_scroll_sideways() {
        let mut log = log_of(&[(Stream::Stdout, b"0123456789abcdefghijKLMNO\nshort\n")]);
        assert_eq!(
            shown(&log, 10, 10),
            ["0123456789", "abcdefghij", "KLMNO", "short", ""]
        );
        log.toggle_wrap();
        assert!(!log.wrap);
        assert_eq!(shown(&log, 10, 10), ["0123456789", "short", ""]);
        log.scroll_sideways(12);
        assert_eq!(shown(&log, 10, 10), ["cdefghijKL", "", ""]);
        log.scroll_sideways(-100);
        assert_eq!(log.hscroll, 0);
        log.scroll_sideways(1000);
        assert_eq!(log.hscroll, 25, "no further than the widest line");
    }

    #[test]
    fn wide_characters_and_tabs_wrap_by_display_width() {
        let log = log_of(&[(Stream::Stdout, "日本語です\na\tb".as_bytes())]);
        assert_eq!(shown(&log, 5, 10), ["日本", "語で", "す", "a    ", "b"]);
        assert_eq!(shown(&log, 12, 10), ["日本語です", "a       b"]);
    }

    #[test]
    fn scrollback_is_bounded_and_long_lines_are_cut() {
        let mut log = TerminalLog::new();
        for i in 0..SCROLLBACK_LINES + 5 {
            log.push(Stream::Stdout, format!("{i}\n").as_bytes());
        }
        // The cursor's (empty) line counts among the kept ones.
        assert_eq!(log.len(), SCROLLBACK_LINES);
        assert_eq!(log.dropped(), 6);
        assert_eq!(log.lines().next(), Some("6"));
        log.push(Stream::Stdout, &vec![b'x'; 100_000]);
        log.push(Stream::Stdout, b"\n");
        let long = log.lines().nth(log.len() - 2).map(str::len);
        assert_eq!(long, Some(MAX_LINE_LEN));
    }

    #[test]
    fn scrolling_by_rows_and_following() {
        let mut log = TerminalLog::new();
        for i in 0..50 {
            log.push(Stream::Stdout, format!("{i}\n").as_bytes());
        }
        log.push(Stream::Stdout, b"50 is the last");
        assert_eq!(shown(&log, 20, 3), ["48", "49", "50 is the last"]);
        log.scroll_up(10, 20);
        assert!(!log.following());
        assert_eq!(shown(&log, 20, 2), ["39", "40"]);
        // New output does not move a reader's place.
        log.push(Stream::Stdout, b"\nmore\n");
        assert_eq!(shown(&log, 20, 2), ["39", "40"]);
        log.scroll_down(3, 20);
        assert_eq!(shown(&log, 20, 2), ["42", "43"]);
        log.scroll_down(1000, 20);
        assert!(log.following());
        log.scroll_to_top();
        assert_eq!(shown(&log, 20, 3), ["0"]);
        log.follow();
        assert_eq!(shown(&log, 20, 1), [""]);
    }

    #[test]
    fn scrolling_moves_through_the_rows_of_a_wrapped_line() {
        let mut log = log_of(&[(Stream::Stdout, b"top\naaaaabbbbbccccc\nend")]);
        assert_eq!(shown(&log, 5, 2), ["ccccc", "end"]);
        log.scroll_up(1, 5);
        assert_eq!(shown(&log, 5, 2), ["bbbbb", "ccccc"]);
        log.scroll_up(2, 5);
        assert_eq!(shown(&log, 5, 2), ["top", "aaaaa"]);
        log.scroll_down(1, 5);
        assert_eq!(shown(&log, 5, 2), ["aaaaa", "bbbbb"]);
    }

    #[test]
    fn output_search_goes_back_match_by_match() {
        let mut log = TerminalLog::new();
        for i in 0..20 {
            let word = if i % 5 == 0 { "mark" } else { "line" };
            log.push(Stream::Stdout, format!("{word} {i}\n").as_bytes());
        }
        assert!(log.find_back("mark", 40));
        assert_eq!(shown(&log, 40, 1), ["mark 15"]);
        assert!(log.find_back("mark", 40));
        assert_eq!(shown(&log, 40, 1), ["mark 10"]);
        assert!(!log.find_back("absent", 40));
        assert!(!log.find_back("", 40));
        assert!(log.text().starts_with("mark 0\nline 1\n"));
    }

    #[test]
    fn a_match_far_into_a_wrapped_line_is_in_view() {
        let mut log = log_of(&[(Stream::Stdout, b"xxxxxxxxxxneedle here\nlast\n")]);
        assert!(log.find_back("needle", 5));
        assert_eq!(shown(&log, 5, 1), ["needl"]);
    }

    #[test]
    fn stderr_is_told_from_stdout_and_colours_do_not_leak() {
        let log = log_of(&[
            (Stream::Stdout, b"\x1b[32mok "),
            (Stream::Stderr, b"warn "),
            (Stream::Stdout, b"still green\x1b[0m "),
            (Stream::Stderr, b"\x1b[33myellow err\n"),
        ]);
        assert_eq!(
            spans(&log, 80, 2),
            [
                ("ok ".to_string(), Style::new().fg(Color::Green)),
                ("warn ".to_string(), Style::new().fg(Color::LightRed)),
                ("still green".to_string(), Style::new().fg(Color::Green)),
                (" ".to_string(), Style::new().fg(Color::White)),
                ("yellow err".to_string(), Style::new().fg(Color::Yellow)),
            ]
        );
    }

    #[test]
    fn cursor_movement_redraws_a_multi_line_progress_display() {
        // Two bars drawn, then redrawn in place: up two lines, erase, rewrite.
        let log = log_of(&[(
            Stream::Stdout,
            b"a: 10%\nb: 10%\n\x1b[2A\x1b[2Ka: 100%\n\x1b[2Kb: 90%\x1b[1E",
        )]);
        assert_eq!(log.text(), "a: 100%\nb: 90%\n");
        let log = log_of(&[(Stream::Stdout, b"one\ntwo\nthree\x1b[1F\x1b[2C\x1b[J")]);
        assert_eq!(log.text(), "one\ntw");
        let log = log_of(&[(Stream::Stdout, b"abcdef\x1b[3D\x1b[1K!\x1b[10G|\x08?")]);
        assert_eq!(log.text(), "   !ef   ?");
    }

    #[test]
    fn typed_input_is_echoed_and_pending_input_drawn_at_the_cursor() {
        let mut log = log_of(&[(Stream::Stdout, b"name? ")]);
        let pending = log.view(20, 1, COLORS, Some("ad"));
        let texts: Vec<_> = pending[0]
            .spans
            .iter()
            .map(|s| (s.content.to_string(), s.style))
            .collect();
        assert_eq!(
            texts,
            [
                ("name? ".to_string(), Style::new().fg(Color::White)),
                ("ad".to_string(), Style::new().fg(Color::Cyan)),
                (
                    " ".to_string(),
                    Style::new()
                        .fg(Color::White)
                        .add_modifier(Modifier::REVERSED)
                ),
            ]
        );
        log.echo_input("ada");
        log.push(Stream::Stdout, b"hello ada\n");
        assert_eq!(log.text(), "name? ada\nhello ada\n");
        // Input typed before any output shows too.
        let empty = TerminalLog::new();
        assert_eq!(empty.view(10, 3, COLORS, Some("x")).len(), 1);
    }

    #[test]
    fn clear_keeps_the_wrap_choice() {
        let mut log = log_of(&[(Stream::Stdout, b"\x1b[31mred")]);
        log.toggle_wrap();
        log.clear();
        assert!(log.is_empty() && !log.wrap && log.following());
        log.push(Stream::Stdout, b"plain");
        assert_eq!(
            spans(&log, 10, 1),
            [("plain".to_string(), Style::new().fg(Color::White))]
        );
    }
}
