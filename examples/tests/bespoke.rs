//! The bespoke gateway example end to end: its own filter runs on proxied traffic.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{backend, free_port, get, Gateway};

fn write_config(dir: &Path, port: u16, backend: u16, prefix: &str) {
    let config = format!(
        r#"apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {{name: test, namespace: gloo-system}}
spec:
  bindAddress: 127.0.0.1
  bindPort: {port}
  httpGateway: {{}}
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: backend, namespace: gloo-system}}
spec:
  static:
    hosts: [{{addr: 127.0.0.1, port: {backend}}}]
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: test, namespace: gloo-system}}
spec:
  virtualHost:
    domains: ['*']
    routes:
    - matchers: [{{exact: /direct}}]
      directResponseAction: {{status: 200, body: direct}}
    - matchers: [{{prefix: {prefix}}}]
      routeAction: {{single: {{upstream: {{name: backend, namespace: gloo-system}}}}}}
"#
    );
    std::fs::write(dir.join("gateway.yaml"), config).expect("write the config");
}

#[test]
fn the_custom_filter_runs_on_proxied_traffic() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (port, admin, backend) = (free_port(), free_port(), backend("hello from the backend"));
    write_config(dir.path(), port, backend, "/");
    let log = dir.path().join("gateway.log");
    let log_file = std::fs::File::create(&log).expect("log file");
    let gateway = Gateway(
        Command::new(env!("CARGO_BIN_EXE_bespoke_gateway"))
            .arg(dir.path())
            .arg(format!("127.0.0.1:{admin}"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn()
            .expect("start bespoke_gateway"),
    );
    let logs = || std::fs::read_to_string(&log).unwrap_or_default();

    // Ready once the first configuration is in force; then the route proxies to the backend.
    let until = |what: &str, path: &str, want: u16| {
        let start = Instant::now();
        loop {
            let ready = get(admin, "/ready").is_ok_and(|(status, _, _)| status == 200);
            match get(port, path) {
                Ok(r) if ready && r.0 == want => return r,
                last if start.elapsed() > Duration::from_secs(20) => {
                    panic!(
                        "{what}: never got {want} for {path}; last: {last:?}\n{}",
                        logs()
                    )
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    };
    let (_, headers, body) = until("start-up", "/anything", 200);
    assert_eq!(body, "hello from the backend", "{headers:?}");
    assert!(
        headers.iter().any(|h| h == "x-powered-by: bespoke"),
        "the custom filter did not run: {headers:?}\n{}",
        logs()
    );

    // Routes that answer directly run the filter too, as Envoy's HTTP filters do.
    let (_, headers, body) = until("a direct response", "/direct", 200);
    assert_eq!(body, "direct");
    assert!(
        headers.iter().any(|h| h == "x-powered-by: bespoke"),
        "the custom filter did not run on a direct response: {headers:?}"
    );

    // An edit is translated again: the filter still runs on the new listener.
    write_config(dir.path(), port, backend, "/v2");
    let (_, headers, _) = until("the edit", "/anything", 404);
    // A request no route matches runs the listener's filters before the 404, as in Envoy.
    assert!(
        headers.iter().any(|h| h == "x-powered-by: bespoke"),
        "the custom filter did not run on the 404: {headers:?}\n{}",
        logs()
    );
    let (_, headers, body) = until("the edit", "/v2/anything", 200);
    assert_eq!(body, "hello from the backend", "{headers:?}");
    assert!(
        headers.iter().any(|h| h == "x-powered-by: bespoke"),
        "the custom filter did not run after the edit: {headers:?}\n{}",
        logs()
    );
    drop(gateway);
}
