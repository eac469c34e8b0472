//! What a probe found: the steps with their times, the addresses seen,
//! the loss/RTT run, and one verdict with a hint; printed as text or as
//! one JSON object (`--json`, for monitoring).

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use super::target::Transport;

/// One step of the walk.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// `resolve`, `connect`, `binding`, `allocate`, `relay_address`,
    /// `allocate_peer`, `permission`, `channel_bind`, `data`, `ping`,
    /// `refresh`.
    pub name: &'static str,
    pub ok: bool,
    /// Wall time of the step in milliseconds.
    pub ms: f64,
    /// What was seen: addresses, round trips, error codes.
    pub detail: String,
}

/// The transport addresses seen.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Addresses {
    /// The server address probed (after DNS).
    pub server: Option<SocketAddr>,
    /// The probe's address as the server saw it (XOR-MAPPED-ADDRESS).
    pub mapped: Option<SocketAddr>,
    /// The first allocation's relayed address (XOR-RELAYED-ADDRESS).
    pub relayed: Option<SocketAddr>,
    /// The second (peer) allocation's relayed address.
    pub peer_relayed: Option<SocketAddr>,
}

/// What NAT discovery found, or why it could not run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NatReport {
    /// `endpoint-independent`, `address-dependent` or
    /// `address-and-port-dependent` (RFC 4787); `None` when not available.
    pub mapping: Option<&'static str>,
    /// The same three values for filtering; `None` when not available.
    pub filtering: Option<&'static str>,
    /// `Some(false)` when the server saw this host's own address (no NAT
    /// in between); `None` when not available.
    pub behind_nat: Option<bool>,
    /// One line for people: the behaviour, or "not available: …" with why.
    pub summary: String,
}

impl NatReport {
    /// The report when discovery could not run.
    pub fn unavailable(why: impl std::fmt::Display) -> Self {
        Self {
            mapping: None,
            filtering: None,
            behind_nat: None,
            summary: format!("not available: {why}"),
        }
    }
}

/// The `--count` run over the channel.
#[derive(Clone, Debug, Serialize)]
pub struct PingStats {
    pub sent: u32,
    pub received: u32,
    pub loss_percent: f64,
    pub rtt_min_ms: Option<f64>,
    pub rtt_median_ms: Option<f64>,
    pub rtt_p99_ms: Option<f64>,
    pub rtt_max_ms: Option<f64>,
}

impl PingStats {
    /// Statistics of `sent` pings whose answers took `rtts` (ms).
    pub fn new(sent: u32, mut rtts: Vec<f64>) -> Self {
        rtts.sort_by(f64::total_cmp);
        let received = u32::try_from(rtts.len()).unwrap_or(u32::MAX);
        let loss_percent = if sent == 0 {
            0.0
        } else {
            f64::from(sent.saturating_sub(received)) * 100.0 / f64::from(sent)
        };
        // Nearest-rank percentile over the sorted RTTs.
        let rank = |q: f64| {
            let n = rtts.len();
            (n > 0).then(|| rtts[((q * n as f64).ceil() as usize).clamp(1, n) - 1])
        };
        Self {
            sent,
            received,
            loss_percent,
            rtt_min_ms: rtts.first().copied(),
            rtt_median_ms: rank(0.5),
            rtt_p99_ms: rank(0.99),
            rtt_max_ms: rtts.last().copied(),
        }
    }

    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} sent, {} received, {:.1} % loss",
            self.sent, self.received, self.loss_percent
        );
        if let (Some(min), Some(med), Some(p99), Some(max)) = (
            self.rtt_min_ms,
            self.rtt_median_ms,
            self.rtt_p99_ms,
            self.rtt_max_ms,
        ) {
            let _ = write!(
                s,
                "; rtt min/median/p99/max {min:.2}/{med:.2}/{p99:.2}/{max:.2} ms"
            );
        }
        s
    }
}

/// Everything a probe reports.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The URI as given.
    pub target: String,
    pub transport: Transport,
    pub steps: Vec<Step>,
    pub addresses: Addresses,
    /// The NAT in front of the probe (RFC 5780); `None` when the walk
    /// failed before the Binding step.
    pub nat: Option<NatReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ping: Option<PingStats>,
    /// `true` when every step passed.
    pub ok: bool,
    /// The first failed step, if any.
    pub failed_step: Option<&'static str>,
    /// One sentence: what works, or where it broke.
    pub verdict: String,
    /// What to change, when something failed.
    pub hint: Option<String>,
}

impl Report {
    /// The human-readable form.
    pub fn text(&self) -> String {
        let mut out = format!("tern probe {} ({})\n", self.target, self.transport);
        for s in &self.steps {
            let mark = if s.ok { "ok  " } else { "FAIL" };
            let _ = writeln!(
                out,
                "  {mark} {:<14} {:>9.1} ms  {}",
                s.name, s.ms, s.detail
            );
        }
        let a = &self.addresses;
        let show = |x: Option<SocketAddr>| x.map_or_else(|| "-".to_owned(), |x| x.to_string());
        let _ = writeln!(
            out,
            "addresses: server {}, mapped {}, relayed {}, peer relayed {}",
            show(a.server),
            show(a.mapped),
            show(a.relayed),
            show(a.peer_relayed)
        );
        if let Some(nat) = &self.nat {
            let _ = writeln!(out, "nat: {}", nat.summary);
        }
        let _ = writeln!(out, "verdict: {}", self.verdict);
        if let Some(hint) = &self.hint {
            let _ = writeln!(out, "hint: {hint}");
        }
        out
    }
}

/// Whether `ip` is reachable from the internet at large: not loopback,
/// private (RFC 1918, RFC 4193), shared (RFC 6598), link-local,
/// documentation or unspecified.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00 // unique local, RFC 4193
                || (first & 0xffc0) == 0xfe80 // link-local
                || first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_and_private_addresses() {
        for private in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "100.64.0.1",
            "169.254.1.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "8.8.8.8",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn ping_stats() {
        let s = PingStats::new(4, vec![3.0, 1.0, 2.0]);
        assert_eq!((s.sent, s.received), (4, 3));
        assert!((s.loss_percent - 25.0).abs() < 1e-9);
        assert_eq!(s.rtt_min_ms, Some(1.0));
        assert_eq!(s.rtt_median_ms, Some(2.0));
        assert_eq!(s.rtt_p99_ms, Some(3.0));
        assert_eq!(s.rtt_max_ms, Some(3.0));
        let none = PingStats::new(2, vec![]);
        assert_eq!(none.loss_percent, 100.0);
        assert_eq!(none.rtt_median_ms, None);
    }
}
