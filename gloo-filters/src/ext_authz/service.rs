//! The [`ExtAuthz`] middleware service.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::google::protobuf::Struct;
use http::header::{HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, UPGRADE};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::Body;
use tonic::client::GrpcService;
use tower::Service;

use super::body::{buffer, Buffered, ExtAuthzBody};
use super::check::{apply, check_request, rewrite_query, verdict, Allow, Reply, Verdict};
use super::error::{CheckError, Rejected, RejectedKind};
use super::future::{Decided, ResponseFuture};
use super::layer::Config;

/// The dynamic metadata an allowing `CheckResponse` carried (Envoy's
/// `envoy.filters.http.ext_authz` dynamic metadata namespace), put in the extensions of the
/// request handed to the inner service.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DynamicMetadata(pub Struct);

/// The header Envoy adds to a request let through because the check failed.
const FAILURE_MODE_ALLOWED: &str = "x-envoy-auth-failure-mode-allowed";

/// Middleware that asks an authorization server about each request before passing it on:
/// Envoy's `ext_authz` HTTP filter. Build it with [`ExtAuthzLayer`](super::ExtAuthzLayer);
/// see the [module docs](super) for the semantics.
///
/// The inner service gets the request with an [`ExtAuthzBody`] (the original body, or the
/// part buffered for the check followed by the rest). Answers the middleware gives itself
/// are built with `ResBody: From<Bytes>` and carry [`Rejected`] in their extensions.
#[derive(Clone)]
pub struct ExtAuthz<S, C> {
    inner: S,
    client: C,
    config: Arc<Config>,
}

impl<S, C> ExtAuthz<S, C> {
    pub(crate) fn new(inner: S, client: C, config: Arc<Config>) -> Self {
        Self {
            inner,
            client,
            config,
        }
    }
}

impl<S, C> std::fmt::Debug for ExtAuthz<S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtAuthz")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S, C, ReqBody, ResBody> Service<Request<ReqBody>> for ExtAuthz<S, C>
where
    S: Service<Request<ExtAuthzBody<ReqBody>>, Response = Response<ResBody>> + Clone,
    ReqBody: Body<Data = Bytes> + Send + Unpin + 'static,
    ResBody: From<Bytes> + Send + 'static,
    C: GrpcService<tonic::body::Body> + Clone + Send + 'static,
    C::Future: Send,
    C::Error: Into<tonic::codegen::StdError>,
    C::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <C::ResponseBody as Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The clone is not ready: keep the ready service for this request.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let decision = decide(self.client.clone(), self.config.clone(), request);
        ResponseFuture::new(Box::pin(decision), inner)
    }
}

/// Whether a request upgrades the connection (Envoy buffers no body for those).
fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(UPGRADE)
        && headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// A local answer: `status`, the server's headers, then (for a non-empty body) `content-type:
/// text/plain` unless the server gave one, and the body's `content-length`.
fn local_reply<R: From<Bytes>>(
    status: StatusCode,
    reply: Option<&Reply>,
    body: Bytes,
    kind: RejectedKind,
) -> Response<R> {
    let mut headers = HeaderMap::new();
    if let Some(reply) = reply {
        apply(&mut headers, &reply.headers);
    }
    if !body.is_empty() && !headers.contains_key(CONTENT_TYPE) {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    }
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    let mut response = Response::new(R::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response.extensions_mut().insert(Rejected::new(kind));
    response
}

/// Buffers what the check needs, asks the server, and says what to do with the request.
async fn decide<C, ReqBody, ResBody>(
    client: C,
    config: Arc<Config>,
    request: Request<ReqBody>,
) -> Decided<ReqBody, ResBody>
where
    ReqBody: Body<Data = Bytes> + Send + Unpin + 'static,
    ResBody: From<Bytes>,
    C: GrpcService<tonic::body::Body>,
    C::Error: Into<tonic::codegen::StdError>,
    C::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <C::ResponseBody as Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let (mut parts, body) = request.into_parts();
    let connection = (config.connection)(&parts.extensions);
    let metadata = config.metadata.and_then(|read| read(&parts.extensions));
    // Envoy buffers only when the request has a body and does not upgrade.
    let (body, buffered) = if config.buffer && !body.is_end_stream() && !is_upgrade(&parts.headers)
    {
        match buffer(body, config.max_request_bytes, config.allow_partial_message).await {
            Buffered::Read { data, body } => (body, Some(data)),
            Buffered::TooLarge => {
                return Decided::Respond(local_reply(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    None,
                    Bytes::from_static(b"Payload Too Large"),
                    RejectedKind::PayloadTooLarge,
                ))
            }
            Buffered::Failed => {
                return Decided::Respond(local_reply(
                    StatusCode::BAD_REQUEST,
                    None,
                    Bytes::new(),
                    RejectedKind::BodyError,
                ))
            }
        }
    } else {
        (ExtAuthzBody::new(body), None)
    };
    let check = check_request(&parts, connection, &config, buffered.as_ref(), metadata);
    let mut call = tonic::Request::new(check);
    call.set_timeout(config.timeout);
    let answer =
        tokio::time::timeout(config.timeout, AuthorizationClient::new(client).check(call)).await;
    let verdict = match answer {
        Ok(Ok(response)) => Ok(verdict(response.into_inner())),
        Ok(Err(status)) => Err(CheckError::new(format!(
            "{:?}: {}",
            status.code(),
            status.message()
        ))),
        Err(_) => Err(CheckError::new(format!(
            "no answer within {:?}",
            config.timeout
        ))),
    };
    let error_reply = match verdict {
        Ok(Verdict::Allow(mut allow)) => {
            let response_headers = std::mem::take(&mut allow.response_headers);
            return Decided::Forward {
                request: allowed(parts, body, allow),
                response_headers,
            };
        }
        Ok(Verdict::Deny(reply)) => {
            let status = reply.status.unwrap_or(StatusCode::FORBIDDEN);
            let mut body = reply.body.clone().into_bytes();
            if config.max_denied_response_body_bytes > 0 {
                body.truncate(config.max_denied_response_body_bytes);
            }
            return Decided::Respond(local_reply(
                status,
                Some(&reply),
                Bytes::from(body),
                RejectedKind::Denied,
            ));
        }
        Ok(Verdict::Error(reply)) => Some(reply),
        Err(error) => {
            tracing::debug!("{error}");
            None
        }
    };
    if config.failure_mode_allow {
        if config.failure_mode_allow_header_add {
            parts
                .headers
                .append(FAILURE_MODE_ALLOWED, HeaderValue::from_static("true"));
        }
        return Decided::Forward {
            request: Request::from_parts(parts, body),
            response_headers: Vec::new(),
        };
    }
    let status = error_reply
        .as_ref()
        .and_then(|r| r.status)
        .unwrap_or(config.status_on_error);
    let body = error_reply
        .as_ref()
        .map(|r| Bytes::from(r.body.clone()))
        .unwrap_or_default();
    Decided::Respond(local_reply(
        status,
        error_reply.as_ref(),
        body,
        RejectedKind::Error,
    ))
}

/// The request as the server let it through: headers set, added and removed, query
/// parameters rewritten, the dynamic metadata in its extensions.
fn allowed<B>(
    mut parts: http::request::Parts,
    body: ExtAuthzBody<B>,
    allow: Allow,
) -> Request<ExtAuthzBody<B>> {
    apply(&mut parts.headers, &allow.request_headers);
    for name in &allow.remove {
        parts.headers.remove(name);
    }
    if !allow.query_set.is_empty() || !allow.query_remove.is_empty() {
        let current = parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_string(), |p| p.as_str().to_string());
        let rewritten = rewrite_query(&current, &allow.query_set, &allow.query_remove);
        let original = parts.uri.clone();
        let mut uri = std::mem::take(&mut parts.uri).into_parts();
        match rewritten.parse() {
            Ok(path_and_query) => uri.path_and_query = Some(path_and_query),
            Err(_) => tracing::debug!("ext_authz: query rewrite {rewritten:?} is not a valid URI"),
        }
        parts.uri = http::Uri::from_parts(uri).unwrap_or(original);
    }
    if let Some(metadata) = allow.metadata {
        parts.extensions.insert(DynamicMetadata(metadata));
    }
    Request::from_parts(parts, body)
}
