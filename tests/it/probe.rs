//! `tern probe` (the binary) against a running server: the whole walk over
//! UDP, TCP and TLS (a private CA via `--ca`), REST and issuer
//! credentials, the JSON report, a `--count` run, and the failures a user
//! meets (wrong password, relay ports unreachable, an untrusted
//! certificate), each with its hint. The UDP/TCP tests use
//! [`TestServer`], so `TERN_IT_SERVER=coturn` runs them against coturn;
//! `probe_walks_coturn` runs against coturn in every mode.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tern::settings::TlsSettings;

use crate::harness::{self, PASS, REALM, REST_SECRET, TestServer, ToolOutput, USER, run_tool};

/// Generous: a failing data step waits 3 × 1 s, a dead server 5 s.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `tern probe ARGS`.
fn probe(args: &[&str]) -> ToolOutput {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tern"));
    cmd.arg("probe")
        .args(args)
        .env_remove("TERN_REST_SECRET")
        .env_remove("TERN_PASSWORD");
    run_tool(&mut cmd, PROBE_TIMEOUT)
}

/// Runs `tern probe URI --json` with the test user plus `extra`; the
/// parsed report.
fn probe_json(uri: &str, extra: &[&str]) -> (ToolOutput, Value) {
    let mut args = vec![uri, "--json", "--user", USER, "--password", PASS];
    args.extend_from_slice(extra);
    let out = probe(&args);
    let report = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("not one JSON object ({e}):\n{out}"));
    (out, report)
}

fn step_names(report: &Value) -> Vec<&str> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect()
}

/// Asserts a successful walk with every TURN step and the addresses seen.
fn assert_walked(out: &ToolOutput, report: &Value, connect: bool) {
    assert!(out.success(), "{out}");
    assert_eq!(report["ok"], true, "{out}");
    let mut want = vec!["resolve"];
    if connect {
        want.push("connect");
    }
    want.extend([
        "binding",
        "allocate",
        "allocate_peer",
        "permission",
        "channel_bind",
        "data",
        "refresh",
    ]);
    assert_eq!(step_names(report), want, "{out}");
    for step in report["steps"].as_array().unwrap() {
        assert_eq!(step["ok"], true, "{step}");
        assert!(step["ms"].as_f64().unwrap() >= 0.0, "{step}");
        assert!(step["detail"].is_string(), "{step}");
    }
    let relayed: SocketAddr = report["addresses"]["relayed"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let peer: SocketAddr = report["addresses"]["peer_relayed"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(relayed, peer, "two allocations, two relayed addresses");
    assert!(report["addresses"]["mapped"].is_string(), "{out}");
    assert!(report["hint"].is_null(), "{out}");
    // The Allocate step shows the 401 that taught the realm.
    let allocate = &report["steps"][want.iter().position(|s| *s == "allocate").unwrap()];
    assert!(
        allocate["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("401 (realm \"{REALM}\")")),
        "{allocate}"
    );
}

#[test]
fn probe_walks_udp_and_tcp() {
    let server = TestServer::start();
    let (out, report) = probe_json(&format!("turn:{}?transport=udp", server.udp), &[]);
    assert_walked(&out, &report, false);
    assert_eq!(report["transport"], "udp");
    let (out, report) = probe_json(&format!("turn:{}?transport=tcp", server.tcp), &[]);
    assert_walked(&out, &report, true);
    assert_eq!(report["transport"], "tcp");
}

#[test]
fn probe_text_report_and_rest_secret() {
    let server = TestServer::start_rest();
    let uri = format!("turn:{}", server.udp);
    let out = probe(&[&uri, "--rest-secret", REST_SECRET]);
    assert!(out.success(), "{out}");
    for line in ["ok   binding", "ok   data", "ok   refresh", "verdict: OK"] {
        assert!(out.stdout.contains(line), "missing {line:?}:\n{out}");
    }
    // A wrong secret is a refused credential, not a timeout.
    let out = probe(&[&uri, "--rest-secret", "not-the-secret"]);
    assert!(!out.success(), "{out}");
    assert!(out.stdout.contains("credentials refused"), "{out}");
}

#[test]
fn probe_count_reports_no_loss() {
    let server = TestServer::start();
    let uri = format!("turn:{}", server.udp);
    let (out, report) = probe_json(&uri, &["--count", "20", "--interval", "5"]);
    assert!(out.success(), "{out}");
    let ping = &report["ping"];
    assert_eq!(ping["sent"], 20, "{out}");
    assert_eq!(ping["received"], 20, "{out}");
    assert_eq!(ping["loss_percent"], 0.0, "{out}");
    let (min, max) = (ping["rtt_min_ms"].as_f64(), ping["rtt_max_ms"].as_f64());
    assert!(min.unwrap() <= max.unwrap(), "{out}");
    assert!(step_names(&report).contains(&"ping"), "{out}");
}

#[test]
fn wrong_password_fails_with_the_realm() {
    let server = TestServer::start();
    let uri = format!("turn:{}", server.udp);
    let out = probe(&[&uri, "--user", USER, "--password", "wrong"]);
    assert!(!out.success(), "{out}");
    assert!(
        out.stdout
            .contains(&format!("credentials refused (realm \"{REALM}\")")),
        "{out}"
    );
    assert!(out.stdout.contains("FAIL allocate"), "{out}");
    assert!(out.stderr.contains("probe failed at allocate"), "{out}");
}

#[test]
fn no_server_fails_at_binding() {
    // A port nothing listens on: bound here and never read.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    let (out, report) = probe_json(&format!("turn:{addr}"), &[]);
    assert!(!out.success(), "{out}");
    assert_eq!(report["failed_step"], "binding", "{out}");
    let hint = report["hint"].as_str().unwrap();
    assert!(
        hint.contains(&format!("no answer from {addr} over udp")),
        "{hint}"
    );
}

/// What a firewall in front of the relay ports looks like to the probe:
/// the allocations work, the relayed data never arrives. An advertised
/// address where nothing listens no longer shows it (tern, like coturn,
/// sends relay-to-relay traffic for its own advertised address to its
/// local relay sockets), so a 1 byte/s bandwidth limit drops every datagram.
#[test]
fn data_that_never_arrives_fails_at_data() {
    if harness::is_coturn() {
        return; // tern's limits.bandwidth_bytes_per_sec
    }
    let mut s = harness::settings();
    s.proto.limits.bandwidth_bytes_per_sec = Some(1);
    let server = TestServer::with(s);
    let (out, report) = probe_json(&format!("turn:{}", server.udp), &[]);
    assert!(!out.success(), "{out}");
    assert_eq!(report["failed_step"], "data", "{out}");
    let hint = report["hint"].as_str().unwrap();
    assert!(hint.contains("relay ports unreachable"), "{hint}");
    // The steps before data passed, and the walk stopped there.
    let names = step_names(&report);
    assert_eq!(names.last(), Some(&"data"), "{out}");
}

/// A CA and a leaf for 127.0.0.1 and localhost signed by it, as PEM files.
fn private_ca(dir: &Path) -> (std::path::PathBuf, TlsSettings) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let (ca_pem, cert, key) = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&ca_pem, ca.pem()).unwrap();
    std::fs::write(&cert, leaf.pem() + &ca.pem()).unwrap();
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
    let tls = TlsSettings {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        cert,
        key,
    };
    (ca_pem, tls)
}

#[test]
fn probe_walks_tls_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, tls) = private_ca(dir.path());
    // The default peer policy: the probe's peer is the server's own relay.
    let mut s = harness::settings_default_policy();
    s.tls = Some(tls);
    let handle = crate::tls::start(s).unwrap();
    let uri = format!("turns:{}", handle.tls_addrs()[0]);
    let (out, report) = probe_json(&uri, &["--ca", ca.to_str().unwrap()]);
    assert_walked(&out, &report, true);
    assert_eq!(report["transport"], "tls");
    // Without the CA the certificate is not trusted: connect fails, with the way out.
    let (out, report) = probe_json(&uri, &[]);
    assert!(!out.success(), "{out}");
    assert_eq!(report["failed_step"], "connect", "{out}");
    assert!(
        report["hint"].as_str().unwrap().contains("--ca FILE"),
        "{out}"
    );
    // --insecure skips the check.
    let (out, report) = probe_json(&uri, &["--insecure"]);
    assert_walked(&out, &report, true);
    handle.shutdown();
}

#[test]
fn probe_with_a_credential_from_the_issuer() {
    let server = TestServer::start_rest();
    let dir = tempfile::tempdir().unwrap();
    // The issuer behind tern's own HTTP server (what `issuer.listen` serves).
    let issuer = crate::issuer::issuer_for(&server, dir.path(), Vec::new());
    let http = tern::admin::start_issuer(std::sync::Arc::new(issuer), crate::issuer::unix_now)
        .unwrap_or_else(|e| panic!("{e}"));
    let tokens = dir.path().join("probe-token");
    std::fs::write(&tokens, format!("{}\n", crate::issuer::TOKEN)).unwrap();
    let url = format!("http://{}", http.local_addr());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tern"));
    cmd.env_remove("TERN_REST_SECRET")
        .env_remove("TERN_PASSWORD");
    cmd.args(["probe", &format!("turn:{}", server.udp), "--json"])
        .args(["--issuer", &url, "--token-file", tokens.to_str().unwrap()]);
    let out = run_tool(&mut cmd, PROBE_TIMEOUT);
    let report: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_walked(&out, &report, false);
    // A wrong token: the issuer's refusal, before any STUN.
    std::fs::write(&tokens, "not-a-token\n").unwrap();
    let out = run_tool(&mut cmd, PROBE_TIMEOUT);
    assert!(!out.success(), "{out}");
    assert!(out.stderr.contains("HTTP 401"), "{out}");
}

#[test]
fn probe_walks_coturn() {
    if harness::require_tool("turnserver").is_none() {
        return;
    }
    let server = harness::start_coturn(&harness::settings(), false);
    let (out, report) = probe_json(&format!("turn:{}?transport=udp", server.udp), &[]);
    assert_walked(&out, &report, false);
    let (out, report) = probe_json(&format!("turn:{}?transport=tcp", server.tcp), &[]);
    assert_walked(&out, &report, true);
    let out = probe(&[
        &format!("turn:{}", server.udp),
        "--user",
        USER,
        "--password",
        "x",
    ]);
    assert!(!out.success(), "{out}");
    assert!(
        out.stdout.contains("credentials refused (realm \"tern\")"),
        "{out}"
    );
}

/// A port free on 127.0.0.1 for UDP and TCP right now.
fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

#[test]
fn probe_against_tern_serve() {
    // The real thing: `tern serve` from a config file with the default peer
    // policy (the probe's peer is the server's own relay address).
    let dir = tempfile::tempdir().unwrap();
    let turn_port = free_port();
    let ports = harness::relay_ports();
    let config = dir.path().join("tern.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"127.0.0.1:{turn_port}\"]\nworkers = 1\n\
             [relay]\naddress = \"127.0.0.1\"\nports = \"{}-{}\"\n\
             [auth]\nrest_secrets = [\"{REST_SECRET}\"]\n\
             [admin]\nlisten = \"\"\n",
            ports.start(),
            ports.end(),
        ),
    )
    .unwrap();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_tern"));
    serve
        .args(["serve", "--config", config.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _server = harness::ChildGuard::spawn(&mut serve, "tern serve");
    // Readiness: a Binding is answered.
    let server: SocketAddr = ([127, 0, 0, 1], turn_port).into();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while tern::tools::client::binding(&sock, server, 1).is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "tern serve did not start"
        );
    }
    for uri in [
        format!("turn:{server}?transport=udp"),
        format!("turn:{server}?transport=tcp"),
    ] {
        let out = probe(&[&uri, "--json", "--rest-secret", REST_SECRET]);
        let report: Value = serde_json::from_str(out.stdout.trim())
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"));
        assert_walked(&out, &report, uri.ends_with("tcp"));
    }
}

#[test]
fn probe_reports_the_nat_type_when_the_server_has_an_alternate_address() {
    if harness::is_coturn() {
        return; // tern's alternate_listen; coturn: probe_reports_coturns_nat_type
    }
    let (_server, primary, _alternate) = crate::nat_discovery::discovery_server();
    let uri = format!("turn:{primary}?transport=udp");
    let (out, report) = probe_json(&uri, &[]);
    assert_walked(&out, &report, false);
    // Loopback: no NAT, so RFC 5780 finds endpoint-independent everything,
    // and only if tern answered from the alternate IP and port.
    let nat = &report["nat"];
    assert_eq!(nat["mapping"], "endpoint-independent", "{out}");
    assert_eq!(nat["filtering"], "endpoint-independent", "{out}");
    assert_eq!(nat["behind_nat"], false, "{out}");
    let out = probe(&[&uri, "--user", USER, "--password", PASS]);
    assert!(out.success(), "{out}");
    assert!(
        out.stdout
            .contains("nat: endpoint-independent mapping, endpoint-independent filtering (no NAT"),
        "{out}"
    );
}

#[test]
fn probe_says_why_there_is_no_nat_type() {
    let server = TestServer::start();
    let (out, report) = probe_json(&format!("turn:{}?transport=udp", server.udp), &[]);
    assert_walked(&out, &report, false);
    let nat = &report["nat"];
    assert!(
        nat["mapping"].is_null() && nat["filtering"].is_null(),
        "{out}"
    );
    let summary = nat["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("not available: server has no alternate address"),
        "{summary}"
    );
    assert!(summary.contains("[server] alternate_listen"), "{summary}");
    // Over TCP discovery does not run, and the report says so.
    let (out, report) = probe_json(&format!("turn:{}?transport=tcp", server.tcp), &[]);
    assert_walked(&out, &report, true);
    let summary = report["nat"]["summary"].as_str().unwrap();
    assert!(summary.contains("runs over UDP only"), "{summary}");
}

#[test]
fn probe_reports_coturns_nat_type() {
    if harness::require_tool("turnserver").is_none() {
        return;
    }
    // Two listening IPs: coturn's RFC 5780 alternate is 127.0.0.2 and the
    // port after the listening port.
    let server =
        harness::start_coturn_with(&harness::settings(), false, &["--listening-ip=127.0.0.2"]);
    let (out, report) = probe_json(&format!("turn:{}?transport=udp", server.udp), &[]);
    assert_walked(&out, &report, false);
    assert_eq!(report["nat"]["mapping"], "endpoint-independent", "{out}");
    assert_eq!(report["nat"]["filtering"], "endpoint-independent", "{out}");
}
