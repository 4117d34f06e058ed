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
/// Envoy's SNI cluster network filter: sets the TCP proxy's cluster to the client's SNI.
pub const SNI_CLUSTER_FILTER: &str = "envoy.filters.network.sni_cluster";
/// Envoy's TLS inspector listener filter.
pub const TLS_INSPECTOR: &str = "envoy.filters.listener.tls_inspector";
/// The `typed_extension_protocol_options` key for upstream HTTP options.
pub const HTTP_PROTOCOL_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
/// The name of the connection manager's early header mutation extension, as Gloo's headers
/// plugin names it (`earlyHeaderManipulation`).
pub const EARLY_HEADER_MUTATION: &str = "http.early_header_mutation.header_mutation";
/// The name of Envoy's preserve-case HTTP/1 header formatter, Gloo's `PreserveCasePlugin`
/// (`preserveCaseHeaderKeyFormat`).
pub const PRESERVE_CASE_FORMATTER: &str = "envoy.http.stateful_header_formatters.preserve_case";

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

/// [`cluster_name`] of an upstream's reference, written from its metadata without building the
/// reference (this runs once per upstream).
pub(crate) fn object_cluster_name(metadata: &crate::model::ObjectMeta) -> String {
    format!("{}_{}", metadata.name, metadata.namespace())
}

/// The name Gloo gives the Upstream of one port of a Kubernetes Service, Gloo's `UpstreamName`:
/// `<namespace>-<service>-<port>`, sanitized as Kubernetes object names must be (`SanitizeNameV2`
/// of solo-io/k8s-utils): `*`, `/`, `.`, `:`, `_` and spaces become `-`; `[`, `]`, newlines and
/// quotes are dropped; a name longer than 63 bytes becomes its first 31 bytes, `-` and the first
/// 31 hex digits of its MD5; the result is lower-cased. Kubernetes discovery names the Upstreams
/// it writes so, and a route's `kube` destination refers to that Upstream.
///
/// ```
/// use gloo_core::translate::kube_upstream_name;
/// assert_eq!(kube_upstream_name("default", "petstore", 8080), "default-petstore-8080");
/// let long = kube_upstream_name(&"a".repeat(63), "svc", 80);
/// assert_eq!(long.len(), 63);
/// assert!(long.starts_with(&format!("{}-", "a".repeat(31))));
/// ```
pub fn kube_upstream_name(namespace: &str, service: &str, port: u32) -> String {
    sanitize_name(&format!("{namespace}-{service}-{port}"))
}

/// Gloo's `SanitizeNameV2` (solo-io/k8s-utils `kubeutils`).
fn sanitize_name(name: &str) -> String {
    const MAX: usize = 63;
    const KEEP: usize = 31;
    let mut name: String = name
        .chars()
        .filter_map(|c| match c {
            '*' | '/' | '.' | ':' | '_' | ' ' => Some('-'),
            '[' | ']' | '\n' | '"' | '\'' => None,
            c => Some(c),
        })
        .collect();
    if name.len() > MAX {
        let digest = format!("{:x}", md5::compute(name.as_bytes()));
        // Go slices bytes; Kubernetes names are ASCII, and a split character is replaced
        // rather than panicking.
        let head = String::from_utf8_lossy(&name.as_bytes()[..KEEP]).into_owned();
        name = format!("{head}-{}", &digest[..KEEP]);
    }
    name.to_lowercase()
}

/// The route configuration of a listener: `<listener name>-routes`.
pub fn route_config_name(listener: &str) -> String {
    format!("{listener}-routes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizes_like_gloo() {
        // Cases from solo-io/k8s-utils kubeutils/util_test.go.
        for (input, want) in [
            ("abc", "abc"),
            ("Abc", "abc"),
            ("bb*b", "bb-b"),
            ("bb/b", "bb-b"),
            ("bb.b", "bb-b"),
            ("bb[b", "bbb"),
            ("bb]b", "bbb"),
            ("bb:b", "bb-b"),
            ("bb b", "bb-b"),
            ("bb\nb", "bbb"),
            ("bb\"b", "bbb"),
            ("bb'b", "bbb"),
            ("-abc", "-abc"),
        ] {
            assert_eq!(sanitize_name(input), want, "{input:?}");
        }
        assert_eq!(
            sanitize_name(&"a".repeat(300)),
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-4e5475d125a33c6190718e75adc1b70"
        );
        assert_eq!(
            sanitize_name(&"a".repeat(301)),
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-c73301b7b71679067b02cff4cdc5e70"
        );
        // Exactly 63 bytes is kept whole.
        assert_eq!(sanitize_name(&"b".repeat(63)), "b".repeat(63));
    }
}
