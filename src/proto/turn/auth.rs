//! The long-term credential check of RFC 8489 §9.2.4, with SHA-256
//! password algorithms, MESSAGE-INTEGRITY-SHA256, USERHASH and bid-down
//! protection.

use std::sync::Arc;

use super::request::{Authed, ErrExtra, Req};
use super::{Event, Server};
use crate::proto::auth::{AlgKey, AuthError, NonceState, OFFERED_ALGORITHMS, PasswordAlgorithm};
use crate::proto::stun::{AttrType, ErrorCode, Message, MessageWriter};
use crate::proto::time::Now;

/// The key that authenticated a request, and the integrity attribute its
/// responses carry: MESSAGE-INTEGRITY-SHA256 when the request used it
/// (RFC 8489 §9.2.4: "the server MUST ... use the same" integrity mechanism).
#[derive(Clone, Copy, Debug)]
pub(super) struct ReplyKey {
    key: AlgKey,
    sha256: bool,
}

impl ReplyKey {
    pub(super) fn push_integrity(&self, w: &mut MessageWriter<'_>) {
        if self.sha256 {
            w.push_integrity_sha256(self.key.bytes());
        } else {
            w.push_integrity(self.key.bytes());
        }
    }
}

/// The password algorithm of a request, with bid-down protection.
///
/// RFC 8489 §9.2.4 (<https://www.rfc-editor.org/rfc/rfc8489#section-9.2.4>),
/// for a NONCE with the cookie and the "Password algorithms" bit (every
/// nonce tern issues): "If the request contains neither PASSWORD-ALGORITHMS
/// nor PASSWORD-ALGORITHM, then the request is processed as though
/// PASSWORD-ALGORITHM were MD5. Otherwise, unless (1) PASSWORD-ALGORITHM and
/// PASSWORD-ALGORITHMS are both present, (2) PASSWORD-ALGORITHMS matches the
/// value sent in the response that sent this NONCE, and (3)
/// PASSWORD-ALGORITHM matches one of the entries in PASSWORD-ALGORITHMS, the
/// server MUST generate an error response with an error code of 400".
fn password_algorithm(msg: &Message<'_>) -> Option<PasswordAlgorithm> {
    match (
        msg.get(AttrType::PASSWORD_ALGORITHM),
        msg.get(AttrType::PASSWORD_ALGORITHMS),
    ) {
        (None, None) => Some(PasswordAlgorithm::Md5),
        (Some(alg), Some(list)) if list == OFFERED_ALGORITHMS => {
            PasswordAlgorithm::decode(alg).filter(|a| crate::proto::auth::offered(*a))
        }
        _ => None,
    }
}

impl Server {
    /// Returns `None` after queueing the error response.
    pub(super) fn authenticate(&mut self, now: Now, req: Req, msg: &Message<'_>) -> Option<Authed> {
        let sha256 = msg.has_integrity_sha256();
        if !msg.has_integrity() && !sha256 {
            let code = ErrorCode::UNAUTHENTICATED;
            self.error(now, req, code, ErrExtra::Challenge, None);
            return None;
        }
        let ident = msg.get(AttrType::USERHASH).or(msg.get(AttrType::USERNAME));
        let (Some(ident), Some(_realm), Some(nonce)) =
            (ident, msg.get(AttrType::REALM), msg.get(AttrType::NONCE))
        else {
            self.reject(now, req, ErrorCode::BAD_REQUEST, None);
            return None;
        };
        let config = Arc::clone(&self.config);
        let (ip, lifetime) = (req.from.client.ip(), config.nonce_lifetime.as_secs());
        match config
            .credentials
            .nonce_key()
            .check(nonce, now.unix_secs, ip, lifetime)
        {
            NonceState::Valid => {}
            NonceState::Stale | NonceState::Invalid => {
                self.error(now, req, ErrorCode::STALE_NONCE, ErrExtra::Challenge, None);
                return None;
            }
        }
        let alg = password_algorithm(msg);
        let hashed = msg.get(AttrType::USERHASH).is_some();
        let (Some(alg), true) = (alg, !hashed || ident.len() == 32) else {
            self.stats.bad_auth_attrs += 1;
            self.reject(now, req, ErrorCode::BAD_REQUEST, None);
            return None;
        };
        let username = if hashed {
            config.credentials.user_by_hash(ident)
        } else {
            std::str::from_utf8(ident).ok()
        };
        let Some(username) = username else {
            let why = if hashed {
                "USERHASH matches no static user"
            } else {
                "username is not UTF-8"
            };
            self.auth_failed(now, req, String::from("<unknown>"), why);
            return None;
        };
        self.check_keys(now, req, msg, username, alg, sha256)
    }

    /// Tries the user's keys of `alg` against the request's integrity.
    fn check_keys(
        &mut self,
        now: Now,
        req: Req,
        msg: &Message<'_>,
        username: &str,
        alg: PasswordAlgorithm,
        sha256: bool,
    ) -> Option<Authed> {
        let config = Arc::clone(&self.config);
        let mut found = None;
        let result =
            config
                .credentials
                .keys_for_alg(username, &config.realm, now.unix_secs, alg, |k| {
                    let ok = if sha256 {
                        msg.check_integrity_sha256(k.bytes()).is_ok()
                    } else {
                        msg.check_integrity(k.bytes()).is_ok()
                    };
                    if ok {
                        found = Some(k);
                    }
                    ok
                });
        let why = match (result, found) {
            (Ok(true), Some(key)) => {
                return Some(Authed {
                    username: username.to_owned(),
                    key: ReplyKey { key, sha256 },
                });
            }
            (Err(AuthError::Expired), _) => "REST credential expired",
            (Err(AuthError::UnknownUser), _) => "unknown username",
            (Err(AuthError::NoKeyForAlgorithm), _) => {
                "no key for the password algorithm (configure a password or key_sha256)"
            }
            _ => "bad message integrity (wrong password)",
        };
        self.auth_failed(now, req, username.to_owned(), why);
        None
    }

    fn auth_failed(&mut self, now: Now, req: Req, username: String, reason: &'static str) {
        self.stats.auth_failures += 1;
        self.events.push_back(Event::AuthFailed {
            client: req.from,
            username,
            reason,
        });
        let code = ErrorCode::UNAUTHENTICATED;
        self.error(now, req, code, ErrExtra::Challenge, None);
    }
}
