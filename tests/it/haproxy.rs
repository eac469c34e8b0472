//! A real load balancer: HAProxy in TCP mode with `send-proxy-v2` and
//! `balance source` in front of two tern nodes, TURN over TCP and TLS
//! through it (issue 12 part 3).
//!
//! Clients connect from their own loopback addresses (127.0.0.2, .3, …);
//! HAProxy connects to tern from 127.0.0.1, the only address tern trusts to
//! send a PROXY header. So an address tern reports or counts is either the
//! real client's (PROXY header honoured) or 127.0.0.1 (the balancer).
//!
//! HAProxy missing: a failure with `TERN_REQUIRE_INTEROP=1`, a loud skip
//! otherwise (Debian package `haproxy`).

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::ops::RangeInclusive;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};
use tern::settings::TlsSettings;
use tern::tools::client::Client;

use crate::harness::{ChildGuard, IO_TIMEOUT, PASS, USER, settings};

/// tern's per-IP TCP connection limit in these tests.
const PER_IP: usize = 2;

/// A TLS CA and a `localhost` leaf it signed, as PEM files.
struct Pki {
    dir: tempfile::TempDir,
    ca: rustls::pki_types::CertificateDer<'static>,
}

impl Pki {
    fn new() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &ca, &ca_key)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cert.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), leaf_key.serialize_pem()).unwrap();
        Self {
            dir,
            ca: ca.der().clone(),
        }
    }

    fn tls_settings(&self) -> TlsSettings {
        TlsSettings {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            cert: self.dir.path().join("cert.pem"),
            key: self.dir.path().join("key.pem"),
        }
    }

    /// A TLS client over `tcp` that verifies the node against the CA.
    fn connect(&self, tcp: TcpStream) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = vec![b"stun.turn".to_vec()];
        let name = "localhost".try_into().unwrap();
        let conn = rustls::ClientConnection::new(Arc::new(cfg), name).unwrap();
        let mut s = rustls::StreamOwned::new(conn, tcp);
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock).expect("TLS handshake");
        }
        s
    }
}

/// One tern node: TCP and TLS listeners that expect PROXY headers from 127.0.0.1.
struct Node {
    handle: Option<tern::io::Handle>,
    relay_ports: RangeInclusive<u16>,
}

impl Node {
    fn start(pki: &Pki, per_ip: usize) -> Self {
        let mut s = settings();
        s.tcp.max_connections_per_ip = per_ip;
        s.tls = Some(pki.tls_settings());
        // Both listeners are configured as "127.0.0.1:0"; one entry covers both.
        s.proxy_protocol.listen = s.tcp_listen.clone();
        s.proxy_protocol.trusted = vec!["127.0.0.1/32".parse().unwrap()];
        let relay_ports = s.relay_ports.clone();
        let handle = thread::spawn(move || tern::io::start(s.build()))
            .join()
            .expect("tern::io::start panicked")
            .expect("tern::io::start failed");
        Self {
            handle: Some(handle),
            relay_ports,
        }
    }

    fn handle(&self) -> &tern::io::Handle {
        // invariant: only taken in drop.
        self.handle.as_ref().expect("node running")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            let _ = thread::spawn(move || h.shutdown()).join();
        }
    }
}

/// HAProxy with a generated config: one TCP and one TLS-passthrough frontend.
struct Haproxy {
    _child: ChildGuard,
    _dir: tempfile::TempDir,
    tcp: SocketAddr,
    tls: SocketAddr,
}

/// Two frontend addresses on an IP of this HAProxy's own (127.0.2.N), on
/// ports that were free a moment ago: tests running in parallel never pick
/// the same frontend.
fn free_addrs() -> (SocketAddr, SocketAddr) {
    static NEXT: AtomicU8 = AtomicU8::new(1);
    let ip = Ipv4Addr::new(127, 0, 2, NEXT.fetch_add(1, Ordering::Relaxed));
    let a = TcpListener::bind((ip, 0)).unwrap();
    let b = TcpListener::bind((ip, 0)).unwrap();
    (a.local_addr().unwrap(), b.local_addr().unwrap())
}

impl Haproxy {
    fn start(bin: &std::path::Path, nodes: &[Node]) -> Self {
        let (tcp, tls) = free_addrs();
        let backend = |name: &str, addr: fn(&tern::io::Handle) -> SocketAddr| {
            let mut b = format!("backend {name}\n    balance source\n    hash-type consistent\n");
            for (i, n) in nodes.iter().enumerate() {
                b += &format!("    server n{i} {} send-proxy-v2\n", addr(n.handle()));
            }
            b
        };
        let cfg = format!(
            "global\n    maxconn 256\n\
             defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 60s\n    timeout server 60s\n\
             frontend turn_tcp\n    bind {tcp}\n    default_backend nodes_tcp\n\
             frontend turn_tls\n    bind {tls}\n    default_backend nodes_tls\n{}{}",
            backend("nodes_tcp", |h| h.tcp_addrs()[0]),
            backend("nodes_tls", |h| h.tls_addrs()[0]),
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("haproxy.cfg");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(cfg.as_bytes())
            .unwrap();
        let check = Command::new(bin)
            .arg("-c")
            .arg("-f")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "haproxy -c rejected the config:\n{cfg}\n{}",
            String::from_utf8_lossy(&check.stderr)
        );
        let child = ChildGuard::spawn(
            Command::new(bin)
                .arg("-db")
                .arg("-f")
                .arg(&path)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            "haproxy",
        );
        // Readiness: both frontends accept connections.
        let deadline = Instant::now() + Duration::from_secs(10);
        for a in [tcp, tls] {
            while TcpStream::connect(a).is_err() {
                assert!(Instant::now() < deadline, "haproxy did not listen on {a}");
                thread::sleep(Duration::from_millis(20));
            }
        }
        Self {
            _child: child,
            _dir: dir,
            tcp,
            tls,
        }
    }
}

/// A TCP connection from `src` (a loopback address of the test's choosing).
fn connect_from(src: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::new(IpAddr::V4(src), 0).into()).unwrap();
    s.connect_timeout(&to.into(), IO_TIMEOUT).unwrap();
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

fn client_ip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, n)
}

/// Which node (index) a relay address belongs to, by its port range.
fn node_of(nodes: &[Node], relay: SocketAddr) -> usize {
    nodes
        .iter()
        .position(|n| n.relay_ports.contains(&relay.port()))
        .unwrap_or_else(|| panic!("relay {relay} is in no node's port range"))
}

fn setup(per_ip: usize) -> Option<(Pki, Vec<Node>, Haproxy)> {
    let bin = crate::kubernetes::tool("haproxy", "apt-get install haproxy", true)?;
    let pki = Pki::new();
    let nodes = vec![Node::start(&pki, per_ip), Node::start(&pki, per_ip)];
    let lb = Haproxy::start(&bin, &nodes);
    Some((pki, nodes, lb))
}

#[test]
fn haproxy_tcp_and_tls_report_the_real_client_and_keep_it_on_one_node() {
    // A roomy limit: a closed connection may still count for a moment.
    let Some((pki, nodes, lb)) = setup(16) else {
        return;
    };
    for n in 2..6 {
        let ip = client_ip(n);
        // TCP: XOR-MAPPED-ADDRESS is the client's own socket, not HAProxy's.
        let tcp = connect_from(ip, lb.tcp);
        let local = tcp.local_addr().unwrap();
        let mut c = Client::tcp(tcp, USER, PASS);
        assert_eq!(c.binding().unwrap(), local, "TCP mapped address");
        let first = node_of(&nodes, c.allocate().unwrap());

        // TLS through the same balancer, verified against the CA.
        let tcp = connect_from(ip, lb.tls);
        let local = tcp.local_addr().unwrap();
        let mut t = Client::stream(Box::new(pki.connect(tcp)), USER, PASS);
        assert_eq!(t.binding().unwrap(), local, "TLS mapped address");
        t.allocate().unwrap();

        // `balance source`: a second connection of the client lands on the
        // node of the first (round robin would alternate).
        drop(t);
        let mut again = Client::tcp(connect_from(ip, lb.tcp), USER, PASS);
        let second = node_of(&nodes, again.allocate().unwrap());
        assert_eq!(first, second, "client {ip} moved between nodes");
    }
}

#[test]
fn haproxy_per_ip_limits_count_each_client_not_the_balancer() {
    let Some((_pki, _nodes, lb)) = setup(PER_IP) else {
        return;
    };
    // Five clients, two connections each: ten connections from the
    // balancer's address, at least six of them on one node. Were the limit
    // (2 per IP) counting the balancer, most of these would be refused.
    let mut held = Vec::new();
    for n in 2..7 {
        for _ in 0..PER_IP {
            let tcp = connect_from(client_ip(n), lb.tcp);
            let local = tcp.local_addr().unwrap();
            let mut c = Client::tcp(tcp, USER, PASS);
            assert_eq!(c.binding().unwrap(), local, "client {n} within its limit");
            held.push(c);
        }
    }
    // A third connection from one of them is over its own limit: tern
    // closes it, so the Binding gets no answer. (Limits are per node:
    // `balance source` sends all three to the same one; with round robin
    // the third lands where the client has one connection, and is served.)
    let mut third = Client::tcp(connect_from(client_ip(3), lb.tcp), USER, PASS);
    assert!(
        third.binding().is_err(),
        "third connection from 127.0.0.3 was served"
    );
    // The others are untouched.
    for c in &mut held {
        c.binding().unwrap();
    }
}
