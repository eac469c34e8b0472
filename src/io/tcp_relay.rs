//! TCP relays (RFC 6062), the driver's side: the relayed address is a
//! listening socket; peer connections are opened (Connect) or accepted
//! (ConnectionAttempt) as the core decides; once the core authorises a
//! ConnectionBind the client data connection and the peer connection are
//! spliced here, raw bytes both ways, and never reach the core.
//!
//! # Backpressure
//! Each direction has one bounded queue: bytes for the peer wait in
//! [`PeerSide::wbuf`], bytes for the client in the data connection's write
//! queue. A side is read only while the other side's queue is below
//! [`SPLICE_QUEUE`]; when that queue drains, the reader is put back on the
//! worker's ready list (mio is edge-triggered: a socket left unread gives
//! no new event). Before the bind, peer bytes stay in the kernel (RFC 6062
//! §5.2: the server "MUST buffer" them) because the peer is not read.
//!
//! # Metrics
//! Spliced bytes count into the worker's plain `bytes_to_peer` /
//! `bytes_to_client` (published as `tern_relay_bytes_total`, as for UDP)
//! when they move from one side's socket into the other side's queue: one
//! add per read, no atomics.
//!
//! # Which worker
//! A ConnectionBind arrives on a new TCP connection, which SO_REUSEPORT may
//! give to any worker. The worker that owns the CONNECTION-ID files it in
//! `handoff.rs`; a worker that gets a ConnectionBind for an id it does not
//! own moves the whole connection (socket, TLS session, unread bytes) to
//! the owner's inbox and wakes it. The core never sees other shards.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr};

use mio::Interest;
use mio::net::{TcpListener, TcpStream};
use socket2::{Domain, Protocol, Socket, Type};

use super::clock;
use super::shared::QuotaHold;
use super::slots::Slots;
use super::socket_id::SocketId;
use super::worker::Worker;
use crate::proto::stun::{AttrType, Class, Message, Method};
use crate::proto::turn::{BindError, ConnectFailed, ConnectionId, FiveTuple, RelayBound, RelayId};

/// Most bytes queued towards one side of a splice before the other side
/// stops being read. Below `tcp::MAX_WRITE_QUEUE`, so a spliced client's
/// queue never drops bytes (a stream must not lose any).
const SPLICE_QUEUE: usize = 128 * 1024;

/// Bytes read from a peer in one go.
const PEER_CHUNK: usize = 16 * 1024;

/// Relay ports probed for a TCP relay listener before 508.
const MAX_TRIES: u64 = 128;

/// A TCP allocation's relayed address.
struct RelayListener {
    id: RelayId,
    listener: TcpListener,
    /// The local address (relay IP and port): also the source of Connects.
    local: SocketAddr,
    _quota: QuotaHold,
}

/// One peer data connection.
struct PeerSide {
    id: ConnectionId,
    stream: TcpStream,
    connecting: bool,
    /// The spliced client data connection (key in the worker's `conns`).
    data: Option<usize>,
    /// Bytes from the client not yet written to the peer.
    wbuf: Vec<u8>,
    /// The client is not read until `wbuf` drains below the bound.
    client_paused: bool,
    /// The peer is not read until the client's queue drains below the bound.
    peer_paused: bool,
}

/// The TCP relay state of one worker.
#[derive(Default)]
pub(super) struct TcpRelays {
    listeners: Slots<RelayListener>,
    peers: Slots<PeerSide>,
    by_id: HashMap<ConnectionId, usize>,
    /// Client data connection → peer.
    spliced: HashMap<usize, usize>,
    /// Set by `frames` when a ConnectionBind belongs to another worker.
    pub(super) handoff_to: Option<usize>,
}

impl TcpRelays {
    pub(super) fn is_spliced(&self, conn: usize) -> bool {
        self.spliced.contains_key(&conn)
    }
}

/// A TCP socket bound to `local` with SO_REUSEADDR and SO_REUSEPORT, so
/// the relay listener and the Connects from the same address coexist
/// (RFC 6062 §5.2: the connection is made from the relayed address).
fn relay_tcp_socket(local: SocketAddr) -> io::Result<Socket> {
    let domain = if local.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let s = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    if local.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    s.bind(&local.into())?;
    Ok(s)
}

/// A TCP relay listener on `ip` in the relay port range.
fn relay_listener(ip: IpAddr, lo: u16, hi: u16, seed: u64) -> io::Result<std::net::TcpListener> {
    let (lo, hi) = (u64::from(lo), u64::from(hi));
    let span = hi - lo + 1;
    for i in 0..MAX_TRIES.min(span) {
        let port = lo + (seed % span + i * 7919) % span;
        let Ok(port) = u16::try_from(port) else {
            continue;
        };
        let Ok(s) = relay_tcp_socket(SocketAddr::new(ip, port)) else {
            continue;
        };
        if s.listen(128).is_ok() {
            return Ok(s.into());
        }
    }
    Err(io::Error::new(
        ErrorKind::AddrInUse,
        "no free TCP relay port in range",
    ))
}

impl Worker {
    /// Carries out `Command::ListenTcpRelay`: quota, then a listener.
    pub(super) fn listen_tcp_relay(
        &mut self,
        relay: RelayId,
        username: &str,
        ipv6: bool,
    ) -> Result<RelayBound, BindError> {
        let quota = self.shared.quota.acquire(username)?;
        let Some((local_ip, advertised_ip)) = self.relay_ip(ipv6) else {
            return Err(BindError::NoSocket);
        };
        let range = self.shared.settings.relay_ports.clone();
        let seed = self.next_seed();
        let bound = relay_listener(local_ip, *range.start(), *range.end(), seed).and_then(|l| {
            let local = l.local_addr()?;
            let mut listener = TcpListener::from_std(l);
            let token = SocketId::TcpRelay { slot: relay.slot }.token();
            self.poll
                .registry()
                .register(&mut listener, token, Interest::READABLE)?;
            Ok((listener, local))
        });
        let (listener, local) = bound.map_err(|e| {
            tracing::warn!(error = %e, "cannot listen on a TCP relay port; answering 508");
            BindError::NoSocket
        })?;
        let entry = RelayListener {
            id: relay,
            listener,
            local,
            _quota: quota,
        };
        self.tcp_relay
            .listeners
            .insert_at(relay.slot as usize, entry);
        Ok(RelayBound {
            addr: SocketAddr::new(advertised_ip, local.port()),
            additional: None,
            reservation: None,
        })
    }

    /// Closes the listener of a TCP allocation that ended (its connections
    /// were closed by the core's `ClosePeer` commands before).
    pub(super) fn release_tcp_relay(&mut self, relay: RelayId) {
        let slot = relay.slot as usize;
        if self
            .tcp_relay
            .listeners
            .get(slot)
            .is_some_and(|l| l.id == relay)
            && let Some(mut l) = self.tcp_relay.listeners.remove_at(slot)
        {
            let _ = self.poll.registry().deregister(&mut l.listener);
        }
    }

    /// Files a peer stream under `id` and registers it.
    fn add_peer(
        &mut self,
        id: ConnectionId,
        stream: TcpStream,
        connecting: bool,
    ) -> io::Result<()> {
        let side = PeerSide {
            id,
            stream,
            connecting,
            data: None,
            wbuf: Vec::new(),
            client_paused: false,
            peer_paused: false,
        };
        let idx = self.tcp_relay.peers.insert(side);
        let token = SocketId::Peer(idx).token();
        let registered = match self.tcp_relay.peers.get_mut(idx) {
            Some(p) => self.poll.registry().register(
                &mut p.stream,
                token,
                Interest::READABLE | Interest::WRITABLE,
            ),
            None => Ok(()),
        };
        if let Err(e) = registered {
            self.tcp_relay.peers.remove(idx);
            return Err(e);
        }
        self.tcp_relay.by_id.insert(id, idx);
        self.shared.handoff.own(id, self.index);
        Ok(())
    }

    /// Carries out `Command::ConnectPeer`: a nonblocking connect from the
    /// relayed address; the result is reported when the socket is writable.
    pub(super) fn connect_peer(&mut self, relay: RelayId, id: ConnectionId, peer: SocketAddr) {
        let local = self
            .tcp_relay
            .listeners
            .get(relay.slot as usize)
            .filter(|l| l.id == relay)
            .map(|l| l.local);
        let started = local
            .ok_or_else(|| io::Error::new(ErrorKind::NotFound, "no TCP relay"))
            .and_then(|local| {
                let s = relay_tcp_socket(local)?;
                match s.connect(&peer.into()) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
                    Err(e) => return Err(e),
                }
                Ok(TcpStream::from_std(s.into()))
            })
            .and_then(|stream| self.add_peer(id, stream, true));
        if let Err(e) = started {
            tracing::debug!(peer = %peer, error = %e, "TCP connect to peer failed");
            self.server
                .handle_peer_connected(clock::now(), id, Err(ConnectFailed));
        }
    }

    /// Accepts peers on the TCP relay of core slot `slot`; the core keeps
    /// those with a permission (ConnectionAttempt) and the rest are closed.
    pub(super) fn tcp_relay_accept(&mut self, slot: u32) {
        loop {
            let Some(l) = self.tcp_relay.listeners.get(slot as usize) else {
                return;
            };
            let relay = l.id;
            let (stream, peer) = match l.listener.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "TCP relay accept failed");
                    return;
                }
            };
            let Some(id) = self.server.handle_peer_incoming(clock::now(), relay, peer) else {
                tracing::debug!(peer = %peer, "TCP peer refused: no permission or over the cap");
                continue;
            };
            if let Err(e) = self.add_peer(id, stream, false) {
                tracing::warn!(error = %e, "cannot register a TCP peer connection");
                self.server.handle_peer_closed(id);
            }
            self.drain();
        }
    }

    /// Readiness of peer connection `idx`.
    pub(super) fn peer_event(&mut self, idx: usize, readable: bool, writable: bool) {
        let Some(p) = self.tcp_relay.peers.get_mut(idx) else {
            return;
        };
        if p.connecting {
            let failed = match p.stream.take_error() {
                Ok(Some(_)) | Err(_) => true,
                Ok(None) => match p.stream.peer_addr() {
                    Ok(_) => false,
                    Err(e) if e.kind() == ErrorKind::NotConnected => return,
                    Err(_) => true,
                },
            };
            let id = p.id;
            p.connecting = false;
            if failed {
                self.drop_peer(idx);
                self.server
                    .handle_peer_connected(clock::now(), id, Err(ConnectFailed));
            } else {
                self.server.handle_peer_connected(clock::now(), id, Ok(()));
            }
            return self.drain();
        }
        let Some(data) = p.data else {
            return; // not bound yet: the peer's bytes wait in the kernel
        };
        if writable && !self.flush_peer(idx) {
            return self.close_pair(idx);
        }
        if readable {
            self.peer_to_client(idx, data);
        }
    }

    /// Writes what waits for the peer; resumes reading the client when the
    /// queue fell below the bound. False on error.
    fn flush_peer(&mut self, idx: usize) -> bool {
        let Some(p) = self.tcp_relay.peers.get_mut(idx) else {
            return false;
        };
        while !p.wbuf.is_empty() {
            match p.stream.write(&p.wbuf) {
                Ok(0) => return false,
                Ok(n) => {
                    p.wbuf.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        if p.client_paused
            && p.wbuf.len() < SPLICE_QUEUE
            && let Some(data) = p.data
        {
            p.client_paused = false;
            self.ready.push(SocketId::Conn(data));
        }
        true
    }

    /// Moves peer bytes to the client while its queue has room.
    fn peer_to_client(&mut self, idx: usize, data: usize) {
        let mut chunk = [0u8; PEER_CHUNK];
        loop {
            let room = match self.conns.get(data) {
                Some(c) => SPLICE_QUEUE.saturating_sub(c.pending_write()),
                None => return self.close_pair(idx),
            };
            let Some(p) = self.tcp_relay.peers.get_mut(idx) else {
                return;
            };
            if room == 0 {
                p.peer_paused = true; // resumed when the client's queue drains
                return;
            }
            let n = match p.stream.read(&mut chunk[..room.min(PEER_CHUNK)]) {
                Ok(0) => return self.close_pair(idx),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return self.close_pair(idx),
            };
            let token = SocketId::Conn(data).token();
            let ok = match self.conns.get_mut(data) {
                Some(c) => c.queue(&chunk[..n], self.poll.registry(), token),
                None => false,
            };
            if !ok {
                return self.close_pair(idx);
            }
            self.ops.bytes_to_client += n as u64;
        }
    }

    /// Readiness of a spliced client data connection `i`.
    pub(super) fn data_conn_event(&mut self, i: usize, readable: bool, writable: bool) {
        let Some(&peer) = self.tcp_relay.spliced.get(&i) else {
            return;
        };
        let token = SocketId::Conn(i).token();
        if writable {
            let (ok, pending) = match self.conns.get_mut(i) {
                Some(c) => (c.flush(self.poll.registry(), token), c.pending_write()),
                None => return,
            };
            if !ok {
                return self.close_pair(peer);
            }
            if pending < SPLICE_QUEUE
                && let Some(p) = self.tcp_relay.peers.get_mut(peer)
                && std::mem::take(&mut p.peer_paused)
            {
                self.ready.push(SocketId::Peer(peer));
            }
        }
        if readable {
            self.client_to_peer(i, peer);
        }
    }

    /// Moves client bytes (plaintext, for TLS) to the peer while its queue
    /// has room.
    fn client_to_peer(&mut self, i: usize, peer: usize) {
        loop {
            let Some(p) = self.tcp_relay.peers.get_mut(peer) else {
                return;
            };
            if p.wbuf.len() >= SPLICE_QUEUE {
                p.client_paused = true; // resumed when the peer's queue drains
                return;
            }
            let Some(c) = self.conns.get_mut(i) else {
                return;
            };
            let mut rbuf = c.take_rbuf();
            let read = c.read_into(&mut rbuf);
            let flushed = c.flush(self.poll.registry(), SocketId::Conn(i).token());
            if let Some(p) = self.tcp_relay.peers.get_mut(peer) {
                p.wbuf.extend_from_slice(&rbuf);
                self.ops.bytes_to_peer += rbuf.len() as u64;
            }
            let moved = !rbuf.is_empty();
            rbuf.clear();
            if let Some(c) = self.conns.get_mut(i) {
                c.put_rbuf(rbuf, moved.then(clock::mono));
            }
            if !self.flush_peer(peer) || !flushed {
                return self.close_pair(peer);
            }
            match read {
                Ok(super::tcp::ReadState::Full) => {}
                Ok(super::tcp::ReadState::Drained) => return,
                _ => return self.close_pair(peer),
            }
        }
    }

    /// Carries out `Command::SpliceConnections`: from now on the client
    /// connection `data` carries raw bytes to and from peer `id`. Both are
    /// put on the ready list: bytes may already wait on either side.
    pub(super) fn splice(&mut self, id: ConnectionId, data: FiveTuple) {
        let Some(&idx) = self.tcp_relay.by_id.get(&id) else {
            return;
        };
        let Some(&conn) = self.conn_by_client.get(&data.client) else {
            // The client connection went away before the bind completed.
            self.drop_peer(idx);
            return self.server.handle_peer_closed(id);
        };
        if let Some(p) = self.tcp_relay.peers.get_mut(idx) {
            p.data = Some(conn);
        }
        self.tcp_relay.spliced.insert(conn, idx);
        self.ready.push(SocketId::Conn(conn));
        self.ready.push(SocketId::Peer(idx));
    }

    /// Carries out `Command::ClosePeer`.
    pub(super) fn close_peer(&mut self, id: ConnectionId) {
        if let Some(&idx) = self.tcp_relay.by_id.get(&id) {
            self.close_pair(idx);
        }
    }

    /// Closes peer `idx` and its client data connection, and tells the core.
    fn close_pair(&mut self, idx: usize) {
        let Some((id, data)) = self.drop_peer(idx) else {
            return;
        };
        if let Some(conn) = data {
            self.tcp_relay.spliced.remove(&conn);
            self.close_conn(conn);
        }
        self.server.handle_peer_closed(id);
    }

    /// A spliced client data connection closed: its peer goes too.
    pub(super) fn data_conn_closed(&mut self, conn: usize) {
        if let Some(idx) = self.tcp_relay.spliced.remove(&conn)
            && let Some((id, _)) = self.drop_peer(idx)
        {
            self.server.handle_peer_closed(id);
        }
    }

    /// Removes peer `idx` (best-effort flush of what waits for it).
    fn drop_peer(&mut self, idx: usize) -> Option<(ConnectionId, Option<usize>)> {
        let mut p = self.tcp_relay.peers.remove(idx)?;
        let _ = p.stream.write(&p.wbuf);
        let _ = self.poll.registry().deregister(&mut p.stream);
        self.tcp_relay.by_id.remove(&p.id);
        self.shared.handoff.disown(p.id);
        Some((p.id, p.data))
    }

    /// Whether `frame`, from a connection without allocation here, is a
    /// ConnectionBind for a CONNECTION-ID another worker owns; which one.
    pub(super) fn bind_elsewhere(&self, five: &FiveTuple, frame: &[u8]) -> Option<usize> {
        // The message type first: most frames are not ConnectionBind.
        if frame.get(..2) != Some(&[0x00, 0x0B]) || self.server.allocation(five).is_some() {
            return None;
        }
        let msg = Message::parse(frame).ok()?;
        let t = msg.message_type();
        if t.method != Method::CONNECTION_BIND || t.class != Class::Request {
            return None;
        }
        let v = <[u8; 4]>::try_from(msg.get(AttrType::CONNECTION_ID)?).ok()?;
        let owner = self
            .shared
            .handoff
            .owner(ConnectionId(u32::from_be_bytes(v)))?;
        (owner != self.index).then_some(owner)
    }

    /// Is the client connection of `five` spliced to a peer?
    pub(super) fn is_data_conn(&self, five: &FiveTuple) -> bool {
        self.conn_by_client
            .get(&five.client)
            .is_some_and(|i| self.tcp_relay.is_spliced(*i))
    }

    /// Moves client connection `i` (with its unread bytes) to `worker`.
    pub(super) fn hand_off(&mut self, i: usize, worker: usize) {
        let Some(mut c) = self.conns.remove(i) else {
            return;
        };
        let _ = c.deregister(self.poll.registry());
        let (client, limit_ip) = (c.five().client, c.limit_ip());
        self.conn_by_client.remove(&client);
        if !self.shared.handoff.send(worker, c) {
            self.shared.limits.release(limit_ip);
        }
    }

    /// Takes the connections other workers moved here (waker event).
    pub(super) fn take_handoffs(&mut self) {
        for mut c in self.shared.handoff.take(self.index) {
            let client = c.five().client;
            if self.conn_by_client.contains_key(&client) {
                c.close();
                self.shared.limits.release(c.limit_ip());
                continue;
            }
            let idx = self.conns.insert(c);
            let registered = match self.conns.get_mut(idx) {
                Some(c) => c.register(self.poll.registry(), SocketId::Conn(idx).token()),
                None => continue,
            };
            if registered.is_err() {
                if let Some(c) = self.conns.remove(idx) {
                    self.shared.limits.release(c.limit_ip());
                }
                continue;
            }
            self.conn_by_client.insert(client, idx);
            self.ready.push(SocketId::Conn(idx));
        }
    }
}
