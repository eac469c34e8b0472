//! Maps the TURN core's outputs (`proto::turn::Event`, `DropReason`,
//! `Stats`) onto a worker's [`WorkerMetrics`], so the driver's wiring is one
//! call per output. Everything here runs on the worker thread that owns the
//! block (single writer).

use super::metrics::{AuthFailure, DropReason, Family, Method, PeerRule, Transport, WorkerMetrics};
use crate::proto::stun::{self, Class, HEADER_LEN, MessageType};
use crate::proto::turn::{self, Event};

/// The metrics transport of a client five-tuple.
pub fn transport_of(t: turn::Transport) -> Transport {
    match t {
        turn::Transport::Udp => Transport::Udp,
        turn::Transport::Tcp => Transport::Tcp,
        turn::Transport::Tls => Transport::Tls,
    }
}

/// Counts one event of the core (call next to `log_event` in the drain
/// loop). Allocation durations need the allocation's age, which the event
/// does not carry yet: the driver calls `allocation_ended` itself.
pub fn record_event(m: &WorkerMetrics, ev: &Event) {
    match ev {
        Event::AllocationCreated { client, relay, .. } => {
            let t = transport_of(client.transport);
            m.allocation_created(t);
            m.allocations[t as usize][family(relay) as usize].add(1);
        }
        Event::AllocationEnded { client, relay, .. } => {
            let g = &m.allocations[transport_of(client.transport) as usize][family(relay) as usize];
            g.set(g.get().saturating_sub(1));
        }
        Event::PeerDenied { reason, .. } => m.peer_denied(peer_rule(reason)),
        Event::AuthFailed { reason, .. } => m.auth_failure(auth_reason(reason)),
    }
}

/// Counts a relay datagram the core dropped; drops that are not
/// relay-policy outcomes (stray datagrams for no allocation/channel) are
/// not counted here.
pub fn record_drop(m: &WorkerMetrics, reason: turn::DropReason) {
    use turn::DropReason as D;
    let r = match reason {
        D::NoPermission => DropReason::NoPermission,
        D::PeerDenied => DropReason::PeerPolicy,
        D::OverBandwidth => DropReason::Bandwidth,
        D::Malformed | D::TooLarge | D::ChannelOutOfRange => DropReason::Malformed,
        D::NoAllocation | D::NoChannel | D::NotForUs => return,
    };
    m.relay_drop(r);
}

/// Counts a STUN request by method from the 2-byte message type of a
/// client datagram or frame (hostile: only the header is looked at, with
/// bounds checks). ChannelData and indications are not requests and are
/// ignored. Call before `Server::handle_client`.
#[inline]
pub fn record_request(m: &WorkerMetrics, transport: Transport, datagram: &[u8]) {
    if let Some((mt, _)) = header(datagram)
        && mt.class == Class::Request
    {
        m.request(method_of(mt.method), transport);
    }
}

/// Counts a response tern sends (`poll_transmit` data): method and STUN
/// code, 200 for success, the ERROR-CODE value for errors.
pub fn record_response(m: &WorkerMetrics, msg: &[u8]) {
    let Some((mt, attrs)) = header(msg) else {
        return;
    };
    let code = match mt.class {
        Class::Success => 200,
        Class::Error => error_code(attrs).unwrap_or(0xFFFF),
        Class::Request | Class::Indication => return,
    };
    m.response(method_of(mt.method), code);
}

/// The message type and the attribute bytes of a STUN message.
fn header(b: &[u8]) -> Option<(MessageType, &[u8])> {
    let (head, attrs) = b.split_at_checked(HEADER_LEN)?;
    // RFC 8489 §5: the two most significant bits are zero (ChannelData has 01).
    let mt = MessageType::from_u16(u16::from_be_bytes([head[0], head[1]]))?;
    Some((mt, attrs))
}

fn method_of(method: stun::Method) -> Method {
    match method {
        stun::Method::BINDING => Method::Binding,
        stun::Method::ALLOCATE => Method::Allocate,
        stun::Method::REFRESH => Method::Refresh,
        stun::Method::CREATE_PERMISSION => Method::CreatePermission,
        stun::Method::CHANNEL_BIND => Method::ChannelBind,
        _ => Method::Other,
    }
}

/// The ERROR-CODE (RFC 8489 §14.8: class in the low 3 bits of byte 2,
/// number in byte 3) from an attribute section, walking at most 32 TLVs.
fn error_code(mut attrs: &[u8]) -> Option<u16> {
    for _ in 0..32 {
        let (t, rest) = attrs.split_at_checked(2)?;
        let (len, rest) = rest.split_at_checked(2)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let padded = (len + 3) & !3;
        let value = rest.get(..len)?;
        if u16::from_be_bytes([t[0], t[1]]) == stun::AttrType::ERROR_CODE.0 {
            let v = value.get(2..4)?;
            return Some(u16::from(v[0] & 0x07) * 100 + u16::from(v[1]));
        }
        attrs = rest.get(padded..)?;
    }
    None
}

fn family(addr: &std::net::SocketAddr) -> Family {
    if addr.is_ipv4() {
        Family::Ipv4
    } else {
        Family::Ipv6
    }
}

/// `PeerDenied.reason` is `proto::peer_policy::Deny`'s Display text.
fn peer_rule(reason: &str) -> PeerRule {
    if reason.starts_with("default deny") {
        PeerRule::Builtin
    } else {
        PeerRule::DenyList
    }
}

/// `AuthFailed.reason` as written in `proto::turn::request`.
fn auth_reason(reason: &str) -> AuthFailure {
    if reason.contains("expired") {
        AuthFailure::Expired
    } else if reason.contains("unknown username") || reason.contains("not UTF-8") {
        AuthFailure::UnknownUser
    } else if reason.contains("nonce") {
        AuthFailure::StaleNonce
    } else {
        AuthFailure::BadIntegrity
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::admin::metrics::Label;
    use crate::proto::peer_policy::Deny;
    use crate::proto::turn::{EndReason, FiveTuple};

    fn five(t: turn::Transport) -> FiveTuple {
        FiveTuple {
            client: "192.0.2.1:1000".parse().unwrap(),
            server: "192.0.2.2:3478".parse().unwrap(),
            transport: t,
        }
    }

    #[test]
    fn events_move_the_gauges_and_counters() {
        let m = WorkerMetrics::default();
        let relay6: std::net::SocketAddr = "[2001:db8::1]:50000".parse().unwrap();
        let created = Event::AllocationCreated {
            client: five(turn::Transport::Tcp),
            relay: relay6,
            username: "u".into(),
            lifetime: Duration::from_secs(600),
        };
        record_event(&m, &created);
        record_event(&m, &created);
        let tcp6 = &m.allocations[Transport::Tcp.index()][Family::Ipv6.index()];
        assert_eq!(tcp6.get(), 2);
        assert_eq!(m.allocations_created[Transport::Tcp.index()].get(), 2);
        let ended = Event::AllocationEnded {
            client: five(turn::Transport::Tcp),
            relay: relay6,
            username: "u".into(),
            reason: EndReason::Expired,
        };
        for _ in 0..3 {
            record_event(&m, &ended);
        }
        assert_eq!(tcp6.get(), 0, "never below zero");

        let deny = |d: Deny| Event::PeerDenied {
            client: five(turn::Transport::Udp),
            peer: "10.0.0.1".parse().unwrap(),
            reason: d.to_string(),
        };
        record_event(&m, &deny(Deny::Default("private (RFC 1918)")));
        record_event(
            &m,
            &deny(Deny::Configured("203.0.113.0/24".parse().unwrap())),
        );
        assert_eq!(m.peer_denied[PeerRule::Builtin.index()].get(), 1);
        assert_eq!(m.peer_denied[PeerRule::DenyList.index()].get(), 1);
    }

    fn message(method: stun::Method, class: Class, error: Option<u16>) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = stun::MessageWriter::new(
            &mut out,
            MessageType::new(method, class),
            stun::TransactionId([7; 12]),
        );
        w.push(stun::AttrType(0x8022), b"x");
        if let Some(code) = error {
            w.push_error_code(code, "reason");
        }
        out
    }

    #[test]
    fn requests_and_responses_are_classified_from_the_header() {
        use crate::admin::metrics::Code;
        let m = WorkerMetrics::default();
        let alloc = message(stun::Method::ALLOCATE, Class::Request, None);
        record_request(&m, Transport::Tls, &alloc);
        record_request(
            &m,
            Transport::Udp,
            &message(stun::Method::SEND, Class::Indication, None),
        );
        record_request(&m, Transport::Udp, &[0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4]);
        record_request(&m, Transport::Udp, &alloc[..19]);
        let total: u64 = m.requests.iter().flatten().map(|c| c.get()).sum();
        assert_eq!(total, 1);
        assert_eq!(
            m.requests[Method::Allocate.index()][Transport::Tls.index()].get(),
            1
        );

        record_response(
            &m,
            &message(stun::Method::ALLOCATE, Class::Error, Some(486)),
        );
        record_response(&m, &message(stun::Method::REFRESH, Class::Success, None));
        record_response(&m, &message(stun::Method::BINDING, Class::Error, Some(420)));
        let a = &m.responses[Method::Allocate.index()];
        assert_eq!(a[Code::C486.index()].get(), 1);
        assert_eq!(
            m.responses[Method::Refresh.index()][Code::C200.index()].get(),
            1
        );
        assert_eq!(
            m.responses[Method::Binding.index()][Code::C420.index()].get(),
            1
        );
        // An error without ERROR-CODE is counted as "other", not lost.
        record_response(&m, &message(stun::Method::BINDING, Class::Error, None));
        assert_eq!(
            m.responses[Method::Binding.index()][Code::Other.index()].get(),
            1
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(proptest::num::u8::ANY, 0..128)) {
            let m = WorkerMetrics::default();
            record_request(&m, Transport::Udp, &b);
            record_response(&m, &b);
        }
    }

    #[test]
    fn auth_reasons_and_drops_map_to_labels() {
        assert_eq!(auth_reason("REST credential expired"), AuthFailure::Expired);
        assert_eq!(auth_reason("unknown username"), AuthFailure::UnknownUser);
        assert_eq!(
            auth_reason("username is not UTF-8"),
            AuthFailure::UnknownUser
        );
        assert_eq!(
            auth_reason("bad MESSAGE-INTEGRITY (wrong password)"),
            AuthFailure::BadIntegrity
        );
        let m = WorkerMetrics::default();
        record_drop(&m, turn::DropReason::NoPermission);
        record_drop(&m, turn::DropReason::TooLarge);
        record_drop(&m, turn::DropReason::NoChannel);
        assert_eq!(m.relay_dropped[DropReason::NoPermission.index()].get(), 1);
        assert_eq!(m.relay_dropped[DropReason::Malformed.index()].get(), 1);
        let total: u64 = m.relay_dropped.iter().map(|c| c.get()).sum();
        assert_eq!(total, 2);
    }
}
