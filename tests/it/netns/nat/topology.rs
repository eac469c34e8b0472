//! The NAT test's small internet: five namespaces, veths, nftables NAT,
//! and tern in the public namespace.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::process::{Command, Stdio};

use super::super::namespace::{Netns, Tern, in_netns, output, run, tcp_in, udp_in};
use super::{PASS, PORT, PORT2, R1_WAN, R2_WAN, REALM, TERN_IP, USER};

/// The namespaces; dropping it deletes them all (which removes their veths).
pub(crate) struct Topology {
    _namespaces: Vec<Netns>,
    pub(crate) public: String,
    pub(crate) r1: String,
    pub(crate) r2: String,
    pub(crate) a: String,
    pub(crate) b: String,
}

impl Topology {
    /// The namespaces are named `{prefix}{PID}-{role}`; each test passes its
    /// own prefix (as to `remove_stale_namespaces`), so tests run at once.
    pub(crate) fn build(prefix: &str) -> Self {
        let pid = std::process::id();
        let ns = |role: &str| format!("{prefix}{pid}-{role}");
        let mut net = Self {
            _namespaces: Vec::new(),
            public: ns("pub"),
            r1: ns("r1"),
            r2: ns("r2"),
            a: ns("a"),
            b: ns("b"),
        };
        // Owned as soon as created, so a failure half-way still cleans up.
        for name in [&net.public, &net.r1, &net.r2, &net.a, &net.b] {
            net._namespaces.push(Netns::create(name));
        }
        let (p, r1, r2, a, b) = (&net.public, &net.r1, &net.r2, &net.a, &net.b);
        run(
            "ip",
            &["-n", p, "addr", "add", "203.0.113.1/32", "dev", "lo"],
        );
        link(p, "r1", "192.0.2.1/24", r1, "wan", "192.0.2.2/24");
        link(p, "r2", "198.51.100.1/24", r2, "wan", "198.51.100.2/24");
        link(r1, "lan", "10.0.1.1/24", a, "eth0", "10.0.1.2/24");
        link(r2, "lan", "10.0.2.1/24", b, "eth0", "10.0.2.2/24");
        run(
            "ip",
            &["-n", r1, "route", "add", "default", "via", "192.0.2.1"],
        );
        run(
            "ip",
            &["-n", r2, "route", "add", "default", "via", "198.51.100.1"],
        );
        run(
            "ip",
            &["-n", a, "route", "add", "default", "via", "10.0.1.1"],
        );
        run(
            "ip",
            &["-n", b, "route", "add", "default", "via", "10.0.2.1"],
        );
        // The public namespace routes between the routers (the "internet");
        // it has no route to 10.0.0.0/8, so only NATed traffic comes back.
        for router in [p, r1, r2] {
            in_netns(router, || {
                std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
            })
            .expect("enable ip_forward");
        }
        nft(r1, &router_rules(R2_WAN));
        nft(r2, &router_rules(R1_WAN));
        net
    }

    /// A UDP socket in namespace `ns` on an ephemeral port.
    pub(crate) fn udp(&self, ns: &str) -> UdpSocket {
        udp_in(ns, SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// A TCP connection from namespace `ns` to `to`.
    pub(crate) fn tcp(&self, ns: &str, to: SocketAddr) -> TcpStream {
        tcp_in(ns, to)
    }

    /// Drops every UDP packet the router would forward from its LAN.
    pub(crate) fn block_udp(&self, router: &str) {
        nft(
            router,
            "add rule ip filter forward iifname \"lan\" meta l4proto udp drop\n",
        );
    }
}

impl Tern {
    /// tern in the public namespace with its default policy, listening on
    /// both of [`PORT`] and [`PORT2`].
    pub(crate) fn start(net: &Topology) -> Self {
        let listen1 = format!("{TERN_IP}:{PORT}");
        let listen2 = format!("{TERN_IP}:{PORT2}");
        let user = format!("{USER}:{PASS}");
        let relay_ip = TERN_IP.to_string();
        let args = [
            "--listen",
            &listen1,
            "--listen",
            &listen2,
            "--relay-address",
            &relay_ip,
            "--relay-ports",
            "49152-49407",
            "--workers",
            "2",
            "--user",
            &user,
            "--realm",
            REALM,
            "--log-level",
            "info",
        ];
        let listeners = [PORT, PORT2].map(|port| SocketAddr::V4(SocketAddrV4::new(TERN_IP, port)));
        Self::start_in(&net.public, &args, &listeners)
    }

    pub(crate) fn addr(&self, port: u16) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(TERN_IP, port))
    }
}
/// The nftables ruleset of a router: symmetric NAT out of `wan`, and a
/// counter of UDP arriving from the other router (`peer`).
fn router_rules(peer: Ipv4Addr) -> String {
    format!(
        "table ip nat {{
           chain postrouting {{
             type nat hook postrouting priority srcnat; policy accept;
             oifname \"wan\" masquerade random,fully-random
           }}
         }}
         table ip filter {{
           counter punch {{ }}
           chain prerouting {{
             type filter hook prerouting priority -150; policy accept;
             iifname \"wan\" ip saddr {peer} meta l4proto udp counter name punch
           }}
           chain input {{
             type filter hook input priority 0; policy accept;
             iifname \"wan\" ct state new drop
           }}
           chain forward {{
             type filter hook forward priority 0; policy accept;
           }}
         }}\n"
    )
}

/// How many UDP packets from the other router reached `router`.
pub(crate) fn punch_counter(router: &str) -> u64 {
    let out = output(
        "ip",
        &[
            "netns", "exec", router, "nft", "list", "counter", "ip", "filter", "punch",
        ],
    );
    let words: Vec<&str> = out.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[0] == "packets")
        .and_then(|w| w[1].parse().ok())
        .unwrap_or_else(|| panic!("no packet count in: {out}"))
}

/// A veth pair: `n1` in `ns1` with `a1`, `n2` in `ns2` with `a2`, both up.
fn link(ns1: &str, n1: &str, a1: &str, ns2: &str, n2: &str, a2: &str) {
    // Created directly in the namespaces; the host's own namespace never sees it.
    run(
        "ip",
        &[
            "-n", ns1, "link", "add", n1, "type", "veth", "peer", "name", n2, "netns", ns2,
        ],
    );
    for (ns, name, addr) in [(ns1, n1, a1), (ns2, n2, a2)] {
        run("ip", &["-n", ns, "addr", "add", addr, "dev", name]);
        run("ip", &["-n", ns, "link", "set", name, "up"]);
    }
}

/// Loads an nftables script into namespace `ns`.
fn nft(ns: &str, script: &str) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `ip netns exec … nft` ({e}): install nftables"));
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(script.as_bytes())
        .expect("write nft script");
    let out = child.wait_with_output().expect("wait for nft");
    assert!(
        out.status.success(),
        "nft in {ns} failed: {}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
}
