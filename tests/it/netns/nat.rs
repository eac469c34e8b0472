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
//! punching). Like home routers, they also drop unsolicited inbound packets
//! before conntrack records them, so the hole punch of check 2 is a fair
//! one: with plain `masquerade` (endpoint-independent, port-preserving) the
//! very same punch gets through. The public addresses are documentation ranges (RFC 5737) that
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

mod discovery;
mod topology;

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use topology::{Topology, punch_counter};

use super::client::{Delivery, TurnClient, binding};
use super::namespace::{Tern, may_run, remove_stale_namespaces};
use super::{PASS, TERN_IP, USER};

const PORT: u16 = 3478;
const PORT2: u16 = 3479;
const R1_WAN: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const R2_WAN: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
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
    if !may_run(
        "nat_traversal",
        "ip netns, veth, nftables",
        "sudo -E cargo test --test it netns::nat",
    ) {
        return;
    }
    let t0 = Instant::now();
    remove_stale_namespaces(NS_PREFIX);
    let net = Topology::build(NS_PREFIX);
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
    // fully-random draws each port at random, so two flows of one socket
    // share a port about once in 64,000 runs; a second socket settles that
    // case (an endpoint-independent NAT gives equal ports every time).
    for (name, ns, sock, first) in [
        ("A", &net.a, &a_sock, a_mapped),
        ("B", &net.b, &b_sock, b_mapped),
    ] {
        let ports = |sock: &UdpSocket, first: Option<SocketAddr>| {
            let first = first.or_else(|| binding(sock, tern.addr(PORT), 10));
            let first = first.expect("no Binding response on 3478");
            let second = binding(sock, tern.addr(PORT2), 10).expect("no Binding response on 3479");
            assert_eq!(first.ip(), second.ip(), "host {name}: public IP changed");
            (first.port(), second.port())
        };
        let (p1, p2) = ports(sock, Some(first));
        if p1 == p2 {
            let (q1, q2) = ports(&net.udp(ns), None);
            assert_ne!(
                q1, q2,
                "host {name}: same mapped port towards {PORT} and {PORT2}, twice: the NAT is not symmetric"
            );
        }
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

/// Each host sends to the other's STUN-learned address for a while; returns
/// how many packets arrived on either side.
fn hole_punch(a: &UdpSocket, b_pub: SocketAddr, b: &UdpSocket, a_pub: SocketAddr) -> usize {
    let mut got = 0;
    let mut buf = [0u8; 1500];
    let wait = Some(Duration::from_millis(100));
    for sock in [a, b] {
        sock.set_read_timeout(wait).expect("set timeout");
    }
    for round in 0u8..5 {
        a.send_to(&[b'A', round], b_pub).expect("send punch");
        b.send_to(&[b'B', round], a_pub).expect("send punch");
        for sock in [a, b] {
            // One read timeout each: ample on veths (microseconds).
            while let Ok((n, from)) = sock.recv_from(&mut buf) {
                eprintln!("nat: hole punch packet {:?} from {from}", &buf[..n]);
                got += 1;
            }
        }
    }
    got
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
