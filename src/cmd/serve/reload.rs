//! Where the configuration comes from, and live reload (SIGHUP,
//! `tern ctl reload`, systemd `ExecReload`).
//!
//! # The reload rule: all or nothing
//! A reload reads and resolves the whole file again, exactly as at start
//! (same CLI flags, same nonce key, same generated user). If anything is
//! wrong — a syntax error, a bad value, or a change to a key that cannot
//! change while running ([`FIXED_KEYS`]) — nothing is applied: tern keeps
//! running on the old configuration and the error names every offending
//! key. Otherwise everything that can change is applied at once: users
//! and keys, REST secrets, peer allow/deny, quotas and rate limits,
//! lifetimes, the log level, and the TLS certificate (re-read from the
//! same paths). Live allocations are never ended by a reload: a removed
//! credential stops working for new requests (a Refresh with it gets 401),
//! a new peer rule applies to new permissions at once and to existing ones
//! when they are next refreshed, new quotas to new allocations.

use std::path::PathBuf;
use std::sync::Arc;

use super::generated::{self, GeneratedCredential};
use super::host::SystemHost;
use crate::admin::AdminSettings;
use crate::config::{ConfigError, FileConfig, Overrides};
use crate::issuer::IssuerSettings;
use crate::settings::Settings;

/// Keys that cannot change while running (listeners, relay sockets, the
/// realm the long-term keys are derived with, the thread layout). A reload
/// that changes one is refused as a whole.
pub const FIXED_KEYS: &[&str] = &[
    "server.listen",
    "server.udp",
    "server.tcp",
    "server.workers",
    "server.coalesce_us",
    "server.alternate_listen",
    "server.alternate_advertised_address",
    "relay.address",
    "relay.advertised_address",
    "relay.ports",
    "auth.realm",
    "tls.listen",
    "tls.cert",
    "tls.key",
    "limits (tcp connection limits)",
    "proxy_protocol",
    "admin",
    "issuer",
    "cluster.nodes",
    "cluster.nonce_key_file",
];

/// Everything needed to read the configuration again as at start.
#[derive(Debug)]
pub struct Source {
    path: Option<PathBuf>,
    overrides: Overrides,
    admin_listen: Option<String>,
    /// Kept so nonces handed out before a reload stay valid after it.
    nonce_key: [u8; 32],
    generated: Option<GeneratedCredential>,
}

/// One fully resolved configuration.
#[derive(Debug)]
pub struct Loaded {
    pub file: FileConfig,
    pub settings: Settings,
    pub admin: AdminSettings,
    pub issuer: Option<IssuerSettings>,
    pub log_level: String,
}

impl Source {
    pub fn new(path: Option<PathBuf>, overrides: Overrides, admin_listen: Option<String>) -> Self {
        Self {
            path,
            overrides,
            admin_listen,
            nonce_key: super::host::random_nonce_key(),
            generated: None,
        }
    }

    /// Reads the file with the CLI overrides applied (`admin_listen`
    /// included), not yet resolved.
    pub fn read(&self) -> Result<FileConfig, ConfigError> {
        let mut file = crate::cmd::load_config(self.path.as_deref())?;
        if let Some(a) = &self.admin_listen {
            a.clone_into(&mut file.admin.listen);
        }
        Ok(file)
    }

    /// The first load: adds a generated user when none is configured
    /// (remembered for reloads) and takes the fleet's nonce key from
    /// `cluster.nonce_key_file` when set (kept for reloads, like the
    /// random one).
    pub fn first(&mut self, mut file: FileConfig) -> Result<Loaded, ConfigError> {
        if let Some(key) = crate::config::cluster::shared_nonce_key(&file.origin, &file.cluster)? {
            self.nonce_key = key;
        }
        self.generated = generated::ensure_credentials(&mut file, &self.overrides);
        self.resolve(file)
    }

    /// The generated user, if one was made.
    pub fn generated(&self) -> Option<&GeneratedCredential> {
        self.generated.as_ref()
    }

    /// Reads and resolves the file again (a reload).
    pub fn load_again(&self) -> Result<Loaded, ConfigError> {
        let mut file = self.read()?;
        if let Some(g) = &self.generated
            && !generated::has_credentials(&file, &self.overrides)
        {
            generated::add_user(&mut file, g);
        }
        self.resolve(file)
    }

    fn resolve(&self, file: FileConfig) -> Result<Loaded, ConfigError> {
        let log_level = file.log_level(&self.overrides)?;
        let host = SystemHost::with_nonce_key(self.nonce_key);
        let settings = file.clone().resolve(&self.overrides, &host)?;
        let admin = AdminSettings::resolve(&file.admin, &file.origin)?;
        let issuer = crate::issuer::resolve(&file.issuer, &file.cluster, &file.origin, &settings)?;
        Ok(Loaded {
            file,
            settings,
            admin,
            issuer,
            log_level,
        })
    }
}

/// The fixed keys whose value differs between `old` and `new`.
pub fn fixed_changes(old: &Loaded, new: &Loaded) -> Vec<&'static str> {
    let (a, b) = (&old.settings, &new.settings);
    let (fa, fb) = (&old.file, &new.file);
    let tls = |s: &Settings| {
        s.tls
            .as_ref()
            .map(|t| (t.listen.clone(), t.cert.clone(), t.key.clone()))
    };
    let checks: [(&'static str, bool); 20] = [
        (
            "server.listen",
            a.udp_listen != b.udp_listen || a.tcp_listen != b.tcp_listen,
        ),
        ("server.udp", fa.server.udp != fb.server.udp),
        ("server.tcp", fa.server.tcp != fb.server.tcp),
        ("server.workers", a.workers != b.workers),
        ("server.coalesce_us", a.coalesce != b.coalesce),
        (
            "server.alternate_listen",
            fa.server.alternate_listen != fb.server.alternate_listen,
        ),
        (
            "server.alternate_advertised_address",
            fa.server.alternate_advertised_address != fb.server.alternate_advertised_address,
        ),
        (
            "relay.address",
            a.relay_ip != b.relay_ip || a.relay_ip6 != b.relay_ip6,
        ),
        (
            "relay.advertised_address",
            a.advertised_ip != b.advertised_ip || a.advertised_ip6 != b.advertised_ip6,
        ),
        ("relay.ports", a.relay_ports != b.relay_ports),
        ("auth.realm", a.proto.realm != b.proto.realm),
        ("tls.listen", tls(a).map(|t| t.0) != tls(b).map(|t| t.0)),
        ("tls.cert", tls(a).map(|t| t.1) != tls(b).map(|t| t.1)),
        ("tls.key", tls(a).map(|t| t.2) != tls(b).map(|t| t.2)),
        (
            "limits (tcp connection limits)",
            format!("{:?}", a.tcp) != format!("{:?}", b.tcp),
        ),
        (
            "proxy_protocol",
            format!("{:?}", a.proxy_protocol) != format!("{:?}", b.proxy_protocol),
        ),
        ("admin", old.admin != new.admin),
        ("issuer", fa.issuer != fb.issuer),
        ("cluster.nodes", fa.cluster.nodes != fb.cluster.nodes),
        (
            "cluster.nonce_key_file",
            fa.cluster.nonce_key_file != fb.cluster.nonce_key_file,
        ),
    ];
    checks
        .into_iter()
        .filter_map(|(k, changed)| changed.then_some(k))
        .collect()
}

/// One line naming what a reload changes (section names and counts, never
/// a secret); "no changes" when the file is the same.
pub fn summary(old: &Loaded, new: &Loaded) -> String {
    let (fa, fb) = (&old.file, &new.file);
    let (ca, cb) = (
        &old.settings.proto.credentials,
        &new.settings.proto.credentials,
    );
    let mut parts = Vec::new();
    if fa.auth.users != fb.auth.users {
        parts.push(format!("users {}→{}", ca.user_count(), cb.user_count()));
    }
    if fa.auth.rest_secrets != fb.auth.rest_secrets {
        parts.push(format!(
            "rest_secrets {}→{}",
            ca.rest_secret_count(),
            cb.rest_secret_count()
        ));
    }
    if fa.auth.nonce_lifetime_secs != fb.auth.nonce_lifetime_secs {
        parts.push("auth.nonce_lifetime_secs".to_owned());
    }
    if fa.peers != fb.peers {
        parts.push("peers".to_owned());
    }
    if fa.limits != fb.limits {
        parts.push("limits".to_owned());
    }
    if fa.allocation != fb.allocation {
        parts.push("allocation".to_owned());
    }
    if old.log_level != new.log_level {
        parts.push(format!("log.level {:?}→{:?}", old.log_level, new.log_level));
    }
    if fa.server.drain_timeout_secs != fb.server.drain_timeout_secs {
        parts.push(format!(
            "server.drain_timeout_secs {}→{}",
            fa.server.drain_timeout_secs, fb.server.drain_timeout_secs
        ));
    }
    if fa.server.software != fb.server.software {
        parts.push("server.software".to_owned());
    }
    if parts.is_empty() {
        "no changes".to_owned()
    } else {
        format!("changed: {}", parts.join(", "))
    }
}

/// The core configuration to hand the workers.
pub fn core_config(l: &Loaded) -> Arc<crate::proto::config::Config> {
    Arc::new(l.settings.proto.clone())
}
