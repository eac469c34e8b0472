//! `[issuer]` → [`IssuerSettings`], checked once, each error naming the key.
//!
//! Kept apart from `config::resolve` so the issuer is self-contained; the
//! caller resolves the rest of the file first and passes the `Settings`
//! (for the REST secret, listener ports, relay address and TLS).

use std::net::{IpAddr, SocketAddr};

use super::IssuerSettings;
use crate::config::{ClusterSection, ConfigError, IssuerSection};
use crate::secret::Secret;
use crate::settings::Settings;

/// Shortest bearer token accepted: 16 characters of a random token are
/// ~96 bits in base64, beyond guessing at any request rate.
pub const MIN_TOKEN_LEN: usize = 16;

/// Resolves `[issuer]`; `Ok(None)` when `listen` is empty (the default).
/// `origin` names the config file in errors.
/// `[[cluster.nodes]]` are checked whether or not the issuer is on.
pub fn resolve(
    section: &IssuerSection,
    cluster: &ClusterSection,
    origin: &str,
    settings: &Settings,
) -> Result<Option<IssuerSettings>, ConfigError> {
    let nodes = super::cluster::resolve(&cluster.nodes, origin)?;
    if section.listen.trim().is_empty() {
        return Ok(None);
    }
    resolve_on(section, cluster, settings)
        .map(|mut s| {
            s.nodes = nodes;
            Some(s)
        })
        .map_err(|b| ConfigError::Invalid {
            origin: origin.to_owned(),
            key: format!("issuer.{}", b.key),
            value: b.value,
            problem: b.problem,
            expected: b.expected,
        })
}

/// A bad value: key (under `issuer.`), value as written, problem, expected.
struct Bad {
    key: String,
    value: String,
    problem: String,
    expected: String,
}

fn bad(key: &str, value: String, problem: &str, expected: &str) -> Bad {
    Bad {
        key: key.to_owned(),
        value,
        problem: problem.to_owned(),
        expected: expected.to_owned(),
    }
}

fn resolve_on(
    s: &IssuerSection,
    cluster: &ClusterSection,
    settings: &Settings,
) -> Result<IssuerSettings, Bad> {
    let listen: SocketAddr = s.listen.trim().parse().map_err(|_| {
        bad(
            "listen",
            quoted(&s.listen),
            "is not a socket address",
            "\"IP:PORT\", e.g. \"127.0.0.1:8480\", or \"\" to turn the issuer off",
        )
    })?;
    let Some(secret) = settings.proto.credentials.signing_rest_secret() else {
        return Err(bad(
            "listen",
            quoted(&s.listen),
            "is set but there is no REST secret to sign credentials with",
            "a secret in auth.rest_secrets (or --rest-secret / TERN_REST_SECRET)",
        ));
    };
    let tokens = load_tokens(&s.token_file)?;
    check_limits(s)?;
    let (stun_urls, turn_urls) = urls(s, cluster, settings)?;
    Ok(IssuerSettings {
        listen,
        tokens,
        secret: secret.clone(),
        stun_urls,
        turn_urls,
        default_ttl: s.default_ttl_secs,
        max_ttl: s.max_ttl_secs,
        rate_per_sec: s.requests_per_sec_per_token,
        allowed_origins: s.allowed_origins.clone(),
        nodes: Vec::new(),
    })
}

fn load_tokens(path: &str) -> Result<Vec<Secret<String>>, Bad> {
    if path.trim().is_empty() {
        return Err(bad(
            "token_file",
            "\"\"".to_owned(),
            "is empty but issuer.listen is set",
            "the path of a file with one bearer token per line, e.g. \
             `openssl rand -base64 24 > /etc/tern/issuer-tokens`",
        ));
    }
    let text = std::fs::read_to_string(path.trim()).map_err(|e| {
        bad(
            "token_file",
            quoted(path),
            &format!("cannot be read ({e})"),
            "a readable file with one bearer token per line",
        )
    })?;
    parse_tokens(&text).map_err(|problem| bad("token_file", quoted(path), &problem, &token_rule()))
}

/// TTLs, rate and origins.
fn check_limits(s: &IssuerSection) -> Result<(), Bad> {
    if s.default_ttl_secs == 0 || s.default_ttl_secs > s.max_ttl_secs {
        return Err(bad(
            "default_ttl_secs",
            s.default_ttl_secs.to_string(),
            "is out of range",
            &format!("1..=issuer.max_ttl_secs ({})", s.max_ttl_secs),
        ));
    }
    if s.requests_per_sec_per_token == 0 {
        return Err(bad(
            "requests_per_sec_per_token",
            "0".to_owned(),
            "would refuse every request",
            "at least 1, e.g. 20",
        ));
    }
    for (i, o) in s.allowed_origins.iter().enumerate() {
        if !is_origin(o) {
            return Err(bad(
                &format!("allowed_origins[{i}]"),
                quoted(o),
                "is not a web origin",
                "\"https://HOST\" or \"https://HOST:PORT\" with no path or trailing slash",
            ));
        }
    }
    Ok(())
}

/// The bearer tokens in a token file: one per line, surrounding whitespace
/// trimmed, blank lines and lines starting with `#` skipped. Errors name
/// the line (never its content: it is a secret).
pub fn parse_tokens(text: &str) -> Result<Vec<Secret<String>>, String> {
    let mut tokens = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if t.len() < MIN_TOKEN_LEN || t.contains(char::is_whitespace) || !t.is_ascii() {
            return Err(format!("has an unusable token on line {}", i + 1));
        }
        tokens.push(Secret::new(t.to_owned()));
    }
    if tokens.is_empty() {
        return Err("has no tokens".to_owned());
    }
    Ok(tokens)
}

fn token_rule() -> String {
    format!(
        "one token per line, each at least {MIN_TOKEN_LEN} printable ASCII characters \
         without spaces (e.g. from `openssl rand -base64 24`)"
    )
}

pub(super) const URLS_EXPECTED: &str =
    "stun:, turn: or turns: URLs (RFC 7064/7065), at least one turn: or turns:";

/// `urls` split into (stun, turn/turns) lists, or the defaults.
fn urls(s: &IssuerSection, cluster: &ClusterSection, st: &Settings) -> Result<SplitUrls, Bad> {
    if s.urls.is_empty() {
        let (stun, turn) = default_urls(s, st);
        if turn.is_empty() {
            let problem = "is empty and tern has no listener to derive URLs from";
            return Err(bad("urls", "[]".to_owned(), problem, URLS_EXPECTED));
        }
        return Ok((stun, turn));
    }
    if !cluster.nodes.is_empty() {
        let value = format!("{:?}", s.urls);
        let problem = "is set, but so is cluster.nodes (whose urls are handed out instead)";
        let expected = "issuer.urls = [] with [[cluster.nodes]], or no cluster.nodes";
        return Err(bad("urls", value, problem, expected));
    }
    split_urls(&s.urls).map_err(|(i, problem)| match i {
        Some(i) => bad(
            &format!("urls[{i}]"),
            quoted(&s.urls[i]),
            problem,
            URLS_EXPECTED,
        ),
        None => bad("urls", format!("{:?}", s.urls), problem, URLS_EXPECTED),
    })
}

/// (stun, turn/turns) URLs.
pub(super) type SplitUrls = (Vec<String>, Vec<String>);

/// `urls` split into (stun, turn/turns) lists; `Err((index of the bad
/// entry, or None for the list, problem))`.
pub(super) fn split_urls(urls: &[String]) -> Result<SplitUrls, (Option<usize>, &'static str)> {
    let (mut stun, mut turn) = (Vec::new(), Vec::new());
    for (i, u) in urls.iter().enumerate() {
        let lower = u.to_ascii_lowercase();
        if lower.starts_with("stun:") || lower.starts_with("stuns:") {
            stun.push(u.clone());
        } else if lower.starts_with("turn:") || lower.starts_with("turns:") {
            turn.push(u.clone());
        } else {
            return Err((Some(i), "is not a STUN or TURN URL"));
        }
    }
    if turn.is_empty() {
        return Err((None, "has no turn: or turns: URL"));
    }
    Ok((stun, turn))
}

/// stun + turn (udp, tcp) on the first listener's port, turns on the first
/// TLS listener's port, all on `public_name` or the advertised relay address.
fn default_urls(s: &IssuerSection, st: &Settings) -> (Vec<String>, Vec<String>) {
    let host = if s.public_name.trim().is_empty() {
        host_of(st.advertised_ip.unwrap_or(st.relay_ip))
    } else {
        s.public_name.trim().to_owned()
    };
    let port = st
        .udp_listen
        .first()
        .or(st.tcp_listen.first())
        .map_or(3478, SocketAddr::port);
    let mut stun = Vec::new();
    let mut turn = Vec::new();
    if let Some(a) = st.udp_listen.first() {
        stun.push(format!("stun:{host}:{}", a.port()));
        turn.push(format!("turn:{host}:{}?transport=udp", a.port()));
    }
    if let Some(a) = st.tcp_listen.first() {
        if stun.is_empty() {
            stun.push(format!("stun:{host}:{port}"));
        }
        turn.push(format!("turn:{host}:{}?transport=tcp", a.port()));
    }
    if let Some(a) = st.tls.as_ref().and_then(|t| t.listen.first()) {
        turn.push(format!("turns:{host}:{}?transport=tcp", a.port()));
    }
    (stun, turn)
}

/// An IP as a URL host: IPv6 in brackets.
fn host_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// `scheme://host[:port]`, nothing after.
fn is_origin(o: &str) -> bool {
    let Some((scheme, rest)) = o.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https") && !rest.is_empty() && !rest.contains(['/', '?', '#', ' '])
}

fn quoted(v: &str) -> String {
    format!("{v:?}")
}
