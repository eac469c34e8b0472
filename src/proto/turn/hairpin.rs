//! Relay to relay behind a 1:1 NAT (`relay.advertised_address`).
//!
//! Clients are given the advertised (public) IP in XOR-RELAYED-ADDRESS.
//! When two clients of this server are both relayed, each sends to the
//! other's public relayed address; sent as is, the datagram would leave
//! the host towards the NAT and have to come back in, which many cloud
//! NATs do not do (no hairpinning). So, as coturn does with `external-ip`,
//! the core rewrites such a peer address to the local relay IP at the
//! socket boundary, both ways:
//!
//! - out: a Send/ChannelData/Connect peer equal to the public IP goes to
//!   the local IP, same port ([`RelayNat::to_local`]);
//! - in: a datagram (or TCP peer) from the local IP is seen as coming from
//!   the public IP, same port ([`RelayNat::to_public`]).
//!
//! Everything the core stores (permissions, channel peers, TCP peers) and
//! everything it tells clients (XOR-PEER-ADDRESS of Data indications and
//! ConnectionAttempts) stays in the clients' address space, the public
//! one: a permission for the public IP matches the datagrams another
//! allocation sends from the local relay address, and the receiver sees the
//! sender's public relayed address, the one its ICE agent knows.
//!
//! The local relay IP is the host's own, so traffic from it comes from
//! this host: presenting it under the public IP hides nothing a client
//! could not already reach with a permission for the public IP.
//!
//! # Cost
//! One IP comparison per relayed packet (after a family index), and none
//! when no advertised address differs from the relay address (`None`).

use std::net::{IpAddr, SocketAddr};

/// The (public, local) relay IP pairs, per family (index 0 IPv4, 1 IPv6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayNat {
    pairs: [Option<(IpAddr, IpAddr)>; 2],
}

impl RelayNat {
    /// Adds the relay address `local` advertised to clients as `public`
    /// (same family); nothing to do when they are equal.
    pub fn add(&mut self, public: IpAddr, local: IpAddr) {
        if public != local && public.is_ipv6() == local.is_ipv6() {
            self.pairs[usize::from(public.is_ipv6())] = Some((public, local));
        }
    }

    /// Whether any advertised address differs from its relay address.
    pub fn is_active(&self) -> bool {
        self.pairs.iter().any(Option::is_some)
    }

    /// Where to send a datagram for `peer`: this server's public relay IP
    /// becomes the local one. One comparison.
    #[inline]
    pub fn to_local(&self, peer: SocketAddr) -> SocketAddr {
        match self.pairs[usize::from(peer.is_ipv6())] {
            Some((public, local)) if peer.ip() == public => SocketAddr::new(local, peer.port()),
            _ => peer,
        }
    }

    /// Who a datagram from `peer` is from, in the clients' address space:
    /// the local relay IP becomes the public one. One comparison.
    #[inline]
    pub fn to_public(&self, peer: SocketAddr) -> SocketAddr {
        match self.pairs[usize::from(peer.is_ipv6())] {
            Some((public, local)) if peer.ip() == local => SocketAddr::new(public, peer.port()),
            _ => peer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn rewrites_only_this_servers_relay_ips_both_ways() {
        let mut nat = RelayNat::default();
        assert!(!nat.is_active());
        nat.add("203.0.113.7".parse().unwrap(), "10.0.0.5".parse().unwrap());
        nat.add("2001:db8::7".parse().unwrap(), "fd00::5".parse().unwrap());
        assert!(nat.is_active());
        assert_eq!(
            nat.to_local(addr("203.0.113.7:50000")),
            addr("10.0.0.5:50000")
        );
        assert_eq!(
            nat.to_public(addr("10.0.0.5:50002")),
            addr("203.0.113.7:50002")
        );
        assert_eq!(nat.to_local(addr("[2001:db8::7]:9")), addr("[fd00::5]:9"));
        assert_eq!(nat.to_public(addr("[fd00::5]:9")), addr("[2001:db8::7]:9"));
        // Anyone else, and the other direction's address, pass unchanged.
        for other in ["198.51.100.1:1", "10.0.0.5:50000", "[fd00::5]:9"] {
            assert_eq!(nat.to_local(addr(other)), addr(other));
        }
        for other in ["198.51.100.1:1", "203.0.113.7:50000", "[2001:db8::7]:9"] {
            assert_eq!(nat.to_public(addr(other)), addr(other));
        }
    }

    #[test]
    fn no_nat_no_rewrite() {
        let mut nat = RelayNat::default();
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        nat.add(ip, ip);
        assert!(!nat.is_active());
        assert_eq!(nat.to_local(addr("10.0.0.5:1")), addr("10.0.0.5:1"));
    }
}
