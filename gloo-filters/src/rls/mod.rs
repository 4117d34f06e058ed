//! Envoy's rate limit service, `envoy.service.ratelimit.v3.RateLimitService`, both ends:
//! [`RateLimitService`] serves it over the global limiter (what a stock Envoy's
//! `envoy.filters.http.ratelimit` calls), [`RateLimitClient`] calls it (so
//! [`GlobalRateLimitLayer`] is that Envoy filter asking a remote service). Enabled by the `rls`
//! cargo feature (which pulls in `ratelimit-redis`, tonic and envoy-types).
//!
//! # The service
//!
//! [`RateLimitService`] answers `ShouldRateLimit` with a
//! [`RateLimiter`](crate::ratelimit::global::RateLimiter) that holds one
//! [`RateLimitDomain`](crate::ratelimit::global::RateLimitDomain) per Envoy filter `domain`,
//! and fills the response as envoyproxy/ratelimit does:
//!
//! * `overall_code` `OVER_LIMIT` when any descriptor is over its limit (shadow mode aside),
//!   else `OK`;
//! * one status per request descriptor, in order: `code`, `current_limit` (`requests_per_unit`,
//!   `unit`, `name`) when a limit applied, `limit_remaining` (`u32::MAX` for unlimited
//!   descriptors), `duration_until_reset` (seconds until the window ends);
//! * Envoy's descriptor `limit` override and per-descriptor `hits_addend` are honoured, the
//!   request `hits_addend` (0 means 1) otherwise;
//! * an empty domain or descriptor list is `INVALID_ARGUMENT`; a store (Redis) failure is
//!   `UNAVAILABLE`, so Envoy applies its own `failure_mode_deny` (allow by default, `500` when
//!   set), exactly as with envoyproxy/ratelimit.
//!
//! Several replicas of the service (and in-process [`GlobalRateLimitLayer`]s) counting in the
//! same Redis share the budget.
//!
//! # The client
//!
//! [`RateLimitClient`] is a [`RateLimitCheck`](crate::ratelimit::global::RateLimitCheck): one
//! `ShouldRateLimit` call per checked request, bounded by Envoy's 20 ms default timeout (see
//! its docs for what it reads of the answer). Over a tonic channel, or any gRPC transport.
//!
//! [`GlobalRateLimitLayer`]: crate::ratelimit::global::GlobalRateLimitLayer
//!
//! # Example
//!
//! ```
//! use gloo_filters::ratelimit::global::*;
//! use gloo_filters::rls::RateLimitService;
//! use envoy_types::pb::envoy::extensions::common::ratelimit::v3::{rate_limit_descriptor::Entry, RateLimitDescriptor};
//! use envoy_types::pb::envoy::service::ratelimit::v3::{rate_limit_response::Code, RateLimitRequest};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let limiter = RateLimiter::new(MemoryStore::new()).domain(
//!     RateLimitDomain::new("edge")
//!         .descriptor(Descriptor::new("user").rate_limit(RateLimit::new(1, Unit::Minute))),
//! )?;
//! let service = RateLimitService::new(limiter);
//!
//! let request = RateLimitRequest {
//!     domain: "edge".into(),
//!     descriptors: vec![RateLimitDescriptor {
//!         entries: vec![Entry { key: "user".into(), value: "alice".into() }],
//!         ..Default::default()
//!     }],
//!     hits_addend: 0,
//! };
//! assert_eq!(service.check(request.clone()).await?.overall_code, Code::Ok as i32);
//! assert_eq!(service.check(request).await?.overall_code, Code::OverLimit as i32);
//!
//! // Serve it with tonic:
//! let _server = service.into_server(); // RateLimitServiceServer<RateLimitService<MemoryStore>>
//! # Ok(())
//! # }
//! ```

mod client;
mod convert;
mod service;

pub use self::client::{CheckFuture, RateLimitClient, RlsError, DEFAULT_TIMEOUT};
pub use self::service::RateLimitService;
