//! Tracing as Envoy's Zipkin tracer does it (`envoy.tracers.zipkin`, JSON spans to the v2
//! API): each request the connection manager samples gets a server span, whose context goes
//! upstream in B3 headers (`x-b3-traceid`, `x-b3-spanid`, `x-b3-parentspanid`,
//! `x-b3-sampled`) and which is sent to the collector cluster, five spans a batch or every
//! five seconds, when its answer has gone.
//!
//! A span carries Envoy's tags (`http.url`, `http.method`, `http.status_code`,
//! `upstream_cluster`, `response_flags`, `guid:x-request-id`, ...) and the connection
//! manager's custom tags (request headers, literals, environment variables). Its name is the
//! route's decorator operation, else the request's host. A client's B3 context is joined (the
//! span shares the client's span id, as Envoy's `shared_span_context` does by default), and
//! its `x-b3-sampled` decides; otherwise the request id decides against the random sampling
//! percentage, as Envoy's UUID request id extension does, and the request id then says why
//! (its 15th character: `9` sampled, `4` not).
//!
//! ```
//! use gloo_proxy::trace::{SpanContext, ZipkinTracer};
//! use http::HeaderMap;
//!
//! // A client that is part of a trace already: the span joins it.
//! let mut headers = HeaderMap::new();
//! headers.insert("x-b3-traceid", "463ac35c9f6413ad".parse().unwrap());
//! headers.insert("x-b3-spanid", "a2fb4a1d1a96d312".parse().unwrap());
//! headers.insert("x-b3-sampled", "1".parse().unwrap());
//! let context = SpanContext::joined(&headers).expect("a B3 context");
//! assert_eq!(context.trace_id, "463ac35c9f6413ad");
//! assert_eq!(context.span_id, "a2fb4a1d1a96d312");
//! assert_eq!(context.sampled, Some(true));
//! # let _ = std::any::type_name::<ZipkinTracer>();
//! ```

use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use envoy_types::pb::envoy::config::trace::v3::{zipkin_config, ZipkinConfig};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::Tracing;
use envoy_types::pb::envoy::r#type::tracing::v3::custom_tag;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use prost::Message;
use serde_json::{json, Map, Value};

use crate::access_log::Entry;
use crate::body::Body;

/// The Zipkin tracer's name in a connection manager's `tracing.provider`.
pub const ZIPKIN: &str = "envoy.tracers.zipkin";
const ZIPKIN_TYPE: &str = "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig";

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

/// Where a custom tag's value comes from.
#[derive(Debug, Clone)]
enum TagValue {
    /// A request header, or the default when it is absent (no tag without one).
    Header(HeaderName, String),
    /// A fixed value.
    Literal(String),
}

/// The B3 context of a request's span.
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
}

impl SpanContext {
    /// The B3 context a client sent, if it sent a trace and a span id.
    pub fn joined(headers: &HeaderMap) -> Option<SpanContext> {
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

/// Envoy's Zipkin tracer for one connection manager.
#[derive(Debug)]
pub struct ZipkinTracer {
    /// Random sampling, in hundredths of a percent.
    random: u64,
    /// Overall sampling, in hundredths of a percent.
    overall: u64,
    trace_id_128: bool,
    shared_span_context: bool,
    tags: Vec<(String, TagValue)>,
    reporter: Arc<Reporter>,
}

impl ZipkinTracer {
    /// The tracer a connection manager's `tracing` asks for: `None` (with a warning) for a
    /// tracer other than Zipkin's JSON one, which gloo-proxy does not have.
    pub fn compile(
        tracing: &Tracing,
        upstreams: &crate::filter::Upstreams,
    ) -> Result<Option<Arc<ZipkinTracer>>, String> {
        let Some(provider) = &tracing.provider else {
            return Ok(None);
        };
        use envoy_types::pb::envoy::config::trace::v3::tracing::http::ConfigType;
        let config = match &provider.config_type {
            Some(ConfigType::TypedConfig(any)) if any.type_url == ZIPKIN_TYPE => {
                ZipkinConfig::decode(any.value.as_slice())
                    .map_err(|e| format!("tracing.provider: invalid Zipkin config: {e}"))?
            }
            _ => {
                tracing::warn!(
                    "tracing is not applied: gloo-proxy has no {:?} tracer (Zipkin's is the one it has); no spans are sent",
                    provider.name
                );
                return Ok(None);
            }
        };
        if zipkin_config::CollectorEndpointVersion::try_from(config.collector_endpoint_version)
            != Ok(zipkin_config::CollectorEndpointVersion::HttpJson)
        {
            tracing::warn!("tracing is not applied: gloo-proxy sends Zipkin spans as JSON (HTTP_JSON) only; no spans are sent");
            return Ok(None);
        }
        if config.collector_cluster.is_empty() || config.collector_endpoint.is_empty() {
            return Err(
                "tracing.provider: a Zipkin tracer needs a collector cluster and endpoint".into(),
            );
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
        let host = if config.collector_hostname.is_empty() {
            config.collector_cluster.clone()
        } else {
            config.collector_hostname.clone()
        };
        Ok(Some(Arc::new(ZipkinTracer {
            random: per_10k(tracing.random_sampling.as_ref()),
            overall: per_10k(tracing.overall_sampling.as_ref()),
            trace_id_128: config.trace_id_128bit,
            shared_span_context: config.shared_span_context.as_ref().is_none_or(|b| b.value),
            tags,
            reporter: Arc::new(Reporter {
                upstreams: upstreams.clone(),
                cluster: config.collector_cluster,
                endpoint: config.collector_endpoint,
                host,
                pending: Mutex::new(Vec::new()),
            }),
        })))
    }

    /// Starts the span of a request: decides whether it is sampled, notes why in its
    /// `x-request-id`, and writes its B3 context into its headers, for the upstream.
    pub fn start(&self, headers: &mut HeaderMap) -> Span {
        let joined = SpanContext::joined(headers);
        // A client's sampling decision holds even without a trace to join.
        let client_sampled = match joined.as_ref() {
            Some(context) => context.sampled,
            None => sampled_header(headers),
        };
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
        let context = match joined {
            Some(client) if self.shared_span_context => SpanContext {
                sampled: client.sampled,
                ..client
            },
            Some(client) => SpanContext {
                span_id: random_id(),
                parent_id: Some(client.span_id),
                ..client
            },
            None => {
                let span_id = random_id();
                SpanContext {
                    trace_id: if self.trace_id_128 {
                        format!("{}{}", random_id(), random_id())
                    } else {
                        span_id.clone()
                    },
                    span_id,
                    parent_id: None,
                    sampled: None,
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
        Span { context, sampled }
    }

    /// Ends `span` with what its access log entry says of the exchange, and sends it if it
    /// is sampled. `operation` is the route's decorator operation, if it has one.
    pub fn finish(&self, span: &Span, entry: &Entry<'_>, operation: Option<&str>) {
        if !span.sampled {
            return;
        }
        let value = self.span_json(span, entry, operation);
        self.reporter.push(value);
    }

    fn span_json(&self, span: &Span, entry: &Entry<'_>, operation: Option<&str>) -> Value {
        let micros = |d: Duration| d.as_micros() as u64;
        let start = micros(entry.start.duration_since(UNIX_EPOCH).unwrap_or_default());
        let duration = micros(entry.duration);
        let request = entry.request.as_ref();
        let header = |name: &str| {
            request
                .and_then(|r| r.headers.get(name))
                .and_then(|v| v.to_str().ok())
        };
        let host = request.map(|r| r.authority).unwrap_or_default();
        let mut tags = Map::new();
        let mut tag = |k: &str, v: String| {
            tags.insert(k.to_string(), Value::String(v));
        };
        if let Some(r) = request {
            let scheme = header("x-forwarded-proto").unwrap_or(entry.downstream.scheme);
            let path: String = r.path.chars().take(MAX_PATH_TAG).collect();
            tag("http.url", format!("{scheme}://{host}{path}"));
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
                http::Version::HTTP_10 => "HTTP/1.0",
                http::Version::HTTP_2 => "HTTP/2",
                http::Version::HTTP_3 => "HTTP/3",
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
        let name = match operation {
            Some(op) => op.to_string(),
            None => host.to_string(),
        };
        let mut span_json = json!({
            "traceId": span.context.trace_id,
            "id": span.context.span_id,
            "name": name,
            "kind": "SERVER",
            "timestamp": start,
            "duration": duration,
            "localEndpoint": {"serviceName": service_name(), "ipv4": local_ipv4(), "port": 0},
            "annotations": [{"timestamp": start + duration, "value": "ss"}],
            "tags": tags,
        });
        if let Some(parent) = &span.context.parent_id {
            span_json["parentId"] = json!(parent);
        }
        if self.shared_span_context {
            span_json["shared"] = json!(true);
        }
        span_json
    }
}

/// Sends spans to the collector cluster: five at a time, or what has waited five seconds.
#[derive(Debug)]
struct Reporter {
    upstreams: crate::filter::Upstreams,
    cluster: String,
    endpoint: String,
    host: String,
    pending: Mutex<Vec<Value>>,
}

impl Reporter {
    fn push(self: &Arc<Self>, span: Value) {
        let (batch, first) = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.push(span);
            if pending.len() >= FLUSH_SPANS {
                (std::mem::take(&mut *pending), false)
            } else {
                (Vec::new(), pending.len() == 1)
            }
        };
        if !batch.is_empty() {
            self.send(batch);
        } else if first {
            // The first span of a batch starts its clock.
            let reporter = self.clone();
            tokio::spawn(async move {
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

    fn send(self: &Arc<Self>, batch: Vec<Value>) {
        let reporter = self.clone();
        tokio::spawn(async move {
            let body = Value::Array(batch).to_string();
            let request = http::Request::post(reporter.endpoint.as_str())
                .header(http::header::HOST, reporter.host.as_str())
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Body::from(body));
            let outcome = match request {
                Ok(request) => reporter
                    .upstreams
                    .send(&reporter.cluster, request)
                    .await
                    .map(|r| r.status()),
                Err(e) => Err(e.to_string()),
            };
            match outcome {
                Ok(status) if status.is_success() => {}
                Ok(status) => {
                    tracing::debug!(cluster = %reporter.cluster, "Zipkin collector answered {status}")
                }
                Err(e) => tracing::debug!(cluster = %reporter.cluster, "spans not sent: {e}"),
            }
        });
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

/// The proxy's service name in its spans (Envoy's is its node's cluster; Gloo names it
/// `gateway`).
fn service_name() -> &'static str {
    "gateway"
}

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
