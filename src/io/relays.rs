//! Relay sockets of a worker: carrying out `Command::BindRelay` (quota,
//! reservation claim, bind, register) and `Command::ReleaseRelay`.
//!
//! A bind takes, in order: the port held under a RESERVATION-TOKEN (an
//! unknown or expired token is 508 whatever the quota, as it always was),
//! one allocation of the user's quota (486, or 508 for the server's), then
//! the socket(s). Each failure is a typed `BindError` the core maps to its
//! error code. A held port keeps the full address it was reserved on, so
//! the Allocate that claims it gets that address back, family included
//! (the claiming request carries no REQUESTED-ADDRESS-FAMILY).

use std::io;
use std::net::{IpAddr, SocketAddr};

use mio::Interest;

use super::clock;
use super::shared::HeldPort;
use super::socket_id::SocketId;
use super::sockets;
use super::udp::Sock;
use super::worker::{RelaySock, Worker};
use crate::proto::turn::{
    BindError, PortRequest, RESERVATION_LIFETIME, RelayBound, RelayId, ReservationToken,
};

/// One value per relay socket family: `[IPv4, IPv6]`.
type BySocketFamily<T> = [Option<T>; 2];

/// The socket an allocation relays on, before it is registered.
struct Bound {
    sock: std::net::UdpSocket,
    /// The address given to the client.
    advertised: SocketAddr,
    /// The next port, held for a reservation token.
    held: Option<(ReservationToken, HeldPort)>,
}

impl Worker {
    /// Binds the relay socket(s) of `relay` for `username`.
    pub(super) fn bind_relay(
        &mut self,
        relay: RelayId,
        username: &str,
        ipv6: bool,
        additional_ipv6: bool,
        port: PortRequest,
    ) -> Result<RelayBound, BindError> {
        let claimed = match port {
            PortRequest::Reserved(token) => Some(
                self.shared
                    .reservations
                    .claim(token, clock::mono())
                    .ok_or(BindError::UnknownToken)?,
            ),
            PortRequest::Any | PortRequest::Even { .. } => None,
        };
        let quota = self.shared.quota.acquire(username).inspect_err(|e| {
            tracing::debug!(username = %username, refusal = ?e, "allocation quota reached");
        })?;
        let bound = match claimed {
            Some(h) => Bound {
                sock: h.sock,
                advertised: h.advertised,
                held: None,
            },
            None => self.bind_new(ipv6, port).map_err(|e| {
                tracing::warn!(error = %e, "cannot bind a relay socket; answering 508");
                BindError::NoSocket
            })?,
        };
        let main_v6 = bound.advertised.is_ipv6();
        let mut socks = [None, None];
        socks[usize::from(main_v6)] = Some(bound.sock);
        // The IPv6 half of a dual allocation is best effort: without it the
        // client still gets IPv4 and ADDRESS-ERROR-CODE for IPv6.
        let mut additional = None;
        if additional_ipv6 && !main_v6 {
            match self.bind_new(true, PortRequest::Any) {
                Ok(b) => {
                    additional = Some(b.advertised);
                    socks[1] = Some(b.sock);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot bind the IPv6 half of a dual allocation")
                }
            }
        }
        let (registered, local) = self.register(relay, socks).map_err(|e| {
            tracing::warn!(error = %e, "cannot register a relay socket; answering 508");
            BindError::NoSocket
        })?;
        for a in local.iter().flatten() {
            self.relay_addrs.insert(*a, relay.slot);
        }
        self.relays.insert_at(
            relay.slot as usize,
            RelaySock {
                id: relay,
                socks: registered,
                local,
                _quota: quota,
            },
        );
        let reservation = bound.held.map(|(token, held)| {
            self.shared.reservations.hold(token, held);
            token
        });
        Ok(RelayBound {
            addr: bound.advertised,
            additional,
            reservation,
        })
    }

    /// Binds a new relay socket of a family in the relay port range (and
    /// for EVEN-PORT with a token, holds the next port under it).
    fn bind_new(&mut self, ipv6: bool, port: PortRequest) -> io::Result<Bound> {
        let Some((local_ip, advertised_ip)) = self.relay_ip(ipv6) else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "relay address family not configured",
            ));
        };
        let seed = self.next_seed();
        let (sock, next) =
            sockets::relay_socket(local_ip, &self.shared.settings.relay_ports, port, seed)?;
        let advertised = SocketAddr::new(advertised_ip, sock.local_addr()?.port());
        let held = match (next, port) {
            (Some(next), PortRequest::Even { reserve: Some(t) }) => {
                let held = HeldPort {
                    advertised: SocketAddr::new(advertised_ip, next.local_addr()?.port()),
                    sock: next,
                    expires: clock::mono() + RESERVATION_LIFETIME,
                };
                Some((t, held))
            }
            _ => None,
        };
        Ok(Bound {
            sock,
            advertised,
            held,
        })
    }

    /// Registers the sockets of `relay` with the poll, by family; with
    /// their local addresses.
    fn register(
        &self,
        relay: RelayId,
        socks: [Option<std::net::UdpSocket>; 2],
    ) -> io::Result<(BySocketFamily<Sock>, BySocketFamily<SocketAddr>)> {
        let mut registered = [None, None];
        let mut local = [None, None];
        for (fam, s) in socks.into_iter().enumerate() {
            if let Some(s) = s {
                local[fam] = Some(s.local_addr()?);
                let mut s = Sock::new(s)?;
                let token = SocketId::relay(relay, fam == 1).token();
                self.poll
                    .registry()
                    .register(&mut s.sock, token, Interest::READABLE)?;
                registered[fam] = Some(s);
            }
        }
        Ok((registered, local))
    }

    /// Closes the relay socket(s) of an allocation that ended; dropping
    /// the entry gives its quota back.
    pub(super) fn release_relay(&mut self, relay: RelayId) {
        self.release_tcp_relay(relay);
        let slot = relay.slot as usize;
        if self.relays.get(slot).is_some_and(|r| r.id == relay)
            && let Some(r) = self.relays.remove_at(slot)
        {
            for a in r.local.iter().flatten() {
                self.relay_addrs.remove(a);
            }
            for mut s in r.socks.into_iter().flatten() {
                let _ = self.poll.registry().deregister(&mut s.sock);
            }
        }
    }

    /// Closes one family's socket of a dual allocation (RFC 8656 §8: a
    /// Refresh deleted that family, or it expired); the other keeps relaying.
    pub(super) fn release_relay_family(&mut self, relay: RelayId, ipv6: bool) {
        if let Some(r) = self.relays.get_mut(relay.slot as usize)
            && r.id == relay
            && let Some(mut s) = r.socks[usize::from(ipv6)].take()
        {
            if let Some(a) = r.local[usize::from(ipv6)].take() {
                self.relay_addrs.remove(&a);
            }
            let _ = self.poll.registry().deregister(&mut s.sock);
        }
    }

    /// The local and advertised relay IPs of a family, if configured.
    pub(super) fn relay_ip(&self, ipv6: bool) -> Option<(IpAddr, IpAddr)> {
        let s = &self.shared.settings;
        if s.relay_ip.is_ipv6() == ipv6 {
            Some((s.relay_ip, s.advertised_ip.unwrap_or(s.relay_ip)))
        } else if ipv6 {
            s.relay_ip6.map(|ip| (ip, s.advertised_ip6.unwrap_or(ip)))
        } else {
            None
        }
    }

    pub(super) fn next_seed(&mut self) -> u64 {
        self.seed = self
            .seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.seed >> 16
    }
}
