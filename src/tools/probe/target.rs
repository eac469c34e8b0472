//! What to probe: a `stun:`, `turn:` or `turns:` URI (RFC 7064, RFC 7065),
//! parsed into a host, a port and a transport, and resolved with the
//! system resolver (`std::net::ToSocketAddrs`).

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};

/// The leg between the probe and the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
        })
    }
}

/// A parsed `stun:`/`turn:`/`turns:` URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `true` for `turn:`/`turns:`, `false` for `stun:`/`stuns:` (Binding only).
    pub turn: bool,
    /// The host as written, without IPv6 brackets (also the TLS server name).
    pub host: String,
    pub port: u16,
    pub transport: Transport,
}

impl Target {
    /// Parses `turn:HOST[:PORT][?transport=udp|tcp]`, `turns:HOST[:PORT]`,
    /// `stun:HOST[:PORT]`, `stuns:HOST[:PORT]`. Default ports are 3478
    /// and, for the TLS schemes, 5349 (RFC 7065 §3).
    pub fn parse(uri: &str) -> Result<Self, String> {
        let (scheme, rest) = uri.split_once(':').ok_or_else(|| {
            format!("{uri:?}: expected a URI such as turn:HOST:3478?transport=udp")
        })?;
        let (turn, secure) = match scheme.to_ascii_lowercase().as_str() {
            "turn" => (true, false),
            "turns" => (true, true),
            "stun" => (false, false),
            "stuns" => (false, true),
            other => {
                return Err(format!(
                    "{uri:?}: unknown scheme {other:?}; expected stun:, turn: or turns:"
                ));
            }
        };
        let (authority, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        let (host, port) = split_host_port(authority)
            .ok_or_else(|| format!("{uri:?}: expected HOST or HOST:PORT after {scheme}:"))?;
        let mut transport = if secure {
            Transport::Tls
        } else {
            Transport::Udp
        };
        if let Some(query) = query {
            transport = match (query.to_ascii_lowercase().as_str(), secure) {
                ("transport=udp", false) => Transport::Udp,
                ("transport=tcp", false) => Transport::Tcp,
                ("transport=tcp", true) => Transport::Tls,
                _ => {
                    return Err(format!(
                        "{uri:?}: unsupported query {query:?}; expected transport=udp or \
                         transport=tcp (turns: is TLS over TCP)"
                    ));
                }
            };
        }
        Ok(Self {
            turn,
            host: host.to_owned(),
            port: port.unwrap_or(if secure { 5349 } else { 3478 }),
            transport,
        })
    }

    /// The server's addresses, in the resolver's order.
    pub fn resolve(&self) -> Result<Vec<SocketAddr>, String> {
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {}: {e}", self.host))?
            .collect();
        if addrs.is_empty() {
            return Err(format!("{} resolved to no address", self.host));
        }
        Ok(addrs)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`; `None` when malformed.
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() || host.contains(['/', '@', ' ']) {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse().ok().filter(|&n: &u16| n != 0)?),
        None => None,
    };
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(uri: &str) -> Target {
        Target::parse(uri).unwrap()
    }

    #[test]
    fn schemes_ports_and_transports() {
        let x = t("turn:turn.example.org:3479?transport=tcp");
        assert_eq!(
            (x.turn, x.host.as_str(), x.port, x.transport),
            (true, "turn.example.org", 3479, Transport::Tcp)
        );
        assert_eq!(t("turn:h").transport, Transport::Udp);
        assert_eq!(t("turn:h").port, 3478);
        assert_eq!(t("turns:h").port, 5349);
        assert_eq!(t("turns:h:443?transport=tcp").transport, Transport::Tls);
        assert!(!t("stun:h").turn);
        let v6 = t("turn:[2001:db8::1]:3478?transport=udp");
        assert_eq!(v6.host, "2001:db8::1");
        assert_eq!(v6.to_string(), "[2001:db8::1]:3478");
    }

    #[test]
    fn rejects_what_it_cannot_probe() {
        for bad in [
            "turn.example.org:3478",
            "http://h",
            "turn:",
            "turn:h:0",
            "turn:h:x",
            "turn:h?transport=sctp",
            "turns:h?transport=udp",
            "turn:[::1",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
