//! What `tern load` reports: the relay-run and `--allocate-only` results
//! (one JSON line each, read by scripts and benches/relay_throughput.rs)
//! and the human-readable summary.

use serde::Serialize;

use super::Direction;

/// Results of a relay run; one JSON line for scripts.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub server: String,
    pub allocations: usize,
    pub size: usize,
    pub burst: usize,
    pub direction: Direction,
    /// Requested total rate; `null` = max rate.
    pub rate: Option<u64>,
    pub duration_s: f64,
    pub sent: u64,
    pub delivered: u64,
    pub offered_pps: f64,
    pub delivered_pps: f64,
    /// Delivered payload bits per second / 1e6.
    pub delivered_mbit_s: f64,
    pub loss_pct: f64,
    pub latency_p50_us: u64,
    pub latency_p99_us: u64,
    pub latency_p999_us: u64,
    pub latency_max_us: u64,
    /// "gso" or "sendmsg" (one datagram per call; "send" for bursts of 1).
    pub send_mode: &'static str,
    pub setup_s: f64,
    pub allocate_per_s: f64,
    /// Server CPU seconds during the run (with `--server-pid`).
    pub server_cpu_s: Option<f64>,
    /// Server CPU time per delivered packet in µs (with `--server-pid`).
    pub server_us_per_pkt: Option<f64>,
    /// Server context switches (≈ wakeups) per delivered packet (with `--server-pid`).
    pub server_wakeups_per_pkt: Option<f64>,
    /// This tool's CPU use during the run, % of one core.
    pub load_cpu_pct: f64,
}

/// Results of `--allocate-only`.
#[derive(Clone, Debug, Serialize)]
pub struct AllocReport {
    pub server: String,
    pub allocations: usize,
    pub window: usize,
    /// Allocate (with the 401/438 round trip when needed) + ChannelBind.
    pub allocate_s: f64,
    pub allocate_per_s: f64,
    /// Refresh(0) of all of them.
    pub delete_s: f64,
    pub server_cpu_s: Option<f64>,
    /// Server CPU per Allocate+ChannelBind in µs (with `--server-pid`).
    pub server_us_per_alloc: Option<f64>,
}

/// The human-readable summary printed before the JSON line.
pub fn summary(r: &Report) -> String {
    let rate = r
        .rate
        .map_or_else(|| "max".to_owned(), |x| format!("{x} pkt/s"));
    let cpu = match (r.server_cpu_s, r.server_us_per_pkt) {
        (Some(s), Some(us)) => format!(
            "\nserver CPU  {s:.3} s, {us:.2} µs/packet, {:.2} wakeups/packet",
            r.server_wakeups_per_pkt.unwrap_or(f64::NAN)
        ),
        _ => String::new(),
    };
    format!(
        "tern load → {}: {} allocations, {} B payload, bursts of {}, {:?}, rate {rate}, {:.1} s ({})\n\
         offered     {:>12.0} pkt/s\n\
         delivered   {:>12.0} pkt/s  {:>9.1} Mbit/s  loss {:.3} % ({} of {})\n\
         latency     p50 {} µs  p99 {} µs  p99.9 {} µs  max {} µs\n\
         setup       {:.3} s ({:.0} allocations/s); load generator CPU {:.0} %{cpu}",
        r.server,
        r.allocations,
        r.size,
        r.burst,
        r.direction,
        r.duration_s,
        r.send_mode,
        r.offered_pps,
        r.delivered_pps,
        r.delivered_mbit_s,
        r.loss_pct,
        r.sent - r.delivered.min(r.sent),
        r.sent,
        r.latency_p50_us,
        r.latency_p99_us,
        r.latency_p999_us,
        r.latency_max_us,
        r.setup_s,
        r.allocate_per_s,
        r.load_cpu_pct,
    )
}
