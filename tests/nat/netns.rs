//! The namespaces, links, nftables rules and the tern process.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::client::binding;
use crate::{NS_PREFIX, PASS, PORT, PORT2, R1_WAN, R2_WAN, REALM, TERN_IP, USER};

/// The namespaces; dropping it deletes them all (which removes their veths).
pub(crate) struct Topology {
    names: Vec<String>,
    pub(crate) public: String,
    pub(crate) r1: String,
    pub(crate) r2: String,
    pub(crate) a: String,
    pub(crate) b: String,
}

impl Topology {
    pub(crate) fn build() -> Self {
        let pid = std::process::id();
        let ns = |role: &str| format!("{NS_PREFIX}{pid}-{role}");
        let mut net = Self {
            names: Vec::new(),
            public: ns("pub"),
            r1: ns("r1"),
            r2: ns("r2"),
            a: ns("a"),
            b: ns("b"),
        };
        // Registered before creation, so a failure half-way still cleans up.
        for name in [&net.public, &net.r1, &net.r2, &net.a, &net.b] {
            net.names.push(name.clone());
            run("ip", &["netns", "add", name]);
            run("ip", &["-n", name, "link", "set", "lo", "up"]);
        }
        let (p, r1, r2, a, b) = (&net.public, &net.r1, &net.r2, &net.a, &net.b);
        run(
            "ip",
            &["-n", p, "addr", "add", "203.0.113.1/32", "dev", "lo"],
        );
        link(p, "r1", "192.0.2.1/24", r1, "wan", "192.0.2.2/24");
        link(p, "r2", "198.51.100.1/24", r2, "wan", "198.51.100.2/24");
        link(r1, "lan", "10.0.1.1/24", a, "eth0", "10.0.1.2/24");
        link(r2, "lan", "10.0.2.1/24", b, "eth0", "10.0.2.2/24");
        run(
            "ip",
            &["-n", r1, "route", "add", "default", "via", "192.0.2.1"],
        );
        run(
            "ip",
            &["-n", r2, "route", "add", "default", "via", "198.51.100.1"],
        );
        run(
            "ip",
            &["-n", a, "route", "add", "default", "via", "10.0.1.1"],
        );
        run(
            "ip",
            &["-n", b, "route", "add", "default", "via", "10.0.2.1"],
        );
        // The public namespace routes between the routers (the "internet");
        // it has no route to 10.0.0.0/8, so only NATed traffic comes back.
        for router in [p, r1, r2] {
            in_netns(router, || fs::write("/proc/sys/net/ipv4/ip_forward", "1"))
                .expect("enable ip_forward");
        }
        nft(r1, &router_rules(R2_WAN));
        nft(r2, &router_rules(R1_WAN));
        net
    }

    /// A UDP socket in namespace `ns` on an ephemeral port.
    pub(crate) fn udp(&self, ns: &str) -> UdpSocket {
        let sock = in_netns(ns, || UdpSocket::bind("0.0.0.0:0")).expect("bind UDP socket");
        sock.set_read_timeout(Some(Duration::from_millis(300)))
            .expect("set timeout");
        sock
    }

    /// A TCP connection from namespace `ns` to `to`.
    pub(crate) fn tcp(&self, ns: &str, to: SocketAddr) -> TcpStream {
        let stream = in_netns(ns, move || {
            TcpStream::connect_timeout(&to, Duration::from_secs(5))
        })
        .expect("TCP connect to tern");
        stream
            .set_write_timeout(Some(Duration::from_secs(5)))
            .expect("set timeout");
        stream
    }

    /// Drops every UDP packet the router would forward from its LAN.
    pub(crate) fn block_udp(&self, router: &str) {
        nft(
            router,
            "add rule ip filter forward iifname \"lan\" meta l4proto udp drop\n",
        );
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = Command::new("ip")
                .args(["netns", "del", name])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The nftables ruleset of a router: symmetric NAT out of `wan`, and a
/// counter of UDP arriving from the other router (`peer`).
fn router_rules(peer: Ipv4Addr) -> String {
    format!(
        "table ip nat {{
           chain postrouting {{
             type nat hook postrouting priority srcnat; policy accept;
             oifname \"wan\" masquerade random,fully-random
           }}
         }}
         table ip filter {{
           counter punch {{ }}
           chain prerouting {{
             type filter hook prerouting priority -150; policy accept;
             iifname \"wan\" ip saddr {peer} meta l4proto udp counter name punch
           }}
           chain input {{
             type filter hook input priority 0; policy accept;
             iifname \"wan\" ct state new drop
           }}
           chain forward {{
             type filter hook forward priority 0; policy accept;
           }}
         }}\n"
    )
}

/// How many UDP packets from the other router reached `router`.
pub(crate) fn punch_counter(router: &str) -> u64 {
    let out = output(
        "ip",
        &[
            "netns", "exec", router, "nft", "list", "counter", "ip", "filter", "punch",
        ],
    );
    let words: Vec<&str> = out.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[0] == "packets")
        .and_then(|w| w[1].parse().ok())
        .unwrap_or_else(|| panic!("no packet count in: {out}"))
}

/// A veth pair: `n1` in `ns1` with `a1`, `n2` in `ns2` with `a2`, both up.
fn link(ns1: &str, n1: &str, a1: &str, ns2: &str, n2: &str, a2: &str) {
    // Created directly in the namespaces; the host's own namespace never sees it.
    run(
        "ip",
        &[
            "-n", ns1, "link", "add", n1, "type", "veth", "peer", "name", n2, "netns", ns2,
        ],
    );
    for (ns, name, addr) in [(ns1, n1, a1), (ns2, n2, a2)] {
        run("ip", &["-n", ns, "addr", "add", addr, "dev", name]);
        run("ip", &["-n", ns, "link", "set", name, "up"]);
    }
}

/// Deletes namespaces left by earlier runs whose process is gone (SIGKILL
/// skips Drop).
pub(crate) fn remove_stale_namespaces() {
    let list = output("ip", &["netns", "list"]);
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(rest) = name.strip_prefix(NS_PREFIX) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        if !pid.is_empty() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// Runs `f` on a thread that has entered network namespace `ns`. Sockets
/// stay in the namespace they were created in, so what `f` returns can be
/// used from any thread.
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
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

/// Loads an nftables script into namespace `ns`.
fn nft(ns: &str, script: &str) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `ip netns exec … nft` ({e}): install nftables"));
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(script.as_bytes())
        .expect("write nft script");
    let out = child.wait_with_output().expect("wait for nft");
    assert!(
        out.status.success(),
        "nft in {ns} failed: {}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a command, panicking with its stderr if it fails.
fn run(cmd: &str, args: &[&str]) {
    output(cmd, args);
}

fn output(cmd: &str, args: &[&str]) -> String {
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

/// tern running in the public namespace; killed on drop, its log printed
/// if the test is failing.
pub(crate) struct Tern {
    child: Child,
    log: tempfile::NamedTempFile,
}

impl Tern {
    pub(crate) fn start(net: &Topology) -> Self {
        let log = tempfile::NamedTempFile::new().expect("temp file");
        let listen1 = format!("{TERN_IP}:{PORT}");
        let listen2 = format!("{TERN_IP}:{PORT2}");
        let user = format!("{USER}:{PASS}");
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
            .args(["netns", "exec", &net.public, env!("CARGO_BIN_EXE_tern")])
            .args(["--listen", &listen1, "--listen", &listen2])
            .args(["--relay-address", &TERN_IP.to_string()])
            .args(["--relay-ports", "49152-49407", "--workers", "2"])
            .args(["--user", &user, "--realm", REALM, "--log-level", "info"])
            .stdout(log.reopen().expect("log file"))
            .stderr(log.reopen().expect("log file"))
            .spawn()
            .expect("start tern");
        let mut tern = Self { child, log };
        tern.wait_ready(net);
        tern
    }

    pub(crate) fn addr(&self, port: u16) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(TERN_IP, port))
    }

    /// Ready when both listeners answer a Binding from the public namespace.
    fn wait_ready(&mut self, net: &Topology) {
        let sock = net.udp(&net.public);
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("set timeout");
        let deadline = Instant::now() + Duration::from_secs(20);
        for port in [PORT, PORT2] {
            while binding(&sock, self.addr(port), 1).is_none() {
                if let Some(status) = self.child.try_wait().expect("poll tern") {
                    panic!("tern exited during start-up: {status}");
                }
                assert!(
                    Instant::now() < deadline,
                    "tern did not answer on {port} in 20 s"
                );
            }
        }
    }
}

impl Drop for Tern {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            let mut log = String::new();
            let _ = self
                .log
                .reopen()
                .and_then(|mut f| f.read_to_string(&mut log));
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- tern log (last lines) ---");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}
