//! RFC 8489 §9.2 password algorithms: SHA-256 long-term keys, the
//! PASSWORD-ALGORITHM(S) attribute values, and USERHASH.

use std::fmt;

use ring::digest;

use super::LongTermKey;

/// A password algorithm of the IANA registry, RFC 8489 §18.5.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PasswordAlgorithm {
    /// 0x0001: key = MD5(username ":" realm ":" password), 16 bytes.
    Md5,
    /// 0x0002: key = SHA-256(username ":" realm ":" password), 32 bytes.
    Sha256,
}

impl PasswordAlgorithm {
    pub const fn number(self) -> u16 {
        match self {
            Self::Md5 => 0x0001,
            Self::Sha256 => 0x0002,
        }
    }

    /// Decodes one PASSWORD-ALGORITHM value (RFC 8489 §14.12): a 2-byte
    /// algorithm, a 2-byte parameter length, then the parameters. MD5 and
    /// SHA-256 take no parameters, so anything but 4 bytes with length 0 is
    /// `None`, as is an algorithm tern does not know.
    pub fn decode(value: &[u8]) -> Option<Self> {
        match value {
            [0x00, 0x01, 0x00, 0x00] => Some(Self::Md5),
            [0x00, 0x02, 0x00, 0x00] => Some(Self::Sha256),
            _ => None,
        }
    }
}

/// The PASSWORD-ALGORITHMS value tern offers in every 401 and 438
/// (RFC 8489 §14.11): SHA-256 first (preferred), then MD5, each without
/// parameters. A request that names algorithms must echo exactly this.
pub const OFFERED_ALGORITHMS: [u8; 8] = [0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00];

/// Is `alg` (a PASSWORD-ALGORITHM value) one of [`OFFERED_ALGORITHMS`]?
pub fn offered(alg: PasswordAlgorithm) -> bool {
    OFFERED_ALGORITHMS
        .chunks_exact(4)
        .any(|c| PasswordAlgorithm::decode(c) == Some(alg))
}

/// The SHA-256 long-term key, RFC 8489 §9.2.2.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Sha256Key(pub [u8; 32]);

impl fmt::Debug for Sha256Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sha256Key([redacted])")
    }
}

impl Sha256Key {
    /// SHA-256("username:realm:password"), as `tern key --algorithm sha256`
    /// prints it for `auth.users[].key_sha256`:
    ///
    /// ```
    /// use tern::proto::auth::Sha256Key;
    ///
    /// let key = Sha256Key::derive("alice", "tern", "secret");
    /// assert_eq!(Sha256Key::from_hex(&key.to_hex()), Some(key));
    /// ```
    pub fn derive(username: &str, realm: &str, password: &str) -> Self {
        Self(sha256_joined(&[username, realm, password]))
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        decode_hex(s, &mut out)?;
        Some(Self(out))
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A long-term key of either algorithm: what a request was checked with.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AlgKey {
    Md5(LongTermKey),
    Sha256(Sha256Key),
}

impl AlgKey {
    /// The HMAC key bytes (16 for MD5, 32 for SHA-256).
    pub fn bytes(&self) -> &[u8] {
        match self {
            Self::Md5(k) => &k.0,
            Self::Sha256(k) => &k.0,
        }
    }

    pub fn derive(alg: PasswordAlgorithm, username: &str, realm: &str, password: &str) -> Self {
        match alg {
            PasswordAlgorithm::Md5 => Self::Md5(LongTermKey::derive(username, realm, password)),
            PasswordAlgorithm::Sha256 => Self::Sha256(Sha256Key::derive(username, realm, password)),
        }
    }
}

/// USERHASH = SHA-256(username ":" realm), RFC 8489 §14.4.
pub fn userhash(username: &str, realm: &str) -> [u8; 32] {
    sha256_joined(&[username, realm])
}

fn sha256_joined(parts: &[&str]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            ctx.update(b":");
        }
        ctx.update(p.as_bytes());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Decodes `2 * out.len()` hex digits (an optional `0x` prefix allowed).
pub(super) fn decode_hex(s: &str, out: &mut [u8]) -> Option<()> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if s.len() != 2 * out.len() || !s.is_ascii() {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_values_are_strict() {
        assert_eq!(
            PasswordAlgorithm::decode(&[0, 2, 0, 0]),
            Some(PasswordAlgorithm::Sha256)
        );
        assert_eq!(
            PasswordAlgorithm::decode(&[0, 1, 0, 0]),
            Some(PasswordAlgorithm::Md5)
        );
        // Unknown algorithm, parameters where none are defined, short values.
        assert_eq!(PasswordAlgorithm::decode(&[0, 3, 0, 0]), None);
        assert_eq!(PasswordAlgorithm::decode(&[0, 2, 0, 4, 1, 2, 3, 4]), None);
        assert_eq!(PasswordAlgorithm::decode(&[0, 2]), None);
        assert!(offered(PasswordAlgorithm::Sha256) && offered(PasswordAlgorithm::Md5));
    }

    #[test]
    fn sha256_key_hex_and_userhash() {
        let k = Sha256Key::derive("alice", "tern", "pw");
        assert_eq!(Sha256Key::from_hex(&k.to_hex()), Some(k));
        assert_eq!(Sha256Key::from_hex(&k.to_hex()[..62]), None);
        assert!(!format!("{k:?}").contains(&k.to_hex()[..8]));
        assert_ne!(userhash("alice", "tern"), userhash("alice", "tern2"));
    }
}
