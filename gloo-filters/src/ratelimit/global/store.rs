//! Where the fixed-window counters live: the [`CounterStore`] trait and the in-process
//! [`MemoryStore`].

use std::collections::HashMap;
use std::fmt;
use std::future::{ready, Future, Ready};
use std::sync::{Arc, Mutex, PoisonError};

use super::error::StoreError;

/// One counter to increment: envoyproxy/ratelimit's `INCRBY key hits` + `EXPIRE key
/// ttl_seconds`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Increment {
    /// The counter's key, `<prefix><domain>_<k1>_<v1>_..._<window start>`.
    pub key: String,
    /// How much to add (0 only reads).
    pub hits: u64,
    /// How long the counter must live: the window length.
    pub ttl_seconds: u64,
}

/// A store of fixed-window counters shared by every limiter that uses it.
///
/// [`increment`](Self::increment) applies all increments of one request in one round trip and
/// answers each counter's value **after** its increment, in order. Implementations must answer
/// in bounded time (a store that may hang must time out and return a [`StoreError`]).
pub trait CounterStore: Send + Sync + 'static {
    /// The future of one batch.
    type Future: Future<Output = Result<Vec<u64>, StoreError>> + Send + 'static;

    /// Adds `hits` to each counter and answers the new values. `now` is the limiter's clock
    /// (Unix seconds), for stores that expire counters themselves.
    fn increment(&self, now: u64, increments: Vec<Increment>) -> Self::Future;
}

/// How many increments pass between two sweeps of expired counters.
const SWEEP_EVERY: u64 = 4_096;

/// Counters in this process's memory: for a single process, and for tests. Clones share the
/// counters. Expired counters are dropped every 4,096 increments.
///
/// ```
/// use gloo_filters::ratelimit::global::{CounterStore, Increment, MemoryStore};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), gloo_filters::ratelimit::global::StoreError> {
/// let store = MemoryStore::new();
/// let inc = || vec![Increment { key: "d_k_v_0".into(), hits: 2, ttl_seconds: 60 }];
/// assert_eq!(store.increment(0, inc()).await?, [2]);
/// assert_eq!(store.increment(1, inc()).await?, [4]);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Counters>>,
}

#[derive(Default)]
struct Counters {
    /// key -> (value, expires at, Unix seconds)
    map: HashMap<String, (u64, u64)>,
    ops: u64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many counters are stored (expired ones included until the next sweep).
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map
            .len()
    }

    /// Whether no counter is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl CounterStore for MemoryStore {
    type Future = Ready<Result<Vec<u64>, StoreError>>;

    fn increment(&self, now: u64, increments: Vec<Increment>) -> Self::Future {
        // A panic while holding the lock cannot leave a counter half-updated, so a poisoned
        // lock is still consistent.
        let mut counters = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        counters.ops = counters.ops.wrapping_add(1);
        if counters.ops.is_multiple_of(SWEEP_EVERY) {
            counters.map.retain(|_, (_, expires)| *expires > now);
        }
        let values = increments
            .into_iter()
            .map(|inc| {
                let expires = now.saturating_add(inc.ttl_seconds);
                let slot = counters.map.entry(inc.key).or_insert((0, expires));
                if slot.1 <= now {
                    // Expired, as Redis would have dropped it.
                    *slot = (0, expires);
                }
                slot.0 = slot.0.saturating_add(inc.hits);
                slot.1 = expires;
                slot.0
            })
            .collect();
        ready(Ok(values))
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("counters", &self.len())
            .finish()
    }
}
