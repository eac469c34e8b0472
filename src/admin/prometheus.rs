//! Prometheus text exposition format 0.0.4: `# HELP`, `# TYPE`, samples,
//! label values escaped (`\\`, `\"`, `\n`). `render` writes every metric
//! tern exports; [`METRIC_NAMES`] lists them for the dashboard test.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use super::metrics::{
    AuthFailure, Code, DURATION_BUCKETS, Direction, DropReason, Family, Label, Method, Metrics,
    PeerRule, QuotaKind, ReloadResult, Transport,
};
use super::procfs::{self, ProcessStats};

/// Every metric family `render` writes (histograms as their base name).
pub const METRIC_NAMES: &[&str] = &[
    "tern_build_info",
    "tern_allocations",
    "tern_allocations_created_total",
    "tern_allocation_duration_seconds",
    "tern_permissions",
    "tern_channels",
    "tern_requests_total",
    "tern_responses_total",
    "tern_auth_failures_total",
    "tern_relay_packets_total",
    "tern_relay_bytes_total",
    "tern_relay_internal_packets_total",
    "tern_relay_dropped_packets_total",
    "tern_peer_denied_total",
    "tern_quota_rejections_total",
    "tern_relay_ports_in_use",
    "tern_relay_ports_capacity",
    "tern_allocations_capacity",
    "tern_issuer_nodes_usable",
    "tern_issuer_no_node_total",
    "tern_udp_receive_drops_total",
    "tern_tls_certificate_expiry_timestamp_seconds",
    "tern_config_reloads_total",
    "tern_draining",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
];

/// A writer of one exposition.
pub struct Encoder<'a> {
    out: &'a mut String,
}

impl<'a> Encoder<'a> {
    /// Appends to `out`.
    pub fn new(out: &'a mut String) -> Self {
        Self { out }
    }

    /// `# HELP` and `# TYPE` lines of a family.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// One sample line.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    /// A family with one unlabelled sample.
    pub fn single(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// A counter family with one label: `value(l)` for every `l` of the set.
    fn by<L: Label>(&mut self, name: &str, help: &str, key: &str, value: impl Fn(L) -> u64) {
        self.family(name, "counter", help);
        for &l in L::ALL {
            self.sample(name, &[(key, l.name())], value(l));
        }
    }
}

/// Escapes a label value per the text format.
pub fn escape_label(v: &str) -> std::borrow::Cow<'_, str> {
    if !v.contains(['\\', '"', '\n']) {
        return v.into();
    }
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .into()
}

/// Renders every metric: worker sums, globals, `process_*`, receive drops.
pub fn render(m: &Metrics, out: &mut String) {
    let mut e = Encoder::new(out);
    e.family("tern_build_info", "gauge", "Build information; always 1.");
    e.sample(
        "tern_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    render_allocations(m, &mut e);
    render_requests(m, &mut e);
    render_relay(m, &mut e);
    render_global(m, &mut e);
    e.single(
        "tern_udp_receive_drops_total",
        "counter",
        "Datagrams the kernel dropped on tern's UDP sockets because their receive queues were full.",
        procfs::udp_receive_drops(),
    );
    render_process(&ProcessStats::read(), &mut e);
}

fn render_allocations(m: &Metrics, e: &mut Encoder<'_>) {
    e.family("tern_allocations", "gauge", "Live allocations.");
    for &t in Transport::ALL {
        for &f in Family::ALL {
            let v = m.sum(|w| &w.allocations[t.index()][f.index()]);
            e.sample(
                "tern_allocations",
                &[("transport", t.name()), ("family", f.name())],
                v,
            );
        }
    }
    e.by::<Transport>(
        "tern_allocations_created_total",
        "Allocations created.",
        "transport",
        |t| m.sum(|w| &w.allocations_created[t.index()]),
    );
    let name = "tern_allocation_duration_seconds";
    e.family(name, "histogram", "Lifetime of ended allocations.");
    let mut cumulative = 0u64;
    for (i, bound) in DURATION_BUCKETS.iter().enumerate() {
        cumulative += m.sum(|w| &w.duration_buckets[i]);
        e.sample(
            "tern_allocation_duration_seconds_bucket",
            &[("le", &bound.to_string())],
            cumulative,
        );
    }
    cumulative += m.sum(|w| &w.duration_buckets[DURATION_BUCKETS.len()]);
    e.sample(
        "tern_allocation_duration_seconds_bucket",
        &[("le", "+Inf")],
        cumulative,
    );
    let sum_ms = m.sum(|w| &w.duration_sum_ms);
    e.sample(
        "tern_allocation_duration_seconds_sum",
        &[],
        sum_ms as f64 / 1000.0,
    );
    e.sample("tern_allocation_duration_seconds_count", &[], cumulative);
    let perms = m.sum(|w| &w.permissions);
    e.single("tern_permissions", "gauge", "Live permissions.", perms);
    let chans = m.sum(|w| &w.channels);
    e.single("tern_channels", "gauge", "Live channel bindings.", chans);
}

fn render_requests(m: &Metrics, e: &mut Encoder<'_>) {
    e.family(
        "tern_requests_total",
        "counter",
        "STUN/TURN requests received.",
    );
    for &me in Method::ALL {
        for &t in Transport::ALL {
            let v = m.sum(|w| &w.requests[me.index()][t.index()]);
            let labels = [("method", me.name()), ("transport", t.name())];
            e.sample("tern_requests_total", &labels, v);
        }
    }
    e.family(
        "tern_responses_total",
        "counter",
        "Responses sent, by method and STUN code (200 = success).",
    );
    for &me in Method::ALL {
        for &c in Code::ALL {
            let v = m.sum(|w| &w.responses[me.index()][c.index()]);
            // Only codes seen: 6 x 17 mostly-zero series would be noise.
            if v > 0 || c == Code::C200 {
                let labels = [("method", me.name()), ("code", c.name())];
                e.sample("tern_responses_total", &labels, v);
            }
        }
    }
    e.by::<AuthFailure>(
        "tern_auth_failures_total",
        "Requests that failed authentication.",
        "reason",
        |r| m.sum(|w| &w.auth_failures[r.index()]),
    );
    e.by::<PeerRule>(
        "tern_peer_denied_total",
        "Permissions refused by the peer policy.",
        "rule",
        |r| m.sum(|w| &w.peer_denied[r.index()]),
    );
    e.by::<QuotaKind>(
        "tern_quota_rejections_total",
        "Requests or connections refused by a quota or rate limit.",
        "kind",
        |k| m.sum(|w| &w.quota_rejections[k.index()]),
    );
}

fn render_relay(m: &Metrics, e: &mut Encoder<'_>) {
    e.by::<Direction>(
        "tern_relay_packets_total",
        "Datagrams relayed.",
        "direction",
        |d| m.sum(|w| &w.relay_packets[d.index()]),
    );
    e.by::<Direction>(
        "tern_relay_bytes_total",
        "Payload bytes relayed (UDP payloads and spliced RFC 6062 TCP bytes).",
        "direction",
        |d| m.sum(|w| &w.relay_bytes[d.index()]),
    );
    e.single(
        "tern_relay_internal_packets_total",
        "counter",
        "Datagrams relayed from one of this server's relays to another inside a worker, without a trip through the kernel (also counted in tern_relay_packets_total, both directions).",
        m.sum(|w| &w.relay_internal),
    );
    e.by::<DropReason>(
        "tern_relay_dropped_packets_total",
        "Relay datagrams dropped.",
        "reason",
        |r| m.sum(|w| &w.relay_dropped[r.index()]),
    );
    let used = m.sum(|w| &w.relay_ports_in_use);
    e.single(
        "tern_relay_ports_in_use",
        "gauge",
        "Relay ports in use.",
        used,
    );
}

fn render_global(m: &Metrics, e: &mut Encoder<'_>) {
    let g = &m.global;
    e.single(
        "tern_relay_ports_capacity",
        "gauge",
        "Relay ports configured (relay.ports).",
        g.relay_ports_capacity.load(Relaxed),
    );
    e.single(
        "tern_allocations_capacity",
        "gauge",
        "Allocations before new ones are redirected (cluster.soft_max_allocations, \
         else limits.max_allocations, at most the relay ports).",
        g.allocations_capacity.load(Relaxed),
    );
    e.single(
        "tern_issuer_nodes_usable",
        "gauge",
        "cluster.nodes the credential issuer can hand out now (0 without nodes).",
        g.issuer_nodes_usable.load(Relaxed),
    );
    e.single(
        "tern_issuer_no_node_total",
        "counter",
        "Credential requests answered 503 because no cluster node was usable.",
        g.issuer_no_node.load(Relaxed),
    );
    e.single(
        "tern_tls_certificate_expiry_timestamp_seconds",
        "gauge",
        "notAfter of the TLS certificate in Unix seconds; 0 without TLS.",
        g.tls_cert_expiry_unix.load(Relaxed),
    );
    e.by::<ReloadResult>(
        "tern_config_reloads_total",
        "Config reloads.",
        "result",
        |r| g.reloads[r.index()].load(Relaxed),
    );
    e.single(
        "tern_draining",
        "gauge",
        "1 while draining (new allocations refused).",
        g.draining.load(Relaxed),
    );
}

fn render_process(p: &ProcessStats, e: &mut Encoder<'_>) {
    let rows: [(&str, &str, &str, Option<f64>); 6] = [
        (
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            p.cpu_seconds,
        ),
        (
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            p.resident_bytes.map(|v| v as f64),
        ),
        (
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            p.virtual_bytes.map(|v| v as f64),
        ),
        (
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            p.open_fds.map(|v| v as f64),
        ),
        (
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            p.max_fds.map(|v| v as f64),
        ),
        (
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            p.start_time_seconds,
        ),
    ];
    for (name, kind, help, v) in rows {
        if let Some(v) = v {
            e.single(name, kind, help, v);
        }
    }
}

#[cfg(test)]
#[path = "prometheus_tests.rs"]
pub(crate) mod tests;
