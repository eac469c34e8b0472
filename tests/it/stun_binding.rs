//! Binding (RFC 8489 §3) over UDP and TCP with hand-rolled messages decoded
//! here, independently of tern's codec; plus the webrtc-rs client's Binding.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;

use crate::harness::{IO_TIMEOUT, MAGIC_COOKIE, TestServer, binding_request, random_tid};

const BINDING_SUCCESS: u16 = 0x0101;
const XOR_MAPPED_ADDRESS: u16 = 0x0020;

/// Checks the header of a Binding success response to `tid` and returns the
/// decoded XOR-MAPPED-ADDRESS.
fn parse_binding_success(msg: &[u8], tid: [u8; 12]) -> SocketAddr {
    assert!(
        msg.len() >= 20,
        "response shorter than a STUN header: {msg:02x?}"
    );
    let typ = u16::from_be_bytes([msg[0], msg[1]]);
    let len = usize::from(u16::from_be_bytes([msg[2], msg[3]]));
    let cookie = u32::from_be_bytes([msg[4], msg[5], msg[6], msg[7]]);
    assert_eq!(
        typ, BINDING_SUCCESS,
        "message type is not Binding success: {msg:02x?}"
    );
    assert_eq!(cookie, MAGIC_COOKIE, "magic cookie");
    assert_eq!(msg[8..20], tid, "transaction id not echoed");
    assert_eq!(len % 4, 0, "STUN length must be a multiple of 4");
    assert_eq!(
        msg.len(),
        20 + len,
        "STUN length field disagrees with the datagram size"
    );
    let mut attrs = &msg[20..];
    let mut mapped = None;
    while !attrs.is_empty() {
        assert!(attrs.len() >= 4, "truncated attribute header");
        let at = u16::from_be_bytes([attrs[0], attrs[1]]);
        let alen = usize::from(u16::from_be_bytes([attrs[2], attrs[3]]));
        let padded = alen.div_ceil(4) * 4;
        assert!(
            attrs.len() >= 4 + padded,
            "attribute {at:#06x} overruns the message"
        );
        let value = &attrs[4..4 + alen];
        if at == XOR_MAPPED_ADDRESS && mapped.is_none() {
            mapped = Some(decode_xor_address(value, tid));
        }
        attrs = &attrs[4 + padded..];
    }
    mapped.expect("no XOR-MAPPED-ADDRESS in the Binding response")
}

/// RFC 8489 §14.2: port XOR the cookie's top 16 bits, address XOR the
/// cookie (IPv4) or cookie ‖ transaction id (IPv6).
fn decode_xor_address(v: &[u8], tid: [u8; 12]) -> SocketAddr {
    assert!(v.len() >= 4, "XOR-MAPPED-ADDRESS too short");
    let family = v[1];
    let port = u16::from_be_bytes([v[2], v[3]]) ^ (MAGIC_COOKIE >> 16) as u16;
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let ip = match family {
        0x01 => {
            assert_eq!(v.len(), 8, "IPv4 XOR-MAPPED-ADDRESS length");
            let mut a = [0u8; 4];
            for i in 0..4 {
                a[i] = v[4 + i] ^ cookie[i];
            }
            IpAddr::V4(Ipv4Addr::from(a))
        }
        0x02 => {
            assert_eq!(v.len(), 20, "IPv6 XOR-MAPPED-ADDRESS length");
            let key: Vec<u8> = cookie.iter().chain(tid.iter()).copied().collect();
            let mut a = [0u8; 16];
            for i in 0..16 {
                a[i] = v[4 + i] ^ key[i];
            }
            IpAddr::V6(Ipv6Addr::from(a))
        }
        f => panic!("unknown address family {f:#04x}"),
    };
    SocketAddr::new(ip, port)
}

#[test]
fn binding_over_udp_reports_the_client_address() {
    let server = TestServer::start();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    // Two requests from the same socket: each gets its own tid back.
    for _ in 0..2 {
        let tid = random_tid();
        sock.send_to(&binding_request(tid), server.udp).unwrap();
        let mut buf = [0u8; 1500];
        let (n, from) = sock
            .recv_from(&mut buf)
            .expect("no Binding response over UDP");
        assert_eq!(from, server.udp, "response from another address");
        let mapped = parse_binding_success(&buf[..n], tid);
        assert_eq!(mapped, sock.local_addr().unwrap(), "XOR-MAPPED-ADDRESS");
    }
}

/// Reads one STUN message (header + length) from a stream.
fn read_stun(stream: &mut TcpStream) -> Vec<u8> {
    let mut msg = vec![0u8; 20];
    stream
        .read_exact(&mut msg)
        .expect("no STUN header on the TCP stream");
    let len = usize::from(u16::from_be_bytes([msg[2], msg[3]]));
    msg.resize(20 + len, 0);
    stream
        .read_exact(&mut msg[20..])
        .expect("truncated STUN message on the TCP stream");
    msg
}

#[test]
fn binding_over_tcp_reports_the_client_address() {
    let server = TestServer::start();
    let mut stream = TcpStream::connect(server.tcp).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let tid = random_tid();
    stream.write_all(&binding_request(tid)).unwrap();
    let msg = read_stun(&mut stream);
    assert_eq!(
        parse_binding_success(&msg, tid),
        stream.local_addr().unwrap()
    );
}

#[test]
fn binding_over_tcp_deframes_split_and_coalesced_requests() {
    let server = TestServer::start();
    let mut stream = TcpStream::connect(server.tcp).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    let tids = [[1u8; 12], [2u8; 12], [3u8; 12]];
    // Two requests in one write, then one split across two writes.
    let mut both = binding_request(tids[0]).to_vec();
    both.extend_from_slice(&binding_request(tids[1]));
    stream.write_all(&both).unwrap();
    let third = binding_request(tids[2]);
    stream.write_all(&third[..7]).unwrap();
    stream.flush().unwrap();
    // The first two answers arrive before the third request is complete.
    let local = stream.local_addr().unwrap();
    for tid in &tids[..2] {
        assert_eq!(parse_binding_success(&read_stun(&mut stream), *tid), local);
    }
    stream.write_all(&third[7..]).unwrap();
    assert_eq!(
        parse_binding_success(&read_stun(&mut stream), tids[2]),
        local
    );
}

#[tokio::test]
async fn binding_with_webrtc_rs_client() {
    let server = TestServer::start();
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = sock.local_addr().unwrap();
    let client = turn::client::Client::new(turn::client::ClientConfig {
        stun_serv_addr: server.udp.to_string(),
        turn_serv_addr: String::new(),
        username: String::new(),
        password: String::new(),
        realm: String::new(),
        software: String::new(),
        rto_in_ms: 0,
        conn: Arc::new(sock),
        vnet: None,
    })
    .await
    .unwrap();
    client.listen().await.unwrap();
    let mapped = tokio::time::timeout(IO_TIMEOUT, client.send_binding_request())
        .await
        .expect("Binding timed out")
        .expect("Binding failed");
    assert_eq!(mapped, local);
    client.close().await.unwrap();
}
