//! Errors of the transformation layer.

use std::fmt;

/// A transformation config that cannot be built: which field, and why.
///
/// The field is a path into the [`Transformations`](super::Transformations), e.g.
/// `request_transforms[0].request_transformation.headers["x-foo"].text`, and the message says
/// what is wrong with it, e.g. `template error at line 1: unexpected end of input`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    field: String,
    message: String,
}

impl ConfigError {
    pub(crate) fn new(field: impl Into<String>, message: impl fmt::Display) -> Self {
        Self {
            field: field.into(),
            message: message.to_string(),
        }
    }

    /// Prefixes the field path with `parent` (`parent.field`).
    pub(crate) fn within(mut self, parent: &str) -> Self {
        self.field = if self.field.is_empty() {
            parent.to_owned()
        } else if self.field.starts_with('[') {
            format!("{parent}{}", self.field)
        } else {
            format!("{parent}.{}", self.field)
        };
        self
    }

    /// The path of the offending field.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What is wrong with it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Why a transformation failed while a request or response was transformed. Its text is what
/// the error answer's body says after envoy-gloo's `bad request: ` prefix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct TransformError(pub(crate) String);

impl TransformError {
    pub(crate) fn new(message: impl fmt::Display) -> Self {
        Self(message.to_string())
    }
}
