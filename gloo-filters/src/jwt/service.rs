//! The [`JwtAuthn`] middleware service, its refusals and the claims it hands on.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE, HOST, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{Method, Request, Response};
use serde_json::{Map, Value};
use tower::Service;

use super::future::{ResponseFuture, VerifyOutcome};
use super::layer::{JwtAuthnLayer, Settings, Shared};
use super::status::JwtStatus;
use super::verifier::{Eval, NeedFetch, Node};
use crate::metadata::{DynamicMetadata, JWT_AUTHN_NAMESPACE};

/// Marks a response this middleware answered itself (in the response's extensions), so
/// outer layers can tell a refusal from an upstream's `401`/`403`; carries the reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JwtRejected {
    status: JwtStatus,
}

impl JwtRejected {
    /// Why the request was refused.
    pub fn status(&self) -> JwtStatus {
        self.status
    }
}

/// One verified token: its provider, header and claims (Envoy writes these to dynamic
/// metadata with `header_in_metadata` / `payload_in_metadata`).
#[derive(Clone, Debug)]
pub struct VerifiedJwt {
    pub(crate) provider: Arc<str>,
    pub(crate) header: Arc<Map<String, Value>>,
    pub(crate) claims: Arc<Map<String, Value>>,
    /// The provider's `payload_in_metadata` key.
    pub(crate) payload_in_metadata: Option<Arc<str>>,
}

impl VerifiedJwt {
    /// The name of the provider that verified it.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The JOSE header (`alg`, `kid`, ...).
    pub fn header(&self) -> &Map<String, Value> {
        &self.header
    }

    /// The payload: every claim.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }
}

/// The tokens verified for a request, in the order they were verified; inserted into the
/// request's extensions for the inner service when at least one token verified.
#[derive(Clone, Debug, Default)]
pub struct VerifiedJwts(pub(crate) Vec<VerifiedJwt>);

impl VerifiedJwts {
    /// All verified tokens.
    pub fn iter(&self) -> impl Iterator<Item = &VerifiedJwt> {
        self.0.iter()
    }

    /// The first token verified by provider `name`.
    pub fn by_provider(&self, name: &str) -> Option<&VerifiedJwt> {
        self.0.iter().find(|jwt| jwt.provider() == name)
    }
}

/// Puts the verified tokens in the request's extensions: [`VerifiedJwts`], and each payload
/// whose provider says `payload_in_metadata` in the
/// [`DynamicMetadata`](crate::metadata::DynamicMetadata), as Envoy writes it.
pub(crate) fn insert_verified(extensions: &mut http::Extensions, verified: Vec<VerifiedJwt>) {
    if verified.is_empty() {
        return;
    }
    let mut metadata = DynamicMetadata::default();
    for jwt in &verified {
        if let Some(key) = &jwt.payload_in_metadata {
            metadata.set(
                JWT_AUTHN_NAMESPACE,
                key,
                Value::Object(Map::clone(&jwt.claims)),
            );
        }
    }
    metadata.publish(extensions);
    extensions.insert(VerifiedJwts(verified));
}

/// Middleware enforcing a JWT requirement: Envoy's `envoy.filters.http.jwt_authn`.
///
/// Made by a [`JwtAuthnLayer`]; see the [module docs](super) for the semantics. Requests that
/// pass reach the inner service with the headers Envoy would send upstream and a
/// [`VerifiedJwts`] extension; refused ones never reach it.
///
/// The inner service must be `Clone`: when a request has to wait for a remote JWKS, the
/// service made ready by `poll_ready` travels with it and this one keeps a fresh clone (the
/// usual tower pattern). With inline keys only, requests are verified inside `call` and the
/// response future is the inner one (nothing is boxed).
pub struct JwtAuthn<S> {
    inner: S,
    layer: JwtAuthnLayer,
}

impl<S> JwtAuthn<S> {
    pub(crate) fn from_layer(inner: S, layer: JwtAuthnLayer) -> Self {
        Self { inner, layer }
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

impl<S: Clone> Clone for JwtAuthn<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for JwtAuthn<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthn")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

fn is_cors_preflight(parts: &Parts) -> bool {
    let present = |name: &str| parts.headers.get(name).is_some_and(|v| !v.is_empty());
    parts.method == Method::OPTIONS && present("origin") && present("access-control-request-method")
}

/// Envoy's `buildOriginalUri(headers, 256)`: `x-forwarded-proto://host/path`, the path cut at
/// 256 bytes.
fn original_uri(parts: &Parts) -> String {
    let proto = parts
        .headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .or_else(|| parts.uri.scheme_str())
        .unwrap_or("http");
    let host = parts
        .headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .unwrap_or("");
    let path = parts.uri.path_and_query().map_or("", |pq| pq.as_str());
    let mut cut = path.len().min(256);
    while !path.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{proto}://{host}{}", &path[..cut])
}

/// The answer to a refused request, as Envoy's `Filter::onComplete` sends it.
pub(crate) fn rejection<B: From<Bytes>>(
    status: JwtStatus,
    parts: &Parts,
    settings: &Settings,
) -> Response<B> {
    let body = if settings.strip_failure_response {
        Bytes::new()
    } else {
        Bytes::from_static(status.as_str().as_bytes())
    };
    let mut response = Response::new(B::from(body));
    *response.status_mut() = status.http_status();
    response.extensions_mut().insert(JwtRejected { status });
    if !settings.strip_failure_response {
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let mut challenge = format!("Bearer realm=\"{}\"", original_uri(parts));
        if status != JwtStatus::JwtMissed {
            challenge.push_str(", error=\"invalid_token\"");
        }
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            headers.insert(WWW_AUTHENTICATE, value);
        }
    }
    response
}

/// Waits for the remote JWKS an evaluation needed, then evaluates again from the original
/// headers (each provider is fetched at most once per request).
async fn verify_after_fetch(
    shared: Arc<Shared>,
    node: Arc<Node>,
    mut parts: Parts,
    mut need: NeedFetch,
) -> VerifyOutcome {
    let (original_headers, original_uri) = (parts.headers.clone(), parts.uri.clone());
    let mut waited = Vec::new();
    loop {
        if let Some(cache) = shared.providers.remote(need.provider) {
            cache.refresh(need.seen).await;
        }
        waited.push(need.provider);
        parts.headers = original_headers.clone();
        parts.uri = original_uri.clone();
        let mut eval = Eval::new(&shared.providers, shared.settings.max_token_size, &waited);
        match eval.run(&node, &mut parts.headers, &mut parts.uri) {
            Ok(Ok(())) => return (parts, Ok(eval.verified)),
            Ok(Err(status)) => {
                // The refusal names the URI as the client sent it.
                parts.uri = original_uri;
                return (parts, Err(status));
            }
            // A provider never asks twice (`waited`), so this ends after one fetch per
            // remote provider; the guard only keeps that promise explicit.
            Err(next) if !waited.contains(&next.provider) => need = next,
            Err(_) => return (parts, Err(JwtStatus::JwksFetchFail)),
        }
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for JwtAuthn<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    ReqB: Send + 'static,
    ResB: From<Bytes>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, S, ReqB, ResB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let (mut parts, body) = req.into_parts();
        let shared = &self.layer.shared;
        if shared.settings.bypass_cors_preflight && is_cors_preflight(&parts) {
            return ResponseFuture::inner(self.inner.call(Request::from_parts(parts, body)));
        }
        // Only a requirement that may wait for a fetch needs the untouched headers back; the
        // URI is cheap to keep (reference-counted) and names the request in a refusal.
        let snapshot = self.layer.may_fetch.then(|| parts.headers.clone());
        let original_uri = parts.uri.clone();
        let mut eval = Eval::new(&shared.providers, shared.settings.max_token_size, &[]);
        match eval.run(&self.layer.node, &mut parts.headers, &mut parts.uri) {
            Ok(Ok(())) => {
                insert_verified(&mut parts.extensions, eval.verified);
                ResponseFuture::inner(self.inner.call(Request::from_parts(parts, body)))
            }
            Ok(Err(status)) => {
                parts.uri = original_uri;
                ResponseFuture::rejected(rejection(status, &parts, &shared.settings))
            }
            Err(need) => {
                let Some(snapshot) = snapshot else {
                    // Unreachable: only remote providers ask for a fetch.
                    return ResponseFuture::rejected(rejection(
                        JwtStatus::JwksFetchFail,
                        &parts,
                        &shared.settings,
                    ));
                };
                parts.headers = snapshot;
                parts.uri = original_uri;
                // The ready service goes with the request; this one gets a fresh clone.
                let clone = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, clone);
                let verify = Box::pin(verify_after_fetch(
                    Arc::clone(shared),
                    Arc::clone(&self.layer.node),
                    parts,
                    need,
                ));
                ResponseFuture::verifying(verify, ready, body, shared.settings)
            }
        }
    }
}
