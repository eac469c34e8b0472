//! `tern load` end to end: an in-process tern on 127.0.0.1, the `tern load`
//! binary against it for about a second at a low fixed rate, both
//! directions. Proves the tool works (packets come back, none lost); it is
//! not a performance assertion.

use std::process::Command;

use tern::proto::auth::Credentials;
use tern::proto::config::Config;
use tern::proto::peer_policy::PeerPolicy;
use tern::settings::SettingsBuilder;

fn start_tern(relay_ports: std::ops::RangeInclusive<u16>) -> tern::io::Handle {
    let mut creds = Credentials::new([5u8; 32]);
    creds.add_user_password("load", "tern", "pw");
    let mut proto = Config::new("tern", creds);
    proto.peer_policy = PeerPolicy::new(vec!["127.0.0.0/8".parse().unwrap()], vec![]);
    let settings = SettingsBuilder {
        udp_listen: vec!["127.0.0.1:0".parse().unwrap()],
        tcp_listen: vec![],
        relay_ip: "127.0.0.1".parse().unwrap(),
        advertised_ip: None,
        relay_ip6: None,
        advertised_ip6: None,
        relay_ports,
        workers: 1,
        coalesce: std::time::Duration::ZERO,
        tcp: Default::default(),
        tls: None,
        proxy_protocol: Default::default(),
        proto,
    }
    .build();
    tern::io::start(settings).expect("start tern")
}

fn json_field(line: &str, key: &str) -> f64 {
    let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {line}"))
}

/// Runs `tern load --json --user load:pw --server ADDR ARGS...` against a
/// fresh tern with relay ports `ports`; returns the JSON summary line.
fn run_load(ports: std::ops::RangeInclusive<u16>, args: &[&str]) -> String {
    let server = start_tern(ports);
    let addr = server.udp_addrs()[0].to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(["load", "--json", "--user", "load:pw", "--server", &addr])
        .args(args)
        .output()
        .expect("run tern load");
    server.shutdown();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tern load failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().last().expect("a JSON line").to_owned()
}

#[test]
fn load_delivers_everything_at_a_low_rate() {
    // Relay ports away from tests/it (50000..=59999).
    let line = run_load(
        61_000..=61_099,
        &[
            "-n",
            "4",
            "-s",
            "100",
            "-b",
            "4",
            "-r",
            "2000",
            "-t",
            "1",
            "--direction",
            "both",
            "--drain-ms",
            "1000",
        ],
    );
    assert!(json_field(&line, "delivered") > 0.0, "{line}");
    assert_eq!(json_field(&line, "loss_pct"), 0.0, "{line}");
    assert!(json_field(&line, "sent") >= 1000.0, "{line}");
}

#[test]
fn allocate_only_reports_a_rate() {
    let line = run_load(61_100..=61_199, &["--allocate-only", "-n", "50"]);
    assert!(json_field(&line, "allocate_per_s") > 0.0, "{line}");
}

#[test]
fn browser_like_load_relays_both_ways_and_relay_to_relay() {
    // 12 flows: 6 to UDP peers (both ways), 6 paired relay to relay.
    let line = run_load(
        61_200..=61_299,
        &[
            "--browser",
            "-n",
            "12",
            "-r",
            "2000",
            "-t",
            "1",
            "--drain-ms",
            "1000",
            "--server-pid",
            &std::process::id().to_string(),
        ],
    );
    assert!(json_field(&line, "sent") >= 1000.0, "{line}");
    assert_eq!(json_field(&line, "loss_pct"), 0.0, "{line}");
    // Relay-to-relay packets pass the server twice: relayed > delivered
    // only if they arrived.
    assert!(
        json_field(&line, "relayed") > json_field(&line, "delivered"),
        "{line}"
    );
    assert!(json_field(&line, "server_drops") >= 0.0, "{line}");
}
