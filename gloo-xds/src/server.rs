//! The Aggregated Discovery Service: state-of-the-world and delta (incremental) streams.
//!
//! Each stream serves one node, identified by its role (`node.metadata.role`,
//! `<namespace>~<proxyName>` in Gloo's convention). Per resource type a stream tracks what the
//! client subscribed to, the nonce of the last response and, for delta, the version of every
//! resource the client holds, so an update sends exactly what changed. Responses go out in
//! [`PUSH_ORDER`] (clusters, endpoints, listeners, routes) so nothing arrives before what it
//! references. A client that stops reading blocks only its own stream: responses are not
//! queued without bound.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::cluster::v3::cluster_discovery_service_server::{
    ClusterDiscoveryService, ClusterDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::discovery::v3::{
    aggregated_discovery_service_server::{
        AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
    },
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
    Resource as DeltaResource,
};
use envoy_types::pb::envoy::service::endpoint::v3::endpoint_discovery_service_server::{
    EndpointDiscoveryService, EndpointDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::listener::v3::listener_discovery_service_server::{
    ListenerDiscoveryService, ListenerDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::route::v3::route_discovery_service_server::{
    RouteDiscoveryService, RouteDiscoveryServiceServer,
};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use xxhash_rust::xxh3::Xxh3;

use crate::cache::{
    is_referenced_type, is_referencing_type, is_wildcard_type, Resource, Snapshot, SnapshotCache,
    PUSH_ORDER,
};

/// How many responses may wait for a slow client before its stream stops producing more.
const STREAM_BUFFER: usize = 8;
/// How many NACKs are kept for inspection.
const NACK_HISTORY: usize = 256;

/// A client refused a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nack {
    /// The node's id.
    pub node_id: String,
    /// The role it was served as.
    pub role: String,
    /// The resource type it refused.
    pub type_url: String,
    /// The version it refused (state of the world), or the nonce of the refused response
    /// (delta).
    pub version: String,
    /// The client's error message.
    pub error: String,
}

/// Server options.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The role of nodes that send no `metadata.role`.
    pub default_role: String,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            default_role: "gloo-system~gateway-proxy".to_string(),
        }
    }
}

/// The ADS server. Clone it freely; clones share the cache and the NACK history.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use gloo_xds::{cache::SnapshotCache, server::{ServerOptions, XdsServer}};
/// let cache = Arc::new(SnapshotCache::new());
/// let server = XdsServer::new(cache.clone(), ServerOptions::default());
/// tonic::transport::Server::builder()
///     .add_service(server.into_service())
///     .serve("127.0.0.1:9977".parse()?)
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct XdsServer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    cache: Arc<SnapshotCache>,
    options: ServerOptions,
    nonce: AtomicU64,
    nacks: Mutex<VecDeque<Nack>>,
    nack_events: broadcast::Sender<Nack>,
}

impl XdsServer {
    /// A server answering from `cache`.
    pub fn new(cache: Arc<SnapshotCache>, options: ServerOptions) -> Self {
        XdsServer {
            inner: Arc::new(Inner {
                cache,
                options,
                nonce: AtomicU64::new(0),
                nacks: Mutex::new(VecDeque::new()),
                nack_events: broadcast::channel(64).0,
            }),
        }
    }

    /// The tonic service to add to a `tonic::transport::Server`.
    pub fn into_service(self) -> AggregatedDiscoveryServiceServer<XdsServer> {
        AggregatedDiscoveryServiceServer::new(self)
            .max_decoding_message_size(64 * 1024 * 1024)
            .max_encoding_message_size(256 * 1024 * 1024)
    }

    /// The most recent NACKs, oldest first.
    pub fn nacks(&self) -> Vec<Nack> {
        match self.inner.nacks.lock() {
            Ok(nacks) => nacks.iter().cloned().collect(),
            Err(poisoned) => poisoned.into_inner().iter().cloned().collect(),
        }
    }

    /// A receiver of NACKs as they happen.
    pub fn subscribe_nacks(&self) -> broadcast::Receiver<Nack> {
        self.inner.nack_events.subscribe()
    }
}

impl XdsServer {
    /// Serves a state-of-the-world stream (ADS when `default_type` is `None`).
    fn sotw(
        &self,
        requests: Streaming<DiscoveryRequest>,
        default_type: Option<&'static str>,
    ) -> ResponseStream<DiscoveryResponse> {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let inner = self.inner.clone();
        tokio::spawn(async move {
            drive(&mut SotwStream::new(inner, tx), requests, default_type).await;
        });
        Box::pin(ReceiverStream::new(rx))
    }

    /// Serves a delta stream (ADS when `default_type` is `None`).
    fn delta(
        &self,
        requests: Streaming<DeltaDiscoveryRequest>,
        default_type: Option<&'static str>,
    ) -> ResponseStream<DeltaDiscoveryResponse> {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let inner = self.inner.clone();
        tokio::spawn(async move {
            drive(&mut DeltaStream::new(inner, tx), requests, default_type).await;
        });
        Box::pin(ReceiverStream::new(rx))
    }

    /// Answers a one-shot fetch (the REST-style `Fetch*` methods) from the current snapshot.
    fn fetch(&self, request: DiscoveryRequest, type_url: &'static str) -> DiscoveryResponse {
        let node = request.node.clone().unwrap_or_default();
        let role = self.inner.role_of(&node);
        let snapshot = self.inner.cache.subscribe(&role).borrow().clone();
        let names: BTreeSet<String> = request.resource_names.iter().cloned().collect();
        let wildcard = names.is_empty() || names.contains("*");
        let mut selected = std::collections::BTreeMap::new();
        if let Some(all) = snapshot.of_type(type_url) {
            for (name, resource) in all {
                if wanted(&names, wildcard, name, resource) {
                    selected.insert(name.clone(), resource.clone());
                }
            }
        }
        DiscoveryResponse {
            version_info: version_of(&selected),
            resources: selected.values().map(|r| (*r.body).clone()).collect(),
            type_url: type_url.to_string(),
            nonce: self.inner.next_nonce(),
            ..Default::default()
        }
    }

    /// The per-type discovery services (LDS, RDS, CDS, EDS) for clients that do not use ADS,
    /// all served from the same cache.
    pub fn per_type_services(&self) -> PerTypeServices {
        PerTypeServices {
            listeners: ListenerDiscoveryServiceServer::new(self.clone()),
            routes: RouteDiscoveryServiceServer::new(self.clone()),
            clusters: ClusterDiscoveryServiceServer::new(self.clone()),
            endpoints: EndpointDiscoveryServiceServer::new(self.clone()),
        }
    }
}

/// LDS, RDS, CDS and EDS as separate gRPC services.
#[derive(Debug)]
pub struct PerTypeServices {
    /// LDS.
    pub listeners: ListenerDiscoveryServiceServer<XdsServer>,
    /// RDS.
    pub routes: RouteDiscoveryServiceServer<XdsServer>,
    /// CDS.
    pub clusters: ClusterDiscoveryServiceServer<XdsServer>,
    /// EDS.
    pub endpoints: EndpointDiscoveryServiceServer<XdsServer>,
}

macro_rules! per_type_service {
    ($trait_:path, $type_url:expr, $stream:ident, $stream_fn:ident, $delta:ident, $delta_fn:ident, $fetch_fn:ident) => {
        #[tonic::async_trait]
        impl $trait_ for XdsServer {
            type $stream = ResponseStream<DiscoveryResponse>;
            type $delta = ResponseStream<DeltaDiscoveryResponse>;

            async fn $stream_fn(
                &self,
                request: Request<Streaming<DiscoveryRequest>>,
            ) -> Result<Response<Self::$stream>, Status> {
                Ok(Response::new(
                    self.sotw(request.into_inner(), Some($type_url)),
                ))
            }

            async fn $delta_fn(
                &self,
                request: Request<Streaming<DeltaDiscoveryRequest>>,
            ) -> Result<Response<Self::$delta>, Status> {
                Ok(Response::new(
                    self.delta(request.into_inner(), Some($type_url)),
                ))
            }

            async fn $fetch_fn(
                &self,
                request: Request<DiscoveryRequest>,
            ) -> Result<Response<DiscoveryResponse>, Status> {
                Ok(Response::new(self.fetch(request.into_inner(), $type_url)))
            }
        }
    };
}

per_type_service!(
    ListenerDiscoveryService,
    crate::cache::LISTENER_TYPE,
    StreamListenersStream,
    stream_listeners,
    DeltaListenersStream,
    delta_listeners,
    fetch_listeners
);
per_type_service!(
    RouteDiscoveryService,
    crate::cache::ROUTE_TYPE,
    StreamRoutesStream,
    stream_routes,
    DeltaRoutesStream,
    delta_routes,
    fetch_routes
);
per_type_service!(
    ClusterDiscoveryService,
    crate::cache::CLUSTER_TYPE,
    StreamClustersStream,
    stream_clusters,
    DeltaClustersStream,
    delta_clusters,
    fetch_clusters
);
per_type_service!(
    EndpointDiscoveryService,
    crate::cache::ENDPOINT_TYPE,
    StreamEndpointsStream,
    stream_endpoints,
    DeltaEndpointsStream,
    delta_endpoints,
    fetch_endpoints
);

impl Inner {
    fn next_nonce(&self) -> String {
        (self.nonce.fetch_add(1, Ordering::Relaxed) + 1).to_string()
    }

    fn role_of(&self, node: &Node) -> String {
        let role = node
            .metadata
            .as_ref()
            .and_then(|m| m.fields.get("role"))
            .and_then(|v| match &v.kind {
                Some(envoy_types::pb::google::protobuf::value::Kind::StringValue(s)) => {
                    Some(s.clone())
                }
                _ => None,
            });
        match role {
            Some(role) if !role.is_empty() => role,
            _ => {
                tracing::warn!(
                    node = %node.id,
                    role = %self.options.default_role,
                    "node has no metadata.role; serving it as the default role"
                );
                self.options.default_role.clone()
            }
        }
    }

    fn record_nack(&self, nack: Nack) {
        tracing::warn!(
            node = %nack.node_id,
            role = %nack.role,
            type_url = %nack.type_url,
            version = %nack.version,
            error = %nack.error,
            "NACK: the client rejected a configuration; it keeps the last version it accepted"
        );
        let mut nacks = match self.nacks.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if nacks.len() == NACK_HISTORY {
            nacks.pop_front();
        }
        nacks.push_back(nack.clone());
        let _ = self.nack_events.send(nack);
    }
}

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl AggregatedDiscoveryService for XdsServer {
    type StreamAggregatedResourcesStream = ResponseStream<DiscoveryResponse>;
    type DeltaAggregatedResourcesStream = ResponseStream<DeltaDiscoveryResponse>;

    async fn stream_aggregated_resources(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamAggregatedResourcesStream>, Status> {
        Ok(Response::new(self.sotw(request.into_inner(), None)))
    }

    async fn delta_aggregated_resources(
        &self,
        request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        Ok(Response::new(self.delta(request.into_inner(), None)))
    }
}

/// Whether a subscription (`names`, or all when `wildcard`) includes a resource: named
/// resources always, the rest only for wildcards and unless the resource is named-only.
fn wanted(names: &BTreeSet<String>, wildcard: bool, name: &str, resource: &Resource) -> bool {
    names.contains(name) || (wildcard && !resource.only_by_name)
}

/// Types in push order, then any others the client asked for.
fn ordered_types<'a>(types: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut rest: Vec<String> = types.cloned().collect();
    let mut ordered: Vec<String> = PUSH_ORDER
        .iter()
        .filter(|t| rest.iter().any(|r| r == *t))
        .map(|t| t.to_string())
        .collect();
    rest.retain(|t| !PUSH_ORDER.contains(&t.as_str()));
    rest.sort();
    ordered.extend(rest);
    ordered
}

// ----- what both stream forms share --------------------------------------------------------

/// One client's stream: who it is and the snapshots of its role.
struct Session {
    inner: Arc<Inner>,
    node: Option<Node>,
    role: String,
    snapshots: Option<watch::Receiver<Arc<Snapshot>>>,
}

impl Session {
    fn new(inner: Arc<Inner>) -> Self {
        Session {
            inner,
            node: None,
            role: String::new(),
            snapshots: None,
        }
    }

    /// Clients send the node on the first request of a stream only: that request decides the
    /// role, and so the snapshots, for the life of the stream.
    fn identify(&mut self, node: Option<&Node>) {
        if self.node.is_some() {
            return;
        }
        let node = node.cloned().unwrap_or_default();
        self.role = self.inner.role_of(&node);
        let mut rx = self.inner.cache.subscribe(&self.role);
        rx.borrow_and_update();
        self.snapshots = Some(rx);
        self.node = Some(node);
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        match &self.snapshots {
            Some(rx) => rx.borrow().clone(),
            None => Arc::new(Snapshot::new()),
        }
    }

    fn node_id(&self) -> String {
        self.node.as_ref().map(|n| n.id.clone()).unwrap_or_default()
    }

    fn nack(&self, type_url: &str, version: &str, error: &str) {
        self.inner.record_nack(Nack {
            node_id: self.node_id(),
            role: self.role.clone(),
            type_url: type_url.to_string(),
            version: version.to_string(),
            error: error.to_string(),
        });
    }
}

/// A request of either form, for the shared driver.
trait TypedRequest {
    fn type_url_mut(&mut self) -> &mut String;
}

impl TypedRequest for DiscoveryRequest {
    fn type_url_mut(&mut self) -> &mut String {
        &mut self.type_url
    }
}

impl TypedRequest for DeltaDiscoveryRequest {
    fn type_url_mut(&mut self) -> &mut String {
        &mut self.type_url
    }
}

/// What differs between state-of-the-world and delta streams; [`drive`] runs either.
trait StreamForm {
    type Request: TypedRequest + Send;
    fn session(&mut self) -> &mut Session;
    /// Handles one request; false when the stream should end.
    fn handle(&mut self, request: Self::Request) -> impl std::future::Future<Output = bool> + Send;
    /// Sends what a new snapshot changed; false when the client is gone.
    fn push_changes(&mut self) -> impl std::future::Future<Output = bool> + Send;
}

/// Runs a stream until the client leaves: requests and snapshot changes, one at a time.
/// `default_type` fills in requests without a type URL (the per-type services).
async fn drive<F: StreamForm>(
    form: &mut F,
    mut requests: impl Stream<Item = Result<F::Request, Status>> + Unpin,
    default_type: Option<&'static str>,
) {
    loop {
        let changed = async {
            match &mut form.session().snapshots {
                Some(rx) => rx.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            request = requests.next() => match request {
                Some(Ok(mut request)) => {
                    if let (true, Some(t)) = (request.type_url_mut().is_empty(), default_type) {
                        *request.type_url_mut() = t.to_string();
                    }
                    if !form.handle(request).await {
                        return;
                    }
                }
                None => return,
                Some(Err(status)) => {
                    tracing::debug!(%status, "xDS stream ended");
                    return;
                }
            },
            alive = changed => {
                if !alive || !form.push_changes().await {
                    return;
                }
            }
        }
    }
}

// ----- state of the world ------------------------------------------------------------------

#[derive(Debug, Default)]
struct SotwType {
    names: BTreeSet<String>,
    wildcard: bool,
    /// Version of the last response sent, `None` before the first.
    sent_version: Option<String>,
    nonce: String,
    /// Whether the client accepted the last response.
    acked: bool,
    /// What the last response held (for clusters and endpoints: what may still be in use).
    sent: std::collections::BTreeMap<String, Resource>,
    /// Whether the last response held resources the snapshot no longer has.
    retaining: bool,
}

struct SotwStream {
    session: Session,
    tx: mpsc::Sender<Result<DiscoveryResponse, Status>>,
    types: HashMap<String, SotwType>,
}

impl StreamForm for SotwStream {
    type Request = DiscoveryRequest;

    fn session(&mut self) -> &mut Session {
        &mut self.session
    }

    fn handle(
        &mut self,
        request: DiscoveryRequest,
    ) -> impl std::future::Future<Output = bool> + Send {
        self.on_request(request)
    }

    fn push_changes(&mut self) -> impl std::future::Future<Output = bool> + Send {
        self.on_snapshot()
    }
}

impl SotwStream {
    fn new(inner: Arc<Inner>, tx: mpsc::Sender<Result<DiscoveryResponse, Status>>) -> Self {
        SotwStream {
            session: Session::new(inner),
            tx,
            types: HashMap::new(),
        }
    }

    /// Handles one request; false when the stream should end.
    async fn on_request(&mut self, request: DiscoveryRequest) -> bool {
        self.session.identify(request.node.as_ref());
        let type_url = request.type_url.clone();
        if type_url.is_empty() {
            return true;
        }
        let state = self.types.entry(type_url.clone()).or_default();
        if !request.response_nonce.is_empty() && request.response_nonce != state.nonce {
            // A reply to a response that has since been superseded: ignore it.
            return true;
        }
        if let Some(error) = &request.error_detail {
            let version = state.sent_version.clone().unwrap_or_default();
            self.session.nack(&type_url, &version, &error.message);
            return true;
        }
        let is_ack = !request.response_nonce.is_empty() && request.response_nonce == state.nonce;
        if is_ack {
            state.acked = true;
        }
        let names: BTreeSet<String> = request.resource_names.iter().cloned().collect();
        let wildcard = names.contains("*") || (names.is_empty() && is_wildcard_type(&type_url));
        let first = state.sent_version.is_none();
        let subscription_changed = names != state.names || wildcard != state.wildcard;
        state.names = names;
        state.wildcard = wildcard;
        if first || subscription_changed {
            return self.send(&type_url, true).await;
        }
        // An ACK of new routes may release clusters kept for the old ones.
        if is_ack && is_referencing_type(&type_url) && self.types.values().any(|t| t.retaining) {
            return self.on_snapshot().await;
        }
        true
    }

    async fn on_snapshot(&mut self) -> bool {
        if let Some(rx) = &mut self.session.snapshots {
            rx.borrow_and_update();
        }
        for type_url in ordered_types(self.types.keys()) {
            if !self.send(&type_url, false).await {
                return false;
            }
        }
        true
    }

    /// The resources of `type_url` the client should hold now, and their version.
    fn select(
        &self,
        type_url: &str,
        snapshot: &Snapshot,
    ) -> (std::collections::BTreeMap<String, Resource>, bool) {
        let mut out = std::collections::BTreeMap::new();
        let Some(state) = self.types.get(type_url) else {
            return (out, false);
        };
        if let Some(all) = snapshot.of_type(type_url) {
            for (name, resource) in all {
                if wanted(&state.names, state.wildcard, name, resource) {
                    out.insert(name.clone(), resource.clone());
                }
            }
        }
        // Make-before-break: while the routes in force may still use a removed cluster, keep
        // serving it.
        let mut retaining = false;
        if is_referenced_type(type_url) && !self.routes_settled(snapshot) {
            for (name, resource) in &state.sent {
                if !out.contains_key(name) {
                    out.insert(name.clone(), resource.clone());
                    retaining = true;
                }
            }
        }
        (out, retaining)
    }

    /// Whether the client holds, and accepted, the current listeners and routes.
    fn routes_settled(&self, snapshot: &Snapshot) -> bool {
        self.types
            .iter()
            .filter(|(type_url, _)| is_referencing_type(type_url))
            .all(|(type_url, state)| {
                state.acked
                    && state.sent_version.as_deref()
                        == Some(self.plain_version(type_url, snapshot).as_str())
            })
    }

    /// The version the snapshot alone gives a type (no retention), without copying resources.
    fn plain_version(&self, type_url: &str, snapshot: &Snapshot) -> String {
        let mut hasher = Xxh3::new();
        if let (Some(state), Some(all)) = (self.types.get(type_url), snapshot.of_type(type_url)) {
            for (name, resource) in all {
                if wanted(&state.names, state.wildcard, name, resource) {
                    hash_entry(&mut hasher, name, resource);
                }
            }
        }
        format!("{:016x}", hasher.digest())
    }

    /// Sends the current resources of `type_url` if they differ from what was last sent (or
    /// always, when `force`). False when the client is gone.
    async fn send(&mut self, type_url: &str, force: bool) -> bool {
        let snapshot = self.session.snapshot();
        if !self.types.contains_key(type_url) {
            return true;
        }
        let (selected, retaining) = self.select(type_url, &snapshot);
        let version = version_of(&selected);
        let Some(state) = self.types.get_mut(type_url) else {
            return true;
        };
        if !force && state.sent_version.as_deref() == Some(version.as_str()) {
            return true;
        }
        let nonce = self.session.inner.next_nonce();
        state.sent_version = Some(version.clone());
        state.nonce = nonce.clone();
        state.acked = false;
        state.retaining = retaining;
        // Listeners and clusters are state of the world: every response holds them all. Route
        // configurations and endpoints are not: a response need only hold what changed (the
        // client keeps the others), which keeps an endpoint change at thousands of clusters
        // one small response.
        let partial = !force && !is_wildcard_type(type_url);
        let resources = selected
            .iter()
            .filter(|(name, r)| {
                !partial
                    || state
                        .sent
                        .get(*name)
                        .is_none_or(|old| old.version != r.version)
            })
            .map(|(_, r)| (*r.body).clone())
            .collect();
        state.sent = selected;
        let response = DiscoveryResponse {
            version_info: version,
            resources,
            type_url: type_url.to_string(),
            nonce,
            ..Default::default()
        };
        self.tx.send(Ok(response)).await.is_ok()
    }
}

/// The state-of-the-world version of a set of resources: a hash of names and versions.
fn version_of(resources: &std::collections::BTreeMap<String, Resource>) -> String {
    let mut hasher = Xxh3::new();
    for (name, resource) in resources {
        hash_entry(&mut hasher, name, resource);
    }
    format!("{:016x}", hasher.digest())
}

fn hash_entry(hasher: &mut Xxh3, name: &str, resource: &Resource) {
    hasher.update(name.as_bytes());
    hasher.update(b"\0");
    hasher.update(resource.version.as_bytes());
    hasher.update(b"\0");
}

// ----- delta -------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct DeltaType {
    subscribed: BTreeSet<String>,
    wildcard: bool,
    /// The version of every resource the client holds.
    known: HashMap<String, String>,
    nonce: String,
    responded: bool,
    /// Whether the client accepted the last response.
    acked: bool,
    /// Whether removals are held back until the routes settle (make-before-break).
    retaining: bool,
}

struct DeltaStream {
    session: Session,
    tx: mpsc::Sender<Result<DeltaDiscoveryResponse, Status>>,
    types: HashMap<String, DeltaType>,
}

impl StreamForm for DeltaStream {
    type Request = DeltaDiscoveryRequest;

    fn session(&mut self) -> &mut Session {
        &mut self.session
    }

    fn handle(
        &mut self,
        request: DeltaDiscoveryRequest,
    ) -> impl std::future::Future<Output = bool> + Send {
        self.on_request(request)
    }

    fn push_changes(&mut self) -> impl std::future::Future<Output = bool> + Send {
        self.on_snapshot()
    }
}

impl DeltaStream {
    fn new(inner: Arc<Inner>, tx: mpsc::Sender<Result<DeltaDiscoveryResponse, Status>>) -> Self {
        DeltaStream {
            session: Session::new(inner),
            tx,
            types: HashMap::new(),
        }
    }

    async fn on_request(&mut self, request: DeltaDiscoveryRequest) -> bool {
        self.session.identify(request.node.as_ref());
        let type_url = request.type_url.clone();
        if type_url.is_empty() {
            return true;
        }
        let first_request = !self.types.contains_key(&type_url);
        let state = self.types.entry(type_url.clone()).or_default();
        if first_request {
            // A reconnecting client says what it already holds; only differences are sent.
            state.known = request
                .initial_resource_versions
                .clone()
                .into_iter()
                .collect();
            if request.resource_names_subscribe.is_empty() && is_wildcard_type(&type_url) {
                state.wildcard = true;
            }
        }
        let is_reply = !request.response_nonce.is_empty();
        let mut is_ack = false;
        if is_reply && request.response_nonce == state.nonce {
            is_ack = request.error_detail.is_none();
            if is_ack {
                state.acked = true;
            }
            if let Some(error) = &request.error_detail {
                self.session
                    .nack(&type_url, &request.response_nonce, &error.message);
            }
        }
        let mut subscription_changed = false;
        for name in &request.resource_names_subscribe {
            subscription_changed = true;
            if name == "*" {
                state.wildcard = true;
            } else {
                state.subscribed.insert(name.clone());
            }
        }
        for name in &request.resource_names_unsubscribe {
            subscription_changed = true;
            if name == "*" {
                state.wildcard = false;
            } else {
                state.subscribed.remove(name);
                state.known.remove(name);
            }
        }
        if first_request || subscription_changed || !state.responded {
            return self.send(&type_url).await;
        }
        // An ACK of new routes may release removals held back for the old ones.
        if is_ack && is_referencing_type(&type_url) && self.types.values().any(|t| t.retaining) {
            return self.on_snapshot().await;
        }
        true
    }

    /// Whether the client holds, and accepted, the current listeners and routes.
    fn routes_settled(&self, snapshot: &Snapshot) -> bool {
        self.types
            .iter()
            .filter(|(type_url, _)| is_referencing_type(type_url))
            .all(|(type_url, state)| {
                if !state.acked {
                    return false;
                }
                let empty = std::collections::BTreeMap::new();
                let all = snapshot.of_type(type_url).unwrap_or(&empty);
                let current = all.iter().all(|(name, resource)| {
                    !wanted(&state.subscribed, state.wildcard, name, resource)
                        || state.known.get(name) == Some(&resource.version)
                });
                current && state.known.keys().all(|name| all.contains_key(name))
            })
    }

    async fn on_snapshot(&mut self) -> bool {
        if let Some(rx) = &mut self.session.snapshots {
            rx.borrow_and_update();
        }
        for type_url in ordered_types(self.types.keys()) {
            if !self.send(&type_url).await {
                return false;
            }
        }
        true
    }

    /// Sends what the client lacks or holds in an old version, and what it holds that is
    /// gone. Nothing is sent when nothing differs (except the first response of a type).
    async fn send(&mut self, type_url: &str) -> bool {
        let snapshot = self.session.snapshot();
        // Make-before-break: removals of clusters and endpoints wait for settled routes.
        let hold_removals = is_referenced_type(type_url) && !self.routes_settled(&snapshot);
        let Some(state) = self.types.get_mut(type_url) else {
            return true;
        };
        let empty = std::collections::BTreeMap::new();
        let all = snapshot.of_type(type_url).unwrap_or(&empty);
        let mut resources = Vec::new();
        let mut removed = Vec::new();
        state.retaining = false;
        for (name, resource) in all {
            if !wanted(&state.subscribed, state.wildcard, name, resource) {
                continue;
            }
            if state.known.get(name) != Some(&resource.version) {
                resources.push(DeltaResource {
                    name: name.clone(),
                    version: resource.version.clone(),
                    resource: Some((*resource.body).clone()),
                    ..Default::default()
                });
            }
        }
        for name in state.known.keys() {
            if !all.contains_key(name) {
                if hold_removals {
                    state.retaining = true;
                } else {
                    removed.push(name.clone());
                }
            }
        }
        // Explicitly subscribed names that do not exist are reported as removed once, so the
        // client stops waiting for them.
        for name in &state.subscribed {
            if !all.contains_key(name) && !state.known.contains_key(name) && !state.responded {
                removed.push(name.clone());
            }
        }
        removed.sort();
        removed.dedup();
        if resources.is_empty() && removed.is_empty() && state.responded {
            return true;
        }
        for r in &resources {
            state.known.insert(r.name.clone(), r.version.clone());
        }
        for name in &removed {
            state.known.remove(name);
        }
        let nonce = self.session.inner.next_nonce();
        state.nonce = nonce.clone();
        state.responded = true;
        state.acked = false;
        let response = DeltaDiscoveryResponse {
            system_version_info: String::new(),
            resources,
            type_url: type_url.to_string(),
            removed_resources: removed,
            nonce,
            ..Default::default()
        };
        self.tx.send(Ok(response)).await.is_ok()
    }
}
