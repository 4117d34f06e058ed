//! Where the middleware's decision is made: the [`RateLimitCheck`] trait.

use std::future::Future;

use super::error::LimitError;
use super::limiter::{LimitFuture, RateLimiter};
use super::request::{RateLimitRequest, RateLimitResponse};
use super::store::CounterStore;

/// Answers "is this request over its limits?" for a
/// [`GlobalRateLimit`](super::GlobalRateLimit): Envoy's rate limit client.
///
/// Two implementations ship: the in-process [`RateLimiter`] (no network hop; its counters live
/// in its [`CounterStore`]) and, with the `rls` feature, `rls::RateLimitClient`, which asks a
/// remote `envoy.service.ratelimit.v3.RateLimitService` over gRPC, as Envoy's filter does.
/// Implement it to decide anywhere else.
///
/// Any error makes the middleware apply its failure policy (Envoy's `failure_mode_deny`):
/// the error's content is not inspected.
///
/// ```
/// use std::future::{ready, Ready};
/// use gloo_filters::ratelimit::global::*;
///
/// /// Everything is over its limit (a maintenance switch, say).
/// #[derive(Clone)]
/// struct Closed;
///
/// impl RateLimitCheck for Closed {
///     type Error = std::convert::Infallible;
///     type Future = Ready<Result<RateLimitResponse, Self::Error>>;
///     fn check(&self, request: RateLimitRequest) -> Self::Future {
///         let statuses = request
///             .get_descriptors()
///             .iter()
///             .map(|_| DescriptorStatus { code: Code::OverLimit, current_limit: None,
///                 limit_remaining: 0, duration_until_reset: None })
///             .collect();
///         ready(Ok(RateLimitResponse { overall_code: Code::OverLimit, statuses }))
///     }
/// }
///
/// let policy = RateLimitPolicy::new().rate_limit(RateLimitActions::new().generic_key("all"));
/// let layer = GlobalRateLimitLayer::new(Closed, "edge", policy);
/// # let _ = layer;
/// ```
pub trait RateLimitCheck {
    /// Why no answer could be had.
    type Error;
    /// The answer, once it is known.
    type Future: Future<Output = Result<RateLimitResponse, Self::Error>>;

    /// Counts `request`'s descriptors and answers whether it is over a limit. Called only
    /// with at least one descriptor.
    fn check(&self, request: RateLimitRequest) -> Self::Future;
}

/// The in-process limiter: the rules are looked up now, the returned (named, unboxed) future
/// does the store's one round trip.
impl<S: CounterStore> RateLimitCheck for RateLimiter<S> {
    type Error = LimitError;
    type Future = LimitFuture<S::Future>;

    fn check(&self, request: RateLimitRequest) -> Self::Future {
        self.should_rate_limit(&request)
    }
}
