//! [`DynamicMetadata`]: Envoy's per-request dynamic metadata, as a typed value in
//! `http::Extensions`, so that filters can hand data to the filters after them as Envoy's do
//! through the stream info:
//!
//! * the `jwt` layer writes a verified token's payload under its provider's
//!   `payload_in_metadata` key in namespace `envoy.filters.http.jwt_authn`
//!   ([`JWT_AUTHN_NAMESPACE`]), as Envoy's `jwt_authn` filter does;
//! * the `transform` layer writes `dynamic_metadata_values`;
//! * the global rate limit layer's `metadata` action
//!   ([`RateLimitActions::metadata`](crate::ratelimit::global::RateLimitActions::metadata))
//!   reads it, so limits can be keyed on a JWT claim.
//!
//! A filter that writes metadata merges into the `DynamicMetadata` already in the request's
//! extensions (inserting one if there is none), key by key, as Envoy's `setDynamicMetadata`
//! does: see [`DynamicMetadata::publish`].
//!
//! [`RouteMetadata`] is the other kind Envoy's filters read: the `metadata` of the route a
//! request matched (Gloo's route option `envoyMetadata`), which a router puts in the request's
//! extensions; the rate limit `metadata` action reads it with `source: ROUTE_ENTRY`.

use std::collections::BTreeMap;
use std::sync::Arc;

/// The namespace Envoy's `jwt_authn` filter writes `payload_in_metadata` under.
pub const JWT_AUTHN_NAMESPACE: &str = "envoy.filters.http.jwt_authn";

/// Envoy's stream dynamic metadata: JSON values by namespace (a filter's name) and key, carried
/// in a request's (or response's) `http::Extensions`. See the [module docs](self).
///
/// ```
/// use gloo_filters::metadata::DynamicMetadata;
///
/// let mut metadata = DynamicMetadata::default();
/// metadata.set("com.example", "foo", "bar".into());
/// assert_eq!(metadata.get("com.example", "foo"), Some(&"bar".into()));
/// assert_eq!(metadata.get("io.solo.transformation", "foo"), None);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DynamicMetadata {
    namespaces: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
}

impl DynamicMetadata {
    /// The value of `key` in `namespace`.
    pub fn get(&self, namespace: &str, key: &str) -> Option<&serde_json::Value> {
        self.namespaces.get(namespace)?.get(key)
    }

    /// All entries of `namespace`.
    pub fn namespace(
        &self,
        namespace: &str,
    ) -> Option<&serde_json::Map<String, serde_json::Value>> {
        self.namespaces.get(namespace)
    }

    /// Sets `key` in `namespace`.
    pub fn set(&mut self, namespace: &str, key: &str, value: serde_json::Value) {
        self.namespaces
            .entry(namespace.to_owned())
            .or_default()
            .insert(key.to_owned(), value);
    }

    /// The value at `path` under `key` in `namespace`: Envoy's `Metadata::metadataValue` with a
    /// `MetadataKey` of `key: namespace`, `path: [key, path...]`; each step goes into an
    /// object. `None` if a step is missing or not an object.
    ///
    /// ```
    /// use gloo_filters::metadata::DynamicMetadata;
    ///
    /// let mut metadata = DynamicMetadata::default();
    /// metadata.set("envoy.filters.http.jwt_authn", "principal", serde_json::json!({"org": "acme"}));
    /// let org = metadata.lookup("envoy.filters.http.jwt_authn", &["principal", "org"]);
    /// assert_eq!(org, Some(&"acme".into()));
    /// assert_eq!(metadata.lookup("envoy.filters.http.jwt_authn", &["principal", "org", "x"]), None);
    /// ```
    pub fn lookup<S: AsRef<str>>(&self, namespace: &str, path: &[S]) -> Option<&serde_json::Value> {
        let (first, rest) = path.split_first()?;
        let mut value = self.get(namespace, first.as_ref())?;
        for step in rest {
            value = value.as_object()?.get(step.as_ref())?;
        }
        Some(value)
    }

    /// Every namespace with its entries, in name order.
    pub fn namespaces(
        &self,
    ) -> impl Iterator<Item = (&str, &serde_json::Map<String, serde_json::Value>)> {
        self.namespaces.iter().map(|(n, e)| (n.as_str(), e))
    }

    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self.namespaces.is_empty()
    }

    /// Merges `other` into `self`; `other` wins per key.
    pub fn merge(&mut self, other: DynamicMetadata) {
        for (namespace, entries) in other.namespaces {
            self.namespaces
                .entry(namespace)
                .or_default()
                .extend(entries);
        }
    }
}

impl DynamicMetadata {
    /// Merges `self` into the `DynamicMetadata` of `extensions` (inserting it if there is
    /// none); nothing when `self` is empty.
    pub fn publish(self, extensions: &mut http::Extensions) {
        if self.is_empty() {
            return;
        }
        match extensions.get_mut::<DynamicMetadata>() {
            Some(existing) => existing.merge(self),
            None => {
                extensions.insert(self);
            }
        }
    }
}

/// The metadata of the route a request matched (Envoy's `Route.metadata.filter_metadata`,
/// Gloo's `envoyMetadata`), shared by every request of that route, in the request's
/// `http::Extensions`. A router inserts it; filters read it as Envoy's read `routeEntry()`
/// metadata.
///
/// ```
/// use gloo_filters::metadata::{DynamicMetadata, RouteMetadata};
///
/// let mut values = DynamicMetadata::default();
/// values.set("com.example", "team", "payments".into());
/// let route = RouteMetadata::new(values);
///
/// let mut req = http::Request::get("/").body(()).unwrap();
/// req.extensions_mut().insert(route.clone());
/// let found = req.extensions().get::<RouteMetadata>().unwrap();
/// assert_eq!(found.lookup("com.example", &["team"]), Some(&"payments".into()));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RouteMetadata(Arc<DynamicMetadata>);

impl RouteMetadata {
    /// The route's metadata, by filter name (namespace) and key.
    pub fn new(values: DynamicMetadata) -> Self {
        Self(Arc::new(values))
    }
}

impl std::ops::Deref for RouteMetadata {
    type Target = DynamicMetadata;

    fn deref(&self) -> &DynamicMetadata {
        &self.0
    }
}
