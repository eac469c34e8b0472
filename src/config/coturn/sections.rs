//! The `[auth]`, `[allocation]`, `[limits]`, `[peers]` and `[tls]` tables
//! of an imported file (see `render` for the rest).

use std::net::{IpAddr, SocketAddr};

use super::Skipped;
use super::options::{At, Cred, Opts};
use super::ranges::{self, Range};
use super::render::{Out, array, lines, skip, string};

/// `[auth]`; returns whether secrets were written.
pub(super) fn auth(out: &mut Out, o: &Opts, skipped: &mut Vec<Skipped>) -> bool {
    out.section("auth");
    if let Some((no, realm)) = &o.realm {
        out.key(
            &format!("coturn realm (line {no})."),
            "realm",
            &string(realm),
        );
    } else if o.users.iter().any(|(_, (_, c))| matches!(c, Cred::Key(_))) {
        out.comment(
            "coturn had no realm; the 0x keys below were made with the realm\n\
             coturn used, which must be set here as realm for them to work.",
        );
    }
    if let Some((no, secs)) = o.stale_nonce {
        if secs == 0 {
            skip(
                skipped,
                no,
                "stale-nonce",
                "0 (unlimited) is not allowed; tern keeps 3600 s",
            );
        } else {
            out.key(
                &format!("coturn stale-nonce (line {no})."),
                "nonce_lifetime_secs",
                &secs.to_string(),
            );
        }
    }
    let mut users: Vec<&At<(String, Cred)>> = Vec::new();
    for u in &o.users {
        if let Some(i) = users.iter().position(|e| e.1.0 == u.1.0) {
            let earlier = users.remove(i);
            skip(
                skipped,
                earlier.0,
                "user",
                format!(
                    "user {:?} is set again on line {}; the later one is used",
                    u.1.0, u.0
                ),
            );
        }
        users.push(u);
    }
    if !users.is_empty() {
        let entries: Vec<String> = users
            .iter()
            .map(|(_, (name, cred))| match cred {
                Cred::Password(p) => format!(
                    "{{ username = {}, password = {} }}",
                    string(name),
                    string(p)
                ),
                Cred::Key(k) => format!("{{ username = {}, key = {} }}", string(name), string(k)),
            })
            .collect();
        let all: Vec<At<()>> = users.iter().map(|(no, _)| (*no, ())).collect();
        out.key(
            &format!(
                "coturn user ({}); `0x` keys are written without the 0x.",
                lines(&all)
            ),
            "users",
            &format!("[\n  {},\n]", entries.join(",\n  ")),
        );
    }
    rest_secrets(out, o, skipped);
    !users.is_empty() || !o.secrets.is_empty()
}

fn rest_secrets(out: &mut Out, o: &Opts, skipped: &mut Vec<Skipped>) {
    if o.secrets.is_empty() {
        if let Some(no) = o.use_auth_secret {
            skip(
                skipped,
                no,
                "use-auth-secret",
                "no static-auth-secret in the file (coturn read them from its database); \
                 put them in auth.rest_secrets or TERN_REST_SECRET",
            );
        }
        return;
    }
    let mut comment = format!(
        "coturn static-auth-secret ({}). Any of them is accepted; consider\n\
         TERN_REST_SECRET or --rest-secret instead of keeping secrets in this file.",
        lines(&o.secrets)
    );
    if !o.users.is_empty() {
        comment.push_str(
            "\ncoturn with use-auth-secret checked REST credentials; tern accepts the\n\
             static users above as well. Remove them if they were not meant to log in.",
        );
    }
    let list: Vec<String> = o.secrets.iter().map(|(_, s)| string(s)).collect();
    out.key(&comment, "rest_secrets", &array(&list));
}

/// `[allocation]` and `[limits]`.
pub(super) fn allocation_and_limits(out: &mut Out, o: &Opts, skipped: &mut Vec<Skipped>) {
    out.section("allocation");
    if let Some((no, secs)) = o.max_lifetime {
        if secs == 0 {
            skip(
                skipped,
                no,
                "max-allocate-lifetime",
                "0 is not a lifetime; tern keeps 3600 s",
            );
        } else {
            let c = format!("coturn max-allocate-lifetime (line {no}).");
            if secs < 600 {
                out.key(&c, "default_lifetime_secs", &secs.to_string());
            }
            out.key(&c, "max_lifetime_secs", &secs.to_string());
        }
    }
    out.section("limits");
    let defaults = crate::config::LimitsSection::default();
    for (quota, key, coturn, default) in [
        (
            o.total_quota,
            "max_allocations",
            "total-quota",
            defaults.max_allocations,
        ),
        (
            o.user_quota,
            "max_allocations_per_user",
            "user-quota",
            defaults.max_allocations_per_user,
        ),
    ] {
        match quota {
            Some((no, 0)) => skip(
                skipped,
                no,
                coturn,
                format!(
                    "0 (unlimited) has no tern equivalent; tern keeps limits.{key} = {default}"
                ),
            ),
            Some((no, n)) => out.key(
                &format!("coturn {coturn} (line {no})."),
                key,
                &n.to_string(),
            ),
            None => {}
        }
    }
    if let Some((no, bps)) = o.max_bps.filter(|(_, b)| *b > 0) {
        out.key(
            &format!("coturn max-bps (line {no}): bytes per second per allocation and direction."),
            "bandwidth_bytes_per_sec",
            &bps.to_string(),
        );
    }
}

/// `[peers]`: see `ranges::peer_lists` for how coturn's lists map.
pub(super) fn peers(out: &mut Out, o: &Opts) {
    out.section("peers");
    out.comment(
        "tern denies loopback, private (RFC 1918), link-local, CGNAT, multicast and\n\
         reserved peers by default. coturn allowed every peer it was not told to deny\n\
         (loopback aside), so if clients relay to hosts on a private network, add\n\
         its CIDR to allow, e.g. allow = [\"10.1.0.0/16\"].",
    );
    if let Some(no) = o.allow_loopback {
        out.comment(&format!(
            "coturn allow-loopback-peers (line {no}): clients may reach services on\n\
             this host. Only for tests; remove 127.0.0.0/8 and ::1/128 in production."
        ));
    }
    let (allow, deny) = ranges::peer_lists(o);
    let show = |rs: &[Range]| -> Vec<String> {
        ranges::cidr_list(rs)
            .iter()
            .map(|n| string(&n.to_string()))
            .collect()
    };
    if !allow.is_empty() {
        let note = if o.allowed.is_empty() {
            String::new()
        } else {
            format!("coturn allowed-peer-ip ({}) as CIDRs.\n", lines(&o.allowed))
        };
        out.key(
            &format!("{note}Opened despite the default deny."),
            "allow",
            &array(&show(&allow)),
        );
    }
    if !deny.is_empty() {
        out.key(
            &format!(
                "coturn denied-peer-ip ({}) as CIDRs, minus the allowed ones\n\
                 (in coturn allowed beats denied; in tern deny beats allow).",
                lines(&o.denied)
            ),
            "deny",
            &array(&show(&deny)),
        );
    }
    match o.no_multicast {
        Some(no) => out.comment(&format!(
            "coturn no-multicast-peers (line {no}): tern denies multicast by default."
        )),
        None => {
            out.comment("coturn allowed multicast peers (no no-multicast-peers); tern denies them.")
        }
    }
}

/// `[tls]`: only with a certificate, as in coturn.
pub(super) fn tls(out: &mut Out, o: &Opts, listen_ips: &[IpAddr], skipped: &mut Vec<Skipped>) {
    let port = o.tls_port.map_or(5349, |(_, p)| p);
    let Some((cert_no, cert)) = &o.cert else {
        if let Some((no, _)) = o.tls_port {
            skip(
                skipped,
                no,
                "tls-listening-port",
                "no cert= is set, so there is no TLS to serve",
            );
        }
        return;
    };
    if let Some(no) = o.no_tls {
        out.section("tls");
        out.comment(&format!(
            "coturn no-tls (line {no}): no TLS listener; cert not used."
        ));
        return;
    }
    let tcp_port = o.listening_port.map_or(3478, |(_, p)| p);
    if port == tcp_port && o.no_tcp.is_none() {
        let no = o.tls_port.map_or(*cert_no, |(no, _)| no);
        skip(
            skipped,
            no,
            "tls-listening-port",
            "equals listening-port; tern needs a separate TLS port (e.g. 5349), so TLS is off",
        );
        return;
    }
    out.section("tls");
    let listen: Vec<String> = listen_ips
        .iter()
        .map(|ip| string(&SocketAddr::new(*ip, port).to_string()))
        .collect();
    let port_note = match o.tls_port {
        Some((no, _)) => format!("coturn tls-listening-port (line {no})"),
        None => "coturn's default TLS port".to_owned(),
    };
    out.key(
        &format!("{port_note} on each listen address."),
        "listen",
        &array(&listen),
    );
    out.key(
        &format!("coturn cert (line {cert_no})."),
        "cert",
        &string(cert),
    );
    let key = match &o.pkey {
        Some((no, k)) => (format!("coturn pkey (line {no})."), k.as_str()),
        None => (
            "coturn had no pkey: the key is read from the cert file.".to_owned(),
            cert.as_str(),
        ),
    };
    out.key(&key.0, "key", &string(key.1));
    if o.no_dtls.is_none() {
        skip(
            skipped,
            *cert_no,
            "dtls",
            "coturn also served TURN over DTLS with this certificate; tern has no DTLS \
             (UDP, TCP and TLS are carried over)",
        );
    }
}
