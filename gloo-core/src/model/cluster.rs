//! Cluster behaviour settings an Upstream carries: `gloo.solo.io.CircuitBreakerConfig`
//! (`circuit_breaker/circuit_breaker.proto`), `LoadBalancerConfig` (`load_balancer.proto`),
//! `ConnectionConfig` (`connection.proto`) with `protocol.options.gloo.solo.io`'s
//! `HttpProtocolOptions` / `Http1ProtocolOptions` (`options/protocol/protocol.proto`), and
//! Gloo's copies of Envoy's `HealthCheck` (`external/envoy/api/v2/core/health_check.proto`) and
//! `OutlierDetection` (`external/envoy/api/v2/cluster/outlier_detection.proto`).
//!
//! These settings sit on an Upstream; gloo turns them into its Envoy cluster:
//!
//! ```
//! use gloo_core::load::{parse_str, Format};
//! use gloo_core::model::cluster::{HealthCheckerRef, LoadBalancerTypeRef};
//! use gloo_core::model::{Duration, Resource};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//!
//! let yaml = r#"
//! apiVersion: gloo.solo.io/v1
//! kind: Upstream
//! metadata:
//!   name: default-petstore-8080
//!   namespace: gloo-system
//! spec:
//!   kube:
//!     serviceName: petstore
//!     serviceNamespace: default
//!     servicePort: 8080
//!   healthChecks:
//!   - timeout: 1s
//!     interval: 10s
//!     unhealthyThreshold: 3
//!     healthyThreshold: 1
//!     httpHealthCheck:
//!       path: /healthz
//!   outlierDetection:
//!     consecutive5xx: 3
//!     baseEjectionTime: 30s
//!   circuitBreakers:
//!     maxConnections: 1024
//!     maxPendingRequests: 256
//!   loadBalancerConfig:
//!     leastRequest:
//!       choiceCount: 3
//!   connectionConfig:
//!     connectTimeout: 2s
//!     maxRequestsPerConnection: 100
//! "#;
//! let parsed = parse_str(yaml, "petstore.yaml", Format::Yaml);
//! assert!(parsed.is_ok(), "{:?}", parsed.errors);
//! let Resource::Upstream(upstream) = &parsed.resources[0].resource else {
//!     panic!("expected an Upstream");
//! };
//! let spec = &upstream.spec;
//!
//! let check = &spec.health_checks[0];
//! assert_eq!(check.interval, Some(Duration::from_secs(10)));
//! let Some(HealthCheckerRef::Http(http)) = check.health_checker()? else {
//!     panic!("expected an HTTP health check");
//! };
//! assert_eq!(http.path.as_deref(), Some("/healthz"));
//!
//! let lb = spec.load_balancer_config.as_ref().ok_or("no loadBalancerConfig")?;
//! let Some(LoadBalancerTypeRef::LeastRequest(least)) = lb.lb_type()? else {
//!     panic!("expected least request");
//! };
//! assert_eq!(least.choice_count, Some(3));
//!
//! let breakers = spec.circuit_breakers.as_ref().ok_or("no circuitBreakers")?;
//! assert_eq!(breakers.max_pending_requests, Some(256));
//! let outliers = spec.outlier_detection.as_ref().ok_or("no outlierDetection")?;
//! assert_eq!(outliers.consecutive_5xx, Some(3));
//! let connections = spec.connection_config.as_ref().ok_or("no connectionConfig")?;
//! assert_eq!(connections.connect_timeout, Some(Duration::from_secs(2)));
//! # Ok(())
//! # }
//! ```

use serde::{Deserialize, Serialize};

use crate::model::routing::OneofError;
use crate::model::{Duration, ResourceRef};

/// Proto3 JSON writes 64-bit integers as strings but parsers accept numbers too; these accept
/// both and write numbers.
pub(crate) mod proto_int {
    use std::fmt;

    use serde::de::{self, Visitor};
    use serde::Deserializer;

    struct IntVisitor<T>(std::marker::PhantomData<T>);

    impl<T> Visitor<'_> for IntVisitor<T>
    where
        T: TryFrom<i64> + TryFrom<u64> + std::str::FromStr,
    {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer (or a string holding one)")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            T::try_from(v).map_err(|_| E::custom(format!("integer {v} out of range")))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            T::try_from(v).map_err(|_| E::custom(format!("integer {v} out of range")))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            v.trim()
                .parse()
                .map_err(|_| E::custom(format!("invalid integer {v:?}")))
        }
    }

    fn int<'de, D, T>(deserializer: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<i64> + TryFrom<u64> + std::str::FromStr,
    {
        deserializer.deserialize_any(IntVisitor(std::marker::PhantomData))
    }

    /// An optional `int64`, as a number or a string.
    pub(crate) fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        int(d).map(Some)
    }

    /// An optional `uint64`, as a number or a string.
    pub(crate) fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        int(d).map(Some)
    }
}

/// Circuit breaking limits (`gloo.solo.io.CircuitBreakerConfig`), applied to the default
/// priority of an Envoy cluster.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CircuitBreakerConfig {
    /// Maximum connections to the upstream (Envoy default 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    /// Maximum pending requests (Envoy default 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pending_requests: Option<u32>,
    /// Maximum parallel requests (Envoy default 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u32>,
    /// Maximum parallel retries (Envoy default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// Publish stats of the resources remaining until the breakers open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_remaining: Option<bool>,
}

/// Settings for the load balancer that sends requests to the upstream's endpoints
/// (`gloo.solo.io.LoadBalancerConfig`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadBalancerConfig {
    /// Panic threshold percent (0-100): past it Envoy disregards health information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_panic_threshold: Option<f64>,
    /// Window for batching endpoint updates (default 1s; 0 disables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_merge_window: Option<Duration>,
    /// `type` oneof: round robin (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_robin: Option<RoundRobin>,
    /// `type` oneof: least request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub least_request: Option<LeastRequest>,
    /// `type` oneof: random.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random: Option<Random>,
    /// `type` oneof: ring hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring_hash: Option<RingHash>,
    /// `type` oneof: maglev.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maglev: Option<Maglev>,
    /// `locality_config` oneof (Enterprise): enable locality weighted load balancing
    /// (a `google.protobuf.Empty`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality_weighted_lb_config: Option<Empty>,
    /// Use the hostname rather than the IP for hashing (maglev, ring hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_hostname_for_hashing: Option<bool>,
    /// Drain connections when the host set changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_connections_on_host_set_change: Option<bool>,
}

/// `google.protobuf.Empty`: an object with no fields (`{}`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// The `type` oneof of [`LoadBalancerConfig`]: the load balancing algorithm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LoadBalancerTypeRef<'a> {
    /// Round robin.
    RoundRobin(&'a RoundRobin),
    /// Least request.
    LeastRequest(&'a LeastRequest),
    /// Random.
    Random(&'a Random),
    /// Ring hash.
    RingHash(&'a RingHash),
    /// Maglev.
    Maglev(&'a Maglev),
}

impl LoadBalancerConfig {
    /// The load balancing algorithm; `None` means round robin. An error if several are set.
    pub fn lb_type(&self) -> Result<Option<LoadBalancerTypeRef<'_>>, OneofError> {
        OneofError::check(
            "type",
            &[
                ("roundRobin", self.round_robin.is_some()),
                ("leastRequest", self.least_request.is_some()),
                ("random", self.random.is_some()),
                ("ringHash", self.ring_hash.is_some()),
                ("maglev", self.maglev.is_some()),
            ],
        )?;
        Ok(self
            .round_robin
            .as_ref()
            .map(LoadBalancerTypeRef::RoundRobin)
            .or(self
                .least_request
                .as_ref()
                .map(LoadBalancerTypeRef::LeastRequest))
            .or(self.random.as_ref().map(LoadBalancerTypeRef::Random))
            .or(self.ring_hash.as_ref().map(LoadBalancerTypeRef::RingHash))
            .or(self.maglev.as_ref().map(LoadBalancerTypeRef::Maglev)))
    }
}

/// `LoadBalancerConfig.RoundRobin`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoundRobin {
    /// Slow start mode; not enabled when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_start_config: Option<SlowStartConfig>,
}

/// `LoadBalancerConfig.LeastRequest`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LeastRequest {
    /// How many choices to take into account (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choice_count: Option<u32>,
    /// Slow start mode; not enabled when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_start_config: Option<SlowStartConfig>,
}

/// `LoadBalancerConfig.Random` (no fields).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Random {}

/// `LoadBalancerConfig.Maglev` (no fields).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Maglev {}

/// `LoadBalancerConfig.RingHash`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RingHash {
    /// Parameters of the hashing algorithm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring_hash_config: Option<RingHashConfig>,
}

/// `LoadBalancerConfig.RingHashConfig`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RingHashConfig {
    /// Minimum hash ring size (default 1024).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "proto_int::opt_u64"
    )]
    pub minimum_ring_size: Option<u64>,
    /// Maximum hash ring size (default and limit 8M).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "proto_int::opt_u64"
    )]
    pub maximum_ring_size: Option<u64>,
}

/// `LoadBalancerConfig.SlowStartConfig`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlowStartConfig {
    /// Size of the slow start window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_start_window: Option<Duration>,
    /// Speed of traffic increase over the window (default 1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggression: Option<f64>,
    /// Minimum percentage of origin weight (default 10%).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_weight_percent: Option<f64>,
}

/// Fine tuning of connections to an upstream (`gloo.solo.io.ConnectionConfig`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionConfig {
    /// Maximum requests for a single upstream connection (0 or unset = no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests_per_connection: Option<u32>,
    /// Timeout for new network connections to hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<Duration>,
    /// OS-level TCP keepalive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_keepalive: Option<TcpKeepAlive>,
    /// Soft limit on the connections' read and write buffers (default 1MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_connection_buffer_limit_bytes: Option<u32>,
    /// HTTP options applicable to both HTTP/1 and HTTP/2 upstream requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_http_protocol_options: Option<HttpProtocolOptions>,
    /// HTTP/1-only options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http1_protocol_options: Option<Http1ProtocolOptions>,
}

/// `ConnectionConfig.TcpKeepAlive`: sets `SO_KEEPALIVE` on the socket.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpKeepAlive {
    /// Unanswered probes before the connection is considered dead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive_probes: Option<u32>,
    /// Idle time before probes start (rounded up to the second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive_time: Option<Duration>,
    /// Time between probes (rounded up to the second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive_interval: Option<Duration>,
}

/// `protocol.options.gloo.solo.io.HttpProtocolOptions`: HTTP/1 and HTTP/2 upstream options.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpProtocolOptions {
    /// Idle timeout for connections (default 1h; 0 disables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<Duration>,
    /// Maximum number of headers (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_headers_count: Option<u32>,
    /// Total duration to keep an HTTP stream alive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_stream_duration: Option<Duration>,
    /// Action on request header names containing underscores (default `ALLOW`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers_with_underscores_action: Option<HeadersWithUnderscoresAction>,
}

/// `HttpProtocolOptions.HeadersWithUnderscoresAction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HeadersWithUnderscoresAction {
    /// Allow headers with underscores.
    #[default]
    Allow,
    /// Reject the request.
    RejectRequest,
    /// Drop the header.
    DropHeader,
}

/// `protocol.options.gloo.solo.io.Http1ProtocolOptions`: HTTP/1-only upstream options.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Http1ProtocolOptions {
    /// Enable trailers for HTTP/1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_trailers: Option<bool>,
    /// `header_format` oneof: proper-case response header keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proper_case_header_key_format: Option<bool>,
    /// `header_format` oneof: preserve the case of response header keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_case_header_key_format: Option<bool>,
    /// Keep HTTP/1.1 connections open on invalid messages (overrides the HCM setting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_stream_error_on_invalid_http_message: Option<bool>,
}

impl Http1ProtocolOptions {
    /// The `header_format` oneof: at most one of `properCaseHeaderKeyFormat` and
    /// `preserveCaseHeaderKeyFormat` (Gloo cannot read an Upstream setting both).
    ///
    /// ```
    /// use gloo_core::model::cluster::Http1ProtocolOptions;
    /// let both = Http1ProtocolOptions {
    ///     proper_case_header_key_format: Some(false),
    ///     preserve_case_header_key_format: Some(true),
    ///     ..Default::default()
    /// };
    /// assert!(both.check_header_format().is_err());
    /// ```
    pub fn check_header_format(&self) -> Result<(), crate::model::routing::OneofError> {
        crate::model::routing::OneofError::check(
            "header_format",
            &[
                (
                    "properCaseHeaderKeyFormat",
                    self.proper_case_header_key_format.is_some(),
                ),
                (
                    "preserveCaseHeaderKeyFormat",
                    self.preserve_case_header_key_format.is_some(),
                ),
            ],
        )
    }
}

/// An active health check (`solo.io.envoy.api.v2.core.HealthCheck`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheck {
    /// Time to wait for a health check response (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Interval between health checks (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// Jitter before the first health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_jitter: Option<Duration>,
    /// Random jitter added to each interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_jitter: Option<Duration>,
    /// Jitter as a percentage of the interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_jitter_percent: Option<u32>,
    /// Unhealthy checks required before a host is marked unhealthy (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy_threshold: Option<u32>,
    /// Healthy checks required before a host is marked healthy (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_threshold: Option<u32>,
    /// Reuse the health check connection between checks (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reuse_connection: Option<bool>,
    /// `health_checker` oneof: HTTP health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_health_check: Option<HttpHealthCheck>,
    /// `health_checker` oneof: TCP health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_health_check: Option<TcpHealthCheck>,
    /// `health_checker` oneof: gRPC health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_health_check: Option<GrpcHealthCheck>,
    /// `health_checker` oneof: custom health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_health_check: Option<CustomHealthCheck>,
    /// Interval used while a cluster has received no traffic (default 60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_traffic_interval: Option<Duration>,
    /// Interval used for hosts marked unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy_interval: Option<Duration>,
    /// Interval used for the first check after a host turns unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy_edge_interval: Option<Duration>,
    /// Interval used for the first check after a host turns healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_edge_interval: Option<Duration>,
    /// Path of the health check event log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_log_path: Option<String>,
    /// Log every health check failure, not only the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub always_log_health_check_failures: Option<bool>,
}

/// The `health_checker` oneof of [`HealthCheck`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HealthCheckerRef<'a> {
    /// HTTP health check.
    Http(&'a HttpHealthCheck),
    /// TCP health check.
    Tcp(&'a TcpHealthCheck),
    /// gRPC health check.
    Grpc(&'a GrpcHealthCheck),
    /// Custom health check.
    Custom(&'a CustomHealthCheck),
}

impl HealthCheck {
    /// The kind of health check; an error if several are set (Gloo requires exactly one).
    pub fn health_checker(&self) -> Result<Option<HealthCheckerRef<'_>>, OneofError> {
        OneofError::check(
            "healthChecker",
            &[
                ("httpHealthCheck", self.http_health_check.is_some()),
                ("tcpHealthCheck", self.tcp_health_check.is_some()),
                ("grpcHealthCheck", self.grpc_health_check.is_some()),
                ("customHealthCheck", self.custom_health_check.is_some()),
            ],
        )?;
        Ok(self
            .http_health_check
            .as_ref()
            .map(HealthCheckerRef::Http)
            .or(self.tcp_health_check.as_ref().map(HealthCheckerRef::Tcp))
            .or(self.grpc_health_check.as_ref().map(HealthCheckerRef::Grpc))
            .or(self
                .custom_health_check
                .as_ref()
                .map(HealthCheckerRef::Custom)))
    }
}

/// `HealthCheck.Payload`: bytes to send or expect.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Payload {
    /// Hex-encoded payload (`payload` oneof, required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// `HealthCheck.HttpHealthCheck`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpHealthCheck {
    /// Host header value; defaults to the cluster name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Path requested (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Expected `x-envoy-upstream-healthchecked-cluster` prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// Headers added to health check requests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_headers_to_add: Vec<HeaderValueOption>,
    /// Headers removed from health check requests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_headers_to_remove: Vec<String>,
    /// Use HTTP/2 for the check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_http2: Option<bool>,
    /// Status ranges considered healthy (half-open `[start, end)`); default 200 only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expected_statuses: Vec<Int64Range>,
    /// (Enterprise) assertions on the response body.
    /// Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_assertions: Option<serde_json::Value>,
    /// HTTP method of the check (default GET).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<RequestMethod>,
}

/// `HealthCheck.TcpHealthCheck`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpHealthCheck {
    /// Payload to send; empty means connect-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<Payload>,
    /// Payloads expected in the response.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub receive: Vec<Payload>,
}

/// `HealthCheck.GrpcHealthCheck`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcHealthCheck {
    /// Service name in the `grpc.health.v1.HealthCheckRequest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// `:authority` header value; defaults to the cluster name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    /// Metadata added to health check requests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub initial_metadata: Vec<HeaderValueOption>,
}

/// `HealthCheck.CustomHealthCheck`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomHealthCheck {
    /// The registered name of the custom health checker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `config_type` oneof: untyped config.
    /// Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
    /// `config_type` oneof: typed config (`Any`).
    /// Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typed_config: Option<serde_json::Value>,
}

/// `solo.io.envoy.api.v2.core.HeaderValueOption`: a header plus append behaviour.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderValueOption {
    /// The header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<HeaderValue>,
    /// A secret holding the header's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_secret_ref: Option<ResourceRef>,
    /// Append to existing values (default true) rather than overwrite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub append: Option<bool>,
}

/// A header name/value pair (`solo.io.envoy.api.v2.core.HeaderValue`, `gloo.solo.io.HeaderValue`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderValue {
    /// Header name.
    #[serde(default)]
    pub key: String,
    /// Header value.
    #[serde(default)]
    pub value: String,
}

/// `solo.io.envoy.type.Int64Range`: the half-open interval `[start, end)`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Int64Range {
    /// Start of the range (inclusive).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "proto_int::opt_i64"
    )]
    pub start: Option<i64>,
    /// End of the range (exclusive).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "proto_int::opt_i64"
    )]
    pub end: Option<i64>,
}

/// `solo.io.envoy.config.core.v3.RequestMethod`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RequestMethod {
    /// Unspecified (GET for health checks).
    #[default]
    MethodUnspecified,
    /// GET.
    Get,
    /// HEAD.
    Head,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// DELETE.
    Delete,
    /// CONNECT.
    Connect,
    /// OPTIONS.
    Options,
    /// TRACE.
    Trace,
    /// PATCH.
    Patch,
}

/// Passive health checking: ejecting misbehaving hosts
/// (`solo.io.envoy.api.v2.cluster.OutlierDetection`). Percent fields are `0..=100`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutlierDetection {
    /// Consecutive 5xx responses before ejection (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_5xx: Option<u32>,
    /// Interval between ejection analysis sweeps (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// Base ejection time, multiplied by the number of ejections (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_ejection_time: Option<Duration>,
    /// Maximum percent of hosts that can be ejected (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ejection_percent: Option<u32>,
    /// Percent chance of ejecting on consecutive 5xx (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcing_consecutive_5xx: Option<u32>,
    /// Percent chance of ejecting on success rate statistics (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcing_success_rate: Option<u32>,
    /// Hosts with enough volume required for success rate detection (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_rate_minimum_hosts: Option<u32>,
    /// Requests per interval required to include a host (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_rate_request_volume: Option<u32>,
    /// Stdev factor for the ejection threshold, divided by 1000 (default 1900).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_rate_stdev_factor: Option<u32>,
    /// Consecutive gateway failures (502/503/504) before ejection (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_gateway_failure: Option<u32>,
    /// Percent chance of ejecting on consecutive gateway failures (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcing_consecutive_gateway_failure: Option<u32>,
    /// Distinguish local origin failures from external errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_external_local_origin_errors: Option<bool>,
    /// Consecutive local origin failures before ejection (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_local_origin_failure: Option<u32>,
    /// Percent chance of ejecting on consecutive local origin failures (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcing_consecutive_local_origin_failure: Option<u32>,
    /// Percent chance of ejecting on local origin success rate (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcing_local_origin_success_rate: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    // docs/content/guides/traffic_management/request_processing/upstream_health_checks/_index.md
    const HEALTH_CHECK: &str = r#"
- healthyThreshold: 1
  httpHealthCheck:
    path: /check/healthz
  interval: 30s
  timeout: 10s
  unhealthyThreshold: 1
"#;

    // docs/content/guides/traffic_management/listener_configuration/http_connection_manager/dfp/_index.md
    const CIRCUIT_BREAKERS: &str = r#"
maxConnections: 40000
maxPendingRequests: 40000
maxRequests: 40000
maxRetries: 40000
trackRemaining: true
"#;

    // docs/content/guides/traffic_management/buffering/_index.md
    const CONNECTION_CONFIG: &str = r#"
maxRequestsPerConnection: 0
perConnectionBufferLimitBytes: 10485760
"#;

    #[test]
    fn parses_health_checks() {
        let hcs: Vec<HealthCheck> = serde_yaml_ng::from_str(HEALTH_CHECK).unwrap();
        let hc = &hcs[0];
        assert_eq!(hc.interval, Some(Duration::from_secs(30)));
        assert_eq!(hc.timeout, Some(Duration::from_secs(10)));
        assert_eq!(hc.healthy_threshold, Some(1));
        match hc.health_checker().unwrap() {
            Some(HealthCheckerRef::Http(h)) => {
                assert_eq!(h.path.as_deref(), Some("/check/healthz"))
            }
            other => panic!("unexpected {other:?}"),
        }
        let json = serde_json::to_string(&hcs).unwrap();
        let back: Vec<HealthCheck> = serde_json::from_str(&json).unwrap();
        assert_eq!(hcs, back);
    }

    #[test]
    fn parses_circuit_breakers_and_connection_config() {
        let cb: CircuitBreakerConfig = serde_yaml_ng::from_str(CIRCUIT_BREAKERS).unwrap();
        assert_eq!(cb.max_connections, Some(40000));
        assert_eq!(cb.track_remaining, Some(true));
        let cc: ConnectionConfig = serde_yaml_ng::from_str(CONNECTION_CONFIG).unwrap();
        assert_eq!(cc.per_connection_buffer_limit_bytes, Some(10485760));
        assert_eq!(cc.max_requests_per_connection, Some(0));
        let back: ConnectionConfig =
            serde_json::from_str(&serde_json::to_string(&cc).unwrap()).unwrap();
        assert_eq!(cc, back);
    }

    #[test]
    fn ring_hash_sizes_and_statuses_accept_strings() {
        let lb: LoadBalancerConfig = serde_yaml_ng::from_str(
            "ringHash:\n  ringHashConfig:\n    minimumRingSize: \"1024\"\n    maximumRingSize: 2048\n",
        )
        .unwrap();
        match lb.lb_type().unwrap() {
            Some(LoadBalancerTypeRef::RingHash(r)) => {
                let c = r.ring_hash_config.as_ref().unwrap();
                assert_eq!(c.minimum_ring_size, Some(1024));
                assert_eq!(c.maximum_ring_size, Some(2048));
            }
            other => panic!("unexpected {other:?}"),
        }
        let range: Int64Range = serde_json::from_str(r#"{"start":"200","end":300}"#).unwrap();
        assert_eq!((range.start, range.end), (Some(200), Some(300)));
        let lb2: LoadBalancerConfig = serde_yaml_ng::from_str("random: {}\nmaglev: {}\n").unwrap();
        assert_eq!(lb2.lb_type().unwrap_err().set, vec!["random", "maglev"]);
    }

    #[test]
    fn rejects_unknown_field() {
        let err = serde_yaml_ng::from_str::<OutlierDetection>("consecutive5xxx: 3\n").unwrap_err();
        assert!(err.to_string().contains("consecutive5xxx"), "{err}");
    }
}
