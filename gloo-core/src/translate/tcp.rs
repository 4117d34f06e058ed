//! TCP hosts (a `tcpGateway`'s, or a hybrid gateway's TCP chain's) as Envoy filter chains, as
//! Gloo's `tcp` plugin (`CreateTcpFilterChains`, `tcpProxyFilters`, `computeTcpFilterChain`)
//! and `tls_inspector` plugin write them:
//!
//! - every host is one filter chain whose last filter is `envoy.filters.network.tcp_proxy`,
//!   with stat prefix `tcp` (Gloo's `DefaultTcpStatPrefix`: a Gateway's `tcpGateway` has no
//!   `statPrefix`, only a Proxy's `TcpListener` does) and the listener's `tcpProxySettings`;
//! - a host without `sslConfig` matches every connection; one whose `sslConfig` has
//!   `sniDomains` and no certificate passes TLS through, matched by SNI (`server_names`); one
//!   whose `sslConfig` has a certificate terminates TLS (`envoy.transport_sockets.tls`), matched
//!   by its `sniDomains`, with its `transportSocketConnectTimeout`;
//! - a `forwardSniClusterName` host's proxy sends to the cluster named by the client's SNI:
//!   `envoy.filters.network.sni_cluster` before the proxy, whose cluster is `""` (the SNI filter
//!   overrides it);
//! - `multi` and `upstreamGroup` destinations are weighted clusters;
//! - a host that cannot be served (no destination, a missing Upstream or UpstreamGroup, an
//!   unreadable certificate) gets no filter chain; [`host_route`] says why, for the Gateway's
//!   status;
//! - the listener needs `envoy.filters.listener.tls_inspector` when any host has an
//!   `sslConfig` or forwards by SNI ([`needs_tls_inspector`]).

use envoy_types::pb::envoy::config::accesslog::v3::AccessLog;
use envoy_types::pb::envoy::config::core::v3::{
    header_value_option::HeaderAppendAction, HeaderValue, HeaderValueOption,
};
use envoy_types::pb::envoy::config::listener::v3::{filter, Filter, FilterChain, FilterChainMatch};
use envoy_types::pb::envoy::extensions::filters::network::sni_cluster::v3::SniCluster;
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{tcp_proxy, TcpProxy};
use envoy_types::pb::google::protobuf::UInt32Value;

use super::names::{SNI_CLUSTER_FILTER, TCP_PROXY_FILTER};
use super::routes::{destination_cluster, duration};
use super::Context;
use crate::model::gateway::{TcpDestination, TcpGateway, TcpHost};
use crate::model::listener_options::TcpProxySettings;
use crate::model::routing::{Destination, DestinationTarget, WeightedDestination};
use crate::model::ssl::SslConfig;
use crate::model::{Duration, ResourceRef, DEFAULT_NAMESPACE};
use crate::snapshot::ConfigSnapshot;
use crate::xds::pack;

/// Gloo's `DefaultTcpStatPrefix`, the TCP proxy's stat prefix when the listener names none.
pub(crate) const DEFAULT_TCP_STAT_PREFIX: &str = "tcp";

/// Where a TCP host's proxy sends connections.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TcpRoute {
    /// One cluster.
    Cluster(String),
    /// Weighted clusters (`multi`, or an upstream group's destinations).
    Weighted(Vec<(String, u32)>),
    /// The cluster named by the client's SNI (`forwardSniClusterName`).
    SniCluster,
}

/// Why a TCP host gets no filter chain, as Gloo reports it: an error (Gloo's TCP listener
/// error: the Gateway is rejected) or a warning (Gloo's `TcpHostReport` warning for a
/// destination not found: the resource it names may still arrive). The message starts with
/// the field path under the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostProblem {
    /// The host is wrong in itself.
    Error(String),
    /// The host names something that does not exist (yet).
    Warning(String),
}

/// Whether an Upstream reference names an Upstream of the snapshot.
fn upstream_exists(snapshot: &ConfigSnapshot, reference: &ResourceRef) -> bool {
    snapshot
        .upstreams
        .contains_key(&reference.resolved(DEFAULT_NAMESPACE))
}

/// The cluster of one destination at `field`, checked as Gloo's
/// `ValidateTcpRouteDestinations` / `DestinationToUpstreamRef` check it: a missing Upstream
/// (or the Upstream Consul discovery would name after a Consul service) is a warning.
fn destination(
    snapshot: &ConfigSnapshot,
    d: &Destination,
    field: &str,
) -> Result<String, HostProblem> {
    match d.target() {
        Err(e) => return Err(HostProblem::Error(format!("{field}: {e}"))),
        Ok(None) => {
            return Err(HostProblem::Error(format!(
                "{field}: set one of upstream, kube, consul"
            )))
        }
        Ok(Some(DestinationTarget::Upstream(r))) if !upstream_exists(snapshot, r) => {
            return Err(HostProblem::Warning(format!(
                "{field}.upstream: Upstream {} not found; the host gets no filter chain until it exists",
                r.resolved(DEFAULT_NAMESPACE)
            )))
        }
        Ok(Some(DestinationTarget::Consul(c))) => {
            let r = ResourceRef::new(
                DEFAULT_NAMESPACE,
                format!("{}{}", super::routes::CONSUL_UPSTREAM_PREFIX, c.service_name),
            );
            if !upstream_exists(snapshot, &r) {
                return Err(HostProblem::Warning(format!(
                    "{field}.consul: Upstream {r} (Consul service {}) not found; the host gets no filter chain until Consul discovery finds the service",
                    c.service_name
                )));
            }
        }
        Ok(Some(_)) => {}
    }
    destination_cluster(d)
        .ok_or_else(|| HostProblem::Error(format!("{field}: not a destination gloo can send to")))
}

/// Weighted destinations at `field` as weighted clusters (Gloo's `convertToWeightedCluster`):
/// at least one, each with a weight of at least 1 (Envoy refuses a TCP cluster weight of 0,
/// which Gloo would send).
fn weighted(
    snapshot: &ConfigSnapshot,
    destinations: &[WeightedDestination],
    field: &str,
) -> Result<TcpRoute, HostProblem> {
    if destinations.is_empty() {
        return Err(HostProblem::Error(format!(
            "{field}: must specify at least one weighted destination"
        )));
    }
    let mut clusters = Vec::with_capacity(destinations.len());
    for (i, w) in destinations.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let Some(d) = &w.destination else {
            return Err(HostProblem::Error(format!(
                "{at}.destination: a weighted destination needs a destination"
            )));
        };
        let cluster = destination(snapshot, d, &format!("{at}.destination"))?;
        let weight = w.weight.unwrap_or(0);
        if weight == 0 {
            return Err(HostProblem::Error(format!(
                "{at}.weight: must be at least 1 (Envoy refuses a TCP proxy cluster weight of 0)"
            )));
        }
        clusters.push((cluster, weight));
    }
    Ok(TcpRoute::Weighted(clusters))
}

/// Where `host` sends connections, or why it cannot be served, as Gloo's `tcpProxyFilters`
/// decides. Paths in problems are relative to the host.
pub(crate) fn host_route(
    snapshot: &ConfigSnapshot,
    host: &TcpHost,
) -> Result<TcpRoute, HostProblem> {
    const NO_DESTINATION: &str = "destination: must specify either 'single', 'multi', 'upstreamGroup' or 'forwardSniClusterName'";
    let Some(action) = &host.destination else {
        return Err(HostProblem::Error(NO_DESTINATION.to_string()));
    };
    match action.destination() {
        Err(e) => Err(HostProblem::Error(format!("destination: {e}"))),
        Ok(None) => Err(HostProblem::Error(NO_DESTINATION.to_string())),
        Ok(Some(TcpDestination::Single(d))) => {
            destination(snapshot, d, "destination.single").map(TcpRoute::Cluster)
        }
        Ok(Some(TcpDestination::Multi(m))) => {
            weighted(snapshot, &m.destinations, "destination.multi.destinations")
        }
        Ok(Some(TcpDestination::UpstreamGroup(r))) => {
            let r = r.resolved(DEFAULT_NAMESPACE);
            match snapshot.upstream_groups.get(&r) {
                None => Err(HostProblem::Warning(format!(
                    "destination.upstreamGroup: UpstreamGroup {r} not found; the host gets no filter chain until it exists"
                ))),
                Some(group) => weighted(
                    snapshot,
                    &group.object.spec.destinations,
                    &format!("destination.upstreamGroup({r}).destinations"),
                ),
            }
        }
        Ok(Some(TcpDestination::ForwardSniClusterName)) => Ok(TcpRoute::SniCluster),
    }
}

/// What is wrong with `tcpProxySettings` (paths relative to it): what Gloo refuses (an access
/// log flush interval under 1ms) and what Envoy would refuse (no connect attempt, a tunnel
/// without a host name). Any of them leaves every host of the listener without a chain, as in
/// Gloo.
pub(crate) fn proxy_settings_problems(settings: &TcpProxySettings) -> Vec<String> {
    let mut problems = Vec::new();
    if settings.max_connect_attempts == Some(0) {
        problems.push("maxConnectAttempts: must be at least 1".to_string());
    }
    if settings
        .access_log_flush_interval
        .is_some_and(|d| d < Duration::from_millis(1))
    {
        problems.push(
            "accessLogFlushInterval: access log flush interval must have minimum of 1ms"
                .to_string(),
        );
    }
    if settings
        .tunneling_config
        .as_ref()
        .is_some_and(|t| t.hostname.is_empty())
    {
        problems.push(
            "tunnelingConfig.hostname: a tunnel needs the host name to CONNECT to".to_string(),
        );
    }
    problems
}

/// Whether a listener serving `hosts` needs the TLS inspector (Gloo's
/// `includeTlsInspectorForTcpListener`): a host with an `sslConfig` (matched by SNI, or
/// terminating TLS) or forwarding by SNI.
pub(crate) fn needs_tls_inspector<'a>(hosts: impl IntoIterator<Item = &'a TcpHost>) -> bool {
    hosts.into_iter().any(|host| {
        host.ssl_config.is_some()
            || host
                .destination
                .as_ref()
                .is_some_and(|d| d.forward_sni_cluster_name.is_some())
    })
}

/// The TCP proxy (and, forwarding by SNI, the SNI cluster filter before it) of a host sending
/// to `route` (Gloo's `tcpProxyFilters`). Gloo's settings are written as Envoy 1.40 reads them
/// without deprecation warnings: the flush interval in `access_log_options` (where Gloo sets
/// the deprecated `access_log_flush_interval`, which Envoy reads the same) and each tunnel
/// header's `append` as its `append_action` (Gloo sets the deprecated `append`; true or unset
/// appends, false overwrites, as Envoy reads it).
fn proxy_filters(
    route: TcpRoute,
    settings: Option<&TcpProxySettings>,
    access_log: &[AccessLog],
) -> Vec<Filter> {
    let mut filters = Vec::new();
    let cluster_specifier = match route {
        TcpRoute::Cluster(cluster) => tcp_proxy::ClusterSpecifier::Cluster(cluster),
        TcpRoute::Weighted(clusters) => {
            tcp_proxy::ClusterSpecifier::WeightedClusters(tcp_proxy::WeightedCluster {
                clusters: clusters
                    .into_iter()
                    .map(
                        |(name, weight)| tcp_proxy::weighted_cluster::ClusterWeight {
                            name,
                            weight,
                            ..Default::default()
                        },
                    )
                    .collect(),
            })
        }
        TcpRoute::SniCluster => {
            filters.push(Filter {
                name: SNI_CLUSTER_FILTER.to_string(),
                config_type: Some(filter::ConfigType::TypedConfig(pack(&SniCluster {}))),
            });
            // Overwritten by the SNI cluster filter.
            tcp_proxy::ClusterSpecifier::Cluster(String::new())
        }
    };
    let mut proxy = TcpProxy {
        stat_prefix: DEFAULT_TCP_STAT_PREFIX.to_string(),
        cluster_specifier: Some(cluster_specifier),
        access_log: access_log.to_vec(),
        ..Default::default()
    };
    if let Some(s) = settings {
        proxy.max_connect_attempts = s.max_connect_attempts.map(|value| UInt32Value { value });
        proxy.idle_timeout = s.idle_timeout.as_ref().map(duration);
        proxy.tunneling_config = s
            .tunneling_config
            .as_ref()
            .map(|t| tcp_proxy::TunnelingConfig {
                hostname: t.hostname.clone(),
                headers_to_add: t
                    .headers_to_add
                    .iter()
                    .map(|h| HeaderValueOption {
                        header: h.header.as_ref().map(|v| HeaderValue {
                            key: v.key.clone(),
                            value: v.value.clone(),
                            ..Default::default()
                        }),
                        append_action: if h.append.unwrap_or(true) {
                            HeaderAppendAction::AppendIfExistsOrAdd
                        } else {
                            HeaderAppendAction::OverwriteIfExistsOrAdd
                        } as i32,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            });
        proxy.access_log_options =
            s.access_log_flush_interval
                .as_ref()
                .map(|d| tcp_proxy::TcpAccessLogOptions {
                    access_log_flush_interval: Some(duration(d)),
                    ..Default::default()
                });
    }
    filters.push(Filter {
        name: TCP_PROXY_FILTER.to_string(),
        config_type: Some(filter::ConfigType::TypedConfig(pack(&proxy))),
    });
    filters
}

/// The filter chain of one host (Gloo's `computeTcpFilterChain`): `None` when its
/// certificate cannot be read (validation reports it).
fn host_chain(
    host: &TcpHost,
    filters: Vec<Filter>,
    namespace: &str,
    ctx: &Context<'_>,
) -> Option<FilterChain> {
    let mut chain = FilterChain {
        name: host.name.clone(),
        filters,
        ..Default::default()
    };
    let Some(ssl) = &host.ssl_config else {
        return Some(chain);
    };
    let server_names = ssl.sni_domains.clone();
    // SNI passthrough: matched by name, the TLS bytes proxied as they came.
    if matches!(ssl.ssl_secrets(), Ok(None)) && !server_names.is_empty() {
        chain.filter_chain_match = Some(FilterChainMatch {
            server_names,
            ..Default::default()
        });
        return Some(chain);
    }
    let tls = super::listeners::downstream_tls(ssl, namespace, ctx)?;
    chain.filter_chain_match = Some(FilterChainMatch {
        server_names,
        ..Default::default()
    });
    chain.transport_socket = Some(super::listeners::tls_transport_socket(&tls));
    chain.transport_socket_connect_timeout =
        ssl.transport_socket_connect_timeout.as_ref().map(duration);
    Some(chain)
}

/// The filter chains of a TCP gateway's hosts (Gloo's `CreateTcpFilterChains`), one per
/// servable host in order. In a hybrid gateway, `matcher` is the chain's matcher SSL config
/// (its `sniDomains` match the chains of hosts that name none, as in Gloo's
/// `tcpFilterChainTranslator`; it does not terminate TLS) and `base` its client address
/// ranges. `namespace` is where certificate `secretRef`s without one point.
pub(crate) fn filter_chains(
    tcp: &TcpGateway,
    matcher: Option<&SslConfig>,
    base: Option<&FilterChainMatch>,
    namespace: &str,
    access_log: &[AccessLog],
    ctx: &Context<'_>,
) -> Vec<FilterChain> {
    let settings = tcp
        .options
        .as_ref()
        .and_then(|o| o.tcp_proxy_settings.as_ref());
    if settings.is_some_and(|s| !proxy_settings_problems(s).is_empty()) {
        return Vec::new();
    }
    let mut chains = Vec::new();
    for host in &tcp.tcp_hosts {
        let Ok(route) = host_route(ctx.snapshot, host) else {
            continue;
        };
        let filters = proxy_filters(route, settings, access_log);
        let Some(mut chain) = host_chain(host, filters, namespace, ctx) else {
            continue;
        };
        if let Some(base) = base {
            let chain_match = chain
                .filter_chain_match
                .get_or_insert_with(Default::default);
            chain_match
                .source_prefix_ranges
                .clone_from(&base.source_prefix_ranges);
        }
        if let Some(matcher) = matcher {
            let chain_match = chain
                .filter_chain_match
                .get_or_insert_with(Default::default);
            if chain_match.server_names.is_empty() {
                chain_match.server_names.clone_from(&matcher.sni_domains);
            }
        }
        if chain.filter_chain_match.as_ref() == Some(&FilterChainMatch::default()) {
            chain.filter_chain_match = None;
        }
        chains.push(chain);
    }
    chains
}
