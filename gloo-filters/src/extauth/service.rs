//! The [`ExtAuth`] middleware service.

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::HOST;
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body::Body;
use tower::Service;

use super::body::{buffer, Buffered, ExtAuthBody};
use super::future::{CheckFuture, Checked, ResponseFuture};
use super::layer::{ExtAuthLayer, Settings};
use super::{Allowed, Authorize, CheckRequest, Decision, Denied};

/// Marks a response the filter answered itself (in the response's extensions), so outer
/// layers can tell a refusal from an upstream's `401`/`403`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtAuthDenied;

/// Middleware checking every request with an auth config: Envoy's `ext_authz` filter with
/// Gloo's ext auth server in-process. Made by an [`ExtAuthLayer`].
///
/// An allowed request reaches the inner service with the config's headers set (a header a
/// step sets replaces the client's; several values of one header are joined with `,`, as
/// Envoy does), the user id header set or removed, and its whole body;
/// the config's response headers are set on the inner service's answer. A denied request
/// never reaches it: the client gets the denial's status, headers and body (with an
/// [`ExtAuthDenied`] extension).
#[derive(Clone, Debug)]
pub struct ExtAuth<S> {
    inner: S,
    layer: ExtAuthLayer,
}

impl<S> ExtAuth<S> {
    pub(crate) fn new(inner: S, layer: ExtAuthLayer) -> Self {
        Self { inner, layer }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

/// What the filter shows the auth steps of a request head.
pub(crate) fn check_request(parts: &Parts, body: Bytes) -> CheckRequest {
    let host = parts
        .headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| parts.uri.authority().map(|a| a.as_str().to_owned()))
        .unwrap_or_default();
    CheckRequest {
        method: parts.method.clone(),
        uri: parts.uri.clone(),
        headers: parts.headers.clone(),
        scheme: parts.uri.scheme_str().unwrap_or("http").to_owned(),
        host,
        peer: parts.extensions.get::<SocketAddr>().copied(),
        body,
    }
}

/// How a step's headers for the client are applied, value by value: `(name, value, append)`.
/// A header with one value replaces the answer's; each value of a header with several is
/// added to the answer's (`set-cookie`). This is what Envoy does with the ext_authz answer
/// that [`grpc`](super::grpc) builds from them: Envoy adds before it sets, so a set after an
/// add would drop the added values.
pub(crate) fn response_actions(headers: &HeaderMap) -> Vec<(HeaderName, HeaderValue, bool)> {
    let mut out = Vec::with_capacity(headers.len());
    for name in headers.keys() {
        let values = headers.get_all(name);
        let append = values.iter().nth(1).is_some();
        for value in values {
            out.push((name.clone(), value.clone(), append));
        }
    }
    out
}

/// Applies a step's headers for the client to `to` (see [`response_actions`]).
pub(crate) fn apply_response_headers(to: &mut HeaderMap, from: &HeaderMap) {
    for (name, value, append) in response_actions(from) {
        if append {
            to.append(name, value);
        } else {
            to.insert(name, value);
        }
    }
}

/// A step's upstream headers as they replace the request's: one value per name, several
/// values joined with `,` (what Envoy sends when an ext_authz answer sets a header and
/// appends to it).
pub(crate) fn upstream_values(headers: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    headers
        .keys()
        .filter_map(|name| {
            let mut values = headers.get_all(name).iter();
            let first = values.next()?;
            let mut joined = first.as_bytes().to_vec();
            for value in values {
                joined.push(b',');
                joined.extend_from_slice(value.as_bytes());
            }
            let value = HeaderValue::from_bytes(&joined).ok()?;
            Some((name.clone(), value))
        })
        .collect()
}

/// The request as the inner service gets it once `allowed`.
pub(crate) fn apply_allowed(parts: &mut Parts, allowed: &mut Allowed, settings: &Settings) {
    for name in &allowed.remove_upstream_headers {
        parts.headers.remove(name);
    }
    for (name, value) in upstream_values(&allowed.upstream_headers) {
        parts.headers.insert(name, value);
    }
    if let Some(header) = &settings.user_id_header {
        let value = allowed
            .user_id
            .as_deref()
            .and_then(|id| http::HeaderValue::try_from(id).ok());
        match value {
            Some(value) => {
                parts.headers.insert(header.clone(), value);
            }
            None => {
                parts.headers.remove(header);
            }
        }
    }
}

/// The answer the client gets for `denied`.
pub(crate) fn denied_response<B: From<Bytes>>(denied: Denied) -> Response<B> {
    let mut response = Response::new(B::from(denied.body));
    *response.status_mut() = denied.status;
    *response.headers_mut() = denied.headers;
    response.extensions_mut().insert(ExtAuthDenied);
    response
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for ExtAuth<S>
where
    S: Service<Request<ExtAuthBody<ReqB>>, Response = Response<ResB>> + Clone,
    ReqB: Body + Send + Unpin + 'static,
    ReqB::Data: Into<Bytes>,
    ResB: From<Bytes>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, S, ReqB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        // The ready clone serves this request once the check is done (tower's pattern).
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let auth: Arc<dyn Authorize> = Arc::clone(&self.layer.auth);
        let body_settings = self.layer.settings.body;
        let (parts, body) = request.into_parts();
        let check: CheckFuture<ReqB> = Box::pin(async move {
            let (seen, body) = match body_settings {
                None => (Bytes::new(), ExtAuthBody::new(body)),
                Some(settings) => {
                    match buffer(body, settings.max_bytes, settings.allow_partial).await {
                        Buffered::Ready(seen, body) => (seen, body),
                        Buffered::TooLarge => {
                            let mut denied = Denied::status(StatusCode::PAYLOAD_TOO_LARGE);
                            denied.body = Bytes::from_static(b"Payload Too Large");
                            return Checked::Denied(denied);
                        }
                        Buffered::Failed => {
                            return Checked::Denied(Denied::status(StatusCode::BAD_REQUEST))
                        }
                    }
                }
            };
            let request = check_request(&parts, seen);
            match auth.authorize(&request).await {
                Decision::Allow(allowed) => Checked::Allowed(parts, body, allowed),
                Decision::Deny(denied) => Checked::Denied(denied),
            }
        });
        ResponseFuture::checking(check, inner, Arc::clone(&self.layer.settings))
    }
}
