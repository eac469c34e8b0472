//! `auth.rest_secrets_file`: TURN REST secrets read from a file, one per
//! line, so they can come from a mounted Kubernetes Secret or a vault agent
//! instead of the config file (and be re-read with it on reload).

use super::ConfigError;
use crate::secret::Secret;

/// Parses `text`, the file at `path` as the host read it (through
/// `Host::read_to_string`, so resolving opens no file itself): one secret per line; blank lines and lines starting with
/// `#` are skipped; surrounding whitespace (a trailing newline) is trimmed.
/// A file without any secret is an error: it is a mistake, not "no auth".
pub(super) fn read(
    origin: &str,
    path: &str,
    text: std::io::Result<String>,
) -> Result<Vec<Secret<String>>, ConfigError> {
    let err = |problem: String| ConfigError::Invalid {
        origin: origin.to_owned(),
        key: "auth.rest_secrets_file".to_owned(),
        value: format!("\"{path}\""),
        problem,
        expected: "a readable file with one secret per line (e.g. a mounted Kubernetes \
                   Secret: /etc/tern/secrets/rest_secrets), or \"\" for none"
            .to_owned(),
    };
    let text = text.map_err(|e| err(format!("cannot be read ({e})")))?;
    let secrets: Vec<Secret<String>> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| Secret::new(l.to_owned()))
        .collect();
    if secrets.is_empty() {
        return Err(err("holds no secret".to_owned()));
    }
    Ok(secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_comments_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        std::fs::write(&p, "# rotate: new first\nnew-secret\n\n  old-secret \n").unwrap();
        let got = read("t.toml", p.to_str().unwrap(), std::fs::read_to_string(&p)).unwrap();
        let got: Vec<&str> = got.iter().map(|s| s.expose().as_str()).collect();
        assert_eq!(got, ["new-secret", "old-secret"]);

        std::fs::write(&p, "# nothing\n\n").unwrap();
        let e = read("t.toml", p.to_str().unwrap(), std::fs::read_to_string(&p))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("auth.rest_secrets_file") && e.contains("no secret"),
            "{e}"
        );
        assert!(!e.contains("nothing"), "file content is not echoed: {e}");

        let e = read(
            "t.toml",
            "/nonexistent/tern",
            std::fs::read_to_string("/nonexistent/tern"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("cannot be read"), "{e}");
    }
}
