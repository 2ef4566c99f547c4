//! Untrusted text made safe to store and to show on a terminal: bounded in
//! length, with every character that could move the cursor, change colours
//! or reorder what is shown written out as an escape.

/// Characters kept of an argument summary.
pub const SUMMARY_MAX_CHARS: usize = 200;
/// Characters kept of an error text.
pub const ERROR_MAX_CHARS: usize = 500;
/// Characters kept of an action name.
pub const ACTION_MAX_CHARS: usize = 64;

/// `text` with control characters (C0, DEL, C1) and invisible formatting
/// characters (bidirectional overrides, zero-width marks) escaped as `\n`,
/// `\t`, `\r` or `\u{1b}`, cut to at most `max` characters, the last being
/// `…` when anything was cut.
///
/// Backslashes are kept as they are, so the escape is idempotent: cleaning
/// clean text changes nothing. Only the first `max + 1` characters of the
/// input are looked at, so a huge argument costs no more than a short one.
pub fn clean(text: &str, max: usize) -> String {
    if max == 0 {
        return String::new();
    }
    // Pieces (one per input character) until one more than fits.
    let mut pieces: Vec<(usize, usize)> = Vec::new(); // (end byte in `out`, chars so far)
    let mut out = String::new();
    let mut count = 0;
    let mut cut = false;
    for c in text.chars() {
        if count > max {
            cut = true;
            break;
        }
        if needs_escape(c) {
            let escaped = match c {
                '\n' => "\\n".to_string(),
                '\r' => "\\r".to_string(),
                '\t' => "\\t".to_string(),
                c => format!("\\u{{{:x}}}", u32::from(c)),
            };
            count += escaped.chars().count();
            out.push_str(&escaped);
        } else {
            count += 1;
            out.push(c);
        }
        pieces.push((out.len(), count));
    }
    if !cut && count <= max {
        return out;
    }
    // Keep whole pieces within `max - 1` characters, then the ellipsis, so
    // an escape is never cut in half.
    let keep = pieces
        .iter()
        .take_while(|(_, chars)| *chars < max)
        .last()
        .map_or(0, |(end, _)| *end);
    out.truncate(keep);
    out.push('…');
    out
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200b}'..='\u{200f}'   // zero-width marks, LRM, RLM
            | '\u{2028}'..='\u{202e}' // line/paragraph separators, bidi embeddings and overrides
            | '\u{2060}'..='\u{206f}' // word joiner, bidi isolates, invisible operators
            | '\u{feff}'              // byte-order mark
            | '\u{fff9}'..='\u{fffb}' // interlinear annotation
        )
}

/// A command line as one summary: words joined by spaces, each word that
/// is empty or holds a space, quote or shell character single-quoted as
/// `sh` would read it, then [`clean`]ed to [`SUMMARY_MAX_CHARS`].
pub fn argv_summary<S: AsRef<str>>(argv: &[S]) -> String {
    let mut joined = String::new();
    for word in argv {
        if !joined.is_empty() {
            joined.push(' ');
        }
        let word = word.as_ref();
        let plain = !word.is_empty()
            && word.chars().all(|c| {
                c.is_alphanumeric()
                    || matches!(c, '-' | '_' | '.' | '/' | ':' | '=' | ',' | '+' | '@')
            });
        if plain {
            joined.push_str(word);
        } else {
            joined.push('\'');
            joined.push_str(&word.replace('\'', r"'\''"));
            joined.push('\'');
        }
        // The summary is bounded, so the rest of a long argv is never read.
        if joined.len() > SUMMARY_MAX_CHARS * 4 {
            break;
        }
    }
    clean(&joined, SUMMARY_MAX_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(clean("a\nb\tc\rd", 100), r"a\nb\tc\rd");
        assert_eq!(clean("\u{1b}[31mred", 100), r"\u{1b}[31mred");
        assert_eq!(clean("x\u{7f}\u{9b}y", 100), r"x\u{7f}\u{9b}y");
        assert_eq!(clean("evil\u{202e}txt.exe", 100), r"evil\u{202e}txt.exe");
        assert_eq!(clean("zero\u{200b}width", 100), r"zero\u{200b}width");
        // Printable text, backslashes and non-ASCII letters are kept.
        assert_eq!(clean(r"C:\dir é 日本", 100), r"C:\dir é 日本");
        let once = clean("a\u{1b}b\n", 100);
        assert_eq!(clean(&once, 100), once);
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis() {
        assert_eq!(clean("abcdef", 6), "abcdef");
        assert_eq!(clean("abcdefg", 6), "abcde…");
        assert_eq!(clean("abc", 0), "");
        let long = "x".repeat(10_000);
        let cut = clean(&long, SUMMARY_MAX_CHARS);
        assert_eq!(cut.chars().count(), SUMMARY_MAX_CHARS);
        assert!(cut.ends_with('…'));
        // An escape that does not fit whole is dropped, not cut in half.
        assert_eq!(clean("abcd\u{1b}", 9), "abcd…");
        assert_eq!(clean("abcd\u{1b}", 11), r"abcd\u{1b}");
    }

    #[test]
    fn argv_is_quoted_where_needed() {
        assert_eq!(
            argv_summary(&["python3", "-c", "print(1)"]),
            "python3 -c 'print(1)'"
        );
        assert_eq!(argv_summary(&["echo", "", "it's"]), r"echo '' 'it'\''s'");
        assert_eq!(argv_summary(&["ls", "-la", "/tmp/x=1"]), "ls -la /tmp/x=1");
        assert_eq!(argv_summary(&["printf", "a\nb"]), r"printf 'a\nb'");
        let empty: [&str; 0] = [];
        assert_eq!(argv_summary(&empty), "");
        let many = vec!["word"; 10_000];
        assert_eq!(argv_summary(&many).chars().count(), SUMMARY_MAX_CHARS);
    }
}
