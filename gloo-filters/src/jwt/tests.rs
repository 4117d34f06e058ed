//! Unit tests of the `jwt` module: every rejection, requirement and token source, the header
//! edits, the refusal format, and the remote JWKS cache (with a scripted fetcher and paused
//! time). Keys are generated here (ring) or read from `tests/data/jwt/`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use ring::rand::SystemRandom;
use ring::signature::{self as rs, KeyPair};
use serde_json::{json, Value};
use tower::{service_fn, Layer, ServiceExt};

use super::*;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
const ISS: &str = "https://issuer.example";
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(crate) fn hs_jwks(kid: &str, secret: &[u8]) -> String {
    json!({"keys": [{"kty": "oct", "kid": kid, "alg": "HS256", "k": B64.encode(secret)}]})
        .to_string()
}

pub(crate) fn hs_token(header: Value, claims: Value, secret: &[u8]) -> String {
    let signed = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret),
        signed.as_bytes(),
    );
    format!("{signed}.{}", B64.encode(tag.as_ref()))
}

fn good_claims() -> Value {
    json!({"iss": ISS, "sub": "alice", "aud": "api", "exp": now() + 600})
}

fn token(claims: Value) -> String {
    hs_token(json!({"alg": "HS256", "kid": "k1"}), claims, SECRET)
}

fn provider() -> JwtProvider {
    JwtProvider::local_jwks(hs_jwks("k1", SECRET))
        .issuer(ISS)
        .audience("api")
}

fn authn(provider: JwtProvider) -> JwtAuthentication {
    JwtAuthentication::builder()
        .provider("p", provider)
        .build()
        .expect("valid config")
}

/// What the inner service saw, or the refusal.
#[derive(Debug)]
struct Seen {
    status: StatusCode,
    body: String,
    headers: http::HeaderMap,
    uri: String,
    verified: Option<VerifiedJwts>,
    rejected: Option<JwtRejected>,
}

async fn send(layer: &JwtAuthnLayer, request: Request<Full<Bytes>>) -> Seen {
    let svc = layer.layer(service_fn(|req: Request<Full<Bytes>>| async move {
        // Echo what reached the upstream: headers as response headers, the URI as body.
        let mut response = Response::new(Full::new(Bytes::from(req.uri().to_string())));
        *response.headers_mut() = req.headers().clone();
        response
            .extensions_mut()
            .insert(req.extensions().get::<VerifiedJwts>().cloned());
        Ok::<_, Infallible>(response)
    }));
    let response = svc.oneshot(request).await.unwrap_or_else(|e| match e {});
    let (mut parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body = String::from_utf8_lossy(&body).into_owned();
    let rejected = parts.extensions.get::<JwtRejected>().copied();
    let verified = parts.extensions.remove::<Option<VerifiedJwts>>().flatten();
    Seen {
        status: parts.status,
        uri: if rejected.is_none() {
            body.clone()
        } else {
            String::new()
        },
        body,
        headers: parts.headers,
        verified,
        rejected,
    }
}

fn get(uri: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut builder = Request::builder().uri(uri).header("host", "svc.test");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Full::default()).expect("request")
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn status_of(layer: &JwtAuthnLayer, token: &str) -> (StatusCode, String) {
    let seen = send(layer, get("/", &[("authorization", &bearer(token))])).await;
    (seen.status, seen.body)
}

// ---------------------------------------------------------------------------------------------
// Rejections

#[tokio::test]
async fn a_valid_token_passes_and_its_claims_reach_the_inner_service() {
    let layer = authn(provider())
        .layer(JwtRequirement::provider_name("p"))
        .unwrap();
    let seen = send(
        &layer,
        get("/x", &[("authorization", &bearer(&token(good_claims())))]),
    )
    .await;
    assert_eq!(seen.status, StatusCode::OK);
    assert!(seen.rejected.is_none());
    let verified = seen.verified.expect("VerifiedJwts extension");
    let jwt = verified.by_provider("p").expect("token of p");
    assert_eq!(jwt.claims()["sub"], "alice");
    assert_eq!(jwt.header()["kid"], "k1");
    // `forward` is off: the token header is gone upstream.
    assert!(seen.headers.get("authorization").is_none());
}

#[tokio::test]
async fn payload_in_metadata_puts_the_claims_in_dynamic_metadata() {
    use crate::metadata::{DynamicMetadata, JWT_AUTHN_NAMESPACE};
    let seen_metadata = |with: bool| async move {
        let p = if with {
            provider().payload_in_metadata("principal")
        } else {
            provider()
        };
        let layer = authn(p).layer(JwtRequirement::provider_name("p")).unwrap();
        let svc = layer.layer(service_fn(|req: Request<Full<Bytes>>| async move {
            let mut response = Response::new(Full::<Bytes>::default());
            response
                .extensions_mut()
                .insert(req.extensions().get::<DynamicMetadata>().cloned());
            Ok::<_, Infallible>(response)
        }));
        let request = get("/", &[("authorization", &bearer(&token(good_claims())))]);
        let response = svc.oneshot(request).await.unwrap_or_else(|e| match e {});
        response
            .extensions()
            .get::<Option<DynamicMetadata>>()
            .cloned()
            .flatten()
    };
    let metadata = seen_metadata(true)
        .await
        .expect("DynamicMetadata extension");
    assert_eq!(
        metadata.lookup(JWT_AUTHN_NAMESPACE, &["principal", "sub"]),
        Some(&json!("alice"))
    );
    assert_eq!(
        metadata.lookup(JWT_AUTHN_NAMESPACE, &["principal", "iss"]),
        Some(&json!(ISS))
    );
    // Without `payload_in_metadata` nothing is written.
    assert_eq!(seen_metadata(false).await, None);
}

#[tokio::test]
async fn each_bad_token_gets_envoys_status() {
    let layer = authn(provider())
        .layer(JwtRequirement::provider_name("p"))
        .unwrap();
    let n = now();
    let with = |patch: Value| {
        let mut claims = good_claims();
        if let (Value::Object(c), Value::Object(p)) = (&mut claims, patch) {
            c.extend(p);
        }
        claims
    };
    let cases: Vec<(String, StatusCode, JwtStatus)> = vec![
        (
            token(with(json!({"exp": n - 3600}))),
            StatusCode::UNAUTHORIZED,
            JwtStatus::JwtExpired,
        ),
        (
            token(with(json!({"nbf": n + 3600}))),
            StatusCode::UNAUTHORIZED,
            JwtStatus::JwtNotYetValid,
        ),
        (
            token(with(json!({"aud": "elsewhere"}))),
            StatusCode::FORBIDDEN,
            JwtStatus::JwtAudienceNotAllowed,
        ),
        (
            token(with(json!({"iss": "https://evil"}))),
            StatusCode::UNAUTHORIZED,
            JwtStatus::JwtUnknownIssuer,
        ),
        (
            hs_token(
                json!({"alg": "HS256", "kid": "k1"}),
                good_claims(),
                b"another secret",
            ),
            StatusCode::UNAUTHORIZED,
            JwtStatus::JwtVerificationFail,
        ),
        (
            hs_token(json!({"alg": "HS256", "kid": "k2"}), good_claims(), SECRET),
            StatusCode::UNAUTHORIZED,
            JwtStatus::JwksKidAlgMismatch,
        ),
        (
            hs_token(json!({"alg": "HS384", "kid": "k1"}), good_claims(), SECRET),
            StatusCode::UNAUTHORIZED,
            JwtStatus::JwksKidAlgMismatch,
        ),
        (
            format!(
                "{}.{}.",
                B64.encode(r#"{"alg":"none"}"#),
                B64.encode(good_claims().to_string())
            ),
            StatusCode::UNAUTHORIZED,
            JwtStatus::JwtBadFormat,
        ),
        (
            format!(
                "{}.{}.AA",
                B64.encode(r#"{"alg":"none"}"#),
                B64.encode(good_claims().to_string())
            ),
            StatusCode::UNAUTHORIZED,
            JwtStatus::JwtHeaderNotImplementedAlg,
        ),
        (
            format!(
                "{}.{}.AA",
                B64.encode(r#"{"typ":"JWT"}"#),
                B64.encode(good_claims().to_string())
            ),
            StatusCode::UNAUTHORIZED,
            JwtStatus::JwtHeaderBadAlg,
        ),
        (
            format!(
                "{}.{}.AA",
                B64.encode(r#"{"alg":"HS256","kid":7}"#),
                B64.encode(good_claims().to_string())
            ),
            StatusCode::UNAUTHORIZED,
            JwtStatus::JwtHeaderBadKid,
        ),
        (
            "a.b".to_owned(),
            StatusCode::UNAUTHORIZED,
            JwtStatus::JwtBadFormat,
        ),
        (
            "a$.b.c".to_owned(),
            StatusCode::UNAUTHORIZED,
            JwtStatus::JwtHeaderParseErrorBadBase64,
        ),
        (
            format!("{}.b.c", B64.encode("[1]")),
            StatusCode::UNAUTHORIZED,
            JwtStatus::JwtHeaderParseErrorBadJson,
        ),
        (
            format!("{}.b$.c", B64.encode(r#"{"alg":"HS256"}"#)),
            StatusCode::UNAUTHORIZED,
            JwtStatus::JwtPayloadParseErrorBadBase64,
        ),
        (
            format!(
                "{}.{}.c",
                B64.encode(r#"{"alg":"HS256"}"#),
                B64.encode("nope")
            ),
            StatusCode::UNAUTHORIZED,
            JwtStatus::JwtPayloadParseErrorBadJson,
        ),
        (
            token(with(json!({"iss": 1}))),
            StatusCode::UNAUTHORIZED,
            JwtStatus::JwtPayloadParseErrorIssNotString,
        ),
        (
            token(with(json!({"sub": true}))),
            StatusCode::UNAUTHORIZED,
            JwtStatus::JwtPayloadParseErrorSubNotString,
        ),
        (
            token(with(json!({"iat": "x"}))),
            StatusCode::UNAUTHORIZED,
            JwtStatus::JwtPayloadParseErrorIatNotInteger,
        ),
        (
            token(with(json!({"nbf": -1}))),
            StatusCode::UNAUTHORIZED,
            JwtStatus::JwtPayloadParseErrorNbfOutOfRange,
        ),
        (
            token(with(json!({"exp": null}))),
            StatusCode::UNAUTHORIZED,
            JwtStatus::JwtPayloadParseErrorExpNotInteger,
        ),
        (
            token(with(json!({"jti": 5}))),
            StatusCode::UNAUTHORIZED,
            JwtStatus::JwtPayloadParseErrorJtiNotString,
        ),
        (
            token(with(json!({"aud": {"a": 1}}))),
            StatusCode::UNAUTHORIZED,
            JwtStatus::JwtPayloadParseErrorAudNotString,
        ),
        (
            format!(
                "{}.{}.c$",
                B64.encode(r#"{"alg":"HS256"}"#),
                B64.encode(good_claims().to_string())
            ),
            StatusCode::UNAUTHORIZED,
            JwtStatus::JwtSignatureParseErrorBadBase64,
        ),
    ];
    for (token, http_status, status) in cases {
        let seen = send(&layer, get("/r?q=1", &[("authorization", &bearer(&token))])).await;
        assert_eq!(seen.status, http_status, "{status:?}");
        assert_eq!(seen.body, status.as_str(), "{status:?}");
        assert_eq!(seen.rejected.map(|r| r.status()), Some(status));
        assert_eq!(
            seen.headers["www-authenticate"],
            r#"Bearer realm="http://svc.test/r?q=1", error="invalid_token""#
        );
        assert_eq!(seen.headers["content-type"], "text/plain");
    }
}

#[tokio::test]
async fn a_missing_token_is_a_plain_bearer_challenge() {
    let layer = authn(provider())
        .layer(JwtRequirement::provider_name("p"))
        .unwrap();
    let seen = send(&layer, get("/a", &[("x-forwarded-proto", "https")])).await;
    assert_eq!(seen.status, StatusCode::UNAUTHORIZED);
    assert_eq!(seen.body, "Jwt is missing");
    assert_eq!(
        seen.headers["www-authenticate"],
        r#"Bearer realm="https://svc.test/a""#
    );
    // The realm's path is cut at 256 bytes.
    let long = format!("/{}", "x".repeat(400));
    let seen = send(&layer, get(&long, &[])).await;
    let challenge = seen.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        challenge,
        format!(r#"Bearer realm="http://svc.test{}""#, &long[..256])
    );
}

#[tokio::test]
async fn clock_skew_tolerates_recent_expiry_and_is_configurable() {
    let expired_30s = token(json!({"iss": ISS, "aud": "api", "exp": now() - 30}));
    let default = authn(provider())
        .layer(JwtRequirement::provider_name("p"))
        .unwrap();
    assert_eq!(status_of(&default, &expired_30s).await.0, StatusCode::OK);
    let strict = authn(provider().clock_skew_seconds(5))
        .layer(JwtRequirement::provider_name("p"))
        .unwrap();
    assert_eq!(
        status_of(&strict, &expired_30s).await,
        (StatusCode::UNAUTHORIZED, "Jwt is expired".to_owned())
    );
}

#[tokio::test]
async fn oversize_tokens_are_refused_before_decoding() {
    let layer = JwtAuthentication::builder()
        .provider("p", provider())
        .max_token_size(64)
        .build()
        .unwrap()
        .layer(JwtRequirement::provider_name("p"))
        .unwrap();
    assert_eq!(
        status_of(&layer, &token(good_claims())).await,
        (
            StatusCode::UNAUTHORIZED,
            "Jwt verification fails".to_owned()
        )
    );
}

// ---------------------------------------------------------------------------------------------
// Algorithms and keys

fn rsa1() -> rs::RsaKeyPair {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/jwt/rsa1.pk8.pem");
    let text = std::fs::read_to_string(path).expect("test key");
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("PEM");
    rs::RsaKeyPair::from_pkcs8(&der).expect("RSA key")
}

fn sign_with(signed: &str, how: &dyn Fn(&[u8]) -> Vec<u8>) -> String {
    format!("{signed}.{}", B64.encode(how(signed.as_bytes())))
}

fn signed_part(alg: &str, kid: &str) -> String {
    format!(
        "{}.{}",
        B64.encode(json!({"alg": alg, "kid": kid}).to_string()),
        B64.encode(good_claims().to_string())
    )
}

#[tokio::test]
async fn every_algorithm_verifies_with_its_own_key_type_only() {
    let rng = SystemRandom::new();
    let rsa = rsa1();
    let rsa_pub = rs::RsaPublicKeyComponents::<Vec<u8>>::from(rsa.public());
    let p256 =
        rs::EcdsaKeyPair::generate_pkcs8(&rs::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let p256 =
        rs::EcdsaKeyPair::from_pkcs8(&rs::ECDSA_P256_SHA256_FIXED_SIGNING, p256.as_ref(), &rng)
            .unwrap();
    let p384 =
        rs::EcdsaKeyPair::generate_pkcs8(&rs::ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
    let p384 =
        rs::EcdsaKeyPair::from_pkcs8(&rs::ECDSA_P384_SHA384_FIXED_SIGNING, p384.as_ref(), &rng)
            .unwrap();
    let ed = rs::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let ed = rs::Ed25519KeyPair::from_pkcs8(ed.as_ref()).unwrap();
    let point = |k: &rs::EcdsaKeyPair, len: usize| {
        let p = k.public_key().as_ref().to_vec();
        (B64.encode(&p[1..1 + len]), B64.encode(&p[1 + len..]))
    };
    let (x256, y256) = point(&p256, 32);
    let (x384, y384) = point(&p384, 48);
    let jwks = json!({"keys": [
        {"kty": "RSA", "kid": "rsa", "n": B64.encode(&rsa_pub.n), "e": B64.encode(&rsa_pub.e)},
        {"kty": "EC", "kid": "p256", "crv": "P-256", "x": x256, "y": y256},
        {"kty": "EC", "kid": "p384", "crv": "P-384", "x": x384, "y": y384},
        {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": B64.encode(ed.public_key().as_ref())},
        {"kty": "oct", "kid": "hs", "k": B64.encode(SECRET)},
    ]})
    .to_string();
    let layer = authn(JwtProvider::local_jwks(jwks).issuer(ISS))
        .layer(JwtRequirement::provider_name("p"))
        .unwrap();

    let rsa_sign = |enc: &'static dyn rs::RsaEncoding| {
        let rsa = &rsa;
        let rng = &rng;
        move |m: &[u8]| {
            let mut sig = vec![0; rsa.public().modulus_len()];
            rsa.sign(enc, rng, m, &mut sig).unwrap();
            sig
        }
    };
    let hmac = |alg: ring::hmac::Algorithm| {
        move |m: &[u8]| {
            ring::hmac::sign(&ring::hmac::Key::new(alg, SECRET), m)
                .as_ref()
                .to_vec()
        }
    };
    type Signer<'a> = Box<dyn Fn(&[u8]) -> Vec<u8> + 'a>;
    let good: Vec<(&str, &str, Signer<'_>)> = vec![
        ("RS256", "rsa", Box::new(rsa_sign(&rs::RSA_PKCS1_SHA256))),
        ("RS384", "rsa", Box::new(rsa_sign(&rs::RSA_PKCS1_SHA384))),
        ("RS512", "rsa", Box::new(rsa_sign(&rs::RSA_PKCS1_SHA512))),
        ("PS256", "rsa", Box::new(rsa_sign(&rs::RSA_PSS_SHA256))),
        ("PS384", "rsa", Box::new(rsa_sign(&rs::RSA_PSS_SHA384))),
        ("PS512", "rsa", Box::new(rsa_sign(&rs::RSA_PSS_SHA512))),
        (
            "ES256",
            "p256",
            Box::new(|m: &[u8]| p256.sign(&rng, m).unwrap().as_ref().to_vec()),
        ),
        (
            "ES384",
            "p384",
            Box::new(|m: &[u8]| p384.sign(&rng, m).unwrap().as_ref().to_vec()),
        ),
        (
            "EdDSA",
            "ed",
            Box::new(|m: &[u8]| ed.sign(m).as_ref().to_vec()),
        ),
        ("HS256", "hs", Box::new(hmac(ring::hmac::HMAC_SHA256))),
        ("HS384", "hs", Box::new(hmac(ring::hmac::HMAC_SHA384))),
        ("HS512", "hs", Box::new(hmac(ring::hmac::HMAC_SHA512))),
    ];
    for (alg, kid, how) in &good {
        let token = sign_with(&signed_part(alg, kid), how.as_ref());
        assert_eq!(status_of(&layer, &token).await.0, StatusCode::OK, "{alg}");
    }

    // Algorithm confusion: the RSA public modulus used as an HMAC secret, an RS256 signature
    // labelled PS256, an ES256 signature against the P-384 key, an HS token against the RSA key.
    let modulus_hmac = |m: &[u8]| {
        ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &rsa_pub.n),
            m,
        )
        .as_ref()
        .to_vec()
    };
    let confused = [
        sign_with(&signed_part("HS256", "rsa"), &modulus_hmac),
        sign_with(
            &signed_part("PS256", "rsa"),
            &rsa_sign(&rs::RSA_PKCS1_SHA256),
        ),
        sign_with(&signed_part("ES256", "p384"), &|m: &[u8]| {
            p256.sign(&rng, m).unwrap().as_ref().to_vec()
        }),
        sign_with(&signed_part("HS256", "ed"), &hmac(ring::hmac::HMAC_SHA256)),
    ];
    for token in confused {
        assert_eq!(
            status_of(&layer, &token).await,
            (
                StatusCode::UNAUTHORIZED,
                "Jwt verification fails".to_owned()
            )
        );
    }
    // Envoy's special case: a short Ed25519 signature.
    let short = format!("{}.{}", signed_part("EdDSA", "ed"), B64.encode([0u8; 10]));
    assert_eq!(
        status_of(&layer, &short).await.1,
        "Jwt ED25519 signature is wrong length"
    );
}

#[tokio::test]
async fn a_jwks_without_usable_keys_fails_every_token_and_validate_jwks_says_so() {
    let bad = r#"{"keys":[{"kty":"RSA","n":1},{"kty":"oct"}]}"#;
    assert!(validate_jwks(bad).is_err());
    assert!(validate_jwks("not json").is_err());
    assert!(validate_jwks(r#"{"nokeys":[]}"#).is_err());
    assert!(validate_jwks(&hs_jwks("k1", SECRET)).is_ok());
    let layer = authn(JwtProvider::local_jwks(bad).issuer(ISS))
        .layer(JwtRequirement::provider_name("p"))
        .unwrap();
    assert_eq!(
        status_of(&layer, &token(good_claims())).await,
        (
            StatusCode::UNAUTHORIZED,
            "Jwks doesn't have any valid public key".to_owned()
        )
    );
}

// ---------------------------------------------------------------------------------------------
// Token sources, forwarding, claims

#[tokio::test]
async fn tokens_come_from_the_configured_headers_and_params_only() {
    let custom = authn(
        provider()
            .from_header("x-token", "Token ")
            .from_param("jwt"),
    )
    .layer(JwtRequirement::provider_name("p"))
    .unwrap();
    let t = token(good_claims());
    let seen = send(&custom, get("/", &[("x-token", &format!("Token {t}"))])).await;
    assert_eq!(seen.status, StatusCode::OK);
    assert!(seen.headers.get("x-token").is_none(), "not forwarded");
    let seen = send(&custom, get(&format!("/p?a=1&jwt={t}"), &[])).await;
    assert_eq!(seen.status, StatusCode::OK);
    assert_eq!(seen.uri, "/p?a=1", "the token parameter is removed");
    // The defaults no longer apply.
    let seen = send(&custom, get("/", &[("authorization", &bearer(&t))])).await;
    assert_eq!(seen.body, "Jwt is missing");
    let seen = send(&custom, get(&format!("/?access_token={t}"), &[])).await;
    assert_eq!(seen.body, "Jwt is missing");

    // Envoy 1.40's header rules: blanks around values and after the prefix are skipped, the
    // prefix may appear anywhere, repeated headers are joined with ','.
    let default = authn(provider())
        .layer(JwtRequirement::provider_name("p"))
        .unwrap();
    let spaced = format!("Bearer   {t}  ");
    assert_eq!(
        send(&default, get("/", &[("authorization", &spaced)]))
            .await
            .status,
        200
    );
    let elsewhere = format!("Basic x, Bearer {t}");
    assert_eq!(
        send(&default, get("/", &[("authorization", &elsewhere)]))
            .await
            .status,
        200
    );
    let seen = send(&default, get("/", &[("authorization", "Bearer   ")])).await;
    assert_eq!(seen.body, "Jwt is missing");
    let mut two = get("/", &[("authorization", &bearer(&t))]);
    two.headers_mut()
        .append("authorization", http::HeaderValue::from_static("Bearer x"));
    assert_eq!(
        send(&default, two).await.body,
        "Jwt signature is an invalid Base64url encoded"
    );

    // Defaults: Authorization Bearer and access_token.
    let default = authn(provider().forward(true))
        .layer(JwtRequirement::provider_name("p"))
        .unwrap();
    let seen = send(&default, get(&format!("/?access_token={t}"), &[])).await;
    assert_eq!(seen.status, StatusCode::OK);
    assert_eq!(seen.uri, format!("/?access_token={t}"), "forwarded");
    let seen = send(&default, get("/", &[("authorization", &bearer(&t))])).await;
    assert_eq!(
        seen.headers["authorization"],
        bearer(&t).as_str(),
        "forwarded"
    );
}

#[tokio::test]
async fn claims_and_payload_are_copied_into_headers_and_forged_ones_removed() {
    let layer = authn(
        provider()
            .forward_payload_header("x-payload")
            .pad_forward_payload_header(true)
            .claim_to_header("sub", "x-sub")
            .claim_to_header("org.team", "x-team")
            .claim_to_header("n", "x-n")
            .claim_to_header("f", "x-f")
            .claim_to_header("b", "x-b")
            .claim_to_header("l", "x-l")
            .claim_to_header("missing", "x-missing"),
    )
    .layer(JwtRequirement::provider_name("p"))
    .unwrap();
    let mut claims = good_claims();
    claims["org"] = json!({"team": "blue"});
    claims["n"] = json!(7);
    claims["f"] = json!(-0.25);
    claims["b"] = json!(false);
    claims["l"] = json!(["x"]);
    let t = token(claims.clone());
    let seen = send(
        &layer,
        get(
            "/",
            &[
                ("authorization", &bearer(&t)),
                ("x-sub", "forged"),
                ("x-missing", "forged"),
            ],
        ),
    )
    .await;
    assert_eq!(seen.status, StatusCode::OK);
    let h = |name: &str| {
        seen.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(h("x-sub").as_deref(), Some("alice"));
    assert_eq!(h("x-team").as_deref(), Some("blue"));
    assert_eq!(h("x-n").as_deref(), Some("7"));
    assert_eq!(h("x-f").as_deref(), Some("-0.250000"));
    assert_eq!(h("x-b").as_deref(), Some("false"));
    assert_eq!(h("x-l").as_deref(), Some(B64.encode(r#"["x"]"#).as_str()));
    assert_eq!(
        h("x-missing"),
        None,
        "a forged header is removed even without the claim"
    );
    let payload = t.split('.').nth(1).unwrap();
    let padded = format!("{payload}{}", "=".repeat((4 - payload.len() % 4) % 4));
    assert_eq!(h("x-payload"), Some(padded));

    // Without a token the forged headers are removed too (allow_missing passes the request).
    let optional = authn(provider().claim_to_header("sub", "x-sub"))
        .layer(JwtRequirement::allow_missing())
        .unwrap();
    let seen = send(&optional, get("/", &[("x-sub", "forged")])).await;
    assert_eq!(seen.status, StatusCode::OK);
    assert!(seen.headers.get("x-sub").is_none());
}

// ---------------------------------------------------------------------------------------------
// Requirements

fn two_providers() -> JwtAuthentication {
    JwtAuthentication::builder()
        .provider("a", provider())
        .provider(
            "b",
            JwtProvider::local_jwks(hs_jwks("kb", b"secret of b, long enough"))
                .issuer("https://b.example")
                .from_header("x-b", ""),
        )
        .build()
        .unwrap()
}

fn b_token() -> String {
    hs_token(
        json!({"alg": "HS256", "kid": "kb"}),
        json!({"iss": "https://b.example", "exp": now() + 60}),
        b"secret of b, long enough",
    )
}

#[tokio::test]
async fn requires_any_all_and_allow_missing_behave_like_envoy() {
    let authn = two_providers();
    let any = authn
        .layer(JwtRequirement::requires_any([
            JwtRequirement::provider_name("a"),
            JwtRequirement::provider_name("b"),
        ]))
        .unwrap();
    let all = authn
        .layer(JwtRequirement::requires_all([
            JwtRequirement::provider_name("a"),
            JwtRequirement::provider_name("b"),
        ]))
        .unwrap();
    let a = bearer(&token(good_claims()));
    let b = b_token();
    let expired = bearer(&token(json!({"iss": ISS, "aud": "api", "exp": 1})));
    let code = |seen: Seen| (seen.status.as_u16(), seen.body);

    assert_eq!(
        send(&any, get("/", &[("authorization", &a)])).await.status,
        200
    );
    assert_eq!(send(&any, get("/", &[("x-b", &b)])).await.status, 200);
    assert_eq!(
        code(send(&any, get("/", &[])).await),
        (401, "Jwt is missing".into())
    );
    // The aggregate prefers a real failure over "missing".
    assert_eq!(
        code(send(&any, get("/", &[("authorization", &expired)])).await),
        (401, "Jwt is expired".into())
    );
    assert_eq!(
        send(&all, get("/", &[("authorization", &a), ("x-b", &b)]))
            .await
            .status,
        200
    );
    assert_eq!(
        code(send(&all, get("/", &[("authorization", &a)])).await),
        (401, "Jwt is missing".into())
    );

    let optional = authn.layer(JwtRequirement::allow_missing()).unwrap();
    assert_eq!(send(&optional, get("/", &[])).await.status, 200);
    assert_eq!(send(&optional, get("/", &[("x-b", &b)])).await.status, 200);
    assert_eq!(
        code(send(&optional, get("/", &[("authorization", &expired)])).await),
        (401, "Jwt is expired".into())
    );
    let lenient = authn
        .layer(JwtRequirement::allow_missing_or_failed())
        .unwrap();
    let seen = send(&lenient, get("/", &[("authorization", &expired)])).await;
    assert_eq!(seen.status, 200);
    assert!(seen.verified.is_none());
    let seen = send(&lenient, get("/", &[("authorization", &a)])).await;
    assert!(seen.verified.is_some(), "verified claims still forwarded");

    let any_or_none = authn
        .layer(JwtRequirement::requires_any([
            JwtRequirement::provider_name("a"),
            JwtRequirement::allow_missing(),
        ]))
        .unwrap();
    assert_eq!(send(&any_or_none, get("/", &[])).await.status, 200);
    assert_eq!(
        send(&any_or_none, get("/", &[("authorization", &expired)]))
            .await
            .status,
        401
    );

    let audiences = authn
        .layer(JwtRequirement::provider_and_audiences("a", ["other"]))
        .unwrap();
    assert_eq!(
        code(send(&audiences, get("/", &[("authorization", &a)])).await).0,
        403
    );
    let other_aud = bearer(&token(json!({"iss": ISS, "aud": "https://other/"})));
    assert_eq!(
        send(&audiences, get("/", &[("authorization", &other_aud)]))
            .await
            .status,
        200
    );
}

#[test]
fn bad_requirements_and_providers_are_config_errors() {
    let authn = two_providers();
    assert_eq!(
        authn
            .layer(JwtRequirement::provider_name("nope"))
            .unwrap_err(),
        JwtConfigError::UnknownProvider {
            name: "nope".into()
        }
    );
    assert!(matches!(
        authn.layer(JwtRequirement::requires_any([
            JwtRequirement::provider_name("a")
        ])),
        Err(JwtConfigError::TooFewRequirements {
            list: "requires_any",
            count: 1
        })
    ));
    let build = |p: JwtProvider| JwtAuthentication::builder().provider("p", p).build();
    assert!(matches!(
        build(provider().claim_to_header("sub", "bad header")),
        Err(JwtConfigError::InvalidHeaderName {
            field: "claim_to_headers",
            ..
        })
    ));
    assert!(matches!(
        build(provider().from_header("", "Bearer ")),
        Err(JwtConfigError::InvalidHeaderName {
            field: "from_headers",
            ..
        })
    ));
    assert!(matches!(
        build(JwtProvider::remote_jwks("not a uri")),
        Err(JwtConfigError::InvalidJwksUri { .. })
    ));
    assert!(matches!(
        build(JwtProvider::remote_jwks(
            RemoteJwks::new("http://k/").cache_duration(Duration::ZERO)
        )),
        Err(JwtConfigError::InvalidDuration {
            field: "cache_duration",
            ..
        })
    ));
    assert_eq!(
        JwtAuthentication::builder()
            .provider("p", provider())
            .provider("p", provider())
            .build()
            .unwrap_err(),
        JwtConfigError::DuplicateProvider { name: "p".into() }
    );
}

#[tokio::test]
async fn strip_failure_response_and_cors_preflight_bypass() {
    let layer = JwtAuthentication::builder()
        .provider("p", provider())
        .strip_failure_response(true)
        .bypass_cors_preflight(true)
        .build()
        .unwrap()
        .layer(JwtRequirement::provider_name("p"))
        .unwrap();
    let seen = send(&layer, get("/", &[])).await;
    assert_eq!(seen.status, StatusCode::UNAUTHORIZED);
    assert_eq!(seen.body, "");
    assert!(seen.headers.get("www-authenticate").is_none());
    assert_eq!(
        seen.rejected.map(|r| r.status()),
        Some(JwtStatus::JwtMissed)
    );

    let preflight = Request::builder()
        .method("OPTIONS")
        .uri("/")
        .header("origin", "https://app")
        .header("access-control-request-method", "GET")
        .body(Full::default())
        .unwrap();
    assert_eq!(send(&layer, preflight).await.status, StatusCode::OK);
}

// ---------------------------------------------------------------------------------------------
// Remote JWKS

/// A scripted fetcher: answers from a queue (the last answer repeats) and counts calls.
#[derive(Clone, Default)]
struct Script {
    answers: Arc<Mutex<VecDeque<Result<String, String>>>>,
    calls: Arc<AtomicUsize>,
}

impl Script {
    fn push(&self, answer: Result<String, &str>) {
        self.answers
            .lock()
            .unwrap()
            .push_back(answer.map_err(str::to_owned));
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl JwksFetcher for Script {
    fn fetch(&self, request: &JwksRequest) -> JwksFuture {
        assert_eq!(request.provider(), "p");
        assert_eq!(request.cluster(), Some("idp"));
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut answers = self.answers.lock().unwrap();
        let answer = if answers.len() > 1 {
            answers.pop_front()
        } else {
            answers.front().cloned()
        }
        .unwrap_or(Err("nothing scripted".into()));
        Box::pin(async move {
            // A fetch takes a while, so concurrent requests overlap it.
            tokio::time::sleep(Duration::from_millis(50)).await;
            answer.map(Bytes::from).map_err(JwksFetchError::new)
        })
    }
}

fn remote_layer(script: &Script) -> JwtAuthnLayer {
    JwtAuthentication::builder()
        .provider(
            "p",
            JwtProvider::remote_jwks(
                RemoteJwks::new("http://idp.test/jwks")
                    .cluster("idp")
                    .cache_duration(Duration::from_secs(300))
                    .failed_refetch_duration(Duration::from_secs(2))
                    .rotation_refetch_interval(Some(Duration::from_secs(30))),
            )
            .issuer(ISS),
        )
        .fetcher(script.clone())
        .build()
        .unwrap()
        .layer(JwtRequirement::provider_name("p"))
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn remote_keys_are_fetched_once_then_cached_until_they_expire() {
    let script = Script::default();
    script.push(Ok(hs_jwks("k1", SECRET)));
    let layer = remote_layer(&script);
    let t = token(good_claims());

    // Concurrent first requests share one fetch.
    let (a, b) = tokio::join!(status_of(&layer, &t), status_of(&layer, &t));
    assert_eq!((a.0, b.0), (StatusCode::OK, StatusCode::OK));
    assert_eq!(script.calls(), 1);
    // No token, no fetch needed; cached keys serve later tokens.
    assert_eq!(status_of(&layer, &t).await.0, StatusCode::OK);
    assert_eq!(script.calls(), 1);

    tokio::time::advance(Duration::from_secs(301)).await;
    assert_eq!(status_of(&layer, &t).await.0, StatusCode::OK);
    assert_eq!(script.calls(), 2, "refetched after cache_duration");
}

#[tokio::test(start_paused = true)]
async fn a_failed_fetch_fails_tokens_then_recovers_after_the_back_off() {
    let script = Script::default();
    script.push(Err("connection refused"));
    script.push(Ok("{not json".to_owned()));
    script.push(Ok(hs_jwks("k1", SECRET)));
    let layer = remote_layer(&script);
    let t = token(good_claims());
    let fail = (
        StatusCode::UNAUTHORIZED,
        "Jwks remote fetch is failed".to_owned(),
    );

    assert_eq!(status_of(&layer, &t).await, fail);
    assert_eq!(script.calls(), 1);
    // Within failed_refetch_duration: refused at once, no new fetch.
    assert_eq!(status_of(&layer, &t).await, fail);
    assert_eq!(script.calls(), 1);
    // After it: fetched again; an invalid document is a failure too.
    tokio::time::advance(Duration::from_secs(3)).await;
    assert_eq!(status_of(&layer, &t).await, fail);
    assert_eq!(script.calls(), 2);
    tokio::time::advance(Duration::from_secs(3)).await;
    assert_eq!(status_of(&layer, &t).await.0, StatusCode::OK);
    assert_eq!(script.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn an_unknown_kid_refetches_at_most_once_per_interval() {
    let script = Script::default();
    script.push(Ok(hs_jwks("k1", SECRET)));
    script.push(Ok(hs_jwks("k2", b"the rotated secret, long enough")));
    let layer = remote_layer(&script);
    assert_eq!(
        status_of(&layer, &token(good_claims())).await.0,
        StatusCode::OK
    );
    assert_eq!(script.calls(), 1);

    // Forged kids right after a fetch: refused without a fetch storm.
    tokio::time::advance(Duration::from_secs(1)).await;
    let forged = hs_token(
        json!({"alg": "HS256", "kid": "forged"}),
        good_claims(),
        SECRET,
    );
    for _ in 0..5 {
        assert_eq!(
            status_of(&layer, &forged).await.1,
            "Jwks doesn't have key to match kid or alg from Jwt"
        );
    }
    assert_eq!(script.calls(), 1);

    // The issuer rotates to k2: after the interval one refetch picks it up.
    tokio::time::advance(Duration::from_secs(30)).await;
    let rotated = hs_token(
        json!({"alg": "HS256", "kid": "k2"}),
        good_claims(),
        b"the rotated secret, long enough",
    );
    assert_eq!(status_of(&layer, &rotated).await.0, StatusCode::OK);
    assert_eq!(script.calls(), 2);
    // The old key is gone with the rotation.
    assert_eq!(
        status_of(&layer, &token(good_claims())).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(start_paused = true)]
async fn a_request_that_waits_for_keys_is_verified_from_its_original_headers() {
    // `a` (inline keys) strips its token on success; `r` needs a fetch. The first pass edits
    // the headers before it finds out it must wait, so the second pass must start afresh.
    let script = Script::default();
    script.push(Ok(hs_jwks("kr", b"secret of r, long enough")));
    let authn = JwtAuthentication::builder()
        .provider("a", provider().claim_to_header("sub", "x-a-sub"))
        .provider(
            "p",
            JwtProvider::remote_jwks(RemoteJwks::new("http://idp.test/jwks").cluster("idp"))
                .issuer("https://r.example")
                .from_header("x-r", ""),
        )
        .fetcher(script.clone())
        .build()
        .unwrap();
    let layer = authn
        .layer(JwtRequirement::requires_all([
            JwtRequirement::provider_name("a"),
            JwtRequirement::provider_name("p"),
        ]))
        .unwrap();
    let r_token = hs_token(
        json!({"alg": "HS256", "kid": "kr"}),
        json!({"iss": "https://r.example", "sub": "robot"}),
        b"secret of r, long enough",
    );
    let request = || {
        get(
            "/",
            &[
                ("authorization", &bearer(&token(good_claims()))),
                ("x-r", &r_token),
                ("x-a-sub", "forged"),
            ],
        )
    };
    let seen = send(&layer, request()).await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.body);
    assert_eq!(script.calls(), 1);
    assert_eq!(seen.headers["x-a-sub"], "alice", "edited once, not twice");
    assert_eq!(seen.headers.get_all("x-a-sub").iter().count(), 1);
    assert!(seen.headers.get("authorization").is_none());
    let verified = seen.verified.expect("claims of both tokens");
    assert_eq!(verified.iter().count(), 2);
    assert_eq!(verified.by_provider("p").unwrap().claims()["sub"], "robot");
    // Cached now: the same request is verified without waiting.
    assert_eq!(send(&layer, request()).await.status, StatusCode::OK);
    assert_eq!(script.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn async_fetch_keeps_keys_fresh_in_the_background() {
    let script = Script::default();
    script.push(Ok(hs_jwks("k1", SECRET)));
    script.push(Err("idp down"));
    script.push(Ok(hs_jwks("k2", b"the rotated secret, long enough")));
    let authn = JwtAuthentication::builder()
        .provider(
            "p",
            JwtProvider::remote_jwks(
                RemoteJwks::new("http://idp.test/jwks")
                    .cluster("idp")
                    .cache_duration(Duration::from_secs(300))
                    .failed_refetch_duration(Duration::from_secs(2))
                    .rotation_refetch_interval(None)
                    .async_fetch(true),
            )
            .issuer(ISS),
        )
        .fetcher(script.clone())
        .build()
        .unwrap();
    // Fetched at build time, before any request.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(script.calls(), 1);
    let layer = authn.layer(JwtRequirement::provider_name("p")).unwrap();
    assert_eq!(
        status_of(&layer, &token(good_claims())).await.0,
        StatusCode::OK
    );
    assert_eq!(script.calls(), 1);

    // The refresh after cache_duration fails: the old keys stay in use (Envoy's behaviour).
    tokio::time::sleep(Duration::from_secs(301)).await;
    assert_eq!(script.calls(), 2);
    assert_eq!(
        status_of(&layer, &token(good_claims())).await.0,
        StatusCode::OK
    );
    // The retry after failed_refetch_duration succeeds and replaces them.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(script.calls(), 3);
    let rotated = hs_token(
        json!({"alg": "HS256", "kid": "k2"}),
        good_claims(),
        b"the rotated secret, long enough",
    );
    assert_eq!(status_of(&layer, &rotated).await.0, StatusCode::OK);
    assert_eq!(
        status_of(&layer, &token(good_claims())).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Dropping the config and its layers ends the task: no more fetches.
    drop((authn, layer));
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(script.calls(), 3);
}

#[tokio::test]
async fn the_default_fetcher_gets_keys_over_http() {
    use hyper_util::rt::TokioIo;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&served);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let ok = req.uri().path() == "/jwks";
                    async move {
                        let mut response = Response::new(Full::new(Bytes::from(if ok {
                            hs_jwks("k1", SECRET)
                        } else {
                            String::new()
                        })));
                        if !ok {
                            *response.status_mut() = StatusCode::NOT_FOUND;
                        }
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    let layer_for = |path: &str| {
        JwtAuthentication::builder()
            .provider(
                "p",
                JwtProvider::remote_jwks(format!("http://{addr}{path}")).issuer(ISS),
            )
            .build()
            .unwrap()
            .layer(JwtRequirement::provider_name("p"))
            .unwrap()
    };
    let t = token(good_claims());
    assert_eq!(status_of(&layer_for("/jwks"), &t).await.0, StatusCode::OK);
    assert_eq!(
        status_of(&layer_for("/missing"), &t).await.1,
        "Jwks remote fetch is failed",
        "a 404 is a failed fetch"
    );
    assert_eq!(served.load(Ordering::SeqCst), 2);
}
