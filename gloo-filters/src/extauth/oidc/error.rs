//! Errors of the OIDC step.

use std::fmt;

/// An OIDC config that cannot be used: the field (a camelCase path such as
/// `userSession.redis.options.host`; empty for the whole config) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcConfigError {
    field: String,
    message: String,
}

impl OidcConfigError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The field path the error is about.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for OidcConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for OidcConfigError {}

/// Why a call to the identity provider failed (transport, status, or an answer that does not
/// parse).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpError(String);

impl IdpError {
    /// An error with this description.
    pub fn new(message: impl fmt::Display) -> Self {
        Self(message.to_string())
    }
}

impl fmt::Display for IdpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for IdpError {}
