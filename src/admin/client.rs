//! A tiny HTTP/1.1 client for `tern ctl`, the tests and the credential
//! issuer's fleet poller: one request per connection (`Connection: close`),
//! the response read to EOF (at most [`MAX_RESPONSE`] bytes, or the
//! caller's cap) within a timeout. [`request`] blocks; [`request_async`]
//! is the same exchange on tokio, for code already on a runtime.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Largest response accepted (a big `/v1/allocations` list fits).
pub const MAX_RESPONSE: u64 = 64 * 1024 * 1024;

/// A parsed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// The first header called `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `method path` to `addr` with an optional bearer token.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    timeout: Duration,
) -> std::io::Result<HttpResponse> {
    let raw = exchange(addr, head(addr, method, path, token).as_bytes(), timeout)?;
    parse(&raw).ok_or_else(|| not_http(addr))
}

/// [`request`] on tokio: connect, write and read, all within `timeout`
/// (a dead or stalled peer costs at most that), the response capped at
/// `max_bytes`.
pub async fn request_async(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    timeout: Duration,
    max_bytes: u64,
) -> std::io::Result<HttpResponse> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(head(addr, method, path, token).as_bytes())
            .await?;
        let mut out = Vec::new();
        s.take(max_bytes).read_to_end(&mut out).await?;
        Ok::<_, std::io::Error>(out)
    };
    let raw = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {timeout:?}"),
            )
        })??;
    parse(&raw).ok_or_else(|| not_http(addr))
}

/// The request head: no body, `Connection: close`, the bearer token if any.
fn head(addr: SocketAddr, method: &str, path: &str, token: Option<&str>) -> String {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: 0\r\n"
    );
    if let Some(t) = token {
        head.push_str(&format!("authorization: Bearer {t}\r\n"));
    }
    head.push_str("\r\n");
    head
}

fn not_http(addr: SocketAddr) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("{addr} did not answer with HTTP/1.1"),
    )
}

/// Writes `bytes`, then reads until the server closes (or `timeout`).
pub fn exchange(addr: SocketAddr, bytes: &[u8], timeout: Duration) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(bytes)?;
    let mut out = Vec::new();
    s.take(MAX_RESPONSE).read_to_end(&mut out)?;
    Ok(out)
}

/// Parses status line, headers and body (by content-length, else to EOF).
pub fn parse(raw: &[u8]) -> Option<HttpResponse> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let mut parts = status_line.splitn(3, ' ');
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let status = parts.next()?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = &raw[split + 4..];
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    if let Some(n) = len {
        body = body.get(..n)?;
    }
    Some(HttpResponse {
        status,
        headers,
        body: String::from_utf8_lossy(body).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_responses() {
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\nokEXTRA").unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, "ok");
        assert_eq!(r.header("x-a"), Some("b"));
        assert!(parse(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nshort").is_none());
        assert!(parse(b"SSH-2.0\r\n\r\n").is_none());
        assert!(parse(b"").is_none());
    }
}
