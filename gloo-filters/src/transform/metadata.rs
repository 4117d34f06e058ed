//! Markers and data the layer leaves in request and response extensions.

use std::collections::BTreeMap;

/// Dynamic metadata set by `dynamic_metadata_values` (Envoy's stream dynamic metadata), in the
/// extensions of the request (request transformations) or of the response (response
/// transformations). Entries of later transformations are merged into it, key by key, as
/// Envoy's `setDynamicMetadata` does.
///
/// ```
/// use gloo_filters::transform::DynamicMetadata;
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

/// Marks a request whose matched rule had `clear_route_cache` and whose request transformation
/// was applied: a router should match its routes again, as Envoy clears its route cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClearRouteCache;

/// The response code details of a response (Envoy's `%RESPONSE_CODE_DETAILS%`, e.g.
/// `via_upstream` or a local reply's reason), put in its extensions by whoever produced it;
/// [`ResponseMatcher::response_code_details`](super::ResponseMatcher::response_code_details)
/// matches against it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseCodeDetails(pub String);

/// Marks an answer produced by the layer itself because a transformation failed (`400`), or a
/// body was larger than the buffer limit (`413`). Its details are envoy-gloo's
/// `transformation_filter_error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransformationFailed;

impl TransformationFailed {
    /// The response code details envoy-gloo gives these answers.
    pub const DETAILS: &'static str = "transformation_filter_error";
}
