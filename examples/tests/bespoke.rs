//! The bespoke gateway example end to end: its own filter runs on proxied traffic.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::get;

/// A port nobody listens on right now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// An HTTP/1.1 keep-alive backend on a free port answering `hello from the backend`.
fn backend() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a backend");
    let port = listener.local_addr().expect("backend address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone()?);
                let mut stream = stream;
                loop {
                    // A GET: the request ends at the blank line.
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line)? == 0 {
                            return Ok::<_, std::io::Error>(());
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let body = "hello from the backend";
                    write!(
                        stream,
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    )?;
                }
            });
        }
    });
    port
}

/// The gateway process, killed when dropped.
struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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
    let (port, admin, backend) = (free_port(), free_port(), backend());
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
