//! Local (in-process) rate limiting with Envoy's `envoy.filters.http.local_ratelimit`
//! semantics, as a tower middleware. Enabled by the `ratelimit` cargo feature.
//!
//! Limits shared by all proxy shards (Envoy's `envoy.filters.http.ratelimit` with Gloo's rate
//! limit server semantics, counted in Redis) are in [`global`]; the Redis store in `redis`
//! (feature `ratelimit-redis`).
//!
//! gloo-proxy builds this layer from the Envoy filter config, and a differential test compares
//! its answers with Envoy 1.40, so the behaviour below follows Envoy, not taste.
//!
//! # Token bucket
//!
//! A [`TokenBucket`] has `max_tokens` (capacity and initial fill, ≥ 1), `tokens_per_fill`
//! (≥ 1) and `fill_interval` (≥ 50 ms, whole milliseconds). It starts full and refills
//! continuously at `tokens_per_fill / fill_interval`: Envoy 1.40 only uses its
//! `AtomicTokenBucketImpl`, a CAS loop over one "time of an empty bucket" value that is
//! equivalent to GCRA. Here it is [`governor`]'s GCRA with one cell every
//! `fill_interval / tokens_per_fill` and a burst of `max_tokens`. Each request takes one token;
//! decisions are exact under any concurrency (one atomic compare-and-swap per decision).
//!
//! # Answers
//!
//! * A refused request never reaches the inner service. Its answer has the configured status
//!   (default `429`), `content-type: text/plain`, the body `local_rate_limited`, and the
//!   [`RateLimited`] marker in its extensions.
//! * [`enforce(false)`](LocalRateLimitLayer::enforce) (Envoy's `filter_enforced` at 0%): the
//!   bucket is consulted and counts, but nothing is refused.
//! * Inner errors pass through unchanged.
//!
//! # `x-ratelimit-*` headers
//!
//! With [`x_ratelimit_headers(true)`](LocalRateLimitLayer::x_ratelimit_headers) (Envoy's
//! `enable_x_ratelimit_headers: DRAFT_VERSION_03`) every answer, passed or refused, gets three
//! headers, appended as Envoy's `addReferenceKey` does. What Envoy computes
//! (`Filter::encodeHeaders` in
//! `source/extensions/filters/http/local_ratelimit/local_ratelimit.cc`, `RateLimitTokenBucket`
//! in `source/extensions/filters/common/local_ratelimit/local_ratelimit_impl.h`,
//! `AtomicTokenBucketImpl` in `source/common/common/token_bucket_impl.{h,cc}`):
//!
//! * `x-ratelimit-limit` = `maxTokens()` = `max_tokens`.
//! * `x-ratelimit-remaining` = `static_cast<uint64_t>(remainingTokens())` with
//!   `remainingTokens() = min(max_tokens, (now - time_in_seconds_) * fill_rate_)`: the whole
//!   tokens left after this request's token was taken (0 on a refused request).
//! * `x-ratelimit-reset` = `static_cast<uint64_t>(std::ceil(nextTokenAvailable().count() /
//!   1000))`: `nextTokenAvailable()` is 0 ms while at least one whole token is left, otherwise
//!   `ceil((1 / fill_rate_) * 1000)` ms, with `fill_rate_ = max(tokens_per_fill /
//!   fill_interval_seconds, 1 / year)`. `count() / 1000` is an integer division, so the
//!   seconds are truncated: a bucket of 1 token per 1.5 s says `1`, 10 tokens per second say
//!   `0`, 1 token per hour says `3600`. (The `ceil((1 / fill_rate_) * 1000)` body is the one
//!   of Envoy's `TokenBucketImpl` and earlier `AtomicTokenBucketImpl`; the body in the current
//!   GCRA-style `AtomicTokenBucketImpl` could not be read when this was written, so the
//!   differential test against Envoy 1.40 is the judge of this one value.)
//!
//! Envoy reads `remaining`/`reset` when the response headers are encoded, i.e. after the
//! upstream answered; this layer computes them when the token is taken. The two differ only
//! if tokens are refilled or taken by other requests while the inner service runs.
//!
//! # Buckets per key
//!
//! A [`KeyExtractor`] picks the bucket: [`Shared`] (the default) puts everything in one
//! bucket; [`KeyFn`] keys by anything in the request head (client IP from the extensions, a
//! header, ...). Each key gets its own bucket of the same size. A request whose key is `None`
//! draws from the layer's shared bucket, like Envoy's default token bucket for requests
//! matching no descriptor. Keyed buckets that have refilled completely are dropped every
//! 4,096 keyed decisions (they are indistinguishable from new ones), so memory stays bounded
//! by the keys active within one refill period.
//!
//! # Sharing
//!
//! All services built from one [`LocalRateLimitLayer`] and its clones share its buckets (the
//! layer holds an `Arc` of them); build a new layer for a separate budget.
//!
//! # Example
//!
//! ```
//! use std::convert::Infallible;
//! use std::time::Duration;
//!
//! use bytes::Bytes;
//! use gloo_filters::ratelimit::{LocalRateLimitLayer, TokenBucket};
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Two requests, then one more every 30 seconds.
//! let bucket = TokenBucket::new(2, 1, Duration::from_secs(30))?;
//! let layer = LocalRateLimitLayer::new(bucket).x_ratelimit_headers(true);
//!
//! let svc = layer.layer(service_fn(|_req: Request<Full<Bytes>>| async {
//!     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
//! }));
//!
//! let ok = svc.clone().oneshot(Request::new(Full::default())).await?;
//! assert_eq!(ok.status(), StatusCode::OK);
//! assert_eq!(ok.headers()["x-ratelimit-remaining"], "1");
//!
//! let ok = svc.clone().oneshot(Request::new(Full::default())).await?;
//! assert_eq!(ok.headers()["x-ratelimit-remaining"], "0");
//! assert_eq!(ok.headers()["x-ratelimit-reset"], "30");
//!
//! let limited = svc.oneshot(Request::new(Full::default())).await?;
//! assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
//! assert_eq!(limited.headers()["content-type"], "text/plain");
//! # Ok(())
//! # }
//! ```

pub mod global;
#[cfg(feature = "ratelimit-redis")]
pub mod redis;

mod bucket;
mod future;
mod key;
mod layer;
mod service;

pub use self::bucket::{InvalidTokenBucket, TokenBucket};
pub use self::future::ResponseFuture;
pub use self::key::{KeyExtractor, KeyFn, RequestHead, Shared};
pub use self::layer::LocalRateLimitLayer;
pub use self::service::{LocalRateLimit, RateLimited};

#[cfg(test)]
mod tests;
