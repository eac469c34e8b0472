//! Headless Chromium against tern: the page (`browser.html`) fetches
//! credentials from tern's issuer, then connects two `RTCPeerConnection`s
//! with `iceTransportPolicy: "relay"` through tern, over TURN/UDP and over
//! TURN/TCP, and reports the data-channel messages and the selected
//! candidate pair from `getStats()`.
//!
//! No DevTools protocol: the test serves the page on 127.0.0.1, starts
//! `chromium --headless=new URL`, and the page POSTs its result back. The
//! issuer runs on a second port, so the page's fetch is cross-origin and
//! goes through the CORS preflight for `issuer.allowed_origins`.
//!
//! Loopback: Chromium's WebRTC ignores loopback network adapters when it
//! enumerates networks (RFC 8445 §5.1.1.1 forbids loopback host
//! candidates). On a host with another interface it reaches a TURN server
//! on 127.0.0.1 from that interface's socket, with no flag. On a host with
//! only `lo` (a `--network none` container, a fresh netns) it gathers no
//! candidate at all, relay included, and the data channel never opens;
//! `--allow-loopback-in-peer-connection` lets it use `lo`, so the test
//! passes in both (checked by running this test inside a netns with only
//! `lo`). The selected pair is still asserted relay↔relay.
//!
//! Chromium comes from the Debian package `chromium` (never downloaded).
//! Missing: a failure with `TERN_REQUIRE_INTEROP=1`, a loud skip otherwise.
//! `TERN_CHROMIUM` overrides the binary.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use serde_json::Value;

use crate::harness::{TestServer, is_coturn, settings_default_policy};
use crate::http::HttpServer;
use crate::issuer::{TOKEN, issuer_for, unix_now};

const PAGE: &str = include_str!("browser.html");

/// The whole run (both transports) must report within this.
const RESULT_TIMEOUT: Duration = Duration::from_secs(30);

/// `chromium` on PATH (or `TERN_CHROMIUM`); `None` = skip.
pub(crate) fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TERN_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("chromium"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if std::env::var("TERN_REQUIRE_INTEROP").is_ok_and(|v| v == "1") {
            panic!(
                "chromium not found on PATH and TERN_REQUIRE_INTEROP=1: \
                 install it (apt-get install chromium) or set TERN_CHROMIUM"
            );
        }
        eprintln!(
            "\n***** SKIPPED: chromium not found on PATH \
             (apt-get install chromium, or set TERN_CHROMIUM) *****\n"
        );
    }
    found
}

/// Serves the page at `/` and sends the body POSTed to `/result`.
pub(crate) fn page_server(results: mpsc::Sender<Vec<u8>>) -> HttpServer {
    let results = Mutex::new(results);
    HttpServer::start(Box::new(move |req: Request<Bytes>| {
        let mut resp = Response::new(Vec::new());
        match (req.method(), req.uri().path()) {
            (&Method::GET, "/") => {
                *resp.body_mut() = PAGE.as_bytes().to_vec();
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    "text/html; charset=utf-8".parse().unwrap(),
                );
            }
            (&Method::POST, "/result") => {
                let _ = results.lock().unwrap().send(req.body().to_vec());
                *resp.status_mut() = StatusCode::NO_CONTENT;
            }
            _ => *resp.status_mut() = StatusCode::NOT_FOUND,
        }
        resp
    }))
}

/// Headless Chromium in a process group of its own; dropping it kills the
/// group (browser, zygote, renderer, GPU and network processes), also when
/// the test panics.
pub(crate) struct Browser(Child);

impl Drop for Browser {
    fn drop(&mut self) {
        // The group id is the child's pid (`process_group(0)` below).
        if let Ok(pgid) = i32::try_from(self.0.id()) {
            // SAFETY: kill(2) with a negative pid signals that process group only.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
        let _ = self.0.wait();
    }
}

/// Opens `url` in headless Chromium (inside network namespace `netns`
/// when given, with a throwaway profile under `dir`) and returns what the
/// page posted back on `results` within `timeout`. Fails, with Chromium's
/// log, when the page posts nothing or reports an `error`.
pub(crate) fn page_result(
    netns: Option<&str>,
    chromium: &Path,
    dir: &Path,
    url: &str,
    results: &mpsc::Receiver<Vec<u8>>,
    timeout: Duration,
) -> Value {
    let log = dir.join("chromium.log");
    let browser = launch_in(netns, chromium, &dir.join("profile"), &log, url);
    let got = results.recv_timeout(timeout);
    drop(browser); // kill chromium whatever happened
    let chromium_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let body = got.unwrap_or_else(|_| {
        panic!(
            "no result from the page within {timeout:?}\n--- chromium ---\n{}",
            chromium_log()
        )
    });
    let result: Value = serde_json::from_slice(&body).unwrap();
    eprintln!("page result: {result}");
    assert!(
        result.get("error").is_none(),
        "the page failed: {}\n--- chromium ---\n{}",
        result["error"],
        chromium_log()
    );
    result
}

/// Starts headless Chromium on `url` with a throwaway profile, inside
/// network namespace `netns` when given (`ip netns exec` execs Chromium, so
/// the process group is still Chromium's); its output goes to `log`.
fn launch_in(
    netns: Option<&str>,
    chromium: &Path,
    profile: &Path,
    log: &Path,
    url: &str,
) -> Browser {
    let log = std::fs::File::create(log).unwrap();
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(chromium);
            c
        }
        None => Command::new(chromium),
    };
    cmd.args([
        "--headless=new",
        "--no-sandbox", // root in CI containers; the page is our own
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-proxy-server", // a CI http_proxy must not carry the page or the issuer
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--mute-audio",
        "--allow-loopback-in-peer-connection", // see the module docs
        "--enable-logging=stderr",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg(url)
    .stdin(Stdio::null())
    .stdout(log.try_clone().unwrap())
    .stderr(log)
    .process_group(0);
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", chromium.display()));
    Browser(child)
}

#[test]
fn chromium_relays_data_channels_through_tern_over_udp_and_tcp() {
    let Some(chromium) = chromium() else { return };
    // The default peer policy: relay to relay on tern's own relay address is
    // allowed by it. coturn (TERN_IT_SERVER=coturn) needs its REST setup.
    let server = if is_coturn() {
        TestServer::start_rest()
    } else {
        TestServer::with(settings_default_policy())
    };
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = mpsc::channel();
    let page = page_server(tx);
    let issuer = issuer_for(&server, dir.path(), vec![page.url()]);
    let issuer_http = HttpServer::start(Box::new(move |req| issuer.handle(&req, unix_now())));
    let url = format!("{}/?issuer={}&token={TOKEN}", page.url(), issuer_http.url());

    let result = page_result(None, &chromium, dir.path(), &url, &rx, RESULT_TIMEOUT);
    for transport in ["udp", "tcp"] {
        check_run(&result[transport], transport, &server);
    }
}

/// One transport's report: messages both ways, and a selected pair that
/// is relay↔relay on tern's relay ports, reached over `transport`.
fn check_run(run: &Value, transport: &str, server: &TestServer) {
    assert_eq!(run["gotB"], format!("A->B over {transport}"), "{run}");
    assert_eq!(run["gotA"], format!("B->A over {transport}"), "{run}");
    for side in ["a", "b"] {
        let pair = &run[side];
        assert_eq!(pair["state"], "succeeded", "{side}: {run}");
        assert_eq!(pair["local"]["type"], "relay", "{side}: {run}");
        assert_eq!(pair["remote"]["type"], "relay", "{side}: {run}");
        assert_eq!(pair["local"]["relayProtocol"], transport, "{side}: {run}");
        for end in ["local", "remote"] {
            let address = pair[end]["address"].as_str().unwrap_or_default();
            assert_eq!(address, "127.0.0.1", "{side} {end} address: {run}");
            let port = pair[end]["port"].as_u64().unwrap_or_default();
            assert!(
                u16::try_from(port).is_ok_and(|p| server.relay_ports.contains(&p)),
                "{side} {end} port {port} is not one of tern's relay ports {:?}: {run}",
                server.relay_ports
            );
        }
    }
}
