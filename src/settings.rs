//! `Settings`: the fully resolved configuration the driver runs with
//! (produced by `crate::config` from the TOML file and CLI flags).

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

use crate::proto;

/// Everything `io::Driver::start` needs.
#[derive(Clone, Debug)]
pub struct Settings {
    /// UDP listeners (port 0 picks an ephemeral port).
    pub udp_listen: Vec<SocketAddr>,
    /// TCP listeners (port 0 picks an ephemeral port; `Driver` reports the real one).
    pub tcp_listen: Vec<SocketAddr>,
    /// Local address relay sockets bind to.
    pub relay_ip: IpAddr,
    /// Address given to clients in XOR-RELAYED-ADDRESS when the server is
    /// behind a 1:1 NAT; `None` means `relay_ip`.
    pub advertised_ip: Option<IpAddr>,
    /// An IPv6 relay address in addition to an IPv4 `relay_ip`, for IPv6
    /// and dual (RFC 8656 ADDITIONAL-ADDRESS-FAMILY) allocations.
    pub relay_ip6: Option<IpAddr>,
    /// What clients are given for `relay_ip6` behind a 1:1 NAT.
    pub advertised_ip6: Option<IpAddr>,
    /// Relay port range (inclusive).
    pub relay_ports: RangeInclusive<u16>,
    /// Worker threads (shards); 0 = one per core.
    pub workers: usize,
    /// After a wakeup that found only a few datagrams, a worker waits this
    /// long before polling again, so datagrams arriving meanwhile are handled
    /// (and sent) in one batch: interrupt coalescing. Zero = off.
    pub coalesce: Duration,
    /// TCP connection limits (TLS connections count as TCP).
    pub tcp: TcpLimits,
    /// TURN over TLS listeners; `None` = no TLS.
    pub tls: Option<TlsSettings>,
    /// Which stream listeners expect a PROXY protocol header, and from whom.
    pub proxy_protocol: ProxyProtocol,
    /// The sans-IO core's configuration.
    pub proto: proto::config::Config,
}

/// TURN over TLS: listeners and the PEM files (re-read on SIGHUP).
#[derive(Clone, Debug)]
pub struct TlsSettings {
    /// TLS listeners (port 0 picks an ephemeral port).
    pub listen: Vec<SocketAddr>,
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// PROXY protocol (v1 and v2) on stream listeners.
#[derive(Clone, Debug, Default)]
pub struct ProxyProtocol {
    /// Listener addresses (as configured, from `tcp_listen` or
    /// `tls.listen`) whose connections must start with a PROXY header.
    pub listen: Vec<SocketAddr>,
    /// Sources allowed to send one. On a PROXY listener, a connection from
    /// elsewhere is served as a direct client, and closed if it sends a header.
    pub trusted: Vec<IpNet>,
}

#[derive(Clone, Debug)]
pub struct TcpLimits {
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// A connection with no complete frame for this long is closed.
    pub idle_timeout: Duration,
    /// Largest STUN/ChannelData frame accepted on a stream.
    pub max_frame: usize,
    /// The PROXY header and TLS handshake must be complete within this.
    pub handshake_timeout: Duration,
}

impl Default for TcpLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_connections_per_ip: 64,
            idle_timeout: Duration::from_secs(120),
            max_frame: 4096,
            handshake_timeout: Duration::from_secs(10),
        }
    }
}
