//! Tracing: a Gateway's `httpConnectionManagerSettings.tracing` as its connection manager's
//! `tracing`, and a route's `options.tracing` as the route's `decorator` and `tracing`, as
//! Gloo's tracing plugin writes them (`ProcessHcmNetworkFilter`, `ProcessRoute`).
//!
//! The connection manager gets the tags (request headers, environment variables, literals,
//! metadata, in that order), `verbose`, the three sampling percentages (100 % unless set, as
//! Envoy `Percent`s), `spawn_upstream_span` (false unless set) and the tracer: Zipkin
//! (`envoy.tracers.zipkin`), Datadog (`envoy.tracers.datadog`) or OpenTelemetry over gRPC
//! (`envoy.tracers.opentelemetry`, its service name the Gateway's name unless set). A tracer's
//! `collectorUpstreamRef` becomes the Upstream's cluster (`<name>_<namespace>`), which is then
//! served to the proxy though no route uses it; a `clusterName` is passed on as written (when it
//! is an Upstream's cluster, that cluster is served too).
//!
//! What Gloo refuses (OpenCensus, a Datadog or OpenTelemetry tracer without a collector) and
//! what Envoy would refuse (a Zipkin tracer without a collector or endpoint, Datadog without a
//! service name, percentages outside 0 to 100, empty tags) rejects the Gateway, naming the
//! field. A `collectorUpstreamRef` to an Upstream that is not there (or is rejected, so Envoy has
//! no cluster for it) is a warning, as in Gloo (its "Upstream not found" is a warning), and the
//! connection manager goes without tracing, as Gloo's does.
//!
//! A route's `tracing` gets the three sampling percentages as per-million fractions (100 %
//! unless set, converted as Gloo converts them), and a `routeDescriptor` becomes the route's
//! decorator operation (the name of its spans), with `propagate` as given. Percentages outside
//! 0 to 100 reject the resource that sets them.

use std::collections::BTreeSet;

use envoy_types::pb::envoy::config::core::v3::{grpc_service, GrpcService};
use envoy_types::pb::envoy::config::route::v3::{
    Decorator, Route as EnvoyRoute, Tracing as RouteTracing,
};
use envoy_types::pb::envoy::config::trace::v3::{
    tracing::{http::ConfigType, Http},
    zipkin_config::CollectorEndpointVersion, DatadogConfig as EnvoyDatadog,
    DatadogRemoteConfig as EnvoyRemoteConfig, OpenTelemetryConfig as EnvoyOpenTelemetry,
    ZipkinConfig as EnvoyZipkin,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::Tracing as HcmTracing;
use envoy_types::pb::envoy::r#type::metadata::v3::{
    metadata_key::{path_segment::Segment, PathSegment},
    metadata_kind, MetadataKey, MetadataKind,
};
use envoy_types::pb::envoy::r#type::tracing::v3::{custom_tag, CustomTag};
use envoy_types::pb::envoy::r#type::v3::{
    fractional_percent::DenominatorType, FractionalPercent, Percent,
};
use envoy_types::pb::google::protobuf::{BoolValue, UInt32Value};

use super::names::cluster_name;
use super::routes::duration;
use crate::model::gateway::HttpGateway;
use crate::model::tracing::{
    CollectorCluster, DatadogConfig, ListenerTracingSettings, OpenTelemetryConfig,
    RouteTracingSettings, TracePercentages, TracingProvider, TracingTagMetadataKind,
    ZipkinCollectorEndpointVersion, ZipkinConfig,
};
use crate::model::{Kind, ResourceRef};
use crate::snapshot::ConfigSnapshot;
use crate::status::{Reports, State};
use crate::xds::pack;

/// Envoy's Zipkin tracer, what a `zipkinConfig` becomes.
pub const ZIPKIN_TRACER: &str = "envoy.tracers.zipkin";
/// Envoy's Datadog tracer, what a `datadogConfig` becomes.
pub const DATADOG_TRACER: &str = "envoy.tracers.datadog";
/// Envoy's OpenTelemetry tracer, what an `openTelemetryConfig` becomes.
pub const OPENTELEMETRY_TRACER: &str = "envoy.tracers.opentelemetry";

/// A percentage's default: everything is traced.
const ONE_HUNDRED_PERCENT: f32 = 100.0;

// ----- validation ---------------------------------------------------------------------------

/// What Gloo or Envoy refuses in a listener's tracing settings, each problem naming its field
/// under `path` (the path of `tracing`).
pub(crate) fn problems(settings: &ListenerTracingSettings, path: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, header) in settings.request_headers_for_tags.iter().enumerate() {
        // The header's name is the tag's too: Envoy wants both non-empty, and a header name
        // without NUL, CR or LF.
        if header.is_empty() {
            out.push(format!(
                "{path}.requestHeadersForTags[{i}]: must name a header"
            ));
        } else if header.contains(['\0', '\r', '\n']) {
            out.push(format!(
                "{path}.requestHeadersForTags[{i}]: {header:?} is not a header name (NUL, CR or LF)"
            ));
        }
    }
    let required = |value: &Option<String>| value.as_deref().unwrap_or_default().is_empty();
    for (i, tag) in settings.environment_variables_for_tags.iter().enumerate() {
        let at = format!("{path}.environmentVariablesForTags[{i}]");
        if required(&tag.tag) {
            out.push(format!("{at}.tag: required (the tag's name)"));
        }
        if required(&tag.name) {
            out.push(format!(
                "{at}.name: required (the environment variable holding the value)"
            ));
        }
    }
    for (i, tag) in settings.literals_for_tags.iter().enumerate() {
        let at = format!("{path}.literalsForTags[{i}]");
        if required(&tag.tag) {
            out.push(format!("{at}.tag: required (the tag's name)"));
        }
        if required(&tag.value) {
            out.push(format!(
                "{at}.value: required (Envoy refuses an empty literal)"
            ));
        }
    }
    for (i, tag) in settings.metadata_for_tags.iter().enumerate() {
        let at = format!("{path}.metadataForTags[{i}]");
        if tag.tag.is_empty() {
            out.push(format!("{at}.tag: required (the tag's name)"));
        }
        let value = tag.value.clone().unwrap_or_default();
        if value.namespace.is_empty() {
            out.push(format!(
                "{at}.value.namespace: required (the metadata namespace, e.g. envoy.filters.http.jwt_authn)"
            ));
        }
        if value.path().iter().any(|key| key.is_empty()) {
            out.push(format!(
                "{at}.value.key: {:?} has an empty key between its delimiters (or none at all), which Envoy refuses",
                value.key
            ));
        }
    }
    out.extend(percentage_problems(
        settings.trace_percentages.as_ref(),
        path,
    ));
    match settings.provider() {
        Err(e) => out.push(format!("{path}: {e}")),
        Ok(None) => {}
        Ok(Some(provider)) => {
            provider_problems(provider, &format!("{path}.{}", field(provider)), &mut out)
        }
    }
    out
}

/// What is refused in a route's tracing settings (`path` is the path of `tracing`): percentages
/// outside 0 to 100 (Gloo asks for "a value between 0.0 and 100.0", as for fault percentages).
pub(crate) fn route_problems(settings: Option<&RouteTracingSettings>, path: &str) -> Vec<String> {
    settings
        .map(|s| percentage_problems(s.trace_percentages.as_ref(), path))
        .unwrap_or_default()
}

fn percentage_problems(percentages: Option<&TracePercentages>, path: &str) -> Vec<String> {
    percentages
        .map(TracePercentages::problems)
        .unwrap_or_default()
        .into_iter()
        .map(|why| format!("{path}.tracePercentages.{why}"))
        .collect()
}

/// The JSON name of a provider's field.
fn field(provider: TracingProvider<'_>) -> &'static str {
    match provider {
        TracingProvider::Zipkin(_) => "zipkinConfig",
        TracingProvider::Datadog(_) => "datadogConfig",
        TracingProvider::OpenTelemetry(_) => "openTelemetryConfig",
        TracingProvider::OpenCensus(_) => "openCensusConfig",
    }
}

/// The `collector_cluster` oneof of a provider (none for OpenCensus).
fn collector(
    provider: TracingProvider<'_>,
) -> Result<Option<CollectorCluster<'_>>, crate::model::routing::OneofError> {
    match provider {
        TracingProvider::Zipkin(z) => z.collector_cluster(),
        TracingProvider::Datadog(d) => d.collector_cluster(),
        TracingProvider::OpenTelemetry(o) => o.collector_cluster(),
        TracingProvider::OpenCensus(_) => Ok(None),
    }
}

fn provider_problems(provider: TracingProvider<'_>, at: &str, out: &mut Vec<String>) {
    if let TracingProvider::OpenCensus(_) = provider {
        out.push(format!(
            "{at}: unsupported: Gloo's tracing plugin refuses it (\"Unsupported Tracing.ProviderConfiguration\") and Envoy 1.40 has no OpenCensus tracer; use openTelemetryConfig"
        ));
        return;
    }
    match collector(provider) {
        Err(e) => out.push(format!("{at}: {e}")),
        // Gloo refuses a Datadog or OpenTelemetry tracer without a collector ("Unsupported
        // Tracing.ProviderConfiguration"); it passes a Zipkin one on, which Envoy refuses.
        Ok(None) => out.push(format!(
            "{at}: no collector: set one of collectorUpstreamRef, clusterName"
        )),
        Ok(Some(CollectorCluster::ClusterName(""))) => {
            out.push(format!("{at}.clusterName: must name a cluster"))
        }
        Ok(Some(_)) => {}
    }
    match provider {
        TracingProvider::Zipkin(z) if z.collector_endpoint.is_empty() => out.push(format!(
            "{at}.collectorEndpoint: required (the collectors' API path, e.g. /api/v2/spans)"
        )),
        TracingProvider::Datadog(d) if d.service_name.as_deref().unwrap_or_default().is_empty() => {
            out.push(format!(
                "{at}.serviceName: required (the service name of the spans)"
            ))
        }
        _ => {}
    }
}

// ----- collectors ---------------------------------------------------------------------------

/// Whether the Upstream `reference` is rejected (it then gets no cluster).
fn rejected(reports: &Reports, reference: &ResourceRef) -> bool {
    reports
        .get(Kind::Upstream, reference)
        .is_some_and(|s| s.state == State::Rejected)
}

/// The cluster a tracer's collector names, and the Upstream it is (when it is one); or, for a
/// `collectorUpstreamRef` whose Upstream has no cluster, why.
fn resolve_collector(
    collector: CollectorCluster<'_>,
    snapshot: &ConfigSnapshot,
    reports: &Reports,
) -> Result<(String, Option<ResourceRef>), String> {
    match collector {
        CollectorCluster::UpstreamRef(reference) => {
            // Gloo looks a reference without a namespace up in the namespace "".
            let reference = reference.with_required_namespace("Upstream")?;
            if !snapshot.upstreams.contains_key(&reference) {
                return Err(format!("Upstream {reference} not found"));
            }
            if rejected(reports, &reference) {
                return Err(format!(
                    "Upstream {reference} is rejected, so Envoy has no cluster to send spans to"
                ));
            }
            Ok((cluster_name(&reference), Some(reference)))
        }
        CollectorCluster::ClusterName(name) => Ok((
            name.to_string(),
            super::access_log::upstream_of_cluster(snapshot, name).map(|(r, _)| r.clone()),
        )),
    }
}

/// The provider and collector of valid tracing settings (`None` without a provider or with
/// settings validation refuses).
fn valid_collector(
    settings: &ListenerTracingSettings,
) -> Option<(TracingProvider<'_>, CollectorCluster<'_>)> {
    let provider = settings.provider().ok()??;
    let collector = collector(provider).ok()??;
    Some((provider, collector))
}

/// The tracing settings of an HTTP gateway, if any.
fn settings_of(http: Option<&HttpGateway>) -> Option<&ListenerTracingSettings> {
    http?
        .options
        .as_ref()?
        .http_connection_manager_settings
        .as_ref()?
        .tracing
        .as_ref()
}

/// Adds the Upstream a listener's tracer sends spans to (no route may reference it, and only
/// referenced Upstreams get clusters).
pub(crate) fn collect_upstreams(
    snapshot: &ConfigSnapshot,
    reports: &Reports,
    http: Option<&HttpGateway>,
    into: &mut BTreeSet<ResourceRef>,
) {
    let Some((_, collector)) = settings_of(http).and_then(valid_collector) else {
        return;
    };
    if let Ok((_, Some(reference))) = resolve_collector(collector, snapshot, reports) {
        into.insert(reference);
    }
}

/// Warnings about a listener's tracer (`path` is the path of `tracing`): a
/// `collectorUpstreamRef` whose Upstream has no cluster (the connection manager then goes
/// without tracing, as Gloo's does); a `clusterName` that is no Upstream's (it must then come
/// from Envoy's bootstrap, which gloo cannot see); an OpenTelemetry collector Upstream that
/// is not HTTP/2 (Envoy exports spans over gRPC).
pub(crate) fn warnings(
    snapshot: &ConfigSnapshot,
    reports: &Reports,
    settings: &ListenerTracingSettings,
    path: &str,
) -> Vec<String> {
    let Some((provider, collector)) = valid_collector(settings) else {
        return Vec::new();
    };
    let at = format!("{path}.{}", field(provider));
    let member = match collector {
        CollectorCluster::UpstreamRef(_) => "collectorUpstreamRef",
        CollectorCluster::ClusterName(_) => "clusterName",
    };
    let at = format!("{at}.{member}");
    match resolve_collector(collector, snapshot, reports) {
        Err(why) => vec![format!(
            "{at}: {why}; the gateway is served without tracing, as Gloo serves it"
        )],
        Ok((cluster, None)) => {
            let consequence = match provider {
                TracingProvider::OpenTelemetry(_) => "Envoy cannot export the spans",
                _ => "Envoy refuses the listener",
            };
            vec![format!(
                "{at}: no Upstream has the cluster {cluster:?} (an Upstream's cluster is `<name>_<namespace>`); unless Envoy's bootstrap defines it, {consequence}"
            )]
        }
        Ok((_, Some(reference))) => match provider {
            TracingProvider::OpenTelemetry(_)
                if snapshot
                    .upstreams
                    .get(&reference)
                    .is_some_and(|e| e.object.spec.use_http2 != Some(true)) =>
            {
                vec![format!(
                    "{at}: Upstream {reference} does not set useHttp2, and Envoy exports spans to it over gRPC, which needs HTTP/2"
                )]
            }
            _ => Vec::new(),
        },
    }
}

// ----- translation --------------------------------------------------------------------------

/// The connection manager's `tracing` for a Gateway named `gateway_name` (the OpenTelemetry
/// tracer's default service name), as Gloo's tracing plugin writes it; `None` when the
/// settings' tracer sends spans to an Upstream that has no cluster (Gloo writes no tracing
/// then) or is refused by validation.
pub(crate) fn connection_manager_tracing(
    settings: &ListenerTracingSettings,
    gateway_name: &str,
    snapshot: &ConfigSnapshot,
    reports: &Reports,
) -> Option<HcmTracing> {
    let provider = match settings.provider().ok()? {
        None => None,
        Some(provider) => {
            let (cluster, _) =
                resolve_collector(collector(provider).ok()??, snapshot, reports).ok()?;
            Some(http_tracer(provider, cluster, gateway_name)?)
        }
    };
    let percentages = settings.trace_percentages.unwrap_or_default();
    let percent = |p: Option<f32>| Percent {
        value: f64::from(p.unwrap_or(ONE_HUNDRED_PERCENT)),
    };
    Some(HcmTracing {
        client_sampling: Some(percent(percentages.client_sample_percentage)),
        random_sampling: Some(percent(percentages.random_sample_percentage)),
        overall_sampling: Some(percent(percentages.overall_sample_percentage)),
        verbose: settings.verbose.unwrap_or(false),
        custom_tags: custom_tags(settings),
        provider,
        spawn_upstream_span: Some(BoolValue {
            value: settings.spawn_upstream_span.unwrap_or(false),
        }),
        ..Default::default()
    })
}

/// The tags, as Gloo orders them: request headers, environment variables, literals, metadata.
fn custom_tags(settings: &ListenerTracingSettings) -> Vec<CustomTag> {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let headers = settings.request_headers_for_tags.iter().map(|h| CustomTag {
        tag: h.clone(),
        r#type: Some(custom_tag::Type::RequestHeader(custom_tag::Header {
            name: h.clone(),
            ..Default::default()
        })),
    });
    let environment = settings
        .environment_variables_for_tags
        .iter()
        .map(|e| CustomTag {
            tag: text(&e.tag),
            r#type: Some(custom_tag::Type::Environment(custom_tag::Environment {
                name: text(&e.name),
                default_value: text(&e.default_value),
            })),
        });
    let literals = settings.literals_for_tags.iter().map(|l| CustomTag {
        tag: text(&l.tag),
        r#type: Some(custom_tag::Type::Literal(custom_tag::Literal {
            value: text(&l.value),
        })),
    });
    let metadata = settings.metadata_for_tags.iter().map(|m| {
        let value = m.value.clone().unwrap_or_default();
        let kind = match m.kind.unwrap_or_default() {
            TracingTagMetadataKind::Request => metadata_kind::Kind::Request(Default::default()),
            TracingTagMetadataKind::Endpoint => metadata_kind::Kind::Host(Default::default()),
        };
        CustomTag {
            tag: m.tag.clone(),
            r#type: Some(custom_tag::Type::Metadata(custom_tag::Metadata {
                kind: Some(MetadataKind { kind: Some(kind) }),
                metadata_key: Some(MetadataKey {
                    key: value.namespace.clone(),
                    path: value
                        .path()
                        .into_iter()
                        .map(|key| PathSegment {
                            segment: Some(Segment::Key(key.to_string())),
                        })
                        .collect(),
                }),
                default_value: m.default_value.clone(),
            })),
        }
    });
    headers
        .chain(environment)
        .chain(literals)
        .chain(metadata)
        .collect()
}

/// The tracer of `provider`, sending spans to `cluster`.
fn http_tracer(provider: TracingProvider<'_>, cluster: String, gateway_name: &str) -> Option<Http> {
    let (name, config) = match provider {
        TracingProvider::Zipkin(z) => (ZIPKIN_TRACER, pack(&zipkin(z, cluster))),
        TracingProvider::Datadog(d) => (DATADOG_TRACER, pack(&datadog(d, cluster))),
        TracingProvider::OpenTelemetry(o) => (
            OPENTELEMETRY_TRACER,
            pack(&open_telemetry(o, cluster, gateway_name)),
        ),
        TracingProvider::OpenCensus(_) => return None,
    };
    Some(Http {
        name: name.to_string(),
        config_type: Some(ConfigType::TypedConfig(config)),
    })
}

/// Gloo's `ToEnvoyZipkinConfiguration`: the endpoint version `HTTP_PROTO` when asked for,
/// `HTTP_JSON` otherwise (the deprecated v1 included, which Envoy no longer has).
fn zipkin(z: &ZipkinConfig, cluster: String) -> EnvoyZipkin {
    let version = match z.collector_endpoint_version {
        Some(ZipkinCollectorEndpointVersion::HttpProto) => CollectorEndpointVersion::HttpProto,
        _ => CollectorEndpointVersion::HttpJson,
    };
    EnvoyZipkin {
        collector_cluster: cluster,
        collector_endpoint: z.collector_endpoint.clone(),
        collector_endpoint_version: version as i32,
        trace_id_128bit: z.trace_id_128bit.unwrap_or(false),
        shared_span_context: z.shared_span_context.map(|value| BoolValue { value }),
        ..Default::default()
    }
}

/// Gloo's `ToEnvoyDatadogConfiguration`: remote configuration stays on (an empty
/// `remote_config`) unless `remoteConfig.disabled`, as Envoy had it before 1.31.
fn datadog(d: &DatadogConfig, cluster: String) -> EnvoyDatadog {
    let remote_config = match &d.remote_config {
        None => Some(EnvoyRemoteConfig::default()),
        Some(r) if r.disabled != Some(true) => Some(EnvoyRemoteConfig {
            polling_interval: r.polling_interval.as_ref().map(duration),
        }),
        Some(_) => None,
    };
    EnvoyDatadog {
        collector_cluster: cluster,
        service_name: d.service_name.clone().unwrap_or_default(),
        collector_hostname: d.collector_hostname.clone(),
        remote_config,
    }
}

/// Gloo's `ToEnvoyOpenTelemetryConfiguration`: spans exported over Envoy's gRPC client to the
/// cluster (with the authority asked for, else the cluster's name), named after the service
/// asked for or else the Gateway (Gloo's `GetGatewayNameFromParent`).
fn open_telemetry(
    o: &OpenTelemetryConfig,
    cluster: String,
    gateway_name: &str,
) -> EnvoyOpenTelemetry {
    let service_name = if o.service_name.is_empty() {
        gateway_name.to_string()
    } else {
        o.service_name.clone()
    };
    EnvoyOpenTelemetry {
        grpc_service: Some(GrpcService {
            target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(
                grpc_service::EnvoyGrpc {
                    cluster_name: cluster,
                    authority: o
                        .grpc_service
                        .as_ref()
                        .map(|g| g.authority.clone())
                        .unwrap_or_default(),
                    ..Default::default()
                },
            )),
            ..Default::default()
        }),
        service_name,
        max_cache_size: o.max_cache_size.map(|value| UInt32Value { value }),
        ..Default::default()
    }
}

/// A route's tracing settings on the Envoy route, as Gloo's `ProcessRoute` writes them: the
/// route's `tracing` with the three sampling percentages (100 % unless set) as per-million
/// fractions, and, with a `routeDescriptor`, its `decorator` (the descriptor as the operation,
/// `propagate` as given).
pub(crate) fn apply_to_route(settings: &RouteTracingSettings, out: &mut EnvoyRoute) {
    let percentages = settings.trace_percentages.unwrap_or_default();
    out.tracing = Some(RouteTracing {
        client_sampling: Some(fraction(percentages.client_sample_percentage)),
        random_sampling: Some(fraction(percentages.random_sample_percentage)),
        overall_sampling: Some(fraction(percentages.overall_sample_percentage)),
        ..Default::default()
    });
    if !settings.route_descriptor.is_empty() {
        out.decorator = Some(Decorator {
            operation: settings.route_descriptor.clone(),
            propagate: settings.propagate.map(|value| BoolValue { value }),
        });
    }
}

/// Gloo's `ToEnvoyPercentage`: the percentage times 10,000 in 32-bit float arithmetic,
/// truncated, per million.
fn fraction(percentage: Option<f32>) -> FractionalPercent {
    let percentage = percentage.unwrap_or(ONE_HUNDRED_PERCENT);
    FractionalPercent {
        // Validation keeps it between 0 and 100, so the product fits.
        numerator: (percentage * 10_000.0) as u32,
        denominator: DenominatorType::Million as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_percentages_convert_as_gloo_converts_them() {
        assert_eq!(fraction(None).numerator, 1_000_000);
        assert_eq!(fraction(Some(0.0)).numerator, 0);
        assert_eq!(fraction(Some(12.5)).numerator, 125_000);
        // float32 arithmetic, truncated, as Go's `uint32(percentage * 10000)`.
        assert_eq!(fraction(Some(0.1)).numerator, 1_000);
        assert_eq!(fraction(Some(33.333_33)).numerator, 333_333);
    }
}
