//! 300 Try Alternate end to end (RFC 8489 §10): tern nodes on 127.0.0.1,
//! tern's own client following the redirect (webrtc-rs's `turn` client has
//! no ALTERNATE-SERVER handling, so it cannot be the client here).

use std::net::{SocketAddr, UdpSocket};

use tern::proto::turn::Alternates;
use tern::settings::SettingsBuilder;
use tern::tools::client::{Client, Error};

use crate::harness::{PASS, TestServer, USER, is_coturn, settings};

/// A UDP port that was free a moment ago.
fn free_udp() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// One worker, so "over the soft limit" does not wait for the driver's
/// once-a-second load report.
fn node(listen: SocketAddr, alternates: &[SocketAddr], soft: Option<u32>) -> SettingsBuilder {
    let mut s = settings();
    s.workers = 1;
    s.udp_listen = vec![listen];
    s.tcp_listen = vec![listen];
    s.proto.alternates = Alternates {
        servers: alternates.to_vec(),
        soft_max_allocations: soft,
    };
    s
}

fn owner(servers: &[&TestServer], relay: SocketAddr) -> usize {
    servers
        .iter()
        .position(|s| s.relay_ports.contains(&relay.port()))
        .unwrap_or_else(|| panic!("relay {relay} belongs to no node"))
}

#[test]
fn a_busy_node_sends_new_allocations_to_the_others_in_turn() {
    if is_coturn() {
        return; // tern's [cluster] feature
    }
    let b = TestServer::with(node(free_udp(), &[], None));
    let c = TestServer::with(node(free_udp(), &[], None));
    let a = TestServer::with(node(free_udp(), &[b.udp, c.udp], Some(1)));
    let nodes = [&a, &b, &c];

    let (first, tried) = Client::allocate_udp_following(a.udp, USER, PASS);
    let mut first = first.unwrap();
    assert_eq!(tried, [a.udp], "under the soft limit: served by A");
    assert_eq!(owner(&nodes, first.relay()), 0);

    let mut landed = Vec::new();
    for _ in 0..4 {
        let (cl, tried) = Client::allocate_udp_following(a.udp, USER, PASS);
        let cl = cl.unwrap();
        assert_eq!(tried.len(), 2, "one redirect: {tried:?}");
        landed.push(owner(&nodes, cl.relay()));
    }
    assert_eq!(landed, [1, 2, 1, 2], "rotation over B and C");
    // A's own allocation is untouched by the redirects.
    first.refresh(600).unwrap();
}

#[test]
fn two_full_nodes_pointing_at_each_other_do_not_loop() {
    if is_coturn() {
        return;
    }
    let (pa, pb) = (free_udp(), free_udp());
    let a = TestServer::with(node(pa, &[pb], Some(1)));
    let b = TestServer::with(node(pb, &[pa], Some(1)));
    // Fill both to their soft limit directly.
    let mut held = Vec::new();
    for s in [&a, &b] {
        let mut c = Client::udp(UdpSocket::bind("127.0.0.1:0").unwrap(), s.udp, USER, PASS);
        c.allocate().unwrap();
        held.push(c);
    }
    // A → 300 B → 300 A: the client stops instead of going back to A.
    let (res, tried) = Client::allocate_udp_following(a.udp, USER, PASS);
    assert_eq!(tried, [a.udp, b.udp]);
    match res {
        Err(Error::TryAlternate { servers, .. }) => assert_eq!(servers, [a.udp]),
        Err(e) => panic!("expected a final 300, got {e}"),
        Ok(_) => panic!("expected the redirect loop to fail"),
    }
}
