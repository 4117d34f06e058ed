//! Tracing through gloo and through Envoy 1.40 on the same Gloo config: a Gateway whose
//! `httpConnectionManagerSettings.tracing` names a Zipkin collector Upstream, and a route
//! with a `routeDescriptor`. The spans each collector receives and the trace context each
//! backend receives are compared, ids and times aside.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::time::Duration;

use serde_json::Value;
use support::{free_port, http_raw, poll, Backend, LogsOnPanic};

/// The Zipkin tracer's settings, to the collector Upstream `zipkin`.
const ZIPKIN: &str = "zipkinConfig:
            collectorUpstreamRef: {name: zipkin, namespace: gloo-system}
            collectorEndpoint: /api/v2/spans
            collectorEndpointVersion: HTTP_JSON";

/// The OpenTelemetry tracer's settings, to the collector Upstream `zipkin` (which then
/// speaks gRPC).
const OPENTELEMETRY: &str = "openTelemetryConfig:
            collectorUpstreamRef: {name: zipkin, namespace: gloo-system}";

fn config(port: u16, app: u16, collector: u16, closed: u16, tracer: &str) -> String {
    let http2 = if tracer == OPENTELEMETRY {
        "\n  useHttp2: true"
    } else {
        ""
    };
    format!(
        r#"apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: app, namespace: gloo-system}}
spec:
  static: {{hosts: [{{addr: 127.0.0.1, port: {app}}}]}}
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: down, namespace: gloo-system}}
spec:
  static: {{hosts: [{{addr: 127.0.0.1, port: {closed}}}]}}
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: zipkin, namespace: gloo-system}}
spec:{http2}
  static: {{hosts: [{{addr: 127.0.0.1, port: {collector}}}]}}
---
apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {{name: traced, namespace: gloo-system}}
spec:
  bindAddress: 127.0.0.1
  bindPort: {port}
  httpGateway:
    options:
      httpConnectionManagerSettings:
        tracing:
          requestHeadersForTags: [x-tenant]
          literalsForTags: [{{tag: team, value: edge}}]
          {tracer}
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: traced, namespace: gloo-system}}
spec:
  virtualHost:
    domains: ['*']
    routes:
    - matchers: [{{prefix: /checkout}}]
      routeAction: {{single: {{upstream: {{name: app, namespace: gloo-system}}}}}}
      options:
        tracing: {{routeDescriptor: checkout}}
    - matchers: [{{prefix: /direct}}]
      directResponseAction: {{status: 202, body: accepted}}
    - matchers: [{{prefix: /down}}]
      routeAction: {{single: {{upstream: {{name: down, namespace: gloo-system}}}}}}
    - matchers: [{{prefix: /}}]
      routeAction: {{single: {{upstream: {{name: app, namespace: gloo-system}}}}}}
"#
    )
}

/// The client trace ids the requests carry (kept as they are when spans are compared).
const GIVEN: [&str; 8] = [
    "463ac35c9f6413ad",
    "563ac35c9f6413ad",
    "a2fb4a1d1a96d312",
    "b2fb4a1d1a96d312",
    "0020000000000001",
    "4bf92f3577b34da6a3ce929d0e0e4736",
    "00f067aa0ba902b7",
    "5bf92f3577b34da6a3ce929d0e0e4736",
];

/// The requests, each with the headers that vary it: a decorated route, a plain one, a
/// direct response, an upstream that is down, a client in a sampled trace, a client that
/// said not to sample (no span), and a sixth span, which waits for the flush interval. The
/// clients' trace context is B3 for Zipkin, W3C for OpenTelemetry.
fn requests(tracer: &str) -> [(&'static str, &'static str); 7] {
    let (joined, unsampled) = if tracer == OPENTELEMETRY {
        (
            "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\ntracestate: vendor=1\r\n",
            "traceparent: 00-5bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00\r\n",
        )
    } else {
        (
            "x-b3-traceid: 463ac35c9f6413ad\r\nx-b3-spanid: a2fb4a1d1a96d312\r\nx-b3-parentspanid: 0020000000000001\r\nx-b3-sampled: 1\r\n",
            "x-b3-traceid: 563ac35c9f6413ad\r\nx-b3-spanid: b2fb4a1d1a96d312\r\nx-b3-sampled: 0\r\n",
        )
    };
    [
        ("/checkout/1", "x-tenant: t1\r\nuser-agent: probe\r\n"),
        ("/other?q=1", "x-tenant: t2\r\n"),
        ("/direct", ""),
        ("/down", "user-agent: probe\r\n"),
        ("/joined", joined),
        ("/unsampled", unsampled),
        ("/late", ""),
    ]
}

/// An id as compared: a client's as it is, the trace id's relation, or its shape.
fn id_shape(id: &str, trace: Option<&str>) -> String {
    if GIVEN.contains(&id) || id.is_empty() || id == "-" {
        id.to_string()
    } else if Some(id) == trace {
        "<the trace id>".into()
    } else if matches!(id.len(), 16 | 32) && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        format!("<{} hex>", id.len())
    } else {
        format!("<malformed {id}>")
    }
}

/// A span without what differs by nature between two proxies or two runs (its times, the
/// generated ids, the node): the generated ids are replaced by their shape and how they
/// relate.
fn comparable(span: &Value) -> Value {
    let mut span = span.clone();
    let trace = span["traceId"].as_str().unwrap_or_default().to_string();
    for key in ["id", "parentId"] {
        if let Some(id) = span.get(key).and_then(Value::as_str).map(str::to_string) {
            span[key] = Value::from(id_shape(&id, Some(&trace)));
        }
    }
    span["traceId"] = Value::from(id_shape(&trace, None));
    let object = span.as_object_mut().expect("a span is an object");
    for key in ["timestamp", "duration", "annotations"] {
        object.remove(key);
    }
    if let Some(endpoint) = object
        .get_mut("localEndpoint")
        .and_then(Value::as_object_mut)
    {
        endpoint.remove("ipv4");
    }
    if let Some(tags) = object.get_mut("tags").and_then(Value::as_object_mut) {
        tags.remove("node_id");
        if let Some(id) = tags.get_mut("guid:x-request-id") {
            let text = id.as_str().unwrap_or_default();
            // The request id says why it was traced: `9`, sampled.
            *id = Value::from(format!("<uuid, trace reason {:?}>", text.chars().nth(14)));
        }
    }
    span
}

/// What a backend saw of the trace context, generated ids replaced by their shape and how
/// they relate (the clients' ids are kept).
fn context_seen(seen: &support::Seen) -> String {
    let h = |name: &str| seen.header(name).unwrap_or("-").to_string();
    let trace = h("x-b3-traceid");
    let traceparent = h("traceparent");
    let w3c: Vec<&str> = traceparent.split('-').collect();
    let w3c = match w3c.as_slice() {
        [version, trace, span, flags] => format!(
            "{version}-{}-{}-{flags}",
            id_shape(trace, None),
            id_shape(span, Some(trace))
        ),
        _ => traceparent.clone(),
    };
    format!(
        "{} traceid={} spanid={} parent={} sampled={} traceparent={w3c} tracestate={} request-id reason={:?}",
        seen.target,
        id_shape(&trace, None),
        id_shape(&h("x-b3-spanid"), Some(&trace)),
        id_shape(&h("x-b3-parentspanid"), Some(&trace)),
        h("x-b3-sampled"),
        h("tracestate"),
        h("x-request-id").chars().nth(14),
    )
}

/// An OTLP collector speaking gRPC over cleartext HTTP/2, keeping the spans it receives as
/// Zipkin-like JSON (`traceId`, `id`, `parentId`, `name`, `kind`, `tags`, plus the span's
/// `status` and its resource's `service.name`), so they compare as Zipkin's do.
#[derive(Clone)]
struct OtlpCollector {
    port: u16,
    spans: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
}

impl OtlpCollector {
    fn start() -> OtlpCollector {
        use gloo_proxy::trace::otlp::{ExportTraceServiceRequest, ExportTraceServiceResponse};
        use http_body_util::BodyExt;
        use prost::Message;
        let spans: std::sync::Arc<std::sync::Mutex<Vec<Value>>> = Default::default();
        let kept = spans.clone();
        let port = support::serve_on_thread("the OTLP collector", move |stream| {
            let kept = kept.clone();
            async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let kept = kept.clone();
                        async move {
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let message = body.get(5..).unwrap_or_default();
                            let hex =
                                |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
                            if let Ok(export) = ExportTraceServiceRequest::decode(message) {
                                for resource in export.resource_spans {
                                    let service = resource
                                        .resource
                                        .iter()
                                        .flat_map(|r| r.attributes.iter())
                                        .find(|a| a.key == "service.name")
                                        .and_then(|a| a.value.as_ref())
                                        .map(|v| format!("{:?}", v.value))
                                        .unwrap_or_default();
                                    for scope in resource.scope_spans {
                                        for span in scope.spans {
                                            let tags: serde_json::Map<String, Value> = span.attributes.iter().map(|a| {
                                        let value = match a.value.as_ref().and_then(|v| v.value.as_ref()) {
                                            Some(envoy_types::pb::opentelemetry::proto::common::v1::any_value::Value::StringValue(s)) => Value::from(s.clone()),
                                            other => Value::from(format!("{other:?}")),
                                        };
                                        (a.key.clone(), value)
                                    }).collect();
                                            let mut json = serde_json::json!({
                                                "traceId": hex(&span.trace_id),
                                                "id": hex(&span.span_id),
                                                "name": span.name,
                                                "kind": span.kind,
                                                "tags": tags,
                                                "status": span.status.as_ref().map(|s| (s.code, s.message.clone())),
                                                "traceState": span.trace_state,
                                                "service": service,
                                            });
                                            if !span.parent_span_id.is_empty() {
                                                json["parentId"] =
                                                    Value::from(hex(&span.parent_span_id));
                                            }
                                            kept.lock()
                                                .unwrap_or_else(|p| p.into_inner())
                                                .push(json);
                                        }
                                    }
                                }
                            }
                            let reply = ExportTraceServiceResponse::default().encode_to_vec();
                            let mut framed = vec![0u8];
                            framed.extend_from_slice(&(reply.len() as u32).to_be_bytes());
                            framed.extend_from_slice(&reply);
                            let mut trailers = http::HeaderMap::new();
                            trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                            let frames = vec![
                                Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(
                                    bytes::Bytes::from(framed),
                                )),
                                Ok(hyper::body::Frame::trailers(trailers)),
                            ];
                            let body =
                                http_body_util::StreamBody::new(futures_util::stream::iter(frames));
                            let response = hyper::Response::builder()
                                .header("content-type", "application/grpc")
                                .body(body)
                                .expect("a response");
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    },
                );
                let _ =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
            }
        });
        OtlpCollector { port, spans }
    }
}

/// Where a side's spans arrive.
enum Collector {
    Zipkin(Backend),
    Otlp(OtlpCollector),
}

impl Collector {
    fn port(&self) -> u16 {
        match self {
            Collector::Zipkin(b) => b.port,
            Collector::Otlp(c) => c.port,
        }
    }

    fn spans(&self) -> Vec<Value> {
        match self {
            Collector::Zipkin(b) => b
                .seen()
                .iter()
                .filter(|r| r.target == "/api/v2/spans")
                .flat_map(|r| {
                    serde_json::from_slice::<Vec<Value>>(&r.body).unwrap_or_else(|e| {
                        vec![Value::from(format!(
                            "unreadable batch: {e}: {}",
                            String::from_utf8_lossy(&r.body)
                        ))]
                    })
                })
                .collect(),
            Collector::Otlp(c) => c.spans.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }
}

struct Side {
    name: &'static str,
    port: u16,
    app: Backend,
    collector: Collector,
}

/// Zipkin: JSON spans to the collector's endpoint, B3 context upstream.
#[test]
fn zipkin_spans_and_b3_context_match_envoy() {
    spans_and_context_match_envoy(ZIPKIN);
}

/// OpenTelemetry: OTLP spans over gRPC, W3C context upstream.
#[test]
fn opentelemetry_spans_and_w3c_context_match_envoy() {
    spans_and_context_match_envoy(OPENTELEMETRY);
}

fn spans_and_context_match_envoy(tracer: &str) {
    let tmp = tempfile::tempdir().expect("tmp");
    let closed = free_port();
    let side = |name| Side {
        name,
        port: free_port(),
        app: Backend::start("app"),
        collector: if tracer == OPENTELEMETRY {
            Collector::Otlp(OtlpCollector::start())
        } else {
            Collector::Zipkin(Backend::start("zipkin"))
        },
    };
    let (envoy_side, gloo_side) = (side("envoy"), side("gloo"));
    for s in [&envoy_side, &gloo_side] {
        let dir = tmp.path().join(s.name).join("config");
        fs::create_dir_all(&dir).expect("config dir");
        fs::write(
            dir.join("gloo.yaml"),
            config(s.port, s.app.port, s.collector.port(), closed, tracer),
        )
        .expect("write config");
    }
    let envoy_dir = tmp.path().join("envoy");
    let gloo_dir = tmp.path().join("gloo");
    let both = support::SideBySide::start(&envoy_dir, &gloo_dir);
    let _logs = LogsOnPanic(&gloo_dir.join("config"), both.with(&[]));
    // A warm-up request that is not sampled (the client says so), so it makes no span.
    let warm = if tracer == OPENTELEMETRY {
        "GET /direct HTTP/1.1\r\nHost: warm.example\r\ntraceparent: 00-6bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00\r\nConnection: close\r\n\r\n"
    } else {
        "GET /direct HTTP/1.1\r\nHost: warm.example\r\nx-b3-sampled: 0\r\nConnection: close\r\n\r\n"
    };
    for s in [&envoy_side, &gloo_side] {
        poll(&format!("{} to serve", s.name), || {
            let r = http_raw(s.port, warm.as_bytes(), false).map_err(|e| e.to_string())?;
            (r.status == 202)
                .then_some(())
                .ok_or(format!("{}", r.status))
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }
    for s in [&envoy_side, &gloo_side] {
        for (path, extra) in requests(tracer) {
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: shop.example\r\n{extra}Connection: close\r\n\r\n"
            );
            let r = http_raw(s.port, request.as_bytes(), false);
            eprintln!("{} {path}: {:?}", s.name, r.map(|r| r.status));
        }
    }
    // Five spans go at once, the sixth after the flush interval.
    let spans = |s: &Side| s.collector.spans();
    let arrived = |n: usize| {
        let counts = (spans(&envoy_side).len(), spans(&gloo_side).len());
        (counts.0 >= n && counts.1 >= n)
            .then_some(())
            .ok_or(format!("{counts:?}"))
    };
    let _ = poll("the first five spans to arrive", || arrived(5));
    // The sixth waits for the flush interval (five seconds).
    std::thread::sleep(Duration::from_secs(6));
    let _ = poll("the sixth span to arrive", || arrived(6));
    let mut mismatches = Vec::new();
    let by_url = |s: &Side| -> BTreeMap<String, Value> {
        spans(s)
            .iter()
            .map(|span| {
                let key = span["tags"]["http.url"].as_str().unwrap_or("?").to_string();
                (key, comparable(span))
            })
            .collect()
    };
    let (envoy_spans, gloo_spans) = (by_url(&envoy_side), by_url(&gloo_side));
    eprintln!("envoy spans: {envoy_spans:#?}\ngloo spans: {gloo_spans:#?}");
    if envoy_spans.len() != 6 {
        mismatches.push(format!(
            "Envoy sent {} spans, not 6 (the premise)",
            envoy_spans.len()
        ));
    }
    for url in envoy_spans
        .keys()
        .chain(gloo_spans.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        if envoy_spans.get(url) != gloo_spans.get(url) {
            mismatches.push(format!(
                "span of {url}:\n  envoy: {}\n  gloo:  {}",
                envoy_spans
                    .get(url)
                    .map_or("(none)".into(), Value::to_string),
                gloo_spans
                    .get(url)
                    .map_or("(none)".into(), Value::to_string)
            ));
        }
    }
    let contexts = |s: &Side| -> Vec<String> {
        let mut seen: Vec<String> = s
            .app
            .seen()
            .iter()
            .filter(|r| r.header("host") == Some("shop.example"))
            .map(context_seen)
            .collect();
        seen.sort();
        seen
    };
    let (envoy_contexts, gloo_contexts) = (contexts(&envoy_side), contexts(&gloo_side));
    eprintln!("envoy contexts: {envoy_contexts:#?}\ngloo contexts: {gloo_contexts:#?}");
    if envoy_contexts != gloo_contexts {
        mismatches.push(format!(
            "trace context upstream:\n  envoy: {envoy_contexts:?}\n  gloo:  {gloo_contexts:?}"
        ));
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
