//! Two clients on one server talking relay to relay (the usual shape of a
//! call where both sides need TURN). The relay addresses are on 127.0.0.1,
//! which the default peer policy denies except for the server's own relay
//! address, so this also runs with the default policy.

use tokio::net::UdpSocket;

use crate::harness::{PASS, TestServer, USER, is_coturn, settings, settings_default_policy};
use crate::turn_webrtc_rs::{Allocation, allocate, relay_recv, relay_send};

/// A and B allocate and send to each other's relay address, enough rounds
/// for the client to move from Send indications to channels.
///
/// Permissions: A's first datagram to B installs A's permission but may be
/// dropped by B (no permission yet); after that both sides have one. With
/// `default_policy`, a datagram from A to a non-relay port on the relay IP
/// (a local service) must not be delivered.
async fn relay_to_relay(server: &TestServer, default_policy: bool) {
    let a = allocate(server.udp, USER, PASS).await.expect("Allocate A");
    let b = allocate(server.udp, USER, PASS).await.expect("Allocate B");
    assert_ne!(a.relay_addr, b.relay_addr);

    const PROBE: &str = "A's permission probe";
    relay_send(a.relay.as_ref(), PROBE.as_bytes(), b.relay_addr).await;
    let local_service = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    if default_policy {
        let to = local_service.local_addr().unwrap();
        relay_send(a.relay.as_ref(), b"to a local service", to).await;
    }

    exchange(&b, &a, "B->A first").await;
    relay_send(a.relay.as_ref(), b"A->B first", b.relay_addr).await;
    let (mut got, mut src) = relay_recv(b.relay.as_ref(), "A->B first").await;
    if got == PROBE.as_bytes() {
        (got, src) = relay_recv(b.relay.as_ref(), "A->B first").await;
    }
    assert_eq!(
        (String::from_utf8_lossy(&got).as_ref(), src),
        ("A->B first", a.relay_addr)
    );

    for i in 0..10 {
        exchange(&a, &b, &format!("A->B {i}")).await;
        exchange(&b, &a, &format!("B->A {i}")).await;
    }
    if default_policy && !is_coturn() {
        let mut buf = [0u8; 64];
        let leaked = local_service.try_recv_from(&mut buf);
        assert!(
            leaked.is_err(),
            "the relay delivered to a non-relay port of its own address under the default policy"
        );
    }
    a.close().await;
    b.close().await;
}

async fn exchange(from: &Allocation, to: &Allocation, msg: &str) {
    relay_send(from.relay.as_ref(), msg.as_bytes(), to.relay_addr).await;
    let (got, src) = relay_recv(to.relay.as_ref(), msg).await;
    assert_eq!(String::from_utf8_lossy(&got), msg, "payload");
    assert_eq!(
        src, from.relay_addr,
        "the receiver must see the sender's relay address"
    );
}

#[tokio::test]
async fn relay_to_relay_with_loopback_allowed() {
    relay_to_relay(&TestServer::with(settings()), false).await;
}

#[tokio::test]
async fn relay_to_relay_with_default_peer_policy() {
    relay_to_relay(&TestServer::with(settings_default_policy()), true).await;
}

/// The default policy still refuses other loopback addresses: a permission
/// for 127.0.0.2 (not the relay address) must fail (403).
#[tokio::test]
async fn default_peer_policy_refuses_other_loopback_peers() {
    if is_coturn() {
        eprintln!("skipped under coturn: it is started with --allow-loopback-peers");
        return;
    }
    let server = TestServer::with(settings_default_policy());
    let a = allocate(server.udp, USER, PASS).await.expect("Allocate");
    let peer = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let result = tokio::time::timeout(
        crate::harness::IO_TIMEOUT,
        a.relay
            .send_to(b"must not pass", peer.local_addr().unwrap()),
    )
    .await
    .expect("send_to timed out");
    assert!(
        result.is_err(),
        "CreatePermission for 127.0.0.2 succeeded under the default policy"
    );
    a.close().await;
}
