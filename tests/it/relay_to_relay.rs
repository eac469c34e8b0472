//! Two clients on one server talking relay to relay (the usual shape of a
//! call where both sides need TURN). The relay addresses are on 127.0.0.1,
//! which the default peer policy denies except for the server's own relay
//! address, so this also runs with the default policy.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tern::tools::client::{Client, Delivery};
use tokio::net::UdpSocket;

use crate::harness::{
    ChildGuard, IO_TIMEOUT, PASS, TestServer, USER, is_coturn, relay_ports, settings,
    settings_default_policy,
};
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

/// Behind a 1:1 NAT that does not hairpin: relays bind 127.0.0.1 and are
/// advertised as 127.0.0.2 (`relay.advertised_address`), where nothing
/// listens, so a datagram sent to another allocation's relayed address as
/// given would be lost. The server must send it to its local relay address
/// instead, and the receiver must see it from the sender's advertised
/// address (what its permission and its ICE agent know). Default peer
/// policy: startup allows the server's own relay addresses, no more.
/// Under `TERN_IT_SERVER=coturn`, coturn's `external-ip` does the same.
#[tokio::test]
async fn relay_to_relay_behind_a_one_to_one_nat_without_hairpinning() {
    let mut s = settings_default_policy();
    s.advertised_ip = Some("127.0.0.2".parse().unwrap());
    let server = if is_coturn() {
        crate::harness::start_coturn_with(&s, false, &["--external-ip=127.0.0.2/127.0.0.1"])
    } else {
        TestServer::with(s)
    };
    let a = allocate(server.udp, USER, PASS).await.expect("Allocate");
    assert_eq!(
        a.relay_addr.ip(),
        std::net::IpAddr::from([127, 0, 0, 2]),
        "XOR-RELAYED-ADDRESS carries the advertised IP"
    );
    a.close().await;
    // Send indications, then channels, both ways; every datagram's source
    // is checked to be the sender's advertised relayed address.
    relay_to_relay(&server, true).await;
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
        IO_TIMEOUT,
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

/// The `tern` binary as an operator starts it: command-line flags only, so
/// the default peer policy, relay address 127.0.0.1 and this test's relay
/// ports. Returns once a Binding is answered.
fn spawn_tern_binary() -> (ChildGuard, SocketAddr) {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = SocketAddr::from(([127, 0, 0, 1], port));
    let ports = relay_ports();
    let child = ChildGuard::spawn(
        Command::new(env!("CARGO_BIN_EXE_tern"))
            .args([
                "--listen",
                &server.to_string(),
                "--relay-address",
                "127.0.0.1",
                "--admin-listen",
                "",
            ])
            .args([
                "--relay-ports",
                &format!("{}-{}", ports.start(), ports.end()),
            ])
            .args(["--workers", "1", "--user", &format!("{USER}:{PASS}")])
            .args(["--log-level", "warn"])
            .env_remove("TERN_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        "tern",
    );
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    probe
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while tern::tools::client::binding(&probe, server, 1).is_none() {
        assert!(Instant::now() < deadline, "tern did not answer on {server}");
    }
    (child, server)
}

/// The next relayed payload at `to`, which must come from `from` as `how`.
fn expect_relayed(to: &mut Client, how: Delivery, payload: &str) {
    let got = to
        .recv_data(IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("waiting for {payload:?}: {e}"))
        .unwrap_or_else(|| panic!("{payload:?} was not relayed"));
    assert_eq!(
        (got.0, String::from_utf8_lossy(&got.1).as_ref()),
        (how, payload)
    );
}

/// Two allocations on one server relay to each other both ways, first with
/// Send/Data indications, then over channels, with the server's DEFAULT
/// peer policy and its relay address on loopback (which that policy denies).
/// It works only because startup adds the server's own relay addresses to
/// the policy; nothing here adds them. Tested through the binary, so
/// wherever startup does that (config resolution or the driver), this
/// fails if it stops.
#[test]
fn relay_to_another_allocation_on_the_same_server() {
    let (_tern, server) = spawn_tern_binary();
    let udp = || std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut a = Client::udp(udp(), server, USER, PASS);
    let mut b = Client::udp(udp(), server, USER, PASS);
    let ra = a.allocate().expect("Allocate A");
    assert_eq!(
        a.exchanges().iter().map(|e| e.error).collect::<Vec<_>>(),
        [Some(401), None],
        "Allocate: the 401 then the authenticated success"
    );
    let rb = b.allocate().expect("Allocate B");
    assert_eq!(
        (ra.ip(), rb.ip()),
        ([127, 0, 0, 1].into(), [127, 0, 0, 1].into())
    );
    a.create_permission(rb)
        .unwrap_or_else(|e| panic!("A: permission for B's relay address: {e}"));
    b.create_permission(ra)
        .unwrap_or_else(|e| panic!("B: permission for A's relay address: {e}"));

    // Later requests reuse the realm and nonce the 401 taught.
    assert_eq!(
        a.exchanges().iter().map(|e| e.error).collect::<Vec<_>>(),
        [None],
        "CreatePermission: one round trip"
    );

    a.send_indication(rb, b"A->B send").unwrap();
    expect_relayed(&mut b, Delivery::Data(ra), "A->B send");
    b.send_indication(ra, b"B->A send").unwrap();
    expect_relayed(&mut a, Delivery::Data(rb), "B->A send");

    a.channel_bind(0x4000, rb)
        .unwrap_or_else(|e| panic!("A: channel to B's relay address: {e}"));
    b.channel_bind(0x4001, ra)
        .unwrap_or_else(|e| panic!("B: channel to A's relay address: {e}"));
    a.send_channel(0x4000, b"A->B channel").unwrap();
    expect_relayed(&mut b, Delivery::Channel(0x4001), "A->B channel");
    b.send_channel(0x4001, b"B->A channel").unwrap();
    expect_relayed(&mut a, Delivery::Channel(0x4000), "B->A channel");

    a.refresh(0).expect("delete A");
    b.refresh(0).expect("delete B");
}

/// Two allocations on one worker: every datagram between their relays is
/// handed over inside the worker (counted by
/// `tern_relay_internal_packets_total`), and arrives as it would through
/// the kernel: from the sender's relay address, as Data or ChannelData.
#[test]
fn relay_to_relay_on_one_worker_skips_the_kernel() {
    if is_coturn() {
        return;
    }
    let mut tern = crate::ops::Tern::spawn(&crate::ops::Policy::default(), None);
    tern.wait_ready();
    let mut a = tern.client();
    let mut b = tern.client();
    let ra = a.allocate().expect("Allocate A");
    let rb = b.allocate().expect("Allocate B");
    a.create_permission(rb).expect("A: permission for B");
    b.create_permission(ra).expect("B: permission for A");
    const SAMPLE: &str = "tern_relay_internal_packets_total";
    assert_eq!(tern.metric(SAMPLE), Some(0.0));

    for i in 0..5 {
        let (ab, ba) = (format!("A->B send {i}"), format!("B->A send {i}"));
        a.send_indication(rb, ab.as_bytes()).unwrap();
        expect_relayed(&mut b, Delivery::Data(ra), &ab);
        b.send_indication(ra, ba.as_bytes()).unwrap();
        expect_relayed(&mut a, Delivery::Data(rb), &ba);
    }
    a.channel_bind(0x4000, rb).expect("A: channel to B");
    b.channel_bind(0x4001, ra).expect("B: channel to A");
    for i in 0..5 {
        let (ab, ba) = (format!("A->B channel {i}"), format!("B->A channel {i}"));
        a.send_channel(0x4000, ab.as_bytes()).unwrap();
        expect_relayed(&mut b, Delivery::Channel(0x4001), &ab);
        b.send_channel(0x4001, ba.as_bytes()).unwrap();
        expect_relayed(&mut a, Delivery::Channel(0x4000), &ba);
    }
    // Twenty datagrams, all handed over inside the worker; the counter is
    // published once per loop, just after the last one was relayed.
    assert_eq!(tern.wait_metric(SAMPLE, |v| v >= 20.0), 20.0);
}
