//! The user `tern serve` generates when none is configured, and the
//! iceServers snippet printed with it, so `cargo run --release` with no
//! config gives a working TURN server and something to paste into a page.

use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};

use crate::config::{FileConfig, Overrides, UserEntry};
use crate::secret::Secret;
use crate::settings::Settings;

/// A username/password generated because no credentials were configured.
#[derive(Clone, Debug)]
pub struct GeneratedCredential {
    pub username: String,
    pub password: Secret<String>,
}

/// A random user: `tern-` + 8 hex digits, and a 24-character base64url password (144 bits).
pub fn generate_credential() -> GeneratedCredential {
    let rng = SystemRandom::new();
    let mut id = [0u8; 4];
    let mut pw = [0u8; 18];
    // invariant: the OS random source does not fail on supported platforms.
    rng.fill(&mut id).expect("system random source");
    rng.fill(&mut pw).expect("system random source");
    let username = format!(
        "tern-{}",
        id.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let password = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pw);
    GeneratedCredential {
        username,
        password: Secret::new(password),
    }
}

/// If neither `file` nor `overrides` configure a user or a REST secret,
/// adds a generated user to `file`, before it is resolved, and returns it
/// so the caller can print it (see `banner`).
pub fn ensure_credentials(
    file: &mut FileConfig,
    overrides: &Overrides,
) -> Option<GeneratedCredential> {
    if has_credentials(file, overrides) {
        return None;
    }
    let generated = generate_credential();
    add_user(file, &generated);
    Some(generated)
}

/// Are any users or REST secrets configured (file or flags)?
pub fn has_credentials(file: &FileConfig, overrides: &Overrides) -> bool {
    !file.auth.users.is_empty()
        || !file.auth.rest_secrets.is_empty()
        || !overrides.users.is_empty()
        || !overrides.rest_secrets.is_empty()
}

/// Adds `g` as a static user (also on reload, so the generated user keeps
/// its password while the file still configures none).
pub fn add_user(file: &mut FileConfig, g: &GeneratedCredential) {
    file.auth.users.push(UserEntry {
        username: g.username.clone(),
        password: Some(g.password.clone()),
        key: None,
        key_sha256: None,
    });
}

/// The message printed when a user was generated.
pub fn banner(settings: &Settings, g: &GeneratedCredential) -> String {
    let host = settings
        .advertised_ip
        .unwrap_or(settings.relay_ip)
        .to_string();
    let port = settings
        .udp_listen
        .iter()
        .chain(&settings.tcp_listen)
        .next()
        .map_or(3478, |a| a.port());
    format!(
        "No users or REST secrets are configured, so tern generated a user for this run \
         (it is not saved; add [auth] users or rest_secrets to keep one):\n  \
         username: {}\n  password: {}\niceServers for RTCPeerConnection:\n{}\n",
        g.username,
        g.password.expose(),
        ice_servers_json(&host, port, &g.username, g.password.expose()),
    )
}

/// A ready-to-paste WebRTC `iceServers` array for this server:
///
/// ```json
/// [{"urls":["stun:HOST:PORT"]},
///  {"urls":["turn:HOST:PORT?transport=udp","turn:HOST:PORT?transport=tcp"],"username":"…","credential":"…"}]
/// ```
///
/// IPv6 hosts are bracketed.
pub fn ice_servers_json(host: &str, port: u16, username: &str, password: &str) -> String {
    let host = match host.parse::<std::net::Ipv6Addr>() {
        Ok(_) => format!("[{host}]"),
        Err(_) => host.to_owned(),
    };
    // Built by hand to keep the conventional key order (urls first);
    // every string goes through serde_json for escaping.
    let j = |v: &str| serde_json::Value::from(v).to_string();
    let stun = j(&format!("stun:{host}:{port}"));
    let udp = j(&format!("turn:{host}:{port}?transport=udp"));
    let tcp = j(&format!("turn:{host}:{port}?transport=tcp"));
    format!(
        "[{{\"urls\":[{stun}]}},{{\"urls\":[{udp},{tcp}],\"username\":{},\"credential\":{}}}]",
        j(username),
        j(password)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::serve::SystemHost;

    #[test]
    fn generated_credential_is_added_once() {
        let mut file = FileConfig::embedded();
        let ov = Overrides::default();
        let g = ensure_credentials(&mut file, &ov).expect("generated");
        assert!(g.username.starts_with("tern-") && g.password.expose().len() >= 20);
        let s = file
            .clone()
            .resolve(&ov, &SystemHost::with_nonce_key([9; 32]))
            .unwrap();
        assert_eq!(s.proto.credentials.user_count(), 1);
        assert!(ensure_credentials(&mut file, &ov).is_none());
        assert!(!format!("{g:?}").contains(g.password.expose().as_str()));
    }

    #[test]
    fn configured_credentials_are_left_alone() {
        let mut file = FileConfig::embedded();
        let ov = Overrides {
            rest_secrets: vec![Secret::new("s".to_owned())],
            ..Overrides::default()
        };
        assert!(ensure_credentials(&mut file, &ov).is_none());
        assert!(file.auth.users.is_empty());
    }

    #[test]
    fn ice_servers_snippet_is_valid_json() {
        let out = ice_servers_json("203.0.113.7", 3478, "u\"ser", "p\\w");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v[0]["urls"][0], "stun:203.0.113.7:3478");
        assert_eq!(v[1]["urls"][0], "turn:203.0.113.7:3478?transport=udp");
        assert_eq!(v[1]["urls"][1], "turn:203.0.113.7:3478?transport=tcp");
        assert_eq!(v[1]["username"], "u\"ser");
        assert_eq!(v[1]["credential"], "p\\w");
        let v6: serde_json::Value =
            serde_json::from_str(&ice_servers_json("2001:db8::1", 3478, "u", "p")).unwrap();
        assert_eq!(v6[0]["urls"][0], "stun:[2001:db8::1]:3478");
    }
}
