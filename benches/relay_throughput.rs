//! Relay throughput, tern vs coturn, on real sockets over 127.0.0.1.
//!
//! `cargo bench --bench relay_throughput` (≈ 6 min; `TERN_BENCH_QUICK=1` ≈ 1 min).
//!
//! Starts the release `tern` (one worker) and, when `turnserver` is on the
//! PATH, coturn (`--relay-threads=1`), both pinned to core 0; the load
//! generator ([`tern::tools::load`], in this process) is pinned to core 1. Each
//! shape runs against both servers alternately, [`REPS`] times, and the
//! table shows medians, min–max and tern/coturn ratios. Server CPU time per
//! delivered packet (utime+stime from /proc/PID/stat) is the figure that
//! survives a noisy machine; packets/s depends on what else runs.
//!
//! Cases: max rate for 1/10/100 allocations × 100/1200 B × bursts of 8/1;
//! the highest loss-free paced rate; loss at 80 % of saturation; paced
//! 20 k pkt/s over 100 allocations (CPU, latency); RSS per idle allocation
//! with a channel; Allocate+ChannelBind per second.

#![allow(
    clippy::disallowed_methods,
    reason = "benchmarks measure wall time and wait for servers; the clock wall is for the server code"
)]

use std::io::Write as _;
use std::thread;
use std::time::{Duration, Instant};

use tern::tools::load::{self, Direction, LoadConfig, Report, Session, proc_rss_kib};

mod common;
use common::{PASS, Server, USER, cores, start_servers, stats};
/// Repetitions of every measured shape per server.
const REPS: usize = 3;

fn cfg(server: &Server, allocations: usize, size: usize, burst: usize) -> LoadConfig {
    LoadConfig {
        server: server.addr,
        user: USER.into(),
        password: PASS.into(),
        allocations,
        size,
        burst,
        rate: None,
        duration: Duration::from_secs(2),
        direction: Direction::ToPeer,
        window: 256,
        gso: true,
        setup_window: 32,
        drain: Duration::from_millis(300),
        server_pid: Some(server.pid()),
    }
}

fn fmt_k(x: f64) -> String {
    format!("{:.1}k", x / 1e3)
}

fn row_cell(v: &[f64], k: bool) -> String {
    let (m, lo, hi) = stats(v.to_vec());
    if k {
        format!("{} ({}–{})", fmt_k(m), fmt_k(lo), fmt_k(hi))
    } else {
        format!("{m:.2} ({lo:.2}–{hi:.2})")
    }
}

fn ratio(a: &[f64], b: &[f64]) -> String {
    if b.is_empty() {
        return "–".into();
    }
    format!("{:.2}×", stats(a.to_vec()).0 / stats(b.to_vec()).0)
}

#[derive(Default)]
struct Samples {
    pps: Vec<f64>,
    us: Vec<f64>,
    loss: Vec<f64>,
    p99: Vec<f64>,
}

impl Samples {
    fn add(&mut self, r: &Report) {
        self.pps.push(r.delivered_pps);
        self.us.push(r.server_us_per_pkt.unwrap_or(f64::NAN));
        self.loss.push(r.loss_pct);
        self.p99.push(r.latency_p99_us as f64);
    }
}

#[allow(
    clippy::too_many_lines,
    reason = "one report, top to bottom, in the order BENCHMARKS.md shows it"
)]
fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let quick = std::env::var("TERN_BENCH_QUICK").is_ok_and(|v| v == "1");
    let started = Instant::now();
    let (dir, servers) = start_servers("tern-bench");
    let secs = if quick { 1.0 } else { 2.0 };
    println!(
        "relay_throughput: {} cores, server on core 0, load on core 1, {secs} s per run, {REPS} reps, servers: {}",
        cores(),
        servers
            .iter()
            .map(|s| s.name)
            .collect::<Vec<_>>()
            .join(", ")
    );

    // ---- Max rate, shapes ------------------------------------------------
    let allocs: &[usize] = if quick { &[10] } else { &[1, 10, 100] };
    let sizes: &[usize] = if quick { &[100] } else { &[100, 1200] };
    let bursts = [8usize, 1];
    println!(
        "\n## Max rate, client→peer (delivered pkt/s and server µs/packet: median (min–max) of {REPS})\n"
    );
    println!(
        "| allocs | size | burst | tern pkt/s | coturn pkt/s | ratio | tern µs/pkt | coturn µs/pkt | coturn/tern µs | tern loss % | coturn loss % |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut saturation_10x100x8: Vec<f64> = vec![0.0; servers.len()];
    for &n in allocs {
        let mut sessions: Vec<Session> = servers
            .iter()
            .map(|s| Session::establish(&cfg(s, n, 100, 8)).expect("establish"))
            .collect();
        for &size in sizes {
            for &burst in &bursts {
                let mut samples: Vec<Samples> =
                    servers.iter().map(|_| Samples::default()).collect();
                for _ in 0..REPS {
                    for (i, s) in servers.iter().enumerate() {
                        let mut c = cfg(s, n, size, burst);
                        c.duration = Duration::from_secs_f64(secs);
                        let r = sessions[i].relay(&c).expect("relay run");
                        samples[i].add(&r);
                    }
                }
                if n == 10 && size == 100 && burst == 8 {
                    for (i, s) in samples.iter().enumerate() {
                        saturation_10x100x8[i] = stats(s.pps.clone()).0;
                    }
                }
                let t = &samples[0];
                let c = samples.get(1);
                let empty = Samples::default();
                let c = c.unwrap_or(&empty);
                println!(
                    "| {n} | {size} | {burst} | {} | {} | {} | {} | {} | {} | {:.2} | {:.2} |",
                    row_cell(&t.pps, true),
                    if c.pps.is_empty() {
                        "–".into()
                    } else {
                        row_cell(&c.pps, true)
                    },
                    ratio(&t.pps, &c.pps),
                    row_cell(&t.us, false),
                    if c.us.is_empty() {
                        "–".into()
                    } else {
                        row_cell(&c.us, false)
                    },
                    ratio(&c.us, &t.us),
                    stats(t.loss.clone()).0,
                    stats(c.loss.clone()).0,
                );
                let _ = std::io::stdout().flush();
            }
        }
        for s in sessions {
            s.close().expect("close");
        }
    }

    // ---- Paced: highest loss-free rate, and loss at 80 % of saturation ----
    println!("\n## Paced, 10 allocations × 100 B, bursts of 8, client→peer\n");
    let rates: &[u64] = if quick {
        &[50_000, 100_000, 200_000]
    } else {
        &[
            25_000, 50_000, 100_000, 150_000, 200_000, 250_000, 300_000, 400_000, 500_000,
        ]
    };
    for (i, s) in servers.iter().enumerate() {
        let mut session = Session::establish(&cfg(s, 10, 100, 8)).expect("establish");
        let mut best = 0;
        for &r in rates {
            let mut c = cfg(s, 10, 100, 8);
            c.rate = Some(r);
            c.duration = Duration::from_secs(1);
            let rep = session.relay(&c).expect("paced run");
            if rep.loss_pct > 0.0 || rep.delivered_pps < 0.95 * r as f64 {
                println!(
                    "- {}: {r} pkt/s offered → {:.0} delivered, loss {:.3} % (stop)",
                    s.name, rep.delivered_pps, rep.loss_pct
                );
                break;
            }
            best = r;
        }
        println!(
            "- {}: highest loss-free paced rate tried: {best} pkt/s",
            s.name
        );
        let sat = saturation_10x100x8[i];
        if sat > 0.0 {
            let r80 = (0.8 * sat) as u64;
            let mut losses = Vec::new();
            for _ in 0..REPS {
                let mut c = cfg(s, 10, 100, 8);
                c.rate = Some(r80);
                c.duration = Duration::from_secs_f64(secs);
                losses.push(session.relay(&c).expect("80% run").loss_pct);
            }
            let (m, lo, hi) = stats(losses);
            println!(
                "- {}: at 80 % of its saturation ({r80} pkt/s): loss median {m:.4} % ({lo:.4}–{hi:.4})",
                s.name
            );
        }
        session.close().expect("close");
    }

    // ---- Paced 20 k pkt/s over 100 allocations, every packet alone -------
    println!("\n## Paced 20,000 pkt/s, 100 allocations × 100 B, bursts of 1 (median of {REPS})\n");
    println!("| server | server CPU % | µs/pkt | loss % | p50 µs | p99 µs | max µs |");
    println!("|---|---|---|---|---|---|---|");
    let mut cpu_pct: Vec<f64> = Vec::new();
    {
        let mut sessions: Vec<Session> = servers
            .iter()
            .map(|s| Session::establish(&cfg(s, 100, 100, 1)).expect("establish"))
            .collect();
        let mut rows: Vec<Vec<Report>> = servers.iter().map(|_| Vec::new()).collect();
        for _ in 0..REPS {
            for (i, s) in servers.iter().enumerate() {
                let mut c = cfg(s, 100, 100, 1);
                c.rate = Some(20_000);
                c.duration = Duration::from_secs_f64(secs.max(2.0));
                rows[i].push(sessions[i].relay(&c).expect("20k run"));
            }
        }
        for (s, rs) in servers.iter().zip(&rows) {
            let med = |f: &dyn Fn(&Report) -> f64| stats(rs.iter().map(f).collect()).0;
            let cpu = med(&|r| 100.0 * r.server_cpu_s.unwrap_or(f64::NAN) / r.duration_s);
            cpu_pct.push(cpu);
            println!(
                "| {} | {cpu:.1} | {:.2} | {:.3} | {:.0} | {:.0} | {:.0} |",
                s.name,
                med(&|r| r.server_us_per_pkt.unwrap_or(f64::NAN)),
                med(&|r| r.loss_pct),
                med(&|r| r.latency_p50_us as f64),
                med(&|r| r.latency_p99_us as f64),
                med(&|r| r.latency_max_us as f64),
            );
        }
        if cpu_pct.len() == 2 {
            println!(
                "\ntern/coturn CPU at 20 k pkt/s: {:.2}",
                cpu_pct[0] / cpu_pct[1]
            );
        }
        for s in sessions {
            s.close().expect("close");
        }
    }

    // ---- RSS per idle allocation with a channel --------------------------
    let idle_n = if quick { 500 } else { 2_000 };
    println!("\n## RSS per idle allocation with a channel ({idle_n} allocations)\n");
    for s in &servers {
        let before = proc_rss_kib(s.pid()).unwrap_or(0);
        let session = Session::establish(&cfg(s, idle_n, 100, 8)).expect("establish idle");
        thread::sleep(Duration::from_millis(300));
        let after = proc_rss_kib(s.pid()).unwrap_or(0);
        session.close().expect("close");
        println!(
            "- {}: VmRSS {before} → {after} KiB: {:.2} KiB per allocation",
            s.name,
            after.saturating_sub(before) as f64 / idle_n as f64
        );
    }

    // ---- Allocate + ChannelBind per second -------------------------------
    let alloc_n = if quick { 500 } else { 2_000 };
    println!(
        "\n## Allocate+ChannelBind per second ({alloc_n} per run, 32 in flight, median of {REPS})\n"
    );
    let mut per_s: Vec<Vec<f64>> = servers.iter().map(|_| Vec::new()).collect();
    let mut us_alloc: Vec<Vec<f64>> = servers.iter().map(|_| Vec::new()).collect();
    for _ in 0..REPS {
        for (i, s) in servers.iter().enumerate() {
            let r = load::allocate_only(&cfg(s, alloc_n, 100, 8)).expect("allocate-only");
            per_s[i].push(r.allocate_per_s);
            us_alloc[i].push(r.server_us_per_alloc.unwrap_or(f64::NAN));
        }
    }
    for (i, s) in servers.iter().enumerate() {
        println!(
            "- {}: {} allocations/s; server CPU {} µs per allocation",
            s.name,
            row_cell(&per_s[i], true),
            row_cell(&us_alloc[i], false)
        );
    }
    println!(
        "\nrelay_throughput finished in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
