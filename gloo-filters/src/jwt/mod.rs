//! JWT authentication with Envoy's `envoy.filters.http.jwt_authn` semantics, as a tower
//! middleware. Enabled by the `jwt` cargo feature.
//!
//! gloo-proxy builds these layers from Envoy's `JwtAuthentication` config (which gloo-core
//! translates Gloo's `jwt` / `jwtStaged` options into); a differential test
//! (`tests/jwt_envoy.rs`) sends the same requests through Envoy 1.40 and through this layer and
//! compares the answers, so the behaviour below follows Envoy, not taste.
//!
//! # Config
//!
//! A [`JwtAuthentication`] holds named [`JwtProvider`]s (issuer, audiences, keys from an inline
//! JWKS or a [`RemoteJwks`], token locations, forwarding). Each route's [`JwtRequirement`]
//! becomes one [`JwtAuthnLayer`] ([`JwtAuthentication::layer`]); a route without a requirement
//! simply gets no layer. All layers of one `JwtAuthentication` share its key caches.
//!
//! # What a request goes through (Envoy's order)
//!
//! For each provider a requirement involves: the headers that provider writes
//! (`forward_payload_header`, `claim_to_headers`) are removed from the request, then tokens are
//! taken from its locations (by default `Authorization: Bearer <token>` and
//! `?access_token=<token>`). Each token is parsed (exactly three base64url sections, JSON
//! header with a supported `alg`, typed registered claims), its `iss` checked against the
//! location's providers, then `nbf`/`exp` against the clock with the provider's skew (60 s by
//! default), then `aud`, then the signature with the keys whose `kid` and `alg` match. A
//! verified token adds its payload header and claim headers, is removed from its header unless
//! `forward` is set, and is handed to the inner service in [`VerifiedJwts`].
//!
//! Algorithms: RS256/384/512, PS256/384/512, ES256/384, EdDSA (Ed25519) and HS256/384/512
//! (`oct` keys); signatures are checked by `ring` through jsonwebtoken's crypto-provider
//! interface. `alg: none` (like any unknown `alg`) is refused, and a key is only ever used
//! with algorithms of its own type, so an RSA public key can never act as an HMAC secret.
//!
//! # Answers
//!
//! A refused request never reaches the inner service. Its answer has Envoy's status and body:
//! `401` with the [`JwtStatus`] message (`Jwt is missing`, `Jwt is expired`, `Jwt verification
//! fails`, `Jwt issuer is not configured`, ...), except `403` for `Audiences in Jwt are not
//! allowed`; `content-type: text/plain`; `www-authenticate: Bearer
//! realm="<proto>://<host><path>"`, plus `, error="invalid_token"` unless the token was
//! missing. The [`JwtRejected`] marker in its extensions carries the status.
//!
//! # Differences from Envoy 1.40
//!
//! * Envoy checks an `oct` key against any `alg` as HMAC-SHA256 and an `OKP` key against any
//!   `alg` as Ed25519; here keys only verify their own family's algorithms.
//! * Removing a query-parameter token keeps the other parameters byte for byte; Envoy
//!   re-encodes them (and sends an invalid request line upstream when one held `%20`).
//! * A list or object claim in `claim_to_headers` is serialized by serde_json (keys sorted),
//!   Envoy by protobuf's JSON printer; they differ only for numbers written like `1.0`.
//! * ES512 tokens and P-521 keys are accepted as Envoy accepts them, but never verify (ring
//!   has no P-521). RSA keys shorter than 2048 bits never verify (ring's floor).
//! * Remote JWKS: one fetch at a time per provider (Envoy fetches once per waiting request),
//!   failures back off for `failed_refetch_duration` (Envoy retries on every request), and an
//!   unknown `kid` triggers a rate-limited early refetch (Envoy waits for the cache to expire).
//!   `async_fetch` never delays startup (Envoy's `fast_listener: true`).
//! * Not implemented: `from_cookies`, `subjects`, `require_expiration`, `max_lifetime`,
//!   `claim_path`, `normalize_payload_in_metadata`, `failed_status_in_metadata`,
//!   `clear_route_cache`, `extract_only_without_validation`, the JWT cache (it changes no
//!   answer), the X.509 form of a JWKS and PEM keys.
//!
//! # Example
//!
//! ```
//! use std::convert::Infallible;
//!
//! use base64::Engine;
//! use bytes::Bytes;
//! use gloo_filters::jwt::{JwtAuthentication, JwtProvider, JwtRequirement, VerifiedJwts};
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use ring::hmac;
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
//! let secret = b"a shared secret of enough length";
//! let jwks = format!(r#"{{"keys":[{{"kty":"oct","alg":"HS256","k":"{}"}}]}}"#, b64.encode(secret));
//!
//! let authn = JwtAuthentication::builder()
//!     .provider(
//!         "example",
//!         JwtProvider::local_jwks(jwks)
//!             .issuer("https://issuer.example")
//!             .claim_to_header("sub", "x-user"),
//!     )
//!     .build()?;
//! let layer = authn.layer(JwtRequirement::provider_name("example"))?;
//!
//! let svc = layer.layer(service_fn(|req: Request<Full<Bytes>>| async move {
//!     let user = req.headers()["x-user"].to_str().unwrap_or_default().to_owned();
//!     let claims = req.extensions().get::<VerifiedJwts>().cloned().unwrap_or_default();
//!     assert_eq!(claims.by_provider("example").map(|j| j.claims()["sub"].clone()), Some("alice".into()));
//!     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(user))))
//! }));
//!
//! // A token signed with the secret.
//! let signed = format!(
//!     "{}.{}",
//!     b64.encode(r#"{"alg":"HS256"}"#),
//!     b64.encode(r#"{"iss":"https://issuer.example","sub":"alice"}"#),
//! );
//! let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), signed.as_bytes());
//! let token = format!("{signed}.{}", b64.encode(tag.as_ref()));
//!
//! let ok = svc
//!     .clone()
//!     .oneshot(Request::builder().header("authorization", format!("Bearer {token}")).body(Full::default())?)
//!     .await?;
//! assert_eq!(ok.status(), StatusCode::OK);
//!
//! let missing = svc
//!     .oneshot(Request::builder().uri("/api").header("host", "example.com").body(Full::default())?)
//!     .await?;
//! assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(missing.headers()["www-authenticate"], r#"Bearer realm="http://example.com/api""#);
//! # Ok(())
//! # }
//! ```

mod config;
mod crypto;
mod error;
mod extract;
mod fetch;
mod future;
// Shared with `extauth` (access tokens) and `extauth::oidc` (ID tokens), which verify with the
// same key reader.
pub(crate) mod jwks;
mod layer;
pub(crate) mod remote;
mod service;
mod status;
pub(crate) mod token;
mod verifier;

pub use self::config::{JwtProvider, JwtRequirement, RemoteJwks};
pub use self::error::{InvalidJwks, JwksFetchError, JwtConfigError};
pub use self::fetch::{jwks_from_response, HyperJwksFetcher, JwksFetcher, JwksFuture, JwksRequest};
pub use self::future::ResponseFuture;
pub use self::layer::{JwtAuthentication, JwtAuthenticationBuilder, JwtAuthnLayer};
pub use self::service::{JwtAuthn, JwtRejected, VerifiedJwt, VerifiedJwts};
pub use self::status::JwtStatus;

/// Checks a JWKS document as Envoy loads one: it must be a JSON object with a `keys` array
/// holding at least one usable key (keys that do not parse are skipped, as in Envoy). Use it
/// to refuse bad inline keys up front; [`JwtProvider::local_jwks`] itself accepts them as
/// Envoy does.
pub fn validate_jwks(jwks_json: &str) -> Result<(), InvalidJwks> {
    jwks::Jwks::parse(jwks_json.as_bytes())
        .map(drop)
        .map_err(|e| InvalidJwks(e.to_string()))
}

#[cfg(test)]
pub(crate) mod tests;
