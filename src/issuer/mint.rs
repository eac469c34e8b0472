//! Minting one credential and rendering it as the JSON WebRTC apps parse.

use serde::Serialize;

use crate::proto::auth::rest_password;
use crate::secret::Secret;

/// Longest `user` part accepted; a STUN USERNAME is at most 513 bytes
/// (RFC 8489 §14.3) and the expiry prefix takes up to 21 of them.
pub(crate) const MAX_USER_LEN: usize = 256;

/// A minted credential: `username` = `expiry[:user]`, `password` =
/// base64(HMAC-SHA1(secret, username)), exactly what
/// `proto::auth::Credentials::keys_for` checks.
pub(crate) struct Grant {
    pub(crate) username: String,
    pub(crate) password: Secret<String>,
    pub(crate) ttl: u64,
    pub(crate) expires_at: u64,
}

/// Signs a credential valid from `now` for `ttl` seconds. `user` must
/// already be checked with [`check_user`].
pub(crate) fn mint(secret: &[u8], user: Option<&str>, ttl: u64, now: u64) -> Grant {
    // Saturating: a ttl is bounded by max_ttl_secs, but `now` comes from
    // the caller and must not make this panic.
    let expires_at = now.saturating_add(ttl);
    let username = match user {
        Some(u) => format!("{expires_at}:{u}"),
        None => expires_at.to_string(),
    };
    let password = Secret::new(rest_password(secret, &username));
    Grant {
        username,
        password,
        ttl,
        expires_at,
    }
}

/// Why a `user` is refused; the message is sent to the client.
pub(crate) fn check_user(user: &str) -> Result<(), String> {
    if user.is_empty() {
        return Err("user is empty; omit it or give a name".to_owned());
    }
    if user.len() > MAX_USER_LEN {
        return Err(format!(
            "user is {} bytes long; the limit is {MAX_USER_LEN}",
            user.len()
        ));
    }
    if user.chars().any(char::is_control) {
        return Err("user contains control characters".to_owned());
    }
    Ok(())
}

/// One entry of `iceServers` (W3C WebRTC `RTCIceServer`).
#[derive(Serialize)]
struct IceServer<'a> {
    urls: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credential: Option<&'a str>,
}

/// The response body. `iceServers`/`ttl`/`expiresAt` is the shape
/// Cloudflare's and STUNner's clients parse (`iceServers` goes straight into
/// `new RTCPeerConnection({iceServers})`); `username`/`password`/`ttl`/`uris`
/// are the fields of draft-uberti-behave-turn-rest-00 §2.2, for clients of
/// the older TURN REST API.
#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "iceServers")]
    ice_servers: Vec<IceServer<'a>>,
    ttl: u64,
    #[serde(rename = "expiresAt")]
    expires_at: String,
    username: &'a str,
    password: &'a str,
    uris: &'a [String],
    /// The `[[cluster.nodes]]` entry the URLs are of.
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<&'a str>,
}

/// Where a credential is for: URLs, and the node's name with a fleet.
pub(crate) struct Target<'a> {
    pub(crate) stun_urls: &'a [String],
    pub(crate) turn_urls: &'a [String],
    pub(crate) node: Option<&'a str>,
}

/// The JSON body for `grant`: a STUN entry without credentials (left out
/// when there are no stun URLs) and a TURN entry with them.
pub(crate) fn render(grant: &Grant, target: &Target<'_>) -> Vec<u8> {
    let (stun_urls, turn_urls) = (target.stun_urls, target.turn_urls);
    let password = grant.password.expose().as_str();
    let mut ice_servers = Vec::with_capacity(2);
    if !stun_urls.is_empty() {
        ice_servers.push(IceServer {
            urls: stun_urls,
            username: None,
            credential: None,
        });
    }
    ice_servers.push(IceServer {
        urls: turn_urls,
        username: Some(&grant.username),
        credential: Some(password),
    });
    let body = Body {
        ice_servers,
        ttl: grant.ttl,
        expires_at: rfc3339(grant.expires_at),
        username: &grant.username,
        password,
        uris: turn_urls,
        node: target.node,
    };
    // invariant: the body is strings and integers, which always serialize.
    serde_json::to_vec(&body).expect("iceServers body serializes")
}

/// Unix seconds as an RFC 3339 UTC timestamp, "2026-01-01T00:00:00Z".
pub(crate) fn rfc3339(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}
