//! Batched UDP system calls for the load generator: GSO sends
//! (`sendmsg` with a `UDP_SEGMENT` control message), `sendmmsg` as the
//! fallback, and `recvmmsg` receives.
//!
//! On a 2-core machine the load generator shares a core budget with the
//! server under test; one system call per packet would measure the tool,
//! not the server. GSO hands the kernel one buffer of `n` equal segments in
//! one call (Linux ≥ 4.18, `udp(7)`).

use std::io;
use std::mem;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;

/// `UDP_SEGMENT` from `linux/udp.h` (not exported by every libc target).
const UDP_SEGMENT: libc::c_int = 103;
/// Most segments one GSO send may carry (`UDP_MAX_SEGMENTS`, 64 on older kernels).
pub(crate) const GSO_MAX_SEGMENTS: usize = 64;
/// Largest GSO payload (IPv4 datagram limit minus headers, rounded down).
const GSO_MAX_BYTES: usize = 65_000;
/// Datagrams per `recvmmsg`/`sendmmsg` call.
pub(crate) const BATCH: usize = 64;
/// Receive buffer per datagram: room for 1,500-byte payloads and headers.
pub(crate) const RECV_BUF: usize = 2_048;

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

/// How bursts leave the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SendMode {
    /// One `sendmsg` with `UDP_SEGMENT` per burst.
    Gso,
    /// One `sendmmsg` per burst.
    Mmsg,
}

/// Sends `count` datagrams of `seg` bytes each, laid out back to back in
/// `buf`, on a connected socket. Returns how many datagrams the kernel
/// took (fewer when the socket buffer is full). Switches `mode` to `Mmsg`
/// for good if the kernel refuses GSO.
pub(crate) fn send_burst(
    sock: &UdpSocket,
    mode: &mut SendMode,
    buf: &[u8],
    seg: usize,
    count: usize,
) -> usize {
    debug_assert!(buf.len() >= seg * count);
    if count == 1 {
        // SAFETY: fd is live; buf[..seg] is initialised memory.
        let n = unsafe { libc::send(sock.as_raw_fd(), buf.as_ptr().cast(), seg, 0) };
        return usize::from(n >= 0);
    }
    let mut sent = 0;
    while sent < count {
        let chunk = match *mode {
            SendMode::Gso => (count - sent)
                .min(GSO_MAX_SEGMENTS)
                .min((GSO_MAX_BYTES / seg).max(1)),
            SendMode::Mmsg => (count - sent).min(BATCH),
        };
        let part = &buf[sent * seg..(sent + chunk) * seg];
        let r = match *mode {
            SendMode::Gso => gso_send(sock, part, seg),
            SendMode::Mmsg => mmsg_send(sock, part, seg),
        };
        match r {
            Ok(n) => {
                sent += n;
                if n < chunk {
                    break;
                }
            }
            Err(e) if *mode == SendMode::Gso && gso_unsupported(&e) => {
                *mode = SendMode::Mmsg;
            }
            Err(_) => break,
        }
    }
    sent
}

fn gso_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EIO | libc::EINVAL | libc::ENOPROTOOPT | libc::EOPNOTSUPP)
    )
}

/// One GSO `sendmsg`: all segments or none.
fn gso_send(sock: &UdpSocket, part: &[u8], seg: usize) -> io::Result<usize> {
    if part.len() == seg {
        // A single segment needs no cmsg (and some kernels reject gso_size == len).
        // SAFETY: fd is live; part is initialised memory.
        let n = unsafe { libc::send(sock.as_raw_fd(), part.as_ptr().cast(), seg, 0) };
        return if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(1)
        };
    }
    let seg16 = u16::try_from(seg).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // Control buffer: one cmsghdr carrying a u16, aligned for cmsghdr.
    let mut control = [0u64; 4];
    let mut iov = libc::iovec {
        iov_base: part.as_ptr().cast_mut().cast(),
        iov_len: part.len(),
    };
    // SAFETY: msghdr is plain data; zeroed is a valid empty header.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is a pure size computation.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(size_of::<u16>() as u32) } as _;
    // SAFETY: msg_control points at 32 bytes, enough for CMSG_SPACE(2) = 24;
    // CMSG_FIRSTHDR is therefore non-null and CMSG_DATA lies inside it.
    unsafe {
        let cm = libc::CMSG_FIRSTHDR(&raw const msg);
        (*cm).cmsg_level = libc::SOL_UDP;
        (*cm).cmsg_type = UDP_SEGMENT;
        (*cm).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cm).cast::<u16>(), seg16);
    }
    // SAFETY: msg points at live iovec and control buffers for the call.
    let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &raw const msg, 0) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(part.len() / seg)
    }
}

/// One `sendmmsg` of up to [`BATCH`] datagrams.
fn mmsg_send(sock: &UdpSocket, part: &[u8], seg: usize) -> io::Result<usize> {
    let count = part.len() / seg;
    let mut iovs: [libc::iovec; BATCH] = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; BATCH];
    // SAFETY: mmsghdr is plain data; zeroed is valid.
    let mut msgs: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
    for i in 0..count {
        iovs[i].iov_base = part[i * seg..].as_ptr().cast_mut().cast();
        iovs[i].iov_len = seg;
        msgs[i].msg_hdr.msg_iov = &raw mut iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: the headers point at live iovecs over `part` for the call.
    let n = unsafe {
        libc::sendmmsg(
            sock.as_raw_fd(),
            msgs.as_mut_ptr(),
            count as libc::c_uint,
            0,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Reusable `recvmmsg` state: [`BATCH`] buffers of [`RECV_BUF`] bytes.
pub(crate) struct Receiver {
    bufs: Vec<u8>,
    lens: [usize; BATCH],
}

impl Receiver {
    pub(crate) fn new() -> Self {
        Self {
            bufs: vec![0; BATCH * RECV_BUF],
            lens: [0; BATCH],
        }
    }

    /// Receives up to [`BATCH`] datagrams without blocking; `Ok(0)` when
    /// nothing is queued.
    pub(crate) fn recv(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        let mut iovs: [libc::iovec; BATCH] = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; BATCH];
        // SAFETY: mmsghdr is plain data; zeroed is valid.
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
        let base = self.bufs.as_mut_ptr();
        for i in 0..BATCH {
            // SAFETY: i * RECV_BUF + RECV_BUF <= bufs.len().
            iovs[i].iov_base = unsafe { base.add(i * RECV_BUF) }.cast();
            iovs[i].iov_len = RECV_BUF;
            msgs[i].msg_hdr.msg_iov = &raw mut iovs[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: the headers point at live iovecs over `self.bufs`.
        let n = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                msgs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::WouldBlock {
                Ok(0)
            } else {
                Err(e)
            };
        }
        let n = n as usize;
        for (len, m) in self.lens.iter_mut().zip(&msgs[..n]) {
            *len = m.msg_len as usize;
        }
        Ok(n)
    }

    /// The `i`th datagram of the last [`recv`](Self::recv).
    pub(crate) fn datagram(&self, i: usize) -> &[u8] {
        &self.bufs[i * RECV_BUF..i * RECV_BUF + self.lens[i].min(RECV_BUF)]
    }
}
