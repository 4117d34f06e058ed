//! The xDS side of translation: the Envoy resources gloo-core produces for one proxy, their
//! content-hash versions, and their proto3 JSON form.
//!
//! Resources are the `envoy-types` messages Envoy itself reads. Each one carries a version that
//! is a hash of its canonical content, so a server re-sends only what actually changed.

pub mod aws_lambda;
mod hash;
mod json;
pub mod transformation;
pub mod waf;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::google::protobuf::Any;
use prost::Message;

pub use hash::content_version;
pub(crate) use hash::encode_with_version;
pub use json::{any_to_json, descriptor_pool, to_json, JsonError};

/// Type URL of [`Listener`] (LDS).
pub const LISTENER_TYPE: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
/// Type URL of [`RouteConfiguration`] (RDS).
pub const ROUTE_TYPE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
/// Type URL of [`Cluster`] (CDS).
pub const CLUSTER_TYPE: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
/// Type URL of [`ClusterLoadAssignment`] (EDS).
pub const ENDPOINT_TYPE: &str =
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";

/// An Envoy message with its fully qualified protobuf name, so it can be packed into an `Any`
/// and printed as JSON.
pub trait EnvoyMessage: Message + Default + Clone + PartialEq + Send + Sync + 'static {
    /// The protobuf full name, e.g. `envoy.config.listener.v3.Listener`.
    const FULL_NAME: &'static str;

    /// `type.googleapis.com/<full name>`.
    fn type_url() -> String {
        format!("type.googleapis.com/{}", Self::FULL_NAME)
    }

    /// Whether prost's encoding of this message is canonical: true when no map field anywhere
    /// in it (payloads of `Any`s included) holds more than one entry, because prost writes
    /// fields in number order and only map entries in `HashMap` order. Then the content
    /// version can hash the encoding directly instead of walking the message.
    fn encoding_is_canonical(&self) -> bool {
        false
    }
}

macro_rules! envoy_messages {
    ($($ty:path => $name:literal,)*) => {
        $(impl EnvoyMessage for $ty { const FULL_NAME: &'static str = $name; })*
    };
}

/// At most one entry in a map: its encoding does not depend on `HashMap` order.
fn single<K, V>(map: &std::collections::HashMap<K, V>) -> bool {
    map.len() <= 1
}

/// Metadata (route metadata, subset match criteria, endpoint labels) whose encoding does not
/// depend on `HashMap` order: at most one filter, whose `Struct` (a map too) has at most one
/// field at every depth.
fn no_metadata(metadata: &Option<envoy_types::pb::envoy::config::core::v3::Metadata>) -> bool {
    metadata.as_ref().is_none_or(|m| {
        single(&m.filter_metadata)
            && m.typed_filter_metadata.is_empty()
            && m.filter_metadata.values().all(single_field_struct)
    })
}

/// A `Struct` with at most one field at every depth (lists included).
fn single_field_struct(s: &envoy_types::pb::google::protobuf::Struct) -> bool {
    fn value(v: &envoy_types::pb::google::protobuf::Value) -> bool {
        use envoy_types::pb::google::protobuf::value::Kind;
        match &v.kind {
            Some(Kind::StructValue(s)) => single_field_struct(s),
            Some(Kind::ListValue(l)) => l.values.iter().all(value),
            _ => true,
        }
    }
    single(&s.fields) && s.fields.values().all(value)
}

impl EnvoyMessage for Listener {
    const FULL_NAME: &'static str = "envoy.config.listener.v3.Listener";

    // gloo's listeners set no maps; the filter configs they embed (connection managers, TLS
    // contexts, TCP proxies) set none either, except the JWT filter (providers and requirements
    // by name) and a file access log's JSON format. Their type URLs are in the bytes of any
    // filter config that embeds them, so looking for them is enough (a false match only costs
    // the canonical walk).
    fn encoding_is_canonical(&self) -> bool {
        no_metadata(&self.metadata)
            && self
                .filter_chains
                .iter()
                .chain(&self.default_filter_chain)
                .flat_map(|chain| &chain.filters)
                .all(|filter| match &filter.config_type {
                    Some(envoy_types::pb::envoy::config::listener::v3::filter::ConfigType::TypedConfig(any)) => {
                        !embeds_map_carrying_config(any)
                    }
                    _ => true,
                })
    }
}

/// The type names of the filter configs gloo emits that hold a map field with several entries:
/// the JWT filter (providers and requirements by name), ext auth's per-route config (its
/// context extensions: `config_id`, `source_type`, `source_name`) and the file access log that
/// connection managers and TCP proxies embed (a JSON format is a `Struct`, a map).
const MAP_CARRYING_CONFIGS: &[&str] = &[
    "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
    "envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute",
    "envoy.extensions.access_loggers.file.v3.FileAccessLog",
];

/// Per-filter configs whose encoding does not depend on `HashMap` order: at most one, and not
/// one of [`MAP_CARRYING_CONFIGS`].
fn canonical_per_filter(configs: &std::collections::HashMap<String, Any>) -> bool {
    single(configs) && !configs.values().any(embeds_map_carrying_config)
}

/// Whether `any`, or an `Any` nested in it, is one of [`MAP_CARRYING_CONFIGS`].
fn embeds_map_carrying_config(any: &Any) -> bool {
    MAP_CARRYING_CONFIGS.iter().any(|name| {
        any.type_url.ends_with(name) || any.value.windows(name.len()).any(|w| w == name.as_bytes())
    })
}

impl EnvoyMessage for Cluster {
    const FULL_NAME: &'static str = "envoy.config.cluster.v3.Cluster";

    fn encoding_is_canonical(&self) -> bool {
        single(&self.typed_extension_protocol_options)
            && no_metadata(&self.metadata)
            && self
                .load_assignment
                .as_ref()
                .is_none_or(|a| a.encoding_is_canonical())
    }
}

impl EnvoyMessage for ClusterLoadAssignment {
    const FULL_NAME: &'static str = "envoy.config.endpoint.v3.ClusterLoadAssignment";

    fn encoding_is_canonical(&self) -> bool {
        self.named_endpoints.is_empty()
            && self.endpoints.iter().all(|locality| {
                no_metadata(&locality.metadata)
                    && locality
                        .lb_endpoints
                        .iter()
                        .all(|e| no_metadata(&e.metadata))
            })
    }
}

impl EnvoyMessage for envoy_types::pb::envoy::config::route::v3::VirtualHost {
    const FULL_NAME: &'static str = "envoy.config.route.v3.VirtualHost";

    // Per-filter configs are the only maps gloo sets on virtual hosts, routes and weighted
    // clusters (besides metadata); of the configs themselves only ext auth's holds a map.
    fn encoding_is_canonical(&self) -> bool {
        use envoy_types::pb::envoy::config::route::v3::{route, route_action};
        canonical_per_filter(&self.typed_per_filter_config)
            && no_metadata(&self.metadata)
            && self.routes.iter().all(|r| {
                canonical_per_filter(&r.typed_per_filter_config)
                    && no_metadata(&r.metadata)
                    && match &r.action {
                        Some(route::Action::Route(action)) => match &action.cluster_specifier {
                            Some(route_action::ClusterSpecifier::WeightedClusters(w)) => {
                                w.clusters.iter().all(|c| {
                                    canonical_per_filter(&c.typed_per_filter_config)
                                        && no_metadata(&c.metadata_match)
                                })
                            }
                            _ => true,
                        },
                        _ => true,
                    }
            })
    }
}

envoy_messages! {
    RouteConfiguration => "envoy.config.route.v3.RouteConfiguration",
    envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager
        => "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
    envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy
        => "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
    envoy_types::pb::envoy::extensions::filters::network::sni_cluster::v3::SniCluster
        => "envoy.extensions.filters.network.sni_cluster.v3.SniCluster",
    envoy_types::pb::envoy::extensions::filters::http::router::v3::Router
        => "envoy.extensions.filters.http.router.v3.Router",
    envoy_types::pb::envoy::extensions::filters::http::cors::v3::Cors
        => "envoy.extensions.filters.http.cors.v3.Cors",
    envoy_types::pb::envoy::extensions::filters::http::cors::v3::CorsPolicy
        => "envoy.extensions.filters.http.cors.v3.CorsPolicy",
    envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault
        => "envoy.extensions.filters.http.fault.v3.HTTPFault",
    envoy_types::pb::envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit
        => "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
    envoy_types::pb::envoy::extensions::filters::http::ratelimit::v3::RateLimit
        => "envoy.extensions.filters.http.ratelimit.v3.RateLimit",
    envoy_types::pb::envoy::extensions::filters::http::jwt_authn::v3::JwtAuthentication
        => "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
    envoy_types::pb::envoy::extensions::filters::http::jwt_authn::v3::PerRouteConfig
        => "envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig",
    envoy_types::pb::envoy::extensions::filters::http::ext_authz::v3::ExtAuthz
        => "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
    envoy_types::pb::envoy::extensions::filters::http::ext_authz::v3::ExtAuthzPerRoute
        => "envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute",
    envoy_types::pb::envoy::extensions::filters::http::header_mutation::v3::HeaderMutation
        => "envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
    envoy_types::pb::envoy::extensions::filters::http::health_check::v3::HealthCheck
        => "envoy.extensions.filters.http.health_check.v3.HealthCheck",
    envoy_types::pb::envoy::extensions::filters::http::grpc_web::v3::GrpcWeb
        => "envoy.extensions.filters.http.grpc_web.v3.GrpcWeb",
    envoy_types::pb::envoy::extensions::http::early_header_mutation::header_mutation::v3::HeaderMutation
        => "envoy.extensions.http.early_header_mutation.header_mutation.v3.HeaderMutation",
    envoy_types::pb::envoy::extensions::http::header_formatters::preserve_case::v3::PreserveCaseFormatterConfig
        => "envoy.extensions.http.header_formatters.preserve_case.v3.PreserveCaseFormatterConfig",
    envoy_types::pb::envoy::extensions::filters::http::compressor::v3::Compressor
        => "envoy.extensions.filters.http.compressor.v3.Compressor",
    envoy_types::pb::envoy::extensions::compression::gzip::compressor::v3::Gzip
        => "envoy.extensions.compression.gzip.compressor.v3.Gzip",
    envoy_types::pb::envoy::extensions::filters::http::buffer::v3::Buffer
        => "envoy.extensions.filters.http.buffer.v3.Buffer",
    envoy_types::pb::envoy::extensions::filters::http::buffer::v3::BufferPerRoute
        => "envoy.extensions.filters.http.buffer.v3.BufferPerRoute",
    envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext
        => "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
    envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext
        => "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
    envoy_types::pb::envoy::extensions::transport_sockets::proxy_protocol::v3::ProxyProtocolUpstreamTransport
        => "envoy.extensions.transport_sockets.proxy_protocol.v3.ProxyProtocolUpstreamTransport",
    envoy_types::pb::envoy::extensions::transport_sockets::raw_buffer::v3::RawBuffer
        => "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer",
    envoy_types::pb::envoy::extensions::upstreams::http::v3::HttpProtocolOptions
        => "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
    envoy_types::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector
        => "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector",
    envoy_types::pb::envoy::extensions::filters::listener::proxy_protocol::v3::ProxyProtocol
        => "envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol",
    envoy_types::pb::envoy::config::route::v3::FilterConfig
        => "envoy.config.route.v3.FilterConfig",
    envoy_types::pb::envoy::extensions::access_loggers::file::v3::FileAccessLog
        => "envoy.extensions.access_loggers.file.v3.FileAccessLog",
    envoy_types::pb::envoy::extensions::access_loggers::grpc::v3::HttpGrpcAccessLogConfig
        => "envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig",
    envoy_types::pb::envoy::extensions::formatter::req_without_query::v3::ReqWithoutQuery
        => "envoy.extensions.formatter.req_without_query.v3.ReqWithoutQuery",
    envoy_types::pb::envoy::extensions::formatter::metadata::v3::Metadata
        => "envoy.extensions.formatter.metadata.v3.Metadata",
    envoy_types::pb::envoy::extensions::request_id::uuid::v3::UuidRequestIdConfig
        => "envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig",
    envoy_types::pb::envoy::config::trace::v3::ZipkinConfig
        => "envoy.config.trace.v3.ZipkinConfig",
    envoy_types::pb::envoy::config::trace::v3::DatadogConfig
        => "envoy.config.trace.v3.DatadogConfig",
    envoy_types::pb::envoy::config::trace::v3::OpenTelemetryConfig
        => "envoy.config.trace.v3.OpenTelemetryConfig",
    envoy_types::pb::envoy::extensions::filters::http::dynamic_forward_proxy::v3::FilterConfig
        => "envoy.extensions.filters.http.dynamic_forward_proxy.v3.FilterConfig",
    envoy_types::pb::envoy::extensions::filters::http::dynamic_forward_proxy::v3::PerRouteConfig
        => "envoy.extensions.filters.http.dynamic_forward_proxy.v3.PerRouteConfig",
    envoy_types::pb::envoy::extensions::clusters::dynamic_forward_proxy::v3::ClusterConfig
        => "envoy.extensions.clusters.dynamic_forward_proxy.v3.ClusterConfig",
    envoy_types::pb::envoy::extensions::network::dns_resolver::cares::v3::CaresDnsResolverConfig
        => "envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig",
    envoy_types::pb::envoy::extensions::network::dns_resolver::apple::v3::AppleDnsResolverConfig
        => "envoy.extensions.network.dns_resolver.apple.v3.AppleDnsResolverConfig",
    transformation::FilterTransformations => "envoy.api.v2.filter.http.FilterTransformations",
    transformation::RouteTransformations => "envoy.api.v2.filter.http.RouteTransformations",
    waf::ModSecurity => "envoy.config.filter.http.modsecurity.v2.ModSecurity",
    waf::ModSecurityPerRoute => "envoy.config.filter.http.modsecurity.v2.ModSecurityPerRoute",
    aws_lambda::AwsLambdaConfig => "envoy.config.filter.http.aws_lambda.v2.AWSLambdaConfig",
    aws_lambda::AwsLambdaPerRoute => "envoy.config.filter.http.aws_lambda.v2.AWSLambdaPerRoute",
    aws_lambda::AwsLambdaProtocolExtension
        => "envoy.config.filter.http.aws_lambda.v2.AWSLambdaProtocolExtension",
    aws_lambda::ApiGatewayTransformation
        => "envoy.config.transformer.aws_lambda.v2.ApiGatewayTransformation",
}

/// Packs a message into a `google.protobuf.Any`.
///
/// ```
/// use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
/// let any = gloo_core::xds::pack(&Router::default());
/// assert_eq!(any.type_url, "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router");
/// ```
pub fn pack<M: EnvoyMessage>(message: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: message.encode_to_vec(),
    }
}

/// A resource and the hash-of-content version it is served with.
///
/// It holds the resource typed, encoded for the wire, or both: each form is made from the
/// other on first use and then shared by every clone. A translator can build a large
/// resource (a route configuration of thousands of routes) straight in its wire form and
/// keep only that, a tenth of the typed size; the typed form is decoded only if asked for.
#[derive(Clone)]
pub struct Versioned<T> {
    /// The content hash (hex); equal content always has an equal version.
    pub version: String,
    typed: Arc<OnceLock<T>>,
    /// The resource packed for the wire, encoded once on first use and shared by every clone,
    /// so publishing an unchanged resource again costs nothing.
    packed: Arc<OnceLock<Arc<Any>>>,
}

impl<T: std::fmt::Debug> std::fmt::Debug for Versioned<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Versioned")
            .field("version", &self.version)
            .field("typed", &self.typed.get())
            .field("packed_bytes", &self.packed.get().map(|a| a.value.len()))
            .finish()
    }
}

impl<T: EnvoyMessage> PartialEq for Versioned<T> {
    fn eq(&self, other: &Self) -> bool {
        self.version == other.version && self.resource() == other.resource()
    }
}

impl<T: EnvoyMessage> Versioned<T> {
    /// Wraps `resource`, computing its content version.
    ///
    /// ```
    /// use envoy_types::pb::envoy::config::cluster::v3::Cluster;
    /// use gloo_core::xds::Versioned;
    ///
    /// let a = Versioned::new(Cluster { name: "a".into(), ..Default::default() });
    /// let b = Versioned::new(Cluster { name: "a".into(), ..Default::default() });
    /// assert_eq!(a.version, b.version);
    /// assert_eq!(a.resource().name, "a");
    /// ```
    pub fn new(resource: T) -> Self {
        let version = content_version(&resource);
        Self::with_version(version, resource)
    }

    /// Wraps `resource` with a version computed elsewhere (it must change whenever the
    /// content does).
    pub fn with_version(version: String, resource: T) -> Self {
        Versioned {
            version,
            typed: Arc::new(OnceLock::from(resource)),
            packed: Arc::new(OnceLock::new()),
        }
    }

    /// Wraps `resource` and keeps only its wire form (encoded once, for the version too); the
    /// typed form is decoded again only if [`Versioned::resource`] is called.
    ///
    /// ```
    /// use envoy_types::pb::envoy::config::cluster::v3::Cluster;
    /// use gloo_core::xds::Versioned;
    ///
    /// let cluster = Cluster { name: "c".into(), ..Default::default() };
    /// let encoded = Versioned::encoded(cluster.clone());
    /// assert_eq!(encoded.version, Versioned::new(cluster).version);
    /// assert_eq!(encoded.resource().name, "c");
    /// ```
    pub fn encoded(resource: T) -> Self {
        let (value, version) = encode_with_version(&resource);
        Self::from_packed(
            version,
            Any {
                type_url: T::type_url(),
                value,
            },
        )
    }

    /// Wraps a resource already encoded as an `Any` of this type; it is decoded only if
    /// [`Versioned::resource`] is called.
    ///
    /// ```
    /// use envoy_types::pb::envoy::config::cluster::v3::Cluster;
    /// use gloo_core::xds::{pack, Versioned};
    ///
    /// let any = pack(&Cluster { name: "c".into(), ..Default::default() });
    /// let v = Versioned::<Cluster>::from_packed("1".into(), any);
    /// assert_eq!(v.packed().value.len(), 3);
    /// assert_eq!(v.resource().name, "c");
    /// ```
    pub fn from_packed(version: String, packed: Any) -> Self {
        Versioned {
            version,
            typed: Arc::new(OnceLock::new()),
            packed: Arc::new(OnceLock::from(Arc::new(packed))),
        }
    }

    /// The resource, typed (decoded from the wire form on first use).
    pub fn resource(&self) -> &T {
        self.typed.get_or_init(|| {
            // Only this crate makes packed-only values, from messages it encoded itself, so
            // the bytes always decode.
            let decoded = self
                .packed
                .get()
                .and_then(|any| T::decode(any.value.as_slice()).ok());
            debug_assert!(decoded.is_some(), "a Versioned without a decodable form");
            decoded.unwrap_or_default()
        })
    }

    /// The resource as an `Any`, encoded once.
    pub fn packed(&self) -> Arc<Any> {
        self.packed
            .get_or_init(|| Arc::new(pack(self.resource())))
            .clone()
    }
}

/// Resources of one type, by name, in name order (so output is deterministic).
pub type ResourceMap<T> = BTreeMap<String, Versioned<T>>;

/// Everything one proxy (one `proxyNames` entry) is served: the four xDS resource types.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProxyResources {
    /// Listeners (LDS), one per Gateway bind address and port.
    pub listeners: ResourceMap<Listener>,
    /// Route configurations (RDS), one per HTTP listener.
    pub routes: ResourceMap<RouteConfiguration>,
    /// Clusters (CDS), one per upstream the proxy's routes can reach.
    pub clusters: ResourceMap<Cluster>,
    /// Endpoints (EDS) of the EDS clusters.
    pub endpoints: ResourceMap<ClusterLoadAssignment>,
    /// API listeners for proxyless gRPC clients, one per virtual host domain: a client dialing
    /// `xds:///<domain>` asks LDS for `<domain>`. Served only to clients that name them.
    pub api_listeners: ResourceMap<Listener>,
}

impl ProxyResources {
    /// The resources of one type URL as `(name, version, Any)` triples, the form an xDS server
    /// sends. Unknown type URLs give an empty list.
    pub fn by_type_url(&self, type_url: &str) -> Vec<(String, String, Arc<Any>)> {
        fn collect<T: EnvoyMessage>(map: &ResourceMap<T>) -> Vec<(String, String, Arc<Any>)> {
            map.iter()
                .map(|(name, v)| (name.clone(), v.version.clone(), v.packed()))
                .collect()
        }
        match type_url {
            LISTENER_TYPE => collect(&self.listeners),
            ROUTE_TYPE => collect(&self.routes),
            CLUSTER_TYPE => collect(&self.clusters),
            ENDPOINT_TYPE => collect(&self.endpoints),
            _ => Vec::new(),
        }
    }

    /// All resources as proto3 JSON, in the shape of an Envoy bootstrap's `static_resources`
    /// plus `endpoints` (`{"listeners": [...], "routes": [...], "clusters": [...], "endpoints": [...]}`).
    pub fn to_json(&self) -> Result<serde_json::Value, JsonError> {
        fn list<T: EnvoyMessage>(map: &ResourceMap<T>) -> Result<serde_json::Value, JsonError> {
            map.values()
                .map(|v| to_json(v.resource()))
                .collect::<Result<Vec<_>, _>>()
                .map(serde_json::Value::Array)
        }
        let mut out = serde_json::Map::new();
        out.insert("listeners".into(), list(&self.listeners)?);
        out.insert("routes".into(), list(&self.routes)?);
        out.insert("clusters".into(), list(&self.clusters)?);
        out.insert("endpoints".into(), list(&self.endpoints)?);
        if !self.api_listeners.is_empty() {
            out.insert("apiListeners".into(), list(&self.api_listeners)?);
        }
        Ok(serde_json::Value::Object(out))
    }
}
