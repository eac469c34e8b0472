//! `[peers]`: the operator's allow and deny lists on top of the default
//! deny. The server's own relay addresses are added when `Settings` is
//! built (`SettingsBuilder::build`), from the resolved `[relay]`.

use super::super::{ConfigError, FileConfig};
use super::overrides::Ctx;
use super::parse::parse_nets;
use crate::proto::peer_policy::PeerPolicy;

impl FileConfig {
    /// `peers.allow` and `peers.deny` as CIDRs (a bare IP is one host).
    pub(super) fn resolve_peers(&self, ctx: &Ctx) -> Result<PeerPolicy, ConfigError> {
        let allow = parse_nets(ctx, "peers.allow", &self.peers.allow)?;
        let deny = parse_nets(ctx, "peers.deny", &self.peers.deny)?;
        Ok(PeerPolicy::new(allow, deny))
    }
}
