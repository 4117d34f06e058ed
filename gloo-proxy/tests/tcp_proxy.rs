//! Gloo's TCP gateways through gloo and through Envoy 1.40 on the same Gloo config: a
//! `tcpGateway` whose hosts pass TLS through by SNI (exact and wildcard names), terminate it
//! with their own certificate, or take every other connection; and one whose
//! `tcpProxySettings` close idle connections, try a second endpoint when the first refuses,
//! or tunnel through an HTTP proxy with CONNECT; and a hybrid Gateway that proxies one
//! client address range's connections as TCP and serves HTTP routes to the rest. The same
//! connections go through both proxies and must come to the same end (and the HTTP proxy
//! must be asked the same).

mod support;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{free_port, gloo_run, http_raw, poll, Backend, LogsOnPanic};

struct Ports {
    port: u16,
    idle: u16,
    retry: u16,
    tunnel: u16,
    hybrid: u16,
    plain: u16,
    inner: u16,
    secure: u16,
    wild: u16,
    closed: u16,
    connect_proxy: u16,
}

fn config(p: &Ports, certs: &Path, logs: &Path) -> String {
    let logs = logs.display();
    let Ports {
        port,
        idle,
        retry,
        tunnel,
        hybrid,
        plain,
        inner,
        secure,
        wild,
        closed,
        connect_proxy,
    } = *p;
    let certs = certs.display();
    format!(
        r#"apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: plain, namespace: gloo-system}}
spec:
  static: {{hosts: [{{addr: 127.0.0.1, port: {plain}}}]}}
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: inner, namespace: gloo-system}}
spec:
  static: {{hosts: [{{addr: 127.0.0.1, port: {inner}}}]}}
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: secure, namespace: gloo-system}}
spec:
  static: {{hosts: [{{addr: 127.0.0.1, port: {secure}}}]}}
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: wild, namespace: gloo-system}}
spec:
  static: {{hosts: [{{addr: 127.0.0.1, port: {wild}}}]}}
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: flaky, namespace: gloo-system}}
spec:
  static: {{hosts: [{{addr: 127.0.0.1, port: {closed}}}, {{addr: 127.0.0.1, port: {plain}}}]}}
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: connect-proxy, namespace: gloo-system}}
spec:
  static: {{hosts: [{{addr: 127.0.0.1, port: {connect_proxy}}}]}}
---
apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {{name: retry, namespace: gloo-system}}
spec:
  bindAddress: 127.0.0.1
  bindPort: {retry}
  options:
    accessLoggingService:
      accessLog:
      - fileSink:
          path: {logs}/retry.log
          stringFormat: "{TCP_LOG_FORMAT}"
  tcpGateway:
    options:
      tcpProxySettings: {{maxConnectAttempts: 2}}
    tcpHosts:
    - name: flaky
      destination: {{single: {{upstream: {{name: flaky, namespace: gloo-system}}}}}}
---
apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {{name: tunnel, namespace: gloo-system}}
spec:
  bindAddress: 127.0.0.1
  bindPort: {tunnel}
  tcpGateway:
    options:
      tcpProxySettings:
        tunnelingConfig:
          hostname: "127.0.0.1:{plain}"
          headersToAdd:
          - {{header: {{key: x-tunnel, value: "yes"}}}}
          - {{header: {{key: x-team, value: edge}}}}
    tcpHosts:
    - name: through
      destination: {{single: {{upstream: {{name: connect-proxy, namespace: gloo-system}}}}}}
---
apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {{name: hybrid, namespace: gloo-system}}
spec:
  bindAddress: 127.0.0.1
  bindPort: {hybrid}
  hybridGateway:
    matchedGateways:
    - matcher:
        sourcePrefixRanges: [{{addressPrefix: 127.0.0.2, prefixLen: 32}}]
      tcpGateway:
        tcpHosts:
        - name: raw
          destination: {{single: {{upstream: {{name: plain, namespace: gloo-system}}}}}}
    - matcher:
        sslConfig:
          sslFiles:
            tlsCert: {certs}/terminate.example.crt
            tlsKey: {certs}/terminate.example.key
          sniDomains: [terminate.example]
      httpGateway:
        virtualServiceSelector: {{hybrid: "true"}}
    - matcher: {{}}
      httpGateway:
        virtualServiceSelector: {{hybrid: "true"}}
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: hybrid, namespace: gloo-system, labels: {{hybrid: "true"}}}}
spec:
  virtualHost:
    domains: ['*']
    routes:
    - matchers: [{{prefix: /ready}}]
      directResponseAction: {{status: 200, body: ready}}
    - matchers: [{{prefix: /}}]
      routeAction: {{single: {{upstream: {{name: inner, namespace: gloo-system}}}}}}
      options:
        headerManipulation:
          responseHeadersToAdd: [{{header: {{key: x-served-by, value: http-chain}}}}]
---
apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {{name: tcp, namespace: gloo-system}}
spec:
  bindAddress: 127.0.0.1
  bindPort: {port}
  options:
    accessLoggingService:
      accessLog:
      - fileSink:
          path: {logs}/tcp.log
          stringFormat: "{TCP_LOG_FORMAT}"
      - fileSink:
          path: {logs}/default.log
  tcpGateway:
    tcpHosts:
    - name: passthrough
      sslConfig: {{sniDomains: [passthrough.example]}}
      destination: {{single: {{upstream: {{name: secure, namespace: gloo-system}}}}}}
    - name: wildcard
      sslConfig: {{sniDomains: ["*.wild.example"]}}
      destination: {{single: {{upstream: {{name: wild, namespace: gloo-system}}}}}}
    - name: terminate
      sslConfig:
        sslFiles:
          tlsCert: {certs}/terminate.example.crt
          tlsKey: {certs}/terminate.example.key
        sniDomains: [terminate.example]
      destination: {{single: {{upstream: {{name: inner, namespace: gloo-system}}}}}}
    - name: rest
      destination: {{single: {{upstream: {{name: plain, namespace: gloo-system}}}}}}
---
apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {{name: idle, namespace: gloo-system}}
spec:
  bindAddress: 127.0.0.1
  bindPort: {idle}
  tcpGateway:
    options:
      tcpProxySettings: {{idleTimeout: 1s}}
    tcpHosts:
    - name: plain
      destination: {{single: {{upstream: {{name: plain, namespace: gloo-system}}}}}}
"#
    )
}

/// The TCP access log's format: what both proxies must write alike (no times, which differ
/// by nature; the upstream's port differs between the sides and is named in the comparison).
const TCP_LOG_FORMAT: &str = "%PROTOCOL% %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %UPSTREAM_CLUSTER% %UPSTREAM_HOST% %REQ(:AUTHORITY)% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%\\n";

/// An HTTP proxy that serves CONNECT (and records each request head it reads, in lower case,
/// the `:port`s of the target made generic), tunnelling to the target it names.
fn connect_proxy() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the CONNECT proxy");
    let port = listener.local_addr().expect("address").port();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(client.try_clone().expect("clone"));
                let mut lines = Vec::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end().to_string();
                    if line.is_empty() {
                        break;
                    }
                    lines.push(line);
                }
                let target = lines
                    .first()
                    .and_then(|l| l.split(' ').nth(1))
                    .unwrap_or_default()
                    .to_string();
                let mut head: Vec<String> = lines.iter().map(|l| l.to_ascii_lowercase()).collect();
                head[1..].sort();
                if let Ok(mut s) = seen.lock() {
                    s.push(head.join("|"));
                }
                let Ok(mut upstream) = TcpStream::connect(&target) else {
                    let _ = (&client)
                        .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n");
                    return;
                };
                let mut client = client;
                let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                let mut up_read = upstream.try_clone().expect("clone");
                let mut down_write = client.try_clone().expect("clone");
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut up_read, &mut down_write);
                    let _ = down_write.shutdown(std::net::Shutdown::Write);
                });
                let buffered = reader.buffer().to_vec();
                let _ = upstream.write_all(&buffered);
                let mut rest = reader.into_inner();
                let _ = std::io::copy(&mut rest, &mut upstream);
                let _ = upstream.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (port, heads)
}

/// `GET path` to the hybrid Gateway from the client address `source`: the answer's status,
/// body and `x-served-by` (which only the HTTP chain's route adds).
fn hybrid_get(port: u16, source: &str, path: &str) -> String {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("a socket");
    let from: std::net::SocketAddr = format!("{source}:0").parse().expect("an address");
    socket.bind(&from.into()).expect("bind the client address");
    let to: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("an address");
    if let Err(e) = socket.connect(&to.into()) {
        return format!("failed: {e}");
    }
    let mut stream: TcpStream = socket.into();
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: hybrid.example\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return "failed".into();
    }
    match support::read_response(&mut stream, false) {
        Ok(r) => format!(
            "{} {} x-served-by={:?}",
            r.status,
            r.body,
            r.header("x-served-by")
        ),
        Err(_) => "failed".into(),
    }
}

/// How a connection ended: the answer's status and body, or that it failed.
fn outcome(result: Result<(u16, String), String>) -> String {
    match result {
        Ok((status, body)) => format!("{status} {body}"),
        Err(_) => "failed".into(),
    }
}

/// Whether the proxy closes a connection that stays quiet for two seconds (an idle timeout
/// of one second), and keeps one whose client keeps talking.
fn idle_behaviour(port: u16) -> (bool, bool) {
    let closes_quiet = {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(4)))
            .expect("timeout");
        let started = Instant::now();
        let mut byte = [0u8; 1];
        // The backend says nothing first, so the read ends when the proxy closes.
        matches!(stream.read(&mut byte), Ok(0)) && started.elapsed() >= Duration::from_millis(800)
    };
    let keeps_busy = {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        let request = b"GET /busy HTTP/1.1\r\nHost: busy\r\n\r\n";
        let mut answers = 0;
        for _ in 0..4 {
            std::thread::sleep(Duration::from_millis(500));
            if stream.write_all(request).is_err() {
                break;
            }
            let mut buf = [0u8; 4096];
            match stream.read(&mut buf) {
                Ok(n) if n > 0 => answers += 1,
                _ => break,
            }
        }
        answers == 4
    };
    (closes_quiet, keeps_busy)
}

#[test]
fn tcp_gateways_match_envoy() {
    let tmp = tempfile::tempdir().expect("tmp");
    let certs = tmp.path().join("certs");
    fs::create_dir_all(&certs).expect("certs dir");
    support::certificates(
        &certs,
        &["passthrough.example", "terminate.example", "a.wild.example"],
    );
    let ca = certs.join("ca.crt");
    let (tls_backend, tls_port) = support::tls_backend(&certs, "passthrough.example");
    let (wild_backend, wild_port) = support::tls_backend(&certs, "a.wild.example");
    struct Side {
        name: &'static str,
        port: u16,
        idle: u16,
        retry: u16,
        tunnel: u16,
        hybrid: u16,
        plain: Backend,
        inner: Backend,
        connect_proxy: (u16, Arc<Mutex<Vec<String>>>),
    }
    let side = |name| Side {
        name,
        port: free_port(),
        idle: free_port(),
        retry: free_port(),
        tunnel: free_port(),
        hybrid: free_port(),
        plain: Backend::start("plain"),
        inner: Backend::start("inner"),
        connect_proxy: connect_proxy(),
    };
    let closed = free_port();
    let (envoy_side, gloo_side) = (side("envoy"), side("gloo"));
    for s in [&envoy_side, &gloo_side] {
        let dir = tmp.path().join(s.name).join("config");
        fs::create_dir_all(&dir).expect("config dir");
        let ports = Ports {
            port: s.port,
            idle: s.idle,
            retry: s.retry,
            tunnel: s.tunnel,
            hybrid: s.hybrid,
            plain: s.plain.port,
            inner: s.inner.port,
            secure: tls_port,
            wild: wild_port,
            closed,
            connect_proxy: s.connect_proxy.0,
        };
        let yaml = config(&ports, &certs, &tmp.path().join(s.name));
        fs::write(dir.join("gloo.yaml"), yaml).expect("write config");
    }
    let envoy_dir = tmp.path().join("envoy");
    let gloo_dir = tmp.path().join("gloo");
    let both = support::SideBySide::start(&envoy_dir, &gloo_dir);
    let _logs = LogsOnPanic(
        &gloo_dir.join("config"),
        both.with(&[&tls_backend, &wild_backend]),
    );
    let plain_get = |port: u16, path: &str| {
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: plain.example\r\nConnection: close\r\n\r\n");
        http_raw(port, request.as_bytes(), false)
            .map(|r| (r.status, r.body))
            .map_err(|e| e.to_string())
    };
    for s in [&envoy_side, &gloo_side] {
        for port in [s.port, s.idle, s.retry, s.tunnel, s.hybrid] {
            poll(&format!("{} to proxy on {port}", s.name), || {
                plain_get(port, "/ready").map(|_| ())
            })
            .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    let https = |port: u16, host: &str| {
        support::curl_https(port, host, &ca, &["--http1.1"]).map(|c| (c.status, c.body))
    };
    let mut mismatches = Vec::new();
    let mut compare = |what: &str, envoy: String, gloo: String| {
        eprintln!("{what}:\n  envoy {envoy}\n  gloo  {gloo}");
        if envoy != gloo {
            mismatches.push(format!("{what}: envoy {envoy:?}, gloo {gloo:?}"));
        }
    };
    // Plain bytes: the chain without server names.
    compare(
        "plain HTTP",
        outcome(plain_get(envoy_side.port, "/plain")),
        outcome(plain_get(gloo_side.port, "/plain")),
    );
    // TLS passed through to the backend that holds the name's certificate, by exact name
    // and by wildcard; the backend sees the client's own SNI.
    compare(
        "passthrough by exact name",
        outcome(https(envoy_side.port, "passthrough.example")),
        outcome(https(gloo_side.port, "passthrough.example")),
    );
    compare(
        "passthrough by wildcard",
        outcome(https(envoy_side.port, "a.wild.example")),
        outcome(https(gloo_side.port, "a.wild.example")),
    );
    // TLS terminated with the host's certificate, the backend reached in plain HTTP.
    compare(
        "terminated",
        outcome(https(envoy_side.port, "terminate.example")),
        outcome(https(gloo_side.port, "terminate.example")),
    );
    // An unknown name goes to the chain without names: TLS bytes to a plain backend.
    compare(
        "unknown name",
        outcome(https(envoy_side.port, "other.example")),
        outcome(https(gloo_side.port, "other.example")),
    );
    // The idle timeout closes quiet connections only.
    compare(
        "idle (closes a quiet connection, keeps a busy one)",
        format!("{:?}", idle_behaviour(envoy_side.idle)),
        format!("{:?}", idle_behaviour(gloo_side.idle)),
    );
    // A second endpoint is tried when the first refuses the connection.
    let attempts = |port: u16| {
        (0..4)
            .map(|i| outcome(plain_get(port, &format!("/attempt/{i}"))))
            .collect::<Vec<_>>()
            .join(", ")
    };
    compare(
        "two connect attempts",
        attempts(envoy_side.retry),
        attempts(gloo_side.retry),
    );
    // Through the HTTP proxy's CONNECT tunnel to the plain backend; the proxy is asked alike
    // (the backend's port, which differs between the sides, named).
    compare(
        "tunnelled",
        outcome(plain_get(envoy_side.tunnel, "/tunnelled")),
        outcome(plain_get(gloo_side.tunnel, "/tunnelled")),
    );
    let asked = |s: &Side| {
        let heads = s
            .connect_proxy
            .1
            .lock()
            .map(|h| h.clone())
            .unwrap_or_default();
        heads
            .into_iter()
            .map(|h| h.replace(&s.plain.port.to_string(), "{plain}"))
            .collect::<Vec<_>>()
    };
    compare(
        "the CONNECT requests",
        format!("{:?}", asked(&envoy_side)),
        format!("{:?}", asked(&gloo_side)),
    );
    // The hybrid Gateway: TCP for 127.0.0.2, HTTP routes (with their response headers) for
    // everyone else.
    compare(
        "hybrid, from 127.0.0.2 (TCP)",
        hybrid_get(envoy_side.hybrid, "127.0.0.2", "/raw"),
        hybrid_get(gloo_side.hybrid, "127.0.0.2", "/raw"),
    );
    compare(
        "hybrid, from 127.0.0.1 (HTTP)",
        hybrid_get(envoy_side.hybrid, "127.0.0.1", "/routed"),
        hybrid_get(gloo_side.hybrid, "127.0.0.1", "/routed"),
    );
    compare(
        "hybrid, HTTPS by SNI (an HTTP chain terminating TLS)",
        outcome(https(envoy_side.hybrid, "terminate.example")),
        outcome(https(gloo_side.hybrid, "terminate.example")),
    );
    // The access logs: an entry per connection once it has ended (Envoy writes its file
    // logs every second or so).
    let lines = |s: &Side, file: &str| -> Vec<String> {
        let text = fs::read_to_string(tmp.path().join(s.name).join(file)).unwrap_or_default();
        // The retry Gateway's first connection is the readiness probe, whose first attempt
        // goes wherever the balancer starts (Envoy's round robin starts anywhere).
        let skip = usize::from(file == "retry.log");
        let mut lines: Vec<String> = text
            .lines()
            .skip(skip)
            .map(|l| {
                let l = l
                    .replace(&s.plain.port.to_string(), "{plain}")
                    .replace(&s.inner.port.to_string(), "{inner}");
                // The default format starts with the time and has the duration as its 9th
                // field (after the quoted request line, 4th of the rest).
                // Passed-through TLS moves as many bytes as the handshake took, which varies.
                let passed_through = [tls_port, wild_port]
                    .iter()
                    .any(|p| l.contains(&format!("127.0.0.1:{p}")));
                let l = if passed_through {
                    let mut fields: Vec<String> = l.split(' ').map(str::to_string).collect();
                    let at = if file == "default.log" { 6 } else { 3 };
                    for f in fields.iter_mut().skip(at).take(2) {
                        *f = "<n>".into();
                    }
                    fields.join(" ")
                } else {
                    l
                };
                match l.split_once("] ") {
                    Some((_, rest)) if file == "default.log" => {
                        let mut fields: Vec<&str> = rest.split(' ').collect();
                        if fields.len() > 7 {
                            fields[7] = "<duration>";
                        }
                        fields.join(" ")
                    }
                    _ => l,
                }
            })
            .collect();
        lines.sort();
        lines
    };
    let _ = poll("Envoy's TCP access log entries", || {
        let n = [("tcp.log", 6), ("default.log", 6), ("retry.log", 4)]
            .map(|(file, want)| (lines(&envoy_side, file).len(), want));
        n.iter()
            .all(|(have, want)| have >= want)
            .then_some(())
            .ok_or(format!("{n:?} lines"))
    });
    for file in ["tcp.log", "default.log", "retry.log"] {
        compare(
            &format!("access log {file}"),
            lines(&envoy_side, file).join("\n"),
            lines(&gloo_side, file).join("\n"),
        );
    }
    // The premises: what Envoy did is what the cases are about.
    assert_eq!(
        hybrid_get(envoy_side.hybrid, "127.0.0.2", "/raw"),
        "200 plain x-served-by=None"
    );
    assert_eq!(
        outcome(https(envoy_side.hybrid, "terminate.example")),
        "200 inner"
    );
    assert_eq!(
        hybrid_get(envoy_side.hybrid, "127.0.0.1", "/routed"),
        "200 inner x-served-by=Some(\"http-chain\")"
    );
    assert!(
        lines(&envoy_side, "tcp.log").len() >= 6,
        "Envoy logged the TCP gateway's connections: {:?}",
        lines(&envoy_side, "tcp.log")
    );
    assert_eq!(
        attempts(envoy_side.retry),
        "200 plain, 200 plain, 200 plain, 200 plain",
        "Envoy reaches the backend on every connection with a second attempt"
    );
    assert_eq!(
        outcome(plain_get(envoy_side.tunnel, "/tunnelled")),
        "200 plain",
        "Envoy tunnels through the HTTP proxy"
    );
    assert_eq!(
        outcome(https(envoy_side.port, "terminate.example")),
        "200 inner",
        "Envoy terminates TLS for terminate.example"
    );
    assert_eq!(
        format!("{:?}", idle_behaviour(envoy_side.idle)),
        "(true, true)"
    );
    assert!(
        envoy_side
            .inner
            .seen()
            .iter()
            .any(|r| r.header("host") == Some("terminate.example")),
        "the terminated requests arrive in plain HTTP"
    );
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// An edit to a TCP gateway applies to the connections that come after it; one already
/// proxied goes on to the upstream it was connected to.
#[test]
fn tcp_gateway_edits_apply_to_new_connections_and_spare_open_ones() {
    let tmp = tempfile::tempdir().expect("tmp");
    let config_dir = tmp.path().join("config");
    fs::create_dir_all(&config_dir).expect("config dir");
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let port = free_port();
    let yaml = |to: &str| {
        format!(
            "{}---\n{}---\napiVersion: gateway.solo.io/v1\nkind: Gateway\nmetadata: {{name: tcp, namespace: gloo-system}}\nspec:\n  bindAddress: 127.0.0.1\n  bindPort: {port}\n  tcpGateway:\n    tcpHosts:\n    - name: only\n      destination: {{single: {{upstream: {{name: {to}, namespace: gloo-system}}}}}}\n",
            support::static_upstream_yaml("a", a.port),
            support::static_upstream_yaml("b", b.port),
        )
    };
    support::write_atomically(&config_dir.join("gloo.yaml"), &yaml("a"));
    let gloo = gloo_run(&config_dir, free_port(), tmp.path());
    let _logs = LogsOnPanic(&config_dir, vec![&gloo]);
    let get = |stream: &mut TcpStream| -> Result<String, String> {
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: tcp.example\r\n\r\n")
            .map_err(|e| e.to_string())?;
        support::read_response(stream, false)
            .map(|r| r.body)
            .map_err(|e| e.to_string())
    };
    let connect = || -> Result<TcpStream, String> {
        let stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        Ok(stream)
    };
    poll("the gateway to reach a", || {
        let mut s = connect()?;
        (get(&mut s)? == "a")
            .then_some(())
            .ok_or("not a".to_string())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let mut open = connect().expect("connect");
    assert_eq!(get(&mut open).as_deref(), Ok("a"));
    support::write_atomically(&config_dir.join("gloo.yaml"), &yaml("b"));
    poll("new connections to reach b", || {
        let mut s = connect()?;
        let body = get(&mut s)?;
        (body == "b").then_some(()).ok_or(body)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    // The connection made before the edit still goes to a.
    assert_eq!(get(&mut open).as_deref(), Ok("a"));
}
