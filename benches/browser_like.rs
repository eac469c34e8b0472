//! The headline benchmark: browser-like traffic, tern vs coturn in the
//! same run, on real sockets over 127.0.0.1.
//!
//! `cargo bench --bench browser_like` (≈ 5 min; `TERN_BENCH_QUICK=1` ≈ 1 min).
//!
//! Servers as in `relay_throughput` (tern one worker, coturn one relay
//! thread, both pinned to core 0; the load generator in this process on
//! core 1). Sections (run in the order 3, 4, 1, 2, 5: latency on fresh state):
//! 1. **Browser-like, step up until loss**: 1,000 flows, every datagram
//!    alone, paced per flow (audio every 20 ms, video frames of 3 packets
//!    every 33 ms), half the flows client↔peer both ways, half relay to
//!    relay ([`tern::tools::load::browser`]). Per step: delivered rate,
//!    loss, server µs and wakeups per relayed datagram, latency
//!    percentiles, kernel drops on the server's sockets and the tool's.
//!    The highest loss-free rate is the headline figure.
//! 2. **Overload**: the server's core shared with a busy loop (so one
//!    generator core can offer twice what the server carries there),
//!    offered 2× the peak on that shared core; delivered ÷ peak should stay
//!    ≥ 90 % (no livelock).
//! 3. **Latency and CPU at 5k, 20k, 100k pkt/s** paced over 100
//!    allocations, single datagrams, client→peer: p50/p99/p99.9, server
//!    CPU and wakeups per packet.
//! 4. **GSO bursts** (secondary): 10 allocations × 100 B, bursts of 8, max rate.
//! 5. **Workers** (full mode, ≥ 2 cores): tern with 2 workers, unpinned,
//!    at the browser-like steps, against the 1-worker figures.

#![allow(
    clippy::disallowed_methods,
    reason = "benchmarks measure wall time and wait for servers; the clock wall is for the server code"
)]

use std::io::Write as _;
use std::time::{Duration, Instant};

use tern::tools::load::browser::{BrowserConfig, BrowserReport, BrowserSession};
use tern::tools::load::{Direction, LoadConfig, Report, Session};

mod common;
use common::{PASS, Server, USER, cores, start_servers, start_tern, stats};

/// Repetitions of every measured shape per server (full mode).
const REPS: usize = 3;
/// Flows (client sockets, allocations) of the browser-like load.
const FLOWS: usize = 1_000;

fn base(server: &Server, allocations: usize, secs: f64) -> LoadConfig {
    LoadConfig {
        server: server.addr,
        user: USER.into(),
        password: PASS.into(),
        allocations,
        size: 100,
        burst: 1,
        rate: None,
        duration: Duration::from_secs_f64(secs),
        direction: Direction::ToPeer,
        window: 256,
        gso: true,
        setup_window: 32,
        drain: Duration::from_millis(300),
        server_pid: Some(server.pid()),
    }
}

fn browser(server: &Server, rate: u64, secs: f64) -> BrowserConfig {
    BrowserConfig {
        base: base(server, FLOWS, secs),
        rate,
        video_packets: 3,
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.2}"))
}

fn cnt(v: Option<u64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| v.to_string())
}

fn flush() {
    let _ = std::io::stdout().flush();
}

/// A step is loss-free when nothing was lost and the generator offered
/// what was asked (else the tool, not the server, was the limit).
fn loss_free(r: &BrowserReport) -> bool {
    r.loss_pct == 0.0 && r.offered_pps >= 0.95 * r.rate as f64
}

fn row(name: &str, r: &BrowserReport) {
    println!(
        "| {name} | {} | {:.0} | {:.0} | {:.3} | {} | {} | {} / {} / {} | {} / {} / {} | {} | {} | {:.0} |",
        r.rate,
        r.offered_pps,
        r.delivered_pps,
        r.loss_pct,
        opt(r.server_us_per_relayed),
        opt(r.server_wakeups_per_relayed),
        r.latency_p50_us,
        r.latency_p99_us,
        r.latency_p999_us,
        r.r2r_p50_us,
        r.r2r_p99_us,
        r.r2r_p999_us,
        cnt(r.server_drops),
        cnt(r.load_drops),
        r.load_cpu_pct,
    );
    flush();
}

const HEADER: &str = "| server | rate | offered | delivered | loss % | µs/relayed | wakeups/relayed | one pass p50/p99/p99.9 µs | relay-to-relay p50/p99/p99.9 µs | server drops | tool drops | tool CPU % |\n|---|---|---|---|---|---|---|---|---|---|---|---|";

/// Steps every server up the rate ladder: the highest loss-free rate is
/// the last step before the first loss; the ladder goes on past it while
/// the delivered rate still grows, to find the peak (the capacity the
/// overload section doubles). Returns per server the highest loss-free
/// rate of each repetition and the highest delivered rate seen.
fn step_up(
    servers: &[Server],
    sessions: &mut [BrowserSession],
    rates: &[u64],
    reps: usize,
    secs: f64,
) -> (Vec<Vec<f64>>, Vec<f64>) {
    let mut best = vec![Vec::new(); servers.len()];
    let mut peak = vec![0.0f64; servers.len()];
    for rep in 0..reps {
        // Per server: still climbing, lost already, last delivered rate.
        let mut climbing = vec![true; servers.len()];
        let mut lost = vec![false; servers.len()];
        let mut last = vec![0.0f64; servers.len()];
        let mut top = vec![0.0; servers.len()];
        for &rate in rates {
            for (i, s) in servers.iter().enumerate() {
                if !climbing[i] {
                    continue;
                }
                let r = sessions[i]
                    .run(&browser(s, rate, secs))
                    .expect("browser-like run");
                peak[i] = peak[i].max(r.delivered_pps);
                if rep == 0 {
                    row(s.name, &r);
                }
                if !lost[i] && loss_free(&r) {
                    top[i] = rate as f64;
                } else {
                    // Past the first loss: climb on only while delivery grows.
                    climbing[i] = !lost[i] || r.delivered_pps > 1.03 * last[i];
                    lost[i] = true;
                }
                last[i] = r.delivered_pps;
            }
            if !climbing.iter().any(|&c| c) {
                break;
            }
        }
        for (i, t) in top.into_iter().enumerate() {
            best[i].push(t);
        }
    }
    (best, peak)
}

fn main() {
    let quick = std::env::var("TERN_BENCH_QUICK").is_ok_and(|v| v == "1");
    let started = Instant::now();
    let (dir, servers) = start_servers("tern-browser-bench");
    let reps = if quick { 1 } else { REPS };
    let secs = if quick { 1.0 } else { 2.0 };
    println!(
        "browser_like: {} cores, servers on core 0, load on core 1, {secs} s per run, {reps} rep(s), servers: {}",
        cores(),
        servers
            .iter()
            .map(|s| s.name)
            .collect::<Vec<_>>()
            .join(", ")
    );

    // Latency first: in one bench process, the paced runs read a p50 of
    // 70–210 µs for both servers after the 1,000-flow sections, against
    // ≈ 40 µs from a fresh generator against the same servers (measured by
    // hand with `tern load`): a state of the generator, not of the
    // servers, not explained yet.
    latency_table(&servers, reps);
    gso_line(&servers, reps);

    let rates = ladder(quick);
    let mut sessions: Vec<BrowserSession> = servers
        .iter()
        .map(|s| BrowserSession::establish(&browser(s, 1, secs)).expect("establish flows"))
        .collect();
    let peak = headline(&servers, &mut sessions, rates, reps, secs);
    overload(&servers, &mut sessions, &peak, reps, secs);
    for s in sessions {
        s.close().expect("close flows");
    }
    flush();

    if !quick && cores() >= 2 {
        drop(servers);
        workers(&dir, rates, secs);
    }
    println!(
        "\nbrowser_like finished in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Section 3: p50/p99/p99.9, CPU and wakeups at 5k, 20k and 100k pkt/s.
fn latency_table(servers: &[Server], reps: usize) {
    println!(
        "\n## Paced single datagrams over 100 allocations × 100 B, client→peer (median of {reps})\n"
    );
    println!(
        "| rate | server | CPU % of a core | µs/pkt | wakeups/pkt | loss % | p50 µs | p99 µs | p99.9 µs |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut sessions: Vec<Session> = servers
        .iter()
        .map(|s| Session::establish(&base(s, 100, 2.0)).expect("establish"))
        .collect();
    for rate in [5_000u64, 20_000, 100_000] {
        let mut rows: Vec<Vec<Report>> = servers.iter().map(|_| Vec::new()).collect();
        for _ in 0..reps {
            for (i, s) in servers.iter().enumerate() {
                let mut c = base(s, 100, 2.0);
                c.rate = Some(rate);
                rows[i].push(sessions[i].relay(&c).expect("paced run"));
            }
        }
        for (s, rs) in servers.iter().zip(&rows) {
            let med = |f: &dyn Fn(&Report) -> f64| stats(rs.iter().map(f).collect()).0;
            println!(
                "| {rate} | {} | {:.1} | {:.2} | {:.2} | {:.3} | {:.0} | {:.0} | {:.0} |",
                s.name,
                med(&|r| 100.0 * r.server_cpu_s.unwrap_or(f64::NAN) / r.duration_s),
                med(&|r| r.server_us_per_pkt.unwrap_or(f64::NAN)),
                med(&|r| r.server_wakeups_per_pkt.unwrap_or(f64::NAN)),
                med(&|r| r.loss_pct),
                med(&|r| r.latency_p50_us as f64),
                med(&|r| r.latency_p99_us as f64),
                med(&|r| r.latency_p999_us as f64),
            );
            flush();
        }
    }
    for s in sessions {
        s.close().expect("close");
    }
}

/// Section 4: the GSO-burst case as a secondary line.
fn gso_line(servers: &[Server], reps: usize) {
    println!(
        "\n## Secondary: GSO bursts, 10 allocations × 100 B, bursts of 8, max rate (median of {reps})\n"
    );
    for s in servers {
        let mut session = Session::establish(&base(s, 10, 1.0)).expect("establish");
        let mut pps = Vec::new();
        let mut us = Vec::new();
        for _ in 0..reps {
            let mut c = base(s, 10, 1.0);
            c.burst = 8;
            let r = session.relay(&c).expect("gso run");
            pps.push(r.delivered_pps);
            us.push(r.server_us_per_pkt.unwrap_or(f64::NAN));
        }
        println!(
            "- {}: {:.0} pkt/s delivered, {:.2} µs/packet",
            s.name,
            stats(pps).0,
            stats(us).0
        );
        session.close().expect("close");
    }
    flush();
}

/// The rate ladder of the headline section.
fn ladder(quick: bool) -> &'static [u64] {
    if quick {
        &[
            25_000, 50_000, 75_000, 100_000, 125_000, 150_000, 200_000, 250_000, 300_000,
        ]
    } else {
        &[
            20_000, 40_000, 60_000, 80_000, 100_000, 120_000, 140_000, 160_000, 180_000, 200_000,
            230_000, 260_000, 300_000, 350_000,
        ]
    }
}

/// Section 1: the ladder and the highest loss-free rates; returns each
/// server's peak delivered rate.
fn headline(
    servers: &[Server],
    sessions: &mut [BrowserSession],
    rates: &[u64],
    reps: usize,
    secs: f64,
) -> Vec<f64> {
    let realtime = browser(&servers[0], 1, secs).realtime_rate();
    println!(
        "\n## Browser-like: {FLOWS} flows, single datagrams, paced per flow (real time = {realtime:.0} pkt/s), step up until loss (rep 1 shown)\n"
    );
    println!("{HEADER}");
    let (best, peak) = step_up(servers, sessions, rates, reps, secs);
    println!();
    for (i, s) in servers.iter().enumerate() {
        let (m, lo, hi) = stats(best[i].clone());
        println!(
            "- {}: highest loss-free rate {m:.0} pkt/s (min {lo:.0}, max {hi:.0} over {reps}); peak delivered {:.0} pkt/s",
            s.name, peak[i]
        );
    }
    if best.len() == 2 {
        println!(
            "- tern/coturn highest loss-free rate: {:.2}×",
            stats(best[0].clone()).0 / stats(best[1].clone()).0
        );
    }
    flush();
    peak
}

/// Section 2: overload. One generator core cannot offer twice what a
/// server core carries, so the server's core is shared with a busy loop
/// (the scheduler gives each half): the server's peak is taken at offered
/// rates around half its unshared peak, then it is offered twice that
/// peak. Delivered ÷ peak shows whether it livelocks.
fn overload(
    servers: &[Server],
    sessions: &mut [BrowserSession],
    peak: &[f64],
    reps: usize,
    secs: f64,
) {
    println!(
        "\n## Overload: the server's core shared with a busy loop, offered 2× its peak there ({reps} rep(s))\n"
    );
    println!("{HEADER}");
    let _hog = BusyLoop::start(0);
    for (i, s) in servers.iter().enumerate() {
        let mut shared_peak = 0.0f64;
        for share in [0.3, 0.4, 0.5, 0.6] {
            let r = sessions[i]
                .run(&browser(s, (share * peak[i]) as u64, secs))
                .expect("shared-core run");
            row(s.name, &r);
            shared_peak = shared_peak.max(r.delivered_pps);
        }
        let rate = (2.0 * shared_peak) as u64;
        let mut kept = Vec::new();
        let mut offered = Vec::new();
        for _ in 0..reps {
            let r = sessions[i]
                .run(&browser(s, rate.max(1), secs))
                .expect("overload run");
            row(s.name, &r);
            kept.push(r.delivered_pps / shared_peak.max(1.0));
            offered.push(r.offered_pps / shared_peak.max(1.0));
        }
        let offered = stats(offered).0;
        println!(
            "- {}: peak on a shared core {shared_peak:.0} pkt/s (alone {:.0}); offered {offered:.1}× that, delivered {:.0} % of it (target ≥ 90 %){}",
            s.name,
            peak[i],
            100.0 * stats(kept).0,
            if offered < 1.9 {
                "; the load generator could not offer 2×"
            } else {
                ""
            }
        );
    }
}

/// A thread of this process spinning on one core until dropped (at most
/// ten minutes). A thread, not a child process, so it cannot outlive the
/// bench.
struct BusyLoop {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BusyLoop {
    fn start(cpu: usize) -> Self {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            common::pin_self(cpu); // this thread only: affinity is per thread
            let end = Instant::now() + Duration::from_secs(600);
            while !flag.load(Ordering::Relaxed) && Instant::now() < end {
                std::hint::spin_loop();
            }
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for BusyLoop {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Section 5: the ladder for tern with 2 workers, unpinned.
fn workers(dir: &std::path::Path, rates: &[u64], secs: f64) {
    let two = start_tern(dir, 2, false);
    println!("\n## Workers: tern with 2 workers (unpinned; the load generator shares the cores)\n");
    println!("{HEADER}");
    let mut session = BrowserSession::establish(&browser(&two, 1, secs)).expect("establish flows");
    let (best, peak) = step_up(
        std::slice::from_ref(&two),
        std::slice::from_mut(&mut session),
        rates,
        1,
        secs,
    );
    println!(
        "- tern, 2 workers: highest loss-free rate {:.0} pkt/s, peak delivered {:.0} pkt/s",
        best[0][0], peak[0]
    );
    session.close().expect("close flows");
}
