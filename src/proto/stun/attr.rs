//! Attribute types and typed value codecs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{MAGIC_COOKIE, TransactionId};

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
    #[error("error code number {0} out of range 0..=99")]
    BadErrorNumber(u8),
}

/// Address family byte for IPv4, RFC 8489 §14.1.
pub const FAMILY_IPV4: u8 = 0x01;
/// Address family byte for IPv6, RFC 8489 §14.1.
pub const FAMILY_IPV6: u8 = 0x02;
/// Longest ERROR-CODE reason phrase in bytes, RFC 8489 §14.8 ("MUST be less
/// than 128 characters (which can be as long as 509 bytes when encoding them
/// or 763 bytes when decoding them)").
pub const MAX_REASON_LEN: usize = 763;

/// The xor mask for an address: cookie ‖ transaction id (RFC 8489 §14.2).
fn xor_mask(tid: &TransactionId) -> [u8; 16] {
    let mut mask = [0u8; 16];
    mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    mask[4..].copy_from_slice(&tid.0);
    mask
}

/// Decodes `[reserved, family, port(2), address]`, xoring port and address
/// with `mask` (all zeros for the plain form).
fn decode_addr_masked(value: &[u8], mask: &[u8; 16]) -> Result<SocketAddr, AttrError> {
    let Some(&family) = value.get(1) else {
        return Err(AttrError::BadLength {
            expected: 8,
            actual: value.len(),
        });
    };
    let expected = match family {
        FAMILY_IPV4 => 8,
        FAMILY_IPV6 => 20,
        other => return Err(AttrError::BadFamily(other)),
    };
    if value.len() != expected {
        return Err(AttrError::BadLength {
            expected,
            actual: value.len(),
        });
    }
    let port = u16::from_be_bytes([value[2] ^ mask[0], value[3] ^ mask[1]]);
    let ip = if family == FAMILY_IPV4 {
        let mut a = [0u8; 4];
        for (i, b) in a.iter_mut().enumerate() {
            *b = value[4 + i] ^ mask[i];
        }
        IpAddr::V4(Ipv4Addr::from(a))
    } else {
        let mut a = [0u8; 16];
        for (i, b) in a.iter_mut().enumerate() {
            *b = value[4 + i] ^ mask[i];
        }
        IpAddr::V6(Ipv6Addr::from(a))
    };
    Ok(SocketAddr::new(ip, port))
}

/// Encodes `[0, family, port, address]` xored with `mask` into `out`; returns the length.
fn encode_addr_masked(addr: SocketAddr, mask: &[u8; 16], out: &mut [u8; 20]) -> usize {
    let port = addr.port().to_be_bytes();
    out[0] = 0;
    out[2] = port[0] ^ mask[0];
    out[3] = port[1] ^ mask[1];
    match addr.ip() {
        IpAddr::V4(ip) => {
            out[1] = FAMILY_IPV4;
            for (i, b) in ip.octets().iter().enumerate() {
                out[4 + i] = b ^ mask[i];
            }
            8
        }
        IpAddr::V6(ip) => {
            out[1] = FAMILY_IPV6;
            for (i, b) in ip.octets().iter().enumerate() {
                out[4 + i] = b ^ mask[i];
            }
            20
        }
    }
}

/// Decodes an XOR-MAPPED-ADDRESS / XOR-PEER-ADDRESS / XOR-RELAYED-ADDRESS value (RFC 8489 §14.2).
///
/// The port is xored with the top 16 bits of the magic cookie, an IPv4
/// address with the cookie, an IPv6 address with cookie ‖ transaction id.
/// Lengths are strict: 8 bytes for IPv4, 20 for IPv6.
pub fn decode_xor_addr(value: &[u8], tid: &TransactionId) -> Result<SocketAddr, AttrError> {
    decode_addr_masked(value, &xor_mask(tid))
}

/// Decodes a plain (non-XOR) address value such as MAPPED-ADDRESS (RFC 8489 §14.1).
pub fn decode_addr(value: &[u8]) -> Result<SocketAddr, AttrError> {
    decode_addr_masked(value, &[0; 16])
}

/// Decodes a 4-byte big-endian value (LIFETIME, ...).
pub fn decode_u32(value: &[u8]) -> Result<u32, AttrError> {
    match <[u8; 4]>::try_from(value) {
        Ok(b) => Ok(u32::from_be_bytes(b)),
        Err(_) => Err(AttrError::BadLength {
            expected: 4,
            actual: value.len(),
        }),
    }
}

/// Decodes ERROR-CODE into (code, reason), RFC 8489 §14.8: 21 reserved
/// bits (ignored), a 3-bit class 3..=6, an 8-bit number 0..=99, then a
/// UTF-8 reason phrase.
pub fn decode_error_code(value: &[u8]) -> Result<(u16, &str), AttrError> {
    let Some((head, reason)) = value.split_at_checked(4) else {
        return Err(AttrError::BadLength {
            expected: 4,
            actual: value.len(),
        });
    };
    let class = head[2] & 0x07;
    if !(3..=6).contains(&class) {
        return Err(AttrError::BadErrorClass(class));
    }
    let number = head[3];
    if number >= 100 {
        return Err(AttrError::BadErrorNumber(number));
    }
    let reason = std::str::from_utf8(reason).map_err(|_| AttrError::NotUtf8)?;
    Ok((u16::from(class) * 100 + u16::from(number), reason))
}

/// Encodes an XOR address value into `out` (8 bytes for IPv4, 20 for IPv6); returns the length.
///
/// IPv4-mapped IPv6 addresses are encoded as IPv6, as given.
pub fn encode_xor_addr(addr: SocketAddr, tid: &TransactionId, out: &mut [u8; 20]) -> usize {
    encode_addr_masked(addr, &xor_mask(tid), out)
}

/// Encodes a plain address value into `out` (8 bytes for IPv4, 20 for IPv6); returns the length.
pub fn encode_addr(addr: SocketAddr, out: &mut [u8; 20]) -> usize {
    encode_addr_masked(addr, &[0; 16], out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TID: TransactionId = TransactionId([0xAB; 12]);

    #[test]
    fn xor_addr_round_trip_and_strict_lengths() {
        for a in ["1.2.3.4:5", "[2001:db8::1]:65535", "[::ffff:10.0.0.1]:3478"] {
            let a: SocketAddr = a.parse().unwrap();
            let mut out = [0; 20];
            let n = encode_xor_addr(a, &TID, &mut out);
            assert_eq!(decode_xor_addr(&out[..n], &TID), Ok(a));
            let n = encode_addr(a, &mut out);
            assert_eq!(decode_addr(&out[..n]), Ok(a));
            assert!(decode_addr(&out[..n - 1]).is_err());
            let mut long = out[..n].to_vec();
            long.extend_from_slice(&[0; 4]);
            assert!(matches!(
                decode_addr(&long),
                Err(AttrError::BadLength { .. })
            ));
        }
        // An IPv4-mapped address stays IPv6 on the wire.
        let mut out = [0; 20];
        assert_eq!(
            encode_addr("[::ffff:10.0.0.1]:1".parse().unwrap(), &mut out),
            20
        );
        assert_eq!(
            decode_addr(&[0, 3, 0, 0, 0, 0, 0, 0]),
            Err(AttrError::BadFamily(3))
        );
        assert_eq!(
            decode_addr(&[0]),
            Err(AttrError::BadLength {
                expected: 8,
                actual: 1
            })
        );
        assert_eq!(
            decode_addr(&[]),
            Err(AttrError::BadLength {
                expected: 8,
                actual: 0
            })
        );
    }

    #[test]
    fn u32_and_error_code() {
        assert_eq!(decode_u32(&[0, 0, 0x02, 0x58]), Ok(600));
        assert_eq!(
            decode_u32(&[0; 5]),
            Err(AttrError::BadLength {
                expected: 4,
                actual: 5
            })
        );
        assert_eq!(decode_error_code(&[0, 0, 4, 1, b'U']), Ok((401, "U")));
        assert_eq!(decode_error_code(&[0, 0, 6, 99]), Ok((699, "")));
        assert_eq!(
            decode_error_code(&[0, 0, 2, 1]),
            Err(AttrError::BadErrorClass(2))
        );
        assert_eq!(
            decode_error_code(&[0, 0, 7, 1]),
            Err(AttrError::BadErrorClass(7))
        );
        assert_eq!(
            decode_error_code(&[0, 0, 4, 100]),
            Err(AttrError::BadErrorNumber(100))
        );
        assert_eq!(
            decode_error_code(&[0, 0, 4, 1, 0xFF]),
            Err(AttrError::NotUtf8)
        );
        assert_eq!(
            decode_error_code(&[0, 0, 4]),
            Err(AttrError::BadLength {
                expected: 4,
                actual: 3
            })
        );
    }
}
