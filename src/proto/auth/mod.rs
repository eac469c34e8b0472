//! Long-term credentials (RFC 8489 §9.2): static users and TURN REST API
//! shared secrets, looked up by USERNAME; and stateless nonces.

mod key;
mod nonce;
mod rest;

use std::fmt;

use md5::{Digest, Md5};

pub use key::{AlgKey, OFFERED_ALGORITHMS, PasswordAlgorithm, Sha256Key, offered, userhash};
pub use nonce::{NONCE_COOKIE, NONCE_LEN, NonceKey, NonceState};
pub use rest::{RestUsername, rest_password};

use crate::proto::hash::Map;
use crate::secret::Secret;

/// The long-term key: MD5(username ":" realm ":" password), RFC 8489 §9.2.2.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct LongTermKey(pub [u8; 16]);

impl fmt::Debug for LongTermKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LongTermKey([redacted])")
    }
}

impl LongTermKey {
    /// MD5("username:realm:password"), as `tern key` prints it for
    /// `auth.users[].key` (the same value as coturn's `turnadmin -k`):
    ///
    /// ```
    /// use tern::proto::auth::LongTermKey;
    ///
    /// let key = LongTermKey::derive("alice", "tern", "secret");
    /// assert_eq!(key.to_hex().len(), 32);
    /// assert_eq!(LongTermKey::from_hex(&key.to_hex()), Some(key));
    /// ```
    pub fn derive(username: &str, realm: &str, password: &str) -> Self {
        let mut h = Md5::new();
        h.update(username.as_bytes());
        h.update(b":");
        h.update(realm.as_bytes());
        h.update(b":");
        h.update(password.as_bytes());
        Self(h.finalize().into())
    }

    /// Parses 32 hex digits (as printed by `tern key` or coturn's `turnadmin -k`).
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 16];
        key::decode_hex(s, &mut out)?;
        Some(Self(out))
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Why a USERNAME has no key.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum AuthError {
    #[error("unknown username")]
    UnknownUser,
    #[error("TURN REST credential expired")]
    Expired,
    #[error("the user has no key for the requested password algorithm")]
    NoKeyForAlgorithm,
}

/// A static user's keys: a password gives both; a configured key gives
/// only its algorithm's.
#[derive(Clone, Copy, Debug, Default)]
struct UserKeys {
    md5: Option<LongTermKey>,
    sha256: Option<Sha256Key>,
}

/// The credential store: static users, then REST secrets.
///
/// USERHASH (RFC 8489 §14.4) is resolved through an index of
/// SHA-256(username:realm) of the static users. TURN REST usernames
/// (`expiry:user`) cannot be: they are minted by the application and never
/// listed, and the hash hides the expiry the password is derived from, so a
/// USERHASH of a REST username matches nobody and is answered 401. REST
/// clients send USERNAME (with either algorithm).
#[derive(Clone, Debug)]
pub struct Credentials {
    users: Map<String, UserKeys>,
    /// USERHASH → static username (SipHash: keys come from the network).
    by_hash: Map<[u8; 32], String>,
    rest_secrets: Vec<Secret<Vec<u8>>>,
    nonce_key: NonceKey,
}

impl Credentials {
    /// An empty store whose nonces are keyed by `nonce_key` (32 random bytes
    /// shared by all shards of one server).
    pub fn new(nonce_key: [u8; 32]) -> Self {
        Self {
            users: Map::default(),
            by_hash: Map::default(),
            rest_secrets: Vec::new(),
            nonce_key: NonceKey::new(nonce_key),
        }
    }

    pub fn add_user_password(&mut self, username: &str, realm: &str, password: &str) {
        let keys = UserKeys {
            md5: Some(LongTermKey::derive(username, realm, password)),
            sha256: Some(Sha256Key::derive(username, realm, password)),
        };
        self.insert_user(username, realm, keys);
    }

    /// A static user with a pre-hashed MD5 key (no SHA-256 unless
    /// [`Credentials::add_user_sha256_key`] adds one).
    pub fn add_user_key(&mut self, username: &str, realm: &str, key: LongTermKey) {
        let sha256 = self.users.get(username).and_then(|k| k.sha256);
        let keys = UserKeys {
            md5: Some(key),
            sha256,
        };
        self.insert_user(username, realm, keys);
    }

    /// A static user's pre-hashed SHA-256 key.
    pub fn add_user_sha256_key(&mut self, username: &str, realm: &str, key: Sha256Key) {
        let md5 = self.users.get(username).and_then(|k| k.md5);
        let keys = UserKeys {
            md5,
            sha256: Some(key),
        };
        self.insert_user(username, realm, keys);
    }

    fn insert_user(&mut self, username: &str, realm: &str, keys: UserKeys) {
        self.by_hash
            .insert(userhash(username, realm), username.to_owned());
        self.users.insert(username.to_owned(), keys);
    }

    /// The static user whose SHA-256(username:realm) is `hash`.
    pub fn user_by_hash(&self, hash: &[u8]) -> Option<&str> {
        let hash: &[u8; 32] = hash.try_into().ok()?;
        self.by_hash.get(hash).map(String::as_str)
    }

    /// Adds a TURN REST shared secret. Several may be active (rotation):
    /// the first one whose password matches wins.
    pub fn add_rest_secret(&mut self, secret: &str) {
        self.rest_secrets
            .push(Secret::new(secret.as_bytes().to_vec()));
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.rest_secrets.is_empty()
    }

    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    pub fn rest_secret_count(&self) -> usize {
        self.rest_secrets.len()
    }

    /// The first REST secret, the one new credentials are signed with (the
    /// others are only accepted, so rotation is: add the new secret first,
    /// remove the old one once its credentials have expired).
    pub fn signing_rest_secret(&self) -> Option<&Secret<Vec<u8>>> {
        self.rest_secrets.first()
    }

    pub fn nonce_key(&self) -> &NonceKey {
        &self.nonce_key
    }

    /// Candidate MD5 keys for `username`; see [`Credentials::keys_for_alg`].
    pub fn keys_for(
        &self,
        username: &str,
        realm: &str,
        unix_now: u64,
        mut each: impl FnMut(LongTermKey) -> bool,
    ) -> Result<bool, AuthError> {
        self.keys_for_alg(
            username,
            realm,
            unix_now,
            PasswordAlgorithm::Md5,
            |k| matches!(k, AlgKey::Md5(k) if each(k)),
        )
    }

    /// Candidate keys of algorithm `alg` for `username`, in lookup order: a
    /// static user first, then one key per REST secret. The caller tries
    /// each against the message integrity; with one secret (the usual case)
    /// that is one HMAC. A static user without a key of `alg` (only an MD5
    /// `key` configured) is [`AuthError::NoKeyForAlgorithm`].
    pub fn keys_for_alg(
        &self,
        username: &str,
        realm: &str,
        unix_now: u64,
        alg: PasswordAlgorithm,
        mut each: impl FnMut(AlgKey) -> bool,
    ) -> Result<bool, AuthError> {
        if let Some(k) = self.users.get(username) {
            let key = match alg {
                PasswordAlgorithm::Md5 => k.md5.map(AlgKey::Md5),
                PasswordAlgorithm::Sha256 => k.sha256.map(AlgKey::Sha256),
            };
            return key.map(each).ok_or(AuthError::NoKeyForAlgorithm);
        }
        let Some(rest) = RestUsername::parse(username) else {
            return Err(AuthError::UnknownUser);
        };
        if self.rest_secrets.is_empty() {
            return Err(AuthError::UnknownUser);
        }
        if rest.expiry <= unix_now {
            return Err(AuthError::Expired);
        }
        for secret in &self.rest_secrets {
            let password = rest_password(secret.expose(), username);
            if each(AlgKey::derive(alg, username, realm, &password)) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_term_key_matches_rfc5769_vector() {
        // RFC 5769 §2.4: username "<U+30DE><U+30C8><U+30EA><U+30C3><U+30AF><U+30B9>", realm "example.org",
        // password "TheMatrIX" (after SASLprep). The key is MD5 of "user:realm:pass".
        let k = LongTermKey::derive(
            "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}",
            "example.org",
            "TheMatrIX",
        );
        assert_eq!(k.to_hex().len(), 32);
        assert_eq!(LongTermKey::from_hex(&k.to_hex()), Some(k));
    }

    #[test]
    fn key_hex_roundtrip_and_rejects_garbage() {
        let k = LongTermKey::derive("alice", "tern", "pw");
        assert_eq!(LongTermKey::from_hex(&k.to_hex()), Some(k));
        assert_eq!(LongTermKey::from_hex("zz"), None);
        assert_eq!(LongTermKey::from_hex(&"g".repeat(32)), None);
        assert_eq!(LongTermKey::from_hex("é".repeat(16).as_str()), None);
    }

    #[test]
    fn static_user_then_rest_secret() {
        let mut c = Credentials::new([7; 32]);
        c.add_user_password("alice", "tern", "pw");
        c.add_rest_secret("old");
        c.add_rest_secret("new");
        let want = LongTermKey::derive("alice", "tern", "pw");
        assert_eq!(c.keys_for("alice", "tern", 0, |k| k == want), Ok(true));

        let user = "2000:bob";
        let pw_new = rest_password(b"new", user);
        let want = LongTermKey::derive(user, "tern", &pw_new);
        assert_eq!(c.keys_for(user, "tern", 1000, |k| k == want), Ok(true));
        assert_eq!(
            c.keys_for(user, "tern", 2000, |_| true),
            Err(AuthError::Expired)
        );
        assert_eq!(
            c.keys_for("mallory", "tern", 0, |_| true),
            Err(AuthError::UnknownUser)
        );
        let wrong = LongTermKey::derive(user, "tern", "guess");
        assert_eq!(c.keys_for(user, "tern", 1000, |k| k == wrong), Ok(false));
    }

    #[test]
    fn debug_never_shows_keys_or_secrets() {
        let mut c = Credentials::new([7; 32]);
        c.add_user_password("alice", "tern", "hunter2");
        c.add_rest_secret("s3cr3t");
        let d = format!("{c:?}");
        assert!(!d.contains("hunter2") && !d.contains("s3cr3t"), "{d}");
        let key = LongTermKey::derive("alice", "tern", "hunter2");
        assert!(!d.contains(&key.to_hex()), "{d}");
    }
}
