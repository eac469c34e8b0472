//! `tern credential` (TURN REST API credentials) and `tern key` (static
//! long-term keys).

use crate::cli::{CredentialArgs, KeyAlgorithm, KeyArgs};
use crate::proto::auth::{LongTermKey, Sha256Key, rest_password};

/// Prints `username` and `password` lines, or a JSON object with `--json`.
pub fn run(args: &CredentialArgs) -> anyhow::Result<()> {
    // Wall-clock time is the point here: the expiry is Unix seconds.
    let now = crate::io::clock::unix_secs();
    println!("{}", render(args, now)?);
    Ok(())
}

/// The output for `args` at Unix time `now`.
pub fn render(args: &CredentialArgs, now: u64) -> anyhow::Result<String> {
    if args.secret.is_empty() {
        anyhow::bail!("--secret is empty; pass one of auth.rest_secrets (or set TERN_REST_SECRET)");
    }
    if args.ttl == 0 {
        anyhow::bail!(
            "--ttl 0 would mint an already-expired credential; expected seconds >= 1, e.g. 86400"
        );
    }
    let expiry = now
        .checked_add(args.ttl)
        .ok_or_else(|| anyhow::anyhow!("--ttl {} is too large", args.ttl))?;
    let username = match &args.user {
        Some(u) => format!("{expiry}:{u}"),
        None => expiry.to_string(),
    };
    let password = rest_password(args.secret.as_bytes(), &username);
    if !args.json {
        return Ok(format!("username: {username}\npassword: {password}"));
    }
    let mut obj = serde_json::json!({
        "username": username,
        "credential": password,
        "ttl": args.ttl,
        "expires": expiry,
    });
    if let Some(host) = &args.host {
        let host = match host.parse::<std::net::Ipv6Addr>() {
            Ok(_) => format!("[{host}]"),
            Err(_) => host.clone(),
        };
        let port = args.port;
        obj["urls"] = serde_json::json!([
            format!("turn:{host}:{port}?transport=udp"),
            format!("turn:{host}:{port}?transport=tcp"),
        ]);
    }
    Ok(obj.to_string())
}

/// Prints the hex long-term key for `auth.users[].key` (MD5) or
/// `auth.users[].key_sha256`.
pub fn run_key(args: &KeyArgs) -> anyhow::Result<()> {
    let (user, realm, pw) = (&args.user, &args.realm, &args.password);
    let hex = match args.algorithm {
        KeyAlgorithm::Md5 => LongTermKey::derive(user, realm, pw).to_hex(),
        KeyAlgorithm::Sha256 => Sha256Key::derive(user, realm, pw).to_hex(),
    };
    println!("{hex}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(user: Option<&str>, json: bool) -> CredentialArgs {
        CredentialArgs {
            secret: "s".into(),
            user: user.map(Into::into),
            ttl: 60,
            json,
            host: Some("turn.example.org".into()),
            port: 3478,
        }
    }

    #[test]
    fn lines_follow_turn_rest() {
        let out = render(&args(Some("u"), false), 1000).unwrap();
        let want_pw = rest_password(b"s", "1060:u");
        assert_eq!(out, format!("username: 1060:u\npassword: {want_pw}"));
        let out = render(&args(None, false), 1000).unwrap();
        assert!(out.starts_with("username: 1060\n"), "{out}");
    }

    #[test]
    fn json_is_ice_server_object() {
        let out = render(&args(Some("u"), true), 1000).unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["username"], "1060:u");
        assert_eq!(v["credential"], rest_password(b"s", "1060:u"));
        assert_eq!(v["urls"][0], "turn:turn.example.org:3478?transport=udp");
    }

    #[test]
    fn rejects_zero_ttl_and_empty_secret() {
        let mut a = args(None, false);
        a.ttl = 0;
        assert!(render(&a, 1).is_err());
        let mut a = args(None, false);
        a.secret.clear();
        assert!(render(&a, 1).is_err());
    }
}
