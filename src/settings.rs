//! `Settings`: the finished configuration `io::start` runs with.
//!
//! `crate::config` produces it from the TOML file and CLI flags
//! (`FileConfig::resolve`); tests and tools that start a server in process
//! fill in a [`SettingsBuilder`] instead. Both end in [`SettingsBuilder::build`],
//! the one place that finishes the core's configuration from the driver's:
//! the relay addresses and ports go into the peer policy (the server's own
//! relays are always reachable peers), the relay address families into
//! `proto::config::Config`. A `Settings` cannot be made any other way, so
//! nothing downstream patches or re-checks it.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

use crate::proto;

/// Everything `io::start` needs, finished by [`SettingsBuilder::build`].
/// The fields are public to read; the core's part (`proto`) agrees with
/// the relay fields because both were set in one step.
#[derive(Clone, Debug)]
// `#[non_exhaustive]` would still let code inside this crate build an
// unfinished `Settings`; the private field makes `build` the only way.
#[allow(clippy::manual_non_exhaustive)]
pub struct Settings {
    /// UDP listeners (port 0 picks an ephemeral port).
    pub udp_listen: Vec<SocketAddr>,
    /// TCP listeners (port 0 picks an ephemeral port; `io::Handle` reports the real one).
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
    /// The longest a worker waits after a wakeup so that datagrams arriving
    /// meanwhile are handled (and sent) in one batch; it waits only while
    /// traffic fills a batch within this time (adaptive interrupt
    /// coalescing, `io::coalesce`). Zero = never.
    pub coalesce: Duration,
    /// TCP connection limits (TLS connections count as TCP).
    pub tcp: TcpLimits,
    /// TURN over TLS listeners; `None` = no TLS.
    pub tls: Option<TlsSettings>,
    /// Which stream listeners expect a PROXY protocol header, and from whom.
    pub proxy_protocol: ProxyProtocol,
    /// The sans-IO core's configuration, finished: its peer policy knows
    /// the relay addresses and ports above, its relay families match them.
    pub proto: proto::config::Config,
    /// Private, so a `Settings` comes only from [`SettingsBuilder::build`].
    _finished: (),
}

/// The driver's settings before the core's configuration is finished from
/// them; the fields mean what they mean in [`Settings`]. `proto` is taken
/// as given except for what [`build`](Self::build) derives.
#[derive(Clone, Debug)]
pub struct SettingsBuilder {
    pub udp_listen: Vec<SocketAddr>,
    pub tcp_listen: Vec<SocketAddr>,
    pub relay_ip: IpAddr,
    pub advertised_ip: Option<IpAddr>,
    pub relay_ip6: Option<IpAddr>,
    pub advertised_ip6: Option<IpAddr>,
    pub relay_ports: RangeInclusive<u16>,
    pub workers: usize,
    pub coalesce: Duration,
    pub tcp: TcpLimits,
    pub tls: Option<TlsSettings>,
    pub proxy_protocol: ProxyProtocol,
    pub proto: proto::config::Config,
}

impl SettingsBuilder {
    /// Finishes the core's configuration from the relay settings and
    /// returns the `Settings` to run with:
    /// - every relay address, local and advertised, becomes one of the
    ///   server's own addresses in the peer policy (clients on one server
    ///   can reach each other), and only `relay_ports` on them are peers;
    /// - a peer address on an advertised relay IP is relayed to the local
    ///   relay IP behind it (`proto::turn::RelayNat`: no NAT hairpinning
    ///   needed for relay to relay);
    /// - the core offers the relay families there are addresses for
    ///   (REQUESTED-ADDRESS-FAMILY, 440 otherwise);
    /// - `limits.max_allocations` is at least 1 (`config` rejects 0; this
    ///   keeps a hand-built `proto::config::Config` from starting with none).
    pub fn build(self) -> Settings {
        let mut proto = self.proto;
        for ip in [
            Some(self.relay_ip),
            self.advertised_ip,
            self.relay_ip6,
            self.advertised_ip6,
        ]
        .into_iter()
        .flatten()
        {
            proto.peer_policy.add_relay_ip(ip);
        }
        proto
            .peer_policy
            .set_relay_ports(*self.relay_ports.start(), *self.relay_ports.end());
        proto.relay_nat = Default::default();
        if let Some(public) = self.advertised_ip {
            proto.relay_nat.add(public, self.relay_ip);
        }
        if let (Some(public), Some(local)) = (self.advertised_ip6, self.relay_ip6) {
            proto.relay_nat.add(public, local);
        }
        proto.relay_ipv4 = self.relay_ip.is_ipv4();
        proto.relay_ipv6 = self.relay_ip.is_ipv6() || self.relay_ip6.is_some();
        proto.limits.max_allocations = proto.limits.max_allocations.max(1);
        Settings {
            udp_listen: self.udp_listen,
            tcp_listen: self.tcp_listen,
            relay_ip: self.relay_ip,
            advertised_ip: self.advertised_ip,
            relay_ip6: self.relay_ip6,
            advertised_ip6: self.advertised_ip6,
            relay_ports: self.relay_ports,
            workers: self.workers,
            coalesce: self.coalesce,
            tcp: self.tcp,
            tls: self.tls,
            proxy_protocol: self.proxy_protocol,
            proto,
            _finished: (),
        }
    }
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

/// Limits on TCP and TLS client connections.
#[derive(Clone, Debug)]
pub struct TcpLimits {
    /// Concurrent connections on this server.
    pub max_connections: usize,
    /// Concurrent connections from one IP.
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
