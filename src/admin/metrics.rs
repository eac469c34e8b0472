//! The metrics model: per-worker counter blocks, server-wide gauges, and
//! the label sets (all closed enums, so no label can grow without bound —
//! there are deliberately no per-user labels).
//!
//! # Hot-path cost
//!
//! Each worker owns one [`WorkerMetrics`] (`Arc`, shared only with the
//! scraper). Every field is an `AtomicU64` written by that worker alone, so
//! updates are a Relaxed `load` + `store` ([`Counter::add`]): on x86-64 and
//! AArch64 that compiles to a plain load/add/store, no `lock` prefix, no
//! cache-line ping-pong with other workers (the block is 128-byte aligned,
//! the prefetch-pair size, so two workers' blocks never share a line). The
//! scraper only reads. A reader may see a counter a few increments stale,
//! never torn (64-bit atomics).
//!
//! The intended use on the relay path is cheaper still: the driver keeps
//! its plain `proto::turn::Stats` (and its own local counters) and calls
//! [`WorkerMetrics::publish_turn_stats`] once per loop iteration: about
//! a dozen Relaxed stores per wakeup, amortised over a batch of datagrams,
//! independent of the packet rate.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A single-writer counter or gauge. Only the owning worker writes it.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Single writer: a Relaxed load and store, no read-modify-write.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    /// Sets the value (publishing a total kept elsewhere, or a gauge).
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Relaxed);
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// A closed label set: every value and its Prometheus label text.
pub trait Label: Copy + 'static {
    /// Every value, in index order (`value as usize`).
    const ALL: &'static [Self];
    /// The label value as exported.
    fn name(self) -> &'static str;
    /// The array index.
    fn index(self) -> usize;
}

macro_rules! label_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name { $($variant),+ }
        impl Label for $name {
            const ALL: &'static [Self] = &[$(Self::$variant),+];
            fn name(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
            fn index(self) -> usize { self as usize }
        }
    };
}

label_enum!(
    /// Client transport (`transport` label).
    Transport { Udp => "udp", Tcp => "tcp", Tls => "tls" }
);
label_enum!(
    /// Relay address family (`family` label).
    Family { Ipv4 => "ipv4", Ipv6 => "ipv6" }
);
label_enum!(
    /// STUN/TURN request method (`method` label).
    Method {
        Binding => "binding",
        Allocate => "allocate",
        Refresh => "refresh",
        CreatePermission => "create_permission",
        ChannelBind => "channel_bind",
        Other => "other",
    }
);
label_enum!(
    /// Response code class (`code` label); "200" is success.
    Code {
        C200 => "200", C300 => "300", C400 => "400", C401 => "401", C403 => "403",
        C420 => "420", C437 => "437", C438 => "438", C440 => "440", C441 => "441",
        C442 => "442", C443 => "443", C446 => "446", C486 => "486", C500 => "500",
        C508 => "508", Other => "other",
    }
);
label_enum!(
    /// Why authentication failed (`reason` label).
    AuthFailure {
        BadIntegrity => "bad_integrity",
        UnknownUser => "unknown_user",
        Expired => "expired",
        StaleNonce => "stale_nonce",
    }
);
label_enum!(
    /// Relay direction (`direction` label).
    Direction { ClientToPeer => "client_to_peer", PeerToClient => "peer_to_client" }
);
label_enum!(
    /// Why a relayed datagram was dropped (`reason` label).
    DropReason {
        NoPermission => "no_permission",
        PeerPolicy => "peer_policy",
        Bandwidth => "bandwidth",
        Malformed => "malformed",
    }
);
label_enum!(
    /// Which peer rule denied a permission (`rule` label): `builtin` = a
    /// default-denied range (loopback, private, metadata, …), `deny_list` =
    /// a CIDR from `peers.deny`.
    PeerRule { Builtin => "builtin", DenyList => "deny_list" }
);
label_enum!(
    /// Which quota refused a request (`kind` label).
    QuotaKind {
        Allocations => "allocations",
        AllocationsPerUser => "allocations_per_user",
        Permissions => "permissions",
        Channels => "channels",
        RelayPorts => "relay_ports",
        TcpConnections => "tcp_connections",
        TcpConnectionsPerIp => "tcp_connections_per_ip",
        UnauthRate => "unauth_rate",
        // A TCP/TLS connection closed because its PROXY header or TLS
        // handshake was not done within `limits.tcp_handshake_timeout_secs`.
        TcpHandshakeTimeout => "tcp_handshake_timeout",
    }
);
label_enum!(
    /// Outcome of a config reload (`result` label).
    ReloadResult { Success => "success", Failure => "error" }
);

impl Code {
    /// The label for a STUN response code (0 or 200 = success).
    pub fn from_u16(code: u16) -> Self {
        match code {
            0 | 200 => Self::C200,
            300 => Self::C300,
            400 => Self::C400,
            401 => Self::C401,
            403 => Self::C403,
            420 => Self::C420,
            437 => Self::C437,
            438 => Self::C438,
            440 => Self::C440,
            441 => Self::C441,
            442 => Self::C442,
            443 => Self::C443,
            446 => Self::C446,
            486 => Self::C486,
            500 => Self::C500,
            508 => Self::C508,
            _ => Self::Other,
        }
    }
}

/// Upper bounds (seconds) of the `tern_allocation_duration_seconds` buckets:
/// from a failed call setup (seconds) to a day-long session.
pub const DURATION_BUCKETS: [f64; 10] = [
    10.0, 30.0, 60.0, 300.0, 600.0, 1_800.0, 3_600.0, 7_200.0, 21_600.0, 86_400.0,
];

const N_TRANSPORT: usize = 3;
const N_FAMILY: usize = 2;
const N_METHOD: usize = 6;
const N_CODE: usize = 17;

/// One worker's counters and gauges. Written only by its worker; read by
/// the scraper, which sums all workers. See the module docs for the cost.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct WorkerMetrics {
    /// Progress beacon for `/livez` and the systemd watchdog: the worker
    /// stores its loop iteration count (or any increasing value) each
    /// iteration; see [`super::Liveness`].
    pub heartbeat: Counter,
    /// Live allocations, `[transport][family]` (gauge).
    pub allocations: [[Counter; N_FAMILY]; N_TRANSPORT],
    /// Allocations created, by transport.
    pub allocations_created: [Counter; N_TRANSPORT],
    /// Live permissions (gauge).
    pub permissions: Counter,
    /// Live channels (gauge).
    pub channels: Counter,
    /// Relay ports this worker holds (gauge).
    pub relay_ports_in_use: Counter,
    /// Requests, `[method][transport]`.
    pub requests: [[Counter; N_TRANSPORT]; N_METHOD],
    /// Responses, `[method][code]`.
    pub responses: [[Counter; N_CODE]; N_METHOD],
    /// Authentication failures by reason.
    pub auth_failures: [Counter; 4],
    /// Relayed datagrams by direction.
    pub relay_packets: [Counter; 2],
    /// Relayed payload bytes by direction.
    pub relay_bytes: [Counter; 2],
    /// Datagrams handed from one of this worker's relays to another without
    /// the kernel (relay to relay on one server).
    pub relay_internal: Counter,
    /// Relayed datagrams dropped, by reason.
    pub relay_dropped: [Counter; 4],
    /// Permissions refused by peer policy, by rule.
    pub peer_denied: [Counter; 2],
    /// Requests refused by a quota, by kind.
    pub quota_rejections: [Counter; 9],
    /// Allocation duration histogram: cumulative-free bucket counts (one per
    /// bound in [`DURATION_BUCKETS`] plus +Inf); the renderer accumulates.
    pub duration_buckets: [Counter; DURATION_BUCKETS.len() + 1],
    /// Sum of observed allocation durations, in milliseconds.
    pub duration_sum_ms: Counter,
}

impl WorkerMetrics {
    /// Counts one request.
    #[inline]
    pub fn request(&self, method: Method, transport: Transport) {
        self.requests[method.index()][transport.index()].add(1);
    }

    /// Counts one response (`code` 200 for success).
    #[inline]
    pub fn response(&self, method: Method, code: u16) {
        self.responses[method.index()][Code::from_u16(code).index()].add(1);
    }

    /// Counts an authentication failure.
    #[inline]
    pub fn auth_failure(&self, reason: AuthFailure) {
        self.auth_failures[reason.index()].add(1);
    }

    /// Counts a dropped relay datagram.
    #[inline]
    pub fn relay_drop(&self, reason: DropReason) {
        self.relay_dropped[reason.index()].add(1);
    }

    /// Counts a peer denied by policy.
    #[inline]
    pub fn peer_denied(&self, rule: PeerRule) {
        self.peer_denied[rule.index()].add(1);
    }

    /// Counts a quota rejection.
    #[inline]
    pub fn quota_rejection(&self, kind: QuotaKind) {
        self.quota_rejections[kind.index()].add(1);
    }

    /// Sets the live-allocation gauge for one transport and family.
    #[inline]
    pub fn set_allocations(&self, transport: Transport, family: Family, n: u64) {
        self.allocations[transport.index()][family.index()].set(n);
    }

    /// Counts a created allocation.
    #[inline]
    pub fn allocation_created(&self, transport: Transport) {
        self.allocations_created[transport.index()].add(1);
    }

    /// Records the lifetime of an allocation that ended.
    pub fn allocation_ended(&self, duration: std::time::Duration) {
        let secs = duration.as_secs_f64();
        let i = DURATION_BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(DURATION_BUCKETS.len());
        self.duration_buckets[i].add(1);
        self.duration_sum_ms
            .add(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX));
    }

    /// Publishes the relayed payload byte totals the worker keeps in plain
    /// `u64` fields (two Relaxed stores; call once per loop iteration).
    #[inline]
    pub fn publish_relay_bytes(&self, to_peer: u64, to_client: u64, internal: u64) {
        self.relay_bytes[Direction::ClientToPeer.index()].set(to_peer);
        self.relay_bytes[Direction::PeerToClient.index()].set(to_client);
        self.relay_internal.set(internal);
    }

    /// Publishes the totals of `proto::turn::Stats` that map one-to-one
    /// onto metrics (call once per loop iteration; three Relaxed stores).
    /// `relayed_*` are packet counts; byte totals come from the driver (it
    /// knows the payload ranges) via [`Self::publish_relay_bytes`]. Drop reasons
    /// come from `turn_events::record_drop`, not from `Stats`, so nothing
    /// is counted twice.
    pub fn publish_turn_stats(&self, s: &crate::proto::turn::Stats) {
        self.relay_packets[Direction::ClientToPeer.index()].set(s.relayed_to_peer);
        self.relay_packets[Direction::PeerToClient.index()].set(s.relayed_to_client);
        self.quota_rejections[QuotaKind::UnauthRate.index()].set(s.rate_limited);
    }

    /// Stores a progress value for liveness (any value that changes each
    /// loop iteration, e.g. an iteration count).
    #[inline]
    pub fn beat(&self, value: u64) {
        self.heartbeat.set(value);
    }
}

/// Server-wide values that change rarely (reloads, drain, certificate,
/// capacity): plain shared atomics, written outside the hot path.
#[derive(Debug, Default)]
pub struct GlobalMetrics {
    /// Relay ports configured (`relay.ports` range size).
    pub relay_ports_capacity: AtomicU64,
    /// `notAfter` of the TLS certificate, Unix seconds; 0 = no TLS.
    pub tls_cert_expiry_unix: AtomicU64,
    /// Config reloads by result.
    pub reloads: [AtomicU64; 2],
    /// 1 while draining.
    pub draining: AtomicU64,
    /// Allocations before this node redirects (`/status` `capacity`).
    pub allocations_capacity: AtomicU64,
    /// `[[cluster.nodes]]` the credential issuer would hand out now.
    pub issuer_nodes_usable: AtomicU64,
    /// Credential requests the issuer answered 503 (no usable node).
    pub issuer_no_node: AtomicU64,
}

impl GlobalMetrics {
    /// Counts a reload.
    pub fn reload(&self, result: ReloadResult) {
        self.reloads[result.index()].fetch_add(1, Relaxed);
    }
}

/// Everything `/metrics` shows: the workers' blocks, the globals, and the
/// process start time (Unix seconds) for uptime.
#[derive(Debug, Default)]
pub struct Metrics {
    /// One block per worker, in worker order.
    pub workers: Vec<std::sync::Arc<WorkerMetrics>>,
    /// Server-wide values.
    pub global: GlobalMetrics,
}

impl Metrics {
    /// A registry with `n` worker blocks; hand `workers[i]` to worker `i`.
    pub fn new(n: usize) -> Self {
        Self {
            workers: (0..n).map(|_| std::sync::Arc::default()).collect(),
            global: GlobalMetrics::default(),
        }
    }

    /// Sum of `f` over all workers.
    pub fn sum(&self, f: impl Fn(&WorkerMetrics) -> &Counter) -> u64 {
        self.workers
            .iter()
            .map(|w| f(w).get())
            .fold(0, u64::wrapping_add)
    }

    /// Live allocations on one transport, both families.
    pub fn allocations_on(&self, t: Transport) -> u64 {
        Family::ALL
            .iter()
            .map(|f| self.sum(|w| &w.allocations[t.index()][f.index()]))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_do_not_share_cache_lines() {
        assert_eq!(align_of::<WorkerMetrics>(), 128);
    }

    #[test]
    fn label_arrays_match_label_sets() {
        assert_eq!(Transport::ALL.len(), N_TRANSPORT);
        assert_eq!(Family::ALL.len(), N_FAMILY);
        assert_eq!(Method::ALL.len(), N_METHOD);
        assert_eq!(Code::ALL.len(), N_CODE);
        let w = WorkerMetrics::default();
        assert_eq!(w.auth_failures.len(), AuthFailure::ALL.len());
        assert_eq!(w.relay_dropped.len(), DropReason::ALL.len());
        assert_eq!(w.peer_denied.len(), PeerRule::ALL.len());
        assert_eq!(w.quota_rejections.len(), QuotaKind::ALL.len());
        for (i, l) in QuotaKind::ALL.iter().enumerate() {
            assert_eq!(l.index(), i);
        }
    }

    #[test]
    fn sums_over_workers_and_buckets_durations() {
        let m = Metrics::new(2);
        m.workers[0].request(Method::Allocate, Transport::Udp);
        m.workers[1].request(Method::Allocate, Transport::Udp);
        m.workers[1].response(Method::Allocate, 486);
        m.workers[0].allocation_ended(std::time::Duration::from_secs(45));
        m.workers[0].allocation_ended(std::time::Duration::from_secs(100_000));
        assert_eq!(m.sum(|w| &w.requests[1][0]), 2);
        assert_eq!(m.workers[1].responses[1][Code::C486.index()].get(), 1);
        assert_eq!(m.workers[0].duration_buckets[2].get(), 1);
        assert_eq!(m.workers[0].duration_buckets[10].get(), 1);
        assert_eq!(m.workers[0].duration_sum_ms.get(), 100_045_000);
        assert_eq!(Code::from_u16(999), Code::Other);
    }
}
