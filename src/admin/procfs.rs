//! Process and socket numbers from `/proc` (Linux): the standard
//! `process_*` metrics and the kernel's per-socket UDP receive drops.
//!
//! Receive drops: the kernel counts, per UDP socket, datagrams it threw
//! away because the socket's receive queue was full (the `drops` column of
//! `/proc/net/udp{,6}`; the same counter SO_RXQ_OVFL reports). We sum it
//! over the sockets this process owns, found as `socket:[INODE]` links in
//! `/proc/self/fd`, so reading it never touches the receive path.
//! Closed sockets take their counts with them, so the sum can fall when a
//! relay socket closes; it is exported as a counter all the same because
//! the listeners (where overload shows) live as long as the process, and
//! Prometheus' `rate()` treats a fall as a reset.

use std::collections::HashSet;

/// `process_*` values; `None` where `/proc` could not be read.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessStats {
    /// User + system CPU time, seconds.
    pub cpu_seconds: Option<f64>,
    /// Resident set size, bytes.
    pub resident_bytes: Option<u64>,
    /// Virtual memory size, bytes.
    pub virtual_bytes: Option<u64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// The soft limit on file descriptors.
    pub max_fds: Option<u64>,
    /// Process start, Unix seconds.
    pub start_time_seconds: Option<f64>,
}

impl ProcessStats {
    /// Reads this process's numbers.
    pub fn read() -> Self {
        // SAFETY: sysconf has no preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        // SAFETY: as above.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        let btime = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| parse_btime(&s));
        let mut out = stat
            .as_deref()
            .and_then(|s| {
                parse_stat(
                    s,
                    u64::try_from(ticks).ok()?,
                    u64::try_from(page).ok()?,
                    btime?,
                )
            })
            .unwrap_or_default();
        out.open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as u64);
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `lim` is a valid, writable rlimit.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
            out.max_fds = Some(lim.rlim_cur);
        }
        out
    }
}

/// `btime` (boot time, Unix seconds) from `/proc/stat`.
fn parse_btime(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// Parses `/proc/self/stat`. The command name (field 2) may contain spaces
/// and parentheses, so fields are counted from the last `)`.
fn parse_stat(text: &str, ticks: u64, page: u64, btime: u64) -> Option<ProcessStats> {
    let rest = &text[text.rfind(')')? + 1..];
    // Field 3 (state) is index 0 here; field N is index N - 3.
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |n: usize| f.get(n - 3)?.parse::<u64>().ok();
    if ticks == 0 {
        return None;
    }
    let tick = ticks as f64;
    Some(ProcessStats {
        cpu_seconds: Some((num(14)? + num(15)?) as f64 / tick),
        virtual_bytes: num(23),
        resident_bytes: num(24).map(|p| p.saturating_mul(page)),
        start_time_seconds: Some(btime as f64 + num(22)? as f64 / tick),
        open_fds: None,
        max_fds: None,
    })
}

/// Inodes of the sockets this process has open.
pub fn own_socket_inodes() -> HashSet<u64> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return HashSet::new();
    };
    dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|p| socket_inode(p.to_str()?))
        .collect()
}

/// `socket:[12345]` → 12345.
fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Sum of the `drops` column of a `/proc/net/udp` or `/proc/net/udp6` table
/// over the rows whose inode is in `inodes`. Malformed rows are skipped.
pub fn udp_drops_for(table: &str, inodes: &HashSet<u64>) -> u64 {
    // Columns: sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let inode: u64 = cols.get(9)?.parse().ok()?;
            let drops: u64 = cols.get(12)?.parse().ok()?;
            inodes.contains(&inode).then_some(drops)
        })
        .fold(0, u64::saturating_add)
}

/// Datagrams the kernel dropped on this process's UDP sockets (IPv4 and
/// IPv6) because their receive queues were full.
pub fn udp_receive_drops() -> u64 {
    let inodes = own_socket_inodes();
    ["/proc/net/udp", "/proc/net/udp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|t| udp_drops_for(&t, &inodes))
        .fold(0, u64::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UDP: &str = "\
   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  123: 0100007F:0D96 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 ffff8881 17
  124: 00000000:C000 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4243 2 ffff8882 5
  125: 00000000:C001 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 9999 2 ffff8883 1000
  garbage line
";

    #[test]
    fn sums_drops_of_own_sockets_only() {
        let own: HashSet<u64> = [4242, 4243].into();
        assert_eq!(udp_drops_for(UDP, &own), 22);
        assert_eq!(udp_drops_for(UDP, &HashSet::new()), 0);
        assert_eq!(udp_drops_for("", &own), 0);
    }

    #[test]
    fn socket_links_parse() {
        assert_eq!(socket_inode("socket:[4242]"), Some(4242));
        assert_eq!(socket_inode("pipe:[4242]"), None);
        assert_eq!(socket_inode("socket:[x]"), None);
    }

    #[test]
    fn live_socket_is_found_in_proc() {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let inodes = own_socket_inodes();
        let table = std::fs::read_to_string("/proc/net/udp").unwrap();
        let port = format!(":{:04X} ", s.local_addr().unwrap().port());
        let row = table.lines().find(|l| l.contains(&port)).unwrap();
        let inode: u64 = row.split_whitespace().nth(9).unwrap().parse().unwrap();
        assert!(inodes.contains(&inode));
    }

    #[test]
    fn stat_parses_with_spaces_in_name() {
        let stat = "77 (a b) c) S 1 77 77 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 1000 \
                    4096000 300 18446744073709551615";
        let s = parse_stat(stat, 100, 4096, 1_700_000_000).unwrap();
        assert_eq!(s.cpu_seconds, Some(3.0));
        assert_eq!(s.resident_bytes, Some(300 * 4096));
        assert_eq!(s.virtual_bytes, Some(4_096_000));
        assert_eq!(s.start_time_seconds, Some(1_700_000_010.0));
        assert_eq!(
            parse_btime("cpu 1 2\nbtime 1700000000\n"),
            Some(1_700_000_000)
        );
        assert!(parse_stat("no paren", 100, 4096, 0).is_none());
    }

    #[test]
    fn reads_this_process() {
        let p = ProcessStats::read();
        assert!(p.open_fds.unwrap() > 0);
        assert!(p.resident_bytes.unwrap() > 0);
        assert!(p.start_time_seconds.unwrap() > 1_600_000_000.0);
    }
}
