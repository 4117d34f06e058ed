//! Errors of the `jwt` module.

use std::error::Error as StdError;
use std::fmt;

/// A JWT authentication config that cannot be built: what is wrong and where.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwtConfigError {
    /// Two providers share a name.
    #[error("JWT provider '{name}' is configured twice")]
    DuplicateProvider {
        /// The provider name.
        name: String,
    },
    /// A requirement names a provider that is not configured (Envoy's message).
    #[error("Required provider ['{name}'] is not configured.")]
    UnknownProvider {
        /// The provider name.
        name: String,
    },
    /// `requires_any` / `requires_all` with fewer than two requirements (Envoy's proto
    /// validation: `min_items: 2`).
    #[error("{list} needs at least 2 requirements, got {count}")]
    TooFewRequirements {
        /// `requires_any` or `requires_all`.
        list: &'static str,
        /// How many were given.
        count: usize,
    },
    /// A header name in a provider is not a valid HTTP header name.
    #[error("JWT provider '{provider}': {field} '{value}' is not a valid header name")]
    InvalidHeaderName {
        /// The provider name.
        provider: String,
        /// `from_headers`, `forward_payload_header` or `claim_to_headers`.
        field: &'static str,
        /// The offending value.
        value: String,
    },
    /// A `claim_to_headers` entry with an empty claim name.
    #[error("JWT provider '{provider}': claim_to_headers entry for header '{header}' has an empty claim name")]
    EmptyClaimName {
        /// The provider name.
        provider: String,
        /// The header of the entry.
        header: String,
    },
    /// The remote JWKS URI is not an absolute `http`/`https` URI.
    #[error("JWT provider '{provider}': remote_jwks uri '{uri}' is not an absolute http(s) URI")]
    InvalidJwksUri {
        /// The provider name.
        provider: String,
        /// The offending URI.
        uri: String,
    },
    /// A remote JWKS duration is zero or out of range.
    #[error("JWT provider '{provider}': remote_jwks {field} must be between 1 ms and 285 years")]
    InvalidDuration {
        /// The provider name.
        provider: String,
        /// `cache_duration`, `timeout` or `failed_refetch_duration`.
        field: &'static str,
    },
}

/// A local JWKS that Envoy would refuse to use: every token of its provider would then fail
/// with `Jwks doesn't have any valid public key`. Returned by [`validate_jwks`](super::validate_jwks).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("invalid JWKS: {0}")]
pub struct InvalidJwks(pub(crate) String);

/// Why a remote JWKS could not be fetched: an opaque error a [`JwksFetcher`](super::JwksFetcher)
/// returns (like tower's `BoxError`, with a name).
pub struct JwksFetchError {
    inner: Box<dyn StdError + Send + Sync>,
}

impl JwksFetchError {
    /// Wraps any error (or a message: `JwksFetchError::new("status 503")`).
    pub fn new(error: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self {
            inner: error.into(),
        }
    }
}

impl fmt::Debug for JwksFetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

impl fmt::Display for JwksFetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JWKS fetch failed: {}", self.inner)
    }
}

impl StdError for JwksFetchError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.inner)
    }
}
