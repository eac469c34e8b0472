//! One module per subcommand. These return `anyhow::Result` (the only
//! place besides `main.rs` that does); `ConfigError` messages pass through
//! unchanged because they already name file, key, value and fix.

pub mod check_config;
pub mod credential;
pub mod ctl;
pub mod import_coturn;
#[cfg(feature = "tools")]
pub mod load;
#[cfg(feature = "tools")]
pub mod probe;
pub mod serve;

use std::path::Path;

use crate::cli::Cli;
use crate::config::{self, ConfigError, FileConfig};
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
