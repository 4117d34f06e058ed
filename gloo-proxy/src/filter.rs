//! HTTP filters: a registry that turns the `http_filters` of a listener (and the routes'
//! `typed_per_filter_config`) into per-route tower stacks. Applications register their own
//! filters next to the built-in ones.
//!
//! A filter is any tower [`Layer`] over [`HttpService`]; a [`FilterFactory`]
//! builds it from the filter's config and the most specific per-route override (a weighted
//! cluster's, else the route's, else its virtual host's), or decides the filter does nothing
//! on that route.
//!
//! ```
//! use envoy_types::pb::google::protobuf::{Any, StringValue};
//! use gloo_proxy::body::Body;
//! use gloo_proxy::filter::{FilterFactory, FilterLayer, FilterRegistry, HttpService};
//! use prost::Message;
//! use tower::util::MapResponseLayer;
//! use tower::{Layer, ServiceExt};
//!
//! /// Adds `x-hello` to every response: its value is the filter's config (a
//! /// `google.protobuf.StringValue`) or the route's own; an empty one turns it off.
//! struct Hello;
//!
//! impl FilterFactory for Hello {
//!     fn layer(
//!         &self,
//!         config: &Any,
//!         per_route: Option<&Any>,
//!     ) -> Result<Option<FilterLayer>, String> {
//!         let config = per_route.unwrap_or(config);
//!         let text = StringValue::decode(config.value.as_slice()).map_err(|e| e.to_string())?;
//!         if text.value.is_empty() {
//!             return Ok(None);
//!         }
//!         let value = http::HeaderValue::try_from(text.value).map_err(|e| e.to_string())?;
//!         Ok(Some(FilterLayer::new(MapResponseLayer::new(move |mut r: http::Response<Body>| {
//!             r.headers_mut().insert("x-hello", value.clone());
//!             r
//!         }))))
//!     }
//! }
//!
//! let mut registry = FilterRegistry::with_builtins();
//! registry.register("example.hello", Hello);
//! let config = Any {
//!     type_url: "type.googleapis.com/google.protobuf.StringValue".into(),
//!     value: StringValue { value: "world".into() }.encode_to_vec(),
//! };
//! let layer = registry.get("example.hello").expect("registered").layer(&config, None)?;
//! let layer = layer.expect("on for this route");
//!
//! // The route's stack: the filter over the service that forwards (here, a fixed answer).
//! let forward = HttpService::new(tower::service_fn(|_request: http::Request<Body>| async {
//!     Ok(http::Response::new(Body::from("hello")))
//! }));
//! let stack = layer.layer(forward);
//! let runtime = tokio::runtime::Builder::new_current_thread().build()?;
//! let response = runtime.block_on(stack.oneshot(http::Request::new(Body::empty())))?;
//! assert_eq!(response.headers()["x-hello"], "world");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use envoy_types::pb::google::protobuf::Any;
use http::{Request, Response};
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceExt};

use crate::body::{Body, BoxError};

/// The service every filter wraps: a request in, a response out, never an error (failures
/// are responses).
pub type HttpService = BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>;

/// A filter for one route: a tower [`Layer`] over [`HttpService`].
///
/// Any ordinary tower layer whose service keeps the request a `Request<Body>` and answers
/// every request ([`FilterLayer::new`]: tower's own, tower-http's, gloo-filters' or one's
/// own), or a function that wraps the inner service ([`FilterLayer::from_fn`], for layers
/// that need their request or error types adapted). Cloning shares the layer.
///
/// A `FilterLayer` is also a [`FilterFactory`] that ignores the filter's config: registered
/// as one, it runs on every route its filter applies to.
///
/// ```
/// use gloo_proxy::body::Body;
/// use gloo_proxy::filter::{FilterLayer, FilterRegistry};
/// use tower::util::MapResponseLayer;
///
/// fn powered_by(mut response: http::Response<Body>) -> http::Response<Body> {
///     let value = http::HeaderValue::from_static("my-gateway");
///     response.headers_mut().insert("x-powered-by", value);
///     response
/// }
///
/// let powered_by = FilterLayer::new(MapResponseLayer::new(powered_by));
/// let mut registry = FilterRegistry::with_builtins();
/// registry.register_everywhere("example.powered_by", powered_by);
/// assert_eq!(registry.everywhere(), ["example.powered_by"]);
/// ```
#[derive(Clone)]
pub struct FilterLayer(Arc<dyn Fn(HttpService) -> HttpService + Send + Sync>);

impl FilterLayer {
    /// A tower layer as a filter. Its service may answer with any body of [`Bytes`]
    /// frames (boxed into a [`Body`] unless it already is one).
    pub fn new<L, B>(layer: L) -> Self
    where
        L: Layer<HttpService> + Send + Sync + 'static,
        L::Service: Service<Request<Body>, Response = Response<B>, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        <L::Service as Service<Request<Body>>>::Future: Send + 'static,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        FilterLayer::from_fn(move |inner| {
            HttpService::new(layer.layer(inner).map_response(|r| r.map(Body::new)))
        })
    }

    /// A filter from a function that wraps the inner service.
    ///
    /// ```
    /// use gloo_proxy::filter::{FilterLayer, HttpService};
    /// use tower::ServiceExt;
    ///
    /// // Requests without a user agent get one before the route's upstream sees them.
    /// let layer = FilterLayer::from_fn(|inner: HttpService| {
    ///     HttpService::new(inner.map_request(|mut request: http::Request<_>| {
    ///         let agent = http::HeaderValue::from_static("gloo");
    ///         request.headers_mut().entry("user-agent").or_insert(agent);
    ///         request
    ///     }))
    /// });
    /// # let _ = layer;
    /// ```
    pub fn from_fn<F>(wrap: F) -> Self
    where
        F: Fn(HttpService) -> HttpService + Send + Sync + 'static,
    {
        FilterLayer(Arc::new(wrap))
    }

    /// `inner` under this filter, as [`Layer::layer`] (an inherent method, so calling it needs
    /// no import and is not ambiguous with [`FilterFactory::layer`]).
    pub fn layer(&self, inner: HttpService) -> HttpService {
        (self.0)(inner)
    }

    /// Whether `other` is this very layer (a clone of it), not merely an equal one.
    pub(crate) fn same_as(&self, other: &FilterLayer) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Layer<HttpService> for FilterLayer {
    type Service = HttpService;

    fn layer(&self, inner: HttpService) -> HttpService {
        (self.0)(inner)
    }
}

impl std::fmt::Debug for FilterLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilterLayer").finish_non_exhaustive()
    }
}

/// The same layer on every route, whatever the filter's config says.
impl FilterFactory for FilterLayer {
    fn layer(
        &self,
        _config: &Any,
        _per_route: Option<&Any>,
    ) -> Result<Option<FilterLayer>, String> {
        Ok(Some(self.clone()))
    }
}

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
    /// Built-in filters that act only on gRPC-Web calls (by the same key as their factory):
    /// see [`FilterRegistry::register_for_grpc_web`].
    grpc_web_only: std::collections::HashSet<String>,
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
#[derive(Clone)]
pub(crate) struct ClusterChannel {
    upstreams: Upstreams,
    cluster: Arc<str>,
}

impl ClusterChannel {
    /// A channel to `cluster` of `upstreams`.
    pub(crate) fn new(upstreams: &Upstreams, cluster: &str) -> Self {
        ClusterChannel {
            upstreams: upstreams.clone(),
            cluster: Arc::from(cluster),
        }
    }
}

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
        let key = key.into();
        self.grpc_web_only.remove(&key);
        self.factories.insert(key, Arc::new(factory));
    }

    /// Registers a built-in filter that does nothing to requests other than gRPC-Web calls
    /// (the gRPC-Web filter): listeners also build their stacks without it, for the other
    /// requests (see [`RouteStacks::for_grpc_web`](crate::config::RouteStacks::for_grpc_web)).
    /// Registering another factory under the key makes it an ordinary filter again.
    pub(crate) fn register_for_grpc_web(
        &mut self,
        key: &str,
        factory: impl FilterFactory + 'static,
    ) {
        self.register(key, factory);
        self.grpc_web_only.insert(key.to_string());
    }

    /// Whether the filter [`find`](Self::find) finds for an `HttpFilter` acts only on gRPC-Web
    /// calls.
    pub(crate) fn is_for_grpc_web(&self, name: &str, type_url: &str) -> bool {
        if self.factories.contains_key(type_url) {
            return self.grpc_web_only.contains(type_url);
        }
        self.grpc_web_only.contains(name)
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

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{HeaderName, HeaderValue};
    use http_body_util::BodyExt;
    use tower_http::map_response_body::MapResponseBodyLayer;
    use tower_http::set_header::{SetRequestHeaderLayer, SetResponseHeaderLayer};

    /// The route's service under the filters: answers with the `x-seen` request header it got
    /// (or `none`) as its body.
    fn echo() -> HttpService {
        HttpService::new(tower::service_fn(|request: Request<Body>| async move {
            let seen = request
                .headers()
                .get("x-seen")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none")
                .to_string();
            Ok(Response::new(Body::from(seen)))
        }))
    }

    async fn call(service: HttpService) -> (Response<()>, String) {
        let response = service
            .oneshot(Request::new(Body::empty()))
            .await
            .unwrap_or_else(|never| match never {});
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.expect("body").to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        (Response::from_parts(parts, ()), text)
    }

    #[tokio::test]
    async fn tower_http_middleware_runs_as_filters() {
        let request = FilterLayer::new(SetRequestHeaderLayer::overriding(
            HeaderName::from_static("x-seen"),
            HeaderValue::from_static("by-the-filter"),
        ));
        let response = FilterLayer::new(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("x-powered-by"),
            HeaderValue::from_static("tower-http"),
        ));
        let (answer, body) = call(response.layer(request.layer(echo()))).await;
        assert_eq!(
            body, "by-the-filter",
            "the request filter ran before the route"
        );
        assert_eq!(answer.headers()["x-powered-by"], "tower-http");

        let (answer, body) = call(echo()).await;
        assert_eq!(body, "none");
        assert!(answer.headers().get("x-powered-by").is_none());
    }

    /// A layer whose responses carry a body of another type is still a filter: its bodies are
    /// boxed into the proxy's.
    #[tokio::test]
    async fn layers_answering_with_other_body_types_are_filters() {
        let shout = FilterLayer::new(MapResponseBodyLayer::new(|body: Body| {
            body.map_frame(|frame| frame.map_data(|data| Bytes::from(data.to_ascii_uppercase())))
        }));
        let (_, body) = call(shout.layer(echo())).await;
        assert_eq!(body, "NONE");
    }

    /// Registered as a factory, a layer applies on every route whatever the config says.
    #[tokio::test]
    async fn a_filter_layer_is_its_own_factory() {
        let mut registry = FilterRegistry::new();
        registry.register(
            "test.powered_by",
            FilterLayer::new(SetResponseHeaderLayer::overriding(
                HeaderName::from_static("x-powered-by"),
                HeaderValue::from_static("registry"),
            )),
        );
        let factory = registry.get("test.powered_by").expect("registered");
        let config = Any {
            type_url: "type.googleapis.com/google.protobuf.StringValue".into(),
            value: b"ignored".to_vec(),
        };
        for (config, per_route) in [(&Any::default(), None), (&config, Some(&config))] {
            let layer = factory
                .layer(config, per_route)
                .expect("no error")
                .expect("on for the route");
            assert_eq!(format!("{layer:?}"), "FilterLayer { .. }");
            let (answer, _) = call(layer.layer(echo())).await;
            assert_eq!(answer.headers()["x-powered-by"], "registry");
        }
    }
}
