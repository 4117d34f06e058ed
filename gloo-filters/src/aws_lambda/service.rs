//! The [`AwsLambda`] middleware service: a request becomes a signed Lambda invocation.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body::Body;
use http_body_util::{BodyExt, Either, Full, Limited};
use tower::Service;

use super::error::{LambdaInvocation, LambdaLocalReply};
use super::future::ResponseFuture;
use super::layer::{Config, InvocationStyle, LambdaTarget, Unwrap};
use super::response;
use crate::aws::sigv4::{sign, SessionTokenPlacement, SignedHeaders, SigningSettings};

/// The body the layer hands on and returns: the original one (streamed through untouched), or
/// a complete one it made (the invocation payload, an unwrapped response, a local reply).
pub type LambdaBody<B> = Either<B, Full<Bytes>>;

/// A boxed error, as the bodies' errors become.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Middleware invoking a Lambda function; see [`AwsLambdaLayer`](super::AwsLambdaLayer).
///
/// A request whose target resolves is buffered (up to the layer's limit), turned into `POST
/// /2015-03-31/functions/<name>/invocations[?Qualifier=]` with `x-amz-invocation-type`,
/// `x-amz-log-type: None` and the target's `host`, signed with SigV4 (envoy-gloo's headers:
/// `content-type`, `host`, `x-amz-date`, `x-amz-invocation-type`, `x-amz-log-type`; the
/// session token after the signature), and sent to the inner service. Other requests pass
/// through untouched. The inner service must be `Clone` (it is moved into the response
/// future while the body is buffered).
#[derive(Clone)]
pub struct AwsLambda<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for AwsLambda<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsLambda")
            .field("inner", &self.inner)
            .field("path", &self.config.path)
            .finish_non_exhaustive()
    }
}

impl<S> AwsLambda<S> {
    pub(crate) fn new(inner: S, config: Arc<Config>) -> Self {
        AwsLambda { inner, config }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B, ResB> Service<Request<B>> for AwsLambda<S>
where
    S: Service<Request<LambdaBody<B>>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    ResB: Body<Data = Bytes> + Send + 'static,
    ResB::Error: Into<BoxError>,
{
    type Response = Response<LambdaBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResB, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let (parts, body) = request.into_parts();
        let Some(target) = self.config.target.resolve(&parts) else {
            return ResponseFuture::passthrough(
                self.inner
                    .call(Request::from_parts(parts, Either::Left(body))),
            );
        };
        // The ready service goes into the future; a clone takes its place.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::invoke(Box::pin(invoke(
            inner,
            self.config.clone(),
            target,
            parts,
            body,
        )))
    }
}

/// A reply of the layer's own (a local reply).
pub(crate) fn local_reply<B>(status: StatusCode, text: &'static str) -> Response<LambdaBody<B>> {
    let mut response = Response::new(Either::Right(Full::new(Bytes::from_static(
        text.as_bytes(),
    ))));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response.extensions_mut().insert(LambdaLocalReply);
    response
}

const X_AMZ_INVOCATION_TYPE: HeaderName = HeaderName::from_static("x-amz-invocation-type");
const X_AMZ_LOG_TYPE: HeaderName = HeaderName::from_static("x-amz-log-type");
const X_AMZ_FUNCTION_ERROR: &str = "x-amz-function-error";

/// envoy-gloo's `AWSLambdaFilter::decodeHeaders` .. `finalizeRequest`, then the answer through
/// `encodeHeaders` .. `finalizeResponse`.
async fn invoke<S, B, ResB>(
    mut inner: S,
    config: Arc<Config>,
    target: LambdaTarget,
    mut parts: http::request::Parts,
    body: B,
) -> Result<Response<LambdaBody<ResB>>, S::Error>
where
    S: Service<Request<LambdaBody<B>>, Response = Response<ResB>>,
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
    ResB: Body<Data = Bytes>,
    ResB::Error: Into<BoxError>,
{
    let mut payload = match Limited::new(body, config.max_body_bytes).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => {
            return Ok(local_reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Payload Too Large",
            ))
        }
        Err(_) => return Ok(local_reply(StatusCode::BAD_REQUEST, "bad request")),
    };
    let headers = &mut parts.headers;
    if payload.is_empty() {
        if let Some(default) = &config.empty_body {
            payload = default.clone();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
    }
    if config.propagate_original_routing {
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        if let Ok(path) = HeaderValue::from_str(path) {
            headers.insert("x-envoy-original-path", path);
        }
        if let Ok(method) = HeaderValue::from_str(parts.method.as_str()) {
            headers.append("x-envoy-original-method", method);
        }
    }
    parts.method = Method::POST;
    parts.uri = Uri::from(config.path.clone());
    let invocation = match config.invocation {
        InvocationStyle::Sync => "RequestResponse",
        InvocationStyle::Async => "Event",
    };
    headers.insert(X_AMZ_INVOCATION_TYPE, HeaderValue::from_static(invocation));
    headers.insert(X_AMZ_LOG_TYPE, HeaderValue::from_static("None"));
    match HeaderValue::from_str(&target.host) {
        Ok(host) => headers.insert(HOST, host),
        Err(_) => {
            return Ok(local_reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                "invalid AWS Lambda host",
            ))
        }
    };
    headers.remove(http::header::TRANSFER_ENCODING);
    headers.insert(CONTENT_LENGTH, HeaderValue::from(payload.len()));
    let credentials = match target.credentials.credentials().await {
        Ok(credentials) => credentials,
        Err(err) => {
            tracing::warn!(error = %err, "no AWS credentials for a Lambda invocation");
            return Ok(local_reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                "no credentials present for AWS upstream",
            ));
        }
    };
    let settings = SigningSettings::new(target.region.clone(), "lambda")
        .signed_headers(SignedHeaders::Only(vec![
            "content-type".into(),
            "x-amz-invocation-type".into(),
            "x-amz-log-type".into(),
        ]))
        .session_token(SessionTokenPlacement::AfterSignature)
        .normalize_path(false);
    let mut request = Request::from_parts(parts, ());
    if let Err(err) = sign(
        &mut request,
        &payload,
        &credentials,
        &settings,
        SystemTime::now(),
    ) {
        tracing::warn!(error = %err, "Lambda invocation not signed");
        return Ok(local_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "no credentials present for AWS upstream",
        ));
    }
    request.extensions_mut().insert(LambdaInvocation);
    let request = request.map(|()| Either::Right(Full::new(payload)));
    poll_fn(|cx| inner.poll_ready(cx)).await?;
    let response = inner.call(request).await?;
    let (mut head, body) = response.into_parts();
    // A function error is an upstream error (envoy-gloo's encodeHeaders).
    if head.headers.contains_key(X_AMZ_FUNCTION_ERROR) {
        head.status = StatusCode::GATEWAY_TIMEOUT;
    }
    if config.unwrap == Unwrap::None || body.is_end_stream() {
        return Ok(Response::from_parts(head, Either::Left(body)));
    }
    let result = match Limited::new(body, config.max_body_bytes).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Ok(local_reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Lambda response too large or broken",
            ))
        }
    };
    // A result that turns out empty is passed on as it is (envoy-gloo only unwraps data).
    if result.is_empty() {
        return Ok(Response::from_parts(head, Either::Right(Full::new(result))));
    }
    let (status, headers, body) = match config.unwrap {
        Unwrap::ApiGateway => response::api_gateway(head.status, &result),
        _ => response::alb(head.status, std::mem::take(&mut head.headers), &result),
    };
    head.status = status;
    head.headers = headers;
    head.headers
        .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    Ok(Response::from_parts(head, Either::Right(Full::new(body))))
}
