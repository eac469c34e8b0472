//! TCP allocations (RFC 6062) end to end: a raw STUN-over-TCP client built
//! on tern's codec allocates a TCP relay, Connects to a TCP echo peer on
//! 127.0.0.1, binds a second connection and exchanges raw bytes; a peer
//! connecting to the relayed address is announced with ConnectionAttempt;
//! a denied peer gets 403. Then coturn's `turnutils_uclient -T`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;

use tern::proto::auth::LongTermKey;
use tern::proto::stun::{
    AttrType, Class, Message, MessageType, MessageWriter, Method, TransactionId, decode_error_code,
    decode_u32, decode_xor_addr,
};

use crate::harness::{
    IO_TIMEOUT, PASS, REALM, TestServer, USER, is_coturn, settings, settings_default_policy,
};

/// A STUN client on one TCP connection, long-term credentials.
struct StunTcp {
    s: TcpStream,
    nonce: Option<Vec<u8>>,
    tid: u32,
}

/// A response, owned.
struct Resp(Vec<u8>);

impl Resp {
    fn msg(&self) -> Message<'_> {
        Message::parse(&self.0).expect("response parses")
    }

    fn code(&self) -> Option<u16> {
        let m = self.msg();
        (m.class() == Class::Error).then(|| {
            decode_error_code(m.get(AttrType::ERROR_CODE).unwrap())
                .unwrap()
                .0
        })
    }

    fn xor(&self, t: AttrType) -> SocketAddr {
        let m = self.msg();
        decode_xor_addr(m.get(t).expect("address attribute"), &m.transaction_id()).unwrap()
    }

    fn connection_id(&self) -> u32 {
        decode_u32(
            self.msg()
                .get(AttrType::CONNECTION_ID)
                .expect("CONNECTION-ID"),
        )
        .unwrap()
    }
}

impl StunTcp {
    fn connect(server: SocketAddr) -> Self {
        let s = TcpStream::connect_timeout(&server, IO_TIMEOUT).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        Self {
            s,
            nonce: None,
            tid: 0,
        }
    }

    fn read_msg(&mut self) -> Resp {
        let mut buf = vec![0u8; 20];
        self.s.read_exact(&mut buf).expect("STUN header");
        let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
        buf.resize(20 + len, 0);
        self.s.read_exact(&mut buf[20..]).expect("STUN body");
        Resp(buf)
    }

    /// An authenticated request (one 401 round trip for the nonce).
    fn request(&mut self, method: Method, attrs: impl Fn(&mut MessageWriter<'_>)) -> Resp {
        for _ in 0..2 {
            self.tid += 1;
            let mut t = [7u8; 12];
            t[..4].copy_from_slice(&self.tid.to_be_bytes());
            let mut out = Vec::new();
            let mut w = MessageWriter::new(
                &mut out,
                MessageType::new(method, Class::Request),
                TransactionId(t),
            );
            attrs(&mut w);
            if let Some(n) = &self.nonce {
                w.push(AttrType::USERNAME, USER.as_bytes());
                w.push(AttrType::REALM, REALM.as_bytes());
                w.push(AttrType::NONCE, n);
                w.push_integrity(&LongTermKey::derive(USER, REALM, PASS).0);
            }
            w.push_fingerprint();
            self.s.write_all(&out).unwrap();
            let r = self.read_msg();
            if matches!(r.code(), Some(401 | 438)) {
                self.nonce = Some(r.msg().get(AttrType::NONCE).unwrap().to_vec());
                continue;
            }
            return r;
        }
        panic!("{method:?}: still 401 with a fresh nonce");
    }

    fn allocate_tcp(&mut self) -> SocketAddr {
        let r = self.request(Method::ALLOCATE, |w| {
            w.push(AttrType::REQUESTED_TRANSPORT, &[6, 0, 0, 0]);
        });
        assert_eq!(r.code(), None, "TCP Allocate failed");
        r.xor(AttrType::XOR_RELAYED_ADDRESS)
    }

    fn connect_peer(&mut self, peer: SocketAddr) -> Result<u32, u16> {
        let r = self.request(Method::CONNECT, |w| {
            w.push_xor_addr(AttrType::XOR_PEER_ADDRESS, peer);
        });
        match r.code() {
            None => Ok(r.connection_id()),
            Some(c) => Err(c),
        }
    }

    /// ConnectionBind on this (new) connection; after success it is raw.
    fn bind(&mut self, id: u32) -> Result<(), u16> {
        let r = self.request(Method::CONNECTION_BIND, |w| {
            w.push_u32(AttrType::CONNECTION_ID, id);
        });
        r.code().map_or(Ok(()), Err)
    }
}

/// A TCP echo peer on 127.0.0.1: echoes every connection until it closes.
fn echo_peer() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            thread::spawn(move || {
                let mut r = s.try_clone().unwrap();
                let _ = std::io::copy(&mut r, &mut s);
            });
        }
    });
    addr
}

/// Writes `n` patterned bytes while reading the echo back; checks them.
fn echo_round_trip(data: &mut TcpStream, n: usize) {
    data.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let payload: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
    let mut w = data.try_clone().unwrap();
    let p = payload.clone();
    let writer = thread::spawn(move || w.write_all(&p).unwrap());
    let mut back = vec![0u8; n];
    data.read_exact(&mut back).expect("echoed bytes");
    writer.join().unwrap();
    assert!(back == payload, "echo differs");
}

#[test]
fn connect_bind_and_relay_raw_bytes_both_ways() {
    if is_coturn() {
        return; // coturn's TCP relay needs its own flags; this checks tern.
    }
    let server = TestServer::start();
    let peer = echo_peer();
    let mut control = StunTcp::connect(server.tcp);
    let relay = control.allocate_tcp();
    assert!(server.relay_ports.contains(&relay.port()));
    let id = control.connect_peer(peer).expect("Connect");
    assert_eq!(
        control.connect_peer(peer),
        Err(446),
        "one connection per peer"
    );
    // Several data connections: SO_REUSEPORT spreads them over the workers,
    // so binds also cross workers.
    let mut data = StunTcp::connect(server.tcp);
    data.bind(id).expect("ConnectionBind");
    assert_eq!(
        StunTcp::connect(server.tcp).bind(id),
        Err(400),
        "an id binds once"
    );
    // 1 MiB: far past every queue, so backpressure is exercised.
    echo_round_trip(&mut data.s, 1 << 20);
    // Closing the data connection closes the peer's: the pair no longer
    // counts, so Connect to that peer stops being 446. (It may be 447: the
    // same 4-tuple can sit in TIME_WAIT.) The server learns of the close
    // asynchronously: poll, bounded.
    drop(data);
    let deadline = std::time::Instant::now() + IO_TIMEOUT;
    loop {
        match control.connect_peer(peer) {
            Err(446) if std::time::Instant::now() < deadline => {
                thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(446) => panic!("the closed pair still counts"),
            Ok(_) | Err(447) => break,
            Err(other) => panic!("Connect after close: {other}"),
        }
    }
    let id2 = control
        .connect_peer(echo_peer())
        .expect("Connect to another peer");
    for _ in 0..4 {
        // Unknown ids are 400 wherever they land.
        assert_eq!(StunTcp::connect(server.tcp).bind(id2 ^ 0x5555), Err(400));
    }
    let mut data = StunTcp::connect(server.tcp);
    data.bind(id2).expect("second ConnectionBind");
    echo_round_trip(&mut data.s, 4096);
    // The allocation ends with its control connection: the data connection closes.
    drop(control);
    let mut b = [0u8; 1];
    assert_eq!(data.s.read(&mut b).ok(), Some(0), "data connection closed");
}

#[test]
fn peer_initiated_connection_is_announced_and_bound() {
    if is_coturn() {
        return;
    }
    let server = TestServer::start();
    let mut control = StunTcp::connect(server.tcp);
    let relay = control.allocate_tcp();
    // Without a permission the relay closes the peer's connection.
    let mut refused = TcpStream::connect_timeout(&relay, IO_TIMEOUT).unwrap();
    refused.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut b = [0u8; 1];
    assert!(
        matches!(refused.read(&mut b), Ok(0) | Err(_)),
        "refused peer closed"
    );
    let r = control.request(Method::CREATE_PERMISSION, |w| {
        w.push_xor_addr(AttrType::XOR_PEER_ADDRESS, "127.0.0.1:1".parse().unwrap());
    });
    assert_eq!(r.code(), None);
    let mut peer = TcpStream::connect_timeout(&relay, IO_TIMEOUT).unwrap();
    peer.write_all(b"sent before the bind").unwrap();
    let ind = control.read_msg();
    assert_eq!(
        ind.msg().message_type(),
        MessageType::new(Method::CONNECTION_ATTEMPT, Class::Indication)
    );
    assert_eq!(
        ind.xor(AttrType::XOR_PEER_ADDRESS),
        peer.local_addr().unwrap()
    );
    let mut data = StunTcp::connect(server.tcp);
    data.bind(ind.connection_id()).expect("ConnectionBind");
    let mut got = vec![0u8; 20];
    data.s.read_exact(&mut got).unwrap();
    assert_eq!(
        got, b"sent before the bind",
        "peer bytes buffered until the bind"
    );
    data.s.write_all(b"to the peer").unwrap();
    peer.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut got = vec![0u8; 11];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(got, b"to the peer");
    // The peer closing closes the data connection.
    drop(peer);
    assert_eq!(data.s.read(&mut b).ok(), Some(0));
}

#[test]
fn tcp_allocation_rules() {
    if is_coturn() {
        return;
    }
    let server = TestServer::with(settings_default_policy());
    let peer = echo_peer();
    let mut control = StunTcp::connect(server.tcp);
    control.allocate_tcp();
    // The default policy denies loopback peers: 403, nothing connected.
    assert_eq!(control.connect_peer(peer), Err(403));
    // 447 when the peer refuses (a port nobody listens on).
    let server = TestServer::with(settings());
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut control = StunTcp::connect(server.tcp);
    control.allocate_tcp();
    assert_eq!(control.connect_peer(closed), Err(447));
}

/// coturn's `turnutils_uclient -T`: TCP to the server and TCP relays
/// (`-T` implies `-t`, `-y` client-to-client and `-c`): each session pair
/// allocates two TCP relays, one Connects to the other's relayed address,
/// the other gets a ConnectionAttempt, both ConnectionBind, and messages
/// flow relay to relay. Zero loss is required.
#[test]
fn uclient_tcp_relay() {
    let Some(tool) = crate::harness::require_tool("turnutils_uclient") else {
        return;
    };
    let server = TestServer::start();
    let (sessions, messages) = (4u64, 50u64);
    let out = crate::harness::run_tool(
        std::process::Command::new(tool)
            .args(["-T", "-u", USER, "-w", PASS])
            .args(["-p", &server.tcp.port().to_string()])
            .args(["-m", &sessions.to_string(), "-n", &messages.to_string()])
            .arg("127.0.0.1"),
        std::time::Duration::from_secs(60),
    );
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(out.success(), "turnutils_uclient -T failed\n{out}");
    let after = |line: &str, key: &str| -> Option<u64> {
        let rest = &line[line.find(key)? + key.len()..];
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    let summary = text
        .lines()
        .rfind(|l| l.contains("tot_send_msgs=") && !l.contains("msz="))
        .unwrap_or_else(|| panic!("no totals in the uclient output\n{out}"));
    let lost = text
        .lines()
        .rfind(|l| l.contains("Total lost packets"))
        .and_then(|l| after(l, "Total lost packets "));
    let sent = after(summary, "tot_send_msgs=");
    let received = after(summary, "tot_recv_msgs=");
    assert_eq!(
        sent,
        Some(sessions * messages),
        "uclient did not send all\n{out}"
    );
    assert_eq!(sent, received, "not every message arrived\n{out}");
    assert_eq!(lost, Some(0), "uclient reports loss\n{out}");
}

/// Spliced bytes count in `tern_relay_bytes_total`, as UDP payloads do:
/// `tern serve` with TCP, one Connect to an echo peer, 100 KiB each way,
/// then `/metrics` shows exactly those bytes in both directions.
#[test]
fn spliced_bytes_are_counted_in_the_relay_byte_metrics() {
    use crate::ops::{Policy, Tern};
    if is_coturn() {
        return;
    }
    let policy = Policy {
        users: vec![(USER, PASS)],
        tcp: true,
        ..Policy::default()
    };
    let mut tern = Tern::spawn(&policy, None);
    tern.wait_ready();
    let peer = echo_peer();
    let mut control = StunTcp::connect(tern.server);
    control.allocate_tcp();
    let id = control.connect_peer(peer).expect("Connect");
    let mut data = StunTcp::connect(tern.server);
    data.bind(id).expect("ConnectionBind");
    const N: usize = 100 * 1024;
    echo_round_trip(&mut data.s, N);
    for direction in ["client_to_peer", "peer_to_client"] {
        let sample = format!("tern_relay_bytes_total{{direction=\"{direction}\"}}");
        let v = tern.wait_metric(&sample, |v| v >= N as f64);
        assert_eq!(v, N as f64, "{sample}: the STUN frames are not payload");
    }
}
