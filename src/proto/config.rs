//! The core's configuration: already parsed and checked. `crate::config`
//! reads it from the file (format and errors there) and
//! `settings::SettingsBuilder::build` finishes it from the driver's relay
//! settings (the relay addresses in `peer_policy`, `relay_ipv4`/`relay_ipv6`),
//! so the core never checks it again. Tests build one with `Config::new`.

use std::time::Duration;

use crate::proto::auth::Credentials;
use crate::proto::channel_data::ChannelRange;
use crate::proto::peer_policy::PeerPolicy;
use crate::proto::turn::{Alternates, RelayNat};

/// Everything the sans-IO core needs to know. Built once (by
/// `crate::config` for the server), shared by all workers through an
/// `Arc`; `Server::apply_config` swaps in a new one.
#[derive(Clone, Debug)]
pub struct Config {
    /// REALM sent in 401s and used in long-term keys.
    pub realm: String,
    /// SOFTWARE attribute value, if any (off by default: it only helps attackers).
    pub software: Option<String>,
    /// Static users and TURN REST secrets.
    pub credentials: Credentials,
    /// How long a nonce stays valid before 438 Stale Nonce.
    pub nonce_lifetime: Duration,
    /// Allocation lifetime when the client asks for none (RFC 8656: 600 s).
    pub default_lifetime: Duration,
    /// Cap on the allocation lifetime a client may ask for.
    pub max_lifetime: Duration,
    /// Which peers may be relayed to.
    pub peer_policy: PeerPolicy,
    /// Quotas.
    pub limits: Limits,
    /// The server has an IPv4 relay address (REQUESTED-ADDRESS-FAMILY; 440 otherwise).
    pub relay_ipv4: bool,
    /// The server has an IPv6 relay address (likewise).
    pub relay_ipv6: bool,
    /// Channel numbers ChannelBind may use and ChannelData may carry.
    pub channel_range: ChannelRange,
    /// Other nodes and the soft limit for 300 Try Alternate (`[cluster]`).
    pub alternates: Alternates,
    /// RFC 5780 NAT behaviour discovery (`[server] alternate_listen`); `None` = off.
    pub nat_discovery: Option<NatDiscovery>,
    /// This server's advertised relay IPs and the local ones behind them
    /// (`relay.advertised_address`): relay to relay goes to the local one.
    pub relay_nat: RelayNat,
}

/// The two local addresses of RFC 5780 NAT behaviour discovery. The driver
/// must listen (UDP) on all four combinations of their IPs and ports:
/// responses name the one they leave from in `Transmit::to.server`, and a
/// response whose address has no listener is not sent.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct NatDiscovery {
    /// (IP1, P1): the primary listen address.
    pub primary: std::net::SocketAddr,
    /// (IP2, P2): IP and port both differ from `primary`.
    pub alternate: std::net::SocketAddr,
    /// What clients see as IP1 (the advertised IP behind a 1:1 NAT, else IP1).
    pub public_primary: std::net::IpAddr,
    /// What clients see as IP2.
    pub public_alternate: std::net::IpAddr,
}

/// Quotas; 0 never means unlimited, every limit is a number.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Allocations on this server, all workers together: counted in one
    /// ledger the driver keeps (the core never counts across workers).
    pub max_allocations: u32,
    /// Allocations per username (486 beyond).
    pub max_allocations_per_user: u32,
    /// Permissions (peer IPs) per allocation.
    pub max_permissions_per_allocation: u32,
    /// Channels per allocation.
    pub max_channels_per_allocation: u32,
    /// TCP peer connections per TCP allocation (RFC 6062): Connect beyond
    /// it gets 508, a peer connecting beyond it is closed.
    pub max_tcp_connections_per_allocation: u32,
    /// Error responses per second to unauthenticated requests from one
    /// source IP (burst: twice that); beyond it requests are dropped unanswered.
    pub unauth_errors_per_sec_per_ip: u32,
    /// Relayed bytes per second per allocation, each direction (burst: one
    /// second's worth); `None` = no limit.
    pub bandwidth_bytes_per_sec: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_allocations: 16_384,
            max_allocations_per_user: 100,
            max_permissions_per_allocation: 64,
            max_channels_per_allocation: 64,
            max_tcp_connections_per_allocation: 32,
            unauth_errors_per_sec_per_ip: 100,
            bandwidth_bytes_per_sec: None,
        }
    }
}

impl Config {
    /// A configuration with the given realm and credentials and every other
    /// value at its default (IPv4 relays only, the default peer policy
    /// without relay addresses: `SettingsBuilder::build` adds those).
    pub fn new(realm: impl Into<String>, credentials: Credentials) -> Self {
        Self {
            realm: realm.into(),
            software: None,
            credentials,
            nonce_lifetime: Duration::from_secs(3600),
            default_lifetime: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(3600),
            peer_policy: PeerPolicy::default(),
            limits: Limits::default(),
            relay_ipv4: true,
            relay_ipv6: false,
            channel_range: ChannelRange::default(),
            alternates: Alternates::default(),
            nat_discovery: None,
            relay_nat: RelayNat::default(),
        }
    }
}
