//! PROXY protocol v1 (text) and v2 (binary) header parser, sans-IO.
//!
//! A load balancer in front of tern (HAProxy, AWS NLB, …) opens its own TCP
//! connection to tern and starts it with a header that names the client it
//! is relaying for. Spec: <https://www.haproxy.org/download/3.0/doc/proxy-protocol.txt>.
//!
//! [`parse`] looks at the first bytes of a connection and says one of:
//! more bytes are needed ([`Parsed::Incomplete`]), here is the header and
//! its length ([`Parsed::Header`]), or this is not a valid header
//! ([`ProxyError`]). It is bounded — it never asks for more than
//! [`MAX_HEADER_LEN`] bytes — and never panics on any input (fuzzed by
//! `fuzz/fuzz_targets/proxy_protocol.rs`). Whether a source may send a
//! header at all is the driver's policy, not the parser's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The v2 signature (spec §2.2): "\r\n\r\n\0\r\nQUIT\n".
pub const V2_SIGNATURE: [u8; 12] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
];

/// The v1 prefix (spec §2.1).
pub const V1_PREFIX: &[u8; 6] = b"PROXY ";

/// Longest v1 line, CRLF included (spec §2.1: "a receiver … 107 bytes").
pub const V1_MAX_LEN: usize = 107;

/// Longest v2 header accepted: the 16-byte fixed part plus the address
/// block and TLVs. The spec allows 65 535 bytes of payload; real balancers
/// send tens of bytes (AWS NLB adds a VPC endpoint TLV, HAProxy SSL TLVs of
/// a few hundred), so a larger one is refused rather than buffered.
pub const V2_MAX_PAYLOAD: usize = 2048;

/// The most bytes [`parse`] ever needs to decide.
pub const MAX_HEADER_LEN: usize = 16 + V2_MAX_PAYLOAD;

/// A parsed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Bytes the header occupies at the start of the stream.
    pub len: usize,
    /// The client the proxy reports (`None` for v1 `UNKNOWN`, v2 `LOCAL`
    /// or a family without IP addresses: use the connection's own address).
    pub source: Option<SocketAddr>,
    /// The address the client connected to on the proxy, if reported.
    pub destination: Option<SocketAddr>,
}

/// The outcome of looking at the first bytes of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// So far a valid header prefix; read more (never past [`MAX_HEADER_LEN`]).
    Incomplete,
    /// A complete header.
    Header(Header),
}

/// Why the bytes are not an acceptable PROXY header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// The stream does not start with a v1 or v2 signature.
    #[error("no PROXY protocol signature")]
    NoSignature,
    /// v1 line without CRLF within 107 bytes.
    #[error("PROXY v1 line longer than {V1_MAX_LEN} bytes")]
    V1TooLong,
    /// v1 line that does not follow the grammar.
    #[error("malformed PROXY v1 line: {0}")]
    V1Malformed(&'static str),
    /// v2 version nibble other than 2.
    #[error("PROXY v2 version {0} unsupported")]
    V2Version(u8),
    /// v2 command other than LOCAL (0) or PROXY (1).
    #[error("PROXY v2 command {0} unknown")]
    V2Command(u8),
    /// v2 payload longer than [`V2_MAX_PAYLOAD`].
    #[error("PROXY v2 header of {0} bytes exceeds the limit")]
    V2TooLong(usize),
    /// v2 payload too short for the address family it announces.
    #[error(
        "PROXY v2 address block truncated: family {family:#04x} needs {needed} bytes, got {got}"
    )]
    V2Truncated {
        family: u8,
        needed: usize,
        got: usize,
    },
}

/// Whether `buf` starts like a PROXY header: `Some(true)` if it does (all
/// of a signature present), `Some(false)` if it cannot be one, `None` if it
/// is a strict prefix of a signature (read more). Used to refuse headers
/// from sources that are not trusted to send them.
pub fn starts_like_header(buf: &[u8]) -> Option<bool> {
    let mut undecided = false;
    for sig in [&V1_PREFIX[..], &V2_SIGNATURE[..]] {
        let n = buf.len().min(sig.len());
        if buf.get(..n) == sig.get(..n) {
            if n == sig.len() {
                return Some(true);
            }
            undecided = true;
        }
    }
    if undecided { None } else { Some(false) }
}

/// Parses a v1 or v2 header at the start of `buf`.
pub fn parse(buf: &[u8]) -> Result<Parsed, ProxyError> {
    match starts_like_header(buf) {
        None => Ok(Parsed::Incomplete),
        Some(false) => Err(ProxyError::NoSignature),
        Some(true) if buf.starts_with(V1_PREFIX) => parse_v1(buf),
        Some(true) => parse_v2(buf),
    }
}

/// `PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n`, or `PROXY UNKNOWN …\r\n`.
fn parse_v1(buf: &[u8]) -> Result<Parsed, ProxyError> {
    let window = buf.get(..buf.len().min(V1_MAX_LEN)).unwrap_or(buf);
    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
        return if buf.len() >= V1_MAX_LEN {
            Err(ProxyError::V1TooLong)
        } else if window.contains(&b'\n') {
            Err(ProxyError::V1Malformed("LF without CR"))
        } else {
            Ok(Parsed::Incomplete)
        };
    };
    let len = end + 2;
    let line = window
        .get(V1_PREFIX.len()..end)
        .ok_or(ProxyError::V1Malformed("empty"))?;
    let line = std::str::from_utf8(line).map_err(|_| ProxyError::V1Malformed("not ASCII"))?;
    let mut fields = line.split(' ');
    let proto = fields.next().unwrap_or("");
    if proto == "UNKNOWN" {
        // Spec: "the receiver must ignore anything presented before the CRLF".
        return Ok(Parsed::Header(Header {
            len,
            source: None,
            destination: None,
        }));
    }
    let v6 = match proto {
        "TCP4" => false,
        "TCP6" => true,
        _ => {
            return Err(ProxyError::V1Malformed(
                "protocol is not TCP4, TCP6 or UNKNOWN",
            ));
        }
    };
    let mut next = || {
        fields
            .next()
            .ok_or(ProxyError::V1Malformed("missing field"))
    };
    let (src, dst, sport, dport) = (next()?, next()?, next()?, next()?);
    if fields.next().is_some() {
        return Err(ProxyError::V1Malformed("trailing field"));
    }
    let ip = |s: &str| -> Result<IpAddr, ProxyError> {
        let ip = if v6 {
            s.parse::<Ipv6Addr>().map(IpAddr::V6)
        } else {
            s.parse::<Ipv4Addr>().map(IpAddr::V4)
        };
        ip.map_err(|_| ProxyError::V1Malformed("bad address"))
    };
    let port = |s: &str| -> Result<u16, ProxyError> {
        // Spec: decimal, no leading zero; `u16::from_str` would accept "+1".
        let ok = !s.is_empty()
            && s.len() <= 5
            && s.bytes().all(|b| b.is_ascii_digit())
            && (s == "0" || !s.starts_with('0'));
        ok.then(|| s.parse().ok())
            .flatten()
            .ok_or(ProxyError::V1Malformed("bad port"))
    };
    Ok(Parsed::Header(Header {
        len,
        source: Some(SocketAddr::new(ip(src)?, port(sport)?)),
        destination: Some(SocketAddr::new(ip(dst)?, port(dport)?)),
    }))
}

/// Fixed 16 bytes (signature, version/command, family, length) + payload.
fn parse_v2(buf: &[u8]) -> Result<Parsed, ProxyError> {
    let Some(fixed) = buf.get(..16) else {
        return Ok(Parsed::Incomplete);
    };
    let ver_cmd = fixed[12]; // invariant: `fixed` is 16 bytes.
    let family = fixed[13];
    let payload_len = usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    if ver_cmd >> 4 != 2 {
        return Err(ProxyError::V2Version(ver_cmd >> 4));
    }
    let local = match ver_cmd & 0x0F {
        0 => true,
        1 => false,
        c => return Err(ProxyError::V2Command(c)),
    };
    if payload_len > V2_MAX_PAYLOAD {
        return Err(ProxyError::V2TooLong(16 + payload_len));
    }
    let len = 16 + payload_len; // both bounded above: no overflow
    let Some(payload) = buf.get(16..len) else {
        return Ok(Parsed::Incomplete);
    };
    // Spec §2.2: with LOCAL "the receiver must accept this connection as
    // valid and must use the real connection endpoints"; likewise for
    // UNSPEC and families without IP addresses (AF_UNIX).
    let (source, destination) = match (local, family >> 4) {
        (true, _) => (None, None),
        (false, 0x1) => {
            let a = need(payload, family, 12)?;
            let ip = |o: usize| IpAddr::V4(Ipv4Addr::new(a[o], a[o + 1], a[o + 2], a[o + 3]));
            let port = |o: usize| u16::from_be_bytes([a[o], a[o + 1]]);
            (
                Some(SocketAddr::new(ip(0), port(8))),
                Some(SocketAddr::new(ip(4), port(10))),
            )
        }
        (false, 0x2) => {
            let a = need(payload, family, 36)?;
            let ip = |o: usize| {
                let mut b = [0u8; 16];
                b.copy_from_slice(&a[o..o + 16]);
                IpAddr::V6(Ipv6Addr::from(b))
            };
            let port = |o: usize| u16::from_be_bytes([a[o], a[o + 1]]);
            (
                Some(SocketAddr::new(ip(0), port(32))),
                Some(SocketAddr::new(ip(16), port(34))),
            )
        }
        (false, _) => (None, None),
    };
    Ok(Parsed::Header(Header {
        len,
        source,
        destination,
    }))
}

/// The first `n` bytes of the address block, or `V2Truncated`.
fn need(payload: &[u8], family: u8, n: usize) -> Result<&[u8], ProxyError> {
    payload.get(..n).ok_or(ProxyError::V2Truncated {
        family,
        needed: n,
        got: payload.len(),
    })
}

#[cfg(test)]
mod tests;
