//! Proxyless gRPC: a real grpcio client dialing `xds:///<domain>` resolves through
//! `gloo control-plane` (LDS API listener, RDS, CDS, EDS) to the VirtualService serving that
//! domain, and completes RPCs to real gRPC backends, including a weighted split.
//!
//! Python with grpcio and Node with @grpc/grpc-js-xds come from `scripts/test.sh`, which
//! exports the interpreter as `GLOO_TEST_PYTHON` and the Node modules folder as
//! `GLOO_TEST_NODE_PATH`. The backends are Python gRPC servers.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{control_plane, free_port, grpc_backend as backend, python, script};

fn config(a: u16, b: u16, weights: (u32, u32)) -> String {
    format!(
        r#"apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: echo-a, namespace: gloo-system}}
spec:
  static: {{hosts: [{{addr: 127.0.0.1, port: {a}}}]}}
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: echo-b, namespace: gloo-system}}
spec:
  static: {{hosts: [{{addr: 127.0.0.1, port: {b}}}]}}
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: echo, namespace: gloo-system}}
spec:
  virtualHost:
    domains: [echo.test]
    routes:
    - matchers: [{{prefix: /gloo.test.Echo/}}]
      routeAction:
        multi:
          destinations:
          - {{destination: {{upstream: {{name: echo-a}}}}, weight: {}}}
          - {{destination: {{upstream: {{name: echo-b}}}}, weight: {}}}
"#,
        weights.0, weights.1
    )
}

/// Which real gRPC implementation the client is.
#[derive(Clone, Copy, Debug)]
enum Client {
    Python,
    Node,
}

/// Runs a client against `xds:///echo.test`; returns answers by backend.
fn calls(
    client: Client,
    bootstrap: &Path,
    count: usize,
) -> serde_json::Map<String, serde_json::Value> {
    let mut command = match client {
        Client::Python => {
            let mut c = Command::new(python());
            c.arg(script("client.py"));
            c
        }
        Client::Node => {
            let modules = std::env::var_os("GLOO_TEST_NODE_PATH").unwrap_or_else(|| {
                panic!("GLOO_TEST_NODE_PATH is not set: run the suite with scripts/test.sh, which installs @grpc/grpc-js-xds and sets it")
            });
            let mut c = Command::new("node");
            c.arg(script("client.js")).env("NODE_PATH", modules);
            c
        }
    };
    let output = command
        .args(["echo.test", &count.to_string()])
        .env("GRPC_XDS_BOOTSTRAP", bootstrap)
        .output()
        .expect("run client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "client failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    match serde_json::from_str(stdout.trim()) {
        Ok(serde_json::Value::Object(map)) => map,
        other => panic!("unexpected client output {stdout:?}: {other:?}"),
    }
}

fn count(map: &serde_json::Map<String, serde_json::Value>, key: &str) -> u64 {
    map.get(key).and_then(|v| v.as_u64()).unwrap_or(0)
}

#[test]
fn python_grpc_client_resolves_xds_target_and_splits_by_weight() {
    resolves_and_splits(Client::Python);
}

#[test]
fn node_grpc_client_resolves_xds_target_and_splits_by_weight() {
    resolves_and_splits(Client::Node);
}

fn resolves_and_splits(client: Client) {
    let dir = tempfile::tempdir().unwrap();
    let config_dir = dir.path().join("config");
    std::fs::create_dir(&config_dir).unwrap();
    let (port_a, port_b, xds_port) = (free_port(), free_port(), free_port());
    let _a = backend("backend-a", port_a, dir.path());
    let _b = backend("backend-b", port_b, dir.path());
    std::fs::write(
        config_dir.join("echo.yaml"),
        config(port_a, port_b, (80, 20)),
    )
    .unwrap();
    let cp = control_plane(&config_dir, xds_port, None, dir.path());
    let bootstrap = dir.path().join("bootstrap.json");
    std::fs::write(
        &bootstrap,
        serde_json::json!({
            "xds_servers": [{
                "server_uri": format!("127.0.0.1:{xds_port}"),
                "channel_creds": [{"type": "insecure"}],
                "server_features": ["xds_v3"]
            }],
            "node": {
                "id": "grpc-client",
                // grpc-js-xds refuses a bootstrap whose node has no locality.
                "locality": {},
                "metadata": {"role": "gloo-system~gateway-proxy"}
            }
        })
        .to_string(),
    )
    .unwrap();

    // 80/20 over 400 calls: expect about 320/80; allow a wide band (the split is random).
    let answers = calls(client, &bootstrap, 400);
    let (a, b) = (count(&answers, "backend-a"), count(&answers, "backend-b"));
    assert_eq!(a + b, 400, "{answers:?}");
    assert!(
        (260..=370).contains(&a),
        "backend-a got {a} of 400 at weight 80: {answers:?}"
    );
    assert!(
        b >= 30,
        "backend-b got {b} of 400 at weight 20: {answers:?}"
    );

    // A config edit re-routes the client: everything to backend-b.
    std::fs::write(config_dir.join("echo.yaml"), config(port_a, port_b, (0, 1))).unwrap();
    let started = Instant::now();
    loop {
        let answers = calls(client, &bootstrap, 20);
        if count(&answers, "backend-b") == 20 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the edit did not reach the gRPC client: {answers:?}\n{}",
            cp.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
