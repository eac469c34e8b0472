//! STUN over byte streams (TCP, TLS), hand-rolled so the stream tests do
//! not depend on tern's own codec: read one message, find an attribute,
//! Binding and an unauthenticated Allocate, and "did the server close?".

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::harness::{MAGIC_COOKIE, binding_request, random_tid};

/// Reads one STUN message (20-byte header + length) from a stream.
pub(crate) fn read_stun(s: &mut impl Read) -> Vec<u8> {
    let mut m = vec![0u8; 20];
    s.read_exact(&mut m).expect("STUN header");
    let len = usize::from(u16::from_be_bytes([m[2], m[3]]));
    m.resize(20 + len, 0);
    s.read_exact(&mut m[20..]).expect("STUN body");
    m
}

/// Attribute `typ` of a STUN message, if present.
pub(crate) fn attr(msg: &[u8], typ: u16) -> Option<&[u8]> {
    let mut rest = msg.get(20..)?;
    while rest.len() >= 4 {
        let t = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let v = rest.get(4..4 + len)?;
        if t == typ {
            return Some(v);
        }
        rest = rest.get(4 + len.div_ceil(4) * 4..).unwrap_or(&[]);
    }
    None
}

/// XOR-MAPPED-ADDRESS of a Binding success (RFC 8489 §14.2).
pub(crate) fn mapped(msg: &[u8], tid: [u8; 12]) -> SocketAddr {
    assert_eq!(
        &msg[0..2],
        &[0x01, 0x01],
        "not a Binding success: {msg:02x?}"
    );
    assert_eq!(msg[8..20], tid);
    let v = attr(msg, 0x0020).expect("XOR-MAPPED-ADDRESS");
    let port = u16::from_be_bytes([v[2], v[3]]) ^ (MAGIC_COOKIE >> 16) as u16;
    let mut key = MAGIC_COOKIE.to_be_bytes().to_vec();
    key.extend_from_slice(&tid);
    let ip: Vec<u8> = v[4..].iter().zip(&key).map(|(a, k)| a ^ k).collect();
    let ip = match v[1] {
        0x01 => std::net::IpAddr::from(<[u8; 4]>::try_from(&ip[..]).unwrap()),
        0x02 => std::net::IpAddr::from(<[u8; 16]>::try_from(&ip[..]).unwrap()),
        f => panic!("family {f}"),
    };
    SocketAddr::new(ip, port)
}

pub(crate) fn binding_over(s: &mut (impl Read + Write)) -> SocketAddr {
    let tid = random_tid();
    s.write_all(&binding_request(tid)).unwrap();
    s.flush().unwrap();
    mapped(&read_stun(s), tid)
}

/// An Allocate request without credentials: RFC 8656 §7.2 says 401 with
/// REALM and NONCE, which proves TURN framing end to end.
pub(crate) fn allocate_unauthenticated(s: &mut (impl Read + Write)) -> u16 {
    let tid = random_tid();
    let mut m = Vec::new();
    m.extend_from_slice(&0x0003u16.to_be_bytes()); // Allocate request
    m.extend_from_slice(&8u16.to_be_bytes());
    m.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
    m.extend_from_slice(&tid);
    m.extend_from_slice(&[0x00, 0x19, 0x00, 0x04, 17, 0, 0, 0]); // REQUESTED-TRANSPORT UDP
    s.write_all(&m).unwrap();
    s.flush().unwrap();
    let r = read_stun(s);
    assert_eq!(&r[0..2], &[0x01, 0x13], "not an Allocate error: {r:02x?}");
    assert!(
        attr(&r, 0x0014).is_some() && attr(&r, 0x0015).is_some(),
        "REALM and NONCE"
    );
    let e = attr(&r, 0x0009).expect("ERROR-CODE");
    u16::from(e[2]) * 100 + u16::from(e[3])
}

/// True when the server closes `s` (EOF or reset) within a few seconds.
pub(crate) fn closed_by_server(s: &mut impl Read) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 256];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}

/// A connection over `limits.tcp_max_connections_per_ip` is refused and
/// counted by kind: `tern serve` with a per-IP cap of 2, two connections
/// served, the third closed at once, and `/metrics` shows
/// `tern_quota_rejections_total{kind="tcp_connections_per_ip"} 1`.
#[test]
fn per_ip_connection_refusal_is_counted_by_kind() {
    use crate::ops::{Policy, Tern};
    let policy = Policy {
        tcp: true,
        tables: "[limits]\ntcp_max_connections_per_ip = 2\n",
        ..Policy::default()
    };
    let mut tern = Tern::spawn(&policy, None);
    tern.wait_ready();
    let connect = || {
        let s = std::net::TcpStream::connect(tern.server).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        s
    };
    let mut held = [connect(), connect()];
    for s in &mut held {
        binding_over(s); // both served: the cap is not reached yet
    }
    let mut third = connect();
    assert!(closed_by_server(&mut third), "third connection served");
    let sample = "tern_quota_rejections_total{kind=\"tcp_connections_per_ip\"}";
    assert_eq!(tern.metric(sample), Some(1.0));
    assert_eq!(
        tern.metric("tern_quota_rejections_total{kind=\"tcp_connections\"}"),
        Some(0.0)
    );
    binding_over(&mut held[0]); // the others are untouched
}
