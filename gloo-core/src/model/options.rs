//! Virtual host, route and weighted destination options: Gloo's
//! `gloo/api/v1/virtual_host_options.proto`, `route_options.proto`,
//! `weighted_destination_options.proto`, and the `VirtualHostOption` / `RouteOption` resources
//! of `gateway/api/v1/external_options.proto` (with skv2's `PolicyTargetReference`s).
//!
//! [`RouteOptions::merge_from`] and [`VirtualHostOptions::merge_from`] implement Gloo's shallow
//! option merge (`ShallowMergeRouteOptions`): a field the child leaves unset is taken from the
//! parent; a oneof is one field (if the child sets any member, none of the parent's is taken).
//!
//! A route that takes shared options from a `RouteOption` resource, merged the way Gloo merges
//! them:
//!
//! ```
//! use gloo_core::load::{parse_str, Format};
//! use gloo_core::model::options::HostRewrite;
//! use gloo_core::model::{Duration, Resource};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//!
//! let yaml = r#"
//! apiVersion: gateway.solo.io/v1
//! kind: RouteOption
//! metadata:
//!   name: slow-backends
//!   namespace: gloo-system
//! spec:
//!   options:
//!     timeout: 30s
//!     hostRewrite: reports.internal
//!     retries:
//!       retryOn: 5xx
//!       numRetries: 2
//! ---
//! apiVersion: gateway.solo.io/v1
//! kind: VirtualService
//! metadata:
//!   name: reports
//!   namespace: gloo-system
//! spec:
//!   virtualHost:
//!     domains:
//!     - '*'
//!     routes:
//!     - matchers:
//!       - prefix: /reports
//!       routeAction:
//!         single:
//!           upstream:
//!             name: reports
//!             namespace: gloo-system
//!       options:
//!         timeout: 90s
//!         autoHostRewrite: true
//!       optionsConfigRefs:
//!         delegateOptions:
//!         - name: slow-backends
//!           namespace: gloo-system
//! "#;
//! let parsed = parse_str(yaml, "reports.yaml", Format::Yaml);
//! assert!(parsed.is_ok(), "{:?}", parsed.errors);
//! let Resource::RouteOption(shared) = &parsed.resources[0].resource else {
//!     panic!("expected a RouteOption");
//! };
//! let Resource::VirtualService(vs) = &parsed.resources[1].resource else {
//!     panic!("expected a VirtualService");
//! };
//! let route = &vs.spec.virtual_host.as_ref().ok_or("no virtualHost")?.routes[0];
//!
//! // What the route sets wins; what it leaves unset comes from the RouteOption.
//! let mut options = route.options.as_deref().cloned().unwrap_or_default();
//! options.merge_from(&shared.spec.options);
//! assert_eq!(options.timeout, Some(Duration::from_secs(90)));
//! assert_eq!(options.retries.as_ref().and_then(|r| r.num_retries), Some(2));
//! // A oneof merges as one field: the route's `autoHostRewrite` keeps out `hostRewrite`.
//! assert_eq!(options.host_rewrite()?, Some(HostRewrite::Auto(true)));
//! assert_eq!(options.host_rewrite, None);
//! options.check_oneofs()?;
//! assert!(options.unenforced().is_empty());
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::cors::{CorsPolicy, CorsPolicyMergeSettings};
use crate::model::extauth::ExtAuthExtension;
use crate::model::faults::RouteFaults;
use crate::model::headers::HeaderManipulation;
use crate::model::http_filters::BufferPerRoute;
use crate::model::jwt::{
    JwtStagedRouteExtension, JwtStagedRouteProvidersExtension, JwtStagedVhostExtension,
    RouteExtension, VhostExtension,
};
use crate::model::ratelimit::{
    IngressRateLimit, RateLimitConfigRefs, RateLimitRouteExtension, RateLimitVhostExtension,
};
use crate::model::retries::RetryPolicy;
use crate::model::routing::{OneofError, RegexMatchAndSubstitute};
use crate::model::shadowing::RouteShadowing;
use crate::model::transformation::{TransformationStages, Transformations};
use crate::model::Duration;

/// Options for a virtual host (`gloo.solo.io.VirtualHostOptions`), applying to all its routes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualHostOptions {
    /// Deprecated plugin extensions. Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<serde_json::Value>,
    /// Retry policy for all routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<Box<RetryPolicy>>,
    /// Virtual clusters for stats. Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<serde_json::Value>,
    /// Request/response header manipulation.
    #[serde(
        alias = "header_manipulation",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub header_manipulation: Option<Box<HeaderManipulation>>,
    /// CORS policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Box<CorsPolicy>>,
    /// Deprecated: transformations (use `stagedTransformations`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transformations: Option<Box<Transformations>>,
    /// Basic (per-authorized-user / anonymous) rate limits.
    #[serde(
        alias = "ratelimit_basic",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ratelimit_basic: Option<Box<IngressRateLimit>>,
    /// `rate_limit_early_config_type` oneof: early-stage rate limit actions.
    #[serde(
        alias = "ratelimit_early",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ratelimit_early: Option<Box<RateLimitVhostExtension>>,
    /// `rate_limit_early_config_type` oneof: early-stage `RateLimitConfig` references.
    #[serde(
        alias = "rate_limit_early_configs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub rate_limit_early_configs: Option<RateLimitConfigRefs>,
    /// `rate_limit_config_type` oneof: rate limit actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratelimit: Option<Box<RateLimitVhostExtension>>,
    /// `rate_limit_config_type` oneof: `RateLimitConfig` references.
    #[serde(
        alias = "rate_limit_configs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub rate_limit_configs: Option<RateLimitConfigRefs>,
    /// `rate_limit_regular_config_type` oneof: regular-stage rate limit actions.
    #[serde(
        alias = "ratelimit_regular",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ratelimit_regular: Option<Box<RateLimitVhostExtension>>,
    /// `rate_limit_regular_config_type` oneof: regular-stage `RateLimitConfig` references.
    #[serde(
        alias = "rate_limit_regular_configs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub rate_limit_regular_configs: Option<RateLimitConfigRefs>,
    /// Web application firewall settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waf: Option<Box<crate::model::waf::Settings>>,
    /// `jwt_config` oneof: deprecated JWT settings (use `jwtStaged`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<Box<VhostExtension>>,
    /// `jwt_config` oneof: JWT settings per filter stage.
    #[serde(alias = "jwt_staged", default, skip_serializing_if = "Option::is_none")]
    pub jwt_staged: Option<Box<JwtStagedVhostExtension>>,
    /// RBAC settings. Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rbac: Option<serde_json::Value>,
    /// External authorization settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extauth: Option<Box<ExtAuthExtension>>,
    /// Data loss prevention settings. Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dlp: Option<serde_json::Value>,
    /// Buffer filter settings for all routes of the virtual host (the buffer turned off or
    /// another limit); in force only on Gateways that set `buffer`.
    #[serde(
        alias = "buffer_per_route",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub buffer_per_route: Option<BufferPerRoute>,
    /// CSRF policy. Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csrf: Option<serde_json::Value>,
    /// Add the `x-envoy-attempt-count` header to upstream requests.
    #[serde(
        alias = "include_request_attempt_count",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub include_request_attempt_count: Option<bool>,
    /// Add the `x-envoy-attempt-count` header to downstream responses.
    #[serde(
        alias = "include_attempt_count_in_response",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub include_attempt_count_in_response: Option<bool>,
    /// Transformations per filter stage.
    #[serde(
        alias = "staged_transformations",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub staged_transformations: Option<Box<TransformationStages>>,
    /// Early-stage external processing overrides. Accepted and carried; not interpreted yet.
    #[serde(
        alias = "ext_proc_early",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ext_proc_early: Option<serde_json::Value>,
    /// External processing overrides. Accepted and carried; not interpreted yet.
    #[serde(alias = "ext_proc", default, skip_serializing_if = "Option::is_none")]
    pub ext_proc: Option<serde_json::Value>,
    /// Late-stage external processing overrides. Accepted and carried; not interpreted yet.
    #[serde(
        alias = "ext_proc_late",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ext_proc_late: Option<serde_json::Value>,
    /// How route-level CORS policies merge with this virtual host's.
    #[serde(
        alias = "cors_policy_merge_settings",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cors_policy_merge_settings: Option<CorsPolicyMergeSettings>,
}

/// Options for a route (`gloo.solo.io.RouteOptions`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteOptions {
    /// Deprecated: transformations (use `stagedTransformations`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transformations: Option<Box<Transformations>>,
    /// Fault injection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<RouteFaults>,
    /// Replace the matched path prefix with this value.
    #[serde(
        alias = "prefix_rewrite",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub prefix_rewrite: Option<String>,
    /// Upstream request timeout (default 15s; 0s disables it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Retry policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<Box<RetryPolicy>>,
    /// Deprecated plugin extensions. Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<serde_json::Value>,
    /// Tracing of the route's requests: the route's `decorator` (span name) and `tracing`
    /// (sampling), as Gloo's tracing plugin writes them (boxed: few routes set it). They take
    /// effect on a listener with tracing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<Box<crate::model::tracing::RouteTracingSettings>>,
    /// Traffic shadowing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadowing: Option<Box<RouteShadowing>>,
    /// Request/response header manipulation.
    #[serde(
        alias = "header_manipulation",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub header_manipulation: Option<Box<HeaderManipulation>>,
    /// `host_rewrite_type` oneof: rewrite the Host header to this value.
    #[serde(
        alias = "host_rewrite",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub host_rewrite: Option<String>,
    /// `host_rewrite_type` oneof: rewrite the Host header to the upstream's hostname.
    #[serde(
        alias = "auto_host_rewrite",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub auto_host_rewrite: Option<bool>,
    /// `host_rewrite_type` oneof: rewrite the Host header with a regex over the path.
    #[serde(
        alias = "host_rewrite_path_regex",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub host_rewrite_path_regex: Option<RegexMatchAndSubstitute>,
    /// `host_rewrite_type` oneof: rewrite the Host header to this request header's value.
    #[serde(
        alias = "host_rewrite_header",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub host_rewrite_header: Option<String>,
    /// Append the original Host to `x-forwarded-host` when rewriting it.
    #[serde(
        alias = "append_x_forwarded_host",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub append_x_forwarded_host: Option<bool>,
    /// CORS policy (overrides or merges with the virtual host's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Box<CorsPolicy>>,
    /// Hash policies for consistent-hash load balancing (`ringHash` / `maglev` upstreams).
    #[serde(alias = "lb_hash", default, skip_serializing_if = "Option::is_none")]
    pub lb_hash: Option<crate::model::lbhash::RouteActionHashConfig>,
    /// Protocol upgrades (e.g. websocket). Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upgrades: Vec<serde_json::Value>,
    /// Basic (per-authorized-user / anonymous) rate limits.
    #[serde(
        alias = "ratelimit_basic",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ratelimit_basic: Option<Box<IngressRateLimit>>,
    /// `rate_limit_early_config_type` oneof: early-stage rate limit actions.
    #[serde(
        alias = "ratelimit_early",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ratelimit_early: Option<Box<RateLimitRouteExtension>>,
    /// `rate_limit_early_config_type` oneof: early-stage `RateLimitConfig` references.
    #[serde(
        alias = "rate_limit_early_configs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub rate_limit_early_configs: Option<RateLimitConfigRefs>,
    /// `rate_limit_config_type` oneof: rate limit actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratelimit: Option<Box<RateLimitRouteExtension>>,
    /// `rate_limit_config_type` oneof: `RateLimitConfig` references.
    #[serde(
        alias = "rate_limit_configs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub rate_limit_configs: Option<RateLimitConfigRefs>,
    /// `rate_limit_regular_config_type` oneof: regular-stage rate limit actions.
    #[serde(
        alias = "ratelimit_regular",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ratelimit_regular: Option<Box<RateLimitRouteExtension>>,
    /// `rate_limit_regular_config_type` oneof: regular-stage `RateLimitConfig` references.
    #[serde(
        alias = "rate_limit_regular_configs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub rate_limit_regular_configs: Option<RateLimitConfigRefs>,
    /// Web application firewall settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waf: Option<Box<crate::model::waf::Settings>>,
    /// `jwt_config` oneof: deprecated JWT settings (use `jwtStaged`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<Box<RouteExtension>>,
    /// `jwt_config` oneof: JWT settings per filter stage.
    #[serde(alias = "jwt_staged", default, skip_serializing_if = "Option::is_none")]
    pub jwt_staged: Option<Box<JwtStagedRouteExtension>>,
    /// `jwt_config` oneof: this route's own JWT providers, per filter stage.
    #[serde(
        alias = "jwt_providers_staged",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub jwt_providers_staged: Option<Box<JwtStagedRouteProvidersExtension>>,
    /// RBAC settings. Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rbac: Option<serde_json::Value>,
    /// External authorization settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extauth: Option<Box<ExtAuthExtension>>,
    /// Data loss prevention settings. Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dlp: Option<serde_json::Value>,
    /// Buffer filter settings for the route (the buffer turned off or another limit); in
    /// force only on Gateways that set `buffer`.
    #[serde(
        alias = "buffer_per_route",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub buffer_per_route: Option<BufferPerRoute>,
    /// CSRF policy. Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csrf: Option<serde_json::Value>,
    /// Transformations per filter stage.
    #[serde(
        alias = "staged_transformations",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub staged_transformations: Option<Box<TransformationStages>>,
    /// Envoy route metadata (`Route.metadata.filter_metadata`): a struct per filter name, for
    /// filters that read the route's metadata (a rate limit `metadata` action with `source:
    /// ROUTE_ENTRY`, an ext auth or Lua filter).
    #[serde(
        alias = "envoy_metadata",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub envoy_metadata: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
    /// Rewrite the path with a regex substitution.
    #[serde(
        alias = "regex_rewrite",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub regex_rewrite: Option<RegexMatchAndSubstitute>,
    /// Maximum stream duration settings.
    #[serde(
        alias = "max_stream_duration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_stream_duration: Option<Box<MaxStreamDuration>>,
    /// Route idle timeout (overrides the connection manager's stream idle timeout).
    #[serde(
        alias = "idle_timeout",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub idle_timeout: Option<Duration>,
    /// Early-stage external processing overrides. Accepted and carried; not interpreted yet.
    #[serde(
        alias = "ext_proc_early",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ext_proc_early: Option<serde_json::Value>,
    /// External processing overrides. Accepted and carried; not interpreted yet.
    #[serde(alias = "ext_proc", default, skip_serializing_if = "Option::is_none")]
    pub ext_proc: Option<serde_json::Value>,
    /// Late-stage external processing overrides. Accepted and carried; not interpreted yet.
    #[serde(
        alias = "ext_proc_late",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ext_proc_late: Option<serde_json::Value>,
    /// AI gateway settings. Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai: Option<serde_json::Value>,
}

/// Maximum stream duration of a route (`RouteOptions.MaxStreamDuration`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MaxStreamDuration {
    /// Maximum duration of a stream on this route.
    #[serde(
        alias = "max_stream_duration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_stream_duration: Option<Duration>,
    /// Cap on the `grpc-timeout` header's value.
    #[serde(
        alias = "grpc_timeout_header_max",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub grpc_timeout_header_max: Option<Duration>,
    /// Offset subtracted from the `grpc-timeout` header's value.
    #[serde(
        alias = "grpc_timeout_header_offset",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub grpc_timeout_header_offset: Option<Duration>,
}

/// Options for traffic to one weighted destination (`gloo.solo.io.WeightedDestinationOptions`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WeightedDestinationOptions {
    /// Request/response header manipulation.
    #[serde(
        alias = "header_manipulation",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub header_manipulation: Option<HeaderManipulation>,
    /// Deprecated: transformations (use `stagedTransformations`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transformations: Option<Transformations>,
    /// Deprecated plugin extensions. Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<serde_json::Value>,
    /// External authorization settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extauth: Option<ExtAuthExtension>,
    /// Buffer filter settings for traffic to this destination (the buffer turned off or
    /// another limit); in force only on Gateways that set `buffer`.
    #[serde(
        alias = "buffer_per_route",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub buffer_per_route: Option<BufferPerRoute>,
    /// CSRF policy. Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csrf: Option<serde_json::Value>,
    /// Transformations per filter stage.
    #[serde(
        alias = "staged_transformations",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub staged_transformations: Option<TransformationStages>,
}

/// The `VirtualHostOption` resource: virtual host options that virtual services delegate to
/// (`gateway.solo.io.VirtualHostOption`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualHostOptionSpec {
    /// The options.
    #[serde(default)]
    pub options: VirtualHostOptions,
    /// Kubernetes Gateway API attachment targets (carried; gloo uses `optionsConfigRefs`).
    #[serde(alias = "target_refs", default, skip_serializing_if = "Vec::is_empty")]
    pub target_refs: Vec<PolicyTargetReferenceWithSectionName>,
}

/// The `RouteOption` resource: route options that routes delegate to
/// (`gateway.solo.io.RouteOption`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteOptionSpec {
    /// The options.
    #[serde(default)]
    pub options: RouteOptions,
    /// Kubernetes Gateway API attachment targets (carried; gloo uses `optionsConfigRefs`).
    #[serde(alias = "target_refs", default, skip_serializing_if = "Vec::is_empty")]
    pub target_refs: Vec<PolicyTargetReference>,
}

/// A policy attachment target (`core.skv2.solo.io.PolicyTargetReference`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyTargetReference {
    /// API group of the target.
    #[serde(default)]
    pub group: String,
    /// Kind of the target.
    #[serde(default)]
    pub kind: String,
    /// Name of the target.
    #[serde(default)]
    pub name: String,
    /// Namespace of the target (defaults to the policy's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A policy attachment target with an optional section (listener) name
/// (`core.skv2.solo.io.PolicyTargetReferenceWithSectionName`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyTargetReferenceWithSectionName {
    /// API group of the target.
    #[serde(default)]
    pub group: String,
    /// Kind of the target.
    #[serde(default)]
    pub kind: String,
    /// Name of the target.
    #[serde(default)]
    pub name: String,
    /// Namespace of the target (defaults to the policy's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Section (e.g. listener) of the target.
    #[serde(
        alias = "section_name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub section_name: Option<String>,
}

/// How a route rewrites the Host header (the `host_rewrite_type` oneof).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostRewrite<'a> {
    /// A literal host.
    Literal(&'a str),
    /// The upstream's hostname (when `true`).
    Auto(bool),
    /// A regex substitution over the path.
    PathRegex(&'a RegexMatchAndSubstitute),
    /// The value of a request header.
    Header(&'a str),
}

/// The options a virtual host and a route can both set that gloo does not enforce yet, by
/// field name (the body of both `unenforced` methods: the two option types name these fields
/// alike).
macro_rules! unenforced_options {
    ($options:expr) => {{
        let o = $options;
        crate::model::set_fields([
            ("rbac", o.rbac.is_some()),
            ("dlp", o.dlp.is_some()),
            ("csrf", o.csrf.is_some()),
            ("extProcEarly", o.ext_proc_early.is_some()),
            ("extProc", o.ext_proc.is_some()),
            ("extProcLate", o.ext_proc_late.is_some()),
            // Gloo Enterprise's post-routing stage (an upstream filter) is not translated.
            (
                "stagedTransformations.postRouting",
                o.staged_transformations
                    .as_ref()
                    .is_some_and(|s| s.post_routing.is_some()),
            ),
        ])
    }};
}

/// The local token buckets of each rate limit stage (the body of both `local_ratelimit`
/// methods: the two option types name these fields alike).
macro_rules! local_ratelimit_stages {
    ($options:expr) => {{
        let o = $options;
        crate::model::ratelimit::LocalRateLimitStages {
            ratelimit: o
                .ratelimit
                .as_ref()
                .and_then(|r| r.local_ratelimit.as_ref()),
            early: o
                .ratelimit_early
                .as_ref()
                .and_then(|r| r.local_ratelimit.as_ref()),
            regular: o
                .ratelimit_regular
                .as_ref()
                .and_then(|r| r.local_ratelimit.as_ref()),
        }
    }};
}

impl RouteOptions {
    /// The options set here that gloo does not enforce yet, by field name. A route that sets
    /// one is rejected rather than served without it: a route must never be served open
    /// because an auth, WAF or rate-limit option was quietly dropped (Gloo's open-source
    /// edition rejects enterprise options the same way).
    pub fn unenforced(&self) -> Vec<&'static str> {
        unenforced_options!(self)
    }

    /// The local rate limit token buckets set in each rate limit stage.
    pub fn local_ratelimit(&self) -> crate::model::ratelimit::LocalRateLimitStages<'_> {
        local_ratelimit_stages!(self)
    }

    /// The `host_rewrite_type` oneof.
    pub fn host_rewrite(&self) -> Result<Option<HostRewrite<'_>>, OneofError> {
        OneofError::check(
            "host_rewrite_type",
            &[
                ("hostRewrite", self.host_rewrite.is_some()),
                ("autoHostRewrite", self.auto_host_rewrite.is_some()),
                (
                    "hostRewritePathRegex",
                    self.host_rewrite_path_regex.is_some(),
                ),
                ("hostRewriteHeader", self.host_rewrite_header.is_some()),
            ],
        )?;
        Ok(if let Some(h) = &self.host_rewrite {
            Some(HostRewrite::Literal(h))
        } else if let Some(a) = self.auto_host_rewrite {
            Some(HostRewrite::Auto(a))
        } else if let Some(r) = &self.host_rewrite_path_regex {
            Some(HostRewrite::PathRegex(r))
        } else {
            self.host_rewrite_header.as_deref().map(HostRewrite::Header)
        })
    }

    /// Checks every oneof of these options (host rewrite, rate limit stages, JWT).
    pub fn check_oneofs(&self) -> Result<(), OneofError> {
        self.host_rewrite()?;
        OneofError::check(
            "rate_limit_early_config_type",
            &[
                ("ratelimitEarly", self.ratelimit_early.is_some()),
                (
                    "rateLimitEarlyConfigs",
                    self.rate_limit_early_configs.is_some(),
                ),
            ],
        )?;
        OneofError::check(
            "rate_limit_config_type",
            &[
                ("ratelimit", self.ratelimit.is_some()),
                ("rateLimitConfigs", self.rate_limit_configs.is_some()),
            ],
        )?;
        OneofError::check(
            "rate_limit_regular_config_type",
            &[
                ("ratelimitRegular", self.ratelimit_regular.is_some()),
                (
                    "rateLimitRegularConfigs",
                    self.rate_limit_regular_configs.is_some(),
                ),
            ],
        )?;
        OneofError::check(
            "jwt_config",
            &[
                ("jwt", self.jwt.is_some()),
                ("jwtStaged", self.jwt_staged.is_some()),
                ("jwtProvidersStaged", self.jwt_providers_staged.is_some()),
            ],
        )
    }

    /// Gloo's shallow merge: every field (or oneof) unset here is taken from `parent`; fields
    /// set here win. Used for delegation (parent route → child route) and option resources.
    pub fn merge_from(&mut self, parent: &RouteOptions) {
        // Exhaustive destructuring: adding a field without merging it fails to compile.
        let RouteOptions {
            transformations,
            faults,
            prefix_rewrite,
            timeout,
            retries,
            extensions,
            tracing,
            shadowing,
            header_manipulation,
            host_rewrite,
            auto_host_rewrite,
            host_rewrite_path_regex,
            host_rewrite_header,
            append_x_forwarded_host,
            cors,
            lb_hash,
            upgrades,
            ratelimit_basic,
            ratelimit_early,
            rate_limit_early_configs,
            ratelimit,
            rate_limit_configs,
            ratelimit_regular,
            rate_limit_regular_configs,
            waf,
            jwt,
            jwt_staged,
            jwt_providers_staged,
            rbac,
            extauth,
            dlp,
            buffer_per_route,
            csrf,
            staged_transformations,
            envoy_metadata,
            regex_rewrite,
            max_stream_duration,
            idle_timeout,
            ext_proc_early,
            ext_proc,
            ext_proc_late,
            ai,
        } = self;
        let p = parent;
        take(transformations, &p.transformations);
        take(faults, &p.faults);
        take(prefix_rewrite, &p.prefix_rewrite);
        take(timeout, &p.timeout);
        take(retries, &p.retries);
        take(extensions, &p.extensions);
        take(tracing, &p.tracing);
        take(shadowing, &p.shadowing);
        take(header_manipulation, &p.header_manipulation);
        if host_rewrite.is_none()
            && auto_host_rewrite.is_none()
            && host_rewrite_path_regex.is_none()
            && host_rewrite_header.is_none()
        {
            take(host_rewrite, &p.host_rewrite);
            take(auto_host_rewrite, &p.auto_host_rewrite);
            take(host_rewrite_path_regex, &p.host_rewrite_path_regex);
            take(host_rewrite_header, &p.host_rewrite_header);
        }
        take(append_x_forwarded_host, &p.append_x_forwarded_host);
        take(cors, &p.cors);
        take(lb_hash, &p.lb_hash);
        take(upgrades, &p.upgrades);
        take(ratelimit_basic, &p.ratelimit_basic);
        take_pair(
            ratelimit_early,
            rate_limit_early_configs,
            &p.ratelimit_early,
            &p.rate_limit_early_configs,
        );
        take_pair(
            ratelimit,
            rate_limit_configs,
            &p.ratelimit,
            &p.rate_limit_configs,
        );
        take_pair(
            ratelimit_regular,
            rate_limit_regular_configs,
            &p.ratelimit_regular,
            &p.rate_limit_regular_configs,
        );
        take(waf, &p.waf);
        if jwt.is_none() && jwt_staged.is_none() && jwt_providers_staged.is_none() {
            take(jwt, &p.jwt);
            take(jwt_staged, &p.jwt_staged);
            take(jwt_providers_staged, &p.jwt_providers_staged);
        }
        take(rbac, &p.rbac);
        take(extauth, &p.extauth);
        take(dlp, &p.dlp);
        take(buffer_per_route, &p.buffer_per_route);
        take(csrf, &p.csrf);
        take(staged_transformations, &p.staged_transformations);
        take(envoy_metadata, &p.envoy_metadata);
        take(regex_rewrite, &p.regex_rewrite);
        take(max_stream_duration, &p.max_stream_duration);
        take(idle_timeout, &p.idle_timeout);
        take(ext_proc_early, &p.ext_proc_early);
        take(ext_proc, &p.ext_proc);
        take(ext_proc_late, &p.ext_proc_late);
        take(ai, &p.ai);
    }
}

impl VirtualHostOptions {
    /// The options set here that gloo does not enforce yet, by field name. A virtual host that sets
    /// one is rejected rather than served without it: a route must never be served open
    /// because an auth, WAF or rate-limit option was quietly dropped (Gloo's open-source
    /// edition rejects enterprise options the same way).
    pub fn unenforced(&self) -> Vec<&'static str> {
        unenforced_options!(self)
    }

    /// The local rate limit token buckets set in each rate limit stage.
    pub fn local_ratelimit(&self) -> crate::model::ratelimit::LocalRateLimitStages<'_> {
        local_ratelimit_stages!(self)
    }

    /// Checks every oneof of these options (rate limit stages, JWT).
    pub fn check_oneofs(&self) -> Result<(), OneofError> {
        OneofError::check(
            "rate_limit_early_config_type",
            &[
                ("ratelimitEarly", self.ratelimit_early.is_some()),
                (
                    "rateLimitEarlyConfigs",
                    self.rate_limit_early_configs.is_some(),
                ),
            ],
        )?;
        OneofError::check(
            "rate_limit_config_type",
            &[
                ("ratelimit", self.ratelimit.is_some()),
                ("rateLimitConfigs", self.rate_limit_configs.is_some()),
            ],
        )?;
        OneofError::check(
            "rate_limit_regular_config_type",
            &[
                ("ratelimitRegular", self.ratelimit_regular.is_some()),
                (
                    "rateLimitRegularConfigs",
                    self.rate_limit_regular_configs.is_some(),
                ),
            ],
        )?;
        OneofError::check(
            "jwt_config",
            &[
                ("jwt", self.jwt.is_some()),
                ("jwtStaged", self.jwt_staged.is_some()),
            ],
        )
    }

    /// Gloo's shallow merge: every field (or oneof) unset here is taken from `parent`; fields
    /// set here win. Used to apply delegated `VirtualHostOption` resources.
    pub fn merge_from(&mut self, parent: &VirtualHostOptions) {
        let VirtualHostOptions {
            extensions,
            retries,
            stats,
            header_manipulation,
            cors,
            transformations,
            ratelimit_basic,
            ratelimit_early,
            rate_limit_early_configs,
            ratelimit,
            rate_limit_configs,
            ratelimit_regular,
            rate_limit_regular_configs,
            waf,
            jwt,
            jwt_staged,
            rbac,
            extauth,
            dlp,
            buffer_per_route,
            csrf,
            include_request_attempt_count,
            include_attempt_count_in_response,
            staged_transformations,
            ext_proc_early,
            ext_proc,
            ext_proc_late,
            cors_policy_merge_settings,
        } = self;
        let p = parent;
        take(extensions, &p.extensions);
        take(retries, &p.retries);
        take(stats, &p.stats);
        take(header_manipulation, &p.header_manipulation);
        take(cors, &p.cors);
        take(transformations, &p.transformations);
        take(ratelimit_basic, &p.ratelimit_basic);
        take_pair(
            ratelimit_early,
            rate_limit_early_configs,
            &p.ratelimit_early,
            &p.rate_limit_early_configs,
        );
        take_pair(
            ratelimit,
            rate_limit_configs,
            &p.ratelimit,
            &p.rate_limit_configs,
        );
        take_pair(
            ratelimit_regular,
            rate_limit_regular_configs,
            &p.ratelimit_regular,
            &p.rate_limit_regular_configs,
        );
        take_pair(jwt, jwt_staged, &p.jwt, &p.jwt_staged);
        take(waf, &p.waf);
        take(rbac, &p.rbac);
        take(extauth, &p.extauth);
        take(dlp, &p.dlp);
        take(buffer_per_route, &p.buffer_per_route);
        take(csrf, &p.csrf);
        take(
            include_request_attempt_count,
            &p.include_request_attempt_count,
        );
        take(
            include_attempt_count_in_response,
            &p.include_attempt_count_in_response,
        );
        take(staged_transformations, &p.staged_transformations);
        take(ext_proc_early, &p.ext_proc_early);
        take(ext_proc, &p.ext_proc);
        take(ext_proc_late, &p.ext_proc_late);
        take(cors_policy_merge_settings, &p.cors_policy_merge_settings);
    }
}

/// A field that can be unset, as Go's `isEmptyValue` sees a proto field (nil pointer, empty
/// list or map).
trait Unset {
    fn is_unset(&self) -> bool;
}

impl<T> Unset for Option<T> {
    fn is_unset(&self) -> bool {
        self.is_none()
    }
}

impl<T> Unset for Vec<T> {
    fn is_unset(&self) -> bool {
        self.is_empty()
    }
}

impl<K, V> Unset for BTreeMap<K, V> {
    fn is_unset(&self) -> bool {
        self.is_empty()
    }
}

/// Takes `parent`'s value when `child` is unset.
fn take<T: Unset + Clone>(child: &mut T, parent: &T) {
    if child.is_unset() && !parent.is_unset() {
        *child = parent.clone();
    }
}

/// Takes a two-member oneof from the parent when the child sets neither member.
fn take_pair<A: Clone, B: Clone>(
    child_a: &mut Option<A>,
    child_b: &mut Option<B>,
    parent_a: &Option<A>,
    parent_b: &Option<B>,
) {
    if child_a.is_none() && child_b.is_none() {
        child_a.clone_from(parent_a);
        child_b.clone_from(parent_b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::headers::HeaderManipulation;

    fn spec<S: serde::de::DeserializeOwned>(doc: &str) -> S {
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(doc).unwrap();
        serde_yaml_ng::from_value(v["spec"].clone()).unwrap()
    }

    fn round_trip<S: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(s: &S) {
        let json = serde_json::to_string(s).unwrap();
        let back: S = serde_json::from_str(&json).unwrap();
        assert_eq!(s, &back);
    }

    // gateway/api/v1/external_options.proto (also docs/content/reference/api/.../external_options.proto.sk.md)
    const VHOST_OPTION: &str = r#"
apiVersion: gateway.solo.io/v1
kind: VirtualHostOption
metadata:
  name: virtualhost-external-options-1
  namespace: opt-namespace
spec:
  options:
    headerManipulation:
      requestHeadersToRemove: ["header-from-external-options1"]
    cors:
      exposeHeaders:
        - header-from-extopt1
      allowOrigin:
        - 'https://solo.io'
"#;

    const ROUTE_OPTION: &str = r#"
apiVersion: gateway.solo.io/v1
kind: RouteOption
metadata:
  name: route-external-options-1
  namespace: opt-namespace
spec:
  options:
    headerManipulation:
      requestHeadersToRemove: ["header-from-external-options1"]
    cors:
      exposeHeaders:
        - header-from-extopt1
      allowOrigin:
        - 'https://solo.io'
"#;

    #[test]
    fn parses_option_resources_and_round_trips() {
        let vh: VirtualHostOptionSpec = spec(VHOST_OPTION);
        let hm = vh.options.header_manipulation.clone().unwrap();
        assert_eq!(
            hm.request_headers_to_remove,
            vec!["header-from-external-options1"]
        );
        assert_eq!(
            vh.options.cors.clone().unwrap().allow_origin,
            vec!["https://solo.io"]
        );
        round_trip(&vh);

        let rt: RouteOptionSpec = spec(ROUTE_OPTION);
        assert_eq!(
            rt.options.cors.clone().unwrap().expose_headers,
            vec!["header-from-extopt1"]
        );
        round_trip(&rt);
    }

    #[test]
    fn parses_target_refs() {
        let rt: RouteOptionSpec = serde_yaml_ng::from_str(
            "options:\n  timeout: 5s\ntargetRefs:\n- group: gateway.networking.k8s.io\n  kind: HTTPRoute\n  name: example-route",
        )
        .unwrap();
        assert_eq!(rt.target_refs[0].kind, "HTTPRoute");
        assert_eq!(rt.options.timeout, Some(Duration::from_secs(5)));
    }

    #[test]
    fn route_options_merge_child_wins() {
        // The external_options.proto example: route-level options override delegated ones.
        let mut child: RouteOptions = serde_yaml_ng::from_str(
            "headerManipulation:\n  requestHeadersToRemove: [header-from-route]\nprefixRewrite: /child\nautoHostRewrite: false",
        )
        .unwrap();
        let parent: RouteOptions = serde_yaml_ng::from_str(
            r#"
headerManipulation:
  requestHeadersToRemove: [header-from-external-options1]
cors:
  exposeHeaders: [header-from-extopt1]
  allowOrigin: ['https://solo.io']
timeout: 20s
hostRewrite: parent.example.com
retries:
  retryOn: connect-failure
  numRetries: 3
envoyMetadata:
  io.solo.test: {a: b}
"#,
        )
        .unwrap();
        child.merge_from(&parent);
        assert_eq!(
            child.header_manipulation,
            Some(Box::new(HeaderManipulation {
                request_headers_to_remove: vec!["header-from-route".into()],
                ..Default::default()
            }))
        );
        assert_eq!(child.prefix_rewrite.as_deref(), Some("/child"));
        assert_eq!(child.timeout, Some(Duration::from_secs(20)));
        assert_eq!(child.cors, parent.cors);
        assert_eq!(child.retries, parent.retries);
        assert_eq!(child.envoy_metadata, parent.envoy_metadata);
        // The host rewrite oneof is one field: the child's `autoHostRewrite: false` is set, so
        // the parent's `hostRewrite` is not taken.
        assert_eq!(child.host_rewrite, None);
        assert_eq!(
            child.host_rewrite().unwrap(),
            Some(HostRewrite::Auto(false))
        );
        child.check_oneofs().unwrap();
    }

    #[test]
    fn route_options_merge_into_empty_copies_parent() {
        let parent: RouteOptions = serde_yaml_ng::from_str(
            "prefixRewrite: /\nhostRewrite: a.example.com\nidleTimeout: 1s",
        )
        .unwrap();
        let mut child = RouteOptions::default();
        child.merge_from(&parent);
        assert_eq!(child, parent);
        // Merging an empty parent changes nothing.
        let before = child.clone();
        child.merge_from(&RouteOptions::default());
        assert_eq!(child, before);
    }

    #[test]
    fn virtual_host_options_merge_child_wins() {
        let mut vh: VirtualHostOptions = serde_yaml_ng::from_str(
            "headerManipulation:\n  requestHeadersToRemove: [header-from-vhost]",
        )
        .unwrap();
        let opt1: VirtualHostOptionSpec = spec(VHOST_OPTION);
        let opt2: VirtualHostOptions = serde_yaml_ng::from_str(
            "cors:\n  exposeHeaders: [header-from-extopt2]\n  maxAge: 2s\nincludeRequestAttemptCount: true",
        )
        .unwrap();
        // Delegated options are applied in order: earlier ones win over later ones.
        vh.merge_from(&opt1.options);
        vh.merge_from(&opt2);
        assert_eq!(
            vh.header_manipulation.unwrap().request_headers_to_remove,
            vec!["header-from-vhost"]
        );
        let cors = vh.cors.unwrap();
        assert_eq!(cors.expose_headers, vec!["header-from-extopt1"]);
        assert_eq!(cors.max_age, "");
        assert_eq!(vh.include_request_attempt_count, Some(true));
    }

    #[test]
    fn host_rewrite_oneof_conflict() {
        let o: RouteOptions =
            serde_yaml_ng::from_str("hostRewrite: a\nautoHostRewrite: true").unwrap();
        let err = o.host_rewrite().unwrap_err();
        assert_eq!(
            err.to_string(),
            "only one of hostRewrite, autoHostRewrite may be set, found both (oneof `host_rewrite_type`)"
        );
        assert!(o.check_oneofs().is_err());
    }

    #[test]
    fn unknown_field_is_rejected() {
        let err = serde_yaml_ng::from_str::<RouteOptions>("prefixRewrites: /").unwrap_err();
        assert!(err.to_string().contains("prefixRewrites"), "{err}");
        let err = serde_yaml_ng::from_str::<VirtualHostOptionSpec>("option: {}").unwrap_err();
        assert!(err.to_string().contains("option"), "{err}");
    }
}
