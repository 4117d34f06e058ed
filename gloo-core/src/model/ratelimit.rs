//! Rate limiting: the `RateLimitConfig` kind and the shared descriptor / action types of
//! solo-apis' `rate-limiter/v1alpha1/ratelimit.proto` (`ratelimit.api.solo.io`), Gloo's
//! `enterprise/options/ratelimit/ratelimit.proto` (`ratelimit.options.gloo.solo.io`: virtual host
//! and route options, server settings), `enterprise/ratelimit.proto` (`glooe.solo.io`), and the
//! token bucket of `options/local_ratelimit/local_ratelimit.proto`.
//!
//! [`RateLimitConfigSpec::validate`] and [`ServiceSettings::validate`] check descriptors the way
//! the rate limit server does before accepting them.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::model::extauth::Empty;
use crate::model::routing::OneofError;
use crate::model::{Duration, ResourceRef};

// ---------------------------------------------------------------------------------------------
// RateLimitConfig (ratelimit.api.solo.io)
// ---------------------------------------------------------------------------------------------

/// The spec of a `RateLimitConfig` (`ratelimit.solo.io/v1alpha1`), oneof `config_type`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitConfigSpec {
    /// A policy in the raw server (descriptors) and client (actions) format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<RawRateLimitConfig>,
}

/// Raw rate limit policy (`RateLimitConfigSpec.Raw`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawRateLimitConfig {
    /// Descriptors applied to the server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub descriptors: Vec<Descriptor>,
    /// How Envoy composes the descriptors it sends to the server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rate_limits: Vec<RateLimitActions>,
    /// Set descriptors applied to the server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set_descriptors: Vec<SetDescriptor>,
}

impl RateLimitConfigSpec {
    /// Human-readable problems the rate limit server would reject (empty when valid). Each
    /// message starts with the path of the offending field, e.g.
    /// `raw.descriptors[0].descriptors[1]: ...`.
    ///
    /// Checked: a `raw` config is present; every descriptor has a non-empty key; key/value pairs
    /// are unique within one descriptor list; every rate limit has a unit and a non-zero
    /// `requestsPerUnit`; set descriptors have a rate limit, keys, and no repeated key; every
    /// action sets exactly one action type with its required fields; each rate limit has
    /// actions or set actions. A descriptor with neither `rateLimit` nor nested descriptors is
    /// valid: the server treats it as allow-listed.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let Some(raw) = &self.raw else {
            problems.push("spec: no rate limit config type is set (expected `raw`)".to_string());
            return problems;
        };
        validate_descriptors("raw.descriptors", &raw.descriptors, &mut problems);
        validate_set_descriptors("raw.setDescriptors", &raw.set_descriptors, &mut problems);
        for (i, rl) in raw.rate_limits.iter().enumerate() {
            rl.validate_into(&format!("raw.rateLimits[{i}]"), &mut problems);
        }
        problems
    }
}

/// Descriptor list validation shared by [`RateLimitConfigSpec`] and [`ServiceSettings`].
fn validate_descriptors(path: &str, descriptors: &[Descriptor], problems: &mut Vec<String>) {
    let mut seen = BTreeSet::new();
    for (i, d) in descriptors.iter().enumerate() {
        let here = format!("{path}[{i}]");
        let key = d.key.as_deref().unwrap_or("");
        if key.is_empty() {
            problems.push(format!("{here}: descriptor key must not be empty"));
        }
        let value = d.value.as_deref().unwrap_or("");
        if !seen.insert((key, value)) {
            if value.is_empty() {
                problems.push(format!(
                    "{here}: duplicate descriptor with key {key:?} and no value in the same list"
                ));
            } else {
                problems.push(format!(
                    "{here}: duplicate descriptor with key {key:?} and value {value:?} in the same list"
                ));
            }
        }
        if let Some(rl) = &d.rate_limit {
            rl.validate_into(&format!("{here}.rateLimit"), problems);
        }
        validate_descriptors(&format!("{here}.descriptors"), &d.descriptors, problems);
    }
}

/// Set descriptor validation shared by [`RateLimitConfigSpec`] and [`ServiceSettings`].
fn validate_set_descriptors(path: &str, sets: &[SetDescriptor], problems: &mut Vec<String>) {
    for (i, s) in sets.iter().enumerate() {
        let here = format!("{path}[{i}]");
        match &s.rate_limit {
            Some(rl) => rl.validate_into(&format!("{here}.rateLimit"), problems),
            None => problems.push(format!("{here}: a set descriptor needs a rateLimit")),
        }
        let mut seen = BTreeSet::new();
        for (j, sd) in s.simple_descriptors.iter().enumerate() {
            let key = sd.key.as_deref().unwrap_or("");
            if key.is_empty() {
                problems.push(format!(
                    "{here}.simpleDescriptors[{j}]: descriptor key must not be empty"
                ));
            } else if !seen.insert(key) {
                problems.push(format!(
                    "{here}.simpleDescriptors[{j}]: duplicate key {key:?} in the same set descriptor"
                ));
            }
        }
    }
}

/// A descriptor: key/value pairs the server uses to select a rate limit (`Descriptor`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Descriptor {
    /// The descriptor key (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Optional value; without it each distinct request value gets its own limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Optional rate limit rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Nested descriptors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub descriptors: Vec<Descriptor>,
    /// Rule priority; only the highest-weight matching rules are considered (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// Always consider this rule, regardless of weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub always_apply: Option<bool>,
}

/// A set-style descriptor rule (`SetDescriptor`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetDescriptor {
    /// Key/value pairs that must all be in the request's descriptor set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub simple_descriptors: Vec<SimpleDescriptor>,
    /// The rate limit rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Always consider this rule, regardless of order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub always_apply: Option<bool>,
}

/// A key/value pair of a set descriptor (`SimpleDescriptor`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SimpleDescriptor {
    /// The key (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Optional value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A rate limit: requests per unit of time (`RateLimit`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimit {
    /// The time unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<RateLimitUnit>,
    /// Requests allowed per unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_unit: Option<u32>,
}

impl RateLimit {
    fn validate_into(&self, path: &str, problems: &mut Vec<String>) {
        if self.unit.unwrap_or_default() == RateLimitUnit::Unknown {
            problems.push(format!(
                "{path}: unit is required (SECOND, MINUTE, HOUR, DAY, WEEK, MONTH or YEAR)"
            ));
        }
        if self.requests_per_unit.unwrap_or(0) == 0 {
            problems.push(format!("{path}: requestsPerUnit must be greater than 0"));
        }
    }
}

/// The time unit of a rate limit (`RateLimit.Unit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RateLimitUnit {
    /// Not set (invalid).
    #[default]
    Unknown,
    /// Per second.
    Second,
    /// Per minute.
    Minute,
    /// Per hour.
    Hour,
    /// Per day.
    Day,
    /// Per month.
    Month,
    /// Per year.
    Year,
    /// Per week.
    Week,
}

/// How Envoy builds descriptors from a request (`RateLimitActions`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitActions {
    /// Actions producing an ordered descriptor tuple.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
    /// Actions producing an unordered descriptor set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set_actions: Vec<Action>,
    /// Optional limit override appended to the descriptor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<Override>,
    /// What is counted (requests or LLM tokens; default requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<LimitType>,
}

impl RateLimitActions {
    /// Human-readable problems with these actions (empty when valid).
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        self.validate_into("rateLimits", &mut problems);
        problems
    }

    fn validate_into(&self, path: &str, problems: &mut Vec<String>) {
        if self.actions.is_empty() && self.set_actions.is_empty() {
            problems.push(format!("{path}: needs at least one action or setAction"));
        }
        for (i, a) in self.actions.iter().enumerate() {
            a.validate_into(&format!("{path}.actions[{i}]"), problems);
        }
        for (i, a) in self.set_actions.iter().enumerate() {
            a.validate_into(&format!("{path}.setActions[{i}]"), problems);
        }
    }
}

/// What a rate limit counts (`LimitType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LimitType {
    /// Requests.
    #[default]
    Request,
    /// LLM tokens (agentgateway only).
    Token,
}

/// One descriptor entry produced from a request (`Action`, oneof `action_specifier`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Action {
    /// `("source_cluster", <local service cluster>)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_cluster: Option<Empty>,
    /// `("destination_cluster", <routed cluster>)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_cluster: Option<Empty>,
    /// `(<descriptorKey>, <header value>)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_headers: Option<RequestHeaders>,
    /// `("remote_address", <trusted client address>)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_address: Option<Empty>,
    /// `("generic_key", <descriptorValue>)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generic_key: Option<GenericKey>,
    /// `("header_match", <descriptorValue>)` when headers match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_value_match: Option<HeaderValueMatch>,
    /// `(<descriptorKey>, <metadata value>)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MetaData>,
    /// A CEL expression (agentgateway only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cel: Option<Cel>,
}

/// The member of [`Action`]'s `action_specifier` oneof that is set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ActionRef<'a> {
    /// `sourceCluster`.
    SourceCluster,
    /// `destinationCluster`.
    DestinationCluster,
    /// `requestHeaders`.
    RequestHeaders(&'a RequestHeaders),
    /// `remoteAddress`.
    RemoteAddress,
    /// `genericKey`.
    GenericKey(&'a GenericKey),
    /// `headerValueMatch`.
    HeaderValueMatch(&'a HeaderValueMatch),
    /// `metadata`.
    Metadata(&'a MetaData),
    /// `cel`.
    Cel(&'a Cel),
}

impl Action {
    /// The action type that is set, or an error if more than one is.
    pub fn action(&self) -> Result<Option<ActionRef<'_>>, OneofError> {
        OneofError::check(
            "action_specifier",
            &[
                ("sourceCluster", self.source_cluster.is_some()),
                ("destinationCluster", self.destination_cluster.is_some()),
                ("requestHeaders", self.request_headers.is_some()),
                ("remoteAddress", self.remote_address.is_some()),
                ("genericKey", self.generic_key.is_some()),
                ("headerValueMatch", self.header_value_match.is_some()),
                ("metadata", self.metadata.is_some()),
                ("cel", self.cel.is_some()),
            ],
        )?;
        let r = if self.source_cluster.is_some() {
            ActionRef::SourceCluster
        } else if self.destination_cluster.is_some() {
            ActionRef::DestinationCluster
        } else if let Some(v) = &self.request_headers {
            ActionRef::RequestHeaders(v)
        } else if self.remote_address.is_some() {
            ActionRef::RemoteAddress
        } else if let Some(v) = &self.generic_key {
            ActionRef::GenericKey(v)
        } else if let Some(v) = &self.header_value_match {
            ActionRef::HeaderValueMatch(v)
        } else if let Some(v) = &self.metadata {
            ActionRef::Metadata(v)
        } else if let Some(v) = &self.cel {
            ActionRef::Cel(v)
        } else {
            return Ok(None);
        };
        Ok(Some(r))
    }

    fn validate_into(&self, path: &str, problems: &mut Vec<String>) {
        fn empty(s: &Option<String>) -> bool {
            s.as_deref().unwrap_or("").is_empty()
        }
        match self.action() {
            Err(e) => problems.push(format!("{path}: {e}")),
            Ok(None) => problems.push(format!("{path}: no action type is set")),
            Ok(Some(ActionRef::RequestHeaders(h))) => {
                if empty(&h.header_name) {
                    problems.push(format!("{path}.requestHeaders: headerName is required"));
                }
                if empty(&h.descriptor_key) {
                    problems.push(format!("{path}.requestHeaders: descriptorKey is required"));
                }
            }
            Ok(Some(ActionRef::GenericKey(g))) => {
                if empty(&g.descriptor_value) {
                    problems.push(format!("{path}.genericKey: descriptorValue is required"));
                }
            }
            Ok(Some(ActionRef::HeaderValueMatch(h))) => {
                if empty(&h.descriptor_value) {
                    problems.push(format!(
                        "{path}.headerValueMatch: descriptorValue is required"
                    ));
                }
                if h.headers.is_empty() {
                    problems.push(format!(
                        "{path}.headerValueMatch: at least one header is required"
                    ));
                }
                for (i, m) in h.headers.iter().enumerate() {
                    let here = format!("{path}.headerValueMatch.headers[{i}]");
                    if empty(&m.name) {
                        problems.push(format!("{here}: name is required"));
                    }
                    if let Err(e) = m.header_match_specifier() {
                        problems.push(format!("{here}: {e}"));
                    }
                }
            }
            Ok(Some(ActionRef::Metadata(m))) => {
                if empty(&m.descriptor_key) {
                    problems.push(format!("{path}.metadata: descriptorKey is required"));
                }
                match &m.metadata_key {
                    None => problems.push(format!("{path}.metadata: metadataKey is required")),
                    Some(k) => {
                        if empty(&k.key) {
                            problems.push(format!("{path}.metadata.metadataKey: key is required"));
                        }
                        if k.path.is_empty() {
                            problems.push(format!(
                                "{path}.metadata.metadataKey: path needs at least one segment"
                            ));
                        }
                    }
                }
            }
            Ok(Some(ActionRef::Cel(c))) => {
                if empty(&c.expression) {
                    problems.push(format!("{path}.cel: expression is required"));
                }
            }
            Ok(Some(_)) => {}
        }
    }
}

/// Descriptor entry from a request header (`Action.RequestHeaders`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestHeaders {
    /// The request header whose value becomes the descriptor value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_name: Option<String>,
    /// The descriptor key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub descriptor_key: Option<String>,
}

/// A fixed `generic_key` descriptor entry (`Action.GenericKey`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenericKey {
    /// The descriptor value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub descriptor_value: Option<String>,
}

/// A `header_match` descriptor entry when headers match (`Action.HeaderValueMatch`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderValueMatch {
    /// The descriptor value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub descriptor_value: Option<String>,
    /// Append when the headers match (true, default) or when they don't (false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_match: Option<bool>,
    /// Headers that must all match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatcher>,
}

/// A request header condition (`Action.HeaderValueMatch.HeaderMatcher`,
/// oneof `header_match_specifier`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderMatcher {
    /// The header name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The value equals this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact_match: Option<String>,
    /// The whole value matches this regex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex_match: Option<String>,
    /// The value is an integer in this range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_match: Option<Int64Range>,
    /// The header is present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub present_match: Option<bool>,
    /// The value starts with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_match: Option<String>,
    /// The value ends with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix_match: Option<String>,
    /// Invert the match result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invert_match: Option<bool>,
}

/// The member of [`HeaderMatcher`]'s `header_match_specifier` oneof that is set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HeaderMatchSpecifierRef<'a> {
    /// `exactMatch`.
    Exact(&'a str),
    /// `regexMatch`.
    Regex(&'a str),
    /// `rangeMatch`.
    Range(&'a Int64Range),
    /// `presentMatch`.
    Present(bool),
    /// `prefixMatch`.
    Prefix(&'a str),
    /// `suffixMatch`.
    Suffix(&'a str),
}

impl HeaderMatcher {
    /// The kind of match that is set, or an error if more than one is.
    pub fn header_match_specifier(
        &self,
    ) -> Result<Option<HeaderMatchSpecifierRef<'_>>, OneofError> {
        OneofError::check(
            "header_match_specifier",
            &[
                ("exactMatch", self.exact_match.is_some()),
                ("regexMatch", self.regex_match.is_some()),
                ("rangeMatch", self.range_match.is_some()),
                ("presentMatch", self.present_match.is_some()),
                ("prefixMatch", self.prefix_match.is_some()),
                ("suffixMatch", self.suffix_match.is_some()),
            ],
        )?;
        Ok(if let Some(v) = &self.exact_match {
            Some(HeaderMatchSpecifierRef::Exact(v))
        } else if let Some(v) = &self.regex_match {
            Some(HeaderMatchSpecifierRef::Regex(v))
        } else if let Some(v) = &self.range_match {
            Some(HeaderMatchSpecifierRef::Range(v))
        } else if let Some(v) = self.present_match {
            Some(HeaderMatchSpecifierRef::Present(v))
        } else if let Some(v) = &self.prefix_match {
            Some(HeaderMatchSpecifierRef::Prefix(v))
        } else {
            self.suffix_match
                .as_deref()
                .map(HeaderMatchSpecifierRef::Suffix)
        })
    }
}

/// A half-open integer range `[start, end)` (`Int64Range`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Int64Range {
    /// Start (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<i64>,
    /// End (exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<i64>,
}

/// A CEL expression descriptor entry (`Action.CEL`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cel {
    /// The CEL expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    /// The descriptor key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// A descriptor entry from metadata (`Action.MetaData`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetaData {
    /// The descriptor key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub descriptor_key: Option<String>,
    /// Where in the metadata the (string) value is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_key: Option<MetadataKey>,
    /// Value used when the metadata has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<String>,
    /// Which metadata to query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<MetadataSource>,
}

/// Which metadata an action reads (`Action.MetaData.Source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MetadataSource {
    /// Dynamic metadata.
    #[default]
    Dynamic,
    /// Route entry metadata.
    RouteEntry,
}

/// A metadata filter name and path (`MetadataKey`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetadataKey {
    /// The metadata filter name, e.g. `envoy.filters.http.ext_authz`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Path into the struct (at least one segment).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<PathSegment>,
}

/// One path segment (`MetadataKey.PathSegment`, oneof `segment`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PathSegment {
    /// A struct field name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// A limit override (`Override`, oneof `override_specifier`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Override {
    /// Take the limit from dynamic metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic_metadata: Option<OverrideDynamicMetadata>,
}

/// A limit override from dynamic metadata (`Override.DynamicMetadata`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OverrideDynamicMetadata {
    /// Struct with `requests_per_unit` and `unit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_key: Option<MetadataKey>,
}

// ---------------------------------------------------------------------------------------------
// Gloo options (ratelimit.options.gloo.solo.io)
// ---------------------------------------------------------------------------------------------

/// Basic rate limiting (`ratelimitBasic`, `IngressRateLimit`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IngressRateLimit {
    /// Limit for authorized requests (per user id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorized_limits: Option<RateLimit>,
    /// Limit for anonymous requests (per remote address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous_limits: Option<RateLimit>,
}

impl IngressRateLimit {
    /// What Gloo refuses (a limit without a unit or with 0 requests: Gloo's rate limit server
    /// refuses "unknown unit for anonymous config"), each problem naming its field from
    /// `ratelimitBasic`.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (field, limit) in [
            ("authorizedLimits", &self.authorized_limits),
            ("anonymousLimits", &self.anonymous_limits),
        ] {
            if let Some(limit) = limit {
                limit.validate_into(&format!("ratelimitBasic.{field}"), &mut problems);
            }
        }
        problems
    }
}

/// Rate limit server settings (`ratelimit.options.gloo.solo.io.Settings`): `Settings.spec.ratelimitServer`
/// and the `ratelimitServer` HTTP listener option.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// The upstream of the rate limit server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratelimit_server_ref: Option<ResourceRef>,
    /// Timeout for rate limit server calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<Duration>,
    /// Deny requests when the server fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny_on_fail: Option<bool>,
    /// Return Envoy's `X-RateLimit` headers downstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_x_ratelimit_headers: Option<bool>,
    /// Rate limit before external auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_before_auth: Option<bool>,
    /// gRPC settings for calls to the server (oneof `service_type`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_service: Option<GrpcService>,
}

/// The rate limit server settings, by a more descriptive name.
pub type RateLimitServerSettings = Settings;

/// gRPC settings for the rate limit server (`GrpcService`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcService {
    /// The authority header for calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
}

/// Descriptors configured in the Gloo `Settings` (`Settings.spec.ratelimit`, `ServiceSettings`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceSettings {
    /// Descriptors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub descriptors: Vec<Descriptor>,
    /// Set descriptors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set_descriptors: Vec<SetDescriptor>,
}

impl ServiceSettings {
    /// Human-readable problems with the descriptors (same rules as
    /// [`RateLimitConfigSpec::validate`]).
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        validate_descriptors("ratelimit.descriptors", &self.descriptors, &mut problems);
        validate_set_descriptors(
            "ratelimit.setDescriptors",
            &self.set_descriptors,
            &mut problems,
        );
        problems
    }
}

/// References to `RateLimitConfig`s (`rateLimitConfigs`, `RateLimitConfigRefs`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitConfigRefs {
    /// The references; each policy is enforced independently.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refs: Vec<RateLimitConfigRef>,
}

/// A reference to a `RateLimitConfig` (`RateLimitConfigRef`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitConfigRef {
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Its namespace; the referencing resource's when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl RateLimitConfigRef {
    /// This reference as a [`ResourceRef`].
    pub fn to_resource_ref(&self) -> ResourceRef {
        ResourceRef {
            name: self.name.clone(),
            namespace: self.namespace.clone(),
        }
    }
}

/// Inline Envoy rate limits for a virtual host (`ratelimit`, `RateLimitVhostExtension`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitVhostExtension {
    /// Rate limits; a request is throttled if any of them is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rate_limits: Vec<RateLimitActions>,
    /// Local (in-Envoy) token bucket for this virtual host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_ratelimit: Option<TokenBucket>,
}

/// Inline Envoy rate limits for a route (`ratelimit`, `RateLimitRouteExtension`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitRouteExtension {
    /// Also apply the virtual host's rate limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_vh_rate_limits: Option<bool>,
    /// Rate limits; a request is throttled if any of them is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rate_limits: Vec<RateLimitActions>,
    /// Local (in-Envoy) token bucket for this route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_ratelimit: Option<TokenBucket>,
}

/// The `glooe.solo.io.RateLimitConfig` served to the rate limit server: a domain and its
/// descriptors.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerRateLimitConfig {
    /// The rate limit domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Descriptors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub descriptors: Vec<Descriptor>,
    /// Set descriptors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set_descriptors: Vec<SetDescriptor>,
}

// ---------------------------------------------------------------------------------------------
// Local rate limiting (local_ratelimit.options.gloo.solo.io)
// ---------------------------------------------------------------------------------------------

/// A token bucket for local rate limiting (`local_ratelimit.options.gloo.solo.io.TokenBucket`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenBucket {
    /// Bucket capacity and initial tokens (at least 1).
    #[serde(alias = "max_tokens", default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Tokens added per fill interval (default 1).
    #[serde(
        alias = "tokens_per_fill",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub tokens_per_fill: Option<u32>,
    /// Fill interval (at least 50ms; default 1s).
    #[serde(
        alias = "fill_interval",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub fill_interval: Option<Duration>,
}

/// HTTP local rate limit settings (`local_ratelimit.options.gloo.solo.io.Settings`), the
/// `httpLocalRatelimit` listener option.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalRateLimitSettings {
    /// The default token bucket, shared by every virtual host and route of the listener that
    /// sets no bucket of its own.
    #[serde(
        alias = "default_limit",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub default_limit: Option<TokenBucket>,
    /// One bucket per downstream connection instead of per Envoy process. Applies to the
    /// virtual host and route buckets as well.
    #[serde(
        alias = "local_rate_limit_per_downstream_connection",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub local_rate_limit_per_downstream_connection: Option<bool>,
    /// Return `X-RateLimit` headers downstream (draft 03). Applies to the virtual host and
    /// route buckets as well.
    #[serde(
        alias = "enable_x_ratelimit_headers",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub enable_x_ratelimit_headers: Option<bool>,
}

/// The shortest fill interval Gloo accepts for a local rate limit token bucket.
pub const MIN_FILL_INTERVAL: Duration = Duration::from_millis(50);

/// The fill interval of a token bucket that sets none (Gloo: "defaults to 1 second").
pub const DEFAULT_FILL_INTERVAL: Duration = Duration::from_secs(1);

impl TokenBucket {
    /// What Gloo's local rate limit plugin (`toEnvoyTokenBucket`) refuses in this bucket, each
    /// message starting with `path` and the field: `maxTokens` unset or 0, `tokensPerFill` set
    /// to 0, `fillInterval` under 50ms. Empty when valid.
    ///
    /// ```
    /// use gloo_core::model::ratelimit::TokenBucket;
    /// let bucket = TokenBucket { max_tokens: Some(0), ..Default::default() };
    /// assert_eq!(
    ///     bucket.validate("spec.options.ratelimit.localRatelimit"),
    ///     ["spec.options.ratelimit.localRatelimit.maxTokens: must be at least 1, found 0"]
    /// );
    /// ```
    pub fn validate(&self, path: impl std::fmt::Display) -> Vec<String> {
        let mut problems = Vec::new();
        if self.is_valid() {
            return problems;
        }
        match self.max_tokens {
            None => problems.push(format!("{path}.maxTokens: required, must be at least 1")),
            Some(0) => problems.push(format!("{path}.maxTokens: must be at least 1, found 0")),
            Some(_) => {}
        }
        if self.tokens_per_fill == Some(0) {
            problems.push(format!("{path}.tokensPerFill: must be at least 1, found 0"));
        }
        if let Some(interval) = self.fill_interval {
            if !fill_interval_ok(&interval) {
                problems.push(format!(
                    "{path}.fillInterval: must be at least 50ms, found {interval}"
                ));
            }
        }
        problems
    }

    /// Whether [`TokenBucket::validate`] finds nothing (without formatting anything).
    pub fn is_valid(&self) -> bool {
        self.max_tokens.unwrap_or(0) >= 1
            && self.tokens_per_fill != Some(0)
            && self.fill_interval.as_ref().is_none_or(fill_interval_ok)
    }

    /// The fill interval Envoy is given: the configured one, or [`DEFAULT_FILL_INTERVAL`].
    pub fn fill_interval_or_default(&self) -> Duration {
        self.fill_interval.unwrap_or(DEFAULT_FILL_INTERVAL)
    }
}

/// At least 50ms (Gloo checks `seconds == 0 && nanos < 50ms`; a negative interval, which Envoy
/// refuses too, is refused here as well).
fn fill_interval_ok(d: &Duration) -> bool {
    d.seconds >= 0 && d.nanos >= 0 && *d >= MIN_FILL_INTERVAL
}

impl LocalRateLimitSettings {
    /// What Gloo refuses in these settings (see [`TokenBucket::validate`]), each message
    /// starting with `path`, e.g. `spec.httpGateway.options.httpLocalRatelimit`.
    pub fn validate(&self, path: impl std::fmt::Display) -> Vec<String> {
        match &self.default_limit {
            Some(bucket) if !bucket.is_valid() => {
                bucket.validate(format_args!("{path}.defaultLimit"))
            }
            _ => Vec::new(),
        }
    }
}

/// The local rate limit token buckets of one options object (a virtual host's or a route's),
/// by the stage they are set in: `ratelimit`, `ratelimitEarly` and `ratelimitRegular`.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalRateLimitStages<'a> {
    /// `ratelimit.localRatelimit`.
    pub ratelimit: Option<&'a TokenBucket>,
    /// `ratelimitEarly.localRatelimit`.
    pub early: Option<&'a TokenBucket>,
    /// `ratelimitRegular.localRatelimit`.
    pub regular: Option<&'a TokenBucket>,
}

impl<'a> LocalRateLimitStages<'a> {
    /// The bucket Envoy enforces: `ratelimit.localRatelimit`, else
    /// `ratelimitEarly.localRatelimit`. Local rate limiting always runs before auth (Gloo's
    /// filter sits before the AuthN stage), so the early stage is the same filter;
    /// `ratelimitRegular.localRatelimit` (after auth) is refused by [`Self::validate`].
    pub fn bucket(&self) -> Option<&'a TokenBucket> {
        self.ratelimit.or(self.early)
    }

    /// Whether [`Self::validate`] finds nothing (without formatting anything).
    pub fn is_valid(&self) -> bool {
        self.ratelimit.is_none_or(TokenBucket::is_valid)
            && self.early.is_none_or(TokenBucket::is_valid)
            && !(self.ratelimit.is_some() && self.early.is_some())
            && self.regular.is_none()
    }

    /// Whether any stage sets a local bucket.
    pub fn any(&self) -> bool {
        self.ratelimit.is_some() || self.early.is_some() || self.regular.is_some()
    }

    /// What Gloo refuses, each message starting with `path` (the options object, e.g.
    /// `spec.virtualHost.options`): an invalid bucket; `ratelimitRegular.localRatelimit`
    /// ("local rate limiting can be enforced pre-auth only"); `ratelimitEarly.localRatelimit`
    /// together with `ratelimit.localRatelimit`.
    pub fn validate(&self, path: impl std::fmt::Display) -> Vec<String> {
        let mut problems = Vec::new();
        if self.is_valid() {
            return problems;
        }
        if let Some(bucket) = self.ratelimit {
            problems.extend(bucket.validate(format_args!("{path}.ratelimit.localRatelimit")));
        }
        if let Some(bucket) = self.early {
            problems.extend(bucket.validate(format_args!("{path}.ratelimitEarly.localRatelimit")));
            if self.ratelimit.is_some() {
                problems.push(format!(
                    "{path}.ratelimitEarly.localRatelimit: only one of ratelimit.localRatelimit and ratelimitEarly.localRatelimit may be set, found both"
                ));
            }
        }
        if self.regular.is_some() {
            problems.push(format!(
                "{path}.ratelimitRegular.localRatelimit: local rate limits are enforced before auth only; use ratelimit.localRatelimit or ratelimitEarly.localRatelimit"
            ));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rlc(yaml: &str) -> RateLimitConfigSpec {
        let spec: RateLimitConfigSpec = serde_yaml_ng::from_str(yaml).unwrap();
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(
            serde_json::from_str::<RateLimitConfigSpec>(&json).unwrap(),
            spec
        );
        spec
    }

    // docs/content/guides/security/rate_limiting/crds/_index.md
    #[test]
    fn parses_rate_limit_configs() {
        let s = rlc(r#"
raw:
  descriptors:
  - key: generic_key
    value: counter
    rateLimit:
      requestsPerUnit: 10
      unit: MINUTE
  rateLimits:
  - actions:
    - genericKey:
        descriptorValue: counter
"#);
        let raw = s.raw.as_ref().unwrap();
        assert_eq!(raw.descriptors[0].key.as_deref(), Some("generic_key"));
        let rl = raw.descriptors[0].rate_limit.as_ref().unwrap();
        assert_eq!(rl.unit, Some(RateLimitUnit::Minute));
        assert_eq!(rl.requests_per_unit, Some(10));
        assert!(matches!(
            raw.rate_limits[0].actions[0].action(),
            Ok(Some(ActionRef::GenericKey(g))) if g.descriptor_value.as_deref() == Some("counter")
        ));
        assert!(s.validate().is_empty(), "{:?}", s.validate());

        let s = rlc(r#"
raw:
  descriptors:
  - key: destination_cluster
    rateLimit:
      requestsPerUnit: 3
      unit: MINUTE
  rateLimits:
  - actions:
    - destinationCluster: {}
"#);
        assert_eq!(
            s.raw.as_ref().unwrap().rate_limits[0].actions[0].action(),
            Ok(Some(ActionRef::DestinationCluster))
        );
        assert!(s.validate().is_empty());
    }

    // Nested descriptors: docs/content/guides/security/rate_limiting/envoy/_index.md
    // (the Settings descriptors there, wrapped in a RateLimitConfig `raw`).
    #[test]
    fn parses_nested_descriptors() {
        let s = rlc(r#"
raw:
  descriptors:
    - key: type
      rateLimit:
        requestsPerUnit: 1
        unit: MINUTE
      descriptors:
        - key: number
          rateLimit:
            requestsPerUnit: 1
            unit: MINUTE
  rateLimits:
    - actions:
        - requestHeaders:
            descriptorKey: type
            headerName: x-type
    - actions:
        - requestHeaders:
            descriptorKey: type
            headerName: x-type
        - requestHeaders:
            descriptorKey: number
            headerName: x-number
"#);
        let raw = s.raw.as_ref().unwrap();
        let nested = &raw.descriptors[0].descriptors[0];
        assert_eq!(nested.key.as_deref(), Some("number"));
        assert_eq!(
            nested.rate_limit.as_ref().unwrap().requests_per_unit,
            Some(1)
        );
        assert_eq!(raw.rate_limits[1].actions.len(), 2);
        let Ok(Some(ActionRef::RequestHeaders(h))) = raw.rate_limits[1].actions[1].action() else {
            panic!("not request headers");
        };
        assert_eq!(h.header_name.as_deref(), Some("x-number"));
        assert!(s.validate().is_empty(), "{:?}", s.validate());
    }

    // `options.ratelimit` from docs/content/guides/security/rate_limiting/envoy/_index.md and
    // set/_index.md.
    #[test]
    fn parses_vhost_rate_limits() {
        let v: RateLimitVhostExtension = serde_yaml_ng::from_str(
            r#"
rateLimits:
  - actions:
      - requestHeaders:
          descriptorKey: type
          headerName: x-type
  - actions:
      - remoteAddress: {}
  - setActions:
    - requestHeaders:
        descriptorKey: number
        headerName: x-number
    - requestHeaders:
        descriptorKey: type
        headerName: x-type
"#,
        )
        .unwrap();
        assert_eq!(v.rate_limits.len(), 3);
        assert_eq!(
            v.rate_limits[1].actions[0].action(),
            Ok(Some(ActionRef::RemoteAddress))
        );
        assert_eq!(v.rate_limits[2].set_actions.len(), 2);
        assert!(v.rate_limits.iter().all(|r| r.validate().is_empty()));
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(
            serde_json::from_str::<RateLimitVhostExtension>(&json).unwrap(),
            v
        );

        let r: RateLimitRouteExtension = serde_yaml_ng::from_str(
            "includeVhRateLimits: true\nlocalRatelimit:\n  maxTokens: 5\n  tokensPerFill: 1\n  fillInterval: 30s\n",
        )
        .unwrap();
        assert_eq!(r.include_vh_rate_limits, Some(true));
        let tb = r.local_ratelimit.unwrap();
        assert_eq!(tb.max_tokens, Some(5));
        assert_eq!(tb.fill_interval, Some(Duration::from_secs(30)));
    }

    // Settings descriptors: docs/content/guides/security/rate_limiting/set/_index.md
    #[test]
    fn parses_service_settings_and_refs() {
        let s: ServiceSettings = serde_yaml_ng::from_str(
            r#"
setDescriptors:
- simpleDescriptors:
  - key: type
  - key: number
  rateLimit:
    requestsPerUnit: 10
    unit: MINUTE
- simpleDescriptors:
  - key: type
  rateLimit:
    requestsPerUnit: 5
    unit: MINUTE
  alwaysApply: true
"#,
        )
        .unwrap();
        assert_eq!(s.set_descriptors[1].always_apply, Some(true));
        assert!(s.validate().is_empty());

        let refs: RateLimitConfigRefs = serde_yaml_ng::from_str(
            "refs:\n- name: my-rate-limit-policy\n  namespace: gloo-system\n",
        )
        .unwrap();
        assert_eq!(
            refs.refs[0].to_resource_ref(),
            ResourceRef::new("gloo-system", "my-rate-limit-policy")
        );
    }

    #[test]
    fn header_value_match_and_metadata_actions() {
        let a: RateLimitActions = serde_yaml_ng::from_str(
            r#"
actions:
- headerValueMatch:
    descriptorValue: is-admin
    expectMatch: true
    headers:
    - name: x-role
      exactMatch: admin
    - name: x-num
      rangeMatch: {start: 0, end: 10}
      invertMatch: true
- metadata:
    descriptorKey: user
    metadataKey:
      key: envoy.filters.http.ext_authz
      path:
      - key: userid
    source: DYNAMIC
"#,
        )
        .unwrap();
        let Ok(Some(ActionRef::HeaderValueMatch(h))) = a.actions[0].action() else {
            panic!("not header value match");
        };
        assert_eq!(
            h.headers[0].header_match_specifier(),
            Ok(Some(HeaderMatchSpecifierRef::Exact("admin")))
        );
        assert!(matches!(
            h.headers[1].header_match_specifier(),
            Ok(Some(HeaderMatchSpecifierRef::Range(r))) if r.end == Some(10)
        ));
        assert!(a.validate().is_empty(), "{:?}", a.validate());
    }

    #[test]
    fn validate_reports_problems() {
        let s = rlc(r#"
raw:
  descriptors:
  - key: generic_key
    value: counter
    rateLimit: {requestsPerUnit: 0, unit: MINUTE}
  - key: generic_key
    value: counter
    rateLimit: {requestsPerUnit: 1}
  - key: account
    descriptors:
    - key: plan
      value: BASIC
    - key: ""
    - key: plan
      value: BASIC
  - key: allowlisted
  setDescriptors:
  - simpleDescriptors:
    - key: type
    - key: type
  rateLimits:
  - actions:
    - genericKey: {}
      remoteAddress: {}
    - requestHeaders: {headerName: x-a}
  - {}
"#);
        let problems = s.validate();
        let expected = [
            "raw.descriptors[0].rateLimit: requestsPerUnit must be greater than 0",
            "raw.descriptors[1]: duplicate descriptor with key \"generic_key\" and value \"counter\"",
            "raw.descriptors[1].rateLimit: unit is required",
            "raw.descriptors[2].descriptors[1]: descriptor key must not be empty",
            "raw.descriptors[2].descriptors[2]: duplicate descriptor with key \"plan\" and value \"BASIC\"",
            "raw.setDescriptors[0]: a set descriptor needs a rateLimit",
            "raw.setDescriptors[0].simpleDescriptors[1]: duplicate key \"type\"",
            "raw.rateLimits[0].actions[0]: only one of remoteAddress, genericKey may be set",
            "raw.rateLimits[0].actions[1].requestHeaders: descriptorKey is required",
            "raw.rateLimits[1]: needs at least one action or setAction",
        ];
        for e in expected {
            assert!(
                problems.iter().any(|p| p.starts_with(e)),
                "missing {e:?} in {problems:#?}"
            );
        }
        assert_eq!(problems.len(), expected.len(), "{problems:#?}");

        assert_eq!(
            RateLimitConfigSpec::default().validate(),
            vec!["spec: no rate limit config type is set (expected `raw`)".to_string()]
        );
    }

    #[test]
    fn rejects_unknown_field() {
        let err = serde_yaml_ng::from_str::<RateLimitConfigSpec>(
            "raw:\n  descriptors:\n  - key: a\n    rate_limit: {unit: MINUTE}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("rate_limit"), "{err}");
    }

    // docs/content/guides/security/local_rate_limiting/http.md
    #[test]
    fn parses_http_local_ratelimit_settings_typed() {
        let o: crate::model::listener_options::HttpListenerOptions = serde_yaml_ng::from_str(
            "httpLocalRatelimit:\n  defaultLimit:\n    maxTokens: 1\n    tokensPerFill: 1\n    fillInterval: 100s\n  enableXRatelimitHeaders: true\n",
        )
        .unwrap();
        let s = o.http_local_ratelimit.clone().unwrap();
        assert_eq!(
            s.default_limit,
            Some(TokenBucket {
                max_tokens: Some(1),
                tokens_per_fill: Some(1),
                fill_interval: Some(Duration::from_secs(100)),
            })
        );
        assert_eq!(s.enable_x_ratelimit_headers, Some(true));
        assert_eq!(s.local_rate_limit_per_downstream_connection, None);
        assert!(s.validate("httpLocalRatelimit").is_empty());
        let json = serde_json::to_string(&o).unwrap();
        assert_eq!(
            serde_json::from_str::<crate::model::listener_options::HttpListenerOptions>(&json)
                .unwrap(),
            o
        );
        // Unknown fields stay errors, at every level.
        for bad in [
            "httpLocalRatelimit: {defaultLimit: {maxToken: 1}}",
            "httpLocalRatelimit: {enableXRateLimitHeaders: true}",
        ] {
            let err =
                serde_yaml_ng::from_str::<crate::model::listener_options::HttpListenerOptions>(bad)
                    .unwrap_err()
                    .to_string();
            assert!(err.contains("unknown field"), "{bad}: {err}");
        }
    }

    #[test]
    fn token_bucket_validation_follows_gloo() {
        let bucket = |yaml: &str| serde_yaml_ng::from_str::<TokenBucket>(yaml).unwrap();
        assert!(bucket("maxTokens: 1").validate("b").is_empty());
        assert!(bucket("maxTokens: 1\nfillInterval: 0.05s").is_valid());
        assert!(bucket("maxTokens: 1\nfillInterval: 1.000000001s").is_valid());
        assert_eq!(
            bucket("tokensPerFill: 2").validate("b"),
            ["b.maxTokens: required, must be at least 1"]
        );
        assert_eq!(
            bucket("maxTokens: 3\ntokensPerFill: 0\nfillInterval: 0.049999999s").validate("b"),
            [
                "b.tokensPerFill: must be at least 1, found 0",
                "b.fillInterval: must be at least 50ms, found 0.049999999s",
            ]
        );
        assert_eq!(
            bucket("maxTokens: 3\nfillInterval: -1s").validate("b"),
            ["b.fillInterval: must be at least 50ms, found -1s"]
        );
        assert_eq!(
            bucket("maxTokens: 3").fill_interval_or_default(),
            DEFAULT_FILL_INTERVAL
        );
        let settings = LocalRateLimitSettings {
            default_limit: Some(bucket("maxTokens: 0")),
            ..Default::default()
        };
        assert_eq!(
            settings.validate("spec.httpGateway.options.httpLocalRatelimit"),
            ["spec.httpGateway.options.httpLocalRatelimit.defaultLimit.maxTokens: must be at least 1, found 0"]
        );
    }

    #[test]
    fn local_ratelimit_stages() {
        let good = TokenBucket {
            max_tokens: Some(1),
            ..Default::default()
        };
        let stages = LocalRateLimitStages {
            early: Some(&good),
            ..Default::default()
        };
        assert!(stages.is_valid());
        assert_eq!(stages.bucket(), Some(&good));
        let both = LocalRateLimitStages {
            ratelimit: Some(&good),
            early: Some(&good),
            regular: None,
        };
        assert!(!both.is_valid());
        assert_eq!(both.validate("o").len(), 1);
        let regular = LocalRateLimitStages {
            regular: Some(&good),
            ..Default::default()
        };
        assert_eq!(regular.bucket(), None);
        assert!(!regular.is_valid());
    }
}
