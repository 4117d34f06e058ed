//! The [`GlobalRateLimitLayer`].

use std::fmt;
use std::sync::Arc;

use http::StatusCode;
use tower::Layer;

use super::actions::DescriptorExtractor;
use super::check::RateLimitCheck;
use super::limiter::RateLimiter;
use super::service::GlobalRateLimit;

/// Per-layer settings, copied into every service.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Config {
    pub(crate) failure_mode_deny: bool,
    pub(crate) x_ratelimit_headers: bool,
    pub(crate) x_envoy_ratelimited: bool,
    pub(crate) retry_after: bool,
    pub(crate) request_type: RequestType,
    pub(crate) rate_limited_status: StatusCode,
    pub(crate) status_on_error: StatusCode,
    pub(crate) enforce: bool,
}

/// Which requests the filter applies to (Envoy's `request_type`): a request is internal when
/// it carries `x-envoy-internal: true`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RequestType {
    /// Every request (Envoy's default, `both`).
    #[default]
    Both,
    /// Only requests with `x-envoy-internal: true` (`internal`).
    Internal,
    /// Only requests without it (`external`).
    External,
}

impl RequestType {
    /// Envoy's spelling: `both`, `internal` or `external`; `None` for anything else.
    pub fn from_envoy(value: &str) -> Option<Self> {
        match value {
            "both" => Some(Self::Both),
            "internal" => Some(Self::Internal),
            "external" => Some(Self::External),
            _ => None,
        }
    }

    /// Whether a request that is internal (or not) is checked.
    pub(crate) fn applies(self, internal: bool) -> bool {
        match self {
            Self::Both => true,
            Self::Internal => internal,
            Self::External => !internal,
        }
    }
}

/// Applies [`GlobalRateLimit`] to services: Envoy's `envoy.filters.http.ratelimit`.
///
/// It holds the domain, a [`DescriptorExtractor`] and where the decision is made, a
/// [`RateLimitCheck`]: a [`RateLimiter`] handle (the rate limit service in-process) or, with
/// the `rls` feature, an `rls::RateLimitClient` of a remote service. Services built from it
/// (and from its clones) ask the same one, so they share its budget; so do other processes
/// whose limiter counts in the same Redis, or that ask the same service.
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
pub struct GlobalRateLimitLayer<X, L = RateLimiter> {
    config: Config,
    domain: Arc<str>,
    extractor: X,
    limiter: L,
}

impl<X: DescriptorExtractor, L: RateLimitCheck> GlobalRateLimitLayer<X, L> {
    /// Asks `limiter` (a [`RateLimiter`], a remote service's client, ...) about the
    /// descriptors `extractor` builds, in `domain` (Envoy's filter `domain`). Defaults as
    /// Envoy's: every request type, fail open (`500` when failing closed), `429` with
    /// `x-envoy-ratelimited` on refusals, no `x-ratelimit-*` headers, no `retry-after`.
    pub fn new(limiter: L, domain: impl Into<Arc<str>>, extractor: X) -> Self {
        Self {
            config: Config {
                failure_mode_deny: false,
                x_ratelimit_headers: false,
                x_envoy_ratelimited: true,
                retry_after: false,
                request_type: RequestType::Both,
                rate_limited_status: StatusCode::TOO_MANY_REQUESTS,
                status_on_error: StatusCode::INTERNAL_SERVER_ERROR,
                enforce: true,
            },
            domain: domain.into(),
            extractor,
            limiter,
        }
    }

    /// What to do when the limiter fails (Redis down, the rate limit service down or too
    /// slow): `false` (the default, as Envoy's `failure_mode_deny: false`) lets the request
    /// through; `true` answers [`status_on_error`](Self::status_on_error) (`500`) with an
    /// empty body, as Envoy does.
    pub fn failure_mode_deny(mut self, deny: bool) -> Self {
        self.config.failure_mode_deny = deny;
        self
    }

    /// The status of a refusal (Envoy's `rate_limited_status`, default `429`). As in Envoy, a
    /// status below 400 means `429`.
    pub fn rate_limited_status(mut self, status: StatusCode) -> Self {
        self.config.rate_limited_status = if status.as_u16() < 400 {
            StatusCode::TOO_MANY_REQUESTS
        } else {
            status
        };
        self
    }

    /// The status of the answer when the limiter fails and
    /// [`failure_mode_deny`](Self::failure_mode_deny) is set (Envoy's `status_on_error`,
    /// default `500`).
    pub fn status_on_error(mut self, status: StatusCode) -> Self {
        self.config.status_on_error = status;
        self
    }

    /// Which requests are checked (Envoy's `request_type`, default [`RequestType::Both`]).
    pub fn request_type(mut self, request_type: RequestType) -> Self {
        self.config.request_type = request_type;
        self
    }

    /// Whether an over-limit answer is enforced (default `true`). With `false` (Envoy's
    /// `filter_enforced` at 0%) the request is counted and passes, its response carrying
    /// `x-envoy-ratelimited` (and the `x-ratelimit-*` headers when enabled), as Envoy's does.
    pub fn enforce(mut self, enforce: bool) -> Self {
        self.config.enforce = enforce;
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

    /// Where the decision is made.
    pub fn limiter(&self) -> &L {
        &self.limiter
    }
}

impl<Svc, X, L> Layer<Svc> for GlobalRateLimitLayer<X, L>
where
    X: DescriptorExtractor + Clone,
    L: Clone,
{
    type Service = GlobalRateLimit<Svc, X, L>;

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

impl<X: Clone, L: Clone> Clone for GlobalRateLimitLayer<X, L> {
    fn clone(&self) -> Self {
        Self {
            config: self.config,
            domain: Arc::clone(&self.domain),
            extractor: self.extractor.clone(),
            limiter: self.limiter.clone(),
        }
    }
}

impl<X: fmt::Debug, L: fmt::Debug> fmt::Debug for GlobalRateLimitLayer<X, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GlobalRateLimitLayer")
            .field("config", &self.config)
            .field("domain", &self.domain)
            .field("extractor", &self.extractor)
            .field("limiter", &self.limiter)
            .finish()
    }
}
