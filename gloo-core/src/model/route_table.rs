//! The `RouteTable` resource: Gloo's `gateway/api/v1/route_table.proto`. Routes are in
//! [`crate::model::routing`].
//!
//! A route table that virtual services delegate `/a` to by label:
//!
//! ```
//! use gloo_core::load::{parse_str, Format};
//! use gloo_core::model::routing::{PathMatcher, RouteActionRef};
//! use gloo_core::model::Resource;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//!
//! let yaml = r#"
//! apiVersion: gateway.solo.io/v1
//! kind: RouteTable
//! metadata:
//!   name: a-routes
//!   namespace: gloo-system
//!   labels:
//!     domain: example.com
//! spec:
//!   weight: 20
//!   routes:
//!   - matchers:
//!     - prefix: /a/1
//!     routeAction:
//!       single:
//!         upstream:
//!           name: foo-upstream
//!   - matchers:
//!     - exact: /a/health
//!     directResponseAction:
//!       status: 200
//!       body: ok
//! "#;
//! let parsed = parse_str(yaml, "a-routes.yaml", Format::Yaml);
//! assert!(parsed.is_ok(), "{:?}", parsed.errors);
//! let Resource::RouteTable(table) = &parsed.resources[0].resource else {
//!     panic!("expected a RouteTable");
//! };
//! // Selectors match the labels; of several tables selected, lower weights come first.
//! assert_eq!(table.metadata.labels["domain"], "example.com");
//! assert_eq!(table.spec.weight, Some(20));
//!
//! let routes = &table.spec.routes;
//! assert_eq!(routes[0].matchers[0].path_or_default()?, PathMatcher::Prefix("/a/1"));
//! let Some(RouteActionRef::DirectResponse(health)) = routes[1].action()? else {
//!     panic!("expected a directResponseAction");
//! };
//! assert_eq!((health.status, health.body.as_str()), (200, "ok"));
//! # Ok(())
//! # }
//! ```

use serde::{Deserialize, Serialize};

use crate::model::routing::Route;

/// A route table: routes that virtual services and other route tables delegate to
/// (`gateway.solo.io.RouteTable`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteTableSpec {
    /// Routes; their path matchers must start with the delegating route's prefix.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::model::shrunk_vec"
    )]
    pub routes: Vec<Route>,
    /// Ordering weight when a selector picks several tables (lower first; default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::routing::{DelegateTarget, PathMatcher, RouteActionRef};
    use crate::model::ResourceRef;

    fn spec(doc: &str) -> RouteTableSpec {
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(doc).unwrap();
        serde_yaml_ng::from_value(v["spec"].clone()).unwrap()
    }

    fn round_trip(s: &RouteTableSpec) {
        let json = serde_json::to_string(s).unwrap();
        let back: RouteTableSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(s, &back);
    }

    // docs/content/guides/traffic_management/destination_types/delegation/_index.md
    const B_ROUTES: &str = r#"
apiVersion: gateway.solo.io/v1
kind: RouteTable
metadata:
  name: 'b-routes'
  namespace: 'b'
spec:
  routes:
    - matchers:
        # the path matchers in this RouteTable must begin with the prefix `/b/`
       - regex: '/b/3'
      routeAction:
        single:
          upstream:
            name: 'baz-upstream'
    - matchers:
       - prefix: '/b/c/'
      # routes in the RouteTable can perform any action, including a delegateAction
      delegateAction:
        ref:
          name: 'c-routes'
          namespace: 'c'
"#;

    // docs/content/guides/traffic_management/destination_types/delegation/_index.md
    const WEIGHTED: &str = r#"
apiVersion: gateway.solo.io/v1
kind: RouteTable
metadata:
  name: 'a-routes'
  namespace: 'gloo-system'
  labels:
    domain: example.com
spec:
  weight: 20
  routes:
    - matchers:
        # the path matchers in this RouteTable can begin with any prefix
       - prefix: '/a'
      routeAction:
        single:
          upstream:
            name: 'foo-upstream'
"#;

    #[test]
    fn parses_docs_examples_and_round_trips() {
        let b = spec(B_ROUTES);
        assert_eq!(b.weight, None);
        assert_eq!(
            b.routes[0].matchers[0].path().unwrap(),
            Some(PathMatcher::Regex("/b/3"))
        );
        let Some(RouteActionRef::Delegate(d)) = b.routes[1].action().unwrap() else {
            panic!("expected a delegate action");
        };
        assert_eq!(
            d.target().unwrap(),
            Some(DelegateTarget::Ref(ResourceRef::new("c", "c-routes")))
        );
        round_trip(&b);

        let a = spec(WEIGHTED);
        assert_eq!(a.weight, Some(20));
        assert_eq!(
            a.routes[0].matchers[0].path_or_default().unwrap(),
            PathMatcher::Prefix("/a")
        );
        round_trip(&a);
    }

    #[test]
    fn deprecated_delegate_name_is_a_ref() {
        let rt: RouteTableSpec = serde_yaml_ng::from_str(
            "routes:\n- matchers: [{prefix: /x}]\n  delegateAction: {name: x-routes}",
        )
        .unwrap();
        let Some(RouteActionRef::Delegate(d)) = rt.routes[0].action().unwrap() else {
            panic!("expected a delegate action");
        };
        let Some(DelegateTarget::Ref(r)) = d.target().unwrap() else {
            panic!("expected a ref");
        };
        assert_eq!(
            (r.name.as_str(), r.namespace.as_deref()),
            ("x-routes", None)
        );
    }

    #[test]
    fn unknown_field_is_rejected() {
        let err = serde_yaml_ng::from_str::<RouteTableSpec>("routes: []\nweigth: 1").unwrap_err();
        assert!(err.to_string().contains("weigth"), "{err}");
    }
}
