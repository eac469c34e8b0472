//! `[tls]` and `[proxy_protocol]`: the stream listeners beside plain TCP.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::super::error::quoted;
use super::super::{ConfigError, FileConfig};
use super::Host;
use super::overrides::Ctx;
use super::parse::{parse_listen, parse_nets};
use crate::settings::{ProxyProtocol, TlsSettings};

impl FileConfig {
    /// `[tls]`: listeners that do not clash with the TCP ones, and PEM files
    /// that `host` can load (so a bad path fails at start and in
    /// check-config, naming the key and the path).
    pub(super) fn resolve_tls(
        &self,
        ctx: &Ctx,
        tcp_listen: &[SocketAddr],
        host: &dyn Host,
    ) -> Result<Option<TlsSettings>, ConfigError> {
        let t = &self.tls;
        if t.listen.is_empty() {
            return Ok(None);
        }
        let listen = parse_listen(ctx, "tls.listen", &t.listen)?;
        for (i, a) in listen.iter().enumerate() {
            if a.port() != 0 && tcp_listen.contains(a) {
                return Err(ctx.err(
                    format!("tls.listen[{i}]"),
                    quoted(a),
                    "is also a TCP listener in server.listen",
                    "a different port for TLS, e.g. 5349 or 443",
                ));
            }
        }
        let cert = pem_path(ctx, "tls.cert", &t.cert)?;
        let key = pem_path(ctx, "tls.key", &t.key)?;
        host.check_tls_files(&cert, &key).map_err(|e| {
            ctx.err(
                e.key,
                quoted(e.path.display()),
                e.problem,
                "a readable PEM certificate chain (tls.cert) and its private key (tls.key)",
            )
        })?;
        Ok(Some(TlsSettings { listen, cert, key }))
    }

    /// `[proxy_protocol]`: each listener is a configured stream listener,
    /// and someone is trusted to send headers to it.
    pub(super) fn resolve_proxy(
        &self,
        ctx: &Ctx,
        tcp_listen: &[SocketAddr],
        tls_listen: &[SocketAddr],
    ) -> Result<ProxyProtocol, ConfigError> {
        let p = &self.proxy_protocol;
        if p.listen.is_empty() {
            return Ok(ProxyProtocol::default());
        }
        let listen = parse_listen(ctx, "proxy_protocol.listen", &p.listen)?;
        for (i, a) in listen.iter().enumerate() {
            if !tcp_listen.contains(a) && !tls_listen.contains(a) {
                return Err(ctx.err(
                    format!("proxy_protocol.listen[{i}]"),
                    quoted(a),
                    "is not a TCP listener (server.listen with tcp = true) or a TLS listener (tls.listen)",
                    "an address written exactly as in server.listen or tls.listen",
                ));
            }
        }
        let trusted = parse_nets(ctx, "proxy_protocol.trusted", &p.trusted)?;
        if trusted.is_empty() {
            return Err(ctx.err(
                "proxy_protocol.trusted",
                "[]",
                "is empty but proxy_protocol.listen is set",
                "the CIDRs of your load balancers, e.g. [\"10.0.0.0/16\"]",
            ));
        }
        Ok(ProxyProtocol { listen, trusted })
    }
}

/// `tls.cert` / `tls.key`: required once `tls.listen` is set.
fn pem_path(ctx: &Ctx, key: &str, v: &str) -> Result<PathBuf, ConfigError> {
    if v.trim().is_empty() {
        return Err(ctx.err(
            key,
            "\"\"",
            "is empty but tls.listen is set",
            "the path of a PEM file, e.g. \"/etc/tern/fullchain.pem\"",
        ));
    }
    Ok(PathBuf::from(v.trim()))
}
