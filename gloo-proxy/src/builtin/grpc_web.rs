//! Envoy's gRPC-Web filter (`envoy.filters.http.grpc_web`): see [`GrpcWebLayer`].

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine as _;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use envoy_types::pb::google::protobuf::Any;
use futures_util::future::Either;
use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body::{Body as _, Frame};
use tower::{Layer, Service};

use crate::body::{Body, BoxError};
use crate::filter::{FilterFactory, FilterLayer};

/// Envoy's gRPC-Web filter name.
pub const GRPC_WEB: &str = "envoy.filters.http.grpc_web";

/// The config type URL of Envoy's gRPC-Web filter (an empty message).
pub const GRPC_WEB_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb";

const CT_GRPC_WEB_PROTO: &str = "application/grpc-web+proto";
const CT_GRPC_WEB_TEXT_PROTO: &str = "application/grpc-web-text+proto";
const CT_GRPC_WEB_TEXT: &str = "application/grpc-web-text";
const CT_GRPC_WEB: &str = "application/grpc-web";

/// What the upstream is told the client accepts when it said nothing (Envoy's default).
const DEFAULT_GRPC_ACCEPT_ENCODING: &str = "identity";

/// The most of a streamed non-gRPC answer that becomes its `grpc-message` (Envoy's limit).
const MAX_MESSAGE_BYTES: usize = 16_384;

/// The flag of a gRPC-Web trailers frame.
const TRAILERS_FRAME: u8 = 0x80;

/// The local reply to a text request whose body is not base64 (Envoy's).
const BAD_BASE64: &str = "Bad gRPC-web request, invalid base64 data.";

/// Whether a request is a gRPC-Web call: its `content-type` is exactly one of gRPC-Web's four
/// (with no parameters, as Envoy matches them).
///
/// ```
/// use gloo_proxy::builtin::is_grpc_web_request;
/// let mut headers = http::HeaderMap::new();
/// headers.insert("content-type", "application/grpc-web-text".parse().unwrap());
/// assert!(is_grpc_web_request(&headers));
/// headers.insert("content-type", "application/grpc".parse().unwrap());
/// assert!(!is_grpc_web_request(&headers));
/// ```
pub fn is_grpc_web_request(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| is_grpc_web_content_type(v.as_bytes()))
}

/// Whether a content type is one of gRPC-Web's four, exactly.
pub(crate) fn is_grpc_web_content_type(value: &[u8]) -> bool {
    value.starts_with(CT_GRPC_WEB.as_bytes())
        && matches!(
            &value[CT_GRPC_WEB.len()..],
            b"" | b"+proto" | b"-text" | b"-text+proto"
        )
}

/// Whether `headers` say gRPC: `application/grpc`, or `application/grpc+` a subtype
/// (`application/grpc-web` is not gRPC), as Envoy's `Grpc::Common::hasGrpcContentType`.
///
/// ```
/// use gloo_proxy::builtin::has_grpc_content_type;
/// let mut headers = http::HeaderMap::new();
/// headers.insert("content-type", "application/grpc+proto".parse().unwrap());
/// assert!(has_grpc_content_type(&headers));
/// headers.insert("content-type", "application/grpc-web".parse().unwrap());
/// assert!(!has_grpc_content_type(&headers));
/// ```
pub fn has_grpc_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| is_grpc_content_type(v.as_bytes()))
}

/// Whether a content type is gRPC's (see [`has_grpc_content_type`]).
pub(crate) fn is_grpc_content_type(value: &[u8]) -> bool {
    const GRPC: &[u8] = b"application/grpc";
    value.starts_with(GRPC) && (value.len() == GRPC.len() || value[GRPC.len()] == b'+')
}

/// The gRPC status of an HTTP status, as Envoy's `Grpc::Utility::httpToGrpcStatus`: 400 →
/// 13 (INTERNAL), 401 → 16 (UNAUTHENTICATED), 403 → 7 (PERMISSION_DENIED), 404 → 12
/// (UNIMPLEMENTED), 429, 502, 503 and 504 → 14 (UNAVAILABLE), anything else → 2 (UNKNOWN).
///
/// ```
/// use gloo_proxy::builtin::grpc_status_of;
/// assert_eq!(grpc_status_of(http::StatusCode::SERVICE_UNAVAILABLE), 14);
/// assert_eq!(grpc_status_of(http::StatusCode::IM_A_TEAPOT), 2);
/// ```
pub fn grpc_status_of(status: StatusCode) -> u16 {
    match status.as_u16() {
        400 => 13,
        401 => 16,
        403 => 7,
        404 => 12,
        429 | 502..=504 => 14,
        _ => 2,
    }
}

/// `text` as a `grpc-message` value: percent-encoded as gRPC says (every byte below a space,
/// from `~` up, and `%`), as Envoy's `PercentEncoding::encode`.
///
/// ```
/// use gloo_proxy::builtin::grpc_message;
/// assert_eq!(grpc_message(b"no healthy upstream"), "no healthy upstream");
/// assert_eq!(grpc_message("50% off\n".as_bytes()), "50%25 off%0A");
/// ```
pub fn grpc_message(text: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text {
        if !(b' '..b'~').contains(&b) || b == b'%' {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(char::from(b));
        }
    }
    out
}

/// Envoy's gRPC-Web filter (`envoy.filters.http.grpc_web`), which Gloo puts on every HTTP
/// listener unless told not to: a browser's gRPC-Web call becomes a gRPC call for the upstream,
/// and the upstream's gRPC answer becomes a gRPC-Web answer the browser can read (its trailers
/// moved into the body, base64 for `application/grpc-web-text`).
///
/// It does what Envoy 1.40's filter does, byte for byte (`differential.rs` sends the same
/// calls through both):
///
/// - **Which requests:** a `content-type` of exactly `application/grpc-web`,
///   `application/grpc-web+proto`, `application/grpc-web-text` or
///   `application/grpc-web-text+proto`. Anything else passes untouched.
/// - **The request:** `content-type: application/grpc`, `te: trailers`, a
///   `grpc-accept-encoding` when the client sent none, no `content-length`; a text body is
///   decoded from base64 as it streams. Invalid base64 is answered 400.
/// - **The answer:** `content-type: application/grpc-web+proto` (or
///   `application/grpc-web-text+proto` for a client that accepts only text); gRPC frames pass
///   (re-encoded frame by frame for text), and the trailers become a last frame (flag `0x80`,
///   then `name:value\r\n` lines).
/// - **An answer that is not gRPC** (a 503 from a proxy on the way, a 404, the proxy's own
///   local replies): its body becomes the `grpc-message` (percent-encoded, at most 16 KiB of a
///   streamed body), its status a `grpc-status` (404 → 12 UNIMPLEMENTED, 503 → 14 UNAVAILABLE,
///   and so on), and the body is dropped, so a gRPC-Web client reads the error it can show.
///
/// An ordinary tower layer:
///
/// ```
/// use std::convert::Infallible;
/// use gloo_proxy::body::Body;
/// use gloo_proxy::builtin::GrpcWebLayer;
/// use http_body_util::BodyExt;
/// use tower::{Layer, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), gloo_proxy::body::BoxError> {
/// // A gRPC server answering one message ("hi") and status 0 in its trailers.
/// let server = tower::service_fn(|request: http::Request<Body>| async move {
///     assert_eq!(request.headers()["content-type"], "application/grpc");
///     let mut trailers = http::HeaderMap::new();
///     trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
///     let frames = futures_util::stream::iter([
///         Ok::<_, Infallible>(http_body::Frame::data(bytes::Bytes::from_static(b"\0\0\0\0\x02hi"))),
///         Ok(http_body::Frame::trailers(trailers)),
///     ]);
///     let mut response = http::Response::new(Body::new(http_body_util::StreamBody::new(frames)));
///     response.headers_mut().insert("content-type", "application/grpc".parse()?);
///     Ok::<_, http::Error>(response)
/// });
/// let request = http::Request::post("/greeter.Greeter/Hello")
///     .header("content-type", "application/grpc-web-text")
///     .header("accept", "application/grpc-web-text")
///     .body(Body::from("AAAAAAJoaQ=="))?;
/// let response = GrpcWebLayer.layer(server).oneshot(request).await?;
/// assert_eq!(response.headers()["content-type"], "application/grpc-web-text+proto");
/// let body = response.into_body().collect().await?.to_bytes();
/// // The message, then the trailers frame, each in base64.
/// assert_eq!(&body[..], b"AAAAAAJoaQ==gAAAAA9ncnBjLXN0YXR1czowDQo=");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcWebLayer;

impl<S> Layer<S> for GrpcWebLayer {
    type Service = GrpcWeb<S>;

    fn layer(&self, inner: S) -> GrpcWeb<S> {
        GrpcWeb { inner }
    }
}

/// The service of [`GrpcWebLayer`]: gRPC-Web calls are converted both ways, everything else
/// passes as it is.
#[derive(Debug, Clone)]
pub struct GrpcWeb<S> {
    inner: S,
}

/// The future of a converted call.
type Converted<E> = Pin<Box<dyn Future<Output = Result<Response<Body>, E>> + Send>>;

impl<S> Service<Request<Body>> for GrpcWeb<S>
where
    S: Service<Request<Body>, Response = Response<Body>>,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Either<S::Future, Converted<S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if !is_grpc_web_request(request.headers()) {
            return Either::Left(self.inner.call(request));
        }
        let (request, call) = Call::start(request);
        let answer = self.inner.call(request);
        Either::Right(Box::pin(async move {
            let response = answer.await?;
            Ok(call.finish(response).await)
        }))
    }
}

/// What a gRPC-Web call's answer is converted with.
struct Call {
    /// The client asked for base64 (`accept: application/grpc-web-text`).
    text_response: bool,
    /// Set when the request's base64 body turned out invalid.
    bad_base64: Arc<AtomicBool>,
}

impl Call {
    /// The request as the upstream gets it.
    fn start(request: Request<Body>) -> (Request<Body>, Call) {
        let (mut parts, body) = request.into_parts();
        let headers = &mut parts.headers;
        let text_request = headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v == CT_GRPC_WEB_TEXT || v == CT_GRPC_WEB_TEXT_PROTO);
        let text_response = headers
            .get(header::ACCEPT)
            .is_some_and(|v| v == CT_GRPC_WEB_TEXT || v == CT_GRPC_WEB_TEXT_PROTO);
        // Its length is the browser's body's, not what the upstream will read.
        headers.remove(header::CONTENT_LENGTH);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
        headers
            .entry("grpc-accept-encoding")
            .or_insert(HeaderValue::from_static(DEFAULT_GRPC_ACCEPT_ENCODING));
        let bad_base64 = Arc::new(AtomicBool::new(false));
        // Wrapped either way: its size is not the browser's any more, and a body of known size
        // would have the HTTP/2 client write a `content-length` again.
        let body = Body::new(GrpcWebRequest {
            inner: body,
            text: text_request.then(BytesMut::new),
            bad: bad_base64.clone(),
        });
        let call = Call {
            text_response,
            bad_base64,
        };
        (Request::from_parts(parts, body), call)
    }

    /// The answer as the client gets it.
    async fn finish(self, response: Response<Body>) -> Response<Body> {
        let response = if self.bad_base64.load(Ordering::Acquire) {
            crate::proxy::local_reply(StatusCode::BAD_REQUEST, BAD_BASE64)
        } else {
            response
        };
        let (mut parts, body) = response.into_parts();
        let end_stream = body.is_end_stream();
        let transform = !is_grpc_response(&parts, end_stream) && !is_grpc_web_response(&parts);
        let content_type = if self.text_response {
            CT_GRPC_WEB_TEXT_PROTO
        } else {
            CT_GRPC_WEB_PROTO
        };
        parts
            .headers
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if end_stream {
            return Response::from_parts(parts, body);
        }
        if transform {
            let message = message_of(body).await;
            if let Ok(value) = HeaderValue::from_str(&grpc_message(&message)) {
                parts.headers.insert("grpc-message", value);
            }
            parts.headers.insert(
                "grpc-status",
                HeaderValue::from(grpc_status_of(parts.status)),
            );
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
            return Response::from_parts(parts, Body::empty());
        }
        // The trailers join the body (and text is re-encoded): a length given for the gRPC
        // body would not be the one sent.
        parts.headers.remove(header::CONTENT_LENGTH);
        let body = Body::new(GrpcWebResponse {
            inner: body,
            text: self.text_response.then(BytesMut::new),
            done: false,
        });
        Response::from_parts(parts, body)
    }
}

/// A gRPC answer (Envoy's `isGrpcResponseHeaders`): headers alone with a `grpc-status`
/// (trailers only), or 200 with a gRPC content type.
fn is_grpc_response(parts: &http::response::Parts, end_stream: bool) -> bool {
    if end_stream {
        return parts.headers.contains_key("grpc-status");
    }
    parts.status == StatusCode::OK && has_grpc_content_type(&parts.headers)
}

/// An upstream that answers gRPC-Web itself: 200 with `application/grpc-web` or
/// `application/grpc-web+proto` (parameters ignored, any case).
fn is_grpc_web_response(parts: &http::response::Parts) -> bool {
    parts.status == StatusCode::OK
        && parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                let media = v.split(';').next().unwrap_or_default().trim_end();
                media.eq_ignore_ascii_case(CT_GRPC_WEB)
                    || media.eq_ignore_ascii_case(CT_GRPC_WEB_PROTO)
            })
}

/// The text of an answer, for its `grpc-message`: all of it when it comes in one piece, else
/// at most [`MAX_MESSAGE_BYTES`] (Envoy stops buffering there).
pub(crate) async fn message_of(mut body: Body) -> Bytes {
    let mut buffered: Option<BytesMut> = None;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let Ok(frame) = frame else { break };
        let Ok(data) = frame.into_data() else {
            // Trailers end it.
            break;
        };
        if body.is_end_stream() {
            match buffered.as_mut() {
                None => return data,
                Some(b) => b.extend_from_slice(&data),
            }
            break;
        }
        let b = buffered.get_or_insert_with(BytesMut::new);
        if b.len() < MAX_MESSAGE_BYTES {
            b.extend_from_slice(&data);
        }
    }
    let mut message = buffered.unwrap_or_default();
    message.truncate(MAX_MESSAGE_BYTES);
    message.freeze()
}

/// A gRPC-Web request body as a gRPC one, of no size known up front. A `grpc-web-text` body
/// (`text` holds what is not decoded yet) is decoded from base64 four characters at a time as
/// it arrives; invalid base64 ends it with an error and flags the call.
struct GrpcWebRequest {
    inner: Body,
    text: Option<BytesMut>,
    bad: Arc<AtomicBool>,
}

impl GrpcWebRequest {
    fn invalid(&self) -> BoxError {
        self.bad.store(true, Ordering::Release);
        BAD_BASE64.into()
    }
}

impl http_body::Body for GrpcWebRequest {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => {
                    let Some(pending) = this.text.as_mut() else {
                        return Poll::Ready(Some(Ok(frame)));
                    };
                    let data = match frame.into_data() {
                        Ok(data) => data,
                        Err(frame) => return Poll::Ready(Some(Ok(frame))),
                    };
                    pending.extend_from_slice(&data);
                    let whole = pending.len() / 4 * 4;
                    if whole == 0 {
                        continue;
                    }
                    let chunk = pending.split_to(whole);
                    return match base64::engine::general_purpose::STANDARD.decode(&chunk) {
                        Ok(decoded) if !decoded.is_empty() => {
                            Poll::Ready(Some(Ok(Frame::data(Bytes::from(decoded)))))
                        }
                        _ => Poll::Ready(Some(Err(this.invalid()))),
                    };
                }
                Poll::Ready(None) if this.text.as_ref().is_none_or(|p| p.is_empty()) => {
                    return Poll::Ready(None)
                }
                // Base64's padding is not optional: the body must end on four characters.
                Poll::Ready(None) => return Poll::Ready(Some(Err(this.invalid()))),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.text.as_ref().is_none_or(|p| p.is_empty()) && self.inner.is_end_stream()
    }
}

/// A gRPC answer as a gRPC-Web one: data passes (for text, re-framed and each frame encoded
/// in base64), trailers become the last frame.
struct GrpcWebResponse {
    inner: Body,
    /// For a text answer: the part of a gRPC frame not complete yet.
    text: Option<BytesMut>,
    done: bool,
}

impl GrpcWebResponse {
    /// The complete frames at the head of `pending`, each encoded in base64.
    fn encode_frames(pending: &mut BytesMut) -> Option<Bytes> {
        let mut out = String::new();
        while let Some(header) = pending.get(..5) {
            let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
            let Some(total) = usize::try_from(length).ok().and_then(|l| l.checked_add(5)) else {
                break;
            };
            if pending.len() < total {
                break;
            }
            let frame = pending.split_to(total);
            base64::engine::general_purpose::STANDARD.encode_string(&frame, &mut out);
        }
        (!out.is_empty()).then(|| Bytes::from(out))
    }

    /// The trailers as a gRPC-Web frame.
    fn trailers_frame(trailers: &HeaderMap, text: bool) -> Bytes {
        let mut lines = BytesMut::new();
        for (name, value) in trailers {
            lines.put_slice(name.as_str().as_bytes());
            lines.put_u8(b':');
            lines.put_slice(value.as_bytes());
            lines.put_slice(b"\r\n");
        }
        let mut frame = BytesMut::with_capacity(5 + lines.len());
        frame.put_u8(TRAILERS_FRAME);
        frame.put_u32(u32::try_from(lines.len()).unwrap_or(u32::MAX));
        frame.put(lines);
        if text {
            let encoded = base64::engine::general_purpose::STANDARD.encode(&frame);
            Bytes::from(encoded)
        } else {
            frame.freeze()
        }
    }
}

impl http_body::Body for GrpcWebResponse {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => {
                    this.done = true;
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        let Some(pending) = this.text.as_mut() else {
                            return Poll::Ready(Some(Ok(Frame::data(data))));
                        };
                        pending.extend_from_slice(data.chunk());
                        if let Some(encoded) = Self::encode_frames(pending) {
                            return Poll::Ready(Some(Ok(Frame::data(encoded))));
                        }
                    }
                    Err(frame) => {
                        let Ok(trailers) = frame.into_trailers() else {
                            continue;
                        };
                        this.done = true;
                        let frame = Self::trailers_frame(&trailers, this.text.is_some());
                        return Poll::Ready(Some(Ok(Frame::data(frame))));
                    }
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

/// The filter's factory: the same layer wherever it is on (it has no config). It acts only on
/// gRPC-Web calls, so the registry knows it as such
/// ([`FilterRegistry::register_for_grpc_web`](crate::filter::FilterRegistry)).
pub(crate) struct GrpcWebFilter;

impl FilterFactory for GrpcWebFilter {
    fn layer(
        &self,
        _config: &Any,
        _per_route: Option<&Any>,
    ) -> Result<Option<FilterLayer>, String> {
        Ok(Some(FilterLayer::new(GrpcWebLayer)))
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    /// A gRPC server that answers `frames` (split where they are split) and then `trailers`;
    /// it reports the request it saw in `x-saw` (content type, te, grpc-accept-encoding,
    /// content-length) and its body in `x-saw-body` (hex).
    fn server(
        status: u16,
        content_type: &'static str,
        frames: &'static [&'static [u8]],
        trailers: &'static [(&'static str, &'static str)],
    ) -> impl Service<
        Request<Body>,
        Response = Response<Body>,
        Error = Infallible,
        Future = impl Future<Output = Result<Response<Body>, Infallible>> + Send,
    > + Clone {
        tower::service_fn(move |request: Request<Body>| async move {
            let (parts, body) = request.into_parts();
            let seen = |name: &str| {
                parts
                    .headers
                    .get(name)
                    .map(|v| v.to_str().unwrap_or("?").to_string())
                    .unwrap_or_else(|| "-".into())
            };
            let saw = format!(
                "{} {} {} {}",
                seen("content-type"),
                seen("te"),
                seen("grpc-accept-encoding"),
                seen("content-length")
            );
            let received: String = match body.collect().await {
                Ok(b) => b.to_bytes().iter().map(|b| format!("{b:02x}")).collect(),
                Err(e) => format!("error: {e}"),
            };
            let mut out: Vec<Result<Frame<Bytes>, Infallible>> = frames
                .iter()
                .map(|f| Ok(Frame::data(Bytes::from_static(f))))
                .collect();
            if !trailers.is_empty() {
                let mut map = HeaderMap::new();
                for (k, v) in trailers {
                    map.append(*k, HeaderValue::from_static(v));
                }
                out.push(Ok(Frame::trailers(map)));
            }
            let body = if out.is_empty() {
                Body::empty()
            } else {
                Body::new(http_body_util::StreamBody::new(futures_util::stream::iter(
                    out,
                )))
            };
            let mut response = Response::new(body);
            *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let headers = response.headers_mut();
            headers.insert("content-type", HeaderValue::from_static(content_type));
            headers.insert("x-saw", HeaderValue::from_str(&saw).unwrap());
            headers.insert("x-saw-body", HeaderValue::from_str(&received).unwrap());
            Ok(response)
        })
    }

    async fn call<S>(
        service: S,
        headers: &[(&str, &str)],
        body: Body,
    ) -> (StatusCode, HeaderMap, Vec<u8>, Option<HeaderMap>)
    where
        S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
        S::Future: Send + 'static,
    {
        let mut request = Request::post("/pkg.Svc/Method");
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = GrpcWebLayer
            .layer(service)
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let collected = body.collect().await.unwrap();
        let trailers = collected.trailers().cloned();
        (
            parts.status,
            parts.headers,
            collected.to_bytes().to_vec(),
            trailers,
        )
    }

    const OK: &[(&str, &str)] = &[("grpc-status", "0"), ("grpc-message", "fine")];

    #[tokio::test]
    async fn a_binary_call_becomes_grpc_and_its_trailers_a_frame() {
        let backend = server(200, "application/grpc", &[b"\0\0\0\0\x02hi"], OK);
        let (status, headers, body, trailers) = call(
            backend,
            &[
                ("content-type", "application/grpc-web+proto"),
                ("content-length", "7"),
            ],
            Body::full(&b"\0\0\0\0\x02yo"[..]),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(headers["x-saw"], "application/grpc trailers identity -");
        assert_eq!(headers["x-saw-body"], "0000000002796f");
        assert_eq!(headers["content-type"], "application/grpc-web+proto");
        let lines = b"grpc-status:0\r\ngrpc-message:fine\r\n";
        let mut expected = b"\0\0\0\0\x02hi\x80\0\0\0".to_vec();
        expected.push(u8::try_from(lines.len()).unwrap());
        expected.extend_from_slice(lines);
        assert_eq!(body, expected);
        assert!(trailers.is_none(), "the trailers are in the body");
    }

    #[tokio::test]
    async fn text_is_decoded_for_the_upstream_and_encoded_frame_by_frame_for_the_client() {
        // Two messages, split mid-header and mid-message.
        let backend = server(
            200,
            "application/grpc+proto",
            &[b"\0\0\0", b"\0\x01a\0\0\0", b"\0\x02bc"],
            &[("grpc-status", "0")],
        );
        // "yo" as a message, in base64, arriving in pieces that are not multiples of four.
        let pieces: Vec<Result<Frame<Bytes>, Infallible>> = ["AAA", "AAAJ", "5bw=="]
            .into_iter()
            .map(|p| Ok(Frame::data(Bytes::from_static(p.as_bytes()))))
            .collect();
        let request_body = Body::new(http_body_util::StreamBody::new(futures_util::stream::iter(
            pieces,
        )));
        let (status, headers, body, _) = call(
            backend,
            &[
                ("content-type", "application/grpc-web-text"),
                ("accept", "application/grpc-web-text"),
                ("grpc-accept-encoding", "gzip"),
            ],
            request_body,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(headers["x-saw"], "application/grpc trailers gzip -");
        assert_eq!(headers["x-saw-body"], "0000000002796f");
        assert_eq!(headers["content-type"], "application/grpc-web-text+proto");
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let expected = [
            b64(b"\0\0\0\0\x01a"),
            b64(b"\0\0\0\0\x02bc"),
            b64(b"\x80\0\0\0\x0fgrpc-status:0\r\n"),
        ]
        .concat();
        assert_eq!(String::from_utf8(body).unwrap(), expected);
    }

    #[tokio::test]
    async fn invalid_base64_is_a_400_the_client_can_read() {
        for bad in ["AAAAAAJ5bw=", "AAAA*AJ5bw=="] {
            let backend = server(200, "application/grpc", &[], OK);
            let (status, headers, body, _) = call(
                backend,
                &[("content-type", "application/grpc-web-text")],
                Body::from(bad),
            )
            .await;
            assert_eq!(status, 400, "{bad}");
            assert_eq!(headers["grpc-status"], "13");
            assert_eq!(
                headers["grpc-message"],
                "Bad gRPC-web request, invalid base64 data."
            );
            assert_eq!(headers["content-type"], "application/grpc-web+proto");
            assert_eq!(headers["content-length"], "0");
            assert!(body.is_empty());
        }
    }

    #[tokio::test]
    async fn answers_that_are_not_grpc_become_a_status_and_message() {
        let backend = server(503, "text/plain", &[b"no healthy ", b"upstream\n"], &[]);
        let (status, headers, body, _) = call(
            backend,
            &[("content-type", "application/grpc-web")],
            Body::empty(),
        )
        .await;
        assert_eq!(status, 503);
        assert_eq!(headers["grpc-status"], "14");
        assert_eq!(headers["grpc-message"], "no healthy upstream%0A");
        assert_eq!(headers["content-length"], "0");
        assert!(body.is_empty());
        // Headers alone: only the content type changes, whatever the status.
        let backend = server(404, "text/plain", &[], &[]);
        let (status, headers, _, _) = call(
            backend,
            &[("content-type", "application/grpc-web")],
            Body::empty(),
        )
        .await;
        assert_eq!(status, 404);
        assert!(!headers.contains_key("grpc-status"));
        assert_eq!(headers["content-type"], "application/grpc-web+proto");
    }

    #[tokio::test]
    async fn other_requests_pass_untouched() {
        for content_type in [
            "application/grpc",
            "application/grpc-web+json",
            "application/grpc-web; charset=utf-8",
            "application/json",
        ] {
            let backend = server(200, "application/json", &[b"{}"], &[]);
            let (status, headers, body, _) =
                call(backend, &[("content-type", content_type)], Body::from("{}")).await;
            assert_eq!(status, 200);
            assert_eq!(
                headers["x-saw"].to_str().unwrap(),
                format!("{content_type} - - -"),
            );
            assert_eq!(headers["content-type"], "application/json");
            assert_eq!(body, b"{}");
        }
    }

    #[test]
    fn messages_are_percent_encoded_as_grpc_says() {
        assert_eq!(grpc_message(b"a~b%c\x7f\xff"), "a%7Eb%25c%7F%FF");
        assert_eq!(grpc_message(b"plain text: ok"), "plain text: ok");
    }
}
