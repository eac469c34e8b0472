//! Building STUN messages.

use std::net::SocketAddr;

use ring::hmac;

use super::integrity::{INTEGRITY_LEN, INTEGRITY_SHA256_LEN, fingerprint_prefix, hmac_prefix};
use super::{
    AttrType, HEADER_LEN, MAGIC_COOKIE, MAX_REASON_LEN, MessageType, TransactionId, encode_addr,
    encode_xor_addr,
};

/// Largest attribute value the 16-bit length field can carry once padded.
const MAX_VALUE_LEN: usize = 65_531;

/// Writes a STUN message into a `Vec<u8>` (cleared first). Attributes are
/// padded to 4 bytes; the header length is kept up to date as attributes are
/// pushed so `finish_*` can compute MESSAGE-INTEGRITY and FINGERPRINT.
///
/// Padding bytes are zero (RFC 8489 §14: "the padding bits MUST be set to
/// zero on sending").
#[derive(Debug)]
pub struct MessageWriter<'b> {
    out: &'b mut Vec<u8>,
}

impl<'b> MessageWriter<'b> {
    pub fn new(out: &'b mut Vec<u8>, mtype: MessageType, tid: TransactionId) -> Self {
        out.clear();
        out.extend_from_slice(&mtype.to_u16().to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        out.extend_from_slice(&tid.0);
        Self { out }
    }

    /// Writes the attribute-section length into the header.
    fn set_len(&mut self, attrs_len: usize) {
        // invariant: `begin` refuses attributes that would overflow 16 bits.
        let len = u16::try_from(attrs_len).expect("STUN message longer than 65,535 bytes");
        self.out[2..4].copy_from_slice(&len.to_be_bytes());
    }

    /// Writes an attribute header for a value of `len` bytes.
    fn begin(&mut self, t: AttrType, len: usize) {
        assert!(
            len <= MAX_VALUE_LEN,
            "attribute value of {len} bytes is too long"
        );
        let total = self.out.len() - HEADER_LEN + 4 + ((len + 3) & !3);
        assert!(
            total <= usize::from(u16::MAX),
            "STUN message longer than 65,535 bytes"
        );
        self.out.extend_from_slice(&t.0.to_be_bytes());
        // Cannot truncate: len <= MAX_VALUE_LEN was asserted above.
        self.out.extend_from_slice(&(len as u16).to_be_bytes());
    }

    /// Pads the last value to 4 bytes and updates the header length.
    fn end(&mut self) {
        let pad = (4 - self.out.len() % 4) % 4;
        self.out.extend_from_slice(&[0; 3][..pad]);
        self.set_len(self.out.len() - HEADER_LEN);
    }

    /// Appends one attribute with padding. Values over 65,531 bytes are a
    /// caller bug and panic (never derived from input without a bound).
    pub fn push(&mut self, t: AttrType, value: &[u8]) -> &mut Self {
        self.begin(t, value.len());
        self.out.extend_from_slice(value);
        self.end();
        self
    }

    pub fn push_u32(&mut self, t: AttrType, v: u32) -> &mut Self {
        self.push(t, &v.to_be_bytes())
    }

    pub fn push_xor_addr(&mut self, t: AttrType, addr: SocketAddr) -> &mut Self {
        let mut buf = [0u8; 20];
        let tid = self.transaction_id();
        let n = encode_xor_addr(addr, &tid, &mut buf);
        self.push(t, &buf[..n])
    }

    pub fn push_addr(&mut self, t: AttrType, addr: SocketAddr) -> &mut Self {
        let mut buf = [0u8; 20];
        let n = encode_addr(addr, &mut buf);
        self.push(t, &buf[..n])
    }

    /// ERROR-CODE: class = code / 100, number = code % 100, then the reason.
    ///
    /// The reason is cut to at most 763 bytes on a character boundary
    /// (RFC 8489 §14.8).
    pub fn push_error_code(&mut self, code: u16, reason: &str) -> &mut Self {
        let mut cut = reason.len().min(MAX_REASON_LEN);
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        let reason = &reason.as_bytes()[..cut];
        self.begin(AttrType::ERROR_CODE, 4 + reason.len());
        // Class is 3 bits; code / 100 fits a byte for any u16 and is masked.
        let class = ((code / 100) & 0x07) as u8;
        let number = (code % 100) as u8;
        self.out.extend_from_slice(&[0, 0, class, number]);
        self.out.extend_from_slice(reason);
        self.end();
        self
    }

    /// UNKNOWN-ATTRIBUTES: a list of 16-bit types.
    pub fn push_unknown_attributes(&mut self, types: &[AttrType]) -> &mut Self {
        self.begin(AttrType::UNKNOWN_ATTRIBUTES, types.len() * 2);
        for t in types {
            self.out.extend_from_slice(&t.0.to_be_bytes());
        }
        self.end();
        self
    }

    /// Appends MESSAGE-INTEGRITY (HMAC-SHA1 with `key`) per RFC 8489 §14.5.
    pub fn push_integrity(&mut self, key: &[u8]) -> &mut Self {
        self.push_hmac(
            hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            AttrType::MESSAGE_INTEGRITY,
            INTEGRITY_LEN,
            key,
        )
    }

    /// Appends MESSAGE-INTEGRITY-SHA256 (HMAC-SHA256, 32 bytes) per RFC 8489 §14.6.
    pub fn push_integrity_sha256(&mut self, key: &[u8]) -> &mut Self {
        self.push_hmac(
            hmac::HMAC_SHA256,
            AttrType::MESSAGE_INTEGRITY_SHA256,
            INTEGRITY_SHA256_LEN,
            key,
        )
    }

    fn push_hmac(&mut self, alg: hmac::Algorithm, t: AttrType, n: usize, key: &[u8]) -> &mut Self {
        let attr = self.out.len();
        let tag = hmac_prefix(alg, key, self.out, attr, attr + 4 + n)
            // invariant: the buffer holds a header and `attr` is its length.
            .expect("message prefix is well-formed");
        self.push(t, &tag.as_ref()[..n])
    }

    /// Appends FINGERPRINT (CRC-32 xor 0x5354554E) per RFC 8489 §14.7.
    pub fn push_fingerprint(&mut self) -> &mut Self {
        let attr = self.out.len();
        let crc = fingerprint_prefix(self.out, attr, attr + 8)
            // invariant: the buffer holds a header and `attr` is its length.
            .expect("message prefix is well-formed");
        self.push_u32(AttrType::FINGERPRINT, crc)
    }

    /// The transaction id written in the header.
    pub fn transaction_id(&self) -> TransactionId {
        let mut tid = [0u8; 12];
        tid.copy_from_slice(&self.out[8..HEADER_LEN]);
        TransactionId(tid)
    }

    /// The bytes written so far (a complete message after every push).
    pub fn as_bytes(&self) -> &[u8] {
        self.out
    }

    /// Length written so far.
    pub fn len(&self) -> usize {
        self.out.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::stun::{Class, Message, Method, decode_error_code};

    fn writer(out: &mut Vec<u8>) -> MessageWriter<'_> {
        MessageWriter::new(
            out,
            MessageType::new(Method::ALLOCATE, Class::Error),
            TransactionId([9; 12]),
        )
    }

    #[test]
    fn header_length_tracks_pushes() {
        let mut out = vec![1, 2, 3];
        let mut w = writer(&mut out);
        assert_eq!(w.len(), 20);
        w.push(AttrType::SOFTWARE, b"abcde");
        assert_eq!(w.len(), 32);
        assert_eq!(&w.as_bytes()[2..4], &[0, 12]);
        assert_eq!(&w.as_bytes()[25..32], &[b'b', b'c', b'd', b'e', 0, 0, 0]);
        w.push(AttrType::DONT_FRAGMENT, b"");
        assert_eq!(&w.as_bytes()[2..4], &[0, 16]);
        assert_eq!(w.transaction_id(), TransactionId([9; 12]));
    }

    #[test]
    fn error_code_and_reason_truncation() {
        let mut out = Vec::new();
        // 300 two-byte characters = 600 bytes, then 100 three-byte ones: 900 bytes.
        let reason: String = "é".repeat(300) + &"€".repeat(100);
        writer(&mut out).push_error_code(438, &reason);
        let m = Message::parse(&out).unwrap();
        let (code, r) = decode_error_code(m.get(AttrType::ERROR_CODE).unwrap()).unwrap();
        assert_eq!(code, 438);
        assert!(r.len() <= MAX_REASON_LEN && reason.starts_with(r));
        assert_eq!(r.len(), 600 + 3 * 54);
    }

    #[test]
    fn unknown_attributes_are_16_bit() {
        let mut out = Vec::new();
        writer(&mut out).push_unknown_attributes(&[
            AttrType(0x7F01),
            AttrType(0x0031),
            AttrType(0x0032),
        ]);
        let m = Message::parse(&out).unwrap();
        assert_eq!(
            m.get(AttrType::UNKNOWN_ATTRIBUTES).unwrap(),
            &[0x7F, 0x01, 0x00, 0x31, 0x00, 0x32]
        );
        assert_eq!(out.len(), 20 + 4 + 8);
    }

    #[test]
    #[should_panic(expected = "too long")]
    fn oversized_value_is_a_caller_bug() {
        let mut out = Vec::new();
        writer(&mut out).push(AttrType::DATA, &[0; 65_532]);
    }
}
