//! The result texts of the console tools, word for word those of
//! pydantic-ai-backend's `create_console_toolset()` (its `toolsets/console.py`
//! and `toolsets/_workspace.py`), so a prompt written for that toolset reads
//! the same answers here. Pure functions: the tools feed them what the sandbox
//! returned.

/// Matches `glob` lists before the rest are counted.
pub const GLOB_RESULT_LIMIT: usize = 100;
/// Files or lines `grep` lists before the rest are counted.
pub const GREP_RESULT_LIMIT: usize = 50;
/// Characters of a matching line `grep` shows in content mode.
pub const GREP_LINE_WIDTH: usize = 100;
/// Bytes of output `execute` returns; the rest is cut with a marker.
pub const MAX_EXECUTE_OUTPUT_BYTES: usize = 100_000;
/// The largest file an `edit_file` may produce, in bytes (the read cap).
pub const MAX_EDITED_BYTES: u64 = 32 << 20;
/// Exit status reported for a timed-out command.
pub const TIMED_OUT_EXIT_CODE: i64 = 124;

/// One entry of a listing, as `ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LsEntry {
    pub name: String,
    pub is_dir: bool,
    /// `None` for a link that leads nowhere (or out of the workspace).
    pub size: Option<u64>,
}

/// `ls`: a header naming the path, then folders with a trailing `/` and
/// files with their size; one sentence for an empty or missing folder.
pub fn ls(path: &str, entries: &[LsEntry]) -> String {
    if entries.is_empty() {
        return format!("Directory '{path}' is empty or does not exist");
    }
    let mut lines = vec![format!("Contents of {path}:")];
    for entry in entries {
        if entry.is_dir {
            lines.push(format!("  {}/", entry.name));
        } else if let Some(size) = entry.size {
            lines.push(format!("  {} ({size} bytes)", entry.name));
        } else {
            lines.push(format!("  {}", entry.name));
        }
    }
    lines.join("\n")
}

/// Python's `str.splitlines()`: every line boundary it knows, a final line
/// ending making no empty last line. The reference numbers lines this way.
pub fn split_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((index, c)) = chars.next() {
        let is_break = matches!(
            c,
            '\n' | '\r'
                | '\u{0b}'
                | '\u{0c}'
                | '\u{1c}'
                | '\u{1d}'
                | '\u{1e}'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if !is_break {
            continue;
        }
        lines.push(&text[start..index]);
        let mut end = index + c.len_utf8();
        if c == '\r'
            && let Some((next, '\n')) = chars.peek().copied()
        {
            chars.next();
            end = next + 1;
        }
        start = end;
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// Why a `read_file` slice cannot be given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetPastEnd(pub String);

/// `read_file`: lines `offset..offset+limit`, each numbered from 1, right
/// aligned in 6 columns and a tab, with a trailer counting the lines left.
pub fn numbered_slice(text: &str, offset: usize, limit: usize) -> Result<String, OffsetPastEnd> {
    let lines = split_lines(text);
    if offset >= lines.len() && !lines.is_empty() {
        return Err(OffsetPastEnd(format!(
            "Error: Offset {offset} exceeds file length ({} lines)",
            lines.len()
        )));
    }
    let end = offset.saturating_add(limit).min(lines.len());
    let numbered: Vec<String> = (offset..end)
        .map(|i| format!("{:>6}\t{}", i + 1, lines[i]))
        .collect();
    let numbered = numbered.join("\n");
    if end < lines.len() {
        Ok(format!(
            "{numbered}\n\n... ({} more lines)",
            lines.len() - end
        ))
    } else {
        Ok(numbered)
    }
}

/// The reference's message for a missing file.
pub fn file_not_found(path: &str) -> String {
    format!("Error: File '{path}' not found")
}

/// `write_file`'s answer.
pub fn wrote(path: &str, content: &str) -> String {
    format!("Wrote {} lines to {path}", split_lines(content).len())
}

/// An exact replacement, or the reference's words for why it cannot be made.
pub fn replace(
    content: &str,
    old: &str,
    new: &str,
    replace_all: bool,
) -> Result<(String, usize), String> {
    // An empty string "occurs" between every two characters: replacing it
    // all would multiply the file. It is a mistake the model can fix.
    if old.is_empty() {
        return Err("Error: old_string must not be empty".to_string());
    }
    let occurrences = content.matches(old).count();
    if occurrences == 0 {
        return Err(format!("Error: String '{old}' not found in file"));
    }
    if occurrences > 1 && !replace_all {
        return Err(format!(
            "Error: String '{old}' found {occurrences} times. \
             Use replace_all=True to replace all, or provide more context."
        ));
    }
    // The result is bounded like a read: a replacement may not grow the
    // file past what `read_file` and `edit_file` accept.
    let grown = content.len() as u128
        + (occurrences as u128) * (new.len() as u128).saturating_sub(old.len() as u128);
    if grown > u128::from(MAX_EDITED_BYTES) {
        return Err(format!(
            "Error: the edit would make the file {grown} bytes, over the {MAX_EDITED_BYTES}-byte limit"
        ));
    }
    if replace_all {
        Ok((content.replace(old, new), occurrences))
    } else {
        Ok((content.replacen(old, new, 1), 1))
    }
}

/// `edit_file`'s answer.
pub fn edited(path: &str, occurrences: usize) -> String {
    format!("Edited {path}: replaced {occurrences} occurrence(s)")
}

/// `glob`: a count, up to 100 paths, then how many more.
pub fn glob(pattern: &str, path: &str, paths: &[String]) -> String {
    if paths.is_empty() {
        return format!("No files matching '{pattern}' in {path}");
    }
    let mut lines = vec![format!(
        "Found {} file(s) matching '{pattern}':",
        paths.len()
    )];
    lines.extend(
        paths
            .iter()
            .take(GLOB_RESULT_LIMIT)
            .map(|path| format!("  {path}")),
    );
    if paths.len() > GLOB_RESULT_LIMIT {
        lines.push(format!(
            "  ... and {} more",
            paths.len() - GLOB_RESULT_LIMIT
        ));
    }
    lines.join("\n")
}

/// A path as Python's `PurePosixPath` prints it (the reference passes
/// `find`'s output through it): `.` parts and repeated slashes dropped, so
/// `./src/a.py` reads `src/a.py`.
pub fn pure_posix(path: &str) -> String {
    let root = if path.starts_with("//") && !path.starts_with("///") {
        "//"
    } else if path.starts_with('/') {
        "/"
    } else {
        ""
    };
    let parts: Vec<&str> = path
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    match (root, parts.is_empty()) {
        ("", true) => ".".to_string(),
        (root, _) => format!("{root}{}", parts.join("/")),
    }
}

/// One line `grep` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrepMatch {
    pub path: String,
    pub line_number: u64,
    pub line: String,
}

/// How much `grep` returns.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    rmcp::schemars::JsonSchema,
)]
#[schemars(crate = "rmcp::schemars")]
#[serde(rename_all = "snake_case")]
pub enum OutputMode {
    FilesWithMatches,
    Content,
    Count,
}

/// The matches grep printed (`path:line:text`), in order; lines of another
/// shape (grep's own messages) are skipped.
pub fn parse_grep(output: &str) -> Vec<GrepMatch> {
    output
        .trim()
        .split('\n')
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let path = parts.next()?;
            let number = parts.next()?.parse().ok()?;
            let text = parts.next()?;
            Some(GrepMatch {
                path: path.to_string(),
                line_number: number,
                line: text.to_string(),
            })
        })
        .collect()
}

/// Whether a match lies in a hidden file or folder below the search root;
/// a hidden root named on purpose is still searched.
pub fn hidden_match(match_path: &str, root: Option<&str>) -> bool {
    let root = root.unwrap_or(".");
    let trimmed = root.trim_end_matches('/');
    let base = if trimmed.is_empty() { "/" } else { trimmed };
    let relative = match_path.strip_prefix(base).unwrap_or(match_path);
    relative
        .split('/')
        .filter(|part| !part.is_empty())
        .any(|part| part.starts_with('.') && part != "." && part != "..")
}

/// `grep`'s answer in the chosen mode.
pub fn grep(pattern: &str, mode: OutputMode, matches: &[GrepMatch]) -> String {
    if matches.is_empty() {
        return format!("No matches for '{pattern}'");
    }
    match mode {
        OutputMode::Count => format!("Found {} match(es) for '{pattern}'", matches.len()),
        OutputMode::FilesWithMatches => {
            let mut files: Vec<String> = matches.iter().map(|m| m.path.clone()).collect();
            files.sort();
            files.dedup();
            truncated_list(
                &format!("Files containing '{pattern}':"),
                &files,
                "more files",
            )
        }
        OutputMode::Content => {
            let rendered: Vec<String> = matches
                .iter()
                .map(|m| {
                    let line: String = m.line.chars().take(GREP_LINE_WIDTH).collect();
                    format!("{}:{}: {line}", m.path, m.line_number)
                })
                .collect();
            truncated_list(
                &format!("Matches for '{pattern}':"),
                &rendered,
                "more matches",
            )
        }
    }
}

fn truncated_list(header: &str, items: &[String], noun: &str) -> String {
    let mut lines = vec![header.to_string()];
    lines.extend(
        items
            .iter()
            .take(GREP_RESULT_LIMIT)
            .map(|item| format!("  {item}")),
    );
    if items.len() > GREP_RESULT_LIMIT {
        lines.push(format!(
            "  ... and {} {noun}",
            items.len() - GREP_RESULT_LIMIT
        ));
    }
    lines.join("\n")
}

/// `output` cut to the execute ceiling at a character boundary, and whether
/// anything was cut.
pub fn bounded(output: &str) -> (&str, bool) {
    if output.len() <= MAX_EXECUTE_OUTPUT_BYTES {
        return (output, false);
    }
    let mut end = MAX_EXECUTE_OUTPUT_BYTES;
    while !output.is_char_boundary(end) {
        end -= 1;
    }
    (&output[..end], true)
}

/// How a command ended, as `execute` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Exited(i64),
    TimedOut,
    /// Output passed the capture limit and the command was stopped.
    OutputLimit,
}

/// `execute`'s answer: stdout then stderr, cut at 100,000 bytes with a
/// marker; a non-zero exit names its code; a timeout says so, with what the
/// command printed before it.
pub fn execute(stdout: &str, stderr: &str, ending: Ending) -> String {
    let combined = format!("{stdout}{stderr}");
    let (exit_code, output, truncated) = match ending {
        Ending::Exited(code) => {
            let (output, truncated) = bounded(&combined);
            (code, output.to_string(), truncated)
        }
        Ending::TimedOut => {
            let (partial, _) = bounded(&combined);
            let text = format!("Error: Command timed out\n{partial}");
            (
                TIMED_OUT_EXIT_CODE,
                text.trim_end_matches('\n').to_string(),
                false,
            )
        }
        Ending::OutputLimit => {
            let (partial, _) = bounded(&combined);
            (1, partial.to_string(), true)
        }
    };
    let mut output = output;
    if truncated {
        output.push_str("\n\n... (output truncated)");
    }
    if exit_code != 0 {
        format!("Command failed (exit code {exit_code}):\n{output}")
    } else {
        output
    }
}

/// Extensions the reference always decodes as text, whatever their bytes.
const TEXT_EXTENSIONS: &[&str] = &[
    "c", "cpp", "cs", "css", "go", "h", "html", "java", "js", "jsx", "php", "py", "rb", "rs", "sh",
    "sql", "ts", "tsx", "csv", "json", "log", "md", "toml", "txt", "xml", "yaml", "yml",
];

/// A file's bytes as text, as the reference decodes them: UTF-8 when valid;
/// otherwise, for a known text extension, one character per byte (its
/// Latin-1 fallback); otherwise UTF-8 with replacement characters when
/// fewer than 1 in 100 characters (and fewer than 2) need replacing, else
/// `None`: a binary file. The reference asks chardet first, which can pick
/// another encoding for a file that is not UTF-8.
pub fn decode(path: &str, bytes: &[u8]) -> Option<String> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Some(text.to_string());
    }
    let extension = path
        .rsplit('/')
        .next()
        .and_then(|name| name.rsplit_once('.'))
        .map(|(_, ext)| ext.to_ascii_lowercase());
    match extension {
        Some(ext) if TEXT_EXTENSIONS.contains(&ext.as_str()) => {
            Some(bytes.iter().map(|&b| char::from(b)).collect())
        }
        _ => {
            let text = String::from_utf8_lossy(bytes);
            let replaced = text.chars().filter(|&c| c == '\u{fffd}').count();
            (replaced < (text.chars().count() / 100).max(2)).then(|| text.into_owned())
        }
    }
}

/// What the reference answers for a binary file given to `read_file`.
pub const BINARY_FILE: &str = "[Error: [Binary File]]";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing() {
        let entries = [
            LsEntry {
                name: "src".into(),
                is_dir: true,
                size: None,
            },
            LsEntry {
                name: "a.py".into(),
                is_dir: false,
                size: Some(12),
            },
            LsEntry {
                name: "dangling".into(),
                is_dir: false,
                size: None,
            },
        ];
        assert_eq!(
            ls(".", &entries),
            "Contents of .:\n  src/\n  a.py (12 bytes)\n  dangling"
        );
        assert_eq!(
            ls("nope", &[]),
            "Directory 'nope' is empty or does not exist"
        );
    }

    #[test]
    fn python_line_splitting() {
        assert_eq!(split_lines("a\nb\n"), ["a", "b"]);
        assert_eq!(split_lines("a\r\nb\rc"), ["a", "b", "c"]);
        assert_eq!(split_lines("a\n\nb"), ["a", "", "b"]);
        assert_eq!(split_lines("x\u{2028}y\u{0c}z"), ["x", "y", "z"]);
        assert!(split_lines("").is_empty());
        assert_eq!(split_lines("\n"), [""]);
    }

    #[test]
    fn numbered_slices() {
        let text = "one\ntwo\nthree\n";
        assert_eq!(
            numbered_slice(text, 0, 2000).unwrap(),
            "     1\tone\n     2\ttwo\n     3\tthree"
        );
        assert_eq!(
            numbered_slice(text, 1, 1).unwrap(),
            "     2\ttwo\n\n... (1 more lines)"
        );
        assert_eq!(
            numbered_slice(text, 3, 5).unwrap_err().0,
            "Error: Offset 3 exceeds file length (3 lines)"
        );
        assert_eq!(numbered_slice("", 5, 5).unwrap(), "");
    }

    #[test]
    fn replacements() {
        assert_eq!(
            replace("a b a", "b", "c", false).unwrap(),
            ("a c a".into(), 1)
        );
        assert_eq!(
            replace("a b a", "a", "x", true).unwrap(),
            ("x b x".into(), 2)
        );
        assert_eq!(
            replace("a b a", "a", "x", false).unwrap_err(),
            "Error: String 'a' found 2 times. Use replace_all=True to replace all, or provide more context."
        );
        assert_eq!(
            replace("a", "z", "x", false).unwrap_err(),
            "Error: String 'z' not found in file"
        );
        // An empty old_string would multiply the file; a growth past the
        // read cap is refused before anything is built.
        assert!(
            replace("abc", "", "x", true)
                .unwrap_err()
                .contains("must not be empty")
        );
        let content = "a".repeat(1 << 20);
        let huge = "b".repeat(64);
        assert!(
            replace(&content, "a", &huge, true)
                .unwrap_err()
                .contains("over the")
        );
        assert_eq!(wrote("f.py", "a\nb\n"), "Wrote 2 lines to f.py");
        assert_eq!(edited("f.py", 2), "Edited f.py: replaced 2 occurrence(s)");
    }

    #[test]
    fn glob_lists_at_most_100() {
        let paths: Vec<String> = (0..102).map(|i| format!("./f{i:03}")).collect();
        let text = glob("*", ".", &paths);
        assert!(text.starts_with("Found 102 file(s) matching '*':\n  ./f000\n"));
        assert!(text.ends_with("  ./f099\n  ... and 2 more"), "{text}");
        assert_eq!(glob("*.x", ".", &[]), "No files matching '*.x' in .");
    }

    #[test]
    fn paths_print_as_python_does() {
        assert_eq!(pure_posix("./src/a.py"), "src/a.py");
        assert_eq!(pure_posix("src//./b"), "src/b");
        assert_eq!(pure_posix("/workspace/x/"), "/workspace/x");
        assert_eq!(pure_posix("."), ".");
        assert_eq!(pure_posix("//x"), "//x");
    }

    #[test]
    fn grep_modes() {
        let matches = parse_grep(
            "./b.py:3:print('hi')\n./a.py:1:x = 1\ngrep: ./bin: binary file matches\n./a.py:2:y: int = 2\n",
        );
        assert_eq!(matches.len(), 3);
        assert_eq!(matches[2].line, "y: int = 2");
        assert_eq!(
            grep("p", OutputMode::FilesWithMatches, &matches),
            "Files containing 'p':\n  ./a.py\n  ./b.py"
        );
        assert_eq!(
            grep("p", OutputMode::Count, &matches),
            "Found 3 match(es) for 'p'"
        );
        let long = GrepMatch {
            path: "./l".into(),
            line_number: 7,
            line: "é".repeat(150),
        };
        let content = grep("p", OutputMode::Content, &[long]);
        assert_eq!(
            content,
            format!("Matches for 'p':\n  ./l:7: {}", "é".repeat(100))
        );
        let many: Vec<GrepMatch> = (0..53)
            .map(|i| GrepMatch {
                path: format!("./f{i:02}"),
                line_number: 1,
                line: "x".into(),
            })
            .collect();
        assert!(grep("x", OutputMode::Content, &many).ends_with("\n  ... and 3 more matches"));
        assert_eq!(grep("q", OutputMode::Content, &[]), "No matches for 'q'");
    }

    #[test]
    fn hidden_paths() {
        assert!(hidden_match("./.git/config", None));
        assert!(hidden_match("./src/.env", Some(".")));
        assert!(!hidden_match("./src/main.py", None));
        assert!(!hidden_match(".github/workflows/ci.yml", Some(".github")));
        assert!(hidden_match(".github/.x", Some(".github/")));
    }

    #[test]
    fn execute_texts() {
        assert_eq!(execute("out\n", "err\n", Ending::Exited(0)), "out\nerr\n");
        assert_eq!(
            execute("", "boom\n", Ending::Exited(3)),
            "Command failed (exit code 3):\nboom\n"
        );
        assert_eq!(
            execute("partial\n", "", Ending::TimedOut),
            "Command failed (exit code 124):\nError: Command timed out\npartial"
        );
        let big = "x".repeat(MAX_EXECUTE_OUTPUT_BYTES + 10);
        let text = execute(&big, "", Ending::Exited(0));
        assert_eq!(
            text.len(),
            MAX_EXECUTE_OUTPUT_BYTES + "\n\n... (output truncated)".len()
        );
        assert!(text.ends_with("x\n\n... (output truncated)"));
        let cut = execute("y", "", Ending::OutputLimit);
        assert_eq!(
            cut,
            "Command failed (exit code 1):\ny\n\n... (output truncated)"
        );
    }

    #[test]
    fn decoding() {
        assert_eq!(decode("a.bin", b"hi").as_deref(), Some("hi"));
        assert_eq!(decode("a.bin", b"\x89PNG\0\xff\xfe\0"), None);
        assert_eq!(
            decode("a.bin", b"a\0b\xff").as_deref(),
            Some("a\0b\u{fffd}")
        );
        assert_eq!(decode("notes.txt", b"caf\xe9").as_deref(), Some("café"));
    }
}
