//! `[admin]` → [`AdminSettings`]: the listen address parsed, the token read,
//! and the rule "a token is required off loopback" enforced, each error
//! naming the key.

use std::net::SocketAddr;
use std::path::Path;

use crate::config::{AdminSection, ConfigError};
use crate::secret::Secret;

/// The resolved admin listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminSettings {
    /// `None` = off (`listen = ""`).
    pub listen: Option<SocketAddr>,
    /// Bearer token, when `token_file` is set.
    pub token: Option<Secret<String>>,
}

impl AdminSettings {
    /// Checks and resolves `[admin]` of the file named `origin`; relative
    /// token paths are taken as given (relative to the working directory).
    pub fn resolve(section: &AdminSection, origin: &str) -> Result<Self, ConfigError> {
        let listen = match section.listen.trim() {
            "" => None,
            s => Some(s.parse::<SocketAddr>().map_err(|_| ConfigError::Invalid {
                origin: origin.to_owned(),
                key: "admin.listen".to_owned(),
                value: format!("{s:?}"),
                problem: "is not an address".to_owned(),
                expected: "\"IP:PORT\", e.g. \"127.0.0.1:9641\", or \"\" to turn it off".to_owned(),
            })?),
        };
        let token = match section.token_file.as_str() {
            "" => None,
            path => Some(read_token(Path::new(path), origin)?),
        };
        if let Some(addr) = listen {
            if !addr.ip().is_loopback() && token.is_none() {
                return Err(ConfigError::Invalid {
                    origin: origin.to_owned(),
                    key: "admin.token_file".to_owned(),
                    value: "\"\"".to_owned(),
                    problem: format!(
                        "is required because admin.listen = \"{addr}\" is not a loopback address"
                    ),
                    expected: "a file holding a bearer token (e.g. made with \
                               `head -c 32 /dev/urandom | base64 > /etc/tern/admin.token`), \
                               or admin.listen on 127.0.0.1 / [::1]"
                        .to_owned(),
                });
            }
        }
        Ok(Self { listen, token })
    }
}

/// Reads a token file: its first line, trimmed; empty is an error.
pub fn read_token(path: &Path, origin: &str) -> Result<Secret<String>, ConfigError> {
    let invalid = |problem: String| ConfigError::Invalid {
        origin: origin.to_owned(),
        key: "admin.token_file".to_owned(),
        value: format!("{:?}", path.display().to_string()),
        problem,
        expected: "a readable file whose first line is the token".to_owned(),
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| invalid(format!("cannot be read ({e})")))?;
    let token = text.lines().next().unwrap_or("").trim();
    if token.is_empty() {
        return Err(invalid("holds no token".to_owned()));
    }
    Ok(Secret::new(token.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(listen: &str, token_file: &str) -> AdminSection {
        AdminSection {
            listen: listen.to_owned(),
            token_file: token_file.to_owned(),
        }
    }

    #[test]
    fn default_is_loopback_without_token() {
        let s = AdminSettings::resolve(&AdminSection::default(), "t.toml").unwrap();
        assert_eq!(s.listen, Some("127.0.0.1:9641".parse().unwrap()));
        assert!(s.token.is_none());
        let off = AdminSettings::resolve(&section("", ""), "t.toml").unwrap();
        assert_eq!(off.listen, None);
    }

    #[test]
    fn public_listen_requires_a_token() {
        let e = AdminSettings::resolve(&section("0.0.0.0:9641", ""), "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("t.toml: admin.token_file: "), "{e}");
        assert!(e.contains("not a loopback address"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tok");
        std::fs::write(&path, "s3cret\n").unwrap();
        let s = AdminSettings::resolve(&section("0.0.0.0:9641", path.to_str().unwrap()), "t.toml")
            .unwrap();
        assert_eq!(s.token.unwrap().expose(), "s3cret");
    }

    #[test]
    fn bad_values_name_their_key() {
        let e = AdminSettings::resolve(&section("localhost", ""), "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("t.toml: admin.listen: \"localhost\""), "{e}");
        let e = AdminSettings::resolve(&section("[::1]:1", "/nonexistent/tok"), "t.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("admin.token_file") && e.contains("cannot be read"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty");
        std::fs::write(&path, "\n").unwrap();
        let e = AdminSettings::resolve(&section("[::1]:1", path.to_str().unwrap()), "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("holds no token"), "{e}");
    }
}
