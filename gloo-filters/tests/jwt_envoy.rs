//! Differential test: the same requests through the real Envoy 1.40 (`jwt_authn` with inline
//! JWKS, routes naming requirements, a router to an echo upstream run by this test) and
//! through gloo-filters' `JwtAuthnLayer` wrapping the same echo service. Status, body,
//! `www-authenticate`, `content-type` and, for requests that pass, every header the upstream
//! saw that the filter may touch must be identical.
//!
//! Needs `GLOO_TEST_ENVOY` (the Envoy 1.40 binary; `scripts/test.sh` installs it and sets it).
//! Envoy listens on 127.0.0.1 on free ports with its own `--base-id`, and is killed by PID
//! when the test ends.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use bytes::Bytes;
use gloo_filters::jwt::{JwtAuthentication, JwtProvider, JwtRequirement, RemoteJwks};
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use ring::rand::SystemRandom;
use ring::signature::{self as rs, KeyPair};
use serde_json::{json, Value};
use tower::{Layer, ServiceExt};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
const HOST: &str = "gateway.test";

// ---------------------------------------------------------------------------------------------
// Keys and tokens

fn pem_der(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/jwt")
        .join(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("PEM body is base64")
}

struct Keys {
    rsa1: rs::RsaKeyPair,
    rsa2: rs::RsaKeyPair,
    ec: rs::EcdsaKeyPair,
    ed: rs::Ed25519KeyPair,
    hs: Vec<u8>,
    rng: SystemRandom,
}

impl Keys {
    fn new() -> Keys {
        let rng = SystemRandom::new();
        let ec_pk8 = rs::EcdsaKeyPair::generate_pkcs8(&rs::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("generate P-256");
        let ed_pk8 = rs::Ed25519KeyPair::generate_pkcs8(&rng).expect("generate Ed25519");
        Keys {
            rsa1: rs::RsaKeyPair::from_pkcs8(&pem_der("rsa1.pk8.pem")).expect("rsa1"),
            rsa2: rs::RsaKeyPair::from_pkcs8(&pem_der("rsa2.pk8.pem")).expect("rsa2"),
            ec: rs::EcdsaKeyPair::from_pkcs8(
                &rs::ECDSA_P256_SHA256_FIXED_SIGNING,
                ec_pk8.as_ref(),
                &rng,
            )
            .expect("P-256"),
            ed: rs::Ed25519KeyPair::from_pkcs8(ed_pk8.as_ref()).expect("Ed25519"),
            hs: b"0123456789abcdef0123456789abcdef".to_vec(),
            rng,
        }
    }

    fn main_jwks(&self) -> String {
        let rsa = rs::RsaPublicKeyComponents::<Vec<u8>>::from(self.rsa1.public());
        let ec = self.ec.public_key().as_ref();
        json!({"keys": [
            {"kty": "RSA", "kid": "rsa1",
             "n": B64.encode(&rsa.n),
             "e": B64.encode(&rsa.e)},
            {"kty": "EC", "kid": "ec1", "crv": "P-256", "alg": "ES256",
             "x": B64.encode(&ec[1..33]), "y": B64.encode(&ec[33..65])},
            {"kty": "OKP", "kid": "ed1", "crv": "Ed25519", "x": B64.encode(self.ed.public_key().as_ref())},
            {"kty": "RSA", "kid": "broken", "n": 7},
        ]})
        .to_string()
    }

    fn other_jwks(&self) -> String {
        json!({"keys": [{"kty": "oct", "kid": "hs1", "alg": "HS256", "k": B64.encode(&self.hs)}]})
            .to_string()
    }

    /// A compact JWS of `header` and `claims`, signed as `how`.
    fn token(&self, header: Value, claims: Value, how: Sign) -> String {
        let signed = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = match how {
            Sign::Rsa1(alg) | Sign::Rsa2(alg) => {
                let key = if matches!(how, Sign::Rsa1(_)) {
                    &self.rsa1
                } else {
                    &self.rsa2
                };
                let mut sig = vec![0; key.public().modulus_len()];
                key.sign(alg, &self.rng, signed.as_bytes(), &mut sig)
                    .expect("RSA sign");
                sig
            }
            Sign::Ec => self
                .ec
                .sign(&self.rng, signed.as_bytes())
                .expect("ECDSA sign")
                .as_ref()
                .to_vec(),
            Sign::Ed => self.ed.sign(signed.as_bytes()).as_ref().to_vec(),
            Sign::Hmac(secret) => {
                let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
                ring::hmac::sign(&key, signed.as_bytes()).as_ref().to_vec()
            }
            Sign::None => Vec::new(),
        };
        format!("{signed}.{}", B64.encode(sig))
    }
}

#[derive(Clone)]
enum Sign {
    Rsa1(&'static dyn rs::RsaEncoding),
    Rsa2(&'static dyn rs::RsaEncoding),
    Ec,
    Ed,
    Hmac(Vec<u8>),
    None,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

// ---------------------------------------------------------------------------------------------
// The configuration, once for Envoy and once for the layer

const MAIN_ISS: &str = "https://issuer.example";
const OTHER_ISS: &str = "https://other.example";
const REMOTE_ISS: &str = "https://remote.example";
const DOWN_ISS: &str = "https://down.example";

/// The JWKS the echo upstream serves at `/jwks` (the main provider's keys).
static REMOTE_JWKS: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// (requirement name, route prefix, requirement) for both sides.
fn requirements() -> Vec<(&'static str, &'static str, Value, JwtRequirement)> {
    vec![
        (
            "main",
            "/main",
            json!({"provider_name": "main"}),
            JwtRequirement::provider_name("main"),
        ),
        (
            "any",
            "/any",
            json!({"requires_any": {"requirements": [{"provider_name": "main"}, {"provider_name": "other"}]}}),
            JwtRequirement::requires_any([
                JwtRequirement::provider_name("main"),
                JwtRequirement::provider_name("other"),
            ]),
        ),
        (
            "all",
            "/all",
            json!({"requires_all": {"requirements": [{"provider_name": "main"}, {"provider_name": "other"}]}}),
            JwtRequirement::requires_all([
                JwtRequirement::provider_name("main"),
                JwtRequirement::provider_name("other"),
            ]),
        ),
        (
            "optional",
            "/optional",
            json!({"allow_missing": {}}),
            JwtRequirement::allow_missing(),
        ),
        (
            "lenient",
            "/lenient",
            json!({"allow_missing_or_failed": {}}),
            JwtRequirement::allow_missing_or_failed(),
        ),
        (
            "anyoptional",
            "/anyoptional",
            json!({"requires_any": {"requirements": [{"provider_name": "main"}, {"allow_missing": {}}]}}),
            JwtRequirement::requires_any([
                JwtRequirement::provider_name("main"),
                JwtRequirement::allow_missing(),
            ]),
        ),
        (
            "remote",
            "/remote",
            json!({"provider_name": "remote"}),
            JwtRequirement::provider_name("remote"),
        ),
        (
            "down",
            "/down",
            json!({"provider_name": "down"}),
            JwtRequirement::provider_name("down"),
        ),
        (
            "aud",
            "/aud",
            json!({"provider_and_audiences": {"provider_name": "main", "audiences": ["other-aud"]}}),
            JwtRequirement::provider_and_audiences("main", ["other-aud"]),
        ),
    ]
}

const CLAIMS: &[(&str, &str)] = &[
    ("sub", "x-jwt-sub"),
    ("nested.role", "x-jwt-role"),
    ("num", "x-jwt-num"),
    ("neg", "x-jwt-neg"),
    ("float", "x-jwt-float"),
    ("flag", "x-jwt-flag"),
    ("list", "x-jwt-list"),
    ("obj", "x-jwt-obj"),
    ("empty", "x-jwt-empty"),
];

/// Where the echo upstream serves the remote JWKS (and where it answers 404).
fn jwks_uri(upstream: u16, path: &str) -> String {
    format!("http://127.0.0.1:{upstream}{path}")
}

fn envoy_providers(keys: &Keys, upstream: u16) -> Value {
    let claim_to_headers: Vec<Value> = CLAIMS
        .iter()
        .map(|(claim, header)| json!({"claim_name": claim, "header_name": header}))
        .collect();
    json!({
        "main": {
            "issuer": MAIN_ISS,
            "audiences": ["api.example", "https://web.example/"],
            "local_jwks": {"inline_string": keys.main_jwks()},
            "forward_payload_header": "x-jwt-payload",
            "claim_to_headers": claim_to_headers,
        },
        "other": {
            "issuer": OTHER_ISS,
            "local_jwks": {"inline_string": keys.other_jwks()},
            "from_headers": [{"name": "x-other-token"}],
            "from_params": ["other_token"],
            "forward": true,
            "clock_skew_seconds": 5,
        },
        "remote": {
            "issuer": REMOTE_ISS,
            "remote_jwks": {
                "http_uri": {"uri": jwks_uri(upstream, "/jwks"), "cluster": "upstream", "timeout": "2s"},
                "cache_duration": "300s",
            },
            "claim_to_headers": [{"claim_name": "sub", "header_name": "x-jwt-sub"}],
        },
        "down": {
            "issuer": DOWN_ISS,
            "remote_jwks": {
                "http_uri": {"uri": jwks_uri(upstream, "/missing"), "cluster": "upstream", "timeout": "2s"},
            },
        },
    })
}

fn layer_config(keys: &Keys, upstream: u16) -> JwtAuthentication {
    let mut main = JwtProvider::local_jwks(keys.main_jwks())
        .issuer(MAIN_ISS)
        .audiences(["api.example", "https://web.example/"])
        .forward_payload_header("x-jwt-payload");
    for (claim, header) in CLAIMS {
        main = main.claim_to_header(*claim, *header);
    }
    let other = JwtProvider::local_jwks(keys.other_jwks())
        .issuer(OTHER_ISS)
        .from_header("x-other-token", "")
        .from_param("other_token")
        .forward(true)
        .clock_skew_seconds(5);
    JwtAuthentication::builder()
        .provider("main", main)
        .provider("other", other)
        .provider(
            "remote",
            JwtProvider::remote_jwks(
                RemoteJwks::new(jwks_uri(upstream, "/jwks"))
                    .cluster("upstream")
                    .timeout(Duration::from_secs(2))
                    .cache_duration(Duration::from_secs(300)),
            )
            .issuer(REMOTE_ISS)
            .claim_to_header("sub", "x-jwt-sub"),
        )
        .provider(
            "down",
            JwtProvider::remote_jwks(
                RemoteJwks::new(jwks_uri(upstream, "/missing"))
                    .cluster("upstream")
                    .timeout(Duration::from_secs(2)),
            )
            .issuer(DOWN_ISS),
        )
        .build()
        .expect("the layer accepts the config")
}

fn envoy_bootstrap(keys: &Keys, listen: u16, admin: u16, upstream: u16) -> Value {
    let mut routes: Vec<Value> = requirements()
        .into_iter()
        .map(|(name, prefix, _, _)| {
            json!({
                "match": {"prefix": prefix},
                "route": {"cluster": "upstream"},
                "typed_per_filter_config": {"envoy.filters.http.jwt_authn": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig",
                    "requirement_name": name,
                }},
            })
        })
        .collect();
    // Longer prefixes first so `/any` does not shadow `/anyoptional`.
    routes.sort_by_key(|r| std::cmp::Reverse(r["match"]["prefix"].as_str().map_or(0, str::len)));
    let requirement_map: serde_json::Map<String, Value> = requirements()
        .into_iter()
        .map(|(name, _, envoy, _)| (name.to_owned(), envoy))
        .collect();
    json!({
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
        "static_resources": {
            "listeners": [{
                "name": "jwt",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "jwt",
                        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes}]},
                        "http_filters": [
                            {"name": "envoy.filters.http.jwt_authn", "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
                                "providers": envoy_providers(keys, upstream),
                                "requirement_map": requirement_map,
                            }},
                            {"name": "envoy.filters.http.router", "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
                        ],
                    },
                }]}],
            }],
            "clusters": [{
                "name": "upstream",
                "type": "STATIC",
                "connect_timeout": "1s",
                "load_assignment": {"cluster_name": "upstream", "endpoints": [{"lb_endpoints": [{
                    "endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": upstream}}}}]}]},
            }],
        },
    })
}

// ---------------------------------------------------------------------------------------------
// The echo upstream: reports the request headers the filter may have touched

const ECHOED: &[&str] = &["authorization", "x-other-token", "x-jwt-payload"];

fn echo(headers: &http::HeaderMap, path: &str) -> String {
    let mut out = format!("path: {path}\n");
    let mut names: Vec<&str> = ECHOED.to_vec();
    names.extend(CLAIMS.iter().map(|(_, h)| *h));
    for name in names {
        for value in headers.get_all(name) {
            out.push_str(&format!(
                "{name}: {}\n",
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
    }
    out
}

async fn echo_service<B>(req: Request<B>) -> Result<Response<Full<Bytes>>, Infallible> {
    match req.uri().path() {
        "/jwks" => {
            let jwks = REMOTE_JWKS.get().cloned().unwrap_or_default();
            return Ok(Response::new(Full::new(Bytes::from(jwks))));
        }
        "/missing" => {
            let mut response = Response::new(Full::new(Bytes::from_static(b"no keys here")));
            *response.status_mut() = http::StatusCode::NOT_FOUND;
            return Ok(response);
        }
        _ => {}
    }
    let path = req
        .uri()
        .path_and_query()
        .map_or("", |pq| pq.as_str())
        .to_owned();
    Ok(Response::new(Full::new(Bytes::from(echo(
        req.headers(),
        &path,
    )))))
}

async fn serve_echo(listener: tokio::net::TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|req: Request<Incoming>| echo_service(req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Envoy

use gloo_test_ports::free_port;

/// Envoy, killed (by PID) and reaped when dropped.
struct EnvoyGuard {
    child: Child,
    log: PathBuf,
}

impl Drop for EnvoyGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_envoy(bootstrap: &Value, admin: u16, dir: &std::path::Path) -> EnvoyGuard {
    let envoy = std::env::var_os("GLOO_TEST_ENVOY").unwrap_or_else(|| {
        panic!("GLOO_TEST_ENVOY is not set: run scripts/test.sh, which installs Envoy 1.40 and sets it")
    });
    let config = dir.join("envoy.json");
    std::fs::write(&config, bootstrap.to_string()).expect("write the bootstrap");
    let log = dir.join("envoy.log");
    let child = Command::new(envoy)
        .arg("-c")
        .arg(&config)
        .args(["--base-id", &admin.to_string()])
        .args(["--concurrency", "1", "--log-level", "warn"])
        .stdin(Stdio::null())
        .stdout(File::create(dir.join("envoy.out")).expect("stdout log"))
        .stderr(File::create(&log).expect("stderr log"))
        .spawn()
        .expect("start envoy");
    EnvoyGuard { child, log }
}

// ---------------------------------------------------------------------------------------------
// Requests

#[derive(Clone, Debug)]
struct Case {
    name: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
}

fn case(name: &'static str, path: &str, headers: Vec<(&'static str, String)>) -> Case {
    Case {
        name,
        path: path.to_owned(),
        headers,
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    body: String,
    www_authenticate: Option<String>,
    content_type: Option<String>,
}

fn answer(status: u16, headers: &http::HeaderMap, body: Bytes) -> Answer {
    let get = |name: &str| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    Answer {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
        www_authenticate: get("www-authenticate"),
        // The echo upstream's answers have none; compare only the refusals'.
        content_type: get("content-type"),
    }
}

fn request(case: &Case, base: &str) -> Request<Empty<Bytes>> {
    let mut builder = Request::builder()
        .uri(format!("{base}{}", case.path))
        .header("host", HOST);
    for (name, value) in &case.headers {
        builder = builder.header(*name, value);
    }
    builder.body(Empty::new()).expect("valid request")
}

fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

fn cases(keys: &Keys) -> Vec<Case> {
    let n = now();
    let rs256 = Sign::Rsa1(&rs::RSA_PKCS1_SHA256);
    let main_claims = json!({
        "iss": MAIN_ISS, "sub": "alice", "aud": "api.example", "exp": n + 600, "iat": n,
        "nested": {"role": "admin"}, "num": 42, "neg": -3, "float": 1.5, "flag": true,
        "list": ["a", "b"], "obj": {"k": "v"}, "empty": "",
    });
    let with = |patch: Value| {
        let mut claims = main_claims.clone();
        if let (Value::Object(c), Value::Object(p)) = (&mut claims, patch) {
            c.extend(p);
        }
        claims
    };
    let rsa_header = json!({"alg": "RS256", "kid": "rsa1"});
    let main = keys.token(rsa_header.clone(), main_claims.clone(), rs256.clone());
    let other = keys.token(
        json!({"alg": "HS256", "kid": "hs1"}),
        json!({"iss": OTHER_ISS, "sub": "bob", "exp": n + 600}),
        Sign::Hmac(keys.hs.clone()),
    );
    let other_expired_in_skew = keys.token(
        json!({"alg": "HS256"}),
        json!({"iss": OTHER_ISS, "exp": n - 30}),
        Sign::Hmac(keys.hs.clone()),
    );
    let t = |header: Value, claims: Value, how: Sign| keys.token(header, claims, how);
    let rsa_pub_n = rs::RsaPublicKeyComponents::<Vec<u8>>::from(keys.rsa1.public()).n;
    vec![
        case("valid RS256", "/main/x?q=1", vec![bearer(&main)]),
        case("missing", "/main/x", vec![]),
        case(
            "expired",
            "/main",
            vec![bearer(&t(
                rsa_header.clone(),
                with(json!({"exp": n - 3600})),
                rs256.clone(),
            ))],
        ),
        case(
            "expired within skew",
            "/main",
            vec![bearer(&t(
                rsa_header.clone(),
                with(json!({"exp": n - 30})),
                rs256.clone(),
            ))],
        ),
        case(
            "not yet valid",
            "/main",
            vec![bearer(&t(
                rsa_header.clone(),
                with(json!({"nbf": n + 3600})),
                rs256.clone(),
            ))],
        ),
        case(
            "wrong audience",
            "/main",
            vec![bearer(&t(
                rsa_header.clone(),
                with(json!({"aud": ["nope", "other-aud"]})),
                rs256.clone(),
            ))],
        ),
        case(
            "audience with scheme and slash",
            "/main",
            vec![bearer(&t(
                rsa_header.clone(),
                with(json!({"aud": "http://web.example"})),
                rs256.clone(),
            ))],
        ),
        case(
            "wrong issuer",
            "/main",
            vec![bearer(&t(
                rsa_header.clone(),
                with(json!({"iss": "https://evil.example"})),
                rs256.clone(),
            ))],
        ),
        case(
            "no issuer",
            "/main",
            vec![bearer(&t(
                rsa_header.clone(),
                json!({"aud": "api.example"}),
                rs256.clone(),
            ))],
        ),
        case(
            "bad signature",
            "/main",
            vec![bearer(&t(
                rsa_header.clone(),
                main_claims.clone(),
                Sign::Rsa2(&rs::RSA_PKCS1_SHA256),
            ))],
        ),
        case(
            "alg none",
            "/main",
            vec![bearer(&t(
                json!({"alg": "none"}),
                main_claims.clone(),
                Sign::None,
            ))],
        ),
        case(
            "unknown kid",
            "/main",
            vec![bearer(&t(
                json!({"alg": "RS256", "kid": "nope"}),
                main_claims.clone(),
                rs256.clone(),
            ))],
        ),
        case(
            "no kid",
            "/main",
            vec![bearer(&t(
                json!({"alg": "RS256"}),
                main_claims.clone(),
                rs256.clone(),
            ))],
        ),
        case(
            "PS256",
            "/main",
            vec![bearer(&t(
                json!({"alg": "PS256", "kid": "rsa1"}),
                main_claims.clone(),
                Sign::Rsa1(&rs::RSA_PSS_SHA256),
            ))],
        ),
        case(
            "RS512",
            "/main",
            vec![bearer(&t(
                json!({"alg": "RS512", "kid": "rsa1"}),
                main_claims.clone(),
                Sign::Rsa1(&rs::RSA_PKCS1_SHA512),
            ))],
        ),
        case(
            "ES256",
            "/main",
            vec![bearer(&t(
                json!({"alg": "ES256", "kid": "ec1"}),
                main_claims.clone(),
                Sign::Ec,
            ))],
        ),
        case(
            "ES256 against the RSA key",
            "/main",
            vec![bearer(&t(
                json!({"alg": "ES256", "kid": "rsa1"}),
                main_claims.clone(),
                Sign::Ec,
            ))],
        ),
        case(
            "EdDSA",
            "/main",
            vec![bearer(&t(
                json!({"alg": "EdDSA", "kid": "ed1"}),
                main_claims.clone(),
                Sign::Ed,
            ))],
        ),
        case(
            "EdDSA short signature",
            "/main",
            vec![bearer(&format!(
                "{}.{}.{}",
                B64.encode(r#"{"alg":"EdDSA","kid":"ed1"}"#),
                B64.encode(main_claims.to_string()),
                B64.encode([1u8; 10])
            ))],
        ),
        case(
            "HS256 with the RSA modulus as secret",
            "/main",
            vec![bearer(&t(
                json!({"alg": "HS256", "kid": "rsa1"}),
                main_claims.clone(),
                Sign::Hmac(rsa_pub_n),
            ))],
        ),
        case("malformed", "/main", vec![bearer("abc.def")]),
        case("bad header base64", "/main", vec![bearer("a$b.cd.ef")]),
        case(
            "header not json",
            "/main",
            vec![bearer(&format!("{}.e30.AA", B64.encode("nope")))],
        ),
        case(
            "exp not a number",
            "/main",
            vec![bearer(&t(
                rsa_header.clone(),
                with(json!({"exp": "soon"})),
                rs256.clone(),
            ))],
        ),
        case(
            "aud not strings",
            "/main",
            vec![bearer(&t(
                rsa_header.clone(),
                with(json!({"aud": [1]})),
                rs256.clone(),
            ))],
        ),
        case("token in query", "/main", vec![]).with_path(format!("/main?a=1&access_token={main}")),
        case("token in query among others", "/main", vec![])
            .with_path(format!("/main?b=2&access_token={main}&c=3")),
        case("token alone in query", "/main", vec![])
            .with_path(format!("/main?access_token={main}")),
        case("forwarded token in query", "/any", vec![])
            .with_path(format!("/any?other_token={other}&z=1")),
        case("bad token in query", "/main", vec![])
            .with_path("/main?x=1&access_token=abc".to_owned()),
        case(
            "other token on main route",
            "/main",
            vec![("x-other-token", other.clone())],
        ),
        case(
            "forged claim header without token",
            "/optional",
            vec![("x-jwt-sub", "mallory".to_owned())],
        ),
        case("optional, no token", "/optional/p", vec![]),
        case(
            "optional, bad token",
            "/optional",
            vec![bearer(&t(
                rsa_header.clone(),
                with(json!({"exp": n - 3600})),
                rs256.clone(),
            ))],
        ),
        case("optional, good token", "/optional", vec![bearer(&main)]),
        case(
            "optional, other issuer",
            "/optional",
            vec![("x-other-token", other.clone())],
        ),
        case(
            "lenient, bad token",
            "/lenient",
            vec![bearer("abc"), ("x-jwt-sub", "mallory".to_owned())],
        ),
        case("lenient, good token", "/lenient", vec![bearer(&main)]),
        case("any, main", "/any", vec![bearer(&main)]),
        case("any, other", "/any", vec![("x-other-token", other.clone())]),
        case(
            "any, other in skew",
            "/any",
            vec![("x-other-token", other_expired_in_skew)],
        ),
        case("any, none", "/any", vec![]),
        case(
            "any, wrong audience",
            "/any",
            vec![bearer(&t(
                rsa_header.clone(),
                with(json!({"aud": "nope"})),
                rs256.clone(),
            ))],
        ),
        case(
            "any, wrong issuer",
            "/any",
            vec![bearer(&t(
                rsa_header.clone(),
                with(json!({"iss": "https://evil.example"})),
                rs256.clone(),
            ))],
        ),
        case("anyoptional, none", "/anyoptional", vec![]),
        case(
            "anyoptional, expired",
            "/anyoptional",
            vec![bearer(&t(
                rsa_header.clone(),
                with(json!({"exp": n - 3600})),
                rs256.clone(),
            ))],
        ),
        case(
            "all, both",
            "/all",
            vec![bearer(&main), ("x-other-token", other.clone())],
        ),
        case("all, main only", "/all", vec![bearer(&main)]),
        case(
            "all, other only",
            "/all",
            vec![("x-other-token", other.clone())],
        ),
        case(
            "remote, valid",
            "/remote",
            vec![bearer(&t(
                rsa_header.clone(),
                with(json!({"iss": REMOTE_ISS})),
                rs256.clone(),
            ))],
        ),
        case(
            "remote, valid again (cached)",
            "/remote",
            vec![bearer(&t(
                json!({"alg": "ES256", "kid": "ec1"}),
                with(json!({"iss": REMOTE_ISS})),
                Sign::Ec,
            ))],
        ),
        case(
            "remote, unknown kid",
            "/remote",
            vec![bearer(&t(
                json!({"alg": "RS256", "kid": "rotated"}),
                with(json!({"iss": REMOTE_ISS})),
                rs256.clone(),
            ))],
        ),
        case(
            "remote, expired",
            "/remote",
            vec![bearer(&t(
                rsa_header.clone(),
                with(json!({"iss": REMOTE_ISS, "exp": n - 3600})),
                rs256.clone(),
            ))],
        ),
        case("remote, missing", "/remote", vec![]),
        case(
            "remote keys unavailable",
            "/down",
            vec![bearer(&t(
                rsa_header.clone(),
                with(json!({"iss": DOWN_ISS})),
                rs256.clone(),
            ))],
        ),
        case(
            "remote keys unavailable, wrong issuer",
            "/down",
            vec![bearer(&main)],
        ),
        case(
            "aud override, provider audience",
            "/aud",
            vec![bearer(&main)],
        ),
        case(
            "aud override, listed audience",
            "/aud",
            vec![bearer(&t(
                rsa_header.clone(),
                with(json!({"aud": "other-aud"})),
                rs256.clone(),
            ))],
        ),
        case(
            "bearer with two spaces",
            "/main",
            vec![("authorization", format!("Bearer  {main}"))],
        ),
        case(
            "bearer without token",
            "/main",
            vec![("authorization", "Bearer".to_owned())],
        ),
        case(
            "bearer and spaces only",
            "/main",
            vec![("authorization", "Bearer    ".to_owned())],
        ),
        case(
            "padded signature",
            "/main",
            vec![bearer(&format!("{main}=="))],
        ),
        case(
            "empty kid",
            "/main",
            vec![bearer(&t(
                json!({"alg": "RS256", "kid": ""}),
                main_claims.clone(),
                rs256.clone(),
            ))],
        ),
        case(
            "float exp",
            "/main",
            vec![bearer(&t(
                rsa_header.clone(),
                with(json!({"exp": (n + 600) as f64 + 0.5})),
                rs256.clone(),
            ))],
        ),
        case(
            "missing nested claim parent",
            "/main",
            vec![bearer(&t(
                rsa_header.clone(),
                with(json!({"nested": "flat"})),
                rs256.clone(),
            ))],
        ),
        case(
            "huge integer claim",
            "/main",
            vec![bearer(&t(
                rsa_header.clone(),
                with(json!({"num": 18446744073709551615u64, "neg": 1e300})),
                rs256.clone(),
            ))],
        ),
        case(
            "unicode claim",
            "/main",
            vec![bearer(&t(
                rsa_header.clone(),
                with(json!({"sub": "Zoë"})),
                rs256.clone(),
            ))],
        ),
        case("long path with query", "/main", vec![]).with_path(format!(
            "/main/{}?q={}",
            "a".repeat(250),
            "b".repeat(50)
        )),
        case(
            "two authorization headers",
            "/main",
            vec![bearer(&main), bearer("abc")],
        ),
        case(
            "prefix elsewhere in the value",
            "/main",
            vec![("authorization", format!("Token x, Bearer {main}"))],
        ),
        case(
            "lowercase bearer",
            "/main",
            vec![("authorization", format!("bearer {main}"))],
        ),
        case(
            "x-forwarded-proto",
            "/main/secure",
            vec![("x-forwarded-proto", "https".to_owned())],
        ),
        case("long path", "/main/x", vec![bearer("abc")])
            .with_path(format!("/main/{}", "p".repeat(300))),
        case(
            "header and query tokens, query bad",
            "/main",
            vec![bearer(&main)],
        )
        .with_path("/main?access_token=abc".to_owned()),
        case(
            "header and query tokens, header bad",
            "/main",
            vec![bearer("abc")],
        )
        .with_path(format!("/main?access_token={main}")),
    ]
}

impl Case {
    fn with_path(mut self, path: String) -> Case {
        self.path = path;
        self
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_authn_answers_like_envoy() {
    let keys = Keys::new();
    REMOTE_JWKS
        .set(keys.main_jwks())
        .expect("one test sets the remote JWKS");
    let dir = std::env::temp_dir().join(format!("gloo-jwt-envoy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");

    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the echo upstream");
    let upstream_port = upstream.local_addr().expect("addr").port();
    tokio::spawn(serve_echo(upstream));

    let (listen, admin) = (free_port(), free_port());
    let bootstrap = envoy_bootstrap(&keys, listen, admin, upstream_port);
    let mut envoy = start_envoy(&bootstrap, admin, &dir);

    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let base = format!("http://127.0.0.1:{listen}");
    // Ready once the listener answers (the echo path needs no token).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = envoy.child.try_wait() {
            panic!(
                "envoy exited ({status}):\n{}",
                std::fs::read_to_string(&envoy.log).unwrap_or_default()
            );
        }
        let probe = request(&case("probe", "/optional", vec![]), &base);
        if let Ok(response) = client.request(probe).await {
            if response.status() == 200 {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "envoy did not serve within 30 s:\n{}",
            std::fs::read_to_string(&envoy.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let authn = layer_config(&keys, upstream_port);
    let layers: BTreeMap<&str, _> = requirements()
        .into_iter()
        .map(|(_, prefix, _, req)| (prefix, authn.layer(req).expect("layer")))
        .collect();

    let mut mismatches = Vec::new();
    let mut envoy_answers = BTreeMap::new();
    for case in cases(&keys) {
        let via_envoy = {
            let response = client
                .request(request(&case, &base))
                .await
                .unwrap_or_else(|e| panic!("{}: request through envoy: {e}", case.name));
            let (parts, body) = response.into_parts();
            let body = body.collect().await.expect("envoy body").to_bytes();
            answer(parts.status.as_u16(), &parts.headers, body)
        };
        let via_layer = {
            // The route's layer: the longest matching prefix, as Envoy's sorted routes.
            let (_, layer) = layers
                .iter()
                .filter(|(prefix, _)| case.path.starts_with(**prefix))
                .max_by_key(|(prefix, _)| prefix.len())
                .expect("a route matches");
            let svc = layer.layer(tower::service_fn(echo_service::<Empty<Bytes>>));
            let response = svc
                .oneshot(request(&case, ""))
                .await
                .unwrap_or_else(|e: Infallible| match e {});
            let (parts, body) = response.into_parts();
            let body = body.collect().await.expect("layer body").to_bytes();
            answer(parts.status.as_u16(), &parts.headers, body)
        };
        if via_envoy != via_layer {
            mismatches.push(format!(
                "{}:\n  envoy: {via_envoy:?}\n  layer: {via_layer:?}",
                case.name
            ));
        }
        envoy_answers.insert(case.name, via_envoy);
    }
    drop(envoy);
    // Anchors: the comparison means something only if Envoy itself answered as documented.
    for (name, status, body) in [
        ("valid RS256", 200, None),
        ("remote, valid", 200, None),
        ("missing", 401, Some("Jwt is missing")),
        (
            "wrong audience",
            403,
            Some("Audiences in Jwt are not allowed"),
        ),
        ("expired", 401, Some("Jwt is expired")),
        ("bad signature", 401, Some("Jwt verification fails")),
        (
            "remote keys unavailable",
            401,
            Some("Jwks remote fetch is failed"),
        ),
    ] {
        let answer = &envoy_answers[name];
        assert_eq!(
            answer.status, status,
            "envoy's answer to {name}: {answer:?}"
        );
        if let Some(body) = body {
            assert_eq!(answer.body, body, "envoy's answer to {name}");
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of the cases differ from Envoy:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
