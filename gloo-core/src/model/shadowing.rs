//! Traffic shadowing options: Gloo's `options/shadowing/shadowing.proto`
//! (`shadowing.options.gloo.solo.io.RouteShadowing`).
//!
//! A route that mirrors all its traffic to the next version of its upstream:
//!
//! ```
//! use gloo_core::load::{parse_str, Format};
//! use gloo_core::model::{Resource, ResourceRef};
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
//!     routes:
//!     - matchers:
//!       - prefix: /petstore
//!       routeAction:
//!         single:
//!           upstream:
//!             name: petstore-v1
//!             namespace: gloo-system
//!       options:
//!         shadowing:
//!           upstream:
//!             name: petstore-v2
//!             namespace: gloo-system
//!           percentage: 100
//! "#;
//! let parsed = parse_str(yaml, "default.yaml", Format::Yaml);
//! assert!(parsed.is_ok(), "{:?}", parsed.errors);
//! let Resource::VirtualService(vs) = &parsed.resources[0].resource else {
//!     panic!("expected a VirtualService");
//! };
//! let route = &vs.spec.virtual_host.as_ref().ok_or("no virtualHost")?.routes[0];
//! let shadowing = route.options.as_ref().and_then(|o| o.shadowing.as_deref());
//! let shadowing = shadowing.ok_or("no shadowing")?;
//!
//! assert_eq!(shadowing.upstream, Some(ResourceRef::new("gloo-system", "petstore-v2")));
//! assert_eq!(shadowing.percentage, 100.0);
//! // By default the mirrored requests' Host gets a `-shadow` suffix.
//! assert!(!shadowing.disable_shadow_host_suffix_append);
//! assert!(shadowing.host_rewrite_literal.is_empty());
//! # Ok(())
//! # }
//! ```

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
