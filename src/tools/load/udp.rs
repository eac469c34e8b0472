//! Batched UDP for the load generator, through quinn-udp: the same layer
//! the server's driver uses (`crate::io::udp`). A burst leaves as one GSO
//! `sendmsg` (`UDP_SEGMENT`, up to the socket's segment limit); receives
//! are `recvmmsg` batches with GRO, split back into datagrams by stride.
//!
//! On a 2-core machine the load generator shares a core budget with the
//! server under test; one system call per packet would measure the tool,
//! not the server.

use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use quinn_udp::{BATCH_SIZE, RecvMeta, Transmit, UdpSockRef, UdpSocketState};

/// Largest GSO payload (IPv4 datagram limit minus headers, rounded down).
const GSO_MAX_BYTES: usize = 65_000;
/// Bytes per receive slot: one GRO-coalesced buffer.
const SLOT: usize = 65_536;

/// Requests a large kernel buffer; `SO_*BUFFORCE` needs CAP_NET_ADMIN, so
/// fall back to the capped variant.
pub(crate) fn set_buffers(sock: &UdpSocket, bytes: usize) {
    let fd = sock.as_raw_fd();
    let v = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    for (force, plain) in [
        (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
        (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
    ] {
        // SAFETY: fd is a live socket; the option value is a c_int on the stack.
        unsafe {
            let p = (&raw const v).cast();
            let len = size_of::<libc::c_int>() as libc::socklen_t;
            if libc::setsockopt(fd, libc::SOL_SOCKET, force, p, len) != 0 {
                libc::setsockopt(fd, libc::SOL_SOCKET, plain, p, len);
            }
        }
    }
}

/// A UDP socket with its quinn-udp state (GSO/GRO capabilities, fallbacks).
#[derive(Debug)]
pub(crate) struct BatchSocket {
    pub(crate) sock: UdpSocket,
    state: UdpSocketState,
}

impl BatchSocket {
    pub(crate) fn new(sock: UdpSocket) -> io::Result<Self> {
        let state = UdpSocketState::new(UdpSockRef::from(&sock))?;
        Ok(Self { sock, state })
    }

    /// Whether bursts can leave as one GSO send (quinn-udp turns it off for
    /// good if the kernel refuses it).
    pub(crate) fn gso(&self) -> bool {
        self.state.max_gso_segments() > 1
    }

    /// Sends `count` datagrams of `seg` bytes each, laid out back to back
    /// in `buf`, to `to`: GSO chunks when `gso`, else one datagram per
    /// send. Returns how many the kernel took (fewer when the socket buffer
    /// is full).
    pub(crate) fn send_burst(
        &self,
        to: SocketAddr,
        buf: &[u8],
        seg: usize,
        count: usize,
        gso: bool,
    ) -> usize {
        let max = if gso {
            self.state
                .max_gso_segments()
                .min((GSO_MAX_BYTES / seg).max(1))
        } else {
            1
        };
        let mut sent = 0;
        while sent < count {
            let chunk = (count - sent).min(max);
            let Some(contents) = buf.get(sent * seg..(sent + chunk) * seg) else {
                break;
            };
            let t = Transmit {
                destination: to,
                ecn: None,
                contents,
                segment_size: (chunk > 1).then_some(seg),
                src_ip: None,
            };
            if self
                .state
                .try_send(UdpSockRef::from(&self.sock), &t)
                .is_err()
            {
                break;
            }
            sent += chunk;
        }
        sent
    }
}

/// Reusable receive state: [`BATCH_SIZE`] slots of [`SLOT`] bytes.
pub(crate) struct Receiver {
    data: Box<[u8]>,
    meta: [RecvMeta; BATCH_SIZE],
}

impl Receiver {
    pub(crate) fn new() -> Self {
        Self {
            data: vec![0u8; SLOT * BATCH_SIZE].into_boxed_slice(),
            meta: [RecvMeta::default(); BATCH_SIZE],
        }
    }

    /// Receives up to [`BATCH_SIZE`] buffers without blocking; `Ok(0)` when
    /// nothing is queued.
    pub(crate) fn recv(&mut self, s: &BatchSocket) -> io::Result<usize> {
        let mut slices: [IoSliceMut<'_>; BATCH_SIZE] = {
            let mut chunks = self.data.chunks_mut(SLOT);
            std::array::from_fn(|_| IoSliceMut::new(chunks.next().unwrap_or_default()))
        };
        match s
            .state
            .recv(UdpSockRef::from(&s.sock), &mut slices, &mut self.meta)
        {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// The datagrams of buffer `i` of the last [`recv`](Self::recv): one,
    /// or several of one stride when GRO coalesced them.
    pub(crate) fn datagrams(&self, i: usize) -> impl Iterator<Item = &[u8]> {
        let m = &self.meta[i];
        let slot = &self.data[i * SLOT..i * SLOT + m.len.min(SLOT)];
        slot.chunks(m.stride.max(1))
    }
}
