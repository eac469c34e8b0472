//! `tern load --browser`: traffic shaped like a server full of browsers.
//!
//! Many flows (one client socket and allocation each, ≥ 1,000 by
//! default), every datagram sent alone (one `send` per packet, nothing for
//! GSO/GRO to coalesce), paced per flow like a WebRTC call: audio, one
//! packet every 20 ms, and video, a frame of several packets every 33 ms,
//! each stream with its own phase. Half the flows talk to a plain UDP peer,
//! both ways (client→peer through the channel, peer→client to the relayed
//! address); the other half are pairs of allocations talking relay to
//! relay (client A → relay A → relay B → client B and back), so each of
//! their packets passes the server twice.
//!
//! The total rate sets the time scale: at the nominal per-flow rate
//! (`flows × (50 + 30 × video_packets)` per direction) the streams run in
//! real time; a higher rate runs the same schedule faster. The report
//! counts loss per run, latency percentiles (one pass and relay-to-relay
//! apart), server CPU and context switches per relayed datagram, and the
//! kernel's receive drops on the server's sockets and the tool's own (so a
//! loss can be pinned on the side that dropped).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use serde::Serialize;

use super::stats::{Histogram, proc_ctx_switches, proc_udp_drops, self_cpu_secs};
use super::udp::Receiver;
use super::{Direction, LoadConfig, SETUP_LIMIT, Session, proc_cpu_secs};
use crate::tools::client::pipeline::Pipeline;

/// Audio: one packet every 20 ms (Opus default framing).
const AUDIO_EVERY_NS: f64 = 20e6;
/// Video: one frame every 33.3 ms (30 fps).
const VIDEO_EVERY_NS: f64 = 1e9 / 30.0;
/// Audio payload bytes (Opus ~ 32 kbit/s plus RTP/SRTP overhead).
pub const AUDIO_SIZE: usize = 160;
/// Video payload bytes per packet (a full-MTU SRTP packet).
pub const VIDEO_SIZE: usize = 1_100;
/// A sender this far behind its schedule skips ahead instead of bursting.
const MAX_LAG_NS: u64 = 50_000_000;

/// Kinds of sender lane, written into byte 4 of every payload.
const CLIENT_TO_PEER: u8 = 0;
const PEER_TO_CLIENT: u8 = 1;
const RELAY_TO_RELAY: u8 = 2;

/// What a browser-like run does.
#[derive(Clone, Debug)]
pub struct BrowserConfig {
    /// Server, credentials, flows (`allocations`, ≥ 4), duration, drain, server pid.
    pub base: LoadConfig,
    /// Total datagrams/s offered over all lanes.
    pub rate: u64,
    /// Packets per video frame.
    pub video_packets: usize,
}

impl BrowserConfig {
    /// Packets per second one sender lane sends in real time.
    pub fn lane_rate(&self) -> f64 {
        1e9 / AUDIO_EVERY_NS + self.video_packets as f64 * 1e9 / VIDEO_EVERY_NS
    }

    /// Sender lanes: two per client↔peer flow, one per relay-to-relay flow.
    pub fn lanes(&self) -> usize {
        let (c2p, r2r) = split(self.base.allocations);
        2 * c2p + r2r
    }

    /// The rate at which the flows run in real time.
    pub fn realtime_rate(&self) -> f64 {
        self.lanes() as f64 * self.lane_rate()
    }
}

/// Flows talking to a UDP peer and flows paired relay to relay (even).
fn split(flows: usize) -> (usize, usize) {
    let r2r = (flows / 2) & !1;
    (flows - r2r, r2r)
}

/// The results of one browser-like run (one JSON line).
#[derive(Clone, Debug, Serialize)]
pub struct BrowserReport {
    pub server: String,
    pub flows: usize,
    pub rate: u64,
    /// Offered rate ÷ the real-time rate of these flows.
    pub time_scale: f64,
    pub duration_s: f64,
    pub sent: u64,
    pub delivered: u64,
    pub offered_pps: f64,
    pub delivered_pps: f64,
    pub loss_pct: f64,
    /// One pass through the server (client→peer, peer→client).
    pub latency_p50_us: u64,
    pub latency_p99_us: u64,
    pub latency_p999_us: u64,
    /// Relay to relay (two passes through the server).
    pub r2r_p50_us: u64,
    pub r2r_p99_us: u64,
    pub r2r_p999_us: u64,
    /// Datagrams the server relayed (relay-to-relay packets count twice).
    pub relayed: u64,
    pub server_cpu_s: Option<f64>,
    pub server_us_per_relayed: Option<f64>,
    pub server_wakeups_per_relayed: Option<f64>,
    /// Kernel receive-queue drops on the server's UDP sockets during the run.
    pub server_drops: Option<u64>,
    /// The same on this tool's sockets (a loss the server did not cause).
    pub load_drops: Option<u64>,
    pub load_cpu_pct: f64,
}

/// A session of browser-like flows: allocations with a channel to their
/// own peer, and for the relay-to-relay half a second channel to the
/// partner's relayed address.
#[derive(Debug)]
pub struct BrowserSession {
    session: Session,
    /// Per flow: the partner flow and the channel bound to its relay.
    partner: Vec<Option<(usize, u16)>>,
}

impl BrowserSession {
    /// Sets up `cfg.base.allocations` flows and pairs the relay-to-relay half.
    pub fn establish(cfg: &BrowserConfig) -> anyhow::Result<Self> {
        ensure!(
            cfg.base.allocations >= 4,
            "browser-like load needs >= 4 flows"
        );
        let mut base = cfg.base.clone();
        base.direction = Direction::Both;
        let mut session = Session::establish(&base)?;
        let (c2p, r2r) = split(session.flows.len());
        let mut partner = vec![None; session.flows.len()];
        let mut socks = Vec::with_capacity(r2r);
        let mut binds = Vec::with_capacity(r2r);
        for a in (c2p..c2p + r2r).step_by(2) {
            for (me, other) in [(a, a + 1), (a + 1, a)] {
                // A second channel number, distinct from the flow's first.
                let channel = session.flows[me].channel ^ 0x0800;
                partner[me] = Some((other, channel));
                socks.push(session.flows[me].client.sock.try_clone()?);
                binds.push((channel, session.flows[other].relay));
            }
        }
        Pipeline::new(session.server, &mut session.auth)
            .bind_channels(socks, &binds, session.setup_window, SETUP_LIMIT)
            .context("bind relay-to-relay channels")?;
        Ok(Self { session, partner })
    }

    /// Deletes every allocation.
    pub fn close(self) -> anyhow::Result<()> {
        self.session.close()
    }

    /// Runs the browser-like load once.
    pub fn run(&mut self, cfg: &BrowserConfig) -> anyhow::Result<BrowserReport> {
        cfg.base.validate()?;
        ensure!(cfg.rate > 0, "--rate must be > 0");
        ensure!(
            (1..=16).contains(&cfg.video_packets),
            "--video-packets must be 1..=16"
        );
        Run::new(self, cfg).go(cfg)
    }
}

/// One sender: a flow's client (or its peer), and what it sends.
#[derive(Clone, Copy)]
struct Lane {
    flow: usize,
    kind: u8,
}

struct Run<'s> {
    s: &'s BrowserSession,
    lanes: Vec<Lane>,
    /// Per lane: packets sent and received.
    sent: Vec<u64>,
    recv: Vec<u64>,
    one_pass: Histogram,
    r2r: Histogram,
    buf: Vec<u8>,
    start: Instant,
}

impl<'s> Run<'s> {
    fn new(s: &'s BrowserSession, cfg: &BrowserConfig) -> Self {
        let (c2p, _) = split(s.session.flows.len());
        let mut lanes = Vec::with_capacity(cfg.lanes());
        for flow in 0..s.session.flows.len() {
            if flow < c2p {
                lanes.push(Lane {
                    flow,
                    kind: CLIENT_TO_PEER,
                });
                lanes.push(Lane {
                    flow,
                    kind: PEER_TO_CLIENT,
                });
            } else {
                lanes.push(Lane {
                    flow,
                    kind: RELAY_TO_RELAY,
                });
            }
        }
        let n = lanes.len();
        Self {
            s,
            lanes,
            sent: vec![0; n],
            recv: vec![0; n],
            one_pass: Histogram::new(),
            r2r: Histogram::new(),
            buf: vec![0xA5; 4 + VIDEO_SIZE.max(AUDIO_SIZE)],
            start: Instant::now(),
        }
    }

    fn go(mut self, cfg: &BrowserConfig) -> anyhow::Result<BrowserReport> {
        let mut poll = self.register()?;
        let mut events = Events::with_capacity(1024);
        let mut rx = Receiver::new();
        for f in &self.s.session.flows {
            while rx.recv(&f.client)? > 0 {}
            while rx.recv(&f.peer)? > 0 {}
        }
        let scale = cfg.rate as f64 / cfg.realtime_rate();
        let (audio_ns, video_ns) = (AUDIO_EVERY_NS / scale, VIDEO_EVERY_NS / scale);
        // (due ns, lane, is_video); phases spread evenly over a period.
        let mut due: BinaryHeap<Reverse<(u64, u32, bool)>> = BinaryHeap::new();
        let n = self.lanes.len();
        for k in 0..n {
            let phase = k as f64 / n as f64;
            due.push(Reverse(((audio_ns * phase) as u64, k as u32, false)));
            let vphase = ((k * 7919) % n) as f64 / n as f64;
            due.push(Reverse(((video_ns * vphase) as u64, k as u32, true)));
        }
        let pid = cfg.base.server_pid;
        let cpu0 = pid.and_then(proc_cpu_secs);
        let ctx0 = pid.and_then(proc_ctx_switches);
        let drops0 = pid.and_then(proc_udp_drops);
        let me = std::process::id();
        let self_drops0 = proc_udp_drops(me);
        let self0 = self_cpu_secs();
        self.start = Instant::now();
        let send_ns = cfg.base.duration.as_nanos() as u64;
        let end_ns = send_ns + cfg.base.drain.as_nanos() as u64;
        loop {
            let now = self.now_ns();
            if now >= end_ns || (now >= send_ns && self.all_back()) {
                break;
            }
            while let Some(&Reverse((at, k, video))) = due.peek() {
                if at > now || now >= send_ns {
                    break;
                }
                due.pop();
                let count = if video { cfg.video_packets } else { 1 };
                let size = if video { VIDEO_SIZE } else { AUDIO_SIZE };
                self.send(k as usize, count, size);
                let every = if video { video_ns } else { audio_ns } as u64;
                let next = if now - at > MAX_LAG_NS { now } else { at } + every.max(1);
                due.push(Reverse((next, k, video)));
            }
            let timeout = match due.peek() {
                Some(&Reverse((at, ..))) if now < send_ns => {
                    Duration::from_nanos(at.saturating_sub(self.now_ns()))
                }
                _ => Duration::from_millis(5),
            };
            // epoll waits in whole ms: below one, look without blocking.
            let timeout = if timeout < Duration::from_millis(1) {
                Duration::ZERO
            } else {
                timeout
            };
            poll.poll(&mut events, Some(timeout))
                .context("epoll wait")?;
            self.receive(&events, &mut rx)?;
        }
        let elapsed = self.start.elapsed().as_secs_f64();
        let sub = |a: Option<u64>, b: Option<u64>| a.zip(b).map(|(a, b)| b.saturating_sub(a));
        let server_cpu_s = cpu0.zip(pid.and_then(proc_cpu_secs)).map(|(a, b)| b - a);
        let ctx = sub(ctx0, pid.and_then(proc_ctx_switches));
        let server_drops = sub(drops0, pid.and_then(proc_udp_drops));
        let load_drops = sub(self_drops0, proc_udp_drops(me));
        let load_cpu_pct = 100.0 * (self_cpu_secs() - self0) / elapsed;
        Ok(self.report(
            cfg,
            scale,
            server_cpu_s,
            ctx,
            server_drops,
            load_drops,
            load_cpu_pct,
        ))
    }

    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Every client and peer socket, edge-triggered: token `2 * flow` for
    /// the client socket, `2 * flow + 1` for the peer's.
    fn register(&self) -> anyhow::Result<Poll> {
        let poll = Poll::new().context("epoll")?;
        for (i, f) in self.s.session.flows.iter().enumerate() {
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

    /// Sends `count` datagrams of `size` payload bytes from lane `k`, one
    /// `send` each (a browser sends every packet on its own).
    fn send(&mut self, k: usize, count: usize, size: usize) {
        let Lane { flow, kind } = self.lanes[k];
        let f = &self.s.session.flows[flow];
        let (sock, channel) = match kind {
            CLIENT_TO_PEER => (&f.client.sock, Some(f.channel)),
            RELAY_TO_RELAY => (&f.client.sock, self.s.partner[flow].map(|p| p.1)),
            _ => (&f.peer.sock, None),
        };
        let hdr = if channel.is_some() { 4 } else { 0 };
        for _ in 0..count {
            let ts = self.start.elapsed().as_nanos() as u64;
            let b = &mut self.buf[..hdr + size];
            if let Some(ch) = channel {
                b[..2].copy_from_slice(&ch.to_be_bytes());
                b[2..4].copy_from_slice(&(size as u16).to_be_bytes());
            }
            let p = &mut b[hdr..];
            p[..4].copy_from_slice(&(k as u32).to_be_bytes());
            p[4] = kind;
            p[8..16].copy_from_slice(&self.sent[k].to_be_bytes());
            p[16..24].copy_from_slice(&ts.to_be_bytes());
            // A full socket buffer is a loss the drop counters show.
            let _ = sock.send(b);
            self.sent[k] += 1;
        }
    }

    /// Reads every readable socket (a short batch means it is empty: the
    /// next arrival raises a new edge) and counts what came back.
    fn receive(&mut self, events: &Events, rx: &mut Receiver) -> anyhow::Result<()> {
        for ev in events {
            let t = ev.token().0;
            let f = &self.s.session.flows[t / 2];
            let (sock, from_peer_sock) = if t % 2 == 1 {
                (&f.peer, true)
            } else {
                (&f.client, false)
            };
            loop {
                let n = rx.recv(sock)?;
                let now_ns = self.now_ns();
                for i in 0..n {
                    for d in rx.datagrams(i) {
                        let payload = if from_peer_sock {
                            Some(d)
                        } else if d.len() >= 4 && d[0] & 0xC0 == 0x40 {
                            d.get(4..)
                        } else {
                            None // a STUN message
                        };
                        if let Some(p) = payload {
                            self.on_payload(p, now_ns);
                        }
                    }
                }
                if n < quinn_udp::BATCH_SIZE {
                    break;
                }
            }
        }
        Ok(())
    }

    fn on_payload(&mut self, p: &[u8], now_ns: u64) {
        let Some(h) = p.get(..24) else {
            return;
        };
        let k = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let Some(r) = self.recv.get_mut(k) else {
            return;
        };
        *r += 1;
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&h[16..24]);
        let us = now_ns.saturating_sub(u64::from_be_bytes(ts)) / 1_000;
        if h[4] == RELAY_TO_RELAY {
            self.r2r.record(us);
        } else {
            self.one_pass.record(us);
        }
    }

    fn all_back(&self) -> bool {
        self.recv.iter().zip(&self.sent).all(|(r, s)| r >= s)
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "the figures of one run, gathered once"
    )]
    fn report(
        &self,
        cfg: &BrowserConfig,
        scale: f64,
        server_cpu_s: Option<f64>,
        ctx: Option<u64>,
        server_drops: Option<u64>,
        load_drops: Option<u64>,
        load_cpu_pct: f64,
    ) -> BrowserReport {
        let sent: u64 = self.sent.iter().sum();
        let delivered: u64 = self.recv.iter().copied().sum::<u64>().min(sent);
        let relayed: u64 = self
            .lanes
            .iter()
            .zip(&self.recv)
            .map(|(l, &r)| if l.kind == RELAY_TO_RELAY { 2 * r } else { r })
            .sum();
        let secs = cfg.base.duration.as_secs_f64();
        let per = |x: f64| (relayed > 0).then(|| x / relayed as f64);
        BrowserReport {
            server: self.s.session.server.to_string(),
            flows: self.s.session.flows.len(),
            rate: cfg.rate,
            time_scale: scale,
            duration_s: secs,
            sent,
            delivered,
            offered_pps: sent as f64 / secs,
            delivered_pps: delivered as f64 / secs,
            loss_pct: if sent == 0 {
                0.0
            } else {
                100.0 * (sent - delivered) as f64 / sent as f64
            },
            latency_p50_us: self.one_pass.quantile(0.5),
            latency_p99_us: self.one_pass.quantile(0.99),
            latency_p999_us: self.one_pass.quantile(0.999),
            r2r_p50_us: self.r2r.quantile(0.5),
            r2r_p99_us: self.r2r.quantile(0.99),
            r2r_p999_us: self.r2r.quantile(0.999),
            relayed,
            server_cpu_s,
            server_us_per_relayed: server_cpu_s.and_then(|s| per(s * 1e6)),
            server_wakeups_per_relayed: ctx.and_then(|c| per(c as f64)),
            server_drops,
            load_drops,
            load_cpu_pct,
        }
    }
}

/// The human-readable summary of a browser-like run.
pub fn summary(r: &BrowserReport) -> String {
    let opt =
        |v: Option<f64>, unit: &str| v.map_or_else(|| "–".to_owned(), |v| format!("{v:.2}{unit}"));
    let cnt = |v: Option<u64>| v.map_or_else(|| "–".to_owned(), |v| v.to_string());
    format!(
        "tern load --browser → {}: {} flows, {} pkt/s offered ({:.2}× real time), {:.1} s\n\
         delivered   {:>10.0} pkt/s  loss {:.3} % ({} of {})\n\
         latency     one pass p50 {} µs  p99 {} µs  p99.9 {} µs; relay-to-relay p50 {} µs  p99 {} µs  p99.9 {} µs\n\
         server      {} per relayed datagram, {} wakeups per relayed datagram, {} kernel drops (tool: {})\n\
         load generator CPU {:.0} %",
        r.server,
        r.flows,
        r.rate,
        r.time_scale,
        r.duration_s,
        r.delivered_pps,
        r.loss_pct,
        r.sent - r.delivered,
        r.sent,
        r.latency_p50_us,
        r.latency_p99_us,
        r.latency_p999_us,
        r.r2r_p50_us,
        r.r2r_p99_us,
        r.r2r_p999_us,
        opt(r.server_us_per_relayed, " µs"),
        opt(r.server_wakeups_per_relayed, ""),
        cnt(r.server_drops),
        cnt(r.load_drops),
        r.load_cpu_pct,
    )
}
