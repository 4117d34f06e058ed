//! A request or response head seen as Envoy's header map: the headers plus the pseudo-headers
//! `:method`, `:path`, `:authority`, `:scheme` (requests) and `:status` (responses).

use http::header::{HeaderName, HeaderValue, HOST};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Method, StatusCode, Uri};

use super::error::TransformError;

/// A pseudo-header templates may read and set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pseudo {
    Method,
    Path,
    Authority,
    Scheme,
    Status,
}

impl Pseudo {
    pub(crate) fn parse(name: &str) -> Option<Self> {
        Some(match name {
            ":method" => Self::Method,
            ":path" => Self::Path,
            ":authority" => Self::Authority,
            ":scheme" => Self::Scheme,
            ":status" => Self::Status,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Method => ":method",
            Self::Path => ":path",
            Self::Authority => ":authority",
            Self::Scheme => ":scheme",
            Self::Status => ":status",
        }
    }
}

/// A header name as configured: a pseudo-header or a lowercase header name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Name {
    Pseudo(Pseudo),
    Header(HeaderName),
}

impl Name {
    /// Parses a configured name (case-insensitively, as Envoy's `LowerCaseString`).
    pub(crate) fn parse(name: &str) -> Result<Self, String> {
        if name.starts_with(':') {
            return Pseudo::parse(&name.to_ascii_lowercase())
                .map(Self::Pseudo)
                .ok_or_else(|| {
                    format!(
                        "unknown pseudo-header {name:?} (known: :method, :path, :authority, :scheme, :status)"
                    )
                });
        }
        HeaderName::from_bytes(name.as_bytes())
            .map(Self::Header)
            .map_err(|_| format!("invalid header name {name:?}"))
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Kind {
    Request { method: Method, uri: Uri },
    Response { status: StatusCode },
}

/// The head being transformed.
#[derive(Clone, Debug)]
pub(crate) struct Head {
    pub(crate) kind: Kind,
    pub(crate) headers: HeaderMap,
}

impl Head {
    pub(crate) fn request(method: Method, uri: Uri, headers: HeaderMap) -> Self {
        Self {
            kind: Kind::Request { method, uri },
            headers,
        }
    }

    pub(crate) fn response(status: StatusCode, headers: HeaderMap) -> Self {
        Self {
            kind: Kind::Response { status },
            headers,
        }
    }

    pub(crate) fn is_request(&self) -> bool {
        matches!(self.kind, Kind::Request { .. })
    }

    /// The first value of a header (Envoy's `get(...)[0]`), or a pseudo-header.
    pub(crate) fn get(&self, name: &Name) -> Option<String> {
        match name {
            Name::Header(h) => self
                .headers
                .get(h)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
            Name::Pseudo(p) => self.pseudo(*p),
        }
    }

    /// Looks up a name given at request time (e.g. `header("X-Foo")`), case-insensitively.
    pub(crate) fn get_str(&self, name: &str) -> Option<String> {
        Name::parse(&name.to_ascii_lowercase())
            .ok()
            .and_then(|n| self.get(&n))
    }

    /// All values of a header joined with `,` (what Envoy's header matchers compare).
    pub(crate) fn get_joined(&self, name: &Name) -> Option<String> {
        match name {
            Name::Header(h) => {
                let mut values = self.headers.get_all(h).iter().peekable();
                values.peek()?;
                Some(
                    values
                        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                        .collect::<Vec<_>>()
                        .join(","),
                )
            }
            Name::Pseudo(p) => self.pseudo(*p),
        }
    }

    fn pseudo(&self, p: Pseudo) -> Option<String> {
        match (&self.kind, p) {
            (Kind::Request { method, .. }, Pseudo::Method) => Some(method.as_str().to_owned()),
            (Kind::Request { uri, .. }, Pseudo::Path) => Some(
                uri.path_and_query()
                    .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned()),
            ),
            (Kind::Request { uri, .. }, Pseudo::Authority) => {
                uri.authority().map(|a| a.as_str().to_owned()).or_else(|| {
                    self.headers
                        .get(HOST)
                        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                })
            }
            (Kind::Request { uri, .. }, Pseudo::Scheme) => uri.scheme_str().map(str::to_owned),
            (Kind::Response { status }, Pseudo::Status) => Some(status.as_u16().to_string()),
            _ => None,
        }
    }

    /// The path without the query string (what route matchers compare).
    pub(crate) fn path(&self) -> &str {
        match &self.kind {
            Kind::Request { uri, .. } => uri.path(),
            Kind::Response { .. } => "",
        }
    }

    /// Replaces a header's values with `value`; an empty value removes the header (Envoy's
    /// `remove` + `addReferenceKey` when non-empty). An empty pseudo-header value is ignored:
    /// a request always has a method and a path.
    pub(crate) fn set(&mut self, name: &Name, value: &str) -> Result<(), TransformError> {
        match name {
            Name::Header(h) => {
                self.headers.remove(h);
                if !value.is_empty() {
                    self.headers
                        .insert(h.clone(), header_value(h.as_str(), value)?);
                }
                Ok(())
            }
            Name::Pseudo(_) if value.is_empty() => Ok(()),
            Name::Pseudo(p) => self.set_pseudo(*p, value),
        }
    }

    /// Appends a header value unless `value` is empty. Pseudo-headers have one value, so
    /// appending to one sets it.
    pub(crate) fn append(&mut self, name: &Name, value: &str) -> Result<(), TransformError> {
        if value.is_empty() {
            return Ok(());
        }
        match name {
            Name::Header(h) => {
                self.headers
                    .append(h.clone(), header_value(h.as_str(), value)?);
                Ok(())
            }
            Name::Pseudo(p) => self.set_pseudo(*p, value),
        }
    }

    fn set_pseudo(&mut self, p: Pseudo, value: &str) -> Result<(), TransformError> {
        let invalid = |what: &dyn std::fmt::Display| {
            TransformError::new(format_args!("invalid {} value {value:?}: {what}", p.name()))
        };
        match (&mut self.kind, p) {
            (Kind::Request { method, .. }, Pseudo::Method) => {
                *method = Method::from_bytes(value.as_bytes()).map_err(|e| invalid(&e))?;
            }
            (Kind::Request { uri, .. }, Pseudo::Path) => {
                let pq = PathAndQuery::try_from(value).map_err(|e| invalid(&e))?;
                let mut parts = std::mem::take(uri).into_parts();
                parts.path_and_query = Some(pq);
                *uri = Uri::from_parts(parts).map_err(|e| invalid(&e))?;
            }
            (Kind::Request { uri, .. }, Pseudo::Authority) => {
                let authority = Authority::try_from(value).map_err(|e| invalid(&e))?;
                if uri.authority().is_some() {
                    let mut parts = std::mem::take(uri).into_parts();
                    parts.authority = Some(authority);
                    *uri = Uri::from_parts(parts).map_err(|e| invalid(&e))?;
                }
                self.headers.insert(HOST, header_value("host", value)?);
            }
            (Kind::Request { uri, .. }, Pseudo::Scheme) => {
                let scheme = Scheme::try_from(value).map_err(|e| invalid(&e))?;
                // An origin-form URI (no authority) cannot carry a scheme.
                if uri.authority().is_some() {
                    let mut parts = std::mem::take(uri).into_parts();
                    parts.scheme = Some(scheme);
                    *uri = Uri::from_parts(parts).map_err(|e| invalid(&e))?;
                }
            }
            (Kind::Response { status }, Pseudo::Status) => {
                *status = value
                    .parse::<u16>()
                    .ok()
                    .and_then(|code| StatusCode::from_u16(code).ok())
                    .ok_or_else(|| invalid(&"not a status code"))?;
            }
            (Kind::Request { .. }, Pseudo::Status) => {
                return Err(TransformError::new(":status cannot be set on a request"))
            }
            (Kind::Response { .. }, _) => {
                return Err(TransformError::new(format_args!(
                    "{} cannot be set on a response",
                    p.name()
                )))
            }
        }
        Ok(())
    }

    /// Removes every value of a (non-pseudo) header.
    pub(crate) fn remove(&mut self, name: &HeaderName) {
        self.headers.remove(name);
    }

    /// Every header as (name, value), pseudo-headers first, as Envoy iterates its header map.
    pub(crate) fn entries(&self) -> Vec<(String, String)> {
        let pseudos: &[Pseudo] = match self.kind {
            Kind::Request { .. } => &[
                Pseudo::Authority,
                Pseudo::Path,
                Pseudo::Method,
                Pseudo::Scheme,
            ],
            Kind::Response { .. } => &[Pseudo::Status],
        };
        let mut out: Vec<(String, String)> = pseudos
            .iter()
            .filter_map(|p| self.pseudo(*p).map(|v| (p.name().to_owned(), v)))
            .collect();
        out.extend(self.headers.iter().map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        }));
        out
    }
}

/// Any bytes but control characters (Envoy refuses only NUL, CR and LF; `http` also refuses
/// the other controls but tab).
fn header_value(name: &str, value: &str) -> Result<HeaderValue, TransformError> {
    HeaderValue::from_bytes(value.as_bytes()).map_err(|_| {
        TransformError::new(format_args!(
            "header {name:?} rendered to an invalid header value {value:?}"
        ))
    })
}
