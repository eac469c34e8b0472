//! The client's pipelined mode: Allocate, ChannelBind and Refresh(0) over
//! many nonblocking UDP sockets with a bounded window of requests in
//! flight, each retransmitted on a timer (the setup and teardown of `tern
//! load`). Messages come from [`codec`](super::codec) and the 401/438
//! handling from [`auth`](super::auth), as in the blocking client.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::auth::{Auth, Signed, Verdict};
use super::codec::{allocate_attrs, channel_bind_attrs, new_tid, relayed_addresses, write_request};
use crate::proto::stun::{AttrType, Message, MessageWriter, Method, TransactionId};

/// A request not answered within this long is sent again (same transaction id).
const RETRANSMIT: Duration = Duration::from_millis(500);
/// Sends per request before the whole run fails.
const MAX_SENDS: u32 = 6;
/// Fresh sockets tried per allocation after a 437 on its first Allocate.
const MAX_RESTARTS: u32 = 8;

/// What one socket asks the server, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Allocate { lifetime: u32 },
    ChannelBind { channel: u16, peer: SocketAddr },
    Delete,
}

/// One allocation being set up or torn down.
struct Job {
    sock: UdpSocket,
    steps: Vec<Step>,
    next: usize,
    tid: TransactionId,
    signed: Signed,
    req: Vec<u8>,
    sent_at: Instant,
    sends: u32,
    auth_retries: u32,
    restarts: u32,
    relay: Option<SocketAddr>,
}

impl Job {
    fn new(sock: UdpSocket, steps: Vec<Step>, now: Instant) -> Self {
        Self {
            sock,
            steps,
            next: 0,
            tid: TransactionId([0; 12]),
            signed: Signed::default(),
            req: Vec::new(),
            sent_at: now,
            sends: 0,
            auth_retries: 0,
            restarts: 0,
            relay: None,
        }
    }
}

/// Waits up to 50 ms until a job's socket is readable; `pollfds[k]` is
/// `active[k]`'s.
fn poll_readable(active: &[(usize, Job)], pollfds: &mut Vec<libc::pollfd>) -> anyhow::Result<()> {
    pollfds.clear();
    pollfds.extend(active.iter().map(|(_, j)| libc::pollfd {
        fd: j.sock.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }));
    // SAFETY: pollfds is a live array of `len` pollfd structs.
    let n = unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, 50) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e).context("poll");
        }
    }
    Ok(())
}

/// An established allocation with one channel.
#[derive(Debug)]
pub(crate) struct Alloc {
    /// Client socket, connected to the server.
    pub(crate) sock: UdpSocket,
    pub(crate) relay: SocketAddr,
    pub(crate) channel: u16,
}

/// What a [`Pipeline`] run produced.
pub(crate) struct Outcome {
    pub(crate) done: Vec<(UdpSocket, Option<SocketAddr>)>,
    pub(crate) elapsed: Duration,
}

/// Runs jobs with at most `window` in flight until all finish or `limit` passes.
pub(crate) struct Pipeline<'c> {
    server: SocketAddr,
    auth: &'c mut Auth,
    buf: Vec<u8>,
    /// Sockets that met a 437, held open until the pipeline is dropped.
    graveyard: Vec<UdpSocket>,
}

impl<'c> Pipeline<'c> {
    pub(crate) fn new(server: SocketAddr, auth: &'c mut Auth) -> Self {
        Self {
            server,
            auth,
            buf: Vec::with_capacity(512),
            graveyard: Vec::new(),
        }
    }

    /// A fresh client socket connected to the server.
    pub(crate) fn client_socket(&self) -> anyhow::Result<UdpSocket> {
        let bind: SocketAddr = if self.server.is_ipv4() {
            ([127, 0, 0, 1], 0).into()
        } else {
            (std::net::Ipv6Addr::LOCALHOST, 0).into()
        };
        let sock = UdpSocket::bind(bind).context("bind client socket")?;
        sock.connect(self.server).context("connect client socket")?;
        sock.set_nonblocking(true)?;
        Ok(sock)
    }

    /// Allocates on each socket (lifetime `lifetime` s) and binds channel
    /// `0x4000 + i % 4096` to `peers[i]`.
    pub(crate) fn allocate(
        &mut self,
        socks: Vec<UdpSocket>,
        peers: &[SocketAddr],
        lifetime: u32,
        window: usize,
        limit: Duration,
    ) -> anyhow::Result<(Vec<Alloc>, Duration)> {
        let jobs = socks
            .into_iter()
            .zip(peers)
            .enumerate()
            .map(|(i, (sock, &peer))| {
                let channel = 0x4000 + (i % 0x1000) as u16;
                (
                    sock,
                    vec![
                        Step::Allocate { lifetime },
                        Step::ChannelBind { channel, peer },
                    ],
                )
            })
            .collect();
        let out = self.run(jobs, window, limit)?;
        let allocs = out
            .done
            .into_iter()
            .enumerate()
            .map(|(i, (sock, relay))| Alloc {
                sock,
                // invariant: an Allocate step that succeeded set `relay`.
                relay: relay.expect("allocate succeeded without relay address"),
                channel: 0x4000 + (i % 0x1000) as u16,
            })
            .collect();
        Ok((allocs, out.elapsed))
    }

    /// Binds channel `binds[i].0` to peer `binds[i].1` on the allocation
    /// that `socks[i]` already holds (a second channel, e.g. to another
    /// allocation's relayed address).
    pub(crate) fn bind_channels(
        &mut self,
        socks: Vec<UdpSocket>,
        binds: &[(u16, SocketAddr)],
        window: usize,
        limit: Duration,
    ) -> anyhow::Result<Duration> {
        let jobs = socks
            .into_iter()
            .zip(binds)
            .map(|(s, &(channel, peer))| (s, vec![Step::ChannelBind { channel, peer }]))
            .collect();
        Ok(self.run(jobs, window, limit)?.elapsed)
    }

    /// Deletes the allocations (Refresh with LIFETIME 0).
    pub(crate) fn delete(
        &mut self,
        socks: Vec<UdpSocket>,
        window: usize,
        limit: Duration,
    ) -> anyhow::Result<Duration> {
        let jobs = socks.into_iter().map(|s| (s, vec![Step::Delete])).collect();
        Ok(self.run(jobs, window, limit)?.elapsed)
    }

    fn run(
        &mut self,
        jobs: Vec<(UdpSocket, Vec<Step>)>,
        window: usize,
        limit: Duration,
    ) -> anyhow::Result<Outcome> {
        let start = Instant::now();
        let total = jobs.len();
        let mut done: Vec<Option<(UdpSocket, Option<SocketAddr>)>> =
            (0..total).map(|_| None).collect();
        let mut queue = jobs.into_iter().enumerate();
        let mut active: Vec<(usize, Job)> = Vec::with_capacity(window);
        let mut finished = 0;
        let mut rbuf = [0u8; 2048];
        let mut pollfds: Vec<libc::pollfd> = Vec::with_capacity(window);
        while finished < total {
            if start.elapsed() > limit {
                bail!(
                    "{} of {total} allocations still pending after {limit:?}",
                    total - finished
                );
            }
            while active.len() < window.max(1) {
                let Some((i, (sock, steps))) = queue.next() else {
                    break;
                };
                let mut job = Job::new(sock, steps, start);
                self.send_step(&mut job)?;
                active.push((i, job));
            }
            poll_readable(&active, &mut pollfds)?;
            let now = Instant::now();
            let mut k = 0;
            while k < active.len() {
                let readable = pollfds.get(k).is_some_and(|p| p.revents != 0);
                if self.service(&mut active[k].1, readable, now, &mut rbuf)? {
                    let (i, job) = active.swap_remove(k);
                    pollfds.swap_remove(k);
                    done[i] = Some((job.sock, job.relay));
                    finished += 1;
                } else {
                    k += 1;
                }
            }
        }
        Ok(Outcome {
            // invariant: the loop ends only when every job finished.
            done: done.into_iter().map(|d| d.expect("job finished")).collect(),
            elapsed: start.elapsed(),
        })
    }

    /// Reads a readable job's socket, or retransmits its request when it
    /// is overdue; `Ok(true)` when the job's last step succeeded.
    fn service(
        &mut self,
        job: &mut Job,
        readable: bool,
        now: Instant,
        rbuf: &mut [u8],
    ) -> anyhow::Result<bool> {
        if readable {
            while let Ok(len) = job.sock.recv(rbuf) {
                if self.on_datagram(job, &rbuf[..len])? {
                    return Ok(true);
                }
            }
        } else if now.duration_since(job.sent_at) > RETRANSMIT {
            if job.sends >= MAX_SENDS {
                bail!("no answer from {} after {MAX_SENDS} sends", self.server);
            }
            let _ = job.sock.send(&job.req);
            job.sends += 1;
            job.sent_at = now;
        }
        Ok(false)
    }

    /// Handles one datagram; `Ok(true)` when the job's last step succeeded.
    fn on_datagram(&mut self, job: &mut Job, dgram: &[u8]) -> anyhow::Result<bool> {
        let Ok(msg) = Message::parse(dgram) else {
            return Ok(false); // ChannelData or junk
        };
        if msg.transaction_id() != job.tid {
            return Ok(false); // a late answer to a retransmitted request
        }
        let step = job.steps[job.next];
        match self.auth.judge(&msg, job.signed, job.auth_retries)? {
            Verdict::Success => {
                if let Step::Allocate { .. } = step {
                    job.relay = relayed_addresses(&msg)?.first().copied();
                }
                job.next += 1;
                job.auth_retries = 0;
                if job.next == job.steps.len() {
                    return Ok(true);
                }
                self.send_step(job)?;
                Ok(false)
            }
            Verdict::Retry => {
                job.auth_retries += 1;
                self.send_step(job)?;
                Ok(false)
            }
            // A Delete whose allocation is already gone (437) is done.
            Verdict::Failed { code: 437, .. } if step == Step::Delete => Ok(true),
            // 437 on the first Allocate: the kernel reused a local port
            // whose old 5-tuple the server still remembers (coturn keeps it
            // a while after Refresh(0)). Start over on a new socket.
            Verdict::Failed { code: 437, .. }
                if job.next == 0
                    && matches!(step, Step::Allocate { .. })
                    && job.restarts < MAX_RESTARTS =>
            {
                // Keep the old socket open so the kernel cannot hand its port out again.
                let old = std::mem::replace(&mut job.sock, self.client_socket()?);
                self.graveyard.push(old);
                job.restarts += 1;
                self.send_step(job)?;
                Ok(false)
            }
            Verdict::Failed { code, reason } => bail!("{step:?} failed: {code} {reason}"),
        }
    }

    /// Builds and sends the job's current step with a new transaction id.
    fn send_step(&mut self, job: &mut Job) -> anyhow::Result<()> {
        job.tid = new_tid();
        let step = job.steps[job.next];
        let method = match step {
            Step::Allocate { .. } => Method::ALLOCATE,
            Step::ChannelBind { .. } => Method::CHANNEL_BIND,
            Step::Delete => Method::REFRESH,
        };
        let add = |w: &mut MessageWriter<'_>| match step {
            Step::Allocate { lifetime } => allocate_attrs(w, Some(lifetime)),
            Step::ChannelBind { channel, peer } => channel_bind_attrs(w, channel, peer),
            Step::Delete => {
                w.push_u32(AttrType::LIFETIME, 0);
            }
        };
        job.signed = write_request(&mut self.buf, method, job.tid, &add, Some(self.auth));
        job.req.clear();
        job.req.extend_from_slice(&self.buf);
        job.sock
            .send(&job.req)
            .with_context(|| format!("send {step:?} to {}", self.server))?;
        job.sends = 1;
        job.sent_at = Instant::now();
        Ok(())
    }
}
