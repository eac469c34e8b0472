//! Latency histogram and `/proc` readings (server CPU time, RSS).

use std::fs;

/// One-way latency histogram: 1 µs buckets below 10 ms, 100 µs buckets to
/// ~1 s, one overflow bucket; the exact maximum is kept aside.
#[derive(Clone, Debug)]
pub(crate) struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    max_us: u64,
}

const FINE: u64 = 10_000;
const COARSE: u64 = 10_000;

impl Histogram {
    pub(crate) fn new() -> Self {
        Self {
            buckets: vec![0; (FINE + COARSE + 1) as usize],
            count: 0,
            max_us: 0,
        }
    }

    pub(crate) fn record(&mut self, us: u64) {
        let i = if us < FINE {
            us
        } else {
            FINE + ((us - FINE) / 100).min(COARSE)
        };
        self.buckets[i as usize] += 1;
        self.count += 1;
        self.max_us = self.max_us.max(us);
    }

    pub(crate) fn max_us(&self) -> u64 {
        self.max_us
    }

    /// The `q` quantile (0..=1) in µs (lower edge of its bucket); 0 when empty.
    pub(crate) fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let target = ((self.count as f64 * q).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= target {
                let i = i as u64;
                return if i < FINE { i } else { FINE + (i - FINE) * 100 };
            }
        }
        self.max_us
    }
}

/// CPU time of process `pid` in seconds: the scheduler's exact run time
/// of every thread (`/proc/PID/task/*/schedstat`, nanoseconds), or where
/// that is missing utime + stime from `/proc/PID/stat` (10 ms ticks,
/// sampled: a process that runs in short bursts is charged by luck).
pub fn proc_cpu_secs(pid: u32) -> Option<f64> {
    schedstat_secs(pid).or_else(|| stat_secs(pid))
}

fn schedstat_secs(pid: u32) -> Option<f64> {
    let mut ns = 0u64;
    let mut any = false;
    for task in fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(text) = fs::read_to_string(task.ok()?.path().join("schedstat")) else {
            continue; // the thread ended meanwhile
        };
        ns += text.split_whitespace().next()?.parse::<u64>().ok()?;
        any = true;
    }
    any.then_some(ns as f64 / 1e9)
}

fn stat_secs(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 2 (comm) may contain spaces; the fields after ')' are fixed.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14, stime field 15.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as f64 } else { 100.0 };
    Some((utime + stime) as f64 / hz)
}

/// Context switches (voluntary + involuntary) of every thread of `pid`,
/// from `/proc/PID/task/*/status`: each block in `epoll_wait` or a sleep
/// that ends in a wakeup counts once, so the difference over a run divided
/// by the packets is the server's wakeups per packet.
pub fn proc_ctx_switches(pid: u32) -> Option<u64> {
    let mut total = 0;
    for task in fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(status) = fs::read_to_string(task.ok()?.path().join("status")) else {
            continue; // the thread ended meanwhile
        };
        for line in status.lines() {
            if line.starts_with("voluntary_ctxt_switches:")
                || line.starts_with("nonvoluntary_ctxt_switches:")
            {
                total += line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    Some(total)
}

/// Datagrams the kernel dropped on the UDP sockets of process `pid`
/// because their receive queue was full (the `drops` column of
/// `/proc/net/udp` and `/proc/net/udp6`, for the socket inodes among the
/// process's open files). Cumulative over each socket's life.
pub fn proc_udp_drops(pid: u32) -> Option<u64> {
    let mut inodes = std::collections::HashSet::new();
    for fd in fs::read_dir(format!("/proc/{pid}/fd")).ok()? {
        let Ok(link) = fs::read_link(fd.ok()?.path()) else {
            continue;
        };
        let link = link.to_string_lossy();
        if let Some(ino) = link
            .strip_prefix("socket:[")
            .and_then(|r| r.strip_suffix(']'))
            .and_then(|i| i.parse::<u64>().ok())
        {
            inodes.insert(ino);
        }
    }
    let mut drops = 0;
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(ino), Some(d)) = (f.get(9), f.get(12)) else {
                continue;
            };
            if ino.parse::<u64>().is_ok_and(|i| inodes.contains(&i)) {
                drops += d.parse::<u64>().unwrap_or(0);
            }
        }
    }
    Some(drops)
}

/// VmRSS of process `pid` in KiB, from `/proc/PID/status`.
pub fn proc_rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU seconds (user + system) the calling thread has used so far: the
/// generator is one thread, and a bench may run others beside it (the
/// overload section's busy loop) that are not the generator's cost.
pub(crate) fn self_cpu_secs() -> f64 {
    // SAFETY: rusage is plain data; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: ru is a valid out pointer.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &raw mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        let mut h = Histogram::new();
        for us in 1..=100 {
            h.record(us);
        }
        assert_eq!(h.quantile(0.5), 50);
        assert_eq!(h.quantile(0.99), 99);
        assert_eq!(h.max_us(), 100);
        h.record(50_000);
        assert_eq!(h.quantile(1.0), 50_000);
    }

    #[test]
    fn reads_own_proc() {
        let pid = std::process::id();
        assert!(proc_cpu_secs(pid).is_some());
        assert!(proc_rss_kib(pid).unwrap() > 0);
        assert!(proc_ctx_switches(pid).unwrap() > 0);
    }

    #[test]
    fn counts_drops_on_own_full_socket() {
        // A socket with a tiny receive buffer that nobody reads: datagrams
        // beyond what it holds are dropped and show in /proc/net/udp.
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        super::super::udp::set_buffers(&rx, 1);
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let pid = std::process::id();
        let before = proc_udp_drops(pid).unwrap();
        for _ in 0..200 {
            let _ = tx.send_to(&[0u8; 1000], rx.local_addr().unwrap());
        }
        assert!(proc_udp_drops(pid).unwrap() > before);
    }
}
