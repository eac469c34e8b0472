//! The TURN server state machine (RFC 8656) with STUN Binding (RFC 8489).
//!
//! One [`Server`] per shard (worker thread). It owns the allocations whose
//! client 5-tuples the shard receives; it never blocks, reads a clock or
//! touches a socket.
//!
//! # Run loop (the driver's contract)
//! 1. Feed one input: [`Server::handle_client`], [`Server::handle_peer`],
//!    [`Server::handle_relay_bound`] or [`Server::handle_timeout`], each with
//!    the same [`Now`].
//! 2. Carry out the returned action (relay sends borrow the caller's buffer).
//! 3. Drain [`Server::poll_transmit`] (replies), [`Server::poll_command`]
//!    (bind/release relay sockets) and [`Server::poll_event`] (logs, metrics)
//!    until each returns `None`.
//! 4. Sleep until [`Server::poll_timeout`] or the next input.
//!
//! # Nothing shared, nothing drawn from the OS
//! A `Server` holds no lock and no handle shared with other shards. What
//! spans shards is the driver's: allocation quotas are taken by the driver
//! when it carries out [`Command::BindRelay`] (which names the user) and
//! given back when it releases the relay, so a refusal comes back as a
//! [`BindError`]; reserved ports (EVEN-PORT R bit) are held by the driver
//! under their [`ReservationToken`], so any shard can claim one. Tokens are
//! HMAC-SHA256 of a per-server counter under a key the driver hands to
//! [`Server::new`]: unpredictable to clients, no OS randomness in here.

mod allocate;
mod allocation;
mod alternate;
mod auth;
mod hairpin;
mod inspect;
mod nat_discovery;
mod permission;
mod refresh;
mod relay;
mod replay;
mod request;
mod tcp_relay;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ring::hmac;

pub use allocation::{Allocation, FiveTuple, Traffic, Transport};
pub use alternate::Alternates;
pub use hairpin::RelayNat;
pub use inspect::{AllocationView, Gauges};
pub use nat_discovery::{CHANGE_IP, CHANGE_PORT, CHANGE_REQUEST, MAX_PADDING};
pub use relay::{ClientAction, DropReason, HEADROOM, PeerAction, TAILROOM};
pub use tcp_relay::{BIND_TIMEOUT, CONNECT_TIMEOUT, ConnectFailed, ConnectionId, TcpStats};

use crate::proto::config::Config;
use crate::proto::hash::{self, Map};
use crate::proto::limiter::SourceLimiter;
use crate::proto::stun::{ErrorCode, TransactionId};
use crate::proto::time::Now;
use crate::secret::Secret;
use allocation::Slab;
use replay::ReplayCache;

/// Permission lifetime, RFC 8656 §9: "300 seconds (5 minutes)".
pub const PERMISSION_LIFETIME: Duration = Duration::from_secs(300);
/// Channel binding lifetime, RFC 8656 §12: "10 minutes".
pub const CHANNEL_LIFETIME: Duration = Duration::from_secs(600);
/// After a channel expires its number and peer stay reserved this long
/// (RFC 8656 §12: "the channel number ... MUST NOT be bound to a different
/// peer ... until 5 minutes after the binding expires").
pub const CHANNEL_COOLDOWN: Duration = Duration::from_secs(300);
/// Reservation tokens (EVEN-PORT R bit) live 30 s, RFC 8656 §7.2.
pub const RESERVATION_LIFETIME: Duration = Duration::from_secs(30);
/// How long a response is kept for retransmissions (RFC 8489 §6.3.1: Ti = 39.5 s).
pub const REPLAY_WINDOW: Duration = Duration::from_secs(40);

/// Names a relay socket: the allocation's slot and a generation, so a stale
/// id from a freed slot never matches a new allocation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct RelayId {
    pub slot: u32,
    pub generation: u32,
}

/// A RESERVATION-TOKEN (RFC 8656 §14.9): names a relay port the driver
/// holds for a later Allocate (EVEN-PORT with the R bit, §7.2).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct ReservationToken(pub [u8; 8]);

/// What relay port the driver should bind.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PortRequest {
    /// Any free port in the range.
    Any,
    /// An even port; with `reserve`, also hold port+1 (same address and
    /// family) under that token for a later Allocate that carries it.
    Even { reserve: Option<ReservationToken> },
    /// The socket held under this token (any shard may have reserved it).
    /// Its address, family included, is the one reserved: the request's
    /// `ipv6` does not apply.
    Reserved(ReservationToken),
}

/// Instructions for the driver.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Command {
    /// Take one allocation of `username`'s quota, bind a UDP relay socket,
    /// and answer with [`Server::handle_relay_bound`]. `ipv6` selects the
    /// family; with `additional_ipv6` (a dual allocation, RFC 8656
    /// ADDITIONAL-ADDRESS-FAMILY) the driver also binds an IPv6 socket, and
    /// reports it in [`RelayBound::additional`] if it can. The quota is the
    /// driver's to give back when it releases the relay.
    BindRelay {
        relay: RelayId,
        username: String,
        ipv6: bool,
        additional_ipv6: bool,
        port: PortRequest,
    },
    /// Close the relay socket(s) of an allocation that ended, and give its
    /// quota back.
    ReleaseRelay { relay: RelayId },
    /// Close one family's socket of a dual allocation (a Refresh deleted or
    /// let expire that family, RFC 8656 §8); the other keeps relaying.
    ReleaseRelayFamily { relay: RelayId, ipv6: bool },
    /// Close the port held under a token if nobody claimed it (expiry).
    ReleaseReservation { token: ReservationToken },
    /// Like [`Command::BindRelay`] for a TCP allocation (RFC 6062 §5.1):
    /// take quota, listen on a TCP socket in the relay range, answer with
    /// [`Server::handle_relay_bound`]. Peers that connect to it are
    /// reported with [`Server::handle_peer_incoming`].
    ListenTcpRelay {
        relay: RelayId,
        username: String,
        ipv6: bool,
    },
    /// Open a TCP connection from the relayed address of `relay` to
    /// `peer` (nonblocking), filed under `id`; answer with
    /// [`Server::handle_peer_connected`]. Do not read from it until spliced.
    ConnectPeer {
        relay: RelayId,
        id: ConnectionId,
        peer: SocketAddr,
    },
    /// Close peer connection `id` (connecting, waiting or spliced) and the
    /// client data connection spliced to it.
    ClosePeer { id: ConnectionId },
    /// ConnectionBind succeeded: after the queued success response, relay
    /// raw bytes both ways between the client connection `data` and peer
    /// connection `id`. Report the end with [`Server::handle_peer_closed`].
    SpliceConnections { id: ConnectionId, data: FiveTuple },
}

/// What the driver reports after [`Command::BindRelay`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RelayBound {
    /// The relayed transport address given to the client (advertised address).
    pub addr: SocketAddr,
    /// The IPv6 relayed address of a dual allocation, when one was bound.
    pub additional: Option<SocketAddr>,
    /// The token under which the next port is held, when
    /// [`PortRequest::Even`] asked for one and the driver holds it.
    pub reservation: Option<ReservationToken>,
}

/// Why the driver could not carry out [`Command::BindRelay`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BindError {
    /// The user has `max_allocations_per_user` allocations already.
    UserQuota,
    /// The server has `max_allocations` allocations already.
    TotalQuota,
    /// The RESERVATION-TOKEN names no held port (unknown, claimed or expired).
    UnknownToken,
    /// No socket could be bound (port range full, family not configured, I/O).
    NoSocket,
}

impl BindError {
    /// The STUN error code answered: 486 Allocation Quota Reached for the
    /// user's quota, 508 Insufficient Capacity otherwise (RFC 8656 §7.2).
    pub fn code(self) -> ErrorCode {
        match self {
            Self::UserQuota => ErrorCode::ALLOCATION_QUOTA_REACHED,
            Self::TotalQuota | Self::UnknownToken | Self::NoSocket => {
                ErrorCode::INSUFFICIENT_CAPACITY
            }
        }
    }
}

/// A reply to send to a client.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Transmit {
    pub to: FiveTuple,
    pub data: Vec<u8>,
}

/// Things worth a log line or a metric.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Event {
    AllocationCreated {
        client: FiveTuple,
        relay: SocketAddr,
        username: String,
        lifetime: Duration,
    },
    AllocationEnded {
        client: FiveTuple,
        relay: SocketAddr,
        username: String,
        reason: EndReason,
        /// When it was created (the `now.mono` of its Allocate): its age
        /// is the driver's `now - created` (handle_client_closed has no `now`).
        created: Instant,
    },
    PeerDenied {
        client: FiveTuple,
        peer: std::net::IpAddr,
        reason: String,
    },
    AuthFailed {
        client: FiveTuple,
        username: String,
        reason: &'static str,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EndReason {
    Expired,
    Deleted,
    ClientGone,
    /// Ended by the operator ([`Server::kick`]).
    Kicked,
}

/// Counters per shard, read by the driver for metrics.
#[derive(Clone, Default, Debug)]
pub struct Stats {
    pub requests: u64,
    pub malformed: u64,
    pub dropped: u64,
    pub auth_failures: u64,
    pub peer_denied: u64,
    pub allocations_created: u64,
    pub allocations_ended: u64,
    pub relayed_to_peer: u64,
    pub relayed_to_client: u64,
    /// Error responses to unauthenticated requests not sent (per-IP limit).
    pub rate_limited: u64,
    /// Datagrams dropped by the per-allocation bandwidth limit.
    pub over_bandwidth: u64,
    /// ChannelData dropped: channel number outside the configured range.
    pub channel_out_of_range: u64,
    /// Requests answered 400 for a malformed or bid-down
    /// PASSWORD-ALGORITHM(S) or USERHASH (RFC 8489 §9.2.4).
    pub bad_auth_attrs: u64,
    /// Allocates answered 300 Try Alternate.
    pub redirected: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum TimerKey {
    Allocation(RelayId),
    /// One family of a dual allocation (`true` = IPv6).
    Family(RelayId, bool),
    Reservation(ReservationToken),
    /// Connect or ConnectionBind deadline of a TCP peer connection.
    TcpConnection(ConnectionId),
}

/// An Allocate waiting for its relay socket.
#[derive(Debug)]
struct PendingAllocate {
    five: FiveTuple,
    tid: TransactionId,
    username: String,
    key: auth::ReplyKey,
    lifetime: Duration,
    /// A dual allocation was asked (ADDITIONAL-ADDRESS-FAMILY).
    dual: bool,
    /// A TCP allocation (RFC 6062).
    tcp: bool,
}

/// The TURN state machine for one shard.
#[derive(Debug)]
pub struct Server {
    config: Arc<Config>,
    /// Keys the RESERVATION-TOKENs this shard hands out.
    token_key: hmac::Key,
    /// Keys the per-source limiter's bucket choice.
    limiter_key: Secret<[u8; 32]>,
    slab: Slab,
    by_client: Map<FiveTuple, RelayId>,
    pending: Map<RelayId, PendingAllocate>,
    timers: BTreeSet<(Instant, TimerKey)>,
    replay: ReplayCache,
    transmits: VecDeque<Transmit>,
    commands: VecDeque<Command>,
    events: VecDeque<Event>,
    token_counter: u64,
    stats: Stats,
    unauth_limiter: SourceLimiter,
    /// Peer data connections of TCP allocations (RFC 6062).
    tcp: tcp_relay::TcpConns,
    alternate: alternate::AlternateState,
}

impl Server {
    /// A shard. `key` (32 random bytes from the driver, distinct per
    /// shard) is all the randomness the core gets: it keys the
    /// RESERVATION-TOKENs (unpredictable to clients) and the per-source
    /// limiter's buckets.
    pub fn new(config: Arc<Config>, key: [u8; 32]) -> Self {
        let master = hmac::Key::new(hmac::HMAC_SHA256, &key);
        let derive =
            |label: &[u8]| hmac::Key::new(hmac::HMAC_SHA256, hmac::sign(&master, label).as_ref());
        let mut limiter_key = [0u8; 32];
        limiter_key.copy_from_slice(hmac::sign(&master, b"tern source limiter").as_ref());
        let rate = u64::from(config.limits.unauth_errors_per_sec_per_ip);
        let seed = hmac::sign(&master, b"tern hash seed");
        let seed = seed
            .as_ref()
            .iter()
            .take(8)
            .fold(0u64, |s, b| s << 8 | u64::from(*b));
        Self {
            unauth_limiter: SourceLimiter::new(rate, 2 * rate, limiter_key),
            config,
            token_key: derive(b"tern reservation token"),
            limiter_key: Secret::new(limiter_key),
            slab: Slab::default(),
            by_client: hash::keyed(seed),
            pending: hash::keyed(seed ^ 1),
            timers: BTreeSet::new(),
            replay: ReplayCache::new(16_384, seed ^ 2),
            transmits: VecDeque::new(),
            commands: VecDeque::new(),
            events: VecDeque::new(),
            token_counter: 0,
            stats: Stats::default(),
            tcp: tcp_relay::TcpConns::default(),
            alternate: alternate::AlternateState::default(),
        }
    }

    /// Replaces the configuration (hot reload): credentials, limits and
    /// policy apply to new requests; live allocations keep relaying.
    pub fn apply_config(&mut self, config: Arc<Config>) {
        let rate = u64::from(config.limits.unauth_errors_per_sec_per_ip);
        self.unauth_limiter = SourceLimiter::new(rate, 2 * rate, *self.limiter_key.expose());
        self.config = config;
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Counters of TCP allocations (RFC 6062).
    pub fn tcp_stats(&self) -> &TcpStats {
        &self.tcp.stats
    }

    /// Live TCP peer data connections (connecting, waiting or spliced).
    pub fn tcp_connection_count(&self) -> usize {
        self.tcp.len()
    }

    /// Number of live allocations in this shard.
    pub fn allocation_count(&self) -> usize {
        self.by_client.len()
    }

    /// The allocation of a client 5-tuple.
    pub fn allocation(&self, five: &FiveTuple) -> Option<&Allocation> {
        self.by_client.get(five).and_then(|id| self.slab.get(*id))
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest instant at which [`Server::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timer = self.timers.first().map(|(t, _)| *t);
        let replay = self.replay.next_expiry();
        match (timer, replay) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Expires allocations, reservations and cached responses due at `now`.
    pub fn handle_timeout(&mut self, now: Now) {
        let unix = now.unix_secs;
        let now = now.mono;
        self.replay.expire(now);
        while let Some(&(at, key)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            match key {
                TimerKey::Allocation(id) => {
                    if self.slab.get(id).is_some_and(|a| a.expires_at <= now) {
                        self.remove_allocation(id, EndReason::Expired);
                    }
                }
                TimerKey::Family(id, ipv6) => self.family_timeout(id, ipv6, now),
                TimerKey::Reservation(token) => {
                    self.commands
                        .push_back(Command::ReleaseReservation { token });
                }
                TimerKey::TcpConnection(conn) => {
                    let now = Now {
                        mono: now,
                        unix_secs: unix,
                    };
                    self.tcp_timeout(now, conn);
                }
            }
        }
    }

    /// The client's transport connection closed (TCP/TLS): its allocation ends at once.
    pub fn handle_client_closed(&mut self, five: &FiveTuple) {
        if let Some(id) = self.by_client.get(five).copied() {
            self.remove_allocation(id, EndReason::ClientGone);
        }
    }

    fn remove_allocation(&mut self, id: RelayId, reason: EndReason) {
        let Some(alloc) = self.slab.remove(id) else {
            return;
        };
        self.by_client.remove(&alloc.five);
        self.timers
            .remove(&(alloc.expires_at, TimerKey::Allocation(id)));
        for (i, at) in alloc.family_expires.into_iter().flatten().enumerate() {
            self.timers.remove(&(at, TimerKey::Family(id, i == 1)));
        }
        self.close_tcp_connections(id);
        self.commands.push_back(Command::ReleaseRelay { relay: id });
        self.stats.allocations_ended += 1;
        self.events.push_back(Event::AllocationEnded {
            client: alloc.five,
            relay: alloc.relay_addr,
            username: alloc.username,
            reason,
            created: alloc.created_at,
        });
    }

    fn set_allocation_expiry(&mut self, id: RelayId, expires_at: Instant) {
        if let Some(a) = self.slab.get_mut(id) {
            let old = std::mem::replace(&mut a.expires_at, expires_at);
            self.timers.remove(&(old, TimerKey::Allocation(id)));
            self.timers.insert((expires_at, TimerKey::Allocation(id)));
        }
    }
}
