//! # gloo-proxy
//!
//! The Rust data plane of gloo (hyper/tokio listeners, routing, clusters, per-route tower
//! stacks) driven by the same Envoy xDS resources gloo-core produces, and the `gloo` binary.
//!
//! At this stage the crate carries the `gloo` command line: `gloo validate` and
//! `gloo translate` ([`cli`]) and `gloo control-plane` ([`control_plane`]), which serves the
//! translation to Envoy fleets over xDS. The proxy itself, `gloo run` and `gloo proxy` follow.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod control_plane;
