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
use http::uri::PathAndQuery;
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;

use crate::access_log::{LoggedRequest, Recording, ResponseFlags, StreamFacts};
use crate::body::Body;
use crate::config::{
    ConnectionSettings, EscapedSlashes, HttpListener, ProxyConfig, ServerHeader, UnderscoreHeaders,
};
use crate::router::action::{split_port, Action, Forward, HeaderContext, HeaderOps, HostRewrite};
use crate::router::hash::{hash_request, HashInput, RequestHash};
use crate::router::matcher::RequestView;
use crate::router::{Route, RouteTable, VirtualHost};
use crate::stats::Stats;
use crate::upstream::subset::MatchCriteria;
use crate::upstream::{Cluster, Endpoint};

/// Largest request body buffered so a request can be retried or mirrored (Envoy's default
/// per-request buffer limit is similar); larger bodies are streamed, without retries.
const MAX_REPLAY_BODY: usize = 1024 * 1024;

/// What the proxy knows about the downstream connection of a request.
#[derive(Debug, Clone)]
pub struct Downstream {
    /// The client's address as Envoy's connection manager settles it (its downstream remote
    /// address): the connection's [`peer`](Self::peer), or an address from `x-forwarded-for`
    /// as `use_remote_address` and `xff_num_trusted_hops` say (see [`trusted_client`]). Rate
    /// limit `remote_address` descriptors, hash policies on the source IP and the access log
    /// use it.
    pub remote: SocketAddr,
    /// The connection's peer (the PROXY protocol header's source when there was one): what
    /// `use_remote_address` appends to `x-forwarded-for`.
    pub peer: SocketAddr,
    /// The address the client connected to.
    pub local: SocketAddr,
    /// `http` or `https` (`tcp` for a TCP proxy's connection).
    pub scheme: &'static str,
    /// The certificate the client presented, on a mutual TLS connection.
    pub client_certificate: Option<Arc<crate::xfcc::ClientCertificate>>,
}

/// The routing decision for a request, available to filters in its extensions (with its
/// [`Downstream`], which is also there on requests no route matched).
#[derive(Clone)]
pub struct RouteContext {
    config: Arc<ProxyConfig>,
    table: Arc<RouteTable>,
    vhost: usize,
    route: usize,
    listener: Arc<HttpListener>,
    downstream: Downstream,
    /// The normalised path (with query) the route was matched on.
    path: PathAndQuery,
    /// The request's authority, kept when filters run (a redirect made after them needs it).
    authority: Option<String>,
    /// The request is a gRPC call (as received): its upstream's answer is marked
    /// [`FromUpstream`].
    grpc: bool,
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

    /// The configuration in force.
    #[cfg(feature = "aws-lambda")]
    pub(crate) fn config(&self) -> &Arc<ProxyConfig> {
        &self.config
    }

    /// Forwards the request with this path instead of the one it matched (a filter that turns
    /// the request into another, such as the Lambda filter's invocation, sets it). The route's
    /// path rewrites still apply to it, as Envoy's router applies them to the `:path` a filter
    /// set.
    #[cfg(feature = "aws-lambda")]
    pub(crate) fn set_path(&mut self, path: PathAndQuery) {
        self.path = path;
    }

    /// The cluster the request goes to, if the route forwards to one cluster or the weighted
    /// target was picked before the filters ran ([`PickedTarget`], in `extensions`).
    #[cfg(feature = "aws-lambda")]
    pub(crate) fn target_cluster<'a>(&'a self, extensions: &http::Extensions) -> Option<&'a str> {
        let forward = forward_action(self)?;
        match extensions.get::<PickedTarget>() {
            Some(PickedTarget(i)) => forward.clusters.weighted_target(*i).map(|(c, _, _)| c),
            None => match &forward.clusters {
                crate::router::action::ClusterChoice::Single(c) => Some(c),
                _ => None,
            },
        }
    }

    /// The normalised path the route matched (with its query).
    pub fn path(&self) -> &str {
        self.path.as_str()
    }

    /// The cluster `name` of the configuration the request is served with, if it exists.
    pub fn cluster(&self, name: &str) -> Option<&Arc<crate::upstream::Cluster>> {
        self.config.clusters.get(name)
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
    pub async fn handle<B: Into<Body>>(
        &self,
        req: Request<B>,
        listener: &Arc<HttpListener>,
        downstream: &Downstream,
    ) -> Response<Body> {
        let started = Instant::now();
        let config = self.config();
        let listener = match config.listeners.iter().find(|l| l.name == listener.name) {
            Some(current) => current.clone(),
            None => listener.clone(),
        };
        let version = req.version();
        let logged = self.access_log.then(|| {
            (
                req.method().clone(),
                req.uri()
                    .path_and_query()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_default(),
            )
        });
        self.stats.downstream.rq_total.inc();
        let mut req = req.map(Into::into);
        let mut recording = None;
        if listener.records() {
            let logs = listener
                .access_log
                .clone()
                .unwrap_or_else(crate::access_log::AccessLogs::none);
            let (started_recording, counted) = Recording::start(logs, req, downstream, started);
            recording = Some(started_recording);
            req = counted;
        }
        let settings = &listener.settings;
        // Early header mutations come first: the client address, routing and every filter
        // see their result, as in Envoy.
        if !settings.early_header_mutations.is_empty() {
            let (mut parts, body) = req.into_parts();
            let context = HeaderContext {
                downstream,
                method: parts.method.as_str(),
                authority: "",
                path: parts.uri.path_and_query().map_or("", |p| p.as_str()),
                protocol: parts.version,
                request_headers: None,
                status: 0,
            };
            settings
                .early_header_mutations
                .apply(&mut parts.headers, &context);
            req = Request::from_parts(parts, body);
        }
        // Envoy settles the client address before its filters run (and before it appends the
        // peer to `x-forwarded-for`); everything after sees that address.
        let trusted;
        let downstream = match trusted_client(req.headers(), settings, downstream.peer) {
            Some(ip) if ip != downstream.remote.ip() => {
                trusted = Downstream {
                    remote: SocketAddr::new(ip, 0),
                    ..downstream.clone()
                };
                &trusted
            }
            _ => downstream,
        };
        // What the content type makes of the request, read once: Envoy answers a gRPC call's
        // local replies in gRPC (decided on the call as received), and gRPC-Web calls take
        // the listener's stacks with the gRPC-Web filter.
        let call = CallKind::of(req.headers());
        let grpc = (call == CallKind::Grpc).then(|| *req.method() == Method::HEAD);
        let mut response = match check_request_headers(&mut req, settings) {
            Some(reply) => reply,
            // The common case awaits the routing future in place: wrapping it would copy
            // the whole (large) future once more per request.
            None if settings.request_timeout.is_none()
                && settings.max_stream_duration.is_none() =>
            {
                std::pin::pin!(route_and_serve(config, &listener, downstream, req, call)).await
            }
            None => Box::pin(serve_in_time(config, &listener, downstream, req, call)).await,
        };
        if let Some(head) = grpc {
            if response.extensions_mut().remove::<FromUpstream>().is_none() {
                response = Box::pin(grpc_local_reply(response, head)).await;
            }
        }
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
        if let Some(recording) = recording {
            response = recording.finish(response);
        }
        if let Some((method, path)) = logged {
            tracing::info!(
                target: "gloo_proxy::access",
                "{} {method} {path} {status} {}ms",
                downstream.remote,
                started.elapsed().as_millis()
            );
        }
        response
    }
}

/// The client address Envoy's connection manager settles on (its `mutateRequestHeaders`),
/// when it is not the connection's `peer`:
///
/// - with `use_remote_address`, the peer, unless `xff_num_trusted_hops` is N > 0: then the Nth
///   address from the right of `x-forwarded-for` as received (the peer is appended after);
/// - without it, the address `xff_num_trusted_hops` + 1 from the right of `x-forwarded-for`
///   (Envoy's default original IP detection), else the peer.
///
/// `None` means the peer. An entry that is not an IP address counts as absent, as in Envoy.
/// Several `x-forwarded-for` headers are read as one list, in order.
pub fn trusted_client(
    headers: &http::HeaderMap,
    settings: &ConnectionSettings,
    peer: SocketAddr,
) -> Option<std::net::IpAddr> {
    let skip = if settings.use_remote_address {
        settings.xff_num_trusted_hops.checked_sub(1)?
    } else {
        settings.xff_num_trusted_hops
    };
    let mut entries: Vec<&str> = Vec::new();
    for value in headers.get_all(&X_FORWARDED_FOR) {
        entries.extend(value.to_str().ok()?.split(','));
    }
    let index = entries.len().checked_sub(1)?.checked_sub(skip as usize)?;
    let ip: std::net::IpAddr = entries[index].trim().parse().ok()?;
    (ip != peer.ip()).then_some(ip)
}

/// Routes and serves `req` within the connection manager's clocks: `request_timeout` (the
/// whole request must have arrived in time: 408 `request timeout`; the clock stops when the
/// request body has been read, or the answer is ready) and `max_stream_duration` (the answer
/// must be ready in time: 408 `downstream duration timeout`).
async fn serve_in_time(
    config: Arc<ProxyConfig>,
    listener: &Arc<HttpListener>,
    downstream: &Downstream,
    mut req: Request<Body>,
    call: CallKind,
) -> Response<Body> {
    let settings = &listener.settings;
    let request_clock = match settings.request_timeout {
        Some(limit) if !http_body::Body::is_end_stream(req.body()) => {
            let (tracked, received) = crate::body::notify_on_end(req);
            req = tracked;
            Some((limit, received))
        }
        _ => None,
    };
    let serve = route_and_serve(config, listener, downstream, req, call);
    let serve = async {
        let Some((limit, received)) = request_clock else {
            return serve.await;
        };
        let request_deadline = async {
            tokio::select! {
                _ = received.notified() => std::future::pending::<()>().await,
                _ = tokio::time::sleep(limit) => {}
            }
        };
        tokio::select! {
            response = serve => response,
            _ = request_deadline => local_reply(StatusCode::REQUEST_TIMEOUT, "request timeout"),
        }
    };
    match settings.max_stream_duration {
        None => serve.await,
        Some(limit) => match tokio::time::timeout(limit, serve).await {
            Ok(response) => response,
            Err(_) => StreamFacts::flag(
                local_reply(StatusCode::REQUEST_TIMEOUT, "downstream duration timeout"),
                ResponseFlags::DURATION_TIMEOUT,
            ),
        },
    }
}

/// The connection manager's limits on request headers: how many (HTTP/1 requests over the
/// limit never get here: the codec answers 431 itself) and what to do with names containing
/// `_` (Envoy's `headers_with_underscores_action`).
///
/// Returns the answer for a request that may not go on.
fn check_request_headers(
    req: &mut Request<Body>,
    settings: &ConnectionSettings,
) -> Option<Response<Body>> {
    if req.headers().len() > settings.max_headers_count {
        return Some(local_reply(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "Request Header Fields Too Large",
        ));
    }
    match settings.underscore_headers {
        UnderscoreHeaders::Allow => {}
        UnderscoreHeaders::Reject => {
            if req.headers().keys().any(|k| k.as_str().contains('_')) {
                return Some(bad_request());
            }
        }
        UnderscoreHeaders::Drop => {
            let doomed: Vec<http::HeaderName> = req
                .headers()
                .keys()
                .filter(|k| k.as_str().contains('_'))
                .cloned()
                .collect();
            for name in doomed {
                req.headers_mut().remove(name);
            }
        }
    }
    None
}

/// Sets the `server` header, as Envoy's connection manager does.
fn finalize(response: &mut Response<Body>, settings: &ConnectionSettings) {
    let set = match settings.server_header {
        ServerHeader::Overwrite => true,
        ServerHeader::AppendIfAbsent => !response.headers().contains_key(header::SERVER),
        ServerHeader::PassThrough => false,
    };
    if set {
        response
            .headers_mut()
            .insert(header::SERVER, settings.server_name.clone());
    }
}

/// What a request's content type makes of it, read once per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallKind {
    /// A gRPC call (`application/grpc`, `application/grpc+...`).
    Grpc,
    /// A gRPC-Web call ([`is_grpc_web_request`](crate::builtin::is_grpc_web_request)).
    GrpcWeb,
    /// Anything else.
    Other,
}

impl CallKind {
    fn of(headers: &http::HeaderMap) -> CallKind {
        let Some(content_type) = headers.get(header::CONTENT_TYPE) else {
            return CallKind::Other;
        };
        let value = content_type.as_bytes();
        if crate::builtin::is_grpc_content_type(value) {
            CallKind::Grpc
        } else if crate::builtin::is_grpc_web_content_type(value) {
            CallKind::GrpcWeb
        } else {
            CallKind::Other
        }
    }
}

/// Marks the answer to a gRPC call that came from its upstream: the others are the proxy's
/// own, which a gRPC client gets in gRPC ([`grpc_local_reply`]).
#[derive(Debug, Clone, Copy)]
struct FromUpstream;

/// A local reply to a gRPC call, as Envoy makes one (its `sendLocalReply` for gRPC requests):
/// status 200, `content-type: application/grpc`, the HTTP status as a `grpc-status` (unless
/// the reply has one), the body as the `grpc-message` (percent-encoded, without a final
/// newline; none for HEAD), and no body: a trailers-only answer, which is what a gRPC client
/// reads its error from. The reply's other headers stay.
async fn grpc_local_reply(response: Response<Body>, head: bool) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    let text = crate::builtin::message_of(body).await;
    let headers = &mut parts.headers;
    if !headers.contains_key("grpc-status") {
        let status = crate::builtin::grpc_status_of(parts.status);
        headers.insert("grpc-status", HeaderValue::from(status));
    }
    let text = text.strip_suffix(b"\n").unwrap_or(&text);
    if !text.is_empty() && !head {
        if let Ok(message) = HeaderValue::from_str(&crate::builtin::grpc_message(text)) {
            headers.insert("grpc-message", message);
        }
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.remove(header::CONTENT_LENGTH);
    parts.status = StatusCode::OK;
    Response::from_parts(parts, Body::empty())
}

/// Marks a response a filter made itself (an abort, a refusal) as a local reply, so the
/// route's response header mutations apply to it as they do to Envoy's local replies.
///
/// ```
/// let mut response = http::Response::new(gloo_proxy::body::Body::empty());
/// response.extensions_mut().insert(gloo_proxy::proxy::LocalReply);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalReply;

/// Marks `response` a [`LocalReply`] when the filter that answered it left its marker `M` in
/// the extensions (gloo-filters' layers mark their own refusals: `JwtRejected`, `RateLimited`,
/// ext_authz's `Rejected`), so the route's response headers apply to it as to every other.
#[cfg(any(feature = "jwt", feature = "ratelimit", feature = "extauth"))]
pub(crate) fn mark_local_reply<M: Send + Sync + 'static>(
    response: Response<Body>,
) -> Response<Body> {
    mark_flagged_local_reply::<M>(response, ResponseFlags::default())
}

/// [`mark_local_reply`], with the response flags (for the access log) the filter's refusal
/// sets in Envoy: `RL` for a rate limit's, `UAEX` for external authorization's.
#[cfg(any(feature = "jwt", feature = "ratelimit", feature = "extauth"))]
pub(crate) fn mark_flagged_local_reply<M: Send + Sync + 'static>(
    mut response: Response<Body>,
    flags: ResponseFlags,
) -> Response<Body> {
    if response.extensions().get::<M>().is_some() {
        response.extensions_mut().insert(LocalReply);
        if !flags.is_empty() {
            response = StreamFacts::flag(response, flags);
        }
    }
    response
}

/// A local answer: status and a plain-text body (empty for none).
///
/// An empty answer carries no `content-length` field until it is sent (the codec writes
/// `content-length: 0`), as Envoy's local replies: filters that read the field (the
/// compressor's minimum length) see what they see in Envoy.
pub fn local_reply(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    if !body.is_empty() {
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    }
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
    let escaped_slash = path.contains('%')
        && path.as_bytes().windows(3).any(|w| {
            w[0] == b'%'
                && matches!(
                    (w[1], w[2].to_ascii_lowercase()),
                    (b'2', b'f') | (b'5', b'c')
                )
        });
    if escaped_slash {
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
        let needs = path.contains("/.") || path.contains('%') || path.contains('\\');
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
                            // Other escapes keep their meaning and their spelling.
                            out.extend_from_slice(&bytes[i..i + 3]);
                        }
                        i += 3;
                        continue;
                    }
                }
                // A backslash separates segments, as in browsers and Envoy.
                out.push(if bytes[i] == b'\\' { b'/' } else { bytes[i] });
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
        // A segment's `;parameters` do not stop it being a dot segment (as in Envoy).
        let name = seg.split(';').next().unwrap_or(seg);
        match name {
            "." => trailing_slash = i == last,
            ".." => {
                out.pop();
                trailing_slash = i == last;
            }
            _ => {
                out.push(seg);
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

/// The authority of a request: the URI's (HTTP/2, absolute form), else the Host header
/// (several Host headers are joined with `,`, as Envoy does).
fn authority(req: &Request<Body>) -> Option<Cow<'_, str>> {
    if let Some(a) = req.uri().authority() {
        return Some(Cow::Borrowed(a.as_str()));
    }
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let first = hosts.next()?.to_str().ok()?;
    match hosts.next() {
        None => Some(Cow::Borrowed(first)),
        Some(second) => {
            let mut joined = format!("{first},{}", second.to_str().ok()?);
            for h in hosts {
                joined.push(',');
                joined.push_str(h.to_str().ok()?);
            }
            Some(Cow::Owned(joined))
        }
    }
}

/// `host` without its port, when it has one (`example.com:8080`, `[::1]:8080`): a
/// [`split_port`] whose port is a number (an unbracketed IPv6 address has none).
fn without_port(host: &str) -> Option<&str> {
    match split_port(host) {
        (name, Some(port))
            if !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && (name.starts_with('[') || !name.contains(':')) =>
        {
            Some(name)
        }
        _ => None,
    }
}

/// The methods Envoy's HTTP/1 codec accepts.
fn is_known_method(method: &Method) -> bool {
    const EXTENSIONS: [&str; 26] = [
        "COPY",
        "LOCK",
        "MKCOL",
        "MOVE",
        "PROPFIND",
        "PROPPATCH",
        "SEARCH",
        "UNLOCK",
        "BIND",
        "REBIND",
        "UNBIND",
        "ACL",
        "REPORT",
        "MKACTIVITY",
        "CHECKOUT",
        "MERGE",
        "M-SEARCH",
        "NOTIFY",
        "SUBSCRIBE",
        "UNSUBSCRIBE",
        "PURGE",
        "MKCALENDAR",
        "LINK",
        "UNLINK",
        "SOURCE",
        "QUERY",
    ];
    matches!(
        *method,
        Method::GET
            | Method::HEAD
            | Method::POST
            | Method::PUT
            | Method::DELETE
            | Method::CONNECT
            | Method::OPTIONS
            | Method::TRACE
            | Method::PATCH
    ) || EXTENSIONS.contains(&method.as_str())
}

/// The 400 Envoy's codec answers for a malformed request.
fn bad_request() -> Response<Body> {
    local_reply(StatusCode::BAD_REQUEST, "Bad Request")
}

async fn route_and_serve(
    config: Arc<ProxyConfig>,
    listener: &Arc<HttpListener>,
    downstream: &Downstream,
    mut req: Request<Body>,
    call: CallKind,
) -> Response<Body> {
    let settings = &listener.settings;
    if req.version() == Version::HTTP_10 && settings.accept_http_10 {
        if let (None, Some(host)) = (
            req.headers().get(header::HOST),
            &settings.default_host_for_http_10,
        ) {
            req.headers_mut().insert(header::HOST, host.clone());
        }
    } else if req.version() == Version::HTTP_10 || req.version() == Version::HTTP_09 {
        // Envoy does not accept HTTP/1.0 unless told to, and closes the connection.
        let mut r = local_reply(StatusCode::UPGRADE_REQUIRED, "Upgrade Required");
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return StreamFacts::unparsed(r);
    }
    if !settings.allow_custom_methods && !is_known_method(req.method()) {
        return StreamFacts::unparsed(bad_request());
    }
    // Only the proxy may say which client certificate it saw, unless told otherwise.
    crate::xfcc::mutate(
        req.headers_mut(),
        settings.forward_client_cert,
        settings.client_cert_details,
        downstream.client_certificate.as_deref(),
    );
    // The request id (Envoy adds it when it edits the request's headers, before its
    // filters run: they and the access log see it too). An edge request's own id is
    // replaced unless the connection manager keeps it.
    if settings.sets_request_id(
        req.headers().contains_key(&X_REQUEST_ID),
        downstream.remote.ip(),
    ) {
        req.headers_mut().insert(X_REQUEST_ID.clone(), request_id());
    }
    // Protocol upgrades: only the configured ones; `h2c` is never passed on.
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    if upgrade.as_deref() == Some("h2c") {
        req.headers_mut().remove(header::UPGRADE);
        req.headers_mut().remove("http2-settings");
    }
    let refused_upgrade = upgrade
        .as_ref()
        .is_some_and(|kind| kind != "h2c" && !settings.upgrades.iter().any(|u| u == kind));
    // The connection manager's tracing decision follows the request id, as in Envoy; the
    // span goes with the answer to where the access log entry is written.
    let trace = listener
        .tracer
        .as_ref()
        .map(|tracer| (tracer.clone(), tracer.start(req.headers_mut())));
    let raw = req.uri().path_and_query().map(|p| p.as_str());
    let raw_path = match raw {
        Some(p) => p,
        // `OPTIONS *` routes as the path `*` (and so matches no route).
        None if req.uri() == "*" => "*",
        None => return bad_request(),
    };
    if !raw_path.is_ascii() {
        return bad_request();
    }
    if raw_path.contains('#') || raw_path.contains("%00") {
        return local_reply(StatusCode::BAD_REQUEST, "");
    }
    let Some(mut authority) = authority(&req) else {
        return local_reply(StatusCode::BAD_REQUEST, "");
    };
    if settings.strip_any_host_port {
        // Before routing, and the upstream gets the host without it too.
        if let Some(host) = without_port(&authority) {
            authority = Cow::Owned(host.to_string());
        }
    }
    let path = if raw_path == "*" {
        Cow::Borrowed("*")
    } else {
        match normalize_path(raw_path, settings) {
            Ok(p) => p,
            Err(status) => return local_reply(status, ""),
        }
    };
    if settings.escaped_slashes == EscapedSlashes::UnescapeAndRedirect && path != raw_path {
        let mut r = local_reply(StatusCode::TEMPORARY_REDIRECT, "");
        if let Ok(v) = HeaderValue::from_str(&path) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        return r;
    }
    // Only a listener with access logs (or a tracer) learns anything for them: one pointer
    // otherwise.
    let mut log = listener.records().then(|| {
        let mut facts = LogFacts::new(listener, downstream, &req, &authority, &path);
        facts.trace = trace;
        Box::new(facts)
    });
    let Some(table) = config.route_table(listener).cloned() else {
        return LogFacts::apply(
            &log,
            StreamFacts::flag(
                local_reply(StatusCode::NOT_FOUND, ""),
                ResponseFlags::NO_ROUTE_FOUND,
            ),
        );
    };
    let Some(vhost_index) = table.virtual_host_index(&authority) else {
        return LogFacts::apply(
            &log,
            std::pin::pin!(no_route(&config, listener, downstream, req, call)).await,
        );
    };
    let vhost = &table.virtual_hosts()[vhost_index];
    let view = RequestView {
        method: req.method().as_str(),
        authority: &authority,
        path: &path,
        scheme: downstream.scheme,
        headers: req.headers(),
    };
    let Some((route_index, route)) = vhost.find(&view) else {
        return LogFacts::apply(
            &log,
            std::pin::pin!(no_route(&config, listener, downstream, req, call)).await,
        );
    };
    if let Some(log) = &mut log {
        log.routed(route, &config);
    }
    let named = |response: Response<Body>| LogFacts::apply(&log, response);
    if refused_upgrade {
        // As Envoy: the route is known (its response headers apply), the upgrade is not
        // allowed, and the connection closes.
        let mut response = local_reply(StatusCode::FORBIDDEN, "");
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        let context = HeaderContext {
            downstream,
            method: req.method().as_str(),
            authority: &authority,
            path: &path,
            protocol: req.version(),
            request_headers: Some(req.headers()),
            status: 0,
        };
        apply_response_headers(&mut response, None, route, vhost, &table, Some(context));
        return named(response);
    }
    let grpc_web = call == CallKind::GrpcWeb;
    let stacks = if config.stacks.is_empty() || !listener.may_filter(grpc_web) {
        None
    } else {
        config
            .stacks
            .get(&listener.name)
            .map(|s| s.for_grpc_web(grpc_web))
            .filter(|s| !s.is_bare())
    };
    let mut stack = stacks
        .and_then(|s| s.route(vhost_index, route_index))
        .cloned();
    // Weighted targets with filter configs of their own: the target is picked now (as Envoy
    // picks it when it matches the route), so its filters run, and the request goes to it.
    let mut picked = None;
    if let (Some(targets), Action::Forward(forward)) = (
        stacks.and_then(|s| s.targets(vhost_index, route_index)),
        route.action(),
    ) {
        picked = forward.clusters.pick_weighted();
        if let Some(target_stack) = picked.and_then(|t| targets.get(&t)) {
            stack = Some(target_stack.clone());
        }
    }
    // Without filters, local answers are made here, without building a route context.
    if stack.is_none() {
        let context = || HeaderContext {
            downstream,
            method: req.method().as_str(),
            authority: &authority,
            path: &path,
            protocol: req.version(),
            request_headers: Some(req.headers()),
            status: 0,
        };
        match route.action() {
            Action::Direct(d) => return named(direct_response(d, route, vhost, &table, context())),
            Action::Redirect(r) => {
                let location = r.location(
                    downstream.scheme,
                    &authority,
                    &path,
                    route.matched_prefix_len(),
                );
                return named(redirect_response(
                    r.status(),
                    &location,
                    route,
                    vhost,
                    &table,
                    context(),
                ));
            }
            Action::Forward(_) => {}
        }
    }
    let path = match (&path, req.uri().path_and_query()) {
        (Cow::Borrowed(_), Some(original)) => original.clone(),
        _ => match PathAndQuery::try_from(path.as_ref()) {
            Ok(p) => p,
            Err(_) => return bad_request(),
        },
    };
    // An absolute-form target names the host: it is what goes upstream.
    let joined_host = match &authority {
        Cow::Owned(joined) => HeaderValue::from_str(joined).ok(),
        Cow::Borrowed(_) if req.uri().authority().is_some() => {
            HeaderValue::from_str(&authority).ok()
        }
        Cow::Borrowed(_) => None,
    };
    let authority = stack.as_ref().map(|_| authority.into_owned());
    if let Some(host) = joined_host {
        req.headers_mut().insert(header::HOST, host);
    }
    if let Some(picked) = picked {
        req.extensions_mut().insert(PickedTarget(picked));
    }
    let ctx = RouteContext {
        config,
        table,
        vhost: vhost_index,
        route: route_index,
        listener: listener.clone(),
        downstream: downstream.clone(),
        path,
        authority,
        grpc: call == CallKind::Grpc,
    };
    match stack {
        Some(service) => {
            let table = ctx.table.clone();
            req.extensions_mut().insert(ctx.downstream.clone());
            #[cfg(feature = "ratelimit")]
            if let Some(metadata) = ctx.route().metadata() {
                req.extensions_mut().insert(metadata.clone());
            }
            let version = req.version();
            req.extensions_mut().insert(ctx);
            let mut response = through_filters(service, req).await;
            // A filter's local reply gets the route's response headers, as Envoy's local
            // replies do (the route's own answers got them already).
            if response.extensions_mut().remove::<LocalReply>().is_some() {
                let vhost = &table.virtual_hosts()[vhost_index];
                let route = &vhost.routes()[route_index];
                // The request went into the filters: its method, path and headers render empty.
                let context = HeaderContext {
                    downstream,
                    method: "",
                    authority: "",
                    path: "",
                    protocol: version,
                    request_headers: None,
                    status: 0,
                };
                apply_response_headers(&mut response, None, route, vhost, &table, Some(context));
            }
            named(response)
        }
        None => named(std::pin::pin!(forward(req, &ctx)).await),
    }
}

/// What the access log learns while a request is routed (kept only when the listener has an
/// access log): the request as the connection manager left it, the route's name, and the
/// cluster of a route with one (Envoy knows it from the match on, so even a filter's answer
/// names it).
struct LogFacts {
    request: Arc<LoggedRequest>,
    route_name: Option<Arc<str>>,
    operation: Option<Arc<str>>,
    cluster: Option<Arc<str>>,
    /// The request's trace span, when the listener traces.
    trace: Option<(Arc<crate::trace::Tracer>, crate::trace::Span)>,
}

impl LogFacts {
    fn new(
        listener: &HttpListener,
        downstream: &Downstream,
        req: &Request<Body>,
        authority: &str,
        path: &str,
    ) -> LogFacts {
        let mut headers = req.headers().clone();
        add_forwarding_headers(&mut headers, &listener.settings, downstream);
        LogFacts {
            request: Arc::new(LoggedRequest {
                method: req.method().clone(),
                path: path.to_string(),
                authority: authority.to_string(),
                scheme: downstream.scheme,
                headers,
            }),
            route_name: None,
            operation: None,
            cluster: None,
            trace: None,
        }
    }

    /// The request matched `route`.
    fn routed(&mut self, route: &Route, config: &ProxyConfig) {
        let request = &mut self.request;
        self.route_name = Some(Arc::from(route.name()));
        self.operation = route.decorator().cloned();
        match route.action() {
            Action::Forward(forward) => {
                if let crate::router::action::ClusterChoice::Single(cluster) = &forward.clusters {
                    if config.clusters.contains_key(cluster.as_ref() as &str) {
                        self.cluster = Some(Arc::from(cluster.as_ref() as &str));
                    }
                }
            }
            Action::Redirect(redirect) => {
                if let Some(rewritten) =
                    redirect.rewritten_path(&request.path, route.matched_prefix_len())
                {
                    let request = Arc::make_mut(request);
                    if let Ok(original) = HeaderValue::from_str(&request.path) {
                        request
                            .headers
                            .insert(X_ENVOY_ORIGINAL_PATH.clone(), original);
                    }
                    request.path = rewritten;
                }
            }
            Action::Direct(_) => {}
        }
    }

    /// The answer, with what `log` learned (when there is a log) in its [`StreamFacts`],
    /// under what the answer knows already (the forwarding path's request and cluster are
    /// more precise).
    #[inline]
    fn apply(log: &Option<Box<LogFacts>>, response: Response<Body>) -> Response<Body> {
        match log.as_deref() {
            Some(facts) => facts.fill(response),
            None => response,
        }
    }

    #[inline(never)]
    fn fill(&self, mut response: Response<Body>) -> Response<Body> {
        let facts = StreamFacts::of(&mut response);
        if facts.request.is_none() {
            facts.request = Some(self.request.clone());
        }
        if facts.route_name.is_none() {
            facts.route_name = self.route_name.clone();
        }
        if facts.operation.is_none() {
            facts.operation = self.operation.clone();
        }
        if facts.trace.is_none() {
            facts.trace = self.trace.clone();
        }
        if facts.upstream_cluster.is_none() {
            facts.upstream_cluster = self.cluster.clone();
        }
        response
    }
}

/// Whether every header condition holds on a request as the router saw it (its normalised
/// path when it was routed, its authority, pseudo-headers included), as Envoy's
/// `matchHeaders`, for filters that match requests (the health check, global rate limits).
pub(crate) fn headers_match(
    matchers: &[crate::router::matcher::HeaderMatch],
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    extensions: &http::Extensions,
) -> bool {
    let ctx = extensions.get::<RouteContext>();
    let authority = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .unwrap_or("");
    let path = match ctx {
        Some(ctx) => ctx.path(),
        None => uri.path_and_query().map_or("/", |p| p.as_str()),
    };
    let scheme = match (ctx, extensions.get::<Downstream>()) {
        (Some(ctx), _) => ctx.downstream().scheme,
        (None, Some(downstream)) => downstream.scheme,
        (None, None) => "http",
    };
    let view = RequestView {
        method: method.as_str(),
        authority,
        path,
        scheme,
        headers,
    };
    matchers.iter().all(|m| m.matches(&view))
}

/// The weighted target a request was sent to before its filters ran (its index among the
/// route's weighted clusters), because that target has filter configs of its own: the request
/// is forwarded to it, not to a target picked anew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PickedTarget(pub usize);

/// A request no route matches: 404, after the listener's filters (as Envoy runs its filter
/// chain before the router answers 404). Such a request has no [`RouteContext`]; filters find
/// its [`Downstream`] in its extensions.
async fn no_route(
    config: &ProxyConfig,
    listener: &HttpListener,
    downstream: &Downstream,
    mut req: Request<Body>,
    call: CallKind,
) -> Response<Body> {
    let stack = config
        .stacks
        .get(&listener.name)
        .and_then(|s| s.for_grpc_web(call == CallKind::GrpcWeb).no_route())
        .cloned();
    let Some(service) = stack else {
        return StreamFacts::flag(
            local_reply(StatusCode::NOT_FOUND, ""),
            ResponseFlags::NO_ROUTE_FOUND,
        );
    };
    req.extensions_mut().insert(downstream.clone());
    through_filters(service, req).await
}

/// Runs `req` through a filter stack. The answer's `content-length` is then made to agree
/// with a body of known size: a filter that replaced a body and kept the old field would
/// otherwise have the client read the rest as a next answer (hyper, like the HTTP/1 loop,
/// writes the field as it finds it and frames by the body). The proxy's own answers agree
/// already, so only filters' go through this.
async fn through_filters(
    service: crate::filter::HttpService,
    req: Request<Body>,
) -> Response<Body> {
    use tower::ServiceExt;
    let mut response = match service.oneshot(req).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    settle_content_length(&mut response);
    response
}

/// Sets `content-length` to the body's size when the body's size is known, the field is
/// there and says otherwise. A 204's or 304's length, and that of an answer without a body
/// (to `HEAD`), describe the representation and stay.
pub(crate) fn settle_content_length(response: &mut Response<Body>) {
    use http_body::Body as _;
    let status = response.status();
    if status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || response.body().is_end_stream()
    {
        return;
    }
    let Some(size) = response.body().size_hint().exact() else {
        return;
    };
    let stale = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .is_some_and(|v| crate::head::content_length(v.as_bytes()) != Some(size));
    if stale {
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    }
}

fn direct_response(
    d: &crate::router::action::Direct,
    route: &Route,
    vhost: &VirtualHost,
    table: &RouteTable,
    context: HeaderContext<'_>,
) -> Response<Body> {
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
    apply_response_headers(&mut response, None, route, vhost, table, Some(context));
    response
}

fn redirect_response(
    status: StatusCode,
    location: &str,
    route: &Route,
    vhost: &VirtualHost,
    table: &RouteTable,
    context: HeaderContext<'_>,
) -> Response<Body> {
    let mut response = local_reply(status, "");
    if let Ok(v) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    apply_response_headers(&mut response, None, route, vhost, table, Some(context));
    response
}

/// Does what a routed request's route says: forward it, redirect it, or answer directly.
pub async fn act(req: Request<Body>, ctx: &RouteContext) -> Response<Body> {
    let route = ctx.route();
    let vhost = ctx.virtual_host();
    let authority = ctx.authority.as_deref().unwrap_or_default();
    let context = || HeaderContext {
        downstream: &ctx.downstream,
        method: req.method().as_str(),
        authority,
        path: ctx.path.as_str(),
        protocol: req.version(),
        request_headers: Some(req.headers()),
        status: 0,
    };
    match route.action() {
        Action::Forward(_) => std::pin::pin!(forward(req, ctx)).await,
        Action::Direct(d) => direct_response(d, route, vhost, &ctx.table, context()),
        Action::Redirect(r) => {
            let location = r.location(
                ctx.downstream.scheme,
                authority,
                ctx.path.as_str(),
                route.matched_prefix_len(),
            );
            redirect_response(r.status(), &location, route, vhost, &ctx.table, context())
        }
    }
}

/// Applies every level's response header mutations; `context` (with the answer's status set
/// here) renders the operators in their values.
fn apply_response_headers(
    response: &mut Response<Body>,
    target: Option<&HeaderOps>,
    route: &Route,
    vhost: &VirtualHost,
    table: &RouteTable,
    context: Option<HeaderContext<'_>>,
) {
    let context = context.map(|c| HeaderContext {
        status: response.status().as_u16(),
        ..c
    });
    let headers = response.headers_mut();
    let context = context.as_ref();
    // Envoy's default order: the most specific level first, so the enclosing levels win.
    if let Some(t) = target {
        t.apply_response(headers, context);
    }
    route.headers().apply_response(headers, context);
    vhost.headers().apply_response(headers, context);
    table.headers().apply_response(headers, context);
}

/// Headers that describe one hop and are never forwarded.
/// The hop-by-hop headers of RFC 9110 7.6.1 (and HTTP/2's), which never cross a proxy. Names,
/// not strings, so looking them up parses nothing.
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::TE,
    header::TRAILER,
    header::PROXY_AUTHENTICATE,
    HeaderName::from_static("http2-settings"),
];

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_ENVOY_ORIGINAL_PATH: HeaderName = HeaderName::from_static("x-envoy-original-path");

/// Where `name` sits in [`HOP_BY_HOP`], if it is hop-by-hop. Matches on the name's text (a
/// switch on length, then one comparison) rather than comparing with each of the nine in
/// turn: every field of every proxied message goes through here twice.
pub(crate) fn hop_by_hop_index(name: &HeaderName) -> Option<usize> {
    hop_by_hop_position(name.as_str())
}

/// [`hop_by_hop_index`] of a lowercase name.
fn hop_by_hop_position(name: &str) -> Option<usize> {
    let i = match name {
        "connection" => 0,
        "keep-alive" => 1,
        "proxy-connection" => 2,
        "transfer-encoding" => 3,
        "upgrade" => 4,
        "te" => 5,
        "trailer" => 6,
        "proxy-authenticate" => 7,
        "http2-settings" => 8,
        _ => return None,
    };
    Some(i)
}

/// Whether a `Connection` option (any case) names a hop-by-hop field, which goes anyway.
/// Runs for the `Connection` field of every upstream answer, usually on `keep-alive`.
pub(crate) fn names_hop_by_hop(option: &[u8]) -> bool {
    // Room for the longest hop-by-hop name, `proxy-authenticate`.
    let mut lower = [0u8; 18];
    let Some(room) = lower.get_mut(..option.len()) else {
        return false;
    };
    for (l, b) in room.iter_mut().zip(option) {
        *l = b.to_ascii_lowercase();
    }
    std::str::from_utf8(room)
        .ok()
        .and_then(hop_by_hop_position)
        .is_some()
}

/// Whether a `Connection` token names no field beyond those that go anyway: it is empty,
/// `close`, or a hop-by-hop field's name.
pub(crate) fn names_no_other_field(token: &[u8]) -> bool {
    token.is_empty() || token.eq_ignore_ascii_case(b"close") || names_hop_by_hop(token)
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Runs twice per proxied request, so it looks at each field once and removes only the
    // hop-by-hop ones present: most requests carry none (no `Connection` either, which is
    // one), and most responses only `Connection`.
    let mut present = [false; 9];
    for name in headers.keys() {
        if let Some(i) = hop_by_hop_index(name) {
            present[i] = true;
        }
    }
    if !present.contains(&true) {
        return;
    }
    // Headers named by `Connection` are hop-by-hop too. Its usual tokens (`keep-alive`,
    // `close`, `upgrade`) need no copy: they are removed below or name no header.
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|n| !names_no_other_field(n.as_bytes()))
        // `from_bytes` lowercases.
        .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
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
    for (name, here) in HOP_BY_HOP.iter().zip(present) {
        if here {
            headers.remove(name);
        }
    }
    if te_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// The request as it leaves for the upstream, minus its body.
struct Outgoing {
    method: Method,
    path: PathAndQuery,
    headers: HeaderMap,
    /// The body, when buffered so it can be sent again.
    body: Option<Bytes>,
    cluster: Arc<Cluster>,
    /// The subset criteria endpoints are picked with.
    criteria: Option<MatchCriteria>,
    /// Where the upstream host tried last is noted, when an access log records the
    /// exchange (a timeout drops the exchange before it can say).
    upstream_host: Option<Arc<std::sync::Mutex<Option<SocketAddr>>>>,
    /// A gRPC call: its upstream's answer is marked [`FromUpstream`].
    grpc: bool,
    /// The downstream connection, for a cluster whose connections start with a PROXY
    /// protocol header.
    origin: Option<Box<crate::proxy_protocol::Origin>>,
    /// The HTTP version the client spoke (a cluster may follow it).
    version: Version,
}

/// The inner service of every filter stack: does what the route of a request (whose
/// [`RouteContext`] is in its extensions) says: forward, redirect or answer.
#[derive(Debug, Clone, Copy, Default)]
pub struct RouteService;

impl tower::Service<Request<Body>> for RouteService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        Box::pin(async move {
            match req.extensions_mut().remove::<RouteContext>() {
                Some(ctx) => Ok(std::pin::pin!(act(req, &ctx)).await),
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

/// What the response headers' operators need of a request, kept while it is forwarded.
struct SavedRequest {
    method: Method,
    version: Version,
    /// For `%REQ(...)%`.
    headers: Option<HeaderMap>,
}

/// Whether some level's response headers have operators (`Some`), and whether they read the
/// request's headers.
fn response_formats(route: &Route) -> Option<bool> {
    let formats = route.header_formats();
    formats.response.then_some(formats.response_reads_request)
}

/// Forwards a routed request upstream and returns the answer (or a local error reply), with
/// the response header mutations of every level applied.
pub async fn forward(req: Request<Body>, ctx: &RouteContext) -> Response<Body> {
    let Some(action) = forward_action(ctx) else {
        return local_reply(StatusCode::INTERNAL_SERVER_ERROR, "");
    };
    // Response headers with operators render from the request: what they need of it is kept
    // (boxed, so the common path's future stays as small as it was), its headers only for
    // `%REQ(...)%`.
    let saved = response_formats(ctx.route()).map(|reads_request| {
        Box::new(SavedRequest {
            method: req.method().clone(),
            version: req.version(),
            headers: reads_request.then(|| req.headers().clone()),
        })
    });
    let (mut response, target) = std::pin::pin!(forward_to_cluster(req, ctx, action)).await;
    let context = saved.as_deref().map(|saved| HeaderContext {
        downstream: &ctx.downstream,
        method: saved.method.as_str(),
        authority: ctx.authority.as_deref().unwrap_or_default(),
        path: ctx.path.as_str(),
        protocol: saved.version,
        request_headers: saved.headers.as_ref(),
        status: 0,
    });
    apply_response_headers(
        &mut response,
        target.as_ref(),
        ctx.route(),
        ctx.virtual_host(),
        &ctx.table,
        context,
    );
    response
}

async fn forward_to_cluster(
    mut req: Request<Body>,
    ctx: &RouteContext,
    action: &Forward,
) -> (Response<Body>, Option<HeaderOps>) {
    let route = ctx.route();
    let vhost = ctx.virtual_host();
    let settings = &ctx.listener.settings;
    let picked = match req.extensions().get::<PickedTarget>() {
        Some(PickedTarget(i)) => action.clusters.weighted_target(*i),
        None => action.clusters.pick(req.headers()),
    };
    let Some((cluster_name, target_headers, criteria)) = picked else {
        return (local_reply(StatusCode::SERVICE_UNAVAILABLE, ""), None);
    };
    let target_headers = target_headers.cloned();
    // A weighted target's criteria were merged with the route's when compiled.
    let criteria = criteria.or(action.metadata_match.as_ref()).cloned();
    let hashed = if action.hash_policies.is_empty() {
        RequestHash::default()
    } else {
        hash_request(
            &action.hash_policies,
            &HashInput {
                headers: req.headers(),
                path_and_query: ctx.path.as_str(),
                remote: ctx.downstream.remote,
                local: ctx.downstream.local,
            },
        )
    };
    let Some(cluster) = ctx.config.clusters.get(cluster_name).cloned() else {
        return (
            StreamFacts::flag(
                local_reply(StatusCode::SERVICE_UNAVAILABLE, ""),
                ResponseFlags::NO_CLUSTER_FOUND,
            ),
            target_headers,
        );
    };
    // Unconfigured upgrades were refused before routing: what is left is allowed.
    let upgrade = req.headers().get(header::UPGRADE).cloned();
    let downstream_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));

    // Request headers: hop-by-hop out, forwarding headers in, then the configured mutations
    // (most specific level first, so the enclosing levels win, as in Envoy).
    let (parts, body) = req.into_parts();
    let mut headers = parts.headers;
    let grpc = ctx.grpc;
    strip_hop_by_hop(&mut headers);
    if let Some(kind) = upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, kind);
    }
    add_forwarding_headers(&mut headers, settings, &ctx.downstream);
    if let Some(via) = &settings.via {
        headers.append(header::VIA, via.clone());
    }
    // Added values with operators render from the request (only routes with some build this).
    let context = route.header_formats().request.then(|| HeaderContext {
        downstream: &ctx.downstream,
        method: parts.method.as_str(),
        authority: ctx.authority.as_deref().unwrap_or_default(),
        path: ctx.path.as_str(),
        protocol: parts.version,
        request_headers: None,
        status: 0,
    });
    let context = context.as_ref();
    if let Some(t) = &target_headers {
        t.apply_request(&mut headers, context);
    }
    route.headers().apply_request(&mut headers, context);
    vhost.headers().apply_request(&mut headers, context);
    ctx.table.headers().apply_request(&mut headers, context);
    let path = match action.rewrite_path(ctx.path.as_str(), route.matched_prefix_len()) {
        Some(rewritten) => match PathAndQuery::try_from(rewritten) {
            Ok(p) => p,
            Err(_) => return (bad_request(), target_headers),
        },
        None => ctx.path.clone(),
    };
    match &action.host_rewrite {
        HostRewrite::None | HostRewrite::Auto => {}
        HostRewrite::Literal(v) => rewrite_host(&mut headers, v.clone(), action),
        HostRewrite::Header(name) => {
            if let Some(v) = headers.get(name).cloned() {
                rewrite_host(&mut headers, v, action);
            }
        }
        HostRewrite::PathRegex(regex, sub) => {
            let (p, _) = crate::router::action::split_query(ctx.path.as_str());
            let host = regex.replace_all(p, sub.as_str()).into_owned();
            if let Ok(v) = HeaderValue::from_str(&host) {
                rewrite_host(&mut headers, v, action);
            }
        }
    }

    // Bodies are buffered only when the request may be sent more than once.
    let replayable =
        (action.retry.is_some() || !action.mirrors.is_empty()) && downstream_upgrade.is_none();
    let (body, buffered) = if replayable && body_fits(&headers, &body) {
        match http_body_util::Limited::new(body, MAX_REPLAY_BODY)
            .collect()
            .await
        {
            Ok(collected) => (None, Some(collected.to_bytes())),
            Err(_) => {
                return (
                    local_reply(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
                    target_headers,
                )
            }
        }
    } else {
        (Some(body), None)
    };
    // What the access log reads of the request: as it goes upstream, as Envoy's router
    // leaves the request headers its access log then reads.
    let logged = ctx.listener.records().then(|| {
        let mut logged_headers = headers.clone();
        if path.as_str() != ctx.path.as_str() {
            if let Ok(original) = HeaderValue::from_str(ctx.path.as_str()) {
                logged_headers.insert(X_ENVOY_ORIGINAL_PATH.clone(), original);
            }
        }
        Arc::new(LoggedRequest {
            method: parts.method.clone(),
            path: path.as_str().to_string(),
            authority: headers
                .get(header::HOST)
                .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
                .or_else(|| ctx.authority.clone())
                .unwrap_or_default(),
            scheme: ctx.downstream.scheme,
            headers: logged_headers,
        })
    });
    let logged_cluster = logged.as_ref().map(|_| Arc::<str>::from(cluster.name()));
    let upstream_host = logged.as_ref().map(|_| Arc::default());
    // Envoy's PROXY protocol header names the connection's peer and the address it reached.
    let origin = cluster.proxy_protocol().map(|_| {
        Box::new(crate::proxy_protocol::Origin {
            source: ctx.downstream.peer,
            destination: ctx.downstream.local,
        })
    });
    let outgoing = Outgoing {
        method: parts.method,
        path,
        headers,
        body: buffered,
        cluster,
        criteria,
        upstream_host: upstream_host.clone(),
        grpc,
        origin,
        version: parts.version,
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
    // The stream idle timeout: the route's, else the connection manager's (zero: none). It
    // can only fire before the route timeout if it is the shorter of the two (Envoy's
    // defaults: 5 min and 15 s, so usually there is nothing to watch).
    let idle = match action.idle_timeout {
        Some(t) => Some(t).filter(|t| !t.is_zero()),
        None => settings.stream_idle_timeout,
    }
    .filter(|idle| action.timeout.is_none_or(|t| *idle < t))
    .map(|idle| (crate::body::IdleClock::new(), idle));
    let body = match (&idle, body) {
        (Some((clock, _)), Some(b)) if !http_body::Body::is_end_stream(&b) => Some(clock.watch(b)),
        (_, b) => b,
    };
    // Pinned where it is made: the exchange's future is large, and handing it by value to
    // the timeout (and then to `.await`) copied all of it twice per request.
    let send = std::pin::pin!(send_with_retries(
        outgoing,
        body,
        action,
        hashed.hash,
        downstream_upgrade,
        action.host_rewrite_auto(),
    ));
    // Envoy's route timeout runs until the response has been completely received: it bounds
    // the response body too (a body still arriving then is reset).
    let deadline = action.timeout.map(|t| tokio::time::Instant::now() + t);
    let mut response = match idle {
        Some((clock, idle)) => {
            // Boxed: the common path's future stays as small as it was.
            let answer = Box::pin(await_with_idle_timeout(send, deadline, clock, idle)).await;
            bound_body(answer, Some(idle), deadline)
        }
        None => match deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, send).await {
                Ok(answer) => bound_body(answer, None, Some(deadline)),
                Err(_) => upstream_timeout_reply(),
            },
            None => send.await,
        },
    };
    strip_hop_by_hop_response(&mut response);
    if let Some(request) = logged {
        let facts = StreamFacts::of(&mut response);
        facts.request = Some(request);
        facts.upstream_cluster = logged_cluster;
        facts.upstream_host =
            upstream_host.and_then(|h: Arc<std::sync::Mutex<Option<SocketAddr>>>| {
                *h.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
            });
    }
    if let Some(cookie) = hashed.set_cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    // The router's own headers (`suppress_envoy_headers`): a breaker's refusal says nothing.
    if settings.suppress_envoy_headers && response.status() == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().remove("x-envoy-overloaded");
    }
    (response, target_headers)
}

/// The response with its body bounded by the stream idle timeout and the route deadline; an
/// upgrade's 101 is left alone (its stream is the upgraded connection, not a body).
fn bound_body(
    response: Response<Body>,
    idle: Option<Duration>,
    deadline: Option<tokio::time::Instant>,
) -> Response<Body> {
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        return response;
    }
    response.map(|b| crate::body::time_limited(b, idle, deadline))
}

/// Awaits the answer within the route timeout, unless the stream is idle (no request bytes
/// moving) for `idle` first: then 408 `stream timeout`, as Envoy answers.
async fn await_with_idle_timeout(
    answer: impl std::future::Future<Output = Response<Body>>,
    route_deadline: Option<tokio::time::Instant>,
    clock: crate::body::IdleClock,
    idle: Duration,
) -> Response<Body> {
    let answer = async {
        match route_deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, answer)
                .await
                .unwrap_or_else(|_| upstream_timeout_reply()),
            None => answer.await,
        }
    };
    tokio::select! {
        response = answer => response,
        _ = clock.idle_for(idle) => StreamFacts::flag(
            local_reply(StatusCode::REQUEST_TIMEOUT, "stream timeout"),
            ResponseFlags::STREAM_IDLE_TIMEOUT,
        ),
    }
}

/// Envoy's answer when the route timeout (or a retry's per-try timeout) runs out.
fn upstream_timeout_reply() -> Response<Body> {
    StreamFacts::flag(
        local_reply(StatusCode::GATEWAY_TIMEOUT, "upstream request timeout"),
        ResponseFlags::UPSTREAM_REQUEST_TIMEOUT,
    )
}

fn rewrite_host(headers: &mut HeaderMap, value: HeaderValue, action: &Forward) {
    if action.append_x_forwarded_host {
        if let Some(old) = headers.get(header::HOST).cloned() {
            headers.append(X_FORWARDED_HOST.clone(), old);
        }
    }
    headers.insert(header::HOST, value);
}

pub(crate) fn strip_hop_by_hop_response(response: &mut Response<Body>) {
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

/// The connection manager's `x-forwarded-for` (the peer appended, with
/// `use_remote_address`) and `x-forwarded-proto`.
#[inline]
fn add_forwarding_headers(
    headers: &mut HeaderMap,
    settings: &ConnectionSettings,
    downstream: &Downstream,
) {
    if settings.use_remote_address && !settings.skip_xff_append {
        // Several `x-forwarded-for` headers (a router adding its own beside the client's) are
        // one list, as Envoy coalesces them: none is lost when the peer is appended.
        let mut xff = String::new();
        for value in headers.get_all(&X_FORWARDED_FOR) {
            if let Ok(value) = value.to_str() {
                xff.push_str(value);
                xff.push_str(", ");
            }
        }
        xff.push_str(&downstream.peer.ip().to_string());
        if let Ok(v) = HeaderValue::from_str(&xff) {
            headers.insert(X_FORWARDED_FOR.clone(), v);
        }
    }
    if settings.use_remote_address || !headers.contains_key(&X_FORWARDED_PROTO) {
        headers.insert(
            X_FORWARDED_PROTO.clone(),
            HeaderValue::from_static(downstream.scheme),
        );
    }
    if settings.append_x_forwarded_port
        && (!headers.contains_key(&X_FORWARDED_PORT) || settings.is_edge(downstream.remote.ip()))
    {
        headers.insert(
            X_FORWARDED_PORT.clone(),
            HeaderValue::from(downstream.local.port()),
        );
    }
}

/// A random (version 4) UUID for `x-request-id`, formatted without allocating twice.
fn request_id() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bytes = fastrand::u128(..).to_be_bytes();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    // Where each byte's two digits go, in the groups of 8-4-4-4-12 digits.
    const AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
    let mut out = [b'-'; 36];
    for (b, at) in bytes.iter().zip(AT) {
        out[at] = HEX[(b >> 4) as usize];
        out[at + 1] = HEX[(b & 0x0f) as usize];
    }
    HeaderValue::from_bytes(&out).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

fn build_request(
    out: &Outgoing,
    endpoint: &Endpoint,
    headers: HeaderMap,
    body: Body,
    auto_host: bool,
) -> Result<Request<Body>, http::Error> {
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(http::uri::Scheme::HTTP);
    parts.authority = Some(endpoint.authority.clone());
    parts.path_and_query = Some(out.path.clone());
    let mut req = Request::new(body);
    *req.method_mut() = out.method.clone();
    *req.uri_mut() = Uri::from_parts(parts)?;
    *req.version_mut() = out.cluster.upstream_version(out.version);
    *req.headers_mut() = headers;
    if auto_host && !endpoint.hostname.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&endpoint.hostname) {
            req.headers_mut().insert(header::HOST, v);
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
    let Some(endpoint) = shadow.pick(None, None) else {
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
        headers: HeaderMap::new(),
        body: None,
        cluster: shadow.clone(),
        upstream_host: None,
        // Envoy sends shadows through its async client, whose route has no metadata match.
        criteria: None,
        // A shadow's answer is dropped.
        grpc: false,
        // Envoy's shadows go through its async client, with no downstream connection.
        origin: None,
        version: out.version,
    };
    let Ok(req) = build_request(&copy, &endpoint, headers, Body::full(body), false) else {
        return;
    };
    tokio::spawn(async move {
        let _active = endpoint.start_request();
        shadow.stats.upstream_rq_total.inc();
        if let Ok(r) = shadow.send(req, &endpoint).await {
            shadow.stats.record_status(r.status().as_u16());
            let _ = r.into_body().collect().await;
        }
    });
}

/// The outcome of one attempt.
enum Attempt {
    Answer(Response<Body>),
    /// The circuit breaker refused a new connection.
    Overflow,
    ConnectFailure,
    Reset,
    /// The upstream answered something that is not HTTP, or over the cluster's limits.
    ProtocolError,
    Timeout,
    /// The cluster's `max_stream_duration` ran out before the answer's head: whether the
    /// request had been sent whole by then.
    MaxDuration {
        request_sent: bool,
    },
}

async fn attempt(
    mut req: Request<Body>,
    cluster: &Cluster,
    endpoint: &Arc<Endpoint>,
    per_try: Option<Duration>,
    origin: Option<&crate::proxy_protocol::Origin>,
) -> Attempt {
    use futures_util::FutureExt;
    cluster.stats.upstream_rq_total.inc();
    let _active = endpoint.start_request();
    let started = Instant::now();
    let max_duration = cluster.max_stream_duration();
    // With a maximum duration, whether a streamed request body has been sent whole when it
    // runs out decides the answer (Envoy: 504 if so, else 408).
    let body_sent = match max_duration {
        Some(_)
            if !http_body::Body::is_end_stream(req.body()) && req.body().as_bytes().is_none() =>
        {
            let (tracked, ended) = crate::body::notify_on_end(req);
            req = tracked;
            Some(ended)
        }
        _ => None,
    };
    // Pinned in place rather than moved into the timeout (see `forward_to_cluster`).
    let call = std::pin::pin!(cluster.send_from(req, endpoint, origin));
    let limit = match (per_try, max_duration) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let result = match limit {
        Some(t) => match tokio::time::timeout(t, call).await {
            Ok(r) => r,
            Err(_) if per_try == Some(t) => {
                cluster.stats.upstream_rq_timeout.inc();
                cluster.record_outcome(endpoint, None);
                return Attempt::Timeout;
            }
            Err(_) => {
                let request_sent = body_sent
                    .is_none_or(|ended| std::pin::pin!(ended.notified()).now_or_never().is_some());
                return Attempt::MaxDuration { request_sent };
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
            // The maximum duration bounds the answer's body too: one still arriving then
            // is cut off (the client's stream is reset, as Envoy resets it).
            let response = match max_duration {
                Some(max) if response.status() != StatusCode::SWITCHING_PROTOCOLS => response
                    .map(|b| crate::body::time_limited(b, None, Some((started + max).into()))),
                _ => response,
            };
            Attempt::Answer(response)
        }
        Err(crate::upstream::h1::SendError::Overflow) => {
            cluster.stats.upstream_rq_pending_overflow.inc();
            Attempt::Overflow
        }
        Err(e) if e.is_connect() => {
            cluster.stats.upstream_cx_connect_fail.inc();
            cluster.record_outcome(endpoint, None);
            Attempt::ConnectFailure
        }
        Err(crate::upstream::h1::SendError::Protocol(e)) => {
            tracing::debug!(cluster = %cluster.name(), "upstream protocol error: {e}");
            cluster.record_outcome(endpoint, None);
            Attempt::ProtocolError
        }
        Err(_) => {
            cluster.record_outcome(endpoint, None);
            Attempt::Reset
        }
    }
}

/// Envoy's answer when a circuit breaker trips.
fn overflow_reply() -> Response<Body> {
    let mut r = local_reply(
        StatusCode::SERVICE_UNAVAILABLE,
        "upstream connect error or disconnect/reset before headers. reset reason: overflow",
    );
    r.headers_mut()
        .insert("x-envoy-overloaded", HeaderValue::from_static("true"));
    StreamFacts::flag(r, ResponseFlags::UPSTREAM_OVERFLOW)
}

async fn send_with_retries(
    mut out: Outgoing,
    mut streaming_body: Option<Body>,
    action: &Forward,
    hash: Option<u64>,
    downstream_upgrade: Option<hyper::upgrade::OnUpgrade>,
    auto_host: bool,
) -> Response<Body> {
    let mut cluster = out.cluster.clone();
    let Some(_slot) = out.cluster.breaker.request() else {
        cluster.stats.upstream_rq_pending_overflow.inc();
        return overflow_reply();
    };
    // A dynamic forward proxy sends to the request's host, through that host's own cluster.
    if let Some(hosts) = out.cluster.dynamic() {
        let authority = out
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        match Box::pin(hosts.lookup(authority)).await {
            crate::upstream::dynamic::Lookup::Found(host) => cluster = host,
            crate::upstream::dynamic::Lookup::Failed => {
                return StreamFacts::flag(
                    local_reply(StatusCode::SERVICE_UNAVAILABLE, "DNS resolution failure"),
                    ResponseFlags::DNS_RESOLUTION_FAILED,
                )
            }
            crate::upstream::dynamic::Lookup::Overflow => {
                return local_reply(StatusCode::SERVICE_UNAVAILABLE, "DNS cache overflow")
            }
        }
    }
    let retry = action.retry.as_ref().filter(|_| out.body.is_some());
    let max_attempts = 1 + retry.map(|r| r.num_retries).unwrap_or(0);
    let per_try = retry.and_then(|r| r.per_try_timeout);
    let mut endpoint = match cluster.pick(out.criteria.as_ref(), hash) {
        Some(e) => e,
        None => {
            return StreamFacts::flag(
                local_reply(StatusCode::SERVICE_UNAVAILABLE, "no healthy upstream"),
                ResponseFlags::NO_HEALTHY_UPSTREAM,
            )
        }
    };
    let mut n = 0;
    loop {
        n += 1;
        let body = match (&out.body, streaming_body.take()) {
            (Some(bytes), _) => Body::full(bytes.clone()),
            (None, Some(b)) => b,
            (None, None) => Body::empty(),
        };
        // The headers are copied only when another attempt may need them.
        let headers = if n < max_attempts {
            out.headers.clone()
        } else {
            std::mem::take(&mut out.headers)
        };
        if let Some(noted) = &out.upstream_host {
            *noted
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(endpoint.address);
        }
        let outcome = match build_request(&out, &endpoint, headers, body, auto_host) {
            Ok(req) => {
                std::pin::pin!(attempt(
                    req,
                    &cluster,
                    &endpoint,
                    per_try,
                    out.origin.as_deref()
                ))
                .await
            }
            Err(_) => return bad_request(),
        };
        let retryable = match (&outcome, retry) {
            (_, None) => false,
            (Attempt::Answer(r), Some(p)) => p.retries_status(r.status()),
            (Attempt::ConnectFailure, Some(p)) => p.retries_connect_failure(),
            (Attempt::Reset | Attempt::ProtocolError | Attempt::Timeout, Some(p)) => {
                p.retries_reset()
            }
            // Envoy retries no local reset but a per-try timeout's.
            (Attempt::Overflow | Attempt::MaxDuration { .. }, _) => false,
        };
        if retryable && n < max_attempts {
            if let (Some(policy), Some(_retry_slot)) = (retry, cluster.breaker.retry()) {
                cluster.stats.upstream_rq_retry.inc();
                tokio::time::sleep(policy.backoff(n)).await;
                if let Some(e) = cluster.pick_other(out.criteria.as_ref(), &endpoint.address) {
                    endpoint = e;
                }
                continue;
            }
        }
        let mut response = match outcome {
            Attempt::Answer(mut response) => {
                if out.grpc {
                    response.extensions_mut().insert(FromUpstream);
                }
                finish_response(response, downstream_upgrade)
            }
            Attempt::ConnectFailure => StreamFacts::flag(
                local_reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure",
                ),
                ResponseFlags::UPSTREAM_CONNECTION_FAILURE,
            ),
            Attempt::Reset => StreamFacts::flag(
                local_reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "upstream connect error or disconnect/reset before headers. reset reason: connection termination",
                ),
                ResponseFlags::UPSTREAM_CONNECTION_TERMINATION,
            ),
            // Envoy 1.40 answers an upstream's protocol error with a 502.
            Attempt::ProtocolError => StreamFacts::flag(
                local_reply(
                    StatusCode::BAD_GATEWAY,
                    "upstream connect error or disconnect/reset before headers. reset reason: protocol error",
                ),
                ResponseFlags::UPSTREAM_PROTOCOL_ERROR,
            ),
            Attempt::Timeout => upstream_timeout_reply(),
            Attempt::MaxDuration { request_sent } => StreamFacts::flag(
                local_reply(
                    if request_sent {
                        StatusCode::GATEWAY_TIMEOUT
                    } else {
                        StatusCode::REQUEST_TIMEOUT
                    },
                    "upstream max stream duration reached",
                ),
                ResponseFlags::UPSTREAM_MAX_STREAM_DURATION_REACHED,
            ),
            Attempt::Overflow => overflow_reply(),
        };
        if retryable {
            // Retryable, but no retry was left (Envoy's `URX`).
            response = StreamFacts::flag(response, ResponseFlags::UPSTREAM_RETRY_LIMIT_EXCEEDED);
        }
        return response;
    }
}

fn finish_response(
    mut response: Response<Body>,
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
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
    use envoy_types::pb::google::protobuf::BoolValue;

    #[test]
    fn hop_by_hop_fields_and_the_ones_connection_names_are_stripped() {
        let mut headers = http::HeaderMap::new();
        for (name, value) in [
            ("connection", "Keep-Alive, X-Hop, close"),
            ("keep-alive", "timeout=5"),
            ("x-hop", "1"),
            ("te", "gzip, trailers"),
            ("transfer-encoding", "chunked"),
            ("proxy-connection", "keep-alive"),
            ("x-kept", "2"),
            ("content-type", "text/plain"),
        ] {
            headers.append(name, HeaderValue::from_static(value));
        }
        strip_hop_by_hop(&mut headers);
        let mut left: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap_or("?")))
            .collect();
        left.sort();
        // `TE: trailers` is the one hop-by-hop value a proxy passes on (gRPC needs it).
        assert_eq!(
            left,
            [
                ("content-type", "text/plain"),
                ("te", "trailers"),
                ("x-kept", "2")
            ]
        );

        // Nothing hop-by-hop: nothing changes.
        let mut plain = http::HeaderMap::new();
        plain.append("host", HeaderValue::from_static("a"));
        plain.append("x-kept", HeaderValue::from_static("2"));
        let before = plain.clone();
        strip_hop_by_hop(&mut plain);
        assert_eq!(plain, before);
    }

    #[test]
    fn the_hop_by_hop_classifier_knows_exactly_the_listed_fields() {
        for (i, name) in HOP_BY_HOP.iter().enumerate() {
            assert_eq!(hop_by_hop_index(name), Some(i), "{name}");
        }
        for name in [
            "host",
            "content-length",
            "x-connection",
            "tes",
            "upgrade-insecure-requests",
        ] {
            let name = HeaderName::from_static(name);
            assert_eq!(hop_by_hop_index(&name), None, "{name}");
        }
    }

    /// Awaited by value, a future is kept twice in its caller's (the value and the awaitee
    /// apart), so each level of the request path doubled it: `Proxy::handle`'s future was
    /// 143 KB and a connection's task 292 KB until every level pinned its callee's future
    /// where it made it. This keeps them from growing back. The size still costs: each HTTP/2
    /// stream's future is boxed and copied once, so rare branches (opening a connection,
    /// hyper's client) are boxed where they are awaited. About 8 KB now, in debug and release
    /// builds alike.
    #[test]
    fn the_future_of_a_request_stays_small() {
        use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpFilter;
        let listener = crate::config::test_support::listener(vec![HttpFilter {
            name: crate::filter::ROUTER.into(),
            ..Default::default()
        }]);
        let registry = crate::filter::FilterRegistry::with_builtins();
        let listener = Arc::new(
            crate::config::compile_listener(&listener, "1", &registry).expect("a listener"),
        );
        let (_config, receiver) = tokio::sync::watch::channel(Arc::new(ProxyConfig::default()));
        let proxy = Proxy::new(receiver, Arc::new(Stats::default()), false);
        let address = SocketAddr::from(([127, 0, 0, 1], 1));
        let downstream = Downstream {
            remote: address,
            peer: address,
            local: address,
            scheme: "http",
            client_certificate: None,
        };
        let handling = proxy.handle(Request::new(Body::empty()), &listener, &downstream);
        let size = std::mem::size_of_val(&handling);
        assert!(
            size <= 10 * 1024,
            "Proxy::handle's future is {size} bytes: is a future awaited by value on the request path?"
        );
    }

    #[tokio::test]
    async fn an_answer_from_filters_has_the_length_of_its_body() {
        // A filter that replaced the body and kept the old length.
        let filter = tower::service_fn(|_req: Request<Body>| async {
            let mut r = Response::new(Body::from("x".repeat(5000)));
            r.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from_static("2"));
            Ok::<_, Infallible>(r)
        });
        let service = crate::filter::HttpService::new(filter);
        let answer = through_filters(service, Request::new(Body::empty())).await;
        assert_eq!(answer.headers()[header::CONTENT_LENGTH], "5000");
    }

    #[test]
    fn a_request_id_is_a_version_4_uuid() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..64 {
            let id = request_id();
            let id = id.to_str().expect("ASCII");
            let groups: Vec<&str> = id.split('-').collect();
            let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
            assert_eq!(lengths, [8, 4, 4, 4, 12], "{id}");
            assert!(
                groups.iter().all(|g| g
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))),
                "{id}"
            );
            assert!(groups[2].starts_with('4'), "version 4: {id}");
            assert!(
                matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'),
                "RFC 4122 variant: {id}"
            );
            assert!(seen.insert(id.to_string()), "repeated: {id}");
        }
    }

    #[test]
    fn a_connection_option_names_a_hop_by_hop_field_in_any_case() {
        for name in HOP_BY_HOP.iter() {
            let upper = name.as_str().to_ascii_uppercase();
            assert!(names_hop_by_hop(name.as_str().as_bytes()), "{name}");
            assert!(names_hop_by_hop(upper.as_bytes()), "{upper}");
        }
        for option in [
            &b"Keep-Alive"[..],
            b"TE",
            b"Proxy-Authenticate",
            b"HTTP2-Settings",
        ] {
            assert!(names_hop_by_hop(option), "{option:?}");
        }
        for option in [
            &b""[..],
            b"close",
            b"x-secret",
            b"keep-alive2",
            b"proxy-authenticate-x",
            b"a-name-much-longer-than-any-hop-by-hop-one",
            b"keep\xffalive",
        ] {
            assert!(!names_hop_by_hop(option), "{option:?}");
        }
    }

    #[test]
    fn ports_come_off_hosts_that_have_one() {
        assert_eq!(without_port("example.com:8080"), Some("example.com"));
        assert_eq!(without_port("[::1]:8443"), Some("[::1]"));
        assert_eq!(without_port("example.com"), None);
        assert_eq!(without_port("[::1]"), None, "an IPv6 address is not a port");
        assert_eq!(without_port("::1"), None);
        assert_eq!(without_port("example.com:"), None);
        assert_eq!(without_port("example.com:http"), None);
    }

    fn settings(use_remote_address: bool, hops: u32) -> ConnectionSettings {
        let hcm = HttpConnectionManager {
            use_remote_address: Some(BoolValue {
                value: use_remote_address,
            }),
            xff_num_trusted_hops: hops,
            ..Default::default()
        };
        ConnectionSettings::from_hcm(&hcm).expect("valid settings")
    }

    fn client(xff: &[&str], use_remote_address: bool, hops: u32) -> Option<String> {
        let mut headers = http::HeaderMap::new();
        for value in xff {
            headers.append(
                "x-forwarded-for",
                HeaderValue::from_str(value).expect("header value"),
            );
        }
        let peer: SocketAddr = "10.0.0.9:5000".parse().expect("address");
        trusted_client(&headers, &settings(use_remote_address, hops), peer).map(|ip| ip.to_string())
    }

    /// Envoy's table in "x-forwarded-for" (configuration/http/http_conn_man/headers): the
    /// trusted client address for each combination.
    #[test]
    fn trusted_client_follows_envoy() {
        // use_remote_address: the peer, whatever the client claims.
        assert_eq!(client(&["192.0.2.10"], true, 0), None);
        // One trusted hop in front: the last entry it wrote (before the peer is appended).
        assert_eq!(
            client(&["192.0.2.10, 203.0.113.128"], true, 1).as_deref(),
            Some("203.0.113.128")
        );
        assert_eq!(
            client(&["192.0.2.10, 203.0.113.128"], true, 2).as_deref(),
            Some("192.0.2.10")
        );
        // Fewer entries than trusted hops: the peer.
        assert_eq!(client(&["192.0.2.10"], true, 2), None);
        // Without use_remote_address: the last entry, skipping the trusted hops.
        assert_eq!(
            client(&["192.0.2.10"], false, 0).as_deref(),
            Some("192.0.2.10")
        );
        assert_eq!(
            client(&["192.0.2.10,203.0.113.128"], false, 1).as_deref(),
            Some("192.0.2.10")
        );
        // Several headers are one list.
        assert_eq!(
            client(&["192.0.2.10", "203.0.113.128"], false, 1).as_deref(),
            Some("192.0.2.10")
        );
        // No header, or an entry that is not an IP address: the peer.
        assert_eq!(client(&[], false, 0), None);
        assert_eq!(client(&["unknown"], false, 0), None);
        assert_eq!(client(&["192.0.2.10:80"], false, 0), None);
    }
}
