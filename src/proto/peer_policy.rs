//! Which peer addresses a client may relay to.
//!
//! A TURN server is a door into the network it sits in (CVE-2020-26262), so
//! by default tern refuses loopback, private, link-local, CGNAT, multicast,
//! reserved and unspecified peers. The operator can open ranges with an
//! allow list (an allow entry beats a default deny) and close more with a
//! deny list. The server's own relay addresses are always allowed so two
//! clients on one server can reach each other.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Why a peer was refused (carried into the debug log and metrics).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Deny {
    /// In one of the built-in dangerous ranges; the string names it.
    Default(&'static str),
    /// In the operator's deny list.
    Configured(IpNet),
}

impl std::fmt::Display for Deny {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Default(what) => write!(f, "default deny: {what}"),
            Self::Configured(net) => write!(f, "denied by config: {net}"),
        }
    }
}

/// The default-denied ranges and what each one is.
pub const DEFAULT_DENY: &[(&str, &str)] = &[
    ("0.0.0.0/8", "unspecified/this-network"),
    ("10.0.0.0/8", "private (RFC 1918)"),
    ("100.64.0.0/10", "carrier-grade NAT (RFC 6598)"),
    ("127.0.0.0/8", "loopback"),
    (
        "169.254.0.0/16",
        "link-local (incl. cloud metadata 169.254.169.254)",
    ),
    ("172.16.0.0/12", "private (RFC 1918)"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.168.0.0/16", "private (RFC 1918)"),
    ("198.18.0.0/15", "benchmarking"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved and broadcast"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("fc00::/7", "unique local (ULA)"),
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
];

/// The peer policy.
#[derive(Clone, Debug)]
pub struct PeerPolicy {
    default_deny: Vec<(IpNet, &'static str)>,
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
    /// The server's relay addresses (always allowed, on relay ports).
    relay_ips: Vec<IpAddr>,
    /// The relay port range: on the server's own addresses only these ports are peers.
    relay_ports: (u16, u16),
}

impl Default for PeerPolicy {
    fn default() -> Self {
        Self::new(Vec::new(), Vec::new())
    }
}

impl PeerPolicy {
    pub fn new(allow: Vec<IpNet>, deny: Vec<IpNet>) -> Self {
        let default_deny = DEFAULT_DENY
            .iter()
            // invariant: the table above holds valid CIDRs (tested).
            .map(|(net, what)| (net.parse().expect("valid CIDR"), *what))
            .collect();
        Self {
            default_deny,
            allow,
            deny,
            relay_ips: Vec::new(),
            relay_ports: (0, 65535),
        }
    }

    /// Adds one of the server's own relay addresses, which is always allowed.
    pub fn add_relay_ip(&mut self, ip: IpAddr) {
        let ip = canonical(ip);
        if !self.relay_ips.contains(&ip) {
            self.relay_ips.push(ip);
        }
    }

    /// Sets the relay port range; other ports of the server's own relay
    /// addresses (its listeners, say) are not peers.
    pub fn set_relay_ports(&mut self, low: u16, high: u16) {
        self.relay_ports = (low, high);
    }

    /// Decides whether the transport address `addr` may be a peer: as
    /// [`PeerPolicy::check`], but on the server's own relay addresses only
    /// the relay ports are allowed (no relaying into its own listeners)
    /// unless the operator's allow list names the address.
    pub fn check_addr(&self, addr: std::net::SocketAddr) -> Result<(), Deny> {
        let ip = canonical(addr.ip());
        if let Some(net) = self.deny.iter().find(|n| n.contains(&ip)) {
            return Err(Deny::Configured(*net));
        }
        if self.allow.iter().any(|n| n.contains(&ip)) {
            return Ok(());
        }
        if self.relay_ips.contains(&ip) {
            let (lo, hi) = self.relay_ports;
            if (lo..=hi).contains(&addr.port()) {
                return Ok(());
            }
            return Err(Deny::Default(
                "the server's own address outside the relay ports",
            ));
        }
        self.check(ip)
    }

    /// Decides whether `ip` may be a peer. Order: the server's relay
    /// addresses are allowed; the deny list refuses; the allow list admits;
    /// the built-in ranges refuse; everything else is allowed.
    pub fn check(&self, ip: IpAddr) -> Result<(), Deny> {
        let ip = canonical(ip);
        if self.relay_ips.contains(&ip) {
            return Ok(());
        }
        if let Some(net) = self.deny.iter().find(|n| n.contains(&ip)) {
            return Err(Deny::Configured(*net));
        }
        if self.allow.iter().any(|n| n.contains(&ip)) {
            return Ok(());
        }
        if let Some((_, what)) = self.default_deny.iter().find(|(n, _)| n.contains(&ip)) {
            return Err(Deny::Default(what));
        }
        Ok(())
    }
}

/// Maps IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d) and NAT64
/// (64:ff9b::/96) IPv6 forms to the IPv4 address they carry, so a denied
/// IPv4 range cannot be reached through an IPv6 spelling.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
            // IPv4-compatible ::a.b.c.d (deprecated), but not :: and ::1 themselves.
            if s[..6] == [0; 6] && v6 != Ipv6Addr::UNSPECIFIED && v6 != Ipv6Addr::LOCALHOST {
                return IpAddr::V4(tail);
            }
            // NAT64 well-known prefix 64:ff9b::/96 (RFC 6052) and local-use 64:ff9b:1::/48 (RFC 8215).
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || s[..3] == [0x64, 0xff9b, 1] {
                return IpAddr::V4(tail);
            }
            ip
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn default_denies_dangerous_ranges() {
        let p = PeerPolicy::default();
        for s in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "::ffff:10.0.0.1",
        ] {
            assert!(p.check(ip(s)).is_err(), "{s} should be denied");
        }
        for s in [
            "8.8.8.8",
            "203.0.113.5",
            "2001:db8::1",
            "2606:4700::1",
            "64:ff9b::808:808",
        ] {
            assert_eq!(p.check(ip(s)), Ok(()), "{s} should be allowed");
        }
    }

    #[test]
    fn allow_overrides_default_and_deny_overrides_allow() {
        let p = PeerPolicy::new(
            vec!["10.0.0.0/24".parse().unwrap()],
            vec!["10.0.0.7/32".parse().unwrap()],
        );
        assert_eq!(p.check(ip("10.0.0.5")), Ok(()));
        assert!(matches!(p.check(ip("10.0.0.7")), Err(Deny::Configured(_))));
        assert!(matches!(p.check(ip("10.0.1.1")), Err(Deny::Default(_))));
    }

    #[test]
    fn own_relay_addresses_allowed() {
        let mut p = PeerPolicy::default();
        p.add_relay_ip(ip("127.0.0.1"));
        assert_eq!(p.check(ip("127.0.0.1")), Ok(()));
        assert_eq!(p.check(ip("::ffff:127.0.0.1")), Ok(()));
        assert!(p.check(ip("127.0.0.2")).is_err());
        p.set_relay_ports(50000, 50010);
        assert_eq!(p.check_addr("127.0.0.1:50005".parse().unwrap()), Ok(()));
        assert!(p.check_addr("127.0.0.1:3478".parse().unwrap()).is_err());
    }
}
