//! TCP and TLS client connections: a read buffer framed by
//! `proto::framing`, a bounded write queue, and the connection caps shared
//! by all workers.
//!
//! TLS is a stream variant inside [`Conn`], not a separate connection
//! type: rustls' `ServerConnection` is sans-IO, so ciphertext is read from
//! the socket into it and plaintext out of it into the same read buffer
//! plain TCP uses, and replies are encrypted into the same write queue.
//! Framing, limits, timeouts and closing are therefore shared.
//!
//! Before the stream proper, a connection may be in the PROXY phase: on a
//! PROXY listener, a trusted source must send a header first (its client
//! address replaces the TCP peer's), and an untrusted one is closed if it
//! sends one. Both phases and the TLS handshake must finish within
//! `limits.tcp_handshake_timeout_secs`.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use rustls::{ServerConfig, ServerConnection};

use crate::admin::metrics::QuotaKind;
use crate::proto::proxy_protocol::{self, Parsed};
use crate::proto::turn::{FiveTuple, Transport};

/// A client whose unsent data exceeds this is too slow: further relayed
/// data is dropped (as UDP would) and replies too, until it drains.
const MAX_WRITE_QUEUE: usize = 256 * 1024;

/// Total and per-IP TCP connection caps, shared by the workers (touched on
/// accept, PROXY header and close only). A connection from a trusted PROXY
/// sender holds only a total slot until its header names the client, which
/// then takes the per-IP slot (see [`Conn::limit_ip`]): the proxy's own IP
/// is not a client and must not run out of slots.
#[derive(Debug)]
pub(crate) struct ConnLimits {
    max_total: usize,
    max_per_ip: usize,
    inner: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

impl ConnLimits {
    pub(crate) fn new(max_total: usize, max_per_ip: usize) -> Self {
        Self {
            max_total,
            max_per_ip,
            inner: Mutex::new((0, HashMap::new())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, HashMap<IpAddr, usize>)> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a total slot and, for `Some(ip)`, a per-IP slot; the error
    /// names the cap that refused (the `kind` of
    /// `tern_quota_rejections_total`).
    pub(crate) fn admit(&self, ip: Option<IpAddr>) -> Result<(), QuotaKind> {
        let mut g = self.lock();
        let (total, per_ip) = &mut *g;
        if *total >= self.max_total {
            return Err(QuotaKind::TcpConnections);
        }
        if let Some(ip) = ip {
            take_ip(per_ip, ip, self.max_per_ip)?;
        }
        *total += 1;
        Ok(())
    }

    /// Takes a per-IP slot for `ip` on a connection that holds a total slot
    /// already (the client a PROXY header named).
    pub(crate) fn admit_ip(&self, ip: IpAddr) -> Result<(), QuotaKind> {
        take_ip(&mut self.lock().1, ip, self.max_per_ip)
    }

    /// Gives back what [`Self::admit`] (and [`Self::admit_ip`]) took:
    /// `ip` is the connection's [`Conn::limit_ip`].
    pub(crate) fn release(&self, ip: Option<IpAddr>) {
        let mut g = self.lock();
        let (total, per_ip) = &mut *g;
        *total = total.saturating_sub(1);
        if let Some(ip) = ip
            && let Some(n) = per_ip.get_mut(&ip)
        {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&ip);
            }
        }
    }
}

fn take_ip(per_ip: &mut HashMap<IpAddr, usize>, ip: IpAddr, max: usize) -> Result<(), QuotaKind> {
    let n = per_ip.get(&ip).copied().unwrap_or(0);
    if n >= max {
        return Err(QuotaKind::TcpConnectionsPerIp);
    }
    per_ip.insert(ip, n + 1);
    Ok(())
}

/// Why a read stopped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ReadState {
    /// The kernel has nothing more for now.
    Drained,
    /// The buffer is full: read again after framing.
    Full,
    /// The client closed its side.
    Closed,
}

/// What a stream listener does with a new connection.
#[derive(Clone, Debug)]
pub(crate) struct ListenerKind {
    /// TLS configuration for a TLS listener; `None` for plain TCP.
    pub(crate) tls: Option<Arc<ServerConfig>>,
    /// Whether trusted sources send a PROXY header first.
    pub(crate) proxy: bool,
}

/// Where a connection stands with respect to the PROXY protocol.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ProxyPhase {
    /// A trusted source on a PROXY listener: a header must come first.
    Expect,
    /// An untrusted source on a PROXY listener: a header closes it.
    Refuse,
    /// The stream proper (also: not a PROXY listener).
    Done,
}

pub(crate) struct Conn {
    stream: TcpStream,
    /// The client: the TCP peer, or the address a trusted proxy reported.
    client: SocketAddr,
    local: SocketAddr,
    tls: Option<Box<ServerConnection>>,
    proxy: ProxyPhase,
    /// Raw bytes read during the PROXY phase (at most `MAX_HEADER_LEN` + a read).
    pre: Vec<u8>,
    /// A client address reported by the proxy, not yet applied by the worker.
    reported: Option<SocketAddr>,
    /// The IP holding a per-IP slot in `ConnLimits` for this connection.
    limit_ip: Option<IpAddr>,
    rbuf: Vec<u8>,
    max_frame: usize,
    wbuf: Vec<u8>,
    wants_write: bool,
    accepted: Instant,
    last_frame: Instant,
}

impl Conn {
    pub(crate) fn new(
        stream: TcpStream,
        client: SocketAddr,
        local: SocketAddr,
        max_frame: usize,
        tls: Option<ServerConnection>,
        proxy: ProxyPhase,
        now: Instant,
    ) -> Self {
        let _ = stream.set_nodelay(true);
        let tls = tls.map(|mut t| {
            // The write queue below is the bound (MAX_WRITE_QUEUE); rustls
            // must take whole frames so a partial write never splits one.
            t.set_buffer_limit(None);
            Box::new(t)
        });
        Self {
            stream,
            client,
            local,
            tls,
            proxy,
            pre: Vec::new(),
            reported: None,
            // A trusted PROXY sender is exempt until its header arrives.
            limit_ip: (proxy != ProxyPhase::Expect).then_some(client.ip()),
            rbuf: Vec::with_capacity(max_frame),
            max_frame,
            wbuf: Vec::new(),
            wants_write: false,
            accepted: now,
            last_frame: now,
        }
    }

    pub(crate) fn five(&self) -> FiveTuple {
        FiveTuple {
            client: self.client,
            server: self.local,
            transport: if self.tls.is_some() {
                Transport::Tls
            } else {
                Transport::Tcp
            },
        }
    }

    /// Bytes queued for the client and not yet written.
    pub(crate) fn pending_write(&self) -> usize {
        self.wbuf.len()
    }

    pub(crate) fn last_frame(&self) -> Instant {
        self.last_frame
    }

    /// True while the PROXY header or the TLS handshake is still due, and
    /// `timeout` has passed since accept.
    pub(crate) fn handshake_expired(&self, now: Instant, timeout: Duration) -> bool {
        let pending =
            self.proxy != ProxyPhase::Done || self.tls.as_ref().is_some_and(|t| t.is_handshaking());
        pending && now.saturating_duration_since(self.accepted) > timeout
    }

    /// The client address a PROXY header reported, once; the worker checks
    /// the limits and its map, then calls [`Self::set_client`].
    pub(crate) fn take_reported(&mut self) -> Option<SocketAddr> {
        self.reported.take()
    }

    pub(crate) fn set_client(&mut self, client: SocketAddr) {
        self.client = client;
    }

    /// The IP whose per-IP connection slot this connection holds: the TCP
    /// peer's, or the client a PROXY header named; `None` for a trusted
    /// PROXY sender whose header has not named one (yet, or ever: LOCAL).
    pub(crate) fn limit_ip(&self) -> Option<IpAddr> {
        self.limit_ip
    }

    pub(crate) fn set_limit_ip(&mut self, ip: IpAddr) {
        self.limit_ip = Some(ip);
    }

    pub(crate) fn register(&mut self, r: &Registry, t: Token) -> io::Result<()> {
        r.register(&mut self.stream, t, Interest::READABLE)
    }

    pub(crate) fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        r.deregister(&mut self.stream)
    }

    pub(crate) fn take_rbuf(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.rbuf)
    }

    /// Gives the read buffer back; `frame_at` is when a whole frame was
    /// last taken from it (the idle timer restarts), if one was.
    pub(crate) fn put_rbuf(&mut self, rbuf: Vec<u8>, frame_at: Option<Instant>) {
        self.rbuf = rbuf;
        if let Some(t) = frame_at {
            self.last_frame = t;
        }
    }

    /// Ends the connection from our side: for TLS a close_notify alert
    /// (RFC 8446 §6.1, so the client can tell our close from a truncation),
    /// then whatever is queued is written as far as the socket takes it
    /// without blocking. The socket closes when the `Conn` is dropped.
    pub(crate) fn close(&mut self) {
        if let Some(tls) = &mut self.tls {
            tls.send_close_notify();
            while tls.wants_write() {
                // Into a Vec: cannot fail or block.
                if tls.write_tls(&mut self.wbuf).is_err() {
                    break;
                }
            }
        }
        while !self.wbuf.is_empty() {
            match self.stream.write(&self.wbuf) {
                Ok(0) => break,
                Ok(n) => {
                    self.wbuf.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }

    /// Reads what is available into `rbuf` (plaintext for TLS), never
    /// holding more than two maximum frames (the rest waits in the kernel:
    /// backpressure). Handles the PROXY phase first. An error closes.
    pub(crate) fn read_into(&mut self, rbuf: &mut Vec<u8>) -> io::Result<ReadState> {
        if self.proxy != ProxyPhase::Done
            && let Some(state) = self.read_proxy_phase(rbuf)?
        {
            return Ok(state);
        }
        let cap = 2 * self.max_frame;
        let mut chunk = [0u8; 4096];
        if let Some(tls) = &mut self.tls {
            return read_tls(tls, &mut self.stream, rbuf, cap, &mut self.wbuf);
        }
        loop {
            let room = cap.saturating_sub(rbuf.len()).min(chunk.len());
            if room == 0 {
                return Ok(ReadState::Full);
            }
            match self.stream.read(&mut chunk[..room]) {
                Ok(0) => return Ok(ReadState::Closed),
                Ok(n) => rbuf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(ReadState::Drained),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads raw bytes until the PROXY phase is decided. `Some(state)`:
    /// stop here; `None`: the phase is over and the bytes after the header
    /// went on to the stream (into `rbuf`, or into the TLS session).
    fn read_proxy_phase(&mut self, rbuf: &mut Vec<u8>) -> io::Result<Option<ReadState>> {
        let refused = |why: String| io::Error::new(ErrorKind::InvalidData, why);
        loop {
            let header_len = match self.proxy {
                ProxyPhase::Expect => match proxy_protocol::parse(&self.pre) {
                    Ok(Parsed::Incomplete) => None,
                    Ok(Parsed::Header(h)) => {
                        self.reported = h.source;
                        Some(h.len)
                    }
                    Err(e) => return Err(refused(format!("bad PROXY header: {e}"))),
                },
                ProxyPhase::Refuse => match proxy_protocol::starts_like_header(&self.pre) {
                    Some(true) => {
                        return Err(refused("PROXY header from an untrusted source".into()));
                    }
                    Some(false) => Some(0),
                    None => None,
                },
                ProxyPhase::Done => Some(0),
            };
            if let Some(len) = header_len {
                self.proxy = ProxyPhase::Done;
                let rest = self.pre.split_off(len.min(self.pre.len()));
                self.pre = Vec::new();
                match &mut self.tls {
                    None => rbuf.extend_from_slice(&rest),
                    Some(tls) => feed_tls(tls, &rest, &mut self.wbuf)?,
                }
                return Ok(None);
            }
            // `parse` decides by MAX_HEADER_LEN bytes, so this never reads past it.
            let mut chunk = [0u8; 512];
            let room = proxy_protocol::MAX_HEADER_LEN
                .saturating_sub(self.pre.len())
                .clamp(1, chunk.len());
            match self.stream.read(&mut chunk[..room]) {
                Ok(0) => return Ok(Some(ReadState::Closed)),
                Ok(n) => self.pre.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    return Ok(Some(ReadState::Drained));
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Queues bytes and tries to send them; false if the connection failed.
    pub(crate) fn queue(&mut self, data: &[u8], r: &Registry, t: Token) -> bool {
        if self.wbuf.len() + data.len() > MAX_WRITE_QUEUE {
            return true; // dropped: the client does not keep up
        }
        match &mut self.tls {
            None => self.wbuf.extend_from_slice(data),
            // Unlimited buffer (see `new`): takes the whole frame.
            Some(tls) => {
                if tls.writer().write_all(data).is_err() {
                    return false;
                }
            }
        }
        self.flush(r, t)
    }

    /// Writes as much of the queue (and of pending TLS records) as the
    /// socket takes; false on error.
    pub(crate) fn flush(&mut self, r: &Registry, t: Token) -> bool {
        if let Some(tls) = &mut self.tls {
            while tls.wants_write() {
                // Into a Vec: cannot fail or block.
                if tls.write_tls(&mut self.wbuf).is_err() {
                    return false;
                }
            }
        }
        while !self.wbuf.is_empty() {
            match self.stream.write(&self.wbuf) {
                Ok(0) => return false,
                Ok(n) => {
                    self.wbuf.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        let want = !self.wbuf.is_empty();
        if want != self.wants_write {
            self.wants_write = want;
            let interest = if want {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if r.reregister(&mut self.stream, t, interest).is_err() {
                return false;
            }
        }
        true
    }
}

/// Reads ciphertext from `stream` into the session and plaintext out of it
/// into `rbuf` (up to `cap`). Plaintext is drained before more ciphertext
/// is read, so rustls' own buffers stay small.
fn read_tls(
    tls: &mut ServerConnection,
    stream: &mut TcpStream,
    rbuf: &mut Vec<u8>,
    cap: usize,
    wbuf: &mut Vec<u8>,
) -> io::Result<ReadState> {
    let mut chunk = [0u8; 4096];
    loop {
        loop {
            let room = cap.saturating_sub(rbuf.len()).min(chunk.len());
            if room == 0 {
                return Ok(ReadState::Full);
            }
            match tls.reader().read(&mut chunk[..room]) {
                Ok(0) => return Ok(ReadState::Closed), // close_notify
                Ok(n) => rbuf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        match tls.read_tls(stream) {
            Ok(0) => return Ok(ReadState::Closed),
            Ok(_) => process(tls, wbuf)?,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(ReadState::Drained),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Gives bytes already read from the socket (after a PROXY header) to the
/// TLS session. At most `MAX_HEADER_LEN` + one read, so no plaintext limit
/// is hit here; the plaintext is picked up by the next `read_tls`.
fn feed_tls(tls: &mut ServerConnection, mut bytes: &[u8], wbuf: &mut Vec<u8>) -> io::Result<()> {
    while !bytes.is_empty() {
        if tls.read_tls(&mut bytes)? == 0 {
            break;
        }
        process(tls, wbuf)?;
    }
    Ok(())
}

/// Runs the TLS state machine; on a protocol error, queues the alert rustls
/// prepared (best effort) and fails.
fn process(tls: &mut ServerConnection, wbuf: &mut Vec<u8>) -> io::Result<()> {
    if let Err(e) = tls.process_new_packets() {
        let _ = tls.write_tls(wbuf);
        return Err(io::Error::new(ErrorKind::InvalidData, e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_refuse_by_kind_and_proxies_hold_no_per_ip_slot() {
        let l = ConnLimits::new(3, 1);
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        assert_eq!(l.admit(Some(a)), Ok(()));
        assert_eq!(l.admit(Some(a)), Err(QuotaKind::TcpConnectionsPerIp));
        // A trusted proxy's connection: total only, then its client's slot.
        assert_eq!(l.admit(None), Ok(()));
        assert_eq!(l.admit_ip(a), Err(QuotaKind::TcpConnectionsPerIp));
        assert_eq!(l.admit_ip(b), Ok(()));
        assert_eq!(l.admit(None), Ok(()));
        assert_eq!(l.admit(None), Err(QuotaKind::TcpConnections));
        // Releases give back exactly what was taken.
        l.release(Some(b));
        l.release(None);
        assert_eq!(l.admit(Some(b)), Ok(()));
        l.release(Some(a));
        assert_eq!(l.admit(Some(a)), Ok(()));
        assert_eq!(l.admit(None), Ok(()));
        assert_eq!(l.admit(Some(b)), Err(QuotaKind::TcpConnections));
    }
}
