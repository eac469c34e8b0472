//! TCP client connections: a read buffer framed by `proto::framing`, a
//! bounded write queue, and the connection caps shared by all workers.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::proto::turn::{FiveTuple, Transport};

/// A client whose unsent data exceeds this is too slow: further relayed
/// data is dropped (as UDP would) and replies too, until it drains.
const MAX_WRITE_QUEUE: usize = 256 * 1024;

/// Total and per-IP TCP connection caps, shared by the workers (touched on
/// accept and close only).
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

    pub(crate) fn admit(&self, ip: IpAddr) -> bool {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (total, per_ip) = &mut *g;
        let n = per_ip.get(&ip).copied().unwrap_or(0);
        if *total >= self.max_total || n >= self.max_per_ip {
            return false;
        }
        *total += 1;
        per_ip.insert(ip, n + 1);
        true
    }

    pub(crate) fn release(&self, ip: IpAddr) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (total, per_ip) = &mut *g;
        *total = total.saturating_sub(1);
        if let Some(n) = per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&ip);
            }
        }
    }
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

pub(crate) struct Conn {
    stream: TcpStream,
    client: SocketAddr,
    local: SocketAddr,
    rbuf: Vec<u8>,
    max_frame: usize,
    wbuf: Vec<u8>,
    wants_write: bool,
    last_frame: Instant,
}

impl Conn {
    pub(crate) fn new(
        stream: TcpStream,
        client: SocketAddr,
        local: SocketAddr,
        max_frame: usize,
    ) -> Self {
        let _ = stream.set_nodelay(true);
        Self {
            stream,
            client,
            local,
            rbuf: Vec::with_capacity(max_frame),
            max_frame,
            wbuf: Vec::new(),
            wants_write: false,
            last_frame: Instant::now(),
        }
    }

    pub(crate) fn five(&self) -> FiveTuple {
        FiveTuple {
            client: self.client,
            server: self.local,
            transport: Transport::Tcp,
        }
    }

    pub(crate) fn last_frame(&self) -> Instant {
        self.last_frame
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

    pub(crate) fn put_rbuf(&mut self, rbuf: Vec<u8>, got_frame: bool) {
        self.rbuf = rbuf;
        if got_frame {
            self.last_frame = Instant::now();
        }
    }

    /// Reads what is available into `rbuf`, never holding more than two
    /// maximum frames (the rest waits in the kernel: backpressure).
    pub(crate) fn read_into(&mut self, rbuf: &mut Vec<u8>) -> io::Result<ReadState> {
        let cap = 2 * self.max_frame;
        let mut chunk = [0u8; 4096];
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

    /// Queues bytes and tries to send them; false if the connection failed.
    pub(crate) fn queue(&mut self, data: &[u8], r: &Registry, t: Token) -> bool {
        if self.wbuf.len() + data.len() > MAX_WRITE_QUEUE {
            return true; // dropped: the client does not keep up
        }
        self.wbuf.extend_from_slice(data);
        self.flush(r, t)
    }

    /// Writes as much of the queue as the socket takes; false on error.
    pub(crate) fn flush(&mut self, r: &Registry, t: Token) -> bool {
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
