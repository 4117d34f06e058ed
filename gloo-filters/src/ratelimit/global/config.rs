//! The limiter's configuration: a domain with a tree of descriptors and a list of set-style
//! descriptors, as the rate limit server reads them.

use std::fmt;

/// The time unit of a [`RateLimit`]: the length of its fixed window.
///
/// The numeric values are those of Envoy's `RateLimitResponse.RateLimit.Unit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Unit {
    /// One second.
    Second,
    /// One minute.
    Minute,
    /// One hour.
    Hour,
    /// One day (86,400 s).
    Day,
    /// One week (7 days).
    Week,
    /// One month, counted as 30 days (as envoyproxy/ratelimit does).
    Month,
    /// One year, counted as 365 days.
    Year,
}

impl Unit {
    /// The window length in seconds (envoyproxy/ratelimit's `UnitToDivider`).
    pub const fn seconds(self) -> u64 {
        match self {
            Unit::Second => 1,
            Unit::Minute => 60,
            Unit::Hour => 60 * 60,
            Unit::Day => 24 * 60 * 60,
            Unit::Week => 7 * 24 * 60 * 60,
            Unit::Month => 30 * 24 * 60 * 60,
            Unit::Year => 365 * 24 * 60 * 60,
        }
    }

    /// Envoy's enum value (`RateLimitResponse.RateLimit.Unit`): `SECOND = 1` ... `WEEK = 7`.
    pub const fn envoy_value(self) -> i32 {
        match self {
            Unit::Second => 1,
            Unit::Minute => 2,
            Unit::Hour => 3,
            Unit::Day => 4,
            Unit::Month => 5,
            Unit::Year => 6,
            Unit::Week => 7,
        }
    }

    /// The unit of an Envoy enum name (`"SECOND"` ... `"YEAR"`, as a limit override in dynamic
    /// metadata spells it); `None` for `"UNKNOWN"` and anything else.
    ///
    /// ```
    /// use gloo_filters::ratelimit::global::Unit;
    ///
    /// assert_eq!(Unit::from_envoy_name("MINUTE"), Some(Unit::Minute));
    /// assert_eq!(Unit::from_envoy_name("minute"), None);
    /// ```
    pub fn from_envoy_name(name: &str) -> Option<Self> {
        Some(match name {
            "SECOND" => Unit::Second,
            "MINUTE" => Unit::Minute,
            "HOUR" => Unit::Hour,
            "DAY" => Unit::Day,
            "WEEK" => Unit::Week,
            "MONTH" => Unit::Month,
            "YEAR" => Unit::Year,
            _ => return None,
        })
    }

    /// The unit of an Envoy enum value; `None` for `UNKNOWN` (0) and unknown values.
    pub const fn from_envoy_value(value: i32) -> Option<Self> {
        Some(match value {
            1 => Unit::Second,
            2 => Unit::Minute,
            3 => Unit::Hour,
            4 => Unit::Day,
            5 => Unit::Month,
            6 => Unit::Year,
            7 => Unit::Week,
            _ => return None,
        })
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unit::Second => "SECOND",
            Unit::Minute => "MINUTE",
            Unit::Hour => "HOUR",
            Unit::Day => "DAY",
            Unit::Week => "WEEK",
            Unit::Month => "MONTH",
            Unit::Year => "YEAR",
        })
    }
}

/// `requests_per_unit` requests per [`Unit`], counted in fixed windows.
///
/// ```
/// use gloo_filters::ratelimit::global::{RateLimit, Unit};
/// let limit = RateLimit::new(10, Unit::Minute).name("per-user");
/// assert_eq!(limit.requests_per_unit(), 10);
/// assert_eq!(limit.get_name(), Some("per-user"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RateLimit {
    requests_per_unit: u32,
    unit: Unit,
    name: Option<String>,
}

impl RateLimit {
    /// `requests_per_unit` per `unit`. A limit of 0 is refused when the domain is built (Gloo
    /// requires `requestsPerUnit > 0`).
    pub fn new(requests_per_unit: u32, unit: Unit) -> Self {
        Self {
            requests_per_unit,
            unit,
            name: None,
        }
    }

    /// A name for the limit, reported in `current_limit.name` and in the quota policy of
    /// `x-ratelimit-limit` (`;name="..."`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Requests allowed per window.
    pub fn requests_per_unit(&self) -> u32 {
        self.requests_per_unit
    }

    /// The window.
    pub fn unit(&self) -> Unit {
        self.unit
    }

    /// The limit's name, if it has one.
    pub fn get_name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

/// What a matching descriptor does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Rule {
    Limit(RateLimit),
    Unlimited,
}

/// One node of a domain's descriptor tree (envoyproxy/ratelimit's and Gloo's `Descriptor`).
///
/// A request descriptor `[(k1, v1), (k2, v2)]` walks the tree one entry per level: at each
/// level the node `key = k, value = v` wins over a node with only `key = k` (which matches
/// every value, each value counted separately). A value containing `*` is a wildcard
/// (`*` matches any run of characters), tried after exact values and before key-only nodes.
/// The limit applied is the one of the node reached by the **last** entry; a limit on an
/// intermediate node does not apply to longer descriptors.
///
/// ```
/// use gloo_filters::ratelimit::global::{Descriptor, RateLimit, Unit};
///
/// // 10 per minute per user, 100 per minute for the user "admin".
/// let per_user = Descriptor::new("user")
///     .rate_limit(RateLimit::new(10, Unit::Minute));
/// let admin = Descriptor::new("user")
///     .value("admin")
///     .rate_limit(RateLimit::new(100, Unit::Minute));
/// # let _ = (per_user, admin);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    pub(crate) key: String,
    pub(crate) value: Option<String>,
    pub(crate) rule: Option<Rule>,
    pub(crate) shadow_mode: bool,
    pub(crate) weight: u32,
    pub(crate) always_apply: bool,
    pub(crate) descriptors: Vec<Descriptor>,
}

impl Descriptor {
    /// A node matching entries with this key (any value until [`value`](Self::value) is set).
    pub fn new(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: None,
            rule: None,
            shadow_mode: false,
            weight: 0,
            always_apply: false,
            descriptors: Vec::new(),
        }
    }

    /// Match only this value (may contain `*` wildcards).
    pub fn value(mut self, value: impl Into<String>) -> Self {
        self.value = Some(value.into());
        self
    }

    /// The limit applied to descriptors ending at this node.
    pub fn rate_limit(mut self, limit: impl Into<RateLimit>) -> Self {
        self.rule = Some(Rule::Limit(limit.into()));
        self
    }

    /// Descriptors ending at this node are never limited and never counted
    /// (envoyproxy/ratelimit's `unlimited: true`); their status says `limit_remaining =
    /// u32::MAX`.
    pub fn unlimited(mut self) -> Self {
        self.rule = Some(Rule::Unlimited);
        self
    }

    /// Count and report, but never refuse: an over-limit status is turned into `OK`
    /// (envoyproxy/ratelimit's `shadow_mode`).
    pub fn shadow_mode(mut self, shadow_mode: bool) -> Self {
        self.shadow_mode = shadow_mode;
        self
    }

    /// Gloo's rule priority: of the limits a request matches, only those with the highest
    /// weight (and those with [`always_apply`](Self::always_apply)) are counted and enforced.
    /// Read from the node that holds the limit. Default 0.
    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// Gloo's `alwaysApply`: this node's limit is considered whatever its weight.
    pub fn always_apply(mut self, always_apply: bool) -> Self {
        self.always_apply = always_apply;
        self
    }

    /// Adds a nested descriptor (the next entry of a request descriptor).
    pub fn descriptor(mut self, child: impl Into<Descriptor>) -> Self {
        self.descriptors.push(child.into());
        self
    }

    /// Adds nested descriptors.
    pub fn descriptors(mut self, children: impl IntoIterator<Item = Descriptor>) -> Self {
        self.descriptors.extend(children);
        self
    }
}

/// A set-style rule (Gloo's `SetDescriptor`): it applies to a set-style request descriptor that
/// contains **all** of its simple descriptors, in any order, whatever else it contains.
///
/// Rules are tried in order: the first that matches applies, plus every later matching rule
/// with [`always_apply`](Self::always_apply). Each distinct combination of the values of the
/// rule's keys is counted separately.
///
/// ```
/// use gloo_filters::ratelimit::global::{RateLimit, SetDescriptor, Unit};
///
/// // Each account on the BASIC plan: 20 per minute.
/// let rule = SetDescriptor::new(RateLimit::new(20, Unit::Minute))
///     .simple_descriptor("plan", Some("BASIC"))
///     .simple_descriptor("account_id", None::<String>);
/// # let _ = rule;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetDescriptor {
    pub(crate) simple_descriptors: Vec<(String, Option<String>)>,
    pub(crate) rate_limit: RateLimit,
    pub(crate) always_apply: bool,
    pub(crate) shadow_mode: bool,
}

impl SetDescriptor {
    /// A rule with this limit and no simple descriptors yet (which matches every set-style
    /// request descriptor).
    pub fn new(rate_limit: impl Into<RateLimit>) -> Self {
        Self {
            simple_descriptors: Vec::new(),
            rate_limit: rate_limit.into(),
            always_apply: false,
            shadow_mode: false,
        }
    }

    /// Requires an entry with `key` (and, with `Some`, exactly `value`).
    pub fn simple_descriptor<V: Into<String>>(
        mut self,
        key: impl Into<String>,
        value: Option<V>,
    ) -> Self {
        self.simple_descriptors
            .push((key.into(), value.map(Into::into)));
        self
    }

    /// Gloo's `alwaysApply`: consider this rule even when an earlier rule matched.
    pub fn always_apply(mut self, always_apply: bool) -> Self {
        self.always_apply = always_apply;
        self
    }

    /// Count and report, but never refuse.
    pub fn shadow_mode(mut self, shadow_mode: bool) -> Self {
        self.shadow_mode = shadow_mode;
        self
    }
}

/// The rules of one rate limit domain: a descriptor tree plus set-style rules.
///
/// Envoy's rate limit filter names the domain in every request; the limiter keeps one
/// [`RateLimitDomain`] per name.
///
/// ```
/// use gloo_filters::ratelimit::global::{Descriptor, RateLimit, RateLimitDomain, Unit};
///
/// let domain = RateLimitDomain::new("edge")
///     .descriptor(Descriptor::new("remote_address").rate_limit(RateLimit::new(100, Unit::Second)));
/// assert_eq!(domain.name(), "edge");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimitDomain {
    pub(crate) name: String,
    pub(crate) descriptors: Vec<Descriptor>,
    pub(crate) set_descriptors: Vec<SetDescriptor>,
}

impl RateLimitDomain {
    /// An empty domain (every descriptor is allowed).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            descriptors: Vec::new(),
            set_descriptors: Vec::new(),
        }
    }

    /// The domain's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks the rules as a [`RateLimiter`](super::RateLimiter) would when given them (an
    /// empty key, a limit of 0, two identical siblings, ...), without applying them.
    ///
    /// ```
    /// use gloo_filters::ratelimit::global::{Descriptor, RateLimit, RateLimitDomain, Unit};
    /// let bad = RateLimitDomain::new("edge")
    ///     .descriptor(Descriptor::new("user").rate_limit(RateLimit::new(0, Unit::Minute)));
    /// assert!(bad.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), super::InvalidConfig> {
        super::matcher::CompiledDomain::compile(self).map(|_| ())
    }

    /// Adds a top-level descriptor (a rule of the tree).
    pub fn descriptor(mut self, descriptor: impl Into<Descriptor>) -> Self {
        self.descriptors.push(descriptor.into());
        self
    }

    /// Adds top-level descriptors.
    pub fn descriptors(mut self, descriptors: impl IntoIterator<Item = Descriptor>) -> Self {
        self.descriptors.extend(descriptors);
        self
    }

    /// Adds a set-style rule after the existing ones.
    pub fn set_descriptor(mut self, rule: impl Into<SetDescriptor>) -> Self {
        self.set_descriptors.push(rule.into());
        self
    }
}
