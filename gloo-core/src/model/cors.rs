//! CORS options: Gloo's `options/cors/cors.proto` (`cors.options.gloo.solo.io.CorsPolicy`,
//! `CorsPolicyMergeSettings`).
//!
//! A CORS policy for a whole virtual host, which one of its routes opts out of:
//!
//! ```
//! use gloo_core::load::{parse_str, Format};
//! use gloo_core::model::cors::MergeStrategy;
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
//!       cors:
//!         allowOrigin:
//!         - https://example.com
//!         allowOriginRegex:
//!         - 'https://[a-zA-Z0-9]*\.example\.com'
//!         allowMethods:
//!         - GET
//!         - POST
//!         allowHeaders:
//!         - origin
//!         exposeHeaders:
//!         - x-request-id
//!         maxAge: 1d
//!         allowCredentials: true
//!       corsPolicyMergeSettings:
//!         exposeHeaders: UNION
//!     routes:
//!     - matchers:
//!       - prefix: /public
//!       routeAction:
//!         single:
//!           upstream:
//!             name: public
//!             namespace: gloo-system
//!       options:
//!         cors:
//!           disableForRoute: true
//! "#;
//! let parsed = parse_str(yaml, "default.yaml", Format::Yaml);
//! assert!(parsed.is_ok(), "{:?}", parsed.errors);
//! let Resource::VirtualService(vs) = &parsed.resources[0].resource else {
//!     panic!("expected a VirtualService");
//! };
//! let host = vs.spec.virtual_host.as_ref().ok_or("no virtualHost")?;
//! let host_options = host.options.as_ref().ok_or("no options")?;
//!
//! let cors = host_options.cors.as_deref().ok_or("no cors")?;
//! assert_eq!(cors.allow_origin, ["https://example.com"]);
//! assert_eq!(cors.allow_origin_regex, [r"https://[a-zA-Z0-9]*\.example\.com"]);
//! assert_eq!(cors.allow_methods, ["GET", "POST"]);
//! assert_eq!(cors.max_age, "1d");
//! assert!(cors.allow_credentials);
//! let merge = host_options.cors_policy_merge_settings.as_ref().ok_or("no merge settings")?;
//! assert_eq!(merge.expose_headers, Some(MergeStrategy::Union));
//!
//! let route_cors = host.routes[0].options.as_ref().and_then(|o| o.cors.as_deref());
//! assert!(route_cors.ok_or("no route cors")?.disable_for_route);
//! # Ok(())
//! # }
//! ```

use serde::{Deserialize, Serialize};

/// A CORS policy for a virtual host or route.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CorsPolicy {
    /// Origins allowed to make CORS requests (exact match).
    #[serde(alias = "allow_origin", default, skip_serializing_if = "Vec::is_empty")]
    pub allow_origin: Vec<String>,
    /// Origins allowed to make CORS requests (regular expressions).
    #[serde(
        alias = "allow_origin_regex",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allow_origin_regex: Vec<String>,
    /// Contents of the `access-control-allow-methods` header.
    #[serde(
        alias = "allow_methods",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allow_methods: Vec<String>,
    /// Contents of the `access-control-allow-headers` header.
    #[serde(
        alias = "allow_headers",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allow_headers: Vec<String>,
    /// Contents of the `access-control-expose-headers` header.
    #[serde(
        alias = "expose_headers",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub expose_headers: Vec<String>,
    /// Contents of the `access-control-max-age` header (a free-form string, e.g. `1d`).
    #[serde(alias = "max_age", default, skip_serializing_if = "String::is_empty")]
    pub max_age: String,
    /// Whether the resource allows credentials.
    #[serde(
        alias = "allow_credentials",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub allow_credentials: bool,
    /// On a route: ignore the virtual host's CORS policy for this route.
    #[serde(
        alias = "disable_for_route",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub disable_for_route: bool,
}

/// How route-level and virtual-host-level CORS policies are combined.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CorsPolicyMergeSettings {
    /// Strategy for merging `exposeHeaders`.
    #[serde(
        alias = "expose_headers",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub expose_headers: Option<MergeStrategy>,
}

/// A CORS field merge strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MergeStrategy {
    /// The route's value replaces the virtual host's value.
    #[default]
    Default,
    /// The union of the route's and the virtual host's values.
    Union,
}

#[cfg(test)]
mod tests {
    use super::*;

    // docs/content/guides/security/cors/_index.md (the `cors` block of the virtual host options).
    const DOC: &str = r#"
allowCredentials: true
allowHeaders:
- origin
allowMethods:
- GET
- POST
- OPTIONS
allowOrigin:
- https://example.com
allowOriginRegex:
- https://[a-zA-Z0-9]*\.example\.com
exposeHeaders:
- origin
maxAge: 1d
"#;

    #[test]
    fn parses_docs_example_and_round_trips() {
        let cors: CorsPolicy = serde_yaml_ng::from_str(DOC).unwrap();
        assert!(cors.allow_credentials);
        assert_eq!(cors.allow_methods, vec!["GET", "POST", "OPTIONS"]);
        assert_eq!(
            cors.allow_origin_regex,
            vec![r"https://[a-zA-Z0-9]*\.example\.com"]
        );
        assert_eq!(cors.max_age, "1d");
        assert!(!cors.disable_for_route);
        let json = serde_json::to_string(&cors).unwrap();
        let back: CorsPolicy = serde_json::from_str(&json).unwrap();
        assert_eq!(cors, back);
    }

    #[test]
    fn merge_settings_parse() {
        let s: CorsPolicyMergeSettings = serde_yaml_ng::from_str("exposeHeaders: UNION").unwrap();
        assert_eq!(s.expose_headers, Some(MergeStrategy::Union));
    }

    #[test]
    fn unknown_field_is_rejected() {
        let err = serde_yaml_ng::from_str::<CorsPolicy>("allowOrigins: [a]").unwrap_err();
        assert!(err.to_string().contains("allowOrigins"), "{err}");
    }
}
