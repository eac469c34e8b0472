//! `SystemHost`: what resolving the config needs from this machine (see
//! `config::Host`): OS randomness for the nonce key, the interface list for
//! `relay.address = "auto"`, and the certificate files, loaded as the
//! driver will load them (`io::tls`).

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

/// Raises the open-files soft limit to the hard limit, as servers that hold
/// one socket per allocation do (an ordinary shell starts with a soft limit
/// far below what the quotas need; the hard limit is the operator's real
/// ceiling, e.g. systemd's `LimitNOFILE=`). Returns the soft limit in force
/// afterwards, if readable.
pub fn raise_open_files_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through a valid pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return None;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads one `rlimit` through a valid pointer;
        // raising the soft limit up to the hard one needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    Some(lim.rlim_cur)
}
