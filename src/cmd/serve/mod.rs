//! `tern serve`: resolve the config against this machine (`host`), generate
//! a user when none is configured (`generated`), start the driver, say
//! exactly what clients will be given, and run until SIGINT or SIGTERM.
//! SIGHUP re-reads the TLS certificate.

pub mod generated;
pub mod host;

use anyhow::Context;

pub use generated::{GeneratedCredential, ice_servers_json};
pub use host::SystemHost;

use crate::cli::{Cli, ServeArgs};
use crate::cmd::{init_telemetry, load_config};
use crate::settings::Settings;

/// Everything `serve` does before the driver starts: load the config,
/// install logging, apply the CLI overrides, and, when no credentials are
/// configured, add a generated user; then resolve to the finished
/// `Settings` and print the generated user with an iceServers snippet on
/// stdout.
pub fn prepare(
    cli: &Cli,
    args: &ServeArgs,
) -> anyhow::Result<(Settings, Option<GeneratedCredential>)> {
    let mut file = load_config(cli.config.as_deref())?;
    let overrides = args.overrides(cli.log_level.as_deref());
    // Check the level before installing it so a bad filter gets a ConfigError.
    file.log_level(&overrides)?;
    init_telemetry(cli, Some(&file))?;
    let generated = generated::ensure_credentials(&mut file, &overrides);
    let settings = file.resolve(&overrides, &SystemHost::new())?;
    if let Some(g) = &generated {
        print!("{}", generated::banner(&settings, g));
    }
    Ok((settings, generated))
}

/// Runs the server with resolved `settings` until shutdown. `generated` is
/// the user created because none were configured (already printed).
pub fn run(settings: Settings, generated: Option<GeneratedCredential>) -> anyhow::Result<()> {
    let relay_ip = settings.relay_ip;
    let advertised = settings.advertised_ip.unwrap_or(relay_ip);
    let ports = settings.relay_ports.clone();
    let creds = &settings.proto.credentials;
    let (users, secrets) = (creds.user_count(), creds.rest_secret_count());
    let realm = settings.proto.realm.clone();
    if let Some(n) = host::raise_open_files_limit() {
        tracing::debug!(limit = n, "open-files soft limit");
    }
    for w in crate::selfcheck::run(&settings) {
        tracing::warn!("self-check: {w}");
    }
    let handle = crate::io::start(settings).context("cannot start the server")?;
    for a in handle.udp_addrs() {
        tracing::info!(listen = %a, transport = "udp", "listening for STUN/TURN");
    }
    for a in handle.tcp_addrs() {
        tracing::info!(listen = %a, transport = "tcp", "listening for STUN/TURN");
    }
    for a in handle.tls_addrs() {
        tracing::info!(listen = %a, transport = "tls", "listening for STUN/TURN");
    }
    tracing::info!(
        relay_bind = %relay_ip,
        relay_given_to_clients = %advertised,
        relay_ports = %format!("{}-{}", ports.start(), ports.end()),
        %realm,
        static_users = users,
        rest_secrets = secrets,
        generated_user = generated.as_ref().map(|g| g.username.as_str()).unwrap_or("-"),
        "relay addresses clients will be given: {advertised}:{}-{}",
        ports.start(),
        ports.end()
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let signal = rt.block_on(wait_for_signal(&handle))?;
    tracing::info!(signal, "stopping: ending all allocations");
    handle.shutdown();
    tracing::info!("stopped");
    Ok(())
}

/// Waits for SIGTERM or SIGINT; SIGHUP reloads the TLS certificate and
/// keeps waiting (a bad file is logged and the old certificate kept).
async fn wait_for_signal(handle: &crate::io::Handle) -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = term.recv() => return Ok("SIGTERM"),
            _ = int.recv() => return Ok("SIGINT"),
            _ = hup.recv() => match handle.reload_tls() {
                Ok(()) if handle.tls_addrs().is_empty() => {
                    tracing::info!("SIGHUP: no TLS listeners, nothing to reload");
                }
                Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                Err(e) => tracing::error!(error = %e, "SIGHUP: TLS certificate not reloaded; keeping the old one"),
            },
        }
    }
}
