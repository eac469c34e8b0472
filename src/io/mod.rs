//! The driver: the only code that touches sockets and clocks.
//!
//! `start` binds every listener once per worker (SO_REUSEPORT: the kernel
//! spreads clients over workers by their address hash, so a client always
//! reaches the same worker), then runs one worker thread each.
//!
//! One job per file:
//! - `worker.rs`: the worker loop and the drain contract;
//! - `datagrams.rs`: UDP listeners and relay sockets read in batches,
//!   relayed datagrams sent in GSO batches (the relay path);
//! - `relays.rs`: binding and releasing relay sockets, quotas, reservations;
//! - `stream.rs`: TCP/TLS connections from accept to close;
//! - `events.rs`: the log line of each core event;
//! - `tcp.rs`: one stream connection (buffers, TLS session, PROXY phase);
//! - `udp.rs`: batched UDP primitives (`recvmmsg`/GRO, GSO send batch);
//! - `sockets.rs`: creating listeners and relay sockets;
//! - `shared.rs`: what workers share (quota ledger, held ports);
//! - `socket_id.rs`: the typed socket id behind each `mio::Token`;
//! - `slots.rs`: the table type for connections and relay sockets;
//! - `clock.rs`: the one place that reads clocks or sleeps;
//! - `tls.rs`: certificates and the rustls server configuration.

pub(crate) mod clock;
mod datagrams;
mod events;
mod relays;
pub(crate) mod shared;
mod slots;
mod socket_id;
mod sockets;
mod stream;
mod tcp;
pub mod tls;
mod udp;
mod worker;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use ring::rand::{SecureRandom, SystemRandom};

use crate::proto::turn::Server;
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
    let mut proto = settings.proto.clone();
    proto.peer_policy.add_relay_ip(settings.relay_ip);
    for ip in [
        settings.advertised_ip,
        settings.relay_ip6,
        settings.advertised_ip6,
    ]
    .into_iter()
    .flatten()
    {
        proto.peer_policy.add_relay_ip(ip);
    }
    proto
        .peer_policy
        .set_relay_ports(*settings.relay_ports.start(), *settings.relay_ports.end());
    proto.relay_ipv4 = settings.relay_ip.is_ipv4();
    proto.relay_ipv6 = settings.relay_ip.is_ipv6() || settings.relay_ip6.is_some();
    proto.limits.max_allocations = proto.limits.max_allocations.max(1);
    let proto = Arc::new(proto);
    let quota = shared::QuotaLedger::new(
        proto.limits.max_allocations,
        proto.limits.max_allocations_per_user,
    );
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

    let shared = worker::Shared {
        settings: Arc::new(settings),
        shutdown: Arc::new(AtomicBool::new(false)),
        limits,
        quota,
        reservations: Arc::default(),
    };
    let rng = SystemRandom::new();
    let mut wakers = Vec::new();
    let mut threads = Vec::new();
    for (i, (udp, streams)) in per_worker_udp.into_iter().zip(per_worker_tcp).enumerate() {
        let poll = mio::Poll::new()?;
        wakers.push(worker::waker(&poll)?);
        // Each shard keys its own RESERVATION-TOKENs (see proto::turn).
        let mut key = [0u8; 32];
        rng.fill(&mut key)
            .map_err(|_| io::Error::other("the system random source failed"))?;
        let server = Server::new(Arc::clone(&proto), key);
        let seed =
            (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(std::process::id());
        let w = worker::Worker::new(worker::WorkerParts {
            poll,
            server,
            udp,
            streams,
            shared: shared.clone(),
            seed,
        })?;
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
        shutdown: shared.shutdown,
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
