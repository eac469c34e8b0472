//! `tern check-config`: load the file, apply the overrides, resolve, and
//! print what the server would run with (never a secret). Exits non-zero
//! with the `ConfigError` otherwise (hickory `--validate`, pingora `-t`).

use std::fmt::Write as _;

use crate::cli::{Cli, ServeArgs};
use crate::cmd::load_config;
use crate::cmd::serve::SystemHost;
use crate::settings::Settings;
use crate::telemetry::LogFormat;

pub fn run(cli: &Cli, args: &ServeArgs) -> anyhow::Result<()> {
    let file = load_config(cli.config.as_deref())?;
    let origin = file.origin.clone();
    let auto = file.relay.address.trim() == "auto" && args.relay_address.is_none();
    let overrides = args.overrides(cli.log_level.as_deref());
    let log_level = file.log_level(&overrides)?;
    let log_format = cli.log_format.unwrap_or(file.log.format);
    // The nonce key does not matter for a check; the rest of the host
    // (interface detection, certificate files) is the one serve would see.
    let (issuer, cluster) = (file.issuer.clone(), file.cluster.clone());
    let settings = file.resolve(&overrides, &SystemHost::with_nonce_key([0; 32]))?;
    // `[issuer]` and `[[cluster.nodes]]` resolve apart from `Settings` (the
    // admin runtime serves them); serve refuses to start on their errors,
    // so the check must too.
    let issuer = crate::issuer::resolve(&issuer, &cluster, &origin, &settings)?;
    print!("{}", summary(&origin, &settings, auto));
    match &issuer {
        Some(i) if !i.nodes.is_empty() => {
            println!("  issuer:     on, {} cluster node(s)", i.nodes.len());
        }
        Some(_) => println!("  issuer:     on"),
        None => println!("  issuer:     off"),
    }
    let log_format = match log_format {
        LogFormat::Text => "text",
        LogFormat::Json => "json",
    };
    println!("  log:        {log_level} ({log_format})");
    for w in crate::selfcheck::run(&settings) {
        println!("  warning:    {w}");
    }
    Ok(())
}

/// A human-readable summary of `settings`; shows counts, never secrets.
pub fn summary(origin: &str, s: &Settings, relay_auto: bool) -> String {
    let mut out = format!("{origin}: OK\n");
    // Writing to a String cannot fail.
    let _ = writeln!(out, "  udp:        {}", list(&s.udp_listen));
    let _ = writeln!(out, "  tcp:        {}", list(&s.tcp_listen));
    match &s.tls {
        Some(t) => {
            let _ = writeln!(
                out,
                "  tls:        {} (cert {})",
                list(&t.listen),
                t.cert.display()
            );
        }
        None => {
            let _ = writeln!(out, "  tls:        off");
        }
    }
    if !s.proxy_protocol.listen.is_empty() {
        let _ = writeln!(
            out,
            "  proxy:      PROXY protocol on {} from {} trusted range(s)",
            list(&s.proxy_protocol.listen),
            s.proxy_protocol.trusted.len()
        );
    }
    relay_lines(&mut out, s, relay_auto);
    limit_lines(&mut out, s);
    out
}

/// A listener list, or "off".
fn list(v: &[std::net::SocketAddr]) -> String {
    if v.is_empty() {
        "off".to_owned()
    } else {
        v.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Relay addresses, ports and workers.
fn relay_lines(out: &mut String, s: &Settings, relay_auto: bool) {
    let ports = s.relay_ports.end() - s.relay_ports.start() + 1;
    let _ = writeln!(
        out,
        "  relay:      {}{}",
        s.relay_ip,
        if relay_auto { " (auto-detected)" } else { "" }
    );
    let advertised = s
        .advertised_ip
        .map_or_else(|| "same as relay".to_owned(), |ip| ip.to_string());
    let _ = writeln!(out, "  advertised: {advertised}");
    if let Some(ip6) = s.relay_ip6 {
        let adv6 = s
            .advertised_ip6
            .map_or_else(|| "same".to_owned(), |ip| ip.to_string());
        let _ = writeln!(out, "  relay ipv6: {ip6} (advertised: {adv6})");
    }
    let _ = writeln!(
        out,
        "  ports:      {}-{} ({ports} ports)",
        s.relay_ports.start(),
        s.relay_ports.end()
    );
    let workers = if s.workers == 0 {
        "one per core".to_owned()
    } else {
        s.workers.to_string()
    };
    let _ = writeln!(
        out,
        "  workers:    {workers}, coalescing up to {} µs (adaptive)",
        s.coalesce.as_micros()
    );
}

/// Realm, credentials (counts only), lifetimes and limits.
fn limit_lines(out: &mut String, s: &Settings) {
    let p = &s.proto;
    let _ = writeln!(out, "  realm:      {}", p.realm);
    let (users, secrets) = (
        p.credentials.user_count(),
        p.credentials.rest_secret_count(),
    );
    if users + secrets == 0 {
        let _ = writeln!(
            out,
            "  auth:       none configured; serve will generate a user at start"
        );
    } else {
        let _ = writeln!(
            out,
            "  auth:       {users} static user(s), {secrets} REST secret(s)"
        );
    }
    let _ = writeln!(
        out,
        "  lifetimes:  default {}s, max {}s, nonce {}s",
        p.default_lifetime.as_secs(),
        p.max_lifetime.as_secs(),
        p.nonce_lifetime.as_secs()
    );
    let l = &p.limits;
    let _ = writeln!(
        out,
        "  limits:     {} allocations ({} per user), {} permissions, {} channels per allocation",
        l.max_allocations,
        l.max_allocations_per_user,
        l.max_permissions_per_allocation,
        l.max_channels_per_allocation
    );
    let _ = writeln!(
        out,
        "  tcp limits: {} connections ({} per IP), idle {}s, max frame {} bytes",
        s.tcp.max_connections,
        s.tcp.max_connections_per_ip,
        s.tcp.idle_timeout.as_secs(),
        s.tcp.max_frame
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FileConfig, Overrides};

    #[test]
    fn summary_counts_but_never_shows_secrets() {
        let mut file = FileConfig::embedded();
        file.auth.rest_secrets = vec![crate::secret::Secret::new("topsecret".to_owned())];
        let s = file
            .resolve(&Overrides::default(), &SystemHost::with_nonce_key([0; 32]))
            .unwrap();
        let out = summary("t.toml", &s, true);
        assert!(out.contains("0 static user(s), 1 REST secret(s)"), "{out}");
        assert!(out.contains("0.0.0.0:3478"), "{out}");
        assert!(!out.contains("topsecret"), "{out}");
    }
}
