//! Clusters at run time: their endpoints (from EDS or resolved DNS names), load balancing,
//! health (active checks, outlier ejection), circuit breaking and connection pools.
//!
//! A [`Cluster`] is compiled from an Envoy `Cluster`. Endpoint updates (EDS) replace its
//! membership in place: in-flight requests keep the endpoint they were sent to, pooled
//! connections to endpoints that stay are kept, and health state follows the endpoint by
//! address.
//!
//! Endpoints keep their `LocalityLbEndpoints.priority`: load is split between priority levels
//! as Envoy splits it (each level's health with the overprovisioning factor, normalized over
//! the levels, with per-level and total panic), then balanced within the chosen level. An
//! endpoint whose metadata matches one of the cluster's `transport_socket_matches` connects
//! with that socket (TLS or plain) instead of the cluster's `transport_socket`; matches are
//! supported on HTTP/1 clusters (an HTTP/2 cluster with matches is refused).
//!
//! ```
//! use envoy_types::pb::envoy::config::cluster::v3::{
//!     cluster, Cluster as PbCluster, OutlierDetection,
//! };
//! use envoy_types::pb::envoy::config::core::v3::{address, socket_address, Address, SocketAddress};
//! use envoy_types::pb::envoy::config::endpoint::v3::{
//!     lb_endpoint, ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints,
//! };
//! use envoy_types::pb::google::protobuf::UInt32Value;
//! use gloo_proxy::stats::Stats;
//! use gloo_proxy::upstream::Cluster;
//!
//! # fn main() -> Result<(), gloo_proxy::upstream::ClusterError> {
//! // An EDS cluster that ejects an endpoint after two 5xx in a row.
//! let pb = PbCluster {
//!     name: "petstore".into(),
//!     cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
//!         cluster::DiscoveryType::Eds as i32,
//!     )),
//!     outlier_detection: Some(OutlierDetection {
//!         consecutive_5xx: Some(UInt32Value { value: 2 }),
//!         ..Default::default()
//!     }),
//!     ..Default::default()
//! };
//! let stats = Stats::default();
//! let cluster = Cluster::compile(&pb, "v1", &stats, 1)?;
//!
//! // Its endpoints arrive (and change) as ClusterLoadAssignments.
//! let endpoint = |port: u32| LbEndpoint {
//!     host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
//!         address: Some(Address {
//!             address: Some(address::Address::SocketAddress(SocketAddress {
//!                 address: "127.0.0.1".into(),
//!                 port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
//!                 ..Default::default()
//!             })),
//!         }),
//!         ..Default::default()
//!     })),
//!     ..Default::default()
//! };
//! cluster.set_assignment(&ClusterLoadAssignment {
//!     cluster_name: "petstore".into(),
//!     endpoints: vec![LocalityLbEndpoints {
//!         lb_endpoints: vec![endpoint(8081), endpoint(8082)],
//!         ..Default::default()
//!     }],
//!     ..Default::default()
//! });
//! assert_eq!(cluster.members().len(), 2);
//!
//! // The proxy picks an endpoint per request and reports how it answered.
//! let first = cluster.pick(None, None).expect("an endpoint");
//! cluster.record_outcome(&first, Some(503));
//! cluster.record_outcome(&first, Some(503));
//! // Ejected: every request now goes to the other endpoint.
//! for _ in 0..4 {
//!     let picked = cluster.pick(None, None).expect("an endpoint");
//!     assert_ne!(picked.address, first.address);
//! }
//! assert_eq!(cluster.stats.outlier_detection_ejections_total.get(), 1);
//! # Ok(())
//! # }
//! ```

pub mod balance;
pub(crate) mod dynamic;
pub mod h1;
pub mod health;
mod priority;
pub mod subset;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::config::cluster::v3::{cluster, Cluster as PbCluster};
use envoy_types::pb::envoy::config::core::v3::{address, socket_address, HealthStatus};
use envoy_types::pb::envoy::config::endpoint::v3::{lb_endpoint, ClusterLoadAssignment};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    http_protocol_options::{explicit_http_config::ProtocolConfig, UpstreamProtocolOptions},
    HttpProtocolOptions,
};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use prost::Message;

use crate::body::Body;
use crate::router::action::pb_duration;
use crate::stats::{ClusterStats, Stats};
use balance::{Balancer, Policy};
use subset::{MatchCriteria, SubsetConfig, Subsets};

const UPSTREAM_TLS_TYPE: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";

/// The Envoy extension name of a cluster's HTTP protocol options.
pub const HTTP_PROTOCOL_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/// A cluster that cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cluster {cluster:?}: {message}")]
pub struct ClusterError {
    /// The cluster.
    pub cluster: String,
    /// What is wrong.
    pub message: String,
}

/// One upstream endpoint, with its health and load.
#[derive(Debug)]
pub struct Endpoint {
    /// Its address.
    pub address: SocketAddr,
    /// Its hostname (DNS clusters: the name it was resolved from), for auto host rewrite.
    pub hostname: String,
    /// Its load-balancing weight.
    pub weight: u32,
    /// Its priority level (`LocalityLbEndpoints.priority`; 0 is the highest).
    pub priority: u32,
    /// The cluster's transport socket match it connects with (an index into the cluster's
    /// matches); `None`: the cluster's own transport socket.
    socket: Option<usize>,
    /// `http://<address>` as a URI prefix, built once.
    pub(crate) origin: String,
    /// The address as a URI authority, built once.
    pub(crate) authority: http::uri::Authority,
    /// Its `envoy.lb` metadata, for subset load balancing.
    pub(crate) lb_metadata: subset::LbMetadata,
    active: AtomicU32,
    eds_healthy: AtomicBool,
    hc_healthy: AtomicBool,
    hc_failures: AtomicU32,
    hc_successes: AtomicU32,
    consecutive_5xx: AtomicU32,
    consecutive_gateway: AtomicU32,
    /// Milliseconds since the cluster's epoch until which the endpoint is ejected (0: not).
    ejected_until: AtomicU64,
    ejections: AtomicU32,
}

impl Endpoint {
    /// A healthy endpoint.
    pub fn new(address: SocketAddr, hostname: String, weight: u32) -> Self {
        Endpoint {
            address,
            hostname,
            weight: weight.max(1),
            priority: 0,
            socket: None,
            origin: format!("http://{address}"),
            authority: http::uri::Authority::try_from(address.to_string())
                .unwrap_or_else(|_| http::uri::Authority::from_static("0.0.0.0")),
            lb_metadata: subset::LbMetadata::new(),
            active: AtomicU32::new(0),
            eds_healthy: AtomicBool::new(true),
            hc_healthy: AtomicBool::new(true),
            hc_failures: AtomicU32::new(0),
            hc_successes: AtomicU32::new(0),
            consecutive_5xx: AtomicU32::new(0),
            consecutive_gateway: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            ejections: AtomicU32::new(0),
        }
    }

    /// Requests in flight to this endpoint.
    pub fn active(&self) -> u32 {
        self.active.load(Ordering::Relaxed)
    }

    /// Counts a request in flight until the guard is dropped.
    pub fn start_request(self: &Arc<Self>) -> ActiveRequest {
        self.active.fetch_add(1, Ordering::Relaxed);
        ActiveRequest(self.clone())
    }

    /// Whether EDS and active health checks consider it healthy.
    pub fn is_healthy(&self) -> bool {
        self.eds_healthy.load(Ordering::Relaxed) && self.hc_healthy.load(Ordering::Relaxed)
    }

    fn is_ejected(&self, now_ms: u64) -> bool {
        let until = self.ejected_until.load(Ordering::Relaxed);
        until != 0 && until > now_ms
    }
}

/// A request in flight to an endpoint (for least-request balancing).
#[derive(Debug)]
pub struct ActiveRequest(Arc<Endpoint>);

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Outlier detection settings (Envoy's defaults where unset).
#[derive(Debug, Clone)]
pub struct OutlierConfig {
    /// Consecutive 5xx (or connect failures) before ejection.
    pub consecutive_5xx: u32,
    /// Consecutive 502/503/504 (or connect failures) before ejection (0: off).
    pub consecutive_gateway_failure: u32,
    /// How often ejections are reconsidered.
    pub interval: Duration,
    /// Ejection time, multiplied by the number of times the endpoint was ejected.
    pub base_ejection_time: Duration,
    /// Most endpoints that may be ejected, in percent (at least one always may).
    pub max_ejection_percent: u32,
}

/// The circuit breaker of a cluster (Envoy's default thresholds: 1024 requests, 1024
/// connections, 3 retries).
#[derive(Debug)]
pub struct CircuitBreaker {
    max_requests: u32,
    max_retries: u32,
    requests: AtomicU32,
    retries: AtomicU32,
    /// Open HTTP/1 connections to the cluster's endpoints, across workers.
    pub(crate) connections: h1::ConnectionLimit,
}

/// A slot in a circuit breaker, released when dropped.
#[derive(Debug)]
pub struct BreakerSlot<'a>(&'a AtomicU32);

impl Drop for BreakerSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl CircuitBreaker {
    fn take<'a>(counter: &'a AtomicU32, max: u32) -> Option<BreakerSlot<'a>> {
        let prev = counter.fetch_add(1, Ordering::AcqRel);
        let slot = BreakerSlot(counter);
        (prev < max).then_some(slot)
    }

    /// A request slot, or `None` when the cluster is at `max_requests`.
    pub fn request(&self) -> Option<BreakerSlot<'_>> {
        Self::take(&self.requests, self.max_requests)
    }

    /// A retry slot, or `None` when the cluster is at `max_retries`.
    pub fn retry(&self) -> Option<BreakerSlot<'_>> {
        Self::take(&self.retries, self.max_retries)
    }
}

/// The HTTP client (connection pool) a cluster sends HTTP/2 and upgrades with.
pub(crate) type HttpClient = Client<Connector, Body>;

/// Connects hyper's client to an endpoint: TCP, then TLS when the cluster originates it.
#[derive(Clone, Debug)]
pub(crate) struct Connector {
    http: HttpConnector,
    tls: Option<crate::tls::UpstreamTls>,
    keepalive: Option<h1::Keepalive>,
}

impl tower::Service<http::Uri> for Connector {
    type Response = hyper_util::rt::TokioIo<h1::Stream>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let mut http = self.http.clone();
        let tls = self.tls.clone();
        let keepalive = self.keepalive;
        Box::pin(async move {
            let host = uri
                .host()
                .unwrap_or_default()
                .trim_matches(['[', ']'])
                .to_string();
            let tcp = http.call(uri).await?.into_inner();
            if let Some(keepalive) = keepalive {
                keepalive.apply(&tcp)?;
            }
            let Some(tls) = tls else {
                return Ok(hyper_util::rt::TokioIo::new(h1::Stream::Plain(tcp)));
            };
            let name = match tls.sni.clone() {
                Some(name) => name,
                None => rustls::pki_types::ServerName::try_from(host)?,
            };
            let stream = tokio_rustls::TlsConnector::from(tls.config.clone())
                .connect(name, tcp)
                .await?;
            Ok(hyper_util::rt::TokioIo::new(h1::Stream::Tls(Box::new(
                stream,
            ))))
        })
    }
}

thread_local! {
    /// The proxy worker this thread is (see [`set_worker`]).
    static WORKER: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// Marks the current thread as proxy worker `index`: clusters then send through that
/// worker's own connection pool, so a connection is only ever used by the thread (and
/// runtime) that opened it.
pub fn set_worker(index: usize) {
    WORKER.with(|w| w.set(Some(index)));
}

/// A cluster at run time.
#[derive(Debug)]
pub struct Cluster {
    name: Arc<str>,
    version: String,
    policy: Policy,
    panic_threshold: f64,
    members: RwLock<Arc<Vec<Arc<Endpoint>>>>,
    /// `lb_subset_config`, compiled.
    subset_config: Option<SubsetConfig>,
    picker: RwLock<Arc<Picker>>,
    /// The load assignment's overprovisioning factor, in percent (Envoy's default: 140).
    overprovisioning: AtomicU32,
    /// Names to resolve (STRICT_DNS / LOGICAL_DNS).
    dns: Vec<Assigned>,
    /// `transport_socket_matches`, in order: what an endpoint's
    /// `envoy.transport_socket_match` metadata must contain, and the socket it then uses
    /// (`None`: plain TCP).
    socket_matches: Vec<(
        envoy_types::pb::google::protobuf::Struct,
        Option<crate::tls::UpstreamTls>,
    )>,
    dns_refresh: Duration,
    /// One pool per worker, and a last one for everything else (health checks, ...).
    clients: Box<[HttpClient]>,
    /// HTTP/2 pools, per worker as above, of a cluster that follows the client's protocol
    /// (empty otherwise).
    h2_clients: Box<[HttpClient]>,
    /// HTTP/1 connections per worker (the last: everything else), used in the request's
    /// own task.
    h1_pools: Box<[Arc<h1::Pool>]>,
    connect_timeout: Duration,
    tls: Option<crate::tls::UpstreamTls>,
    http2: bool,
    /// HTTP/1 header names are written in proper case.
    http1_proper_case: bool,
    /// The most fields a response head may have (`max_headers_count`); HTTP/1 heads are held
    /// to it as they are read, HTTP/2 ones once hyper has read them.
    max_headers: usize,
    /// How long one attempt's exchange may last, answer body included
    /// (`max_stream_duration`).
    max_stream_duration: Option<Duration>,
    /// The PROXY protocol header its connections start with (HTTP/1.1 clusters only).
    proxy_protocol: Option<crate::proxy_protocol::Version>,
    /// The breaker.
    pub breaker: CircuitBreaker,
    pub(crate) health_check: Option<health::HealthCheckConfig>,
    pub(crate) outlier: Option<OutlierConfig>,
    /// The cluster's statistics.
    pub stats: Arc<ClusterStats>,
    epoch: Instant,
    /// `typed_extension_protocol_options` for HTTP filters (envoy-gloo's Lambda filter reads
    /// `io.solo.aws_lambda`); the HTTP protocol options are compiled above instead.
    protocol_options: std::collections::HashMap<String, envoy_types::pb::google::protobuf::Any>,
    /// A dynamic forward proxy cluster's DNS cache: its hosts come from requests.
    dynamic: Option<Box<dynamic::DynamicHosts>>,
    /// One host of a dynamic forward proxy cluster (whose membership gauges count hosts).
    dynamic_member: bool,
}

fn socket_addr(
    address: Option<&envoy_types::pb::envoy::config::core::v3::Address>,
) -> Option<(String, u16)> {
    match address?.address.as_ref()? {
        address::Address::SocketAddress(s) => match s.port_specifier.as_ref()? {
            socket_address::PortSpecifier::PortValue(p) => {
                Some((s.address.clone(), u16::try_from(*p).ok()?))
            }
            socket_address::PortSpecifier::NamedPort(_) => None,
        },
        _ => None,
    }
}

/// How the cluster's HTTP/1.1 connections are opened, kept and read, from its common and
/// HTTP/1 protocol options and `upstream_connection_options`, with Envoy's defaults for what
/// is unset. `headers_with_underscores_action` is not among them: Envoy applies it to
/// requests from clients only, and it has no effect in a cluster's options.
fn connection_options(
    common: Option<&envoy_types::pb::envoy::config::core::v3::HttpProtocolOptions>,
    http1: Option<&envoy_types::pb::envoy::config::core::v3::Http1ProtocolOptions>,
    pb: &PbCluster,
) -> Result<h1::ConnectionOptions, String> {
    let defaults = h1::ConnectionOptions::default();
    let keepalive = pb
        .upstream_connection_options
        .as_ref()
        .and_then(|o| o.tcp_keepalive.as_ref())
        .map(|k| h1::Keepalive {
            time: k
                .keepalive_time
                .as_ref()
                .map(|t| Duration::from_secs(t.value.into())),
            interval: k
                .keepalive_interval
                .as_ref()
                .map(|t| Duration::from_secs(t.value.into())),
            probes: k.keepalive_probes.as_ref().map(|p| p.value),
        });
    let max_headers = match common.and_then(|c| c.max_headers_count.as_ref()) {
        Some(m) if m.value == 0 => {
            return Err("common_http_protocol_options.max_headers_count must be at least 1".into())
        }
        Some(m) => m.value as usize,
        None => defaults.max_headers,
    };
    Ok(h1::ConnectionOptions {
        idle_timeout: match common.and_then(|c| c.idle_timeout.as_ref()) {
            Some(t) => Some(pb_duration(t)).filter(|t| !t.is_zero()),
            None => defaults.idle_timeout,
        },
        max_requests: common
            .and_then(|c| c.max_requests_per_connection.as_ref())
            .map(|m| m.value)
            .filter(|m| *m > 0),
        max_headers,
        keepalive,
        trailers: http1.is_some_and(|o| o.enable_trailers),
    })
}

/// The endpoint metadata namespace transport socket matches read (Envoy's).
const TRANSPORT_SOCKET_MATCH: &str = "envoy.transport_socket_match";

/// One endpoint of a load assignment.
#[derive(Debug, Clone)]
struct Assigned {
    host: String,
    port: u16,
    weight: u32,
    healthy: bool,
    priority: u32,
    lb_metadata: subset::LbMetadata,
    /// Its `envoy.transport_socket_match` metadata.
    socket_metadata: Option<envoy_types::pb::google::protobuf::Struct>,
}

/// The endpoints of a load assignment, every priority.
fn assignment_endpoints(cla: &ClusterLoadAssignment) -> Vec<Assigned> {
    let mut out = Vec::new();
    for locality in &cla.endpoints {
        for lb in &locality.lb_endpoints {
            let Some(lb_endpoint::HostIdentifier::Endpoint(e)) = &lb.host_identifier else {
                continue;
            };
            let Some((host, port)) = socket_addr(e.address.as_ref()) else {
                continue;
            };
            let healthy = !matches!(
                HealthStatus::try_from(lb.health_status),
                Ok(HealthStatus::Unhealthy | HealthStatus::Draining | HealthStatus::Timeout)
            );
            let weight = lb
                .load_balancing_weight
                .as_ref()
                .map(|w| w.value)
                .unwrap_or(1);
            let socket_metadata = lb
                .metadata
                .as_ref()
                .and_then(|m| m.filter_metadata.get(TRANSPORT_SOCKET_MATCH))
                .cloned();
            out.push(Assigned {
                host,
                port,
                weight,
                healthy,
                priority: locality.priority,
                lb_metadata: subset::endpoint_metadata(lb.metadata.as_ref()),
                socket_metadata,
            });
        }
    }
    out
}

/// The overprovisioning factor of a load assignment, in percent.
fn overprovisioning(cla: &ClusterLoadAssignment) -> u32 {
    cla.policy
        .as_ref()
        .and_then(|p| p.overprovisioning_factor.as_ref())
        .map(|f| f.value)
        .unwrap_or(priority::DEFAULT_OVERPROVISIONING)
}

/// A cluster's upstream transport socket: TLS (`Some`), or plain TCP (`None`).
/// What a cluster's transport socket asks for: TLS (`None`: plain TCP), and a PROXY protocol
/// header first (Envoy's `upstream_proxy_protocol` socket, wrapping either).
type TransportSocket = (
    Option<crate::tls::UpstreamTls>,
    Option<crate::proxy_protocol::Version>,
);

fn transport_socket(
    socket: &envoy_types::pb::envoy::config::core::v3::TransportSocket,
) -> Result<TransportSocket, String> {
    use envoy_types::pb::envoy::config::core::v3::{
        proxy_protocol_config, transport_socket::ConfigType,
    };
    use envoy_types::pb::envoy::extensions::transport_sockets::proxy_protocol::v3::ProxyProtocolUpstreamTransport;
    const RAW_BUFFER_TYPE: &str =
        "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer";
    const PROXY_PROTOCOL_TYPE: &str = "type.googleapis.com/envoy.extensions.transport_sockets.proxy_protocol.v3.ProxyProtocolUpstreamTransport";
    match &socket.config_type {
        Some(ConfigType::TypedConfig(any)) if any.type_url == UPSTREAM_TLS_TYPE => {
            let ctx = envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext::decode(any.value.as_slice())
                .map_err(|e| format!("invalid upstream TLS context: {e}"))?;
            Ok((Some(crate::tls::UpstreamTls::compile(&ctx)?), None))
        }
        Some(ConfigType::TypedConfig(any)) if any.type_url == RAW_BUFFER_TYPE => Ok((None, None)),
        Some(ConfigType::TypedConfig(any)) if any.type_url == PROXY_PROTOCOL_TYPE => {
            let wrapper = ProxyProtocolUpstreamTransport::decode(any.value.as_slice())
                .map_err(|e| format!("invalid upstream PROXY protocol socket: {e}"))?;
            let config = wrapper.config.unwrap_or_default();
            if config.pass_through_tlvs.is_some() || !config.added_tlvs.is_empty() {
                return Err("upstream PROXY protocol TLVs are not supported".into());
            }
            let version = match proxy_protocol_config::Version::try_from(config.version) {
                Ok(proxy_protocol_config::Version::V1) => crate::proxy_protocol::Version::V1,
                Ok(proxy_protocol_config::Version::V2) => crate::proxy_protocol::Version::V2,
                Err(_) => return Err(format!("unknown PROXY protocol version {}", config.version)),
            };
            let tls = match &wrapper.transport_socket {
                None => None,
                Some(inner) => match transport_socket(inner)? {
                    (_, Some(_)) => {
                        return Err("a PROXY protocol socket inside another is not supported".into())
                    }
                    (tls, None) => tls,
                },
            };
            Ok((tls, Some(version)))
        }
        None if socket.name == "envoy.transport_sockets.raw_buffer" => Ok((None, None)),
        _ => Err(format!(
            "transport socket {:?} is not supported",
            socket.name
        )),
    }
}

/// A balancer per priority level, and the share of requests each level gets.
#[derive(Debug)]
struct Levels {
    levels: Vec<priority::Level>,
    balancers: Vec<Balancer>,
}

impl Levels {
    fn empty(policy: Policy) -> Self {
        Levels {
            levels: Vec::new(),
            balancers: vec![Balancer::new(policy, Vec::new())],
        }
    }

    /// The balancer of the level a request goes to (Envoy chooses it with the request's hash
    /// when the route hashes, at random otherwise).
    fn choose(&self, hash: Option<u64>) -> Option<&Balancer> {
        if self.balancers.len() <= 1 {
            return self.balancers.first();
        }
        let point = hash.unwrap_or_else(|| fastrand::u64(..));
        self.balancers.get(priority::choose(&self.levels, point))
    }
}

/// What a cluster picks endpoints with: its priority levels over all endpoints, and its
/// subsets, each with priority levels of its own (Envoy's subset load balancer gives every
/// subset its own priority set).
#[derive(Debug)]
struct Picker {
    all: Arc<Levels>,
    subsets: Option<Subsets<Levels>>,
}

impl Picker {
    /// The levels for a request's subset criteria (`None`: no endpoint, as with
    /// `NO_FALLBACK`).
    fn levels(&self, criteria: Option<&MatchCriteria>) -> Option<&Arc<Levels>> {
        match &self.subsets {
            None => Some(&self.all),
            Some(subsets) => subsets.balancer(criteria),
        }
    }
}

/// Whether `pb` is a dynamic forward proxy cluster (`envoy.clusters.dynamic_forward_proxy`).
fn is_dynamic_forward_proxy(pb: &PbCluster) -> bool {
    matches!(&pb.cluster_discovery_type,
        Some(cluster::ClusterDiscoveryType::ClusterType(c)) if c.name == dynamic::DYNAMIC_FORWARD_PROXY)
}

impl Cluster {
    /// Compiles a cluster with a connection pool for each of `workers` workers;
    /// `stats` keeps its counters across versions of the cluster.
    pub fn compile(
        pb: &PbCluster,
        version: &str,
        stats: &Stats,
        workers: usize,
    ) -> Result<Self, ClusterError> {
        Self::compile_with(pb, version, stats.cluster(&pb.name), workers)
    }

    /// [`compile`](Self::compile) with the statistics it counts into.
    pub(crate) fn compile_with(
        pb: &PbCluster,
        version: &str,
        stats: Arc<ClusterStats>,
        workers: usize,
    ) -> Result<Self, ClusterError> {
        let err = |message: String| ClusterError {
            cluster: pb.name.clone(),
            message,
        };
        let policy = match cluster::LbPolicy::try_from(pb.lb_policy) {
            Ok(cluster::LbPolicy::RoundRobin) => Policy::RoundRobin,
            Ok(cluster::LbPolicy::LeastRequest) => Policy::LeastRequest {
                choices: match &pb.lb_config {
                    Some(cluster::LbConfig::LeastRequestLbConfig(c)) => {
                        c.choice_count.as_ref().map(|c| c.value).unwrap_or(2)
                    }
                    _ => 2,
                },
            },
            Ok(cluster::LbPolicy::Random) => Policy::Random,
            Ok(cluster::LbPolicy::RingHash) => {
                let (min, max) = match &pb.lb_config {
                    Some(cluster::LbConfig::RingHashLbConfig(c)) => (
                        c.minimum_ring_size
                            .as_ref()
                            .map(|v| v.value)
                            .unwrap_or(1024),
                        c.maximum_ring_size
                            .as_ref()
                            .map(|v| v.value)
                            .unwrap_or(8 << 20),
                    ),
                    _ => (1024, 8 << 20),
                };
                Policy::RingHash {
                    min_ring_size: min,
                    max_ring_size: max,
                }
            }
            Ok(cluster::LbPolicy::Maglev) => Policy::Maglev,
            // The dynamic forward proxy's hosts are each balanced round robin.
            Ok(cluster::LbPolicy::ClusterProvided) if is_dynamic_forward_proxy(pb) => {
                Policy::RoundRobin
            }
            other => return Err(err(format!("lb_policy {other:?} is not supported"))),
        };
        let mut dynamic = None;
        let discovery = match &pb.cluster_discovery_type {
            Some(cluster::ClusterDiscoveryType::Type(t)) => cluster::DiscoveryType::try_from(*t)
                .map_err(|_| err(format!("unknown discovery type {t}")))?,
            Some(cluster::ClusterDiscoveryType::ClusterType(c))
                if c.name == dynamic::DYNAMIC_FORWARD_PROXY =>
            {
                dynamic = Some(Box::new(
                    dynamic::DynamicHosts::compile(
                        pb,
                        c.typed_config.as_ref(),
                        version,
                        stats.clone(),
                        workers,
                    )
                    .map_err(err)?,
                ));
                cluster::DiscoveryType::Eds
            }
            Some(cluster::ClusterDiscoveryType::ClusterType(c)) => {
                return Err(err(format!(
                    "custom cluster type {:?} is not supported",
                    c.name
                )))
            }
            None => cluster::DiscoveryType::Static,
        };
        let mut dns = Vec::new();
        let mut members = Vec::new();
        let inline = pb.load_assignment.as_ref().map(assignment_endpoints);
        match discovery {
            cluster::DiscoveryType::Eds => {}
            cluster::DiscoveryType::Static => {
                for a in inline.unwrap_or_default() {
                    a.host.parse::<std::net::IpAddr>().map_err(|_| {
                        err(format!("STATIC endpoint {:?} is not an IP address", a.host))
                    })?;
                    members.push((a, String::new()));
                }
            }
            cluster::DiscoveryType::StrictDns | cluster::DiscoveryType::LogicalDns => {
                for mut a in inline.unwrap_or_default() {
                    // DNS clusters take the health of their checks only.
                    a.healthy = true;
                    match a.host.parse::<std::net::IpAddr>() {
                        Ok(_) => {
                            let host = a.host.clone();
                            members.push((a, host));
                        }
                        Err(_) => dns.push(a),
                    }
                }
            }
            cluster::DiscoveryType::OriginalDst => {
                return Err(err("ORIGINAL_DST clusters are not supported".into()))
            }
        }
        let (tls, proxy_protocol) = match &pb.transport_socket {
            None => (None, None),
            Some(socket) => transport_socket(socket).map_err(err)?,
        };
        let mut socket_matches = Vec::new();
        for m in &pb.transport_socket_matches {
            let socket = match &m.transport_socket {
                Some(socket) => match transport_socket(socket)
                    .map_err(|e| err(format!("transport_socket_matches {:?}: {e}", m.name)))?
                {
                    (tls, None) => tls,
                    (_, Some(_)) => {
                        return Err(err(format!(
                        "transport_socket_matches {:?}: the PROXY protocol is not supported here",
                        m.name
                    )))
                    }
                },
                None => None,
            };
            socket_matches.push((m.r#match.clone().unwrap_or_default(), socket));
        }
        // HTTP/2, with its settings, or HTTP/1.1 (with its own), or whichever the client
        // speaks (with both), and the options of both.
        let mut follows_downstream = false;
        let (http2_options, http1_options, common) = match pb
            .typed_extension_protocol_options
            .get(HTTP_PROTOCOL_OPTIONS)
        {
            Some(any) => {
                let options = HttpProtocolOptions::decode(any.value.as_slice())
                    .map_err(|e| err(format!("invalid HTTP protocol options: {e}")))?;
                let (h2, h1) = match options.upstream_protocol_options {
                    Some(UpstreamProtocolOptions::ExplicitHttpConfig(c)) => match c.protocol_config
                    {
                        Some(ProtocolConfig::Http2ProtocolOptions(h2)) => (Some(h2), None),
                        Some(ProtocolConfig::HttpProtocolOptions(h1)) => (None, Some(h1)),
                        _ => (None, None),
                    },
                    Some(UpstreamProtocolOptions::UseDownstreamProtocolConfig(c)) => {
                        follows_downstream = true;
                        (
                            Some(c.http2_protocol_options.unwrap_or_default()),
                            c.http_protocol_options,
                        )
                    }
                    _ => (None, None),
                };
                (h2, h1, options.common_http_protocol_options)
            }
            #[allow(deprecated)]
            None => (
                {
                    // The deprecated `protocol_selection` Gloo writes for HTTP/1.1 Upstreams.
                    follows_downstream = pb.protocol_selection
                        == cluster::ClusterProtocolSelection::UseDownstreamProtocol as i32;
                    pb.http2_protocol_options
                        .clone()
                        .or_else(|| follows_downstream.then(Default::default))
                },
                pb.http_protocol_options.clone(),
                pb.common_http_protocol_options.map(|mut common| {
                    if common.max_requests_per_connection.is_none() {
                        common.max_requests_per_connection = pb.max_requests_per_connection;
                    }
                    common
                }),
            ),
        };
        let connection_options =
            connection_options(common.as_ref(), http1_options.as_ref(), pb).map_err(err)?;
        let max_stream_duration = common
            .as_ref()
            .and_then(|c| c.max_stream_duration.as_ref())
            .map(pb_duration)
            .filter(|d| !d.is_zero());
        let http1_proper_case = crate::config::http1_proper_case(
            http1_options.as_ref(),
            &format!("cluster {:?} HTTP/1 options", pb.name),
        );
        // Always HTTP/2; or HTTP/2 for the clients that speak it.
        let http2 = http2_options.is_some() && !follows_downstream;
        let speaks_http2 = http2_options.is_some();
        // HTTP/2 over TLS is negotiated by ALPN.
        let with_h2_alpn = |tls: &Option<crate::tls::UpstreamTls>| match tls {
            Some(t) if t.config.alpn_protocols.is_empty() => {
                let mut t = t.clone();
                let mut config = (*t.config).clone();
                config.alpn_protocols = vec![b"h2".to_vec()];
                t.config = Arc::new(config);
                Some(t)
            }
            other => other.clone(),
        };
        let h2_tls = with_h2_alpn(&tls);
        let tls = if http2 { h2_tls.clone() } else { tls };
        if speaks_http2 && proxy_protocol.is_some() {
            return Err(err(
                "the PROXY protocol towards HTTP/2 endpoints is not supported".into(),
            ));
        }
        if let Some(limit) = http2_options
            .as_ref()
            .and_then(|h2| h2.max_concurrent_streams.as_ref())
        {
            tracing::warn!(
                cluster = %pb.name,
                "http2_protocol_options.max_concurrent_streams ({}) is not applied: each endpoint's streams share one HTTP/2 connection, as many as the endpoint allows",
                limit.value
            );
        }
        if speaks_http2 && !socket_matches.is_empty() {
            return Err(err(
                "transport_socket_matches on an HTTP/2 cluster are not supported".into(),
            ));
        }
        let connect_timeout = pb
            .connect_timeout
            .as_ref()
            .map(pb_duration)
            .unwrap_or(Duration::from_secs(5));
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(connect_timeout));
        if http2 && connection_options.max_requests.is_some() {
            tracing::warn!(
                cluster = %pb.name,
                "max_requests_per_connection is not applied to HTTP/2 connections: their streams are not counted"
            );
        }
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .pool_idle_timeout(connection_options.idle_timeout)
            .pool_max_idle_per_host(1024)
            .http2_only(http2)
            .http1_title_case_headers(http1_proper_case)
            .set_host(false);
        // The windows an HTTP/2 upstream may send into (Envoy's `http2_protocol_options`).
        if let Some(h2) = &http2_options {
            if let Some(window) = &h2.initial_stream_window_size {
                builder.http2_initial_stream_window_size(window.value);
            }
            if let Some(window) = &h2.initial_connection_window_size {
                builder.http2_initial_connection_window_size(window.value);
            }
        }
        let connector = Connector {
            http: connector,
            tls: tls.clone(),
            keepalive: connection_options.keepalive,
        };
        let clients: Box<[HttpClient]> = (0..=workers)
            .map(|_| builder.build(connector.clone()))
            .collect();
        // A cluster that follows the client's protocol has HTTP/2 clients too.
        let h2_clients: Box<[HttpClient]> = if follows_downstream {
            builder.http2_only(true);
            let connector = Connector {
                tls: h2_tls,
                ..connector.clone()
            };
            (0..=workers)
                .map(|_| builder.build(connector.clone()))
                .collect()
        } else {
            Box::default()
        };
        let thresholds = pb
            .circuit_breakers
            .as_ref()
            .and_then(|c| c.thresholds.first());
        let breaker = CircuitBreaker {
            max_requests: thresholds
                .and_then(|t| t.max_requests.as_ref())
                .map(|v| v.value)
                .unwrap_or(1024),
            max_retries: thresholds
                .and_then(|t| t.max_retries.as_ref())
                .map(|v| v.value)
                .unwrap_or(3),
            requests: AtomicU32::new(0),
            retries: AtomicU32::new(0),
            connections: h1::ConnectionLimit::new(
                thresholds
                    .and_then(|t| t.max_connections.as_ref())
                    .map(|v| v.value)
                    .unwrap_or(1024),
                thresholds
                    .and_then(|t| t.max_pending_requests.as_ref())
                    .map(|v| v.value)
                    .unwrap_or(1024),
            ),
        };
        let outlier = pb.outlier_detection.as_ref().map(|o| OutlierConfig {
            consecutive_5xx: o.consecutive_5xx.as_ref().map(|v| v.value).unwrap_or(5),
            consecutive_gateway_failure: o
                .consecutive_gateway_failure
                .as_ref()
                .map(|v| v.value)
                .unwrap_or(0),
            interval: o
                .interval
                .as_ref()
                .map(pb_duration)
                .unwrap_or(Duration::from_secs(10)),
            base_ejection_time: o
                .base_ejection_time
                .as_ref()
                .map(pb_duration)
                .unwrap_or(Duration::from_secs(30)),
            max_ejection_percent: o
                .max_ejection_percent
                .as_ref()
                .map(|v| v.value)
                .unwrap_or(10),
        });
        let health_check = pb
            .health_checks
            .first()
            .map(health::HealthCheckConfig::compile)
            .transpose()
            .map_err(err)?;
        let panic_threshold = pb
            .common_lb_config
            .as_ref()
            .and_then(|c| c.healthy_panic_threshold.as_ref())
            .map(|p| p.value)
            .unwrap_or(50.0);
        // `dns_refresh_rate` is deprecated in favour of a DNS resolver extension, but it is
        // what a STRICT_DNS cluster without one carries.
        #[allow(deprecated)]
        let dns_refresh = pb.dns_refresh_rate.as_ref().map(pb_duration);
        #[allow(deprecated)]
        if pb.respect_dns_ttl {
            tracing::warn!(
                cluster = %pb.name,
                "respect_dns_ttl is not applied: names are resolved again every dns_refresh_rate (the system resolver gives no TTLs)"
            );
        }
        if pb.preconnect_policy.is_some() {
            tracing::warn!(
                cluster = %pb.name,
                "preconnect_policy is not applied: connections are opened when requests need them"
            );
        }
        let subset_config = pb
            .lb_subset_config
            .as_ref()
            .map(SubsetConfig::compile)
            .transpose()
            .map_err(err)?;
        let cluster = Cluster {
            name: pb.name.as_str().into(),
            version: version.to_string(),
            policy,
            panic_threshold,
            members: RwLock::new(Arc::new(Vec::new())),
            subset_config,
            picker: RwLock::new(Arc::new(Picker {
                all: Arc::new(Levels::empty(policy)),
                subsets: None,
            })),
            overprovisioning: AtomicU32::new(
                pb.load_assignment
                    .as_ref()
                    .map(overprovisioning)
                    .unwrap_or(priority::DEFAULT_OVERPROVISIONING),
            ),
            dns,
            socket_matches,
            dns_refresh: dns_refresh
                .filter(|d| !d.is_zero())
                .unwrap_or(Duration::from_secs(5)),
            clients,
            h2_clients,
            h1_pools: (0..=workers)
                .map(|_| Arc::new(h1::Pool::new(connection_options)))
                .collect(),
            connect_timeout,
            tls,
            http2,
            http1_proper_case,
            max_headers: connection_options.max_headers,
            max_stream_duration,
            proxy_protocol,
            breaker,
            health_check,
            outlier,
            stats,
            epoch: Instant::now(),
            protocol_options: pb
                .typed_extension_protocol_options
                .iter()
                .filter(|(name, _)| name.as_str() != HTTP_PROTOCOL_OPTIONS)
                .map(|(name, any)| (name.clone(), any.clone()))
                .collect(),
            dynamic,
            dynamic_member: false,
        };
        let members = members
            .iter()
            .filter_map(|(a, hostname)| {
                let ip = a.host.parse().ok()?;
                Some(Arc::new(cluster.endpoint(
                    a,
                    SocketAddr::new(ip, a.port),
                    hostname.clone(),
                )))
            })
            .collect();
        cluster.set_members(members);
        Ok(cluster)
    }

    /// The run-time endpoint for an assigned one at `address`.
    fn endpoint(&self, a: &Assigned, address: SocketAddr, hostname: String) -> Endpoint {
        let mut e = Endpoint::new(address, hostname, a.weight);
        e.eds_healthy.store(a.healthy, Ordering::Relaxed);
        e.priority = a.priority;
        e.lb_metadata = a.lb_metadata.clone();
        e.socket = self.socket_matches.iter().position(|(criteria, _)| {
            criteria
                .fields
                .iter()
                .all(|(k, v)| a.socket_metadata.as_ref().and_then(|m| m.fields.get(k)) == Some(v))
        });
        e
    }

    /// A dynamic forward proxy cluster's DNS cache (`None`: its endpoints are configured).
    pub(crate) fn dynamic(&self) -> Option<&dynamic::DynamicHosts> {
        self.dynamic.as_deref()
    }

    /// The cluster's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The version of the Envoy resource it was compiled from.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The cluster's `typed_extension_protocol_options[name]`, for filters that read options
    /// of the cluster a request goes to (envoy-gloo's Lambda filter: `io.solo.aws_lambda`).
    pub fn protocol_options(&self, name: &str) -> Option<&envoy_types::pb::google::protobuf::Any> {
        self.protocol_options.get(name)
    }

    /// How long one attempt's exchange may last, its answer's body included: the cluster's
    /// `max_stream_duration`.
    pub fn max_stream_duration(&self) -> Option<Duration> {
        self.max_stream_duration
    }

    /// The PROXY protocol header the cluster's connections start with, if any.
    pub fn proxy_protocol(&self) -> Option<crate::proxy_protocol::Version> {
        self.proxy_protocol
    }

    /// Whether requests go upstream as HTTP/2, whatever the client speaks.
    pub fn is_http2(&self) -> bool {
        self.http2
    }

    /// The HTTP version a request the client sent in `downstream` goes upstream in: HTTP/2
    /// for an HTTP/2 cluster, and for an HTTP/2 client of one that follows the client's
    /// protocol (`use_downstream_protocol_config`); HTTP/1.1 otherwise.
    pub fn upstream_version(&self, downstream: http::Version) -> http::Version {
        if self.http2 || (!self.h2_clients.is_empty() && downstream == http::Version::HTTP_2) {
            http::Version::HTTP_2
        } else {
            http::Version::HTTP_11
        }
    }

    fn worker_index(&self) -> usize {
        let last = self.clients.len() - 1;
        WORKER.with(|w| w.get()).unwrap_or(last).min(last)
    }

    /// The (hyper) connection pool of the current worker, for HTTP/2 and upgrades.
    pub(crate) fn client(&self) -> &HttpClient {
        &self.clients[self.worker_index()]
    }

    /// Sends a request (its URI names the endpoint) on the current worker's connections and
    /// returns the response: HTTP/1.1 in the calling task; HTTP/2 and protocol upgrades
    /// through hyper's client.
    pub async fn send(
        &self,
        req: http::Request<Body>,
        endpoint: &Endpoint,
    ) -> Result<http::Response<Body>, h1::SendError> {
        self.send_from(req, endpoint, None).await
    }

    /// [`send`](Self::send) for a client connection `origin`, which a cluster that starts
    /// its connections with a PROXY protocol header names there (and pools them by).
    pub async fn send_from(
        &self,
        req: http::Request<Body>,
        endpoint: &Endpoint,
        origin: Option<&crate::proxy_protocol::Origin>,
    ) -> Result<http::Response<Body>, h1::SendError> {
        let upgrade = req.headers().contains_key(http::header::UPGRADE);
        let follows_to_h2 = !self.h2_clients.is_empty() && req.version() == http::Version::HTTP_2;
        if self.http2 || follows_to_h2 || (upgrade && self.proxy_protocol.is_none()) {
            let client = if follows_to_h2 {
                &self.h2_clients[self.worker_index()]
            } else {
                self.client()
            };
            // Boxed: hyper's client future, inline, made every request's future larger,
            // HTTP/1 ones included.
            return match Box::pin(client.request(req)).await {
                Ok(r) if r.headers().len() > self.max_headers => {
                    Err(h1::SendError::Protocol(h1::TOO_MANY_HEADERS.into()))
                }
                Ok(r) => Ok(r.map(Body::from)),
                Err(e) if e.is_connect() => Err(h1::SendError::Connect(std::io::Error::other(e))),
                Err(e) => Err(h1::SendError::Reset(std::io::Error::other(e))),
            };
        }
        let pool = &self.h1_pools[self.worker_index()];
        let exchange = self.exchange(endpoint, origin);
        if upgrade {
            // hyper's pool cannot start a connection with a PROXY protocol header.
            return Box::pin(h1::send_upgrade(pool, exchange, req)).await;
        }
        std::pin::pin!(h1::send(pool, exchange, req)).await
    }

    /// A connection of its own to `endpoint` (TCP, the cluster's PROXY protocol header for
    /// `origin`, its TLS), under its connection limit, for a TCP proxy to tunnel a client's
    /// connection through. The second value holds the connection's place under the limit.
    pub(crate) async fn open_tunnel(
        &self,
        endpoint: &Endpoint,
        origin: Option<&crate::proxy_protocol::Origin>,
    ) -> Result<(h1::Stream, impl Send + Sync), h1::SendError> {
        let exchange = self.exchange(endpoint, origin);
        let keepalive = self.h1_pools.last().and_then(|p| p.keepalive());
        h1::open_tunnel(&exchange, keepalive).await
    }

    /// How a connection to `endpoint` is made and held: its address, the cluster's connect
    /// timeout and limit, the endpoint's transport socket (or the cluster's), its HTTP/1
    /// header case, and the PROXY protocol header naming `origin` when the cluster sends one.
    fn exchange<'a>(
        &'a self,
        endpoint: &Endpoint,
        origin: Option<&'a crate::proxy_protocol::Origin>,
    ) -> h1::Exchange<'a> {
        let tls = match endpoint.socket {
            Some(i) => self.socket_matches.get(i).and_then(|(_, tls)| tls.as_ref()),
            None => self.tls.as_ref(),
        };
        h1::Exchange {
            address: endpoint.address,
            connect_timeout: self.connect_timeout,
            tls,
            limit: &self.breaker.connections,
            proper_case: self.http1_proper_case,
            proxy_protocol: self.proxy_protocol,
            origin: origin.filter(|_| self.proxy_protocol.is_some()),
        }
    }

    /// The endpoints, healthy or not.
    pub fn members(&self) -> Arc<Vec<Arc<Endpoint>>> {
        match self.members.read() {
            Ok(m) => m.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the endpoints with those of an EDS update. Endpoints that stay keep their
    /// health state and pooled connections.
    pub fn set_assignment(&self, cla: &ClusterLoadAssignment) {
        let mut members = Vec::new();
        for a in assignment_endpoints(cla) {
            let Ok(ip) = a.host.parse::<std::net::IpAddr>() else {
                tracing::warn!(cluster = %self.name, "EDS endpoint {:?} is not an IP address; skipped", a.host);
                continue;
            };
            members.push(Arc::new(self.endpoint(
                &a,
                SocketAddr::new(ip, a.port),
                String::new(),
            )));
        }
        self.overprovisioning
            .store(overprovisioning(cla), Ordering::Relaxed);
        self.set_members(members);
    }

    /// Replaces the endpoints (reusing the state of endpoints that stay) and rebuilds the
    /// balancer.
    pub(crate) fn set_members(&self, fresh: Vec<Arc<Endpoint>>) {
        let old = self.members();
        let merged: Vec<Arc<Endpoint>> = fresh
            .into_iter()
            .map(|e| {
                match old.iter().find(|o| {
                    o.address == e.address
                        && o.weight == e.weight
                        && o.priority == e.priority
                        && o.socket == e.socket
                        && o.lb_metadata == e.lb_metadata
                }) {
                    Some(o) => {
                        o.eds_healthy
                            .store(e.eds_healthy.load(Ordering::Relaxed), Ordering::Relaxed);
                        o.clone()
                    }
                    None => e,
                }
            })
            .collect();
        match self.members.write() {
            Ok(mut m) => *m = Arc::new(merged),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(merged),
        }
        self.rebuild();
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Priority levels over `group`: one balancer per priority over its available endpoints
    /// (healthy and not ejected; all of them when the level is in panic), with the share of
    /// load each level gets, as Envoy computes them. Also how many were available.
    fn levels_over(&self, group: &[Arc<Endpoint>], now: u64) -> (Levels, usize) {
        let mut priorities: Vec<u32> = group.iter().map(|e| e.priority).collect();
        priorities.sort_unstable();
        priorities.dedup();
        let mut all_available = 0;
        let mut per_level = Vec::with_capacity(priorities.len());
        for p in &priorities {
            let level: Vec<Arc<Endpoint>> =
                group.iter().filter(|e| e.priority == *p).cloned().collect();
            let available: Vec<Arc<Endpoint>> = level
                .iter()
                .filter(|e| e.is_healthy() && !e.is_ejected(now))
                .cloned()
                .collect();
            all_available += available.len();
            per_level.push((level, available));
        }
        let counts: Vec<(usize, usize)> = per_level
            .iter()
            .map(|(level, available)| (level.len(), available.len()))
            .collect();
        let levels = priority::levels(
            &counts,
            self.overprovisioning.load(Ordering::Relaxed),
            self.panic_threshold,
        );
        let balancers = if per_level.is_empty() {
            vec![Balancer::new(self.policy, Vec::new())]
        } else {
            per_level
                .into_iter()
                .zip(&levels)
                .map(|((level, available), l)| {
                    Balancer::new(self.policy, if l.panic { level } else { available })
                })
                .collect()
        };
        (Levels { levels, balancers }, all_available)
    }

    /// Rebuilds the priority levels over all endpoints, and the subsets, each with priority
    /// levels over its own endpoints.
    pub(crate) fn rebuild(&self) {
        let members = self.members();
        let now = self.now_ms();
        let (all, available) = self.levels_over(&members, now);
        // A dynamic forward proxy's gauges count its hosts, not one host's addresses.
        if !self.dynamic_member && self.dynamic.is_none() {
            self.stats
                .membership_total
                .store(members.len() as u64, Ordering::Relaxed);
            self.stats
                .membership_healthy
                .store(available as u64, Ordering::Relaxed);
        }
        let all = Arc::new(all);
        let subsets = self.subset_config.as_ref().map(|config| {
            Subsets::build(config, &members, &all, |group| {
                self.levels_over(&group, now).0
            })
        });
        let picker = Arc::new(Picker { all, subsets });
        match self.picker.write() {
            Ok(mut b) => *b = picker,
            Err(poisoned) => *poisoned.into_inner() = picker,
        }
    }

    fn picker(&self) -> Arc<Picker> {
        match self.picker.read() {
            Ok(b) => b.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Picks an endpoint for a request with subset `criteria` (the route's `metadata_match`;
    /// ignored without `lb_subset_config`); `None`: no endpoint at all.
    pub fn pick(
        &self,
        criteria: Option<&MatchCriteria>,
        hash: Option<u64>,
    ) -> Option<Arc<Endpoint>> {
        // Every request comes here: read under the lock rather than cloning the picker.
        let picker = match self.picker.read() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        picker.levels(criteria)?.choose(hash)?.pick(hash).cloned()
    }

    /// Picks an endpoint other than `avoid` when there is one (for retries), among those
    /// [`Cluster::pick`] chooses from for `criteria`.
    pub fn pick_other(
        &self,
        criteria: Option<&MatchCriteria>,
        avoid: &SocketAddr,
    ) -> Option<Arc<Endpoint>> {
        let picker = self.picker();
        let levels = picker.levels(criteria)?;
        for _ in 0..3 {
            let Some(balancer) = levels.choose(None) else {
                break;
            };
            let Some(e) = balancer.pick(None) else {
                continue;
            };
            if &e.address != avoid || balancer.len() == 1 {
                return Some(e.clone());
            }
        }
        // The levels in order of priority: the first other endpoint with any load.
        levels
            .balancers
            .iter()
            .zip(
                levels
                    .levels
                    .iter()
                    .map(|l| l.load)
                    .chain(std::iter::repeat(100)),
            )
            .filter(|(_, load)| *load > 0)
            .flat_map(|(b, _)| b.endpoints())
            .find(|e| &e.address != avoid)
            .cloned()
    }

    /// Records the outcome of a request for outlier detection: `Some(status)` for an answer,
    /// `None` for a connect failure or reset.
    pub fn record_outcome(&self, endpoint: &Endpoint, status: Option<u16>) {
        let Some(outlier) = &self.outlier else { return };
        let failure = status.is_none_or(|s| s >= 500);
        let gateway = status.is_none_or(|s| (502..=504).contains(&s));
        if !failure {
            endpoint.consecutive_5xx.store(0, Ordering::Relaxed);
            endpoint.consecutive_gateway.store(0, Ordering::Relaxed);
            return;
        }
        let c5 = endpoint.consecutive_5xx.fetch_add(1, Ordering::Relaxed) + 1;
        let cg = if gateway {
            endpoint.consecutive_gateway.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            endpoint.consecutive_gateway.store(0, Ordering::Relaxed);
            0
        };
        let trip = (outlier.consecutive_5xx > 0 && c5 >= outlier.consecutive_5xx)
            || (outlier.consecutive_gateway_failure > 0
                && cg >= outlier.consecutive_gateway_failure);
        if trip {
            self.eject(endpoint, outlier);
        }
    }

    fn eject(&self, endpoint: &Endpoint, outlier: &OutlierConfig) {
        let now = self.now_ms();
        if endpoint.is_ejected(now) {
            return;
        }
        let members = self.members();
        let ejected = members.iter().filter(|e| e.is_ejected(now)).count();
        let allowed = (members.len() * outlier.max_ejection_percent as usize / 100).max(1);
        if ejected >= allowed {
            return;
        }
        let times = endpoint.ejections.fetch_add(1, Ordering::Relaxed) + 1;
        let duration = outlier.base_ejection_time.saturating_mul(times);
        let until = now
            .saturating_add(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
            .max(1);
        endpoint.ejected_until.store(until, Ordering::Relaxed);
        endpoint.consecutive_5xx.store(0, Ordering::Relaxed);
        endpoint.consecutive_gateway.store(0, Ordering::Relaxed);
        self.stats.outlier_detection_ejections_total.inc();
        tracing::info!(cluster = %self.name, endpoint = %endpoint.address, "ejected for {duration:?} (outlier detection)");
        self.rebuild();
    }

    /// Returns ejected endpoints whose time is up (called every outlier interval).
    pub(crate) fn unject_expired(&self) {
        let now = self.now_ms();
        let mut changed = false;
        for e in self.members().iter() {
            let until = e.ejected_until.load(Ordering::Relaxed);
            if until != 0 && until <= now {
                e.ejected_until.store(0, Ordering::Relaxed);
                changed = true;
            }
        }
        if changed {
            self.rebuild();
        }
    }

    /// Whether the cluster resolves DNS names.
    pub(crate) fn needs_dns(&self) -> bool {
        !self.dns.is_empty()
    }

    /// Resolves the cluster's DNS names once and installs the addresses.
    pub(crate) async fn resolve_dns(&self) {
        let mut members: Vec<Arc<Endpoint>> = self
            .members()
            .iter()
            .filter(|e| e.hostname.parse::<std::net::IpAddr>().is_ok())
            .cloned()
            .collect();
        for name in &self.dns {
            match tokio::net::lookup_host((name.host.as_str(), name.port)).await {
                Ok(addrs) => {
                    for a in addrs {
                        members.push(Arc::new(self.endpoint(name, a, name.host.clone())));
                    }
                }
                Err(e) => {
                    tracing::warn!(cluster = %self.name, "cannot resolve {}: {e}", name.host)
                }
            }
        }
        self.set_members(members);
    }

    /// How often DNS names are resolved again.
    pub(crate) fn dns_refresh(&self) -> Duration {
        self.dns_refresh
    }
}
