//! One worker (shard): a thread with its own `mio` poll, its own listeners
//! (SO_REUSEPORT), its own `proto::turn::Server` and the relay sockets of the
//! allocations it owns. Nothing is shared with other workers on the relay
//! path: no lock, no channel, no allocation per packet.

use std::collections::HashMap;
use std::io::{self, ErrorKind};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};

use super::clock;
use super::sockets;
use super::tcp::{Conn, ConnLimits, ListenerKind, ProxyPhase, ReadState};
use super::udp::{Dest, RecvBufs, SendBatch, Sock, SockKey};
use crate::proto::turn::{
    ClientAction, Command, Event, FiveTuple, HEADROOM, PeerAction, PortRequest, RelayBound,
    RelayId, Server, TAILROOM, Transport,
};
use crate::settings::Settings;
use quinn_udp::BATCH_SIZE;

pub(crate) const WAKER: Token = Token(0);
const UDP_BASE: usize = 1;
const TCP_LISTEN_BASE: usize = 1 << 16;
const CONN_BASE: usize = 1 << 20;
const RELAY_BASE: usize = 1 << 40;

/// Largest UDP payload plus the headroom and tailroom the core writes into.
const BUF_LEN: usize = HEADROOM + 65_535 + TAILROOM;

/// Receive batches taken from one socket before others get a turn; a
/// socket still readable after that is revisited on the next loop.
const ROUNDS_PER_EVENT: usize = 8;

/// A wakeup that handled fewer datagrams than this is "small": with
/// coalescing on, the worker waits before the next poll.
const COALESCE_BELOW: usize = 16;

/// How often idle TCP connections are looked for.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// The relay socket(s) of one allocation, indexed by family (0 IPv4, 1 IPv6).
struct RelaySock {
    id: RelayId,
    socks: [Option<Sock>; 2],
}

pub(crate) struct Worker {
    poll: Poll,
    server: Server,
    udp: Vec<(Sock, SocketAddr)>,
    tcp_listeners: Vec<(TcpListener, SocketAddr, ListenerKind)>,
    relays: Vec<Option<RelaySock>>,
    /// Ports held for RESERVATION-TOKENs; shared, since any worker may claim one.
    reserved: Arc<Reserved>,
    conns: Vec<Option<Conn>>,
    free_conns: Vec<usize>,
    conn_by_client: HashMap<SocketAddr, usize>,
    limits: Arc<ConnLimits>,
    settings: Arc<Settings>,
    shutdown: Arc<AtomicBool>,
    /// Scratch for one peer datagram with headroom for the header the core writes.
    scratch: Box<[u8]>,
    /// recvmmsg buffers (taken out while a batch is processed).
    rbufs: Option<Box<RecvBufs>>,
    /// Datagrams waiting to leave as one GSO send.
    batch: SendBatch,
    max_segments: usize,
    /// Sockets that were still readable after their turn.
    ready: Vec<usize>,
    /// Datagrams handled since the last poll (for coalescing).
    handled: usize,
    seed: u64,
    next_housekeeping: Instant,
}

impl Worker {
    #[allow(clippy::too_many_arguments)] // invariant: built once per worker by `io::start`.
    pub(crate) fn new(
        poll: Poll,
        server: Server,
        udp: Vec<(std::net::UdpSocket, SocketAddr)>,
        tcp: Vec<(std::net::TcpListener, SocketAddr, ListenerKind)>,
        limits: Arc<ConnLimits>,
        settings: Arc<Settings>,
        shutdown: Arc<AtomicBool>,
        reserved: Arc<Reserved>,
        seed: u64,
    ) -> io::Result<Self> {
        let mut udp_socks = Vec::new();
        for (i, (s, addr)) in udp.into_iter().enumerate() {
            let mut s = Sock::new(s)?;
            poll.registry()
                .register(&mut s.sock, Token(UDP_BASE + i), Interest::READABLE)?;
            udp_socks.push((s, addr));
        }
        let max_segments = udp_socks
            .first()
            .map_or(1, |(s, _)| s.max_gso_segments())
            .clamp(1, 64);
        let mut tcp_socks = Vec::new();
        for (i, (s, addr, kind)) in tcp.into_iter().enumerate() {
            let mut s = TcpListener::from_std(s);
            poll.registry()
                .register(&mut s, Token(TCP_LISTEN_BASE + i), Interest::READABLE)?;
            tcp_socks.push((s, addr, kind));
        }
        Ok(Self {
            poll,
            server,
            udp: udp_socks,
            tcp_listeners: tcp_socks,
            relays: Vec::new(),
            reserved,
            conns: Vec::new(),
            free_conns: Vec::new(),
            conn_by_client: HashMap::new(),
            limits,
            settings,
            shutdown,
            scratch: vec![0u8; BUF_LEN].into_boxed_slice(),
            rbufs: Some(Box::new(RecvBufs::new())),
            batch: SendBatch::new(),
            max_segments,
            ready: Vec::new(),
            handled: 0,
            seed,
            next_housekeeping: Instant::now() + HOUSEKEEPING,
        })
    }

    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let coalesce = self.settings.coalesce;
        if !coalesce.is_zero() {
            // Sleep as long as asked, not the default 50 µs of slack more.
            // SAFETY: prctl with PR_SET_TIMERSLACK takes one integer argument.
            unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1_000 as libc::c_ulong) };
        }
        while !self.shutdown.load(Ordering::Relaxed) {
            // Interrupt coalescing: after a wakeup that found only a few
            // datagrams, let the next ones gather so they are received and
            // sent in one batch (each wakeup costs more than a datagram).
            if !coalesce.is_zero() && self.handled > 0 && self.handled < COALESCE_BELOW {
                std::thread::sleep(coalesce);
            }
            self.handled = 0;
            let now = Instant::now();
            let deadline = self
                .server
                .poll_timeout()
                .map_or(self.next_housekeeping, |t| t.min(self.next_housekeeping));
            let timeout = if self.ready.is_empty() {
                deadline.saturating_duration_since(now)
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
            for t in std::mem::take(&mut self.ready) {
                if t >= RELAY_BASE {
                    self.relay_readable(t - RELAY_BASE);
                } else {
                    self.udp_readable(t - UDP_BASE);
                }
            }
            for ev in &events {
                let t = ev.token().0;
                if t == WAKER.0 {
                    continue;
                } else if t >= RELAY_BASE {
                    self.relay_readable(t - RELAY_BASE);
                } else if t >= CONN_BASE {
                    self.conn_event(
                        t - CONN_BASE,
                        ev.is_readable() || ev.is_read_closed(),
                        ev.is_writable(),
                    );
                } else if t >= TCP_LISTEN_BASE {
                    self.accept(t - TCP_LISTEN_BASE);
                } else {
                    self.udp_readable(t - UDP_BASE);
                }
            }
            let now = clock::now();
            self.server.handle_timeout(now.mono);
            if now.mono >= self.next_housekeeping {
                self.next_housekeeping = now.mono + HOUSEKEEPING;
                self.close_idle(now.mono);
                // The soft limit of `[cluster]` counts the whole node.
                let total = self.server.quota().total();
                self.server.set_load(total);
            }
            self.drain();
        }
        for i in 0..self.conns.len() {
            self.close_conn(i);
        }
    }

    /// Carries out everything the core queued (the drain contract).
    fn drain(&mut self) {
        loop {
            let mut progress = false;
            while let Some(cmd) = self.server.poll_command() {
                progress = true;
                self.command(cmd);
            }
            while let Some(t) = self.server.poll_transmit() {
                progress = true;
                self.send_to_client(&t.to, &t.data);
            }
            while let Some(ev) = self.server.poll_event() {
                progress = true;
                log_event(&ev);
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
                ipv6,
                additional_ipv6,
                port,
            } => {
                let now = clock::now();
                let result = self.bind_relay(relay, ipv6, additional_ipv6, port);
                if let Err(e) = &result {
                    tracing::warn!(error = %e, "cannot bind a relay socket; answering 508");
                }
                self.server
                    .handle_relay_bound(now, relay, result.map_err(|_| ()));
            }
            Command::ReleaseRelay { relay } => {
                if let Some(slot) = self.relays.get_mut(relay.slot as usize)
                    && slot.as_ref().is_some_and(|r| r.id == relay)
                    && let Some(r) = slot.take()
                {
                    for mut s in r.socks.into_iter().flatten() {
                        let _ = self.poll.registry().deregister(&mut s.sock);
                    }
                }
            }
            Command::ReleaseReservation { port } => {
                self.reserved.lock().remove(&port);
            }
        }
    }

    /// The local and advertised relay IPs of a family, if configured.
    fn relay_ip(&self, ipv6: bool) -> Option<(IpAddr, IpAddr)> {
        let s = &self.settings;
        if s.relay_ip.is_ipv6() == ipv6 {
            Some((s.relay_ip, s.advertised_ip.unwrap_or(s.relay_ip)))
        } else if ipv6 {
            s.relay_ip6.map(|ip| (ip, s.advertised_ip6.unwrap_or(ip)))
        } else {
            None
        }
    }

    fn bind_relay(
        &mut self,
        relay: RelayId,
        ipv6: bool,
        additional_ipv6: bool,
        port: PortRequest,
    ) -> io::Result<RelayBound> {
        let Some((local_ip, advertised)) = self.relay_ip(ipv6) else {
            return Err(io::Error::new(
                ErrorKind::Unsupported,
                "relay address family not configured",
            ));
        };
        let (sock, reserved) = match port {
            PortRequest::Reserved(p) => {
                let s = self
                    .reserved
                    .lock()
                    .remove(&p)
                    .ok_or_else(|| io::Error::new(ErrorKind::NotFound, "reservation gone"))?;
                (s, None)
            }
            req => {
                let seed = self.next_seed();
                sockets::relay_socket(local_ip, &self.settings.relay_ports, req, seed)?
            }
        };
        let local = sock.local_addr()?;
        let reserved_port = match reserved {
            Some(r) => {
                let p = r.local_addr()?.port();
                self.reserved.lock().insert(p, r);
                Some(p)
            }
            None => None,
        };
        let mut socks = [None, None];
        socks[usize::from(ipv6)] = Some(sock);
        // The IPv6 half of a dual allocation is best effort: without it the
        // client still gets IPv4 and ADDRESS-ERROR-CODE for IPv6.
        let mut additional = None;
        if additional_ipv6 && let Some((ip6, adv6)) = self.relay_ip(true) {
            let seed = self.next_seed();
            match sockets::relay_socket(ip6, &self.settings.relay_ports, PortRequest::Any, seed) {
                Ok((s6, _)) => {
                    additional = Some(SocketAddr::new(adv6, s6.local_addr()?.port()));
                    socks[1] = Some(s6);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot bind the IPv6 half of a dual allocation")
                }
            }
        }
        let slot = relay.slot as usize;
        let mut registered = [None, None];
        for (fam, s) in socks.into_iter().enumerate() {
            if let Some(s) = s {
                let mut s = Sock::new(s)?;
                self.poll.registry().register(
                    &mut s.sock,
                    Token(RELAY_BASE + 2 * slot + fam),
                    Interest::READABLE,
                )?;
                registered[fam] = Some(s);
            }
        }
        if self.relays.len() <= slot {
            self.relays.resize_with(slot + 1, || None);
        }
        self.relays[slot] = Some(RelaySock {
            id: relay,
            socks: registered,
        });
        Ok(RelayBound {
            addr: SocketAddr::new(advertised, local.port()),
            additional,
            reserved_port,
        })
    }

    fn next_seed(&mut self) -> u64 {
        self.seed = self
            .seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.seed >> 16
    }

    /// Client datagrams on listener `i`: each datagram (GRO segments split)
    /// through the core, relayed payloads batched per peer for GSO.
    fn udp_readable(&mut self, i: usize) {
        let Some(&(_, local)) = self.udp.get(i) else {
            return;
        };
        self.read_batches(SockKey::Listener(i), UDP_BASE + i, |w, bufs, n| {
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
                    let action = w.server.handle_client(now, five, d);
                    w.client_action(action, d);
                }
            }
            w.drain();
        });
    }

    /// Receives `recvmmsg` batches from one socket until it is empty or its
    /// turn is over, handing each batch to `handle`; a socket still readable
    /// after its turn goes on the ready list (`token`).
    fn read_batches(
        &mut self,
        key: SockKey,
        token: usize,
        mut handle: impl FnMut(&mut Self, &RecvBufs, usize),
    ) {
        let Some(mut bufs) = self.rbufs.take() else {
            return;
        };
        let mut drained = false;
        for _ in 0..ROUNDS_PER_EVENT {
            let Some(sock) = self.sock(key) else {
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
            handle(self, &bufs, n);
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
            self.ready.push(token);
        }
    }

    /// The UDP socket a key names, if it still exists.
    fn sock(&self, key: SockKey) -> Option<&Sock> {
        sock_of(&self.udp, &self.relays, key)
    }

    /// Relays to a peer; `datagram` holds the bytes the action's range points into.
    fn client_action(&mut self, action: ClientAction, datagram: &[u8]) {
        if let ClientAction::RelayToPeer {
            relay,
            peer,
            payload,
        } = action
            && let Some(bytes) = datagram.get(payload)
        {
            let dest = Dest {
                sock: SockKey::Relay(2 * relay.slot as usize + usize::from(peer.is_ipv6())),
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

    fn flush_batch(&mut self) {
        let Some((dest, bytes, segment)) = self.batch.take() else {
            return;
        };
        let sock = sock_of(&self.udp, &self.relays, dest.sock);
        if let Some(sock) = sock {
            sock.send(dest.to, dest.src_ip, bytes, segment);
        }
    }

    /// Peer datagrams on relay socket `key` (2 × slot + family).
    fn relay_readable(&mut self, key: usize) {
        let Some(Some(r)) = self.relays.get(key / 2) else {
            return;
        };
        let id = r.id;
        self.read_batches(SockKey::Relay(key), RELAY_BASE + key, |w, bufs, n| {
            let now = Instant::now();
            for k in 0..n {
                let peer = bufs.meta[k].addr;
                for d in bufs.datagrams(k) {
                    w.handled += 1;
                    // Copy behind the headroom so the core can write the
                    // ChannelData header or Data indication in place.
                    let end = HEADROOM + d.len();
                    w.scratch[HEADROOM..end].copy_from_slice(d);
                    let action = w
                        .server
                        .handle_peer(now, id, peer, &mut w.scratch, HEADROOM..end);
                    if let PeerAction::Forward { to, bytes } = action {
                        w.forward_to_client(&to, bytes);
                    }
                }
            }
        });
    }

    /// Sends `self.scratch[bytes]` to a client: batched for UDP, queued for TCP.
    fn forward_to_client(&mut self, to: &FiveTuple, bytes: std::ops::Range<usize>) {
        if to.transport == Transport::Udp {
            if let Some(dest) = self.client_dest(to) {
                let scratch = std::mem::take(&mut self.scratch);
                if let Some(b) = scratch.get(bytes) {
                    self.queue(dest, b);
                }
                self.scratch = scratch;
            }
        } else {
            let scratch = std::mem::take(&mut self.scratch);
            if let Some(b) = scratch.get(bytes) {
                self.send_to_client(to, b);
            }
            self.scratch = scratch;
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
            sock: SockKey::Listener(i),
            to: to.client,
            src_ip,
        })
    }

    fn send_to_client(&mut self, to: &FiveTuple, data: &[u8]) {
        match to.transport {
            Transport::Udp => {
                if let Some(d) = self.client_dest(to)
                    && let SockKey::Listener(i) = d.sock
                {
                    self.udp[i].0.send(d.to, d.src_ip, data, None);
                }
            }
            Transport::Tcp | Transport::Tls => {
                if let Some(&i) = self.conn_by_client.get(&to.client) {
                    let ok = match self.conns.get_mut(i) {
                        Some(Some(c)) => c.queue(data, self.poll.registry(), Token(CONN_BASE + i)),
                        _ => true,
                    };
                    if !ok {
                        self.close_conn(i);
                    }
                }
            }
        }
    }

    fn accept(&mut self, i: usize) {
        loop {
            let Some((l, local, kind)) = self.tcp_listeners.get(i) else {
                return;
            };
            let local = *local;
            let kind = kind.clone();
            let (stream, from) = match l.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    return;
                }
            };
            if !self.limits.admit(from.ip()) {
                tracing::debug!(client = %from, "TCP connection refused: connection limit reached");
                continue;
            }
            let idx = self.free_conns.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
            let proxy = match kind.proxy {
                false => ProxyPhase::Done,
                true if self
                    .settings
                    .proxy_protocol
                    .trusted
                    .iter()
                    .any(|n| n.contains(&from.ip())) =>
                {
                    ProxyPhase::Expect
                }
                true => ProxyPhase::Refuse,
            };
            let tls = match kind.tls.map(rustls::ServerConnection::new) {
                None => None,
                Some(Ok(t)) => Some(t),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "cannot start a TLS session");
                    self.limits.release(from.ip());
                    continue;
                }
            };
            if self.conn_by_client.contains_key(&from) {
                // Only possible with a proxy reporting this very address.
                self.limits.release(from.ip());
                continue;
            }
            let mut conn = Conn::new(stream, from, local, self.settings.tcp.max_frame, tls, proxy);
            if let Err(e) = conn.register(self.poll.registry(), Token(CONN_BASE + idx)) {
                tracing::warn!(error = %e, "cannot register a TCP connection");
                self.limits.release(from.ip());
                self.free_conns.push(idx);
                continue;
            }
            self.conn_by_client.insert(from, idx);
            self.conns[idx] = Some(conn);
        }
    }

    fn conn_event(&mut self, i: usize, readable: bool, writable: bool) {
        if writable {
            let ok = match self.conns.get_mut(i) {
                Some(Some(c)) => c.flush(self.poll.registry(), Token(CONN_BASE + i)),
                _ => return,
            };
            if !ok {
                return self.close_conn(i);
            }
        }
        if !readable {
            return;
        }
        loop {
            let Some(Some(conn)) = self.conns.get_mut(i) else {
                return;
            };
            let mut rbuf = conn.take_rbuf();
            let read = conn.read_into(&mut rbuf);
            let ok = conn.flush(self.poll.registry(), Token(CONN_BASE + i));
            let reported = conn.take_reported();
            if let Some(to) = reported
                && !self.rekey(i, to)
            {
                return self.close_conn(i);
            }
            let Some(Some(conn)) = self.conns.get_mut(i) else {
                return;
            };
            let five = conn.five();
            if let Err(e) = &read {
                tracing::debug!(client = %five.client, transport = ?five.transport, error = %e, "closing stream connection");
            }
            let mut consumed = 0;
            let mut fatal = read.is_err() || !ok;
            while !fatal {
                match crate::proto::framing::frame_len(
                    &rbuf[consumed..],
                    self.settings.tcp.max_frame,
                ) {
                    Ok(Some(len)) if rbuf.len() - consumed >= len => {
                        let frame = &rbuf[consumed..consumed + len];
                        let action = self.server.handle_client(clock::now(), five, frame);
                        self.client_action(action, frame);
                        self.drain();
                        consumed += len;
                    }
                    Ok(_) => break,
                    Err(e) => {
                        tracing::debug!(client = %five.client, error = %e, "closing TCP connection: bad framing");
                        fatal = true;
                    }
                }
            }
            self.flush_batch();
            rbuf.drain(..consumed);
            match self.conns.get_mut(i) {
                Some(Some(c)) => c.put_rbuf(rbuf, consumed > 0),
                _ => return,
            }
            match read {
                Ok(ReadState::Full) if !fatal => continue,
                Ok(ReadState::Drained) if !fatal => return,
                _ => return self.close_conn(i),
            }
        }
    }

    /// Applies the client address a trusted proxy reported for connection
    /// `i`: the per-IP limit and the map key become the reported ones (the
    /// core sees that address in the FiveTuple). False: refuse the connection.
    fn rekey(&mut self, i: usize, to: SocketAddr) -> bool {
        let Some(Some(conn)) = self.conns.get_mut(i) else {
            return false;
        };
        let from = conn.five().client;
        if from == to {
            return true;
        }
        if self.conn_by_client.contains_key(&to) {
            tracing::debug!(client = %to, proxy = %from, "PROXY header names a client already connected");
            return false;
        }
        if !self.limits.admit(to.ip()) {
            tracing::debug!(client = %to, proxy = %from, "connection refused: connection limit reached");
            return false;
        }
        self.limits.release(from.ip());
        conn.set_client(to);
        self.conn_by_client.remove(&from);
        self.conn_by_client.insert(to, i);
        tracing::debug!(client = %to, proxy = %from, "PROXY header accepted");
        true
    }

    fn close_conn(&mut self, i: usize) {
        let Some(slot) = self.conns.get_mut(i) else {
            return;
        };
        let Some(mut c) = slot.take() else { return };
        let _ = c.deregister(self.poll.registry());
        let five = c.five();
        self.conn_by_client.remove(&five.client);
        self.limits.release(five.client.ip());
        self.free_conns.push(i);
        self.server.handle_client_closed(&five);
        self.drain();
    }

    fn close_idle(&mut self, now: Instant) {
        let idle = self.settings.tcp.idle_timeout;
        let handshake = self.settings.tcp.handshake_timeout;
        let stale: Vec<usize> = self
            .conns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                c.as_ref()
                    .filter(|c| {
                        now.duration_since(c.last_frame()) > idle
                            || c.handshake_expired(now, handshake)
                    })
                    .map(|_| i)
            })
            .collect();
        for i in stale {
            tracing::debug!("closing idle TCP connection");
            self.close_conn(i);
        }
    }
}

/// The UDP socket a key names among listeners and relays, if it still exists.
fn sock_of<'a>(
    udp: &'a [(Sock, SocketAddr)],
    relays: &'a [Option<RelaySock>],
    key: SockKey,
) -> Option<&'a Sock> {
    match key {
        SockKey::Listener(i) => udp.get(i).map(|(s, _)| s),
        SockKey::Relay(k) => relays
            .get(k / 2)
            .and_then(Option::as_ref)
            .and_then(|r| r.socks[k % 2].as_ref()),
    }
}

/// Reserved relay sockets by port.
#[derive(Debug, Default)]
pub(crate) struct Reserved(std::sync::Mutex<HashMap<u16, std::net::UdpSocket>>);

impl Reserved {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u16, std::net::UdpSocket>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn log_event(ev: &Event) {
    match ev {
        Event::AllocationCreated {
            client,
            relay,
            username,
            lifetime,
        } => tracing::info!(
            client = %client.client, transport = ?client.transport, %relay, username = %username,
            lifetime_s = lifetime.as_secs(), "allocation created"
        ),
        Event::AllocationEnded {
            client,
            relay,
            username,
            reason,
        } => {
            tracing::info!(client = %client.client, %relay, username = %username, ?reason, "allocation ended")
        }
        Event::PeerDenied {
            client,
            peer,
            reason,
        } => {
            tracing::debug!(client = %client.client, %peer, %reason, "peer refused (403)")
        }
        Event::AuthFailed {
            client,
            username,
            reason,
        } => {
            tracing::debug!(client = %client.client, username = %username, %reason, "authentication failed (401)")
        }
    }
}

/// Ties a worker's waker to the shutdown flag.
pub(crate) fn waker(poll: &Poll) -> io::Result<Waker> {
    Waker::new(poll.registry(), WAKER)
}
