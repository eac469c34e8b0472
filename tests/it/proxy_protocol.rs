//! PROXY protocol v1/v2 in front of TCP and TLS listeners: the reported
//! client address is the one tern serves, only trusted sources may send a
//! header, and a trusted source that sends none is closed.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use tern::settings::SettingsBuilder;

use crate::harness::{self, IO_TIMEOUT, binding_request, random_tid};
use crate::stream::{allocate_unauthenticated, binding_over, closed_by_server};
use crate::tls::{CertFiles, start, tls_over, tls_settings};

const REPORTED: &str = "203.0.113.7:5555";

fn v2_header(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let (SocketAddr::V4(s), SocketAddr::V4(d)) = (src, dst) else {
        panic!("v4 only here")
    };
    let mut h = tern::proto::proxy_protocol::V2_SIGNATURE.to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0x00, 12]);
    h.extend_from_slice(&s.ip().octets());
    h.extend_from_slice(&d.ip().octets());
    h.extend_from_slice(&s.port().to_be_bytes());
    h.extend_from_slice(&d.port().to_be_bytes());
    h
}

/// A one-connection TCP proxy: accepts, connects to `upstream`, writes
/// `header`, then pipes both ways until either side closes.
fn proxy(upstream: SocketAddr, header: Vec<u8>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        let (down, _) = l.accept().unwrap();
        let mut up = TcpStream::connect(upstream).unwrap();
        up.write_all(&header).unwrap();
        let pipe = |mut from: TcpStream, mut to: TcpStream| {
            thread::spawn(move || {
                let _ = std::io::copy(&mut from, &mut to);
                let _ = to.shutdown(std::net::Shutdown::Write);
            })
        };
        let a = pipe(down.try_clone().unwrap(), up.try_clone().unwrap());
        let b = pipe(up, down);
        let _ = (a.join(), b.join());
    });
    addr
}

fn proxy_settings(trusted: &str) -> SettingsBuilder {
    let mut s = harness::settings();
    s.proxy_protocol.listen = s.tcp_listen.clone();
    s.proxy_protocol.trusted = vec![trusted.parse().unwrap()];
    s
}

#[test]
fn proxy_v1_and_v2_report_the_client_address() {
    let h = start(proxy_settings("127.0.0.1/32")).unwrap();
    let tern = h.tcp_addrs()[0];
    let reported: SocketAddr = REPORTED.parse().unwrap();

    let v2 = proxy(tern, v2_header(reported, tern));
    let mut c = TcpStream::connect(v2).unwrap();
    c.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    assert_eq!(binding_over(&mut c), reported);
    assert_eq!(allocate_unauthenticated(&mut c), 401);

    // v1, a second client at the same time (a different reported address).
    let v1 = proxy(
        tern,
        b"PROXY TCP4 203.0.113.8 127.0.0.1 6666 3478\r\n".to_vec(),
    );
    let mut c1 = TcpStream::connect(v1).unwrap();
    c1.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    assert_eq!(binding_over(&mut c1), "203.0.113.8:6666".parse().unwrap());
    assert_eq!(binding_over(&mut c), reported);

    // A trusted source that sends no header within the timeout is closed:
    // covered by the handshake timeout; one that sends garbage is closed now.
    let mut bad = TcpStream::connect(tern).unwrap();
    bad.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    bad.write_all(&binding_request(random_tid())).unwrap();
    assert!(
        closed_by_server(&mut bad),
        "no header from a trusted source"
    );
    h.shutdown();
}

#[test]
fn proxy_header_before_tls() {
    let files = CertFiles::new();
    let mut s = tls_settings(&files);
    s.proxy_protocol.listen = s.tls.as_ref().unwrap().listen.clone();
    s.proxy_protocol.trusted = vec!["127.0.0.0/8".parse().unwrap()];
    let h = start(s).unwrap();
    let reported: SocketAddr = REPORTED.parse().unwrap();
    let mut tcp = TcpStream::connect(h.tls_addrs()[0]).unwrap();
    tcp.write_all(&v2_header(reported, h.tls_addrs()[0]))
        .unwrap();
    let mut c = tls_over(tcp, &[b"stun.turn"], &rustls::version::TLS13);
    assert_eq!(binding_over(&mut c), reported);
    h.shutdown();
}

#[test]
fn untrusted_source_sending_a_proxy_header_is_closed() {
    // Loopback is not trusted here.
    let h = start(proxy_settings("192.0.2.0/24")).unwrap();
    let tern = h.tcp_addrs()[0];
    for header in [
        b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 3478\r\n".to_vec(),
        v2_header(REPORTED.parse().unwrap(), tern),
    ] {
        let mut c = TcpStream::connect(tern).unwrap();
        c.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        c.write_all(&header).unwrap();
        c.write_all(&binding_request(random_tid())).unwrap();
        assert!(
            closed_by_server(&mut c),
            "header from an untrusted source accepted"
        );
    }
    // A direct client from an untrusted source is served as itself.
    let mut c = TcpStream::connect(tern).unwrap();
    c.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    assert_eq!(binding_over(&mut c), c.local_addr().unwrap());
    h.shutdown();
}
