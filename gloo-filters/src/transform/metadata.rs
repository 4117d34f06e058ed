//! Markers and data the layer leaves in request and response extensions.

/// Dynamic metadata set by `dynamic_metadata_values` (Envoy's stream dynamic metadata), in the
/// extensions of the request (request transformations) or of the response (response
/// transformations); entries of later transformations are merged into it, key by key, as
/// Envoy's `setDynamicMetadata` does. The type is shared with the other filters: see
/// [`crate::metadata`].
pub use crate::metadata::DynamicMetadata;

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
