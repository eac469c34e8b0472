//! The default peer policy, proven with real listeners at the addresses it
//! protects.
//!
//! `tests/it/security.rs` can only bind victims on loopback. Here the test
//! creates one network namespace, `ternsec<PID>`, and gives an interface
//! inside it an address of every default-denied IPv4 class, so a UDP
//! listener can sit at each of them:
//!
//! ```text
//!   namespace ternsec<PID>
//!     lo  127.0.0.1                  loopback
//!     d0  10.1.2.3/8, 10.200.0.1     private (RFC 1918)
//!         172.16.0.1/12              private (RFC 1918)
//!         192.168.1.1/16, .1.2       private (RFC 1918)
//!         100.64.0.1/10              CGNAT (RFC 6598)
//!         169.254.169.254/16         link-local, cloud metadata
//!         192.0.0.8/24               IETF protocol assignments
//!         198.18.0.1/15              benchmarking
//!         203.0.113.1/24             tern: listen 3478 (default policy),
//!                                    3479 (allow list), relay 203.0.113.1
//!         203.0.113.7                a public peer
//! ```
//!
//! `d0` is a `dummy` interface, or one end of a veth pair inside the same
//! namespace where the kernel has no dummy driver. Every listener binds
//! port [`PEER_PORT`]; the one on 203.0.113.1 is the server's own address
//! outside its relay ports.
//!
//! Checks, each of which fails if the property it shows breaks:
//! 1. every listener receives a datagram sent to it directly, so "received
//!    nothing" below means tern relayed nothing, not that the listener is
//!    unreachable;
//! 2. tern with its default config (only listen/relay addresses and a test
//!    user on the command line), over UDP and over TCP: CreatePermission
//!    and ChannelBind to every listener get 403, and so do multicast
//!    224.0.0.1, broadcast 255.255.255.255, reserved 240.0.0.1, 0.0.0.0 and
//!    tern's own listening ports; a Send indication and ChannelData on the
//!    refused channel are sent to each listener anyway; after a barrier (data
//!    relayed to the public peer, sent after them, has arrived) and a grace
//!    period, no listener has received anything;
//! 3. two allocations on that server relay to each other, A on UDP and B on
//!    TCP, as Send/Data indications and as ChannelData, both ways;
//! 4. a second tern with `[peers] allow = ["10.0.0.0/8", "192.168.1.1/32"]`
//!    and `deny = ["10.200.0.0/16"]`: the listeners on 10.1.2.3 and
//!    192.168.1.1 receive exactly the data sent to them (both forms, both
//!    client transports), while 192.168.1.2 (the neighbour of the /32),
//!    10.200.0.1 (deny beats allow) and every other class still get 403 and
//!    receive nothing.
//!
//! Needs root (`ip netns`). Without root the test is skipped with a loud
//! message, unless `CI=true`: then it fails. The namespace is deleted when
//! the test ends, however it ends, and namespaces left by a killed earlier
//! run are removed at start. Only addresses inside the namespace are used.

use std::io::{ErrorKind, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use super::client::{Delivery, TurnClient};
use super::namespace::{Netns, Tern, add_d0, may_run, remove_stale_namespaces, tcp_in, udp_in};
use super::{PASS, TERN_IP, USER};

/// The tern with the default peer policy.
const PORT: u16 = 3478;
/// The tern with an allow list.
const PORT_ALLOW: u16 = 3479;
/// Namespace names start with this, then the test's PID.
const NS_PREFIX: &str = "ternsec";
/// The port every listener binds.
const PEER_PORT: u16 = 4000;
/// A public-looking peer: relaying to it is allowed, so it is the barrier.
const PUBLIC_PEER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);
/// How long a listener must stay silent after the barrier has arrived.
const GRACE: Duration = Duration::from_millis(300);

/// Addresses of `d0`.
const IFACE_ADDRS: &[&str] = &[
    "10.1.2.3/8",
    "10.200.0.1/32",
    "172.16.0.1/12",
    "192.168.1.1/16",
    "192.168.1.2/32",
    "100.64.0.1/10",
    "169.254.169.254/16",
    "192.0.0.8/24",
    "198.18.0.1/15",
    "203.0.113.1/24",
    "203.0.113.7/32",
];

/// A listener at each of these, all refused by the default policy.
const LISTENERS: &[(Ipv4Addr, &str)] = &[
    (Ipv4Addr::new(127, 0, 0, 1), "loopback"),
    (Ipv4Addr::new(10, 1, 2, 3), "private 10/8"),
    (Ipv4Addr::new(10, 200, 0, 1), "private 10/8"),
    (Ipv4Addr::new(172, 16, 0, 1), "private 172.16/12"),
    (Ipv4Addr::new(192, 168, 1, 1), "private 192.168/16"),
    (Ipv4Addr::new(192, 168, 1, 2), "private 192.168/16"),
    (Ipv4Addr::new(100, 64, 0, 1), "CGNAT"),
    (
        Ipv4Addr::new(169, 254, 169, 254),
        "link-local, cloud metadata",
    ),
    (Ipv4Addr::new(192, 0, 0, 8), "IETF protocol assignments"),
    (Ipv4Addr::new(198, 18, 0, 1), "benchmarking"),
    (TERN_IP, "the server's own address outside the relay ports"),
];

/// Refused peers that get no listener: 403 is asserted only.
const REFUSED_ONLY: &[(SocketAddrV4, &str)] = &[
    (sa(224, 0, 0, 1, PEER_PORT), "multicast"),
    (sa(255, 255, 255, 255, PEER_PORT), "broadcast"),
    (sa(240, 0, 0, 1, PEER_PORT), "reserved"),
    (sa(0, 0, 0, 0, PEER_PORT), "unspecified"),
    (sa(203, 0, 113, 1, PORT), "tern's own listener"),
    (sa(203, 0, 113, 1, PORT_ALLOW), "tern's own listener"),
];

/// The allow-list tern's config: opens a /8 and one /32, and denies a /16
/// inside the opened /8.
const ALLOW_CONFIG: &str = "[peers]\n\
    allow = [\"10.0.0.0/8\", \"192.168.1.1/32\"]\n\
    deny = [\"10.200.0.0/16\"]\n";
/// The listeners the allow-list tern relays to.
const ALLOWED: &[Ipv4Addr] = &[Ipv4Addr::new(10, 1, 2, 3), Ipv4Addr::new(192, 168, 1, 1)];

const fn sa(a: u8, b: u8, c: u8, d: u8, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), port)
}

#[test]
fn peer_policy_in_a_namespace() {
    if !may_run(
        "peer_policy_in_a_namespace",
        "ip netns",
        "sudo -E cargo test --test it netns::security",
    ) {
        return;
    }
    let t0 = Instant::now();
    remove_stale_namespaces(NS_PREFIX);
    let ns = Netns::create(&format!("{NS_PREFIX}{}", std::process::id()));
    let ns = ns.name.as_str();
    add_interface(ns);
    let listeners: Vec<Listener> = LISTENERS
        .iter()
        .map(|&(ip, class)| Listener::bind(ns, ip, class))
        .collect();
    let public = Listener::bind(ns, PUBLIC_PEER, "public");

    // 1. Every listener can receive.
    let probe = udp_in(ns, SocketAddr::from((PUBLIC_PEER, 0)));
    for l in listeners.iter().chain([&public]) {
        probe.send_to(b"probe", l.addr).expect("send probe");
        let got = l.wait_for(b"probe", Duration::from_secs(2));
        assert!(
            got,
            "listener {} ({}) got no direct datagram",
            l.addr, l.class
        );
        l.assert_silent("after the probe");
    }

    let user = format!("{USER}:{PASS}");
    let relay_ip = TERN_IP.to_string();
    let listen = format!("{TERN_IP}:{PORT}");
    let default_tern = Tern::start_in(
        ns,
        &[
            "--listen",
            &listen,
            "--relay-address",
            &relay_ip,
            "--relay-ports",
            "50000-50999",
            "--user",
            &user,
        ],
        &[server(PORT)],
    );
    let mut config = tempfile::NamedTempFile::new().expect("temp file");
    config
        .write_all(ALLOW_CONFIG.as_bytes())
        .expect("write config");
    let config_path = config.path().to_str().expect("UTF-8 temp path").to_owned();
    let listen_allow = format!("{TERN_IP}:{PORT_ALLOW}");
    let allow_tern = Tern::start_in(
        ns,
        &[
            "--config",
            &config_path,
            "--listen",
            &listen_allow,
            "--relay-address",
            &relay_ip,
            "--relay-ports",
            "51000-51999",
            "--user",
            &user,
        ],
        &[server(PORT_ALLOW)],
    );
    eprintln!(
        "security_netns: namespace and two terns up in {:?}",
        t0.elapsed()
    );

    // 2. The default policy: 403 everywhere, nothing delivered.
    let sent = attack(ns, "default", server(PORT), &listeners, &[], &public);
    assert_delivered(&listeners, &public, &[], sent);
    eprintln!(
        "security_netns: check 2 ok: {} listeners and {} addresses refused over UDP and TCP, nothing delivered",
        listeners.len(),
        REFUSED_ONLY.len()
    );

    // 3. Relay to relay on the default-policy server.
    relay_to_relay(ns);
    eprintln!("security_netns: check 3 ok: relay to relay, UDP and TCP, both ways");

    // 4. The allow list opens exactly what it names.
    let sent = attack(
        ns,
        "allow",
        server(PORT_ALLOW),
        &listeners,
        ALLOWED,
        &public,
    );
    assert_delivered(&listeners, &public, ALLOWED, sent);
    eprintln!("security_netns: check 4 ok: the allow list opened 10.1.2.3 and 192.168.1.1 only");

    drop(allow_tern);
    drop(default_tern);
    eprintln!("security_netns: all checks passed in {:?}", t0.elapsed());
}

/// A permission is for an IP address, whatever the port (RFC 8656 §9), and
/// tern's own relay address must be permitted for relay to relay; so on its
/// own address only ChannelBind (which names a port) is refused, and data
/// is stopped when it is sent.
fn is_own(peer: SocketAddr) -> bool {
    peer.ip() == TERN_IP
}

fn ip4(addr: SocketAddr) -> Ipv4Addr {
    match addr {
        SocketAddr::V4(a) => *a.ip(),
        SocketAddr::V6(a) => panic!("IPv6 address {a}"),
    }
}

fn server(port: u16) -> SocketAddr {
    SocketAddr::from((TERN_IP, port))
}

/// `d0` with every address of [`IFACE_ADDRS`].
fn add_interface(ns: &str) {
    add_d0(ns, IFACE_ADDRS);
}

/// A UDP socket at `ip`:[`PEER_PORT`] inside the namespace.
struct Listener {
    sock: UdpSocket,
    addr: SocketAddr,
    class: &'static str,
}

impl Listener {
    fn bind(ns: &str, ip: Ipv4Addr, class: &'static str) -> Self {
        let addr = SocketAddr::from((ip, PEER_PORT));
        let sock = udp_in(ns, addr);
        sock.set_nonblocking(true).expect("set non-blocking");
        Self { sock, addr, class }
    }

    /// Everything queued now: (source, payload).
    fn drain(&self) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        loop {
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) => got.push((from, buf[..n].to_vec())),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return got,
                Err(e) => panic!("receive on {}: {e}", self.addr),
            }
        }
    }

    /// Waits up to `timeout` for `payload`; anything else arriving is a
    /// failure.
    fn wait_for(&self, payload: &[u8], timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let got = self.drain();
            if !got.is_empty() {
                let got: Vec<_> = got
                    .iter()
                    .map(|(from, d)| (from, String::from_utf8_lossy(d)))
                    .collect();
                assert_eq!(
                    got,
                    [(got[0].0, String::from_utf8_lossy(payload))],
                    "{} ({}) received something else",
                    self.addr,
                    self.class
                );
                return true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        false
    }

    fn assert_silent(&self, when: &str) {
        let got = self.drain();
        assert!(
            got.is_empty(),
            "{} ({}) received {} datagram(s) {when}: {:?}",
            self.addr,
            self.class,
            got.len(),
            got.iter()
                .map(|(from, d)| (from, String::from_utf8_lossy(d)))
                .collect::<Vec<_>>()
        );
    }
}

/// A client of `server` over `transport` ("udp" or "tcp") from inside the
/// namespace, with an allocation.
fn client(ns: &str, transport: &str, server: SocketAddr) -> TurnClient {
    let mut c = match transport {
        "udp" => TurnClient::udp(udp_in(ns, SocketAddr::from((PUBLIC_PEER, 0))), server),
        _ => TurnClient::tcp(tcp_in(ns, server)),
    };
    let mapped = c.binding();
    assert!(
        [PUBLIC_PEER, TERN_IP].contains(&ip4(mapped)),
        "{transport} client seen as {mapped}: not inside the namespace"
    );
    c.allocate();
    c
}

/// What the client sent to a listener, tagged so a delivery names its path.
fn payload(round: &str, transport: &str, how: &str, to: SocketAddr) -> Vec<u8> {
    format!("{round} {transport} {how} to {to}").into_bytes()
}

/// Over UDP and TCP: asks `server` for a permission and a channel to every
/// listener (only those in `open` may succeed; the others and every
/// [`REFUSED_ONLY`] address must get 403), then sends a Send indication and
/// ChannelData to every listener regardless, then relays a marker to the
/// public peer and waits for it. Returns the payloads sent per listener.
fn attack(
    ns: &str,
    round: &str,
    server: SocketAddr,
    listeners: &[Listener],
    open: &[Ipv4Addr],
    public: &Listener,
) -> Vec<Vec<Vec<u8>>> {
    let mut sent = vec![Vec::new(); listeners.len()];
    for transport in ["udp", "tcp"] {
        let mut c = client(ns, transport, server);
        for (i, l) in listeners.iter().enumerate() {
            let channel = 0x4000 + u16::try_from(i).expect("few listeners");
            let peer = l.addr;
            let want = if open
                .iter()
                .any(|&ip| SocketAddr::from((ip, PEER_PORT)) == peer)
            {
                Ok(())
            } else {
                Err(403)
            };
            assert_eq!(
                c.try_create_permission(peer),
                if is_own(peer) { Ok(()) } else { want },
                "{round}/{transport}: CreatePermission {peer} ({})",
                l.class
            );
            assert_eq!(
                c.try_channel_bind(channel, peer),
                want,
                "{round}/{transport}: ChannelBind {channel:#x} {peer} ({})",
                l.class
            );
            let (send, chan) = (
                payload(round, transport, "send", peer),
                payload(round, transport, "channel", peer),
            );
            c.send_indication(peer, &send);
            c.send_channel(channel, &chan);
            sent[i].extend([send, chan]);
        }
        for (i, &(peer, class)) in REFUSED_ONLY.iter().enumerate() {
            let peer = SocketAddr::V4(peer);
            let channel = 0x4800 + u16::try_from(i).expect("few addresses");
            assert_eq!(
                c.try_create_permission(peer),
                if is_own(peer) { Ok(()) } else { Err(403) },
                "{round}/{transport}: CreatePermission {peer} ({class})"
            );
            assert_eq!(
                c.try_channel_bind(channel, peer),
                Err(403),
                "{round}/{transport}: ChannelBind {peer} ({class})"
            );
        }
        // The barrier: sent after everything above on the same connection
        // or socket, so once it arrives tern has handled the rest.
        c.create_permission(public.addr);
        let marker = payload(round, transport, "barrier", public.addr);
        c.send_indication(public.addr, &marker);
        assert!(
            public.wait_for(&marker, Duration::from_secs(2)),
            "{round}/{transport}: data to the public peer {} did not arrive: tern relays nothing at all",
            public.addr
        );
    }
    sent
}

/// After [`GRACE`]: each listener in `open` received exactly what was sent
/// to it, from tern's relay address; every other listener and the public
/// peer (whose barriers were consumed) received nothing.
fn assert_delivered(
    listeners: &[Listener],
    public: &Listener,
    open: &[Ipv4Addr],
    sent: Vec<Vec<Vec<u8>>>,
) {
    std::thread::sleep(GRACE);
    for (l, sent) in listeners.iter().zip(sent) {
        let is_open = open.iter().any(|&ip| l.addr.ip() == ip);
        if !is_open {
            l.assert_silent("although tern refused it");
            continue;
        }
        let got = l.drain();
        for (from, _) in &got {
            assert_eq!(from.ip(), TERN_IP, "{} received from {from}", l.addr);
        }
        let mut got: Vec<Vec<u8>> = got.into_iter().map(|(_, d)| d).collect();
        let mut want = sent;
        got.sort();
        want.sort();
        assert_eq!(
            got.iter()
                .map(|d| String::from_utf8_lossy(d))
                .collect::<Vec<_>>(),
            want.iter()
                .map(|d| String::from_utf8_lossy(d))
                .collect::<Vec<_>>(),
            "allowed listener {} ({}) received the wrong datagrams",
            l.addr,
            l.class
        );
    }
    public.assert_silent("beyond the barriers");
}

/// Two allocations on the default-policy server, A over UDP and B over TCP,
/// exchange data through their relays both ways, as Send/Data indications
/// and as ChannelData.
fn relay_to_relay(ns: &str) {
    const CHANNEL_A: u16 = 0x4000;
    const CHANNEL_B: u16 = 0x4FFF;
    let mut a = client(ns, "udp", server(PORT));
    let mut b = client(ns, "tcp", server(PORT));
    assert_ne!(a.relay, b.relay, "two allocations share a relay address");
    a.create_permission(b.relay);
    b.create_permission(a.relay);
    let wait = Duration::from_secs(2);

    a.send_indication(b.relay, b"A to B, indication");
    b.send_indication(a.relay, b"B to A, indication");
    assert_eq!(
        b.recv_data(wait),
        Some((Delivery::Data(a.relay), b"A to B, indication".to_vec())),
        "B's relay did not pass on A's Send indication"
    );
    assert_eq!(
        a.recv_data(wait),
        Some((Delivery::Data(b.relay), b"B to A, indication".to_vec())),
        "A's relay did not pass on B's Send indication"
    );

    a.channel_bind(CHANNEL_A, b.relay);
    b.channel_bind(CHANNEL_B, a.relay);
    a.send_channel(CHANNEL_A, b"A to B, channel");
    b.send_channel(CHANNEL_B, b"B to A, channel");
    assert_eq!(
        b.recv_data(wait),
        Some((Delivery::Channel(CHANNEL_B), b"A to B, channel".to_vec())),
        "B did not get A's ChannelData on its channel to A"
    );
    assert_eq!(
        a.recv_data(wait),
        Some((Delivery::Channel(CHANNEL_A), b"B to A, channel".to_vec())),
        "A did not get B's ChannelData on its channel to B"
    );
}
