//! [`Ops`]: the ready-made [`AdminState`]. It owns what is the same for
//! every driver — metrics, liveness, drain flag, readiness inputs, the last
//! reload, systemd notifications — and asks the driver, through the small
//! [`Control`] trait, only for what needs the workers: listing and ending
//! allocations, telling them about a drain, and reloading.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::metrics::{Label, Metrics, ReloadResult, Transport};
use super::sd_notify::Notifier;
use super::{AdminState, AllocationInfo, Liveness, NotReady, ReloadSummary, Status};
use crate::proto::time::Now;

/// Where `Ops` reads time: the driver's clock (`io::clock::now`), so the
/// clock wall holds (only `io::clock` reads clocks) and tests can pass
/// their own.
pub type Clock = fn() -> Now;

/// What only the driver can do. Called on admin threads; implementations
/// send a message to each worker and (for `allocations`/`kick`) wait for
/// the answers with a timeout.
pub trait Control: Send + Sync + 'static {
    /// Live allocations (of `user` when given), collected from all workers.
    fn allocations(&self, user: Option<&str>) -> Vec<AllocationInfo>;
    /// Ends every allocation of `user` on all workers; how many ended.
    fn kick(&self, user: &str) -> usize;
    /// A drain started (`true`) or was cancelled: workers refuse new
    /// Allocates while draining.
    fn set_draining(&self, draining: bool);
    /// Re-reads the config file, validates all of it, applies it to every
    /// worker or nothing. `Ok(one-line summary of changes)` or
    /// `Err(message naming file and key)`.
    fn reload(&self) -> Result<String, String>;
}

/// Listeners and relay addresses as `/status` shows them, and whether the
/// server is up (readiness needs both).
#[derive(Clone, Debug, Default)]
pub struct Endpoints {
    /// "udp 0.0.0.0:3478", "tcp …", "tls …".
    pub listeners: Vec<String>,
    /// The advertised relay addresses.
    pub relay_addresses: Vec<String>,
    /// The startup self-check's warnings (`crate::selfcheck`), each saying
    /// what to change.
    pub warnings: Vec<String>,
}

/// The shared operations state behind the admin API and systemd.
pub struct Ops<C> {
    pub metrics: Arc<Metrics>,
    liveness: Liveness,
    clock: Clock,
    started: Instant,
    endpoints: RwLock<Endpoints>,
    listening: AtomicBool,
    draining: AtomicBool,
    last_reload: Mutex<Option<ReloadSummary>>,
    notifier: Notifier,
    control: C,
}

impl<C: Control> Ops<C> {
    /// `metrics` holds one block per worker; uptime counts from this call.
    pub fn new(
        metrics: Arc<Metrics>,
        liveness: Liveness,
        clock: Clock,
        notifier: Notifier,
        control: C,
    ) -> Self {
        Self {
            metrics,
            liveness,
            clock,
            started: clock().mono,
            endpoints: RwLock::default(),
            listening: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            last_reload: Mutex::new(None),
            notifier,
            control,
        }
    }

    /// The driver calls this once every listener is bound and the relay
    /// address is known: readiness turns 200 and systemd gets READY=1.
    pub fn set_listening(&self, endpoints: Endpoints) {
        let summary = format!("listening on {}", endpoints.listeners.join(", "));
        *self.endpoints.write().unwrap_or_else(|e| e.into_inner()) = endpoints;
        self.listening.store(true, Relaxed);
        log_notify(self.notifier.ready(&summary));
    }

    /// The driver's control.
    pub fn control(&self) -> &C {
        &self.control
    }

    /// True while draining.
    pub fn draining(&self) -> bool {
        self.draining.load(Relaxed)
    }

    /// One systemd watchdog/status round at `now`: sends WATCHDOG=1 only
    /// when every worker made progress, and a STATUS line. Returns whether
    /// the watchdog was fed. Call every `Notifier::watchdog_interval`.
    pub fn watchdog_tick(&self, now: Instant) -> bool {
        let alive = self.liveness.check(&self.metrics, now).is_ok();
        if alive {
            log_notify(self.notifier.watchdog());
        }
        log_notify(self.notifier.status(&self.status_line()));
        alive
    }

    /// "N allocations (udp A, tcp B, tls C)[, draining]".
    pub fn status_line(&self) -> String {
        let per: Vec<String> = Transport::ALL
            .iter()
            .map(|&t| format!("{} {}", t.name(), self.metrics.allocations_on(t)))
            .collect();
        let total: u64 = Transport::ALL
            .iter()
            .map(|&t| self.metrics.allocations_on(t))
            .sum();
        let drain = if self.draining() { ", draining" } else { "" };
        format!("{total} allocations ({}){drain}", per.join(", "))
    }

    /// Runs the watchdog/status loop on the calling thread until `stop`
    /// receives or is dropped. `None` interval = status every 10 s only.
    pub fn watchdog_loop(&self, stop: &std::sync::mpsc::Receiver<()>) {
        let every = self
            .notifier
            .watchdog_interval()
            .unwrap_or(Duration::from_secs(10));
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(every) {
            self.watchdog_tick((self.clock)().mono);
        }
    }
}

fn log_notify(r: std::io::Result<()>) {
    if let Err(e) = r {
        tracing::warn!(error = %e, "cannot notify systemd ($NOTIFY_SOCKET)");
    }
}

impl<C: Control> AdminState for Ops<C> {
    fn metrics(&self, out: &mut String) {
        super::prometheus::render(&self.metrics, out);
    }

    fn liveness(&self) -> Result<(), Vec<usize>> {
        self.liveness.check(&self.metrics, (self.clock)().mono)
    }

    fn readiness(&self) -> Result<(), NotReady> {
        let reason = if !self.listening.load(Relaxed) {
            "not listening yet"
        } else if self.draining() {
            "draining"
        } else {
            return Ok(());
        };
        Err(NotReady {
            reason: reason.to_owned(),
        })
    }

    fn status(&self) -> Status {
        let ep = self
            .endpoints
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Status {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_secs: (self.clock)()
                .mono
                .saturating_duration_since(self.started)
                .as_secs(),
            allocations: Transport::ALL
                .iter()
                .map(|&t| (t.name().to_owned(), self.metrics.allocations_on(t)))
                .collect(),
            draining: self.draining(),
            capacity: self.metrics.global.allocations_capacity.load(Relaxed),
            listeners: ep.listeners,
            relay_addresses: ep.relay_addresses,
            warnings: ep.warnings,
            last_reload: self
                .last_reload
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    fn allocations(&self, user: Option<&str>) -> Vec<AllocationInfo> {
        self.control.allocations(user)
    }

    fn kick(&self, user: &str) -> usize {
        self.control.kick(user)
    }

    fn set_draining(&self, draining: bool) -> bool {
        if self.draining.swap(draining, Relaxed) != draining {
            self.metrics
                .global
                .draining
                .store(u64::from(draining), Relaxed);
            self.control.set_draining(draining);
            if draining {
                log_notify(self.notifier.stopping(&self.status_line()));
            } else {
                log_notify(self.notifier.ready(&self.status_line()));
            }
            tracing::info!(draining, "drain state changed");
        }
        draining
    }

    fn reload(&self) -> Result<ReloadSummary, String> {
        log_notify(self.notifier.reloading());
        let result = self.control.reload();
        let kind = if result.is_ok() {
            ReloadResult::Success
        } else {
            ReloadResult::Failure
        };
        self.metrics.global.reload(kind);
        let summary = ReloadSummary {
            at_unix: (self.clock)().unix_secs,
            ok: result.is_ok(),
            message: result.clone().unwrap_or_else(|e| e),
        };
        *self.last_reload.lock().unwrap_or_else(|e| e.into_inner()) = Some(summary.clone());
        log_notify(self.notifier.ready(&self.status_line()));
        match result {
            Ok(_) => Ok(summary),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
#[path = "ops_tests.rs"]
#[allow(
    clippy::disallowed_methods,
    reason = "tests drive real worker threads and HTTP with the real clock"
)]
mod tests;
