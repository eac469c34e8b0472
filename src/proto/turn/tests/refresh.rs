//! Refresh with REQUESTED-ADDRESS-FAMILY on dual allocations (RFC 8656 §8).

use super::*;

fn dual(t: &mut TestServer, c: FiveTuple) -> RelayId {
    let r = t.req(&c, Method::ALLOCATE, |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        w.push(AttrType::ADDITIONAL_ADDRESS_FAMILY, &[2, 0, 0, 0]);
    });
    expect_success(&t.request(c, &r), Method::ALLOCATE);
    *t.bound.last().unwrap()
}

fn refresh_family(t: &mut TestServer, c: FiveTuple, family: u8, life: u32) -> Vec<u8> {
    let r = t.req(&c, Method::REFRESH, |w, _| {
        w.push(AttrType::REQUESTED_ADDRESS_FAMILY, &[family, 0, 0, 0]);
        w.push_u32(AttrType::LIFETIME, life);
    });
    t.request(c, &r)
}

#[test]
fn deleting_one_family_releases_its_socket_and_keeps_the_other() {
    let mut t = TestServer::with(|c| c.relay_ipv6 = true);
    let c = client();
    let id = dual(&mut t, c);
    let (p4, p6) = (addr("8.8.8.8:1000"), addr("[2001:db8:1::5]:1000"));
    expect_success(
        &t.create_permission(c, &[p4, p6]),
        Method::CREATE_PERMISSION,
    );
    expect_success(&t.channel_bind(c, 0x4001, p6), Method::CHANNEL_BIND);

    let resp = refresh_family(&mut t, c, 0x02, 0);
    assert_eq!(lifetime(&expect_success(&resp, Method::REFRESH)), 0);
    assert_eq!(t.released_family, [(id, true)]);
    assert!(t.released.is_empty(), "the allocation itself lives on");
    let a = t.server.allocation(&c).expect("IPv4 half still allocated");
    assert!(a.serves_family(false) && !a.serves_family(true));
    // IPv4 keeps relaying; the IPv6 peer's channel and permission are gone.
    assert!(t.peer_sends(id, p4, b"v4").is_some());
    assert!(t.peer_sends(id, p6, b"v6").is_none());
    assert_eq!(
        t.input(c, &[0x40, 0x01, 0, 1, 7, 0, 0, 0]).0,
        ClientAction::Dropped(DropReason::NoChannel)
    );
    // The family is gone: 443 for a Refresh or a peer of it.
    assert_eq!(error_code(&refresh_family(&mut t, c, 0x02, 600)), 443);
    assert_eq!(error_code(&t.create_permission(c, &[p6])), 443);
    // The remaining family is refreshed and deleted as a whole.
    expect_success(&refresh_family(&mut t, c, 0x01, 600), Method::REFRESH);
    expect_success(&refresh_family(&mut t, c, 0x01, 0), Method::REFRESH);
    assert_eq!(t.released, [id]);
    assert!(t.server.allocation(&c).is_none());
}

#[test]
fn each_family_of_a_dual_allocation_expires_on_its_own() {
    let mut t = TestServer::with(|c| c.relay_ipv6 = true);
    let c = client();
    let id = dual(&mut t, c);
    let resp = refresh_family(&mut t, c, 0x01, 1800);
    assert_eq!(lifetime(&expect_success(&resp, Method::REFRESH)), 1800);
    // IPv6 kept the Allocate's 600 s.
    t.advance(Duration::from_secs(599));
    assert!(t.released_family.is_empty());
    t.advance(Duration::from_secs(2));
    assert_eq!(t.released_family, [(id, true)]);
    let a = t.server.allocation(&c).expect("IPv4 still allocated");
    assert!(a.serves_family(false) && !a.serves_family(true));
    t.advance(Duration::from_secs(1200));
    assert_eq!(t.released, [id], "IPv4 ends at its own 1800 s");
}

#[test]
fn refresh_without_family_moves_both_and_wrong_family_is_443() {
    let mut t = TestServer::with(|c| c.relay_ipv6 = true);
    let c = client();
    let id = dual(&mut t, c);
    expect_success(&t.refresh(c, Some(1200)), Method::REFRESH);
    t.advance(Duration::from_secs(1199));
    assert!(t.released_family.is_empty() && t.released.is_empty());
    t.advance(Duration::from_secs(2));
    assert_eq!(t.released, [id]);
    assert!(
        t.released_family.is_empty(),
        "one release for the whole allocation"
    );

    // A single-family allocation: the other family is 443, its own is a
    // plain refresh, a bad family value is 440 and a bad length 400.
    let c2 = FiveTuple {
        client: addr("198.51.100.8:2"),
        ..client()
    };
    t.allocate(c2);
    assert_eq!(error_code(&refresh_family(&mut t, c2, 0x02, 600)), 443);
    assert_eq!(error_code(&refresh_family(&mut t, c2, 0x03, 600)), 440);
    let r = t.req(&c2, Method::REFRESH, |w, _| {
        w.push(AttrType::REQUESTED_ADDRESS_FAMILY, &[1, 0]);
    });
    assert_eq!(error_code(&t.request(c2, &r)), 400);
    expect_success(&refresh_family(&mut t, c2, 0x01, 0), Method::REFRESH);
    assert!(t.server.allocation(&c2).is_none());
}
