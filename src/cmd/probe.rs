//! `tern probe URI`: walks a STUN/TURN server the way a WebRTC client
//! does and says whether it works, with a hint when it does not (the
//! walk itself is [`crate::tools::probe`]). Exit status 0 when every step
//! passed, 1 otherwise; the report goes to stdout (text or `--json`).

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, ensure};
use clap::Args;

use crate::proto::auth::rest_password;
use crate::secret::Secret;
use crate::tools::probe::connect::TlsTrust;
use crate::tools::probe::target::Target;
use crate::tools::probe::{self, MAX_COUNT, ProbeConfig, issuer};

/// `tern probe`.
#[derive(Clone, Debug, Args)]
pub struct ProbeArgs {
    #[arg(
        value_name = "URI",
        help = "The server: turn:HOST[:PORT][?transport=udp|tcp], turns:HOST[:PORT] (TLS), \
                or stun:HOST[:PORT] (Binding only)"
    )]
    pub uri: String,
    /// Username (static long-term credential; with --password).
    #[arg(long, requires = "password")]
    pub user: Option<String>,
    /// Password for --user.
    #[arg(long, env = "TERN_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Mint a TURN REST credential locally with this shared secret (one of
    /// the server's auth.rest_secrets; coturn: static-auth-secret).
    #[arg(
        long,
        env = "TERN_REST_SECRET",
        hide_env_values = true,
        conflicts_with = "issuer"
    )]
    pub rest_secret: Option<String>,
    /// Ask tern's credential issuer for one: http://HOST:PORT (plain HTTP
    /// only); POSTs /v1/ice-servers with the bearer token from --token-file.
    #[arg(long, value_name = "URL", requires = "token_file")]
    pub issuer: Option<String>,
    /// File holding the issuer's bearer token (first non-comment line).
    #[arg(long, value_name = "PATH", requires = "issuer")]
    pub token_file: Option<PathBuf>,
    /// The user part of a minted REST username (EXPIRY:USER).
    #[arg(long, default_value = "tern-probe", value_name = "NAME")]
    pub rest_user: String,
    /// PEM file with the CA that signed the server's certificate (instead
    /// of the system's CA store).
    #[arg(long, value_name = "PATH", conflicts_with = "insecure")]
    pub ca: Option<PathBuf>,
    /// Do not check the server's TLS certificate (the connection is still
    /// encrypted, but anyone in the middle can read it).
    #[arg(long)]
    pub insecure: bool,
    /// After the walk, send N pings through the relay and report loss and RTT.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub count: u32,
    /// Milliseconds between pings.
    #[arg(long, default_value_t = 100, value_name = "MS")]
    pub interval: u64,
    /// Print one JSON object (steps, addresses, verdict, hint) instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &ProbeArgs) -> anyhow::Result<()> {
    let cfg = config(args)?;
    let report = probe::run(&cfg);
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.text());
    }
    std::io::stdout().flush()?;
    if !report.ok {
        // The report (stdout) says what failed and why; this is the exit status.
        bail!(
            "probe failed at {}",
            report.failed_step.unwrap_or("an unknown step")
        );
    }
    Ok(())
}

/// The probe the flags describe: target, credentials, TLS trust, pings.
pub fn config(args: &ProbeArgs) -> anyhow::Result<ProbeConfig> {
    let target = Target::parse(&args.uri).map_err(anyhow::Error::msg)?;
    ensure!(
        args.count <= MAX_COUNT,
        "--count {} is over the limit of {MAX_COUNT}",
        args.count
    );
    ensure!(
        (1..=60_000).contains(&args.interval),
        "--interval {} ms: expected 1 to 60000",
        args.interval
    );
    let (user, password) = credentials(args, target.turn)?;
    let trust = match (&args.ca, args.insecure) {
        (Some(ca), _) => TlsTrust::Ca(ca.clone()),
        (None, true) => TlsTrust::DangerousNone,
        (None, false) => TlsTrust::System,
    };
    Ok(ProbeConfig {
        uri: args.uri.clone(),
        target,
        user,
        password,
        trust,
        count: args.count,
        interval: Duration::from_millis(args.interval),
    })
}

/// Username and password from --user/--password, else --issuer, else
/// --rest-secret. An order rather than clap conflicts, because the password
/// and the secret may come from the environment (TERN_PASSWORD,
/// TERN_REST_SECRET) while the other is on the command line.
fn credentials(args: &ProbeArgs, turn: bool) -> anyhow::Result<(String, Secret<String>)> {
    if let (Some(user), Some(pw)) = (&args.user, &args.password) {
        return Ok((user.clone(), Secret::new(pw.clone())));
    }
    if let (Some(url), Some(file)) = (&args.issuer, &args.token_file) {
        let token = issuer::read_token(file).map_err(anyhow::Error::msg)?;
        let (user, pw) = issuer::fetch(url, &token, &args.rest_user).map_err(anyhow::Error::msg)?;
        return Ok((user, pw));
    }
    if let Some(secret) = &args.rest_secret {
        ensure!(!secret.is_empty(), "--rest-secret is empty");
        // Wall-clock time is the point: the username carries the expiry.
        let expiry = crate::io::clock::unix_secs() + 600;
        let username = format!("{expiry}:{}", args.rest_user);
        let password = rest_password(secret.as_bytes(), &username);
        return Ok((username, Secret::new(password)));
    }
    ensure!(
        !turn,
        "a turn: probe needs credentials: --user NAME --password PW, --rest-secret SECRET, \
         or --issuer URL --token-file FILE"
    );
    Ok((String::new(), Secret::new(String::new())))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> Result<ProbeArgs, clap::Error> {
        let cli = Cli::try_parse_from([&["tern", "probe"], args].concat())?;
        match cli.resolved_command() {
            Command::Probe(a) => Ok(a),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn flags_become_a_probe_config() {
        let a = parse(&[
            "turn:h:3479?transport=tcp",
            "--user",
            "u",
            "--password",
            "p",
        ])
        .unwrap();
        let cfg = config(&a).unwrap();
        assert_eq!(
            (cfg.user.as_str(), cfg.password.expose().as_str()),
            ("u", "p")
        );
        assert_eq!(cfg.target.port, 3479);
        let a = parse(&["turn:h", "--rest-secret", "s", "--rest-user", "mon"]).unwrap();
        let cfg = config(&a).unwrap();
        let (expiry, user) = cfg.user.split_once(':').unwrap();
        assert!(
            expiry.parse::<u64>().is_ok() && user == "mon",
            "{}",
            cfg.user
        );
        assert_eq!(cfg.password.expose(), &rest_password(b"s", &cfg.user));
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        // A TURN probe without credentials, a runaway count, an issuer without a token.
        assert!(config(&parse(&["turn:h"]).unwrap()).is_err());
        assert!(config(&parse(&["stun:h"]).unwrap()).is_ok());
        let a = parse(&["turn:h", "--rest-secret", "s", "--count", "10001"]).unwrap();
        assert!(config(&a).is_err());
        let a = parse(&["turn:h", "--rest-secret", "s", "--interval", "0"]).unwrap();
        assert!(config(&a).is_err());
        // --user wins over a --rest-secret (which may come from TERN_REST_SECRET).
        let both = [
            "turn:h",
            "--user",
            "u",
            "--password",
            "p",
            "--rest-secret",
            "s",
        ];
        assert_eq!(config(&parse(&both).unwrap()).unwrap().user, "u");
        assert!(parse(&["turn:h", "--issuer", "http://x"]).is_err());
        assert!(parse(&["turns:h", "--ca", "c.pem", "--insecure"]).is_err());
    }
}
