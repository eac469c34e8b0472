//! What to change when a step fails: one hint per failure, naming the
//! server's config key (tern's, and coturn's where it differs).

use crate::proto::stun::Method;
use crate::tools::client::{Error, Exchange};

use super::target::{Target, Transport};

/// The connect step (TCP connect or TLS handshake) failed with `e`.
pub(super) fn connect(target: &Target, e: &str) -> String {
    if e.contains("TLS handshake") {
        return format!(
            "the TLS handshake with {} failed: the certificate must be valid for {:?} and \
             signed by a CA this machine trusts; pass --ca FILE for a private CA, or \
             --insecure to skip the check",
            target, target.host
        );
    }
    format!(
        "no answer from {target} over {}: is the server running and the port open \
         (server.listen / tls.listen, and the firewall)?",
        target.transport
    )
}

/// A request of `step` failed with `e`; `realm` is what the server's 401
/// said, if it said anything.
pub(super) fn request(target: &Target, step: &str, e: &Error, realm: Option<&str>) -> String {
    let proto = target.transport;
    match e {
        Error::Timeout(method) if *method == Method::BINDING => format!(
            "no answer from {target} over {proto}: is the server running and the port open?"
        ),
        Error::Timeout(method) if *method == Method::ALLOCATE => format!(
            "{target} answers Binding but not Allocate: is TURN enabled there, or is it a \
             STUN-only server (coturn: stun-only)?"
        ),
        Error::Timeout(_) => format!(
            "{target} stopped answering after answering earlier steps ({e}): is it \
             overloaded, or was it restarted?"
        ),
        Error::Status { code, .. } => status(*code, step, realm),
        Error::TryAlternate { servers, .. } => format!(
            "{target} is draining or over its soft limit and redirects new allocations \
             (300 Try Alternate) to {servers:?}: probe one of those, or check \
             cluster.soft_max_allocations and whether the node is draining"
        ),
        Error::Io(io) => match proto {
            Transport::Udp => format!("a socket error talking to {target}: {io}"),
            Transport::Tcp | Transport::Tls => format!(
                "the connection to {target} broke ({io}): the server may have closed it \
                 (limits.tcp_max_connections_per_ip, limits.tcp_idle_timeout_secs)"
            ),
        },
        Error::Protocol("success without authentication") => format!(
            "{target} allocated without asking for credentials (no 401): it is an open relay \
             anyone can use; turn authentication on (coturn: lt-cred-mech or use-auth-secret)"
        ),
        Error::Protocol(what) => format!(
            "{target} sent something a TURN client cannot use ({what}): is this a TURN server?"
        ),
    }
}

/// The hint for an error response `code` to `step`.
fn status(code: u16, step: &str, realm: Option<&str>) -> String {
    match (code, step) {
        (401, _) => format!(
            "credentials refused (realm {:?}): check --user/--password against the server's \
             users (auth.users), or that --rest-secret is one of auth.rest_secrets (coturn: \
             static-auth-secret) and both clocks are right",
            realm.unwrap_or("?")
        ),
        (403, "permission" | "channel_bind") => "the server's peer policy refused the peer \
             (403): the probe's peer is the server's own relayed address, which the policy \
             must allow (tern allows its own relay addresses by default; see [peers] allow/deny; \
             coturn: denied-peer-ip, allowed-peer-ip, no-loopback-peers)"
            .to_owned(),
        (403, _) => "forbidden (403): this user may not allocate".to_owned(),
        (437, _) => "allocation mismatch (437): an allocation already exists for this \
             connection; try again"
            .to_owned(),
        (441, _) => {
            "wrong credentials (441): the username changed within the allocation".to_owned()
        }
        (442, _) => "unsupported transport (442): the server does not relay UDP".to_owned(),
        (486, _) => "allocation quota reached (486): raise limits.max_allocations_per_user \
             (coturn: user-quota) or wait for old allocations to expire"
            .to_owned(),
        (508, _) => "insufficient capacity (508): no free relay port; widen relay.ports \
             (coturn: min-port/max-port) or raise limits.max_allocations (coturn: total-quota)"
            .to_owned(),
        (code, step) => format!("the server refused {step} with {code}: see its log"),
    }
}

/// An Allocate's round trips, e.g. `401 (realm "tern") 0.3 ms, success 0.4 ms`.
pub(super) fn rounds(exchanges: &[Exchange], realm: Option<&str>) -> String {
    let parts: Vec<String> = exchanges
        .iter()
        .map(|x| {
            let ms = x.rtt.as_secs_f64() * 1000.0;
            let retx = if x.sends > 1 {
                format!(", {} sends", x.sends)
            } else {
                String::new()
            };
            match x.error {
                None => format!("success {ms:.1} ms{retx}"),
                Some(401) => format!("401 (realm {:?}) {ms:.1} ms{retx}", realm.unwrap_or("?")),
                Some(code) => format!("{code} {ms:.1} ms{retx}"),
            }
        })
        .collect();
    if parts.is_empty() {
        "no response".to_owned()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn status(code: u16, method: Method) -> Error {
        Error::Status {
            method,
            code,
            reason: String::new(),
        }
    }

    #[test]
    fn each_failure_gets_its_hint() {
        let t = Target::parse("turn:turn.example.org").unwrap();
        let hint = |step, e: &Error, realm| request(&t, step, e, realm);
        let h = hint("allocate", &status(401, Method::ALLOCATE), Some("corp"));
        assert!(h.starts_with("credentials refused (realm \"corp\")"), "{h}");
        let h = hint("binding", &Error::Timeout(Method::BINDING), None);
        assert_eq!(
            h,
            "no answer from turn.example.org:3478 over udp: is the server running and the port open?"
        );
        let h = hint("permission", &status(403, Method::CREATE_PERMISSION), None);
        assert!(h.contains("peer policy"), "{h}");
        let h = hint("allocate", &status(508, Method::ALLOCATE), None);
        assert!(h.contains("relay.ports"), "{h}");
        let open = Error::Protocol("success without authentication");
        assert!(hint("allocate", &open, None).contains("open relay"));
        let h = connect(&t, "TLS handshake with turn.example.org failed: x");
        assert!(h.contains("--ca FILE") && h.contains("--insecure"), "{h}");
    }

    #[test]
    fn rounds_show_the_401_and_the_retransmissions() {
        let x = |error, ms, sends| Exchange {
            method: Method::ALLOCATE,
            error,
            rtt: Duration::from_millis(ms),
            sends,
        };
        let s = rounds(&[x(Some(401), 2, 1), x(None, 3, 2)], Some("tern"));
        assert_eq!(s, "401 (realm \"tern\") 2.0 ms, success 3.0 ms, 2 sends");
        assert_eq!(rounds(&[], None), "no response");
    }
}
