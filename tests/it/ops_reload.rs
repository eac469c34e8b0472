//! Live reload through the `tern` binary: SIGHUP and `POST /v1/reload`
//! while traffic flows. Nothing in flight is lost or ended; a bad file or
//! a change to a fixed key applies nothing.

use std::process::{Command, Stdio};

use tern::tools::client::{Client, Delivery};

use crate::harness::IO_TIMEOUT;
use crate::harness::{ChildGuard, EchoPeer};
use crate::ops::{PASS, Policy, Tern, USER};

const RELOADS_OK: &str = "tern_config_reloads_total{result=\"success\"}";
const RELOADS_ERR: &str = "tern_config_reloads_total{result=\"error\"}";
const UDP4: &str = "tern_allocations{transport=\"udp\",family=\"ipv4\"}";

/// `tern load` relays both ways at a low rate while users, REST secrets
/// and peer rules change by SIGHUP ten times: zero loss, zero allocations
/// ended. Then a file with an unknown key, and one that changes the realm
/// (fixed while running), are refused: the error counter moves, /status
/// says why, and the old configuration keeps serving.
#[test]
fn ten_sighup_reloads_under_load_lose_nothing() {
    let mut tern = Tern::spawn(&Policy::default(), None);
    tern.wait_ready();
    let mut load = Command::new(env!("CARGO_BIN_EXE_tern"));
    load.args(["load", "--json", "--user", &format!("{USER}:{PASS}")])
        .args(["--server", &tern.server.to_string()])
        .args(["-n", "4", "-s", "100", "-b", "2", "-r", "400", "-t", "6"])
        .args(["--direction", "both", "--drain-ms", "1000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let load = ChildGuard::spawn(&mut load, "tern load");
    // The load is relaying once its allocations exist and packets move.
    tern.wait_metric(UDP4, |v| v == 4.0);
    tern.wait_metric(
        "tern_relay_packets_total{direction=\"client_to_peer\"}",
        |v| v > 0.0,
    );

    for i in 0..10u32 {
        let policy = Policy {
            users: if i % 2 == 0 {
                vec![(USER, PASS), ("bob", "builder")]
            } else {
                vec![(USER, PASS)]
            },
            secrets: vec![format!("secret-{i}")],
            allow: vec!["127.0.0.0/8"],
            deny: vec![format!("10.{i}.0.0/16")],
            ..Policy::default()
        };
        tern.write_config(&policy, "");
        tern.signal(libc::SIGHUP);
        tern.wait_metric(RELOADS_OK, |v| v == f64::from(i + 1));
    }
    assert_eq!(tern.metric(UDP4), Some(4.0), "no allocation ended");
    assert_eq!(
        tern.metric("tern_allocation_duration_seconds_count"),
        Some(0.0),
        "no allocation ended"
    );

    // A bad file: nothing applied, the error counted and shown.
    tern.write_config(&Policy::default(), "[bogus]\nkey = 1\n");
    tern.signal(libc::SIGHUP);
    tern.wait_metric(RELOADS_ERR, |v| v == 1.0);
    let status: serde_json::Value = serde_json::from_str(&tern.get("/status").body).unwrap();
    assert_eq!(status["last_reload"]["ok"], false, "{status}");
    assert!(
        status["last_reload"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("bogus")),
        "{status}"
    );
    // A fixed key through the admin API: refused, naming the key.
    tern.write_config(&Policy::default(), "");
    let text = std::fs::read_to_string(&tern.config).unwrap();
    let realm = text.replace("[auth]\n", "[auth]\nrealm = \"other\"\n");
    std::fs::write(&tern.config, realm).unwrap();
    let r = tern.call("POST", "/v1/reload");
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("auth.realm"), "{}", r.body);
    assert_eq!(tern.metric(RELOADS_ERR), Some(2.0));

    let out = wait_output(load);
    let line = out.lines().last().expect("a JSON line from tern load");
    let v: serde_json::Value = serde_json::from_str(line).expect(line);
    assert!(v["delivered"].as_f64().unwrap_or(0.0) > 0.0, "{line}");
    assert_eq!(v["loss_pct"].as_f64(), Some(0.0), "{line}");
}

fn wait_output(mut load: ChildGuard) -> String {
    use std::io::Read;
    let mut stdout = load.take_stdout();
    let mut out = String::new();
    stdout.read_to_string(&mut out).unwrap();
    out
}

/// What a reload changes for live allocations: a removed user's
/// allocation keeps relaying until it ends, but its Refresh gets 401; a
/// peer rule taken away refuses new permissions (403) at once while the
/// existing channel relays on (Send indications are checked against the
/// policy per packet by the core, so those stop at once).
#[test]
fn reload_removes_a_user_and_a_peer_rule_without_ending_allocations() {
    let policy = Policy {
        users: vec![(USER, PASS), ("bob", "builder")],
        ..Policy::default()
    };
    let mut tern = Tern::spawn(&policy, None);
    tern.wait_ready();
    // Not 127.0.0.1: that is the relay address, which is always a
    // permitted peer; 127.0.0.2 is permitted only by the allow rule.
    let peer = EchoPeer::start_on([127, 0, 0, 2].into());
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut bob = Client::udp(sock, tern.server, "bob", "builder");
    bob.allocate().expect("Allocate bob");
    bob.channel_bind(0x4000, peer.addr).expect("ChannelBind");
    channel_round_trips(&mut bob, 0x4000, 2);

    let reloaded = Policy {
        users: vec![(USER, PASS)],
        allow: vec![],
        ..Policy::default()
    };
    tern.write_config(&reloaded, "");
    let r = tern.call("POST", "/v1/reload");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("users 2→1") && r.body.contains("peers"),
        "{}",
        r.body
    );

    channel_round_trips(&mut bob, 0x4000, 2);
    let list: serde_json::Value =
        serde_json::from_str(&tern.get("/v1/allocations?user=bob").body).unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(bob.refresh(600).unwrap_err().code(), Some(401));
    let mut alice = tern.client();
    alice.allocate().expect("Allocate alice");
    assert_eq!(
        alice.create_permission(peer.addr).unwrap_err().code(),
        Some(403),
        "loopback peers are denied again once the allow rule is gone"
    );
}

/// Bounces `n` datagrams off the echo peer bound to channel `ch`.
fn channel_round_trips(c: &mut Client, ch: u16, n: usize) {
    for i in 0..n {
        let payload = format!("chan {i}");
        c.send_channel(ch, payload.as_bytes()).unwrap();
        let got = c
            .recv_data(IO_TIMEOUT)
            .unwrap()
            .unwrap_or_else(|| panic!("{payload} not echoed"));
        assert_eq!(
            (got.0, got.1.as_slice()),
            (Delivery::Channel(ch), payload.as_bytes())
        );
    }
}
