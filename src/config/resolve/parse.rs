//! Value parsers shared by the tables: each checks one value and, when it
//! is wrong, returns a `ConfigError` naming the key, the value and what
//! would be right.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use ipnet::IpNet;

use super::super::ConfigError;
use super::super::error::quoted;
use super::overrides::Ctx;

/// A list of distinct "IP:PORT" listener addresses.
pub(super) fn parse_listen(
    ctx: &Ctx,
    key: &str,
    list: &[String],
) -> Result<Vec<SocketAddr>, ConfigError> {
    let mut listen = Vec::with_capacity(list.len());
    for (i, a) in list.iter().enumerate() {
        let addr: SocketAddr = a.trim().parse().map_err(|_| {
            ctx.err(
                format!("{key}[{i}]"),
                quoted(a),
                "is not a socket address",
                "\"IP:PORT\", e.g. \"0.0.0.0:3478\" or \"[::]:3478\"",
            )
        })?;
        if listen.contains(&addr) {
            return Err(ctx.err(
                format!("{key}[{i}]"),
                quoted(a),
                "is listed twice",
                "each address once",
            ));
        }
        listen.push(addr);
    }
    Ok(listen)
}

pub(super) fn parse_ip(
    ctx: &Ctx,
    key: &str,
    v: &str,
    expected: &str,
) -> Result<IpAddr, ConfigError> {
    v.parse()
        .map_err(|_| ctx.err(key, quoted(v), "is not an IP address", expected))
}

pub(super) fn positive_secs(ctx: &Ctx, key: &str, v: u64) -> Result<Duration, ConfigError> {
    // One year: anything longer is a typo (and keeps Instant arithmetic far from overflow).
    const MAX: u64 = 365 * 24 * 3600;
    if v == 0 || v > MAX {
        return Err(ctx.err(
            key,
            v.to_string(),
            "is out of range",
            format!("1 <= seconds <= {MAX}"),
        ));
    }
    Ok(Duration::from_secs(v))
}

pub(super) fn nonzero<T: Copy + PartialEq + Default + ToString>(
    ctx: &Ctx,
    key: &str,
    v: T,
) -> Result<T, ConfigError> {
    if v == T::default() {
        return Err(ctx.err(
            key,
            "0",
            "is not a limit (0 does not mean unlimited)",
            "a positive number; pick a large one if you want no practical limit",
        ));
    }
    Ok(v)
}

pub(super) fn parse_nets(ctx: &Ctx, key: &str, list: &[String]) -> Result<Vec<IpNet>, ConfigError> {
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            let s = s.trim();
            // A bare IP means a single host.
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    ctx.err(
                        format!("{key}[{i}]"),
                        quoted(s),
                        "is not a CIDR",
                        "\"ADDRESS/PREFIX\", e.g. \"10.0.0.0/8\" or \"2001:db8::/32\"",
                    )
                })
        })
        .collect()
}

/// Parses "LOW-HIGH" (inclusive, 1 <= LOW <= HIGH <= 65535). The error is
/// the expectation, for use in a `ConfigError` or a clap message.
pub fn parse_port_range(s: &str) -> Result<RangeInclusive<u16>, String> {
    const EXPECTED: &str = "\"LOW-HIGH\" with 1 <= LOW <= HIGH <= 65535, e.g. \"49152-65535\"";
    let (lo, hi) = s.trim().split_once('-').ok_or(EXPECTED)?;
    let lo: u16 = lo.trim().parse().map_err(|_| EXPECTED)?;
    let hi: u16 = hi.trim().parse().map_err(|_| EXPECTED)?;
    if lo == 0 || lo > hi {
        return Err(EXPECTED.to_owned());
    }
    Ok(lo..=hi)
}
