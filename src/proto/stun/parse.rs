//! One-pass, bounds-checked parsing of a STUN message into a borrowed view.

use super::{AttrType, MessageType, TransactionId};

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
    // private fields chosen by the implementation
    _buf: &'a [u8],
    _mtype: MessageType,
    _tid: TransactionId,
}

impl<'a> Message<'a> {
    /// Parses a whole datagram (or a whole stream frame). The datagram length
    /// must equal 20 + the header's length field.
    pub fn parse(buf: &'a [u8]) -> Result<Self, ParseError> {
        todo!("{buf:?}")
    }

    pub fn message_type(&self) -> MessageType {
        todo!()
    }

    pub fn transaction_id(&self) -> TransactionId {
        todo!()
    }

    /// The whole message bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        todo!()
    }

    /// The value of the first attribute of type `t` that is not ignored.
    pub fn get(&self, t: AttrType) -> Option<&'a [u8]> {
        todo!("{t:?}")
    }

    /// All attributes that are not ignored, in order, as (type, value).
    pub fn attrs(&self) -> AttrIter<'a> {
        todo!()
    }

    /// Comprehension-required attribute types (0x0000–0x7FFF) not in `known`,
    /// at most [`MAX_UNKNOWN`], for a 420 response.
    pub fn unknown_required(&self, known: &[AttrType]) -> ([AttrType; MAX_UNKNOWN], usize) {
        todo!("{known:?}")
    }

    /// True if MESSAGE-INTEGRITY (SHA-1) is present.
    pub fn has_integrity(&self) -> bool {
        todo!()
    }

    /// True if MESSAGE-INTEGRITY-SHA256 is present.
    pub fn has_integrity_sha256(&self) -> bool {
        todo!()
    }

    /// True if FINGERPRINT is present.
    pub fn has_fingerprint(&self) -> bool {
        todo!()
    }
}

/// Iterator over (type, value) of the non-ignored attributes.
#[derive(Clone, Debug)]
pub struct AttrIter<'a> {
    _buf: &'a [u8],
}

impl<'a> Iterator for AttrIter<'a> {
    type Item = (AttrType, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        todo!()
    }
}

/// Quick check, without a full parse, that `buf` starts like a STUN message
/// (top bits 00, magic cookie at offset 4, length field aligned). Used to
/// demultiplex STUN from ChannelData.
pub fn looks_like_stun(buf: &[u8]) -> bool {
    todo!("{buf:?}")
}
