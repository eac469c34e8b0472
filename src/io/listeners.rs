//! Binding every listener once per worker: the first worker's socket fixes
//! the port (port 0 becomes a real one), the others join it with
//! SO_REUSEPORT, so the kernel spreads clients over workers.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use super::{sockets, tcp, tls};
use crate::settings::Settings;

/// One worker's UDP listeners and stream (TCP/TLS) listeners.
pub(super) type WorkerListeners = (
    Vec<(std::net::UdpSocket, SocketAddr)>,
    Vec<(std::net::TcpListener, SocketAddr, tcp::ListenerKind)>,
);

/// Every listener, bound, and the real addresses.
pub(super) struct Listeners {
    pub(super) udp: Vec<SocketAddr>,
    pub(super) tcp: Vec<SocketAddr>,
    pub(super) tls: Vec<SocketAddr>,
    pub(super) certs: Option<Arc<tls::CertResolver>>,
    pub(super) per_worker: Vec<WorkerListeners>,
}

impl Listeners {
    /// Binds the UDP, TCP and TLS listeners of `settings` for `workers` workers.
    pub(super) fn bind(settings: &Settings, workers: usize) -> io::Result<Self> {
        // A TCP listener on the same address as a UDP one takes the UDP
        // port when it can.
        let (udp_addrs, per_worker_udp) = udp_listeners(settings, workers)?;
        let mut tcp_addrs = Vec::new();
        let mut per_worker_tcp: Vec<Vec<(std::net::TcpListener, SocketAddr, tcp::ListenerKind)>> =
            (0..workers).map(|_| Vec::new()).collect();
        let proxied = |a: &SocketAddr| settings.proxy_protocol.listen.contains(a);
        for addr in &settings.tcp_listen {
            let mut want = *addr;
            if want.port() == 0
                && let Some(u) = udp_addrs.iter().find(|u| u.ip() == want.ip())
            {
                want.set_port(u.port());
            }
            let kind = tcp::ListenerKind {
                tls: None,
                proxy: proxied(addr),
            };
            let real = match stream_listeners(want, "TCP", &kind, &mut per_worker_tcp) {
                Ok(r) => r,
                Err(_) if want != *addr => {
                    stream_listeners(*addr, "TCP", &kind, &mut per_worker_tcp)?
                }
                Err(e) => return Err(e),
            };
            tcp_addrs.push(real);
        }
        let mut tls_addrs = Vec::new();
        let certs = match &settings.tls {
            Some(t) => {
                let resolver = Arc::new(
                    tls::CertResolver::new(&t.cert, &t.key)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?,
                );
                let config = tls::server_config(Arc::clone(&resolver)).map_err(io::Error::other)?;
                for addr in &t.listen {
                    let kind = tcp::ListenerKind {
                        tls: Some(Arc::clone(&config)),
                        proxy: proxied(addr),
                    };
                    tls_addrs.push(stream_listeners(*addr, "TLS", &kind, &mut per_worker_tcp)?);
                }
                Some(resolver)
            }
            None => None,
        };
        Ok(Self {
            udp: udp_addrs,
            tcp: tcp_addrs,
            tls: tls_addrs,
            certs,
            per_worker: per_worker_udp.into_iter().zip(per_worker_tcp).collect(),
        })
    }
}

/// The UDP listeners: real addresses, and each worker's sockets.
#[allow(clippy::type_complexity, reason = "used once, named by its parts")]
fn udp_listeners(
    settings: &Settings,
    workers: usize,
) -> io::Result<(Vec<SocketAddr>, Vec<Vec<(std::net::UdpSocket, SocketAddr)>>)> {
    let mut udp_addrs = Vec::new();
    let mut per_worker_udp: Vec<Vec<(std::net::UdpSocket, SocketAddr)>> =
        (0..workers).map(|_| Vec::new()).collect();
    for addr in &settings.udp_listen {
        let first = sockets::udp_listener(*addr).map_err(|e| with_addr(e, "UDP", *addr))?;
        let real = first.local_addr()?;
        per_worker_udp[0].push((first, real));
        for w in per_worker_udp.iter_mut().skip(1) {
            w.push((
                sockets::udp_listener(real).map_err(|e| with_addr(e, "UDP", real))?,
                real,
            ));
        }
        udp_addrs.push(real);
    }
    Ok((udp_addrs, per_worker_udp))
}

/// Binds `addr` once per worker (the first socket fixes port 0) and
/// returns the real address.
fn stream_listeners(
    addr: SocketAddr,
    what: &str,
    kind: &tcp::ListenerKind,
    per_worker: &mut [Vec<(std::net::TcpListener, SocketAddr, tcp::ListenerKind)>],
) -> io::Result<SocketAddr> {
    let first = sockets::tcp_listener(addr).map_err(|e| with_addr(e, what, addr))?;
    let real = first.local_addr()?;
    let mut socks = vec![first];
    for _ in 1..per_worker.len() {
        socks.push(sockets::tcp_listener(real).map_err(|e| with_addr(e, what, real))?);
    }
    for (w, s) in per_worker.iter_mut().zip(socks) {
        w.push((s, real, kind.clone()));
    }
    Ok(real)
}

fn with_addr(e: io::Error, what: &str, addr: SocketAddr) -> io::Error {
    io::Error::new(e.kind(), format!("cannot listen on {what} {addr}: {e}"))
}
