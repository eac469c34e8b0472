//! Operator queries: list, count and kick allocations.

use super::*;

fn other_client(port: u16) -> FiveTuple {
    FiveTuple {
        client: SocketAddr::new("198.51.100.8".parse().unwrap(), port),
        ..client()
    }
}

#[test]
fn lists_counts_and_kicks_one_users_allocations() {
    let mut t = TestServer::new();
    let (a, b) = (client(), other_client(40_001));
    t.allocate(a);
    t.allocate(b);
    expect_success(
        &t.create_permission(a, &[addr("8.8.8.8:1"), addr("8.8.4.4:1")]),
        Method::CREATE_PERMISSION,
    );
    expect_success(
        &t.channel_bind(b, 0x4001, addr("8.8.8.8:2")),
        Method::CHANNEL_BIND,
    );
    // b's channel: two datagrams out (4 + 3 bytes), one back (5 bytes).
    for payload in [&b"ab"[..], b"c"] {
        let mut cd = vec![0x40, 0x01, 0, payload.len() as u8];
        cd.extend_from_slice(payload);
        assert!(matches!(
            t.input(b, &cd).0,
            ClientAction::RelayToPeer { .. }
        ));
    }
    let b_relay = *t.bound.last().unwrap();
    assert!(t.peer_sends(b_relay, addr("8.8.8.8:2"), b"hello").is_some());
    t.advance(Duration::from_secs(7));
    let all = t.server.allocations(None, t.now.mono);
    assert_eq!(all.len(), 2);
    assert!(
        all.iter()
            .all(|v| v.username == USER && v.age == Duration::from_secs(7))
    );
    assert!(t.server.allocations(Some("nobody"), t.now.mono).is_empty());
    let traffic: Vec<_> = all.iter().map(|v| v.traffic).collect();
    let moved = Traffic {
        packets: 2,
        bytes: 3,
    };
    let back = Traffic {
        packets: 1,
        bytes: 5,
    };
    assert!(traffic.contains(&[moved, back]), "{traffic:?}");
    assert!(traffic.contains(&[Traffic::default(); 2]), "{traffic:?}");
    // ChannelBind also installs a permission (RFC 8656 §12).
    assert_eq!(
        t.server.gauges(),
        Gauges {
            permissions: 3,
            channels: 1
        }
    );
    assert_eq!(t.server.kick("nobody"), 0);
    assert_eq!(t.server.kick(USER), 2);
    t.pump();
    assert_eq!(t.released.len(), 2, "relays released");
    assert_eq!(t.server.allocation_count(), 0);
    let ended: Vec<_> = std::iter::from_fn(|| t.server.poll_event())
        .filter(|e| {
            matches!(
                e,
                Event::AllocationEnded {
                    reason: EndReason::Kicked,
                    ..
                }
            )
        })
        .collect();
    assert_eq!(ended.len(), 2);
    assert_eq!(t.server.gauges(), Gauges::default());
}
