//! Listener options: Gloo's `gloo/api/v1/listener_options.proto` (`ListenerOptions`),
//! `http_listener_options.proto` (`HttpListenerOptions`), `tcp_listener_options.proto`
//! (`TcpListenerOptions`), `route_configuration_options.proto` (`RouteConfigurationOptions`)
//! and `options/hcm/hcm.proto` (`HttpConnectionManagerSettings`).
//!
//! Listener options are set on a Gateway: `options` for any listener, `httpGateway.options` for an
//! HTTP one, and `routeOptions` for its route configuration:
//!
//! ```
//! use gloo_core::load::{parse_str, Format};
//! use gloo_core::model::listener_options::{CodecType, HeadersWithUnderscoreAction};
//! use gloo_core::model::{Duration, Resource};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//!
//! let yaml = r#"
//! apiVersion: gateway.solo.io/v1
//! kind: Gateway
//! metadata:
//!   name: gateway-proxy
//!   namespace: gloo-system
//! spec:
//!   bindAddress: '::'
//!   bindPort: 8080
//!   options:
//!     perConnectionBufferLimitBytes: 1048576
//!   httpGateway:
//!     options:
//!       httpConnectionManagerSettings:
//!         useRemoteAddress: true
//!         xffNumTrustedHops: 1
//!         idleTimeout: 300s
//!         serverName: edge
//!         codecType: HTTP1
//!         headersWithUnderscoresAction: REJECT_CLIENT_REQUEST
//!   routeOptions:
//!     maxDirectResponseBodySizeBytes: 8192
//! "#;
//! let parsed = parse_str(yaml, "gateway.yaml", Format::Yaml);
//! assert!(parsed.is_ok(), "{:?}", parsed.errors);
//! let Resource::Gateway(gateway) = &parsed.resources[0].resource else {
//!     panic!("expected a Gateway");
//! };
//! let listener = gateway.spec.options.as_ref().ok_or("no options")?;
//! assert_eq!(listener.per_connection_buffer_limit_bytes, Some(1_048_576));
//!
//! let http = gateway.spec.http_gateway.as_ref().ok_or("no httpGateway")?;
//! let hcm = http
//!     .options
//!     .as_ref()
//!     .and_then(|o| o.http_connection_manager_settings.as_ref())
//!     .ok_or("no httpConnectionManagerSettings")?;
//! assert_eq!(hcm.use_remote_address, Some(true));
//! assert_eq!(hcm.xff_num_trusted_hops, Some(1));
//! assert_eq!(hcm.idle_timeout, Some(Duration::from_secs(300)));
//! assert_eq!(hcm.server_name.as_deref(), Some("edge"));
//! assert_eq!(hcm.codec_type, Some(CodecType::Http1));
//! assert_eq!(
//!     hcm.headers_with_underscores_action,
//!     Some(HeadersWithUnderscoreAction::RejectClientRequest)
//! );
//!
//! let routes = gateway.spec.route_options.as_ref().ok_or("no routeOptions")?;
//! assert_eq!(routes.max_direct_response_body_size_bytes, Some(8192));
//! # Ok(())
//! # }
//! ```

use serde::{Deserialize, Serialize};

use crate::model::access_log::AccessLoggingService;
use crate::model::headers::EarlyHeaderManipulation;
use crate::model::http_filters::{Buffer, Gzip, HealthCheck};
use crate::model::ratelimit::LocalRateLimitSettings;
use crate::model::Duration;

/// Options for a listener, whatever its type (`gloo.solo.io.ListenerOptions`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListenerOptions {
    /// Access logs of the listener's HTTP connection managers and TCP proxies (file sinks and
    /// gRPC access log services; OpenTelemetry sinks are not translated yet).
    #[serde(
        alias = "access_logging_service",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub access_logging_service: Option<AccessLoggingService>,
    /// Deprecated plugin extensions. Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<serde_json::Value>,
    /// Soft limit on the size of the listener's new connection read and write buffers.
    #[serde(
        alias = "per_connection_buffer_limit_bytes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub per_connection_buffer_limit_bytes: Option<u32>,
    /// Socket options for the listener. Accepted and carried; not interpreted yet.
    #[serde(
        alias = "socket_options",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub socket_options: Vec<serde_json::Value>,
    /// PROXY protocol listener filter settings. Accepted and carried; not interpreted yet.
    #[serde(
        alias = "proxy_protocol",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub proxy_protocol: Option<serde_json::Value>,
    /// Connection balancing across worker threads.
    #[serde(
        alias = "connection_balance_config",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub connection_balance_config: Option<ConnectionBalanceConfig>,
    /// Listener-level access logging. Accepted and carried; not interpreted yet.
    #[serde(
        alias = "listener_access_logging_service",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub listener_access_logging_service: Option<serde_json::Value>,
    /// Collect TCP statistics (the `tcp_stats` transport socket).
    #[serde(alias = "tcp_stats", default, skip_serializing_if = "Option::is_none")]
    pub tcp_stats: Option<bool>,
}

/// Connection balancing (`gloo.solo.io.ConnectionBalanceConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionBalanceConfig {
    /// Balance connections exactly across worker threads.
    #[serde(
        alias = "exact_balance",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub exact_balance: Option<ExactBalance>,
}

/// Exact connection balancing (no fields).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExactBalance {}

/// The gRPC-Web filter of an HTTP listener (`grpc_web.options.gloo.solo.io.GrpcWeb`): Gloo
/// puts Envoy's gRPC-Web filter on every HTTP listener unless it is disabled.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcWeb {
    /// Leave the gRPC-Web filter off this listener (`false` puts it on, whatever Settings say).
    #[serde(default)]
    pub disable: bool,
}

/// Options for an HTTP listener (`gloo.solo.io.HttpListenerOptions`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpListenerOptions {
    /// The gRPC-Web filter of this listener. Set, its `disable` decides whether the listener
    /// has the filter; unset, Settings decide (`gloo.disableGrpcWeb`, else
    /// `gloo.removeUnusedFilters`), and the filter is on by default, as in Gloo.
    #[serde(alias = "grpc_web", default, skip_serializing_if = "Option::is_none")]
    pub grpc_web: Option<GrpcWeb>,
    /// HTTP connection manager settings.
    #[serde(
        alias = "http_connection_manager_settings",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub http_connection_manager_settings: Option<HttpConnectionManagerSettings>,
    /// The health check filter: the listener answers requests for one exact path itself
    /// (Envoy's `envoy.filters.http.health_check`).
    #[serde(
        alias = "health_check",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub health_check: Option<HealthCheck>,
    /// Deprecated plugin extensions. Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<serde_json::Value>,
    /// Web application firewall settings for the listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waf: Option<crate::model::waf::Settings>,
    /// Data loss prevention filter settings. Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dlp: Option<serde_json::Value>,
    /// Wasm filter settings. Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wasm: Option<serde_json::Value>,
    /// External authorization server settings for this listener (overrides `Settings`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extauth: Option<crate::model::extauth::Settings>,
    /// Rate limit server settings for this listener (overrides `Settings`). Accepted and
    /// carried; not interpreted yet.
    #[serde(
        alias = "ratelimit_server",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ratelimit_server: Option<serde_json::Value>,
    /// Deprecated caching filter settings. Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caching: Option<serde_json::Value>,
    /// `ext_proc_early_config` oneof: disable early external processing.
    #[serde(
        alias = "disable_ext_proc_early",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub disable_ext_proc_early: Option<bool>,
    /// `ext_proc_early_config` oneof: early external processing settings. Accepted and
    /// carried; not interpreted yet.
    #[serde(
        alias = "ext_proc_early",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ext_proc_early: Option<serde_json::Value>,
    /// `ext_proc_config` oneof: disable external processing.
    #[serde(
        alias = "disable_ext_proc",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub disable_ext_proc: Option<bool>,
    /// `ext_proc_config` oneof: external processing settings. Accepted and carried; not
    /// interpreted yet.
    #[serde(alias = "ext_proc", default, skip_serializing_if = "Option::is_none")]
    pub ext_proc: Option<serde_json::Value>,
    /// `ext_proc_late_config` oneof: disable late external processing.
    #[serde(
        alias = "disable_ext_proc_late",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub disable_ext_proc_late: Option<bool>,
    /// `ext_proc_late_config` oneof: late external processing settings. Accepted and
    /// carried; not interpreted yet.
    #[serde(
        alias = "ext_proc_late",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ext_proc_late: Option<serde_json::Value>,
    /// Gzip compression of responses (Envoy's `envoy.filters.http.compressor` with the gzip
    /// library).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gzip: Option<Gzip>,
    /// Proxy latency filter settings. Accepted and carried; not interpreted yet.
    #[serde(
        alias = "proxy_latency",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub proxy_latency: Option<serde_json::Value>,
    /// Request buffering up to a limit before routing (Envoy's `envoy.filters.http.buffer`);
    /// routes' `bufferPerRoute` settings take effect only where this is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffer: Option<Buffer>,
    /// CSRF filter settings. Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csrf: Option<serde_json::Value>,
    /// gRPC-JSON transcoder settings. Accepted and carried; not interpreted yet.
    #[serde(
        alias = "grpc_json_transcoder",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub grpc_json_transcoder: Option<serde_json::Value>,
    /// Remove any `x-gloo-cluster` style cluster header sent by the client.
    #[serde(
        alias = "sanitize_cluster_header",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub sanitize_cluster_header: Option<bool>,
    /// Use the leftmost `x-forwarded-for` address as the client address.
    #[serde(
        alias = "leftmost_xff_address",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub leftmost_xff_address: Option<bool>,
    /// The dynamic forward proxy: Envoy's `envoy.filters.http.dynamic_forward_proxy` filter
    /// with this DNS cache, and a generated cluster that routes with a `dynamicForwardProxy`
    /// action send to (Gloo's `dynamic_forward_proxy` plugin).
    #[serde(
        alias = "dynamic_forward_proxy",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dynamic_forward_proxy:
        Option<crate::model::dynamic_forward_proxy::DynamicForwardProxyFilterConfig>,
    /// Connection limit network filter settings. Accepted and carried; not interpreted yet.
    #[serde(
        alias = "connection_limit",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub connection_limit: Option<serde_json::Value>,
    /// Network-level local rate limit (token bucket). Accepted and carried; not interpreted yet.
    #[serde(
        alias = "network_local_ratelimit",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub network_local_ratelimit: Option<serde_json::Value>,
    /// HTTP local rate limiting: the listener's default token bucket and the flags copied
    /// into every virtual host and route bucket (Envoy's `envoy.filters.http.local_ratelimit`).
    #[serde(
        alias = "http_local_ratelimit",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub http_local_ratelimit: Option<LocalRateLimitSettings>,
    /// The router filter's settings (`suppressEnvoyHeaders`, `dynamicStats`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router: Option<Router>,
    /// Tap filter settings. Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tap: Option<serde_json::Value>,
    /// Stateful session filter settings. Accepted and carried; not interpreted yet.
    #[serde(
        alias = "stateful_session",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stateful_session: Option<serde_json::Value>,
    /// How the connection manager validates request headers: `disableHttp1MethodValidation`
    /// sets its HTTP/1 `allow_custom_methods`, as in Gloo.
    #[serde(
        alias = "header_validation_settings",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub header_validation_settings: Option<HeaderValidationSettings>,
}

/// The router filter of an HTTP listener (`gloo.solo.io.Router`), as Envoy's
/// `envoy.extensions.filters.http.router.v3.Router` takes it.
///
/// ```
/// use gloo_core::model::listener_options::Router;
/// let router: Router =
///     serde_json::from_str(r#"{"suppressEnvoyHeaders": true, "dynamicStats": false}"#).unwrap();
/// assert_eq!(router.suppress_envoy_headers, Some(true));
/// assert_eq!(router.dynamic_stats, Some(false));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Router {
    /// Leave out the `x-envoy-*` headers the router adds (only `true` changes anything).
    #[serde(
        alias = "suppress_envoy_headers",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub suppress_envoy_headers: Option<bool>,
    /// Whether the router writes dynamic stats (canary, per-zone; Envoy's default true).
    #[serde(
        alias = "dynamic_stats",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dynamic_stats: Option<bool>,
}

/// How an HTTP listener validates request headers
/// (`header_validation.options.gloo.solo.io.HeaderValidationSettings`).
///
/// ```
/// use gloo_core::model::listener_options::HeaderValidationSettings;
/// let settings: HeaderValidationSettings =
///     serde_json::from_str(r#"{"disableHttp1MethodValidation": {}}"#).unwrap();
/// assert!(settings.disable_http1_method_validation.is_some());
/// // A misspelt member is refused rather than ignored.
/// assert!(serde_json::from_str::<HeaderValidationSettings>(
///     r#"{"disableHttp1MethodsValidation": {}}"#
/// )
/// .is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderValidationSettings {
    /// The `header_method_validation` oneof's only member: set (to `{}`), Envoy's HTTP/1
    /// codec (its default Balsa parser) accepts any non-empty method made of valid token
    /// characters, not only the methods it knows (an unknown one is otherwise refused with a
    /// 400): the connection manager's HTTP/1 `allow_custom_methods`, as Gloo's hcm plugin
    /// writes it. HTTP/2 methods are not validated either way.
    #[serde(
        alias = "disable_http1_method_validation",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub disable_http1_method_validation: Option<crate::model::cluster::Empty>,
}

/// Options for a TCP listener (`gloo.solo.io.TcpListenerOptions`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpListenerOptions {
    /// Settings of every TCP host's `envoy.filters.network.tcp_proxy` filter.
    #[serde(
        alias = "tcp_proxy_settings",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub tcp_proxy_settings: Option<TcpProxySettings>,
    /// Connection limit network filter settings. Accepted and carried; not interpreted yet.
    #[serde(
        alias = "connection_limit",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub connection_limit: Option<serde_json::Value>,
    /// Local rate limit (token bucket). Accepted and carried; not interpreted yet.
    #[serde(
        alias = "local_ratelimit",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub local_ratelimit: Option<serde_json::Value>,
}

/// Settings of the TCP proxy filter (`tcp.options.gloo.solo.io.TcpProxySettings`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpProxySettings {
    /// How many times to try connecting to the upstream (Envoy's default is 1).
    #[serde(
        alias = "max_connect_attempts",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_connect_attempts: Option<u32>,
    /// Close a connection idle (no bytes either way) this long (Envoy's default is 1h).
    #[serde(
        alias = "idle_timeout",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub idle_timeout: Option<Duration>,
    /// Tunnel the TCP payload over an HTTP CONNECT to the upstream.
    #[serde(
        alias = "tunneling_config",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub tunneling_config: Option<TcpTunnelingConfig>,
    /// Write the access logs on this interval as well as when a connection closes (at least
    /// 1ms).
    #[serde(
        alias = "access_log_flush_interval",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub access_log_flush_interval: Option<Duration>,
}

/// `TcpProxySettings.TunnelingConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpTunnelingConfig {
    /// The host name sent in the CONNECT request.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    /// Headers added to the CONNECT request.
    #[serde(
        alias = "headers_to_add",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub headers_to_add: Vec<TcpHeaderValueOption>,
}

/// A header to add to a tunnel's CONNECT request (`tcp.options.gloo.solo.io.HeaderValueOption`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpHeaderValueOption {
    /// The header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<TcpHeaderValue>,
    /// Append to the header's values (the default) rather than replace them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub append: Option<bool>,
}

/// A header name and value (`tcp.options.gloo.solo.io.HeaderValue`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpHeaderValue {
    /// Header name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// Header value.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
}

/// Options for a listener's Envoy route configuration (`gloo.solo.io.RouteConfigurationOptions`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteConfigurationOptions {
    /// Maximum size of a direct response body.
    #[serde(
        alias = "max_direct_response_body_size_bytes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_direct_response_body_size_bytes: Option<u32>,
    /// Most specific header mutations (route over virtual host over route config) win.
    #[serde(
        alias = "most_specific_header_mutations_wins",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub most_specific_header_mutations_wins: Option<bool>,
}

/// HTTP connection manager settings (`hcm.options.gloo.solo.io.HttpConnectionManagerSettings`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpConnectionManagerSettings {
    /// Don't append the client address to `x-forwarded-for`.
    #[serde(
        alias = "skip_xff_append",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub skip_xff_append: Option<bool>,
    /// Value of the `via` header to add.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// Number of trusted hops in `x-forwarded-for`.
    #[serde(
        alias = "xff_num_trusted_hops",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub xff_num_trusted_hops: Option<u32>,
    /// Use the real remote address as the client address.
    #[serde(
        alias = "use_remote_address",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub use_remote_address: Option<bool>,
    /// Generate `x-request-id` when missing.
    #[serde(
        alias = "generate_request_id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub generate_request_id: Option<bool>,
    /// Respond to `Expect: 100-continue` in the proxy.
    #[serde(
        alias = "proxy_100_continue",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub proxy_100_continue: Option<bool>,
    /// Stream idle timeout.
    #[serde(
        alias = "stream_idle_timeout",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stream_idle_timeout: Option<Duration>,
    /// Connection idle timeout.
    #[serde(
        alias = "idle_timeout",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub idle_timeout: Option<Duration>,
    /// Maximum request headers size in KiB.
    #[serde(
        alias = "max_request_headers_kb",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_request_headers_kb: Option<u32>,
    /// Timeout for the whole request to be received.
    #[serde(
        alias = "request_timeout",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub request_timeout: Option<Duration>,
    /// Timeout for the request headers to be received.
    #[serde(
        alias = "request_headers_timeout",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub request_headers_timeout: Option<Duration>,
    /// Drain timeout for HTTP/2 GOAWAY.
    #[serde(
        alias = "drain_timeout",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub drain_timeout: Option<Duration>,
    /// Delayed close timeout.
    #[serde(
        alias = "delayed_close_timeout",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub delayed_close_timeout: Option<Duration>,
    /// `server` header value.
    #[serde(
        alias = "server_name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub server_name: Option<String>,
    /// Strip any port from the host header.
    #[serde(
        alias = "strip_any_host_port",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub strip_any_host_port: Option<bool>,
    /// Accept HTTP/1.0 requests.
    #[serde(
        alias = "accept_http_10",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub accept_http_10: Option<bool>,
    /// Host to use for HTTP/1.0 requests without one.
    #[serde(
        alias = "default_host_for_http_10",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub default_host_for_http_10: Option<String>,
    /// Accept HTTP/1 messages with both `content-length` and `transfer-encoding: chunked` (the
    /// length is dropped) instead of refusing them: true sets the connection manager's HTTP/1
    /// `allow_chunked_length`; false changes nothing.
    #[serde(
        alias = "allow_chunked_length",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub allow_chunked_length: Option<bool>,
    /// Proxy HTTP/1 trailers instead of dropping them: true sets the connection manager's
    /// HTTP/1 `enable_trailers`; false changes nothing.
    #[serde(
        alias = "enable_trailers",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub enable_trailers: Option<bool>,
    /// `header_format` oneof: proper-case HTTP/1 header keys.
    #[serde(
        alias = "proper_case_header_key_format",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub proper_case_header_key_format: Option<bool>,
    /// `header_format` oneof: preserve the case of HTTP/1 header keys.
    #[serde(
        alias = "preserve_case_header_key_format",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub preserve_case_header_key_format: Option<bool>,
    /// Tracing: the connection manager's `tracing` (tags, sampling and the tracer), as Gloo's
    /// tracing plugin writes it (see [`crate::model::tracing`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<crate::model::tracing::ListenerTracingSettings>,
    /// How to handle `x-forwarded-client-cert`.
    #[serde(
        alias = "forward_client_cert_details",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub forward_client_cert_details: Option<ForwardClientCertDetails>,
    /// Which details of the client certificate to put in `x-forwarded-client-cert`: the
    /// connection manager's `set_current_client_cert_details`, written (as Gloo's hcm plugin
    /// writes it) only when `forwardClientCertDetails` is `APPEND_FORWARD` or `SANITIZE_SET`,
    /// the two modes in which Envoy sets the header from the client certificate; with any other
    /// mode it is left out, with a warning.
    #[serde(
        alias = "set_current_client_cert_details",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub set_current_client_cert_details: Option<SetCurrentClientCertDetails>,
    /// Keep an external `x-request-id`.
    #[serde(
        alias = "preserve_external_request_id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub preserve_external_request_id: Option<bool>,
    /// Protocol upgrades (e.g. websocket). Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upgrades: Vec<serde_json::Value>,
    /// Maximum connection duration.
    #[serde(
        alias = "max_connection_duration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_connection_duration: Option<Duration>,
    /// Maximum stream duration.
    #[serde(
        alias = "max_stream_duration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_stream_duration: Option<Duration>,
    /// Maximum number of request headers.
    #[serde(
        alias = "max_headers_count",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_headers_count: Option<u32>,
    /// What to do with headers containing underscores.
    #[serde(
        alias = "headers_with_underscores_action",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub headers_with_underscores_action: Option<HeadersWithUnderscoreAction>,
    /// Maximum requests per downstream connection.
    #[serde(
        alias = "max_requests_per_connection",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_requests_per_connection: Option<u32>,
    /// How to handle the `server` response header.
    #[serde(
        alias = "server_header_transformation",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub server_header_transformation: Option<ServerHeaderTransformation>,
    /// What to do with escaped slashes in paths.
    #[serde(
        alias = "path_with_escaped_slashes_action",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub path_with_escaped_slashes_action: Option<PathWithEscapedSlashesAction>,
    /// Codec to use for downstream connections.
    #[serde(alias = "codec_type", default, skip_serializing_if = "Option::is_none")]
    pub codec_type: Option<CodecType>,
    /// Merge adjacent slashes in paths.
    #[serde(
        alias = "merge_slashes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub merge_slashes: Option<bool>,
    /// Normalize paths (RFC 3986).
    #[serde(
        alias = "normalize_path",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub normalize_path: Option<bool>,
    /// How Envoy's UUID request ID extension treats `x-request-id`: the connection manager's
    /// `request_id_extension`, an `envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig`
    /// with these two settings as given (Envoy's defaults for those left unset), as Gloo's hcm
    /// plugin writes it.
    #[serde(
        alias = "uuid_request_id_config",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub uuid_request_id_config: Option<UuidRequestIdConfigSettings>,
    /// Downstream HTTP/2 settings (Envoy's `http2_protocol_options`).
    #[serde(
        alias = "http2_protocol_options",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub http2_protocol_options: Option<Http2ProtocolOptions>,
    /// Which addresses count as internal.
    #[serde(
        alias = "internal_address_config",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub internal_address_config: Option<InternalAddressConfig>,
    /// Append `x-forwarded-port`.
    #[serde(
        alias = "append_x_forwarded_port",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub append_x_forwarded_port: Option<bool>,
    /// Header manipulation before routing.
    #[serde(
        alias = "early_header_manipulation",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub early_header_manipulation: Option<EarlyHeaderManipulation>,
}

/// How to handle `x-forwarded-client-cert` (`ForwardClientCertDetails`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ForwardClientCertDetails {
    /// Remove the header.
    #[default]
    Sanitize,
    /// Forward it for mTLS connections only.
    ForwardOnly,
    /// Append the client cert for mTLS connections.
    AppendForward,
    /// Replace it with the client cert for mTLS connections.
    SanitizeSet,
    /// Always forward it.
    AlwaysForwardOnly,
}

impl ForwardClientCertDetails {
    /// Whether Envoy sets `x-forwarded-client-cert` from the client certificate in this mode
    /// (`APPEND_FORWARD` and `SANITIZE_SET`), the only modes in which
    /// `setCurrentClientCertDetails` means anything and Gloo's hcm plugin writes it.
    ///
    /// ```
    /// use gloo_core::model::listener_options::ForwardClientCertDetails;
    /// assert!(ForwardClientCertDetails::SanitizeSet.sets_client_cert_details());
    /// assert!(!ForwardClientCertDetails::Sanitize.sets_client_cert_details());
    /// ```
    pub fn sets_client_cert_details(self) -> bool {
        matches!(self, Self::AppendForward | Self::SanitizeSet)
    }
}

/// Which details of the client certificate Envoy puts in `x-forwarded-client-cert`
/// (`HttpConnectionManagerSettings.SetCurrentClientCertDetails`): each `true` adds that part
/// (`Subject=`, `Cert=`, `Chain=`, `DNS=`, `URI=`); `Hash=` is always there.
///
/// ```
/// use gloo_core::model::listener_options::SetCurrentClientCertDetails;
/// let details: SetCurrentClientCertDetails =
///     serde_yaml_ng::from_str("{subject: true, uri: true}").unwrap();
/// assert_eq!(details.subject, Some(true));
/// assert_eq!(details.cert, None);
/// // A misspelt member is a load error, not a detail quietly left out.
/// assert!(serde_yaml_ng::from_str::<SetCurrentClientCertDetails>("{subjects: true}").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetCurrentClientCertDetails {
    /// The certificate's subject (`Subject="..."`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<bool>,
    /// The whole certificate, URL-encoded PEM (`Cert="..."`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<bool>,
    /// The whole chain, URL-encoded PEM (`Chain="..."`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<bool>,
    /// The DNS subject alternative names (`DNS=...`, one per name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<bool>,
    /// The URI subject alternative name (`URI=...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<bool>,
}

/// Settings of Envoy's UUID request ID extension
/// (`HttpConnectionManagerSettings.UuidRequestIdConfigSettings`).
///
/// ```
/// use gloo_core::model::listener_options::UuidRequestIdConfigSettings;
/// let settings: UuidRequestIdConfigSettings =
///     serde_yaml_ng::from_str("{packTraceReason: false}").unwrap();
/// assert_eq!(settings.pack_trace_reason, Some(false));
/// assert_eq!(settings.use_request_id_for_trace_sampling, None);
/// // A misspelt member is a load error.
/// assert!(serde_yaml_ng::from_str::<UuidRequestIdConfigSettings>("{packTraceReasons: false}").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UuidRequestIdConfigSettings {
    /// Whether Envoy packs the trace sampling decision into the UUID (Envoy's default: true).
    /// Without it, stable sampling of traces and access logs by request ID no longer works.
    #[serde(
        alias = "pack_trace_reason",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub pack_trace_reason: Option<bool>,
    /// Whether Envoy samples traces by `x-request-id` (Envoy's default: true).
    #[serde(
        alias = "use_request_id_for_trace_sampling",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub use_request_id_for_trace_sampling: Option<bool>,
}

/// How to handle the `server` response header (`ServerHeaderTransformation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServerHeaderTransformation {
    /// Overwrite it with `serverName`.
    #[default]
    Overwrite,
    /// Set it only if absent.
    AppendIfAbsent,
    /// Pass it through unchanged.
    PassThrough,
}

/// What to do with headers containing underscores (`HeadersWithUnderscoreAction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HeadersWithUnderscoreAction {
    /// Allow them.
    #[default]
    Allow,
    /// Reject the request.
    RejectClientRequest,
    /// Drop the header.
    DropHeader,
}

/// What to do with escaped slashes in paths (`PathWithEscapedSlashesAction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PathWithEscapedSlashesAction {
    /// Envoy's default.
    #[default]
    ImplementationSpecificDefault,
    /// Keep them.
    KeepUnchanged,
    /// Reject the request.
    RejectRequest,
    /// Unescape and redirect.
    UnescapeAndRedirect,
    /// Unescape and forward.
    UnescapeAndForward,
}

/// Downstream codec (`CodecType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum CodecType {
    /// Detect HTTP/1 or HTTP/2.
    #[default]
    #[serde(rename = "AUTO")]
    Auto,
    /// HTTP/1 only.
    #[serde(rename = "HTTP1")]
    Http1,
    /// HTTP/2 only.
    #[serde(rename = "HTTP2")]
    Http2,
}

/// HTTP/2 settings (`protocol.options.gloo.solo.io.Http2ProtocolOptions`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Http2ProtocolOptions {
    /// Most concurrent streams a peer may open on one connection (1 to 2147483647).
    #[serde(
        alias = "max_concurrent_streams",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_concurrent_streams: Option<u32>,
    /// A stream's initial flow-control window, in bytes (65535 to 2147483647).
    #[serde(
        alias = "initial_stream_window_size",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub initial_stream_window_size: Option<u32>,
    /// A connection's initial flow-control window, in bytes (65535 to 2147483647).
    #[serde(
        alias = "initial_connection_window_size",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub initial_connection_window_size: Option<u32>,
    /// Reset only the stream, not the connection, on an invalid HTTP message.
    #[serde(
        alias = "override_stream_error_on_invalid_http_message",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub override_stream_error_on_invalid_http_message: Option<bool>,
}

impl Http2ProtocolOptions {
    /// What Gloo refuses (its `httpprotocolvalidation`): windows outside 65535 to
    /// 2147483647 bytes, and concurrent streams outside 1 to 2147483647.
    ///
    /// ```
    /// use gloo_core::model::listener_options::Http2ProtocolOptions;
    /// let options = Http2ProtocolOptions {
    ///     initial_stream_window_size: Some(1024),
    ///     ..Default::default()
    /// };
    /// assert_eq!(
    ///     options.problems(),
    ///     ["initialStreamWindowSize: 1024 is not between 65535 and 2147483647"]
    /// );
    /// ```
    pub fn problems(&self) -> Vec<String> {
        const MAX: u32 = 2_147_483_647;
        let mut problems = Vec::new();
        for (name, value) in [
            ("initialStreamWindowSize", self.initial_stream_window_size),
            (
                "initialConnectionWindowSize",
                self.initial_connection_window_size,
            ),
        ] {
            if let Some(v) = value.filter(|v| !(65_535..=MAX).contains(v)) {
                problems.push(format!("{name}: {v} is not between 65535 and {MAX}"));
            }
        }
        if let Some(v) = self
            .max_concurrent_streams
            .filter(|v| !(1..=MAX).contains(v))
        {
            problems.push(format!(
                "maxConcurrentStreams: {v} is not between 1 and {MAX}"
            ));
        }
        problems
    }
}

/// Which addresses count as internal (`InternalAddressConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InternalAddressConfig {
    /// Unix sockets are internal.
    #[serde(
        alias = "unix_sockets",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub unix_sockets: Option<bool>,
    /// These CIDR ranges are internal.
    #[serde(alias = "cidr_ranges", default, skip_serializing_if = "Vec::is_empty")]
    pub cidr_ranges: Vec<HcmCidrRange>,
}

/// A CIDR range (`HttpConnectionManagerSettings.CidrRange`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HcmCidrRange {
    /// Address prefix.
    #[serde(alias = "address_prefix", default)]
    pub address_prefix: String,
    /// Prefix length.
    #[serde(alias = "prefix_len", default, skip_serializing_if = "Option::is_none")]
    pub prefix_len: Option<u32>,
}

impl HcmCidrRange {
    /// Why Envoy would refuse the range, if it would: the prefix must be an IP address and the
    /// length fit it (32 bits for IPv4, 128 for IPv6).
    ///
    /// ```
    /// use gloo_core::model::listener_options::HcmCidrRange;
    /// let range = |prefix: &str, len| HcmCidrRange { address_prefix: prefix.into(), prefix_len: Some(len) };
    /// assert!(range("10.0.0.0", 8).validate().is_ok());
    /// assert!(range("10.0.0.0", 33).validate().is_err());
    /// assert!(range("not-an-ip", 8).validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), String> {
        let ip: std::net::IpAddr = self.address_prefix.parse().map_err(|_| {
            format!(
                "addressPrefix {:?} is not an IP address",
                self.address_prefix
            )
        })?;
        let bits = if ip.is_ipv4() { 32 } else { 128 };
        match self.prefix_len {
            Some(len) if len > bits => Err(format!(
                "prefixLen {len} is longer than the address ({bits} bits)"
            )),
            _ => Ok(()),
        }
    }
}

impl ListenerOptions {
    /// The options set here that gloo does not apply yet, by field name (for access logs, the
    /// path of each sink it does not translate, e.g.
    /// `accessLoggingService.accessLog[1].openTelemetryService`). None of them guards traffic,
    /// so the Gateway is served without them, with a warning on its status.
    pub fn unapplied(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .access_logging_service
            .iter()
            .flat_map(AccessLoggingService::unapplied)
            .map(|field| format!("accessLoggingService.{field}"))
            .collect();
        out.extend(
            crate::model::set_fields([
                (
                    "listenerAccessLoggingService",
                    self.listener_access_logging_service.is_some(),
                ),
                ("extensions", self.extensions.is_some()),
                (
                    "perConnectionBufferLimitBytes",
                    self.per_connection_buffer_limit_bytes.is_some(),
                ),
                ("socketOptions", !self.socket_options.is_empty()),
                ("proxyProtocol", self.proxy_protocol.is_some()),
                (
                    "connectionBalanceConfig",
                    self.connection_balance_config.is_some(),
                ),
                ("tcpStats", self.tcp_stats.is_some()),
            ])
            .into_iter()
            .map(String::from),
        );
        out
    }
}

impl HttpListenerOptions {
    /// The options set here that gloo does not enforce yet, by field name. Each guards the
    /// traffic of every route (data loss prevention, CSRF, external processing, Wasm filters,
    /// connection limits), so a Gateway that sets one is rejected rather than served without
    /// it.
    pub fn unenforced(&self) -> Vec<&'static str> {
        crate::model::set_fields([
            ("dlp", self.dlp.is_some()),
            ("csrf", self.csrf.is_some()),
            ("extProcEarly", self.ext_proc_early.is_some()),
            ("extProc", self.ext_proc.is_some()),
            ("extProcLate", self.ext_proc_late.is_some()),
            ("wasm", self.wasm.is_some()),
            ("connectionLimit", self.connection_limit.is_some()),
            (
                "networkLocalRatelimit",
                self.network_local_ratelimit.is_some(),
            ),
        ])
    }

    /// The options set here that gloo does not apply yet and that guard nothing: the Gateway
    /// is served without them, with a warning. (Every `httpConnectionManagerSettings` field is
    /// applied.)
    pub fn unapplied(&self) -> Vec<&'static str> {
        crate::model::set_fields([
            ("extensions", self.extensions.is_some()),
            ("caching", self.caching.is_some()),
            ("disableExtProcEarly", self.disable_ext_proc_early.is_some()),
            ("disableExtProc", self.disable_ext_proc.is_some()),
            ("disableExtProcLate", self.disable_ext_proc_late.is_some()),
            ("proxyLatency", self.proxy_latency.is_some()),
            ("grpcJsonTranscoder", self.grpc_json_transcoder.is_some()),
            (
                "sanitizeClusterHeader",
                self.sanitize_cluster_header.is_some(),
            ),
            ("leftmostXffAddress", self.leftmost_xff_address.is_some()),
            ("tap", self.tap.is_some()),
            ("statefulSession", self.stateful_session.is_some()),
        ])
    }
}

impl HttpConnectionManagerSettings {
    /// The `header_format` oneof: at most one of `properCaseHeaderKeyFormat` and
    /// `preserveCaseHeaderKeyFormat` (Gloo cannot read a Gateway setting both).
    ///
    /// ```
    /// use gloo_core::model::listener_options::HttpConnectionManagerSettings;
    /// let both = HttpConnectionManagerSettings {
    ///     proper_case_header_key_format: Some(true),
    ///     preserve_case_header_key_format: Some(false),
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

impl TcpListenerOptions {
    /// The options set here that gloo does not enforce yet (connection and rate limits): a
    /// Gateway that sets one is rejected rather than served without it.
    pub fn unenforced(&self) -> Vec<&'static str> {
        crate::model::set_fields([
            ("connectionLimit", self.connection_limit.is_some()),
            ("localRatelimit", self.local_ratelimit.is_some()),
        ])
    }

    /// The options set here that gloo does not apply yet: none (`tcpProxySettings` is
    /// translated in full; the connection and rate limits are [`Self::unenforced`]).
    pub fn unapplied(&self) -> Vec<&'static str> {
        Vec::new()
    }
}

impl RouteConfigurationOptions {
    /// The options set here that gloo does not apply yet.
    pub fn unapplied(&self) -> Vec<&'static str> {
        crate::model::set_fields([
            (
                "maxDirectResponseBodySizeBytes",
                self.max_direct_response_body_size_bytes.is_some(),
            ),
            (
                "mostSpecificHeaderMutationsWins",
                self.most_specific_header_mutations_wins.is_some(),
            ),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<S: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(s: &S) {
        let json = serde_json::to_string(s).unwrap();
        let back: S = serde_json::from_str(&json).unwrap();
        assert_eq!(s, &back);
    }

    // docs/content/guides/traffic_management/listener_configuration/http_connection_manager/_index.md
    // (`spec.httpGateway.options` of the reference Gateway). The docs write `1m2s`, which is
    // not a proto3 JSON duration, so those values are given in seconds here.
    const HTTP_OPTIONS: &str = r#"
httpConnectionManagerSettings:
  skipXffAppend: false
  via: reference-string
  xffNumTrustedHops: 1234
  useRemoteAddress: false
  generateRequestId: false
  proxy100Continue: false
  streamIdleTimeout: 62s
  idleTimeout: 62s
  maxRequestHeadersKb: 1234
  requestTimeout: 62s
  drainTimeout: 62s
  delayedCloseTimeout: 62s
  serverName: reference-string
  acceptHttp10: false
  defaultHostForHttp10: reference-string
"#;

    #[test]
    fn parses_hcm_docs_example_and_round_trips() {
        let o: HttpListenerOptions = serde_yaml_ng::from_str(HTTP_OPTIONS).unwrap();
        let hcm = o.http_connection_manager_settings.clone().unwrap();
        assert_eq!(hcm.xff_num_trusted_hops, Some(1234));
        assert_eq!(hcm.proxy_100_continue, Some(false));
        assert_eq!(hcm.accept_http_10, Some(false));
        assert_eq!(
            hcm.default_host_for_http_10.as_deref(),
            Some("reference-string")
        );
        assert_eq!(hcm.stream_idle_timeout, Some(Duration::from_secs(62)));
        round_trip(&o);
        let json = serde_json::to_value(&hcm).unwrap();
        assert!(json.get("proxy100Continue").is_some());
        assert!(json.get("acceptHttp10").is_some());
    }

    // docs/content/guides/traffic_management/listener_configuration/http_connection_manager/_index.md
    // (tracing with a zipkin collector upstream).
    #[test]
    fn parses_tracing_and_enums() {
        let o: HttpListenerOptions = serde_yaml_ng::from_str(
            r#"
httpConnectionManagerSettings:
  tracing:
    verbose: true
    requestHeadersForTags:
      - path
      - origin
    zipkinConfig:
      collectorEndpoint: /api/v2/spans
      collectorEndpointVersion: HTTP_JSON
      collectorUpstreamRef:
        name: zipkin
        namespace: default
  codecType: HTTP2
  forwardClientCertDetails: SANITIZE_SET
  serverHeaderTransformation: PASS_THROUGH
  headersWithUnderscoresAction: REJECT_CLIENT_REQUEST
  pathWithEscapedSlashesAction: UNESCAPE_AND_REDIRECT
  internalAddressConfig:
    cidrRanges:
    - addressPrefix: 10.0.0.0
      prefixLen: 8
healthCheck:
  path: /any-path-you-want
"#,
        )
        .unwrap();
        let hcm = o.http_connection_manager_settings.clone().unwrap();
        let tracing = hcm.tracing.as_ref().unwrap();
        assert_eq!(tracing.verbose, Some(true));
        assert_eq!(tracing.request_headers_for_tags, ["path", "origin"]);
        assert!(matches!(
            tracing.provider(),
            Ok(Some(crate::model::tracing::TracingProvider::Zipkin(_)))
        ));
        assert_eq!(hcm.codec_type, Some(CodecType::Http2));
        assert_eq!(
            hcm.forward_client_cert_details,
            Some(ForwardClientCertDetails::SanitizeSet)
        );
        assert_eq!(
            hcm.internal_address_config.clone().unwrap().cidr_ranges[0].prefix_len,
            Some(8)
        );
        round_trip(&o);
    }

    #[test]
    fn parses_listener_options() {
        // docs/content/guides/traffic_management/listener_configuration/hybrid_gateway.md
        let o: ListenerOptions = serde_yaml_ng::from_str(
            r#"
accessLoggingService:
  accessLog:
  - fileSink:
      path: /dev/shm/access_log.txt
      stringFormat: >
        [%START_TIME%] %REQUESTED_SERVER_NAME% %FILTER_STATE(io.solo.cipher_detection_info)%
perConnectionBufferLimitBytes: 10485760
connectionBalanceConfig:
  exactBalance: {}
"#,
        )
        .unwrap();
        assert_eq!(o.per_connection_buffer_limit_bytes, Some(10485760));
        assert!(o
            .connection_balance_config
            .as_ref()
            .unwrap()
            .exact_balance
            .is_some());
        round_trip(&o);
    }

    #[test]
    fn unknown_field_is_rejected() {
        let err = serde_yaml_ng::from_str::<HttpConnectionManagerSettings>("useRemoteAddr: true")
            .unwrap_err();
        assert!(err.to_string().contains("useRemoteAddr"), "{err}");
        let err = serde_yaml_ng::from_str::<ListenerOptions>("bogus: 1").unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }
}
