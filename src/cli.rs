//! The command line: `tern [serve] [FLAGS]`, `tern check-config`,
//! `tern credential`, `tern key`. Flags override any value in the config
//! file; repeatable flags (`--listen`, `--user`, `--rest-secret`) replace
//! the file's whole list.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::Overrides;
use crate::secret::Secret;
use crate::telemetry::LogFormat;

/// tern: a STUN/TURN server.
#[derive(Debug, Parser)]
#[command(name = "tern", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Serve flags, accepted without the `serve` word (`tern --listen …`).
    #[command(flatten)]
    pub serve: ServeArgs,

    /// Config file (TOML). Default: the built-in config/tern.toml.
    #[arg(long, global = true, value_name = "PATH", env = "TERN_CONFIG")]
    pub config: Option<PathBuf>,

    /// Log filter, e.g. "debug" or "info,tern::proto=trace" (overrides log.level; RUST_LOG wins).
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,

    /// Log format (overrides log.format).
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
}

impl Cli {
    /// The command to run, `Serve` with the top-level flags when none was given.
    pub fn resolved_command(&self) -> Command {
        self.command
            .clone()
            .unwrap_or_else(|| Command::Serve(self.serve.clone()))
    }
}

#[derive(Clone, Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
    /// Load and check the config (with any overrides), print a summary, exit non-zero on error.
    CheckConfig(ServeArgs),
    /// Mint a TURN REST API credential (username `EXPIRY[:USER]`, password base64(HMAC-SHA1)).
    Credential(CredentialArgs),
    /// Print the hex long-term key MD5("user:realm:password") for `auth.users[].key`.
    Key(KeyArgs),
    /// Load generator for any RFC 8656 server: N allocations with channels,
    /// ChannelData at a fixed or maximum rate; prints pkt/s, loss, latency and a JSON line.
    #[cfg(feature = "tools")]
    Load(LoadArgs),
    /// Is this STUN/TURN server working? Walks Binding, Allocate, permission,
    /// channel and data through the relay and back; prints each step, a verdict and a hint.
    #[cfg(feature = "tools")]
    Probe(crate::cmd::probe::ProbeArgs),
    /// Convert a coturn turnserver.conf to a commented tern.toml (stdout or -o);
    /// every option not carried over is reported on stderr with its line.
    ImportCoturn(ImportCoturnArgs),
    /// Control a running tern through its admin listener: status,
    /// allocations, kick, drain, undrain, reload.
    Ctl(CtlArgs),
}

/// `tern import-coturn`.
#[derive(Clone, Debug, Args)]
pub struct ImportCoturnArgs {
    /// The coturn config, e.g. /etc/turnserver.conf.
    #[arg(value_name = "TURNSERVER_CONF")]
    pub input: PathBuf,
    /// Write the tern.toml here (created with mode 0600: it may hold secrets) instead of stdout.
    #[arg(short = 'o', long, value_name = "PATH")]
    pub output: Option<PathBuf>,
}

/// Overrides for `serve` and `check-config`.
#[derive(Clone, Debug, Default, Args)]
pub struct ServeArgs {
    /// Listen address "IP:PORT" (repeatable; replaces server.listen).
    #[arg(long, value_name = "ADDR")]
    pub listen: Vec<String>,
    /// Local IP relay sockets bind to, or "auto" (relay.address).
    #[arg(long, value_name = "IP")]
    pub relay_address: Option<String>,
    /// Public IP given to clients behind a 1:1 NAT (relay.advertised_address).
    #[arg(long, value_name = "IP")]
    pub advertised_address: Option<String>,
    /// Relay port range "LOW-HIGH" (relay.ports).
    #[arg(long, value_name = "LOW-HIGH")]
    pub relay_ports: Option<String>,
    /// REALM (auth.realm).
    #[arg(long)]
    pub realm: Option<String>,
    /// Static user "NAME:PASSWORD" (repeatable; replaces auth.users). Visible in `ps`:
    /// prefer the config file for long-lived passwords.
    #[arg(long, value_name = "NAME:PASSWORD", value_parser = parse_user)]
    pub user: Vec<UserArg>,
    /// TURN REST shared secret (repeatable; replaces auth.rest_secrets).
    #[arg(
        long,
        value_name = "SECRET",
        env = "TERN_REST_SECRET",
        hide_env_values = true
    )]
    pub rest_secret: Vec<String>,
    /// TLS listen address "IP:PORT" (repeatable; replaces tls.listen).
    #[arg(long, value_name = "ADDR")]
    pub tls_listen: Vec<String>,
    /// PEM certificate chain for TLS (tls.cert).
    #[arg(long, value_name = "PATH")]
    pub tls_cert: Option<String>,
    /// PEM private key for TLS (tls.key).
    #[arg(long, value_name = "PATH")]
    pub tls_key: Option<String>,
    /// Worker threads; 0 = one per core (server.workers).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Admin HTTP listener "IP:PORT", or "" for none (admin.listen).
    #[arg(long, value_name = "ADDR", env = "TERN_ADMIN_LISTEN")]
    pub admin_listen: Option<String>,
}

impl ServeArgs {
    /// These flags as config overrides (`log_level` comes from the global flag).
    pub fn overrides(&self, log_level: Option<&str>) -> Overrides {
        Overrides {
            listen: self.listen.clone(),
            relay_address: self.relay_address.clone(),
            advertised_address: self.advertised_address.clone(),
            relay_ports: self.relay_ports.clone(),
            realm: self.realm.clone(),
            users: self
                .user
                .iter()
                .map(|u| (u.name.clone(), u.password.clone()))
                .collect(),
            rest_secrets: self.rest_secret.iter().cloned().map(Secret::new).collect(),
            tls_listen: self.tls_listen.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            workers: self.workers,
            log_level: log_level.map(str::to_owned),
        }
    }
}

/// `--user NAME:PASSWORD`.
#[derive(Clone, Debug)]
pub struct UserArg {
    pub name: String,
    pub password: Secret<String>,
}

fn parse_user(s: &str) -> Result<UserArg, String> {
    match s.split_once(':') {
        Some((name, pw)) if !name.is_empty() && !pw.is_empty() => Ok(UserArg {
            name: name.to_owned(),
            password: Secret::new(pw.to_owned()),
        }),
        _ => Err("expected NAME:PASSWORD, e.g. alice:s3cret".to_owned()),
    }
}

/// `tern credential`.
#[derive(Clone, Debug, Args)]
pub struct CredentialArgs {
    /// TURN REST shared secret (one of auth.rest_secrets).
    #[arg(long, env = "TERN_REST_SECRET", hide_env_values = true)]
    pub secret: String,
    /// User part of the username (`EXPIRY:USER`); omitted → `EXPIRY`.
    #[arg(long)]
    pub user: Option<String>,
    /// Seconds from now until the credential expires.
    #[arg(long, default_value_t = 86_400, value_name = "SECS")]
    pub ttl: u64,
    /// Print an iceServers-style JSON object instead of two lines.
    #[arg(long)]
    pub json: bool,
    /// Host for the "urls" in --json output (omitted → no "urls").
    #[arg(long)]
    pub host: Option<String>,
    /// Port for the "urls" in --json output.
    #[arg(long, default_value_t = 3478)]
    pub port: u16,
}

/// `tern key`.
#[derive(Clone, Debug, Args)]
pub struct KeyArgs {
    /// Username.
    #[arg(long)]
    pub user: String,
    /// Realm (must equal auth.realm).
    #[arg(long, default_value = "tern")]
    pub realm: String,
    /// Password.
    #[arg(long, env = "TERN_PASSWORD", hide_env_values = true)]
    pub password: String,
    /// Password algorithm (RFC 8489 §18.5): md5 prints auth.users[].key,
    /// sha256 prints auth.users[].key_sha256.
    #[arg(long, value_enum, default_value_t = KeyAlgorithm::Md5)]
    pub algorithm: KeyAlgorithm,
}

/// `tern key --algorithm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyAlgorithm {
    Md5,
    Sha256,
}

/// `tern load`.
#[cfg(feature = "tools")]
#[derive(Clone, Debug, Args)]
pub struct LoadArgs {
    /// Server UDP address "IP:PORT" (only loopback addresses are useful: peers bind 127.0.0.1).
    #[arg(long, default_value = "127.0.0.1:3478", value_name = "ADDR")]
    pub server: std::net::SocketAddr,
    /// Long-term credential "NAME:PASSWORD".
    #[arg(long, value_name = "NAME:PASSWORD", value_parser = parse_user)]
    pub user: UserArg,
    /// Allocations (flows), each with a channel to its own peer socket.
    #[arg(short = 'n', long, default_value_t = 10, value_name = "N")]
    pub allocations: usize,
    /// ChannelData payload bytes per packet (24..=1400).
    #[arg(short = 's', long, default_value_t = 100, value_name = "BYTES")]
    pub size: usize,
    /// Packets per flow sent back to back (one GSO send).
    #[arg(short = 'b', long, default_value_t = 8, value_name = "B")]
    pub burst: usize,
    /// Total packets/s over all flows and directions; omitted = maximum rate.
    #[arg(short = 'r', long, value_name = "PPS")]
    pub rate: Option<u64>,
    /// Seconds of sending (at most 300).
    #[arg(short = 't', long, default_value_t = 5.0, value_name = "SECS")]
    pub duration: f64,
    /// Direction of the data.
    #[arg(long, value_enum, default_value = "to-peer")]
    pub direction: crate::tools::load::Direction,
    /// Max-rate mode: packets in flight per flow and direction; 0 = open loop.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub window: usize,
    /// Send one datagram per sendmsg instead of GSO (UDP_SEGMENT).
    #[arg(long)]
    pub no_gso: bool,
    /// Milliseconds to wait for late packets after sending stops.
    #[arg(long, default_value_t = 300, value_name = "MS")]
    pub drain_ms: u64,
    /// Allocate requests in flight at once during setup.
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub setup_window: usize,
    /// Only measure Allocate+ChannelBind per second (then delete them).
    #[arg(long)]
    pub allocate_only: bool,
    /// Server process id: report its CPU time per delivered packet (from /proc/PID/stat).
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// Print only the JSON line.
    #[arg(long)]
    pub json: bool,
    /// Browser-like traffic: every datagram alone, paced per flow (audio
    /// every 20 ms, a video frame every 33 ms), half the flows to UDP peers
    /// both ways, half relay to relay; --rate scales the schedule
    /// (default: real time). Ignores --size, --burst, --window, --direction.
    #[arg(long)]
    pub browser: bool,
    /// Browser-like: packets per video frame.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub video_packets: usize,
}

/// `tern ctl`.
#[derive(Clone, Debug, Args)]
pub struct CtlArgs {
    /// Admin listener "IP:PORT" (default: admin.listen of --config, else 127.0.0.1:9641).
    #[arg(long, value_name = "ADDR")]
    pub admin: Option<std::net::SocketAddr>,
    /// File holding the admin bearer token (default: admin.token_file of --config).
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Print the server's JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(subcommand)]
    pub action: CtlAction,
}

/// What `tern ctl` does.
#[derive(Clone, Debug, Subcommand)]
pub enum CtlAction {
    /// Version, uptime, allocations, draining, listeners, last reload.
    Status,
    /// List live allocations (no secrets).
    Allocations {
        /// Only this user's.
        #[arg(long)]
        user: Option<String>,
    },
    /// End every allocation of USER now (e.g. a leaked credential).
    Kick {
        /// The username (for REST credentials, the whole `EXPIRY:USER`).
        user: String,
    },
    /// Start a graceful drain: readiness 503, new allocations refused.
    Drain,
    /// Cancel a drain.
    Undrain,
    /// Re-read the config file and apply it (all or nothing).
    Reload,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        <Cli as CommandFactory>::command().debug_assert();
    }

    #[test]
    fn serve_is_the_default_and_flags_work_without_it() {
        let cli =
            Cli::try_parse_from(["tern", "--listen", "127.0.0.1:3478", "--user", "a:b"]).unwrap();
        let Command::Serve(args) = cli.resolved_command() else {
            panic!("expected serve")
        };
        assert_eq!(args.listen, ["127.0.0.1:3478"]);
        assert_eq!(args.user[0].name, "a");
        assert_eq!(args.user[0].password.expose(), "b");
    }

    #[test]
    fn subcommands_parse() {
        let cli = Cli::try_parse_from([
            "tern",
            "check-config",
            "--config",
            "x.toml",
            "--relay-ports",
            "1-2",
        ])
        .unwrap();
        assert!(
            matches!(cli.resolved_command(), Command::CheckConfig(a) if a.relay_ports.as_deref() == Some("1-2"))
        );
        let cli = Cli::try_parse_from([
            "tern",
            "credential",
            "--secret",
            "s",
            "--user",
            "u",
            "--ttl",
            "60",
        ])
        .unwrap();
        assert!(matches!(cli.resolved_command(), Command::Credential(a) if a.ttl == 60));
        assert!(Cli::try_parse_from(["tern", "--user", "nocolon"]).is_err());
        let cli =
            Cli::try_parse_from(["tern", "ctl", "--admin", "127.0.0.1:1", "kick", "u"]).unwrap();
        assert!(
            matches!(cli.resolved_command(), Command::Ctl(a) if matches!(&a.action, CtlAction::Kick { user } if user == "u"))
        );
    }
}
