//! Allocate and Refresh (RFC 8656 §7, §8), and the relay-socket handshake
//! with the driver.

use std::hash::BuildHasher;
use std::time::Duration;

use super::allocation::Allocation;
use super::quota::QuotaError;
use super::request::{Authed, ErrExtra, Req};
use super::{
    Command, EndReason, Event, PendingAllocate, PortRequest, RESERVATION_LIFETIME, RelayBound,
    RelayId, Server, TimerKey,
};
use crate::proto::stun::{AttrType, Class, Message, decode_u32};
use crate::proto::time::Now;

/// IANA protocol number of UDP, the one REQUESTED-TRANSPORT tern relays.
const PROTO_UDP: u8 = 17;

impl Server {
    fn lifetime(&self, msg: &Message<'_>, allocate: bool) -> Result<Duration, ()> {
        let c = &self.config;
        let requested = match msg.get(AttrType::LIFETIME) {
            None => return Ok(c.default_lifetime),
            Some(v) => Duration::from_secs(u64::from(decode_u32(v).map_err(|_| ())?)),
        };
        if requested.is_zero() {
            return Ok(requested);
        }
        let d = requested.min(c.max_lifetime);
        // RFC 8656 §7.2: an Allocate never gets less than the default.
        Ok(if allocate {
            d.max(c.default_lifetime.min(c.max_lifetime))
        } else {
            d
        })
    }

    pub(super) fn allocate(&mut self, now: Now, req: Req, msg: &Message<'_>, auth: Authed) {
        let key = Some(auth.key);
        if self.by_client.contains_key(&req.from) {
            return self.error(now, req, 437, ErrExtra::None, key);
        }
        if self.pending.values().any(|p| p.five == req.from) {
            // A retransmission while the relay socket is being bound: the
            // response follows when the driver reports back.
            return;
        }
        // Over the soft limit or draining: 300 Try Alternate (alternate.rs).
        if self.redirect(now, req, auth.key) {
            return;
        }
        let Some(transport) = msg.get(AttrType::REQUESTED_TRANSPORT) else {
            return self.error(now, req, 400, ErrExtra::None, key);
        };
        if transport.len() != 4 {
            return self.error(now, req, 400, ErrExtra::None, key);
        }
        if transport[0] != PROTO_UDP {
            return self.error(now, req, 442, ErrExtra::None, key);
        }
        let even = msg.get(AttrType::EVEN_PORT);
        let token = msg.get(AttrType::RESERVATION_TOKEN);
        let family = msg.get(AttrType::REQUESTED_ADDRESS_FAMILY);
        let additional = msg.get(AttrType::ADDITIONAL_ADDRESS_FAMILY);
        // RFC 8656 §7.2: RESERVATION-TOKEN excludes EVEN-PORT and both
        // family attributes; the two family attributes exclude each other.
        if token.is_some() && (even.is_some() || family.is_some() || additional.is_some())
            || family.is_some() && additional.is_some()
        {
            return self.error(now, req, 400, ErrExtra::None, key);
        }
        let ipv6 = match family.map(parse_family) {
            None => false,
            Some(Ok(v6)) => v6,
            Some(Err(code)) => return self.error(now, req, code, ErrExtra::None, key),
        };
        // ADDITIONAL-ADDRESS-FAMILY may only ask for IPv6 (RFC 8656 §7.2).
        let dual = match additional.map(parse_family) {
            None => false,
            Some(Ok(true)) => true,
            Some(Ok(false) | Err(_)) => return self.error(now, req, 400, ErrExtra::None, key),
        };
        if ipv6 && !self.config.relay_ipv6 || !ipv6 && !self.config.relay_ipv4 {
            return self.error(now, req, 440, ErrExtra::None, key);
        }
        let Ok(lifetime) = self.lifetime(msg, true) else {
            return self.error(now, req, 400, ErrExtra::None, key);
        };
        let port = match (even, token) {
            (Some(v), None) => match v.first() {
                Some(b) => PortRequest::Even {
                    reserve_next: b & 0x80 != 0,
                },
                None => return self.error(now, req, 400, ErrExtra::None, key),
            },
            (None, Some(t)) => {
                let Ok(t) = <[u8; 8]>::try_from(t) else {
                    return self.error(now, req, 400, ErrExtra::None, key);
                };
                match self.quota.take_reservation(u64::from_be_bytes(t)) {
                    Some(port) => PortRequest::Reserved(port),
                    None => return self.error(now, req, 508, ErrExtra::None, key),
                }
            }
            _ => PortRequest::Any,
        };
        let limits = &self.config.limits;
        match self.quota.acquire(
            &auth.username,
            limits.max_allocations,
            limits.max_allocations_per_user,
        ) {
            Ok(()) => {}
            Err(QuotaError::User) => return self.error(now, req, 486, ErrExtra::None, key),
            Err(QuotaError::Total) => return self.error(now, req, 508, ErrExtra::None, key),
        }
        let relay = self.slab.reserve();
        self.pending.insert(
            relay,
            PendingAllocate {
                five: req.from,
                tid: req.tid,
                username: auth.username,
                key: auth.key,
                lifetime,
                dual,
            },
        );
        // Without an IPv6 relay the dual request still succeeds for IPv4,
        // with ADDRESS-ERROR-CODE 440 for IPv6 (RFC 8656 §7.2).
        let additional_ipv6 = dual && self.config.relay_ipv6;
        self.commands.push_back(Command::BindRelay {
            relay,
            ipv6,
            additional_ipv6,
            port,
        });
    }

    /// The driver's answer to [`Command::BindRelay`]: completes the Allocate
    /// (success, or 508 if no socket could be bound).
    pub fn handle_relay_bound(&mut self, now: Now, relay: RelayId, result: Result<RelayBound, ()>) {
        let Some(p) = self.pending.remove(&relay) else {
            if let Ok(b) = result {
                self.commands.push_back(Command::ReleaseRelay { relay });
                if let Some(port) = b.reserved_port {
                    self.commands
                        .push_back(Command::ReleaseReservation { port });
                }
            }
            return;
        };
        let req = Req {
            from: p.five,
            method: crate::proto::stun::Method::ALLOCATE,
            tid: p.tid,
        };
        let bound = match result {
            Ok(b) => b,
            Err(()) => {
                self.slab.cancel(relay);
                self.quota.release(&p.username);
                return self.error(now, req, 508, ErrExtra::None, Some(p.key));
            }
        };
        let expires_at = now.mono + p.lifetime;
        let mut alloc = Allocation::new(p.five, bound.addr, p.username.clone(), expires_at);
        alloc.additional_addr = bound.additional;
        // invariant: the slot was reserved for this pending allocate.
        let filled = self.slab.fill(relay, alloc);
        debug_assert!(filled);
        self.by_client.insert(p.five, relay);
        self.timers
            .insert((expires_at, TimerKey::Allocation(relay)));
        let token = bound.reserved_port.map(|port| {
            self.token_counter += 1;
            let t = std::collections::hash_map::RandomState::new().hash_one(self.token_counter);
            let at = now.mono + RESERVATION_LIFETIME;
            self.quota.reserve(t, port);
            self.timers.insert((at, TimerKey::Reservation(t)));
            t
        });
        self.stats.allocations_created += 1;
        self.events.push_back(Event::AllocationCreated {
            client: p.five,
            relay: bound.addr,
            username: p.username,
            lifetime: p.lifetime,
        });
        let lifetime = u32::try_from(p.lifetime.as_secs()).unwrap_or(u32::MAX);
        let client = p.five.client;
        let v6_refused = p.dual && bound.additional.is_none();
        self.reply(Some(now), req, Class::Success, Some(p.key), |w| {
            w.push_xor_addr(AttrType::XOR_RELAYED_ADDRESS, bound.addr);
            if let Some(a) = bound.additional {
                w.push_xor_addr(AttrType::XOR_RELAYED_ADDRESS, a);
            }
            if v6_refused {
                // ADDRESS-ERROR-CODE: family, reserved, class, number, reason.
                let mut v = [0u8; 4 + 28];
                v[..4].copy_from_slice(&[0x02, 0, 4, 40]);
                v[4..].copy_from_slice(b"Address Family not Supported");
                w.push(AttrType::ADDRESS_ERROR_CODE, &v);
            }
            w.push_u32(AttrType::LIFETIME, lifetime);
            if let Some(t) = token {
                w.push(AttrType::RESERVATION_TOKEN, &t.to_be_bytes());
            }
            w.push_xor_addr(AttrType::XOR_MAPPED_ADDRESS, client);
        });
    }

    pub(super) fn refresh(&mut self, now: Now, req: Req, msg: &Message<'_>, auth: Authed) {
        let key = Some(auth.key);
        let Some(id) = self.by_client.get(&req.from).copied() else {
            return self.error(now, req, 437, ErrExtra::None, key);
        };
        if let Some(v) = msg.get(AttrType::REQUESTED_ADDRESS_FAMILY) {
            let asked_v6 = v.first() == Some(&0x02);
            if !self.slab.get(id).is_some_and(|a| a.serves_family(asked_v6)) {
                return self.error(now, req, 443, ErrExtra::None, key);
            }
        }
        let Ok(lifetime) = self.lifetime(msg, false) else {
            return self.error(now, req, 400, ErrExtra::None, key);
        };
        if lifetime.is_zero() {
            self.remove_allocation(id, EndReason::Deleted);
        } else {
            self.set_allocation_expiry(id, now.mono + lifetime);
        }
        let secs = u32::try_from(lifetime.as_secs()).unwrap_or(u32::MAX);
        self.reply(Some(now), req, Class::Success, key, |w| {
            w.push_u32(AttrType::LIFETIME, secs);
        });
    }
}

/// REQUESTED-ADDRESS-FAMILY / ADDITIONAL-ADDRESS-FAMILY value: 0x01 IPv4,
/// 0x02 IPv6 (true); another family is 440, a bad length 400.
fn parse_family(v: &[u8]) -> Result<bool, u16> {
    match v {
        [0x01, _, _, _] => Ok(false),
        [0x02, _, _, _] => Ok(true),
        [_, _, _, _] => Err(440),
        _ => Err(400),
    }
}
