//! `[cluster]` → [`Alternates`]: the other nodes a busy or draining node
//! sends new Allocates to (300 Try Alternate, see `proto::turn::alternate`).
//!
//! Entries are "IP:PORT", not host names: ALTERNATE-SERVER carries an
//! address (RFC 8489 §14.15), and resolving a name once at start would
//! freeze one DNS answer for the life of the process. Entries that are this
//! node's own addresses are dropped without an error, so every node of a
//! fleet can mount the same list.

use std::net::{IpAddr, SocketAddr};

use super::error::quoted;
use super::{ClusterSection, ConfigError};
use crate::proto::turn::Alternates;

/// Shortest `cluster.nonce_key_file` secret accepted.
pub const MIN_NONCE_SECRET_LEN: usize = 16;

/// The nonce key from `cluster.nonce_key_file`: SHA-256 of a domain label
/// and the file's first line; `None` when the key is unset (a random key
/// per process). Errors name `origin` and the key.
pub fn shared_nonce_key(origin: &str, c: &ClusterSection) -> Result<Option<[u8; 32]>, ConfigError> {
    let path = c.nonce_key_file.trim();
    if path.is_empty() {
        return Ok(None);
    }
    let invalid = |problem: String| ConfigError::Invalid {
        origin: origin.to_owned(),
        key: "cluster.nonce_key_file".to_owned(),
        value: quoted(path),
        problem,
        expected: format!(
            "a readable file whose first line is a secret of at least {MIN_NONCE_SECRET_LEN} \
             characters, the same on every node (e.g. `head -c 32 /dev/urandom | base64`), \
             or \"\" for a random key per node"
        ),
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| invalid(format!("cannot be read ({e})")))?;
    let secret = text.lines().next().unwrap_or("").trim();
    if secret.len() < MIN_NONCE_SECRET_LEN {
        return Err(invalid("holds no secret long enough".to_owned()));
    }
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(b"tern nonce key v1\0");
    ctx.update(secret.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(ctx.finish().as_ref());
    Ok(Some(key))
}

/// This node's own addresses: listeners, and the IPs clients may know it by.
pub(super) struct Own<'a> {
    pub(super) listen: &'a [SocketAddr],
    pub(super) ips: &'a [IpAddr],
}

impl Own<'_> {
    fn is_self(&self, a: SocketAddr) -> bool {
        self.listen.contains(&a)
            || self.ips.contains(&a.ip()) && self.listen.iter().any(|l| l.port() == a.port())
    }
}

/// Checks `[cluster]`; errors name `origin` and the key.
pub(super) fn resolve(
    origin: &str,
    c: &ClusterSection,
    own: &Own<'_>,
) -> Result<Alternates, ConfigError> {
    let err = |key: String, value: String, problem: &str, expected: &str| ConfigError::Invalid {
        origin: origin.to_owned(),
        key,
        value,
        problem: problem.to_owned(),
        expected: expected.to_owned(),
    };
    let mut servers = Vec::new();
    for (i, s) in c.alternate_servers.iter().enumerate() {
        let key = format!("cluster.alternate_servers[{i}]");
        let a: SocketAddr = s.trim().parse().map_err(|_| {
            err(
                key.clone(),
                quoted(s),
                "is not \"IP:PORT\"",
                "another node's public IP and TURN port, e.g. \"203.0.113.8:3478\" or \
                 \"[2001:db8::8]:3478\" (ALTERNATE-SERVER carries an address, not a name)",
            )
        })?;
        if a.ip().is_unspecified() || a.port() == 0 {
            return Err(err(
                key,
                quoted(s),
                "is not a reachable address",
                "a node's public IP and port, e.g. \"203.0.113.8:3478\"",
            ));
        }
        if !own.is_self(a) && !servers.contains(&a) {
            servers.push(a);
        }
    }
    if c.soft_max_allocations == Some(0) {
        return Err(err(
            "cluster.soft_max_allocations".to_owned(),
            "0".to_owned(),
            "would redirect every Allocate",
            "a number of allocations below limits.max_allocations, e.g. 50000, or no key",
        ));
    }
    // Checked here so check-config sees a bad file; `serve` reads it again
    // for the key (`cmd::serve::reload::Source::first`).
    shared_nonce_key(origin, c)?;
    Ok(Alternates {
        servers,
        soft_max_allocations: c.soft_max_allocations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(servers: &[&str], soft: Option<u32>) -> ClusterSection {
        ClusterSection {
            alternate_servers: servers.iter().map(|s| (*s).to_owned()).collect(),
            soft_max_allocations: soft,
            ..ClusterSection::default()
        }
    }

    #[test]
    fn own_addresses_and_duplicates_are_dropped() {
        let listen = ["0.0.0.0:3478".parse().unwrap()];
        let ips = ["203.0.113.7".parse().unwrap()];
        let own = Own {
            listen: &listen,
            ips: &ips,
        };
        let c = section(
            &[
                "203.0.113.7:3478",
                "203.0.113.8:3478",
                "203.0.113.8:3478",
                "203.0.113.7:5000",
                "[2001:db8::9]:3478",
            ],
            Some(10),
        );
        let a = resolve("t.toml", &c, &own).unwrap();
        let want: Vec<SocketAddr> = ["203.0.113.8:3478", "203.0.113.7:5000", "[2001:db8::9]:3478"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(a.servers, want);
        assert_eq!(a.soft_max_allocations, Some(10));
    }

    #[test]
    fn a_shared_nonce_key_file_gives_every_node_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            ClusterSection {
                nonce_key_file: p.display().to_string(),
                ..ClusterSection::default()
            }
        };
        assert_eq!(
            shared_nonce_key("t.toml", &ClusterSection::default()).unwrap(),
            None
        );
        let a = shared_nonce_key("t.toml", &file("a", "fleet-nonce-secret-1\n")).unwrap();
        let b = shared_nonce_key("t.toml", &file("b", "  fleet-nonce-secret-1  \n# x\n")).unwrap();
        let c = shared_nonce_key("t.toml", &file("c", "fleet-nonce-secret-2\n")).unwrap();
        assert!(a.is_some());
        assert_eq!(a, b);
        assert_ne!(a, c);
        let e = shared_nonce_key("t.toml", &file("tiny", "short\n"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("t.toml: cluster.nonce_key_file: "), "{e}");
        assert!(e.contains("at least 16") && !e.contains("short\""), "{e}");
        let missing = ClusterSection {
            nonce_key_file: "/nonexistent/nonce".to_owned(),
            ..ClusterSection::default()
        };
        let e = shared_nonce_key("t.toml", &missing)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot be read"), "{e}");
    }

    #[test]
    fn names_and_zero_are_rejected_with_the_key() {
        let own = Own {
            listen: &[],
            ips: &[],
        };
        let e = resolve("t.toml", &section(&["turn-b.example.com:3478"], None), &own)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cluster.alternate_servers[0]"), "{e}");
        assert!(e.contains("not a name"), "{e}");
        let e = resolve("t.toml", &section(&[], Some(0)), &own)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cluster.soft_max_allocations"), "{e}");
    }
}
