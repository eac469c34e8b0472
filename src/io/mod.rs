//! The driver: the only code that touches sockets and clocks.
//!
//! `start` binds every listener once per worker (SO_REUSEPORT: the kernel
//! spreads clients over workers by their address hash, so a client always
//! reaches the same worker), then runs one worker thread each (`worker.rs`).

mod clock;
mod sockets;
mod tcp;
pub mod tls;
mod udp;
mod worker;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use crate::proto::turn::{QuotaLedger, Server};
use crate::settings::Settings;

/// A running server.
#[derive(Debug)]
pub struct Handle {
    udp: Vec<SocketAddr>,
    tcp: Vec<SocketAddr>,
    tls: Vec<SocketAddr>,
    certs: Option<Arc<tls::CertResolver>>,
    shutdown: Arc<AtomicBool>,
    wakers: Vec<mio::Waker>,
    threads: Vec<JoinHandle<()>>,
}

impl Handle {
    /// The bound UDP listener addresses (real ports, also when 0 was asked).
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp
    }

    /// The bound TCP listener addresses.
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp
    }

    /// The bound TLS listener addresses.
    pub fn tls_addrs(&self) -> &[SocketAddr] {
        &self.tls
    }

    /// Re-reads the TLS certificate and key files (SIGHUP). New handshakes
    /// get the new certificate; live connections and their allocations are
    /// untouched. On error the old certificate stays in use. Without TLS
    /// listeners this does nothing.
    pub fn reload_tls(&self) -> Result<(), tls::CertError> {
        match &self.certs {
            Some(c) => c.reload(),
            None => Ok(()),
        }
    }

    /// Stops every worker and waits for them; all allocations end.
    pub fn shutdown(self) {
        self.shutdown.store(true, Ordering::Relaxed);
        for w in &self.wakers {
            let _ = w.wake();
        }
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Binds every listener, starts the workers and returns once they are
/// listening (the returned addresses are ready to use).
pub fn start(settings: Settings) -> io::Result<Handle> {
    let workers = match settings.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let proto = Arc::new(settings.proto.clone());
    let quota = Arc::new(QuotaLedger::new());
    let limits = Arc::new(tcp::ConnLimits::new(
        settings.tcp.max_connections,
        settings.tcp.max_connections_per_ip,
    ));

    // Listeners: the first worker's socket fixes the port (port 0 becomes a
    // real one), the others join it with SO_REUSEPORT. A TCP listener on the
    // same address as a UDP one takes the UDP port when it can.
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
            Err(_) if want != *addr => stream_listeners(*addr, "TCP", &kind, &mut per_worker_tcp)?,
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

    let settings = Arc::new(settings);
    let reserved = Arc::new(worker::Reserved::default());
    let shutdown = Arc::new(AtomicBool::new(false));
    let mut wakers = Vec::new();
    let mut threads = Vec::new();
    for (i, (udp, tcp)) in per_worker_udp.into_iter().zip(per_worker_tcp).enumerate() {
        let poll = mio::Poll::new()?;
        wakers.push(worker::waker(&poll)?);
        let server = Server::new(Arc::clone(&proto), Arc::clone(&quota));
        let seed =
            (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(std::process::id());
        let w = worker::Worker::new(
            poll,
            server,
            udp,
            tcp,
            Arc::clone(&limits),
            Arc::clone(&settings),
            Arc::clone(&shutdown),
            Arc::clone(&reserved),
            seed,
        )?;
        threads.push(
            std::thread::Builder::new()
                .name(format!("tern-worker-{i}"))
                .spawn(move || w.run())?,
        );
    }
    Ok(Handle {
        udp: udp_addrs,
        tcp: tcp_addrs,
        tls: tls_addrs,
        certs,
        shutdown,
        wakers,
        threads,
    })
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
