//! Added cost per request of gloo-filters' JWT layer (Envoy's `jwt_authn`), against the bare
//! service it wraps: a valid token per signature family (inline keys, so no fetch), a token
//! with three claims copied to headers, and a refused request without a token. The baseline
//! of RS256 is the crypto backend alone: ring verifying the same token's signature over its
//! signing input (decoded beforehand), which the layer must stay within 1.2x of (issue 5;
//! `benches/filter_targets.sh` prints the ratio). Times are the process's CPU time per
//! request (`cpu_time.rs`).
//!
//! Each case runs one request through a ready service on the current thread; the same token
//! is sent every time (the layer keeps no per-token cache, so every request is verified).

#[path = "cpu_time.rs"]
mod cpu_time;

use std::convert::Infallible;

use base64::Engine;
use bytes::Bytes;
use cpu_time::CpuTime;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use gloo_filters::jwt::{JwtAuthentication, JwtProvider, JwtRequirement};
use http::{Request, Response};
use http_body_util::Full;
use ring::rand::SystemRandom;
use ring::signature::{self as rs, KeyPair};
use serde_json::json;
use tower::{service_fn, Layer, Service, ServiceExt};

type Body = Full<Bytes>;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
const ISS: &str = "https://issuer.example";
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fn bare() -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone {
    service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
    })
}

fn run<S>(c: &mut Criterion<CpuTime>, name: &str, svc: S, authorization: Option<&str>)
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    c.bench_function(name, |b| {
        b.iter(|| {
            let mut builder = Request::builder().uri("/api").header("host", "bench.test");
            if let Some(value) = authorization {
                builder = builder.header("authorization", value);
            }
            let request = builder.body(Body::default()).expect("a request");
            let response = runtime.block_on(svc.clone().oneshot(request));
            black_box(response.map(|r| r.status()))
        })
    });
}

fn token(alg: &str, kid: &str, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let claims = json!({"iss": ISS, "sub": "alice", "aud": "api", "exp": 4_000_000_000u64,
        "org": {"team": "blue"}, "level": 3});
    let signed = format!(
        "{}.{}",
        B64.encode(json!({"alg": alg, "kid": kid}).to_string()),
        B64.encode(claims.to_string())
    );
    let signature = sign(signed.as_bytes());
    format!("Bearer {signed}.{}", B64.encode(signature))
}

fn jwt(c: &mut Criterion<CpuTime>) {
    let rng = SystemRandom::new();
    let pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../gloo-filters/tests/data/jwt/rsa1.pk8.pem"
    ))
    .expect("the test RSA key");
    let der = base64::engine::general_purpose::STANDARD
        .decode(
            pem.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .expect("PEM");
    let rsa = rs::RsaKeyPair::from_pkcs8(&der).expect("RSA key");
    let rsa_pub = rs::RsaPublicKeyComponents::<Vec<u8>>::from(rsa.public());
    let ec_pk8 = rs::EcdsaKeyPair::generate_pkcs8(&rs::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .expect("P-256");
    let ec =
        rs::EcdsaKeyPair::from_pkcs8(&rs::ECDSA_P256_SHA256_FIXED_SIGNING, ec_pk8.as_ref(), &rng)
            .expect("P-256");
    let ed_pk8 = rs::Ed25519KeyPair::generate_pkcs8(&rng).expect("Ed25519");
    let ed = rs::Ed25519KeyPair::from_pkcs8(ed_pk8.as_ref()).expect("Ed25519");
    let point = ec.public_key().as_ref();
    let jwks = json!({"keys": [
        {"kty": "oct", "kid": "hs", "alg": "HS256", "k": B64.encode(SECRET)},
        {"kty": "RSA", "kid": "rsa", "n": B64.encode(&rsa_pub.n), "e": B64.encode(&rsa_pub.e)},
        {"kty": "EC", "kid": "ec", "crv": "P-256", "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..])},
        {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": B64.encode(ed.public_key().as_ref())},
    ]})
    .to_string();
    let layer = |provider: JwtProvider| {
        JwtAuthentication::builder()
            .provider("p", provider)
            .build()
            .expect("a valid config")
            .layer(JwtRequirement::provider_name("p"))
            .expect("a valid requirement")
    };
    let plain = layer(
        JwtProvider::local_jwks(jwks.clone())
            .issuer(ISS)
            .audience("api"),
    );
    let with_claims = layer(
        JwtProvider::local_jwks(jwks)
            .issuer(ISS)
            .audience("api")
            .claim_to_header("sub", "x-sub")
            .claim_to_header("org.team", "x-team")
            .claim_to_header("level", "x-level"),
    );

    let hs256 = token("HS256", "hs", |m| {
        ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET), m)
            .as_ref()
            .to_vec()
    });
    let rs256 = token("RS256", "rsa", |m| {
        let mut sig = vec![0; rsa.public().modulus_len()];
        rsa.sign(&rs::RSA_PKCS1_SHA256, &rng, m, &mut sig)
            .expect("RSA signature");
        sig
    });
    let es256 = token("ES256", "ec", |m| {
        ec.sign(&rng, m).expect("ECDSA signature").as_ref().to_vec()
    });
    let eddsa = token("EdDSA", "ed", |m| ed.sign(m).as_ref().to_vec());

    run(c, "jwt, bare service", bare(), None);
    let (input, signature) = rs256
        .trim_start_matches("Bearer ")
        .rsplit_once('.')
        .expect("a JWT");
    let signature = B64.decode(signature).expect("base64url");
    c.bench_function("jwt, RS256 raw ring verify (the backend alone)", |b| {
        b.iter(|| {
            let key = rs::RsaPublicKeyComponents {
                n: &rsa_pub.n,
                e: &rsa_pub.e,
            };
            let ok = key.verify(
                &rs::RSA_PKCS1_2048_8192_SHA256,
                black_box(input.as_bytes()),
                black_box(&signature),
            );
            assert!(ok.is_ok(), "the signature verifies");
        })
    });
    run(c, "jwt, HS256", plain.layer(bare()), Some(&hs256));
    run(
        c,
        "jwt, RS256 (2048-bit)",
        plain.layer(bare()),
        Some(&rs256),
    );
    run(c, "jwt, ES256", plain.layer(bare()), Some(&es256));
    run(c, "jwt, EdDSA", plain.layer(bare()), Some(&eddsa));
    run(
        c,
        "jwt, HS256, 3 claims to headers",
        with_claims.layer(bare()),
        Some(&hs256),
    );
    run(c, "jwt, refused: no token", plain.layer(bare()), None);
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(CpuTime);
    targets = jwt
}
criterion_main!(benches);
