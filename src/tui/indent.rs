//! Indentation in the dashboard's editor: Tab inserts the runtime's indent,
//! shift-tab removes one level, and backspace over leading spaces removes
//! one level back to the previous stop.
//!
//! The arithmetic is in plain functions over a line's text; the editing
//! goes through [`TextArea`]'s own edits so that undo, the cursor and the
//! selection stay the text area's.

use ratatui::text::Line;
use ratatui_textarea::{CursorMove, TextArea};

use crate::engine::runtimes::Indent;

/// What Tab inserts with the cursor at display column `column`: spaces up
/// to the next indent stop, or one hard tab.
pub fn tab_text(indent: Indent, column: usize) -> String {
    match indent {
        Indent::Spaces(n) => {
            let n = usize::from(n.max(1));
            " ".repeat(n - column % n)
        }
        Indent::Tab => "\t".to_string(),
    }
}

/// One whole level, as put before each line of an indented block.
pub fn level_text(indent: Indent) -> String {
    tab_text(indent, 0)
}

/// How many leading characters one dedent removes from `line`: a leading
/// tab, or the spaces back to the previous indent stop (6 spaces at an
/// indent of 4 lose 2), or nothing when the line is not indented.
pub fn dedent_len(line: &str, indent: Indent) -> usize {
    if line.starts_with('\t') {
        return 1;
    }
    let spaces = line.chars().take_while(|c| *c == ' ').count();
    if spaces == 0 {
        return 0;
    }
    let width = usize::from(indent.width().max(1));
    (spaces - 1) % width + 1
}

/// How many characters backspace removes before char column `col`: back to
/// the previous indent stop when only spaces lie before the cursor and the
/// indent is spaces; otherwise one. 0 at the start of a line, where
/// backspace joins lines instead.
pub fn backspace_len(line: &str, col: usize, indent: Indent) -> usize {
    if col == 0 {
        return 0;
    }
    let Indent::Spaces(width) = indent else {
        return 1;
    };
    let mut before = line.chars().take(col);
    let only_spaces = before.all(|c| c == ' ');
    // A cursor past the end of the line is not over indentation.
    if !only_spaces || line.chars().count() < col {
        return 1;
    }
    (col - 1) % usize::from(width.max(1)) + 1
}

/// Tab: a selection over several lines indents each of them (one undo step
/// per line); otherwise the indent goes in at the cursor, replacing any
/// selection. Returns whether the text changed.
pub fn indent(editor: &mut TextArea<'_>, indent: Indent) -> bool {
    if let Some(rows) = block_rows(editor) {
        let level = level_text(indent);
        let inserted = level.chars().count();
        return shift_block(
            editor,
            rows,
            |line| {
                if line.is_empty() {
                    ShiftBy::Unchanged
                } else {
                    ShiftBy::Inserted(inserted)
                }
            },
            |editor| editor.insert_str(&level),
        );
    }
    let (row, col) = match editor.selection_range() {
        Some((start, _)) => start,
        None => (editor.cursor().0, editor.cursor().1),
    };
    let column = editor
        .lines()
        .get(row)
        .map(|line| {
            let before: String = line.chars().take(col).collect();
            Line::from(before).width()
        })
        .unwrap_or(0);
    editor.insert_str(tab_text(indent, column))
}

/// Shift-tab: removes one level from the cursor's line, or from every line
/// of a selection. Returns whether the text changed.
pub fn dedent(editor: &mut TextArea<'_>, indent: Indent) -> bool {
    let rows = block_rows(editor).unwrap_or_else(|| {
        let row = editor.cursor().0;
        row..row + 1
    });
    shift_block(
        editor,
        rows,
        |line| match dedent_len(line, indent) {
            0 => ShiftBy::Unchanged,
            n => ShiftBy::Removed(n),
        },
        |_| false,
    )
}

/// Backspace: over leading spaces, removes them back to the previous indent
/// stop as one edit; anywhere else, what the text area's backspace does.
/// Returns whether the text changed.
pub fn backspace(editor: &mut TextArea<'_>, indent: Indent) -> bool {
    if editor.is_selecting() {
        return editor.delete_char();
    }
    let (row, col) = (editor.cursor().0, editor.cursor().1);
    let len = editor
        .lines()
        .get(row)
        .map_or(0, |line| backspace_len(line, col, indent));
    if len <= 1 {
        return editor.delete_char();
    }
    go_to(editor, row, col - len);
    editor.delete_str(len)
}

enum ShiftBy {
    Unchanged,
    Inserted(usize),
    Removed(usize),
}

/// The rows a multi-line selection covers; a selection ending at the start
/// of a line leaves that line out, as editors do. None without one.
fn block_rows(editor: &TextArea<'_>) -> Option<std::ops::Range<usize>> {
    let ((start_row, _), (end_row, end_col)) = editor.selection_range()?;
    if start_row == end_row {
        return None;
    }
    let last = if end_col == 0 { end_row - 1 } else { end_row };
    Some(start_row..last + 1)
}

/// Applies one shift per row at the line's start, then puts the cursor and
/// any selection back over the same text.
fn shift_block(
    editor: &mut TextArea<'_>,
    rows: std::ops::Range<usize>,
    plan: impl Fn(&str) -> ShiftBy,
    insert: impl Fn(&mut TextArea<'_>) -> bool,
) -> bool {
    let cursor = (editor.cursor().0, editor.cursor().1);
    let anchor = editor.selection_range().map(|(start, end)| {
        // The anchor is whichever end the cursor is not at.
        if start == cursor { end } else { start }
    });
    editor.cancel_selection();
    let mut changed = false;
    let mut shifts = Vec::with_capacity(rows.len());
    for row in rows {
        let shift = editor
            .lines()
            .get(row)
            .map_or(ShiftBy::Unchanged, |line| plan(line));
        match shift {
            ShiftBy::Unchanged => {}
            ShiftBy::Inserted(_) => {
                go_to(editor, row, 0);
                changed |= insert(editor);
            }
            ShiftBy::Removed(n) => {
                go_to(editor, row, 0);
                changed |= editor.delete_str(n);
            }
        }
        shifts.push((row, shift));
    }
    let moved = |(row, col): (usize, usize)| -> (usize, usize) {
        match shifts
            .iter()
            .find(|(r, _)| *r == row)
            .map(|(_, shift)| shift)
        {
            // A position at the very start stays before the new indent.
            Some(ShiftBy::Inserted(n)) if col > 0 => (row, col + n),
            Some(ShiftBy::Removed(n)) => (row, col.saturating_sub(*n)),
            _ => (row, col),
        }
    };
    if let Some(anchor) = anchor {
        let (row, col) = moved(anchor);
        go_to(editor, row, col);
        editor.start_selection();
    }
    let (row, col) = moved(cursor);
    go_to(editor, row, col);
    changed
}

/// Moves the cursor to char column `col` of `row` (both clamped), keeping a
/// selection in progress. Relative moves reach any row; `CursorMove::Jump`
/// stops at 65,535.
fn go_to(editor: &mut TextArea<'_>, row: usize, col: usize) {
    let row = row.min(editor.lines().len().saturating_sub(1));
    while editor.cursor().0 != row {
        let before = editor.cursor();
        editor.move_cursor(if before.0 < row {
            CursorMove::Down
        } else {
            CursorMove::Up
        });
        if editor.cursor() == before {
            break;
        }
    }
    editor.move_cursor(CursorMove::Head);
    let len = editor
        .lines()
        .get(row)
        .map_or(0, |line| line.chars().count());
    for _ in 0..col.min(len) {
        editor.move_cursor(CursorMove::Forward);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOUR: Indent = Indent::Spaces(4);
    const TWO: Indent = Indent::Spaces(2);

    fn area(lines: &[&str], row: u16, col: u16) -> TextArea<'static> {
        let mut editor = TextArea::from(lines.iter().map(|l| l.to_string()).collect::<Vec<_>>());
        editor.move_cursor(CursorMove::Jump(row, col));
        editor
    }

    fn at(editor: &TextArea<'_>) -> (usize, usize) {
        (editor.cursor().0, editor.cursor().1)
    }

    #[test]
    fn tab_goes_to_the_next_stop_of_the_language() {
        assert_eq!(tab_text(FOUR, 0), "    ");
        assert_eq!(tab_text(FOUR, 1), "   ");
        assert_eq!(tab_text(FOUR, 4), "    ");
        assert_eq!(tab_text(TWO, 0), "  ");
        assert_eq!(tab_text(TWO, 3), " ");
        assert_eq!(tab_text(Indent::Tab, 3), "\t");

        let mut python = area(&["if x:", ""], 1, 0);
        assert!(indent(&mut python, FOUR));
        assert_eq!(python.lines(), ["if x:", "    "]);
        let mut node = area(&["if (x) {", ""], 1, 0);
        assert!(indent(&mut node, TWO));
        assert_eq!(node.lines(), ["if (x) {", "  "]);
        // Mid-line, to the next stop; a wide char counts two columns.
        let mut wide = area(&["日x"], 0, 2);
        indent(&mut wide, FOUR);
        assert_eq!(wide.lines(), ["日x "]);
        // One undo takes the whole indent back.
        assert!(python.undo());
        assert_eq!(python.lines(), ["if x:", ""]);
    }

    #[test]
    fn dedent_removes_one_level_back_to_the_stop() {
        assert_eq!(dedent_len("        x", FOUR), 4);
        assert_eq!(dedent_len("      x", FOUR), 2);
        assert_eq!(dedent_len(" x", FOUR), 1);
        assert_eq!(dedent_len("x", FOUR), 0);
        assert_eq!(dedent_len("\t\tx", FOUR), 1);
        assert_eq!(dedent_len("    x", TWO), 2);

        let mut editor = area(&["def f():", "        return 1"], 1, 10);
        assert!(dedent(&mut editor, FOUR));
        assert_eq!(editor.lines()[1], "    return 1");
        assert_eq!(at(&editor), (1, 6), "the cursor stays on the same text");
        assert!(dedent(&mut editor, FOUR));
        assert!(!dedent(&mut editor, FOUR), "nothing left to remove");
        assert_eq!(editor.lines()[1], "return 1");
        assert_eq!(at(&editor), (1, 2));
    }

    #[test]
    fn backspace_over_indentation_removes_a_level() {
        assert_eq!(backspace_len("        x", 8, FOUR), 4);
        assert_eq!(backspace_len("      x", 6, FOUR), 2);
        assert_eq!(backspace_len("    x", 5, FOUR), 1, "after text: one char");
        assert_eq!(backspace_len("  x  ", 5, TWO), 1);
        assert_eq!(backspace_len("    ", 0, FOUR), 0);
        assert_eq!(backspace_len("\t\t", 2, Indent::Tab), 1);

        let mut editor = area(&["x", "        y"], 1, 8);
        assert!(backspace(&mut editor, FOUR));
        assert_eq!(editor.lines()[1], "    y");
        assert_eq!(at(&editor), (1, 4));
        assert!(editor.undo());
        assert_eq!(editor.lines()[1], "        y", "one level is one undo step");
        // After text it is a plain backspace; at the start it joins lines.
        let mut editor = area(&["x", "    yz"], 1, 6);
        backspace(&mut editor, FOUR);
        assert_eq!(editor.lines()[1], "    y");
        let mut editor = area(&["x", "y"], 1, 0);
        backspace(&mut editor, FOUR);
        assert_eq!(editor.lines(), ["xy"]);
    }

    #[test]
    fn a_selected_block_is_indented_and_dedented_line_by_line() {
        let mut editor = area(&["a", "", "b", "c"], 0, 1);
        editor.start_selection();
        editor.move_cursor(CursorMove::Jump(2, 1));
        assert!(indent(&mut editor, TWO));
        assert_eq!(
            editor.lines(),
            ["  a", "", "  b", "c"],
            "empty lines stay empty"
        );
        assert_eq!(editor.selection_range(), Some(((0, 3), (2, 3))));
        assert!(dedent(&mut editor, TWO));
        assert_eq!(editor.lines(), ["a", "", "b", "c"]);
        assert_eq!(editor.selection_range(), Some(((0, 1), (2, 1))));
        // A selection ending at a line's start leaves that line alone.
        let mut editor = area(&["a", "b"], 0, 0);
        editor.start_selection();
        editor.move_cursor(CursorMove::Jump(1, 0));
        indent(&mut editor, FOUR);
        assert_eq!(editor.lines(), ["    a", "b"]);
        // Within one line, Tab replaces the selection.
        let mut editor = area(&["abcd"], 0, 1);
        editor.start_selection();
        editor.move_cursor(CursorMove::Jump(0, 3));
        indent(&mut editor, FOUR);
        assert_eq!(editor.lines(), ["a   d"]);
    }
}
