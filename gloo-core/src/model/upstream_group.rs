//! The `UpstreamGroup` resource: `gloo.solo.io.UpstreamGroup` of Gloo's
//! `gloo/api/v1/proxy.proto`. Destinations are in [`crate::model::routing`].
//!
//! An upstream group splitting traffic 90/10, and a route that sends traffic to it:
//!
//! ```
//! use gloo_core::load::{parse_str, Format};
//! use gloo_core::model::routing::{DestinationTarget, RouteActionRef, RouteDestination};
//! use gloo_core::model::{Resource, ResourceRef};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//!
//! let yaml = r#"
//! apiVersion: gloo.solo.io/v1
//! kind: UpstreamGroup
//! metadata:
//!   name: my-service-group
//!   namespace: gloo-system
//! spec:
//!   destinations:
//!   - destination:
//!       upstream:
//!         name: default-myservice-v1-8080
//!         namespace: gloo-system
//!     weight: 9
//!   - destination:
//!       upstream:
//!         name: default-myservice-v2-8080
//!         namespace: gloo-system
//!     weight: 1
//! ---
//! apiVersion: gateway.solo.io/v1
//! kind: VirtualService
//! metadata:
//!   name: my-service
//!   namespace: gloo-system
//! spec:
//!   virtualHost:
//!     domains:
//!     - '*'
//!     routes:
//!     - matchers:
//!       - prefix: /myservice
//!       routeAction:
//!         upstreamGroup:
//!           name: my-service-group
//!           namespace: gloo-system
//! "#;
//! let parsed = parse_str(yaml, "my-service.yaml", Format::Yaml);
//! assert!(parsed.is_ok(), "{:?}", parsed.errors);
//! let Resource::UpstreamGroup(group) = &parsed.resources[0].resource else {
//!     panic!("expected an UpstreamGroup");
//! };
//! let weights: Vec<_> = group.spec.destinations.iter().map(|d| d.weight).collect();
//! assert_eq!(weights, [Some(9), Some(1)]);
//! let v1 = ResourceRef::new("gloo-system", "default-myservice-v1-8080");
//! let first = group.spec.destinations[0].destination.as_ref().ok_or("no destination")?;
//! assert_eq!(first.target()?, Some(DestinationTarget::Upstream(&v1)));
//!
//! let Resource::VirtualService(vs) = &parsed.resources[1].resource else {
//!     panic!("expected a VirtualService");
//! };
//! let route = &vs.spec.virtual_host.as_ref().ok_or("no virtualHost")?.routes[0];
//! let Some(RouteActionRef::Route(action)) = route.action()? else {
//!     panic!("expected a routeAction");
//! };
//! let group_ref = group.to_ref();
//! assert_eq!(action.destination()?, Some(RouteDestination::UpstreamGroup(&group_ref)));
//! # Ok(())
//! # }
//! ```

use serde::{Deserialize, Serialize};

use crate::model::routing::WeightedDestination;

/// A named, reusable set of weighted destinations (`gloo.solo.io.UpstreamGroup`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpstreamGroupSpec {
    /// The destinations and their weights.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<WeightedDestination>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::routing::{DestinationTarget, RouteDestination};
    use crate::model::ResourceRef;

    // docs/content/guides/traffic_management/destination_types/upstream_groups/_index.md
    const DOC: &str = r#"
apiVersion: gloo.solo.io/v1
kind: UpstreamGroup
metadata:
  name: my-service-group
  namespace: gloo-system
spec:
  destinations:
  - destination:
      upstream:
        name: default-myservice-v1-8080
        namespace: gloo-system
    weight: 9
  - destination:
      upstream:
        name: default-myservice-v2-8080
        namespace: gloo-system
    weight: 1
"#;

    #[test]
    fn parses_docs_example_and_round_trips() {
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(DOC).unwrap();
        let ug: UpstreamGroupSpec = serde_yaml_ng::from_value(v["spec"].clone()).unwrap();
        assert_eq!(ug.destinations.len(), 2);
        assert_eq!(ug.destinations[0].weight, Some(9));
        assert_eq!(
            ug.destinations[1]
                .destination
                .as_ref()
                .unwrap()
                .target()
                .unwrap(),
            Some(DestinationTarget::Upstream(&ResourceRef::new(
                "gloo-system",
                "default-myservice-v2-8080"
            )))
        );
        let json = serde_json::to_string(&ug).unwrap();
        let back: UpstreamGroupSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(ug, back);
    }

    // The same guide's route referencing the group.
    #[test]
    fn route_action_references_group() {
        let routes: Vec<crate::model::routing::Route> = serde_yaml_ng::from_str(
            r#"
- matchers:
   - prefix: /myservice
  routeAction:
    upstreamGroup:
      name: my-service-group
      namespace: gloo-system
"#,
        )
        .unwrap();
        let action = routes[0].route_action.as_ref().unwrap();
        assert_eq!(
            action.destination().unwrap(),
            Some(RouteDestination::UpstreamGroup(&ResourceRef::new(
                "gloo-system",
                "my-service-group"
            )))
        );
    }

    // docs/content/guides/traffic_management/destination_types/subsets/_index.md style
    // destinations with kube/consul targets, subsets and weighted options.
    #[test]
    fn parses_other_destination_kinds() {
        let ug: UpstreamGroupSpec = serde_yaml_ng::from_str(
            r#"
destinations:
- destination:
    kube:
      ref: {name: petstore, namespace: default}
      port: 8080
  weight: 1
  options:
    headerManipulation:
      requestHeadersToRemove: [x-canary]
- destination:
    consul:
      serviceName: db
      tags: [v1]
      dataCenters: [dc1]
    subset:
      values: {version: v1}
    destinationSpec:
      aws:
        logicalName: my-fn
        invocationStyle: ASYNC
        unwrapAsAlb: true
"#,
        )
        .unwrap();
        let d0 = ug.destinations[0].destination.as_ref().unwrap();
        let Some(DestinationTarget::Kube(k)) = d0.target().unwrap() else {
            panic!("expected kube");
        };
        assert_eq!(k.port, 8080);
        let d1 = ug.destinations[1].destination.as_ref().unwrap();
        assert!(
            matches!(d1.target().unwrap(), Some(DestinationTarget::Consul(c)) if c.service_name == "db")
        );
        assert_eq!(d1.subset.as_ref().unwrap().values["version"], "v1");
        let aws = d1.destination_spec.as_ref().unwrap().aws.as_ref().unwrap();
        assert_eq!(
            aws.invocation_style,
            crate::model::routing::InvocationStyle::Async
        );
        assert!(aws.unwrap_as_alb);
        let json = serde_json::to_string(&ug).unwrap();
        assert_eq!(
            ug,
            serde_json::from_str::<UpstreamGroupSpec>(&json).unwrap()
        );
    }

    #[test]
    fn unknown_field_is_rejected() {
        let err = serde_yaml_ng::from_str::<UpstreamGroupSpec>(
            "destinations:\n- weight: 1\n  upstream: {name: a}",
        )
        .unwrap_err();
        assert!(err.to_string().contains("upstream"), "{err}");
    }
}
