//! # gloo-filters
//!
//! Gloo's API-gateway filters as ordinary tower layers, usable in any hyper, axum or tonic
//! service as well as inside gloo-proxy: `waf` (ModSecurity + OWASP CRS), `jwt`, `extauth`
//! (OIDC, API keys, basic auth), `transform` (Inja-compatible templates) and `ratelimit` (local
//! token buckets and Redis-backed global limits), each behind its own cargo feature; plus the
//! gRPC services stock Envoy calls (ext_authz, the rate limit service, ext_proc).
//!
//! # Cargo features
//!
//! Nothing is enabled by default, so `cargo add gloo-filters` stays small.
//!
//! * `ratelimit`: the `ratelimit` module, Envoy's local (in-process) token-bucket rate limit filter
//!   (`envoy.filters.http.local_ratelimit`) as a tower layer, built on `governor`; and
//!   `ratelimit::global`, global limits (Gloo's rate limit server semantics, Envoy's
//!   `envoy.filters.http.ratelimit` as a tower layer) with an in-memory counter store.
//! * `ratelimit-redis`: `ratelimit::redis`, the Redis counter store, so every proxy shard shares
//!   one budget (the `redis` crate, tokio only).
//! * `rls`: the `rls` module, Envoy's rate limit gRPC service
//!   (`envoy.service.ratelimit.v3.RateLimitService`) over the same limiter, and its client, so
//!   the global rate limit layer can ask a remote service (tonic, envoy-types).
//! * `jwt`: the `jwt` module, Envoy's JWT authentication filter (`envoy.filters.http.jwt_authn`)
//!   as a tower layer: local or remote JWKS, provider requirements, claims to headers. Built on
//!   `jsonwebtoken` (no bundled crypto) with `ring` verifying signatures, and hyper-util
//!   fetching remote keys.
//! * `transform`: the `transform` module, Gloo's request/response transformations
//!   (`transformations` / `stagedTransformations`, envoy-gloo's `io.solo.transformation` filter)
//!   as a tower layer: regex extractors and Inja-compatible templates rendered with
//!   `minijinja`, bodies buffered only when a template needs them.
//!
//! * `waf`: the `waf` module, Gloo's web application firewall (`options.waf`, envoy-gloo's
//!   ModSecurity filter) as a tower layer: ModSecurity v3 with the OWASP Core Rule Set, rules
//!   evaluated on threads of its own at the lowest CPU priority. Links the system
//!   libmodsecurity (>= 3.0.6), so it is the one feature with a C dependency and the one
//!   module with `unsafe` code (`waf::ffi`).
//! * `extproc-waf`: the `extproc` module, the same WAF as Envoy's external processing service
//!   (`envoy.service.ext_proc.v3.ExternalProcessor`), for stock Envoy fleets (tonic,
//!   envoy-types).
//! * `extproc-transform`: `extproc::TransformProcessor`, the `transform` module's
//!   transformations as Envoy's external processing service, for stock Envoy fleets that
//!   cannot load envoy-gloo's `io.solo.transformation` filter (tonic, envoy-types).
//! * `ext-authz`: the `ext_authz` module, Envoy's external authorization HTTP filter
//!   (`envoy.filters.http.ext_authz`) as a tower layer, asking any
//!   `envoy.service.auth.v3.Authorization` gRPC server through a tonic client.
//! * `extauth`: the `extauth` module, Gloo Enterprise's external auth (`AuthConfig`: basic
//!   auth, API keys, OAuth2 access token validation, `booleanExpr`) as a tower layer; pulls in
//!   `jwt` for JWT access tokens.
//! * `extauth-grpc`: `extauth::grpc`, Envoy's ext_authz gRPC service
//!   (`envoy.service.auth.v3.Authorization`) over the same configs (tonic, envoy-types).
//! * `extauth-passthrough-grpc`: Gloo's gRPC `passThroughAuth` step, asking another
//!   `envoy.service.auth.v3.Authorization` server through the `ext_authz` module's client
//!   (enables `ext-authz`). HTTP passthrough is part of `extauth`.
//! * `extauth-oidc`: `extauth::oidc`, Gloo's OIDC authorization-code step (discovery, the
//!   browser flow with PKCE, ID tokens verified with the `jwt` module's key reader, sessions
//!   in optionally AES-256-GCM encrypted cookies, refresh, logout). Enables `jwt` and `https`.
//! * `extauth-oidc-redis`: OIDC sessions in Redis (the `redis` crate), only a random session
//!   id in the cookie.
//! * `https`: the HTTP calls filters make themselves (remote JWKS, token introspection and
//!   userinfo, the OIDC step's identity provider, AWS) reach `https` URLs over rustls (ring),
//!   trusting the system's CA certificates (`SSL_CERT_FILE` / `SSL_CERT_DIR` override them).
//!   Without it those calls speak plain http only. `aws` enables it.
//! * `aws`: the `aws` module, calling AWS: SigV4 signing (on `ring`), the standard credential
//!   sources (environment, shared profile, web identity, container, IMDSv2), STS `AssumeRole*`,
//!   and a small client for the query and REST APIs (hyper-util with rustls, `quick-xml`).
//! * `aws-lambda`: the `aws_lambda` module, envoy-gloo's AWS Lambda filter
//!   (`io.solo.aws_lambda`) as a tower layer: requests become signed invocations of a
//!   function, results are unwrapped as API Gateway or ALB responses.
//!
//! The other filters are filled in by the filters issue.
// No unsafe code, except in `waf::ffi`: the one fenced module that calls libmodsecurity's C API
// (feature `waf`), where it is allowed item by item with SAFETY comments.
#![cfg_attr(not(feature = "waf"), forbid(unsafe_code))]
#![cfg_attr(feature = "waf", deny(unsafe_code))]
#![warn(missing_docs)]

#[cfg(any(feature = "transform", feature = "waf"))]
pub mod body;
#[cfg(any(feature = "transform", feature = "waf"))]
mod config_error;
/// The header that carries the authenticated user id by default: what Gloo's external auth
/// sets (`Settings.extauth.userIdHeader`) and its basic rate limits count authorized requests
/// by. `extauth` and `ratelimit::global` re-export it.
#[cfg(any(feature = "ratelimit", feature = "extauth"))]
pub const DEFAULT_USER_ID_HEADER: &str = "x-user-id";

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "aws-lambda")]
pub mod aws_lambda;
#[cfg(feature = "ext-authz")]
pub mod ext_authz;
#[cfg(feature = "extauth")]
pub mod extauth;
#[cfg(any(feature = "extproc-waf", feature = "extproc-transform"))]
pub mod extproc;
#[cfg(any(feature = "jwt", feature = "aws"))]
mod http_client;
#[cfg(feature = "jwt")]
pub mod jwt;
#[cfg(any(feature = "transform", feature = "jwt", feature = "ratelimit"))]
pub mod metadata;
#[cfg(any(feature = "extproc-transform", feature = "extauth-passthrough-grpc"))]
mod pb_json;
#[cfg(feature = "ratelimit")]
pub mod ratelimit;
#[cfg(feature = "rls")]
pub mod rls;
#[cfg(any(
    feature = "extauth-ldap",
    feature = "extauth-passthrough-grpc",
    all(feature = "https", any(feature = "jwt", feature = "aws"))
))]
mod tls;
#[cfg(feature = "transform")]
pub mod transform;
#[cfg(feature = "waf")]
pub mod waf;
