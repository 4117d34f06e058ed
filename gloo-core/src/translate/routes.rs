//! Virtual hosts and routes: Gloo matchers, actions and route options as Envoy's
//! `envoy.config.route.v3` messages.

use std::collections::HashMap;

use envoy_types::pb::envoy::config::core::v3::{data_source, DataSource, RuntimeFractionalPercent};
use envoy_types::pb::envoy::config::core::v3::{
    header_value_option::HeaderAppendAction, HeaderValue, HeaderValueOption, Metadata,
};
use envoy_types::pb::envoy::config::route::v3::{
    header_matcher::HeaderMatchSpecifier, query_parameter_matcher::QueryParameterMatchSpecifier,
    redirect_action, retry_policy::RetryBackOff, route, route_action, route_match,
    weighted_cluster::ClusterWeight, DirectResponseAction, HeaderMatcher, QueryParameterMatcher,
    RedirectAction, RetryPolicy, Route, RouteAction, RouteMatch, VirtualHost, WeightedCluster,
};
use envoy_types::pb::envoy::extensions::filters::common::fault::v3::{fault_delay, FaultDelay};
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::CorsPolicy;
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::{
    fault_abort, FaultAbort, HttpFault,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{
    regex_matcher, string_matcher::MatchPattern, RegexMatchAndSubstitute, RegexMatcher,
    StringMatcher,
};
use envoy_types::pb::envoy::r#type::v3::{fractional_percent::DenominatorType, FractionalPercent};
use envoy_types::pb::google::protobuf::{BoolValue, Duration as PbDuration, UInt32Value};

use super::extauth::ListenerAuth;
use super::http_filters;
use super::local_ratelimit::{self, ListenerFlags};
use super::names::{cluster_name, CORS_FILTER, FAULT_FILTER, LOCAL_RATELIMIT_FILTER};
use super::transformation;
use super::waf::WafScope;
use super::Context;
use crate::model::headers::HeaderManipulation;
use crate::model::options::{RouteOptions, VirtualHostOptions};
use crate::model::routing::{
    self as gloo, Destination, DestinationTarget, Matcher, PathMatcher, RedirectPath,
    RedirectResponseCode, RouteDestination, WeightedDestination,
};
use crate::model::Duration;
use crate::resolve::{RouteModel, RouteModelAction, VirtualHostModel};
use crate::xds::pack;

pub(crate) fn duration(d: &Duration) -> PbDuration {
    PbDuration {
        seconds: d.seconds,
        nanos: d.nanos,
    }
}

fn regex(pattern: &str) -> RegexMatcher {
    RegexMatcher {
        regex: pattern.to_string(),
        #[allow(deprecated)]
        engine_type: None::<regex_matcher::EngineType>,
    }
}

fn string_match(pattern: MatchPattern) -> StringMatcher {
    StringMatcher {
        match_pattern: Some(pattern),
        ignore_case: false,
    }
}

/// One Envoy virtual host from a resolved VirtualService, on a listener whose
/// `httpLocalRatelimit` has these `flags`, whose gateway WAF is in force or not
/// (`gateway_waf`), and whose dynamic forward proxy routes go to the generated cluster
/// `forward_proxy` (`None` when the gateway has no dynamic forward proxy).
pub(crate) fn virtual_host(
    vh: &VirtualHostModel,
    flags: ListenerFlags,
    auth: &ListenerAuth,
    gateway_waf: bool,
    forward_proxy: Option<&str>,
    ctx: &Context<'_>,
) -> VirtualHost {
    let options = &vh.options;
    // `headerSecretRef`s without a namespace name a Secret beside the VirtualService.
    let secrets = HeaderSecrets {
        ctx,
        namespace: vh.source.namespace_or(crate::model::DEFAULT_NAMESPACE),
        auth,
        forward_proxy,
    };
    let waf = WafScope::of(ctx.snapshot, vh, gateway_waf);
    let mut out = VirtualHost {
        name: vh.name.clone(),
        domains: vh.domains.clone(),
        routes: vh
            .routes
            .iter()
            .map(|r| route(r, flags, waf, &secrets))
            .collect(),
        ..Default::default()
    };
    apply_vhost_options(&mut out, options, &secrets);
    out.rate_limits = super::ratelimit::host_rate_limits(vh, ctx.snapshot);
    super::jwt::host_per_filter(vh, &mut out.typed_per_filter_config);
    super::extauth::host_per_filter(vh, auth, &mut out.typed_per_filter_config);
    out.typed_per_filter_config
        .extend(transformation::per_filter_config(
            transformation::Options::host(options),
            ctx.transformation,
        ));
    out.typed_per_filter_config.extend(waf.host(vh));
    out.typed_per_filter_config
        .extend(http_filters::buffer_per_route(
            options.buffer_per_route.as_ref(),
        ));
    if let Some(bucket) = options.local_ratelimit().bucket() {
        out.typed_per_filter_config.insert(
            LOCAL_RATELIMIT_FILTER.to_string(),
            pack(&local_ratelimit::config(flags, Some(bucket))),
        );
    }
    out
}

/// Where `headerSecretRef`s are resolved: the snapshot's Secrets, with a default namespace;
/// and what the virtual host's routes need to know of their listener: its ext_authz filter,
/// and the generated cluster of its dynamic forward proxy.
struct HeaderSecrets<'a> {
    ctx: &'a Context<'a>,
    namespace: &'a str,
    auth: &'a ListenerAuth,
    forward_proxy: Option<&'a str>,
}

fn apply_vhost_options(
    out: &mut VirtualHost,
    options: &VirtualHostOptions,
    secrets: &HeaderSecrets<'_>,
) {
    if let Some(h) = &options.header_manipulation {
        out.request_headers_to_add = request_headers(h, secrets);
        out.request_headers_to_remove = h.request_headers_to_remove.clone();
        out.response_headers_to_add = response_headers(h);
        out.response_headers_to_remove = h.response_headers_to_remove.clone();
    }
    if let Some(retries) = &options.retries {
        out.retry_policy = Some(retry_policy(retries));
    }
    if let Some(cors) = &options.cors {
        out.typed_per_filter_config
            .insert(CORS_FILTER.to_string(), pack(&cors_policy(cors)));
    }
    if let Some(v) = options.include_request_attempt_count {
        out.include_request_attempt_count = v;
    }
    if let Some(v) = options.include_attempt_count_in_response {
        out.include_attempt_count_in_response = v;
    }
}

fn append_action(append: Option<bool>) -> i32 {
    // Gloo's `append` defaults to true, as Envoy's did before `append_action`.
    if append.unwrap_or(true) {
        HeaderAppendAction::AppendIfExistsOrAdd as i32
    } else {
        HeaderAppendAction::OverwriteIfExistsOrAdd as i32
    }
}

/// Gloo header values (and their `append`) as Envoy header options.
fn header_options<'a>(
    items: impl Iterator<Item = (Option<&'a crate::model::headers::HeaderValue>, Option<bool>)>,
) -> Vec<HeaderValueOption> {
    items
        .filter_map(|(header, append)| {
            let header = header?;
            Some(HeaderValueOption {
                header: Some(HeaderValue {
                    key: header.key.clone(),
                    value: header.value.clone(),
                    ..Default::default()
                }),
                append_action: append_action(append),
                ..Default::default()
            })
        })
        .collect()
}

/// The request headers to add: literal ones, and those of each `headerSecretRef`'s Secret
/// (validation rejects a reference to a missing Secret before translation).
fn request_headers(h: &HeaderManipulation, secrets: &HeaderSecrets<'_>) -> Vec<HeaderValueOption> {
    request_header_options(
        &h.request_headers_to_add,
        secrets.ctx.snapshot,
        secrets.namespace,
    )
}

/// Gloo's request headers to add (`solo.io.envoy.api.v2.core.HeaderValueOption`s) as Envoy's,
/// as Gloo's `api_conversion.ToEnvoyHeaderValueOptionList` converts them: a literal header
/// as it is, a `headerSecretRef` as one header per key of its Secret (in key order; a reference
/// without a namespace is to `namespace`), each with `append` (default true) as
/// `APPEND_IF_EXISTS_OR_ADD` and `append: false` as `OVERWRITE_IF_EXISTS_OR_ADD`. Validation
/// rejects a reference to a missing Secret before translation.
pub(crate) fn request_header_options(
    options: &[crate::model::headers::RequestHeaderValueOption],
    snapshot: &crate::snapshot::ConfigSnapshot,
    namespace: &str,
) -> Vec<HeaderValueOption> {
    let mut out = Vec::with_capacity(options.len());
    for o in options {
        match (&o.header, &o.header_secret_ref) {
            (Some(header), _) => {
                out.extend(header_options(std::iter::once((Some(header), o.append))))
            }
            (None, Some(reference)) => {
                let headers = snapshot
                    .header_secret(reference, namespace)
                    .unwrap_or_default();
                for (key, value) in headers {
                    out.push(HeaderValueOption {
                        header: Some(HeaderValue {
                            key,
                            value,
                            ..Default::default()
                        }),
                        append_action: append_action(o.append),
                        ..Default::default()
                    });
                }
            }
            (None, None) => {}
        }
    }
    out
}

fn response_headers(h: &HeaderManipulation) -> Vec<HeaderValueOption> {
    header_options(
        h.response_headers_to_add
            .iter()
            .map(|o| (o.header.as_ref(), o.append)),
    )
}

/// Gloo's `lbHash` policy as Envoy's route `hash_policy` (`None` for a policy without a key,
/// which validation reports).
fn hash_policy(p: &crate::model::lbhash::HashPolicy) -> Option<route_action::HashPolicy> {
    use crate::model::lbhash::HashKey;
    use route_action::hash_policy::{self, PolicySpecifier};
    let specifier = match p.key() {
        Ok(Some(HashKey::Header(name))) => PolicySpecifier::Header(hash_policy::Header {
            header_name: name.to_string(),
            ..Default::default()
        }),
        Ok(Some(HashKey::Cookie(c))) => PolicySpecifier::Cookie(hash_policy::Cookie {
            name: c.name.clone(),
            ttl: c.ttl.as_ref().map(duration),
            path: c.path.clone(),
            ..Default::default()
        }),
        Ok(Some(HashKey::SourceIp)) => {
            PolicySpecifier::ConnectionProperties(hash_policy::ConnectionProperties {
                source_ip: true,
            })
        }
        _ => return None,
    };
    Some(route_action::HashPolicy {
        policy_specifier: Some(specifier),
        terminal: p.terminal,
    })
}

fn retry_policy(r: &crate::model::retries::RetryPolicy) -> RetryPolicy {
    RetryPolicy {
        retry_on: r.retry_on.clone(),
        num_retries: r.num_retries.map(|value| UInt32Value { value }),
        per_try_timeout: r.per_try_timeout.as_ref().map(duration),
        retriable_status_codes: r.retriable_status_codes.clone(),
        retry_back_off: r.retry_back_off.as_ref().and_then(|b| {
            b.base_interval.as_ref().map(|base| RetryBackOff {
                base_interval: Some(duration(base)),
                max_interval: b.max_interval.as_ref().map(duration),
            })
        }),
        ..Default::default()
    }
}

fn cors_policy(c: &crate::model::cors::CorsPolicy) -> CorsPolicy {
    let mut origins: Vec<StringMatcher> = c
        .allow_origin
        .iter()
        .map(|o| string_match(MatchPattern::Exact(o.clone())))
        .collect();
    origins.extend(
        c.allow_origin_regex
            .iter()
            .map(|r| string_match(MatchPattern::SafeRegex(regex(r)))),
    );
    CorsPolicy {
        allow_origin_string_match: origins,
        allow_methods: c.allow_methods.join(","),
        allow_headers: c.allow_headers.join(","),
        expose_headers: c.expose_headers.join(","),
        max_age: c.max_age.clone(),
        allow_credentials: c.allow_credentials.then_some(BoolValue { value: true }),
        filter_enabled: c.disable_for_route.then(|| RuntimeFractionalPercent {
            default_value: Some(FractionalPercent {
                numerator: 0,
                denominator: DenominatorType::Hundred as i32,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn route_match(m: &Matcher) -> RouteMatch {
    let path = match m.path_or_default() {
        Ok(PathMatcher::Prefix(p)) => route_match::PathSpecifier::Prefix(p.to_string()),
        Ok(PathMatcher::Exact(p)) => route_match::PathSpecifier::Path(p.to_string()),
        Ok(PathMatcher::Regex(r)) => route_match::PathSpecifier::SafeRegex(regex(r)),
        Ok(PathMatcher::Connect) => {
            route_match::PathSpecifier::ConnectMatcher(route_match::ConnectMatcher {})
        }
        // Validation rejects conflicting path matchers before translation.
        Err(_) => route_match::PathSpecifier::Prefix("/".to_string()),
    };
    let mut headers: Vec<HeaderMatcher> = m
        .headers
        .iter()
        .map(|h| {
            let specifier = if h.value.is_empty() {
                HeaderMatchSpecifier::PresentMatch(true)
            } else if h.regex {
                HeaderMatchSpecifier::StringMatch(string_match(MatchPattern::SafeRegex(regex(
                    &h.value,
                ))))
            } else {
                HeaderMatchSpecifier::StringMatch(string_match(MatchPattern::Exact(
                    h.value.clone(),
                )))
            };
            HeaderMatcher {
                name: h.name.clone(),
                invert_match: h.invert_match,
                header_match_specifier: Some(specifier),
                ..Default::default()
            }
        })
        .collect();
    if !m.methods.is_empty() {
        // Gloo matches methods as a regex alternative on the `:method` pseudo-header.
        headers.push(HeaderMatcher {
            name: ":method".to_string(),
            header_match_specifier: Some(HeaderMatchSpecifier::StringMatch(string_match(
                MatchPattern::SafeRegex(regex(&m.methods.join("|"))),
            ))),
            ..Default::default()
        });
    }
    let query_parameters = m
        .query_parameters
        .iter()
        .map(|q| QueryParameterMatcher {
            name: q.name.clone(),
            query_parameter_match_specifier: Some(if q.value.is_empty() {
                QueryParameterMatchSpecifier::PresentMatch(true)
            } else if q.regex {
                QueryParameterMatchSpecifier::StringMatch(string_match(MatchPattern::SafeRegex(
                    regex(&q.value),
                )))
            } else {
                QueryParameterMatchSpecifier::StringMatch(string_match(MatchPattern::Exact(
                    q.value.clone(),
                )))
            }),
        })
        .collect();
    RouteMatch {
        path_specifier: Some(path),
        case_sensitive: m.case_sensitive.map(|value| BoolValue { value }),
        headers,
        query_parameters,
        ..Default::default()
    }
}

/// The Upstream a destination sends to: for a Kubernetes service the one discovery names
/// `<namespace>-<service>-<port>`, for a Consul service `gloo-system/consul-svc:<name>` (Gloo's
/// `consul.DestinationToUpstreamRef`).
pub(crate) fn destination_upstream(d: &Destination) -> Option<crate::model::ResourceRef> {
    match d.target() {
        Ok(Some(DestinationTarget::Consul(c))) => Some(crate::model::ResourceRef::new(
            crate::model::DEFAULT_NAMESPACE,
            format!("{CONSUL_UPSTREAM_PREFIX}{}", c.service_name),
        )),
        Ok(Some(DestinationTarget::Upstream(r))) => {
            Some(r.resolved(crate::model::DEFAULT_NAMESPACE))
        }
        Ok(Some(DestinationTarget::Kube(k))) => Some(crate::model::ResourceRef::new(
            crate::model::DEFAULT_NAMESPACE,
            super::kube_upstream_name(
                k.ref_.namespace_or(crate::model::DEFAULT_NAMESPACE),
                &k.ref_.name,
                k.port,
            ),
        )),
        _ => None,
    }
}

/// The prefix of the upstreams Consul discovery creates (`consul-svc:<service>`), Gloo's
/// `consul.UpstreamNamePrefix`.
pub(crate) const CONSUL_UPSTREAM_PREFIX: &str = "consul-svc:";

/// The cluster a destination sends to: its upstream's, named as Gloo's
/// `UpstreamToClusterName` names it (`<name>_<namespace>`).
pub(crate) fn destination_cluster(d: &Destination) -> Option<String> {
    // Written straight from the reference: this runs once per route, and the intermediate
    // `ResourceRef` would cost two more allocations each time.
    match d.target() {
        Ok(Some(DestinationTarget::Consul(c))) => Some(format!(
            "{CONSUL_UPSTREAM_PREFIX}{}_{}",
            c.service_name,
            crate::model::DEFAULT_NAMESPACE
        )),
        Ok(Some(DestinationTarget::Upstream(r))) => Some(format!(
            "{}_{}",
            r.name,
            r.namespace_or(crate::model::DEFAULT_NAMESPACE)
        )),
        Ok(Some(DestinationTarget::Kube(k))) => Some(format!(
            "{}_{}",
            super::kube_upstream_name(
                k.ref_.namespace_or(crate::model::DEFAULT_NAMESPACE),
                &k.ref_.name,
                k.port,
            ),
            crate::model::DEFAULT_NAMESPACE
        )),
        _ => None,
    }
}

/// Every destination of a route action (its single destination, its weighted ones, or its
/// upstream group's), with its field path under `path`.
pub(crate) fn action_destinations<'a>(
    snapshot: &'a crate::snapshot::ConfigSnapshot,
    action: &'a crate::model::routing::RouteAction,
    path: &str,
) -> Vec<(String, &'a Destination)> {
    match action.destination() {
        Ok(Some(RouteDestination::Single(d))) => vec![(format!("{path}.routeAction.single"), d)],
        Ok(Some(RouteDestination::Multi(m))) => {
            weighted_destinations(&m.destinations, &format!("{path}.routeAction.multi"))
        }
        Ok(Some(RouteDestination::UpstreamGroup(r))) => {
            let r = r.resolved(crate::model::DEFAULT_NAMESPACE);
            match snapshot.upstream_groups.get(&r) {
                Some(g) => weighted_destinations(
                    &g.object.spec.destinations,
                    &format!("{path}.routeAction.upstreamGroup({r})"),
                ),
                None => Vec::new(),
            }
        }
        _ => Vec::new(),
    }
}

/// The destinations of weighted destinations, with their field paths under `path`.
fn weighted_destinations<'a>(
    destinations: &'a [crate::model::routing::WeightedDestination],
    path: &str,
) -> Vec<(String, &'a Destination)> {
    destinations
        .iter()
        .enumerate()
        .filter_map(|(i, wd)| {
            Some((
                format!("{path}.destinations[{i}].destination"),
                wd.destination.as_ref()?,
            ))
        })
        .collect()
}

fn weighted(destinations: &[WeightedDestination], secrets: &HeaderSecrets<'_>) -> WeightedCluster {
    WeightedCluster {
        clusters: destinations
            .iter()
            .filter_map(|wd| {
                let cluster = destination_cluster(wd.destination.as_ref()?)?;
                let mut cw = ClusterWeight {
                    name: cluster,
                    weight: Some(UInt32Value {
                        value: wd.weight.unwrap_or(0),
                    }),
                    metadata_match: super::subsets::metadata_match(
                        secrets.ctx.snapshot,
                        wd.destination.as_ref()?,
                    ),
                    ..Default::default()
                };
                if let Some(h) = wd
                    .options
                    .as_ref()
                    .and_then(|o| o.header_manipulation.as_ref())
                {
                    cw.request_headers_to_add = request_headers(h, secrets);
                    cw.request_headers_to_remove = h.request_headers_to_remove.clone();
                    cw.response_headers_to_add = response_headers(h);
                    cw.response_headers_to_remove = h.response_headers_to_remove.clone();
                }
                let destination = wd.destination.as_ref()?;
                cw.typed_per_filter_config
                    .extend(transformation::per_filter_config_with(
                        transformation::Options::weighted(wd.options.as_ref()),
                        secrets.ctx.transformation,
                        super::aws_lambda::request_transformation(destination),
                    ));
                cw.typed_per_filter_config
                    .extend(super::aws_lambda::per_filter_config(
                        secrets.ctx.snapshot,
                        destination,
                    ));
                super::extauth::weighted_per_filter(
                    wd.options.as_ref(),
                    secrets.auth,
                    &mut cw.typed_per_filter_config,
                );
                cw.typed_per_filter_config
                    .extend(http_filters::buffer_per_route(
                        wd.options
                            .as_ref()
                            .and_then(|o| o.buffer_per_route.as_ref()),
                    ));
                Some(cw)
            })
            .collect(),
        ..Default::default()
    }
}

fn route_action(
    action: &gloo::RouteAction,
    options: &RouteOptions,
    secrets: &HeaderSecrets<'_>,
) -> RouteAction {
    let ctx = secrets.ctx;
    let specifier = match action.destination() {
        Ok(Some(RouteDestination::Single(d))) => {
            destination_cluster(d).map(route_action::ClusterSpecifier::Cluster)
        }
        Ok(Some(RouteDestination::Multi(m))) => Some(
            route_action::ClusterSpecifier::WeightedClusters(weighted(&m.destinations, secrets)),
        ),
        Ok(Some(RouteDestination::UpstreamGroup(r))) => {
            let r = r.resolved(crate::model::DEFAULT_NAMESPACE);
            ctx.snapshot.upstream_groups.get(&r).map(|group| {
                route_action::ClusterSpecifier::WeightedClusters(weighted(
                    &group.object.spec.destinations,
                    secrets,
                ))
            })
        }
        Ok(Some(RouteDestination::ClusterHeader(h))) => {
            Some(route_action::ClusterSpecifier::ClusterHeader(h.to_string()))
        }
        // The gateway's generated cluster (Gloo's `GetGeneratedClusterName` of the listener's
        // config); on a gateway without a dynamic forward proxy, the missing destination below
        // (resolution warns about it).
        Ok(Some(RouteDestination::DynamicForwardProxy(_))) => secrets
            .forward_proxy
            .map(|cluster| route_action::ClusterSpecifier::Cluster(cluster.to_string())),
        _ => None,
    };
    // A missing upstream group still gets a cluster name Envoy answers 503 for.
    let specifier = specifier.unwrap_or_else(|| {
        route_action::ClusterSpecifier::Cluster("gloo-missing-destination".to_string())
    });
    let metadata_match = match action.destination() {
        Ok(Some(RouteDestination::Single(d))) => super::subsets::metadata_match(ctx.snapshot, d),
        _ => None,
    };
    let mut out = RouteAction {
        cluster_specifier: Some(specifier),
        metadata_match,
        ..Default::default()
    };
    apply_route_action_options(&mut out, options);
    out
}

fn apply_route_action_options(out: &mut RouteAction, options: &RouteOptions) {
    if let Some(p) = &options.prefix_rewrite {
        out.prefix_rewrite = p.clone();
    }
    if let Some(rr) = &options.regex_rewrite {
        out.regex_rewrite = Some(RegexMatchAndSubstitute {
            pattern: rr.pattern.as_ref().map(|p| regex(&p.regex)),
            substitution: rr.substitution.clone(),
        });
    }
    if let Some(t) = &options.timeout {
        out.timeout = Some(duration(t));
    }
    if let Some(t) = &options.idle_timeout {
        out.idle_timeout = Some(duration(t));
    }
    if let Some(retries) = &options.retries {
        out.retry_policy = Some(retry_policy(retries));
    }
    if let Some(lb_hash) = &options.lb_hash {
        out.hash_policy = lb_hash
            .hash_policies
            .iter()
            .filter_map(hash_policy)
            .collect();
    }
    if let Some(host) = &options.host_rewrite {
        out.host_rewrite_specifier = Some(route_action::HostRewriteSpecifier::HostRewriteLiteral(
            host.clone(),
        ));
    } else if let Some(auto) = options.auto_host_rewrite {
        out.host_rewrite_specifier = Some(route_action::HostRewriteSpecifier::AutoHostRewrite(
            BoolValue { value: auto },
        ));
    } else if let Some(header) = &options.host_rewrite_header {
        out.host_rewrite_specifier = Some(route_action::HostRewriteSpecifier::HostRewriteHeader(
            header.clone(),
        ));
    } else if let Some(rr) = &options.host_rewrite_path_regex {
        out.host_rewrite_specifier = Some(
            route_action::HostRewriteSpecifier::HostRewritePathRegex(RegexMatchAndSubstitute {
                pattern: rr.pattern.as_ref().map(|p| regex(&p.regex)),
                substitution: rr.substitution.clone(),
            }),
        );
    }
    if let Some(v) = options.append_x_forwarded_host {
        out.append_x_forwarded_host = v;
    }
    if let Some(shadow) = &options.shadowing {
        if let Some(upstream) = &shadow.upstream {
            out.request_mirror_policies
                .push(route_action::RequestMirrorPolicy {
                    cluster: cluster_name(&upstream.resolved(crate::model::DEFAULT_NAMESPACE)),
                    runtime_fraction: Some(RuntimeFractionalPercent {
                        default_value: Some(percent(shadow.percentage)),
                        ..Default::default()
                    }),
                    disable_shadow_host_suffix_append: shadow.disable_shadow_host_suffix_append,
                    host_rewrite_literal: shadow.host_rewrite_literal.clone(),
                    ..Default::default()
                });
        }
    }
    if let Some(msd) = &options.max_stream_duration {
        out.max_stream_duration = Some(route_action::MaxStreamDuration {
            max_stream_duration: msd.max_stream_duration.as_ref().map(duration),
            grpc_timeout_header_max: msd.grpc_timeout_header_max.as_ref().map(duration),
            grpc_timeout_header_offset: msd.grpc_timeout_header_offset.as_ref().map(duration),
        });
    }
}

/// A Gloo percentage (0-100, fractional) as Envoy's per-million fraction.
fn percent(p: f64) -> FractionalPercent {
    FractionalPercent {
        numerator: (p.clamp(0.0, 100.0) * 10_000.0).round() as u32,
        denominator: DenominatorType::Million as i32,
    }
}

fn redirect(r: &gloo::RedirectAction) -> RedirectAction {
    let path_rewrite = match r.path_rewrite() {
        Ok(Some(RedirectPath::Path(p))) => Some(
            redirect_action::PathRewriteSpecifier::PathRedirect(p.to_string()),
        ),
        Ok(Some(RedirectPath::Prefix(p))) => Some(
            redirect_action::PathRewriteSpecifier::PrefixRewrite(p.to_string()),
        ),
        Ok(Some(RedirectPath::Regex(rr))) => Some(
            redirect_action::PathRewriteSpecifier::RegexRewrite(RegexMatchAndSubstitute {
                pattern: rr.pattern.as_ref().map(|p| regex(&p.regex)),
                substitution: rr.substitution.clone(),
            }),
        ),
        _ => None,
    };
    let code = match r.response_code {
        RedirectResponseCode::MovedPermanently => {
            redirect_action::RedirectResponseCode::MovedPermanently
        }
        RedirectResponseCode::Found => redirect_action::RedirectResponseCode::Found,
        RedirectResponseCode::SeeOther => redirect_action::RedirectResponseCode::SeeOther,
        RedirectResponseCode::TemporaryRedirect => {
            redirect_action::RedirectResponseCode::TemporaryRedirect
        }
        RedirectResponseCode::PermanentRedirect => {
            redirect_action::RedirectResponseCode::PermanentRedirect
        }
    };
    RedirectAction {
        host_redirect: r.host_redirect.clone(),
        port_redirect: r.port_redirect.unwrap_or(0),
        response_code: code as i32,
        strip_query: r.strip_query,
        scheme_rewrite_specifier: r
            .https_redirect
            .then_some(redirect_action::SchemeRewriteSpecifier::HttpsRedirect(true)),
        path_rewrite_specifier: path_rewrite,
    }
}

fn fault(faults: &crate::model::faults::RouteFaults) -> HttpFault {
    HttpFault {
        abort: faults.abort.as_ref().map(|a| FaultAbort {
            percentage: Some(percent(a.percentage)),
            error_type: Some(fault_abort::ErrorType::HttpStatus(a.http_status)),
            ..Default::default()
        }),
        delay: faults.delay.as_ref().map(|d| FaultDelay {
            percentage: Some(percent(d.percentage)),
            fault_delay_secifier: d
                .fixed_delay
                .as_ref()
                .map(|fd| fault_delay::FaultDelaySecifier::FixedDelay(duration(fd))),
        }),
        ..Default::default()
    }
}

/// One Envoy route.
fn route(
    r: &RouteModel,
    flags: ListenerFlags,
    waf: WafScope<'_>,
    secrets: &HeaderSecrets<'_>,
) -> Route {
    let options = &r.options;
    let mut action = match &r.action {
        RouteModelAction::Route(a) => route::Action::Route(route_action(a, options, secrets)),
        RouteModelAction::Redirect(redir) => route::Action::Redirect(redirect(redir)),
        RouteModelAction::DirectResponse(d) => {
            route::Action::DirectResponse(DirectResponseAction {
                status: d.status,
                body: (!d.body.is_empty()).then(|| DataSource {
                    specifier: Some(data_source::Specifier::InlineString(d.body.clone())),
                    ..Default::default()
                }),
                ..Default::default()
            })
        }
    };
    if let route::Action::Route(action) = &mut action {
        super::ratelimit::apply_to_route(action, r, secrets.ctx.snapshot);
    }
    let mut out = Route {
        name: r.name.clone(),
        r#match: Some(route_match(&r.matcher)),
        action: Some(action),
        ..Default::default()
    };
    if let Some(tracing) = &options.tracing {
        super::tracing::apply_to_route(tracing, &mut out);
    }
    if let Some(h) = &options.header_manipulation {
        out.request_headers_to_add = request_headers(h, secrets);
        out.request_headers_to_remove = h.request_headers_to_remove.clone();
        out.response_headers_to_add = response_headers(h);
        out.response_headers_to_remove = h.response_headers_to_remove.clone();
    }
    let mut per_filter: HashMap<String, envoy_types::pb::google::protobuf::Any> = HashMap::new();
    if let Some(cors) = &options.cors {
        per_filter.insert(CORS_FILTER.to_string(), pack(&cors_policy(cors)));
    }
    if let Some(faults) = &options.faults {
        per_filter.insert(FAULT_FILTER.to_string(), pack(&fault(faults)));
    }
    if let Some(bucket) = options.local_ratelimit().bucket() {
        per_filter.insert(
            LOCAL_RATELIMIT_FILTER.to_string(),
            pack(&local_ratelimit::config(flags, Some(bucket))),
        );
    }
    super::jwt::route_per_filter(r, &mut per_filter);
    super::extauth::route_per_filter(options, secrets.auth, &mut per_filter);
    // A single Lambda destination's function (weighted ones carry theirs on their cluster).
    let lambda = match &r.action {
        RouteModelAction::Route(a) => match a.destination() {
            Ok(Some(RouteDestination::Single(d))) => Some(d),
            _ => None,
        },
        _ => None,
    };
    per_filter.extend(transformation::per_filter_config_with(
        transformation::Options::route(options),
        secrets.ctx.transformation,
        lambda.and_then(super::aws_lambda::request_transformation),
    ));
    per_filter.extend(waf.route(options.waf.as_deref()));
    per_filter.extend(http_filters::buffer_per_route(
        options.buffer_per_route.as_ref(),
    ));
    if let Some(d) = lambda {
        per_filter.extend(super::aws_lambda::per_filter_config(
            secrets.ctx.snapshot,
            d,
        ));
    }
    // The dynamic forward proxy's host rewrite, as Gloo's `ProcessRoute` sets it whatever the
    // gateway (a filter the listener lacks never reads it).
    if let RouteModelAction::Route(a) = &r.action {
        if let Ok(Some(RouteDestination::DynamicForwardProxy(d))) = a.destination() {
            per_filter.extend(super::dynamic_forward_proxy::per_route(d));
        }
    }
    out.typed_per_filter_config = per_filter;
    if !options.envoy_metadata.is_empty() {
        out.metadata = Some(Metadata {
            filter_metadata: options
                .envoy_metadata
                .iter()
                .map(|(filter, values)| (filter.clone(), super::pb_struct(values)))
                .collect(),
            ..Default::default()
        });
    }
    out
}
