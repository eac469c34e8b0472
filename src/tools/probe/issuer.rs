//! A credential from tern's issuer (`POST /v1/ice-servers`, see
//! `crate::issuer`): a tiny blocking HTTP/1.1 client over a std
//! `TcpStream`. Plain `http://` only; put the issuer behind a TLS proxy
//! for the open internet and probe it from inside, or mint the credential
//! locally with `--rest-secret`.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::secret::Secret;

/// Largest response read (the issuer's answer is well under 2 KiB).
const MAX_RESPONSE: u64 = 64 * 1024;
const TIMEOUT: Duration = Duration::from_secs(5);

/// Lifetime asked for: the probe needs the credential for seconds.
const TTL_SECS: u64 = 600;

/// The first bearer token in `path` (one per line; blank lines and `#`
/// comments skipped, as `issuer.token_file` is read).
pub fn read_token(path: &Path) -> Result<Secret<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--token-file {}: {e}", path.display()))?;
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| Secret::new(l.to_owned()))
        .ok_or_else(|| format!("--token-file {}: no token in it", path.display()))
}

/// POSTs `{"ttl":600,"user":USER}` to `url` (`http://HOST:PORT`, with or
/// without the `/v1/ice-servers` path) and returns the TURN username and
/// credential from the answer.
pub fn fetch(
    url: &str,
    token: &Secret<String>,
    user: &str,
) -> Result<(String, Secret<String>), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!("--issuer {url:?}: expected http://HOST:PORT (only plain HTTP is supported)")
    })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let path = match path.trim_end_matches('/') {
        "" => "/v1/ice-servers",
        p => p,
    };
    let addr = authority
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("--issuer {url:?}: cannot resolve {authority:?} (HOST:PORT)"))?;
    let body = serde_json::json!({ "ttl": TTL_SECS, "user": user }).to_string();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        token.expose(),
        body.len()
    );
    let mut tcp = TcpStream::connect_timeout(&addr, TIMEOUT)
        .map_err(|e| format!("issuer {addr}: cannot connect: {e}"))?;
    let _ = tcp.set_read_timeout(Some(TIMEOUT));
    tcp.write_all(request.as_bytes())
        .map_err(|e| format!("issuer {addr}: {e}"))?;
    let response =
        read_response(&mut tcp).map_err(|e| format!("issuer {addr}: reading the answer: {e}"))?;
    parse(&response).map_err(|e| format!("issuer {url}: {e}"))
}

/// Reads until the body named by Content-Length is complete, or the
/// server closes (a keep-alive server is not waited on), at most
/// [`MAX_RESPONSE`] bytes.
fn read_response(tcp: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tcp.read(&mut chunk)?;
        if n == 0 {
            return Ok(response);
        }
        response.extend_from_slice(&chunk[..n]);
        if response.len() as u64 >= MAX_RESPONSE {
            return Ok(response);
        }
        if let Some(total) = complete_len(&response) {
            if response.len() >= total {
                return Ok(response);
            }
        }
    }
}

/// Header block plus Content-Length, once the header block is in.
fn complete_len(response: &[u8]) -> Option<usize> {
    let head_end = response.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&response[..head_end]).ok()?;
    let len = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    })?;
    Some(head_end + len)
}

/// The TURN username and credential of an HTTP response from the issuer.
fn parse(response: &[u8]) -> Result<(String, Secret<String>), String> {
    let text = std::str::from_utf8(response).map_err(|_| "the answer is not UTF-8")?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or("the answer has no HTTP header block")?;
    let status = head.split(' ').nth(1).unwrap_or("");
    if head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    }) {
        return Err("chunked answers are not supported (expected Content-Length)".to_owned());
    }
    if status != "201" && status != "200" {
        let why = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| body.chars().take(200).collect());
        let hint = if status == "401" {
            " (is the token in --token-file one of issuer.token_file's?)"
        } else {
            ""
        };
        return Err(format!("HTTP {status}: {why}{hint}"));
    }
    let v: Value =
        serde_json::from_str(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
    let servers = v["iceServers"]
        .as_array()
        .ok_or("no iceServers in the answer")?;
    servers
        .iter()
        .find_map(|s| {
            let user = s["username"].as_str()?;
            let cred = s["credential"].as_str()?;
            Some((user.to_owned(), Secret::new(cred.to_owned())))
        })
        .ok_or_else(|| "no iceServers entry with a username and credential".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_turn_entry() {
        let body = r#"{"iceServers":[{"urls":["stun:h"]},{"urls":["turn:h"],"username":"9:u","credential":"c"}],"ttl":600}"#;
        let resp = format!(
            "HTTP/1.1 201 Created\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let (u, c) = parse(resp.as_bytes()).unwrap();
        assert_eq!((u.as_str(), c.expose().as_str()), ("9:u", "c"));
    }

    #[test]
    fn a_complete_answer_is_known_by_its_length() {
        let head = b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n";
        assert_eq!(complete_len(head), Some(head.len() + 2));
        assert_eq!(complete_len(b"HTTP/1.1 201 Created\r\n"), None);
    }

    #[test]
    fn errors_say_what_the_issuer_said() {
        let body = r#"{"error":"missing or unknown bearer token"}"#;
        let resp = format!("HTTP/1.1 401 Unauthorized\r\n\r\n{body}");
        let e = parse(resp.as_bytes()).unwrap_err();
        assert!(
            e.contains("401") && e.contains("unknown bearer token"),
            "{e}"
        );
        assert!(parse(b"garbage").is_err());
    }
}
