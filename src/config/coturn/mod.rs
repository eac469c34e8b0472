//! `tern import-coturn`: a coturn `turnserver.conf` → a commented `tern.toml`
//! and a report of every option that could not be carried over.
//!
//! coturn's file is its command line written one option a line: `key=value`,
//! `key value` or a bare flag (`lt-cred-mech`), `#` starting a comment line,
//! and repeatable options (`user=`, `listening-ip=`, `denied-peer-ip=`…).
//! Flags take an optional boolean (`0/off/no/false/f` is false). Lines are
//! read in three steps: `parse_lines` splits them, `options::gather`
//! collects what tern can use (and reports the rest), `render` writes TOML
//! with a comment naming the coturn line each value came from.
//!
//! The output is meant to be read: it states where tern's defaults differ
//! from coturn's (peer policy, quotas), and it is checked by the tests with
//! `tern check-config`.

mod options;
mod ranges;
mod render;
mod sections;

use std::fmt;

/// The result of an import.
#[derive(Debug)]
pub struct Import {
    /// The tern.toml text.
    pub toml: String,
    /// Options not carried over, in line order.
    pub skipped: Vec<Skipped>,
    /// Whether `toml` holds passwords, keys or REST secrets (write it 0600).
    pub has_secrets: bool,
}

/// One coturn option tern does not carry over, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// 1-based line in the coturn file.
    pub line: usize,
    /// The option name as written (without `--`).
    pub key: String,
    /// Why, and what to do instead.
    pub why: String,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}: {}", self.line, self.key, self.why)
    }
}

/// One option line of the coturn file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Line {
    pub(crate) no: usize,
    pub(crate) key: String,
    pub(crate) value: Option<String>,
}

/// Converts the text of a coturn config; `source` names it in the header.
pub fn import(text: &str, source: &str) -> Import {
    let (opts, mut skipped) = options::gather(&parse_lines(text));
    let (toml, has_secrets) = render::render(&opts, source, &mut skipped);
    skipped.sort_by_key(|s| s.line);
    Import {
        toml,
        skipped,
        has_secrets,
    }
}

/// Splits coturn's lines into options. A line is `key=value`, `key value`
/// or `key`; a leading `--` (command-line style) is accepted; a value in
/// double quotes loses them. `#` comments only a whole line, as in coturn
/// (a password may contain `#`).
pub(crate) fn parse_lines(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("--").unwrap_or(line);
        let split = line.find(|c: char| c == '=' || c.is_whitespace());
        let (key, value) = match split {
            Some(at) => {
                let rest = line[at..].trim_start();
                let rest = rest.strip_prefix('=').unwrap_or(rest).trim();
                (&line[..at], Some(unquote(rest).to_owned()))
            }
            None => (line, None),
        };
        out.push(Line {
            no: i + 1,
            key: key.to_owned(),
            value: value.filter(|v| !v.is_empty()),
        });
    }
    out
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(s)
}

#[cfg(test)]
mod tests;
