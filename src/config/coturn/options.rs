//! The coturn options tern understands, collected from the lines; all
//! others go to the report with the reason.

use std::net::IpAddr;

use super::ranges::{self, Range};
use super::{Line, Skipped};

/// A value and the line it came from.
pub(super) type At<T> = (usize, T);

/// A static user's credential as coturn writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Cred {
    Password(String),
    /// 32 hex digits (coturn's `0x` form, without the prefix).
    Key(String),
}

/// What was collected from the coturn file.
#[derive(Debug, Default)]
pub(super) struct Opts {
    pub(super) listening_ips: Vec<At<IpAddr>>,
    pub(super) listening_port: Option<At<u16>>,
    pub(super) tls_port: Option<At<u16>>,
    pub(super) relay_ips: Vec<At<IpAddr>>,
    /// `external-ip=PUBLIC[/PRIVATE]`.
    pub(super) external: Vec<At<(IpAddr, Option<IpAddr>)>>,
    pub(super) min_port: Option<At<u16>>,
    pub(super) max_port: Option<At<u16>>,
    pub(super) realm: Option<At<String>>,
    pub(super) users: Vec<At<(String, Cred)>>,
    pub(super) secrets: Vec<At<String>>,
    pub(super) use_auth_secret: Option<usize>,
    pub(super) user_quota: Option<At<u32>>,
    pub(super) total_quota: Option<At<u32>>,
    pub(super) max_bps: Option<At<u64>>,
    pub(super) denied: Vec<At<Range>>,
    pub(super) allowed: Vec<At<Range>>,
    pub(super) allow_loopback: Option<usize>,
    pub(super) no_multicast: Option<usize>,
    pub(super) cert: Option<At<String>>,
    pub(super) pkey: Option<At<String>>,
    pub(super) stale_nonce: Option<At<u64>>,
    pub(super) max_lifetime: Option<At<u64>>,
    pub(super) no_udp: Option<usize>,
    pub(super) no_tcp: Option<usize>,
    pub(super) no_tls: Option<usize>,
    pub(super) no_dtls: Option<usize>,
    pub(super) workers: Option<At<usize>>,
    pub(super) debug_log: Option<usize>,
    /// Options that need nothing in tern, with why (shown as comments).
    pub(super) equivalent: Vec<At<(String, &'static str)>>,
}

/// Options tern already behaves like; nothing to write.
const EQUIVALENT: &[(&str, &str)] = &[
    ("lt-cred-mech", "tern always uses long-term credentials"),
    ("fingerprint", "tern always adds FINGERPRINT to responses"),
    ("no-loopback-peers", "tern denies loopback peers by default"),
    ("no-tcp-relay", "tern has no TCP relays (RFC 6062)"),
    ("no-rfc5780", "tern does not implement RFC 5780"),
    (
        "response-origin-only-with-rfc5780",
        "tern sends no RESPONSE-ORIGIN",
    ),
    (
        "no-stun-backward-compatibility",
        "tern speaks RFC 5389+ STUN only",
    ),
    (
        "no-software-attribute",
        "tern sends no SOFTWARE unless server.software is set",
    ),
    ("no-cli", "tern has no telnet CLI"),
    ("no-tlsv1", "tern's TLS is 1.2 and 1.3 only"),
    ("no-tlsv1_1", "tern's TLS is 1.2 and 1.3 only"),
    ("verbose", "tern logs at info by default"),
    ("no-sslv3", "tern's TLS is 1.2 and 1.3 only"),
    ("no-sslv2", "tern's TLS is 1.2 and 1.3 only"),
];

/// Options tern does not carry over, and why.
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "no-auth",
        "tern always requires credentials; add [auth] users or rest_secrets",
    ),
    ("prometheus", "tern has no metrics listener in this version"),
    (
        "alternate-server",
        "tern has no ALTERNATE-SERVER redirection yet",
    ),
    (
        "tls-alternate-server",
        "tern has no ALTERNATE-SERVER redirection yet",
    ),
    ("alt-listening-port", "RFC 5780 is not implemented"),
    ("alt-tls-listening-port", "RFC 5780 is not implemented"),
    (
        "aux-server",
        "tern has no auxiliary servers; list the addresses in server.listen",
    ),
    ("udp-self-balance", "tern has no auxiliary servers"),
    (
        "listening-device",
        "bind to an address in server.listen instead of a device",
    ),
    (
        "relay-device",
        "bind to an address with relay.address instead of a device",
    ),
    (
        "tcp-proxy-port",
        "use [proxy_protocol] listen and trusted (tern needs the balancer's CIDRs)",
    ),
    (
        "bps-capacity",
        "tern has no server-wide bandwidth cap; use limits.bandwidth_bytes_per_sec per allocation",
    ),
    ("channel-lifetime", "fixed at 600 s by RFC 8656"),
    ("permission-lifetime", "fixed at 300 s by RFC 8656"),
    ("max-allocate-timeout", "not configurable in tern"),
    (
        "pkey-pwd",
        "tern cannot read encrypted keys; decrypt it (openssl pkey -in KEY -out KEY.pem)",
    ),
    (
        "cipher-list",
        "tern uses rustls' safe cipher suites; not configurable",
    ),
    ("CA-file", "tern does not verify client certificates"),
    (
        "ec-curve-name",
        "rustls picks the key exchange group; not configurable",
    ),
    ("dh566", "no DH parameters in rustls"),
    ("dh1066", "no DH parameters in rustls"),
    ("dh2066", "no DH parameters in rustls"),
    ("dh-file", "no DH parameters in rustls"),
    (
        "no-tlsv1_2",
        "tern offers TLS 1.2 and 1.3; not configurable",
    ),
    (
        "log-file",
        "tern logs to stderr; let systemd/journald or your supervisor store it",
    ),
    (
        "syslog",
        "tern logs to stderr; under systemd it reaches the journal (and syslog)",
    ),
    ("syslog-facility", "tern logs to stderr"),
    ("no-stdout-log", "tern logs to stderr"),
    (
        "simple-log",
        "tern logs to stderr; there is no log file to rotate",
    ),
    (
        "new-log-timestamp",
        "tern's log format is fixed (log.format = text or json)",
    ),
    (
        "new-log-timestamp-format",
        "tern's log format is fixed (log.format = text or json)",
    ),
    ("log-binding", "use log.level = \"debug\" to see requests"),
    (
        "userdb",
        "tern has no user database; list users in [auth] users",
    ),
    (
        "psql-userdb",
        "tern has no user database; list users in [auth] users",
    ),
    (
        "mysql-userdb",
        "tern has no user database; list users in [auth] users",
    ),
    (
        "mongo-userdb",
        "tern has no user database; list users in [auth] users",
    ),
    (
        "redis-userdb",
        "tern has no user database; list users in [auth] users",
    ),
    ("redis-statsdb", "tern has no statistics database"),
    ("secret-key-file", "tern has no user database"),
    (
        "oauth",
        "third-party authorization (RFC 7635) is not implemented",
    ),
    ("server-name", "only used by coturn's OAuth"),
    ("check-origin-consistency", "ORIGIN is not checked by tern"),
    (
        "no-udp-relay",
        "tern relays UDP only; it cannot turn UDP relays off",
    ),
    ("stun-only", "tern always serves TURN"),
    ("no-stun", "tern always answers STUN Binding"),
    ("secure-stun", "tern answers Binding without authentication"),
    ("mobility", "MOBILITY-TICKET is not implemented"),
    (
        "keep-address-family",
        "tern follows RFC 8656 address families",
    ),
    (
        "allocation-default-address-family",
        "tern allocates IPv4 unless the client asks",
    ),
    (
        "pidfile",
        "run tern under systemd (deploy/systemd/tern.service); no pid file",
    ),
    (
        "proc-user",
        "run tern as its own user with systemd (User= or DynamicUser=)",
    ),
    (
        "proc-group",
        "run tern as its own user with systemd (Group=)",
    ),
    ("cli-ip", "tern has no telnet CLI"),
    ("cli-port", "tern has no telnet CLI"),
    ("cli-password", "tern has no telnet CLI"),
    ("cli-max-output-sessions", "tern has no telnet CLI"),
    ("web-admin", "tern has no web admin"),
    ("web-admin-ip", "tern has no web admin"),
    ("web-admin-port", "tern has no web admin"),
    ("web-admin-listen-on-workers", "tern has no web admin"),
    (
        "acme-redirect",
        "tern has no HTTP listener; renew certificates outside and send SIGHUP",
    ),
    (
        "server-relay",
        "not needed: tern has no server-to-server relaying",
    ),
    ("ne", "tern has no network-engine choice"),
    ("no-dynamic-ip-list", "tern has no ip-list database"),
    ("no-dynamic-realms", "tern has one realm"),
    ("rest-api-separator", "tern's REST usernames use ':' only"),
    (
        "sha256",
        "tern derives MD5 keys (RFC 8489 SHA-256 keys come from the client)",
    ),
];

/// Reads every option line; returns what tern can use and what it cannot.
pub(super) fn gather(lines: &[Line]) -> (Opts, Vec<Skipped>) {
    let mut o = Opts::default();
    let mut skipped = Vec::new();
    for l in lines {
        if let Err(why) = apply(&mut o, l) {
            skipped.push(Skipped {
                line: l.no,
                key: l.key.clone(),
                why,
            });
        }
    }
    (o, skipped)
}

fn apply(o: &mut Opts, l: &Line) -> Result<(), String> {
    let (no, v) = (l.no, l.value.as_deref());
    if let Some((_, why)) = UNSUPPORTED.iter().find(|(k, _)| *k == l.key) {
        if let Some(false) = v.and_then(boolean) {
            return Ok(()); // turned off: nothing lost
        }
        return Err(format!("not carried over: {why}"));
    }
    if let Some((k, why)) = EQUIVALENT.iter().find(|(k, _)| *k == l.key) {
        o.equivalent.push((no, ((*k).to_owned(), why)));
        return Ok(());
    }
    if apply_network(o, l)? || apply_auth(o, l)? || apply_limits(o, l)? {
        return Ok(());
    }
    Err("unknown coturn option; not carried over".to_owned())
}

/// Listeners, relay addresses, ports, TLS files, transports, logging.
fn apply_network(o: &mut Opts, l: &Line) -> Result<bool, String> {
    let no = l.no;
    match l.key.as_str() {
        "listening-ip" => {
            let ip = ip(l)?;
            if o.listening_ips.iter().any(|(_, seen)| *seen == ip) {
                return Err(format!("{ip} is listed twice; it is listened on once"));
            }
            o.listening_ips.push((no, ip));
        }
        "relay-ip" => o.relay_ips.push((no, ip(l)?)),
        "listening-port" => o.listening_port = Some((no, number(l)?)),
        "tls-listening-port" => o.tls_port = Some((no, number(l)?)),
        "min-port" => o.min_port = Some((no, number(l)?)),
        "max-port" => o.max_port = Some((no, number(l)?)),
        "external-ip" => o.external.push((no, external(l)?)),
        "cert" => o.cert = Some((no, text(l)?)),
        "pkey" => o.pkey = Some((no, text(l)?)),
        "relay-threads" => o.workers = Some((no, number(l)?)),
        "no-udp" => set_flag(&mut o.no_udp, l)?,
        "no-tcp" => set_flag(&mut o.no_tcp, l)?,
        "no-tls" => set_flag(&mut o.no_tls, l)?,
        "no-dtls" => set_flag(&mut o.no_dtls, l)?,
        "Verbose" => set_flag(&mut o.debug_log, l)?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// Realm, users, REST secrets.
fn apply_auth(o: &mut Opts, l: &Line) -> Result<bool, String> {
    let no = l.no;
    match l.key.as_str() {
        "realm" => o.realm = Some((no, realm(l)?)),
        "user" => o.users.push((no, user(l)?)),
        "static-auth-secret" => o.secrets.push((no, text(l)?)),
        "use-auth-secret" => set_flag(&mut o.use_auth_secret, l)?,
        "stale-nonce" => {
            let secs = match l.value {
                None => 600, // coturn's default when the flag is bare
                Some(_) => number(l)?,
            };
            o.stale_nonce = Some((no, secs));
        }
        "max-allocate-lifetime" => o.max_lifetime = Some((no, number(l)?)),
        _ => return Ok(false),
    }
    Ok(true)
}

/// Quotas, bandwidth, peer policy.
fn apply_limits(o: &mut Opts, l: &Line) -> Result<bool, String> {
    let no = l.no;
    match l.key.as_str() {
        "user-quota" => o.user_quota = Some((no, number(l)?)),
        "total-quota" => o.total_quota = Some((no, number(l)?)),
        "max-bps" => o.max_bps = Some((no, number(l)?)),
        "denied-peer-ip" => o.denied.push((no, range(l)?)),
        "allowed-peer-ip" => o.allowed.push((no, range(l)?)),
        "allow-loopback-peers" => set_flag(&mut o.allow_loopback, l)?,
        "no-multicast-peers" => set_flag(&mut o.no_multicast, l)?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// coturn's booleans: `0/off/no/false/f` and `1/on/yes/true/t`.
fn boolean(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "0" | "off" | "no" | "false" | "f" => Some(false),
        "1" | "on" | "yes" | "true" | "t" => Some(true),
        _ => None,
    }
}

fn set_flag(slot: &mut Option<usize>, l: &Line) -> Result<(), String> {
    let on = match l.value.as_deref() {
        None => true,
        Some(v) => boolean(v).ok_or_else(|| format!("{v:?} is not a boolean (on/off)"))?,
    };
    *slot = on.then_some(l.no);
    Ok(())
}

fn text(l: &Line) -> Result<String, String> {
    l.value
        .clone()
        .ok_or_else(|| "has no value; not carried over".to_owned())
}

fn number<T: std::str::FromStr>(l: &Line) -> Result<T, String> {
    let v = text(l)?;
    v.parse()
        .map_err(|_| format!("{v:?} is not a number in range; not carried over"))
}

fn ip(l: &Line) -> Result<IpAddr, String> {
    let v = text(l)?;
    v.parse()
        .map_err(|_| format!("{v:?} is not an IP address; not carried over"))
}

fn external(l: &Line) -> Result<(IpAddr, Option<IpAddr>), String> {
    let v = text(l)?;
    let bad = || format!("{v:?} is not IP or PUBLIC-IP/PRIVATE-IP; not carried over");
    let (public, private) = match v.split_once('/') {
        Some((p, q)) => (p, Some(q)),
        None => (v.as_str(), None),
    };
    let public = public.trim().parse().map_err(|_| bad())?;
    let private = match private {
        Some(q) => Some(q.trim().parse().map_err(|_| bad())?),
        None => None,
    };
    Ok((public, private))
}

fn user(l: &Line) -> Result<(String, Cred), String> {
    let v = text(l)?;
    let Some((name, secret)) = v
        .split_once(':')
        .filter(|(n, s)| !n.is_empty() && !s.is_empty())
    else {
        return Err("is not NAME:PASSWORD or NAME:0xKEY; not carried over".to_owned());
    };
    let cred = match secret.strip_prefix("0x") {
        Some(hex) if hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Cred::Key(hex.to_ascii_lowercase())
        }
        Some(_) => {
            return Err(format!(
                "the key of user {name:?} is not 0x and 32 hex digits (an MD5 long-term key); \
                 not carried over"
            ));
        }
        None => Cred::Password(secret.to_owned()),
    };
    Ok((name.to_owned(), cred))
}

/// A realm tern accepts (`auth.realm`: 1 to 127 characters without '"').
fn realm(l: &Line) -> Result<String, String> {
    let v = text(l)?;
    if v.len() > 127 || v.contains('"') {
        return Err(format!(
            "{v:?} is not a usable realm (1 to 127 characters without '\"'); tern keeps \"tern\""
        ));
    }
    Ok(v)
}

fn range(l: &Line) -> Result<Range, String> {
    ranges::parse(&text(l)?).map_err(|e| format!("{e}; not carried over"))
}
