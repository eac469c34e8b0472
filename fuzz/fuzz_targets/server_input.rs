//! Arbitrary client frames and peer datagrams into a TURN server that has a
//! live allocation with a permission and a channel. Each input is split at
//! 0xFF 0xFF markers; even pieces go in as client datagrams, odd pieces as
//! peer datagrams. The server must never panic and keep its invariants.
//! An odd first byte makes it a TCP client with a TCP allocation (RFC
//! 6062): then every fourth piece comes from a second connection of the
//! client (a would-be data connection for ConnectionBind), odd pieces also
//! connect a peer to the relay, and Connects succeed or fail by length.
#![no_main]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use tern::proto::auth::{Credentials, LongTermKey};
use tern::proto::config::{Config, NatDiscovery};
use tern::proto::stun::{AttrType, Class, MessageType, MessageWriter, Method, TransactionId};
use tern::proto::time::Now;
use tern::proto::turn::{
    Command, ConnectFailed, FiveTuple, HEADROOM, PeerAction, RelayBound, Server, TAILROOM, Transport,
};

fn request(server: &Server, now: Now, five: &FiveTuple, method: Method, tid: u8, f: impl Fn(&mut MessageWriter<'_>)) -> Vec<u8> {
    let nonce = server.config().credentials.nonce_key().make(now.unix_secs, five.client.ip());
    let mut out = Vec::new();
    let mut w = MessageWriter::new(&mut out, MessageType::new(method, Class::Request), TransactionId([tid; 12]));
    f(&mut w);
    w.push(AttrType::USERNAME, b"u");
    w.push(AttrType::REALM, b"r");
    w.push(AttrType::NONCE, &nonce);
    w.push_integrity(&LongTermKey::derive("u", "r", "p").0);
    out
}

fuzz_target!(|data: &[u8]| {
    let mut creds = Credentials::new([1; 32]);
    creds.add_user_password("u", "r", "p");
    let mut config = Config::new("r", creds);
    // RFC 5780 discovery on the client's server address (CHANGE-REQUEST, RESPONSE-PORT, PADDING).
    config.nat_discovery = Some(NatDiscovery {
        primary: "192.0.2.2:3478".parse().unwrap(),
        alternate: "192.0.2.3:3479".parse().unwrap(),
        public_primary: "192.0.2.2".parse().unwrap(),
        public_alternate: "192.0.2.3".parse().unwrap(),
    });
    let mut server = Server::new(Arc::new(config), [1; 32]);
    let t0 = Instant::now();
    let mut now = Now { mono: t0, unix_secs: 1_700_000_000 };
    let five = FiveTuple {
        client: "192.0.2.1:1000".parse().unwrap(),
        server: "192.0.2.2:3478".parse().unwrap(),
        transport: if data.first().is_some_and(|b| b & 1 == 1) { Transport::Tcp } else { Transport::Udp },
    };
    let peer: SocketAddr = "8.8.8.8:1".parse().unwrap();
    let tcp = five.transport == Transport::Tcp;
    let data_conn = FiveTuple { client: "192.0.2.1:1001".parse().unwrap(), ..five };
    let alloc = request(&server, now, &five, Method::ALLOCATE, 1, |w| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[if tcp { 6 } else { 17 }, 0, 0, 0]);
    });
    server.handle_client(now, five, &alloc);
    let relay = match server.poll_command() {
        Some(Command::BindRelay { relay, .. } | Command::ListenTcpRelay { relay, .. }) => relay,
        _ => panic!("no bind"),
    };
    server.handle_relay_bound(now, relay, Ok(RelayBound { addr: "192.0.2.2:50000".parse().unwrap(), additional: None, reservation: None }));
    let bind = request(&server, now, &five, Method::CHANNEL_BIND, 2, |w| {
        w.push(AttrType::CHANNEL_NUMBER, &[0x40, 0, 0, 0]);
        w.push_xor_addr(AttrType::XOR_PEER_ADDRESS, peer);
    });
    server.handle_client(now, five, &bind);
    assert_eq!(server.allocation_count(), 1);

    let mut buf = vec![0u8; HEADROOM + 65_536 + TAILROOM];
    for (i, piece) in data.split(|b| *b == 0xFF).enumerate() {
        if i % 2 == 0 {
            let from = if tcp && i % 4 == 2 { data_conn } else { five };
            let _ = server.handle_client(now, from, piece);
        } else {
            if tcp {
                let _ = server.handle_peer_incoming(now, relay, peer);
            }
            let n = piece.len().min(65_535);
            buf[HEADROOM..HEADROOM + n].copy_from_slice(&piece[..n]);
            if let PeerAction::Forward { bytes, .. } =
                server.handle_peer(now, relay, peer, &mut buf, HEADROOM..HEADROOM + n)
            {
                assert!(bytes.end <= buf.len());
            }
        }
        if piece.len() % 7 == 0 {
            now.mono += Duration::from_secs(61);
            now.unix_secs += 61;
            server.handle_timeout(now);
        }
        while server.poll_transmit().is_some() {}
        while let Some(cmd) = server.poll_command() {
            if let Command::ConnectPeer { id, .. } = cmd {
                let result = if piece.len() % 2 == 0 { Ok(()) } else { Err(ConnectFailed) };
                server.handle_peer_connected(now, id, result);
            }
        }
        while server.poll_event().is_some() {}
    }
    assert!(server.allocation_count() <= 1);
});
