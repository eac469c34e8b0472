//! Binding, with NAT behaviour discovery (RFC 5780, <https://www.rfc-editor.org/rfc/rfc5780>).
//!
//! With [`NatDiscovery`] configured the server answers on four UDP
//! addresses, (IP1,P1) (IP1,P2) (IP2,P1) (IP2,P2). A Binding request that
//! arrives on one of them (`FiveTuple::server`, the local address) is
//! answered as RFC 5780 §6.1 says:
//!
//! - CHANGE-REQUEST picks the address the response leaves from (Table 1):
//!   "change IP" swaps IP1/IP2, "change port" swaps P1/P2. The reply's
//!   `Transmit::to.server` is that local address; the driver sends from the
//!   listener bound to it.
//! - RESPONSE-ORIGIN is that source address and OTHER-ADDRESS the one that
//!   differs from the request's destination in both IP and port (Ca:Cp),
//!   both as clients see them (public IPs behind a 1:1 NAT).
//! - RESPONSE-PORT sends the response to that port of the client's IP.
//! - PADDING pads the response (see below).
//!
//! Without `NatDiscovery`, or on any other listener (TCP, TLS, another
//! listen address), CHANGE-REQUEST, RESPONSE-PORT and PADDING are unknown
//! comprehension-required attributes and get 420, as §6.1 asks: "If the
//! Request contains the CHANGE-REQUEST attribute and the server does not
//! have an alternate address and port as described above, the server MUST
//! generate an error response of type 420." RFC 5780 discovery is a UDP
//! procedure; a stream cannot answer from another address.
//!
//! # Amplification (RFC 5780 §9)
//! Binding is unauthenticated, so a spoofed request aims the response at a
//! victim. tern keeps every response within 4× the request:
//! - RESPONSE-PORT only changes the port; the response always goes to the
//!   IP the request came from, so no third host can be targeted that a
//!   plain spoofed Binding could not reach.
//! - The padded response is as long as the request (never longer): its
//!   PADDING is the request's length minus the rest of the response, capped
//!   at [`MAX_PADDING`] bytes. It thus fragments like the request did, which
//!   is what the client is testing (§7.6).
//! - Beyond XOR-MAPPED-ADDRESS (always sent), RESPONSE-ORIGIN,
//!   OTHER-ADDRESS and MAPPED-ADDRESS are added in that order while the
//!   response stays within 4× the request. A 20-byte IPv4 request gets all
//!   of them (76 bytes); a bare 20-byte IPv6 request gets XOR-MAPPED-ADDRESS
//!   only, while any discovery request (which carries CHANGE-REQUEST,
//!   8 bytes more) gets RESPONSE-ORIGIN and OTHER-ADDRESS too.

use std::net::{IpAddr, SocketAddr};

use super::request::Req;
use super::{Server, Transmit};
use crate::proto::config::NatDiscovery;
use crate::proto::stun::{AttrType, Class, ErrorCode, Message, MessageType, MessageWriter};
use crate::proto::time::Now;

/// CHANGE-REQUEST, RFC 5780 §7.2 (0x0003; reserved in RFC 8489 but
/// assigned to RFC 5780 by IANA).
pub const CHANGE_REQUEST: AttrType = AttrType(0x0003);
/// CHANGE-REQUEST flag "change IP" (bit A, 0x04), RFC 5780 §7.2.
pub const CHANGE_IP: u8 = 0x04;
/// CHANGE-REQUEST flag "change port" (bit B, 0x02), RFC 5780 §7.2.
pub const CHANGE_PORT: u8 = 0x02;
/// Largest PADDING value tern sends: covers a jumbo-frame MTU, which is as
/// far as fragmentation tests go (§7.6: "It SHOULD be equal in length to
/// the MTU of the outgoing interface").
pub const MAX_PADDING: usize = 9216;

/// PADDING's value: its content does not matter (§7.6), zeros leak nothing.
static ZEROS: [u8; MAX_PADDING] = [0; MAX_PADDING];

/// The RFC 5780 attributes tern understands in a Binding request when the
/// request arrived on a discovery address.
pub(super) const NAT_ATTRS: &[AttrType] =
    &[CHANGE_REQUEST, AttrType::RESPONSE_PORT, AttrType::PADDING];

/// Which of the two IPs and two ports a local address is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Role {
    alt_ip: bool,
    alt_port: bool,
}

impl NatDiscovery {
    /// The role of local address `a`, if it is one of the four.
    fn role(&self, a: SocketAddr) -> Option<Role> {
        let alt_ip = if a.ip() == self.primary.ip() {
            false
        } else if a.ip() == self.alternate.ip() {
            true
        } else {
            return None;
        };
        let alt_port = if a.port() == self.primary.port() {
            false
        } else if a.port() == self.alternate.port() {
            true
        } else {
            return None;
        };
        Some(Role { alt_ip, alt_port })
    }

    /// The local address of a role.
    fn local(&self, r: Role) -> SocketAddr {
        let ip = if r.alt_ip {
            self.alternate.ip()
        } else {
            self.primary.ip()
        };
        let port = if r.alt_port {
            self.alternate.port()
        } else {
            self.primary.port()
        };
        SocketAddr::new(ip, port)
    }

    /// The address clients see for a role (public IPs behind a 1:1 NAT).
    fn public(&self, r: Role) -> SocketAddr {
        let ip: IpAddr = if r.alt_ip {
            self.public_alternate
        } else {
            self.public_primary
        };
        SocketAddr::new(ip, self.local(r).port())
    }
}

/// What a Binding request asked for, decoded and checked.
#[derive(Clone, Copy, Debug)]
struct Asked {
    flags: u8,
    response_port: Option<u16>,
    padding: bool,
}

/// Why a request's RFC 5780 attributes are refused with 400.
fn decode(msg: &Message<'_>) -> Result<Asked, &'static str> {
    let flags = match msg.get(CHANGE_REQUEST) {
        None => 0,
        // §7.2: a 32-bit value; only bits A and B have a meaning.
        Some(&[_, _, _, b]) => b & (CHANGE_IP | CHANGE_PORT),
        Some(_) => return Err("CHANGE-REQUEST is not 4 bytes"),
    };
    // §7.5: a 16-bit port, followed by 2 bytes of padding (some clients
    // send a 2-byte value, which the STUN padding completes).
    let response_port = match msg.get(AttrType::RESPONSE_PORT) {
        None => None,
        Some(&[0, 0, ..]) => return Err("RESPONSE-PORT is 0"),
        Some(&[hi, lo]) | Some(&[hi, lo, _, _]) => Some(u16::from_be_bytes([hi, lo])),
        Some(_) => return Err("RESPONSE-PORT is not 2 or 4 bytes"),
    };
    let padding = msg.get(AttrType::PADDING).is_some();
    // §6.1: "If the Request also contains the RESPONSE-PORT attribute the
    // server MUST return an error response of type 400."
    if padding && response_port.is_some() {
        return Err("PADDING with RESPONSE-PORT");
    }
    Ok(Asked {
        flags,
        response_port,
        padding,
    })
}

/// Bytes an address attribute takes on the wire.
fn addr_attr_len(a: SocketAddr) -> usize {
    if a.is_ipv4() { 4 + 8 } else { 4 + 20 }
}

impl Server {
    /// The RFC 5780 attributes a Binding request from `from` may carry:
    /// none unless it arrived over UDP on a discovery address.
    pub(super) fn nat_attrs(&self, from: &super::FiveTuple) -> &'static [AttrType] {
        match self.discovery_role(from) {
            Some(_) => NAT_ATTRS,
            None => &[],
        }
    }

    fn discovery_role(&self, from: &super::FiveTuple) -> Option<(NatDiscovery, Role)> {
        let nat = self.config.nat_discovery?;
        if from.transport != super::Transport::Udp {
            return None;
        }
        Some((nat, nat.role(from.server)?))
    }

    /// RFC 8489 §7.3.1 success with XOR-MAPPED-ADDRESS, plus the RFC 5780
    /// attributes and routing on a discovery address. Unknown attributes
    /// were refused (420) before this is called.
    pub(super) fn binding(&mut self, now: Now, req: Req, msg: &Message<'_>) {
        let client = req.from.client;
        let Some((nat, role)) = self.discovery_role(&req.from) else {
            self.reply(None, req, Class::Success, None, |w| {
                w.push_xor_addr(AttrType::XOR_MAPPED_ADDRESS, client);
            });
            return;
        };
        let asked = match decode(msg) {
            Ok(a) => a,
            Err(_why) => {
                self.stats.malformed += 1;
                self.reject(now, req, ErrorCode::BAD_REQUEST, None);
                return;
            }
        };
        let source = Role {
            alt_ip: role.alt_ip ^ (asked.flags & CHANGE_IP != 0),
            alt_port: role.alt_port ^ (asked.flags & CHANGE_PORT != 0),
        };
        let other = Role {
            alt_ip: !role.alt_ip,
            alt_port: !role.alt_port,
        };
        let (extra, pad) = self.plan(
            msg.as_bytes().len(),
            client,
            asked.padding,
            [nat.public(source), nat.public(other)],
        );
        let mut data = Vec::with_capacity(128 + pad);
        let mut w = MessageWriter::new(
            &mut data,
            MessageType::new(req.method, Class::Success),
            req.tid,
        );
        w.push_xor_addr(AttrType::XOR_MAPPED_ADDRESS, client);
        for (t, a) in extra.into_iter().flatten() {
            w.push_addr(t, a);
        }
        if asked.padding {
            w.push(AttrType::PADDING, &ZEROS[..pad]);
        }
        if let Some(sw) = &self.config.software {
            w.push(AttrType::SOFTWARE, sw.as_bytes());
        }
        w.push_fingerprint();
        let mut to = req.from;
        to.server = nat.local(source);
        if let Some(p) = asked.response_port {
            to.client = SocketAddr::new(client.ip(), p);
        }
        self.transmits.push_back(Transmit { to, data });
    }

    /// Which optional address attributes fit in 4× the request, and the
    /// PADDING length (the padded response is as long as the request, never
    /// longer, at most [`MAX_PADDING`]).
    fn plan(
        &self,
        request_len: usize,
        client: SocketAddr,
        padding: bool,
        [origin, other]: [SocketAddr; 2],
    ) -> ([Option<(AttrType, SocketAddr)>; 3], usize) {
        let budget = 4 * request_len;
        let software = self
            .config
            .software
            .as_ref()
            .map_or(0, |s| 4 + ((s.len() + 3) & !3));
        // Header, XOR-MAPPED-ADDRESS, SOFTWARE, FINGERPRINT: always sent;
        // PADDING's header when asked.
        let mut len = 20 + addr_attr_len(client) + software + 8 + if padding { 4 } else { 0 };
        let mut extra = [None; 3];
        for (slot, (t, a)) in extra.iter_mut().zip([
            (AttrType::RESPONSE_ORIGIN, origin),
            (AttrType::OTHER_ADDRESS, other),
            (AttrType::MAPPED_ADDRESS, client),
        ]) {
            if len + addr_attr_len(a) <= budget {
                len += addr_attr_len(a);
                *slot = Some((t, a));
            }
        }
        let pad = if padding {
            (request_len.saturating_sub(len) & !3).min(MAX_PADDING)
        } else {
            0
        };
        (extra, pad)
    }
}
