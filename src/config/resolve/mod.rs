//! `FileConfig` + CLI `Overrides` → `Settings`, in one pass: the one place
//! where every value is checked and turned into its typed form. One file
//! per table (`server`, `relay`, `auth`, `limits` for `[allocation]` and
//! `[limits]`, `peers`, `tls` for `[tls]` and `[proxy_protocol]`, `log`,
//! `cluster`, `nat` for RFC 5780's `server.alternate_listen`);
//! `overrides` applies the flags and remembers where each value came from,
//! `parse` holds the value parsers the tables share.
//!
//! What `resolve` needs from the machine (randomness for the nonce key,
//! the interface list for `relay.address = "auto"`, the certificate files,
//! the REST secrets file)
//! comes in through [`Host`], so this module reads no file and opens no
//! socket; the commands pass the real host (`cmd::serve::SystemHost`).
//! The result goes through `SettingsBuilder::build`, which finishes the
//! core's configuration from the relay settings, so nothing after `resolve`
//! patches it.

mod auth;
mod cluster;
mod limits;
mod log;
mod nat;
mod overrides;
mod parse;
mod peers;
mod relay;
mod server;
mod tls;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub use overrides::Overrides;
pub use parse::parse_port_range;

use super::{ConfigError, FileConfig};
use crate::proto::channel_data::ChannelRange;
use crate::proto::config::Config;
use crate::settings::{Settings, SettingsBuilder};

/// What resolving needs from the host it runs on. `tern serve` and
/// `tern check-config` pass `cmd::serve::SystemHost`; tests may pass a
/// fixed one.
pub trait Host {
    /// 32 random bytes for the stateless nonce key (see `Credentials::new`).
    fn nonce_key(&self) -> [u8; 32];
    /// The relay address for `relay.address = "auto"`.
    fn detect_relay_ip(&self) -> IpAddr;
    /// Checks that the PEM certificate chain at `cert` and the private key
    /// at `key` load and belong together.
    fn check_tls_files(&self, cert: &Path, key: &Path) -> Result<(), TlsFileError>;
    /// The text of the file at `path` (`auth.rest_secrets_file`).
    fn read_to_string(&self, path: &Path) -> std::io::Result<String>;
}

/// A certificate or key file that cannot be used, as reported by
/// [`Host::check_tls_files`]; `resolve` turns it into a `ConfigError` that
/// names the file or flag it came from.
#[derive(Clone, Debug)]
pub struct TlsFileError {
    /// `tls.cert` or `tls.key`.
    pub key: &'static str,
    /// The path as configured.
    pub path: PathBuf,
    /// What is wrong with it, e.g. "cannot be read: No such file or directory".
    pub problem: String,
}

impl FileConfig {
    /// Applies `overrides`, checks every value and builds the finished
    /// `Settings` the driver runs with. With no users and no REST secrets
    /// the result has empty credentials (`tern serve` adds a generated user
    /// to the file before resolving).
    pub fn resolve(
        mut self,
        overrides: &Overrides,
        host: &dyn Host,
    ) -> Result<Settings, ConfigError> {
        let ctx = self.apply(overrides);
        let mut listeners = self.resolve_listeners(&ctx)?;
        let relay = self.resolve_relay(&ctx, host)?;
        let (nat_discovery, nat_udp) =
            nat::resolve(&ctx, &self.server, &listeners.udp, relay.advertised)?;
        listeners.udp.extend(nat_udp);
        let auth = self.resolve_auth(&ctx, host)?;
        let (default_lifetime, max_lifetime) = self.resolve_lifetimes(&ctx)?;
        let limits = self.resolve_limits(&ctx)?;
        let tcp = self.resolve_tcp_limits(&ctx)?;
        let peer_policy = self.resolve_peers(&ctx)?;
        let tls = self.resolve_tls(&ctx, &listeners.tcp, host)?;
        let tls_listen = tls.as_ref().map_or(&[][..], |t| &t.listen[..]);
        let proxy_protocol = self.resolve_proxy(&ctx, &listeners.tcp, tls_listen)?;
        self.check_log(&ctx)?;
        let alternates = self.resolve_alternates(&ctx, &listeners, &relay, tls_listen)?;
        let coalesce = self.resolve_coalesce(&ctx)?;
        let mut proto = Config::new(auth.realm, auth.credentials);
        proto.software = self.software();
        proto.nonce_lifetime = auth.nonce_lifetime;
        proto.default_lifetime = default_lifetime;
        proto.max_lifetime = max_lifetime;
        proto.peer_policy = peer_policy;
        proto.limits = limits;
        proto.alternates = alternates;
        proto.nat_discovery = nat_discovery;
        proto.channel_range = if self.allocation.rfc5766_channel_range {
            ChannelRange::Rfc5766
        } else {
            ChannelRange::Rfc8656
        };
        Ok(SettingsBuilder {
            udp_listen: listeners.udp,
            tcp_listen: listeners.tcp,
            relay_ip: relay.ip,
            advertised_ip: relay.advertised,
            relay_ip6: relay.ip6,
            advertised_ip6: relay.advertised6,
            relay_ports: relay.ports,
            workers: self.server.workers,
            coalesce,
            tcp,
            tls,
            proxy_protocol,
            proto,
        }
        .build())
    }
}
