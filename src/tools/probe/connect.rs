//! Opening the probe's legs to the server: a UDP socket, a TCP connection,
//! or TLS over TCP (`turns:`) with the certificate checked against the
//! system's CA store, a private CA (`--ca`), or not at all (`--insecure`).

use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore};

use super::target::Transport;
use crate::tools::client::Client;

/// How long a TCP connect or TLS handshake may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How the server's TLS certificate is checked.
#[derive(Clone, Debug, Default)]
pub enum TlsTrust {
    /// The system's CA store (`rustls-native-certs`: `SSL_CERT_FILE`,
    /// `SSL_CERT_DIR`, or the distribution's bundle).
    #[default]
    System,
    /// Only the CA certificates in this PEM file (a private CA).
    Ca(PathBuf),
    /// No check at all (`--insecure`): the connection is encrypted but the
    /// server is not authenticated.
    DangerousNone,
}

/// Where to connect and how: one per probe, shared by both allocations.
pub struct Leg {
    pub server: SocketAddr,
    pub transport: Transport,
    /// The TLS server name (the URI's host).
    pub name: String,
    tls: Option<Arc<ClientConfig>>,
}

impl Leg {
    /// Builds the TLS client config once (for `Transport::Tls`).
    pub fn new(
        server: SocketAddr,
        transport: Transport,
        name: &str,
        trust: &TlsTrust,
    ) -> Result<Self, String> {
        let tls = match transport {
            Transport::Tls => Some(Arc::new(tls_config(trust)?)),
            Transport::Udp | Transport::Tcp => None,
        };
        Ok(Self {
            server,
            transport,
            name: name.to_owned(),
            tls,
        })
    }

    /// A client on a fresh socket or connection (TLS handshake included).
    pub fn open(&self, user: &str, password: &str) -> Result<Client, String> {
        let server = self.server;
        match (&self.transport, &self.tls) {
            (Transport::Udp, _) => {
                let any: SocketAddr = if server.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let sock =
                    UdpSocket::bind(any).map_err(|e| format!("cannot open a UDP socket: {e}"))?;
                Ok(Client::udp(sock, server, user, password))
            }
            (Transport::Tcp, _) => Ok(Client::tcp(self.connect()?, user, password)),
            (Transport::Tls, Some(cfg)) => {
                let tcp = self.connect()?;
                let tls = handshake(cfg.clone(), &self.name, tcp)
                    .map_err(|e| format!("TLS handshake with {} failed: {e}", self.name))?;
                Ok(Client::stream(Box::new(tls), user, password))
            }
            // invariant: `new` builds a config for every TLS leg.
            (Transport::Tls, None) => unreachable!("TLS leg without a TLS config"),
        }
    }

    fn connect(&self) -> Result<TcpStream, String> {
        let tcp = TcpStream::connect_timeout(&self.server, CONNECT_TIMEOUT)
            .map_err(|e| format!("cannot connect to {} over tcp: {e}", self.server))?;
        let _ = tcp.set_nodelay(true);
        Ok(tcp)
    }
}

type Tls = rustls::StreamOwned<ClientConnection, TcpStream>;

/// Runs the TLS handshake to the end, so that a bad certificate is
/// reported as the connect step's failure rather than as a lost request.
fn handshake(cfg: Arc<ClientConfig>, name: &str, mut tcp: TcpStream) -> Result<Tls, String> {
    let name = ServerName::try_from(name.to_owned())
        .map_err(|_| format!("{name:?} is not a valid TLS server name"))?;
    let mut conn = ClientConnection::new(cfg, name).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(CONNECT_TIMEOUT))
        .map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(|e| e.to_string())?;
    }
    Ok(rustls::StreamOwned::new(conn, tcp))
}

/// The client config for `trust`, offering ALPN `stun.turn` (RFC 7443).
fn tls_config(trust: &TlsTrust) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let mut cfg = match trust {
        TlsTrust::DangerousNone => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth(),
        TlsTrust::System | TlsTrust::Ca(_) => builder
            .with_root_certificates(roots(trust)?)
            .with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"stun.turn".to_vec()];
    Ok(cfg)
}

fn roots(trust: &TlsTrust) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    let certs: Vec<CertificateDer<'static>> = match trust {
        TlsTrust::Ca(path) => CertificateDer::pem_file_iter(path)
            .and_then(Iterator::collect)
            .map_err(|e| format!("--ca {}: cannot read PEM certificates: {e}", path.display()))?,
        TlsTrust::System | TlsTrust::DangerousNone => {
            rustls_native_certs::load_native_certs().certs
        }
    };
    let (added, _) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(match trust {
            TlsTrust::Ca(path) => format!("--ca {}: no usable CA certificate", path.display()),
            TlsTrust::System | TlsTrust::DangerousNone => "no CA certificates in the system \
                store (install ca-certificates, or set SSL_CERT_FILE); or pass --ca FILE"
                .to_owned(),
        });
    }
    Ok(store)
}

/// `--insecure`: accepts any certificate (signatures are still checked, so
/// the handshake itself is sound; the server's identity is not). Public
/// for the tests' TLS clients, which talk to self-signed servers.
#[derive(Debug)]
pub struct NoVerification(pub Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
