//! proto3 JSON for Envoy messages, through a descriptor pool of the Envoy protos gloo emits.

use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};

use super::EnvoyMessage;

/// The Envoy descriptors, compiled from the protos `envoy-types` ships by
/// `tools/envoy-descriptors` (regenerate it when upgrading envoy-types).
static ENVOY_DESCRIPTORS: &[u8] = include_bytes!("envoy.desc.bin");

/// Why a message could not be printed as JSON.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot print {message} as JSON: {reason}")]
pub struct JsonError {
    message: String,
    reason: String,
}

/// The descriptor pool of every Envoy message gloo emits (listeners, routes, clusters,
/// endpoints, the filters they embed), decoded once.
pub fn descriptor_pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| match DescriptorPool::decode(ENVOY_DESCRIPTORS) {
        Ok(pool) => pool,
        // The bytes are compiled in and checked by a test; an empty pool only makes JSON
        // printing fail with a clear error instead of aborting the process.
        Err(_) => DescriptorPool::new(),
    })
}

/// Decodes `message` into a dynamic message of its own type.
pub(crate) fn dynamic<M: EnvoyMessage>(message: &M) -> Result<DynamicMessage, JsonError> {
    let error = |reason: String| JsonError {
        message: M::FULL_NAME.to_string(),
        reason,
    };
    let descriptor = descriptor_pool()
        .get_message_by_name(M::FULL_NAME)
        .ok_or_else(|| error("type not in the descriptor pool".into()))?;
    DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .map_err(|e| error(e.to_string()))
}

/// `message` as proto3 JSON, exactly as Envoy's own config dump prints it (camelCase names,
/// `@type` on `Any`, default values omitted), with object keys sorted.
///
/// ```
/// use envoy_types::pb::envoy::config::cluster::v3::Cluster;
/// let cluster = Cluster { name: "petstore".into(), ..Default::default() };
/// let json = gloo_core::xds::to_json(&cluster).unwrap();
/// assert_eq!(json, serde_json::json!({"name": "petstore"}));
/// ```
pub fn to_json<M: EnvoyMessage>(message: &M) -> Result<serde_json::Value, JsonError> {
    let dynamic = dynamic(message)?;
    let options = SerializeOptions::new().skip_default_fields(true);
    dynamic
        .serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|e| JsonError {
            message: M::FULL_NAME.to_string(),
            reason: e.to_string(),
        })
}

/// A packed resource (`Any`) as proto3 JSON with its `@type`, when its type is one gloo emits.
///
/// ```
/// use envoy_types::pb::envoy::config::cluster::v3::Cluster;
/// let any = gloo_core::xds::pack(&Cluster { name: "petstore".into(), ..Default::default() });
/// let json = gloo_core::xds::any_to_json(&any).unwrap();
/// assert_eq!(json["name"], "petstore");
/// assert_eq!(json["@type"], "type.googleapis.com/envoy.config.cluster.v3.Cluster");
/// ```
pub fn any_to_json(
    any: &envoy_types::pb::google::protobuf::Any,
) -> Result<serde_json::Value, JsonError> {
    let name = any.type_url.rsplit('/').next().unwrap_or_default();
    let error = |reason: String| JsonError {
        message: name.to_string(),
        reason,
    };
    let descriptor = descriptor_pool()
        .get_message_by_name(name)
        .ok_or_else(|| error("type not in the descriptor pool".into()))?;
    let dynamic = DynamicMessage::decode(descriptor, any.value.as_slice())
        .map_err(|e| error(e.to_string()))?;
    let options = SerializeOptions::new().skip_default_fields(true);
    let mut json = dynamic
        .serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|e| error(e.to_string()))?;
    if let serde_json::Value::Object(map) = &mut json {
        map.insert(
            "@type".into(),
            serde_json::Value::String(any.type_url.clone()),
        );
    }
    Ok(json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xds::pack;
    use envoy_types::pb::envoy::config::listener::v3::{filter, Filter, FilterChain, Listener};
    use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
    use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
        http_filter, HttpConnectionManager, HttpFilter,
    };

    #[test]
    fn pool_holds_every_type_gloo_emits() {
        for name in [
            "envoy.config.listener.v3.Listener",
            "envoy.config.route.v3.RouteConfiguration",
            "envoy.config.cluster.v3.Cluster",
            "envoy.config.endpoint.v3.ClusterLoadAssignment",
            "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "envoy.extensions.filters.http.router.v3.Router",
            "envoy.extensions.filters.http.cors.v3.CorsPolicy",
            "envoy.extensions.filters.http.fault.v3.HTTPFault",
            "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
            "envoy.extensions.common.ratelimit.v3.LocalRateLimitDescriptor",
            "envoy.extensions.filters.http.ratelimit.v3.RateLimit",
            "envoy.config.ratelimit.v3.RateLimitServiceConfig",
            "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig",
            "envoy.extensions.formatter.req_without_query.v3.ReqWithoutQuery",
            "envoy.extensions.formatter.metadata.v3.Metadata",
            "envoy.extensions.filters.http.health_check.v3.HealthCheck",
            "envoy.extensions.filters.http.compressor.v3.Compressor",
            "envoy.extensions.compression.gzip.compressor.v3.Gzip",
            "envoy.extensions.filters.http.buffer.v3.Buffer",
            "envoy.extensions.filters.http.buffer.v3.BufferPerRoute",
            "envoy.extensions.filters.http.grpc_web.v3.GrpcWeb",
            "envoy.extensions.http.early_header_mutation.header_mutation.v3.HeaderMutation",
            "envoy.config.common.mutation_rules.v3.HeaderMutation",
            "envoy.extensions.http.header_formatters.preserve_case.v3.PreserveCaseFormatterConfig",
            "envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig",
            "envoy.config.trace.v3.ZipkinConfig",
            "envoy.config.trace.v3.DatadogConfig",
            "envoy.config.trace.v3.OpenTelemetryConfig",
            "envoy.extensions.transport_sockets.proxy_protocol.v3.ProxyProtocolUpstreamTransport",
            "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer",
            "envoy.extensions.filters.http.dynamic_forward_proxy.v3.FilterConfig",
            "envoy.extensions.filters.http.dynamic_forward_proxy.v3.PerRouteConfig",
            "envoy.extensions.clusters.dynamic_forward_proxy.v3.ClusterConfig",
            "envoy.extensions.common.dynamic_forward_proxy.v3.DnsCacheConfig",
            "envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig",
            "envoy.extensions.network.dns_resolver.apple.v3.AppleDnsResolverConfig",
            "envoy.extensions.filters.network.sni_cluster.v3.SniCluster",
        ] {
            assert!(
                descriptor_pool().get_message_by_name(name).is_some(),
                "{name}"
            );
        }
    }

    #[test]
    fn nested_any_prints_with_type_and_fields() {
        let hcm = HttpConnectionManager {
            stat_prefix: "http".into(),
            http_filters: vec![HttpFilter {
                name: "envoy.filters.http.router".into(),
                config_type: Some(http_filter::ConfigType::TypedConfig(pack(
                    &Router::default(),
                ))),
                ..Default::default()
            }],
            ..Default::default()
        };
        let listener = Listener {
            name: "l".into(),
            filter_chains: vec![FilterChain {
                filters: vec![Filter {
                    name: "envoy.filters.network.http_connection_manager".into(),
                    config_type: Some(filter::ConfigType::TypedConfig(pack(&hcm))),
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let json = to_json(&listener).unwrap();
        let typed = &json["filterChains"][0]["filters"][0]["typedConfig"];
        assert_eq!(
            typed["@type"],
            "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
        );
        assert_eq!(typed["statPrefix"], "http");
        assert_eq!(
            typed["httpFilters"][0]["typedConfig"]["@type"],
            "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
        );
    }
}
