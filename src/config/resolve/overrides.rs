//! CLI `Overrides` and where each value came from (`Ctx`), so an error can
//! say "tern.toml" or "command line (--flag)".

use super::super::{ConfigError, FileConfig, UserEntry};
use crate::secret::Secret;

/// Values given on the command line; each replaces the file's value
/// (repeatable flags replace the whole list, they do not append).
/// Strings are checked by `resolve` exactly like file values, and errors
/// name the flag instead of the file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--listen` → `server.listen`.
    pub listen: Vec<String>,
    /// `--relay-address` → `relay.address`.
    pub relay_address: Option<String>,
    /// `--advertised-address` → `relay.advertised_address`.
    pub advertised_address: Option<String>,
    /// `--relay-ports` → `relay.ports`.
    pub relay_ports: Option<String>,
    /// `--realm` → `auth.realm`.
    pub realm: Option<String>,
    /// `--user NAME:PASSWORD` → `auth.users`.
    pub users: Vec<(String, Secret<String>)>,
    /// `--rest-secret` / `TERN_REST_SECRET` → `auth.rest_secrets`.
    pub rest_secrets: Vec<Secret<String>>,
    /// `--tls-listen` → `tls.listen`.
    pub tls_listen: Vec<String>,
    /// `--tls-cert` → `tls.cert`.
    pub tls_cert: Option<String>,
    /// `--tls-key` → `tls.key`.
    pub tls_key: Option<String>,
    /// `--workers` → `server.workers`.
    pub workers: Option<usize>,
    /// `--log-level` → `log.level`.
    pub log_level: Option<String>,
}

/// Where each value came from, so errors can say "tern.toml" or "--flag".
pub(super) struct Ctx {
    file: String,
    /// (key prefix, flag) for every overridden key.
    overridden: Vec<(&'static str, &'static str)>,
}

impl Ctx {
    /// The config file's name, for keys no flag can override.
    pub(super) fn file(&self) -> &str {
        &self.file
    }

    fn origin(&self, key: &str) -> String {
        match self.overridden.iter().find(|(k, _)| key.starts_with(k)) {
            Some((_, flag)) => format!("command line ({flag})"),
            None => self.file.clone(),
        }
    }

    /// A `ConfigError::Invalid` for `key`, naming the file or the flag it came from.
    pub(super) fn err(
        &self,
        key: impl Into<String>,
        value: impl Into<String>,
        problem: impl Into<String>,
        expected: impl Into<String>,
    ) -> ConfigError {
        let key = key.into();
        ConfigError::Invalid {
            origin: self.origin(&key),
            key,
            value: value.into(),
            problem: problem.into(),
            expected: expected.into(),
        }
    }
}

impl FileConfig {
    /// Writes the overrides into `self` and records which keys they touched.
    pub(super) fn apply(&mut self, o: &Overrides) -> Ctx {
        let mut overridden = Vec::new();
        let mut set = |field: &mut String, v: &Option<String>, key, flag| {
            if let Some(v) = v {
                field.clone_from(v);
                overridden.push((key, flag));
            }
        };
        set(
            &mut self.relay.address,
            &o.relay_address,
            "relay.address",
            "--relay-address",
        );
        set(
            &mut self.relay.advertised_address,
            &o.advertised_address,
            "relay.advertised_address",
            "--advertised-address",
        );
        set(
            &mut self.relay.ports,
            &o.relay_ports,
            "relay.ports",
            "--relay-ports",
        );
        set(&mut self.auth.realm, &o.realm, "auth.realm", "--realm");
        set(&mut self.tls.cert, &o.tls_cert, "tls.cert", "--tls-cert");
        set(&mut self.tls.key, &o.tls_key, "tls.key", "--tls-key");
        set(
            &mut self.log.level,
            &o.log_level,
            "log.level",
            "--log-level",
        );
        self.apply_lists(o, &mut overridden);
        let file = if self.origin.is_empty() {
            "config".to_owned()
        } else {
            self.origin.clone()
        };
        Ctx { file, overridden }
    }

    /// The list and number overrides, which replace rather than append.
    fn apply_lists(&mut self, o: &Overrides, overridden: &mut Vec<(&'static str, &'static str)>) {
        if !o.listen.is_empty() {
            self.server.listen.clone_from(&o.listen);
            overridden.push(("server.listen", "--listen"));
        }
        if !o.users.is_empty() {
            self.auth.users = o
                .users
                .iter()
                .map(|(name, pw)| UserEntry {
                    username: name.clone(),
                    password: Some(pw.clone()),
                    key: None,
                    key_sha256: None,
                })
                .collect();
            overridden.push(("auth.users", "--user"));
        }
        if !o.rest_secrets.is_empty() {
            self.auth.rest_secrets.clone_from(&o.rest_secrets);
            overridden.push(("auth.rest_secrets", "--rest-secret"));
        }
        if !o.tls_listen.is_empty() {
            self.tls.listen.clone_from(&o.tls_listen);
            overridden.push(("tls.listen", "--tls-listen"));
        }
        if let Some(v) = o.workers {
            self.server.workers = v;
            overridden.push(("server.workers", "--workers"));
        }
    }
}
