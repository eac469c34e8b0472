//! The safe defaults, end to end: peer policy, quotas, floods and hostile
//! input against the real server.

use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tern::proto::peer_policy::PeerPolicy;

use crate::client::{Client, Link};
use crate::harness::{
    IO_TIMEOUT, TestServer, binding_request, is_coturn, random_tid, settings_default_policy,
};

/// One address from every default-denied IPv4 class.
const DENIED: &[&str] = &[
    "127.0.0.2:9",
    "0.0.0.0:9",
    "10.1.2.3:9",
    "172.16.0.1:9",
    "192.168.1.1:9",
    "100.64.0.1:9",
    "169.254.169.254:80",
    "224.0.0.1:9",
    "255.255.255.255:9",
    "240.0.0.1:9",
];

fn nothing_arrives(sock: &UdpSocket, wait: Duration) -> bool {
    sock.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 2048];
    sock.recv_from(&mut buf).is_err()
}

fn each_transport(server: &TestServer) -> [(&'static str, Link); 2] {
    [
        ("udp", Link::udp(server.udp)),
        ("tcp", Link::tcp(server.tcp)),
    ]
}

#[test]
fn default_policy_refuses_every_dangerous_class_over_udp_and_tcp() {
    if is_coturn() {
        return; // coturn relays to private ranges by default: tern-only behaviour.
    }
    let server = TestServer::with(settings_default_policy());
    // A listener on a loopback address that is not one of the relay's: it
    // must receive nothing whatever the client tries.
    let victim = UdpSocket::bind("127.0.0.2:0").unwrap();
    let victim_addr = victim.local_addr().unwrap();
    let service = UdpSocket::bind("127.0.0.1:0").unwrap(); // a local service on the relay's own IP
    let service_addr = service.local_addr().unwrap();
    for (name, link) in each_transport(&server) {
        let mut c = Client::new(link);
        c.allocate()
            .unwrap_or_else(|e| panic!("{name}: allocate failed with {e}"));
        for peer in DENIED
            .iter()
            .map(|s| s.parse::<SocketAddr>().unwrap())
            .chain([victim_addr])
        {
            assert_eq!(
                c.create_permission(peer),
                Err(403),
                "{name}: CreatePermission {peer}"
            );
            assert_eq!(
                c.channel_bind(0x4000, peer),
                Err(403),
                "{name}: ChannelBind {peer}"
            );
        }
        // The relay's own IP outside the relay ports is not a peer either.
        assert_eq!(
            c.channel_bind(0x4001, service_addr),
            Err(403),
            "{name}: own address, non-relay port"
        );
        c.send_indication(victim_addr, b"let me in");
        c.send_indication(service_addr, b"let me in");
        c.channel_data(0x4000, b"let me in");
    }
    assert!(
        nothing_arrives(&victim, Duration::from_millis(300)),
        "a denied peer received data"
    );
    assert!(
        nothing_arrives(&service, Duration::from_millis(100)),
        "the server's own address received data"
    );
}

/// The Send-indication path checks the peer's whole address, not only the
/// permission. The server's own relay IP is an allowed permission (its relay
/// ports are peers), so a permission for 127.0.0.1 exists here; a Send
/// indication to a non-relay port on that IP (a local service) must still
/// be dropped by the policy check on the Send path itself. A ChannelBind to
/// it is refused, and ChannelData on that channel goes nowhere either.
/// Barrier: data to another allocation's relay address on the same IP,
/// sent after the forbidden datagrams from the same relay socket, arrives.
#[test]
fn send_to_own_ip_outside_relay_ports_is_dropped_despite_a_permission() {
    if is_coturn() {
        return; // tern-only: the whole-address check on the Send path.
    }
    let server = TestServer::with(settings_default_policy());
    let service = UdpSocket::bind("127.0.0.1:0").unwrap();
    let service_addr = service.local_addr().unwrap();
    let mut b = Client::new(Link::udp(server.udp));
    let b_relay = b.allocate().expect("allocate B");
    b.create_permission(b_relay)
        .expect("B: permission for 127.0.0.1");
    for (name, link) in each_transport(&server) {
        let mut a = Client::new(link);
        a.allocate()
            .unwrap_or_else(|e| panic!("{name}: allocate failed with {e}"));
        // A permission for the relay IP, installed through B's relay address.
        a.create_permission(b_relay)
            .unwrap_or_else(|e| panic!("{name}: permission for B's relay: {e}"));
        assert_eq!(
            a.channel_bind(0x4001, service_addr),
            Err(403),
            "{name}: ChannelBind to the own address, non-relay port"
        );
        a.send_indication(service_addr, b"past the permission");
        a.channel_data(0x4001, b"on a refused channel");
        let barrier = format!("{name} barrier");
        a.send_indication(b_relay, barrier.as_bytes());
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = b
                .recv(left)
                .unwrap_or_else(|| panic!("{name}: no barrier at B"));
            if frame
                .windows(barrier.len())
                .any(|w| w == barrier.as_bytes())
            {
                break;
            }
        }
        assert!(
            nothing_arrives(&service, Duration::from_millis(100)),
            "{name}: a Send indication reached the server's own address outside the relay ports"
        );
    }
}

#[test]
fn allow_list_opens_exactly_what_it_names() {
    if is_coturn() {
        return;
    }
    let mut s = settings_default_policy();
    s.proto.peer_policy = PeerPolicy::new(vec!["127.0.0.2/32".parse().unwrap()], vec![]);
    let server = TestServer::with(s);
    let opened = UdpSocket::bind("127.0.0.2:0").unwrap();
    let opened_addr = opened.local_addr().unwrap();
    for (name, link) in each_transport(&server) {
        let mut c = Client::new(link);
        c.allocate().unwrap();
        c.create_permission(opened_addr)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        c.send_indication(opened_addr, name.as_bytes());
        opened.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut buf = [0u8; 64];
        let (n, _) = opened
            .recv_from(&mut buf)
            .expect("allowed peer gets the data");
        assert_eq!(&buf[..n], name.as_bytes());
        assert_eq!(
            c.create_permission("127.0.0.3:9".parse().unwrap()),
            Err(403),
            "{name}"
        );
        assert_eq!(
            c.create_permission("10.0.0.1:9".parse().unwrap()),
            Err(403),
            "{name}"
        );
    }
}

#[test]
fn quota_486_at_the_limit_and_success_again_after_a_delete() {
    if is_coturn() {
        return;
    }
    let mut s = settings_default_policy();
    s.proto.limits.max_allocations_per_user = 2;
    let server = TestServer::with(s);
    let mut a = Client::new(Link::udp(server.udp));
    let mut b = Client::new(Link::tcp(server.tcp));
    let mut c = Client::new(Link::udp(server.udp));
    a.allocate().unwrap();
    b.allocate().unwrap();
    assert_eq!(c.allocate(), Err(486));
    a.refresh(0).unwrap();
    c.allocate().expect("quota released by the delete");
    // A closed TCP connection releases its allocation at once too.
    drop(b);
    let mut d = Client::new(Link::udp(server.udp));
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        match d.allocate() {
            Ok(_) => break,
            Err(486) if Instant::now() < deadline => std::thread::yield_now(),
            Err(e) => panic!("allocate after TCP close: {e}"),
        }
    }
}

/// Binding and Allocate still work (the server is alive and answering).
fn assert_serves(server: &TestServer) {
    for (name, link) in each_transport(server) {
        let mut c = Client::new(link);
        assert!(c.binding().ip().is_loopback(), "{name}: Binding answered");
        c.allocate()
            .unwrap_or_else(|e| panic!("{name}: Allocate failed with {e}"));
    }
}

#[test]
fn malformed_barrage_leaves_the_server_answering() {
    let server = TestServer::with(settings_default_policy());
    // Deterministic garbage: an xorshift generator.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let socks: Vec<UdpSocket> = (0..16)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let mut buf = [0u8; 1500];
    for i in 0..20_000 {
        let len = (next() % 1500) as usize;
        for b in &mut buf[..len] {
            *b = next() as u8;
        }
        // Every third one looks like STUN or ChannelData at first glance.
        match i % 3 {
            0 if len >= 20 => {
                buf[0] &= 0x3F;
                buf[4..8].copy_from_slice(&0x2112_A442u32.to_be_bytes());
            }
            1 if len >= 4 => buf[0] = 0x40 | (buf[0] & 0x3F),
            _ => {}
        }
        let _ = socks[i % socks.len()].send_to(&buf[..len], server.udp);
    }
    // Garbage gets no answer.
    assert!(
        socks
            .iter()
            .all(|s| nothing_arrives(s, Duration::from_millis(20))),
        "garbage was answered"
    );
    // TCP: random bytes, a huge frame header, a partial header then close.
    let streams: [&[u8]; 4] = [
        &[0xFF; 64],
        &[0x00, 0x01, 0xFF, 0xFC, 0x21, 0x12, 0xA4, 0x42],
        &[0x40, 0x00, 0xFF, 0xFF],
        &[0x00, 0x01],
    ];
    for bytes in streams {
        let mut s = TcpStream::connect(server.tcp).unwrap();
        let _ = s.write_all(bytes);
    }
    assert_serves(&server);
}

/// RSS of a process in KiB, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn memory_stays_bounded_under_a_million_unauthenticated_requests() {
    if is_coturn() {
        return;
    }
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = crate::harness::ChildGuard::spawn(
        Command::new(env!("CARGO_BIN_EXE_tern"))
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--relay-address",
                "127.0.0.1",
                "--workers",
                "1",
            ])
            .args(["--user", "u:p", "--log-level", "warn"])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        "tern",
    );
    let server: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // Readiness: a Binding is answered.
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        probe
            .send_to(&binding_request(random_tid()), server)
            .unwrap();
        let mut b = [0u8; 128];
        if probe.recv_from(&mut b).is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "server did not start");
    }
    let pid = child.id();
    let before = rss_kib(pid);
    // An unauthenticated Allocate (REQUESTED-TRANSPORT only) from 256 source ports.
    let socks: Vec<UdpSocket> = (0..256)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let mut req = [0u8; 28];
    req[..2].copy_from_slice(&0x0003u16.to_be_bytes());
    req[2..4].copy_from_slice(&8u16.to_be_bytes());
    req[4..8].copy_from_slice(&0x2112_A442u32.to_be_bytes());
    req[20..24].copy_from_slice(&[0x00, 0x19, 0x00, 0x04]);
    req[24] = 17;
    for i in 0..1_000_000u32 {
        req[8..12].copy_from_slice(&i.to_be_bytes());
        let _ = socks[i as usize % socks.len()].send_to(&req, server);
    }
    // Still answering, then measure. The flood may still fill the server's
    // receive buffer, where a single probe can be dropped by the kernel: ask
    // again every 100 ms, for at most IO_TIMEOUT.
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        probe
            .send_to(&binding_request(random_tid()), server)
            .unwrap();
        let mut b = [0u8; 128];
        if probe.recv_from(&mut b).is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server does not answer after the flood"
        );
    }
    let after = rss_kib(pid);
    eprintln!("RSS before {before} KiB, after 1,000,000 unauthenticated Allocates {after} KiB");
    assert!(
        after < before + 8 * 1024,
        "RSS grew from {before} to {after} KiB"
    );
}
