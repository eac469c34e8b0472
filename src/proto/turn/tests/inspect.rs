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
    t.advance(Duration::from_secs(7));
    let all = t.server.allocations(None, t.now.mono);
    assert_eq!(all.len(), 2);
    assert!(
        all.iter()
            .all(|v| v.username == USER && v.age == Duration::from_secs(7))
    );
    assert!(t.server.allocations(Some("nobody"), t.now.mono).is_empty());
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
