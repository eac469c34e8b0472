//! [`ServeControl`]: the admin API's [`Control`] for a running `tern
//! serve` — the workers' mailboxes for allocations, kick and drain, and
//! the reload of the configuration it was started from.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use super::reload::{self, Loaded, Source};
use crate::admin::{AllocationInfo, Control, Metrics};
use crate::io::WorkerControl;
use crate::io::tls::CertResolver;

/// What a reload compares against and updates.
#[derive(Debug)]
struct Current {
    source: Source,
    loaded: Loaded,
}

/// The driver's side of the admin API.
#[derive(Debug)]
pub struct ServeControl {
    workers: WorkerControl,
    certs: Option<Arc<CertResolver>>,
    metrics: Arc<Metrics>,
    current: Mutex<Current>,
    /// `server.drain_timeout_secs` (reloadable).
    drain_timeout_secs: Arc<AtomicU64>,
}

impl ServeControl {
    pub fn new(
        workers: WorkerControl,
        certs: Option<Arc<CertResolver>>,
        metrics: Arc<Metrics>,
        source: Source,
        loaded: Loaded,
    ) -> Self {
        let drain = Arc::new(AtomicU64::new(loaded.file.server.drain_timeout_secs));
        Self {
            workers,
            certs,
            metrics,
            current: Mutex::new(Current { source, loaded }),
            drain_timeout_secs: drain,
        }
    }

    /// `server.drain_timeout_secs` as now configured.
    pub fn drain_timeout_secs(&self) -> u64 {
        self.drain_timeout_secs.load(Relaxed)
    }

    /// Sets the gauges that come from the configuration: the TLS
    /// certificate expiry (from the certificate file) and the capacity.
    pub fn publish_config_gauges(&self) {
        let cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        publish_cert_expiry(&self.metrics, &cur.loaded);
        publish_capacity(&self.metrics, &cur.loaded);
    }

    fn try_reload(&self) -> Result<String, String> {
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let new = cur.source.load_again().map_err(|e| e.to_string())?;
        let fixed = reload::fixed_changes(&cur.loaded, &new);
        if !fixed.is_empty() {
            return Err(format!(
                "{}: {} cannot change while tern runs (restart to change them); \
                 nothing was applied, the old configuration stays",
                new.file.origin,
                fixed.join(", ")
            ));
        }
        if let Some(c) = &self.certs {
            c.reload()
                .map_err(|e| format!("{e}; nothing was applied, the old configuration stays"))?;
        }
        // Everything below cannot fail on a file that resolved.
        if let Err(e) = crate::telemetry::set_level(&new.log_level) {
            tracing::warn!(error = %e, "reload: log level unchanged");
        }
        let summary = reload::summary(&cur.loaded, &new);
        self.workers.apply_config(&reload::core_config(&new));
        self.workers.set_quota_limits(&new.settings.proto.limits);
        self.drain_timeout_secs
            .store(new.file.server.drain_timeout_secs, Relaxed);
        publish_cert_expiry(&self.metrics, &new);
        publish_capacity(&self.metrics, &new);
        cur.loaded = new;
        Ok(summary)
    }
}

/// `tern_tls_certificate_expiry_timestamp_seconds` from the configured
/// certificate (0 without TLS or when it cannot be read).
fn publish_cert_expiry(metrics: &Metrics, l: &Loaded) {
    let expiry = l
        .settings
        .tls
        .as_ref()
        .and_then(|t| crate::selfcheck::certificate_not_after(&t.cert).ok())
        .and_then(|t| u64::try_from(t).ok())
        .unwrap_or(0);
    metrics.global.tls_cert_expiry_unix.store(expiry, Relaxed);
}

/// `/status` `capacity`: the soft limit where new Allocates start to be
/// redirected, else the hard one, and never more than there are relay ports
/// (one per allocation and family).
fn publish_capacity(metrics: &Metrics, l: &Loaded) {
    let s = &l.settings;
    let limit = s
        .proto
        .alternates
        .soft_max_allocations
        .unwrap_or(s.proto.limits.max_allocations);
    let ports = s.relay_ports.clone().count() as u64;
    let capacity = u64::from(limit).min(ports);
    metrics.global.allocations_capacity.store(capacity, Relaxed);
}

impl Control for ServeControl {
    fn allocations(&self, user: Option<&str>) -> Vec<AllocationInfo> {
        self.workers.allocations(user)
    }

    fn kick(&self, user: &str) -> usize {
        let n = self.workers.kick(user);
        tracing::info!(user, ended = n, "allocations kicked by the operator");
        n
    }

    fn set_draining(&self, draining: bool) {
        self.workers.set_draining(draining);
    }

    fn reload(&self) -> Result<String, String> {
        let result = self.try_reload();
        match &result {
            Ok(summary) => tracing::info!(%summary, "configuration reloaded"),
            Err(e) => tracing::error!(error = %e, "configuration NOT reloaded"),
        }
        result
    }
}
