//! Building descriptors from a request: Envoy's route `rate_limits` actions.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::Request;

use super::config::{RateLimit, Unit};
use super::request::{DescriptorEntry, RateLimitDescriptor, SET_DESCRIPTOR_VALUE};
use crate::metadata::{DynamicMetadata, RouteMetadata};
use crate::ratelimit::RequestHead;

/// Builds the descriptors the limiter is asked about, from the request head.
///
/// Envoy's rate limit filter builds them from the route's `rate_limits`: use
/// [`RateLimitPolicy`] for that, [`DescriptorFn`] for anything else, or implement the trait.
/// A request with no descriptor is not rate limited (and the limiter is not called).
pub trait DescriptorExtractor {
    /// The descriptors of `req`, in order.
    fn extract<B>(&self, req: &Request<B>) -> Vec<RateLimitDescriptor>;
}

/// A header condition of [`RateLimitActions::header_value_match`] (Envoy's `HeaderMatcher`
/// without regexes). A header with several values is matched on the values joined by `,`,
/// as Envoy does. Names compare case-insensitively; a name that is not a valid header name
/// never matches a present header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderMatch {
    /// Lower-cased, as header names compare case-insensitively.
    name: String,
    kind: HeaderMatchKind,
    invert: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum HeaderMatchKind {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    Present(bool),
}

impl HeaderMatch {
    fn new(name: impl Into<String>, kind: HeaderMatchKind) -> Self {
        Self {
            name: name.into().to_ascii_lowercase(),
            kind,
            invert: false,
        }
    }

    /// The header's value equals `value`.
    pub fn exact(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self::new(name, HeaderMatchKind::Exact(value.into()))
    }

    /// The header's value starts with `prefix`.
    pub fn prefix(name: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self::new(name, HeaderMatchKind::Prefix(prefix.into()))
    }

    /// The header's value ends with `suffix`.
    pub fn suffix(name: impl Into<String>, suffix: impl Into<String>) -> Self {
        Self::new(name, HeaderMatchKind::Suffix(suffix.into()))
    }

    /// The header's value contains `needle`.
    pub fn contains(name: impl Into<String>, needle: impl Into<String>) -> Self {
        Self::new(name, HeaderMatchKind::Contains(needle.into()))
    }

    /// The header is present (`true`) or absent (`false`).
    pub fn present(name: impl Into<String>, present: bool) -> Self {
        Self::new(name, HeaderMatchKind::Present(present))
    }

    /// Inverts the result (Envoy's `invert_match`).
    pub fn invert(mut self, invert: bool) -> Self {
        self.invert = invert;
        self
    }

    fn matches(&self, head: &RequestHead<'_>) -> bool {
        let mut values = head.headers().get_all(self.name.as_str()).iter().peekable();
        let result = match &self.kind {
            HeaderMatchKind::Present(present) => values.peek().is_some() == *present,
            kind => {
                if values.peek().is_none() {
                    // Envoy: a value matcher never matches an absent header, inverted or not.
                    return false;
                }
                let joined = values
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                    .collect::<Vec<_>>()
                    .join(",");
                match kind {
                    HeaderMatchKind::Exact(v) => joined == *v,
                    HeaderMatchKind::Prefix(p) => joined.starts_with(p.as_str()),
                    HeaderMatchKind::Suffix(s) => joined.ends_with(s.as_str()),
                    HeaderMatchKind::Contains(n) => joined.contains(n.as_str()),
                    HeaderMatchKind::Present(_) => true,
                }
            }
        };
        result != self.invert
    }
}

/// The closure of [`RateLimitActions::entry_fn`].
type EntryFn = Arc<dyn Fn(&RequestHead<'_>) -> Option<String> + Send + Sync>;

#[derive(Clone)]
enum Action {
    RemoteAddress,
    Custom {
        key: String,
        value: EntryFn,
    },
    RequestHeader {
        /// Lower-cased.
        header: String,
        key: String,
        skip_if_absent: bool,
    },
    GenericKey {
        key: String,
        value: String,
    },
    HeaderValueMatch {
        key: String,
        value: String,
        expect_match: bool,
        headers: Vec<HeaderMatch>,
    },
    Metadata(MetadataAction),
}

/// Envoy's `metadata` rate limit action with `source: DYNAMIC` (and the deprecated
/// `dynamic_metadata` action): `(descriptor_key, <the string at the metadata key>)`, read from
/// the request's [`DynamicMetadata`](crate::metadata::DynamicMetadata) extension (where the
/// `jwt` layer puts a verified payload with `payload_in_metadata`). As Envoy's
/// `MetaDataAction`: only a non-empty string value counts; otherwise the `default_value` if
/// set, else the entry is skipped with `skip_if_absent`, else no descriptor.
///
/// ```
/// use gloo_filters::metadata::DynamicMetadata;
/// use gloo_filters::ratelimit::global::{DescriptorExtractor, MetadataAction, RateLimitActions, RateLimitPolicy};
///
/// let org = MetadataAction::new("org", "envoy.filters.http.jwt_authn").path(["principal", "org"]);
/// let policy = RateLimitPolicy::new().rate_limit(RateLimitActions::new().metadata(org));
///
/// let mut metadata = DynamicMetadata::default();
/// metadata.set("envoy.filters.http.jwt_authn", "principal", serde_json::json!({"org": "acme"}));
/// let mut req = http::Request::get("/").body(()).unwrap();
/// req.extensions_mut().insert(metadata);
/// assert_eq!(policy.extract(&req)[0].entries()[0].value, "acme");
/// // No token, no metadata: no descriptor.
/// assert!(policy.extract(&http::Request::get("/").body(()).unwrap()).is_empty());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataAction {
    descriptor_key: String,
    namespace: String,
    path: Vec<String>,
    default_value: String,
    skip_if_absent: bool,
    from_route: bool,
}

impl MetadataAction {
    /// The entry `descriptor_key`, read from `namespace` (`metadata_key.key`).
    pub fn new(descriptor_key: impl Into<String>, namespace: impl Into<String>) -> Self {
        Self {
            descriptor_key: descriptor_key.into(),
            namespace: namespace.into(),
            path: Vec::new(),
            default_value: String::new(),
            skip_if_absent: false,
            from_route: false,
        }
    }

    /// Read the matched route's metadata ([`RouteMetadata`], Envoy's `source: ROUTE_ENTRY`)
    /// instead of the request's dynamic metadata (`source: DYNAMIC`, the default).
    ///
    /// ```
    /// use gloo_filters::metadata::{DynamicMetadata, RouteMetadata};
    /// use gloo_filters::ratelimit::global::{DescriptorExtractor, MetadataAction, RateLimitActions, RateLimitPolicy};
    ///
    /// let team = MetadataAction::new("team", "com.example").path(["team"]).route_entry();
    /// let policy = RateLimitPolicy::new().rate_limit(RateLimitActions::new().metadata(team));
    ///
    /// let mut values = DynamicMetadata::default();
    /// values.set("com.example", "team", "payments".into());
    /// let mut req = http::Request::get("/").body(()).unwrap();
    /// req.extensions_mut().insert(RouteMetadata::new(values));
    /// assert_eq!(policy.extract(&req)[0].entries()[0].value, "payments");
    /// ```
    pub fn route_entry(mut self) -> Self {
        self.from_route = true;
        self
    }

    /// The keys leading to the value within the namespace (`metadata_key.path`).
    pub fn path<I, S>(mut self, path: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.path = path.into_iter().map(Into::into).collect();
        self
    }

    /// The value used when the metadata has no non-empty string there (`default_value`;
    /// empty: none).
    pub fn default_value(mut self, value: impl Into<String>) -> Self {
        self.default_value = value.into();
        self
    }

    /// Without a value (nor default), drop only this entry instead of the descriptor
    /// (`skip_if_absent`).
    pub fn skip_if_absent(mut self, skip: bool) -> Self {
        self.skip_if_absent = skip;
        self
    }

    /// `Some(Some(value))`: the entry; `Some(None)`: skip it; `None`: no descriptor.
    fn value(&self, head: &RequestHead<'_>) -> Option<Option<String>> {
        let extensions = head.extensions();
        let metadata = if self.from_route {
            extensions.get::<RouteMetadata>().map(|m| &**m)
        } else {
            extensions.get::<DynamicMetadata>()
        };
        let found = metadata
            .and_then(|m| m.lookup(&self.namespace, &self.path))
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty());
        match found {
            Some(v) => Some(Some(v.to_owned())),
            None if !self.default_value.is_empty() => Some(Some(self.default_value.clone())),
            None if self.skip_if_absent => Some(None),
            None => None,
        }
    }
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::RemoteAddress => f.write_str("RemoteAddress"),
            Action::Custom { key, .. } => write!(f, "Custom({key})"),
            Action::RequestHeader { header, key, .. } => {
                write!(f, "RequestHeader({header} -> {key})")
            }
            Action::GenericKey { key, value } => write!(f, "GenericKey({key}={value})"),
            Action::HeaderValueMatch { key, value, .. } => {
                write!(f, "HeaderValueMatch({key}={value})")
            }
            Action::Metadata(m) => write!(f, "Metadata({} -> {})", m.namespace, m.descriptor_key),
        }
    }
}

/// One Envoy `rate_limits` item: actions applied in order, each appending one entry to one
/// descriptor. If an action cannot produce its entry (a missing header, a header match that
/// fails), **no descriptor** is produced, as in Envoy.
///
/// ```
/// use std::net::SocketAddr;
/// use gloo_filters::ratelimit::global::{DescriptorExtractor, RateLimitActions, RateLimitPolicy};
///
/// let policy = RateLimitPolicy::new()
///     .rate_limit(RateLimitActions::new().generic_key("api").remote_address())
///     .rate_limit(RateLimitActions::new().request_header("x-user", "user"));
///
/// let mut req = http::Request::builder().header("x-user", "alice").body(()).unwrap();
/// req.extensions_mut().insert(SocketAddr::from(([192, 0, 2, 7], 4000)));
/// let descriptors = policy.extract(&req);
/// assert_eq!(descriptors.len(), 2);
/// assert_eq!(descriptors[0].entries()[1].value, "192.0.2.7");
/// assert_eq!(descriptors[1].entries()[0].key, "user");
/// ```
#[derive(Clone, Debug, Default)]
pub struct RateLimitActions {
    actions: Vec<Action>,
    set_style: bool,
    hits_addend: Option<u64>,
    limit: Option<LimitOverride>,
}

/// Where a descriptor's limit override comes from.
#[derive(Clone, Debug)]
enum LimitOverride {
    /// Always this limit.
    Fixed(RateLimit),
    /// The struct at this namespace and path of the dynamic metadata, if any.
    Metadata(String, Vec<String>),
}

impl RateLimitActions {
    /// No actions yet (Envoy's `actions`, an ordered tuple).
    pub fn new() -> Self {
        Self::default()
    }

    /// Gloo's `setActions`: the descriptor starts with `("generic_key",
    /// "solo.setDescriptor.uniqueValue")`, so the server matches it against set-style rules,
    /// and missing request headers only drop their own entry (Gloo sets `skip_if_absent`).
    pub fn set_style() -> Self {
        Self {
            actions: vec![Action::GenericKey {
                key: "generic_key".into(),
                value: SET_DESCRIPTOR_VALUE.into(),
            }],
            set_style: true,
            hits_addend: None,
            limit: None,
        }
    }

    /// The descriptor's limit comes from dynamic metadata when the request has one there
    /// (Envoy's `RateLimit.limit.dynamic_metadata`, Gloo's `RateLimitActions.limit`): a struct
    /// at `namespace` / `path` with a number `requests_per_unit` and a string `unit`
    /// (`"SECOND"` ... `"YEAR"`) overrides the server's configured limit for that descriptor.
    /// Anything else there (or nothing) leaves the descriptor without an override, as in Envoy.
    ///
    /// ```
    /// use gloo_filters::metadata::DynamicMetadata;
    /// use gloo_filters::ratelimit::global::{DescriptorExtractor, RateLimitActions, RateLimitPolicy};
    ///
    /// let policy = RateLimitPolicy::new().rate_limit(
    ///     RateLimitActions::new()
    ///         .generic_key("api")
    ///         .limit_from_metadata("envoy.filters.http.jwt_authn", ["principal", "rate"]),
    /// );
    /// let mut metadata = DynamicMetadata::default();
    /// metadata.set(
    ///     "envoy.filters.http.jwt_authn",
    ///     "principal",
    ///     serde_json::json!({"rate": {"requests_per_unit": 5, "unit": "MINUTE"}}),
    /// );
    /// let mut req = http::Request::get("/").body(()).unwrap();
    /// req.extensions_mut().insert(metadata);
    /// let limit = policy.extract(&req)[0].limit().cloned().expect("an override");
    /// assert_eq!(limit.requests_per_unit(), 5);
    /// ```
    pub fn limit_from_metadata<I, S>(mut self, namespace: impl Into<String>, path: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.limit = Some(LimitOverride::Metadata(
            namespace.into(),
            path.into_iter().map(Into::into).collect(),
        ));
        self
    }

    /// The descriptor always carries this limit override (Envoy's `RateLimit.limit.rate_limit`,
    /// a static override), used by the server instead of its configured rules.
    ///
    /// ```
    /// use gloo_filters::ratelimit::global::{DescriptorExtractor, RateLimit, RateLimitActions, RateLimitPolicy, Unit};
    ///
    /// let policy = RateLimitPolicy::new()
    ///     .rate_limit(RateLimitActions::new().generic_key("api").limit(RateLimit::new(9, Unit::Hour)));
    /// let req = http::Request::get("/").body(()).unwrap();
    /// assert_eq!(policy.extract(&req)[0].limit(), Some(&RateLimit::new(9, Unit::Hour)));
    /// ```
    pub fn limit(mut self, limit: RateLimit) -> Self {
        self.limit = Some(LimitOverride::Fixed(limit));
        self
    }

    /// The limit override of `head`'s descriptor, if any.
    fn limit_override(&self, head: &RequestHead<'_>) -> Option<RateLimit> {
        let (namespace, path) = match self.limit.as_ref()? {
            LimitOverride::Fixed(limit) => return Some(limit.clone()),
            LimitOverride::Metadata(namespace, path) => (namespace, path),
        };
        let found = head
            .extensions()
            .get::<DynamicMetadata>()?
            .lookup(namespace, path)?
            .as_object()?;
        let requests = found.get("requests_per_unit")?.as_f64()?;
        let unit = Unit::from_envoy_name(found.get("unit")?.as_str()?)?;
        // Envoy casts the double to uint32; out-of-range values (undefined there) are ignored.
        if !(0.0..=f64::from(u32::MAX)).contains(&requests) {
            return None;
        }
        Some(RateLimit::new(requests as u32, unit))
    }

    /// How much the descriptor counts (Envoy's `RateLimit.hits_addend.number`); without it,
    /// the request's `hits_addend` (1).
    pub fn hits_addend(mut self, hits: u64) -> Self {
        self.hits_addend = Some(hits);
        self
    }

    /// `(descriptor_key, f(head))`: an entry computed from the request head; `None` produces
    /// no descriptor, as an action that cannot produce its entry in Envoy. For what the other
    /// actions do not cover: a router's `destination_cluster` (the cluster its route picked),
    /// a `header_value_match` with the router's own header matchers, and so on.
    ///
    /// ```
    /// use gloo_filters::ratelimit::global::{DescriptorExtractor, RateLimitActions, RateLimitPolicy};
    ///
    /// // ("method", <the request method>), only for writes.
    /// let writes = RateLimitActions::new().entry_fn("method", |head| {
    ///     (head.method() != http::Method::GET).then(|| head.method().to_string())
    /// });
    /// let policy = RateLimitPolicy::new().rate_limit(writes);
    /// assert!(policy.extract(&http::Request::get("/").body(()).unwrap()).is_empty());
    /// let post = http::Request::post("/").body(()).unwrap();
    /// assert_eq!(policy.extract(&post)[0].entries()[0].value, "POST");
    /// ```
    pub fn entry_fn(
        mut self,
        descriptor_key: impl Into<String>,
        f: impl Fn(&RequestHead<'_>) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.actions.push(Action::Custom {
            key: descriptor_key.into(),
            value: Arc::new(f),
        });
        self
    }

    /// `("remote_address", <client IP>)`. The client address is read from the request
    /// extensions: a [`SocketAddr`] (its IP) or an [`IpAddr`], inserted by the server (axum's
    /// `ConnectInfo` can be mapped to either). No address: no descriptor.
    pub fn remote_address(mut self) -> Self {
        self.actions.push(Action::RemoteAddress);
        self
    }

    /// `(descriptor_key, <value of header_name>)`. Header absent: no descriptor (unless
    /// set-style).
    pub fn request_header(
        mut self,
        header_name: impl Into<String>,
        descriptor_key: impl Into<String>,
    ) -> Self {
        self.actions.push(Action::RequestHeader {
            header: header_name.into().to_ascii_lowercase(),
            key: descriptor_key.into(),
            skip_if_absent: false,
        });
        self
    }

    /// Like [`request_header`](Self::request_header) with Envoy's `skip_if_absent: true`: an
    /// absent header drops only this entry.
    pub fn request_header_skip_if_absent(
        mut self,
        header_name: impl Into<String>,
        descriptor_key: impl Into<String>,
    ) -> Self {
        self.actions.push(Action::RequestHeader {
            header: header_name.into().to_ascii_lowercase(),
            key: descriptor_key.into(),
            skip_if_absent: true,
        });
        self
    }

    /// `("generic_key", value)`.
    pub fn generic_key(self, value: impl Into<String>) -> Self {
        self.generic_key_with("generic_key", value)
    }

    /// `(descriptor_key, value)`: Envoy's `generic_key` with `descriptor_key` set.
    pub fn generic_key_with(
        mut self,
        descriptor_key: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.actions.push(Action::GenericKey {
            key: descriptor_key.into(),
            value: value.into(),
        });
        self
    }

    /// `("header_match", value)` when every header condition holds (with `expect_match =
    /// true`) or when not all hold (`false`); otherwise no descriptor.
    pub fn header_value_match(
        mut self,
        value: impl Into<String>,
        expect_match: bool,
        headers: impl IntoIterator<Item = HeaderMatch>,
    ) -> Self {
        self.actions.push(Action::HeaderValueMatch {
            key: "header_match".into(),
            value: value.into(),
            expect_match,
            headers: headers.into_iter().collect(),
        });
        self
    }

    /// `(descriptor_key, <dynamic metadata value>)`: see [`MetadataAction`].
    pub fn metadata(mut self, action: MetadataAction) -> Self {
        self.actions.push(Action::Metadata(action));
        self
    }

    /// The descriptor of `head`, or `None` when an action cannot produce its entry.
    pub fn descriptor(&self, head: &RequestHead<'_>) -> Option<RateLimitDescriptor> {
        let mut descriptor = RateLimitDescriptor::new();
        for action in &self.actions {
            match action {
                Action::RemoteAddress => {
                    let extensions = head.extensions();
                    let ip = extensions
                        .get::<SocketAddr>()
                        .map(SocketAddr::ip)
                        .or_else(|| extensions.get::<IpAddr>().copied())?;
                    descriptor.push(DescriptorEntry::new("remote_address", ip.to_string()));
                }
                Action::Custom { key, value } => {
                    descriptor.push(DescriptorEntry::new(key.clone(), value(head)?));
                }
                Action::RequestHeader {
                    header,
                    key,
                    skip_if_absent,
                } => match head.headers().get(header.as_str()) {
                    Some(value) => descriptor.push(DescriptorEntry::new(
                        key.clone(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )),
                    None if *skip_if_absent || self.set_style => {}
                    None => return None,
                },
                Action::GenericKey { key, value } => {
                    descriptor.push(DescriptorEntry::new(key.clone(), value.clone()));
                }
                Action::HeaderValueMatch {
                    key,
                    value,
                    expect_match,
                    headers,
                } => {
                    let all = headers.iter().all(|h| h.matches(head));
                    if all != *expect_match {
                        return None;
                    }
                    descriptor.push(DescriptorEntry::new(key.clone(), value.clone()));
                }
                Action::Metadata(m) => {
                    if let Some(value) = m.value(head)? {
                        descriptor.push(DescriptorEntry::new(m.descriptor_key.clone(), value));
                    }
                }
            }
        }
        if descriptor.entries.is_empty() {
            return None;
        }
        descriptor.hits_addend = self.hits_addend;
        descriptor.limit = self.limit_override(head);
        Some(descriptor)
    }
}

/// The `rate_limits` of a route: each [`RateLimitActions`] yields at most one descriptor.
#[derive(Clone, Debug, Default)]
pub struct RateLimitPolicy {
    rate_limits: Vec<RateLimitActions>,
}

impl RateLimitPolicy {
    /// No rate limits yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one rate limit configuration.
    pub fn rate_limit(mut self, actions: RateLimitActions) -> Self {
        self.rate_limits.push(actions);
        self
    }
}

impl DescriptorExtractor for RateLimitPolicy {
    fn extract<B>(&self, req: &Request<B>) -> Vec<RateLimitDescriptor> {
        let head = RequestHead::new(req);
        self.rate_limits
            .iter()
            .filter_map(|rl| rl.descriptor(&head))
            .collect()
    }
}

/// A [`DescriptorExtractor`] from a closure over the [`RequestHead`].
///
/// ```
/// use gloo_filters::ratelimit::global::{DescriptorExtractor, DescriptorFn, RateLimitDescriptor};
///
/// let by_path = DescriptorFn::new(|head| {
///     vec![RateLimitDescriptor::new().entry("path", head.uri().path())]
/// });
/// let req = http::Request::get("/orders").body(()).unwrap();
/// assert_eq!(by_path.extract(&req)[0].entries()[0].value, "/orders");
/// ```
#[derive(Clone, Copy)]
pub struct DescriptorFn<F> {
    f: F,
}

impl<F> DescriptorFn<F>
where
    F: Fn(&RequestHead<'_>) -> Vec<RateLimitDescriptor>,
{
    /// Wraps `f`.
    pub fn new(f: F) -> Self {
        Self { f }
    }
}

impl<F> DescriptorExtractor for DescriptorFn<F>
where
    F: Fn(&RequestHead<'_>) -> Vec<RateLimitDescriptor>,
{
    fn extract<B>(&self, req: &Request<B>) -> Vec<RateLimitDescriptor> {
        (self.f)(&RequestHead::new(req))
    }
}

impl<F> fmt::Debug for DescriptorFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DescriptorFn").finish_non_exhaustive()
    }
}
