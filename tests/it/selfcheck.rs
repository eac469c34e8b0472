//! The startup self-check through `tern check-config`: a config with too
//! few relay ports for its allocation quota and an expired certificate gets
//! both warnings, each naming what to change; a sound one gets none.

use std::path::Path;
use std::process::Command;

fn check_config(path: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(["check-config", "--config"])
        .arg(path)
        .env_remove("TERN_REST_SECRET")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "warnings must not fail the check: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Loopback listener and relay, 500 allocations, 100 TCP connections.
fn config(ports: &str, tls: Option<(&Path, &Path)>) -> String {
    let mut s = format!(
        "[server]\nlisten = [\"127.0.0.1:3478\"]\n[relay]\naddress = \"127.0.0.1\"\n\
         ports = \"{ports}\"\n[auth]\nusers = [{{ username = \"u\", password = \"p\" }}]\n\
         [limits]\nmax_allocations = 500\ntcp_max_connections = 100\n"
    );
    if let Some((c, k)) = tls {
        s.push_str(&format!(
            "[tls]\nlisten = [\"127.0.0.1:5349\"]\ncert = {c:?}\nkey = {k:?}\n"
        ));
    }
    s
}

#[test]
fn check_config_prints_self_check_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["turn.example".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (c, k) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();

    let path = dir.path().join("tern.toml");
    std::fs::write(&path, config("50000-50099", Some((&c, &k)))).unwrap();
    let out = check_config(&path);
    assert!(
        out.contains(
            "warning:    relay.ports 50000-50099 has 100 ports but limits.max_allocations is 500"
        ),
        "{out}"
    );
    assert!(
        out.contains("expired at 2021-01-01 00:00:00 UTC") && out.contains("SIGHUP"),
        "{out}"
    );
    assert_eq!(out.matches("warning:").count(), 2, "{out}");

    // Enough ports and no TLS: nothing to say.
    std::fs::write(&path, config("50000-50999", None)).unwrap();
    let out = check_config(&path);
    assert!(!out.contains("warning:"), "{out}");
}
