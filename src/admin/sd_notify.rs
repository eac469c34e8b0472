//! systemd readiness notification (`sd_notify(3)`), the documented socket
//! protocol written out rather than a crate: one datagram of
//! newline-separated `KEY=VALUE` lines to the `AF_UNIX` socket named by
//! `$NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace).
//! Without `$NOTIFY_SOCKET` (not under systemd) every call is a no-op.
//!
//! tern sends `READY=1` once listening, `STOPPING=1` when a drain starts,
//! `STATUS=…` lines, `RELOADING=1`/`READY=1` around a reload, and
//! `WATCHDOG=1` every [`Notifier::watchdog_interval`] while `/livez` would
//! answer 200 (a wedged worker stops the pings and systemd restarts tern).
//! See <https://www.freedesktop.org/software/systemd/man/sd_notify.html>.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// A connection to the service manager, or nothing.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, Target)>,
    watchdog: Option<Duration>,
}

#[derive(Debug, Clone)]
enum Target {
    Path(std::path::PathBuf),
    Abstract(Vec<u8>),
}

impl Notifier {
    /// From `$NOTIFY_SOCKET` and `$WATCHDOG_USEC`/`$WATCHDOG_PID` of this
    /// process's environment.
    pub fn from_env() -> std::io::Result<Self> {
        let socket = std::env::var_os("NOTIFY_SOCKET");
        let usec = std::env::var("WATCHDOG_USEC").ok();
        let pid = std::env::var("WATCHDOG_PID").ok();
        Self::new(
            socket.as_deref().and_then(|s| s.to_str()),
            usec.as_deref(),
            pid.as_deref(),
            std::process::id(),
        )
    }

    /// From explicit values (testable form of `from_env`). The watchdog is
    /// on when `usec` parses to a positive number and `pid` is absent or ours.
    pub fn new(
        socket: Option<&str>,
        usec: Option<&str>,
        pid: Option<&str>,
        own_pid: u32,
    ) -> std::io::Result<Self> {
        let target = match socket {
            None | Some("") => None,
            Some(s) => {
                let t = match s.strip_prefix('@') {
                    Some(name) => Target::Abstract(name.as_bytes().to_vec()),
                    None => Target::Path(s.into()),
                };
                Some((UnixDatagram::unbound()?, t))
            }
        };
        let for_us = pid.is_none_or(|p| p.parse::<u32>().ok() == Some(own_pid));
        let watchdog = usec
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|&u| u > 0 && for_us)
            .map(Duration::from_micros);
        Ok(Self { target, watchdog })
    }

    /// True when running under a service manager that listens.
    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// How often to send `WATCHDOG=1`: half of `WatchdogSec` as systemd
    /// recommends; `None` when the watchdog is off.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|d| d / 2)
    }

    /// Sends raw `KEY=VALUE` lines.
    pub fn notify(&self, state: &str) -> std::io::Result<()> {
        let Some((sock, target)) = &self.target else {
            return Ok(());
        };
        match target {
            Target::Path(p) => sock.send_to(state.as_bytes(), p).map(drop),
            Target::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                sock.send_to_addr(state.as_bytes(), &addr).map(drop)
            }
        }
    }

    /// `READY=1` with a status line.
    pub fn ready(&self, status: &str) -> std::io::Result<()> {
        self.notify(&format!("READY=1\nSTATUS={}", one_line(status)))
    }

    /// `STOPPING=1` with a status line (drain start).
    pub fn stopping(&self, status: &str) -> std::io::Result<()> {
        self.notify(&format!("STOPPING=1\nSTATUS={}", one_line(status)))
    }

    /// `STATUS=` alone.
    pub fn status(&self, status: &str) -> std::io::Result<()> {
        self.notify(&format!("STATUS={}", one_line(status)))
    }

    /// `RELOADING=1` with the `MONOTONIC_USEC` systemd asks to accompany it;
    /// follow with [`Self::ready`] when the reload is done.
    pub fn reloading(&self) -> std::io::Result<()> {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        let usec = ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000;
        self.notify(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"))
    }

    /// `WATCHDOG=1`: call only while every worker makes progress.
    pub fn watchdog(&self) -> std::io::Result<()> {
        self.notify("WATCHDOG=1")
    }
}

/// A STATUS value must not contain a newline (it would start a new key).
fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recv(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn sends_to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::new(path.to_str(), None, None, 1).unwrap();
        assert!(n.enabled());
        n.ready("3 allocations\nx").unwrap();
        assert_eq!(recv(&server), "READY=1\nSTATUS=3 allocations x");
        n.stopping("draining").unwrap();
        assert_eq!(recv(&server), "STOPPING=1\nSTATUS=draining");
        n.watchdog().unwrap();
        assert_eq!(recv(&server), "WATCHDOG=1");
        n.reloading().unwrap();
        let r = recv(&server);
        let usec = r.strip_prefix("RELOADING=1\nMONOTONIC_USEC=").unwrap();
        assert!(usec.parse::<u64>().unwrap() > 0, "{r}");
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("tern-test-notify-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        let n = Notifier::new(Some(&format!("@{name}")), None, None, 1).unwrap();
        n.status("ok").unwrap();
        assert_eq!(recv(&server), "STATUS=ok");
    }

    #[test]
    fn absent_socket_is_a_no_op_and_watchdog_follows_env() {
        let n = Notifier::new(None, Some("4000000"), None, 7).unwrap();
        assert!(!n.enabled());
        n.ready("x").unwrap();
        assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(2)));
        let other = Notifier::new(None, Some("4000000"), Some("8"), 7).unwrap();
        assert_eq!(other.watchdog_interval(), None);
        let ours = Notifier::new(None, Some("4000000"), Some("7"), 7).unwrap();
        assert!(ours.watchdog_interval().is_some());
        assert_eq!(
            Notifier::new(None, Some("0"), None, 7)
                .unwrap()
                .watchdog_interval(),
            None
        );
        assert_eq!(
            Notifier::new(None, Some("x"), None, 7)
                .unwrap()
                .watchdog_interval(),
            None
        );
    }
}
