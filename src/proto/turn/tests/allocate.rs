use super::*;

#[test]
fn allocate_success_carries_relay_mapped_lifetime_and_integrity() {
    let mut t = TestServer::new();
    let c = client();
    let req = t.req(&c, Method::ALLOCATE, |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        w.push(AttrType::DONT_FRAGMENT, &[]);
    });
    let resp = t.request(c, &req);
    let m = expect_success(&resp, Method::ALLOCATE);
    let mapped = xor_attr(&m, AttrType::XOR_MAPPED_ADDRESS);
    assert_eq!(mapped, c.client);
    assert_eq!(lifetime(&m), 600);
    assert!(
        m.check_integrity(&LongTermKey::derive(USER, REALM, PASS).0)
            .is_ok()
    );
    assert_eq!(t.server.allocation_count(), 1);
}

#[test]
fn retransmitted_allocate_gets_the_same_response_not_437() {
    let mut t = TestServer::new();
    let c = client();
    let req = t.req(&c, Method::ALLOCATE, |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    });
    let first = t.request(c, &req);
    let again = t.request(c, &req);
    assert_eq!(first, again);
    assert_eq!(t.bound.len(), 1, "no second relay socket");
    // A new transaction for the same 5-tuple is a mismatch.
    let req2 = t.req(&c, Method::ALLOCATE, |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    });
    assert_eq!(error_code(&t.request(c, &req2)), 437);
    // After the replay window the cached response is gone.
    t.advance(REPLAY_WINDOW + Duration::from_secs(1));
    assert_eq!(error_code(&t.request(c, &req)), 437);
}

#[test]
fn allocate_errors() {
    let mut t = TestServer::new();
    let c = client();
    // 400: no REQUESTED-TRANSPORT.
    let r = t.req(&c, Method::ALLOCATE, |_, _| {});
    assert_eq!(error_code(&t.request(c, &r)), 400);
    // 400: TCP over UDP (RFC 6062 §5.1; TCP allocations are in tcp_relay.rs).
    let r = t.req(&c, Method::ALLOCATE, |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[6, 0, 0, 0]);
    });
    assert_eq!(error_code(&t.request(c, &r)), 400);
    // 442: a transport tern does not relay (SCTP).
    let r = t.req(&c, Method::ALLOCATE, |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[132, 0, 0, 0]);
    });
    assert_eq!(error_code(&t.request(c, &r)), 442);
    // 440: IPv6 relay not available.
    let r = t.req(&c, Method::ALLOCATE, |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        w.push(AttrType::REQUESTED_ADDRESS_FAMILY, &[2, 0, 0, 0]);
    });
    assert_eq!(error_code(&t.request(c, &r)), 440);
    // 400: EVEN-PORT together with RESERVATION-TOKEN.
    let r = t.req(&c, Method::ALLOCATE, |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        w.push(AttrType::EVEN_PORT, &[0x80]);
        w.push(AttrType::RESERVATION_TOKEN, &[1; 8]);
    });
    assert_eq!(error_code(&t.request(c, &r)), 400);
    // 508: unknown reservation token.
    let r = t.req(&c, Method::ALLOCATE, |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        w.push(AttrType::RESERVATION_TOKEN, &[1; 8]);
    });
    assert_eq!(error_code(&t.request(c, &r)), 508);
    assert_eq!(t.server.allocation_count(), 0);
}

#[test]
fn failed_relay_bind_is_508_and_releases_quota() {
    let mut t = TestServer::with(|c| c.limits.max_allocations_per_user = 1);
    t.fail_binds = true;
    let c = client();
    let r = t.req(&c, Method::ALLOCATE, |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    });
    assert_eq!(error_code(&t.request(c, &r)), 508);
    t.fail_binds = false;
    t.allocate(c);
}

#[test]
fn quota_486_per_user_and_508_total_then_free_again() {
    let mut t = TestServer::with(|c| {
        c.limits.max_allocations_per_user = 2;
        c.limits.max_allocations = 3;
    });
    let mk = |port| FiveTuple {
        client: addr(&format!("198.51.100.7:{port}")),
        ..client()
    };
    t.allocate(mk(1));
    t.allocate(mk(2));
    let r = t.req(&mk(3), Method::ALLOCATE, |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    });
    assert_eq!(error_code(&t.request(mk(3), &r)), 486);
    // bob has his own per-user budget but the total is 3.
    let (_, r) = t.authed(&mk(4), Method::ALLOCATE, "bob", "bobpw", |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    });
    expect_success(&t.request(mk(4), &r), Method::ALLOCATE);
    let (_, r) = t.authed(&mk(5), Method::ALLOCATE, "bob", "bobpw", |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    });
    assert_eq!(error_code(&t.request(mk(5), &r)), 508);
    // Deleting one frees the quota at once.
    expect_success(&t.refresh(mk(1), Some(0)), Method::REFRESH);
    t.allocate(mk(3));
}

#[test]
fn lifetime_is_capped_and_defaulted() {
    let mut t = TestServer::with(|c| c.max_lifetime = Duration::from_secs(3600));
    let c = client();
    let r = t.req(&c, Method::ALLOCATE, |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        w.push_u32(AttrType::LIFETIME, 999_999);
    });
    let resp = t.request(c, &r);
    let m = expect_success(&resp, Method::ALLOCATE);
    assert_eq!(lifetime(&m), 3600);
    let resp = t.refresh(c, Some(100));
    let m = expect_success(&resp, Method::REFRESH);
    assert_eq!(lifetime(&m), 100);
    assert_eq!(t.server.poll_timeout(), Some(t.now.mono + REPLAY_WINDOW));
}

#[test]
fn allocation_expires_and_releases_its_relay() {
    let mut t = TestServer::new();
    let c = client();
    t.allocate(c);
    let id = t.bound[0];
    t.advance(Duration::from_secs(599));
    assert_eq!(t.server.allocation_count(), 1);
    t.advance(Duration::from_secs(1));
    assert_eq!(t.server.allocation_count(), 0);
    assert_eq!(t.released, vec![id]);
    assert_eq!(error_code(&t.refresh(c, None)), 437);
}

#[test]
fn refresh_zero_deletes_at_once_and_nothing_is_relayed_after() {
    let mut t = TestServer::new();
    let c = client();
    t.allocate(c);
    let peer = addr("8.8.8.8:5000");
    expect_success(&t.channel_bind(c, 0x4000, peer), Method::CHANNEL_BIND);
    let id = t.bound[0];
    assert!(t.peer_sends(id, peer, b"hi").is_some());
    let r = t.req(&c, Method::REFRESH, |w, _| {
        w.push_u32(AttrType::LIFETIME, 0);
    });
    let resp = t.request(c, &r);
    let m = expect_success(&resp, Method::REFRESH);
    assert_eq!(lifetime(&m), 0);
    assert_eq!(t.released, vec![id]);
    assert!(t.peer_sends(id, peer, b"hi").is_none());
    let (action, _) = t.input(c, &[0x40, 0x00, 0x00, 0x02, b'h', b'i', 0, 0]);
    assert_eq!(action, ClientAction::Dropped(DropReason::NoAllocation));
    // The retransmitted Refresh(0) gets its original success, not 437.
    assert_eq!(t.request(c, &r), resp);
}

#[test]
fn even_port_reservation_token_claims_the_next_port() {
    let mut t = TestServer::new();
    let c = client();
    let r = t.req(&c, Method::ALLOCATE, |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        w.push(AttrType::EVEN_PORT, &[0x80]);
    });
    let resp = t.request(c, &r);
    let m = expect_success(&resp, Method::ALLOCATE);
    let relay = xor_attr(&m, AttrType::XOR_RELAYED_ADDRESS);
    let token = m
        .get(AttrType::RESERVATION_TOKEN)
        .expect("RESERVATION-TOKEN")
        .to_vec();
    let c2 = FiveTuple {
        client: addr("198.51.100.8:1"),
        ..client()
    };
    let r = t.req(&c2, Method::ALLOCATE, |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        w.push(AttrType::RESERVATION_TOKEN, &token);
    });
    let resp = t.request(c2, &r);
    let m = expect_success(&resp, Method::ALLOCATE);
    let relay2 = xor_attr(&m, AttrType::XOR_RELAYED_ADDRESS);
    assert_eq!(relay2.port(), relay.port() + 1);
    // The token is single-use.
    let c3 = FiveTuple {
        client: addr("198.51.100.9:1"),
        ..client()
    };
    let r = t.req(&c3, Method::ALLOCATE, |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        w.push(AttrType::RESERVATION_TOKEN, &token);
    });
    assert_eq!(error_code(&t.request(c3, &r)), 508);
}

#[test]
fn closed_tcp_connection_ends_its_allocation() {
    let mut t = TestServer::new();
    let c = FiveTuple {
        transport: Transport::Tcp,
        ..client()
    };
    t.allocate(c);
    t.server.handle_client_closed(&c);
    t.pump();
    assert_eq!(t.server.allocation_count(), 0);
    assert_eq!(t.released.len(), 1);
}

fn relayed(resp: &[u8]) -> Vec<SocketAddr> {
    let m = Message::parse(resp).unwrap();
    let tid = m.transaction_id();
    m.attrs()
        .filter(|(t, _)| *t == AttrType::XOR_RELAYED_ADDRESS)
        .map(|(_, v)| crate::proto::stun::decode_xor_addr(v, &tid).unwrap())
        .collect()
}

fn allocate_with(t: &mut TestServer, c: FiveTuple, attr: AttrType, family: u8) -> Vec<u8> {
    let r = t.req(&c, Method::ALLOCATE, |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        w.push(attr, &[family, 0, 0, 0]);
    });
    t.request(c, &r)
}

#[test]
fn ipv6_and_dual_allocations_when_the_server_has_ipv6() {
    let mut t = TestServer::with(|c| c.relay_ipv6 = true);
    let c = client();
    // IPv6 only.
    let resp = allocate_with(&mut t, c, AttrType::REQUESTED_ADDRESS_FAMILY, 0x02);
    expect_success(&resp, Method::ALLOCATE);
    let r = relayed(&resp);
    assert!(r.len() == 1 && r[0].is_ipv6(), "{r:?}");
    // Peers of the relay's family only.
    expect_success(
        &t.create_permission(c, &[addr("[2001:db8:1::5]:1")]),
        Method::CREATE_PERMISSION,
    );
    assert_eq!(
        error_code(&t.create_permission(c, &[addr("8.8.8.8:1")])),
        443
    );
    // IPv6 peer policy: loopback, link-local, ULA and mapped forms denied.
    for bad in [
        "[::1]:1",
        "[fe80::1]:1",
        "[fd00::1]:1",
        "[::ffff:10.0.0.1]:1",
        "[64:ff9b::7f00:1]:1",
    ] {
        assert_eq!(
            error_code(&t.create_permission(c, &[addr(bad)])),
            403,
            "{bad}"
        );
    }

    // Dual: two relayed addresses, peers of both families.
    let c2 = FiveTuple {
        client: addr("198.51.100.8:2"),
        ..client()
    };
    let resp = allocate_with(&mut t, c2, AttrType::ADDITIONAL_ADDRESS_FAMILY, 0x02);
    expect_success(&resp, Method::ALLOCATE);
    let r = relayed(&resp);
    assert!(r.len() == 2 && r[0].is_ipv4() && r[1].is_ipv6(), "{r:?}");
    assert!(
        Message::parse(&resp)
            .unwrap()
            .get(AttrType::ADDRESS_ERROR_CODE)
            .is_none()
    );
    expect_success(
        &t.create_permission(c2, &[addr("8.8.8.8:1"), addr("[2001:db8:1::5]:1")]),
        Method::CREATE_PERMISSION,
    );
}

#[test]
fn dual_allocation_without_ipv6_gets_ipv4_and_address_error_code() {
    let mut t = TestServer::new();
    let c = client();
    let resp = allocate_with(&mut t, c, AttrType::ADDITIONAL_ADDRESS_FAMILY, 0x02);
    expect_success(&resp, Method::ALLOCATE);
    let r = relayed(&resp);
    assert!(r.len() == 1 && r[0].is_ipv4(), "{r:?}");
    let m = Message::parse(&resp).unwrap();
    let aec = m
        .get(AttrType::ADDRESS_ERROR_CODE)
        .expect("ADDRESS-ERROR-CODE");
    assert_eq!(&aec[..4], &[0x02, 0, 4, 40]);
    assert_eq!(
        error_code(&t.create_permission(c, &[addr("[2001:db8:1::5]:1")])),
        443
    );
}

#[test]
fn address_family_errors() {
    let mut t = TestServer::new();
    let c = client();
    // IPv6 asked, none here: 440.
    assert_eq!(
        error_code(&allocate_with(
            &mut t,
            c,
            AttrType::REQUESTED_ADDRESS_FAMILY,
            0x02
        )),
        440
    );
    // Unknown family: 440.
    assert_eq!(
        error_code(&allocate_with(
            &mut t,
            c,
            AttrType::REQUESTED_ADDRESS_FAMILY,
            0x03
        )),
        440
    );
    // ADDITIONAL-ADDRESS-FAMILY must be IPv6: 400.
    assert_eq!(
        error_code(&allocate_with(
            &mut t,
            c,
            AttrType::ADDITIONAL_ADDRESS_FAMILY,
            0x01
        )),
        400
    );
    // Both family attributes: 400.
    let r = t.req(&c, Method::ALLOCATE, |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        w.push(AttrType::REQUESTED_ADDRESS_FAMILY, &[1, 0, 0, 0]);
        w.push(AttrType::ADDITIONAL_ADDRESS_FAMILY, &[2, 0, 0, 0]);
    });
    assert_eq!(error_code(&t.request(c, &r)), 400);
    // An IPv4-only server refuses an IPv4 family nothing: explicit IPv4 works.
    expect_success(
        &allocate_with(&mut t, c, AttrType::REQUESTED_ADDRESS_FAMILY, 0x01),
        Method::ALLOCATE,
    );
}

#[test]
fn shards_share_quotas_and_reservation_tokens() {
    // The kernel hashes each client socket to a worker: the RTCP socket
    // that claims a token, or a user's second allocation, may land on
    // another shard than the first.
    let (mut a, mut b) = TestServer::pair(|c| c.limits.max_allocations_per_user = 2);
    let c1 = client();
    let r = a.req(&c1, Method::ALLOCATE, |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        w.push(AttrType::EVEN_PORT, &[0x80]);
    });
    let resp = a.request(c1, &r);
    let m = expect_success(&resp, Method::ALLOCATE);
    let relay = xor_attr(&m, AttrType::XOR_RELAYED_ADDRESS);
    let token = m.get(AttrType::RESERVATION_TOKEN).unwrap().to_vec();
    let c2 = FiveTuple {
        client: addr("198.51.100.7:40001"),
        ..client()
    };
    let r = b.req(&c2, Method::ALLOCATE, |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        w.push(AttrType::RESERVATION_TOKEN, &token);
    });
    let resp = b.request(c2, &r);
    let claimed = xor_attr(
        &expect_success(&resp, Method::ALLOCATE),
        AttrType::XOR_RELAYED_ADDRESS,
    );
    assert_eq!(claimed, SocketAddr::new(relay.ip(), relay.port() + 1));
    // The user has 2 allocations across both shards: a third is refused on either.
    let c3 = FiveTuple {
        client: addr("198.51.100.7:40002"),
        ..client()
    };
    let r = a.req(&c3, Method::ALLOCATE, |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    });
    assert_eq!(error_code(&a.request(c3, &r)), 486);
    assert_eq!(a.quota().total(), 2);
    // Releasing on one shard frees the quota for the other.
    expect_success(&b.refresh(c2, Some(0)), Method::REFRESH);
    assert_eq!(a.quota().total(), 1);
    a.allocate(c3);
}

#[test]
fn total_quota_refusal_comes_back_from_the_driver_as_508() {
    let (mut a, mut b) = TestServer::pair(|c| c.limits.max_allocations = 1);
    a.allocate(client());
    let c2 = FiveTuple {
        client: addr("198.51.100.7:40001"),
        ..client()
    };
    let (_, r) = b.authed(&c2, Method::ALLOCATE, "bob", "bobpw", |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    });
    assert_eq!(error_code(&b.request(c2, &r)), 508);
    // The refused Allocate left nothing behind: no slot, no relay asked.
    assert_eq!(b.server.allocation_count(), 0);
    assert!(b.bound.is_empty());
}

#[test]
fn reservation_token_keeps_its_ipv6_address() {
    // RFC 8656 §7.2: the Allocate that redeems a token carries no
    // REQUESTED-ADDRESS-FAMILY; it gets the reserved address, family included.
    let mut t = TestServer::with(|c| c.relay_ipv6 = true);
    let c = client();
    let r = t.req(&c, Method::ALLOCATE, |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        w.push(AttrType::REQUESTED_ADDRESS_FAMILY, &[0x02, 0, 0, 0]);
        w.push(AttrType::EVEN_PORT, &[0x80]);
    });
    let resp = t.request(c, &r);
    let m = expect_success(&resp, Method::ALLOCATE);
    let relay = xor_attr(&m, AttrType::XOR_RELAYED_ADDRESS);
    assert!(relay.is_ipv6() && relay.port() % 2 == 0, "{relay}");
    let token = m.get(AttrType::RESERVATION_TOKEN).unwrap().to_vec();
    let c2 = FiveTuple {
        client: addr("198.51.100.7:40001"),
        ..client()
    };
    let r = t.req(&c2, Method::ALLOCATE, |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        w.push(AttrType::RESERVATION_TOKEN, &token);
    });
    let resp = t.request(c2, &r);
    let m = expect_success(&resp, Method::ALLOCATE);
    let claimed = xor_attr(&m, AttrType::XOR_RELAYED_ADDRESS);
    assert_eq!(claimed, SocketAddr::new(relay.ip(), relay.port() + 1));
    // The allocation serves IPv6 peers, not IPv4 ones.
    let a = t.server.allocation(&c2).unwrap();
    assert!(a.serves_family(true) && !a.serves_family(false));
}

#[test]
fn reservation_tokens_differ_per_shard_key_and_expire() {
    let (mut a, mut b) = TestServer::pair(|_| {});
    let mut tokens = Vec::new();
    for t in [&mut a, &mut b] {
        let c = client();
        let r = t.req(&c, Method::ALLOCATE, |w, _| {
            w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
            w.push(AttrType::EVEN_PORT, &[0x80]);
        });
        let resp = t.request(c, &r);
        let m = expect_success(&resp, Method::ALLOCATE);
        tokens.push(m.get(AttrType::RESERVATION_TOKEN).unwrap().to_vec());
    }
    // Same counter, different shard keys: different tokens.
    assert_ne!(tokens[0], tokens[1]);
    // Past RESERVATION_LIFETIME the reserving shard releases its token.
    a.advance(RESERVATION_LIFETIME + Duration::from_secs(1));
    let c2 = FiveTuple {
        client: addr("198.51.100.7:40001"),
        ..client()
    };
    let r = b.req(&c2, Method::ALLOCATE, |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        w.push(AttrType::RESERVATION_TOKEN, &tokens[0]);
    });
    assert_eq!(error_code(&b.request(c2, &r)), 508);
}
