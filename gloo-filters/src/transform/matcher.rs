//! Compiled request and response matchers (Envoy's `RouteMatch` subset, `HeaderMatcher`,
//! `StringMatcher`, and envoy-gloo's `ResponseMatcher`).

use http::Method;
use regex::Regex;

use super::config::{
    HeaderMatchSpec, HeaderMatcher, PathMatch, ResponseMatcher, RouteMatch, StringMatchKind,
    StringMatcher,
};
use super::error::ConfigError;
use super::head::{Head, Name};

fn full_regex(field: &str, regex: &str) -> Result<Regex, ConfigError> {
    Regex::new(&format!("^(?:{regex})$")).map_err(|e| ConfigError::new(field, e))
}

#[derive(Debug)]
enum StringMatch {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    Regex(Regex),
}

#[derive(Debug)]
pub(crate) struct CompiledStringMatcher {
    kind: StringMatch,
    ignore_case: bool,
}

impl CompiledStringMatcher {
    pub(crate) fn compile(m: &StringMatcher, field: &str) -> Result<Self, ConfigError> {
        let lower = |s: &String| {
            if m.ignore_case {
                s.to_ascii_lowercase()
            } else {
                s.clone()
            }
        };
        let kind = match &m.kind {
            StringMatchKind::Exact(s) => StringMatch::Exact(lower(s)),
            StringMatchKind::Prefix(s) => StringMatch::Prefix(lower(s)),
            StringMatchKind::Suffix(s) => StringMatch::Suffix(lower(s)),
            StringMatchKind::Contains(s) => StringMatch::Contains(lower(s)),
            StringMatchKind::Regex(r) => StringMatch::Regex(full_regex(field, r)?),
        };
        Ok(Self {
            kind,
            ignore_case: m.ignore_case,
        })
    }

    pub(crate) fn matches(&self, value: &str) -> bool {
        let folded;
        let value = if self.ignore_case && !matches!(self.kind, StringMatch::Regex(_)) {
            folded = value.to_ascii_lowercase();
            folded.as_str()
        } else {
            value
        };
        match &self.kind {
            StringMatch::Exact(s) => value == s,
            StringMatch::Prefix(s) => value.starts_with(s.as_str()),
            StringMatch::Suffix(s) => value.ends_with(s.as_str()),
            StringMatch::Contains(s) => value.contains(s.as_str()),
            StringMatch::Regex(r) => r.is_match(value),
        }
    }
}

#[derive(Debug)]
enum HeaderSpec {
    Present(bool),
    String(CompiledStringMatcher),
}

#[derive(Debug)]
pub(crate) struct CompiledHeaderMatcher {
    name: Name,
    spec: HeaderSpec,
    invert: bool,
}

impl CompiledHeaderMatcher {
    fn compile(m: &HeaderMatcher, field: &str) -> Result<Self, ConfigError> {
        let name = Name::parse(&m.name.to_ascii_lowercase())
            .map_err(|e| ConfigError::new(format!("{field}.name"), e))?;
        let spec = match &m.spec {
            HeaderMatchSpec::Present(p) => HeaderSpec::Present(*p),
            HeaderMatchSpec::String(s) => HeaderSpec::String(CompiledStringMatcher::compile(
                s,
                &format!("{field}.string_match"),
            )?),
        };
        Ok(Self {
            name,
            spec,
            invert: m.invert,
        })
    }

    /// Envoy's `HeaderUtility::matchHeaders` for one matcher.
    fn matches(&self, head: &Head) -> bool {
        let Some(value) = head.get_joined(&self.name) else {
            // An absent header matches only `present_match: false`, or, inverted,
            // `present_match: true`.
            let present = matches!(self.spec, HeaderSpec::Present(p) if p != self.invert);
            return matches!(self.spec, HeaderSpec::Present(_)) && !present;
        };
        let matched = match &self.spec {
            HeaderSpec::Present(p) => *p,
            HeaderSpec::String(s) => s.matches(&value),
        };
        matched != self.invert
    }
}

fn compile_headers(
    headers: &[HeaderMatcher],
    field: &str,
) -> Result<Vec<CompiledHeaderMatcher>, ConfigError> {
    headers
        .iter()
        .enumerate()
        .map(|(i, h)| CompiledHeaderMatcher::compile(h, &format!("{field}[{i}]")))
        .collect()
}

#[derive(Debug)]
enum CompiledPath {
    Prefix(String),
    Exact(String),
    Regex(Regex),
}

/// A validated [`RouteMatch`].
#[derive(Debug)]
pub(crate) struct CompiledRouteMatch {
    path: CompiledPath,
    case_sensitive: bool,
    headers: Vec<CompiledHeaderMatcher>,
    methods: Vec<Method>,
}

impl CompiledRouteMatch {
    pub(crate) fn compile(m: &RouteMatch) -> Result<Self, ConfigError> {
        let fold = |s: &String| {
            if m.case_sensitive {
                s.clone()
            } else {
                s.to_ascii_lowercase()
            }
        };
        let path = match &m.path {
            PathMatch::Prefix(p) => CompiledPath::Prefix(fold(p)),
            PathMatch::Exact(p) => CompiledPath::Exact(fold(p)),
            PathMatch::Regex(r) => CompiledPath::Regex(full_regex("safe_regex", r)?),
        };
        Ok(Self {
            path,
            case_sensitive: m.case_sensitive,
            headers: compile_headers(&m.headers, "headers")?,
            methods: m.methods.clone(),
        })
    }

    pub(crate) fn matches(&self, head: &Head) -> bool {
        let path = head.path();
        let folded;
        let path = if self.case_sensitive {
            path
        } else {
            folded = path.to_ascii_lowercase();
            &folded
        };
        let path_ok = match &self.path {
            CompiledPath::Prefix(p) => path.starts_with(p.as_str()),
            CompiledPath::Exact(p) => path == p,
            CompiledPath::Regex(r) => r.is_match(head.path()),
        };
        let method_ok = self.methods.is_empty()
            || matches!(&head.kind, super::head::Kind::Request { method, .. } if self.methods.contains(method));
        path_ok && method_ok && self.headers.iter().all(|h| h.matches(head))
    }
}

/// A validated [`ResponseMatcher`].
#[derive(Debug)]
pub(crate) struct CompiledResponseMatcher {
    headers: Vec<CompiledHeaderMatcher>,
    details: Option<CompiledStringMatcher>,
}

impl CompiledResponseMatcher {
    pub(crate) fn compile(m: &ResponseMatcher) -> Result<Self, ConfigError> {
        Ok(Self {
            headers: compile_headers(&m.headers, "headers")?,
            details: m
                .response_code_details
                .as_ref()
                .map(|d| CompiledStringMatcher::compile(d, "response_code_details"))
                .transpose()?,
        })
    }

    pub(crate) fn matches(&self, head: &Head, details: Option<&str>) -> bool {
        if let Some(matcher) = &self.details {
            match details {
                Some(d) if matcher.matches(d) => {}
                _ => return false,
            }
        }
        self.headers.iter().all(|h| h.matches(head))
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, Method, StatusCode, Uri};

    use super::*;

    fn head(headers: &[(&str, &str)]) -> Head {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                http::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        Head::request(Method::GET, Uri::from_static("/Api/x?q=1"), map)
    }

    fn matches(m: HeaderMatcher, h: &Head) -> bool {
        CompiledHeaderMatcher::compile(&m, "m").unwrap().matches(h)
    }

    // Envoy's HeaderUtility::matchHeaders: an absent header matches `present_match: false`,
    // and, inverted, only `present_match: true`.
    #[test]
    fn absent_headers_and_invert() {
        let none = head(&[]);
        assert!(!matches(HeaderMatcher::present("x", true), &none));
        assert!(matches(HeaderMatcher::present("x", false), &none));
        assert!(matches(
            HeaderMatcher::present("x", true).invert(true),
            &none
        ));
        assert!(!matches(HeaderMatcher::exact("x", "a"), &none));
        assert!(!matches(HeaderMatcher::exact("x", "a").invert(true), &none));

        let some = head(&[("x", "a"), ("x", "b")]);
        assert!(matches(HeaderMatcher::present("x", true), &some));
        // Several values are joined with ",".
        assert!(matches(HeaderMatcher::exact("x", "a,b"), &some));
        assert!(matches(HeaderMatcher::exact("x", "a").invert(true), &some));
        assert!(matches(
            HeaderMatcher::string("X", StringMatcher::prefix("A").ignore_case(true)),
            &some
        ));
        assert!(matches(HeaderMatcher::regex("x", "a,.*"), &some));
        assert!(
            !matches(HeaderMatcher::regex("x", "a"), &some),
            "regexes match fully"
        );
    }

    #[test]
    fn paths_ignore_the_query_and_can_ignore_case() {
        let h = head(&[]);
        let m = |r: RouteMatch| CompiledRouteMatch::compile(&r).unwrap().matches(&h);
        assert!(m(RouteMatch::path("/Api/x")));
        assert!(!m(RouteMatch::path("/api/x")));
        assert!(m(RouteMatch::path("/api/x").case_sensitive(false)));
        assert!(m(RouteMatch::prefix("/Api")));
        assert!(!m(RouteMatch::prefix("/Api").method(Method::POST)));
        assert!(m(RouteMatch::regex("/Api/[a-z]")));
        assert!(!m(RouteMatch::regex("/Api")));

        let response = Head::response(StatusCode::NOT_FOUND, HeaderMap::new());
        let rm = CompiledResponseMatcher::compile(
            &ResponseMatcher::new()
                .header(HeaderMatcher::exact(":status", "404"))
                .response_code_details(StringMatcher::exact("via_upstream")),
        )
        .unwrap();
        assert!(rm.matches(&response, Some("via_upstream")));
        assert!(!rm.matches(&response, None));
        assert!(!rm.matches(&response, Some("other")));
    }
}
