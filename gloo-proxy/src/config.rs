//! From xDS resources to the proxy's run-time configuration.
//!
//! The proxy is configured only by Envoy resources (Listener, RouteConfiguration, Cluster,
//! ClusterLoadAssignment), whether they come from the in-process snapshot cache (`gloo run`)
//! or over ADS (`gloo proxy`). A [`Compiler`] turns each new set of resources into a
//! [`ProxyConfig`], reusing what did not change (by resource version): an endpoint update
//! touches only the endpoints of its cluster; an unchanged cluster keeps its connection pool
//! and health state. A resource that does not compile is reported and its last good version
//! stays in force.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::config::cluster::v3::{cluster, Cluster as PbCluster};
use envoy_types::pb::envoy::config::core::v3::{
    address, http_protocol_options::HeadersWithUnderscoresAction, socket_address,
};
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::{filter, Listener};
use envoy_types::pb::envoy::config::route::v3::FilterConfig;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::{
        ForwardClientCertDetails, PathWithEscapedSlashesAction, RouteSpecifier, StripPortMode,
    },
    http_filter, HttpConnectionManager,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext;
use envoy_types::pb::google::protobuf::Any;
use prost::Message;

use crate::body::Body;
use crate::filter::{FilterFactory, FilterLayer, FilterRegistry, HttpService, RouteInfo, ROUTER};
use crate::router::action::{pb_duration, HeaderMutations};
use crate::router::RouteTable;
use crate::stats::Stats;
use crate::upstream::Cluster;

/// Type URL of Envoy listeners.
pub const LISTENER_TYPE: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
/// Type URL of Envoy route configurations.
pub const ROUTE_TYPE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
/// Type URL of Envoy clusters.
pub const CLUSTER_TYPE: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
/// Type URL of Envoy load assignments.
pub const ENDPOINT_TYPE: &str =
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
const DOWNSTREAM_TLS_TYPE: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";
const HCM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

/// One xDS resource as received.
#[derive(Debug, Clone, PartialEq)]
pub struct XdsResource {
    /// Its version.
    pub version: String,
    /// The packed resource.
    pub body: Arc<Any>,
}

/// The xDS resources a proxy is configured from, by type URL, then name.
///
/// ```
/// use gloo_proxy::config::XdsResources;
/// let resources = XdsResources::from_snapshot(&gloo_xds::Snapshot::new());
/// assert!(resources.of_type(gloo_proxy::config::LISTENER_TYPE).is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct XdsResources {
    /// Resources by type URL, then by name.
    pub by_type: BTreeMap<String, BTreeMap<String, XdsResource>>,
}

static EMPTY: BTreeMap<String, XdsResource> = BTreeMap::new();

impl XdsResources {
    /// The resources of an in-process snapshot (shared, not copied). Resources served only by
    /// name (API listeners for proxyless gRPC) are not the proxy's.
    pub fn from_snapshot(snapshot: &gloo_xds::Snapshot) -> Self {
        Self::collect(snapshot.resources.iter().map(|(type_url, resources)| {
            let served = resources.iter().filter(|(_, r)| !r.only_by_name);
            (
                type_url,
                served.map(|(name, r)| (name, &r.version, &r.body)),
            )
        }))
    }

    /// The resources an ADS client holds.
    pub fn from_client_state(state: &gloo_xds::client::ClientState) -> Self {
        Self::collect(state.resources.iter().map(|(type_url, resources)| {
            (
                type_url,
                resources
                    .iter()
                    .map(|(name, r)| (name, &r.version, &r.body)),
            )
        }))
    }

    /// Resources given by type URL as (name, version, body), bodies shared.
    fn collect<'a, R>(types: impl Iterator<Item = (&'a String, R)>) -> Self
    where
        R: Iterator<Item = (&'a String, &'a String, &'a Arc<Any>)>,
    {
        let by_type = types
            .map(|(type_url, resources)| {
                let of_type = resources
                    .map(|(name, version, body)| {
                        let resource = XdsResource {
                            version: version.clone(),
                            body: body.clone(),
                        };
                        (name.clone(), resource)
                    })
                    .collect();
                (type_url.clone(), of_type)
            })
            .collect();
        XdsResources { by_type }
    }

    /// The resources of one type.
    pub fn of_type(&self, type_url: &str) -> &BTreeMap<String, XdsResource> {
        self.by_type.get(type_url).unwrap_or(&EMPTY)
    }
}

/// A resource the proxy cannot use: which, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {name:?}: {message}")]
pub struct ConfigError {
    /// `listener`, `route configuration`, `cluster` or `load assignment`.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// What is wrong.
    pub message: String,
}

/// HTTP connection manager settings the proxy honours.
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    /// Remove `.` and `..` segments (RFC 3986) before routing.
    pub normalize_path: bool,
    /// Merge adjacent slashes before routing.
    pub merge_slashes: bool,
    /// What to do with `%2F` / `%5C` in paths.
    pub escaped_slashes: EscapedSlashes,
    /// Trust the connection's peer address (append it to `x-forwarded-for`).
    pub use_remote_address: bool,
    /// Do not append to `x-forwarded-for`.
    pub skip_xff_append: bool,
    /// Proxies in front whose `x-forwarded-for` entries are trusted when settling the client
    /// address (see [`crate::proxy::trusted_client`]).
    pub xff_num_trusted_hops: u32,
    /// `via` header value to append, if any.
    pub via: Option<http::HeaderValue>,
    /// Add `x-request-id` when absent (and replace an edge request's, see
    /// [`preserve_external_request_id`](Self::preserve_external_request_id)).
    pub generate_request_id: bool,
    /// Keep the `x-request-id` of an edge request (one from a client that is not internal,
    /// with `use_remote_address`) instead of replacing it, as Envoy does unless told to
    /// keep it: a client may not choose the id logs and traces are correlated by.
    pub preserve_external_request_id: bool,
    /// Tell the upstream which port the client connected to (`x-forwarded-port`,
    /// `append_x_forwarded_port`): added when absent, and in place of an edge client's own.
    pub append_x_forwarded_port: bool,
    /// The client addresses that are internal (`internal_address_config`; none by default,
    /// as in Envoy).
    pub internal_addresses: Vec<CidrRange>,
    /// Most concurrent streams an HTTP/2 client may open (`http2_protocol_options`; hyper's
    /// default when unset).
    pub http2_max_concurrent_streams: Option<u32>,
    /// An HTTP/2 stream's initial receive window.
    pub http2_initial_stream_window: Option<u32>,
    /// An HTTP/2 connection's initial receive window.
    pub http2_initial_connection_window: Option<u32>,
    /// The `server` header of responses.
    pub server_name: http::HeaderValue,
    /// What happens to the `server` header of responses.
    pub server_header: ServerHeader,
    /// Largest request header block.
    pub max_request_headers_bytes: usize,
    /// Whole-request timeout (none: disabled).
    pub request_timeout: Option<Duration>,
    /// A downstream connection with no request in flight for this long is closed (Envoy's
    /// default: one hour).
    pub idle_timeout: Option<Duration>,
    /// A downstream connection is drained (`connection: close`, HTTP/2 GOAWAY) this long
    /// after it opened.
    pub max_connection_duration: Option<Duration>,
    /// A stream with no activity (request or response bytes) for this long is ended: 408
    /// `stream timeout` before the response starts, a reset after (Envoy's default: five
    /// minutes). A route's `idle_timeout` replaces it. Only a timeout shorter than the
    /// route's timeout is watched (the route timeout ends the wait first otherwise).
    pub stream_idle_timeout: Option<Duration>,
    /// A request not answered within this long gets 408 `downstream duration timeout`.
    pub max_stream_duration: Option<Duration>,
    /// Most request headers a request may carry (Envoy's default: 100); more get 431.
    pub max_headers_count: usize,
    /// A downstream connection is drained after serving this many requests.
    pub max_requests_per_connection: Option<u32>,
    /// What happens to request headers whose names contain `_`.
    pub underscore_headers: UnderscoreHeaders,
    /// Protocol upgrades that are allowed (lower-case `Upgrade` values, e.g. `websocket`).
    pub upgrades: Vec<String>,
    /// How long a client has to send a request's head once the connection waits for one
    /// (`request_headers_timeout`; slowloris): the connection closes after it. Envoy has none
    /// by default; gloo-proxy gives 10 s.
    pub request_headers_timeout: Duration,
    /// Remove the port from the `host` header before routing (`strip_any_host_port`).
    pub strip_any_host_port: bool,
    /// Serve HTTP/1.0 requests (`http_protocol_options.accept_http_10`) instead of 426.
    pub accept_http_10: bool,
    /// The `host` of an HTTP/1.0 request that has none (`default_host_for_http_10`).
    pub default_host_for_http_10: Option<http::HeaderValue>,
    /// What happens to a request's `x-forwarded-client-cert` (`forward_client_cert_details`;
    /// Envoy's default, `SANITIZE`, removes it, so a backend that trusts the header cannot be
    /// lied to).
    pub forward_client_cert: crate::xfcc::ForwardClientCert,
    /// The client certificate's details this hop's XFCC element carries
    /// (`set_current_client_cert_details`).
    pub client_cert_details: crate::xfcc::ClientCertDetails,
    /// Request header mutations made before anything else looks at a request (Envoy's
    /// `early_header_mutation_extensions`, Gloo's `earlyHeaderManipulation`).
    pub early_header_mutations: HeaderMutations,
    /// Serve HTTP/1 requests whose method is not one Envoy's codec knows (`POSTX`), instead of
    /// answering 400 (`http_protocol_options.allow_custom_methods`, Gloo's
    /// `headerValidationSettings.disableHttp1MethodValidation`).
    pub allow_custom_methods: bool,
    /// Send HTTP/1 clients every trailer of a chunked answer, whatever they asked
    /// (`http_protocol_options.enable_trailers`; the lean HTTP/1 loop's answers: hyper's send
    /// only the declared ones, to clients that ask).
    pub http1_enable_trailers: bool,
    /// Write HTTP/1 header names in proper case (`Content-Type`; the connection manager's
    /// `http_protocol_options.header_key_format.proper_case_words`), for clients that
    /// wrongly compare them case-sensitively.
    pub http1_proper_case: bool,
    /// The router adds none of its `x-envoy-*` headers (`suppress_envoy_headers` of the
    /// router filter's config, Gloo's `router.suppressEnvoyHeaders`). gloo-proxy's router
    /// only ever adds `x-envoy-overloaded`, to a circuit breaker's 503.
    pub suppress_envoy_headers: bool,
}

/// An address range (`envoy.config.core.v3.CidrRange`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CidrRange {
    prefix: std::net::IpAddr,
    len: u8,
}

impl CidrRange {
    /// The range of an Envoy `CidrRange`.
    ///
    /// ```
    /// use envoy_types::pb::envoy::config::core::v3::CidrRange as Pb;
    /// use envoy_types::pb::google::protobuf::UInt32Value;
    /// use gloo_proxy::config::CidrRange;
    ///
    /// let range = CidrRange::compile(&Pb {
    ///     address_prefix: "10.1.0.0".into(),
    ///     prefix_len: Some(UInt32Value { value: 16 }),
    /// })?;
    /// assert!(range.contains("10.1.200.3".parse()?));
    /// assert!(!range.contains("10.2.0.1".parse()?));
    /// assert!(!range.contains("::1".parse()?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn compile(
        range: &envoy_types::pb::envoy::config::core::v3::CidrRange,
    ) -> Result<CidrRange, String> {
        let prefix: std::net::IpAddr = range
            .address_prefix
            .parse()
            .map_err(|_| format!("{:?} is not an IP address", range.address_prefix))?;
        let bits = if prefix.is_ipv4() { 32 } else { 128 };
        let len = range.prefix_len.as_ref().map_or(bits, |l| l.value);
        if len > bits {
            return Err(format!("prefix length {len} is longer than the address"));
        }
        Ok(CidrRange {
            prefix,
            len: len as u8,
        })
    }

    /// How many leading bits of an address the range fixes.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether `ip` is in the range.
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        fn masked(bits: u128, len: u8, width: u8) -> u128 {
            match len {
                0 => 0,
                len => bits >> (width - len.min(width)),
            }
        }
        match (self.prefix, ip) {
            (std::net::IpAddr::V4(p), std::net::IpAddr::V4(a)) => {
                masked(u32::from(p).into(), self.len, 32)
                    == masked(u32::from(a).into(), self.len, 32)
            }
            (std::net::IpAddr::V6(p), std::net::IpAddr::V6(a)) => {
                masked(u128::from(p), self.len, 128) == masked(u128::from(a), self.len, 128)
            }
            _ => false,
        }
    }
}

/// How long a client has to send a request head when the connection manager does not say.
pub const DEFAULT_REQUEST_HEADERS_TIMEOUT: Duration = Duration::from_secs(10);

/// Envoy's `server_header_transformation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerHeader {
    /// Always `server_name`.
    Overwrite,
    /// `server_name` when the upstream sent none.
    AppendIfAbsent,
    /// Whatever the upstream sent (or nothing).
    PassThrough,
}

/// Envoy's `headers_with_underscores_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnderscoreHeaders {
    /// Pass them on.
    Allow,
    /// Answer 400.
    Reject,
    /// Remove them before routing.
    Drop,
}

/// Envoy's `path_with_escaped_slashes_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscapedSlashes {
    /// Leave them.
    Keep,
    /// Answer 400.
    Reject,
    /// Decode them to `/` and `\`, redirecting the client to the decoded path.
    UnescapeAndRedirect,
    /// Decode them and forward.
    UnescapeAndForward,
}

impl ConnectionSettings {
    /// Whether a request from `client` gets a new `x-request-id` (`has_id`: it came with
    /// one), as Envoy's connection manager decides: when it has none, and when it is an edge
    /// request (`use_remote_address`, from a client that is not internal) whose own id is not
    /// to be kept.
    pub fn sets_request_id(&self, has_id: bool, client: std::net::IpAddr) -> bool {
        self.generate_request_id
            && (!has_id || (self.is_edge(client) && !self.preserve_external_request_id))
    }

    /// Whether a request from `client` is an edge request, as Envoy calls one: the connection
    /// manager trusts the connection's address (`use_remote_address`) and the client is not
    /// internal. What such a client says about itself (its `x-request-id`, its
    /// `x-forwarded-port`) is not kept.
    pub fn is_edge(&self, client: std::net::IpAddr) -> bool {
        self.use_remote_address && !self.internal_addresses.iter().any(|r| r.contains(client))
    }

    /// The settings of a connection manager.
    pub(crate) fn from_hcm(hcm: &HttpConnectionManager) -> Result<Self, String> {
        use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::ServerHeaderTransformation;
        let server_name = if hcm.server_name.is_empty() {
            "gloo"
        } else {
            hcm.server_name.as_str()
        };
        let common = hcm.common_http_protocol_options.as_ref();
        let http1 = hcm.http_protocol_options.as_ref();
        warn_http1_differences(http1, "http_protocol_options");
        warn_unapplied(hcm);
        let http2 = hcm.http2_protocol_options.as_ref();
        Ok(ConnectionSettings {
            // Gloo's default (its translator sets it unless told otherwise).
            normalize_path: hcm.normalize_path.as_ref().map(|b| b.value).unwrap_or(true),
            merge_slashes: hcm.merge_slashes,
            escaped_slashes: match PathWithEscapedSlashesAction::try_from(
                hcm.path_with_escaped_slashes_action,
            ) {
                Ok(PathWithEscapedSlashesAction::RejectRequest) => EscapedSlashes::Reject,
                Ok(PathWithEscapedSlashesAction::UnescapeAndRedirect) => {
                    EscapedSlashes::UnescapeAndRedirect
                }
                Ok(PathWithEscapedSlashesAction::UnescapeAndForward) => {
                    EscapedSlashes::UnescapeAndForward
                }
                _ => EscapedSlashes::Keep,
            },
            use_remote_address: hcm.use_remote_address.as_ref().is_some_and(|b| b.value),
            skip_xff_append: hcm.skip_xff_append,
            xff_num_trusted_hops: hcm.xff_num_trusted_hops,
            via: (!hcm.via.is_empty())
                .then(|| http::HeaderValue::from_str(&hcm.via))
                .transpose()
                .map_err(|_| format!("invalid via {:?}", hcm.via))?,
            generate_request_id: hcm.generate_request_id.as_ref().is_none_or(|b| b.value),
            preserve_external_request_id: hcm.preserve_external_request_id,
            append_x_forwarded_port: hcm.append_x_forwarded_port,
            http2_max_concurrent_streams: http2
                .and_then(|h| h.max_concurrent_streams.as_ref())
                .map(|v| v.value),
            http2_initial_stream_window: http2
                .and_then(|h| h.initial_stream_window_size.as_ref())
                .map(|v| v.value),
            http2_initial_connection_window: http2
                .and_then(|h| h.initial_connection_window_size.as_ref())
                .map(|v| v.value),
            internal_addresses: match &hcm.internal_address_config {
                None => Vec::new(),
                Some(config) => config
                    .cidr_ranges
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        CidrRange::compile(r)
                            .map_err(|e| format!("internal_address_config.cidr_ranges[{i}]: {e}"))
                    })
                    .collect::<Result<_, _>>()?,
            },
            server_name: http::HeaderValue::from_str(server_name)
                .map_err(|_| format!("invalid server_name {server_name:?}"))?,
            server_header: match ServerHeaderTransformation::try_from(
                hcm.server_header_transformation,
            ) {
                Ok(ServerHeaderTransformation::AppendIfAbsent) => ServerHeader::AppendIfAbsent,
                Ok(ServerHeaderTransformation::PassThrough) => ServerHeader::PassThrough,
                _ => ServerHeader::Overwrite,
            },
            max_request_headers_bytes: hcm
                .max_request_headers_kb
                .as_ref()
                .map(|v| v.value as usize * 1024)
                .unwrap_or(60 * 1024),
            request_timeout: hcm
                .request_timeout
                .as_ref()
                .map(pb_duration)
                .filter(|d| !d.is_zero()),
            idle_timeout: Some(
                common
                    .and_then(|o| o.idle_timeout.as_ref())
                    .map(pb_duration)
                    .unwrap_or(Duration::from_secs(3600)),
            )
            .filter(|d| !d.is_zero()),
            stream_idle_timeout: Some(
                hcm.stream_idle_timeout
                    .as_ref()
                    .map(pb_duration)
                    .unwrap_or(Duration::from_secs(300)),
            )
            .filter(|d| !d.is_zero()),
            max_connection_duration: common
                .and_then(|o| o.max_connection_duration.as_ref())
                .map(pb_duration)
                .filter(|d| !d.is_zero()),
            max_stream_duration: common
                .and_then(|o| o.max_stream_duration.as_ref())
                .map(pb_duration)
                .filter(|d| !d.is_zero()),
            max_headers_count: common
                .and_then(|o| o.max_headers_count.as_ref())
                .map(|v| v.value as usize)
                .filter(|n| *n > 0)
                .unwrap_or(100),
            max_requests_per_connection: common
                .and_then(|o| o.max_requests_per_connection.as_ref())
                .map(|v| v.value)
                .filter(|n| *n > 0),
            underscore_headers: match common
                .map(|o| HeadersWithUnderscoresAction::try_from(o.headers_with_underscores_action))
            {
                Some(Ok(HeadersWithUnderscoresAction::RejectRequest)) => UnderscoreHeaders::Reject,
                Some(Ok(HeadersWithUnderscoresAction::DropHeader)) => UnderscoreHeaders::Drop,
                _ => UnderscoreHeaders::Allow,
            },
            upgrades: hcm
                .upgrade_configs
                .iter()
                .filter(|u| u.enabled.as_ref().is_none_or(|e| e.value))
                .map(|u| u.upgrade_type.to_ascii_lowercase())
                .collect(),
            request_headers_timeout: hcm
                .request_headers_timeout
                .as_ref()
                .map(pb_duration)
                .filter(|d| !d.is_zero())
                .unwrap_or(DEFAULT_REQUEST_HEADERS_TIMEOUT),
            strip_any_host_port: matches!(
                hcm.strip_port_mode,
                Some(StripPortMode::StripAnyHostPort(true))
            ),
            forward_client_cert: {
                use crate::xfcc::ForwardClientCert as Mode;
                match ForwardClientCertDetails::try_from(hcm.forward_client_cert_details) {
                    Ok(ForwardClientCertDetails::Sanitize) => Mode::Sanitize,
                    Ok(ForwardClientCertDetails::ForwardOnly) => Mode::ForwardOnly,
                    Ok(ForwardClientCertDetails::AppendForward) => Mode::AppendForward,
                    Ok(ForwardClientCertDetails::SanitizeSet) => Mode::SanitizeSet,
                    Ok(ForwardClientCertDetails::AlwaysForwardOnly) => Mode::AlwaysForwardOnly,
                    Err(_) => {
                        return Err(format!(
                            "forward_client_cert_details: unknown {}",
                            hcm.forward_client_cert_details
                        ))
                    }
                }
            },
            client_cert_details: hcm
                .set_current_client_cert_details
                .as_ref()
                .map(|d| crate::xfcc::ClientCertDetails {
                    cert: d.cert,
                    chain: d.chain,
                    subject: d.subject.as_ref().is_some_and(|s| s.value),
                    uri: d.uri,
                    dns: d.dns,
                })
                .unwrap_or_default(),
            early_header_mutations: early_header_mutations(&hcm.early_header_mutation_extensions)?,
            http1_proper_case: http1_proper_case(http1, "http_protocol_options"),
            suppress_envoy_headers: router_config(hcm)?.suppress_envoy_headers,
            allow_custom_methods: http1.is_some_and(|o| o.allow_custom_methods),
            http1_enable_trailers: http1.is_some_and(|o| o.enable_trailers),
            accept_http_10: http1.is_some_and(|o| o.accept_http_10),
            default_host_for_http_10: http1
                .map(|o| o.default_host_for_http_10.as_str())
                .filter(|h| !h.is_empty())
                .map(|h| {
                    http::HeaderValue::from_str(h)
                        .map_err(|_| format!("invalid default_host_for_http_10 {h:?}"))
                })
                .transpose()?,
        })
    }
}

/// The type URL of Envoy's early header mutation extension.
pub const EARLY_HEADER_MUTATION_TYPE: &str =
    "type.googleapis.com/envoy.extensions.http.early_header_mutation.header_mutation.v3.HeaderMutation";

/// The connection manager's early header mutations, in order (each extension's list after the
/// previous one's).
fn early_header_mutations(
    extensions: &[envoy_types::pb::envoy::config::core::v3::TypedExtensionConfig],
) -> Result<HeaderMutations, String> {
    use envoy_types::pb::envoy::extensions::http::early_header_mutation::header_mutation::v3::HeaderMutation;
    let mut all = Vec::new();
    for (i, extension) in extensions.iter().enumerate() {
        let at = format!("early_header_mutation_extensions[{i}]");
        let Some(config) = &extension.typed_config else {
            return Err(format!("{at} ({:?}): no typed_config", extension.name));
        };
        if config.type_url != EARLY_HEADER_MUTATION_TYPE {
            return Err(format!(
                "{at} ({:?}): {} is not supported (only {EARLY_HEADER_MUTATION_TYPE})",
                extension.name, config.type_url
            ));
        }
        let mutation = HeaderMutation::decode(config.value.as_slice())
            .map_err(|e| format!("{at}: cannot decode: {e}"))?;
        all.extend(mutation.mutations);
    }
    HeaderMutations::compile(&all, "early_header_mutation_extensions").map_err(|e| e.to_string())
}

/// Warns about the HTTP/1 option gloo-proxy serves only in part: `enable_trailers` (the lean
/// HTTP/1 loop sends every trailer, as Envoy does; answers to the requests hyper serves
/// (chunked or large request bodies, HTTP/1.0, and the rest of a connection handed over to it)
/// send only declared trailers to clients that send `TE: trailers`; request trailers are not
/// passed upstream). `allow_chunked_length`
/// needs no warning: hyper always reads a request with both `content-length` and
/// `transfer-encoding: chunked` as chunked (RFC 9112 6.3), which is what the option asks of
/// Envoy.
fn warn_http1_differences(
    options: Option<&envoy_types::pb::envoy::config::core::v3::Http1ProtocolOptions>,
    at: &str,
) {
    if options.is_some_and(|o| o.enable_trailers) {
        tracing::warn!("{at}.enable_trailers: answers hyper serves send only declared trailers, to clients that ask (TE: trailers)");
    }
}

/// Warns about what a connection manager asks for that gloo-proxy does not do: the
/// connection timings hyper keeps its own way (`drain_timeout`, `delayed_close_timeout`).
/// Tracers other than Zipkin's are warned about where the tracer is compiled
/// ([`crate::trace::Tracer::compile`]). Its `request_id_extension` (the UUID one) needs
/// no warning: `x-request-id` is made and kept as Envoy's default extension makes it, and its
/// trace reason is packed into it when a request is traced.
fn warn_unapplied(hcm: &HttpConnectionManager) {
    if hcm.drain_timeout.is_some() {
        tracing::warn!("drain_timeout is not applied: HTTP/2 connections are drained by hyper's graceful shutdown");
    }
    if hcm.delayed_close_timeout.is_some() {
        tracing::warn!(
            "delayed_close_timeout is not applied: connections close once their answer is written"
        );
    }
}

/// Whether HTTP/1 options ask for proper-case header names. Envoy's other formatter (the
/// `preserve_case` stateful formatter) is served in lower case, as HTTP lets header names be,
/// with a warning: gloo-proxy does not keep the case names arrived in.
/// The router filter's config (the last HTTP filter; Envoy's defaults when it has none).
fn router_config(
    hcm: &HttpConnectionManager,
) -> Result<envoy_types::pb::envoy::extensions::filters::http::router::v3::Router, String> {
    use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
    const ROUTER_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
    let Some((i, any)) = hcm.http_filters.iter().enumerate().find_map(|(i, f)| {
        match (&f.config_type, f.name == ROUTER) {
            (Some(http_filter::ConfigType::TypedConfig(any)), true) => Some((i, any)),
            _ => None,
        }
    }) else {
        return Ok(Router::default());
    };
    if any.type_url != ROUTER_TYPE {
        return Err(format!(
            "http_filters[{i}] (router): expected {ROUTER_TYPE}, got {}",
            any.type_url
        ));
    }
    let router = Router::decode(any.value.as_slice())
        .map_err(|e| format!("http_filters[{i}] (router): {e}"))?;
    if router.respect_expected_rq_timeout {
        tracing::warn!("router respect_expected_rq_timeout is not applied: a request's x-envoy-expected-rq-timeout-ms is not read");
    }
    Ok(router)
}

pub(crate) fn http1_proper_case(
    options: Option<&envoy_types::pb::envoy::config::core::v3::Http1ProtocolOptions>,
    at: &str,
) -> bool {
    use envoy_types::pb::envoy::config::core::v3::http1_protocol_options::header_key_format::HeaderFormat;
    match options
        .and_then(|o| o.header_key_format.as_ref())
        .and_then(|f| f.header_format.as_ref())
    {
        Some(HeaderFormat::ProperCaseWords(_)) => true,
        Some(HeaderFormat::StatefulFormatter(formatter)) => {
            tracing::warn!(
                "{at}.header_key_format: the {:?} formatter is not supported; header names are written in lower case",
                formatter.name
            );
            false
        }
        None => false,
    }
}

/// An HTTP filter of a listener, resolved against the registry.
#[derive(Clone)]
pub struct ListenerFilter {
    /// The filter's name.
    pub name: String,
    /// Its listener-level config.
    pub config: Any,
    factory: Arc<dyn FilterFactory>,
    /// Its layer for every request without a route or virtual host override: built once
    /// per listener, so all those requests share its state (a rate limit's bucket, say), as
    /// they share Envoy's one filter config per listener.
    listener_layer: Option<FilterLayer>,
    /// It acts only on gRPC-Web calls (the gRPC-Web filter): the other requests are served
    /// by stacks without it.
    grpc_web_only: bool,
}

impl ListenerFilter {
    fn new(
        name: String,
        config: Any,
        factory: Arc<dyn FilterFactory>,
        grpc_web_only: bool,
    ) -> Result<Self, String> {
        let listener_layer = factory
            .layer(&config, None)
            .map_err(|e| format!("filter {name:?}: {e}"))?;
        Ok(ListenerFilter {
            name,
            config,
            factory,
            listener_layer,
            grpc_web_only,
        })
    }
}

impl std::fmt::Debug for ListenerFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerFilter")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// An HTTP listener.
#[derive(Debug)]
pub struct HttpListener {
    /// Its name.
    pub name: String,
    /// The address it binds.
    pub address: SocketAddr,
    /// The version of its resource.
    pub version: String,
    /// The route configuration it reads (by RDS name).
    pub route_config: String,
    /// An inline route table (instead of RDS).
    pub inline_routes: Option<Arc<RouteTable>>,
    /// Connection manager settings.
    pub settings: ConnectionSettings,
    /// Its HTTP filters, in order, without the router.
    pub filters: Vec<ListenerFilter>,
    /// Whether connections start with a PROXY protocol header.
    pub proxy_protocol: bool,
    /// TLS termination (certificates by SNI), when the filter chains have it.
    pub tls: Option<Arc<crate::tls::DownstreamTls>>,
    /// How long a client has to complete its TLS handshake: the filter chains'
    /// `transport_socket_connect_timeout` (the longest, when they differ), else
    /// [`DEFAULT_TLS_HANDSHAKE_TIMEOUT`].
    pub tls_handshake_timeout: Duration,
    /// The connection manager's access logs, if it has any.
    pub access_log: Option<Arc<crate::access_log::AccessLogs>>,
    /// The connection manager's tracer, if it traces (Zipkin's or OpenTelemetry's).
    pub tracer: Option<Arc<crate::trace::Tracer>>,
    /// One HTTP filter chain of a hybrid listener (see [`crate::tcp`]), named
    /// `<listener>#<chain index>`: its connections come through that listener, which binds the
    /// address, so this one binds nothing itself.
    pub embedded: bool,
}

impl HttpListener {
    /// Whether requests are recorded as they go (for access logs or trace spans).
    pub fn records(&self) -> bool {
        self.access_log.is_some() || self.tracer.is_some()
    }
}

impl HttpListener {
    /// Whether a request may go through any of its filters: a gRPC-Web call (`grpc_web`)
    /// through any, other requests only through those that do not act on gRPC-Web calls
    /// alone. Without, there is no stack to look up.
    pub fn may_filter(&self, grpc_web: bool) -> bool {
        if grpc_web {
            !self.filters.is_empty()
        } else {
            self.filters.iter().any(|f| !f.grpc_web_only)
        }
    }
}

/// How long a TLS handshake may take when the filter chains do not say.
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The filter stacks of one listener: one per route that has filters, and one for the
/// requests no route matches (the listener-level filters over the 404, as Envoy runs its
/// filters before the router answers 404).
#[derive(Clone, Default)]
pub struct RouteStacks {
    routes: HashMap<(usize, usize), HttpService>,
    /// Stacks of weighted targets with per-filter configs of their own: (virtual host, route)
    /// → target index → stack.
    targets: HashMap<(usize, usize), HashMap<usize, HttpService>>,
    no_route: Option<HttpService>,
    /// The stack of the routes not in `routes`, when they have one (in the stacks of gRPC-Web
    /// calls: the gRPC-Web filter alone).
    shared: Option<HttpService>,
    /// The stacks for gRPC-Web calls, when the listener has the gRPC-Web filter (these are
    /// without it).
    grpc_web: Option<Box<RouteStacks>>,
}

impl std::fmt::Debug for RouteStacks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteStacks")
            .field("routes", &self.routes.len())
            .field("no_route", &self.no_route.is_some())
            .field("shared", &self.shared.is_some())
            .field("grpc_web", &self.grpc_web)
            .finish()
    }
}

impl RouteStacks {
    /// The stack of route `route` of virtual host `vhost` (indices into the route table).
    pub fn route(&self, vhost: usize, route: usize) -> Option<&HttpService> {
        self.routes.get(&(vhost, route)).or(self.shared.as_ref())
    }

    /// The stacks that serve a request: for a gRPC-Web call (`grpc_web`, see
    /// [`is_grpc_web_request`](crate::builtin::is_grpc_web_request)) those with the
    /// listener's gRPC-Web filter, else these (without it, so other requests do not pass
    /// through a filter that would only look at their content type).
    pub fn for_grpc_web(&self, grpc_web: bool) -> &RouteStacks {
        match &self.grpc_web {
            Some(calls) if grpc_web => calls,
            _ => self,
        }
    }

    /// Whether no request goes through a filter here (every route forwards or answers as it
    /// would without filters).
    pub fn is_bare(&self) -> bool {
        self.routes.is_empty()
            && self.targets.is_empty()
            && self.no_route.is_none()
            && self.shared.is_none()
    }

    /// The stacks of a route's weighted targets that have per-filter configs of their own,
    /// by target index. A request must then pick its target before its filters run, and be
    /// sent to that target ([`PickedTarget`](crate::proxy::PickedTarget)).
    pub fn targets(&self, vhost: usize, route: usize) -> Option<&HashMap<usize, HttpService>> {
        self.targets.get(&(vhost, route))
    }

    /// The stack for requests no route matches.
    pub fn no_route(&self) -> Option<&HttpService> {
        self.no_route.as_ref()
    }
}

/// A map by resource name that requests read, hashed with foldhash: with std's SipHash, the
/// lookups of a proxied request cost about 1,000 instructions more
/// (`benches/proxy/instructions.sh`).
///
/// ```
/// let mut clusters = gloo_proxy::config::NameMap::default();
/// clusters.insert("petstore".to_string(), 8080);
/// assert_eq!(clusters.get("petstore"), Some(&8080));
/// ```
pub type NameMap<V> = HashMap<String, V, foldhash::fast::RandomState>;

/// Everything the proxy serves with, at one moment.
#[derive(Debug, Default)]
pub struct ProxyConfig {
    /// HTTP listeners.
    pub listeners: Vec<Arc<HttpListener>>,
    /// TCP proxy listeners (a Gateway's `tcpGateway`).
    pub tcp_listeners: Vec<Arc<crate::tcp::TcpProxyListener>>,
    /// Route tables by name.
    pub routes: NameMap<Arc<RouteTable>>,
    /// Clusters by name.
    pub clusters: NameMap<Arc<Cluster>>,
    /// Filter stacks per listener (listeners without filters have none).
    pub stacks: NameMap<Arc<RouteStacks>>,
    /// The resources this config came from (for `/config_dump`).
    pub resources: XdsResources,
    /// Resources that could not be used (their last good version, if any, is in force).
    pub errors: Vec<ConfigError>,
}

impl ProxyConfig {
    /// The route table a listener reads.
    pub fn route_table<'a>(&'a self, listener: &'a HttpListener) -> Option<&'a Arc<RouteTable>> {
        listener
            .inline_routes
            .as_ref()
            .or_else(|| self.routes.get(&listener.route_config))
    }
}

fn decode<M: Message + Default>(any: &Any, expected: &str) -> Result<M, String> {
    if any.type_url != expected {
        return Err(format!("expected {expected}, got {}", any.type_url));
    }
    M::decode(any.value.as_slice()).map_err(|e| format!("cannot decode: {e}"))
}

/// A route configuration compiled straight from its encoding, one virtual host at a time.
fn compile_route_table(any: &Any) -> Result<RouteTable, String> {
    if any.type_url != ROUTE_TYPE {
        return Err(format!("expected {ROUTE_TYPE}, got {}", any.type_url));
    }
    RouteTable::decode_and_compile(&any.value)
}

pub(crate) fn listener_address(l: &Listener) -> Result<SocketAddr, String> {
    let Some(address::Address::SocketAddress(s)) =
        l.address.as_ref().and_then(|a| a.address.as_ref())
    else {
        return Err("only socket addresses are supported".into());
    };
    let Some(socket_address::PortSpecifier::PortValue(port)) = s.port_specifier else {
        return Err("a listener needs a port value".into());
    };
    let ip: std::net::IpAddr = s
        .address
        .parse()
        .map_err(|_| format!("address {:?} is not an IP address", s.address))?;
    let port = u16::try_from(port).map_err(|_| format!("port {port} is out of range"))?;
    Ok(SocketAddr::new(ip, port))
}

/// Compiles a listener.
pub fn compile_listener(
    l: &Listener,
    version: &str,
    registry: &FilterRegistry,
) -> Result<HttpListener, String> {
    let address = listener_address(l)?;
    let proxy_protocol = l
        .listener_filters
        .iter()
        .any(|f| f.name == "envoy.filters.listener.proxy_protocol");
    let mut http = None;
    let mut tls_chains = Vec::new();
    let mut handshake_timeout: Option<Duration> = None;
    for (i, chain) in l.filter_chains.iter().enumerate() {
        let mut chain_hcm = None;
        for f in &chain.filters {
            match &f.config_type {
                Some(filter::ConfigType::TypedConfig(any)) if any.type_url == HCM_TYPE => {
                    chain_hcm = Some(decode::<HttpConnectionManager>(any, HCM_TYPE)?);
                }
                _ if f.name == crate::tcp::TCP_PROXY => {
                    return Err(format!(
                        "filter_chains[{i}]: a TCP proxy in an HTTP listener (a listener with both is compiled by tcp::TcpProxyListener::compile_with_http)"
                    ))
                }
                _ => {
                    return Err(format!(
                        "filter_chains[{i}]: network filter {:?} is not supported",
                        f.name
                    ))
                }
            }
        }
        let chain_hcm =
            chain_hcm.ok_or_else(|| format!("filter_chains[{i}]: no HTTP connection manager"))?;
        match &http {
            None => http = Some(chain_hcm),
            // Every chain of a listener serves the same routes (as gloo-core emits them).
            Some(first) if *first == chain_hcm => {}
            Some(_) => {
                return Err(format!(
                    "filter_chains[{i}]: filter chains with different HTTP connection managers are not supported"
                ))
            }
        }
        let tls = match &chain.transport_socket {
            None => None,
            Some(socket) => match &socket.config_type {
                Some(envoy_types::pb::envoy::config::core::v3::transport_socket::ConfigType::TypedConfig(any))
                    if any.type_url == DOWNSTREAM_TLS_TYPE =>
                {
                    Some(decode::<DownstreamTlsContext>(any, DOWNSTREAM_TLS_TYPE)?)
                }
                _ => {
                    return Err(format!(
                        "filter_chains[{i}]: transport socket {:?} is not supported",
                        socket.name
                    ))
                }
            },
        };
        let server_names = chain
            .filter_chain_match
            .as_ref()
            .map(|m| m.server_names.clone())
            .unwrap_or_default();
        if let Some(ctx) = tls {
            tls_chains.push((server_names, ctx));
            if let Some(timeout) = &chain.transport_socket_connect_timeout {
                let timeout = pb_duration(timeout);
                handshake_timeout = Some(handshake_timeout.map_or(timeout, |t| t.max(timeout)));
            }
        }
    }
    if !tls_chains.is_empty() && tls_chains.len() != l.filter_chains.len() {
        return Err("mixing plain and TLS filter chains is not supported".into());
    }
    let tls = if tls_chains.is_empty() {
        None
    } else {
        Some(Arc::new(crate::tls::DownstreamTls::compile(&tls_chains)?))
    };
    let hcm = http.ok_or("no HTTP connection manager")?;
    let (route_config, inline_routes) = match &hcm.route_specifier {
        Some(RouteSpecifier::Rds(rds)) => (rds.route_config_name.clone(), None),
        Some(RouteSpecifier::RouteConfig(rc)) => (
            rc.name.clone(),
            Some(Arc::new(
                RouteTable::compile(rc).map_err(|e| e.to_string())?,
            )),
        ),
        _ => return Err("routes must come from RDS or be inline".into()),
    };
    let mut filters = Vec::new();
    for (i, f) in hcm.http_filters.iter().enumerate() {
        if f.name == ROUTER {
            continue;
        }
        let config = match &f.config_type {
            Some(http_filter::ConfigType::TypedConfig(any)) => any.clone(),
            _ => Any::default(),
        };
        match registry.find(&f.name, &config.type_url) {
            Some(factory) => {
                let grpc_web_only = registry.is_for_grpc_web(&f.name, &config.type_url);
                filters.push(
                    ListenerFilter::new(f.name.clone(), config, factory.clone(), grpc_web_only)
                        .map_err(|e| format!("http_filters[{i}]: {e}"))?,
                )
            }
            None if f.is_optional => {
                tracing::debug!("optional HTTP filter {:?} is not known; skipped", f.name)
            }
            None => {
                return Err(format!(
                    "http_filters[{i}]: filter {:?} ({}) is not registered",
                    f.name, config.type_url
                ))
            }
        }
    }
    for name in registry.everywhere() {
        if filters.iter().any(|f| &f.name == name) {
            continue;
        }
        if let Some(factory) = registry.get(name) {
            filters.push(ListenerFilter::new(
                name.clone(),
                Any::default(),
                factory.clone(),
                registry.is_for_grpc_web(name, ""),
            )?);
        }
    }
    Ok(HttpListener {
        name: l.name.clone(),
        address,
        version: version.to_string(),
        route_config,
        inline_routes,
        settings: ConnectionSettings::from_hcm(&hcm)?,
        filters,
        proxy_protocol,
        tls,
        tls_handshake_timeout: handshake_timeout.unwrap_or(DEFAULT_TLS_HANDSHAKE_TIMEOUT),
        access_log: crate::access_log::AccessLogs::compile(&hcm.access_log, registry.upstreams())?,
        tracer: match &hcm.tracing {
            Some(tracing) => crate::trace::Tracer::compile(tracing, registry.upstreams())?,
            None => None,
        },
        embedded: false,
    })
}

/// A `google.protobuf.Struct` as a JSON object.
pub(crate) fn struct_to_json(
    s: &envoy_types::pb::google::protobuf::Struct,
) -> serde_json::Map<String, serde_json::Value> {
    use envoy_types::pb::google::protobuf::{value::Kind, Value};
    fn json(v: &Value) -> serde_json::Value {
        match &v.kind {
            None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
            Some(Kind::BoolValue(b)) => (*b).into(),
            Some(Kind::NumberValue(n)) => serde_json::Number::from_f64(*n)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            Some(Kind::StringValue(s)) => s.clone().into(),
            Some(Kind::ListValue(l)) => l.values.iter().map(json).collect(),
            Some(Kind::StructValue(s)) => struct_to_json(s).into(),
        }
    }
    s.fields.iter().map(|(k, v)| (k.clone(), json(v))).collect()
}

/// Builds the filter stacks of a listener over a route table. A filter's layer is built
/// once per config object, as Envoy builds one filter config per object: the listener's (for
/// routes with no override), a virtual host's (shared by its routes without their own), a
/// route's, or a weighted cluster's (whose target then gets a stack of its own). Routes that
/// share an object share the layer's state. A filter that reads routes
/// ([`FilterFactory::per_route`]) is built for each route instead.
///
/// A listener with the gRPC-Web filter gets two sets: one without it, for the requests it
/// would leave alone, and one with it for gRPC-Web calls ([`RouteStacks::for_grpc_web`]),
/// so the filter costs other requests one look at their content type, not a layer.
fn build_stacks(
    listener: &HttpListener,
    table: &RouteTable,
    inner: &HttpService,
) -> Result<RouteStacks, String> {
    let others: Vec<&ListenerFilter> = listener
        .filters
        .iter()
        .filter(|f| !f.grpc_web_only)
        .collect();
    let mut stacks = build_variant(&others, table, inner, &[])?;
    if others.len() < listener.filters.len() {
        let all: Vec<&ListenerFilter> = listener.filters.iter().collect();
        let grpc_web_alone: Vec<FilterLayer> = listener
            .filters
            .iter()
            .filter(|f| f.grpc_web_only)
            .filter_map(|f| f.listener_layer.clone())
            .collect();
        let calls = build_variant(&all, table, inner, &grpc_web_alone)?;
        stacks.grpc_web = Some(Box::new(calls));
    }
    Ok(stacks)
}

/// The stacks of one set of `filters` (in listener order). `shared` are the listener-level
/// layers most routes end up with: routes whose layers are exactly those share one stack
/// ([`RouteStacks::route`] falls back to it), instead of a stack each.
fn build_variant(
    filters: &[&ListenerFilter],
    table: &RouteTable,
    inner: &HttpService,
    shared: &[FilterLayer],
) -> Result<RouteStacks, String> {
    let mut routes = HashMap::new();
    let mut targets = HashMap::new();
    for (v, vhost) in table.virtual_hosts().iter().enumerate() {
        // Per filter: the virtual host's layer, built when a route first needs it.
        let mut vhost_layers: Vec<Option<Option<FilterLayer>>> = vec![None; filters.len()];
        for (r, route) in vhost.routes().iter().enumerate() {
            // Per filter, in listener order: this route's layer (or none).
            let mut layers: Vec<Option<FilterLayer>> = Vec::with_capacity(filters.len());
            for (i, &f) in filters.iter().enumerate() {
                let layer = if f.factory.per_route() {
                    // Built for this route: the factory reads the route itself.
                    let chain: Vec<&Any> = vhost
                        .per_filter()
                        .get(&f.name)
                        .into_iter()
                        .chain(route.per_filter().get(&f.name))
                        .collect();
                    let info = RouteInfo {
                        virtual_host: vhost,
                        route,
                        target: None,
                    };
                    per_filter_layer(f, &chain, Some(info)).map_err(|e| {
                        format!("filter {:?} on route {:?}: {e}", f.name, route.name())
                    })?
                } else if let Some(per_route) = route.per_filter().get(&f.name) {
                    let chain: Vec<&Any> = vhost
                        .per_filter()
                        .get(&f.name)
                        .into_iter()
                        .chain([per_route])
                        .collect();
                    per_filter_layer(f, &chain, None).map_err(|e| {
                        format!("filter {:?} on route {:?}: {e}", f.name, route.name())
                    })?
                } else if let Some(per_vhost) = vhost.per_filter().get(&f.name) {
                    match &vhost_layers[i] {
                        Some(built) => built.clone(),
                        None => {
                            let built = per_filter_layer(f, &[per_vhost], None).map_err(|e| {
                                format!(
                                    "filter {:?} on virtual host {:?}: {e}",
                                    f.name,
                                    vhost.name()
                                )
                            })?;
                            vhost_layers[i] = Some(built.clone());
                            built
                        }
                    }
                } else {
                    f.listener_layer.clone()
                };
                layers.push(layer);
            }
            // A weighted target with per-filter configs of its own gets its own stack: its
            // configs are the most specific for requests sent to it (Envoy picks the target
            // when it matches the route, before its filters run).
            if let crate::router::action::Action::Forward(forward) = route.action() {
                for (t, target) in forward.clusters.targets_with_filter_configs() {
                    let mut target_layers = Vec::with_capacity(layers.len());
                    for (&f, route_layer) in filters.iter().zip(&layers) {
                        let info = RouteInfo {
                            virtual_host: vhost,
                            route,
                            target: Some(t),
                        };
                        target_layers.push(match target.per_filter.get(&f.name) {
                            Some(per_target) => {
                                let chain: Vec<&Any> = vhost
                                    .per_filter()
                                    .get(&f.name)
                                    .into_iter()
                                    .chain(route.per_filter().get(&f.name))
                                    .chain([per_target])
                                    .collect();
                                per_filter_layer(f, &chain, Some(info))
                            }
                            .map_err(|e| {
                                format!(
                                    "filter {:?} on route {:?}, weighted cluster {:?}: {e}",
                                    f.name,
                                    route.name(),
                                    target.cluster
                                )
                            })?,
                            None => route_layer.clone(),
                        });
                    }
                    let target_layers: Vec<FilterLayer> =
                        target_layers.into_iter().flatten().collect();
                    targets
                        .entry((v, r))
                        .or_insert_with(HashMap::new)
                        .insert(t, wrap(inner.clone(), &target_layers));
                }
            }
            let layers: Vec<FilterLayer> = layers.into_iter().flatten().collect();
            let is_shared = layers.len() == shared.len()
                && layers.iter().zip(shared).all(|(a, b)| a.same_as(b));
            if !is_shared {
                routes.insert((v, r), wrap(inner.clone(), &layers));
            }
        }
    }
    let shared = (!shared.is_empty()).then(|| wrap(inner.clone(), shared));
    let listener_layers: Vec<FilterLayer> = filters
        .iter()
        .filter_map(|f| f.listener_layer.clone())
        .collect();
    let no_route = (!listener_layers.is_empty()).then(|| {
        let not_found = HttpService::new(tower::service_fn(|_: http::Request<Body>| {
            std::future::ready(Ok(crate::access_log::StreamFacts::flag(
                crate::proxy::local_reply(http::StatusCode::NOT_FOUND, ""),
                crate::access_log::ResponseFlags::NO_ROUTE_FOUND,
            )))
        }));
        wrap(not_found, &listener_layers)
    });
    Ok(RouteStacks {
        routes,
        targets,
        no_route,
        shared,
        grpc_web: None,
    })
}

/// The type URL of Envoy's per-route wrapper `envoy.config.route.v3.FilterConfig`.
const FILTER_CONFIG_TYPE: &str = "type.googleapis.com/envoy.config.route.v3.FilterConfig";

/// A filter's layer from the `typed_per_filter_config` entries that apply to a route, least
/// specific first (the most specific one last). An `envoy.config.route.v3.FilterConfig`
/// wrapper (which gloo-core puts around configs of its own filters, marked optional for stock
/// Envoy) is unwrapped: `disabled` on the most specific entry turns the filter off there (a
/// less specific disabled entry is overridden by the ones after it), else its `config` is used
/// as the filter's own. The filter is known here (it is on the listener), so `is_optional`
/// changes nothing. A filter that reads routes ([`FilterFactory::per_route`]) is built for
/// `route` from the most specific entry.
fn per_filter_layer(
    f: &ListenerFilter,
    chain: &[&Any],
    route: Option<RouteInfo<'_>>,
) -> Result<Option<FilterLayer>, String> {
    let mut unwrapped: Vec<Any> = Vec::with_capacity(chain.len());
    for (i, per_filter) in chain.iter().enumerate() {
        if per_filter.type_url != FILTER_CONFIG_TYPE {
            unwrapped.push((*per_filter).clone());
            continue;
        }
        let wrapper = FilterConfig::decode(per_filter.value.as_slice())
            .map_err(|e| format!("cannot decode {FILTER_CONFIG_TYPE}: {e}"))?;
        if wrapper.disabled {
            if i + 1 == chain.len() {
                return Ok(None);
            }
            continue;
        }
        unwrapped.push(
            wrapper
                .config
                .ok_or_else(|| "FilterConfig.config: required unless disabled".to_string())?,
        );
    }
    let chain: Vec<&Any> = unwrapped.iter().collect();
    match route {
        Some(route) if f.factory.per_route() => {
            f.factory
                .route_layer(&f.config, chain.last().copied(), route)
        }
        _ => f.factory.layer_merged(&f.config, &chain),
    }
}

/// `inner` under `layers`: the first filter listed sees the request first, so wrap from the
/// last inwards.
fn wrap(inner: HttpService, layers: &[FilterLayer]) -> HttpService {
    layers
        .iter()
        .rev()
        .fold(inner, |service, layer| layer.layer(service))
}

/// Turns successive sets of xDS resources into [`ProxyConfig`]s, reusing unchanged parts.
pub struct Compiler {
    registry: FilterRegistry,
    workers: usize,
    stats: Arc<Stats>,
    inner: HttpService,
    last: Arc<ProxyConfig>,
    /// Versions of what is in force: (type, name) → version.
    versions: HashMap<(&'static str, String), String>,
    /// Stacks in force: listener name → (listener version, route table version, stacks).
    stack_versions: HashMap<String, (String, String)>,
}

impl std::fmt::Debug for Compiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiler")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

impl Compiler {
    /// A compiler using `registry` for HTTP filters and `stats` for cluster statistics;
    /// `inner` is the service at the bottom of every filter stack (the proxy's forwarding);
    /// clusters get a connection pool for each of `workers` workers.
    pub fn new(
        registry: FilterRegistry,
        stats: Arc<Stats>,
        inner: HttpService,
        workers: usize,
    ) -> Self {
        Compiler {
            registry,
            workers,
            stats,
            inner,
            last: Arc::new(ProxyConfig::default()),
            versions: HashMap::new(),
            stack_versions: HashMap::new(),
        }
    }

    /// The configuration in force.
    pub fn current(&self) -> Arc<ProxyConfig> {
        self.last.clone()
    }

    /// Compiles a new set of resources. Resources whose version did not change are reused;
    /// one that fails keeps its last good version (reported in [`ProxyConfig::errors`]).
    pub fn compile(&mut self, resources: XdsResources) -> Arc<ProxyConfig> {
        let last = self.last.clone();
        let mut errors = Vec::new();
        let mut versions = HashMap::new();

        // Clusters, then their endpoints.
        let mut clusters = NameMap::default();
        for (name, r) in resources.of_type(CLUSTER_TYPE) {
            let key = (CLUSTER_TYPE, name.clone());
            if let (Some(prev), Some(v)) = (last.clusters.get(name), self.versions.get(&key)) {
                if *v == r.version {
                    clusters.insert(name.clone(), prev.clone());
                    versions.insert(key, r.version.clone());
                    continue;
                }
            }
            let compiled = decode::<PbCluster>(&r.body, CLUSTER_TYPE).and_then(|pb| {
                Cluster::compile(&pb, &r.version, &self.stats, self.workers).map_err(|e| e.message)
            });
            match compiled {
                Ok(c) => {
                    let c = Arc::new(c);
                    crate::upstream::health::start(&c);
                    clusters.insert(name.clone(), c);
                    versions.insert(key, r.version.clone());
                }
                Err(message) => {
                    errors.push(ConfigError {
                        kind: "cluster",
                        name: name.clone(),
                        message,
                    });
                    if let Some(prev) = last.clusters.get(name) {
                        clusters.insert(name.clone(), prev.clone());
                        if let Some(v) = self.versions.get(&key) {
                            versions.insert(key, v.clone());
                        }
                    }
                }
            }
        }
        let endpoints = resources.of_type(ENDPOINT_TYPE);
        for (name, cluster) in &clusters {
            let service_name = decode::<PbCluster>(
                &resources.of_type(CLUSTER_TYPE).get(name).map(|r| (*r.body).clone()).unwrap_or_default(),
                CLUSTER_TYPE,
            )
            .ok()
            .filter(|c| {
                matches!(c.cluster_discovery_type, Some(cluster::ClusterDiscoveryType::Type(t)) if t == cluster::DiscoveryType::Eds as i32)
            })
            .map(|c| {
                c.eds_cluster_config
                    .map(|e| e.service_name)
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| name.clone())
            });
            let Some(service_name) = service_name else {
                continue;
            };
            let Some(r) = endpoints.get(&service_name) else {
                continue;
            };
            let key = (ENDPOINT_TYPE, name.clone());
            let fresh_cluster = !last
                .clusters
                .get(name)
                .is_some_and(|prev| Arc::ptr_eq(prev, cluster));
            if !fresh_cluster && self.versions.get(&key) == Some(&r.version) {
                versions.insert(key, r.version.clone());
                continue;
            }
            match decode::<ClusterLoadAssignment>(&r.body, ENDPOINT_TYPE) {
                Ok(cla) => {
                    cluster.set_assignment(&cla);
                    versions.insert(key, r.version.clone());
                }
                Err(message) => errors.push(ConfigError {
                    kind: "load assignment",
                    name: service_name.clone(),
                    message,
                }),
            }
        }

        // Route tables.
        let mut routes = NameMap::default();
        for (name, r) in resources.of_type(ROUTE_TYPE) {
            let key = (ROUTE_TYPE, name.clone());
            if let (Some(prev), Some(v)) = (last.routes.get(name), self.versions.get(&key)) {
                if *v == r.version {
                    routes.insert(name.clone(), prev.clone());
                    versions.insert(key, r.version.clone());
                    continue;
                }
            }
            let compiled = compile_route_table(&r.body);
            match compiled {
                Ok(t) => {
                    routes.insert(name.clone(), Arc::new(t));
                    versions.insert(key, r.version.clone());
                }
                Err(message) => {
                    errors.push(ConfigError {
                        kind: "route configuration",
                        name: name.clone(),
                        message,
                    });
                    if let Some(prev) = last.routes.get(name) {
                        routes.insert(name.clone(), prev.clone());
                        if let Some(v) = self.versions.get(&key) {
                            versions.insert(key, v.clone());
                        }
                    }
                }
            }
        }

        // Listeners: TCP proxies, and HTTP ones.
        let mut listeners = Vec::new();
        let mut tcp_listeners = Vec::new();
        for (name, r) in resources.of_type(LISTENER_TYPE) {
            let decoded = decode::<Listener>(&r.body, LISTENER_TYPE);
            if let Some(l) = decoded
                .as_ref()
                .ok()
                .filter(|l| crate::tcp::is_tcp_listener(l) || crate::tcp::is_hybrid_listener(l))
            {
                // A TCP listener, or a hybrid one whose HTTP chains are listeners of their own
                // (`embedded`), served through it.
                let previous = last.tcp_listeners.iter().find(|l| &l.name == name);
                if let Some(prev) = previous.filter(|p| p.version == r.version) {
                    listeners.extend(prev.http_chains());
                    tcp_listeners.push(prev.clone());
                    continue;
                }
                match crate::tcp::TcpProxyListener::compile_with_http(l, &r.version, &self.registry)
                {
                    Ok(l) => {
                        listeners.extend(l.http_chains());
                        tcp_listeners.push(Arc::new(l));
                    }
                    Err(message) => {
                        errors.push(ConfigError {
                            kind: "listener",
                            name: name.clone(),
                            message,
                        });
                        if let Some(prev) = previous {
                            listeners.extend(prev.http_chains());
                            tcp_listeners.push(prev.clone());
                        }
                    }
                }
                continue;
            }
            let previous = last.listeners.iter().find(|l| &l.name == name);
            if let Some(prev) = previous.filter(|p| p.version == r.version) {
                listeners.push(prev.clone());
                continue;
            }
            let compiled = decoded.and_then(|l| compile_listener(&l, &r.version, &self.registry));
            match compiled {
                Ok(l) => listeners.push(Arc::new(l)),
                Err(message) => {
                    errors.push(ConfigError {
                        kind: "listener",
                        name: name.clone(),
                        message,
                    });
                    if let Some(prev) = previous {
                        listeners.push(prev.clone());
                    }
                }
            }
        }

        // Filter stacks, rebuilt only when the listener or its route table changed.
        let mut stacks = NameMap::default();
        let mut stack_versions = HashMap::new();
        for l in &listeners {
            if l.filters.is_empty() {
                continue;
            }
            let table = l
                .inline_routes
                .as_ref()
                .or_else(|| routes.get(&l.route_config));
            let Some(table) = table else { continue };
            let table_version = versions
                .get(&(ROUTE_TYPE, l.route_config.clone()))
                .cloned()
                .unwrap_or_default();
            let key = (l.version.clone(), table_version);
            if let (Some(prev), Some(v)) =
                (last.stacks.get(&l.name), self.stack_versions.get(&l.name))
            {
                if *v == key {
                    stacks.insert(l.name.clone(), prev.clone());
                    stack_versions.insert(l.name.clone(), key);
                    continue;
                }
            }
            match build_stacks(l, table, &self.inner) {
                Ok(s) => {
                    stacks.insert(l.name.clone(), Arc::new(s));
                    stack_versions.insert(l.name.clone(), key);
                }
                Err(message) => {
                    errors.push(ConfigError {
                        kind: "route configuration",
                        name: l.route_config.clone(),
                        message,
                    });
                    // Never serve the new routes without their filters (that would fail
                    // open): the route table and stacks in force stay, as Envoy keeps the
                    // last route configuration it accepted; with none, the listener answers
                    // 404 until a usable one arrives.
                    let previous = (
                        last.stacks.get(&l.name),
                        self.stack_versions.get(&l.name),
                        last.routes.get(&l.route_config),
                    );
                    if let (Some(prev), Some(prev_key), Some(prev_table)) = previous {
                        stacks.insert(l.name.clone(), prev.clone());
                        stack_versions.insert(l.name.clone(), prev_key.clone());
                        routes.insert(l.route_config.clone(), prev_table.clone());
                        versions.insert((ROUTE_TYPE, l.route_config.clone()), prev_key.1.clone());
                    } else {
                        routes.remove(&l.route_config);
                    }
                }
            }
        }

        for e in &errors {
            tracing::warn!("{e}; its last good version (if any) stays in force");
        }
        let config = Arc::new(ProxyConfig {
            listeners,
            tcp_listeners,
            routes,
            clusters,
            stacks,
            resources,
            errors,
        });
        self.versions = versions;
        self.stack_versions = stack_versions;
        self.last = config.clone();
        config
    }

    /// Checks resources of one type the way [`Compiler::compile`] would use them (for the
    /// ADS client: a failure is sent back as a NACK).
    pub fn validate(
        registry: &FilterRegistry,
        type_url: &str,
        resources: &BTreeMap<String, Arc<Any>>,
    ) -> Result<(), String> {
        let stats = Stats::default();
        for (name, any) in resources {
            let result = match type_url {
                LISTENER_TYPE => decode::<Listener>(any, LISTENER_TYPE).and_then(|l| {
                    if crate::tcp::is_tcp_listener(&l) || crate::tcp::is_hybrid_listener(&l) {
                        crate::tcp::TcpProxyListener::compile_with_http(&l, "", registry)
                            .map(|_| ())
                    } else {
                        compile_listener(&l, "", registry).map(|_| ())
                    }
                }),
                ROUTE_TYPE => compile_route_table(any).map(|_| ()),
                CLUSTER_TYPE => decode::<PbCluster>(any, CLUSTER_TYPE).and_then(|c| {
                    Cluster::compile(&c, "", &stats, 0)
                        .map(|_| ())
                        .map_err(|e| e.message)
                }),
                ENDPOINT_TYPE => decode::<ClusterLoadAssignment>(any, ENDPOINT_TYPE).map(|_| ()),
                _ => Ok(()),
            };
            result.map_err(|e| format!("{name}: {e}"))?;
        }
        Ok(())
    }
}

/// Protos for tests of the crate.
#[cfg(test)]
pub(crate) mod test_support {
    use super::{filter, Listener, HCM_TYPE};
    use envoy_types::pb::envoy::config::core::v3::{
        address, socket_address, Address, SocketAddress,
    };
    use envoy_types::pb::envoy::config::listener::v3::{Filter, FilterChain};
    use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
        http_connection_manager::RouteSpecifier, HttpConnectionManager, HttpFilter, Rds,
    };
    use envoy_types::pb::google::protobuf::Any;
    use prost::Message;

    /// A listener named `http` on 127.0.0.1:1 whose connection manager runs `http_filters`
    /// and reads the route configuration `routes`.
    pub(crate) fn listener(http_filters: Vec<HttpFilter>) -> Listener {
        let hcm = HttpConnectionManager {
            route_specifier: Some(RouteSpecifier::Rds(Rds {
                route_config_name: "routes".into(),
                ..Default::default()
            })),
            http_filters,
            ..Default::default()
        };
        Listener {
            name: "http".into(),
            address: Some(Address {
                address: Some(address::Address::SocketAddress(SocketAddress {
                    address: "127.0.0.1".into(),
                    port_specifier: Some(socket_address::PortSpecifier::PortValue(1)),
                    ..Default::default()
                })),
            }),
            filter_chains: vec![FilterChain {
                filters: vec![Filter {
                    name: "envoy.filters.network.http_connection_manager".into(),
                    config_type: Some(filter::ConfigType::TypedConfig(Any {
                        type_url: HCM_TYPE.to_string(),
                        value: hcm.encode_to_vec(),
                    })),
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }
}

/// Listeners with the gRPC-Web filter (Gloo puts it on every one) serve the requests it
/// leaves alone with stacks without it.
#[cfg(test)]
mod grpc_web_stacks {
    use super::*;
    use crate::builtin::{FAULT, GRPC_WEB, GRPC_WEB_TYPE};
    use envoy_types::pb::envoy::config::route::v3::{
        route, route_match, DirectResponseAction, Route, RouteConfiguration, RouteMatch,
        VirtualHost,
    };
    use envoy_types::pb::envoy::extensions::filters::http::fault::v3::{
        fault_abort, FaultAbort, HttpFault,
    };
    use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpFilter;
    use http::header;
    use tower::ServiceExt;

    fn any<M: Message>(type_url: &str, m: &M) -> Any {
        Any {
            type_url: type_url.to_string(),
            value: m.encode_to_vec(),
        }
    }

    fn route(prefix: &str, per_filter: HashMap<String, Any>) -> Route {
        Route {
            r#match: Some(RouteMatch {
                path_specifier: Some(route_match::PathSpecifier::Prefix(prefix.into())),
                ..Default::default()
            }),
            action: Some(route::Action::DirectResponse(DirectResponseAction {
                status: 200,
                ..Default::default()
            })),
            typed_per_filter_config: per_filter,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn requests_the_filter_leaves_alone_skip_it() {
        let listener = test_support::listener(vec![
            HttpFilter {
                name: FAULT.into(),
                config_type: Some(http_filter::ConfigType::TypedConfig(any(
                    "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
                    &HttpFault::default(),
                ))),
                ..Default::default()
            },
            HttpFilter {
                name: GRPC_WEB.into(),
                config_type: Some(http_filter::ConfigType::TypedConfig(Any {
                    type_url: GRPC_WEB_TYPE.into(),
                    value: Vec::new(),
                })),
                ..Default::default()
            },
            HttpFilter {
                name: ROUTER.into(),
                ..Default::default()
            },
        ]);
        // `/plain` has no filter of its own; `/aborted` aborts (the fault filter per route).
        let abort = HttpFault {
            abort: Some(FaultAbort {
                error_type: Some(fault_abort::ErrorType::HttpStatus(503)),
                ..Default::default()
            }),
            ..Default::default()
        };
        let routes = RouteConfiguration {
            name: "routes".into(),
            virtual_hosts: vec![VirtualHost {
                name: "all".into(),
                domains: vec!["*".into()],
                routes: vec![
                    route("/plain", HashMap::new()),
                    route(
                        "/aborted",
                        [(
                            FAULT.to_string(),
                            any(
                                "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
                                &abort,
                            ),
                        )]
                        .into(),
                    ),
                ],
                ..Default::default()
            }],
            ..Default::default()
        };
        let resource = |body: Any| XdsResource {
            version: "1".into(),
            body: Arc::new(body),
        };
        let resources = XdsResources {
            by_type: [
                (
                    LISTENER_TYPE.to_string(),
                    [("http".to_string(), resource(any(LISTENER_TYPE, &listener)))].into(),
                ),
                (
                    ROUTE_TYPE.to_string(),
                    [("routes".to_string(), resource(any(ROUTE_TYPE, &routes)))].into(),
                ),
            ]
            .into(),
        };
        let inner = HttpService::new(tower::service_fn(|_: http::Request<Body>| {
            std::future::ready(Ok(http::Response::new(Body::from("from the route"))))
        }));
        let mut compiler = Compiler::new(
            FilterRegistry::with_builtins(),
            Arc::new(Stats::default()),
            inner,
            1,
        );
        let config = compiler.compile(resources);
        assert!(config.errors.is_empty(), "{:?}", config.errors);
        let stacks = &config.stacks["http"];

        // Other requests: no stack where no other filter acts (forwarded as without filters),
        // the fault filter's where it does, and no stack of listener filters for a 404.
        let others = stacks.for_grpc_web(false);
        assert!(others.route(0, 0).is_none());
        assert!(others.route(0, 1).is_some());
        assert!(others.no_route().is_none());
        assert!(!others.is_bare());

        // gRPC-Web calls: every route through the filter (the plain routes share one stack).
        let calls = stacks.for_grpc_web(true);
        let (Some(shared), Some(aborted)) = (calls.route(0, 0), calls.route(0, 1)) else {
            panic!("gRPC-Web calls go through stacks: {calls:?}");
        };
        assert!(calls.no_route().is_some());
        let call = |service: HttpService| async move {
            let request = http::Request::post("/x")
                .header(header::CONTENT_TYPE, "application/grpc-web")
                .body(Body::empty())
                .unwrap();
            service.oneshot(request).await.unwrap()
        };
        let answer = call(shared.clone()).await;
        assert_eq!(answer.status(), 200);
        // The route's answer is not gRPC: it becomes the message a gRPC-Web client reads.
        assert_eq!(answer.headers()["grpc-message"], "from the route");
        assert_eq!(
            answer.headers()["content-type"],
            "application/grpc-web+proto"
        );
        // The fault filter runs first (Gloo's order), and its abort is not converted: Envoy's
        // local replies pass only the filters before the one that made them.
        let answer = call(aborted.clone()).await;
        assert_eq!(answer.status(), 503);
        assert!(answer.headers().get("grpc-status").is_none());
    }
}

#[cfg(all(test, feature = "ratelimit"))]
mod tests {
    use super::*;
    use crate::ratelimit::{LOCAL_RATELIMIT, LOCAL_RATELIMIT_TYPE};
    use envoy_types::pb::envoy::config::route::v3::{
        route, route_match, DirectResponseAction, Route, RouteConfiguration, RouteMatch,
        VirtualHost,
    };
    use envoy_types::pb::envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit;
    use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpFilter;
    use envoy_types::pb::envoy::r#type::v3::TokenBucket;

    fn any<M: Message>(type_url: &str, m: &M) -> Any {
        Any {
            type_url: type_url.to_string(),
            value: m.encode_to_vec(),
        }
    }

    #[test]
    fn edge_requests_get_a_request_id_of_the_proxys_unless_told_to_keep_theirs() {
        use envoy_types::pb::envoy::config::core::v3::CidrRange as PbCidr;
        use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::InternalAddressConfig;
        use envoy_types::pb::google::protobuf::{BoolValue, UInt32Value};
        let settings = |use_remote_address: bool, preserve: bool| {
            let hcm = HttpConnectionManager {
                use_remote_address: Some(BoolValue {
                    value: use_remote_address,
                }),
                preserve_external_request_id: preserve,
                internal_address_config: Some(InternalAddressConfig {
                    unix_sockets: false,
                    cidr_ranges: vec![PbCidr {
                        address_prefix: "10.0.0.0".into(),
                        prefix_len: Some(UInt32Value { value: 8 }),
                    }],
                }),
                ..Default::default()
            };
            ConnectionSettings::from_hcm(&hcm).unwrap()
        };
        let outside: std::net::IpAddr = "203.0.113.9".parse().unwrap();
        let inside: std::net::IpAddr = "10.1.2.3".parse().unwrap();
        // Without an id, always one.
        assert!(settings(false, false).sets_request_id(false, outside));
        // Not at the edge: a client's id is kept.
        assert!(!settings(false, false).sets_request_id(true, outside));
        // At the edge: replaced, unless the client is internal or ids are kept.
        assert!(settings(true, false).sets_request_id(true, outside));
        assert!(!settings(true, false).sets_request_id(true, inside));
        assert!(!settings(true, true).sets_request_id(true, outside));
        // A bad range is refused, naming it.
        let bad = HttpConnectionManager {
            internal_address_config: Some(InternalAddressConfig {
                unix_sockets: false,
                cidr_ranges: vec![PbCidr {
                    address_prefix: "10.0.0.0".into(),
                    prefix_len: Some(UInt32Value { value: 40 }),
                }],
            }),
            ..Default::default()
        };
        let error = ConnectionSettings::from_hcm(&bad).unwrap_err();
        assert!(
            error.starts_with("internal_address_config.cidr_ranges[0]"),
            "{error}"
        );
    }

    #[test]
    fn the_router_config_says_whether_envoy_headers_are_suppressed() {
        use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
        let hcm = |config: Option<Any>| HttpConnectionManager {
            http_filters: vec![HttpFilter {
                name: ROUTER.into(),
                config_type: config.map(http_filter::ConfigType::TypedConfig),
                ..Default::default()
            }],
            ..Default::default()
        };
        let router = |suppress| {
            any(
                "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
                &Router {
                    suppress_envoy_headers: suppress,
                    ..Default::default()
                },
            )
        };
        let settings = |config| ConnectionSettings::from_hcm(&hcm(config));
        assert!(settings(Some(router(true))).unwrap().suppress_envoy_headers);
        assert!(
            !settings(Some(router(false)))
                .unwrap()
                .suppress_envoy_headers
        );
        assert!(!settings(None).unwrap().suppress_envoy_headers);
        let wrong = any(LOCAL_RATELIMIT_TYPE, &LocalRateLimit::default());
        let error = settings(Some(wrong)).unwrap_err();
        assert!(
            error.starts_with("http_filters[0] (router): expected"),
            "{error}"
        );
    }

    fn listener() -> Listener {
        test_support::listener(vec![
            HttpFilter {
                name: LOCAL_RATELIMIT.into(),
                config_type: Some(http_filter::ConfigType::TypedConfig(any(
                    LOCAL_RATELIMIT_TYPE,
                    &LocalRateLimit::default(),
                ))),
                ..Default::default()
            },
            HttpFilter {
                name: ROUTER.into(),
                ..Default::default()
            },
        ])
    }

    fn everyone() -> envoy_types::pb::envoy::config::core::v3::RuntimeFractionalPercent {
        envoy_types::pb::envoy::config::core::v3::RuntimeFractionalPercent {
            default_value: Some(envoy_types::pb::envoy::r#type::v3::FractionalPercent {
                numerator: 100,
                denominator: 0,
            }),
            ..Default::default()
        }
    }

    /// One route with a per-route local rate limit; `descriptors` makes it one the filter
    /// refuses.
    fn routes(refused: bool) -> RouteConfiguration {
        routes_with(
            [(
                LOCAL_RATELIMIT.to_string(),
                any(LOCAL_RATELIMIT_TYPE, &limit(refused)),
            )]
            .into(),
        )
    }

    /// A per-route local rate limit; `descriptors` makes it one the filter refuses.
    fn limit(refused: bool) -> LocalRateLimit {
        LocalRateLimit {
            token_bucket: Some(TokenBucket {
                max_tokens: 1,
                tokens_per_fill: None,
                fill_interval: Some(envoy_types::pb::google::protobuf::Duration {
                    seconds: 1,
                    nanos: 0,
                }),
            }),
            filter_enabled: Some(everyone()),
            filter_enforced: Some(everyone()),
            descriptors: if refused {
                vec![Default::default()]
            } else {
                Vec::new()
            },
            ..Default::default()
        }
    }

    /// One route with these per-filter configs.
    fn routes_with(typed_per_filter_config: HashMap<String, Any>) -> RouteConfiguration {
        RouteConfiguration {
            name: "routes".into(),
            virtual_hosts: vec![VirtualHost {
                name: "all".into(),
                domains: vec!["*".into()],
                routes: vec![Route {
                    r#match: Some(RouteMatch {
                        path_specifier: Some(route_match::PathSpecifier::Prefix("/".into())),
                        ..Default::default()
                    }),
                    action: Some(route::Action::DirectResponse(DirectResponseAction {
                        status: 200,
                        ..Default::default()
                    })),
                    typed_per_filter_config,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn resources(route_version: &str, refused: bool) -> XdsResources {
        resources_with(route_version, routes(refused))
    }

    fn resources_with(route_version: &str, routes: RouteConfiguration) -> XdsResources {
        let resource = |version: &str, body: Any| XdsResource {
            version: version.into(),
            body: Arc::new(body),
        };
        XdsResources {
            by_type: [
                (
                    LISTENER_TYPE.to_string(),
                    [(
                        "http".to_string(),
                        resource("1", any(LISTENER_TYPE, &listener())),
                    )]
                    .into(),
                ),
                (
                    ROUTE_TYPE.to_string(),
                    [(
                        "routes".to_string(),
                        resource(route_version, any(ROUTE_TYPE, &routes)),
                    )]
                    .into(),
                ),
            ]
            .into(),
        }
    }

    fn new_compiler() -> Compiler {
        let inner = HttpService::new(tower::service_fn(|_: http::Request<Body>| {
            std::future::ready(Ok(http::Response::new(Body::empty())))
        }));
        Compiler::new(
            FilterRegistry::with_builtins(),
            Arc::new(Stats::default()),
            inner,
            1,
        )
    }

    /// A build without a filter (a cargo feature off, or an application registry without it)
    /// never serves a listener that needs it unprotected: a required filter the registry does
    /// not know refuses the listener, naming the filter; an optional one is skipped.
    #[test]
    fn listeners_needing_an_unregistered_filter_are_refused() {
        let inner = HttpService::new(tower::service_fn(|_: http::Request<Body>| {
            std::future::ready(Ok(http::Response::new(Body::empty())))
        }));
        let mut bare = Compiler::new(FilterRegistry::new(), Arc::new(Stats::default()), inner, 1);
        let refused = bare.compile(resources("1", false));
        assert_eq!(refused.errors.len(), 1, "{:?}", refused.errors);
        let message = &refused.errors[0].message;
        assert!(
            message.contains("http_filters[0]")
                && message.contains(LOCAL_RATELIMIT)
                && message.contains("is not registered"),
            "{message}"
        );
        assert!(refused.listeners.is_empty(), "nothing listens");

        let mut optional = resources("1", false);
        let mut listener = listener();
        set_first_filter_optional(&mut listener);
        optional.by_type.insert(
            LISTENER_TYPE.to_string(),
            [(
                "http".to_string(),
                XdsResource {
                    version: "2".into(),
                    body: Arc::new(any(LISTENER_TYPE, &listener)),
                },
            )]
            .into(),
        );
        let skipped = bare.compile(optional);
        assert!(
            !skipped
                .errors
                .iter()
                .any(|e| e.message.contains("is not registered")),
            "{:?}",
            skipped.errors
        );
        assert!(
            skipped.listeners.iter().any(|l| l.name == "http"),
            "served without it"
        );
    }

    fn set_first_filter_optional(listener: &mut Listener) {
        let Some(filter::ConfigType::TypedConfig(hcm_any)) =
            &mut listener.filter_chains[0].filters[0].config_type
        else {
            panic!("the test listener has a typed HCM");
        };
        let mut hcm = HttpConnectionManager::decode(hcm_any.value.as_slice()).expect("HCM");
        hcm.http_filters[0].is_optional = true;
        hcm_any.value = hcm.encode_to_vec();
    }

    /// Routes whose filters cannot be built are never served without them: the route table
    /// and stacks in force stay (as Envoy keeps its last accepted route configuration), and
    /// with none in force the listener has no routes at all.
    #[test]
    fn routes_whose_filters_are_refused_are_not_served_without_them() {
        let mut compiler = new_compiler();
        let good = compiler.compile(resources("1", false));
        assert!(good.errors.is_empty(), "{:?}", good.errors);
        let good_table = good.routes.get("routes").expect("routes in force").clone();
        assert!(good.stacks["http"].route(0, 0).is_some());

        let after = compiler.compile(resources("2", true));
        assert_eq!(after.errors.len(), 1, "{:?}", after.errors);
        assert!(
            after.errors[0].message.contains("descriptors"),
            "{:?}",
            after.errors
        );
        let kept = after.routes.get("routes").expect("the last good routes");
        assert!(Arc::ptr_eq(kept, &good_table), "the last good table stays");
        assert!(after.stacks["http"].route(0, 0).is_some());

        let mut fresh = new_compiler();
        let refused = fresh.compile(resources("1", true));
        assert_eq!(refused.errors.len(), 1, "{:?}", refused.errors);
        assert!(
            !refused.routes.contains_key("routes"),
            "nothing served unfiltered"
        );
    }

    /// Per-route configs wrapped in `envoy.config.route.v3.FilterConfig` (as gloo-core wraps
    /// its own filters' configs, optional for stock Envoy) are unwrapped for a filter the
    /// listener has: the wrapped config is used (and refused like a bare one), `disabled`
    /// turns the filter off there. An optional config of a filter the listener does not have
    /// is skipped.
    #[test]
    fn filter_config_wrappers_are_unwrapped() {
        let wrapped = |config: Option<Any>, disabled: bool| FilterConfig {
            config,
            is_optional: true,
            disabled,
        };
        let compile = |per_filter: HashMap<String, Any>| {
            new_compiler().compile(resources_with("1", routes_with(per_filter)))
        };
        let filter_config = |f: FilterConfig| any(FILTER_CONFIG_TYPE, &f);

        let used = compile(
            [(
                LOCAL_RATELIMIT.to_string(),
                filter_config(wrapped(
                    Some(any(LOCAL_RATELIMIT_TYPE, &limit(false))),
                    false,
                )),
            )]
            .into(),
        );
        assert!(used.errors.is_empty(), "{:?}", used.errors);
        assert!(
            used.stacks["http"].route(0, 0).is_some(),
            "the wrapped limit is used"
        );

        let refused = compile(
            [(
                LOCAL_RATELIMIT.to_string(),
                filter_config(wrapped(
                    Some(any(LOCAL_RATELIMIT_TYPE, &limit(true))),
                    false,
                )),
            )]
            .into(),
        );
        assert!(
            refused
                .errors
                .iter()
                .any(|e| e.message.contains("descriptors")),
            "{:?}",
            refused.errors
        );

        let disabled = compile(
            [(
                LOCAL_RATELIMIT.to_string(),
                filter_config(wrapped(None, true)),
            )]
            .into(),
        );
        assert!(disabled.errors.is_empty(), "{:?}", disabled.errors);
        assert!(
            disabled.stacks["http"].route(0, 0).is_none(),
            "no filter on the route"
        );

        let empty = compile(
            [(
                LOCAL_RATELIMIT.to_string(),
                filter_config(wrapped(None, false)),
            )]
            .into(),
        );
        assert!(
            empty
                .errors
                .iter()
                .any(|e| e.message.contains("FilterConfig.config")),
            "{:?}",
            empty.errors
        );

        let unknown = compile(
            [(
                "example.unknown".to_string(),
                filter_config(wrapped(
                    Some(Any {
                        type_url: "type.googleapis.com/example.Unknown".into(),
                        value: vec![1, 2, 3],
                    }),
                    false,
                )),
            )]
            .into(),
        );
        assert!(unknown.errors.is_empty(), "{:?}", unknown.errors);
        assert!(unknown.routes.contains_key("routes"));
    }
}
