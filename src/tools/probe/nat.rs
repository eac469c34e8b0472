//! The NAT type in front of the probe (RFC 5780 §4.3 mapping and §4.4
//! filtering), reported as `nat` in the report.
//!
//! Discovery needs a server with an alternate address: it names it in
//! OTHER-ADDRESS and answers CHANGE-REQUEST from it (tern with
//! `[server] alternate_listen`, coturn with two listening IPs). Without one
//! the report says so instead of guessing. The routine is
//! [`crate::tools::client::nat`]; each test runs on a fresh UDP socket, as
//! RFC 5780 §4 asks, because a mapping created by the mapping test would
//! let the filtering test's packets through a filtering NAT.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use super::report::NatReport;
use crate::tools::client::nat::{self, Error, Filtering, Mapping};

/// Sends per Binding before a test counts as "no response".
const TRIES: u32 = 3;
/// Read timeout between two sends. An address-and-port-dependent
/// filtering NAT costs two unanswered tests: 2 × 3 × 300 ms.
const WAIT: Duration = Duration::from_millis(300);

/// The NAT type between this host and `server` over UDP.
pub(super) fn discover(server: SocketAddr) -> NatReport {
    match classify(server) {
        Ok(found) => found,
        Err(Error::NoAlternate) => NatReport::unavailable(
            "server has no alternate address (no OTHER-ADDRESS in its Binding response; \
             tern: set [server] alternate_listen, coturn: a second listening-ip)",
        ),
        Err(Error::NoResponse(to)) => NatReport::unavailable(format!(
            "no Binding response from {to}, which the server named in OTHER-ADDRESS or as \
             its primary address (is the alternate address firewalled, or not advertised \
             with server.alternate_advertised_address behind a NAT?)"
        )),
        Err(e) => NatReport::unavailable(e),
    }
}

fn classify(server: SocketAddr) -> Result<NatReport, Error> {
    let sock = fresh_socket(server)?;
    let (mapping, mapped) = nat::mapping(&sock, server, TRIES)?;
    let local = SocketAddr::new(route_source(server)?, sock.local_addr()?.port());
    drop(sock);
    let filtering = nat::filtering(&fresh_socket(server)?, server, TRIES)?;
    Ok(found(mapping, filtering, mapped != local))
}

/// The report for a finished discovery.
fn found(mapping: Mapping, filtering: Filtering, behind_nat: bool) -> NatReport {
    let (m, f) = (mapping_name(mapping), filtering_name(filtering));
    let mut summary = format!("{m} mapping, {f} filtering");
    if !behind_nat {
        summary.push_str(" (no NAT: the server sees this host's own address)");
    } else if mapping == Mapping::AddressAndPortDependent {
        summary.push_str(" (symmetric NAT: peers see a new port per destination; expect relaying)");
    }
    NatReport {
        mapping: Some(m),
        filtering: Some(f),
        behind_nat: Some(behind_nat),
        summary,
    }
}

fn mapping_name(m: Mapping) -> &'static str {
    match m {
        Mapping::EndpointIndependent => "endpoint-independent",
        Mapping::AddressDependent => "address-dependent",
        Mapping::AddressAndPortDependent => "address-and-port-dependent",
    }
}

fn filtering_name(f: Filtering) -> &'static str {
    match f {
        Filtering::EndpointIndependent => "endpoint-independent",
        Filtering::AddressDependent => "address-dependent",
        Filtering::AddressAndPortDependent => "address-and-port-dependent",
    }
}

fn unspecified(server: SocketAddr) -> SocketAddr {
    let ip = match server {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    SocketAddr::new(ip, 0)
}

/// An unconnected socket of `server`'s family: responses may come from the
/// alternate address.
fn fresh_socket(server: SocketAddr) -> Result<UdpSocket, Error> {
    let sock = UdpSocket::bind(unspecified(server))?;
    sock.set_read_timeout(Some(WAIT))?;
    Ok(sock)
}

/// The source IP the kernel picks towards `server` (what an unbound
/// socket's packets carry): a connected throwaway socket tells it.
fn route_source(server: SocketAddr) -> Result<IpAddr, Error> {
    let probe = UdpSocket::bind(unspecified(server))?;
    probe.connect(server)?;
    Ok(probe.local_addr()?.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_name_the_behaviour() {
        let r = found(
            Mapping::AddressAndPortDependent,
            Filtering::AddressDependent,
            true,
        );
        assert_eq!(r.mapping, Some("address-and-port-dependent"));
        assert_eq!(r.filtering, Some("address-dependent"));
        assert!(r.summary.contains("symmetric NAT"), "{}", r.summary);
        let r = found(
            Mapping::EndpointIndependent,
            Filtering::EndpointIndependent,
            false,
        );
        assert_eq!(r.behind_nat, Some(false));
        assert!(
            r.summary.ends_with("this host's own address)"),
            "{}",
            r.summary
        );
    }

    #[test]
    fn a_server_without_alternate_is_reported_as_such() {
        // A socket that answers nothing: the first Binding times out.
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let r = discover(silent.local_addr().unwrap());
        assert_eq!((r.mapping, r.behind_nat), (None, None));
        assert!(
            r.summary.starts_with("not available: no Binding response"),
            "{}",
            r.summary
        );
    }
}
