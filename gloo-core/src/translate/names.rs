//! Names Gloo gives the Envoy resources it generates, kept so configs and dashboards carry over.

use crate::model::ResourceRef;

/// Envoy's CORS filter name (also the `typed_per_filter_config` key).
pub const CORS_FILTER: &str = "envoy.filters.http.cors";
/// Envoy's fault injection filter name.
pub const FAULT_FILTER: &str = "envoy.filters.http.fault";
/// Envoy's HTTP local rate limit filter name (also the `typed_per_filter_config` key), Gloo's
/// `local_ratelimit.HTTPFilterName`.
pub const LOCAL_RATELIMIT_FILTER: &str = "envoy.filters.http.local_ratelimit";
/// Envoy's router filter name.
pub const ROUTER_FILTER: &str = "envoy.filters.http.router";
/// Envoy's HTTP connection manager network filter.
pub const HCM_FILTER: &str = "envoy.filters.network.http_connection_manager";
/// Envoy's TCP proxy network filter.
pub const TCP_PROXY_FILTER: &str = "envoy.filters.network.tcp_proxy";
/// The `typed_extension_protocol_options` key for upstream HTTP options.
pub const HTTP_PROTOCOL_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/// The cluster of an upstream: `<name>_<namespace>`, Gloo's `UpstreamToClusterName`.
///
/// ```
/// use gloo_core::model::ResourceRef;
/// use gloo_core::translate::cluster_name;
/// assert_eq!(cluster_name(&ResourceRef::new("gloo-system", "petstore")), "petstore_gloo-system");
/// ```
pub fn cluster_name(upstream: &ResourceRef) -> String {
    format!(
        "{}_{}",
        upstream.name,
        upstream.namespace_or(crate::model::DEFAULT_NAMESPACE)
    )
}

/// The route configuration of a listener: `<listener name>-routes`.
pub fn route_config_name(listener: &str) -> String {
    format!("{listener}-routes")
}
