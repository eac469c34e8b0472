//! The sans-IO core without sockets: `Server::handle_client` on ChannelData
//! (client → peer) and `Server::handle_peer` (peer → client, header written
//! in place), plus authenticated Allocate+ChannelBind in virtual time, as
//! the tests in src/proto/turn/tests drive it.
//!
//! `cargo bench --bench core`

#![allow(
    clippy::disallowed_methods,
    reason = "benchmarks measure wall time and wait for servers; the clock wall is for the server code"
)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use tern::proto::auth::{Credentials, LongTermKey};
use tern::proto::channel_data::{ChannelNumber, write_header};
use tern::proto::config::Config;
use tern::proto::peer_policy::PeerPolicy;
use tern::proto::stun::{
    AttrType, Class, Message, MessageType, MessageWriter, Method, TransactionId, decode_xor_addr,
};
use tern::proto::time::Now;
use tern::proto::turn::{
    ClientAction, Command, FiveTuple, HEADROOM, PeerAction, RelayBound, RelayId, Server, TAILROOM,
    Transport,
};

const REALM: &str = "tern";
const USER: &str = "alice";
const PASS: &str = "secret";

struct Bench {
    server: Server,
    now: Now,
    key: LongTermKey,
    tid: u32,
    port: u16,
}

impl Bench {
    fn new() -> Self {
        let mut creds = Credentials::new([9; 32]);
        creds.add_user_password(USER, REALM, PASS);
        let mut config = Config::new(REALM, creds);
        config.peer_policy = PeerPolicy::default();
        config.limits.max_allocations = u32::MAX;
        config.limits.max_allocations_per_user = u32::MAX;
        Self {
            server: Server::new(Arc::new(config), [7; 32]),
            now: Now {
                mono: Instant::now(),
                unix_secs: 1_700_000_000,
            },
            key: LongTermKey::derive(USER, REALM, PASS),
            tid: 0,
            port: 0,
        }
    }

    fn request(
        &mut self,
        from: FiveTuple,
        method: Method,
        f: impl FnOnce(&mut MessageWriter<'_>),
    ) -> Vec<u8> {
        self.tid = self.tid.wrapping_add(1);
        let mut t = [0u8; 12];
        t[..4].copy_from_slice(&self.tid.to_be_bytes());
        let nonce = self
            .server
            .config()
            .credentials
            .nonce_key()
            .make(self.now.unix_secs, from.client.ip());
        let mut out = Vec::new();
        let mut w = MessageWriter::new(
            &mut out,
            MessageType::new(method, Class::Request),
            TransactionId(t),
        );
        f(&mut w);
        w.push(AttrType::USERNAME, USER.as_bytes())
            .push(AttrType::REALM, REALM.as_bytes())
            .push(AttrType::NONCE, &nonce)
            .push_integrity(&self.key.0);
        out
    }

    /// Feeds a request, binds relays like a driver, returns the one reply.
    fn exchange(&mut self, from: FiveTuple, req: &[u8]) -> Vec<u8> {
        let action = self.server.handle_client(self.now, from, req);
        assert_eq!(action, ClientAction::Handled);
        while let Some(cmd) = self.server.poll_command() {
            if let Command::BindRelay { relay, .. } = cmd {
                self.port = self.port.wrapping_add(1).max(1);
                let addr = SocketAddr::from(([203, 0, 113, 1], self.port));
                self.server.handle_relay_bound(
                    self.now,
                    relay,
                    Ok(RelayBound {
                        addr,
                        reservation: None,
                        additional: None,
                    }),
                );
            }
        }
        while self.server.poll_event().is_some() {}
        let t = self.server.poll_transmit().expect("a reply");
        while self.server.poll_transmit().is_some() {}
        t.data
    }

    /// Allocate + ChannelBind(0x4000 → peer); returns the relay address.
    fn allocate_with_channel(&mut self, from: FiveTuple, peer: SocketAddr) -> SocketAddr {
        let req = self.request(from, Method::ALLOCATE, |w| {
            w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        });
        let resp = self.exchange(from, &req);
        let m = Message::parse(&resp).unwrap();
        assert_eq!(m.class(), Class::Success, "Allocate failed");
        let relay = decode_xor_addr(
            m.get(AttrType::XOR_RELAYED_ADDRESS).unwrap(),
            &m.transaction_id(),
        )
        .unwrap();
        let req = self.request(from, Method::CHANNEL_BIND, |w| {
            w.push_u32(AttrType::CHANNEL_NUMBER, 0x4000 << 16);
            w.push_xor_addr(AttrType::XOR_PEER_ADDRESS, peer);
        });
        let resp = self.exchange(from, &req);
        assert_eq!(
            Message::parse(&resp).unwrap().class(),
            Class::Success,
            "ChannelBind failed"
        );
        relay
    }
}

/// A distinct client 5-tuple for each `n` (address from the high bits, port from the low).
fn client(n: u32) -> FiveTuple {
    let [a, b, p0, p1] = n.to_be_bytes();
    FiveTuple {
        client: SocketAddr::from(([10, a, b, 1], u16::from_be_bytes([p0, p1]))),
        server: "203.0.113.1:3478".parse().unwrap(),
        transport: Transport::Udp,
    }
}

fn bench(c: &mut Criterion) {
    let peer: SocketAddr = "192.0.2.9:5000".parse().unwrap();
    let mut b = Bench::new();
    let from = client(40_000);
    b.allocate_with_channel(from, peer);

    for size in [100usize, 1200] {
        let ch = ChannelNumber::new(0x4000).unwrap();
        let mut cd = write_header(ch, size as u16).to_vec();
        cd.resize(4 + size, 0xA5);
        c.bench_function(&format!("handle_client/channel_data_{size}B"), |bn| {
            bn.iter(
                || match b.server.handle_client(b.now, from, black_box(&cd)) {
                    ClientAction::RelayToPeer { payload, .. } => payload.len(),
                    other => panic!("not relayed: {other:?}"),
                },
            )
        });
    }

    // The relay id of the allocation: the first slot the server handed out.
    let relay = RelayId {
        slot: 0,
        generation: 0,
    };
    let relay = match b.server.handle_peer(
        b.now,
        relay,
        peer,
        &mut [0u8; HEADROOM + 8 + TAILROOM],
        HEADROOM..HEADROOM + 8,
    ) {
        PeerAction::Forward { .. } => relay,
        PeerAction::Dropped(_) => RelayId {
            slot: 0,
            generation: 1,
        },
    };
    for size in [100usize, 1200] {
        let mut buf = vec![0xA5u8; HEADROOM + size + TAILROOM];
        c.bench_function(&format!("handle_peer/channel_{size}B"), |bn| {
            bn.iter(|| {
                match b.server.handle_peer(
                    b.now,
                    relay,
                    peer,
                    black_box(&mut buf),
                    HEADROOM..HEADROOM + size,
                ) {
                    PeerAction::Forward { bytes, .. } => bytes.len(),
                    PeerAction::Dropped(r) => panic!("dropped: {r:?}"),
                }
            })
        });
    }

    // Allocate + ChannelBind with long-term auth (MD5 key precomputed by the
    // server; HMAC-SHA1 check on each request), a new 5-tuple each time.
    let mut fresh = Bench::new();
    let mut n = 1_000_000u32;
    c.bench_function("allocate+channel_bind/authenticated", |bn| {
        bn.iter(|| {
            n += 1;
            fresh.allocate_with_channel(client(n), peer)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
