//! The WAF as Envoy's external processor, behind the real Envoy 1.40 (`GLOO_TEST_ENVOY`), against
//! the tower layer with the same rules: the OWASP CRS (`GLOO_TEST_CRS_SETUP`,
//! `GLOO_TEST_CRS_RULES`) plus custom rules. The same requests go to Envoy (its
//! `envoy.filters.http.ext_proc` filter calling our `WafProcessor` over gRPC, then a backend)
//! and to a hyper server running `WafLayer` in front of the same answers. Each must get the
//! same status, body and content type, and the same rules must have matched (from the audit
//! logs: Envoy writes them to its access log from the processor's dynamic metadata).

mod support {
    pub mod crs;
    #[allow(dead_code)] // each test binary uses part of the helper
    pub mod envoy;
    pub mod http;
    #[allow(dead_code)] // each test binary uses part of the helper
    pub mod redis_server;
}

use std::convert::Infallible;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use gloo_filters::extproc::WafProcessor;
use gloo_filters::waf::{AuditLog, AuditLogAction, Connection, WafBody, WafLayer, WafRules};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tower::{Layer, ServiceExt};

use support::envoy::Envoy;
use support::redis_server::free_port;
use support::{crs, http};

/// Both sides buffer at most this much of a body (Envoy: the listener's buffer limit).
const BODY_LIMIT: usize = 4096;

fn layer() -> WafLayer {
    let user = r#"
SecRuleEngine On
SecRequestBodyAccess On
SecResponseBodyAccess On
SecResponseBodyMimeType text/html
SecRule REQUEST_HEADERS:User-Agent "scammer" "deny,status:418,id:107,phase:1,msg:'blocked scammer'"
SecRule RESPONSE_BODY "@contains SECRET" "id:301,phase:4,deny,status:502,msg:'leak'"
"#;
    let rules = WafRules::compile(crs::rule_sets(user)).expect("the rules compile");
    WafLayer::new(rules)
        .custom_intervention_message("ModSecurity intervention! Custom message details here..")
        .audit_log(AuditLogAction::RelevantOnly)
        .max_body_bytes(BODY_LIMIT)
}

/// What the upstream answers, on both sides.
fn answer(path: &str) -> hyper::Response<Full<Bytes>> {
    let body: &'static [u8] = if path.starts_with("/leak") {
        b"<p>the SECRET is out</p>"
    } else {
        b"<p>upstream</p>"
    };
    let mut response = hyper::Response::new(Full::new(Bytes::from_static(body)));
    response
        .headers_mut()
        .insert("content-type", "text/html".parse().unwrap());
    response
}

/// Serves `answer` over HTTP/1.1; returns the port.
async fn start_backend() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                    // Read the body, as an upstream would.
                    let path = req.uri().path().to_owned();
                    let _ = req.into_body().collect().await;
                    Ok::<_, Infallible>(answer(&path))
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    port
}

/// The tower layer in front of `answer`, over HTTP/1.1; audit logs go to `audits`. Returns
/// the port.
async fn start_layer(audits: tokio::sync::mpsc::UnboundedSender<(String, AuditLog)>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let local = listener.local_addr().expect("addr");
    let waf = layer();
    tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            let waf = waf.clone();
            let audits = audits.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                    let waf = waf.clone();
                    let audits = audits.clone();
                    async move {
                        req.extensions_mut().insert(Connection::new(peer, local));
                        let path = req.uri().path().to_owned();
                        let inner = tower::service_fn(
                            |r: hyper::Request<WafBody<hyper::body::Incoming>>| async move {
                                let path = r.uri().path().to_owned();
                                let _ = r.into_body().collect().await;
                                Ok::<_, Infallible>(answer(&path))
                            },
                        );
                        let response = waf.layer(inner).oneshot(req).await?;
                        if let Some(audit) = response.extensions().get::<AuditLog>() {
                            let _ = audits.send((path, audit.clone()));
                        }
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    local.port()
}

/// Serves the processor over gRPC; returns the port.
async fn start_processor() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = WafProcessor::new(layer()).into_server();
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(server)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await;
    });
    port
}

fn bootstrap(port: u16, admin: u16, backend: u16, processor: u16, access_log: &Path) -> String {
    format!(
        r#"
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}
static_resources:
  listeners:
  - name: waf
    address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}
    per_connection_buffer_limit_bytes: {BODY_LIMIT}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: waf
          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: {log}
              log_format:
                text_format_source:
                  inline_string: "%REQ(:PATH)% %RESPONSE_CODE% %DYNAMIC_METADATA(io.solo.filters.http.modsecurity:audit_log)%\n"
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{prefix: "/"}}
                route: {{cluster: backend}}
          http_filters:
          - name: envoy.filters.http.ext_proc
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
              grpc_service:
                envoy_grpc: {{cluster_name: waf}}
                timeout: 10s
              failure_mode_allow: false
              message_timeout: 10s
              processing_mode:
                request_header_mode: SEND
                response_header_mode: SEND
                request_body_mode: BUFFERED
                response_body_mode: BUFFERED
              request_attributes: [source.address, destination.address, request.protocol]
              metadata_options:
                receiving_namespaces: {{untyped: [io.solo.filters.http.modsecurity]}}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: backend
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: backend
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {backend}}}}}}}
  - name: waf
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {{http2_protocol_options: {{}}}}
    load_assignment:
      cluster_name: waf
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {processor}}}}}}}
"#,
        log = access_log.display()
    )
}

/// A request sent to both sides, and the status the layer must answer.
struct Case {
    what: &'static str,
    method: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    body: String,
    status: u16,
}

/// An answer, as compared: status, body and content type.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    content_type: Option<String>,
    body: String,
}

async fn send(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<Answer, String> {
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: shop.example.com\r\nuser-agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\naccept: */*\r\nconnection: close\r\n"
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    let answer = http::send(port, &request).await?;
    Ok(Answer {
        status: answer.status,
        content_type: answer.header("content-type").map(str::to_owned),
        body: answer.body,
    })
}

/// The rule ids of an audit log line of Envoy's access log (`<path> <code> <audit JSON>`).
fn rule_ids_in_log(line: &str) -> Vec<String> {
    let json = line.splitn(3, ' ').nth(2).unwrap_or_default();
    let value: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    value["transaction"]["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|m| m["details"]["ruleId"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_with_the_ext_proc_waf_answers_as_the_tower_layer_does() {
    let backend = start_backend().await;
    let processor = start_processor().await;
    let (audit_tx, mut audit_rx) = tokio::sync::mpsc::unbounded_channel();
    let tower = start_layer(audit_tx).await;
    let (port, admin) = (free_port(), free_port());
    let dir = tempfile::tempdir().expect("tempdir");
    let access_log = dir.path().join("access.log");
    // The access log is flushed often, not every 10 s.
    let mut envoy = Envoy::start_with_args(
        &bootstrap(port, admin, backend, processor, &access_log),
        admin,
        dir.path(),
        &["--file-flush-interval-msec", "50"],
    );
    let mut ready = false;
    for _ in 0..200 {
        envoy.check_running();
        if matches!(send(port, "GET", "/", &[], "").await, Ok(a) if a.status == 200) {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "Envoy never answered 200:\n{}", envoy.logs());

    let sqli_form = "user=admin&password=x%27%20or%20%271%27%3D%271";
    let big = format!("item=1234&note={}", "a".repeat(BODY_LIMIT));
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let case =
        |what, method, path, headers: &[(&'static str, &'static str)], body: &str, status| Case {
            what,
            method,
            path,
            headers: headers.to_vec(),
            body: body.to_owned(),
            status,
        };
    let cases = [
        case("benign", "GET", "/", &[], "", 200),
        case(
            "benign query",
            "GET",
            "/products?page=2&sort=price",
            &[],
            "",
            200,
        ),
        case(
            "SQL injection",
            "GET",
            "/products?id=1%27%20or%20%271%27%3D%271",
            &[],
            "",
            403,
        ),
        case(
            "XSS",
            "GET",
            "/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
            &[],
            "",
            403,
        ),
        case(
            "benign form",
            "POST",
            "/cart",
            &form,
            "item=1234&quantity=2",
            200,
        ),
        case(
            "SQL injection in a form",
            "POST",
            "/login",
            &form,
            sqli_form,
            403,
        ),
        case(
            "custom rule",
            "GET",
            "/",
            &[("user-agent", "scammer")],
            "",
            418,
        ),
        case("response body rule", "GET", "/leak", &[], "", 502),
        case("body over the limit", "POST", "/cart", &form, &big, 413),
    ];
    for c in &cases {
        let what = c.what;
        let via_envoy = send(port, c.method, c.path, &c.headers, &c.body)
            .await
            .unwrap_or_else(|e| panic!("{what} via Envoy: {e}\n{}", envoy.logs()));
        let via_layer = send(tower, c.method, c.path, &c.headers, &c.body)
            .await
            .unwrap_or_else(|e| panic!("{what} via the layer: {e}"));
        assert_eq!(via_layer.status, c.status, "{what}: {via_layer:?}");
        assert_eq!(via_envoy, via_layer, "{what}\n{}", envoy.logs());
    }

    // The same rules matched on both sides: the SQL injection's audit logs name the same
    // rules (942100, then the anomaly score's 949110).
    let mut layer_ids = None;
    while let Ok((path, audit)) = audit_rx.try_recv() {
        if path == "/products" && audit.as_str().contains("942100") {
            layer_ids = Some(audit.rule_ids());
        }
    }
    let layer_ids = layer_ids.expect("the layer's audit log of the SQL injection");
    let mut envoy_ids = None;
    for _ in 0..100 {
        let log = std::fs::read_to_string(&access_log).unwrap_or_default();
        envoy_ids = log
            .lines()
            .find(|l| l.starts_with("/products?id=") && l.contains("942100"))
            .map(rule_ids_in_log);
        if envoy_ids.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let envoy_ids = envoy_ids.unwrap_or_else(|| {
        panic!(
            "no audit log in Envoy's access log:\n{}",
            std::fs::read_to_string(&access_log).unwrap_or_default()
        )
    });
    assert!(layer_ids.contains(&"942100".to_string()), "{layer_ids:?}");
    assert_eq!(envoy_ids, layer_ids);
}
