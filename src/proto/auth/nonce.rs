//! Stateless nonces: the server keeps no per-client nonce table, so a flood
//! of unauthenticated requests costs no memory.
//!
//! A nonce is the RFC 8489 nonce cookie (13 characters, below) followed by
//! base64url (no padding) of the issue time (Unix seconds, 32 bits) and
//! HMAC-SHA256(key, time ‖ client IP) truncated to 72 bits. A nonce from
//! another client address, without the cookie, or forged, is `Invalid`; one
//! older than the configured lifetime is `Stale` (438, RFC 8489 §9.2.4).
//!
//! The cookie, RFC 8489 §9.2 (<https://www.rfc-editor.org/rfc/rfc8489#section-9.2>):
//! "obMatJos2" then the 24-bit STUN Security Feature set in base64 (4
//! characters). tern sets "Password algorithms" (bit 0) and "Username
//! anonymity" (bit 1). Bits are numbered from the least significant, per
//! verified erratum 6290 (the RFC's own example, Appendix B.1, sends
//! "obMatJos2AAAC", bit 1 only), so the set is 0x000003 = "AAAD".

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;

use crate::secret::Secret;

/// The nonce cookie with tern's security features (password algorithms,
/// username anonymity), RFC 8489 §9.2.
pub const NONCE_COOKIE: &[u8; 13] = b"obMatJos2AAAD";
/// Bytes of HMAC tag kept (72 bits). A forged nonce would only skip the
/// 401 round trip (the request still needs the key), and each guess costs a
/// datagram, so 72 bits is ample and keeps the 401 small.
const TAG_LEN: usize = 9;
/// Issue time (4 bytes) and tag.
const RAW_LEN: usize = 4 + TAG_LEN;
/// Length of a nonce in bytes: the cookie and 18 base64url characters of
/// time and tag. Short on purpose: the 401 to an unauthenticated request
/// stays under 4 times the request's size (no useful amplification).
pub const NONCE_LEN: usize = NONCE_COOKIE.len() + 18;

/// The server's nonce key.
#[derive(Clone, Debug)]
pub struct NonceKey(Secret<[u8; 32]>);

/// What a received NONCE is worth.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NonceState {
    Valid,
    Stale,
    Invalid,
}

impl NonceKey {
    pub fn new(key: [u8; 32]) -> Self {
        Self(Secret::new(key))
    }

    fn tag(&self, ts: u32, ip: IpAddr) -> [u8; TAG_LEN] {
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.0.expose());
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(&ts.to_be_bytes());
        match ip {
            IpAddr::V4(a) => ctx.update(&a.octets()),
            IpAddr::V6(a) => ctx.update(&a.octets()),
        }
        let t = ctx.sign();
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(&t.as_ref()[..TAG_LEN]);
        out
    }

    /// A nonce for `ip` issued at `unix_now`.
    pub fn make(&self, unix_now: u64, ip: IpAddr) -> [u8; NONCE_LEN] {
        // Unix seconds fit 32 bits until 2106; saturate rather than wrap.
        let ts = u32::try_from(unix_now).unwrap_or(u32::MAX);
        let mut raw = [0u8; RAW_LEN];
        raw[..4].copy_from_slice(&ts.to_be_bytes());
        raw[4..].copy_from_slice(&self.tag(ts, ip));
        let mut out = [0u8; NONCE_LEN];
        let (cookie, text) = out.split_at_mut(NONCE_COOKIE.len());
        cookie.copy_from_slice(NONCE_COOKIE);
        // invariant: 13 bytes encode to exactly 18 characters without padding.
        let n = URL_SAFE_NO_PAD
            .encode_slice(raw, text)
            .expect("18 characters fit");
        debug_assert_eq!(n, text.len());
        out
    }

    /// Checks a nonce received from `ip`.
    pub fn check(&self, nonce: &[u8], unix_now: u64, ip: IpAddr, lifetime_secs: u64) -> NonceState {
        let Some(text) = nonce.strip_prefix(NONCE_COOKIE.as_slice()) else {
            return NonceState::Invalid;
        };
        let mut raw = [0u8; RAW_LEN + 2];
        if text.len() != NONCE_LEN - NONCE_COOKIE.len()
            || URL_SAFE_NO_PAD.decode_slice(text, &mut raw) != Ok(RAW_LEN)
        {
            return NonceState::Invalid;
        }
        // invariant: raw holds RAW_LEN decoded bytes; the first 4 are the time.
        let ts = u32::from_be_bytes(raw[..4].try_into().expect("4 bytes"));
        let want = self.tag(ts, ip);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&want[..], &raw[4..RAW_LEN])) {
            return NonceState::Invalid;
        }
        // A nonce from the future (clock stepped back) is treated as stale so
        // the client simply gets a fresh one.
        let ts = u64::from(ts);
        if ts > unix_now || unix_now - ts >= lifetime_secs {
            return NonceState::Stale;
        }
        NonceState::Valid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    #[test]
    fn fresh_stale_invalid() {
        let k = NonceKey::new([1; 32]);
        let n = k.make(1000, IP);
        assert_eq!(k.check(&n, 1000, IP, 60), NonceState::Valid);
        assert_eq!(k.check(&n, 1059, IP, 60), NonceState::Valid);
        assert_eq!(k.check(&n, 1060, IP, 60), NonceState::Stale);
        assert_eq!(k.check(&n, 999, IP, 60), NonceState::Stale);
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(k.check(&n, 1000, other, 60), NonceState::Invalid);
        assert_eq!(
            NonceKey::new([2; 32]).check(&n, 1000, IP, 60),
            NonceState::Invalid
        );
        assert!(n.starts_with(b"obMatJos2AAAD"));
        let mut bad = n;
        bad[NONCE_LEN - 2] ^= 0x01;
        assert_eq!(k.check(&bad, 1000, IP, 60), NonceState::Invalid);
        assert_eq!(
            k.check(&n[..NONCE_LEN - 1], 1000, IP, 60),
            NonceState::Invalid
        );
        // The cookie is part of the nonce: another feature set is not ours.
        let mut other_features = n;
        other_features[12] = b'C';
        assert_eq!(k.check(&other_features, 1000, IP, 60), NonceState::Invalid);
        assert_eq!(k.check(&n[13..], 1000, IP, 60), NonceState::Invalid);
        assert_eq!(k.check(b"", 1000, IP, 60), NonceState::Invalid);
    }
}
