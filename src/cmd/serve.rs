//! `tern serve`: placeholder, replaced by the driver integration.

use crate::config::GeneratedCredential;
use crate::settings::Settings;

/// Runs the server with resolved `settings` until shutdown. `generated` is
/// the user created because none were configured (already printed).
pub fn run(settings: Settings, generated: Option<GeneratedCredential>) -> anyhow::Result<()> {
    let _ = (settings, generated);
    anyhow::bail!("serve is not implemented yet")
}
