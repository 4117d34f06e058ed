//! Statuses, hierarchical like Gloo's: every resource is Accepted, Warning or Rejected with
//! precise reasons, and each proxy reports its listeners, virtual hosts and routes.
//!
//! How a resource's state follows from what is reported about it, and the forms a report is read
//! in (text for people, JSON for the admin endpoint):
//!
//! ```
//! use gloo_core::load::Origin;
//! use gloo_core::model::{Kind, ResourceRef};
//! use gloo_core::status::{Reports, ResourceKey, State};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//!
//! let petstore = ResourceRef::new("gloo-system", "petstore");
//! let key = ResourceKey::new(Kind::VirtualService, petstore.clone());
//! let state = |reports: &Reports| reports.get(Kind::VirtualService, &petstore).map(|s| s.state);
//!
//! let mut reports = Reports::default();
//! reports.accept(key.clone(), Some(&Origin::new("petstore.yaml", 1)));
//! assert_eq!(state(&reports), Some(State::Accepted));
//!
//! // A warning leaves the resource in force; an error rejects it, whatever else is reported.
//! reports.warn(&key, "spec.virtualHost.routes[0]: Upstream gloo-system.petstore not found");
//! assert_eq!(state(&reports), Some(State::Warning));
//! reports.error(&key, "spec.virtualHost.domains: `*` is listed twice");
//! reports.warn(&key, "spec.virtualHost.routes[1]: Upstream gloo-system.orders not found");
//! assert_eq!(state(&reports), Some(State::Rejected));
//! assert!(reports.has_rejections());
//!
//! assert_eq!(
//!     reports.to_text().lines().collect::<Vec<_>>(),
//!     [
//!         "VirtualService gloo-system.petstore: Rejected (petstore.yaml:1)",
//!         "  error: spec.virtualHost.domains: `*` is listed twice",
//!         "  warning: spec.virtualHost.routes[0]: Upstream gloo-system.petstore not found",
//!         "  warning: spec.virtualHost.routes[1]: Upstream gloo-system.orders not found",
//!     ]
//! );
//! let json = serde_json::to_value(&reports)?;
//! let status = &json["resources"]["VirtualService gloo-system.petstore"];
//! assert_eq!(status["state"], "Rejected");
//! assert_eq!(status["origin"], "petstore.yaml:1");
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::load::Origin;
use crate::model::{Kind, ResourceRef};

/// The outcome for one resource or sub-resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Default)]
pub enum State {
    /// Valid and in force.
    #[default]
    Accepted,
    /// In force, with something the user should look at (a missing upstream, a dropped route).
    Warning,
    /// Invalid: the previous accepted version (if any) stays in force.
    Rejected,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Accepted => "Accepted",
            State::Warning => "Warning",
            State::Rejected => "Rejected",
        })
    }
}

/// The status of one resource.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceStatus {
    /// Accepted, Warning or Rejected.
    pub state: State,
    /// Why it is Rejected, each `field path: message`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// What to look at, each `field path: message`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Where the resource was read from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

impl ResourceStatus {
    fn refresh_state(&mut self) {
        self.state = if !self.errors.is_empty() {
            State::Rejected
        } else if !self.warnings.is_empty() {
            State::Warning
        } else {
            State::Accepted
        };
    }
}

/// A resource's identity in reports: its kind and `namespace.name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceKey {
    /// The kind.
    pub kind: Kind,
    /// Namespace and name (namespace always filled in).
    pub reference: ResourceRef,
}

impl ResourceKey {
    /// The key of `kind` `reference`.
    pub fn new(kind: Kind, reference: ResourceRef) -> Self {
        ResourceKey { kind, reference }
    }
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.reference)
    }
}

/// The status of one route in a proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteStatus {
    /// The Envoy route name.
    pub name: String,
    /// Which resource and route produced it (`VirtualService ns.name routes[2]`).
    pub source: String,
    /// Accepted or Warning (rejected routes are not in the proxy).
    pub state: State,
    /// Warnings for this route.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The status of one virtual host in a proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualHostStatus {
    /// The VirtualService it came from.
    pub virtual_service: String,
    /// Worst state of itself and its routes.
    pub state: State,
    /// Its routes, in match order.
    pub routes: Vec<RouteStatus>,
}

/// The status of one listener in a proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerStatus {
    /// The Gateway it came from.
    pub gateway: String,
    /// Worst state of its virtual hosts.
    pub state: State,
    /// Virtual hosts by name.
    pub virtual_hosts: BTreeMap<String, VirtualHostStatus>,
}

/// The status of one proxy: Proxy → Listener → VirtualHost → Route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ProxyStatus {
    /// Worst state of its listeners, or Rejected when a connected client refused this
    /// configuration.
    pub state: State,
    /// Listeners by name.
    pub listeners: BTreeMap<String, ListenerStatus>,
    /// Clients (Envoy, gRPC) that refused this configuration (NACK); each keeps the last
    /// version it accepted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rejected_by_clients: Vec<ClientRejection>,
}

/// A client's refusal (NACK) of what it was served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientRejection {
    /// The client's node id.
    pub node: String,
    /// The resource type it refused.
    pub type_url: String,
    /// The client's error message.
    pub error: String,
}

impl ProxyStatus {
    /// Records a client's refusal: the proxy becomes Rejected.
    pub fn record_rejection(&mut self, rejection: ClientRejection) {
        if !self.rejected_by_clients.contains(&rejection) {
            self.rejected_by_clients.push(rejection);
        }
        self.state = State::Rejected;
    }
}

/// Every status of one translation: per resource and per proxy.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reports {
    /// Per resource, keyed by `Kind namespace.name`.
    #[serde(serialize_with = "serialize_keyed")]
    pub resources: BTreeMap<ResourceKey, ResourceStatus>,
    /// Per proxy name.
    pub proxies: BTreeMap<String, ProxyStatus>,
    /// Documents that could not be read at all (`file:line:column: message`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub load_errors: Vec<String>,
}

fn serialize_keyed<S: serde::Serializer>(
    map: &BTreeMap<ResourceKey, ResourceStatus>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(map.iter().map(|(k, v)| (k.to_string(), v)))
}

impl Reports {
    /// Registers a resource as Accepted (unless something is reported about it).
    pub fn accept(&mut self, key: ResourceKey, origin: Option<&Origin>) {
        let status = self.resources.entry(key).or_default();
        if status.origin.is_none() {
            status.origin = origin.map(|o| o.to_string());
        }
    }

    /// Records an error: the resource becomes Rejected.
    pub fn error(&mut self, key: &ResourceKey, message: impl Into<String>) {
        let status = self.resources.entry(key.clone()).or_default();
        let message = message.into();
        if !status.errors.contains(&message) {
            status.errors.push(message);
        }
        status.refresh_state();
    }

    /// Records a warning: the resource becomes Warning unless it is Rejected.
    pub fn warn(&mut self, key: &ResourceKey, message: impl Into<String>) {
        let status = self.resources.entry(key.clone()).or_default();
        let message = message.into();
        if !status.warnings.contains(&message) {
            status.warnings.push(message);
        }
        status.refresh_state();
    }

    /// The status of a resource, if it was seen.
    pub fn get(&self, kind: Kind, reference: &ResourceRef) -> Option<&ResourceStatus> {
        self.resources
            .get(&ResourceKey::new(kind, reference.clone()))
    }

    /// True if any resource is Rejected or any document failed to load.
    pub fn has_rejections(&self) -> bool {
        !self.load_errors.is_empty() || self.resources.values().any(|s| s.state == State::Rejected)
    }

    /// A human-readable listing, one resource per line followed by its reasons.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for error in &self.load_errors {
            out.push_str(&format!("error: {error}\n"));
        }
        for (key, status) in &self.resources {
            let origin = status
                .origin
                .as_deref()
                .map(|o| format!(" ({o})"))
                .unwrap_or_default();
            out.push_str(&format!("{key}: {}{origin}\n", status.state));
            for e in &status.errors {
                out.push_str(&format!("  error: {e}\n"));
            }
            for w in &status.warnings {
                out.push_str(&format!("  warning: {w}\n"));
            }
        }
        out
    }
}
