//! CreatePermission (RFC 8656 §9–10) and ChannelBind (§12).

use std::net::SocketAddr;

use super::request::{Authed, Req, xor_addr};
use super::{Event, FiveTuple, RelayId, Server};
use crate::proto::channel_data::ChannelNumber;
use crate::proto::stun::{AttrType, Class, ErrorCode, Message, decode_xor_addr};
use crate::proto::time::Now;

/// Most XOR-PEER-ADDRESS attributes read from one CreatePermission.
const MAX_PEERS_PER_REQUEST: usize = 16;

impl Server {
    /// Checks a peer against the allocation's family and the peer policy;
    /// the error code to answer with if it is refused.
    pub(super) fn vet_peer(
        &mut self,
        req: Req,
        families: (bool, bool),
        peer: SocketAddr,
        whole_addr: bool,
    ) -> Result<(), ErrorCode> {
        // (IPv4, IPv6) relayed addresses the allocation has.
        if !(if peer.is_ipv6() {
            families.1
        } else {
            families.0
        }) {
            return Err(ErrorCode::PEER_ADDRESS_FAMILY_MISMATCH);
        }
        let policy = &self.config.peer_policy;
        let verdict = if whole_addr {
            policy.check_addr(peer)
        } else {
            policy.check(peer.ip())
        };
        if let Err(deny) = verdict {
            self.stats.peer_denied += 1;
            self.events.push_back(Event::PeerDenied {
                client: req.from,
                peer: peer.ip(),
                reason: deny.to_string(),
            });
            return Err(ErrorCode::FORBIDDEN);
        }
        Ok(())
    }

    /// The client's allocation and its (IPv4, IPv6) relayed families.
    pub(super) fn client_allocation(&self, client: &FiveTuple) -> Option<(RelayId, (bool, bool))> {
        let id = *self.by_client.get(client)?;
        let a = self.slab.get(id)?;
        Some((id, (a.serves_family(false), a.serves_family(true))))
    }

    pub(super) fn create_permission(
        &mut self,
        now: Now,
        req: Req,
        msg: &Message<'_>,
        auth: Authed,
    ) {
        let key = Some(auth.key);
        let Some((id, families)) = self.client_allocation(&req.from) else {
            return self.reject(now, req, ErrorCode::ALLOCATION_MISMATCH, key);
        };
        let tid = msg.transaction_id();
        let mut peers = [None::<SocketAddr>; MAX_PEERS_PER_REQUEST];
        let mut n = 0;
        for (t, v) in msg.attrs() {
            if t != AttrType::XOR_PEER_ADDRESS {
                continue;
            }
            let Ok(peer) = decode_xor_addr(v, &tid) else {
                return self.reject(now, req, ErrorCode::BAD_REQUEST, key);
            };
            if n == MAX_PEERS_PER_REQUEST {
                return self.reject(now, req, ErrorCode::INSUFFICIENT_CAPACITY, key);
            }
            if let Err(code) = self.vet_peer(req, families, peer, false) {
                return self.reject(now, req, code, key);
            }
            peers[n] = Some(peer);
            n += 1;
        }
        if n == 0 {
            return self.reject(now, req, ErrorCode::BAD_REQUEST, key);
        }
        // All or nothing (RFC 8656 §10.2): check the quota before installing any.
        let max = self.config.limits.max_permissions_per_allocation as usize;
        let Some(alloc) = self.slab.get_mut(id) else {
            return;
        };
        let fits = peers[..n]
            .iter()
            .flatten()
            .enumerate()
            .all(|(i, p)| alloc.permission_fits(p.ip(), now.mono, max, i));
        if !fits {
            return self.reject(now, req, ErrorCode::INSUFFICIENT_CAPACITY, key);
        }
        for p in peers[..n].iter().flatten() {
            alloc.install_permission(p.ip(), now.mono, max);
        }
        self.reply(Some(now), req, Class::Success, key, |_| {});
    }

    pub(super) fn channel_bind(&mut self, now: Now, req: Req, msg: &Message<'_>, auth: Authed) {
        let key = Some(auth.key);
        let Some((id, families)) = self.client_allocation(&req.from) else {
            return self.reject(now, req, ErrorCode::ALLOCATION_MISMATCH, key);
        };
        // RFC 8656 §12.2: a number outside 0x4000–0x4FFF (or the RFC 5766
        // range when configured) is answered 400.
        let range = self.config.channel_range;
        let number = msg.get(AttrType::CHANNEL_NUMBER).and_then(|v| {
            let b: [u8; 4] = v.try_into().ok()?;
            ChannelNumber::new(u16::from_be_bytes([b[0], b[1]])).filter(|n| range.contains(*n))
        });
        let Some(number) = number else {
            return self.reject(now, req, ErrorCode::BAD_REQUEST, key);
        };
        let Some(Ok(peer)) = xor_addr(msg, AttrType::XOR_PEER_ADDRESS) else {
            return self.reject(now, req, ErrorCode::BAD_REQUEST, key);
        };
        if let Err(code) = self.vet_peer(req, families, peer, true) {
            return self.reject(now, req, code, key);
        }
        let limits = &self.config.limits;
        let (max_ch, max_perm) = (
            limits.max_channels_per_allocation as usize,
            limits.max_permissions_per_allocation as usize,
        );
        let Some(alloc) = self.slab.get_mut(id) else {
            return;
        };
        let refresh = match alloc.check_channel_bind(number, peer, now.mono) {
            Ok(r) => r,
            Err(_) => return self.reject(now, req, ErrorCode::BAD_REQUEST, key),
        };
        if !refresh && alloc.held_channels(now.mono) >= max_ch
            || !alloc.permission_fits(peer.ip(), now.mono, max_perm, 0)
        {
            return self.reject(now, req, ErrorCode::INSUFFICIENT_CAPACITY, key);
        }
        alloc.bind_channel(number, peer, now.mono);
        alloc.install_permission(peer.ip(), now.mono, max_perm);
        self.reply(Some(now), req, Class::Success, key, |_| {});
    }
}
