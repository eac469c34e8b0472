//! `[server]`: listeners and transports, worker coalescing, SOFTWARE.

use std::net::SocketAddr;
use std::time::Duration;

use super::super::{ConfigError, FileConfig};
use super::overrides::Ctx;
use super::parse::parse_listen;

/// `server.listen` split by transport (`server.udp` / `server.tcp`).
pub(super) struct Listeners {
    pub(super) udp: Vec<SocketAddr>,
    pub(super) tcp: Vec<SocketAddr>,
}

impl FileConfig {
    /// `server.listen`, `server.udp`, `server.tcp`: at least one address
    /// and at least one transport.
    pub(super) fn resolve_listeners(&self, ctx: &Ctx) -> Result<Listeners, ConfigError> {
        let s = &self.server;
        if s.listen.is_empty() {
            return Err(ctx.err(
                "server.listen",
                "[]",
                "is empty",
                "at least one \"IP:PORT\", e.g. [\"0.0.0.0:3478\"]",
            ));
        }
        let listen = parse_listen(ctx, "server.listen", &s.listen)?;
        if !s.udp && !s.tcp {
            return Err(ctx.err(
                "server.udp",
                "false",
                "and server.tcp are both off",
                "udp = true and/or tcp = true",
            ));
        }
        Ok(Listeners {
            udp: if s.udp { listen.clone() } else { Vec::new() },
            tcp: if s.tcp { listen } else { Vec::new() },
        })
    }

    /// `server.coalesce_us`: 0 (off) to 1000 µs.
    pub(super) fn resolve_coalesce(&self, ctx: &Ctx) -> Result<Duration, ConfigError> {
        let us = self.server.coalesce_us;
        if us > 1000 {
            return Err(ctx.err(
                "server.coalesce_us",
                us.to_string(),
                "is too long a wait",
                "0 (off) to 1000 microseconds, e.g. 200",
            ));
        }
        Ok(Duration::from_micros(us))
    }

    /// `server.software`: empty means no SOFTWARE attribute.
    pub(super) fn software(&self) -> Option<String> {
        match self.server.software.trim() {
            "" => None,
            sw => Some(sw.to_owned()),
        }
    }
}
