//! The middleware against a real tonic authorization server on loopback: what the check
//! carries, and what each kind of answer does to the request and the response.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use envoy_types::pb::envoy::config::core::v3::{
    header_value_option::HeaderAppendAction, HeaderValue as PbHeaderValue, HeaderValueOption,
    QueryParameter,
};
use envoy_types::pb::envoy::r#type::v3::HttpStatus;
use envoy_types::pb::envoy::service::auth::v3::authorization_server::{
    Authorization, AuthorizationServer,
};
use envoy_types::pb::envoy::service::auth::v3::{
    check_response::HttpResponse, CheckRequest, CheckResponse, DeniedHttpResponse, OkHttpResponse,
};
use envoy_types::pb::google::protobuf::{value, BoolValue, Struct, Value};
use envoy_types::pb::google::rpc::Status;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{service_fn, Layer, ServiceExt};

use super::*;

type Decide = dyn Fn(&CheckRequest) -> CheckResponse + Send + Sync;

/// An authorization server deciding with `decide`, recording every check it got.
#[derive(Clone)]
struct Server {
    decide: Arc<Decide>,
    seen: Arc<Mutex<Vec<CheckRequest>>>,
    delay: Duration,
}

#[tonic::async_trait]
impl Authorization for Server {
    async fn check(
        &self,
        request: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        let request = request.into_inner();
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let answer = (self.decide)(&request);
        self.seen.lock().unwrap().push(request);
        Ok(tonic::Response::new(answer))
    }
}

struct Running {
    channel: tonic::transport::Channel,
    seen: Arc<Mutex<Vec<CheckRequest>>>,
}

impl Running {
    fn last(&self) -> CheckRequest {
        self.seen.lock().unwrap().last().cloned().expect("a check")
    }
}

async fn serve_with(
    delay: Duration,
    decide: impl Fn(&CheckRequest) -> CheckResponse + Send + Sync + 'static,
) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = Server {
        decide: Arc::new(decide),
        seen: seen.clone(),
        delay,
    };
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(AuthorizationServer::new(server))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await;
    });
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect_lazy();
    Running { channel, seen }
}

async fn serve(decide: impl Fn(&CheckRequest) -> CheckResponse + Send + Sync + 'static) -> Running {
    serve_with(Duration::ZERO, decide).await
}

fn ok() -> Status {
    Status::default()
}

fn denied_status() -> Status {
    Status {
        code: 7,
        ..Default::default()
    }
}

fn header(key: &str, value: &str) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(PbHeaderValue {
            key: key.into(),
            value: value.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn with_action(key: &str, value: &str, action: HeaderAppendAction) -> HeaderValueOption {
    HeaderValueOption {
        append_action: action as i32,
        ..header(key, value)
    }
}

#[allow(deprecated)]
fn with_append(key: &str, value: &str, append: bool) -> HeaderValueOption {
    HeaderValueOption {
        append: Some(BoolValue { value: append }),
        ..header(key, value)
    }
}

/// What the inner service saw of a request, as the response body (JSON), plus a marker header.
async fn echo(
    request: Request<ExtAuthzBody<Full<Bytes>>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut headers: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in &parts.headers {
        headers
            .entry(k.to_string())
            .or_default()
            .push(v.to_str().unwrap_or_default().to_string());
    }
    let metadata = parts
        .extensions
        .get::<DynamicMetadata>()
        .map(|m| format!("{:?}", m.0.fields.keys().collect::<Vec<_>>()));
    let seen = serde_json::json!({
        "uri": parts.uri.to_string(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
        "metadata": metadata,
    });
    let mut response = Response::new(Full::new(Bytes::from(seen.to_string())));
    response
        .headers_mut()
        .insert("x-upstream", http::HeaderValue::from_static("yes"));
    Ok(response)
}

struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    body: String,
    rejected: Option<RejectedKind>,
}

impl Answer {
    fn upstream(&self) -> serde_json::Value {
        assert!(
            self.rejected.is_none(),
            "expected the request upstream, got {} {}",
            self.status,
            self.body
        );
        serde_json::from_str(&self.body).expect("echo JSON")
    }
}

async fn send(
    layer: &ExtAuthzLayer<tonic::transport::Channel>,
    request: Request<Full<Bytes>>,
) -> Answer {
    let svc = layer.layer(service_fn(echo));
    let response = svc.oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        rejected: parts.extensions.get::<Rejected>().map(Rejected::kind),
    }
}

fn get(uri: &str) -> Request<Full<Bytes>> {
    Request::get(uri)
        .header("host", "app.example")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

#[tokio::test]
async fn the_check_describes_the_request_as_envoy_does() {
    let server = serve(|_| CheckResponse {
        status: Some(ok()),
        ..Default::default()
    })
    .await;
    let layer = ExtAuthzLayer::new(server.channel.clone())
        .context_extension("config_id", "gloo-system.basic")
        .context_extensions([("source_type".to_string(), "route".to_string())]);
    let mut request = Request::post("/path?q=1")
        .header("host", "app.example")
        .header("x-multi", "a")
        .header("x-multi", "b")
        .header(
            "x-bytes",
            http::HeaderValue::from_bytes(b"ok\xffok").unwrap(),
        )
        .header("x-envoy-auth-partial-body", "spoofed")
        .body(Full::new(Bytes::from_static(b"not sent")))
        .unwrap();
    request.extensions_mut().insert(ConnectionInfo {
        source: Some("10.1.2.3:40000".parse().unwrap()),
        destination: Some("10.9.8.7:8080".parse().unwrap()),
        tls: true,
    });
    let answer = send(&layer, request).await;
    assert_eq!(answer.status, 200);
    let check = server.last();
    let attributes = check.attributes.unwrap();
    let http = attributes.request.unwrap().http.unwrap();
    assert_eq!(http.method, "POST");
    assert_eq!(http.path, "/path?q=1");
    assert_eq!(http.host, "app.example");
    assert_eq!(http.scheme, "https");
    assert_eq!(http.protocol, "HTTP/1.1");
    assert!(http.body.is_empty(), "no body unless with_request_body");
    assert_eq!(http.headers[":authority"], "app.example");
    assert_eq!(http.headers[":method"], "POST");
    assert_eq!(http.headers[":path"], "/path?q=1");
    assert_eq!(http.headers[":scheme"], "https");
    assert_eq!(http.headers["x-multi"], "a,b");
    assert_eq!(http.headers["x-bytes"], "ok!ok");
    assert!(!http.headers.contains_key("host"));
    assert!(!http.headers.contains_key("x-envoy-auth-partial-body"));
    assert!(http.id.parse::<u64>().is_ok(), "{}", http.id);
    assert_eq!(
        attributes.context_extensions,
        HashMap::from([
            ("config_id".to_string(), "gloo-system.basic".to_string()),
            ("source_type".to_string(), "route".to_string()),
        ])
    );
    let address = |peer: Option<
        envoy_types::pb::envoy::service::auth::v3::attribute_context::Peer,
    >| {
        match peer.and_then(|p| p.address).and_then(|a| a.address) {
            Some(envoy_types::pb::envoy::config::core::v3::address::Address::SocketAddress(s)) => {
                format!("{}:{:?}", s.address, s.port_specifier)
            }
            other => format!("{other:?}"),
        }
    };
    assert_eq!(
        address(attributes.source),
        "10.1.2.3:Some(PortValue(40000))"
    );
    assert_eq!(
        address(attributes.destination),
        "10.9.8.7:Some(PortValue(8080))"
    );
}

#[tokio::test]
async fn an_allowed_request_is_changed_as_the_server_asks() {
    let server = serve(|_| CheckResponse {
        status: Some(ok()),
        http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
            headers: vec![
                with_action(
                    "x-user-id",
                    "alice",
                    HeaderAppendAction::OverwriteIfExistsOrAdd,
                ),
                header("x-added", "server"),
                with_append("x-appended", "server", true),
                with_append("x-appended-missing", "server", true),
                with_append("x-set", "server", false),
                with_action("x-if-absent", "server", HeaderAppendAction::AddIfAbsent),
                with_action(
                    "x-if-present",
                    "server",
                    HeaderAppendAction::OverwriteIfExists,
                ),
                with_action(
                    "x-if-present-missing",
                    "server",
                    HeaderAppendAction::OverwriteIfExists,
                ),
            ],
            headers_to_remove: vec!["x-secret".into(), "host".into()],
            response_headers_to_add: vec![
                header("x-resp", "one"),
                with_append("x-resp", "two", true),
                with_append("x-upstream", "auth", false),
                with_action("x-resp-if-absent", "auth", HeaderAppendAction::AddIfAbsent),
                with_action(
                    "x-upstream-if-absent",
                    "auth",
                    HeaderAppendAction::AddIfAbsent,
                ),
                with_action(
                    "x-resp-overwrite",
                    "auth",
                    HeaderAppendAction::OverwriteIfExists,
                ),
            ],
            query_parameters_to_set: vec![QueryParameter {
                key: "b".into(),
                value: "2".into(),
            }],
            query_parameters_to_remove: vec!["drop".into()],
            ..Default::default()
        })),
        dynamic_metadata: Some(Struct {
            fields: [(
                "user".to_string(),
                Value {
                    kind: Some(value::Kind::StringValue("alice".into())),
                },
            )]
            .into(),
        }),
    })
    .await;
    let layer = ExtAuthzLayer::new(server.channel.clone());
    let request = Request::get("/p?z=1&drop=x&b=1&a=0")
        .header("host", "app.example")
        .header("x-user-id", "mallory")
        .header("x-added", "client")
        .header("x-appended", "client")
        .header("x-set", "client")
        .header("x-if-absent", "client")
        .header("x-if-present", "client")
        .header("x-secret", "s3cr3t")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let answer = send(&layer, request).await;
    assert_eq!(answer.status, 200);
    let seen = answer.upstream();
    let h = &seen["headers"];
    // Envoy 1.40 reads only the deprecated `append` of request headers: everything else
    // overwrites, whatever its `append_action`.
    assert_eq!(h["x-user-id"], serde_json::json!(["alice"]));
    assert_eq!(h["x-added"], serde_json::json!(["server"]));
    assert_eq!(h["x-appended"], serde_json::json!(["client,server"]));
    assert!(
        h.get("x-appended-missing").is_none(),
        "append needs a header to append to"
    );
    assert_eq!(h["x-set"], serde_json::json!(["server"]));
    assert_eq!(h["x-if-absent"], serde_json::json!(["server"]));
    assert_eq!(h["x-if-present"], serde_json::json!(["server"]));
    assert_eq!(h["x-if-present-missing"], serde_json::json!(["server"]));
    assert!(h.get("x-secret").is_none());
    assert_eq!(
        h["host"],
        serde_json::json!(["app.example"]),
        "host is never removed"
    );
    // Query parameters re-serialized by name.
    assert_eq!(seen["uri"], "/p?a=0&b=2&z=1");
    assert_eq!(seen["metadata"], "[\"user\"]");
    let values = |name: &str| -> Vec<&str> {
        answer
            .headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    };
    // Response headers honour the append action.
    assert_eq!(values("x-resp"), ["one", "two"]);
    assert_eq!(values("x-upstream"), ["auth"]);
    assert_eq!(values("x-resp-if-absent"), ["auth"]);
    assert!(values("x-resp-overwrite").is_empty());
}

#[tokio::test]
async fn a_denial_answers_with_the_servers_status_headers_and_body() {
    let server = serve(|check| {
        let path = check
            .attributes
            .as_ref()
            .unwrap()
            .request
            .as_ref()
            .unwrap()
            .http
            .as_ref()
            .unwrap()
            .path
            .clone();
        let denied = match path.as_str() {
            "/plain" => None,
            "/typed" => Some(DeniedHttpResponse {
                status: Some(HttpStatus { code: 401 }),
                headers: vec![
                    header("www-authenticate", "Basic realm=\"gloo\""),
                    header("content-type", "application/json"),
                ],
                body: "{\"denied\":true}".into(),
            }),
            _ => Some(DeniedHttpResponse {
                status: None,
                headers: vec![header("x-why", "no")],
                body: "go away".into(),
            }),
        };
        CheckResponse {
            status: Some(denied_status()),
            http_response: denied.map(HttpResponse::DeniedResponse),
            ..Default::default()
        }
    })
    .await;
    let layer = ExtAuthzLayer::new(server.channel.clone());
    let plain = send(&layer, get("/plain")).await;
    assert_eq!(plain.status, 403);
    assert_eq!(plain.body, "");
    assert_eq!(plain.rejected, Some(RejectedKind::Denied));
    assert_eq!(plain.headers["content-length"], "0");
    assert!(plain.headers.get("x-upstream").is_none());

    let typed = send(&layer, get("/typed")).await;
    assert_eq!(typed.status, 401);
    assert_eq!(typed.body, "{\"denied\":true}");
    assert_eq!(typed.headers["www-authenticate"], "Basic realm=\"gloo\"");
    assert_eq!(typed.headers["content-type"], "application/json");
    assert_eq!(typed.headers["content-length"], "15");

    let text = send(&layer, get("/text")).await;
    assert_eq!(text.status, 403);
    assert_eq!(text.body, "go away");
    assert_eq!(text.headers["content-type"], "text/plain");
    assert_eq!(text.headers["x-why"], "no");

    let cut = send(
        &layer.clone().max_denied_response_body_bytes(2),
        get("/text"),
    )
    .await;
    assert_eq!(cut.body, "go");
    assert_eq!(cut.headers["content-length"], "2");
}

#[tokio::test]
async fn errors_follow_the_failure_mode() {
    // Nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let down = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect_lazy();
    let refused = send(&ExtAuthzLayer::new(down.clone()), get("/")).await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.body, "");
    assert_eq!(refused.rejected, Some(RejectedKind::Error));

    let custom = send(
        &ExtAuthzLayer::new(down.clone()).status_on_error(StatusCode::SERVICE_UNAVAILABLE),
        get("/"),
    )
    .await;
    assert_eq!(custom.status, 503);

    let allowed = send(
        &ExtAuthzLayer::new(down.clone()).failure_mode_allow(true),
        get("/"),
    )
    .await;
    assert_eq!(allowed.status, 200);
    assert!(allowed.upstream()["headers"]
        .get("x-envoy-auth-failure-mode-allowed")
        .is_none());

    let marked = send(
        &ExtAuthzLayer::new(down)
            .failure_mode_allow(true)
            .failure_mode_allow_header_add(true),
        get("/"),
    )
    .await;
    assert_eq!(
        marked.upstream()["headers"]["x-envoy-auth-failure-mode-allowed"],
        serde_json::json!(["true"])
    );

    // A server slower than the timeout is an error too.
    let slow = serve_with(Duration::from_secs(5), |_| CheckResponse {
        status: Some(ok()),
        ..Default::default()
    })
    .await;
    let late = send(
        &ExtAuthzLayer::new(slow.channel.clone()).timeout(Duration::from_millis(50)),
        get("/"),
    )
    .await;
    assert_eq!(late.status, 403);
    assert_eq!(late.rejected, Some(RejectedKind::Error));
}

#[tokio::test]
async fn an_error_response_is_an_error_with_the_servers_answer() {
    let server = serve(|_| CheckResponse {
        status: Some(Status {
            code: 13,
            ..Default::default()
        }),
        http_response: Some(HttpResponse::ErrorResponse(DeniedHttpResponse {
            status: Some(HttpStatus { code: 502 }),
            headers: vec![header("x-error", "backend")],
            body: "auth backend down".into(),
        })),
        ..Default::default()
    })
    .await;
    let answer = send(&ExtAuthzLayer::new(server.channel.clone()), get("/")).await;
    assert_eq!(answer.status, 502);
    assert_eq!(answer.body, "auth backend down");
    assert_eq!(answer.headers["x-error"], "backend");
    assert_eq!(answer.rejected, Some(RejectedKind::Error));
    let allowed = send(
        &ExtAuthzLayer::new(server.channel.clone()).failure_mode_allow(true),
        get("/"),
    )
    .await;
    assert_eq!(allowed.status, 200);
}

fn post(body: &'static str) -> Request<Full<Bytes>> {
    Request::post("/upload")
        .header("host", "app.example")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

#[tokio::test]
async fn the_body_is_buffered_as_envoy_buffers_it() {
    let server = serve(|_| CheckResponse {
        status: Some(ok()),
        ..Default::default()
    })
    .await;
    let body_of = |check: CheckRequest| {
        let http = check.attributes.unwrap().request.unwrap().http.unwrap();
        (
            http.body,
            http.raw_body,
            http.headers.get("x-envoy-auth-partial-body").cloned(),
            http.size,
        )
    };
    let layer =
        ExtAuthzLayer::new(server.channel.clone()).with_request_body(BufferSettings::new(8));
    let whole = send(&layer, post("hello")).await;
    assert_eq!(whole.upstream()["body"], "hello");
    assert_eq!(
        body_of(server.last()),
        ("hello".to_string(), vec![], Some("false".to_string()), 5)
    );
    let too_large = send(&layer, post("hello world")).await;
    assert_eq!(too_large.status, 413);
    assert_eq!(too_large.body, "Payload Too Large");
    assert_eq!(too_large.rejected, Some(RejectedKind::PayloadTooLarge));

    let partial = ExtAuthzLayer::new(server.channel.clone())
        .with_request_body(BufferSettings::new(8).allow_partial_message(true));
    let cut = send(&partial, post("hello world")).await;
    assert_eq!(
        cut.upstream()["body"],
        "hello world",
        "the whole body goes upstream"
    );
    assert_eq!(
        body_of(server.last()),
        ("hello wo".to_string(), vec![], Some("true".to_string()), 11)
    );
    // No body: nothing buffered, no partial-body header.
    let empty = send(&partial, get("/")).await;
    assert_eq!(empty.status, 200);
    assert_eq!(body_of(server.last()), (String::new(), vec![], None, 0));

    let bytes = ExtAuthzLayer::new(server.channel.clone())
        .with_request_body(BufferSettings::new(8).pack_as_bytes(true));
    send(&bytes, post("raw")).await;
    assert_eq!(
        body_of(server.last()),
        (String::new(), b"raw".to_vec(), Some("false".to_string()), 3)
    );
}

#[test]
fn invalid_utf8_bytes_become_bangs() {
    use super::check::sanitize_utf8;
    assert_eq!(sanitize_utf8(b"plain"), "plain");
    assert_eq!(sanitize_utf8(b"a\xffb\xfe\xfdc"), "a!b!!c");
    assert_eq!(sanitize_utf8("é".as_bytes()), "é");
    assert_eq!(sanitize_utf8(b"\xc3"), "!");
}

#[test]
fn query_parameters_are_rewritten_by_name() {
    use super::check::rewrite_query;
    assert_eq!(
        rewrite_query("/p", &[("a".into(), "1".into())], &[]),
        "/p?a=1"
    );
    assert_eq!(
        rewrite_query("/p?b=1&a=2&b=3", &[], &["c".into()]),
        "/p?a=2&b=1&b=3"
    );
    assert_eq!(rewrite_query("/p?a=1", &[], &["a".into()]), "/p");
}
