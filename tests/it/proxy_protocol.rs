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

/// The `tern_quota_rejections_total{kind}` count of a running server.
fn rejections(h: &tern::io::Handle, kind: tern::admin::metrics::QuotaKind) -> u64 {
    use tern::admin::metrics::Label;
    h.metrics().sum(|w| &w.quota_rejections[kind.index()])
}

/// A trusted proxy holds no per-IP slot of its own while its headers are
/// due; the per-IP cap (1 here) applies to the clients the headers name.
/// A is accepted before B (one worker, one accept queue) and sends its
/// header last, so when B is accepted the proxy has a connection without
/// a header: counted against 127.0.0.1, B would be refused.
#[test]
fn a_trusted_proxy_is_exempt_from_the_per_ip_cap_until_its_header_names_the_client() {
    use tern::admin::metrics::QuotaKind;
    let mut s = proxy_settings("127.0.0.1/32");
    s.workers = 1;
    s.tcp.max_connections_per_ip = 1;
    let h = start(s).unwrap();
    let tern = h.tcp_addrs()[0];
    let connect = || {
        let c = TcpStream::connect(tern).unwrap();
        c.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        c
    };
    let (mut a, mut b) = (connect(), connect());
    let client_b: SocketAddr = "203.0.113.7:5555".parse().unwrap();
    b.write_all(&v2_header(client_b, tern)).unwrap();
    assert_eq!(
        binding_over(&mut b),
        client_b,
        "B refused: the proxy's IP was capped"
    );
    let client_a: SocketAddr = "203.0.113.8:6666".parse().unwrap();
    a.write_all(&v2_header(client_a, tern)).unwrap();
    assert_eq!(binding_over(&mut a), client_a);
    // A second connection for B's client is over that client's cap.
    let mut c = connect();
    c.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let second_b: SocketAddr = "203.0.113.7:5556".parse().unwrap();
    c.write_all(&v2_header(second_b, tern)).unwrap();
    c.write_all(&binding_request(random_tid())).unwrap();
    assert!(
        closed_by_server(&mut c),
        "a second connection of 203.0.113.7 was served"
    );
    assert_eq!(rejections(&h, QuotaKind::TcpConnectionsPerIp), 1);
    // Closing gives the client's slot back, not the proxy's: B's client
    // may connect again.
    drop(b);
    let deadline = std::time::Instant::now() + IO_TIMEOUT;
    loop {
        let mut again = connect();
        again.write_all(&v2_header(second_b, tern)).unwrap();
        again
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        again.write_all(&binding_request(random_tid())).unwrap();
        if !closed_by_server(&mut again) {
            break;
        }
        // The server learns of B's close asynchronously: retry, bounded.
        assert!(
            std::time::Instant::now() < deadline,
            "B's slot never came back"
        );
    }
    assert_eq!(binding_over(&mut a), client_a);
    h.shutdown();
}
