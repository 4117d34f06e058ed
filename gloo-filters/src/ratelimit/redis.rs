//! The Redis counter store of the global limiter (feature `ratelimit-redis`), as
//! envoyproxy/ratelimit's `fixed_cache_impl.go` uses Redis.
//!
//! For each applied limit one pipelined `INCRBY <key> <hits>` + `EXPIRE <key> <window
//! seconds>`; all descriptors of a request go in **one round trip**. Every limiter (every proxy
//! shard, every rate limit service replica) pointing at the same Redis shares the counters,
//! hence the budget.
//!
//! Connections: one multiplexed connection, kept by `redis`'s `ConnectionManager`, which
//! reconnects (with a short backoff) after Redis restarts or the connection drops; until then
//! calls fail fast. Every call is bounded by a timeout ([`DEFAULT_TIMEOUT`], 100 ms, or the one
//! given to [`RedisStore::with_timeout`]), so a hung or unreachable Redis never hangs a request:
//! the call fails with a [`StoreError`] and the middleware applies its failure policy (fail open
//! by default, or
//! [`failure_mode_deny`](super::global::GlobalRateLimitLayer::failure_mode_deny)).
//!
//! ```no_run
//! use gloo_filters::ratelimit::global::{Descriptor, RateLimit, RateLimitDomain, RateLimiter, Unit};
//! use gloo_filters::ratelimit::redis::RedisStore;
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = RedisStore::with_timeout("redis://127.0.0.1:6379/", Duration::from_millis(50))?;
//! let limiter = RateLimiter::new(store).domain(
//!     RateLimitDomain::new("edge")
//!         .descriptor(Descriptor::new("remote_address").rate_limit(RateLimit::new(100, Unit::Second))),
//! )?;
//! # let _ = limiter;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::global::{CounterStore, Increment, StoreError};

/// The default bound on one Redis round trip.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(100);

/// Fixed-window counters in Redis; clones share the connection.
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    timeout: Duration,
    address: String,
}

impl RedisStore {
    /// A store for the Redis at `url` (`redis://[:password@]host:port[/db]`). The connection
    /// is opened lazily, so this succeeds while Redis is down (calls then fail until it is up).
    ///
    /// Must be called within a Tokio runtime (the connection manager spawns a task); outside
    /// one, and for a malformed URL, it returns an error.
    pub fn new(url: impl AsRef<str>) -> Result<Self, StoreError> {
        Self::with_timeout(url, DEFAULT_TIMEOUT)
    }

    /// Like [`new`](Self::new), with every call (connecting included) bounded by `timeout`
    /// instead of [`DEFAULT_TIMEOUT`]; past it the call fails with a timeout [`StoreError`].
    pub fn with_timeout(url: impl AsRef<str>, timeout: Duration) -> Result<Self, StoreError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(StoreError::backend(
                "RedisStore::new must be called within a Tokio runtime",
            ));
        }
        let client = redis::Client::open(url.as_ref()).map_err(StoreError::backend)?;
        let address = client.get_connection_info().addr().to_string();
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            // Reconnect fast and give up fast: requests must not wait for Redis to come back.
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(100));
        let connection =
            ConnectionManager::new_lazy_with_config(client, config).map_err(StoreError::backend)?;
        Ok(Self {
            connection,
            timeout,
            address,
        })
    }

    /// The bound on one call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

impl CounterStore for RedisStore {
    type Future = Pin<Box<dyn Future<Output = Result<Vec<u64>, StoreError>> + Send>>;

    fn increment(&self, _now: u64, increments: Vec<Increment>) -> Self::Future {
        let mut connection = self.connection.clone();
        let timeout = self.timeout;
        Box::pin(async move {
            let mut pipe = redis::pipe();
            for inc in &increments {
                pipe.cmd("INCRBY").arg(&inc.key).arg(inc.hits);
                pipe.cmd("EXPIRE")
                    .arg(&inc.key)
                    .arg(inc.ttl_seconds)
                    .ignore();
            }
            let reply =
                tokio::time::timeout(timeout, pipe.query_async::<Vec<u64>>(&mut connection));
            match reply.await {
                Err(_) => Err(StoreError::timeout(timeout)),
                // The connection's own response timeout (the same bound) may fire first.
                Ok(Err(e)) if e.is_timeout() => Err(StoreError::timeout(timeout)),
                Ok(Err(e)) => Err(StoreError::backend(e)),
                Ok(Ok(values)) if values.len() == increments.len() => Ok(values),
                Ok(Ok(values)) => Err(StoreError::backend(format!(
                    "Redis answered {} counters for {} increments",
                    values.len(),
                    increments.len()
                ))),
            }
        })
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("address", &self.address)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
