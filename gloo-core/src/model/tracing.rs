//! Tracing: Gloo's `options/tracing/tracing.proto` (`ListenerTracingSettings`, set on a
//! Gateway's `httpConnectionManagerSettings.tracing`, and `RouteTracingSettings`, a route's
//! `options.tracing`) and the tracer configs it embeds from
//! `external/envoy/config/trace/v3` (`ZipkinConfig`, `DatadogConfig`, `OpenTelemetryConfig`).
//!
//! ```
//! use gloo_core::model::tracing::{CollectorCluster, ListenerTracingSettings, TracingProvider};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // docs/content/guides/observability/tracing/otel.md
//! let settings: ListenerTracingSettings = serde_yaml_ng::from_str(
//!     r#"
//! verbose: true
//! requestHeadersForTags: [x-user]
//! tracePercentages: {randomSamplePercentage: 10}
//! openTelemetryConfig:
//!   collectorUpstreamRef: {namespace: gloo-system, name: opentelemetry-collector}
//! "#,
//! )?;
//! let Some(TracingProvider::OpenTelemetry(otel)) = settings.provider()? else {
//!     panic!("expected an OpenTelemetry provider");
//! };
//! let Some(CollectorCluster::UpstreamRef(upstream)) = otel.collector_cluster()? else {
//!     panic!("expected an upstream");
//! };
//! assert_eq!(upstream.name, "opentelemetry-collector");
//! assert_eq!(
//!     settings.trace_percentages.and_then(|p| p.random_sample_percentage),
//!     Some(10.0)
//! );
//! // A misspelt field is a load error.
//! assert!(serde_yaml_ng::from_str::<ListenerTracingSettings>("verbos: true").is_err());
//! # Ok(())
//! # }
//! ```

use serde::{Deserialize, Serialize};

use crate::model::routing::OneofError;
use crate::model::{Duration, ResourceRef};

/// A listener's tracing settings (`tracing.options.gloo.solo.io.ListenerTracingSettings`): the
/// connection manager's `tracing`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListenerTracingSettings {
    /// Request headers whose values become tags, each named after its header.
    #[serde(
        alias = "request_headers_for_tags",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub request_headers_for_tags: Vec<String>,
    /// Whether spans carry logs of streaming events (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verbose: Option<bool>,
    /// How many requests are traced (each 100 % unless set).
    #[serde(
        alias = "trace_percentages",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub trace_percentages: Option<TracePercentages>,
    /// `provider_config` oneof: trace to Zipkin.
    #[serde(
        alias = "zipkin_config",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub zipkin_config: Option<ZipkinConfig>,
    /// `provider_config` oneof: trace to Datadog.
    #[serde(
        alias = "datadog_config",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub datadog_config: Option<DatadogConfig>,
    /// `provider_config` oneof: trace to an OpenTelemetry collector over gRPC.
    #[serde(
        alias = "open_telemetry_config",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub open_telemetry_config: Option<OpenTelemetryConfig>,
    /// `provider_config` oneof: trace to OpenCensus. Gloo's tracing plugin refuses it
    /// ("Unsupported Tracing.ProviderConfiguration") and Envoy 1.40 has no OpenCensus tracer, so
    /// it rejects the Gateway; its contents are not read.
    #[serde(
        alias = "open_census_config",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub open_census_config: Option<serde_json::Value>,
    /// Environment variables of the proxy whose values become tags.
    #[serde(
        alias = "environment_variables_for_tags",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub environment_variables_for_tags: Vec<TracingTagEnvironmentVariable>,
    /// Literal tags.
    #[serde(
        alias = "literals_for_tags",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub literals_for_tags: Vec<TracingTagLiteral>,
    /// Dynamic metadata values that become tags.
    #[serde(
        alias = "metadata_for_tags",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub metadata_for_tags: Vec<TracingTagMetadata>,
    /// Whether each upstream request gets a span of its own (default false).
    #[serde(
        alias = "spawn_upstream_span",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub spawn_upstream_span: Option<bool>,
}

/// The tracer a listener's tracing settings name (their `provider_config` oneof).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TracingProvider<'a> {
    /// `zipkinConfig`.
    Zipkin(&'a ZipkinConfig),
    /// `datadogConfig`.
    Datadog(&'a DatadogConfig),
    /// `openTelemetryConfig`.
    OpenTelemetry(&'a OpenTelemetryConfig),
    /// `openCensusConfig`, which neither Gloo nor Envoy 1.40 supports.
    OpenCensus(&'a serde_json::Value),
}

impl ListenerTracingSettings {
    /// The `provider_config` oneof: `None` when no tracer is named (Envoy then traces with no
    /// tracer, as with Gloo).
    ///
    /// ```
    /// use gloo_core::model::tracing::ListenerTracingSettings;
    /// let both: ListenerTracingSettings = serde_yaml_ng::from_str(
    ///     "{zipkinConfig: {clusterName: zipkin}, datadogConfig: {clusterName: datadog}}",
    /// ).unwrap();
    /// assert!(both.provider().is_err());
    /// assert_eq!(ListenerTracingSettings::default().provider(), Ok(None));
    /// ```
    pub fn provider(&self) -> Result<Option<TracingProvider<'_>>, OneofError> {
        OneofError::check(
            "provider_config",
            &[
                ("zipkinConfig", self.zipkin_config.is_some()),
                ("datadogConfig", self.datadog_config.is_some()),
                ("openTelemetryConfig", self.open_telemetry_config.is_some()),
                ("openCensusConfig", self.open_census_config.is_some()),
            ],
        )?;
        Ok(if let Some(z) = &self.zipkin_config {
            Some(TracingProvider::Zipkin(z))
        } else if let Some(d) = &self.datadog_config {
            Some(TracingProvider::Datadog(d))
        } else if let Some(o) = &self.open_telemetry_config {
            Some(TracingProvider::OpenTelemetry(o))
        } else {
            self.open_census_config
                .as_ref()
                .map(TracingProvider::OpenCensus)
        })
    }
}

/// A route's tracing settings (`tracing.options.gloo.solo.io.RouteTracingSettings`): the
/// route's `decorator` and `tracing`. They take effect only on a listener with tracing.
///
/// ```
/// use gloo_core::model::tracing::RouteTracingSettings;
/// // docs/content/guides/observability/tracing/otel.md
/// let settings: RouteTracingSettings =
///     serde_yaml_ng::from_str("routeDescriptor: CUSTOM_ROUTE_DESCRIPTOR").unwrap();
/// assert_eq!(settings.route_descriptor, "CUSTOM_ROUTE_DESCRIPTOR");
/// assert!(serde_yaml_ng::from_str::<RouteTracingSettings>("routeDescriptors: x").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteTracingSettings {
    /// The name of the route's spans (the route's decorator operation), unless the request's
    /// `x-envoy-decorator-operation` header names one. Empty: Envoy's default name.
    #[serde(
        alias = "route_descriptor",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub route_descriptor: String,
    /// How many of the route's requests are traced (each 100 % unless set).
    #[serde(
        alias = "trace_percentages",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub trace_percentages: Option<TracePercentages>,
    /// Whether the span's operation name is passed upstream in
    /// `x-envoy-decorator-operation` (Envoy's default: true). Read only with a
    /// `routeDescriptor`, as in Gloo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagate: Option<bool>,
}

/// How many requests are traced (`tracing.options.gloo.solo.io.TracePercentages`), each a
/// percentage from 0 to 100 that defaults to 100.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TracePercentages {
    /// Of requests with an `x-client-trace-id` header, those traced.
    #[serde(
        alias = "client_sample_percentage",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_sample_percentage: Option<f32>,
    /// Of the other requests, those traced at random.
    #[serde(
        alias = "random_sample_percentage",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub random_sample_percentage: Option<f32>,
    /// Of the requests the two others select, those traced.
    #[serde(
        alias = "overall_sample_percentage",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub overall_sample_percentage: Option<f32>,
}

impl TracePercentages {
    /// Each percentage set, by JSON name: client, random, overall.
    pub fn named(&self) -> [(&'static str, Option<f32>); 3] {
        [
            ("clientSamplePercentage", self.client_sample_percentage),
            ("randomSamplePercentage", self.random_sample_percentage),
            ("overallSamplePercentage", self.overall_sample_percentage),
        ]
    }

    /// The percentages outside 0 to 100, each named: Envoy refuses them on a listener, and Gloo
    /// asks for "a value between 0.0 and 100.0".
    ///
    /// ```
    /// use gloo_core::model::tracing::TracePercentages;
    /// let p = TracePercentages { random_sample_percentage: Some(150.0), ..Default::default() };
    /// assert_eq!(p.problems(), ["randomSamplePercentage: 150 is not between 0 and 100"]);
    /// ```
    pub fn problems(&self) -> Vec<String> {
        self.named()
            .into_iter()
            .filter_map(|(name, value)| {
                let v = value?;
                (!(0.0..=100.0).contains(&v))
                    .then(|| format!("{name}: {v} is not between 0 and 100"))
            })
            .collect()
    }
}

/// A tag from an environment variable of the proxy
/// (`tracing.options.gloo.solo.io.TracingTagEnvironmentVariable`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TracingTagEnvironmentVariable {
    /// The tag's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The environment variable holding its value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The value when the variable is not set (no tag when this is not set either).
    #[serde(
        alias = "default_value",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub default_value: Option<String>,
}

/// A literal tag (`tracing.options.gloo.solo.io.TracingTagLiteral`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TracingTagLiteral {
    /// The tag's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Its value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A tag from dynamic metadata (`tracing.options.gloo.solo.io.TracingTagMetadata`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TracingTagMetadata {
    /// The tag's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tag: String,
    /// Whose metadata: the request's (default) or the upstream endpoint's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<TracingTagMetadataKind>,
    /// Where in the metadata the value is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<TracingTagMetadataValue>,
    /// The value when the metadata has none (no tag when this is empty).
    #[serde(
        alias = "default_value",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub default_value: String,
}

/// Whose metadata a tag reads (`TracingTagMetadata.Kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TracingTagMetadataKind {
    /// The request's dynamic metadata.
    #[default]
    Request,
    /// The upstream endpoint's metadata.
    Endpoint,
}

/// Where in the metadata a tag's value is (`TracingTagMetadata.MetadataValue`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TracingTagMetadataValue {
    /// The metadata namespace (e.g. a filter's name).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// The key in it, nested keys joined by `nestedFieldDelimiter` (e.g. `principal.sub`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// What joins nested keys in `key` (default `.`).
    #[serde(
        alias = "nested_field_delimiter",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub nested_field_delimiter: String,
}

impl TracingTagMetadataValue {
    /// The path of keys `key` names: `key` split at the delimiter (`.` unless set), as Gloo
    /// splits it.
    ///
    /// ```
    /// use gloo_core::model::tracing::TracingTagMetadataValue;
    /// let v = TracingTagMetadataValue { key: "principal.sub".into(), ..Default::default() };
    /// assert_eq!(v.path(), ["principal", "sub"]);
    /// let v = TracingTagMetadataValue {
    ///     key: "a.b:c".into(),
    ///     nested_field_delimiter: ":".into(),
    ///     ..Default::default()
    /// };
    /// assert_eq!(v.path(), ["a.b", "c"]);
    /// ```
    pub fn path(&self) -> Vec<&str> {
        let delimiter = if self.nested_field_delimiter.is_empty() {
            "."
        } else {
            self.nested_field_delimiter.as_str()
        };
        self.key.split(delimiter).collect()
    }
}

/// Where a tracer sends its spans: the `collector_cluster` oneof of each tracer config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectorCluster<'a> {
    /// `collectorUpstreamRef`: the cluster of this Upstream.
    UpstreamRef(&'a ResourceRef),
    /// `clusterName`: a cluster by name (one of Envoy's bootstrap, or an Upstream's
    /// `<name>_<namespace>`).
    ClusterName(&'a str),
}

fn collector_cluster<'a>(
    upstream: Option<&'a ResourceRef>,
    cluster: Option<&'a str>,
) -> Result<Option<CollectorCluster<'a>>, OneofError> {
    OneofError::check(
        "collector_cluster",
        &[
            ("collectorUpstreamRef", upstream.is_some()),
            ("clusterName", cluster.is_some()),
        ],
    )?;
    Ok(upstream
        .map(CollectorCluster::UpstreamRef)
        .or(cluster.map(CollectorCluster::ClusterName)))
}

/// The Zipkin tracer (`solo.io.envoy.config.trace.v3.ZipkinConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ZipkinConfig {
    /// `collector_cluster` oneof: the Upstream hosting the collectors.
    #[serde(
        alias = "collector_upstream_ref",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub collector_upstream_ref: Option<ResourceRef>,
    /// `collector_cluster` oneof: the cluster hosting the collectors, by name.
    #[serde(
        alias = "cluster_name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cluster_name: Option<String>,
    /// The collectors' API path (e.g. `/api/v2/spans`).
    #[serde(
        alias = "collector_endpoint",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub collector_endpoint: String,
    /// Whether new traces get 128-bit IDs (default: 64-bit).
    #[serde(
        rename = "traceId128bit",
        alias = "trace_id_128bit",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub trace_id_128bit: Option<bool>,
    /// Whether client and server spans share a span context (Envoy's default: true).
    #[serde(
        alias = "shared_span_context",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub shared_span_context: Option<bool>,
    /// The collectors' API version and encoding (unset and the deprecated v1 mean `HTTP_JSON`,
    /// as Gloo converts them).
    #[serde(
        alias = "collector_endpoint_version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub collector_endpoint_version: Option<ZipkinCollectorEndpointVersion>,
}

impl ZipkinConfig {
    /// The `collector_cluster` oneof.
    pub fn collector_cluster(&self) -> Result<Option<CollectorCluster<'_>>, OneofError> {
        collector_cluster(
            self.collector_upstream_ref.as_ref(),
            self.cluster_name.as_deref(),
        )
    }
}

/// A Zipkin collector's API (`ZipkinConfig.CollectorEndpointVersion`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ZipkinCollectorEndpointVersion {
    /// Zipkin's v1 API, which Envoy no longer has; Gloo sends `HTTP_JSON` instead.
    #[default]
    DeprecatedAndUnavailableDoNotUse,
    /// Zipkin API v2, JSON over HTTP.
    HttpJson,
    /// Zipkin API v2, protobuf over HTTP.
    HttpProto,
}

/// The Datadog tracer (`solo.io.envoy.config.trace.v3.DatadogConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatadogConfig {
    /// `collector_cluster` oneof: the Upstream of the Datadog agent.
    #[serde(
        alias = "collector_upstream_ref",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub collector_upstream_ref: Option<ResourceRef>,
    /// `collector_cluster` oneof: the cluster of the Datadog agent, by name.
    #[serde(
        alias = "cluster_name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cluster_name: Option<String>,
    /// The service name of the spans (required).
    #[serde(
        alias = "service_name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub service_name: Option<String>,
    /// The host name spans are sent to (default: the cluster's name).
    #[serde(
        alias = "collector_hostname",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub collector_hostname: String,
    /// Remote configuration of the tracer from Datadog: on unless `disabled` (Gloo keeps it on
    /// by default, as Envoy had it before 1.31).
    #[serde(
        alias = "remote_config",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub remote_config: Option<DatadogRemoteConfig>,
}

impl DatadogConfig {
    /// The `collector_cluster` oneof.
    pub fn collector_cluster(&self) -> Result<Option<CollectorCluster<'_>>, OneofError> {
        collector_cluster(
            self.collector_upstream_ref.as_ref(),
            self.cluster_name.as_deref(),
        )
    }
}

/// Datadog remote configuration (`solo.io.envoy.config.trace.v3.DatadogRemoteConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatadogRemoteConfig {
    /// How often the tracer asks for new configuration (default: the Datadog library's).
    #[serde(
        alias = "polling_interval",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub polling_interval: Option<Duration>,
    /// Turns remote configuration off (Gloo's own field; Envoy has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

/// The OpenTelemetry tracer (`solo.io.envoy.config.trace.v3.OpenTelemetryConfig`), which
/// exports spans over gRPC (OTLP).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpenTelemetryConfig {
    /// `collector_cluster` oneof: the Upstream of the collector (it must speak HTTP/2).
    #[serde(
        alias = "collector_upstream_ref",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub collector_upstream_ref: Option<ResourceRef>,
    /// `collector_cluster` oneof: the cluster of the collector, by name.
    #[serde(
        alias = "cluster_name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cluster_name: Option<String>,
    /// The service name of the spans (default: the Gateway's name, as Gloo names it).
    #[serde(
        alias = "service_name",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub service_name: String,
    /// `service_type` oneof: gRPC transport options.
    #[serde(
        alias = "grpc_service",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub grpc_service: Option<OpenTelemetryGrpcService>,
    /// How many spans are held before they are sent (Envoy's default: 1024).
    #[serde(
        alias = "max_cache_size",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_cache_size: Option<u32>,
}

impl OpenTelemetryConfig {
    /// The `collector_cluster` oneof.
    pub fn collector_cluster(&self) -> Result<Option<CollectorCluster<'_>>, OneofError> {
        collector_cluster(
            self.collector_upstream_ref.as_ref(),
            self.cluster_name.as_deref(),
        )
    }
}

/// gRPC transport options of the OpenTelemetry tracer (`solo.io.envoy.config.trace.v3.GrpcService`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpenTelemetryGrpcService {
    /// The `:authority` of the export calls (default: the cluster's name).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub authority: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<S: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(s: &S) {
        let json = serde_json::to_string(s).unwrap();
        let back: S = serde_json::from_str(&json).unwrap();
        assert_eq!(s, &back);
    }

    #[test]
    fn parses_every_field_and_round_trips() {
        let settings: ListenerTracingSettings = serde_yaml_ng::from_str(
            r#"
requestHeadersForTags: [path, origin]
verbose: true
tracePercentages:
  clientSamplePercentage: 10
  randomSamplePercentage: 20.5
  overallSamplePercentage: 30
zipkinConfig:
  collectorUpstreamRef: {name: zipkin, namespace: default}
  collectorEndpoint: /api/v2/spans
  traceId128bit: true
  sharedSpanContext: false
  collectorEndpointVersion: HTTP_PROTO
environmentVariablesForTags:
- {tag: k8s.pod.name, name: POD_NAME, defaultValue: unknown}
literalsForTags:
- {tag: team, value: payments}
metadataForTags:
- tag: user
  kind: ENDPOINT
  value: {namespace: envoy.filters.http.jwt_authn, key: 'principal:sub', nestedFieldDelimiter: ':'}
  defaultValue: anonymous
spawnUpstreamSpan: true
"#,
        )
        .unwrap();
        assert_eq!(settings.request_headers_for_tags, ["path", "origin"]);
        let Ok(Some(TracingProvider::Zipkin(zipkin))) = settings.provider() else {
            panic!("{settings:?}");
        };
        assert_eq!(zipkin.trace_id_128bit, Some(true));
        assert_eq!(
            zipkin.collector_endpoint_version,
            Some(ZipkinCollectorEndpointVersion::HttpProto)
        );
        assert_eq!(
            zipkin.collector_cluster(),
            Ok(Some(CollectorCluster::UpstreamRef(&ResourceRef::new(
                "default", "zipkin"
            ))))
        );
        assert_eq!(
            settings.metadata_for_tags[0].kind,
            Some(TracingTagMetadataKind::Endpoint)
        );
        assert_eq!(
            settings.metadata_for_tags[0]
                .value
                .as_ref()
                .map(TracingTagMetadataValue::path),
            Some(vec!["principal", "sub"])
        );
        round_trip(&settings);
        let json = serde_json::to_value(&settings).unwrap();
        assert_eq!(json["zipkinConfig"]["traceId128bit"], true);

        // snake_case names, as the proto's own field names.
        let snake: ListenerTracingSettings = serde_yaml_ng::from_str(
            "{request_headers_for_tags: [x], datadog_config: {cluster_name: dd, service_name: edge, remote_config: {polling_interval: 5s, disabled: false}}, spawn_upstream_span: false}",
        )
        .unwrap();
        let Ok(Some(TracingProvider::Datadog(datadog))) = snake.provider() else {
            panic!("{snake:?}");
        };
        assert_eq!(
            datadog.collector_cluster(),
            Ok(Some(CollectorCluster::ClusterName("dd")))
        );
        assert_eq!(
            datadog
                .remote_config
                .as_ref()
                .and_then(|r| r.polling_interval),
            Some(Duration::from_secs(5))
        );
        round_trip(&snake);

        let otel: OpenTelemetryConfig = serde_yaml_ng::from_str(
            "{clusterName: otel, serviceName: edge, grpcService: {authority: otel.example}, maxCacheSize: 2048}",
        )
        .unwrap();
        assert_eq!(otel.max_cache_size, Some(2048));
        round_trip(&otel);
    }

    #[test]
    fn oneofs_with_two_members_are_refused() {
        let zipkin: ZipkinConfig = serde_yaml_ng::from_str(
            "{collectorUpstreamRef: {name: z, namespace: ns}, clusterName: zipkin}",
        )
        .unwrap();
        assert_eq!(
            zipkin.collector_cluster().unwrap_err().to_string(),
            "only one of collectorUpstreamRef, clusterName may be set, found both (oneof `collector_cluster`)"
        );
        let settings: ListenerTracingSettings = serde_yaml_ng::from_str(
            "{openTelemetryConfig: {clusterName: a}, openCensusConfig: {}}",
        )
        .unwrap();
        assert!(settings.provider().is_err());
    }

    #[test]
    fn unknown_fields_are_refused() {
        for (yaml, field) in [
            ("zipkinConfig: {collectorEndpont: /x}", "collectorEndpont"),
            (
                "datadogConfig: {remoteConfig: {pollingIntervall: 1s}}",
                "pollingIntervall",
            ),
            (
                "openTelemetryConfig: {grpcService: {authorty: x}}",
                "authorty",
            ),
            ("metadataForTags: [{value: {nameSpace: x}}]", "nameSpace"),
            (
                "tracePercentages: {samplePercentage: 1}",
                "samplePercentage",
            ),
            ("zipkinConfig: {collectorEndpointVersion: GRPC}", "GRPC"),
        ] {
            let err = serde_yaml_ng::from_str::<ListenerTracingSettings>(yaml).unwrap_err();
            assert!(err.to_string().contains(field), "{yaml}: {err}");
        }
        let err = serde_yaml_ng::from_str::<RouteTracingSettings>("propagates: false").unwrap_err();
        assert!(err.to_string().contains("propagates"), "{err}");
    }
}
