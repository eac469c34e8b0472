//! Allocations, their permissions and channels, and the slab that owns them.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::{CHANNEL_COOLDOWN, CHANNEL_LIFETIME, PERMISSION_LIFETIME, RelayId};
use crate::proto::channel_data::ChannelNumber;
use crate::proto::limiter::TokenBucket;
use crate::proto::peer_policy::canonical;

/// The client's transport to the server.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    /// Streams pad ChannelData to 4 bytes (RFC 8656 §12.5).
    pub fn is_stream(self) -> bool {
        !matches!(self, Self::Udp)
    }
}

/// The client's 5-tuple: client address, server address, transport.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct FiveTuple {
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub transport: Transport,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Permission {
    pub(super) ip: IpAddr,
    pub(super) expires_at: Instant,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Channel {
    pub(super) number: ChannelNumber,
    pub(super) peer: SocketAddr,
    /// Usable until then; reserved (not usable) until `expires_at + CHANNEL_COOLDOWN`.
    pub(super) expires_at: Instant,
}

/// One allocation. Permissions and channels are small vectors: a WebRTC
/// allocation has one or two of each, and quotas cap them, so a linear scan
/// beats hashing and keeps an idle allocation small.
#[derive(Debug)]
pub struct Allocation {
    pub five: FiveTuple,
    pub relay_addr: SocketAddr,
    /// The IPv6 relayed address of a dual allocation.
    pub additional_addr: Option<SocketAddr>,
    pub username: String,
    /// When the Allocate succeeded.
    pub created_at: Instant,
    /// When the allocation ends: the later family's expiry for a dual one.
    pub expires_at: Instant,
    /// Per-family expiry of a dual allocation (index 0 IPv4, 1 IPv6): a
    /// Refresh with REQUESTED-ADDRESS-FAMILY moves one (RFC 8656 §8).
    /// `None` for single-family allocations.
    pub(super) family_expires: Option<[Instant; 2]>,
    pub(super) permissions: Vec<Permission>,
    pub(super) channels: Vec<Channel>,
    /// Bandwidth buckets (client→peer, peer→client) when a limit is set.
    pub(super) buckets: Option<Box<[TokenBucket; 2]>>,
    /// Relayed traffic: `[0]` client→peer, `[1]` peer→client.
    pub traffic: [Traffic; 2],
}

/// Relayed datagrams and payload bytes in one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    pub packets: u64,
    pub bytes: u64,
}

impl Traffic {
    #[inline]
    pub(super) fn count(&mut self, len: usize) {
        self.packets += 1;
        self.bytes += len as u64;
    }
}

impl Allocation {
    pub(super) fn new(
        five: FiveTuple,
        relay_addr: SocketAddr,
        username: String,
        created_at: Instant,
        expires_at: Instant,
    ) -> Self {
        Self {
            five,
            relay_addr,
            additional_addr: None,
            username,
            created_at,
            expires_at,
            family_expires: None,
            permissions: Vec::new(),
            channels: Vec::new(),
            buckets: None,
            traffic: [Traffic::default(); 2],
        }
    }

    /// Charges `len` bytes to direction `dir` (0 = to peer, 1 = to client)
    /// against `rate` bytes/s; false if over the limit.
    #[inline]
    pub(super) fn admit(
        &mut self,
        dir: usize,
        now: Instant,
        len: usize,
        rate: Option<u64>,
    ) -> bool {
        let Some(rate) = rate else { return true };
        let b = self
            .buckets
            .get_or_insert_with(|| Box::new([TokenBucket::new(now, rate); 2]));
        b[dir].take(now, len as u64, rate, rate)
    }

    /// Does the allocation have a relayed address of this family?
    #[inline]
    pub fn serves_family(&self, ipv6: bool) -> bool {
        self.relay_addr.is_ipv6() == ipv6
            || self.additional_addr.is_some_and(|a| a.is_ipv6() == ipv6)
    }

    /// Ends the `ipv6` half of a dual allocation: its relayed address, and
    /// the permissions and channels of its peers. False if the allocation
    /// is not dual (the caller then ends the whole allocation).
    pub(super) fn drop_family(&mut self, ipv6: bool) -> bool {
        let Some(other) = self.additional_addr else {
            return false;
        };
        if self.relay_addr.is_ipv6() == ipv6 {
            self.relay_addr = other;
        }
        self.additional_addr = None;
        self.family_expires = None;
        self.permissions.retain(|p| p.ip.is_ipv6() != ipv6);
        self.channels.retain(|c| c.peer.is_ipv6() != ipv6);
        true
    }

    /// Is there a live permission for `ip`? (RFC 8656 §9: permissions match IP only.)
    #[inline]
    pub fn has_permission(&self, ip: IpAddr, now: Instant) -> bool {
        let ip = canonical(ip);
        self.permissions
            .iter()
            .any(|p| p.ip == ip && p.expires_at > now)
    }

    /// Installs or refreshes a permission; false if the quota is full.
    pub(super) fn install_permission(&mut self, ip: IpAddr, now: Instant, max: usize) -> bool {
        let ip = canonical(ip);
        self.permissions.retain(|p| p.expires_at > now);
        let expires_at = now + PERMISSION_LIFETIME;
        if let Some(p) = self.permissions.iter_mut().find(|p| p.ip == ip) {
            p.expires_at = expires_at;
            return true;
        }
        if self.permissions.len() >= max {
            return false;
        }
        self.permissions.push(Permission { ip, expires_at });
        true
    }

    /// Room for one more permission for `ip` (already present, or under quota)?
    pub(super) fn permission_fits(
        &self,
        ip: IpAddr,
        now: Instant,
        max: usize,
        extra: usize,
    ) -> bool {
        let ip = canonical(ip);
        let live = self
            .permissions
            .iter()
            .filter(|p| p.expires_at > now)
            .count();
        self.permissions
            .iter()
            .any(|p| p.ip == ip && p.expires_at > now)
            || live + extra < max
    }

    /// The live channel bound to `number`.
    #[inline]
    pub fn channel_peer(&self, number: ChannelNumber, now: Instant) -> Option<SocketAddr> {
        self.channels
            .iter()
            .find(|c| c.number == number && c.expires_at > now)
            .map(|c| c.peer)
    }

    /// The live channel bound to `peer`.
    #[inline]
    pub fn peer_channel(&self, peer: SocketAddr, now: Instant) -> Option<ChannelNumber> {
        self.channels
            .iter()
            .find(|c| c.peer == peer && c.expires_at > now)
            .map(|c| c.number)
    }

    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    pub fn permission_count(&self) -> usize {
        self.permissions.len()
    }

    /// RFC 8656 §11.2 rebinding rules, counting bindings in cooldown as held.
    /// Ok(true) if it refreshes an existing binding, Ok(false) if it is new.
    pub(super) fn check_channel_bind(
        &self,
        number: ChannelNumber,
        peer: SocketAddr,
        now: Instant,
    ) -> Result<bool, &'static str> {
        let held = |c: &Channel| c.expires_at + CHANNEL_COOLDOWN > now;
        for c in self.channels.iter().filter(|c| held(c)) {
            if c.number == number && c.peer != peer {
                return Err("channel number is bound to another peer");
            }
            if c.peer == peer && c.number != number {
                return Err("peer is bound to another channel number");
            }
            if c.number == number {
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub(super) fn bind_channel(&mut self, number: ChannelNumber, peer: SocketAddr, now: Instant) {
        self.channels
            .retain(|c| c.expires_at + CHANNEL_COOLDOWN > now);
        let expires_at = now + CHANNEL_LIFETIME;
        if let Some(c) = self.channels.iter_mut().find(|c| c.number == number) {
            c.expires_at = expires_at;
        } else {
            self.channels.push(Channel {
                number,
                peer,
                expires_at,
            });
        }
    }

    /// Channels held (live or cooling down) at `now`.
    pub(super) fn held_channels(&self, now: Instant) -> usize {
        self.channels
            .iter()
            .filter(|c| c.expires_at + CHANNEL_COOLDOWN > now)
            .count()
    }
}

/// Allocations indexed by [`RelayId`]: a vector of slots with generations
/// and a free list, so lookups on the hot path are one bounds check.
#[derive(Debug, Default)]
pub(super) struct Slab {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    alloc: Option<Allocation>,
    reserved: bool,
}

impl Slab {
    /// Reserves a slot for an allocation being created.
    pub(super) fn reserve(&mut self) -> RelayId {
        let slot = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot::default());
                // invariant: slot count is bounded by max_allocations (u32).
                u32::try_from(self.slots.len() - 1).expect("slot index fits u32")
            }
        };
        let s = &mut self.slots[slot as usize];
        s.generation = s.generation.wrapping_add(1);
        s.reserved = true;
        RelayId {
            slot,
            generation: s.generation,
        }
    }

    /// Fills a reserved slot.
    pub(super) fn fill(&mut self, id: RelayId, alloc: Allocation) -> bool {
        match self.slots.get_mut(id.slot as usize) {
            Some(s) if s.generation == id.generation && s.reserved && s.alloc.is_none() => {
                s.alloc = Some(alloc);
                true
            }
            _ => false,
        }
    }

    /// Frees a reserved slot that never got an allocation.
    pub(super) fn cancel(&mut self, id: RelayId) {
        if let Some(s) = self.slots.get_mut(id.slot as usize)
            && s.generation == id.generation
            && s.reserved
            && s.alloc.is_none()
        {
            s.reserved = false;
            self.free.push(id.slot);
        }
    }

    #[inline]
    pub(super) fn get(&self, id: RelayId) -> Option<&Allocation> {
        let s = self.slots.get(id.slot as usize)?;
        if s.generation != id.generation {
            return None;
        }
        s.alloc.as_ref()
    }

    #[inline]
    pub(super) fn get_mut(&mut self, id: RelayId) -> Option<&mut Allocation> {
        let s = self.slots.get_mut(id.slot as usize)?;
        if s.generation != id.generation {
            return None;
        }
        s.alloc.as_mut()
    }

    /// Every live allocation with its id (admin queries, housekeeping; O(n)).
    pub(super) fn iter(&self) -> impl Iterator<Item = (RelayId, &Allocation)> {
        self.slots.iter().zip(0u32..).filter_map(|(s, slot)| {
            let a = s.alloc.as_ref()?;
            Some((
                RelayId {
                    slot,
                    generation: s.generation,
                },
                a,
            ))
        })
    }

    pub(super) fn remove(&mut self, id: RelayId) -> Option<Allocation> {
        let s = self.slots.get_mut(id.slot as usize)?;
        if s.generation != id.generation {
            return None;
        }
        let a = s.alloc.take()?;
        s.reserved = false;
        self.free.push(id.slot);
        Some(a)
    }
}
