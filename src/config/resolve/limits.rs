//! `[allocation]` and `[limits]`: lifetimes, the core's quotas and the
//! driver's TCP limits. Every limit is a number; 0 is rejected.

use std::time::Duration;

use super::super::{ConfigError, FileConfig};
use super::overrides::Ctx;
use super::parse::{nonzero, positive_secs};
use crate::proto::config::Limits;
use crate::settings::TcpLimits;

/// Smallest `tcp_max_frame`: a STUN header plus room for the usual attributes.
const MIN_FRAME: usize = 548;
/// Largest `tcp_max_frame`: a STUN message with a 16-bit length (20 + 65535).
const MAX_FRAME: usize = 65_555;

impl FileConfig {
    /// `[allocation]`: (default lifetime, max lifetime), max >= default.
    pub(super) fn resolve_lifetimes(&self, ctx: &Ctx) -> Result<(Duration, Duration), ConfigError> {
        let al = &self.allocation;
        let default = positive_secs(
            ctx,
            "allocation.default_lifetime_secs",
            al.default_lifetime_secs,
        )?;
        let max = positive_secs(ctx, "allocation.max_lifetime_secs", al.max_lifetime_secs)?;
        if max < default {
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
        Ok((default, max))
    }

    /// The core's quotas from `[limits]`.
    pub(super) fn resolve_limits(&self, ctx: &Ctx) -> Result<Limits, ConfigError> {
        let l = &self.limits;
        let n = |key: &str, v: u32| nonzero(ctx, key, v);
        Ok(Limits {
            max_allocations: n("limits.max_allocations", l.max_allocations)?,
            max_allocations_per_user: n(
                "limits.max_allocations_per_user",
                l.max_allocations_per_user,
            )?,
            max_permissions_per_allocation: n(
                "limits.max_permissions_per_allocation",
                l.max_permissions_per_allocation,
            )?,
            max_channels_per_allocation: n(
                "limits.max_channels_per_allocation",
                l.max_channels_per_allocation,
            )?,
            max_tcp_connections_per_allocation: n(
                "limits.max_tcp_connections_per_allocation",
                l.max_tcp_connections_per_allocation,
            )?,
            unauth_errors_per_sec_per_ip: n(
                "limits.unauth_errors_per_sec_per_ip",
                l.unauth_errors_per_sec_per_ip,
            )?,
            bandwidth_bytes_per_sec: match l.bandwidth_bytes_per_sec {
                Some(b) => Some(nonzero(ctx, "limits.bandwidth_bytes_per_sec", b)?),
                None => None,
            },
        })
    }

    /// The driver's TCP/TLS connection limits from `[limits]`.
    pub(super) fn resolve_tcp_limits(&self, ctx: &Ctx) -> Result<TcpLimits, ConfigError> {
        let l = &self.limits;
        if !(MIN_FRAME..=MAX_FRAME).contains(&l.tcp_max_frame) {
            return Err(ctx.err(
                "limits.tcp_max_frame",
                l.tcp_max_frame.to_string(),
                "is out of range",
                format!("{MIN_FRAME} <= tcp_max_frame <= {MAX_FRAME} bytes, e.g. 4096"),
            ));
        }
        Ok(TcpLimits {
            max_connections: nonzero(ctx, "limits.tcp_max_connections", l.tcp_max_connections)?,
            max_connections_per_ip: nonzero(
                ctx,
                "limits.tcp_max_connections_per_ip",
                l.tcp_max_connections_per_ip,
            )?,
            idle_timeout: positive_secs(
                ctx,
                "limits.tcp_idle_timeout_secs",
                l.tcp_idle_timeout_secs,
            )?,
            max_frame: l.tcp_max_frame,
            handshake_timeout: positive_secs(
                ctx,
                "limits.tcp_handshake_timeout_secs",
                l.tcp_handshake_timeout_secs,
            )?,
        })
    }
}
