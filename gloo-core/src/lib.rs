//! # gloo-core
//!
//! The control-plane brain of gloo: Gloo Edge's resource model (Gateway, VirtualService,
//! RouteTable, Upstream, ... with exactly Gloo's YAML/JSON schema), config sources,
//! validation with hierarchical statuses, route delegation, last-known-good, and translation
//! to Envoy xDS v3 resources. It opens no sockets: serving xDS is gloo-xds's job, serving
//! traffic is gloo-proxy's.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod load;
pub mod model;
pub mod resolve;
pub mod scope;
pub mod snapshot;
pub mod source;
pub mod status;
pub mod translate;
pub mod xds;
