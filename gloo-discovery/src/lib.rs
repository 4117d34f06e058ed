//! # gloo-discovery
//!
//! The `Discovery` plugin trait and gloo's discovery plugins: Kubernetes services
//! (`<namespace>-<service>-<port>` upstreams), Consul (`consul-svc:<name>` with `tag_<t>` /
//! `dc_<dc>` endpoint labels), EC2 instances matching tag filters, and AWS Lambda functions,
//! each behind its own cargo feature. Plugins publish upstreams and endpoints that
//! `gloo_core::translate::Translator::update_endpoints` turns into EDS updates without
//! re-translating routes.
//!
//! This crate is filled in by the discovery issue; today it only reserves its place in the
//! workspace.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
