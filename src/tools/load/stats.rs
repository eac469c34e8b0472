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

/// utime + stime of process `pid` in seconds, from `/proc/PID/stat`.
pub fn proc_cpu_secs(pid: u32) -> Option<f64> {
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

/// VmRSS of process `pid` in KiB, from `/proc/PID/status`.
pub fn proc_rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU seconds (user + system) this process has used so far.
pub(crate) fn self_cpu_secs() -> f64 {
    // SAFETY: rusage is plain data; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: ru is a valid out pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &raw mut ru) };
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
    }
}
