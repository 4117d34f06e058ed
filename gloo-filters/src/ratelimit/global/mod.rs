//! Global rate limiting: limits shared by every proxy shard, counted in a shared store (Redis),
//! with the semantics of Gloo's rate limit server and envoyproxy/ratelimit, and Envoy's
//! `envoy.filters.http.ratelimit` as a tower middleware. Enabled by the `ratelimit` cargo
//! feature; the Redis store needs `ratelimit-redis`, the gRPC service Envoy calls `rls`.
//!
//! # Pieces
//!
//! * [`RateLimitDomain`]: the rules of one domain, a tree of [`Descriptor`]s (Envoy API
//!   descriptors: key, optional value, [`RateLimit`] or unlimited, shadow mode, nested
//!   descriptors, Gloo's weight and `alwaysApply`) plus Gloo's set-style [`SetDescriptor`]s.
//! * [`RateLimiter`]: the domains plus a [`CounterStore`]; it answers a [`RateLimitRequest`]
//!   (domain, [`RateLimitDescriptor`]s, `hits_addend`) with a [`RateLimitResponse`]: a
//!   [`DescriptorStatus`] per descriptor (`Ok`/`OverLimit`, `current_limit`,
//!   `limit_remaining`, `duration_until_reset`) and the overall [`Code`].
//! * Stores: [`MemoryStore`] (one process, tests) and, with `ratelimit-redis`,
//!   `ratelimit::redis::RedisStore`.
//! * [`BasicRateLimit`]: Gloo's `ratelimitBasic` (authorized limits per user id, anonymous
//!   limits per client address) as domain rules plus the actions that feed them.
//! * [`GlobalRateLimitLayer`]: the HTTP middleware; a [`DescriptorExtractor`] (Envoy's route
//!   `rate_limits` as a [`RateLimitPolicy`] of [`RateLimitActions`], or a [`DescriptorFn`])
//!   builds the descriptors from the request head, and a [`RateLimitCheck`] answers: the
//!   [`RateLimiter`] in-process, or (feature `rls`) `rls::RateLimitClient`, Envoy's gRPC call
//!   to a remote rate limit service.
//!
//! # Matching (envoyproxy/ratelimit `GetLimit`, Gloo)
//!
//! * A descriptor `[(k1, v1), ..., (kn, vn)]` walks the tree one entry per level. At each level
//!   a node with `key = ki, value = vi` wins over a wildcard value (`*`), which wins over a node
//!   with only `key = ki` (each distinct value then has its own counter): the most specific
//!   node wins. The limit applied is the one of the node reached by the **last** entry; a
//!   descriptor longer or shorter than the configured path gets no limit.
//! * Gloo's rule priority: of all tree limits a request matched, only those with the highest
//!   [`weight`](Descriptor::weight) count, plus those with
//!   [`always_apply`](Descriptor::always_apply); the others are neither counted nor enforced.
//!   (Set-style rules have no weight: their priority is their order, below.)
//! * A descriptor containing `("generic_key", "solo.setDescriptor.uniqueValue")` (what Gloo's
//!   `setActions` and [`RateLimitActions::set_style`] produce) is set-style: it is matched
//!   against the [`SetDescriptor`]s instead, in any order: the first rule whose simple
//!   descriptors are all present applies, plus every later matching rule with
//!   [`always_apply`](SetDescriptor::always_apply).
//! * An unknown domain matches nothing: everything is allowed, as envoyproxy/ratelimit does.
//!
//! # Counting (envoyproxy/ratelimit `fixed_cache_impl.go`)
//!
//! Fixed windows: a limit of `N` per unit allows `N` hits in each window starting at a
//! multiple of the unit on the Unix clock. Each applied limit is one counter keyed
//! `<prefix><domain>_<k1>_<v1>_..._<kn>_<vn>_<window start>`; the store adds the hits
//! (`INCRBY`, with `EXPIRE` of the window length) for all descriptors of a request in one
//! round trip. The hits are the descriptor's `hits_addend`, else the request's, else 1. A
//! descriptor is over its limit when its counter after the increment exceeds `N`;
//! `limit_remaining = N - counter` (0 when over), `duration_until_reset = window - now %
//! window`. [Shadow mode](Descriptor::shadow_mode) turns an over-limit status into `Ok`;
//! [unlimited](Descriptor::unlimited) descriptors are not counted and report `u32::MAX`
//! remaining. The request is over limit when any status is.
//!
//! # The middleware (Envoy's rate limit filter)
//!
//! * A request outside the [`request_type`](GlobalRateLimitLayer::request_type) (internal
//!   requests carry `x-envoy-internal: true`), or with no descriptor built: the limiter is
//!   not asked.
//! * Over limit: [`rate_limited_status`](GlobalRateLimitLayer::rate_limited_status) (`429`),
//!   empty body, `x-envoy-ratelimited: true`, the [`RateLimited`] marker in the extensions;
//!   the inner service is not called. With [`enforce(false)`](GlobalRateLimitLayer::enforce)
//!   the request passes instead, its response marked `x-envoy-ratelimited: true`.
//! * The limiter fails (Redis down or slower than the store's timeout, the rate limit service
//!   unreachable, slower than the client's timeout or answering an error): the request passes
//!   (Envoy's default `failure_mode_deny: false`), or with
//!   [`failure_mode_deny(true)`](GlobalRateLimitLayer::failure_mode_deny) is answered
//!   [`status_on_error`](GlobalRateLimitLayer::status_on_error) (`500`) with an empty body
//!   and the [`LimiterFailed`] marker, as Envoy does.
//! * [`x_ratelimit_headers(true)`](GlobalRateLimitLayer::x_ratelimit_headers): Envoy's draft 03
//!   headers on passed and refused answers: `x-ratelimit-limit: 10, 10;w=60, 100;w=3600`,
//!   `x-ratelimit-remaining`, `x-ratelimit-reset` (seconds), from the status closest to its
//!   limit. [`retry_after(true)`](GlobalRateLimitLayer::retry_after) adds `retry-after` to
//!   refusals.
//!
//! [`RateLimited`]: crate::ratelimit::RateLimited
//!
//! # Example
//!
//! ```
//! use std::convert::Infallible;
//! use std::net::SocketAddr;
//!
//! use bytes::Bytes;
//! use gloo_filters::ratelimit::global::*;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Two requests a minute per client address; "premium" API keys get 100.
//! let limiter = RateLimiter::new(MemoryStore::new()).domain(
//!     RateLimitDomain::new("edge")
//!         .descriptor(Descriptor::new("remote_address").rate_limit(RateLimit::new(2, Unit::Minute)))
//!         .descriptor(
//!             Descriptor::new("plan")
//!                 .value("premium")
//!                 .rate_limit(RateLimit::new(100, Unit::Minute)),
//!         ),
//! )?;
//! let policy = RateLimitPolicy::new()
//!     .rate_limit(RateLimitActions::new().remote_address())
//!     .rate_limit(RateLimitActions::new().request_header("x-plan", "plan"));
//! let layer = GlobalRateLimitLayer::new(limiter, "edge", policy).x_ratelimit_headers(true);
//!
//! let svc = layer.layer(service_fn(|_req: Request<()>| async {
//!     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
//! }));
//! let request = || {
//!     let mut req = Request::new(());
//!     req.extensions_mut().insert(SocketAddr::from(([192, 0, 2, 7], 40_000)));
//!     req
//! };
//!
//! let ok = svc.clone().oneshot(request()).await?;
//! assert_eq!(ok.status(), StatusCode::OK);
//! assert_eq!(ok.headers()["x-ratelimit-limit"], "2, 2;w=60");
//! assert_eq!(ok.headers()["x-ratelimit-remaining"], "1");
//!
//! svc.clone().oneshot(request()).await?;
//! let limited = svc.oneshot(request()).await?;
//! assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
//! assert_eq!(limited.headers()["x-envoy-ratelimited"], "true");
//! # Ok(())
//! # }
//! ```

mod actions;
mod basic;
mod check;
mod config;
mod error;
mod future;
mod layer;
mod limiter;
mod matcher;
mod request;
mod service;
mod store;

pub use self::actions::{
    DescriptorExtractor, DescriptorFn, HeaderMatch, MetadataAction, RateLimitActions,
    RateLimitPolicy,
};
pub use self::basic::{BasicRateLimit, DEFAULT_USER_ID_HEADER};
pub use self::check::RateLimitCheck;
pub use self::config::{Descriptor, RateLimit, RateLimitDomain, SetDescriptor, Unit};
pub use self::error::{InvalidConfig, LimitError, StoreError};
pub use self::future::{LimiterFailed, ResponseFuture};
pub use self::layer::{GlobalRateLimitLayer, RequestType};
pub use self::limiter::{LimitFuture, RateLimiter};
pub use self::request::{
    Code, DescriptorEntry, DescriptorStatus, RateLimitDescriptor, RateLimitRequest,
    RateLimitResponse, SET_DESCRIPTOR_VALUE,
};
pub use self::service::GlobalRateLimit;
pub use self::store::{CounterStore, Increment, MemoryStore};

#[cfg(test)]
mod tests;
