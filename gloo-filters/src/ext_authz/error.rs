//! Why a check did not allow a request, as markers on the answers this middleware gives.

use std::fmt;

/// Marks a response the middleware answered itself instead of the inner service (in the
/// response's extensions), so outer layers can tell an auth refusal from an upstream's own
/// `403`: for metrics, logs, or a gateway applying its local-reply rules (gloo-proxy adds the
/// route's response headers to it, as Envoy does to its local replies).
///
/// ```
/// use gloo_filters::ext_authz::{Rejected, RejectedKind};
///
/// let rejected = Rejected::new(RejectedKind::Denied);
/// assert_eq!(rejected.kind(), RejectedKind::Denied);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejected {
    kind: RejectedKind,
}

impl Rejected {
    /// A marker of this kind.
    pub fn new(kind: RejectedKind) -> Self {
        Self { kind }
    }

    /// Why the request was answered here.
    pub fn kind(&self) -> RejectedKind {
        self.kind
    }
}

/// Why the middleware answered a request itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectedKind {
    /// The authorization server denied it (a `CheckResponse` with a non-OK status).
    Denied,
    /// The server could not be asked, failed, or timed out, and failure mode does not allow
    /// the request: `status_on_error` (`403` unless configured), or the server's
    /// `error_response`.
    Error,
    /// The body was larger than `max_request_bytes` and partial bodies are not allowed
    /// (`413 Payload Too Large`).
    PayloadTooLarge,
    /// The request body could not be read while it was buffered for the check (`400`).
    BodyError,
}

/// Why a call to the authorization server failed. It is logged (at debug level), and makes
/// the check an error: the request is then allowed or refused by the failure mode.
#[derive(Debug)]
pub struct CheckError {
    reason: String,
}

impl CheckError {
    pub(crate) fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ext_authz check failed: {}", self.reason)
    }
}

impl std::error::Error for CheckError {}
