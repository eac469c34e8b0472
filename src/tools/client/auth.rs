//! Long-term credentials on the client side (RFC 8489 §9.2, RFC 8656 §7.2):
//! the one place that learns REALM and NONCE from a 401 or 438, signs
//! requests, and checks MESSAGE-INTEGRITY on success responses. The
//! blocking [`Client`](super::Client) and the pipelined
//! `Pipeline` (in `pipeline`) both go through it, so they retry
//! the same way.
//!
//! The retry rule, per request:
//! - 438 (Stale Nonce): take the new NONCE and send again;
//! - 401: send again only if something changed since the request was
//!   signed (it went out unsigned, another request has learned a newer
//!   nonce meanwhile, or this 401 carries a different NONCE or REALM).
//!   Otherwise the credentials are wrong and the 401 is the answer;
//! - at most [`MAX_AUTH_RETRIES`] retries per request.
//!
//! A nonce is reused across requests until the server refuses it: tern's
//! nonces are stateless, coturn's are per 5-tuple and cost one extra round
//! trip per new socket (as they do for a browser).

use std::net::SocketAddr;

use crate::proto::auth::LongTermKey;
use crate::proto::stun::{AttrType, Class, Message, MessageWriter, decode_addr, decode_error_code};
use crate::secret::Secret;

use super::Error;

/// 401/438 answers tolerated per request (a new nonce each time).
pub const MAX_AUTH_RETRIES: u32 = 3;

/// A username and password plus what the server told us (realm, nonce).
#[derive(Debug)]
pub struct Auth {
    user: String,
    password: Secret<String>,
    realm: Vec<u8>,
    nonce: Vec<u8>,
    key: Option<LongTermKey>,
    /// Bumped each time REALM/NONCE are learned; 0 = nothing learned yet.
    generation: u32,
}

/// How a request was signed: the credential generation it carried (0 =
/// unsigned). [`Auth::judge`] needs it to tell a stale 401 from a final one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Signed(u32);

/// What a response to a signed request means.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict<'m> {
    /// A success whose MESSAGE-INTEGRITY checked out.
    Success,
    /// 401 or 438 with credentials worth another try: send the request
    /// again, signed anew (new transaction id).
    Retry,
    /// An error response for the caller (including a final 401).
    Failed { code: u16, reason: &'m str },
}

impl Auth {
    pub fn new(user: &str, password: &str) -> Self {
        Self {
            user: user.to_owned(),
            password: Secret::new(password.to_owned()),
            realm: Vec::new(),
            nonce: Vec::new(),
            key: None,
            generation: 0,
        }
    }

    /// The REALM learned from the server (`None` before a 401/438, or
    /// when it is not UTF-8).
    pub fn realm(&self) -> Option<&str> {
        std::str::from_utf8(&self.realm)
            .ok()
            .filter(|r| !r.is_empty())
    }

    /// Appends USERNAME, REALM, NONCE and MESSAGE-INTEGRITY once a 401 has
    /// taught us the realm and nonce; before that the request goes unsigned
    /// (the first Allocate of RFC 8656 §7.2).
    pub fn sign(&self, w: &mut MessageWriter<'_>) -> Signed {
        let Some(key) = &self.key else {
            return Signed(0);
        };
        w.push(AttrType::USERNAME, self.user.as_bytes())
            .push(AttrType::REALM, &self.realm)
            .push(AttrType::NONCE, &self.nonce)
            .push_integrity(&key.0);
        Signed(self.generation)
    }

    /// Judges a response to a request signed as `signed` that has already
    /// been retried `retries` times; learns REALM/NONCE when it says
    /// [`Verdict::Retry`].
    pub fn judge<'m>(
        &mut self,
        msg: &Message<'m>,
        signed: Signed,
        retries: u32,
    ) -> Result<Verdict<'m>, Error> {
        match msg.class() {
            Class::Success => {
                let key = self
                    .key
                    .as_ref()
                    .ok_or(Error::Protocol("success without authentication"))?;
                msg.check_integrity(&key.0)
                    .map_err(|_| Error::Protocol("bad MESSAGE-INTEGRITY in a success"))?;
                return Ok(Verdict::Success);
            }
            Class::Error => {}
            Class::Request | Class::Indication => {
                return Err(Error::Protocol(
                    "a request or indication instead of a response",
                ));
            }
        }
        let (code, reason) = msg
            .get(AttrType::ERROR_CODE)
            .and_then(|v| decode_error_code(v).ok())
            .ok_or(Error::Protocol("error response without ERROR-CODE"))?;
        let worth_retrying = match code {
            438 => true,
            401 => {
                signed.0 == 0
                    || signed.0 != self.generation
                    || msg.get(AttrType::NONCE) != Some(&self.nonce[..])
                    || msg.get(AttrType::REALM) != Some(&self.realm[..])
            }
            _ => false,
        };
        if !worth_retrying || retries >= MAX_AUTH_RETRIES {
            return Ok(Verdict::Failed { code, reason });
        }
        self.learn(msg)?;
        Ok(Verdict::Retry)
    }

    /// A 300's ALTERNATE-SERVER list. Only trusted with a valid
    /// MESSAGE-INTEGRITY: an unauthenticated redirect could come from anyone
    /// on the path (RFC 8489 §10 leaves it to the client).
    pub fn alternates(&self, msg: &Message<'_>) -> Result<Vec<SocketAddr>, Error> {
        let key = self
            .key
            .as_ref()
            .ok_or(Error::Protocol("300 Try Alternate before authentication"))?;
        msg.check_integrity(&key.0)
            .map_err(|_| Error::Protocol("300 Try Alternate without valid MESSAGE-INTEGRITY"))?;
        Ok(msg
            .attrs()
            .filter(|(t, _)| *t == AttrType::ALTERNATE_SERVER)
            .filter_map(|(_, v)| decode_addr(v).ok())
            .collect())
    }

    /// Takes REALM and NONCE from a 401/438; derives the key when the realm
    /// is new.
    fn learn(&mut self, msg: &Message<'_>) -> Result<(), Error> {
        let realm = msg
            .get(AttrType::REALM)
            .ok_or(Error::Protocol("401/438 without REALM"))?;
        let nonce = msg
            .get(AttrType::NONCE)
            .ok_or(Error::Protocol("401/438 without NONCE"))?;
        if self.key.is_none() || self.realm != realm {
            let text =
                std::str::from_utf8(realm).map_err(|_| Error::Protocol("REALM is not UTF-8"))?;
            self.key = Some(LongTermKey::derive(
                &self.user,
                text,
                self.password.expose(),
            ));
            self.realm = realm.to_vec();
        }
        self.nonce = nonce.to_vec();
        self.generation = self.generation.wrapping_add(1).max(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::stun::{MessageType, Method, TransactionId};

    fn error(code: u16, nonce: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let tid = TransactionId([1; 12]);
        let mt = MessageType::new(Method::ALLOCATE, Class::Error);
        MessageWriter::new(&mut out, mt, tid)
            .push_error_code(code, "x")
            .push(AttrType::REALM, b"tern")
            .push(AttrType::NONCE, nonce);
        out
    }

    fn judge(auth: &mut Auth, resp: &[u8], signed: Signed, retries: u32) -> Verdict<'static> {
        let msg = Message::parse(resp).unwrap();
        match auth.judge(&msg, signed, retries).unwrap() {
            Verdict::Success => Verdict::Success,
            Verdict::Retry => Verdict::Retry,
            Verdict::Failed { code, .. } => Verdict::Failed { code, reason: "" },
        }
    }

    #[test]
    fn unsigned_401_is_retried_then_the_same_401_is_final() {
        let mut auth = Auth::new("u", "p");
        let r = error(401, b"n1");
        assert_eq!(judge(&mut auth, &r, Signed::default(), 0), Verdict::Retry);
        let mut buf = Vec::new();
        let mt = MessageType::new(Method::ALLOCATE, Class::Request);
        let signed = auth.sign(&mut MessageWriter::new(
            &mut buf,
            mt,
            TransactionId([2; 12]),
        ));
        assert_ne!(signed, Signed::default());
        // Same realm and nonce, signed with them: the password is wrong.
        assert_eq!(
            judge(&mut auth, &r, signed, 1),
            Verdict::Failed {
                code: 401,
                reason: ""
            }
        );
        // A different nonce is worth one more try.
        assert_eq!(
            judge(&mut auth, &error(401, b"n2"), signed, 1),
            Verdict::Retry
        );
    }

    #[test]
    fn stale_nonce_is_retried_up_to_the_limit() {
        let mut auth = Auth::new("u", "p");
        let r = error(438, b"n");
        for retries in 0..MAX_AUTH_RETRIES {
            assert_eq!(judge(&mut auth, &r, Signed(1), retries), Verdict::Retry);
        }
        assert_eq!(
            judge(&mut auth, &r, Signed(1), MAX_AUTH_RETRIES),
            Verdict::Failed {
                code: 438,
                reason: ""
            }
        );
    }

    #[test]
    fn other_errors_are_final() {
        let mut auth = Auth::new("u", "p");
        assert_eq!(
            judge(&mut auth, &error(486, b"n"), Signed::default(), 0),
            Verdict::Failed {
                code: 486,
                reason: ""
            }
        );
    }
}
