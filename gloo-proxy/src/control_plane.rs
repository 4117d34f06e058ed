//! `gloo control-plane`: watch a directory of Gloo YAML (and the config sources and discovery
//! its Settings name, see [`crate::sources`]) and serve its translation over xDS.
//!
//! A config change is translated in full; a change of discovered endpoints takes the endpoint
//! fast path: discovery hands over only the upstreams whose endpoints changed
//! ([`EndpointUpdates`](gloo_discovery::EndpointUpdates)),
//! [`Translator::apply_endpoint_changes`] rebuilds only their ClusterLoadAssignments, and
//! [`publish_assignments`] puts only those into the snapshots: listeners, routes, clusters and
//! every other assignment keep their versions, so xDS clients are sent only what changed.
//!
//! ```
//! use gloo_proxy::config::CLUSTER_TYPE;
//! use gloo_proxy::control_plane::{ControlPlane, WRITE_NAMESPACE};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! std::fs::write(
//!     dir.path().join("petstore.yaml"),
//!     r#"
//! apiVersion: gloo.solo.io/v1
//! kind: Upstream
//! metadata: {name: petstore, namespace: gloo-system}
//! spec: {static: {hosts: [{addr: 127.0.0.1, port: 8081}]}}
//! ---
//! apiVersion: gateway.solo.io/v1
//! kind: VirtualService
//! metadata: {name: default, namespace: gloo-system}
//! spec:
//!   virtualHost:
//!     domains: ['*']
//!     routes:
//!     - matchers: [{prefix: /petstore}]
//!       routeAction: {single: {upstream: {name: petstore, namespace: gloo-system}}}
//! "#,
//! )?;
//! // Translated before `start` returns, then again on every change to the directory.
//! let control_plane = ControlPlane::start(dir.path(), None)?;
//! assert!(!control_plane.board().reports().has_rejections());
//!
//! // Each proxy's resources are in the cache under its role, `<namespace>~<proxy name>`:
//! // what `feed_from_cache` serves in this process, and `serve_xds` to Envoy and `gloo proxy`.
//! let role = format!("{WRITE_NAMESPACE}~gateway-proxy");
//! let snapshot = control_plane.cache().subscribe(&role).borrow().clone();
//! let clusters = snapshot.of_type(CLUSTER_TYPE).expect("the default Gateway's clusters");
//! assert!(clusters.contains_key("petstore_gloo-system"));
//! # Ok(())
//! # }
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use gloo_core::source::SourceSnapshot;
use gloo_core::status::{ClientRejection, Reports, State};
use gloo_core::translate::Translator;
use gloo_core::xds::{CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE};
use gloo_xds::{ServerOptions, Snapshot, SnapshotCache, XdsServer};
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;

use crate::ext_auth_server::{ExtAuthServerConfig, ExtAuthServerError, ExtAuthServerOptions};
use crate::rate_limit_server::{RateLimitConfigs, RateLimitServerError, RateLimitServerOptions};
use crate::sources::{SourceOptions, Sources, SourcesError};

/// The namespace proxies are served in: roles are `<namespace>~<proxy name>`, as in Gloo,
/// whose Proxy resources live in its write namespace.
pub const WRITE_NAMESPACE: &str = "gloo-system";

/// Why the control plane stopped.
#[derive(Debug, thiserror::Error)]
pub enum ControlPlaneError {
    /// The config directory could not be read or watched.
    #[error(transparent)]
    Source(#[from] gloo_core::source::SourceError),
    /// The xDS address could not be bound.
    #[error("cannot listen for xDS on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("xDS server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
    /// The rate limit service could not be hosted.
    #[error(transparent)]
    RateLimit(#[from] RateLimitServerError),
    /// The ext auth service could not be hosted.
    #[error(transparent)]
    ExtAuth(#[from] ExtAuthServerError),
    /// The config sources or discovery the Settings name could not start.
    #[error(transparent)]
    Sources(#[from] SourcesError),
}

/// Where a control plane announces what the services it hosts must load, on every accepted
/// configuration (only when it changed).
#[derive(Debug)]
pub struct ServiceFeeds {
    /// What the rate limit service must load.
    pub rate_limits: watch::Sender<Arc<RateLimitConfigs>>,
    /// What the ext auth service must load.
    pub ext_auth: watch::Sender<Arc<ExtAuthServerConfig>>,
}

impl Default for ServiceFeeds {
    fn default() -> Self {
        Self {
            rate_limits: watch::channel(Arc::default()).0,
            ext_auth: watch::channel(Arc::default()).0,
        }
    }
}

/// Replaces the value `sender` holds with `value` when they differ (waking its receivers).
fn announce<T: PartialEq>(sender: &watch::Sender<Arc<T>>, value: T) {
    sender.send_if_modified(|current| {
        if **current == value {
            return false;
        }
        *current = Arc::new(value);
        true
    });
}

/// The statuses of the configuration in force, with the NACKs clients sent for it, written to
/// a file (when one was given) whenever they change.
#[derive(Debug)]
pub struct StatusBoard {
    reports: Mutex<Reports>,
    file: Option<PathBuf>,
    changes: watch::Sender<Arc<Reports>>,
}

impl Default for StatusBoard {
    fn default() -> Self {
        Self::new(None)
    }
}

impl StatusBoard {
    /// A board that writes to `file` (JSON) when given.
    pub fn new(file: Option<PathBuf>) -> Self {
        StatusBoard {
            reports: Mutex::new(Reports::default()),
            file,
            changes: watch::channel(Arc::new(Reports::default())).0,
        }
    }

    /// The statuses, newest first, waking on every change (where statuses are written back
    /// to Kubernetes follows this).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Reports>> {
        self.changes.subscribe()
    }

    /// The current statuses.
    pub fn reports(&self) -> Reports {
        match self.reports.lock() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn update(&self, change: impl FnOnce(&mut Reports)) {
        let mut reports = match self.reports.lock() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        };
        change(&mut reports);
        self.changes.send_replace(Arc::new(reports.clone()));
        if let Some(path) = &self.file {
            // Write beside, then rename: readers never see a half-written file.
            let tmp = path.with_extension("tmp");
            let written = serde_json::to_vec_pretty(&*reports)
                .map_err(std::io::Error::other)
                .and_then(|json| std::fs::write(&tmp, json))
                .and_then(|()| std::fs::rename(&tmp, path));
            if let Err(err) = written {
                eprintln!("cannot write status file {}: {err}", path.display());
            }
        }
    }

    /// Records a client's NACK on the proxy its role names.
    pub fn record_nack(&self, nack: &gloo_xds::Nack) {
        let proxy = nack
            .role
            .split_once('~')
            .map(|(_, name)| name)
            .unwrap_or(&nack.role)
            .to_string();
        self.update(|reports| {
            reports
                .proxies
                .entry(proxy)
                .or_default()
                .record_rejection(ClientRejection {
                    node: nack.node_id.clone(),
                    type_url: nack.type_url.clone(),
                    error: nack.error.clone(),
                });
        });
    }
}

/// Translates `snapshot` and replaces every role's resources in `cache`; prints what is not
/// Accepted and records the statuses on `board`; announces what the rate limit and ext auth
/// services must load on `feeds` (when it changed). Returns the roles now served.
pub fn publish(
    translator: &mut Translator,
    snapshot: &SourceSnapshot,
    cache: &SnapshotCache,
    previous_roles: &[String],
    board: &StatusBoard,
    feeds: &ServiceFeeds,
) -> Vec<String> {
    let mut translation = translator.translate(snapshot);
    board.update(|reports| *reports = translation.reports.clone());
    announce(
        &feeds.rate_limits,
        RateLimitConfigs {
            configs: std::mem::take(&mut translation.rate_limit_server_configs),
            server_named: names_rate_limit_server(snapshot),
        },
    );
    announce(
        &feeds.ext_auth,
        std::mem::take(&mut translation.ext_auth_server),
    );
    for error in &translation.reports.load_errors {
        eprintln!("config error: {error} (everything else keeps serving; a file, KV key or resource that does not load keeps its last good version)");
    }
    for (key, status) in &translation.reports.resources {
        if status.state == State::Accepted {
            continue;
        }
        for e in &status.errors {
            eprintln!("{key}: {} : {e}", status.state);
        }
        for w in &status.warnings {
            eprintln!("{key}: {} : {w}", status.state);
        }
    }
    let roles = publish_proxies(&translation.proxies, cache);
    // A proxy no Gateway serves any more gets nothing.
    for role in previous_roles {
        if !roles.contains(role) {
            cache.set(role, Snapshot::new());
        }
    }
    eprintln!(
        "config generation {} served to {} proxies",
        snapshot.generation,
        roles.len()
    );
    roles
}

/// Whether a Settings names a rate limit server (`ratelimitServer.ratelimitServerRef`).
fn names_rate_limit_server(snapshot: &SourceSnapshot) -> bool {
    snapshot.resources.iter().any(|r| match &r.resource {
        gloo_core::model::Resource::Settings(s) => s
            .spec
            .ratelimit_server
            .as_ref()
            .is_some_and(|r| r.ratelimit_server_ref.is_some()),
        _ => false,
    })
}

/// A running control plane: the watched config directory translated into the snapshot
/// cache, with the statuses of what is in force and what the rate limit and ext auth services
/// must load.
#[derive(Debug)]
pub struct ControlPlane {
    cache: Arc<SnapshotCache>,
    board: Arc<StatusBoard>,
    rate_limits: watch::Receiver<Arc<RateLimitConfigs>>,
    ext_auth: watch::Receiver<Arc<ExtAuthServerConfig>>,
    publisher: tokio::task::JoinHandle<()>,
    status_writer: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.publisher.abort();
        if let Some(writer) = &self.status_writer {
            writer.abort();
        }
    }
}

/// The translator of the `gloo` binary: `aws` upstreams' clusters go to the Lambda endpoint
/// `AWS_ENDPOINT_URL_LAMBDA` (else `AWS_ENDPOINT_URL`) names, as the AWS SDKs read them (a VPC
/// endpoint, a local mock); to AWS without either. A value that is not an `http(s)://` URL is
/// logged and ignored.
pub fn translator_from_env() -> Translator {
    let url = ["AWS_ENDPOINT_URL_LAMBDA", "AWS_ENDPOINT_URL"]
        .into_iter()
        .find_map(|name| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .map(|v| (name, v))
        });
    let endpoint =
        url.and_then(
            |(name, url)| match gloo_core::translate::LambdaEndpoint::parse(&url) {
                Ok(endpoint) => Some(endpoint),
                Err(err) => {
                    tracing::warn!(variable = name, error = %err, "ignored");
                    None
                }
            },
        );
    Translator::new().lambda_endpoint(endpoint)
}

impl ControlPlane {
    /// Loads and watches `dir`, publishes its translation into a fresh snapshot cache, and
    /// keeps publishing on every change (on the current tokio runtime). With `status_file`,
    /// the statuses are also kept there as JSON. No Settings are read and no discovery runs:
    /// see [`start_with`](Self::start_with) for that.
    pub fn start(dir: &Path, status_file: Option<PathBuf>) -> Result<Self, ControlPlaneError> {
        Ok(Self::serve(
            Sources::directory(dir, Vec::new())?,
            status_file,
        ))
    }

    /// Like [`start`](Self::start), with the config sources and discovery plugins the
    /// Settings in `dir` and `options` ask for ([`crate::sources`]); statuses of resources read
    /// from Kubernetes are written back to them.
    pub async fn start_with(
        dir: &Path,
        status_file: Option<PathBuf>,
        options: SourceOptions,
    ) -> Result<Self, ControlPlaneError> {
        let sources = Sources::start(dir, options).await?;
        if !sources.plugins().is_empty() {
            eprintln!("discovery: {}", sources.plugins().join(", "));
        }
        Ok(Self::serve(sources, status_file))
    }

    /// Serves `sources`: translates what is in force into a fresh snapshot cache on every
    /// change, and feeds discovered endpoint changes through the endpoint fast path.
    pub fn serve(sources: Sources, status_file: Option<PathBuf>) -> Self {
        let cache = Arc::new(SnapshotCache::new());
        let board = Arc::new(StatusBoard::new(status_file));
        let mut updates = sources.subscribe();
        let mut endpoints = sources.endpoint_updates();
        let mut translator = translator_from_env();
        translator.apply_endpoint_changes(&endpoints.take());
        let initial = updates.borrow_and_update().clone();
        let feeds = ServiceFeeds::default();
        let rate_limits = feeds.rate_limits.subscribe();
        let ext_auth = feeds.ext_auth.subscribe();
        let mut roles = publish(&mut translator, &initial, &cache, &[], &board, &feeds);
        let status_writer = sources.write_statuses(board.subscribe());
        let publisher_cache = cache.clone();
        let publisher_board = board.clone();
        let publisher = tokio::spawn(async move {
            // Keep the sources (their watches and plugins) alive as long as the publisher runs.
            let _sources = sources;
            loop {
                tokio::select! {
                    changed = updates.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        let snapshot = updates.borrow_and_update().clone();
                        roles = publish(
                            &mut translator,
                            &snapshot,
                            &publisher_cache,
                            &roles,
                            &publisher_board,
                            &feeds,
                        );
                    }
                    changes = endpoints.changed() => {
                        let Some(changes) = changes else {
                            return;
                        };
                        let changed = translator.apply_endpoint_changes(&changes);
                        publish_assignments(&changed, &publisher_cache);
                        tracing::info!(
                            upstreams = changes.len(),
                            assignments = changed.values().map(|a| a.len()).sum::<usize>(),
                            "discovered endpoints served (endpoints only: no route translated)"
                        );
                    }
                }
            }
        });
        ControlPlane {
            cache,
            board,
            rate_limits,
            ext_auth,
            publisher,
            status_writer,
        }
    }

    /// What the rate limit service must load for the configuration in force, announced on
    /// every change.
    pub fn rate_limits(&self) -> watch::Receiver<Arc<RateLimitConfigs>> {
        self.rate_limits.clone()
    }

    /// Hosts the rate limit service as `options` say, fed from this control plane (see
    /// [`crate::rate_limit_server`]): listens on its address when one is given (retrying every
    /// second while it cannot bind), then follows every configuration change. Dropping the returned guard stops it. `None` when
    /// `options` ask for no service (or, without the `ratelimit` feature, for `auto`).
    pub fn host_rate_limit_service(
        &self,
        options: &RateLimitServerOptions,
    ) -> Result<Option<RateLimitHost>, ControlPlaneError> {
        use crate::rate_limit_server::RateLimitListen;
        if options.listen == RateLimitListen::Off {
            return Ok(None);
        }
        #[cfg(feature = "ratelimit")]
        {
            let server = Arc::new(crate::rate_limit_server::RateLimitServer::new(options)?);
            server.listen();
            let follower = server.clone().follow(self.rate_limits());
            Ok(Some(RateLimitHost { server, follower }))
        }
        #[cfg(not(feature = "ratelimit"))]
        {
            // Without rate limiting, only an explicit address is an error (`auto` hosts
            // nothing: such a build refuses the rate limit filter anyway).
            match options.listen {
                RateLimitListen::At(_) => Err(RateLimitServerError::Unsupported.into()),
                _ => Ok(None),
            }
        }
    }

    /// What the ext auth service must load for the configuration in force, announced on
    /// every change.
    pub fn ext_auth(&self) -> watch::Receiver<Arc<ExtAuthServerConfig>> {
        self.ext_auth.clone()
    }

    /// Hosts the ext auth service as `options` say, fed from this control plane (see
    /// [`crate::ext_auth_server`]): listens on its address when one is given (retrying every
    /// second while it cannot bind), then follows every configuration change (with `auto`,
    /// listening where the Settings point). Dropping the returned guard stops it. `None` when
    /// `options` ask for no service (or, without the `extauth-server` feature, for `auto`).
    pub fn host_ext_auth_service(
        &self,
        options: &ExtAuthServerOptions,
    ) -> Result<Option<ExtAuthHost>, ControlPlaneError> {
        use crate::ext_auth_server::ExtAuthListen;
        if options.listen == ExtAuthListen::Off {
            return Ok(None);
        }
        #[cfg(feature = "extauth-server")]
        {
            let server = Arc::new(crate::ext_auth_server::ExtAuthServer::new(options));
            server.listen();
            let follower = server.clone().follow(self.ext_auth());
            Ok(Some(ExtAuthHost { server, follower }))
        }
        #[cfg(not(feature = "extauth-server"))]
        {
            // Without the service, only an explicit address is an error (`auto` hosts
            // nothing: the proxies' ext_authz filter then fails as its settings say).
            match options.listen {
                ExtAuthListen::At(_) => Err(ExtAuthServerError::Unsupported.into()),
                _ => Ok(None),
            }
        }
    }

    /// The snapshot cache it publishes into.
    pub fn cache(&self) -> &Arc<SnapshotCache> {
        &self.cache
    }

    /// The statuses of the configuration in force.
    pub fn board(&self) -> &Arc<StatusBoard> {
        &self.board
    }

    /// Serves the cache over xDS (ADS state-of-the-world and delta, and the per-type
    /// services) on a bound listener until `shutdown` completes. Clients' NACKs are recorded
    /// on the status board.
    pub async fn serve_xds(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), ControlPlaneError> {
        let server = XdsServer::new(self.cache.clone(), ServerOptions::default());
        let mut nacks = server.subscribe_nacks();
        let board = self.board.clone();
        let recorder = tokio::spawn(async move {
            while let Ok(nack) = nacks.recv().await {
                board.record_nack(&nack);
            }
        });
        let per_type = server.per_type_services();
        let served = tonic::transport::Server::builder()
            .add_service(per_type.listeners)
            .add_service(per_type.routes)
            .add_service(per_type.clusters)
            .add_service(per_type.endpoints)
            .add_service(server.into_service())
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
            .await;
        recorder.abort();
        served?;
        Ok(())
    }
}

/// The rate limit service a control plane hosts; stopped when dropped.
#[derive(Debug)]
pub struct RateLimitHost {
    #[cfg(feature = "ratelimit")]
    server: Arc<crate::rate_limit_server::RateLimitServer>,
    #[cfg(feature = "ratelimit")]
    follower: tokio::task::JoinHandle<()>,
}

impl RateLimitHost {
    /// Where it listens, once it does.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        #[cfg(feature = "ratelimit")]
        {
            self.server.local_addr()
        }
        #[cfg(not(feature = "ratelimit"))]
        {
            None
        }
    }
}

impl Drop for RateLimitHost {
    fn drop(&mut self) {
        #[cfg(feature = "ratelimit")]
        self.follower.abort();
    }
}

/// The ext auth service a control plane hosts; stopped when dropped.
#[derive(Debug)]
pub struct ExtAuthHost {
    #[cfg(feature = "extauth-server")]
    server: Arc<crate::ext_auth_server::ExtAuthServer>,
    #[cfg(feature = "extauth-server")]
    follower: tokio::task::JoinHandle<()>,
}

impl ExtAuthHost {
    /// Where it listens, once it does.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        #[cfg(feature = "extauth-server")]
        {
            self.server.local_addr()
        }
        #[cfg(not(feature = "extauth-server"))]
        {
            None
        }
    }
}

impl Drop for ExtAuthHost {
    fn drop(&mut self) {
        #[cfg(feature = "extauth-server")]
        self.follower.abort();
    }
}

/// Binds the xDS address.
pub async fn bind_xds(addr: SocketAddr) -> Result<tokio::net::TcpListener, ControlPlaneError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ControlPlaneError::Bind { addr, source })
}

/// Puts each proxy's resources in the cache (role `<namespace>~<proxy>`) and returns the roles.
/// A type whose resources did not change keeps the map in force, so an endpoint change
/// rebuilds only the endpoints (and copies no names or versions of the rest). API listeners
/// for proxyless gRPC clients are served only to clients that name them.
pub fn publish_proxies(
    proxies: &std::collections::BTreeMap<String, gloo_core::xds::ProxyResources>,
    cache: &SnapshotCache,
) -> Vec<String> {
    let mut roles = Vec::new();
    for (proxy, resources) in proxies {
        let role = format!("{WRITE_NAMESPACE}~{proxy}");
        let previous = cache.subscribe(&role).borrow().clone();
        let mut out = Snapshot::new();
        let listeners = resources
            .listeners
            .iter()
            .map(|(n, v)| (n, v, false))
            .chain(resources.api_listeners.iter().map(|(n, v)| (n, v, true)));
        out.set_type(
            LISTENER_TYPE,
            type_resources(&previous, LISTENER_TYPE, listeners),
        );
        out.set_type(
            ROUTE_TYPE,
            type_resources(
                &previous,
                ROUTE_TYPE,
                resources.routes.iter().map(|(n, v)| (n, v, false)),
            ),
        );
        out.set_type(
            CLUSTER_TYPE,
            type_resources(
                &previous,
                CLUSTER_TYPE,
                resources.clusters.iter().map(|(n, v)| (n, v, false)),
            ),
        );
        out.set_type(
            ENDPOINT_TYPE,
            type_resources(
                &previous,
                ENDPOINT_TYPE,
                resources.endpoints.iter().map(|(n, v)| (n, v, false)),
            ),
        );
        cache.set(&role, out);
        roles.push(role);
    }
    roles
}

/// Puts changed ClusterLoadAssignments (per proxy, as
/// [`Translator::apply_endpoint_changes`] returns them) into each proxy's snapshot in the
/// cache: listeners, routes and clusters stay the very maps in force, and every other
/// assignment keeps its version, so xDS clients are sent only the changed ones.
pub fn publish_assignments(
    changed: &std::collections::BTreeMap<
        String,
        gloo_core::xds::ResourceMap<
            envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment,
        >,
    >,
    cache: &SnapshotCache,
) {
    for (proxy, assignments) in changed {
        let role = format!("{WRITE_NAMESPACE}~{proxy}");
        let mut out = Snapshot::clone(&cache.subscribe(&role).borrow());
        let served =
            std::sync::Arc::make_mut(out.resources.entry(ENDPOINT_TYPE.to_string()).or_default());
        for (name, assignment) in assignments {
            served.insert(
                name.clone(),
                gloo_xds::cache::Resource {
                    version: assignment.version.clone(),
                    body: assignment.packed(),
                    only_by_name: false,
                },
            );
        }
        cache.set(&role, out);
    }
}

/// The resources of one type as served: the previous snapshot's map when every name, version
/// and visibility is the same (shared, nothing copied), else a new map.
fn type_resources<'a, T: gloo_core::xds::EnvoyMessage>(
    previous: &Snapshot,
    type_url: &str,
    fresh: impl Iterator<Item = (&'a String, &'a gloo_core::xds::Versioned<T>, bool)> + Clone,
) -> gloo_xds::cache::TypeResources {
    if let Some(map) = previous.resources.get(type_url) {
        let mut old = map.iter();
        let same = fresh.clone().all(|(name, v, only_by_name)| {
            old.next().is_some_and(|(n, r)| {
                n == name && r.version == v.version && r.only_by_name == only_by_name
            })
        }) && old.next().is_none();
        if same {
            return map.clone();
        }
    }
    let mut map = std::collections::BTreeMap::new();
    for (name, v, only_by_name) in fresh {
        map.insert(
            name.clone(),
            gloo_xds::cache::Resource {
                version: v.version.clone(),
                body: v.packed(),
                only_by_name,
            },
        );
    }
    std::sync::Arc::new(map)
}

/// Runs the control plane until the process is stopped. With `status_file`, the statuses of
/// the configuration in force (and clients' NACKs of it) are kept there as JSON. The rate
/// limit service is hosted as `rate_limit` says, the ext auth service as `ext_auth` says;
/// config sources and discovery run as the Settings and `sources` say.
pub async fn run(
    dir: &Path,
    xds_addr: SocketAddr,
    status_file: Option<PathBuf>,
    rate_limit: &RateLimitServerOptions,
    ext_auth: &ExtAuthServerOptions,
    sources: SourceOptions,
) -> Result<(), ControlPlaneError> {
    let control_plane = ControlPlane::start_with(dir, status_file, sources).await?;
    let _rate_limit = control_plane.host_rate_limit_service(rate_limit)?;
    let _ext_auth = control_plane.host_ext_auth_service(ext_auth)?;
    let listener = bind_xds(xds_addr).await?;
    let local = listener
        .local_addr()
        .map_err(|source| ControlPlaneError::Bind {
            addr: xds_addr,
            source,
        })?;
    eprintln!("xDS server listening on {local}");
    control_plane
        .serve_xds(listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use gloo_core::load::{parse_str, Format};
    use std::sync::Arc;

    fn source(port: u16) -> SourceSnapshot {
        let yaml = format!(
            "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: up, namespace: gloo-system}}\nspec: {{static: {{hosts: [{{addr: 127.0.0.1, port: {port}}}]}}}}\n---\napiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: vs, namespace: gloo-system}}\nspec:\n  virtualHost:\n    domains: ['*']\n    routes:\n    - routeAction: {{single: {{upstream: {{name: up}}}}}}\n"
        );
        let parsed = parse_str(&yaml, "test.yaml", Format::Yaml);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        SourceSnapshot {
            resources: parsed.resources,
            errors: Vec::new(),
            generation: 1,
        }
    }

    #[test]
    fn an_endpoint_change_rebuilds_only_the_endpoints_of_the_snapshot() {
        let cache = SnapshotCache::new();
        let board = StatusBoard::new(None);
        let mut translator = Translator::new();
        let feeds = ServiceFeeds::default();
        let roles = publish(&mut translator, &source(9001), &cache, &[], &board, &feeds);
        let role = "gloo-system~gateway-proxy";
        assert_eq!(roles, [role]);
        let first = cache.subscribe(role).borrow().clone();
        publish(
            &mut translator,
            &source(9002),
            &cache,
            &roles,
            &board,
            &feeds,
        );
        let second = cache.subscribe(role).borrow().clone();
        for unchanged in [LISTENER_TYPE, ROUTE_TYPE, CLUSTER_TYPE] {
            assert!(
                Arc::ptr_eq(&first.resources[unchanged], &second.resources[unchanged]),
                "{unchanged} should be shared"
            );
        }
        assert!(!Arc::ptr_eq(
            &first.resources[ENDPOINT_TYPE],
            &second.resources[ENDPOINT_TYPE]
        ));
        assert_ne!(
            first.resources[ENDPOINT_TYPE]["up_gloo-system"].version,
            second.resources[ENDPOINT_TYPE]["up_gloo-system"].version
        );
    }
}
