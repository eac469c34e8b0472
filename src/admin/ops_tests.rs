use std::os::unix::net::UnixDatagram;
use std::sync::atomic::AtomicUsize;

use super::*;

fn real_clock() -> Now {
    Now {
        mono: Instant::now(),
        unix_secs: 1_700_000_000,
    }
}

#[derive(Default)]
struct FakeControl {
    drains: AtomicUsize,
    fail: AtomicBool,
}

impl Control for FakeControl {
    fn allocations(&self, _user: Option<&str>) -> Vec<AllocationInfo> {
        Vec::new()
    }
    fn kick(&self, _user: &str) -> usize {
        0
    }
    fn set_draining(&self, _draining: bool) {
        self.drains.fetch_add(1, Relaxed);
    }
    fn reload(&self) -> Result<String, String> {
        if self.fail.load(Relaxed) {
            Err("tern.toml: peers.allow: bad CIDR".to_owned())
        } else {
            Ok("users: +1 -0".to_owned())
        }
    }
}

struct Setup {
    ops: Ops<FakeControl>,
    systemd: UnixDatagram,
    t0: Instant,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify");
    let systemd = UnixDatagram::bind(&path).unwrap();
    systemd.set_nonblocking(true).unwrap();
    let notifier = Notifier::new(path.to_str(), Some("2000000"), None, 1).unwrap();
    let t0 = Instant::now();
    let metrics = Arc::new(Metrics::new(2));
    let live = Liveness::new(t0, Duration::from_secs(5));
    let ops = Ops::new(metrics, live, real_clock, notifier, FakeControl::default());
    Setup {
        ops,
        systemd,
        t0,
        _dir: dir,
    }
}

fn messages(sock: &UnixDatagram) -> Vec<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    while let Ok(n) = sock.recv(&mut buf) {
        out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    out
}

#[test]
fn readiness_follows_listening_and_drain() {
    let s = setup();
    assert_eq!(s.ops.readiness().unwrap_err().reason, "not listening yet");
    s.ops.set_listening(Endpoints {
        listeners: vec!["udp 127.0.0.1:3478".into()],
        relay_addresses: vec!["127.0.0.1".into()],
        warnings: vec!["relay.ports is small".into()],
    });
    assert_eq!(s.ops.status().warnings, ["relay.ports is small"]);
    assert!(s.ops.readiness().is_ok());
    assert_eq!(
        messages(&s.systemd),
        ["READY=1\nSTATUS=listening on udp 127.0.0.1:3478"]
    );

    assert!(s.ops.set_draining(true));
    assert!(s.ops.set_draining(true), "a second drain is idempotent");
    assert_eq!(s.ops.readiness().unwrap_err().reason, "draining");
    assert_eq!(s.ops.metrics.global.draining.load(Relaxed), 1);
    assert_eq!(s.ops.control.drains.load(Relaxed), 1);
    let m = messages(&s.systemd);
    assert_eq!(m.len(), 1);
    assert!(
        m[0].starts_with("STOPPING=1\nSTATUS=0 allocations"),
        "{m:?}"
    );
    assert!(m[0].ends_with(", draining"), "{m:?}");

    assert!(!s.ops.set_draining(false));
    assert!(s.ops.readiness().is_ok());
    assert_eq!(s.ops.metrics.global.draining.load(Relaxed), 0);
    let st = s.ops.status();
    assert_eq!((st.draining, st.listeners.len()), (false, 1));
}

#[test]
fn reloads_are_counted_and_reported() {
    let s = setup();
    let ok = s.ops.reload().unwrap();
    assert!(ok.ok && ok.message == "users: +1 -0");
    s.ops.control.fail.store(true, Relaxed);
    let e = s.ops.reload().unwrap_err();
    assert!(e.contains("peers.allow"));
    let last = s.ops.status().last_reload.unwrap();
    assert_eq!(
        last.at_unix, 1_700_000_000,
        "wall time comes from the clock"
    );
    assert!(!last.ok && last.message.contains("peers.allow"));
    let mut text = String::new();
    s.ops.metrics(&mut text);
    assert!(text.contains("tern_config_reloads_total{result=\"success\"} 1\n"));
    assert!(text.contains("tern_config_reloads_total{result=\"error\"} 1\n"));
    let m = messages(&s.systemd);
    assert_eq!(m.len(), 4, "{m:?}");
    assert!(m[0].starts_with("RELOADING=1\nMONOTONIC_USEC="));
    assert!(m[1].starts_with("READY=1\n"));
}

#[test]
fn watchdog_is_fed_only_while_workers_progress() {
    let s = setup();
    let live = Liveness::new(s.t0, Duration::from_secs(5));
    let t1 = s.t0 + Duration::from_secs(1);
    for w in &s.ops.metrics.workers {
        w.beat(live.stamp(t1));
    }
    s.ops.metrics.workers[1].set_allocations(
        Transport::Tcp,
        super::super::metrics::Family::Ipv6,
        2,
    );
    assert!(s.ops.watchdog_tick(t1));
    assert_eq!(
        messages(&s.systemd),
        ["WATCHDOG=1", "STATUS=2 allocations (udp 0, tcp 2, tls 0)"]
    );
    // Worker 0 wedges: no more WATCHDOG=1, so systemd will restart tern.
    let t2 = t1 + Duration::from_secs(30);
    s.ops.metrics.workers[1].beat(live.stamp(t2));
    assert!(!s.ops.watchdog_tick(t2));
    assert_eq!(
        messages(&s.systemd),
        ["STATUS=2 allocations (udp 0, tcp 2, tls 0)"]
    );
}

#[test]
fn watchdog_loop_stops_when_told() {
    let s = setup();
    let (tx, rx) = std::sync::mpsc::channel();
    tx.send(()).unwrap();
    s.ops.watchdog_loop(&rx); // returns at once
    drop(tx);
    let (_tx2, rx2) = std::sync::mpsc::channel::<()>();
    drop(_tx2);
    s.ops.watchdog_loop(&rx2);
}

/// End to end over HTTP: a worker thread beating keeps /livez at 200; once
/// it wedges, /livez turns 503 naming it (polled, bounded by a deadline).
#[test]
fn livez_over_http_fails_when_a_worker_wedges() {
    let t0 = Instant::now();
    let metrics = Arc::new(Metrics::new(1));
    let live = Liveness::new(t0, Duration::from_millis(300));
    let ops = Arc::new(Ops::new(
        Arc::clone(&metrics),
        live,
        real_clock,
        Notifier::new(None, None, None, 1).unwrap(),
        FakeControl::default(),
    ));
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let worker = {
        let block = Arc::clone(&metrics.workers[0]);
        std::thread::spawn(move || {
            // A worker loop: beat, then wait for work (here: the stop signal).
            loop {
                block.beat(live.stamp(Instant::now()));
                match stop_rx.recv_timeout(Duration::from_millis(10)) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
            }
        })
    };
    let router = Arc::new(super::super::AdminRouter::new(Arc::clone(&ops), None));
    let server = super::super::server::spawn(
        "127.0.0.1:0".parse().unwrap(),
        router,
        super::super::Limits::default(),
        "t-livez",
    )
    .unwrap();
    let get = || {
        super::super::client::request(
            server.local_addr(),
            "GET",
            "/livez",
            None,
            Duration::from_secs(10),
        )
        .unwrap()
    };
    // Beats are stamped before the first check: alive.
    let deadline = Instant::now() + Duration::from_secs(10);
    while get().status != 200 {
        assert!(Instant::now() < deadline, "/livez never turned 200");
    }
    stop_tx.send(()).unwrap();
    worker.join().unwrap();
    let r = loop {
        let r = get();
        if r.status != 200 {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "/livez stayed 200 with a wedged worker"
        );
        std::thread::yield_now();
    };
    assert_eq!(r.status, 503);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["workers"], serde_json::json!([0]), "{}", r.body);
}
