//! Request routing, parameter parsing, errors and CORS for [`Issuer`].

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use serde::Deserialize;

use super::fleet::NoNode;
use super::mint::{Target, check_user, mint, render};
use super::{Issuer, MAX_BODY, MAX_NODE_NAME};

/// The JSON body of `POST /v1/ice-servers`; every field optional.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PostBody {
    ttl: Option<u64>,
    user: Option<String>,
    node: Option<String>,
}

/// What a request asks for, once parsed.
#[derive(Default)]
struct Ask {
    ttl: Option<u64>,
    user: Option<String>,
    /// A `[[cluster.nodes]]` name to prefer (see `fleet`).
    node: Option<String>,
}

/// Seconds a client is asked to wait after a 503 (two fleet reads).
const RETRY_AFTER_NO_NODE: &str = "2";

/// Which route a path names.
#[derive(Clone, Copy)]
enum Route {
    /// `POST /v1/ice-servers` (JSON body, 201).
    Post,
    /// `GET /ice?username=…&ttl=…` (query, 200).
    Get,
    /// `GET /v1/nodes`: the fleet as the issuer sees it.
    Nodes,
}

impl Route {
    fn method(self) -> Method {
        match self {
            Self::Post => Method::POST,
            Self::Get | Self::Nodes => Method::GET,
        }
    }
}

pub(super) fn route(issuer: &Issuer, req: &Request<Bytes>, now: u64) -> Response<Vec<u8>> {
    let route = match req.uri().path() {
        "/v1/ice-servers" => Route::Post,
        "/ice" => Route::Get,
        "/v1/nodes" => Route::Nodes,
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                "no such path; use POST /v1/ice-servers, GET /ice or GET /v1/nodes",
            );
        }
    };
    if req.method() == Method::OPTIONS {
        return preflight(&issuer.settings.allowed_origins, req, route);
    }
    if req.method() != route.method() {
        let mut resp = error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("use {} for this path", route.method()),
        );
        let allow = HeaderValue::from_static(match route {
            Route::Post => "POST, OPTIONS",
            Route::Get | Route::Nodes => "GET, OPTIONS",
        });
        resp.headers_mut().insert(header::ALLOW, allow);
        return resp;
    }
    let Some(token) = issuer.authenticate(req) else {
        let mut resp = error(
            StatusCode::UNAUTHORIZED,
            "missing or unknown bearer token; send \"Authorization: Bearer <token>\" \
             with a token from issuer.token_file",
        );
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"tern\""),
        );
        return resp;
    };
    if !issuer.allow(token, now) {
        let mut resp = error(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "rate limit of {} requests per second for this token (issuer.requests_per_sec_per_token)",
                issuer.settings.rate_per_sec
            ),
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return resp;
    }
    if req.body().len() > MAX_BODY {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("body is over {MAX_BODY} bytes"),
        );
    }
    let ask = match route {
        Route::Post => parse_body(req.body()),
        Route::Get => parse_query(req.uri().query().unwrap_or("")),
        Route::Nodes => return nodes(issuer),
    };
    let status = match route {
        Route::Post => StatusCode::CREATED,
        Route::Get | Route::Nodes => StatusCode::OK,
    };
    let ask = match ask.and_then(|ask| check(issuer, ask)) {
        Ok(ask) => ask,
        Err(msg) => return error(StatusCode::BAD_REQUEST, &msg),
    };
    match issue(issuer, &ask, now) {
        Ok(body) => {
            tracing::debug!(token_line = token + 1, "issuer: credential issued");
            json(status, body)
        }
        Err(why) => no_node(&why),
    }
}

/// Checks the ask against the limits; the ttl filled in.
fn check(issuer: &Issuer, mut ask: Ask) -> Result<Ask, String> {
    let s = &issuer.settings;
    let ttl = ask.ttl.unwrap_or(s.default_ttl);
    if ttl == 0 {
        return Err("ttl is 0; ask for at least 1 second".to_owned());
    }
    if ttl > s.max_ttl {
        return Err(format!(
            "ttl {ttl} is above the maximum of {} seconds (issuer.max_ttl_secs)",
            s.max_ttl
        ));
    }
    if let Some(user) = &ask.user {
        check_user(user)?;
    }
    if let Some(node) = &ask.node
        && (node.len() > MAX_NODE_NAME || node.chars().any(char::is_control))
    {
        return Err(format!(
            "node is not a node name (at most {MAX_NODE_NAME} printable characters)"
        ));
    }
    ask.ttl = Some(ttl);
    Ok(ask)
}

/// Picks the target (a fleet node, or the configured URLs) and mints.
fn issue(issuer: &Issuer, ask: &Ask, now: u64) -> Result<Vec<u8>, NoNode> {
    let s = &issuer.settings;
    let target = match &issuer.fleet {
        None => Target {
            stun_urls: &s.stun_urls,
            turn_urls: &s.turn_urls,
            node: None,
        },
        Some(fleet) => match fleet.pick(ask.node.as_deref()) {
            Ok(n) => Target {
                stun_urls: &n.stun_urls,
                turn_urls: &n.turn_urls,
                node: Some(&n.name),
            },
            Err(why) => return Err(why),
        },
    };
    // invariant: `check` filled in the ttl.
    let ttl = ask.ttl.unwrap_or(s.default_ttl);
    let grant = mint(s.secret.expose(), ask.user.as_deref(), ttl, now);
    Ok(render(&grant, &target))
}

/// 503 with `Retry-After`, naming each node's state.
fn no_node(why: &NoNode) -> Response<Vec<u8>> {
    tracing::debug!(nodes = %why.0, "issuer: 503, no usable cluster node");
    let msg = format!(
        "no TURN node can take new allocations now ({}); retry shortly, and check \
         the nodes' /readyz and the issuer's GET /v1/nodes",
        why.0
    );
    let mut resp = error(StatusCode::SERVICE_UNAVAILABLE, &msg);
    resp.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_NO_NODE),
    );
    resp
}

/// `GET /v1/nodes`: every node's health, load and last error.
fn nodes(issuer: &Issuer) -> Response<Vec<u8>> {
    let Some(fleet) = &issuer.fleet else {
        return error(
            StatusCode::NOT_FOUND,
            "this issuer has no [[cluster.nodes]]; it hands out issuer.urls",
        );
    };
    let body = serde_json::json!({ "nodes": fleet.report(), "refused": fleet.refused() });
    json(StatusCode::OK, body.to_string().into_bytes())
}

fn parse_body(body: &[u8]) -> Result<Ask, String> {
    let parsed: PostBody = if body.iter().all(u8::is_ascii_whitespace) {
        PostBody::default()
    } else {
        serde_json::from_slice(body).map_err(|e| {
            format!("body is not valid JSON of the form {{\"ttl\":3600,\"user\":\"alice\"}}: {e}")
        })?
    };
    Ok(Ask {
        ttl: parsed.ttl,
        user: parsed.user,
        node: parsed.node,
    })
}

/// `username`, `ttl`, `node` and `service` (must be "turn" if present);
/// other parameters (cache busters, STUNner's `iceTransportPolicy`) are
/// ignored.
fn parse_query(query: &str) -> Result<Ask, String> {
    let mut ask = Ask::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v)
            .ok_or_else(|| format!("query parameter {k} is not valid percent-encoded UTF-8"))?;
        match k {
            "username" => ask.user = Some(v),
            "node" => ask.node = Some(v),
            "ttl" => {
                let ttl = v
                    .parse()
                    .map_err(|_| format!("ttl {v:?} is not a whole number of seconds"))?;
                ask.ttl = Some(ttl);
            }
            "service" if v != "turn" => {
                return Err(format!("service {v:?} is not supported; use service=turn"));
            }
            _ => {}
        }
    }
    Ok(ask)
}

/// Decodes `%XX` escapes and `+` (form encoding) in a query value.
fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hi = char::from(bytes.next()?).to_digit(16)?;
                let lo = char::from(bytes.next()?).to_digit(16)?;
                // Both digits are < 16, so this fits in a byte.
                out.push((hi * 16 + lo) as u8);
            }
            b'+' => out.push(b' '),
            _ => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

/// Answers a CORS preflight: 204 with the allowed methods and headers for
/// an allowed origin, 403 otherwise.
fn preflight(allowed: &[String], req: &Request<Bytes>, route: Route) -> Response<Vec<u8>> {
    if origin_allowed(allowed, req).is_none() {
        return error(
            StatusCode::FORBIDDEN,
            "origin not allowed; add it to issuer.allowed_origins",
        );
    }
    let mut resp = Response::new(Vec::new());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    let h = resp.headers_mut();
    let methods = match route {
        Route::Post => "POST, OPTIONS",
        Route::Get | Route::Nodes => "GET, OPTIONS",
    };
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(methods),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    resp
}

/// Adds `Access-Control-Allow-Origin` (and `Vary: Origin`) when the
/// request's Origin is in `allowed`; with an empty list, nothing.
pub(super) fn add_cors(allowed: &[String], req: &Request<Bytes>, resp: &mut Response<Vec<u8>>) {
    if allowed.is_empty() {
        return;
    }
    let h = resp.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = origin_allowed(allowed, req) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    }
}

/// The request's Origin header if it is exactly one of `allowed`.
fn origin_allowed<'r>(allowed: &[String], req: &'r Request<Bytes>) -> Option<&'r HeaderValue> {
    let origin = req.headers().get(header::ORIGIN)?;
    let text = origin.to_str().ok()?;
    allowed.iter().any(|a| a == text).then_some(origin)
}

fn json(status: StatusCode, body: Vec<u8>) -> Response<Vec<u8>> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `{"error":"…"}` with `status`.
fn error(status: StatusCode, message: &str) -> Response<Vec<u8>> {
    let body = serde_json::json!({ "error": message })
        .to_string()
        .into_bytes();
    json(status, body)
}
