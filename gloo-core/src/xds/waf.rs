//! The config messages of envoy-gloo's ModSecurity filter (`io.solo.filters.http.modsecurity`,
//! package `envoy.config.filter.http.modsecurity.v2`), written as prost structs. Gloo defines
//! them in `projects/gloo/api/external/envoy/extensions/waf/waf.proto` (solo-io/gloo, Apache
//! 2.0). Stock Envoy has no such proto, so `envoy-types` has none. Field names and numbers are
//! Gloo's. The same `.proto` is compiled into the descriptor set gloo-core prints JSON with
//! (`tools/envoy-descriptors/proto/envoy-gloo/envoy/config/filter/http/modsecurity/v2`).
//!
//! ```
//! use gloo_core::xds::waf::{ModSecurityPerRoute, RuleSet};
//! use prost::Message;
//!
//! let config = ModSecurityPerRoute {
//!     rule_sets: vec![RuleSet { rule_str: "SecRuleEngine On".into(), ..Default::default() }],
//!     ..Default::default()
//! };
//! let bytes = config.encode_to_vec();
//! assert_eq!(ModSecurityPerRoute::decode(bytes.as_slice()).unwrap(), config);
//! ```

/// The filter's own config (`ModSecurity`): the listener's rules (Gloo's `httpGateway`
/// `options.waf`), used for requests whose route and virtual host set none.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModSecurity {
    /// Inspect nothing (set when the listener itself has no rules).
    #[prost(bool, tag = "1")]
    pub disabled: bool,
    /// The rule sets, loaded in order.
    #[prost(message, repeated, tag = "2")]
    pub rule_sets: Vec<RuleSet>,
    /// The body of an intervention's answer.
    #[prost(string, tag = "3")]
    pub custom_intervention_message: String,
    /// What to do with each exchange's audit log.
    #[prost(message, optional, tag = "5")]
    pub audit_logging: Option<AuditLogging>,
    /// Inspect only the request headers, not the body.
    #[prost(bool, tag = "6")]
    pub request_headers_only: bool,
    /// Inspect only the response headers, not the body.
    #[prost(bool, tag = "7")]
    pub response_headers_only: bool,
    /// Logs for the OWASP regression tests (never set by Gloo).
    #[prost(bool, tag = "4")]
    pub regression_logs: bool,
}

/// One rule set (`RuleSet`).
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct RuleSet {
    /// Inline rules, loaded after the files.
    #[prost(string, tag = "1")]
    pub rule_str: String,
    /// Rule files to load, in order.
    #[prost(string, repeated, tag = "3")]
    pub files: Vec<String>,
    /// A directory whose `*.conf` files are loaded (not recursively).
    #[prost(string, tag = "4")]
    pub directory: String,
}

/// The per-route config (`ModSecurityPerRoute`), on virtual hosts and routes: it replaces the
/// listener's config for their requests.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModSecurityPerRoute {
    /// Inspect nothing on this virtual host or route.
    #[prost(bool, tag = "1")]
    pub disabled: bool,
    /// The rule sets, loaded in order (replacing the listener's).
    #[prost(message, repeated, tag = "2")]
    pub rule_sets: Vec<RuleSet>,
    /// The body of an intervention's answer.
    #[prost(string, tag = "3")]
    pub custom_intervention_message: String,
    /// What to do with each exchange's audit log.
    #[prost(message, optional, tag = "5")]
    pub audit_logging: Option<AuditLogging>,
    /// Inspect only the request headers, not the body.
    #[prost(bool, tag = "6")]
    pub request_headers_only: bool,
    /// Inspect only the response headers, not the body.
    #[prost(bool, tag = "7")]
    pub response_headers_only: bool,
}

/// Audit log settings (`AuditLogging`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct AuditLogging {
    /// When an audit log is made.
    #[prost(enumeration = "audit_logging::AuditLogAction", tag = "1")]
    pub action: i32,
    /// Where it goes.
    #[prost(enumeration = "audit_logging::AuditLogLocation", tag = "2")]
    pub location: i32,
}

/// Nested enums of [`AuditLogging`].
pub mod audit_logging {
    /// When an audit log is made (`AuditLogAction`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum AuditLogAction {
        /// Never.
        Never = 0,
        /// Like `SecAuditEngine RelevantOnly`.
        RelevantOnly = 1,
        /// Always.
        Always = 2,
    }

    /// Where an audit log goes (`AuditLogLocation`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum AuditLogLocation {
        /// The filter state, key `io.solo.modsecurity.audit_log`.
        FilterState = 0,
        /// The dynamic metadata of `io.solo.filters.http.modsecurity`, key `audit_log`.
        DynamicMetadata = 1,
    }
}
