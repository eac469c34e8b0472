//! Logging: tracing-subscriber to stderr, as text or JSON, filtered by an
//! EnvFilter directive. `RUST_LOG`, when set and non-empty, wins over the
//! configured level so an operator can turn on debug logs without editing
//! the file.

use serde::Deserialize;
use tracing_subscriber::EnvFilter;

/// Log line format (`log.format`, `--log-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The filter to use: `RUST_LOG` if set and non-empty, else `level`.
pub fn filter(level: &str) -> anyhow::Result<EnvFilter> {
    let directive = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => v,
        _ => level.to_owned(),
    };
    EnvFilter::try_new(&directive)
        .map_err(|e| anyhow::anyhow!("log filter {directive:?} is invalid: {e}"))
}

/// Swaps the installed subscriber's filter (set once by [`init`]).
type Reloader = Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>;

static RELOAD: std::sync::OnceLock<Reloader> = std::sync::OnceLock::new();

/// Installs the global subscriber (stderr). Call once, before anything logs.
/// Its filter can be replaced later with [`set_level`] (config reload).
pub fn init(level: &str, format: LogFormat) -> anyhow::Result<()> {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(level)?)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, never into journald or files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let result = match format {
        LogFormat::Text => {
            let builder = builder.with_filter_reloading();
            let h = builder.reload_handle();
            let _ = RELOAD.set(Box::new(move |f| h.reload(f).map_err(|e| e.to_string())));
            builder.try_init()
        }
        LogFormat::Json => {
            let builder = builder.json().with_filter_reloading();
            let h = builder.reload_handle();
            let _ = RELOAD.set(Box::new(move |f| h.reload(f).map_err(|e| e.to_string())));
            builder.try_init()
        }
    };
    result.map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))
}

/// Replaces the log filter of the installed subscriber (`RUST_LOG`, when
/// set, still wins). Without [`init`] (tests, tools) this does nothing.
pub fn set_level(level: &str) -> anyhow::Result<()> {
    let f = filter(level)?;
    match RELOAD.get() {
        Some(reload) => reload(f).map_err(|e| anyhow::anyhow!("cannot change the log filter: {e}")),
        None => Ok(()),
    }
}
