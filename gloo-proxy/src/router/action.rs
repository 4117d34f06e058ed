//! What a matched route does: forward (with rewrites, retries, timeouts, mirrors), redirect,
//! or answer directly; and the header mutations every level of the route table carries.
//!
//! ```
//! use std::time::Duration;
//! use envoy_types::pb::envoy::config::route::v3::{
//!     redirect_action, route, route_action, route_match, RedirectAction, RetryPolicy, Route,
//!     RouteAction, RouteConfiguration, RouteMatch, VirtualHost,
//! };
//! use envoy_types::pb::google::protobuf::{Duration as PbDuration, UInt32Value};
//! use gloo_proxy::router::action::Action;
//! use gloo_proxy::router::{matcher::RequestView, RouteTable};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let prefix = |p: &str| {
//!     Some(RouteMatch {
//!         path_specifier: Some(route_match::PathSpecifier::Prefix(p.into())),
//!         ..Default::default()
//!     })
//! };
//! // `/api/...` goes to `petstore` without the prefix, within 5 s, retried twice on a 5xx.
//! let api = Route {
//!     r#match: prefix("/api/"),
//!     action: Some(route::Action::Route(RouteAction {
//!         cluster_specifier: Some(route_action::ClusterSpecifier::Cluster("petstore".into())),
//!         prefix_rewrite: "/".into(),
//!         timeout: Some(PbDuration { seconds: 5, nanos: 0 }),
//!         retry_policy: Some(RetryPolicy {
//!             retry_on: "5xx".into(),
//!             num_retries: Some(UInt32Value { value: 2 }),
//!             ..Default::default()
//!         }),
//!         ..Default::default()
//!     })),
//!     ..Default::default()
//! };
//! // Everything else is redirected to HTTPS.
//! let https = Route {
//!     r#match: prefix("/"),
//!     action: Some(route::Action::Redirect(RedirectAction {
//!         scheme_rewrite_specifier: Some(
//!             redirect_action::SchemeRewriteSpecifier::HttpsRedirect(true),
//!         ),
//!         ..Default::default()
//!     })),
//!     ..Default::default()
//! };
//! let table = RouteTable::compile(&RouteConfiguration {
//!     virtual_hosts: vec![VirtualHost {
//!         name: "shop".into(),
//!         domains: vec!["*".into()],
//!         routes: vec![api, https],
//!         ..Default::default()
//!     }],
//!     ..Default::default()
//! })?;
//! let headers = http::HeaderMap::new();
//! let request = |path: &'static str| RequestView {
//!     method: "GET",
//!     authority: "shop.example:80",
//!     path,
//!     scheme: "http",
//!     headers: &headers,
//! };
//!
//! let path = "/api/pets?limit=10";
//! let (_, route) = table.route(&request(path)).expect("a virtual host");
//! let route = route.expect("the /api/ route");
//! let Action::Forward(forward) = route.action() else {
//!     panic!("a forward");
//! };
//! assert_eq!(forward.clusters.pick(&headers).map(|(cluster, ..)| cluster), Some("petstore"));
//! let upstream_path = forward.rewrite_path(path, route.matched_prefix_len());
//! assert_eq!(upstream_path.as_deref(), Some("/pets?limit=10"));
//! assert_eq!(forward.timeout, Some(Duration::from_secs(5)));
//! let retry = forward.retry.as_ref().expect("a retry policy");
//! assert_eq!(retry.num_retries, 2);
//! assert!(retry.retries_status(http::StatusCode::SERVICE_UNAVAILABLE));
//! assert!(!retry.retries_status(http::StatusCode::NOT_FOUND));
//!
//! let path = "/cart?item=1";
//! let (_, route) = table.route(&request(path)).expect("a virtual host");
//! let route = route.expect("the catch-all route");
//! let Action::Redirect(redirect) = route.action() else {
//!     panic!("a redirect");
//! };
//! assert_eq!(redirect.status(), http::StatusCode::MOVED_PERMANENTLY);
//! let location = redirect.location("http", "shop.example:80", path, route.matched_prefix_len());
//! assert_eq!(location, "https://shop.example/cart?item=1");
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::{
    data_source::Specifier, header_value_option::HeaderAppendAction, HeaderValueOption,
};
use envoy_types::pb::envoy::config::route::v3::{
    redirect_action::{PathRewriteSpecifier, RedirectResponseCode, SchemeRewriteSpecifier},
    route_action::{ClusterSpecifier, HostRewriteSpecifier},
    DirectResponseAction, RedirectAction, RetryPolicy as PbRetryPolicy, RouteAction,
};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use regex::Regex;

use super::RouterError;
use crate::upstream::subset::MatchCriteria;

/// Envoy's default route timeout when none is configured.
pub const DEFAULT_ROUTE_TIMEOUT: Duration = Duration::from_secs(15);

/// Converts a protobuf duration (negative or absurd values clamp to zero).
pub(crate) fn pb_duration(d: &envoy_types::pb::google::protobuf::Duration) -> Duration {
    let secs = u64::try_from(d.seconds).unwrap_or(0);
    let nanos = u32::try_from(d.nanos).unwrap_or(0).min(999_999_999);
    Duration::new(secs, nanos)
}

fn header_name(name: &str, at: &str) -> Result<HeaderName, RouterError> {
    HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
        .map_err(|_| RouterError::new(at, format!("invalid header name {name:?}")))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AppendAction {
    Append,
    AddIfAbsent,
    Overwrite,
    OverwriteIfExists,
}

#[derive(Debug, Clone)]
struct HeaderAdd {
    name: HeaderName,
    value: AddedValue,
    action: AppendAction,
    keep_empty: bool,
}

/// An added header's value: literal, or with Envoy's command operators in it.
#[derive(Debug, Clone)]
enum AddedValue {
    Literal(HeaderValue),
    Formatted(Arc<crate::access_log::format::Format>),
}

/// What the command operators in added header values (`%DOWNSTREAM_REMOTE_ADDRESS%`,
/// `%REQ(user-agent)%`, `%START_TIME%`, ...) are rendered from: Envoy substitutes them in the
/// values of the headers it adds, as its access log does (an absent value is empty, and an
/// empty value is not added unless `keep_empty_value`).
#[derive(Debug, Clone, Copy)]
pub struct HeaderContext<'a> {
    /// The client connection.
    pub downstream: &'a crate::proxy::Downstream,
    /// The request's method (empty if unknown).
    pub method: &'a str,
    /// The request's authority (empty: the `host` header of the request headers).
    pub authority: &'a str,
    /// The request's path with its query (empty if unknown).
    pub path: &'a str,
    /// The client's protocol.
    pub protocol: http::Version,
    /// When response headers are changed: the request's headers, if still at hand.
    pub request_headers: Option<&'a HeaderMap>,
    /// When response headers are changed: the answer's status.
    pub status: u16,
}

impl AddedValue {
    fn compile(
        header: &envoy_types::pb::envoy::config::core::v3::HeaderValue,
        at: &str,
    ) -> Result<Self, RouterError> {
        let invalid = || RouterError::new(at, "invalid header value");
        if !header.raw_value.is_empty() {
            return HeaderValue::from_bytes(&header.raw_value)
                .map(AddedValue::Literal)
                .map_err(|_| invalid());
        }
        if !header.value.contains('%') {
            return HeaderValue::from_str(&header.value)
                .map(AddedValue::Literal)
                .map_err(|_| invalid());
        }
        let format = crate::access_log::format::Format::text(&header.value)
            .map_err(|e| RouterError::new(at, format!("header value {:?}: {e}", header.value)))?;
        match format.literal() {
            Some(text) => HeaderValue::from_str(&text)
                .map(AddedValue::Literal)
                .map_err(|_| invalid()),
            None => Ok(AddedValue::Formatted(Arc::new(format))),
        }
    }
}

/// Header additions and removals for requests and responses at one level of a route table.
#[derive(Debug, Clone, Default)]
pub struct HeaderOps {
    request_add: Vec<HeaderAdd>,
    request_remove: Vec<HeaderName>,
    response_add: Vec<HeaderAdd>,
    response_remove: Vec<HeaderName>,
    /// A request header value has operators.
    request_formatted: bool,
    /// A response header value has operators.
    response_formatted: bool,
    /// A response header value reads the request (`%REQ(...)%`).
    response_reads_request: bool,
}

fn compile_adds(options: &[HeaderValueOption], at: &str) -> Result<Vec<HeaderAdd>, RouterError> {
    options
        .iter()
        .enumerate()
        .filter_map(|(i, o)| {
            let at = format!("{at}[{i}]");
            let header = o.header.as_ref()?;
            Some((|| {
                let value = AddedValue::compile(header, &at)?;
                // `append` is deprecated but still sent by older control planes; it wins.
                #[allow(deprecated)]
                let append = o.append.as_ref().map(|b| b.value);
                let action = match append {
                    Some(true) => AppendAction::Append,
                    Some(false) => AppendAction::Overwrite,
                    None => match HeaderAppendAction::try_from(o.append_action) {
                        Ok(HeaderAppendAction::AppendIfExistsOrAdd) => AppendAction::Append,
                        Ok(HeaderAppendAction::AddIfAbsent) => AppendAction::AddIfAbsent,
                        Ok(HeaderAppendAction::OverwriteIfExistsOrAdd) => AppendAction::Overwrite,
                        Ok(HeaderAppendAction::OverwriteIfExists) => {
                            AppendAction::OverwriteIfExists
                        }
                        Err(_) => {
                            return Err(RouterError::new(
                                &at,
                                format!("unknown append_action {}", o.append_action),
                            ))
                        }
                    },
                };
                Ok(HeaderAdd {
                    name: header_name(&header.key, &at)?,
                    value,
                    action,
                    keep_empty: o.keep_empty_value,
                })
            })())
        })
        .collect()
}

fn compile_removes(names: &[String], at: &str) -> Result<Vec<HeaderName>, RouterError> {
    names.iter().map(|n| header_name(n, at)).collect()
}

/// Which headers a list of mutations changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Request,
    Response,
}

/// The values of formatted additions, rendered against `headers` as they are now (before any
/// of `add` is made); `None` for literal ones, and for formatted ones without a context
/// (they are then not added).
fn render(
    headers: &HeaderMap,
    add: &[HeaderAdd],
    ctx: Option<&HeaderContext<'_>>,
    side: Side,
) -> Vec<Option<HeaderValue>> {
    let Some(ctx) = ctx else {
        return vec![None; add.len()];
    };
    let empty = HeaderMap::new();
    let (request_headers, response_headers) = match side {
        Side::Request => (headers, &empty),
        Side::Response => (ctx.request_headers.unwrap_or(&empty), headers),
    };
    let host;
    let authority = if ctx.authority.is_empty() {
        host = request_headers
            .get(http::header::HOST)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        host.as_str()
    } else {
        ctx.authority
    };
    let entry = crate::access_log::Entry {
        start: std::time::SystemTime::now(),
        duration: Duration::ZERO,
        request_duration: None,
        response_duration: None,
        protocol: Some(ctx.protocol),
        request: Some(super::matcher::RequestView {
            method: ctx.method,
            authority,
            path: ctx.path,
            scheme: ctx.downstream.scheme,
            headers: request_headers,
        }),
        status: ctx.status,
        response_headers,
        response_trailers: None,
        flags: Default::default(),
        bytes_received: 0,
        bytes_sent: 0,
        upstream_host: None,
        upstream_cluster: None,
        route_name: None,
        downstream: ctx.downstream,
        health_check: false,
    };
    add.iter()
        .map(|h| match &h.value {
            AddedValue::Formatted(format) => {
                HeaderValue::from_str(&format.render_value(&entry)).ok()
            }
            AddedValue::Literal(_) => None,
        })
        .collect()
}

/// Applies one level's removals, then its additions. `formatted` says whether an addition
/// has operators to render (known when the level was compiled: the common, literal case
/// renders nothing).
#[inline]
fn apply(
    headers: &mut HeaderMap,
    remove: &[HeaderName],
    add: &[HeaderAdd],
    formatted: bool,
    ctx: Option<&HeaderContext<'_>>,
    side: Side,
) {
    // Envoy removes before it adds, so a level can replace a header it also removes.
    for name in remove {
        headers.remove(name);
    }
    if add.is_empty() {
        return;
    }
    if formatted {
        let rendered = render(headers, add, ctx, side);
        for (h, value) in add.iter().zip(rendered) {
            let value = match (&h.value, value) {
                (AddedValue::Literal(v), _) => v.clone(),
                (AddedValue::Formatted(_), Some(v)) => v,
                (AddedValue::Formatted(_), None) => continue,
            };
            add_one(headers, h, value);
        }
        return;
    }
    for h in add {
        if let AddedValue::Literal(v) = &h.value {
            add_one(headers, h, v.clone());
        }
    }
}

/// Adds one header as its append action says (an empty value only with `keep_empty_value`).
fn add_one(headers: &mut HeaderMap, h: &HeaderAdd, value: HeaderValue) {
    if value.is_empty() && !h.keep_empty {
        return;
    }
    match h.action {
        AppendAction::Append => {
            headers.append(h.name.clone(), value);
        }
        AppendAction::AddIfAbsent => {
            if !headers.contains_key(&h.name) {
                headers.insert(h.name.clone(), value);
            }
        }
        AppendAction::Overwrite => {
            headers.insert(h.name.clone(), value);
        }
        AppendAction::OverwriteIfExists => {
            if headers.contains_key(&h.name) {
                headers.insert(h.name.clone(), value);
            }
        }
    }
}

/// Whether an addition has operators to render.
fn any_formatted(add: &[HeaderAdd]) -> bool {
    add.iter()
        .any(|h| matches!(h.value, AddedValue::Formatted(_)))
}

impl HeaderOps {
    /// Compiles the four header lists of one level.
    pub(crate) fn compile(
        request_add: &[HeaderValueOption],
        request_remove: &[String],
        response_add: &[HeaderValueOption],
        response_remove: &[String],
        at: &str,
    ) -> Result<Self, RouterError> {
        let response_add = compile_adds(response_add, &format!("{at}.response_headers_to_add"))?;
        let response_reads_request = response_add.iter().any(|h| match &h.value {
            AddedValue::Formatted(format) => format.reads_request_headers(),
            AddedValue::Literal(_) => false,
        });
        let request_add = compile_adds(request_add, &format!("{at}.request_headers_to_add"))?;
        Ok(HeaderOps {
            request_formatted: any_formatted(&request_add),
            response_formatted: any_formatted(&response_add),
            request_add,
            request_remove: compile_removes(
                request_remove,
                &format!("{at}.request_headers_to_remove"),
            )?,
            response_add,
            response_remove: compile_removes(
                response_remove,
                &format!("{at}.response_headers_to_remove"),
            )?,
            response_reads_request,
        })
    }

    /// Whether a response header this level adds reads the request (`%REQ(...)%`): the
    /// request's headers must then be kept for when the answer comes.
    pub fn response_reads_request(&self) -> bool {
        self.response_reads_request
    }

    /// Whether a response header this level adds has operators to render (a
    /// [`HeaderContext`] is then needed).
    pub fn response_formatted(&self) -> bool {
        self.response_formatted
    }

    /// Whether a request header this level adds has operators to render.
    pub fn request_formatted(&self) -> bool {
        self.request_formatted
    }

    /// Whether this level changes nothing.
    pub fn is_empty(&self) -> bool {
        self.request_add.is_empty()
            && self.request_remove.is_empty()
            && self.response_add.is_empty()
            && self.response_remove.is_empty()
    }

    /// Applies the request mutations; operators in values are rendered from `ctx` and the
    /// request's headers (without one, a value with operators is not added).
    pub fn apply_request(&self, headers: &mut HeaderMap, ctx: Option<&HeaderContext<'_>>) {
        apply(
            headers,
            &self.request_remove,
            &self.request_add,
            self.request_formatted,
            ctx,
            Side::Request,
        );
    }

    /// Applies the response mutations; operators in values are rendered from `ctx` (without
    /// one, a value with operators is not added).
    pub fn apply_response(&self, headers: &mut HeaderMap, ctx: Option<&HeaderContext<'_>>) {
        apply(
            headers,
            &self.response_remove,
            &self.response_add,
            self.response_formatted,
            ctx,
            Side::Response,
        );
    }
}

/// One step of an ordered list of header mutations.
#[derive(Debug, Clone)]
enum Mutation {
    Add(HeaderAdd),
    Remove(HeaderName),
    RemoveMatching(super::matcher::StringMatchCase),
}

/// An ordered list of request header mutations, Envoy's
/// `envoy.config.common.mutation_rules.v3.HeaderMutation`s: each adds (as a
/// `HeaderValueOption` says: append, add if absent, overwrite), removes a header by name, or
/// removes the headers whose names match, in the order given. The connection manager's early
/// header mutation (`early_header_mutation_extensions`, Gloo's `earlyHeaderManipulation`)
/// runs them on every request before it is routed.
///
/// ```
/// use envoy_types::pb::envoy::config::common::mutation_rules::v3::{
///     header_mutation::Action, HeaderMutation,
/// };
/// use envoy_types::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption};
/// use gloo_proxy::router::action::{HeaderContext, HeaderMutations};
///
/// let add = HeaderMutation {
///     action: Some(Action::Append(HeaderValueOption {
///         header: Some(HeaderValue { key: "x-tier".into(), value: "gold".into(), ..Default::default() }),
///         ..Default::default()
///     })),
/// };
/// let remove = HeaderMutation { action: Some(Action::Remove("x-debug".into())) };
/// let mutations = HeaderMutations::compile(&[add, remove], "early_header_mutation")?;
///
/// let mut headers = http::HeaderMap::new();
/// headers.insert("x-debug", "1".parse()?);
/// let client = gloo_proxy::proxy::Downstream {
///     remote: "192.0.2.1:5000".parse()?,
///     peer: "192.0.2.1:5000".parse()?,
///     local: "127.0.0.1:8080".parse()?,
///     scheme: "http",
///     client_certificate: None,
/// };
/// let context = HeaderContext {
///     downstream: &client,
///     method: "GET",
///     authority: "shop.example",
///     path: "/",
///     protocol: http::Version::HTTP_11,
///     request_headers: None,
///     status: 0,
/// };
/// mutations.apply(&mut headers, &context);
/// assert_eq!(headers["x-tier"], "gold");
/// assert!(!headers.contains_key("x-debug"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct HeaderMutations {
    steps: Vec<Mutation>,
}

impl HeaderMutations {
    /// Compiles `mutations`; `at` names them in errors. A pseudo-header (`:path`) or `host`
    /// cannot be added, as in Envoy. Removing `host` or `:authority` removes the request's
    /// `host`; removing another pseudo-header, or a name no header can have, does nothing
    /// here (Envoy accepts them; without its `:path` it would answer 404).
    pub fn compile(
        mutations: &[envoy_types::pb::envoy::config::common::mutation_rules::v3::HeaderMutation],
        at: &str,
    ) -> Result<Self, RouterError> {
        use envoy_types::pb::envoy::config::common::mutation_rules::v3::header_mutation::Action;
        let mut steps = Vec::with_capacity(mutations.len());
        for (i, m) in mutations.iter().enumerate() {
            let at = format!("{at}[{i}]");
            let step = match &m.action {
                Some(Action::Append(option)) => {
                    if let Some(h) = &option.header {
                        if h.key.starts_with(':') || h.key.eq_ignore_ascii_case("host") {
                            return Err(RouterError::new(
                                &at,
                                format!("header {:?} cannot be added", h.key),
                            ));
                        }
                    }
                    match compile_adds(std::slice::from_ref(option), &at)?.pop() {
                        Some(add) => Mutation::Add(add),
                        None => return Err(RouterError::new(&at, "an append without a header")),
                    }
                }
                Some(Action::Remove(name)) => {
                    let name = if name.eq_ignore_ascii_case(":authority") {
                        "host"
                    } else {
                        name.as_str()
                    };
                    match HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()) {
                        Ok(name) => Mutation::Remove(name),
                        Err(_) => {
                            tracing::debug!("{at}: removing {name:?} does nothing here");
                            continue;
                        }
                    }
                }
                Some(Action::RemoveOnMatch(on)) => {
                    let Some(matcher) = &on.key_matcher else {
                        return Err(RouterError::new(
                            &at,
                            "remove_on_match without a key_matcher",
                        ));
                    };
                    Mutation::RemoveMatching(super::matcher::StringMatchCase::compile(
                        matcher, &at,
                    )?)
                }
                None => return Err(RouterError::new(&at, "a mutation without an action")),
            };
            steps.push(step);
        }
        Ok(HeaderMutations { steps })
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Applies the mutations to a request's headers, in order; operators in values are
    /// rendered from `ctx` and the request's headers.
    pub fn apply(&self, headers: &mut HeaderMap, ctx: &HeaderContext<'_>) {
        for step in &self.steps {
            match step {
                Mutation::Add(add) => apply(
                    headers,
                    &[],
                    std::slice::from_ref(add),
                    matches!(add.value, AddedValue::Formatted(_)),
                    Some(ctx),
                    Side::Request,
                ),
                Mutation::Remove(name) => {
                    headers.remove(name);
                }
                Mutation::RemoveMatching(matcher) => {
                    let matching: Vec<HeaderName> = headers
                        .keys()
                        .filter(|name| matcher.matches(name.as_str()))
                        .cloned()
                        .collect();
                    for name in matching {
                        headers.remove(&name);
                    }
                }
            }
        }
    }
}

/// Which conditions a retry policy retries on (Envoy's `x-envoy-retry-on` names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryOn {
    /// `5xx`: any 5xx answer, a reset or a connect failure.
    pub server_error: bool,
    /// `gateway-error`: 502, 503 or 504.
    pub gateway_error: bool,
    /// `reset`: the upstream reset or disconnected before answering.
    pub reset: bool,
    /// `connect-failure`: the connection could not be made.
    pub connect_failure: bool,
    /// `retriable-4xx`: 409.
    pub retriable_4xx: bool,
    /// `refused-stream`: an HTTP/2 REFUSED_STREAM.
    pub refused_stream: bool,
    /// `retriable-status-codes`: the listed codes.
    pub status_codes: bool,
}

/// A compiled retry policy.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// The conditions.
    pub on: RetryOn,
    /// Retries after the first attempt.
    pub num_retries: u32,
    /// Timeout of each attempt (none: only the route timeout applies).
    pub per_try_timeout: Option<Duration>,
    /// Codes retried under `retriable-status-codes`.
    pub status_codes: Vec<u16>,
    /// First back-off interval (Envoy's default: 25 ms).
    pub base_interval: Duration,
    /// Longest back-off interval (default: 10 × base).
    pub max_interval: Duration,
}

impl RetryPolicy {
    pub(crate) fn compile(p: &PbRetryPolicy) -> Self {
        let mut on = RetryOn::default();
        for cond in p.retry_on.split(',').map(str::trim) {
            match cond {
                "5xx" => on.server_error = true,
                "gateway-error" => on.gateway_error = true,
                "reset" | "reset-before-request" => on.reset = true,
                "connect-failure" => on.connect_failure = true,
                "retriable-4xx" => on.retriable_4xx = true,
                "refused-stream" => on.refused_stream = true,
                "retriable-status-codes" => on.status_codes = true,
                "" => {}
                other => tracing::debug!("retry condition {other:?} is not supported; ignored"),
            }
        }
        let base = p
            .retry_back_off
            .as_ref()
            .and_then(|b| b.base_interval.as_ref())
            .map(pb_duration)
            .filter(|d| !d.is_zero())
            .unwrap_or(Duration::from_millis(25));
        let max = p
            .retry_back_off
            .as_ref()
            .and_then(|b| b.max_interval.as_ref())
            .map(pb_duration)
            .unwrap_or(base * 10)
            .max(base);
        RetryPolicy {
            on,
            num_retries: p.num_retries.as_ref().map(|n| n.value).unwrap_or(1),
            per_try_timeout: p
                .per_try_timeout
                .as_ref()
                .map(pb_duration)
                .filter(|d| !d.is_zero()),
            status_codes: p
                .retriable_status_codes
                .iter()
                .filter_map(|c| u16::try_from(*c).ok())
                .collect(),
            base_interval: base,
            max_interval: max,
        }
    }

    /// Whether an upstream answer with this status is retried.
    pub fn retries_status(&self, status: StatusCode) -> bool {
        let code = status.as_u16();
        (self.on.server_error && status.is_server_error())
            || (self.on.gateway_error && matches!(code, 502..=504))
            || (self.on.retriable_4xx && code == 409)
            || (self.on.status_codes && self.status_codes.contains(&code))
    }

    /// Whether a failure to connect is retried.
    pub fn retries_connect_failure(&self) -> bool {
        self.on.connect_failure || self.on.server_error || self.on.gateway_error
    }

    /// Whether a reset (or timeout of one attempt) is retried.
    pub fn retries_reset(&self) -> bool {
        self.on.reset || self.on.server_error || self.on.gateway_error
    }

    /// The back-off before retry `n` (1-based): Envoy's fully jittered exponential back-off.
    pub fn backoff(&self, n: u32) -> Duration {
        let ceiling = self
            .base_interval
            .saturating_mul(1u32 << n.saturating_sub(1).min(16))
            .min(self.max_interval);
        let millis = u64::try_from(ceiling.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        Duration::from_millis(fastrand::u64(0..=millis))
    }
}

/// One target of a weighted split.
#[derive(Debug, Clone)]
pub struct WeightedTarget {
    /// The cluster.
    pub cluster: Arc<str>,
    /// Its weight.
    pub weight: u32,
    /// Header mutations of this target.
    pub headers: HeaderOps,
    /// Its per-filter configs (`typed_per_filter_config`), by filter name: the most specific
    /// configs of a request sent to this target.
    pub per_filter: std::collections::HashMap<String, envoy_types::pb::google::protobuf::Any>,
    /// Its subset criteria: its `metadata_match` merged over the route's.
    pub metadata_match: Option<MatchCriteria>,
}

/// A picked target: the cluster, the target's header mutations and subset criteria (weighted
/// targets only).
pub type Target<'a> = (&'a str, Option<&'a HeaderOps>, Option<&'a MatchCriteria>);

/// Which cluster a forwarded request goes to.
#[derive(Debug, Clone)]
pub enum ClusterChoice {
    /// Always this one.
    Single(Arc<str>),
    /// Randomly, by weight.
    Weighted {
        /// The targets.
        targets: Vec<WeightedTarget>,
        /// The sum of their weights.
        total: u64,
    },
    /// The cluster named by this request header.
    Header(HeaderName),
}

impl ClusterChoice {
    /// Picks a target: the cluster name and (for weighted targets) its header mutations and
    /// subset criteria.
    pub fn pick<'a>(&'a self, headers: &'a HeaderMap) -> Option<Target<'a>> {
        match self {
            ClusterChoice::Single(c) => Some((c, None, None)),
            ClusterChoice::Weighted { targets, .. } => {
                let t = &targets[self.pick_weighted()?];
                Some((&t.cluster, Some(&t.headers), t.metadata_match.as_ref()))
            }
            ClusterChoice::Header(name) => headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|c| (c, None, None)),
        }
    }
}

/// The index of one of `weights` picked at random in proportion to its weight (`total`: their
/// sum, computed once by the caller); `None` when they add up to 0. Weighted clusters of
/// routes and of TCP proxies are both picked so.
pub(crate) fn pick_by_weight(weights: impl Iterator<Item = u32>, total: u64) -> Option<usize> {
    if total == 0 {
        return None;
    }
    let mut point = fastrand::u64(0..total);
    for (i, w) in weights.enumerate() {
        let w = u64::from(w);
        if point < w {
            return Some(i);
        }
        point -= w;
    }
    None
}

impl ClusterChoice {
    /// Picks a weighted target at random, by weight: its index (`None` when this is not a
    /// weighted choice or the weights add up to 0).
    pub fn pick_weighted(&self) -> Option<usize> {
        let ClusterChoice::Weighted { targets, total } = self else {
            return None;
        };
        if *total == 0 {
            return None;
        }
        pick_by_weight(targets.iter().map(|t| t.weight), *total)
    }

    /// Weighted target `index` (as [`ClusterChoice::pick_weighted`] picked it): the cluster
    /// name, its header mutations and subset criteria.
    pub fn weighted_target(&self, index: usize) -> Option<Target<'_>> {
        match self {
            ClusterChoice::Weighted { targets, .. } => targets.get(index).map(|t| {
                (
                    t.cluster.as_ref(),
                    Some(&t.headers),
                    t.metadata_match.as_ref(),
                )
            }),
            _ => None,
        }
    }

    /// Whether a weighted target's added headers have operators: request, response, and
    /// response reading the request (`%REQ(...)%`).
    pub(crate) fn header_formats(&self) -> (bool, bool, bool) {
        match self {
            ClusterChoice::Weighted { targets, .. } => (
                targets.iter().any(|t| t.headers.request_formatted()),
                targets.iter().any(|t| t.headers.response_formatted()),
                targets.iter().any(|t| t.headers.response_reads_request()),
            ),
            _ => (false, false, false),
        }
    }

    /// The weighted targets that carry per-filter configs of their own.
    pub fn targets_with_filter_configs(&self) -> impl Iterator<Item = (usize, &WeightedTarget)> {
        let targets: &[WeightedTarget] = match self {
            ClusterChoice::Weighted { targets, .. } => targets,
            _ => &[],
        };
        targets
            .iter()
            .enumerate()
            .filter(|(_, t)| !t.per_filter.is_empty())
    }
}

/// How the Host header is rewritten on the way upstream.
#[derive(Debug, Clone)]
pub enum HostRewrite {
    /// Unchanged.
    None,
    /// To this literal.
    Literal(HeaderValue),
    /// To the chosen endpoint's hostname (DNS clusters).
    Auto,
    /// To the value of this request header, when present.
    Header(HeaderName),
    /// To a regex substitution of the path.
    PathRegex(Regex, String),
}

/// A request mirror.
#[derive(Debug, Clone)]
pub struct Mirror {
    /// The cluster that receives copies.
    pub cluster: Arc<str>,
    /// The share of requests mirrored, per million.
    pub per_million: u32,
    /// Host rewrite for the copy (instead of appending `-shadow`).
    pub host_rewrite: Option<String>,
    /// Keep the host as is instead of appending `-shadow`.
    pub keep_host: bool,
}

/// A forwarding action.
#[derive(Debug, Clone)]
pub struct Forward {
    /// Where.
    pub clusters: ClusterChoice,
    /// Replaces the matched prefix (or the whole path of an exact match).
    pub prefix_rewrite: Option<String>,
    /// Regex substitution on the path (query kept).
    pub regex_rewrite: Option<(Regex, String)>,
    /// Host header rewrite.
    pub host_rewrite: HostRewrite,
    /// Whole-request timeout (none: disabled).
    pub timeout: Option<Duration>,
    /// Idle timeout of the stream.
    pub idle_timeout: Option<Duration>,
    /// Retries (the route's, else the virtual host's).
    pub retry: Option<RetryPolicy>,
    /// Mirrors.
    pub mirrors: Vec<Mirror>,
    /// Append `x-forwarded-host` when the host is rewritten.
    pub append_x_forwarded_host: bool,
    /// How requests are hashed for ring-hash and Maglev clusters (empty: at random).
    pub hash_policies: Vec<super::hash::HashPolicy>,
    /// The route's `rate_limits`, as configured: Envoy's rate limit filter reads them (with
    /// its stage) when it is built for this route.
    pub rate_limits: Vec<envoy_types::pb::envoy::config::route::v3::RateLimit>,
    /// `include_vh_rate_limits` (deprecated in Envoy, still honoured, and what Gloo writes).
    pub include_vh_rate_limits: bool,
    /// The route's subset criteria (`metadata_match` under `envoy.lb`); a weighted target's
    /// own replace them.
    pub metadata_match: Option<MatchCriteria>,
}

fn regex_substitution(
    r: &envoy_types::pb::envoy::r#type::matcher::v3::RegexMatchAndSubstitute,
    at: &str,
) -> Result<(Regex, String), RouterError> {
    let pattern = r
        .pattern
        .as_ref()
        .ok_or_else(|| RouterError::new(at, "regex rewrite without a pattern"))?;
    let regex = Regex::new(&pattern.regex).map_err(|e| RouterError::new(at, e.to_string()))?;
    // RE2 substitutions write groups as \1; the regex crate as ${1}.
    Ok((regex, re2_substitution(&r.substitution)))
}

fn re2_substitution(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(d) if d.is_ascii_digit() => {
                    out.push_str("${");
                    out.push(*d);
                    out.push('}');
                    chars.next();
                }
                Some('\\') => {
                    out.push('\\');
                    chars.next();
                }
                _ => out.push('\\'),
            },
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out
}

impl Forward {
    pub(crate) fn compile(
        a: &RouteAction,
        vhost_retry: Option<&RetryPolicy>,
        at: &str,
    ) -> Result<Self, RouterError> {
        let metadata_match = MatchCriteria::from_metadata(a.metadata_match.as_ref());
        let clusters = match &a.cluster_specifier {
            Some(ClusterSpecifier::Cluster(c)) => ClusterChoice::Single(c.as_str().into()),
            Some(ClusterSpecifier::WeightedClusters(w)) => {
                let targets = w
                    .clusters
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        Ok(WeightedTarget {
                            cluster: c.name.as_str().into(),
                            weight: c.weight.as_ref().map(|w| w.value).unwrap_or(0),
                            headers: HeaderOps::compile(
                                &c.request_headers_to_add,
                                &c.request_headers_to_remove,
                                &c.response_headers_to_add,
                                &c.response_headers_to_remove,
                                &format!("{at}.weighted_clusters.clusters[{i}]"),
                            )?,
                            per_filter: c.typed_per_filter_config.clone(),
                            metadata_match: MatchCriteria::merged(
                                metadata_match.as_ref(),
                                MatchCriteria::from_metadata(c.metadata_match.as_ref()).as_ref(),
                            ),
                        })
                    })
                    .collect::<Result<Vec<_>, RouterError>>()?;
                let total = targets.iter().map(|t| u64::from(t.weight)).sum();
                ClusterChoice::Weighted { targets, total }
            }
            Some(ClusterSpecifier::ClusterHeader(h)) => {
                ClusterChoice::Header(header_name(h, &format!("{at}.cluster_header"))?)
            }
            Some(_) => {
                return Err(RouterError::new(
                    at,
                    "cluster specifier plugins are not supported",
                ))
            }
            None => return Err(RouterError::new(at, "route action without a cluster")),
        };
        let host_rewrite = match &a.host_rewrite_specifier {
            None => HostRewrite::None,
            Some(HostRewriteSpecifier::HostRewriteLiteral(h)) => HostRewrite::Literal(
                HeaderValue::from_str(h)
                    .map_err(|_| RouterError::new(at, format!("invalid host rewrite {h:?}")))?,
            ),
            Some(HostRewriteSpecifier::AutoHostRewrite(b)) if b.value => HostRewrite::Auto,
            Some(HostRewriteSpecifier::AutoHostRewrite(_)) => HostRewrite::None,
            Some(HostRewriteSpecifier::HostRewriteHeader(h)) => {
                HostRewrite::Header(header_name(h, &format!("{at}.host_rewrite_header"))?)
            }
            Some(HostRewriteSpecifier::HostRewrite(_)) => {
                return Err(RouterError::new(
                    at,
                    "host_rewrite substitution formats are not supported",
                ))
            }
            Some(HostRewriteSpecifier::HostRewritePathRegex(r)) => {
                let (regex, sub) = regex_substitution(r, &format!("{at}.host_rewrite_path_regex"))?;
                HostRewrite::PathRegex(regex, sub)
            }
        };
        let timeout = match &a.timeout {
            None => Some(DEFAULT_ROUTE_TIMEOUT),
            Some(d) => Some(pb_duration(d)).filter(|d| !d.is_zero()),
        };
        let mirrors = a
            .request_mirror_policies
            .iter()
            .map(|m| {
                let per_million = crate::builtin::per_million(
                    m.runtime_fraction
                        .as_ref()
                        .and_then(|f| f.default_value.as_ref()),
                );
                Mirror {
                    cluster: m.cluster.as_str().into(),
                    per_million,
                    host_rewrite: (!m.host_rewrite_literal.is_empty())
                        .then(|| m.host_rewrite_literal.clone()),
                    keep_host: m.disable_shadow_host_suffix_append,
                }
            })
            .collect();
        Ok(Forward {
            clusters,
            metadata_match,
            prefix_rewrite: (!a.prefix_rewrite.is_empty()).then(|| a.prefix_rewrite.clone()),
            regex_rewrite: a
                .regex_rewrite
                .as_ref()
                .map(|r| regex_substitution(r, &format!("{at}.regex_rewrite")))
                .transpose()?,
            host_rewrite,
            timeout,
            idle_timeout: a.idle_timeout.as_ref().map(pb_duration),
            retry: match &a.retry_policy {
                Some(p) => Some(RetryPolicy::compile(p)),
                None => vhost_retry.cloned(),
            },
            mirrors,
            append_x_forwarded_host: a.append_x_forwarded_host,
            hash_policies: a
                .hash_policy
                .iter()
                .enumerate()
                .filter_map(|(i, p)| {
                    super::hash::HashPolicy::compile(p, &format!("{at}.hash_policy[{i}]"))
                        .transpose()
                })
                .collect::<Result<_, _>>()?,
            rate_limits: a.rate_limits.clone(),
            #[allow(deprecated)]
            include_vh_rate_limits: a.include_vh_rate_limits.as_ref().is_some_and(|b| b.value),
        })
    }

    /// Whether the Host header becomes the chosen endpoint's hostname.
    pub fn host_rewrite_auto(&self) -> bool {
        matches!(self.host_rewrite, HostRewrite::Auto)
    }

    /// The path sent upstream: `path` (with query) after the prefix or regex rewrite.
    /// `matched_prefix` is how much of the path a prefix matcher consumed (`None` for exact
    /// and regex matchers, where a prefix rewrite replaces the whole path).
    pub fn rewrite_path(&self, path: &str, matched_prefix: Option<usize>) -> Option<String> {
        if let Some(rewrite) = &self.prefix_rewrite {
            let (path_only, query) = split_query(path);
            let rest = match matched_prefix {
                Some(n) if n <= path_only.len() && path_only.is_char_boundary(n) => &path_only[n..],
                Some(_) => "",
                None => "",
            };
            return Some(format!("{rewrite}{rest}{query}"));
        }
        if let Some((regex, sub)) = &self.regex_rewrite {
            let (path_only, query) = split_query(path);
            return Some(format!(
                "{}{query}",
                regex.replace_all(path_only, sub.as_str())
            ));
        }
        None
    }
}

/// Splits a path into the path proper and `?query` (with its `?`).
pub(crate) fn split_query(path: &str) -> (&str, &str) {
    match path.find('?') {
        Some(i) => (&path[..i], &path[i..]),
        None => (path, ""),
    }
}

/// A redirect.
#[derive(Debug, Clone)]
pub struct Redirect {
    scheme: Option<String>,
    host: Option<String>,
    port: Option<u32>,
    path: RedirectPath,
    status: StatusCode,
    strip_query: bool,
}

#[derive(Debug, Clone)]
enum RedirectPath {
    Keep,
    Path(String),
    Prefix(String),
    Regex(Regex, String),
}

impl Redirect {
    pub(crate) fn compile(r: &RedirectAction, at: &str) -> Result<Self, RouterError> {
        let status = match RedirectResponseCode::try_from(r.response_code) {
            Ok(RedirectResponseCode::MovedPermanently) => StatusCode::MOVED_PERMANENTLY,
            Ok(RedirectResponseCode::Found) => StatusCode::FOUND,
            Ok(RedirectResponseCode::SeeOther) => StatusCode::SEE_OTHER,
            Ok(RedirectResponseCode::TemporaryRedirect) => StatusCode::TEMPORARY_REDIRECT,
            Ok(RedirectResponseCode::PermanentRedirect) => StatusCode::PERMANENT_REDIRECT,
            Err(_) => {
                return Err(RouterError::new(
                    at,
                    format!("unknown redirect response code {}", r.response_code),
                ))
            }
        };
        let path = match &r.path_rewrite_specifier {
            None => RedirectPath::Keep,
            Some(PathRewriteSpecifier::PathRedirect(p)) => RedirectPath::Path(p.clone()),
            Some(PathRewriteSpecifier::PrefixRewrite(p)) => RedirectPath::Prefix(p.clone()),
            Some(PathRewriteSpecifier::PathRewrite(_)) => {
                return Err(RouterError::new(
                    at,
                    "path_rewrite substitution formats are not supported",
                ))
            }
            Some(PathRewriteSpecifier::RegexRewrite(rr)) => {
                let (regex, sub) = regex_substitution(rr, &format!("{at}.regex_rewrite"))?;
                RedirectPath::Regex(regex, sub)
            }
        };
        Ok(Redirect {
            scheme: match &r.scheme_rewrite_specifier {
                Some(SchemeRewriteSpecifier::HttpsRedirect(true)) => Some("https".into()),
                Some(SchemeRewriteSpecifier::SchemeRedirect(s)) if !s.is_empty() => {
                    Some(s.to_ascii_lowercase())
                }
                _ => None,
            },
            host: (!r.host_redirect.is_empty()).then(|| r.host_redirect.clone()),
            port: (r.port_redirect != 0).then_some(r.port_redirect),
            path,
            status,
            strip_query: r.strip_query,
        })
    }

    /// The status of the redirect.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The path (with its query) Envoy's router writes into the request's `:path` when it
    /// redirects with a prefix or regex rewrite (its access log reads it); `None` when the
    /// redirect rewrites no path.
    pub fn rewritten_path(&self, path: &str, matched_prefix: Option<usize>) -> Option<String> {
        let (path_only, query) = split_query(path);
        let rewritten = match &self.path {
            RedirectPath::Prefix(p) => {
                let rest = matched_prefix
                    .filter(|n| *n <= path_only.len() && path_only.is_char_boundary(*n))
                    .map(|n| &path_only[n..])
                    .unwrap_or("");
                format!("{p}{rest}")
            }
            RedirectPath::Regex(r, sub) => r.replace_all(path_only, sub.as_str()).into_owned(),
            RedirectPath::Keep | RedirectPath::Path(_) => return None,
        };
        Some(format!("{rewritten}{query}"))
    }

    /// The `location` for a request, computed as Envoy's router does.
    pub fn location(
        &self,
        scheme: &str,
        authority: &str,
        path: &str,
        matched_prefix: Option<usize>,
    ) -> String {
        let new_scheme = self.scheme.as_deref().unwrap_or(scheme);
        let host = match &self.host {
            Some(h) => h.clone(),
            None => {
                // Keep the request's host; drop its port when a port is set, or when the
                // scheme changes and the port was the old scheme's default.
                let (name, port) = split_port(authority);
                let drop_port = port.is_some()
                    && (self.port.is_some()
                        || (new_scheme != scheme
                            && ((scheme == "https" && port == Some("443"))
                                || (scheme == "http" && port == Some("80")))));
                if drop_port {
                    name.to_string()
                } else {
                    authority.to_string()
                }
            }
        };
        let host = match self.port {
            Some(p) => format!("{}:{p}", split_port(&host).0),
            None => host,
        };
        let (path_only, query) = split_query(path);
        let (new_path, new_query) = match &self.path {
            RedirectPath::Keep => (path_only.to_string(), query.to_string()),
            RedirectPath::Path(p) => match p.find('?') {
                Some(i) => (p[..i].to_string(), p[i..].to_string()),
                None => (p.clone(), query.to_string()),
            },
            RedirectPath::Prefix(p) => {
                let rest = matched_prefix
                    .filter(|n| *n <= path_only.len() && path_only.is_char_boundary(*n))
                    .map(|n| &path_only[n..])
                    .unwrap_or("");
                (format!("{p}{rest}"), query.to_string())
            }
            RedirectPath::Regex(r, sub) => (
                r.replace_all(path_only, sub.as_str()).into_owned(),
                query.to_string(),
            ),
        };
        let query = if self.strip_query { "" } else { &new_query };
        format!("{new_scheme}://{host}{new_path}{query}")
    }
}

/// Splits `host:port` (IPv6 literals in brackets respected).
pub(crate) fn split_port(authority: &str) -> (&str, Option<&str>) {
    match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => (&authority[..i], Some(&authority[i + 1..])),
        _ => (authority, None),
    }
}

/// A direct response.
#[derive(Debug, Clone)]
pub struct Direct {
    /// The status.
    pub status: StatusCode,
    /// The body.
    pub body: bytes::Bytes,
}

impl Direct {
    pub(crate) fn compile(d: &DirectResponseAction, at: &str) -> Result<Self, RouterError> {
        let status = u16::try_from(d.status)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .ok_or_else(|| RouterError::new(at, format!("invalid status {}", d.status)))?;
        let body = match d.body.as_ref().and_then(|b| b.specifier.as_ref()) {
            None => bytes::Bytes::new(),
            Some(Specifier::InlineString(s)) => bytes::Bytes::from(s.clone()),
            Some(Specifier::InlineBytes(b)) => bytes::Bytes::from(b.clone()),
            Some(Specifier::Filename(f)) => std::fs::read(f)
                .map(bytes::Bytes::from)
                .map_err(|e| RouterError::new(at, format!("cannot read body file {f}: {e}")))?,
            Some(Specifier::EnvironmentVariable(v)) => {
                std::env::var(v).map(bytes::Bytes::from).map_err(|_| {
                    RouterError::new(at, format!("environment variable {v} is not set"))
                })?
            }
        };
        Ok(Direct { status, body })
    }
}

/// What a route does.
#[derive(Debug, Clone)]
pub enum Action {
    /// Forward upstream.
    Forward(Box<Forward>),
    /// Redirect.
    Redirect(Redirect),
    /// Answer directly.
    Direct(Direct),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_header_mutations_run_in_order_and_leave_pseudo_headers_and_host_alone() {
        use envoy_types::pb::envoy::config::common::mutation_rules::v3::{
            header_mutation::{Action, RemoveOnMatch},
            HeaderMutation,
        };
        use envoy_types::pb::envoy::config::core::v3::HeaderValue as PbValue;
        use envoy_types::pb::envoy::r#type::matcher::v3::{string_matcher, StringMatcher};
        let add = |key: &str, value: &str, action: HeaderAppendAction| HeaderMutation {
            action: Some(Action::Append(HeaderValueOption {
                header: Some(PbValue {
                    key: key.into(),
                    value: value.into(),
                    ..Default::default()
                }),
                append_action: action as i32,
                ..Default::default()
            })),
        };
        let downstream = crate::proxy::Downstream {
            remote: "203.0.113.7:4242".parse().unwrap(),
            peer: "203.0.113.7:4242".parse().unwrap(),
            local: "127.0.0.1:8080".parse().unwrap(),
            client_certificate: None,
            scheme: "http",
        };
        let context = HeaderContext {
            downstream: &downstream,
            method: "GET",
            authority: "",
            path: "/p?q=1",
            protocol: http::Version::HTTP_11,
            request_headers: None,
            status: 0,
        };
        let mutations = HeaderMutations::compile(
            &[
                add("x-a", "1", HeaderAppendAction::AppendIfExistsOrAdd),
                // Operators are substituted as Envoy substitutes them; `%%` is a `%`, and a
                // value that comes out empty is not added.
                add(
                    "x-client",
                    "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% via %REQ(:AUTHORITY)%%REQ(:PATH)%",
                    HeaderAppendAction::AppendIfExistsOrAdd,
                ),
                add("x-share", "100%%", HeaderAppendAction::AppendIfExistsOrAdd),
                add(
                    "x-none",
                    "%REQ(x-absent)%",
                    HeaderAppendAction::AppendIfExistsOrAdd,
                ),
                add("x-b", "new", HeaderAppendAction::OverwriteIfExistsOrAdd),
                add("x-c", "kept?", HeaderAppendAction::AddIfAbsent),
                HeaderMutation {
                    action: Some(Action::Remove("x-gone".into())),
                },
                HeaderMutation {
                    action: Some(Action::RemoveOnMatch(RemoveOnMatch {
                        key_matcher: Some(StringMatcher {
                            match_pattern: Some(string_matcher::MatchPattern::Prefix(
                                "x-debug-".into(),
                            )),
                            ignore_case: false,
                        }),
                    })),
                },
                // Added after the removal above: it stays.
                add("x-gone", "back", HeaderAppendAction::AppendIfExistsOrAdd),
            ],
            "early",
        )
        .expect("compiles");
        let mut headers = HeaderMap::new();
        for (k, v) in [
            ("x-a", "0"),
            ("x-b", "old"),
            ("x-c", "mine"),
            ("x-gone", "x"),
            ("x-debug-one", "1"),
            ("x-debug-two", "2"),
            ("host", "h"),
        ] {
            headers.append(k, HeaderValue::from_static(v));
        }
        mutations.apply(&mut headers, &context);
        let all = |name: &str| -> Vec<&str> {
            headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect()
        };
        assert_eq!(all("x-a"), ["0", "1"]);
        assert_eq!(all("x-b"), ["new"]);
        assert_eq!(all("x-c"), ["mine"]);
        assert_eq!(all("x-gone"), ["back"]);
        assert!(all("x-debug-one").is_empty() && all("x-debug-two").is_empty());
        assert_eq!(all("host"), ["h"]);
        assert_eq!(all("x-client"), ["203.0.113.7 via h/p?q=1"]);
        assert_eq!(all("x-share"), ["100%"]);
        assert!(all("x-none").is_empty());

        // Adding a pseudo-header or `host` is refused, as Envoy refuses it.
        for refused in [":path", "host", "Host"] {
            let error = HeaderMutations::compile(
                &[add(refused, "x", HeaderAppendAction::AppendIfExistsOrAdd)],
                "early",
            )
            .expect_err(refused)
            .to_string();
            assert!(
                error.contains("early[0]") && error.contains(refused),
                "{error}"
            );
        }
        // Removing `:authority` removes `host`, as in Envoy; a name no header can have is
        // accepted and does nothing.
        let removals = HeaderMutations::compile(
            &[
                HeaderMutation {
                    action: Some(Action::Remove(":authority".into())),
                },
                HeaderMutation {
                    action: Some(Action::Remove("not a name".into())),
                },
            ],
            "early",
        )
        .expect("Envoy accepts these");
        removals.apply(&mut headers, &context);
        assert!(headers.get("host").is_none());
    }

    #[test]
    fn re2_substitutions_become_regex_crate_syntax() {
        assert_eq!(re2_substitution("/v2/\\1/x"), "/v2/${1}/x");
        assert_eq!(re2_substitution("a$b"), "a$$b");
    }

    #[test]
    fn redirect_drops_default_port_when_scheme_changes() {
        let r = Redirect {
            scheme: Some("https".into()),
            host: None,
            port: None,
            path: RedirectPath::Keep,
            status: StatusCode::MOVED_PERMANENTLY,
            strip_query: false,
        };
        assert_eq!(
            r.location("http", "a.example:80", "/x?y=1", None),
            "https://a.example/x?y=1"
        );
        assert_eq!(
            r.location("http", "a.example:8080", "/x", None),
            "https://a.example:8080/x"
        );
    }
}
