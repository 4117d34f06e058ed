//! The [`LocalRateLimitLayer`].

use std::fmt;
use std::sync::Arc;

use http::StatusCode;
use tower::Layer;

use super::bucket::Buckets;
use super::key::{KeyExtractor, Shared};
use super::service::{LocalRateLimit, DEFAULT_STATUS};
use super::TokenBucket;

/// Per-layer settings, copied into every service.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Config {
    pub(crate) status: StatusCode,
    pub(crate) enforce: bool,
    pub(crate) x_ratelimit_headers: bool,
    pub(crate) retry_after: bool,
}

/// Applies [`LocalRateLimit`] to services: Envoy's `envoy.filters.http.local_ratelimit`.
///
/// # One layer, one budget
///
/// The layer holds its settings plus an `Arc` of its buckets. **Every service built from this
/// layer, or from any clone of it, draws from the same buckets**, like routes that share one
/// Envoy filter config. Build a new layer (with [`new`](Self::new)) for a separate budget.
///
/// The builder methods keep the buckets, except [`key_extractor`](Self::key_extractor), which
/// changes the key type and so starts fresh buckets.
///
/// ```
/// use std::time::Duration;
/// use gloo_filters::ratelimit::{LocalRateLimitLayer, TokenBucket};
/// use http::StatusCode;
///
/// let bucket = TokenBucket::new(100, 10, Duration::from_secs(1))?;
/// let layer = LocalRateLimitLayer::new(bucket)
///     .status(StatusCode::SERVICE_UNAVAILABLE)
///     .x_ratelimit_headers(true);
/// // `layer.clone()` shares the 100 tokens; another `LocalRateLimitLayer::new(bucket)` does not.
/// # let _ = layer;
/// # Ok::<(), gloo_filters::ratelimit::InvalidTokenBucket>(())
/// ```
pub struct LocalRateLimitLayer<X: KeyExtractor = Shared> {
    config: Config,
    extractor: X,
    buckets: Arc<Buckets<X::Key>>,
}

impl LocalRateLimitLayer {
    /// A layer with fresh buckets of `bucket`'s size: every request draws from one shared
    /// bucket, refused requests get `429`, no `x-ratelimit-*` headers.
    pub fn new(bucket: TokenBucket) -> Self {
        Self {
            config: Config {
                status: DEFAULT_STATUS,
                enforce: true,
                x_ratelimit_headers: false,
                retry_after: false,
            },
            extractor: Shared,
            buckets: Arc::new(Buckets::new(bucket)),
        }
    }
}

impl<X: KeyExtractor> LocalRateLimitLayer<X> {
    /// The status of refused requests (Envoy's `status`). As in Envoy, a code below 400 is
    /// ignored and `429 Too Many Requests` is used.
    pub fn status(mut self, status: impl Into<StatusCode>) -> Self {
        let status = status.into();
        self.config.status = if status.as_u16() >= 400 {
            status
        } else {
            DEFAULT_STATUS
        };
        self
    }

    /// Whether empty buckets refuse requests (default `true`). With `false` (Envoy's
    /// `filter_enforced` at 0%) every request still takes a token when one is left and the
    /// `x-ratelimit-*` headers still count down, but nothing is refused.
    pub fn enforce(mut self, enforce: bool) -> Self {
        self.config.enforce = enforce;
        self
    }

    /// Whether every answer, passed or refused, gets `x-ratelimit-limit`,
    /// `x-ratelimit-remaining` and `x-ratelimit-reset` (Envoy's
    /// `enable_x_ratelimit_headers: DRAFT_VERSION_03`). Default `false`.
    pub fn x_ratelimit_headers(mut self, enabled: bool) -> Self {
        self.config.x_ratelimit_headers = enabled;
        self
    }

    /// Whether a refusal answered with `429` carries `retry-after`: the whole seconds until
    /// the bucket that refused has a token again, at least 1 (Envoy's
    /// `enable_retry_after_header`). Other statuses never get it. Default `false`.
    pub fn retry_after(mut self, enabled: bool) -> Self {
        self.config.retry_after = enabled;
        self
    }

    /// Keys buckets with `extractor`: one bucket per key, the shared bucket for requests
    /// without a key. The returned layer has **fresh** buckets of the same size.
    pub fn key_extractor<Y: KeyExtractor>(self, extractor: Y) -> LocalRateLimitLayer<Y> {
        LocalRateLimitLayer {
            config: self.config,
            extractor,
            buckets: Arc::new(Buckets::new(*self.buckets.bucket())),
        }
    }

    /// The bucket settings.
    pub fn bucket(&self) -> &TokenBucket {
        self.buckets.bucket()
    }

    pub(crate) fn into_service<S>(self, inner: S) -> LocalRateLimit<S, X> {
        LocalRateLimit::from_parts(inner, self.config, self.extractor, self.buckets)
    }
}

impl<S, X: KeyExtractor + Clone> Layer<S> for LocalRateLimitLayer<X> {
    type Service = LocalRateLimit<S, X>;

    fn layer(&self, inner: S) -> Self::Service {
        self.clone().into_service(inner)
    }
}

impl<X: KeyExtractor + Clone> Clone for LocalRateLimitLayer<X> {
    fn clone(&self) -> Self {
        Self {
            config: self.config,
            extractor: self.extractor.clone(),
            buckets: Arc::clone(&self.buckets),
        }
    }
}

impl<X: KeyExtractor + fmt::Debug> fmt::Debug for LocalRateLimitLayer<X> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalRateLimitLayer")
            .field("config", &self.config)
            .field("extractor", &self.extractor)
            .field("buckets", &self.buckets)
            .finish()
    }
}
