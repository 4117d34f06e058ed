//! Errors of the transformation layer.

pub use crate::config_error::ConfigError;

use std::fmt;

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
