//! The [`Transform`] middleware service, and the request/response steps its future runs.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use http::{request, response, HeaderMap, Request, Response, StatusCode};
use http_body::Body;
use tower::Service;

use super::body::TransformBody;
use super::future::ResponseFuture;
use super::head::{Head, Kind};
use super::layer::{Compiled, ResponseChoice};
use super::metadata::{
    ClearRouteCache, DynamicMetadata, ResponseCodeDetails, TransformationFailed,
};
use super::transformer::{Outcome, Transformer};

/// Middleware applying Gloo's request and response transformations.
///
/// Build it with [`TransformationLayer`](super::TransformationLayer); see the
/// [module docs](super) for the semantics. The inner service receives
/// `Request<TransformBody<ReqB>>` and the middleware returns `Response<TransformBody<ResB>>`.
///
/// The inner service must be `Clone`: when the request body has to be buffered first, the
/// ready service goes into the response future and a clone takes its place (the usual tower
/// pattern).
#[derive(Clone, Debug)]
pub struct Transform<S> {
    inner: S,
    compiled: Arc<Compiled>,
    max_body_bytes: usize,
}

impl<S> Transform<S> {
    pub(crate) fn from_parts(inner: S, compiled: Arc<Compiled>, max_body_bytes: usize) -> Self {
        Self {
            inner,
            compiled,
            max_body_bytes,
        }
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

impl<S, ReqB, ResB> Service<Request<ReqB>> for Transform<S>
where
    S: Service<Request<TransformBody<ReqB>>, Response = Response<ResB>> + Clone,
    ReqB: Body,
    ResB: Body,
{
    type Response = Response<TransformBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqB, ResB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let (mut parts, body) = req.into_parts();
        let mut ctx = Ctx::new(self.compiled.clone(), self.max_body_bytes, &mut parts);
        match ctx.needs_request_body() {
            true if !body.is_end_stream() => {
                if body.size_hint().lower() > self.max_body_bytes as u64 {
                    return ResponseFuture::ready(local_reply(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        PAYLOAD_TOO_LARGE,
                    ));
                }
                // The ready service goes with the request; a clone stays for the next call.
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::request_body(ctx, parts, body, inner)
            }
            _ => match ctx.finish_request(parts, ReqBody::Stream(body)) {
                Ok(req) => ResponseFuture::inner(ctx, self.inner.call(req)),
                Err(message) => {
                    ResponseFuture::ready(local_reply(StatusCode::BAD_REQUEST, &message))
                }
            },
        }
    }
}

/// envoy-gloo's answer bodies.
pub(crate) const PAYLOAD_TOO_LARGE: &str = "payload too large";
const BAD_REQUEST: &str = "bad request";

/// A body as the transformation sees it.
pub(crate) enum ReqBody<B> {
    /// Not buffered: streamed on untouched (the transformation sees an empty body).
    Stream(B),
    /// Buffered: the data and the trailers.
    Buffered(Bytes, Option<HeaderMap>),
}

/// What one request/response exchange carries from the request to the response.
#[derive(Debug)]
pub(crate) struct Ctx {
    compiled: Arc<Compiled>,
    rule: Option<usize>,
    request_head: Option<Arc<Head>>,
    pub(crate) max_body_bytes: usize,
}

/// Where a response goes next.
pub(crate) enum ResponseStep<B: Body> {
    Ready(Response<TransformBody<B>>),
    Buffer(response::Parts, B, ResponseChoice),
}

impl Ctx {
    /// The context of an exchange whose request head is `parts`: picks the rule.
    pub(crate) fn new(
        compiled: Arc<Compiled>,
        max_body_bytes: usize,
        parts: &mut request::Parts,
    ) -> Self {
        let head = take_request_head(parts);
        let rule = compiled.match_request(&head);
        put_request_head(parts, head);
        Self {
            compiled,
            rule,
            request_head: None,
            max_body_bytes,
        }
    }

    fn request_transformer(&self) -> Option<&Transformer> {
        self.compiled.rule(self.rule?)?.request.as_ref()
    }

    /// Whether the request transformation reads the body (so it must be buffered first).
    pub(crate) fn needs_request_body(&self) -> bool {
        self.request_transformer()
            .is_some_and(Transformer::needs_body)
    }

    /// Whether the response may be transformed (so its head must be seen).
    #[cfg_attr(not(feature = "extproc-transform"), allow(dead_code))]
    pub(crate) fn may_transform_response(&self) -> bool {
        self.compiled.may_transform_response(self.rule)
    }

    /// Applies the request transformation (if any); `Err` is the local reply's message.
    pub(crate) fn finish_request<B: Body>(
        &mut self,
        mut parts: request::Parts,
        body: ReqBody<B>,
    ) -> Result<Request<TransformBody<B>>, String> {
        let compiled = self.compiled.clone();
        let rule = self.rule.and_then(|i| compiled.rule(i));
        let Some(transformer) = rule.and_then(|r| r.request.as_ref()) else {
            if compiled.may_transform_response(self.rule) {
                self.request_head = Some(Arc::new(request_head(&parts)));
            }
            return Ok(Request::from_parts(parts, body.into_body()));
        };
        let mut head = take_request_head(&mut parts);
        let result = transformer.transform(&mut head, body.data(), None);
        if result.is_ok() && compiled.may_transform_response(self.rule) {
            self.request_head = Some(Arc::new(head.clone()));
        }
        put_request_head(&mut parts, head);
        let outcome = result.map_err(|e| format!("{BAD_REQUEST}: {e}"))?;
        let body = apply_body(&mut parts.headers, transformer, body, outcome.body);
        publish(&mut parts.extensions, outcome.metadata);
        if rule.is_some_and(|r| r.clear_route_cache) {
            parts.extensions.insert(ClearRouteCache);
        }
        Ok(Request::from_parts(parts, body))
    }

    /// Picks the response transformation and transforms at once if it needs no body.
    pub(crate) fn start_response<B: Body>(&self, response: Response<B>) -> ResponseStep<B> {
        let (mut parts, body) = response.into_parts();
        let head = Head::response(parts.status, std::mem::take(&mut parts.headers));
        let details = parts
            .extensions
            .get::<ResponseCodeDetails>()
            .map(|d| d.0.as_str());
        let choice = self.compiled.match_response(self.rule, &head, details);
        parts.headers = head.headers;
        let Some((choice, transformer)) =
            choice.and_then(|c| Some((c, self.compiled.response_transformer(c)?)))
        else {
            return ResponseStep::Ready(Response::from_parts(parts, TransformBody::stream(body)));
        };
        if transformer.needs_body() && !body.is_end_stream() {
            if body.size_hint().lower() > self.max_body_bytes as u64 {
                return ResponseStep::Ready(response_error(
                    parts,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    PAYLOAD_TOO_LARGE.to_owned(),
                ));
            }
            return ResponseStep::Buffer(parts, body, choice);
        }
        ResponseStep::Ready(self.finish_response(parts, ReqBody::Stream(body), choice))
    }

    /// Applies response transformation `choice`.
    pub(crate) fn finish_response<B: Body>(
        &self,
        mut parts: response::Parts,
        body: ReqBody<B>,
        choice: ResponseChoice,
    ) -> Response<TransformBody<B>> {
        let Some(transformer) = self.compiled.response_transformer(choice) else {
            return Response::from_parts(parts, body.into_body());
        };
        let mut head = Head::response(parts.status, std::mem::take(&mut parts.headers));
        let result = transformer.transform(&mut head, body.data(), self.request_head.clone());
        if let Kind::Response { status } = head.kind {
            parts.status = status;
        }
        parts.headers = head.headers;
        match result {
            Ok(outcome) => {
                let Outcome {
                    body: new,
                    metadata,
                } = outcome;
                let body = apply_body(&mut parts.headers, transformer, body, new);
                publish(&mut parts.extensions, metadata);
                Response::from_parts(parts, body)
            }
            Err(e) => response_error(
                parts,
                StatusCode::BAD_REQUEST,
                format!("{BAD_REQUEST}: {e}"),
            ),
        }
    }
}

impl<B: Body> ReqBody<B> {
    fn data(&self) -> &Bytes {
        static EMPTY: Bytes = Bytes::new();
        match self {
            Self::Stream(_) => &EMPTY,
            Self::Buffered(data, _) => data,
        }
    }

    fn into_body(self) -> TransformBody<B> {
        match self {
            Self::Stream(b) => TransformBody::stream(b),
            Self::Buffered(data, trailers) => TransformBody::buffered(data, trailers),
        }
    }
}

/// Puts the new body in place (fixing `content-length`), and removes `content-type` when the
/// body ends up empty and the transformation is not a passthrough, as envoy-gloo does.
fn apply_body<B: Body>(
    headers: &mut HeaderMap,
    transformer: &Transformer,
    body: ReqBody<B>,
    new: Option<Bytes>,
) -> TransformBody<B> {
    let (body, empty) = match (new, body) {
        (Some(new), body) => {
            let trailers = match body {
                ReqBody::Buffered(_, trailers) => trailers,
                ReqBody::Stream(_) => None,
            };
            headers.remove(TRANSFER_ENCODING);
            headers.insert(CONTENT_LENGTH, HeaderValue::from(new.len()));
            let empty = new.is_empty();
            (TransformBody::buffered(new, trailers), empty)
        }
        (None, ReqBody::Buffered(data, trailers)) => {
            let empty = data.is_empty();
            (TransformBody::buffered(data, trailers), empty)
        }
        (None, ReqBody::Stream(body)) => {
            // Only a body known to be empty counts; a streamed one is not looked at.
            let empty = body.is_end_stream();
            (TransformBody::stream(body), empty)
        }
    };
    if empty && !transformer.passthrough() {
        headers.remove(CONTENT_TYPE);
    }
    body
}

fn publish(extensions: &mut http::Extensions, metadata: DynamicMetadata) {
    metadata.publish(extensions);
}

fn take_request_head(parts: &mut request::Parts) -> Head {
    Head::request(
        std::mem::take(&mut parts.method),
        std::mem::take(&mut parts.uri),
        std::mem::take(&mut parts.headers),
    )
}

fn put_request_head(parts: &mut request::Parts, head: Head) {
    if let Kind::Request { method, uri } = head.kind {
        parts.method = method;
        parts.uri = uri;
    }
    parts.headers = head.headers;
}

fn request_head(parts: &request::Parts) -> Head {
    Head::request(
        parts.method.clone(),
        parts.uri.clone(),
        parts.headers.clone(),
    )
}

/// A request refused by the layer (Envoy's `sendLocalReply`): `text/plain`, details
/// `transformation_filter_error`.
pub(crate) fn local_reply<B: Body>(
    status: StatusCode,
    message: &str,
) -> Response<TransformBody<B>> {
    let body = Bytes::copy_from_slice(message.as_bytes());
    let mut response = Response::new(TransformBody::full(body.clone()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    response.extensions_mut().insert(TransformationFailed);
    response.extensions_mut().insert(ResponseCodeDetails(
        TransformationFailed::DETAILS.to_owned(),
    ));
    response
}

/// A response whose transformation failed (envoy-gloo's `responseError`): the status and
/// body change, `content-type` goes, the other headers stay.
pub(crate) fn response_error<B: Body>(
    mut parts: response::Parts,
    status: StatusCode,
    message: String,
) -> Response<TransformBody<B>> {
    parts.status = status;
    parts.headers.remove(CONTENT_TYPE);
    parts.headers.remove(TRANSFER_ENCODING);
    parts
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(message.len()));
    parts.extensions.insert(TransformationFailed);
    Response::from_parts(parts, TransformBody::full(message))
}
