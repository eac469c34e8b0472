//! Gathering [`Facts`] from the host: the open-files limit, the addresses
//! behind unspecified listeners, the certificate's notAfter and the clock.

use std::net::IpAddr;
use std::path::Path;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

use super::Facts;
use crate::settings::Settings;

/// Why a certificate's expiry could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CertExpiryError {
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{path} has no PEM certificate (\"-----BEGIN CERTIFICATE-----\" block): {problem}")]
    NoCertificate { path: String, problem: String },
    #[error("{path}: the first certificate is not valid X.509: {problem}")]
    X509 { path: String, problem: String },
}

/// The notAfter of the first (leaf) certificate in the PEM file at `path`,
/// in Unix seconds. Used by the self-check, and meant for a
/// `tern_tls_certificate_expiry_timestamp_seconds` metric.
pub fn certificate_not_after(path: &Path) -> Result<i64, CertExpiryError> {
    let name = || path.display().to_string();
    let pem = std::fs::read(path).map_err(|error| CertExpiryError::Read {
        path: name(),
        error,
    })?;
    let leaf = CertificateDer::pem_slice_iter(&pem)
        .next()
        .ok_or_else(|| "the file holds none".to_owned())
        .and_then(|r| r.map_err(|e| e.to_string()))
        .map_err(|problem| CertExpiryError::NoCertificate {
            path: name(),
            problem,
        })?;
    let (_, cert) =
        x509_parser::parse_x509_certificate(&leaf).map_err(|e| CertExpiryError::X509 {
            path: name(),
            problem: e.to_string(),
        })?;
    Ok(cert.validity().not_after.timestamp())
}

/// The RLIMIT_NOFILE hard limit, which `tern serve` raises its soft limit
/// to at start; `None` when unlimited or unreadable.
pub(super) fn open_files_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through a valid pointer.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    (rc == 0 && lim.rlim_max != libc::RLIM_INFINITY).then_some(lim.rlim_max)
}

/// Listener IPs, with unspecified ones replaced by the host's addresses of
/// that family.
fn listener_ips(s: &Settings) -> Vec<IpAddr> {
    let tls = s.tls.iter().flat_map(|t| &t.listen);
    let configured: Vec<IpAddr> = s
        .udp_listen
        .iter()
        .chain(&s.tcp_listen)
        .chain(tls)
        .map(std::net::SocketAddr::ip)
        .collect();
    let host: Vec<IpAddr> = if configured.iter().any(IpAddr::is_unspecified) {
        if_addrs::get_if_addrs()
            .map(|ifs| ifs.iter().map(if_addrs::Interface::ip).collect())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut out = Vec::new();
    for ip in configured {
        if ip.is_unspecified() {
            out.extend(host.iter().filter(|h| h.is_ipv6() == ip.is_ipv6()));
        } else {
            out.push(ip);
        }
    }
    out.sort();
    out.dedup();
    out
}

impl Facts {
    /// Reads the facts for `settings` from this host, now. A certificate
    /// whose expiry cannot be parsed gives no expiry warning (resolving the
    /// settings already loaded it).
    pub fn gather(settings: &Settings) -> Self {
        let now_unix = i64::try_from(crate::io::clock::unix_secs()).unwrap_or(i64::MAX);
        Self {
            open_files_limit: open_files_limit(),
            listener_ips: listener_ips(settings),
            cert_not_after: settings
                .tls
                .as_ref()
                .and_then(|t| certificate_not_after(&t.cert).ok()),
            now_unix,
            rmem_max: std::fs::read_to_string("/proc/sys/net/core/rmem_max")
                .ok()
                .and_then(|v| v.trim().parse().ok()),
            net_admin: net_admin(),
        }
    }
}

/// Whether this process holds CAP_NET_ADMIN (bit 12 of `CapEff` in
/// /proc/self/status), which lets sockets pass `net.core.rmem_max`.
fn net_admin() -> bool {
    const CAP_NET_ADMIN: u32 = 12;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let hex = s.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
            u64::from_str_radix(hex.trim(), 16).ok()
        })
        .is_some_and(|caps| caps >> CAP_NET_ADMIN & 1 == 1)
}
