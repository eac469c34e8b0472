//! One module per subcommand. These return `anyhow::Result` (the only
//! place besides `main.rs` that does); `ConfigError` messages pass through
//! unchanged because they already name file, key, value and fix.

pub mod check_config;
pub mod credential;
pub mod ctl;
pub mod load;
pub mod serve;

use std::path::Path;

use ring::rand::{SecureRandom, SystemRandom};

use crate::cli::{Cli, ServeArgs};
use crate::config::{self, ConfigError, FileConfig, GeneratedCredential};
use crate::settings::Settings;
use crate::telemetry;

/// The file at `path`, or the embedded default when `None`.
pub fn load_config(path: Option<&Path>) -> Result<FileConfig, ConfigError> {
    match path {
        Some(p) => config::load(p),
        None => Ok(FileConfig::embedded()),
    }
}

/// Installs logging from the CLI flags, falling back to the file's `[log]`
/// (or the defaults when `file` is `None`).
pub fn init_telemetry(cli: &Cli, file: Option<&FileConfig>) -> anyhow::Result<()> {
    let default = FileConfig::default();
    let file = file.unwrap_or(&default);
    let level = cli
        .log_level
        .clone()
        .unwrap_or_else(|| file.log.level.clone());
    let format = cli.log_format.unwrap_or(file.log.format);
    telemetry::init(&level, format)
}

/// 32 random bytes for the stateless nonce key.
pub fn random_nonce_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    // invariant: the OS random source does not fail on supported platforms.
    SystemRandom::new()
        .fill(&mut key)
        .expect("system random source");
    key
}

/// Everything `serve` does before the driver starts: load the config,
/// install logging, apply the CLI overrides, resolve to `Settings`, and,
/// when no credentials are configured, generate a user and print it with an
/// iceServers snippet on stdout.
pub fn prepare_serve(
    cli: &Cli,
    args: &ServeArgs,
) -> anyhow::Result<(Settings, Option<GeneratedCredential>)> {
    let file = load_config(cli.config.as_deref())?;
    let overrides = args.overrides(cli.log_level.as_deref());
    // Check the level before installing it so a bad filter gets a ConfigError.
    file.log_level(&overrides)?;
    init_telemetry(cli, Some(&file))?;
    let mut settings = file.resolve(&overrides, random_nonce_key())?;
    let generated = config::ensure_credentials(&mut settings);
    if let Some(g) = &generated {
        print!("{}", generated_banner(&settings, g));
    }
    Ok((settings, generated))
}

/// The message printed when a user was generated.
pub fn generated_banner(settings: &Settings, g: &GeneratedCredential) -> String {
    let host = settings
        .advertised_ip
        .unwrap_or(settings.relay_ip)
        .to_string();
    let port = settings
        .udp_listen
        .iter()
        .chain(&settings.tcp_listen)
        .next()
        .map_or(3478, |a| a.port());
    format!(
        "No users or REST secrets are configured, so tern generated a user for this run \
         (it is not saved; add [auth] users or rest_secrets to keep one):\n  \
         username: {}\n  password: {}\niceServers for RTCPeerConnection:\n{}\n",
        g.username,
        g.password.expose(),
        config::ice_servers_json(&host, port, &g.username, g.password.expose()),
    )
}
