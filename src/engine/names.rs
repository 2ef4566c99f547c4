//! File names as text: a reversible escape for names that are bytes.
//!
//! A name in a workspace is any bytes but NUL and `/`: sandboxed code may
//! make one that is not UTF-8, or that holds a newline, a terminal escape or
//! a bidi override. Wherever such a name is shown as text (CLI output, the
//! Files pane, error messages) it is escaped with [`escape`], and every place
//! that takes a name as text reads it back with [`unescape`], so a name shown
//! can be pasted back and names the same file.
//!
//! The escaped form:
//! - printable UTF-8, non-ASCII included, stands for itself;
//! - `\\` is a backslash; `\n`, `\t` and `\r` are newline, tab and carriage
//!   return;
//! - `\xNN` (two hex digits) is the byte NN: used for the other ASCII control
//!   bytes and for every byte that is not part of valid UTF-8;
//! - `\u{N}` (one to six hex digits) is the character U+N: used for the
//!   non-ASCII control characters (U+0080–U+009F), the bidi controls (U+061C,
//!   U+200E, U+200F, U+202A–U+202E, U+2066–U+2069) and the line and
//!   paragraph separators (U+2028, U+2029), which would otherwise reorder or
//!   break the text around them.

use std::fmt::Write as _;

/// The escaped text form of `bytes`: plain printable text where it can be,
/// escapes elsewhere (see the module documentation). Never fails;
/// `unescape(&escape(b)) == Ok(b)` for all bytes `b`.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if c.is_ascii_control() => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c if hidden(c) => {
                    let _ = write!(out, "\\u{{{:x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out
}

/// True when `bytes` is shown as itself: UTF-8 that [`escape`] leaves alone.
pub fn is_plain(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|text| {
        !text
            .chars()
            .any(|c| c == '\\' || c.is_ascii_control() || hidden(c))
    })
}

/// Non-ASCII characters that are escaped although valid: they change how
/// the text around them is shown.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// The bytes an escaped `text` stands for (see the module documentation).
///
/// Errors name the escape and its position, counted in characters from 1,
/// e.g. "unknown escape `\q` at character 3 (a backslash is written `\\`)".
/// Characters that need no escape are taken as they are, whatever they are.
pub fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut chars = text.chars().enumerate().peekable();
    while let Some((index, c)) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let at = index + 1;
        let Some((_, kind)) = chars.next() else {
            return Err(format!(
                "a lone `\\` ends the text at character {at} (a backslash is written `\\\\`)"
            ));
        };
        match kind {
            '\\' => out.push(b'\\'),
            'n' => out.push(b'\n'),
            't' => out.push(b'\t'),
            'r' => out.push(b'\r'),
            'x' => {
                let digits: String = (0..2)
                    .filter_map(|_| chars.next().map(|(_, d)| d))
                    .collect();
                // The digit check first: `from_str_radix` would take a `+`.
                let byte = Some(&digits)
                    .filter(|d| d.len() == 2 && d.chars().all(|d| d.is_ascii_hexdigit()))
                    .and_then(|d| u8::from_str_radix(d, 16).ok())
                    .ok_or_else(|| {
                        format!(
                            "`\\x{digits}` at character {at} is not a byte: `\\x` takes two \
                             hex digits, e.g. `\\xc3`"
                        )
                    })?;
                out.push(byte);
            }
            'u' => {
                let bad = |seen: &str| {
                    format!(
                        "`\\u{seen}` at character {at} is not a character: `\\u` takes one to \
                         six hex digits in braces, e.g. `\\u{{202e}}`"
                    )
                };
                if chars.next_if(|(_, d)| *d == '{').is_none() {
                    return Err(bad(""));
                }
                let mut digits = String::new();
                loop {
                    match chars.next() {
                        Some((_, '}')) => break,
                        Some((_, d)) if digits.len() < 6 && d.is_ascii_hexdigit() => digits.push(d),
                        Some((_, d)) => {
                            digits.push(d);
                            return Err(bad(&format!("{{{digits}")));
                        }
                        None => return Err(bad(&format!("{{{digits}"))),
                    }
                }
                let c = u32::from_str_radix(&digits, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| bad(&format!("{{{digits}}}")))?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            other => {
                return Err(format!(
                    "unknown escape `\\{other}` at character {at} (known: `\\\\`, `\\n`, `\\t`, \
                     `\\r`, `\\xNN`, `\\u{{N}}`; a backslash is written `\\\\`)"
                ));
            }
        }
    }
    Ok(out)
}

/// `path` as ASCII for the script's argv, which the exec API carries as
/// UTF-8 text: bytes other than letters, digits and `/._-` become `\0NNN`
/// (octal), which `printf %b` in a shell (dash included) turns back into the bytes.
pub fn printf_escape(path: &[u8]) -> String {
    let mut arg = String::with_capacity(path.len());
    for &byte in path {
        if byte.is_ascii_alphanumeric() || b"/._-".contains(&byte) {
            arg.push(char::from(byte));
        } else {
            arg.push_str(&format!("\\0{byte:03o}"));
        }
    }
    arg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips(bytes: &[u8]) {
        let escaped = escape(bytes);
        assert_eq!(
            unescape(&escaped).as_deref(),
            Ok(bytes),
            "{bytes:?} escaped as {escaped:?}"
        );
        assert!(
            !escaped.chars().any(|c| c.is_control() || hidden(c)),
            "{escaped:?} shows a control character"
        );
        assert_eq!(is_plain(bytes), escaped.as_bytes() == bytes, "{bytes:?}");
    }

    #[test]
    fn printable_text_stands_for_itself() {
        for name in [
            "main.py",
            "my file.txt",
            "-rf",
            "héllo wörld ☃ 日本語 🦀",
            "quotes ' \" `",
            "*?[]{}$;&|<>",
            "",
        ] {
            assert_eq!(escape(name.as_bytes()), name);
            assert!(is_plain(name.as_bytes()));
            assert_eq!(unescape(name).unwrap(), name.as_bytes());
        }
    }

    #[test]
    fn odd_bytes_are_escaped() {
        assert_eq!(escape(b"a\\b"), "a\\\\b");
        assert_eq!(escape(b"line\n"), "line\\n");
        assert_eq!(escape(b"\t\r"), "\\t\\r");
        assert_eq!(escape(b"\x1b[31m\x7f\0"), "\\x1b[31m\\x7f\\x00");
        assert_eq!(escape(b"\xc3("), "\\xc3(");
        assert_eq!(escape(b"\xff\xfe"), "\\xff\\xfe");
        // A character cut short at the end is bytes, not a character.
        assert_eq!(escape("é".as_bytes()[..1].as_ref()), "\\xc3");
        assert_eq!(escape("a\u{202e}b".as_bytes()), "a\\u{202e}b");
        assert_eq!(escape("\u{85}\u{2066}".as_bytes()), "\\u{85}\\u{2066}");
        assert!(!is_plain(b"a\\b"));
        assert!(!is_plain(b"\xc3("));
    }

    #[test]
    fn unescape_reads_every_form() {
        assert_eq!(unescape("\\xC3\\xa9").unwrap(), "é".as_bytes());
        assert_eq!(unescape("\\u{e9}\\u{1F980}").unwrap(), "é🦀".as_bytes());
        assert_eq!(unescape("a\\\\b\\n\\t\\r").unwrap(), b"a\\b\n\t\r");
        // A raw control character needs no escape to be read.
        assert_eq!(unescape("a\nb").unwrap(), b"a\nb");
    }

    #[test]
    fn bad_escapes_name_what_and_where() {
        let cases = [
            ("ab\\q", "unknown escape `\\q` at character 3"),
            ("a\\", "lone `\\` ends the text at character 2"),
            ("\\x4", "`\\x4` at character 1 is not a byte"),
            ("é\\xzz", "`\\xzz` at character 2 is not a byte"),
            ("\\u41", "`\\u` at character 1 is not a character"),
            ("\\u{}", "`\\u{}` at character 1 is not a character"),
            ("\\u{d800}", "`\\u{d800}` at character 1 is not a character"),
            ("\\u{1234567}", "`\\u{1234567` at character 1"),
            ("\\u{12", "`\\u{12` at character 1"),
            ("\\u{g}", "`\\u{g` at character 1"),
        ];
        for (text, expected) in cases {
            let err = unescape(text).unwrap_err();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn every_byte_and_pair_round_trips() {
        for a in 0..=255u8 {
            round_trips(&[a]);
            for b in 0..=255u8 {
                round_trips(&[a, b]);
                round_trips(&[b'x', a, b, b'\\']);
            }
        }
    }

    #[test]
    fn random_bytes_round_trip() {
        // xorshift64: deterministic, no crate needed for a byte soup.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        // Bytes drawn from all 256 and from pieces that make escapes,
        // multi-byte characters and their broken halves likely.
        let pieces: [&[u8]; 10] = [
            b"\\",
            b"x",
            b"u{",
            b"}",
            b"\\x",
            "é".as_bytes(),
            "\u{202e}".as_bytes(),
            "\u{85}".as_bytes(),
            "🦀".as_bytes(),
            b"\xf0\x9f",
        ];
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let mut bytes = Vec::new();
            for _ in 0..len {
                let roll = next();
                if roll % 3 == 0 {
                    bytes.extend_from_slice(pieces[(roll >> 8) as usize % pieces.len()]);
                } else {
                    bytes.push((roll >> 8) as u8);
                }
            }
            round_trips(&bytes);
        }
    }
}
