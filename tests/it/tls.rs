//! TURN over TLS end to end against an in-process tern on loopback:
//! ALPN, relaying, certificate reload on SIGHUP, handshake timeout, and
//! coturn's `turnutils_uclient -S`.
//!
//! The TLS client is plain rustls over a std `TcpStream`, with a verifier
//! that accepts any certificate but records nothing: the tests compare the
//! presented leaf with the one they generated, which is the point of the
//! reload test. STUN messages are hand-rolled ([`crate::stream`]). The
//! helpers here are shared with the PROXY-protocol and IPv6 modules.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use tern::settings::{SettingsBuilder, TlsSettings};
use tern::tools::probe::connect::NoVerification;

use crate::harness::{self, EchoPeer, IO_TIMEOUT, PASS, USER, binding_request, random_tid};
use crate::stream::{allocate_unauthenticated, binding_over, closed_by_server, mapped, read_stun};

// ---------------------------------------------------------------- helpers

/// A certificate/key pair as PEM files at fixed paths in a temp dir, so a
/// test can overwrite them and ask tern to reload.
pub(crate) struct CertFiles {
    dir: tempfile::TempDir,
}

impl CertFiles {
    pub(crate) fn new() -> Self {
        let files = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        files.rotate();
        files
    }

    fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    fn key(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }

    /// Writes a fresh self-signed pair; returns the leaf's DER.
    fn rotate(&self) -> Vec<u8> {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        std::fs::write(self.cert(), ck.cert.pem()).unwrap();
        std::fs::write(self.key(), ck.key_pair.serialize_pem()).unwrap();
        ck.cert.der().to_vec()
    }

    fn leaf(&self) -> Vec<u8> {
        use rustls::pki_types::pem::PemObject;
        CertificateDer::from_pem_file(self.cert()).unwrap().to_vec()
    }
}

pub(crate) fn tls_settings(files: &CertFiles) -> SettingsBuilder {
    let mut s = harness::settings();
    s.tls = Some(TlsSettings {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        cert: files.cert(),
        key: files.key(),
    });
    s
}

/// Starts tern in a thread of its own (as the harness does).
pub(crate) fn start(settings: SettingsBuilder) -> std::io::Result<tern::io::Handle> {
    thread::spawn(move || tern::io::start(settings.build()))
        .join()
        .expect("tern::io::start panicked")
}

pub(crate) type Tls = StreamOwned<ClientConnection, TcpStream>;

/// A TLS client session over `tcp` (already connected; anything written on
/// it before, such as a PROXY header, precedes the ClientHello).
pub(crate) fn tls_over(
    tcp: TcpStream,
    alpn: &[&[u8]],
    version: &'static rustls::SupportedProtocolVersion,
) -> Tls {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[version])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let conn = ClientConnection::new(Arc::new(cfg), "localhost".try_into().unwrap()).unwrap();
    let mut s = StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock).expect("TLS handshake");
    }
    s
}

pub(crate) fn tls_connect(addr: SocketAddr, alpn: &[&[u8]]) -> Tls {
    tls_over(
        TcpStream::connect(addr).unwrap(),
        alpn,
        &rustls::version::TLS13,
    )
}

// ---------------------------------------------------------------- TLS

#[test]
fn binding_and_allocate_over_tls_with_alpn() {
    let files = CertFiles::new();
    let h = start(tls_settings(&files)).unwrap();
    let addr = h.tls_addrs()[0];

    let mut c = tls_connect(addr, &[b"stun.turn"]);
    assert_eq!(c.conn.alpn_protocol(), Some(&b"stun.turn"[..]));
    let local = c.sock.local_addr().unwrap();
    assert_eq!(binding_over(&mut c), local);
    assert_eq!(allocate_unauthenticated(&mut c), 401);
    // Several frames in one TLS record are split correctly.
    let (t1, t2) = (random_tid(), random_tid());
    let mut two = binding_request(t1).to_vec();
    two.extend_from_slice(&binding_request(t2));
    c.write_all(&two).unwrap();
    assert_eq!(mapped(&read_stun(&mut c), t1), local);
    assert_eq!(mapped(&read_stun(&mut c), t2), local);

    // stun.nat-discovery is offered too; no ALPN at all is fine; TLS 1.2 works.
    let c = tls_connect(addr, &[b"stun.nat-discovery"]);
    assert_eq!(c.conn.alpn_protocol(), Some(&b"stun.nat-discovery"[..]));
    let mut c = tls_over(
        TcpStream::connect(addr).unwrap(),
        &[],
        &rustls::version::TLS12,
    );
    assert_eq!(c.conn.alpn_protocol(), None);
    assert_eq!(binding_over(&mut c), c.sock.local_addr().unwrap());
    h.shutdown();
}

#[test]
fn relay_over_tls_send_data_and_channels_both_ways() {
    let files = CertFiles::new();
    let h = start(tls_settings(&files)).unwrap();
    let tls = tls_connect(h.tls_addrs()[0], &[b"stun.turn"]);
    let mut c = tern::tools::client::Client::stream(Box::new(tls), USER, PASS);
    let relay = c.allocate().expect("Allocate over TLS");
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let peer_addr = peer.local_addr().unwrap();
    let mut buf = [0u8; 1500];

    // Send indication out, Data indication back.
    c.create_permission(peer_addr).unwrap();
    c.send_indication(peer_addr, b"via indication").unwrap();
    let (n, from) = peer
        .recv_from(&mut buf)
        .expect("peer gets the Send payload");
    assert_eq!((&buf[..n], from), (&b"via indication"[..], relay));
    peer.send_to(b"reply by data", relay).unwrap();
    let got = c.recv_data(IO_TIMEOUT).unwrap();
    assert_eq!(
        got,
        Some((
            tern::tools::client::Delivery::Data(peer_addr),
            b"reply by data".to_vec()
        ))
    );

    // ChannelData both ways; an odd length checks the stream padding.
    c.channel_bind(0x4000, peer_addr).unwrap();
    c.send_channel(0x4000, b"via channel").unwrap();
    let (n, from) = peer
        .recv_from(&mut buf)
        .expect("peer gets the ChannelData payload");
    assert_eq!((&buf[..n], from), (&b"via channel"[..], relay));
    for payload in [&b"odd"[..], b"four", b"and then some"] {
        peer.send_to(payload, relay).unwrap();
        let got = c.recv_data(IO_TIMEOUT).unwrap();
        assert_eq!(
            got,
            Some((
                tern::tools::client::Delivery::Channel(0x4000),
                payload.to_vec()
            ))
        );
    }
    c.refresh(0).unwrap();
    h.shutdown();
}

#[test]
fn sighup_reload_gives_new_connections_the_new_cert() {
    let files = CertFiles::new();
    let first = files.leaf();
    let h = start(tls_settings(&files)).unwrap();
    let addr = h.tls_addrs()[0];

    let mut old = tls_connect(addr, &[b"stun.turn"]);
    let presented = |c: &Tls| c.conn.peer_certificates().unwrap()[0].to_vec();
    assert_eq!(presented(&old), first);

    let second = files.rotate();
    assert_ne!(first, second);
    h.reload_tls().expect("reload");
    let new = tls_connect(addr, &[b"stun.turn"]);
    assert_eq!(
        presented(&new),
        second,
        "a new connection gets the new certificate"
    );
    // The live connection is untouched.
    assert_eq!(binding_over(&mut old), old.sock.local_addr().unwrap());

    // A broken file: an error naming the key, and the current cert stays.
    std::fs::write(files.key(), "not a key").unwrap();
    let e = h.reload_tls().unwrap_err().to_string();
    assert!(e.starts_with("tls.key: "), "{e}");
    let again = tls_connect(addr, &[b"stun.turn"]);
    assert_eq!(presented(&again), second);
    assert_eq!(binding_over(&mut old), old.sock.local_addr().unwrap());
    h.shutdown();
}

#[test]
fn missing_certificate_fails_startup_naming_key_and_path() {
    let files = CertFiles::new();
    let mut s = tls_settings(&files);
    s.tls.as_mut().unwrap().cert = Path::new("/nonexistent/tern-cert.pem").to_owned();
    let e = start(s).unwrap_err().to_string();
    assert!(
        e.contains("tls.cert") && e.contains("/nonexistent/tern-cert.pem"),
        "{e}"
    );
}

#[test]
fn tls_handshake_timeout_closes_silent_connections() {
    let files = CertFiles::new();
    let mut s = tls_settings(&files);
    s.tcp.handshake_timeout = Duration::from_secs(1);
    let h = start(s).unwrap();
    let mut silent = TcpStream::connect(h.tls_addrs()[0]).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let t0 = Instant::now();
    assert!(
        closed_by_server(&mut silent),
        "silent connection not closed"
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t0.elapsed()
    );
    // Counted by kind (the close precedes the count by one statement, so
    // wait for it, bounded).
    use tern::admin::metrics::{Label, QuotaKind};
    let kind = QuotaKind::TcpHandshakeTimeout.index();
    let deadline = Instant::now() + IO_TIMEOUT;
    while h.metrics().sum(|w| &w.quota_rejections[kind]) != 1 {
        assert!(Instant::now() < deadline, "handshake timeout not counted");
        thread::sleep(Duration::from_millis(10));
    }
    h.shutdown();
}

/// Reads from a TLS session until it ends: `Ok(true)` for a clean end
/// (the server sent close_notify), `Ok(false)` for a bare TCP close (rustls
/// reports `UnexpectedEof`), `Err` for anything else.
fn ends_with_close_notify(s: &mut Tls) -> std::io::Result<bool> {
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(true),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}

/// Issue 14: when the server closes a TLS connection (idle timeout,
/// shutdown) it says so with close_notify, so the client can tell the end
/// from a truncation.
#[test]
fn server_closes_tls_with_close_notify() {
    let files = CertFiles::new();
    let mut s = tls_settings(&files);
    s.tcp.idle_timeout = Duration::from_secs(1);
    let h = start(s).unwrap();
    let addr = h.tls_addrs()[0];

    // Idle timeout.
    let mut idle = tls_connect(addr, &[b"stun.turn"]);
    assert_eq!(binding_over(&mut idle), idle.sock.local_addr().unwrap());
    assert!(
        ends_with_close_notify(&mut idle).expect("the server closes the idle connection"),
        "idle close without close_notify"
    );

    // Shutdown: every open connection is closed the same way.
    let mut open = tls_connect(addr, &[b"stun.turn"]);
    assert_eq!(binding_over(&mut open), open.sock.local_addr().unwrap());
    h.shutdown();
    assert!(
        ends_with_close_notify(&mut open).expect("shutdown closes the connection"),
        "shutdown close without close_notify"
    );
}

// ---------------------------------------------------------------- coturn

/// coturn's `turnutils_uclient -S`: TLS to tern, allocate, channels, data
/// through an echo peer; every message must come back.
#[test]
fn coturn_uclient_over_tls_zero_loss() {
    let Some(tool) = harness::require_tool("turnutils_uclient") else {
        return;
    };
    let files = CertFiles::new();
    let mut settings = tls_settings(&files);
    // uclient picks channel numbers from RFC 5766's 0x4000-0x7FFF.
    settings.proto.channel_range = tern::proto::channel_data::ChannelRange::Rfc5766;
    let h = start(settings).unwrap();
    let peer = EchoPeer::start();
    let (sessions, messages) = (2u64, 40u64);
    let out = harness::run_tool(
        Command::new(tool)
            .args(["-S", "-t", "-c", "-u", USER, "-w", PASS])
            .args(["-p", &h.tls_addrs()[0].port().to_string()])
            .args(["-e", "127.0.0.1", "-r", &peer.addr.port().to_string()])
            .args(["-m", &sessions.to_string(), "-n", &messages.to_string()])
            .arg("127.0.0.1"),
        Duration::from_secs(60),
    );
    let echoed = peer.stop();
    h.shutdown();
    assert!(out.success(), "turnutils_uclient -S failed\n{out}");
    let text = format!("{}{}", out.stdout, out.stderr);
    let num = |key: &str| -> Option<u64> {
        let line = text
            .lines()
            .rfind(|l| l.contains(key) && !l.contains("msz="))?;
        let rest = &line[line.find(key)? + key.len()..];
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    let expected = sessions * messages;
    assert_eq!(
        (
            num("tot_send_msgs="),
            num("tot_recv_msgs="),
            num("Total lost packets ")
        ),
        (Some(expected), Some(expected), Some(0)),
        "not every message made the round trip (peer echoed {echoed})\n{out}"
    );
}
