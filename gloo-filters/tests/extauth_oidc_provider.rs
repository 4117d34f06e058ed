//! OAuth2 access token validation against the real node-oidc-provider 8
//! (`GLOO_TEST_NODE_PATH`, its `node_modules`): opaque tokens checked by its RFC 7662
//! introspection endpoint with client authentication, and RS256 JWT access tokens checked
//! against its remote JWKS. The provider runs on a free loopback port and is killed by PID.

use bytes::Bytes;
use gloo_filters::extauth::config::ExtAuthConfig;
use gloo_filters::extauth::{AuthConfig, CheckRequest, Decision};
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

mod support {
    #[allow(dead_code)] // each test binary uses part of the helper
    pub mod oidc_provider;
    #[allow(dead_code)] // each test binary uses part of the helper
    pub mod redis_server;
}
use support::oidc_provider::OidcProvider;

/// The machine-to-machine provider (`tests/support/oidc_provider_machine.mjs`).
fn start_provider() -> OidcProvider {
    OidcProvider::start_script("oidc_provider_machine.mjs", &json!([]))
}

/// A client_credentials token from `idp` for `scope` (and `resource`, which makes it a JWT).
async fn token(idp: &OidcProvider, scope: &str, resource: Option<&str>) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "client_credentials")
        .append_pair("scope", scope);
    if let Some(resource) = resource {
        form.append_pair("resource", resource);
    }
    let request = http::Request::post(idp.url("/token"))
        .header("authorization", "Basic Z2xvbzpnbG9vLXNlY3JldA==") // gloo:gloo-secret
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(form.finish())))
        .expect("request");
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let response = client
        .request(request)
        .await
        .expect("token endpoint answers");
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let answer: Value = serde_json::from_slice(&body).expect("JSON");
    answer["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {answer}"))
        .to_owned()
}

fn config(validation: Value) -> AuthConfig {
    let json = json!({"configs": [{"oauth2": {"accessTokenValidationConfig": validation}}]});
    AuthConfig::from_config(&ExtAuthConfig::from_json(&json.to_string()).expect("parses"))
        .expect("builds")
}

async fn check(config: &AuthConfig, token: &str) -> Decision {
    let mut request = CheckRequest::default();
    request.headers.insert(
        "authorization",
        format!("Bearer {token}").parse().expect("value"),
    );
    config.check(&request).await
}

async fn status(config: &AuthConfig, token: &str) -> StatusCode {
    match check(config, token).await {
        Decision::Allow(_) => StatusCode::OK,
        Decision::Deny(denied) => denied.status,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_and_jwt_access_tokens_of_a_real_provider() {
    let idp = start_provider();
    let read = token(&idp, "read", None).await;
    let write = token(&idp, "write", None).await;
    let jwt = token(&idp, "read write", Some("urn:jwt")).await;
    assert_eq!(jwt.matches('.').count(), 2, "a JWT access token");

    let introspection = |secret: &str| {
        config(json!({
            "introspection": {"introspectionUrl": idp.url("/token/introspection"),
                "clientId": "gloo", "clientSecret": secret, "userIdAttributeName": "client_id"},
            "requiredScopes": {"scope": ["read"]},
            "claimsToHeaders": [{"claim": "iss", "header": "x-issuer"}]
        }))
    };
    let opaque = introspection("gloo-secret");
    let Decision::Allow(allowed) = check(&opaque, &read).await else {
        panic!("denied")
    };
    assert_eq!(allowed.user_id.as_deref(), Some("gloo"));
    assert_eq!(allowed.upstream_headers["x-issuer"], idp.url(""));
    assert_eq!(
        status(&opaque, &write).await,
        StatusCode::FORBIDDEN,
        "no read scope"
    );
    assert_eq!(status(&opaque, "not-a-token").await, StatusCode::FORBIDDEN);
    // The provider refuses a client with the wrong secret: nothing validates.
    assert_eq!(
        status(&introspection("wrong"), &read).await,
        StatusCode::FORBIDDEN
    );

    let jwt_config = |audience: &str| {
        config(json!({
            "jwt": {"remoteJwks": {"url": idp.url("/jwks")}, "issuer": idp.url(""), "audiences": [audience]},
            "requiredScopes": {"scope": ["read", "write"]},
            "claimsToHeaders": [{"claim": "client_id", "header": "x-client"}]
        }))
    };
    let by_keys = jwt_config("urn:jwt");
    let Decision::Allow(allowed) = check(&by_keys, &jwt).await else {
        panic!("denied")
    };
    assert_eq!(allowed.upstream_headers["x-client"], "gloo");
    assert_eq!(
        status(&by_keys, &read).await,
        StatusCode::FORBIDDEN,
        "an opaque token is no JWT"
    );
    let other_audience = jwt_config("urn:other");
    assert_eq!(status(&other_audience, &jwt).await, StatusCode::FORBIDDEN);
    // Another first signature character (the last one also holds unused padding bits).
    let at = jwt.rfind('.').expect("three parts") + 1;
    let flipped = if jwt[at..].starts_with('A') { "B" } else { "A" };
    let tampered = format!("{}{flipped}{}", &jwt[..at], &jwt[at + 1..]);
    assert_eq!(status(&by_keys, &tampered).await, StatusCode::FORBIDDEN);
}
