//! # gloo-xds
//!
//! The xDS v3 side of gloo, knowing nothing of Gloo resources: a snapshot cache keyed by node
//! role (`<namespace>~<proxyName>`), a tonic server with the Aggregated Discovery Service in
//! state-of-the-world and delta forms plus the per-type services (LDS, RDS, CDS, EDS), and the
//! ADS client gloo-proxy subscribes with. It serves the versioned resources gloo-core
//! translates (`gloo_core::xds::ProxyResources` converts to `(name, version, Any)` triples).
//!
//! This crate is filled in by the xDS issue; today it only reserves its place in the workspace.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
