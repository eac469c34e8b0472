//! TURN over TLS (RFC 8656 §3.1, "turns:"): the rustls server
//! configuration, certificate loading and reload.
//!
//! rustls is sans-IO (`ServerConnection::read_tls` / `write_tls`), so the
//! TLS session lives inside `tcp::Conn` as a stream variant and shares the
//! framing, limits and closing of plain TCP. This module only builds the
//! shared [`rustls::ServerConfig`]: TLS 1.2 and 1.3 with the `ring`
//! provider, ALPN `stun.turn` and `stun.nat-discovery` (RFC 7443 §3), and a
//! certificate resolver whose key can be swapped while connections run
//! (SIGHUP): a handshake takes the current key, so established sessions
//! keep theirs and new ones get the new one.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, version};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// ALPN protocol ids offered, in preference order (RFC 7443 §3, IANA
/// "STUN/TURN" registrations).
pub const ALPN: [&[u8]; 2] = [b"stun.turn", b"stun.nat-discovery"];

/// A certificate or key file that cannot be used; `Display` names the
/// config key and the path, e.g. `tls.cert: "/etc/tern/cert.pem": cannot
/// be read: No such file or directory`.
#[derive(Debug)]
pub struct CertError {
    /// `tls.cert` or `tls.key`.
    pub key: &'static str,
    /// The path as configured.
    pub path: PathBuf,
    /// What is wrong with it.
    pub problem: String,
}

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {:?}: {}", self.key, self.path, self.problem)
    }
}

impl std::error::Error for CertError {}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads a PEM certificate chain (leaf first) and a PEM private key
/// (PKCS#8, PKCS#1 or SEC1) and checks that they belong together.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, CertError> {
    let err = |k: &'static str, p: &Path, problem: String| CertError {
        key: k,
        path: p.to_owned(),
        problem,
    };
    let read = |k: &'static str, p: &Path| {
        std::fs::read(p).map_err(|e| err(k, p, format!("cannot be read: {e}")))
    };
    let cert_pem = read("tls.cert", cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            err(
                "tls.cert",
                cert,
                format!("is not a PEM certificate chain: {e}"),
            )
        })?;
    if chain.is_empty() {
        return Err(err(
            "tls.cert",
            cert,
            "has no \"-----BEGIN CERTIFICATE-----\" block".to_owned(),
        ));
    }
    let key_pem = read("tls.key", key)?;
    let der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        err(
            "tls.key",
            key,
            format!("has no PEM private key (PKCS#8, RSA or EC): {e}"),
        )
    })?;
    CertifiedKey::from_der(chain, der, &provider()).map_err(|e| {
        err(
            "tls.key",
            key,
            format!("cannot be used with the certificate in tls.cert: {e}"),
        )
    })
}

/// The certificate every new handshake gets; replaced by [`Self::reload`].
#[derive(Debug)]
pub struct CertResolver {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertResolver {
    /// Loads the files once; an error names the config key and path.
    pub fn new(cert: &Path, key: &Path) -> Result<Self, CertError> {
        let ck = load_certified_key(cert, key)?;
        Ok(Self {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: RwLock::new(Arc::new(ck)),
        })
    }

    /// Re-reads the files. On error the old certificate stays in use.
    pub fn reload(&self) -> Result<(), CertError> {
        let ck = Arc::new(load_certified_key(&self.cert, &self.key)?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = ck;
        Ok(())
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.current.read().unwrap_or_else(|e| e.into_inner()),
        ))
    }
}

/// The shared server configuration for every TLS listener.
pub fn server_config(resolver: Arc<CertResolver>) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut cfg = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&version::TLS13, &version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    cfg.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(cfg))
}
