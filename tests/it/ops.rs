//! Day-2 operations through the `tern` binary: the admin listener of a
//! running server with relayed traffic (metrics linted by promtool,
//! health, status, allocations, kick), systemd notify, graceful drain and
//! live reload. Every tern here gets its own TURN port, admin port and
//! relay ports, so these run in parallel with everything else.

use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tern::admin::client::{HttpResponse, request};
use tern::tools::client::{Client, Delivery};

use crate::harness::{EchoPeer, IO_TIMEOUT, relay_ports, require_tool};

pub(crate) const USER: &str = "alice";
pub(crate) const PASS: &str = "wonderland";

/// A port free on 127.0.0.1 right now: for UDP and TCP both (`udp`, the
/// TURN port, which `Policy::tcp` may also listen on), or for TCP.
fn free_port(udp: bool) -> u16 {
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !udp || UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// What the tests vary in the config: users, REST secrets, the peers
/// allowed (loopback for the echo peer) and denied, the drain timeout.
#[derive(Clone)]
pub(crate) struct Policy {
    pub(crate) users: Vec<(&'static str, &'static str)>,
    pub(crate) secrets: Vec<String>,
    pub(crate) allow: Vec<&'static str>,
    pub(crate) deny: Vec<String>,
    pub(crate) drain_timeout_secs: u64,
    /// Also listen on TCP (`[server] tcp`), on the same port.
    pub(crate) tcp: bool,
    /// Tables appended to the file verbatim (e.g. `[limits]`).
    pub(crate) tables: &'static str,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            users: vec![(USER, PASS)],
            secrets: vec![],
            allow: vec!["127.0.0.0/8"],
            deny: vec![],
            drain_timeout_secs: 60,
            tcp: false,
            tables: "",
        }
    }
}

/// A `tern serve` process with a config file, killed on drop.
pub(crate) struct Tern {
    child: Child,
    pub(crate) server: SocketAddr,
    pub(crate) admin: SocketAddr,
    pub(crate) config: PathBuf,
    ports: std::ops::RangeInclusive<u16>,
    _dir: tempfile::TempDir,
}

impl Tern {
    pub(crate) fn spawn(policy: &Policy, notify: Option<&Path>) -> Self {
        let server = SocketAddr::from(([127, 0, 0, 1], free_port(true)));
        let admin = SocketAddr::from(([127, 0, 0, 1], free_port(false)));
        Self::spawn_at(policy, notify, server, admin, "")
    }

    /// [`Tern::spawn`] on a TURN (UDP) address and an admin address chosen
    /// by the caller, with `extra` appended to the config file: for tests
    /// whose configs name each other's ports.
    pub(crate) fn spawn_at(
        policy: &Policy,
        notify: Option<&Path>,
        server: SocketAddr,
        admin: SocketAddr,
        extra: &str,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Self {
            child: Command::new("true").spawn().unwrap(),
            server,
            admin,
            config: dir.path().join("tern.toml"),
            ports: relay_ports(),
            _dir: dir,
        };
        let _ = t.child.wait();
        t.write_config(policy, extra);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tern"));
        cmd.arg("--config")
            .arg(&t.config)
            .env_remove("TERN_CONFIG")
            .env_remove("TERN_REST_SECRET")
            .env_remove("TERN_ADMIN_LISTEN")
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET")
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("TERN_IT_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            });
        if let Some(p) = notify {
            cmd.env("NOTIFY_SOCKET", p);
        }
        t.child = cmd.spawn().expect("start tern");
        t
    }

    /// Writes the config file; `extra` is appended verbatim (e.g. a bad key).
    pub(crate) fn write_config(&self, p: &Policy, extra: &str) {
        let users: Vec<String> = p
            .users
            .iter()
            .map(|(u, pw)| format!("{{ username = \"{u}\", password = \"{pw}\" }}"))
            .collect();
        let secrets: Vec<String> = p.secrets.iter().map(|s| format!("\"{s}\"")).collect();
        let allow: Vec<String> = p.allow.iter().map(|s| format!("\"{s}\"")).collect();
        let deny: Vec<String> = p.deny.iter().map(|s| format!("\"{s}\"")).collect();
        let text = format!(
            "[server]\nlisten = [\"{server}\"]\ntcp = {tcp}\nworkers = 1\ndrain_timeout_secs = {drain}\n\
             [relay]\naddress = \"127.0.0.1\"\nports = \"{lo}-{hi}\"\n\
             [auth]\nusers = [{users}]\nrest_secrets = [{secrets}]\n\
             [peers]\nallow = [{allow}]\ndeny = [{deny}]\n\
             [admin]\nlisten = \"{admin}\"\n[log]\nlevel = \"info\"\n{tables}{extra}",
            server = self.server,
            lo = self.ports.start(),
            hi = self.ports.end(),
            users = users.join(", "),
            secrets = secrets.join(", "),
            allow = allow.join(", "),
            deny = deny.join(", "),
            drain = p.drain_timeout_secs,
            tcp = p.tcp,
            tables = p.tables,
            admin = self.admin,
        );
        // Write then rename, so a reload never reads half a file.
        let tmp = self.config.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &self.config).unwrap();
    }

    pub(crate) fn get(&self, path: &str) -> HttpResponse {
        request(self.admin, "GET", path, None, IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    pub(crate) fn call(&self, method: &str, path: &str) -> HttpResponse {
        request(self.admin, method, path, None, IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// Waits until `/readyz` answers 200 (the server's readiness signal).
    pub(crate) fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = request(self.admin, "GET", "/readyz", None, IO_TIMEOUT)
                && r.status == 200
            {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("tern exited before it was ready: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "tern not ready on {}",
                self.admin
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal to the process.
    pub(crate) fn signal(&self, sig: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) with a pid we spawned and still own (not reaped).
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill({pid}, {sig})");
    }

    /// Waits for the process to exit; its status code.
    pub(crate) fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code();
            }
            assert!(
                Instant::now() < deadline,
                "tern did not exit within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn client(&self) -> Client {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        Client::udp(sock, self.server, USER, PASS)
    }

    /// The value of a sample line `name` (with labels, exactly as rendered).
    pub(crate) fn metric(&self, sample: &str) -> Option<f64> {
        let body = self.get("/metrics").body;
        body.lines().find_map(|l| {
            l.strip_prefix(sample)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
    }

    /// Scrapes until `sample` satisfies `ok` (the workers publish once per
    /// loop iteration, just after they relay).
    pub(crate) fn wait_metric(&self, sample: &str, ok: impl Fn(f64) -> bool) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let v = self.metric(sample);
            if let Some(v) = v.filter(|&v| ok(v)) {
                return v;
            }
            assert!(Instant::now() < deadline, "{sample} stayed at {v:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Tern {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Allocates, permits the echo peer and bounces `n` datagrams off it.
pub(crate) fn relay_round_trips(c: &mut Client, peer: SocketAddr, n: usize) {
    for i in 0..n {
        let payload = format!("ping {i}");
        c.send_indication(peer, payload.as_bytes()).unwrap();
        let (how, data) = c
            .recv_data(IO_TIMEOUT)
            .unwrap()
            .unwrap_or_else(|| panic!("{payload} not echoed"));
        assert_eq!(
            (how, data.as_slice()),
            (Delivery::Data(peer), payload.as_bytes())
        );
    }
}

/// `/metrics` of a running tern while an allocation relays: the relay
/// counters move before the allocation ends, the gauges count it, and
/// promtool accepts the exposition. Then the admin API lists and kicks it.
#[test]
fn live_metrics_status_allocations_and_kick() {
    let mut tern = Tern::spawn(&Policy::default(), None);
    tern.wait_ready();
    assert_eq!(tern.get("/livez").status, 200);
    let peer = EchoPeer::start();
    let mut c = tern.client();
    c.allocate().expect("Allocate");
    c.create_permission(peer.addr).expect("CreatePermission");
    relay_round_trips(&mut c, peer.addr, 20);

    let sent = tern.wait_metric(
        "tern_relay_packets_total{direction=\"client_to_peer\"}",
        |v| v >= 20.0,
    );
    assert!(sent >= 20.0);
    tern.wait_metric(
        "tern_relay_bytes_total{direction=\"peer_to_client\"}",
        |v| v >= 20.0 * 6.0,
    );
    assert_eq!(
        tern.metric("tern_allocations{transport=\"udp\",family=\"ipv4\"}"),
        Some(1.0)
    );
    let body = tern.get("/metrics").body;
    assert!(body.contains("\ntern_udp_receive_drops_total "), "{body}");
    assert!(body.contains("tern_requests_total{method=\"allocate\",transport=\"udp\"} 2"));
    if let Some(promtool) = require_tool("promtool") {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("scrape.txt");
        std::fs::write(&file, &body).unwrap();
        let out = Command::new(promtool)
            .args(["check", "metrics"])
            .stdin(std::fs::File::open(&file).unwrap())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let status: serde_json::Value = serde_json::from_str(&tern.get("/status").body).unwrap();
    assert_eq!(status["allocations"]["udp"], 1, "{status}");
    assert_eq!(status["draining"], false);
    let list: serde_json::Value =
        serde_json::from_str(&tern.get("/v1/allocations?user=alice").body).unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["user"], USER);
    assert_eq!(list[0]["relay"][0], c.relay().to_string());
    assert_eq!(list[0]["packets_to_peer"], 20, "{list}");
    assert_eq!(list[0]["packets_to_client"], 20, "{list}");
    assert!(
        list[0]["bytes_to_client"].as_u64() >= Some(20 * 6),
        "{list}"
    );
    let none: serde_json::Value =
        serde_json::from_str(&tern.get("/v1/allocations?user=bob").body).unwrap();
    assert_eq!(none.as_array().map(Vec::len), Some(0));

    let kicked = tern.call("DELETE", "/v1/users/alice/allocations");
    assert_eq!(kicked.status, 200, "{}", kicked.body);
    assert!(kicked.body.contains('1'), "{}", kicked.body);
    tern.wait_metric("tern_allocations{transport=\"udp\",family=\"ipv4\"}", |v| {
        v == 0.0
    });
    // The allocation is gone: a Refresh gets 437 Allocation Mismatch.
    assert_eq!(c.refresh(600).unwrap_err().code(), Some(437));
}

/// systemd notify end to end: READY=1 once listening (the readiness
/// signal this test waits on), STOPPING=1 when SIGTERM starts the drain.
/// The drain itself: readiness 503 at once, `tern_draining` 1, the live
/// allocation still relays and refreshes, and tern exits 0 when it is
/// deleted.
#[test]
fn sigterm_drains_and_exits_when_the_last_allocation_ends() {
    let dir = tempfile::tempdir().unwrap();
    let notify_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut tern = Tern::spawn(&Policy::default(), Some(&notify_path));
    let ready = recv_until(&notify, "READY=1");
    assert!(ready.contains("STATUS=listening on udp"), "{ready}");
    assert_eq!(tern.get("/readyz").status, 200);

    let peer = EchoPeer::start();
    let mut c = tern.client();
    c.allocate().expect("Allocate");
    c.create_permission(peer.addr).expect("CreatePermission");
    relay_round_trips(&mut c, peer.addr, 3);

    tern.signal(libc::SIGTERM);
    let stopping = recv_until(&notify, "STOPPING=1");
    assert!(stopping.contains("draining"), "{stopping}");
    let ready = tern.get("/readyz");
    assert_eq!(ready.status, 503);
    assert!(ready.body.contains("draining"), "{}", ready.body);
    assert_eq!(tern.metric("tern_draining"), Some(1.0));

    // New allocations are refused (403: no alternate servers configured).
    assert_eq!(tern.client().allocate().unwrap_err().code(), Some(403));
    // The live allocation goes on: it relays and refreshes.
    relay_round_trips(&mut c, peer.addr, 3);
    c.refresh(600).expect("Refresh while draining");
    c.create_permission(peer.addr)
        .expect("CreatePermission while draining");

    // Deleting the last allocation ends the drain: exit 0.
    c.refresh(0).expect("Refresh 0");
    assert_eq!(tern.wait_exit(Duration::from_secs(20)), Some(0));
}

/// `tern ctl drain` / `undrain` through the admin API: readiness follows.
#[test]
fn drain_and_undrain_through_the_admin_api() {
    let mut tern = Tern::spawn(&Policy::default(), None);
    tern.wait_ready();
    let mut c = tern.client();
    c.allocate().expect("Allocate");
    assert_eq!(tern.call("POST", "/v1/drain").status, 200);
    assert_eq!(tern.get("/readyz").status, 503);
    assert_eq!(tern.call("POST", "/v1/undrain").status, 200);
    assert_eq!(tern.get("/readyz").status, 200);
    assert_eq!(tern.metric("tern_draining"), Some(0.0));
    // Still running with its allocation after the cancelled drain.
    c.refresh(600).expect("Refresh after undrain");
    // A second SIGTERM stops at once, allocation or not. (Wait for the
    // first to take effect: two pending SIGTERMs merge into one.)
    tern.signal(libc::SIGTERM);
    wait_status(&tern, "/readyz", 503);
    tern.signal(libc::SIGTERM);
    assert_eq!(tern.wait_exit(Duration::from_secs(20)), Some(0));
}

/// Polls `path` until it answers `status`.
fn wait_status(tern: &Tern, path: &str, status: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while tern.get(path).status != status {
        assert!(Instant::now() < deadline, "{path} never answered {status}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `server.drain_timeout_secs = 0`: SIGTERM stops at once although an
/// allocation is alive (the drain deadline is now).
#[test]
fn drain_timeout_zero_stops_at_once() {
    let policy = Policy {
        drain_timeout_secs: 0,
        ..Policy::default()
    };
    let mut tern = Tern::spawn(&policy, None);
    tern.wait_ready();
    let mut c = tern.client();
    c.allocate().expect("Allocate");
    tern.signal(libc::SIGTERM);
    assert_eq!(tern.wait_exit(Duration::from_secs(20)), Some(0));
}

/// Reads notify datagrams until one contains `want`; returns it.
fn recv_until(sock: &UnixDatagram, want: &str) -> String {
    let mut buf = [0u8; 4096];
    loop {
        let n = sock
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no {want} from tern: {e}"));
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        if msg.lines().any(|l| l == want) {
            return msg;
        }
    }
}
