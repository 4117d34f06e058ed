//! The [`GlobalRateLimit`] middleware service.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower::Service;

use super::actions::DescriptorExtractor;
use super::check::RateLimitCheck;
use super::future::ResponseFuture;
use super::layer::Config;
use super::limiter::RateLimiter;
use super::request::RateLimitRequest;

/// `x-envoy-internal`: a request is internal when it says `true`.
static X_ENVOY_INTERNAL: http::HeaderName = http::HeaderName::from_static("x-envoy-internal");

/// Middleware that asks a [`RateLimitCheck`] (a [`RateLimiter`], a remote rate limit service)
/// about each request and answers `429` (empty body, `x-envoy-ratelimited: true`, the
/// [`RateLimited`](crate::ratelimit::RateLimited) marker) when it says over limit, as Envoy's
/// rate limit filter does.
///
/// Build it with [`GlobalRateLimitLayer`](super::GlobalRateLimitLayer); see the
/// [module docs](super) for the semantics. The inner service must be `Clone`: the request
/// waits for the limiter before it is handed to the (ready) inner service.
pub struct GlobalRateLimit<Svc, X, L = RateLimiter> {
    inner: Svc,
    config: Config,
    domain: Arc<str>,
    extractor: X,
    limiter: L,
}

impl<Svc, X, L> GlobalRateLimit<Svc, X, L> {
    pub(crate) fn from_parts(
        inner: Svc,
        config: Config,
        domain: Arc<str>,
        extractor: X,
        limiter: L,
    ) -> Self {
        Self {
            inner,
            config,
            domain,
            extractor,
            limiter,
        }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &Svc {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut Svc {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> Svc {
        self.inner
    }
}

impl<Svc, X, L, ReqB, ResB> Service<Request<ReqB>> for GlobalRateLimit<Svc, X, L>
where
    Svc: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    X: DescriptorExtractor,
    L: RateLimitCheck,
    ResB: Default,
{
    type Response = Response<ResB>;
    type Error = Svc::Error;
    type Future = ResponseFuture<Svc, Request<ReqB>, L::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let internal = req
            .headers()
            .get(&X_ENVOY_INTERNAL)
            .is_some_and(|v| v == "true");
        if !self.config.request_type.applies(internal) {
            return ResponseFuture::inner(self.inner.call(req));
        }
        let descriptors = self.extractor.extract(&req);
        if descriptors.is_empty() {
            // Envoy calls the service only when some descriptor was built.
            return ResponseFuture::inner(self.inner.call(req));
        }
        let check = self
            .limiter
            .check(RateLimitRequest::new(&*self.domain).descriptors(descriptors));
        // The ready service goes with the request; this one keeps a fresh clone, which must
        // be driven to readiness by the next `poll_ready` (tower's usual clone-and-swap).
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::checking(check, ready, req, self.config)
    }
}

impl<Svc: Clone, X: Clone, L: Clone> Clone for GlobalRateLimit<Svc, X, L> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            config: self.config,
            domain: Arc::clone(&self.domain),
            extractor: self.extractor.clone(),
            limiter: self.limiter.clone(),
        }
    }
}

impl<Svc: fmt::Debug, X: fmt::Debug, L: fmt::Debug> fmt::Debug for GlobalRateLimit<Svc, X, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GlobalRateLimit")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .field("domain", &self.domain)
            .field("extractor", &self.extractor)
            .field("limiter", &self.limiter)
            .finish()
    }
}
