//! Gloo's `opaAuth` step: the policies of Gloo's OPA guide (OPA v0 Rego) and Rego v1 modules,
//! evaluated by the regorus interpreter against Gloo's input.

use bytes::Bytes;
use gloo_filters::extauth::config::ExtAuthConfig;
use gloo_filters::extauth::{AuthConfig, CheckRequest, Decision};
use http::Method;
use serde_json::{json, Value};

/// The policy of Gloo's OPA guide (`docs/content/guides/security/auth/extauth/opa`).
const GUIDE_POLICY: &str = r#"package test

default allow = false
allow {
    startswith(input.http_request.path, "/api/pets")
    input.http_request.method == "GET"
}
allow {
    input.http_request.path == "/api/pets/2"
    any({input.http_request.method == "GET",
        input.http_request.method == "DELETE"
    })
}
"#;

fn build(step: Value) -> Result<AuthConfig, String> {
    let json = json!({"authConfigRefName": "gloo-system.opa", "configs": [{"opaAuth": step}]});
    AuthConfig::from_config(
        &ExtAuthConfig::from_json(&json.to_string()).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())
}

fn request(method: Method, path: &str, headers: &[(&str, &str)]) -> CheckRequest {
    let mut request = CheckRequest {
        method,
        uri: path.parse().expect("uri"),
        scheme: "http".into(),
        host: "petstore.example".into(),
        peer: Some("10.142.0.53:58181".parse().expect("addr")),
        ..Default::default()
    };
    for (name, value) in headers {
        request.headers.insert(
            http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
            value.parse().expect("value"),
        );
    }
    request
}

async fn allowed(auth: &AuthConfig, request: &CheckRequest) -> Result<(), u16> {
    match auth.check(request).await {
        Decision::Allow(_) => Ok(()),
        Decision::Deny(d) => Err(d.status.as_u16()),
    }
}

#[tokio::test]
async fn the_guide_policy_decides_on_method_and_path() {
    let auth = build(json!({"modules": {"policy.rego": GUIDE_POLICY},
                            "query": "data.test.allow == true"}))
    .expect("builds");
    assert_eq!(
        allowed(&auth, &request(Method::GET, "/api/pets", &[])).await,
        Ok(())
    );
    assert_eq!(
        allowed(&auth, &request(Method::GET, "/api/pets/1?x=1", &[])).await,
        Ok(())
    );
    assert_eq!(
        allowed(&auth, &request(Method::POST, "/api/pets", &[])).await,
        Err(403)
    );
    assert_eq!(
        allowed(&auth, &request(Method::DELETE, "/api/pets/2", &[])).await,
        Ok(())
    );
    assert_eq!(
        allowed(&auth, &request(Method::DELETE, "/api/pets/1", &[])).await,
        Err(403)
    );
    assert_eq!(
        allowed(&auth, &request(Method::GET, "/owners", &[])).await,
        Err(403)
    );
}

#[tokio::test]
async fn the_input_carries_the_check_request() {
    let policy = r#"package gloo
import rego.v1

http := input.check_request.attributes.request.http

allow if {
    http.headers["api-token"] == "s3cr3t"
    http.headers[":authority"] == "petstore.example"
    input.http_request.headers[":method"] == "PUT"
    input.http_request.host == "petstore.example"
    input.check_request.attributes.source.address.Address.SocketAddress.address == "10.142.0.53"
    input.http_request.body == "{\"name\": \"rex\"}"
    is_null(input.state)
}

decision := [allow, "why"]
"#;
    let auth = build(json!({"modules": {"gloo.rego": policy}, "query": "data.gloo.decision"}))
        .expect("builds");
    let mut put = request(Method::PUT, "/api/pets", &[("api-token", "s3cr3t")]);
    put.body = Bytes::from_static(br#"{"name": "rex"}"#);
    // An array whose first element is `true` allows.
    assert_eq!(allowed(&auth, &put).await, Ok(()));
    let mut wrong = put.clone();
    wrong
        .headers
        .insert("api-token", "nope".parse().expect("value"));
    // `allow` is undefined, so `decision` is too: denied.
    assert_eq!(allowed(&auth, &wrong).await, Err(403));
}

#[tokio::test]
async fn opa_combines_with_other_steps() {
    let json = json!({"authConfigRefName": "gloo-system.both", "booleanExpr": "key && opa",
    "configs": [
        {"name": "opa", "opaAuth": {"modules": {"policy.rego": GUIDE_POLICY},
                                    "query": "data.test.allow == true"}},
        {"name": "key", "apiKeyAuth": {"validApiKeys": {"s3cr3t": {"username": "robot"}}}}
    ]});
    let auth =
        AuthConfig::from_config(&ExtAuthConfig::from_json(&json.to_string()).expect("parses"))
            .expect("builds");
    let key = [("api-key", "s3cr3t")];
    assert_eq!(
        allowed(&auth, &request(Method::GET, "/api/pets", &key)).await,
        Ok(())
    );
    assert_eq!(
        allowed(&auth, &request(Method::GET, "/api/pets", &[])).await,
        Err(401)
    );
    assert_eq!(
        allowed(&auth, &request(Method::POST, "/api/pets", &key)).await,
        Err(403)
    );
}

#[tokio::test]
async fn bad_policies_are_config_errors_and_bad_queries_deny() {
    let error =
        build(json!({"modules": {"bad.rego": "package x\nallow {"}, "query": "data.x.allow"}))
            .expect_err("refused");
    assert!(
        error.starts_with("configs[0].opaAuth.modules[\"bad.rego\"]:"),
        "{error}"
    );
    let error = build(json!({"query": " "})).expect_err("refused");
    assert!(
        error.starts_with("configs[0].opaAuth.query: required"),
        "{error}"
    );
    // A query that does not parse: every request denied.
    let auth =
        build(json!({"modules": {"policy.rego": GUIDE_POLICY}, "query": "data.test.allow =="}))
            .expect("builds");
    assert_eq!(
        allowed(&auth, &request(Method::GET, "/api/pets", &[])).await,
        Err(403)
    );
    // Only modules: a query on `input` alone.
    let auth = build(json!({"query": "input.http_request.method == \"GET\""})).expect("builds");
    assert_eq!(
        allowed(&auth, &request(Method::GET, "/", &[])).await,
        Ok(())
    );
    assert_eq!(
        allowed(&auth, &request(Method::HEAD, "/", &[])).await,
        Err(403)
    );
}
