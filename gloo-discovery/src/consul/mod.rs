//! Consul (feature `consul`): Gloo's Consul service discovery and its Consul KV config source,
//! over Consul's HTTP API with blocking queries.
//!
//! - [`ConsulDiscovery`] is a [`Discovery`](crate::Discovery) plugin: one upstream per Consul
//!   service (`gloo-system/consul-svc:<name>`) and the instances of every `consul` upstream in
//!   force, labelled `tag_<t>` / `dc_<dc>` for subsets, with Consul's health.
//! - [`ConsulKvSource`] is a [`ConfigSource`](gloo_core::source::ConfigSource) reading Gloo
//!   resources from Consul KV (Gloo's `consulKvSource`).
//! - [`ConsulClient`] is the small HTTP client both use (no Consul SDK): the agent address,
//!   data center, ACL token (`X-Consul-Token`) and blocking wait come from [`ConsulConfig`],
//!   which reads Gloo's `Settings.consul`.
//!
//! Every watch is a blocking query (`index` = the last `X-Consul-Index`, `wait`): a change
//! reaches gloo as soon as Consul commits it, and nothing polls. An index that goes backwards
//! starts over from 0, as Consul's docs prescribe ([`next_index`]).
//!
//! ```no_run
//! use std::sync::Arc;
//! use gloo_core::source::DirectorySource;
//! use gloo_discovery::consul::{ConsulClient, ConsulConfig, ConsulDiscovery};
//! use gloo_discovery::DiscoveryRunner;
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let client = ConsulClient::new(ConsulConfig::new("127.0.0.1:8500").token("s3cr3t"))?;
//! let running = DiscoveryRunner::new()
//!     .plugin(ConsulDiscovery::new(client))
//!     .start(Arc::new(DirectorySource::watch("./gloo-config")?));
//! // `running` is a ConfigSource with the `consul-svc:*` upstreams added; feed
//! // `running.endpoints()` to Translator::update_endpoints.
//! # Ok(()) }
//! ```

mod client;
mod discovery;
mod kv;

pub use client::{
    next_index, AgentService, Blocking, BlockingIndex, ConsulClient, ConsulConfig, ConsulError,
    HealthCheck, KvPair, Node, ServiceEntry,
};
pub use discovery::{
    upstream_ref, ConsulDiscovery, DATA_CENTER_KEY_PREFIX, DEFAULT_TLS_TAG, TAG_KEY_PREFIX,
    UPSTREAM_NAME_PREFIX,
};
pub use kv::{ConsulKvSource, DEFAULT_ROOT_KEY};
