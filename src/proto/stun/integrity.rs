//! MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and FINGERPRINT checks.
//!
//! Each value is computed over the message prefix that precedes the
//! attribute, with the header's length field patched to end just after the
//! attribute (RFC 8489 §14.5–§14.7). The patched header is a 20-byte copy on
//! the stack; nothing is allocated.

use ring::hmac;
use subtle::ConstantTimeEq;

use super::{HEADER_LEN, Message};

/// Result of an integrity or fingerprint check.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum IntegrityError {
    #[error("attribute is absent")]
    Missing,
    #[error("attribute has the wrong length")]
    BadLength,
    #[error("value does not match")]
    Mismatch,
}

/// FINGERPRINT xor constant, RFC 8489 §14.7.
pub const FINGERPRINT_XOR: u32 = 0x5354_554E;

/// Length of the MESSAGE-INTEGRITY value (HMAC-SHA1), RFC 8489 §14.5.
pub const INTEGRITY_LEN: usize = 20;
/// Length of a full MESSAGE-INTEGRITY-SHA256 value, RFC 8489 §14.6.
pub const INTEGRITY_SHA256_LEN: usize = 32;
/// Shortest truncated MESSAGE-INTEGRITY-SHA256 value, RFC 8489 §14.6.
pub const INTEGRITY_SHA256_MIN_LEN: usize = 16;

/// The message header with its length field replaced so that the message
/// appears to end at `end` (an offset from the start of the message).
///
/// Returns `None` if `buf` is shorter than a header or `end` does not fit the
/// 16-bit field (impossible for a parsed message, checked anyway).
pub(crate) fn patched_header(buf: &[u8], end: usize) -> Option<[u8; HEADER_LEN]> {
    let mut h = [0u8; HEADER_LEN];
    h.copy_from_slice(buf.get(..HEADER_LEN)?);
    let len = u16::try_from(end.checked_sub(HEADER_LEN)?).ok()?;
    h[2..4].copy_from_slice(&len.to_be_bytes());
    Some(h)
}

/// HMAC over `patched header ‖ buf[20..attr]`, the input RFC 8489 §14.5 defines.
pub(crate) fn hmac_prefix(
    alg: hmac::Algorithm,
    key: &[u8],
    buf: &[u8],
    attr: usize,
    end: usize,
) -> Option<hmac::Tag> {
    let header = patched_header(buf, end)?;
    let body = buf.get(HEADER_LEN..attr)?;
    let key = hmac::Key::new(alg, key);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(&header);
    ctx.update(body);
    Some(ctx.sign())
}

/// CRC-32 over `patched header ‖ buf[20..attr]`, xor [`FINGERPRINT_XOR`].
pub(crate) fn fingerprint_prefix(buf: &[u8], attr: usize, end: usize) -> Option<u32> {
    let header = patched_header(buf, end)?;
    let body = buf.get(HEADER_LEN..attr)?;
    let mut h = crc32fast::Hasher::new();
    h.update(&header);
    h.update(body);
    Some(h.finalize() ^ FINGERPRINT_XOR)
}

impl Message<'_> {
    /// The value of the attribute whose header is at `attr`.
    fn value_at(&self, attr: usize) -> Option<&[u8]> {
        let buf = self.as_bytes();
        let hdr = buf.get(attr..attr + 4)?;
        let len = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
        buf.get(attr + 4..attr + 4 + len)
    }

    /// Verifies MESSAGE-INTEGRITY (HMAC-SHA1) with `key`, over the message up
    /// to the attribute with the header length adjusted to end after it.
    /// Constant-time comparison.
    ///
    /// RFC 8489 §14.5 (<https://www.rfc-editor.org/rfc/rfc8489#section-14.5>):
    /// "The text used as input to HMAC is the STUN message, up to and
    /// including the attribute preceding the MESSAGE-INTEGRITY attribute. The
    /// Length field of the STUN message header is adjusted to point to the end
    /// of the MESSAGE-INTEGRITY attribute."
    pub fn check_integrity(&self, key: &[u8]) -> Result<(), IntegrityError> {
        let attr = self.integrity.ok_or(IntegrityError::Missing)?;
        let value = self.value_at(attr).ok_or(IntegrityError::BadLength)?;
        if value.len() != INTEGRITY_LEN {
            return Err(IntegrityError::BadLength);
        }
        let end = attr + 4 + INTEGRITY_LEN;
        let tag = hmac_prefix(
            hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            key,
            self.as_bytes(),
            attr,
            end,
        )
        .ok_or(IntegrityError::BadLength)?;
        if bool::from(tag.as_ref().ct_eq(value)) {
            Ok(())
        } else {
            Err(IntegrityError::Mismatch)
        }
    }

    /// Verifies MESSAGE-INTEGRITY-SHA256 (full 32-byte or truncated ≥16 bytes, multiple of 4).
    ///
    /// RFC 8489 §14.6 (<https://www.rfc-editor.org/rfc/rfc8489#section-14.6>):
    /// "The value will be at most 32 bytes, but it MUST be at least 16 bytes
    /// and MUST be a multiple of 4 bytes."
    pub fn check_integrity_sha256(&self, key: &[u8]) -> Result<(), IntegrityError> {
        let attr = self.integrity_sha256.ok_or(IntegrityError::Missing)?;
        let value = self.value_at(attr).ok_or(IntegrityError::BadLength)?;
        let n = value.len();
        if !(INTEGRITY_SHA256_MIN_LEN..=INTEGRITY_SHA256_LEN).contains(&n) || n % 4 != 0 {
            return Err(IntegrityError::BadLength);
        }
        let end = attr + 4 + n;
        let tag = hmac_prefix(hmac::HMAC_SHA256, key, self.as_bytes(), attr, end)
            .ok_or(IntegrityError::BadLength)?;
        let truncated = tag.as_ref().get(..n).ok_or(IntegrityError::BadLength)?;
        if bool::from(truncated.ct_eq(value)) {
            Ok(())
        } else {
            Err(IntegrityError::Mismatch)
        }
    }

    /// Verifies FINGERPRINT.
    ///
    /// RFC 8489 §14.7 (<https://www.rfc-editor.org/rfc/rfc8489#section-14.7>):
    /// "The value of the attribute is computed as the CRC-32 of the STUN
    /// message up to (but excluding) the FINGERPRINT attribute itself, XOR'ed
    /// with the 32-bit value 0x5354554e."
    pub fn check_fingerprint(&self) -> Result<(), IntegrityError> {
        let attr = self.fingerprint.ok_or(IntegrityError::Missing)?;
        let value = self.value_at(attr).ok_or(IntegrityError::BadLength)?;
        let Ok(value) = <[u8; 4]>::try_from(value) else {
            return Err(IntegrityError::BadLength);
        };
        let crc =
            fingerprint_prefix(self.as_bytes(), attr, attr + 8).ok_or(IntegrityError::BadLength)?;
        if crc == u32::from_be_bytes(value) {
            Ok(())
        } else {
            Err(IntegrityError::Mismatch)
        }
    }
}

/// CRC-32 of `data` xor [`FINGERPRINT_XOR`].
pub fn fingerprint(data: &[u8]) -> u32 {
    crc32fast::hash(data) ^ FINGERPRINT_XOR
}
