//! One worker (shard): a thread with its own `mio` poll, its own listeners
//! (SO_REUSEPORT), its own `proto::turn::Server` and the relay sockets of the
//! allocations it owns. Nothing is shared with other workers on the relay
//! path: no lock, no channel, no allocation per packet.
//!
//! This file is the loop and the drain contract; each kind of socket has
//! its own room, as further `impl Worker` blocks:
//! - `datagrams.rs`: UDP listeners and relay sockets read in `recvmmsg`
//!   batches, relayed datagrams sent in GSO batches;
//! - `relays.rs`: binding and releasing relay sockets, quotas, reservations;
//! - `stream.rs`: TCP/TLS accept, PROXY phase, framing, idle timeouts;
//! - `tcp_relay.rs`: TCP allocations (RFC 6062): relay listeners, peer
//!   connections, the splice of client data and peer connections;
//!   `handoff.rs` moves a ConnectionBind connection to the worker that owns
//!   its CONNECTION-ID;
//! - `events.rs`: the log line of each core event.
//!
//! # The loop
//! Wait for readiness (or the core's next deadline), handle every ready
//! socket (each input is followed by [`Worker::drain`]), then give the core
//! the time (`handle_timeout`) and drain again. `drain` carries out
//! commands, sends replies and logs events until the core has nothing more:
//! after it returns, the core's queues are empty.

use std::collections::HashMap;
use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Waker};

use super::clock;
use super::coalesce::Coalescer;
use super::events::log_event;
use super::handoff::Handoff;
use super::shared::{QuotaLedger, Reservations};
use super::slots::Slots;
use super::socket_id::SocketId;
use super::tcp::{Conn, ConnLimits, ListenerKind};
use super::tcp_relay::TcpRelays;
use super::udp::{RecvBufs, SendBatch, Sock};
use crate::admin::turn_events;
use crate::proto::turn::{Command, HEADROOM, RelayId, Server, TAILROOM};
use crate::settings::Settings;

/// Largest UDP payload plus the headroom and tailroom the core writes into.
const BUF_LEN: usize = HEADROOM + 65_535 + TAILROOM;

/// How often idle TCP connections are looked for and gauges published.
/// Also the longest a worker sleeps, so an idle worker still beats for
/// `/livez` (`ops::MAX_STALL`).
const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// What all workers share; each piece is touched on setup or once per
/// allocation or connection, never per packet.
#[derive(Clone, Debug)]
pub(crate) struct Shared {
    pub(crate) settings: Arc<Settings>,
    pub(crate) shutdown: Arc<AtomicBool>,
    /// TCP/TLS connection caps (accept and close).
    pub(crate) limits: Arc<ConnLimits>,
    /// Allocation quotas (bind and release).
    pub(crate) quota: Arc<QuotaLedger>,
    /// Ports held for RESERVATION-TOKENs; any worker may claim one.
    pub(crate) reservations: Arc<Reservations>,
    /// CONNECTION-ID owners and the inboxes ConnectionBind connections
    /// move through (RFC 6062; see `tcp_relay.rs`).
    pub(crate) handoff: Arc<Handoff>,
}

/// Everything one worker is built from.
pub(crate) struct WorkerParts {
    pub(crate) poll: Poll,
    pub(crate) server: Server,
    /// UDP listeners and their bound addresses.
    pub(crate) udp: Vec<(std::net::UdpSocket, SocketAddr)>,
    /// TCP/TLS listeners, their addresses and what they do with a connection.
    pub(crate) streams: Vec<(std::net::TcpListener, SocketAddr, ListenerKind)>,
    pub(crate) shared: Shared,
    /// Seeds the relay port probe order.
    pub(crate) seed: u64,
    /// This worker's position (its inbox in `Shared::handoff`).
    pub(crate) index: usize,
    /// Metrics block, heartbeat and mailbox (`ops.rs`).
    pub(crate) ops: super::ops::WorkerOps,
}

/// The relay socket(s) of one allocation, by family (IPv4, IPv6), and the
/// quota it holds until released.
pub(super) struct RelaySock {
    pub(super) id: RelayId,
    pub(super) socks: [Option<Sock>; 2],
    /// The local address each socket is bound to (what a peer sees).
    pub(super) local: [Option<SocketAddr>; 2],
    pub(super) _quota: super::shared::QuotaHold,
}

pub(crate) struct Worker {
    pub(super) poll: Poll,
    pub(super) server: Server,
    pub(super) shared: Shared,
    pub(super) udp: Vec<(Sock, SocketAddr)>,
    pub(super) stream_listeners: Vec<(TcpListener, SocketAddr, ListenerKind)>,
    /// Relay sockets under the core's `RelayId::slot`.
    pub(super) relays: Slots<RelaySock>,
    /// This worker's relay slots by their sockets' local addresses: a
    /// datagram relayed to one of them is handed over inside the worker (`relay_inside`).
    pub(super) relay_addrs: crate::proto::hash::Map<SocketAddr, u32>,
    pub(super) conns: Slots<Conn>,
    pub(super) conn_by_client: HashMap<SocketAddr, usize>,
    /// Scratch for one peer datagram with headroom for the header the core writes.
    pub(super) scratch: Box<[u8]>,
    /// recvmmsg buffers (taken out while a batch is processed).
    pub(super) rbufs: Option<Box<RecvBufs>>,
    /// Datagrams waiting to leave as one GSO send.
    pub(super) batch: SendBatch,
    pub(super) max_segments: usize,
    /// Sockets that were still readable after their turn.
    pub(super) ready: Vec<SocketId>,
    /// Datagrams handled since the last poll (for coalescing).
    pub(super) handled: usize,
    /// Whether to wait before the next poll (see `coalesce.rs`).
    pub(super) coalescer: Coalescer,
    pub(super) seed: u64,
    /// This worker's position among the workers.
    pub(super) index: usize,
    /// TCP allocations: relay listeners, peer connections, splices.
    pub(super) tcp_relay: TcpRelays,
    pub(super) ops: super::ops::WorkerOps,
    next_housekeeping: Instant,
}

impl Worker {
    pub(crate) fn new(parts: WorkerParts) -> io::Result<Self> {
        let WorkerParts {
            poll,
            server,
            udp,
            streams,
            shared,
            seed,
            index,
            ops,
        } = parts;
        let mut udp_socks = Vec::new();
        for (i, (s, addr)) in udp.into_iter().enumerate() {
            let mut s = Sock::new(s)?;
            let token = SocketId::Udp(i).token();
            poll.registry()
                .register(&mut s.sock, token, Interest::READABLE)?;
            udp_socks.push((s, addr));
        }
        let max_segments = udp_socks
            .first()
            .map_or(1, |(s, _)| s.max_gso_segments())
            .clamp(1, 64);
        let mut listeners = Vec::new();
        for (i, (s, addr, kind)) in streams.into_iter().enumerate() {
            let mut s = TcpListener::from_std(s);
            let token = SocketId::StreamListener(i).token();
            poll.registry()
                .register(&mut s, token, Interest::READABLE)?;
            listeners.push((s, addr, kind));
        }
        let coalescer = Coalescer::new(shared.settings.coalesce);
        Ok(Self {
            poll,
            server,
            shared,
            udp: udp_socks,
            stream_listeners: listeners,
            relays: Slots::default(),
            relay_addrs: crate::proto::hash::Map::default(),
            conns: Slots::default(),
            conn_by_client: HashMap::new(),
            scratch: vec![0u8; BUF_LEN].into_boxed_slice(),
            rbufs: Some(Box::new(RecvBufs::new())),
            batch: SendBatch::new(),
            max_segments,
            ready: Vec::new(),
            handled: 0,
            coalescer,
            seed,
            index,
            tcp_relay: TcpRelays::default(),
            ops,
            next_housekeeping: clock::mono() + HOUSEKEEPING,
        })
    }

    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let coalesce = self.shared.settings.coalesce;
        if !coalesce.is_zero() {
            // Sleep as long as asked, not the default 50 µs of slack more.
            // SAFETY: prctl with PR_SET_TIMERSLACK takes one integer argument.
            unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1_000 as libc::c_ulong) };
        }
        // Alive from the start, not only after the first wakeup.
        self.publish(clock::mono());
        while !self.shared.shutdown.load(Ordering::Relaxed) {
            let deadline = self
                .server
                .poll_timeout()
                .map_or(self.next_housekeeping, |t| t.min(self.next_housekeeping));
            let timeout = if self.ready.is_empty() {
                deadline.saturating_duration_since(clock::mono())
            } else {
                Duration::ZERO
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                tracing::error!(error = %e, "poll failed; worker stops");
                return;
            }
            for id in std::mem::take(&mut self.ready) {
                self.readable(id, true, false);
            }
            for ev in &events {
                if let Some(id) = SocketId::from_token(ev.token()) {
                    self.readable(
                        id,
                        ev.is_readable() || ev.is_read_closed(),
                        ev.is_writable(),
                    );
                }
            }
            let now = clock::now();
            self.server.handle_timeout(now);
            if now.mono >= self.next_housekeeping {
                self.next_housekeeping = now.mono + HOUSEKEEPING;
                self.close_idle(now.mono);
                self.publish_gauges();
                // The soft limit of `[cluster]` counts the whole node: the
                // driver's quota ledger holds every worker's allocations.
                self.server.set_load(self.shared.quota.total());
            }
            self.drain();
            self.publish(now.mono);
            // Adaptive coalescing: wait only when traffic is heavy enough
            // to fill a batch within `server.coalesce_us` (see coalesce.rs).
            let handled = std::mem::take(&mut self.handled);
            let wait = self.coalescer.after_wakeup(now.mono, handled);
            if !wait.is_zero() && self.ready.is_empty() {
                clock::sleep(wait);
            }
        }
        let open: Vec<usize> = self.conns.keys().collect();
        for i in open {
            self.close_conn(i);
        }
    }

    /// Dispatches readiness of one socket to its room.
    fn readable(&mut self, id: SocketId, readable: bool, writable: bool) {
        match id {
            SocketId::Waker => {
                self.take_handoffs();
                self.mailbox();
            }
            SocketId::Udp(i) => self.udp_readable(i),
            SocketId::Relay { slot, ipv6 } => self.relay_readable(slot, ipv6),
            SocketId::StreamListener(i) => {
                self.coalescer.urgent();
                self.accept(i);
            }
            SocketId::Conn(i) => {
                self.coalescer.urgent();
                self.conn_event(i, readable, writable);
            }
            SocketId::TcpRelay { slot } => {
                self.coalescer.urgent();
                self.tcp_relay_accept(slot);
            }
            SocketId::Peer(i) => {
                self.coalescer.urgent();
                self.peer_event(i, readable, writable);
            }
        }
    }

    /// Carries out everything the core queued (the drain contract).
    pub(super) fn drain(&mut self) {
        loop {
            let mut progress = false;
            while let Some(cmd) = self.server.poll_command() {
                progress = true;
                self.command(cmd);
            }
            while let Some(t) = self.server.poll_transmit() {
                progress = true;
                turn_events::record_response(&self.ops.metrics, &t.data);
                self.send_to_client(&t.to, &t.data);
            }
            while let Some(ev) = self.server.poll_event() {
                progress = true;
                log_event(&ev);
                self.record_event(&ev);
            }
            if !progress {
                break;
            }
        }
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::BindRelay {
                relay,
                username,
                ipv6,
                additional_ipv6,
                port,
            } => {
                let result = self.bind_relay(relay, &username, ipv6, additional_ipv6, port);
                self.count_bind_refusal(&result);
                self.server.handle_relay_bound(clock::now(), relay, result);
            }
            Command::ReleaseRelay { relay } => self.release_relay(relay),
            Command::ReleaseReservation { token } => self.shared.reservations.release(token),
            Command::ReleaseRelayFamily { relay, ipv6 } => self.release_relay_family(relay, ipv6),
            Command::ListenTcpRelay {
                relay,
                username,
                ipv6,
            } => {
                let result = self.listen_tcp_relay(relay, &username, ipv6);
                self.server.handle_relay_bound(clock::now(), relay, result);
            }
            Command::ConnectPeer { relay, id, peer } => self.connect_peer(relay, id, peer),
            Command::ClosePeer { id } => self.close_peer(id),
            Command::SpliceConnections { id, data } => self.splice(id, data),
        }
    }
}

/// A waker for a worker's poll (shutdown, admin mailbox).
pub(crate) fn waker(poll: &Poll) -> io::Result<Waker> {
    Waker::new(poll.registry(), SocketId::Waker.token())
}
