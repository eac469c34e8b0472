use super::*;
use crate::config::{FileConfig, Overrides};

fn convert(text: &str) -> (FileConfig, Import) {
    let imported = import(text, "test.conf");
    let file = FileConfig::from_toml(&imported.toml, "out.toml")
        .unwrap_or_else(|e| panic!("{e}\n{}", imported.toml));
    // Every output must also resolve (what `tern check-config` does).
    file.clone()
        .resolve(
            &Overrides::default(),
            &crate::cmd::serve::SystemHost::with_nonce_key([0; 32]),
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", imported.toml));
    (file, imported)
}

fn skipped_keys(i: &Import) -> Vec<(usize, &str)> {
    i.skipped.iter().map(|s| (s.line, s.key.as_str())).collect()
}

#[test]
fn lines_take_every_coturn_form() {
    let l = parse_lines(
        "# comment\n\n  listening-port=3479\nrealm example.org\nlt-cred-mech\n\
         --no-udp\npidfile=\"/run/t.pid\"\nuser=a:p#ss\nstale-nonce = 60\n",
    );
    let got: Vec<(usize, &str, Option<&str>)> = l
        .iter()
        .map(|l| (l.no, l.key.as_str(), l.value.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            (3, "listening-port", Some("3479")),
            (4, "realm", Some("example.org")),
            (5, "lt-cred-mech", None),
            (6, "no-udp", None),
            (7, "pidfile", Some("/run/t.pid")),
            (8, "user", Some("a:p#ss")),
            (9, "stale-nonce", Some("60")),
        ]
    );
}

#[test]
fn static_users_realm_ports_and_quotas_carry_over() {
    let (f, i) = convert(
        "listening-ip=127.0.0.1\nlistening-port=3479\nrelay-ip=127.0.0.1\nmin-port=40000\n\
         max-port=40999\nrealm=example.org\nlt-cred-mech\nuser=alice:wonder land\n\
         user=bob:0xBC807EE29DF3C9FFA736523FB2C4E8EE\nuser-quota=4\ntotal-quota=500\n\
         max-bps=125000\nstale-nonce\nmax-allocate-lifetime=300\nrelay-threads=2\nVerbose\n",
    );
    assert_eq!(f.server.listen, ["127.0.0.1:3479"]);
    assert_eq!(f.server.workers, 2);
    assert_eq!(f.relay.address, "127.0.0.1");
    assert_eq!(f.relay.ports, "40000-40999");
    assert_eq!(f.auth.realm, "example.org");
    assert_eq!(f.auth.nonce_lifetime_secs, 600);
    assert_eq!(f.auth.users.len(), 2);
    assert_eq!(
        f.auth.users[0].password.as_ref().unwrap().expose(),
        "wonder land"
    );
    assert_eq!(
        f.auth.users[1].key.as_ref().unwrap().expose(),
        "bc807ee29df3c9ffa736523fb2c4e8ee"
    );
    assert_eq!(f.limits.max_allocations_per_user, 4);
    assert_eq!(f.limits.max_allocations, 500);
    assert_eq!(f.limits.bandwidth_bytes_per_sec, Some(125_000));
    assert_eq!(f.allocation.max_lifetime_secs, 300);
    assert_eq!(f.allocation.default_lifetime_secs, 300);
    assert_eq!(f.log.level, "debug");
    assert!(i.has_secrets);
    assert!(i.skipped.is_empty(), "{:?}", i.skipped);
    assert!(i.toml.contains("lt-cred-mech (line 7)"), "{}", i.toml);
}

#[test]
fn rest_secrets_all_carry_over_and_mixing_is_explained() {
    let (f, i) =
        convert("use-auth-secret\nstatic-auth-secret=north\nstatic-auth-secret=south\nuser=u:p\n");
    let secrets: Vec<&str> = f
        .auth
        .rest_secrets
        .iter()
        .map(|s| s.expose().as_str())
        .collect();
    assert_eq!(secrets, ["north", "south"]);
    assert!(
        i.toml.contains("accepts the\n# static users above as well"),
        "{}",
        i.toml
    );

    let (_, i) = convert("use-auth-secret\n");
    assert_eq!(skipped_keys(&i), [(1, "use-auth-secret")]);
}

#[test]
fn external_ip_both_forms() {
    let (f, _) = convert("relay-ip=10.0.0.5\nexternal-ip=203.0.113.7\n");
    assert_eq!(
        (
            f.relay.address.as_str(),
            f.relay.advertised_address.as_str()
        ),
        ("10.0.0.5", "203.0.113.7")
    );
    // PUBLIC/PRIVATE without relay-ip: the private side is the relay address.
    let (f, i) = convert(
        "external-ip=203.0.113.7/10.0.0.5\nexternal-ip=203.0.113.8/10.0.0.6\n\
         external-ip=2001:db8::7/fd00::7\nrelay-ip=10.0.0.5\nrelay-ip=fd00::7\n",
    );
    assert_eq!(f.relay.address, "10.0.0.5");
    assert_eq!(f.relay.advertised_address, "203.0.113.7");
    assert_eq!(f.relay.address6, "fd00::7");
    assert_eq!(f.relay.advertised_address6, "2001:db8::7");
    assert_eq!(skipped_keys(&i), [(2, "external-ip")]);

    let (f, _) = convert("external-ip=203.0.113.7/10.0.0.5\n");
    assert_eq!(f.relay.address, "10.0.0.5");
    // A mapping for another relay address is reported, not applied.
    let (f, i) = convert("relay-ip=10.0.0.5\nexternal-ip=203.0.113.7/10.0.0.9\n");
    assert_eq!(f.relay.advertised_address, "");
    assert_eq!(skipped_keys(&i), [(2, "external-ip")]);
}

#[test]
fn peer_ranges_become_cidrs_with_coturn_precedence() {
    let (f, i) = convert(
        "denied-peer-ip=83.166.64.0-83.166.95.255\nallowed-peer-ip=83.166.68.45\n\
         denied-peer-ip=10.0.0.0-10.255.255.255\nallowed-peer-ip=10.1.2.0-10.1.2.255\n\
         allowed-peer-ip=127.0.0.1\nno-multicast-peers\n",
    );
    assert!(
        f.peers.deny.contains(&"10.0.0.0/16".to_owned()),
        "{:?}",
        f.peers.deny
    );
    assert!(!f.peers.deny.iter().any(|d| d == "10.0.0.0/8"));
    // Loopback stays closed: coturn refused it without allow-loopback-peers.
    assert_eq!(f.peers.allow, ["10.1.2.0/24", "83.166.68.45/32"]);
    assert!(i.toml.contains("no-multicast-peers (line 6)"), "{}", i.toml);
    assert!(i.skipped.is_empty(), "{:?}", i.skipped);

    let (f, i) = convert("allow-loopback-peers\n");
    assert_eq!(f.peers.allow, ["127.0.0.0/8", "::1/128"]);
    assert!(i.toml.contains("Only for tests"), "{}", i.toml);
    assert!(
        i.toml.contains("coturn allowed multicast peers"),
        "{}",
        i.toml
    );
}

#[test]
fn unknown_and_unsupported_options_are_reported_with_their_line() {
    let (_, i) = convert(
        "prometheus\nalternate-server=1.2.3.4:5678\nfrobnicate=7\nno-auth=off\n\
         user-quota=0\nstale-nonce=0\nsyslog\nlistening-port=abc\n",
    );
    let got = skipped_keys(&i);
    assert_eq!(
        got,
        [
            (1, "prometheus"),
            (2, "alternate-server"),
            (3, "frobnicate"),
            (5, "user-quota"),
            (6, "stale-nonce"),
            (7, "syslog"),
            (8, "listening-port"),
        ]
    );
    assert!(i.skipped[2].why.contains("unknown coturn option"));
    assert!(i.skipped[3].why.contains("max_allocations_per_user = 100"));
    assert!(i.skipped[2].to_string().starts_with("line 3: frobnicate: "));
}

#[test]
fn tls_needs_a_cert_and_its_own_port() {
    let (_, i) = convert("tls-listening-port=5350\n");
    assert_eq!(skipped_keys(&i), [(1, "tls-listening-port")]);
    let imported = import(
        "listening-ip=127.0.0.1\ncert=/c.pem\npkey=/k.pem\nno-dtls\ntls-listening-port=443\n",
        "t",
    );
    let f = FileConfig::from_toml(&imported.toml, "t").unwrap();
    assert_eq!(f.tls.listen, ["127.0.0.1:443"]);
    assert_eq!(
        (f.tls.cert.as_str(), f.tls.key.as_str()),
        ("/c.pem", "/k.pem")
    );
    assert!(imported.skipped.is_empty(), "{:?}", imported.skipped);
    let imported = import("cert=/c.pem\ntls-listening-port=3478\n", "t");
    assert_eq!(skipped_keys(&imported), [(2, "tls-listening-port")]);
}

#[test]
fn users_set_twice_keep_the_last() {
    let (f, i) = convert("user=a:one\nuser=a:two\n");
    assert_eq!(f.auth.users.len(), 1);
    assert_eq!(f.auth.users[0].password.as_ref().unwrap().expose(), "two");
    assert_eq!(skipped_keys(&i), [(1, "user")]);
    let (_, i) = convert("user=a:0x12\nuser=nocolon\n");
    assert_eq!(skipped_keys(&i), [(1, "user"), (2, "user")]);
}

#[test]
fn values_are_toml_escaped() {
    let (f, _) = convert("realm=a\\c\nuser=x:\"quoted\" and \\\n");
    assert_eq!(
        f.auth.users[0].password.as_ref().unwrap().expose(),
        "\"quoted\" and \\"
    );
    assert_eq!(f.auth.realm, "a\\c");
}

/// The file Debian's coturn package installs (every option commented but a
/// few flags). The CLI test makes its presence mandatory in CI.
#[test]
fn debian_turnserver_conf_converts() {
    let Ok(text) = std::fs::read_to_string("/etc/turnserver.conf") else {
        eprintln!("skipped: no /etc/turnserver.conf (tests/cli.rs requires it in CI)");
        return;
    };
    let (_, i) = convert(&text);
    assert!(
        i.skipped.iter().any(|s| s.key == "syslog"),
        "{:?}",
        i.skipped
    );
}

#[test]
fn a_listening_ip_listed_twice_is_listened_on_once() {
    let (f, i) = convert("listening-ip=127.0.0.1\nlistening-ip=127.0.0.1\n");
    assert_eq!(f.server.listen, ["127.0.0.1:3478"]);
    assert_eq!(skipped_keys(&i), [(2, "listening-ip")]);
}

#[test]
fn unusable_port_ranges_and_realms_are_reported_not_written() {
    let (f, i) = convert("min-port=50000\nmax-port=40000\nrealm=a\"b\n");
    assert_eq!(f.relay.ports, "49152-65535");
    assert_eq!(f.auth.realm, "tern");
    assert_eq!(
        skipped_keys(&i),
        [
            (1, "min-port/max-port"),
            (2, "min-port/max-port"),
            (3, "realm")
        ]
    );
}

mod prop {
    use proptest::prelude::*;

    use super::*;

    /// Option names tern maps (but cert/pkey), a few it reports, and one it
    /// does not know.
    const KEYS: &[&str] = &[
        "listening-ip",
        "listening-port",
        "tls-listening-port",
        "relay-ip",
        "external-ip",
        "min-port",
        "max-port",
        "realm",
        "user",
        "lt-cred-mech",
        "use-auth-secret",
        "static-auth-secret",
        "user-quota",
        "total-quota",
        "max-bps",
        "denied-peer-ip",
        "allowed-peer-ip",
        "no-multicast-peers",
        "allow-loopback-peers",
        "stale-nonce",
        "no-udp",
        "no-tcp",
        "no-tls",
        "prometheus",
        "alternate-server",
        "x",
    ];

    fn line() -> impl Strategy<Value = String> {
        let value = prop_oneof![
            "[0-9]{1,6}",
            "127\\.0\\.0\\.[12]",
            "(10|127|203)\\.0\\.[0-9]{1,3}\\.[0-9]{1,3}(-10\\.0\\.0\\.[0-9])?",
            "[0-9a-f:]{0,12}(/[0-9.]{1,9})?",
            "[a-z:\"#= \\\\]{0,12}",
        ];
        (proptest::sample::select(KEYS), proptest::option::of(value)).prop_map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k.to_owned(),
        })
    }

    proptest! {
        /// Whatever the input, the output is a file `tern check-config`
        /// accepts: every value is escaped, every key is one tern knows, and
        /// values tern would refuse are reported instead of written. (TLS
        /// files are left out: they must exist to pass.)
        #[test]
        fn output_always_parses(lines in proptest::collection::vec(line(), 0..12)) {
            let imported = import(&lines.join("\n"), "fuzz.conf");
            let file = FileConfig::from_toml(&imported.toml, "out");
            prop_assert!(file.is_ok(), "{}", imported.toml);
            let resolved = file.unwrap().resolve(&Overrides::default(), &crate::cmd::serve::SystemHost::with_nonce_key([0; 32]));
            prop_assert!(resolved.is_ok(), "{:?}\n{}", resolved.err(), imported.toml);
        }
    }
}
