//! The gateway layer: from Gateways, VirtualServices and RouteTables to one resolved model per
//! proxy (listeners → virtual hosts → routes), with every Gloo rule checked and reported.
//!
//! What happens here, in Gloo's terms:
//! - each Gateway serves its proxies (`proxyNames`, default `gateway-proxy`) on one address and
//!   port, selecting VirtualServices by reference, by label selector / expressions, or all of
//!   them, limited to `virtualServiceNamespaces`; SSL gateways take the VirtualServices that have
//!   an `sslConfig`, plain ones take the others;
//! - domains are unique per gateway, with at most one `*`;
//! - routes are first-match in list order; a route with several matchers becomes several routes;
//! - delegation by reference or selector: the delegating route has at most one matcher, a
//!   prefix; child routes must start with that prefix (a route that does not is dropped with a
//!   warning); route tables are taken in ascending `weight`; cycles are errors; options
//!   shallow-merge with the child winning; `inheritableMatchers` and
//!   `inheritablePathMatchers` default to the parent's value;
//! - a route to a missing upstream is a warning (the route answers 503, or what Settings'
//!   `gloo.invalidConfigPolicy` configures), never an error;
//! - a Gateway, VirtualService or RouteTable that is invalid on its own is Rejected, and its
//!   last accepted version keeps serving (see [`ResolveCache`]).
//!
//! From YAML to a proxy's routes: a virtual service delegating `/a` to a route table, one of whose
//! routes does not start with `/a`:
//!
//! ```
//! use gloo_core::load::{parse_str, Format};
//! use gloo_core::model::{Kind, ResourceRef};
//! use gloo_core::resolve::{resolve, ListenerKind, ResolveCache, RouteModelAction};
//! use gloo_core::snapshot::ConfigSnapshot;
//! use gloo_core::status::{Reports, State};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//!
//! let yaml = r#"
//! apiVersion: gateway.solo.io/v1
//! kind: VirtualService
//! metadata:
//!   name: example
//!   namespace: gloo-system
//! spec:
//!   virtualHost:
//!     domains:
//!     - example.com
//!     routes:
//!     - matchers:
//!       - prefix: /a
//!       delegateAction:
//!         ref:
//!           name: a-routes
//!           namespace: gloo-system
//! ---
//! apiVersion: gateway.solo.io/v1
//! kind: RouteTable
//! metadata:
//!   name: a-routes
//!   namespace: gloo-system
//! spec:
//!   routes:
//!   - matchers:
//!     - prefix: /a/1
//!     routeAction:
//!       single:
//!         upstream:
//!           name: foo
//!           namespace: gloo-system
//!   - matchers:
//!     - prefix: /b
//!     directResponseAction:
//!       status: 200
//! ---
//! apiVersion: gloo.solo.io/v1
//! kind: Upstream
//! metadata:
//!   name: foo
//!   namespace: gloo-system
//! spec:
//!   static:
//!     hosts:
//!     - addr: 127.0.0.1
//!       port: 8081
//! "#;
//! let parsed = parse_str(yaml, "example.yaml", Format::Yaml);
//! assert!(parsed.is_ok(), "{:?}", parsed.errors);
//! let mut reports = Reports::default();
//! let snapshot = ConfigSnapshot::from_resources(&parsed.resources, &mut reports);
//! // Keep the cache for the next run: it holds the last accepted versions.
//! let mut cache = ResolveCache::default();
//! let proxies = resolve(&snapshot, &mut cache, &mut reports);
//!
//! // No Gateway: Gloo's default ones apply, an HTTP listener on 8080 among them.
//! let proxy = &proxies["gateway-proxy"];
//! let listener = proxy.listeners.iter().find(|l| l.bind_port == 8080).ok_or("no :8080")?;
//! let ListenerKind::Http { virtual_hosts, .. } = &listener.kind else {
//!     panic!("expected an HTTP listener");
//! };
//! let host = &virtual_hosts[0];
//! assert_eq!(host.domains, ["example.com"]);
//!
//! // The delegated route is flattened in; `/b` is dropped, and the RouteTable says why.
//! assert_eq!(host.routes.len(), 1);
//! let route = &host.routes[0];
//! assert_eq!(route.matcher.prefix.as_deref(), Some("/a/1"));
//! assert!(matches!(route.action, RouteModelAction::Route(_)));
//! assert_eq!(
//!     route.source,
//!     "VirtualService gloo-system.example routes[0] > RouteTable gloo-system.a-routes routes[0]"
//! );
//! let table = ResourceRef::new("gloo-system", "a-routes");
//! let status = reports.get(Kind::RouteTable, &table).ok_or("no status")?;
//! assert_eq!(status.state, State::Warning);
//! assert_eq!(
//!     status.warnings,
//!     ["spec.routes[1].matchers[0]: prefix \"/b\" does not start with the delegating prefix \
//!       \"/a\"; the route is dropped"]
//! );
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::model::gateway::GatewaySpec;
use crate::model::options::{RouteOptions, VirtualHostOptions};
use crate::model::route_table::RouteTableSpec;
use crate::model::routing::{
    DelegateAction, DelegateTarget, Destination, DestinationTarget, DirectResponseAction,
    ExpressionOperator, Matcher, PathMatcher, RedirectAction, Route, RouteAction, RouteActionRef,
    RouteDestination, RouteTableSelector, SelectorExpression,
};
use crate::model::ssl::SslConfig;
use crate::model::virtual_service::{VirtualHost, VirtualServiceSpec};
use crate::model::{Kind, Object, ResourceRef};
use crate::snapshot::{Collection, ConfigSnapshot, Entry};
use crate::status::{Reports, ResourceKey};

/// The status line of a rejected resource whose last accepted version keeps serving.
const KEEPS_SERVING: &str = "the last accepted version keeps serving";

/// The proxy name a Gateway serves when its `proxyNames` is empty (one constant, the model's).
pub use crate::model::gateway::DEFAULT_PROXY_NAME;

/// One proxy's resolved configuration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProxyModel {
    /// The proxy name (`gateway-proxy`).
    pub name: String,
    /// Listeners, one per Gateway, in bind order.
    pub listeners: Vec<ListenerModel>,
}

/// One listener: a Gateway's address, port and hosts.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerModel {
    /// `listener-<address>-<port>`, as Gloo names it.
    pub name: String,
    /// The Gateway it came from.
    pub gateway: ResourceRef,
    /// Address to bind (`::` by default).
    pub bind_address: String,
    /// Port to bind.
    pub bind_port: u32,
    /// Whether connections start with a PROXY protocol header.
    pub use_proxy_proto: bool,
    /// The Gateway spec (listener and HTTP options are read from it at translation).
    pub spec: Arc<GatewaySpec>,
    /// What the listener serves.
    pub kind: ListenerKind,
}

/// What a listener serves.
#[derive(Debug, Clone, PartialEq)]
pub enum ListenerKind {
    /// HTTP (plain, or TLS terminated with per-virtual-host certificates when `ssl`).
    Http {
        /// Whether this is an SSL gateway.
        ssl: bool,
        /// Virtual hosts, ordered by VirtualService namespace and name.
        virtual_hosts: Vec<Arc<VirtualHostModel>>,
    },
    /// TCP proxying (`tcpGateway`).
    Tcp,
    /// A `hybridGateway`: one filter chain per matched gateway, chosen by client address
    /// (and SNI when the matcher terminates TLS).
    Hybrid {
        /// The matched gateways, in order.
        chains: Vec<MatchedChain>,
    },
}

/// One matched gateway of a hybrid gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchedChain {
    /// Position in `matchedGateways` (names the chain and its route configuration).
    pub index: usize,
    /// Client address ranges the chain serves (all when empty).
    pub source_prefix_ranges: Vec<crate::model::gateway::CidrRange>,
    /// TLS terminated with this certificate, when the matcher has an `sslConfig`.
    pub ssl: Option<SslConfig>,
    /// What the chain serves.
    pub kind: MatchedChainKind,
}

/// What a matched gateway serves.
#[derive(Debug, Clone, PartialEq)]
pub enum MatchedChainKind {
    /// HTTP virtual hosts.
    Http {
        /// The matched `httpGateway` (its options configure the connection manager).
        gateway: Box<crate::model::gateway::HttpGateway>,
        /// Virtual hosts, ordered by VirtualService namespace and name.
        virtual_hosts: Vec<Arc<VirtualHostModel>>,
    },
    /// TCP hosts.
    Tcp(crate::model::gateway::TcpGateway),
}

impl ListenerModel {
    /// The route configurations this listener reads over RDS, each with the `httpGateway`
    /// whose connection manager reads it (its options shape the virtual hosts too, e.g. the
    /// local rate limit flags).
    pub fn http_route_configs(&self) -> Vec<HttpRouteConfig<'_>> {
        match &self.kind {
            ListenerKind::Http { virtual_hosts, .. } => vec![HttpRouteConfig {
                name: format!("{}-routes", self.name),
                gateway: self.spec.http_gateway.as_ref(),
                virtual_hosts: virtual_hosts.as_slice(),
            }],
            ListenerKind::Tcp => Vec::new(),
            ListenerKind::Hybrid { chains } => chains
                .iter()
                .filter_map(|chain| match &chain.kind {
                    MatchedChainKind::Http {
                        gateway,
                        virtual_hosts,
                    } => Some(HttpRouteConfig {
                        name: format!("{}-routes-{}", self.name, chain.index),
                        gateway: Some(gateway.as_ref()),
                        virtual_hosts: virtual_hosts.as_slice(),
                    }),
                    MatchedChainKind::Tcp(_) => None,
                })
                .collect(),
        }
    }

    /// Whether the listener's HTTP traffic arrives over TLS (an SSL gateway, or a hybrid
    /// gateway whose HTTP chains terminate TLS).
    pub fn is_tls(&self) -> bool {
        match &self.kind {
            ListenerKind::Http { ssl, .. } => *ssl,
            ListenerKind::Tcp => false,
            ListenerKind::Hybrid { chains } => chains.iter().any(|c| c.ssl.is_some()),
        }
    }

    /// The TCP hosts this listener proxies.
    pub fn tcp_hosts(&self) -> Vec<&crate::model::gateway::TcpHost> {
        match &self.kind {
            ListenerKind::Tcp => self
                .spec
                .tcp_gateway
                .iter()
                .flat_map(|t| &t.tcp_hosts)
                .collect(),
            ListenerKind::Http { .. } => Vec::new(),
            ListenerKind::Hybrid { chains } => chains
                .iter()
                .filter_map(|c| match &c.kind {
                    MatchedChainKind::Tcp(t) => Some(&t.tcp_hosts),
                    MatchedChainKind::Http { .. } => None,
                })
                .flatten()
                .collect(),
        }
    }
}

/// One route configuration of a listener, with the `httpGateway` that reads it.
#[derive(Debug, Clone)]
pub struct HttpRouteConfig<'a> {
    /// `<listener>-routes`, or `<listener>-routes-<chain>` for a hybrid gateway's HTTP chain.
    pub name: String,
    /// The HTTP gateway whose connection manager reads it (`None` for an HTTP Gateway that
    /// sets no `httpGateway`, which serves with defaults).
    pub gateway: Option<&'a crate::model::gateway::HttpGateway>,
    /// Its virtual hosts, ordered by VirtualService namespace and name.
    pub virtual_hosts: &'a [Arc<VirtualHostModel>],
}

/// A virtual host: one VirtualService with its delegated routes flattened in.
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualHostModel {
    /// `<namespace>_<name>` of the VirtualService.
    pub name: String,
    /// The VirtualService.
    pub source: ResourceRef,
    /// Domains (`*` when the VirtualService lists none).
    pub domains: Vec<String>,
    /// Virtual host options, with `optionsConfigRefs` merged in.
    pub options: VirtualHostOptions,
    /// The VirtualService's TLS config, for SSL gateways.
    pub ssl_config: Option<SslConfig>,
    /// Routes in match order.
    pub routes: Vec<RouteModel>,
    /// Where its options, routes and weighted destinations give the buffer filter a limit
    /// (`bufferPerRoute.buffer`): the resource and field path of each. A limit takes effect
    /// only on a Gateway with the buffer filter (`httpGateway.options.buffer`), so each is
    /// warned about on any other Gateway that serves the virtual host.
    pub buffer_limits: Vec<(ResourceKey, String)>,
    /// Its routes that forward dynamically (`routeAction.dynamicForwardProxy`): the resource
    /// and field path of each. They need a Gateway with a dynamic forward proxy
    /// (`httpGateway.options.dynamicForwardProxy`), so each is warned about on any other
    /// Gateway that serves the virtual host (it answers 503 there).
    pub forward_proxy_routes: Vec<(ResourceKey, String)>,
}

/// One Envoy route: a single matcher and what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteModel {
    /// A stable, unique name within the virtual host.
    pub name: String,
    /// Where it came from: `VirtualService ns.vs routes[1] > RouteTable ns.rt routes[0]`.
    pub source: String,
    /// The matcher (inherited parts already applied).
    pub matcher: Matcher,
    /// The action.
    pub action: RouteModelAction,
    /// Options after delegation and `optionsConfigRefs` merges (boxed: most routes set few).
    pub options: Arc<RouteOptions>,
    /// Warnings about this route (missing upstreams).
    pub warnings: Vec<String>,
    /// Gloo's name for the route in its Proxy when it or a route delegating to it is named
    /// (Gloo leaves it unnamed otherwise): `vs:<namespace>_<virtual service>_route:<name>`,
    /// then `_rt:<namespace>_<route table>_route:<name>` per delegation (`<unnamed-<i>>` for
    /// an unnamed level). Gloo also puts the Gateway and proxy names after `vs:`; gloo does
    /// not, as a virtual host is resolved once for every Gateway that serves it. Basic rate
    /// limits are scoped by it.
    pub gloo_name: Option<String>,
}

/// What a route does.
#[derive(Debug, Clone, PartialEq)]
pub enum RouteModelAction {
    /// Forward to upstreams (shared with the route it comes from).
    Route(Arc<RouteAction>),
    /// Answer with a redirect.
    Redirect(RedirectAction),
    /// Answer directly.
    DirectResponse(DirectResponseAction),
}

/// What resolution keeps between runs: the last accepted version of every Gateway,
/// VirtualService and RouteTable (so a rejected edit keeps the previous version serving), and caches that make a
/// re-run cost only what changed: validation results per resource, compiled-regex checks, and
/// resolved virtual hosts with the statuses they reported. Keep one per control plane and pass
/// it to every [`resolve`].
#[derive(Debug, Clone, Default)]
pub struct ResolveCache {
    virtual_services: HashMap<ResourceRef, Arc<Object<VirtualServiceSpec>>>,
    route_tables: HashMap<ResourceRef, Arc<Object<RouteTableSpec>>>,
    regexes: HashMap<String, Result<(), String>>,
    validated_virtual_services:
        HashMap<ResourceRef, (Arc<Object<VirtualServiceSpec>>, Vec<String>)>,
    validated_route_tables: HashMap<ResourceRef, (Arc<Object<RouteTableSpec>>, Vec<String>)>,
    gateways: HashMap<ResourceRef, Arc<Object<GatewaySpec>>>,
    hosts: HashMap<ResourceRef, CachedHost>,
    environment: Option<Environment>,
    /// How many virtual hosts the last run resolved anew (the others came from the cache).
    pub virtual_hosts_resolved: usize,
}

impl ResolveCache {
    /// Whether a last accepted version of this VirtualService is held.
    pub fn has_virtual_service(&self, reference: &ResourceRef) -> bool {
        self.virtual_services.contains_key(reference)
    }
}

/// A resolved virtual host and the statuses its resolution reported, replayed on reuse.
#[derive(Debug, Clone)]
struct CachedHost {
    object: Arc<Object<VirtualServiceSpec>>,
    host: Arc<VirtualHostModel>,
    notes: Vec<Note>,
}

/// One status line reported while resolving a virtual host.
#[derive(Debug, Clone)]
struct Note {
    key: ResourceKey,
    error: bool,
    message: String,
}

/// Everything a virtual host's resolution reads besides its own VirtualService: when any of it
/// changes, cached virtual hosts are resolved again.
#[derive(Debug, Clone)]
struct Environment {
    route_tables: Vec<(ResourceRef, Arc<Object<RouteTableSpec>>)>,
    virtual_host_options: Vec<(
        ResourceRef,
        Arc<Object<crate::model::options::VirtualHostOptionSpec>>,
    )>,
    route_options: Vec<(
        ResourceRef,
        Arc<Object<crate::model::options::RouteOptionSpec>>,
    )>,
    upstream_groups: Vec<(
        ResourceRef,
        Arc<Object<crate::model::upstream_group::UpstreamGroupSpec>>,
    )>,
    upstreams: Vec<ResourceRef>,
    /// AuthConfigs by name (option resources naming a missing one are refused).
    auth_configs: Vec<ResourceRef>,
    /// The `aws` upstreams (routes to Lambda functions are checked against their functions).
    aws_upstreams: Vec<(
        ResourceRef,
        Arc<Object<crate::model::upstream::UpstreamSpec>>,
    )>,
    invalid_route_response: Option<DirectResponseAction>,
    /// The option resources refused over their `headerSecretRef`s (see
    /// [`faulty_header_secrets`]).
    faulty_header_secrets: BTreeSet<ResourceKey>,
    /// The ConfigMaps of the option resources' WAF rules (an option resource naming a
    /// missing one is refused).
    option_artifacts: crate::translate::waf::ArtifactsRead,
}

impl Environment {
    fn same_as(&self, other: &Environment) -> bool {
        fn same<S: PartialEq>(
            a: &[(ResourceRef, Arc<Object<S>>)],
            b: &[(ResourceRef, Arc<Object<S>>)],
        ) -> bool {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|((ra, oa), (rb, ob))| ra == rb && same_object(oa, ob))
        }
        same(&self.route_tables, &other.route_tables)
            && same(&self.virtual_host_options, &other.virtual_host_options)
            && same(&self.route_options, &other.route_options)
            && same(&self.upstream_groups, &other.upstream_groups)
            && self.upstreams == other.upstreams
            && self.auth_configs == other.auth_configs
            && same(&self.aws_upstreams, &other.aws_upstreams)
            && self.invalid_route_response == other.invalid_route_response
            && self.faulty_header_secrets == other.faulty_header_secrets
            && crate::translate::waf::same_artifacts(
                &self.option_artifacts,
                &other.option_artifacts,
            )
    }
}

fn objects<S: Clone>(collection: &Collection<S>) -> Vec<(ResourceRef, Arc<Object<S>>)> {
    collection
        .iter()
        .map(|(r, e)| (r.clone(), e.object.clone()))
        .collect()
}

/// Equal objects, comparing pointers first (unchanged resources share their `Arc`).
fn same_object<S: PartialEq>(a: &Arc<Object<S>>, b: &Arc<Object<S>>) -> bool {
    Arc::ptr_eq(a, b) || a == b
}

/// Resolves every proxy in `snapshot`, reporting into `reports` and updating `lkg`.
pub fn resolve(
    snapshot: &ConfigSnapshot,
    cache: &mut ResolveCache,
    reports: &mut Reports,
) -> BTreeMap<String, ProxyModel> {
    cache.virtual_hosts_resolved = 0;
    let mut resolver = Resolver::new(snapshot, cache, reports);
    let proxies = resolver.resolve_gateways();
    resolver.finish();
    proxies
}

struct Resolver<'a> {
    snapshot: &'a ConfigSnapshot,
    lkg: &'a mut ResolveCache,
    reports: &'a mut Reports,
    /// Status lines of the virtual host being resolved, kept with it in the cache.
    journal: Option<Vec<Note>>,
    /// Settings' `gloo.invalidConfigPolicy`: what invalid routes answer instead of being
    /// dropped or failing with 503.
    invalid_route_response: Option<DirectResponseAction>,
    /// The VirtualService and RouteTable versions in force (current, or last known good).
    virtual_services: Collection<VirtualServiceSpec>,
    route_tables: Collection<RouteTableSpec>,
    /// Resolved virtual hosts, shared by every gateway that selects the VirtualService.
    resolved: HashMap<ResourceRef, Option<Arc<VirtualHostModel>>>,
    /// The options of routes that set none, shared by all of them.
    no_options: Arc<RouteOptions>,
    /// The buffer limits of the virtual host being resolved (see
    /// [`VirtualHostModel::buffer_limits`]).
    buffer_limits: Vec<(ResourceKey, String)>,
    /// The dynamic forward proxy routes of the virtual host being resolved (see
    /// [`VirtualHostModel::forward_proxy_routes`]).
    forward_proxy_routes: Vec<(ResourceKey, String)>,
    /// The option resources refused over their `headerSecretRef`s (see
    /// [`faulty_header_secrets`]).
    faulty_header_secrets: BTreeSet<ResourceKey>,
}

/// A field path such as `spec.virtualHost.routes[3].matchers[0]`, written out only when a
/// message needs it: validation visits every route, and formatting every path up front cost
/// more than the checks themselves.
#[derive(Clone, Copy)]
pub(crate) enum FieldPath<'a> {
    /// The path's first segment.
    Root(&'a str),
    /// `parent.field`.
    Field(&'a FieldPath<'a>, &'a str),
    /// `parent[index]`.
    Index(&'a FieldPath<'a>, usize),
    /// `parent.field[index]`.
    FieldIndex(&'a FieldPath<'a>, &'a str, usize),
}

impl std::fmt::Display for FieldPath<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldPath::Root(root) => f.write_str(root),
            FieldPath::Field(parent, field) => write!(f, "{parent}.{field}"),
            FieldPath::Index(parent, index) => write!(f, "{parent}[{index}]"),
            FieldPath::FieldIndex(parent, field, index) => write!(f, "{parent}.{field}[{index}]"),
        }
    }
}

impl<'a> Resolver<'a> {
    fn new(
        snapshot: &'a ConfigSnapshot,
        lkg: &'a mut ResolveCache,
        reports: &'a mut Reports,
    ) -> Self {
        let mut resolver = Resolver {
            snapshot,
            lkg,
            reports,
            journal: None,
            invalid_route_response: invalid_route_response(snapshot),
            virtual_services: Collection::new(),
            route_tables: Collection::new(),
            resolved: HashMap::new(),
            no_options: Arc::default(),
            buffer_limits: Vec::new(),
            forward_proxy_routes: Vec::new(),
            faulty_header_secrets: faulty_header_secrets(snapshot),
        };
        resolver.select_versions();
        let environment = Environment {
            route_tables: objects(&resolver.route_tables),
            virtual_host_options: objects(&snapshot.virtual_host_options),
            route_options: objects(&snapshot.route_options),
            upstream_groups: objects(&snapshot.upstream_groups),
            upstreams: snapshot.upstreams.keys().cloned().collect(),
            auth_configs: snapshot.auth_configs.keys().cloned().collect(),
            aws_upstreams: snapshot
                .upstreams
                .iter()
                .filter(|(_, e)| e.object.spec.aws.is_some())
                .map(|(r, e)| (r.clone(), e.object.clone()))
                .collect(),
            invalid_route_response: resolver.invalid_route_response.clone(),
            faulty_header_secrets: resolver.faulty_header_secrets.clone(),
            option_artifacts: crate::translate::waf::artifacts_read(
                snapshot,
                snapshot
                    .virtual_host_options
                    .values()
                    .filter_map(|e| e.object.spec.options.waf.as_deref())
                    .chain(
                        snapshot
                            .route_options
                            .values()
                            .filter_map(|e| e.object.spec.options.waf.as_deref()),
                    ),
            ),
        };
        let unchanged = resolver
            .lkg
            .environment
            .as_ref()
            .is_some_and(|previous| previous.same_as(&environment));
        if !unchanged {
            resolver.lkg.hosts.clear();
            resolver.lkg.environment = Some(environment);
        }
        resolver
    }

    /// How a refused route answers: Settings' invalid route response, else 503.
    fn refusal(&self) -> DirectResponseAction {
        self.invalid_route_response
            .clone()
            .unwrap_or(DirectResponseAction {
                status: 503,
                body: String::new(),
            })
    }

    /// Reports a warning, kept with the virtual host being resolved.
    fn note(&mut self, key: &ResourceKey, message: impl Into<String>) {
        self.record(key, false, message);
    }

    /// Reports an error, kept with the virtual host being resolved.
    fn note_error(&mut self, key: &ResourceKey, message: impl Into<String>) {
        self.record(key, true, message);
    }

    /// Reports a status line, and keeps it with the virtual host being resolved.
    fn record(&mut self, key: &ResourceKey, error: bool, message: impl Into<String>) {
        let message = message.into();
        if error {
            self.reports.error(key, message.clone());
        } else {
            self.reports.warn(key, message.clone());
        }
        if let Some(journal) = &mut self.journal {
            journal.push(Note {
                key: key.clone(),
                error,
                message,
            });
        }
    }

    fn check_regex(&mut self, pattern: &str) -> Result<(), String> {
        // Most route regexes are valid by their shape alone: no parse (about 40 allocations
        // each) and no cache entry (a copy of the pattern kept per distinct regex).
        if plainly_valid_regex(pattern) {
            return Ok(());
        }
        if let Some(known) = self.lkg.regexes.get(pattern) {
            return known.clone();
        }
        if self.lkg.regexes.len() > 100_000 {
            self.lkg.regexes.clear();
        }
        let checked = parse_regex(pattern);
        self.lkg
            .regexes
            .insert(pattern.to_string(), checked.clone());
        checked
    }

    /// Checks every VirtualService and RouteTable on its own; an invalid one is replaced by its
    /// last accepted version when there is one.
    fn select_versions(&mut self) {
        let snapshot = self.snapshot;
        for (reference, entry) in &snapshot.virtual_services {
            let key = ResourceKey::new(Kind::VirtualService, reference.clone());
            let errors = match self.lkg.validated_virtual_services.get(reference) {
                Some((object, errors)) if same_object(object, &entry.object) => errors.clone(),
                _ => {
                    let errors = self.validate_virtual_service(&entry.object.spec);
                    self.lkg
                        .validated_virtual_services
                        .insert(reference.clone(), (entry.object.clone(), errors.clone()));
                    errors
                }
            };
            let mut errors = errors;
            errors.extend(self.check_ssl_secret(reference, &entry.object.spec));
            errors.extend(
                self.check_header_secrets_of_virtual_service(reference, &entry.object.spec),
            );
            // Global rate limits need the rate limit server and the RateLimitConfigs they
            // name: checked on every run, as those change on their own.
            errors.extend(crate::translate::ratelimit::check_virtual_service(
                snapshot,
                &entry.object.spec,
            ));
            // So do the AuthConfigs ext auth options name, and the ConfigMaps of WAF rules.
            errors.extend(crate::translate::extauth::check_virtual_service(
                snapshot,
                &entry.object.spec,
            ));
            errors.extend(crate::translate::waf::check_virtual_service(
                snapshot,
                &entry.object.spec,
            ));
            put_in_force(
                &key,
                entry,
                errors,
                self.lkg.virtual_services.get(reference),
                &mut self.virtual_services,
                self.reports,
            );
        }
        for (reference, entry) in &snapshot.route_tables {
            let key = ResourceKey::new(Kind::RouteTable, reference.clone());
            let errors = match self.lkg.validated_route_tables.get(reference) {
                Some((object, errors)) if same_object(object, &entry.object) => errors.clone(),
                _ => {
                    let errors = self.validate_routes(&entry.object.spec.routes, "spec.routes");
                    self.lkg
                        .validated_route_tables
                        .insert(reference.clone(), (entry.object.clone(), errors.clone()));
                    errors
                }
            };
            let mut errors = errors;
            errors.extend(self.check_header_secrets(
                &entry.object.spec.routes,
                reference.namespace_or(crate::model::DEFAULT_NAMESPACE),
                "spec.routes",
            ));
            errors.extend(crate::translate::ratelimit::check_routes(
                snapshot,
                &entry.object.spec.routes,
                "spec.routes",
            ));
            errors.extend(crate::translate::extauth::check_routes(
                snapshot,
                &entry.object.spec.routes,
                "spec.routes",
            ));
            errors.extend(crate::translate::waf::check_routes(
                snapshot,
                &entry.object.spec.routes,
                "spec.routes",
            ));
            put_in_force(
                &key,
                entry,
                errors,
                self.lkg.route_tables.get(reference),
                &mut self.route_tables,
                self.reports,
            );
        }
    }

    /// A VirtualService's certificate must exist: it is checked on every run (not cached with
    /// the VirtualService) because the Secret can change on its own.
    fn check_ssl_secret(&self, reference: &ResourceRef, spec: &VirtualServiceSpec) -> Vec<String> {
        let Some(ssl) = &spec.ssl_config else {
            return Vec::new();
        };
        let namespace = reference.namespace_or(crate::model::DEFAULT_NAMESPACE);
        self.check_ssl(ssl, namespace, "spec.sslConfig")
    }

    /// Every `headerSecretRef` must name a Secret holding headers: checked on every run, as
    /// the Secret can change on its own (Gloo rejects the resource otherwise).
    fn check_header_secrets_of_virtual_service(
        &self,
        reference: &ResourceRef,
        spec: &VirtualServiceSpec,
    ) -> Vec<String> {
        let Some(vh) = &spec.virtual_host else {
            return Vec::new();
        };
        let namespace = reference.namespace_or(crate::model::DEFAULT_NAMESPACE);
        let mut errors = Vec::new();
        if let Some(h) = vh
            .options
            .as_ref()
            .and_then(|o| o.header_manipulation.as_deref())
        {
            errors.extend(self.check_header_secret_list(
                h,
                namespace,
                "spec.virtualHost.options.headerManipulation",
            ));
        }
        errors.extend(self.check_header_secrets(&vh.routes, namespace, "spec.virtualHost.routes"));
        errors
    }

    fn check_header_secrets(
        &self,
        routes: &[crate::model::routing::Route],
        namespace: &str,
        path: &str,
    ) -> Vec<String> {
        use crate::model::routing::RouteDestination;
        let mut errors = Vec::new();
        for (i, route) in routes.iter().enumerate() {
            if let Some(h) = route
                .options
                .as_ref()
                .and_then(|o| o.header_manipulation.as_deref())
            {
                errors.extend(self.check_header_secret_list(
                    h,
                    namespace,
                    &format!("{path}[{i}].options.headerManipulation"),
                ));
            }
            if let Some(Ok(Some(RouteDestination::Multi(m)))) =
                route.route_action.as_ref().map(|a| a.destination())
            {
                for (d, dest) in m.destinations.iter().enumerate() {
                    if let Some(h) = dest
                        .options
                        .as_ref()
                        .and_then(|o| o.header_manipulation.as_ref())
                    {
                        errors.extend(self.check_header_secret_list(
                            h,
                            namespace,
                            &format!("{path}[{i}].routeAction.multi.destinations[{d}].options.headerManipulation"),
                        ));
                    }
                }
            }
        }
        errors
    }

    /// The Secrets of `h`'s `headerSecretRef`s (see [`header_secret_problems`]): missing, or
    /// holding headers Envoy would refuse to add.
    fn check_header_secret_list(
        &self,
        h: &crate::model::headers::HeaderManipulation,
        namespace: &str,
        path: &str,
    ) -> Vec<String> {
        header_secret_problems(
            self.snapshot,
            &h.request_headers_to_add,
            namespace,
            &format!("{path}.requestHeadersToAdd"),
        )
    }

    /// Checks that a downstream `sslConfig` names a certificate and key gloo can serve, and a
    /// CA when it verifies client certificates' names.
    fn check_ssl(&self, ssl: &SslConfig, namespace: &str, path: &str) -> Vec<String> {
        let mut problems = self.check_ssl_secrets(ssl, namespace, path);
        if problems.is_empty()
            && !ssl.verify_subject_alt_name.is_empty()
            && !self.snapshot.has_root_ca(ssl.ssl_secrets(), namespace)
        {
            problems.push(format!(
                "{path}.verifySubjectAltName: needs a rootCa to verify client certificates against"
            ));
        }
        problems
    }

    fn check_ssl_secrets(&self, ssl: &SslConfig, namespace: &str, path: &str) -> Vec<String> {
        use crate::model::ssl::SslSecretsRef;
        match ssl.ssl_secrets() {
            Err(e) => vec![format!("{path}: {e}")],
            Ok(None) => vec![format!("{path}: set one of secretRef, sslFiles, sds")],
            Ok(Some(SslSecretsRef::SecretRef(secret))) => {
                match self.snapshot.tls_secret(secret, namespace) {
                    Ok(tls) if tls.cert_chain.is_none() => vec![format!(
                        "{path}.secretRef: Secret {} has no tls.crt and tls.key to serve",
                        secret.resolved(namespace)
                    )],
                    Ok(_) => Vec::new(),
                    Err(e) => vec![format!("{path}.secretRef: {e}")],
                }
            }
            Ok(Some(SslSecretsRef::SslFiles(files))) => {
                if files.tls_cert.is_none() || files.tls_key.is_none() {
                    vec![format!("{path}.sslFiles: tlsCert and tlsKey are required")]
                } else {
                    Vec::new()
                }
            }
            Ok(Some(SslSecretsRef::Sds(_))) => vec![format!(
                "{path}.sds: SDS certificates are not supported yet; use secretRef or sslFiles"
            )],
        }
    }

    /// Remembers what was accepted, forgets what was deleted.
    fn finish(&mut self) {
        let snapshot = self.snapshot;
        let reports = &*self.reports;
        let accepted =
            |kind: Kind, r: &ResourceRef| reports.get(kind, r).is_some_and(|s| s.errors.is_empty());
        self.lkg
            .virtual_services
            .retain(|r, _| snapshot.virtual_services.contains_key(r));
        self.lkg
            .route_tables
            .retain(|r, _| snapshot.route_tables.contains_key(r));
        self.lkg
            .validated_virtual_services
            .retain(|r, _| snapshot.virtual_services.contains_key(r));
        self.lkg
            .validated_route_tables
            .retain(|r, _| snapshot.route_tables.contains_key(r));
        self.lkg
            .gateways
            .retain(|r, _| snapshot.gateways.contains_key(r));
        let in_force = &self.virtual_services;
        self.lkg.hosts.retain(|r, _| in_force.contains_key(r));
        for (r, e) in &snapshot.virtual_services {
            if accepted(Kind::VirtualService, r) {
                self.lkg
                    .virtual_services
                    .insert(r.clone(), e.object.clone());
            }
        }
        for (r, e) in &snapshot.route_tables {
            if accepted(Kind::RouteTable, r) {
                self.lkg.route_tables.insert(r.clone(), e.object.clone());
            }
        }
    }

    // ----- validation of one resource on its own -------------------------------------------

    fn validate_virtual_service(&mut self, spec: &VirtualServiceSpec) -> Vec<String> {
        let Some(vh) = &spec.virtual_host else {
            return vec!["spec.virtualHost: required".to_string()];
        };
        let mut errors = Vec::new();
        for (i, domain) in vh.domains.iter().enumerate() {
            if let Err(e) = check_domain(domain) {
                errors.push(format!("spec.virtualHost.domains[{i}]: {e}"));
            }
        }
        if let Some(options) = &vh.options {
            errors.extend(
                options
                    .local_ratelimit()
                    .validate("spec.virtualHost.options"),
            );
            errors.extend(unenforced(options.unenforced(), "spec.virtualHost.options"));
            errors.extend(crate::translate::ratelimit::validate_host(
                options,
                "spec.virtualHost.options",
            ));
            errors.extend(crate::translate::transformation::validate(
                crate::translate::transformation::Options::host(options),
                "spec.virtualHost.options",
            ));
            errors.extend(crate::translate::waf::validate(
                options.waf.as_deref(),
                "spec.virtualHost.options",
            ));
            for (path, extension) in
                crate::translate::jwt::host_extensions(options, "spec.virtualHost.options")
            {
                errors.extend(crate::translate::jwt::validate(extension, &path));
            }
            errors.extend(crate::translate::extauth::validate(
                options.extauth.as_deref(),
                "spec.virtualHost.options",
            ));
            errors.extend(crate::translate::http_filters::per_route_problems(
                options.buffer_per_route.as_ref(),
                "spec.virtualHost.options",
            ));
            errors.extend(header_manipulation_problems(
                options.header_manipulation.as_deref(),
                "spec.virtualHost.options",
            ));
        }
        errors.extend(self.validate_routes(&vh.routes, "spec.virtualHost.routes"));
        errors
    }

    fn validate_routes(&mut self, routes: &[Route], path: &str) -> Vec<String> {
        let mut errors = Vec::new();
        let base = FieldPath::Root(path);
        for (i, route) in routes.iter().enumerate() {
            let path = FieldPath::Index(&base, i);
            for (j, matcher) in route.matchers.iter().enumerate() {
                self.validate_matcher(
                    matcher,
                    &FieldPath::FieldIndex(&path, "matchers", j),
                    &mut errors,
                );
            }
            if let (
                Ok(Some(RouteActionRef::Redirect(_) | RouteActionRef::DirectResponse(_))),
                Some(options),
            ) = (route.action(), route.options.as_deref())
            {
                errors.extend(crate::translate::ratelimit::without_route_action(
                    options,
                    &format!("{path}.options"),
                ));
            }
            match route.action() {
                Err(e) => errors.push(format!("{path}: {e}")),
                Ok(None) => errors.push(format!(
                    "{path}: route has no action: set one of routeAction, redirectAction, directResponseAction, delegateAction"
                )),
                Ok(Some(RouteActionRef::Route(action))) => {
                    self.validate_route_action(action, &FieldPath::Field(&path, "routeAction"), &mut errors)
                }
                Ok(Some(RouteActionRef::Redirect(redirect))) => {
                    if let Err(e) = redirect.path_rewrite() {
                        errors.push(format!("{path}.redirectAction: {e}"));
                    }
                    if let Ok(Some(crate::model::routing::RedirectPath::Regex(rr))) =
                        redirect.path_rewrite()
                    {
                        let pattern = rr.pattern.as_ref().map(|p| p.regex.clone()).unwrap_or_default();
                        if let Err(e) = self.check_regex(&pattern) {
                            errors.push(format!("{path}.redirectAction.regexRewrite.pattern.regex: {e}"));
                        }
                    }
                }
                Ok(Some(RouteActionRef::DirectResponse(response))) => {
                    if !(100..=599).contains(&response.status) {
                        errors.push(format!(
                            "{path}.directResponseAction.status: {} is not an HTTP status code (100-599)",
                            response.status
                        ));
                    }
                }
                Ok(Some(RouteActionRef::Delegate(delegate))) => {
                    if let Err(e) = delegate.target() {
                        errors.push(format!("{path}.delegateAction: {e}"));
                    } else if let Ok(None) = delegate.target() {
                        errors.push(format!(
                            "{path}.delegateAction: set `ref` or `selector` to name the route tables"
                        ));
                    }
                    if route.matchers.len() > 1 {
                        errors.push(format!(
                            "{path}.matchers: a route that delegates may have at most one matcher, found {}",
                            route.matchers.len()
                        ));
                    }
                    if let Some(m) = route.matchers.first() {
                        match m.path() {
                            Ok(None) | Ok(Some(PathMatcher::Prefix(_))) => {}
                            Ok(Some(_)) => errors.push(format!(
                                "{path}.matchers[0]: a route that delegates must match a path prefix"
                            )),
                            Err(_) => {}
                        }
                    }
                }
            }
            if let Some(options) = &route.options {
                self.validate_route_options(
                    options,
                    &FieldPath::Field(&path, "options"),
                    &mut errors,
                );
            }
            errors.extend(crate::translate::extauth::validate_route(route, path));
        }
        errors
    }

    fn validate_matcher(
        &mut self,
        matcher: &Matcher,
        path: &FieldPath<'_>,
        errors: &mut Vec<String>,
    ) {
        match matcher.path() {
            Err(e) => errors.push(format!("{path}: {e}")),
            Ok(Some(PathMatcher::Regex(r))) => {
                if let Err(e) = self.check_regex(r) {
                    errors.push(format!("{path}.regex: {e}"));
                }
            }
            Ok(Some(PathMatcher::Prefix(p))) | Ok(Some(PathMatcher::Exact(p)))
                if !p.starts_with('/') =>
            {
                errors.push(format!("{path}: path {p:?} must start with '/'"));
            }
            _ => {}
        }
        for (k, header) in matcher.headers.iter().enumerate() {
            if header.name.is_empty() {
                errors.push(format!("{path}.headers[{k}].name: required"));
            }
            if header.regex {
                if let Err(e) = self.check_regex(&header.value) {
                    errors.push(format!("{path}.headers[{k}].value: {e}"));
                }
            }
        }
        for (k, query) in matcher.query_parameters.iter().enumerate() {
            if query.name.is_empty() {
                errors.push(format!("{path}.queryParameters[{k}].name: required"));
            }
            if query.regex {
                if let Err(e) = self.check_regex(&query.value) {
                    errors.push(format!("{path}.queryParameters[{k}].value: {e}"));
                }
            }
        }
        for (k, method) in matcher.methods.iter().enumerate() {
            if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
                errors.push(format!(
                    "{path}.methods[{k}]: {method:?} is not an HTTP method"
                ));
            }
        }
    }

    fn validate_route_action(
        &mut self,
        action: &RouteAction,
        path: &FieldPath<'_>,
        errors: &mut Vec<String>,
    ) {
        match action.destination() {
            Err(e) => errors.push(format!("{path}: {e}")),
            Ok(None) => errors.push(format!(
                "{path}: no destination: set one of single, multi, upstreamGroup, clusterHeader, dynamicForwardProxy"
            )),
            Ok(Some(RouteDestination::Single(d))) => {
                validate_destination(d, &FieldPath::Field(path, "single"), errors)
            }
            Ok(Some(RouteDestination::Multi(multi))) => {
                if multi.destinations.is_empty() {
                    errors.push(format!(
                        "{path}.multi.destinations: at least one destination is required"
                    ));
                }
                let mut total: u64 = 0;
                for (i, wd) in multi.destinations.iter().enumerate() {
                    total += u64::from(wd.weight.unwrap_or(0));
                    match &wd.destination {
                        Some(d) => {
                            let destinations = FieldPath::Field(path, "multi");
                            let destination =
                                FieldPath::FieldIndex(&destinations, "destinations", i);
                            validate_destination(
                                d,
                                &FieldPath::Field(&destination, "destination"),
                                errors,
                            )
                        }
                        None => errors.push(format!(
                            "{path}.multi.destinations[{i}].destination: required"
                        )),
                    }
                    errors.extend(crate::translate::transformation::validate(
                        crate::translate::transformation::Options::weighted(wd.options.as_ref()),
                        format!("{path}.multi.destinations[{i}].options"),
                    ));
                    errors.extend(crate::translate::http_filters::per_route_problems(
                        wd.options
                            .as_ref()
                            .and_then(|o| o.buffer_per_route.as_ref()),
                        format_args!("{path}.multi.destinations[{i}].options"),
                    ));
                    errors.extend(header_manipulation_problems(
                        wd.options
                            .as_ref()
                            .and_then(|o| o.header_manipulation.as_ref()),
                        format_args!("{path}.multi.destinations[{i}].options"),
                    ));
                }
                if !multi.destinations.is_empty() && total == 0 {
                    errors.push(format!(
                        "{path}.multi.destinations: the weights add up to 0; at least one destination needs a positive weight"
                    ));
                }
            }
            Ok(Some(RouteDestination::ClusterHeader(""))) => {
                errors.push(format!("{path}.clusterHeader: must name a header"))
            }
            // Neither rewrite forwards to the request's own host (Gloo refuses that; gloo
            // serves it with an empty per-route config).
            Ok(Some(RouteDestination::DynamicForwardProxy(d))) => {
                if let Err(e) = d.host_rewrite() {
                    errors.push(format!("{path}.dynamicForwardProxy: {e}"));
                }
            }
            Ok(Some(_)) => {}
        }
    }

    fn validate_route_options(
        &mut self,
        options: &RouteOptions,
        path: &FieldPath<'_>,
        errors: &mut Vec<String>,
    ) {
        if let Some(rr) = &options.regex_rewrite {
            let pattern = rr
                .pattern
                .as_ref()
                .map(|p| p.regex.clone())
                .unwrap_or_default();
            if let Err(e) = self.check_regex(&pattern) {
                errors.push(format!("{path}.regexRewrite.pattern.regex: {e}"));
            }
        }
        if let Some(lb_hash) = &options.lb_hash {
            for (i, policy) in lb_hash.hash_policies.iter().enumerate() {
                match policy.key() {
                    Err(e) => errors.push(format!("{path}.lbHash.hashPolicies[{i}]: {e}")),
                    Ok(None) => errors.push(format!(
                        "{path}.lbHash.hashPolicies[{i}]: no key: set one of header, cookie, sourceIp"
                    )),
                    Ok(Some(crate::model::lbhash::HashKey::Header(""))) => errors.push(format!(
                        "{path}.lbHash.hashPolicies[{i}].header: must name a header"
                    )),
                    Ok(Some(crate::model::lbhash::HashKey::Cookie(c))) if c.name.is_empty() => {
                        errors.push(format!(
                            "{path}.lbHash.hashPolicies[{i}].cookie.name: required"
                        ))
                    }
                    Ok(Some(_)) => {}
                }
            }
        }
        if let Some(faults) = &options.faults {
            for (name, pct) in [
                ("abort", faults.abort.as_ref().map(|a| a.percentage)),
                ("delay", faults.delay.as_ref().map(|d| d.percentage)),
            ] {
                if let Some(p) = pct {
                    if !(0.0..=100.0).contains(&p) {
                        errors.push(format!(
                            "{path}.faults.{name}.percentage: {p} is not between 0 and 100"
                        ));
                    }
                }
            }
            if let Some(abort) = &faults.abort {
                if !(200..=599).contains(&abort.http_status) {
                    errors.push(format!(
                        "{path}.faults.abort.httpStatus: {} is not an HTTP status code (200-599)",
                        abort.http_status
                    ));
                }
            }
        }
        errors.extend(options.local_ratelimit().validate(path));
        errors.extend(unenforced(options.unenforced(), path));
        errors.extend(crate::translate::ratelimit::validate_route(options, path));
        errors.extend(crate::translate::transformation::validate(
            crate::translate::transformation::Options::route(options),
            path,
        ));
        errors.extend(crate::translate::waf::validate(
            options.waf.as_deref(),
            path,
        ));
        for (at, extension) in crate::translate::jwt::route_extensions(options, path) {
            errors.extend(crate::translate::jwt::validate(extension, &at));
        }
        errors.extend(crate::translate::http_filters::per_route_problems(
            options.buffer_per_route.as_ref(),
            path,
        ));
        errors.extend(header_manipulation_problems(
            options.header_manipulation.as_deref(),
            path,
        ));
        errors.extend(crate::translate::tracing::route_problems(
            options.tracing.as_deref(),
            &format!("{path}.tracing"),
        ));
        if let Some(retries) = &options.retries {
            for cond in retries
                .retry_on
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
            {
                if !RETRY_ON.contains(&cond) && cond.parse::<u16>().is_err() {
                    errors.push(format!(
                        "{path}.retries.retryOn: unknown retry condition {cond:?} (Envoy accepts {})",
                        RETRY_ON.join(", ")
                    ));
                }
            }
        }
    }

    // ----- gateways ------------------------------------------------------------------------

    fn resolve_gateways(&mut self) -> BTreeMap<String, ProxyModel> {
        let snapshot = self.snapshot;
        let mut proxies: BTreeMap<String, ProxyModel> = BTreeMap::new();
        // (proxy, address, port) -> gateway that took it first.
        let mut bound: HashMap<(String, String, u32), ResourceRef> = HashMap::new();
        let gateways: Vec<(ResourceRef, Entry<GatewaySpec>)> = if snapshot.gateways.is_empty() {
            default_gateways()
        } else {
            snapshot
                .gateways
                .iter()
                .map(|(r, e)| (r.clone(), e.clone()))
                .collect()
        };
        for (reference, entry) in gateways {
            let key = ResourceKey::new(Kind::Gateway, reference.clone());
            let problems = self.gateway_problems(&reference, &entry.object.spec);
            for warning in gateway_unapplied(&entry.object.spec)
                .into_iter()
                .chain(gateway_ignored(&entry.object.spec))
                .chain(gateway_tracing_warnings(
                    snapshot,
                    self.reports,
                    &entry.object.spec,
                ))
            {
                self.reports.warn(&key, warning);
            }
            for warning in
                crate::translate::access_log::cluster_warnings(snapshot, &entry.object.spec)
                    .into_iter()
                    .chain(tcp_gateway_warnings(
                        snapshot,
                        self.reports,
                        &entry.object.spec,
                    ))
            {
                self.reports.warn(&key, warning);
            }
            // A Gateway that is invalid on its own is Rejected; its last accepted version keeps
            // serving, as for VirtualServices. One never accepted is served as far as it can
            // be: not at all if its address, port or HTTP options are bad, without its bad
            // chains if it is a hybrid gateway.
            // What is served below is re-checked only when it is not the version just found
            // valid (a last accepted version whose chain Secret has gone, or a version never
            // accepted), so a valid Gateway is checked once per run.
            let checked = problems.is_empty();
            let object = if checked {
                if !snapshot.gateways.is_empty() {
                    self.lkg
                        .gateways
                        .insert(reference.clone(), entry.object.clone());
                }
                entry.object.clone()
            } else {
                for problem in problems {
                    self.reports.error(&key, problem);
                }
                match self.lkg.gateways.get(&reference) {
                    Some(previous) => {
                        self.reports.error(&key, KEEPS_SERVING);
                        previous.clone()
                    }
                    None => entry.object.clone(),
                }
            };
            let spec = &object.spec;
            let port = spec.bind_port;
            if !checked && (port == 0 || port > 65535) {
                continue;
            }
            let address = if spec.bind_address.is_empty() {
                "::".to_string()
            } else {
                spec.bind_address.clone()
            };
            if !checked && address.parse::<std::net::IpAddr>().is_err() {
                continue;
            }
            if !checked
                && spec.http_gateway.as_ref().is_some_and(|http| {
                    !http_gateway_problems(
                        snapshot,
                        http,
                        "spec.httpGateway",
                        reference.namespace_or(crate::model::DEFAULT_NAMESPACE),
                    )
                    .is_empty()
                })
            {
                continue;
            }
            let kind = if spec.tcp_gateway.is_some() {
                ListenerKind::Tcp
            } else if let Some(hybrid) = &spec.hybrid_gateway {
                if hybrid.delegated_http_gateways.is_some()
                    || hybrid.delegated_tcp_gateways.is_some()
                {
                    self.reports.warn(
                        &key,
                        "spec.hybridGateway: delegatedHttpGateways and delegatedTcpGateways need MatchableHttpGateway resources, which gloo does not read yet; only matchedGateways are served",
                    );
                }
                let mut chains = Vec::new();
                for (index, matched) in hybrid.matched_gateways.iter().enumerate() {
                    if !checked
                        && !self
                            .matched_gateway_problems(&reference, index, matched)
                            .is_empty()
                    {
                        continue;
                    }
                    let matcher = matched.matcher.clone().unwrap_or_default();
                    let kind = match (&matched.http_gateway, &matched.tcp_gateway) {
                        (Some(http), None) => MatchedChainKind::Http {
                            gateway: Box::new(http.clone()),
                            virtual_hosts: self.http_gateway_hosts(&reference, http, false),
                        },
                        (None, Some(tcp)) => MatchedChainKind::Tcp(tcp.clone()),
                        _ => continue,
                    };
                    chains.push(MatchedChain {
                        index,
                        source_prefix_ranges: matcher.source_prefix_ranges.clone(),
                        ssl: matcher.ssl_config.clone(),
                        kind,
                    });
                }
                ListenerKind::Hybrid { chains }
            } else {
                let ssl = spec.ssl;
                let http = spec.http_gateway.clone().unwrap_or_default();
                let virtual_hosts = self.http_gateway_hosts(&reference, &http, ssl);
                ListenerKind::Http { ssl, virtual_hosts }
            };
            let mut proxy_names = spec.proxy_names.clone();
            if proxy_names.is_empty() {
                proxy_names.push(DEFAULT_PROXY_NAME.to_string());
            }
            for proxy in proxy_names {
                let slot = (proxy.clone(), address.clone(), port);
                if let Some(first) = bound.get(&slot) {
                    self.reports.error(
                        &key,
                        format!(
                            "spec.bindPort: {address}:{port} on proxy {proxy} is already bound by Gateway {first}"
                        ),
                    );
                    continue;
                }
                bound.insert(slot, reference.clone());
                let listener = ListenerModel {
                    name: format!("listener-{address}-{port}"),
                    gateway: reference.clone(),
                    bind_address: address.clone(),
                    bind_port: port,
                    use_proxy_proto: spec.use_proxy_proto.unwrap_or(false),
                    spec: Arc::new(spec.clone()),
                    kind: kind.clone(),
                };
                let model = proxies.entry(proxy.clone()).or_insert_with(|| ProxyModel {
                    name: proxy.clone(),
                    listeners: Vec::new(),
                });
                model.listeners.push(listener);
            }
        }
        proxies
    }

    /// Everything wrong with a Gateway on its own: its address and port, its HTTP options and
    /// its hybrid chains. Checked on every run, as a chain's Secret can change on its own.
    fn gateway_problems(&self, reference: &ResourceRef, spec: &GatewaySpec) -> Vec<String> {
        let mut problems = Vec::new();
        let port = spec.bind_port;
        if port == 0 || port > 65535 {
            problems.push(format!("spec.bindPort: {port} is not a port (1-65535)"));
        }
        let address = if spec.bind_address.is_empty() {
            "::"
        } else {
            spec.bind_address.as_str()
        };
        if address.parse::<std::net::IpAddr>().is_err() {
            problems.push(format!(
                "spec.bindAddress: {address:?} is not an IP address"
            ));
        }
        let namespace = reference.namespace_or(crate::model::DEFAULT_NAMESPACE);
        if let Some(http) = &spec.http_gateway {
            problems.extend(http_gateway_problems(
                self.snapshot,
                http,
                "spec.httpGateway",
                namespace,
            ));
        }
        if let Some(tcp) = &spec.tcp_gateway {
            if let Some(options) = &tcp.options {
                problems.extend(unenforced(options.unenforced(), "spec.tcpGateway.options"));
            }
            problems.extend(self.tcp_gateway_problems(tcp, "spec.tcpGateway", namespace));
        }
        problems.extend(crate::translate::access_log::problems(spec));
        if let Some(hybrid) = &spec.hybrid_gateway {
            for (index, matched) in hybrid.matched_gateways.iter().enumerate() {
                problems.extend(self.matched_gateway_problems(reference, index, matched));
            }
        }
        problems
    }

    /// What is wrong with one chain of a hybrid gateway.
    fn matched_gateway_problems(
        &self,
        reference: &ResourceRef,
        index: usize,
        matched: &crate::model::gateway::MatchedGateway,
    ) -> Vec<String> {
        let path = format!("spec.hybridGateway.matchedGateways[{index}]");
        let mut problems = Vec::new();
        // The matcher's certificate terminates an HTTP chain's TLS; a TCP chain's matcher only
        // lends its `sniDomains` (as in Gloo), so its certificate is not read.
        if let Some(ssl) = matched
            .matcher
            .as_ref()
            .and_then(|m| m.ssl_config.as_ref())
            .filter(|_| matched.tcp_gateway.is_none())
        {
            let namespace = reference.namespace_or(crate::model::DEFAULT_NAMESPACE);
            problems.extend(self.check_ssl(ssl, namespace, &format!("{path}.matcher.sslConfig")));
        }
        match (&matched.http_gateway, &matched.tcp_gateway) {
            (Some(http), None) => problems.extend(http_gateway_problems(
                self.snapshot,
                http,
                &format!("{path}.httpGateway"),
                reference.namespace_or(crate::model::DEFAULT_NAMESPACE),
            )),
            (None, Some(tcp)) => {
                if let Some(options) = &tcp.options {
                    problems.extend(unenforced(
                        options.unenforced(),
                        format!("{path}.tcpGateway.options"),
                    ));
                }
                let namespace = reference.namespace_or(crate::model::DEFAULT_NAMESPACE);
                problems.extend(self.tcp_gateway_problems(
                    tcp,
                    &format!("{path}.tcpGateway"),
                    namespace,
                ));
                // Gloo's `validateTcpHosts`: with a matcher naming SNI domains, every host's
                // SNI domain must be one of them.
                let matcher_domains = matched
                    .matcher
                    .as_ref()
                    .and_then(|m| m.ssl_config.as_ref())
                    .map(|ssl| ssl.sni_domains.as_slice())
                    .unwrap_or_default();
                if !matcher_domains.is_empty() {
                    let conflicting: Vec<String> = tcp
                        .tcp_hosts
                        .iter()
                        .flat_map(|host| {
                            host.ssl_config
                                .iter()
                                .flat_map(|ssl| &ssl.sni_domains)
                                .filter(|d| !matcher_domains.contains(d))
                                .map(|d| format!("{}:{d}", host.name))
                        })
                        .collect();
                    if !conflicting.is_empty() {
                        problems.push(format!(
                            "{path}.tcpGateway: gateway has conflicting sni domains [{}]: each host's sniDomains must be among the matcher's",
                            conflicting.join(" ")
                        ));
                    }
                }
            }
            _ => problems.push(format!(
                "{path}: set exactly one of httpGateway, tcpGateway"
            )),
        }
        problems
    }

    /// What Gloo's TCP plugin reports as errors on a TCP gateway at `path` (its listener's
    /// errors): a host without a usable destination or certificate, `tcpProxySettings` it (or
    /// Envoy) refuses. Such a host gets no filter chain. Certificates without a namespace are
    /// in `namespace`.
    fn tcp_gateway_problems(
        &self,
        tcp: &crate::model::gateway::TcpGateway,
        path: &str,
        namespace: &str,
    ) -> Vec<String> {
        use crate::translate::tcp::{host_route, proxy_settings_problems, HostProblem};
        let mut problems: Vec<String> = tcp
            .options
            .as_ref()
            .and_then(|o| o.tcp_proxy_settings.as_ref())
            .map(proxy_settings_problems)
            .unwrap_or_default()
            .into_iter()
            .map(|p| format!("{path}.options.tcpProxySettings.{p}"))
            .collect();
        for (i, host) in tcp.tcp_hosts.iter().enumerate() {
            let at = format!("{path}.tcpHosts[{i}]");
            if let Err(HostProblem::Error(e)) = host_route(self.snapshot, host) {
                problems.push(format!("{at}.{e}"));
            }
            let Some(ssl) = &host.ssl_config else {
                continue;
            };
            match ssl.ssl_secrets() {
                // SNI passthrough: nothing to read.
                Ok(None) if !ssl.sni_domains.is_empty() => {}
                Ok(None) => problems.push(format!(
                    "{at}.sslConfig: set one of secretRef, sslFiles, sds to terminate TLS, or sniDomains to pass it through"
                )),
                _ => problems.extend(self.check_ssl(ssl, namespace, &format!("{at}.sslConfig"))),
            }
        }
        problems
    }

    /// The virtual hosts of one HTTP gateway, with domain conflicts resolved.
    fn http_gateway_hosts(
        &mut self,
        gateway: &ResourceRef,
        http: &crate::model::gateway::HttpGateway,
        ssl: bool,
    ) -> Vec<Arc<VirtualHostModel>> {
        let gateway_key = ResourceKey::new(Kind::Gateway, gateway.clone());
        let gateway_ns = gateway
            .namespace_or(crate::model::DEFAULT_NAMESPACE)
            .to_string();
        let mut selected: Vec<ResourceRef> = Vec::new();
        if !http.virtual_services.is_empty() {
            for (i, r) in http.virtual_services.iter().enumerate() {
                let r = r.resolved(&gateway_ns);
                if self.virtual_services.contains_key(&r) {
                    selected.push(r);
                } else if !self.snapshot.virtual_services.contains_key(&r) {
                    self.reports.warn(
                        &gateway_key,
                        format!(
                            "spec.httpGateway.virtualServices[{i}]: VirtualService {r} not found"
                        ),
                    );
                }
            }
        } else {
            let namespaces = &http.virtual_service_namespaces;
            let all_namespaces = namespaces.is_empty() || namespaces.iter().any(|n| n == "*");
            let expressions = http
                .virtual_service_expressions
                .as_ref()
                .map(|e| e.expressions.clone())
                .unwrap_or_default();
            for (r, entry) in &self.virtual_services {
                let labels = &entry.object.metadata.labels;
                let ns_ok = all_namespaces || namespaces.iter().any(|n| n == r.namespace_or(""));
                let labels_ok = http
                    .virtual_service_selector
                    .iter()
                    .all(|(k, v)| labels.get(k) == Some(v));
                let expressions_ok = expressions.iter().all(|e| expression_matches(e, labels));
                if ns_ok && labels_ok && expressions_ok {
                    selected.push(r.clone());
                }
            }
        }
        selected.sort();
        selected.dedup();
        let mut hosts = Vec::new();
        // domain -> VirtualService that serves it on this gateway.
        let mut claimed: BTreeMap<String, ResourceRef> = BTreeMap::new();
        // Previously accepted VirtualServices claim their domains first, so a newcomer cannot
        // take a domain away from one that is serving.
        selected.sort_by_key(|r| (!self.lkg.virtual_services.contains_key(r), r.clone()));
        for r in selected {
            let Some(entry) = self.virtual_services.get(&r).cloned() else {
                continue;
            };
            if entry.object.spec.ssl_config.is_some() != ssl {
                continue;
            }
            let Some(host) = self.virtual_host(&r) else {
                continue;
            };
            let vs_key = ResourceKey::new(Kind::VirtualService, r.clone());
            // Auth a listener cannot enforce: the VirtualService is not served there (Gloo
            // would serve it without auth).
            if crate::translate::extauth::host_uses(self.snapshot, &host)
                && crate::translate::extauth::server(self.snapshot, Some(http)).is_none()
            {
                self.reports.error(
                    &vs_key,
                    format!(
                        "extauth: Gateway {gateway} has no usable ext auth server (set Settings spec.extauth.extauthzServerRef, or the Gateway's httpGateway.options.extauth, to an existing Upstream); not served there rather than served without auth"
                    ),
                );
                continue;
            }
            let conflicts: Vec<(String, ResourceRef)> = host
                .domains
                .iter()
                .filter_map(|d| claimed.get(d).map(|owner| (d.clone(), owner.clone())))
                .collect();
            if !conflicts.is_empty() {
                for (domain, owner) in conflicts {
                    self.reports.error(
                        &vs_key,
                        format!(
                            "spec.virtualHost.domains: domain {domain:?} is already served by VirtualService {owner} on Gateway {gateway}; domains must be unique per gateway"
                        ),
                    );
                    self.reports.warn(
                        &ResourceKey::new(Kind::VirtualService, owner.clone()),
                        format!("spec.virtualHost.domains: VirtualService {r} also claims domain {domain:?} on Gateway {gateway} and was rejected"),
                    );
                }
                continue;
            }
            for d in &host.domains {
                claimed.insert(d.clone(), r.clone());
            }
            // A buffer limit without the buffer filter configures nothing: Gloo emits it all
            // the same (and so does gloo), but says so.
            if http
                .options
                .as_ref()
                .and_then(|o| o.buffer.as_ref())
                .is_none()
            {
                for (owner, path) in &host.buffer_limits {
                    self.reports.warn(
                        owner,
                        format!("{path}: has no effect on Gateway {gateway}, which sets no httpGateway.options.buffer (Envoy applies a route's buffer limit only where the listener has the buffer filter)"),
                    );
                }
            }
            // A route that forwards dynamically needs the gateway's forward proxy: without one
            // it is served to the missing destination (503), as Gloo serves it to a cluster
            // that does not exist.
            if crate::translate::dynamic_forward_proxy::settings(Some(http)).is_none() {
                for (owner, path) in &host.forward_proxy_routes {
                    self.reports.warn(
                        owner,
                        format!("{path}: Gateway {gateway} lacks httpGateway.options.dynamicForwardProxy, so the route has no dynamic forward proxy to send to there and answers 503"),
                    );
                }
            }
            hosts.push(host);
        }
        hosts.sort_by(|a, b| a.source.cmp(&b.source));
        hosts
    }

    // ----- virtual services and delegation --------------------------------------------------

    fn virtual_host(&mut self, reference: &ResourceRef) -> Option<Arc<VirtualHostModel>> {
        if let Some(done) = self.resolved.get(reference) {
            return done.clone();
        }
        let entry = self.virtual_services.get(reference)?.clone();
        // Unchanged VirtualService in an unchanged environment: reuse the resolved host and
        // replay what its resolution reported.
        if let Some(cached) = self.lkg.hosts.get(reference) {
            if same_object(&cached.object, &entry.object) {
                let cached = cached.clone();
                for note in &cached.notes {
                    self.record(&note.key, note.error, note.message.clone());
                }
                self.resolved
                    .insert(reference.clone(), Some(cached.host.clone()));
                return Some(cached.host);
            }
        }
        self.lkg.virtual_hosts_resolved += 1;
        self.journal = Some(Vec::new());
        let host = self.resolve_virtual_host(reference, &entry);
        let notes = self.journal.take().unwrap_or_default();
        self.lkg.hosts.insert(
            reference.clone(),
            CachedHost {
                object: entry.object.clone(),
                host: host.clone(),
                notes,
            },
        );
        self.resolved.insert(reference.clone(), Some(host.clone()));
        Some(host)
    }

    fn resolve_virtual_host(
        &mut self,
        reference: &ResourceRef,
        entry: &Entry<VirtualServiceSpec>,
    ) -> Arc<VirtualHostModel> {
        let key = ResourceKey::new(Kind::VirtualService, reference.clone());
        let default_host = VirtualHost::default();
        let vh = entry
            .object
            .spec
            .virtual_host
            .as_ref()
            .unwrap_or(&default_host);
        let namespace = reference
            .namespace_or(crate::model::DEFAULT_NAMESPACE)
            .to_string();
        let mut domains: Vec<String> = Vec::new();
        for d in &vh.domains {
            if domains.contains(d) {
                self.note(
                    &key,
                    format!("spec.virtualHost.domains: {d:?} is listed twice"),
                );
            } else {
                domains.push(d.clone());
            }
        }
        if domains.is_empty() {
            domains.push("*".to_string());
        }
        let mut options = vh.options.clone().unwrap_or_default();
        let mut refused = false;
        if let Some(refs) = &vh.options_config_refs {
            for (i, r) in refs.delegate_options.iter().enumerate() {
                let r = r.resolved(&namespace);
                match self.snapshot.virtual_host_options.get(&r) {
                    // Options gloo cannot enforce: the host serves no route rather than
                    // serving them open.
                    Some(found) if !found.object.spec.options.unenforced().is_empty() => {
                        refused = true;
                        self.note_error(&key,
                            format!("spec.virtualHost.optionsConfigRefs.delegateOptions[{i}]: VirtualHostOption {r} sets options gloo does not enforce yet; the virtual host serves no routes rather than serving them without"),
                        )
                    }
                    // Invalid global rate limits: refused likewise (applying the rest would
                    // serve the routes without them).
                    Some(found) if !crate::translate::ratelimit::validate_host(&found.object.spec.options, "").is_empty() => {
                        refused = true;
                        self.note_error(&key,
                            format!("spec.virtualHost.optionsConfigRefs.delegateOptions[{i}]: VirtualHostOption {r} sets invalid rate limits; the virtual host serves no routes rather than serving them without"),
                        )
                    }
                    // Ext auth options that cannot be enforced (naming no AuthConfig, say):
                    // refused likewise, never applied without them.
                    Some(found) if !crate::translate::extauth::problems(self.snapshot, found.object.spec.options.extauth.as_deref(), "").is_empty() => {
                        refused = true;
                        self.note_error(&key,
                            format!("spec.virtualHost.optionsConfigRefs.delegateOptions[{i}]: VirtualHostOption {r} sets invalid ext auth options; the virtual host serves no routes rather than serving them without"),
                        )
                    }
                    // Invalid WAF settings: refused likewise (never served unprotected).
                    Some(found) if !crate::translate::waf::problems(self.snapshot, found.object.spec.options.waf.as_deref(), "").is_empty() => {
                        refused = true;
                        self.note_error(&key,
                            format!("spec.virtualHost.optionsConfigRefs.delegateOptions[{i}]: VirtualHostOption {r} sets invalid WAF settings; the virtual host serves no routes rather than serving them without"),
                        )
                    }
                    // A VirtualHostOption Gloo refuses (reported on it) is not applied.
                    Some(found) if !found.object.spec.options.local_ratelimit().is_valid()
                        || !crate::translate::transformation::validate(
                            crate::translate::transformation::Options::host(&found.object.spec.options),
                            "",
                        ).is_empty()
                        || !crate::translate::http_filters::per_route_problems(
                            found.object.spec.options.buffer_per_route.as_ref(),
                            "",
                        ).is_empty()
                        || !header_manipulation_problems(
                            found.object.spec.options.header_manipulation.as_deref(),
                            "",
                        ).is_empty()
                        || self.faulty_header_secrets.contains(&ResourceKey::new(Kind::VirtualHostOption, r.clone())) => self.note(&key,
                        format!("spec.virtualHost.optionsConfigRefs.delegateOptions[{i}]: VirtualHostOption {r} is rejected; its options are not applied"),
                    ),
                    Some(found) => {
                        let own_headers = options.header_manipulation.is_some();
                        options.merge_from(&found.object.spec.options);
                        if !own_headers {
                            pin_header_secret_namespaces(
                                &mut options.header_manipulation,
                                r.namespace_or(crate::model::DEFAULT_NAMESPACE),
                            );
                        }
                    }
                    None => self.note(&key,
                        format!("spec.virtualHost.optionsConfigRefs.delegateOptions[{i}]: VirtualHostOption {r} not found"),
                    ),
                }
            }
        }
        let name = format!("{}_{}", namespace, reference.name);
        let context = Context {
            owner: key.clone(),
            owner_namespace: namespace.clone(),
            path: "spec.virtualHost.routes".to_string(),
            source: format!("VirtualService {reference}"),
            name_prefix: name.clone(),
            gloo_prefix: format!("vs:{namespace}_{}", reference.name),
            parent: None,
            // Gloo inherits from the VirtualService's own virtual host options (not from
            // VirtualHostOptions it references).
            host_staged_transformations: vh
                .options
                .as_ref()
                .and_then(|o| o.staged_transformations.clone()),
            chain: Vec::new(),
        };
        self.buffer_limits.clear();
        self.forward_proxy_routes.clear();
        if crate::translate::http_filters::sets_limit(options.buffer_per_route.as_ref()) {
            let own = vh
                .options
                .as_ref()
                .and_then(|o| o.buffer_per_route.as_ref());
            self.buffer_limits.push((
                key.clone(),
                if own.is_some() {
                    "spec.virtualHost.options.bufferPerRoute.buffer".to_string()
                } else {
                    "spec.virtualHost.optionsConfigRefs: a VirtualHostOption's bufferPerRoute.buffer"
                        .to_string()
                },
            ));
        }
        let routes = if refused {
            Vec::new()
        } else {
            self.resolve_routes(&vh.routes, &context)
        };
        Arc::new(VirtualHostModel {
            name,
            source: reference.clone(),
            domains,
            options,
            ssl_config: entry.object.spec.ssl_config.clone(),
            routes,
            buffer_limits: std::mem::take(&mut self.buffer_limits),
            forward_proxy_routes: std::mem::take(&mut self.forward_proxy_routes),
        })
    }

    fn resolve_routes(&mut self, routes: &[Route], context: &Context) -> Vec<RouteModel> {
        let mut out = Vec::with_capacity(routes.len());
        for (i, route) in routes.iter().enumerate() {
            // Runs for every route: the field path is written out only for a message, and
            // Gloo's name only for a route that has one or delegates.
            let root = FieldPath::Root(&context.path);
            let path = FieldPath::Index(&root, i);
            let mut source = format!("{} routes[{i}]", context.source);
            let mut route_name = if route.name.is_empty() {
                format!("{}-route-{i}", context.name_prefix)
            } else {
                format!("{}-{}", context.name_prefix, route.name)
            };
            // Gloo's `routeName`: a route is named when it or a delegating route is.
            let gloo_name = || {
                if route.name.is_empty() {
                    format!("{}_route:<unnamed-{i}>", context.gloo_prefix)
                } else {
                    format!("{}_route:{}", context.gloo_prefix, route.name)
                }
            };
            let named = !route.name.is_empty() || context.parent.as_ref().is_some_and(|p| p.named);
            // Shared with the route (or with every route without options) until a merge
            // changes it.
            let mut options = route
                .options
                .clone()
                .unwrap_or_else(|| self.no_options.clone());
            let mut refused = false;
            if let Some(refs) = &route.options_config_refs {
                for (k, r) in refs.delegate_options.iter().enumerate() {
                    let r = r.resolved(&context.owner_namespace);
                    match self.snapshot.route_options.get(&r) {
                        // Options gloo cannot enforce: the route is not served rather than
                        // served open.
                        Some(found) if !found.object.spec.options.unenforced().is_empty() => {
                            refused = true;
                            self.note_error(&context.owner,
                                format!("{path}.optionsConfigRefs.delegateOptions[{k}]: RouteOption {r} sets options gloo does not enforce yet; the route answers 503 rather than being served without them"),
                            )
                        }
                        // Invalid global rate limits: refused likewise.
                        Some(found) if !crate::translate::ratelimit::validate_route(&found.object.spec.options, "").is_empty() => {
                            refused = true;
                            self.note_error(&context.owner,
                                format!("{path}.optionsConfigRefs.delegateOptions[{k}]: RouteOption {r} sets invalid rate limits; the route answers 503 rather than being served without them"),
                            )
                        }
                        // Ext auth options that cannot be enforced: refused likewise.
                        Some(found) if !crate::translate::extauth::problems(self.snapshot, found.object.spec.options.extauth.as_deref(), "").is_empty() => {
                            refused = true;
                            self.note_error(&context.owner,
                                format!("{path}.optionsConfigRefs.delegateOptions[{k}]: RouteOption {r} sets invalid ext auth options; the route answers 503 rather than being served without them"),
                            )
                        }
                        // Invalid WAF settings: refused likewise (never served unprotected).
                        Some(found) if !crate::translate::waf::problems(self.snapshot, found.object.spec.options.waf.as_deref(), "").is_empty() => {
                            refused = true;
                            self.note_error(&context.owner,
                                format!("{path}.optionsConfigRefs.delegateOptions[{k}]: RouteOption {r} sets invalid WAF settings; the route answers 503 rather than being served without them"),
                            )
                        }
                        // A RouteOption Gloo refuses (reported on it) is not applied.
                        Some(found) if !found.object.spec.options.local_ratelimit().is_valid()
                            || !crate::translate::transformation::validate(
                                crate::translate::transformation::Options::route(&found.object.spec.options),
                                "",
                            ).is_empty()
                            || !crate::translate::http_filters::per_route_problems(
                                found.object.spec.options.buffer_per_route.as_ref(),
                                "",
                            ).is_empty()
                            || !header_manipulation_problems(
                                found.object.spec.options.header_manipulation.as_deref(),
                                "",
                            ).is_empty()
                            || self.faulty_header_secrets.contains(&ResourceKey::new(Kind::RouteOption, r.clone())) => self.note(&context.owner,
                            format!("{path}.optionsConfigRefs.delegateOptions[{k}]: RouteOption {r} is rejected; its options are not applied"),
                        ),
                        Some(found) => {
                            let own_headers = options.header_manipulation.is_some();
                            Arc::make_mut(&mut options).merge_from(&found.object.spec.options);
                            if !own_headers
                                && needs_pinned_secrets(options.header_manipulation.as_deref())
                            {
                                pin_header_secret_namespaces(
                                    &mut Arc::make_mut(&mut options).header_manipulation,
                                    r.namespace_or(crate::model::DEFAULT_NAMESPACE),
                                );
                            }
                        }
                        None => self.note(&context.owner,
                            format!("{path}.optionsConfigRefs.delegateOptions[{k}]: RouteOption {r} not found"),
                        ),
                    }
                }
            }
            // `inheritTransformation` (Gloo's `inheritStagedTransformations`): the parent's
            // staged transformations (the delegating route's, else the VirtualService's own
            // virtual host's) are appended after this route's, so this route's win.
            if options
                .staged_transformations
                .as_ref()
                .is_some_and(|s| s.inherit_transformation == Some(true))
            {
                let parent = match &context.parent {
                    Some(p) => p.options.staged_transformations.as_deref(),
                    None => context.host_staged_transformations.as_deref(),
                };
                if let Some(parent) = parent.cloned() {
                    if let Some(own) = Arc::make_mut(&mut options).staged_transformations.as_mut() {
                        own.inherit_from(&parent);
                    }
                }
            }
            // Matchers: this route's own, with what it inherits from the delegating route
            // (borrowed when it inherits nothing, and copied into the routes made of it).
            let own: std::borrow::Cow<'_, [Matcher]> = if route.matchers.is_empty() {
                std::borrow::Cow::Owned(vec![Matcher::default()])
            } else {
                std::borrow::Cow::Borrowed(&route.matchers)
            };
            let mut matchers: std::borrow::Cow<'_, [Matcher]>;
            if let Some(parent) = &context.parent {
                let mut inherited = Vec::new();
                Arc::make_mut(&mut options).merge_from(&parent.options);
                let inherit_matchers = route
                    .inheritable_matchers
                    .unwrap_or(parent.inheritable_matchers);
                let inherit_path = route
                    .inheritable_path_matchers
                    .unwrap_or(parent.inheritable_path_matchers);
                for (j, m) in own.iter().enumerate() {
                    let mut m = m.clone();
                    if inherit_path {
                        m.prefix = parent.matcher.prefix.clone();
                        m.exact = None;
                        m.regex = None;
                        m.connect_matcher = None;
                        m.case_sensitive = parent.matcher.case_sensitive;
                    } else {
                        let parent_prefix = parent.prefix();
                        let ok = match m.path() {
                            Ok(Some(PathMatcher::Prefix(p))) | Ok(Some(PathMatcher::Exact(p))) => {
                                p.starts_with(parent_prefix)
                            }
                            // Gloo accepts a regex child whose pattern starts with the prefix.
                            Ok(Some(PathMatcher::Regex(r))) => r.starts_with(parent_prefix),
                            Ok(None) => parent_prefix == "/",
                            _ => false,
                        };
                        if !ok {
                            let shown = describe_path(&m);
                            self.note(&context.owner,
                                format!(
                                    "{path}.matchers[{j}]: {shown} does not start with the delegating prefix {parent_prefix:?}; the route is dropped"
                                ),
                            );
                            continue;
                        }
                    }
                    if inherit_matchers {
                        let mut headers = parent.matcher.headers.clone();
                        headers.extend(m.headers);
                        m.headers = headers;
                        let mut query = parent.matcher.query_parameters.clone();
                        query.extend(m.query_parameters);
                        m.query_parameters = query;
                        if m.methods.is_empty() {
                            m.methods = parent.matcher.methods.clone();
                        }
                    }
                    inherited.push(m);
                }
                matchers = std::borrow::Cow::Owned(inherited);
            } else {
                matchers = own;
            }
            if matchers.is_empty() {
                continue;
            }
            let action = match route.action() {
                Ok(Some(a)) => a,
                // Reported by validation; an invalid resource never gets here unless it is a
                // last-known-good version, which was valid.
                _ => continue,
            };
            // Gloo scopes a route's basic rate limits by its name ("MissingNameErr"
            // otherwise); a delegating route passes them (and its name) to its children.
            if options.ratelimit_basic.is_some()
                && !named
                && !matches!(action, RouteActionRef::Delegate(_))
            {
                refused = true;
                self.note_error(
                    &context.owner,
                    format!("{path}.options.ratelimitBasic: a route with basic rate limits must be named (set `name` on it or on a route delegating to it); the route answers 503 rather than being served without them"),
                );
            }
            let model_action = match action {
                // A route whose options gloo cannot enforce answers as an invalid route does
                // (503, or Settings' replacement), delegating or not, so its requests never
                // fall through to a later route either.
                _ if refused => (RouteModelAction::DirectResponse(self.refusal()), Vec::new()),
                RouteActionRef::Route(a)
                    if !crate::translate::aws_lambda::check_route(self.snapshot, a, path)
                        .is_empty() =>
                {
                    // A Lambda destination Gloo refuses (not an aws upstream, no such
                    // function): an error, and the route answers as an invalid route.
                    for problem in crate::translate::aws_lambda::check_route(self.snapshot, a, path)
                    {
                        self.note_error(
                            &context.owner,
                            format!("{problem}; the route answers as an invalid route (503) until the function exists"),
                        );
                    }
                    (RouteModelAction::DirectResponse(self.refusal()), Vec::new())
                }
                RouteActionRef::Route(a) => {
                    let (subset_warnings, subset_errors) =
                        crate::translate::subsets::check_route(self.snapshot, a, path);
                    let mut warnings = self.check_destinations(a, &path);
                    for w in warnings.iter().chain(&subset_warnings) {
                        self.note(&context.owner, w.clone());
                    }
                    // A subset no selector of its upstream has: an error (Gloo's), and the
                    // route answers as an invalid route.
                    if !subset_errors.is_empty() {
                        for e in subset_errors {
                            self.note_error(
                                &context.owner,
                                format!("{e}; the route answers as an invalid route (503)"),
                            );
                        }
                        (RouteModelAction::DirectResponse(self.refusal()), Vec::new())
                    } else {
                        // Only a missing destination is replaced (invalidConfigPolicy); a subset on
                        // an upstream without subsets is served as Gloo serves it.
                        let replace = !warnings.is_empty();
                        warnings.extend(subset_warnings);
                        match (&self.invalid_route_response, replace) {
                            (Some(replacement), true) => (
                                RouteModelAction::DirectResponse(replacement.clone()),
                                warnings,
                            ),
                            // The route's own action, shared rather than copied.
                            _ => match &route.route_action {
                                Some(shared) => (RouteModelAction::Route(shared.clone()), warnings),
                                None => (RouteModelAction::Route(Arc::new(a.clone())), warnings),
                            },
                        }
                    }
                }
                RouteActionRef::Redirect(r) => (RouteModelAction::Redirect(r.clone()), Vec::new()),
                RouteActionRef::DirectResponse(d) => {
                    (RouteModelAction::DirectResponse(d.clone()), Vec::new())
                }
                RouteActionRef::Delegate(d) => {
                    let matcher = matchers.first().cloned().unwrap_or_default();
                    let parent = ParentRoute {
                        matcher,
                        options: options.clone(),
                        gloo_name: gloo_name(),
                        named,
                        inheritable_matchers: route.inheritable_matchers.unwrap_or(
                            context
                                .parent
                                .as_ref()
                                .is_some_and(|p| p.inheritable_matchers),
                        ),
                        inheritable_path_matchers: route.inheritable_path_matchers.unwrap_or(
                            context
                                .parent
                                .as_ref()
                                .is_some_and(|p| p.inheritable_path_matchers),
                        ),
                    };
                    let path = path.to_string();
                    out.extend(self.delegate(d, parent, &path, &source, &route_name, context));
                    continue;
                }
            };
            if let RouteModelAction::Route(served) = &model_action.0 {
                self.note_buffer_limits(route, &options, served, &path, &context.owner);
                if served.dynamic_forward_proxy.is_some() {
                    self.forward_proxy_routes.push((
                        context.owner.clone(),
                        format!("{path}.routeAction.dynamicForwardProxy"),
                    ));
                }
            }
            let gloo_name = named.then(gloo_name);
            let count = matchers.len();
            for j in 0..count {
                let last = j + 1 == count;
                let matcher = match &mut matchers {
                    std::borrow::Cow::Borrowed(own) => own[j].clone(),
                    std::borrow::Cow::Owned(own) => std::mem::take(&mut own[j]),
                };
                out.push(RouteModel {
                    name: if count > 1 {
                        format!("{route_name}-matcher-{j}")
                    } else {
                        std::mem::take(&mut route_name)
                    },
                    // The last route made of this one takes the strings, the others copy them.
                    source: if last {
                        std::mem::take(&mut source)
                    } else {
                        source.clone()
                    },
                    matcher,
                    action: model_action.0.clone(),
                    options: options.clone(),
                    warnings: model_action.1.clone(),
                    gloo_name: gloo_name.clone(),
                });
            }
        }
        out
    }

    /// Records where a served route (`route`, whose options are `options` after merging, at
    /// `path` of `owner`) and its weighted destinations give the buffer filter a limit (see
    /// [`VirtualHostModel::buffer_limits`]).
    fn note_buffer_limits(
        &mut self,
        route: &Route,
        options: &RouteOptions,
        action: &RouteAction,
        path: &FieldPath<'_>,
        owner: &ResourceKey,
    ) {
        use crate::translate::http_filters::sets_limit;
        if sets_limit(options.buffer_per_route.as_ref()) {
            let own = route
                .options
                .as_ref()
                .is_some_and(|o| o.buffer_per_route.is_some());
            self.buffer_limits.push((
                owner.clone(),
                if own {
                    format!("{path}.options.bufferPerRoute.buffer")
                } else {
                    format!("{path}.options: bufferPerRoute.buffer (inherited from a RouteOption or a delegating route)")
                },
            ));
        }
        let limited = |destinations: &[crate::model::routing::WeightedDestination]| {
            destinations
                .iter()
                .enumerate()
                .filter(|(_, d)| {
                    sets_limit(d.options.as_ref().and_then(|o| o.buffer_per_route.as_ref()))
                })
                .map(|(i, _)| i)
                .collect::<Vec<_>>()
        };
        match action.destination() {
            Ok(Some(RouteDestination::Multi(multi))) => {
                for i in limited(&multi.destinations) {
                    self.buffer_limits.push((
                        owner.clone(),
                        format!("{path}.routeAction.multi.destinations[{i}].options.bufferPerRoute.buffer"),
                    ));
                }
            }
            Ok(Some(RouteDestination::UpstreamGroup(r))) => {
                let r = r.resolved(crate::model::DEFAULT_NAMESPACE);
                if let Some(group) = self.snapshot.upstream_groups.get(&r) {
                    let key = ResourceKey::new(Kind::UpstreamGroup, r.clone());
                    for i in limited(&group.object.spec.destinations) {
                        self.buffer_limits.push((
                            key.clone(),
                            format!("spec.destinations[{i}].options.bufferPerRoute.buffer"),
                        ));
                    }
                }
            }
            _ => {}
        }
    }

    fn delegate(
        &mut self,
        delegate: &DelegateAction,
        parent: ParentRoute,
        path: &str,
        source: &str,
        route_name: &str,
        context: &Context,
    ) -> Vec<RouteModel> {
        let tables: Vec<ResourceRef> = match delegate.target() {
            Ok(Some(DelegateTarget::Ref(r))) => {
                let r = r.resolved(&context.owner_namespace);
                if self.route_tables.contains_key(&r) {
                    vec![r]
                } else {
                    let why = if self.snapshot.route_tables.contains_key(&r) {
                        "was rejected and has no accepted version"
                    } else {
                        "not found"
                    };
                    let outcome = self.outcome("the route is dropped");
                    self.note(
                        &context.owner,
                        format!("{path}.delegateAction: RouteTable {r} {why}; {outcome}"),
                    );
                    return self.replacement_route(&parent, source, route_name);
                }
            }
            Ok(Some(DelegateTarget::Selector(selector))) => {
                let found = self.select_route_tables(selector, &context.owner_namespace);
                if found.is_empty() {
                    let outcome = self.outcome("the route is dropped");
                    self.note(
                        &context.owner,
                        format!("{path}.delegateAction.selector: no RouteTable matches the selector; {outcome}"),
                    );
                    return self.replacement_route(&parent, source, route_name);
                }
                found
            }
            _ => return Vec::new(),
        };
        let mut out = Vec::new();
        for table in tables {
            let table_key = ResourceKey::new(Kind::RouteTable, table.clone());
            if context.chain.contains(&table) || context.owner == table_key {
                let mut names: Vec<String> = context
                    .chain
                    .iter()
                    .map(|r| format!("RouteTable {r}"))
                    .collect();
                names.push(format!("RouteTable {table}"));
                let cycle = format!(
                    "delegation cycle: {} -> {}",
                    context.source.split(" routes[").next().unwrap_or_default(),
                    names.join(" -> ")
                );
                self.note_error(&context.owner, format!("{path}.delegateAction: {cycle}"));
                continue;
            }
            let Some(entry) = self.route_tables.get(&table).cloned() else {
                continue;
            };
            let mut chain = context.chain.clone();
            chain.push(table.clone());
            let table_ns = table
                .namespace_or(crate::model::DEFAULT_NAMESPACE)
                .to_string();
            let child = Context {
                owner: table_key,
                owner_namespace: table_ns.clone(),
                path: "spec.routes".to_string(),
                source: format!("{source} > RouteTable {table}"),
                name_prefix: format!("{route_name}-{table_ns}_{}", table.name),
                gloo_prefix: format!("{}_rt:{table_ns}_{}", parent.gloo_name, table.name),
                parent: Some(parent.clone()),
                host_staged_transformations: None,
                chain,
            };
            out.extend(self.resolve_routes(&entry.object.spec.routes, &child));
        }
        out
    }

    /// What a route that cannot be served does: `otherwise`, unless Settings'
    /// `invalidConfigPolicy` answers it.
    fn outcome(&self, otherwise: &str) -> String {
        match &self.invalid_route_response {
            Some(r) => format!("the route answers {} (invalidConfigPolicy)", r.status),
            None => otherwise.to_string(),
        }
    }

    /// With `invalidConfigPolicy.replaceInvalidRoutes`, a delegating route whose route tables
    /// cannot be served answers the configured response on its own matcher.
    fn replacement_route(
        &self,
        parent: &ParentRoute,
        source: &str,
        route_name: &str,
    ) -> Vec<RouteModel> {
        match &self.invalid_route_response {
            Some(response) => vec![RouteModel {
                name: route_name.to_string(),
                source: source.to_string(),
                matcher: parent.matcher.clone(),
                action: RouteModelAction::DirectResponse(response.clone()),
                options: Arc::default(),
                warnings: vec!["replaced by invalidConfigPolicy".to_string()],
                gloo_name: None,
            }],
            None => Vec::new(),
        }
    }

    fn select_route_tables(
        &self,
        selector: &RouteTableSelector,
        owner_namespace: &str,
    ) -> Vec<ResourceRef> {
        let namespaces = &selector.namespaces;
        let mut found: Vec<(i32, ResourceRef)> = self
            .route_tables
            .iter()
            .filter(|(r, _)| {
                let ns = r.namespace_or(crate::model::DEFAULT_NAMESPACE);
                if namespaces.is_empty() {
                    ns == owner_namespace
                } else {
                    namespaces.iter().any(|n| n == "*" || n == ns)
                }
            })
            .filter(|(_, e)| {
                let labels = &e.object.metadata.labels;
                selector
                    .labels
                    .iter()
                    .all(|(k, v)| labels.get(k) == Some(v))
                    && selector
                        .expressions
                        .iter()
                        .all(|x| expression_matches(x, labels))
            })
            .map(|(r, e)| (e.object.spec.weight.unwrap_or(0), r.clone()))
            .collect();
        // Ascending weight; equal weights in namespace/name order so output is deterministic.
        found.sort();
        found.into_iter().map(|(_, r)| r).collect()
    }

    fn check_destinations(&self, action: &RouteAction, path: &FieldPath<'_>) -> Vec<String> {
        let mut warnings = Vec::new();
        // Runs for every route: the field path is only formatted for a warning, and a
        // reference that names its namespace is looked up as it is.
        let check = |d: &Destination, field: &dyn Fn() -> String, warnings: &mut Vec<String>| {
            // A Consul service is the upstream Consul discovery names after it.
            if let Ok(Some(DestinationTarget::Consul(c))) = d.target() {
                let r = ResourceRef::new(
                    crate::model::DEFAULT_NAMESPACE,
                    format!("consul-svc:{}", c.service_name),
                );
                if !self.snapshot.upstreams.contains_key(&r) {
                    warnings.push(format!(
                        "{}.consul: Upstream {r} (Consul service {}) not found; {}",
                        field(),
                        c.service_name,
                        self.outcome(
                            "the route answers 503 until Consul discovery finds the service"
                        )
                    ));
                }
            }
            if let Ok(Some(DestinationTarget::Upstream(r))) = d.target() {
                let found = if r.namespace.is_some() {
                    self.snapshot.upstreams.contains_key(r)
                } else {
                    self.snapshot
                        .upstreams
                        .contains_key(&r.resolved(crate::model::DEFAULT_NAMESPACE))
                };
                if !found {
                    let r = r.resolved(crate::model::DEFAULT_NAMESPACE);
                    warnings.push(format!(
                        "{}.upstream: Upstream {r} not found{}; {}",
                        field(),
                        self.snapshot.scope.unwatched_note(r.namespace_or("")),
                        self.outcome("the route answers 503 until it exists")
                    ));
                }
            }
        };
        match action.destination() {
            Ok(Some(RouteDestination::Single(d))) => {
                check(d, &|| format!("{path}.routeAction.single"), &mut warnings)
            }
            Ok(Some(RouteDestination::Multi(m))) => {
                for (i, wd) in m.destinations.iter().enumerate() {
                    if let Some(d) = &wd.destination {
                        check(
                            d,
                            &|| format!("{path}.routeAction.multi.destinations[{i}].destination"),
                            &mut warnings,
                        );
                    }
                }
            }
            Ok(Some(RouteDestination::UpstreamGroup(r))) => {
                let r = r.resolved(crate::model::DEFAULT_NAMESPACE);
                match self.snapshot.upstream_groups.get(&r) {
                    // Left out of the snapshot because it is rejected (see
                    // `translate::without_rejected_upstream_groups`).
                    None if upstream_group_rejected(self.reports, &r) => warnings.push(format!(
                        "{path}.routeAction.upstreamGroup: UpstreamGroup {r} is rejected; {}",
                        self.outcome("the route answers 503 until it is fixed")
                    )),
                    None => warnings.push(format!(
                        "{path}.routeAction.upstreamGroup: UpstreamGroup {r} not found; {}",
                        self.outcome("the route answers 503 until it exists")
                    )),
                    Some(group) => {
                        for (i, wd) in group.object.spec.destinations.iter().enumerate() {
                            if let Some(d) = &wd.destination {
                                check(
                                    d,
                                    &|| {
                                        format!("{path}.routeAction.upstreamGroup({r}).destinations[{i}].destination")
                                    },
                                    &mut warnings,
                                );
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        warnings
    }
}

/// Puts a resource in force: as it is when valid; when not, its errors are reported and its
/// last accepted version (if any) serves instead.
fn put_in_force<S: Clone>(
    key: &ResourceKey,
    entry: &Entry<S>,
    errors: Vec<String>,
    last_accepted: Option<&Arc<Object<S>>>,
    in_force: &mut Collection<S>,
    reports: &mut Reports,
) {
    let reference = key.reference.clone();
    if errors.is_empty() {
        in_force.insert(reference, entry.clone());
        return;
    }
    for e in errors {
        reports.error(key, e);
    }
    if let Some(previous) = last_accepted {
        reports.error(key, KEEPS_SERVING);
        in_force.insert(
            reference,
            Entry {
                object: previous.clone(),
                origin: entry.origin.clone(),
            },
        );
    }
}

/// What a delegated route inherits from the route that delegates to it.
#[derive(Debug, Clone)]
struct ParentRoute {
    matcher: Matcher,
    options: Arc<RouteOptions>,
    inheritable_matchers: bool,
    inheritable_path_matchers: bool,
    /// Its Gloo name, and whether it (or a route delegating to it) is named.
    gloo_name: String,
    named: bool,
}

impl ParentRoute {
    fn prefix(&self) -> &str {
        self.matcher.prefix.as_deref().unwrap_or("/")
    }
}

/// Where routes being resolved come from.
struct Context {
    /// The resource that owns these routes (statuses go there).
    owner: ResourceKey,
    owner_namespace: String,
    /// Field path of the route list inside the owner.
    path: String,
    /// Human-readable chain of sources.
    source: String,
    /// Prefix of the Envoy route names.
    name_prefix: String,
    /// Prefix of Gloo's route names (see [`RouteModel::gloo_name`]): `vs:<ns>_<vs>`, or the
    /// delegating route's name followed by `_rt:<ns>_<rt>`.
    gloo_prefix: String,
    parent: Option<ParentRoute>,
    /// The VirtualService's own `stagedTransformations`, which its top-level routes with
    /// `inheritTransformation` inherit.
    host_staged_transformations: Option<Box<crate::model::transformation::TransformationStages>>,
    /// Route tables on the way here (cycle detection).
    chain: Vec<ResourceRef>,
}

fn describe_path(m: &Matcher) -> String {
    match m.path() {
        Ok(Some(PathMatcher::Prefix(p))) => format!("prefix {p:?}"),
        Ok(Some(PathMatcher::Exact(p))) => format!("exact path {p:?}"),
        Ok(Some(PathMatcher::Regex(p))) => {
            format!("regex {p:?} (regex paths cannot be checked against a prefix)")
        }
        Ok(Some(PathMatcher::Connect)) => "connect matcher".to_string(),
        Ok(None) => "default prefix \"/\"".to_string(),
        Err(e) => e.to_string(),
    }
}

/// What Gloo refuses in an `httpGateway` (its `httpLocalRatelimit`), each message starting
/// with `path`. `namespace` is the Gateway's, where `headerSecretRef`s without a namespace
/// point.
fn http_gateway_problems(
    snapshot: &ConfigSnapshot,
    http: &crate::model::gateway::HttpGateway,
    path: &str,
    namespace: &str,
) -> Vec<String> {
    let Some(options) = &http.options else {
        return Vec::new();
    };
    let mut problems = match &options.http_local_ratelimit {
        Some(settings) => settings.validate(format_args!("{path}.options.httpLocalRatelimit")),
        None => Vec::new(),
    };
    // gloo reads the rate limit server from the Settings only.
    if options.ratelimit_server.is_some() {
        problems.extend(unenforced(
            vec!["ratelimitServer"],
            format!("{path}.options"),
        ));
    }
    problems.extend(unenforced(options.unenforced(), format!("{path}.options")));
    if let Some(h2) = options
        .http_connection_manager_settings
        .as_ref()
        .and_then(|h| h.http2_protocol_options.as_ref())
    {
        for why in h2.problems() {
            problems.push(format!(
                "{path}.options.httpConnectionManagerSettings.http2ProtocolOptions.{why}"
            ));
        }
    }
    if let Some(hcm) = &options.http_connection_manager_settings {
        let at = format!("{path}.options.httpConnectionManagerSettings");
        if let Err(e) = hcm.check_header_format() {
            problems.push(format!("{at}: {e}"));
        }
        if let Some(tracing) = &hcm.tracing {
            problems.extend(crate::translate::tracing::problems(
                tracing,
                &format!("{at}.tracing"),
            ));
        }
        if let Some(early) = &hcm.early_header_manipulation {
            let at = format!("{at}.earlyHeaderManipulation");
            problems.extend(
                early
                    .problems()
                    .into_iter()
                    .map(|why| format!("{at}.{why}")),
            );
            problems.extend(header_secret_problems(
                snapshot,
                &early.headers_to_add,
                namespace,
                &format!("{at}.headersToAdd"),
            ));
        }
    }
    if let Some(internal) = options
        .http_connection_manager_settings
        .as_ref()
        .and_then(|h| h.internal_address_config.as_ref())
    {
        for (i, range) in internal.cidr_ranges.iter().enumerate() {
            if let Err(why) = range.validate() {
                problems.push(format!(
                    "{path}.options.httpConnectionManagerSettings.internalAddressConfig.cidrRanges[{i}]: {why}"
                ));
            }
        }
    }
    problems.extend(crate::translate::http_filters::problems(
        options,
        &format!("{path}.options"),
    ));
    if let Some(forward_proxy) = &options.dynamic_forward_proxy {
        problems.extend(crate::translate::dynamic_forward_proxy::problems(
            snapshot,
            forward_proxy,
            &format!("{path}.options.dynamicForwardProxy"),
            namespace,
        ));
    }
    problems.extend(crate::translate::waf::problems(
        snapshot,
        options.waf.as_ref(),
        format!("{path}.options"),
    ));
    // The listener's own ext auth server (it overrides the Settings').
    if let Some(extauth) = &options.extauth {
        problems.extend(crate::translate::extauth::settings_problems(
            snapshot,
            extauth,
            &format!("{path}.options.extauth"),
        ));
    }
    problems
}

/// What is wrong with the headers the `headerSecretRef`s of `options` (at `path`) add, as
/// Envoy would take them: a Secret that is missing or holds no headers, and a key Envoy would
/// refuse to add (a pseudo-header, `host`, not an HTTP token) or a value it would refuse (see
/// [`crate::model::headers::header_value_problem`]). Gloo passes a Secret's headers to Envoy
/// unchecked, and Envoy would refuse the whole listener (a Gateway's early header mutation) or
/// route configuration (a virtual host's, route's or weighted destination's request headers).
pub(crate) fn header_secret_problems(
    snapshot: &ConfigSnapshot,
    options: &[crate::model::headers::RequestHeaderValueOption],
    namespace: &str,
    path: &str,
) -> Vec<String> {
    use crate::model::headers::{added_header_name_problem, header_value_problem};
    let mut problems = Vec::new();
    for (i, option) in options.iter().enumerate() {
        let Some(reference) = &option.header_secret_ref else {
            continue;
        };
        let at = format!("{path}[{i}].headerSecretRef");
        match snapshot.header_secret(reference, namespace) {
            Err(e) => problems.push(format!("{at}: {e}")),
            Ok(headers) => {
                let secret = reference.resolved(namespace);
                for (key, value) in headers {
                    if let Some(why) = added_header_name_problem(&key) {
                        problems.push(format!("{at}: Secret {secret}, key {key:?}: {why}"));
                    }
                    if let Some(why) = header_value_problem(&value) {
                        problems.push(format!(
                            "{at}: Secret {secret}, the value of {key:?}: {why}"
                        ));
                    }
                }
            }
        }
    }
    problems
}

/// The problems of the `headerSecretRef`s of a `headerManipulation` (see
/// [`header_secret_problems`]), each message under `{path}.headerManipulation` (`path` names
/// the options). `namespace` is where references without one point: the namespace of the
/// resource that sets them.
pub(crate) fn header_manipulation_secret_problems(
    snapshot: &ConfigSnapshot,
    headers: Option<&crate::model::headers::HeaderManipulation>,
    namespace: &str,
    path: impl std::fmt::Display,
) -> Vec<String> {
    match headers {
        Some(h)
            if h.request_headers_to_add
                .iter()
                .any(|o| o.header_secret_ref.is_some()) =>
        {
            header_secret_problems(
                snapshot,
                &h.request_headers_to_add,
                namespace,
                &format!("{path}.headerManipulation.requestHeadersToAdd"),
            )
        }
        _ => Vec::new(),
    }
}

/// Whether `headers` has a `headerSecretRef` that names no namespace.
fn needs_pinned_secrets(headers: Option<&crate::model::headers::HeaderManipulation>) -> bool {
    headers.is_some_and(|h| {
        h.request_headers_to_add
            .iter()
            .filter_map(|o| o.header_secret_ref.as_ref())
            .any(|r| r.namespace.as_deref().unwrap_or_default().is_empty())
    })
}

/// Points the `headerSecretRef`s of `headers` that name no namespace at `namespace`, the
/// namespace of the option resource they were merged from: a reference without a namespace
/// is to the resource that holds it (where its validation looked), while translation would
/// look beside the VirtualService.
fn pin_header_secret_namespaces(
    headers: &mut Option<Box<crate::model::headers::HeaderManipulation>>,
    namespace: &str,
) {
    if !needs_pinned_secrets(headers.as_deref()) {
        return;
    }
    let Some(headers) = headers else {
        return;
    };
    for reference in headers
        .request_headers_to_add
        .iter_mut()
        .filter_map(|o| o.header_secret_ref.as_mut())
    {
        if reference
            .namespace
            .as_deref()
            .unwrap_or_default()
            .is_empty()
        {
            reference.namespace = Some(namespace.to_string());
        }
    }
}

/// The VirtualHostOptions and RouteOptions whose `headerSecretRef`s name a Secret that is
/// missing or holds headers Envoy would refuse (reported on them by translation's option
/// checks): they are not applied. Kept in the resolution [`Environment`], as the Secrets
/// change on their own.
fn faulty_header_secrets(snapshot: &ConfigSnapshot) -> BTreeSet<ResourceKey> {
    let faulty = |r: &ResourceRef, h: Option<&crate::model::headers::HeaderManipulation>| {
        !header_manipulation_secret_problems(
            snapshot,
            h,
            r.namespace_or(crate::model::DEFAULT_NAMESPACE),
            "",
        )
        .is_empty()
    };
    let host = snapshot
        .virtual_host_options
        .iter()
        .filter(|(r, e)| faulty(r, e.object.spec.options.header_manipulation.as_deref()))
        .map(|(r, _)| ResourceKey::new(Kind::VirtualHostOption, r.clone()));
    let route = snapshot
        .route_options
        .iter()
        .filter(|(r, e)| faulty(r, e.object.spec.options.header_manipulation.as_deref()))
        .map(|(r, _)| ResourceKey::new(Kind::RouteOption, r.clone()));
    host.chain(route).collect()
}

/// Whether the UpstreamGroup `reference` is rejected (translation then leaves it out of the
/// snapshot, so routes to it have no destination).
fn upstream_group_rejected(reports: &Reports, reference: &ResourceRef) -> bool {
    reports
        .get(Kind::UpstreamGroup, reference)
        .is_some_and(|s| s.state == crate::status::State::Rejected)
}

/// What Gloo or Envoy refuses in a virtual host's, route's or weighted destination's
/// `headerManipulation` (see [`crate::model::headers::HeaderManipulation::problems`]), each
/// message under `{path}.headerManipulation` (`path` names the options). Envoy refuses the
/// whole route configuration over any of them, so they reject the resource that sets them.
pub(crate) fn header_manipulation_problems(
    headers: Option<&crate::model::headers::HeaderManipulation>,
    path: impl std::fmt::Display,
) -> Vec<String> {
    let Some(headers) = headers else {
        return Vec::new();
    };
    headers
        .problems()
        .into_iter()
        .map(|why| format!("{path}.headerManipulation.{why}"))
        .collect()
}

/// What Gloo's TCP plugin reports as warnings on a Gateway's TCP hosts (its own
/// `tcpGateway`'s and its hybrid TCP chains'): a destination not found (or an UpstreamGroup
/// that is rejected, so left out of `snapshot`), which leaves the host without a filter chain
/// until it exists.
fn tcp_gateway_warnings(
    snapshot: &ConfigSnapshot,
    reports: &Reports,
    spec: &GatewaySpec,
) -> Vec<String> {
    use crate::model::gateway::TcpDestination;
    use crate::translate::tcp::{host_route, HostProblem};
    let own = spec
        .tcp_gateway
        .iter()
        .map(|tcp| ("spec.tcpGateway".to_string(), tcp));
    let matched = spec.hybrid_gateway.iter().flat_map(|hybrid| {
        hybrid
            .matched_gateways
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                m.tcp_gateway.as_ref().map(|tcp| {
                    (
                        format!("spec.hybridGateway.matchedGateways[{i}].tcpGateway"),
                        tcp,
                    )
                })
            })
    });
    let mut warnings = Vec::new();
    for (path, tcp) in own.chain(matched) {
        for (i, host) in tcp.tcp_hosts.iter().enumerate() {
            if let Some(Ok(Some(TcpDestination::UpstreamGroup(r)))) =
                host.destination.as_ref().map(|d| d.destination())
            {
                let r = r.resolved(crate::model::DEFAULT_NAMESPACE);
                if !snapshot.upstream_groups.contains_key(&r)
                    && upstream_group_rejected(reports, &r)
                {
                    warnings.push(format!(
                        "{path}.tcpHosts[{i}].destination.upstreamGroup: UpstreamGroup {r} is rejected; the host gets no filter chain until it is fixed"
                    ));
                    continue;
                }
            }
            if let Err(HostProblem::Warning(w)) = host_route(snapshot, host) {
                warnings.push(format!("{path}.tcpHosts[{i}].{w}"));
            }
        }
    }
    warnings
}

/// Warnings for the options of a Gateway that gloo does not apply yet and that guard nothing
/// (it is served without them).
fn gateway_unapplied(spec: &GatewaySpec) -> Vec<String> {
    // The listener options name paths of their own (an access log's OpenTelemetry sink).
    let mut fields: Vec<String> = spec
        .options
        .iter()
        .flat_map(crate::model::listener_options::ListenerOptions::unapplied)
        .map(|name| format!("spec.options.{name}"))
        .collect();
    let mut add = |path: &str, names: Vec<&'static str>| {
        fields.extend(names.into_iter().map(|name| format!("{path}.{name}")));
    };
    if let Some(options) = &spec.route_options {
        add("spec.routeOptions", options.unapplied());
    }
    if let Some(options) = spec.http_gateway.as_ref().and_then(|h| h.options.as_ref()) {
        add("spec.httpGateway.options", options.unapplied());
    }
    if let Some(options) = spec.tcp_gateway.as_ref().and_then(|t| t.options.as_ref()) {
        add("spec.tcpGateway.options", options.unapplied());
    }
    if let Some(hybrid) = &spec.hybrid_gateway {
        for (i, matched) in hybrid.matched_gateways.iter().enumerate() {
            let path = format!("spec.hybridGateway.matchedGateways[{i}]");
            if let Some(options) = matched
                .http_gateway
                .as_ref()
                .and_then(|h| h.options.as_ref())
            {
                add(&format!("{path}.httpGateway.options"), options.unapplied());
            }
            if let Some(options) = matched
                .tcp_gateway
                .as_ref()
                .and_then(|t| t.options.as_ref())
            {
                add(&format!("{path}.tcpGateway.options"), options.unapplied());
            }
        }
    }
    fields
        .into_iter()
        .map(|field| {
            format!(
                "{field}: gloo does not apply this option yet; the gateway is served without it"
            )
        })
        .collect()
}

/// Every `httpGateway` of a Gateway (its own and its hybrid chains'), each with its field path.
fn http_gateways(spec: &GatewaySpec) -> Vec<(String, &crate::model::gateway::HttpGateway)> {
    let own = spec
        .http_gateway
        .iter()
        .map(|http| ("spec.httpGateway".to_string(), http));
    let matched = spec.hybrid_gateway.iter().flat_map(|hybrid| {
        hybrid
            .matched_gateways
            .iter()
            .enumerate()
            .filter_map(|(i, matched)| {
                matched.http_gateway.as_ref().map(|http| {
                    (
                        format!("spec.hybridGateway.matchedGateways[{i}].httpGateway"),
                        http,
                    )
                })
            })
    });
    own.chain(matched).collect()
}

/// Warnings for connection manager settings of a Gateway that are served but mean nothing as
/// set: `setCurrentClientCertDetails` without a `forwardClientCertDetails` that sets the header
/// from the client certificate (Gloo's hcm plugin leaves it out then, and so does gloo).
fn gateway_ignored(spec: &GatewaySpec) -> Vec<String> {
    let mut warnings: Vec<String> = http_gateways(spec)
        .into_iter()
        .filter_map(|(path, http)| {
            let forward_proxy = http.options.as_ref()?.dynamic_forward_proxy.as_ref()?;
            crate::translate::dynamic_forward_proxy::warning(
                forward_proxy,
                &format!("{path}.options.dynamicForwardProxy"),
            )
        })
        .collect();
    warnings.extend(http_gateways(spec)
        .into_iter()
        .filter_map(|(path, http)| {
            let hcm = http.options.as_ref()?.http_connection_manager_settings.as_ref()?;
            hcm.set_current_client_cert_details?;
            if hcm
                .forward_client_cert_details
                .is_some_and(|f| f.sets_client_cert_details())
            {
                return None;
            }
            Some(format!(
                "{path}.options.httpConnectionManagerSettings.setCurrentClientCertDetails: ignored, as in Gloo: Envoy sets x-forwarded-client-cert from the client certificate only when forwardClientCertDetails is APPEND_FORWARD or SANITIZE_SET"
            ))
        }));
    // Gloo's `tcpFilterChainTranslator` reads only `sniDomains` of a TCP chain's matcher.
    for (i, matched) in spec
        .hybrid_gateway
        .iter()
        .flat_map(|h| h.matched_gateways.iter().enumerate())
    {
        let ssl = matched.matcher.as_ref().and_then(|m| m.ssl_config.as_ref());
        if matched.tcp_gateway.is_some()
            && ssl.is_some_and(|ssl| !matches!(ssl.ssl_secrets(), Ok(None)))
        {
            warnings.push(format!(
                "spec.hybridGateway.matchedGateways[{i}].matcher.sslConfig: ignored but for its sniDomains, as in Gloo: a TCP chain's matcher terminates no TLS (a host's own sslConfig does)"
            ));
        }
    }
    warnings
}

/// Warnings about the tracers of a Gateway's connection managers (see
/// [`crate::translate::tracing::warnings`]); `reports` tell which Upstreams are rejected.
fn gateway_tracing_warnings(
    snapshot: &ConfigSnapshot,
    reports: &Reports,
    spec: &GatewaySpec,
) -> Vec<String> {
    http_gateways(spec)
        .into_iter()
        .flat_map(|(path, http)| {
            let tracing = http
                .options
                .as_ref()
                .and_then(|o| o.http_connection_manager_settings.as_ref())
                .and_then(|h| h.tracing.as_ref());
            tracing
                .map(|t| {
                    crate::translate::tracing::warnings(
                        snapshot,
                        reports,
                        t,
                        &format!("{path}.options.httpConnectionManagerSettings.tracing"),
                    )
                })
                .unwrap_or_default()
        })
        .collect()
}

/// The errors for options gloo does not enforce yet (see [`RouteOptions::unenforced`]).
pub(crate) fn unenforced(fields: Vec<&'static str>, path: impl std::fmt::Display) -> Vec<String> {
    fields
        .into_iter()
        .map(|field| {
            format!(
                "{path}.{field}: gloo does not enforce this option yet, so it is rejected rather than served without it"
            )
        })
        .collect()
}

fn validate_destination(d: &Destination, path: &FieldPath<'_>, errors: &mut Vec<String>) {
    match d.target() {
        Err(e) => errors.push(format!("{path}: {e}")),
        Ok(None) => errors.push(format!("{path}: set one of upstream, kube, consul")),
        Ok(Some(DestinationTarget::Upstream(r))) if r.name.is_empty() => {
            errors.push(format!("{path}.upstream.name: required"))
        }
        Ok(Some(DestinationTarget::Consul(c))) if c.service_name.is_empty() => {
            errors.push(format!("{path}.consul.serviceName: required"))
        }
        Ok(Some(_)) => {}
    }
}

/// Envoy's `retry_on` conditions for HTTP routes.
const RETRY_ON: &[&str] = &[
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "envoy-ratelimited",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "http3-post-connect-failure",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

/// Envoy's domain rules: `*`, or a name with at most one wildcard, as a prefix (`*.x`,
/// `*-x`) or a suffix (`x.*`, `x-*`).
fn check_domain(domain: &str) -> Result<(), String> {
    if domain.is_empty() {
        return Err("a domain cannot be empty".into());
    }
    if domain == "*" {
        return Ok(());
    }
    let stars = domain.matches('*').count();
    if stars > 1 || (stars == 1 && !domain.starts_with('*') && !domain.ends_with('*')) {
        return Err(format!(
            "{domain:?}: a wildcard may only be the first or last character, once"
        ));
    }
    if domain.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(format!("{domain:?} is not a host name"));
    }
    Ok(())
}

fn expression_matches(e: &SelectorExpression, labels: &BTreeMap<String, String>) -> bool {
    let value = labels.get(&e.key);
    let in_values = value.is_some_and(|v| e.values.iter().any(|x| x == v));
    match e.operator {
        ExpressionOperator::Equals | ExpressionOperator::DoubleEquals | ExpressionOperator::In => {
            in_values
        }
        ExpressionOperator::NotEquals | ExpressionOperator::NotIn => !in_values,
        ExpressionOperator::Exists => value.is_some(),
        ExpressionOperator::DoesNotExist => value.is_none(),
        ExpressionOperator::GreaterThan | ExpressionOperator::LessThan => {
            let (Some(v), Some(bound)) = (
                value.and_then(|v| v.parse::<i64>().ok()),
                e.values.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if matches!(e.operator, ExpressionOperator::GreaterThan) {
                v > bound
            } else {
                v < bound
            }
        }
    }
}

/// Validates a regex as Envoy's `safe_regex` (RE2) would: no backreferences or lookaround, and
/// regex-syntax accepts the same language. Parsing is enough to validate, and far cheaper than
/// compiling.
pub(crate) fn parse_regex(pattern: &str) -> Result<(), String> {
    regex_syntax::Parser::new()
        .parse(pattern)
        .map_err(|e| format!("invalid regex {pattern:?}: {}", first_line(&e.to_string())))
        .and_then(|hir| {
            // RE2 refuses counted repetitions above 1000, which regex-syntax allows.
            if max_repetition(&hir) > 1000 {
                Err(format!(
                    "invalid regex {pattern:?}: repetition counts above 1000 are not allowed (RE2)"
                ))
            } else {
                Ok(())
            }
        })
}

/// Whether `pattern` is in a subset of regex syntax whose members are all valid, recognised
/// without allocating: literal characters, `.`, `^`, `$`, escaped punctuation, `\d` `\w` `\s`
/// (and their negations), alternation, groups `( )` without flags or names, `*` `+` `?`
/// (optionally lazy) right after an atom or a group, and bracket classes (optionally negated) of
/// ASCII letters and digits and ascending ranges of them. `false` says nothing: the pattern is
/// then parsed. (`plain_regexes_are_valid` checks this against the parser.)
fn plainly_valid_regex(pattern: &str) -> bool {
    /// Groups deeper than this are left to the parser (its nesting limit is 250).
    const MAX_DEPTH: u32 = 32;
    let mut chars = pattern.chars();
    // Whether the previous item can be repeated: a literal, a class, a group, `.`.
    let mut repeatable = false;
    // Whether the previous item is a repetition (which a `?` makes lazy, and nothing else may
    // follow directly).
    let mut repeated = false;
    let mut depth = 0u32;
    while let Some(c) = chars.next() {
        let was_repeated = std::mem::take(&mut repeated);
        match c {
            '*' | '+' | '?' => {
                if c == '?' && was_repeated {
                    // Lazy: `a+?`; nothing may repeat it again.
                    repeatable = false;
                    continue;
                }
                if !repeatable {
                    return false;
                }
                repeatable = false;
                repeated = true;
            }
            '\\' => match chars.next() {
                Some(
                    '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^'
                    | '$' | '-' | '/' | 'd' | 'D' | 'w' | 'W' | 's' | 'S',
                ) => repeatable = true,
                _ => return false,
            },
            '^' | '$' | '|' => repeatable = false,
            '(' => {
                // `(?` starts flags, names or non-capturing groups: left to the parser.
                if chars.as_str().starts_with('?') || depth >= MAX_DEPTH {
                    return false;
                }
                depth += 1;
                repeatable = false;
            }
            ')' => {
                if depth == 0 {
                    return false;
                }
                depth -= 1;
                repeatable = true;
            }
            '[' => {
                let rest = chars.as_str();
                let rest = rest.strip_prefix('^').unwrap_or(rest);
                let Some(end) = rest.find(']') else {
                    return false;
                };
                if !plain_class(&rest[..end]) {
                    return false;
                }
                chars = rest[end + 1..].chars();
                repeatable = true;
            }
            ']' | '{' | '}' => return false,
            _ => repeatable = true,
        }
    }
    depth == 0
}

/// Whether the inside of a bracket class is one or more ASCII letters or digits and ascending
/// ranges of them (`a-z0-9_` is not: `_` is left to the parser).
fn plain_class(items: &str) -> bool {
    let bytes = items.as_bytes();
    if bytes.is_empty() {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_alphanumeric() {
            return false;
        }
        if bytes.get(i + 1) == Some(&b'-') {
            match bytes.get(i + 2) {
                Some(end) if end.is_ascii_alphanumeric() && *end >= bytes[i] => i += 3,
                _ => return false,
            }
        } else {
            i += 1;
        }
    }
    true
}

/// The largest counted repetition bound in a regex (`a{1001}` gives 1001).
pub(crate) fn max_repetition(hir: &regex_syntax::hir::Hir) -> u32 {
    use regex_syntax::hir::HirKind;
    match hir.kind() {
        HirKind::Repetition(r) => r.min.max(r.max.unwrap_or(0)).max(max_repetition(&r.sub)),
        HirKind::Capture(c) => max_repetition(&c.sub),
        HirKind::Concat(items) | HirKind::Alternation(items) => {
            items.iter().map(max_repetition).max().unwrap_or(0)
        }
        _ => 0,
    }
}

fn first_line(text: &str) -> &str {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(text)
        .trim()
}

/// Gloo's default body for replaced invalid routes.
const INVALID_ROUTE_BODY: &str = "Gloo Gateway has invalid configuration. Administrators should run `glooctl check` to find and fix config errors.";

/// The replacement response of Settings' `gloo.invalidConfigPolicy`, when it replaces invalid
/// routes (the first Settings that says so, in namespace/name order).
fn invalid_route_response(snapshot: &ConfigSnapshot) -> Option<DirectResponseAction> {
    snapshot.settings.values().find_map(|entry| {
        let policy = entry.object.spec.invalid_config_policy()?;
        policy.replace_invalid_routes.then(|| DirectResponseAction {
            status: policy.invalid_route_response_code.unwrap_or(404),
            body: policy
                .invalid_route_response_body
                .clone()
                .unwrap_or_else(|| INVALID_ROUTE_BODY.to_string()),
        })
    })
}

/// A default Gloo install's gateways: `gateway-proxy` on 8080 and `gateway-proxy-ssl` on 8443.
fn default_gateways() -> Vec<(ResourceRef, Entry<GatewaySpec>)> {
    let make = |name: &str, port: u32, ssl: bool| {
        let spec = GatewaySpec {
            bind_address: "::".to_string(),
            bind_port: port,
            ssl,
            http_gateway: Some(Default::default()),
            ..Default::default()
        };
        let metadata = crate::model::ObjectMeta::new(crate::model::DEFAULT_NAMESPACE, name);
        (
            metadata.to_ref(),
            Entry {
                object: Arc::new(Object::new(metadata, spec)),
                origin: crate::load::Origin::new("default gateways", 1),
            },
        )
    };
    vec![
        make("gateway-proxy", 8080, false),
        make("gateway-proxy-ssl", 8443, true),
    ]
}

#[cfg(test)]
mod tests {
    use super::{parse_regex, plainly_valid_regex};

    /// Every pattern the shape check accepts, the parser accepts too: all patterns of up to 4
    /// characters over an alphabet of regex syntax, and longer pseudo-random ones.
    #[test]
    fn plain_regexes_are_valid() {
        let alphabet: Vec<char> = "aZ09/-.\\d[]^$*+?|(){} é".chars().collect();
        let mut checked = 0usize;
        let mut accepted = 0usize;
        let mut check = |pattern: &str| {
            checked += 1;
            if plainly_valid_regex(pattern) {
                accepted += 1;
                assert_eq!(parse_regex(pattern), Ok(()), "{pattern:?}");
            }
        };
        let mut pattern = String::new();
        fn all(alphabet: &[char], pattern: &mut String, left: usize, check: &mut dyn FnMut(&str)) {
            check(pattern);
            if left == 0 {
                return;
            }
            for c in alphabet {
                pattern.push(*c);
                all(alphabet, pattern, left - 1, check);
                pattern.pop();
            }
        }
        all(&alphabet, &mut pattern, 4, &mut check);
        // A linear congruential generator: the same patterns on every run.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |bound: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize % bound
        };
        for _ in 0..200_000 {
            let len = 5 + next(10);
            let pattern: String = (0..len).map(|_| alphabet[next(alphabet.len())]).collect();
            check(&pattern);
        }
        // The check must also accept something, or it proves nothing.
        assert!(accepted > 10_000, "{accepted} of {checked} accepted");
    }

    /// The shapes routes use are recognised without a parse; others are left to the parser.
    #[test]
    fn common_route_regexes_are_plain() {
        for plain in [
            "/re/1/[0-9]+",
            "/api/v[0-9]+/.*",
            "/users/[a-zA-Z0-9]+/orders/\\d+",
            "(GET|POST)",
            "/static/.+\\.(css|js)$",
            "^/a(/b)?$",
            "",
        ] {
            assert!(plainly_valid_regex(plain), "{plain:?}");
        }
        for left in [
            "a{2}", "(?i)abc", "[a-z_]", "[z-a]", "[]", "a**", "*a", "(a", "a)", "\\1", "\\pL",
        ] {
            assert!(!plainly_valid_regex(left), "{left:?}");
        }
    }
}
