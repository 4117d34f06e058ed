//! The dynamic forward proxy of an HTTP listener: Gloo's
//! `options/dynamic_forward_proxy/dynamic_forward_proxy.proto` (`dfp.options.gloo.solo.io`),
//! set as a Gateway's `httpGateway.options.dynamicForwardProxy`, and the addresses of
//! `external/envoy/config/core/v3/address.proto` (`solo.io.envoy.config.core.v3`) its DNS
//! cache reads.
//!
//! Routes whose `routeAction` is `dynamicForwardProxy` (see
//! [`crate::model::routing::DynamicForwardProxyRoute`]) send each request to the host it
//! names, resolved through the listener's DNS cache.
//!
//! ```
//! use gloo_core::model::dynamic_forward_proxy::{DnsLookupFamily, DynamicForwardProxyFilterConfig};
//! use gloo_core::model::Duration;
//!
//! let config: DynamicForwardProxyFilterConfig = serde_yaml_ng::from_str(
//!     "
//! dnsCacheConfig:
//!   dnsLookupFamily: V4_ONLY
//!   hostTtl: 86400s
//! circuitBreakers:
//!   maxConnections: 40000
//! ",
//! )
//! .unwrap();
//! let cache = config.dns_cache_config.as_ref().unwrap();
//! assert_eq!(cache.dns_lookup_family, Some(DnsLookupFamily::V4Only));
//! assert_eq!(cache.host_ttl, Some(Duration::from_secs(86400)));
//! assert!(config.problems("dynamicForwardProxy").is_empty());
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::cluster::CircuitBreakerConfig;
use crate::model::routing::OneofError;
use crate::model::ssl::UpstreamSslConfig;
use crate::model::Duration;

/// The dynamic forward proxy filter of an HTTP listener (`dfp.options.gloo.solo.io.FilterConfig`).
/// Gloo generates one cluster per distinct config for the routes that forward dynamically.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DynamicForwardProxyFilterConfig {
    /// The DNS cache shared by the filter and its generated cluster (Envoy's defaults when
    /// unset, as in Gloo's docs, which enable the proxy with `dynamicForwardProxy: {}`).
    #[serde(
        alias = "dns_cache_config",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dns_cache_config: Option<DnsCacheConfig>,
    /// Save the upstream address in the filter state (`envoy.stream.upstream_address`).
    #[serde(
        alias = "save_upstream_address",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub save_upstream_address: Option<bool>,
    /// TLS towards the dynamically resolved hosts, as an Upstream's `sslConfig`.
    #[serde(alias = "ssl_config", default, skip_serializing_if = "Option::is_none")]
    pub ssl_config: Option<UpstreamSslConfig>,
    /// Circuit breakers of the generated cluster (Settings' `gloo.circuitBreakers` when unset).
    #[serde(
        alias = "circuit_breakers",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub circuit_breakers: Option<CircuitBreakerConfig>,
}

/// The DNS cache of the dynamic forward proxy (`dfp.options.gloo.solo.io.DnsCacheConfig`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DnsCacheConfig {
    /// Which address families hosts resolve to (default `V4_PREFERRED`).
    #[serde(
        alias = "dns_lookup_family",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dns_lookup_family: Option<DnsLookupFamily>,
    /// How often cached hosts are resolved again (Envoy's default 60s; at least 1ms).
    #[serde(
        alias = "dns_refresh_rate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dns_refresh_rate: Option<Duration>,
    /// How long an unused host stays in the cache (Envoy's default 5m; more than 0).
    #[serde(alias = "host_ttl", default, skip_serializing_if = "Option::is_none")]
    pub host_ttl: Option<Duration>,
    /// How many hosts the cache holds (Envoy's default 1024; more than 0).
    #[serde(alias = "max_hosts", default, skip_serializing_if = "Option::is_none")]
    pub max_hosts: Option<u32>,
    /// How often a failed resolution is retried (backing off from the base interval).
    #[serde(
        alias = "dns_failure_refresh_rate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dns_failure_refresh_rate: Option<RefreshRate>,
    /// Limits on the requests waiting for a resolution.
    #[serde(
        alias = "dns_cache_circuit_breaker",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dns_cache_circuit_breaker: Option<DnsCacheCircuitBreakers>,
    /// `DnsCacheType` oneof: the c-ares resolver with these options.
    #[serde(alias = "cares_dns", default, skip_serializing_if = "Option::is_none")]
    pub cares_dns: Option<CaresDnsResolverConfig>,
    /// `DnsCacheType` oneof: Apple's resolver (Apple platforms only).
    #[serde(alias = "apple_dns", default, skip_serializing_if = "Option::is_none")]
    pub apple_dns: Option<AppleDnsResolverConfig>,
    /// Hosts resolved when the cache starts (each a hostname and port).
    #[serde(
        alias = "preresolve_hostnames",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub preresolve_hostnames: Vec<SocketAddress>,
    /// How long one DNS query may take (more than 0).
    #[serde(
        alias = "dns_query_timeout",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dns_query_timeout: Option<Duration>,
}

/// Which address families the DNS cache resolves hosts to (`dfp.options.gloo.solo.io.DnsLookupFamily`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum DnsLookupFamily {
    /// IPv4 if there is one, IPv6 otherwise (Gloo's default).
    #[default]
    #[serde(rename = "V4_PREFERRED")]
    V4Preferred,
    /// IPv4 only.
    #[serde(rename = "V4_ONLY")]
    V4Only,
    /// IPv6 only.
    #[serde(rename = "V6_ONLY")]
    V6Only,
    /// IPv6 if there is one, IPv4 otherwise.
    #[serde(rename = "AUTO")]
    Auto,
    /// Both families.
    #[serde(rename = "ALL")]
    All,
}

/// A retry interval that backs off (`dfp.options.gloo.solo.io.RefreshRate`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshRate {
    /// The first interval (required, more than 1ms).
    #[serde(
        alias = "base_interval",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub base_interval: Option<Duration>,
    /// The longest interval (more than 1ms; Envoy's default ten times the base).
    #[serde(
        alias = "max_interval",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_interval: Option<Duration>,
}

/// Limits of the DNS cache (`dfp.options.gloo.solo.io.DnsCacheCircuitBreakers`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DnsCacheCircuitBreakers {
    /// Requests that may wait for a resolution (Envoy's default 1024).
    #[serde(
        alias = "max_pending_requests",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_pending_requests: Option<u32>,
}

/// The c-ares DNS resolver (`dfp.options.gloo.solo.io.CaresDnsResolverConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CaresDnsResolverConfig {
    /// The name servers to ask (at least one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolvers: Vec<Address>,
    /// Resolver options.
    #[serde(
        alias = "dns_resolver_options",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dns_resolver_options: Option<DnsResolverOptions>,
}

/// Options of a DNS resolver (`dfp.options.gloo.solo.io.DnsResolverOptions`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DnsResolverOptions {
    /// Query over TCP rather than UDP.
    #[serde(
        alias = "use_tcp_for_dns_lookups",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub use_tcp_for_dns_lookups: Option<bool>,
    /// Do not append the system's search domains.
    #[serde(
        alias = "no_default_search_domain",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub no_default_search_domain: Option<bool>,
}

/// Apple's DNS resolver (`dfp.options.gloo.solo.io.AppleDnsResolverConfig`, no fields).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppleDnsResolverConfig {}

/// The `DnsCacheType` oneof of [`DnsCacheConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsCacheType<'a> {
    /// The c-ares resolver.
    Cares(&'a CaresDnsResolverConfig),
    /// Apple's resolver.
    Apple(&'a AppleDnsResolverConfig),
}

/// An address (`solo.io.envoy.config.core.v3.Address`): a socket address or a pipe.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Address {
    /// `address` oneof: a socket address.
    #[serde(
        alias = "socket_address",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub socket_address: Option<SocketAddress>,
    /// `address` oneof: a Unix domain socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipe: Option<Pipe>,
}

/// A socket address (`solo.io.envoy.config.core.v3.SocketAddress`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SocketAddress {
    /// TCP (the default) or UDP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<SocketProtocol>,
    /// The address or hostname (required).
    #[serde(default)]
    pub address: String,
    /// `port_specifier` oneof: the port (at most 65535).
    #[serde(alias = "port_value", default, skip_serializing_if = "Option::is_none")]
    pub port_value: Option<u32>,
    /// `port_specifier` oneof: a named port.
    #[serde(alias = "named_port", default, skip_serializing_if = "Option::is_none")]
    pub named_port: Option<String>,
    /// The resolver that resolves `address` (Envoy's default when empty).
    #[serde(
        alias = "resolver_name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub resolver_name: Option<String>,
    /// Accept IPv4 connections on an IPv6 socket.
    #[serde(
        alias = "ipv4_compat",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv4_compat: Option<bool>,
}

/// A socket address's protocol (`SocketAddress.Protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum SocketProtocol {
    /// TCP.
    #[default]
    #[serde(rename = "TCP")]
    Tcp,
    /// UDP.
    #[serde(rename = "UDP")]
    Udp,
}

/// A Unix domain socket (`solo.io.envoy.config.core.v3.Pipe`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pipe {
    /// The socket's path (required).
    #[serde(default)]
    pub path: String,
    /// The socket's file mode (at most 0777).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

/// 1ms, the bound of Gloo's (and Envoy's) refresh rate rules.
const ONE_MS: Duration = Duration::from_millis(1);

impl DynamicForwardProxyFilterConfig {
    /// What Gloo's proto rules refuse, each message starting with the path of the field (under
    /// `path`, the config's own path).
    ///
    /// ```
    /// use gloo_core::model::dynamic_forward_proxy::DynamicForwardProxyFilterConfig;
    /// let config: DynamicForwardProxyFilterConfig =
    ///     serde_json::from_str(r#"{"dnsCacheConfig": {"maxHosts": 0}}"#).unwrap();
    /// assert_eq!(
    ///     config.problems("dynamicForwardProxy"),
    ///     ["dynamicForwardProxy.dnsCacheConfig.maxHosts: must be more than 0"]
    /// );
    /// ```
    pub fn problems(&self, path: impl fmt::Display) -> Vec<String> {
        match &self.dns_cache_config {
            Some(cache) => cache.problems(format_args!("{path}.dnsCacheConfig")),
            None => Vec::new(),
        }
    }

    /// The DNS cache: the one set, or Envoy's defaults.
    pub fn dns_cache(&self) -> std::borrow::Cow<'_, DnsCacheConfig> {
        match &self.dns_cache_config {
            Some(cache) => std::borrow::Cow::Borrowed(cache),
            None => std::borrow::Cow::Owned(DnsCacheConfig::default()),
        }
    }
}

impl DnsCacheConfig {
    /// The `DnsCacheType` oneof: at most one of `caresDns` and `appleDns`.
    pub fn dns_cache_type(&self) -> Result<Option<DnsCacheType<'_>>, OneofError> {
        OneofError::check(
            "DnsCacheType",
            &[
                ("caresDns", self.cares_dns.is_some()),
                ("appleDns", self.apple_dns.is_some()),
            ],
        )?;
        Ok(match (&self.cares_dns, &self.apple_dns) {
            (Some(cares), _) => Some(DnsCacheType::Cares(cares)),
            (None, Some(apple)) => Some(DnsCacheType::Apple(apple)),
            (None, None) => None,
        })
    }

    /// What Gloo's proto rules refuse, each message starting with the path of the field (under
    /// `path`, the cache config's own path).
    pub fn problems(&self, path: impl fmt::Display) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(rate) = self.dns_refresh_rate.filter(|r| *r < ONE_MS) {
            problems.push(format!(
                "{path}.dnsRefreshRate: {rate} is shorter than 1ms (the least Gloo and Envoy take)"
            ));
        }
        for (name, value) in [
            ("hostTtl", self.host_ttl),
            ("dnsQueryTimeout", self.dns_query_timeout),
        ] {
            if let Some(d) = value.filter(|d| *d <= Duration::default()) {
                problems.push(format!("{path}.{name}: {d} must be more than 0"));
            }
        }
        if self.max_hosts == Some(0) {
            problems.push(format!("{path}.maxHosts: must be more than 0"));
        }
        if let Some(rate) = &self.dns_failure_refresh_rate {
            let at = format!("{path}.dnsFailureRefreshRate");
            match rate.base_interval {
                None => problems.push(format!("{at}.baseInterval: required")),
                Some(base) if base <= ONE_MS => {
                    problems.push(format!("{at}.baseInterval: {base} must be more than 1ms"))
                }
                Some(_) => {}
            }
            if let Some(max) = rate.max_interval.filter(|m| *m <= ONE_MS) {
                problems.push(format!("{at}.maxInterval: {max} must be more than 1ms"));
            }
        }
        match self.dns_cache_type() {
            Err(e) => problems.push(format!("{path}: {e}")),
            Ok(Some(DnsCacheType::Cares(cares))) => {
                if cares.resolvers.is_empty() {
                    problems.push(format!(
                        "{path}.caresDns.resolvers: at least one resolver is required"
                    ));
                }
                for (i, address) in cares.resolvers.iter().enumerate() {
                    problems
                        .extend(address.problems(format_args!("{path}.caresDns.resolvers[{i}]")));
                }
            }
            Ok(_) => {}
        }
        for (i, address) in self.preresolve_hostnames.iter().enumerate() {
            problems.extend(address.problems(format_args!("{path}.preresolveHostnames[{i}]")));
        }
        problems
    }
}

impl Address {
    /// The `address` oneof, which Gloo requires: exactly one of `socketAddress` and `pipe`;
    /// and what is refused in the one set. Each message starts with the path of the field
    /// (under `path`, the address's own path).
    pub fn problems(&self, path: impl fmt::Display) -> Vec<String> {
        match (&self.socket_address, &self.pipe) {
            (Some(_), Some(_)) => vec![format!(
                "{path}: {}",
                OneofError {
                    oneof: "address",
                    set: vec!["socketAddress", "pipe"],
                }
            )],
            (None, None) => vec![format!("{path}: set one of socketAddress, pipe")],
            (Some(socket), None) => socket.problems(format_args!("{path}.socketAddress")),
            (None, Some(pipe)) => {
                let mut problems = Vec::new();
                if pipe.path.is_empty() {
                    problems.push(format!("{path}.pipe.path: required"));
                }
                if let Some(mode) = pipe.mode.filter(|m| *m > 0o777) {
                    problems.push(format!("{path}.pipe.mode: {mode} is more than 511 (0777)"));
                }
                problems
            }
        }
    }
}

impl SocketAddress {
    /// What Gloo's proto rules refuse: no address, no port (or both a port and a named
    /// port), a port above 65535. Each message starts with the path of the field (under
    /// `path`, the address's own path).
    pub fn problems(&self, path: impl fmt::Display) -> Vec<String> {
        let mut problems = Vec::new();
        if self.address.is_empty() {
            problems.push(format!("{path}.address: required"));
        }
        match (self.port_value, &self.named_port) {
            (Some(_), Some(_)) => problems.push(format!(
                "{path}: {}",
                OneofError {
                    oneof: "port_specifier",
                    set: vec!["portValue", "namedPort"],
                }
            )),
            (None, None) => problems.push(format!("{path}.portValue: required (or namedPort)")),
            (Some(port), None) if port > 65_535 => {
                problems.push(format!("{path}.portValue: {port} is not a port (0-65535)"))
            }
            _ => {}
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_field_and_round_trips() {
        let yaml = "
dnsCacheConfig:
  dnsLookupFamily: ALL
  dnsRefreshRate: 30s
  hostTtl: 600s
  maxHosts: 100
  dnsFailureRefreshRate: {baseInterval: 2s, maxInterval: 20s}
  dnsCacheCircuitBreaker: {maxPendingRequests: 7}
  caresDns:
    resolvers:
    - socketAddress: {address: 8.8.8.8, portValue: 53}
    - pipe: {path: /run/dns.sock, mode: 384}
    dnsResolverOptions: {useTcpForDnsLookups: true, noDefaultSearchDomain: true}
  preresolveHostnames:
  - {address: example.com, portValue: 443, protocol: TCP}
  dnsQueryTimeout: 5s
saveUpstreamAddress: true
sslConfig: {sni: example.com}
circuitBreakers: {maxConnections: 10}
";
        let config: DynamicForwardProxyFilterConfig = serde_yaml_ng::from_str(yaml).unwrap();
        assert!(config.problems("").is_empty(), "{:?}", config.problems(""));
        let cache = config.dns_cache_config.as_ref().unwrap();
        assert_eq!(cache.dns_lookup_family, Some(DnsLookupFamily::All));
        assert_eq!(cache.max_hosts, Some(100));
        assert!(matches!(
            cache.dns_cache_type(),
            Ok(Some(DnsCacheType::Cares(c))) if c.resolvers.len() == 2
        ));
        assert_eq!(cache.preresolve_hostnames[0].port_value, Some(443));
        let json = serde_json::to_string(&config).unwrap();
        let back: DynamicForwardProxyFilterConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, config);
        // snake_case names too, as Gloo's JSON reader takes them.
        let snake: DnsCacheConfig =
            serde_json::from_str(r#"{"dns_lookup_family": "V6_ONLY", "host_ttl": "1s"}"#).unwrap();
        assert_eq!(snake.dns_lookup_family, Some(DnsLookupFamily::V6Only));
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<DynamicForwardProxyFilterConfig>(
            r#"{"dnsCacheConfig": {"hostTTL": "1s"}}"#
        )
        .is_err());
        assert!(serde_json::from_str::<DnsCacheConfig>(r#"{"appleDns": {"x": 1}}"#).is_err());
    }

    #[test]
    fn problems_name_each_field() {
        let cache: DnsCacheConfig = serde_json::from_str(
            r#"{
                "dnsRefreshRate": "0.0005s", "hostTtl": "0s", "maxHosts": 0,
                "dnsFailureRefreshRate": {"maxInterval": "0.001s"},
                "caresDns": {"resolvers": []}, "appleDns": {},
                "preresolveHostnames": [{"address": "", "portValue": 70000}],
                "dnsQueryTimeout": "0s"
            }"#,
        )
        .unwrap();
        let problems = cache.problems("c");
        for expected in [
            "c.dnsRefreshRate: 0.000500s is shorter than 1ms",
            "c.hostTtl: 0s must be more than 0",
            "c.dnsQueryTimeout: 0s must be more than 0",
            "c.maxHosts: must be more than 0",
            "c.dnsFailureRefreshRate.baseInterval: required",
            "c.dnsFailureRefreshRate.maxInterval: 0.001s must be more than 1ms",
            "c: only one of caresDns, appleDns may be set",
            "c.preresolveHostnames[0].address: required",
            "c.preresolveHostnames[0].portValue: 70000 is not a port",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(expected)),
                "{expected}: {problems:#?}"
            );
        }
        let cares: DnsCacheConfig = serde_json::from_str(
            r#"{"caresDns": {"resolvers": [{}, {"socketAddress": {"address": "1.1.1.1"}}]}}"#,
        )
        .unwrap();
        assert_eq!(
            cares.problems("c"),
            [
                "c.caresDns.resolvers[0]: set one of socketAddress, pipe",
                "c.caresDns.resolvers[1].socketAddress.portValue: required (or namedPort)",
            ]
        );
        let empty: DnsCacheConfig = serde_json::from_str(r#"{"caresDns": {}}"#).unwrap();
        assert_eq!(
            empty.problems("c"),
            ["c.caresDns.resolvers: at least one resolver is required"]
        );
        // A base interval of exactly 1ms is refused (more than 1ms), a refresh rate of 1ms not.
        let edge: DnsCacheConfig = serde_json::from_str(
            r#"{"dnsRefreshRate": "0.001s", "dnsFailureRefreshRate": {"baseInterval": "0.001s"}}"#,
        )
        .unwrap();
        assert_eq!(
            edge.problems("c"),
            ["c.dnsFailureRefreshRate.baseInterval: 0.001s must be more than 1ms"]
        );
    }
}
