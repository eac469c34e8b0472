//! STUN message codec (RFC 8489): a borrowed, allocation-free view over a
//! datagram for parsing, and a writer for building messages.
//!
//! The codec checks framing only (header, TLV bounds, integrity and
//! fingerprint on request); what a message *means* is decided by the TURN
//! layer (`proto::turn`).

mod attr;
mod integrity;
mod parse;
mod write;

pub use attr::*;
pub use integrity::*;
pub use parse::*;
pub use write::*;

/// The fixed magic cookie, RFC 8489 §6.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Length of the fixed STUN header.
pub const HEADER_LEN: usize = 20;

/// A 96-bit transaction id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct TransactionId(pub [u8; 12]);

/// Message class, RFC 8489 §5.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Class {
    Request,
    Indication,
    Success,
    Error,
}

/// A STUN method (12 bits).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Method(pub u16);

impl Method {
    pub const BINDING: Self = Self(0x001);
    pub const ALLOCATE: Self = Self(0x003);
    pub const REFRESH: Self = Self(0x004);
    pub const SEND: Self = Self(0x006);
    pub const DATA: Self = Self(0x007);
    pub const CREATE_PERMISSION: Self = Self(0x008);
    pub const CHANNEL_BIND: Self = Self(0x009);
}

/// Method and class together: the 14-bit message type.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct MessageType {
    pub method: Method,
    pub class: Class,
}

impl MessageType {
    pub const fn new(method: Method, class: Class) -> Self {
        Self { method, class }
    }

    /// Decodes the 16-bit type field; `None` if either of the two top bits is set.
    pub fn from_u16(v: u16) -> Option<Self> {
        todo!("{v}")
    }

    /// Encodes to the 16-bit type field (top two bits zero).
    pub fn to_u16(self) -> u16 {
        todo!()
    }
}
