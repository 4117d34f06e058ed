//! Translation to Envoy xDS v3: per proxy, Listeners, RouteConfigurations, Clusters and
//! ClusterLoadAssignments, each with a content-hash version.
//!
//! [`Translator`] keeps what it built last time and rebuilds only what changed: a virtual host
//! is re-translated only when its resolved routes changed, a cluster only when its Upstream
//! changed, and [`Translator::update_endpoints`] recomputes endpoints without looking at a
//! single route.
//!
//! ```
//! use gloo_core::source::MemorySource;
//! use gloo_core::source::ConfigSource;
//! use gloo_core::translate::Translator;
//!
//! let source = MemorySource::new("example");
//! source.set_yaml(r#"
//! apiVersion: gloo.solo.io/v1
//! kind: Upstream
//! metadata: {name: petstore, namespace: gloo-system}
//! spec:
//!   static:
//!     hosts: [{addr: 127.0.0.1, port: 8081}]
//! ---
//! apiVersion: gateway.solo.io/v1
//! kind: VirtualService
//! metadata: {name: default, namespace: gloo-system}
//! spec:
//!   virtualHost:
//!     domains: ["*"]
//!     routes:
//!     - matchers: [{prefix: /}]
//!       routeAction: {single: {upstream: {name: petstore, namespace: gloo-system}}}
//! "#);
//! let mut translator = Translator::new();
//! let out = translator.translate(&source.subscribe().borrow());
//! let proxy = &out.proxies["gateway-proxy"];
//! assert!(proxy.clusters.contains_key("petstore_gloo-system"));
//! assert!(!out.reports.has_rejections());
//! ```

pub(crate) mod access_log;
pub(crate) mod aws_lambda;
mod clusters;
pub(crate) mod dynamic_forward_proxy;
pub(crate) mod extauth;
mod extauth_config;
pub(crate) mod http_filters;
mod jwk;
pub(crate) mod jwt;
mod listeners;
mod local_ratelimit;
mod names;
pub(crate) mod ratelimit;
mod routes;
pub(crate) mod subsets;
pub(crate) mod tcp;
pub(crate) mod tracing;
pub(crate) mod transformation;
pub(crate) mod waf;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use xxhash_rust::xxh3::Xxh3;

pub use access_log::{FILE_ACCESS_LOG, HTTP_GRPC_ACCESS_LOG};
pub use aws_lambda::{LambdaEndpoint, AWS_LAMBDA_FILTER};
pub use clusters::{Endpoint, EndpointChanges, EndpointList, Endpoints};
pub use dynamic_forward_proxy::{
    APPLE_DNS_RESOLVER, CARES_DNS_RESOLVER, DFP_CLUSTER_PREFIX, DFP_CLUSTER_TYPE,
    DYNAMIC_FORWARD_PROXY_FILTER,
};
pub use extauth::{
    CONFIG_ID, DEFAULT_USER_ID_HEADER, EXT_AUTHZ_FILTER, SANITIZE_FILTER, SOURCE_NAME, SOURCE_TYPE,
};
pub use extauth_config::{ext_auth_configs, ExtAuthServerConfig};
pub use http_filters::{
    BUFFER_FILTER, COMPRESSOR_FILTER, GRPC_WEB_FILTER, GZIP_COMPRESSOR, HEALTH_CHECK_FILTER,
};
pub use jwt::{JWT_AFTER_EXT_AUTH_FILTER, JWT_FILTER};
pub use names::{cluster_name, kube_upstream_name, route_config_name};
pub use ratelimit::{
    server_configs as rate_limit_server_configs, CRD_DOMAIN, CUSTOM_DOMAIN, INGRESS_DOMAIN,
    RATELIMIT_FILTER, SET_DESCRIPTOR_VALUE,
};
pub use tracing::{DATADOG_TRACER, OPENTELEMETRY_TRACER, ZIPKIN_TRACER};
pub use transformation::TRANSFORMATION_FILTER;
pub use waf::{CRS_RULES_DIR, WAF_FILTER};

use crate::model::routing::{Destination, RouteDestination};
use crate::model::upstream::{UpstreamSpec, UpstreamTypeRef};
use crate::model::{Kind, Object, ResourceRef, DEFAULT_NAMESPACE};
use crate::resolve::{self, ProxyModel, RouteModelAction, VirtualHostModel};
use crate::snapshot::ConfigSnapshot;
use crate::source::SourceSnapshot;
use crate::status::{
    ListenerStatus, ProxyStatus, Reports, ResourceKey, RouteStatus, State, VirtualHostStatus,
};
use crate::xds::{encode_with_version, ProxyResources, Versioned};

/// What translation reads besides the resources themselves.
pub(crate) struct Context<'a> {
    pub(crate) snapshot: &'a ConfigSnapshot,
    /// Settings' transformation defaults.
    pub(crate) transformation: transformation::SettingsDefaults,
    /// Whether listeners that do not set `grpcWeb` get the gRPC-Web filter (Settings'
    /// `gloo.disableGrpcWeb` / `gloo.removeUnusedFilters`). Listeners are built anew on every
    /// translation, so a Settings change reaches them at once.
    pub(crate) grpc_web: bool,
    /// Where Lambda clusters send invocations, if not to AWS.
    pub(crate) lambda_endpoint: Option<&'a LambdaEndpoint>,
}

/// The result of one translation.
#[derive(Debug, Clone, Default)]
pub struct Translation {
    /// The xDS resources of each proxy, by proxy name.
    pub proxies: BTreeMap<String, ProxyResources>,
    /// Every status.
    pub reports: Reports,
    /// What the rate limit server must load for this configuration, per domain (see
    /// [`rate_limit_server_configs`]); a rejected Settings or RateLimitConfig contributes its
    /// last good version.
    pub rate_limit_server_configs: Vec<crate::model::ratelimit::ServerRateLimitConfig>,
    /// What the ext auth server must load for this configuration (see
    /// [`ExtAuthServerConfig`]); a rejected AuthConfig contributes its last good version.
    pub ext_auth_server: ExtAuthServerConfig,
}

/// The EDS clusters of one proxy: cluster name → the upstream it serves.
type EdsClusters = BTreeMap<String, (ResourceRef, Arc<Object<UpstreamSpec>>)>;

/// What a translated virtual host is cached under: its name, the listener's local rate limit
/// flags when the host carries local rate limit overrides (they are copied into them), so a
/// Gateway edit of the flags re-translates exactly those hosts, and whether the listener has
/// the ext_authz filter (with the source name prefix, for hosts whose own config names it).
///
/// The fourth part is whether the gateway's WAF is in force, for hosts that set WAF options
/// (their per-route WAF configs are emitted only where the WAF is in force); the fifth, the
/// generated cluster of the gateway's dynamic forward proxy, for hosts with routes that
/// forward dynamically (a Gateway edit of its `dynamicForwardProxy` renames the cluster).
type VirtualHostKey = (
    String,
    local_ratelimit::ListenerFlags,
    extauth::ListenerAuth,
    bool,
    Option<String>,
);

/// A virtual host as last translated: only its encoding is kept (a tenth of the typed
/// proto's size), and route configurations are assembled from these encodings.
struct CachedVirtualHost {
    model: Arc<VirtualHostModel>,
    version: String,
    encoded: Arc<[u8]>,
    /// The ConfigMaps its WAF rules were read from, as they were: a change to one of them
    /// (and to no other ConfigMap) translates it again.
    artifacts: waf::ArtifactsRead,
}

/// What an EDS cluster's assignment is built from: the upstream's endpoints and failover.
type AssignmentInputs = (Vec<Endpoint>, Option<crate::model::upstream::Failover>);

/// Translates config snapshots to xDS, incrementally. Keep one per control plane.
#[derive(Default)]
pub struct Translator {
    resolve_cache: resolve::ResolveCache,
    virtual_hosts: HashMap<VirtualHostKey, CachedVirtualHost>,
    /// Settings' transformation defaults the cached virtual hosts were translated with.
    transformation_settings: transformation::SettingsDefaults,
    /// Upstream groups the cached virtual hosts were translated with.
    upstream_groups:
        Option<crate::snapshot::Collection<crate::model::upstream_group::UpstreamGroupSpec>>,
    /// Per upstream: the spec its cluster was built from, and the cluster (kept encoded only).
    clusters: HashMap<ResourceRef, (Arc<Object<UpstreamSpec>>, Versioned<Cluster>)>,
    /// Per EDS cluster: the endpoints and failover its assignment was built from.
    assignments: HashMap<String, (AssignmentInputs, Versioned<ClusterLoadAssignment>)>,
    /// Per proxy: its EDS clusters and the upstream each serves.
    eds_clusters: BTreeMap<String, EdsClusters>,
    /// The discovered endpoints in force, each upstream's list shared with discovery.
    endpoints: BTreeMap<ResourceRef, EndpointList>,
    last: BTreeMap<String, ProxyResources>,
    /// Secrets the cached clusters were built with.
    secrets: Option<crate::snapshot::Collection<crate::model::secret::SecretSpec>>,
    secrets_changed: bool,
    /// Settings `rateLimitBeforeAuth` the cached virtual hosts were translated with (it sets
    /// the stage of their `ratelimit` rate limits).
    ratelimit_before_auth: bool,
    /// Settings `extauth.userIdHeader` the cached virtual hosts were translated with (their
    /// basic rate limits read it).
    user_id_header: String,
    /// The rate limit server's sources, with the last good version of each rejected one.
    rate_limit_sources: ratelimit::LastGoodLimits,
    /// The AuthConfigs of the ext auth server, with the last good version of each rejected one.
    auth_configs: extauth_config::LastGoodAuthConfigs,
    /// RateLimitConfigs the cached virtual hosts were translated with (their actions are
    /// copied into the virtual hosts and routes that reference them).
    rate_limit_configs:
        Option<crate::snapshot::Collection<crate::model::ratelimit::RateLimitConfigSpec>>,
    /// The `aws` upstreams the cached virtual hosts were translated with (their functions
    /// are copied into the routes that invoke them).
    aws_upstreams: Option<Vec<(ResourceRef, Arc<Object<UpstreamSpec>>)>>,
    /// Where Lambda clusters send invocations, if not to AWS.
    lambda_endpoint: Option<LambdaEndpoint>,
    /// How many virtual hosts the last translation built anew (the rest came from the cache).
    pub virtual_hosts_translated: usize,
}

impl std::fmt::Debug for Translator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Translator")
            .field("virtual_hosts", &self.virtual_hosts.len())
            .field("clusters", &self.clusters.len())
            .finish_non_exhaustive()
    }
}

impl Translator {
    /// A translator with nothing cached.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends the clusters of `aws` upstreams to `endpoint` instead of
    /// `lambda.<region>.amazonaws.com:443` (a VPC endpoint, a local mock such as moto), as the
    /// AWS SDKs' `AWS_ENDPOINT_URL_LAMBDA` does; the invocations' `host` header follows it.
    ///
    /// ```
    /// use gloo_core::translate::{LambdaEndpoint, Translator};
    /// let translator = Translator::new()
    ///     .lambda_endpoint(Some(LambdaEndpoint::parse("http://127.0.0.1:5000").unwrap()));
    /// # drop(translator);
    /// ```
    pub fn lambda_endpoint(mut self, endpoint: Option<LambdaEndpoint>) -> Self {
        if self.lambda_endpoint != endpoint {
            self.clusters.clear();
        }
        self.lambda_endpoint = endpoint;
        self
    }

    /// Translates a source snapshot (resources plus load errors).
    pub fn translate(&mut self, source: &SourceSnapshot) -> Translation {
        let mut reports = Reports::default();
        let snapshot = ConfigSnapshot::from_source(source, &mut reports);
        self.translate_snapshot(&snapshot, reports)
    }

    /// Translates an indexed snapshot, adding to `reports`.
    pub fn translate_snapshot(
        &mut self,
        snapshot: &ConfigSnapshot,
        mut reports: Reports,
    ) -> Translation {
        validate_upstreams(snapshot, &mut reports);
        validate_filter_configs(snapshot, &mut reports);
        validate_option_resources(snapshot, &mut reports);
        // From here on a rejected UpstreamGroup is left out, as a rejected Upstream gets no
        // cluster: routes to it answer 503 as routes to a missing one do (resolution warns
        // about them), and nothing of it reaches Envoy.
        let usable;
        let snapshot = match without_rejected_upstream_groups(snapshot, &reports) {
            Some(filtered) => {
                usable = filtered;
                &usable
            }
            None => snapshot,
        };
        let models = resolve::resolve(snapshot, &mut self.resolve_cache, &mut reports);
        self.secrets_changed = self.secrets.as_ref() != Some(&snapshot.secrets);
        if self.secrets_changed {
            self.secrets = Some(snapshot.secrets.clone());
            // Virtual hosts can carry headers read from Secrets (`headerSecretRef`).
            self.virtual_hosts.clear();
        }
        if self.upstream_groups.as_ref() != Some(&snapshot.upstream_groups) {
            self.virtual_hosts.clear();
            self.upstream_groups = Some(snapshot.upstream_groups.clone());
        }
        let before_auth = ratelimit::before_auth(snapshot);
        if before_auth != self.ratelimit_before_auth {
            self.virtual_hosts.clear();
            self.ratelimit_before_auth = before_auth;
        }
        let user_id_header = ratelimit::user_id_header(snapshot);
        if user_id_header != self.user_id_header {
            self.virtual_hosts.clear();
            self.user_id_header = user_id_header;
        }
        if self.rate_limit_configs.as_ref() != Some(&snapshot.rate_limit_configs) {
            self.virtual_hosts.clear();
            self.rate_limit_configs = Some(snapshot.rate_limit_configs.clone());
        }
        let aws_upstreams: Vec<(ResourceRef, Arc<Object<UpstreamSpec>>)> = snapshot
            .upstreams
            .iter()
            .filter(|(_, e)| e.object.spec.aws.is_some())
            .map(|(r, e)| (r.clone(), e.object.clone()))
            .collect();
        if self.aws_upstreams.as_ref() != Some(&aws_upstreams) {
            self.virtual_hosts.clear();
            self.aws_upstreams = Some(aws_upstreams);
        }
        let transformation_settings = transformation::SettingsDefaults::of(snapshot);
        if transformation_settings != self.transformation_settings {
            self.virtual_hosts.clear();
            self.transformation_settings = transformation_settings;
        }
        // A copy, so the context does not borrow the translator it is handed to.
        let lambda_endpoint = self.lambda_endpoint.clone();
        let ctx = Context {
            snapshot,
            transformation: transformation_settings,
            grpc_web: http_filters::grpc_web_by_default(snapshot),
            lambda_endpoint: lambda_endpoint.as_ref(),
        };
        let mut proxies = BTreeMap::new();
        let mut used_hosts = BTreeSet::new();
        self.virtual_hosts_translated = 0;
        self.eds_clusters.clear();
        for (name, model) in &models {
            let resources = self.translate_proxy(model, &ctx, &mut used_hosts, &mut reports);
            proxies.insert(name.clone(), resources);
        }
        self.virtual_hosts.retain(|key, _| used_hosts.contains(key));
        let live: BTreeSet<&String> = self.eds_clusters.values().flat_map(|m| m.keys()).collect();
        self.assignments.retain(|name, _| live.contains(name));
        self.clusters
            .retain(|r, _| snapshot.upstreams.contains_key(r));
        self.last = proxies.clone();
        self.rate_limit_sources.update(snapshot);
        let rate_limit_server_configs = self.rate_limit_sources.server_configs(&models);
        let ext_auth_server = self.auth_configs.update(snapshot);
        Translation {
            proxies,
            reports,
            rate_limit_server_configs,
            ext_auth_server,
        }
    }

    fn translate_proxy(
        &mut self,
        model: &ProxyModel,
        ctx: &Context<'_>,
        used_hosts: &mut BTreeSet<VirtualHostKey>,
        reports: &mut Reports,
    ) -> ProxyResources {
        let mut out = ProxyResources::default();
        let mut status = ProxyStatus::default();
        let mut referenced: BTreeSet<ResourceRef> = BTreeSet::new();
        for listener in &model.listeners {
            let envoy_listener = listeners::listener(listener, ctx, reports);
            if envoy_listener.filter_chains.is_empty() {
                // Like Gloo, a gateway with nothing to serve (an SSL gateway without SSL
                // virtual services, a TCP gateway without hosts) gets no listener: Envoy
                // rejects listeners without filter chains.
                continue;
            }
            for host in listener.tcp_hosts() {
                collect_tcp_upstreams(host, ctx, &mut referenced);
            }
            access_log::collect_upstreams(ctx.snapshot, &listener.spec, &mut referenced);
            out.listeners
                .insert(listener.name.clone(), Versioned::new(envoy_listener));
            let mut listener_status = ListenerStatus {
                gateway: listener.gateway.to_string(),
                state: State::Accepted,
                virtual_hosts: BTreeMap::new(),
            };
            for config in listener.http_route_configs() {
                let (route_name, virtual_hosts) = (config.name, config.virtual_hosts);
                let flags =
                    local_ratelimit::ListenerFlags::of(local_ratelimit::settings(config.gateway));
                let auth = extauth::listener_auth(
                    ctx.snapshot,
                    config.gateway,
                    virtual_hosts,
                    &model.name,
                    &listener.name,
                );
                extauth::collect_upstreams(
                    ctx.snapshot,
                    config.gateway,
                    virtual_hosts,
                    &mut referenced,
                );
                tracing::collect_upstreams(ctx.snapshot, reports, config.gateway, &mut referenced);
                let gateway_waf = waf::gateway_enforces(config.gateway);
                // The gateway's dynamic forward proxy: its generated cluster, once per distinct
                // config across the proxy (Gloo's `GeneratedResources`).
                let forward_proxy = dynamic_forward_proxy::ForwardProxy::of(
                    config.gateway,
                    listener.gateway.namespace_or(DEFAULT_NAMESPACE),
                );
                let forward_proxy_cluster = forward_proxy.map(|proxy| {
                    let name = proxy.cluster_name();
                    if !out.clusters.contains_key(&name) {
                        out.clusters.insert(
                            name.clone(),
                            Versioned::new(dynamic_forward_proxy::cluster(proxy, ctx)),
                        );
                    }
                    name
                });
                let mut hasher = Xxh3::new();
                hasher.update(route_name.as_bytes());
                let mut protos = Vec::with_capacity(virtual_hosts.len());
                for host in virtual_hosts {
                    // Proxyless gRPC clients dial `xds:///<domain>`: each plain domain of a
                    // plaintext HTTP listener gets an API listener (the first listener wins).
                    if !listener.is_tls() {
                        for domain in host.domains.iter().filter(|d| !d.contains('*')) {
                            if !out.api_listeners.contains_key(domain) {
                                out.api_listeners.insert(
                                    domain.clone(),
                                    Versioned::new(listeners::api_listener(domain, &route_name)),
                                );
                            }
                        }
                    }
                    collect_upstreams(host, ctx, &mut referenced);
                    // The flags matter only to hosts with overrides: a flag edit leaves the
                    // others cached. (Without flags, no host's routes need walking.)
                    let flags = if flags != local_ratelimit::ListenerFlags::default()
                        && local_ratelimit::host_uses(host)
                    {
                        flags
                    } else {
                        local_ratelimit::ListenerFlags::default()
                    };
                    // Likewise the gateway's WAF, for hosts with WAF options only.
                    let key = (
                        host.name.clone(),
                        flags,
                        extauth::host_key(&auth, host),
                        gateway_waf && waf::host_uses(host),
                        forward_proxy_cluster
                            .clone()
                            .filter(|_| dynamic_forward_proxy::host_uses(host)),
                    );
                    let (encoded, version) = self.virtual_host(&key, host, ctx);
                    used_hosts.insert(key);
                    hasher.update(version.as_bytes());
                    protos.push(encoded);
                    let vh_status = virtual_host_status(host);
                    listener_status.state = listener_status.state.max(vh_status.state);
                    listener_status
                        .virtual_hosts
                        .insert(host.name.clone(), vh_status);
                }
                // The version of a route configuration is derived from its virtual hosts'
                // content versions, so unchanged hosts are never hashed again.
                let version = format!("{:016x}", hasher.digest());
                // Unchanged: keep the previous one; otherwise assemble its encoding from the
                // virtual hosts' encodings (the typed form is decoded only if asked for).
                let previous = self
                    .last
                    .get(&model.name)
                    .and_then(|p| p.routes.get(&route_name))
                    .filter(|v| v.version == version)
                    .cloned();
                let versioned = match previous {
                    Some(previous) => previous,
                    None => Versioned::from_packed(
                        version,
                        route_configuration_from_hosts(&route_name, &protos),
                    ),
                };
                out.routes.insert(route_name, versioned);
            }
            status.state = status.state.max(listener_status.state);
            status
                .listeners
                .insert(listener.name.clone(), listener_status);
        }
        reports.proxies.insert(model.name.clone(), status);
        // The STS cluster of Settings' Lambda service account credentials, when it is an
        // upstream's: the Lambda filter calls it though no route does.
        if !referenced.is_empty() {
            referenced.extend(aws_lambda::sts_upstream(ctx.snapshot));
        }
        let secrets_changed = self.secrets_changed;
        let eds = self.eds_clusters.entry(model.name.clone()).or_default();
        for reference in referenced {
            let Some(entry) = ctx.snapshot.upstreams.get(&reference) else {
                continue;
            };
            if reports
                .get(Kind::Upstream, &reference)
                .is_some_and(|s| s.state == State::Rejected)
            {
                continue;
            }
            let object = ratelimit::cluster_upstream(ctx.snapshot, &reference, &entry.object);
            let object = extauth::cluster_upstream(ctx.snapshot, &reference, &object);
            let cluster = match self.clusters.get(&reference) {
                Some((spec, cached))
                    if (Arc::ptr_eq(spec, &object) || spec == &object) && !secrets_changed =>
                {
                    cached.clone()
                }
                _ => {
                    let built = Versioned::encoded(clusters::cluster(&object, ctx));
                    self.clusters
                        .insert(reference.clone(), (object.clone(), built.clone()));
                    built
                }
            };
            // The name `clusters::cluster` gives it, without decoding it.
            let name = names::object_cluster_name(&entry.object.metadata);
            if clusters::static_hosts_are_ips(&entry.object.spec) {
                eds.insert(name.clone(), (reference.clone(), entry.object.clone()));
            }
            out.clusters.insert(name, cluster);
        }
        // Taken out and put back rather than copied: `assignment` needs the translator.
        let eds = std::mem::take(eds);
        for (name, (reference, upstream)) in &eds {
            out.endpoints.insert(
                name.clone(),
                self.assignment(name, reference, &upstream.spec),
            );
        }
        self.eds_clusters.insert(model.name.clone(), eds);
        out
    }

    /// The encoding and content version of a virtual host: from the cache when its model did
    /// not change, translated otherwise.
    fn virtual_host(
        &mut self,
        key: &VirtualHostKey,
        host: &Arc<VirtualHostModel>,
        ctx: &Context<'_>,
    ) -> (Arc<[u8]>, String) {
        if let Some(cached) = self.virtual_hosts.get(key) {
            if (Arc::ptr_eq(&cached.model, host) || cached.model.as_ref() == host.as_ref())
                && waf::artifacts_unchanged(ctx.snapshot, &cached.artifacts)
            {
                return (cached.encoded.clone(), cached.version.clone());
            }
        }
        self.virtual_hosts_translated += 1;
        let proto = routes::virtual_host(host, key.1, &key.2, key.3, key.4.as_deref(), ctx);
        let (encoded, version) = encode_with_version(&proto);
        let encoded: Arc<[u8]> = encoded.into();
        self.virtual_hosts.insert(
            key.clone(),
            CachedVirtualHost {
                model: host.clone(),
                version: version.clone(),
                encoded: encoded.clone(),
                artifacts: waf::host_artifacts(ctx.snapshot, host),
            },
        );
        (encoded, version)
    }

    fn assignment(
        &mut self,
        cluster: &str,
        reference: &ResourceRef,
        spec: &UpstreamSpec,
    ) -> Versioned<ClusterLoadAssignment> {
        let discovered = self.endpoints.get(reference).map_or(&[][..], |l| &l[..]);
        let endpoints = clusters::upstream_endpoints(spec, discovered);
        if let Some(((previous, failover), cached)) = self.assignments.get(cluster) {
            if previous == &endpoints && failover == &spec.failover {
                return cached.clone();
            }
        }
        let mut cla = clusters::load_assignment(cluster, &endpoints);
        if let Some(failover) = &spec.failover {
            clusters::add_failover(&mut cla, failover, false);
        }
        let built = Versioned::new(cla);
        self.assignments.insert(
            cluster.to_string(),
            ((endpoints, spec.failover.clone()), built.clone()),
        );
        built
    }

    /// Replaces the discovered endpoints and returns every proxy's resources with only the
    /// endpoints (ClusterLoadAssignments) of changed upstreams recomputed: no route or cluster
    /// is translated, and nothing unchanged is copied. Compares every upstream's list with the
    /// one in force; a caller that knows what changed passes only that to
    /// [`apply_endpoint_changes`](Self::apply_endpoint_changes).
    pub fn update_endpoints(&mut self, endpoints: Endpoints) -> &BTreeMap<String, ProxyResources> {
        let mut changes = EndpointChanges::default();
        for (reference, list) in &endpoints {
            let current = self.endpoints.get(reference).map_or(&[][..], |l| &l[..]);
            if current != list.as_slice() {
                changes.set(reference.clone(), list.as_slice());
            }
        }
        for reference in self.endpoints.keys() {
            if !endpoints.contains_key(reference) {
                changes.removed.insert(reference.clone());
            }
        }
        self.apply_endpoint_changes(&changes);
        &self.last
    }

    /// The endpoint fast path: takes only the upstreams whose discovered endpoints changed
    /// (their new lists are kept shared, not copied) and rebuilds only the
    /// ClusterLoadAssignments of the EDS clusters serving them. Routes, listeners, clusters
    /// and every other assignment keep their value and version.
    ///
    /// Returns, per proxy, the assignments that got a new version (an upstream no route
    /// reaches, or whose assignment came out the same, is not there); [`proxies`](Self::proxies)
    /// has every proxy's resources with them in place.
    ///
    /// ```
    /// use gloo_core::model::ResourceRef;
    /// use gloo_core::source::{ConfigSource, MemorySource};
    /// use gloo_core::translate::{Endpoint, EndpointChanges, Translator};
    ///
    /// let source = MemorySource::new("example");
    /// source.set_yaml(r#"
    /// apiVersion: gloo.solo.io/v1
    /// kind: Upstream
    /// metadata: {name: svc, namespace: gloo-system}
    /// spec: {kube: {serviceName: svc, serviceNamespace: default, servicePort: 80}}
    /// ---
    /// apiVersion: gateway.solo.io/v1
    /// kind: VirtualService
    /// metadata: {name: default, namespace: gloo-system}
    /// spec:
    ///   virtualHost:
    ///     domains: ["*"]
    ///     routes: [{routeAction: {single: {upstream: {name: svc}}}}]
    /// "#);
    /// let mut translator = Translator::new();
    /// translator.translate(&source.subscribe().borrow());
    ///
    /// let mut changes = EndpointChanges::default();
    /// changes.set(ResourceRef::new("gloo-system", "svc"), vec![Endpoint::new("10.0.0.7", 8080)]);
    /// let changed = translator.apply_endpoint_changes(&changes);
    /// assert_eq!(changed["gateway-proxy"].keys().collect::<Vec<_>>(), ["svc_gloo-system"]);
    /// ```
    pub fn apply_endpoint_changes(
        &mut self,
        changes: &EndpointChanges,
    ) -> BTreeMap<String, crate::xds::ResourceMap<ClusterLoadAssignment>> {
        let mut changed: BTreeMap<String, crate::xds::ResourceMap<ClusterLoadAssignment>> =
            BTreeMap::new();
        if changes.is_empty() {
            return changed;
        }
        for (reference, list) in &changes.updated {
            self.endpoints.insert(reference.clone(), list.clone());
        }
        for reference in &changes.removed {
            self.endpoints.remove(reference);
        }
        let mut proxies = std::mem::take(&mut self.last);
        let eds = std::mem::take(&mut self.eds_clusters);
        for (proxy, clusters) in &eds {
            let Some(resources) = proxies.get_mut(proxy) else {
                continue;
            };
            for (name, (reference, upstream)) in clusters {
                if !changes.updated.contains_key(reference) && !changes.removed.contains(reference)
                {
                    continue;
                }
                let assignment = self.assignment(name, reference, &upstream.spec);
                if resources
                    .endpoints
                    .get(name)
                    .is_some_and(|a| a.version == assignment.version)
                {
                    continue;
                }
                resources.endpoints.insert(name.clone(), assignment.clone());
                changed
                    .entry(proxy.clone())
                    .or_default()
                    .insert(name.clone(), assignment);
            }
        }
        self.eds_clusters = eds;
        self.last = proxies;
        changed
    }

    /// Every proxy's resources as last translated or updated.
    pub fn proxies(&self) -> &BTreeMap<String, ProxyResources> {
        &self.last
    }
}

/// A `RouteConfiguration` named `name` packed from its virtual hosts' encodings: a message's
/// encoding is its fields' encodings one after another, so each host is written as field 2
/// (`virtual_hosts`) around its bytes, after the name (field 1), in field order as prost writes.
fn route_configuration_from_hosts(
    name: &str,
    hosts: &[Arc<[u8]>],
) -> envoy_types::pb::google::protobuf::Any {
    use prost::Message;
    let header = RouteConfiguration {
        name: name.to_string(),
        ..Default::default()
    };
    let mut value =
        Vec::with_capacity(header.encoded_len() + hosts.iter().map(|h| h.len() + 6).sum::<usize>());
    header.encode_raw(&mut value);
    for host in hosts {
        prost::encoding::encode_key(2, prost::encoding::WireType::LengthDelimited, &mut value);
        prost::encoding::encode_varint(host.len() as u64, &mut value);
        value.extend_from_slice(host);
    }
    envoy_types::pb::google::protobuf::Any {
        type_url: <RouteConfiguration as crate::xds::EnvoyMessage>::type_url(),
        value,
    }
}

fn virtual_host_status(host: &VirtualHostModel) -> VirtualHostStatus {
    let routes: Vec<RouteStatus> = host
        .routes
        .iter()
        .map(|r| RouteStatus {
            name: r.name.clone(),
            source: r.source.clone(),
            state: if r.warnings.is_empty() {
                State::Accepted
            } else {
                State::Warning
            },
            warnings: r.warnings.clone(),
        })
        .collect();
    VirtualHostStatus {
        virtual_service: host.source.to_string(),
        state: routes.iter().map(|r| r.state).max().unwrap_or_default(),
        routes,
    }
}

/// The upstreams a virtual host's routes can send traffic to (including shadows and the
/// members of upstream groups).
fn collect_upstreams(host: &VirtualHostModel, ctx: &Context<'_>, into: &mut BTreeSet<ResourceRef>) {
    fn add(d: &Destination, into: &mut BTreeSet<ResourceRef>) {
        // Runs for every route, and most upstreams serve several: a reference that names its
        // namespace is its own resolved form, looked up before a copy is made.
        if let Ok(Some(crate::model::routing::DestinationTarget::Upstream(r))) = d.target() {
            if r.namespace.as_deref().is_some_and(|ns| !ns.is_empty()) && into.contains(r) {
                return;
            }
        }
        if let Some(upstream) = routes::destination_upstream(d) {
            into.insert(upstream);
        }
    }
    jwt::collect_upstreams(host, into);
    ratelimit::collect_upstreams(ctx.snapshot, host, into);
    for route in &host.routes {
        if let RouteModelAction::Route(action) = &route.action {
            let weighted: &[crate::model::routing::WeightedDestination] = match action.destination()
            {
                Ok(Some(RouteDestination::Single(d))) => {
                    add(d, into);
                    &[]
                }
                Ok(Some(RouteDestination::Multi(m))) => &m.destinations,
                Ok(Some(RouteDestination::UpstreamGroup(g))) => ctx
                    .snapshot
                    .upstream_groups
                    .get(&g.resolved(DEFAULT_NAMESPACE))
                    .map(|group| group.object.spec.destinations.as_slice())
                    .unwrap_or(&[]),
                _ => &[],
            };
            for d in weighted.iter().filter_map(|w| w.destination.as_ref()) {
                add(d, into);
            }
        }
        if let Some(shadow) = route
            .options
            .shadowing
            .as_ref()
            .and_then(|s| s.upstream.as_ref())
        {
            into.insert(shadow.resolved(DEFAULT_NAMESPACE));
        }
    }
}

fn collect_tcp_upstreams(
    host: &crate::model::gateway::TcpHost,
    ctx: &Context<'_>,
    into: &mut BTreeSet<ResourceRef>,
) {
    use crate::model::gateway::TcpDestination;
    let Some(action) = &host.destination else {
        return;
    };
    let destinations: Vec<&Destination> = match action.destination() {
        Ok(Some(TcpDestination::Single(d))) => vec![d],
        Ok(Some(TcpDestination::Multi(m))) => m
            .destinations
            .iter()
            .filter_map(|w| w.destination.as_ref())
            .collect(),
        Ok(Some(TcpDestination::UpstreamGroup(g))) => ctx
            .snapshot
            .upstream_groups
            .get(&g.resolved(DEFAULT_NAMESPACE))
            .map(|group| {
                group
                    .object
                    .spec
                    .destinations
                    .iter()
                    .filter_map(|w| w.destination.as_ref())
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    into.extend(
        destinations
            .into_iter()
            .filter_map(routes::destination_upstream),
    );
}

/// Checks the resources the filters will enforce: Settings' rate limit and ext auth servers,
/// RateLimitConfigs (descriptors, limits, actions) and AuthConfigs (their configs and the
/// Secrets they read).
fn validate_filter_configs(snapshot: &ConfigSnapshot, reports: &mut Reports) {
    for (reference, entry) in &snapshot.settings {
        let key = ResourceKey::new(Kind::Settings, reference.clone());
        for problem in ratelimit::validate_settings(snapshot, &entry.object.spec) {
            reports.error(&key, problem);
        }
        for problem in extauth::validate_settings(snapshot, &entry.object.spec) {
            reports.error(&key, problem);
        }
    }
    for (reference, entry) in &snapshot.rate_limit_configs {
        let key = ResourceKey::new(Kind::RateLimitConfig, reference.clone());
        for problem in entry.object.spec.validate() {
            reports.error(&key, problem);
        }
    }
    extauth_config::report(snapshot, reports);
}

/// The problems `route` finds in the options of each of `routes` (of a VirtualService or
/// RouteTable, under `path`), each called with the path of those options.
pub(crate) fn check_route_options(
    routes: &[crate::model::routing::Route],
    path: &str,
    mut route: impl FnMut(&crate::model::options::RouteOptions, &str) -> Vec<String>,
) -> Vec<String> {
    routes
        .iter()
        .enumerate()
        .filter_map(|(i, r)| Some((i, r.options.as_deref()?)))
        .flat_map(|(i, options)| route(options, &format!("{path}[{i}].options")))
        .collect()
}

/// The problems `host` finds in a VirtualService's virtual host options and `route` in its
/// routes' options (see [`check_route_options`]).
pub(crate) fn check_virtual_service_options(
    spec: &crate::model::virtual_service::VirtualServiceSpec,
    host: impl FnOnce(&crate::model::options::VirtualHostOptions, &str) -> Vec<String>,
    route: impl FnMut(&crate::model::options::RouteOptions, &str) -> Vec<String>,
) -> Vec<String> {
    let Some(vh) = &spec.virtual_host else {
        return Vec::new();
    };
    let mut errors = match &vh.options {
        Some(options) => host(options, "spec.virtualHost.options"),
        None => Vec::new(),
    };
    errors.extend(check_route_options(
        &vh.routes,
        "spec.virtualHost.routes",
        route,
    ));
    errors
}

/// Checks VirtualHostOption and RouteOption resources on their own (local rate limits, JWT
/// providers, header manipulation, options gloo does not enforce), and UpstreamGroups'
/// destination options. One that fails is Rejected and not applied where it is referenced
/// (an UpstreamGroup is not used at all: see [`without_rejected_upstream_groups`]).
fn validate_option_resources(snapshot: &ConfigSnapshot, reports: &mut Reports) {
    const PATH: &str = "spec.options";
    let virtual_host_options = snapshot.virtual_host_options.iter().map(|(r, e)| {
        let options = &e.object.spec.options;
        let mut problems = options.local_ratelimit().validate(PATH);
        problems.extend(crate::resolve::unenforced(options.unenforced(), PATH));
        problems.extend(ratelimit::validate_host(options, PATH));
        problems.extend(ratelimit::check_host(snapshot, options, PATH));
        problems.extend(transformation::validate(
            transformation::Options::host(options),
            PATH,
        ));
        problems.extend(waf::problems(snapshot, options.waf.as_deref(), PATH));
        for (path, extension) in jwt::host_extensions(options, PATH) {
            problems.extend(jwt::validate(extension, &path));
        }
        problems.extend(extauth::problems(
            snapshot,
            options.extauth.as_deref(),
            PATH,
        ));
        problems.extend(http_filters::per_route_problems(
            options.buffer_per_route.as_ref(),
            PATH,
        ));
        problems.extend(crate::resolve::header_manipulation_problems(
            options.header_manipulation.as_deref(),
            PATH,
        ));
        // Gloo's headers plugin fails on a `headerSecretRef` to a Secret that is missing or
        // holds no headers; a reference without a namespace is to the resource's own.
        problems.extend(crate::resolve::header_manipulation_secret_problems(
            snapshot,
            options.header_manipulation.as_deref(),
            r.namespace_or(DEFAULT_NAMESPACE),
            PATH,
        ));
        (Kind::VirtualHostOption, r, problems)
    });
    let route_options = snapshot.route_options.iter().map(|(r, e)| {
        let options = &e.object.spec.options;
        let mut problems = options.local_ratelimit().validate(PATH);
        problems.extend(crate::resolve::unenforced(options.unenforced(), PATH));
        problems.extend(ratelimit::validate_route(options, PATH));
        problems.extend(ratelimit::check_route(snapshot, options, PATH));
        problems.extend(transformation::validate(
            transformation::Options::route(options),
            PATH,
        ));
        problems.extend(waf::problems(snapshot, options.waf.as_deref(), PATH));
        for (path, extension) in jwt::route_extensions(options, PATH) {
            problems.extend(jwt::validate(extension, &path));
        }
        problems.extend(extauth::problems(
            snapshot,
            options.extauth.as_deref(),
            PATH,
        ));
        problems.extend(http_filters::per_route_problems(
            options.buffer_per_route.as_ref(),
            PATH,
        ));
        problems.extend(crate::resolve::header_manipulation_problems(
            options.header_manipulation.as_deref(),
            PATH,
        ));
        // Gloo's headers plugin fails on a `headerSecretRef` to a Secret that is missing or
        // holds no headers; a reference without a namespace is to the resource's own.
        problems.extend(crate::resolve::header_manipulation_secret_problems(
            snapshot,
            options.header_manipulation.as_deref(),
            r.namespace_or(DEFAULT_NAMESPACE),
            PATH,
        ));
        (Kind::RouteOption, r, problems)
    });
    let upstream_groups = snapshot.upstream_groups.iter().map(|(r, e)| {
        let problems = e
            .object
            .spec
            .destinations
            .iter()
            .enumerate()
            .flat_map(|(i, d)| {
                let path = format!("spec.destinations[{i}].options");
                let mut problems = transformation::validate(
                    transformation::Options::weighted(d.options.as_ref()),
                    &path,
                );
                problems.extend(extauth::problems(
                    snapshot,
                    d.options.as_ref().and_then(|o| o.extauth.as_ref()),
                    &path,
                ));
                problems.extend(http_filters::per_route_problems(
                    d.options.as_ref().and_then(|o| o.buffer_per_route.as_ref()),
                    &path,
                ));
                problems.extend(crate::resolve::header_manipulation_problems(
                    d.options
                        .as_ref()
                        .and_then(|o| o.header_manipulation.as_ref()),
                    &path,
                ));
                problems
            })
            .collect();
        (Kind::UpstreamGroup, r, problems)
    });
    for (kind, reference, problems) in virtual_host_options
        .chain(route_options)
        .chain(upstream_groups)
    {
        let key = ResourceKey::new(kind, reference.clone());
        for problem in problems {
            reports.error(&key, problem);
        }
    }
}

/// `snapshot` without its rejected UpstreamGroups, or `None` when none is rejected (the
/// snapshot is used as it is; only a rejection costs a copy). Gloo does not use a resource
/// with errors: a route to such a group has no destination, as a route to a missing one.
fn without_rejected_upstream_groups(
    snapshot: &ConfigSnapshot,
    reports: &Reports,
) -> Option<ConfigSnapshot> {
    let rejected = |r: &ResourceRef| {
        reports
            .get(Kind::UpstreamGroup, r)
            .is_some_and(|s| s.state == State::Rejected)
    };
    if !snapshot.upstream_groups.keys().any(rejected) {
        return None;
    }
    let mut filtered = snapshot.clone();
    filtered.upstream_groups.retain(|r, _| !rejected(r));
    Some(filtered)
}

/// Checks each Upstream on its own: one upstream type, and static hosts with an address and a
/// port.
fn validate_upstreams(snapshot: &ConfigSnapshot, reports: &mut Reports) {
    for (reference, entry) in &snapshot.upstreams {
        let key = ResourceKey::new(Kind::Upstream, reference.clone());
        for field in entry.object.spec.unapplied() {
            reports.warn(
                &key,
                format!("spec.{field}: gloo does not apply this option yet; the upstream is served without it"),
            );
        }
        // Gloo's checks of the HTTP/2 windows (its `httpprotocolvalidation`).
        let h2 = crate::model::listener_options::Http2ProtocolOptions {
            initial_stream_window_size: entry.object.spec.initial_stream_window_size,
            initial_connection_window_size: entry.object.spec.initial_connection_window_size,
            max_concurrent_streams: entry.object.spec.max_concurrent_streams,
            ..Default::default()
        };
        if entry.object.spec.use_http2.unwrap_or(false) {
            for why in h2.problems() {
                reports.error(&key, format!("spec.{why}"));
            }
        }
        if let Some(http1) = entry
            .object
            .spec
            .connection_config
            .as_ref()
            .and_then(|c| c.http1_protocol_options.as_ref())
        {
            const AT: &str = "spec.connectionConfig.http1ProtocolOptions";
            if let Err(e) = http1.check_header_format() {
                reports.error(&key, format!("{AT}: {e}"));
            }
            // Gloo's protocoloptions plugin: HTTP/2 with the default protocol selection
            // leaves HTTP/1 options nothing to apply to.
            if entry.object.spec.use_http2.unwrap_or(false)
                && entry.object.spec.protocol_selection.unwrap_or_default()
                    == crate::model::upstream::ClusterProtocolSelection::UseConfiguredProtocol
            {
                reports.error(
                    &key,
                    format!("{AT}: Both HTTP1 and HTTP2 options may only be configured with non-default 'Upstream_USE_DOWNSTREAM_PROTOCOL' specified for Protocol Selection"),
                );
            }
        }
        if let Some(why) = entry
            .object
            .spec
            .dns_refresh_rate
            .as_ref()
            .and_then(clusters::dns_refresh_rate_problem)
        {
            reports.warn(&key, format!("spec.dnsRefreshRate: {why}"));
        }
        if let Some(why) = entry
            .object
            .spec
            .preconnect_policy
            .as_ref()
            .and_then(clusters::preconnect_policy_problem)
        {
            reports.error(&key, format!("spec.preconnectPolicy: {why}"));
        }
        if let Some(version) = &entry.object.spec.proxy_protocol_version {
            if clusters::proxy_protocol_version(version).is_none() {
                reports.error(
                    &key,
                    format!("spec.proxyProtocolVersion: proxy protocol version {version} is not supported (V1 or V2)"),
                );
            }
        }
        match entry.object.spec.upstream_type() {
            Err(e) => reports.error(&key, format!("spec: {e}")),
            Ok(None) => reports.error(
                &key,
                "spec: no upstream type: set one of static, kube, consul, awsEc2, aws, pipe, azure, gcp",
            ),
            Ok(Some(UpstreamTypeRef::Static(s))) => {
                if s.hosts.is_empty() {
                    reports.warn(&key, "spec.static.hosts: no hosts; requests to this upstream answer 503");
                }
                for (i, h) in s.hosts.iter().enumerate() {
                    if h.addr.is_empty() {
                        reports.error(&key, format!("spec.static.hosts[{i}].addr: required"));
                    }
                    if h.port == 0 || h.port > 65535 {
                        reports.error(&key, format!("spec.static.hosts[{i}].port: {} is not a port (1-65535)", h.port));
                    }
                }
            }
            Ok(Some(UpstreamTypeRef::Aws(aws))) => {
                for problem in aws_lambda::validate_upstream(snapshot, reference, aws) {
                    reports.error(&key, problem);
                }
            }
            Ok(Some(_)) => {}
        }
        if let Some(ssl) = &entry.object.spec.ssl_config {
            let namespace = reference.namespace_or(DEFAULT_NAMESPACE);
            for problem in
                clusters::upstream_ssl_problems(snapshot, ssl, namespace, "spec.sslConfig")
            {
                reports.error(&key, problem);
            }
        }
    }
}

/// A JSON object as a protobuf `Struct`, as Envoy's `MessageUtil` reads JSON (numbers become
/// doubles).
pub(crate) fn pb_struct(
    object: &serde_json::Map<String, serde_json::Value>,
) -> envoy_types::pb::google::protobuf::Struct {
    envoy_types::pb::google::protobuf::Struct {
        fields: object
            .iter()
            .map(|(k, v)| (k.clone(), pb_value(v)))
            .collect(),
    }
}

/// A JSON value as a protobuf `Value`.
fn pb_value(json: &serde_json::Value) -> envoy_types::pb::google::protobuf::Value {
    use envoy_types::pb::google::protobuf::{value::Kind, ListValue};
    use serde_json::Value as J;
    let kind = match json {
        J::Null => Kind::NullValue(0),
        J::Bool(b) => Kind::BoolValue(*b),
        J::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        J::String(s) => Kind::StringValue(s.clone()),
        J::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(pb_value).collect(),
        }),
        J::Object(map) => Kind::StructValue(pb_struct(map)),
    };
    envoy_types::pb::google::protobuf::Value { kind: Some(kind) }
}
