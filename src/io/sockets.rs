//! Socket creation: listeners with SO_REUSEPORT (one per worker) and relay
//! sockets bound inside the relay port range.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;

use socket2::{Domain, Protocol, Socket, Type};

use crate::proto::turn::PortRequest;

/// Kernel buffer size asked for UDP listeners: every client of a worker
/// shares its listener's queue, ≈ 4,000 small datagrams (20 ms at 200k/s).
/// Without CAP_NET_ADMIN the kernel caps it at `net.core.rmem_max` /
/// `wmem_max` (the self-check warns when that is lower).
pub const LISTENER_BUFFER: usize = 4 << 20;

fn domain(addr: SocketAddr) -> Domain {
    if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    }
}

/// A UDP listener sharing its address with the other workers' listeners.
pub(crate) fn udp_listener(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let s = Socket::new(domain(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    force_buffers(&s, LISTENER_BUFFER);
    s.bind(&addr.into())?;
    Ok(s.into())
}

/// Sets both buffers to `bytes`: past `rmem_max`/`wmem_max` when tern may
/// (SO_RCVBUFFORCE needs CAP_NET_ADMIN), else as far as the limits allow.
fn force_buffers(s: &Socket, bytes: usize) {
    let forced = |opt: libc::c_int| {
        let v = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        // SAFETY: setsockopt reads one c_int through a valid pointer of the
        // length given, on a socket this function borrows.
        let rc = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(s),
                libc::SOL_SOCKET,
                opt,
                (&raw const v).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        rc == 0
    };
    if !forced(libc::SO_RCVBUFFORCE) {
        let _ = s.set_recv_buffer_size(bytes);
    }
    if !forced(libc::SO_SNDBUFFORCE) {
        let _ = s.set_send_buffer_size(bytes);
    }
}

/// A TCP listener sharing its address with the other workers' listeners.
pub(crate) fn tcp_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let s = Socket::new(domain(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    Ok(s.into())
}

fn bind_udp(ip: IpAddr, port: u16) -> io::Result<std::net::UdpSocket> {
    let addr = SocketAddr::new(ip, port);
    let s = Socket::new(domain(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

/// A relay socket (and, for EVEN-PORT with the R bit, the reserved next
/// port) in `range`. Tries ports from a pseudo-random start, at most
/// `MAX_TRIES` of them, so a nearly full range fails fast with 508.
pub(crate) fn relay_socket(
    ip: IpAddr,
    range: &RangeInclusive<u16>,
    req: PortRequest,
    seed: u64,
) -> io::Result<(std::net::UdpSocket, Option<std::net::UdpSocket>)> {
    const MAX_TRIES: u64 = 128;
    let (lo, hi) = (u64::from(*range.start()), u64::from(*range.end()));
    let span = hi - lo + 1;
    let start = seed % span;
    for i in 0..MAX_TRIES.min(span) {
        let port = lo + (start + i * 7919) % span; // a prime stride spreads the probes
        let Ok(port) = u16::try_from(port) else {
            continue;
        };
        match req {
            PortRequest::Any | PortRequest::Reserved(_) => {
                if let Ok(s) = bind_udp(ip, port) {
                    return Ok((s, None));
                }
            }
            PortRequest::Even { reserve } => {
                let reserve_next = reserve.is_some();
                if port % 2 != 0
                    || (reserve_next && port == u16::MAX)
                    || (reserve_next && u64::from(port) + 1 > hi)
                {
                    continue;
                }
                let Ok(s) = bind_udp(ip, port) else { continue };
                if !reserve_next {
                    return Ok((s, None));
                }
                if let Ok(next) = bind_udp(ip, port + 1) {
                    return Ok((s, Some(next)));
                }
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        "no free relay port in range",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As root (CI), the listener's queue passes `net.core.rmem_max`
    /// (Debian's default is 212,992 bytes, far below what is asked).
    #[test]
    fn listeners_get_the_whole_buffer_when_tern_may_force_it() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        let s = udp_listener("127.0.0.1:0".parse().unwrap()).unwrap();
        let got = socket2::SockRef::from(&s).recv_buffer_size().unwrap();
        assert!(
            got >= LISTENER_BUFFER,
            "receive buffer {got} < {LISTENER_BUFFER}"
        );
    }
}
