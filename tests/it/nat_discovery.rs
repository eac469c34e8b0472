//! RFC 5780 NAT behaviour discovery against coturn's `turnutils_natdiscovery`.
//!
//! tern listens on 127.0.0.1 and, as its alternate address, 127.0.0.2 (the
//! whole of 127.0.0.0/8 is local on Linux's `lo`, no alias needed), with
//! two ports: four UDP listeners. Between the client and tern there is no
//! NAT, so the tool must find endpoint-independent mapping and filtering;
//! it can only do so if tern answers CHANGE-REQUEST from the other IP and
//! port and names them in RESPONSE-ORIGIN and OTHER-ADDRESS. Without an
//! alternate address the tool finds nothing to classify.
//!
//! tern-only: skipped with `TERN_IT_SERVER=coturn`.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::Command;
use std::time::Duration;

use tern::proto::config::NatDiscovery;

use crate::harness::{TestServer, is_coturn, require_tool, run_tool, settings};

const TOOL_TIMEOUT: Duration = Duration::from_secs(30);
const IP1: [u8; 4] = [127, 0, 0, 1];
const IP2: [u8; 4] = [127, 0, 0, 2];

/// Two UDP ports free on both 127.0.0.1 and 127.0.0.2 right now.
fn two_free_ports() -> (u16, u16) {
    let one = || loop {
        let a = UdpSocket::bind(SocketAddr::from((IP1, 0))).unwrap();
        let port = a.local_addr().unwrap().port();
        if UdpSocket::bind(SocketAddr::from((IP2, port))).is_ok() {
            return (a, port);
        }
    };
    // Keep the first socket bound while the second port is picked.
    let (_a, p1) = one();
    let (_b, p2) = one();
    (p1, p2)
}

/// A tern with `alternate_listen = 127.0.0.2:P2` (the settings config
/// resolution produces for it).
pub(crate) fn discovery_server() -> (TestServer, SocketAddr, SocketAddr) {
    let (p1, p2) = two_free_ports();
    let primary = SocketAddr::from((IP1, p1));
    let alternate = SocketAddr::from((IP2, p2));
    let mut s = settings();
    s.udp_listen = vec![
        primary,
        SocketAddr::from((IP1, p2)),
        SocketAddr::from((IP2, p1)),
        alternate,
    ];
    s.proto.nat_discovery = Some(NatDiscovery {
        primary,
        alternate,
        public_primary: IpAddr::from(IP1),
        public_alternate: IpAddr::from(IP2),
    });
    (TestServer::with(s), primary, alternate)
}

fn natdiscovery(args: &[&str], server: SocketAddr) -> String {
    let tool = require_tool("turnutils_natdiscovery").expect("checked by the caller");
    let port = server.port().to_string();
    let out = run_tool(
        Command::new(tool)
            .args(args)
            .args(["-p", &port, &server.ip().to_string()]),
        TOOL_TIMEOUT,
    );
    assert!(
        out.success(),
        "turnutils_natdiscovery {args:?} failed\n{out}"
    );
    format!("{}{}", out.stdout, out.stderr)
}

/// "0: : IPv4. Response origin: : 127.0.0.2:3478" → the addresses named.
fn addrs_after(text: &str, label: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| l.split_once(label))
        .filter_map(|(_, a)| a.trim().parse().ok())
        .collect()
}

#[test]
fn natdiscovery_classifies_mapping_and_filtering() {
    if is_coturn() || require_tool("turnutils_natdiscovery").is_none() {
        return;
    }
    let (server, primary, alternate) = discovery_server();
    assert_eq!(server.udp, primary);
    for padding in [false, true] {
        let args: &[&str] = if padding {
            &["-m", "-f", "-P"]
        } else {
            &["-m", "-f"]
        };
        let text = natdiscovery(args, primary);
        assert!(
            text.contains("NAT with Endpoint Independent Mapping!"),
            "mapping not classified (padding {padding})\n{text}"
        );
        assert!(
            text.contains("NAT with Endpoint Independent Filtering!"),
            "filtering not classified (padding {padding})\n{text}"
        );
        // MAPPED-ADDRESS is sent and agrees with XOR-MAPPED-ADDRESS.
        assert!(text.contains("No ALG: Mapped == XOR-Mapped"), "{text}");
        // Every response names the alternate as OTHER-ADDRESS (Ca:Cp of
        // the address it was sent to), and responses came from the change
        // IP (mapping test 2) and change IP+port (filtering test 2) sources.
        let other = addrs_after(&text, "Other addr: : ");
        assert!(other.contains(&alternate), "{text}");
        let origins = addrs_after(&text, "Response origin: : ");
        for want in [SocketAddr::new(alternate.ip(), primary.port()), alternate] {
            assert!(origins.contains(&want), "no response from {want}\n{text}");
        }
    }
}

#[test]
fn natdiscovery_without_alternate_classifies_nothing() {
    if is_coturn() || require_tool("turnutils_natdiscovery").is_none() {
        return;
    }
    let server = TestServer::start();
    let text = natdiscovery(&["-m", "-f"], server.udp);
    // Binding works (the reflexive address is printed) ...
    assert!(text.contains("UDP reflexive addr: 127.0.0.1:"), "{text}");
    // ... but CHANGE-REQUEST gets 420 and no OTHER-ADDRESS is offered.
    assert!(!text.contains("NAT with"), "{text}");
    assert!(!text.contains("Other addr"), "{text}");
}
