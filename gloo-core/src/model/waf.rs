//! Web application firewall (ModSecurity) options: Gloo's
//! `enterprise/options/waf/waf.proto` (`waf.options.gloo.solo.io.Settings`) and the
//! `RuleSet` / `AuditLogging` messages of `external/envoy/extensions/waf/waf.proto`
//! (`envoy.config.filter.http.modsecurity.v2`).
//!
//! A virtual host protected by the OWASP core rule set plus a rule of its own, and a route that
//! turns the firewall off:
//!
//! ```
//! use gloo_core::load::{parse_str, Format};
//! use gloo_core::model::waf::AuditLogAction;
//! use gloo_core::model::Resource;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//!
//! let yaml = r#"
//! apiVersion: gateway.solo.io/v1
//! kind: VirtualService
//! metadata:
//!   name: default
//!   namespace: gloo-system
//! spec:
//!   virtualHost:
//!     domains:
//!     - '*'
//!     options:
//!       waf:
//!         customInterventionMessage: 'ModSecurity intervention! Custom message details here..'
//!         coreRuleSet: {}
//!         ruleSets:
//!         - ruleStr: |
//!             SecRuleEngine On
//!             SecRule REQUEST_HEADERS:User-Agent "scammer" "deny,status:403,id:107,phase:1"
//!         auditLogging:
//!           action: RELEVANT_ONLY
//!     routes:
//!     - matchers:
//!       - prefix: /static
//!       routeAction:
//!         single:
//!           upstream:
//!             name: static-files
//!             namespace: gloo-system
//!       options:
//!         waf:
//!           disabled: true
//! "#;
//! let parsed = parse_str(yaml, "default.yaml", Format::Yaml);
//! assert!(parsed.is_ok(), "{:?}", parsed.errors);
//! let Resource::VirtualService(vs) = &parsed.resources[0].resource else {
//!     panic!("expected a VirtualService");
//! };
//! let host = vs.spec.virtual_host.as_ref().ok_or("no virtualHost")?;
//! let waf = host.options.as_ref().and_then(|o| o.waf.as_deref()).ok_or("no waf")?;
//!
//! assert!(!waf.is_disabled());
//! // `coreRuleSet: {}` adds the core rule set with its default settings.
//! assert!(waf.core_rule_set.is_some());
//! let rules = waf.rule_sets[0].rule_str.as_deref().ok_or("no ruleStr")?;
//! assert!(rules.starts_with("SecRuleEngine On\n"));
//! let audit = waf.audit_logging.as_ref().ok_or("no auditLogging")?;
//! assert_eq!(audit.action, Some(AuditLogAction::RelevantOnly));
//!
//! let route_waf = host.routes[0].options.as_ref().and_then(|o| o.waf.as_deref());
//! assert!(route_waf.ok_or("no route waf")?.is_disabled());
//! # Ok(())
//! # }
//! ```

use serde::{Deserialize, Serialize};

use crate::model::ResourceRef;

/// WAF settings for a listener, virtual host or route (`options.waf`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// Disables WAF on this resource; a child must disable explicitly, it does not inherit this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// Custom message to return when an intervention occurs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_intervention_message: Option<String>,
    /// Adds the OWASP core rule set when set (even if empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core_rule_set: Option<CoreRuleSet>,
    /// Custom rule sets to add.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rule_sets: Vec<RuleSet>,
    /// Kubernetes config maps holding rule sets in their `data` values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_map_rule_sets: Vec<RuleSetFromConfigMap>,
    /// Audit log settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_logging: Option<AuditLogging>,
    /// Only process request headers, without buffering the request body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_headers_only: Option<bool>,
    /// Only process response headers, without buffering the response body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_headers_only: Option<bool>,
}

impl Settings {
    /// Whether WAF is disabled on this resource.
    pub fn is_disabled(&self) -> bool {
        self.disabled.unwrap_or(false)
    }
}

/// Rule sets read from a Kubernetes config map (`RuleSetFromConfigMap`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleSetFromConfigMap {
    /// The config map whose `data` values are rule sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<ResourceRef>,
    /// Which `data` keys to use, in order; all keys, sorted, when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_map_keys: Vec<String>,
}

/// The OWASP core rule set, with optional custom settings (oneof `CustomSettingsType`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CoreRuleSet {
    /// Core rule set configuration options, inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_settings_string: Option<String>,
    /// A file with core rule set configuration options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_settings_file: Option<String>,
}

/// A ModSecurity rule set (`envoy.config.filter.http.modsecurity.v2.RuleSet`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleSet {
    /// Rules, added directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_str: Option<String>,
    /// Files with rules to include.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// A directory whose `*.conf` files are included (not recursively).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
}

/// What to do with a transaction's audit log (`AuditLogging`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditLogging {
    /// When to generate audit logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<AuditLogAction>,
    /// Where to put the audit log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<AuditLogLocation>,
}

/// When audit logs are generated (`AuditLogging.AuditLogAction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuditLogAction {
    /// Never generate audit logs.
    #[default]
    Never,
    /// Like `SecAuditEngine RelevantOnly`.
    RelevantOnly,
    /// Always generate an audit log entry.
    Always,
}

/// Where audit logs go (`AuditLogging.AuditLogLocation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuditLogLocation {
    /// The filter state, key `io.solo.modsecurity.audit_log`.
    #[default]
    FilterState,
    /// Dynamic metadata of `io.solo.filters.http.modsecurity`, key `audit_log`.
    DynamicMetadata,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(s: &Settings) {
        let json = serde_json::to_string(s).unwrap();
        let back: Settings = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, s);
    }

    // From docs/content/guides/security/waf/_index.md (core rule set section).
    const CORE_RULE_SET: &str = r#"
coreRuleSet:
  customSettingsString: |
      # default rules section
      SecRuleEngine On
      SecRequestBodyAccess On
      # CRS section
      # Will block by default
      SecDefaultAction "phase:1,log,auditlog,deny,status:403"
      SecDefaultAction "phase:2,log,auditlog,deny,status:403"
"#;

    // From docs/content/guides/security/waf/_index.md (streaming protocols section).
    const RULE_SETS: &str = r#"
requestHeadersOnly: true
responseHeadersOnly: true
customInterventionMessage: ModSecurity intervention! Custom message details here..
ruleSets:
- ruleStr: |
    # Turn rule engine on
    SecRuleEngine On
    SecRule REQUEST_HEADERS:User-Agent "scammer" "deny,status:403,id:107,phase:1,msg:'blocked scammer'"
"#;

    // From docs/content/guides/security/waf/_index.md (audit logging and config map sections).
    const AUDIT_AND_CONFIG_MAP: &str = r#"
customInterventionMessage: 'ModSecurity intervention! Custom message details here..'
auditLogging:
  action: ALWAYS
  location: FILTER_STATE
configMapRuleSets:
- configMapRef:
    name: wafruleset
    namespace: gloo-system
  dataMapKeys:
  - wafruleset.conf
"#;

    #[test]
    fn parses_core_rule_set() {
        let s: Settings = serde_yaml_ng::from_str(CORE_RULE_SET).unwrap();
        let crs = s.core_rule_set.as_ref().unwrap();
        assert!(crs
            .custom_settings_string
            .as_deref()
            .unwrap()
            .contains("SecRuleEngine On"));
        assert!(crs.custom_settings_file.is_none());
        assert!(!s.is_disabled());
        round_trip(&s);
    }

    #[test]
    fn parses_rule_sets() {
        let s: Settings = serde_yaml_ng::from_str(RULE_SETS).unwrap();
        assert_eq!(s.request_headers_only, Some(true));
        assert_eq!(s.response_headers_only, Some(true));
        assert_eq!(s.rule_sets.len(), 1);
        assert!(s.rule_sets[0]
            .rule_str
            .as_deref()
            .unwrap()
            .contains("blocked scammer"));
        round_trip(&s);
    }

    #[test]
    fn parses_audit_logging_and_config_maps() {
        let s: Settings = serde_yaml_ng::from_str(AUDIT_AND_CONFIG_MAP).unwrap();
        let audit = s.audit_logging.as_ref().unwrap();
        assert_eq!(audit.action, Some(AuditLogAction::Always));
        assert_eq!(audit.location, Some(AuditLogLocation::FilterState));
        let cm = &s.config_map_rule_sets[0];
        assert_eq!(cm.config_map_ref.as_ref().unwrap().name, "wafruleset");
        assert_eq!(cm.data_map_keys, vec!["wafruleset.conf".to_string()]);
        round_trip(&s);
    }

    #[test]
    fn rejects_unknown_field() {
        let err = serde_yaml_ng::from_str::<Settings>("ruleSets:\n- ruleString: x\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ruleString"), "{err}");
    }
}
