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
//! - `listeners.rs`: binding every listener once per worker;
//! - `ops.rs`: metrics publishing, heartbeat, the admin command mailbox;
//! - `sockets.rs`: creating listener and relay sockets (socket options);
//! - `shared.rs`: what workers share (quota ledger, held ports);
//! - `socket_id.rs`: the typed socket id behind each `mio::Token`;
//! - `slots.rs`: the table type for connections and relay sockets;
//! - `coalesce.rs`: adaptive interrupt coalescing (when a worker waits);
//! - `clock.rs`: the one place that reads clocks or sleeps;
//! - `tls.rs`: certificates and the rustls server configuration.

pub(crate) mod clock;
mod coalesce;
mod datagrams;
mod events;
mod handoff;
mod listeners;
mod ops;
mod relays;
pub(crate) mod shared;
mod slots;
mod socket_id;
mod sockets;
pub use sockets::LISTENER_BUFFER;
mod stream;
mod tcp;
mod tcp_relay;
pub mod tls;
mod udp;
mod worker;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use ring::rand::{SecureRandom, SystemRandom};

pub use ops::WorkerControl;

use crate::admin::{Liveness, Metrics};
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
    wakers: Vec<Arc<mio::Waker>>,
    threads: Vec<JoinHandle<()>>,
    metrics: Arc<Metrics>,
    liveness: Liveness,
    control: WorkerControl,
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

    /// Every worker's metrics block (one per worker, in order).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The epoch and allowed stall the workers' heartbeats are checked against.
    pub fn liveness(&self) -> Liveness {
        self.liveness
    }

    /// The TLS certificate store (reload), when there are TLS listeners.
    pub fn certs(&self) -> Option<Arc<tls::CertResolver>> {
        self.certs.clone()
    }

    /// The workers' mailboxes: list and end allocations, apply a config.
    pub fn control(&self) -> WorkerControl {
        self.control.clone()
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
    let quota = shared::QuotaLedger::new(
        proto.limits.max_allocations,
        proto.limits.max_allocations_per_user,
    );
    let limits = Arc::new(tcp::ConnLimits::new(
        settings.tcp.max_connections,
        settings.tcp.max_connections_per_ip,
    ));

    let listeners = listeners::Listeners::bind(&settings, workers)?;
    let shared = worker::Shared {
        settings: Arc::new(settings),
        shutdown: Arc::new(AtomicBool::new(false)),
        limits,
        quota,
        reservations: Arc::default(),
        handoff: Arc::default(),
    };
    let (metrics, liveness) = ops::instruments(workers);
    let (wakers, mailboxes, threads) =
        spawn_workers(&proto, &shared, listeners.per_worker, &metrics, liveness)?;
    let control = WorkerControl::new(
        mailboxes.into_iter().zip(wakers.iter().cloned()).collect(),
        Arc::clone(&shared.quota),
    );
    Ok(Handle {
        udp: listeners.udp,
        tcp: listeners.tcp,
        tls: listeners.tls,
        certs: listeners.certs,
        shutdown: shared.shutdown,
        wakers,
        threads,
        metrics,
        liveness,
        control,
    })
}

/// One waker per worker: shutdown, connections handed between workers,
/// and the admin mailbox.
type Wakers = Vec<Arc<mio::Waker>>;

type Spawned = (Wakers, Vec<Arc<ops::Mailbox>>, Vec<JoinHandle<()>>);

/// Starts one worker thread per listener set, each with its own core
/// (`Server`) keyed with fresh random bytes.
fn spawn_workers(
    proto: &Arc<crate::proto::config::Config>,
    shared: &worker::Shared,
    per_worker: Vec<listeners::WorkerListeners>,
    metrics: &Metrics,
    liveness: Liveness,
) -> io::Result<Spawned> {
    let rng = SystemRandom::new();
    let mut wakers = Vec::new();
    let mut mailboxes = Vec::new();
    let mut threads = Vec::new();
    for (i, (udp, streams)) in per_worker.into_iter().enumerate() {
        let poll = mio::Poll::new()?;
        wakers.push(Arc::new(worker::waker(&poll)?));
        let mailbox = Arc::new(ops::Mailbox::default());
        mailboxes.push(Arc::clone(&mailbox));
        let ops = ops::WorkerOps::new(i, Arc::clone(&metrics.workers[i]), liveness, mailbox);
        // Each shard keys its own RESERVATION-TOKENs (see proto::turn).
        let mut key = [0u8; 32];
        rng.fill(&mut key)
            .map_err(|_| io::Error::other("the system random source failed"))?;
        let server = Server::new(Arc::clone(proto), key);
        let seed =
            (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(std::process::id());
        let w = worker::Worker::new(worker::WorkerParts {
            poll,
            server,
            udp,
            streams,
            shared: shared.clone(),
            seed,
            index: i,
            ops,
        })?;
        threads.push(
            std::thread::Builder::new()
                .name(format!("tern-worker-{i}"))
                .spawn(move || w.run())?,
        );
    }
    shared.handoff.set_wakers(wakers.clone());
    Ok((wakers, mailboxes, threads))
}
