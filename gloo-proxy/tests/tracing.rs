//! Tracing through gloo and through Envoy 1.40 on the same Gloo config: a Gateway whose
//! `httpConnectionManagerSettings.tracing` names a Zipkin collector Upstream, and a route
//! with a `routeDescriptor`. The spans each collector receives and the trace context each
//! backend receives are compared, ids and times aside.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::time::Duration;

use serde_json::Value;
use support::{free_port, gloo_run, http_raw, poll, Backend, LogsOnPanic};

fn config(port: u16, app: u16, collector: u16, closed: u16) -> String {
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
spec:
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
          zipkinConfig:
            collectorUpstreamRef: {{name: zipkin, namespace: gloo-system}}
            collectorEndpoint: /api/v2/spans
            collectorEndpointVersion: HTTP_JSON
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

/// The requests, each with the headers that vary it: a decorated route, a plain one, a
/// direct response, an upstream that is down, a client in a sampled trace, a client that
/// said not to sample (no span), and a sixth span, which waits for the flush interval.
const REQUESTS: [(&str, &str); 7] = [
    ("/checkout/1", "x-tenant: t1\r\nuser-agent: probe\r\n"),
    ("/other?q=1", "x-tenant: t2\r\n"),
    ("/direct", ""),
    ("/down", "user-agent: probe\r\n"),
    (
        "/joined",
        "x-b3-traceid: 463ac35c9f6413ad\r\nx-b3-spanid: a2fb4a1d1a96d312\r\nx-b3-parentspanid: 0020000000000001\r\nx-b3-sampled: 1\r\n",
    ),
    (
        "/unsampled",
        "x-b3-traceid: 563ac35c9f6413ad\r\nx-b3-spanid: b2fb4a1d1a96d312\r\nx-b3-sampled: 0\r\n",
    ),
    // The sixth span: sent when the flush interval has passed.
    ("/late", ""),
];

/// A span without what differs by nature between two proxies or two runs (its times, the
/// generated ids, the node): the generated ids are replaced by whether they are well formed
/// and how they relate.
fn comparable(span: &Value) -> Value {
    let mut span = span.clone();
    let trace = span["traceId"].as_str().unwrap_or_default().to_string();
    let id = span["id"].as_str().unwrap_or_default().to_string();
    let joined = trace == "463ac35c9f6413ad";
    if !joined {
        let hex16 = |s: &str| s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit());
        span["traceId"] = Value::from(if hex16(&trace) {
            "<16 hex>"
        } else {
            "<malformed>"
        });
        span["id"] = Value::from(if id == trace {
            "<the trace id>"
        } else {
            "<other>"
        });
    }
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
    let given = [
        "463ac35c9f6413ad",
        "563ac35c9f6413ad",
        "a2fb4a1d1a96d312",
        "b2fb4a1d1a96d312",
        "0020000000000001",
        "-",
    ];
    let shape = |s: &str, trace: Option<&str>| {
        if given.contains(&s) {
            s.to_string()
        } else if Some(s) == trace {
            "<the trace id>".into()
        } else if s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            "<16 hex>".into()
        } else {
            format!("<malformed {s}>")
        }
    };
    format!(
        "{} traceid={} spanid={} parent={} sampled={} request-id reason={:?}",
        seen.target,
        shape(&trace, None),
        shape(&h("x-b3-spanid"), Some(&trace)),
        shape(&h("x-b3-parentspanid"), Some(&trace)),
        h("x-b3-sampled"),
        h("x-request-id").chars().nth(14),
    )
}

struct Side {
    name: &'static str,
    port: u16,
    app: Backend,
    collector: Backend,
}

#[test]
fn zipkin_spans_and_b3_context_match_envoy() {
    let tmp = tempfile::tempdir().expect("tmp");
    let closed = free_port();
    let side = |name| Side {
        name,
        port: free_port(),
        app: Backend::start("app"),
        collector: Backend::start("zipkin"),
    };
    let (envoy_side, gloo_side) = (side("envoy"), side("gloo"));
    for s in [&envoy_side, &gloo_side] {
        let dir = tmp.path().join(s.name).join("config");
        fs::create_dir_all(&dir).expect("config dir");
        fs::write(
            dir.join("gloo.yaml"),
            config(s.port, s.app.port, s.collector.port, closed),
        )
        .expect("write config");
    }
    let envoy_dir = tmp.path().join("envoy");
    let gloo_dir = tmp.path().join("gloo");
    let (xds, envoy_admin, gloo_admin) = (free_port(), free_port(), free_port());
    let control_plane = support::control_plane(&envoy_dir.join("config"), xds, None, &envoy_dir);
    let envoy = support::spawn_envoy(support::Mode::Delta, xds, envoy_admin, &envoy_dir);
    let gloo = gloo_run(&gloo_dir.join("config"), gloo_admin, &gloo_dir);
    let _logs = LogsOnPanic(
        &gloo_dir.join("config"),
        vec![&gloo, &envoy, &control_plane],
    );
    for s in [&envoy_side, &gloo_side] {
        poll(&format!("{} to serve", s.name), || {
            let r = http_raw(s.port, b"GET /direct HTTP/1.1\r\nHost: warm.example\r\nx-b3-sampled: 0\r\nConnection: close\r\n\r\n", false)
                .map_err(|e| e.to_string())?;
            (r.status == 202).then_some(()).ok_or(format!("{}", r.status))
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }
    for s in [&envoy_side, &gloo_side] {
        for (path, extra) in REQUESTS {
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: shop.example\r\n{extra}Connection: close\r\n\r\n"
            );
            let r = http_raw(s.port, request.as_bytes(), false);
            eprintln!("{} {path}: {:?}", s.name, r.map(|r| r.status));
        }
    }
    // Five spans go at once, the sixth after the flush interval.
    let spans = |s: &Side| -> Vec<Value> {
        s.collector
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
            .collect()
    };
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
