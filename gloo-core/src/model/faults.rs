//! Fault injection options: Gloo's `options/faultinjection/fault.proto`
//! (`fault.options.gloo.solo.io.RouteFaults`).
//!
//! A route that aborts 2.5% of requests with a 503 and delays 5.3% of them by 5 seconds:
//!
//! ```
//! use gloo_core::load::{parse_str, Format};
//! use gloo_core::model::{Duration, Resource};
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
//!             name: default-petstore-8080
//!             namespace: gloo-system
//!       options:
//!         faults:
//!           abort:
//!             percentage: 2.5
//!             httpStatus: 503
//!           delay:
//!             percentage: 5.3
//!             fixedDelay: 5s
//! "#;
//! let parsed = parse_str(yaml, "default.yaml", Format::Yaml);
//! assert!(parsed.is_ok(), "{:?}", parsed.errors);
//! let Resource::VirtualService(vs) = &parsed.resources[0].resource else {
//!     panic!("expected a VirtualService");
//! };
//! let route = &vs.spec.virtual_host.as_ref().ok_or("no virtualHost")?.routes[0];
//! let faults = route.options.as_ref().and_then(|o| o.faults.as_ref()).ok_or("no faults")?;
//!
//! let abort = faults.abort.as_ref().ok_or("no abort")?;
//! assert_eq!((abort.percentage, abort.http_status), (2.5, 503));
//! let delay = faults.delay.as_ref().ok_or("no delay")?;
//! assert_eq!(delay.percentage, 5.3);
//! assert_eq!(delay.fixed_delay, Some(Duration::from_secs(5)));
//! # Ok(())
//! # }
//! ```

use serde::{Deserialize, Serialize};

use crate::model::Duration;

/// Faults to inject into requests on a route.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteFaults {
    /// Abort a percentage of requests with an HTTP status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<RouteAbort>,
    /// Delay a percentage of requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<RouteDelay>,
}

/// Abort fault.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteAbort {
    /// Percentage of requests to abort (0-100).
    #[serde(default)]
    pub percentage: f64,
    /// Status code to respond with (200-599).
    #[serde(alias = "http_status", default)]
    pub http_status: u32,
}

/// Delay fault.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteDelay {
    /// Percentage of requests to delay (0-100).
    #[serde(default)]
    pub percentage: f64,
    /// How long to delay them.
    #[serde(
        alias = "fixed_delay",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub fixed_delay: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    // docs/content/guides/traffic_management/request_processing/faults/_index.md
    const DOC: &str = r#"
abort:
  percentage: 2.5
  httpStatus: 503
delay:
  percentage: 5.3
  fixedDelay: '5s'
"#;

    #[test]
    fn parses_docs_example_and_round_trips() {
        let f: RouteFaults = serde_yaml_ng::from_str(DOC).unwrap();
        let abort = f.abort.clone().unwrap();
        assert_eq!(abort.percentage, 2.5);
        assert_eq!(abort.http_status, 503);
        let delay = f.delay.clone().unwrap();
        assert_eq!(delay.fixed_delay, Some(Duration::from_secs(5)));
        let json = serde_json::to_string(&f).unwrap();
        let back: RouteFaults = serde_json::from_str(&json).unwrap();
        assert_eq!(f, back);
    }

    #[test]
    fn unknown_field_is_rejected() {
        let err = serde_yaml_ng::from_str::<RouteFaults>("abort:\n  status: 503").unwrap_err();
        assert!(err.to_string().contains("status"), "{err}");
    }
}
