//! A small hardened HTTP/1.1 server: hyper 1 on a tokio current-thread
//! runtime in a thread of its own, generic over a [`Router`] so the admin
//! API and a public credential issuer can share it with different routes.
//!
//! Hostile clients are bounded at every step:
//! - at most `max_connections` at once; beyond that a connection gets a
//!   canned 503 and is closed, without reading from it;
//! - request headers must arrive within `header_read_timeout` and fit in
//!   `max_header_bytes` (hyper answers 431 beyond, 400 for garbage);
//! - a body larger than `max_body_bytes` gets 413; the whole connection
//!   (keep-alive included) lives at most `connection_timeout`, so a client
//!   trickling a body or holding a socket open is cut off;
//! - handlers run on tokio's blocking pool, so a slow one (a reload)
//!   never stalls the accept loop or other connections.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::StatusCode;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};

/// A request as routers see it: the body is already read (and bounded).
pub type Request<B> = hyper::Request<B>;

/// A response builder for routers: status, content type and body; turn
/// it into the `http` type with [`Response::into_http`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: String,
    /// Extra headers (e.g. `WWW-Authenticate`).
    pub headers: Vec<(&'static str, String)>,
}

impl Response {
    /// A `text/plain` response.
    pub fn text(status: StatusCode, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
            headers: Vec::new(),
        }
    }

    /// An `application/json` response of a serializable value.
    pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Self {
        let body = serde_json::to_string_pretty(value)
            .unwrap_or_else(|e| format!("{{\"error\":\"cannot serialize the response: {e}\"}}"));
        Self {
            status,
            content_type: "application/json",
            body: body + "\n",
            headers: Vec::new(),
        }
    }

    /// The `http` response.
    pub fn into_http(self) -> hyper::Response<Vec<u8>> {
        let mut out = hyper::Response::new(self.body.into_bytes());
        *out.status_mut() = self.status;
        let h = out.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        for (k, v) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.insert(k, v);
            }
        }
        out
    }

    /// `{"error": msg}` with `status`.
    pub fn error(status: StatusCode, msg: &str) -> Self {
        Self::json(status, &serde_json::json!({ "error": msg }))
    }
}

/// Maps requests to responses. Called on a blocking-pool thread. Plain
/// `http` types, so any transport-free handler (the admin API, the
/// credential issuer's `Issuer::handle`) plugs in with a one-line impl.
pub trait Router: Send + Sync + 'static {
    fn handle(&self, req: &Request<Bytes>) -> hyper::Response<Vec<u8>>;
}

/// Resource bounds for one listener.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    /// Request line + headers, bytes.
    pub max_header_bytes: usize,
    pub max_body_bytes: usize,
    /// Longest life of one connection, keep-alive included.
    pub connection_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 64,
            header_read_timeout: Duration::from_secs(5),
            max_header_bytes: 16 * 1024,
            max_body_bytes: 64 * 1024,
            connection_timeout: Duration::from_secs(30),
        }
    }
}

/// A running server. Dropping it stops the listener and joins the thread.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerHandle {
    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A task run on a listener's runtime beside its accept loop (the
/// credential issuer's fleet poller). It must never block the thread; it
/// is dropped when the server stops.
pub type Background = std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Binds `addr` (so the caller knows at return that it is listening: that
/// is the readiness signal) and serves `router` on a new thread `name`.
pub fn spawn(
    addr: SocketAddr,
    router: Arc<dyn Router>,
    limits: Limits,
    name: &str,
) -> std::io::Result<ServerHandle> {
    spawn_with(addr, router, limits, name, None)
}

/// [`spawn`], plus a `background` task on the same runtime.
pub fn spawn_with(
    addr: SocketAddr,
    router: Arc<dyn Router>,
    limits: Limits,
    name: &str,
    background: Option<Background>,
) -> std::io::Result<ServerHandle> {
    let std_listener = std::net::TcpListener::bind(addr)?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(4)
        .build()?;
    let (stop_tx, stop_rx) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            rt.block_on(async move {
                if let Some(task) = background {
                    tokio::spawn(task);
                }
                match TcpListener::from_std(std_listener) {
                    Ok(l) => accept_loop(l, router, limits, stop_rx).await,
                    Err(e) => tracing::error!(error = %e, "admin listener failed"),
                }
            });
            // A handler stuck in the blocking pool must not hold up shutdown.
            rt.shutdown_timeout(Duration::from_secs(1));
        })?;
    Ok(ServerHandle {
        addr,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

async fn accept_loop(
    listener: TcpListener,
    router: Arc<dyn Router>,
    limits: Limits,
    mut stop: oneshot::Receiver<()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    // Refusals are bounded too; past both caps a connection is just closed.
    let refusals = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let (stream, _peer) = tokio::select! {
            _ = &mut stop => return,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            if let Ok(permit) = Arc::clone(&refusals).try_acquire_owned() {
                tokio::spawn(async move {
                    let _permit = permit;
                    refuse(stream).await;
                });
            }
            continue;
        };
        let router = Arc::clone(&router);
        tokio::spawn(async move {
            let _permit = permit;
            let _ = stream.set_nodelay(true);
            serve_connection(stream, router, limits).await;
        });
    }
}

/// Over the connection cap: a fixed 503, then close. The request is read
/// (at most 16 KiB, for at most a second) and discarded first, because
/// closing a socket with unread input sends a reset that can destroy the
/// 503 before the client reads it.
async fn refuse(mut stream: tokio::net::TcpStream) {
    const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n\
        content-length: 0\r\n\r\n";
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(BUSY).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut total = 0;
        while total < 16 * 1024 {
            match stream.read(&mut sink).await? {
                0 => break,
                n => total += n,
            }
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
}

async fn serve_connection(stream: tokio::net::TcpStream, router: Arc<dyn Router>, limits: Limits) {
    let service = service_fn(move |req| {
        let router = Arc::clone(&router);
        async move { Ok::<_, Infallible>(respond(req, router, limits).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes)
        .max_buf_size(limits.max_header_bytes.max(8192) + 8192)
        .max_headers(64)
        .serve_connection(TokioIo::new(stream), service);
    // Timing out drops the connection future, which closes the socket.
    let _ = tokio::time::timeout(limits.connection_timeout, conn).await;
}

async fn respond(
    req: hyper::Request<Incoming>,
    router: Arc<dyn Router>,
    limits: Limits,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, limits.max_body_bytes).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            let msg = format!("request body over {} bytes", limits.max_body_bytes);
            return to_hyper(Response::error(StatusCode::PAYLOAD_TOO_LARGE, &msg).into_http());
        }
    };
    let req = Request::from_parts(parts, body);
    let resp = tokio::task::spawn_blocking(move || router.handle(&req))
        .await
        .unwrap_or_else(|_| {
            Response::error(StatusCode::INTERNAL_SERVER_ERROR, "handler failed").into_http()
        });
    to_hyper(resp)
}

fn to_hyper(r: hyper::Response<Vec<u8>>) -> hyper::Response<Full<Bytes>> {
    r.map(|b| Full::new(Bytes::from(b)))
}
