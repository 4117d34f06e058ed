//! Routing with Envoy's semantics, compiled from a `RouteConfiguration`.
//!
//! A [`RouteTable`] picks the virtual host by the request's authority (exact domains, then the
//! longest suffix wildcard `*.example.com`, then the longest prefix wildcard `example.*`, then
//! `*`), and within it the first route, in list order, whose matcher matches. Routes are
//! indexed by the literal their paths must start with, so a request only evaluates the routes
//! that can match it: a table of a thousand routes costs about what a table of one does.
//!
//! ```
//! use envoy_types::pb::envoy::config::route::v3::{
//!     route, route_action, route_match, Route, RouteAction, RouteConfiguration, RouteMatch,
//!     VirtualHost,
//! };
//! use gloo_proxy::router::{matcher::RequestView, RouteTable};
//!
//! let config = RouteConfiguration {
//!     name: "http".into(),
//!     virtual_hosts: vec![VirtualHost {
//!         name: "pets".into(),
//!         domains: vec!["*".into()],
//!         routes: vec![Route {
//!             r#match: Some(RouteMatch {
//!                 path_specifier: Some(route_match::PathSpecifier::Prefix("/pets".into())),
//!                 ..Default::default()
//!             }),
//!             action: Some(route::Action::Route(RouteAction {
//!                 cluster_specifier: Some(route_action::ClusterSpecifier::Cluster("petstore".into())),
//!                 ..Default::default()
//!             })),
//!             ..Default::default()
//!         }],
//!         ..Default::default()
//!     }],
//!     ..Default::default()
//! };
//! let table = RouteTable::compile(&config).unwrap();
//! let headers = http::HeaderMap::new();
//! let req = RequestView { method: "GET", authority: "shop.example", path: "/pets/1", scheme: "http", headers: &headers };
//! let (vhost, route) = table.route(&req).unwrap();
//! assert_eq!(vhost.name(), "pets");
//! assert!(route.is_some());
//! ```

pub mod action;
pub mod hash;
pub mod matcher;

use std::collections::HashMap;

use envoy_types::pb::envoy::config::route::v3::{
    route::Action as PbAction, Route as PbRoute, RouteConfiguration, VirtualHost as PbVirtualHost,
};
use envoy_types::pb::google::protobuf::Any;

use action::{Action, Direct, Forward, HeaderOps, Redirect, RetryPolicy};
use matcher::{RequestView, RouteMatcher};

/// A route table that cannot be compiled: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct RouterError {
    /// The field path, e.g. `virtual_hosts[0].routes[2].match.headers[1]`.
    pub at: String,
    /// What is wrong.
    pub message: String,
}

impl RouterError {
    pub(crate) fn new(at: &str, message: impl Into<String>) -> Self {
        RouterError {
            at: at.to_string(),
            message: message.into(),
        }
    }
}

/// One compiled route.
#[derive(Debug)]
pub struct Route {
    name: String,
    matcher: RouteMatcher,
    action: Action,
    headers: HeaderOps,
    per_filter: HashMap<String, Any>,
    /// The route's `metadata.filter_metadata`, for the filters that read it (the rate limit
    /// `metadata` action with `source: ROUTE_ENTRY`).
    #[cfg(feature = "ratelimit")]
    metadata: Option<gloo_filters::metadata::RouteMetadata>,
    /// Header operators on any level a request on this route goes through (its weighted
    /// targets, the route, its virtual host, the table), settled when the table is compiled.
    formats: HeaderFormats,
    /// Its decorator's operation: the name of its requests' trace spans.
    decorator: Option<std::sync::Arc<str>>,
}

/// Which of a route's header mutations (on any level) have operators to render.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct HeaderFormats {
    /// An added request header's value.
    pub(crate) request: bool,
    /// An added response header's value.
    pub(crate) response: bool,
    /// An added response header's value reads the request (`%REQ(...)%`).
    pub(crate) response_reads_request: bool,
}

impl Route {
    /// Which of the header mutations a request on this route goes through have operators.
    pub(crate) fn header_formats(&self) -> HeaderFormats {
        self.formats
    }

    /// The route's metadata (`metadata.filter_metadata`), if it has any.
    #[cfg(feature = "ratelimit")]
    pub fn metadata(&self) -> Option<&gloo_filters::metadata::RouteMetadata> {
        self.metadata.as_ref()
    }

    /// The route's name (Gloo names routes `<vs-namespace>_<vs-name>-route-<index>`, or by
    /// their `name` field).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its decorator's operation (the name of its requests' trace spans), if it has one.
    pub fn decorator(&self) -> Option<&std::sync::Arc<str>> {
        self.decorator.as_ref()
    }

    /// What the route does.
    pub fn action(&self) -> &Action {
        &self.action
    }

    /// The route's header mutations.
    pub fn headers(&self) -> &HeaderOps {
        &self.headers
    }

    /// The route's per-filter configs (`typed_per_filter_config`), by filter name.
    pub fn per_filter(&self) -> &HashMap<String, Any> {
        &self.per_filter
    }

    /// How much of the path the route's prefix matcher consumed (for prefix rewrites).
    pub fn matched_prefix_len(&self) -> Option<usize> {
        self.matcher.matched_prefix_len()
    }

    fn compile(
        r: &PbRoute,
        vhost_retry: Option<&RetryPolicy>,
        at: &str,
    ) -> Result<Self, RouterError> {
        let m = r
            .r#match
            .as_ref()
            .ok_or_else(|| RouterError::new(at, "route without a match"))?;
        let matcher = RouteMatcher::compile(m, &format!("{at}.match"))?;
        let action = match &r.action {
            Some(PbAction::Route(a)) => Action::Forward(Box::new(Forward::compile(
                a,
                vhost_retry,
                &format!("{at}.route"),
            )?)),
            Some(PbAction::Redirect(d)) => {
                Action::Redirect(Redirect::compile(d, &format!("{at}.redirect"))?)
            }
            Some(PbAction::DirectResponse(d)) => {
                Action::Direct(Direct::compile(d, &format!("{at}.direct_response"))?)
            }
            Some(_) => {
                return Err(RouterError::new(
                    at,
                    "only route, redirect and direct_response actions are supported",
                ))
            }
            None => return Err(RouterError::new(at, "route without an action")),
        };
        let everything = |p: &Option<envoy_types::pb::envoy::r#type::v3::FractionalPercent>| {
            crate::builtin::per_million(p.as_ref()) >= 1_000_000
        };
        if r.tracing.as_ref().is_some_and(|t| {
            !(everything(&t.client_sampling)
                && everything(&t.random_sampling)
                && everything(&t.overall_sampling))
        }) {
            tracing::warn!(
                route = %r.name,
                "the route's tracing percentages are not applied: the connection manager's sample its requests"
            );
        }
        Ok(Route {
            name: r.name.clone(),
            matcher,
            action,
            headers: HeaderOps::compile(
                &r.request_headers_to_add,
                &r.request_headers_to_remove,
                &r.response_headers_to_add,
                &r.response_headers_to_remove,
                at,
            )?,
            per_filter: r.typed_per_filter_config.clone(),
            #[cfg(feature = "ratelimit")]
            metadata: route_metadata(r.metadata.as_ref()),
            formats: HeaderFormats::default(),
            decorator: r
                .decorator
                .as_ref()
                .filter(|d| !d.operation.is_empty())
                .map(|d| std::sync::Arc::from(d.operation.as_str())),
        })
    }
}

/// A route's `filter_metadata` as JSON, once per route configuration.
#[cfg(feature = "ratelimit")]
fn route_metadata(
    metadata: Option<&envoy_types::pb::envoy::config::core::v3::Metadata>,
) -> Option<gloo_filters::metadata::RouteMetadata> {
    let metadata = metadata.filter(|m| !m.filter_metadata.is_empty())?;
    let mut values = gloo_filters::metadata::DynamicMetadata::default();
    for (filter, fields) in &metadata.filter_metadata {
        for (key, value) in crate::config::struct_to_json(fields) {
            values.set(filter, &key, value);
        }
    }
    Some(gloo_filters::metadata::RouteMetadata::new(values))
}

/// Routes indexed by the literal their paths start with: for a request, only the routes whose
/// literal is a prefix of its path are evaluated (in list order).
#[derive(Debug, Default)]
struct PathIndex {
    by_literal: HashMap<Box<str>, Vec<u32>, foldhash::fast::RandomState>,
    /// The distinct literal lengths, ascending.
    lengths: Vec<usize>,
}

impl PathIndex {
    fn build(routes: &[Route]) -> Self {
        let mut by_literal: HashMap<Box<str>, Vec<u32>, _> = HashMap::default();
        for (i, r) in routes.iter().enumerate() {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            by_literal
                .entry(r.matcher.literal_prefix().into())
                .or_default()
                .push(index);
        }
        let mut lengths: Vec<usize> = by_literal.keys().map(|k| k.len()).collect();
        lengths.sort_unstable();
        lengths.dedup();
        PathIndex {
            by_literal,
            lengths,
        }
    }

    /// Calls `each` with the candidate lists for `path` (each ascending), shortest literal
    /// first.
    fn candidates<'a>(&'a self, path: &str, mut each: impl FnMut(&'a [u32])) {
        let bytes = path.as_bytes();
        for &len in &self.lengths {
            if len > bytes.len() {
                break;
            }
            let Some(key) = path.get(..len) else { continue };
            if let Some(list) = self.by_literal.get(key) {
                each(list);
            }
        }
    }
}

/// One compiled virtual host.
#[derive(Debug)]
pub struct VirtualHost {
    name: String,
    routes: Vec<Route>,
    index: PathIndex,
    headers: HeaderOps,
    per_filter: HashMap<String, Any>,
    rate_limits: Vec<envoy_types::pb::envoy::config::route::v3::RateLimit>,
}

impl VirtualHost {
    /// The virtual host's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The virtual host's header mutations.
    pub fn headers(&self) -> &HeaderOps {
        &self.headers
    }

    /// The virtual host's per-filter configs, by filter name.
    pub fn per_filter(&self) -> &HashMap<String, Any> {
        &self.per_filter
    }

    /// The routes, in order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The virtual host's `rate_limits`, as configured (Envoy's rate limit filter reads them).
    pub fn rate_limits(&self) -> &[envoy_types::pb::envoy::config::route::v3::RateLimit] {
        &self.rate_limits
    }

    fn compile(v: &PbVirtualHost, at: &str) -> Result<Self, RouterError> {
        let retry = v.retry_policy.as_ref().map(RetryPolicy::compile);
        let routes = v
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| Route::compile(r, retry.as_ref(), &format!("{at}.routes[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        // Collecting through `Result` grows the vector by doubling; the table lives long.
        let mut routes = routes;
        routes.shrink_to_fit();
        Ok(VirtualHost {
            name: v.name.clone(),
            index: PathIndex::build(&routes),
            routes,
            headers: HeaderOps::compile(
                &v.request_headers_to_add,
                &v.request_headers_to_remove,
                &v.response_headers_to_add,
                &v.response_headers_to_remove,
                at,
            )?,
            per_filter: v.typed_per_filter_config.clone(),
            rate_limits: v.rate_limits.clone(),
        })
    }

    /// The first route matching `req`, with its index.
    pub fn find(&self, req: &RequestView<'_>) -> Option<(usize, &Route)> {
        // Few literals are ever prefixes of one path: keep their lists on the stack.
        const INLINE: usize = 8;
        let mut inline: [&[u32]; INLINE] = [&[]; INLINE];
        let mut spill: Vec<&[u32]> = Vec::new();
        let mut count = 0;
        self.index.candidates(req.path, |list| {
            if count < INLINE {
                inline[count] = list;
            } else {
                spill.push(list);
            }
            count += 1;
        });
        let lists: &[&[u32]] = if count <= INLINE {
            &inline[..count]
        } else {
            spill.splice(0..0, inline.iter().copied());
            &spill
        };
        if let [only] = lists {
            return only.iter().find_map(|&i| {
                let route = &self.routes[i as usize];
                route.matcher.matches(req).then_some((i as usize, route))
            });
        }
        // A k-way merge of the ascending candidate lists: evaluate in list order.
        let mut cursors = [0usize; INLINE];
        let mut spill_cursors = vec![0usize; lists.len().saturating_sub(INLINE)];
        loop {
            let mut best: Option<(usize, u32)> = None;
            for (l, list) in lists.iter().enumerate() {
                let at = if l < INLINE {
                    cursors[l]
                } else {
                    spill_cursors[l - INLINE]
                };
                if let Some(&i) = list.get(at) {
                    if best.is_none_or(|(_, b)| i < b) {
                        best = Some((l, i));
                    }
                }
            }
            let (l, i) = best?;
            if l < INLINE {
                cursors[l] += 1;
            } else {
                spill_cursors[l - INLINE] += 1;
            }
            let route = &self.routes[i as usize];
            if route.matcher.matches(req) {
                return Some((i as usize, route));
            }
        }
    }
}

/// A compiled `RouteConfiguration`.
#[derive(Debug)]
pub struct RouteTable {
    name: String,
    virtual_hosts: Vec<VirtualHost>,
    /// Looked up on every request, so hashed with foldhash (see [`NameMap`](crate::config::NameMap)).
    exact: crate::config::NameMap<usize>,
    /// `*.example.com` as (".example.com", host index), longest first.
    suffixes: Vec<(String, usize)>,
    /// `example.*` as ("example.", host index), longest first.
    prefixes: Vec<(String, usize)>,
    default: Option<usize>,
    ignore_port: bool,
    headers: HeaderOps,
}

impl RouteTable {
    /// Compiles a route configuration; the error names the field at fault.
    pub fn compile(config: &RouteConfiguration) -> Result<Self, RouterError> {
        let at = format!("route configuration {:?}", config.name);
        let mut table = RouteTable::without_hosts(config, &at)?;
        for (i, v) in config.virtual_hosts.iter().enumerate() {
            table.add_virtual_host(v, i, &at)?;
        }
        Ok(table.finish())
    }

    /// Compiles an encoded `RouteConfiguration` one virtual host at a time, so only one
    /// virtual host's protos are decoded at once: a config of 10,000 routes decodes to some
    /// 23 MB of Envoy protos, which the allocator would otherwise keep after they are dropped.
    pub fn decode_and_compile(bytes: &[u8]) -> Result<Self, String> {
        use prost::Message;
        // The fields other than `virtual_hosts` (field 2), and where each virtual host is.
        let mut rest = Vec::new();
        let mut hosts = Vec::new();
        let mut buf = bytes;
        while !buf.is_empty() {
            let field_start = bytes.len() - buf.len();
            let (tag, wire_type) =
                prost::encoding::decode_key(&mut buf).map_err(|e| format!("cannot decode: {e}"))?;
            let skip = match wire_type {
                prost::encoding::WireType::Varint => {
                    prost::encoding::decode_varint(&mut buf)
                        .map_err(|e| format!("cannot decode: {e}"))?;
                    0
                }
                prost::encoding::WireType::SixtyFourBit => 8,
                prost::encoding::WireType::ThirtyTwoBit => 4,
                prost::encoding::WireType::LengthDelimited => {
                    let len = prost::encoding::decode_varint(&mut buf)
                        .map_err(|e| format!("cannot decode: {e}"))?;
                    usize::try_from(len)
                        .map_err(|_| "cannot decode: length overflow".to_string())?
                }
                _ => return Err("cannot decode: groups are not supported".to_string()),
            };
            if skip > buf.len() {
                return Err("cannot decode: buffer underflow".to_string());
            }
            let payload_start = bytes.len() - buf.len();
            buf = &buf[skip..];
            let field_end = bytes.len() - buf.len();
            if tag == 2 && wire_type == prost::encoding::WireType::LengthDelimited {
                hosts.push(payload_start..field_end);
            } else {
                rest.extend_from_slice(&bytes[field_start..field_end]);
            }
        }
        let config = RouteConfiguration::decode(rest.as_slice())
            .map_err(|e| format!("cannot decode: {e}"))?;
        let at = format!("route configuration {:?}", config.name);
        let mut table = RouteTable::without_hosts(&config, &at).map_err(|e| e.to_string())?;
        for (i, range) in hosts.into_iter().enumerate() {
            let host = PbVirtualHost::decode(&bytes[range])
                .map_err(|e| format!("cannot decode virtual_hosts[{i}]: {e}"))?;
            table
                .add_virtual_host(&host, i, &at)
                .map_err(|e| e.to_string())?;
        }
        Ok(table.finish())
    }

    /// The table with the configuration's own settings and no virtual host yet.
    fn without_hosts(config: &RouteConfiguration, at: &str) -> Result<Self, RouterError> {
        Ok(RouteTable {
            name: config.name.clone(),
            virtual_hosts: Vec::with_capacity(config.virtual_hosts.len()),
            exact: Default::default(),
            suffixes: Vec::new(),
            prefixes: Vec::new(),
            default: None,
            ignore_port: config.ignore_port_in_host_matching,
            headers: HeaderOps::compile(
                &config.request_headers_to_add,
                &config.request_headers_to_remove,
                &config.response_headers_to_add,
                &config.response_headers_to_remove,
                at,
            )?,
        })
    }

    /// Compiles and indexes virtual host number `i`.
    fn add_virtual_host(
        &mut self,
        v: &PbVirtualHost,
        i: usize,
        at: &str,
    ) -> Result<(), RouterError> {
        let vat = format!("{at}.virtual_hosts[{i}]");
        self.virtual_hosts.push(VirtualHost::compile(v, &vat)?);
        for domain in &v.domains {
            let domain = domain.to_ascii_lowercase();
            let duplicate = if domain == "*" {
                self.default.replace(i).is_some()
            } else if let Some(suffix) = domain.strip_prefix('*') {
                let dup = self.suffixes.iter().any(|(s, _)| s == suffix);
                self.suffixes.push((suffix.to_string(), i));
                dup
            } else if let Some(prefix) = domain.strip_suffix('*') {
                let dup = self.prefixes.iter().any(|(p, _)| p == prefix);
                self.prefixes.push((prefix.to_string(), i));
                dup
            } else {
                self.exact.insert(domain.clone(), i).is_some()
            };
            if duplicate {
                return Err(RouterError::new(
                    &vat,
                    format!("domain {domain:?} is served by two virtual hosts"),
                ));
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Self {
        self.suffixes.sort_by_key(|s| std::cmp::Reverse(s.0.len()));
        self.prefixes.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
        // Whether any level of a route renders operators, once, so requests need not ask.
        let levels = |h: &HeaderOps| {
            (
                h.request_formatted(),
                h.response_formatted(),
                h.response_reads_request(),
            )
        };
        let table = levels(&self.headers);
        for vhost in &mut self.virtual_hosts {
            let host = levels(&vhost.headers);
            for route in &mut vhost.routes {
                let own = levels(&route.headers);
                let targets = match &route.action {
                    Action::Forward(f) => f.clusters.header_formats(),
                    _ => (false, false, false),
                };
                route.formats = HeaderFormats {
                    request: table.0 || host.0 || own.0 || targets.0,
                    response: table.1 || host.1 || own.1 || targets.1,
                    response_reads_request: table.2 || host.2 || own.2 || targets.2,
                };
            }
        }
        self
    }

    /// The configuration's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The virtual hosts, in order.
    pub fn virtual_hosts(&self) -> &[VirtualHost] {
        &self.virtual_hosts
    }

    /// The route configuration's own header mutations (applied after the virtual host's).
    pub fn headers(&self) -> &HeaderOps {
        &self.headers
    }

    /// The virtual host serving `authority`.
    pub fn virtual_host(&self, authority: &str) -> Option<&VirtualHost> {
        self.virtual_host_index(authority)
            .map(|i| &self.virtual_hosts[i])
    }

    /// The index (in [`RouteTable::virtual_hosts`]) of the virtual host serving `authority`.
    pub fn virtual_host_index(&self, authority: &str) -> Option<usize> {
        let lower;
        let host = if authority.bytes().any(|b| b.is_ascii_uppercase()) {
            lower = authority.to_ascii_lowercase();
            lower.as_str()
        } else {
            authority
        };
        self.find_host(host)
            .or_else(|| {
                if self.ignore_port {
                    let (name, port) = action::split_port(host);
                    port.and_then(|_| self.find_host(name))
                } else {
                    None
                }
            })
            .or(self.default)
    }

    fn find_host(&self, host: &str) -> Option<usize> {
        if let Some(i) = self.exact.get(host) {
            return Some(*i);
        }
        // A wildcard never matches the empty string.
        for (suffix, i) in &self.suffixes {
            if host.len() > suffix.len() && host.ends_with(suffix.as_str()) {
                return Some(*i);
            }
        }
        for (prefix, i) in &self.prefixes {
            if host.len() > prefix.len() && host.starts_with(prefix.as_str()) {
                return Some(*i);
            }
        }
        None
    }

    /// The virtual host and the first matching route (`None` when the host matched but no
    /// route did); `None` when no virtual host serves the authority.
    pub fn route(&self, req: &RequestView<'_>) -> Option<(&VirtualHost, Option<&Route>)> {
        let vhost = self.virtual_host(req.authority)?;
        Some((vhost, vhost.find(req).map(|(_, r)| r)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::route::v3::{
        route, route_action, route_match, RouteAction, RouteMatch,
    };

    fn prefix_route(prefix: &str, cluster: &str) -> PbRoute {
        PbRoute {
            name: cluster.to_string(),
            r#match: Some(RouteMatch {
                path_specifier: Some(route_match::PathSpecifier::Prefix(prefix.into())),
                ..Default::default()
            }),
            action: Some(route::Action::Route(RouteAction {
                cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(cluster.into())),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn table(hosts: Vec<(&str, Vec<&str>, Vec<PbRoute>)>) -> RouteTable {
        RouteTable::compile(&RouteConfiguration {
            name: "t".into(),
            virtual_hosts: hosts
                .into_iter()
                .map(|(name, domains, routes)| PbVirtualHost {
                    name: name.into(),
                    domains: domains.into_iter().map(String::from).collect(),
                    routes,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .expect("compiles")
    }

    fn routed<'a>(t: &'a RouteTable, host: &str, path: &str) -> Option<(&'a str, &'a str)> {
        let headers = http::HeaderMap::new();
        let req = RequestView {
            method: "GET",
            authority: host,
            path,
            scheme: "http",
            headers: &headers,
        };
        let (v, r) = t.route(&req)?;
        Some((v.name(), r?.name()))
    }

    #[test]
    fn compiling_from_the_encoding_routes_as_compiling_the_decoded_config() {
        use prost::Message;
        let host = |name: &str, domain: &str, routes: Vec<PbRoute>| PbVirtualHost {
            name: name.into(),
            domains: vec![domain.into()],
            routes,
            ..Default::default()
        };
        let config = RouteConfiguration {
            name: "rc".into(),
            virtual_hosts: vec![
                host(
                    "a",
                    "a.example",
                    vec![prefix_route("/x", "ax"), prefix_route("/", "a")],
                ),
                host("b", "*.b.example", vec![prefix_route("/", "b")]),
                host("any", "*", vec![prefix_route("/", "d")]),
            ],
            ignore_port_in_host_matching: true,
            ..Default::default()
        };
        let decoded = RouteTable::compile(&config).expect("compiles");
        let bytes = config.encode_to_vec();
        let from_bytes = RouteTable::decode_and_compile(&bytes).expect("compiles from bytes");
        assert_eq!(from_bytes.name(), "rc");
        for (authority, path) in [
            ("a.example", "/x/1"),
            ("a.example:8080", "/y"),
            ("q.b.example", "/"),
            ("other", "/"),
        ] {
            assert_eq!(
                routed(&from_bytes, authority, path),
                routed(&decoded, authority, path),
                "{authority}{path}"
            );
        }
        // Fields may come in any order: the name after the virtual hosts.
        let renamed = RouteConfiguration {
            name: "late".into(),
            ..Default::default()
        };
        let mut reordered = RouteConfiguration {
            virtual_hosts: config.virtual_hosts.clone(),
            ..Default::default()
        }
        .encode_to_vec();
        reordered.extend(renamed.encode_to_vec());
        let t = RouteTable::decode_and_compile(&reordered).expect("compiles");
        assert_eq!(t.name(), "late");
        assert_eq!(routed(&t, "a.example", "/x").map(|r| r.1), Some("ax"));
        // The same errors: a duplicate domain names the virtual host; garbage is refused.
        let mut dup = config.clone();
        dup.virtual_hosts[2].domains = vec!["a.example".into()];
        let expected = RouteTable::compile(&dup)
            .expect_err("duplicate domain")
            .to_string();
        assert_eq!(
            RouteTable::decode_and_compile(&dup.encode_to_vec()).expect_err("duplicate domain"),
            expected
        );
        assert!(RouteTable::decode_and_compile(&[0x12, 0xff]).is_err());
    }

    #[test]
    fn domains_follow_envoys_search_order() {
        let t = table(vec![
            ("exact", vec!["a.example.com"], vec![prefix_route("/", "e")]),
            (
                "suffix",
                vec!["*.example.com"],
                vec![prefix_route("/", "s")],
            ),
            (
                "longer",
                vec!["*.b.example.com"],
                vec![prefix_route("/", "l")],
            ),
            ("prefix", vec!["api.*"], vec![prefix_route("/", "p")]),
            ("any", vec!["*"], vec![prefix_route("/", "d")]),
        ]);
        assert_eq!(routed(&t, "a.example.com", "/").unwrap().0, "exact");
        assert_eq!(routed(&t, "A.Example.COM", "/").unwrap().0, "exact");
        assert_eq!(routed(&t, "x.example.com", "/").unwrap().0, "suffix");
        assert_eq!(routed(&t, "x.b.example.com", "/").unwrap().0, "longer");
        assert_eq!(routed(&t, "api.other", "/").unwrap().0, "prefix");
        assert_eq!(routed(&t, "a.example.com:80", "/").unwrap().0, "any");
        assert_eq!(routed(&t, ".example.com", "/").unwrap().0, "any");
        assert_eq!(routed(&t, "example.com", "/").unwrap().0, "any");
    }

    #[test]
    fn first_match_wins_across_index_buckets() {
        let t = table(vec![(
            "h",
            vec!["*"],
            vec![
                prefix_route("/api/v1", "first"),
                prefix_route("/", "catch-all"),
                prefix_route("/api", "never"),
            ],
        )]);
        assert_eq!(routed(&t, "x", "/api/v1/users").unwrap().1, "first");
        assert_eq!(routed(&t, "x", "/api/v2").unwrap().1, "catch-all");
        assert_eq!(routed(&t, "x", "/other").unwrap().1, "catch-all");
    }

    #[test]
    fn regex_routes_are_indexed_by_their_literal_start() {
        let mut regex = prefix_route("/", "users");
        regex.r#match = Some(RouteMatch {
            path_specifier: Some(route_match::PathSpecifier::SafeRegex(
                envoy_types::pb::envoy::r#type::matcher::v3::RegexMatcher {
                    regex: "/users/[0-9]+".into(),
                    ..Default::default()
                },
            )),
            ..Default::default()
        });
        let t = table(vec![(
            "h",
            vec!["*"],
            vec![regex, prefix_route("/", "rest")],
        )]);
        let vhost = &t.virtual_hosts()[0];
        let mut seen = Vec::new();
        vhost.index.candidates("/", |l| seen.extend_from_slice(l));
        assert_eq!(
            seen,
            vec![1],
            "a request for / never evaluates the /users regex"
        );
        assert_eq!(routed(&t, "x", "/users/42").unwrap().1, "users");
        assert_eq!(routed(&t, "x", "/users/x").unwrap().1, "rest");
    }

    #[test]
    fn no_route_and_no_host_are_distinguished() {
        let t = table(vec![("h", vec!["a"], vec![prefix_route("/x", "x")])]);
        assert_eq!(routed(&t, "b", "/x"), None);
        let headers = http::HeaderMap::new();
        let req = RequestView {
            method: "GET",
            authority: "a",
            path: "/y",
            scheme: "http",
            headers: &headers,
        };
        let (v, r) = t.route(&req).expect("host matches");
        assert_eq!(v.name(), "h");
        assert!(r.is_none());
    }

    #[test]
    fn duplicate_domains_are_an_error_naming_the_host() {
        let err = RouteTable::compile(&RouteConfiguration {
            name: "t".into(),
            virtual_hosts: vec![
                PbVirtualHost {
                    name: "a".into(),
                    domains: vec!["x".into()],
                    ..Default::default()
                },
                PbVirtualHost {
                    name: "b".into(),
                    domains: vec!["x".into()],
                    ..Default::default()
                },
            ],
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.at.ends_with("virtual_hosts[1]"), "{err}");
    }
}
