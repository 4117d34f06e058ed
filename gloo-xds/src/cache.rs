//! The snapshot cache: what each proxy role is served, and a way to wait for changes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use envoy_types::pb::google::protobuf::Any;
use tokio::sync::watch;

/// Type URL of `envoy.config.listener.v3.Listener` (LDS).
pub const LISTENER_TYPE: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
/// Type URL of `envoy.config.route.v3.RouteConfiguration` (RDS).
pub const ROUTE_TYPE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
/// Type URL of `envoy.config.cluster.v3.Cluster` (CDS).
pub const CLUSTER_TYPE: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
/// Type URL of `envoy.config.endpoint.v3.ClusterLoadAssignment` (EDS).
pub const ENDPOINT_TYPE: &str =
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";

/// The order updates are pushed in, so a proxy never sees a reference to something it has not
/// received: clusters before their endpoints, listeners before their routes.
pub const PUSH_ORDER: [&str; 4] = [CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE];

/// Types whose resources are referenced by the route types ([`LISTENER_TYPE`],
/// [`ROUTE_TYPE`]): removing one of them is held back until the client has accepted routes
/// that no longer use it (make-before-break), so a rejected route update never leaves the
/// routes in force pointing at a removed cluster.
pub fn is_referenced_type(type_url: &str) -> bool {
    type_url == CLUSTER_TYPE || type_url == ENDPOINT_TYPE
}

/// Types that reference [`is_referenced_type`] ones.
pub fn is_referencing_type(type_url: &str) -> bool {
    type_url == LISTENER_TYPE || type_url == ROUTE_TYPE
}

/// Whether a type is requested as a wildcard (all resources) when the request names none.
pub fn is_wildcard_type(type_url: &str) -> bool {
    type_url == LISTENER_TYPE || type_url == CLUSTER_TYPE
}

/// One resource as served: its version (a content hash) and its encoded body.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// Content version; equal content has an equal version.
    pub version: String,
    /// The resource, packed (shared: a snapshot holding an unchanged resource copies nothing).
    pub body: Arc<Any>,
    /// Served only to clients that ask for it by name, never to wildcard subscriptions (API
    /// listeners for proxyless gRPC clients must not reach Envoy's wildcard LDS).
    pub only_by_name: bool,
}

/// The resources of one type, by name; shared between snapshots that serve the same ones.
pub type TypeResources = Arc<BTreeMap<String, Resource>>;

/// Everything one role is served, by type URL and name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Resources by type URL, then by name. Each type's map is shared (`Arc`): a new snapshot
    /// that changes only endpoints shares its listeners, routes and clusters with the last.
    pub resources: HashMap<String, TypeResources>,
}

impl Snapshot {
    /// An empty snapshot.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a resource.
    pub fn insert(
        &mut self,
        type_url: &str,
        name: impl Into<String>,
        version: impl Into<String>,
        body: impl Into<Arc<Any>>,
    ) {
        self.insert_resource(type_url, name.into(), version.into(), body.into(), false);
    }

    /// Adds a resource served only to clients that name it (see [`Resource::only_by_name`]).
    pub fn insert_named_only(
        &mut self,
        type_url: &str,
        name: impl Into<String>,
        version: impl Into<String>,
        body: impl Into<Arc<Any>>,
    ) {
        self.insert_resource(type_url, name.into(), version.into(), body.into(), true);
    }

    fn insert_resource(
        &mut self,
        type_url: &str,
        name: String,
        version: String,
        body: Arc<Any>,
        only_by_name: bool,
    ) {
        let resource = Resource {
            version,
            body,
            only_by_name,
        };
        match self.resources.get_mut(type_url) {
            Some(map) => {
                Arc::make_mut(map).insert(name, resource);
            }
            None => {
                self.resources.insert(
                    type_url.to_string(),
                    Arc::new(BTreeMap::from([(name, resource)])),
                );
            }
        }
    }

    /// Sets all resources of one type at once (a map an earlier snapshot may share).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use gloo_xds::cache::Snapshot;
    /// let mut first = Snapshot::new();
    /// first.insert("t", "a", "v1", envoy_types::pb::google::protobuf::Any::default());
    /// let mut second = Snapshot::new();
    /// second.set_type("t", first.resources["t"].clone());
    /// assert!(Arc::ptr_eq(&first.resources["t"], &second.resources["t"]));
    /// ```
    pub fn set_type(&mut self, type_url: &str, resources: TypeResources) {
        self.resources.insert(type_url.to_string(), resources);
    }

    /// The resources of one type (empty when there are none).
    pub fn of_type(&self, type_url: &str) -> Option<&BTreeMap<String, Resource>> {
        self.resources.get(type_url).map(|m| m.as_ref())
    }
}

/// Snapshots by role (`<namespace>~<proxyName>`, Gloo's `node.metadata.role`), with change
/// notification. Cheap to share: clone the `Arc`.
///
/// ```
/// use gloo_xds::cache::{Snapshot, SnapshotCache};
/// let cache = SnapshotCache::new();
/// let updates = cache.subscribe("gloo-system~gateway-proxy");
/// cache.set("gloo-system~gateway-proxy", Snapshot::new());
/// assert!(updates.has_changed().unwrap());
/// ```
#[derive(Debug, Default)]
pub struct SnapshotCache {
    roles: RwLock<HashMap<String, watch::Sender<Arc<Snapshot>>>>,
}

impl SnapshotCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    fn sender(&self, role: &str) -> watch::Sender<Arc<Snapshot>> {
        if let Ok(roles) = self.roles.read() {
            if let Some(sender) = roles.get(role) {
                return sender.clone();
            }
        }
        let mut roles = match self.roles.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        roles
            .entry(role.to_string())
            .or_insert_with(|| watch::channel(Arc::new(Snapshot::new())).0)
            .clone()
    }

    /// Replaces what `role` is served; every stream of that role is woken.
    pub fn set(&self, role: &str, snapshot: Snapshot) {
        let sender = self.sender(role);
        sender.send_replace(Arc::new(snapshot));
    }

    /// The current snapshot of `role` and a receiver that wakes on every change.
    pub fn subscribe(&self, role: &str) -> watch::Receiver<Arc<Snapshot>> {
        self.sender(role).subscribe()
    }

    /// The roles that have been set or subscribed to.
    pub fn roles(&self) -> Vec<String> {
        match self.roles.read() {
            Ok(roles) => roles.keys().cloned().collect(),
            Err(poisoned) => poisoned.into_inner().keys().cloned().collect(),
        }
    }
}
