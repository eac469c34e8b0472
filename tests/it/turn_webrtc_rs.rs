//! TURN over UDP with the webrtc-rs `turn` client: allocation, permissions,
//! Send/Data indications, ChannelBind/ChannelData, and authentication.
//!
//! The client talks to the server through [`Sniffer`], a UDP proxy in the
//! test that records the kind of every datagram, so the tests can assert that
//! both relay paths (indications and channels) were used in both directions.
//! The webrtc-rs client (turn 0.17 `relay_conn.rs`) sends the first datagram
//! to a peer as a Send indication and starts a ChannelBind at the same time;
//! once the binding is ready, further datagrams go as ChannelData.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::net::UdpSocket;
use tokio::time::timeout;
use turn::client::{Client, ClientConfig};
use webrtc_util::Conn;

use crate::harness::{IO_TIMEOUT, PASS, REST_SECRET, TestServer, USER};

pub(crate) const SEND_INDICATION: u16 = 0x0016;
pub(crate) const DATA_INDICATION: u16 = 0x0017;
pub(crate) const CHANNEL_BIND_REQUEST: u16 = 0x0009;
pub(crate) const CHANNEL_BIND_SUCCESS: u16 = 0x0109;

/// Direction of a datagram through the [`Sniffer`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Dir {
    ToServer,
    ToClient,
}

/// What a datagram was, from its first bits (RFC 8656 §12).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Stun(u16),
    ChannelData,
    Other,
}

fn classify(d: &[u8]) -> Kind {
    match d.first().map(|b| b >> 6) {
        Some(0) if d.len() >= 20 => Kind::Stun(u16::from_be_bytes([d[0], d[1]])),
        Some(1) if d.len() >= 4 => Kind::ChannelData,
        _ => Kind::Other,
    }
}

/// A UDP proxy between one client and the server that logs datagram kinds.
pub(crate) struct Sniffer {
    pub(crate) addr: SocketAddr,
    seen: Arc<Mutex<Vec<(Dir, Kind)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sniffer {
    pub(crate) async fn start(server: SocketAddr) -> Self {
        let front = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let back = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        back.connect(server).await.unwrap();
        let addr = front.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let task = tokio::spawn(async move {
            let mut client = None;
            let mut a = vec![0u8; 65_536];
            let mut b = vec![0u8; 65_536];
            loop {
                tokio::select! {
                    r = front.recv_from(&mut a) => {
                        let Ok((n, from)) = r else { return };
                        client = Some(from);
                        log.lock().unwrap().push((Dir::ToServer, classify(&a[..n])));
                        let _ = back.send(&a[..n]).await;
                    }
                    r = back.recv(&mut b) => {
                        let Ok(n) = r else { continue }; // e.g. ICMP unreachable
                        log.lock().unwrap().push((Dir::ToClient, classify(&b[..n])));
                        if let Some(c) = client {
                            let _ = front.send_to(&b[..n], c).await;
                        }
                    }
                }
            }
        });
        Self { addr, seen, task }
    }

    pub(crate) fn count(&self, dir: Dir, kind: Kind) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| **s == (dir, kind))
            .count()
    }

    pub(crate) fn log(&self) -> Vec<(Dir, Kind)> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Sniffer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A webrtc-rs client with an allocation.
pub(crate) struct Allocation {
    pub(crate) client: Client,
    pub(crate) relay: Box<dyn Conn + Send + Sync>,
    pub(crate) relay_addr: SocketAddr,
}

impl Allocation {
    pub(crate) async fn close(self) {
        let _ = self.relay.close().await;
        let _ = self.client.close().await;
    }
}

/// Allocates on `server` (a UDP address) as `username`/`password`.
pub(crate) async fn allocate(
    server: SocketAddr,
    username: &str,
    password: &str,
) -> Result<Allocation, turn::Error> {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let client = Client::new(ClientConfig {
        stun_serv_addr: server.to_string(),
        turn_serv_addr: server.to_string(),
        username: username.to_owned(),
        password: password.to_owned(),
        realm: String::new(), // learnt from the 401
        software: String::new(),
        rto_in_ms: 0,
        conn: Arc::new(sock),
        vnet: None,
    })
    .await?;
    client.listen().await?;
    let relay = timeout(IO_TIMEOUT * 2, client.allocate())
        .await
        .map_err(|_| turn::Error::Other("Allocate timed out".into()))??;
    let relay_addr = relay.local_addr().unwrap();
    Ok(Allocation {
        client,
        relay: Box::new(relay),
        relay_addr,
    })
}

/// Sends through the relay, with a timeout (CreatePermission may run first).
/// (The count webrtc-rs returns is the size of the whole TURN message.)
pub(crate) async fn relay_send(conn: &(dyn Conn + Send + Sync), payload: &[u8], to: SocketAddr) {
    timeout(IO_TIMEOUT, conn.send_to(payload, to))
        .await
        .unwrap_or_else(|_| panic!("send_to {to} timed out"))
        .unwrap_or_else(|e| panic!("send_to {to} failed: {e}"));
}

/// Receives one datagram from the relay connection, with a timeout.
pub(crate) async fn relay_recv(
    conn: &(dyn Conn + Send + Sync),
    what: &str,
) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0u8; 2048];
    let (n, from) = timeout(IO_TIMEOUT, conn.recv_from(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("nothing received on the relay conn: {what}"))
        .unwrap_or_else(|e| panic!("relay recv_from failed ({what}): {e}"));
    buf.truncate(n);
    (buf, from)
}

/// Receives one datagram on a plain socket, with a timeout.
pub(crate) async fn peer_recv(sock: &UdpSocket, what: &str) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0u8; 2048];
    let (n, from) = timeout(IO_TIMEOUT, sock.recv_from(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("peer received nothing: {what}"))
        .unwrap();
    buf.truncate(n);
    (buf, from)
}

#[tokio::test]
async fn udp_allocation_relays_both_ways_with_indications_and_channels() {
    let server = TestServer::start();
    let sniffer = Sniffer::start(server.udp).await;
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let peer_addr = peer.local_addr().unwrap();

    let alloc = allocate(sniffer.addr, USER, PASS)
        .await
        .expect("Allocate failed");
    let relay = alloc.relay.as_ref();
    assert_eq!(
        alloc.relay_addr.ip().to_string(),
        "127.0.0.1",
        "XOR-RELAYED-ADDRESS ip"
    );
    assert!(
        server.relay_ports.contains(&alloc.relay_addr.port()),
        "relay port {} outside the configured {:?}",
        alloc.relay_addr.port(),
        server.relay_ports
    );

    // Round trips until the client has switched to ChannelData and the
    // server has answered with ChannelData (the first send is a Send
    // indication; the ChannelBind runs in the background).
    let mut rounds = 0;
    for i in 0..50 {
        rounds = i + 1;
        let out = format!("client->peer {i}");
        relay_send(relay, out.as_bytes(), peer_addr).await;
        let (got, from) = peer_recv(&peer, &out).await;
        assert_eq!(got, out.as_bytes(), "payload at the peer");
        assert_eq!(
            from, alloc.relay_addr,
            "peer must see the relayed address as source"
        );

        let back = format!("peer->client {i}");
        peer.send_to(back.as_bytes(), from).await.unwrap();
        let (got, from) = relay_recv(relay, &back).await;
        assert_eq!(got, back.as_bytes(), "payload at the client");
        assert_eq!(from, peer_addr, "XOR-PEER-ADDRESS / channel peer");

        if i >= 1
            && sniffer.count(Dir::ToServer, Kind::ChannelData) >= 1
            && sniffer.count(Dir::ToClient, Kind::ChannelData) >= 1
        {
            break;
        }
    }

    // A second peer on the same IP: covered by the IP permission, but no
    // channel is bound to it, so the server must use a Data indication.
    // Before it, a peer on another IP (no permission) whose datagram the
    // server must drop: the first thing the client receives is peer2's.
    let stranger = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    stranger
        .send_to(b"no permission", alloc.relay_addr)
        .await
        .unwrap();
    let peer2 = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    peer2
        .send_to(b"unbound peer", alloc.relay_addr)
        .await
        .unwrap();
    let (got, from) = relay_recv(relay, "datagram from a second peer").await;
    assert_eq!(
        (got.as_slice(), from),
        (&b"unbound peer"[..], peer2.local_addr().unwrap()),
        "a datagram from a peer without permission was relayed (or peer2's was lost)"
    );

    let log = sniffer.log();
    let expect = |dir, kind, what: &str| {
        assert!(
            sniffer.count(dir, kind) >= 1,
            "never saw {what} ({dir:?}) in {rounds} rounds; log: {log:?}"
        );
    };
    expect(
        Dir::ToServer,
        Kind::Stun(SEND_INDICATION),
        "a Send indication",
    );
    expect(
        Dir::ToServer,
        Kind::Stun(CHANNEL_BIND_REQUEST),
        "a ChannelBind request",
    );
    expect(
        Dir::ToClient,
        Kind::Stun(CHANNEL_BIND_SUCCESS),
        "a ChannelBind success response",
    );
    expect(
        Dir::ToServer,
        Kind::ChannelData,
        "ChannelData from the client",
    );
    expect(
        Dir::ToClient,
        Kind::ChannelData,
        "ChannelData to the client",
    );
    expect(
        Dir::ToClient,
        Kind::Stun(DATA_INDICATION),
        "a Data indication",
    );
    alloc.close().await;
}

fn assert_unauthorized(result: Result<Allocation, turn::Error>, what: &str) {
    match result {
        Ok(a) => panic!("{what}: Allocate succeeded with relay {}", a.relay_addr),
        Err(e) => assert!(
            e.to_string().contains("401"),
            "{what}: expected a 401 error, got: {e}"
        ),
    }
}

#[tokio::test]
async fn wrong_password_is_rejected() {
    let server = TestServer::start();
    assert_unauthorized(allocate(server.udp, USER, "wrong").await, "wrong password");
    assert_unauthorized(allocate(server.udp, "nobody", PASS).await, "unknown user");
    // The right password still works afterwards (no lockout of the user).
    allocate(server.udp, USER, PASS)
        .await
        .expect("Allocate with the right password")
        .close()
        .await;
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn rest_credentials_allocate_and_relay() {
    let server = TestServer::start_rest();
    let username = format!("{}:alice", unix_now() + 3600);
    let password = tern::proto::auth::rest_password(REST_SECRET.as_bytes(), &username);
    let alloc = allocate(server.udp, &username, &password)
        .await
        .expect("Allocate with REST credentials");
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    relay_send(
        alloc.relay.as_ref(),
        b"rest hello",
        peer.local_addr().unwrap(),
    )
    .await;
    let (got, from) = peer_recv(&peer, "rest hello").await;
    assert_eq!(
        (got.as_slice(), from),
        (&b"rest hello"[..], alloc.relay_addr)
    );
    peer.send_to(b"rest reply", from).await.unwrap();
    let (got, _) = relay_recv(alloc.relay.as_ref(), "rest reply").await;
    assert_eq!(got, b"rest reply");
    alloc.close().await;
}

#[tokio::test]
async fn rest_credentials_rejected_when_expired_or_forged() {
    let server = TestServer::start_rest();
    let expired = format!("{}:alice", unix_now() - 3600);
    let password = tern::proto::auth::rest_password(REST_SECRET.as_bytes(), &expired);
    assert_unauthorized(
        allocate(server.udp, &expired, &password).await,
        "expired REST username",
    );

    let valid = format!("{}:alice", unix_now() + 3600);
    let forged = tern::proto::auth::rest_password(b"not the secret", &valid);
    assert_unauthorized(
        allocate(server.udp, &valid, &forged).await,
        "REST password from another secret",
    );
}
