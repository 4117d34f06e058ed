//! Request shadowing through `gloo run`: a copy of each request goes to the shadow upstream
//! (with `-shadow` appended to its host, as Envoy does), the client gets the primary's answer,
//! and a failing shadow never affects it.

mod support;

use std::fs;

use support::{free_port, gloo_run, http_raw, poll, Backend, Behaviour, LogsOnPanic};

#[test]
fn shadowing_copies_requests_without_touching_the_answer() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let primary = Backend::start("primary");
    let shadow = Backend::start("shadow");
    let port = free_port();
    let yaml = format!(
        r#"apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {{name: edge, namespace: gloo-system}}
spec: {{bindAddress: 127.0.0.1, bindPort: {port}, httpGateway: {{}}}}
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: primary, namespace: gloo-system}}
spec: {{static: {{hosts: [{{addr: 127.0.0.1, port: {p}}}]}}}}
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: shadow, namespace: gloo-system}}
spec: {{static: {{hosts: [{{addr: 127.0.0.1, port: {s}}}]}}}}
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: all, namespace: gloo-system}}
spec:
  virtualHost:
    domains: ['*']
    routes:
    - matchers: [{{prefix: /}}]
      routeAction: {{single: {{upstream: {{name: primary, namespace: gloo-system}}}}}}
      options:
        shadowing: {{upstream: {{name: shadow, namespace: gloo-system}}, percentage: 100}}
"#,
        p = primary.port,
        s = shadow.port
    );
    fs::write(tmp.path().join("gloo.yaml"), yaml).expect("write config");
    let gloo = gloo_run(tmp.path(), free_port(), tmp.path());
    let _logs = LogsOnPanic(tmp.path(), vec![&gloo]);

    let request = b"POST /orders?id=7 HTTP/1.1\r\nHost: shop.example:8080\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    let r = http_raw(port, request, false).expect("answer");
    assert_eq!(r.status, 200, "{}", r.body);
    let copies = poll("the shadow copy", || {
        let seen = shadow.seen();
        if seen.is_empty() {
            Err("no copy yet".to_string())
        } else {
            Ok(seen)
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let original = &primary.seen()[0];
    let copy = &copies[0];
    assert_eq!(copy.method, "POST");
    assert_eq!(copy.target, "/orders?id=7");
    assert_eq!(copy.body, b"hello");
    assert_eq!(original.header("host"), Some("shop.example:8080"));
    assert_eq!(copy.header("host"), Some("shop.example-shadow:8080"));

    // A failing shadow is invisible to clients.
    shadow.set_behaviour(Behaviour::Status(500));
    for _ in 0..5 {
        let r = http_raw(port, request, false).expect("answer");
        assert_eq!(r.status, 200);
    }
    assert_eq!(primary.count(), 6);
}
