//! # gloo-discovery
//!
//! Service discovery for gloo: the [`Discovery`] plugin trait, the [`DiscoveryRunner`] that runs
//! plugins beside a config source, and gloo's own plugins, each behind a cargo feature:
//! Kubernetes services (`<namespace>-<service>-<port>` upstreams), Consul (`consul-svc:<name>`
//! with `tag_<t>` / `dc_<dc>` endpoint labels), EC2 instances matching tag filters, and AWS
//! Lambda functions.
//!
//! Plugins publish upstreams (Gloo's UDS) and endpoints (Gloo's EDS). Discovered upstreams join
//! the config source's resources (what a user wrote wins over a discovered upstream of the same
//! name); endpoints travel as changes (only the upstreams that changed, each list shared, not
//! copied: [`RunningDiscovery::endpoint_updates`]) to
//! [`Translator::apply_endpoint_changes`](gloo_core::translate::Translator::apply_endpoint_changes),
//! the fast path that rebuilds only the changed ClusterLoadAssignments and translates no route.
//!
//! Write your own plugin by implementing [`Discovery`]; `examples/` has one that reads a file.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "consul")]
pub mod consul;
#[cfg(feature = "kubernetes-unversioned")]
pub mod kubernetes;
mod plugin;
mod runner;

pub use plugin::{
    BoxFuture, Discovery, DiscoveryContext, DiscoveryError, Functions, Publisher, Upstream,
    Upstreams,
};
pub use runner::{DiscoveryRunner, EndpointUpdates, RunningDiscovery};
