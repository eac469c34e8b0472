//! `[relay]`: the local and advertised relay addresses and the port range.

use std::net::IpAddr;
use std::ops::RangeInclusive;

use super::super::error::quoted;
use super::super::{ConfigError, FileConfig};
use super::Host;
use super::overrides::Ctx;
use super::parse::{parse_ip, parse_port_range};

/// The relay fields of `Settings`, checked against each other.
pub(super) struct RelayAddrs {
    pub(super) ip: IpAddr,
    pub(super) advertised: Option<IpAddr>,
    pub(super) ip6: Option<IpAddr>,
    pub(super) advertised6: Option<IpAddr>,
    pub(super) ports: RangeInclusive<u16>,
}

impl FileConfig {
    /// `[relay]`. `"auto"` asks `host` for the address.
    pub(super) fn resolve_relay(
        &self,
        ctx: &Ctx,
        host: &dyn Host,
    ) -> Result<RelayAddrs, ConfigError> {
        let r = &self.relay;
        let ip = match r.address.trim() {
            "auto" => host.detect_relay_ip(),
            a => relay_address(ctx, a)?,
        };
        let advertised = advertised_address(ctx, r.advertised_address.trim())?;
        let ip6 = optional_ip6(ctx, "relay.address6", &r.address6)?;
        let advertised6 = optional_ip6(ctx, "relay.advertised_address6", &r.advertised_address6)?;
        if ip6.is_some() && ip.is_ipv6() {
            return Err(ctx.err(
                "relay.address6",
                quoted(&r.address6),
                "is set while relay.address is already IPv6",
                "an IPv4 relay.address with an IPv6 relay.address6, or only relay.address",
            ));
        }
        if advertised6.is_some() && ip6.is_none() {
            return Err(ctx.err(
                "relay.advertised_address6",
                quoted(&r.advertised_address6),
                "is set without relay.address6",
                "set relay.address6 too, or leave this empty",
            ));
        }
        let ports = parse_port_range(&r.ports).map_err(|expected| {
            ctx.err(
                "relay.ports",
                quoted(&r.ports),
                "is not a port range",
                expected,
            )
        })?;
        Ok(RelayAddrs {
            ip,
            advertised,
            ip6,
            advertised6,
            ports,
        })
    }
}

/// `relay.address` when not "auto": one specific local IP.
fn relay_address(ctx: &Ctx, a: &str) -> Result<IpAddr, ConfigError> {
    let ip = parse_ip(
        ctx,
        "relay.address",
        a,
        "\"auto\" or a local IP, e.g. \"192.0.2.10\"",
    )?;
    if ip.is_unspecified() {
        return Err(ctx.err(
            "relay.address",
            quoted(a),
            "is the unspecified address, which cannot be given to clients",
            "\"auto\" or one specific local IP (set advertised_address for the public one)",
        ));
    }
    Ok(ip)
}

/// `relay.advertised_address`: empty, or an IP clients can reach.
fn advertised_address(ctx: &Ctx, a: &str) -> Result<Option<IpAddr>, ConfigError> {
    if a.is_empty() {
        return Ok(None);
    }
    let ip = parse_ip(
        ctx,
        "relay.advertised_address",
        a,
        "empty or the public IP, e.g. \"203.0.113.7\"",
    )?;
    if ip.is_unspecified() || ip.is_loopback() {
        return Err(ctx.err(
            "relay.advertised_address",
            quoted(a),
            "cannot be reached by clients",
            "the public IP of the 1:1 NAT, or empty",
        ));
    }
    Ok(Some(ip))
}

/// `relay.address6` / `relay.advertised_address6`: empty, or one specific IPv6 address.
fn optional_ip6(ctx: &Ctx, key: &str, v: &str) -> Result<Option<IpAddr>, ConfigError> {
    let a = v.trim();
    if a.is_empty() {
        return Ok(None);
    }
    let ip = parse_ip(
        ctx,
        key,
        a,
        "empty or an IPv6 address, e.g. \"2001:db8::10\"",
    )?;
    if !ip.is_ipv6() || ip.is_unspecified() {
        return Err(ctx.err(
            key,
            quoted(a),
            "is not a specific IPv6 address",
            "empty or one IPv6 address, e.g. \"2001:db8::10\"",
        ));
    }
    Ok(Some(ip))
}
