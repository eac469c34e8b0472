//! RFC 5780 Binding: CHANGE-REQUEST routing (Table 1), RESPONSE-ORIGIN,
//! OTHER-ADDRESS, RESPONSE-PORT, PADDING, the 420/400 cases and the 4× cap.

use super::*;
use crate::proto::config::NatDiscovery;
use crate::proto::stun::{decode_addr, decode_xor_addr};
use crate::proto::turn::{CHANGE_IP, CHANGE_PORT, CHANGE_REQUEST, MAX_PADDING};

const IP1: &str = "192.0.2.1";
const IP2: &str = "192.0.2.2";

fn nat() -> NatDiscovery {
    NatDiscovery {
        primary: addr("192.0.2.1:3478"),
        alternate: addr("192.0.2.2:3479"),
        public_primary: IP1.parse().unwrap(),
        public_alternate: IP2.parse().unwrap(),
    }
}

fn server() -> TestServer {
    TestServer::with(|c| c.nat_discovery = Some(nat()))
}

fn from(local: &str) -> FiveTuple {
    FiveTuple {
        client: addr("198.51.100.7:40000"),
        server: addr(local),
        transport: Transport::Udp,
    }
}

/// Sends a Binding request and returns the one transmit.
fn binding(t: &mut TestServer, to: FiveTuple, f: impl FnOnce(&mut MessageWriter<'_>)) -> Transmit {
    let (_, req) = t.message(Method::BINDING, Class::Request, f);
    binding_raw(t, to, &req)
}

fn binding_raw(t: &mut TestServer, to: FiveTuple, req: &[u8]) -> Transmit {
    assert_eq!(
        t.server.handle_client(t.now, to, req),
        ClientAction::Handled
    );
    let out = t.server.poll_transmit().expect("a response");
    assert!(t.server.poll_transmit().is_none());
    out
}

fn change(flags: u8) -> impl FnOnce(&mut MessageWriter<'_>) {
    move |w| {
        w.push(CHANGE_REQUEST, &[0, 0, 0, flags]);
    }
}

fn addr_attr(m: &Message<'_>, t: AttrType) -> Option<SocketAddr> {
    m.get(t).map(|v| decode_addr(v).unwrap())
}

#[test]
fn change_request_table_1_from_every_listener() {
    let mut t = server();
    let a = |ip: &str, port: u16| SocketAddr::new(ip.parse().unwrap(), port);
    // (request destination, flags) → response source; OTHER-ADDRESS is
    // always Ca:Cp, the address differing from the destination in both.
    for (dst, other) in [
        (a(IP1, 3478), a(IP2, 3479)),
        (a(IP1, 3479), a(IP2, 3478)),
        (a(IP2, 3478), a(IP1, 3479)),
        (a(IP2, 3479), a(IP1, 3478)),
    ] {
        for flags in [0, CHANGE_IP, CHANGE_PORT, CHANGE_IP | CHANGE_PORT] {
            let src_ip = if flags & CHANGE_IP != 0 {
                other.ip()
            } else {
                dst.ip()
            };
            let src_port = if flags & CHANGE_PORT != 0 {
                other.port()
            } else {
                dst.port()
            };
            let source = SocketAddr::new(src_ip, src_port);
            let out = binding(&mut t, from(&dst.to_string()), change(flags));
            assert_eq!(out.to.server, source, "{dst} flags {flags:#x}");
            assert_eq!(out.to.client, addr("198.51.100.7:40000"));
            let m = Message::parse(&out.data).unwrap();
            assert_eq!(m.class(), Class::Success);
            assert_eq!(addr_attr(&m, AttrType::RESPONSE_ORIGIN), Some(source));
            assert_eq!(addr_attr(&m, AttrType::OTHER_ADDRESS), Some(other));
            let xma = m.get(AttrType::XOR_MAPPED_ADDRESS).unwrap();
            assert_eq!(
                decode_xor_addr(xma, &m.transaction_id()).unwrap(),
                addr("198.51.100.7:40000")
            );
            assert!(m.check_fingerprint().is_ok());
        }
    }
}

#[test]
fn other_bits_of_change_request_are_ignored() {
    let mut t = server();
    let out = binding(&mut t, from("192.0.2.1:3478"), change(0xF9));
    assert_eq!(out.to.server, addr("192.0.2.1:3478"));
}

#[test]
fn plain_binding_carries_origin_other_and_mapped_address() {
    let mut t = server();
    let out = binding(&mut t, from("192.0.2.1:3478"), |_| {});
    let m = Message::parse(&out.data).unwrap();
    assert_eq!(
        addr_attr(&m, AttrType::RESPONSE_ORIGIN),
        Some(addr("192.0.2.1:3478"))
    );
    assert_eq!(
        addr_attr(&m, AttrType::OTHER_ADDRESS),
        Some(addr("192.0.2.2:3479"))
    );
    assert_eq!(
        addr_attr(&m, AttrType::MAPPED_ADDRESS),
        Some(addr("198.51.100.7:40000"))
    );
    // 20-byte request, 76-byte response: within 4×.
    assert_eq!(out.data.len(), 76);
}

#[test]
fn public_addresses_behind_a_one_to_one_nat() {
    let mut t = TestServer::with(|c| {
        c.nat_discovery = Some(NatDiscovery {
            public_primary: "203.0.113.1".parse().unwrap(),
            public_alternate: "203.0.113.2".parse().unwrap(),
            ..nat()
        });
    });
    let out = binding(&mut t, from("192.0.2.1:3478"), change(CHANGE_IP));
    // Leaves from the local alternate IP; tells the client the public ones.
    assert_eq!(out.to.server, addr("192.0.2.2:3478"));
    let m = Message::parse(&out.data).unwrap();
    assert_eq!(
        addr_attr(&m, AttrType::RESPONSE_ORIGIN),
        Some(addr("203.0.113.2:3478"))
    );
    assert_eq!(
        addr_attr(&m, AttrType::OTHER_ADDRESS),
        Some(addr("203.0.113.2:3479"))
    );
}

#[test]
fn without_alternate_or_off_the_discovery_addresses_nat_attributes_get_420() {
    let (mut plain, mut nat) = (TestServer::new(), server());
    let tcp = FiveTuple {
        transport: Transport::Tcp,
        ..from("192.0.2.1:3478")
    };
    let cases: [(&mut TestServer, FiveTuple); 3] = [
        (&mut plain, from("192.0.2.1:3478")),
        // Another listen address of a discovery server.
        (&mut nat, from("192.0.2.9:3478")),
        (&mut server(), tcp),
    ];
    for (t, to) in cases {
        for attr in [CHANGE_REQUEST, AttrType::RESPONSE_PORT, AttrType::PADDING] {
            let out = binding(t, to, |w| {
                w.push(attr, &[0, 0, 0x30, 0x39]);
            });
            let m = Message::parse(&out.data).unwrap();
            assert_eq!(error_code(&out.data), 420, "{attr:?} via {to:?}");
            assert_eq!(
                m.get(AttrType::UNKNOWN_ATTRIBUTES),
                Some(&attr.0.to_be_bytes()[..])
            );
            assert_eq!(out.to, to);
        }
        // A plain Binding there is answered as before: no RFC 5780 attributes.
        let out = binding(t, to, |_| {});
        let m = Message::parse(&out.data).unwrap();
        assert!(m.get(AttrType::XOR_MAPPED_ADDRESS).is_some());
        assert!(m.get(AttrType::OTHER_ADDRESS).is_none());
        assert!(m.get(AttrType::RESPONSE_ORIGIN).is_none());
    }
}

#[test]
fn response_port_goes_to_the_clients_ip_only() {
    let mut t = server();
    for value in [&[0x30, 0x39][..], &[0x30, 0x39, 0, 0]] {
        let out = binding(&mut t, from("192.0.2.1:3478"), |w| {
            w.push(AttrType::RESPONSE_PORT, value);
        });
        assert_eq!(out.to.client, addr("198.51.100.7:12345"));
        assert_eq!(out.to.server, addr("192.0.2.1:3478"));
        let m = Message::parse(&out.data).unwrap();
        // The mapped address is the request's source, as seen.
        assert_eq!(
            decode_xor_addr(
                m.get(AttrType::XOR_MAPPED_ADDRESS).unwrap(),
                &m.transaction_id()
            ),
            Ok(addr("198.51.100.7:40000"))
        );
    }
    // Combined with CHANGE-REQUEST: both apply.
    let out = binding(&mut t, from("192.0.2.1:3478"), |w| {
        w.push(CHANGE_REQUEST, &[0, 0, 0, CHANGE_IP | CHANGE_PORT]);
        w.push(AttrType::RESPONSE_PORT, &[0x30, 0x39, 0, 0]);
    });
    assert_eq!(out.to.client, addr("198.51.100.7:12345"));
    assert_eq!(out.to.server, addr("192.0.2.2:3479"));
}

#[test]
fn malformed_nat_attributes_get_400_to_the_sender() {
    let mut t = server();
    let bad: [&dyn Fn(&mut MessageWriter<'_>); 5] = [
        &|w| {
            w.push(CHANGE_REQUEST, &[0, 0, 4]);
        },
        &|w| {
            w.push(CHANGE_REQUEST, &[0; 8]);
        },
        &|w| {
            w.push(AttrType::RESPONSE_PORT, &[0, 0, 0, 0]);
        },
        &|w| {
            w.push(AttrType::RESPONSE_PORT, &[1, 2, 3]);
        },
        // RFC 5780 §6.1: PADDING with RESPONSE-PORT is 400.
        &|w| {
            w.push(AttrType::RESPONSE_PORT, &[0x30, 0x39, 0, 0]);
            w.push(AttrType::PADDING, &[0; 64]);
        },
    ];
    for f in bad {
        let out = binding(&mut t, from("192.0.2.2:3479"), f);
        assert_eq!(error_code(&out.data), 400);
        assert_eq!(out.to, from("192.0.2.2:3479"));
    }
}

#[test]
fn padding_makes_the_response_as_long_as_the_request_never_longer() {
    let mut t = server();
    for pad in [0usize, 4, 100, 1500, 4000] {
        let out = binding(&mut t, from("192.0.2.1:3478"), |w| {
            w.push(CHANGE_REQUEST, &[0, 0, 0, CHANGE_PORT]);
            w.push(AttrType::PADDING, &vec![0xAB; pad]);
        });
        let req_len = 20 + 8 + 4 + pad;
        let m = Message::parse(&out.data).unwrap();
        let got = m
            .get(AttrType::PADDING)
            .expect("PADDING in the response")
            .len();
        assert!(
            out.data.len() <= req_len.max(100),
            "{pad}: {}",
            out.data.len()
        );
        if pad >= 100 {
            assert_eq!(out.data.len(), req_len, "padded to the request's size");
            assert!(got > 0);
        }
        assert_eq!(out.to.server, addr("192.0.2.1:3479"));
    }
    // The cap: a 20 kB request gets at most MAX_PADDING bytes of it back.
    let out = binding(&mut t, from("192.0.2.1:3478"), |w| {
        w.push(AttrType::PADDING, &vec![0; 20_000]);
    });
    let m = Message::parse(&out.data).unwrap();
    assert_eq!(m.get(AttrType::PADDING).unwrap().len(), MAX_PADDING);
}

#[test]
fn responses_stay_within_four_times_the_request() {
    let mut t = TestServer::with(|c| {
        c.nat_discovery = Some(NatDiscovery {
            primary: addr("[2001:db8::1]:3478"),
            alternate: addr("[2001:db8::2]:3479"),
            public_primary: "2001:db8::1".parse().unwrap(),
            public_alternate: "2001:db8::2".parse().unwrap(),
        });
        c.software = Some("tern".to_owned());
    });
    let to = FiveTuple {
        client: addr("[2001:db8:ff::7]:40000"),
        server: addr("[2001:db8::2]:3478"),
        transport: Transport::Udp,
    };
    // A bare IPv6 request (20 bytes): XOR-MAPPED-ADDRESS only, as before.
    let out = binding(&mut t, to, |_| {});
    assert!(out.data.len() <= 80, "{}", out.data.len());
    let m = Message::parse(&out.data).unwrap();
    assert!(m.get(AttrType::OTHER_ADDRESS).is_none());
    // A discovery request (28 bytes) gets origin and other address.
    let out = binding(&mut t, to, change(CHANGE_IP));
    assert!(out.data.len() <= 4 * 28, "{}", out.data.len());
    let m = Message::parse(&out.data).unwrap();
    assert_eq!(
        addr_attr(&m, AttrType::OTHER_ADDRESS),
        Some(addr("[2001:db8::1]:3479"))
    );
    assert_eq!(
        addr_attr(&m, AttrType::RESPONSE_ORIGIN),
        Some(addr("[2001:db8::1]:3478"))
    );
    assert_eq!(out.to.server, addr("[2001:db8::1]:3478"));
}
