//! The driver's side of operations: each worker's metrics block and
//! heartbeat, and the command mailbox the admin API talks to the workers
//! through.
//!
//! # Cost on the relay path
//! Per relayed datagram (and per spliced RFC 6062 read, `tcp_relay.rs`) a
//! worker adds its payload length to a plain `u64`
//! ([`WorkerOps::bytes_to_peer`] / [`WorkerOps::bytes_to_client`]); packet
//! counts are the core's `Stats`. Once per loop iteration
//! [`Worker::publish`] stores those totals into the worker's
//! single-writer [`WorkerMetrics`] (a handful of Relaxed stores, no
//! read-modify-write, no shared cache line). Drops and requests are
//! counted where they happen, off the forwarding branch.
//!
//! # Mailbox
//! Admin threads push a [`Ctl`] onto a worker's mailbox and wake its poll
//! through the worker's `mio::Waker`; the worker takes the whole mailbox on
//! the waker token. Questions carry a reply channel; [`WorkerControl`]
//! waits for the answers with a timeout, so a wedged worker delays the
//! admin call by at most [`REPLY_TIMEOUT`], never forever.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::clock;
use super::shared::QuotaLedger;
use super::worker::Worker;
use crate::admin::AllocationInfo;
use crate::admin::liveness::Liveness;
use crate::admin::metrics::{Label, Metrics, QuotaKind, WorkerMetrics};
use crate::admin::turn_events;
use crate::proto::config::Config;
use crate::proto::turn::{AllocationView, BindError, RelayBound};

/// How long an admin call waits for all workers' answers.
pub(crate) const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a worker may go without a loop iteration before `/livez`
/// fails. Workers wake at least every second (housekeeping), so this is
/// ten missed wakeups.
pub(crate) const MAX_STALL: Duration = Duration::from_secs(10);

/// A command for one worker.
#[derive(Debug)]
pub(crate) enum Ctl {
    /// List allocations (of a user); answer on the channel.
    Allocations(Option<String>, Sender<Vec<AllocationInfo>>),
    /// End a user's allocations; answer how many ended.
    Kick(String, Sender<usize>),
    /// Use a new configuration (reload): new requests see it, live
    /// allocations keep relaying. Answered once applied.
    ApplyConfig(Arc<Config>, Sender<()>),
    /// A drain started or was cancelled.
    SetDraining(bool),
}

/// One worker's mailbox.
pub(crate) type Mailbox = Mutex<Vec<Ctl>>;

/// What a worker keeps for operations.
pub(crate) struct WorkerOps {
    pub(crate) index: usize,
    pub(crate) metrics: Arc<WorkerMetrics>,
    pub(crate) liveness: Liveness,
    pub(crate) mailbox: Arc<Mailbox>,
    /// Relayed payload bytes, client → peer (plain: this worker only).
    pub(crate) bytes_to_peer: u64,
    /// Relayed payload bytes, peer → client.
    pub(crate) bytes_to_client: u64,
    /// Datagrams relayed relay to relay inside this worker.
    pub(crate) relayed_inside: u64,
}

impl WorkerOps {
    pub(crate) fn new(
        index: usize,
        metrics: Arc<WorkerMetrics>,
        liveness: Liveness,
        mailbox: Arc<Mailbox>,
    ) -> Self {
        Self {
            index,
            metrics,
            liveness,
            mailbox,
            bytes_to_peer: 0,
            bytes_to_client: 0,
            relayed_inside: 0,
        }
    }
}

impl Worker {
    /// Once per loop iteration: the heartbeat and the totals kept in plain
    /// fields, published to the scraper.
    pub(super) fn publish(&self, now: Instant) {
        let o = &self.ops;
        o.metrics.beat(o.liveness.stamp(now));
        o.metrics.publish_turn_stats(self.server.stats());
        o.metrics
            .publish_relay_bytes(o.bytes_to_peer, o.bytes_to_client, o.relayed_inside);
    }

    /// Once per housekeeping round (1 s): gauges that cost a walk over the
    /// worker's allocations or relay sockets.
    pub(super) fn publish_gauges(&self) {
        let g = self.server.gauges();
        let m = &self.ops.metrics;
        m.permissions.set(g.permissions);
        m.channels.set(g.channels);
        let ports: usize = self
            .relays
            .iter()
            .map(|(_, r)| r.socks.iter().flatten().count())
            .sum();
        m.relay_ports_in_use.set(ports as u64);
    }

    /// Handles every command in the mailbox (on the waker token).
    pub(super) fn mailbox(&mut self) {
        let cmds = std::mem::take(&mut *self.ops.mailbox.lock().unwrap_or_else(|e| e.into_inner()));
        for cmd in cmds {
            match cmd {
                Ctl::Allocations(user, reply) => {
                    let now = clock::mono();
                    let list = self.server.allocations(user.as_deref(), now);
                    let index = self.ops.index;
                    let _ = reply.send(list.into_iter().map(|v| info(index, v)).collect());
                }
                Ctl::Kick(user, reply) => {
                    let n = self.server.kick(&user);
                    let _ = reply.send(n);
                }
                Ctl::ApplyConfig(config, done) => {
                    self.server.apply_config(config);
                    let _ = done.send(());
                }
                Ctl::SetDraining(draining) => self.set_draining(draining),
            }
        }
        self.drain();
    }

    /// Draining: the core refuses new Allocates (403, or 300 with
    /// alternates); everything else goes on.
    fn set_draining(&mut self, draining: bool) {
        self.server.set_draining(draining);
    }

    /// `tern_quota_rejections_total{kind}` for an Allocate the driver
    /// could not carry out.
    pub(super) fn count_bind_refusal(&self, result: &Result<RelayBound, BindError>) {
        let kind = match result {
            Ok(_) | Err(BindError::UnknownToken) => return,
            Err(BindError::UserQuota) => QuotaKind::AllocationsPerUser,
            Err(BindError::TotalQuota) => QuotaKind::Allocations,
            Err(BindError::NoSocket) => QuotaKind::RelayPorts,
        };
        self.ops.metrics.quota_rejection(kind);
    }

    /// Counts one event of the core for metrics.
    #[inline]
    pub(super) fn record_event(&self, ev: &crate::proto::turn::Event) {
        turn_events::record_event(&self.ops.metrics, ev, clock::mono());
    }
}

/// The admin API's view of an allocation.
fn info(worker: usize, v: AllocationView) -> AllocationInfo {
    AllocationInfo {
        id: format!("{worker}-{}-{}", v.id.slot, v.id.generation),
        user: v.username,
        client: v.five.client,
        transport: turn_events::transport_of(v.five.transport)
            .name()
            .to_owned(),
        relay: v.relay,
        age_secs: v.age.as_secs(),
        packets_to_peer: v.traffic[0].packets,
        bytes_to_peer: v.traffic[0].bytes,
        packets_to_client: v.traffic[1].packets,
        bytes_to_client: v.traffic[1].bytes,
    }
}

/// The workers' mailboxes and wakers, for admin threads.
#[derive(Clone)]
pub struct WorkerControl {
    workers: Arc<[(Arc<Mailbox>, Arc<mio::Waker>)]>,
    quota: Arc<QuotaLedger>,
}

impl std::fmt::Debug for WorkerControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerControl")
            .field("workers", &self.workers.len())
            .finish()
    }
}

impl WorkerControl {
    pub(crate) fn new(
        workers: Vec<(Arc<Mailbox>, Arc<mio::Waker>)>,
        quota: Arc<QuotaLedger>,
    ) -> Self {
        Self {
            workers: workers.into(),
            quota,
        }
    }

    /// Sends `make()` to every worker and wakes it.
    fn broadcast(&self, make: impl Fn() -> Ctl) {
        for (mailbox, waker) in self.workers.iter() {
            mailbox
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(make());
            if let Err(e) = waker.wake() {
                tracing::warn!(error = %e, "cannot wake a worker for an admin command");
            }
        }
    }

    /// Asks every worker and collects the answers that arrive within
    /// [`REPLY_TIMEOUT`] (a missing worker is logged, not waited for).
    fn ask<T>(&self, make: impl Fn(Sender<T>) -> Ctl) -> Vec<T> {
        let (tx, rx): (Sender<T>, Receiver<T>) = mpsc::channel();
        self.broadcast(|| make(tx.clone()));
        drop(tx);
        let deadline = clock::mono() + REPLY_TIMEOUT;
        let mut out = Vec::with_capacity(self.workers.len());
        while out.len() < self.workers.len() {
            let left = deadline.saturating_duration_since(clock::mono());
            match rx.recv_timeout(left) {
                Ok(v) => out.push(v),
                Err(_) => {
                    tracing::warn!(
                        answered = out.len(),
                        workers = self.workers.len(),
                        "admin command: not every worker answered in time"
                    );
                    break;
                }
            }
        }
        out
    }

    /// Live allocations (of `user`) on all workers.
    pub fn allocations(&self, user: Option<&str>) -> Vec<AllocationInfo> {
        let user = user.map(str::to_owned);
        self.ask(|tx| Ctl::Allocations(user.clone(), tx))
            .into_iter()
            .flatten()
            .collect()
    }

    /// Ends every allocation of `user`; how many ended.
    pub fn kick(&self, user: &str) -> usize {
        self.ask(|tx| Ctl::Kick(user.to_owned(), tx))
            .into_iter()
            .sum()
    }

    /// Hands every worker a new core configuration; returns once every
    /// worker uses it (or `REPLY_TIMEOUT` passed), so requests after a
    /// reload answers see the new configuration.
    pub fn apply_config(&self, config: &Arc<Config>) {
        self.ask(|done| Ctl::ApplyConfig(Arc::clone(config), done));
    }

    /// New allocation quotas (reload), for allocations made from now on.
    pub fn set_quota_limits(&self, limits: &crate::proto::config::Limits) {
        self.quota
            .set_limits(limits.max_allocations, limits.max_allocations_per_user);
    }

    /// Tells every worker a drain started (`true`) or was cancelled.
    pub fn set_draining(&self, draining: bool) {
        self.broadcast(|| Ctl::SetDraining(draining));
    }
}

/// A fresh metrics registry and liveness epoch for `workers` workers.
pub(crate) fn instruments(workers: usize) -> (Arc<Metrics>, Liveness) {
    (
        Arc::new(Metrics::new(workers)),
        Liveness::new(clock::mono(), MAX_STALL),
    )
}
