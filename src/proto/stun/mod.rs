//! STUN message codec (RFC 8489): a borrowed, allocation-free view over a
//! datagram for parsing, and a writer for building messages.
//!
//! The codec checks framing only (header, TLV bounds, integrity and
//! fingerprint on request); what a message *means* is decided by the TURN
//! layer (`proto::turn`).

mod attr;
mod error_code;
mod integrity;
mod parse;
mod write;

#[cfg(test)]
mod tests;

pub use attr::*;
pub use error_code::ErrorCode;
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
    /// RFC 6062 §6.1: open a TCP connection to a peer (TCP allocations).
    pub const CONNECT: Self = Self(0x00A);
    /// RFC 6062 §6.1: bind a new client connection to a peer connection.
    pub const CONNECTION_BIND: Self = Self(0x00B);
    /// RFC 6062 §6.1: a peer connected to the relayed address (indication).
    pub const CONNECTION_ATTEMPT: Self = Self(0x00C);
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
    ///
    /// RFC 8489 §5 (<https://www.rfc-editor.org/rfc/rfc8489#section-5>): the
    /// 12 method bits M0–M11 are interleaved with the class bits, C0 at bit 4
    /// and C1 at bit 8:
    ///
    /// ```text
    ///  13 12 11 10  9  8  7  6  5  4  3  2  1  0
    /// M11 M10 M9 M8 M7 C1 M6 M5 M4 C0 M3 M2 M1 M0
    /// ```
    pub fn from_u16(v: u16) -> Option<Self> {
        if v & 0xC000 != 0 {
            return None;
        }
        let method = (v & 0x000F) | ((v & 0x00E0) >> 1) | ((v & 0x3E00) >> 2);
        let class = match ((v >> 4) & 0x1) | ((v >> 7) & 0x2) {
            0b00 => Class::Request,
            0b01 => Class::Indication,
            0b10 => Class::Success,
            _ => Class::Error,
        };
        Some(Self {
            method: Method(method),
            class,
        })
    }

    /// Encodes to the 16-bit type field (top two bits zero). Method bits above
    /// the 12th are dropped.
    pub fn to_u16(self) -> u16 {
        let m = self.method.0 & 0x0FFF;
        let c: u16 = match self.class {
            Class::Request => 0b00,
            Class::Indication => 0b01,
            Class::Success => 0b10,
            Class::Error => 0b11,
        };
        (m & 0x000F)
            | ((m & 0x0070) << 1)
            | ((m & 0x0F80) << 2)
            | ((c & 0x1) << 4)
            | ((c & 0x2) << 7)
    }
}
