//! [`DiscoveryRunner`]: runs plugins next to a config source and merges what they find.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use gloo_core::load::{LoadedResource, Origin};
use gloo_core::model::{Resource, ResourceRef, DEFAULT_NAMESPACE};
use gloo_core::source::{ConfigSource, SourceSnapshot};
use gloo_core::translate::{Endpoint, EndpointChanges, EndpointList, Endpoints};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::plugin::{
    Discovery, DiscoveryContext, EndpointsUpdate, Functions, Publisher, Upstream, Upstreams,
};

/// Runs [`Discovery`] plugins beside a config source.
///
/// [`start`](Self::start) gives a [`RunningDiscovery`]: a [`ConfigSource`] holding the config
/// source's resources plus every discovered upstream, and the discovered endpoints, either as
/// changes ([`RunningDiscovery::endpoint_updates`], to feed
/// [`Translator::apply_endpoint_changes`](gloo_core::translate::Translator::apply_endpoint_changes))
/// or as one map ([`RunningDiscovery::endpoints`]).
///
/// ```
/// use std::sync::Arc;
/// use gloo_core::source::{ConfigSource, MemorySource};
/// use gloo_discovery::DiscoveryRunner;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let config = Arc::new(MemorySource::new("app"));
/// let running = DiscoveryRunner::new().start(config);
/// assert!(running.subscribe().borrow().resources.is_empty());
/// assert!(running.endpoints().borrow().is_empty());
/// # }
/// ```
pub struct DiscoveryRunner {
    plugins: Vec<Arc<dyn Discovery>>,
    backoff: Backoff,
}

impl fmt::Debug for DiscoveryRunner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiscoveryRunner")
            .field(
                "plugins",
                &self.plugins.iter().map(|p| p.name()).collect::<Vec<_>>(),
            )
            .field("backoff", &self.backoff)
            .finish()
    }
}

impl Default for DiscoveryRunner {
    fn default() -> Self {
        Self::new()
    }
}

/// How long a failed plugin waits before it is started again: `initial`, doubling up to `max`.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    initial: Duration,
    max: Duration,
}

impl DiscoveryRunner {
    /// A runner with no plugins; a failed plugin is restarted after 1 s, doubling up to 30 s.
    pub fn new() -> Self {
        DiscoveryRunner {
            plugins: Vec::new(),
            backoff: Backoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(30),
            },
        }
    }

    /// Adds a plugin.
    pub fn plugin(mut self, plugin: impl Discovery) -> Self {
        self.plugins.push(Arc::new(plugin));
        self
    }

    /// Adds a shared plugin.
    pub fn plugin_arc(mut self, plugin: Arc<dyn Discovery>) -> Self {
        self.plugins.push(plugin);
        self
    }

    /// Sets the restart backoff of failed plugins: `initial`, doubling up to `max`.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff = Backoff {
            initial,
            max: max.max(initial),
        };
        self
    }

    /// Starts the plugins and the merge on the current tokio runtime. Everything stops when
    /// the returned [`RunningDiscovery`] is dropped.
    pub fn start(self, config: Arc<dyn ConfigSource>) -> RunningDiscovery {
        let name = format!("{}+discovery", config.name());
        let config_updates = config.subscribe();
        let (upstream_tx, upstream_rx) = watch::channel(0u64);
        let (endpoints_tx, _) = watch::channel(Arc::new(Endpoints::new()));
        let (endpoint_changes, _) = watch::channel(0u64);
        let mut feeds = Vec::new();
        let mut feed_rx = Vec::new();
        for _ in &self.plugins {
            let (tx, rx) = watch::channel(Arc::new(Upstreams::new()));
            feeds.push(tx);
            feed_rx.push(rx);
        }
        let shared = Arc::new(Shared {
            names: self.plugins.iter().map(|p| p.name().to_string()).collect(),
            state: Mutex::new(State {
                upstreams: vec![Vec::new(); self.plugins.len()],
                functions: vec![BTreeMap::new(); self.plugins.len()],
                endpoints: vec![BTreeMap::new(); self.plugins.len()],
                merged: BTreeMap::new(),
                subscribers: Vec::new(),
            }),
            upstream_changes: upstream_tx,
            endpoint_changes,
            endpoints: endpoints_tx,
        });
        let initial = {
            let state = shared.lock();
            merge(
                &config_updates.borrow(),
                &state.upstreams,
                &state.functions,
                &shared.names,
            )
        };
        let (source_tx, source_rx) = watch::channel(Arc::new(initial));
        let resolvers: Vec<Arc<dyn Discovery>> = self.plugins.clone();
        feed_plugins(&source_rx.borrow(), &resolvers, &feeds);

        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(merge_loop(
            config_updates,
            upstream_rx,
            shared.clone(),
            source_tx,
            resolvers,
            feeds,
        )));
        for (index, (plugin, upstreams)) in self.plugins.into_iter().zip(feed_rx).enumerate() {
            let context = DiscoveryContext {
                upstreams,
                publisher: Publisher {
                    index,
                    shared: shared.clone(),
                },
                config: source_rx.clone(),
            };
            tasks.push(tokio::spawn(supervise(plugin, context, self.backoff)));
        }
        RunningDiscovery {
            name,
            _config: config,
            source: source_rx,
            shared,
            tasks,
        }
    }
}

/// Plugins running beside a config source: a [`ConfigSource`] of the config's resources plus
/// the discovered upstreams, and the discovered endpoints. Dropping it stops the plugins.
pub struct RunningDiscovery {
    name: String,
    _config: Arc<dyn ConfigSource>,
    source: watch::Receiver<Arc<SourceSnapshot>>,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl fmt::Debug for RunningDiscovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningDiscovery")
            .field("name", &self.name)
            .field("tasks", &self.tasks.len())
            .finish()
    }
}

impl RunningDiscovery {
    /// The endpoints every plugin found, merged (an upstream two plugins resolve gets both
    /// lists), as one map; wakes on every change. Each change copies every list into a new
    /// map while such a receiver lives: to follow changes at scale, use
    /// [`endpoint_updates`](Self::endpoint_updates).
    pub fn endpoints(&self) -> watch::Receiver<Arc<Endpoints>> {
        let state = self.shared.lock();
        let full = full_map(&state.merged);
        self.shared.endpoints.send_if_modified(|current| {
            if **current == full {
                false
            } else {
                *current = Arc::new(full);
                true
            }
        });
        self.shared.endpoints.subscribe()
    }

    /// The merged endpoints as changes: the first [`EndpointUpdates::take`] gives every
    /// upstream's, each later one only the upstreams whose endpoints changed since (each list
    /// shared, not copied). What the endpoint fast path of a control plane follows.
    pub fn endpoint_updates(&self) -> EndpointUpdates {
        let mut state = self.shared.lock();
        let pending = Arc::new(Mutex::new(state.merged.keys().cloned().collect()));
        state.subscribers.push(Arc::downgrade(&pending));
        EndpointUpdates {
            shared: Arc::downgrade(&self.shared),
            pending,
            wake: self.shared.endpoint_changes.subscribe(),
        }
    }
}

/// Follows the merged endpoints of a [`RunningDiscovery`] as changes (see
/// [`RunningDiscovery::endpoint_updates`]). Changes that arrive while nobody takes them
/// accumulate (an upstream changed twice is reported once, with its latest list).
pub struct EndpointUpdates {
    shared: Weak<Shared>,
    /// The upstreams changed since the last `take`.
    pending: Arc<Mutex<BTreeSet<ResourceRef>>>,
    wake: watch::Receiver<u64>,
}

impl fmt::Debug for EndpointUpdates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointUpdates")
            .field("pending", &lock(&self.pending).len())
            .finish()
    }
}

impl EndpointUpdates {
    /// The changes since the last call (empty when there are none).
    pub fn take(&mut self) -> EndpointChanges {
        let mut changes = EndpointChanges::default();
        let Some(shared) = self.shared.upgrade() else {
            return changes;
        };
        self.wake.borrow_and_update();
        let state = shared.lock();
        let dirty = std::mem::take(&mut *lock(&self.pending));
        for upstream in dirty {
            match state.merged.get(&upstream) {
                Some(list) => {
                    changes.updated.insert(upstream, list.clone());
                }
                None => {
                    changes.removed.insert(upstream);
                }
            }
        }
        changes
    }

    /// Waits for changes and takes them; `None` once the discovery has stopped. Cancel-safe:
    /// changes not taken stay for the next call.
    pub async fn changed(&mut self) -> Option<EndpointChanges> {
        loop {
            let changes = self.take();
            if !changes.is_empty() {
                return Some(changes);
            }
            if self.wake.changed().await.is_err() {
                return None;
            }
        }
    }
}

/// Locks a mutex, recovering the data if a holder panicked (none of this crate's holders
/// panics while holding one).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The merged endpoints as one map of owned lists.
fn full_map(merged: &BTreeMap<ResourceRef, EndpointList>) -> Endpoints {
    merged
        .iter()
        .map(|(upstream, list)| (upstream.clone(), list.to_vec()))
        .collect()
}

impl ConfigSource for RunningDiscovery {
    fn name(&self) -> &str {
        &self.name
    }

    fn subscribe(&self) -> watch::Receiver<Arc<SourceSnapshot>> {
        self.source.clone()
    }
}

impl Drop for RunningDiscovery {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// What the plugins published, shared by their publishers and the merge.
pub(crate) struct Shared {
    names: Vec<String>,
    state: Mutex<State>,
    /// Bumped whenever a plugin's upstreams change, to wake the merge.
    upstream_changes: watch::Sender<u64>,
    /// Bumped whenever the merged endpoints change, to wake [`EndpointUpdates`].
    endpoint_changes: watch::Sender<u64>,
    /// The merged endpoints as one map, kept current only while a receiver lives.
    endpoints: watch::Sender<Arc<Endpoints>>,
}

struct State {
    upstreams: Vec<Vec<Upstream>>,
    functions: Vec<BTreeMap<ResourceRef, Functions>>,
    /// Per plugin, the endpoints it published (no empty list).
    endpoints: Vec<BTreeMap<ResourceRef, EndpointList>>,
    /// All plugins' endpoints by upstream: the one plugin's list shared, or the lists of
    /// several plugins joined.
    merged: BTreeMap<ResourceRef, EndpointList>,
    /// The pending changes of each [`EndpointUpdates`] (dropped ones are pruned).
    subscribers: Vec<Weak<Mutex<BTreeSet<ResourceRef>>>>,
}

impl Shared {
    pub(crate) fn plugin_name(&self, index: usize) -> &str {
        self.names.get(index).map(String::as_str).unwrap_or("?")
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub(crate) fn set_upstreams(&self, index: usize, upstreams: Vec<Upstream>) {
        let mut state = self.lock();
        let Some(mine) = state.upstreams.get_mut(index) else {
            return;
        };
        if *mine == upstreams {
            return;
        }
        *mine = upstreams;
        drop(state);
        self.upstream_changes
            .send_modify(|generation| *generation += 1);
    }

    pub(crate) fn set_functions(&self, index: usize, functions: BTreeMap<ResourceRef, Functions>) {
        let mut state = self.lock();
        let Some(mine) = state.functions.get_mut(index) else {
            return;
        };
        if *mine == functions {
            return;
        }
        *mine = functions;
        drop(state);
        self.upstream_changes
            .send_modify(|generation| *generation += 1);
    }

    /// Applies a plugin's endpoint update, then re-merges only the upstreams it changed and
    /// tells the subscribers which ones did.
    pub(crate) fn set_endpoints(&self, index: usize, update: EndpointsUpdate) {
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(mine) = state.endpoints.get_mut(index) else {
            return;
        };
        // The upstreams whose list this plugin changed.
        let mut touched: Vec<ResourceRef> = Vec::new();
        let mut put = |mine: &mut BTreeMap<ResourceRef, EndpointList>,
                       upstream: ResourceRef,
                       list: Vec<Endpoint>| {
            let current = mine.get(&upstream).map_or(&[][..], |l| &l[..]);
            if current == list.as_slice() {
                return;
            }
            if list.is_empty() {
                mine.remove(&upstream);
            } else {
                mine.insert(upstream.clone(), list.into());
            }
            touched.push(upstream);
        };
        match update {
            EndpointsUpdate::Replace(mut all) => {
                let gone: Vec<ResourceRef> = mine
                    .keys()
                    .filter(|u| !all.contains_key(*u))
                    .cloned()
                    .collect();
                for upstream in gone {
                    all.insert(upstream, Vec::new());
                }
                for (upstream, list) in all {
                    put(mine, upstream, list);
                }
            }
            EndpointsUpdate::Some(changed) => {
                for (upstream, list) in changed {
                    put(mine, upstream, list);
                }
            }
        }
        let mut changed = Vec::new();
        for upstream in touched {
            let mut lists = state.endpoints.iter().filter_map(|m| m.get(&upstream));
            let merged: Option<EndpointList> = match (lists.next(), lists.next()) {
                (None, _) => None,
                (Some(one), None) => Some(one.clone()),
                (Some(first), Some(second)) => Some(
                    first
                        .iter()
                        .chain(second.iter())
                        .chain(lists.flat_map(|l| l.iter()))
                        .cloned()
                        .collect(),
                ),
            };
            let same = match (&merged, state.merged.get(&upstream)) {
                (None, None) => true,
                (Some(new), Some(old)) => Arc::ptr_eq(new, old) || new == old,
                _ => false,
            };
            if same {
                continue;
            }
            match merged {
                Some(list) => state.merged.insert(upstream.clone(), list),
                None => state.merged.remove(&upstream),
            };
            changed.push(upstream);
        }
        if changed.is_empty() {
            return;
        }
        state.subscribers.retain(|pending| {
            let Some(pending) = pending.upgrade() else {
                return false;
            };
            lock(&pending).extend(changed.iter().cloned());
            true
        });
        if self.endpoints.receiver_count() > 0 {
            self.endpoints
                .send_replace(Arc::new(full_map(&state.merged)));
        }
        // Sent under the lock, so two publishers' changes reach subscribers in order.
        self.endpoint_changes
            .send_modify(|generation| *generation += 1);
    }
}

/// The config source's snapshot with the discovered upstreams added (those the config does
/// not define itself), and the discovered functions put into the upstreams they name.
fn merge(
    config: &SourceSnapshot,
    discovered: &[Vec<Upstream>],
    functions: &[BTreeMap<ResourceRef, Functions>],
    names: &[String],
) -> SourceSnapshot {
    let written: std::collections::BTreeSet<ResourceRef> = config
        .resources
        .iter()
        .filter(|r| matches!(r.resource, Resource::Upstream(_)))
        .map(|r| reference(r.resource.metadata()))
        .collect();
    let mut resources = config.resources.clone();
    for (plugin, upstreams) in discovered.iter().enumerate() {
        let origin: Arc<str> = format!(
            "discovery:{}",
            names.get(plugin).map(String::as_str).unwrap_or("?")
        )
        .into();
        for (index, upstream) in upstreams.iter().enumerate() {
            if written.contains(&reference(&upstream.metadata)) {
                continue;
            }
            resources.push(LoadedResource {
                resource: Resource::Upstream(Arc::new(upstream.clone())),
                origin: Origin::new(origin.clone(), index + 1),
            });
        }
    }
    if functions.iter().any(|f| !f.is_empty()) {
        for loaded in &mut resources {
            let Resource::Upstream(upstream) = &loaded.resource else {
                continue;
            };
            let reference = reference(&upstream.metadata);
            let mut amended: Option<Upstream> = None;
            for found in functions.iter().filter_map(|f| f.get(&reference)) {
                let target = amended.get_or_insert_with(|| (**upstream).clone());
                found.apply(&mut target.spec);
            }
            if let Some(amended) = amended.filter(|a| a != upstream.as_ref()) {
                loaded.resource = Resource::Upstream(Arc::new(amended));
            }
        }
    }
    SourceSnapshot {
        resources,
        errors: config.errors.clone(),
        generation: 0,
    }
}

fn reference(meta: &gloo_core::model::ObjectMeta) -> ResourceRef {
    ResourceRef::new(
        meta.namespace
            .as_deref()
            .filter(|ns| !ns.is_empty())
            .unwrap_or(DEFAULT_NAMESPACE),
        meta.name.clone(),
    )
}

/// Hands each plugin the upstreams in force that it resolves (only when they changed).
fn feed_plugins(
    snapshot: &SourceSnapshot,
    plugins: &[Arc<dyn Discovery>],
    feeds: &[watch::Sender<Arc<Upstreams>>],
) {
    for (plugin, feed) in plugins.iter().zip(feeds) {
        let mine: Upstreams = snapshot
            .resources
            .iter()
            .filter_map(|r| match &r.resource {
                Resource::Upstream(u) if plugin.resolves(&u.spec) => {
                    Some((reference(&u.metadata), u.clone()))
                }
                _ => None,
            })
            .collect();
        feed.send_if_modified(|current| {
            if **current == mine {
                false
            } else {
                *current = Arc::new(mine);
                true
            }
        });
    }
}

/// Re-merges whenever the config or a plugin's upstreams change.
async fn merge_loop(
    mut config: watch::Receiver<Arc<SourceSnapshot>>,
    mut upstream_changes: watch::Receiver<u64>,
    shared: Arc<Shared>,
    source: watch::Sender<Arc<SourceSnapshot>>,
    plugins: Vec<Arc<dyn Discovery>>,
    feeds: Vec<watch::Sender<Arc<Upstreams>>>,
) {
    let mut generation = 0u64;
    loop {
        tokio::select! {
            changed = config.changed() => if changed.is_err() { return },
            changed = upstream_changes.changed() => if changed.is_err() { return },
        }
        let config_snapshot = config.borrow_and_update().clone();
        upstream_changes.borrow_and_update();
        let mut merged = {
            let state = shared.lock();
            merge(
                &config_snapshot,
                &state.upstreams,
                &state.functions,
                &shared.names,
            )
        };
        generation += 1;
        merged.generation = generation;
        feed_plugins(&merged, &plugins, &feeds);
        source.send_replace(Arc::new(merged));
    }
}

/// Runs one plugin, starting it again after a backoff whenever it fails.
async fn supervise(plugin: Arc<dyn Discovery>, context: DiscoveryContext, backoff: Backoff) {
    let mut delay = backoff.initial;
    loop {
        let started = tokio::time::Instant::now();
        match plugin.clone().run(context.clone()).await {
            Ok(()) => return,
            Err(err) => {
                // A plugin that ran for a while before failing starts over from the first delay.
                if started.elapsed() > backoff.max {
                    delay = backoff.initial;
                }
                tracing::warn!(
                    plugin = plugin.name(),
                    error = %err,
                    retry_in = ?delay,
                    "discovery failed; what it found keeps serving"
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(backoff.max);
            }
        }
    }
}
