//! `tern probe`: is this TURN server working, from here?
//!
//! The probe walks what a WebRTC client does, one step at a time, with
//! tern's blocking client ([`crate::tools::client::Client`]):
//! Binding → Allocate (a 401 with REALM and NONCE, then authenticated) →
//! CreatePermission → ChannelBind → data through the relay and back →
//! Refresh(0). The peer is a second allocation on the same server, so the
//! probe needs no host of its own on the internet: A sends ChannelData to
//! B's relayed address, B gets it as a Data indication and answers with a
//! Send indication to A's relayed address, A gets the answer as
//! ChannelData. Each step is timed and reported with the addresses seen
//! (`report`), and the first failure comes with a hint (`hints`).
//!
//! The data path here is relay to relay inside the server (behind a 1:1
//! NAT too: tern and coturn send traffic for their own advertised relay
//! address to the local relay sockets). It proves the relay sockets,
//! permissions and channels work; it cannot prove that a peer elsewhere on
//! the internet reaches the relay ports, which is why a private relayed
//! address behind a public listener is reported on its own.

pub mod connect;
mod hints;
pub mod issuer;
mod nat;
mod relay;
pub mod report;
pub mod target;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use connect::{Leg, TlsTrust};
use report::{Addresses, NatReport, Report, Step, is_public};
use target::{Target, Transport};

use crate::secret::Secret;
use crate::tools::client::Client;

/// Most pings one `--count` run sends.
pub const MAX_COUNT: u32 = 10_000;

/// What to probe and how.
#[derive(Debug)]
pub struct ProbeConfig {
    /// The URI as given (for the report).
    pub uri: String,
    pub target: Target,
    pub user: String,
    pub password: Secret<String>,
    pub trust: TlsTrust,
    /// Pings over the channel after the walk (0 = none).
    pub count: u32,
    /// Time between the starts of two pings.
    pub interval: Duration,
}

/// Runs the probe; never panics on what the server sends.
pub fn run(cfg: &ProbeConfig) -> Report {
    let mut probe = Probe {
        cfg,
        steps: Vec::new(),
        addrs: Addresses::default(),
        nat: None,
        ping: None,
        failure: None,
    };
    let walked = probe.walk();
    probe.finish(walked.is_ok())
}

/// A recorded failure: the step and its hint are in `Probe::failure`.
struct Failed;

struct Probe<'c> {
    cfg: &'c ProbeConfig,
    steps: Vec<Step>,
    addrs: Addresses,
    nat: Option<NatReport>,
    ping: Option<report::PingStats>,
    /// The first failed step and its hint.
    failure: Option<(&'static str, String)>,
}

impl Probe<'_> {
    fn pass(&mut self, name: &'static str, t0: Instant, detail: String) {
        self.steps.push(Step {
            name,
            ok: true,
            ms: ms(t0.elapsed()),
            detail,
        });
    }

    fn fail(&mut self, name: &'static str, t0: Instant, detail: String, hint: String) -> Failed {
        self.steps.push(Step {
            name,
            ok: false,
            ms: ms(t0.elapsed()),
            detail,
        });
        self.failure.get_or_insert((name, hint));
        Failed
    }

    fn walk(&mut self) -> Result<(), Failed> {
        let cfg = self.cfg;
        let server = self.resolve()?;
        let t0 = Instant::now();
        let target = &cfg.target;
        let leg = Leg::new(server, target.transport, &target.host, &cfg.trust)
            .map_err(|e| self.fail("connect", t0, e.clone(), e))?;
        let mut a = self.open(&leg)?;
        self.binding(&mut a)?;
        self.nat = Some(if leg.transport == Transport::Udp {
            nat::discover(server)
        } else {
            NatReport::unavailable(
                "RFC 5780 discovery runs over UDP only; probe turn:HOST?transport=udp for it",
            )
        });
        if !self.cfg.target.turn {
            return Ok(());
        }
        self.allocate("allocate", &mut a)?;
        self.check_relay_address(server, a.relay());
        let t0 = Instant::now();
        let mut b = match leg.open(&self.cfg.user, self.cfg.password.expose()) {
            Ok(b) => b,
            Err(e) => {
                let hint = hints::connect(&self.cfg.target, &e);
                let failed = self.fail("allocate_peer", t0, e, hint);
                delete(&mut a);
                return Err(failed);
            }
        };
        if let Err(failed) = self.allocate("allocate_peer", &mut b) {
            delete(&mut a);
            return Err(failed);
        }
        self.addrs.peer_relayed = Some(b.relay());
        match self.relay(&mut a, &mut b) {
            Ok(()) => self.refresh(&mut a, &mut b),
            Err(failed) => {
                delete(&mut a);
                delete(&mut b);
                Err(failed)
            }
        }
    }

    fn resolve(&mut self) -> Result<SocketAddr, Failed> {
        let t0 = Instant::now();
        let cfg = self.cfg;
        let target = &cfg.target;
        match target.resolve() {
            Ok(addrs) => {
                let server = addrs[0];
                self.addrs.server = Some(server);
                let mut detail = format!("{} → {server} ({})", target.host, target.transport);
                if addrs.len() > 1 {
                    detail.push_str(&format!("; the first of {} addresses", addrs.len()));
                }
                self.pass("resolve", t0, detail);
                Ok(server)
            }
            Err(e) => {
                let hint = format!("check the host name in the URI: {e}");
                Err(self.fail("resolve", t0, e, hint))
            }
        }
    }

    /// The first client; a `connect` step on TCP and TLS.
    fn open(&mut self, leg: &Leg) -> Result<Client, Failed> {
        let t0 = Instant::now();
        match leg.open(&self.cfg.user, self.cfg.password.expose()) {
            Ok(client) => {
                if leg.transport != Transport::Udp {
                    let what = match leg.transport {
                        Transport::Tls => format!("TCP and TLS to {} ({})", leg.server, leg.name),
                        Transport::Tcp | Transport::Udp => format!("TCP to {}", leg.server),
                    };
                    self.pass("connect", t0, what);
                }
                Ok(client)
            }
            Err(e) => {
                let hint = hints::connect(&self.cfg.target, &e);
                Err(self.fail("connect", t0, e, hint))
            }
        }
    }

    fn binding(&mut self, a: &mut Client) -> Result<(), Failed> {
        let t0 = Instant::now();
        match a.binding() {
            Ok(mapped) => {
                self.addrs.mapped = Some(mapped);
                self.pass("binding", t0, format!("mapped {mapped}"));
                Ok(())
            }
            Err(e) => {
                let hint = hints::request(&self.cfg.target, "binding", &e, None);
                Err(self.fail("binding", t0, e.to_string(), hint))
            }
        }
    }

    /// Allocate on `c`: the 401 that teaches REALM and NONCE, then the
    /// authenticated request; the relayed address goes in the report.
    fn allocate(&mut self, name: &'static str, c: &mut Client) -> Result<(), Failed> {
        let t0 = Instant::now();
        let result = c.allocate();
        let rounds = hints::rounds(c.exchanges(), c.realm());
        match result {
            Ok(relay) => {
                if name == "allocate" {
                    self.addrs.relayed = Some(relay);
                }
                self.pass(name, t0, format!("{rounds}; relayed {relay}"));
                Ok(())
            }
            Err(e) => {
                let hint = hints::request(&self.cfg.target, name, &e, c.realm());
                Err(self.fail(name, t0, format!("{rounds}: {e}"), hint))
            }
        }
    }

    /// A relayed address a remote peer cannot reach, handed out by a
    /// server that answered on a public address: reported, not fatal (the
    /// relay-to-relay data step may still work inside the server).
    fn check_relay_address(&mut self, server: SocketAddr, relay: SocketAddr) {
        if let Some((detail, hint)) = unreachable_relay(server, relay) {
            self.fail("relay_address", Instant::now(), detail, hint);
        }
    }

    fn refresh(&mut self, a: &mut Client, b: &mut Client) -> Result<(), Failed> {
        let t0 = Instant::now();
        for c in [a, b] {
            if let Err(e) = c.refresh(0) {
                let hint = hints::request(&self.cfg.target, "refresh", &e, c.realm());
                return Err(self.fail("refresh", t0, e.to_string(), hint));
            }
        }
        self.pass(
            "refresh",
            t0,
            "both allocations deleted (lifetime 0)".to_owned(),
        );
        Ok(())
    }

    fn finish(self, walked: bool) -> Report {
        let target = &self.cfg.target;
        let (ok, failed_step, verdict, hint) = match self.failure {
            Some((step, hint)) => {
                let verdict = format!("FAIL at {step}: {target} over {}", target.transport);
                (false, Some(step), verdict, Some(hint))
            }
            None if walked => (true, None, verdict_ok(target, self.ping.as_ref()), None),
            // invariant: every Err(Failed) is created by `fail`, which sets `failure`.
            None => unreachable!("a failed walk without a recorded failure"),
        };
        Report {
            target: self.cfg.uri.clone(),
            transport: target.transport,
            steps: self.steps,
            addresses: self.addrs,
            nat: self.nat,
            ping: self.ping,
            ok,
            failed_step,
            verdict,
            hint,
        }
    }
}

fn verdict_ok(target: &Target, ping: Option<&report::PingStats>) -> String {
    if !target.turn {
        return format!(
            "OK: {target} answers STUN Binding over {}",
            target.transport
        );
    }
    let mut v = format!(
        "OK: TURN over {} to {target} works: authenticated allocation, permission, channel, \
         data through the relay and back",
        target.transport
    );
    if let Some(p) = ping {
        v.push_str(&format!("; {}", p.summary()));
    }
    v
}

/// The detail and hint when `relay` is private (or loopback) while
/// `server` is public: the server hands out an address only its own
/// network can reach.
fn unreachable_relay(server: SocketAddr, relay: SocketAddr) -> Option<(String, String)> {
    if is_public(relay.ip()) || !is_public(server.ip()) {
        return None;
    }
    let detail = format!(
        "relayed address {relay} is not public while the server answered on {}",
        server.ip()
    );
    let hint = format!(
        "relay.advertised_address is probably missing: set it to the server's public IP \
         (coturn: external-ip={}/{}); peers elsewhere cannot reach {relay}",
        server.ip(),
        relay.ip()
    );
    Some((detail, hint))
}

/// Best-effort Refresh(0) after a failure, so the probe leaves nothing
/// allocated; its own failure is not the one to report.
fn delete(c: &mut Client) {
    let _ = c.refresh(0);
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_relay_behind_a_public_server_is_flagged() {
        let public = SocketAddr::new([203, 0, 114, 1].into(), 3478); // not a documentation range
        let private: SocketAddr = "10.0.0.5:50000".parse().unwrap();
        let (_, hint) = unreachable_relay(public, private).unwrap();
        assert!(
            hint.contains("relay.advertised_address is probably missing"),
            "{hint}"
        );
        assert!(hint.contains("external-ip=203.0.114.1/10.0.0.5"), "{hint}");
        // Private server (a LAN, a test): a private relay is expected.
        assert!(unreachable_relay("192.168.1.2:3478".parse().unwrap(), private).is_none());
        // Public relay: fine.
        let relay = SocketAddr::new([203, 0, 114, 1].into(), 50_000);
        assert!(unreachable_relay(public, relay).is_none());
    }
}
