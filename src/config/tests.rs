//! Config tests: every shipped file parses and resolves; unknown keys are
//! rejected in every table (hickory `test_reject_unknown_fields`); each
//! check produces an error naming file, key and value.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::*;
use crate::secret::Secret;

const KEY: [u8; 32] = [9; 32];

/// The real host (interfaces, certificate files) with a fixed nonce key.
fn host() -> crate::cmd::serve::SystemHost {
    crate::cmd::serve::SystemHost::with_nonce_key(KEY)
}

fn shipped_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut files = Vec::new();
    for dir in [root.clone(), root.join("examples")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn resolve_str(text: &str) -> Result<crate::settings::Settings, ConfigError> {
    FileConfig::from_toml(text, "t.toml")?.resolve(&Overrides::default(), &host())
}

fn err(text: &str) -> String {
    resolve_str(text).expect_err("should fail").to_string()
}

#[test]
fn every_shipped_config_loads_and_resolves() {
    let files = shipped_files();
    assert!(files.len() >= 5, "{files:?}");
    let pem = tests_tls::TestPem::new();
    for path in files {
        let mut cfg = load(&path).unwrap_or_else(|e| panic!("{e}"));
        // Example TLS paths point at /etc; swap in a real pair.
        if !cfg.tls.listen.is_empty() {
            (cfg.tls.cert, cfg.tls.key) = pem.paths();
        }
        cfg.resolve(&Overrides::default(), &host())
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn embedded_equals_code_defaults_and_has_no_credentials() {
    let mut embedded = FileConfig::embedded();
    embedded.origin.clear();
    assert_eq!(embedded, FileConfig::default());
    let s = FileConfig::embedded()
        .resolve(&Overrides::default(), &host())
        .unwrap();
    assert!(s.proto.credentials.is_empty());
    assert_eq!(s.relay_ports, 49152..=65535);
    assert_eq!(s.udp_listen, s.tcp_listen);
    // An empty file is the same as the default.
    assert_eq!(
        FileConfig::from_toml("", "").unwrap(),
        FileConfig::default()
    );
}

#[test]
fn unknown_key_in_every_table_is_rejected() {
    let base: toml::Table = toml::from_str(EMBEDDED_DEFAULT).unwrap();
    let mut tables: Vec<Option<String>> = vec![None];
    tables.extend(
        base.iter()
            .filter(|(_, v)| v.is_table())
            .map(|(k, _)| Some(k.clone())),
    );
    assert_eq!(tables.len(), 12, "{tables:?}");
    for table in tables {
        let mut doc = base.clone();
        let target = match &table {
            None => &mut doc,
            Some(t) => doc.get_mut(t).unwrap().as_table_mut().unwrap(),
        };
        target.insert("bogus_key".into(), toml::Value::Integer(1));
        let text = toml::to_string(&doc).unwrap();
        let e = FileConfig::from_toml(&text, "tern.toml").expect_err("unknown key accepted");
        let msg = e.to_string();
        assert!(msg.starts_with("tern.toml:"), "{msg}");
        assert!(
            msg.contains("unknown field `bogus_key`"),
            "table {table:?}: {msg}"
        );
        if let Some(t) = &table {
            assert!(msg.contains(&format!("in [{t}]: ")), "{msg}");
        }
    }
    // And inside a user entry.
    let e = err("[auth]\nusers = [{ username = \"a\", password = \"p\", pasword = \"x\" }]");
    assert!(e.contains("unknown field `pasword`"), "{e}");
}

#[test]
fn syntax_error_shows_file_line_and_column() {
    let e = err("[server]\nworkers = 1\nudp = maybe\n");
    assert!(e.starts_with("t.toml:3:7: "), "{e}");
    assert!(e.contains("udp = maybe"), "{e}");
    let e = err("[server]\nworkers = \"two\"\n");
    assert!(e.starts_with("t.toml:2:"), "{e}");
}

#[test]
fn port_range_error_matches_house_style() {
    let e = err("[relay]\nports = \"70000-1\"");
    assert_eq!(
        e,
        "t.toml: relay.ports: \"70000-1\" is not a port range; expected \"LOW-HIGH\" with \
         1 <= LOW <= HIGH <= 65535, e.g. \"49152-65535\""
    );
    for bad in ["0-10", "10-5", "abc", "1-", "5"] {
        assert!(parse_port_range(bad).is_err(), "{bad}");
    }
    assert_eq!(parse_port_range("1-1"), Ok(1..=1));
    assert_eq!(parse_port_range(" 1000 - 2000 "), Ok(1000..=2000));
}

#[test]
fn user_needs_exactly_one_of_password_and_key() {
    let e = err(
        "[auth]\nusers = [{ username = \"bob\", password = \"p\", key = \"00112233445566778899aabbccddeeff\" }]",
    );
    assert!(
        e.contains("auth.users[0]: \"bob\" has both password and key"),
        "{e}"
    );
    let e = err("[auth]\nusers = [{ username = \"carol\" }]");
    assert!(
        e.contains("auth.users[0]: \"carol\" has neither password nor key"),
        "{e}"
    );
    let e = err("[auth]\nusers = [{ username = \"dan\", key = \"nothex\" }]");
    assert!(
        e.contains("auth.users[0].key") && e.contains("\"dan\"") && !e.contains("nothex"),
        "{e}"
    );
    let e = err(
        "[auth]\nusers = [{ username = \"a\", password = \"p\" }, { username = \"a\", password = \"q\" }]",
    );
    assert!(
        e.contains("auth.users[1].username: \"a\" is listed twice"),
        "{e}"
    );
}

#[test]
fn key_and_password_users_authenticate_alike() {
    let key = crate::proto::auth::LongTermKey::derive("bob", "r", "pw").to_hex();
    let text = format!(
        "[auth]\nrealm = \"r\"\nusers = [{{ username = \"alice\", password = \"pw\" }}, \
         {{ username = \"bob\", key = \"{key}\" }}]"
    );
    let s = resolve_str(&text).unwrap();
    let creds = &s.proto.credentials;
    assert_eq!(creds.user_count(), 2);
    let want = crate::proto::auth::LongTermKey::derive("bob", "r", "pw");
    assert_eq!(creds.keys_for("bob", "r", 0, |k| k == want), Ok(true));
    let want = crate::proto::auth::LongTermKey::derive("alice", "r", "pw");
    assert_eq!(creds.keys_for("alice", "r", 0, |k| k == want), Ok(true));
}

#[test]
fn key_sha256_users_use_sha256_and_bad_values_name_the_key() {
    use crate::proto::auth::{AlgKey, PasswordAlgorithm, Sha256Key};
    let k256 = Sha256Key::derive("carol", "r", "pw");
    let md5 = crate::proto::auth::LongTermKey::derive("carol", "r", "pw").to_hex();
    let text = format!(
        "[auth]\nrealm = \"r\"\nusers = [{{ username = \"carol\", key = \"{md5}\", \
         key_sha256 = \"{}\" }}]",
        k256.to_hex()
    );
    let s = resolve_str(&text).unwrap();
    let creds = &s.proto.credentials;
    let alg = PasswordAlgorithm::Sha256;
    let hit = creds.keys_for_alg("carol", "r", 0, alg, |k| k == AlgKey::Sha256(k256));
    assert_eq!(hit, Ok(true));
    assert_eq!(
        creds.keys_for("carol", "r", 0, |_| true),
        Ok(true),
        "MD5 key kept"
    );
    let e = err("[auth]\nusers = [{ username = \"c\", key_sha256 = \"abcd\" }]");
    assert!(
        e.contains("auth.users[0].key_sha256") && e.contains("tern key --algorithm sha256"),
        "{e}"
    );
    let e = err("[auth]\nusers = [{ username = \"c\", password = \"p\", key_sha256 = \"ab\" }]");
    assert!(e.contains("has both password and key_sha256"), "{e}");
}

#[test]
fn rfc5766_channel_range_is_off_by_default() {
    use crate::proto::channel_data::ChannelRange;
    let s = resolve_str("").unwrap();
    assert_eq!(s.proto.channel_range, ChannelRange::Rfc8656);
    let s = resolve_str("[allocation]\nrfc5766_channel_range = true").unwrap();
    assert_eq!(s.proto.channel_range, ChannelRange::Rfc5766);
}

#[test]
fn lifetimes_and_limits_are_checked() {
    let e = err("[allocation]\ndefault_lifetime_secs = 600\nmax_lifetime_secs = 300");
    assert!(
        e.contains(
            "allocation.max_lifetime_secs: 300 is less than allocation.default_lifetime_secs (600)"
        ),
        "{e}"
    );
    let e = err("[limits]\nmax_allocations = 0");
    assert!(
        e.contains("limits.max_allocations: 0 is not a limit"),
        "{e}"
    );
    let e = err("[limits]\ntcp_max_frame = 10");
    assert!(e.contains("limits.tcp_max_frame"), "{e}");
    let e = err("[auth]\nnonce_lifetime_secs = 0");
    assert!(
        e.contains("auth.nonce_lifetime_secs: 0 is out of range"),
        "{e}"
    );
}

#[test]
fn addresses_and_cidrs_are_checked() {
    let e = err("[server]\nlisten = [\"0.0.0.0\"]");
    assert!(
        e.contains("server.listen[0]: \"0.0.0.0\" is not a socket address"),
        "{e}"
    );
    let e = err("[server]\nlisten = []");
    assert!(e.contains("server.listen: [] is empty"), "{e}");
    let e = err("[server]\nudp = false\ntcp = false");
    assert!(e.contains("server.udp"), "{e}");
    let e = err("[relay]\naddress = \"0.0.0.0\"");
    assert!(
        e.contains("relay.address: \"0.0.0.0\" is the unspecified address"),
        "{e}"
    );
    let e = err("[relay]\naddress = \"nope\"");
    assert!(
        e.contains("relay.address: \"nope\" is not an IP address"),
        "{e}"
    );
    let e = err("[peers]\nallow = [\"10.0.0.0/33\"]");
    assert!(
        e.contains("peers.allow[0]: \"10.0.0.0/33\" is not a CIDR"),
        "{e}"
    );
    let e = err("[log]\nlevel = \"info,[[[\"");
    assert!(e.contains("log.level"), "{e}");
    let e = err("[log]\nformat = \"xml\"");
    assert!(e.contains("unknown variant `xml`"), "{e}");
}

#[test]
fn relay_and_peer_policy_wiring() {
    let s = resolve_str(
        "[server]\ntcp = false\nsoftware = \"tern\"\n[relay]\naddress = \"10.1.2.3\"\nadvertised_address = \"203.0.113.7\"\n\
         [peers]\nallow = [\"10.0.0.0/8\"]\ndeny = [\"10.9.0.0/16\", \"8.8.8.8\"]",
    )
    .unwrap();
    assert!(s.tcp_listen.is_empty());
    assert_eq!(s.proto.software.as_deref(), Some("tern"));
    assert_eq!(s.relay_ip, "10.1.2.3".parse::<IpAddr>().unwrap());
    assert_eq!(s.advertised_ip, Some("203.0.113.7".parse().unwrap()));
    let p = &s.proto.peer_policy;
    assert!(p.check("10.5.5.5".parse().unwrap()).is_ok());
    assert!(p.check("10.9.1.1".parse().unwrap()).is_err());
    assert!(p.check("8.8.8.8".parse().unwrap()).is_err());
    assert!(p.check("127.0.0.1".parse().unwrap()).is_err());
}

#[test]
fn overrides_replace_file_values_and_errors_name_the_flag() {
    let ov = Overrides {
        listen: vec!["127.0.0.1:0".into()],
        relay_address: Some("127.0.0.1".into()),
        relay_ports: Some("40000-40009".into()),
        realm: Some("r2".into()),
        users: vec![("u".into(), Secret::new("p".into()))],
        rest_secrets: vec![Secret::new("s".into())],
        workers: Some(2),
        ..Overrides::default()
    };
    let s = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config/examples/static-users.toml"))
        .unwrap()
        .resolve(&ov, &host())
        .unwrap();
    assert_eq!(s.udp_listen, ["127.0.0.1:0".parse().unwrap()]);
    assert_eq!(s.relay_ports, 40000..=40009);
    assert_eq!(s.proto.realm, "r2");
    assert_eq!(s.workers, 2);
    assert_eq!(s.proto.credentials.user_count(), 1);
    assert_eq!(s.proto.credentials.rest_secret_count(), 1);

    let ov = Overrides {
        relay_ports: Some("9-1".into()),
        ..Overrides::default()
    };
    let e = FileConfig::embedded()
        .resolve(&ov, &host())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("command line (--relay-ports): relay.ports: \"9-1\""),
        "{e}"
    );
}

#[test]
fn read_error_names_the_file() {
    let e = load(Path::new("/nonexistent/tern.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("/nonexistent/tern.toml: cannot read"), "{e}");
}

/// `resolve` returns the finished core config: the relay addresses (local
/// and advertised, both families) are the server's own peers on the relay
/// ports only, and the relay families are the ones configured. Nothing in
/// `io` adds them later.
#[test]
fn resolve_finishes_the_core_config() {
    let s = resolve_str(
        "[relay]\naddress = \"192.0.2.10\"\nadvertised_address = \"203.0.113.7\"\n\
         address6 = \"2001:db8::10\"\nports = \"50000-50009\"\n",
    )
    .unwrap();
    let p = &s.proto.peer_policy;
    for ip in ["192.0.2.10", "203.0.113.7", "2001:db8::10"] {
        let ip: IpAddr = ip.parse().unwrap();
        assert!(p.check_addr((ip, 50_000).into()).is_ok(), "{ip}");
        assert!(p.check_addr((ip, 50_009).into()).is_ok(), "{ip}");
        assert!(p.check_addr((ip, 3478).into()).is_err(), "{ip}");
    }
    assert!(s.proto.relay_ipv4 && s.proto.relay_ipv6);
    let v4_only = resolve_str("[relay]\naddress = \"192.0.2.10\"\n").unwrap();
    assert!(v4_only.proto.relay_ipv4 && !v4_only.proto.relay_ipv6);
    let v6_only = resolve_str("[relay]\naddress = \"2001:db8::10\"\n").unwrap();
    assert!(!v6_only.proto.relay_ipv4 && v6_only.proto.relay_ipv6);
}

#[test]
fn debug_never_shows_secrets() {
    let cfg = FileConfig::from_toml(
        "[auth]\nusers = [{ username = \"a\", password = \"hunter2\" }]\nrest_secrets = [\"s3cr3t\"]",
        "t",
    )
    .unwrap();
    let d = format!("{cfg:?}");
    assert!(!d.contains("hunter2") && !d.contains("s3cr3t"), "{d}");
}
