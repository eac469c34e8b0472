//! What the operator asks of a shard (admin API, metrics gauges): list
//! and end allocations, count permissions and channels. None of it is on
//! the relay path; each call walks the shard's allocations once (O(n)).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{EndReason, FiveTuple, RelayId, Server, Traffic};

/// One allocation as the admin API shows it (no credentials).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllocationView {
    pub id: RelayId,
    pub five: FiveTuple,
    pub username: String,
    /// One relayed address, or two for a dual allocation.
    pub relay: Vec<SocketAddr>,
    pub age: Duration,
    /// `[0]` client→peer, `[1]` peer→client.
    pub traffic: [Traffic; 2],
}

/// Live permissions and channels of a shard (metrics gauges).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gauges {
    pub permissions: u64,
    pub channels: u64,
}

impl Server {
    /// The live allocations (of `user` when given) at `now`.
    pub fn allocations(&self, user: Option<&str>, now: Instant) -> Vec<AllocationView> {
        self.slab
            .iter()
            .filter(|(_, a)| user.is_none_or(|u| a.username == u))
            .map(|(id, a)| AllocationView {
                id,
                five: a.five,
                username: a.username.clone(),
                relay: std::iter::once(a.relay_addr)
                    .chain(a.additional_addr)
                    .collect(),
                age: now.saturating_duration_since(a.created_at),
                traffic: a.traffic,
            })
            .collect()
    }

    /// Ends every allocation of `user` at once (a leaked credential): the
    /// relays are released and `AllocationEnded { reason: Kicked }` queued,
    /// as for any other end. Returns how many ended.
    pub fn kick(&mut self, user: &str) -> usize {
        let ids: Vec<RelayId> = self
            .slab
            .iter()
            .filter(|(_, a)| a.username == user)
            .map(|(id, _)| id)
            .collect();
        for &id in &ids {
            self.remove_allocation(id, EndReason::Kicked);
        }
        ids.len()
    }

    /// Permissions and channels held by this shard's allocations.
    pub fn gauges(&self) -> Gauges {
        self.slab
            .iter()
            .fold(Gauges::default(), |g, (_, a)| Gauges {
                permissions: g.permissions + a.permission_count() as u64,
                channels: g.channels + a.channel_count() as u64,
            })
    }
}
