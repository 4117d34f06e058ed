//! Gloo's dynamic forward proxy through gloo and through Envoy 1.40 on the same Gloo config:
//! a Gateway with `dynamicForwardProxy` (and the router's `suppressEnvoyHeaders`), whose
//! routes send each request to the host it names, to a literal host, or to the host another
//! header names; a Gateway whose DNS cache holds one host; and one that originates TLS, with
//! the host's name as SNI and as the name its certificate must carry. The same requests go
//! through both proxies; the status, the body, the answer's headers, which backend answered
//! and every header it received must be the same.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use support::{free_port, http_raw, poll, Backend, LogsOnPanic};

fn config(port: u16, tiny: u16, secure: u16, one: u16, ca: &Path) -> String {
    let ca = ca.display();
    format!(
        r#"apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {{name: dfp, namespace: gloo-system}}
spec:
  bindAddress: 127.0.0.1
  bindPort: {port}
  httpGateway:
    virtualServiceSelector: {{dfp: "true"}}
    options:
      dynamicForwardProxy:
        dnsCacheConfig: {{dnsLookupFamily: V4_ONLY, hostTtl: 60s}}
      router: {{suppressEnvoyHeaders: true}}
---
apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {{name: tiny, namespace: gloo-system}}
spec:
  bindAddress: 127.0.0.1
  bindPort: {tiny}
  httpGateway:
    virtualServiceSelector: {{tiny: "true"}}
    options:
      dynamicForwardProxy:
        dnsCacheConfig: {{maxHosts: 1}}
      router: {{suppressEnvoyHeaders: true}}
---
apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {{name: secure, namespace: gloo-system}}
spec:
  bindAddress: 127.0.0.1
  bindPort: {secure}
  httpGateway:
    virtualServiceSelector: {{tiny: "true"}}
    options:
      dynamicForwardProxy:
        dnsCacheConfig: {{dnsLookupFamily: V4_ONLY}}
        sslConfig:
          sslFiles: {{rootCa: {ca}}}
      router: {{suppressEnvoyHeaders: true}}
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: dfp, namespace: gloo-system, labels: {{dfp: "true"}}}}
spec:
  virtualHost:
    domains: ['*']
    routes:
    - matchers: [{{exact: /ready}}]
      directResponseAction: {{status: 200, body: ready}}
    - matchers: [{{prefix: /literal}}]
      routeAction:
        dynamicForwardProxy: {{hostRewrite: "127.0.0.1:{one}"}}
    - matchers: [{{prefix: /header}}]
      routeAction:
        dynamicForwardProxy: {{autoHostRewriteHeader: x-dfp-target}}
    - matchers: [{{prefix: /}}]
      routeAction:
        dynamicForwardProxy: {{}}
      options:
        headerManipulation:
          requestHeadersToAdd: [{{header: {{key: x-via-dfp, value: "yes"}}}}]
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: tiny, namespace: gloo-system, labels: {{tiny: "true"}}}}
spec:
  virtualHost:
    domains: ['*']
    routes:
    - matchers: [{{exact: /ready}}]
      directResponseAction: {{status: 200, body: ready}}
    - matchers: [{{prefix: /}}]
      routeAction:
        dynamicForwardProxy: {{}}
"#
    )
}

/// What one request came to, as compared.
#[derive(Debug, PartialEq)]
struct Outcome {
    status: u16,
    body: String,
    /// The answer's headers, but `date`, `server` (each proxy names itself) and the ids each
    /// proxy makes up.
    headers: BTreeMap<String, Vec<String>>,
    /// What the backend that answered received: its name, the target and every header but
    /// the request id.
    upstream: Option<(String, String, BTreeMap<String, Vec<String>>)>,
}

fn headers<'a>(all: impl Iterator<Item = &'a (String, String)>) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in all {
        if matches!(k.as_str(), "date" | "server" | "x-request-id") {
            continue;
        }
        out.entry(k.to_ascii_lowercase())
            .or_default()
            .push(v.clone());
    }
    out
}

#[test]
fn dynamic_forward_proxy_matches_envoy() {
    let tmp = tempfile::tempdir().expect("tmp");
    let closed = free_port();
    let certs = tmp.path().join("certs");
    fs::create_dir_all(&certs).expect("certs dir");
    support::certificates(&certs, &["localhost"]);
    let (tls_backend, tls_port) = support::tls_backend(&certs, "localhost");
    struct Side {
        name: &'static str,
        port: u16,
        tiny: u16,
        secure: u16,
        one: Backend,
        two: Backend,
    }
    let side = |name| Side {
        name,
        port: free_port(),
        tiny: free_port(),
        secure: free_port(),
        one: Backend::start("one"),
        two: Backend::start("two"),
    };
    let (envoy_side, gloo_side) = (side("envoy"), side("gloo"));
    for s in [&envoy_side, &gloo_side] {
        let dir = tmp.path().join(s.name).join("config");
        fs::create_dir_all(&dir).expect("config dir");
        let yaml = config(s.port, s.tiny, s.secure, s.one.port, &certs.join("ca.crt"));
        fs::write(dir.join("gloo.yaml"), yaml).expect("write config");
    }
    let envoy_dir = tmp.path().join("envoy");
    let gloo_dir = tmp.path().join("gloo");
    let both = support::SideBySide::start(&envoy_dir, &gloo_dir);
    let _logs = LogsOnPanic(&gloo_dir.join("config"), both.with(&[&tls_backend]));
    for s in [&envoy_side, &gloo_side] {
        for port in [s.port, s.tiny, s.secure] {
            poll(&format!("{} to serve on {port}", s.name), || {
                let request = "GET /ready HTTP/1.1\r\nHost: ready\r\nConnection: close\r\n\r\n";
                let r = http_raw(port, request.as_bytes(), false).map_err(|e| e.to_string())?;
                (r.status == 200)
                    .then_some(())
                    .ok_or(format!("{}", r.status))
            })
            .unwrap_or_else(|e| panic!("{e}"));
        }
    }

    // Each request: the Gateway (`dfp`, `tiny` or `secure`), the path, and its headers
    // (`{one}`, `{two}`, `{tls}` and `{closed}` stand for the side's backends' ports, the
    // HTTPS backend's and a closed one).
    let requests: [(&str, &str, &str); 13] = [
        // To the host the request names: an address, then a name the resolver knows.
        ("dfp", "/plain", "Host: 127.0.0.1:{one}\r\n"),
        ("dfp", "/plain/again?x=1", "Host: localhost:{two}\r\n"),
        // The route's literal host, whatever the request names.
        ("dfp", "/literal/a", "Host: elsewhere.example\r\n"),
        // The host another header names, when the request has it.
        (
            "dfp",
            "/header",
            "Host: front.example\r\nx-dfp-target: localhost:{one}\r\n",
        ),
        ("dfp", "/header", "Host: 127.0.0.1:{two}\r\n"),
        // A name that does not resolve, and an address nothing listens on.
        ("dfp", "/plain", "Host: no-such-host.invalid\r\n"),
        ("dfp", "/plain", "Host: 127.0.0.1:{closed}\r\n"),
        // A port that is not a number.
        ("dfp", "/plain", "Host: localhost:http\r\n"),
        // A cache of one host: the first host fits, a second one does not.
        ("tiny", "/first", "Host: 127.0.0.1:{one}\r\n"),
        ("tiny", "/second", "Host: 127.0.0.1:{two}\r\n"),
        // Over TLS: the name is the SNI and the name the certificate must carry; an address
        // is not the certificate's name; a name without a port goes to 443.
        ("secure", "/tls", "Host: localhost:{tls}\r\n"),
        ("secure", "/tls", "Host: 127.0.0.1:{tls}\r\n"),
        ("secure", "/tls", "Host: localhost\r\n"),
    ];
    let mut mismatches = Vec::new();
    for (gateway, path, extra) in requests {
        let mut outcomes = Vec::new();
        for s in [&envoy_side, &gloo_side] {
            let extra = extra
                .replace("{one}", &s.one.port.to_string())
                .replace("{two}", &s.two.port.to_string())
                .replace("{closed}", &closed.to_string())
                .replace("{tls}", &tls_port.to_string());
            let before = (s.one.count(), s.two.count());
            let request = format!("GET {path} HTTP/1.1\r\n{extra}Connection: close\r\n\r\n");
            let port = match gateway {
                "tiny" => s.tiny,
                "secure" => s.secure,
                _ => s.port,
            };
            let r = http_raw(port, request.as_bytes(), false)
                .unwrap_or_else(|e| panic!("{} {path}: {e}", s.name));
            let upstream = [&s.one, &s.two]
                .into_iter()
                .zip([before.0, before.1])
                .find(|(b, n)| b.count() > *n)
                .and_then(|(b, _)| b.seen().last().cloned().map(|seen| (b.name.clone(), seen)))
                .map(|(name, seen)| {
                    // The ports differ between the sides: each side's own are named.
                    let mut seen_headers = headers(seen.headers.iter());
                    for values in seen_headers.values_mut() {
                        for v in values.iter_mut() {
                            *v = v
                                .replace(&s.one.port.to_string(), "{one}")
                                .replace(&s.two.port.to_string(), "{two}");
                        }
                    }
                    (name, seen.target, seen_headers)
                });
            outcomes.push(Outcome {
                status: r.status,
                body: r.body.clone(),
                headers: headers(r.headers.iter()),
                upstream,
            });
        }
        eprintln!(
            "{path} [{extra:?}]:\n  envoy {:?}\n  gloo  {:?}",
            outcomes[0], outcomes[1]
        );
        if outcomes[0] != outcomes[1] {
            mismatches.push(format!(
                "{path} ({extra:?}):\n  envoy: {:?}\n  gloo:  {:?}",
                outcomes[0], outcomes[1]
            ));
        }
    }
    // The premises: the requests reached the backends they name.
    let (one, two) = (envoy_side.one.count(), envoy_side.two.count());
    assert_eq!((one, two), (4, 2), "the requests each Envoy backend served");
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
