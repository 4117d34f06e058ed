//! HTTP filters: a registry that turns the `http_filters` of a listener (and the routes'
//! `typed_per_filter_config`) into per-route tower stacks. Applications register their own
//! filters next to the built-in ones.
//!
//! A filter is any tower [`Layer`](tower::Layer) over [`HttpService`]; a [`FilterFactory`]
//! builds it from the filter's config and the most specific per-route override (the route's,
//! else its virtual host's), or decides the filter does nothing on that route.
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
    /// The layer for one route, from the listener-level `config` and the route's (or virtual
    /// host's) override; `Ok(None)` when the filter does nothing on this route. An error
    /// rejects the configuration (naming the filter is the caller's job).
    fn layer(&self, config: &Any, per_route: Option<&Any>) -> Result<Option<FilterLayer>, String>;
}

/// Filters by name (the `name` of an `HttpFilter`) and by config type URL.
#[derive(Clone, Default)]
pub struct FilterRegistry {
    factories: HashMap<String, Arc<dyn FilterFactory>>,
    everywhere: Vec<String>,
}

impl std::fmt::Debug for FilterRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.factories.keys()).finish()
    }
}

/// The router filter's name: always last, and handled by the proxy itself.
pub const ROUTER: &str = "envoy.filters.http.router";

impl FilterRegistry {
    /// An empty registry (the router is always known).
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry with the filters gloo-proxy serves itself: fault injection and CORS, and
    /// Envoy's local rate limit (feature `ratelimit`).
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

    /// The factory for an `HttpFilter`: by its config's type URL, else by its name.
    pub fn find(&self, name: &str, type_url: &str) -> Option<&Arc<dyn FilterFactory>> {
        self.factories
            .get(type_url)
            .or_else(|| self.factories.get(name))
    }
}
