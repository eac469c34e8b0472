//! The UDP rooms of a worker: client datagrams on the listeners, peer
//! datagrams on the relay sockets, both read in `recvmmsg` batches (GRO
//! segments split), and relayed datagrams gathered into GSO sends.
//!
//! The relay path lives here: per datagram one core call and a push onto
//! the send batch (the one copy, into the GSO buffer); a lone peer datagram
//! is received behind the headroom and framed where it lies. No
//! allocation, no lock, no syscall beyond the batched ones.

use std::io::ErrorKind;
use std::net::SocketAddr;

use quinn_udp::BATCH_SIZE;

use super::clock;
use super::slots::Slots;
use super::socket_id::SocketId;
use super::udp::{Dest, RecvBufs, Sock};
use super::worker::{RelaySock, Worker};
use crate::admin::metrics::Transport as MetricsTransport;
use crate::admin::turn_events::{record_drop, record_request};
use crate::proto::time::Now;
use crate::proto::turn::{ClientAction, FiveTuple, HEADROOM, PeerAction, RelayId, Transport};

/// Receive batches taken from one socket before others get a turn; a
/// socket still readable after that is revisited on the next loop.
const ROUNDS_PER_EVENT: usize = 8;

impl Worker {
    /// Client datagrams on listener `i`: each datagram (GRO segments split)
    /// through the core, relayed payloads batched per peer for GSO.
    pub(super) fn udp_readable(&mut self, i: usize) {
        let Some(&(_, local)) = self.udp.get(i) else {
            return;
        };
        self.read_batches(SocketId::Udp(i), |w, bufs, n| {
            let now = clock::now();
            for k in 0..n {
                let meta = &bufs.meta[k];
                // The address the client sent to (IP_PKTINFO), so replies
                // leave from it even on a wildcard listener.
                let server = SocketAddr::new(meta.dst_ip.unwrap_or(local.ip()), local.port());
                let five = FiveTuple {
                    client: meta.addr,
                    server,
                    transport: Transport::Udp,
                };
                for d in bufs.datagrams(k) {
                    w.handled += 1;
                    record_request(&w.ops.metrics, MetricsTransport::Udp, d);
                    let action = w.server.handle_client(now, five, d);
                    w.client_action(action, d);
                }
            }
            w.drain();
        });
    }

    /// Peer datagrams on the relay socket of core slot `slot`. A lone
    /// datagram is framed in place in its receive slot (headroom and
    /// tailroom around it); segments of a GRO buffer are copied behind the
    /// headroom of `scratch` one by one, as their neighbours are in the way.
    pub(super) fn relay_readable(&mut self, slot: u32, ipv6: bool) {
        let Some(r) = self.relays.get(slot as usize) else {
            return;
        };
        let id = r.id;
        self.read_batches(SocketId::Relay { slot, ipv6 }, |w, bufs, n| {
            let now = clock::now();
            for k in 0..n {
                let peer = bufs.meta[k].addr;
                if let Some((frame, payload)) = bufs.single(k) {
                    w.handled += 1;
                    let len = payload.len();
                    let action = w.server.handle_peer(now, id, peer, frame, payload);
                    w.peer_action(action, frame, len);
                    continue;
                }
                for d in bufs.datagrams(k) {
                    w.peer_datagram_copied(now, id, peer, d);
                }
            }
        });
    }

    /// A peer datagram that cannot be framed where it lies (a GRO segment,
    /// or one relayed inside the worker): copied behind the headroom of
    /// `scratch`, through the core, and on to the client.
    fn peer_datagram_copied(&mut self, now: Now, id: RelayId, peer: SocketAddr, d: &[u8]) {
        self.handled += 1;
        let end = HEADROOM + d.len();
        let Some(dst) = self.scratch.get_mut(HEADROOM..end) else {
            return;
        };
        dst.copy_from_slice(d);
        let action = self
            .server
            .handle_peer(now, id, peer, &mut self.scratch, HEADROOM..end);
        let scratch = std::mem::take(&mut self.scratch);
        self.peer_action(action, &scratch, d.len());
        self.scratch = scratch;
    }

    /// What the core decided for a peer datagram of `len` payload bytes:
    /// the framed bytes in `frame` go to the client, or the drop is counted.
    #[inline]
    fn peer_action(&mut self, action: PeerAction, frame: &[u8], len: usize) {
        match action {
            PeerAction::Forward { to, bytes } => {
                self.ops.bytes_to_client += len as u64;
                if let Some(b) = frame.get(bytes) {
                    self.forward_to_client(&to, b);
                }
            }
            PeerAction::Dropped(reason) => record_drop(&self.ops.metrics, reason),
        }
    }

    /// A datagram one of this worker's relays sends to another of them
    /// (two clients of this server talking relay to relay): handed to the
    /// destination relay here, not through the kernel, which saves a
    /// `sendmsg`, a loopback delivery and a `recvmmsg`. The destination
    /// sees what the kernel would have delivered: the source relay's local
    /// address, through its own permissions. Relays on other workers (or
    /// other servers) go through the kernel as before.
    fn relay_inside(&mut self, from: RelayId, to: SocketAddr, bytes: &[u8]) -> bool {
        let Some(&slot) = self.relay_addrs.get(&to) else {
            return false;
        };
        let src = self
            .relays
            .get(from.slot as usize)
            .and_then(|r| r.local[usize::from(to.is_ipv6())]);
        let dst = self.relays.get(slot as usize).map(|r| r.id);
        if let (Some(src), Some(dst)) = (src, dst) {
            self.ops.relayed_inside += 1;
            self.peer_datagram_copied(clock::now(), dst, src, bytes);
        }
        true
    }

    /// Receives `recvmmsg` batches from one socket until it is empty or its
    /// turn is over, handing each batch to `handle`; a socket still readable
    /// after its turn goes on the ready list.
    fn read_batches(
        &mut self,
        id: SocketId,
        mut handle: impl FnMut(&mut Self, &mut RecvBufs, usize),
    ) {
        let Some(mut bufs) = self.rbufs.take() else {
            return;
        };
        let mut drained = false;
        for _ in 0..ROUNDS_PER_EVENT {
            let Some(sock) = sock_of(&self.udp, &self.relays, id) else {
                drained = true;
                break;
            };
            let n = match sock.recv(&mut bufs) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    drained = true;
                    break;
                }
                // Interrupted, or an ICMP error surfacing: not fatal, read on.
                Err(_) => continue,
            };
            handle(self, &mut bufs, n);
            if n < BATCH_SIZE {
                // A short batch emptied the queue; epoll (edge-triggered)
                // reports the next arrival, so no extra recvmmsg for EAGAIN.
                drained = true;
                break;
            }
        }
        self.rbufs = Some(bufs);
        self.flush_batch();
        if !drained {
            self.ready.push(id);
        }
    }

    /// Relays to a peer; `datagram` holds the bytes the action's range points into.
    #[inline]
    pub(super) fn client_action(&mut self, action: ClientAction, datagram: &[u8]) {
        let ClientAction::RelayToPeer {
            relay,
            peer,
            payload,
        } = action
        else {
            if let ClientAction::Dropped(reason) = action {
                record_drop(&self.ops.metrics, reason);
            }
            // A STUN request or response (call setup): the next one is a
            // round trip away, so do not hold the worker after this wakeup.
            self.coalescer.urgent();
            return;
        };
        if let Some(bytes) = datagram.get(payload) {
            self.ops.bytes_to_peer += bytes.len() as u64;
            if self.relay_inside(relay, peer, bytes) {
                return;
            }
            let dest = Dest {
                sock: SocketId::relay(relay, peer.is_ipv6()),
                to: peer,
                src_ip: None,
            };
            self.queue(dest, bytes);
        }
    }

    /// Adds a datagram to the GSO batch, flushing the batch first if the
    /// run breaks (another destination, another size, full).
    #[inline]
    fn queue(&mut self, dest: Dest, bytes: &[u8]) {
        if self.batch.fits(&dest, bytes.len(), self.max_segments) {
            self.batch.push(bytes);
        } else {
            self.flush_batch();
            self.batch.start(dest, bytes);
        }
    }

    pub(super) fn flush_batch(&mut self) {
        let Some((dest, bytes, segment)) = self.batch.take() else {
            return;
        };
        if let Some(sock) = sock_of(&self.udp, &self.relays, dest.sock) {
            sock.send(dest.to, dest.src_ip, bytes, segment);
        }
    }

    /// Sends a framed peer datagram to a client: batched for UDP, queued for TCP.
    fn forward_to_client(&mut self, to: &FiveTuple, bytes: &[u8]) {
        if to.transport == Transport::Udp {
            if let Some(dest) = self.client_dest(to) {
                self.queue(dest, bytes);
            }
        } else {
            self.send_to_conn(to, bytes);
        }
    }

    /// The listener a UDP client talks to, and the source IP to send from
    /// when that listener is bound to a wildcard address.
    fn client_dest(&self, to: &FiveTuple) -> Option<Dest> {
        let i = self.udp.iter().position(|(_, a)| {
            a.port() == to.server.port() && (a.ip() == to.server.ip() || a.ip().is_unspecified())
        })?;
        let src_ip = self.udp[i]
            .1
            .ip()
            .is_unspecified()
            .then_some(to.server.ip());
        Some(Dest {
            sock: SocketId::Udp(i),
            to: to.client,
            src_ip,
        })
    }

    /// Sends a reply at once (not batched) to a client of any transport.
    pub(super) fn send_to_client(&mut self, to: &FiveTuple, data: &[u8]) {
        match to.transport {
            Transport::Udp => {
                if let Some(d) = self.client_dest(to)
                    && let SocketId::Udp(i) = d.sock
                {
                    self.udp[i].0.send(d.to, d.src_ip, data, None);
                }
            }
            Transport::Tcp | Transport::Tls => self.send_to_conn(to, data),
        }
    }
}

/// The UDP socket an id names among listeners and relays, if it still exists.
#[inline]
fn sock_of<'a>(
    udp: &'a [(Sock, SocketAddr)],
    relays: &'a Slots<RelaySock>,
    id: SocketId,
) -> Option<&'a Sock> {
    match id {
        SocketId::Udp(i) => udp.get(i).map(|(s, _)| s),
        SocketId::Relay { slot, ipv6 } => relays
            .get(slot as usize)
            .and_then(|r| r.socks[usize::from(ipv6)].as_ref()),
        SocketId::Waker
        | SocketId::StreamListener(_)
        | SocketId::Conn(_)
        | SocketId::TcpRelay { .. }
        | SocketId::Peer(_) => None,
    }
}
