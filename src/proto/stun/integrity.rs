//! MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and FINGERPRINT checks.

use super::Message;

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

impl Message<'_> {
    /// Verifies MESSAGE-INTEGRITY (HMAC-SHA1) with `key`, over the message up
    /// to the attribute with the header length adjusted to end after it.
    /// Constant-time comparison.
    pub fn check_integrity(&self, key: &[u8]) -> Result<(), IntegrityError> {
        todo!("{key:?}")
    }

    /// Verifies MESSAGE-INTEGRITY-SHA256 (full 32-byte or truncated ≥16 bytes, multiple of 4).
    pub fn check_integrity_sha256(&self, key: &[u8]) -> Result<(), IntegrityError> {
        todo!("{key:?}")
    }

    /// Verifies FINGERPRINT.
    pub fn check_fingerprint(&self) -> Result<(), IntegrityError> {
        todo!()
    }
}

/// CRC-32 of `data` xor [`FINGERPRINT_XOR`].
pub fn fingerprint(data: &[u8]) -> u32 {
    crc32fast::hash(data) ^ FINGERPRINT_XOR
}
