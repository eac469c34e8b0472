//! `[cluster]`: the other nodes of a fleet for 300 Try Alternate, minus
//! this node's own addresses (see `config::cluster`).

use std::net::{IpAddr, SocketAddr};

use super::super::cluster::{self, Own};
use super::super::{ConfigError, FileConfig};
use super::overrides::Ctx;
use super::relay::RelayAddrs;
use super::server::Listeners;
use crate::proto::turn::Alternates;

impl FileConfig {
    /// `[cluster]`, checked against every address this node listens on or
    /// is known by (relay and advertised IPs of both families).
    pub(super) fn resolve_alternates(
        &self,
        ctx: &Ctx,
        listeners: &Listeners,
        relay: &RelayAddrs,
        tls_listen: &[SocketAddr],
    ) -> Result<Alternates, ConfigError> {
        let ips: Vec<IpAddr> = [
            Some(relay.ip),
            relay.advertised,
            relay.ip6,
            relay.advertised6,
        ]
        .into_iter()
        .flatten()
        .collect();
        let listen: Vec<SocketAddr> = listeners
            .udp
            .iter()
            .chain(&listeners.tcp)
            .chain(tls_listen)
            .copied()
            .collect();
        let own = Own {
            listen: &listen,
            ips: &ips,
        };
        cluster::resolve(ctx.file(), &self.cluster, &own)
    }
}
