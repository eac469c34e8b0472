//! The fleet poller: reads every node's admin `GET /status` each
//! [`REFRESH`], all nodes at once, and records what it saw in the
//! [`Fleet`]. It runs as a task on the issuer listener's current-thread
//! runtime (`admin::server::spawn_with`); each read is bounded by
//! [`FETCH_TIMEOUT`], so a dead node delays nothing. Changes of a node's
//! health are logged once, when they happen.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use serde::Deserialize;
use tokio::task::JoinSet;

use super::fleet::{FETCH_TIMEOUT, Fleet, Health, REFRESH, Seen};
use crate::admin::client::request_async;
use crate::secret::Secret;

/// Largest `/status` answer read.
const MAX_STATUS_BYTES: u64 = 256 * 1024;

/// The part of `admin::Status` the issuer needs. Unknown fields are
/// ignored and `capacity` may be missing, so nodes of another tern
/// version still parse.
#[derive(Deserialize)]
struct StatusView {
    allocations: BTreeMap<String, u64>,
    draining: bool,
    #[serde(default)]
    capacity: u64,
    #[serde(default)]
    listeners: Vec<String>,
}

/// Reads the fleet forever (until the runtime drops the task).
pub(super) async fn run(fleet: Arc<Fleet>) {
    let mut usable = true;
    loop {
        read_all(&fleet).await;
        let now_usable = fleet.usable() > 0;
        if usable && !now_usable {
            tracing::warn!(
                refused_so_far = fleet.refused(),
                "issuer: no cluster node can take new allocations; credential requests get 503 \
                 until one is ready (see the issuer's GET /v1/nodes)"
            );
        } else if !usable && now_usable {
            tracing::info!("issuer: a cluster node is usable again");
        }
        usable = now_usable;
        tokio::time::sleep(REFRESH).await;
    }
}

/// One round: every node read at once, each within [`FETCH_TIMEOUT`].
pub(super) async fn read_all(fleet: &Fleet) {
    let mut reads = JoinSet::new();
    for (i, n) in fleet.nodes().iter().enumerate() {
        let (addr, token) = (n.admin, n.admin_token.clone());
        reads.spawn(async move { (i, read(addr, token.as_ref()).await) });
    }
    while let Some(done) = reads.join_next().await {
        // A read task cannot panic short of a bug; skip it if it did.
        let Ok((i, result)) = done else { continue };
        let error = result.as_ref().err().cloned();
        let (before, after) = fleet.record(i, result);
        if before != after {
            log_change(&fleet.nodes()[i].name, before, after, error.as_deref());
        }
    }
}

fn log_change(node: &str, before: Health, after: Health, error: Option<&str>) {
    match after {
        Health::Ready => tracing::info!(node, ?before, "issuer: cluster node ready"),
        Health::Starting | Health::Unknown => {
            tracing::info!(node, ?before, ?after, "issuer: cluster node not ready yet");
        }
        Health::Draining => tracing::info!(node, "issuer: cluster node draining; not handed out"),
        Health::Unreachable | Health::Stale => tracing::warn!(
            node,
            ?after,
            error = error.unwrap_or("-"),
            "issuer: cannot read the cluster node's /status; not handed out"
        ),
    }
}

/// One `GET /status`.
async fn read(addr: SocketAddr, token: Option<&Secret<String>>) -> Result<Seen, String> {
    let token = token.map(|t| t.expose().as_str());
    let resp = request_async(
        addr,
        "GET",
        "/status",
        token,
        FETCH_TIMEOUT,
        MAX_STATUS_BYTES,
    )
    .await
    .map_err(|e| e.to_string())?;
    match resp.status {
        200 => {}
        401 => {
            return Err("HTTP 401: the admin API wants a token; set this node's \
                        cluster.nodes[].admin_token_file to its admin.token_file"
                .to_owned());
        }
        s => return Err(format!("HTTP {s} from /status")),
    }
    let v: StatusView =
        serde_json::from_str(&resp.body).map_err(|e| format!("/status is not tern's: {e}"))?;
    Ok(Seen {
        allocations: v.allocations.values().copied().fold(0, u64::saturating_add),
        capacity: v.capacity,
        draining: v.draining,
        listening: !v.listeners.is_empty(),
    })
}
