//! `tern ctl`: the admin API from a shell. It talks HTTP/1.1 to the admin
//! listener (`--admin`, else `[admin] listen` of `--config`, else
//! 127.0.0.1:9641) with the bearer token from `--token-file` (else
//! `[admin] token_file`).

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::admin::api::percent_encode;
use crate::admin::client::{HttpResponse, request};
use crate::admin::settings::read_token;
use crate::admin::{AllocationInfo, ReloadSummary, Status};
use crate::cli::{Cli, CtlAction, CtlArgs};
use crate::secret::Secret;

/// How long one admin request may take (a reload re-reads the config).
const TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `tern ctl …` and prints the answer.
pub fn run(cli: &Cli, args: &CtlArgs) -> anyhow::Result<()> {
    let (addr, token) = target(cli, args)?;
    print!(
        "{}",
        execute(addr, token.as_ref(), &args.action, args.json)?
    );
    Ok(())
}

/// The admin address and token from the flags, else the config file.
fn target(cli: &Cli, args: &CtlArgs) -> anyhow::Result<(SocketAddr, Option<Secret<String>>)> {
    let file = match &cli.config {
        Some(p) => Some(crate::config::load(p)?),
        None => None,
    };
    let section = file.as_ref().map(|f| f.admin.clone()).unwrap_or_default();
    let addr = match &args.admin {
        Some(a) => *a,
        None => {
            let listen = section.listen.trim();
            if listen.is_empty() {
                bail!(
                    "the admin listener is off in the config (admin.listen = \"\"); \
                     set admin.listen or pass --admin IP:PORT"
                );
            }
            listen
                .parse()
                .with_context(|| format!("admin.listen: {listen:?} is not IP:PORT"))?
        }
    };
    let origin = file.as_ref().map_or("--token-file", |f| f.origin.as_str());
    let token = match (&args.token_file, section.token_file.as_str()) {
        (Some(p), _) => Some(read_token(p, "--token-file")?),
        (None, "") => None,
        (None, p) => Some(read_token(Path::new(p), origin)?),
    };
    Ok((connectable(addr), token))
}

/// A wildcard listen address is reached through loopback.
fn connectable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, addr.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, addr.port()).into(),
        _ => addr,
    }
}

/// Performs `action` against `addr`; the text to print.
pub fn execute(
    addr: SocketAddr,
    token: Option<&Secret<String>>,
    action: &CtlAction,
    json: bool,
) -> anyhow::Result<String> {
    let (method, path) = match action {
        CtlAction::Status => ("GET", "/status".to_owned()),
        CtlAction::Allocations { user: None } => ("GET", "/v1/allocations".to_owned()),
        CtlAction::Allocations { user: Some(u) } => {
            ("GET", format!("/v1/allocations?user={}", percent_encode(u)))
        }
        CtlAction::Kick { user } => (
            "DELETE",
            format!("/v1/users/{}/allocations", percent_encode(user)),
        ),
        CtlAction::Drain => ("POST", "/v1/drain".to_owned()),
        CtlAction::Undrain => ("POST", "/v1/undrain".to_owned()),
        CtlAction::Reload => ("POST", "/v1/reload".to_owned()),
    };
    let resp = request(addr, method, &path, token.map(|t| t.expose().as_str()), TIMEOUT)
        .with_context(|| {
            format!("cannot reach the admin listener at {addr}; is tern running with admin.listen = \"{addr}\"? (--admin overrides)")
        })?;
    check(&resp, addr)?;
    if json {
        return Ok(resp.body);
    }
    let v: serde_json::Value = serde_json::from_str(&resp.body)
        .with_context(|| format!("{addr} answered {method} {path} with non-JSON"))?;
    Ok(match action {
        CtlAction::Status => format_status(&serde_json::from_value(v)?),
        CtlAction::Allocations { .. } => {
            format_allocations(&serde_json::from_value::<Vec<AllocationInfo>>(v)?)
        }
        CtlAction::Kick { user } => format!("ended {} allocation(s) of {user}\n", v["ended"]),
        CtlAction::Drain | CtlAction::Undrain => match v["draining"].as_bool() {
            Some(true) => "draining: new allocations are refused\n".to_owned(),
            _ => "not draining\n".to_owned(),
        },
        CtlAction::Reload => {
            let s: ReloadSummary = serde_json::from_value(v)?;
            format!("reloaded: {}\n", s.message)
        }
    })
}

/// Non-2xx → an error carrying the server's message.
fn check(resp: &HttpResponse, addr: SocketAddr) -> anyhow::Result<()> {
    if (200..300).contains(&resp.status) {
        return Ok(());
    }
    let msg = serde_json::from_str::<serde_json::Value>(&resp.body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| resp.body.trim().to_owned());
    match resp.status {
        401 => bail!("{addr}: {msg}; pass --token-file with the file named by admin.token_file"),
        422 => bail!("reload refused, tern keeps running on the old config: {msg}"),
        s => bail!("{addr}: HTTP {s}: {msg}"),
    }
}

fn format_status(s: &Status) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "version:    {}", s.version);
    let _ = writeln!(o, "uptime:     {}s", s.uptime_secs);
    let _ = writeln!(o, "draining:   {}", s.draining);
    let allocs: Vec<String> = s
        .allocations
        .iter()
        .map(|(t, n)| format!("{t} {n}"))
        .collect();
    let _ = writeln!(
        o,
        "allocations: {} (capacity {})",
        allocs.join(", "),
        s.capacity
    );
    let _ = writeln!(o, "listeners:  {}", s.listeners.join(", "));
    let _ = writeln!(o, "relays:     {}", s.relay_addresses.join(", "));
    if let Some(r) = &s.last_reload {
        let outcome = if r.ok { "ok" } else { "FAILED" };
        let _ = writeln!(o, "last reload: {outcome} at {}: {}", r.at_unix, r.message);
    }
    o
}

fn format_allocations(list: &[AllocationInfo]) -> String {
    let mut o = format!(
        "{:<8} {:<24} {:<5} {:<24} {:<24} {:>8} {:>14} {:>14}\n",
        "ID", "USER", "PROTO", "CLIENT", "RELAY", "AGE(s)", "TO PEER(B)", "TO CLIENT(B)"
    );
    for a in list {
        let relay: Vec<String> = a.relay.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            o,
            "{:<8} {:<24} {:<5} {:<24} {:<24} {:>8} {:>14} {:>14}",
            a.id,
            a.user,
            a.transport,
            a.client.to_string(),
            relay.join(","),
            a.age_secs,
            a.bytes_to_peer,
            a.bytes_to_client
        );
    }
    let _ = writeln!(o, "{} allocation(s)", list.len());
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::Limits;
    use crate::admin::tests::{Running, run as run_admin};

    fn ctl(s: &Running, token: Option<&str>, action: CtlAction) -> anyhow::Result<String> {
        let token = token.map(|t| Secret::new(t.to_owned()));
        execute(s.addr(), token.as_ref(), &action, false)
    }

    #[test]
    fn every_action_reaches_its_route() {
        let s = run_admin(Some("tok"), Limits::default());
        let status = ctl(&s, Some("tok"), CtlAction::Status).unwrap();
        assert!(status.contains("version:    test"), "{status}");
        let list = ctl(
            &s,
            Some("tok"),
            CtlAction::Allocations {
                user: Some("1700000000:carol".into()),
            },
        )
        .unwrap();
        assert!(
            list.contains("1700000000:carol") && list.ends_with("1 allocation(s)\n"),
            "{list}"
        );
        let kick = ctl(&s, Some("tok"), CtlAction::Kick { user: "a b".into() }).unwrap();
        assert_eq!(kick, "ended 3 allocation(s) of a b\n");
        assert!(s.fake.calls().contains(&"kick a b".to_owned()));
        assert!(
            ctl(&s, Some("tok"), CtlAction::Drain)
                .unwrap()
                .starts_with("draining")
        );
        assert_eq!(
            ctl(&s, Some("tok"), CtlAction::Undrain).unwrap(),
            "not draining\n"
        );
        assert_eq!(
            ctl(&s, Some("tok"), CtlAction::Reload).unwrap(),
            "reloaded: users +1\n"
        );
        let raw = execute(
            s.addr(),
            Some(&Secret::new("tok".into())),
            &CtlAction::Status,
            true,
        )
        .unwrap();
        assert!(serde_json::from_str::<Status>(&raw).is_ok());
    }

    #[test]
    fn errors_say_what_to_do() {
        let s = run_admin(Some("tok"), Limits::default());
        let e = ctl(&s, None, CtlAction::Status).unwrap_err().to_string();
        assert!(e.contains("--token-file"), "{e}");
        s.fake
            .reload_fails
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let e = ctl(&s, Some("tok"), CtlAction::Reload)
            .unwrap_err()
            .to_string();
        assert!(e.contains("old config") && e.contains("relay.ports"), "{e}");
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let e = execute(closed, None, &CtlAction::Status, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot reach the admin listener"), "{e}");
    }

    #[test]
    fn wildcard_listen_is_reached_on_loopback() {
        assert_eq!(
            connectable("0.0.0.0:9641".parse().unwrap()),
            "127.0.0.1:9641".parse().unwrap()
        );
        assert_eq!(
            connectable("[::]:1".parse().unwrap()),
            "[::1]:1".parse().unwrap()
        );
        assert_eq!(
            connectable("10.0.0.1:1".parse().unwrap()),
            "10.0.0.1:1".parse().unwrap()
        );
    }
}
