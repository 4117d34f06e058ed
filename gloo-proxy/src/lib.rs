//! # gloo-proxy
//!
//! The Rust data plane of gloo (hyper/tokio listeners, routing, clusters, per-route tower
//! stacks) driven by the same Envoy xDS resources gloo-core produces, and the `gloo` binary.
//!
//! At this stage the crate carries the `gloo` command line: `gloo validate` and
//! `gloo translate`, built on [`cli`]. The proxy itself, `gloo run`, `gloo control-plane` and
//! `gloo proxy` follow.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
