//! From running to stopped: signals, the graceful drain, the watchdog.
//!
//! - SIGTERM (or `tern ctl drain`): drain. Readiness turns 503, systemd
//!   gets STOPPING=1, new Allocates are refused; everything else goes on.
//!   tern exits 0 when the last allocation ends, or when
//!   `server.drain_timeout_secs` has passed (0: at once). `tern ctl
//!   undrain` cancels a drain.
//! - A second SIGTERM, or SIGINT: stop at once (all allocations end).
//! - SIGHUP: reload the configuration (`reload.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::control::ServeControl;
use crate::admin::metrics::{Label, Transport};
use crate::admin::{AdminState, Ops};

/// How often the drain's end conditions are checked.
const DRAIN_TICK: Duration = Duration::from_millis(100);

/// Why the server stops.
#[derive(Debug, PartialEq, Eq)]
enum Stop {
    Signal(&'static str),
    Drained,
    DrainTimeout,
}

/// Runs the watchdog thread and the signal loop until a stop, then shuts
/// the driver down.
pub(super) fn run(ops: &Arc<Ops<ServeControl>>, handle: crate::io::Handle) -> anyhow::Result<()> {
    let (stop_watchdog, watchdog_rx) = std::sync::mpsc::channel::<()>();
    let watchdog = {
        let ops = Arc::clone(ops);
        std::thread::Builder::new()
            .name("tern-watchdog".into())
            .spawn(move || ops.watchdog_loop(&watchdog_rx))?
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let stop = rt.block_on(wait_for_stop(ops));
    drop(stop_watchdog);
    let _ = watchdog.join();
    let stop = stop?;
    tracing::info!(
        ?stop,
        allocations = live_allocations(ops),
        "stopping: ending all allocations"
    );
    handle.shutdown();
    Ok(())
}

fn live_allocations(ops: &Ops<ServeControl>) -> u64 {
    Transport::ALL
        .iter()
        .map(|&t| ops.metrics.allocations_on(t))
        .sum()
}

async fn wait_for_stop(ops: &Arc<Ops<ServeControl>>) -> anyhow::Result<Stop> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut tick = tokio::time::interval(DRAIN_TICK);
    // When the current drain must end (None: not draining).
    let mut deadline: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = term.recv() => {
                if ops.draining() {
                    return Ok(Stop::Signal("second SIGTERM"));
                }
                tracing::info!("SIGTERM: draining (a second SIGTERM or SIGINT stops at once)");
                ops.set_draining(true);
            }
            _ = int.recv() => return Ok(Stop::Signal("SIGINT")),
            _ = hup.recv() => {
                // The reload blocks this thread briefly (file read, worker
                // handoff); signals arriving meanwhile wait in the queue.
                let _ = ops.reload();
            }
            _ = tick.tick() => {}
        }
        if let Some(stop) = drain_step(ops, &mut deadline) {
            return Ok(stop);
        }
    }
}

/// Follows the drain flag (set by SIGTERM or the admin API): starts and
/// cancels the deadline, and says when to stop.
fn drain_step(ops: &Ops<ServeControl>, deadline: &mut Option<Instant>) -> Option<Stop> {
    if !ops.draining() {
        if deadline.take().is_some() {
            tracing::info!("drain cancelled");
        }
        return None;
    }
    let now = crate::io::clock::mono();
    let limit = *deadline.get_or_insert_with(|| {
        let secs = ops.control().drain_timeout_secs();
        tracing::info!(timeout_s = secs, "drain started");
        now + Duration::from_secs(secs)
    });
    if live_allocations(ops) == 0 {
        Some(Stop::Drained)
    } else if now >= limit {
        Some(Stop::DrainTimeout)
    } else {
        None
    }
}
