//! Gloo's `passThroughAuth`: the check goes on to an auth server of your own, over gRPC (any
//! `envoy.service.auth.v3.Authorization` server, [`PassThroughGrpc`], feature
//! `extauth-passthrough-grpc`) or HTTP (a `POST` to a URL, [`PassThroughHttp`]).
//!
//! # gRPC
//!
//! The server gets Envoy's `CheckRequest` for the request (method, path, `:authority`,
//! `:scheme`, headers keyed by lowercase name with repeated values joined by `,`, the
//! buffered body, the client's address) with the step's `config` as filter metadata
//! `solo.auth.passthrough.config`, and its answer is read as Envoy reads one: `OK` allows
//! (its `headers` set, append to or add to the upstream request's, `headers_to_remove` removes,
//! `response_headers_to_add` reach the client); a denial answers with its
//! `DeniedHttpResponse` (`403` when it gives no status).
//!
//! # HTTP
//!
//! A `POST` to `url` carrying the request's `allowedHeaders` and `headersToAdd` (which win);
//! its body is empty unless `passThroughBody`, `passThroughState`,
//! `passThroughFilterMetadata` or `config` ask for JSON members `body`, `state`,
//! `filterMetadata`, `config` (then `Content-Type: application/json`). A `200` allows: the
//! answer's `allowedUpstreamHeaders` are appended to the upstream request's values, its
//! `allowedUpstreamHeadersToOverwrite` replace them, its `allowedClientHeadersOnSuccess` are set
//! on the client's response. Any other `2xx`, `3xx` or `4xx` denies: the client gets that
//! status (`403` for a `2xx`) and the answer's `allowedClientHeadersOnDenied`.
//!
//! # TLS
//!
//! Gloo's control plane resolves `tlsConfig.secretRef` (a Kubernetes TLS Secret) into the
//! step `passthroughInternal`: the step as `passThroughAuth` plus `tlsConfigData`, whose
//! `rootCaPem`, `certPem` and `keyPem` are base64-encoded PEM (plain PEM is read too). With
//! `tlsConfigData`, or a `tlsConfig` without a Secret, the connection uses TLS (rustls):
//! the server's certificate must chain to `rootCaPem` (to the system's CA certificates when
//! there is none, `SSL_CERT_FILE` / `SSL_CERT_DIR` overriding them) and name the host of
//! `address` / `url`; `certPem` with `keyPem` is the client certificate (mTLS).
//! `sslParams` bound the versions offered (TLS 1.2 and 1.3 by default). gRPC offers ALPN `h2`.
//! A `passThroughAuth` whose `tlsConfig` names a Secret is refused (nobody resolved it). For
//! HTTP the settings apply to `https` URLs, need the `https` feature, and the step gets an
//! HTTP client of its own (not the build options' shared one).
//!
//! # Retries (gRPC)
//!
//! With `retryPolicy`, a call that fails with `UNAVAILABLE` (the server cannot be reached,
//! the connection or its TLS handshake fails, or the server answers so) is retried up to `numRetries` times (1 by default), after a fully jittered
//! exponential back-off: a random wait up to `baseInterval × 2^n` after the `n`th failure
//! (`baseInterval` 1 s by default), never above `maxInterval` (10 × `baseInterval` by
//! default), as Envoy's and gRPC's back-offs wait. Other errors, denials and answers are
//! not retried. `connectionTimeout` bounds the whole check, retries included, as a gRPC
//! deadline does; a back-off that would end past it fails the check at once.
//!
//! # Failures
//!
//! A server that cannot be reached, does not answer within `connectionTimeout` (5 s by
//! default), answers a gRPC error (or an `error_response`) or an HTTP `5xx` fails the check
//! (after the retries, if any): with `failureModeAllow` the request is allowed (adding
//! nothing), otherwise it is denied with a bare `403` (what Envoy answers when Gloo's server
//! reports an error), or the `error_response` a gRPC server gave.
//!
//! # Differences from Gloo
//!
//! * Auth steps here share no state: the gRPC server gets no `solo.auth.passthrough` filter
//!   metadata, the HTTP body's `state` and `filterMetadata` are `{}`, and a `state` read from
//!   the answer (`readStateFromResponse`) is checked (an answer that is not
//!   `{"state": {...}}` denies with `403`, as in Gloo) but not handed to later steps.
//!   Dynamic metadata in a gRPC answer is dropped, as are its query parameter changes.
//! * The gRPC request carries no context extensions (the route's `config_id`) and a fresh
//!   request id; its body is the body the ext auth service received, whole.
//! * TLS 1.1 is not offered (rustls speaks TLS 1.2 and 1.3): a `minimumProtocolVersion` of
//!   `TLSv1_1` offers TLS 1.2 up, a `maximumProtocolVersion` of `TLSv1_1` is refused.
//! * An `https` URL without TLS settings trusts the CA that Gloo's
//!   `HTTPS_PASSTHROUGH_CA_CERT` environment variable holds (base64 of PEM, read when the
//!   step is built), as Gloo documents, or else the system's CA certificates.
//! * Which gRPC failures Gloo retries is not documented beyond "unable to initially
//!   connect"; `UNAVAILABLE` covers that (and a server that says it is unavailable).
//! * `connectionPool` is accepted and not used (the shared client's pool serves every step).
//!   `responseHeaderTimeout` bounds the call as `connectionTimeout` does (the earlier of the
//!   two wins); the whole answer counts.
//! * Gloo does not document the status of an HTTP denial; the server's status is passed on.

#[cfg(feature = "extauth-passthrough-grpc")]
mod grpc;
mod http_post;
#[cfg(any(feature = "extauth-passthrough-grpc", feature = "https"))]
mod tls;

/// `passthroughInternal`'s `tlsConfigData`, with its path (for errors).
pub(crate) type TlsData<'a> = (&'a str, &'a super::config::PassthroughTlsConfigData);

#[cfg(feature = "extauth-passthrough-grpc")]
pub use self::grpc::PassThroughGrpc;
pub use self::http_post::PassThroughHttp;

use std::time::Duration;

use http::StatusCode;

use super::config::ProtoDuration;
use super::{Allowed, Decision, Denied};

/// Gloo's default `connectionTimeout` of a passthrough call: 5 s.
pub const DEFAULT_PASSTHROUGH_TIMEOUT: Duration = Duration::from_secs(5);

/// The configured timeout, or the default; zero is refused (no call could finish).
fn timeout(
    at: &str,
    field: &str,
    value: Option<ProtoDuration>,
) -> Result<Duration, super::ConfigError> {
    match value {
        None => Ok(DEFAULT_PASSTHROUGH_TIMEOUT),
        Some(ProtoDuration(d)) if d.is_zero() => Err(super::ConfigError::new(
            format!("{at}.{field}"),
            "must be more than zero",
        )),
        Some(ProtoDuration(d)) => Ok(d),
    }
}

/// The answer when the server failed (unreachable, timed out, errored).
fn failed(failure_mode_allow: bool, denial: Option<Denied>) -> Decision {
    if failure_mode_allow {
        Decision::Allow(Allowed::default())
    } else {
        Decision::Deny(denial.unwrap_or_else(|| Denied::status(StatusCode::FORBIDDEN)))
    }
}
