//! Routes and their matchers and actions: the gateway `Route` of Gloo's
//! `gateway/api/v1/virtual_service.proto` (with `DelegateAction`, `RouteTableSelector`,
//! `DelegateOptionsRefs`), `gloo/api/v1/core/matchers/matchers.proto`, the route actions and
//! destinations of `gloo/api/v1/proxy.proto`, `destination_spec.proto`, `subset.proto`, the
//! destination specs of `options/{aws,azure,rest,grpc}`, the dynamic forward proxy
//! `PerRouteConfig`, and Envoy's `type/matcher/v3/regex.proto` `RegexMatchAndSubstitute`.
//!
//! Each oneof of a route (its action, a matcher's path, a destination's target) is read through an
//! accessor that returns the member that is set:
//!
//! ```
//! use gloo_core::load::{parse_str, Format};
//! use gloo_core::model::routing::{
//!     DestinationTarget, PathMatcher, RedirectPath, RouteActionRef, RouteDestination,
//! };
//! use gloo_core::model::{Resource, ResourceRef};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//!
//! let yaml = r#"
//! apiVersion: gateway.solo.io/v1
//! kind: VirtualService
//! metadata:
//!   name: petstore
//!   namespace: gloo-system
//! spec:
//!   virtualHost:
//!     domains:
//!     - '*'
//!     routes:
//!     - matchers:
//!       - prefix: /api
//!         headers:
//!         - name: x-canary
//!           value: 'true'
//!         methods:
//!         - GET
//!       routeAction:
//!         multi:
//!           destinations:
//!           - weight: 9
//!             destination:
//!               upstream:
//!                 name: petstore-v1
//!                 namespace: gloo-system
//!           - weight: 1
//!             destination:
//!               upstream:
//!                 name: petstore-v2
//!                 namespace: gloo-system
//!     - matchers:
//!       - exact: /old
//!       redirectAction:
//!         pathRedirect: /new
//!         responseCode: PERMANENT_REDIRECT
//! "#;
//! let parsed = parse_str(yaml, "petstore.yaml", Format::Yaml);
//! assert!(parsed.is_ok(), "{:?}", parsed.errors);
//! let Resource::VirtualService(vs) = &parsed.resources[0].resource else {
//!     panic!("expected a VirtualService");
//! };
//! let routes = &vs.spec.virtual_host.as_ref().ok_or("no virtualHost")?.routes;
//!
//! let matcher = &routes[0].matchers[0];
//! assert_eq!(matcher.path()?, Some(PathMatcher::Prefix("/api")));
//! assert_eq!(matcher.headers[0].name, "x-canary");
//! assert_eq!(matcher.methods, ["GET"]);
//!
//! let Some(RouteActionRef::Route(action)) = routes[0].action()? else {
//!     panic!("expected a routeAction");
//! };
//! let Some(RouteDestination::Multi(multi)) = action.destination()? else {
//!     panic!("expected weighted destinations");
//! };
//! let canary = &multi.destinations[1];
//! assert_eq!(canary.weight, Some(1));
//! let v2 = ResourceRef::new("gloo-system", "petstore-v2");
//! let destination = canary.destination.as_ref().ok_or("no destination")?;
//! assert_eq!(destination.target()?, Some(DestinationTarget::Upstream(&v2)));
//!
//! let Some(RouteActionRef::Redirect(redirect)) = routes[1].action()? else {
//!     panic!("expected a redirectAction");
//! };
//! assert_eq!(redirect.path_rewrite()?, Some(RedirectPath::Path("/new")));
//! assert_eq!(redirect.response_code.status(), 308);
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::options::{RouteOptions, WeightedDestinationOptions};
use crate::model::ResourceRef;

/// More than one member of a proto `oneof` was set in the same message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneofError {
    /// The oneof's name (e.g. `action`).
    pub oneof: &'static str,
    /// The JSON names of the members that were set (two or more).
    pub set: Vec<&'static str>,
}

impl OneofError {
    /// Checks that at most one of `members` (JSON name, is-set) is set.
    pub fn check(oneof: &'static str, members: &[(&'static str, bool)]) -> Result<(), OneofError> {
        // Counted first: the common, valid case allocates nothing.
        if members.iter().filter(|(_, s)| *s).count() <= 1 {
            return Ok(());
        }
        let set = members
            .iter()
            .filter(|(_, s)| *s)
            .map(|(n, _)| *n)
            .collect();
        Err(OneofError { oneof, set })
    }
}

impl fmt::Display for OneofError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "only one of {} may be set, found ", self.set.join(", "))?;
        if self.set.len() == 2 {
            f.write_str("both")
        } else {
            write!(f, "{}", self.set.len())
        }?;
        write!(f, " (oneof `{}`)", self.oneof)
    }
}

impl std::error::Error for OneofError {}

// ---------------------------------------------------------------------------------------------
// Matchers (matchers.core.gloo.solo.io)
// ---------------------------------------------------------------------------------------------

/// Request matcher of a route (`matchers.core.gloo.solo.io.Matcher`). With no path specifier
/// it matches prefix `/`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Matcher {
    /// `path_specifier` oneof: match paths starting with this prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// `path_specifier` oneof: match exactly this path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    /// `path_specifier` oneof: match paths against this RE2 regex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// `path_specifier` oneof: match HTTP CONNECT requests.
    #[serde(
        alias = "connect_matcher",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub connect_matcher: Option<ConnectMatcher>,
    /// Whether path matching is case sensitive (default true).
    #[serde(
        alias = "case_sensitive",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub case_sensitive: Option<bool>,
    /// Headers the request must (or, inverted, must not) carry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatcher>,
    /// Query parameters the request must carry.
    #[serde(
        alias = "query_parameters",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub query_parameters: Vec<QueryParameterMatcher>,
    /// HTTP methods to match (any of them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
}

/// The CONNECT matcher (no fields).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectMatcher {}

/// A matcher's path specifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathMatcher<'a> {
    /// Path prefix.
    Prefix(&'a str),
    /// Exact path.
    Exact(&'a str),
    /// RE2 regex over the path.
    Regex(&'a str),
    /// CONNECT requests.
    Connect,
}

impl Matcher {
    /// The `path_specifier` oneof; `None` means the default, prefix `/`.
    pub fn path(&self) -> Result<Option<PathMatcher<'_>>, OneofError> {
        OneofError::check(
            "path_specifier",
            &[
                ("prefix", self.prefix.is_some()),
                ("exact", self.exact.is_some()),
                ("regex", self.regex.is_some()),
                ("connectMatcher", self.connect_matcher.is_some()),
            ],
        )?;
        Ok(if let Some(p) = &self.prefix {
            Some(PathMatcher::Prefix(p))
        } else if let Some(p) = &self.exact {
            Some(PathMatcher::Exact(p))
        } else if let Some(p) = &self.regex {
            Some(PathMatcher::Regex(p))
        } else if self.connect_matcher.is_some() {
            Some(PathMatcher::Connect)
        } else {
            None
        })
    }

    /// The path specifier with the default (prefix `/`) filled in.
    pub fn path_or_default(&self) -> Result<PathMatcher<'_>, OneofError> {
        Ok(self.path()?.unwrap_or(PathMatcher::Prefix("/")))
    }
}

/// Matches a request header (`matchers.core.gloo.solo.io.HeaderMatcher`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderMatcher {
    /// Header name.
    #[serde(default)]
    pub name: String,
    /// Value to match; empty means "present with any value".
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    /// Treat `value` as a regex.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub regex: bool,
    /// Invert the match.
    #[serde(
        alias = "invert_match",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub invert_match: bool,
}

/// Matches a query parameter (`matchers.core.gloo.solo.io.QueryParameterMatcher`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QueryParameterMatcher {
    /// Parameter name.
    #[serde(default)]
    pub name: String,
    /// Value to match; empty means "present with any value".
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    /// Treat `value` as a regex.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub regex: bool,
}

// ---------------------------------------------------------------------------------------------
// Gateway routes (gateway.solo.io.Route)
// ---------------------------------------------------------------------------------------------

/// A route of a virtual service or route table (`gateway.solo.io.Route`): matchers, exactly
/// one action, and options.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Route {
    /// Matchers; the route matches if any matches. Empty means prefix `/`.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::model::shrunk_vec"
    )]
    pub matchers: Vec<Matcher>,
    /// On a delegating route: child routes inherit this route's headers/query/method matchers.
    #[serde(
        alias = "inheritable_matchers",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub inheritable_matchers: Option<bool>,
    /// On a delegating route: child routes inherit this route's path matchers.
    #[serde(
        alias = "inheritable_path_matchers",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub inheritable_path_matchers: Option<bool>,
    /// `action` oneof: route to upstreams.
    #[serde(
        alias = "route_action",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub route_action: Option<std::sync::Arc<RouteAction>>,
    /// `action` oneof: redirect.
    #[serde(
        alias = "redirect_action",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub redirect_action: Option<Box<RedirectAction>>,
    /// `action` oneof: respond directly.
    #[serde(
        alias = "direct_response_action",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub direct_response_action: Option<DirectResponseAction>,
    /// `action` oneof: delegate to route tables.
    #[serde(
        alias = "delegate_action",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub delegate_action: Option<Box<DelegateAction>>,
    /// Route options (inherited by child routes of a delegating route).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<std::sync::Arc<RouteOptions>>,
    /// Optional route name (used in stats and statuses).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `external_options_config` oneof: `RouteOption` resources to take options from.
    #[serde(
        alias = "options_config_refs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub options_config_refs: Option<DelegateOptionsRefs>,
}

/// A route's action.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RouteActionRef<'a> {
    /// Route to upstreams.
    Route(&'a RouteAction),
    /// Redirect.
    Redirect(&'a RedirectAction),
    /// Respond directly.
    DirectResponse(&'a DirectResponseAction),
    /// Delegate to route tables.
    Delegate(&'a DelegateAction),
}

impl Route {
    /// The `action` oneof (`None` if the route has no action, which Gloo reports as an error).
    pub fn action(&self) -> Result<Option<RouteActionRef<'_>>, OneofError> {
        OneofError::check(
            "action",
            &[
                ("routeAction", self.route_action.is_some()),
                ("redirectAction", self.redirect_action.is_some()),
                (
                    "directResponseAction",
                    self.direct_response_action.is_some(),
                ),
                ("delegateAction", self.delegate_action.is_some()),
            ],
        )?;
        Ok(if let Some(a) = &self.route_action {
            Some(RouteActionRef::Route(a))
        } else if let Some(a) = &self.redirect_action {
            Some(RouteActionRef::Redirect(a))
        } else if let Some(a) = &self.direct_response_action {
            Some(RouteActionRef::DirectResponse(a))
        } else {
            self.delegate_action
                .as_deref()
                .map(RouteActionRef::Delegate)
        })
    }
}

/// References to option resources (`gateway.solo.io.DelegateOptionsRefs`); earlier entries
/// take priority over later ones.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DelegateOptionsRefs {
    /// The option resources.
    #[serde(
        alias = "delegate_options",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub delegate_options: Vec<ResourceRef>,
}

/// Delegates a route's matching to route tables (`gateway.solo.io.DelegateAction`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DelegateAction {
    /// Deprecated: name of the route table (use `ref`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Deprecated: namespace of the route table (use `ref`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// `delegation_type` oneof: a single route table.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub ref_: Option<ResourceRef>,
    /// `delegation_type` oneof: route tables selected by labels/namespaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<RouteTableSelector>,
}

/// What a delegate action delegates to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DelegateTarget<'a> {
    /// One route table (from `ref`, or from the deprecated `name`/`namespace`; a missing
    /// namespace means the delegating resource's namespace).
    Ref(ResourceRef),
    /// Route tables selected by a selector.
    Selector(&'a RouteTableSelector),
}

impl DelegateAction {
    /// The route tables this action delegates to. The deprecated `name`/`namespace` fields are a
    /// reference when neither `ref` nor `selector` is set (as in Gloo).
    pub fn target(&self) -> Result<Option<DelegateTarget<'_>>, OneofError> {
        OneofError::check(
            "delegation_type",
            &[
                ("ref", self.ref_.is_some()),
                ("selector", self.selector.is_some()),
            ],
        )?;
        Ok(if let Some(r) = &self.ref_ {
            Some(DelegateTarget::Ref(r.clone()))
        } else if let Some(s) = &self.selector {
            Some(DelegateTarget::Selector(s))
        } else if !self.name.is_empty() {
            Some(DelegateTarget::Ref(ResourceRef {
                name: self.name.clone(),
                namespace: (!self.namespace.is_empty()).then(|| self.namespace.clone()),
            }))
        } else {
            None
        })
    }
}

/// Selects route tables by labels or label expressions and namespaces
/// (`gateway.solo.io.RouteTableSelector`; the same shape as
/// `selectors.core.gloo.solo.io.Selector`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteTableSelector {
    /// Namespaces to select in; empty means the delegating resource's namespace, `*` means all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Labels the selected resources must all have (cannot be combined with `expressions`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Label expressions the selected resources must all satisfy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expressions: Vec<SelectorExpression>,
}

/// A label selector expression (`RouteTableSelector.Expression`, `Selector.Expression`,
/// `VirtualServiceSelectorExpressions.Expression`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SelectorExpression {
    /// Label key.
    #[serde(default)]
    pub key: String,
    /// How the label's value is compared with `values`.
    #[serde(default)]
    pub operator: ExpressionOperator,
    /// Values to compare with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// A label selector operator (Kubernetes selection semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ExpressionOperator {
    /// `=`.
    #[default]
    Equals,
    /// `==`.
    DoubleEquals,
    /// `!=`.
    NotEquals,
    /// `in`.
    In,
    /// `notin`.
    NotIn,
    /// The label exists.
    Exists,
    /// The label does not exist.
    DoesNotExist,
    /// `gt`.
    GreaterThan,
    /// `lt`.
    LessThan,
}

// ---------------------------------------------------------------------------------------------
// Actions (gloo.solo.io)
// ---------------------------------------------------------------------------------------------

/// Routes to one or more upstreams (`gloo.solo.io.RouteAction`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteAction {
    /// `destination` oneof: a single destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub single: Option<Destination>,
    /// `destination` oneof: weighted destinations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi: Option<MultiDestination>,
    /// `destination` oneof: an `UpstreamGroup`.
    #[serde(
        alias = "upstream_group",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub upstream_group: Option<ResourceRef>,
    /// `destination` oneof: the cluster named by this request header.
    #[serde(
        alias = "cluster_header",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cluster_header: Option<String>,
    /// `destination` oneof: the dynamic forward proxy.
    #[serde(
        alias = "dynamic_forward_proxy",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dynamic_forward_proxy: Option<DynamicForwardProxyRoute>,
}

/// A route action's destination.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RouteDestination<'a> {
    /// One destination.
    Single(&'a Destination),
    /// Weighted destinations.
    Multi(&'a MultiDestination),
    /// An upstream group.
    UpstreamGroup(&'a ResourceRef),
    /// The cluster named by a request header.
    ClusterHeader(&'a str),
    /// The dynamic forward proxy.
    DynamicForwardProxy(&'a DynamicForwardProxyRoute),
}

impl RouteAction {
    /// The `destination` oneof.
    pub fn destination(&self) -> Result<Option<RouteDestination<'_>>, OneofError> {
        OneofError::check(
            "destination",
            &[
                ("single", self.single.is_some()),
                ("multi", self.multi.is_some()),
                ("upstreamGroup", self.upstream_group.is_some()),
                ("clusterHeader", self.cluster_header.is_some()),
                ("dynamicForwardProxy", self.dynamic_forward_proxy.is_some()),
            ],
        )?;
        Ok(if let Some(d) = &self.single {
            Some(RouteDestination::Single(d))
        } else if let Some(d) = &self.multi {
            Some(RouteDestination::Multi(d))
        } else if let Some(d) = &self.upstream_group {
            Some(RouteDestination::UpstreamGroup(d))
        } else if let Some(d) = &self.cluster_header {
            Some(RouteDestination::ClusterHeader(d))
        } else {
            self.dynamic_forward_proxy
                .as_ref()
                .map(RouteDestination::DynamicForwardProxy)
        })
    }
}

/// Per-route dynamic forward proxy settings (`dfp.options.gloo.solo.io.PerRouteConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DynamicForwardProxyRoute {
    /// `host_rewrite_specifier` oneof: rewrite the host to this literal.
    #[serde(
        alias = "host_rewrite",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub host_rewrite: Option<String>,
    /// `host_rewrite_specifier` oneof: rewrite the host to this request header's value.
    #[serde(
        alias = "auto_host_rewrite_header",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub auto_host_rewrite_header: Option<String>,
}

/// The `host_rewrite_specifier` oneof of [`DynamicForwardProxyRoute`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DynamicForwardProxyHostRewrite<'a> {
    /// Rewrite the host to this literal (`hostRewrite`).
    Literal(&'a str),
    /// Rewrite the host to this request header's value (`autoHostRewriteHeader`).
    Header(&'a str),
}

impl DynamicForwardProxyRoute {
    /// The `host_rewrite_specifier` oneof: at most one of `hostRewrite` and
    /// `autoHostRewriteHeader` (neither forwards to the request's own host).
    ///
    /// ```
    /// use gloo_core::model::routing::{DynamicForwardProxyHostRewrite, DynamicForwardProxyRoute};
    /// let route = DynamicForwardProxyRoute {
    ///     auto_host_rewrite_header: Some("x-rewrite-me".into()),
    ///     ..Default::default()
    /// };
    /// assert_eq!(
    ///     route.host_rewrite(),
    ///     Ok(Some(DynamicForwardProxyHostRewrite::Header("x-rewrite-me")))
    /// );
    /// assert_eq!(DynamicForwardProxyRoute::default().host_rewrite(), Ok(None));
    /// ```
    pub fn host_rewrite(&self) -> Result<Option<DynamicForwardProxyHostRewrite<'_>>, OneofError> {
        OneofError::check(
            "host_rewrite_specifier",
            &[
                ("hostRewrite", self.host_rewrite.is_some()),
                (
                    "autoHostRewriteHeader",
                    self.auto_host_rewrite_header.is_some(),
                ),
            ],
        )?;
        Ok(match (&self.host_rewrite, &self.auto_host_rewrite_header) {
            (Some(literal), _) => Some(DynamicForwardProxyHostRewrite::Literal(literal)),
            (None, Some(header)) => Some(DynamicForwardProxyHostRewrite::Header(header)),
            (None, None) => None,
        })
    }
}

/// Where to send a request (`gloo.solo.io.Destination`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Destination {
    /// `destination_type` oneof: an upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<ResourceRef>,
    /// `destination_type` oneof: a Kubernetes service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube: Option<KubernetesServiceDestination>,
    /// `destination_type` oneof: a Consul service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consul: Option<ConsulServiceDestination>,
    /// Function-level routing (AWS Lambda, Azure, REST, gRPC).
    #[serde(
        alias = "destination_spec",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub destination_spec: Option<DestinationSpec>,
    /// Route to a subset of the upstream's endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<Subset>,
}

/// A destination's target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestinationTarget<'a> {
    /// An upstream.
    Upstream(&'a ResourceRef),
    /// A Kubernetes service.
    Kube(&'a KubernetesServiceDestination),
    /// A Consul service.
    Consul(&'a ConsulServiceDestination),
}

impl Destination {
    /// The `destination_type` oneof.
    pub fn target(&self) -> Result<Option<DestinationTarget<'_>>, OneofError> {
        OneofError::check(
            "destination_type",
            &[
                ("upstream", self.upstream.is_some()),
                ("kube", self.kube.is_some()),
                ("consul", self.consul.is_some()),
            ],
        )?;
        Ok(if let Some(u) = &self.upstream {
            Some(DestinationTarget::Upstream(u))
        } else if let Some(k) = &self.kube {
            Some(DestinationTarget::Kube(k))
        } else {
            self.consul.as_ref().map(DestinationTarget::Consul)
        })
    }
}

/// A Kubernetes service as a destination (`gloo.solo.io.KubernetesServiceDestination`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubernetesServiceDestination {
    /// The service.
    #[serde(rename = "ref", default)]
    pub ref_: ResourceRef,
    /// The service port.
    #[serde(default)]
    pub port: u32,
}

/// A Consul service as a destination (`gloo.solo.io.ConsulServiceDestination`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsulServiceDestination {
    /// The Consul service name.
    #[serde(alias = "service_name", default)]
    pub service_name: String,
    /// Only instances with all of these tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Only instances in these data centers.
    #[serde(alias = "data_centers", default, skip_serializing_if = "Vec::is_empty")]
    pub data_centers: Vec<String>,
}

/// Weighted destinations (`gloo.solo.io.MultiDestination`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MultiDestination {
    /// The destinations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<WeightedDestination>,
}

/// A destination with a weight (`gloo.solo.io.WeightedDestination`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WeightedDestination {
    /// The destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<Destination>,
    /// Relative weight; a weight of 0 means no traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// Options applied to traffic to this destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<WeightedDestinationOptions>,
}

/// Label values selecting a subset of an upstream's endpoints (`gloo.solo.io.Subset`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Subset {
    /// Label key/values the endpoints must have.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, String>,
}

/// Function-level destination settings (`gloo.solo.io.DestinationSpec`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DestinationSpec {
    /// `destination_type` oneof: an AWS Lambda function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsDestinationSpec>,
    /// `destination_type` oneof: an Azure function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureDestinationSpec>,
    /// `destination_type` oneof: a REST function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rest: Option<RestDestinationSpec>,
    /// `destination_type` oneof: a gRPC function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcDestinationSpec>,
}

/// A destination spec's kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DestinationSpecRef<'a> {
    /// AWS Lambda.
    Aws(&'a AwsDestinationSpec),
    /// Azure functions.
    Azure(&'a AzureDestinationSpec),
    /// REST.
    Rest(&'a RestDestinationSpec),
    /// gRPC.
    Grpc(&'a GrpcDestinationSpec),
}

impl DestinationSpec {
    /// The `destination_type` oneof.
    pub fn kind(&self) -> Result<Option<DestinationSpecRef<'_>>, OneofError> {
        OneofError::check(
            "destination_type",
            &[
                ("aws", self.aws.is_some()),
                ("azure", self.azure.is_some()),
                ("rest", self.rest.is_some()),
                ("grpc", self.grpc.is_some()),
            ],
        )?;
        Ok(if let Some(s) = &self.aws {
            Some(DestinationSpecRef::Aws(s))
        } else if let Some(s) = &self.azure {
            Some(DestinationSpecRef::Azure(s))
        } else if let Some(s) = &self.rest {
            Some(DestinationSpecRef::Rest(s))
        } else {
            self.grpc.as_ref().map(DestinationSpecRef::Grpc)
        })
    }
}

/// An AWS Lambda function destination (`aws.options.gloo.solo.io.DestinationSpec`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsDestinationSpec {
    /// The function's logical name in the upstream's `lambdaFunctions`.
    #[serde(alias = "logical_name", default)]
    pub logical_name: String,
    /// Synchronous or asynchronous invocation.
    #[serde(alias = "invocation_style", default)]
    pub invocation_style: InvocationStyle,
    /// Transform the request into the Lambda's payload format.
    #[serde(
        alias = "request_transformation",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub request_transformation: bool,
    /// Deprecated: unwrap the response as an API Gateway response (use `unwrapAsApiGateway`).
    #[serde(
        alias = "response_transformation",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub response_transformation: bool,
    /// Unwrap the response as an ALB response.
    #[serde(
        alias = "unwrap_as_alb",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub unwrap_as_alb: bool,
    /// Unwrap the response as an API Gateway response.
    #[serde(
        alias = "unwrap_as_api_gateway",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub unwrap_as_api_gateway: bool,
    /// Wrap the request as an API Gateway request.
    #[serde(
        alias = "wrap_as_api_gateway",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub wrap_as_api_gateway: bool,
}

/// AWS Lambda invocation style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InvocationStyle {
    /// Wait for the function's response.
    #[default]
    Sync,
    /// Fire and forget.
    Async,
}

/// An Azure function destination (`azure.options.gloo.solo.io.DestinationSpec`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AzureDestinationSpec {
    /// The function name.
    #[serde(alias = "function_name", default)]
    pub function_name: String,
}

/// A REST function destination (`rest.options.gloo.solo.io.DestinationSpec`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestDestinationSpec {
    /// The function name.
    #[serde(alias = "function_name", default)]
    pub function_name: String,
    /// Parameters extracted from the request. Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<serde_json::Value>,
    /// Transformation template for the response. Accepted and carried; not interpreted yet.
    #[serde(
        alias = "response_transformation",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub response_transformation: Option<serde_json::Value>,
}

/// A gRPC function destination (`grpc.options.gloo.solo.io.DestinationSpec`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcDestinationSpec {
    /// The proto package of the function.
    #[serde(default)]
    pub package: String,
    /// The gRPC service.
    #[serde(default)]
    pub service: String,
    /// The method.
    #[serde(default)]
    pub function: String,
    /// Parameters extracted from the request. Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<serde_json::Value>,
}

/// Redirects the request (`gloo.solo.io.RedirectAction`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedirectAction {
    /// Replace the host with this value.
    #[serde(
        alias = "host_redirect",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub host_redirect: String,
    /// `path_rewrite_specifier` oneof: replace the whole path.
    #[serde(
        alias = "path_redirect",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub path_redirect: Option<String>,
    /// `path_rewrite_specifier` oneof: replace the matched prefix.
    #[serde(
        alias = "prefix_rewrite",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub prefix_rewrite: Option<String>,
    /// `path_rewrite_specifier` oneof: regex substitution on the path.
    #[serde(
        alias = "regex_rewrite",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub regex_rewrite: Option<RegexMatchAndSubstitute>,
    /// The redirect status code (default 301).
    #[serde(alias = "response_code", default)]
    pub response_code: RedirectResponseCode,
    /// Redirect to https.
    #[serde(
        alias = "https_redirect",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub https_redirect: bool,
    /// Remove the query string.
    #[serde(
        alias = "strip_query",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub strip_query: bool,
    /// Replace the port with this value.
    #[serde(
        alias = "port_redirect",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub port_redirect: Option<u32>,
}

/// A redirect's path rewrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectPath<'a> {
    /// Replace the whole path.
    Path(&'a str),
    /// Replace the matched prefix.
    Prefix(&'a str),
    /// Regex substitution.
    Regex(&'a RegexMatchAndSubstitute),
}

impl RedirectAction {
    /// The `path_rewrite_specifier` oneof.
    pub fn path_rewrite(&self) -> Result<Option<RedirectPath<'_>>, OneofError> {
        OneofError::check(
            "path_rewrite_specifier",
            &[
                ("pathRedirect", self.path_redirect.is_some()),
                ("prefixRewrite", self.prefix_rewrite.is_some()),
                ("regexRewrite", self.regex_rewrite.is_some()),
            ],
        )?;
        Ok(if let Some(p) = &self.path_redirect {
            Some(RedirectPath::Path(p))
        } else if let Some(p) = &self.prefix_rewrite {
            Some(RedirectPath::Prefix(p))
        } else {
            self.regex_rewrite.as_ref().map(RedirectPath::Regex)
        })
    }
}

/// Redirect status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RedirectResponseCode {
    /// 301.
    #[default]
    MovedPermanently,
    /// 302.
    Found,
    /// 303.
    SeeOther,
    /// 307.
    TemporaryRedirect,
    /// 308.
    PermanentRedirect,
}

impl RedirectResponseCode {
    /// The HTTP status code.
    pub fn status(self) -> u16 {
        match self {
            RedirectResponseCode::MovedPermanently => 301,
            RedirectResponseCode::Found => 302,
            RedirectResponseCode::SeeOther => 303,
            RedirectResponseCode::TemporaryRedirect => 307,
            RedirectResponseCode::PermanentRedirect => 308,
        }
    }
}

/// Responds directly (`gloo.solo.io.DirectResponseAction`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DirectResponseAction {
    /// HTTP status.
    #[serde(default)]
    pub status: u32,
    /// Response body.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
}

/// A regex and its substitution (`solo.io.envoy.type.matcher.v3.RegexMatchAndSubstitute`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegexMatchAndSubstitute {
    /// The regex to match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<RegexMatcher>,
    /// The substitution (may reference capture groups as `\1`).
    #[serde(default)]
    pub substitution: String,
}

/// A regex (`solo.io.envoy.type.matcher.v3.RegexMatcher`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegexMatcher {
    /// `engine_type` oneof: the RE2 engine (the only one).
    #[serde(alias = "google_re2", default, skip_serializing_if = "Option::is_none")]
    pub google_re2: Option<GoogleRe2>,
    /// The regex.
    #[serde(default)]
    pub regex: String,
}

/// RE2 engine settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GoogleRe2 {
    /// Deprecated: maximum compiled program size.
    #[serde(
        alias = "max_program_size",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_program_size: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(doc: &str) -> Vec<Route> {
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(doc).unwrap();
        serde_yaml_ng::from_value(v["spec"]["virtualHost"]["routes"].clone()).unwrap()
    }

    fn round_trip<S: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(s: &S) {
        let json = serde_json::to_string(s).unwrap();
        let back: S = serde_json::from_str(&json).unwrap();
        assert_eq!(s, &back);
    }

    // docs/content/guides/traffic_management/destination_selection/path_matching/exact_vs_1.yaml
    const EXACT_VS: &str = r#"
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata:
  name: test-exact-1
  namespace: gloo-system
spec:
  virtualHost:
    domains:
      - 'foo'
    routes:
      - matchers:
         - exact: /
        routeAction:
          single:
            upstream:
              name: json-upstream
              namespace: gloo-system
        options:
          autoHostRewrite: true
"#;

    #[test]
    fn parses_exact_matcher_route() {
        let rs = routes(EXACT_VS);
        assert_eq!(
            rs[0].matchers[0].path().unwrap(),
            Some(PathMatcher::Exact("/"))
        );
        assert!(matches!(
            rs[0].action().unwrap(),
            Some(RouteActionRef::Route(_))
        ));
        round_trip(&rs);
    }

    // docs/content/guides/traffic_management/listener_configuration/http_connection_manager/dfp/_index.md
    const CONNECT_VS: &str = r#"
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata:
  name: forward-proxy-vs
  namespace: gloo-system
  labels:
    app: my-forward-proxy
spec:
  virtualHost:
    domains:
      - '*'
    routes:
      - matchers:
          - connectMatcher: {}   # matches HTTP CONNECT requests
        routeAction:
          dynamicForwardProxy: {}   # host is taken from the CONNECT request authority
        options:
          upgrades:
            - connectTerminate:
                enabled: true   # terminates CONNECT and forwards payload as raw TCP
"#;

    #[test]
    fn parses_connect_matcher_and_dynamic_forward_proxy() {
        let rs = routes(CONNECT_VS);
        assert_eq!(
            rs[0].matchers[0].path().unwrap(),
            Some(PathMatcher::Connect)
        );
        let action = rs[0].route_action.as_ref().unwrap();
        assert_eq!(
            action.destination().unwrap(),
            Some(RouteDestination::DynamicForwardProxy(
                &DynamicForwardProxyRoute::default()
            ))
        );
        assert_eq!(rs[0].options.as_ref().unwrap().upgrades.len(), 1);
        round_trip(&rs);
    }

    // docs/content/guides/traffic_management/destination_types/delegation/_index.md
    // (selector with expressions; the docs' second expression uses `operator: !`, a YAML tag
    // that Gloo rejects too, so only the first is kept).
    #[test]
    fn parses_selector_expressions() {
        let rs = routes(
            r#"
spec:
  virtualHost:
    routes:
    - matchers:
       - prefix: '/'
      delegateAction:
        selector:
          # 'expressions' and 'labels' cannot coexist within a single selector
          expressions:
            - key: domain
              operator: In
              values:
                - example.com
          namespaces:
          - gloo-system
"#,
        );
        let Some(DelegateTarget::Selector(sel)) =
            rs[0].delegate_action.as_ref().unwrap().target().unwrap()
        else {
            panic!("expected a selector");
        };
        assert_eq!(sel.expressions[0].operator, ExpressionOperator::In);
        assert_eq!(sel.expressions[0].values, vec!["example.com"]);
        round_trip(&rs);
    }

    #[test]
    fn default_path_and_case_sensitivity() {
        let m: Matcher = serde_yaml_ng::from_str("caseSensitive: false\nmethods: [GET]").unwrap();
        assert_eq!(m.path().unwrap(), None);
        assert_eq!(m.path_or_default().unwrap(), PathMatcher::Prefix("/"));
        assert_eq!(m.case_sensitive, Some(false));
    }

    #[test]
    fn path_oneof_conflict() {
        let m: Matcher = serde_yaml_ng::from_str("prefix: /a\nexact: /a\nregex: /a").unwrap();
        let err = m.path().unwrap_err();
        assert_eq!(err.oneof, "path_specifier");
        assert_eq!(
            err.to_string(),
            "only one of prefix, exact, regex may be set, found 3 (oneof `path_specifier`)"
        );
        let e: Box<dyn std::error::Error> = Box::new(err);
        assert!(e.to_string().starts_with("only one of"));
    }

    #[test]
    fn destination_and_delegate_conflicts() {
        let a: RouteAction =
            serde_yaml_ng::from_str("single: {upstream: {name: a}}\nclusterHeader: x").unwrap();
        assert_eq!(
            a.destination().unwrap_err().set,
            vec!["single", "clusterHeader"]
        );
        let d: Destination =
            serde_yaml_ng::from_str("upstream: {name: a}\nkube: {ref: {name: b}, port: 80}")
                .unwrap();
        assert_eq!(d.target().unwrap_err().set, vec!["upstream", "kube"]);
        let del: DelegateAction =
            serde_yaml_ng::from_str("ref: {name: a}\nselector: {labels: {a: b}}").unwrap();
        assert!(del.target().is_err());
        let spec: DestinationSpec =
            serde_yaml_ng::from_str("aws: {logicalName: f}\nazure: {functionName: g}").unwrap();
        assert!(spec.kind().is_err());
    }

    // docs/content/guides/traffic_management/request_processing/regex_rewrite/_index.md
    // (snake-case proto names, which proto3 JSON parsers accept).
    #[test]
    fn parses_regex_with_snake_case_engine() {
        let r: RegexMatchAndSubstitute = serde_yaml_ng::from_str(
            "pattern:\n  google_re2:\n    max_program_size: 1024\n  regex: 'bar'\nsubstitution: 'baz'",
        )
        .unwrap();
        let p = r.pattern.as_ref().unwrap();
        assert_eq!(p.google_re2.as_ref().unwrap().max_program_size, Some(1024));
        assert_eq!(p.regex, "bar");
        round_trip(&r);
    }

    #[test]
    fn redirect_path_variants() {
        let r: RedirectAction = serde_yaml_ng::from_str(
            "prefixRewrite: /new\nresponseCode: FOUND\nstripQuery: true\nportRedirect: 8443",
        )
        .unwrap();
        assert_eq!(
            r.path_rewrite().unwrap(),
            Some(RedirectPath::Prefix("/new"))
        );
        assert_eq!(r.response_code, RedirectResponseCode::Found);
        assert_eq!(r.port_redirect, Some(8443));
        round_trip(&r);
    }

    #[test]
    fn unknown_field_is_rejected() {
        let err = serde_yaml_ng::from_str::<Matcher>("prefix: /\nheader: []").unwrap_err();
        assert!(err.to_string().contains("header"), "{err}");
        let err = serde_yaml_ng::from_str::<Route>("graphqlApiRef: {name: a}").unwrap_err();
        assert!(err.to_string().contains("graphqlApiRef"), "{err}");
    }
}
