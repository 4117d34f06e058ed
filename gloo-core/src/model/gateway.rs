//! The `Gateway` resource: Gloo's `gateway/api/v1/gateway.proto` (`Gateway`, `TcpGateway`,
//! `HybridGateway`, `MatchedGateway`, `Matcher`, `DelegatedHttpGateway`, `DelegatedTcpGateway`),
//! `http_gateway.proto` (`HttpGateway`, `VirtualServiceSelectorExpressions`), the `TcpHost` of
//! `gloo/api/v1/proxy.proto` and Envoy's `config/core/v3/address.proto` `CidrRange`.
//!
//! An HTTPS gateway that serves the virtual services labelled `team: storefront`:
//!
//! ```
//! use gloo_core::load::{parse_str, Format};
//! use gloo_core::model::gateway::GatewayType;
//! use gloo_core::model::Resource;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//!
//! let yaml = r#"
//! apiVersion: gateway.solo.io/v1
//! kind: Gateway
//! metadata:
//!   name: gateway-proxy-ssl
//!   namespace: gloo-system
//! spec:
//!   bindAddress: '::'
//!   bindPort: 8443
//!   ssl: true
//!   httpGateway:
//!     virtualServiceSelector:
//!       team: storefront
//!     virtualServiceNamespaces:
//!     - storefront
//! "#;
//! let parsed = parse_str(yaml, "gateway.yaml", Format::Yaml);
//! assert!(parsed.is_ok(), "{:?}", parsed.errors);
//! let Resource::Gateway(gateway) = &parsed.resources[0].resource else {
//!     panic!("expected a Gateway");
//! };
//! let spec = &gateway.spec;
//! assert_eq!((spec.bind_address.as_str(), spec.bind_port), ("::", 8443));
//! // An SSL gateway serves only virtual services that have an `sslConfig`.
//! assert!(spec.ssl);
//! // No `proxyNames`: the gateway belongs to the default proxy.
//! assert_eq!(spec.proxy_names(), ["gateway-proxy"]);
//!
//! let Some(GatewayType::Http(http)) = spec.gateway_type()? else {
//!     panic!("expected an HTTP gateway");
//! };
//! assert_eq!(http.virtual_service_selector["team"], "storefront");
//! assert_eq!(http.virtual_service_namespaces, ["storefront"]);
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::listener_options::{
    HttpConnectionManagerSettings, HttpListenerOptions, ListenerOptions, RouteConfigurationOptions,
    TcpListenerOptions,
};
use crate::model::routing::{
    Destination, MultiDestination, OneofError, RouteTableSelector, SelectorExpression,
};
use crate::model::ssl::SslConfig;
use crate::model::ResourceRef;

/// A Gateway: one listener (bind address and port) and how its traffic is routed
/// (`gateway.solo.io.Gateway`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewaySpec {
    /// Serve only virtual services with TLS configured (an HTTPS gateway).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ssl: bool,
    /// The address to listen on (e.g. `::`).
    #[serde(
        alias = "bind_address",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub bind_address: String,
    /// The port to listen on.
    #[serde(alias = "bind_port", default)]
    pub bind_port: u32,
    /// Listener-level options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<ListenerOptions>,
    /// Deprecated: enable the PROXY protocol (use `options.proxyProtocol`).
    #[serde(
        alias = "use_proxy_proto",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub use_proxy_proto: Option<bool>,
    /// `GatewayType` oneof: an HTTP gateway.
    #[serde(
        alias = "http_gateway",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub http_gateway: Option<HttpGateway>,
    /// `GatewayType` oneof: a TCP gateway.
    #[serde(
        alias = "tcp_gateway",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub tcp_gateway: Option<TcpGateway>,
    /// `GatewayType` oneof: a gateway with several matched HTTP/TCP filter chains.
    #[serde(
        alias = "hybrid_gateway",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub hybrid_gateway: Option<HybridGateway>,
    /// Proxies to generate from this gateway; empty means `["gateway-proxy"]`.
    #[serde(alias = "proxy_names", default, skip_serializing_if = "Vec::is_empty")]
    pub proxy_names: Vec<String>,
    /// Options for the listener's Envoy route configuration.
    #[serde(
        alias = "route_options",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub route_options: Option<RouteConfigurationOptions>,
}

/// The proxy a gateway belongs to when `proxyNames` is empty.
pub const DEFAULT_PROXY_NAME: &str = "gateway-proxy";

/// A gateway's type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GatewayType<'a> {
    /// HTTP.
    Http(&'a HttpGateway),
    /// TCP.
    Tcp(&'a TcpGateway),
    /// Hybrid.
    Hybrid(&'a HybridGateway),
}

impl GatewaySpec {
    /// The `GatewayType` oneof (`None` if no type is set).
    pub fn gateway_type(&self) -> Result<Option<GatewayType<'_>>, OneofError> {
        OneofError::check(
            "GatewayType",
            &[
                ("httpGateway", self.http_gateway.is_some()),
                ("tcpGateway", self.tcp_gateway.is_some()),
                ("hybridGateway", self.hybrid_gateway.is_some()),
            ],
        )?;
        Ok(if let Some(g) = &self.http_gateway {
            Some(GatewayType::Http(g))
        } else if let Some(g) = &self.tcp_gateway {
            Some(GatewayType::Tcp(g))
        } else {
            self.hybrid_gateway.as_ref().map(GatewayType::Hybrid)
        })
    }

    /// The proxies this gateway belongs to (`proxyNames`, defaulting to `gateway-proxy`).
    pub fn proxy_names(&self) -> Vec<&str> {
        if self.proxy_names.is_empty() {
            vec![DEFAULT_PROXY_NAME]
        } else {
            self.proxy_names.iter().map(String::as_str).collect()
        }
    }
}

/// An HTTP gateway: which virtual services it serves and HTTP listener options
/// (`gateway.solo.io.HttpGateway`). With no selection, it serves all virtual services.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpGateway {
    /// Serve exactly these virtual services.
    #[serde(
        alias = "virtual_services",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub virtual_services: Vec<ResourceRef>,
    /// Serve virtual services with all of these labels.
    #[serde(
        alias = "virtual_service_selector",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub virtual_service_selector: BTreeMap<String, String>,
    /// Serve virtual services matching these label expressions.
    #[serde(
        alias = "virtual_service_expressions",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub virtual_service_expressions: Option<VirtualServiceSelectorExpressions>,
    /// Only consider virtual services in these namespaces (`*` means all).
    #[serde(
        alias = "virtual_service_namespaces",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub virtual_service_namespaces: Vec<String>,
    /// HTTP listener options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<HttpListenerOptions>,
}

/// Label expressions selecting virtual services
/// (`gateway.solo.io.VirtualServiceSelectorExpressions`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualServiceSelectorExpressions {
    /// The expressions; all must match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expressions: Vec<SelectorExpression>,
}

/// A TCP gateway (`gateway.solo.io.TcpGateway`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpGateway {
    /// TCP hosts (filter chains), matched by SNI.
    #[serde(alias = "tcp_hosts", default, skip_serializing_if = "Vec::is_empty")]
    pub tcp_hosts: Vec<TcpHost>,
    /// TCP listener options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<TcpListenerOptions>,
}

/// A TCP host: a filter chain forwarding to a destination (`gloo.solo.io.TcpHost`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpHost {
    /// Name of the host (used in stats).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// TLS settings (SNI domains to match, termination secret).
    #[serde(alias = "ssl_config", default, skip_serializing_if = "Option::is_none")]
    pub ssl_config: Option<SslConfig>,
    /// Where to forward connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<TcpAction>,
}

/// Where a TCP host forwards connections (`TcpHost.TcpAction`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpAction {
    /// `destination` oneof: one destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub single: Option<Destination>,
    /// `destination` oneof: weighted destinations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi: Option<MultiDestination>,
    /// `destination` oneof: an upstream group.
    #[serde(
        alias = "upstream_group",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub upstream_group: Option<ResourceRef>,
    /// `destination` oneof: forward to the cluster named by the SNI.
    #[serde(
        alias = "forward_sni_cluster_name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub forward_sni_cluster_name: Option<Empty>,
}

/// A TCP action's destination.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TcpDestination<'a> {
    /// One destination.
    Single(&'a Destination),
    /// Weighted destinations.
    Multi(&'a MultiDestination),
    /// An upstream group.
    UpstreamGroup(&'a ResourceRef),
    /// The cluster named by the SNI.
    ForwardSniClusterName,
}

impl TcpAction {
    /// The `destination` oneof.
    pub fn destination(&self) -> Result<Option<TcpDestination<'_>>, OneofError> {
        OneofError::check(
            "destination",
            &[
                ("single", self.single.is_some()),
                ("multi", self.multi.is_some()),
                ("upstreamGroup", self.upstream_group.is_some()),
                (
                    "forwardSniClusterName",
                    self.forward_sni_cluster_name.is_some(),
                ),
            ],
        )?;
        Ok(if let Some(d) = &self.single {
            Some(TcpDestination::Single(d))
        } else if let Some(d) = &self.multi {
            Some(TcpDestination::Multi(d))
        } else if let Some(d) = &self.upstream_group {
            Some(TcpDestination::UpstreamGroup(d))
        } else if self.forward_sni_cluster_name.is_some() {
            Some(TcpDestination::ForwardSniClusterName)
        } else {
            None
        })
    }
}

/// `google.protobuf.Empty`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// A gateway with several filter chains, each selected by a matcher
/// (`gateway.solo.io.HybridGateway`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HybridGateway {
    /// Inline matched HTTP/TCP gateways.
    #[serde(
        alias = "matched_gateways",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub matched_gateways: Vec<MatchedGateway>,
    /// `MatchableHttpGateway` resources to include.
    #[serde(
        alias = "delegated_http_gateways",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub delegated_http_gateways: Option<DelegatedHttpGateway>,
    /// `MatchableTcpGateway` resources to include.
    #[serde(
        alias = "delegated_tcp_gateways",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub delegated_tcp_gateways: Option<DelegatedTcpGateway>,
}

/// An HTTP or TCP gateway with a filter chain matcher (`gateway.solo.io.MatchedGateway`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MatchedGateway {
    /// Which connections this filter chain handles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matcher: Option<GatewayMatcher>,
    /// `GatewayType` oneof: an HTTP gateway.
    #[serde(
        alias = "http_gateway",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub http_gateway: Option<HttpGateway>,
    /// `GatewayType` oneof: a TCP gateway.
    #[serde(
        alias = "tcp_gateway",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub tcp_gateway: Option<TcpGateway>,
}

/// A matched gateway's type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MatchedGatewayType<'a> {
    /// HTTP.
    Http(&'a HttpGateway),
    /// TCP.
    Tcp(&'a TcpGateway),
}

impl MatchedGateway {
    /// The `GatewayType` oneof.
    pub fn gateway_type(&self) -> Result<Option<MatchedGatewayType<'_>>, OneofError> {
        OneofError::check(
            "GatewayType",
            &[
                ("httpGateway", self.http_gateway.is_some()),
                ("tcpGateway", self.tcp_gateway.is_some()),
            ],
        )?;
        Ok(if let Some(g) = &self.http_gateway {
            Some(MatchedGatewayType::Http(g))
        } else {
            self.tcp_gateway.as_ref().map(MatchedGatewayType::Tcp)
        })
    }
}

/// Filter chain match of a matched gateway (`gateway.solo.io.Matcher`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayMatcher {
    /// TLS settings; its `sniDomains` are matched.
    #[serde(alias = "ssl_config", default, skip_serializing_if = "Option::is_none")]
    pub ssl_config: Option<SslConfig>,
    /// Source IP ranges to match.
    #[serde(
        alias = "source_prefix_ranges",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub source_prefix_ranges: Vec<CidrRange>,
    /// TLS cipher suites to match (passthrough only).
    #[serde(
        alias = "passthrough_cipher_suites",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub passthrough_cipher_suites: Vec<String>,
}

/// An IP range (`solo.io.envoy.config.core.v3.CidrRange`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CidrRange {
    /// IPv4 or IPv6 address prefix.
    #[serde(alias = "address_prefix", default)]
    pub address_prefix: String,
    /// Prefix length.
    #[serde(alias = "prefix_len", default, skip_serializing_if = "Option::is_none")]
    pub prefix_len: Option<u32>,
}

/// Selects `MatchableHttpGateway` resources (`gateway.solo.io.DelegatedHttpGateway`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DelegatedHttpGateway {
    /// `selection_type` oneof: one gateway.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub ref_: Option<ResourceRef>,
    /// `selection_type` oneof: gateways selected by labels/namespaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<Selector>,
    /// Children may not override the settings below.
    #[serde(
        alias = "prevent_child_overrides",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub prevent_child_overrides: bool,
    /// Connection manager settings inherited by the selected gateways.
    #[serde(
        alias = "http_connection_manager_settings",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub http_connection_manager_settings: Option<HttpConnectionManagerSettings>,
    /// TLS settings inherited by the selected gateways.
    #[serde(alias = "ssl_config", default, skip_serializing_if = "Option::is_none")]
    pub ssl_config: Option<SslConfig>,
}

/// Selects `MatchableTcpGateway` resources (`gateway.solo.io.DelegatedTcpGateway`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DelegatedTcpGateway {
    /// `selection_type` oneof: one gateway.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub ref_: Option<ResourceRef>,
    /// `selection_type` oneof: gateways selected by labels/namespaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<Selector>,
}

/// A resource selector by namespaces and labels or label expressions
/// (`selectors.core.gloo.solo.io.Selector`; the same shape as a route table selector).
pub type Selector = RouteTableSelector;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::routing::{DestinationTarget, ExpressionOperator};

    fn spec(doc: &str) -> GatewaySpec {
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(doc).unwrap();
        serde_yaml_ng::from_value(v["spec"].clone()).unwrap()
    }

    fn round_trip(s: &GatewaySpec) {
        let json = serde_json::to_string(s).unwrap();
        let back: GatewaySpec = serde_json::from_str(&json).unwrap();
        assert_eq!(s, &back);
    }

    // docs/content/guides/traffic_management/request_processing/health_checks/_index.md
    const SSL_GATEWAY: &str = r#"
apiVersion: gateway.solo.io/v1
kind: Gateway
metadata:
  labels:
    app: gloo
  name: gateway-proxy-ssl
  namespace: gloo-system
spec:
  bindAddress: '::'
  bindPort: 8443
  httpGateway:
    options:
      healthCheck:
        path: /any-path-you-want
  proxyNames:
  - gateway-proxy
  ssl: true
  useProxyProto: false
"#;

    #[test]
    fn parses_ssl_http_gateway_and_round_trips() {
        let gw = spec(SSL_GATEWAY);
        assert!(gw.ssl);
        assert_eq!(gw.bind_address, "::");
        assert_eq!(gw.bind_port, 8443);
        assert_eq!(gw.use_proxy_proto, Some(false));
        assert_eq!(gw.proxy_names(), vec!["gateway-proxy"]);
        match gw.gateway_type().unwrap() {
            Some(GatewayType::Http(http)) => {
                let hc = http
                    .options
                    .as_ref()
                    .unwrap()
                    .health_check
                    .as_ref()
                    .unwrap();
                assert_eq!(hc.path, "/any-path-you-want");
            }
            other => panic!("expected an HTTP gateway, got {other:?}"),
        }
        round_trip(&gw);
    }

    // docs/content/guides/traffic_management/listener_configuration/http_connection_manager/_index.md
    const HCM_GATEWAY: &str = r#"
apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: # collapsed for brevity
spec:
  bindAddress: '::'
  bindPort: 8080
  httpGateway:
    options:
      httpConnectionManagerSettings:
        tracing:
          verbose: true
          requestHeadersForTags:
            - path
            - origin
          zipkinConfig:
            collectorEndpoint: /api/v2/spans
            collectorEndpointVersion: HTTP_JSON
            clusterName: zipkin
status: # collapsed for brevity
"#;

    #[test]
    fn parses_http_gateway_with_hcm_options() {
        let gw = spec(HCM_GATEWAY);
        let http = gw.http_gateway.as_ref().unwrap();
        let hcm = http
            .options
            .as_ref()
            .unwrap()
            .http_connection_manager_settings
            .as_ref()
            .unwrap();
        assert_eq!(
            hcm.tracing
                .as_ref()
                .and_then(|t| t.zipkin_config.as_ref())
                .and_then(|z| z.cluster_name.as_deref()),
            Some("zipkin")
        );
        assert!(!gw.ssl);
        assert_eq!(gw.proxy_names(), vec![DEFAULT_PROXY_NAME]);
        round_trip(&gw);
    }

    // docs/content/guides/traffic_management/listener_configuration/hybrid_gateway.md
    const HYBRID_GATEWAY: &str = r#"
apiVersion: gateway.solo.io/v1
kind: Gateway
metadata:
  name: gateway-proxy-ssl
  namespace: gloo-system
spec:
  bindAddress: '::'
  bindPort: 8443
  options:
    accessLoggingService:
      accessLog:
      - fileSink:
          path: /dev/shm/access_log.txt
          stringFormat: >
            [%START_TIME%] %REQUESTED_SERVER_NAME% %FILTER_STATE(io.solo.cipher_detection_info)%
  hybridGateway:
    matchedGateways:
    - tcpGateway:
        options:
          tcpProxySettings:
            accessLogFlushInterval: 2s
        tcpHosts:
        - destination:
            single:
              upstream:
                name: default-my-nginx-443
                namespace: gloo-system
          name: one
      matcher:
        passthroughCipherSuites:
        - ECDHE-RSA-AES256-SHA384
        - ECDHE-RSA-AES128-SHA256
        - AES256-SHA256
        - AES128-SHA256
        sslConfig:
          sniDomains:
          - nginx.example.com
  proxyNames:
  - gateway-proxy
  useProxyProto: false
"#;

    #[test]
    fn parses_hybrid_gateway() {
        let gw = spec(HYBRID_GATEWAY);
        let Some(GatewayType::Hybrid(hybrid)) = gw.gateway_type().unwrap() else {
            panic!("expected a hybrid gateway");
        };
        let matched = &hybrid.matched_gateways[0];
        let matcher = matched.matcher.as_ref().unwrap();
        assert_eq!(matcher.passthrough_cipher_suites.len(), 4);
        assert_eq!(
            matcher.ssl_config.as_ref().unwrap().sni_domains,
            vec!["nginx.example.com"]
        );
        let Some(MatchedGatewayType::Tcp(tcp)) = matched.gateway_type().unwrap() else {
            panic!("expected a TCP gateway");
        };
        let host = &tcp.tcp_hosts[0];
        assert_eq!(host.name, "one");
        let Some(TcpDestination::Single(dest)) =
            host.destination.as_ref().unwrap().destination().unwrap()
        else {
            panic!("expected a single destination");
        };
        assert_eq!(
            dest.target().unwrap(),
            Some(DestinationTarget::Upstream(&ResourceRef::new(
                "gloo-system",
                "default-my-nginx-443"
            )))
        );
        round_trip(&gw);
    }

    // docs/content/guides/traffic_management/listener_configuration/hybrid_gateway.md
    // (delegatedTcpGateways) and http_gateway.proto's virtualServiceExpressions.
    #[test]
    fn parses_delegated_gateways_and_expressions() {
        let gw: GatewaySpec = serde_yaml_ng::from_str(
            r#"
bindAddress: '::'
bindPort: 8443
hybridGateway:
  delegatedTcpGateways:
    selector:
      labels:
        protocol: tcp
        tls: passthrough
  delegatedHttpGateways:
    ref:
      name: http-gw
    preventChildOverrides: true
    httpConnectionManagerSettings:
      useRemoteAddress: true
"#,
        )
        .unwrap();
        let hybrid = gw.hybrid_gateway.as_ref().unwrap();
        let tcp = hybrid.delegated_tcp_gateways.as_ref().unwrap();
        assert_eq!(tcp.selector.as_ref().unwrap().labels["tls"], "passthrough");
        let http = hybrid.delegated_http_gateways.as_ref().unwrap();
        assert!(http.prevent_child_overrides);
        assert_eq!(http.ref_.as_ref().unwrap().name, "http-gw");
        round_trip(&gw);

        let http: HttpGateway = serde_yaml_ng::from_str(
            "virtualServiceExpressions:\n  expressions:\n  - key: team\n    operator: In\n    values: [a, b]\nvirtualServiceNamespaces: ['*']",
        )
        .unwrap();
        let e = &http
            .virtual_service_expressions
            .as_ref()
            .unwrap()
            .expressions[0];
        assert_eq!(e.operator, ExpressionOperator::In);
        assert_eq!(http.virtual_service_namespaces, vec!["*"]);
    }

    #[test]
    fn two_gateway_types_is_an_error() {
        let gw: GatewaySpec = serde_yaml_ng::from_str("httpGateway: {}\ntcpGateway: {}").unwrap();
        let err = gw.gateway_type().unwrap_err();
        assert_eq!(
            err.to_string(),
            "only one of httpGateway, tcpGateway may be set, found both (oneof `GatewayType`)"
        );
    }

    #[test]
    fn unknown_field_is_rejected() {
        let err =
            serde_yaml_ng::from_str::<GatewaySpec>("bindPort: 80\nbindAddr: '::'").unwrap_err();
        assert!(err.to_string().contains("bindAddr"), "{err}");
    }
}
