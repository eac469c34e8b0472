//! NAT traversal, proven on a small internet built inside the machine.
//!
//! The test builds five network namespaces joined by veth pairs, puts tern
//! in the "public" one and two hosts behind two routers that do symmetric
//! NAT with nftables, then checks what a TURN server is for: hosts that
//! cannot reach each other directly can still talk through it.
//!
//! ```text
//!   host A 10.0.1.2            "public internet"             host B 10.0.2.2
//!      | eth0                                                    eth0 |
//!      | lan 10.0.1.1       tern 203.0.113.1:3478,3479   lan 10.0.2.1 |
//!   [ router 1 ]            (relay 203.0.113.1, on lo)       [ router 2 ]
//!      | wan 192.0.2.2          [ public ]           wan 198.51.100.2 |
//!      +------------- r1 192.0.2.1      r2 198.51.100.1 --------------+
//! ```
//!
//! Both routers masquerade with `random,fully-random`: every new flow gets a
//! fresh random public port, so the mapping depends on the destination
//! (RFC 4787 "endpoint-dependent mapping", the NAT that defeats hole
//! punching). The public addresses are documentation ranges (RFC 5737) that
//! tern's default peer policy does not deny, so tern runs with its default
//! policy. Private addresses exist only behind the routers.
//!
//! Checks, each of which fails if the property it shows breaks:
//! 1. a STUN Binding from each host returns its router's public address;
//! 2. the NAT is symmetric: one socket is mapped to different ports towards
//!    tern's two ports, and a naive hole punch between the STUN-learned
//!    addresses delivers nothing, although the packets do reach the other
//!    router (an nftables counter there proves it);
//! 3. both hosts allocate and exchange [`COUNT`] numbered packets each way,
//!    relay to relay, first as Send/Data indications, then as ChannelData,
//!    with no loss, no corruption and no duplicates;
//! 4. with outbound UDP dropped at router 1, host A still gets through over
//!    TURN-over-TCP (the same exchange, A on TCP, B on UDP).
//!
//! Needs root (`ip netns`, nftables). Without root the test is skipped with
//! a loud message, unless `CI=true`: in CI anything missing is a failure.
//! Every namespace is deleted when the test ends, however it ends, and
//! namespaces left by a killed earlier run are removed at start.
//! Only addresses inside the namespaces created here are ever used.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use tern::proto::auth::LongTermKey;
use tern::proto::channel_data::{ChannelData, ChannelNumber, write_header};
use tern::proto::framing::frame_len;
use tern::proto::stun::{
    AttrType, Class, Message, MessageType, MessageWriter, Method, TransactionId, decode_error_code,
    decode_xor_addr,
};

const TERN_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
const PORT: u16 = 3478;
const PORT2: u16 = 3479;
const R1_WAN: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const R2_WAN: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const USER: &str = "nat";
const PASS: &str = "nat-test-password";
const REALM: &str = "tern";
/// Packets sent each way in each phase of checks 3 and 4.
const COUNT: u32 = 1000;
/// Packets in flight each way before the receivers catch up (keeps socket
/// buffers far from full, so a loss is tern's and not the test's).
const WINDOW: u32 = 25;
/// Namespace names start with this, then the test's PID.
const NS_PREFIX: &str = "ternnat";

#[test]
fn nat_traversal() {
    if !may_run() {
        return;
    }
    let t0 = Instant::now();
    remove_stale_namespaces();
    let net = Topology::build();
    let tern = Tern::start(&net);
    eprintln!("nat: topology and tern up in {:?}", t0.elapsed());

    // 1. Binding from each host returns its router's public address.
    let a_sock = net.udp(&net.a);
    let b_sock = net.udp(&net.b);
    let a_mapped = binding(&a_sock, tern.addr(PORT), 10).expect("host A: no Binding response");
    let b_mapped = binding(&b_sock, tern.addr(PORT), 10).expect("host B: no Binding response");
    assert_eq!(a_mapped.ip(), R1_WAN, "host A is seen as {a_mapped}");
    assert_eq!(b_mapped.ip(), R2_WAN, "host B is seen as {b_mapped}");
    eprintln!("nat: check 1 ok: A seen as {a_mapped}, B seen as {b_mapped}");

    // 2a. Endpoint-dependent mapping: another destination, another port.
    for (name, sock, first) in [("A", &a_sock, a_mapped), ("B", &b_sock, b_mapped)] {
        let second = binding(sock, tern.addr(PORT2), 10).expect("no Binding response on 3479");
        assert_eq!(first.ip(), second.ip(), "host {name}: public IP changed");
        assert_ne!(
            first.port(),
            second.port(),
            "host {name}: same mapped port towards {PORT} and {PORT2}: the NAT is not symmetric"
        );
    }
    // 2b. A naive hole punch between the STUN-learned addresses fails,
    // although the packets cross the public network to the other router.
    let got = hole_punch(&a_sock, b_mapped, &b_sock, a_mapped);
    assert_eq!(
        got, 0,
        "{got} hole-punch packets got through a symmetric NAT"
    );
    for (router, from) in [(&net.r2, "A"), (&net.r1, "B")] {
        let seen = punch_counter(router);
        assert!(
            seen >= 5,
            "only {seen} punch packets from host {from} reached {router}: routing, not NAT, stopped them"
        );
    }
    eprintln!("nat: check 2 ok: mappings differ per destination, hole punch delivered nothing");

    // 3. Relay to relay over UDP: Send indications, then a channel.
    let mut a = TurnClient::udp(net.udp(&net.a), tern.addr(PORT));
    let mut b = TurnClient::udp(net.udp(&net.b), tern.addr(PORT));
    relay_both_ways(&mut a, &mut b, 1);
    eprintln!("nat: check 3 ok: {COUNT} packets each way as Send/Data, then as ChannelData");

    // 4. Outbound UDP dropped at router 1: A falls back to TURN over TCP.
    net.block_udp(&net.r1);
    let probe = net.udp(&net.a);
    assert_eq!(
        binding(&probe, tern.addr(PORT), 3),
        None,
        "router 1 still forwards UDP: the TCP check would prove nothing"
    );
    let mut a = TurnClient::tcp(net.tcp(&net.a, tern.addr(PORT)));
    let mut b = TurnClient::udp(net.udp(&net.b), tern.addr(PORT));
    let tcp_mapped = a.binding();
    assert_eq!(
        tcp_mapped.ip(),
        R1_WAN,
        "host A over TCP is seen as {tcp_mapped}"
    );
    relay_both_ways(&mut a, &mut b, 2);
    eprintln!("nat: check 4 ok: UDP blocked at router 1, A relayed over TCP");

    eprintln!("nat: all checks passed in {:?}", t0.elapsed());
}

/// Whether the test can run here; skips loudly outside CI, fails in CI.
fn may_run() -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        return true;
    }
    assert!(
        !ci,
        "CI=true but not running as root: the NAT test needs root for ip netns and nftables"
    );
    eprintln!(
        "\n*** SKIPPED nat_traversal: needs root (ip netns, veth, nftables). ***\n\
         *** Run it with: sudo -E cargo test --test nat                  ***\n"
    );
    false
}

// ---------------------------------------------------------------------------
// The topology.

/// The namespaces; dropping it deletes them all (which removes their veths).
struct Topology {
    names: Vec<String>,
    public: String,
    r1: String,
    r2: String,
    a: String,
    b: String,
}

impl Topology {
    fn build() -> Self {
        let pid = std::process::id();
        let ns = |role: &str| format!("{NS_PREFIX}{pid}-{role}");
        let mut net = Self {
            names: Vec::new(),
            public: ns("pub"),
            r1: ns("r1"),
            r2: ns("r2"),
            a: ns("a"),
            b: ns("b"),
        };
        // Registered before creation, so a failure half-way still cleans up.
        for name in [&net.public, &net.r1, &net.r2, &net.a, &net.b] {
            net.names.push(name.clone());
            run("ip", &["netns", "add", name]);
            run("ip", &["-n", name, "link", "set", "lo", "up"]);
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
            in_netns(router, || fs::write("/proc/sys/net/ipv4/ip_forward", "1"))
                .expect("enable ip_forward");
        }
        nft(r1, &router_rules(R2_WAN));
        nft(r2, &router_rules(R1_WAN));
        net
    }

    /// A UDP socket in namespace `ns` on an ephemeral port.
    fn udp(&self, ns: &str) -> UdpSocket {
        let sock = in_netns(ns, || UdpSocket::bind("0.0.0.0:0")).expect("bind UDP socket");
        sock.set_read_timeout(Some(Duration::from_millis(300)))
            .expect("set timeout");
        sock
    }

    /// A TCP connection from namespace `ns` to `to`.
    fn tcp(&self, ns: &str, to: SocketAddr) -> TcpStream {
        in_netns(ns, move || {
            TcpStream::connect_timeout(&to, Duration::from_secs(5))
        })
        .expect("TCP connect to tern")
    }

    /// Drops every UDP packet the router would forward from its LAN.
    fn block_udp(&self, router: &str) {
        nft(
            router,
            "add rule ip filter forward iifname \"lan\" meta l4proto udp drop\n",
        );
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = Command::new("ip")
                .args(["netns", "del", name])
                .stderr(Stdio::null())
                .status();
        }
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
           chain forward {{
             type filter hook forward priority 0; policy accept;
           }}
         }}\n"
    )
}

/// How many UDP packets from the other router reached `router`.
fn punch_counter(router: &str) -> u64 {
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

/// Deletes namespaces left by earlier runs whose process is gone (SIGKILL
/// skips Drop).
fn remove_stale_namespaces() {
    let list = output("ip", &["netns", "list"]);
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(rest) = name.strip_prefix(NS_PREFIX) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        if !pid.is_empty() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// Runs `f` on a thread that has entered network namespace `ns`. Sockets
/// stay in the namespace they were created in, so what `f` returns can be
/// used from any thread.
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{ns}");
    thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        // SAFETY: a valid namespace fd; only this thread changes namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("thread in namespace panicked")
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

/// Runs a command, panicking with its stderr if it fails.
fn run(cmd: &str, args: &[&str]) {
    output(cmd, args);
}

fn output(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{cmd}` ({e}): install iproute2 and nftables"));
    assert!(
        out.status.success(),
        "`{cmd} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// ---------------------------------------------------------------------------
// The server.

/// tern running in the public namespace; killed on drop, its log printed
/// if the test is failing.
struct Tern {
    child: Child,
    log: tempfile::NamedTempFile,
}

impl Tern {
    fn start(net: &Topology) -> Self {
        let log = tempfile::NamedTempFile::new().expect("temp file");
        let listen1 = format!("{TERN_IP}:{PORT}");
        let listen2 = format!("{TERN_IP}:{PORT2}");
        let user = format!("{USER}:{PASS}");
        let child = Command::new("ip")
            .args(["netns", "exec", &net.public, env!("CARGO_BIN_EXE_tern")])
            .args(["--listen", &listen1, "--listen", &listen2])
            .args(["--relay-address", &TERN_IP.to_string()])
            .args(["--relay-ports", "49152-49407", "--workers", "2"])
            .args(["--user", &user, "--realm", REALM, "--log-level", "info"])
            .stdout(log.reopen().expect("log file"))
            .stderr(log.reopen().expect("log file"))
            .spawn()
            .expect("start tern");
        let mut tern = Self { child, log };
        tern.wait_ready(net);
        tern
    }

    fn addr(&self, port: u16) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(TERN_IP, port))
    }

    /// Ready when both listeners answer a Binding from the public namespace.
    fn wait_ready(&mut self, net: &Topology) {
        let sock = net.udp(&net.public);
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("set timeout");
        let deadline = Instant::now() + Duration::from_secs(20);
        for port in [PORT, PORT2] {
            while binding(&sock, self.addr(port), 1).is_none() {
                if let Some(status) = self.child.try_wait().expect("poll tern") {
                    panic!("tern exited during start-up: {status}");
                }
                assert!(
                    Instant::now() < deadline,
                    "tern did not answer on {port} in 20 s"
                );
            }
        }
    }
}

impl Drop for Tern {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            let mut log = String::new();
            let _ = self
                .log
                .reopen()
                .and_then(|mut f| f.read_to_string(&mut log));
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- tern log (last lines) ---");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// STUN helpers on plain sockets.

fn new_tid() -> TransactionId {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let mut tid = [0u8; 12];
    tid[..4].copy_from_slice(&std::process::id().to_be_bytes());
    tid[4..].copy_from_slice(&NEXT.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    TransactionId(tid)
}

/// Sends a Binding request up to `tries` times (one read timeout apart) and
/// returns XOR-MAPPED-ADDRESS from the first matching response.
fn binding(sock: &UdpSocket, server: SocketAddr, tries: u32) -> Option<SocketAddr> {
    let tid = new_tid();
    let mut req = Vec::new();
    MessageWriter::new(
        &mut req,
        MessageType::new(Method::BINDING, Class::Request),
        tid,
    )
    .push_fingerprint();
    let mut buf = [0u8; 1500];
    for _ in 0..tries {
        let _ = sock.send_to(&req, server);
        let deadline = Instant::now() + sock.read_timeout().ok()??;
        while Instant::now() < deadline {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                break;
            };
            let Ok(msg) = Message::parse(&buf[..n]) else {
                continue;
            };
            if from == server && msg.transaction_id() == tid && msg.class() == Class::Success {
                let v = msg.get(AttrType::XOR_MAPPED_ADDRESS)?;
                return decode_xor_addr(v, &tid).ok();
            }
        }
    }
    None
}

/// Each host sends to the other's STUN-learned address for a while; returns
/// how many packets arrived on either side.
fn hole_punch(a: &UdpSocket, b_pub: SocketAddr, b: &UdpSocket, a_pub: SocketAddr) -> usize {
    let mut got = 0;
    let mut buf = [0u8; 1500];
    for round in 0u8..5 {
        a.send_to(&[b'A', round], b_pub).expect("send punch");
        b.send_to(&[b'B', round], a_pub).expect("send punch");
        for sock in [a, b] {
            // One read timeout (300 ms) each: time for anything to arrive.
            while let Ok((n, from)) = sock.recv_from(&mut buf) {
                eprintln!("nat: hole punch packet {:?} from {from}", &buf[..n]);
                got += 1;
            }
        }
    }
    got
}

// ---------------------------------------------------------------------------
// A small TURN client: it controls exactly when Send indications and when
// ChannelData are used.

enum Transport {
    Udp { sock: UdpSocket, server: SocketAddr },
    Tcp { stream: TcpStream, buf: Vec<u8> },
}

impl Transport {
    fn send(&mut self, frame: &[u8]) {
        match self {
            Self::Udp { sock, server } => {
                sock.send_to(frame, *server).expect("UDP send");
            }
            Self::Tcp { stream, .. } => stream.write_all(frame).expect("TCP send"),
        }
    }

    /// The next frame from the server, or `None` after `timeout`.
    fn recv(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        match self {
            Self::Udp { sock, server } => {
                let mut buf = vec![0u8; 2048];
                while Instant::now() < deadline {
                    match sock.recv_from(&mut buf) {
                        Ok((n, from)) if from == *server => return Some(buf[..n].to_vec()),
                        Ok(_) => {}
                        Err(e) if is_timeout(&e) => {}
                        Err(e) => panic!("UDP receive: {e}"),
                    }
                }
                None
            }
            Self::Tcp { stream, buf } => loop {
                match frame_len(buf, 70_000).expect("bad frame from tern") {
                    Some(n) if buf.len() >= n => return Some(buf.drain(..n).collect()),
                    _ => {}
                }
                let left = deadline.checked_duration_since(Instant::now())?;
                stream
                    .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                    .expect("set timeout");
                let mut chunk = [0u8; 4096];
                match stream.read(&mut chunk) {
                    Ok(0) => panic!("tern closed the TCP connection"),
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(e) if is_timeout(&e) => return None,
                    Err(e) => panic!("TCP receive: {e}"),
                }
            },
        }
    }

    fn is_tcp(&self) -> bool {
        matches!(self, Self::Tcp { .. })
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// What arrived from a peer through the relay.
#[derive(Debug, PartialEq)]
enum Delivery {
    /// A Data indication with this XOR-PEER-ADDRESS.
    Data(SocketAddr),
    /// ChannelData on this channel.
    Channel(u16),
}

struct TurnClient {
    transport: Transport,
    key: LongTermKey,
    nonce: Vec<u8>,
    relay: SocketAddr,
}

impl TurnClient {
    fn udp(sock: UdpSocket, server: SocketAddr) -> Self {
        Self::new(Transport::Udp { sock, server })
    }

    fn tcp(stream: TcpStream) -> Self {
        Self::new(Transport::Tcp {
            stream,
            buf: Vec::new(),
        })
    }

    fn new(transport: Transport) -> Self {
        Self {
            transport,
            key: LongTermKey::derive(USER, REALM, PASS),
            nonce: Vec::new(),
            relay: SocketAddr::from(([0, 0, 0, 0], 0)),
        }
    }

    /// Sends a request and returns the response (success or error) with the
    /// same transaction id; UDP retransmits, TCP waits.
    fn transact(
        &mut self,
        method: Method,
        add: &dyn Fn(&mut MessageWriter<'_>),
        auth: bool,
    ) -> Vec<u8> {
        let tid = new_tid();
        let mut req = Vec::new();
        let mut w = MessageWriter::new(&mut req, MessageType::new(method, Class::Request), tid);
        add(&mut w);
        if auth {
            w.push(AttrType::USERNAME, USER.as_bytes())
                .push(AttrType::REALM, REALM.as_bytes())
                .push(AttrType::NONCE, &self.nonce)
                .push_integrity(&self.key.0);
        }
        w.push_fingerprint();
        let (tries, wait) = if self.transport.is_tcp() {
            (1, Duration::from_secs(5))
        } else {
            (10, Duration::from_millis(500))
        };
        for _ in 0..tries {
            self.transport.send(&req);
            let deadline = Instant::now() + wait;
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                let Some(frame) = self.transport.recv(left) else {
                    break;
                };
                match Message::parse(&frame) {
                    Ok(m) if m.transaction_id() == tid => return frame,
                    _ => {} // stray data or an old retransmitted answer
                }
            }
        }
        panic!("no response to {method:?}");
    }

    /// An authenticated request: the 401/438 dance, then a checked success.
    fn request(&mut self, method: Method, add: &dyn Fn(&mut MessageWriter<'_>)) -> Vec<u8> {
        for _ in 0..3 {
            let auth = !self.nonce.is_empty();
            let resp = self.transact(method, add, auth);
            let msg = Message::parse(&resp).expect("parse response");
            if msg.class() == Class::Success {
                msg.check_integrity(&self.key.0)
                    .unwrap_or_else(|e| panic!("{method:?} response integrity: {e:?}"));
                return resp;
            }
            let (code, reason) = msg
                .get(AttrType::ERROR_CODE)
                .and_then(|v| decode_error_code(v).ok())
                .expect("error response without ERROR-CODE");
            assert!(
                matches!(code, 401 | 438),
                "{method:?} failed: {code} {reason}"
            );
            let realm = msg.get(AttrType::REALM).expect("401 without REALM");
            assert_eq!(realm, REALM.as_bytes());
            self.nonce = msg
                .get(AttrType::NONCE)
                .expect("401 without NONCE")
                .to_vec();
        }
        panic!("{method:?}: authentication did not converge");
    }

    fn binding(&mut self) -> SocketAddr {
        let resp = self.transact(Method::BINDING, &|_| {}, false);
        let msg = Message::parse(&resp).expect("parse Binding response");
        assert_eq!(msg.class(), Class::Success, "Binding failed");
        let v = msg
            .get(AttrType::XOR_MAPPED_ADDRESS)
            .expect("XOR-MAPPED-ADDRESS");
        decode_xor_addr(v, &msg.transaction_id()).expect("decode mapped address")
    }

    fn allocate(&mut self) {
        let resp = self.request(Method::ALLOCATE, &|w| {
            // UDP (17) in the top byte (RFC 8656 §18.8).
            w.push_u32(AttrType::REQUESTED_TRANSPORT, 17 << 24);
        });
        let msg = Message::parse(&resp).expect("parse Allocate response");
        let v = msg
            .get(AttrType::XOR_RELAYED_ADDRESS)
            .expect("XOR-RELAYED-ADDRESS");
        self.relay = decode_xor_addr(v, &msg.transaction_id()).expect("relayed address");
        assert_eq!(self.relay.ip(), TERN_IP, "relayed address");
    }

    fn create_permission(&mut self, peer: SocketAddr) {
        self.request(Method::CREATE_PERMISSION, &|w| {
            w.push_xor_addr(AttrType::XOR_PEER_ADDRESS, peer);
        });
    }

    fn channel_bind(&mut self, channel: u16, peer: SocketAddr) {
        self.request(Method::CHANNEL_BIND, &|w| {
            w.push_u32(AttrType::CHANNEL_NUMBER, u32::from(channel) << 16)
                .push_xor_addr(AttrType::XOR_PEER_ADDRESS, peer);
        });
    }

    fn send_indication(&mut self, peer: SocketAddr, data: &[u8]) {
        let mut msg = Vec::new();
        let send = MessageType::new(Method::SEND, Class::Indication);
        MessageWriter::new(&mut msg, send, new_tid())
            .push_xor_addr(AttrType::XOR_PEER_ADDRESS, peer)
            .push(AttrType::DATA, data);
        self.transport.send(&msg);
    }

    fn send_channel(&mut self, channel: u16, data: &[u8]) {
        let number = ChannelNumber::new(channel).expect("channel number");
        let len = u16::try_from(data.len()).expect("payload fits");
        let mut frame = write_header(number, len).to_vec();
        frame.extend_from_slice(data);
        if self.transport.is_tcp() {
            // RFC 8656 §12.5: padded to 4 bytes over TCP.
            frame.resize(frame.len().next_multiple_of(4), 0);
        }
        self.transport.send(&frame);
    }

    /// The next relayed payload and how it came, or `None` after `timeout`.
    fn recv_data(&mut self, timeout: Duration) -> Option<(Delivery, Vec<u8>)> {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let frame = self.transport.recv(left)?;
            if let Ok(cd) = ChannelData::parse(&frame) {
                return Some((Delivery::Channel(cd.channel.get()), cd.payload.to_vec()));
            }
            let msg = Message::parse(&frame).expect("neither STUN nor ChannelData from tern");
            let data = MessageType::new(Method::DATA, Class::Indication);
            if msg.message_type() == data {
                let peer = msg
                    .get(AttrType::XOR_PEER_ADDRESS)
                    .expect("Data without peer");
                let peer = decode_xor_addr(peer, &msg.transaction_id()).expect("peer address");
                let payload = msg.get(AttrType::DATA).expect("Data without DATA");
                return Some((Delivery::Data(peer), payload.to_vec()));
            }
        }
        None
    }
}

// ---------------------------------------------------------------------------
// The relay-to-relay exchange.

/// Channel numbers: A's channel towards B's relay, and B's towards A's.
const CHANNEL_A: u16 = 0x4000;
const CHANNEL_B: u16 = 0x4ABC;

/// Allocates on both clients, permits each other's relay, exchanges
/// [`COUNT`] packets each way as Send indications, binds channels, and
/// exchanges [`COUNT`] more each way as ChannelData.
fn relay_both_ways(a: &mut TurnClient, b: &mut TurnClient, check: u8) {
    a.allocate();
    b.allocate();
    a.create_permission(b.relay);
    b.create_permission(a.relay);
    exchange(a, b, 2 * check, false);
    a.channel_bind(CHANNEL_A, b.relay);
    b.channel_bind(CHANNEL_B, a.relay);
    exchange(a, b, 2 * check + 1, true);
}

/// The payload of packet `seq` of `phase` in direction `dir`: a header, then
/// a pattern that depends on all three, of a length that varies with `seq`
/// (so ChannelData padding over TCP is exercised).
fn payload(phase: u8, dir: u8, seq: u32) -> Vec<u8> {
    let len = 16 + (seq as usize * 37) % 500;
    let mut p = vec![phase, dir, 0xA5, 0x5A];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend((8..len).map(|i| (seq as usize * 31 + i * 7 + usize::from(dir) * 101) as u8));
    p
}

/// Per direction: which sequence numbers arrived.
struct Receiver {
    dir: u8,
    seen: HashSet<u32>,
}

impl Receiver {
    /// Takes one delivery, failing on the wrong form, corruption or a duplicate.
    fn accept(&mut self, phase: u8, expect: &Delivery, (how, data): (Delivery, Vec<u8>)) {
        let name = if self.dir == 0 { "A→B" } else { "B→A" };
        assert_eq!(
            &how, expect,
            "phase {phase} {name}: delivered the wrong way"
        );
        let seq = data
            .get(4..8)
            .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
            .unwrap_or(u32::MAX);
        assert!(
            seq < COUNT && data == payload(phase, self.dir, seq),
            "phase {phase} {name}: corrupted packet ({} bytes): {:02x?}",
            data.len(),
            &data[..data.len().min(16)]
        );
        assert!(
            self.seen.insert(seq),
            "phase {phase} {name}: duplicate of packet {seq}"
        );
    }
}

/// Sends [`COUNT`] packets each way in windows and checks every one arrives
/// once, intact, in the expected form.
fn exchange(a: &mut TurnClient, b: &mut TurnClient, phase: u8, channel: bool) {
    let started = Instant::now();
    let (to_b, to_a) = if channel {
        (Delivery::Channel(CHANNEL_B), Delivery::Channel(CHANNEL_A))
    } else {
        (Delivery::Data(a.relay), Delivery::Data(b.relay))
    };
    let mut at_b = Receiver {
        dir: 0,
        seen: HashSet::new(),
    };
    let mut at_a = Receiver {
        dir: 1,
        seen: HashSet::new(),
    };
    let (a_relay, b_relay) = (a.relay, b.relay);
    for start in (0..COUNT).step_by(WINDOW as usize) {
        let end = (start + WINDOW).min(COUNT);
        for seq in start..end {
            let (ab, ba) = (payload(phase, 0, seq), payload(phase, 1, seq));
            if channel {
                a.send_channel(CHANNEL_A, &ab);
                b.send_channel(CHANNEL_B, &ba);
            } else {
                a.send_indication(b_relay, &ab);
                b.send_indication(a_relay, &ba);
            }
        }
        for (client, rx, expect) in [(&mut *b, &mut at_b, &to_b), (&mut *a, &mut at_a, &to_a)] {
            while rx.seen.len() < end as usize {
                let Some(got) = client.recv_data(Duration::from_secs(3)) else {
                    let missing: Vec<u32> = (0..end).filter(|s| !rx.seen.contains(s)).collect();
                    panic!("phase {phase} dir {}: lost packets {missing:?}", rx.dir);
                };
                rx.accept(phase, expect, got);
            }
        }
    }
    // Anything more (a late duplicate) would be a failure.
    for (client, rx, expect) in [(&mut *b, &mut at_b, &to_b), (&mut *a, &mut at_a, &to_a)] {
        if let Some(got) = client.recv_data(Duration::from_millis(200)) {
            rx.accept(phase, expect, got);
            panic!("phase {phase}: an extra packet arrived after all {COUNT}");
        }
    }
    eprintln!(
        "nat: phase {phase} ({}): {COUNT} packets each way in {:?}",
        if channel { "ChannelData" } else { "Send/Data" },
        started.elapsed()
    );
}
