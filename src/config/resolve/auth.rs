//! `[auth]`: realm, nonce lifetime, static users and TURN REST secrets,
//! turned into the core's `Credentials`.

use std::path::Path;
use std::time::Duration;

use super::super::error::quoted;
use super::super::{ConfigError, FileConfig, UserEntry};
use super::Host;
use super::overrides::Ctx;
use super::parse::positive_secs;
use crate::proto::auth::{Credentials, LongTermKey, Sha256Key};

/// The `[auth]` part of `proto::config::Config`.
pub(super) struct Auth {
    pub(super) realm: String,
    pub(super) nonce_lifetime: Duration,
    pub(super) credentials: Credentials,
}

impl FileConfig {
    /// `[auth]`. The host's nonce key seeds the stateless nonces
    /// (`Credentials::new`); `rest_secrets_file` is read through the host.
    /// No users and no secrets gives empty credentials; that is not an error
    /// here (`tern serve` generates a user before resolving).
    pub(super) fn resolve_auth(&self, ctx: &Ctx, host: &dyn Host) -> Result<Auth, ConfigError> {
        let a = &self.auth;
        let realm = a.realm.trim();
        if realm.is_empty() || realm.len() > 127 || realm.contains('"') {
            return Err(ctx.err(
                "auth.realm",
                quoted(&a.realm),
                "is not a usable realm",
                "1 to 127 characters without '\"', e.g. \"tern\" or \"example.org\"",
            ));
        }
        let nonce_lifetime = positive_secs(ctx, "auth.nonce_lifetime_secs", a.nonce_lifetime_secs)?;
        let mut credentials = Credentials::new(host.nonce_key());
        for (i, u) in a.users.iter().enumerate() {
            add_user(ctx, &mut credentials, i, u, realm, &a.users[..i])?;
        }
        for (i, secret) in a.rest_secrets.iter().enumerate() {
            if secret.expose().is_empty() {
                return Err(ctx.err(
                    format!("auth.rest_secrets[{i}]"),
                    "\"\"",
                    "is empty",
                    "a long random string, e.g. from `openssl rand -base64 32`",
                ));
            }
            credentials.add_rest_secret(secret.expose());
        }
        let file = a.rest_secrets_file.trim();
        if !file.is_empty() {
            let text = host.read_to_string(Path::new(file));
            for s in super::super::secrets_file::read(ctx.file(), file, text)? {
                credentials.add_rest_secret(s.expose());
            }
        }
        Ok(Auth {
            realm: realm.to_owned(),
            nonce_lifetime,
            credentials,
        })
    }
}

/// `auth.users[i]`: a unique username with exactly one of password and key.
fn add_user(
    ctx: &Ctx,
    creds: &mut Credentials,
    i: usize,
    u: &UserEntry,
    realm: &str,
    earlier: &[UserEntry],
) -> Result<(), ConfigError> {
    let key = format!("auth.users[{i}]");
    let name = &u.username;
    if name.is_empty() || name.len() > 513 {
        return Err(ctx.err(
            format!("{key}.username"),
            quoted(name),
            "is not a usable username",
            "1 to 513 bytes (RFC 8489 §14.3)",
        ));
    }
    if earlier.iter().any(|e| &e.username == name) {
        return Err(ctx.err(
            format!("{key}.username"),
            quoted(name),
            "is listed twice",
            "each username once",
        ));
    }
    if user_sha256_key(ctx, u, &key, realm, creds)? && u.key.is_none() {
        return Ok(());
    }
    match (&u.password, &u.key) {
        (Some(pw), None) => {
            if pw.expose().is_empty() {
                return Err(ctx.err(
                    format!("{key}.password"),
                    "\"\"",
                    format!("is empty for user {name:?}"),
                    "a non-empty password",
                ));
            }
            creds.add_user_password(name, realm, pw.expose());
        }
        (None, Some(hex)) => {
            let k = LongTermKey::from_hex(hex.expose().trim()).ok_or_else(|| {
                ctx.err(
                    format!("{key}.key"),
                    "[redacted]",
                    format!("of user {name:?} is not a long-term key"),
                    format!(
                        "32 hex digits of MD5(\"{name}:{realm}:PASSWORD\"); print it with \
                         `tern key --user {name} --realm {realm} --password PASSWORD`"
                    ),
                )
            })?;
            creds.add_user_key(name, realm, k);
        }
        (Some(_), Some(_)) => {
            return Err(ctx.err(
                key,
                quoted(name),
                "has both password and key",
                "exactly one of them; remove one",
            ));
        }
        (None, None) => {
            return Err(ctx.err(
                key,
                quoted(name),
                "has neither password nor key",
                "password = \"...\" or key = \"<32 hex digits>\"",
            ));
        }
    }
    Ok(())
}

/// Adds `key_sha256` of a static user, if set; true if it was.
fn user_sha256_key(
    ctx: &Ctx,
    u: &UserEntry,
    key: &str,
    realm: &str,
    creds: &mut Credentials,
) -> Result<bool, ConfigError> {
    let (name, Some(hex)) = (&u.username, &u.key_sha256) else {
        return Ok(false);
    };
    if u.password.is_some() {
        let why = "has both password and key_sha256";
        return Err(ctx.err(key, quoted(name), why, "a password, or keys; remove one"));
    }
    let k = Sha256Key::from_hex(hex.expose().trim()).ok_or_else(|| {
        ctx.err(
            format!("{key}.key_sha256"),
            "[redacted]",
            format!("of user {name:?} is not a SHA-256 long-term key"),
            format!(
                "64 hex digits of SHA-256(\"{name}:{realm}:PASSWORD\"); print it with \
                 `tern key --algorithm sha256 --user {name} --realm {realm} --password PASSWORD`"
            ),
        )
    })?;
    creds.add_user_sha256_key(name, realm, k);
    Ok(true)
}
