//! # gloo-filters
//!
//! Gloo's API-gateway filters as ordinary tower layers, usable in any hyper, axum or tonic
//! service as well as inside gloo-proxy: `waf` (ModSecurity + OWASP CRS), `jwt`, `extauth`
//! (OIDC, API keys, basic auth), `transform` (Inja-compatible templates) and `ratelimit` (local
//! token buckets and Redis-backed global limits), each behind its own cargo feature; plus the
//! gRPC services stock Envoy calls (ext_authz, the rate limit service, ext_proc).
//!
//! This crate is filled in by the filters issue; today it only reserves its place in the
//! workspace.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
