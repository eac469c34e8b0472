//! TURN REST API credentials (draft-uberti-behave-turn-rest-00, as used by
//! coturn's `use-auth-secret`): username `expiry[:user]`, password
//! base64(HMAC-SHA1(secret, username)).

use base64::Engine;
use ring::hmac;

/// A parsed REST username: the expiry (Unix seconds) and the optional user part.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RestUsername<'a> {
    pub expiry: u64,
    pub user: Option<&'a str>,
}

impl<'a> RestUsername<'a> {
    /// `expiry` or `expiry:user`; the expiry is decimal Unix seconds.
    pub fn parse(username: &'a str) -> Option<Self> {
        let (ts, user) = match username.split_once(':') {
            Some((ts, user)) => (ts, Some(user)),
            None => (username, None),
        };
        if ts.is_empty() || ts.len() > 20 || !ts.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Self {
            expiry: ts.parse().ok()?,
            user,
        })
    }
}

/// base64(HMAC-SHA1(secret, username)).
///
/// What a backend hands a browser for tern's `rest_secrets`:
///
/// ```
/// use tern::proto::auth::{RestUsername, rest_password};
///
/// let username = "1767225600:alice"; // expiry (Unix seconds) : user
/// let credential = rest_password(b"s3cret", username);
/// assert_eq!(credential.len(), 28); // base64 of a 20-byte HMAC-SHA1
/// assert_eq!(RestUsername::parse(username).unwrap().expiry, 1_767_225_600);
/// ```
pub fn rest_password(secret: &[u8], username: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms() {
        assert_eq!(
            RestUsername::parse("1700000000"),
            Some(RestUsername {
                expiry: 1_700_000_000,
                user: None
            })
        );
        assert_eq!(
            RestUsername::parse("1700000000:alice"),
            Some(RestUsername {
                expiry: 1_700_000_000,
                user: Some("alice")
            })
        );
        assert_eq!(RestUsername::parse("alice"), None);
        assert_eq!(RestUsername::parse(":alice"), None);
        assert_eq!(RestUsername::parse("99999999999999999999999"), None);
    }

    #[test]
    fn password_is_base64_hmac_sha1() {
        // Computed independently: printf '%s' 1234567890:user | openssl dgst -sha1 -hmac secret -binary | base64
        assert_eq!(
            rest_password(b"secret", "1234567890:user"),
            "tHbOsg6j8vjx6g3+R1ACZpLMHG0="
        );
    }
}
