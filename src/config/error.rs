//! `ConfigError`: every way a config file or a CLI override can be wrong,
//! each naming where (file or flag), which key, the value, what was expected
//! and, where it helps, how to fix it.

use std::fmt;

/// An error in the configuration. Its `Display` is meant for the operator:
///
/// ```text
/// tern.toml: relay.ports: "70000-1" is not a port range; expected "LOW-HIGH" with 1 <= LOW <= HIGH <= 65535, e.g. "49152-65535"
/// ```
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error(
        "{file}: cannot read the config file: {error}; check the path given to --config, \
         or omit --config to run with the built-in default"
    )]
    Read {
        file: String,
        /// Not `#[source]`: the message already includes it.
        error: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown key, or a value of the wrong type.
    #[error("{file}:{line}:{col}: {table}{message}{snippet}")]
    Syntax {
        file: String,
        /// `in [server]: ` when the error is inside a table, else empty.
        table: String,
        /// 1-based line (0 if toml gave no position).
        line: usize,
        /// 1-based column (0 if toml gave no position).
        col: usize,
        /// toml's own message (for example "unknown field `bogus`, expected one of …").
        message: String,
        /// The offending source line with a caret under the column (or empty).
        snippet: String,
    },
    /// A value parsed as TOML but is not acceptable.
    #[error("{origin}: {key}: {value} {problem}; expected {expected}")]
    Invalid {
        /// The file name, or `command line (--flag)` for an override.
        origin: String,
        /// Dotted key, for example `relay.ports` or `auth.users[1]`.
        key: String,
        /// The value as written (quoted), or `[redacted]` for secrets.
        value: String,
        /// What is wrong, for example "is not a port range".
        problem: String,
        /// What would be right, with an example or a fix.
        expected: String,
    },
}

impl ConfigError {
    /// Builds a `Syntax` error from toml's error and the source text.
    pub(crate) fn syntax(file: &str, text: &str, err: &toml::de::Error) -> Self {
        let (line, col, snippet) = match err.span() {
            Some(span) => position(text, span.start),
            None => (0, 0, String::new()),
        };
        let table = match enclosing_table(text, line) {
            Some(t) => format!("in {t}: "),
            None => String::new(),
        };
        Self::Syntax {
            file: file.to_owned(),
            table,
            line,
            col,
            message: err.message().trim_end().to_owned(),
            snippet,
        }
    }

    /// The dotted key this error is about, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Invalid { key, .. } => Some(key),
            Self::Read { .. } | Self::Syntax { .. } => None,
        }
    }
}

/// 1-based line and column of byte `offset` in `text`, plus a two-line
/// snippet (the source line and a caret).
fn position(text: &str, offset: usize) -> (usize, usize, String) {
    let offset = offset.min(text.len());
    let before = &text[..text.floor_char_boundary_compat(offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    let src_line = text[line_start..].lines().next().unwrap_or("");
    let snippet = format!("\n  | {src_line}\n  | {}^", " ".repeat(col - 1));
    (line, col, snippet)
}

/// The `[table]` header in force at 1-based `line`, if any.
fn enclosing_table(text: &str, line: usize) -> Option<String> {
    text.lines()
        .take(line)
        .filter_map(|l| {
            let l = l.trim();
            let header = l.strip_prefix('[')?;
            let end = header.find(']')?;
            // `[[x]]` arrays of tables keep their inner brackets.
            Some(format!(
                "[{}]",
                &header[..end + usize::from(header.starts_with('['))]
            ))
        })
        .last()
}

/// `str::floor_char_boundary` is unstable; this is the same thing.
trait FloorCharBoundary {
    fn floor_char_boundary_compat(&self, i: usize) -> usize;
}

impl FloorCharBoundary for str {
    fn floor_char_boundary_compat(&self, mut i: usize) -> usize {
        while !self.is_char_boundary(i) {
            i -= 1;
        }
        i
    }
}

/// Formats a value for an error message: quoted like TOML would show it.
pub(crate) fn quoted(v: impl fmt::Display) -> String {
    format!("{:?}", v.to_string())
}
