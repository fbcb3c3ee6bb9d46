//! Errors from loading and checking a configuration.

use std::path::PathBuf;

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The text is not TOML, or does not fit the config types (unknown field, wrong type,
    /// bad duration...). `line` and `column` are 1-based.
    #[error("{}line {line}, column {column}: {message}", origin(path.as_ref()))]
    Parse {
        /// The file, when the text came from one.
        path: Option<PathBuf>,
        /// Line of the offending text.
        line: usize,
        /// Column (in characters) of the offending text.
        column: usize,
        /// What is wrong, e.g. "unknown field `foo`, expected one of `listen`, ...".
        message: String,
    },
    /// The config parsed but is not usable; every problem found, one per entry.
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
    /// An upstream URL given for zero-config mode is not usable.
    #[error("invalid upstream URL: {0}")]
    Url(String),
}

fn origin(path: Option<&PathBuf>) -> String {
    path.map(|p| format!("{}: ", p.display()))
        .unwrap_or_default()
}

impl ConfigError {
    /// Turn a `toml` error into [`ConfigError::Parse`], locating its span in `text`.
    pub(crate) fn from_toml(err: &toml::de::Error, text: &str, path: Option<PathBuf>) -> Self {
        // Errors without a span are about the document as a whole; point at its start.
        let offset = err.span().map_or(0, |s| s.start).min(text.len());
        let (line, column) = line_column(text, offset);
        ConfigError::Parse {
            path,
            line,
            column,
            message: err.message().trim_end().to_owned(),
        }
    }
}

/// 1-based line and character column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    // toml spans are char boundaries, but stay safe if one ever is not.
    let mut offset = offset;
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::line_column;

    #[test]
    fn line_column_counts_from_one_and_in_characters() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        // 'é' is two bytes but one column.
        assert_eq!(line_column(text, 9), (2, 3));
    }
}
