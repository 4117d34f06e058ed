//! # gloo-proxy
//!
//! The Rust data plane of gloo, and the `gloo` binary.
//!
//! The proxy is configured only by Envoy xDS resources (Listener, RouteConfiguration,
//! Cluster, ClusterLoadAssignment), the same ones gloo-core produces for Envoy fleets, so one
//! translation has one meaning wherever it runs:
//!
//! - [`gateway`]: the proxy as a whole, fed from the in-process snapshot cache (`gloo run`) or
//!   over delta ADS (`gloo proxy`);
//! - [`config`]: resources compiled into the run-time configuration, reusing what did not
//!   change;
//! - [`router`]: Envoy's routing semantics (domains, path / header / query matchers, actions);
//! - [`upstream`]: clusters (load balancing, health checks, outlier detection, circuit
//!   breakers, connection pools);
//! - [`proxy`]: the request path (normalisation, filters, forwarding, retries, timeouts,
//!   mirrors);
//! - [`filter`]: the registry turning HTTP filter configs into per-route tower stacks;
//!   [`builtin`] holds the filters the proxy implements itself, `ratelimit` (feature
//!   `ratelimit`) serves Envoy's local rate limit with gloo-filters' layer,
//!   `global_ratelimit` (feature `ratelimit`) Envoy's global rate limit filter with
//!   gloo-filters' layer and rate limit service client, `jwt` (feature `jwt`) Envoy's JWT
//!   authentication with gloo-filters' verifier, `extauth` (feature `extauth`) Envoy's
//!   ext_authz filter with gloo-filters' client, calling the server through the proxy's own
//!   clusters, `waf` (feature `waf`, off by default) envoy-gloo's ModSecurity filter with
//!   gloo-filters' WAF, and `aws_lambda` (feature `aws-lambda`) envoy-gloo's Lambda filter
//!   with gloo-filters' invocation layer;
//! - [`server`], [`proxy_protocol`], [`admin`], [`stats`]: listeners, the PROXY protocol, the
//!   admin endpoint and its statistics;
//! - [`command`]: the `gloo` command line; [`cli`], [`control_plane`], [`run`]: its
//!   subcommands; [`rate_limit_server`] and [`ext_auth_server`]: the rate limit and ext auth
//!   services `gloo run` and `gloo control-plane` host ([`hosting`]: what they share);
//!   [`sources`]: the config sources and discovery plugins (features `kubernetes`, `consul`,
//!   `ec2`, `lambda`) they start as the Settings say.
//!
//! # Embedding
//!
//! Your own gateway binary: gloo's control plane (gloo-core translating a watched directory
//! of Gloo YAML) and this proxy in one process, as `gloo run` is, with a filter of your own
//! on every route ([`filter`] says how to write one):
//!
//! ```no_run
//! use gloo_proxy::body::Body;
//! use gloo_proxy::control_plane::{ControlPlane, WRITE_NAMESPACE};
//! use gloo_proxy::filter::FilterLayer;
//! use gloo_proxy::gateway::{feed_from_cache, ProxyServer};
//! use tower::util::MapResponseLayer;
//!
//! /// Adds `x-powered-by: my-gateway` to every response.
//! fn powered_by(mut response: http::Response<Body>) -> http::Response<Body> {
//!     let value = http::HeaderValue::from_static("my-gateway");
//!     response.headers_mut().insert("x-powered-by", value);
//!     response
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // gloo-core: watch the directory, translate it into an in-process snapshot cache.
//!     let control_plane = ControlPlane::start("gloo-config".as_ref(), None)?;
//!     // gloo-proxy: serve the `gateway-proxy` proxy's share of it, read from the cache
//!     // directly (no xDS hop), until the process stops.
//!     let role = format!("{WRITE_NAMESPACE}~gateway-proxy");
//!     let feed = feed_from_cache(control_plane.cache().clone(), &role);
//!     let powered_by = FilterLayer::new(MapResponseLayer::new(powered_by));
//!     ProxyServer::new()
//!         .filter_everywhere("example.powered_by", powered_by)
//!         .admin("127.0.0.1:19000".parse().ok())
//!         .run(feed)
//!         .await?;
//!     Ok(())
//! }
//! ```
//!
//! [`run::run`] is the whole of `gloo run` (with the rate limit and ext auth services and
//! the Settings' discovery), [`run::shard`] a proxy fed over xDS by a remote control plane.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod access_log;
pub mod admin;
#[cfg(feature = "aws-lambda")]
pub mod aws_lambda;
pub mod body;
pub mod builtin;
pub mod cli;
pub mod command;
pub mod config;
pub mod control_plane;
pub mod ext_auth_server;
#[cfg(feature = "extauth")]
pub mod extauth;
pub mod filter;
pub mod gateway;
#[cfg(feature = "ratelimit")]
pub mod global_ratelimit;
mod head;
pub mod hosting;
#[cfg(feature = "jwt")]
pub mod jwt;
pub mod proxy;
pub mod proxy_protocol;
pub mod rate_limit_server;
#[cfg(feature = "ratelimit")]
pub mod ratelimit;
pub mod router;
pub mod run;
pub mod server;
pub mod sources;
pub mod stats;
pub mod tcp;
pub mod tls;
pub mod trace;
#[cfg(feature = "transform")]
pub mod transform;
pub mod upstream;
#[cfg(feature = "waf")]
pub mod waf;
pub mod xfcc;
