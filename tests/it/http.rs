//! A minimal HTTP/1.1 server for tests: one thread, one request per
//! connection (`Connection: close`), handing `http::Request<Bytes>` to a
//! handler. Just enough to serve a page, the credential issuer and a
//! result POST to a browser on 127.0.0.1; the real server is `src/admin`.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};

/// Largest header block or body read.
const MAX_REQUEST: usize = 64 * 1024;

pub(crate) type Handler = dyn Fn(Request<Bytes>) -> Response<Vec<u8>> + Send + Sync;

/// A server on 127.0.0.1:0; stops on drop.
pub(crate) struct HttpServer {
    pub(crate) addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl HttpServer {
    pub(crate) fn start(handler: Box<Handler>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::spawn(move || {
            // Blocking accept; `drop` wakes it with a connection of its own.
            for conn in listener.incoming() {
                if flag.load(Ordering::Relaxed) {
                    return;
                }
                if let Ok(conn) = conn {
                    let _ = serve_one(conn, &*handler);
                }
            }
        });
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_one(conn: TcpStream, handler: &Handler) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let req = match read_request(&mut reader) {
        Some(req) => req,
        None => return write_response(conn, &bad_request()),
    };
    write_response(conn, &handler(req))
}

fn read_request(reader: &mut impl BufRead) -> Option<Request<Bytes>> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?, parts.next()?);
    let mut builder = Request::builder().method(method).uri(target);
    let mut length = 0usize;
    let mut total = line.len();
    loop {
        line.clear();
        total += reader.read_line(&mut line).ok()?;
        if total > MAX_REQUEST {
            return None;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (name, value) = l.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().ok()?;
        }
        builder = builder.header(name, value);
    }
    if length > MAX_REQUEST {
        return None;
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    builder.body(Bytes::from(body)).ok()
}

fn bad_request() -> Response<Vec<u8>> {
    let mut r = Response::new(b"bad request".to_vec());
    *r.status_mut() = http::StatusCode::BAD_REQUEST;
    r
}

fn write_response(mut conn: TcpStream, resp: &Response<Vec<u8>>) -> std::io::Result<()> {
    let status = resp.status();
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        resp.body().len()
    );
    for (name, value) in resp.headers() {
        head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap_or("")));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())?;
    conn.write_all(resp.body())?;
    conn.flush()
}
