use super::*;

#[test]
fn create_permission_installs_every_peer_and_expires_after_300s() {
    let mut t = TestServer::new();
    let c = client();
    t.allocate(c);
    let id = t.bound[0];
    let (p1, p2) = (addr("8.8.8.8:1000"), addr("9.9.9.9:2000"));
    expect_success(
        &t.create_permission(c, &[p1, p2]),
        Method::CREATE_PERMISSION,
    );
    assert!(t.peer_sends(id, p1, b"a").is_some());
    assert!(
        t.peer_sends(id, addr("9.9.9.9:9999"), b"b").is_some(),
        "permissions are per IP, any port"
    );
    assert!(t.peer_sends(id, addr("1.1.1.1:1"), b"c").is_none());
    t.advance(PERMISSION_LIFETIME - Duration::from_secs(1));
    assert!(t.peer_sends(id, p1, b"a").is_some());
    t.advance(Duration::from_secs(1));
    assert!(t.peer_sends(id, p1, b"a").is_none(), "permission expired");
}

#[test]
fn permission_errors() {
    let mut t = TestServer::new();
    let c = client();
    // 437 without allocation.
    assert_eq!(
        error_code(&t.create_permission(c, &[addr("8.8.8.8:1")])),
        437
    );
    t.allocate(c);
    // 400 without XOR-PEER-ADDRESS.
    assert_eq!(error_code(&t.create_permission(c, &[])), 400);
    // 443 family mismatch.
    assert_eq!(
        error_code(&t.create_permission(c, &[addr("[2001:db8::1]:1")])),
        443
    );
    // 403 default-denied peers; nothing installed (all or nothing).
    for bad in [
        "127.0.0.1:1",
        "10.0.0.1:1",
        "169.254.169.254:80",
        "192.168.1.1:1",
        "224.0.0.1:1",
    ] {
        assert_eq!(
            error_code(&t.create_permission(c, &[addr("8.8.8.8:1"), addr(bad)])),
            403,
            "{bad}"
        );
    }
    assert_eq!(t.server.allocation(&c).unwrap().permission_count(), 0);
    assert_eq!(t.server.stats().peer_denied, 5);
}

#[test]
fn allow_list_opens_exactly_what_it_names() {
    let mut t = TestServer::with(|c| {
        c.peer_policy = PeerPolicy::new(vec!["10.1.0.0/16".parse().unwrap()], vec![])
    });
    let c = client();
    t.allocate(c);
    expect_success(
        &t.create_permission(c, &[addr("10.1.2.3:1")]),
        Method::CREATE_PERMISSION,
    );
    assert_eq!(
        error_code(&t.create_permission(c, &[addr("10.2.0.1:1")])),
        403
    );
}

#[test]
fn permission_quota_is_508() {
    let mut t = TestServer::with(|c| c.limits.max_permissions_per_allocation = 2);
    let c = client();
    t.allocate(c);
    expect_success(
        &t.create_permission(c, &[addr("8.8.8.8:1"), addr("8.8.4.4:1")]),
        Method::CREATE_PERMISSION,
    );
    // Refreshing an existing one is fine.
    expect_success(
        &t.create_permission(c, &[addr("8.8.8.8:1")]),
        Method::CREATE_PERMISSION,
    );
    assert_eq!(
        error_code(&t.create_permission(c, &[addr("1.1.1.1:1")])),
        508
    );
}

#[test]
fn channel_bind_rules() {
    let mut t = TestServer::new();
    let c = client();
    let (p1, p2) = (addr("8.8.8.8:1000"), addr("8.8.8.8:1001"));
    assert_eq!(error_code(&t.channel_bind(c, 0x4000, p1)), 437);
    t.allocate(c);
    // Out-of-range channel numbers.
    assert_eq!(error_code(&t.channel_bind(c, 0x3FFF, p1)), 400);
    assert_eq!(error_code(&t.channel_bind(c, 0x8000, p1)), 400);
    // RFC 8656 §12: 0x5000–0x7FFF are reserved, so 400 by default.
    assert_eq!(error_code(&t.channel_bind(c, 0x5000, p1)), 400);
    assert_eq!(error_code(&t.channel_bind(c, 0x7FFF, p1)), 400);
    expect_success(
        &t.channel_bind(c, 0x4FFF, addr("8.8.8.8:3000")),
        Method::CHANNEL_BIND,
    );
    expect_success(&t.channel_bind(c, 0x4000, p1), Method::CHANNEL_BIND);
    // Same binding again refreshes.
    expect_success(&t.channel_bind(c, 0x4000, p1), Method::CHANNEL_BIND);
    // Channel to another peer, or peer to another channel: 400.
    assert_eq!(error_code(&t.channel_bind(c, 0x4000, p2)), 400);
    assert_eq!(error_code(&t.channel_bind(c, 0x4001, p1)), 400);
    expect_success(&t.channel_bind(c, 0x4001, p2), Method::CHANNEL_BIND);
    // Policy and family.
    assert_eq!(
        error_code(&t.channel_bind(c, 0x4002, addr("127.0.0.1:1"))),
        403
    );
    assert_eq!(
        error_code(&t.channel_bind(c, 0x4002, addr("[2001:db8::1]:1"))),
        443
    );
}

#[test]
fn channel_expires_after_600s_and_stays_reserved_for_300s() {
    let mut t = TestServer::with(|c| c.max_lifetime = Duration::from_secs(3600));
    let c = client();
    t.allocate(c);
    expect_success(&t.refresh(c, Some(3600)), Method::REFRESH);
    let id = t.bound[0];
    let p1 = addr("8.8.8.8:1000");
    expect_success(&t.channel_bind(c, 0x4000, p1), Method::CHANNEL_BIND);
    // Keep the permission alive with CreatePermission; the channel itself is not refreshed.
    t.advance(Duration::from_secs(299));
    expect_success(&t.create_permission(c, &[p1]), Method::CREATE_PERMISSION);
    t.advance(Duration::from_secs(299));
    expect_success(&t.create_permission(c, &[p1]), Method::CREATE_PERMISSION);
    let (to, bytes) = t.peer_sends(id, p1, b"x").unwrap();
    assert_eq!(to, c);
    assert_eq!(&bytes[..2], &[0x40, 0x00], "still a channel at 598 s");
    t.advance(Duration::from_secs(2));
    let (_, bytes) = t.peer_sends(id, p1, b"x").unwrap();
    assert_eq!(
        &bytes[..2],
        &[0x00, 0x17],
        "Data indication once the channel expired"
    );
    // In cooldown the number cannot go to another peer...
    assert_eq!(
        error_code(&t.channel_bind(c, 0x4000, addr("8.8.8.8:2000"))),
        400
    );
    // ...but after it, it can.
    t.advance(CHANNEL_COOLDOWN);
    expect_success(
        &t.channel_bind(c, 0x4000, addr("8.8.8.8:2000")),
        Method::CHANNEL_BIND,
    );
}

#[test]
fn rfc5766_channel_range_is_an_explicit_switch() {
    use crate::proto::channel_data::ChannelRange;
    let mut t = TestServer::with(|c| c.channel_range = ChannelRange::Rfc5766);
    let c = client();
    t.allocate(c);
    let peer = addr("8.8.8.8:3000");
    expect_success(&t.channel_bind(c, 0x7FFF, peer), Method::CHANNEL_BIND);
    assert_eq!(error_code(&t.channel_bind(c, 0x8000, peer)), 400);
    assert_eq!(error_code(&t.channel_bind(c, 0x3FFF, peer)), 400);
    let (action, _) = t.input(c, &[0x7F, 0xFF, 0, 1, 9, 0, 0, 0]);
    assert!(matches!(action, ClientAction::RelayToPeer { peer: p, .. } if p == peer));
}
