//! Clusters and their endpoints: one cluster per Upstream the proxy's routes reach.
//!
//! Upstreams whose endpoints gloo knows as IP addresses (static IPs, and everything discovery
//! finds) are EDS clusters, so an endpoint change is one `ClusterLoadAssignment` and never
//! touches the cluster or any route. Static hosts given as DNS names are STRICT_DNS clusters with
//! the hosts inline, resolved by the proxy.
//!
//! An Upstream's `failover` (Gloo's `failover.proto`) adds its prioritized localities to the
//! cluster's endpoints at priorities 1, 2, ... after the primary endpoints (priority 0), with
//! the locality, its weight and each endpoint's weight; Envoy then shifts load to them as the
//! primary endpoints become unhealthy (active health checks or outlier detection). A failover
//! endpoint with its own `upstreamSslConfig` gets endpoint metadata
//! `envoy.transport_socket_match: {name: <match>}` and the cluster a
//! `transport_socket_matches` entry of that name carrying the TLS context, so only that
//! endpoint connects with it; `policy.overprovisioningFactor` becomes the assignment's
//! overprovisioning factor. Deviations from Gloo: failover endpoints given as DNS names are
//! left out of EDS assignments (Gloo Enterprise resolves them itself, every
//! `failoverUpstreamDnsPollingInterval`), and an endpoint's `healthCheckConfig` is not
//! translated.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use envoy_types::pb::envoy::config::cluster::v3::{
    circuit_breakers::Thresholds, cluster, CircuitBreakers, Cluster, OutlierDetection,
    UpstreamConnectionOptions,
};
use envoy_types::pb::envoy::config::core::v3::{
    address, health_check, socket_address, transport_socket, Address, HealthCheck, HealthStatus,
    SocketAddress, TransportSocket,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    lb_endpoint, ClusterLoadAssignment, Endpoint as EnvoyEndpoint, LbEndpoint, LocalityLbEndpoints,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    common_tls_context, CommonTlsContext, TlsCertificate, UpstreamTlsContext,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    http_protocol_options, HttpProtocolOptions,
};
use envoy_types::pb::envoy::r#type::v3::{Int64Range, Percent};
use envoy_types::pb::google::protobuf::{
    BoolValue, Duration as PbDuration, UInt32Value, UInt64Value,
};

use super::listeners::{ads, header_key_format, tls_material};
use super::names::{cluster_name, HTTP_PROTOCOL_OPTIONS};
use super::routes::duration;
use super::Context;
use crate::model::cluster::{HealthCheckerRef, LoadBalancerTypeRef};
use crate::model::ssl::{SslSecretsRef, UpstreamSslConfig};
use crate::model::upstream::{Failover, UpstreamSpec, UpstreamTypeRef};
use crate::model::{Object, ResourceRef};
use crate::xds::pack;

/// One endpoint of an upstream, as discovery (or a static upstream) reports it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    /// IP address.
    pub address: String,
    /// Port.
    pub port: u32,
    /// Labels used for subset load balancing (Consul `tag_<t>`, `dc_<dc>`; pod labels).
    pub labels: BTreeMap<String, String>,
    /// Whether health checking or discovery reports it healthy.
    pub healthy: bool,
    /// Relative load-balancing weight (0 means the default, 1).
    pub weight: u32,
}

impl Endpoint {
    /// A healthy endpoint at `address:port`.
    pub fn new(address: impl Into<String>, port: u32) -> Self {
        Endpoint {
            address: address.into(),
            port,
            labels: BTreeMap::new(),
            healthy: true,
            weight: 0,
        }
    }
}

/// Endpoints by upstream (`namespace.name`), as discovery publishes them.
pub type Endpoints = BTreeMap<ResourceRef, Vec<Endpoint>>;

/// One upstream's endpoints, shared: a change of other upstreams copies none of them.
pub type EndpointList = Arc<[Endpoint]>;

/// A change of the discovered endpoints: only the upstreams whose endpoints changed, with
/// their new lists (shared, not copied), and the upstreams that have none any more. What
/// [`Translator::apply_endpoint_changes`](super::Translator::apply_endpoint_changes) takes, so
/// an endpoint event costs in proportion to what it changed, not to every upstream known.
///
/// ```
/// use gloo_core::model::ResourceRef;
/// use gloo_core::translate::{Endpoint, EndpointChanges};
///
/// let mut changes = EndpointChanges::default();
/// changes.set(ResourceRef::new("gloo-system", "a"), vec![Endpoint::new("10.0.0.1", 80)]);
/// // An empty list records that b has no endpoints any more.
/// changes.set(ResourceRef::new("gloo-system", "b"), Vec::<Endpoint>::new());
/// assert_eq!(changes.updated.len(), 1);
/// assert!(changes.removed.contains(&ResourceRef::new("gloo-system", "b")));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointChanges {
    /// Upstreams with new endpoints: their whole new list.
    pub updated: BTreeMap<ResourceRef, EndpointList>,
    /// Upstreams with no endpoints any more.
    pub removed: BTreeSet<ResourceRef>,
}

impl EndpointChanges {
    /// Records `upstream`'s new endpoints; an empty list records a removal.
    pub fn set(&mut self, upstream: ResourceRef, endpoints: impl Into<EndpointList>) {
        let endpoints = endpoints.into();
        if endpoints.is_empty() {
            self.updated.remove(&upstream);
            self.removed.insert(upstream);
        } else {
            self.removed.remove(&upstream);
            self.updated.insert(upstream, endpoints);
        }
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.updated.is_empty() && self.removed.is_empty()
    }

    /// How many upstreams changed.
    pub fn len(&self) -> usize {
        self.updated.len() + self.removed.len()
    }

    /// Every upstream of `endpoints`, as a change from nothing.
    pub fn all(endpoints: &Endpoints) -> Self {
        let mut changes = EndpointChanges::default();
        for (upstream, list) in endpoints {
            changes.set(upstream.clone(), list.as_slice());
        }
        changes
    }
}

/// Whether an upstream's hosts are all IP addresses (then it is served over EDS). An `aws`
/// upstream is the Lambda endpoint, a DNS name (never EDS).
pub(crate) fn static_hosts_are_ips(spec: &UpstreamSpec) -> bool {
    match spec.upstream_type() {
        Ok(Some(UpstreamTypeRef::Static(s))) => s
            .hosts
            .iter()
            .all(|h| h.addr.parse::<std::net::IpAddr>().is_ok()),
        Ok(Some(UpstreamTypeRef::Aws(_))) => false,
        _ => true,
    }
}

/// The endpoints of an upstream: its static hosts, or what discovery found for it.
pub(crate) fn upstream_endpoints(spec: &UpstreamSpec, discovered: &[Endpoint]) -> Vec<Endpoint> {
    let mut endpoints = match spec.upstream_type() {
        Ok(Some(UpstreamTypeRef::Static(s))) => s
            .hosts
            .iter()
            .map(|h| Endpoint {
                address: h.addr.clone(),
                port: h.port,
                labels: BTreeMap::new(),
                healthy: true,
                weight: h.load_balancing_weight.unwrap_or(0),
            })
            .collect(),
        _ => discovered.to_vec(),
    };
    for e in &mut endpoints {
        super::subsets::default_labels(spec, &mut e.labels);
    }
    endpoints.sort();
    endpoints
}

fn socket(address: &str, port: u32) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: address.to_string(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
            ..Default::default()
        })),
    }
}

/// The `ClusterLoadAssignment` of a cluster.
pub(crate) fn load_assignment(cluster: &str, endpoints: &[Endpoint]) -> ClusterLoadAssignment {
    ClusterLoadAssignment {
        cluster_name: cluster.to_string(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints: endpoints
                .iter()
                .map(|e| LbEndpoint {
                    host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(EnvoyEndpoint {
                        address: Some(socket(&e.address, e.port)),
                        ..Default::default()
                    })),
                    health_status: if e.healthy {
                        HealthStatus::Unknown as i32
                    } else {
                        HealthStatus::Unhealthy as i32
                    },
                    load_balancing_weight: (e.weight > 0)
                        .then_some(UInt32Value { value: e.weight }),
                    metadata: super::subsets::lb_metadata(&e.labels),
                })
                .collect(),
            // Proxyless gRPC ignores localities without a weight (Envoy ignores the weight
            // unless locality-weighted load balancing is on).
            load_balancing_weight: Some(UInt32Value { value: 1 }),
            // gRPC also requires the locality to be present (empty is fine).
            locality: Some(Default::default()),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The metadata namespace Envoy's transport socket matches read on an endpoint.
const TRANSPORT_SOCKET_MATCH: &str = "envoy.transport_socket_match";

/// The name of the transport socket match of failover endpoint `endpoint` of locality
/// `locality` at `priority`.
fn failover_socket_name(priority: usize, locality: usize, endpoint: usize) -> String {
    format!("failover-{priority}-{locality}-{endpoint}")
}

/// Adds an Upstream's failover localities to its load assignment, at priorities 1, 2, ...
/// (DNS names only where `dns` says the cluster resolves them itself).
pub(crate) fn add_failover(cla: &mut ClusterLoadAssignment, failover: &Failover, dns: bool) {
    use envoy_types::pb::envoy::config::core::v3::{Locality, Metadata};
    use envoy_types::pb::envoy::config::endpoint::v3::cluster_load_assignment::Policy;
    use envoy_types::pb::google::protobuf::{value, Struct, Value};
    for (p, prioritized) in failover.prioritized_localities.iter().enumerate() {
        for (l, locality) in prioritized.locality_endpoints.iter().enumerate() {
            let lb_endpoints = locality
                .lb_endpoints
                .iter()
                .enumerate()
                .filter(|(_, e)| dns || e.address.parse::<std::net::IpAddr>().is_ok())
                .map(|(i, e)| LbEndpoint {
                    host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(EnvoyEndpoint {
                        address: Some(socket(&e.address, e.port)),
                        ..Default::default()
                    })),
                    load_balancing_weight: e
                        .load_balancing_weight
                        .map(|value| UInt32Value { value }),
                    metadata: e.upstream_ssl_config.as_ref().map(|_| Metadata {
                        filter_metadata: [(
                            TRANSPORT_SOCKET_MATCH.to_string(),
                            Struct {
                                fields: [(
                                    "name".to_string(),
                                    Value {
                                        kind: Some(value::Kind::StringValue(failover_socket_name(
                                            p + 1,
                                            l,
                                            i,
                                        ))),
                                    },
                                )]
                                .into(),
                            },
                        )]
                        .into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .collect();
            cla.endpoints.push(LocalityLbEndpoints {
                locality: Some(
                    locality
                        .locality
                        .as_ref()
                        .map(|l| Locality {
                            region: l.region.clone().unwrap_or_default(),
                            zone: l.zone.clone().unwrap_or_default(),
                            sub_zone: l.sub_zone.clone().unwrap_or_default(),
                        })
                        .unwrap_or_default(),
                ),
                lb_endpoints,
                load_balancing_weight: Some(UInt32Value {
                    value: locality.load_balancing_weight.unwrap_or(1),
                }),
                priority: (p + 1) as u32,
                ..Default::default()
            });
        }
    }
    if let Some(factor) = failover
        .policy
        .as_ref()
        .and_then(|p| p.overprovisioning_factor)
    {
        cla.policy = Some(Policy {
            overprovisioning_factor: Some(UInt32Value { value: factor }),
            ..Default::default()
        });
    }
}

/// The transport socket matches of an Upstream's failover endpoints that originate TLS.
fn failover_socket_matches(
    failover: &Failover,
    namespace: &str,
    ctx: &Context<'_>,
) -> Vec<cluster::TransportSocketMatch> {
    use envoy_types::pb::google::protobuf::{value, Struct, Value};
    let mut out = Vec::new();
    for (p, prioritized) in failover.prioritized_localities.iter().enumerate() {
        for (l, locality) in prioritized.locality_endpoints.iter().enumerate() {
            for (i, e) in locality.lb_endpoints.iter().enumerate() {
                let Some(ssl) = &e.upstream_ssl_config else {
                    continue;
                };
                let name = failover_socket_name(p + 1, l, i);
                out.push(cluster::TransportSocketMatch {
                    r#match: Some(Struct {
                        fields: [(
                            "name".to_string(),
                            Value {
                                kind: Some(value::Kind::StringValue(name.clone())),
                            },
                        )]
                        .into(),
                    }),
                    transport_socket: Some(tls_socket(&upstream_tls(
                        Some(ssl),
                        None,
                        namespace,
                        ctx,
                    ))),
                    name,
                });
            }
        }
    }
    out
}

/// The TLS context towards an upstream with `ssl` (an Upstream's or a dynamic forward proxy's
/// `sslConfig`, its Secret read in `namespace` when the reference names none).
pub(crate) fn upstream_tls(
    ssl: Option<&UpstreamSslConfig>,
    sni: Option<String>,
    namespace: &str,
    ctx: &Context<'_>,
) -> UpstreamTlsContext {
    let mut common = CommonTlsContext::default();
    let mut context_sni = sni.unwrap_or_default();
    if let Some(ssl) = ssl {
        if let Some((cert, key, ca)) = tls_material(ssl.ssl_secrets(), namespace, ctx) {
            // `oneWayTls` (without SDS): the CA still checks the upstream, but no client
            // certificate is presented, as Gloo's ResolveUpstreamSslConfig leaves it.
            let one_way = ssl.one_way_tls.unwrap_or(false)
                && !matches!(ssl.ssl_secrets(), Ok(Some(SslSecretsRef::Sds(_))));
            if (cert.is_some() || key.is_some()) && !one_way {
                common.tls_certificates.push(TlsCertificate {
                    certificate_chain: cert,
                    private_key: key,
                    ..Default::default()
                });
            }
            if let Some(ca) = ca {
                common.validation_context_type = Some(
                    common_tls_context::ValidationContextType::ValidationContext(
                        super::listeners::validation_context(ca, &ssl.verify_subject_alt_name),
                    ),
                );
            }
        }
        common.alpn_protocols = ssl.alpn_protocols.clone();
        common.tls_params = super::listeners::tls_parameters(ssl.parameters.as_ref());
        if let Some(sni) = &ssl.sni {
            context_sni = sni.clone();
        }
    }
    UpstreamTlsContext {
        common_tls_context: Some(common),
        sni: context_sni,
        allow_renegotiation: ssl.and_then(|s| s.allow_renegotiation).unwrap_or(false),
        ..Default::default()
    }
}

/// The TLS transport socket of `tls`.
pub(crate) fn tls_socket(tls: &UpstreamTlsContext) -> TransportSocket {
    TransportSocket {
        name: "envoy.transport_sockets.tls".to_string(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(pack(tls))),
    }
}

fn opt_duration(d: Option<&crate::model::Duration>) -> Option<PbDuration> {
    d.map(duration)
}

fn health_check(hc: &crate::model::cluster::HealthCheck) -> HealthCheck {
    let checker = match hc.health_checker() {
        Ok(Some(HealthCheckerRef::Http(h))) => Some(health_check::HealthChecker::HttpHealthCheck(
            health_check::HttpHealthCheck {
                host: h.host.clone().unwrap_or_default(),
                path: h.path.clone().unwrap_or_default(),
                expected_statuses: h
                    .expected_statuses
                    .iter()
                    .map(|r| Int64Range {
                        start: r.start.unwrap_or(0),
                        end: r.end.unwrap_or(0),
                    })
                    .collect(),
                request_headers_to_remove: h.request_headers_to_remove.clone(),
                ..Default::default()
            },
        )),
        Ok(Some(HealthCheckerRef::Tcp(t))) => Some(health_check::HealthChecker::TcpHealthCheck(
            health_check::TcpHealthCheck {
                send: t.send.as_ref().and_then(|p| p.text.clone()).map(|text| {
                    health_check::Payload {
                        payload: Some(health_check::payload::Payload::Text(text)),
                    }
                }),
                receive: t
                    .receive
                    .iter()
                    .filter_map(|p| p.text.clone())
                    .map(|text| health_check::Payload {
                        payload: Some(health_check::payload::Payload::Text(text)),
                    })
                    .collect(),
                ..Default::default()
            },
        )),
        Ok(Some(HealthCheckerRef::Grpc(g))) => Some(health_check::HealthChecker::GrpcHealthCheck(
            health_check::GrpcHealthCheck {
                service_name: g.service_name.clone().unwrap_or_default(),
                authority: g.authority.clone().unwrap_or_default(),
                ..Default::default()
            },
        )),
        _ => None,
    };
    HealthCheck {
        timeout: opt_duration(hc.timeout.as_ref()),
        interval: opt_duration(hc.interval.as_ref()),
        initial_jitter: opt_duration(hc.initial_jitter.as_ref()),
        interval_jitter: opt_duration(hc.interval_jitter.as_ref()),
        unhealthy_threshold: hc.unhealthy_threshold.map(|value| UInt32Value { value }),
        healthy_threshold: hc.healthy_threshold.map(|value| UInt32Value { value }),
        no_traffic_interval: opt_duration(hc.no_traffic_interval.as_ref()),
        unhealthy_interval: opt_duration(hc.unhealthy_interval.as_ref()),
        health_checker: checker,
        ..Default::default()
    }
}

fn outlier(od: &crate::model::cluster::OutlierDetection) -> OutlierDetection {
    let u = |v: Option<u32>| v.map(|value| UInt32Value { value });
    OutlierDetection {
        consecutive_5xx: u(od.consecutive_5xx),
        interval: opt_duration(od.interval.as_ref()),
        base_ejection_time: opt_duration(od.base_ejection_time.as_ref()),
        max_ejection_percent: u(od.max_ejection_percent),
        enforcing_consecutive_5xx: u(od.enforcing_consecutive_5xx),
        enforcing_success_rate: u(od.enforcing_success_rate),
        success_rate_minimum_hosts: u(od.success_rate_minimum_hosts),
        success_rate_request_volume: u(od.success_rate_request_volume),
        success_rate_stdev_factor: u(od.success_rate_stdev_factor),
        consecutive_gateway_failure: u(od.consecutive_gateway_failure),
        enforcing_consecutive_gateway_failure: u(od.enforcing_consecutive_gateway_failure),
        ..Default::default()
    }
}

/// An Upstream's `connectionConfig.http1ProtocolOptions` as Envoy's HTTP/1 options, as
/// Gloo's `httpprotocolhelpers.ConvertHttp1` converts them: trailers, keeping the connection
/// open on an invalid message, and the key format (see [`header_key_format`]). Gloo writes
/// them on the cluster's deprecated `http_protocol_options`, which Envoy warns about; gloo
/// writes them where Envoy reads that field from, the explicit HTTP/1 config of the cluster's
/// `envoy.extensions.upstreams.http.v3.HttpProtocolOptions`.
fn http1_protocol_options(
    options: &crate::model::cluster::Http1ProtocolOptions,
) -> envoy_types::pb::envoy::config::core::v3::Http1ProtocolOptions {
    envoy_types::pb::envoy::config::core::v3::Http1ProtocolOptions {
        enable_trailers: options.enable_trailers.unwrap_or(false),
        override_stream_error_on_invalid_http_message: options
            .override_stream_error_on_invalid_http_message
            .map(|value| BoolValue { value }),
        header_key_format: header_key_format(
            options.proper_case_header_key_format,
            options.preserve_case_header_key_format,
        ),
        ..Default::default()
    }
}

/// A duration in whole seconds, rounded up as Gloo's upstreamconn plugin rounds the TCP
/// keepalive durations (its `roundToSecond`: `math.Round(seconds + 0.4999)`, in the same
/// floating-point steps, so the edge cases agree: `1s` stays 1, `1.001s` becomes 2, but under
/// 0.1ms over a whole second rounds down). Envoy takes these as whole seconds; a negative
/// duration becomes 0 and one beyond `u32` seconds the largest `u32`.
fn round_up_to_second(d: &crate::model::Duration) -> u32 {
    // Go's `time.Duration.Seconds()`: whole seconds plus the nanoseconds as a fraction.
    let seconds = d.seconds as f64 + f64::from(d.nanos) / 1e9;
    // Rust's `round` rounds half away from zero, as Go's `math.Round`; `as` saturates.
    (seconds + 0.4999).round() as u32
}

/// An Upstream's `connectionConfig.tcpKeepalive` as Envoy's `TcpKeepalive`, as Gloo's
/// upstreamconn plugin converts it: the probe count only when above 0 (0 leaves Envoy's
/// system default), the idle time and probe interval rounded up to whole seconds.
fn tcp_keepalive(
    keepalive: &crate::model::cluster::TcpKeepAlive,
) -> envoy_types::pb::envoy::config::core::v3::TcpKeepalive {
    envoy_types::pb::envoy::config::core::v3::TcpKeepalive {
        keepalive_probes: keepalive
            .keepalive_probes
            .filter(|p| *p > 0)
            .map(|value| UInt32Value { value }),
        keepalive_time: keepalive.keepalive_time.as_ref().map(|d| UInt32Value {
            value: round_up_to_second(d),
        }),
        keepalive_interval: keepalive.keepalive_interval.as_ref().map(|d| UInt32Value {
            value: round_up_to_second(d),
        }),
    }
}

/// An Upstream's `connectionConfig.commonHttpProtocolOptions` as Envoy's common HTTP options,
/// as Gloo's upstreamconn plugin converts them: the idle timeout and the stream duration as
/// given, the header count only when above 0 (Envoy refuses 0), and the underscore action.
/// Gloo writes them on the cluster's deprecated `common_http_protocol_options`; gloo writes
/// them where Envoy reads that field from, the cluster's
/// `envoy.extensions.upstreams.http.v3.HttpProtocolOptions`. Envoy applies the header count to
/// the upstream's responses and the stream duration to each upstream request; the underscore
/// action is about client requests, so on a cluster Envoy carries it without effect, as it does
/// what Gloo writes.
fn common_http_protocol_options(
    options: &crate::model::cluster::HttpProtocolOptions,
) -> envoy_types::pb::envoy::config::core::v3::HttpProtocolOptions {
    use crate::model::cluster::HeadersWithUnderscoresAction as Gloo;
    use envoy_types::pb::envoy::config::core::v3::http_protocol_options::HeadersWithUnderscoresAction as Envoy;
    envoy_types::pb::envoy::config::core::v3::HttpProtocolOptions {
        idle_timeout: options.idle_timeout.as_ref().map(duration),
        max_headers_count: options
            .max_headers_count
            .filter(|n| *n > 0)
            .map(|value| UInt32Value { value }),
        max_stream_duration: options.max_stream_duration.as_ref().map(duration),
        headers_with_underscores_action: match options
            .headers_with_underscores_action
            .unwrap_or_default()
        {
            Gloo::Allow => Envoy::Allow,
            Gloo::RejectRequest => Envoy::RejectRequest,
            Gloo::DropHeader => Envoy::DropHeader,
        } as i32,
        ..Default::default()
    }
}

/// The Envoy cluster of one Upstream.
pub(crate) fn cluster(upstream: &Object<UpstreamSpec>, ctx: &Context<'_>) -> Cluster {
    let reference = upstream.to_ref();
    let spec = &upstream.spec;
    let name = cluster_name(&reference);
    use envoy_types::pb::google::protobuf::DoubleValue;
    let mut out = Cluster {
        name: name.clone(),
        // Gloo's default connect timeout.
        connect_timeout: Some(PbDuration {
            seconds: 5,
            nanos: 0,
        }),
        ..Default::default()
    };
    if static_hosts_are_ips(spec) {
        out.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Eds as i32,
        ));
        out.eds_cluster_config = Some(cluster::EdsClusterConfig {
            eds_config: Some(ads()),
            service_name: String::new(),
        });
    } else {
        out.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::StrictDns as i32,
        ));
        let mut cla = load_assignment(&name, &upstream_endpoints(spec, &[]));
        if let Some(failover) = &spec.failover {
            add_failover(&mut cla, failover, true);
        }
        out.load_assignment = Some(cla);
    }
    if let Ok(Some(UpstreamTypeRef::Aws(aws))) = spec.upstream_type() {
        super::aws_lambda::cluster(&reference, aws, ctx.snapshot, ctx.lambda_endpoint, &mut out);
    }
    // Gloo's translator copies these onto every cluster; the DNS ones mean something to DNS
    // clusters only (Gloo's edsupstream plugin clears the refresh rate of EDS ones), and a
    // refresh rate Envoy would refuse is reported on the Upstream and left out.
    out.ignore_health_on_host_removal = spec.ignore_health_on_host_removal.unwrap_or(false);
    if out.cluster_discovery_type
        == Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::StrictDns as i32,
        ))
    {
        // Deprecated in favour of a DNS cluster extension, which Gloo does not write; Envoy
        // 1.40 still reads them.
        #[allow(deprecated)]
        {
            out.respect_dns_ttl = spec.respect_dns_ttl.unwrap_or(false);
            out.dns_refresh_rate = spec
                .dns_refresh_rate
                .as_ref()
                .filter(|d| dns_refresh_rate_problem(d).is_none())
                .map(duration);
        }
    }
    if let Some(policy) = spec
        .preconnect_policy
        .as_ref()
        .filter(|p| preconnect_policy_problem(p).is_none())
    {
        out.preconnect_policy = Some(cluster::PreconnectPolicy {
            per_upstream_preconnect_ratio: policy
                .per_upstream_preconnect_ratio
                .map(|value| DoubleValue { value }),
            predictive_preconnect_ratio: policy
                .predictive_preconnect_ratio
                .map(|value| DoubleValue { value }),
            ..Default::default()
        });
    }
    if let Some(lb) = &spec.load_balancer_config {
        match lb.lb_type() {
            Ok(Some(LoadBalancerTypeRef::LeastRequest(lr))) => {
                out.lb_policy = cluster::LbPolicy::LeastRequest as i32;
                if let Some(choice) = lr.choice_count {
                    out.lb_config = Some(cluster::LbConfig::LeastRequestLbConfig(
                        cluster::LeastRequestLbConfig {
                            choice_count: Some(UInt32Value { value: choice }),
                            ..Default::default()
                        },
                    ));
                }
            }
            Ok(Some(LoadBalancerTypeRef::Random(_))) => {
                out.lb_policy = cluster::LbPolicy::Random as i32
            }
            Ok(Some(LoadBalancerTypeRef::RingHash(rh))) => {
                out.lb_policy = cluster::LbPolicy::RingHash as i32;
                if let Some(cfg) = &rh.ring_hash_config {
                    out.lb_config = Some(cluster::LbConfig::RingHashLbConfig(
                        cluster::RingHashLbConfig {
                            minimum_ring_size: cfg
                                .minimum_ring_size
                                .map(|value| UInt64Value { value }),
                            maximum_ring_size: cfg
                                .maximum_ring_size
                                .map(|value| UInt64Value { value }),
                            ..Default::default()
                        },
                    ));
                }
            }
            Ok(Some(LoadBalancerTypeRef::Maglev(_))) => {
                out.lb_policy = cluster::LbPolicy::Maglev as i32
            }
            _ => {}
        }
        if let Some(threshold) = lb.healthy_panic_threshold {
            out.common_lb_config = Some(cluster::CommonLbConfig {
                healthy_panic_threshold: Some(Percent { value: threshold }),
                ..Default::default()
            });
        }
    }
    out.lb_subset_config = super::subsets::lb_subset_config(spec);
    out.health_checks = spec.health_checks.iter().map(health_check).collect();
    out.outlier_detection = spec.outlier_detection.as_ref().map(outlier);
    out.circuit_breakers = spec.circuit_breakers.as_ref().map(circuit_breakers);
    if let Some(cc) = &spec.connection_config {
        if let Some(t) = &cc.connect_timeout {
            out.connect_timeout = Some(duration(t));
        }
        if let Some(limit) = cc.per_connection_buffer_limit_bytes {
            out.per_connection_buffer_limit_bytes = Some(UInt32Value { value: limit });
        }
        if let Some(keepalive) = &cc.tcp_keepalive {
            out.upstream_connection_options = Some(UpstreamConnectionOptions {
                tcp_keepalive: Some(tcp_keepalive(keepalive)),
                ..Default::default()
            });
        }
    }
    let max_requests = spec
        .connection_config
        .as_ref()
        .and_then(|c| c.max_requests_per_connection)
        .filter(|m| *m > 0);
    let common = spec
        .connection_config
        .as_ref()
        .and_then(|c| c.common_http_protocol_options.as_ref());
    let use_http2 = spec.use_http2.unwrap_or(false);
    // `protocolSelection: USE_DOWNSTREAM_PROTOCOL`: HTTP/2 to the upstream for HTTP/2
    // clients, HTTP/1.1 for the others.
    let use_downstream = spec.protocol_selection
        == Some(crate::model::upstream::ClusterProtocolSelection::UseDownstreamProtocol);
    // HTTP/1 options: of an HTTP/1.1 Upstream, or of one that follows the downstream
    // protocol (on an HTTP/2 one that does not, Gloo refuses them).
    let http1 = spec
        .connection_config
        .as_ref()
        .and_then(|c| c.http1_protocol_options.as_ref())
        .filter(|_| !use_http2 || use_downstream);
    if use_http2 || use_downstream || max_requests.is_some() || common.is_some() || http1.is_some()
    {
        // Gloo's protocoloptions plugin: the HTTP/2 settings of an HTTP/2 Upstream.
        let http2 = || envoy_types::pb::envoy::config::core::v3::Http2ProtocolOptions {
            initial_stream_window_size: spec
                .initial_stream_window_size
                .map(|value| UInt32Value { value }),
            initial_connection_window_size: spec
                .initial_connection_window_size
                .map(|value| UInt32Value { value }),
            max_concurrent_streams: spec
                .max_concurrent_streams
                .map(|value| UInt32Value { value }),
            override_stream_error_on_invalid_http_message: spec
                .override_stream_error_on_invalid_http_message
                .map(|value| BoolValue { value }),
            ..Default::default()
        };
        let upstream_protocol = if use_downstream {
            // Gloo writes this for an HTTP/2 Upstream; for an HTTP/1.1 one it sets the
            // cluster's deprecated `protocol_selection`, which Envoy reads as this config
            // with default HTTP/2 settings.
            http_protocol_options::UpstreamProtocolOptions::UseDownstreamProtocolConfig(
                http_protocol_options::UseDownstreamHttpConfig {
                    http_protocol_options: Some(
                        http1.map(http1_protocol_options).unwrap_or_default(),
                    ),
                    http2_protocol_options: use_http2.then(http2),
                    ..Default::default()
                },
            )
        } else {
            let protocol = if use_http2 {
                http_protocol_options::explicit_http_config::ProtocolConfig::Http2ProtocolOptions(
                    http2(),
                )
            } else {
                http_protocol_options::explicit_http_config::ProtocolConfig::HttpProtocolOptions(
                    http1.map(http1_protocol_options).unwrap_or_default(),
                )
            };
            http_protocol_options::UpstreamProtocolOptions::ExplicitHttpConfig(
                http_protocol_options::ExplicitHttpConfig {
                    protocol_config: Some(protocol),
                },
            )
        };
        let mut common_options = common.map(common_http_protocol_options).unwrap_or_default();
        common_options.max_requests_per_connection =
            max_requests.map(|value| UInt32Value { value });
        let options = HttpProtocolOptions {
            common_http_protocol_options: Some(common_options),
            upstream_protocol_options: Some(upstream_protocol),
            ..Default::default()
        };
        out.typed_extension_protocol_options
            .insert(HTTP_PROTOCOL_OPTIONS.to_string(), pack(&options));
    }
    let static_tls = matches!(spec.upstream_type(), Ok(Some(UpstreamTypeRef::Static(s))) if s.use_tls.unwrap_or(false));
    if spec.ssl_config.is_some() || static_tls {
        let sni = match spec.upstream_type() {
            Ok(Some(UpstreamTypeRef::Static(s))) => {
                s.hosts.first().and_then(|h| h.sni_addr.clone())
            }
            _ => None,
        };
        let namespace = reference.namespace_or(crate::model::DEFAULT_NAMESPACE);
        out.transport_socket = Some(tls_socket(&upstream_tls(
            spec.ssl_config.as_ref(),
            sni,
            namespace,
            ctx,
        )));
    }
    if let Some(failover) = &spec.failover {
        let namespace = reference.namespace_or(crate::model::DEFAULT_NAMESPACE);
        out.transport_socket_matches = failover_socket_matches(failover, namespace, ctx);
    }
    // Last, as in Gloo's translator: the PROXY protocol socket wraps whatever socket the
    // cluster has (plain TCP made explicit); an unknown version is reported on the Upstream.
    if let Some(version) = spec
        .proxy_protocol_version
        .as_deref()
        .and_then(proxy_protocol_version)
    {
        out.transport_socket = Some(proxy_protocol_socket(out.transport_socket.take(), version));
    }
    out
}

/// Gloo's circuit breakers as the thresholds of an Envoy cluster's default priority (Gloo's
/// `convertCircuitBreakers`).
pub(crate) fn circuit_breakers(
    cb: &crate::model::cluster::CircuitBreakerConfig,
) -> CircuitBreakers {
    let u = |v: Option<u32>| v.map(|value| UInt32Value { value });
    CircuitBreakers {
        thresholds: vec![Thresholds {
            max_connections: u(cb.max_connections),
            max_pending_requests: u(cb.max_pending_requests),
            max_requests: u(cb.max_requests),
            max_retries: u(cb.max_retries),
            track_remaining: cb.track_remaining.unwrap_or(false),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// What gloo cannot resolve in an upstream `sslConfig` (an Upstream's, or a dynamic forward
/// proxy's) at `path`, its Secret read in `namespace` when the reference names none: both
/// secret sources set, a missing Secret, SDS, a subject alternative name to verify without a
/// root CA to verify it against.
pub(crate) fn upstream_ssl_problems(
    snapshot: &crate::snapshot::ConfigSnapshot,
    ssl: &UpstreamSslConfig,
    namespace: &str,
    path: &str,
) -> Vec<String> {
    use crate::model::ssl::SslSecretsRef;
    let mut problems = Vec::new();
    match ssl.ssl_secrets() {
        Err(e) => problems.push(format!("{path}: {e}")),
        Ok(Some(SslSecretsRef::SecretRef(secret))) => {
            if let Err(e) = snapshot.tls_secret(secret, namespace) {
                problems.push(format!("{path}.secretRef: {e}"));
            }
        }
        Ok(Some(SslSecretsRef::Sds(_))) => problems.push(format!(
            "{path}.sds: SDS certificates are not supported yet; use secretRef or sslFiles"
        )),
        _ => {}
    }
    if !ssl.verify_subject_alt_name.is_empty()
        && !snapshot.has_root_ca(ssl.ssl_secrets(), namespace)
    {
        problems.push(format!(
            "{path}.verifySubjectAltName: needs a rootCa to verify the upstream's certificate against"
        ));
    }
    problems
}

/// Why an Upstream's `dnsRefreshRate` is left out, if it is: Envoy takes rates above 1 ms
/// only (Gloo's translator leaves out rates below 1 ms with a warning).
pub(crate) fn dns_refresh_rate_problem(rate: &crate::model::Duration) -> Option<String> {
    let d = duration(rate);
    (d.seconds <= 0 && d.nanos <= 1_000_000).then(|| {
        "dnsRefreshRate was set below minimum requirement (more than 1ms), ignoring configuration"
            .to_string()
    })
}

/// Why an Upstream's `preconnectPolicy` is refused, if it is (Gloo's `getPreconnectPolicy`):
/// each ratio, when set, is between 1 and 3.
pub(crate) fn preconnect_policy_problem(
    policy: &crate::model::upstream::PreconnectPolicy,
) -> Option<String> {
    let mut problems = Vec::new();
    for (name, ratio) in [
        (
            "perUpstreamPreconnectRatio",
            policy.per_upstream_preconnect_ratio,
        ),
        (
            "predictivePreconnectRatio",
            policy.predictive_preconnect_ratio,
        ),
    ] {
        if let Some(r) = ratio.filter(|r| !(1.0..=3.0).contains(r)) {
            problems.push(format!(
                "{name} must be between 1 and 3 if set, it was: {r}"
            ));
        }
    }
    (!problems.is_empty()).then(|| format!("invalid preconnect policy: {}", problems.join("; ")))
}

/// The PROXY protocol version an Upstream's `proxyProtocolVersion` names (`"V1"`, `"V2"`), as
/// Gloo reads it (a quoted name too).
pub(crate) fn proxy_protocol_version(
    text: &str,
) -> Option<envoy_types::pb::envoy::config::core::v3::proxy_protocol_config::Version> {
    use envoy_types::pb::envoy::config::core::v3::proxy_protocol_config::Version;
    match text.trim_matches('"') {
        "V1" => Some(Version::V1),
        "V2" => Some(Version::V2),
        _ => None,
    }
}

/// Envoy's `envoy.transport_sockets.upstream_proxy_protocol` around `inner` (a raw buffer
/// socket when there is none), as Gloo's `upstreamproxyprotocol.WrapWithPProtocol` makes it.
fn proxy_protocol_socket(
    inner: Option<TransportSocket>,
    version: envoy_types::pb::envoy::config::core::v3::proxy_protocol_config::Version,
) -> TransportSocket {
    use envoy_types::pb::envoy::extensions::transport_sockets::proxy_protocol::v3::ProxyProtocolUpstreamTransport;
    use envoy_types::pb::envoy::extensions::transport_sockets::raw_buffer::v3::RawBuffer;
    let inner = inner.unwrap_or_else(|| TransportSocket {
        name: "envoy.transport_sockets.raw_buffer".to_string(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(pack(
            &RawBuffer {},
        ))),
    });
    TransportSocket {
        name: "envoy.transport_sockets.upstream_proxy_protocol".to_string(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(pack(
            &ProxyProtocolUpstreamTransport {
                config: Some(
                    envoy_types::pb::envoy::config::core::v3::ProxyProtocolConfig {
                        version: version as i32,
                        ..Default::default()
                    },
                ),
                transport_socket: Some(inner),
                ..Default::default()
            },
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Duration;

    #[test]
    fn the_proxy_protocol_socket_wraps_the_clusters_own() {
        use envoy_types::pb::envoy::config::core::v3::proxy_protocol_config::Version;
        use envoy_types::pb::envoy::extensions::transport_sockets::proxy_protocol::v3::ProxyProtocolUpstreamTransport;
        use prost::Message;
        assert_eq!(proxy_protocol_version("V1"), Some(Version::V1));
        assert_eq!(proxy_protocol_version("\"V2\""), Some(Version::V2));
        assert_eq!(proxy_protocol_version("v2"), None);
        let tls = tls_socket(&UpstreamTlsContext::default());
        for (inner, inner_name) in [
            (None, "envoy.transport_sockets.raw_buffer"),
            (Some(tls), "envoy.transport_sockets.tls"),
        ] {
            let socket = proxy_protocol_socket(inner, Version::V2);
            assert_eq!(
                socket.name,
                "envoy.transport_sockets.upstream_proxy_protocol"
            );
            let Some(transport_socket::ConfigType::TypedConfig(any)) = socket.config_type else {
                panic!("a typed config");
            };
            let wrapper = ProxyProtocolUpstreamTransport::decode(any.value.as_slice()).unwrap();
            assert_eq!(wrapper.config.unwrap().version, Version::V2 as i32);
            assert_eq!(wrapper.transport_socket.unwrap().name, inner_name);
        }
    }

    fn secs(text: &str) -> u32 {
        round_up_to_second(&Duration::parse(text).unwrap())
    }

    /// Gloo's `roundToSecond` rounds `seconds + 0.4999` to the nearest whole second: whole
    /// seconds stay, anything from 0.1ms over rounds up, less rounds down.
    #[test]
    fn keepalive_durations_round_up_to_whole_seconds_as_gloo_rounds_them() {
        assert_eq!(secs("0s"), 0);
        assert_eq!(secs("0.001s"), 1);
        assert_eq!(secs("0.5s"), 1);
        assert_eq!(secs("1s"), 1);
        assert_eq!(secs("1.0002s"), 2);
        assert_eq!(secs("1.00001s"), 1);
        assert_eq!(secs("1.999s"), 2);
        assert_eq!(secs("7200s"), 7200);
        assert_eq!(secs("-2s"), 0);
        assert_eq!(secs("10000000000s"), u32::MAX);
    }
}
