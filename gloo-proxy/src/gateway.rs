//! The proxy as a whole: a feed of xDS resources in, listeners serving traffic out.
//!
//! The feed is the only input: [`feed_from_cache`] reads gloo-xds' in-process snapshot cache
//! (what `gloo run` does: no network hop), [`feed_from_ads`] subscribes to a control plane over
//! delta ADS (what `gloo proxy` does). Either way the same [`Compiler`] interprets the same
//! Envoy resources.
//!
//! ```no_run
//! # async fn example() -> Result<(), gloo_proxy::gateway::GatewayError> {
//! use std::sync::Arc;
//! use gloo_proxy::gateway::{feed_from_cache, ProxyServer};
//! let cache = Arc::new(gloo_xds::SnapshotCache::new());
//! // ... a control plane publishes into `cache` ...
//! let feed = feed_from_cache(cache, "gloo-system~gateway-proxy");
//! ProxyServer::new()
//!     .admin("127.0.0.1:19000".parse().ok())
//!     .run(feed)
//!     .await
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use gloo_xds::client::{AdsClient, ClientConfig};
use gloo_xds::SnapshotCache;
use tokio::sync::watch;

use crate::admin::{AdminState, StatusSource};
use crate::config::{Compiler, ProxyConfig, XdsResources};
use crate::filter::{FilterFactory, FilterRegistry, HttpService};
use crate::proxy::{Proxy, RouteService};
use crate::server::{Listeners, Sockets};
use crate::stats::Stats;

/// Why the proxy stopped.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A worker thread could not start.
    #[error("cannot start a worker: {0}")]
    Worker(std::io::Error),
    /// The admin address could not be bound.
    #[error("cannot serve the admin endpoint on {addr}: {source}")]
    Admin {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}

/// A stream of resource sets: `None` until a first set arrives.
pub type Feed = watch::Receiver<Option<XdsResources>>;

/// Feeds the proxy from the in-process snapshot cache, for one role
/// (`<namespace>~<proxy name>`).
pub fn feed_from_cache(cache: Arc<SnapshotCache>, role: &str) -> Feed {
    let mut snapshots = cache.subscribe(role);
    let first = XdsResources::from_snapshot(&snapshots.borrow_and_update());
    let (tx, rx) = watch::channel(Some(first));
    tokio::spawn(async move {
        while snapshots.changed().await.is_ok() {
            let resources = XdsResources::from_snapshot(&snapshots.borrow_and_update());
            if tx.send(Some(resources)).is_err() {
                return;
            }
        }
    });
    rx
}

/// Feeds the proxy from a control plane over ADS. Responses the proxy cannot use are NACKed
/// (with the reason) and the last accepted resources stay in force; when the control plane
/// goes away the client keeps the last resources and reconnects. Keep the returned client
/// alive as long as the feed is used.
pub fn feed_from_ads(mut config: ClientConfig, registry: FilterRegistry) -> (Feed, AdsClient) {
    config.validator =
        Arc::new(move |type_url, resources| Compiler::validate(&registry, type_url, resources));
    let client = AdsClient::spawn(config);
    let mut state = client.state();
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        let mut generation = 0;
        while state.changed().await.is_ok() {
            let current = state.borrow_and_update().clone();
            if current.generation == generation {
                continue; // a connect or disconnect, no new resources
            }
            generation = current.generation;
            if tx
                .send(Some(XdsResources::from_client_state(&current)))
                .is_err()
            {
                return;
            }
        }
    });
    (rx, client)
}

/// The data plane: builds listeners from the feed's resources and serves them.
pub struct ProxyServer {
    registry: FilterRegistry,
    workers: usize,
    admin: Option<SocketAddr>,
    access_log: bool,
    statuses: Option<StatusSource>,
}

impl std::fmt::Debug for ProxyServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyServer")
            .field("registry", &self.registry)
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

impl Default for ProxyServer {
    fn default() -> Self {
        Self::new()
    }
}

impl ProxyServer {
    /// A proxy with the built-in filters, no admin endpoint and no access log.
    pub fn new() -> Self {
        ProxyServer {
            registry: FilterRegistry::with_builtins(),
            workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            admin: None,
            access_log: false,
            statuses: None,
        }
    }

    /// Serves traffic on this many worker threads (default: one per CPU). Each worker runs
    /// its own single-threaded runtime and connection pools; all accept on the same sockets.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// Uses this filter registry.
    pub fn filters(mut self, registry: FilterRegistry) -> Self {
        self.registry = registry;
        self
    }

    /// Registers one more filter, by HTTP filter name or config type URL.
    pub fn filter(mut self, key: impl Into<String>, factory: impl FilterFactory + 'static) -> Self {
        self.registry.register(key, factory);
        self
    }

    /// Registers a filter that runs on every HTTP listener and route (see
    /// [`FilterRegistry::register_everywhere`]).
    pub fn filter_everywhere(
        mut self,
        name: impl Into<String>,
        factory: impl FilterFactory + 'static,
    ) -> Self {
        self.registry.register_everywhere(name, factory);
        self
    }

    /// The filter registry (to validate resources the way this proxy will).
    pub fn registry(&self) -> &FilterRegistry {
        &self.registry
    }

    /// Serves the admin endpoint on this address.
    pub fn admin(mut self, addr: Option<SocketAddr>) -> Self {
        self.admin = addr;
        self
    }

    /// Logs every request.
    pub fn access_log(mut self, enabled: bool) -> Self {
        self.access_log = enabled;
        self
    }

    /// Shows these statuses at the admin endpoint's `/statuses`.
    pub fn statuses(mut self, source: StatusSource) -> Self {
        self.statuses = Some(source);
        self
    }

    /// Serves until the feed ends. Every new resource set is compiled and applied; listeners
    /// whose address is unchanged keep their sockets and connections.
    pub async fn run(self, mut feed: Feed) -> Result<(), GatewayError> {
        let stats = Arc::new(Stats::default());
        let (config_tx, config_rx) = watch::channel(Arc::new(ProxyConfig::default()));
        self.registry.upstreams().attach(config_rx.clone());
        let proxy = Arc::new(Proxy::new(
            config_rx.clone(),
            stats.clone(),
            self.access_log,
        ));
        let ready = Arc::new(AtomicBool::new(false));
        let _admin = match self.admin {
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| GatewayError::Admin { addr, source })?;
                let state = AdminState {
                    proxy: proxy.clone(),
                    ready: ready.clone(),
                    statuses: self.statuses.clone(),
                };
                Some(AbortOnDrop(tokio::spawn(async move {
                    if let Err(e) = crate::admin::serve(listener, state).await {
                        tracing::error!("admin endpoint stopped: {e}");
                    }
                })))
            }
            None => None,
        };
        let mut compiler = Compiler::new(
            self.registry,
            stats,
            HttpService::new(RouteService),
            self.workers,
        );
        let sockets = Arc::new(Sockets::new());
        let workers = (0..self.workers)
            .map(|index| spawn_worker(index, proxy.clone(), config_rx.clone(), sockets.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(GatewayError::Worker)?;
        // Listeners that could not bind (a port still held by the process this one replaces,
        // say) are retried every second until they bind; errors are logged once per config.
        let mut unbound = 0;
        let result = 'feed: loop {
            let resources = feed.borrow_and_update().clone();
            if let Some(resources) = resources {
                let config = compiler.compile(resources);
                let errors = sockets.sync(&config);
                for e in &errors {
                    tracing::error!("{e}; retrying every {BIND_RETRY:?}");
                }
                unbound = errors.len();
                config_tx.send_replace(config);
                ready.store(true, Ordering::Release);
            }
            loop {
                tokio::select! {
                    changed = feed.changed() => match changed {
                        Ok(()) => continue 'feed,
                        Err(_) => break 'feed Ok(()),
                    },
                    _ = tokio::time::sleep(BIND_RETRY), if unbound > 0 => {
                        let current = config_tx.borrow().clone();
                        let still = sockets.sync(&current).len();
                        if still < unbound {
                            // The workers start accepting on what is bound now.
                            config_tx.send_replace(current);
                        }
                        unbound = still;
                    }
                }
            }
        };
        // Closing the config channel stops the workers.
        drop(config_tx);
        for w in workers {
            let _ = w.join();
        }
        result
    }
}

/// How often a listener that could not bind tries again.
const BIND_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Starts worker `index`: a thread with its own single-threaded runtime that accepts on the
/// shared sockets and serves with its own connection pools, following config changes.
fn spawn_worker(
    index: usize,
    proxy: Arc<Proxy>,
    mut config: watch::Receiver<Arc<ProxyConfig>>,
    sockets: Arc<Sockets>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name(format!("gloo-worker-{index}"))
        .spawn(move || {
            crate::upstream::set_worker(index);
            runtime.block_on(async move {
                tokio::spawn(keep_the_timer_wheel_primed());
                let mut listeners = Listeners::new();
                loop {
                    let current = config.borrow_and_update().clone();
                    listeners.reconcile(&current, &proxy, &sockets);
                    if config.changed().await.is_err() {
                        return;
                    }
                }
            });
        })
}

/// Keeps a timer due within [`TIMER_PRIMER`] in the worker's timer wheel.
///
/// Tokio's timer wakes its driver (a write to an eventfd, then an extra turn of the event
/// loop) whenever a new timer is due before the one the driver last went to sleep for. Each
/// proxied request registers timers (the route timeout, 15 s by default; hyper's header read
/// timeout) and drops them when it completes, so between bursts the wheel often held nothing
/// sooner and about one request in four paid that wake-up. With a timer always due within a
/// second, only timers shorter than that still do.
async fn keep_the_timer_wheel_primed() {
    let mut tick = tokio::time::interval(TIMER_PRIMER);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
    }
}

/// How far ahead the worker's timer wheel always holds a timer.
const TIMER_PRIMER: std::time::Duration = std::time::Duration::from_secs(1);

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
