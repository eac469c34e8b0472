//! Configuration file (TOML) and its resolution into `Settings`.
//!
//! `FileConfig` mirrors the file exactly: every table and key is a field
//! with `deny_unknown_fields`, so a misspelled key is an error, not a
//! silently ignored line. Values stay close to what the operator wrote
//! (strings for addresses, ranges and CIDRs) so that `FileConfig::resolve`
//! (in `resolve/`, one file per table) can check each one once and name it
//! precisely in a `ConfigError`. `resolve` returns the finished `Settings`;
//! nothing downstream validates or patches it again ("parse, don't
//! validate"). This module reads only the config file itself: the nonce
//! key, interface detection and certificate checks come in through
//! `resolve::Host`, supplied by the command.
//!
//! The doc comment on each field matches the comment in `config/tern.toml`,
//! which is the embedded default (`FileConfig::embedded`) and, with
//! `config/examples/*.toml`, is loaded by the tests.

pub mod cluster;
pub mod coturn;
mod error;
mod resolve;
mod secrets_file;

use std::path::Path;

use serde::{Deserialize, Deserializer};

pub use error::ConfigError;
pub use resolve::{Host, Overrides, TlsFileError, parse_port_range};

use crate::secret::Secret;
use crate::telemetry::LogFormat;

/// The default configuration, `config/tern.toml`, compiled in.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../config/tern.toml");

/// The name errors use for the embedded default.
pub const EMBEDDED_NAME: &str = "tern.toml (built-in default)";

/// The whole file. Every table is optional; a missing key takes the value
/// shown in `config/tern.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    /// Listeners and transports.
    pub server: ServerSection,
    /// Relay sockets: where they bind and what clients are told.
    pub relay: RelaySection,
    /// Long-term credentials: realm, static users, TURN REST secrets.
    pub auth: AuthSection,
    /// Allocation lifetimes.
    pub allocation: AllocationSection,
    /// Quotas and TCP limits.
    pub limits: LimitsSection,
    /// Which peers clients may relay to.
    pub peers: PeersSection,
    /// TURN over TLS listeners and certificate.
    pub tls: TlsSection,
    /// PROXY protocol from load balancers.
    pub proxy_protocol: ProxyProtocolSection,
    /// Logging.
    pub log: LogSection,
    /// The admin HTTP listener (metrics, health, control).
    pub admin: AdminSection,
    /// The iceServers endpoint (credential issuer).
    pub issuer: IssuerSection,
    /// Other nodes of a fleet, for 300 Try Alternate.
    pub cluster: ClusterSection,
    /// Where this config came from (file path or `EMBEDDED_NAME`); used in errors.
    #[serde(skip)]
    pub origin: String,
}

/// `[server]`
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Addresses to listen on, "IP:PORT". Each gets UDP and/or TCP per `udp`/`tcp`.
    pub listen: Vec<String>,
    /// Serve STUN/TURN over UDP on the listen addresses.
    pub udp: bool,
    /// Serve STUN/TURN over TCP on the listen addresses.
    pub tcp: bool,
    /// Worker threads (shards); 0 = one per CPU core.
    pub workers: usize,
    /// The longest a worker waits after a wakeup to gather a batch, in µs
    /// (0..=1000; 0 = never, the default: measured, the wait cost more CPU
    /// than the wakeups it saved). It waits only while its arrival rate
    /// fills a batch of 8 within this time, never after STUN or TCP/TLS
    /// traffic.
    pub coalesce_us: u64,
    /// SOFTWARE attribute sent in responses; empty = none (it only helps attackers).
    pub software: String,
    /// Graceful drain (SIGTERM, `tern ctl drain`): seconds to wait for the
    /// last allocation to end before stopping anyway; 0 = stop at once.
    pub drain_timeout_secs: u64,
    /// RFC 5780 NAT behaviour discovery: a second "IP2:PORT2" whose IP and
    /// port both differ from the first `listen` address of its family. UDP
    /// is then also served on IP1:PORT2, IP2:PORT1 and IP2:PORT2; empty = off.
    pub alternate_listen: String,
    /// The public IP clients see for IP2 when the server is behind a 1:1
    /// NAT (required then: `relay.advertised_address` is IP1's); empty = IP2.
    pub alternate_advertised_address: String,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            listen: vec!["0.0.0.0:3478".to_owned()],
            udp: true,
            tcp: true,
            workers: 0,
            coalesce_us: 0,
            software: String::new(),
            drain_timeout_secs: 3600,
            alternate_listen: String::new(),
            alternate_advertised_address: String::new(),
        }
    }
}

/// `[relay]`
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelaySection {
    /// Local IP the relay sockets bind to. "auto" = the host's first
    /// non-loopback IPv4 address, or 127.0.0.1 if it has none.
    pub address: String,
    /// Public IP given to clients when the server is behind a 1:1 NAT
    /// (e.g. a cloud VM's public IP); empty = same as `address`.
    pub advertised_address: String,
    /// Local IPv6 address for IPv6 relays when `address` is IPv4, so
    /// clients can ask for IPv6 or dual allocations; empty = none.
    pub address6: String,
    /// Public IPv6 given to clients for `address6`; empty = same as `address6`.
    pub advertised_address6: String,
    /// Relay port range, "LOW-HIGH" inclusive.
    pub ports: String,
}

impl Default for RelaySection {
    fn default() -> Self {
        Self {
            address: "auto".to_owned(),
            advertised_address: String::new(),
            address6: String::new(),
            advertised_address6: String::new(),
            ports: "49152-65535".to_owned(),
        }
    }
}

/// `[auth]`
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// REALM sent to clients and mixed into every long-term key. Changing it
    /// invalidates the `key` of every static user.
    pub realm: String,
    /// Seconds a nonce stays valid before the client must retry (438 Stale Nonce).
    pub nonce_lifetime_secs: u64,
    /// Static users; each has a `password` or a `key`, not both.
    pub users: Vec<UserEntry>,
    /// TURN REST API shared secrets (coturn `static-auth-secret`). Several
    /// may be listed to rotate: any of them is accepted.
    #[serde(deserialize_with = "de_secrets")]
    pub rest_secrets: Vec<Secret<String>>,
    /// A file with more REST secrets, one per line (`#` comments), added
    /// after `rest_secrets`; empty = none. Re-read with the config.
    pub rest_secrets_file: String,
}

impl Default for AuthSection {
    fn default() -> Self {
        Self {
            realm: "tern".to_owned(),
            nonce_lifetime_secs: 3600,
            users: Vec::new(),
            rest_secrets: Vec::new(),
            rest_secrets_file: String::new(),
        }
    }
}

/// One entry of `auth.users`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    /// The USERNAME clients send.
    pub username: String,
    /// Plain password (the key is derived at start).
    #[serde(default, deserialize_with = "de_opt_secret")]
    pub password: Option<Secret<String>>,
    /// Long-term key: 32 hex digits of MD5("username:realm:password"), as
    /// printed by `tern key` or coturn's `turnadmin -k`.
    #[serde(default, deserialize_with = "de_opt_secret")]
    pub key: Option<Secret<String>>,
    /// SHA-256 long-term key (RFC 8489 §9.2.2): 64 hex digits of
    /// SHA-256("username:realm:password"), as printed by
    /// `tern key --algorithm sha256`. With only `key`, the user cannot use
    /// the SHA-256 password algorithm; a `password` gives both.
    #[serde(default, deserialize_with = "de_opt_secret")]
    pub key_sha256: Option<Secret<String>>,
}

/// `[allocation]`
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AllocationSection {
    /// Lifetime of an allocation whose client asks for none (RFC 8656: 600).
    pub default_lifetime_secs: u64,
    /// Longest lifetime a client may ask for; must be >= default_lifetime_secs.
    pub max_lifetime_secs: u64,
    /// Accept channel numbers 0x4000–0x7FFF (RFC 5766) instead of
    /// 0x4000–0x4FFF (RFC 8656 §12). Only for old clients that pick from the
    /// wide range, e.g. coturn's `turnutils_uclient`.
    pub rfc5766_channel_range: bool,
}

impl Default for AllocationSection {
    fn default() -> Self {
        Self {
            default_lifetime_secs: 600,
            max_lifetime_secs: 3600,
            rfc5766_channel_range: false,
        }
    }
}

/// `[limits]`: every limit is a number; 0 is rejected (never "unlimited").
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Allocations on this server.
    pub max_allocations: u32,
    /// Allocations per username (486 Allocation Quota Reached beyond).
    pub max_allocations_per_user: u32,
    /// Permissions (peer IPs) per allocation.
    pub max_permissions_per_allocation: u32,
    /// Channels per allocation.
    pub max_channels_per_allocation: u32,
    /// TCP peer connections per TCP allocation (RFC 6062), made by Connect
    /// or accepted from peers (508 Insufficient Capacity beyond).
    pub max_tcp_connections_per_allocation: u32,
    /// Concurrent TCP client connections.
    pub tcp_max_connections: usize,
    /// Concurrent TCP client connections from one IP.
    pub tcp_max_connections_per_ip: usize,
    /// A TCP connection with no complete frame for this long is closed.
    pub tcp_idle_timeout_secs: u64,
    /// Largest STUN/ChannelData frame accepted on TCP, in bytes.
    pub tcp_max_frame: usize,
    /// Seconds a TCP/TLS connection has to finish its PROXY header and TLS
    /// handshake before it is closed.
    pub tcp_handshake_timeout_secs: u64,
    /// Error responses per second to unauthenticated requests from one IP.
    pub unauth_errors_per_sec_per_ip: u32,
    /// Relayed bytes per second per allocation, each direction; absent = no limit.
    pub bandwidth_bytes_per_sec: Option<u64>,
}

impl Default for LimitsSection {
    fn default() -> Self {
        let core = crate::proto::config::Limits::default();
        let tcp = crate::settings::TcpLimits::default();
        Self {
            max_allocations: core.max_allocations,
            max_allocations_per_user: core.max_allocations_per_user,
            max_permissions_per_allocation: core.max_permissions_per_allocation,
            max_channels_per_allocation: core.max_channels_per_allocation,
            max_tcp_connections_per_allocation: core.max_tcp_connections_per_allocation,
            tcp_max_connections: tcp.max_connections,
            tcp_max_connections_per_ip: tcp.max_connections_per_ip,
            tcp_idle_timeout_secs: tcp.idle_timeout.as_secs(),
            tcp_max_frame: tcp.max_frame,
            tcp_handshake_timeout_secs: tcp.handshake_timeout.as_secs(),
            unauth_errors_per_sec_per_ip: core.unauth_errors_per_sec_per_ip,
            bandwidth_bytes_per_sec: core.bandwidth_bytes_per_sec,
        }
    }
}

/// `[peers]`: loopback, private, link-local, CGNAT, multicast and reserved
/// ranges are denied by default (see `proto::peer_policy::DEFAULT_DENY`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PeersSection {
    /// CIDRs opened despite the default deny, e.g. "10.0.0.0/8" on a LAN.
    pub allow: Vec<String>,
    /// Extra CIDRs refused; beats `allow`.
    pub deny: Vec<String>,
}

/// `[tls]`: TURN over TLS ("turns:" URLs, RFC 8656 §3.1).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    /// TLS listeners, "IP:PORT"; empty = no TLS. 5349 is the standard
    /// port; 443 gets through strict firewalls.
    pub listen: Vec<String>,
    /// PEM certificate chain, leaf first (e.g. Let's Encrypt `fullchain.pem`).
    /// Re-read on SIGHUP.
    pub cert: String,
    /// PEM private key (PKCS#8, RSA or EC). Re-read on SIGHUP.
    pub key: String,
}

/// `[proxy_protocol]`: PROXY protocol v1/v2 from a load balancer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyProtocolSection {
    /// Stream listeners, "IP:PORT" as written in server.listen (TCP) or
    /// tls.listen, whose connections start with a PROXY header.
    pub listen: Vec<String>,
    /// CIDRs of the load balancers trusted to send the header, e.g.
    /// "10.0.0.0/16". Required when `listen` is not empty. Others are
    /// served as direct clients and closed if they send a header.
    pub trusted: Vec<String>,
}

/// `[cluster]`: spreading clients over a fleet (RFC 8489 §10 ALTERNATE-SERVER).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSection {
    /// Other nodes, "IP:PORT", that new Allocates are redirected to (300
    /// Try Alternate) when this node is over `soft_max_allocations` or
    /// draining. This node's own addresses are skipped, so every node can
    /// use the same list.
    pub alternate_servers: Vec<String>,
    /// Allocations on this node beyond which new ones are redirected;
    /// absent = only when draining.
    pub soft_max_allocations: Option<u32>,
    /// The fleet the credential issuer picks from (`[[cluster.nodes]]`):
    /// each request gets the URLs of the least-loaded ready node, judged
    /// from the nodes' admin `/status`. Empty = the issuer hands out
    /// `issuer.urls`.
    pub nodes: Vec<NodeSection>,
    /// A file whose first line is a secret shared by every node (at least
    /// 16 characters), from which the nonce key is derived, so a NONCE one
    /// node hands out is valid on the others. Clients that follow a 300
    /// keep their nonce (libwebrtc does, and fails on the 438 a node with
    /// another key answers). "" = a random key per process.
    pub nonce_key_file: String,
}

/// One `[[cluster.nodes]]` entry (see `crate::issuer::fleet`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeSection {
    /// Short unique name, e.g. "turn-b": shown in the issuer's answer
    /// (`"node"`), accepted back as a hint, and used in logs.
    pub name: String,
    /// What goes into `iceServers` for this node: stun:, turn: and turns:
    /// URLs (at least one turn: or turns:), e.g.
    /// ["turn:turn-b.example.com:3478?transport=udp"].
    pub urls: Vec<String>,
    /// The node's admin listener, "http://IP:PORT" (its `/status` is read
    /// every second).
    pub admin: String,
    /// File holding that admin API's bearer token (first line); "" = none.
    pub admin_token_file: String,
}

/// `[log]`
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// "error", "warn", "info", "debug", "trace", or an EnvFilter directive
    /// such as "info,tern::proto=debug". RUST_LOG, if set, wins.
    pub level: String,
    /// "text" or "json"; logs go to stderr.
    pub format: LogFormat,
}

impl Default for LogSection {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}

/// `[admin]`
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSection {
    /// Admin HTTP listener "IP:PORT" (/metrics, /livez, /readyz, /status,
    /// /v1/…); "" = off. Never a TURN port.
    pub listen: String,
    /// File holding a bearer token for the admin API; "" = none. Required
    /// when `listen` is not a loopback address.
    pub token_file: String,
}

impl Default for AdminSection {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9641".to_owned(),
            token_file: String::new(),
        }
    }
}

/// `[issuer]`: an HTTP endpoint that mints TURN REST credentials for
/// browsers and returns them as WebRTC `iceServers` (see `crate::issuer`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IssuerSection {
    /// "IP:PORT" of the HTTP listener; empty = off.
    pub listen: String,
    /// File of bearer tokens, one per line (blank lines and `#` comments
    /// skipped, each at least 16 characters); required when `listen` is set.
    pub token_file: String,
    /// Host name or IP put in the URLs; empty = the relay's advertised address.
    pub public_name: String,
    /// URLs handed out; empty = stun + turn (udp, tcp) on the first
    /// server.listen port, and turns on the first tls.listen port.
    pub urls: Vec<String>,
    /// Credential lifetime when the request names none.
    pub default_ttl_secs: u64,
    /// Longest lifetime a request may ask for (400 beyond).
    pub max_ttl_secs: u64,
    /// Requests per second per token (burst: twice that); 429 beyond.
    pub requests_per_sec_per_token: u32,
    /// Origins allowed to call from a browser (CORS), e.g.
    /// `"https://app.example.com"`; empty = no CORS headers.
    pub allowed_origins: Vec<String>,
}

impl Default for IssuerSection {
    fn default() -> Self {
        Self {
            listen: String::new(),
            token_file: String::new(),
            public_name: String::new(),
            urls: Vec::new(),
            default_ttl_secs: 3600,
            max_ttl_secs: 86_400,
            requests_per_sec_per_token: 20,
            allowed_origins: Vec::new(),
        }
    }
}

impl FileConfig {
    /// Parses TOML text; `origin` names it in errors (a path or `EMBEDDED_NAME`).
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let mut cfg: Self =
            toml::from_str(text).map_err(|e| ConfigError::syntax(origin, text, &e))?;
        cfg.origin = origin.to_owned();
        Ok(cfg)
    }

    /// The embedded default (`config/tern.toml`): no users and no secrets.
    pub fn embedded() -> Self {
        // invariant: config/tern.toml parses (tested in `embedded_equals_code_defaults`).
        Self::from_toml(EMBEDDED_DEFAULT, EMBEDDED_NAME).expect("embedded config/tern.toml parses")
    }
}

/// Reads and parses the file at `path`. Use `FileConfig::resolve` next.
pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        file: origin.clone(),
        error,
    })?;
    FileConfig::from_toml(&text, &origin)
}

fn de_secrets<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Secret<String>>, D::Error> {
    Ok(Vec::<String>::deserialize(d)?
        .into_iter()
        .map(Secret::new)
        .collect())
}

fn de_opt_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret<String>>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(Secret::new))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_tls;
