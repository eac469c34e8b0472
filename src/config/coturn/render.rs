//! The collected coturn options → tern.toml text, one commented key per
//! value that differs from tern's default, plus report entries for values
//! that have no tern equivalent (quota 0 = unlimited, a second relay
//! address of one family, …).

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use super::Skipped;
use super::options::{At, Opts};
use super::sections::{allocation_and_limits, auth, peers, tls};

/// TOML text under construction.
pub(super) struct Out {
    text: String,
    section: Option<&'static str>,
}

impl Out {
    /// Starts `[name]` before its first key or comment.
    pub(super) fn section(&mut self, name: &'static str) {
        self.section = Some(name);
    }

    fn open(&mut self) {
        if let Some(name) = self.section.take() {
            let _ = write!(self.text, "\n[{name}]\n");
        }
    }

    pub(super) fn comment(&mut self, text: &str) {
        self.open();
        for line in text.lines() {
            let _ = writeln!(self.text, "# {line}");
        }
    }

    pub(super) fn key(&mut self, comment: &str, key: &str, value: &str) {
        self.comment(comment);
        let _ = writeln!(self.text, "{key} = {value}");
    }
}

pub(super) fn string(v: &str) -> String {
    toml::Value::String(v.to_owned()).to_string()
}

pub(super) fn array(items: &[String]) -> String {
    let one = format!("[{}]", items.join(", "));
    if one.len() <= 80 {
        return one;
    }
    let mut s = "[\n".to_owned();
    for i in items {
        let _ = writeln!(s, "  {i},");
    }
    s.push(']');
    s
}

pub(super) fn lines<T>(items: &[At<T>]) -> String {
    let nos: Vec<String> = items.iter().map(|(no, _)| no.to_string()).collect();
    match nos.len() {
        1 => format!("line {}", nos[0]),
        _ => format!("lines {}", nos.join(", ")),
    }
}

pub(super) fn skip(skipped: &mut Vec<Skipped>, line: usize, key: &str, why: impl Into<String>) {
    skipped.push(Skipped {
        line,
        key: key.to_owned(),
        why: why.into(),
    });
}

/// Writes the whole file; returns it and whether it holds secrets.
pub(super) fn render(o: &Opts, source: &str, skipped: &mut Vec<Skipped>) -> (String, bool) {
    let mut out = Out {
        text: format!(
            "# tern.toml imported from the coturn config {source} by `tern import-coturn`.\n\
             # Only values that differ from tern's defaults are set; every key and its\n\
             # default is documented in tern's config/tern.toml. coturn options that\n\
             # could not be carried over were reported on stderr. Check this file with\n\
             #     tern check-config --config THIS_FILE\n"
        ),
        section: None,
    };
    let listen_ips = server(&mut out, o, skipped);
    relay(&mut out, o, skipped);
    let has_secrets = auth(&mut out, o, skipped);
    allocation_and_limits(&mut out, o, skipped);
    peers(&mut out, o);
    tls(&mut out, o, &listen_ips, skipped);
    if let Some(no) = o.debug_log {
        out.section("log");
        out.key(
            &format!("coturn Verbose (line {no})."),
            "level",
            &string("debug"),
        );
    }
    if !o.equivalent.is_empty() {
        out.text.push_str(
            "\n# coturn options that need nothing here, since tern already behaves so:\n",
        );
        for (no, (key, why)) in &o.equivalent {
            let _ = writeln!(out.text, "#   {key} (line {no}): {why}");
        }
    }
    (out.text, has_secrets)
}

/// `[server]`; returns the listen IPs (for TLS).
fn server(out: &mut Out, o: &Opts, skipped: &mut Vec<Skipped>) -> Vec<IpAddr> {
    out.section("server");
    let port = o.listening_port.map_or(3478, |(_, p)| p);
    let port_note = match o.listening_port {
        Some((no, p)) => format!(" and listening-port {p} (line {no})"),
        None => String::new(),
    };
    let ips: Vec<IpAddr> = if o.listening_ips.is_empty() {
        vec![IpAddr::from([0, 0, 0, 0])]
    } else {
        o.listening_ips.iter().map(|(_, ip)| *ip).collect()
    };
    let listen: Vec<String> = ips
        .iter()
        .map(|ip| string(&SocketAddr::new(*ip, port).to_string()))
        .collect();
    let comment = if o.listening_ips.is_empty() {
        format!(
            "coturn listened on every address{port_note}; 0.0.0.0 covers IPv4.\n\
             Add \"[::]:{port}\" to serve IPv6 clients too."
        )
    } else {
        format!(
            "coturn listening-ip ({}){port_note}.",
            lines(&o.listening_ips)
        )
    };
    if o.listening_ips.is_empty() && o.listening_port.is_none() {
        out.comment(&comment);
    } else {
        out.key(&comment, "listen", &array(&listen));
    }
    match (o.no_udp, o.no_tcp) {
        (Some(u), Some(_)) => skip(
            skipped,
            u,
            "no-udp",
            "tern needs UDP or TCP on server.listen besides TLS; UDP is kept on",
        ),
        (Some(u), None) => out.key(&format!("coturn no-udp (line {u})."), "udp", "false"),
        (None, Some(t)) => out.key(&format!("coturn no-tcp (line {t})."), "tcp", "false"),
        (None, None) => {}
    }
    if let Some((no, n)) = o.workers {
        out.key(
            &format!("coturn relay-threads (line {no}); 0 = one per CPU core."),
            "workers",
            &n.to_string(),
        );
    }
    ips
}

/// The relay address of each family: relay-ip, else the private side of
/// external-ip, else a specific listening-ip (coturn relays on the address
/// the client reached).
fn relay_addresses(o: &Opts, skipped: &mut Vec<Skipped>) -> [Option<At<IpAddr>>; 2] {
    let mut by_family: [Option<At<IpAddr>>; 2] = [None, None];
    for &(no, ip) in &o.relay_ips {
        let slot = &mut by_family[usize::from(ip.is_ipv6())];
        if ip.is_unspecified() {
            skip(
                skipped,
                no,
                "relay-ip",
                "the unspecified address cannot be given to clients",
            );
        } else if slot.is_some() {
            skip(
                skipped,
                no,
                "relay-ip",
                "tern relays on one address per family; this one is not used",
            );
        } else {
            *slot = Some((no, ip));
        }
    }
    if o.relay_ips.is_empty() {
        let private = o
            .external
            .iter()
            .filter_map(|(no, (_, p))| p.map(|p| (*no, p)));
        let listening = o.listening_ips.iter().copied();
        for (no, ip) in private.chain(listening) {
            let slot = &mut by_family[usize::from(ip.is_ipv6())];
            if slot.is_none() && !ip.is_unspecified() {
                *slot = Some((no, ip));
            }
        }
    }
    by_family
}

/// `[relay]`.
fn relay(out: &mut Out, o: &Opts, skipped: &mut Vec<Skipped>) {
    out.section("relay");
    let [v4, v6] = relay_addresses(o, skipped);
    let note = |(no, _): At<IpAddr>| {
        if o.relay_ips.is_empty() {
            format!("coturn relayed on the address clients reached (line {no}).")
        } else {
            format!("coturn relay-ip (line {no}).")
        }
    };
    // Which key holds each family's relay address.
    let (key4, key6) = match (v4, v6) {
        (Some(a), b) => {
            out.key(&note(a), "address", &string(&a.1.to_string()));
            if let Some(b) = b {
                out.key(&note(b), "address6", &string(&b.1.to_string()));
            }
            (Some("advertised_address"), b.map(|_| "advertised_address6"))
        }
        (None, Some(b)) => {
            out.key(&note(b), "address", &string(&b.1.to_string()));
            (None, Some("advertised_address"))
        }
        (None, None) => {
            out.comment(
                "coturn chose relay addresses itself; tern's \"auto\" takes the host's\n\
                 first non-loopback IPv4 address. Set address if that is not the one.",
            );
            (Some("advertised_address"), None)
        }
    };
    external_ips(out, o, [(v4, key4), (v6, key6)], skipped);
    if o.min_port.is_some() || o.max_port.is_some() {
        let lo = o.min_port.map_or(49152, |(_, p)| p);
        let hi = o.max_port.map_or(65535, |(_, p)| p);
        let nos: Vec<At<()>> = [o.min_port, o.max_port]
            .into_iter()
            .flatten()
            .map(|(no, _)| (no, ()))
            .collect();
        let ports = format!("{lo}-{hi}");
        match crate::config::parse_port_range(&ports) {
            Ok(_) => out.key(
                &format!("coturn min-port/max-port ({}).", lines(&nos)),
                "ports",
                &string(&ports),
            ),
            Err(expected) => {
                for (no, _) in nos {
                    skip(
                        skipped,
                        no,
                        "min-port/max-port",
                        format!(
                            "{ports} is not a usable range ({expected}); tern keeps 49152-65535"
                        ),
                    );
                }
            }
        }
    }
}

/// external-ip → advertised_address(6): the first mapping of each family
/// whose private side (if written) is that family's relay address.
fn external_ips(
    out: &mut Out,
    o: &Opts,
    families: [(Option<At<IpAddr>>, Option<&str>); 2],
    skipped: &mut Vec<Skipped>,
) {
    let mut done = [false, false];
    for &(no, (public, private)) in &o.external {
        let fam = usize::from(public.is_ipv6());
        let (relay, key) = families[fam];
        let why = if done[fam] {
            Some("tern gives clients one public address per family; this mapping is not used")
        } else if public.is_loopback() || public.is_unspecified() {
            Some("a loopback or unspecified public address cannot be given to clients")
        } else if private.is_some_and(|p| p.is_ipv6() != public.is_ipv6()) {
            Some("PUBLIC and PRIVATE are of different families")
        } else if key.is_none() {
            Some("there is no relay address of this family to map (set relay-ip)")
        } else if private.is_some_and(|p| relay.is_some_and(|(_, r)| r != p)) {
            Some("its PRIVATE address is not the relay address tern uses")
        } else {
            None
        };
        match (why, key) {
            (None, Some(key)) => {
                done[fam] = true;
                out.key(
                    &format!("coturn external-ip (line {no}): the public side of a 1:1 NAT."),
                    key,
                    &string(&public.to_string()),
                );
            }
            (why, _) => skip(skipped, no, "external-ip", why.unwrap_or("not used")),
        }
    }
}
