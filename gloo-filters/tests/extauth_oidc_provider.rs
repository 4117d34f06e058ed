//! OAuth2 access token validation against the real node-oidc-provider 8
//! (`GLOO_TEST_NODE_PATH`, its `node_modules`): opaque tokens checked by its RFC 7662
//! introspection endpoint with client authentication, and RS256 JWT access tokens checked
//! against its remote JWKS. The provider runs on a free loopback port and is killed by PID.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use gloo_filters::extauth::config::ExtAuthConfig;
use gloo_filters::extauth::{AuthConfig, CheckRequest, Decision};
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

/// The provider process; killed and reaped on drop.
struct OidcProvider {
    child: Child,
    port: u16,
}

impl OidcProvider {
    fn start() -> Self {
        let modules = match std::env::var_os("GLOO_TEST_NODE_PATH") {
            Some(path) if !path.is_empty() => PathBuf::from(path),
            _ => panic!(
                "GLOO_TEST_NODE_PATH is not set: this test needs node-oidc-provider 8 \
                 (npm install oidc-provider@8). Run scripts/test.sh, or export \
                 GLOO_TEST_NODE_PATH=<dir>/node_modules"
            ),
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/oidc_provider.mjs");
        let mut child = Command::new("node")
            .arg(&script)
            .arg(port.to_string())
            .env("GLOO_TEST_NODE_PATH", &modules)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.trim() == "ready" {
                    let _ = tx.send(());
                }
            }
        });
        let provider = Self { child, port };
        rx.recv_timeout(Duration::from_secs(30))
            .expect("oidc-provider did not start within 30 s");
        provider
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// A client_credentials token for `scope` (and `resource`, which makes it a JWT).
    async fn token(&self, scope: &str, resource: Option<&str>) -> String {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials")
            .append_pair("scope", scope);
        if let Some(resource) = resource {
            form.append_pair("resource", resource);
        }
        let request = http::Request::post(self.url("/token"))
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
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
    let idp = OidcProvider::start();
    let read = idp.token("read", None).await;
    let write = idp.token("write", None).await;
    let jwt = idp.token("read write", Some("urn:jwt")).await;
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
