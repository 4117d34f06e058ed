//! # gloo-xds
//!
//! The xDS v3 side of gloo, knowing nothing of Gloo resources: a [`cache::SnapshotCache`]
//! keyed by node role (`<namespace>~<proxyName>`, Envoy's `node.metadata.role` in Gloo's
//! convention), and a tonic [`server::XdsServer`] with the Aggregated Discovery Service in
//! state-of-the-world and delta forms. Versions are content hashes, so only what changed is
//! sent; NACKs are logged with the node and the client's error, and kept for inspection.
//!
//! [`client::AdsClient`] follows a server the other way round: it subscribes, validates, ACKs or
//! NACKs, keeps the last accepted state and reconnects (gloo-proxy's `gloo proxy` uses it).
//!
//! gloo-core's `ProxyResources::by_type_url` gives the `(name, version, Any)` triples a
//! [`cache::Snapshot`] holds.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cache;
pub mod client;
pub mod server;

pub use cache::{Snapshot, SnapshotCache};
pub use server::{Nack, ServerOptions, XdsServer};
