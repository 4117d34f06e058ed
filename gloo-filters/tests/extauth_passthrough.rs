//! Gloo's `passThroughAuth` against real peers: a gRPC `envoy.service.auth.v3.Authorization`
//! server (tonic, what users write as their own auth server) and an HTTP auth server (hyper),
//! both started here on loopback ports. Checked: what the peer receives, allow / deny with
//! header propagation, `failureModeAllow` when the peer is down, fails or is too slow, the
//! boolean combination with other steps, and the ext_authz gRPC service `gloo run` hosts
//! answering through a passthrough step. TLS and mTLS to peers serving certificates `openssl`
//! makes (`passthroughInternal`'s `tlsConfigData`), and `retryPolicy` against a peer that fails
//! its first calls.

mod support {
    #[allow(dead_code)] // each test binary uses part of the helper
    pub mod certs;
    pub mod grpc;
    pub mod hyper_server;
}

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use envoy_types::pb::envoy::config::core::v3::{HeaderValue as PbHeader, HeaderValueOption};
use envoy_types::pb::envoy::r#type::v3::HttpStatus;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{
    HttpRequest, Request as PbRequest,
};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::authorization_server::{
    Authorization, AuthorizationServer,
};
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{
    AttributeContext, CheckRequest as PbCheckRequest, CheckResponse, DeniedHttpResponse,
    OkHttpResponse,
};
use envoy_types::pb::google::protobuf::value::Kind;
use envoy_types::pb::google::protobuf::BoolValue;
use envoy_types::pb::google::rpc::Status as RpcStatus;
use gloo_filters::extauth::config::ExtAuthConfig;
use gloo_filters::extauth::grpc::ExtAuthzService;
use gloo_filters::extauth::{AuthConfig, BuildOptions, CheckRequest, Decision};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{json, Value};

// ----- the peers ---------------------------------------------------------------------------

fn header(key: &str, value: &str, append: Option<bool>) -> HeaderValueOption {
    #[allow(deprecated)] // `append`: what Envoy 1.40 reads for request headers
    HeaderValueOption {
        header: Some(PbHeader {
            key: key.into(),
            value: value.into(),
            ..Default::default()
        }),
        append: append.map(|value| BoolValue { value }),
        ..Default::default()
    }
}

/// A third-party ext_authz server: `authorization: authorize me` is allowed (sets `x-user`,
/// appends to `x-team`, removes `x-remove`, adds `x-resp` for the client); `x-mode: fail`
/// answers a gRPC error, `x-mode: error` an `error_response` (503), `x-mode: slow` waits 2 s;
/// anything else is denied with a 401.
#[derive(Clone, Default)]
struct GrpcPeer {
    seen: Arc<Mutex<Vec<PbCheckRequest>>>,
}

#[tonic::async_trait]
impl Authorization for GrpcPeer {
    async fn check(
        &self,
        request: tonic::Request<PbCheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        let request = request.into_inner();
        let headers = request
            .attributes
            .as_ref()
            .and_then(|a| a.request.as_ref())
            .and_then(|r| r.http.as_ref())
            .map(|h| h.headers.clone())
            .unwrap_or_default();
        self.seen.lock().expect("lock").push(request);
        let mode = headers.get("x-mode").map(String::as_str);
        if mode == Some("slow") {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        if mode == Some("fail") {
            return Err(tonic::Status::unavailable("down for maintenance"));
        }
        let answer = if mode == Some("error") {
            CheckResponse {
                status: Some(RpcStatus {
                    code: 14,
                    ..Default::default()
                }),
                http_response: Some(HttpResponse::ErrorResponse(DeniedHttpResponse {
                    status: Some(HttpStatus { code: 503 }),
                    body: "backend of the auth server is down".into(),
                    ..Default::default()
                })),
                ..Default::default()
            }
        } else if headers.get("authorization").map(String::as_str) == Some("authorize me") {
            CheckResponse {
                status: Some(RpcStatus::default()),
                http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
                    headers: vec![
                        header("x-user", "alice", None),
                        header("x-team", "extra", Some(true)),
                    ],
                    headers_to_remove: vec!["x-remove".into()],
                    response_headers_to_add: vec![header("x-resp", "yes", None)],
                    ..Default::default()
                })),
                ..Default::default()
            }
        } else {
            CheckResponse {
                status: Some(RpcStatus {
                    code: 16,
                    ..Default::default()
                }),
                http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
                    status: Some(HttpStatus { code: 401 }),
                    headers: vec![header("www-authenticate", "Custom realm=\"peer\"", None)],
                    body: "go away".into(),
                })),
                ..Default::default()
            }
        };
        Ok(tonic::Response::new(answer))
    }
}

/// A peer that answers `code` to its first `failures` calls, then as [`GrpcPeer`] does.
#[derive(Clone)]
struct FlakyPeer {
    calls: Arc<AtomicUsize>,
    failures: usize,
    code: tonic::Code,
    inner: GrpcPeer,
}

#[tonic::async_trait]
impl Authorization for FlakyPeer {
    async fn check(
        &self,
        request: tonic::Request<PbCheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.failures {
            return Err(tonic::Status::new(self.code, "not yet"));
        }
        self.inner.check(request).await
    }
}

/// A [`FlakyPeer`]'s port and call counter.
async fn start_flaky_peer(failures: usize, code: tonic::Code) -> (u16, Arc<AtomicUsize>) {
    let peer = FlakyPeer {
        calls: Arc::default(),
        failures,
        code,
        inner: GrpcPeer::default(),
    };
    let calls = Arc::clone(&peer.calls);
    let port = support::grpc::serve(
        tonic::transport::Server::builder().add_service(AuthorizationServer::new(peer)),
    )
    .await;
    (port, calls)
}

async fn start_grpc_peer() -> (u16, GrpcPeer) {
    let peer = GrpcPeer::default();
    let port = support::grpc::serve(
        tonic::transport::Server::builder().add_service(AuthorizationServer::new(peer.clone())),
    )
    .await;
    (port, peer)
}

/// What the HTTP peer received.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

/// A third-party HTTP auth server: `authorization: authorize me` gets a 200 with headers for
/// the upstream and the client and the state body; `x-mode: 500` a 500, `x-mode: slow` a 200
/// after 2 s, `x-mode: badstate` a 200 whose body is not a state; anything else a 401.
async fn start_http_peer() -> (u16, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let port = support::hyper_server::serve(move |req: Request<Incoming>| {
        let record = Arc::clone(&record);
        async move {
            let (parts, body) = req.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let mode = parts
                .headers
                .get("x-mode")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let authorized = parts
                .headers
                .get("authorization")
                .is_some_and(|v| v == "authorize me");
            record.lock().expect("lock").push(Seen {
                method: parts.method,
                path: parts.uri.path().to_owned(),
                headers: parts.headers,
                body,
            });
            let answer = match mode.as_deref() {
                Some("500") => Response::builder()
                    .status(500)
                    .body(Full::new(Bytes::new())),
                Some("slow") => {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    Response::builder()
                        .status(200)
                        .body(Full::new(Bytes::new()))
                }
                Some("badstate") => Response::builder()
                    .status(200)
                    .body(Full::new(Bytes::from("nope"))),
                _ if authorized => Response::builder()
                    .status(200)
                    .header("x-user", "alice")
                    .header("x-team", "extra")
                    .header("x-overwrite", "new")
                    .header("x-resp", "yes")
                    .header("x-not-allowed", "z")
                    .body(Full::new(Bytes::from(r#"{"state": {"checked": true}}"#))),
                _ => Response::builder()
                    .status(401)
                    .header("www-authenticate", "Custom realm=\"peer\"")
                    .header("x-secret", "hidden")
                    .body(Full::new(Bytes::from("denied by peer"))),
            };
            Ok(answer.expect("answer builds"))
        }
    })
    .await;
    (port, seen)
}

/// A loopback port nothing listens on.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    listener.local_addr().expect("addr").port()
}

// ----- helpers -----------------------------------------------------------------------------

fn config(json: Value) -> AuthConfig {
    let mut json = json;
    json["authConfigRefName"] = json!("gloo-system.pass");
    AuthConfig::from_config(&ExtAuthConfig::from_json(&json.to_string()).expect("parses"))
        .expect("builds")
}

fn request(pairs: &[(&str, &str)]) -> CheckRequest {
    let mut request = CheckRequest {
        method: Method::POST,
        uri: "/things?q=1".parse().expect("uri"),
        scheme: "http".into(),
        host: "shop.example".into(),
        body: Bytes::from_static(b"hello"),
        peer: Some("127.0.0.9:4000".parse().expect("addr")),
        ..Default::default()
    };
    for (name, value) in pairs {
        request.headers.append(
            http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
            value.parse().expect("value"),
        );
    }
    request
}

fn values(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect()
}

fn denied_status(decision: &Decision) -> Option<u16> {
    match decision {
        Decision::Deny(d) => Some(d.status.as_u16()),
        Decision::Allow(_) => None,
    }
}

// ----- gRPC --------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_passthrough_asks_the_peer_and_carries_its_headers() {
    let (port, peer) = start_grpc_peer().await;
    let auth = config(json!({"configs": [{"passThroughAuth": {
        "grpc": {"address": format!("127.0.0.1:{port}")},
        "config": {"team": "blue", "level": 2}
    }}]}));

    let allowed = auth
        .check(&request(&[
            ("authorization", "authorize me"),
            ("x-team", "blue"),
            ("x-remove", "r"),
        ]))
        .await;
    let Decision::Allow(allowed) = allowed else {
        panic!("denied: {allowed:?}")
    };
    assert_eq!(values(&allowed.upstream_headers, "x-user"), ["alice"]);
    // `append: true` joins to the request's value, as Envoy does.
    assert_eq!(values(&allowed.upstream_headers, "x-team"), ["blue,extra"]);
    assert_eq!(allowed.remove_upstream_headers, ["x-remove"]);
    assert_eq!(values(&allowed.response_headers, "x-resp"), ["yes"]);

    let seen = peer
        .seen
        .lock()
        .expect("lock")
        .last()
        .cloned()
        .expect("one check");
    let attributes = seen.attributes.expect("attributes");
    let http = attributes
        .request
        .and_then(|r| r.http)
        .expect("http request");
    assert_eq!(http.method, "POST");
    assert_eq!(http.path, "/things?q=1");
    assert_eq!(http.host, "shop.example");
    assert_eq!(http.body, "hello");
    assert_eq!(http.headers["authorization"], "authorize me");
    assert_eq!(http.headers[":authority"], "shop.example");
    let metadata = attributes.metadata_context.expect("metadata");
    let config = &metadata.filter_metadata["solo.auth.passthrough.config"];
    assert_eq!(
        config.fields["team"].kind,
        Some(Kind::StringValue("blue".into()))
    );
    assert_eq!(config.fields["level"].kind, Some(Kind::NumberValue(2.0)));
    let source = attributes.source.and_then(|s| s.address).expect("source");
    assert!(format!("{source:?}").contains("127.0.0.9"), "{source:?}");

    let denied = auth.check(&request(&[("authorization", "nope")])).await;
    let Decision::Deny(denied) = denied else {
        panic!("allowed")
    };
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
    assert_eq!(denied.headers["www-authenticate"], "Custom realm=\"peer\"");
    assert_eq!(denied.body, "go away");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_passthrough_failures_deny_unless_failure_mode_allows() {
    let (port, _peer) = start_grpc_peer().await;
    let down = closed_port().await;
    for allow in [false, true] {
        let at = |port: u16| {
            config(json!({"configs": [{"passThroughAuth": {
                "grpc": {"address": format!("127.0.0.1:{port}"), "connectionTimeout": "0.3s"},
                "failureModeAllow": allow
            }}]}))
        };
        let live = at(port);
        let expect = |decision: &Decision, denied: u16| {
            if allow {
                assert_eq!(denied_status(decision), None, "failure mode allows");
            } else {
                assert_eq!(denied_status(decision), Some(denied));
            }
        };
        // Unreachable.
        expect(&at(down).check(&request(&[])).await, 403);
        // A gRPC error.
        expect(&live.check(&request(&[("x-mode", "fail")])).await, 403);
        // An error_response: its answer when failures deny.
        let error = live.check(&request(&[("x-mode", "error")])).await;
        expect(&error, 503);
        if let Decision::Deny(d) = &error {
            assert_eq!(d.body, "backend of the auth server is down");
        }
        // Slower than connectionTimeout.
        expect(&live.check(&request(&[("x-mode", "slow")])).await, 403);
        // A denial is never a failure.
        assert_eq!(
            denied_status(&live.check(&request(&[])).await),
            Some(401),
            "failureModeAllow={allow}"
        );
    }
}

#[test]
fn passthrough_config_errors_name_the_field() {
    let error = |json: Value| {
        AuthConfig::from_config(&ExtAuthConfig::from_json(&json.to_string()).expect("parses"))
            .expect_err("refused")
            .to_string()
    };
    assert!(error(json!({"configs": [{"passThroughAuth": {}}]}))
        .starts_with("configs[0].passThroughAuth: set exactly one of grpc, http"));
    assert!(
        error(json!({"configs": [{"passThroughAuth": {"grpc": {"address": ""}}}]}))
            .starts_with("configs[0].passThroughAuth.grpc.address: required")
    );
    assert!(
        error(json!({"configs": [{"passThroughAuth": {"http": {"url": "/relative"}}}]}))
            .starts_with("configs[0].passThroughAuth.http.url:")
    );
    assert!(error(json!({"configs": [{"passThroughAuth": {"http": {"url": "http://a/",
        "response": {"allowedUpstreamHeaders": ["x-a"], "allowedUpstreamHeadersToOverwrite": ["x-a"]}}}}]}))
        .starts_with("configs[0].passThroughAuth.http.response: `x-a` is in both"));
    // A Secret only the control plane can resolve.
    assert!(error(
        json!({"configs": [{"passThroughAuth": {"grpc": {"address": "a:1",
        "tlsConfig": {"secretRef": {"name": "tls", "namespace": "gloo-system"}}}}}]})
    )
    .starts_with("configs[0].passThroughAuth.grpc.tlsConfig.secretRef:"));
    assert!(error(
        json!({"configs": [{"passThroughAuth": {"http": {"url": "https://a/",
        "tlsConfig": {"secretRef": {"name": "tls", "namespace": "gloo-system"}}}}}]})
    )
    .starts_with("configs[0].passThroughAuth.http.tlsConfig"));
    assert!(error(
        json!({"configs": [{"passThroughAuth": {"grpc": {"address": "a:1",
        "tlsConfig": {"sslParams": {"maximumProtocolVersion": "TLSv1_1"}}}}}]})
    )
    .starts_with("configs[0].passThroughAuth.grpc.tlsConfig.sslParams.maximumProtocolVersion:"));
    assert!(error(
        json!({"configs": [{"passThroughAuth": {"grpc": {"address": "a:1",
        "tlsConfig": {"sslParams": {"minimumProtocolVersion": "TLSv1_3",
                                    "maximumProtocolVersion": "TLSv1_2"}}}}}]})
    )
    .starts_with("configs[0].passThroughAuth.grpc.tlsConfig.sslParams.minimumProtocolVersion:"));
    assert!(error(json!({"configs": [{"passthroughInternal": {
        "passThroughAuth": {"grpc": {"address": "a:1"}},
        "tlsConfigData": {"certPem": "LS0tLS1CRUdJTg=="}}}]}))
    .starts_with("configs[0].passthroughInternal.tlsConfigData.keyPem: required"));
    assert!(error(json!({"configs": [{"passthroughInternal": {
        "passThroughAuth": {"grpc": {"address": "a:1"}},
        "tlsConfigData": {"rootCaPem": "not base64!"}}}]}))
    .starts_with("configs[0].passthroughInternal.tlsConfigData.rootCaPem:"));
    assert!(error(
        json!({"configs": [{"passThroughAuth": {"grpc": {"address": "a:1",
        "retryPolicy": {"retryBackOff": {"baseInterval": "2s", "maxInterval": "1s"}}}}}]})
    )
    .starts_with("configs[0].passThroughAuth.grpc.retryPolicy.retryBackOff.maxInterval:"));
    assert!(error(
        json!({"configs": [{"passThroughAuth": {"grpc": {"address": "a:1",
        "retryPolicy": {"retryBackOff": {"baseInterval": "0s"}}}}}]})
    )
    .starts_with("configs[0].passThroughAuth.grpc.retryPolicy.retryBackOff.baseInterval:"));
    let unknown = ExtAuthConfig::from_json(
        r#"{"configs": [{"passThroughAuth": {"http": {"url": "http://a/", "request": {"allowedHeader": []}}}}]}"#,
    )
    .expect_err("unknown field")
    .to_string();
    assert!(
        unknown.starts_with("configs[0].passThroughAuth.http.request.allowedHeader"),
        "{unknown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_passthrough_retries_unavailable_calls_as_its_retry_policy_says() {
    let step = |port: u16, policy: Option<Value>| {
        let mut grpc = json!({"address": format!("127.0.0.1:{port}"), "connectionTimeout": "3s"});
        if let Some(policy) = policy {
            grpc["retryPolicy"] = policy;
        }
        config(json!({"configs": [{"passThroughAuth": {"grpc": grpc}}]}))
    };
    let fast = json!({"baseInterval": "0.01s", "maxInterval": "0.05s"});
    let authorized = request(&[("authorization", "authorize me")]);
    let calls = |counter: &AtomicUsize| counter.load(Ordering::SeqCst);

    // Two UNAVAILABLE answers, two retries: the third call answers.
    let (port, counter) = start_flaky_peer(2, tonic::Code::Unavailable).await;
    let auth = step(port, Some(json!({"numRetries": 2, "retryBackOff": fast})));
    assert_eq!(denied_status(&auth.check(&authorized).await), None);
    assert_eq!(calls(&counter), 3);

    // Two failures, one retry: the check fails (403) after two calls.
    let (port, counter) = start_flaky_peer(2, tonic::Code::Unavailable).await;
    let auth = step(port, Some(json!({"numRetries": 1, "retryBackOff": fast})));
    assert_eq!(denied_status(&auth.check(&authorized).await), Some(403));
    assert_eq!(calls(&counter), 2);

    // numRetries defaults to 1.
    let (port, counter) = start_flaky_peer(1, tonic::Code::Unavailable).await;
    let auth = step(port, Some(json!({"retryBackOff": fast})));
    assert_eq!(denied_status(&auth.check(&authorized).await), None);
    assert_eq!(calls(&counter), 2);

    // No policy: no retry.
    let (port, counter) = start_flaky_peer(1, tonic::Code::Unavailable).await;
    let auth = step(port, None);
    assert_eq!(denied_status(&auth.check(&authorized).await), Some(403));
    assert_eq!(calls(&counter), 1);

    // Only UNAVAILABLE is retried: not INTERNAL, and never a denial.
    let (port, counter) = start_flaky_peer(1, tonic::Code::Internal).await;
    let auth = step(port, Some(json!({"numRetries": 3, "retryBackOff": fast})));
    assert_eq!(denied_status(&auth.check(&authorized).await), Some(403));
    assert_eq!(calls(&counter), 1);
    let (port, counter) = start_flaky_peer(0, tonic::Code::Unavailable).await;
    let auth = step(port, Some(json!({"numRetries": 3, "retryBackOff": fast})));
    assert_eq!(denied_status(&auth.check(&request(&[])).await), Some(401));
    assert_eq!(calls(&counter), 1);

    // A connection that fails is UNAVAILABLE too: each retry connects again. The listener
    // accepts and closes at once, counting connections.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    for (policy, connections) in [
        (Some(json!({"numRetries": 2, "retryBackOff": fast})), 3),
        (None, 1),
    ] {
        accepted.store(0, Ordering::SeqCst);
        let auth = step(port, policy);
        assert_eq!(denied_status(&auth.check(&authorized).await), Some(403));
        assert_eq!(calls(&accepted), connections);
    }
}

/// The PEM file `name` in `dir`, base64-encoded as Gloo's `tlsConfigData` carries it.
fn b64(dir: &Path, name: &str) -> String {
    let pem = std::fs::read(dir.join(name)).expect("read PEM");
    base64::engine::general_purpose::STANDARD.encode(pem)
}

/// Certificates for the TLS tests: the server's (`server`, by `server-ca`), a client's
/// (`client`, by `client-ca`), and a stranger's (`stranger-leaf`, by `stranger`).
fn tls_material(dir: &Path) {
    support::certs::ca(dir, "server-ca");
    support::certs::leaf(dir, "server-ca", "server");
    support::certs::ca(dir, "client-ca");
    support::certs::leaf(dir, "client-ca", "client");
    support::certs::ca_and_leaf(dir, "stranger");
}

/// Every case of [`tls_cases`] against the TLS and the mTLS server (allowed as `alice`, or
/// `403`), then the peer's own denial (`401`) coming through TLS as it does in the clear.
async fn check_tls_cases(
    dir: &Path,
    tls: u16,
    mtls: u16,
    step: impl Fn(u16, &Value) -> AuthConfig,
) {
    let authorized = request(&[("authorization", "authorize me")]);
    for (what, data, on_tls, on_mtls) in tls_cases(dir) {
        for (port, accepted, server) in [(tls, on_tls, "TLS"), (mtls, on_mtls, "mTLS")] {
            let decision = step(port, &data).check(&authorized).await;
            let expected = if accepted { None } else { Some(403) };
            assert_eq!(
                denied_status(&decision),
                expected,
                "{what} to the {server} server"
            );
            if let Decision::Allow(allowed) = decision {
                assert_eq!(values(&allowed.upstream_headers, "x-user"), ["alice"]);
            }
        }
    }
    let data = json!({"rootCaPem": b64(dir, "server-ca.crt")});
    assert_eq!(
        denied_status(&step(tls, &data).check(&request(&[])).await),
        Some(401)
    );
}

/// The `tlsConfigData`s the TLS tests try, with whether a server requiring `client-ca`'s
/// client certificates (`mtls`) or not should accept the check.
fn tls_cases(dir: &Path) -> Vec<(&'static str, Value, bool, bool)> {
    let ca = b64(dir, "server-ca.crt");
    vec![
        // (what, tlsConfigData, accepted by the TLS server, by the mTLS server)
        ("the Secret's CA", json!({"rootCaPem": ca}), true, false),
        (
            "plain PEM",
            json!({"rootCaPem": std::fs::read_to_string(dir.join("server-ca.crt")).expect("read")}),
            true,
            false,
        ),
        (
            "TLS 1.2 only",
            json!({"rootCaPem": ca, "sslParams": {"minimumProtocolVersion": "TLSv1_2",
                                                 "maximumProtocolVersion": "TLSv1_2"}}),
            true,
            false,
        ),
        (
            "another CA",
            json!({"rootCaPem": b64(dir, "stranger.crt")}),
            false,
            false,
        ),
        (
            "a client certificate",
            json!({"rootCaPem": ca, "certPem": b64(dir, "client.crt"),
                   "keyPem": b64(dir, "client.key")}),
            true,
            true,
        ),
        (
            "a client certificate the server does not trust",
            json!({"rootCaPem": ca, "certPem": b64(dir, "stranger-leaf.crt"),
                   "keyPem": b64(dir, "stranger-leaf.key")}),
            true,
            false,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_passthrough_speaks_tls_and_mtls_with_the_secret_material() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    tls_material(dir);
    let routes = || tonic::service::Routes::new(AuthorizationServer::new(GrpcPeer::default()));
    let h2: &[&[u8]] = &[b"h2"];
    let tls = support::grpc::serve_tls(
        routes(),
        support::certs::server_config(dir, "server", None, h2),
    )
    .await;
    let mtls = support::grpc::serve_tls(
        routes(),
        support::certs::server_config(dir, "server", Some("client-ca"), h2),
    )
    .await;
    let step = |port: u16, data: &Value| {
        config(json!({"configs": [{"passthroughInternal": {
            "passThroughAuth": {"grpc": {"address": format!("localhost:{port}"),
                                         "connectionTimeout": "3s"}},
            "tlsConfigData": data}}]}))
    };
    let authorized = request(&[("authorization", "authorize me")]);
    check_tls_cases(dir, tls, mtls, step).await;
    // Without TLS the TLS server is not reached.
    let plain = config(json!({"configs": [{"passThroughAuth": {
        "grpc": {"address": format!("localhost:{tls}"), "connectionTimeout": "3s"}}}]}));
    assert_eq!(denied_status(&plain.check(&authorized).await), Some(403));
}

#[cfg(feature = "https")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_passthrough_speaks_tls_and_mtls_with_the_secret_material() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    tls_material(dir);
    let peer = |request: Request<Incoming>| async move {
        let status = if request
            .headers()
            .get("authorization")
            .is_some_and(|v| v == "authorize me")
        {
            200
        } else {
            401
        };
        Ok(Response::builder()
            .status(status)
            .header("x-user", "alice")
            .body(Full::new(Bytes::new()))
            .expect("answer builds"))
    };
    let tls = support::hyper_server::serve_tls(
        support::certs::server_config(dir, "server", None, &[]),
        peer,
    )
    .await;
    let mtls = support::hyper_server::serve_tls(
        support::certs::server_config(dir, "server", Some("client-ca"), &[]),
        peer,
    )
    .await;
    let step = |port: u16, data: &Value| {
        config(json!({"configs": [{"passthroughInternal": {
            "passThroughAuth": {"http": {"url": format!("https://localhost:{port}/auth"),
                "request": {"allowedHeaders": ["authorization"]},
                "response": {"allowedUpstreamHeaders": ["x-user"]},
                "connectionTimeout": "3s"}},
            "tlsConfigData": data}}]}))
    };
    let authorized = request(&[("authorization", "authorize me")]);
    check_tls_cases(dir, tls, mtls, step).await;

    // Without tlsConfig: Gloo's HTTPS_PASSTHROUGH_CA_CERT names the CA of https URLs (read
    // when the step is built; no other test here builds an https step without tlsConfig).
    let plain = || {
        config(json!({"configs": [{"passThroughAuth": {"http": {
            "url": format!("https://localhost:{tls}/auth"),
            "request": {"allowedHeaders": ["authorization"]},
            "connectionTimeout": "3s"}}}]}))
    };
    std::env::set_var("HTTPS_PASSTHROUGH_CA_CERT", b64(dir, "server-ca.crt"));
    let with_ca = plain();
    std::env::set_var("HTTPS_PASSTHROUGH_CA_CERT", b64(dir, "stranger.crt"));
    let with_other_ca = plain();
    std::env::remove_var("HTTPS_PASSTHROUGH_CA_CERT");
    assert_eq!(denied_status(&with_ca.check(&authorized).await), None);
    assert_eq!(
        denied_status(&with_other_ca.check(&authorized).await),
        Some(403)
    );
}

// ----- HTTP --------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_passthrough_posts_the_configured_parts_and_carries_allowed_headers() {
    let (port, seen) = start_http_peer().await;
    let auth = config(json!({"configs": [{"passThroughAuth": {
        "http": {
            "url": format!("http://127.0.0.1:{port}/auth/check"),
            "request": {
                "allowedHeaders": ["authorization", "x-mode", "x-added"],
                "headersToAdd": {"x-added": "by-gloo"},
                "passThroughBody": true,
                "passThroughState": true
            },
            "response": {
                "allowedUpstreamHeaders": ["x-team", "x-user"],
                "allowedUpstreamHeadersToOverwrite": ["x-overwrite"],
                "allowedClientHeadersOnSuccess": ["x-resp"],
                "allowedClientHeadersOnDenied": ["www-authenticate"],
                "readStateFromResponse": true
            }
        },
        "config": {"tier": "gold"}
    }}]}));

    let decision = auth
        .check(&request(&[
            ("authorization", "authorize me"),
            ("x-team", "blue"),
            ("x-overwrite", "old"),
            ("x-added", "from-client"),
            ("x-private", "not for the auth server"),
        ]))
        .await;
    let Decision::Allow(allowed) = decision else {
        panic!("denied: {decision:?}")
    };
    // Appended to the request's values; overwritten; nothing not listed.
    assert_eq!(
        values(&allowed.upstream_headers, "x-team"),
        ["blue", "extra"]
    );
    assert_eq!(values(&allowed.upstream_headers, "x-user"), ["alice"]);
    assert_eq!(values(&allowed.upstream_headers, "x-overwrite"), ["new"]);
    assert!(allowed.upstream_headers.get("x-not-allowed").is_none());
    assert_eq!(values(&allowed.response_headers, "x-resp"), ["yes"]);
    assert_eq!(allowed.response_headers.len(), 1);

    let call = seen.lock().expect("lock").last().cloned().expect("a call");
    assert_eq!(call.method, Method::POST);
    assert_eq!(call.path, "/auth/check");
    assert_eq!(call.headers["authorization"], "authorize me");
    assert_eq!(values(&call.headers, "x-added"), ["by-gloo"]);
    assert!(call.headers.get("x-private").is_none());
    assert!(call.headers.get("x-team").is_none());
    assert_eq!(call.headers["content-type"], "application/json");
    let body: Value = serde_json::from_slice(&call.body).expect("JSON body");
    assert_eq!(
        body,
        json!({"body": "hello", "state": {}, "config": {"tier": "gold"}})
    );

    let decision = auth.check(&request(&[("authorization", "wrong")])).await;
    let Decision::Deny(denied) = decision else {
        panic!("allowed")
    };
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
    assert_eq!(denied.headers["www-authenticate"], "Custom realm=\"peer\"");
    assert!(denied.headers.get("x-secret").is_none());

    // A 200 whose body is not a state, when the state is read: denied.
    assert_eq!(
        denied_status(&auth.check(&request(&[("x-mode", "badstate")])).await),
        Some(403)
    );

    // No body options and no config: an empty body, no content type.
    let bare = config(json!({"configs": [{"passThroughAuth": {"http": {
        "url": format!("http://127.0.0.1:{port}/")}}}]}));
    let decision = bare
        .check(&request(&[("authorization", "authorize me")]))
        .await;
    // `authorization` is not an allowed header here, so the peer refuses.
    assert_eq!(denied_status(&decision), Some(401));
    let call = seen.lock().expect("lock").last().cloned().expect("a call");
    assert!(call.body.is_empty());
    assert!(call.headers.get("content-type").is_none());
    assert!(call.headers.get("authorization").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_passthrough_failures_deny_unless_failure_mode_allows() {
    let (port, _seen) = start_http_peer().await;
    let down = closed_port().await;
    for allow in [false, true] {
        let at = |port: u16| {
            config(json!({"configs": [{"passThroughAuth": {
                "http": {"url": format!("http://127.0.0.1:{port}/auth"),
                         "connectionTimeout": "0.3s",
                         "request": {"allowedHeaders": ["x-mode"]}},
                "failureModeAllow": allow
            }}]}))
        };
        let live = at(port);
        let failure = if allow { None } else { Some(403) };
        assert_eq!(denied_status(&at(down).check(&request(&[])).await), failure);
        assert_eq!(
            denied_status(&live.check(&request(&[("x-mode", "500")])).await),
            failure
        );
        assert_eq!(
            denied_status(&live.check(&request(&[("x-mode", "slow")])).await),
            failure
        );
        assert_eq!(denied_status(&live.check(&request(&[])).await), Some(401));
    }
}

// ----- combinations and the ext_authz service -----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passthrough_combines_with_other_steps_in_the_ext_authz_service() {
    let (grpc_port, peer) = start_grpc_peer().await;
    let (http_port, _seen) = start_http_peer().await;
    let service = ExtAuthzService::new();
    let configs = [
        json!({"authConfigRefName": "gloo-system.either",
            "booleanExpr": "key || pass",
            "configs": [
                {"name": "pass", "passThroughAuth": {"grpc": {"address": format!("127.0.0.1:{grpc_port}")}}},
                {"name": "key", "apiKeyAuth": {"validApiKeys": {"s3cr3t": {"username": "robot"}}}}
            ]}),
        json!({"authConfigRefName": "gloo-system.both",
            "configs": [
                {"passThroughAuth": {"http": {"url": format!("http://127.0.0.1:{http_port}/auth"),
                    "request": {"allowedHeaders": ["authorization"]},
                    "response": {"allowedUpstreamHeaders": ["x-user"]}}}},
                {"passThroughAuth": {"grpc": {"address": format!("127.0.0.1:{grpc_port}")}}}
            ]}),
    ]
    .map(|j| ExtAuthConfig::from_json(&j.to_string()).expect("parses"));
    service
        .apply(&configs, &BuildOptions::new())
        .expect("configs build");
    let port = support::grpc::serve(
        tonic::transport::Server::builder().add_service(service.into_server()),
    )
    .await;
    let mut client = AuthorizationClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .expect("connect");
    // The API key alone: `key` allows, the passthrough is never asked.
    let before = peer.seen.lock().expect("lock").len();
    let (code, headers, _) = ask(&mut client, "gloo-system.either", &[("api-key", "s3cr3t")]).await;
    assert_eq!(code, 0);
    assert!(
        headers.contains(&("x-user-id".into(), "robot".into())),
        "{headers:?}"
    );
    assert_eq!(peer.seen.lock().expect("lock").len(), before);
    // No key: the passthrough decides. With both passthroughs, both must allow; their
    // headers merge.
    for config in ["gloo-system.either", "gloo-system.both"] {
        let (code, headers, _) =
            ask(&mut client, config, &[("authorization", "authorize me")]).await;
        assert_eq!(code, 0, "{config}");
        assert!(
            headers.contains(&("x-user".into(), "alice".into())),
            "{config}: {headers:?}"
        );
    }
    let (code, _, status) = ask(&mut client, "gloo-system.either", &[]).await;
    assert_ne!(code, 0);
    assert_eq!(status, 401);

    let (_, _, status) = ask(&mut client, "gloo-system.both", &[("authorization", "no")]).await;
    assert_eq!(status, 401);
}

/// Asks the ext_authz service about a GET of `/` carrying `headers`, with `config` as the
/// route's `config_id`; returns the gRPC status code, the upstream headers of an allowed
/// request and the HTTP status (200 when allowed).
async fn ask(
    client: &mut AuthorizationClient<tonic::transport::Channel>,
    config: &str,
    headers: &[(&str, &str)],
) -> (i32, Vec<(String, String)>, u32) {
    let request = PbCheckRequest {
        attributes: Some(AttributeContext {
            request: Some(PbRequest {
                http: Some(HttpRequest {
                    method: "GET".into(),
                    path: "/".into(),
                    host: "shop.example".into(),
                    scheme: "http".into(),
                    headers: headers
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            context_extensions: HashMap::from([("config_id".to_owned(), config.to_owned())]),
            ..Default::default()
        }),
    };
    let answer = client.check(request).await.expect("check").into_inner();
    let code = answer.status.map_or(0, |s| s.code);
    match answer.http_response {
        Some(HttpResponse::OkResponse(ok)) => (
            code,
            ok.headers
                .into_iter()
                .filter_map(|h| h.header)
                .map(|h| (h.key, h.value))
                .collect(),
            200,
        ),
        Some(HttpResponse::DeniedResponse(d)) => (
            code,
            Vec::new(),
            d.status.map_or(0, |s| u32::try_from(s.code).unwrap_or(0)),
        ),
        other => panic!("unexpected answer {other:?}"),
    }
}
