//! Batched UDP: `recvmmsg` with GRO on receive (via `quinn-udp`), and on
//! send, runs of datagrams to the same destination with the same size
//! leave as one UDP GSO `sendmsg` (up to 64 segments). Relaying spends its
//! time in the kernel; batching is what gets past the per-syscall cost.

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;

use mio::net::UdpSocket;
use quinn_udp::{BATCH_SIZE, RecvMeta, Transmit, UdpSockRef, UdpSocketState};

use super::socket_id::SocketId;
use crate::proto::turn::{HEADROOM, TAILROOM};

/// A socket and its batching state.
pub(crate) struct Sock {
    pub(crate) sock: UdpSocket,
    state: UdpSocketState,
}

impl Sock {
    pub(crate) fn new(sock: std::net::UdpSocket) -> io::Result<Self> {
        let state = UdpSocketState::new(UdpSockRef::from(&sock))?;
        Ok(Self {
            sock: UdpSocket::from_std(sock),
            state,
        })
    }

    /// Receives up to [`BATCH_SIZE`] buffers (each possibly GRO-coalesced),
    /// each behind [`HEADROOM`] bytes of its slot.
    pub(crate) fn recv(&self, bufs: &mut RecvBufs) -> io::Result<usize> {
        let mut slices: [IoSliceMut<'_>; BATCH_SIZE] = {
            let mut chunks = bufs.data.chunks_mut(SLOT);
            std::array::from_fn(|_| {
                let slot = chunks.next().unwrap_or_default();
                IoSliceMut::new(
                    slot.get_mut(HEADROOM..HEADROOM + RECV_MAX)
                        .unwrap_or_default(),
                )
            })
        };
        self.state
            .recv(UdpSockRef::from(&self.sock), &mut slices, &mut bufs.meta)
    }

    /// Sends `contents` (one datagram, or several of `segment` bytes each).
    pub(crate) fn send(
        &self,
        to: SocketAddr,
        src_ip: Option<IpAddr>,
        contents: &[u8],
        segment: Option<usize>,
    ) {
        let t = Transmit {
            destination: to,
            ecn: None,
            contents,
            segment_size: segment,
            src_ip,
        };
        // A full socket buffer drops, as a router would; quinn-udp logs
        // other errors at a bounded rate.
        let _ = self.state.try_send(UdpSockRef::from(&self.sock), &t);
    }

    pub(crate) fn max_gso_segments(&self) -> usize {
        self.state.max_gso_segments()
    }
}

/// Bytes one receive takes: any UDP datagram, or 64 GRO segments of
/// ordinary media.
const RECV_MAX: usize = 65_536;

/// Bytes per receive slot: the received bytes sit behind [`HEADROOM`] and
/// before [`TAILROOM`], so the core can frame a lone peer datagram in place
/// (ChannelData header or Data indication) without copying it.
pub(crate) const SLOT: usize = HEADROOM + RECV_MAX + TAILROOM;

/// Receive buffers and metadata for one `recvmmsg` batch.
pub(crate) struct RecvBufs {
    pub(crate) data: Box<[u8]>,
    pub(crate) meta: [RecvMeta; BATCH_SIZE],
}

impl RecvBufs {
    pub(crate) fn new() -> Self {
        Self {
            data: vec![0u8; SLOT * BATCH_SIZE].into_boxed_slice(),
            meta: [RecvMeta::default(); BATCH_SIZE],
        }
    }

    /// The datagrams of buffer `i`, one per GRO segment.
    pub(crate) fn datagrams(&self, i: usize) -> impl Iterator<Item = &[u8]> {
        let m = &self.meta[i];
        let start = i * SLOT + HEADROOM;
        let slot = &self.data[start..start + m.len.min(RECV_MAX)];
        slot.chunks(m.stride.max(1))
    }

    /// Buffer `i` as one datagram in its whole slot, with the range of the
    /// datagram, when it holds exactly one (not GRO-coalesced): the core can
    /// then write around it in the headroom and tailroom.
    #[inline]
    pub(crate) fn single(&mut self, i: usize) -> Option<(&mut [u8], Range<usize>)> {
        let m = &self.meta[i];
        let len = m.len.min(RECV_MAX);
        if m.stride < len {
            return None;
        }
        let slot = self.data.get_mut(i * SLOT..(i + 1) * SLOT)?;
        Some((slot, HEADROOM..HEADROOM + len))
    }
}

/// Largest total a GSO send may carry (IPv4 UDP payload limit).
const GSO_MAX_BYTES: usize = 65_000;

/// Where a batch goes: which socket, which address, from which source IP.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Dest {
    /// The sending socket: a UDP listener or a relay socket.
    pub(crate) sock: SocketId,
    pub(crate) to: SocketAddr,
    pub(crate) src_ip: Option<IpAddr>,
}

/// Collects datagrams to one destination until the run breaks, so they can
/// leave as one GSO send. No allocation after construction.
pub(crate) struct SendBatch {
    buf: Vec<u8>,
    dest: Option<Dest>,
    segment: usize,
    count: usize,
    /// The last datagram was shorter than `segment`: nothing may follow it.
    closed: bool,
}

impl SendBatch {
    pub(crate) fn new() -> Self {
        Self {
            buf: Vec::with_capacity(GSO_MAX_BYTES + 2048),
            dest: None,
            segment: 0,
            count: 0,
            closed: false,
        }
    }

    /// True if `len` bytes to `dest` can join the current batch.
    pub(crate) fn fits(&self, dest: &Dest, len: usize, max_segments: usize) -> bool {
        self.dest.as_ref() == Some(dest)
            && !self.closed
            && len <= self.segment
            && self.count < max_segments
            && self.buf.len() + len <= GSO_MAX_BYTES
    }

    /// Starts a new batch (the caller flushed the old one).
    pub(crate) fn start(&mut self, dest: Dest, datagram: &[u8]) {
        self.buf.clear();
        self.buf.extend_from_slice(datagram);
        self.dest = Some(dest);
        self.segment = datagram.len();
        self.count = 1;
        self.closed = false;
    }

    pub(crate) fn push(&mut self, datagram: &[u8]) {
        self.buf.extend_from_slice(datagram);
        self.count += 1;
        self.closed = datagram.len() < self.segment;
    }

    /// Takes the pending batch: destination, bytes, segment size (if several).
    pub(crate) fn take(&mut self) -> Option<(Dest, &[u8], Option<usize>)> {
        let dest = self.dest.take()?;
        let seg = (self.count > 1).then_some(self.segment);
        Some((dest, &self.buf, seg))
    }
}
