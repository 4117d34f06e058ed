//! Hostile and malformed clients against `gloo run`: oversized headers, invalid request lines,
//! slowloris, request smuggling, path tricks, and randomly edited requests. Each must get a
//! clear refusal (or be defused), never reach a backend it should not, and never take the
//! proxy down: after every test the process is alive and still serves a normal request.
//! Randomly edited answers from a backend must never reach another client.
//!
//! The config is one Gateway, one Upstream `public` (a `support::Backend` that records every
//! request it reads) and one VirtualService whose only route is the prefix `/public`: there is
//! no catch-all, so anything else is a 404 from the proxy itself.
//! Everything listens on 127.0.0.1 on free ports; gloo is killed when the test ends, and on
//! failure the config and its logs are printed.

mod support;

use std::fmt::Write as _;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::{
    free_port, gloo_run, http_get, poll, print_logs_if_panicking, read_response, Backend, Proc,
    Response, Seen,
};

/// `gloo run` in front of the `public` backend.
struct Fixture {
    port: u16,
    backend: Backend,
    config_dir: PathBuf,
    gloo: Proc,
    _root: tempfile::TempDir,
}

const PUBLIC_VS: &str = "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: public, namespace: gloo-system}\nspec:\n  virtualHost:\n    domains: ['*']\n    routes:\n    - matchers: [{prefix: /public}]\n      routeAction: {single: {upstream: {name: public, namespace: gloo-system}}}\n";

fn gateway_yaml(name: &str, port: u16, options: &str) -> String {
    format!(
        "apiVersion: gateway.solo.io/v1\nkind: Gateway\nmetadata: {{name: {name}, namespace: gloo-system}}\nspec:\n  bindAddress: 127.0.0.1\n  bindPort: {port}\n  httpGateway: {{{options}}}\n"
    )
}

impl Fixture {
    /// Starts the backend and `gloo run`; `extra_gateways` are more Gateway documents.
    fn start_with(extra_gateways: &str) -> Fixture {
        let backend = Backend::start("public");
        let root = tempfile::tempdir().expect("tempdir");
        let config_dir = root.path().join("config");
        fs::create_dir_all(&config_dir).expect("config dir");
        let port = free_port();
        let gateways = gateway_yaml("gw", port, "") + extra_gateways;
        let upstream = format!(
            "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: public, namespace: gloo-system}}\nspec:\n  static:\n    hosts:\n    - {{addr: 127.0.0.1, port: {}}}\n",
            backend.port
        );
        for (file, text) in [
            ("gateways.yaml", gateways),
            ("upstream.yaml", upstream),
            ("vs.yaml", PUBLIC_VS.to_string()),
        ] {
            fs::write(config_dir.join(file), text).expect("write config");
        }
        let gloo = gloo_run(&config_dir, free_port(), root.path());
        let mut fixture = Fixture {
            port,
            backend,
            config_dir,
            gloo,
            _root: root,
        };
        fixture.assert_serving("start-up");
        fixture
    }

    fn start() -> Fixture {
        Fixture::start_with("")
    }

    /// gloo is alive and `GET /public/ok` reaches the backend (polled, for start-up).
    fn assert_serving(&mut self, when: &str) {
        let port = self.port;
        let gloo = &mut self.gloo;
        let result = poll(&format!("a normal request to be served ({when})"), || {
            gloo.check_running()?;
            let r = http_get(port, "/public/ok").map_err(|e| e.to_string())?;
            match (r.status, r.header("x-backend")) {
                (200, Some("public")) => Ok(()),
                (status, b) => Err(format!("{status} from {b:?}")),
            }
        });
        if let Err(e) = result {
            panic!("{e}");
        }
    }

    /// The requests the backend saw carrying `x-case: case`.
    fn seen_case(&self, case: &str) -> Vec<Seen> {
        self.backend
            .seen()
            .into_iter()
            .filter(|s| s.header("x-case") == Some(case))
            .collect()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        print_logs_if_panicking(&self.config_dir, &[&self.gloo]);
    }
}

/// Sends `request` on a fresh connection (a write error, such as the proxy closing early, is
/// tolerated) and reads one response.
fn send_raw(port: u16, request: &[u8]) -> Result<Response, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let written = stream.write_all(request);
    read_response(&mut stream, false).map_err(|e| format!("{e} (write: {written:?})"))
}

fn status_of(r: &Result<Response, String>) -> String {
    match r {
        Ok(r) => format!("{} from {:?}", r.status, r.header("x-backend")),
        Err(e) => format!("no response: {e}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Oversized headers

#[test]
fn oversized_request_headers_are_refused_and_the_proxy_keeps_serving() {
    let mut fx = Fixture::start();
    let mut problems = Vec::new();
    let big = "a".repeat(100 * 1024);
    let many: String = (0..150).map(|i| format!("x-many-{i}: {i}\r\n")).collect();
    let cases: Vec<(&str, String, &[u16])> = vec![
        (
            "a 100 KiB header",
            format!("GET /public/big HTTP/1.1\r\nHost: h\r\nx-case: big\r\nx-big: {big}\r\n\r\n"),
            &[431, 400],
        ),
        (
            "a 100 KiB request target",
            format!("GET /public/{big} HTTP/1.1\r\nHost: h\r\nx-case: long-target\r\n\r\n"),
            &[414, 431, 400],
        ),
        (
            "150 headers",
            format!("GET /public/many HTTP/1.1\r\nHost: h\r\nx-case: many\r\n{many}\r\n"),
            &[431, 400],
        ),
    ];
    for (what, request, allowed) in &cases {
        let answer = send_raw(fx.port, request.as_bytes());
        match &answer {
            Ok(r) if allowed.contains(&r.status) && r.header("x-backend").is_none() => {}
            _ => problems.push(format!(
                "{what}: expected one of {allowed:?} from the proxy, got {}",
                status_of(&answer)
            )),
        }
        fx.assert_serving(what);
    }
    for case in ["big", "long-target", "many"] {
        if !fx.seen_case(case).is_empty() {
            problems.push(format!("the backend received the {case:?} request"));
        }
    }
    // Below the limit (Envoy's default 60 KiB of headers): forwarded intact.
    let fine = "b".repeat(40 * 1024);
    let answer = send_raw(
        fx.port,
        format!("GET /public/fine HTTP/1.1\r\nHost: h\r\nx-case: fine\r\nx-fine: {fine}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    match &answer {
        Ok(r) if r.status == 200 => {
            let seen = fx.seen_case("fine");
            if seen.len() != 1 || seen[0].header("x-fine") != Some(fine.as_str()) {
                problems.push("a 40 KiB header did not reach the backend intact".to_string());
            }
        }
        _ => problems.push(format!(
            "a 40 KiB header should be forwarded, got {}",
            status_of(&answer)
        )),
    }
    fx.assert_serving("the end");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Invalid request lines

#[test]
fn invalid_request_lines_get_400() {
    let mut fx = Fixture::start();
    let cases: [(&str, &[u8]); 8] = [
        ("garbage", b"GARBAGE\r\n\r\n"),
        ("no version", b"GET /public/nv\r\nHost: h\r\n\r\n"),
        (
            "unknown version",
            b"GET /public/uv HTTP/1.x\r\nHost: h\r\n\r\n",
        ),
        (
            "extra token",
            b"GET /public/et HTTP/1.1 extra\r\nHost: h\r\n\r\n",
        ),
        (
            "double space",
            b"GET  /public/ds HTTP/1.1\r\nHost: h\r\n\r\n",
        ),
        (
            "NUL in the method",
            b"G\0T /public/nul HTTP/1.1\r\nHost: h\r\n\r\n",
        ),
        (
            "control character in the target",
            b"GET /public/\x01 HTTP/1.1\r\nHost: h\r\n\r\n",
        ),
        (
            "header without a colon",
            b"GET /public/hc HTTP/1.1\r\nHost h\r\n\r\n",
        ),
    ];
    let mut problems = Vec::new();
    for (what, request) in cases {
        let answer = send_raw(fx.port, request);
        if !matches!(&answer, Ok(r) if r.status == 400 && r.header("x-backend").is_none()) {
            problems.push(format!("{what}: expected 400, got {}", status_of(&answer)));
        }
    }
    let reached: Vec<String> = fx.backend.seen().into_iter().map(|s| s.target).collect();
    if reached.iter().any(|t| t != "/public/ok") {
        problems.push(format!("the backend received {reached:?}"));
    }
    fx.assert_serving("the end");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Slowloris

#[test]
fn a_slowloris_client_is_cut_off_by_the_header_timeout() {
    let mut fx = Fixture::start();
    let addr = SocketAddr::from(([127, 0, 0, 1], fx.port));
    let mut slow = TcpStream::connect(addr).expect("connect");
    slow.set_read_timeout(Some(Duration::from_millis(250)))
        .unwrap();
    slow.write_all(b"GET /public/slowloris HTTP/1.1\r\nHost: h\r\nx-case: slowloris\r\nx-slow: ")
        .expect("write the start of the request");
    let start = Instant::now();
    let mut answered = Vec::new();
    let mut last_normal = Instant::now();
    let mut normal_failures = Vec::new();
    let cut_off = loop {
        if start.elapsed() > Duration::from_secs(15) {
            break None;
        }
        if let Err(e) = slow.write_all(b"a") {
            break Some((start.elapsed(), format!("write failed: {e}")));
        }
        let mut buf = [0u8; 4096];
        match slow.read(&mut buf) {
            Ok(0) => break Some((start.elapsed(), "closed".to_string())),
            Ok(n) => answered.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => break Some((start.elapsed(), format!("read failed: {e}"))),
        }
        // Meanwhile the proxy serves everyone else.
        if last_normal.elapsed() > Duration::from_secs(2) {
            last_normal = Instant::now();
            match http_get(fx.port, "/public/meanwhile") {
                Ok(r) if r.status == 200 => {}
                other => normal_failures.push(format!("{other:?}")),
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    eprintln!(
        "slowloris connection: {cut_off:?}; the proxy sent {:?}",
        String::from_utf8_lossy(&answered)
    );
    let Some((after, how)) = cut_off else {
        panic!("a client sending its headers a byte every 0.5 s was not cut off within 15 s");
    };
    assert!(
        after >= Duration::from_secs(2),
        "the connection was closed after {after:?} ({how}): too early for a header timeout, so \
         something else refused the request: {:?}",
        String::from_utf8_lossy(&answered)
    );
    assert!(
        fx.seen_case("slowloris").is_empty(),
        "the slow request reached the backend"
    );
    assert!(
        normal_failures.is_empty(),
        "normal requests failed during the attack: {normal_failures:?}"
    );
    fx.assert_serving("the end");
}

// ---------------------------------------------------------------------------------------------
// Request smuggling

/// What a smuggling attempt may get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Smuggle {
    /// Refused: 400 (or 501 for a transfer coding the proxy does not implement).
    Refused,
    /// Both `Content-Length` and `Transfer-Encoding: chunked`: RFC 9112 6.3 lets a server
    /// refuse it (Envoy answers 400) or read it as chunked and close the connection after
    /// answering. Either way the backend must get unambiguous framing and no second request.
    RefusedOrDefused,
}

/// The request an attacker hides in the body: to `/admin`, which no route serves, so the
/// backend seeing it means it was smuggled past the proxy's routing.
fn smuggled(i: usize) -> String {
    format!("GET /admin/smuggled-{i} HTTP/1.1\r\nHost: h\r\nx-case: smuggled-{i}\r\n\r\n")
}

/// `POST /public/smuggle` with `headers`, then the body `smuggled(i)` as one chunk (so a
/// reader that takes `Content-Length: 4` instead sees a second request).
fn te_cl(i: usize, headers: &str) -> String {
    let inner = smuggled(i);
    format!(
        "POST /public/smuggle HTTP/1.1\r\nHost: h\r\nx-case: {i}\r\n{headers}\r\n{:x}\r\n{inner}\r\n0\r\n\r\n",
        inner.len()
    )
}

/// The cases, numbered from `first`: `x-case: i` on the front request.
fn smuggling_cases(first: usize) -> Vec<(usize, &'static str, String, Smuggle)> {
    use Smuggle::*;
    let mut cases = Vec::new();
    let mut add = |what: &'static str, build: &dyn Fn(usize) -> String, expect: Smuggle| {
        let i = first + cases.len();
        cases.push((i, what, build(i), expect));
    };
    add(
        "CL.TE: Content-Length covers a smuggled request after the last chunk",
        &|i| {
            let body = format!("0\r\n\r\n{}", smuggled(i));
            format!(
                "POST /public/smuggle HTTP/1.1\r\nHost: h\r\nx-case: {i}\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n{body}",
                body.len()
            )
        },
        RefusedOrDefused,
    );
    add(
        "TE.CL: Content-Length: 4 and a chunked body holding a request",
        &|i| te_cl(i, "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n"),
        RefusedOrDefused,
    );
    add(
        "TE.CL, Transfer-Encoding first",
        &|i| te_cl(i, "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n"),
        RefusedOrDefused,
    );
    add(
        "two different Content-Lengths",
        &|i| {
            let body = smuggled(i);
            format!(
                "POST /public/smuggle HTTP/1.1\r\nHost: h\r\nx-case: {i}\r\nContent-Length: 0\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        },
        Refused,
    );
    add(
        "Transfer-Encoding: chunked, identity",
        &|i| {
            te_cl(
                i,
                "Content-Length: 4\r\nTransfer-Encoding: chunked, identity\r\n",
            )
        },
        Refused,
    );
    add(
        "Transfer-Encoding: chunked then Transfer-Encoding: identity",
        &|i| {
            te_cl(
                i,
                "Content-Length: 4\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
            )
        },
        Refused,
    );
    add(
        "Transfer-Encoding: xchunked",
        &|i| te_cl(i, "Content-Length: 4\r\nTransfer-Encoding: xchunked\r\n"),
        Refused,
    );
    add(
        "Transfer-Encoding with a space before the colon",
        &|i| te_cl(i, "Content-Length: 4\r\nTransfer-Encoding : chunked\r\n"),
        Refused,
    );
    add(
        "Transfer-Encoding folded onto a continuation line",
        &|i| te_cl(i, "Content-Length: 4\r\nTransfer-Encoding:\r\n chunked\r\n"),
        Refused,
    );
    add(
        "a signed Content-Length",
        &|i| {
            let body = smuggled(i);
            format!(
                "POST /public/smuggle HTTP/1.1\r\nHost: h\r\nx-case: {i}\r\nContent-Length: +{}\r\n\r\n{body}",
                body.len()
            )
        },
        Refused,
    );
    cases
}

/// Each attempt is made twice: first on a new connection, then after a plain request was
/// served on the same connection (the proxy's own HTTP/1 loop serves plain requests and
/// hands the connection to hyper, with the bytes it has read, at the first one it does not
/// serve: these attempts must meet the same defences there).
#[test]
fn request_smuggling_is_refused_or_defused() {
    let mut fx = Fixture::start();
    let mut problems = Vec::new();
    let mut report = String::new();
    let attempts = smuggling_cases(0)
        .into_iter()
        .map(|case| (false, case))
        .chain(smuggling_cases(100).into_iter().map(|case| (true, case)));
    for (after_a_request, (i, what, request, expect)) in attempts {
        let what = if after_a_request {
            format!("{what} (after a served request)")
        } else {
            what.to_string()
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], fx.port));
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        if after_a_request {
            let plain =
                format!("GET /public/plain HTTP/1.1\r\nHost: h\r\nx-case: plain-{i}\r\n\r\n");
            stream
                .write_all(plain.as_bytes())
                .expect("write a plain request");
            match read_response(&mut stream, false) {
                Ok(r) if r.status == 200 => {}
                other => problems.push(format!("{what}: the plain request got {other:?}")),
            }
        }
        let written = stream.write_all(request.as_bytes());
        let first = read_response(&mut stream, false);
        let status = first.as_ref().map(|r| r.status).ok();
        let _ = writeln!(report, "{what}: {status:?}");
        match (&first, expect) {
            (Ok(r), _) if r.status == 400 => {}
            (Ok(r), Smuggle::Refused) if r.status == 501 => {}
            (Ok(r), Smuggle::RefusedOrDefused) if r.status == 200 => {
                // Read as chunked: the backend got one request with the chunked body.
                let seen = fx.seen_case(&i.to_string());
                let body_ok = match seen.as_slice() {
                    [one] if what.starts_with("CL.TE") => one.body.is_empty(),
                    [one] => one.body == smuggled(i).as_bytes(),
                    _ => false,
                };
                if !body_ok {
                    problems.push(format!(
                        "{what}: forwarded, but the backend saw {:?}",
                        seen.iter()
                            .map(|s| (&s.target, String::from_utf8_lossy(&s.body)))
                            .collect::<Vec<_>>()
                    ));
                }
            }
            _ => problems.push(format!(
                "{what}: expected {expect:?}, got {} (write: {written:?})",
                match &first {
                    Ok(r) => format!("{} {:?}", r.status, r.body),
                    Err(e) => format!("no response: {e}"),
                }
            )),
        }
        if expect == Smuggle::Refused && !fx.seen_case(&i.to_string()).is_empty() {
            problems.push(format!("{what}: refused, yet the backend received it"));
        }
        // Whatever follows the first request on this connection must not be served as a
        // request: the proxy closes the connection (RFC 9112 6.3 for CL+TE; after a 400 the
        // framing is unknown).
        if first.is_ok() {
            match read_response(&mut stream, false) {
                Ok(second) => problems.push(format!(
                    "{what}: a second response on the same connection ({} {:?}): the trailing bytes were read as a request",
                    second.status, second.body
                )),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    problems.push(format!(
                        "{what}: the connection stays open after an ambiguous request"
                    ))
                }
                Err(_) => {}
            }
        }
    }
    // Anything forwarded has arrived by now.
    std::thread::sleep(Duration::from_millis(300));
    let smuggled_through: Vec<String> = fx
        .backend
        .seen()
        .into_iter()
        .map(|s| s.target)
        .filter(|t| t.contains("smuggled"))
        .collect();
    if !smuggled_through.is_empty() {
        problems.push(format!(
            "requests were smuggled to the backend: {smuggled_through:?}"
        ));
    }
    let ambiguous = fx.backend.ambiguous();
    if !ambiguous.is_empty() {
        problems.push(format!(
            "the backend received requests with ambiguous framing: {ambiguous:?}"
        ));
    }
    eprintln!("{report}");
    fx.assert_serving("the end");
    assert!(problems.is_empty(), "{}\n\n{report}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// One connection, two servers

/// Plain requests (and small bodies sent with their heads) are served by the proxy's own
/// HTTP/1 loop, and the first request it does not serve (here a chunked POST) hands the
/// connection to hyper with the bytes already read. Every request on the connection is
/// answered once, in order, and reaches the backend once and whole; pipelined requests too.
#[test]
fn requests_before_and_after_a_handover_are_each_served_once_in_order() {
    let fx = Fixture::start();
    let addr = SocketAddr::from(([127, 0, 0, 1], fx.port));
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let steps = [
        "GET /public/one HTTP/1.1\r\nHost: h\r\nx-case: mixed-1\r\n\r\n",
        "GET /public/two HTTP/1.1\r\nHost: h\r\nx-case: mixed-2\r\nContent-Length: 0\r\n\r\n",
        "POST /public/three HTTP/1.1\r\nHost: h\r\nx-case: mixed-3\r\nContent-Length: 5\r\n\r\nhello",
        "POST /public/four HTTP/1.1\r\nHost: h\r\nx-case: mixed-4\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nworld\r\n0\r\n\r\n",
        "GET /public/five HTTP/1.1\r\nHost: h\r\nx-case: mixed-5\r\n\r\n",
    ];
    for (n, request) in steps.iter().enumerate() {
        stream.write_all(request.as_bytes()).expect("write");
        let response = read_response(&mut stream, false)
            .unwrap_or_else(|e| panic!("request {} on the connection: {e}", n + 1));
        assert_eq!(response.status, 200, "request {}: {response:?}", n + 1);
        assert_eq!(response.header("x-backend"), Some("public"));
    }
    for n in 1..=5 {
        let seen = fx.seen_case(&format!("mixed-{n}"));
        assert_eq!(
            seen.len(),
            1,
            "request {n} reached the backend {} times",
            seen.len()
        );
        let expected_body: &[u8] = match n {
            3 => b"hello",
            4 => b"world",
            _ => b"",
        };
        assert_eq!(seen[0].body, expected_body, "request {n}'s body");
    }

    // Three pipelined requests in one write, the last closing: three answers, in order.
    let mut pipelined = TcpStream::connect(addr).expect("connect");
    pipelined
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let requests: String = (1..=3)
        .map(|n| {
            format!(
                "GET /public/p{n} HTTP/1.1\r\nHost: h\r\nx-case: pipelined\r\n{}\r\n",
                if n == 3 { "Connection: close\r\n" } else { "" }
            )
        })
        .collect();
    pipelined.write_all(requests.as_bytes()).expect("write");
    let mut raw = Vec::new();
    pipelined
        .read_to_end(&mut raw)
        .expect("the proxy closes after the third answer");
    let text = String::from_utf8_lossy(&raw);
    assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 3, "{text}");
    let targets: Vec<String> = fx
        .seen_case("pipelined")
        .into_iter()
        .map(|s| s.target)
        .collect();
    assert_eq!(targets, ["/public/p1", "/public/p2", "/public/p3"]);
}

// ---------------------------------------------------------------------------------------------
// Path tricks

/// Why a request target forwarded to the `/public` backend could resolve outside `/public`
/// there: it does not start with `/public`, or it has a dot segment once `%2e` is read as a
/// dot, `\` as a slash and `;parameters` are dropped from segments (as common servers do).
/// `None` if it is safe. (`%2F` is left encoded, as RFC 3986 says: it is not a separator.)
fn escapes_public(target: &str) -> Option<String> {
    let path = target.split('?').next().unwrap_or_default();
    let path = match path.strip_prefix("http://") {
        Some(rest) => &rest[rest.find('/').unwrap_or(rest.len())..],
        None => path,
    };
    if !path.starts_with("/public") {
        return Some(format!("{path:?} does not start with /public"));
    }
    let decoded = path
        .replace("%2e", ".")
        .replace("%2E", ".")
        .replace('\\', "/");
    decoded
        .split('/')
        .map(|segment| segment.split(';').next().unwrap_or_default())
        .find(|name| *name == "." || *name == "..")
        .map(|_| format!("{path:?} has a dot segment"))
}

#[test]
fn path_tricks_never_reach_the_backend_outside_its_prefix() {
    let mut fx = Fixture::start();
    // (request target, the answer required, if one is)
    let cases: &[(&str, Option<u16>)] = &[
        ("/public", Some(200)),
        ("/admin", Some(404)),
        ("/public/../admin", Some(404)),
        ("/public/./../admin", Some(404)),
        ("/public/x/../../admin", Some(404)),
        ("/public/../public/../admin", Some(404)),
        ("/public/%2e%2e/admin", Some(404)),
        ("/public/%2E%2E/admin", Some(404)),
        ("/public/.%2e/admin", Some(404)),
        ("/public/%2e./admin", Some(404)),
        ("/public/..;/admin", Some(404)),
        ("/public\\..\\admin", Some(404)),
        ("/public/..\\admin", Some(404)),
        ("/public/..", Some(404)),
        ("//admin", Some(404)),
        ("/admin/./", Some(404)),
        ("/./admin", Some(404)),
        ("/PUBLIC/../admin", Some(404)),
        ("/public/%00/../admin", Some(400)),
        ("http://h/public/../admin", Some(404)),
        // Encoded slashes are data, not separators (Envoy's default keeps them): these may be
        // forwarded, but only within /public and without dot segments.
        ("/public%2F..%2Fadmin", None),
        ("/public%2f..%2fadmin", None),
        ("/public/..%2Fadmin", None),
        ("/public/%2e%2e%2fadmin", None),
        ("/public/%2e%2e%5cadmin", None),
        ("/public/%252e%252e/admin", None),
        ("/%2e%2e/public", None),
        ("/public/.%2e;x=1/admin", Some(404)),
    ];
    let mut problems = Vec::new();
    let mut report = String::new();
    for (i, (target, required)) in cases.iter().enumerate() {
        let case = format!("path-{i}");
        let request = format!(
            "GET {target} HTTP/1.1\r\nHost: h\r\nx-case: {case}\r\nConnection: close\r\n\r\n"
        );
        let answer = send_raw(fx.port, request.as_bytes());
        let seen = fx.seen_case(&case);
        let _ = writeln!(
            report,
            "{target}: {} {:?}",
            status_of(&answer),
            seen.iter().map(|s| &s.target).collect::<Vec<_>>()
        );
        let Ok(r) = &answer else {
            problems.push(format!("{target}: no answer: {}", status_of(&answer)));
            continue;
        };
        if let Some(required) = required {
            if r.status != *required {
                problems.push(format!("{target}: expected {required}, got {}", r.status));
            }
        }
        match seen.as_slice() {
            [] => {
                if !(400..500).contains(&r.status) || r.header("x-backend").is_some() {
                    problems.push(format!(
                        "{target}: not forwarded, so it should be a 4xx from the proxy, got {}",
                        status_of(&answer)
                    ));
                }
            }
            [forwarded] => {
                if let Some(why) = escapes_public(&forwarded.target) {
                    problems.push(format!("{target}: forwarded as {why}"));
                }
            }
            many => problems.push(format!("{target}: forwarded {} times", many.len())),
        }
    }
    eprintln!("{report}");
    fx.assert_serving("the end");
    assert!(problems.is_empty(), "{}\n\n{report}", problems.join("\n"));
}

/// Gloo's `pathWithEscapedSlashesAction` (HttpConnectionManagerSettings) is how a Gateway
/// protects backends that decode `%2F`: `REJECT_REQUEST` refuses such paths, and
/// `UNESCAPE_AND_FORWARD` decodes them before normalising and routing, so `/public%2F..%2Fadmin`
/// is `/admin`, which no route serves.
#[test]
fn escaped_slash_settings_are_enforced() {
    let reject = free_port();
    let unescape = free_port();
    let settings = |action: &str| {
        format!("options: {{httpConnectionManagerSettings: {{pathWithEscapedSlashesAction: {action}}}}}")
    };
    let gateways = format!(
        "---\n{}---\n{}",
        gateway_yaml("reject", reject, &settings("REJECT_REQUEST")),
        gateway_yaml("unescape", unescape, &settings("UNESCAPE_AND_FORWARD"))
    );
    let mut fx = Fixture::start_with(&gateways);
    let mut problems = Vec::new();
    let mut report = String::new();
    for (port, gateway, target, expected) in [
        (reject, "REJECT_REQUEST", "/public%2F..%2Fadmin", 400),
        (reject, "REJECT_REQUEST", "/public/a%2fb", 400),
        (reject, "REJECT_REQUEST", "/public/a%5Cb", 400),
        (reject, "REJECT_REQUEST", "/public/a%5cb", 400),
        (reject, "REJECT_REQUEST", "/public/a%25b", 200),
        (reject, "REJECT_REQUEST", "/public/plain", 200),
        (
            unescape,
            "UNESCAPE_AND_FORWARD",
            "/public%2F..%2Fadmin",
            404,
        ),
        (
            unescape,
            "UNESCAPE_AND_FORWARD",
            "/public%2f..%2fadmin",
            404,
        ),
        (unescape, "UNESCAPE_AND_FORWARD", "/public/a%2Fb", 200),
    ] {
        let case = format!("{gateway}-{target}");
        let request = format!(
            "GET {target} HTTP/1.1\r\nHost: h\r\nx-case: {case}\r\nConnection: close\r\n\r\n"
        );
        let answer = send_raw(port, request.as_bytes());
        let seen: Vec<String> = fx.seen_case(&case).into_iter().map(|s| s.target).collect();
        let _ = writeln!(
            report,
            "{gateway} {target}: {} {seen:?}",
            status_of(&answer)
        );
        if answer.as_ref().map(|r| r.status).ok() != Some(expected) {
            problems.push(format!(
                "{gateway} {target}: expected {expected}, got {} (backend saw {seen:?})",
                status_of(&answer)
            ));
        }
        if expected == 200 && gateway == "UNESCAPE_AND_FORWARD" && seen != ["/public/a/b"] {
            problems.push(format!(
                "{gateway} {target}: the backend should see /public/a/b, saw {seen:?}"
            ));
        }
    }
    eprintln!("{report}");
    fx.assert_serving("the end");
    assert!(problems.is_empty(), "{}\n\n{report}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Mutated requests

/// Valid requests of every framing the proxy parses (`{c}` is the case's id): a GET, a
/// Content-Length body, a chunked body with a trailer, HTTP/1.0, two pipelined requests, the
/// absolute form, a dot-segment path, an upgrade, `OPTIONS *` and CONNECT.
const REQUEST_SEEDS: &[&str] = &[
    "GET /public/a?x=1 HTTP/1.1\r\nHost: h\r\nx-case: {c}\r\nAccept: */*\r\n\r\n",
    "POST /public/b HTTP/1.1\r\nHost: h\r\nx-case: {c}\r\nContent-Length: 5\r\n\r\nhello",
    "POST /public/c HTTP/1.1\r\nHost: h\r\nx-case: {c}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nx-t: 1\r\n\r\n",
    "GET /public/d HTTP/1.0\r\nx-case: {c}\r\n\r\n",
    "GET /public/e HTTP/1.1\r\nHost: h\r\nx-case: {c}\r\n\r\nGET /public/f HTTP/1.1\r\nHost: h\r\nx-case: {c}\r\n\r\n",
    "GET http://h/public/g HTTP/1.1\r\nHost: h\r\nx-case: {c}\r\n\r\n",
    "GET /public/%2e%2e/x HTTP/1.1\r\nHost: h\r\nx-case: {c}\r\nConnection: close\r\n\r\n",
    "GET /public/ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nx-case: {c}\r\n\r\n",
    "OPTIONS * HTTP/1.1\r\nHost: h\r\nx-case: {c}\r\n\r\n",
    "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\nx-case: {c}\r\n\r\n",
];

/// Bytes that mean something to an HTTP/1 parser.
const INTERESTING_BYTES: &[u8] = b"\0\r\n \t:/%.;,\"\\?#0129aZ\x7f\x80\xff";

/// Header lines that change a request's framing or routing.
const INSERTED_LINES: &[&str] = &[
    "Transfer-Encoding: chunked\r\n",
    "Transfer-Encoding: identity\r\n",
    "Transfer-Encoding: gzip, chunked\r\n",
    "Content-Length: 3\r\n",
    "Content-Length: 1, 2\r\n",
    "Content-Length: +5\r\n",
    "Host: other\r\n",
    " folded\r\n",
    "Expect: 100-continue\r\n",
    "Connection: close, upgrade\r\n",
    "Upgrade: h2c\r\n",
];

/// One to three random edits of `request`: a byte replaced, inserted or removed, a range
/// removed or repeated, a cut, a number made huge or negative, a letter's case swapped, a
/// framing header line inserted at a line boundary.
fn mutate(rng: &mut fastrand::Rng, mut request: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.usize(1..=3) {
        if request.is_empty() {
            break;
        }
        let at = rng.usize(..request.len());
        match rng.u8(0..8) {
            0 => request[at] = INTERESTING_BYTES[rng.usize(..INTERESTING_BYTES.len())],
            1 => request.insert(at, INTERESTING_BYTES[rng.usize(..INTERESTING_BYTES.len())]),
            2 => {
                let end = (at + rng.usize(1..=8)).min(request.len());
                request.drain(at..end);
            }
            3 => {
                let end = (at + rng.usize(1..=16)).min(request.len());
                let copy = request[at..end].to_vec();
                let to = rng.usize(..=request.len());
                request.splice(to..to, copy);
            }
            4 => request.truncate(at),
            5 => {
                let Some(start) = request.iter().position(|b| b.is_ascii_digit()) else {
                    continue;
                };
                let end = start
                    + request[start..]
                        .iter()
                        .take_while(|b| b.is_ascii_digit())
                        .count();
                let number = [
                    "99999999999999999999",
                    "18446744073709551616",
                    "-1",
                    "0x10",
                    "00005",
                ][rng.usize(..5)];
                request.splice(start..end, number.bytes());
            }
            6 => {
                request[at] ^= if request[at].is_ascii_alphabetic() {
                    0x20
                } else {
                    0
                }
            }
            _ => {
                let lines: Vec<usize> = request
                    .windows(2)
                    .enumerate()
                    .filter(|(_, w)| w == b"\r\n")
                    .map(|(i, _)| i + 2)
                    .collect();
                if let Some(&to) = lines.get(rng.usize(..lines.len().max(1))) {
                    let line = INSERTED_LINES[rng.usize(..INSERTED_LINES.len())];
                    request.splice(to..to, line.bytes());
                }
            }
        }
    }
    request
}

/// Sends `request` and reads everything the proxy answers. When the proxy has been quiet for
/// `idle` (it waits for the rest of a cut request, or for the next one on a kept-alive
/// connection) the client half-closes, so nothing more is coming, and reads until the proxy
/// closes.
fn send_and_read_all(port: u16, request: &[u8], idle: Duration) -> Result<Vec<u8>, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    // The proxy may refuse and close before it has read everything: a failed write is fine.
    let _ = stream.write_all(request);
    stream
        .set_read_timeout(Some(idle))
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    let mut half_closed = false;
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(answer),
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if half_closed {
                    return Err(format!(
                        "no close 10 s after the client's, {} bytes in",
                        answer.len()
                    ));
                }
                half_closed = true;
                let _ = stream.shutdown(std::net::Shutdown::Write);
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .map_err(|e| e.to_string())?;
            }
            // A reset after the proxy refused and closed with unread input.
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Ok(answer),
            Err(e) => return Err(format!("{e} after {} bytes", answer.len())),
        }
    }
}

/// Whether `answer` is nothing or starts with a status line (`HTTP/1.1 NNN `, or `HTTP/1.0`
/// for the 426 that refuses HTTP/1.0).
fn starts_with_a_status_line(answer: &[u8]) -> bool {
    answer.is_empty()
        || (answer.len() >= 13
            && (answer.starts_with(b"HTTP/1.1 ") || answer.starts_with(b"HTTP/1.0 "))
            && answer[9..12].iter().all(u8::is_ascii_digit)
            && answer[12] == b' ')
}

/// Randomly edited versions of valid requests (a fixed seed, so a failure repeats; set
/// `GLOO_MUTATION_SEED` to try others): every answer is well-formed HTTP or nothing, none
/// waits, nothing outside `/public` and nothing with ambiguous framing reaches the backend,
/// and the proxy neither panics nor stops serving.
#[test]
fn mutated_requests_get_well_formed_answers_and_never_reach_past_the_route() {
    let mut fx = Fixture::start();
    let seed = std::env::var("GLOO_MUTATION_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261205);
    const CASES: usize = 1500;
    const CLIENTS: usize = 16;
    let port = fx.port;
    let problems = std::sync::Mutex::new(Vec::new());
    // Each case's edits come from its own generator, so a case is the same whichever client
    // thread sends it.
    std::thread::scope(|scope| {
        for client in 0..CLIENTS {
            let problems = &problems;
            scope.spawn(move || {
                for case in (client..CASES).step_by(CLIENTS) {
                    let mut rng = fastrand::Rng::with_seed(seed ^ (case as u64) << 32);
                    let seed_request = REQUEST_SEEDS[case % REQUEST_SEEDS.len()];
                    let request = seed_request.replace("{c}", &format!("m{case}"));
                    let request = mutate(&mut rng, request.into_bytes());
                    let problem =
                        match send_and_read_all(port, &request, Duration::from_millis(100)) {
                            Ok(answer) if starts_with_a_status_line(&answer) => continue,
                            Ok(answer) => format!(
                                "case {case}: malformed answer {:?} to {:?}",
                                String::from_utf8_lossy(&answer[..answer.len().min(80)]),
                                String::from_utf8_lossy(&request)
                            ),
                            Err(e) => format!(
                                "case {case}: {e} to {:?}",
                                String::from_utf8_lossy(&request)
                            ),
                        };
                    problems.lock().expect("problems").push(problem);
                }
            });
        }
    });
    let mut problems = problems.into_inner().expect("problems");
    for seen in fx.backend.seen() {
        if let Some(why) = escapes_public(&seen.target) {
            problems.push(format!("forwarded {:?}: {why}", seen.target));
        }
    }
    for ambiguous in fx.backend.ambiguous() {
        problems.push(format!("forwarded with ambiguous framing: {ambiguous}"));
    }
    fx.assert_serving("after the mutated requests");
    let logs = fx.gloo.logs();
    assert!(!logs.contains("panicked"), "gloo panicked:\n{logs}");
    assert!(problems.is_empty(), "seed {seed}:\n{}", problems.join("\n"));
    eprintln!(
        "seed {seed}: {CASES} mutated requests, {} reached the backend",
        fx.backend.count()
    );
}

// ---------------------------------------------------------------------------------------------
// Mutated responses

/// Valid answers of every framing the proxy reads from an upstream: a Content-Length body, a
/// chunked body with a trailer, 204, 304 with a length and no body, 100 Continue before the
/// answer, an HTTP/1.0 body ended by the close, `Connection: close`, and a 503.
const RESPONSE_SEEDS: &[&str] = &[
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nx-t: 1\r\n\r\n",
    "HTTP/1.1 204 No Content\r\nDate: today\r\n\r\n",
    "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nended by the close",
    "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nended by the close",
    "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
];

/// An upstream that answers each request with a randomly edited [`RESPONSE_SEEDS`] answer
/// (chosen and edited by the request's `x-case: mN`), with `x-case: mN` added as the line after
/// the first CRLF, so an answer names the request it was written for. It keeps connections
/// open as the answer's seed allows, and closes one that has been idle for 300 ms (so an answer
/// cut short ends well before the client, which waits 2 s, gives up).
fn mutating_backend(seed: u64) -> u16 {
    use std::io::BufRead;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_millis(300)));
                let Ok(reader) = stream.try_clone() else {
                    return;
                };
                let mut reader = std::io::BufReader::new(reader);
                let mut writer = stream;
                loop {
                    // A request head (the proxy forwards bodiless GETs), or the end.
                    let mut case = None;
                    loop {
                        let mut line = String::new();
                        match reader.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) if line == "\r\n" => break,
                            Ok(_) => {
                                if let Some(id) =
                                    line.to_ascii_lowercase().strip_prefix("x-case: m")
                                {
                                    case = id.trim().parse::<u64>().ok();
                                }
                            }
                        }
                    }
                    let Some(case) = case else { return };
                    let (answer, then_close) = mutated_answer(seed, case);
                    if writer.write_all(&answer).is_err() || then_close {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// The answer the upstream writes for case `case`, and whether it closes the connection after.
fn mutated_answer(seed: u64, case: u64) -> (Vec<u8>, bool) {
    let mut rng = fastrand::Rng::with_seed(seed ^ case << 32);
    let index = case as usize % RESPONSE_SEEDS.len();
    let mut answer = mutate(&mut rng, RESPONSE_SEEDS[index].as_bytes().to_vec());
    let at = answer
        .windows(2)
        .position(|w| w == b"\r\n")
        .map_or(answer.len(), |i| i + 2);
    answer.splice(at..at, format!("x-case: m{case}\r\n").into_bytes());
    (answer, index == 5 || index == 6)
}

/// The value of the `x-case` header in an answer's head, if it has one.
fn case_of(answer: &[u8]) -> Option<String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    response.parse(answer).ok()?;
    response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("x-case"))
        .map(|h| String::from_utf8_lossy(h.value).into_owned())
}

/// Randomly edited answers from an upstream (a fixed seed; `GLOO_MUTATION_SEED` tries
/// others): every client gets a status line, a relayed answer is always the one written for
/// that client's request (a connection whose answer was misframed is never reused for
/// another), an answer whose body breaks before any of it was sent becomes a 502, nothing
/// waits, and the proxy neither panics nor stops serving.
#[test]
fn mutated_responses_are_relayed_or_refused_and_never_reach_another_client() {
    let seed = std::env::var("GLOO_MUTATION_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261205);
    let backend = mutating_backend(seed);
    let root = tempfile::tempdir().expect("tempdir");
    let config_dir = root.path().join("config");
    fs::create_dir_all(&config_dir).expect("config dir");
    let port = free_port();
    let upstream = format!(
        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: public, namespace: gloo-system}}\nspec:\n  static:\n    hosts:\n    - {{addr: 127.0.0.1, port: {backend}}}\n"
    );
    for (file, text) in [
        ("gateways.yaml", gateway_yaml("gw", port, "")),
        ("upstream.yaml", upstream),
        ("vs.yaml", PUBLIC_VS.to_string()),
    ] {
        fs::write(config_dir.join(file), text).expect("write config");
    }
    let mut gloo = gloo_run(&config_dir, free_port(), root.path());
    let guard = LogsOnPanic(&config_dir, &gloo);
    // Routed once the config is in force: an answer that is not the route's 404.
    let ready = poll("the route to be served", || {
        let request =
            "GET /public/r HTTP/1.1\r\nHost: h\r\nx-case: m0\r\nConnection: close\r\n\r\n";
        match send_and_read_all(port, request.as_bytes(), Duration::from_secs(2)) {
            Ok(answer) if !answer.starts_with(b"HTTP/1.1 404") && !answer.is_empty() => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    if let Err(e) = ready {
        panic!("{e}");
    }
    drop(guard);

    const CASES: usize = 800;
    const CLIENTS: usize = 16;
    let problems = std::sync::Mutex::new(Vec::new());
    let relayed = std::sync::atomic::AtomicUsize::new(0);
    let refused_bodies = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for client in 0..CLIENTS {
            let (problems, relayed, refused_bodies) = (&problems, &relayed, &refused_bodies);
            scope.spawn(move || {
                for case in (client..CASES).step_by(CLIENTS) {
                    let request = format!(
                        "GET /public/r HTTP/1.1\r\nHost: h\r\nx-case: m{case}\r\nConnection: close\r\n\r\n"
                    );
                    let problem = match send_and_read_all(port, request.as_bytes(), Duration::from_secs(2)) {
                        Err(e) => format!("case {case}: {e}"),
                        Ok(answer) if answer.is_empty() || !starts_with_a_status_line(&answer) => {
                            format!(
                                "case {case}: malformed answer {:?} to {:?}",
                                String::from_utf8_lossy(&answer[..answer.len().min(80)]),
                                String::from_utf8_lossy(&mutated_answer(seed, case as u64).0)
                            )
                        }
                        Ok(answer) if answer.starts_with(b"HTTP/1.1 502") => {
                            if answer.ends_with(b"invalid response body") {
                                refused_bodies.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                            continue;
                        }
                        Ok(answer) => match case_of(&answer) {
                            Some(id) if id != format!("m{case}") => format!(
                                "case {case}: got the answer written for {id}: {:?}",
                                String::from_utf8_lossy(&answer[..answer.len().min(120)])
                            ),
                            Some(_) => {
                                relayed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                continue;
                            }
                            None => continue,
                        },
                    };
                    problems.lock().expect("problems").push(problem);
                }
            });
        }
    });
    let problems = problems.into_inner().expect("problems");
    let running = gloo.check_running();
    let _guard = LogsOnPanic(&config_dir, &gloo);
    if let Err(e) = running {
        panic!("gloo exited: {e}");
    }
    let logs = gloo.logs();
    assert!(!logs.contains("panicked"), "gloo panicked:\n{logs}");
    assert!(problems.is_empty(), "seed {seed}:\n{}", problems.join("\n"));
    let (relayed, refused_bodies) = (relayed.into_inner(), refused_bodies.into_inner());
    eprintln!(
        "seed {seed}: {CASES} mutated answers, {relayed} relayed, {refused_bodies} refused \
         as 502 for a body that failed before anything was sent"
    );
    assert!(
        relayed > CASES / 10,
        "only {relayed} answers were relayed: the test tests little"
    );
    // About one case in eight is a chunked answer, and edits break many of their bodies.
    assert!(
        refused_bodies > 0,
        "no answer's body failed: the test tests little"
    );
}

/// Prints the config and gloo's logs if the test panics while it is alive.
struct LogsOnPanic<'a>(&'a std::path::Path, &'a Proc);

impl Drop for LogsOnPanic<'_> {
    fn drop(&mut self) {
        print_logs_if_panicking(self.0, &[self.1]);
    }
}
