//! TOML files with errors that name the file, line and column.
//!
//! Every file sandpit reads (runtimes, config, themes, keymaps) reports
//! problems the same way: `path:line:column: message`.

use std::fmt;
use std::ops::Range;

use serde::de::DeserializeOwned;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TomlFileError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for TomlFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

impl std::error::Error for TomlFileError {}

/// Locates byte spans of one file's text for error messages.
#[derive(Debug, Clone, Copy)]
pub struct Locator<'a> {
    text: &'a str,
    file: &'a str,
}

impl<'a> Locator<'a> {
    pub fn new(text: &'a str, file: &'a str) -> Self {
        Self { text, file }
    }

    pub fn error(&self, span: Range<usize>, message: impl Into<String>) -> TomlFileError {
        let (line, column) = line_column(self.text, span.start);
        TomlFileError {
            file: self.file.to_string(),
            line,
            column,
            message: message.into(),
        }
    }

    pub fn line_of(&self, offset: usize) -> usize {
        line_column(self.text, offset).0
    }

    /// Deserializes the whole text, turning toml's error into a located one.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, TomlFileError> {
        toml::from_str(self.text)
            .map_err(|err| self.error(err.span().unwrap_or(0..0), err.message().trim().to_string()))
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_from_one() {
        let text = "ab\ncde\nf";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 4), (2, 2));
        assert_eq!(line_column(text, 7), (3, 1));
        assert_eq!(line_column(text, 100), (3, 2));
    }

    #[test]
    fn parse_errors_carry_position() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct T {
            a: u32,
        }
        let err = Locator::new("a = 1\nb = 2\n", "f.toml")
            .parse::<T>()
            .unwrap_err();
        assert_eq!((err.file.as_str(), err.line, err.column), ("f.toml", 2, 1));
        assert!(err.message.contains("unknown field `b`"), "{}", err.message);
    }
}
