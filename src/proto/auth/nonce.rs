//! Stateless nonces: the server keeps no per-client nonce table, so a flood
//! of unauthenticated requests costs no memory.
//!
//! A nonce is 40 ASCII hex digits: 16 for the issue time (Unix seconds) and
//! 24 for HMAC-SHA256(key, time ‖ client IP) truncated to 96 bits. A nonce
//! from another client address, or forged, is `Invalid`; one older than the
//! configured lifetime is `Stale` (438, RFC 8489 §9.2.4).

use std::net::IpAddr;

use ring::hmac;

use crate::secret::Secret;

/// Length of a nonce in bytes.
pub const NONCE_LEN: usize = 40;

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

const HEX: &[u8; 16] = b"0123456789abcdef";

impl NonceKey {
    pub fn new(key: [u8; 32]) -> Self {
        Self(Secret::new(key))
    }

    fn tag(&self, ts: u64, ip: IpAddr) -> [u8; 12] {
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.0.expose());
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(&ts.to_be_bytes());
        match ip {
            IpAddr::V4(a) => ctx.update(&a.octets()),
            IpAddr::V6(a) => ctx.update(&a.octets()),
        }
        let t = ctx.sign();
        let mut out = [0u8; 12];
        out.copy_from_slice(&t.as_ref()[..12]);
        out
    }

    /// A nonce for `ip` issued at `unix_now`.
    pub fn make(&self, unix_now: u64, ip: IpAddr) -> [u8; NONCE_LEN] {
        let mut out = [0u8; NONCE_LEN];
        let ts = unix_now.to_be_bytes();
        let tag = self.tag(unix_now, ip);
        for (i, b) in ts.iter().chain(tag.iter()).enumerate() {
            out[2 * i] = HEX[usize::from(b >> 4)];
            out[2 * i + 1] = HEX[usize::from(b & 0xF)];
        }
        out
    }

    /// Checks a nonce received from `ip`.
    pub fn check(&self, nonce: &[u8], unix_now: u64, ip: IpAddr, lifetime_secs: u64) -> NonceState {
        let Ok(raw) = <&[u8; NONCE_LEN]>::try_from(nonce) else {
            return NonceState::Invalid;
        };
        let mut bytes = [0u8; NONCE_LEN / 2];
        for (i, b) in bytes.iter_mut().enumerate() {
            let (Some(hi), Some(lo)) = (unhex(raw[2 * i]), unhex(raw[2 * i + 1])) else {
                return NonceState::Invalid;
            };
            *b = hi << 4 | lo;
        }
        // invariant: bytes is 20 long; the first 8 are the time.
        let ts = u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
        let want = self.tag(ts, ip);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&want[..], &bytes[8..])) {
            return NonceState::Invalid;
        }
        // A nonce from the future (clock stepped back) is treated as stale so
        // the client simply gets a fresh one.
        if ts > unix_now || unix_now - ts >= lifetime_secs {
            return NonceState::Stale;
        }
        NonceState::Valid
    }
}

fn unhex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
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
        let mut bad = n;
        bad[39] = b'X';
        assert_eq!(k.check(&bad, 1000, IP, 60), NonceState::Invalid);
        assert_eq!(k.check(&n[..39], 1000, IP, 60), NonceState::Invalid);
        assert_eq!(k.check(b"", 1000, IP, 60), NonceState::Invalid);
    }
}
