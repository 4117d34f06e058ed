//! gRPC through the Rust data plane: a real grpcio client calls `gloo run` over plaintext
//! HTTP/2, and gloo forwards to real gRPC backends over HTTP/2 (`useHttp2` upstreams), trailers
//! (`grpc-status`) included, with a weighted split between two backends.

mod support;

use support::{free_port, gloo_run, grpc_backend, grpc_calls, LogsOnPanic};

#[test]
fn grpc_calls_go_through_gloo_over_http2() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (a_port, b_port, port) = (free_port(), free_port(), free_port());
    let a = grpc_backend("echo-a", a_port, tmp.path());
    let b = grpc_backend("echo-b", b_port, tmp.path());
    let yaml = format!(
        r#"apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {{name: edge, namespace: gloo-system}}
spec: {{bindAddress: 127.0.0.1, bindPort: {port}, httpGateway: {{}}}}
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: echo-a, namespace: gloo-system}}
spec: {{useHttp2: true, static: {{hosts: [{{addr: 127.0.0.1, port: {a_port}}}]}}}}
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: echo-b, namespace: gloo-system}}
spec: {{useHttp2: true, static: {{hosts: [{{addr: 127.0.0.1, port: {b_port}}}]}}}}
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: echo, namespace: gloo-system}}
spec:
  virtualHost:
    domains: ['*']
    routes:
    - matchers: [{{prefix: /gloo.test.Echo/}}]
      routeAction:
        multi:
          destinations:
          - {{destination: {{upstream: {{name: echo-a}}}}, weight: 3}}
          - {{destination: {{upstream: {{name: echo-b}}}}, weight: 1}}
"#
    );
    std::fs::write(tmp.path().join("gloo.yaml"), yaml).expect("write config");
    let gloo = gloo_run(tmp.path(), free_port(), tmp.path());
    let _logs = LogsOnPanic(tmp.path(), vec![&gloo, &a, &b]);
    let text = grpc_calls(port, 200);
    let counts: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text.trim()).expect("the client's JSON");
    let count = |k: &str| counts.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
    assert_eq!(count("echo-a") + count("echo-b"), 200, "{counts:?}");
    // 3:1 over 200 calls: both reached, echo-a clearly more often.
    assert!(
        count("echo-b") >= 20 && count("echo-a") >= 110,
        "{counts:?}"
    );
}

#[test]
fn grpc_over_tls_to_the_upstream_negotiates_http2() {
    let tmp = tempfile::tempdir().expect("temp dir");
    support::certificates(tmp.path(), &["grpc.example"]);
    let (backend_port, port) = (free_port(), free_port());
    let cert = tmp.path().join("grpc.example.crt");
    let key = tmp.path().join("grpc.example.key");
    let backend =
        support::grpc_backend_with("secure-echo", backend_port, tmp.path(), &[&cert, &key]);
    let yaml = format!(
        r#"apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {{name: edge, namespace: gloo-system}}
spec: {{bindAddress: 127.0.0.1, bindPort: {port}, httpGateway: {{}}}}
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: secure-echo, namespace: gloo-system}}
spec:
  useHttp2: true
  static:
    useTls: true
    hosts: [{{addr: 127.0.0.1, port: {backend_port}, sniAddr: grpc.example}}]
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: echo, namespace: gloo-system}}
spec:
  virtualHost:
    domains: ['*']
    routes:
    - matchers: [{{prefix: /}}]
      routeAction: {{single: {{upstream: {{name: secure-echo}}}}}}
"#
    );
    std::fs::write(tmp.path().join("gloo.yaml"), yaml).expect("write config");
    let gloo = gloo_run(tmp.path(), free_port(), tmp.path());
    let _logs = LogsOnPanic(tmp.path(), vec![&gloo, &backend]);
    let text = grpc_calls(port, 20);
    assert_eq!(text.trim(), r#"{"secure-echo": 20}"#);
}
