//! The `Upstream` kind: `gloo.solo.io.Upstream` (`projects/gloo/api/v1/upstream.proto`) and the
//! upstream types of its `upstream_type` oneof: `options/kubernetes/kubernetes.proto`,
//! `options/static/static.proto`, `options/pipe/pipe.proto`, `options/aws/aws.proto`,
//! `options/aws/ec2/aws_ec2.proto`, `options/azure/azure.proto`, `options/consul/consul.proto`
//! (+ `query_options.proto`), `enterprise/options/gcp/gcp.proto`; plus `failover.proto`,
//! `options/service_spec.proto`, `options/subset_spec.proto` and
//! `options/grpc_json/grpc_json.proto`.
//!
//! An upstream of static hosts that gloo reaches over TLS:
//!
//! ```
//! use gloo_core::load::{parse_str, Format};
//! use gloo_core::model::upstream::UpstreamTypeRef;
//! use gloo_core::model::Resource;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//!
//! let yaml = r#"
//! apiVersion: gloo.solo.io/v1
//! kind: Upstream
//! metadata:
//!   name: jsonplaceholder
//!   namespace: gloo-system
//! spec:
//!   static:
//!     hosts:
//!     - addr: jsonplaceholder.typicode.com
//!       port: 443
//!     useTls: true
//!   sslConfig:
//!     sni: jsonplaceholder.typicode.com
//!   connectionConfig:
//!     connectTimeout: 2s
//! "#;
//! let parsed = parse_str(yaml, "upstream.yaml", Format::Yaml);
//! assert!(parsed.is_ok(), "{:?}", parsed.errors);
//! let Resource::Upstream(upstream) = &parsed.resources[0].resource else {
//!     panic!("expected an Upstream");
//! };
//! let Some(UpstreamTypeRef::Static(hosts)) = upstream.spec.upstream_type()? else {
//!     panic!("expected a static upstream");
//! };
//! assert_eq!(hosts.hosts[0].addr, "jsonplaceholder.typicode.com");
//! assert_eq!(hosts.hosts[0].port, 443);
//! assert_eq!(hosts.use_tls, Some(true));
//! let tls = upstream.spec.ssl_config.as_ref().ok_or("no sslConfig")?;
//! assert_eq!(tls.sni.as_deref(), Some("jsonplaceholder.typicode.com"));
//! // No function spec: this upstream serves plain HTTP routes.
//! assert!(upstream.spec.service_spec().is_none());
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::cluster::{
    CircuitBreakerConfig, ConnectionConfig, HeaderValue, HealthCheck, LoadBalancerConfig,
    OutlierDetection,
};
use crate::model::routing::OneofError;
use crate::model::ssl::UpstreamSslConfig;
use crate::model::{Duration, ResourceRef};

/// An upstream: a destination for routed requests, the equivalent of an Envoy cluster
/// (`gloo.solo.io.Upstream` without `metadata` and `namespacedStatuses`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpstreamSpec {
    /// Set by Gloo discovery when it created or modified this upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_metadata: Option<DiscoveryMetadata>,
    /// TLS origination to the upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_config: Option<UpstreamSslConfig>,
    /// Circuit breakers; when unset, the Settings defaults, then Envoy's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_breakers: Option<CircuitBreakerConfig>,
    /// Load balancer settings (round robin by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_config: Option<LoadBalancerConfig>,
    /// Active health checks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health_checks: Vec<HealthCheck>,
    /// Passive health checking (outlier ejection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierDetection>,
    /// `upstream_type` oneof: a Kubernetes service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube: Option<KubeUpstreamSpec>,
    /// `upstream_type` oneof: a static list of hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#static: Option<StaticUpstreamSpec>,
    /// `upstream_type` oneof: a unix domain socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipe: Option<PipeUpstreamSpec>,
    /// `upstream_type` oneof: AWS Lambda functions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsUpstreamSpec>,
    /// `upstream_type` oneof: Azure functions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureUpstreamSpec>,
    /// `upstream_type` oneof: a Consul service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consul: Option<ConsulUpstreamSpec>,
    /// `upstream_type` oneof: AWS EC2 instances selected by tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_ec2: Option<AwsEc2UpstreamSpec>,
    /// `upstream_type` oneof: a Google Cloud Run service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcp: Option<GcpUpstreamSpec>,
    /// `upstream_type` oneof (Enterprise): an AI/LLM provider.
    /// Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai: Option<serde_json::Value>,
    /// Failover endpoints, used when the primary endpoints are unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<Failover>,
    /// HTTP/1 connection configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_config: Option<ConnectionConfig>,
    /// How Envoy selects the protocol used to speak to upstream hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_selection: Option<ClusterProtocolSelection>,
    /// Use HTTP/2 to this upstream (true for upstreams with a gRPC service spec).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_http2: Option<bool>,
    /// Initial HTTP/2 stream-level flow-control window size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_stream_window_size: Option<u32>,
    /// Initial HTTP/2 connection-level flow-control window size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_connection_window_size: Option<u32>,
    /// Maximum concurrent HTTP/2 streams per connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_streams: Option<u32>,
    /// Terminate only the offending HTTP/2 stream on invalid messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_stream_error_on_invalid_http_message: Option<bool>,
    /// The upstream is an HTTP CONNECT proxy; this is the tunnel destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_proxy_hostname: Option<String>,
    /// TLS origination to the HTTP CONNECT proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_connect_ssl_config: Option<UpstreamSslConfig>,
    /// Headers sent with the initial HTTP CONNECT request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_connect_headers: Vec<HeaderValue>,
    /// Ignore host health when processing its removal from service discovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_health_on_host_removal: Option<bool>,
    /// Refresh DNS when the record TTL expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub respect_dns_ttl: Option<bool>,
    /// DNS refresh rate for STRICT_DNS / LOGICAL_DNS clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_refresh_rate: Option<Duration>,
    /// PROXY protocol version to send (`"V1"` or `"V2"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_protocol_version: Option<String>,
    /// Cluster preconnect policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preconnect_policy: Option<PreconnectPolicy>,
    /// Disallow automatic mTLS detection for Istio upstreams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_istio_auto_mtls: Option<bool>,
}

/// The `upstream_type` oneof of [`UpstreamSpec`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UpstreamTypeRef<'a> {
    /// A Kubernetes service.
    Kube(&'a KubeUpstreamSpec),
    /// Static hosts.
    Static(&'a StaticUpstreamSpec),
    /// A unix domain socket.
    Pipe(&'a PipeUpstreamSpec),
    /// AWS Lambda.
    Aws(&'a AwsUpstreamSpec),
    /// Azure functions.
    Azure(&'a AzureUpstreamSpec),
    /// A Consul service.
    Consul(&'a ConsulUpstreamSpec),
    /// AWS EC2 instances.
    AwsEc2(&'a AwsEc2UpstreamSpec),
    /// Google Cloud Run.
    Gcp(&'a GcpUpstreamSpec),
    /// An AI/LLM provider (Enterprise; carried as JSON).
    Ai(&'a serde_json::Value),
}

impl UpstreamSpec {
    /// The fields set here that gloo does not apply yet, by name: the Upstream is served
    /// without them, with a warning on its status (HTTP/2 window and stream settings, DNS
    /// refresh, HTTP CONNECT tunnelling, the PROXY protocol towards it, preconnecting, ...).
    pub fn unapplied(&self) -> Vec<&'static str> {
        crate::model::set_fields([
            // The windows and stream settings apply to HTTP/2 upstreams only (as in Gloo).
            (
                "initialStreamWindowSize",
                self.initial_stream_window_size.is_some() && !self.use_http2.unwrap_or(false),
            ),
            (
                "initialConnectionWindowSize",
                self.initial_connection_window_size.is_some() && !self.use_http2.unwrap_or(false),
            ),
            (
                "maxConcurrentStreams",
                self.max_concurrent_streams.is_some() && !self.use_http2.unwrap_or(false),
            ),
            (
                "overrideStreamErrorOnInvalidHttpMessage",
                self.override_stream_error_on_invalid_http_message.is_some()
                    && !self.use_http2.unwrap_or(false),
            ),
            ("httpProxyHostname", self.http_proxy_hostname.is_some()),
            (
                "httpConnectSslConfig",
                self.http_connect_ssl_config.is_some(),
            ),
            ("httpConnectHeaders", !self.http_connect_headers.is_empty()),
            (
                "disableIstioAutoMtls",
                self.disable_istio_auto_mtls.is_some(),
            ),
        ])
    }

    /// The upstream's type; `None` if no type is set, an error if several are.
    pub fn upstream_type(&self) -> Result<Option<UpstreamTypeRef<'_>>, OneofError> {
        OneofError::check(
            "upstreamType",
            &[
                ("kube", self.kube.is_some()),
                ("static", self.r#static.is_some()),
                ("pipe", self.pipe.is_some()),
                ("aws", self.aws.is_some()),
                ("azure", self.azure.is_some()),
                ("consul", self.consul.is_some()),
                ("awsEc2", self.aws_ec2.is_some()),
                ("gcp", self.gcp.is_some()),
                ("ai", self.ai.is_some()),
            ],
        )?;
        Ok(self
            .kube
            .as_ref()
            .map(UpstreamTypeRef::Kube)
            .or(self.r#static.as_ref().map(UpstreamTypeRef::Static))
            .or(self.pipe.as_ref().map(UpstreamTypeRef::Pipe))
            .or(self.aws.as_ref().map(UpstreamTypeRef::Aws))
            .or(self.azure.as_ref().map(UpstreamTypeRef::Azure))
            .or(self.consul.as_ref().map(UpstreamTypeRef::Consul))
            .or(self.aws_ec2.as_ref().map(UpstreamTypeRef::AwsEc2))
            .or(self.gcp.as_ref().map(UpstreamTypeRef::Gcp))
            .or(self.ai.as_ref().map(UpstreamTypeRef::Ai)))
    }

    /// The service spec of the upstream type, if the type has one (kube, static, pipe, consul).
    pub fn service_spec(&self) -> Option<&ServiceSpec> {
        self.kube
            .as_ref()
            .and_then(|k| k.service_spec.as_ref())
            .or_else(|| self.r#static.as_ref().and_then(|s| s.service_spec.as_ref()))
            .or_else(|| self.pipe.as_ref().and_then(|p| p.service_spec.as_ref()))
            .or_else(|| self.consul.as_ref().and_then(|c| c.service_spec.as_ref()))
    }
}

/// `Upstream.ClusterProtocolSelection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClusterProtocolSelection {
    /// HTTP/2 if `useHttp2`, otherwise HTTP/1.1.
    #[default]
    UseConfiguredProtocol,
    /// Use the downstream connection's protocol.
    UseDownstreamProtocol,
}

/// Metadata set by discovery (`gloo.solo.io.DiscoveryMetadata`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DiscoveryMetadata {
    /// Labels inherited from the original resource (e.g. Kubernetes service labels).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// `gloo.solo.io.PreconnectPolicy`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreconnectPolicy {
    /// Streams anticipated per upstream for each incoming stream (1.0..=3.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_upstream_preconnect_ratio: Option<f64>,
    /// Streams anticipated across the cluster for each stream (1.0..=3.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predictive_preconnect_ratio: Option<f64>,
}

// ---------------------------------------------------------------------------------------------
// Service and subset specs.

/// `options.gloo.solo.io.ServiceSpec`: what kind of service an upstream serves (for functions).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceSpec {
    /// `plugin_type` oneof: a REST service with transformation-based functions.
    /// Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rest: Option<serde_json::Value>,
    /// `plugin_type` oneof (deprecated): a gRPC service.
    /// Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<serde_json::Value>,
    /// `plugin_type` oneof: gRPC-JSON transcoding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_json_transcoder: Option<GrpcJsonTranscoder>,
}

/// `grpc_json.options.gloo.solo.io.GrpcJsonTranscoder`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcJsonTranscoder {
    /// `descriptor_set` oneof: path of a proto descriptor set file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto_descriptor: Option<String>,
    /// `descriptor_set` oneof: base64 of the proto descriptor set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto_descriptor_bin: Option<String>,
    /// `descriptor_set` oneof: a ConfigMap holding the descriptor set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto_descriptor_config_map: Option<DescriptorConfigMap>,
    /// Fully qualified gRPC service names to transcode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
    /// JSON printing options for responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub print_options: Option<PrintOptions>,
    /// Match the incoming request path against the route rather than the gRPC method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_incoming_request_route: Option<bool>,
    /// Query parameters ignored when mapping to gRPC request fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored_query_parameters: Vec<String>,
    /// Map `/package.Service/Method` paths without HTTP annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_mapping: Option<bool>,
    /// Ignore unknown query parameters instead of rejecting the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_unknown_query_parameters: Option<bool>,
    /// Convert gRPC status to JSON responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub convert_grpc_status: Option<bool>,
}

/// `GrpcJsonTranscoder.PrintOptions`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrintOptions {
    /// Add whitespace, line breaks and indentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_whitespace: Option<bool>,
    /// Print primitive fields that have default values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub always_print_primitive_fields: Option<bool>,
    /// Print enums as integers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub always_print_enums_as_ints: Option<bool>,
    /// Use proto field names rather than lowerCamelCase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_proto_field_names: Option<bool>,
}

/// `GrpcJsonTranscoder.DescriptorConfigMap`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DescriptorConfigMap {
    /// The ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<ResourceRef>,
    /// The key holding the base64 descriptor set (optional if there is only one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// `options.gloo.solo.io.SubsetSpec`: how endpoints are grouped into subsets.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubsetSpec {
    /// The label key sets subsets are built from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub selectors: Vec<SubsetSelector>,
    /// What to do when no subset matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_policy: Option<FallbackPolicy>,
    /// The subset used with `DEFAULT_SUBSET`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_subset: Option<Subset>,
}

/// `options.gloo.solo.io.Selector`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubsetSelector {
    /// Label keys that define a subset.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    /// Each subset has at most one host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub single_host_per_subset: Option<bool>,
}

/// `options.gloo.solo.io.Subset`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Subset {
    /// Label values the subset's endpoints carry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, String>,
}

/// `options.gloo.solo.io.FallbackPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FallbackPolicy {
    /// Fall back to any endpoint.
    #[default]
    AnyEndpoint,
    /// Fall back to the default subset.
    DefaultSubset,
    /// No fallback: fail the request.
    NoFallback,
}

// ---------------------------------------------------------------------------------------------
// Upstream types.

/// `kubernetes.options.gloo.solo.io.UpstreamSpec`: a Kubernetes service port.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeUpstreamSpec {
    /// The service's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// The service's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_namespace: Option<String>,
    /// The service port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_port: Option<u32>,
    /// Pod labels selecting the endpoints (defaults to the service's selector).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selector: BTreeMap<String, String>,
    /// The service's function spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_spec: Option<ServiceSpec>,
    /// Subset load balancing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset_spec: Option<SubsetSpec>,
}

/// `static.options.gloo.solo.io.UpstreamSpec`: a fixed list of hosts.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StaticUpstreamSpec {
    /// The hosts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<StaticHost>,
    /// Use TLS; when unset, TLS is used for hosts on port 443.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_tls: Option<bool>,
    /// The service's function spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_spec: Option<ServiceSpec>,
    /// Rewrite SNI per host (to `sniAddr` or `addr`); defaults to true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_sni_rewrite: Option<bool>,
}

/// `static.options.gloo.solo.io.Host`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StaticHost {
    /// Address (IP or hostname).
    #[serde(default)]
    pub addr: String,
    /// Port.
    #[serde(default)]
    pub port: u32,
    /// SNI to use for this host, overriding the upstream's `sslConfig.sni`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni_addr: Option<String>,
    /// Load balancing weight (>= 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancing_weight: Option<u32>,
    /// Per-host health check overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_config: Option<StaticHostHealthCheckConfig>,
    /// Endpoint metadata, by filter name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, serde_json::Value>,
}

/// `static.options.gloo.solo.io.Host.HealthCheckConfig`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StaticHostHealthCheckConfig {
    /// Path used for HTTP health checks of this host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Method used for HTTP health checks of this host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

/// `pipe.options.gloo.solo.io.UpstreamSpec`: a unix domain socket.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipeUpstreamSpec {
    /// Path of the socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The service's function spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_spec: Option<ServiceSpec>,
}

/// `aws.options.gloo.solo.io.UpstreamSpec`: Lambda functions of one account and region.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsUpstreamSpec {
    /// The AWS region of the functions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Secret with `access_key`, `secret_key` and optional `session_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<ResourceRef>,
    /// The functions (filled in by discovery when enabled).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lambda_functions: Vec<LambdaFunctionSpec>,
    /// Role to assume via STS, overriding `AWS_ROLE_ARN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// AWS account ID, for resource-based access.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_account_id: Option<String>,
    /// Disable role chaining.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_role_chaining: Option<bool>,
    /// Overrides applied to the AWS destination spec of routes targeting this upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_overrides: Option<crate::model::routing::AwsDestinationSpec>,
}

/// `aws.options.gloo.solo.io.LambdaFunctionSpec`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LambdaFunctionSpec {
    /// Name routes use for this function (default: function name + qualifier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logical_name: Option<String>,
    /// The function's name in AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda_function_name: Option<String>,
    /// The function qualifier (version or alias).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qualifier: Option<String>,
}

/// `aws_ec2.options.gloo.solo.io.UpstreamSpec`: EC2 instances selected by tag filters.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsEc2UpstreamSpec {
    /// The AWS region of the instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Secret with AWS credentials; the environment's when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<ResourceRef>,
    /// Role to assume when listing instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// Tag filters; an instance must match all of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<TagFilter>,
    /// Use the instances' public IPs (default private).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_ip: Option<bool>,
    /// Port to use on the instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
}

/// `aws_ec2.options.gloo.solo.io.TagFilter`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TagFilter {
    /// `spec` oneof: instances with a tag with this key (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `spec` oneof: instances with a tag with this key and value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_pair: Option<TagKvPair>,
}

/// `TagFilter.KvPair`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TagKvPair {
    /// Tag key (case-insensitive).
    #[serde(default)]
    pub key: String,
    /// Tag value (case-sensitive).
    #[serde(default)]
    pub value: String,
}

/// `azure.options.gloo.solo.io.UpstreamSpec`: functions of an Azure function app.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AzureUpstreamSpec {
    /// The function app's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_app_name: Option<String>,
    /// Secret with the app's keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<ResourceRef>,
    /// The functions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub functions: Vec<AzureFunctionSpec>,
}

/// `azure.options.gloo.solo.io.UpstreamSpec.FunctionSpec`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AzureFunctionSpec {
    /// The function's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_name: Option<String>,
    /// The function's auth level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_level: Option<AzureAuthLevel>,
}

/// `FunctionSpec.AuthLevel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum AzureAuthLevel {
    /// No key required.
    #[default]
    Anonymous,
    /// A function key is required.
    Function,
    /// The master key is required.
    Admin,
}

/// `gcp.options.gloo.solo.io.UpstreamSpec`: a Google Cloud Run service.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GcpUpstreamSpec {
    /// The service's host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Audience of the identity token; defaults to `https://<host>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
}

/// `consul.options.gloo.solo.io.UpstreamSpec`: a Consul service.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsulUpstreamSpec {
    /// The Consul service name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// Tags of all the service's instances.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_tags: Vec<String>,
    /// Tags used to build subsets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subset_tags: Vec<String>,
    /// Only instances with all these tags are endpoints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instance_tags: Vec<String>,
    /// Instances with any of these tags are excluded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instance_blacklist_tags: Vec<String>,
    /// The service's function spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_spec: Option<ServiceSpec>,
    /// Consistency mode of the Consul queries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency_mode: Option<ConsulConsistencyMode>,
    /// Consul query options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_options: Option<ConsulQueryOptions>,
    /// Connect-enabled service (mTLS via Consul Connect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_enabled: Option<bool>,
    /// Data centers the service runs in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_centers: Vec<String>,
}

/// Endpoint label prefix for a Consul tag (`tag_<tag>`), Gloo's `ConsulTagKeyPrefix`.
pub const CONSUL_TAG_KEY_PREFIX: &str = "tag_";
/// Endpoint label prefix for a Consul data center (`dc_<dc>`), Gloo's
/// `ConsulDataCenterKeyPrefix`.
pub const CONSUL_DATA_CENTER_KEY_PREFIX: &str = "dc_";

impl ConsulUpstreamSpec {
    /// The tags Gloo partitions endpoints by: `subsetTags`, else `serviceTags`.
    pub fn subset_key_tags(&self) -> &[String] {
        if self.subset_tags.is_empty() {
            &self.service_tags
        } else {
            &self.subset_tags
        }
    }

    /// Gloo's `BuildTagMetadata`: `tag_<t>` for each of [`Self::subset_key_tags`], `"1"` when
    /// `has(t)`, else `"0"`.
    pub fn tag_labels(&self, has: impl Fn(&str) -> bool, into: &mut BTreeMap<String, String>) {
        for tag in self.subset_key_tags() {
            into.insert(
                format!("{CONSUL_TAG_KEY_PREFIX}{tag}"),
                if has(tag) { "1" } else { "0" }.to_string(),
            );
        }
    }

    /// Gloo's `BuildDataCenterMetadata`: `dc_<dc>` for each of `dataCenters`, `"1"` when
    /// `is(dc)`, else `"0"`.
    pub fn data_center_labels(
        &self,
        is: impl Fn(&str) -> bool,
        into: &mut BTreeMap<String, String>,
    ) {
        for dc in &self.data_centers {
            into.insert(
                format!("{CONSUL_DATA_CENTER_KEY_PREFIX}{dc}"),
                if is(dc) { "1" } else { "0" }.to_string(),
            );
        }
    }
}

/// `consul.options.gloo.solo.io.ConsulConsistencyModes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ConsulConsistencyMode {
    /// Consul's default consistency.
    #[default]
    DefaultMode,
    /// Stale reads allowed.
    StaleMode,
    /// Strongly consistent reads.
    ConsistentMode,
}

/// `consul.options.gloo.solo.io.QueryOptions`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsulQueryOptions {
    /// Use Consul's agent cache (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_cache: Option<bool>,
}

// ---------------------------------------------------------------------------------------------
// Failover.

/// `gloo.solo.io.Failover`: prioritized fallback endpoints.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Failover {
    /// Localities in priority order (first is priority 1, after the primary endpoints).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prioritized_localities: Vec<PrioritizedLocality>,
    /// Failover policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<FailoverPolicy>,
}

/// `Failover.PrioritizedLocality`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrioritizedLocality {
    /// Endpoints of this priority, by locality.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locality_endpoints: Vec<LocalityLbEndpoints>,
}

/// `Failover.Policy`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FailoverPolicy {
    /// Envoy overprovisioning factor (> 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overprovisioning_factor: Option<u32>,
}

/// `gloo.solo.io.LocalityLbEndpoints`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalityLbEndpoints {
    /// The locality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<Locality>,
    /// The endpoints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lb_endpoints: Vec<LbEndpoint>,
    /// Locality weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancing_weight: Option<u32>,
}

/// `gloo.solo.io.LbEndpoint`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LbEndpoint {
    /// Address (IP or hostname).
    #[serde(default)]
    pub address: String,
    /// Port.
    #[serde(default)]
    pub port: u32,
    /// Health check overrides for this endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_config: Option<LbEndpointHealthCheckConfig>,
    /// TLS origination to this endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_ssl_config: Option<UpstreamSslConfig>,
    /// Load balancing weight (>= 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancing_weight: Option<u32>,
    /// Endpoint metadata, by filter name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, serde_json::Value>,
}

/// `LbEndpoint.HealthCheckConfig`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LbEndpointHealthCheckConfig {
    /// Port to health check instead of the endpoint's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_value: Option<u32>,
    /// Host header for HTTP health checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Path for HTTP health checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Method for HTTP health checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

/// `gloo.solo.io.Locality`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Locality {
    /// Region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Sub-zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_zone: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cluster::{HealthCheckerRef, LoadBalancerTypeRef};
    use crate::model::ssl::SslSecretsRef;

    fn spec_of(doc: &str) -> UpstreamSpec {
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct Doc {
            #[serde(rename = "apiVersion")]
            api_version: String,
            kind: String,
            metadata: serde_json::Value,
            spec: UpstreamSpec,
            #[serde(default)]
            status: Option<serde_json::Value>,
        }
        let d: Doc = serde_yaml_ng::from_str(doc).unwrap();
        assert_eq!(d.kind, "Upstream");
        let json = serde_json::to_string(&d.spec).unwrap();
        let back: UpstreamSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(d.spec, back, "JSON round trip");
        d.spec
    }

    // docs/content/static/content/upstream.yaml (static_upstream guide)
    const STATIC: &str = r#"
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata:
  name: json-upstream
  namespace: gloo-system
spec:
  static:
    hosts:
      - addr: jsonplaceholder.typicode.com
        port: 80
"#;

    // docs/content/guides/traffic_management/destination_types/subsets/_index.md
    // (the `rest:` service spec body is elided in the doc; `{}` here).
    const KUBE: &str = r#"
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata:
  labels:
    discovered_by: kubernetesplugin
    service: petstore
  name: default-petstore-8080
  namespace: gloo-system
spec:
  kube:
    selector:
      app: petstore
    serviceName: petstore
    serviceNamespace: default
    subsetSpec:
      selectors:
      - keys:
        - color
    servicePort: 8080
    serviceSpec:
      rest: {}
"#;

    // docs/content/guides/traffic_management/destination_types/discovered_upstream/discovered-upstream-configuration.md
    const DISCOVERED: &str = r#"
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata:
  annotations:
    gloo.solo.io/upstream_config: '{"initialStreamWindowSize": 2048}'
  creationTimestamp: "2021-10-14T13:22:12Z"
  generation: 2
  labels:
    discovered_by: kubernetesplugin
  name: default-petstore-8080
  namespace: default
  resourceVersion: "5679"
  uid: 0ab14ba5-6377-40c5-a781-ce33b7755cdc
spec:
  discoveryMetadata:
    labels:
      service: petstore
  kube:
    selector:
      app: petstore
    serviceName: petstore
    serviceNamespace: default
    servicePort: 8080
  initialStreamWindowSize: 2048
status:
  reportedBy: gloo
  state: 1
"#;

    // docs/content/guides/traffic_management/destination_types/consul_services/_index.md
    const CONSUL: &str = r#"
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata:
  name: jsonplaceholder
  namespace: gloo-system
spec:
  consul:
    serviceName: jsonplaceholder
    serviceTags:
    - gloo
    - jsonplaceholder
"#;

    // docs/content/guides/traffic_management/destination_types/ec2_upstream/_index.md
    const EC2: &str = r#"
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata:
  annotations:
  name: ec2-demo-upstream
  namespace: gloo-system
spec:
  awsEc2:
    filters:
    - key: gloo-id
    - kvPair:
        key: gloo-tag
        value: group1
    - kvPair:
        key: version
        value: v1.2.3
    region: us-east-1
    publicIp: true
    secretRef:
      name: gloo-tag-group1
      namespace: default
    roleArn: "<arn-for-the-role-you-created>"
"#;

    // docs/content/guides/traffic_management/destination_types/aws_lambda/eks-service-accounts.md
    // (with the doc's `# ...` elisions), plus `secretRef` from aws_lambda/_index.md.
    const LAMBDA: &str = r#"
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata:
  name: lambda
  namespace: gloo-system
spec:
  aws:
    lambdaFunctions:
    # ...
    - lambdaFunctionName: uppercase
      logicalName: uppercase
      qualifier: $LATEST
    # ...
    region: us-east-1
    secretRef:
      name: aws-creds
      namespace: gloo-system
status:
  reportedBy: gloo
  state: 1
"#;

    // Health check: docs/content/guides/traffic_management/request_processing/upstream_health_checks/_index.md;
    // circuit breakers: .../listener_configuration/http_connection_manager/dfp/_index.md;
    // connectionConfig: docs/content/guides/traffic_management/buffering/_index.md;
    // sslConfig: docs/content/guides/security/tls/client_tls.md (plus `sni`);
    // outlierDetection / loadBalancerConfig fields per the upstream.proto.sk.md reference.
    const CLUSTER_OPTIONS: &str = r#"
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata:
  name: default-example-tls-server-8080
  namespace: gloo-system
spec:
  kube:
    serviceName: example-tls-server
    serviceNamespace: default
    servicePort: 8080
  sslConfig:
    secretRef:
      name: upstream-tls
      namespace: default
    sni: example-tls-server.default.svc.cluster.local
  healthChecks:
  - healthyThreshold: 1
    httpHealthCheck:
      path: /check/healthz
    interval: 30s
    timeout: 10s
    unhealthyThreshold: 1
  outlierDetection:
    consecutive5xx: 3
    interval: 10s
    baseEjectionTime: 30s
    maxEjectionPercent: 50
  circuitBreakers:
    maxConnections: 40000
    maxPendingRequests: 40000
    maxRequests: 40000
    maxRetries: 40000
    trackRemaining: true
  loadBalancerConfig:
    healthyPanicThreshold: 50
    ringHash:
      ringHashConfig:
        minimumRingSize: 1024
        maximumRingSize: 2048
  connectionConfig:
    maxRequestsPerConnection: 0
    perConnectionBufferLimitBytes: 10485760
  ignoreHealthOnHostRemoval: true
"#;

    #[test]
    fn parses_static_upstream() {
        let spec = spec_of(STATIC);
        match spec.upstream_type().unwrap() {
            Some(UpstreamTypeRef::Static(s)) => {
                assert_eq!(s.hosts.len(), 1);
                assert_eq!(s.hosts[0].addr, "jsonplaceholder.typicode.com");
                assert_eq!(s.hosts[0].port, 80);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn parses_kube_upstreams() {
        let spec = spec_of(KUBE);
        let Some(UpstreamTypeRef::Kube(k)) = spec.upstream_type().unwrap() else {
            panic!("not kube")
        };
        assert_eq!(k.service_name.as_deref(), Some("petstore"));
        assert_eq!(k.service_port, Some(8080));
        assert_eq!(k.selector.get("app").map(String::as_str), Some("petstore"));
        let subsets = k.subset_spec.as_ref().unwrap();
        assert_eq!(subsets.selectors[0].keys, vec!["color"]);
        assert!(spec.service_spec().unwrap().rest.is_some());

        let spec = spec_of(DISCOVERED);
        assert_eq!(spec.initial_stream_window_size, Some(2048));
        assert_eq!(
            spec.discovery_metadata
                .unwrap()
                .labels
                .get("service")
                .map(String::as_str),
            Some("petstore")
        );
    }

    #[test]
    fn parses_consul_upstream() {
        let spec = spec_of(CONSUL);
        let Some(UpstreamTypeRef::Consul(c)) = spec.upstream_type().unwrap() else {
            panic!("not consul")
        };
        assert_eq!(c.service_name.as_deref(), Some("jsonplaceholder"));
        assert_eq!(c.service_tags, vec!["gloo", "jsonplaceholder"]);
    }

    #[test]
    fn parses_ec2_upstream() {
        let spec = spec_of(EC2);
        let Some(UpstreamTypeRef::AwsEc2(e)) = spec.upstream_type().unwrap() else {
            panic!("not ec2")
        };
        assert_eq!(e.region.as_deref(), Some("us-east-1"));
        assert_eq!(e.public_ip, Some(true));
        assert_eq!(e.filters.len(), 3);
        assert_eq!(e.filters[0].key.as_deref(), Some("gloo-id"));
        let kv = e.filters[2].kv_pair.as_ref().unwrap();
        assert_eq!((kv.key.as_str(), kv.value.as_str()), ("version", "v1.2.3"));
        assert_eq!(e.secret_ref.as_ref().unwrap().name, "gloo-tag-group1");
    }

    #[test]
    fn parses_lambda_upstream() {
        let spec = spec_of(LAMBDA);
        let Some(UpstreamTypeRef::Aws(a)) = spec.upstream_type().unwrap() else {
            panic!("not aws")
        };
        assert_eq!(a.region.as_deref(), Some("us-east-1"));
        assert_eq!(a.lambda_functions.len(), 1);
        let f = &a.lambda_functions[0];
        assert_eq!(f.lambda_function_name.as_deref(), Some("uppercase"));
        assert_eq!(f.logical_name.as_deref(), Some("uppercase"));
        assert_eq!(f.qualifier.as_deref(), Some("$LATEST"));
    }

    #[test]
    fn parses_cluster_options() {
        let spec = spec_of(CLUSTER_OPTIONS);
        let ssl = spec.ssl_config.as_ref().unwrap();
        assert_eq!(
            ssl.sni.as_deref(),
            Some("example-tls-server.default.svc.cluster.local")
        );
        assert!(matches!(
            ssl.ssl_secrets().unwrap(),
            Some(SslSecretsRef::SecretRef(r)) if r.name == "upstream-tls"
        ));
        assert!(matches!(
            spec.health_checks[0].health_checker().unwrap(),
            Some(HealthCheckerRef::Http(_))
        ));
        let od = spec.outlier_detection.as_ref().unwrap();
        assert_eq!(od.consecutive_5xx, Some(3));
        assert_eq!(od.base_ejection_time, Some(Duration::from_secs(30)));
        assert_eq!(
            spec.circuit_breakers.as_ref().unwrap().max_requests,
            Some(40000)
        );
        let lb = spec.load_balancer_config.as_ref().unwrap();
        assert_eq!(lb.healthy_panic_threshold, Some(50.0));
        let Some(LoadBalancerTypeRef::RingHash(rh)) = lb.lb_type().unwrap() else {
            panic!("not ring hash")
        };
        assert_eq!(
            rh.ring_hash_config.as_ref().unwrap().maximum_ring_size,
            Some(2048)
        );
        assert_eq!(spec.ignore_health_on_host_removal, Some(true));
    }

    #[test]
    fn two_upstream_types_is_an_error() {
        let spec: UpstreamSpec = serde_yaml_ng::from_str(
            "kube: {serviceName: a}\nstatic:\n  hosts: [{addr: b, port: 1}]\n",
        )
        .unwrap();
        let err = spec.upstream_type().unwrap_err();
        assert_eq!(err.set, vec!["kube", "static"]);
    }

    #[test]
    fn rejects_unknown_field() {
        let err = serde_yaml_ng::from_str::<UpstreamSpec>("static:\n  hosts: []\n  useTLS: true\n")
            .unwrap_err();
        assert!(err.to_string().contains("useTLS"), "{err}");
    }
}
