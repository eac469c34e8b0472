//! Allocate and Refresh (RFC 8656 §7, §8), and the relay-socket handshake
//! with the driver.

use std::time::Duration;

use ring::hmac;

use super::allocation::Allocation;
use super::request::{Authed, Req};
use super::tcp_relay;
use super::{
    BindError, Command, Event, PendingAllocate, PortRequest, RESERVATION_LIFETIME, RelayBound,
    RelayId, ReservationToken, Server, TimerKey,
};
use crate::proto::stun::{AttrType, Class, ErrorCode, Message, decode_u32};
use crate::proto::time::Now;

/// IANA protocol number of UDP (TCP, RFC 6062, is in `tcp_relay.rs`).
const PROTO_UDP: u8 = 17;

impl Server {
    pub(super) fn lifetime(&self, msg: &Message<'_>, allocate: bool) -> Result<Duration, ()> {
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

    /// The relay families an Allocate asks for: (IPv6 first, dual), or the
    /// error it gets (RFC 8656 §7.2).
    fn requested_families(&self, msg: &Message<'_>) -> Result<(bool, bool), ErrorCode> {
        let even = msg.get(AttrType::EVEN_PORT);
        let token = msg.get(AttrType::RESERVATION_TOKEN);
        let family = msg.get(AttrType::REQUESTED_ADDRESS_FAMILY);
        let additional = msg.get(AttrType::ADDITIONAL_ADDRESS_FAMILY);
        // RFC 8656 §7.2: RESERVATION-TOKEN excludes EVEN-PORT and both
        // family attributes; the two family attributes exclude each other.
        if token.is_some() && (even.is_some() || family.is_some() || additional.is_some())
            || family.is_some() && additional.is_some()
        {
            return Err(ErrorCode::BAD_REQUEST);
        }
        let ipv6 = match family.map(parse_family) {
            None => false,
            Some(Ok(v6)) => v6,
            Some(Err(code)) => return Err(code),
        };
        // ADDITIONAL-ADDRESS-FAMILY may only ask for IPv6 (RFC 8656 §7.2).
        let dual = match additional.map(parse_family) {
            None => false,
            Some(Ok(true)) => true,
            Some(Ok(false) | Err(_)) => return Err(ErrorCode::BAD_REQUEST),
        };
        // A token brings its reserved address, family included.
        if token.is_none() && (ipv6 && !self.config.relay_ipv6 || !ipv6 && !self.config.relay_ipv4)
        {
            return Err(ErrorCode::ADDRESS_FAMILY_NOT_SUPPORTED);
        }
        Ok((ipv6, dual))
    }

    pub(super) fn allocate(&mut self, now: Now, req: Req, msg: &Message<'_>, auth: Authed) {
        let key = Some(auth.key);
        if self.by_client.contains_key(&req.from) {
            return self.reject(now, req, ErrorCode::ALLOCATION_MISMATCH, key);
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
            return self.reject(now, req, ErrorCode::BAD_REQUEST, key);
        };
        if transport.len() != 4 {
            return self.reject(now, req, ErrorCode::BAD_REQUEST, key);
        }
        let tcp = match transport[0] {
            PROTO_UDP => false,
            tcp_relay::PROTO_TCP => true,
            _ => return self.reject(now, req, ErrorCode::UNSUPPORTED_TRANSPORT, key),
        };
        if tcp && let Err(code) = tcp_relay::check_allocate(req, msg) {
            return self.reject(now, req, code, key);
        }
        let (ipv6, dual) = match self.requested_families(msg) {
            Ok(f) => f,
            Err(code) => return self.reject(now, req, code, key),
        };
        let even = msg.get(AttrType::EVEN_PORT);
        let token = msg.get(AttrType::RESERVATION_TOKEN);
        let Ok(lifetime) = self.lifetime(msg, true) else {
            return self.reject(now, req, ErrorCode::BAD_REQUEST, key);
        };
        let port = match (even, token) {
            (Some(v), None) => match v.first() {
                Some(b) => PortRequest::Even {
                    reserve: (b & 0x80 != 0).then(|| self.next_token()),
                },
                None => return self.reject(now, req, ErrorCode::BAD_REQUEST, key),
            },
            (None, Some(t)) => {
                let Ok(t) = <[u8; 8]>::try_from(t) else {
                    return self.reject(now, req, ErrorCode::BAD_REQUEST, key);
                };
                PortRequest::Reserved(ReservationToken(t))
            }
            _ => PortRequest::Any,
        };
        // Quotas (486/508) and an unknown token (508) are the driver's to
        // check: they span shards. Its answer comes in `handle_relay_bound`.
        let relay = self.slab.reserve();
        let username = auth.username;
        self.pending.insert(
            relay,
            PendingAllocate {
                five: req.from,
                tid: req.tid,
                username: username.clone(),
                key: auth.key,
                lifetime,
                dual,
                tcp,
            },
        );
        // Without an IPv6 relay the dual request still succeeds for IPv4,
        // with ADDRESS-ERROR-CODE 440 for IPv6 (RFC 8656 §7.2).
        let additional_ipv6 = dual && self.config.relay_ipv6;
        if tcp {
            let cmd = Command::ListenTcpRelay {
                relay,
                username,
                ipv6,
            };
            return self.commands.push_back(cmd);
        }
        self.commands.push_back(Command::BindRelay {
            relay,
            username,
            ipv6,
            additional_ipv6,
            port,
        });
    }

    /// A fresh RESERVATION-TOKEN: HMAC-SHA256 of a counter under this
    /// shard's key, truncated to the 8 bytes of the attribute.
    fn next_token(&mut self) -> ReservationToken {
        self.token_counter += 1;
        let tag = hmac::sign(&self.token_key, &self.token_counter.to_be_bytes());
        let mut t = [0u8; 8];
        t.copy_from_slice(&tag.as_ref()[..8]);
        ReservationToken(t)
    }

    /// The driver's answer to [`Command::BindRelay`]: completes the Allocate
    /// (success, or the error's code: 486 for the user's quota, else 508).
    pub fn handle_relay_bound(
        &mut self,
        now: Now,
        relay: RelayId,
        result: Result<RelayBound, BindError>,
    ) {
        let Some(p) = self.pending.remove(&relay) else {
            if let Ok(b) = result {
                self.commands.push_back(Command::ReleaseRelay { relay });
                if let Some(token) = b.reservation {
                    self.commands
                        .push_back(Command::ReleaseReservation { token });
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
            Err(e) => {
                self.slab.cancel(relay);
                return self.reject(now, req, e.code(), Some(p.key));
            }
        };
        let expires_at = now.mono + p.lifetime;
        let mut alloc =
            Allocation::new(p.five, bound.addr, p.username.clone(), now.mono, expires_at);
        alloc.additional_addr = bound.additional;
        if bound.additional.is_some() {
            alloc.family_expires = Some([expires_at; 2]);
        }
        // invariant: the slot was reserved for this pending allocate.
        let filled = self.slab.fill(relay, alloc);
        debug_assert!(filled);
        self.by_client.insert(p.five, relay);
        if p.tcp {
            self.tcp.add_allocation(relay);
        }
        self.timers
            .insert((expires_at, TimerKey::Allocation(relay)));
        if bound.additional.is_some() {
            for v6 in [false, true] {
                self.timers
                    .insert((expires_at, TimerKey::Family(relay, v6)));
            }
        }
        // The driver holds the port; this shard tells it when the token expires.
        let token = bound.reservation;
        if let Some(t) = token {
            let at = now.mono + RESERVATION_LIFETIME;
            self.timers.insert((at, TimerKey::Reservation(t)));
        }
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
                w.push(AttrType::RESERVATION_TOKEN, &t.0);
            }
            w.push_xor_addr(AttrType::XOR_MAPPED_ADDRESS, client);
        });
    }
}

/// REQUESTED-ADDRESS-FAMILY / ADDITIONAL-ADDRESS-FAMILY value: 0x01 IPv4,
/// 0x02 IPv6 (true); another family is 440, a bad length 400.
pub(super) fn parse_family(v: &[u8]) -> Result<bool, ErrorCode> {
    match v {
        [0x01, _, _, _] => Ok(false),
        [0x02, _, _, _] => Ok(true),
        [_, _, _, _] => Err(ErrorCode::ADDRESS_FAMILY_NOT_SUPPORTED),
        _ => Err(ErrorCode::BAD_REQUEST),
    }
}
