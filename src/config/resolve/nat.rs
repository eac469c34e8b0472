//! `[server] alternate_listen` / `alternate_advertised_address`: RFC 5780
//! NAT behaviour discovery.

use std::net::{IpAddr, SocketAddr};

use super::overrides::Ctx;
use super::parse::parse_ip;
use crate::config::error::quoted;
use crate::config::{ConfigError, ServerSection};
use crate::proto::config::NatDiscovery;

const KEY: &str = "server.alternate_listen";
const ADV_KEY: &str = "server.alternate_advertised_address";

/// The discovery addresses and the three extra UDP listeners they need
/// (IP1:P2, IP2:P1, IP2:P2, minus any already in `listen`), or `None`
/// when `alternate_listen` is empty.
pub(super) fn resolve(
    ctx: &Ctx,
    s: &ServerSection,
    listen: &[SocketAddr],
    advertised_ip: Option<IpAddr>,
) -> Result<(Option<NatDiscovery>, Vec<SocketAddr>), ConfigError> {
    let raw = s.alternate_listen.trim();
    let adv_raw = s.alternate_advertised_address.trim();
    if raw.is_empty() {
        if !adv_raw.is_empty() {
            return Err(ctx.err(
                ADV_KEY,
                quoted(adv_raw),
                "is set but server.alternate_listen is empty",
                "empty, or set server.alternate_listen too",
            ));
        }
        return Ok((None, Vec::new()));
    }
    let alternate: SocketAddr = raw.parse().map_err(|_| {
        ctx.err(
            KEY,
            quoted(raw),
            "is not a socket address",
            "empty (off) or \"IP2:PORT2\", e.g. \"192.0.2.11:3479\"",
        )
    })?;
    if !s.udp {
        return Err(ctx.err(
            KEY,
            quoted(raw),
            "needs UDP, but server.udp is false",
            "udp = true (RFC 5780 discovery runs over UDP), or alternate_listen = \"\"",
        ));
    }
    let Some(&primary) = listen.iter().find(|a| a.is_ipv4() == alternate.is_ipv4()) else {
        return Err(ctx.err(
            KEY,
            quoted(raw),
            "has no server.listen address of the same family",
            "a server.listen entry \"IP1:PORT1\" of the same family as IP2",
        ));
    };
    check_distinct(ctx, raw, primary, alternate)?;
    let public_alternate = public_alternate(ctx, advertised_ip, adv_raw, alternate)?;
    let nat = NatDiscovery {
        primary,
        alternate,
        public_primary: advertised_ip
            .filter(|ip| ip.is_ipv4() == primary.is_ipv4())
            .unwrap_or(primary.ip()),
        public_alternate,
    };
    let extra = [
        SocketAddr::new(primary.ip(), alternate.port()),
        SocketAddr::new(alternate.ip(), primary.port()),
        alternate,
    ]
    .into_iter()
    .filter(|a| !listen.contains(a))
    .collect();
    Ok((Some(nat), extra))
}

/// IP2:PORT2 against IP1:PORT1: both specific, and IP and port both
/// different, so the four IP/port combinations are four distinct listeners.
fn check_distinct(
    ctx: &Ctx,
    raw: &str,
    primary: SocketAddr,
    alternate: SocketAddr,
) -> Result<(), ConfigError> {
    let fix = format!(
        "a specific IP and a fixed port in the first server.listen address of that family \
         (now {primary}), and an alternate_listen whose IP and port both differ from it"
    );
    if primary.ip().is_unspecified() || primary.port() == 0 {
        return Err(ctx.err(
            KEY,
            quoted(raw),
            format!("needs a primary address, but server.listen has {primary}"),
            fix,
        ));
    }
    if alternate.ip().is_unspecified() || alternate.port() == 0 {
        return Err(ctx.err(KEY, quoted(raw), "is a wildcard or port 0", fix));
    }
    if alternate.ip() == primary.ip() {
        return Err(ctx.err(
            KEY,
            quoted(raw),
            format!("has the same IP as server.listen ({primary})"),
            fix,
        ));
    }
    if alternate.port() == primary.port() {
        return Err(ctx.err(
            KEY,
            quoted(raw),
            format!("has the same port as server.listen ({primary})"),
            fix,
        ));
    }
    Ok(())
}

/// What clients see as IP2: `alternate_advertised_address`, required when
/// `relay.advertised_address` says the server is behind a 1:1 NAT.
fn public_alternate(
    ctx: &Ctx,
    advertised_ip: Option<IpAddr>,
    adv_raw: &str,
    alternate: SocketAddr,
) -> Result<IpAddr, ConfigError> {
    Ok(match (advertised_ip, adv_raw) {
        (_, "") if advertised_ip.is_none() => alternate.ip(),
        (Some(pub1), "") => {
            return Err(ctx.err(
                ADV_KEY,
                "\"\"",
                format!(
                    "is empty, but relay.advertised_address ({pub1}) says the server is behind a 1:1 NAT"
                ),
                "the public IP that maps to the IP of server.alternate_listen",
            ));
        }
        (_, a) => {
            let ip = parse_ip(
                ctx,
                ADV_KEY,
                a,
                "empty or a public IP, e.g. \"203.0.113.8\"",
            )?;
            if ip.is_unspecified() || ip.is_ipv4() != alternate.is_ipv4() {
                return Err(ctx.err(
                    ADV_KEY,
                    quoted(a),
                    "is unspecified or of another family than server.alternate_listen",
                    "the public IP of the same family that maps to IP2",
                ));
            }
            ip
        }
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{FileConfig, Overrides};

    fn resolve(toml: &str) -> Result<crate::settings::Settings, String> {
        let mut f: FileConfig = toml::from_str(toml).unwrap();
        f.origin = "t.toml".to_owned();
        let host = crate::cmd::serve::SystemHost::with_nonce_key([1; 32]);
        f.resolve(&Overrides::default(), &host)
            .map_err(|e| e.to_string())
    }

    const RELAY: &str = "[relay]\naddress = \"127.0.0.1\"\n";

    #[test]
    fn four_udp_listeners_and_the_core_config() {
        let s = resolve(&format!(
            "[server]\nlisten = [\"127.0.0.1:3478\"]\nalternate_listen = \"127.0.0.2:3479\"\n{RELAY}"
        ))
        .unwrap();
        let udp: Vec<String> = s.udp_listen.iter().map(|a| a.to_string()).collect();
        assert_eq!(
            udp,
            [
                "127.0.0.1:3478",
                "127.0.0.1:3479",
                "127.0.0.2:3478",
                "127.0.0.2:3479"
            ]
        );
        // Discovery is UDP only: TCP keeps the configured listener.
        assert_eq!(s.tcp_listen.len(), 1);
        let nat = s.proto.nat_discovery.unwrap();
        assert_eq!(nat.public_alternate.to_string(), "127.0.0.2");
        assert_eq!(nat.public_primary.to_string(), "127.0.0.1");
        assert!(resolve(RELAY).unwrap().proto.nat_discovery.is_none());
    }

    #[test]
    fn behind_one_to_one_nat_needs_the_alternate_public_ip() {
        let base = "[server]\nlisten = [\"10.0.0.1:3478\"]\nalternate_listen = \"10.0.0.2:3479\"\n";
        let nat = "[relay]\naddress = \"10.0.0.1\"\nadvertised_address = \"203.0.113.1\"\n";
        let e = resolve(&format!("{base}{nat}")).unwrap_err();
        assert!(
            e.contains("server.alternate_advertised_address") && e.contains("1:1 NAT"),
            "{e}"
        );
        let s = resolve(&format!(
            "{base}alternate_advertised_address = \"203.0.113.2\"\n{nat}"
        ))
        .unwrap();
        let n = s.proto.nat_discovery.unwrap();
        assert_eq!(
            (n.public_primary.to_string(), n.public_alternate.to_string()),
            ("203.0.113.1".to_owned(), "203.0.113.2".to_owned())
        );
    }

    #[test]
    fn clear_errors() {
        for (server, want) in [
            (
                "listen = [\"127.0.0.1:3478\"]\nalternate_listen = \"127.0.0.1:3479\"",
                "same IP",
            ),
            (
                "listen = [\"127.0.0.1:3478\"]\nalternate_listen = \"127.0.0.2:3478\"",
                "same port",
            ),
            (
                "listen = [\"0.0.0.0:3478\"]\nalternate_listen = \"127.0.0.2:3479\"",
                "needs a primary",
            ),
            (
                "listen = [\"127.0.0.1:3478\"]\nalternate_listen = \"nope\"",
                "not a socket address",
            ),
            (
                "listen = [\"127.0.0.1:3478\"]\nalternate_listen = \"[::1]:3479\"",
                "same family",
            ),
            (
                "listen = [\"127.0.0.1:3478\"]\nudp = false\nalternate_listen = \"127.0.0.2:3479\"",
                "needs UDP",
            ),
            (
                "alternate_advertised_address = \"203.0.113.2\"",
                "alternate_listen is empty",
            ),
        ] {
            let e = resolve(&format!("[server]\n{server}\n{RELAY}")).unwrap_err();
            assert!(e.starts_with("t.toml: server.alternate_"), "{e}");
            assert!(e.contains(want), "{server}: {e}");
        }
    }
}
