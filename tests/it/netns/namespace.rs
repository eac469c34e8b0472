//! Network namespaces, sockets inside them and the tern process: the parts
//! shared by the namespace tests ([`super::nat`], [`super::security`]).
//!
//! Each test has its own prefix: every namespace it creates is named
//! `{prefix}{PID}` or `{prefix}{PID}-{role}`.

use std::fs::File;
use std::io::Read;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::client::binding;

/// Whether a root-only test can run here: skips loudly outside CI, fails
/// with `CI=true` (in CI anything missing is a failure).
pub(crate) fn may_run(test: &str, needs: &str, command: &str) -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        return true;
    }
    assert!(
        !ci,
        "CI=true but not running as root: {test} needs root for {needs}"
    );
    eprintln!(
        "\n*** SKIPPED {test}: needs root ({needs}). ***\n\
         *** Run it with: {command} ***\n"
    );
    false
}

/// A network namespace with `lo` up; dropping it deletes the namespace
/// (and every interface in it).
pub(crate) struct Netns {
    pub(crate) name: String,
}

impl Netns {
    pub(crate) fn create(name: &str) -> Self {
        run("ip", &["netns", "add", name]);
        // Owned from here on, so a failure below still deletes it.
        let ns = Self {
            name: name.to_owned(),
        };
        run("ip", &["-n", name, "link", "set", "lo", "up"]);
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// A UDP socket in namespace `ns` bound to `addr`, with a 300 ms read timeout.
pub(crate) fn udp_in(ns: &str, addr: SocketAddr) -> UdpSocket {
    let sock = in_netns(ns, move || UdpSocket::bind(addr))
        .unwrap_or_else(|e| panic!("bind UDP {addr} in {ns}: {e}"));
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("set timeout");
    sock
}

/// A TCP connection from namespace `ns` to `to`.
pub(crate) fn tcp_in(ns: &str, to: SocketAddr) -> TcpStream {
    let stream = in_netns(ns, move || {
        TcpStream::connect_timeout(&to, Duration::from_secs(5))
    })
    .unwrap_or_else(|e| panic!("TCP connect to {to} from {ns}: {e}"));
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .expect("set timeout");
    stream
}

/// Deletes namespaces left by earlier runs whose process is gone (SIGKILL
/// skips Drop).
pub(crate) fn remove_stale_namespaces(prefix: &str) {
    let list = output("ip", &["netns", "list"]);
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        if !pid.is_empty()
            && pid.bytes().all(|b| b.is_ascii_digit())
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// Runs `f` on a thread that has entered network namespace `ns`. Sockets
/// stay in the namespace they were created in, so what `f` returns can be
/// used from any thread.
pub(crate) fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{ns}");
    thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        // SAFETY: a valid namespace fd; only this thread changes namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("thread in namespace panicked")
}

/// Interface `d0` in `ns`, up, with `addrs` ("IP/PREFIX"): a dummy
/// interface, or a veth whose peer stays in the namespace when there is no
/// dummy driver.
pub(crate) fn add_d0(ns: &str, addrs: &[&str]) {
    let dummy = Command::new("ip")
        .args(["-n", ns, "link", "add", "d0", "type", "dummy"])
        .output()
        .expect("run ip");
    if !dummy.status.success() {
        eprintln!(
            "{ns}: no dummy interface ({}), using a veth pair inside the namespace",
            String::from_utf8_lossy(&dummy.stderr).trim()
        );
        run(
            "ip",
            &[
                "-n", ns, "link", "add", "d0", "type", "veth", "peer", "name", "d0peer",
            ],
        );
        run("ip", &["-n", ns, "link", "set", "d0peer", "up"]);
    }
    run("ip", &["-n", ns, "link", "set", "d0", "up"]);
    for addr in addrs {
        run("ip", &["-n", ns, "addr", "add", addr, "dev", "d0"]);
    }
}

/// Runs a command, panicking with its stderr if it fails.
pub(crate) fn run(cmd: &str, args: &[&str]) {
    output(cmd, args);
}

/// Runs a command and returns its stdout, panicking with its stderr if it fails.
pub(crate) fn output(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{cmd}` ({e}): install iproute2 and nftables"));
    assert!(
        out.status.success(),
        "`{cmd} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// ---------------------------------------------------------------------------
// The server.

/// The tern binary running in a namespace; killed on drop, its log printed
/// if the test is failing.
pub(crate) struct Tern {
    child: Child,
    log: tempfile::NamedTempFile,
}

impl Tern {
    /// Starts `tern ARGS` in namespace `ns` and returns once each of
    /// `listeners` answers a STUN Binding from inside the namespace.
    pub(crate) fn start_in(ns: &str, args: &[&str], listeners: &[SocketAddr]) -> Self {
        // Two terns may share a namespace: no admin listener on 9641.
        Self::start_in_with_admin(ns, args, listeners, "")
    }

    /// [`Tern::start_in`] with the admin listener at `admin` ("" = off).
    pub(crate) fn start_in_with_admin(
        ns: &str,
        args: &[&str],
        listeners: &[SocketAddr],
        admin: &str,
    ) -> Self {
        let log = tempfile::NamedTempFile::new().expect("temp file");
        let mut cmd = Command::new("ip");
        // SAFETY: prctl is async-signal-safe. If the test process is killed
        // outright (no Drop), tern dies with it instead of keeping the
        // deleted namespace alive. The signal survives `ip netns exec`'s exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_tern")])
            .args(args)
            .args(["--admin-listen", admin])
            .stdout(log.reopen().expect("log file"))
            .stderr(log.reopen().expect("log file"))
            .spawn()
            .expect("start tern");
        let mut tern = Self { child, log };
        tern.wait_ready(ns, listeners);
        tern
    }

    /// Ready when every listener answers a Binding from namespace `ns`.
    fn wait_ready(&mut self, ns: &str, listeners: &[SocketAddr]) {
        let sock = udp_in(ns, SocketAddr::from(([0, 0, 0, 0], 0)));
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("set timeout");
        let deadline = Instant::now() + Duration::from_secs(20);
        for &addr in listeners {
            while binding(&sock, addr, 1).is_none() {
                if let Some(status) = self.child.try_wait().expect("poll tern") {
                    panic!("tern exited during start-up: {status}");
                }
                assert!(
                    Instant::now() < deadline,
                    "tern did not answer on {addr} in 20 s"
                );
            }
        }
    }

    fn log_text(&self) -> String {
        let mut log = String::new();
        let _ = self
            .log
            .reopen()
            .and_then(|mut f| f.read_to_string(&mut log));
        log
    }
}

impl Drop for Tern {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- tern log (last lines) ---");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}
