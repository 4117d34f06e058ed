//! The same AuthConfigs served two ways, compared request for request: by our ext_authz gRPC
//! service behind the real Envoy 1.40 (`GLOO_TEST_ENVOY`; Envoy's
//! `envoy.filters.http.ext_authz`, each route naming its config in the `config_id` context
//! extension as Gloo's translation does) and by `ExtAuthLayer` in front of the same backend.
//! The backend echoes the request headers it got, so "same" means the same status, the same
//! upstream-visible headers, the same `WWW-Authenticate` and the same denial body.
//!
//! Also: APR1 hashes made by Apache's own `htpasswd` at test time (`GLOO_TEST_HTPASSWD`) verify.

mod support {
    pub mod envoy;
    pub mod grpc;
    pub mod hyper_server;
    #[allow(dead_code)] // each test binary uses part of the helper
    pub mod redis_server;
}

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use bytes::Bytes;
use gloo_filters::extauth::config::ExtAuthConfig;
use gloo_filters::extauth::grpc::ExtAuthzService;
use gloo_filters::extauth::{
    apr1_md5, Allowed, AuthConfig, Authorize, BoxFuture, BuildOptions, CheckRequest, Decision,
    ExtAuthBody, ExtAuthLayer,
};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use tower::{Layer, ServiceExt};

use support::envoy::{http_listener, static_cluster, Envoy};
use support::hyper_server::serve;
use support::redis_server::free_port;

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn hs256(claims: Value) -> String {
    let signed = format!(
        "{}.{}",
        B64URL.encode(json!({"alg": "HS256", "kid": "k1", "typ": "JWT"}).to_string()),
        B64URL.encode(claims.to_string())
    );
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET),
        signed.as_bytes(),
    );
    format!("{signed}.{}", B64URL.encode(tag.as_ref()))
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// The backend: `200` with the request headers it got, one `name: value` line each.
async fn start_backend() -> u16 {
    serve(|req: Request<Incoming>| async move {
        let mut lines = String::new();
        for (name, value) in req.headers() {
            lines.push_str(&format!(
                "{name}: {}\n",
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
        Ok(Response::new(Full::new(Bytes::from(lines))))
    })
    .await
}

/// A local RFC 7662 endpoint: `good` is active (user `al`), everything else is not.
async fn start_introspection() -> u16 {
    serve(|req: Request<Incoming>| async move {
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let token = form_urlencoded::parse(&body)
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        let answer = if token == "good" {
            json!({"active": true, "sub": "alice", "username": "al", "scope": "read"})
        } else {
            json!({"active": false})
        };
        Ok(Response::new(Full::new(Bytes::from(answer.to_string()))))
    })
    .await
}

/// A third-party HTTP auth server for `passThroughAuth`: `authorization: authorize me` gets a
/// 200 with `x-team` and `x-user` for the upstream, anything else a 401 with a challenge.
async fn start_auth_peer() -> u16 {
    serve(|req: Request<Incoming>| async move {
        let authorized = req
            .headers()
            .get("authorization")
            .is_some_and(|v| v == "authorize me");
        let answer = if authorized {
            Response::builder()
                .header("x-team", "extra")
                .header("x-user", "alice")
                .header("x-other", "dropped")
        } else {
            Response::builder()
                .status(401)
                .header("www-authenticate", "Custom realm=\"peer\"")
        };
        Ok(answer.body(Full::new(Bytes::new())).expect("answer builds"))
    })
    .await
}

/// The configs both sides serve, by route prefix.
fn configs(introspection_port: u16, auth_peer_port: u16) -> Vec<(&'static str, Value)> {
    let jwks = json!({"keys": [{"kty": "oct", "kid": "k1", "alg": "HS256", "use": "sig", "k": B64URL.encode(SECRET)}]});
    let basic_auth = json!({"realm": "gloo", "apr": {"users": {
        "user": {"salt": "TYiryv0/", "hashedPassword": "8BvzLUO9IfGPGGsPnAgSu1"}}}});
    let api_keys = json!({"validApiKeys": {
            "N2YwMDIx": {"username": "infra-apikey", "metadata": {"team": "infra"}},
            "bare": {"username": "bare-key"}},
        "headersFromKeyMetadata": {"x-team": "team"}});
    vec![
        ("basic", json!({"configs": [{"basicAuth": basic_auth}]})),
        (
            "sha1",
            json!({"configs": [{"basicAuthInternal": {"realm": "sha", "encryption": {"sha1": {}},
                "userList": {"users": {"user": {"salt": "TYiryv0/",
                    "hashedPassword": "010eb058a59f4ac5ba05639b0263cf91b4345fd6"}}}}}]}),
        ),
        ("keys", json!({"configs": [{"apiKeyAuth": api_keys}]})),
        (
            "either",
            json!({"booleanExpr": "basic || key", "configs": [
                {"name": "basic", "basicAuth": basic_auth}, {"name": "key", "apiKeyAuth": api_keys}]}),
        ),
        (
            "both",
            json!({"configs": [{"apiKeyAuth": api_keys}, {"oauth2": {"accessTokenValidationConfig": {
                "jwt": {"localJwks": {"inlineString": jwks.to_string()}, "issuer": "https://issuer.example"},
                "claimsToHeaders": [{"claim": "sub", "header": "x-sub"}, {"claim": "team", "header": "x-team"}]}}}]}),
        ),
        (
            "jwt",
            json!({"configs": [{"oauth2": {"accessTokenValidationConfig": {
                "jwt": {"localJwks": {"inlineString": jwks.to_string()},
                    "issuer": "https://issuer.example", "audiences": ["api"]},
                "requiredScopes": {"scope": ["read"]},
                "claimsToHeaders": [
                    {"claim": "sub", "header": "x-sub"},
                    {"claim": "groups", "header": "x-groups"},
                    {"claim": "team", "header": "x-team", "append": true}]}}}]}),
        ),
        (
            "introspect",
            json!({"configs": [{"oauth2": {"accessTokenValidationConfig": {
                "introspection": {"introspectionUrl": format!("http://127.0.0.1:{introspection_port}/introspect"),
                    "clientId": "gloo", "clientSecret": "secret", "userIdAttributeName": "username"},
                "claimsToHeaders": [{"claim": "sub", "header": "x-sub"}]}}}]}),
        ),
        (
            "not",
            json!({"booleanExpr": "!key", "configs": [{"name": "key", "apiKeyAuth": api_keys}]}),
        ),
        (
            "pass",
            json!({"configs": [{"passThroughAuth": {"http": {
                "url": format!("http://127.0.0.1:{auth_peer_port}/auth"),
                "request": {"allowedHeaders": ["authorization"]},
                "response": {"allowedUpstreamHeaders": ["x-team"],
                             "allowedUpstreamHeadersToOverwrite": ["x-user"],
                             "allowedClientHeadersOnDenied": ["www-authenticate"]}}}}]}),
        ),
    ]
}

fn route_yaml(prefix: &str, config_id: Option<&str>) -> String {
    let per_filter = config_id.map_or(String::new(), |id| {
        format!(
            r#"
                typed_per_filter_config:
                  envoy.filters.http.ext_authz:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute
                    check_settings:
                      context_extensions: {{config_id: "{id}"}}"#
        )
    });
    format!(
        r#"
              - match: {{prefix: "/{prefix}"}}
                route: {{cluster: backend}}{per_filter}"#
    )
}

fn listener_yaml(name: &str, port: u16, routes: &str, with_request_body: &str) -> String {
    let filters = format!(
        r#"
          - name: envoy.filters.http.ext_authz
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
              transport_api_version: V3
              grpc_service:
                envoy_grpc: {{cluster_name: extauthz}}
                timeout: 5s{with_request_body}"#
    );
    http_listener(name, port, routes, &filters)
}

/// Envoy with two listeners: `listen` (every config, by route prefix) and `listen_body`
/// (the `keys` config, checking at most 8 bytes of body, refusing longer ones).
fn bootstrap(ports: [u16; 5], prefixes: &[&str]) -> String {
    let [listen, listen_body, admin, backend, extauthz] = ports;
    let mut routes: String = prefixes
        .iter()
        .map(|p| route_yaml(p, Some(&format!("gloo-system.{p}"))))
        .collect();
    routes.push_str(&route_yaml("unknown", Some("gloo-system.unknown")));
    routes.push_str(&route_yaml("", None));
    let body_routes = route_yaml("", Some("gloo-system.keys"));
    let with_body = "
              with_request_body: {max_request_bytes: 8, allow_partial_message: false}";
    format!(
        r#"admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}
static_resources:
  listeners:{}{}
  clusters:{}{}"#,
        listener_yaml("main", listen, &routes, ""),
        listener_yaml("body", listen_body, &body_routes, with_body),
        static_cluster("backend", backend, false),
        static_cluster("extauthz", extauthz, true),
    )
}

/// `ExtAuthLayer`s (one per config, chosen by the first path segment) in front of a
/// forwarder to the backend.
async fn start_layered(layers: HashMap<String, ExtAuthLayer>, backend: u16) -> u16 {
    // A layer under the empty prefix serves every path.
    let client: Client<_, ExtAuthBody<Incoming>> =
        Client::builder(TokioExecutor::new()).build_http();
    let layers = Arc::new(layers);
    serve(move |req: Request<Incoming>| {
        let layers = Arc::clone(&layers);
        let client = client.clone();
        async move {
            let prefix = req
                .uri()
                .path()
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            let Some(layer) = layers.get(&prefix).or_else(|| layers.get("")) else {
                let mut r = Response::new(Full::new(Bytes::new()));
                *r.status_mut() = StatusCode::NOT_FOUND;
                return Ok(r);
            };
            let forward = tower::service_fn(move |mut req: Request<ExtAuthBody<Incoming>>| {
                let client = client.clone();
                async move {
                    let path = req
                        .uri()
                        .path_and_query()
                        .map_or("/", |p| p.as_str())
                        .to_owned();
                    *req.uri_mut() = format!("http://127.0.0.1:{backend}{path}")
                        .parse()
                        .expect("uri");
                    let answer = match client.request(req).await {
                        Ok(res) => {
                            let (parts, body) = res.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            Response::from_parts(parts, Full::new(body))
                        }
                        Err(e) => {
                            let mut r = Response::new(Full::new(Bytes::from(e.to_string())));
                            *r.status_mut() = StatusCode::BAD_GATEWAY;
                            r
                        }
                    };
                    Ok::<_, Infallible>(answer)
                }
            });
            layer.layer(forward).oneshot(req).await
        }
    })
    .await
}

/// Allows everything, sending `x-multi: a` and `x-multi: b` upstream and two cookies back.
struct TwoValues;

impl Authorize for TwoValues {
    fn authorize<'a>(&'a self, _request: &'a CheckRequest) -> BoxFuture<'a, Decision> {
        let mut allowed = Allowed::default();
        for (header, value) in [("x-multi", "a"), ("x-multi", "b")] {
            allowed
                .upstream_headers
                .append(header, HeaderValue::from_static(value));
        }
        for cookie in ["s=1", "t=2"] {
            allowed
                .response_headers
                .append("set-cookie", HeaderValue::from_static(cookie));
        }
        Box::pin(std::future::ready(Decision::Allow(allowed)))
    }
}

/// Request headers of a case.
type Headers = Vec<(&'static str, String)>;

/// One answer, reduced to what the comparison looks at.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    www_authenticate: Option<String>,
    /// The headers the backend saw (allowed requests only), without those Envoy itself adds.
    upstream: BTreeMap<String, Vec<String>>,
    /// The denial body.
    body: String,
    /// The `set-cookie` headers the client got.
    set_cookie: Vec<String>,
}

async fn send(port: u16, path: &str, headers: &[(&str, String)]) -> Result<Answer, String> {
    send_body(port, path, headers, "").await
}

/// `GET`, or `POST` of `body` when it is not empty.
async fn send_body(
    port: u16,
    path: &str,
    headers: &[(&str, String)],
    body: &'static str,
) -> Result<Answer, String> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let method = if body.is_empty() { "GET" } else { "POST" };
    let mut builder = Request::builder()
        .method(method)
        .uri(format!("http://127.0.0.1:{port}{path}"))
        .header("host", "test");
    for (name, value) in headers {
        builder = builder.header(*name, value.as_str());
    }
    let request = builder
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .map_err(|_| "no answer within 10 s".to_string())?
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let set_cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    let www_authenticate = response
        .headers()
        .get("www-authenticate")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let body = String::from_utf8_lossy(&body).into_owned();
    let mut upstream = BTreeMap::new();
    if status == 200 {
        for line in body.lines() {
            let Some((name, value)) = line.split_once(": ") else {
                continue;
            };
            // Envoy's own request headers, which no auth step sets.
            if matches!(
                name,
                "x-forwarded-proto" | "x-request-id" | "x-envoy-expected-rq-timeout-ms"
            ) {
                continue;
            }
            upstream
                .entry(name.to_owned())
                .or_insert_with(Vec::new)
                .push(value.to_owned());
        }
    }
    Ok(Answer {
        status,
        www_authenticate,
        upstream,
        body: if status == 200 { String::new() } else { body },
        set_cookie,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_with_our_ext_authz_service_answers_as_the_layer() {
    let backend = start_backend().await;
    let introspection = start_introspection().await;
    let configs = configs(introspection, start_auth_peer().await);
    let mut prefixes: Vec<&str> = configs.iter().map(|(p, _)| *p).collect();
    let ext_configs: Vec<ExtAuthConfig> = configs
        .iter()
        .map(|(prefix, json)| {
            let mut json = json.clone();
            json["authConfigRefName"] = json!(format!("gloo-system.{prefix}"));
            ExtAuthConfig::from_json(&json.to_string()).expect("config parses")
        })
        .collect();

    let service = ExtAuthzService::new();
    service
        .apply(&ext_configs, &BuildOptions::new())
        .expect("configs build");
    // A step of our own: two values of one upstream header, two cookies for the client.
    service.insert(
        AuthConfig::builder("gloo-system.custom")
            .step("two-values", TwoValues)
            .build()
            .expect("builds"),
    );
    prefixes.push("custom");
    let layers: HashMap<String, ExtAuthLayer> = prefixes
        .iter()
        .map(|p| {
            let config = service.get(&format!("gloo-system.{p}")).expect("served");
            ((*p).to_owned(), ExtAuthLayer::from_shared(config))
        })
        .collect();
    let keys = service.get("gloo-system.keys").expect("served");
    let body_layer = ExtAuthLayer::from_shared(keys).with_request_body(8, false);
    let layered = start_layered(layers, backend).await;
    let layered_body = start_layered(HashMap::from([(String::new(), body_layer)]), backend).await;
    let extauthz = support::grpc::serve(
        tonic::transport::Server::builder().add_service(service.clone().into_server()),
    )
    .await;

    let (listen, listen_body, admin) = (free_port(), free_port(), free_port());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut envoy = Envoy::start(
        &bootstrap([listen, listen_body, admin, backend, extauthz], &prefixes),
        admin,
        dir.path(),
    );
    let valid = vec![("authorization", basic("user", "password"))];
    let mut ready = false;
    for _ in 0..400 {
        envoy.check_running();
        if matches!(
            send(listen, "/basic", &valid).await,
            Ok(Answer { status: 200, .. })
        ) {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "Envoy never served /basic:\n{}", envoy.logs());

    let token = |claims: Value| {
        let mut c = json!({"iss": "https://issuer.example", "sub": "alice", "aud": "api",
            "exp": now() + 600, "scope": "read write", "groups": ["a", "b"], "team": "blue"});
        if let (Some(c), Some(extra)) = (c.as_object_mut(), claims.as_object()) {
            c.extend(extra.clone());
        }
        format!("Bearer {}", hs256(c))
    };
    let h = |pairs: &[(&'static str, &str)]| -> Vec<(&'static str, String)> {
        pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
    };
    let user_ok = basic("user", "password");
    let cases: Vec<(&str, Headers, u16)> = vec![
        ("/basic", vec![], 401),
        ("/basic/x?q=1", h(&[("authorization", &user_ok)]), 200),
        (
            "/basic",
            h(&[("authorization", &user_ok), ("x-user-id", "spoofed")]),
            200,
        ),
        (
            "/basic",
            h(&[("authorization", &user_ok.replacen("Basic", "basic", 1))]),
            200,
        ),
        (
            "/basic",
            h(&[("authorization", &basic("user", "Password"))]),
            401,
        ),
        (
            "/basic",
            h(&[("authorization", &basic("eve", "password"))]),
            401,
        ),
        ("/basic", h(&[("authorization", "Basic bm9jb2xvbg==")]), 401),
        ("/basic", h(&[("proxy-authorization", &user_ok)]), 401),
        ("/sha1", h(&[("proxy-authorization", &user_ok)]), 200),
        ("/sha1", h(&[("authorization", &user_ok)]), 200),
        (
            "/sha1",
            h(&[("authorization", &basic("user", "nope"))]),
            401,
        ),
        ("/keys", vec![], 401),
        (
            "/keys",
            h(&[
                ("api-key", "N2YwMDIx"),
                ("x-team", "spoofed"),
                ("x-user-id", "spoofed"),
            ]),
            200,
        ),
        (
            "/keys",
            h(&[
                ("api-key", "bare"),
                ("x-user-id", "spoofed"),
                ("x-team", "kept"),
            ]),
            200,
        ),
        ("/keys", h(&[("api-key", "N2YwMDI")]), 401),
        ("/either", h(&[("api-key", "bare")]), 200),
        ("/either", h(&[("authorization", &user_ok)]), 200),
        ("/either", h(&[("authorization", &basic("user", "x"))]), 401),
        ("/either", vec![], 401),
        (
            "/both",
            h(&[
                ("api-key", "N2YwMDIx"),
                ("authorization", &token(json!({}))),
            ]),
            200,
        ),
        ("/both", h(&[("api-key", "N2YwMDIx")]), 403),
        ("/both", h(&[("authorization", &token(json!({})))]), 401),
        (
            "/jwt",
            h(&[
                ("authorization", &token(json!({}))),
                ("x-team", "red"),
                ("x-sub", "spoofed"),
            ]),
            200,
        ),
        (
            "/jwt",
            h(&[("authorization", &token(json!({"exp": now() - 3600})))]),
            403,
        ),
        (
            "/jwt",
            h(&[("authorization", &token(json!({"scope": "write"})))]),
            403,
        ),
        (
            "/jwt",
            h(&[("authorization", &token(json!({"aud": "web"})))]),
            403,
        ),
        (
            "/jwt",
            h(&[(
                "authorization",
                &token(json!({"iss": "https://evil.example"})),
            )]),
            403,
        ),
        ("/jwt", vec![], 403),
        ("/introspect", h(&[("authorization", "Bearer good")]), 200),
        ("/introspect", h(&[("authorization", "Bearer bad")]), 403),
        ("/not", vec![], 200),
        ("/not", h(&[("api-key", "bare")]), 403),
        ("/custom", h(&[("x-multi", "client")]), 200),
        (
            "/pass",
            h(&[
                ("authorization", "authorize me"),
                ("x-team", "red"),
                ("x-user", "spoofed"),
            ]),
            200,
        ),
        ("/pass", h(&[("authorization", "let me in")]), 401),
        ("/pass", vec![], 401),
    ];
    for (path, headers, want) in &cases {
        let through_envoy = send(listen, path, headers).await.expect("Envoy answers");
        let through_layer = send(layered, path, headers)
            .await
            .expect("the layer answers");
        assert_eq!(
            through_envoy.status,
            *want,
            "{path} {headers:?}: {through_envoy:?}\n{}",
            envoy.logs()
        );
        assert_eq!(through_envoy, through_layer, "{path} {headers:?}");
    }

    // What the comparison relies on, spelled out once.
    let keys = send(
        listen,
        "/keys",
        &h(&[("api-key", "N2YwMDIx"), ("x-user-id", "spoofed")]),
    )
    .await
    .expect("answer");
    assert_eq!(keys.upstream["x-user-id"], ["infra-apikey"]);
    assert_eq!(keys.upstream["x-team"], ["infra"]);
    let bare = send(
        listen,
        "/keys",
        &h(&[("api-key", "bare"), ("x-user-id", "spoofed")]),
    )
    .await
    .expect("answer");
    assert_eq!(bare.upstream["x-user-id"], ["bare-key"]);
    let not = send(listen, "/not", &h(&[("x-user-id", "spoofed")]))
        .await
        .expect("answer");
    assert!(
        !not.upstream.contains_key("x-user-id"),
        "an unidentified request loses a claimed user id"
    );
    let jwt = send(
        listen,
        "/jwt",
        &h(&[("authorization", &token(json!({}))), ("x-team", "red")]),
    )
    .await
    .expect("answer");
    assert_eq!(jwt.upstream["x-team"], ["red,blue"]);
    assert_eq!(jwt.upstream["x-groups"], [r#"["a","b"]"#]);
    let custom = send(listen, "/custom", &h(&[("x-multi", "client")]))
        .await
        .expect("answer");
    assert_eq!(custom.upstream["x-multi"], ["a,b"]);
    assert_eq!(custom.set_cookie, ["s=1", "t=2"]);
    // Passthrough: appended to the client's value, overwritten, the peer's challenge.
    let pass = send(
        listen,
        "/pass",
        &h(&[
            ("authorization", "authorize me"),
            ("x-team", "red"),
            ("x-user", "spoofed"),
        ]),
    )
    .await
    .expect("answer");
    assert_eq!(pass.upstream["x-team"], ["red,extra"]);
    assert_eq!(pass.upstream["x-user"], ["alice"]);
    assert!(!pass.upstream.contains_key("x-other"));
    let refused = send(listen, "/pass", &[]).await.expect("answer");
    assert_eq!(
        refused.www_authenticate.as_deref(),
        Some(r#"Custom realm="peer""#)
    );
    let denied = send(listen, "/basic", &[]).await.expect("answer");
    assert_eq!(
        denied.www_authenticate.as_deref(),
        Some(r#"Basic realm="gloo""#)
    );

    // Envoy's with_request_body: at most 8 bytes, longer bodies refused before any check.
    let key = h(&[("api-key", "bare")]);
    for (headers, body, want) in [
        (&key, "12345678", 200),
        (&key, "123456789", 413),
        (&vec![], "123456789", 413),
        (&vec![], "1234", 401),
        (&key, "", 200),
    ] {
        let through_envoy = send_body(listen_body, "/any", headers, body)
            .await
            .expect("Envoy answers");
        let through_layer = send_body(layered_body, "/any", headers, body)
            .await
            .expect("the layer answers");
        assert_eq!(
            through_envoy.status, want,
            "{body:?} {headers:?}: {through_envoy:?}"
        );
        assert_eq!(through_envoy, through_layer, "{body:?} {headers:?}");
    }

    // A route whose config the service does not hold: 403, fail closed.
    let unknown = send(listen, "/unknown", &valid).await.expect("answer");
    assert_eq!(unknown.status, 403);

    // Live replacement: /keys loses its keys while Envoy keeps running.
    let mut replaced = ext_configs.clone();
    for config in &mut replaced {
        if config.auth_config_ref_name == "gloo-system.keys" {
            *config = ExtAuthConfig::from_json(
                r#"{"authConfigRefName": "gloo-system.keys", "configs": [{"apiKeyAuth": {"validApiKeys": {"fresh": {"username": "new"}}}}]}"#,
            )
            .expect("parses");
        }
    }
    service
        .apply(&replaced, &BuildOptions::new())
        .expect("builds");
    assert_eq!(
        send(listen, "/keys", &h(&[("api-key", "bare")]))
            .await
            .expect("answer")
            .status,
        401
    );
    let fresh = send(listen, "/keys", &h(&[("api-key", "fresh")]))
        .await
        .expect("answer");
    assert_eq!(
        (fresh.status, &fresh.upstream["x-user-id"]),
        (200, &vec!["new".to_owned()])
    );
}

#[test]
fn htpasswd_hashes_verify() {
    let htpasswd = match std::env::var_os("GLOO_TEST_HTPASSWD") {
        Some(path) if !path.is_empty() => path,
        _ => panic!(
            "GLOO_TEST_HTPASSWD is not set: this test needs Apache's htpasswd (Debian's apache2-utils). \
             Run scripts/test.sh, or export GLOO_TEST_HTPASSWD=$(command -v htpasswd)"
        ),
    };
    for password in [
        "password",
        "",
        "x",
        "sixteen chars!!!",
        "seventeen chars!!",
        "ünïcödé:colon",
        "a much longer password than sixteen bytes",
    ] {
        let output = std::process::Command::new(&htpasswd)
            .args(["-nbm", "user", password])
            .output()
            .expect("run htpasswd");
        assert!(output.status.success(), "htpasswd failed: {output:?}");
        let line = String::from_utf8_lossy(&output.stdout);
        let entry = line
            .trim()
            .strip_prefix("user:$apr1$")
            .expect("an APR1 entry");
        let (salt, hash) = entry.split_once('$').expect("salt$hash");
        assert_eq!(
            apr1_md5(password.as_bytes(), salt.as_bytes()),
            hash,
            "{password:?}"
        );
        assert_ne!(
            apr1_md5(format!("{password}!").as_bytes(), salt.as_bytes()),
            hash
        );
    }
}
