//! Picking a node of the fleet (`[[cluster.nodes]]`) for each credential.
//!
//! # What the issuer knows
//! A background task on the issuer's own runtime (`poll::run`) reads every
//! node's admin `GET /status` about once a second, all nodes at once, each
//! read bounded by [`FETCH_TIMEOUT`]. A request never waits on a node: it
//! reads the last view, under a short lock.
//!
//! # Which node
//! A node is [`Health::Ready`] when its last read succeeded, it is
//! listening and not draining. Among ready nodes the one with the lowest
//! `(allocations + issued) / capacity` wins, where `issued` counts the
//! credentials handed out for it since its last read — so a burst between
//! two reads spreads over the fleet instead of piling onto the node that
//! looked emptiest (ties go to the node listed first). A draining node is
//! never handed out.
//!
//! A node whose latest read failed is skipped while any node is ready; if
//! none is, nodes that were ready at their last good read and have failed
//! fewer than [`STALE_AFTER`] reads in a row are used (a network blip on
//! the issuer's side should not turn every request into a 503). After
//! [`STALE_AFTER`] failures a node is [`Health::Stale`] and never used
//! until it answers again. With nothing usable the issuer answers 503.
//!
//! # The same node for both peers of a call
//! A request may name a node (`"node": "turn-b"`, or `node=turn-b` on
//! `GET /ice`), usually the `node` of an earlier answer for the other peer.
//! It is honoured when that node is usable; otherwise the pick above
//! applies and the answer's `node` says which one it is. A hint is a
//! preference, never a reason to fail.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use super::cluster::NodeSettings;
use crate::admin::Metrics;

/// How often every node's `/status` is read.
pub const REFRESH: Duration = Duration::from_secs(1);
/// Longest one read may take (connect, request, answer); below [`REFRESH`].
pub const FETCH_TIMEOUT: Duration = Duration::from_millis(800);
/// Failed reads in a row after which a node's last status is not trusted.
pub const STALE_AFTER: u32 = 3;
/// Capacity assumed for a node whose `/status` has none (an older tern).
const DEFAULT_CAPACITY: u64 = 16_384;

/// What one good `/status` read said.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    pub allocations: u64,
    /// 0 = not reported.
    pub capacity: u64,
    pub draining: bool,
    /// The node has bound its TURN listeners.
    pub listening: bool,
}

/// How a node looks to the issuer now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Takes new allocations.
    Ready,
    /// Draining: existing allocations only.
    Draining,
    /// Up but not yet listening.
    Starting,
    /// The last read failed (fewer than [`STALE_AFTER`] in a row) after a
    /// good one; used only when no node is ready.
    Unreachable,
    /// [`STALE_AFTER`] or more failed reads in a row, or never read.
    Stale,
    /// Not read yet.
    Unknown,
}

#[derive(Debug, Default)]
struct View {
    seen: Option<Seen>,
    failures: u32,
    error: Option<String>,
    issued: u64,
}

impl View {
    fn health(&self) -> Health {
        match self.seen {
            _ if self.failures >= STALE_AFTER => Health::Stale,
            None if self.failures == 0 => Health::Unknown,
            None => Health::Stale,
            Some(s) if s.draining => Health::Draining,
            Some(s) if !s.listening => Health::Starting,
            Some(_) if self.failures > 0 => Health::Unreachable,
            Some(_) => Health::Ready,
        }
    }

    /// `load / capacity` as a pair to compare by cross-multiplying.
    fn load(&self) -> (u128, u128) {
        let seen = self.seen.unwrap_or_default();
        let cap = match seen.capacity {
            0 => DEFAULT_CAPACITY,
            c => c,
        };
        (u128::from(seen.allocations + self.issued), u128::from(cap))
    }
}

/// One node as `GET /v1/nodes` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeReport {
    pub name: String,
    pub health: Health,
    pub allocations: Option<u64>,
    pub capacity: Option<u64>,
    /// Credentials handed out since the last good read.
    pub issued_since_read: u64,
    pub failed_reads: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The fleet: the configured nodes and the issuer's view of each.
#[derive(Debug)]
pub struct Fleet {
    nodes: Vec<NodeSettings>,
    views: Mutex<Vec<View>>,
    /// Requests answered 503 because no node was usable.
    refused: AtomicU64,
    /// Where `tern_issuer_*` are published, when the server has metrics.
    metrics: Option<Arc<Metrics>>,
}

/// No node can take new allocations; the message says why, node by node.
#[derive(Debug, PartialEq, Eq)]
pub struct NoNode(pub String);

impl Fleet {
    /// `metrics`: where `tern_issuer_nodes_usable` and
    /// `tern_issuer_no_node_total` are published, if anywhere.
    pub fn new(nodes: Vec<NodeSettings>, metrics: Option<Arc<Metrics>>) -> Self {
        let views = nodes.iter().map(|_| View::default()).collect();
        Self {
            nodes,
            views: Mutex::new(views),
            refused: AtomicU64::new(0),
            metrics,
        }
    }

    pub fn nodes(&self) -> &[NodeSettings] {
        &self.nodes
    }

    fn views(&self) -> std::sync::MutexGuard<'_, Vec<View>> {
        // A poisoned lock only means a panic mid-update of plain numbers.
        self.views
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records one read of node `i`; returns its health before and after.
    pub fn record(&self, i: usize, read: Result<Seen, String>) -> (Health, Health) {
        let mut views = self.views();
        let Some(v) = views.get_mut(i) else {
            return (Health::Unknown, Health::Unknown);
        };
        let before = v.health();
        match read {
            Ok(seen) => {
                *v = View {
                    seen: Some(seen),
                    ..View::default()
                };
            }
            Err(e) => {
                v.failures = v.failures.saturating_add(1);
                v.error = Some(e);
                if v.failures >= STALE_AFTER {
                    v.seen = None;
                }
            }
        }
        (before, v.health())
    }

    /// Picks the node for one credential (see the module docs) and counts
    /// the credential against it.
    pub fn pick(&self, hint: Option<&str>) -> Result<&NodeSettings, NoNode> {
        let mut views = self.views();
        let tier = |h: Health| match h {
            Health::Ready => Some(0),
            Health::Unreachable => Some(1),
            Health::Draining | Health::Starting | Health::Stale | Health::Unknown => None,
        };
        let best_tier = views.iter().filter_map(|v| tier(v.health())).min();
        let Some(best_tier) = best_tier else {
            drop(views);
            self.refused.fetch_add(1, Relaxed);
            if let Some(m) = &self.metrics {
                m.global.issuer_no_node.fetch_add(1, Relaxed);
            }
            return Err(NoNode(self.why_none()));
        };
        let usable = |v: &View| tier(v.health()) == Some(best_tier);
        let hinted = hint.and_then(|h| self.nodes.iter().position(|n| n.name == h));
        let chosen = match hinted {
            Some(i) if usable(&views[i]) => i,
            _ => (0..views.len())
                .filter(|&i| usable(&views[i]))
                .min_by(|&a, &b| {
                    let ((la, ca), (lb, cb)) = (views[a].load(), views[b].load());
                    (la * cb).cmp(&(lb * ca))
                })
                // invariant: best_tier came from some node's tier.
                .expect("a usable node exists"),
        };
        views[chosen].issued = views[chosen].issued.saturating_add(1);
        Ok(&self.nodes[chosen])
    }

    /// How many nodes can be handed out now (also published as
    /// `tern_issuer_nodes_usable`).
    pub fn usable(&self) -> usize {
        let n = self
            .views()
            .iter()
            .filter(|v| matches!(v.health(), Health::Ready | Health::Unreachable))
            .count();
        if let Some(m) = &self.metrics {
            m.global.issuer_nodes_usable.store(n as u64, Relaxed);
        }
        n
    }

    /// Requests answered 503 so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Relaxed)
    }

    /// "turn-a draining; turn-b stale (3 failed reads: connection refused)".
    fn why_none(&self) -> String {
        self.report()
            .iter()
            .map(|r| {
                let health = serde_json::to_value(r.health)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                match &r.error {
                    Some(e) => {
                        format!("{} {health} ({} failed reads: {e})", r.name, r.failed_reads)
                    }
                    None => format!("{} {health}", r.name),
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Every node's current view, in config order.
    pub fn report(&self) -> Vec<NodeReport> {
        let views = self.views();
        self.nodes
            .iter()
            .zip(views.iter())
            .map(|(n, v)| NodeReport {
                name: n.name.clone(),
                health: v.health(),
                allocations: v.seen.map(|s| s.allocations),
                capacity: v.seen.map(|s| s.capacity),
                issued_since_read: v.issued,
                failed_reads: v.failures,
                error: v.error.clone().filter(|_| v.failures > 0),
            })
            .collect()
    }
}
