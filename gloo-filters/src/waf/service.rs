//! The [`Waf`] middleware service, and the steps of an exchange its future runs on the
//! evaluation threads.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, HOST, LOCATION};
use http::{request, response, Request, Response, StatusCode, Version};
use http_body::Body;
use tower::Service;

use super::audit::AuditLog;
use super::blocking::Evaluation;
use super::exchange::{Connection, Exchange, Intervention, RequestHead, Settings};
use super::future::ResponseFuture;

/// The body the inner service receives and the layer returns: the original body streamed, or
/// a buffered (inspected) one.
pub type WafBody<B> = crate::body::FilterBody<B>;

/// Marks an answer the WAF layer made itself (an intervention, or a body it could not
/// inspect) rather than the inner service's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WafReply;

/// Middleware inspecting requests and responses with ModSecurity.
///
/// Build it with [`WafLayer`](super::WafLayer); see the [module docs](super) for the
/// semantics. The inner service receives `Request<WafBody<ReqB>>` and the middleware returns
/// `Response<WafBody<ResB>>`.
///
/// The inner service must be `Clone`: the request is inspected before the inner service is
/// called, so the ready service goes into the response future and a clone takes its place
/// (the usual tower pattern).
#[derive(Clone, Debug)]
pub struct Waf<S> {
    inner: S,
    settings: Arc<Settings>,
}

impl<S> Waf<S> {
    pub(crate) fn from_parts(inner: S, settings: Arc<Settings>) -> Self {
        Self { inner, settings }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for Waf<S>
where
    S: Service<Request<WafBody<ReqB>>, Response = Response<ResB>> + Clone,
    ReqB: Body,
    ResB: Body,
{
    type Response = Response<WafBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqB, ResB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let (parts, body) = req.into_parts();
        // The ready service goes with the request; a clone stays for the next call.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let settings = self.settings.clone();
        // Without a body to wait for, phase 2 runs with the headers.
        if self.settings.request_headers_only || body.is_end_stream() {
            let evaluation = Evaluation::spawn({
                let settings = settings.clone();
                move || request_head(&settings, parts, true)
            });
            ResponseFuture::headers_only(settings, evaluation, body, inner)
        } else {
            ResponseFuture::with_body(settings, parts, body, inner)
        }
    }
}

/// What a step decided.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Go on, with the exchange.
    Pass(Exchange),
    /// Answer with the intervention (the exchange is over: its audit log, if any).
    Refuse(Intervention, Option<AuditLog>),
}

impl Verdict {
    fn of(exchange: Exchange, intervention: Option<Intervention>) -> Self {
        match intervention {
            None => Self::Pass(exchange),
            Some(it) => {
                let audit = exchange.finish(it.status().as_u16());
                Self::Refuse(it, audit)
            }
        }
    }

    fn failed(why: &str) -> Self {
        Self::Refuse(Intervention::failed(why), None)
    }
}

/// ModSecurity's spelling of an HTTP version.
pub(crate) fn version_str(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2.0",
        Version::HTTP_3 => "3.0",
        _ => "1.1",
    }
}

/// Phase 1 (and 2 when `end`): runs on an evaluation thread.
pub(crate) fn request_head(
    settings: &Arc<Settings>,
    parts: request::Parts,
    end: bool,
) -> (request::Parts, Verdict) {
    let mut exchange = match Exchange::start(settings) {
        Ok(exchange) => exchange,
        Err(e) => return (parts, Verdict::failed(&e)),
    };
    let uri = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    // HTTP/2 carries the host in `:authority` (the URI): ModSecurity (and the CRS's
    // missing-Host rule) expect a Host header.
    let authority = parts
        .uri
        .authority()
        .filter(|_| !parts.headers.contains_key(HOST))
        .map(|a| (HOST.as_str().as_bytes(), a.as_str().as_bytes()));
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| (name.as_str().as_bytes(), value.as_bytes()))
        .chain(authority);
    let head = RequestHead {
        connection: Connection::of(&parts.extensions),
        method: parts.method.as_str(),
        uri,
        version: version_str(parts.version),
        headers,
    };
    let intervention = exchange.request_headers(head, end);
    (parts, Verdict::of(exchange, intervention))
}

/// Phase 2 with the buffered body: runs on an evaluation thread.
pub(crate) fn request_body(mut exchange: Exchange, body: Bytes) -> Verdict {
    let intervention = exchange.request_body(&body);
    Verdict::of(exchange, intervention)
}

/// Phases 3 and 4 (with the inspected part of the body), then the audit log: runs on an
/// evaluation thread.
pub(crate) fn response(
    mut exchange: Exchange,
    parts: response::Parts,
    body: Bytes,
) -> (response::Parts, Option<Intervention>, Option<AuditLog>) {
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| (name.as_str().as_bytes(), value.as_bytes()));
    let intervention = exchange.response(
        parts.status.as_u16(),
        version_str(parts.version),
        headers,
        &body,
    );
    let status = intervention
        .as_ref()
        .map_or(parts.status, Intervention::status);
    let audit = exchange.finish(status.as_u16());
    (parts, intervention, audit)
}

/// The answer to an intervention: its status, the configured message, `text/plain`.
pub(crate) fn intervention_reply<B: Body>(
    intervention: Intervention,
    message: &Bytes,
    audit: Option<AuditLog>,
) -> Response<WafBody<B>> {
    let mut response = local_reply(intervention.status(), message.clone(), audit);
    if let Some(location) = intervention
        .redirect()
        .and_then(|url| HeaderValue::from_str(url).ok())
    {
        response.headers_mut().insert(LOCATION, location);
    }
    response.extensions_mut().insert(intervention);
    response
}

/// An answer of the layer's own.
pub(crate) fn local_reply<B: Body>(
    status: StatusCode,
    body: Bytes,
    audit: Option<AuditLog>,
) -> Response<WafBody<B>> {
    let mut response = Response::new(WafBody::full(body.clone()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    response.extensions_mut().insert(WafReply);
    if let Some(audit) = audit {
        response.extensions_mut().insert(audit);
    }
    response
}
