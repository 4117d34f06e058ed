//! The custom discovery plugin example end to end: a `kube` upstream gets the endpoints the
//! plugin reads from its file, and editing the file moves traffic.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{backend, free_port, get, Gateway};

fn write_config(dir: &Path, port: u16) {
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
metadata: {{name: default-web-80, namespace: gloo-system}}
spec:
  kube: {{serviceName: web, serviceNamespace: default, servicePort: 80}}
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: test, namespace: gloo-system}}
spec:
  virtualHost:
    domains: ['*']
    routes:
    - matchers: [{{prefix: /}}]
      routeAction: {{single: {{upstream: {{name: default-web-80, namespace: gloo-system}}}}}}
"#
    );
    std::fs::write(dir.join("gateway.yaml"), config).expect("write the config");
}

#[test]
fn endpoints_from_the_plugins_file_serve_a_kube_upstream_and_follow_edits() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config");
    std::fs::create_dir(&config).expect("config dir");
    let (port, admin) = (free_port(), free_port());
    let (one, two) = (backend("one"), backend("two"));
    write_config(&config, port);
    let endpoints = dir.path().join("endpoints.txt");
    std::fs::write(
        &endpoints,
        format!(
            "# the file the plugin reads\ndefault/web 127.0.0.1:{one}\nother/svc 127.0.0.1:1\n"
        ),
    )
    .expect("write endpoints");
    let log = dir.path().join("gateway.log");
    let log_file = std::fs::File::create(&log).expect("log file");
    let _gateway = Gateway(
        Command::new(env!("CARGO_BIN_EXE_custom_discovery"))
            .arg(&config)
            .arg(&endpoints)
            .arg(format!("127.0.0.1:{admin}"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn()
            .expect("start custom_discovery"),
    );
    let logs = || std::fs::read_to_string(&log).unwrap_or_default();
    let until = |what: &str, want: &str| {
        let start = Instant::now();
        loop {
            match get(port, "/") {
                Ok((200, _, body)) if body == want => return,
                last if start.elapsed() > Duration::from_secs(20) => {
                    panic!(
                        "{what}: never answered {want:?}; last: {last:?}\n{}",
                        logs()
                    )
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    };
    until("start-up", "one");

    // The file now names the other backend: traffic follows.
    std::fs::write(&endpoints, format!("default/web 127.0.0.1:{two}\n")).expect("edit endpoints");
    until("the edit", "two");

    // A line that does not parse keeps the endpoints read last, and the error names the line.
    std::fs::write(&endpoints, "default/web not-an-address\n").expect("break endpoints");
    let start = Instant::now();
    while !logs().contains("endpoints.txt:1: \"not-an-address\" is not <ip>:<port>") {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no error logged\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(get(port, "/").expect("still served").2, "two");
}
