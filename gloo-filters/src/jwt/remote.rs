//! The cache of one remote JWKS: fetched keys, their expiry, failure back-off, rotation
//! refetches, and one fetch at a time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use tokio::time::Instant;

use super::config::RemoteJwks;
use super::fetch::{JwksFetcher, JwksRequest};
use super::jwks::Jwks;

#[derive(Default)]
struct State {
    jwks: Option<Arc<Jwks>>,
    /// When `jwks` expires; `None` with keys present: never (a cache duration past the clock).
    expires: Option<Instant>,
    last_failure: Option<Instant>,
    last_attempt: Option<Instant>,
    /// Bumped by every finished fetch, so waiters can tell one happened.
    generation: u64,
}

/// What the cache has for a token.
pub(crate) enum Lookup {
    /// Keys that have not expired.
    Fresh(Arc<Jwks>, u64),
    /// No keys, and no fetch now: the last one failed recently, or this request already
    /// waited for one.
    Failed,
    /// No usable keys: fetch (the generation seen).
    Fetch(u64),
}

pub(crate) struct RemoteCache {
    request: JwksRequest,
    timeout: Duration,
    cache_duration: Duration,
    failed_refetch_duration: Duration,
    rotation_refetch_interval: Option<Duration>,
    /// Envoy's `async_fetch`: a background task keeps the keys fresh.
    async_fetch: bool,
    background_started: AtomicBool,
    fetcher: Arc<dyn JwksFetcher>,
    state: RwLock<State>,
    fetch_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for RemoteCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteCache")
            .field("request", &self.request)
            .field("cache_duration", &self.cache_duration)
            .finish_non_exhaustive()
    }
}

impl RemoteCache {
    pub(crate) fn new(
        request: JwksRequest,
        config: &RemoteJwks,
        fetcher: Arc<dyn JwksFetcher>,
    ) -> Self {
        Self {
            request,
            timeout: config.timeout,
            cache_duration: config.cache_duration,
            failed_refetch_duration: config.failed_refetch_duration,
            rotation_refetch_interval: config.rotation_refetch_interval,
            async_fetch: config.async_fetch,
            background_started: AtomicBool::new(false),
            fetcher,
            state: RwLock::new(State::default()),
            fetch_lock: tokio::sync::Mutex::new(()),
        }
    }

    fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        // A poisoned lock only means a panic elsewhere; the state itself is always whole.
        let guard = self.state.read().unwrap_or_else(|e| e.into_inner());
        f(&guard)
    }

    fn write<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut guard = self.state.write().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    /// The keys for a token now; `waited` says this request already waited for a fetch of
    /// this provider (it never fetches twice).
    pub(crate) fn lookup(&self, now: Instant, waited: bool) -> Lookup {
        self.read(|state| {
            if let Some(jwks) = &state.jwks {
                if state.expires.is_none_or(|expires| now < expires) {
                    return Lookup::Fresh(Arc::clone(jwks), state.generation);
                }
            }
            let backing_off = state
                .last_failure
                .is_some_and(|at| now.saturating_duration_since(at) < self.failed_refetch_duration);
            if waited || backing_off {
                Lookup::Failed
            } else {
                Lookup::Fetch(state.generation)
            }
        })
    }

    /// Whether an unknown `kid` may trigger a refetch now.
    pub(crate) fn may_refetch_for_rotation(&self, now: Instant) -> bool {
        let Some(interval) = self.rotation_refetch_interval else {
            return false;
        };
        self.read(|state| {
            state
                .last_attempt
                .is_none_or(|at| now.saturating_duration_since(at) >= interval)
        })
    }

    /// Fetches unless another fetch finished since `seen` (then its result is used). One fetch
    /// at a time; the others wait for it.
    pub(crate) async fn refresh(&self, seen: u64) {
        let _one_at_a_time = self.fetch_lock.lock().await;
        if self.read(|state| state.generation) != seen {
            return;
        }
        let started = Instant::now();
        let result =
            match tokio::time::timeout(self.timeout, self.fetcher.fetch(&self.request)).await {
                Ok(Ok(body)) => Jwks::parse(&body).map_err(|e| e.to_string()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("timed out after {:?}", self.timeout)),
            };
        let now = Instant::now();
        self.write(|state| {
            state.generation += 1;
            state.last_attempt = Some(started);
            match result {
                Ok(jwks) => {
                    state.jwks = Some(Arc::new(jwks));
                    // With `async_fetch` the background task replaces the keys; until then
                    // they stay in use (Envoy sets their expiry to "never").
                    state.expires = if self.async_fetch {
                        None
                    } else {
                        now.checked_add(self.cache_duration)
                    };
                    state.last_failure = None;
                }
                Err(reason) => {
                    tracing::warn!(
                        provider = %self.request.provider,
                        uri = %self.request.uri,
                        %reason,
                        "remote JWKS fetch failed"
                    );
                    state.last_failure = Some(now);
                }
            }
        });
    }

    /// Starts the `async_fetch` task once, if configured and a tokio runtime is at hand (it is
    /// tried again on later calls otherwise). The task holds only a weak reference between
    /// fetches, so it ends when the cache is dropped.
    pub(crate) fn start_background(self: &Arc<Self>) {
        if !self.async_fetch || self.background_started.load(Ordering::Relaxed) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.background_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak: Weak<Self> = Arc::downgrade(self);
        runtime.spawn(async move {
            loop {
                let Some(cache) = weak.upgrade() else { return };
                let seen = cache.read(|state| state.generation);
                cache.refresh(seen).await;
                let wait = if cache.read(|state| state.last_failure.is_some()) {
                    cache.failed_refetch_duration
                } else {
                    cache.cache_duration
                };
                drop(cache);
                tokio::time::sleep(wait).await;
            }
        });
    }
}
