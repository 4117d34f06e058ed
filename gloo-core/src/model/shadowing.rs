//! Traffic shadowing options: Gloo's `options/shadowing/shadowing.proto`
//! (`shadowing.options.gloo.solo.io.RouteShadowing`).

use serde::{Deserialize, Serialize};

use crate::model::ResourceRef;

/// Mirror a percentage of a route's traffic to another upstream.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteShadowing {
    /// The upstream to shadow traffic to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<ResourceRef>,
    /// Percentage of traffic to shadow (0-100).
    #[serde(default)]
    pub percentage: f64,
    /// Don't append `-shadow` to the Host/authority of shadowed requests.
    #[serde(
        alias = "disable_shadow_host_suffix_append",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub disable_shadow_host_suffix_append: bool,
    /// Replace the Host/authority of shadowed requests with this value.
    #[serde(
        alias = "host_rewrite_literal",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub host_rewrite_literal: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    // docs/content/guides/traffic_management/request_processing/shadowing/_index.md
    const DOC: &str = r#"
upstream:
  name: 'petstore-v2'
  namespace: 'gloo-system'
percentage: 100
hostRewriteLiteral: "petstore-v2.example.com"
"#;

    #[test]
    fn parses_docs_example_and_round_trips() {
        let s: RouteShadowing = serde_yaml_ng::from_str(DOC).unwrap();
        assert_eq!(
            s.upstream,
            Some(ResourceRef::new("gloo-system", "petstore-v2"))
        );
        assert_eq!(s.percentage, 100.0);
        assert_eq!(s.host_rewrite_literal, "petstore-v2.example.com");
        let json = serde_json::to_string(&s).unwrap();
        let back: RouteShadowing = serde_json::from_str(&json).unwrap();
        assert_eq!(s, back);
    }

    #[test]
    fn unknown_field_is_rejected() {
        let err = serde_yaml_ng::from_str::<RouteShadowing>("percent: 5").unwrap_err();
        assert!(err.to_string().contains("percent"), "{err}");
    }
}
