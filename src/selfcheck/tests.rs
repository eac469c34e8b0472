use super::*;
use crate::config::{FileConfig, Overrides};
use crate::settings::TlsSettings;

const NOW: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

/// Settings that trigger nothing: public relay (a documentation address
/// stands in for one), 1000 allocations over 16384 ports.
fn settings() -> Settings {
    let mut f = FileConfig::embedded();
    f.server.listen = vec!["203.0.113.10:3478".to_owned()];
    f.relay.address = "203.0.113.10".to_owned();
    f.limits.max_allocations = 1000;
    f.limits.tcp_max_connections = 1000;
    f.resolve(
        &Overrides::default(),
        &crate::cmd::serve::SystemHost::with_nonce_key([0; 32]),
    )
    .unwrap()
}

fn facts() -> Facts {
    Facts {
        open_files_limit: Some(65_536),
        listener_ips: vec!["203.0.113.10".parse().unwrap()],
        cert_not_after: None,
        now_unix: NOW,
        rmem_max: Some(4 << 20),
        net_admin: false,
    }
}

#[test]
fn a_low_rmem_max_is_reported_unless_tern_may_pass_it() {
    let s = settings();
    let mut f = facts();
    assert!(check(&s, &f).is_empty());
    f.rmem_max = Some(212_992); // Debian's default
    let w = check(&s, &f);
    assert_eq!(w, vec![Warning::UdpBufferCapped { rmem_max: 212_992 }]);
    let text = w[0].to_string();
    assert!(
        text.contains("sysctl -w net.core.rmem_max=4194304"),
        "{text}"
    );
    f.net_admin = true;
    assert!(check(&s, &f).is_empty());
}

#[test]
fn a_sound_setup_gets_no_warning() {
    assert_eq!(check(&settings(), &facts()), []);
}

#[test]
fn private_relay_with_public_listener() {
    let mut s = settings();
    s.relay_ip = "10.0.0.5".parse().unwrap();
    let w = check(&s, &facts());
    assert_eq!(
        w,
        [Warning::RelayNotPublic {
            given: "10.0.0.5".parse().unwrap(),
            range: "private (RFC 1918)",
            listener: "203.0.113.10".parse().unwrap(),
        }]
    );
    assert!(
        w[0].to_string().contains("set relay.advertised_address"),
        "{}",
        w[0]
    );

    // Fixed by advertising the public address of the 1:1 NAT.
    s.advertised_ip = Some("203.0.113.10".parse().unwrap());
    assert_eq!(check(&s, &facts()), []);

    // A loopback relay on a loopback-only server is a test setup: fine.
    let mut s = settings();
    s.relay_ip = "127.0.0.1".parse().unwrap();
    let mut f = facts();
    f.listener_ips = vec!["127.0.0.1".parse().unwrap(), "10.0.0.5".parse().unwrap()];
    assert_eq!(check(&s, &f), []);
    // The IPv6 relay is checked too.
    let mut s = settings();
    s.relay_ip6 = Some("fd00::5".parse().unwrap());
    assert!(matches!(
        check(&s, &facts())[..],
        [Warning::RelayNotPublic {
            range: "unique local (ULA)",
            ..
        }]
    ));
}

#[test]
fn port_range_smaller_than_the_allocation_quota() {
    let mut s = settings();
    s.relay_ports = 50_000..=50_099;
    s.proto.limits.max_allocations = 101;
    let w = check(&s, &facts());
    assert_eq!(
        w,
        [Warning::PortsBelowQuota {
            low: 50_000,
            high: 50_099,
            max_allocations: 101
        }]
    );
    let text = w[0].to_string();
    assert!(text.contains("has 100 ports"), "{text}");
    assert!(
        text.contains("limits.max_allocations to at most 100"),
        "{text}"
    );
    s.proto.limits.max_allocations = 100;
    assert_eq!(check(&s, &facts()), []);
}

#[test]
fn open_files_limit_below_the_quotas() {
    let s = settings();
    let mut f = facts();
    // 1000 relay sockets + 1000 TCP connections + 256 spare = 2256.
    f.open_files_limit = Some(2255);
    let w = check(&s, &f);
    assert_eq!(
        w,
        [Warning::OpenFilesLow {
            limit: 2255,
            relay_sockets: 1000,
            tcp_connections: 1000
        }]
    );
    let text = w[0].to_string();
    assert!(text.contains("LimitNOFILE=3072"), "{text}");
    assert!(text.contains("ulimit -Hn 3072"), "{text}");
    f.open_files_limit = Some(2256);
    assert_eq!(check(&s, &f), []);
    f.open_files_limit = None;
    assert_eq!(check(&s, &f), []);
}

#[test]
fn certificate_expiring_or_expired() {
    let mut s = settings();
    s.tls = Some(TlsSettings {
        listen: vec!["203.0.113.10:5349".parse().unwrap()],
        cert: "/etc/tern/cert.pem".into(),
        key: "/etc/tern/key.pem".into(),
    });
    let mut f = facts();
    f.cert_not_after = Some(NOW + 5 * DAY + 60);
    let w = check(&s, &f);
    assert!(matches!(w[..], [Warning::CertExpiry { .. }]), "{w:?}");
    let text = w[0].to_string();
    assert!(text.contains("/etc/tern/cert.pem expires at"), "{text}");
    assert!(
        text.contains("(in 5 days)") && text.contains("SIGHUP"),
        "{text}"
    );

    f.cert_not_after = Some(NOW - 3 * DAY);
    let text = check(&s, &f)[0].to_string();
    assert!(
        text.contains("expired at") && text.contains("(3 days ago)"),
        "{text}"
    );

    f.cert_not_after = Some(NOW + CERT_WARN_DAYS * DAY);
    assert_eq!(check(&s, &f), []);
    // Without TLS the certificate is not looked at.
    s.tls = None;
    f.cert_not_after = Some(NOW - DAY);
    assert_eq!(check(&s, &f), []);
}

#[test]
fn utc_dates() {
    assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
    assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
    assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
}

#[test]
fn certificate_not_after_reads_the_leaf() {
    let mut params = rcgen::CertificateParams::new(vec!["turn.example".to_owned()]).unwrap();
    params.not_after = rcgen::date_time_ymd(2031, 3, 4);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cert.pem");
    std::fs::write(&path, cert.pem()).unwrap();
    let not_after = certificate_not_after(&path).unwrap();
    assert_eq!(utc(not_after), "2031-03-04 00:00:00 UTC");

    std::fs::write(&path, "not a certificate").unwrap();
    let e = certificate_not_after(&path).unwrap_err();
    assert!(matches!(e, CertExpiryError::NoCertificate { .. }), "{e}");
    let e = certificate_not_after(&dir.path().join("missing.pem")).unwrap_err();
    assert!(e.to_string().contains("missing.pem"), "{e}");
}
