//! Operations: the admin HTTP listener, metrics, health, systemd notify.
//!
//! | Module        | Owns                                                        |
//! |---------------|-------------------------------------------------------------|
//! | `server`      | hardened HTTP/1.1 server, generic over a `Router`           |
//! | `api`         | admin routes over the `AdminState` trait, bearer token      |
//! | `metrics`     | per-worker counter blocks, label sets, global gauges        |
//! | `prometheus`  | text exposition renderer                                    |
//! | `cert_expiry` | `notAfter` of a DER certificate (minimal, checked DER walk)  |
//! | `procfs`      | `process_*` numbers and UDP receive drops from `/proc`      |
//! | `ops`         | `Ops`: the ready-made `AdminState`; `Control` for workers   |
//! | `liveness`    | worker heartbeats → `/livez` and the systemd watchdog       |
//! | `sd_notify`   | `$NOTIFY_SOCKET` protocol                                   |
//! | `turn_events` | core `Event`/`DropReason`/`Stats` → worker metrics         |
//! | `settings`    | `[admin]` → `AdminSettings`                                 |
//!
//! # Why hyper on its own current-thread runtime
//! The workers are mio threads that must never wait on HTTP. The admin
//! listener therefore runs on a dedicated thread with a tokio
//! current-thread runtime (tokio is already a dependency; one thread, no
//! work-stealing pool) and hyper 1's HTTP/1.1 server: a well-reviewed
//! parser with the knobs hostile clients need (header read timeout, header
//! size cap) and nothing else — no router framework (axum would add
//! tower and a dozen crates for nine routes). tiny_http was the other
//! candidate; it has no header-read timeout and a thread per connection.
//! Only hyper's `http1` + `server` features are built.
//!
//! # The driver's side
//! `serve` builds `Arc<Metrics>` with one [`WorkerMetrics`] per worker, a
//! [`Liveness`], and an [`Ops`] over the driver's [`Control`]
//! implementation (list/kick allocations, drain flag, reload), then calls
//! [`start`] and `Ops::set_listening` once bound. Each worker, once per
//! loop iteration: `beat(liveness.stamp(now))`, `publish_turn_stats`,
//! `publish_relay_bytes`; per output of the core: `turn_events::record_*`.
//! Its poll timeout is capped (1 s) so an idle worker still beats.

pub mod api;
pub mod cert_expiry;
pub mod client;
pub mod liveness;
pub mod metrics;
pub mod ops;
pub mod procfs;
pub mod prometheus;
pub mod sd_notify;
pub mod server;
pub mod settings;
pub mod turn_events;

use std::sync::Arc;

pub use api::{AdminRouter, AdminState, AllocationInfo, NotReady, ReloadSummary, Status};
pub use liveness::Liveness;
pub use metrics::{GlobalMetrics, Metrics, WorkerMetrics};
pub use ops::{Control, Endpoints, Ops};
pub use server::{Limits, ServerHandle};
pub use settings::AdminSettings;

/// An HTTP listener could not start.
#[derive(Debug, thiserror::Error)]
#[error(
    "{key}: cannot listen on {addr}: {error}; choose a free address, \
     or set {key} = \"\" to turn the listener off"
)]
pub struct StartError {
    /// The config key naming the address (`admin.listen`, `issuer.listen`).
    pub key: &'static str,
    pub addr: std::net::SocketAddr,
    pub error: std::io::Error,
}

/// Starts the admin listener when `settings.listen` is set. On return the
/// socket is bound (the readiness signal).
pub fn start<S: AdminState>(
    settings: &AdminSettings,
    state: Arc<S>,
) -> Result<Option<ServerHandle>, StartError> {
    let Some(addr) = settings.listen else {
        return Ok(None);
    };
    let router = Arc::new(AdminRouter::new(state, settings.token.as_ref()));
    let handle = server::spawn(addr, router, Limits::default(), "tern-admin").map_err(|error| {
        StartError {
            key: "admin.listen",
            addr,
            error,
        }
    })?;
    tracing::info!(addr = %handle.local_addr(), token = settings.token.is_some(), "admin listener up");
    Ok(Some(handle))
}

/// The credential issuer served by the same hardened server (its own
/// listener, its own routes). `unix_secs` is the driver's wall clock
/// (`io::clock::unix_secs`), the only place that reads time.
struct IssuerRouter {
    issuer: Arc<crate::issuer::Issuer>,
    unix_secs: fn() -> u64,
}

impl server::Router for IssuerRouter {
    fn handle(&self, req: &server::Request<bytes::Bytes>) -> hyper::Response<Vec<u8>> {
        self.issuer.handle(req, (self.unix_secs)())
    }
}

/// Starts the credential issuer's listener at `issuer.settings().listen`,
/// bodies capped at `issuer::MAX_BODY`.
pub fn start_issuer(
    issuer: Arc<crate::issuer::Issuer>,
    unix_secs: fn() -> u64,
) -> Result<ServerHandle, StartError> {
    let addr = issuer.settings().listen;
    let limits = Limits {
        max_body_bytes: crate::issuer::MAX_BODY,
        ..Limits::default()
    };
    let fleet = issuer.fleet_task();
    let nodes = issuer.settings().nodes.len();
    let router = Arc::new(IssuerRouter { issuer, unix_secs });
    let handle =
        server::spawn_with(addr, router, limits, "tern-issuer", fleet).map_err(|error| {
            StartError {
                key: "issuer.listen",
                addr,
                error,
            }
        })?;
    tracing::info!(addr = %handle.local_addr(), cluster_nodes = nodes, "credential issuer listening");
    Ok(handle)
}

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "tests mint credentials at the real wall time"
)]
pub(crate) mod tests;
