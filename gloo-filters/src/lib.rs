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
//!   (`envoy.service.ratelimit.v3.RateLimitService`) over the same limiter (tonic, envoy-types).
//! * `jwt`: the `jwt` module, Envoy's JWT authentication filter (`envoy.filters.http.jwt_authn`)
//!   as a tower layer: local or remote JWKS, provider requirements, claims to headers. Built on
//!   `jsonwebtoken` (no bundled crypto) with `ring` verifying signatures, and hyper-util
//!   fetching remote keys.
//! * `transform`: the `transform` module, Gloo's request/response transformations
//!   (`transformations` / `stagedTransformations`, envoy-gloo's `io.solo.transformation` filter)
//!   as a tower layer: regex extractors and Inja-compatible templates rendered with
//!   `minijinja`, bodies buffered only when a template needs them.
//!
//! * `aws`: the `aws` module, calling AWS: SigV4 signing (on `ring`), the standard credential
//!   sources (environment, shared profile, web identity, container, IMDSv2), STS `AssumeRole*`,
//!   and a small client for the query and REST APIs (hyper-util with rustls, `quick-xml`).
//!
//! * `aws-lambda`: the `aws_lambda` module, envoy-gloo's AWS Lambda filter
//!   (`io.solo.aws_lambda`) as a tower layer: requests become signed invocations of a
//!   function, results are unwrapped as API Gateway or ALB responses.
//!
//! * `extauth`: the `extauth` module, Gloo's external auth (`AuthConfig`) as a tower layer
//!   (work in progress).
//!
//! The other filters are filled in by the filters issue.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "aws-lambda")]
pub mod aws_lambda;
#[cfg(feature = "extauth")]
pub mod extauth;
#[cfg(feature = "jwt")]
pub mod jwt;
#[cfg(feature = "ratelimit")]
pub mod ratelimit;
#[cfg(feature = "rls")]
pub mod rls;
#[cfg(feature = "transform")]
pub mod transform;
