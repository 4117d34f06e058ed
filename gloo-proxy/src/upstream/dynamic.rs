//! Envoy's dynamic forward proxy cluster (`envoy.clusters.dynamic_forward_proxy`), the cluster
//! Gloo generates for a Gateway's `dynamicForwardProxy` option: its hosts are not configured
//! but taken from each request's `Host` (after the route's
//! `envoy.filters.http.dynamic_forward_proxy` rewrite), resolved when first seen and kept in a
//! DNS cache, as Envoy's `DnsCacheConfig` describes it:
//!
//! - a host is `name[:port]`; without a port, 443 when the cluster originates TLS, else 80;
//! - the first request for a host waits for its resolution; a name that does not resolve is
//!   answered 503 `DNS resolution failure` (response flag `DF`), and one past `max_hosts`
//!   (default 1,024) 503 `DNS cache overflow`;
//! - a host is resolved again every `dns_refresh_rate` (default 60 s) in the background, its
//!   requests going on to the addresses already known; one unused for `host_ttl` (default
//!   5 min) is dropped when a new host arrives;
//! - `dns_lookup_family` picks among the addresses the system resolver returns (Envoy's
//!   default, `AUTO`: IPv6 when there is any, else IPv4);
//! - each host is a cluster of its own (its addresses, balanced round robin) built from this
//!   cluster's settings, so it has its own connection pools; with TLS its SNI is the host's
//!   name and its certificate must name it (Envoy's `auto_sni` and `auto_san_validation`,
//!   which a dynamic forward proxy cluster has by default).
//!
//! Not applied, with a warning: `preresolve_hostnames`, `dns_failure_refresh_rate`,
//! `dns_cache_circuit_breaker`, a custom DNS resolver (the system resolver is used) and
//! `sub_clusters_config`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::config::cluster::v3::cluster::{
    ClusterDiscoveryType, DiscoveryType, DnsLookupFamily, LbPolicy,
};
use envoy_types::pb::envoy::config::cluster::v3::Cluster as PbCluster;
use envoy_types::pb::envoy::config::core::v3::{
    address, socket_address, transport_socket, Address, SocketAddress,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    lb_endpoint, ClusterLoadAssignment, Endpoint as PbEndpoint, LbEndpoint, LocalityLbEndpoints,
};
use envoy_types::pb::envoy::extensions::clusters::dynamic_forward_proxy::v3::{
    cluster_config::ClusterImplementationSpecifier, ClusterConfig,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext;
use envoy_types::pb::google::protobuf::Any;
use prost::Message;

use super::Cluster;
use crate::stats::ClusterStats;

/// The custom cluster type's name.
pub(crate) const DYNAMIC_FORWARD_PROXY: &str = "envoy.clusters.dynamic_forward_proxy";
const CLUSTER_CONFIG_TYPE: &str =
    "type.googleapis.com/envoy.extensions.clusters.dynamic_forward_proxy.v3.ClusterConfig";
const UPSTREAM_TLS_TYPE: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";

/// What looking a request's host up in the cache found.
pub(crate) enum Lookup {
    /// The host's own cluster.
    Found(Arc<Cluster>),
    /// The name did not resolve (or resolved to no address of the lookup family).
    Failed,
    /// The cache holds `max_hosts` hosts already.
    Overflow,
}

/// The DNS cache of a dynamic forward proxy cluster, and the settings its hosts' clusters are
/// built with.
#[derive(Debug)]
pub(crate) struct DynamicHosts {
    /// The cluster each host's own is built from: this one's settings, `STATIC`, round robin.
    template: PbCluster,
    version: String,
    stats: Arc<ClusterStats>,
    workers: usize,
    /// Whether the hosts' clusters originate TLS (and so default to port 443).
    tls: bool,
    family: DnsLookupFamily,
    refresh: Duration,
    host_ttl: Duration,
    query_timeout: Duration,
    max_hosts: usize,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
    epoch: Instant,
}

/// One cached host.
#[derive(Debug)]
struct Host {
    name: String,
    port: u16,
    cluster: Arc<Cluster>,
    /// Milliseconds since the cache's epoch: when it was last resolved, and last used.
    resolved_ms: AtomicU64,
    used_ms: AtomicU64,
    refreshing: AtomicBool,
}

fn duration_or(
    d: Option<&envoy_types::pb::google::protobuf::Duration>,
    default: Duration,
) -> Duration {
    d.map(crate::router::action::pb_duration)
        .filter(|d| !d.is_zero())
        .unwrap_or(default)
}

impl DynamicHosts {
    /// Reads a dynamic forward proxy cluster's `cluster_type` config; `pb` is the cluster.
    pub(crate) fn compile(
        pb: &PbCluster,
        config: Option<&Any>,
        version: &str,
        stats: Arc<ClusterStats>,
        workers: usize,
    ) -> Result<Self, String> {
        let config = config.ok_or("cluster_type: no typed_config")?;
        if config.type_url != CLUSTER_CONFIG_TYPE {
            return Err(format!(
                "cluster_type: expected {CLUSTER_CONFIG_TYPE}, got {}",
                config.type_url
            ));
        }
        let config = ClusterConfig::decode(config.value.as_slice())
            .map_err(|e| format!("cluster_type: cannot decode ClusterConfig: {e}"))?;
        let cache = match config.cluster_implementation_specifier {
            Some(ClusterImplementationSpecifier::DnsCacheConfig(cache)) => cache,
            Some(ClusterImplementationSpecifier::SubClustersConfig(_)) => {
                return Err("cluster_type: sub_clusters_config is not supported".into())
            }
            None => return Err("cluster_type: dns_cache_config is required".into()),
        };
        let unapplied = [
            (
                "preresolve_hostnames",
                !cache.preresolve_hostnames.is_empty(),
            ),
            (
                "dns_failure_refresh_rate",
                cache.dns_failure_refresh_rate.is_some(),
            ),
            (
                "dns_cache_circuit_breaker",
                cache.dns_cache_circuit_breaker.is_some(),
            ),
            (
                "typed_dns_resolver_config",
                cache.typed_dns_resolver_config.is_some(),
            ),
        ];
        for (field, _) in unapplied.iter().filter(|(_, set)| *set) {
            tracing::warn!(
                cluster = %pb.name,
                "dns_cache_config.{field} is not applied: hosts are resolved by the system resolver when first seen and again every dns_refresh_rate"
            );
        }
        let family = DnsLookupFamily::try_from(cache.dns_lookup_family).map_err(|_| {
            format!(
                "dns_cache_config.dns_lookup_family: unknown value {}",
                cache.dns_lookup_family
            )
        })?;
        let mut template = pb.clone();
        template.cluster_discovery_type =
            Some(ClusterDiscoveryType::Type(DiscoveryType::Static as i32));
        template.lb_policy = LbPolicy::RoundRobin as i32;
        template.lb_config = None;
        template.load_assignment = None;
        let tls = match &pb.transport_socket {
            Some(socket) => match &socket.config_type {
                Some(transport_socket::ConfigType::TypedConfig(any)) => {
                    any.type_url == UPSTREAM_TLS_TYPE
                }
                None => false,
            },
            None => false,
        };
        Ok(DynamicHosts {
            template,
            version: version.to_string(),
            stats,
            workers,
            tls,
            family,
            refresh: duration_or(cache.dns_refresh_rate.as_ref(), Duration::from_secs(60)),
            host_ttl: duration_or(cache.host_ttl.as_ref(), Duration::from_secs(300)),
            query_timeout: duration_or(cache.dns_query_timeout.as_ref(), Duration::from_secs(5)),
            max_hosts: cache
                .max_hosts
                .map(|m| m.value as usize)
                .filter(|m| *m > 0)
                .unwrap_or(1024),
            hosts: Mutex::default(),
            epoch: Instant::now(),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn hosts(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Host>>> {
        self.hosts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cluster of the host `authority` names (a `Host` header's value), resolving it
    /// when it is new.
    pub(crate) async fn lookup(&self, authority: &str) -> Lookup {
        let Some((name, port)) = split_authority(authority, if self.tls { 443 } else { 80 }) else {
            return Lookup::Failed;
        };
        let key = format!("{name}:{port}");
        let now = self.now_ms();
        let cached = self.hosts().get(&key).cloned();
        if let Some(host) = cached {
            host.used_ms.store(now, Ordering::Relaxed);
            let stale = now.saturating_sub(host.resolved_ms.load(Ordering::Relaxed))
                >= u64::try_from(self.refresh.as_millis()).unwrap_or(u64::MAX);
            if stale && !host.refreshing.swap(true, Ordering::AcqRel) {
                let (family, timeout, epoch) = (self.family, self.query_timeout, self.epoch);
                let host = host.clone();
                tokio::spawn(async move {
                    // A failed refresh keeps the addresses known, as Envoy's cache does.
                    if let Some(addresses) = resolve(&host.name, host.port, family, timeout).await {
                        host.cluster.set_members(endpoints(&addresses));
                    }
                    let now = u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
                    host.resolved_ms.store(now, Ordering::Relaxed);
                    host.refreshing.store(false, Ordering::Release);
                });
            }
            return Lookup::Found(host.cluster.clone());
        }
        {
            let mut hosts = self.hosts();
            let ttl = u64::try_from(self.host_ttl.as_millis()).unwrap_or(u64::MAX);
            hosts.retain(|_, h| now.saturating_sub(h.used_ms.load(Ordering::Relaxed)) < ttl);
            if hosts.len() >= self.max_hosts {
                return Lookup::Overflow;
            }
        }
        let Some(addresses) = resolve(&name, port, self.family, self.query_timeout).await else {
            return Lookup::Failed;
        };
        let cluster = match self.host_cluster(&name, &addresses) {
            Ok(c) => Arc::new(c),
            Err(e) => {
                tracing::warn!(cluster = %self.template.name, host = %key, "cannot build the host's cluster: {e}");
                return Lookup::Failed;
            }
        };
        let host = Arc::new(Host {
            name,
            port,
            cluster,
            resolved_ms: AtomicU64::new(now),
            used_ms: AtomicU64::new(now),
            refreshing: AtomicBool::new(false),
        });
        let mut hosts = self.hosts();
        // Another request may have resolved it meanwhile: the first one in stays.
        let host = hosts.entry(key).or_insert(host).clone();
        self.stats
            .membership_total
            .store(hosts.len() as u64, Ordering::Relaxed);
        Lookup::Found(host.cluster.clone())
    }

    /// The cluster of one host: the template with its addresses and, with TLS, its name as
    /// the SNI.
    fn host_cluster(&self, name: &str, addresses: &[SocketAddr]) -> Result<Cluster, String> {
        let mut pb = self.template.clone();
        pb.load_assignment = Some(ClusterLoadAssignment {
            cluster_name: pb.name.clone(),
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: addresses.iter().map(|a| lb_endpoint_for(*a)).collect(),
                ..Default::default()
            }],
            ..Default::default()
        });
        if self.tls {
            if let Some(socket) = pb.transport_socket.as_mut() {
                if let Some(transport_socket::ConfigType::TypedConfig(any)) =
                    socket.config_type.as_mut()
                {
                    let mut tls = UpstreamTlsContext::decode(any.value.as_slice())
                        .map_err(|e| format!("transport_socket: {e}"))?;
                    // An address is no server name (rustls sends none for it).
                    if name.parse::<IpAddr>().is_err() {
                        tls.sni = name.to_string();
                    }
                    auto_san_validation(&mut tls, name);
                    any.value = tls.encode_to_vec();
                }
            }
        }
        let mut cluster =
            Cluster::compile_with(&pb, &self.version, self.stats.clone(), self.workers)
                .map_err(|e| e.message)?;
        cluster.dynamic_member = true;
        Ok(cluster)
    }
}

/// Envoy's `auto_san_validation`: a host's certificate, when it is verified at all (a trusted
/// CA), must name the host (a DNS name, or an IP address for an address), whatever names the
/// cluster's context lists.
fn auto_san_validation(tls: &mut UpstreamTlsContext, name: &str) {
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
        common_tls_context::ValidationContextType, subject_alt_name_matcher::SanType,
        SubjectAltNameMatcher,
    };
    use envoy_types::pb::envoy::r#type::matcher::v3::{
        string_matcher::MatchPattern, StringMatcher,
    };
    let Some(common) = tls.common_tls_context.as_mut() else {
        return;
    };
    if let Some(ValidationContextType::ValidationContext(v)) =
        common.validation_context_type.as_mut()
    {
        if v.trusted_ca.is_some() {
            let san_type = if name.parse::<IpAddr>().is_ok() {
                SanType::IpAddress
            } else {
                SanType::Dns
            };
            v.match_typed_subject_alt_names = vec![SubjectAltNameMatcher {
                san_type: san_type as i32,
                matcher: Some(StringMatcher {
                    match_pattern: Some(MatchPattern::Exact(name.to_string())),
                    ..Default::default()
                }),
                ..Default::default()
            }];
        }
    }
}

fn lb_endpoint_for(address: SocketAddr) -> LbEndpoint {
    LbEndpoint {
        host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(PbEndpoint {
            address: Some(Address {
                address: Some(address::Address::SocketAddress(SocketAddress {
                    address: address.ip().to_string(),
                    port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(
                        address.port(),
                    ))),
                    ..Default::default()
                })),
            }),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// Fresh endpoints at `addresses` (`set_members` keeps the state of those whose address stays).
fn endpoints(addresses: &[SocketAddr]) -> Vec<Arc<super::Endpoint>> {
    addresses
        .iter()
        .map(|a| Arc::new(super::Endpoint::new(*a, String::new(), 1)))
        .collect()
}

/// A `Host` value's name (lower case, IPv6 brackets off) and port (`default` when it has
/// none); `None` when it is empty or its port is not a number.
pub(crate) fn split_authority(authority: &str, default: u16) -> Option<(String, u16)> {
    let authority = authority.trim();
    let (name, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        match after.strip_prefix(':') {
            Some(p) => (v6, Some(p)),
            None if after.is_empty() => (v6, None),
            None => return None,
        }
    } else {
        match authority.rsplit_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (authority, None),
        }
    };
    if name.is_empty() {
        return None;
    }
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => default,
    };
    Some((name.to_ascii_lowercase(), port))
}

/// The addresses `name` resolves to, filtered by `family` as Envoy does; `None` when there is
/// none (or the lookup fails or takes longer than `timeout`).
async fn resolve(
    name: &str,
    port: u16,
    family: DnsLookupFamily,
    timeout: Duration,
) -> Option<Vec<SocketAddr>> {
    let all: Vec<SocketAddr> = match name.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => {
            match tokio::time::timeout(timeout, tokio::net::lookup_host((name, port))).await {
                Ok(Ok(found)) => found.collect(),
                _ => return None,
            }
        }
    };
    let (v4, v6): (Vec<SocketAddr>, Vec<SocketAddr>) = all.into_iter().partition(|a| a.is_ipv4());
    let picked = match family {
        DnsLookupFamily::V4Only => v4,
        DnsLookupFamily::V6Only => v6,
        DnsLookupFamily::V4Preferred if !v4.is_empty() => v4,
        DnsLookupFamily::V4Preferred => v6,
        DnsLookupFamily::Auto if !v6.is_empty() => v6,
        DnsLookupFamily::Auto => v4,
        DnsLookupFamily::All => v4.into_iter().chain(v6).collect(),
    };
    let mut picked = picked;
    picked.dedup();
    (!picked.is_empty()).then_some(picked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_split_into_name_and_port() {
        assert_eq!(
            split_authority("Example.COM", 80),
            Some(("example.com".into(), 80))
        );
        assert_eq!(
            split_authority("example.com:8443", 80),
            Some(("example.com".into(), 8443))
        );
        assert_eq!(
            split_authority("[::1]:9000", 80),
            Some(("::1".into(), 9000))
        );
        assert_eq!(split_authority("[::1]", 443), Some(("::1".into(), 443)));
        assert_eq!(split_authority("example.com:http", 80), None);
        assert_eq!(split_authority("", 80), None);
        assert_eq!(split_authority("[::1]x", 80), None);
    }

    fn hosts(max_hosts: u32, host_ttl_ms: i32) -> DynamicHosts {
        use envoy_types::pb::envoy::config::cluster::v3::cluster::CustomClusterType;
        use envoy_types::pb::envoy::extensions::common::dynamic_forward_proxy::v3::DnsCacheConfig;
        use envoy_types::pb::google::protobuf::{Duration as PbDuration, UInt32Value};
        let config = ClusterConfig {
            cluster_implementation_specifier: Some(ClusterImplementationSpecifier::DnsCacheConfig(
                DnsCacheConfig {
                    name: "cache".into(),
                    max_hosts: Some(UInt32Value { value: max_hosts }),
                    host_ttl: Some(PbDuration {
                        seconds: 0,
                        nanos: host_ttl_ms * 1_000_000,
                    }),
                    ..Default::default()
                },
            )),
            ..Default::default()
        };
        let any = Any {
            type_url: CLUSTER_CONFIG_TYPE.into(),
            value: config.encode_to_vec(),
        };
        let pb = PbCluster {
            name: "dfp".into(),
            lb_policy: LbPolicy::ClusterProvided as i32,
            cluster_discovery_type: Some(ClusterDiscoveryType::ClusterType(CustomClusterType {
                name: DYNAMIC_FORWARD_PROXY.into(),
                typed_config: Some(any.clone()),
            })),
            ..Default::default()
        };
        DynamicHosts::compile(&pb, Some(&any), "v1", Arc::default(), 1).expect("a valid cluster")
    }

    #[tokio::test]
    async fn hosts_past_max_hosts_overflow_until_unused_ones_expire() {
        let cache = hosts(1, 100);
        let Lookup::Found(first) = cache.lookup("127.0.0.1:8080").await else {
            panic!("the first host fits");
        };
        let members = first.members();
        assert_eq!(members.len(), 1);
        assert_eq!(members[0].address, "127.0.0.1:8080".parse().unwrap());
        // The same host again is the same cluster (its pools stay).
        let Lookup::Found(again) = cache.lookup("127.0.0.1:8080").await else {
            panic!("a cached host");
        };
        assert!(Arc::ptr_eq(&first, &again));
        assert!(matches!(
            cache.lookup("127.0.0.2:8080").await,
            Lookup::Overflow
        ));
        tokio::time::sleep(Duration::from_millis(150)).await;
        let Lookup::Found(second) = cache.lookup("127.0.0.2:8080").await else {
            panic!("the first host expired, so the second fits");
        };
        assert_eq!(
            second.members()[0].address,
            "127.0.0.2:8080".parse().unwrap()
        );
        assert!(matches!(cache.lookup("bad:port").await, Lookup::Failed));
    }

    #[test]
    fn configs_without_a_dns_cache_are_refused() {
        let pb = PbCluster::default();
        let wrong = Any {
            type_url: "type.googleapis.com/other".into(),
            value: Vec::new(),
        };
        let error = DynamicHosts::compile(&pb, Some(&wrong), "v1", Arc::default(), 1).unwrap_err();
        assert!(error.contains("expected"), "{error}");
        let empty = Any {
            type_url: CLUSTER_CONFIG_TYPE.into(),
            value: Vec::new(),
        };
        let error = DynamicHosts::compile(&pb, Some(&empty), "v1", Arc::default(), 1).unwrap_err();
        assert!(error.contains("dns_cache_config is required"), "{error}");
    }

    #[tokio::test]
    async fn ip_literals_resolve_to_themselves_and_families_filter() {
        let v4 = resolve(
            "127.0.0.1",
            81,
            DnsLookupFamily::Auto,
            Duration::from_secs(1),
        )
        .await;
        assert_eq!(v4, Some(vec!["127.0.0.1:81".parse().unwrap()]));
        let none = resolve(
            "127.0.0.1",
            81,
            DnsLookupFamily::V6Only,
            Duration::from_secs(1),
        )
        .await;
        assert_eq!(none, None);
        let failed = resolve(
            "no-such-host.invalid",
            80,
            DnsLookupFamily::Auto,
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(failed, None);
    }
}
