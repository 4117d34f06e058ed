//! Listener features through `gloo run`: the PROXY protocol (v1 and v2) giving the client
//! address, HTTP/2 with prior knowledge (h2c), websocket upgrades carried end to end, and the
//! connection manager's limits (idle timeout, requests per connection, request timeout,
//! stream duration, header count, headers with underscores) and its `x-request-id` (generated
//! unless `generateRequestId: false`).

mod support;

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::{free_port, gloo_run, poll, read_response, Backend, LogsOnPanic};

fn config(dir: &Path, port: u16, backend: u16, gateway_extra: &str) {
    let yaml = format!(
        r#"apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {{name: edge, namespace: gloo-system}}
spec:
  bindAddress: 127.0.0.1
  bindPort: {port}
{gateway_extra}---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: backend, namespace: gloo-system}}
spec:
  static:
    hosts:
    - {{addr: 127.0.0.1, port: {backend}}}
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: all, namespace: gloo-system}}
spec:
  virtualHost:
    domains: ['*']
    routes:
    - matchers: [{{prefix: /}}]
      routeAction: {{single: {{upstream: {{name: backend, namespace: gloo-system}}}}}}
"#
    );
    fs::write(dir.join("gloo.yaml"), yaml).expect("write config");
}

fn exchange(port: u16, bytes: &[u8]) -> support::Response {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(bytes).expect("write");
    read_response(&mut s, false).expect("a response")
}

#[test]
fn the_proxy_protocol_header_names_the_client() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let backend = Backend::start("backend");
    let port = free_port();
    config(
        tmp.path(),
        port,
        backend.port,
        "  useProxyProto: true\n  httpGateway:\n    options:\n      httpConnectionManagerSettings:\n        useRemoteAddress: true\n",
    );
    let gloo = gloo_run(tmp.path(), free_port(), tmp.path());
    let _logs = LogsOnPanic(tmp.path(), vec![&gloo]);

    let v1 = exchange(
        port,
        b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 80\r\nGET /v1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(v1.status, 200, "{}", v1.body);
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    v2.extend_from_slice(&[
        0x21, 0x11, 0, 12, 198, 51, 100, 9, 127, 0, 0, 1, 0x9c, 0x40, 0, 80,
    ]);
    v2.extend_from_slice(b"GET /v2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    let r = exchange(port, &v2);
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = backend.seen();
    let xff: Vec<_> = seen
        .iter()
        .map(|s| {
            (
                s.target.clone(),
                s.header("x-forwarded-for").map(str::to_string),
            )
        })
        .collect();
    assert_eq!(
        xff,
        vec![
            ("/v1".to_string(), Some("203.0.113.7".to_string())),
            ("/v2".to_string(), Some("198.51.100.9".to_string())),
        ]
    );

    // Without the header the connection is refused: nothing reaches the backend.
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(b"GET /plain HTTP/1.1\r\nHost: a\r\n\r\n")
        .expect("write");
    let mut buf = [0u8; 64];
    assert_eq!(s.read(&mut buf).unwrap_or(0), 0, "closed without an answer");
    assert_eq!(backend.count(), 2);
}

#[test]
fn http2_with_prior_knowledge_is_served() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let backend = Backend::start("backend");
    let port = free_port();
    config(tmp.path(), port, backend.port, "  httpGateway: {}\n");
    let gloo = gloo_run(tmp.path(), free_port(), tmp.path());
    let _logs = LogsOnPanic(tmp.path(), vec![&gloo]);
    let out = Command::new("curl")
        .args([
            "-sS",
            "--http2-prior-knowledge",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{http_version}",
        ])
        .arg(format!("http://127.0.0.1:{port}/h2"))
        .output()
        .expect("run curl");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200 2",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The upstream got HTTP/1.1 with the authority as its Host.
    let seen = backend.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].target, "/h2");
    assert_eq!(
        seen[0].header("host"),
        Some(format!("127.0.0.1:{port}").as_str())
    );
}

/// Whether `id` is a version 4 UUID as Envoy writes one: 8-4-4-4-12 lowercase hex digits, the
/// version digit 4 and the variant bits 10.
fn is_uuid_v4(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(c),
        })
        && b[14] == b'4'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b')
}

#[test]
fn request_ids_are_generated_unless_the_gateway_turns_them_off() {
    let with_client_id =
        b"GET /mine HTTP/1.1\r\nHost: h\r\nx-request-id: client-chosen\r\nConnection: close\r\n\r\n";
    for (gateway, generated) in [
        ("  httpGateway: {}\n", true),
        (
            "  httpGateway:\n    options:\n      httpConnectionManagerSettings:\n        generateRequestId: false\n",
            false,
        ),
    ] {
        let tmp = tempfile::tempdir().expect("temp dir");
        let backend = Backend::start("backend");
        let port = free_port();
        config(tmp.path(), port, backend.port, gateway);
        let gloo = gloo_run(tmp.path(), free_port(), tmp.path());
        let _logs = LogsOnPanic(tmp.path(), vec![&gloo]);
        for path in ["/a", "/b"] {
            let r = support::http_get(port, path).expect("an answer");
            assert_eq!(r.status, 200, "{}", r.body);
        }
        assert_eq!(exchange(port, with_client_id).status, 200);
        let seen = backend.seen();
        assert_eq!(seen.len(), 3);
        let ids: Vec<Option<&str>> = seen.iter().map(|s| s.header("x-request-id")).collect();
        if generated {
            // Gloo's default, as Envoy's: a fresh random id for each request without one.
            let (a, b) = (ids[0].unwrap_or(""), ids[1].unwrap_or(""));
            assert!(is_uuid_v4(a) && is_uuid_v4(b), "{ids:?}");
            assert_ne!(a, b, "each request gets its own id");
        } else {
            assert_eq!(ids[..2], [None, None], "generateRequestId: false adds none");
        }
        // A client's own id is passed on either way.
        assert_eq!(ids[2], Some("client-chosen"), "generated: {generated}");
    }
}

/// A backend that accepts one websocket upgrade and then echoes bytes upper-cased.
fn upgrade_backend() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if stream.read(&mut byte).unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
                if !text.contains("upgrade: websocket") {
                    let _ =
                        stream.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
                    return;
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
                );
                let mut buf = [0u8; 1024];
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            let upper: Vec<u8> = buf[..n].to_ascii_uppercase();
                            if stream.write_all(&upper).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    port
}

#[test]
fn websocket_upgrades_are_carried_both_ways() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let backend = upgrade_backend();
    let port = free_port();
    config(tmp.path(), port, backend, "  httpGateway: {}\n");
    let gloo = gloo_run(tmp.path(), free_port(), tmp.path());
    let _logs = LogsOnPanic(tmp.path(), vec![&gloo]);
    let mut s = poll("a connection to gloo", || {
        TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut byte).expect("read the 101"),
            1,
            "closed early: {head:?}"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    for message in [&b"hello"[..], b"second frame"] {
        s.write_all(message).expect("write through the tunnel");
        let mut got = vec![0u8; message.len()];
        s.read_exact(&mut got).expect("read the echo");
        assert_eq!(got, message.to_ascii_uppercase());
    }
}

/// A `gloo run` on the config of [`config`] whose Gateway carries these
/// `httpConnectionManagerSettings` (YAML lines, each indented by eight spaces), plus any
/// further files; its logs are printed if the test fails.
struct ConnectionManagerGateway {
    port: u16,
    backend: Backend,
    gloo: support::Proc,
    dir: tempfile::TempDir,
}

impl ConnectionManagerGateway {
    /// A Gateway whose `httpConnectionManagerSettings` are `settings`, plus extra files.
    fn start(settings: &str, files: &[(&str, String)]) -> Self {
        Self::start_with(
            &format!("      httpConnectionManagerSettings:\n{settings}"),
            files,
        )
    }

    /// A Gateway whose HTTP listener options are `options`.
    fn start_with_options(options: &str) -> Self {
        Self::start_with(options, &[])
    }

    fn start_with(options: &str, files: &[(&str, String)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let backend = Backend::start("backend");
        let port = free_port();
        config(
            dir.path(),
            port,
            backend.port,
            &format!("  httpGateway:\n    options:\n{options}"),
        );
        for (name, contents) in files {
            fs::write(dir.path().join(name), contents).expect("write config");
        }
        let gloo = gloo_run(dir.path(), free_port(), dir.path());
        ConnectionManagerGateway {
            port,
            backend,
            gloo,
            dir,
        }
    }
}

impl Drop for ConnectionManagerGateway {
    fn drop(&mut self) {
        support::print_logs_if_panicking(self.dir.path(), &[&self.gloo]);
    }
}

/// Reads until the peer closes the connection; `true` if it did within `within`.
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).expect("read timeout");
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(_) => return false,
        }
    }
}

/// Envoy's downstream connection limits (`common_http_protocol_options`, set with Gloo's
/// `httpConnectionManagerSettings`): a connection idle for `idleTimeout` is closed; one that
/// served `maxRequestsPerConnection` requests says `connection: close` on the last answer and
/// is closed; while busy, a connection is not idle.
#[test]
fn downstream_connections_close_when_idle_and_after_their_request_budget() {
    let gateway = ConnectionManagerGateway::start(
        "        idleTimeout: 1s\n        maxRequestsPerConnection: 3\n",
        &[],
    );
    let port = gateway.port;
    let request = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n";

    // Idle: one request, then silence: closed after about a second, not before.
    let mut idle = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    idle.write_all(request).expect("write");
    let first = read_response(&mut idle, false).expect("a response");
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.header("connection"), None);
    assert!(
        !closed_within(&mut idle, Duration::from_millis(400)),
        "closed long before the idle timeout"
    );
    assert!(
        closed_within(&mut idle, Duration::from_secs(3)),
        "an idle connection stays open past idleTimeout"
    );

    // Requests keep a connection busy: four requests half a second apart would outlive the
    // idle timeout only if activity did not count, and the third closes it (its budget).
    let mut busy = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    for n in 1..=3 {
        busy.write_all(request).expect("write");
        let response = read_response(&mut busy, false).expect("a response");
        assert_eq!(response.status, 200, "request {n}: {}", response.body);
        let expected = (n == 3).then_some("close");
        assert_eq!(response.header("connection"), expected, "request {n}");
        if n < 3 {
            std::thread::sleep(Duration::from_millis(600));
        }
    }
    assert!(
        closed_within(&mut busy, Duration::from_secs(2)),
        "the connection stays open after its last request"
    );
}

/// `headersWithUnderscoresAction`: DROP_HEADER removes `x_tenant` before the upstream sees
/// the request; REJECT_REQUEST answers 400. `maxHeadersCount` answers 431 above the limit.
#[test]
fn underscored_headers_are_dropped_or_rejected_and_header_count_is_limited() {
    let reject_port = free_port();
    let settings = |action: &str| {
        format!("        headersWithUnderscoresAction: {action}\n        maxHeadersCount: 10\n")
    };
    // A second Gateway, rejecting instead of dropping, serves the same VirtualService.
    let gateway = ConnectionManagerGateway::start(
        &settings("DROP_HEADER"),
        &[(
            "reject.yaml",
            format!(
                "apiVersion: gateway.solo.io/v1\nkind: Gateway\nmetadata: {{name: reject, namespace: gloo-system}}\nspec:\n  bindAddress: 127.0.0.1\n  bindPort: {reject_port}\n  httpGateway:\n    options:\n      httpConnectionManagerSettings:\n{}",
                settings("REJECT_CLIENT_REQUEST")
            ),
        )],
    );
    let (drop_port, backend) = (gateway.port, &gateway.backend);

    let with_underscore =
        b"GET /u HTTP/1.1\r\nHost: a\r\nx_tenant: evil\r\nx-tenant: good\r\nConnection: close\r\n\r\n";
    let dropped = exchange(drop_port, with_underscore);
    assert_eq!(dropped.status, 200, "{}", dropped.body);
    let seen = backend.seen();
    let last = seen.last().expect("the backend saw the request");
    assert_eq!(last.header("x-tenant"), Some("good"));
    assert_eq!(last.header("x_tenant"), None, "{:?}", last.headers);

    let before = backend.count();
    let rejected = exchange(reject_port, with_underscore);
    assert_eq!(rejected.status, 400, "{}", rejected.body);
    assert_eq!(
        backend.count(),
        before,
        "a rejected request reached the backend"
    );

    let mut many = String::from("GET /many HTTP/1.1\r\nHost: a\r\nConnection: close\r\n");
    for i in 0..12 {
        many.push_str(&format!("x-h{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let too_many = exchange(drop_port, many.as_bytes());
    assert_eq!(too_many.status, 431, "{}", too_many.body);
    let few = exchange(
        drop_port,
        b"GET /few HTTP/1.1\r\nHost: a\r\nx-a: 1\r\nx-b: 2\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(few.status, 200, "{}", few.body);
}

/// `maxStreamDuration`: a request still unanswered when it runs out gets Envoy's 408
/// `downstream duration timeout`; a quick one is unaffected.
#[test]
fn a_stream_longer_than_max_stream_duration_gets_408() {
    let gateway = ConnectionManagerGateway::start("        maxStreamDuration: 0.3s\n", &[]);
    let (port, backend) = (gateway.port, &gateway.backend);
    let request = b"GET /slow HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    let quick = exchange(port, request);
    assert_eq!(quick.status, 200, "{}", quick.body);
    backend.set_behaviour(support::Behaviour::DelayMs(1500));
    let slow = exchange(port, request);
    assert_eq!(slow.status, 408, "{}", slow.body);
    assert_eq!(slow.body, "downstream duration timeout");
}

/// `requestTimeout`: a request whose body has not all arrived in time gets Envoy's 408
/// `request timeout`; a complete request is served, however long the upstream then takes.
#[test]
fn a_request_body_slower_than_request_timeout_gets_408() {
    let gateway = ConnectionManagerGateway::start("        requestTimeout: 0.5s\n", &[]);
    let (port, backend) = (gateway.port, &gateway.backend);

    let mut stalled = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stalled
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    stalled
        .write_all(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
        .expect("write");
    let started = std::time::Instant::now();
    let timed_out = read_response(&mut stalled, false).expect("a response");
    assert_eq!(timed_out.status, 408, "{}", timed_out.body);
    assert_eq!(timed_out.body, "request timeout");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "answered only after {:?}",
        started.elapsed()
    );

    // The whole request arrived: the upstream may take longer than requestTimeout.
    backend.set_behaviour(support::Behaviour::DelayMs(900));
    let complete = exchange(
        port,
        b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nConnection: close\r\n\r\n0123456789",
    );
    assert_eq!(complete.status, 200, "{}", complete.body);
}

/// The stream idle timeout: with nothing moving on a stream for that long, a request still
/// waiting for its answer gets Envoy's 408 `stream timeout`. The connection manager's
/// `streamIdleTimeout` applies to every route; a route's own `idleTimeout` replaces it (here
/// longer than the upstream's delay, so that route is served).
#[test]
fn a_stream_idle_longer_than_its_idle_timeout_gets_408() {
    let gateway = ConnectionManagerGateway::start(
        "        streamIdleTimeout: 0.4s\n",
        &[(
            "patient.yaml",
            "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: patient, namespace: gloo-system}\nspec:\n  virtualHost:\n    domains: [patient.example]\n    routes:\n    - matchers: [{prefix: /}]\n      routeAction: {single: {upstream: {name: backend, namespace: gloo-system}}}\n      options: {idleTimeout: 5s, timeout: 10s}\n".to_string(),
        )],
    );
    let (port, backend) = (gateway.port, &gateway.backend);

    let quick = exchange(
        port,
        b"GET /q HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(quick.status, 200, "{}", quick.body);
    backend.set_behaviour(support::Behaviour::DelayMs(1200));
    let idle = exchange(
        port,
        b"GET /slow HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(idle.status, 408, "{}", idle.body);
    assert_eq!(idle.body, "stream timeout");
    let patient = exchange(
        port,
        b"GET /slow HTTP/1.1\r\nHost: patient.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(patient.status, 200, "{}", patient.body);
}

/// A backend that sends its response head and the first bytes of a 10-byte body at once,
/// then the rest `delay` later.
fn slow_body_backend(delay: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a backend");
    let port = listener.local_addr().expect("backend address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || -> std::io::Result<()> {
                let mut stream = stream;
                let mut request = Vec::new();
                let mut byte = [0u8; 1];
                while !request.ends_with(b"\r\n\r\n") {
                    if stream.read(&mut byte)? == 0 {
                        return Ok(());
                    }
                    request.push(byte[0]);
                }
                stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\nconnection: close\r\n\r\nfirst",
                )?;
                stream.flush()?;
                std::thread::sleep(delay);
                stream.write_all(b"-last")
            });
        }
    });
    port
}

/// Envoy's route timeout runs until the response has been completely received: a body still
/// arriving when it runs out is cut (the stream is reset), while the same slow body within
/// the default 15 s timeout arrives whole.
#[test]
fn the_route_timeout_also_bounds_the_response_body() {
    let dir = tempfile::tempdir().expect("temp dir");
    let backend = slow_body_backend(Duration::from_millis(1500));
    let port = free_port();
    config(dir.path(), port, backend, "");
    fs::write(
        dir.path().join("timed.yaml"),
        "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: timed, namespace: gloo-system}\nspec:\n  virtualHost:\n    domains: [timed.example]\n    routes:\n    - matchers: [{prefix: /}]\n      routeAction: {single: {upstream: {name: backend, namespace: gloo-system}}}\n      options: {timeout: 0.5s}\n",
    )
    .expect("write config");
    let gloo = gloo_run(dir.path(), free_port(), dir.path());
    let _logs = LogsOnPanic(dir.path(), vec![&gloo]);

    let fetch = |host: &str| {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        write!(
            s,
            "GET /slow HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .expect("write");
        let mut raw = Vec::new();
        // A reset stream may end with an error rather than a clean close: keep what came.
        let _ = s.read_to_end(&mut raw);
        String::from_utf8_lossy(&raw).into_owned()
    };
    let whole = fetch("patient.example");
    assert!(whole.starts_with("HTTP/1.1 200"), "{whole}");
    assert!(whole.ends_with("\r\n\r\nfirst-last"), "{whole}");

    let cut = fetch("timed.example");
    assert!(
        cut.starts_with("HTTP/1.1 200"),
        "the head came in time: {cut}"
    );
    assert!(
        cut.contains("first") && !cut.contains("-last"),
        "the body must be cut at the route timeout: {cut}"
    );
}

/// A listener whose port is taken when its config arrives is bound as soon as the port is
/// free, without any config change (a restart where the old process still holds the port).
#[test]
fn a_listener_whose_port_is_taken_binds_once_the_port_is_free() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A name no other test's backend has: once the squatter lets the port go, another test's
    // gloo may take it for a moment, and its answer must not pass for this one's.
    let backend = Backend::start("behind-the-squatted-port");
    let squatter = TcpListener::bind("127.0.0.1:0").expect("take a port");
    let port = squatter.local_addr().expect("address").port();
    config(dir.path(), port, backend.port, "");
    let gloo = gloo_run(dir.path(), free_port(), dir.path());
    let _logs = LogsOnPanic(dir.path(), vec![&gloo]);

    // The squatter holds the port: connections reach it, not gloo.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(backend.count(), 0);
    drop(squatter);
    let served = poll("the listener to bind once its port is free", || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        s.write_all(b"GET /late HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            .map_err(|e| e.to_string())?;
        let r = read_response(&mut s, false).map_err(|e| e.to_string())?;
        match (r.status, r.header("x-backend")) {
            (200, Some("behind-the-squatted-port")) => Ok(r),
            (status, from) => Err(format!("status {status} from {from:?}")),
        }
    })
    .expect("served");
    assert_eq!(served.header("x-backend"), Some("behind-the-squatted-port"));
    assert_eq!(backend.count(), 1);
}

/// `localRateLimitPerDownstreamConnection`: each downstream connection has its own bucket, so
/// a connection that used up its budget is refused while a new connection is served.
#[test]
fn per_connection_local_rate_limits_count_each_connection_alone() {
    let gateway = ConnectionManagerGateway::start_with_options(
        "      httpLocalRatelimit:\n        defaultLimit: {maxTokens: 2, tokensPerFill: 1, fillInterval: 3600s}\n        localRateLimitPerDownstreamConnection: true\n",
    );
    let mut first = TcpStream::connect(("127.0.0.1", gateway.port)).expect("connect");
    first
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut statuses = Vec::new();
    for _ in 0..3 {
        first
            .write_all(b"GET /kept-alive HTTP/1.1\r\nHost: a\r\n\r\n")
            .expect("write");
        let r = read_response(&mut first, false).expect("a response");
        statuses.push(r.status);
        if r.status == 429 {
            assert_eq!(r.body, "local_rate_limited");
        }
    }
    assert_eq!(statuses, [200, 200, 429], "one connection's budget is 2");
    assert_eq!(gateway.backend.count(), 2);
    // Another connection has a budget of its own.
    let other = exchange(
        gateway.port,
        b"GET /new HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(other.status, 200, "{}", other.body);
    assert_eq!(gateway.backend.count(), 3);
}

/// `stripAnyHostPort` takes the port off the host before routing (the upstream sees the host
/// without it), `acceptHttp10` serves HTTP/1.0 (with `defaultHostForHttp10` as the host of a
/// request without one) instead of 426, `requestHeadersTimeout` closes a connection whose
/// request head does not come in time (10 s when unset), and a client's
/// `x-forwarded-client-cert` is removed (Envoy's default, `SANITIZE`) unless
/// `forwardClientCertDetails` says to pass it on.
#[test]
fn host_ports_http_10_client_cert_headers_and_the_head_timeout_follow_the_connection_manager() {
    let ported = b"GET /ported HTTP/1.1\r\nHost: ports.example:8080\r\nx-forwarded-client-cert: By=spoofed\r\nConnection: close\r\n\r\n";
    let old = b"GET /old HTTP/1.0\r\n\r\n";
    let host_seen = |gateway: &ConnectionManagerGateway, path: &str| {
        gateway
            .backend
            .seen()
            .iter()
            .find(|s| s.target == path)
            .and_then(|s| s.header("host").map(str::to_string))
    };

    let header_seen = |gateway: &ConnectionManagerGateway, name: &str| {
        gateway
            .backend
            .seen()
            .iter()
            .find(|s| s.target == "/ported")
            .and_then(|s| s.header(name).map(str::to_string))
    };

    let defaults = ConnectionManagerGateway::start("        generateRequestId: true\n", &[]);
    assert_eq!(exchange(defaults.port, ported).status, 200);
    assert_eq!(
        host_seen(&defaults, "/ported").as_deref(),
        Some("ports.example:8080")
    );
    assert_eq!(
        header_seen(&defaults, "x-forwarded-client-cert"),
        None,
        "a client's own certificate header is removed"
    );
    assert_eq!(
        exchange(defaults.port, old).status,
        426,
        "HTTP/1.0 is refused by default"
    );

    let gateway = ConnectionManagerGateway::start(
        "        stripAnyHostPort: true\n        acceptHttp10: true\n        defaultHostForHttp10: legacy.example\n        requestHeadersTimeout: 1s\n        forwardClientCertDetails: ALWAYS_FORWARD_ONLY\n",
        &[],
    );
    let port = gateway.port;
    let r = exchange(port, ported);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        host_seen(&gateway, "/ported").as_deref(),
        Some("ports.example")
    );
    assert_eq!(
        header_seen(&gateway, "x-forwarded-client-cert").as_deref(),
        Some("By=spoofed")
    );
    let r = exchange(port, old);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        host_seen(&gateway, "/old").as_deref(),
        Some("legacy.example")
    );

    let mut slow = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    slow.write_all(b"GET /slow HTTP/1.1\r\nHost: a\r\n")
        .expect("write");
    assert!(
        closed_within(&mut slow, Duration::from_secs(5)),
        "an unfinished head outlives requestHeadersTimeout"
    );
}

/// The connection manager's `http2ProtocolOptions` are what an HTTP/2 client is told: the
/// streams it may open at once and the window a stream may send before the proxy reads.
#[test]
fn http2_settings_follow_the_connection_manager() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let backend = Backend::start("backend");
    let port = free_port();
    config(
        tmp.path(),
        port,
        backend.port,
        "  httpGateway:
    options:
      httpConnectionManagerSettings:
        http2ProtocolOptions:
          maxConcurrentStreams: 7
          initialStreamWindowSize: 100000
          initialConnectionWindowSize: 1000000
",
    );
    let gloo = gloo_run(tmp.path(), free_port(), tmp.path());
    let _logs = LogsOnPanic(tmp.path(), vec![&gloo]);
    poll("the listener", || {
        TcpStream::connect(("127.0.0.1", port))
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .expect("listening");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (streams, window) = runtime.block_on(async {
        let io = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let (client, mut connection) = h2::client::handshake(io).await.expect("handshake");
        let mut client = client.ready().await.expect("ready");
        let request = || {
            http::Request::get(format!("http://127.0.0.1:{port}/"))
                .body(())
                .expect("request")
        };
        // One exchange first: the server's SETTINGS have arrived once its answer has.
        let (response, _) = client.send_request(request(), true).expect("send");
        tokio::select! {
            response = response => assert_eq!(response.expect("answer").status(), 200),
            _ = &mut connection => panic!("the connection ended"),
        }
        let mut client = client.ready().await.expect("ready");
        let (_response, mut body) = client.send_request(request(), false).expect("send");
        body.reserve_capacity(1 << 20);
        let window = tokio::select! {
            capacity = std::future::poll_fn(|cx| body.poll_capacity(cx)) => {
                capacity.expect("capacity").expect("a window")
            }
            _ = &mut connection => panic!("the connection ended"),
        };
        (connection.max_concurrent_send_streams(), window)
    });
    assert_eq!(streams, 7);
    assert_eq!(window, 100_000);
}

/// An HTTP/2 Upstream's `initialStreamWindowSize` is the window gloo-proxy gives it: an h2c
/// backend (the h2 crate) answers with how much it may send at once on the stream.
#[test]
fn an_http2_upstreams_stream_window_is_what_the_proxy_grants() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the backend");
    let backend = listener.local_addr().expect("backend address").port();
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            while let Ok((io, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let Ok(mut connection) = h2::server::handshake(io).await else {
                        return;
                    };
                    while let Some(Ok((_request, mut respond))) = connection.accept().await {
                        tokio::spawn(async move {
                            let Ok(mut body) =
                                respond.send_response(http::Response::new(()), false)
                            else {
                                return;
                            };
                            // Ask for more than any window: what is granted is the window.
                            body.reserve_capacity(1 << 24);
                            let granted = std::future::poll_fn(|cx| body.poll_capacity(cx))
                                .await
                                .and_then(Result::ok)
                                .unwrap_or(0);
                            let _ = body.send_data(granted.to_string().into(), true);
                        });
                    }
                });
            }
        });
    });
    let tmp = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    config(tmp.path(), port, backend, "  httpGateway: {}\n");
    let path = tmp.path().join("gloo.yaml");
    let yaml = fs::read_to_string(&path).expect("config").replace(
        "spec:\n  static:",
        "spec:\n  useHttp2: true\n  initialStreamWindowSize: 100000\n  initialConnectionWindowSize: 1000000\n  static:",
    );
    fs::write(&path, yaml).expect("write config");
    let gloo = gloo_run(tmp.path(), free_port(), tmp.path());
    let _logs = LogsOnPanic(tmp.path(), vec![&gloo]);
    let granted = poll("an answer from the h2 backend", || {
        let response = exchange(
            port,
            b"GET /window HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        match response.status {
            200 => Ok(response.body),
            other => Err(format!("{other}: {}", response.body)),
        }
    })
    .expect("answered");
    assert_eq!(granted, "100000");
}

/// `appendXForwardedPort` tells the upstream the port the client connected to; a client's own
/// value is kept, except at the edge (`useRemoteAddress`), where it is replaced, as Envoy does
/// (`differential.rs` compares both with Envoy).
#[test]
fn x_forwarded_port_is_the_listeners_port() {
    let with_own =
        b"GET /own HTTP/1.1\r\nHost: h\r\nx-forwarded-port: 1234\r\nConnection: close\r\n\r\n";
    for (edge, settings) in [
        (false, "appendXForwardedPort: true"),
        (true, "appendXForwardedPort: true, useRemoteAddress: true"),
    ] {
        let tmp = tempfile::tempdir().expect("temp dir");
        let backend = Backend::start("backend");
        let port = free_port();
        config(
            tmp.path(),
            port,
            backend.port,
            &format!(
                "  httpGateway:\n    options:\n      httpConnectionManagerSettings: {{{settings}}}\n"
            ),
        );
        let gloo = gloo_run(tmp.path(), free_port(), tmp.path());
        let _logs = LogsOnPanic(tmp.path(), vec![&gloo]);
        let r = support::http_get(port, "/plain").expect("an answer");
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(exchange(port, with_own).status, 200);
        let seen = backend.seen();
        let ports: Vec<Option<&str>> = seen.iter().map(|s| s.header("x-forwarded-port")).collect();
        let listener = port.to_string();
        let own = if edge { listener.as_str() } else { "1234" };
        assert_eq!(ports, [Some(listener.as_str()), Some(own)], "edge: {edge}");
    }
}
