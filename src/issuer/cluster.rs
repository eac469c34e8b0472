//! `[[cluster.nodes]]` → [`NodeSettings`]: the fleet the issuer picks a
//! node from (see [`super::fleet`]), checked once, each error naming
//! `cluster.nodes[i].key`.

use std::net::SocketAddr;
use std::path::Path;

use super::config::{URLS_EXPECTED, split_urls};
use crate::config::{ConfigError, NodeSection};
use crate::secret::Secret;

/// Longest node name: it is echoed in answers and logs.
pub const MAX_NODE_NAME: usize = 64;

/// One node of the fleet, resolved.
#[derive(Clone, Debug)]
pub struct NodeSettings {
    /// Unique name (`[A-Za-z0-9._-]`, at most [`MAX_NODE_NAME`]).
    pub name: String,
    /// `stun:` URLs handed out for this node.
    pub stun_urls: Vec<String>,
    /// `turn:`/`turns:` URLs handed out for this node; never empty.
    pub turn_urls: Vec<String>,
    /// The node's admin listener, whose `/status` the issuer reads.
    pub admin: SocketAddr,
    /// Bearer token for that admin API.
    pub admin_token: Option<Secret<String>>,
}

/// Resolves every entry; `origin` names the file in errors.
pub(super) fn resolve(
    nodes: &[NodeSection],
    origin: &str,
) -> Result<Vec<NodeSettings>, ConfigError> {
    let mut out: Vec<NodeSettings> = Vec::with_capacity(nodes.len());
    for (i, n) in nodes.iter().enumerate() {
        let err = |key: &str, value: String, problem: &str, expected: &str| ConfigError::Invalid {
            origin: origin.to_owned(),
            key: format!("cluster.nodes[{i}].{key}"),
            value,
            problem: problem.to_owned(),
            expected: expected.to_owned(),
        };
        let name = n.name.trim();
        if !is_name(name) {
            return Err(err(
                "name",
                format!("{name:?}"),
                "is not a usable node name",
                &format!("1 to {MAX_NODE_NAME} letters, digits, '.', '_' or '-', e.g. \"turn-b\""),
            ));
        }
        if out.iter().any(|o| o.name == name) {
            let problem = "is the name of an earlier node too";
            return Err(err(
                "name",
                format!("{name:?}"),
                problem,
                "a unique name per node",
            ));
        }
        let (stun_urls, turn_urls) = split_urls(&n.urls).map_err(|(j, problem)| match j {
            Some(j) => err(
                &format!("urls[{j}]"),
                format!("{:?}", n.urls[j]),
                problem,
                URLS_EXPECTED,
            ),
            None => err("urls", format!("{:?}", n.urls), problem, URLS_EXPECTED),
        })?;
        let admin = parse_admin(&n.admin).map_err(|problem| {
            err(
                "admin",
                format!("{:?}", n.admin),
                problem,
                "the node's admin listener as \"http://IP:PORT\", e.g. \"http://10.0.0.2:9641\" \
                 (its [admin] listen; plain HTTP, so keep it on a private network)",
            )
        })?;
        if let Some(o) = out.iter().find(|o| o.admin == admin) {
            let problem = format!("is also the admin address of node {:?}", o.name);
            return Err(err(
                "admin",
                format!("{:?}", n.admin),
                &problem,
                "one admin address per node",
            ));
        }
        let admin_token = match n.admin_token_file.trim() {
            "" => None,
            path => Some(token(path, origin, i)?),
        };
        out.push(NodeSettings {
            name: name.to_owned(),
            stun_urls,
            turn_urls,
            admin,
            admin_token,
        });
    }
    Ok(out)
}

fn is_name(name: &str) -> bool {
    (1..=MAX_NODE_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// "http://IP:PORT" with an optional trailing slash.
fn parse_admin(url: &str) -> Result<SocketAddr, &'static str> {
    let url = url.trim();
    if url.starts_with("https://") {
        return Err("is https, which the issuer does not speak to admin listeners");
    }
    let rest = url.strip_prefix("http://").ok_or("is not an http:// URL")?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') {
        return Err("has a path; the admin routes are at the root");
    }
    let addr: SocketAddr = rest
        .parse()
        .map_err(|_| "does not name an IP and port (host names are not resolved)")?;
    if addr.ip().is_unspecified() || addr.port() == 0 {
        return Err("is not a reachable address");
    }
    Ok(addr)
}

/// The token file, its errors naming this node's key.
fn token(path: &str, origin: &str, i: usize) -> Result<Secret<String>, ConfigError> {
    crate::admin::settings::read_token(Path::new(path), origin).map_err(|e| match e {
        ConfigError::Invalid {
            origin,
            value,
            problem,
            expected,
            ..
        } => ConfigError::Invalid {
            origin,
            key: format!("cluster.nodes[{i}].admin_token_file"),
            value,
            problem,
            expected,
        },
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, urls: &[&str], admin: &str) -> NodeSection {
        NodeSection {
            name: name.to_owned(),
            urls: urls.iter().map(|u| (*u).to_owned()).collect(),
            admin: admin.to_owned(),
            admin_token_file: String::new(),
        }
    }

    fn err(nodes: &[NodeSection]) -> String {
        resolve(nodes, "t.toml").unwrap_err().to_string()
    }

    #[test]
    fn nodes_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let tok = dir.path().join("tok");
        std::fs::write(&tok, "admin-b-token\n").unwrap();
        let mut b = node("b", &["turn:b.example.com:3478"], "http://10.0.0.3:9641");
        b.admin_token_file = tok.display().to_string();
        let nodes = [
            node(
                "turn-a.1",
                &[
                    "stun:a.example.com:3478",
                    "turn:a.example.com:3478?transport=udp",
                ],
                "http://10.0.0.2:9641/",
            ),
            b,
        ];
        let r = resolve(&nodes, "t.toml").unwrap();
        assert_eq!(r[0].name, "turn-a.1");
        assert_eq!(r[0].stun_urls, ["stun:a.example.com:3478"]);
        assert_eq!(r[0].turn_urls, ["turn:a.example.com:3478?transport=udp"]);
        assert_eq!(r[0].admin, "10.0.0.2:9641".parse().unwrap());
        assert!(r[0].admin_token.is_none());
        assert_eq!(r[1].admin_token.as_ref().unwrap().expose(), "admin-b-token");
        assert!(resolve(&[], "t.toml").unwrap().is_empty());
    }

    #[test]
    fn errors_name_file_key_and_expectation() {
        let ok = |name| node(name, &["turn:x:3478"], "http://10.0.0.2:9641");
        let e = err(&[node("b c", &["turn:x"], "http://10.0.0.2:1")]);
        assert!(
            e.starts_with("t.toml: cluster.nodes[0].name: \"b c\""),
            "{e}"
        );
        let e = err(&[ok("a"), node("a", &["turn:x"], "http://10.0.0.3:1")]);
        assert!(
            e.contains("cluster.nodes[1].name") && e.contains("unique"),
            "{e}"
        );
        let e = err(&[node("a", &["stun:x"], "http://10.0.0.2:1")]);
        assert!(
            e.contains("cluster.nodes[0].urls:") && e.contains("turn:"),
            "{e}"
        );
        let e = err(&[node("a", &["turn:x", "http://x"], "http://10.0.0.2:1")]);
        assert!(e.contains("cluster.nodes[0].urls[1]: \"http://x\""), "{e}");
        for bad in [
            "10.0.0.2:9641",
            "https://10.0.0.2:9641",
            "http://turn-b:9641",
            "http://10.0.0.2:9641/status",
            "http://0.0.0.0:9641",
        ] {
            let e = err(&[node("a", &["turn:x"], bad)]);
            assert!(e.contains("cluster.nodes[0].admin:"), "{e}");
            assert!(
                e.contains("expected the node's admin listener as \"http://IP:PORT\""),
                "{e}"
            );
        }
        let e = err(&[ok("a"), node("b", &["turn:y"], "http://10.0.0.2:9641")]);
        assert!(
            e.contains("cluster.nodes[1].admin") && e.contains("\"a\""),
            "{e}"
        );
        let mut n = ok("a");
        n.admin_token_file = "/nonexistent/tok".to_owned();
        let e = err(&[n]);
        assert!(
            e.contains("cluster.nodes[0].admin_token_file: \"/nonexistent/tok\" cannot be read"),
            "{e}"
        );
    }
}
