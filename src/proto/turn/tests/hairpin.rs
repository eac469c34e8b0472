//! Relay to relay behind a 1:1 NAT: the fake driver hands out relayed
//! addresses on 203.0.113.1 (the advertised IP); the relay sockets are on
//! 10.0.0.5 behind it.

use super::*;

const LOCAL: &str = "10.0.0.5";

fn nat_server() -> TestServer {
    TestServer::with(|c| {
        c.relay_nat
            .add("203.0.113.1".parse().unwrap(), LOCAL.parse().unwrap());
    })
}

fn second_client() -> FiveTuple {
    FiveTuple {
        client: addr("198.51.100.8:40000"),
        ..client()
    }
}

fn local(public: SocketAddr) -> SocketAddr {
    SocketAddr::new(LOCAL.parse().unwrap(), public.port())
}

fn send_indication(t: &mut TestServer, peer: SocketAddr, data: &[u8]) -> Vec<u8> {
    t.message(Method::SEND, Class::Indication, |w| {
        w.push_xor_addr(AttrType::XOR_PEER_ADDRESS, peer);
        w.push(AttrType::DATA, data);
    })
    .1
}

/// The Data indication's XOR-PEER-ADDRESS.
fn data_from(bytes: &[u8]) -> SocketAddr {
    let m = Message::parse(bytes).expect("Data indication parses");
    assert_eq!(
        m.message_type(),
        MessageType::new(Method::DATA, Class::Indication)
    );
    xor_attr(&m, AttrType::XOR_PEER_ADDRESS)
}

#[test]
fn sends_to_this_servers_public_relay_go_to_the_local_one_and_come_back_public() {
    let mut t = nat_server();
    let (a, b) = (client(), second_client());
    let (ra, rb) = (t.allocate(a), t.allocate(b));
    let (ida, idb) = (t.bound[0], t.bound[1]);
    assert_eq!(
        ra.ip().to_string(),
        "203.0.113.1",
        "clients see the public IP"
    );
    // Each permits the other's public relayed address, as ICE does.
    expect_success(&t.create_permission(a, &[rb]), Method::CREATE_PERMISSION);
    expect_success(&t.create_permission(b, &[ra]), Method::CREATE_PERMISSION);

    // Out: A's Send to B's public address leaves for B's local one.
    let ind = send_indication(&mut t, rb, b"hello");
    let ClientAction::RelayToPeer { relay, peer, .. } = t.input(a, &ind).0 else {
        panic!("A's Send was not relayed")
    };
    assert_eq!((relay, peer), (ida, local(rb)));
    // In: it reaches B's relay from A's local address; B's permission for
    // A's public IP matches, and B is told A's public relayed address.
    let (to, bytes) = t.peer_sends(idb, local(ra), b"hello").expect("delivered");
    assert_eq!(to, b);
    assert_eq!(data_from(&bytes), ra);

    // Channels: bound to the public addresses, used across the rewrite.
    expect_success(&t.channel_bind(a, 0x4001, rb), Method::CHANNEL_BIND);
    expect_success(&t.channel_bind(b, 0x4002, ra), Method::CHANNEL_BIND);
    let (action, _) = t.input(a, &[0x40, 0x01, 0x00, 0x01, b'x', 0, 0, 0]);
    assert_eq!(
        action,
        ClientAction::RelayToPeer {
            relay: ida,
            peer: local(rb),
            payload: 4..5
        }
    );
    let (_, bytes) = t.peer_sends(idb, local(ra), b"x").expect("delivered");
    assert_eq!(bytes, [0x40, 0x02, 0x00, 0x01, b'x'], "B's channel to A");
}

#[test]
fn the_rewrite_grants_nothing_a_permission_did_not() {
    let mut t = nat_server();
    let (a, b) = (client(), second_client());
    let (ra, rb) = (t.allocate(a), t.allocate(b));
    let idb = t.bound[1];
    // B has no permission for A yet: A's datagram from the local relay
    // address is dropped, as it would be from the public one.
    assert!(t.peer_sends(idb, local(ra), b"x").is_none());
    expect_success(&t.create_permission(b, &[ra]), Method::CREATE_PERMISSION);
    assert!(t.peer_sends(idb, local(ra), b"x").is_some());
    // Another host on the private network is not rewritten: no permission.
    assert!(t.peer_sends(idb, addr("10.0.0.6:4000"), b"x").is_none());
    // Peers elsewhere are sent to as given.
    let elsewhere = addr("8.8.8.8:5000");
    expect_success(
        &t.create_permission(a, &[elsewhere, rb]),
        Method::CREATE_PERMISSION,
    );
    let ind = send_indication(&mut t, elsewhere, b"hi");
    let ClientAction::RelayToPeer { peer, .. } = t.input(a, &ind).0 else {
        panic!("not relayed")
    };
    assert_eq!(peer, elsewhere);
}

#[test]
fn without_an_advertised_address_nothing_is_rewritten() {
    let mut t = TestServer::new();
    let (a, b) = (client(), second_client());
    let (ra, rb) = (t.allocate(a), t.allocate(b));
    expect_success(&t.create_permission(a, &[rb]), Method::CREATE_PERMISSION);
    expect_success(&t.create_permission(b, &[ra]), Method::CREATE_PERMISSION);
    let ind = send_indication(&mut t, rb, b"hello");
    let ClientAction::RelayToPeer { peer, .. } = t.input(a, &ind).0 else {
        panic!("not relayed")
    };
    assert_eq!(peer, rb);
    let (_, bytes) = t.peer_sends(t.bound[1], ra, b"hello").expect("delivered");
    assert_eq!(data_from(&bytes), ra);
}
