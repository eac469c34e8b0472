//! Refresh (RFC 8656 §8), including the per-family refresh and deletion of
//! a dual allocation.

use std::time::Instant;

use super::allocate::parse_family;
use super::request::{Authed, Req};
use super::{Command, EndReason, RelayId, Server, TimerKey};
use crate::proto::stun::{AttrType, Class, ErrorCode, Message};
use crate::proto::time::Now;

impl Server {
    /// RFC 8656 §8.2: a Refresh with REQUESTED-ADDRESS-FAMILY refreshes (or,
    /// with LIFETIME 0, deletes) only that family of a dual allocation; a
    /// family the allocation does not have is "443 (Peer Address Family
    /// Mismatch)". Without the attribute the whole allocation is refreshed.
    pub(super) fn refresh(&mut self, now: Now, req: Req, msg: &Message<'_>, auth: Authed) {
        let key = Some(auth.key);
        let Some(id) = self.by_client.get(&req.from).copied() else {
            return self.reject(now, req, ErrorCode::ALLOCATION_MISMATCH, key);
        };
        let family = match msg
            .get(AttrType::REQUESTED_ADDRESS_FAMILY)
            .map(parse_family)
        {
            None => None,
            Some(Ok(v6)) => Some(v6),
            Some(Err(code)) => return self.reject(now, req, code, key),
        };
        let Some(alloc) = self.slab.get(id) else {
            return;
        };
        if family.is_some_and(|v6| !alloc.serves_family(v6)) {
            let code = ErrorCode::PEER_ADDRESS_FAMILY_MISMATCH;
            return self.reject(now, req, code, key);
        }
        let dual = alloc.family_expires.is_some();
        let Ok(lifetime) = self.lifetime(msg, false) else {
            return self.reject(now, req, ErrorCode::BAD_REQUEST, key);
        };
        match (family.filter(|_| dual), lifetime.is_zero()) {
            (Some(v6), true) => self.drop_family(id, v6),
            (Some(v6), false) => self.set_family_expiry(id, v6, now.mono + lifetime),
            (None, true) => self.remove_allocation(id, EndReason::Deleted),
            (None, false) => {
                let at = now.mono + lifetime;
                if dual {
                    self.set_family_expiry(id, false, at);
                    self.set_family_expiry(id, true, at);
                } else {
                    self.set_allocation_expiry(id, at);
                }
            }
        }
        let secs = u32::try_from(lifetime.as_secs()).unwrap_or(u32::MAX);
        self.reply(Some(now), req, Class::Success, key, |w| {
            w.push_u32(AttrType::LIFETIME, secs);
        });
    }

    /// Moves one family's expiry of a dual allocation; the allocation ends
    /// with the later of the two.
    fn set_family_expiry(&mut self, id: RelayId, ipv6: bool, at: Instant) {
        let Some(a) = self.slab.get_mut(id) else {
            return;
        };
        let Some(exp) = a.family_expires.as_mut() else {
            return;
        };
        let i = usize::from(ipv6);
        let old = std::mem::replace(&mut exp[i], at);
        let end = exp[0].max(exp[1]);
        self.timers.remove(&(old, TimerKey::Family(id, ipv6)));
        self.timers.insert((at, TimerKey::Family(id, ipv6)));
        self.set_allocation_expiry(id, end);
    }

    /// Ends one family of a dual allocation: its relay socket is released,
    /// the other family keeps relaying until its own expiry.
    pub(super) fn drop_family(&mut self, id: RelayId, ipv6: bool) {
        let Some(a) = self.slab.get_mut(id) else {
            return;
        };
        let exp = a.family_expires;
        if !a.drop_family(ipv6) {
            return;
        }
        if let Some(exp) = exp {
            for (i, at) in exp.into_iter().enumerate() {
                self.timers.remove(&(at, TimerKey::Family(id, i == 1)));
            }
            self.set_allocation_expiry(id, exp[usize::from(!ipv6)]);
        }
        self.commands
            .push_back(Command::ReleaseRelayFamily { relay: id, ipv6 });
    }

    /// A family timer fired: end that family if the other one outlives it
    /// (otherwise the allocation timer ends the whole allocation).
    pub(super) fn family_timeout(&mut self, id: RelayId, ipv6: bool, now: Instant) {
        let Some(exp) = self.slab.get(id).and_then(|a| a.family_expires) else {
            return;
        };
        let (mine, other) = (exp[usize::from(ipv6)], exp[usize::from(!ipv6)]);
        if mine <= now && other > now {
            self.drop_family(id, ipv6);
        }
    }
}
