//! Two clients on one server talking relay to relay (the usual shape of a
//! call where both sides need TURN). The relay addresses are on 127.0.0.1,
//! which the default peer policy denies except for the server's own relay
//! address, so this also runs with the default policy.

use tokio::net::UdpSocket;

use crate::harness::{PASS, TestServer, USER, is_coturn, settings, settings_default_policy};
use crate::turn_webrtc_rs::{Allocation, allocate, peer_recv, relay_recv, relay_send};

/// A and B allocate; each gets a permission for 127.0.0.1 by sending to a
/// sink socket there (so neither first datagram to the other's relay is lost
/// to a missing permission); then data flows A→B and B→A, enough rounds
/// for the client to move from Send indications to channels.
async fn relay_to_relay(server: &TestServer) {
    let a = allocate(server.udp, USER, PASS).await.expect("Allocate A");
    let b = allocate(server.udp, USER, PASS).await.expect("Allocate B");
    assert_ne!(a.relay_addr, b.relay_addr);

    let sink = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let sink_addr = sink.local_addr().unwrap();
    for (name, alloc) in [("A", &a), ("B", &b)] {
        relay_send(alloc.relay.as_ref(), name.as_bytes(), sink_addr).await;
        let (got, from) = peer_recv(&sink, &format!("permission probe from {name}")).await;
        assert_eq!((got.as_slice(), from), (name.as_bytes(), alloc.relay_addr));
    }

    for i in 0..10 {
        exchange(&a, &b, &format!("A->B {i}")).await;
        exchange(&b, &a, &format!("B->A {i}")).await;
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
    relay_to_relay(&TestServer::with(settings())).await;
}

#[tokio::test]
async fn relay_to_relay_with_default_peer_policy() {
    relay_to_relay(&TestServer::with(settings_default_policy())).await;
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
