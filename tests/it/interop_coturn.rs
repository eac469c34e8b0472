//! coturn's command line clients against tern: `turnutils_stunclient` and
//! `turnutils_uclient` (UDP and TCP, channels and Send indications, several
//! sessions, a bounded message count, zero loss).
//!
//! uclient flags used (see `turnutils_uclient` without arguments):
//! `-t` TCP to the server, `-s` Send indications instead of channels,
//! `-c` no RTCP sessions (without it every session is an RTP+RTCP pair),
//! `-m` sessions, `-n` messages per session, `-u`/`-w` user and password,
//! `-W` TURN REST secret, `-e`/`-r` peer address and port (`-r` is *not*
//! the realm: the realm comes from the server's 401), `-p` server port,
//! `-x` an IPv6 relay (REQUESTED-ADDRESS-FAMILY IPv6).
//! uclient exits 0 even with 100 % loss, so the tests parse its summary.
//!
//! uclient picks channel numbers from RFC 5766's 0x4000–0x7FFF, so these
//! servers turn on `allocation.rfc5766_channel_range` (tern answers 400 to
//! 0x5000–0x7FFF by default, RFC 8656 §12).

use std::process::Command;
use std::time::Duration;

use tern::proto::channel_data::ChannelRange;
use tern::proto::peer_policy::PeerPolicy;

use crate::harness::{
    EchoPeer, PASS, REST_SECRET, TestServer, USER, is_coturn, require_tool, run_tool, settings,
};

/// A server that accepts uclient's RFC 5766 channel numbers.
fn start() -> TestServer {
    let mut s = settings();
    s.proto.channel_range = ChannelRange::Rfc5766;
    TestServer::with(s)
}

/// As [`start`], for the REST credential test (coturn gets its REST-only setup).
fn start_rest() -> TestServer {
    if is_coturn() {
        return TestServer::start_rest();
    }
    start()
}

const TOOL_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn stunclient_gets_the_mapped_address() {
    let Some(tool) = require_tool("turnutils_stunclient") else {
        return;
    };
    let server = TestServer::start();
    let out = run_tool(
        Command::new(tool).args(["-p", &server.udp.port().to_string(), "127.0.0.1"]),
        TOOL_TIMEOUT,
    );
    assert!(out.success(), "turnutils_stunclient failed\n{out}");
    // "0: : IPv4. UDP reflexive addr: 127.0.0.1:51642"
    let text = format!("{}{}", out.stdout, out.stderr);
    let mapped = text
        .lines()
        .find_map(|l| {
            l.split_once("UDP reflexive addr: ")
                .map(|(_, a)| a.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no reflexive address in the output\n{out}"));
    let mapped: std::net::SocketAddr = mapped
        .parse()
        .unwrap_or_else(|_| panic!("bad address {mapped:?}\n{out}"));
    assert_eq!(mapped.ip().to_string(), "127.0.0.1", "{out}");
    assert_ne!(mapped.port(), 0, "{out}");
}

/// The totals uclient prints at the end.
#[derive(Debug, PartialEq, Eq)]
struct Totals {
    sent: u64,
    received: u64,
    lost: u64,
}

/// Parses the last "start_mclient: tot_send_msgs=200, tot_recv_msgs=200"
/// and "Total lost packets 0 (0.000000%), ..." lines.
fn parse_totals(text: &str) -> Option<Totals> {
    let number_after = |line: &str, key: &str| -> Option<u64> {
        let rest = &line[line.find(key)? + key.len()..];
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    let summary = text
        .lines()
        .rfind(|l| l.contains("tot_send_msgs=") && !l.contains("msz="))?;
    let lost = text.lines().rfind(|l| l.contains("Total lost packets"))?;
    Some(Totals {
        sent: number_after(summary, "tot_send_msgs=")?,
        received: number_after(summary, "tot_recv_msgs=")?,
        lost: number_after(lost, "Total lost packets ")?,
    })
}

/// Runs uclient with `flags` plus the usual server/peer/count options and
/// asserts every message came back.
fn uclient(flags: &[&str], credentials: &[&str], server: &TestServer) {
    uclient_with(flags, credentials, server, EchoPeer::start());
}

/// [`uclient`] with a given echo peer.
fn uclient_with(flags: &[&str], credentials: &[&str], server: &TestServer, peer: EchoPeer) {
    let Some(tool) = require_tool("turnutils_uclient") else {
        return;
    };
    let (sessions, messages) = (4, 50);
    let peer_ip = peer.addr.ip().to_string();
    let port = if flags.contains(&"-t") {
        server.tcp.port()
    } else {
        server.udp.port()
    };
    let out = run_tool(
        Command::new(tool)
            .args(flags)
            .args(credentials)
            .args(["-p", &port.to_string()])
            .args(["-e", &peer_ip, "-r", &peer.addr.port().to_string()])
            .args(["-m", &sessions.to_string(), "-n", &messages.to_string()])
            .arg("127.0.0.1"),
        TOOL_TIMEOUT,
    );
    let echoed = peer.stop();
    assert!(out.success(), "turnutils_uclient failed\n{out}");
    let text = format!("{}{}", out.stdout, out.stderr);
    let totals =
        parse_totals(&text).unwrap_or_else(|| panic!("no totals in the uclient output\n{out}"));
    let expected = sessions * messages;
    assert_eq!(
        totals,
        Totals {
            sent: expected,
            received: expected,
            lost: 0
        },
        "uclient {flags:?}: not every message made the round trip (the peer echoed {echoed})\n{out}"
    );
    assert!(
        echoed >= expected,
        "the peer echoed only {echoed} of {expected}\n{out}"
    );
}

const STATIC: [&str; 4] = ["-u", USER, "-w", PASS];

#[test]
fn uclient_udp_channels() {
    uclient(&["-c"], &STATIC, &start());
}

#[test]
fn uclient_udp_send_indications() {
    uclient(&["-c", "-s"], &STATIC, &start());
}

#[test]
fn uclient_tcp_channels() {
    uclient(&["-c", "-t"], &STATIC, &start());
}

#[test]
fn uclient_tcp_send_indications() {
    uclient(&["-c", "-t", "-s"], &STATIC, &start());
}

/// Without `-c` each session is an RTP/RTCP pair of allocations (8 here).
#[test]
fn uclient_udp_rtp_rtcp_pairs() {
    uclient(&[], &STATIC, &start());
}

/// RTP/RTCP pairs on IPv6 relays (`-x`): the RTP Allocate asks for an
/// IPv6 relay with EVEN-PORT (R bit); the RTCP Allocate redeems the
/// RESERVATION-TOKEN with no family and must get the reserved IPv6 port
/// (issue 14), or its peer on ::1 never hears from it.
#[test]
fn uclient_udp_rtp_rtcp_pairs_ipv6_relay() {
    if is_coturn() || std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("SKIPPED: needs tern (not coturn) and ::1");
        return;
    }
    let mut s = settings();
    s.proto.channel_range = ChannelRange::Rfc5766;
    s.relay_ip6 = Some("::1".parse().unwrap());
    s.proto.peer_policy = PeerPolicy::new(
        vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
        vec![],
    );
    let peer = EchoPeer::start_on("::1".parse().unwrap());
    uclient_with(&["-x"], &STATIC, &TestServer::with(s), peer);
}

/// `-W` makes uclient derive TURN REST credentials from the secret.
#[test]
fn uclient_udp_rest_credentials() {
    uclient(&["-c"], &["-u", "alice", "-W", REST_SECRET], &start_rest());
}

#[test]
fn parses_uclient_summary() {
    let text = "4: : start_mclient: msz=2, tot_send_msgs=0, tot_recv_msgs=0, tot_send_bytes ~ 0\n\
                4: : start_mclient: tot_send_msgs=200, tot_recv_msgs=134\n\
                4: : start_mclient: tot_send_bytes ~ 4000, tot_recv_bytes ~ 4000\n\
                4: : Total lost packets 66 (33.000000%), total send dropped 0 (0.000000%)\n";
    assert_eq!(
        parse_totals(text),
        Some(Totals {
            sent: 200,
            received: 134,
            lost: 66
        })
    );
    assert_eq!(parse_totals("connection refused"), None);
}
