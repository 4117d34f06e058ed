//! The token bucket configuration and the shared bucket state behind a layer.

use std::fmt;
use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use governor::clock::{Clock, MonotonicClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

/// Envoy's lower bound for `fill_interval` (`local rate limit token bucket fill timer must be
/// >= 50ms`), also enforced by Gloo's validation.
const MIN_FILL_INTERVAL: Duration = Duration::from_millis(50);

/// Envoy clamps the fill rate to at least one token a year (`kMinFillRate` in
/// `source/common/common/token_bucket_impl.cc`), so one token never takes longer than this.
const MAX_TOKEN_PERIOD: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// How many keyed decisions pass between two sweeps of idle (full) keyed buckets.
const SWEEP_EVERY: u64 = 4_096;

/// A validated token bucket: Envoy's `envoy.type.v3.TokenBucket`.
///
/// The bucket holds at most `max_tokens` tokens and starts full. It refills continuously at
/// `tokens_per_fill / fill_interval` (Envoy 1.40 only has the atomic, timer-less token bucket,
/// which is equivalent to GCRA); every request takes one token.
///
/// ```
/// use std::time::Duration;
/// use gloo_filters::ratelimit::TokenBucket;
///
/// let bucket = TokenBucket::new(100, 10, Duration::from_secs(1))?;
/// assert_eq!(bucket.max_tokens(), 100);
///
/// let err = TokenBucket::new(100, 10, Duration::from_millis(10)).unwrap_err();
/// assert_eq!(err.field(), "fill_interval");
/// # Ok::<(), gloo_filters::ratelimit::InvalidTokenBucket>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    max_tokens: NonZeroU32,
    tokens_per_fill: NonZeroU32,
    fill_interval: Duration,
    quota: Quota,
}

impl TokenBucket {
    /// Validates a bucket the way Envoy and Gloo do.
    ///
    /// * `max_tokens` (capacity and initial fill) must be at least 1;
    /// * `tokens_per_fill` must be at least 1;
    /// * `fill_interval` is truncated to whole milliseconds (Envoy reads it with
    ///   `PROTOBUF_GET_MS`) and must then be at least 50 ms.
    ///
    /// The error names the offending field.
    pub fn new(
        max_tokens: u32,
        tokens_per_fill: u32,
        fill_interval: Duration,
    ) -> Result<Self, InvalidTokenBucket> {
        let max_tokens = NonZeroU32::new(max_tokens)
            .ok_or(InvalidTokenBucket::new("max_tokens", "must be at least 1"))?;
        let tokens_per_fill = NonZeroU32::new(tokens_per_fill).ok_or(InvalidTokenBucket::new(
            "tokens_per_fill",
            "must be at least 1",
        ))?;
        let millis = u64::try_from(fill_interval.as_millis())
            .map_err(|_| InvalidTokenBucket::new("fill_interval", "is too long"))?;
        let fill_interval = Duration::from_millis(millis);
        if fill_interval < MIN_FILL_INTERVAL {
            return Err(InvalidTokenBucket::new(
                "fill_interval",
                "must be at least 50ms",
            ));
        }
        // One token every fill_interval / tokens_per_fill, never less than 1ns (governor's
        // resolution) and never more than Envoy's one-token-a-year floor.
        let period = (fill_interval / tokens_per_fill.get())
            .clamp(Duration::from_nanos(1), MAX_TOKEN_PERIOD);
        let quota = Quota::with_period(period)
            .ok_or(InvalidTokenBucket::new(
                "fill_interval",
                "is too short for tokens_per_fill",
            ))?
            .allow_burst(max_tokens);
        Ok(Self {
            max_tokens,
            tokens_per_fill,
            fill_interval,
            quota,
        })
    }

    /// The capacity of the bucket, which is also how many tokens it starts with.
    pub fn max_tokens(&self) -> u32 {
        self.max_tokens.get()
    }

    /// How many tokens are added per `fill_interval`.
    pub fn tokens_per_fill(&self) -> u32 {
        self.tokens_per_fill.get()
    }

    /// The refill interval, in whole milliseconds.
    pub fn fill_interval(&self) -> Duration {
        self.fill_interval
    }

    /// `x-ratelimit-reset` when less than one whole token is left.
    ///
    /// Envoy: `resetSeconds() = static_cast<uint64_t>(std::ceil(nextTokenAvailable().count() /
    /// 1000))` where `nextTokenAvailable()` is `ceil((1 / fill_rate_) * 1000)` milliseconds and
    /// `fill_rate_ = max(tokens_per_fill / fill_interval_seconds, 1 / year)`. `count() / 1000`
    /// is an integer division, so the `ceil` does nothing: the value is truncated to seconds.
    pub(crate) fn reset_seconds_when_empty(&self) -> u64 {
        const MIN_FILL_RATE: f64 = 1.0 / (365.0 * 24.0 * 60.0 * 60.0);
        let interval_seconds = self.fill_interval.as_millis() as f64 / 1000.0;
        let fill_rate =
            (f64::from(self.tokens_per_fill.get()) / interval_seconds).max(MIN_FILL_RATE);
        // f64 -> u64 `as` saturates; the value is at most a year in milliseconds anyway.
        let next_token_ms = ((1.0 / fill_rate) * 1000.0).ceil() as u64;
        next_token_ms / 1000
    }
}

/// A [`TokenBucket`] field is out of range.
///
/// [`field`](Self::field) names the field as in Envoy's `TokenBucket` message
/// (`max_tokens`, `tokens_per_fill` or `fill_interval`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid token bucket: `{field}` {reason}")]
pub struct InvalidTokenBucket {
    field: &'static str,
    reason: &'static str,
}

impl InvalidTokenBucket {
    const fn new(field: &'static str, reason: &'static str) -> Self {
        Self { field, reason }
    }

    /// The offending field: `max_tokens`, `tokens_per_fill` or `fill_interval`.
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// Why the value was refused, e.g. `must be at least 50ms`.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

type DirectLimiter =
    RateLimiter<NotKeyed, InMemoryState, MonotonicClock, StateInformationMiddleware>;
type KeyedLimiter<K> =
    RateLimiter<K, DashMapStateStore<K>, MonotonicClock, StateInformationMiddleware>;

/// The outcome of consulting a bucket for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// A token was taken; `remaining` whole tokens are left.
    Allowed { remaining: u32 },
    /// Less than one token was available; nothing was taken. The next token comes in
    /// `retry_after`.
    Limited { retry_after: Duration },
}

/// The buckets of one layer: the shared (default) bucket plus, lazily, one bucket per key.
pub(crate) struct Buckets<K: Hash + Eq + Clone> {
    bucket: TokenBucket,
    shared: DirectLimiter,
    keyed: OnceLock<KeyedLimiter<K>>,
    keyed_decisions: AtomicU64,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    pub(crate) fn new(bucket: TokenBucket) -> Self {
        let shared = RateLimiter::direct_with_clock(bucket.quota, MonotonicClock).with_middleware();
        Self {
            bucket,
            shared,
            keyed: OnceLock::new(),
            keyed_decisions: AtomicU64::new(0),
        }
    }

    pub(crate) fn bucket(&self) -> &TokenBucket {
        &self.bucket
    }

    /// Takes one token from the key's bucket, or from the shared bucket for `None`.
    pub(crate) fn decide(&self, key: Option<&K>) -> Decision {
        let outcome = match key {
            None => self.shared.check(),
            Some(key) => {
                let keyed = self.keyed.get_or_init(|| {
                    RateLimiter::dashmap_with_clock(self.bucket.quota, MonotonicClock)
                        .with_middleware()
                });
                let outcome = keyed.check_key(key);
                // Full buckets are indistinguishable from fresh ones, so dropping them now and
                // then keeps memory bounded without changing any answer.
                if self.keyed_decisions.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY
                    == SWEEP_EVERY - 1
                {
                    keyed.retain_recent();
                    keyed.shrink_to_fit();
                }
                outcome
            }
        };
        match outcome {
            Ok(snapshot) => Decision::Allowed {
                remaining: snapshot.remaining_burst_capacity(),
            },
            Err(not_until) => Decision::Limited {
                retry_after: not_until.wait_time_from(MonotonicClock.now()),
            },
        }
    }

    /// How many keyed buckets are currently stored.
    #[cfg(test)]
    pub(crate) fn keyed_len(&self) -> usize {
        self.keyed.get().map_or(0, |keyed| keyed.len())
    }
}

impl<K: Hash + Eq + Clone> fmt::Debug for Buckets<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Buckets")
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_field() {
        let err = TokenBucket::new(0, 1, Duration::from_secs(1)).unwrap_err();
        assert_eq!(err.field(), "max_tokens");
        assert!(err.to_string().contains("`max_tokens`"), "{err}");

        let err = TokenBucket::new(1, 0, Duration::from_secs(1)).unwrap_err();
        assert_eq!(err.field(), "tokens_per_fill");
        assert!(err.to_string().contains("`tokens_per_fill`"), "{err}");

        let err = TokenBucket::new(1, 1, Duration::from_millis(49)).unwrap_err();
        assert_eq!(err.field(), "fill_interval");
        assert_eq!(err.reason(), "must be at least 50ms");

        // Truncated to whole milliseconds first, like Envoy's PROTOBUF_GET_MS.
        let err = TokenBucket::new(1, 1, Duration::from_micros(49_999)).unwrap_err();
        assert_eq!(err.field(), "fill_interval");
        let ok = TokenBucket::new(1, 1, Duration::from_micros(50_999)).unwrap();
        assert_eq!(ok.fill_interval(), Duration::from_millis(50));

        // Extreme but valid values do not panic.
        TokenBucket::new(u32::MAX, u32::MAX, Duration::from_millis(50)).unwrap();
        TokenBucket::new(1, 1, Duration::from_secs(u64::MAX / 2_000)).unwrap();
    }

    #[test]
    fn reset_when_empty_matches_envoy_arithmetic() {
        let b = |max, per, ms| TokenBucket::new(max, per, Duration::from_millis(ms)).unwrap();
        // ceil(1000 / (1 / 3600 s)) ms = 3_600_000 ms -> 3600 s.
        assert_eq!(b(10, 1, 3_600_000).reset_seconds_when_empty(), 3600);
        // 1 token per 1.5 s -> 1500 ms -> truncated to 1 s.
        assert_eq!(b(1, 1, 1_500).reset_seconds_when_empty(), 1);
        // 10 tokens per second -> 100 ms -> 0 s.
        assert_eq!(b(1, 10, 1_000).reset_seconds_when_empty(), 0);
        // 3 tokens per 10 s -> ceil(3333.33) = 3334 ms -> 3 s.
        assert_eq!(b(1, 3, 10_000).reset_seconds_when_empty(), 3);
        // Fill rate clamped to one token a year.
        let year = 365 * 24 * 60 * 60;
        assert_eq!(b(1, 1, 2 * year * 1000).reset_seconds_when_empty(), year);
    }
}
