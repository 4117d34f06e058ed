//! HTTP filters: a registry that turns the `http_filters` of a listener (and the routes'
//! `typed_per_filter_config`) into per-route tower stacks. Applications register their own
//! filters next to the built-in ones.
//!
//! A filter is any tower [`Layer`](tower::Layer) over [`HttpService`]; a [`FilterFactory`]
//! builds it from the filter's config and the most specific per-route override (a weighted
//! cluster's, else the route's, else its virtual host's), or decides the filter does nothing
//! on that route.
//!
//! ```
//! use std::sync::Arc;
//! use gloo_proxy::filter::{FilterFactory, FilterLayer, FilterRegistry, HttpService};
//! use envoy_types::pb::google::protobuf::Any;
//! use tower::ServiceExt;
//!
//! /// Adds `x-hello: world` to every response.
//! struct Hello;
//! impl FilterFactory for Hello {
//!     fn layer(&self, _config: &Any, _per_route: Option<&Any>) -> Result<Option<FilterLayer>, String> {
//!         Ok(Some(Arc::new(|inner: HttpService| {
//!             HttpService::new(inner.map_response(|mut r: http::Response<gloo_proxy::body::Body>| {
//!                 r.headers_mut().insert("x-hello", http::HeaderValue::from_static("world"));
//!                 r
//!             }))
//!         })))
//!     }
//! }
//! let mut registry = FilterRegistry::with_builtins();
//! registry.register("example.hello", Hello);
//! assert!(registry.get("example.hello").is_some());
//! ```

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use envoy_types::pb::google::protobuf::Any;
use http::{Request, Response};
use tower::util::BoxCloneSyncService;

use crate::body::Body;

/// The service every filter wraps: a request in, a response out, never an error (failures
/// are responses).
pub type HttpService = BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>;

/// A filter for one route: wraps the inner service.
pub type FilterLayer = Arc<dyn Fn(HttpService) -> HttpService + Send + Sync>;

/// Builds a filter's layer from its config.
pub trait FilterFactory: Send + Sync {
    /// The layer for one route, from the listener-level `config` and the most specific
    /// override (a weighted cluster's, the route's or its virtual host's); `Ok(None)` when the
    /// filter does nothing on this route. An error rejects the configuration (naming the
    /// filter is the caller's job).
    fn layer(&self, config: &Any, per_route: Option<&Any>) -> Result<Option<FilterLayer>, String>;

    /// The layer for one route from every per-route config that applies, least specific
    /// first (the virtual host's, the route's, a weighted cluster's), for filters that merge
    /// them as Envoy's `getMergedPerFilterConfig` does (ext_authz merges its context
    /// extensions). By default only the most specific one is used, as [`layer`](Self::layer)
    /// takes it.
    fn layer_merged(
        &self,
        config: &Any,
        per_route: &[&Any],
    ) -> Result<Option<FilterLayer>, String> {
        self.layer(config, per_route.last().copied())
    }

    /// Whether the layer depends on the route itself, not only on the filter configs (Envoy's
    /// rate limit filter reads the route's and its virtual host's `rate_limits`). Such a
    /// filter is built for each route with [`FilterFactory::route_layer`]; the others once per
    /// config object, so routes that share an object share the layer's state. Default `false`.
    fn per_route(&self) -> bool {
        false
    }

    /// The layer for the route `route` (called only when [`FilterFactory::per_route`] says
    /// so), from the listener-level `config` and the most specific override, as
    /// [`FilterFactory::layer`]. The default ignores the route.
    fn route_layer(
        &self,
        config: &Any,
        per_route: Option<&Any>,
        route: RouteInfo<'_>,
    ) -> Result<Option<FilterLayer>, String> {
        let _ = route;
        self.layer(config, per_route)
    }
}

/// The route a [`FilterFactory::route_layer`] builds for.
#[derive(Debug, Clone, Copy)]
pub struct RouteInfo<'a> {
    /// Its virtual host.
    pub virtual_host: &'a crate::router::VirtualHost,
    /// The route.
    pub route: &'a crate::router::Route,
    /// The weighted cluster (its index among the route's) when the layer is for the requests
    /// sent to that target (which has per-filter configs of its own).
    pub target: Option<usize>,
}

/// Filters by name (the `name` of an `HttpFilter`) and by config type URL.
#[derive(Clone, Default)]
pub struct FilterRegistry {
    factories: HashMap<String, Arc<dyn FilterFactory>>,
    everywhere: Vec<String>,
    upstreams: Upstreams,
}

/// The proxy's upstream clusters, for filters that call out (a remote JWKS, say) through a
/// cluster as Envoy's filters do. A [`FilterRegistry`] and its clones share one; the gateway
/// that serves with the registry attaches its clusters when it starts
/// ([`ProxyServer`](crate::gateway::ProxyServer) does; a serving loop of one's own calls
/// [`attach`](Self::attach)). Until then (or in a registry that only validates),
/// [`send`](Self::send) fails with "no clusters".
#[derive(Clone, Default)]
pub struct Upstreams(
    Arc<std::sync::OnceLock<tokio::sync::watch::Receiver<Arc<crate::config::ProxyConfig>>>>,
);

impl std::fmt::Debug for Upstreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstreams")
            .field("attached", &self.0.get().is_some())
            .finish()
    }
}

impl Upstreams {
    /// Serves calls from the clusters of the configuration in force on `config` (the channel
    /// the [`Proxy`](crate::proxy::Proxy) reads). The first attach wins: returns whether this
    /// one did.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use gloo_proxy::config::ProxyConfig;
    /// use gloo_proxy::filter::FilterRegistry;
    ///
    /// let registry = FilterRegistry::with_builtins();
    /// let (_config_tx, config_rx) = tokio::sync::watch::channel(Arc::new(ProxyConfig::default()));
    /// assert!(registry.upstreams().attach(config_rx.clone()));
    /// // Clones of the registry share its clusters: they are attached already.
    /// assert!(!registry.clone().upstreams().attach(config_rx));
    /// ```
    pub fn attach(
        &self,
        config: tokio::sync::watch::Receiver<Arc<crate::config::ProxyConfig>>,
    ) -> bool {
        self.0.set(config).is_ok()
    }

    /// Sends `request` to one healthy endpoint of `cluster`, as the router would: the
    /// request's URI supplies the path and query (and the `host` header when the request has
    /// none); the cluster supplies the endpoint, its protocol and its TLS.
    pub async fn send(
        &self,
        cluster: &str,
        mut request: Request<Body>,
    ) -> Result<Response<Body>, String> {
        let config = self
            .0
            .get()
            .ok_or("no clusters: the gateway has not started")?
            .borrow()
            .clone();
        let cluster = config
            .clusters
            .get(cluster)
            .ok_or_else(|| format!("cluster {cluster:?} not found"))?
            .clone();
        let endpoint = cluster
            .pick(None, None)
            .ok_or_else(|| format!("cluster {:?} has no healthy endpoint", cluster.name()))?;
        if !request.headers().contains_key(http::header::HOST) {
            if let Some(host) = request.uri().authority().map(|a| a.as_str().to_string()) {
                if let Ok(value) = http::HeaderValue::from_str(&host) {
                    request.headers_mut().insert(http::header::HOST, value);
                }
            }
        }
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(http::uri::Scheme::HTTP);
        parts.authority = Some(endpoint.authority.clone());
        parts.path_and_query = Some(
            request
                .uri()
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/")),
        );
        *request.uri_mut() = http::Uri::from_parts(parts).map_err(|e| e.to_string())?;
        *request.version_mut() = if cluster.is_http2() {
            http::Version::HTTP_2
        } else {
            http::Version::HTTP_11
        };
        let _active = endpoint.start_request();
        let response = cluster.send(request, &endpoint).await;
        cluster.record_outcome(
            &endpoint,
            response.as_ref().ok().map(|r| r.status().as_u16()),
        );
        response.map_err(|e| format!("cluster {:?}: {e}", cluster.name()))
    }
}

impl std::fmt::Debug for FilterRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.factories.keys()).finish()
    }
}

/// A gRPC channel (for tonic clients) to a cluster of the proxy: each call goes to one healthy
/// endpoint of the cluster, through the proxy's own connection pools (HTTP/2 when the cluster
/// says so), as Envoy's `envoy_grpc` client does. Used by the filters that call a service
/// (ext_authz, the rate limit service).
#[cfg(any(feature = "ratelimit", feature = "extauth"))]
#[derive(Clone)]
pub(crate) struct ClusterChannel {
    upstreams: Upstreams,
    cluster: Arc<str>,
}

#[cfg(any(feature = "ratelimit", feature = "extauth"))]
impl ClusterChannel {
    /// A channel to `cluster` of `upstreams`.
    pub(crate) fn new(upstreams: &Upstreams, cluster: &str) -> Self {
        ClusterChannel {
            upstreams: upstreams.clone(),
            cluster: Arc::from(cluster),
        }
    }
}

#[cfg(any(feature = "ratelimit", feature = "extauth"))]
impl tower::Service<Request<tonic::body::Body>> for ClusterChannel {
    type Response = Response<Body>;
    type Error = crate::body::BoxError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response<Body>, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<tonic::body::Body>) -> Self::Future {
        let upstreams = self.upstreams.clone();
        let cluster = self.cluster.clone();
        Box::pin(async move {
            upstreams
                .send(&cluster, request.map(Body::new))
                .await
                .map_err(Self::Error::from)
        })
    }
}

/// What a filter builds once per config (a verifier, a client), by the config's encoding, so
/// every route of every listener with that config shares it. It keeps up to 64 configs (the
/// listeners × stages in force, with room for a change); past that it starts afresh.
#[cfg(any(feature = "jwt", feature = "ratelimit", feature = "extauth"))]
pub(crate) struct BuiltConfigs<T> {
    built: std::sync::Mutex<HashMap<Vec<u8>, T>>,
    filter: &'static str,
}

#[cfg(any(feature = "jwt", feature = "ratelimit", feature = "extauth"))]
impl<T: Clone> BuiltConfigs<T> {
    const MOST: usize = 64;

    /// An empty cache for the filter named `filter` (in error messages).
    pub(crate) fn new(filter: &'static str) -> Self {
        BuiltConfigs {
            built: std::sync::Mutex::default(),
            filter,
        }
    }

    /// What `config` built, building it with `build` the first time.
    pub(crate) fn get_or_build(
        &self,
        config: &Any,
        build: impl FnOnce() -> Result<T, String>,
    ) -> Result<T, String> {
        let mut cache = self
            .built
            .lock()
            .map_err(|_| format!("the {} filter's config cache is poisoned", self.filter))?;
        if let Some(built) = cache.get(&config.value) {
            return Ok(built.clone());
        }
        let built = build()?;
        if cache.len() >= Self::MOST {
            cache.clear();
        }
        cache.insert(config.value.clone(), built.clone());
        Ok(built)
    }
}

/// Decodes a filter config that must be of type `type_url`.
#[cfg(any(feature = "transform", feature = "waf"))]
pub(crate) fn decode_typed<M: prost::Message + Default>(
    any: &Any,
    type_url: &str,
) -> Result<M, String> {
    if any.type_url != type_url {
        return Err(format!("expected {type_url}, got {}", any.type_url));
    }
    M::decode(any.value.as_slice()).map_err(|e| format!("cannot decode {}: {e}", any.type_url))
}

/// The router filter's name: always last, and handled by the proxy itself.
pub const ROUTER: &str = "envoy.filters.http.router";

impl FilterRegistry {
    /// An empty registry (the router is always known).
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry with the filters gloo-proxy serves itself: fault injection, CORS and header
    /// mutation (the removals gloo-core emits), Envoy's local and global rate limits (feature
    /// `ratelimit`), Envoy's JWT authentication (feature `jwt`), envoy-gloo's transformations
    /// (feature `transform`), Envoy's ext_authz (feature `extauth`) and envoy-gloo's ModSecurity
    /// WAF (feature `waf`, off by default).
    pub fn with_builtins() -> Self {
        let mut registry = Self::new();
        crate::builtin::register(&mut registry);
        registry
    }

    /// Registers a factory under a filter name or a config type URL (the type URL wins when
    /// both are registered).
    pub fn register(&mut self, key: impl Into<String>, factory: impl FilterFactory + 'static) {
        self.factories.insert(key.into(), Arc::new(factory));
    }

    /// Registers a filter that runs on every HTTP listener, whether or not its connection
    /// manager lists it: after the listed filters, just before the router, with an empty
    /// config (its factory still sees each route's `typed_per_filter_config[name]`). A
    /// listener that lists `name` itself keeps it where it lists it. This is how a bespoke
    /// gateway adds its own filter to configurations gloo-core translates.
    pub fn register_everywhere(
        &mut self,
        name: impl Into<String>,
        factory: impl FilterFactory + 'static,
    ) {
        let name = name.into();
        self.register(name.clone(), factory);
        if !self.everywhere.contains(&name) {
            self.everywhere.push(name);
        }
    }

    /// The filters registered with [`FilterRegistry::register_everywhere`], in order.
    pub fn everywhere(&self) -> &[String] {
        &self.everywhere
    }

    /// The factory for a filter name or type URL.
    pub fn get(&self, key: &str) -> Option<&Arc<dyn FilterFactory>> {
        self.factories.get(key)
    }

    /// The upstream clusters this registry's filters call out through.
    pub fn upstreams(&self) -> &Upstreams {
        &self.upstreams
    }

    /// The factory for an `HttpFilter`: by its config's type URL, else by its name.
    pub fn find(&self, name: &str, type_url: &str) -> Option<&Arc<dyn FilterFactory>> {
        self.factories
            .get(type_url)
            .or_else(|| self.factories.get(name))
    }
}
