//! IPv6 on ::1: IPv6 and dual-stack relays, 440 cases, the IPv6 peer
//! policy, and Binding over IPv6 UDP, TCP and TLS listeners.

use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};

use tern::proto::peer_policy::PeerPolicy;
use tern::proto::stun::{AttrType, Message, Method, decode_xor_addr};

use crate::client::{Client, Link};
use crate::harness::{
    IO_TIMEOUT, TestServer, binding_request, is_coturn, random_tid, settings_default_policy,
};
use crate::stream::{binding_over, mapped};
use crate::tls::{CertFiles, start, tls_connect, tls_settings};

fn have_ipv6() -> bool {
    let ok = UdpSocket::bind("[::1]:0").is_ok();
    if !ok {
        eprintln!("SKIPPED: this machine has no ::1");
    }
    ok
}

/// A server listening on ::1 and 127.0.0.1 with relays on both families.
fn dual_server(allow: &[&str]) -> (TestServer, SocketAddr) {
    let mut s = settings_default_policy();
    s.udp_listen = vec!["[::1]:0".parse().unwrap()];
    s.tcp_listen = vec!["[::1]:0".parse().unwrap()];
    s.relay_ip6 = Some("::1".parse().unwrap());
    s.proto.peer_policy =
        PeerPolicy::new(allow.iter().map(|n| n.parse().unwrap()).collect(), vec![]);
    let server = TestServer::with(s);
    let udp = server.udp;
    (server, udp)
}

fn relayed(resp: &[u8]) -> Vec<SocketAddr> {
    let m = Message::parse(resp).unwrap();
    let tid = m.transaction_id();
    m.attrs()
        .filter(|(t, _)| *t == AttrType::XOR_RELAYED_ADDRESS)
        .map(|(_, v)| decode_xor_addr(v, &tid).unwrap())
        .collect()
}

fn allocate(c: &mut Client, attr: AttrType) -> Result<Vec<u8>, u16> {
    c.request(Method::ALLOCATE, |w| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        w.push(attr, &[0x02, 0, 0, 0]);
    })
}

#[test]
fn dual_allocation_over_ipv6_relays_to_an_ipv6_peer() {
    if is_coturn() || !have_ipv6() {
        return;
    }
    let (server, addr) = dual_server(&["::1/128"]);
    assert!(addr.is_ipv6());
    let mut c = Client::new(Link::udp(addr));
    let resp = allocate(&mut c, AttrType::ADDITIONAL_ADDRESS_FAMILY).expect("dual Allocate");
    let r = relayed(&resp);
    assert_eq!(r.len(), 2, "{r:?}");
    assert!(r[0].is_ipv4() && r[1].is_ipv6(), "{r:?}");
    assert!(server.relay_ports.contains(&r[1].port()));

    let peer = UdpSocket::bind("[::1]:0").unwrap();
    peer.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let peer_addr = peer.local_addr().unwrap();
    c.channel_bind(0x4000, peer_addr)
        .expect("ChannelBind to an IPv6 peer");
    c.channel_data(0x4000, b"over six");
    let mut buf = [0u8; 64];
    let (n, from) = peer.recv_from(&mut buf).expect("peer receives");
    assert_eq!(&buf[..n], b"over six");
    assert_eq!(from, r[1], "sent from the IPv6 relayed address");
    peer.send_to(b"and back", from).unwrap();
    let back = c.recv(IO_TIMEOUT).expect("ChannelData back");
    assert_eq!(&back[..4], &[0x40, 0x00, 0x00, 0x08]);
    assert_eq!(&back[4..12], b"and back");
}

#[test]
fn ipv6_peer_policy_and_family_checks() {
    if is_coturn() || !have_ipv6() {
        return;
    }
    let (_server, addr) = dual_server(&[]);
    let mut c = Client::new(Link::udp(addr));
    let resp = allocate(&mut c, AttrType::REQUESTED_ADDRESS_FAMILY).expect("IPv6 Allocate");
    let r = relayed(&resp);
    assert!(r.len() == 1 && r[0].is_ipv6(), "{r:?}");
    // ::1 is this server's own relay address: a peer only on relay ports.
    assert_eq!(c.channel_bind(0x4000, "[::1]:9".parse().unwrap()), Err(403));
    for bad in [
        "[fe80::1]:9",
        "[fd00::1]:9",
        "[ff02::1]:9",
        "[::ffff:127.0.0.2]:9",
        "[::ffff:10.0.0.1]:9",
        "[64:ff9b::a9fe:a9fe]:9",
        "[::]:9",
    ] {
        assert_eq!(c.create_permission(bad.parse().unwrap()), Err(403), "{bad}");
    }
    // An IPv6-only allocation takes IPv6 peers only.
    assert_eq!(
        c.create_permission("192.0.2.1:9".parse().unwrap()),
        Err(443)
    );
    assert_eq!(
        c.create_permission("[2001:db8::1]:9".parse().unwrap()),
        Ok(())
    );
}

#[test]
fn without_an_ipv6_relay_ipv6_is_440_and_dual_degrades_to_ipv4() {
    if is_coturn() || !have_ipv6() {
        return;
    }
    let mut s = settings_default_policy();
    s.udp_listen = vec!["[::1]:0".parse().unwrap()];
    let server = TestServer::with(s);
    let mut c = Client::new(Link::udp(server.udp));
    assert_eq!(
        allocate(&mut c, AttrType::REQUESTED_ADDRESS_FAMILY).err(),
        Some(440)
    );
    let resp = allocate(&mut c, AttrType::ADDITIONAL_ADDRESS_FAMILY).expect("dual degrades");
    let r = relayed(&resp);
    assert!(r.len() == 1 && r[0].is_ipv4(), "{r:?}");
    let m = Message::parse(&resp).unwrap();
    assert_eq!(
        &m.get(AttrType::ADDRESS_ERROR_CODE).unwrap()[..4],
        &[0x02, 0, 4, 40]
    );
}

/// Issue 14: a RESERVATION-TOKEN for an IPv6 relay, redeemed by an
/// Allocate that names no family (RFC 8656 §7.2), gets the reserved IPv6
/// address and relays from it.
#[test]
fn ipv6_reservation_token_redeems_the_reserved_ipv6_address() {
    if is_coturn() || !have_ipv6() {
        return;
    }
    let (_server, addr) = dual_server(&["::1/128"]);
    let mut rtp = Client::new(Link::udp(addr));
    let resp = rtp
        .request(Method::ALLOCATE, |w| {
            w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
            w.push(AttrType::REQUESTED_ADDRESS_FAMILY, &[0x02, 0, 0, 0]);
            w.push(AttrType::EVEN_PORT, &[0x80]);
        })
        .expect("IPv6 Allocate with EVEN-PORT R");
    let r = relayed(&resp);
    assert!(
        r.len() == 1 && r[0].is_ipv6() && r[0].port() % 2 == 0,
        "{r:?}"
    );
    let token = Message::parse(&resp)
        .unwrap()
        .get(AttrType::RESERVATION_TOKEN)
        .expect("RESERVATION-TOKEN")
        .to_vec();

    let mut rtcp = Client::new(Link::udp(addr));
    let resp = rtcp
        .request(Method::ALLOCATE, |w| {
            w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
            w.push(AttrType::RESERVATION_TOKEN, &token);
        })
        .expect("Allocate redeeming the token");
    let r2 = relayed(&resp);
    let want = SocketAddr::new(r[0].ip(), r[0].port() + 1);
    assert_eq!(r2, [want], "the reserved address, family included");

    let peer = UdpSocket::bind("[::1]:0").unwrap();
    peer.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    rtcp.channel_bind(0x4001, peer.local_addr().unwrap())
        .expect("ChannelBind to an IPv6 peer");
    rtcp.channel_data(0x4001, b"rtcp");
    let mut buf = [0u8; 16];
    let (n, from) = peer.recv_from(&mut buf).expect("peer receives");
    assert_eq!((&buf[..n], from), (&b"rtcp"[..], want));
}

#[test]
fn ipv6_binding_over_udp_tcp_and_tls() {
    if UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("\n***** SKIPPED: no IPv6 loopback on this machine *****\n");
        return;
    }
    let files = CertFiles::new();
    let mut s = tls_settings(&files);
    s.udp_listen = vec!["[::1]:0".parse().unwrap()];
    s.tcp_listen = vec!["[::1]:0".parse().unwrap()];
    s.tls.as_mut().unwrap().listen = vec!["[::1]:0".parse().unwrap()];
    let h = start(s).unwrap();
    assert!(h.udp_addrs()[0].is_ipv6() && h.tcp_addrs()[0].is_ipv6());

    let u = UdpSocket::bind("[::1]:0").unwrap();
    u.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let tid = random_tid();
    u.send_to(&binding_request(tid), h.udp_addrs()[0]).unwrap();
    let mut buf = [0u8; 512];
    let (n, _) = u.recv_from(&mut buf).unwrap();
    assert_eq!(mapped(&buf[..n], tid), u.local_addr().unwrap());

    let mut t = TcpStream::connect(h.tcp_addrs()[0]).unwrap();
    t.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    assert_eq!(binding_over(&mut t), t.local_addr().unwrap());

    let mut c = tls_connect(h.tls_addrs()[0], &[b"stun.turn"]);
    assert_eq!(binding_over(&mut c), c.sock.local_addr().unwrap());
    // The IPv4 listener family is not mixed in: no v4 socket was bound.
    assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, h.tcp_addrs()[0].port())).is_err());
    h.shutdown();
}
