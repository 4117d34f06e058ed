//! The rate limit service `gloo run` and `gloo control-plane` host in-process, as Gloo's
//! default install runs its rate-limit server next to the gateway: Envoy's
//! `envoy.service.ratelimit.v3.RateLimitService` (gloo-filters'
//! [`RateLimitService`](gloo_filters::rls::RateLimitService)), loaded with what the
//! configuration in force asks for (gloo-core's
//! [`rate_limit_server_configs`](gloo_core::translate::rate_limit_server_configs): the
//! Settings' descriptors in domain `custom`, the RateLimitConfigs' in `crd`, the basic limits'
//! in `ingress`) and updated live.
//!
//! * **Where it listens**: [`RateLimitListen`]: an address, `off`, or (the default) Gloo's
//!   `127.0.0.1:18081` as soon as a Settings names a `ratelimitServer`. The Settings' upstream
//!   is what the proxies call, so point it at this address (Gloo's default rate-limit service
//!   listens on port 18081 too). An address that cannot be bound is retried every second (and
//!   logged), as the proxy's listeners are.
//! * **Where it counts**: in memory (one process), or in Redis (`--redis-url`, else Gloo's
//!   `REDIS_URL`), so several services, and in-process limiters, share one budget. A Gloo-style
//!   `host:port` URL is read as `redis://host:port`.
//! * **Updates**: every configuration change is applied at once, domain by domain; a domain
//!   the limiter refuses (an invalid descriptor tree) keeps its last good rules, and the
//!   refusal is logged. Domains that disappear are dropped.
//!
//! The hosting needs the `ratelimit` feature (on by default); without it, asking for a
//! service is an error.
//!
//! ```
//! use gloo_proxy::control_plane::ControlPlane;
//! use gloo_proxy::rate_limit_server::{redis_url, RateLimitListen, RateLimitServerOptions};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! std::fs::write(
//!     dir.path().join("settings.yaml"),
//!     r#"
//! apiVersion: gloo.solo.io/v1
//! kind: Settings
//! metadata: {name: default, namespace: gloo-system}
//! spec:
//!   ratelimitServer:
//!     ratelimitServerRef: {name: rate-limit, namespace: gloo-system}
//!   ratelimit:
//!     descriptors:
//!     - key: generic_key
//!       value: per-minute
//!       rateLimit: {requestsPerUnit: 10, unit: MINUTE}
//! ---
//! apiVersion: gloo.solo.io/v1
//! kind: Upstream
//! metadata: {name: rate-limit, namespace: gloo-system}
//! spec: {static: {hosts: [{addr: 127.0.0.1, port: 18081}]}}
//! "#,
//! )?;
//! let control_plane = ControlPlane::start(dir.path(), None)?;
//!
//! // What the service must load, announced on every accepted change: the Settings'
//! // descriptors in domain `custom`, and that a Settings names a server (so `auto` listens).
//! let configs = control_plane.rate_limits().borrow().clone();
//! assert!(configs.server_named);
//! assert_eq!(configs.configs[0].domain.as_deref(), Some("custom"));
//!
//! // `--ratelimit-server auto --redis-url redis:6379`: Gloo's `REDIS_URL` form is accepted.
//! let options = RateLimitServerOptions {
//!     listen: "auto".parse()?,
//!     redis_url: Some("redis:6379".into()),
//! };
//! assert_eq!(options.listen, RateLimitListen::Auto);
//! assert_eq!(redis_url("redis:6379"), "redis://redis:6379");
//! // `control_plane.host_rate_limit_service(&options)?` would now listen on 127.0.0.1:18081
//! // and count in that Redis, until the returned guard is dropped.
//! # Ok(())
//! # }
//! ```

use std::net::SocketAddr;

use gloo_core::model::ratelimit::ServerRateLimitConfig;

/// Gloo's rate-limit service address.
pub const DEFAULT_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 18081);

/// What the rate limit service must load for the configuration in force.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RateLimitConfigs {
    /// Per domain, its descriptors.
    pub configs: Vec<ServerRateLimitConfig>,
    /// Whether a Settings names a rate limit server (`ratelimitServer.ratelimitServerRef`).
    pub server_named: bool,
}

/// Where the hosted rate limit service listens: `auto` is [`DEFAULT_ADDR`] once a Settings
/// names a rate limit server.
pub type RateLimitListen = crate::hosting::Listen;

/// How `gloo run` and `gloo control-plane` host the rate limit service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimitServerOptions {
    /// Where it listens.
    pub listen: RateLimitListen,
    /// The Redis it counts in (`redis://...`, or Gloo's `host:port`); `None`: in memory.
    pub redis_url: Option<String>,
}

/// Why the rate limit service could not be hosted.
#[derive(Debug, thiserror::Error)]
pub enum RateLimitServerError {
    /// The Redis URL is malformed.
    #[error("rate limit service: cannot use Redis at {url:?}: {reason}")]
    Redis {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// This build has no rate limiting.
    #[error("rate limit service: this gloo was built without the `ratelimit` feature")]
    Unsupported,
}

/// A Redis URL as the `redis` crate reads it: Gloo's `REDIS_URL` is `host:port`.
pub fn redis_url(url: &str) -> String {
    if url.contains("://") {
        url.to_string()
    } else {
        format!("redis://{url}")
    }
}

#[cfg(feature = "ratelimit")]
pub use self::hosted::RateLimitServer;

#[cfg(feature = "ratelimit")]
mod hosted {
    use std::collections::BTreeMap;
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex, PoisonError};

    use crate::hosting::{serve_grpc, Host};

    use gloo_core::model::ratelimit::{
        Descriptor as GlooDescriptor, RateLimit as GlooRateLimit, RateLimitUnit,
        ServerRateLimitConfig,
    };
    use gloo_filters::ratelimit::global::{
        Descriptor, MemoryStore, RateLimit, RateLimitDomain, RateLimiter, SetDescriptor, Unit,
    };
    use gloo_filters::ratelimit::redis::RedisStore;
    use gloo_filters::rls::RateLimitService;
    use tokio::sync::watch;

    use super::{
        redis_url, RateLimitConfigs, RateLimitListen, RateLimitServerError, RateLimitServerOptions,
        DEFAULT_ADDR,
    };

    /// The limiter, counting in memory or in Redis.
    #[derive(Clone)]
    enum Limiter {
        Memory(RateLimiter<MemoryStore>),
        Redis(RateLimiter<RedisStore>),
    }

    impl Limiter {
        fn set_domains(&self, domains: Vec<RateLimitDomain>) -> Result<(), String> {
            match self {
                Limiter::Memory(l) => l.set_domains(domains),
                Limiter::Redis(l) => l.set_domains(domains),
            }
            .map_err(|e| e.to_string())
        }
    }

    /// The hosted rate limit service (see the [module docs](super)).
    pub struct RateLimitServer {
        limiter: Limiter,
        listen: RateLimitListen,
        counting: String,
        host: Arc<Host>,
        /// The rules in force, by domain (the last good version of each).
        domains: Mutex<BTreeMap<String, RateLimitDomain>>,
    }

    impl std::fmt::Debug for RateLimitServer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("RateLimitServer")
                .field("listen", &self.listen)
                .field("counting", &self.counting)
                .field("local_addr", &self.local_addr())
                .finish()
        }
    }

    impl RateLimitServer {
        /// A service without rules yet, counting where `options` say. Must be called within a
        /// Tokio runtime (the Redis connection is managed by a task).
        pub fn new(options: &RateLimitServerOptions) -> Result<Self, RateLimitServerError> {
            let (limiter, counting) = match &options.redis_url {
                None => (
                    Limiter::Memory(RateLimiter::new(MemoryStore::new())),
                    "in memory".to_string(),
                ),
                Some(url) => {
                    let url = redis_url(url);
                    let store = RedisStore::new(&url).map_err(|e| RateLimitServerError::Redis {
                        url: url.clone(),
                        reason: e.to_string(),
                    })?;
                    (
                        Limiter::Redis(RateLimiter::new(store)),
                        format!("in Redis at {url}"),
                    )
                }
            };
            let serving = limiter.clone();
            let host = Host::new("rate limit service", move |incoming| match &serving {
                Limiter::Memory(l) => tokio::spawn(serve_grpc(
                    "rate limit service",
                    RateLimitService::new(l.clone()).into_server(),
                    incoming,
                )),
                Limiter::Redis(l) => tokio::spawn(serve_grpc(
                    "rate limit service",
                    RateLimitService::new(l.clone()).into_server(),
                    incoming,
                )),
            });
            eprintln!("rate limit service counting {counting}");
            Ok(Self {
                limiter,
                listen: options.listen,
                counting,
                host: Arc::new(host),
                domains: Mutex::default(),
            })
        }

        /// Where it listens, once it does.
        pub fn local_addr(&self) -> Option<SocketAddr> {
            self.host.local_addr()
        }

        /// Starts listening on the address the options give (nothing for `auto` and `off`).
        /// When it cannot be bound (a port still held by the process this one replaces, say),
        /// the error is logged and binding is retried every second, as the proxy's listeners
        /// are; [`local_addr`](Self::local_addr) says when it listens.
        pub fn listen(&self) -> Option<SocketAddr> {
            match self.listen {
                RateLimitListen::At(addr) => self.host.listen_on(addr),
                RateLimitListen::Auto | RateLimitListen::Off => None,
            }
        }

        /// Applies `configs` now, then every update `updates` announces, until it closes.
        pub fn follow(
            self: Arc<Self>,
            mut updates: watch::Receiver<Arc<RateLimitConfigs>>,
        ) -> tokio::task::JoinHandle<()> {
            tokio::spawn(async move {
                loop {
                    let configs = updates.borrow_and_update().clone();
                    self.apply(&configs);
                    if updates.changed().await.is_err() {
                        return;
                    }
                }
            })
        }

        /// Loads what `configs` ask for: each domain whose rules the limiter accepts
        /// replaces its previous rules, a refused one keeps them (logged); domains no longer
        /// asked for are dropped. With `auto`, starts listening on [`DEFAULT_ADDR`] when a
        /// Settings names a rate limit server (retrying every second while it cannot bind).
        pub fn apply(&self, configs: &RateLimitConfigs) {
            let mut domains = self.domains.lock().unwrap_or_else(PoisonError::into_inner);
            let mut next = BTreeMap::new();
            for config in &configs.configs {
                let Some(name) = config.domain.clone() else {
                    continue;
                };
                let checked = domain_of(&name, config).and_then(|d| {
                    d.validate().map_err(|e| e.to_string())?;
                    Ok(d)
                });
                match checked {
                    Ok(domain) => {
                        next.insert(name, domain);
                    }
                    Err(why) => {
                        eprintln!(
                            "rate limit service: domain {name:?} refused ({why}); its last good rules stay in force"
                        );
                        if let Some(previous) = domains.get(&name) {
                            next.insert(name, previous.clone());
                        }
                    }
                }
            }
            if next != *domains {
                match self.limiter.set_domains(next.values().cloned().collect()) {
                    Ok(()) => *domains = next,
                    // Not expected (each domain was checked): keep what is in force.
                    Err(why) => eprintln!("rate limit service: update refused: {why}"),
                }
            }
            drop(domains);
            let wanted = self.listen == RateLimitListen::Auto && configs.server_named;
            if wanted && !self.host.is_wanted() {
                self.host.listen_on(DEFAULT_ADDR);
            }
        }
    }

    /// A domain of gloo-core's server config as the limiter's rules; the error names the
    /// descriptor.
    fn domain_of(name: &str, config: &ServerRateLimitConfig) -> Result<RateLimitDomain, String> {
        let mut domain = RateLimitDomain::new(name);
        for (i, d) in config.descriptors.iter().enumerate() {
            domain = domain.descriptor(descriptor_of(d, &format!("descriptors[{i}]"))?);
        }
        for (i, set) in config.set_descriptors.iter().enumerate() {
            let at = format!("setDescriptors[{i}]");
            let limit = set
                .rate_limit
                .as_ref()
                .ok_or_else(|| format!("{at}.rateLimit: required"))?;
            let mut rule = SetDescriptor::new(limit_of(limit, &format!("{at}.rateLimit"))?)
                .always_apply(set.always_apply.unwrap_or(false));
            for (j, simple) in set.simple_descriptors.iter().enumerate() {
                let key = simple
                    .key
                    .clone()
                    .ok_or_else(|| format!("{at}.simpleDescriptors[{j}].key: required"))?;
                rule = rule.simple_descriptor(key, simple.value.clone());
            }
            domain = domain.set_descriptor(rule);
        }
        Ok(domain)
    }

    fn descriptor_of(d: &GlooDescriptor, at: &str) -> Result<Descriptor, String> {
        let key = d.key.clone().ok_or_else(|| format!("{at}.key: required"))?;
        let mut out = Descriptor::new(key)
            .weight(d.weight.unwrap_or(0))
            .always_apply(d.always_apply.unwrap_or(false));
        if let Some(value) = &d.value {
            out = out.value(value.clone());
        }
        if let Some(limit) = &d.rate_limit {
            out = out.rate_limit(limit_of(limit, &format!("{at}.rateLimit"))?);
        }
        for (i, child) in d.descriptors.iter().enumerate() {
            out = out.descriptor(descriptor_of(child, &format!("{at}.descriptors[{i}]"))?);
        }
        Ok(out)
    }

    fn limit_of(limit: &GlooRateLimit, at: &str) -> Result<RateLimit, String> {
        let unit = match limit.unit.unwrap_or_default() {
            RateLimitUnit::Second => Unit::Second,
            RateLimitUnit::Minute => Unit::Minute,
            RateLimitUnit::Hour => Unit::Hour,
            RateLimitUnit::Day => Unit::Day,
            RateLimitUnit::Week => Unit::Week,
            RateLimitUnit::Month => Unit::Month,
            RateLimitUnit::Year => Unit::Year,
            RateLimitUnit::Unknown => return Err(format!("{at}.unit: required")),
        };
        Ok(RateLimit::new(limit.requests_per_unit.unwrap_or(0), unit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_urls_read_gloo_host_port() {
        assert_eq!(redis_url("redis:6379"), "redis://redis:6379");
        assert_eq!(redis_url("redis://127.0.0.1:1/2"), "redis://127.0.0.1:1/2");
    }

    #[cfg(feature = "ratelimit")]
    #[tokio::test]
    async fn a_refused_domain_keeps_its_last_good_rules_and_others_update() {
        use gloo_core::model::ratelimit::{Descriptor, RateLimit, RateLimitUnit};
        use gloo_filters::ratelimit::global::{
            RateLimitCheck, RateLimitDescriptor, RateLimitRequest,
        };
        use gloo_filters::rls::RateLimitClient;

        let server = std::sync::Arc::new(
            RateLimitServer::new(&RateLimitServerOptions {
                listen: RateLimitListen::At("127.0.0.1:0".parse().expect("addr")),
                redis_url: None,
            })
            .expect("memory"),
        );
        let addr = server.listen().expect("an address");
        let config = |domain: &str, key: &str, n: u32| ServerRateLimitConfig {
            domain: Some(domain.to_string()),
            descriptors: vec![Descriptor {
                key: Some(key.to_string()),
                rate_limit: Some(RateLimit {
                    unit: Some(RateLimitUnit::Hour),
                    requests_per_unit: Some(n),
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        server.apply(&RateLimitConfigs {
            configs: vec![config("custom", "user", 1), config("crd", "ip", 1)],
            server_named: true,
        });
        let client = RateLimitClient::connect_lazy(format!("http://{addr}"))
            .expect("uri")
            .timeout(std::time::Duration::from_secs(5));
        let ask = |domain: &str, key: &str| {
            RateLimitRequest::new(domain).descriptor(RateLimitDescriptor::new().entry(key, "a"))
        };
        let over = |r: gloo_filters::ratelimit::global::RateLimitResponse| r.is_over_limit();
        assert!(!over(
            client.check(ask("custom", "user")).await.expect("answer")
        ));
        assert!(over(
            client.check(ask("custom", "user")).await.expect("answer")
        ));
        // `custom` is refused (a limit of 0): its rules stay; `crd` changes; `ingress` is new.
        server.apply(&RateLimitConfigs {
            configs: vec![
                config("custom", "user", 0),
                config("crd", "ip", 5),
                config("ingress", "k", 1),
            ],
            server_named: true,
        });
        assert!(over(
            client.check(ask("custom", "user")).await.expect("answer")
        ));
        let crd = client.check(ask("crd", "ip")).await.expect("answer");
        assert_eq!(crd.statuses[0].limit_remaining, 4);
        assert!(!over(
            client.check(ask("ingress", "k")).await.expect("answer")
        ));
        // A domain no longer asked for is dropped: nothing limits it.
        server.apply(&RateLimitConfigs {
            configs: vec![config("crd", "ip", 5)],
            server_named: true,
        });
        let custom = client.check(ask("custom", "user")).await.expect("answer");
        assert_eq!(custom.statuses[0].current_limit, None);
    }
}
