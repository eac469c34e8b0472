//! Startup self-check: settings that resolve fine but will not work as the
//! operator expects. [`check`] is pure: it takes the resolved [`Settings`]
//! and [`Facts`] the caller gathered ([`Facts::gather`] reads the
//! open-files limit, the host's addresses, the certificate and the clock),
//! and returns warnings that each say what is wrong and what to change.
//! `tern check-config` prints them; `tern serve` logs them at warn.

mod facts;

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;

pub use facts::{CertExpiryError, certificate_not_after};

use crate::io::LISTENER_BUFFER;
use crate::proto::peer_policy::DEFAULT_DENY;
use crate::settings::Settings;

/// Warn when the TLS certificate expires within this many days.
pub const CERT_WARN_DAYS: i64 = 14;

/// Descriptors counted for listeners, epoll, logs and the like on top of
/// relay sockets and TCP connections.
pub const SPARE_FILES: u64 = 256;

/// What the caller found out about the host (see [`Facts::gather`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// The open-files (RLIMIT_NOFILE) hard limit; `None` = unknown or unlimited.
    pub open_files_limit: Option<u64>,
    /// The IPs the listeners answer on: each configured listener address,
    /// with an unspecified one (0.0.0.0, ::) replaced by the host's addresses.
    pub listener_ips: Vec<IpAddr>,
    /// The TLS leaf certificate's notAfter (Unix seconds), when TLS is on
    /// and the certificate could be parsed.
    pub cert_not_after: Option<i64>,
    /// Wall-clock time of the check (Unix seconds).
    pub now_unix: i64,
    /// `net.core.rmem_max`: the largest UDP receive buffer a socket gets
    /// without CAP_NET_ADMIN; `None` = unknown.
    pub rmem_max: Option<u64>,
    /// The process holds CAP_NET_ADMIN (its sockets may pass `rmem_max`).
    pub net_admin: bool,
}

/// One finding. `Display` says what is wrong and what to change.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning {
    /// The relay address clients are given cannot be reached from where
    /// the listeners can.
    RelayNotPublic {
        given: IpAddr,
        range: &'static str,
        listener: IpAddr,
    },
    /// Fewer relay ports than allocations allowed.
    PortsBelowQuota {
        low: u16,
        high: u16,
        max_allocations: u32,
    },
    /// The open-files limit is below what the quotas need.
    OpenFilesLow {
        limit: u64,
        relay_sockets: u64,
        tcp_connections: u64,
    },
    /// The kernel caps the UDP listeners' receive buffer below what tern
    /// asks ([`LISTENER_BUFFER`]), so bursts overflow it.
    UdpBufferCapped { rmem_max: u64 },
    /// The TLS certificate expires within [`CERT_WARN_DAYS`] or has expired.
    CertExpiry {
        cert: PathBuf,
        not_after: i64,
        now: i64,
    },
}

/// Every warning for `settings` on a host described by `facts`.
pub fn check(settings: &Settings, facts: &Facts) -> Vec<Warning> {
    let mut out = Vec::new();
    relay_reachability(settings, facts, &mut out);
    let ports = u32::from(settings.relay_ports.end() - settings.relay_ports.start()) + 1;
    let max_allocations = settings.proto.limits.max_allocations;
    if ports < max_allocations {
        out.push(Warning::PortsBelowQuota {
            low: *settings.relay_ports.start(),
            high: *settings.relay_ports.end(),
            max_allocations,
        });
    }
    if let Some(limit) = facts.open_files_limit {
        // One relay socket per allocation and family, never more than the ports allow.
        let families = if settings.relay_ip6.is_some() { 2 } else { 1 };
        let relay_sockets = u64::from(ports.min(max_allocations)) * families;
        let tcp_connections = settings.tcp.max_connections as u64;
        if limit < relay_sockets + tcp_connections + SPARE_FILES {
            out.push(Warning::OpenFilesLow {
                limit,
                relay_sockets,
                tcp_connections,
            });
        }
    }
    if let Some(rmem_max) = facts.rmem_max
        && rmem_max < LISTENER_BUFFER as u64
        && !facts.net_admin
    {
        out.push(Warning::UdpBufferCapped { rmem_max });
    }
    if let (Some(tls), Some(not_after)) = (&settings.tls, facts.cert_not_after) {
        if not_after - facts.now_unix < CERT_WARN_DAYS * 86_400 {
            out.push(Warning::CertExpiry {
                cert: tls.cert.clone(),
                not_after,
                now: facts.now_unix,
            });
        }
    }
    out
}

/// Checks with facts gathered from this host now.
pub fn run(settings: &Settings) -> Vec<Warning> {
    check(settings, &Facts::gather(settings))
}

/// A relay address given to clients that is loopback/private/… while some
/// listener is public: clients reach the server but not their relay.
fn relay_reachability(s: &Settings, facts: &Facts, out: &mut Vec<Warning>) {
    let Some(listener) = facts
        .listener_ips
        .iter()
        .copied()
        .find(|ip| non_public_range(*ip).is_none())
    else {
        return;
    };
    let v4 = s.advertised_ip.unwrap_or(s.relay_ip);
    let v6 = s.relay_ip6.map(|ip| s.advertised_ip6.unwrap_or(ip));
    for given in std::iter::once(v4).chain(v6) {
        if let Some(range) = non_public_range(given) {
            out.push(Warning::RelayNotPublic {
                given,
                range,
                listener,
            });
        }
    }
}

/// The name of the non-public range `ip` is in (loopback, RFC 1918, …),
/// or `None` for a globally reachable address. Documentation ranges count
/// as public: they stand in for public addresses in examples and tests.
fn non_public_range(ip: IpAddr) -> Option<&'static str> {
    DEFAULT_DENY.iter().find_map(|(net, what)| {
        // invariant: DEFAULT_DENY holds valid CIDRs (tested in peer_policy).
        let net: IpNet = net.parse().expect("valid CIDR");
        net.contains(&ip).then_some(*what)
    })
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RelayNotPublic {
                given,
                range,
                listener,
            } => write!(
                f,
                "clients are given relay address {given} ({range}) while tern listens on \
                 public {listener}: clients outside this network cannot reach their relay. \
                 Behind a 1:1 NAT set relay.advertised_address (advertised_address6 for IPv6) \
                 to the public IP; otherwise set relay.address to a public local IP"
            ),
            Self::PortsBelowQuota {
                low,
                high,
                max_allocations,
            } => {
                let ports = u32::from(high - low) + 1;
                write!(
                    f,
                    "relay.ports {low}-{high} has {ports} ports but limits.max_allocations is \
                     {max_allocations}: allocations beyond {ports} fail (508 Insufficient \
                     Capacity). Widen relay.ports or set limits.max_allocations to at most {ports}"
                )
            }
            Self::OpenFilesLow {
                limit,
                relay_sockets,
                tcp_connections,
            } => {
                let need = relay_sockets + tcp_connections + SPARE_FILES;
                // Round up to a number an operator would type.
                let raise = need.div_ceil(1024) * 1024;
                write!(
                    f,
                    "the open-files hard limit (RLIMIT_NOFILE; tern raises its soft limit to it) is {limit} but the quotas need about \
                     {need} ({relay_sockets} relay sockets + {tcp_connections} TCP connections + \
                     {SPARE_FILES} spare): raise it with LimitNOFILE={raise} in the systemd unit \
                     or `ulimit -Hn {raise}` before starting tern, or lower \
                     limits.max_allocations / limits.tcp_max_connections"
                )
            }
            Self::UdpBufferCapped { rmem_max } => write!(
                f,
                "net.core.rmem_max is {rmem_max} bytes: each UDP listener's receive queue is capped \
                 there (tern asks {LISTENER_BUFFER}), so traffic bursts are dropped by the kernel \
                 (tern_udp_receive_drops_total). Raise it: `sysctl -w net.core.rmem_max={LISTENER_BUFFER} \
                 net.core.wmem_max={LISTENER_BUFFER}` (and in /etc/sysctl.d/ to keep it), or give \
                 tern CAP_NET_ADMIN (AmbientCapabilities= in the systemd unit)"
            ),
            Self::CertExpiry {
                cert,
                not_after,
                now,
            } => {
                let when = utc(*not_after);
                let cert = cert.display();
                if not_after <= now {
                    let days = (now - not_after) / 86_400;
                    write!(
                        f,
                        "the TLS certificate {cert} expired at {when} ({days} days ago): \
                         TLS clients refuse it. Renew it (e.g. `certbot renew`) and send \
                         SIGHUP to tern to load it"
                    )
                } else {
                    let days = (not_after - now) / 86_400;
                    write!(
                        f,
                        "the TLS certificate {cert} expires at {when} (in {days} days): renew \
                         it (e.g. `certbot renew`) and send SIGHUP to tern to load it"
                    )
                }
            }
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC` for Unix seconds (proleptic Gregorian).
fn utc(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests;
