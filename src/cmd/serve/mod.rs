//! `tern serve`: resolve the config against this machine (`host`), generate
//! a user when none is configured (`generated`), start the driver and the
//! admin listener (`control`), say exactly what clients will be given, and
//! run until stopped (`lifecycle`: SIGTERM drains, SIGINT stops, SIGHUP
//! reloads, see `reload` for the rule).

pub mod control;
pub mod generated;
pub mod host;
mod lifecycle;
pub mod reload;

use std::sync::Arc;

use anyhow::Context;

pub use generated::{GeneratedCredential, ice_servers_json};
pub use host::SystemHost;

use crate::admin::{self, Endpoints, Ops};
use crate::cli::{Cli, ServeArgs};
use crate::cmd::init_telemetry;
use crate::settings::Settings;
use control::ServeControl;
use reload::{Loaded, Source};

/// A resolved configuration and where it came from (for reloads).
#[derive(Debug)]
pub struct Prepared {
    source: Source,
    loaded: Loaded,
}

impl Prepared {
    /// The settings the driver will run with.
    pub fn settings(&self) -> &Settings {
        &self.loaded.settings
    }
}

/// Everything `serve` does before the driver starts: load the config,
/// install logging, apply the CLI overrides, and, when no credentials are
/// configured, add a generated user; then resolve to the finished
/// `Settings` (and the admin and issuer listeners) and print the generated
/// user with an iceServers snippet on stdout.
pub fn prepare(cli: &Cli, args: &ServeArgs) -> anyhow::Result<Prepared> {
    let overrides = args.overrides(cli.log_level.as_deref());
    let mut source = Source::new(
        cli.config.clone(),
        overrides.clone(),
        args.admin_listen.clone(),
    );
    let file = source.read()?;
    // Check the level before installing it so a bad filter gets a ConfigError.
    file.log_level(&overrides)?;
    init_telemetry(cli, Some(&file))?;
    let loaded = source.first(file)?;
    if let Some(g) = source.generated() {
        print!("{}", generated::banner(&loaded.settings, g));
    }
    Ok(Prepared { source, loaded })
}

/// Runs the server until it stops (SIGINT, a second SIGTERM, or the end
/// of a drain).
pub fn run(prepared: Prepared) -> anyhow::Result<()> {
    let Prepared { source, loaded } = prepared;
    let settings = loaded.settings.clone();
    log_start(&settings, source.generated());
    if let Some(n) = host::raise_open_files_limit() {
        tracing::debug!(limit = n, "open-files soft limit");
    }
    let warnings: Vec<String> = crate::selfcheck::run(&settings)
        .iter()
        .map(ToString::to_string)
        .collect();
    for w in &warnings {
        tracing::warn!("self-check: {w}");
    }
    let capacity = settings.relay_ports.clone().count() as u64;
    let handle = crate::io::start(settings).context("cannot start the server")?;
    for (t, addrs) in [
        ("udp", handle.udp_addrs()),
        ("tcp", handle.tcp_addrs()),
        ("tls", handle.tls_addrs()),
    ] {
        for a in addrs {
            tracing::info!(listen = %a, transport = t, "listening for STUN/TURN");
        }
    }
    let metrics = Arc::clone(handle.metrics());
    metrics
        .global
        .relay_ports_capacity
        .store(capacity, std::sync::atomic::Ordering::Relaxed);
    let admin_settings = loaded.admin.clone();
    let issuer = loaded.issuer.clone();
    let endpoints = endpoints(&handle, &loaded.settings, warnings);
    let control = ServeControl::new(
        handle.control(),
        handle.certs(),
        Arc::clone(&metrics),
        source,
        loaded,
    );
    control.publish_config_gauges();
    let notifier =
        admin::sd_notify::Notifier::from_env().context("$NOTIFY_SOCKET is set but unusable")?;
    let ops = Arc::new(Ops::new(
        metrics,
        handle.liveness(),
        crate::io::clock::now,
        notifier,
        control,
    ));
    let listeners = match start_listeners(&admin_settings, issuer, &ops) {
        Ok(l) => l,
        Err(e) => {
            handle.shutdown();
            return Err(e);
        }
    };
    ops.set_listening(endpoints);
    lifecycle::run(&ops, handle)?;
    drop(listeners);
    tracing::info!("stopped");
    Ok(())
}

/// The admin listener and, when configured, the credential issuer.
fn start_listeners(
    admin_settings: &admin::AdminSettings,
    issuer: Option<crate::issuer::IssuerSettings>,
    ops: &Arc<Ops<ServeControl>>,
) -> anyhow::Result<Vec<admin::ServerHandle>> {
    let mut out = Vec::new();
    out.extend(admin::start(admin_settings, Arc::clone(ops))?);
    if let Some(s) = issuer {
        let metrics = Arc::clone(&ops.metrics);
        let issuer = Arc::new(crate::issuer::Issuer::with_metrics(s, metrics));
        out.push(admin::start_issuer(issuer, crate::io::clock::unix_secs)?);
    }
    Ok(out)
}

/// Listeners and relay addresses as `/status` shows them.
fn endpoints(handle: &crate::io::Handle, s: &Settings, warnings: Vec<String>) -> Endpoints {
    let listeners = [
        ("udp", handle.udp_addrs()),
        ("tcp", handle.tcp_addrs()),
        ("tls", handle.tls_addrs()),
    ]
    .iter()
    .flat_map(|(t, addrs)| addrs.iter().map(move |a| format!("{t} {a}")))
    .collect();
    let relay_addresses = [
        s.advertised_ip.or(Some(s.relay_ip)),
        s.advertised_ip6.or(s.relay_ip6),
    ]
    .into_iter()
    .flatten()
    .map(|ip| {
        format!(
            "{ip} ports {}-{}",
            s.relay_ports.start(),
            s.relay_ports.end()
        )
    })
    .collect();
    Endpoints {
        listeners,
        relay_addresses,
        warnings,
    }
}

fn log_start(settings: &Settings, generated: Option<&GeneratedCredential>) {
    let relay_ip = settings.relay_ip;
    let advertised = settings.advertised_ip.unwrap_or(relay_ip);
    let ports = &settings.relay_ports;
    let creds = &settings.proto.credentials;
    tracing::info!(
        relay_bind = %relay_ip,
        relay_given_to_clients = %advertised,
        relay_ports = %format!("{}-{}", ports.start(), ports.end()),
        realm = %settings.proto.realm,
        static_users = creds.user_count(),
        rest_secrets = creds.rest_secret_count(),
        generated_user = generated.map_or("-", |g| g.username.as_str()),
        "relay addresses clients will be given: {advertised}:{}-{}",
        ports.start(),
        ports.end()
    );
}
