//! Errors of the global limiter.

use std::fmt;
use std::time::Duration;

/// A [`RateLimitDomain`](super::RateLimitDomain) the limiter refuses, naming the domain and
/// the offending descriptor, e.g. `rate limit domain "edge": descriptors[0].descriptors[1]:
/// duplicate descriptor "plan_BASIC"`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("rate limit domain {domain:?}: {path}: {reason}")]
pub struct InvalidConfig {
    domain: String,
    path: String,
    reason: String,
}

impl InvalidConfig {
    pub(crate) fn new(domain: &str, path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            domain: domain.to_owned(),
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// The domain's name.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Where in the domain, e.g. `descriptors[0].descriptors[1]` or `setDescriptors[2]`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// A counter store (Redis) failed or did not answer in time. Opaque, like tower's `Elapsed`:
/// the policy is the same whatever the cause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError {
    kind: StoreErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum StoreErrorKind {
    Timeout(Duration),
    Backend(String),
}

impl StoreError {
    /// The store did not answer within `timeout`.
    pub fn timeout(timeout: Duration) -> Self {
        Self {
            kind: StoreErrorKind::Timeout(timeout),
        }
    }

    /// The store answered with an error or could not be reached.
    pub fn backend(message: impl fmt::Display) -> Self {
        Self {
            kind: StoreErrorKind::Backend(message.to_string()),
        }
    }

    /// Whether the store did not answer in time.
    pub fn is_timeout(&self) -> bool {
        matches!(self.kind, StoreErrorKind::Timeout(_))
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            StoreErrorKind::Timeout(t) => write!(f, "rate limit store timed out after {t:?}"),
            StoreErrorKind::Backend(m) => write!(f, "rate limit store failed: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// Why the limiter could not answer a request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// The request is malformed (empty domain, no descriptors, an empty descriptor), as
    /// envoyproxy/ratelimit refuses it.
    #[error("invalid rate limit request: {0}")]
    InvalidRequest(&'static str),
    /// The counter store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
