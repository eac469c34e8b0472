//! The relay steps: permissions both ways, a channel from A to B's relayed
//! address, one round trip of data (A → channel → B as a Data indication,
//! B → Send indication → A as ChannelData), then the `--count` run.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::report::PingStats;
use super::{Failed, Probe, hints};
use crate::tools::client::{Client, Delivery, new_tid};

/// The channel A binds to B's relayed address (RFC 8656 §12: 0x4000–0x4FFF).
const CHANNEL: u16 = 0x4000;
/// How long one leg of the data round trip is waited for, per try.
const WAIT: Duration = Duration::from_secs(1);
/// Tries of the data round trip over UDP (datagrams may be lost).
const DATA_TRIES: u32 = 3;

/// Where a round trip stopped.
enum Lost {
    /// B got nothing from A's relay.
    AtPeer,
    /// B got A's data, A never got B's answer.
    OnTheWayBack,
}

impl Probe<'_> {
    pub(super) fn relay(&mut self, a: &mut Client, b: &mut Client) -> Result<(), Failed> {
        let (ra, rb) = (a.relay(), b.relay());
        self.permission(a, rb, b, ra)?;
        let t0 = Instant::now();
        if let Err(e) = a.channel_bind(CHANNEL, rb) {
            let hint = hints::request(&self.cfg.target, "channel_bind", &e, a.realm());
            return Err(self.fail("channel_bind", t0, e.to_string(), hint));
        }
        let detail = format!("channel 0x{CHANNEL:04x} → {rb}");
        self.pass("channel_bind", t0, detail);
        self.data(a, b, ra)?;
        if self.cfg.count > 0 {
            self.ping(a, b, ra)?;
        }
        Ok(())
    }

    /// CreatePermission on A for B's relayed address and on B for A's.
    fn permission(
        &mut self,
        a: &mut Client,
        rb: SocketAddr,
        b: &mut Client,
        ra: SocketAddr,
    ) -> Result<(), Failed> {
        let t0 = Instant::now();
        for (c, peer) in [(a, rb), (b, ra)] {
            if let Err(e) = c.create_permission(peer) {
                let hint = hints::request(&self.cfg.target, "permission", &e, c.realm());
                return Err(self.fail("permission", t0, format!("for {peer}: {e}"), hint));
            }
        }
        self.pass("permission", t0, format!("{ra} ↔ {rb}"));
        Ok(())
    }

    fn data(&mut self, a: &mut Client, b: &mut Client, ra: SocketAddr) -> Result<(), Failed> {
        let t0 = Instant::now();
        let tries = if self.cfg.target.transport == super::Transport::Udp {
            DATA_TRIES
        } else {
            1
        };
        let mut lost = Lost::AtPeer;
        for n in 0..tries {
            let payload = format!("tern-probe {} {n}", hex(&new_tid().0));
            match round_trip(a, b, ra, payload.as_bytes(), WAIT) {
                Ok(Ok((rtt, at_b))) => {
                    let at_b = match at_b {
                        Delivery::Data(peer) => format!("Data indication from {peer}"),
                        Delivery::Channel(n) => format!("ChannelData 0x{n:04x}"),
                    };
                    let detail = format!(
                        "{} bytes A → channel → B ({at_b}) → Send → A in {:.1} ms",
                        payload.len(),
                        rtt.as_secs_f64() * 1000.0
                    );
                    self.pass("data", t0, detail);
                    return Ok(());
                }
                Ok(Err(where_)) => lost = where_,
                Err(e) => {
                    let hint = hints::request(&self.cfg.target, "data", &e, a.realm());
                    return Err(self.fail("data", t0, e.to_string(), hint));
                }
            }
        }
        let secs = WAIT.as_secs() * u64::from(tries);
        let detail = match lost {
            Lost::AtPeer => {
                format!("the peer allocation received nothing in {tries} tries ({secs} s)")
            }
            Lost::OnTheWayBack => "the peer allocation received the data but its answer never \
                came back"
                .to_owned(),
        };
        let hint = "relay ports unreachable: the allocations work but no data went through the \
            relay; open UDP on the relay port range (tern: relay.ports; coturn: min-port–max-port) \
            in the server's firewall, or set relay.advertised_address (coturn: external-ip) to \
            an address that reaches the relay sockets"
            .to_owned();
        Err(self.fail("data", t0, detail, hint))
    }

    /// `--count` round trips, one every `--interval`.
    fn ping(&mut self, a: &mut Client, b: &mut Client, ra: SocketAddr) -> Result<(), Failed> {
        let t0 = Instant::now();
        let tag = hex(&new_tid().0);
        let mut rtts = Vec::new();
        for seq in 0..self.cfg.count {
            let due = t0 + self.cfg.interval * seq;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let payload = format!("tern-probe {tag} ping {seq}");
            match round_trip(a, b, ra, payload.as_bytes(), WAIT) {
                Ok(Ok((rtt, _))) => rtts.push(rtt.as_secs_f64() * 1000.0),
                Ok(Err(_)) => {}
                Err(e) => {
                    let hint = hints::request(&self.cfg.target, "ping", &e, a.realm());
                    return Err(self.fail("ping", t0, e.to_string(), hint));
                }
            }
        }
        let stats = PingStats::new(self.cfg.count, rtts);
        let summary = stats.summary();
        let all_lost = stats.received == 0;
        self.ping = Some(stats);
        if all_lost {
            let hint = "every ping was lost after the first round trip worked: the relay \
                or the path to it is dropping packets (rate limit, overload?)"
                .to_owned();
            return Err(self.fail("ping", t0, summary, hint));
        }
        self.pass("ping", t0, summary);
        Ok(())
    }
}

/// A → ChannelData → B; B answers with a Send indication to A's relayed
/// address `ra`; A receives it as ChannelData. Returns the round-trip
/// time and how B got the data, or where the data was lost; an
/// `Err` is a transport failure. Other payloads (late answers) are skipped.
fn round_trip(
    a: &mut Client,
    b: &mut Client,
    ra: SocketAddr,
    payload: &[u8],
    wait: Duration,
) -> Result<Result<(Duration, Delivery), Lost>, crate::tools::client::Error> {
    let t0 = Instant::now();
    a.send_channel(CHANNEL, payload)?;
    let Some(from) = wait_for(b, payload, t0 + wait)? else {
        return Ok(Err(Lost::AtPeer));
    };
    b.send_indication(ra, payload)?;
    if wait_for(a, payload, Instant::now() + wait)?.is_none() {
        return Ok(Err(Lost::OnTheWayBack));
    }
    Ok(Ok((t0.elapsed(), from)))
}

/// Waits until `c` receives `payload`; returns how it came.
fn wait_for(
    c: &mut Client,
    payload: &[u8],
    deadline: Instant,
) -> Result<Option<Delivery>, crate::tools::client::Error> {
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Some((how, got)) = c.recv_data(left)? else {
            return Ok(None);
        };
        if got == payload {
            return Ok(Some(how));
        }
    }
    Ok(None)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
