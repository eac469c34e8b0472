//! One-pass, bounds-checked parsing of a STUN message into a borrowed view.
//!
//! Every length read from the wire is treated as hostile: all slicing goes
//! through `get(..)` and the arithmetic is done in `usize` on values that are
//! at most `u16::MAX + 20`, so it cannot overflow.

use super::{AttrType, Class, HEADER_LEN, MAGIC_COOKIE, MessageType, TransactionId};

/// Why bytes are not a well-formed STUN message.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ParseError {
    #[error("truncated: need {expected} bytes, have {actual}")]
    Truncated { expected: usize, actual: usize },
    #[error("top two bits of the message type are not zero")]
    NotStun,
    #[error("bad magic cookie {0:#010x}")]
    BadCookie(u32),
    #[error("message length {0} is not a multiple of 4")]
    UnalignedLength(u16),
    #[error("header says {declared} bytes of attributes, datagram has {actual}")]
    LengthMismatch { declared: usize, actual: usize },
    #[error("attribute {attr:#06x} at offset {offset} overruns the message")]
    AttrOverrun { attr: u16, offset: usize },
    #[error("FINGERPRINT is not the last attribute")]
    FingerprintNotLast,
}

/// The most unknown comprehension-required attributes reported in a 420 response.
pub const MAX_UNKNOWN: usize = 8;

/// A parsed STUN message borrowing the datagram.
///
/// `parse` validates the header and walks every attribute once; the view is
/// then cheap to query. Attributes after MESSAGE-INTEGRITY(-SHA256) other than
/// MESSAGE-INTEGRITY-SHA256 and FINGERPRINT are ignored (RFC 8489 §14.5).
#[derive(Clone, Debug)]
pub struct Message<'a> {
    /// The whole message: header and attributes (`buf.len() == 20 + length`).
    buf: &'a [u8],
    mtype: MessageType,
    tid: TransactionId,
    /// Offset (from the start of the message) of the MESSAGE-INTEGRITY attribute header.
    pub(super) integrity: Option<usize>,
    /// Offset of the MESSAGE-INTEGRITY-SHA256 attribute header.
    pub(super) integrity_sha256: Option<usize>,
    /// Offset of the FINGERPRINT attribute header (always the last attribute).
    pub(super) fingerprint: Option<usize>,
}

/// Where an attribute sits relative to the integrity attributes, RFC 8489 §14.5/§14.6:
///
/// > "With the exception of the MESSAGE-INTEGRITY-SHA256 and FINGERPRINT
/// > attributes, which appear after MESSAGE-INTEGRITY, agents MUST ignore all
/// > other attributes that follow MESSAGE-INTEGRITY."
///
/// > "With the exception of the FINGERPRINT attribute, which appears after
/// > MESSAGE-INTEGRITY-SHA256, agents MUST ignore all other attributes that
/// > follow MESSAGE-INTEGRITY-SHA256."
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Open,
    AfterIntegrity,
    AfterIntegritySha256,
}

impl Phase {
    /// Whether an attribute of type `t` seen in this phase counts, and the phase after it.
    fn step(self, t: AttrType) -> (bool, Self) {
        match (self, t) {
            (_, AttrType::FINGERPRINT) => (true, self),
            (Self::Open, AttrType::MESSAGE_INTEGRITY) => (true, Self::AfterIntegrity),
            (Self::Open | Self::AfterIntegrity, AttrType::MESSAGE_INTEGRITY_SHA256) => {
                (true, Self::AfterIntegritySha256)
            }
            (Self::Open, _) => (true, self),
            (Self::AfterIntegrity | Self::AfterIntegritySha256, _) => (false, self),
        }
    }
}

/// Reads one TLV at `pos` of `buf`: (type, value, offset of the next TLV).
/// `None` if the header or the padded value does not fit.
fn read_tlv(buf: &[u8], pos: usize) -> Option<(AttrType, &[u8], usize)> {
    let hdr = buf.get(pos..pos.checked_add(4)?)?;
    let t = u16::from_be_bytes([hdr[0], hdr[1]]);
    let len = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
    let start = pos + 4;
    // RFC 8489 §14: values are padded to a multiple of 4 bytes.
    let padded_end = start.checked_add((len + 3) & !3)?;
    if padded_end > buf.len() {
        return None;
    }
    let value = buf.get(start..start + len)?;
    Some((AttrType(t), value, padded_end))
}

fn be16(buf: &[u8], at: usize) -> u16 {
    match buf.get(at..at + 2) {
        Some(b) => u16::from_be_bytes([b[0], b[1]]),
        None => 0,
    }
}

impl<'a> Message<'a> {
    /// Parses a whole datagram (or a whole stream frame). The datagram length
    /// must equal 20 + the header's length field.
    ///
    /// Header checks follow RFC 8489 §6 (<https://www.rfc-editor.org/rfc/rfc8489#section-6>);
    /// FINGERPRINT placement follows §14.7: "the FINGERPRINT attribute MUST be
    /// the last attribute in the message".
    pub fn parse(buf: &'a [u8]) -> Result<Self, ParseError> {
        let Some(header) = buf.get(..HEADER_LEN) else {
            return Err(ParseError::Truncated {
                expected: HEADER_LEN,
                actual: buf.len(),
            });
        };
        let raw_type = u16::from_be_bytes([header[0], header[1]]);
        let Some(mtype) = MessageType::from_u16(raw_type) else {
            return Err(ParseError::NotStun);
        };
        let length = u16::from_be_bytes([header[2], header[3]]);
        let cookie = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        if cookie != MAGIC_COOKIE {
            return Err(ParseError::BadCookie(cookie));
        }
        if length % 4 != 0 {
            return Err(ParseError::UnalignedLength(length));
        }
        // Subtraction is safe: buf.len() >= HEADER_LEN was checked above.
        let body_len = buf.len() - HEADER_LEN;
        if usize::from(length) != body_len {
            return Err(ParseError::LengthMismatch {
                declared: usize::from(length),
                actual: body_len,
            });
        }
        let mut tid = [0u8; 12];
        tid.copy_from_slice(&header[8..HEADER_LEN]);

        let mut msg = Self {
            buf,
            mtype,
            tid: TransactionId(tid),
            integrity: None,
            integrity_sha256: None,
            fingerprint: None,
        };
        let mut pos = HEADER_LEN;
        let mut phase = Phase::Open;
        while pos < buf.len() {
            let Some((t, _value, next)) = read_tlv(buf, pos) else {
                return Err(ParseError::AttrOverrun {
                    attr: be16(buf, pos),
                    offset: pos,
                });
            };
            if msg.fingerprint.is_some() {
                return Err(ParseError::FingerprintNotLast);
            }
            let (counted, next_phase) = phase.step(t);
            if counted {
                match t {
                    AttrType::MESSAGE_INTEGRITY => msg.integrity = Some(pos),
                    AttrType::MESSAGE_INTEGRITY_SHA256 => msg.integrity_sha256 = Some(pos),
                    AttrType::FINGERPRINT => msg.fingerprint = Some(pos),
                    _ => {}
                }
            }
            phase = next_phase;
            pos = next;
        }
        Ok(msg)
    }

    pub fn message_type(&self) -> MessageType {
        self.mtype
    }

    /// Shorthand for `message_type().class`.
    pub fn class(&self) -> Class {
        self.mtype.class
    }

    pub fn transaction_id(&self) -> TransactionId {
        self.tid
    }

    /// The whole message bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// The value of the first attribute of type `t` that is not ignored.
    pub fn get(&self, t: AttrType) -> Option<&'a [u8]> {
        self.attrs().find(|&(at, _)| at == t).map(|(_, v)| v)
    }

    /// All attributes that are not ignored, in order, as (type, value).
    pub fn attrs(&self) -> AttrIter<'a> {
        AttrIter {
            buf: self.buf,
            pos: HEADER_LEN,
            phase: Phase::Open,
        }
    }

    /// Comprehension-required attribute types (0x0000–0x7FFF) not in `known`,
    /// at most [`MAX_UNKNOWN`], for a 420 response (RFC 8489 §14.8).
    /// Deduplicated, in order of first appearance; ignored attributes do not count.
    /// MESSAGE-INTEGRITY and MESSAGE-INTEGRITY-SHA256 are understood by the
    /// codec itself and are never reported, whether or not `known` lists them.
    pub fn unknown_required(&self, known: &[AttrType]) -> ([AttrType; MAX_UNKNOWN], usize) {
        let mut out = [AttrType(0); MAX_UNKNOWN];
        let mut n = 0;
        for (t, _) in self.attrs() {
            if n == MAX_UNKNOWN {
                break;
            }
            if t.is_comprehension_required()
                && t != AttrType::MESSAGE_INTEGRITY
                && t != AttrType::MESSAGE_INTEGRITY_SHA256
                && !known.contains(&t)
                && !out[..n].contains(&t)
            {
                out[n] = t;
                n += 1;
            }
        }
        (out, n)
    }

    /// True if MESSAGE-INTEGRITY (SHA-1) is present.
    pub fn has_integrity(&self) -> bool {
        self.integrity.is_some()
    }

    /// True if MESSAGE-INTEGRITY-SHA256 is present.
    pub fn has_integrity_sha256(&self) -> bool {
        self.integrity_sha256.is_some()
    }

    /// True if FINGERPRINT is present.
    pub fn has_fingerprint(&self) -> bool {
        self.fingerprint.is_some()
    }
}

/// Iterator over (type, value) of the non-ignored attributes.
#[derive(Clone, Debug)]
pub struct AttrIter<'a> {
    buf: &'a [u8],
    pos: usize,
    phase: Phase,
}

impl<'a> Iterator for AttrIter<'a> {
    type Item = (AttrType, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            // The bounds were validated by `parse`; `read_tlv` re-checks anyway
            // and ends the iteration rather than panic.
            let (t, value, next) = read_tlv(self.buf, self.pos)?;
            self.pos = next;
            let (counted, phase) = self.phase.step(t);
            self.phase = phase;
            if counted {
                return Some((t, value));
            }
        }
    }
}

/// Quick check, without a full parse, that `buf` starts like a STUN message
/// (top bits 00, magic cookie at offset 4, length field aligned). Used to
/// demultiplex STUN from ChannelData (RFC 8656 §12, RFC 7983).
pub fn looks_like_stun(buf: &[u8]) -> bool {
    let Some(h) = buf.get(..HEADER_LEN) else {
        return false;
    };
    h[0] & 0xC0 == 0
        && u32::from_be_bytes([h[4], h[5], h[6], h[7]]) == MAGIC_COOKIE
        && u16::from_be_bytes([h[2], h[3]]) % 4 == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::stun::{MessageWriter, Method};

    fn header(len: u16) -> Vec<u8> {
        let mut v = vec![0x00, 0x01];
        v.extend_from_slice(&len.to_be_bytes());
        v.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        v.extend_from_slice(&[7; 12]);
        v
    }

    #[test]
    fn truncated_header() {
        for n in 0..HEADER_LEN {
            let h = header(0);
            assert_eq!(
                Message::parse(&h[..n]).unwrap_err(),
                ParseError::Truncated {
                    expected: 20,
                    actual: n
                }
            );
        }
    }

    #[test]
    fn top_bits_and_cookie() {
        let mut h = header(0);
        h[0] = 0x40;
        assert_eq!(Message::parse(&h).unwrap_err(), ParseError::NotStun);
        let mut h = header(0);
        h[4] = 0;
        assert_eq!(
            Message::parse(&h).unwrap_err(),
            ParseError::BadCookie(0x0012_A442)
        );
        assert!(looks_like_stun(&header(0)));
        assert!(!looks_like_stun(&h));
        assert!(!looks_like_stun(&header(0)[..19]));
    }

    #[test]
    fn unaligned_length() {
        let mut h = header(2);
        h.extend_from_slice(&[0, 0]);
        assert_eq!(
            Message::parse(&h).unwrap_err(),
            ParseError::UnalignedLength(2)
        );
        assert!(!looks_like_stun(&h));
    }

    #[test]
    fn length_mismatch() {
        let mut h = header(8);
        h.extend_from_slice(&[0; 4]);
        assert_eq!(
            Message::parse(&h).unwrap_err(),
            ParseError::LengthMismatch {
                declared: 8,
                actual: 4
            }
        );
        let mut h = header(0);
        h.extend_from_slice(&[0; 4]);
        assert_eq!(
            Message::parse(&h).unwrap_err(),
            ParseError::LengthMismatch {
                declared: 0,
                actual: 4
            }
        );
    }

    #[test]
    fn attribute_overrun() {
        // USERNAME claims 5 bytes (8 with padding) but only 4 follow.
        let mut h = header(8);
        h.extend_from_slice(&[0x00, 0x06, 0x00, 0x05, b'a', b'b', b'c', b'd']);
        assert_eq!(
            Message::parse(&h).unwrap_err(),
            ParseError::AttrOverrun {
                attr: 0x0006,
                offset: 20
            }
        );
        // Value fits only without its padding: still an overrun.
        let mut h = header(8);
        h.extend_from_slice(&[0x00, 0x06, 0x00, 0x02, b'a', b'b', 0, 0]);
        h.extend_from_slice(&[0x00, 0x06, 0x00, 0x00]);
        h[3] = 12;
        assert!(Message::parse(&h).is_ok());
        let mut h = header(4);
        h.extend_from_slice(&[0x00, 0x06, 0x00, 0x01]);
        assert_eq!(
            Message::parse(&h).unwrap_err(),
            ParseError::AttrOverrun {
                attr: 0x0006,
                offset: 20
            }
        );
    }

    #[test]
    fn fingerprint_not_last() {
        let mut out = Vec::new();
        MessageWriter::new(
            &mut out,
            MessageType::new(Method::BINDING, Class::Request),
            TransactionId([1; 12]),
        )
        .push_fingerprint()
        .push(AttrType::SOFTWARE, b"x");
        assert_eq!(
            Message::parse(&out).unwrap_err(),
            ParseError::FingerprintNotLast
        );
    }

    #[test]
    fn attributes_after_integrity_are_ignored() {
        let mut out = Vec::new();
        MessageWriter::new(
            &mut out,
            MessageType::new(Method::ALLOCATE, Class::Request),
            TransactionId([2; 12]),
        )
        .push(AttrType::USERNAME, b"alice")
        .push_integrity(b"key")
        .push(AttrType::SOFTWARE, b"ignored")
        .push(AttrType::LIFETIME, &[0, 0, 0, 9])
        .push_integrity_sha256(b"key")
        .push(AttrType::REALM, b"also ignored")
        .push_fingerprint();
        let m = Message::parse(&out).unwrap();
        assert_eq!(m.get(AttrType::USERNAME), Some(&b"alice"[..]));
        assert_eq!(m.get(AttrType::SOFTWARE), None);
        assert_eq!(m.get(AttrType::LIFETIME), None);
        assert_eq!(m.get(AttrType::REALM), None);
        let types: Vec<_> = m.attrs().map(|(t, _)| t).collect();
        assert_eq!(
            types,
            [
                AttrType::USERNAME,
                AttrType::MESSAGE_INTEGRITY,
                AttrType::MESSAGE_INTEGRITY_SHA256,
                AttrType::FINGERPRINT
            ]
        );
        // Ignored attributes are not reported as unknown.
        assert_eq!(m.unknown_required(&[AttrType::USERNAME]).1, 0);
        assert!(m.check_fingerprint().is_ok());
        // After MESSAGE-INTEGRITY-SHA256, a later MESSAGE-INTEGRITY is ignored.
        let mut out = Vec::new();
        MessageWriter::new(
            &mut out,
            MessageType::new(Method::ALLOCATE, Class::Request),
            TransactionId([2; 12]),
        )
        .push_integrity_sha256(b"key")
        .push_integrity(b"key");
        let m = Message::parse(&out).unwrap();
        assert!(m.has_integrity_sha256() && !m.has_integrity());
        assert_eq!(
            m.check_integrity(b"key"),
            Err(super::super::IntegrityError::Missing)
        );
    }

    #[test]
    fn unknown_required_dedups_and_caps() {
        let mut out = Vec::new();
        let mut w = MessageWriter::new(
            &mut out,
            MessageType::new(Method::ALLOCATE, Class::Request),
            TransactionId([3; 12]),
        );
        w.push(AttrType(0x7F00), b"")
            .push(AttrType(0x7F00), b"")
            .push(AttrType(0xFF00), b"");
        w.push(AttrType::LIFETIME, &[0; 4]);
        for t in 0x7F01..0x7F10 {
            w.push(AttrType(t), b"");
        }
        let m = Message::parse(&out).unwrap();
        let (list, n) = m.unknown_required(&[AttrType::LIFETIME]);
        assert_eq!(n, MAX_UNKNOWN);
        assert_eq!(list[0], AttrType(0x7F00));
        assert_eq!(list[1], AttrType(0x7F01));
        assert!(!list.contains(&AttrType(0xFF00)));
    }
}
