//! Building STUN messages.

use std::net::SocketAddr;

use super::{AttrType, MessageType, TransactionId};

/// Writes a STUN message into a `Vec<u8>` (cleared first). Attributes are
/// padded to 4 bytes; the header length is kept up to date as attributes are
/// pushed so `finish_*` can compute MESSAGE-INTEGRITY and FINGERPRINT.
#[derive(Debug)]
pub struct MessageWriter<'b> {
    _out: &'b mut Vec<u8>,
}

impl<'b> MessageWriter<'b> {
    pub fn new(out: &'b mut Vec<u8>, mtype: MessageType, tid: TransactionId) -> Self {
        todo!("{out:?}{mtype:?}{tid:?}")
    }

    /// Appends one attribute with padding. Values over 65,531 bytes are a
    /// caller bug and panic (never derived from input without a bound).
    pub fn push(&mut self, t: AttrType, value: &[u8]) -> &mut Self {
        todo!("{t:?}{value:?}")
    }

    pub fn push_u32(&mut self, t: AttrType, v: u32) -> &mut Self {
        todo!("{t:?}{v}")
    }

    pub fn push_xor_addr(&mut self, t: AttrType, addr: SocketAddr) -> &mut Self {
        todo!("{t:?}{addr}")
    }

    pub fn push_addr(&mut self, t: AttrType, addr: SocketAddr) -> &mut Self {
        todo!("{t:?}{addr}")
    }

    /// ERROR-CODE: class = code / 100, number = code % 100, then the reason.
    pub fn push_error_code(&mut self, code: u16, reason: &str) -> &mut Self {
        todo!("{code}{reason}")
    }

    /// UNKNOWN-ATTRIBUTES: a list of 16-bit types.
    pub fn push_unknown_attributes(&mut self, types: &[AttrType]) -> &mut Self {
        todo!("{types:?}")
    }

    /// Appends MESSAGE-INTEGRITY (HMAC-SHA1 with `key`) per RFC 8489 §14.5.
    pub fn push_integrity(&mut self, key: &[u8]) -> &mut Self {
        todo!("{key:?}")
    }

    /// Appends MESSAGE-INTEGRITY-SHA256 (HMAC-SHA256, 32 bytes) per RFC 8489 §14.6.
    pub fn push_integrity_sha256(&mut self, key: &[u8]) -> &mut Self {
        todo!("{key:?}")
    }

    /// Appends FINGERPRINT (CRC-32 xor 0x5354554E) per RFC 8489 §14.7.
    pub fn push_fingerprint(&mut self) -> &mut Self {
        todo!()
    }

    /// Length written so far.
    pub fn len(&self) -> usize {
        todo!()
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}
