//! Gloo's transformations as Envoy's external processor, behind the real Envoy 1.40
//! (`GLOO_TEST_ENVOY`), against the tower layer with the same configs. Each case is one route
//! (`/c1`, `/c2`, ...) with its own transformation config: Envoy's `ext_proc` filter selects it
//! per route with `ExtProcPerRoute` (gRPC initial metadata `x-gloo-transformation`), `/c1`
//! uses the processor's default. The same requests go to Envoy (then a backend) and to a hyper
//! server running `TransformationLayer` in front of the same backend; the client must get the
//! same status, headers and body from both. The backend echoes what it received (method, path,
//! headers, body) or answers JSON, so request transformations show in the answer too.

mod support {
    #[allow(dead_code)] // each test binary uses part of the helper
    pub mod envoy;
    pub mod grpc;
    #[allow(dead_code)] // each test binary uses part of the helper
    pub mod http;
    #[allow(dead_code)] // each test binary uses part of the helper
    pub mod redis_server;
}

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use gloo_filters::extproc::TransformProcessor;
use gloo_filters::transform::{
    Extraction, HeaderMatcher, RequestBodyParse, RequestMatch, ResponseMatch, ResponseMatcher,
    RouteMatch, TransformBody, TransformationLayer, TransformationTemplate, Transformations,
};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tower::{Layer, ServiceExt};

use support::envoy::{http_listener, static_cluster, Envoy};
use support::http;
use support::redis_server::free_port;

/// The configs, one per route; the first is also the processor's default.
fn configs() -> Vec<(&'static str, Transformations)> {
    let request = |t: TransformationTemplate| {
        Transformations::new().request_transform(RequestMatch::new().request_transformation(t))
    };
    let response = |t: TransformationTemplate| {
        Transformations::new().request_transform(RequestMatch::new().response_transformation(t))
    };
    let dont_parse =
        || TransformationTemplate::new().parse_body_behavior(RequestBodyParse::DontParse);
    vec![
        // Gloo's extract-query-parameters example plus a JSON body template (module docs).
        (
            "c1",
            request(
                TransformationTemplate::new()
                    .extractor(
                        "foo",
                        Extraction::header(":path", "(.*foo=([^&]*).*)").subgroup(2),
                    )
                    .header("foo", "{{ foo }}")
                    .header("x-user", "{{ upper(user.name) }}")
                    .body("{\"greeting\": \"hello {{ user.name }}\"}"),
            ),
        ),
        // Headers only: the body streams through untouched.
        (
            "c2",
            request(
                TransformationTemplate::new()
                    .header("x-copy", "{{ header(\"x-a\") }}")
                    .header_to_remove("x-drop")
                    .passthrough(),
            ),
        ),
        // A body that is not JSON: 400.
        (
            "c3",
            request(TransformationTemplate::new().header("x-n", "{{ n }}")),
        ),
        // A body template on a request without a body.
        (
            "c4",
            request(dont_parse().body("{\"from\": \"{{ header(\"x-a\") }}\"}")),
        ),
        // Pseudo-headers: the path and the method change.
        (
            "c5",
            request(
                dont_parse()
                    .header(":path", "/c5/rewritten{{ header(\"x-suffix\") }}")
                    .header(":method", "POST"),
            ),
        ),
        // A response transformation reading the JSON body, setting the status.
        (
            "c6",
            response(
                TransformationTemplate::new()
                    .header("x-count", "{{ count }}")
                    .header(":status", "201")
                    .body("{{ status }}:{% for i in items %} {{ i }}{% endfor %}"),
            ),
        ),
        // Response rules matched on the status, headers only.
        (
            "c7",
            Transformations::new().response_transform(
                ResponseMatch::new(
                    dont_parse()
                        .header("x-was", "{{ header(\":status\") }}")
                        .header(":status", "410"),
                )
                .matcher(ResponseMatcher::new().header(HeaderMatcher::exact(":status", "404"))),
            ),
        ),
        // A response transformation failing without reading the body.
        ("c8", response(dont_parse().header("x-bad", "{{ nope }}"))),
        // A response transformation failing on a body that is not JSON.
        (
            "c9",
            response(TransformationTemplate::new().header("x-n", "{{ n }}")),
        ),
        // The regular stage after the early one (see `early`).
        (
            "c11",
            Transformations::new().request_transform(
                RequestMatch::new()
                    .request_transformation(
                        dont_parse().header("x-seen", "{{ header(\"x-stage\") }}"),
                    )
                    .response_transformation(dont_parse().header("x-order", "regular")),
            ),
        ),
        // Request and response together, the response reading the transformed request.
        (
            "c10",
            Transformations::new().request_transform(
                RequestMatch::new()
                    .request_transformation(dont_parse().header("x-req", "seen"))
                    .response_transformation(
                        dont_parse().header("x-echo-req", "{{ request_header(\"x-req\") }}"),
                    ),
            ),
        ),
    ]
}

/// What the backend answers, on both sides: JSON under `/json`, `404` under `/missing`, else
/// an echo of the request as it arrived.
async fn answer<B>(request: hyper::Request<B>) -> hyper::Response<Full<Bytes>>
where
    B: hyper::body::Body,
    B::Error: std::fmt::Debug,
{
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let response = |status: u16, content_type: &str, body: String| {
        let mut r = hyper::Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = hyper::StatusCode::from_u16(status).expect("status");
        r.headers_mut()
            .insert("content-type", content_type.parse().expect("value"));
        r.headers_mut()
            .insert("x-upstream", "yes".parse().expect("value"));
        r
    };
    if path.contains("/json") {
        let body = r#"{"status": "ok", "count": 2, "items": ["a", "b"]}"#;
        return response(200, "application/json", body.to_owned());
    }
    if path.contains("/missing") {
        return response(404, "text/plain", "nothing here".to_owned());
    }
    let method = request.method().clone();
    // What a proxy adds or frames differently is not echoed.
    let mut headers: Vec<String> = request
        .headers()
        .iter()
        .filter(|(k, _)| {
            let k = k.as_str();
            !k.starts_with("x-envoy-")
                && !matches!(
                    k,
                    "x-forwarded-proto"
                        | "x-request-id"
                        | "content-length"
                        | "transfer-encoding"
                        | "connection"
                )
        })
        .map(|(k, v)| format!("{k}: {}", String::from_utf8_lossy(v.as_bytes())))
        .collect();
    headers.sort();
    let body = match request.into_body().collect().await {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
        Err(e) => format!("body failed: {e:?}"),
    };
    let echo = format!("{method} {path}\n{}\n\n{body}", headers.join("\n"));
    response(200, "text/plain", echo)
}

async fn serve_http1<F, Fut, B>(handle: F) -> u16
where
    F: Fn(hyper::Request<hyper::body::Incoming>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = hyper::Response<B>> + Send,
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handle = handle.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let handle = handle.clone();
                    async move { Ok::<_, Infallible>(handle(req).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    port
}

/// The backend behind Envoy.
async fn start_backend() -> u16 {
    serve_http1(answer).await
}

/// The early stage: runs before every route's own (regular) config, as envoy-gloo's early
/// filter comes first. It transforms only `/c11`, whose regular config sees its result; on the
/// way back the regular stage's response transformation runs first.
fn early() -> Transformations {
    let dont_parse =
        || TransformationTemplate::new().parse_body_behavior(RequestBodyParse::DontParse);
    Transformations::new().request_transform(
        RequestMatch::new()
            .matcher(RouteMatch::prefix("/c11"))
            .request_transformation(dont_parse().header("x-stage", "early {{ header(\"x-in\") }}"))
            .response_transformation(
                dont_parse().header("x-order", "{{ header(\"x-order\") }} then early"),
            ),
    )
}

/// The layers in front of the backend: the early stage, then the config chosen by the first
/// path segment as Envoy's routes do (`/c1...` falls to the default).
async fn start_layers() -> u16 {
    let early = TransformationLayer::new(early()).expect("the early config compiles");
    let layers: Vec<(String, TransformationLayer)> = configs()
        .into_iter()
        .map(|(name, t)| {
            let layer = TransformationLayer::new(t).expect("the config compiles");
            (format!("/{name}"), layer)
        })
        .collect();
    serve_http1(move |req| {
        let path = req.uri().path().to_owned();
        // Longest prefix first, as `/c10` must not be `/c1`.
        let layer = layers
            .iter()
            .filter(|(prefix, _)| path.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, l)| l.clone())
            .unwrap_or_else(|| layers[0].1.clone());
        let early = early.clone();
        async move {
            let inner = tower::service_fn(
                |r: hyper::Request<TransformBody<TransformBody<hyper::body::Incoming>>>| async move {
                    Ok::<_, Infallible>(answer(r).await)
                },
            );
            match early.layer(layer.layer(inner)).oneshot(req).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        }
    })
    .await
}

/// Serves the processor over gRPC: every config by name, the first also as the default.
async fn start_processor() -> u16 {
    let configs = configs();
    let default = TransformationLayer::new(configs[0].1.clone()).expect("compiles");
    let mut processor = TransformProcessor::new(default).named(
        "early",
        TransformationLayer::new(early()).expect("compiles"),
    );
    for (name, t) in configs {
        processor = processor.named(name, TransformationLayer::new(t).expect("compiles"));
    }
    support::grpc::serve(tonic::transport::Server::builder().add_service(processor.into_server()))
        .await
}

fn bootstrap(port: u16, admin: u16, backend: u16, processor: u16) -> String {
    let mut routes = String::new();
    // Longest prefixes first: Envoy's routes are first-match.
    let mut names: Vec<&str> = configs().iter().map(|(n, _)| *n).collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    for name in names {
        let per_route = if name == "c1" {
            String::new()
        } else {
            format!(
                r#"
                typed_per_filter_config:
                  envoy.filters.http.ext_proc:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute
                    overrides:
                      grpc_initial_metadata: [{{key: x-gloo-transformation, value: {name}}}]"#
            )
        };
        routes.push_str(&format!(
            r#"
              - match: {{prefix: "/{name}"}}
                route: {{cluster: backend}}{per_route}"#
        ));
    }
    // The early stage first: the same processor, its config named by the filter itself.
    let filters = r#"
          - name: gloo.transformation.early
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
              grpc_service:
                envoy_grpc: {cluster_name: transformation}
                timeout: 10s
                initial_metadata: [{key: x-gloo-transformation, value: early}]
              failure_mode_allow: false
              message_timeout: 10s
              allow_mode_override: true
              processing_mode:
                request_header_mode: SEND
                response_header_mode: SEND
                request_body_mode: NONE
                response_body_mode: NONE
              mutation_rules: {allow_all_routing: true}
          - name: envoy.filters.http.ext_proc
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
              grpc_service:
                envoy_grpc: {cluster_name: transformation}
                timeout: 10s
              failure_mode_allow: false
              message_timeout: 10s
              allow_mode_override: true
              processing_mode:
                request_header_mode: SEND
                response_header_mode: SEND
                request_body_mode: NONE
                response_body_mode: NONE
              mutation_rules: {allow_all_routing: true}
              response_attributes: [response.code_details]"#;
    format!(
        r#"
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}
static_resources:
  listeners:{listener}
  clusters:{backend}{processor}
"#,
        listener = http_listener("transform", port, &routes, filters),
        backend = static_cluster("backend", backend, false),
        processor = static_cluster("transformation", processor, true),
    )
}

/// An answer as compared: status, the headers both sides can agree on (sorted), the body.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

async fn send(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<Answer, String> {
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nhost: shop.example.com\r\nconnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        request.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    request.push_str(&format!("\r\n{body}"));
    let answer = http::send(port, &request).await?;
    // Framing and what each server adds on its own.
    let mut headers: Vec<(String, String)> = answer
        .headers
        .into_iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "date"
                    | "server"
                    | "x-envoy-upstream-service-time"
                    | "content-length"
                    | "transfer-encoding"
                    | "connection"
            )
        })
        .collect();
    headers.sort();
    Ok(Answer {
        status: answer.status,
        headers,
        body: answer.body,
    })
}

struct Case {
    what: &'static str,
    method: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    body: &'static str,
    /// The status the layer must answer, so that a case cannot pass by both sides failing.
    status: u16,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_with_the_ext_proc_transformation_answers_as_the_tower_layer_does() {
    let backend = start_backend().await;
    let processor = start_processor().await;
    let tower = start_layers().await;
    let (port, admin) = (free_port(), free_port());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut envoy = Envoy::start(
        &bootstrap(port, admin, backend, processor),
        admin,
        dir.path(),
    );
    let mut ready = false;
    for _ in 0..200 {
        envoy.check_running();
        if matches!(send(port, "GET", "/c2", &[], "").await, Ok(a) if a.status == 200) {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "Envoy never answered 200:\n{}", envoy.logs());

    let json = [("content-type", "application/json")];
    let case = |what, method, path, headers: &[(&'static str, &'static str)], body, status| Case {
        what,
        method,
        path,
        headers: headers.to_vec(),
        body,
        status,
    };
    let cases = [
        case(
            "extractor, JSON body, body template (the default config)",
            "POST",
            "/c1/get?foo=bar&x=1",
            &json,
            r#"{"user": {"name": "ada"}}"#,
            200,
        ),
        case(
            "passthrough: headers set and removed, body untouched",
            "POST",
            "/c2/upload",
            &[
                ("x-a", "one"),
                ("x-drop", "gone"),
                ("content-type", "text/plain"),
            ],
            "raw text, not JSON",
            200,
        ),
        case(
            "a body that is not JSON",
            "POST",
            "/c3",
            &[("content-type", "text/plain")],
            "not json",
            400,
        ),
        case(
            "a template rendering an undefined variable",
            "POST",
            "/c3",
            &json,
            r#"{"m": 1}"#,
            400,
        ),
        case(
            "a JSON body with the variable",
            "POST",
            "/c3",
            &json,
            r#"{"n": 7}"#,
            200,
        ),
        case(
            "a body made for a GET",
            "GET",
            "/c4",
            &[("x-a", "from-header")],
            "",
            200,
        ),
        case(
            "path and method rewritten",
            "GET",
            "/c5/original?q=1",
            &[("x-suffix", "/x")],
            "",
            200,
        ),
        case(
            "response body, status and header from JSON",
            "GET",
            "/c6/json",
            &[],
            "",
            201,
        ),
        case(
            "response rule matching 404",
            "GET",
            "/c7/missing",
            &[],
            "",
            410,
        ),
        case(
            "response rule not matching",
            "GET",
            "/c7/json",
            &[],
            "",
            200,
        ),
        case(
            "response failing on headers",
            "GET",
            "/c8/json",
            &[],
            "",
            400,
        ),
        case(
            "response failing on a body not JSON",
            "GET",
            "/c9",
            &[],
            "",
            400,
        ),
        case(
            "response seeing the transformed request",
            "GET",
            "/c10",
            &[],
            "",
            200,
        ),
        case(
            "early stage, then regular",
            "GET",
            "/c11",
            &[("x-in", "in")],
            "",
            200,
        ),
    ];
    for c in &cases {
        let what = c.what;
        let via_envoy = send(port, c.method, c.path, &c.headers, c.body)
            .await
            .unwrap_or_else(|e| panic!("{what} via Envoy: {e}\n{}", envoy.logs()));
        let via_layer = send(tower, c.method, c.path, &c.headers, c.body)
            .await
            .unwrap_or_else(|e| panic!("{what} via the layer: {e}"));
        assert_eq!(via_layer.status, c.status, "{what}: {via_layer:?}");
        assert_eq!(via_envoy, via_layer, "{what}\n{}", envoy.logs());
    }
    // Pinned, so that the stage order cannot pass by both sides ignoring a stage: the regular
    // stage saw the early one's header, and answered first on the way back.
    let staged = send(port, "GET", "/c11", &[("x-in", "in")], "")
        .await
        .unwrap_or_else(|e| panic!("staged via Envoy: {e}"));
    assert!(staged.body.contains("x-seen: early in"), "{staged:?}");
    assert!(
        staged
            .headers
            .contains(&("x-order".to_string(), "regular then early".to_string())),
        "{staged:?}"
    );
}
