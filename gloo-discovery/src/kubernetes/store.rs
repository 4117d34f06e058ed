//! Objects of one kind kept current by kube-rs watchers, one per watched namespace (or one for
//! all namespaces), with the semantics discovery and the config source need:
//!
//! - a re-list (the watcher's `Init` … `InitDone`, after a `410 Gone` or a restart) is buffered
//!   and swapped in at once: objects that vanished while the watch was down are removed, and
//!   nothing is dropped in between;
//! - an error (API server unreachable, watch broken) changes nothing: the last state stays,
//!   and the watcher retries with a backoff;
//! - every change bumps a generation on a `watch` channel, which coalesces bursts.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::StreamExt;
use kube::runtime::utils::Backoff;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// `(namespace, name)`; the namespace is empty for cluster-scoped objects.
pub(crate) type ObjectKey = (String, String);

/// The key of an object.
pub(crate) fn key_of<K: Resource>(object: &K) -> ObjectKey {
    (
        object.meta().namespace.clone().unwrap_or_default(),
        object.meta().name.clone().unwrap_or_default(),
    )
}

/// Namespace names from a builder argument.
pub(crate) fn names<I, S>(namespaces: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    namespaces.into_iter().map(Into::into).collect()
}

/// What is kept of a Service: all but its status and managed fields.
pub(crate) fn keep_service(
    _: Option<&k8s_openapi::api::core::v1::Service>,
    mut service: k8s_openapi::api::core::v1::Service,
) -> Option<k8s_openapi::api::core::v1::Service> {
    service.metadata.managed_fields = None;
    service.status = None;
    Some(service)
}

/// Which namespaces to watch: empty means all.
pub(crate) fn namespaced_apis<K>(
    client: &kube::Client,
    namespaces: &[String],
) -> Vec<(Option<String>, Api<K>)>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    if namespaces.is_empty() {
        vec![(None, Api::all(client.clone()))]
    } else {
        namespaces
            .iter()
            .map(|ns| (Some(ns.clone()), Api::namespaced(client.clone(), ns)))
            .collect()
    }
}

/// Like [`namespaced_apis`], for dynamic objects (whose scope is only known at run time).
pub(crate) fn dynamic_apis(
    client: &kube::Client,
    namespaces: &[String],
    resource: &kube::api::ApiResource,
) -> Vec<(Option<String>, Api<kube::api::DynamicObject>)> {
    if namespaces.is_empty() {
        vec![(None, Api::all_with(client.clone(), resource))]
    } else {
        namespaces
            .iter()
            .map(|ns| {
                (
                    Some(ns.clone()),
                    Api::namespaced_with(client.clone(), ns, resource),
                )
            })
            .collect()
    }
}

/// How long a failed watcher waits before it lists again: `initial`, doubling up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryBackoff {
    /// The first delay.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
}

impl Default for RetryBackoff {
    /// 500 ms, doubling up to 30 s.
    fn default() -> Self {
        RetryBackoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

/// The running state of a [`RetryBackoff`] (kube-runtime's `Backoff`: an iterator of delays,
/// reset after a success).
struct Delays {
    policy: RetryBackoff,
    next: Duration,
}

impl Iterator for Delays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = self.next;
        self.next = (self.next * 2).min(self.policy.max.max(self.policy.initial));
        Some(delay)
    }
}

impl Backoff for Delays {
    fn reset(&mut self) {
        self.next = self.policy.initial;
    }
}

/// Decides what a store keeps of an object: `None` drops it. Gets the kept value of the same
/// object, if any (the config source keeps a last good version).
pub(crate) type Keep<K, T> = dyn Fn(Option<&T>, K) -> Option<T> + Send + Sync;

/// Objects of one kind, as the watchers last saw them.
pub(crate) struct Store<T> {
    what: String,
    state: Mutex<State<T>>,
    /// Shared by the stores one consumer reads, so it wakes on a change of any of them.
    changes: Arc<watch::Sender<u64>>,
    /// Whether to record which objects changed, for [`Store::take_changes`].
    track: bool,
}

struct State<T> {
    objects: BTreeMap<ObjectKey, T>,
    /// Per watcher: whether its first list has completed.
    synced: Vec<bool>,
    /// With tracking: the objects changed since the last [`Store::take_changes`].
    changed: BTreeSet<ObjectKey>,
    /// With tracking: whether more than `changed` may have changed (a re-list).
    all_changed: bool,
}

impl<T: Send + 'static> Store<T> {
    /// An empty store of `what` (for logs: `services`, `virtualservices.gateway.solo.io`) that
    /// bumps `changes` on every change.
    pub(crate) fn new(what: impl Into<String>, changes: Arc<watch::Sender<u64>>) -> Arc<Self> {
        Arc::new(Store {
            what: what.into(),
            state: Mutex::new(State {
                objects: BTreeMap::new(),
                synced: Vec::new(),
                changed: BTreeSet::new(),
                all_changed: true,
            }),
            changes,
            track: false,
        })
    }

    /// Like [`Store::new`], recording which objects change for [`Store::take_changes`] (its
    /// one consumer must take them, or they pile up).
    pub(crate) fn tracked(what: impl Into<String>, changes: Arc<watch::Sender<u64>>) -> Arc<Self> {
        let mut store = Store::new(what, changes);
        if let Some(store) = Arc::get_mut(&mut store) {
            store.track = true;
        }
        store
    }

    /// The keys of the objects changed (added, modified or deleted) since the last call, or
    /// `None` when any may have (a re-list, or a store that does not track changes).
    pub(crate) fn take_changes(&self) -> Option<BTreeSet<ObjectKey>> {
        let mut state = self.lock();
        let changed = std::mem::take(&mut state.changed);
        let all = std::mem::replace(&mut state.all_changed, false);
        (self.track && !all).then_some(changed)
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        crate::runner::lock(&self.state)
    }

    /// Whether every watcher has listed once.
    pub(crate) fn synced(&self) -> bool {
        let state = self.lock();
        state.synced.iter().all(|s| *s)
    }

    /// Reads the objects.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&BTreeMap<ObjectKey, T>) -> R) -> R {
        f(&self.lock().objects)
    }

    fn bump(&self) {
        self.changes.send_modify(|g| *g += 1);
    }

    /// Starts one watcher per API (each scoped to a namespace, or `None` for all) feeding this
    /// store.
    pub(crate) fn watch<K>(
        self: &Arc<Self>,
        apis: Vec<(Option<String>, Api<K>)>,
        config: watcher::Config,
        backoff: RetryBackoff,
        keep: Arc<Keep<K, T>>,
    ) -> Vec<JoinHandle<()>>
    where
        K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let first = {
            let mut state = self.lock();
            let first = state.synced.len();
            state.synced.extend(apis.iter().map(|_| false));
            first
        };
        apis.into_iter()
            .enumerate()
            .map(|(offset, (scope, api))| {
                let store = self.clone();
                let keep = keep.clone();
                let stream = watcher::watcher(api, config.clone()).backoff(Delays {
                    policy: backoff,
                    next: backoff.initial,
                });
                tokio::spawn(async move {
                    store.run(first + offset, scope, stream, &*keep).await;
                })
            })
            .collect()
    }

    async fn run<K, S>(&self, index: usize, scope: Option<String>, stream: S, keep: &Keep<K, T>)
    where
        K: Resource,
        S: futures_util::Stream<Item = Result<Event<K>, watcher::Error>>,
    {
        let mut stream = std::pin::pin!(stream);
        let mut relist: Option<Vec<K>> = None;
        while let Some(event) = stream.next().await {
            match event {
                Ok(Event::Init) => relist = Some(Vec::new()),
                Ok(Event::InitApply(object)) => relist.get_or_insert_with(Vec::new).push(object),
                Ok(Event::InitDone) => {
                    let listed = relist.take().unwrap_or_default();
                    self.replace(index, scope.as_deref(), listed, keep);
                }
                Ok(Event::Apply(object)) => {
                    let key = key_of(&object);
                    let mut state = self.lock();
                    let kept = keep(state.objects.get(&key), object);
                    let changed = match kept {
                        Some(value) => {
                            state.objects.insert(key.clone(), value);
                            true
                        }
                        None => state.objects.remove(&key).is_some(),
                    };
                    if changed && self.track {
                        state.changed.insert(key);
                    }
                    drop(state);
                    if changed {
                        self.bump();
                    }
                }
                Ok(Event::Delete(object)) => {
                    let key = key_of(&object);
                    let mut state = self.lock();
                    let removed = state.objects.remove(&key).is_some();
                    if removed && self.track {
                        state.changed.insert(key);
                    }
                    drop(state);
                    if removed {
                        self.bump();
                    }
                }
                Err(watcher::Error::InitialListFailed(kube::Error::Api(status)))
                    if status.code == 404 =>
                {
                    // The API server does not serve this kind (a CRD that is not installed):
                    // there is nothing to wait for, though the watcher keeps asking.
                    let first = {
                        let mut state = self.lock();
                        match state.synced.get_mut(index) {
                            Some(synced) if !*synced => {
                                *synced = true;
                                state.all_changed = true;
                                true
                            }
                            _ => false,
                        }
                    };
                    if first {
                        tracing::warn!(
                            watching = %self.what,
                            namespace = scope.as_deref().unwrap_or("(all)"),
                            "not served by the API server (is its CRD installed?); going on without it"
                        );
                        self.bump();
                    }
                }
                Err(err) => {
                    tracing::warn!(
                        watching = %self.what,
                        namespace = scope.as_deref().unwrap_or("(all)"),
                        error = %err,
                        "Kubernetes watch failed; keeping what was last seen and retrying"
                    );
                }
            }
        }
    }

    /// Swaps in a complete list for one watcher's scope.
    fn replace<K: Resource>(
        &self,
        index: usize,
        scope: Option<&str>,
        listed: Vec<K>,
        keep: &Keep<K, T>,
    ) {
        let mut state = self.lock();
        let in_scope = |key: &ObjectKey| scope.is_none_or(|ns| key.0 == ns);
        let mut fresh: BTreeMap<ObjectKey, T> = BTreeMap::new();
        for object in listed {
            let key = key_of(&object);
            if let Some(value) = keep(state.objects.get(&key), object) {
                fresh.insert(key, value);
            }
        }
        state.objects.retain(|key, _| !in_scope(key));
        state.objects.extend(fresh);
        state.all_changed = true;
        if let Some(synced) = state.synced.get_mut(index) {
            *synced = true;
        }
        drop(state);
        self.bump();
    }
}
