//! The request path: normalise, route, run the route's filters, then answer locally or
//! forward upstream (load balancing, retries, timeouts, mirrors, header mutations).

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;

use crate::body::Body;
use crate::config::{ConnectionSettings, EscapedSlashes, HttpListener, ProxyConfig};
use crate::router::action::{split_port, Action, Forward, HeaderOps, HostRewrite};
use crate::router::matcher::RequestView;
use crate::router::{Route, RouteTable, VirtualHost};
use crate::stats::Stats;
use crate::upstream::{Cluster, Endpoint};

/// Largest request body buffered so a request can be retried or mirrored (Envoy's default
/// per-request buffer limit is similar); larger bodies are streamed, without retries.
const MAX_REPLAY_BODY: usize = 1024 * 1024;

/// What the proxy knows about the downstream connection of a request.
#[derive(Debug, Clone)]
pub struct Downstream {
    /// The client's address (from the PROXY protocol header when there was one).
    pub remote: SocketAddr,
    /// `http` or `https`.
    pub scheme: &'static str,
}

/// The routing decision for a request, available to filters in its extensions.
#[derive(Clone)]
pub struct RouteContext {
    config: Arc<ProxyConfig>,
    table: Arc<RouteTable>,
    vhost: usize,
    route: usize,
    listener: Arc<HttpListener>,
    downstream: Downstream,
    /// The normalised path (with query) the route was matched on.
    path: Arc<str>,
}

impl std::fmt::Debug for RouteContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteContext")
            .field("virtual_host", &self.virtual_host().name())
            .field("route", &self.route().name())
            .finish_non_exhaustive()
    }
}

impl RouteContext {
    /// The virtual host.
    pub fn virtual_host(&self) -> &VirtualHost {
        &self.table.virtual_hosts()[self.vhost]
    }

    /// The route.
    pub fn route(&self) -> &Route {
        &self.virtual_host().routes()[self.route]
    }

    /// The downstream connection.
    pub fn downstream(&self) -> &Downstream {
        &self.downstream
    }
}

/// Shared state of the request path.
#[derive(Debug)]
pub struct Proxy {
    config: tokio::sync::watch::Receiver<Arc<ProxyConfig>>,
    stats: Arc<Stats>,
    access_log: bool,
}

impl Proxy {
    /// A proxy serving whatever `config` holds.
    pub fn new(
        config: tokio::sync::watch::Receiver<Arc<ProxyConfig>>,
        stats: Arc<Stats>,
        access_log: bool,
    ) -> Self {
        Proxy {
            config,
            stats,
            access_log,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<ProxyConfig> {
        self.config.borrow().clone()
    }

    /// The statistics.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Handles one request received on `listener` (the listener's current version is used
    /// when it still exists).
    pub async fn handle(
        &self,
        req: Request<hyper::body::Incoming>,
        listener: &Arc<HttpListener>,
        downstream: &Downstream,
    ) -> Response<Body> {
        let started = Instant::now();
        let config = self.config();
        let listener = config
            .listeners
            .iter()
            .find(|l| l.name == listener.name)
            .unwrap_or(listener)
            .clone();
        let method = req.method().clone();
        let version = req.version();
        let original_path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default();
        self.stats.downstream.rq_total.inc();
        let mut response =
            route_and_serve(config, listener.clone(), downstream, req.map(Body::from)).await;
        finalize(&mut response, &listener.settings);
        // The answer speaks the client's protocol, whatever the upstream spoke.
        *response.version_mut() = version;
        let status = response.status().as_u16();
        let d = &self.stats.downstream;
        match status {
            200..=299 => d.rq_2xx.inc(),
            300..=399 => d.rq_3xx.inc(),
            400..=499 => d.rq_4xx.inc(),
            _ => d.rq_5xx.inc(),
        }
        d.rq_time.record(started.elapsed());
        if self.access_log {
            tracing::info!(
                target: "gloo_proxy::access",
                "{} {method} {original_path} {status} {}ms",
                downstream.remote,
                started.elapsed().as_millis()
            );
        }
        response
    }
}

/// Sets the `server` header, as Envoy's connection manager does.
fn finalize(response: &mut Response<Body>, settings: &ConnectionSettings) {
    if !settings.pass_through_server || !response.headers().contains_key(header::SERVER) {
        response
            .headers_mut()
            .insert(header::SERVER, settings.server_name.clone());
    }
}

/// A local answer: status and a plain-text body (empty for none).
pub fn local_reply(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    if !body.is_empty() {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    }
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    response
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Normalises the path as the connection manager is configured to: escaped slashes,
/// RFC 3986 dot segments (with `%2e` read as `.`, and percent-encoded unreserved characters
/// decoded), merged slashes. The query is kept as is. `Err` means "answer 400".
pub fn normalize_path<'a>(
    path_and_query: &'a str,
    settings: &ConnectionSettings,
) -> Result<Cow<'a, str>, StatusCode> {
    if !path_and_query.starts_with('/') {
        return Err(StatusCode::BAD_REQUEST);
    }
    let (path, query) = match path_and_query.find('?') {
        Some(i) => (&path_and_query[..i], &path_and_query[i..]),
        None => (path_and_query, ""),
    };
    let mut path: Cow<'_, str> = Cow::Borrowed(path);
    let lower = path.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") {
        match settings.escaped_slashes {
            EscapedSlashes::Keep => {}
            EscapedSlashes::Reject => return Err(StatusCode::BAD_REQUEST),
            EscapedSlashes::UnescapeAndForward | EscapedSlashes::UnescapeAndRedirect => {
                let bytes = path.as_bytes();
                let mut out = Vec::with_capacity(bytes.len());
                let mut i = 0;
                while i < bytes.len() {
                    if bytes[i] == b'%' && i + 2 < bytes.len() {
                        match (bytes[i + 1], bytes[i + 2].to_ascii_lowercase()) {
                            (b'2', b'f') => {
                                out.push(b'/');
                                i += 3;
                                continue;
                            }
                            (b'5', b'c') => {
                                out.push(b'\\');
                                i += 3;
                                continue;
                            }
                            _ => {}
                        }
                    }
                    out.push(bytes[i]);
                    i += 1;
                }
                path = Cow::Owned(String::from_utf8_lossy(&out).into_owned());
            }
        }
    }
    if settings.normalize_path {
        let needs = path.contains("/.") || path.contains('%');
        if needs {
            // Decode percent-encoded unreserved characters (so `%2e` is a dot).
            let bytes = path.as_bytes();
            let mut out = Vec::with_capacity(bytes.len());
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'%' && i + 2 < bytes.len() {
                    if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                        let c = h << 4 | l;
                        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
                            out.push(c);
                        } else {
                            // Other escapes keep their meaning, with upper-case hex digits.
                            out.extend_from_slice(&[
                                b'%',
                                bytes[i + 1].to_ascii_uppercase(),
                                bytes[i + 2].to_ascii_uppercase(),
                            ]);
                        }
                        i += 3;
                        continue;
                    }
                }
                out.push(bytes[i]);
                i += 1;
            }
            let decoded = String::from_utf8_lossy(&out);
            path = Cow::Owned(remove_dot_segments(&decoded));
        }
    }
    if settings.merge_slashes && path.contains("//") {
        let mut out = String::with_capacity(path.len());
        let mut last_slash = false;
        for c in path.chars() {
            if c == '/' && last_slash {
                continue;
            }
            last_slash = c == '/';
            out.push(c);
        }
        path = Cow::Owned(out);
    }
    Ok(match path {
        Cow::Borrowed(_) => Cow::Borrowed(path_and_query),
        Cow::Owned(p) => Cow::Owned(p + query),
    })
}

/// RFC 3986 section 5.2.4.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let mut trailing_slash = false;
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => trailing_slash = i == last,
            ".." => {
                out.pop();
                trailing_slash = i == last;
            }
            s => {
                out.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut result = String::with_capacity(path.len());
    for s in &out {
        result.push('/');
        result.push_str(s);
    }
    if trailing_slash || result.is_empty() {
        result.push('/');
    }
    result
}

/// The authority of a request: the URI's (HTTP/2, absolute form) or the Host header.
fn authority(req: &Request<Body>) -> Option<String> {
    if let Some(a) = req.uri().authority() {
        return Some(a.as_str().to_string());
    }
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
}

async fn route_and_serve(
    config: Arc<ProxyConfig>,
    listener: Arc<HttpListener>,
    downstream: &Downstream,
    req: Request<Body>,
) -> Response<Body> {
    let settings = &listener.settings;
    let Some(authority) = authority(&req) else {
        return local_reply(StatusCode::BAD_REQUEST, "missing host header");
    };
    let raw_path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let path: Arc<str> = match normalize_path(raw_path, settings) {
        Ok(p) => p.as_ref().into(),
        Err(status) => return local_reply(status, ""),
    };
    if settings.escaped_slashes == EscapedSlashes::UnescapeAndRedirect && *path != *raw_path {
        let mut r = local_reply(StatusCode::TEMPORARY_REDIRECT, "");
        if let Ok(v) = HeaderValue::from_str(&path) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        return r;
    }
    let Some(table) = config.route_table(&listener).cloned() else {
        return local_reply(StatusCode::NOT_FOUND, "");
    };
    let method = req.method().as_str().to_string();
    let view = RequestView {
        method: &method,
        authority: &authority,
        path: &path,
        scheme: downstream.scheme,
        headers: req.headers(),
    };
    let Some(vhost) = table.virtual_host(view.authority) else {
        return local_reply(StatusCode::NOT_FOUND, "");
    };
    let Some((route_index, route)) = vhost.find(&view) else {
        return local_reply(StatusCode::NOT_FOUND, "");
    };
    let vhost_index = table
        .virtual_hosts()
        .iter()
        .position(|v| std::ptr::eq(v, vhost))
        .unwrap_or(0);
    match route.action() {
        Action::Direct(d) => {
            let mut response = Response::new(Body::full(d.body.clone()));
            *response.status_mut() = d.status;
            if !d.body.is_empty() {
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            }
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(d.body.len()));
            apply_response_headers(response.headers_mut(), None, route, vhost, &table);
            response
        }
        Action::Redirect(r) => {
            let location = r.location(
                downstream.scheme,
                &authority,
                &path,
                route.matched_prefix_len(),
            );
            let mut response = local_reply(r.status(), "");
            if let Ok(v) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, v);
            }
            apply_response_headers(response.headers_mut(), None, route, vhost, &table);
            response
        }
        Action::Forward(_) => {
            let ctx = RouteContext {
                config: config.clone(),
                table: table.clone(),
                vhost: vhost_index,
                route: route_index,
                listener: listener.clone(),
                downstream: downstream.clone(),
                path,
            };
            let stack = config
                .stacks
                .get(&listener.name)
                .and_then(|s| s.get(&(vhost_index, route_index)))
                .cloned();
            match stack {
                Some(service) => {
                    let mut req = req;
                    req.extensions_mut().insert(ctx);
                    use tower::ServiceExt;
                    match service.oneshot(req).await {
                        Ok(r) => r,
                        Err(never) => match never {},
                    }
                }
                None => forward(req, &ctx).await,
            }
        }
    }
}

fn apply_response_headers(
    headers: &mut HeaderMap,
    target: Option<&HeaderOps>,
    route: &Route,
    vhost: &VirtualHost,
    table: &RouteTable,
) {
    // Envoy's default order: the most specific level first, so the enclosing levels win.
    if let Some(t) = target {
        t.apply_response(headers);
    }
    route.headers().apply_response(headers);
    vhost.headers().apply_response(headers);
    table.headers().apply_response(headers);
}

/// Headers that describe one hop and are never forwarded.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "upgrade"
            | "te"
            | "trailer"
            | "proxy-authenticate"
            | "http2-settings"
    )
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Headers named by `Connection` are hop-by-hop too.
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().to_ascii_lowercase().as_bytes()).ok())
        .collect();
    for n in named {
        headers.remove(n);
    }
    let te_trailers = headers
        .get(header::TE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
        });
    let hop: Vec<HeaderName> = headers
        .keys()
        .filter(|n| is_hop_by_hop(n))
        .cloned()
        .collect();
    for n in hop {
        headers.remove(n);
    }
    if te_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

fn is_websocket_upgrade(req: &Request<Body>) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The request as it leaves for the upstream, minus its body and target.
struct Outgoing {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Option<Bytes>,
    cluster: Arc<Cluster>,
    target_headers: Option<HeaderOps>,
}

/// The inner service of every filter stack: forwards a request whose [`RouteContext`] is in
/// its extensions.
#[derive(Debug, Clone, Copy, Default)]
pub struct ForwardService;

impl tower::Service<Request<Body>> for ForwardService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        Box::pin(async move {
            match req.extensions_mut().remove::<RouteContext>() {
                Some(ctx) => Ok(forward(req, &ctx).await),
                None => Ok(local_reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "no route context",
                )),
            }
        })
    }
}

fn forward_action(ctx: &RouteContext) -> Option<&Forward> {
    match ctx.route().action() {
        Action::Forward(f) => Some(f),
        _ => None,
    }
}

/// Forwards a routed request upstream and returns the answer (or a local error reply).
pub async fn forward(mut req: Request<Body>, ctx: &RouteContext) -> Response<Body> {
    let Some(action) = forward_action(ctx) else {
        return local_reply(StatusCode::INTERNAL_SERVER_ERROR, "");
    };
    let route = ctx.route();
    let vhost = ctx.virtual_host();
    let settings = &ctx.listener.settings;
    let Some((cluster_name, target_headers)) = action.clusters.pick(req.headers()) else {
        return local_reply(StatusCode::SERVICE_UNAVAILABLE, "");
    };
    let Some(cluster) = ctx.config.clusters.get(cluster_name).cloned() else {
        // Envoy: cluster not found (NC).
        return local_reply(StatusCode::SERVICE_UNAVAILABLE, "");
    };
    let target_headers = target_headers.cloned();
    let websocket = is_websocket_upgrade(&req);
    let downstream_upgrade = websocket.then(|| hyper::upgrade::on(&mut req));

    // Request headers: hop-by-hop out, forwarding headers in, then the configured mutations.
    let authority = authority(&req).unwrap_or_default();
    let (parts, body) = req.into_parts();
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    if websocket {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    }
    if !headers.contains_key(header::HOST) {
        if let Ok(v) = HeaderValue::from_str(&authority) {
            headers.insert(header::HOST, v);
        }
    }
    if settings.use_remote_address && !settings.skip_xff_append {
        let ip = ctx.downstream.remote.ip().to_string();
        let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(existing) => format!("{existing}, {ip}"),
            None => ip,
        };
        if let Ok(v) = HeaderValue::from_str(&xff) {
            headers.insert("x-forwarded-for", v);
        }
    }
    if settings.use_remote_address || !headers.contains_key("x-forwarded-proto") {
        headers.insert(
            "x-forwarded-proto",
            HeaderValue::from_static(ctx.downstream.scheme),
        );
    }
    if settings.generate_request_id && !headers.contains_key("x-request-id") {
        headers.insert("x-request-id", request_id());
    }
    if let Some(via) = &settings.via {
        headers.append(header::VIA, via.clone());
    }
    if let Some(t) = &target_headers {
        t.apply_request(&mut headers);
    }
    route.headers().apply_request(&mut headers);
    vhost.headers().apply_request(&mut headers);
    ctx.table.headers().apply_request(&mut headers);
    let path = action
        .rewrite_path(&ctx.path, route.matched_prefix_len())
        .unwrap_or_else(|| ctx.path.to_string());
    match &action.host_rewrite {
        HostRewrite::None | HostRewrite::Auto => {}
        HostRewrite::Literal(v) => rewrite_host(&mut headers, v.clone(), action),
        HostRewrite::Header(name) => {
            if let Some(v) = headers.get(name).cloned() {
                rewrite_host(&mut headers, v, action);
            }
        }
        HostRewrite::PathRegex(regex, sub) => {
            let (p, _) = crate::router::action::split_query(&ctx.path);
            let host = regex.replace_all(p, sub.as_str()).into_owned();
            if let Ok(v) = HeaderValue::from_str(&host) {
                rewrite_host(&mut headers, v, action);
            }
        }
    }

    // Bodies are buffered only when the request may be sent more than once.
    let replayable = (action.retry.is_some() || !action.mirrors.is_empty()) && !websocket;
    let (body, buffered) = if replayable && body_fits(&headers, &body) {
        match http_body_util::Limited::new(body, MAX_REPLAY_BODY)
            .collect()
            .await
        {
            Ok(collected) => (None, Some(collected.to_bytes())),
            Err(_) => return local_reply(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
        }
    } else {
        (Some(body), None)
    };
    let outgoing = Outgoing {
        method: parts.method,
        path,
        headers,
        body: buffered,
        cluster,
        target_headers,
    };
    for mirror in &action.mirrors {
        if fastrand::u32(0..1_000_000) < mirror.per_million {
            if let (Some(shadow), Some(b)) = (
                ctx.config.clusters.get(mirror.cluster.as_ref()),
                &outgoing.body,
            ) {
                spawn_mirror(shadow.clone(), &outgoing, b.clone(), mirror);
            }
        }
    }
    let target_headers = outgoing.target_headers.clone();
    let send = send_with_retries(outgoing, body, action, downstream_upgrade);
    let mut response = match action.timeout {
        Some(t) => match tokio::time::timeout(t, send).await {
            Ok(r) => r,
            Err(_) => local_reply(StatusCode::GATEWAY_TIMEOUT, "upstream request timeout"),
        },
        None => send.await,
    };
    strip_hop_by_hop_response(&mut response);
    apply_response_headers(
        response.headers_mut(),
        target_headers.as_ref(),
        route,
        vhost,
        &ctx.table,
    );
    response
}

fn rewrite_host(headers: &mut HeaderMap, value: HeaderValue, action: &Forward) {
    if action.append_x_forwarded_host {
        if let Some(old) = headers.get(header::HOST).cloned() {
            headers.append("x-forwarded-host", old);
        }
    }
    headers.insert(header::HOST, value);
}

fn strip_hop_by_hop_response(response: &mut Response<Body>) {
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        return;
    }
    strip_hop_by_hop(response.headers_mut());
}

fn body_fits(headers: &HeaderMap, body: &Body) -> bool {
    use http_body::Body as _;
    if let Some(n) = body.size_hint().upper() {
        return n as usize <= MAX_REPLAY_BODY;
    }
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_none_or(|n| n <= MAX_REPLAY_BODY)
}

fn request_id() -> HeaderValue {
    let a = fastrand::u64(..);
    let b = fastrand::u64(..);
    // A version-4 UUID.
    let s = format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        ((b >> 48) & 0x3fff) | 0x8000,
        b & 0xffff_ffff_ffff
    );
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

fn build_request(
    out: &Outgoing,
    endpoint: &Endpoint,
    body: Body,
) -> Result<Request<Body>, http::Error> {
    let uri: Uri = format!("{}{}", endpoint.origin, out.path).parse()?;
    let mut req = Request::new(body);
    *req.method_mut() = out.method.clone();
    *req.uri_mut() = uri;
    *req.version_mut() = if out.cluster.is_http2() {
        Version::HTTP_2
    } else {
        Version::HTTP_11
    };
    *req.headers_mut() = out.headers.clone();
    if out.cluster.is_http2() {
        // HTTP/2 carries the authority in `:authority`.
        if let Some(host) = req.headers_mut().remove(header::HOST) {
            if let Ok(s) = host.to_str() {
                let uri = format!("http://{s}{}", out.path);
                if let Ok(uri) = uri.parse::<Uri>() {
                    let mut parts = uri.into_parts();
                    parts.authority = format!("{}", endpoint.address).parse().ok();
                    if let Ok(u) = Uri::from_parts(parts) {
                        *req.uri_mut() = u;
                    }
                }
                req.headers_mut().insert(header::HOST, host);
            }
        }
    }
    Ok(req)
}

fn spawn_mirror(
    shadow: Arc<Cluster>,
    out: &Outgoing,
    body: Bytes,
    mirror: &crate::router::action::Mirror,
) {
    let Some(endpoint) = shadow.pick(None) else {
        return;
    };
    let mut headers = out.headers.clone();
    let host = match &mirror.host_rewrite {
        Some(h) => Some(h.clone()),
        None if mirror.keep_host => None,
        None => headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| {
                let (name, port) = split_port(h);
                match port {
                    Some(p) => format!("{name}-shadow:{p}"),
                    None => format!("{name}-shadow"),
                }
            }),
    };
    if let Some(h) = host.and_then(|h| HeaderValue::from_str(&h).ok()) {
        headers.insert(header::HOST, h);
    }
    let copy = Outgoing {
        method: out.method.clone(),
        path: out.path.clone(),
        headers,
        body: Some(body.clone()),
        cluster: shadow.clone(),
        target_headers: None,
    };
    let Ok(req) = build_request(&copy, &endpoint, Body::full(body)) else {
        return;
    };
    tokio::spawn(async move {
        let _active = endpoint.start_request();
        shadow.stats.upstream_rq_total.inc();
        if let Ok(r) = shadow.client().request(req).await {
            shadow.stats.record_status(r.status().as_u16());
            let _ = r.into_body().collect().await;
        }
    });
}

/// The outcome of one attempt.
enum Attempt {
    Answer(Response<hyper::body::Incoming>),
    ConnectFailure,
    Reset,
    Timeout,
}

async fn attempt(
    out: &Outgoing,
    endpoint: &Arc<Endpoint>,
    body: Body,
    per_try: Option<Duration>,
) -> Attempt {
    let req = match build_request(out, endpoint, body) {
        Ok(r) => r,
        Err(_) => return Attempt::Reset,
    };
    let cluster = &out.cluster;
    cluster.stats.upstream_rq_total.inc();
    let _active = endpoint.start_request();
    let started = Instant::now();
    let call = cluster.client().request(req);
    let result = match per_try {
        Some(t) => match tokio::time::timeout(t, call).await {
            Ok(r) => r,
            Err(_) => {
                cluster.stats.upstream_rq_timeout.inc();
                cluster.record_outcome(endpoint, None);
                return Attempt::Timeout;
            }
        },
        None => call.await,
    };
    match result {
        Ok(response) => {
            cluster.stats.upstream_rq_time.record(started.elapsed());
            let status = response.status().as_u16();
            cluster.stats.record_status(status);
            cluster.record_outcome(endpoint, Some(status));
            Attempt::Answer(response)
        }
        Err(e) if e.is_connect() => {
            cluster.stats.upstream_cx_connect_fail.inc();
            cluster.record_outcome(endpoint, None);
            Attempt::ConnectFailure
        }
        Err(_) => {
            cluster.record_outcome(endpoint, None);
            Attempt::Reset
        }
    }
}

async fn send_with_retries(
    out: Outgoing,
    mut streaming_body: Option<Body>,
    action: &Forward,
    downstream_upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Response<Body> {
    let cluster = out.cluster.clone();
    let Some(_slot) = cluster.breaker.request() else {
        cluster.stats.upstream_rq_pending_overflow.inc();
        let mut r = local_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream connect error or disconnect/reset before headers. reset reason: overflow",
        );
        r.headers_mut()
            .insert("x-envoy-overloaded", HeaderValue::from_static("true"));
        return r;
    };
    let retry = action.retry.as_ref().filter(|_| out.body.is_some());
    let max_attempts = 1 + retry.map(|r| r.num_retries).unwrap_or(0);
    let per_try = retry.and_then(|r| r.per_try_timeout);
    let mut endpoint = match cluster.pick(None) {
        Some(e) => e,
        None => return local_reply(StatusCode::SERVICE_UNAVAILABLE, "no healthy upstream"),
    };
    let mut n = 0;
    loop {
        n += 1;
        let body = match (&out.body, streaming_body.take()) {
            (Some(bytes), _) => Body::full(bytes.clone()),
            (None, Some(b)) => b,
            (None, None) => Body::empty(),
        };
        let outcome = attempt(&out, &endpoint, body, per_try).await;
        let retryable = match (&outcome, retry) {
            (_, None) => false,
            (Attempt::Answer(r), Some(p)) => p.retries_status(r.status()),
            (Attempt::ConnectFailure, Some(p)) => p.retries_connect_failure(),
            (Attempt::Reset | Attempt::Timeout, Some(p)) => p.retries_reset(),
        };
        if retryable && n < max_attempts {
            if let (Some(policy), Some(_retry_slot)) = (retry, cluster.breaker.retry()) {
                cluster.stats.upstream_rq_retry.inc();
                tokio::time::sleep(policy.backoff(n)).await;
                if let Some(e) = cluster.pick_other(&endpoint.address) {
                    endpoint = e;
                }
                continue;
            }
        }
        return match outcome {
            Attempt::Answer(response) => finish_response(response, downstream_upgrade),
            Attempt::ConnectFailure => local_reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
            ),
            Attempt::Reset => local_reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "upstream connect error or disconnect/reset before headers. reset reason: connection termination",
            ),
            Attempt::Timeout => local_reply(StatusCode::GATEWAY_TIMEOUT, "upstream request timeout"),
        };
    }
}

fn finish_response(
    mut response: Response<hyper::body::Incoming>,
    downstream_upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Response<Body> {
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(downstream) = downstream_upgrade {
            let upstream = hyper::upgrade::on(&mut response);
            tokio::spawn(async move {
                let (Ok(down), Ok(up)) = (downstream.await, upstream.await) else {
                    return;
                };
                let mut down = hyper_util::rt::TokioIo::new(down);
                let mut up = hyper_util::rt::TokioIo::new(up);
                let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
            });
        }
    }
    response.map(Body::from)
}
