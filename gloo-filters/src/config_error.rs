//! [`ConfigError`], the build error of the filters whose config is a tree of fields
//! (`transform`, `waf`): which field, and why.

use std::fmt;

/// A filter config that cannot be built: which field, and why.
///
/// The field is a path into the config, e.g.
/// `request_transforms[0].request_transformation.headers["x-foo"].text` (a transformation) or
/// `rule_sets[1].files[0]` (WAF rule sets), and the message says what is wrong with it, e.g.
/// `template error at line 1: unexpected end of input`, or ModSecurity's own
/// `Rules error. File: ... Line: 1. Column: 33. syntax error, unexpected ","`.
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
