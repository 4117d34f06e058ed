//! Unit tests of the `extauth` module: APR1 and SHA-1 vectors, each step's answers, config
//! errors, `booleanExpr` semantics, introspection against a real local HTTP server, and the
//! tower layer. The differential test against Envoy is `tests/extauth_envoy.rs`.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn as hyper_service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tower::{service_fn, Layer, ServiceExt};

use super::config::ExtAuthConfig;
use super::*;
use crate::jwt::tests::{hs_jwks, hs_token, now};

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fn request(headers: &[(&str, &str)]) -> CheckRequest {
    let mut request = CheckRequest::default();
    for (name, value) in headers {
        request.headers.append(
            http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
            value.parse().expect("value"),
        );
    }
    request
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn config(json: Value) -> AuthConfig {
    let config = ExtAuthConfig::from_json(&json.to_string()).expect("parses");
    AuthConfig::from_config(&config).expect("builds")
}

fn config_error(json: Value) -> String {
    match ExtAuthConfig::from_json(&json.to_string()) {
        Err(e) => e.to_string(),
        Ok(config) => AuthConfig::from_config(&config)
            .expect_err("must not build")
            .to_string(),
    }
}

async fn allowed(auth: &impl Authorize, request: &CheckRequest) -> Allowed {
    match auth.authorize(request).await {
        Decision::Allow(allowed) => allowed,
        Decision::Deny(denied) => panic!("denied: {denied:?}"),
    }
}

async fn denied(auth: &impl Authorize, request: &CheckRequest) -> Denied {
    match auth.authorize(request).await {
        Decision::Deny(denied) => denied,
        Decision::Allow(allowed) => panic!("allowed: {allowed:?}"),
    }
}

/// (password, salt, hash) from Apache's `htpasswd -nbm user <password>` (htpasswd 2.4,
/// Debian 12's apache2-utils): `user:$apr1$<salt>$<hash>`.
const HTPASSWD_VECTORS: &[(&str, &str, &str)] = &[
    ("password", "TYiryv0/", "8BvzLUO9IfGPGGsPnAgSu1"),
    ("password", "LvsMEKjS", "vkkRjL/JdI1E/tepFGCRB1"),
    ("", "a/81qpLu", "MpIuNEK9o78UWK0IZMd/k1"),
    ("a", ".fyVjLVG", "cehOhemY.J2XV6qU/BN/I1"),
    (
        "correct horse battery staple",
        "wHVBrNOw",
        "uBqdq91fhnDuDCIxgua4B/",
    ),
    ("p:ss/wörd", "Aue75WXy", "VRJoC4fzJYaE4UgcPR6r2/"),
    (
        "0123456789abcdefghijklmnopqrstuvwxyz-long-password-over-16",
        "/ALq.9Ml",
        "2vviI55BkrnK6VRF1G5D51",
    ),
];

#[test]
fn apr1_matches_htpasswd() {
    for (password, salt, hash) in HTPASSWD_VECTORS {
        assert_eq!(
            apr1_md5(password.as_bytes(), salt.as_bytes()),
            *hash,
            "{password:?}"
        );
    }
    // Apache reads at most 8 salt characters, and stops at `$`.
    assert_eq!(
        apr1_md5(b"password", b"TYiryv0/extra"),
        "8BvzLUO9IfGPGGsPnAgSu1"
    );
    assert_eq!(
        apr1_md5(b"password", b"TYiryv0/$8Bvz"),
        "8BvzLUO9IfGPGGsPnAgSu1"
    );
    assert_ne!(apr1_md5(b"Password", b"TYiryv0/"), "8BvzLUO9IfGPGGsPnAgSu1");
}

#[test]
fn sha1_is_password_then_salt() {
    assert_eq!(
        salted_sha1_hex(b"password", b"TYiryv0/"),
        "010eb058a59f4ac5ba05639b0263cf91b4345fd6"
    );
}

#[tokio::test]
async fn basic_auth_answers_as_gloo() {
    let auth = config(
        json!({"configs": [{"basicAuth": {"realm": "gloo", "apr": {"users": {
            "user": {"salt": "TYiryv0/", "hashedPassword": "8BvzLUO9IfGPGGsPnAgSu1"},
            "other": {"salt": "LvsMEKjS", "hashedPassword": "vkkRjL/JdI1E/tepFGCRB1"}
        }}}}]}),
    );
    let ok = allowed(
        &auth,
        &request(&[("authorization", &basic("user", "password"))]),
    )
    .await;
    assert_eq!(ok.user_id.as_deref(), Some("user"));
    assert!(ok.upstream_headers.is_empty());
    // The scheme in any case (Gloo's docs use `basic`).
    let lower = basic("other", "password").replacen("Basic", "basic", 1);
    assert_eq!(
        allowed(&auth, &request(&[("authorization", &lower)]))
            .await
            .user_id
            .as_deref(),
        Some("other")
    );

    for bad in [
        vec![],
        vec![("authorization", basic("user", "Password"))],
        vec![("authorization", basic("nobody", "password"))],
        vec![("authorization", basic("other", "wrong"))],
        vec![("authorization", "Basic dXNlcnBhc3N3b3Jk".to_owned())], // no colon
        vec![("authorization", "Basic !!!".to_owned())],
        vec![("authorization", "Bearer dXNlcjpwYXNzd29yZA==".to_owned())],
        // The original form reads only `Authorization`.
        vec![("proxy-authorization", basic("user", "password"))],
    ] {
        let headers: Vec<(&str, &str)> = bad.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let d = denied(&auth, &request(&headers)).await;
        assert_eq!(d.status, StatusCode::UNAUTHORIZED, "{bad:?}");
        assert_eq!(d.headers["www-authenticate"], "Basic realm=\"gloo\"");
        assert!(d.body.is_empty());
    }

    // No realm: `Basic realm=""`, as in Gloo's docs.
    let no_realm = config(json!({"configs": [{"basicAuth": {"apr": {"users": {}}}}]}));
    let d = denied(&no_realm, &request(&[])).await;
    assert_eq!(d.headers["www-authenticate"], "Basic realm=\"\"");
}

#[tokio::test]
async fn extended_basic_auth_sha1_and_proxy_authorization() {
    for kind in ["basicAuth", "basicAuthInternal"] {
        let auth = config(json!({"configs": [{kind: {"realm": "r",
            "encryption": {"sha1": {}},
            "userList": {"users": {"user": {"salt": "TYiryv0/",
                "hashedPassword": "010EB058A59F4AC5BA05639B0263CF91B4345FD6"}}}}}]}));
        let ok = allowed(
            &auth,
            &request(&[("authorization", &basic("user", "password"))]),
        )
        .await;
        assert_eq!(ok.user_id.as_deref(), Some("user"));
        let ok = allowed(
            &auth,
            &request(&[("proxy-authorization", &basic("user", "password"))]),
        )
        .await;
        assert_eq!(ok.user_id.as_deref(), Some("user"), "{kind}");
        assert_eq!(
            denied(
                &auth,
                &request(&[("authorization", &basic("user", "nope"))])
            )
            .await
            .status,
            StatusCode::UNAUTHORIZED
        );
    }
    let apr = config(json!({"configs": [{"basicAuth": {"encryption": {"apr": {}},
        "userList": {"users": {"user": {"salt": "TYiryv0/", "hashedPassword": "8BvzLUO9IfGPGGsPnAgSu1"}}}}}]}));
    assert!(allowed(
        &apr,
        &request(&[("authorization", &basic("user", "password"))])
    )
    .await
    .user_id
    .is_some());
}

#[tokio::test]
async fn api_keys_answer_as_gloo() {
    let auth = config(json!({"configs": [{"apiKeyAuth": {
        "validApiKeys": {
            "N2YwMDIx": {"username": "infra-apikey", "metadata": {"team": "infra", "bad": "a\nb"}},
            "other-key": {"username": "other"}
        },
        "headersFromKeyMetadata": {"x-team": "team", "x-bad": "bad", "x-missing": "nothing"}
    }}]}));
    let ok = allowed(
        &auth,
        &request(&[("api-key", "N2YwMDIx"), ("x-team", "spoofed")]),
    )
    .await;
    assert_eq!(ok.user_id.as_deref(), Some("infra-apikey"));
    assert_eq!(ok.upstream_headers["x-team"], "infra");
    assert!(
        ok.upstream_headers.get("x-bad").is_none(),
        "not a header value"
    );
    assert!(ok.upstream_headers.get("x-missing").is_none());
    let ok = allowed(&auth, &request(&[("api-key", "other-key")])).await;
    assert_eq!(ok.user_id.as_deref(), Some("other"));
    assert!(ok.upstream_headers.is_empty());

    for headers in [
        vec![],
        vec![("api-key", "N2YwMDI")],
        vec![("api-key", "N2YwMDIxx")],
        vec![("x-api-key", "N2YwMDIx")],
    ] {
        let d = denied(&auth, &request(&headers)).await;
        assert_eq!(d.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            d.headers["www-authenticate"],
            "API key is missing or invalid"
        );
    }

    let custom = config(
        json!({"configs": [{"apiKeyAuth": {"headerName": "x-api-key",
        "validApiKeys": {"k": {"username": "u"}}, "k8sSecretApikeyStorage": {"labelSelector": {"team": "a"}}}}]}),
    );
    assert!(allowed(&custom, &request(&[("x-api-key", "k")]))
        .await
        .user_id
        .is_some());
    assert_eq!(
        denied(&custom, &request(&[("api-key", "k")])).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn config_errors_name_the_field() {
    let cases = [
        (json!({"configs": [{"basicAuth": {"relm": "x"}}]}), "configs[0].basicAuth.relm: unknown field `relm`"),
        (json!({"configz": []}), "configz: unknown field `configz`"),
        (
            json!({"configs": [{"apiKeyAuth": {"validApiKeys": {"k": {"username": 1}}}}]}),
            "configs[0].apiKeyAuth.validApiKeys.k.username: invalid type: integer `1`",
        ),
        (
            json!({"configs": [{"oauth2": {"accessTokenValidation": {}}}]}),
            "configs[0].oauth2: unknown variant `accessTokenValidation`",
        ),
        (
            json!({"configs": [{"oauth2": {"accessTokenValidationConfig": {"cacheTimeout": "10m"}}}]}),
            "configs[0].oauth2.accessTokenValidationConfig.cacheTimeout: invalid duration \"10m\"",
        ),
        (json!({"configs": []}), "configs: at least one config is required"),
        (json!({"configs": [{"name": "a"}]}), "configs[0]: no auth type is set"),
        (
            json!({"configs": [{"basicAuth": {"apr": {}}, "apiKeyAuth": {}}]}),
            "configs[0]: only one auth type may be set, found basicAuth, apiKeyAuth",
        ),
        (json!({"configs": [{"hmacAuth": {}}]}), "configs[0].hmacAuth: `hmacAuth` is not supported"),
        #[cfg(not(feature = "extauth-oidc"))]
        (
            json!({"configs": [{"oauth2": {"oidcAuthorizationCode": {"clientId": "c"}}}]}),
            "configs[0].oauth2.oidcAuthorizationCode: the OIDC authorization code flow needs",
        ),
        #[cfg(feature = "extauth-oidc")]
        (
            json!({"configs": [{"oauth2": {"oidcAuthorizationCode": {"clientId": "c", "clientID": "d"}}}]}),
            "configs[0].oauth2.oidcAuthorizationCode: clientID: unknown field",
        ),
        (
            json!({"configs": [{"basicAuth": {"apr": {}, "encryption": {"sha1": {}}}}]}),
            "configs[0].basicAuth: `apr` excludes `encryption` and `userList`",
        ),
        (
            json!({"configs": [{"basicAuth": {"encryption": {"sha1": {}, "apr": {}}, "userList": {}}}]}),
            "configs[0].basicAuth.encryption: exactly one of `apr` or `sha1` is required",
        ),
        (
            json!({"configs": [{"basicAuth": {"realm": "a\nb", "apr": {}}}]}),
            "configs[0].basicAuth.realm: not a valid header value",
        ),
        (
            json!({"configs": [{"apiKeyAuth": {"headersFromKeyMetadata": {"bad header": "x"}}}]}),
            "configs[0].apiKeyAuth.headersFromKeyMetadata[\"bad header\"]: not a header name",
        ),
        (
            json!({"configs": [{"apiKeyAuth": {"aerospikeApikeyStorage": {}}}]}),
            "configs[0].apiKeyAuth.aerospikeApikeyStorage: Aerospike key storage is not supported",
        ),
        (
            json!({"configs": [{"name": "a", "apiKeyAuth": {}}, {"name": "a", "apiKeyAuth": {}}]}),
            "configs[1].name: another config is already named `a`",
        ),
        (
            json!({"booleanExpr": "config_0 && config_2", "configs": [{"apiKeyAuth": {}}, {"apiKeyAuth": {}}]}),
            "booleanExpr: no config is named `config_2` at position 13",
        ),
        (
            json!({"configs": [{"oauth2": {"accessTokenValidationConfig": {}}}]}),
            "configs[0].oauth2.accessTokenValidationConfig: one of `jwt`, `introspection` or `introspectionUrl` is required",
        ),
        (
            json!({"configs": [{"oauth2": {"accessTokenValidationConfig": {"introspectionUrl": "/relative"}}}]}),
            "configs[0].oauth2.accessTokenValidationConfig.introspectionUrl: \"/relative\" is not an absolute URL",
        ),
        (
            json!({"configs": [{"oauth2": {"accessTokenValidationConfig": {"jwt": {"localJwks": {"inlineString": "{}"}}}}}]}),
            "configs[0].oauth2.accessTokenValidationConfig.jwt.localJwks.inlineString: Jwks does not have [keys] field",
        ),
        (
            json!({"configs": [{"oauth2": {"accessTokenValidationConfig": {"introspectionUrl": "http://a/",
                "claimsToHeaders": [{"claim": "sub", "header": "x y"}]}}}]}),
            "configs[0].oauth2.accessTokenValidationConfig.claimsToHeaders[0].header: \"x y\" is not a header name",
        ),
    ];
    for (json, want) in cases {
        let err = config_error(json.clone());
        assert!(err.starts_with(want), "{json}\n got: {err}\nwant: {want}");
    }
}

/// A step that answers as told and counts its calls; sets `x-<name>: <name>` when it allows.
struct Scripted {
    name: &'static str,
    allow: bool,
    status: StatusCode,
    calls: Arc<AtomicUsize>,
}

impl Authorize for Scripted {
    fn authorize<'a>(&'a self, _request: &'a CheckRequest) -> BoxFuture<'a, Decision> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let decision = if self.allow {
            let mut allowed = Allowed {
                user_id: Some(self.name.to_owned()),
                ..Allowed::default()
            };
            allowed.upstream_headers.insert(
                http::HeaderName::try_from(format!("x-{}", self.name)).expect("name"),
                http::HeaderValue::from_static(self.name),
            );
            allowed
                .upstream_headers
                .insert("x-shared", http::HeaderValue::from_static(self.name));
            Decision::Allow(allowed)
        } else {
            let mut denied = Denied::status(self.status);
            denied.body = Bytes::from(self.name);
            Decision::Deny(denied)
        };
        Box::pin(std::future::ready(decision))
    }
}

fn scripted(
    steps: &[(&'static str, bool, u16)],
    expr: Option<&str>,
) -> (AuthConfig, Vec<Arc<AtomicUsize>>) {
    let mut builder = AuthConfig::builder("test");
    let mut counters = Vec::new();
    for (name, allow, status) in steps {
        let calls = Arc::new(AtomicUsize::new(0));
        counters.push(Arc::clone(&calls));
        builder = builder.step(
            *name,
            Scripted {
                name,
                allow: *allow,
                status: StatusCode::from_u16(*status).expect("status"),
                calls,
            },
        );
    }
    if let Some(expr) = expr {
        builder = builder.boolean_expr(expr);
    }
    (builder.build().expect("builds"), counters)
}

fn calls(counters: &[Arc<AtomicUsize>]) -> Vec<usize> {
    counters.iter().map(|c| c.load(Ordering::SeqCst)).collect()
}

#[tokio::test]
async fn chain_without_expression_stops_at_the_first_denial() {
    let (auth, counters) = scripted(
        &[("a", true, 200), ("b", false, 401), ("c", false, 403)],
        None,
    );
    let d = denied(&auth, &request(&[])).await;
    assert_eq!(
        (d.status, d.body.as_ref()),
        (StatusCode::UNAUTHORIZED, &b"b"[..])
    );
    assert_eq!(calls(&counters), [1, 1, 0]);

    let (auth, _) = scripted(&[("a", true, 200), ("b", true, 200)], Some("  "));
    let ok = allowed(&auth, &request(&[])).await;
    assert_eq!(ok.upstream_headers["x-a"], "a");
    assert_eq!(ok.upstream_headers["x-b"], "b");
    assert_eq!(
        ok.upstream_headers["x-shared"], "b",
        "a later step replaces"
    );
    assert_eq!(ok.user_id.as_deref(), Some("b"));
}

#[tokio::test]
async fn boolean_expressions_short_circuit_and_answer_with_the_last_denial() {
    // `a || b`: a allows, b never runs.
    let (auth, counters) = scripted(&[("a", true, 200), ("b", false, 401)], Some("a || b"));
    assert_eq!(
        allowed(&auth, &request(&[])).await.user_id.as_deref(),
        Some("a")
    );
    assert_eq!(calls(&counters), [1, 0]);

    // `a || b` both deny: b's answer (the last denial).
    let (auth, counters) = scripted(&[("a", false, 401), ("b", false, 403)], Some("a || b"));
    let d = denied(&auth, &request(&[])).await;
    assert_eq!(
        (d.status, d.body.as_ref()),
        (StatusCode::FORBIDDEN, &b"b"[..])
    );
    assert_eq!(calls(&counters), [1, 1]);

    // `a && b`: a denies, b never runs.
    let (auth, counters) = scripted(&[("a", false, 401), ("b", true, 200)], Some("a && b"));
    assert_eq!(denied(&auth, &request(&[])).await.body.as_ref(), b"a");
    assert_eq!(calls(&counters), [1, 0]);

    // `!a` with a allowing: false with no denial at all → a bare 403.
    let (auth, _) = scripted(&[("a", true, 200)], Some("!a"));
    let d = denied(&auth, &request(&[])).await;
    assert_eq!(d.status, StatusCode::FORBIDDEN);
    assert!(d.body.is_empty() && d.headers.is_empty());

    // `!a` with a denying: allowed, with nothing from a.
    let (auth, _) = scripted(&[("a", false, 401)], Some("!a"));
    let ok = allowed(&auth, &request(&[])).await;
    assert!(ok.upstream_headers.is_empty() && ok.user_id.is_none());

    // Precedence: `a || b && c` is `a || (b && c)`; parentheses override.
    let (auth, counters) = scripted(
        &[("a", false, 401), ("b", true, 200), ("c", true, 200)],
        Some("a || b && c"),
    );
    let ok = allowed(&auth, &request(&[])).await;
    assert_eq!(ok.upstream_headers["x-shared"], "c");
    assert_eq!(calls(&counters), [1, 1, 1]);
    let (auth, counters) = scripted(
        &[("a", true, 200), ("b", false, 401), ("c", false, 403)],
        Some("(a || b) && c"),
    );
    assert_eq!(denied(&auth, &request(&[])).await.body.as_ref(), b"c");
    assert_eq!(calls(&counters), [1, 0, 1]);

    // Steps the expression does not name never run.
    let (auth, counters) = scripted(&[("a", true, 200), ("unused", false, 401)], Some("a"));
    allowed(&auth, &request(&[])).await;
    assert_eq!(calls(&counters), [1, 0]);
}

#[tokio::test]
async fn fail_on_redirect_turns_a_redirect_into_401() {
    let step = |status| Scripted {
        name: "oidc",
        allow: false,
        status,
        calls: Arc::new(AtomicUsize::new(0)),
    };
    let redirecting = AuthConfig::builder("r")
        .step("oidc", step(StatusCode::FOUND))
        .build()
        .expect("builds");
    assert_eq!(
        denied(&redirecting, &request(&[])).await.status,
        StatusCode::FOUND
    );
    let failing = AuthConfig::builder("r")
        .step("oidc", step(StatusCode::FOUND))
        .fail_on_redirect(true)
        .build()
        .expect("builds");
    let d = denied(&failing, &request(&[])).await;
    assert_eq!(d.status, StatusCode::UNAUTHORIZED);
    assert!(d.body.is_empty(), "the redirect's body is not sent");
    let forbidden = AuthConfig::builder("r")
        .step("oidc", step(StatusCode::FORBIDDEN))
        .fail_on_redirect(true)
        .build()
        .expect("builds");
    assert_eq!(
        denied(&forbidden, &request(&[])).await.status,
        StatusCode::FORBIDDEN
    );
}

fn jwt_config(extra: Value) -> AuthConfig {
    let jwks: Value = serde_json::from_str(&hs_jwks("k1", SECRET)).expect("json");
    let mut keys = jwks["keys"].as_array().cloned().unwrap_or_default();
    // A key without `kid` (and one for encryption) that would verify everything: never used.
    keys.push(json!({"kty": "oct", "alg": "HS256", "k": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"other secret of sufficient length!!")}));
    keys.push(json!({"kty": "oct", "kid": "enc", "use": "enc", "alg": "HS256", "k": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"other secret of sufficient length!!")}));
    let mut validation = json!({"jwt": {"localJwks": {"inlineString": json!({"keys": keys}).to_string()},
        "issuer": "https://issuer.example", "audiences": ["api", "web"]}});
    if let (Some(v), Some(extra)) = (validation.as_object_mut(), extra.as_object()) {
        v.extend(extra.clone());
    }
    config(json!({"configs": [{"oauth2": {"accessTokenValidationConfig": validation}}]}))
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn jwt_access_tokens() {
    let auth = jwt_config(json!({
        "requiredScopes": {"scope": ["read", "write"]},
        "claimsToHeaders": [
            {"claim": "sub", "header": "x-sub"},
            {"claim": "groups", "header": "x-groups"},
            {"claim": "team", "header": "x-team", "append": true}
        ]
    }));
    let claims = |extra: Value| {
        let mut c = json!({"iss": "https://issuer.example", "sub": "alice", "aud": ["web"],
            "exp": now() + 600, "iat": now(), "scope": "read write admin", "groups": ["a", "b"], "team": "blue"});
        if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
            c.extend(extra.clone());
        }
        c
    };
    let sign = |claims: Value| hs_token(json!({"alg": "HS256", "kid": "k1"}), claims, SECRET);

    let ok = allowed(
        &auth,
        &request(&[
            ("authorization", &bearer(&sign(claims(json!({}))))),
            ("x-team", "red"),
        ]),
    )
    .await;
    assert_eq!(ok.upstream_headers["x-sub"], "alice");
    assert_eq!(ok.upstream_headers["x-groups"], r#"["a","b"]"#);
    // Append keeps the request's values, joined with `,` as Envoy joins them.
    assert_eq!(ok.upstream_headers["x-team"], "red,blue");
    assert!(ok.user_id.is_none());
    let lower = format!("bearer {}", sign(claims(json!({}))));
    allowed(&auth, &request(&[("authorization", &lower)])).await;

    let other_key = b"other secret of sufficient length!!";
    let signed = |header: Value, key: &[u8]| hs_token(header, claims(json!({})), key);
    let refused = [
        ("no token", String::new()),
        ("expired", sign(claims(json!({"exp": now() - 120})))),
        ("not yet valid", sign(claims(json!({"nbf": now() + 600})))),
        (
            "issued in the future",
            sign(claims(json!({"iat": now() + 600}))),
        ),
        (
            "wrong issuer",
            sign(claims(json!({"iss": "https://evil.example"}))),
        ),
        ("wrong audience", sign(claims(json!({"aud": "other"})))),
        ("missing scope", sign(claims(json!({"scope": "read"})))),
        (
            "scope as a list",
            sign(claims(json!({"scope": ["read", "write"]}))),
        ),
        ("no kid", signed(json!({"alg": "HS256"}), SECRET)),
        (
            "unknown kid",
            signed(json!({"alg": "HS256", "kid": "k2"}), SECRET),
        ),
        (
            "key of another kid",
            signed(json!({"alg": "HS256", "kid": "k1"}), other_key),
        ),
        (
            "encryption key",
            signed(json!({"alg": "HS256", "kid": "enc"}), other_key),
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                "eyJhbGciOiJub25lIiwia2lkIjoiazEifQ",
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(claims(json!({})).to_string())
            ),
        ),
        ("garbage", "not-a-jwt".to_owned()),
    ];
    for (why, token) in refused {
        let headers = if token.is_empty() {
            vec![]
        } else {
            vec![("authorization", bearer(&token))]
        };
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let d = denied(&auth, &request(&headers)).await;
        assert_eq!(d.status, StatusCode::FORBIDDEN, "{why}");
        assert!(
            d.headers.is_empty() && d.body.is_empty(),
            "{why}: a bare 403"
        );
    }
}

/// A local introspection and userinfo endpoint: answers from `tokens`, records requests.
struct IdentityProvider {
    url: String,
    seen: Arc<Mutex<Vec<(String, HeaderMap, String)>>>,
}

async fn identity_provider(tokens: Value) -> IdentityProvider {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let record = Arc::clone(&record);
            let tokens = tokens.clone();
            tokio::spawn(async move {
                let svc = hyper_service_fn(move |req: Request<hyper::body::Incoming>| {
                    let record = Arc::clone(&record);
                    let tokens = tokens.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let body = String::from_utf8_lossy(&body).into_owned();
                        record.lock().expect("lock").push((
                            parts.uri.path().to_owned(),
                            parts.headers.clone(),
                            body.clone(),
                        ));
                        let token = if parts.uri.path() == "/userinfo" {
                            parts
                                .headers
                                .get("authorization")
                                .and_then(|v| v.to_str().ok())
                                .and_then(|v| v.strip_prefix("Bearer "))
                                .unwrap_or_default()
                                .to_owned()
                        } else {
                            form_urlencoded::parse(body.as_bytes())
                                .find(|(k, _)| k == "token")
                                .map(|(_, v)| v.into_owned())
                                .unwrap_or_default()
                        };
                        let answer = match (parts.uri.path(), tokens.get(&token)) {
                            ("/introspect", Some(claims)) => {
                                Response::new(Full::new(Bytes::from(claims.to_string())))
                            }
                            ("/introspect", None) => {
                                Response::new(Full::new(Bytes::from_static(br#"{"active":false}"#)))
                            }
                            ("/userinfo", Some(claims)) if claims["active"] == json!(true) => {
                                Response::new(Full::new(Bytes::from(
                                    json!({"sub": claims["sub"]}).to_string(),
                                )))
                            }
                            _ => {
                                let mut r = Response::new(Full::new(Bytes::new()));
                                *r.status_mut() = StatusCode::UNAUTHORIZED;
                                r
                            }
                        };
                        Ok::<_, Infallible>(answer)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    IdentityProvider { url, seen }
}

#[tokio::test]
async fn introspection_rfc7662() {
    let idp = identity_provider(json!({
        "good": {"active": true, "sub": "alice", "username": "al", "scope": "read write", "exp": now() + 600},
        "no-user": {"active": true, "scope": "read"},
        "narrow": {"active": true, "sub": "bob", "scope": "write"},
        "inactive": {"active": false, "sub": "carol"},
        "string-active": {"active": "true", "sub": "dave", "scope": "read"}
    }))
    .await;
    let auth = config(
        json!({"configs": [{"oauth2": {"accessTokenValidationConfig": {
            "introspection": {"introspectionUrl": format!("{}/introspect", idp.url),
                "clientId": "gloo client", "clientSecret": "s3cr:t", "userIdAttributeName": "username"},
            "requiredScopes": {"scope": ["read"]},
            "claimsToHeaders": [{"claim": "sub", "header": "x-sub"}]
        }}}]}),
    );

    let ok = allowed(&auth, &request(&[("authorization", "Bearer good")])).await;
    assert_eq!(ok.user_id.as_deref(), Some("al"));
    assert_eq!(ok.upstream_headers["x-sub"], "alice");
    {
        let seen = idp.seen.lock().expect("lock");
        let (path, headers, body) = &seen[0];
        assert_eq!(path, "/introspect");
        assert_eq!(body, "token=good");
        assert_eq!(headers["content-type"], "application/x-www-form-urlencoded");
        // RFC 6749 §2.3.1: id and secret form-urlencoded, then HTTP Basic.
        let expected = base64::engine::general_purpose::STANDARD.encode("gloo+client:s3cr%3At");
        assert_eq!(headers["authorization"], format!("Basic {expected}"));
    }
    // Cached: the endpoint is not asked again.
    allowed(&auth, &request(&[("authorization", "Bearer good")])).await;
    assert_eq!(idp.seen.lock().expect("lock").len(), 1);

    for token in ["no-user", "narrow", "inactive", "string-active", "unknown"] {
        let d = denied(
            &auth,
            &request(&[("authorization", &format!("Bearer {token}"))]),
        )
        .await;
        assert_eq!(d.status, StatusCode::FORBIDDEN, "{token}");
    }
    // Refusals are not cached.
    denied(&auth, &request(&[("authorization", "Bearer inactive")])).await;
    assert_eq!(idp.seen.lock().expect("lock").len(), 7);

    // cacheTimeout 0: no cache. Legacy introspectionUrl: no client authentication. Userinfo.
    let uncached = config(
        json!({"configs": [{"oauth2": {"accessTokenValidationConfig": {
            "introspectionUrl": format!("{}/introspect", idp.url),
            "userinfoUrl": format!("{}/userinfo", idp.url),
            "cacheTimeout": "0s"
        }}}]}),
    );
    let before = idp.seen.lock().expect("lock").len();
    for _ in 0..2 {
        let ok = allowed(&uncached, &request(&[("authorization", "Bearer no-user")])).await;
        assert!(ok.user_id.is_none());
    }
    {
        let seen = idp.seen.lock().expect("lock");
        let paths: Vec<&str> = seen[before..].iter().map(|(p, _, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            ["/introspect", "/userinfo", "/introspect", "/userinfo"]
        );
        let (_, headers, _) = &seen[before];
        assert!(headers.get("authorization").is_none());
        let (_, headers, _) = &seen[before + 1];
        assert_eq!(headers["authorization"], "Bearer no-user");
    }

    // A client without a secret sends its id in the form.
    let public = config(
        json!({"configs": [{"oauth2": {"accessTokenValidationConfig": {
            "introspection": {"introspectionUrl": format!("{}/introspect", idp.url), "clientId": "pub"}
        }}}]}),
    );
    allowed(&public, &request(&[("authorization", "Bearer good")])).await;
    let seen = idp.seen.lock().expect("lock");
    let (_, headers, body) = seen.last().expect("a call");
    assert_eq!(body, "token=good&client_id=pub");
    assert!(headers.get("authorization").is_none());
}

#[tokio::test]
async fn introspection_endpoint_down_denies() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/introspect", listener.local_addr().expect("addr"));
    drop(listener);
    let auth = config(
        json!({"configs": [{"oauth2": {"accessTokenValidationConfig": {"introspectionUrl": url}}}]}),
    );
    assert_eq!(
        denied(&auth, &request(&[("authorization", "Bearer x")]))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn a_silent_introspection_endpoint_times_out_and_denies() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/introspect", listener.local_addr().expect("addr"));
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    let json = json!({"configs": [{"oauth2": {"accessTokenValidationConfig": {"introspectionUrl": url}}}]});
    let config = ExtAuthConfig::from_json(&json.to_string()).expect("parses");
    let options = BuildOptions::new().call_timeout(std::time::Duration::from_millis(100));
    let auth = AuthConfig::from_config_with(&config, &options).expect("builds");
    assert_eq!(
        denied(&auth, &request(&[("authorization", "Bearer x")]))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    held.abort();
}

fn with_header(name: &str, value: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .header(name, value)
        .body(Full::default())
        .expect("request")
}

fn echo() -> impl tower::Service<
    Request<ExtAuthBody<Full<Bytes>>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    service_fn(|req: Request<ExtAuthBody<Full<Bytes>>>| async move {
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let mut response = Response::new(Full::new(body));
        for (name, value) in &parts.headers {
            let name = http::HeaderName::try_from(format!("echo-{name}")).expect("name");
            response.headers_mut().append(name, value.clone());
        }
        Ok::<_, Infallible>(response)
    })
}

#[tokio::test]
async fn layer_sets_headers_user_id_and_answers_denials() {
    let auth = config(json!({"configs": [{"apiKeyAuth": {
        "validApiKeys": {"k": {"username": "robot", "metadata": {"team": "infra"}}},
        "headersFromKeyMetadata": {"x-team": "team"}}}]}));
    let svc = ExtAuthLayer::new(auth).layer(echo());

    let req = Request::builder()
        .header("api-key", "k")
        .header("x-team", "spoofed")
        .header("x-user-id", "spoofed")
        .body(Full::new(Bytes::from_static(b"payload")))
        .expect("request");
    let res = svc.clone().oneshot(req).await.expect("answer");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["echo-x-team"], "infra");
    assert_eq!(res.headers()["echo-x-user-id"], "robot");
    assert_eq!(res.headers().get_all("echo-x-team").iter().count(), 1);
    assert!(res.extensions().get::<ExtAuthDenied>().is_none());
    assert_eq!(
        res.into_body().collect().await.expect("body").to_bytes(),
        "payload"
    );

    let res = svc
        .oneshot(with_header("x-user-id", "spoofed"))
        .await
        .expect("answer");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.headers()["www-authenticate"],
        "API key is missing or invalid"
    );
    assert!(res.extensions().get::<ExtAuthDenied>().is_some());

    // Allowed without a user id: a client's own user id header is removed; another header
    // name can be configured, or none.
    let (open, _) = scripted(&[("a", true, 200)], None);
    struct NoUser;
    impl Authorize for NoUser {
        fn authorize<'a>(&'a self, _request: &'a CheckRequest) -> BoxFuture<'a, Decision> {
            let mut allowed = Allowed::default();
            allowed
                .response_headers
                .insert("set-cookie", http::HeaderValue::from_static("s=1"));
            // A header the step owns but has no value for this time.
            allowed
                .remove_upstream_headers
                .push(http::HeaderName::from_static("x-claim-email"));
            Box::pin(std::future::ready(Decision::Allow(allowed)))
        }
    }
    let svc = ExtAuthLayer::new(NoUser).layer(echo());
    let res = svc
        .oneshot(
            Request::builder()
                .header("x-user-id", "spoofed")
                .header("x-claim-email", "spoofed@example.com")
                .header("x-other", "kept")
                .body(Full::new(Bytes::new()))
                .expect("request"),
        )
        .await
        .expect("answer");
    assert!(res.headers().get("echo-x-user-id").is_none());
    assert!(res.headers().get("echo-x-claim-email").is_none());
    assert_eq!(res.headers()["echo-x-other"], "kept");
    assert_eq!(res.headers()["set-cookie"], "s=1");
    let svc = ExtAuthLayer::new(open)
        .user_id_header(Some("x-auth-user"))
        .expect("name")
        .layer(echo());
    let res = svc
        .oneshot(
            Request::builder()
                .header("x-user-id", "kept")
                .body(Full::default())
                .expect("request"),
        )
        .await
        .expect("answer");
    assert_eq!(res.headers()["echo-x-user-id"], "kept");
    assert_eq!(res.headers()["echo-x-auth-user"], "a");
    assert!(ExtAuthLayer::new(NoUser)
        .user_id_header(Some("bad header"))
        .is_err());
}

async fn status_and_body<S>(svc: S, request: Request<Full<Bytes>>) -> (StatusCode, Bytes)
where
    S: tower::Service<Request<Full<Bytes>>, Response = Response<Full<Bytes>>, Error = Infallible>,
{
    let Ok(res) = svc.oneshot(request).await;
    let status = res.status();
    let body = res
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    (status, body)
}

/// Lets in requests whose body (as the check saw it) is `ok...`; records it.
struct BodyCheck(Arc<Mutex<Vec<Bytes>>>);

impl Authorize for BodyCheck {
    fn authorize<'a>(&'a self, request: &'a CheckRequest) -> BoxFuture<'a, Decision> {
        self.0.lock().expect("lock").push(request.body.clone());
        let decision = if request.body.starts_with(b"ok") {
            Decision::Allow(Allowed::default())
        } else {
            Decision::Deny(Denied::status(StatusCode::FORBIDDEN))
        };
        Box::pin(std::future::ready(decision))
    }
}

#[tokio::test]
async fn layer_buffers_the_body_as_envoy_with_request_body() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let body = |s: &'static str| Request::new(Full::new(Bytes::from_static(s.as_bytes())));

    let strict = ExtAuthLayer::new(BodyCheck(Arc::clone(&seen)))
        .with_request_body(8, false)
        .layer(echo());
    assert_eq!(
        status_and_body(strict.clone(), body("ok-12345")).await,
        (StatusCode::OK, Bytes::from("ok-12345"))
    );
    assert_eq!(
        status_and_body(strict.clone(), body("ok-123456")).await,
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            Bytes::from("Payload Too Large")
        )
    );
    assert_eq!(
        status_and_body(strict, body("no")).await.0,
        StatusCode::FORBIDDEN
    );

    let partial = ExtAuthLayer::new(BodyCheck(Arc::clone(&seen)))
        .with_request_body(4, true)
        .layer(echo());
    assert_eq!(
        status_and_body(partial, body("ok-and-much-more")).await,
        (StatusCode::OK, Bytes::from("ok-and-much-more")),
        "the inner service gets it all"
    );

    // The body handed on knows its length (hyper sends it as content-length).
    let sized = ExtAuthLayer::new(BodyCheck(Arc::clone(&seen)))
        .with_request_body(4, true)
        .layer(service_fn(
            |req: Request<ExtAuthBody<Full<Bytes>>>| async move {
                let hint = http_body::Body::size_hint(req.body());
                let text = format!("{}..{:?}", hint.lower(), hint.upper());
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text))))
            },
        ));
    let res = sized.oneshot(body("ok-12345")).await.expect("answer");
    assert_eq!(
        res.into_body().collect().await.expect("body").to_bytes(),
        "8..Some(8)"
    );

    let unbuffered = ExtAuthLayer::new(BodyCheck(Arc::clone(&seen))).layer(echo());
    assert_eq!(
        unbuffered
            .oneshot(body("ok"))
            .await
            .expect("answer")
            .status(),
        StatusCode::FORBIDDEN
    );

    let seen: Vec<Bytes> = seen.lock().expect("lock").clone();
    assert_eq!(seen, ["ok-12345", "no", "ok-a", "ok-1", ""]);
}

#[cfg(feature = "extauth-grpc")]
mod grpc {
    use std::collections::HashMap;

    use envoy_types::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
    use envoy_types::pb::envoy::service::auth::v3::attribute_context::{
        HttpRequest, Request as AttrRequest,
    };
    use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
    use envoy_types::pb::envoy::service::auth::v3::{
        AttributeContext, CheckRequest as PbCheckRequest,
    };

    use super::*;
    use crate::extauth::grpc::ExtAuthzService;

    fn pb_request(config_id: Option<&str>, headers: &[(&str, &str)]) -> PbCheckRequest {
        let mut context_extensions = HashMap::new();
        if let Some(id) = config_id {
            context_extensions.insert("config_id".to_owned(), id.to_owned());
        }
        let mut all: HashMap<String, String> = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        all.insert(":authority".into(), "example.com".into());
        all.insert(":path".into(), "/api?x=1".into());
        PbCheckRequest {
            attributes: Some(AttributeContext {
                context_extensions,
                request: Some(AttrRequest {
                    http: Some(HttpRequest {
                        method: "GET".into(),
                        path: "/api?x=1".into(),
                        host: "example.com".into(),
                        scheme: "http".into(),
                        headers: all,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }
    }

    #[tokio::test]
    async fn answers_ok_and_denied_responses_like_glooss_server() {
        let service = ExtAuthzService::new();
        let keys = ExtAuthConfig::from_json(
            &json!({"authConfigRefName": "gloo-system.keys", "configs": [{"apiKeyAuth": {
                "validApiKeys": {"k": {"username": "robot", "metadata": {"team": "infra"}}},
                "headersFromKeyMetadata": {"x-team": "team"}}}]})
            .to_string(),
        )
        .expect("parses");
        service
            .apply(&[keys], &BuildOptions::new())
            .expect("builds");

        let res = service
            .check(pb_request(Some("gloo-system.keys"), &[("api-key", "k")]))
            .await;
        assert_eq!(res.status.as_ref().map(|s| s.code), Some(0));
        let Some(HttpResponse::OkResponse(ok)) = res.http_response else {
            panic!("{res:?}")
        };
        let set: Vec<(String, String, i32)> = ok
            .headers
            .iter()
            .filter_map(|h| {
                h.header
                    .as_ref()
                    .map(|v| (v.key.clone(), v.value.clone(), h.append_action))
            })
            .collect();
        let overwrite = HeaderAppendAction::OverwriteIfExistsOrAdd as i32;
        assert_eq!(
            set,
            [
                ("x-team".into(), "infra".into(), overwrite),
                ("x-user-id".into(), "robot".into(), overwrite)
            ]
        );
        assert!(ok.headers_to_remove.is_empty());

        let res = service
            .check(pb_request(Some("gloo-system.keys"), &[]))
            .await;
        assert_eq!(res.status.as_ref().map(|s| s.code), Some(16));
        let Some(HttpResponse::DeniedResponse(denied)) = res.http_response else {
            panic!("{res:?}")
        };
        assert_eq!(denied.status.map(|s| s.code), Some(401));
        assert_eq!(
            denied.headers[0]
                .header
                .as_ref()
                .map(|h| (h.key.as_str(), h.value.as_str())),
            Some(("www-authenticate", "API key is missing or invalid"))
        );

        // Unknown or missing config id: 403, fail closed.
        for id in [Some("gloo-system.other"), None] {
            let res = service.check(pb_request(id, &[("api-key", "k")])).await;
            let Some(HttpResponse::DeniedResponse(denied)) = res.http_response else {
                panic!("{res:?}")
            };
            assert_eq!(denied.status.map(|s| s.code), Some(403));
        }

        // Live replacement: the key is gone, a new config appears.
        let open = AuthConfig::builder("gloo-system.other")
            .step("a", NoUserAllow)
            .build()
            .expect("builds");
        service.insert(open);
        service.remove("gloo-system.keys");
        let res = service
            .check(pb_request(Some("gloo-system.keys"), &[("api-key", "k")]))
            .await;
        assert!(matches!(
            res.http_response,
            Some(HttpResponse::DeniedResponse(_))
        ));
        let res = service
            .check(pb_request(
                Some("gloo-system.other"),
                &[("x-user-id", "spoof")],
            ))
            .await;
        let Some(HttpResponse::OkResponse(ok)) = res.http_response else {
            panic!("{res:?}")
        };
        assert_eq!(ok.headers_to_remove, ["x-user-id"]);

        // A bad config changes nothing.
        let bad = ExtAuthConfig::from_json(
            r#"{"authConfigRefName": "ns.bad", "configs": [{"hmacAuth": {}}]}"#,
        )
        .expect("parses");
        let err = service
            .apply(&[bad], &BuildOptions::new())
            .expect_err("refused");
        assert_eq!(
            err.to_string(),
            "ns.bad: configs[0].hmacAuth: `hmacAuth` is not supported by gloo-filters"
        );
        assert!(service.get("gloo-system.other").is_some());
    }

    struct NoUserAllow;
    impl Authorize for NoUserAllow {
        fn authorize<'a>(&'a self, request: &'a CheckRequest) -> BoxFuture<'a, Decision> {
            // The request reaches the step as Envoy described it.
            assert_eq!(request.host, "example.com");
            assert_eq!(request.uri, "/api?x=1");
            assert!(request.headers.get(":path").is_none());
            Box::pin(std::future::ready(Decision::Allow(Allowed::default())))
        }
    }
}
