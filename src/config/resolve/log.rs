//! `[log]`: the level filter (the format is an enum serde already checked).

use tracing_subscriber::EnvFilter;

use super::super::error::quoted;
use super::super::{ConfigError, FileConfig};
use super::Overrides;
use super::overrides::Ctx;

impl FileConfig {
    /// Checks `log.level` (after `overrides`) and returns the EnvFilter
    /// directive to log with.
    pub fn log_level(&self, overrides: &Overrides) -> Result<String, ConfigError> {
        let mut this = self.clone();
        let ctx = this.apply(overrides);
        this.check_log(&ctx)?;
        Ok(this.log.level)
    }

    pub(super) fn check_log(&self, ctx: &Ctx) -> Result<(), ConfigError> {
        EnvFilter::try_new(&self.log.level).map(drop).map_err(|e| {
            ctx.err(
                "log.level",
                quoted(&self.log.level),
                format!("is not a log filter ({e})"),
                "\"error\", \"warn\", \"info\", \"debug\", \"trace\" or a directive like \"info,tern::proto=debug\"",
            )
        })
    }
}
