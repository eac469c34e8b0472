//! 300 Try Alternate with ALTERNATE-SERVER (RFC 8489 §10, RFC 8656 §7.2):
//! soft limit, draining, rotation, never to itself, family, TLS port.

use super::*;

const B: &str = "203.0.113.2:3478";
const C: &str = "203.0.113.3:3478";
const V6: &str = "[2001:db8::3]:3478";

fn fleet(servers: &[&str], soft: Option<u32>) -> TestServer {
    TestServer::with(|c| {
        c.alternates = Alternates {
            servers: servers.iter().map(|s| addr(s)).collect(),
            soft_max_allocations: soft,
        };
    })
}

fn client_n(n: u16, transport: Transport) -> FiveTuple {
    FiveTuple {
        client: SocketAddr::new("198.51.100.7".parse().unwrap(), 40_000 + n),
        server: addr("203.0.113.1:3478"),
        transport,
    }
}

fn allocate_req(t: &mut TestServer, from: &FiveTuple) -> Vec<u8> {
    t.req(from, Method::ALLOCATE, |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    })
}

/// The ALTERNATE-SERVER addresses of a 300, checking it is an authenticated error.
fn alternates_of(resp: &[u8]) -> Vec<SocketAddr> {
    assert_eq!(error_code(resp), 300);
    let m = Message::parse(resp).unwrap();
    let key = LongTermKey::derive(USER, REALM, PASS);
    assert!(m.check_integrity(&key.0).is_ok(), "300 is authenticated");
    m.attrs()
        .filter(|(t, _)| *t == AttrType::ALTERNATE_SERVER)
        .map(|(_, v)| crate::proto::stun::decode_addr(v).unwrap())
        .collect()
}

#[test]
fn under_the_soft_limit_allocates_here() {
    let mut t = fleet(&[B, C], Some(2));
    t.allocate(client_n(1, Transport::Udp));
    t.allocate(client_n(2, Transport::Udp));
    assert_eq!(t.server.allocation_count(), 2);
    assert_eq!(t.server.stats().redirected, 0);
}

#[test]
fn over_the_soft_limit_redirects_in_rotation_and_keeps_allocations() {
    let mut t = fleet(&[B, C], Some(1));
    let first = client_n(1, Transport::Udp);
    t.allocate(first);
    let mut got = Vec::new();
    for n in 2..6 {
        let from = client_n(n, Transport::Udp);
        let req = allocate_req(&mut t, &from);
        got.push(alternates_of(&t.request(from, &req)));
    }
    assert_eq!(got, [[addr(B)], [addr(C)], [addr(B)], [addr(C)]]);
    assert_eq!(
        t.server.allocation_count(),
        1,
        "no allocation for a redirect"
    );
    assert_eq!(t.server.stats().redirected, 4);
    // The existing allocation is untouched: Refresh still succeeds.
    expect_success(&t.refresh(first, Some(600)), Method::REFRESH);
}

#[test]
fn the_driver_load_counts_not_only_this_shard() {
    let mut t = fleet(&[B], Some(100));
    t.server.set_load(100);
    let from = client_n(1, Transport::Udp);
    let req = allocate_req(&mut t, &from);
    assert_eq!(alternates_of(&t.request(from, &req)), [addr(B)]);
    t.server.set_load(99);
    t.allocate(client_n(2, Transport::Udp));
}

#[test]
fn a_retransmission_gets_the_same_300() {
    let mut t = fleet(&[B, C], Some(1));
    t.server.set_load(5);
    let from = client_n(1, Transport::Udp);
    let req = allocate_req(&mut t, &from);
    let a = t.request(from, &req);
    let b = t.request(from, &req);
    assert_eq!(a, b, "replayed from the cache, not rotated again");
    assert_eq!(t.server.stats().redirected, 1);
}

#[test]
fn never_to_itself() {
    // The list holds the address the request arrived on: it is skipped.
    let mut t = fleet(&["203.0.113.1:3478", B], Some(1));
    t.server.set_load(1);
    for n in 1..4 {
        let from = client_n(n, Transport::Udp);
        let req = allocate_req(&mut t, &from);
        assert_eq!(alternates_of(&t.request(from, &req)), [addr(B)]);
    }
}

#[test]
fn only_itself_left_serves_when_busy_and_refuses_when_draining() {
    let mut t = fleet(&["203.0.113.1:3478"], Some(1));
    t.server.set_load(10);
    t.allocate(client_n(1, Transport::Udp));
    t.server.set_draining(true);
    let from = client_n(2, Transport::Udp);
    let req = allocate_req(&mut t, &from);
    assert_eq!(error_code(&t.request(from, &req)), 403);
}

#[test]
fn draining_redirects_without_a_soft_limit_and_stops_when_undrained() {
    let mut t = fleet(&[B], None);
    t.allocate(client_n(1, Transport::Udp));
    t.server.set_draining(true);
    assert!(t.server.is_draining());
    let from = client_n(2, Transport::Udp);
    let req = allocate_req(&mut t, &from);
    assert_eq!(alternates_of(&t.request(from, &req)), [addr(B)]);
    // Other requests go on while draining.
    expect_success(
        &t.refresh(client_n(1, Transport::Udp), None),
        Method::REFRESH,
    );
    t.server.set_draining(false);
    t.allocate(from);
}

#[test]
fn no_alternates_and_no_drain_never_redirects() {
    let mut t = fleet(&[], Some(1));
    t.allocate(client_n(1, Transport::Udp));
    t.allocate(client_n(2, Transport::Udp));
}

#[test]
fn same_family_first_then_one_of_the_other_family() {
    let mut t = fleet(&[V6, B], Some(1));
    t.server.set_load(1);
    let from = client_n(1, Transport::Udp);
    let req = allocate_req(&mut t, &from);
    assert_eq!(alternates_of(&t.request(from, &req)), [addr(B), addr(V6)]);
}

#[test]
fn an_ipv4_client_with_only_ipv6_alternates_is_served() {
    let mut t = fleet(&[V6], Some(1));
    t.server.set_load(1);
    t.allocate(client_n(1, Transport::Udp));
}

#[test]
fn tls_keeps_the_port_it_arrived_on() {
    let mut t = fleet(&[B], Some(1));
    t.server.set_load(1);
    let mut from = client_n(1, Transport::Tls);
    from.server = addr("203.0.113.1:443");
    let req = allocate_req(&mut t, &from);
    assert_eq!(
        alternates_of(&t.request(from, &req)),
        [addr("203.0.113.2:443")]
    );
}

#[test]
fn unauthenticated_allocates_get_401_not_300() {
    let mut t = fleet(&[B], Some(1));
    t.server.set_load(1);
    let from = client_n(1, Transport::Udp);
    let (_, req) = t.message(Method::ALLOCATE, Class::Request, |w| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    });
    assert_eq!(error_code(&t.request(from, &req)), 401);
    assert_eq!(t.server.stats().redirected, 0);
}
