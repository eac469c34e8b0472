//! `tern load`: a load generator for any RFC 8656 TURN server.
//!
//! N allocations, each with a channel to its own UDP peer socket on
//! 127.0.0.1; ChannelData of S payload bytes in bursts of B per flow, at a
//! fixed total rate or as fast as the server drains them, for a bounded
//! time, client→peer, peer→client or both. Every payload carries the flow,
//! the direction, a sequence number and the send time, so the receiver
//! measures loss and one-way latency (same host, same monotonic clock).
//!
//! This module is a client driver: like `io`, it owns sockets and reads
//! the clock. Allocations are set up and torn down by the pipelined mode of
//! [`crate::tools::client`]; the data runs over its own sockets.
//!
//! Payload layout (S ≥ 24): `flow: u32 | dir: u8 | 0: [u8; 3] | seq: u64 |
//! sent_ns: u64 | filler`. On the client side it follows the 4-byte
//! ChannelData header, so a client→server datagram is S + 4 bytes.

pub mod browser;
mod report;
mod stats;
mod udp;

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use serde::Serialize;

use crate::tools::client::auth::Auth;
use crate::tools::client::pipeline::Pipeline;
pub use report::{AllocReport, Report, summary};
use stats::{Histogram, self_cpu_secs};
pub use stats::{proc_cpu_secs, proc_ctx_switches, proc_rss_kib, proc_udp_drops};
use udp::{BatchSocket, Receiver};

/// Smallest payload: the header the receiver needs.
pub const MIN_SIZE: usize = 24;
/// Largest payload (one datagram on loopback without fragmentation worries).
pub const MAX_SIZE: usize = 1_400;
/// Longest run: allocations and channels are never refreshed, and both
/// last 600 s by default (RFC 8656 §7.2, §12).
pub const MAX_DURATION: Duration = Duration::from_secs(300);
/// Socket buffers requested for every load socket.
const SOCK_BUF: usize = 4 << 20;
/// Time limit for setting up or tearing down all allocations.
const SETUP_LIMIT: Duration = Duration::from_secs(60);
/// In max-rate mode a flow whose packets stopped coming back for this long
/// writes its in-flight packets off as lost and sends again.
const STALL: Duration = Duration::from_millis(20);

/// Which way data flows through the relay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Client sends ChannelData; the peer receives UDP.
    ToPeer,
    /// Peer sends UDP; the client receives ChannelData.
    ToClient,
    /// Both at once (the rate is shared).
    Both,
}

impl Direction {
    fn dirs(self) -> &'static [u8] {
        match self {
            Self::ToPeer => &[0],
            Self::ToClient => &[1],
            Self::Both => &[0, 1],
        }
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// The server's UDP listen address.
    pub server: SocketAddr,
    pub user: String,
    pub password: String,
    /// Allocations (= flows), each with one channel and one peer socket.
    pub allocations: usize,
    /// Payload bytes per packet (ChannelData data, [`MIN_SIZE`]..=[`MAX_SIZE`]).
    pub size: usize,
    /// Packets per flow sent back to back (one GSO send).
    pub burst: usize,
    /// Total packets/s over all flows and directions; `None` = max rate.
    pub rate: Option<u64>,
    /// Sending time (≤ [`MAX_DURATION`]).
    pub duration: Duration,
    pub direction: Direction,
    /// Max-rate mode: packets in flight per flow and direction (0 = open loop).
    pub window: usize,
    /// Use GSO sends (else one `sendmsg` per datagram).
    pub gso: bool,
    /// Allocate requests in flight during setup.
    pub setup_window: usize,
    /// How long to wait for stragglers after sending stops.
    pub drain: Duration,
    /// Server process to charge CPU time to (µs per delivered packet).
    pub server_pid: Option<u32>,
}

impl LoadConfig {
    /// Checks the bounds the run relies on.
    pub fn validate(&self) -> anyhow::Result<()> {
        ensure!(self.allocations >= 1, "--allocations must be at least 1");
        ensure!(
            (MIN_SIZE..=MAX_SIZE).contains(&self.size),
            "--size must be {MIN_SIZE}..={MAX_SIZE} bytes"
        );
        ensure!((1..=1024).contains(&self.burst), "--burst must be 1..=1024");
        ensure!(
            self.duration > Duration::ZERO && self.duration <= MAX_DURATION,
            "--duration must be > 0 and <= {} s",
            MAX_DURATION.as_secs()
        );
        ensure!(
            self.rate != Some(0),
            "--rate must be > 0 (omit it for max rate)"
        );
        ensure!(
            self.drain <= Duration::from_secs(10),
            "--drain must be <= 10 s"
        );
        Ok(())
    }
}

/// One allocation with a channel to its own peer socket.
#[derive(Debug)]
struct Flow {
    /// Client socket, connected to the server.
    client: BatchSocket,
    /// Peer socket, connected to the relayed address.
    peer: BatchSocket,
    relay: SocketAddr,
    channel: u16,
}

/// Allocations with channels to their own peer sockets, held open.
#[derive(Debug)]
pub struct Session {
    server: SocketAddr,
    auth: Auth,
    flows: Vec<Flow>,
    setup: Duration,
    setup_window: usize,
}

impl Session {
    /// Creates `allocations` allocations, each with a channel to its own peer socket.
    pub fn establish(cfg: &LoadConfig) -> anyhow::Result<Self> {
        let mut auth = Auth::new(&cfg.user, &cfg.password);
        let mut pipe = Pipeline::new(cfg.server, &mut auth);
        let mut socks = Vec::with_capacity(cfg.allocations);
        let mut peers = Vec::with_capacity(cfg.allocations);
        let mut peer_addrs = Vec::with_capacity(cfg.allocations);
        for _ in 0..cfg.allocations {
            socks.push(pipe.client_socket()?);
            let peer =
                UdpSocket::bind(SocketAddr::new(cfg.server.ip(), 0)).context("bind peer socket")?;
            peer.set_nonblocking(true)?;
            peer_addrs.push(peer.local_addr()?);
            peers.push(peer);
        }
        let (allocs, setup) =
            pipe.allocate(socks, &peer_addrs, 600, cfg.setup_window, SETUP_LIMIT)?;
        let mut flows = Vec::with_capacity(allocs.len());
        for (a, p) in allocs.into_iter().zip(peers) {
            p.connect(a.relay).context("connect peer socket to relay")?;
            udp::set_buffers(&a.sock, SOCK_BUF);
            udp::set_buffers(&p, SOCK_BUF);
            flows.push(Flow {
                client: BatchSocket::new(a.sock).context("client socket state")?,
                peer: BatchSocket::new(p).context("peer socket state")?,
                relay: a.relay,
                channel: a.channel,
            });
        }
        Ok(Self {
            server: cfg.server,
            auth,
            flows,
            setup,
            setup_window: cfg.setup_window,
        })
    }

    /// Number of allocations held.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Deletes every allocation (Refresh with LIFETIME 0) and waits for the answers.
    pub fn close(mut self) -> anyhow::Result<()> {
        let socks = self.flows.drain(..).map(|f| f.client.sock).collect();
        let window = self.setup_window;
        Pipeline::new(self.server, &mut self.auth).delete(socks, window, SETUP_LIMIT)?;
        Ok(())
    }

    /// Runs the relay load described by `cfg` over this session's allocations.
    pub fn relay(&mut self, cfg: &LoadConfig) -> anyhow::Result<Report> {
        cfg.validate()?;
        Relay::new(self, cfg)?.run(cfg)
    }
}

/// Sets up, runs the relay load, tears down.
pub fn run(cfg: &LoadConfig) -> anyhow::Result<Report> {
    cfg.validate()?;
    let mut session = Session::establish(cfg)?;
    let report = session.relay(cfg);
    let closed = session.close();
    let report = report?;
    closed?;
    Ok(report)
}

/// `--allocate-only`: Allocate+ChannelBind rate, then delete them all.
pub fn allocate_only(cfg: &LoadConfig) -> anyhow::Result<AllocReport> {
    ensure!(cfg.allocations >= 1, "--allocations must be at least 1");
    let mut auth = Auth::new(&cfg.user, &cfg.password);
    let peer = UdpSocket::bind(SocketAddr::new(cfg.server.ip(), 0)).context("bind peer")?;
    let peer_addr = peer.local_addr()?;
    let mut pipe = Pipeline::new(cfg.server, &mut auth);
    let socks = (0..cfg.allocations)
        .map(|_| pipe.client_socket())
        .collect::<anyhow::Result<Vec<_>>>()?;
    let peers = vec![peer_addr; cfg.allocations];
    let cpu0 = cfg.server_pid.and_then(proc_cpu_secs);
    let (allocs, took) = pipe.allocate(socks, &peers, 600, cfg.setup_window, SETUP_LIMIT)?;
    let cpu1 = cfg.server_pid.and_then(proc_cpu_secs);
    let socks = allocs.into_iter().map(|a| a.sock).collect();
    let deleted = pipe.delete(socks, cfg.setup_window, SETUP_LIMIT)?;
    let server_cpu_s = cpu0.zip(cpu1).map(|(a, b)| b - a);
    Ok(AllocReport {
        server: cfg.server.to_string(),
        allocations: cfg.allocations,
        window: cfg.setup_window,
        allocate_s: took.as_secs_f64(),
        allocate_per_s: cfg.allocations as f64 / took.as_secs_f64(),
        delete_s: deleted.as_secs_f64(),
        server_cpu_s,
        server_us_per_alloc: server_cpu_s.map(|s| s * 1e6 / cfg.allocations as f64),
    })
}

/// Per flow and direction: what was sent and what came back.
#[derive(Clone, Copy, Default)]
struct Counter {
    sent: u64,
    recv: u64,
    /// Packets written off as lost by the max-rate window.
    written_off: u64,
    last_progress: Option<Instant>,
}

struct Relay<'s> {
    session: &'s Session,
    dirs: &'static [u8],
    /// Prebuilt bursts: `[flow][dir]`, B segments each.
    bufs: Vec<[Vec<u8>; 2]>,
    counters: Vec<[Counter; 2]>,
    hist: Histogram,
    /// GSO sends asked for (`--no-gso` clears it).
    gso: bool,
    start: Instant,
}

impl<'s> Relay<'s> {
    fn new(session: &'s Session, cfg: &LoadConfig) -> anyhow::Result<Self> {
        if session.flows.len() != cfg.allocations {
            bail!(
                "session holds {} allocations, config asks for {}",
                session.flows.len(),
                cfg.allocations
            );
        }
        let mut bufs = Vec::with_capacity(cfg.allocations);
        for (flow, a) in session.flows.iter().enumerate() {
            let mut to_peer = Vec::with_capacity((cfg.size + 4) * cfg.burst);
            let mut to_client = Vec::with_capacity(cfg.size * cfg.burst);
            for _ in 0..cfg.burst {
                to_peer.extend_from_slice(&a.channel.to_be_bytes());
                to_peer.extend_from_slice(&(cfg.size as u16).to_be_bytes());
                for (dir, out) in [(0u8, &mut to_peer), (1u8, &mut to_client)] {
                    let at = out.len();
                    out.resize(at + cfg.size, 0xA5);
                    out[at..at + 4].copy_from_slice(&(flow as u32).to_be_bytes());
                    out[at + 4..at + 8].copy_from_slice(&[dir, 0, 0, 0]);
                }
            }
            bufs.push([to_peer, to_client]);
        }
        Ok(Self {
            session,
            dirs: cfg.direction.dirs(),
            bufs,
            counters: vec![[Counter::default(); 2]; cfg.allocations],
            hist: Histogram::new(),
            gso: cfg.gso,
            start: Instant::now(),
        })
    }

    fn run(mut self, cfg: &LoadConfig) -> anyhow::Result<Report> {
        let mut poll = self.register()?;
        let mut events = Events::with_capacity(1024);
        let mut rx = Receiver::new();
        // Drain anything left over (late replies) before starting the clock.
        for f in &self.session.flows {
            while rx.recv(&f.client)? > 0 {}
            while rx.recv(&f.peer)? > 0 {}
        }

        let lanes = cfg.allocations * self.dirs.len();
        // Rate mode: each (flow, dir) lane sends a burst every `interval`,
        // lanes staggered evenly across it.
        let interval = cfg
            .rate
            .map(|r| Duration::from_secs_f64((cfg.burst * lanes) as f64 / r as f64));
        let mut next_due: Vec<Duration> = (0..lanes)
            .map(|k| interval.map_or(Duration::ZERO, |iv| iv.mul_f64(k as f64 / lanes as f64)))
            .collect();

        let cpu0 = cfg.server_pid.and_then(proc_cpu_secs);
        let ctx0 = cfg.server_pid.and_then(proc_ctx_switches);
        let self0 = self_cpu_secs();
        self.start = Instant::now();
        let hard_end = cfg.duration + cfg.drain;
        let mut sent_total = 0u64;
        loop {
            let now = self.start.elapsed();
            if now >= hard_end {
                break;
            }
            let sending = now < cfg.duration;
            let mut sent_now = 0;
            if sending {
                sent_now = self.send_pass(&mut next_due, interval, now, cfg);
                sent_total += sent_now as u64;
            } else if self.all_back() {
                break;
            }
            let timeout = if !sending {
                Duration::from_millis(5)
            } else if interval.is_some() {
                let earliest = next_due.iter().min().copied().unwrap_or(now);
                let wait = earliest.saturating_sub(self.start.elapsed());
                if wait >= Duration::from_millis(2) {
                    wait - Duration::from_millis(1)
                } else {
                    Duration::ZERO
                }
            } else if sent_now == 0 {
                Duration::from_millis(1)
            } else {
                Duration::ZERO
            };
            poll.poll(&mut events, Some(timeout))
                .context("epoll wait")?;
            self.receive(&events, &mut rx)?;
        }
        let elapsed = self.start.elapsed();
        let server_cpu_s = cpu0
            .zip(cfg.server_pid.and_then(proc_cpu_secs))
            .map(|(a, b)| b - a);
        let load_cpu_pct = 100.0 * (self_cpu_secs() - self0) / elapsed.as_secs_f64();
        let ctx = ctx0
            .zip(cfg.server_pid.and_then(proc_ctx_switches))
            .map(|(a, b)| b.saturating_sub(a));
        let mut report = self.report(cfg, server_cpu_s, load_cpu_pct);
        report.server_wakeups_per_pkt = ctx
            .filter(|_| report.delivered > 0)
            .map(|c| c as f64 / report.delivered as f64);
        debug_assert_eq!(report.sent, sent_total);
        Ok(report)
    }

    /// An epoll instance watching every client and peer socket: token
    /// `2 * flow` for the client socket, `2 * flow + 1` for the peer's.
    fn register(&self) -> anyhow::Result<Poll> {
        let poll = Poll::new().context("epoll")?;
        for (i, f) in self.session.flows.iter().enumerate() {
            for (t, fd) in [
                (2 * i, f.client.sock.as_raw_fd()),
                (2 * i + 1, f.peer.sock.as_raw_fd()),
            ] {
                poll.registry()
                    .register(&mut SourceFd(&fd), Token(t), Interest::READABLE)
                    .context("epoll register")?;
            }
        }
        Ok(poll)
    }

    /// One pass over every (flow, direction) lane: bursts that are due
    /// (rate mode) or whose window is open (max rate). Returns packets sent.
    fn send_pass(
        &mut self,
        next_due: &mut [Duration],
        interval: Option<Duration>,
        now: Duration,
        cfg: &LoadConfig,
    ) -> usize {
        let mut sent = 0;
        for (k, due) in next_due.iter_mut().enumerate() {
            let (flow, dir) = (k / self.dirs.len(), self.dirs[k % self.dirs.len()]);
            match interval {
                Some(iv) => {
                    // Bounded catch-up: at most 4 bursts per lane per pass.
                    let mut n = 0;
                    while *due <= now && n < 4 {
                        sent += self.send(flow, dir, cfg);
                        *due += iv;
                        n += 1;
                    }
                    if *due <= now {
                        *due = now + iv;
                    }
                }
                None => {
                    if self.window_open(flow, dir, cfg) {
                        sent += self.send(flow, dir, cfg);
                    }
                }
            }
        }
        sent
    }

    /// Reads every socket with events until it is empty (edge-triggered)
    /// and counts the payloads that came back.
    fn receive(&mut self, events: &Events, rx: &mut Receiver) -> anyhow::Result<()> {
        for ev in events {
            let t = ev.token().0;
            let flow = t / 2;
            let from_peer_sock = t % 2 == 1;
            let f = &self.session.flows[flow];
            let s = if from_peer_sock { &f.peer } else { &f.client };
            loop {
                let n = rx.recv(s)?;
                if n == 0 {
                    break;
                }
                let now = Instant::now();
                let now_ns = now.duration_since(self.start).as_nanos() as u64;
                for d in (0..n).flat_map(|i| rx.datagrams(i)) {
                    let payload = if from_peer_sock {
                        d
                    } else if d.len() >= 4 && d[0] & 0xC0 == 0x40 {
                        &d[4..]
                    } else {
                        continue; // a STUN message
                    };
                    self.on_payload(payload, now, now_ns);
                }
            }
        }
        Ok(())
    }

    fn report(&self, cfg: &LoadConfig, server_cpu_s: Option<f64>, load_cpu_pct: f64) -> Report {
        let flows = cfg.allocations;
        let delivered: u64 = self.counters.iter().flatten().map(|c| c.recv).sum();
        let sent: u64 = self.counters.iter().flatten().map(|c| c.sent).sum();
        let secs = cfg.duration.as_secs_f64();
        Report {
            server: self.session.server.to_string(),
            allocations: flows,
            size: cfg.size,
            burst: cfg.burst,
            direction: cfg.direction,
            rate: cfg.rate,
            duration_s: secs,
            sent,
            delivered,
            offered_pps: sent as f64 / secs,
            delivered_pps: delivered as f64 / secs,
            delivered_mbit_s: (delivered * cfg.size as u64 * 8) as f64 / secs / 1e6,
            loss_pct: if sent == 0 {
                0.0
            } else {
                100.0 * sent.saturating_sub(delivered) as f64 / sent as f64
            },
            latency_p50_us: self.hist.quantile(0.50),
            latency_p99_us: self.hist.quantile(0.99),
            latency_p999_us: self.hist.quantile(0.999),
            latency_max_us: self.hist.max_us(),
            send_mode: match (cfg.burst, self.gso_held()) {
                (1, _) => "send",
                (_, true) => "gso",
                (_, false) => "sendmsg",
            },
            setup_s: self.session.setup.as_secs_f64(),
            allocate_per_s: flows as f64 / self.session.setup.as_secs_f64(),
            server_cpu_s,
            server_us_per_pkt: server_cpu_s
                .filter(|_| delivered > 0)
                .map(|s| s * 1e6 / delivered as f64),
            server_wakeups_per_pkt: None,
            load_cpu_pct,
        }
    }

    /// Max-rate flow control: send while fewer than `window` packets are out,
    /// or when the flow has stalled (its in-flight packets are written off).
    fn window_open(&mut self, flow: usize, dir: u8, cfg: &LoadConfig) -> bool {
        if cfg.window == 0 {
            return true;
        }
        let c = &mut self.counters[flow][usize::from(dir)];
        // Written-off packets that arrive late make recv + written_off pass
        // sent; the wrapped (huge) count keeps the window shut until the
        // next stall re-bases it, as release builds always did.
        let in_flight = c.sent.wrapping_sub(c.recv).wrapping_sub(c.written_off);
        if (in_flight as usize).saturating_add(cfg.burst) <= cfg.window.max(cfg.burst) {
            return true;
        }
        let stalled = c.last_progress.is_none_or(|t| t.elapsed() > STALL);
        if stalled {
            c.written_off = c.sent.saturating_sub(c.recv);
            c.last_progress = Some(Instant::now());
        }
        stalled
    }

    /// Stamps and sends one burst; returns packets the kernel accepted.
    fn send(&mut self, flow: usize, dir: u8, cfg: &LoadConfig) -> usize {
        let d = usize::from(dir);
        let (hdr, seg) = if dir == 0 {
            (4, cfg.size + 4)
        } else {
            (0, cfg.size)
        };
        let ts = self.start.elapsed().as_nanos() as u64;
        let c = &mut self.counters[flow][d];
        let buf = &mut self.bufs[flow][d];
        for i in 0..cfg.burst {
            let at = i * seg + hdr;
            buf[at + 8..at + 16].copy_from_slice(&(c.sent + i as u64).to_be_bytes());
            buf[at + 16..at + 24].copy_from_slice(&ts.to_be_bytes());
        }
        let f = &self.session.flows[flow];
        let (s, to) = if dir == 0 {
            (&f.client, self.session.server)
        } else {
            (&f.peer, f.relay)
        };
        let n = s.send_burst(to, buf, seg, cfg.burst, self.gso);
        c.sent += n as u64;
        if c.last_progress.is_none() {
            c.last_progress = Some(Instant::now());
        }
        n
    }

    fn on_payload(&mut self, p: &[u8], now: Instant, now_ns: u64) {
        if p.len() < MIN_SIZE {
            return;
        }
        let flow = u32::from_be_bytes([p[0], p[1], p[2], p[3]]) as usize;
        let dir = usize::from(p[4]);
        let Some(c) = self.counters.get_mut(flow).and_then(|c| c.get_mut(dir)) else {
            return;
        };
        c.recv += 1;
        c.last_progress = Some(now);
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&p[16..24]);
        let sent_ns = u64::from_be_bytes(ts);
        self.hist.record(now_ns.saturating_sub(sent_ns) / 1_000);
    }

    /// GSO was asked for and every socket still uses it (quinn-udp turns
    /// it off on a socket whose kernel refuses it).
    fn gso_held(&self) -> bool {
        self.gso
            && self
                .session
                .flows
                .iter()
                .all(|f| f.client.gso() && f.peer.gso())
    }

    fn all_back(&self) -> bool {
        self.counters.iter().flatten().all(|c| c.recv >= c.sent)
    }
}
