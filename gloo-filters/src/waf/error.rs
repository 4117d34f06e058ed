//! Errors of the WAF.

pub use crate::config_error::ConfigError;
