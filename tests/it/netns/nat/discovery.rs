//! RFC 5780 NAT behaviour discovery through real NATs: tern in the public
//! namespace with `alternate_listen` (203.0.113.1:3478 and
//! 203.0.113.2:3479), host A behind router 1 (`masquerade
//! random,fully-random`: a fresh random port per flow, the symmetric NAT)
//! and host B behind router 2 switched to plain `masquerade` (Linux keeps
//! the source port when the flow's tuple stays unique, which it does for
//! every new destination: endpoint-independent mapping). Both routers drop
//! unsolicited inbound packets, and conntrack matches replies on the full
//! 5-tuple, so both filter by address and port.
//!
//! `tern::tools::client::nat` (RFC 5780 §4.3 and §4.4) must tell the two apart.
//! Without tern's CHANGE-REQUEST routing, OTHER-ADDRESS or the alternate
//! listeners the classification fails (no alternate, or no response).

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use tern::tools::client::nat::{Filtering, Mapping, filtering, mapping};

use super::super::namespace::{Tern, may_run, remove_stale_namespaces, run};
use super::super::{PASS, TERN_IP, USER};
use super::topology::Topology;
use super::{PORT, PORT2, R1_WAN, R2_WAN, REALM};

const TERN_IP2: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);
/// Namespace names start with this, then the test's PID (its own prefix, so
/// it runs alongside `nat_traversal` in the same process).
const NS_PREFIX: &str = "ternnd";
/// Sends per Binding before a test counts as "no response" (each one read
/// timeout, 300 ms, of the namespace sockets apart).
const TRIES: u32 = 3;

#[test]
fn nat_discovery_classifies_symmetric_and_endpoint_independent_mapping() {
    if !may_run(
        "nat_discovery_classifies_symmetric_and_endpoint_independent_mapping",
        "ip netns, veth, nftables",
        "sudo -E cargo test --test it netns::nat::discovery",
    ) {
        return;
    }
    remove_stale_namespaces(NS_PREFIX);
    let net = Topology::build(NS_PREFIX);
    // Router 2 becomes endpoint-independent: plain masquerade.
    nft(&net.r2, &["flush", "chain", "ip", "nat", "postrouting"]);
    nft(
        &net.r2,
        &["add rule ip nat postrouting oifname \"wan\" masquerade"],
    );
    run(
        "ip",
        &[
            "-n",
            &net.public,
            "addr",
            "add",
            "203.0.113.2/32",
            "dev",
            "lo",
        ],
    );
    let config = tempfile::NamedTempFile::new().expect("temp file");
    write!(
        config.as_file(),
        "[server]\nlisten = [\"{TERN_IP}:{PORT}\"]\nalternate_listen = \"{TERN_IP2}:{PORT2}\"\n\
         workers = 2\n[relay]\naddress = \"{TERN_IP}\"\nports = \"49152-49407\"\n\
         [auth]\nrealm = \"{REALM}\"\nusers = [{{ username = \"{USER}\", password = \"{PASS}\" }}]\n"
    )
    .expect("write config");
    let path = config.path().to_str().expect("utf-8 temp path").to_owned();
    let primary = SocketAddr::V4(SocketAddrV4::new(TERN_IP, PORT));
    let listeners = [
        (TERN_IP, PORT),
        (TERN_IP, PORT2),
        (TERN_IP2, PORT),
        (TERN_IP2, PORT2),
    ]
    .map(|(ip, port)| SocketAddr::V4(SocketAddrV4::new(ip, port)));
    let _tern = Tern::start_in(&net.public, &["--config", &path], &listeners);

    // Host A, symmetric NAT. fully-random draws each port at random, so two
    // flows share one about once in 64,000: a second socket settles it.
    let classify = |ns: &str| {
        let (m, seen) = mapping(&net.udp(ns), primary, TRIES)
            .unwrap_or_else(|e| panic!("mapping discovery from {ns}: {e}"));
        (m, seen)
    };
    let (mut a_map, a_seen) = classify(&net.a);
    if a_map != Mapping::AddressAndPortDependent {
        a_map = classify(&net.a).0;
    }
    assert_eq!(a_seen.ip(), R1_WAN, "host A seen as {a_seen}");
    assert_eq!(a_map, Mapping::AddressAndPortDependent, "host A's NAT");

    let (b_map, b_seen) = classify(&net.b);
    assert_eq!(b_seen.ip(), R2_WAN, "host B seen as {b_seen}");
    assert_eq!(b_map, Mapping::EndpointIndependent, "host B's NAT");

    for (name, ns) in [("A", &net.a), ("B", &net.b)] {
        let f = filtering(&net.udp(ns), primary, TRIES)
            .unwrap_or_else(|e| panic!("filtering discovery from host {name}: {e}"));
        assert_eq!(f, Filtering::AddressAndPortDependent, "host {name}'s NAT");
    }
    // Control: from the public namespace (no NAT, no filter) every
    // CHANGE-REQUEST response arrives, so the filtering seen above is the
    // routers' and not responses tern failed to send. (Mapping is not
    // checked there: tern's two IPs are local to that namespace, so the
    // kernel picks a different source IP towards each of them.)
    let f = filtering(&net.udp(&net.public), primary, TRIES).expect("filtering, public");
    assert_eq!(f, Filtering::EndpointIndependent, "public host");
    eprintln!(
        "nat discovery: A symmetric ({a_map:?}), B {b_map:?}, both filter by address and port"
    );
}

/// Runs `nft ARGS` in namespace `ns`.
fn nft(ns: &str, args: &[&str]) {
    let mut all = vec!["netns", "exec", ns, "nft"];
    all.extend_from_slice(args);
    run("ip", &all);
}
