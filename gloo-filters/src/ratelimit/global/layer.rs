//! The [`GlobalRateLimitLayer`].

use std::fmt;
use std::sync::Arc;

use tower::Layer;

use super::actions::DescriptorExtractor;
use super::limiter::RateLimiter;
use super::service::GlobalRateLimit;
use super::store::{CounterStore, MemoryStore};

/// Per-layer settings, copied into every service.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Config {
    pub(crate) failure_mode_deny: bool,
    pub(crate) x_ratelimit_headers: bool,
    pub(crate) x_envoy_ratelimited: bool,
    pub(crate) retry_after: bool,
}

/// Applies [`GlobalRateLimit`] to services: Envoy's `envoy.filters.http.ratelimit` with the
/// rate limit service in-process.
///
/// It holds the domain, a [`DescriptorExtractor`] and a [`RateLimiter`] handle; services built
/// from it (and from its clones) ask that limiter, so they share its budget, and so do other
/// processes whose limiter counts in the same Redis.
///
/// ```
/// use gloo_filters::ratelimit::global::*;
///
/// let limiter = RateLimiter::new(MemoryStore::new()).domain(
///     RateLimitDomain::new("edge")
///         .descriptor(Descriptor::new("remote_address").rate_limit(RateLimit::new(100, Unit::Second))),
/// )?;
/// let policy = RateLimitPolicy::new().rate_limit(RateLimitActions::new().remote_address());
/// let layer = GlobalRateLimitLayer::new(limiter, "edge", policy)
///     .x_ratelimit_headers(true)
///     .failure_mode_deny(false);
/// # let _ = layer;
/// # Ok::<(), InvalidConfig>(())
/// ```
pub struct GlobalRateLimitLayer<X, S = MemoryStore> {
    config: Config,
    domain: Arc<str>,
    extractor: X,
    limiter: RateLimiter<S>,
}

impl<X: DescriptorExtractor, S: CounterStore> GlobalRateLimitLayer<X, S> {
    /// Asks `limiter` about the descriptors `extractor` builds, in `domain` (Envoy's filter
    /// `domain`). Defaults as Envoy's: fail open, `x-envoy-ratelimited` on refusals, no
    /// `x-ratelimit-*` headers, no `retry-after`.
    pub fn new(limiter: RateLimiter<S>, domain: impl Into<Arc<str>>, extractor: X) -> Self {
        Self {
            config: Config {
                failure_mode_deny: false,
                x_ratelimit_headers: false,
                x_envoy_ratelimited: true,
                retry_after: false,
            },
            domain: domain.into(),
            extractor,
            limiter,
        }
    }

    /// What to do when the limiter fails (Redis down or too slow): `false` (the default, as
    /// Envoy's `failure_mode_deny: false`) lets the request through; `true` answers `500` with
    /// an empty body, as Envoy does.
    pub fn failure_mode_deny(mut self, deny: bool) -> Self {
        self.config.failure_mode_deny = deny;
        self
    }

    /// Envoy's `enable_x_ratelimit_headers: DRAFT_VERSION_03`: every answer the limiter had a
    /// say in (passed or refused) gets `x-ratelimit-limit`, `x-ratelimit-remaining` and
    /// `x-ratelimit-reset` from the descriptor closest to its limit. Default `false`.
    pub fn x_ratelimit_headers(mut self, enabled: bool) -> Self {
        self.config.x_ratelimit_headers = enabled;
        self
    }

    /// Whether refusals carry `x-envoy-ratelimited: true` (default `true`; Envoy's
    /// `disable_x_envoy_ratelimited_header` inverts it).
    pub fn x_envoy_ratelimited(mut self, enabled: bool) -> Self {
        self.config.x_envoy_ratelimited = enabled;
        self
    }

    /// Whether refusals carry `retry-after`: the seconds until the last refusing window ends.
    /// Default `false` (Envoy's filter has no such option; clients often want it).
    pub fn retry_after(mut self, enabled: bool) -> Self {
        self.config.retry_after = enabled;
        self
    }

    /// The domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The limiter.
    pub fn limiter(&self) -> &RateLimiter<S> {
        &self.limiter
    }
}

impl<Svc, X, S> Layer<Svc> for GlobalRateLimitLayer<X, S>
where
    X: DescriptorExtractor + Clone,
{
    type Service = GlobalRateLimit<Svc, X, S>;

    fn layer(&self, inner: Svc) -> Self::Service {
        GlobalRateLimit::from_parts(
            inner,
            self.config,
            Arc::clone(&self.domain),
            self.extractor.clone(),
            self.limiter.clone(),
        )
    }
}

impl<X: Clone, S> Clone for GlobalRateLimitLayer<X, S> {
    fn clone(&self) -> Self {
        Self {
            config: self.config,
            domain: Arc::clone(&self.domain),
            extractor: self.extractor.clone(),
            limiter: self.limiter.clone(),
        }
    }
}

impl<X: fmt::Debug, S: fmt::Debug> fmt::Debug for GlobalRateLimitLayer<X, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GlobalRateLimitLayer")
            .field("config", &self.config)
            .field("domain", &self.domain)
            .field("extractor", &self.extractor)
            .field("limiter", &self.limiter)
            .finish()
    }
}
