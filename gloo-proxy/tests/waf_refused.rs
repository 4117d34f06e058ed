//! A gloo built without the `waf` feature never serves a WAF-protected route unprotected: the
//! listener whose connection manager needs envoy-gloo's ModSecurity filter is refused (the
//! filter is not optional), with the reason in `/config_dump`, and nothing listens.

#![cfg(not(feature = "waf"))]

mod support;

use std::fs;

use support::{admin_get, free_port, gloo_run, http_get, poll, LogsOnPanic};

#[test]
fn without_the_waf_feature_a_listener_needing_the_waf_is_refused() {
    let root = tempfile::tempdir().expect("tempdir");
    let config = root.path().join("config");
    fs::create_dir_all(&config).expect("config dir");
    let (port, admin) = (free_port(), free_port());
    fs::write(
        config.join("gloo.yaml"),
        format!(
            r#"apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {{name: gw, namespace: gloo-system}}
spec:
  bindAddress: 127.0.0.1
  bindPort: {port}
  httpGateway: {{}}
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: shop, namespace: gloo-system}}
spec:
  virtualHost:
    domains: ['*']
    options:
      waf:
        ruleSets:
        - ruleStr: |
            SecRuleEngine On
            SecRule REQUEST_HEADERS:User-Agent "scammer" "deny,status:403,id:107,phase:1"
    routes:
    - matchers: [{{prefix: /}}]
      directResponseAction: {{status: 200, body: open}}
"#
        ),
    )
    .expect("write config");
    let gloo = gloo_run(&config, admin, root.path());
    let _logs = LogsOnPanic(&config, vec![&gloo]);
    poll("the listener to be refused", || {
        let dump = admin_get(admin, "/config_dump");
        if dump.contains("io.solo.filters.http.modsecurity") && dump.contains("is not registered") {
            Ok(())
        } else {
            Err(dump)
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        http_get(port, "/").is_err(),
        "the route must not be served without its WAF"
    );
}
