//! The [`RateLimiter`]: per-domain rules plus a counter store, answering
//! [`RateLimitRequest`]s with envoyproxy/ratelimit's fixed-window semantics.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{ready, Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pin_project_lite::pin_project;

use super::config::{RateLimit, RateLimitDomain, Rule};
use super::error::{InvalidConfig, LimitError, StoreError};
use super::matcher::CompiledDomain;
use super::request::{Code, DescriptorStatus, RateLimitRequest, RateLimitResponse};
use super::store::{CounterStore, Increment, MemoryStore};

type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Global rate limiting over a shared counter store: Gloo's rate limit server (and
/// envoyproxy/ratelimit) as a library.
///
/// A handle: clones share the domains and the store. Limiters in different processes that use
/// the same Redis (and the same rules) share one budget.
///
/// [`clock`](Self::clock), [`key_prefix`](Self::key_prefix) and
/// [`shadow_mode`](Self::shadow_mode) return a new handle (same store, a copy of the domains):
/// set them before cloning. [`set_domain`](Self::set_domain) changes every clone.
///
/// ```
/// use gloo_filters::ratelimit::global::*;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let limiter = RateLimiter::new(MemoryStore::new()).domain(
///     RateLimitDomain::new("edge")
///         .descriptor(Descriptor::new("user").rate_limit(RateLimit::new(2, Unit::Minute))),
/// )?;
/// let req = || RateLimitRequest::new("edge").descriptor(RateLimitDescriptor::new().entry("user", "alice"));
/// assert_eq!(limiter.should_rate_limit(&req()).await?.statuses[0].limit_remaining, 1);
/// assert!(!limiter.should_rate_limit(&req()).await?.is_over_limit());
/// assert!(limiter.should_rate_limit(&req()).await?.is_over_limit());
/// # Ok(())
/// # }
/// ```
pub struct RateLimiter<S = MemoryStore> {
    inner: Arc<Inner<S>>,
}

struct Inner<S> {
    store: S,
    domains: RwLock<Arc<HashMap<String, Arc<CompiledDomain>>>>,
    clock: Clock,
    key_prefix: String,
    shadow_mode: bool,
}

fn system_clock() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl<S: CounterStore> RateLimiter<S> {
    /// A limiter without domains (every request is within limits) counting in `store`.
    pub fn new(store: S) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                domains: RwLock::new(Arc::new(HashMap::new())),
                clock: Arc::new(system_clock),
                key_prefix: String::new(),
                shadow_mode: false,
            }),
        }
    }

    /// Adds (or replaces) a domain's rules, validated first. Shared with every clone.
    pub fn domain(self, domain: RateLimitDomain) -> Result<Self, InvalidConfig> {
        self.set_domain(domain)?;
        Ok(self)
    }

    /// Adds or replaces a domain's rules at run time (a config update); requests already being
    /// answered keep the rules they started with. On error nothing changes.
    pub fn set_domain(&self, domain: RateLimitDomain) -> Result<(), InvalidConfig> {
        let compiled = Arc::new(CompiledDomain::compile(&domain)?);
        let mut domains = self
            .inner
            .domains
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let mut next = HashMap::clone(&domains);
        next.insert(domain.name, compiled);
        *domains = Arc::new(next);
        Ok(())
    }

    /// Replaces all domains at once (all validated first; on error nothing changes).
    pub fn set_domains(
        &self,
        domains: impl IntoIterator<Item = RateLimitDomain>,
    ) -> Result<(), InvalidConfig> {
        let mut next = HashMap::new();
        for domain in domains {
            let compiled = Arc::new(CompiledDomain::compile(&domain)?);
            next.insert(domain.name, compiled);
        }
        *self
            .inner
            .domains
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(next);
        Ok(())
    }

    /// The limiter's clock, in Unix seconds (default: the system clock). Windows start at
    /// multiples of their length on this clock; all limiters sharing a store need the same
    /// time. For tests and simulations.
    pub fn clock(self, clock: impl Fn() -> u64 + Send + Sync + 'static) -> Self
    where
        S: Clone,
    {
        self.rebuild(|inner| inner.clock = Arc::new(clock))
    }

    /// A prefix for every counter key (envoyproxy/ratelimit's `CACHE_KEY_PREFIX`), to share
    /// one Redis between unrelated limiters.
    pub fn key_prefix(self, prefix: impl Into<String>) -> Self
    where
        S: Clone,
    {
        let prefix = prefix.into();
        self.rebuild(|inner| inner.key_prefix = prefix)
    }

    /// Global shadow mode (envoyproxy/ratelimit's `SHADOW_MODE`): count and report, but the
    /// overall code is always `Ok`.
    pub fn shadow_mode(self, shadow_mode: bool) -> Self
    where
        S: Clone,
    {
        self.rebuild(|inner| inner.shadow_mode = shadow_mode)
    }

    fn rebuild(self, change: impl FnOnce(&mut Inner<S>)) -> Self
    where
        S: Clone,
    {
        let domains = Arc::clone(
            &self
                .inner
                .domains
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let mut inner = Inner {
            store: self.inner.store.clone(),
            domains: RwLock::new(domains),
            clock: Arc::clone(&self.inner.clock),
            key_prefix: self.inner.key_prefix.clone(),
            shadow_mode: self.inner.shadow_mode,
        };
        change(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// Counts `request` and answers whether it is over a limit.
    ///
    /// The rules are looked up and the counter keys built now; the returned future does the
    /// store's one round trip. A request for an unknown domain matches nothing (all `Ok`).
    pub fn should_rate_limit(&self, request: &RateLimitRequest) -> LimitFuture<S::Future> {
        match self.plan(request) {
            Err(e) => LimitFuture::error(e),
            Ok((plan, increments)) if increments.is_empty() => {
                LimitFuture::ready(plan, self.inner.shadow_mode)
            }
            Ok((plan, increments)) => LimitFuture {
                store: Some(self.inner.store.increment(plan.now, increments)),
                plan: Some(plan),
                shadow_mode: self.inner.shadow_mode,
                error: None,
            },
        }
    }

    fn plan(&self, request: &RateLimitRequest) -> Result<(Plan, Vec<Increment>), LimitError> {
        if request.domain.is_empty() {
            return Err(LimitError::InvalidRequest(
                "rate limit domain must not be empty",
            ));
        }
        if request.descriptors.is_empty() {
            return Err(LimitError::InvalidRequest(
                "rate limit descriptor list must not be empty",
            ));
        }
        let now = (self.inner.clock)();
        let domain = self
            .inner
            .domains
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&request.domain)
            .cloned();
        let default_hits = u64::from(request.hits_addend.max(1));
        let mut items = Vec::with_capacity(request.descriptors.len());
        let mut weights = Vec::with_capacity(request.descriptors.len());
        for d in &request.descriptors {
            let hits = d.hits_addend.unwrap_or(default_hits);
            let entries_key = || {
                let mut key = String::new();
                for e in &d.entries {
                    key.push_str(&e.key);
                    key.push('_');
                    key.push_str(&e.value);
                    key.push('_');
                }
                key
            };
            if let Some(limit) = &d.limit {
                // Envoy's limit override: never shadowed, never weighted.
                items.push(Item::Checks(vec![Check::new(
                    limit.clone(),
                    false,
                    entries_key(),
                    hits,
                )]));
                weights.push(None);
                continue;
            }
            let Some(domain) = domain.as_deref() else {
                items.push(Item::NoLimit);
                weights.push(None);
                continue;
            };
            if d.is_set_style() {
                let checks: Vec<Check> = domain
                    .set_matches(d)
                    .into_iter()
                    .map(|m| Check::new(m.limit.clone(), m.shadow_mode, m.key, hits))
                    .collect();
                items.push(if checks.is_empty() {
                    Item::NoLimit
                } else {
                    Item::Checks(checks)
                });
                weights.push(None);
                continue;
            }
            match domain.tree_match(d) {
                None => {
                    items.push(Item::NoLimit);
                    weights.push(None);
                }
                Some(m) => {
                    weights.push(Some((m.weight, m.always_apply)));
                    items.push(match m.rule {
                        Rule::Unlimited => Item::Unlimited,
                        Rule::Limit(limit) => Item::Checks(vec![Check::new(
                            limit.clone(),
                            m.shadow_mode,
                            entries_key(),
                            hits,
                        )]),
                    });
                }
            }
        }
        // Gloo's rule priority: only the highest weight, plus the always-apply rules.
        if let Some(max) = weights.iter().flatten().map(|(w, _)| *w).max() {
            for (item, weight) in items.iter_mut().zip(&weights) {
                if let Some((w, always)) = weight {
                    if *w < max && !always {
                        *item = Item::NoLimit;
                    }
                }
            }
        }
        let mut increments = Vec::new();
        for item in &items {
            if let Item::Checks(checks) = item {
                for check in checks {
                    let window = check.limit.unit().seconds();
                    increments.push(Increment {
                        key: format!(
                            "{}{}_{}{}",
                            self.inner.key_prefix,
                            request.domain,
                            check.key,
                            (now / window) * window
                        ),
                        hits: check.hits,
                        ttl_seconds: window,
                    });
                }
            }
        }
        Ok((Plan { now, items }, increments))
    }
}

impl<S> Clone for RateLimiter<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for RateLimiter<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let domains: Vec<String> = self
            .inner
            .domains
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        f.debug_struct("RateLimiter")
            .field("store", &self.inner.store)
            .field("domains", &domains)
            .field("key_prefix", &self.inner.key_prefix)
            .field("shadow_mode", &self.inner.shadow_mode)
            .finish_non_exhaustive()
    }
}

/// One limit to count for a request descriptor.
#[derive(Debug)]
struct Check {
    limit: RateLimit,
    shadow_mode: bool,
    /// The key between `<domain>_` and the window start.
    key: String,
    hits: u64,
}

impl Check {
    fn new(limit: RateLimit, shadow_mode: bool, key: String, hits: u64) -> Self {
        Self {
            limit,
            shadow_mode,
            key,
            hits,
        }
    }

    /// envoyproxy/ratelimit's `GetResponseDescriptorStatus` for one counter value.
    fn status(&self, after: u64, now: u64) -> (DescriptorStatus, bool) {
        let limit = u64::from(self.limit.requests_per_unit());
        let window = self.limit.unit().seconds();
        let over = after > limit;
        let remaining = if over { 0 } else { (limit - after) as u32 };
        let code = if over && !self.shadow_mode {
            Code::OverLimit
        } else {
            Code::Ok
        };
        let status = DescriptorStatus {
            code,
            current_limit: Some(self.limit.clone()),
            limit_remaining: remaining,
            duration_until_reset: Some(Duration::from_secs(window - now % window)),
        };
        (status, over)
    }
}

#[derive(Debug)]
enum Item {
    NoLimit,
    Unlimited,
    Checks(Vec<Check>),
}

/// What a request will be answered from once the counters are back.
#[derive(Debug)]
struct Plan {
    now: u64,
    items: Vec<Item>,
}

impl Plan {
    fn answer(self, counts: &[u64], shadow_mode: bool) -> Result<RateLimitResponse, LimitError> {
        let mut counts = counts.iter().copied();
        let mut statuses = Vec::with_capacity(self.items.len());
        for item in self.items {
            statuses.push(match item {
                Item::NoLimit => DescriptorStatus::no_limit(),
                Item::Unlimited => DescriptorStatus::unlimited(),
                Item::Checks(checks) => {
                    // A set-style descriptor may count several rules: report the refusing
                    // one, else the one closest to its limit.
                    let mut best: Option<DescriptorStatus> = None;
                    for check in &checks {
                        let after = counts.next().ok_or_else(|| {
                            StoreError::backend("the store answered fewer counters than asked")
                        })?;
                        let (status, _) = check.status(after, self.now);
                        let better = match &best {
                            None => true,
                            Some(b) => {
                                (status.code == Code::OverLimit && b.code == Code::Ok)
                                    || (status.code == b.code
                                        && status.limit_remaining < b.limit_remaining)
                            }
                        };
                        if better {
                            best = Some(status);
                        }
                    }
                    best.unwrap_or_else(DescriptorStatus::no_limit)
                }
            });
        }
        let over = statuses.iter().any(|s| s.code == Code::OverLimit);
        Ok(RateLimitResponse {
            overall_code: if over && !shadow_mode {
                Code::OverLimit
            } else {
                Code::Ok
            },
            statuses,
        })
    }
}

pin_project! {
    /// The future of [`RateLimiter::should_rate_limit`]: the store's round trip, then the
    /// statuses.
    pub struct LimitFuture<F> {
        #[pin]
        store: Option<F>,
        plan: Option<Plan>,
        shadow_mode: bool,
        error: Option<LimitError>,
    }
}

impl<F> LimitFuture<F> {
    fn error(error: LimitError) -> Self {
        Self {
            store: None,
            plan: None,
            shadow_mode: false,
            error: Some(error),
        }
    }

    fn ready(plan: Plan, shadow_mode: bool) -> Self {
        Self {
            store: None,
            plan: Some(plan),
            shadow_mode,
            error: None,
        }
    }
}

impl<F> Future for LimitFuture<F>
where
    F: Future<Output = Result<Vec<u64>, StoreError>>,
{
    type Output = Result<RateLimitResponse, LimitError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some(error) = this.error.take() {
            return Poll::Ready(Err(error));
        }
        let counts = match this.store.as_mut().as_pin_mut() {
            Some(store) => {
                let counts = ready!(store.poll(cx));
                this.store.set(None);
                counts?
            }
            None => Vec::new(),
        };
        match this.plan.take() {
            Some(plan) => Poll::Ready(plan.answer(&counts, *this.shadow_mode)),
            None => Poll::Ready(Err(LimitError::InvalidRequest(
                "rate limit future polled after completion",
            ))),
        }
    }
}

impl<F> fmt::Debug for LimitFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LimitFuture")
            .field("pending_store", &self.store.is_some())
            .finish_non_exhaustive()
    }
}
