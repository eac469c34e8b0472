//! Binary-level tests of `tern check-config`, `tern credential` and `tern key`.

#![allow(
    clippy::disallowed_methods,
    reason = "tests measure deadlines against the real clock; the clock wall is for the server code"
)]

use std::process::{Command, Output};

fn tern(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("TERN_REST_SECRET")
        .env_remove("TERN_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .expect("run tern")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn check_config_accepts_the_default_and_examples() {
    for file in [
        "config/tern.toml",
        "config/examples/static-users.toml",
        "config/examples/rest-api.toml",
        "config/examples/behind-1to1-nat.toml",
        "config/examples/hardened.toml",
    ] {
        let out = tern(&["check-config", "--config", file]);
        assert!(out.status.success(), "{file}: {}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(stdout.starts_with(&format!("{file}: OK")), "{stdout}");
        // Secrets never appear in the summary.
        assert!(
            !stdout.contains("replace-me") && !stdout.contains("horse"),
            "{stdout}"
        );
    }
}

#[test]
fn check_config_rejects_a_bad_file_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[relay]\nports = \"70000-1\"\n").unwrap();
    let out = tern(&["check-config", "--config", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("bad.toml: relay.ports: \"70000-1\" is not a port range"),
        "{stderr}"
    );

    std::fs::write(&path, "[peers]\nalow = []\n").unwrap();
    let out = tern(&["check-config", "--config", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("bad.toml:2:1: in [peers]: unknown field `alow`"),
        "{stderr}"
    );
}

/// `[[cluster.nodes]]` errors fail the check as they fail `tern serve`,
/// naming the file, the key and what was expected.
#[test]
fn check_config_checks_the_issuers_cluster_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.toml");
    let node = |admin: &str| {
        format!(
            "[[cluster.nodes]]\nname = \"b\"\nurls = [\"turn:turn-b.example.com:3478\"]\nadmin = \"{admin}\"\n"
        )
    };
    std::fs::write(&path, node("http://10.0.0.2:9641")).unwrap();
    let out = tern(&["check-config", "--config", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    std::fs::write(&path, node("http://turn-b:9641")).unwrap();
    let out = tern(&["check-config", "--config", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("fleet.toml: cluster.nodes[0].admin:")
            && stderr.contains("\"http://IP:PORT\""),
        "{stderr}"
    );
}

#[test]
fn check_config_names_a_bad_flag() {
    let out = tern(&["check-config", "--relay-ports", "5-1"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("command line (--relay-ports): relay.ports"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn credential_password_is_rest_hmac_of_username() {
    let out = tern(&["credential", "--secret", "s", "--user", "u", "--ttl", "60"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    let username = lines.next().unwrap().strip_prefix("username: ").unwrap();
    let password = lines.next().unwrap().strip_prefix("password: ").unwrap();
    assert!(username.ends_with(":u"), "{username}");
    assert_eq!(password, tern::proto::auth::rest_password(b"s", username));
}

#[test]
fn key_prints_the_long_term_key() {
    let out = tern(&["key", "--user", "bob", "--realm", "r", "--password", "pw"]);
    assert!(out.status.success());
    let want = tern::proto::auth::LongTermKey::derive("bob", "r", "pw").to_hex();
    assert_eq!(text(&out.stdout).trim(), want);
    let out = tern(&[
        "key",
        "--algorithm",
        "sha256",
        "--user",
        "bob",
        "--realm",
        "r",
        "--password",
        "pw",
    ]);
    assert!(out.status.success());
    let want = tern::proto::auth::Sha256Key::derive("bob", "r", "pw").to_hex();
    assert_eq!(text(&out.stdout).trim(), want);
    assert_eq!(want.len(), 64);
}

/// The whole life of an allocation at trace level, with a static user, a
/// REST secret, a wrong password and a REST credential: no password, REST
/// secret, long-term key or REST password appears anywhere in the logs.
#[test]
fn serve_logs_never_contain_credentials() {
    use std::net::UdpSocket;
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    const PASSWORD: &str = "pw-4f9c2e-never-logged";
    const SECRET: &str = "rest-secret-7d1a-never-logged";
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_tern"))
        .args([
            "--listen",
            &server.to_string(),
            "--relay-address",
            "127.0.0.1",
            "--workers",
            "1",
            "--admin-listen",
            "",
        ])
        .args([
            "--user",
            &format!("alice:{PASSWORD}"),
            "--rest-secret",
            SECRET,
        ])
        .args(["--log-level", "trace", "--log-format", "json"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Readiness: a Binding is answered.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while tern::tools::client::binding(&sock, server, 1).is_none() {
        assert!(Instant::now() < deadline, "server did not start");
    }
    let udp = || UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut c = tern::tools::client::Client::udp(udp(), server, "alice", PASSWORD);
    c.allocate().expect("allocate");
    c.refresh(0).expect("delete");
    let mut wrong = tern::tools::client::Client::udp(udp(), server, "alice", "not-the-password");
    assert_eq!(wrong.allocate().err().and_then(|e| e.code()), Some(401));
    let user = format!("{}:bob", 4_000_000_000u64);
    let rest_pw = tern::proto::auth::rest_password(SECRET.as_bytes(), &user);
    let mut rest = tern::tools::client::Client::udp(udp(), server, &user, &rest_pw);
    rest.allocate().expect("REST allocate");
    // SIGINT (stop at once: SIGTERM would drain until the REST allocation
    // ends), then read everything the server wrote.
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let logs = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        logs.contains("allocation created"),
        "trace logs were captured: {logs}"
    );
    let key = tern::proto::auth::LongTermKey::derive("alice", "tern", PASSWORD).to_hex();
    for secret in [PASSWORD, SECRET, key.as_str(), rest_pw.as_str()] {
        assert!(!logs.contains(secret), "{secret:?} leaked into the logs");
    }
}
