//! Starting servers, relay port ranges, external tools and child processes.

use std::io::Read;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use tern::proto::auth::Credentials;
use tern::proto::config::Config;
use tern::proto::peer_policy::PeerPolicy;
use tern::settings::SettingsBuilder;

/// Realm, static user and REST secret every test server is configured with.
pub(crate) const REALM: &str = "tern";
pub(crate) const USER: &str = "user";
pub(crate) const PASS: &str = "pass";
pub(crate) const REST_SECRET: &str = "secret";

/// How long one request may take before a test gives up on it.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// The part of the relay port range each test gets.
const PORTS_PER_TEST: u16 = 100;
const RELAY_PORT_BASE: u16 = 50_000;
const RELAY_PORT_SLOTS: u16 = 100; // 50000..=59999

/// Hands out disjoint relay port ranges so parallel tests do not collide.
pub(crate) fn relay_ports() -> RangeInclusive<u16> {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let slot = NEXT.fetch_add(1, Ordering::Relaxed) % RELAY_PORT_SLOTS;
    let lo = RELAY_PORT_BASE + slot * PORTS_PER_TEST;
    lo..=lo + PORTS_PER_TEST - 1
}

/// Which server implementation the tests run against.
pub(crate) fn is_coturn() -> bool {
    std::env::var("TERN_IT_SERVER").is_ok_and(|v| v == "coturn")
}

/// Settings for a test server (finished by `SettingsBuilder::build`, as
/// `config::resolve` finishes them): listeners on 127.0.0.1:0, relay on 127.0.0.1
/// with a fresh port range, the static user and REST secret above, and
/// loopback peers explicitly allowed (the default policy denies them).
pub(crate) fn settings() -> SettingsBuilder {
    let mut s = settings_default_policy();
    s.proto.peer_policy = PeerPolicy::new(vec!["127.0.0.0/8".parse().unwrap()], vec![]);
    s
}

/// Like [`settings`] but with the default peer policy (loopback denied
/// except the server's own relay address).
pub(crate) fn settings_default_policy() -> SettingsBuilder {
    let mut creds = Credentials::new([7u8; 32]);
    creds.add_user_password(USER, REALM, PASS);
    creds.add_rest_secret(REST_SECRET);
    let proto = Config::new(REALM, creds);
    SettingsBuilder {
        udp_listen: vec!["127.0.0.1:0".parse().unwrap()],
        tcp_listen: vec!["127.0.0.1:0".parse().unwrap()],
        relay_ip: "127.0.0.1".parse().unwrap(),
        advertised_ip: None,
        relay_ip6: None,
        advertised_ip6: None,
        relay_ports: relay_ports(),
        workers: 2,
        coalesce: Duration::ZERO,
        tcp: Default::default(),
        tls: None,
        proxy_protocol: Default::default(),
        proto,
    }
}

/// A running server (tern in process, or coturn in `TERN_IT_SERVER=coturn`
/// mode); stopped on drop, also when the test panics.
pub(crate) struct TestServer {
    pub(crate) udp: SocketAddr,
    pub(crate) tcp: SocketAddr,
    pub(crate) relay_ports: RangeInclusive<u16>,
    inner: Inner,
}

enum Inner {
    Tern(Option<tern::io::Handle>),
    Coturn(#[allow(dead_code)] ChildGuard), // held only to be killed on drop
}

impl TestServer {
    /// Starts a server with [`settings`].
    pub(crate) fn start() -> Self {
        Self::with(settings())
    }

    /// Starts a server for the TURN REST credential tests. Same as [`start`]
    /// for tern; coturn cannot mix static users with `use-auth-secret`, so it
    /// gets a REST-only configuration.
    ///
    /// [`start`]: Self::start
    pub(crate) fn start_rest() -> Self {
        if is_coturn() {
            return start_coturn(&settings(), true);
        }
        Self::start()
    }

    /// Starts a server with the given settings. `start` returns once the
    /// server listens, which is the readiness signal.
    pub(crate) fn with(settings: SettingsBuilder) -> Self {
        if is_coturn() {
            return start_coturn(&settings, false);
        }
        let settings = settings.build();
        let relay_ports = settings.relay_ports.clone();
        // A thread of its own: `start` may build and block on its own runtime,
        // which tokio forbids from inside a `#[tokio::test]`.
        let handle = thread::spawn(move || tern::io::start(settings))
            .join()
            .expect("tern::io::start panicked")
            .expect("tern::io::start failed");
        Self {
            udp: handle.udp_addrs()[0],
            tcp: handle.tcp_addrs()[0],
            relay_ports,
            inner: Inner::Tern(Some(handle)),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Inner::Tern(handle) = &mut self.inner {
            if let Some(handle) = handle.take() {
                // Off the (possibly async) test thread, like `start`.
                let joined = thread::spawn(move || handle.shutdown()).join();
                if joined.is_err() && !thread::panicking() {
                    panic!("Handle::shutdown panicked");
                }
            }
        }
    }
}

/// Starts coturn's `turnserver` with the configuration of `settings`
/// (static user, realm, relay ports; loopback peers allowed).
pub(crate) fn start_coturn(settings: &SettingsBuilder, rest: bool) -> TestServer {
    start_coturn_with(settings, rest, &[])
}

/// [`start_coturn`] with `extra` arguments (e.g. a second `--listening-ip`).
pub(crate) fn start_coturn_with(
    settings: &SettingsBuilder,
    rest: bool,
    extra: &[&str],
) -> TestServer {
    let Some(turnserver) = require_tool("turnserver") else {
        panic!("TERN_IT_SERVER=coturn but turnserver is not installed");
    };
    let port = free_port();
    let ports = settings.relay_ports.clone();
    let mut cmd = Command::new(turnserver);
    cmd.args([
        "-n",
        "--listening-ip=127.0.0.1",
        "--relay-ip=127.0.0.1",
        "--realm",
        REALM,
    ])
    .args(["--listening-port", &port.to_string()])
    .args([
        "--min-port",
        &ports.start().to_string(),
        "--max-port",
        &ports.end().to_string(),
    ])
    .args([
        "--allow-loopback-peers",
        "--no-tls",
        "--no-dtls",
        "--no-cli",
        "--log-file=stdout",
    ])
    .args(extra)
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    if rest {
        cmd.args(["--use-auth-secret", "--static-auth-secret", REST_SECRET]);
    } else {
        cmd.args(["--user", &format!("{USER}:{PASS}"), "--lt-cred-mech"]);
    }
    let guard = ChildGuard::spawn(&mut cmd, "turnserver");
    let udp: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + Duration::from_secs(10);
    // Readiness: the server answers a Binding request on UDP and accepts TCP.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    loop {
        assert!(
            Instant::now() < deadline,
            "turnserver did not become ready on {udp}"
        );
        let req = binding_request([9; 12]);
        sock.send_to(&req, udp).unwrap();
        let mut buf = [0u8; 512];
        if sock.recv_from(&mut buf).is_ok() && TcpStream::connect(udp).is_ok() {
            break;
        }
    }
    TestServer {
        udp,
        tcp: udp,
        relay_ports: ports,
        inner: Inner::Coturn(guard),
    }
}

/// A port free on 127.0.0.1 for both UDP and TCP right now (for coturn,
/// which cannot report the port it bound).
fn free_port() -> u16 {
    loop {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = u.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A 20-byte STUN Binding request with the given transaction id.
pub(crate) fn binding_request(tid: [u8; 12]) -> [u8; 20] {
    let mut m = [0u8; 20];
    m[0..2].copy_from_slice(&0x0001u16.to_be_bytes()); // Binding request
    m[2..4].copy_from_slice(&0u16.to_be_bytes()); // no attributes
    m[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    m[8..20].copy_from_slice(&tid);
    m
}

pub(crate) const MAGIC_COOKIE: u32 = 0x2112_A442;

/// A transaction id that differs between calls and processes.
pub(crate) fn random_tid() -> [u8; 12] {
    use std::hash::{BuildHasher, Hasher};
    let mut tid = [0u8; 12];
    for chunk in tid.chunks_mut(4) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(Instant::now().elapsed().as_nanos());
        chunk.copy_from_slice(&h.finish().to_be_bytes()[..4]);
    }
    tid
}

/// Finds an external tool on `PATH`. Missing: a failure when
/// `TERN_REQUIRE_INTEROP=1`, otherwise a loud skip (returns `None`).
pub(crate) fn require_tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if std::env::var("TERN_REQUIRE_INTEROP").is_ok_and(|v| v == "1") {
            panic!(
                "{name} not found on PATH and TERN_REQUIRE_INTEROP=1: \
                 install coturn (apt-get install coturn)"
            );
        }
        eprintln!(
            "\n***** SKIPPED: {name} not found on PATH \
             (install coturn: apt-get install coturn) *****\n"
        );
    }
    found
}

/// A child process that is killed when dropped (test failure included).
pub(crate) struct ChildGuard {
    child: Child,
}

impl ChildGuard {
    pub(crate) fn spawn(cmd: &mut Command, what: &str) -> Self {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        Self { child }
    }

    pub(crate) fn id(&self) -> u32 {
        self.child.id()
    }

    /// The child's stdout (spawned with `Stdio::piped()`).
    pub(crate) fn take_stdout(&mut self) -> std::process::ChildStdout {
        // invariant: callers spawn with a piped stdout and take it once.
        self.child.stdout.take().expect("stdout piped")
    }

    /// The child's stderr (spawned with `Stdio::piped()`).
    pub(crate) fn take_stderr(&mut self) -> std::process::ChildStderr {
        // invariant: callers spawn with a piped stderr and take it once.
        self.child.stderr.take().expect("stderr piped")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a tool run produced.
pub(crate) struct ToolOutput {
    /// `None` when the tool was killed at the timeout.
    pub(crate) status: Option<ExitStatus>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) command: String,
}

impl ToolOutput {
    pub(crate) fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

impl std::fmt::Display for ToolOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = match self.status {
            Some(s) => s.to_string(),
            None => "killed at timeout".to_owned(),
        };
        write!(
            f,
            "$ {}\n[{status}]\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command, self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` to completion, killing it after `timeout`.
pub(crate) fn run_tool(cmd: &mut Command, timeout: Duration) -> ToolOutput {
    let command = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut guard = ChildGuard::spawn(cmd, &command);
    let mut out = guard.child.stdout.take().unwrap();
    let mut err = guard.child.stderr.take().unwrap();
    let out = thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let err = thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = guard.child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    drop(guard); // kills it if still running, so the pipes close
    ToolOutput {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        command,
    }
}

/// A UDP echo peer on 127.0.0.1, listening on a port pair P and P+1 (uclient
/// sends RTCP to the peer port + 1), in threads; stops on drop.
pub(crate) struct EchoPeer {
    pub(crate) addr: SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<thread::JoinHandle<u64>>,
}

impl EchoPeer {
    pub(crate) fn start() -> Self {
        Self::start_on("127.0.0.1".parse().unwrap())
    }

    /// An echo peer (RTP port and the next one for RTCP) on `ip`.
    pub(crate) fn start_on(ip: std::net::IpAddr) -> Self {
        let (rtp, rtcp) = loop {
            let a = UdpSocket::bind((ip, 0)).unwrap();
            let port = a.local_addr().unwrap().port();
            if port == u16::MAX {
                continue;
            }
            if let Ok(b) = UdpSocket::bind((ip, port + 1)) {
                break (a, b);
            }
        };
        let addr = rtp.local_addr().unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = [rtp, rtcp]
            .into_iter()
            .map(|sock| {
                sock.set_read_timeout(Some(Duration::from_millis(50)))
                    .unwrap();
                let stop = stop.clone();
                thread::spawn(move || {
                    let mut buf = vec![0u8; 65_536];
                    let mut echoed = 0;
                    while !stop.load(Ordering::Relaxed) {
                        if let Ok((n, from)) = sock.recv_from(&mut buf) {
                            let _ = sock.send_to(&buf[..n], from);
                            echoed += 1;
                        }
                    }
                    echoed
                })
            })
            .collect();
        Self {
            addr,
            stop,
            threads,
        }
    }

    /// Stops the peer and returns how many datagrams it echoed.
    pub(crate) fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.threads.drain(..).map(|t| t.join().unwrap()).sum()
    }
}

impl Drop for EchoPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
