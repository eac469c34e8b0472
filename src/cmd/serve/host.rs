//! `SystemHost`: what resolving the config needs from this machine (see
//! `config::Host`): OS randomness for the nonce key, the interface list for
//! `relay.address = "auto"`, the certificate files, loaded as the
//! driver will load them (`io::tls`), and the REST secrets file.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use ring::rand::{SecureRandom, SystemRandom};

use crate::config::{Host, TlsFileError};

/// The real host. `nonce_key` is fixed at construction so a check and a
/// test can pass a known one.
#[derive(Clone, Debug)]
pub struct SystemHost {
    nonce_key: [u8; 32],
}

impl SystemHost {
    /// With a fresh random nonce key (what `tern serve` runs with).
    pub fn new() -> Self {
        Self::with_nonce_key(random_nonce_key())
    }

    /// With the given nonce key (check-config and tests, where it does not matter).
    pub fn with_nonce_key(nonce_key: [u8; 32]) -> Self {
        Self { nonce_key }
    }
}

impl Default for SystemHost {
    fn default() -> Self {
        Self::new()
    }
}

impl Host for SystemHost {
    fn nonce_key(&self) -> [u8; 32] {
        self.nonce_key
    }

    fn detect_relay_ip(&self) -> IpAddr {
        detect_relay_ip()
    }

    fn check_tls_files(&self, cert: &Path, key: &Path) -> Result<(), TlsFileError> {
        crate::io::tls::load_certified_key(cert, key)
            .map(drop)
            .map_err(|e| TlsFileError {
                key: e.key,
                path: e.path,
                problem: e.problem,
            })
    }

    fn read_to_string(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }
}

/// 32 random bytes for the stateless nonce key.
pub fn random_nonce_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    // invariant: the OS random source does not fail on supported platforms.
    SystemRandom::new()
        .fill(&mut key)
        .expect("system random source");
    key
}

/// The relay address for `relay.address = "auto"`: the host's first
/// non-loopback, non-link-local IPv4 address, else 127.0.0.1.
pub fn detect_relay_ip() -> IpAddr {
    if_addrs::get_if_addrs()
        .ok()
        .and_then(|ifs| {
            ifs.iter().map(if_addrs::Interface::ip).find(|ip| {
                ip.is_ipv4() && !ip.is_loopback() && !ip.is_unspecified() && !is_link_local(*ip)
            })
        })
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

fn is_link_local(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4.is_link_local())
}
