//! Maps the TURN core's outputs (`proto::turn::Event`, `DropReason`,
//! `Stats`) onto a worker's [`WorkerMetrics`], so the driver's wiring is one
//! call per output. Everything here runs on the worker thread that owns the
//! block (single writer).

use super::metrics::{AuthFailure, DropReason, Family, PeerRule, Transport, WorkerMetrics};
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
        D::Malformed | D::TooLarge => DropReason::Malformed,
        D::NoAllocation | D::NoChannel | D::NotForUs => return,
    };
    m.relay_drop(r);
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
