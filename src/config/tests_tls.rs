//! `[tls]`, `[proxy_protocol]` and `limits.tcp_handshake_timeout_secs`:
//! resolved values, and errors that name the key and the path.

use std::path::PathBuf;

use super::*;

const KEY: [u8; 32] = [9; 32];

/// The real host (interfaces, certificate files) with a fixed nonce key.
fn host() -> crate::cmd::serve::SystemHost {
    crate::cmd::serve::SystemHost::with_nonce_key(KEY)
}

/// A self-signed certificate and its key as PEM files in a temp dir.
pub(super) struct TestPem {
    dir: tempfile::TempDir,
}

impl TestPem {
    pub(super) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        std::fs::write(dir.path().join("cert.pem"), ck.cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), ck.key_pair.serialize_pem()).unwrap();
        Self { dir }
    }

    pub(super) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// (cert, key) as config strings.
    pub(super) fn paths(&self) -> (String, String) {
        let s = |n| self.path(n).display().to_string();
        (s("cert.pem"), s("key.pem"))
    }
}

fn resolve(text: &str) -> Result<crate::settings::Settings, ConfigError> {
    FileConfig::from_toml(text, "t.toml")?.resolve(&Overrides::default(), &host())
}

fn tls_toml(pem: &TestPem, cert: &str, key: &str) -> String {
    let (c, k) = pem.paths();
    let cert = if cert.is_empty() { c } else { cert.to_owned() };
    let key = if key.is_empty() { k } else { key.to_owned() };
    format!(
        "[tls]\nlisten = [\"127.0.0.1:5349\", \"[::1]:5349\"]\ncert = {cert:?}\nkey = {key:?}\n"
    )
}

#[test]
fn tls_resolves_with_good_files() {
    let pem = TestPem::new();
    let s = resolve(&tls_toml(&pem, "", "")).unwrap();
    let tls = s.tls.expect("tls settings");
    assert_eq!(tls.listen.len(), 2);
    assert_eq!(tls.cert, pem.path("cert.pem"));
    assert_eq!(s.tcp.handshake_timeout.as_secs(), 10);
    assert!(resolve("").unwrap().tls.is_none());
}

#[test]
fn bad_certificate_paths_name_the_key_and_path() {
    let pem = TestPem::new();
    let e = resolve(&tls_toml(&pem, "/nonexistent/cert.pem", ""))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("t.toml: tls.cert: \"/nonexistent/cert.pem\" cannot be read"),
        "{e}"
    );
    let e = resolve(&tls_toml(&pem, "", "/nonexistent/key.pem"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("tls.key: \"/nonexistent/key.pem\" cannot be read"),
        "{e}"
    );

    // Swapped files: the key file has no certificate and vice versa.
    let (c, k) = pem.paths();
    let e = resolve(&tls_toml(&pem, &k, &c)).unwrap_err();
    assert_eq!(e.key(), Some("tls.cert"), "{e}");
    // A key from another certificate.
    let other = TestPem::new();
    let e = resolve(&tls_toml(&pem, "", &other.paths().1)).unwrap_err();
    assert_eq!(e.key(), Some("tls.key"), "{e}");
    assert!(
        e.to_string()
            .contains("cannot be used with the certificate"),
        "{e}"
    );
    // Listeners without files.
    let e = resolve("[tls]\nlisten = [\"127.0.0.1:5349\"]\n").unwrap_err();
    assert!(e.to_string().contains("tls.cert: \"\" is empty"), "{e}");
}

#[test]
fn tls_listener_must_not_clash_with_tcp() {
    let pem = TestPem::new();
    let (c, k) = pem.paths();
    let text = format!(
        "[server]\nlisten = [\"127.0.0.1:5349\"]\n[tls]\nlisten = [\"127.0.0.1:5349\"]\ncert = {c:?}\nkey = {k:?}\n"
    );
    let e = resolve(&text).unwrap_err();
    assert_eq!(e.key(), Some("tls.listen[0]"), "{e}");
}

#[test]
fn proxy_protocol_listeners_and_trust() {
    let ok = resolve(
        "[proxy_protocol]\nlisten = [\"0.0.0.0:3478\"]\ntrusted = [\"10.0.0.0/8\", \"192.0.2.1\"]\n",
    )
    .unwrap();
    assert_eq!(
        ok.proxy_protocol.listen,
        vec!["0.0.0.0:3478".parse().unwrap()]
    );
    assert_eq!(ok.proxy_protocol.trusted.len(), 2);

    let e = resolve("[proxy_protocol]\nlisten = [\"0.0.0.0:3478\"]\n").unwrap_err();
    assert_eq!(e.key(), Some("proxy_protocol.trusted"), "{e}");
    let e = resolve("[proxy_protocol]\nlisten = [\"0.0.0.0:9\"]\ntrusted = [\"10.0.0.0/8\"]\n")
        .unwrap_err();
    assert_eq!(e.key(), Some("proxy_protocol.listen[0]"), "{e}");
    // UDP-only server: no stream listener to put PROXY on.
    let e = resolve(
        "[server]\ntcp = false\n[proxy_protocol]\nlisten = [\"0.0.0.0:3478\"]\ntrusted = [\"10.0.0.0/8\"]\n",
    )
    .unwrap_err();
    assert_eq!(e.key(), Some("proxy_protocol.listen[0]"), "{e}");
    let e = resolve("[proxy_protocol]\nlisten = [\"0.0.0.0:3478\"]\ntrusted = [\"ten\"]\n")
        .unwrap_err();
    assert_eq!(e.key(), Some("proxy_protocol.trusted[0]"), "{e}");
}

#[test]
fn handshake_timeout_is_checked() {
    let e = resolve("[limits]\ntcp_handshake_timeout_secs = 0\n").unwrap_err();
    assert_eq!(e.key(), Some("limits.tcp_handshake_timeout_secs"), "{e}");
    let s = resolve("[limits]\ntcp_handshake_timeout_secs = 3\n").unwrap();
    assert_eq!(s.tcp.handshake_timeout.as_secs(), 3);
}

#[test]
fn tls_flags_override_the_file() {
    let pem = TestPem::new();
    let (c, k) = pem.paths();
    let ov = Overrides {
        tls_listen: vec!["[::1]:0".to_owned()],
        tls_cert: Some(c),
        tls_key: Some("/nonexistent/k.pem".to_owned()),
        ..Overrides::default()
    };
    let e = FileConfig::default()
        .resolve(&ov, &host())
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("command line (--tls-key): tls.key:"), "{e}");
    let ov = Overrides {
        tls_key: Some(k),
        ..ov
    };
    let s = FileConfig::default().resolve(&ov, &host()).unwrap();
    assert_eq!(s.tls.unwrap().listen, vec!["[::1]:0".parse().unwrap()]);
}
