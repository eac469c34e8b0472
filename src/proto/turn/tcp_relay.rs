//! TCP allocations (RFC 6062): Allocate with REQUESTED-TRANSPORT TCP,
//! Connect, ConnectionAttempt and ConnectionBind.
//!
//! The core decides and the driver carries out. A TCP allocation's relayed
//! address is a listening socket ([`Command::ListenTcpRelay`]). Each peer
//! data connection has a [`ConnectionId`] and goes through three states:
//!
//! ```text
//! Connect ─► Connecting ──ok──► AwaitingBind ──ConnectionBind──► Bound
//!              │ fail/30 s ─► 447      ▲   │ 30 s ─► ClosePeer
//! peer connects (permission) ──────────┘
//! ```
//!
//! In `Bound` the driver splices the client data connection and the peer
//! connection ([`Command::SpliceConnections`]): raw bytes both ways, which
//! never reach the core. When either side closes, the driver closes the
//! other and reports [`Server::handle_peer_closed`]; when the allocation
//! ends, the core closes all its connections ([`Command::ClosePeer`]).

use crate::proto::hash::Map;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ring::hmac;

use super::auth::ReplyKey;
use super::request::{Authed, Req, xor_addr};
use super::{Command, FiveTuple, RelayId, Server, TimerKey};
use crate::proto::stun::{AttrType, Class, ErrorCode, Message, Method, TransactionId};
use crate::proto::time::Now;

/// IANA protocol number of TCP (REQUESTED-TRANSPORT, RFC 6062 §6.2).
pub(super) const PROTO_TCP: u8 = 6;

/// How long a Connect may take. RFC 6062 §5.2: "The timeout value MUST be
/// at least 30 seconds."
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a peer data connection waits for its ConnectionBind. RFC 6062
/// §5.2 and §5.3: "If no ConnectionBind request associated with this peer
/// data connection is received after 30 seconds, the peer data connection
/// MUST be closed."
pub const BIND_TIMEOUT: Duration = Duration::from_secs(30);

/// A CONNECTION-ID (RFC 6062 §6.2.1): names one peer data connection.
/// Values are HMAC output under the shard key, so a client cannot guess
/// another client's id and bind its connection.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct ConnectionId(pub u32);

/// The driver could not open the peer connection (refused, unreachable,
/// no socket).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ConnectFailed;

/// Counters of TCP allocations, per shard.
#[derive(Clone, Default, Debug)]
pub struct TcpStats {
    /// Connect requests that reached the driver.
    pub connects: u64,
    /// Connects that failed or timed out (447).
    pub connect_failed: u64,
    /// Peer connections accepted (ConnectionAttempt sent).
    pub peer_accepted: u64,
    /// Peer connections refused: no permission or over the cap.
    pub peer_refused: u64,
    /// ConnectionBinds that spliced two connections.
    pub bound: u64,
    /// Peer connections closed unbound after `BIND_TIMEOUT`.
    pub bind_timeouts: u64,
    /// Connect or ConnectionBind refused (400/403/437/441/446/508).
    pub refused: u64,
}

#[derive(Debug)]
enum State {
    /// The driver is connecting; the Connect is answered when it reports.
    Connecting {
        five: FiveTuple,
        tid: TransactionId,
        key: ReplyKey,
    },
    /// Open, waiting for a ConnectionBind; the peer's bytes wait unread.
    AwaitingBind,
    /// Spliced to a client data connection.
    Bound,
}

#[derive(Debug)]
struct PeerConn {
    relay: RelayId,
    peer: SocketAddr,
    state: State,
    /// The timer of `Connecting` or `AwaitingBind`.
    deadline: Option<Instant>,
}

/// The peer data connections of one shard's TCP allocations.
#[derive(Debug, Default)]
pub(super) struct TcpConns {
    conns: Map<ConnectionId, PeerConn>,
    /// Every TCP allocation (also with no connection) and its connections.
    by_relay: Map<RelayId, Vec<ConnectionId>>,
    pub(super) stats: TcpStats,
}

impl TcpConns {
    /// Marks `relay` as a TCP allocation.
    pub(super) fn add_allocation(&mut self, relay: RelayId) {
        self.by_relay.entry(relay).or_default();
    }

    fn is_tcp(&self, relay: RelayId) -> bool {
        self.by_relay.contains_key(&relay)
    }

    fn count(&self, relay: RelayId) -> usize {
        self.by_relay.get(&relay).map_or(0, Vec::len)
    }

    /// RFC 6062 §5.2: a Connect to this peer is pending, or its
    /// connections are pending or active.
    fn has_peer(&self, relay: RelayId, peer: SocketAddr) -> bool {
        self.by_relay
            .get(&relay)
            .into_iter()
            .flatten()
            .any(|id| self.conns.get(id).is_some_and(|c| c.peer == peer))
    }

    fn insert(&mut self, id: ConnectionId, conn: PeerConn) {
        self.by_relay.entry(conn.relay).or_default().push(id);
        self.conns.insert(id, conn);
    }

    fn remove(&mut self, id: ConnectionId) -> Option<PeerConn> {
        let c = self.conns.remove(&id)?;
        if let Some(v) = self.by_relay.get_mut(&c.relay) {
            v.retain(|x| *x != id);
        }
        Some(c)
    }

    /// Number of live peer data connections (all states).
    pub(super) fn len(&self) -> usize {
        self.conns.len()
    }
}

/// RFC 6062 §5.1: checks an Allocate for TCP; the error code if refused.
pub(super) fn check_allocate(req: Req, msg: &Message<'_>) -> Result<(), ErrorCode> {
    // "If the request is received over UDP, the server MUST reject the
    // request with a 400 (Bad Request) error."
    if !req.from.transport.is_stream() {
        return Err(ErrorCode::BAD_REQUEST);
    }
    // "If the request contains the DONT-FRAGMENT, EVEN-PORT, or
    // RESERVATION-TOKEN attribute, the server MUST reject the request with
    // a 400 (Bad Request) error." A dual (ADDITIONAL-ADDRESS-FAMILY) TCP
    // allocation is not defined either.
    let forbidden = [
        AttrType::DONT_FRAGMENT,
        AttrType::EVEN_PORT,
        AttrType::RESERVATION_TOKEN,
        AttrType::ADDITIONAL_ADDRESS_FAMILY,
    ];
    if forbidden.iter().any(|t| msg.get(*t).is_some()) {
        return Err(ErrorCode::BAD_REQUEST);
    }
    Ok(())
}

impl Server {
    /// A fresh unpredictable CONNECTION-ID, unique in this shard: HMAC of a
    /// counter under the shard's token key (domain-separated from
    /// reservation tokens by the label).
    fn next_connection_id(&mut self) -> ConnectionId {
        loop {
            self.token_counter += 1;
            let mut msg = *b"tern tcp connection id\0\0\0\0\0\0\0\0";
            msg[22..].copy_from_slice(&self.token_counter.to_be_bytes());
            let tag = hmac::sign(&self.token_key, &msg);
            let b = tag.as_ref();
            let id = ConnectionId(u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            if !self.tcp.conns.contains_key(&id) {
                return id;
            }
        }
    }

    /// A transaction id for an indication the server originates.
    fn next_indication_tid(&mut self) -> TransactionId {
        self.token_counter += 1;
        let mut msg = *b"tern indication tid\0\0\0\0\0\0\0\0";
        msg[19..].copy_from_slice(&self.token_counter.to_be_bytes());
        let tag = hmac::sign(&self.token_key, &msg);
        let mut t = [0u8; 12];
        t.copy_from_slice(&tag.as_ref()[..12]);
        TransactionId(t)
    }

    fn tcp_reject(&mut self, now: Now, req: Req, code: ErrorCode, key: ReplyKey) {
        self.tcp.stats.refused += 1;
        self.reject(now, req, code, Some(key));
    }

    /// Connect (RFC 6062 §5.2): vets the peer and asks the driver to
    /// connect; the answer follows in [`Server::handle_peer_connected`].
    pub(super) fn connect(&mut self, now: Now, req: Req, msg: &Message<'_>, auth: Authed) {
        let key = auth.key;
        let Some((relay, families)) = self.client_allocation(&req.from) else {
            return self.tcp_reject(now, req, ErrorCode::ALLOCATION_MISMATCH, key);
        };
        // Connect on a UDP allocation has no meaning.
        if !self.tcp.is_tcp(relay) {
            return self.tcp_reject(now, req, ErrorCode::BAD_REQUEST, key);
        }
        let Some(Ok(peer)) = xor_addr(msg, AttrType::XOR_PEER_ADDRESS) else {
            return self.tcp_reject(now, req, ErrorCode::BAD_REQUEST, key);
        };
        if self.tcp.has_peer(relay, peer) {
            return self.tcp_reject(now, req, ErrorCode::CONNECTION_ALREADY_EXISTS, key);
        }
        // "If the new connection is forbidden by local policy, the server
        // MUST reject the request with a 403 (Forbidden) error."
        if let Err(code) = self.vet_peer(req, families, peer, true) {
            return self.tcp_reject(now, req, code, key);
        }
        // Room for the connection, and for the permission it installs.
        let max_conns = self.config.limits.max_tcp_connections_per_allocation as usize;
        let max_perm = self.config.limits.max_permissions_per_allocation as usize;
        let perm_fits = self
            .slab
            .get(relay)
            .is_some_and(|a| a.permission_fits(peer.ip(), now.mono, max_perm, 0));
        if self.tcp.count(relay) >= max_conns || !perm_fits {
            return self.tcp_reject(now, req, ErrorCode::INSUFFICIENT_CAPACITY, key);
        }
        let id = self.next_connection_id();
        let deadline = now.mono + CONNECT_TIMEOUT;
        let state = State::Connecting {
            five: req.from,
            tid: req.tid,
            key,
        };
        self.tcp.insert(
            id,
            PeerConn {
                relay,
                peer,
                state,
                deadline: Some(deadline),
            },
        );
        self.timers.insert((deadline, TimerKey::TcpConnection(id)));
        self.tcp.stats.connects += 1;
        // This server's public relay IP is connected to on the local one.
        let to = self.config.relay_nat.to_local(peer);
        self.commands.push_back(Command::ConnectPeer {
            relay,
            id,
            peer: to,
        });
    }

    /// The driver's answer to [`Command::ConnectPeer`]: success carries the
    /// CONNECTION-ID and installs a permission for the peer (RFC 6062
    /// §5.2); failure is 447. A late answer (the Connect timed out or the
    /// allocation ended) closes the connection.
    pub fn handle_peer_connected(
        &mut self,
        now: Now,
        id: ConnectionId,
        result: Result<(), ConnectFailed>,
    ) {
        let connecting = self
            .tcp
            .conns
            .get(&id)
            .is_some_and(|c| matches!(c.state, State::Connecting { .. }));
        if !connecting {
            if result.is_ok() {
                self.commands.push_back(Command::ClosePeer { id });
            }
            return;
        }
        let ok = result.is_ok();
        let (five, tid, key, relay, peer) = {
            // invariant: checked just above.
            let Some(c) = self.tcp.conns.get_mut(&id) else {
                return;
            };
            if let Some(d) = c.deadline.take() {
                self.timers.remove(&(d, TimerKey::TcpConnection(id)));
            }
            let State::Connecting { five, tid, key } =
                std::mem::replace(&mut c.state, State::AwaitingBind)
            else {
                return;
            };
            (five, tid, key, c.relay, c.peer)
        };
        let req = Req {
            from: five,
            method: Method::CONNECT,
            tid,
        };
        if !ok {
            self.tcp.remove(id);
            self.tcp.stats.connect_failed += 1;
            return self.reject(
                now,
                req,
                ErrorCode::CONNECTION_TIMEOUT_OR_FAILURE,
                Some(key),
            );
        }
        let max_perm = self.config.limits.max_permissions_per_allocation as usize;
        if let Some(a) = self.slab.get_mut(relay) {
            a.install_permission(peer.ip(), now.mono, max_perm);
        }
        self.await_bind(now, id);
        self.reply(Some(now), req, Class::Success, Some(key), |w| {
            w.push_u32(AttrType::CONNECTION_ID, id.0);
        });
    }

    /// Starts the ConnectionBind timer of connection `id`.
    fn await_bind(&mut self, now: Now, id: ConnectionId) {
        let deadline = now.mono + BIND_TIMEOUT;
        if let Some(c) = self.tcp.conns.get_mut(&id) {
            c.deadline = Some(deadline);
            self.timers.insert((deadline, TimerKey::TcpConnection(id)));
        }
    }

    /// A peer connected to the relayed address of `relay` (RFC 6062 §5.3).
    /// `Some(id)`: keep the connection under `id` (unread until bound); a
    /// ConnectionAttempt went to the client. `None`: close it (no
    /// permission for the peer's IP, not a TCP allocation, or the
    /// per-allocation cap is reached).
    pub fn handle_peer_incoming(
        &mut self,
        now: Now,
        relay: RelayId,
        peer: SocketAddr,
    ) -> Option<ConnectionId> {
        // Another allocation's local relay address, as clients know it.
        let peer = self.config.relay_nat.to_public(peer);
        let max_conns = self.config.limits.max_tcp_connections_per_allocation as usize;
        let permitted = self
            .slab
            .get(relay)
            .is_some_and(|a| a.has_permission(peer.ip(), now.mono));
        if !self.tcp.is_tcp(relay) || !permitted || self.tcp.count(relay) >= max_conns {
            self.tcp.stats.peer_refused += 1;
            return None;
        }
        let five = self.slab.get(relay)?.five;
        let id = self.next_connection_id();
        self.tcp.insert(
            id,
            PeerConn {
                relay,
                peer,
                state: State::AwaitingBind,
                deadline: None,
            },
        );
        self.await_bind(now, id);
        self.tcp.stats.peer_accepted += 1;
        let req = Req {
            from: five,
            method: Method::CONNECTION_ATTEMPT,
            tid: self.next_indication_tid(),
        };
        self.reply(None, req, Class::Indication, None, |w| {
            w.push_xor_addr(AttrType::XOR_PEER_ADDRESS, peer);
            w.push_u32(AttrType::CONNECTION_ID, id.0);
        });
        Some(id)
    }

    /// ConnectionBind (RFC 6062 §5.4) on a new client connection: splices
    /// it to the peer connection `CONNECTION-ID` names.
    pub(super) fn connection_bind(&mut self, now: Now, req: Req, msg: &Message<'_>, auth: Authed) {
        let key = auth.key;
        // Only a fresh stream connection can become a client data
        // connection: not UDP, not a control connection.
        if !req.from.transport.is_stream() || self.by_client.contains_key(&req.from) {
            return self.tcp_reject(now, req, ErrorCode::BAD_REQUEST, key);
        }
        // "If the request does not contain the CONNECTION-ID attribute, or
        // if this attribute does not refer to an existing pending
        // connection, the server MUST return a 400 (Bad Request) error."
        let id = msg
            .get(AttrType::CONNECTION_ID)
            .and_then(|v| <[u8; 4]>::try_from(v).ok())
            .map(|b| ConnectionId(u32::from_be_bytes(b)));
        let pending = id.and_then(|id| {
            let c = self.tcp.conns.get(&id)?;
            matches!(c.state, State::AwaitingBind).then_some((id, c.relay))
        });
        let Some((id, relay)) = pending else {
            return self.tcp_reject(now, req, ErrorCode::BAD_REQUEST, key);
        };
        // "the server MUST authenticate the request using the same
        // credentials as used in the original allocation".
        if self
            .slab
            .get(relay)
            .is_none_or(|a| a.username != auth.username)
        {
            return self.tcp_reject(now, req, ErrorCode::WRONG_CREDENTIALS, key);
        }
        if let Some(c) = self.tcp.conns.get_mut(&id) {
            c.state = State::Bound;
            if let Some(d) = c.deadline.take() {
                self.timers.remove(&(d, TimerKey::TcpConnection(id)));
            }
        }
        self.tcp.stats.bound += 1;
        // Not cached: after this response the connection carries raw bytes.
        self.reply(None, req, Class::Success, Some(key), |_| {});
        self.commands
            .push_back(Command::SpliceConnections { id, data: req.from });
    }

    /// The driver closed peer connection `id` (and its client data
    /// connection, if spliced): either side hung up.
    pub fn handle_peer_closed(&mut self, id: ConnectionId) {
        if let Some(c) = self.tcp.remove(id)
            && let Some(d) = c.deadline
        {
            self.timers.remove(&(d, TimerKey::TcpConnection(id)));
        }
    }

    /// The Connect or ConnectionBind timer of `id` fired.
    pub(super) fn tcp_timeout(&mut self, now: Now, id: ConnectionId) {
        let due = self
            .tcp
            .conns
            .get(&id)
            .is_some_and(|c| c.deadline.is_some_and(|d| d <= now.mono));
        if !due {
            return;
        }
        let Some(c) = self.tcp.remove(id) else {
            return;
        };
        self.commands.push_back(Command::ClosePeer { id });
        match c.state {
            State::Connecting { five, tid, key } => {
                self.tcp.stats.connect_failed += 1;
                let req = Req {
                    from: five,
                    method: Method::CONNECT,
                    tid,
                };
                self.reject(
                    now,
                    req,
                    ErrorCode::CONNECTION_TIMEOUT_OR_FAILURE,
                    Some(key),
                );
            }
            State::AwaitingBind => self.tcp.stats.bind_timeouts += 1,
            State::Bound => {}
        }
    }

    /// An allocation ended: close every connection it has (RFC 6062 §5:
    /// the connections go with the allocation).
    pub(super) fn close_tcp_connections(&mut self, relay: RelayId) {
        let Some(ids) = self.tcp.by_relay.remove(&relay) else {
            return;
        };
        for id in ids {
            if let Some(c) = self.tcp.conns.remove(&id) {
                if let Some(d) = c.deadline {
                    self.timers.remove(&(d, TimerKey::TcpConnection(id)));
                }
                self.commands.push_back(Command::ClosePeer { id });
            }
        }
    }
}
