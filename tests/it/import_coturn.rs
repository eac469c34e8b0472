//! `tern import-coturn` through the binary: Debian's turnserver.conf and
//! realistic configs convert into files `tern check-config` accepts, the
//! report names what was dropped, and a tern started from an imported file
//! relays data for the webrtc-rs client.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::harness::{
    ChildGuard, IO_TIMEOUT, PASS, USER, binding_request, relay_ports, require_tool,
};
use crate::turn_webrtc_rs::{allocate, relay_recv, relay_send};

fn tern() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tern"));
    cmd.env_remove("TERN_REST_SECRET")
        .env_remove("TERN_CONFIG")
        .env("RUST_LOG", "info")
        // `serve` runs: an ephemeral admin port, never the shared 9641.
        .env("TERN_ADMIN_LISTEN", "127.0.0.1:0");
    cmd
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Imports `conf` (written to `dir/turnserver.conf`) into `dir/tern.toml`;
/// returns its path and the stderr report.
fn import(dir: &Path, conf: &str) -> (PathBuf, String) {
    let input = dir.join("turnserver.conf");
    std::fs::write(&input, conf).unwrap();
    import_file(&input, dir)
}

fn import_file(input: &Path, dir: &Path) -> (PathBuf, String) {
    let output = dir.join("tern.toml");
    let out = tern()
        .arg("import-coturn")
        .arg(input)
        .arg("-o")
        .arg(&output)
        .output()
        .unwrap();
    assert!(out.status.success(), "import failed: {}", text(&out.stderr));
    (output, text(&out.stderr))
}

fn check_config(path: &Path) -> Output {
    let out = tern()
        .args(["check-config", "--config"])
        .arg(path)
        .output()
        .unwrap();
    let toml = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        out.status.success(),
        "check-config refused the imported file: {}\n{toml}",
        text(&out.stderr)
    );
    out
}

#[test]
fn debian_turnserver_conf_imports_and_checks() {
    let path = Path::new("/etc/turnserver.conf");
    if std::fs::metadata(path).is_err() {
        assert!(
            !std::env::var("TERN_REQUIRE_INTEROP").is_ok_and(|v| v == "1"),
            "/etc/turnserver.conf missing and TERN_REQUIRE_INTEROP=1: apt-get install coturn"
        );
        eprintln!("\n***** SKIPPED: no /etc/turnserver.conf (apt-get install coturn) *****\n");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (out, report) = import_file(path, dir.path());
    check_config(&out);
    // Debian's file turns on `syslog`, which tern does not carry over.
    assert!(
        report.contains("turnserver.conf:") && report.contains(": syslog: "),
        "{report}"
    );
}

/// A self-signed certificate and key in `dir`.
fn test_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let cert = rcgen::generate_simple_self_signed(vec!["turn.example".to_owned()]).unwrap();
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.cert.pem()).unwrap();
    std::fs::write(&k, cert.key_pair.serialize_pem()).unwrap();
    (c, k)
}

#[test]
fn realistic_coturn_configs_import_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = test_cert(dir.path());
    let configs = [
        // Static users, plain and 0x key.
        "listening-ip=127.0.0.1\nlistening-port=3478\nrelay-ip=127.0.0.1\nrealm=example.org\n\
         lt-cred-mech\nfingerprint\nuser=alice:wonderland\n\
         user=bob:0xbc807ee29df3c9ffa736523fb2c4e8ee\nuser-quota=10\ntotal-quota=1000\n\
         no-tls\nno-dtls\n"
            .to_owned(),
        // TURN REST secrets, rotated.
        "use-auth-secret\nstatic-auth-secret=north\nstatic-auth-secret=south\n\
         realm=turn.example.org\nstale-nonce=600\nmax-bps=125000\n"
            .to_owned(),
        // A cloud VM behind a 1:1 NAT.
        "listening-ip=10.0.0.5\nexternal-ip=203.0.113.7/10.0.0.5\nmin-port=40000\n\
         max-port=49999\nuser=u:p\n"
            .to_owned(),
        // Peer ranges (coturn's own example) and hardening flags.
        "user=u:p\ndenied-peer-ip=83.166.64.0-83.166.95.255\nallowed-peer-ip=83.166.68.45\n\
         denied-peer-ip=10.0.0.0-10.255.255.255\nno-multicast-peers\nno-loopback-peers\n"
            .to_owned(),
        // TLS with a certificate.
        format!(
            "listening-ip=127.0.0.1\ntls-listening-port=5349\ncert={}\npkey={}\nuser=u:p\n",
            cert.display(),
            key.display()
        ),
    ];
    for conf in configs {
        let sub = tempfile::tempdir_in(dir.path()).unwrap();
        let (out, report) = import(sub.path(), &conf);
        let summary = text(&check_config(&out).stdout);
        assert!(summary.contains(": OK"), "{summary}");
        if conf.contains("cert=") {
            assert!(summary.contains("tls:        127.0.0.1:5349"), "{summary}");
            // No no-dtls: the DTLS listener is reported as not carried over.
            assert!(report.contains(": dtls: "), "{report}");
        }
        if conf.contains("external-ip") {
            assert!(summary.contains("advertised: 203.0.113.7"), "{summary}");
        }
    }
}

#[test]
fn unknown_and_unsupported_keys_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (out, report) = import(
        dir.path(),
        "user=u:p\nprometheus\nalternate-server=192.0.2.1:3478\nno-such-option=1\n",
    );
    check_config(&out);
    assert!(
        report.contains("turnserver.conf:2: prometheus: not carried over"),
        "{report}"
    );
    assert!(
        report.contains("turnserver.conf:3: alternate-server: "),
        "{report}"
    );
    assert!(
        report.contains("turnserver.conf:4: no-such-option: unknown coturn option"),
        "{report}"
    );
    assert!(
        report.contains("3 coturn option(s) not carried over"),
        "{report}"
    );
    // The output is private: it may hold passwords.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&out).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o077,
        0,
        "imported file is readable by others: {mode:o}"
    );
}

/// A port free on 127.0.0.1 for UDP and TCP right now.
fn free_port() -> u16 {
    loop {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = u.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Starts `tern serve --config path`; returns once it logged the relay
/// addresses (after every listener is bound), which is its readiness signal.
fn serve(path: &Path) -> ChildGuard {
    let mut cmd = tern();
    cmd.args(["serve", "--config"])
        .arg(path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut guard = ChildGuard::spawn(&mut cmd, "tern serve");
    let stderr = guard.take_stderr();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("relay addresses clients will be given") {
                let _ = tx.send(line.clone());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("tern serve did not become ready");
    guard
}

/// The coturn file the relay tests use: loopback listener and relay, the
/// harness user, loopback peers allowed.
fn relay_test_conf(port: u16, ports: &RangeInclusive<u16>) -> String {
    format!(
        "# a coturn test setup\nlistening-ip=127.0.0.1\nlistening-port={port}\n\
         relay-ip=127.0.0.1\nmin-port={}\nmax-port={}\nrealm=tern\nlt-cred-mech\n\
         user={USER}:{PASS}\nallow-loopback-peers\nno-tls\nno-dtls\nno-cli\n",
        ports.start(),
        ports.end()
    )
}

/// Allocates on `server` with the webrtc-rs client and sends data to a
/// loopback peer and back through the relay.
async fn relay_round_trip(server: SocketAddr, ports: &RangeInclusive<u16>) {
    let a = allocate(server, USER, PASS).await.expect("Allocate");
    assert!(ports.contains(&a.relay_addr.port()), "{}", a.relay_addr);
    let peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let peer_addr = peer.local_addr().unwrap();

    relay_send(a.relay.as_ref(), b"to the peer", peer_addr).await;
    let mut buf = [0u8; 64];
    let (n, from) = tokio::time::timeout(IO_TIMEOUT, peer.recv_from(&mut buf))
        .await
        .expect("the peer got nothing through the relay")
        .unwrap();
    assert_eq!((&buf[..n], from), (&b"to the peer"[..], a.relay_addr));

    peer.send_to(b"back to the client", a.relay_addr)
        .await
        .unwrap();
    let (got, src) = relay_recv(a.relay.as_ref(), "peer -> client").await;
    assert_eq!(
        (got.as_slice(), src),
        (&b"back to the client"[..], peer_addr)
    );
    a.close().await;
}

#[tokio::test]
async fn tern_started_from_an_imported_config_relays() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let ports = relay_ports();
    let (out, report) = import(dir.path(), &relay_test_conf(port, &ports));
    assert!(report.starts_with("0 coturn option(s)"), "{report}");
    let _server = serve(&out);
    relay_round_trip(([127, 0, 0, 1], port).into(), &ports).await;
}

/// The test's coturn file is real coturn: `turnserver -c` relays with it
/// the same way (so the tern run above proves an equivalent import).
#[tokio::test]
async fn the_relay_test_conf_works_in_coturn_too() {
    let Some(turnserver) = require_tool("turnserver") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let ports = relay_ports();
    let conf = dir.path().join("turnserver.conf");
    std::fs::write(&conf, relay_test_conf(port, &ports)).unwrap();
    let _coturn = ChildGuard::spawn(
        Command::new(turnserver)
            .arg("-c")
            .arg(&conf)
            .args([
                "--log-file=stdout",
                "--pidfile",
                dir.path().join("pid").to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        "turnserver",
    );
    let server: SocketAddr = ([127, 0, 0, 1], port).into();
    // Readiness: coturn answers a Binding request.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "turnserver did not answer on {server}"
        );
        sock.send_to(&binding_request([5; 12]), server).unwrap();
        if sock.recv_from(&mut [0u8; 512]).is_ok() {
            break;
        }
    }
    relay_round_trip(server, &ports).await;
}
