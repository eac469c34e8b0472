//! Attribute types and typed value codecs.

use std::net::SocketAddr;

use super::TransactionId;

/// A STUN attribute type. Values 0x0000–0x7FFF are comprehension-required.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct AttrType(pub u16);

impl AttrType {
    pub const MAPPED_ADDRESS: Self = Self(0x0001);
    pub const USERNAME: Self = Self(0x0006);
    pub const MESSAGE_INTEGRITY: Self = Self(0x0008);
    pub const ERROR_CODE: Self = Self(0x0009);
    pub const UNKNOWN_ATTRIBUTES: Self = Self(0x000A);
    pub const CHANNEL_NUMBER: Self = Self(0x000C);
    pub const LIFETIME: Self = Self(0x000D);
    pub const XOR_PEER_ADDRESS: Self = Self(0x0012);
    pub const DATA: Self = Self(0x0013);
    pub const REALM: Self = Self(0x0014);
    pub const NONCE: Self = Self(0x0015);
    pub const XOR_RELAYED_ADDRESS: Self = Self(0x0016);
    pub const REQUESTED_ADDRESS_FAMILY: Self = Self(0x0017);
    pub const EVEN_PORT: Self = Self(0x0018);
    pub const REQUESTED_TRANSPORT: Self = Self(0x0019);
    pub const DONT_FRAGMENT: Self = Self(0x001A);
    pub const MESSAGE_INTEGRITY_SHA256: Self = Self(0x001C);
    pub const PASSWORD_ALGORITHM: Self = Self(0x001D);
    pub const USERHASH: Self = Self(0x001E);
    pub const XOR_MAPPED_ADDRESS: Self = Self(0x0020);
    pub const RESERVATION_TOKEN: Self = Self(0x0022);
    pub const PRIORITY: Self = Self(0x0024);
    pub const USE_CANDIDATE: Self = Self(0x0025);
    pub const PADDING: Self = Self(0x0026);
    pub const RESPONSE_PORT: Self = Self(0x0027);
    pub const CONNECTION_ID: Self = Self(0x002A);
    pub const ADDITIONAL_ADDRESS_FAMILY: Self = Self(0x8000);
    pub const ADDRESS_ERROR_CODE: Self = Self(0x8001);
    pub const PASSWORD_ALGORITHMS: Self = Self(0x8002);
    pub const ALTERNATE_DOMAIN: Self = Self(0x8003);
    pub const ICMP: Self = Self(0x8004);
    pub const SOFTWARE: Self = Self(0x8022);
    pub const ALTERNATE_SERVER: Self = Self(0x8023);
    pub const FINGERPRINT: Self = Self(0x8028);
    pub const ICE_CONTROLLED: Self = Self(0x8029);
    pub const ICE_CONTROLLING: Self = Self(0x802A);
    pub const RESPONSE_ORIGIN: Self = Self(0x802B);
    pub const OTHER_ADDRESS: Self = Self(0x802C);

    /// RFC 8489 §14: 0x0000–0x7FFF are comprehension-required.
    pub const fn is_comprehension_required(self) -> bool {
        self.0 < 0x8000
    }
}

/// Why a typed attribute value did not decode.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum AttrError {
    #[error("attribute value has length {actual}, expected {expected}")]
    BadLength { expected: usize, actual: usize },
    #[error("unknown address family {0:#04x}")]
    BadFamily(u8),
    #[error("error code class {0} out of range 3..=6")]
    BadErrorClass(u8),
    #[error("attribute value is not valid UTF-8")]
    NotUtf8,
}

/// Decodes an XOR-MAPPED-ADDRESS / XOR-PEER-ADDRESS / XOR-RELAYED-ADDRESS value (RFC 8489 §14.2).
pub fn decode_xor_addr(value: &[u8], tid: &TransactionId) -> Result<SocketAddr, AttrError> {
    todo!("{value:?}{tid:?}")
}

/// Decodes a plain (non-XOR) address value such as MAPPED-ADDRESS (RFC 8489 §14.1).
pub fn decode_addr(value: &[u8]) -> Result<SocketAddr, AttrError> {
    todo!("{value:?}")
}

/// Decodes a 4-byte big-endian value (LIFETIME, ...).
pub fn decode_u32(value: &[u8]) -> Result<u32, AttrError> {
    todo!("{value:?}")
}

/// Decodes ERROR-CODE into (code, reason).
pub fn decode_error_code(value: &[u8]) -> Result<(u16, &str), AttrError> {
    todo!("{value:?}")
}

/// Encodes an XOR address value into `out` (8 bytes for IPv4, 20 for IPv6); returns the length.
pub fn encode_xor_addr(addr: SocketAddr, tid: &TransactionId, out: &mut [u8; 20]) -> usize {
    todo!("{addr}{tid:?}{out:?}")
}
