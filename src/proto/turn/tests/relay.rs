use super::*;

#[test]
fn channel_data_both_ways() {
    let mut t = TestServer::new();
    let c = client();
    t.allocate(c);
    let id = t.bound[0];
    let peer = addr("8.8.8.8:5000");
    expect_success(&t.channel_bind(c, 0x4001, peer), Method::CHANNEL_BIND);
    let frame = [0x40, 0x01, 0x00, 0x03, b'a', b'b', b'c', 0];
    let (action, replies) = t.input(c, &frame);
    assert_eq!(
        action,
        ClientAction::RelayToPeer {
            relay: id,
            peer,
            payload: 4..7
        }
    );
    assert!(replies.is_empty());
    let (to, bytes) = t.peer_sends(id, peer, b"xyz").unwrap();
    assert_eq!(to, c);
    assert_eq!(
        bytes,
        [0x40, 0x01, 0x00, 0x03, b'x', b'y', b'z'],
        "UDP: no padding"
    );
    // Wrong channel, truncated length: dropped.
    assert_eq!(
        t.input(c, &[0x40, 0x02, 0, 1, 0]).0,
        ClientAction::Dropped(DropReason::NoChannel)
    );
    assert_eq!(
        t.input(c, &[0x40, 0x01, 0, 9, 0]).0,
        ClientAction::Dropped(DropReason::Malformed)
    );
    // RFC 8656 §12: 0x5000–0x7FFF is not a channel; dropped and counted.
    assert_eq!(
        t.input(c, &[0x50, 0x01, 0, 0]).0,
        ClientAction::Dropped(DropReason::ChannelOutOfRange)
    );
    assert_eq!(t.server.stats().channel_out_of_range, 1);
}

#[test]
fn channel_data_to_tcp_client_is_padded() {
    let mut t = TestServer::new();
    let c = FiveTuple {
        transport: Transport::Tcp,
        ..client()
    };
    t.allocate(c);
    let id = t.bound[0];
    let peer = addr("8.8.8.8:5000");
    expect_success(&t.channel_bind(c, 0x4001, peer), Method::CHANNEL_BIND);
    let (_, bytes) = t.peer_sends(id, peer, b"xyz").unwrap();
    assert_eq!(bytes, [0x40, 0x01, 0x00, 0x03, b'x', b'y', b'z', 0]);
}

#[test]
fn send_indication_and_data_indication() {
    let mut t = TestServer::new();
    let c = client();
    t.allocate(c);
    let id = t.bound[0];
    let peer = addr("8.8.8.8:5000");
    let send = |t: &mut TestServer, peer: SocketAddr| {
        t.message(Method::SEND, Class::Indication, |w| {
            w.push_xor_addr(AttrType::XOR_PEER_ADDRESS, peer);
            w.push(AttrType::DATA, b"hello");
        })
        .1
    };
    // No permission yet: dropped.
    let ind = send(&mut t, peer);
    assert_eq!(
        t.input(c, &ind).0,
        ClientAction::Dropped(DropReason::NoPermission)
    );
    expect_success(&t.create_permission(c, &[peer]), Method::CREATE_PERMISSION);
    let ind = send(&mut t, peer);
    let (action, replies) = t.input(c, &ind);
    assert!(replies.is_empty());
    let ClientAction::RelayToPeer {
        relay,
        peer: p,
        payload,
    } = action
    else {
        panic!("{action:?}")
    };
    assert_eq!((relay, p), (id, peer));
    assert_eq!(&ind[payload], b"hello");
    // A denied peer is dropped even with a permission on some other address.
    let ind = send(&mut t, addr("127.0.0.1:5000"));
    assert_eq!(
        t.input(c, &ind).0,
        ClientAction::Dropped(DropReason::PeerDenied)
    );

    let (to, bytes) = t.peer_sends(id, peer, b"world").unwrap();
    assert_eq!(to, c);
    let m = Message::parse(&bytes).expect("Data indication parses");
    assert_eq!(
        m.message_type(),
        MessageType::new(Method::DATA, Class::Indication)
    );
    assert_eq!(m.get(AttrType::DATA), Some(&b"world"[..]));
    let tid = m.transaction_id();
    assert_eq!(
        crate::proto::stun::decode_xor_addr(m.get(AttrType::XOR_PEER_ADDRESS).unwrap(), &tid),
        Ok(peer)
    );
}

#[test]
fn stats_count_relayed_and_dropped() {
    let mut t = TestServer::new();
    let c = client();
    t.allocate(c);
    let peer = addr("8.8.8.8:5000");
    expect_success(&t.channel_bind(c, 0x4000, peer), Method::CHANNEL_BIND);
    for _ in 0..3 {
        t.input(c, &[0x40, 0x00, 0, 1, 7, 0, 0, 0]);
    }
    t.input(c, &[0x40, 0x05, 0, 1, 7, 0, 0, 0]);
    assert_eq!(t.server.stats().relayed_to_peer, 3);
    assert_eq!(t.server.stats().dropped, 1);
}

#[test]
fn bandwidth_limit_drops_over_rate_both_directions_and_refills() {
    let mut t = TestServer::with(|c| c.limits.bandwidth_bytes_per_sec = Some(1000));
    let c = client();
    t.allocate(c);
    let id = t.bound[0];
    let peer = addr("8.8.8.8:5000");
    expect_success(&t.channel_bind(c, 0x4000, peer), Method::CHANNEL_BIND);
    let mut frame = vec![0x40, 0x00, 0x01, 0xF4];
    frame.extend_from_slice(&[0u8; 500]);
    assert!(matches!(
        t.input(c, &frame).0,
        ClientAction::RelayToPeer { .. }
    ));
    assert!(matches!(
        t.input(c, &frame).0,
        ClientAction::RelayToPeer { .. }
    ));
    assert_eq!(
        t.input(c, &frame).0,
        ClientAction::Dropped(DropReason::OverBandwidth)
    );
    // The other direction has its own budget.
    assert!(t.peer_sends(id, peer, &[0u8; 900]).is_some());
    assert!(t.peer_sends(id, peer, &[0u8; 200]).is_none());
    assert_eq!(t.server.stats().over_bandwidth, 2);
    t.advance(Duration::from_millis(500));
    assert!(matches!(
        t.input(c, &frame).0,
        ClientAction::RelayToPeer { .. }
    ));
}
