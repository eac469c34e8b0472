//! `FileConfig` + CLI `Overrides` → `Settings`: the one place where every
//! value is checked and turned into its typed form.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use ipnet::IpNet;
use ring::rand::{SecureRandom, SystemRandom};
use tracing_subscriber::EnvFilter;

use super::error::quoted;
use super::{ConfigError, FileConfig, UserEntry};
use crate::proto::auth::{Credentials, LongTermKey};
use crate::proto::config::{Config, Limits};
use crate::proto::peer_policy::PeerPolicy;
use crate::secret::Secret;
use crate::settings::{ProxyProtocol, Settings, TcpLimits, TlsSettings};

mod nat;

/// Values given on the command line; each replaces the file's value
/// (repeatable flags replace the whole list, they do not append).
/// Strings are checked by `resolve` exactly like file values, and errors
/// name the flag instead of the file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--listen` → `server.listen`.
    pub listen: Vec<String>,
    /// `--relay-address` → `relay.address`.
    pub relay_address: Option<String>,
    /// `--advertised-address` → `relay.advertised_address`.
    pub advertised_address: Option<String>,
    /// `--relay-ports` → `relay.ports`.
    pub relay_ports: Option<String>,
    /// `--realm` → `auth.realm`.
    pub realm: Option<String>,
    /// `--user NAME:PASSWORD` → `auth.users`.
    pub users: Vec<(String, Secret<String>)>,
    /// `--rest-secret` / `TERN_REST_SECRET` → `auth.rest_secrets`.
    pub rest_secrets: Vec<Secret<String>>,
    /// `--tls-listen` → `tls.listen`.
    pub tls_listen: Vec<String>,
    /// `--tls-cert` → `tls.cert`.
    pub tls_cert: Option<String>,
    /// `--tls-key` → `tls.key`.
    pub tls_key: Option<String>,
    /// `--workers` → `server.workers`.
    pub workers: Option<usize>,
    /// `--log-level` → `log.level`.
    pub log_level: Option<String>,
}

/// Where each value came from, so errors can say "tern.toml" or "--flag".
struct Ctx {
    file: String,
    /// (key prefix, flag) for every overridden key.
    overridden: Vec<(&'static str, &'static str)>,
}

impl Ctx {
    fn origin(&self, key: &str) -> String {
        match self.overridden.iter().find(|(k, _)| key.starts_with(k)) {
            Some((_, flag)) => format!("command line ({flag})"),
            None => self.file.clone(),
        }
    }

    fn err(
        &self,
        key: impl Into<String>,
        value: impl Into<String>,
        problem: impl Into<String>,
        expected: impl Into<String>,
    ) -> ConfigError {
        let key = key.into();
        ConfigError::Invalid {
            origin: self.origin(&key),
            key,
            value: value.into(),
            problem: problem.into(),
            expected: expected.into(),
        }
    }
}

impl FileConfig {
    /// Applies `overrides`, checks every value and builds the `Settings` the
    /// driver runs with. `nonce_key` is 32 random bytes (see
    /// `Credentials::new`). With no users and no REST secrets the result has
    /// empty credentials; `ensure_credentials` fills in a generated user.
    pub fn resolve(
        mut self,
        overrides: &Overrides,
        nonce_key: [u8; 32],
    ) -> Result<Settings, ConfigError> {
        let ctx = self.apply(overrides);
        let s = &self.server;

        if s.listen.is_empty() {
            return Err(ctx.err(
                "server.listen",
                "[]",
                "is empty",
                "at least one \"IP:PORT\", e.g. [\"0.0.0.0:3478\"]",
            ));
        }
        let listen = parse_listen(&ctx, "server.listen", &s.listen)?;
        if !s.udp && !s.tcp {
            return Err(ctx.err(
                "server.udp",
                "false",
                "and server.tcp are both off",
                "udp = true and/or tcp = true",
            ));
        }

        let relay_ip = match self.relay.address.trim() {
            "auto" => detect_relay_ip(),
            a => {
                let ip = parse_ip(
                    &ctx,
                    "relay.address",
                    a,
                    "\"auto\" or a local IP, e.g. \"192.0.2.10\"",
                )?;
                if ip.is_unspecified() {
                    return Err(ctx.err(
                        "relay.address",
                        quoted(a),
                        "is the unspecified address, which cannot be given to clients",
                        "\"auto\" or one specific local IP (set advertised_address for the public one)",
                    ));
                }
                ip
            }
        };
        let advertised_ip = match self.relay.advertised_address.trim() {
            "" => None,
            a => {
                let ip = parse_ip(
                    &ctx,
                    "relay.advertised_address",
                    a,
                    "empty or the public IP, e.g. \"203.0.113.7\"",
                )?;
                if ip.is_unspecified() || ip.is_loopback() {
                    return Err(ctx.err(
                        "relay.advertised_address",
                        quoted(a),
                        "cannot be reached by clients",
                        "the public IP of the 1:1 NAT, or empty",
                    ));
                }
                Some(ip)
            }
        };
        let optional_ip6 = |key: &str, v: &str| -> Result<Option<IpAddr>, ConfigError> {
            match v.trim() {
                "" => Ok(None),
                a => {
                    let ip = parse_ip(
                        &ctx,
                        key,
                        a,
                        "empty or an IPv6 address, e.g. \"2001:db8::10\"",
                    )?;
                    if !ip.is_ipv6() || ip.is_unspecified() {
                        return Err(ctx.err(
                            key,
                            quoted(a),
                            "is not a specific IPv6 address",
                            "empty or one IPv6 address, e.g. \"2001:db8::10\"",
                        ));
                    }
                    Ok(Some(ip))
                }
            }
        };
        let relay_ip6 = optional_ip6("relay.address6", &self.relay.address6)?;
        let advertised_ip6 =
            optional_ip6("relay.advertised_address6", &self.relay.advertised_address6)?;
        if relay_ip6.is_some() && relay_ip.is_ipv6() {
            return Err(ctx.err(
                "relay.address6",
                quoted(&self.relay.address6),
                "is set while relay.address is already IPv6",
                "an IPv4 relay.address with an IPv6 relay.address6, or only relay.address",
            ));
        }
        if advertised_ip6.is_some() && relay_ip6.is_none() {
            return Err(ctx.err(
                "relay.advertised_address6",
                quoted(&self.relay.advertised_address6),
                "is set without relay.address6",
                "set relay.address6 too, or leave this empty",
            ));
        }
        let relay_ports = parse_port_range(&self.relay.ports).map_err(|expected| {
            ctx.err(
                "relay.ports",
                quoted(&self.relay.ports),
                "is not a port range",
                expected,
            )
        })?;

        let a = &self.auth;
        let realm = a.realm.trim();
        if realm.is_empty() || realm.len() > 127 || realm.contains('"') {
            return Err(ctx.err(
                "auth.realm",
                quoted(&a.realm),
                "is not a usable realm",
                "1 to 127 characters without '\"', e.g. \"tern\" or \"example.org\"",
            ));
        }
        let nonce_lifetime =
            positive_secs(&ctx, "auth.nonce_lifetime_secs", a.nonce_lifetime_secs)?;
        let mut credentials = Credentials::new(nonce_key);
        for (i, u) in a.users.iter().enumerate() {
            add_user(&ctx, &mut credentials, i, u, realm, &a.users[..i])?;
        }
        for (i, secret) in a.rest_secrets.iter().enumerate() {
            if secret.expose().is_empty() {
                return Err(ctx.err(
                    format!("auth.rest_secrets[{i}]"),
                    "\"\"",
                    "is empty",
                    "a long random string, e.g. from `openssl rand -base64 32`",
                ));
            }
            credentials.add_rest_secret(secret.expose());
        }

        let al = &self.allocation;
        let default_lifetime = positive_secs(
            &ctx,
            "allocation.default_lifetime_secs",
            al.default_lifetime_secs,
        )?;
        let max_lifetime =
            positive_secs(&ctx, "allocation.max_lifetime_secs", al.max_lifetime_secs)?;
        if max_lifetime < default_lifetime {
            return Err(ctx.err(
                "allocation.max_lifetime_secs",
                al.max_lifetime_secs.to_string(),
                format!(
                    "is less than allocation.default_lifetime_secs ({})",
                    al.default_lifetime_secs
                ),
                "max_lifetime_secs >= default_lifetime_secs; raise it or lower the default",
            ));
        }

        let l = &self.limits;
        let limits = Limits {
            max_allocations: nonzero(&ctx, "limits.max_allocations", l.max_allocations)?,
            max_allocations_per_user: nonzero(
                &ctx,
                "limits.max_allocations_per_user",
                l.max_allocations_per_user,
            )?,
            max_permissions_per_allocation: nonzero(
                &ctx,
                "limits.max_permissions_per_allocation",
                l.max_permissions_per_allocation,
            )?,
            max_channels_per_allocation: nonzero(
                &ctx,
                "limits.max_channels_per_allocation",
                l.max_channels_per_allocation,
            )?,
            unauth_errors_per_sec_per_ip: nonzero(
                &ctx,
                "limits.unauth_errors_per_sec_per_ip",
                l.unauth_errors_per_sec_per_ip,
            )?,
            bandwidth_bytes_per_sec: match l.bandwidth_bytes_per_sec {
                Some(b) => Some(nonzero(&ctx, "limits.bandwidth_bytes_per_sec", b)?),
                None => None,
            },
        };
        if !(MIN_FRAME..=MAX_FRAME).contains(&l.tcp_max_frame) {
            return Err(ctx.err(
                "limits.tcp_max_frame",
                l.tcp_max_frame.to_string(),
                "is out of range",
                format!("{MIN_FRAME} <= tcp_max_frame <= {MAX_FRAME} bytes, e.g. 4096"),
            ));
        }
        let tcp = TcpLimits {
            max_connections: nonzero(&ctx, "limits.tcp_max_connections", l.tcp_max_connections)?,
            max_connections_per_ip: nonzero(
                &ctx,
                "limits.tcp_max_connections_per_ip",
                l.tcp_max_connections_per_ip,
            )?,
            idle_timeout: positive_secs(
                &ctx,
                "limits.tcp_idle_timeout_secs",
                l.tcp_idle_timeout_secs,
            )?,
            max_frame: l.tcp_max_frame,
            handshake_timeout: positive_secs(
                &ctx,
                "limits.tcp_handshake_timeout_secs",
                l.tcp_handshake_timeout_secs,
            )?,
        };

        let allow = parse_nets(&ctx, "peers.allow", &self.peers.allow)?;
        let deny = parse_nets(&ctx, "peers.deny", &self.peers.deny)?;
        let mut peer_policy = PeerPolicy::new(allow, deny);
        peer_policy.add_relay_ip(relay_ip);
        for ip in [advertised_ip, relay_ip6, advertised_ip6]
            .into_iter()
            .flatten()
        {
            peer_policy.add_relay_ip(ip);
        }

        let (nat_discovery, udp_alternates) = nat::resolve(&ctx, s, &listen, advertised_ip)?;
        let tcp_listen: &[SocketAddr] = if s.tcp { &listen } else { &[] };
        let tls = self.resolve_tls(&ctx, tcp_listen)?;
        let proxy_protocol = self.resolve_proxy(
            &ctx,
            tcp_listen,
            tls.as_ref().map_or(&[][..], |t| &t.listen[..]),
        )?;

        self.check_log(&ctx)?;

        let software = match s.software.trim() {
            "" => None,
            sw => Some(sw.to_owned()),
        };
        Ok(Settings {
            udp_listen: if s.udp {
                [&listen[..], &udp_alternates].concat()
            } else {
                Vec::new()
            },
            tcp_listen: if s.tcp { listen } else { Vec::new() },
            relay_ip,
            advertised_ip,
            relay_ip6,
            advertised_ip6,
            relay_ports,
            workers: s.workers,
            coalesce: {
                if s.coalesce_us > 1000 {
                    return Err(ctx.err(
                        "server.coalesce_us",
                        s.coalesce_us.to_string(),
                        "is too long a wait",
                        "0 (off) to 1000 microseconds, e.g. 200",
                    ));
                }
                Duration::from_micros(s.coalesce_us)
            },
            tcp,
            tls,
            proxy_protocol,
            proto: Config {
                realm: realm.to_owned(),
                software,
                credentials,
                nonce_lifetime,
                default_lifetime,
                max_lifetime,
                peer_policy,
                limits,
                relay_ipv4: relay_ip.is_ipv4(),
                relay_ipv6: relay_ip.is_ipv6() || relay_ip6.is_some(),
                nat_discovery,
            },
        })
    }

    /// Checks `log.level` (after `overrides`) and returns the EnvFilter
    /// directive to log with.
    pub fn log_level(&self, overrides: &Overrides) -> Result<String, ConfigError> {
        let mut this = self.clone();
        let ctx = this.apply(overrides);
        this.check_log(&ctx)?;
        Ok(this.log.level)
    }

    fn check_log(&self, ctx: &Ctx) -> Result<(), ConfigError> {
        EnvFilter::try_new(&self.log.level).map(drop).map_err(|e| {
            ctx.err(
                "log.level",
                quoted(&self.log.level),
                format!("is not a log filter ({e})"),
                "\"error\", \"warn\", \"info\", \"debug\", \"trace\" or a directive like \"info,tern::proto=debug\"",
            )
        })
    }

    /// `[tls]`: listeners that do not clash with the TCP ones, and PEM files
    /// that load (so a bad path fails at start, naming the key and path).
    fn resolve_tls(
        &self,
        ctx: &Ctx,
        tcp_listen: &[SocketAddr],
    ) -> Result<Option<TlsSettings>, ConfigError> {
        let t = &self.tls;
        if t.listen.is_empty() {
            return Ok(None);
        }
        let listen = parse_listen(ctx, "tls.listen", &t.listen)?;
        for (i, a) in listen.iter().enumerate() {
            if a.port() != 0 && tcp_listen.contains(a) {
                return Err(ctx.err(
                    format!("tls.listen[{i}]"),
                    quoted(a),
                    "is also a TCP listener in server.listen",
                    "a different port for TLS, e.g. 5349 or 443",
                ));
            }
        }
        let mut paths = Vec::new();
        for (key, v) in [("tls.cert", &t.cert), ("tls.key", &t.key)] {
            if v.trim().is_empty() {
                return Err(ctx.err(
                    key,
                    "\"\"",
                    "is empty but tls.listen is set",
                    "the path of a PEM file, e.g. \"/etc/tern/fullchain.pem\"",
                ));
            }
            paths.push(PathBuf::from(v.trim()));
        }
        let (cert, key) = (paths.remove(0), paths.remove(0));
        crate::io::tls::load_certified_key(&cert, &key).map_err(|e| {
            ctx.err(
                e.key,
                quoted(e.path.display()),
                e.problem,
                "a readable PEM certificate chain (tls.cert) and its private key (tls.key)",
            )
        })?;
        Ok(Some(TlsSettings { listen, cert, key }))
    }

    /// `[proxy_protocol]`: each listener is a configured stream listener,
    /// and someone is trusted to send headers to it.
    fn resolve_proxy(
        &self,
        ctx: &Ctx,
        tcp_listen: &[SocketAddr],
        tls_listen: &[SocketAddr],
    ) -> Result<ProxyProtocol, ConfigError> {
        let p = &self.proxy_protocol;
        if p.listen.is_empty() {
            return Ok(ProxyProtocol::default());
        }
        let listen = parse_listen(ctx, "proxy_protocol.listen", &p.listen)?;
        for (i, a) in listen.iter().enumerate() {
            if !tcp_listen.contains(a) && !tls_listen.contains(a) {
                return Err(ctx.err(
                    format!("proxy_protocol.listen[{i}]"),
                    quoted(a),
                    "is not a TCP listener (server.listen with tcp = true) or a TLS listener (tls.listen)",
                    "an address written exactly as in server.listen or tls.listen",
                ));
            }
        }
        let trusted = parse_nets(ctx, "proxy_protocol.trusted", &p.trusted)?;
        if trusted.is_empty() {
            return Err(ctx.err(
                "proxy_protocol.trusted",
                "[]",
                "is empty but proxy_protocol.listen is set",
                "the CIDRs of your load balancers, e.g. [\"10.0.0.0/16\"]",
            ));
        }
        Ok(ProxyProtocol { listen, trusted })
    }

    /// Writes the overrides into `self` and records which keys they touched.
    fn apply(&mut self, o: &Overrides) -> Ctx {
        let mut overridden = Vec::new();
        if !o.listen.is_empty() {
            self.server.listen = o.listen.clone();
            overridden.push(("server.listen", "--listen"));
        }
        if let Some(v) = &o.relay_address {
            self.relay.address = v.clone();
            overridden.push(("relay.address", "--relay-address"));
        }
        if let Some(v) = &o.advertised_address {
            self.relay.advertised_address = v.clone();
            overridden.push(("relay.advertised_address", "--advertised-address"));
        }
        if let Some(v) = &o.relay_ports {
            self.relay.ports = v.clone();
            overridden.push(("relay.ports", "--relay-ports"));
        }
        if let Some(v) = &o.realm {
            self.auth.realm = v.clone();
            overridden.push(("auth.realm", "--realm"));
        }
        if !o.users.is_empty() {
            self.auth.users = o
                .users
                .iter()
                .map(|(name, pw)| UserEntry {
                    username: name.clone(),
                    password: Some(pw.clone()),
                    key: None,
                })
                .collect();
            overridden.push(("auth.users", "--user"));
        }
        if !o.rest_secrets.is_empty() {
            self.auth.rest_secrets = o.rest_secrets.clone();
            overridden.push(("auth.rest_secrets", "--rest-secret"));
        }
        if !o.tls_listen.is_empty() {
            self.tls.listen = o.tls_listen.clone();
            overridden.push(("tls.listen", "--tls-listen"));
        }
        if let Some(v) = &o.tls_cert {
            self.tls.cert = v.clone();
            overridden.push(("tls.cert", "--tls-cert"));
        }
        if let Some(v) = &o.tls_key {
            self.tls.key = v.clone();
            overridden.push(("tls.key", "--tls-key"));
        }
        if let Some(v) = o.workers {
            self.server.workers = v;
            overridden.push(("server.workers", "--workers"));
        }
        if let Some(v) = &o.log_level {
            self.log.level = v.clone();
            overridden.push(("log.level", "--log-level"));
        }
        let file = if self.origin.is_empty() {
            "config".to_owned()
        } else {
            self.origin.clone()
        };
        Ctx { file, overridden }
    }
}

/// Smallest `tcp_max_frame`: a STUN header plus room for the usual attributes.
const MIN_FRAME: usize = 548;
/// Largest `tcp_max_frame`: a STUN message with a 16-bit length (20 + 65535).
const MAX_FRAME: usize = 65_555;

fn add_user(
    ctx: &Ctx,
    creds: &mut Credentials,
    i: usize,
    u: &UserEntry,
    realm: &str,
    earlier: &[UserEntry],
) -> Result<(), ConfigError> {
    let key = format!("auth.users[{i}]");
    let name = &u.username;
    if name.is_empty() || name.len() > 513 {
        return Err(ctx.err(
            format!("{key}.username"),
            quoted(name),
            "is not a usable username",
            "1 to 513 bytes (RFC 8489 §14.3)",
        ));
    }
    if earlier.iter().any(|e| &e.username == name) {
        return Err(ctx.err(
            format!("{key}.username"),
            quoted(name),
            "is listed twice",
            "each username once",
        ));
    }
    match (&u.password, &u.key) {
        (Some(pw), None) => {
            if pw.expose().is_empty() {
                return Err(ctx.err(
                    format!("{key}.password"),
                    "\"\"",
                    format!("is empty for user {name:?}"),
                    "a non-empty password",
                ));
            }
            creds.add_user_password(name, realm, pw.expose());
        }
        (None, Some(hex)) => {
            let k = LongTermKey::from_hex(hex.expose().trim()).ok_or_else(|| {
                ctx.err(
                    format!("{key}.key"),
                    "[redacted]",
                    format!("of user {name:?} is not a long-term key"),
                    format!(
                        "32 hex digits of MD5(\"{name}:{realm}:PASSWORD\"); print it with \
                         `tern key --user {name} --realm {realm} --password PASSWORD`"
                    ),
                )
            })?;
            creds.add_user_key(name, k);
        }
        (Some(_), Some(_)) => {
            return Err(ctx.err(
                key,
                quoted(name),
                "has both password and key",
                "exactly one of them; remove one",
            ));
        }
        (None, None) => {
            return Err(ctx.err(
                key,
                quoted(name),
                "has neither password nor key",
                "password = \"...\" or key = \"<32 hex digits>\"",
            ));
        }
    }
    Ok(())
}

/// A list of distinct "IP:PORT" listener addresses.
fn parse_listen(ctx: &Ctx, key: &str, list: &[String]) -> Result<Vec<SocketAddr>, ConfigError> {
    let mut listen = Vec::with_capacity(list.len());
    for (i, a) in list.iter().enumerate() {
        let addr: SocketAddr = a.trim().parse().map_err(|_| {
            ctx.err(
                format!("{key}[{i}]"),
                quoted(a),
                "is not a socket address",
                "\"IP:PORT\", e.g. \"0.0.0.0:3478\" or \"[::]:3478\"",
            )
        })?;
        if listen.contains(&addr) {
            return Err(ctx.err(
                format!("{key}[{i}]"),
                quoted(a),
                "is listed twice",
                "each address once",
            ));
        }
        listen.push(addr);
    }
    Ok(listen)
}

fn parse_ip(ctx: &Ctx, key: &str, v: &str, expected: &str) -> Result<IpAddr, ConfigError> {
    v.parse()
        .map_err(|_| ctx.err(key, quoted(v), "is not an IP address", expected))
}

fn positive_secs(ctx: &Ctx, key: &str, v: u64) -> Result<Duration, ConfigError> {
    // One year: anything longer is a typo (and keeps Instant arithmetic far from overflow).
    const MAX: u64 = 365 * 24 * 3600;
    if v == 0 || v > MAX {
        return Err(ctx.err(
            key,
            v.to_string(),
            "is out of range",
            format!("1 <= seconds <= {MAX}"),
        ));
    }
    Ok(Duration::from_secs(v))
}

fn nonzero<T: Copy + PartialEq + Default + ToString>(
    ctx: &Ctx,
    key: &str,
    v: T,
) -> Result<T, ConfigError> {
    if v == T::default() {
        return Err(ctx.err(
            key,
            "0",
            "is not a limit (0 does not mean unlimited)",
            "a positive number; pick a large one if you want no practical limit",
        ));
    }
    Ok(v)
}

fn parse_nets(ctx: &Ctx, key: &str, list: &[String]) -> Result<Vec<IpNet>, ConfigError> {
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            let s = s.trim();
            // A bare IP means a single host.
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    ctx.err(
                        format!("{key}[{i}]"),
                        quoted(s),
                        "is not a CIDR",
                        "\"ADDRESS/PREFIX\", e.g. \"10.0.0.0/8\" or \"2001:db8::/32\"",
                    )
                })
        })
        .collect()
}

/// Parses "LOW-HIGH" (inclusive, 1 <= LOW <= HIGH <= 65535). The error is
/// the expectation, for use in a `ConfigError` or a clap message.
pub fn parse_port_range(s: &str) -> Result<RangeInclusive<u16>, String> {
    const EXPECTED: &str = "\"LOW-HIGH\" with 1 <= LOW <= HIGH <= 65535, e.g. \"49152-65535\"";
    let (lo, hi) = s.trim().split_once('-').ok_or(EXPECTED)?;
    let lo: u16 = lo.trim().parse().map_err(|_| EXPECTED)?;
    let hi: u16 = hi.trim().parse().map_err(|_| EXPECTED)?;
    if lo == 0 || lo > hi {
        return Err(EXPECTED.to_owned());
    }
    Ok(lo..=hi)
}

/// The relay address for `relay.address = "auto"`: the host's first
/// non-loopback, non-link-local IPv4 address, else 127.0.0.1.
pub fn detect_relay_ip() -> IpAddr {
    if_addrs::get_if_addrs()
        .ok()
        .and_then(|ifs| {
            ifs.iter().map(if_addrs::Interface::ip).find(|ip| {
                ip.is_ipv4() && !ip.is_loopback() && !ip.is_unspecified() && !is_link_local(*ip)
            })
        })
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

fn is_link_local(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4.is_link_local())
}

/// A username/password generated because no credentials were configured.
#[derive(Clone, Debug)]
pub struct GeneratedCredential {
    pub username: String,
    pub password: Secret<String>,
}

/// A random user: `tern-` + 8 hex digits, and a 24-character base64url password (144 bits).
pub fn generate_credential() -> GeneratedCredential {
    let rng = SystemRandom::new();
    let mut id = [0u8; 4];
    let mut pw = [0u8; 18];
    // invariant: the OS random source does not fail on supported platforms.
    rng.fill(&mut id).expect("system random source");
    rng.fill(&mut pw).expect("system random source");
    let username = format!(
        "tern-{}",
        id.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let password = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pw);
    GeneratedCredential {
        username,
        password: Secret::new(password),
    }
}

/// If `settings` has no users and no REST secrets, adds a generated user
/// and returns it so the caller can print it (see `ice_servers_json`).
pub fn ensure_credentials(settings: &mut Settings) -> Option<GeneratedCredential> {
    if !settings.proto.credentials.is_empty() {
        return None;
    }
    let generated = generate_credential();
    let realm = settings.proto.realm.clone();
    settings.proto.credentials.add_user_password(
        &generated.username,
        &realm,
        generated.password.expose(),
    );
    Some(generated)
}

/// A ready-to-paste WebRTC `iceServers` array for this server:
///
/// ```json
/// [{"urls":["stun:HOST:PORT"]},
///  {"urls":["turn:HOST:PORT?transport=udp","turn:HOST:PORT?transport=tcp"],"username":"…","credential":"…"}]
/// ```
///
/// IPv6 hosts are bracketed.
pub fn ice_servers_json(host: &str, port: u16, username: &str, password: &str) -> String {
    let host = match host.parse::<std::net::Ipv6Addr>() {
        Ok(_) => format!("[{host}]"),
        Err(_) => host.to_owned(),
    };
    // Built by hand to keep the conventional key order (urls first);
    // every string goes through serde_json for escaping.
    let j = |v: &str| serde_json::Value::from(v).to_string();
    let stun = j(&format!("stun:{host}:{port}"));
    let udp = j(&format!("turn:{host}:{port}?transport=udp"));
    let tcp = j(&format!("turn:{host}:{port}?transport=tcp"));
    format!(
        "[{{\"urls\":[{stun}]}},{{\"urls\":[{udp},{tcp}],\"username\":{},\"credential\":{}}}]",
        j(username),
        j(password)
    )
}
