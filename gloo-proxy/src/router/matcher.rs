//! Route matchers with Envoy's semantics: paths, headers, query parameters.
//!
//! A [`RouteTable`](super::RouteTable) evaluates them on a [`RequestView`]:
//!
//! ```
//! use envoy_types::pb::envoy::config::route::v3::{
//!     route, route_match, DirectResponseAction, HeaderMatcher, QueryParameterMatcher, Route,
//!     RouteConfiguration, RouteMatch, VirtualHost,
//! };
//! use envoy_types::pb::envoy::r#type::matcher::v3::RegexMatcher;
//! use gloo_proxy::router::{matcher::RequestView, RouteTable};
//! use http::{HeaderMap, HeaderValue};
//!
//! # fn main() -> Result<(), gloo_proxy::router::RouterError> {
//! let answer = Some(route::Action::DirectResponse(DirectResponseAction {
//!     status: 200,
//!     ..Default::default()
//! }));
//! // Exactly `/search`, with a `beta` query parameter and an `x-canary` header.
//! let canary = Route {
//!     name: "search-canary".into(),
//!     r#match: Some(RouteMatch {
//!         path_specifier: Some(route_match::PathSpecifier::Path("/search".into())),
//!         query_parameters: vec![QueryParameterMatcher {
//!             name: "beta".into(),
//!             ..Default::default()
//!         }],
//!         headers: vec![HeaderMatcher {
//!             name: "x-canary".into(),
//!             ..Default::default()
//!         }],
//!         ..Default::default()
//!     }),
//!     action: answer.clone(),
//!     ..Default::default()
//! };
//! // The whole path (without its query) must match the regex, as RE2's full match in Envoy.
//! let user = Route {
//!     name: "user".into(),
//!     r#match: Some(RouteMatch {
//!         path_specifier: Some(route_match::PathSpecifier::SafeRegex(RegexMatcher {
//!             regex: "/users/[0-9]+".into(),
//!             ..Default::default()
//!         })),
//!         ..Default::default()
//!     }),
//!     action: answer,
//!     ..Default::default()
//! };
//! let table = RouteTable::compile(&RouteConfiguration {
//!     virtual_hosts: vec![VirtualHost {
//!         name: "shop".into(),
//!         domains: vec!["*".into()],
//!         routes: vec![canary, user],
//!         ..Default::default()
//!     }],
//!     ..Default::default()
//! })?;
//!
//! let mut headers = HeaderMap::new();
//! headers.append("x-canary", HeaderValue::from_static("1"));
//! headers.append("accept", HeaderValue::from_static("text/html"));
//! headers.append("accept", HeaderValue::from_static("*/*"));
//! let view = |path| RequestView {
//!     method: "GET",
//!     authority: "shop.example",
//!     path,
//!     scheme: "https",
//!     headers: &headers,
//! };
//! let matched = |path| {
//!     let (_, route) = table.route(&view(path))?;
//!     route.map(|r| r.name())
//! };
//! assert_eq!(matched("/search?q=shoes&beta"), Some("search-canary"));
//! assert_eq!(matched("/search?q=shoes"), None);
//! assert_eq!(matched("/users/42?tab=orders"), Some("user"));
//! assert_eq!(matched("/users/42/orders"), None);
//!
//! // What the matchers read: pseudo-headers, and repeated headers joined as Envoy joins them.
//! let request = view("/search?q=shoes#top");
//! assert_eq!(request.path_only(), "/search");
//! assert_eq!(request.query(), Some("q=shoes"));
//! assert_eq!(request.header(":authority").as_deref(), Some("shop.example"));
//! assert_eq!(request.header("accept").as_deref(), Some("text/html,*/*"));
//! # Ok(())
//! # }
//! ```

use envoy_types::pb::envoy::config::route::v3::{
    header_matcher::HeaderMatchSpecifier, query_parameter_matcher::QueryParameterMatchSpecifier,
    route_match::PathSpecifier, HeaderMatcher, QueryParameterMatcher, RouteMatch,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{string_matcher::MatchPattern, StringMatcher};
use http::HeaderMap;
use regex::Regex;

use super::RouterError;

/// What a matcher sees of a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// The method.
    pub method: &'a str,
    /// The `:authority` (Host) value.
    pub authority: &'a str,
    /// The path with its query string, after normalisation.
    pub path: &'a str,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// The request headers.
    pub headers: &'a HeaderMap,
}

impl RequestView<'_> {
    /// The path without query string or fragment.
    pub fn path_only(&self) -> &str {
        strip_query(self.path)
    }

    /// The query string (without `?`), if any.
    pub fn query(&self) -> Option<&str> {
        let path = self.path.split('#').next().unwrap_or("");
        path.split_once('?').map(|(_, q)| q)
    }

    /// A header by name, pseudo-headers included; several values are joined with `,` as
    /// Envoy does for matching.
    pub fn header(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        use std::borrow::Cow;
        match name {
            ":method" => return Some(Cow::Borrowed(self.method)),
            ":authority" | "host" => return Some(Cow::Borrowed(self.authority)),
            ":path" => return Some(Cow::Borrowed(self.path)),
            ":scheme" => return Some(Cow::Borrowed(self.scheme)),
            _ => {}
        }
        let mut values = self.headers.get_all(name).iter();
        let first = values.next()?;
        let first = String::from_utf8_lossy(first.as_bytes());
        match values.next() {
            None => Some(first),
            Some(second) => {
                let mut joined = first.into_owned();
                joined.push(',');
                joined.push_str(&String::from_utf8_lossy(second.as_bytes()));
                for v in values {
                    joined.push(',');
                    joined.push_str(&String::from_utf8_lossy(v.as_bytes()));
                }
                Some(Cow::Owned(joined))
            }
        }
    }
}

/// The path without query string or fragment.
pub(crate) fn strip_query(path: &str) -> &str {
    let end = path.find(['?', '#']).unwrap_or(path.len());
    &path[..end]
}

/// A regex that must match the whole input (RE2's full match in Envoy), checked when the
/// config is compiled and built on first use: a large route table keeps only the regexes its
/// traffic needs in memory (a compiled regex is several kilobytes).
#[derive(Debug)]
pub(crate) struct FullRegex {
    anchored: String,
    compiled: std::sync::OnceLock<Option<Regex>>,
}

impl Clone for FullRegex {
    fn clone(&self) -> Self {
        FullRegex {
            anchored: self.anchored.clone(),
            compiled: std::sync::OnceLock::new(),
        }
    }
}

impl FullRegex {
    /// Whether `input` matches entirely.
    pub(crate) fn is_match(&self, input: &str) -> bool {
        let compiled = self
            .compiled
            .get_or_init(|| match Regex::new(&self.anchored) {
                Ok(r) => Some(r),
                Err(e) => {
                    // The syntax was checked at config time; only a size limit can fail here.
                    tracing::warn!(
                        "regex {:?} cannot be built ({e}); it matches nothing",
                        self.anchored
                    );
                    None
                }
            });
        compiled.as_ref().is_some_and(|r| r.is_match(input))
    }
}

/// A full-match regex, its syntax checked now (`at` names the field in errors).
pub(crate) fn full_regex(pattern: &str, at: &str) -> Result<FullRegex, RouterError> {
    let anchored = format!("^(?:{pattern})$");
    regex_syntax::Parser::new()
        .parse(&anchored)
        .map_err(|e| RouterError::new(at, format!("invalid regex {pattern:?}: {e}")))?;
    Ok(FullRegex {
        anchored,
        compiled: std::sync::OnceLock::new(),
    })
}

/// Envoy's `StringMatcher`.
#[derive(Debug, Clone)]
pub(crate) enum StringMatch {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    Regex(FullRegex),
}

#[derive(Debug, Clone)]
pub(crate) struct StringMatchCase {
    pattern: StringMatch,
    ignore_case: bool,
}

impl StringMatchCase {
    pub(crate) fn compile(m: &StringMatcher, at: &str) -> Result<Self, RouterError> {
        let lower = |s: &str| {
            if m.ignore_case {
                s.to_ascii_lowercase()
            } else {
                s.to_string()
            }
        };
        let pattern = match &m.match_pattern {
            Some(MatchPattern::Exact(s)) => StringMatch::Exact(lower(s)),
            Some(MatchPattern::Prefix(s)) => StringMatch::Prefix(lower(s)),
            Some(MatchPattern::Suffix(s)) => StringMatch::Suffix(lower(s)),
            Some(MatchPattern::Contains(s)) => StringMatch::Contains(lower(s)),
            Some(MatchPattern::SafeRegex(r)) => StringMatch::Regex(full_regex(&r.regex, at)?),
            Some(MatchPattern::Custom(c)) => {
                return Err(RouterError::new(
                    at,
                    format!("custom string matcher {:?} is not supported", c.name),
                ))
            }
            None => return Err(RouterError::new(at, "string matcher without a pattern")),
        };
        Ok(StringMatchCase {
            pattern,
            ignore_case: m.ignore_case,
        })
    }

    #[cfg(test)]
    pub(crate) fn exact(value: &str) -> Self {
        StringMatchCase {
            pattern: StringMatch::Exact(value.to_string()),
            ignore_case: false,
        }
    }

    /// The value an exact matcher compares with (lowercased when it ignores case).
    pub(crate) fn exact_value(&self) -> Option<&str> {
        match &self.pattern {
            StringMatch::Exact(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn matches(&self, value: &str) -> bool {
        if let StringMatch::Regex(r) = &self.pattern {
            // Envoy ignores `ignore_case` for regexes.
            return r.is_match(value);
        }
        let owned;
        let value = if self.ignore_case {
            owned = value.to_ascii_lowercase();
            owned.as_str()
        } else {
            value
        };
        match &self.pattern {
            StringMatch::Exact(s) => value == s,
            StringMatch::Prefix(s) => value.starts_with(s.as_str()),
            StringMatch::Suffix(s) => value.ends_with(s.as_str()),
            StringMatch::Contains(s) => value.contains(s.as_str()),
            StringMatch::Regex(_) => false,
        }
    }
}

/// How the path is matched.
#[derive(Debug, Clone)]
pub(crate) enum PathMatch {
    /// The path (query included, as in Envoy) starts with this.
    Prefix(String),
    /// The path without query equals this.
    Exact(String),
    /// The path without query fully matches.
    Regex(FullRegex),
    /// The path without query is this, or starts with this followed by `/`.
    SeparatedPrefix(String),
    /// CONNECT requests only.
    Connect,
}

/// One header condition.
#[derive(Debug, Clone)]
pub(crate) struct HeaderMatch {
    name: String,
    condition: HeaderCondition,
    invert: bool,
    missing_as_empty: bool,
}

#[derive(Debug, Clone)]
enum HeaderCondition {
    Present(bool),
    String(StringMatchCase),
    Range(i64, i64),
}

impl HeaderMatch {
    pub(crate) fn compile(h: &HeaderMatcher, at: &str) -> Result<Self, RouterError> {
        let string = |pattern: StringMatch| {
            HeaderCondition::String(StringMatchCase {
                pattern,
                ignore_case: false,
            })
        };
        // The deprecated direct matchers are still what older control planes send.
        #[allow(deprecated)]
        let condition = match &h.header_match_specifier {
            None => HeaderCondition::Present(true),
            Some(HeaderMatchSpecifier::PresentMatch(p)) => HeaderCondition::Present(*p),
            Some(HeaderMatchSpecifier::ExactMatch(s)) => string(StringMatch::Exact(s.clone())),
            Some(HeaderMatchSpecifier::PrefixMatch(s)) => string(StringMatch::Prefix(s.clone())),
            Some(HeaderMatchSpecifier::SuffixMatch(s)) => string(StringMatch::Suffix(s.clone())),
            Some(HeaderMatchSpecifier::ContainsMatch(s)) => {
                string(StringMatch::Contains(s.clone()))
            }
            Some(HeaderMatchSpecifier::SafeRegexMatch(r)) => {
                string(StringMatch::Regex(full_regex(&r.regex, at)?))
            }
            Some(HeaderMatchSpecifier::RangeMatch(r)) => HeaderCondition::Range(r.start, r.end),
            Some(HeaderMatchSpecifier::StringMatch(m)) => {
                HeaderCondition::String(StringMatchCase::compile(m, at)?)
            }
        };
        Ok(HeaderMatch {
            name: h.name.to_ascii_lowercase(),
            condition,
            invert: h.invert_match,
            missing_as_empty: h.treat_missing_header_as_empty,
        })
    }

    pub(crate) fn matches(&self, req: &RequestView<'_>) -> bool {
        let value = req.header(&self.name);
        let value = match (value, self.missing_as_empty) {
            (Some(v), _) => v,
            (None, true) => std::borrow::Cow::Borrowed(""),
            // An absent header matches only a presence condition that asks for absence (or
            // an inverted one that asks for presence), as in Envoy; inverting a value
            // condition does not make an absent header match.
            (None, false) => {
                return match self.condition {
                    HeaderCondition::Present(present) => present == self.invert,
                    _ => false,
                }
            }
        };
        let test = |v: &str| match &self.condition {
            HeaderCondition::Present(p) => *p,
            HeaderCondition::String(m) => m.matches(v),
            HeaderCondition::Range(start, end) => v
                .parse::<i64>()
                .map(|n| n >= *start && n < *end)
                .unwrap_or(false),
        };
        // A repeated header matches on its joined value, or on any one of its values.
        let matched = test(&value)
            || (value.contains(',')
                && req
                    .headers
                    .get_all(self.name.as_str())
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .any(test));
        matched != self.invert
    }
}

/// One query-parameter condition (first value of the parameter, not percent-decoded, as in
/// Envoy's router).
#[derive(Debug, Clone)]
pub(crate) struct QueryMatch {
    name: String,
    condition: Option<StringMatchCase>,
}

impl QueryMatch {
    fn compile(q: &QueryParameterMatcher, at: &str) -> Result<Self, RouterError> {
        let condition = match &q.query_parameter_match_specifier {
            None | Some(QueryParameterMatchSpecifier::PresentMatch(true)) => None,
            Some(QueryParameterMatchSpecifier::PresentMatch(false)) => {
                return Err(RouterError::new(
                    at,
                    "present_match: false is not meaningful",
                ))
            }
            Some(QueryParameterMatchSpecifier::StringMatch(m)) => {
                Some(StringMatchCase::compile(m, at)?)
            }
        };
        Ok(QueryMatch {
            name: q.name.clone(),
            condition,
        })
    }

    fn matches(&self, query: Option<&str>) -> bool {
        let Some(query) = query else { return false };
        for pair in query.split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            if name == self.name {
                return match &self.condition {
                    None => true,
                    Some(m) => m.matches(value),
                };
            }
        }
        false
    }
}

/// A compiled `RouteMatch`.
#[derive(Debug, Clone)]
pub(crate) struct RouteMatcher {
    pub(crate) path: PathMatch,
    /// The literal every matching path starts with (see [`RouteMatcher::literal_prefix`]).
    literal: String,
    case_sensitive: bool,
    headers: Vec<HeaderMatch>,
    query: Vec<QueryMatch>,
    grpc: bool,
}

impl RouteMatcher {
    pub(crate) fn compile(m: &RouteMatch, at: &str) -> Result<Self, RouterError> {
        let case_sensitive = m.case_sensitive.as_ref().map(|b| b.value).unwrap_or(true);
        let fold = |s: &str| {
            if case_sensitive {
                s.to_string()
            } else {
                s.to_ascii_lowercase()
            }
        };
        let path = match &m.path_specifier {
            Some(PathSpecifier::Prefix(p)) => PathMatch::Prefix(fold(p)),
            Some(PathSpecifier::Path(p)) => PathMatch::Exact(fold(p)),
            Some(PathSpecifier::SafeRegex(r)) => PathMatch::Regex(full_regex(&r.regex, at)?),
            Some(PathSpecifier::PathSeparatedPrefix(p)) => PathMatch::SeparatedPrefix(fold(p)),
            Some(PathSpecifier::ConnectMatcher(_)) => PathMatch::Connect,
            Some(PathSpecifier::PathMatchPolicy(p)) => {
                return Err(RouterError::new(
                    at,
                    format!("path match policy {:?} is not supported", p.name),
                ))
            }
            None => return Err(RouterError::new(at, "route match without a path specifier")),
        };
        if m.runtime_fraction.is_some() {
            tracing::debug!(
                "{at}: runtime_fraction is ignored (no runtime); the route always matches"
            );
        }
        let literal = if !case_sensitive {
            String::new()
        } else {
            match (&path, &m.path_specifier) {
                (PathMatch::Prefix(p) | PathMatch::Exact(p) | PathMatch::SeparatedPrefix(p), _) => {
                    p.clone()
                }
                (PathMatch::Regex(_), Some(PathSpecifier::SafeRegex(r))) => {
                    regex_literal_prefix(&r.regex)
                }
                _ => String::new(),
            }
        };
        Ok(RouteMatcher {
            path,
            literal,
            case_sensitive,
            headers: m
                .headers
                .iter()
                .enumerate()
                .map(|(i, h)| HeaderMatch::compile(h, &format!("{at}.headers[{i}]")))
                .collect::<Result<_, _>>()?,
            query: m
                .query_parameters
                .iter()
                .enumerate()
                .map(|(i, q)| QueryMatch::compile(q, &format!("{at}.query_parameters[{i}]")))
                .collect::<Result<_, _>>()?,
            grpc: m.grpc.is_some(),
        })
    }

    /// The literal every matching path (query included) starts with, used to index routes;
    /// case-insensitive paths and regexes without a literal start give "".
    pub(crate) fn literal_prefix(&self) -> &str {
        &self.literal
    }

    pub(crate) fn matches(&self, req: &RequestView<'_>) -> bool {
        if !self.path_matches(req) {
            return false;
        }
        if self.grpc {
            let is_grpc = req
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/grpc"));
            if !is_grpc {
                return false;
            }
        }
        if !self.headers.iter().all(|h| h.matches(req)) {
            return false;
        }
        if !self.query.is_empty() {
            let query = req.query();
            if !self.query.iter().all(|q| q.matches(query)) {
                return false;
            }
        }
        true
    }

    fn path_matches(&self, req: &RequestView<'_>) -> bool {
        let eq = |a: &str, b: &str| {
            if self.case_sensitive {
                a == b
            } else {
                a.eq_ignore_ascii_case(b)
            }
        };
        let starts = |path: &str, p: &str| {
            path.len() >= p.len() && path.is_char_boundary(p.len()) && eq(&path[..p.len()], p)
        };
        if req.method.eq_ignore_ascii_case("CONNECT") != matches!(self.path, PathMatch::Connect) {
            return false;
        }
        match &self.path {
            PathMatch::Prefix(p) => starts(req.path, p),
            PathMatch::Exact(p) => eq(req.path_only(), p),
            PathMatch::Regex(r) => r.is_match(req.path_only()),
            PathMatch::SeparatedPrefix(p) => {
                let path = req.path_only();
                starts(path, p) && (path.len() == p.len() || path.as_bytes()[p.len()] == b'/')
            }
            PathMatch::Connect => true,
        }
    }

    /// The length of the path the prefix matcher consumed (for `prefix_rewrite`).
    pub(crate) fn matched_prefix_len(&self) -> Option<usize> {
        match &self.path {
            PathMatch::Prefix(p) | PathMatch::SeparatedPrefix(p) => Some(p.len()),
            _ => None,
        }
    }
}

/// The literal text a regex's matches start with (conservative: stops at the first
/// metacharacter, and gives up on top-level alternation).
fn regex_literal_prefix(pattern: &str) -> String {
    if pattern.contains('|') || pattern.starts_with('^') {
        return String::new();
    }
    let mut out = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e) if e.is_ascii_punctuation() => out.push(e),
                _ => break,
            },
            '.' | '[' | '(' | ')' | '{' | '}' | '^' | '$' => break,
            '*' | '?' | '+' => {
                // The previous character was optional or repeated: it is not part of the
                // literal.
                out.pop();
                break;
            }
            c => {
                if matches!(chars.peek(), Some('*' | '?' | '{')) {
                    break;
                }
                out.push(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_literal_prefixes_are_conservative() {
        assert_eq!(regex_literal_prefix("/api/v[0-9]+/.*"), "/api/v");
        assert_eq!(regex_literal_prefix("/users/\\d+"), "/users/");
        assert_eq!(regex_literal_prefix("/ab?c"), "/a");
        assert_eq!(regex_literal_prefix("/a+"), "/");
        assert_eq!(regex_literal_prefix("/x|/y"), "");
        assert_eq!(regex_literal_prefix("/a\\.b"), "/a.b");
    }

    #[test]
    fn query_parameters_match_the_first_value() {
        let q = QueryMatch {
            name: "a".into(),
            condition: Some(StringMatchCase::exact("1")),
        };
        assert!(q.matches(Some("b=2&a=1")));
        assert!(!q.matches(Some("a=2&a=1")));
        assert!(!q.matches(None));
    }
}
