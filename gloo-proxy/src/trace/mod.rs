//! Tracing as Envoy's Zipkin tracer (`envoy.tracers.zipkin`, JSON spans to the v2 API) and
//! OpenTelemetry tracer (`envoy.tracers.opentelemetry`, OTLP over gRPC) do it: each request
//! the connection manager samples gets a server span, whose context goes upstream (B3
//! headers, `x-b3-traceid`, `x-b3-spanid`, `x-b3-parentspanid`, `x-b3-sampled`, for Zipkin;
//! W3C `traceparent` and `tracestate` for OpenTelemetry) and which is sent to the collector
//! cluster, five spans a batch or every five seconds, when its answer has gone.
//!
//! A span carries Envoy's tags (`http.url`, `http.method`, `http.status_code`,
//! `upstream_cluster`, `response_flags`, `guid:x-request-id`, ...) and the connection
//! manager's custom tags (request headers, literals, environment variables). Its name is the
//! route's decorator operation, else the request's host (Zipkin) or `ingress`
//! (OpenTelemetry), as Envoy's tracers name them. A client's context is joined (with
//! Zipkin the span shares the client's span id, as Envoy's `shared_span_context` does by
//! default; with OpenTelemetry it is the client span's child), and its sampling flag decides;
//! otherwise the request id decides against the random sampling percentage, as Envoy's UUID
//! request id extension does, and the request id then says why (its 15th character: `9`
//! sampled, `4` not).
//!
//! ```
//! use gloo_proxy::filter::Upstreams;
//! use gloo_proxy::trace::{SpanContext, Tracer};
//! use http::HeaderMap;
//!
//! // A connection manager's `tracing` without a tracer traces nothing.
//! let tracing = Default::default();
//! assert!(Tracer::compile(&tracing, &Upstreams::default())?.is_none());
//!
//! // A client that is part of a trace already: the span joins it.
//! let mut headers = HeaderMap::new();
//! headers.insert("x-b3-traceid", "463ac35c9f6413ad".parse().unwrap());
//! headers.insert("x-b3-spanid", "a2fb4a1d1a96d312".parse().unwrap());
//! headers.insert("x-b3-sampled", "1".parse().unwrap());
//! let context = SpanContext::b3(&headers).expect("a B3 context");
//! assert_eq!(context.trace_id, "463ac35c9f6413ad");
//! assert_eq!(context.span_id, "a2fb4a1d1a96d312");
//! assert_eq!(context.sampled, Some(true));
//! # Ok::<(), String>(())
//! ```

pub mod otlp;

use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use envoy_types::pb::envoy::config::trace::v3::{
    zipkin_config, OpenTelemetryConfig, ZipkinConfig,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::Tracing;
use envoy_types::pb::envoy::r#type::tracing::v3::custom_tag;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use prost::Message;
use serde_json::{json, Map, Value};

use crate::access_log::Entry;
use crate::body::Body;

const ZIPKIN_TYPE: &str = "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig";
const OPENTELEMETRY_TYPE: &str = "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig";

/// Spans sent together (Envoy's `tracing.zipkin.min_flush_spans`).
const FLUSH_SPANS: usize = 5;
/// The longest a span waits to be sent (Envoy's `tracing.zipkin.flush_interval_ms`).
const FLUSH_INTERVAL: Duration = Duration::from_secs(5);
/// The most of a path `http.url` carries (Envoy's default `max_path_tag_length`).
const MAX_PATH_TAG: usize = 256;

const TRACE_ID: HeaderName = HeaderName::from_static("x-b3-traceid");
const SPAN_ID: HeaderName = HeaderName::from_static("x-b3-spanid");
const PARENT_SPAN_ID: HeaderName = HeaderName::from_static("x-b3-parentspanid");
const SAMPLED: HeaderName = HeaderName::from_static("x-b3-sampled");
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// Where a custom tag's value comes from.
#[derive(Debug, Clone)]
enum TagValue {
    /// A request header, or the default when it is absent (no tag without one).
    Header(HeaderName, String),
    /// A fixed value.
    Literal(String),
}

/// The context of a span: its ids and the client's sampling decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanContext {
    /// The trace's id (16 or 32 hex digits).
    pub trace_id: String,
    /// The span's id (16 hex digits).
    pub span_id: String,
    /// The parent span's id, when the span has one.
    pub parent_id: Option<String>,
    /// The client's sampling decision, when it made one.
    pub sampled: Option<bool>,
    /// The W3C `tracestate` the client sent, passed on.
    pub trace_state: Option<String>,
}

impl SpanContext {
    /// The W3C context a client sent (`traceparent: 00-<trace id>-<span id>-<flags>`), if
    /// it sent a valid one: the client's span is the parent.
    pub fn w3c(headers: &HeaderMap) -> Option<SpanContext> {
        let value = headers.get(&TRACEPARENT)?.to_str().ok()?;
        let mut parts = value.split('-');
        let (version, trace, parent, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !(hex(version, 2)
            && version != "ff"
            && hex(trace, 32)
            && hex(parent, 16)
            && hex(flags, 2))
            || trace.bytes().all(|b| b == b'0')
            || parent.bytes().all(|b| b == b'0')
        {
            return None;
        }
        let flags = u8::from_str_radix(flags, 16).ok()?;
        Some(SpanContext {
            trace_id: trace.to_ascii_lowercase(),
            span_id: String::new(),
            parent_id: Some(parent.to_ascii_lowercase()),
            sampled: Some(flags & 1 == 1),
            trace_state: headers
                .get(&TRACESTATE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        })
    }

    /// The B3 context a client sent, if it sent a trace and a span id.
    pub fn b3(headers: &HeaderMap) -> Option<SpanContext> {
        let text = |name: &HeaderName| headers.get(name)?.to_str().ok().map(str::to_string);
        let hex = |s: &str, lens: &[usize]| {
            lens.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
        };
        let trace_id = text(&TRACE_ID).filter(|t| hex(t, &[16, 32]))?;
        let span_id = text(&SPAN_ID).filter(|s| hex(s, &[16]))?;
        Some(SpanContext {
            trace_id,
            span_id,
            parent_id: text(&PARENT_SPAN_ID).filter(|p| hex(p, &[16])),
            sampled: sampled_header(headers),
            trace_state: None,
        })
    }
}

/// A client's `x-b3-sampled`: `1`, `true` or `d` (debug) sample, `0` or `false` do not.
fn sampled_header(headers: &HeaderMap) -> Option<bool> {
    match headers.get(&SAMPLED)?.as_bytes() {
        b"1" | b"true" | b"d" => Some(true),
        b"0" | b"false" => Some(false),
        _ => None,
    }
}

/// A request's span in the making: its context and whether it is sent.
#[derive(Debug, Clone)]
pub struct Span {
    context: SpanContext,
    sampled: bool,
}

/// The tracer a connection manager's spans go through, and where they are sent.
#[derive(Debug)]
enum Provider {
    /// Zipkin: B3 headers, JSON spans.
    Zipkin {
        trace_id_128: bool,
        shared_span_context: bool,
    },
    /// OpenTelemetry: W3C headers, OTLP spans over gRPC.
    OpenTelemetry,
}

/// Envoy's Zipkin or OpenTelemetry tracer for one connection manager.
#[derive(Debug)]
pub struct Tracer {
    provider: Provider,
    /// Random sampling, in hundredths of a percent.
    random: u64,
    /// Overall sampling, in hundredths of a percent.
    overall: u64,
    tags: Vec<(String, TagValue)>,
    reporter: Arc<Reporter>,
}

impl Tracer {
    /// The tracer a connection manager's `tracing` asks for: `None` (with a warning) for a
    /// tracer gloo-proxy does not have (Datadog's; Zipkin's protobuf spans; OpenTelemetry
    /// over HTTP).
    pub fn compile(
        tracing: &Tracing,
        upstreams: &crate::filter::Upstreams,
    ) -> Result<Option<Arc<Tracer>>, String> {
        let Some(provider) = &tracing.provider else {
            return Ok(None);
        };
        let not_applied = |why: &str| {
            tracing::warn!("tracing is not applied: {why}; no spans are sent");
            Ok(None)
        };
        use envoy_types::pb::envoy::config::trace::v3::tracing::http::ConfigType;
        let (provider, sink) = match &provider.config_type {
            Some(ConfigType::TypedConfig(any)) if any.type_url == ZIPKIN_TYPE => {
                let config = ZipkinConfig::decode(any.value.as_slice())
                    .map_err(|e| format!("tracing.provider: invalid Zipkin config: {e}"))?;
                if zipkin_config::CollectorEndpointVersion::try_from(
                    config.collector_endpoint_version,
                ) != Ok(zipkin_config::CollectorEndpointVersion::HttpJson)
                {
                    return not_applied("gloo-proxy sends Zipkin spans as JSON (HTTP_JSON) only");
                }
                if config.collector_cluster.is_empty() || config.collector_endpoint.is_empty() {
                    return Err(
                        "tracing.provider: a Zipkin tracer needs a collector cluster and endpoint"
                            .into(),
                    );
                }
                let host = if config.collector_hostname.is_empty() {
                    config.collector_cluster.clone()
                } else {
                    config.collector_hostname.clone()
                };
                (
                    Provider::Zipkin {
                        trace_id_128: config.trace_id_128bit,
                        shared_span_context: config
                            .shared_span_context
                            .as_ref()
                            .is_none_or(|b| b.value),
                    },
                    Sink::Zipkin {
                        cluster: config.collector_cluster,
                        endpoint: config.collector_endpoint,
                        host,
                    },
                )
            }
            Some(ConfigType::TypedConfig(any)) if any.type_url == OPENTELEMETRY_TYPE => {
                use envoy_types::pb::envoy::config::core::v3::grpc_service::TargetSpecifier;
                let config = OpenTelemetryConfig::decode(any.value.as_slice())
                    .map_err(|e| format!("tracing.provider: invalid OpenTelemetry config: {e}"))?;
                let cluster = match config
                    .grpc_service
                    .as_ref()
                    .and_then(|g| g.target_specifier.as_ref())
                {
                    Some(TargetSpecifier::EnvoyGrpc(g)) if !g.cluster_name.is_empty() => {
                        g.cluster_name.clone()
                    }
                    _ => {
                        return not_applied(
                            "gloo-proxy sends OpenTelemetry spans over gRPC to a cluster only",
                        )
                    }
                };
                let service_name = if config.service_name.is_empty() {
                    "unknown_service:envoy".to_string()
                } else {
                    config.service_name
                };
                (
                    Provider::OpenTelemetry,
                    Sink::OpenTelemetry {
                        cluster,
                        service_name,
                    },
                )
            }
            _ => {
                return not_applied(&format!(
                    "gloo-proxy has no {:?} tracer (it has Zipkin's and OpenTelemetry's)",
                    provider.name
                ))
            }
        };
        if tracing
            .spawn_upstream_span
            .as_ref()
            .is_some_and(|b| b.value)
        {
            tracing::warn!("tracing.spawn_upstream_span is not applied: a request has its server span only, whose context goes upstream");
        }
        if tracing.verbose {
            tracing::warn!("tracing.verbose is not applied: spans carry no per-event annotations");
        }
        // Envoy's `Percent`s: 100 unless set.
        let per_10k = |p: Option<&envoy_types::pb::envoy::r#type::v3::Percent>| {
            p.map_or(10_000, |p| {
                (p.value.clamp(0.0, 100.0) * 100.0).round() as u64
            })
        };
        let mut tags = Vec::new();
        for tag in &tracing.custom_tags {
            match &tag.r#type {
                Some(custom_tag::Type::Literal(l)) => {
                    tags.push((tag.tag.clone(), TagValue::Literal(l.value.clone())))
                }
                Some(custom_tag::Type::RequestHeader(h)) => match HeaderName::try_from(&h.name) {
                    Ok(name) => tags.push((
                        tag.tag.clone(),
                        TagValue::Header(name, h.default_value.clone()),
                    )),
                    Err(_) => {
                        return Err(format!(
                            "tracing.custom_tags: {:?} is not a header name",
                            h.name
                        ))
                    }
                },
                // Read once, as Envoy reads it when the config loads.
                Some(custom_tag::Type::Environment(e)) => {
                    let value = std::env::var(&e.name)
                        .ok()
                        .filter(|v| !v.is_empty())
                        .unwrap_or_else(|| e.default_value.clone());
                    if !value.is_empty() {
                        tags.push((tag.tag.clone(), TagValue::Literal(value)));
                    }
                }
                _ => tracing::warn!(
                    "tracing.custom_tags {:?}: metadata tags are not applied",
                    tag.tag
                ),
            }
        }
        Ok(Some(Arc::new(Tracer {
            provider,
            random: per_10k(tracing.random_sampling.as_ref()),
            overall: per_10k(tracing.overall_sampling.as_ref()),
            tags,
            reporter: Arc::new(Reporter {
                upstreams: upstreams.clone(),
                sink,
                pending: Mutex::new(Vec::new()),
            }),
        })))
    }

    /// Starts the span of a request: decides whether it is sampled, notes why in its
    /// `x-request-id`, and writes its context into its headers, for the upstream.
    pub fn start(&self, headers: &mut HeaderMap) -> Span {
        let request_id = headers
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|id| is_uuid(id))
            .map(str::to_string);
        // Envoy's connection manager: the request id against the random (then overall)
        // percentage; without a UUID request id, nothing is traced.
        let decided = request_id.as_deref().is_some_and(|id| {
            let bucket = u64::from_str_radix(&id[..8], 16).unwrap_or(0) % 10_000;
            bucket < self.random && bucket < self.overall
        });
        if let Some(id) = &request_id {
            let mut id = id.clone().into_bytes();
            id[14] = if decided { b'9' } else { b'4' };
            if let Ok(value) = HeaderValue::from_bytes(&id) {
                headers.insert(REQUEST_ID, value);
            }
        }
        let (context, sampled) = match &self.provider {
            Provider::Zipkin {
                trace_id_128,
                shared_span_context,
            } => zipkin_context(headers, *trace_id_128, *shared_span_context, decided),
            Provider::OpenTelemetry => w3c_context(headers, decided),
        };
        Span { context, sampled }
    }

    /// Ends `span` with what its access log entry says of the exchange, and sends it if it
    /// is sampled. `operation` is the route's decorator operation, if it has one.
    pub fn finish(&self, span: &Span, entry: &Entry<'_>, operation: Option<&str>) {
        if !span.sampled {
            return;
        }
        let mut tags = self.tags(entry);
        // Without a decorator, Zipkin's spans are named by the host, OpenTelemetry's by the
        // connection manager's direction, as Envoy's tracers name them.
        let host = entry
            .request
            .as_ref()
            .map(|r| r.authority)
            .unwrap_or_default();
        let name = match (&self.provider, operation) {
            (_, Some(operation)) => operation,
            (Provider::Zipkin { .. }, None) => host,
            (Provider::OpenTelemetry, None) => "ingress",
        }
        .to_string();
        let start = entry.start.duration_since(UNIX_EPOCH).unwrap_or_default();
        let finished = match &self.provider {
            Provider::Zipkin {
                shared_span_context,
                ..
            } => Finished::Zipkin(zipkin_span(
                span,
                name,
                start,
                entry.duration,
                tags,
                *shared_span_context,
            )),
            Provider::OpenTelemetry => {
                // Envoy's OpenTelemetry spans carry the (empty) zone too.
                tags.push(("zone".into(), String::new()));
                Finished::OpenTelemetry(otlp_span(span, name, start, entry.duration, tags))
            }
        };
        self.reporter.push(finished);
    }

    /// Envoy's tags of a server span, then the custom ones, in that order.
    fn tags(&self, entry: &Entry<'_>) -> Vec<(String, String)> {
        let request = entry.request.as_ref();
        let header = |name: &str| {
            request
                .and_then(|r| r.headers.get(name))
                .and_then(|v| v.to_str().ok())
        };
        let mut tags: Vec<(String, String)> = Vec::new();
        let mut tag = |k: &str, v: String| tags.push((k.to_string(), v));
        if let Some(r) = request {
            let scheme = header("x-forwarded-proto").unwrap_or(entry.downstream.scheme);
            let path: String = r.path.chars().take(MAX_PATH_TAG).collect();
            tag("http.url", format!("{scheme}://{}{path}", r.authority));
            tag("http.method", r.method.to_string());
        }
        if let Some(id) = header("x-request-id") {
            tag("guid:x-request-id", id.to_string());
        }
        tag(
            "downstream_cluster",
            header("x-envoy-downstream-service-cluster")
                .unwrap_or("-")
                .to_string(),
        );
        tag(
            "user_agent",
            header("user-agent").unwrap_or("-").to_string(),
        );
        tag(
            "http.protocol",
            match entry.protocol {
                Some(http::Version::HTTP_10) => "HTTP/1.0",
                Some(http::Version::HTTP_2) => "HTTP/2",
                Some(http::Version::HTTP_3) => "HTTP/3",
                _ => "HTTP/1.1",
            }
            .to_string(),
        );
        tag("peer.address", entry.downstream.remote.ip().to_string());
        tag("request_size", entry.bytes_received.to_string());
        tag("response_size", entry.bytes_sent.to_string());
        tag("response_flags", entry.flags.to_string());
        if let Some(cluster) = entry.upstream_cluster {
            tag("upstream_cluster", cluster.to_string());
            tag("upstream_cluster.name", cluster.to_string());
        }
        tag("http.status_code", entry.status.to_string());
        if entry.status >= 500 || entry.status == 0 {
            tag("error", "true".to_string());
        }
        tag("component", "proxy".to_string());
        tag("node_id", node_id().to_string());
        for (name, value) in &self.tags {
            match value {
                TagValue::Literal(v) => tag(name, v.clone()),
                TagValue::Header(h, default) => match header(h.as_str()) {
                    Some(v) => tag(name, v.to_string()),
                    None if !default.is_empty() => tag(name, default.clone()),
                    None => {}
                },
            }
        }
        tags
    }
}

/// Writes `headers`' B3 context for a span that joins the client's (or starts a trace).
fn zipkin_context(
    headers: &mut HeaderMap,
    trace_id_128: bool,
    shared_span_context: bool,
    decided: bool,
) -> (SpanContext, bool) {
    let joined = SpanContext::b3(headers);
    // A client's sampling decision holds even without a trace to join.
    let client_sampled = match joined.as_ref() {
        Some(context) => context.sampled,
        None => sampled_header(headers),
    };
    let context = match joined {
        Some(client) if shared_span_context => client,
        Some(client) => SpanContext {
            span_id: random_id(),
            parent_id: Some(client.span_id),
            ..client
        },
        None => {
            let span_id = random_id();
            SpanContext {
                trace_id: if trace_id_128 {
                    format!("{}{}", random_id(), random_id())
                } else {
                    span_id.clone()
                },
                span_id,
                parent_id: None,
                sampled: None,
                trace_state: None,
            }
        }
    };
    let sampled = client_sampled.unwrap_or(decided);
    for (name, value) in [
        (TRACE_ID, Some(context.trace_id.as_str())),
        (SPAN_ID, Some(context.span_id.as_str())),
        (PARENT_SPAN_ID, context.parent_id.as_deref()),
        (SAMPLED, Some(if sampled { "1" } else { "0" })),
    ] {
        match value.and_then(|v| HeaderValue::from_str(v).ok()) {
            Some(v) => {
                headers.insert(name, v);
            }
            None => {
                headers.remove(name);
            }
        }
    }
    (context, sampled)
}

/// Writes `headers`' W3C context for a span that is the client span's child (or starts a
/// trace).
fn w3c_context(headers: &mut HeaderMap, decided: bool) -> (SpanContext, bool) {
    let context = match SpanContext::w3c(headers) {
        Some(client) => SpanContext {
            span_id: random_id(),
            ..client
        },
        None => SpanContext {
            trace_id: format!("{}{}", random_id(), random_id()),
            span_id: random_id(),
            parent_id: None,
            sampled: None,
            trace_state: None,
        },
    };
    let sampled = context.sampled.unwrap_or(decided);
    let parent = format!(
        "00-{}-{}-{}",
        context.trace_id,
        context.span_id,
        if sampled { "01" } else { "00" }
    );
    if let Ok(value) = HeaderValue::from_str(&parent) {
        headers.insert(TRACEPARENT, value);
    }
    // Envoy sends the client's `tracestate` on, or an empty one.
    let state = context.trace_state.as_deref().unwrap_or_default();
    headers.insert(
        TRACESTATE,
        HeaderValue::from_str(state).unwrap_or(HeaderValue::from_static("")),
    );
    (context, sampled)
}

/// A span as Zipkin's v2 JSON has it.
fn zipkin_span(
    span: &Span,
    name: String,
    start: Duration,
    duration: Duration,
    tags: Vec<(String, String)>,
    shared: bool,
) -> Value {
    let (start, duration) = (start.as_micros() as u64, duration.as_micros() as u64);
    let tags: Map<String, Value> = tags
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let mut json = json!({
        "traceId": span.context.trace_id,
        "id": span.context.span_id,
        "name": name,
        "kind": "SERVER",
        "timestamp": start,
        "duration": duration,
        "localEndpoint": {"serviceName": SERVICE_NAME, "ipv4": local_ipv4(), "port": 0},
        "annotations": [{"timestamp": start + duration, "value": "ss"}],
        "tags": tags,
    });
    if let Some(parent) = &span.context.parent_id {
        json["parentId"] = json!(parent);
    }
    if shared {
        json["shared"] = json!(true);
    }
    json
}

/// A span as OTLP has it.
fn otlp_span(
    span: &Span,
    name: String,
    start: Duration,
    duration: Duration,
    tags: Vec<(String, String)>,
) -> otlp::Span {
    use envoy_types::pb::opentelemetry::proto::common::v1::{any_value, AnyValue, KeyValue};
    let bytes = |hex: &str| {
        (0..hex.len() / 2)
            .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
            .collect::<Vec<u8>>()
    };
    let start = start.as_nanos() as u64;
    // A failed exchange's span has the error status (and its `error` tag).
    let failed = tags.iter().any(|(k, v)| k == "error" && v == "true");
    otlp::Span {
        trace_id: bytes(&span.context.trace_id),
        span_id: bytes(&span.context.span_id),
        trace_state: span.context.trace_state.clone().unwrap_or_default(),
        parent_span_id: span
            .context
            .parent_id
            .as_deref()
            .map(bytes)
            .unwrap_or_default(),
        name,
        kind: otlp::SPAN_KIND_SERVER,
        start_time_unix_nano: start,
        end_time_unix_nano: start + duration.as_nanos() as u64,
        attributes: tags
            .into_iter()
            .map(|(key, value)| KeyValue {
                key,
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(value)),
                }),
                ..Default::default()
            })
            .collect(),
        status: failed.then(|| otlp::Status {
            message: String::new(),
            code: otlp::STATUS_CODE_ERROR,
        }),
        ..Default::default()
    }
}

/// A span ready to go.
#[derive(Debug)]
enum Finished {
    Zipkin(Value),
    OpenTelemetry(otlp::Span),
}

/// Where a tracer's spans go.
#[derive(Debug)]
enum Sink {
    /// A Zipkin collector's endpoint on a cluster.
    Zipkin {
        cluster: String,
        endpoint: String,
        host: String,
    },
    /// An OTLP collector's gRPC service on a cluster, with the service name its spans are of.
    OpenTelemetry {
        cluster: String,
        service_name: String,
    },
}

/// Sends spans to the collector cluster: five at a time, or what has waited five seconds.
#[derive(Debug)]
struct Reporter {
    upstreams: crate::filter::Upstreams,
    sink: Sink,
    pending: Mutex<Vec<Finished>>,
}

impl Reporter {
    fn push(self: &Arc<Self>, span: Finished) {
        let (batch, first) = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.push(span);
            if pending.len() >= FLUSH_SPANS {
                (std::mem::take(&mut *pending), false)
            } else {
                (Vec::new(), pending.len() == 1)
            }
        };
        // Spans end where their answers end, in a runtime but for a connection dropped as the
        // process stops; those are not sent.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if !batch.is_empty() {
            self.send(batch);
        } else if first {
            // The first span of a batch starts its clock.
            let reporter = self.clone();
            runtime.spawn(async move {
                tokio::time::sleep(FLUSH_INTERVAL).await;
                let batch = std::mem::take(
                    &mut *reporter.pending.lock().unwrap_or_else(|p| p.into_inner()),
                );
                if !batch.is_empty() {
                    reporter.send(batch);
                }
            });
        }
    }

    fn send(self: &Arc<Self>, batch: Vec<Finished>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let reporter = self.clone();
        runtime.spawn(async move {
            let outcome = match &reporter.sink {
                Sink::Zipkin {
                    cluster,
                    endpoint,
                    host,
                } => reporter.send_zipkin(cluster, endpoint, host, batch).await,
                Sink::OpenTelemetry {
                    cluster,
                    service_name,
                } => reporter.send_otlp(cluster, service_name, batch).await,
            };
            if let Err(e) = outcome {
                tracing::debug!("spans not sent: {e}");
            }
        });
    }

    async fn send_zipkin(
        &self,
        cluster: &str,
        endpoint: &str,
        host: &str,
        batch: Vec<Finished>,
    ) -> Result<(), String> {
        let spans: Vec<Value> = batch
            .into_iter()
            .filter_map(|f| match f {
                Finished::Zipkin(v) => Some(v),
                Finished::OpenTelemetry(_) => None,
            })
            .collect();
        let request = http::Request::post(endpoint)
            .header(http::header::HOST, host)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Body::from(Value::Array(spans).to_string()))
            .map_err(|e| e.to_string())?;
        let status = self.upstreams.send(cluster, request).await?.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!(
                "the Zipkin collector of {cluster:?} answered {status}"
            ))
        }
    }

    async fn send_otlp(
        &self,
        cluster: &str,
        service_name: &str,
        batch: Vec<Finished>,
    ) -> Result<(), String> {
        use envoy_types::pb::opentelemetry::proto::common::v1::{any_value, AnyValue, KeyValue};
        let spans: Vec<otlp::Span> = batch
            .into_iter()
            .filter_map(|f| match f {
                Finished::OpenTelemetry(s) => Some(s),
                Finished::Zipkin(_) => None,
            })
            .collect();
        let request = otlp::ExportTraceServiceRequest {
            resource_spans: vec![otlp::ResourceSpans {
                resource: Some(otlp::Resource {
                    attributes: vec![KeyValue {
                        key: "service.name".into(),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(service_name.into())),
                        }),
                        ..Default::default()
                    }],
                    dropped_attributes_count: 0,
                }),
                scope_spans: vec![otlp::ScopeSpans {
                    scope: None,
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        let mut grpc =
            tonic::client::Grpc::new(crate::filter::ClusterChannel::new(&self.upstreams, cluster));
        grpc.ready()
            .await
            .map_err(|e| format!("the OpenTelemetry collector {cluster:?}: {e}"))?;
        let codec = tonic_prost::ProstCodec::<
            otlp::ExportTraceServiceRequest,
            otlp::ExportTraceServiceResponse,
        >::default();
        grpc.unary(
            tonic::Request::new(request),
            http::uri::PathAndQuery::from_static(otlp::EXPORT_PATH),
            codec,
        )
        .await
        .map(|_| ())
        .map_err(|e| format!("the OpenTelemetry collector {cluster:?}: {e}"))
    }
}

/// Whether `id` is a UUID in its text form (36 characters, dashes at 8, 13, 18 and 23).
fn is_uuid(id: &str) -> bool {
    id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// A random, non-zero 64-bit id in 16 hex digits.
fn random_id() -> String {
    format!("{:016x}", fastrand::u64(1..))
}

/// The proxy's service name in its Zipkin spans (Envoy's is its node's cluster; Gloo names it
/// `gateway`).
const SERVICE_NAME: &str = "gateway";

/// The proxy's node id in its spans: this host's name.
fn node_id() -> &'static str {
    static NODE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NODE.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "gloo".to_string())
    })
}

/// The address the proxy reaches the rest of the network from (no packet is sent to find
/// it), as Envoy's local address.
fn local_ipv4() -> &'static str {
    static IP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    IP.get_or_init(|| {
        std::net::UdpSocket::bind("0.0.0.0:0")
            .and_then(|s| {
                s.connect("192.0.2.1:9")?;
                s.local_addr()
            })
            .map(|a| a.ip().to_string())
            .unwrap_or_else(|_| "127.0.0.1".to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_told_from_other_ids() {
        assert!(is_uuid("d3b54725-0fd8-48f4-9db7-b9dda144d968"));
        assert!(!is_uuid("d3b54725-0fd8-48f4-9db7-b9dda144d96"));
        assert!(!is_uuid("not-a-uuid"));
    }
}
