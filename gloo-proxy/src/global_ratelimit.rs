//! Envoy's rate limit filter (`envoy.filters.http.ratelimit`), served by gloo-filters'
//! [`GlobalRateLimitLayer`] asking the rate limit service over gRPC with its
//! [`RateLimitClient`], the call routed through this proxy's own cluster (HTTP/2 to one of its
//! endpoints), the one `rate_limit_service.grpc_service.envoy_grpc.cluster_name` names, as
//! Envoy routes it. gloo-core translates Gloo's `ratelimit`, `ratelimitEarly`,
//! `ratelimitRegular`, `ratelimitBasic` and `rateLimitConfigs` options into this filter (one per
//! stage) and the routes' and virtual hosts' `rate_limits`. Enabled by the `ratelimit`
//! feature (on by default).
//!
//! Built for each route ([`FilterFactory::per_route`]), as Envoy reads the route when a request
//! arrives:
//!
//! * Only routes that forward are checked (Envoy has rate limits on route actions only), and
//!   only when the cluster the request goes to exists (Envoy's filter does nothing without
//!   one). A weighted route's target is picked when the filter runs, as Envoy picks it when
//!   it matches the route, and the request goes to that target.
//! * The rate limits of the filter's `stage` are the route's, plus its virtual host's when the
//!   route says `include_vh_rate_limits` (or its `RateLimitPerRoute` says `INCLUDE`); by
//!   default (`OVERRIDE`) the virtual host's apply only to a route with no rate limits at all
//!   (of any stage); `IGNORE` never. A route with none gets no layer: no call.
//! * Descriptors come from the actions: `source_cluster` (this proxy's cluster,
//!   [`SOURCE_CLUSTER`]), `destination_cluster`, `request_headers` (with `skip_if_absent`),
//!   `remote_address` (the downstream connection's address, or the PROXY protocol's),
//!   `generic_key` and `header_value_match` (with the router's own header matchers, so every
//!   Envoy header matcher works), `metadata` with `source: ROUTE_ENTRY` (the matched route's
//!   `metadata`, Gloo's `envoyMetadata`), and `metadata` (`source: DYNAMIC`) and the deprecated
//!   `dynamic_metadata`, read from the request's dynamic metadata: the
//!   [`DynamicMetadata`](gloo_filters::metadata::DynamicMetadata) extension, where the JWT
//!   filter before this one puts a verified payload under its provider's
//!   `payload_in_metadata` (so limits can be keyed on a claim, as Gloo's guide on rate
//!   limiting by JWT claims does with `envoy.filters.http.jwt_authn` / `principal` / a claim),
//!   in order; an action that cannot produce its entry drops its descriptor. Requests
//!   without any descriptor are not checked.
//! * A rate limit's `limit` (`dynamic_metadata`): the descriptor's limit override, read from
//!   the same dynamic metadata (a struct with `requests_per_unit` and `unit`, as Envoy reads
//!   it, e.g. a JWT claim carrying a caller's own budget), sent to the rate limit service.
//! * The filter config: `domain` (or the per-route `domain`), `request_type`, `timeout`
//!   (Envoy's 20 ms by default, 0 for none), `failure_mode_deny` and `status_on_error`,
//!   `rate_limited_status`, `enable_x_ratelimit_headers: DRAFT_VERSION_03`,
//!   `disable_x_envoy_ratelimited_header`, `enable_retry_after_header`,
//!   `response_headers_to_add` (on refusals), and `filter_enabled` / `filter_enforced` at 0%
//!   or 100%.
//!
//! The clients are built once per filter config and shared by every route of the listener.
//! What is not implemented is refused, naming the field, so a listener never serves routes
//! without the limits it was given: the filter's own `rate_limits`, a partial
//! `filter_enabled` / `filter_enforced` / `failure_mode_deny_percent`,
//! `rate_limited_as_resource_exhausted`, a rate limit service that is not `envoy_grpc`;
//! per rate limit `apply_on_stream_done`, a `hits_addend` `format`, `x_ratelimit_option`; the actions
//! `query_parameters`, `masked_remote_address`, `query_parameter_value_match`, `remote_address_match` and
//! extensions; per route, its own
//! `rate_limits` and an `override_option`. `disable_key` is ignored, as by an Envoy without
//! runtime overrides.
//!
//! ```
//! use envoy_types::pb::envoy::extensions::filters::http::ratelimit::v3::RateLimit;
//! use envoy_types::pb::google::protobuf::Any;
//! use gloo_proxy::filter::FilterRegistry;
//! use gloo_proxy::global_ratelimit::RATELIMIT_TYPE;
//! use prost::Message;
//!
//! let registry = FilterRegistry::with_builtins();
//! let factory = registry.get(RATELIMIT_TYPE).expect("registered with the builtins");
//! // A filter without a rate limit service is refused, as Envoy requires one.
//! let config = RateLimit { domain: "custom".into(), ..Default::default() };
//! let config = Any { type_url: RATELIMIT_TYPE.into(), value: config.encode_to_vec() };
//! let refused = factory.layer(&config, None).err().expect("no service");
//! assert!(refused.contains("rate_limit_service"), "{refused}");
//! ```

use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::grpc_service;
use envoy_types::pb::envoy::config::route::v3::rate_limit::{action, Action as PbAction};
use envoy_types::pb::envoy::config::route::v3::RateLimit as PbRateLimit;
use envoy_types::pb::envoy::extensions::filters::http::ratelimit::v3::{
    rate_limit::XRateLimitHeadersRfcVersion, rate_limit_per_route, RateLimit as FilterConfig,
    RateLimitPerRoute,
};
use envoy_types::pb::google::protobuf::Any;
use gloo_filters::ratelimit::global::{
    DescriptorExtractor, GlobalRateLimitLayer, LimiterFailed, MetadataAction, RateLimit,
    RateLimitActions, RateLimitDescriptor, RateLimitPolicy, RequestType, Unit,
};
use gloo_filters::ratelimit::{RateLimited, RequestHead};
use gloo_filters::rls::RateLimitClient;
use http::{HeaderName, Request, Response, StatusCode};
use prost::Message;
use tower::{Layer, ServiceExt};

use crate::body::Body;
use crate::builtin::all_or_nothing;
use crate::filter::{
    BuiltConfigs, ClusterChannel, FilterFactory, FilterLayer, FilterRegistry, HttpService,
    RouteInfo, Upstreams,
};
use crate::proxy::{Downstream, LocalReply, PickedTarget, RouteContext};
use crate::router::action::pb_duration;
use crate::router::action::{Action, ClusterChoice, HeaderOps};
use crate::router::matcher::HeaderMatch;

/// Envoy's rate limit filter name.
pub const RATELIMIT: &str = "envoy.filters.http.ratelimit";
/// Its config type URL.
pub const RATELIMIT_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit";
/// Its per-route config type URL.
pub const RATELIMIT_PER_ROUTE_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimitPerRoute";
/// The value of Envoy's `source_cluster` action: the proxy's own cluster (Envoy's
/// `--service-cluster`), here the one Gloo's gateway proxies run with.
pub const SOURCE_CLUSTER: &str = "gateway";

pub(crate) fn register(registry: &mut FilterRegistry) {
    registry.register(
        RATELIMIT_TYPE,
        GlobalRateLimitFactory {
            upstreams: registry.upstreams().clone(),
            built: BuiltConfigs::new("rate limit"),
        },
    );
}

/// Builds [`GlobalRateLimitLayer`]s from `RateLimit` configs and the routes' `rate_limits`.
struct GlobalRateLimitFactory {
    upstreams: Upstreams,
    /// One client and settings per filter config (by its encoding).
    built: BuiltConfigs<Arc<Built>>,
}

/// A filter config, checked, with its client.
struct Built {
    domain: String,
    stage: u32,
    enabled: bool,
    enforced: bool,
    request_type: RequestType,
    failure_mode_deny: bool,
    status_on_error: StatusCode,
    rate_limited_status: StatusCode,
    x_ratelimit_headers: bool,
    x_envoy_ratelimited: bool,
    retry_after: bool,
    /// `response_headers_to_add`, for refusals.
    refusal_headers: Arc<HeaderOps>,
    client: RateLimitClient<ClusterChannel>,
}

impl FilterFactory for GlobalRateLimitFactory {
    fn layer(&self, config: &Any, _per_route: Option<&Any>) -> Result<Option<FilterLayer>, String> {
        // The listener's own layer: no route, nothing to limit (Envoy's filter does nothing
        // without a route); the config is checked.
        self.built(config)?;
        Ok(None)
    }

    fn per_route(&self) -> bool {
        true
    }

    fn route_layer(
        &self,
        config: &Any,
        per_route: Option<&Any>,
        info: RouteInfo<'_>,
    ) -> Result<Option<FilterLayer>, String> {
        let built = self.built(config)?;
        let per_route = per_route.map(decode_per_route).transpose()?;
        let Action::Forward(forward) = info.route.action() else {
            return Ok(None);
        };
        if !built.enabled {
            return Ok(None);
        }
        let vh = match &per_route {
            _ if forward.include_vh_rate_limits => VhRateLimits::Include,
            Some(p) => p.vh_rate_limits,
            None => VhRateLimits::Override,
        };
        let of_stage = |list: &[PbRateLimit]| -> Vec<PbRateLimit> {
            list.iter()
                .filter(|r| r.stage.as_ref().map_or(0, |s| s.value) == built.stage)
                .cloned()
                .collect()
        };
        let mut entries = of_stage(&forward.rate_limits);
        let include_vh = match vh {
            VhRateLimits::Include => true,
            // Envoy: the route's policy of any stage overrides the virtual host's.
            VhRateLimits::Override => forward.rate_limits.is_empty(),
            VhRateLimits::Ignore => false,
        };
        if include_vh {
            entries.extend(of_stage(info.virtual_host.rate_limits()));
        }
        if entries.is_empty() {
            return Ok(None);
        }
        let target = Arc::new(Target::of(&forward.clusters, info.target));
        let mut policy = RateLimitPolicy::new();
        for (i, entry) in entries.iter().enumerate() {
            policy = policy.rate_limit(
                actions_of(entry, &target).map_err(|e| format!("rate_limits[{i}].{e}"))?,
            );
        }
        let domain = per_route
            .as_ref()
            .and_then(|p| p.domain.clone())
            .unwrap_or_else(|| built.domain.clone());
        let layer = GlobalRateLimitLayer::new(
            built.client.clone(),
            domain,
            RouteDescriptors {
                policy,
                target: target.clone(),
            },
        )
        .request_type(built.request_type)
        .failure_mode_deny(built.failure_mode_deny)
        .status_on_error(built.status_on_error)
        .rate_limited_status(built.rate_limited_status)
        .x_ratelimit_headers(built.x_ratelimit_headers)
        .x_envoy_ratelimited(built.x_envoy_ratelimited)
        .retry_after(built.retry_after)
        .enforce(built.enforced);
        let refusal_headers = built.refusal_headers.clone();
        let weighted = matches!(target.as_ref(), Target::Weighted(_));
        Ok(Some(FilterLayer::from_fn(move |inner: HttpService| {
            let refusal_headers = refusal_headers.clone();
            let limited = layer
                .layer(inner)
                .map_response(move |r| local_replies(r, &refusal_headers));
            if weighted {
                HttpService::new(limited.map_request(pick_target))
            } else {
                HttpService::new(limited)
            }
        })))
    }
}

impl GlobalRateLimitFactory {
    /// The checked settings and client of `config`, built once.
    fn built(&self, config: &Any) -> Result<Arc<Built>, String> {
        if config.type_url != RATELIMIT_TYPE {
            return Err(format!(
                "expected {RATELIMIT_TYPE}, got {}",
                config.type_url
            ));
        }
        self.built.get_or_build(config, || {
            let decoded = FilterConfig::decode(config.value.as_slice())
                .map_err(|e| format!("cannot decode {}: {e}", config.type_url))?;
            self.build(decoded).map(Arc::new)
        })
    }

    fn build(&self, config: FilterConfig) -> Result<Built, String> {
        // What this filter does not implement is refused, never silently ignored.
        let unsupported = [
            ("rate_limits", !config.rate_limits.is_empty()),
            (
                "rate_limited_as_resource_exhausted",
                config.rate_limited_as_resource_exhausted,
            ),
        ];
        if let Some((field, _)) = unsupported.iter().find(|(_, set)| *set) {
            return Err(format!("{field} is not supported"));
        }
        if config.domain.is_empty() {
            return Err("domain: required".into());
        }
        if config.stage > 10 {
            return Err(format!("stage: {} is out of range (0 to 10)", config.stage));
        }
        let request_type = if config.request_type.is_empty() {
            RequestType::Both
        } else {
            RequestType::from_envoy(&config.request_type).ok_or_else(|| {
                format!(
                    "request_type: {:?} is not internal, external or both",
                    config.request_type
                )
            })?
        };
        let service = config
            .rate_limit_service
            .as_ref()
            .ok_or("rate_limit_service: required")?;
        let cluster =
            match service
                .grpc_service
                .as_ref()
                .and_then(|g| g.target_specifier.as_ref())
            {
                Some(grpc_service::TargetSpecifier::EnvoyGrpc(g)) if !g.cluster_name.is_empty() => {
                    g.cluster_name.clone()
                }
                Some(grpc_service::TargetSpecifier::EnvoyGrpc(_)) => {
                    return Err(
                        "rate_limit_service.grpc_service.envoy_grpc.cluster_name: required".into(),
                    )
                }
                Some(grpc_service::TargetSpecifier::GoogleGrpc(_)) => return Err(
                    "rate_limit_service.grpc_service.google_grpc: not supported (use envoy_grpc)"
                        .into(),
                ),
                None => return Err("rate_limit_service.grpc_service: required".into()),
            };
        // Envoy's default is 20 ms; 0 means no timeout.
        let timeout = config
            .timeout
            .as_ref()
            .map(pb_duration)
            .unwrap_or(gloo_filters::rls::DEFAULT_TIMEOUT);
        let x_ratelimit_headers =
            match XRateLimitHeadersRfcVersion::try_from(config.enable_x_ratelimit_headers) {
                Ok(XRateLimitHeadersRfcVersion::Off) => false,
                Ok(XRateLimitHeadersRfcVersion::DraftVersion03) => true,
                Err(_) => {
                    return Err(format!(
                        "enable_x_ratelimit_headers: unknown version {}",
                        config.enable_x_ratelimit_headers
                    ))
                }
            };
        let failure_mode_deny = match all_or_nothing(
            config.failure_mode_deny_percent.as_ref(),
            "failure_mode_deny_percent",
        )? {
            None => config.failure_mode_deny,
            Some(share) => share,
        };
        let rate_limited_status = match config.rate_limited_status.as_ref().map(|s| s.code) {
            None | Some(0) => StatusCode::TOO_MANY_REQUESTS,
            Some(code) => status(code, "rate_limited_status")?,
        };
        // Envoy: a status outside 100..=511 means 500.
        let status_on_error = match config.status_on_error.as_ref().map(|s| s.code) {
            None | Some(0) => StatusCode::INTERNAL_SERVER_ERROR,
            Some(code) if (100..=511).contains(&code) => status(code, "status_on_error")?,
            Some(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let refusal_headers = HeaderOps::compile(
            &[],
            &[],
            &config.response_headers_to_add,
            &[],
            "rate limit filter",
        )
        .map_err(|e| e.to_string())?;
        Ok(Built {
            domain: config.domain,
            stage: config.stage,
            enabled: all_or_nothing(config.filter_enabled.as_ref(), "filter_enabled")?
                .unwrap_or(true),
            enforced: all_or_nothing(config.filter_enforced.as_ref(), "filter_enforced")?
                .unwrap_or(true),
            request_type,
            failure_mode_deny,
            status_on_error,
            rate_limited_status,
            x_ratelimit_headers,
            x_envoy_ratelimited: !config.disable_x_envoy_ratelimited_header,
            retry_after: config.enable_retry_after_header,
            refusal_headers: Arc::new(refusal_headers),
            client: RateLimitClient::new(ClusterChannel::new(&self.upstreams, &cluster))
                .timeout(timeout),
        })
    }
}

/// A status code of the config.
fn status(code: i32, field: &str) -> Result<StatusCode, String> {
    u16::try_from(code)
        .ok()
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or_else(|| format!("{field}: invalid HTTP status {code}"))
}

/// Envoy's `vh_rate_limits`.
#[derive(Debug, Clone, Copy)]
enum VhRateLimits {
    Override,
    Include,
    Ignore,
}

/// A `RateLimitPerRoute`, checked.
struct PerRoute {
    vh_rate_limits: VhRateLimits,
    domain: Option<String>,
}

fn decode_per_route(any: &Any) -> Result<PerRoute, String> {
    if any.type_url != RATELIMIT_PER_ROUTE_TYPE {
        return Err(format!(
            "per-route config: expected {RATELIMIT_PER_ROUTE_TYPE}, got {}",
            any.type_url
        ));
    }
    let p = RateLimitPerRoute::decode(any.value.as_slice())
        .map_err(|e| format!("cannot decode {}: {e}", any.type_url))?;
    if !p.rate_limits.is_empty() {
        return Err("per-route config: rate_limits is not supported".into());
    }
    if p.override_option != rate_limit_per_route::OverrideOptions::Default as i32 {
        return Err("per-route config: override_option is not supported".into());
    }
    let vh_rate_limits = match rate_limit_per_route::VhRateLimitsOptions::try_from(p.vh_rate_limits)
    {
        Ok(rate_limit_per_route::VhRateLimitsOptions::Override) => VhRateLimits::Override,
        Ok(rate_limit_per_route::VhRateLimitsOptions::Include) => VhRateLimits::Include,
        Ok(rate_limit_per_route::VhRateLimitsOptions::Ignore) => VhRateLimits::Ignore,
        Err(_) => {
            return Err(format!(
                "per-route config: vh_rate_limits: unknown option {}",
                p.vh_rate_limits
            ))
        }
    };
    Ok(PerRoute {
        vh_rate_limits,
        domain: (!p.domain.is_empty()).then_some(p.domain),
    })
}

/// Where a route's requests go, as its rate limits see it.
#[derive(Debug)]
enum Target {
    /// One cluster.
    Single(Arc<str>),
    /// The weighted target picked for the request ([`PickedTarget`]).
    Weighted(Vec<Arc<str>>),
    /// The cluster a request header names.
    Header(HeaderName),
}

impl Target {
    /// The clusters of `choice`; `target`, when the layer is built for one weighted target.
    fn of(choice: &ClusterChoice, target: Option<usize>) -> Self {
        match choice {
            ClusterChoice::Single(c) => Target::Single(c.clone()),
            ClusterChoice::Weighted { targets, .. } => match target.and_then(|t| targets.get(t)) {
                Some(t) => Target::Single(t.cluster.clone()),
                None => Target::Weighted(targets.iter().map(|t| t.cluster.clone()).collect()),
            },
            ClusterChoice::Header(h) => Target::Header(h.clone()),
        }
    }

    /// The cluster `head` goes to, if known.
    fn cluster<'a>(&'a self, head: &RequestHead<'a>) -> Option<&'a str> {
        match self {
            Target::Single(c) => Some(c),
            Target::Weighted(clusters) => {
                let PickedTarget(i) = head.extensions().get::<PickedTarget>()?;
                clusters.get(*i).map(|c| c.as_ref())
            }
            Target::Header(h) => head.headers().get(h)?.to_str().ok(),
        }
    }
}

/// A weighted route's target, picked before the filter runs when no earlier filter did (as
/// Envoy picks it when it matches the route): the limits see it, and the request goes to it.
fn pick_target(mut req: Request<Body>) -> Request<Body> {
    if req.extensions().get::<PickedTarget>().is_some() {
        return req;
    }
    let picked =
        req.extensions()
            .get::<RouteContext>()
            .and_then(|ctx| match ctx.route().action() {
                Action::Forward(forward) => forward.clusters.pick_weighted(),
                _ => None,
            });
    if let Some(picked) = picked {
        req.extensions_mut().insert(PickedTarget(picked));
    }
    req
}

/// The route's descriptors, built only when the cluster its request goes to exists (Envoy's
/// filter does nothing without one).
struct RouteDescriptors {
    policy: RateLimitPolicy,
    target: Arc<Target>,
}

impl Clone for RouteDescriptors {
    fn clone(&self) -> Self {
        Self {
            policy: self.policy.clone(),
            target: self.target.clone(),
        }
    }
}

impl DescriptorExtractor for RouteDescriptors {
    fn extract<B>(&self, req: &Request<B>) -> Vec<RateLimitDescriptor> {
        let head = RequestHead::new(req);
        let Some(ctx) = req.extensions().get::<RouteContext>() else {
            return Vec::new();
        };
        match self.target.cluster(&head) {
            Some(cluster) if ctx.cluster(cluster).is_some() => self.policy.extract(req),
            _ => Vec::new(),
        }
    }
}

/// One Envoy `RateLimit` as gloo-filters' actions; the error names the field.
fn actions_of(entry: &PbRateLimit, target: &Arc<Target>) -> Result<RateLimitActions, String> {
    let unsupported = [
        ("apply_on_stream_done", entry.apply_on_stream_done),
        ("x_ratelimit_option", entry.x_ratelimit_option != 0),
    ];
    if let Some((field, _)) = unsupported.iter().find(|(_, set)| *set) {
        return Err(format!("{field}: not supported"));
    }
    let mut out = RateLimitActions::new();
    if let Some(hits) = &entry.hits_addend {
        use envoy_types::pb::envoy::config::route::v3::rate_limit::HitsAddend;
        let HitsAddend {
            number,
            format,
            is_negative_hits,
        } = hits;
        if !format.is_empty() {
            return Err("hits_addend.format: not supported".into());
        }
        if *is_negative_hits {
            return Err("hits_addend.is_negative_hits: not supported".into());
        }
        if let Some(n) = number {
            out = out.hits_addend(n.value);
        }
    }
    if let Some(limit) = &entry.limit {
        use envoy_types::pb::envoy::config::route::v3::rate_limit::r#override::OverrideSpecifier;
        match &limit.override_specifier {
            Some(OverrideSpecifier::DynamicMetadata(m)) => {
                let (namespace, path) =
                    metadata_key("limit.dynamic_metadata", m.metadata_key.as_ref())?;
                out = out.limit_from_metadata(namespace, path);
            }
            Some(OverrideSpecifier::RateLimit(fixed)) => {
                let unit = Unit::from_envoy_value(fixed.unit)
                    .ok_or_else(|| format!("limit.rate_limit.unit: unknown unit {}", fixed.unit))?;
                out = out.limit(RateLimit::new(fixed.requests_per_unit, unit));
            }
            None => return Err("limit.override_specifier: required".into()),
        }
    }
    if entry.actions.is_empty() {
        return Err("actions: at least one is required".into());
    }
    for (i, action) in entry.actions.iter().enumerate() {
        out = add_action(out, action, target).map_err(|e| format!("actions[{i}].{e}"))?;
    }
    Ok(out)
}

// `dynamic_metadata` is deprecated in Envoy, still named when refusing it.
#[allow(deprecated)]
fn add_action(
    out: RateLimitActions,
    action: &PbAction,
    target: &Arc<Target>,
) -> Result<RateLimitActions, String> {
    use action::ActionSpecifier as S;
    let or = |key: &str, default: &str| {
        if key.is_empty() {
            default.to_string()
        } else {
            key.to_string()
        }
    };
    Ok(match &action.action_specifier {
        Some(S::SourceCluster(_)) => out.generic_key_with("source_cluster", SOURCE_CLUSTER),
        Some(S::DestinationCluster(_)) => {
            let target = target.clone();
            out.entry_fn("destination_cluster", move |head| {
                target.cluster(head).map(str::to_string)
            })
        }
        Some(S::RequestHeaders(h)) => {
            if HeaderName::from_bytes(h.header_name.as_bytes()).is_err() {
                return Err(format!(
                    "request_headers.header_name: invalid header name {:?}",
                    h.header_name
                ));
            }
            if h.descriptor_key.is_empty() {
                return Err("request_headers.descriptor_key: required".into());
            }
            if h.skip_if_absent {
                out.request_header_skip_if_absent(h.header_name.clone(), h.descriptor_key.clone())
            } else {
                out.request_header(h.header_name.clone(), h.descriptor_key.clone())
            }
        }
        Some(S::RemoteAddress(_)) => out.entry_fn("remote_address", |head| {
            head.extensions()
                .get::<Downstream>()
                .map(|d| d.remote.ip().to_string())
        }),
        Some(S::GenericKey(g)) => {
            if g.descriptor_value.is_empty() {
                return Err("generic_key.descriptor_value: required".into());
            }
            out.generic_key_with(
                or(&g.descriptor_key, "generic_key"),
                g.descriptor_value.clone(),
            )
        }
        Some(S::HeaderValueMatch(m)) => {
            if m.descriptor_value.is_empty() {
                return Err("header_value_match.descriptor_value: required".into());
            }
            let headers = m
                .headers
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    HeaderMatch::compile(h, &format!("header_value_match.headers[{i}]"))
                        .map_err(|e| e.to_string())
                })
                .collect::<Result<Vec<_>, _>>()?;
            let expect_match = m.expect_match.as_ref().is_none_or(|b| b.value);
            let value = m.descriptor_value.clone();
            out.entry_fn(or(&m.descriptor_key, "header_match"), move |head| {
                (all_match(&headers, head) == expect_match).then(|| value.clone())
            })
        }
        Some(S::Metadata(m)) => {
            use action::meta_data::Source;
            let action = metadata_action(
                "metadata",
                &m.descriptor_key,
                m.metadata_key.as_ref(),
                &m.default_value,
            )?
            .skip_if_absent(m.skip_if_absent);
            out.metadata(match Source::try_from(m.source) {
                Ok(Source::Dynamic) => action,
                Ok(Source::RouteEntry) => action.route_entry(),
                Ok(other) => {
                    return Err(format!(
                        "metadata.source: {} is not supported",
                        other.as_str_name()
                    ))
                }
                Err(_) => return Err(format!("metadata.source: unknown source {}", m.source)),
            })
        }
        Some(S::DynamicMetadata(m)) => out.metadata(metadata_action(
            "dynamic_metadata",
            &m.descriptor_key,
            m.metadata_key.as_ref(),
            &m.default_value,
        )?),
        Some(other) => {
            let name = match other {
                S::QueryParameters(_) => "query_parameters",
                S::MaskedRemoteAddress(_) => "masked_remote_address",
                S::Extension(_) => "extension",
                S::QueryParameterValueMatch(_) => "query_parameter_value_match",
                S::RemoteAddressMatch(_) => "remote_address_match",
                _ => "this action",
            };
            return Err(format!("{name}: not supported"));
        }
        None => return Err("action_specifier: required".into()),
    })
}

/// Envoy's `metadata` / `dynamic_metadata` action reading the request's dynamic metadata (what
/// the JWT filter's `payload_in_metadata` writes); the error names the field under `field`.
fn metadata_action(
    field: &str,
    descriptor_key: &str,
    key: Option<&envoy_types::pb::envoy::r#type::metadata::v3::MetadataKey>,
    default_value: &str,
) -> Result<MetadataAction, String> {
    if descriptor_key.is_empty() {
        return Err(format!("{field}.descriptor_key: required"));
    }
    let (namespace, path) = metadata_key(field, key)?;
    Ok(MetadataAction::new(descriptor_key, namespace)
        .path(path)
        .default_value(default_value))
}

/// A `MetadataKey`'s namespace and path of keys (at least one); the error names the field
/// under `field`.
fn metadata_key(
    field: &str,
    key: Option<&envoy_types::pb::envoy::r#type::metadata::v3::MetadataKey>,
) -> Result<(String, Vec<String>), String> {
    use envoy_types::pb::envoy::r#type::metadata::v3::metadata_key::path_segment::Segment;
    let key = key.ok_or_else(|| format!("{field}.metadata_key: required"))?;
    if key.key.is_empty() {
        return Err(format!("{field}.metadata_key.key: required"));
    }
    let path = key
        .path
        .iter()
        .enumerate()
        .map(|(i, p)| match &p.segment {
            Some(Segment::Key(k)) if !k.is_empty() => Ok(k.clone()),
            _ => Err(format!("{field}.metadata_key.path[{i}].key: required")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if path.is_empty() {
        return Err(format!(
            "{field}.metadata_key.path: at least one key is required"
        ));
    }
    Ok((key.key.clone(), path))
}

/// Whether every header condition holds, on the request as the router saw it (its
/// normalised path, its authority, pseudo-headers included), as Envoy's `matchHeaders`.
fn all_match(headers: &[HeaderMatch], head: &RequestHead<'_>) -> bool {
    crate::proxy::headers_match(
        headers,
        head.method(),
        head.uri(),
        head.headers(),
        head.extensions(),
    )
}

/// Refusals and fail-closed answers are local replies (they get the route's response
/// headers, like every other); refusals also get the filter's `response_headers_to_add`.
fn local_replies(mut response: Response<Body>, refusal_headers: &HeaderOps) -> Response<Body> {
    use crate::access_log::{ResponseFlags, StreamFacts};
    if response.extensions().get::<RateLimited>().is_some() {
        refusal_headers.apply_response(response.headers_mut(), None);
        response.extensions_mut().insert(LocalReply);
        response = StreamFacts::flag(response, ResponseFlags::RATE_LIMITED);
    } else if response.extensions().get::<LimiterFailed>().is_some() {
        response.extensions_mut().insert(LocalReply);
        response = StreamFacts::flag(response, ResponseFlags::RATE_LIMIT_SERVICE_ERROR);
    }
    response
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::config::core::v3::{GrpcService, RuntimeFractionalPercent};
    use envoy_types::pb::envoy::config::ratelimit::v3::RateLimitServiceConfig;
    use envoy_types::pb::envoy::config::route::v3::rate_limit::action::{
        GenericKey, QueryParameters,
    };
    use envoy_types::pb::envoy::config::route::v3::rate_limit::Override;
    use envoy_types::pb::envoy::config::route::v3::{
        route, route_action, DirectResponseAction, Route, RouteAction, RouteConfiguration,
        RouteMatch, VirtualHost,
    };
    use envoy_types::pb::google::protobuf::{BoolValue, UInt32Value};

    use super::*;
    use crate::router::RouteTable;

    fn filter(stage: u32) -> FilterConfig {
        FilterConfig {
            domain: "custom".into(),
            stage,
            rate_limit_service: Some(RateLimitServiceConfig {
                grpc_service: Some(GrpcService {
                    target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(
                        grpc_service::EnvoyGrpc {
                            cluster_name: "rls".into(),
                            ..Default::default()
                        },
                    )),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn any(config: &FilterConfig) -> Any {
        Any {
            type_url: RATELIMIT_TYPE.into(),
            value: config.encode_to_vec(),
        }
    }

    fn factory() -> GlobalRateLimitFactory {
        GlobalRateLimitFactory {
            upstreams: Upstreams::default(),
            built: BuiltConfigs::new("rate limit"),
        }
    }

    fn generic(value: &str, stage: u32) -> PbRateLimit {
        PbRateLimit {
            stage: Some(UInt32Value { value: stage }),
            actions: vec![PbAction {
                action_specifier: Some(action::ActionSpecifier::GenericKey(GenericKey {
                    descriptor_value: value.into(),
                    ..Default::default()
                })),
            }],
            ..Default::default()
        }
    }

    // `include_vh_rate_limits` is deprecated in Envoy; Gloo still writes it.
    #[allow(deprecated)]
    fn forward(rate_limits: Vec<PbRateLimit>, include_vh: bool) -> route::Action {
        let include_vh_rate_limits = include_vh.then_some(BoolValue { value: true });
        route::Action::Route(RouteAction {
            cluster_specifier: Some(route_action::ClusterSpecifier::Cluster("app".into())),
            rate_limits,
            include_vh_rate_limits,
            ..Default::default()
        })
    }

    /// One virtual host with `vh_limits` and one route per action.
    fn table(vh_limits: Vec<PbRateLimit>, actions: Vec<route::Action>) -> RouteTable {
        let config = RouteConfiguration {
            name: "rc".into(),
            virtual_hosts: vec![VirtualHost {
                name: "vh".into(),
                domains: vec!["*".into()],
                rate_limits: vh_limits,
                routes: actions
                    .into_iter()
                    .enumerate()
                    .map(|(i, action)| Route {
                        name: format!("r{i}"),
                        r#match: Some(RouteMatch {
                            path_specifier: Some(
                                envoy_types::pb::envoy::config::route::v3::route_match::PathSpecifier::Prefix(
                                    format!("/{i}"),
                                ),
                            ),
                            ..Default::default()
                        }),
                        action: Some(action),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        RouteTable::compile(&config).expect("valid route table")
    }

    /// Whether route `r` of `table` gets a layer from `config` (with `per_route`).
    fn layered(
        config: &FilterConfig,
        table: &RouteTable,
        r: usize,
        per_route: Option<&Any>,
    ) -> Result<bool, String> {
        let vhost = &table.virtual_hosts()[0];
        let info = RouteInfo {
            virtual_host: vhost,
            route: &vhost.routes()[r],
            target: None,
        };
        factory()
            .route_layer(&any(config), per_route, info)
            .map(|l| l.is_some())
    }

    fn per_route(p: RateLimitPerRoute) -> Any {
        Any {
            type_url: RATELIMIT_PER_ROUTE_TYPE.into(),
            value: p.encode_to_vec(),
        }
    }

    #[test]
    fn routes_get_the_rate_limits_of_the_filters_stage_as_envoy_picks_them() {
        let t = table(
            vec![generic("vh", 1)],
            vec![
                // 0: own limits of stage 1.
                forward(vec![generic("route", 1)], false),
                // 1: own limits of stage 3 only: they override the virtual host's anyway.
                forward(vec![generic("route", 3)], false),
                // 2: none of its own: the virtual host's.
                forward(vec![], false),
                // 3: stage 3 of its own, and the virtual host's included.
                forward(vec![generic("route", 3)], true),
                // 4: a direct response: never limited.
                route::Action::DirectResponse(DirectResponseAction {
                    status: 200,
                    ..Default::default()
                }),
            ],
        );
        let stage1 = filter(1);
        assert_eq!(layered(&stage1, &t, 0, None), Ok(true));
        assert_eq!(layered(&stage1, &t, 1, None), Ok(false));
        assert_eq!(layered(&stage1, &t, 2, None), Ok(true));
        assert_eq!(layered(&stage1, &t, 3, None), Ok(true));
        assert_eq!(layered(&stage1, &t, 4, None), Ok(false));
        assert_eq!(layered(&filter(3), &t, 1, None), Ok(true));
        assert_eq!(layered(&filter(2), &t, 0, None), Ok(false));
        // `vh_rate_limits` of the per-route config.
        let ignore = per_route(RateLimitPerRoute {
            vh_rate_limits: rate_limit_per_route::VhRateLimitsOptions::Ignore as i32,
            ..Default::default()
        });
        assert_eq!(layered(&stage1, &t, 2, Some(&ignore)), Ok(false));
        let include = per_route(RateLimitPerRoute {
            vh_rate_limits: rate_limit_per_route::VhRateLimitsOptions::Include as i32,
            ..Default::default()
        });
        assert_eq!(layered(&stage1, &t, 1, Some(&include)), Ok(true));
        // A filter turned off (0%) limits nothing.
        let mut off = filter(1);
        off.filter_enabled = Some(RuntimeFractionalPercent {
            default_value: Some(envoy_types::pb::envoy::r#type::v3::FractionalPercent {
                numerator: 0,
                denominator: 0,
            }),
            ..Default::default()
        });
        assert_eq!(layered(&off, &t, 0, None), Ok(false));
    }

    #[test]
    fn what_is_not_implemented_is_refused_naming_the_field() {
        let t = |limits: Vec<PbRateLimit>| table(vec![], vec![forward(limits, false)]);
        let refused = |config: &FilterConfig, table: &RouteTable| {
            layered(config, table, 0, None).expect_err("refused")
        };
        let mut with_limit = generic("x", 0);
        with_limit.limit = Some(Override::default());
        assert_eq!(
            refused(&filter(0), &t(vec![with_limit])),
            "rate_limits[0].limit.override_specifier: required"
        );
        let query = PbRateLimit {
            actions: vec![PbAction {
                action_specifier: Some(action::ActionSpecifier::QueryParameters(
                    QueryParameters::default(),
                )),
            }],
            ..Default::default()
        };
        assert_eq!(
            refused(&filter(0), &t(vec![query])),
            "rate_limits[0].actions[0].query_parameters: not supported"
        );
        // A `metadata` action reads dynamic metadata only, with a key and a path.
        let metadata = |source: action::meta_data::Source, path: &[&str]| {
            PbRateLimit {
            actions: vec![PbAction {
                action_specifier: Some(action::ActionSpecifier::Metadata(action::MetaData {
                    descriptor_key: "org".into(),
                    metadata_key: Some(envoy_types::pb::envoy::r#type::metadata::v3::MetadataKey {
                        key: "envoy.filters.http.jwt_authn".into(),
                        path: path
                            .iter()
                            .map(|k| envoy_types::pb::envoy::r#type::metadata::v3::metadata_key::PathSegment {
                                segment: Some(envoy_types::pb::envoy::r#type::metadata::v3::metadata_key::path_segment::Segment::Key(k.to_string())),
                            })
                            .collect(),
                    }),
                    source: source as i32,
                    ..Default::default()
                })),
            }],
            ..Default::default()
        }
        };
        use action::meta_data::Source;
        assert!(layered(
            &filter(0),
            &t(vec![metadata(Source::Dynamic, &["principal", "org"])]),
            0,
            None
        )
        .is_ok());
        assert!(layered(
            &filter(0),
            &t(vec![metadata(Source::RouteEntry, &["org"])]),
            0,
            None
        )
        .is_ok());
        assert_eq!(
            refused(&filter(0), &t(vec![metadata(Source::Dynamic, &[])])),
            "rate_limits[0].actions[0].metadata.metadata_key.path: at least one key is required"
        );
        let mut own_limits = filter(0);
        own_limits.rate_limits = vec![generic("x", 0)];
        assert_eq!(
            refused(&own_limits, &t(vec![])),
            "rate_limits is not supported"
        );
        let mut request_type = filter(0);
        request_type.request_type = "sometimes".into();
        assert!(refused(&request_type, &t(vec![])).starts_with("request_type"));
        let mut half = filter(0);
        half.filter_enforced = Some(RuntimeFractionalPercent {
            default_value: Some(envoy_types::pb::envoy::r#type::v3::FractionalPercent {
                numerator: 50,
                denominator: 0,
            }),
            ..Default::default()
        });
        assert!(refused(&half, &t(vec![])).starts_with("filter_enforced: 50%"));
        let own_per_route = per_route(RateLimitPerRoute {
            rate_limits: vec![generic("x", 0)],
            ..Default::default()
        });
        assert_eq!(
            layered(
                &filter(0),
                &t(vec![generic("x", 0)]),
                0,
                Some(&own_per_route)
            ),
            Err("per-route config: rate_limits is not supported".to_string())
        );
    }
}
