//! What the benches share: starting tern and coturn pinned to core 0,
//! waiting for them to answer, and small statistics.

#![allow(
    clippy::disallowed_methods,
    reason = "benchmarks measure wall time and wait for servers; the clock wall is for the server code"
)]
#![allow(dead_code, reason = "each bench uses its own subset")]

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) const USER: &str = "bench";
pub(crate) const PASS: &str = "bench-pw";

pub(crate) struct Server {
    pub(crate) name: &'static str,
    pub(crate) addr: SocketAddr,
    pub(crate) child: Child,
}

impl Server {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub(crate) fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(tool))
            .find(|f| f.is_file())
    })
}

/// `taskset -c CPU` in front of the command when the machine has ≥ 2 cores.
pub(crate) fn pinned(cpu: usize, program: &std::path::Path) -> Command {
    if cores() >= 2 && which("taskset").is_some() {
        let mut c = Command::new("taskset");
        c.arg("-c").arg(cpu.to_string()).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Online CPUs of the machine (not `available_parallelism`, which shrinks
/// once this process pins itself).
pub(crate) fn cores() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(1).max(1)
}

/// Pins the calling thread (the load generator's main thread, so the
/// threads it starts later) to `cpu`.
pub(crate) fn pin_self(cpu: usize) {
    if cores() < 2 {
        return;
    }
    // SAFETY: cpu_set_t is plain data; CPU_SET writes inside it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &raw const set);
    }
}

/// Waits until `addr` answers a STUN Binding request (the readiness signal).
pub(crate) fn wait_ready(addr: SocketAddr, child: &mut Child, name: &str) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut req = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
    req.extend_from_slice(&[7; 12]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 512];
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{name} exited at start: {status}");
        }
        let _ = sock.send_to(&req, addr);
        if sock.recv_from(&mut buf).is_ok() {
            return;
        }
    }
    panic!("{name} did not answer on {addr}");
}

/// The release `tern` with `workers` workers, pinned to core 0 when `pin`
/// (else free to use every core), default coalescing.
pub(crate) fn start_tern(dir: &std::path::Path, workers: usize, pin: bool) -> Server {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_tern"));
    let conf = dir.join("tern-bench.toml");
    std::fs::write(
        &conf,
        "[peers]\nallow = [\"127.0.0.0/8\"]\n[limits]\nmax_allocations_per_user = 100000\n",
    )
    .unwrap();
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut cmd = if pin {
        pinned(0, &bin)
    } else {
        Command::new(&bin)
    };
    let mut child = cmd
        .arg("--config")
        .arg(&conf)
        .args([
            "--listen",
            &addr.to_string(),
            "--relay-address",
            "127.0.0.1",
        ])
        .args(["--relay-ports", "20000-34999", "--realm", "tern"])
        .args(["--user", &format!("{USER}:{PASS}")])
        .args(["--workers", &workers.to_string()])
        .args(["--log-level", "warn"])
        // Metrics are always kept; the admin listener on an ephemeral port
        // so a tern already on 9641 does not stop the bench.
        .args(["--admin-listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn tern");
    wait_ready(addr, &mut child, "tern");
    Server {
        name: if workers == 1 {
            "tern"
        } else {
            "tern, 2 workers"
        },
        addr,
        child,
    }
}

pub(crate) fn start_coturn(turnserver: &std::path::Path) -> Server {
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut child = pinned(0, turnserver)
        .args(["-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1"])
        .arg(format!("--listening-port={port}"))
        .args(["--min-port=35000", "--max-port=49999"])
        .arg(format!("--user={USER}:{PASS}"))
        .args(["--realm=tern", "--lt-cred-mech", "--allow-loopback-peers"])
        .args(["--no-tls", "--no-dtls", "--no-cli", "--no-multicast-peers"])
        .args(["--relay-threads=1", "--log-file=stdout", "--no-stdout-log"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn turnserver");
    wait_ready(addr, &mut child, "coturn");
    Server {
        name: "coturn",
        addr,
        child,
    }
}

/// The common start of a bench: this process on core 1, a scratch
/// directory named `tag`-PID, and the servers to compare, each pinned to
/// core 0: tern (one worker), then coturn when `turnserver` is installed.
pub(crate) fn start_servers(tag: &str) -> (PathBuf, Vec<Server>) {
    pin_self(1);
    let dir = std::env::temp_dir().join(format!("{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut servers = vec![start_tern(&dir, 1, true)];
    match which("turnserver") {
        Some(ts) => servers.push(start_coturn(&ts)),
        None => println!("turnserver (coturn) not found: tern only"),
    }
    (dir, servers)
}

/// median, min, max
pub(crate) fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    (v[v.len() / 2], v[0], v[v.len() - 1])
}
