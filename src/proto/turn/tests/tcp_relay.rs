//! TCP allocations (RFC 6062): Allocate, Connect, ConnectionAttempt,
//! ConnectionBind, timeouts, caps and the end of the allocation.

use super::*;

const PEER: &str = "8.8.8.8:5000";

fn control() -> FiveTuple {
    FiveTuple {
        transport: Transport::Tcp,
        ..client()
    }
}

/// A second connection from the same client host: a data connection.
fn data_conn(port: u16) -> FiveTuple {
    FiveTuple {
        client: addr(&format!("198.51.100.7:{port}")),
        ..control()
    }
}

fn allocate_tcp_req(t: &mut TestServer, from: FiveTuple, extra: Option<AttrType>) -> Vec<u8> {
    let req = t.req(&from, Method::ALLOCATE, |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[6, 0, 0, 0]);
        if let Some(a) = extra {
            w.push(a, &[0x80, 0, 0, 0]);
        }
    });
    t.request(from, &req)
}

fn allocate_tcp(t: &mut TestServer) -> RelayId {
    expect_success(&allocate_tcp_req(t, control(), None), Method::ALLOCATE);
    *t.bound.last().unwrap()
}

fn connect_req(t: &mut TestServer, from: FiveTuple, peer: SocketAddr) -> Vec<u8> {
    t.req(&from, Method::CONNECT, |w, _| {
        w.push_xor_addr(AttrType::XOR_PEER_ADDRESS, peer);
    })
}

/// Sends Connect; returns its replies (none while the driver connects).
fn connect(t: &mut TestServer, peer: SocketAddr) -> Vec<Vec<u8>> {
    let req = connect_req(t, control(), peer);
    t.input(control(), &req).1
}

/// The id of the last ConnectPeer the core asked for.
fn last_connect(t: &TestServer) -> (ConnectionId, SocketAddr) {
    match t.tcp_cmds.last() {
        Some(Command::ConnectPeer { id, peer, .. }) => (*id, *peer),
        other => panic!("expected ConnectPeer, got {other:?}"),
    }
}

fn replies(t: &mut TestServer) -> Vec<Transmit> {
    std::iter::from_fn(|| t.server.poll_transmit()).collect()
}

fn connection_id(m: &Message<'_>) -> ConnectionId {
    let v = m.get(AttrType::CONNECTION_ID).expect("CONNECTION-ID");
    ConnectionId(crate::proto::stun::decode_u32(v).unwrap())
}

/// Connect that the driver completes; returns the CONNECTION-ID.
fn connected(t: &mut TestServer, peer: SocketAddr) -> ConnectionId {
    assert!(connect(t, peer).is_empty(), "no answer before the driver's");
    let (id, asked) = last_connect(t);
    assert_eq!(asked, peer);
    t.server.handle_peer_connected(t.now, id, Ok(()));
    let out = replies(t);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].to, control());
    let m = expect_success(&out[0].data, Method::CONNECT);
    assert_eq!(connection_id(&m), id);
    id
}

fn bind_req(
    t: &mut TestServer,
    from: FiveTuple,
    id: Option<ConnectionId>,
    user: (&str, &str),
) -> Vec<u8> {
    t.authed(&from, Method::CONNECTION_BIND, user.0, user.1, |w, _| {
        if let Some(id) = id {
            w.push_u32(AttrType::CONNECTION_ID, id.0);
        }
    })
    .1
}

#[test]
fn allocate_tcp_listens_on_a_tcp_relay_only_over_streams() {
    let mut t = TestServer::new();
    allocate_tcp(&mut t);
    // RFC 6062 §5.1: TCP over UDP is 400, not 442.
    assert_eq!(error_code(&allocate_tcp_req(&mut t, client(), None)), 400);
    // An unknown transport stays 442.
    let c = data_conn(1);
    let req = t.req(&c, Method::ALLOCATE, |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[132, 0, 0, 0]);
    });
    assert_eq!(error_code(&t.request(c, &req)), 442);
    // DONT-FRAGMENT, EVEN-PORT, RESERVATION-TOKEN: 400.
    for (i, a) in [
        AttrType::DONT_FRAGMENT,
        AttrType::EVEN_PORT,
        AttrType::RESERVATION_TOKEN,
    ]
    .into_iter()
    .enumerate()
    {
        let from = data_conn(100 + i as u16);
        assert_eq!(
            error_code(&allocate_tcp_req(&mut t, from, Some(a))),
            400,
            "{a:?}"
        );
    }
}

#[test]
fn connect_success_carries_a_connection_id_and_installs_a_permission() {
    let mut t = TestServer::new();
    let relay = allocate_tcp(&mut t);
    let peer = addr(PEER);
    let id = connected(&mut t, peer);
    assert!(
        t.server
            .allocation(&control())
            .unwrap()
            .has_permission(peer.ip(), t.now.mono),
        "RFC 6062 §5.2: a successful Connect installs a permission"
    );
    assert_eq!(t.server.tcp_connection_count(), 1);
    assert!(matches!(t.tcp_cmds[0], Command::ConnectPeer { relay: r, .. } if r == relay));
    // Ids differ per connection and are not a counter.
    let id2 = connected(&mut t, addr("8.8.8.8:5001"));
    assert_ne!(id, id2);
    assert_ne!(id.0.wrapping_add(1), id2.0);
}

#[test]
fn connect_errors() {
    let mut t = TestServer::new();
    let peer = addr(PEER);
    // 437 without allocation.
    let req = connect_req(&mut t, control(), peer);
    assert_eq!(error_code(&t.request(control(), &req)), 437);
    // 400 on a UDP allocation.
    t.allocate(client());
    let req = connect_req(&mut t, client(), peer);
    assert_eq!(error_code(&t.request(client(), &req)), 400);
    allocate_tcp(&mut t);
    // 400 without XOR-PEER-ADDRESS.
    let req = t.req(&control(), Method::CONNECT, |_, _| {});
    assert_eq!(error_code(&t.request(control(), &req)), 400);
    // 403 for a peer the policy denies; no connection attempted.
    let req = connect_req(&mut t, control(), addr("127.0.0.1:80"));
    assert_eq!(error_code(&t.request(control(), &req)), 403);
    assert!(t.tcp_cmds.is_empty());
    assert_eq!(t.server.stats().peer_denied, 1);
    // 446 while a Connect to the same peer is pending, and once it is open.
    assert!(connect(&mut t, peer).is_empty());
    let req = connect_req(&mut t, control(), peer);
    assert_eq!(error_code(&t.request(control(), &req)), 446);
    let (id, _) = last_connect(&t);
    t.server.handle_peer_connected(t.now, id, Ok(()));
    replies(&mut t);
    let req = connect_req(&mut t, control(), peer);
    assert_eq!(error_code(&t.request(control(), &req)), 446);
    // Another port of the same IP is another peer.
    connected(&mut t, addr("8.8.8.8:5001"));
}

#[test]
fn connect_failure_and_timeout_are_447() {
    let mut t = TestServer::new();
    allocate_tcp(&mut t);
    connect(&mut t, addr(PEER));
    let (id, _) = last_connect(&t);
    t.server
        .handle_peer_connected(t.now, id, Err(ConnectFailed));
    let out = replies(&mut t);
    assert_eq!(error_code(&out[0].data), 447);
    assert_eq!(t.server.tcp_connection_count(), 0);
    // Timeout: at least 30 s (RFC 6062 §5.2), then 447 and the attempt is closed.
    connect(&mut t, addr(PEER));
    let (id, _) = last_connect(&t);
    t.advance(CONNECT_TIMEOUT - Duration::from_secs(1));
    assert!(replies(&mut t).is_empty());
    t.advance(Duration::from_secs(1));
    let out = replies(&mut t);
    assert_eq!(error_code(&out[0].data), 447);
    assert_eq!(t.tcp_cmds.last(), Some(&Command::ClosePeer { id }));
    // A late success from the driver closes the connection, answers nothing.
    t.server.handle_peer_connected(t.now, id, Ok(()));
    assert_eq!(t.server.poll_command(), Some(Command::ClosePeer { id }));
    assert!(replies(&mut t).is_empty());
    assert_eq!(t.server.tcp_stats().connect_failed, 2);
}

#[test]
fn connection_bind_splices_the_new_connection() {
    let mut t = TestServer::new();
    allocate_tcp(&mut t);
    let id = connected(&mut t, addr(PEER));
    let data = data_conn(40001);
    let req = bind_req(&mut t, data, Some(id), (USER, PASS));
    let resp = t.request(data, &req);
    expect_success(&resp, Method::CONNECTION_BIND);
    assert_eq!(
        t.tcp_cmds.last(),
        Some(&Command::SpliceConnections { id, data })
    );
    // Bound: no bind timeout any more; a second bind is 400.
    t.advance(BIND_TIMEOUT * 2);
    assert_eq!(t.server.tcp_connection_count(), 1);
    let data2 = data_conn(40002);
    let req = bind_req(&mut t, data2, Some(id), (USER, PASS));
    assert_eq!(error_code(&t.request(data2, &req)), 400);
    // Either side closing ends it.
    t.server.handle_peer_closed(id);
    assert_eq!(t.server.tcp_connection_count(), 0);
}

#[test]
fn connection_bind_errors() {
    let mut t = TestServer::new();
    allocate_tcp(&mut t);
    let id = connected(&mut t, addr(PEER));
    let data = data_conn(40001);
    // 400: no CONNECTION-ID, an unknown one, a bad length.
    let req = bind_req(&mut t, data, None, (USER, PASS));
    assert_eq!(error_code(&t.request(data, &req)), 400);
    let req = bind_req(&mut t, data, Some(ConnectionId(id.0 ^ 1)), (USER, PASS));
    assert_eq!(error_code(&t.request(data, &req)), 400);
    let (_, req) = t.authed(&data, Method::CONNECTION_BIND, USER, PASS, |w, _| {
        w.push(AttrType::CONNECTION_ID, &[1, 2]);
    });
    assert_eq!(error_code(&t.request(data, &req)), 400);
    // 400 on the control connection itself and over UDP.
    let req = bind_req(&mut t, control(), Some(id), (USER, PASS));
    assert_eq!(error_code(&t.request(control(), &req)), 400);
    let req = bind_req(&mut t, client(), Some(id), (USER, PASS));
    assert_eq!(error_code(&t.request(client(), &req)), 400);
    // 441: other credentials than the allocation's.
    let req = bind_req(&mut t, data, Some(id), ("bob", "bobpw"));
    assert_eq!(error_code(&t.request(data, &req)), 441);
    // 401 unauthenticated.
    let (_, req) = t.message(Method::CONNECTION_BIND, Class::Request, |w| {
        w.push_u32(AttrType::CONNECTION_ID, id.0);
    });
    assert_eq!(error_code(&t.request(data, &req)), 401);
    // Nothing was spliced; the right request still works.
    assert!(
        !t.tcp_cmds
            .iter()
            .any(|c| matches!(c, Command::SpliceConnections { .. }))
    );
    let req = bind_req(&mut t, data, Some(id), (USER, PASS));
    expect_success(&t.request(data, &req), Method::CONNECTION_BIND);
}

#[test]
fn unbound_connections_close_after_30s() {
    let mut t = TestServer::new();
    allocate_tcp(&mut t);
    let id = connected(&mut t, addr(PEER));
    t.advance(BIND_TIMEOUT - Duration::from_secs(1));
    assert_eq!(t.server.tcp_connection_count(), 1);
    t.advance(Duration::from_secs(1));
    assert_eq!(t.tcp_cmds.last(), Some(&Command::ClosePeer { id }));
    assert_eq!(t.server.tcp_connection_count(), 0);
    assert_eq!(t.server.tcp_stats().bind_timeouts, 1);
    let data = data_conn(40001);
    let req = bind_req(&mut t, data, Some(id), (USER, PASS));
    assert_eq!(error_code(&t.request(data, &req)), 400);
}

#[test]
fn peer_connection_needs_a_permission_then_sends_connection_attempt() {
    let mut t = TestServer::new();
    let relay = allocate_tcp(&mut t);
    let peer = addr("9.9.9.9:7000");
    assert_eq!(t.server.handle_peer_incoming(t.now, relay, peer), None);
    assert_eq!(t.server.tcp_stats().peer_refused, 1);
    expect_success(
        &t.create_permission(control(), &[addr("9.9.9.9:1")]),
        Method::CREATE_PERMISSION,
    );
    let id = t
        .server
        .handle_peer_incoming(t.now, relay, peer)
        .expect("accepted");
    let out = replies(&mut t);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].to, control());
    let m = Message::parse(&out[0].data).unwrap();
    assert_eq!(
        m.message_type(),
        MessageType::new(Method::CONNECTION_ATTEMPT, Class::Indication)
    );
    assert_eq!(xor_attr(&m, AttrType::XOR_PEER_ADDRESS), peer);
    assert_eq!(connection_id(&m), id);
    assert!(m.check_fingerprint().is_ok());
    // Bound within 30 s: spliced.
    let data = data_conn(40001);
    let req = bind_req(&mut t, data, Some(id), (USER, PASS));
    expect_success(&t.request(data, &req), Method::CONNECTION_BIND);
    assert_eq!(
        t.tcp_cmds.last(),
        Some(&Command::SpliceConnections { id, data })
    );
    // Peers of a UDP allocation are never accepted.
    t.allocate(client());
    let udp_relay = *t.bound.last().unwrap();
    t.create_permission(client(), &[peer]);
    assert_eq!(t.server.handle_peer_incoming(t.now, udp_relay, peer), None);
}

#[test]
fn connections_per_allocation_are_capped() {
    let mut t = TestServer::with(|c| c.limits.max_tcp_connections_per_allocation = 2);
    let relay = allocate_tcp(&mut t);
    connected(&mut t, addr("8.8.8.8:1"));
    connected(&mut t, addr("8.8.8.8:2"));
    let req = connect_req(&mut t, control(), addr("8.8.8.8:3"));
    assert_eq!(error_code(&t.request(control(), &req)), 508);
    // Incoming peers count against the same cap.
    assert_eq!(
        t.server
            .handle_peer_incoming(t.now, relay, addr("8.8.8.8:4")),
        None
    );
}

#[test]
fn allocation_end_closes_every_connection() {
    let mut t = TestServer::new();
    let relay = allocate_tcp(&mut t);
    let a = connected(&mut t, addr("8.8.8.8:1"));
    let b = connected(&mut t, addr("8.8.8.8:2"));
    connect(&mut t, addr("8.8.8.8:3"));
    let (c, _) = last_connect(&t);
    let d = t
        .server
        .handle_peer_incoming(t.now, relay, addr("8.8.8.8:9"))
        .unwrap();
    replies(&mut t);
    t.tcp_cmds.clear();
    t.server.handle_client_closed(&control());
    t.pump();
    let mut closed: Vec<_> = t
        .tcp_cmds
        .iter()
        .filter_map(|c| match c {
            Command::ClosePeer { id } => Some(*id),
            _ => None,
        })
        .collect();
    closed.sort();
    let mut want = vec![a, b, c, d];
    want.sort();
    assert_eq!(closed, want);
    assert_eq!(t.server.tcp_connection_count(), 0);
    assert_eq!(t.released, [relay]);
    // The pending Connect's late answer closes, and answers nobody.
    t.server.handle_peer_connected(t.now, c, Ok(()));
    assert_eq!(t.server.poll_command(), Some(Command::ClosePeer { id: c }));
    assert!(replies(&mut t).is_empty());
}

/// Behind a 1:1 NAT (`relay_nat`): a Connect to this server's public relay
/// IP is made to the local one, and a peer connecting from the local relay
/// IP is admitted by the public IP's permission and announced under it.
#[test]
fn connect_to_this_servers_public_relay_goes_to_the_local_one() {
    let (public, local) = ("203.0.113.1", "10.0.0.5");
    let mut t = TestServer::with(|c| {
        c.relay_nat
            .add(public.parse().unwrap(), local.parse().unwrap());
    });
    let relay = allocate_tcp(&mut t);
    let other = addr(&format!("{public}:50000"));
    assert!(connect(&mut t, other).is_empty());
    let (id, asked) = last_connect(&t);
    assert_eq!(asked, addr(&format!("{local}:50000")));
    t.server.handle_peer_connected(t.now, id, Ok(()));
    expect_success(&replies(&mut t)[0].data, Method::CONNECT);
    let from_local = addr(&format!("{local}:50002"));
    t.server
        .handle_peer_incoming(t.now, relay, from_local)
        .expect("admitted by the permission for the public IP");
    let out = replies(&mut t);
    let m = Message::parse(&out[0].data).unwrap();
    assert_eq!(
        xor_attr(&m, AttrType::XOR_PEER_ADDRESS),
        addr(&format!("{public}:50002"))
    );
}
