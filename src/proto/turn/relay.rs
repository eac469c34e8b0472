//! The hot path: ChannelData and Send indications to peers, peer datagrams
//! to clients. Nothing here allocates, locks or logs; payloads are never
//! copied — decisions are ranges into the caller's buffer, and headers are
//! written in place into the headroom the driver leaves before the payload.

use std::net::SocketAddr;
use std::ops::Range;
use std::time::Instant;

use super::{FiveTuple, RelayId, Server};
use crate::proto::channel_data::{ChannelData, write_header};
use crate::proto::stun::{AttrType, MAGIC_COOKIE, Message, TransactionId, encode_xor_addr};
use crate::proto::time::Now;

/// Bytes the driver leaves free before a peer payload: a 20-byte STUN
/// header, a 24-byte IPv6 XOR-PEER-ADDRESS and a 4-byte DATA header.
pub const HEADROOM: usize = 48;
/// Bytes the driver leaves free after a peer payload, for padding.
pub const TAILROOM: usize = 4;

/// What to do with a client datagram or frame.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ClientAction {
    /// A request was answered (see `poll_transmit`) or needed nothing.
    Handled,
    /// Send `buf[payload]` from the allocation's relay socket to `peer`.
    RelayToPeer {
        relay: RelayId,
        peer: SocketAddr,
        payload: Range<usize>,
    },
    /// Dropped silently (counted in `stats`).
    Dropped(DropReason),
}

/// What to do with a datagram a relay socket received from a peer.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum PeerAction {
    /// Send `buf[bytes]` (ChannelData or Data indication, built in place) to the client.
    Forward {
        to: FiveTuple,
        bytes: Range<usize>,
    },
    Dropped(DropReason),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DropReason {
    Malformed,
    NoAllocation,
    NoChannel,
    /// A channel number outside the configured range (RFC 8656 §12).
    ChannelOutOfRange,
    NoPermission,
    PeerDenied,
    NotForUs,
    TooLarge,
    OverBandwidth,
}

impl Server {
    /// Handles one datagram (UDP) or one whole frame (TCP/TLS) from a client.
    pub fn handle_client(&mut self, now: Now, from: FiveTuple, buf: &[u8]) -> ClientAction {
        match buf.first() {
            // RFC 8656 §12: ChannelData starts with 0b01; STUN with 0b00.
            Some(b) if b & 0xC0 == 0x40 => self.channel_data(now.mono, from, buf),
            Some(b) if b & 0xC0 == 0x00 => self.handle_stun(now, from, buf),
            _ => {
                self.stats.malformed += 1;
                ClientAction::Dropped(DropReason::Malformed)
            }
        }
    }

    #[inline]
    fn channel_data(&mut self, now: Instant, from: FiveTuple, buf: &[u8]) -> ClientAction {
        let Ok(cd) = ChannelData::parse(buf) else {
            self.stats.malformed += 1;
            return ClientAction::Dropped(DropReason::Malformed);
        };
        if !self.config.channel_range.contains(cd.channel) {
            self.stats.channel_out_of_range += 1;
            return ClientAction::Dropped(DropReason::ChannelOutOfRange);
        }
        let verdict = match self
            .by_client
            .get(&from)
            .and_then(|id| Some((*id, self.slab.get(*id)?)))
        {
            None => Err(DropReason::NoAllocation),
            Some((id, a)) => match a.channel_peer(cd.channel, now) {
                None => Err(DropReason::NoChannel),
                Some(peer) if !a.has_permission(peer.ip(), now) => Err(DropReason::NoPermission),
                Some(peer) => Ok(ClientAction::RelayToPeer {
                    relay: id,
                    // One comparison: this server's public relay IP → local.
                    peer: self.config.relay_nat.to_local(peer),
                    payload: 4..4 + cd.payload.len(),
                }),
            },
        };
        self.count_to_peer(now, verdict)
    }

    /// A Send indication (RFC 8656 §11.2): checks as for ChannelData plus the
    /// peer policy; anything wrong is dropped without an answer.
    pub(super) fn send_indication(
        &mut self,
        now: Instant,
        from: FiveTuple,
        msg: &Message<'_>,
        buf: &[u8],
    ) -> ClientAction {
        let verdict = (|| {
            let id = *self.by_client.get(&from).ok_or(DropReason::NoAllocation)?;
            let a = self.slab.get(id).ok_or(DropReason::NoAllocation)?;
            let tid = msg.transaction_id();
            let peer = msg
                .get(AttrType::XOR_PEER_ADDRESS)
                .ok_or(DropReason::Malformed)?;
            let peer = crate::proto::stun::decode_xor_addr(peer, &tid)
                .map_err(|_| DropReason::Malformed)?;
            let data = msg.get(AttrType::DATA).ok_or(DropReason::Malformed)?;
            if !a.serves_family(peer.is_ipv6()) || self.config.peer_policy.check_addr(peer).is_err()
            {
                return Err(DropReason::PeerDenied);
            }
            if !a.has_permission(peer.ip(), now) {
                return Err(DropReason::NoPermission);
            }
            // `data` borrows `buf`: its offset is the distance between the two pointers.
            let start = (data.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
            Ok(ClientAction::RelayToPeer {
                relay: id,
                // One comparison: this server's public relay IP → local.
                peer: self.config.relay_nat.to_local(peer),
                payload: start..start + data.len(),
            })
        })();
        self.count_to_peer(now, verdict)
    }

    #[inline]
    fn count_to_peer(
        &mut self,
        now: Instant,
        verdict: Result<ClientAction, DropReason>,
    ) -> ClientAction {
        match verdict {
            Ok(ClientAction::RelayToPeer {
                relay, ref payload, ..
            }) if !self.admit(relay, 0, payload.len(), now) => {
                self.stats.over_bandwidth += 1;
                ClientAction::Dropped(DropReason::OverBandwidth)
            }
            Ok(a) => {
                self.stats.relayed_to_peer += 1;
                a
            }
            Err(r) => {
                self.stats.dropped += 1;
                ClientAction::Dropped(r)
            }
        }
    }

    /// Applies the per-allocation bandwidth limit, if configured, and
    /// counts what passes on the allocation (two plain adds on a struct the
    /// caller just looked up, for the admin API).
    #[inline]
    fn admit(&mut self, relay: RelayId, dir: usize, len: usize, now: Instant) -> bool {
        let rate = self.config.limits.bandwidth_bytes_per_sec;
        let Some(a) = self.slab.get_mut(relay) else {
            return true;
        };
        if !a.admit(dir, now, len, rate) {
            return false;
        }
        a.traffic[dir].count(len);
        true
    }

    /// Handles a datagram that relay socket `relay` received from `peer`.
    /// The payload sits at `buf[payload]` with at least [`HEADROOM`] bytes
    /// before it and [`TAILROOM`] after; the ChannelData header or Data
    /// indication is written around it in place.
    pub fn handle_peer(
        &mut self,
        now: Now,
        relay: RelayId,
        peer: SocketAddr,
        buf: &mut [u8],
        payload: Range<usize>,
    ) -> PeerAction {
        let now = now.mono;
        // One comparison: another allocation's local relay address is seen
        // under its public one, as the client knows it (`hairpin`).
        let peer = self.config.relay_nat.to_public(peer);
        let Some(a) = self.slab.get(relay) else {
            self.stats.dropped += 1;
            return PeerAction::Dropped(DropReason::NoAllocation);
        };
        if !a.has_permission(peer.ip(), now) {
            self.stats.dropped += 1;
            return PeerAction::Dropped(DropReason::NoPermission);
        }
        let len = payload.len();
        // The largest payload whose Data indication still fits a u16 length.
        if payload.start < HEADROOM || len > 0xFFFF - HEADROOM || buf.len() < payload.end + TAILROOM
        {
            self.stats.dropped += 1;
            return PeerAction::Dropped(DropReason::TooLarge);
        }
        let to = a.five;
        if !self.admit(relay, 1, len, now) {
            self.stats.over_bandwidth += 1;
            return PeerAction::Dropped(DropReason::OverBandwidth);
        }
        let Some(a) = self.slab.get(relay) else {
            return PeerAction::Dropped(DropReason::NoAllocation);
        };
        let pad = (4 - len % 4) % 4;
        let bytes = if let Some(ch) = a.peer_channel(peer, now) {
            let start = payload.start - 4;
            buf[start..payload.start].copy_from_slice(&write_header(ch, len as u16));
            // RFC 8656 §12.5: over streams ChannelData is padded to 4 bytes.
            let end = if to.transport.is_stream() {
                payload.end + pad
            } else {
                payload.end
            };
            buf[payload.end..end].fill(0);
            start..end
        } else {
            self.data_indication(peer, buf, payload.clone(), pad)
        };
        self.stats.relayed_to_client += 1;
        PeerAction::Forward { to, bytes }
    }

    /// Writes a Data indication (RFC 8656 §11.4) around `buf[payload]`.
    fn data_indication(
        &mut self,
        peer: SocketAddr,
        buf: &mut [u8],
        payload: Range<usize>,
        pad: usize,
    ) -> Range<usize> {
        self.token_counter = self.token_counter.wrapping_add(1);
        let mut tid = [0u8; 12];
        tid[4..].copy_from_slice(&self.token_counter.to_be_bytes());
        let tid = TransactionId(tid);
        let mut addr = [0u8; 20];
        let addr_len = encode_xor_addr(peer, &tid, &mut addr);
        let len = payload.len();
        let start = payload.start - (20 + 4 + addr_len + 4);
        let body_len = (4 + addr_len + 4 + len + pad) as u16;
        let mut h = &mut buf[start..payload.start];
        let mut put = |b: &[u8]| {
            let (head, rest) = std::mem::take(&mut h).split_at_mut(b.len());
            head.copy_from_slice(b);
            h = rest;
        };
        put(&0x0017u16.to_be_bytes()); // Data indication
        put(&body_len.to_be_bytes());
        put(&MAGIC_COOKIE.to_be_bytes());
        put(&tid.0);
        put(&AttrType::XOR_PEER_ADDRESS.0.to_be_bytes());
        put(&(addr_len as u16).to_be_bytes());
        put(&addr[..addr_len]);
        put(&AttrType::DATA.0.to_be_bytes());
        put(&(len as u16).to_be_bytes());
        buf[payload.end..payload.end + pad].fill(0);
        start..payload.end + pad
    }
}
