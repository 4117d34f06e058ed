//! The [`LocalRateLimit`] middleware service.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use http::{Request, Response, StatusCode};
use tower::Service;

use super::bucket::{Buckets, Decision};
use super::future::{RateLimitHeaders, ResponseFuture};
use super::key::{KeyExtractor, Shared};
use super::layer::{Config, LocalRateLimitLayer};
use super::TokenBucket;

/// Marks a response this middleware answered itself because a bucket was empty (in the
/// response's extensions), so outer layers can tell a refusal from an upstream's `429`: for
/// metrics, logs, or a gateway applying its local-reply rules.
///
/// ```
/// # use std::time::Duration;
/// # use bytes::Bytes;
/// # use gloo_filters::ratelimit::{LocalRateLimitLayer, RateLimited, TokenBucket};
/// # use http_body_util::Full;
/// # use tower::{service_fn, Layer, ServiceExt};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let layer = LocalRateLimitLayer::new(TokenBucket::new(1, 1, Duration::from_secs(60))?);
/// let svc = layer.layer(service_fn(|_req: http::Request<()>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
/// }));
/// let passed = svc.clone().oneshot(http::Request::new(())).await?;
/// assert!(passed.extensions().get::<RateLimited>().is_none());
/// let refused = svc.oneshot(http::Request::new(())).await?;
/// assert!(refused.extensions().get::<RateLimited>().is_some());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateLimited;

/// The body of a refused request, as Envoy sends it.
const LIMITED_BODY: &[u8] = b"local_rate_limited";

/// Middleware that answers `429 local_rate_limited` once a token bucket is empty.
///
/// Build it with [`LocalRateLimitLayer`] (or [`LocalRateLimit::layer`]); see the
/// [module docs](super) for the semantics. Clones share the buckets.
pub struct LocalRateLimit<S, X: KeyExtractor = Shared> {
    inner: S,
    config: Config,
    extractor: X,
    buckets: Arc<Buckets<X::Key>>,
}

impl<S> LocalRateLimit<S> {
    /// Wraps `inner` with its own shared bucket. Prefer [`LocalRateLimitLayer`] to configure
    /// it and to share the bucket between services.
    pub fn new(inner: S, bucket: TokenBucket) -> Self {
        LocalRateLimitLayer::new(bucket).into_service(inner)
    }

    /// A [`LocalRateLimitLayer`] with a fresh shared bucket (same as
    /// [`LocalRateLimitLayer::new`]).
    pub fn layer(bucket: TokenBucket) -> LocalRateLimitLayer {
        LocalRateLimitLayer::new(bucket)
    }
}

impl<S, X: KeyExtractor> LocalRateLimit<S, X> {
    pub(crate) fn from_parts(
        inner: S,
        config: Config,
        extractor: X,
        buckets: Arc<Buckets<X::Key>>,
    ) -> Self {
        Self {
            inner,
            config,
            extractor,
            buckets,
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

    fn limited_response<B: From<Bytes>>(&self) -> Response<B> {
        let mut response = Response::new(B::from(Bytes::from_static(LIMITED_BODY)));
        *response.status_mut() = self.config.status;
        response.extensions_mut().insert(RateLimited);
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        response
    }
}

impl<S, X, ReqB, ResB> Service<Request<ReqB>> for LocalRateLimit<S, X>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    X: KeyExtractor,
    ResB: From<Bytes>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let key = self.extractor.extract(&req);
        let decision = self.buckets.decide(key.as_ref());
        let bucket = self.buckets.bucket();
        let headers = self.config.x_ratelimit_headers.then(|| {
            let remaining = match decision {
                Decision::Allowed { remaining } => remaining,
                Decision::Limited { .. } => 0,
            };
            RateLimitHeaders {
                limit: bucket.max_tokens(),
                remaining,
                // Envoy: 0 while at least one whole token is left.
                reset: if remaining >= 1 {
                    0
                } else {
                    bucket.reset_seconds_when_empty()
                },
            }
        });
        if let (Decision::Limited { retry_after }, true) = (decision, self.config.enforce) {
            let mut response = self.limited_response();
            if self.config.retry_after && response.status() == StatusCode::TOO_MANY_REQUESTS {
                // Whole seconds, rounded up so a client that waits that long finds a token.
                let seconds = retry_after
                    .as_secs()
                    .saturating_add(u64::from(retry_after.subsec_nanos() > 0))
                    .max(1);
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(seconds));
            }
            if let Some(headers) = headers {
                headers.append_to(response.headers_mut());
            }
            return ResponseFuture::limited(response);
        }
        ResponseFuture::inner(self.inner.call(req), headers)
    }
}

impl<S: Clone, X: KeyExtractor + Clone> Clone for LocalRateLimit<S, X> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            config: self.config,
            extractor: self.extractor.clone(),
            buckets: Arc::clone(&self.buckets),
        }
    }
}

impl<S: fmt::Debug, X: KeyExtractor + fmt::Debug> fmt::Debug for LocalRateLimit<S, X> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalRateLimit")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .field("extractor", &self.extractor)
            .field("buckets", &self.buckets)
            .finish()
    }
}

/// The status Envoy answers with unless `status` is configured.
pub(crate) const DEFAULT_STATUS: StatusCode = StatusCode::TOO_MANY_REQUESTS;
