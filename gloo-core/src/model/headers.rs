//! Header manipulation options: Gloo's `options/headers/headers.proto`
//! (`headers.options.gloo.solo.io.HeaderManipulation`, `EarlyHeaderManipulation`) and the
//! solo-kit `envoy/api/v2/core/base.proto` `HeaderValueOption` it uses for request headers.
//!
//! A route that adds request headers (one literal, the others from a Secret) and removes a
//! response header:
//!
//! ```
//! use gloo_core::load::{parse_str, Format};
//! use gloo_core::model::headers::RequestHeaderSource;
//! use gloo_core::model::{Resource, ResourceRef};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//!
//! let yaml = r#"
//! apiVersion: gateway.solo.io/v1
//! kind: VirtualService
//! metadata:
//!   name: default
//!   namespace: gloo-system
//! spec:
//!   virtualHost:
//!     domains:
//!     - '*'
//!     routes:
//!     - matchers:
//!       - prefix: /petstore
//!       routeAction:
//!         single:
//!           upstream:
//!             name: default-petstore-8080
//!             namespace: gloo-system
//!       options:
//!         headerManipulation:
//!           requestHeadersToAdd:
//!           - header:
//!               key: x-gateway
//!               value: gloo
//!             append: false
//!           - headerSecretRef:
//!               name: petstore-api-headers
//!               namespace: gloo-system
//!           requestHeadersToRemove:
//!           - cookie
//!           responseHeadersToRemove:
//!           - server
//! "#;
//! let parsed = parse_str(yaml, "default.yaml", Format::Yaml);
//! assert!(parsed.is_ok(), "{:?}", parsed.errors);
//! let Resource::VirtualService(vs) = &parsed.resources[0].resource else {
//!     panic!("expected a VirtualService");
//! };
//! let route = &vs.spec.virtual_host.as_ref().ok_or("no virtualHost")?.routes[0];
//! let headers = route.options.as_ref().and_then(|o| o.header_manipulation.as_deref());
//! let headers = headers.ok_or("no headerManipulation")?;
//!
//! let [literal, from_secret] = headers.request_headers_to_add.as_slice() else {
//!     panic!("expected two request headers");
//! };
//! let Some(RequestHeaderSource::Header(header)) = literal.source()? else {
//!     panic!("expected a literal header");
//! };
//! assert_eq!((header.key.as_str(), header.value.as_str()), ("x-gateway", "gloo"));
//! // `append: false` overwrites a value the request already has.
//! assert_eq!(literal.append, Some(false));
//! let secret = ResourceRef::new("gloo-system", "petstore-api-headers");
//! assert_eq!(from_secret.source()?, Some(RequestHeaderSource::SecretRef(&secret)));
//!
//! assert_eq!(headers.request_headers_to_remove, ["cookie"]);
//! assert_eq!(headers.response_headers_to_remove, ["server"]);
//! # Ok(())
//! # }
//! ```

use serde::{Deserialize, Serialize};

use crate::model::ResourceRef;

/// Headers to add to and remove from requests and responses on a route, virtual host or
/// weighted destination.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderManipulation {
    /// Headers to add to the request (literal values or values from a secret).
    #[serde(
        alias = "request_headers_to_add",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub request_headers_to_add: Vec<RequestHeaderValueOption>,
    /// Names of headers to remove from the request.
    #[serde(
        alias = "request_headers_to_remove",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub request_headers_to_remove: Vec<String>,
    /// Headers to add to the response.
    #[serde(
        alias = "response_headers_to_add",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub response_headers_to_add: Vec<HeaderValueOption>,
    /// Names of headers to remove from the response.
    #[serde(
        alias = "response_headers_to_remove",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub response_headers_to_remove: Vec<String>,
}

/// Header manipulation applied before routing (HTTP connection manager
/// `earlyHeaderManipulation`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EarlyHeaderManipulation {
    /// Headers to add to the request.
    #[serde(
        alias = "headers_to_add",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub headers_to_add: Vec<RequestHeaderValueOption>,
    /// Names of headers to remove from the request.
    #[serde(
        alias = "headers_to_remove",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub headers_to_remove: Vec<String>,
}

/// A request header to add (`solo.io.envoy.api.v2.core.HeaderValueOption`): either a literal
/// `header` or a `headerSecretRef` whose key/value pairs become headers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestHeaderValueOption {
    /// Explicitly specified header. Only one of `header` or `headerSecretRef` can be set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<HeaderValue>,
    /// Reference to a secret holding headers. Only one of `headerSecretRef` or `header` can be set.
    #[serde(
        alias = "header_secret_ref",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub header_secret_ref: Option<ResourceRef>,
    /// Whether to append to existing values (default true) instead of overwriting them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub append: Option<bool>,
}

/// The source of a request header to add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestHeaderSource<'a> {
    /// A literal header.
    Header(&'a HeaderValue),
    /// Headers read from a secret.
    SecretRef(&'a ResourceRef),
}

impl RequestHeaderValueOption {
    /// The `header_option` oneof: the literal header or the secret reference.
    pub fn source(
        &self,
    ) -> Result<Option<RequestHeaderSource<'_>>, crate::model::routing::OneofError> {
        crate::model::routing::OneofError::check(
            "header_option",
            &[
                ("header", self.header.is_some()),
                ("headerSecretRef", self.header_secret_ref.is_some()),
            ],
        )?;
        Ok(match (&self.header, &self.header_secret_ref) {
            (Some(h), _) => Some(RequestHeaderSource::Header(h)),
            (None, Some(r)) => Some(RequestHeaderSource::SecretRef(r)),
            (None, None) => None,
        })
    }
}

impl EarlyHeaderManipulation {
    /// What Gloo (its `api_conversion.ToEnvoyHeaderValueOptions`) or Envoy refuses in these
    /// mutations, each message a path below `earlyHeaderManipulation`: a header to add that is
    /// neither literal nor from a Secret (or both), a literal header whose name is not an HTTP
    /// token or is a pseudo-header or `host` (see [`added_header_name_problem`]), a value
    /// Envoy cannot take (see [`header_value_problem`]), and a name to remove containing NUL,
    /// CR or LF. Envoy removes pseudo-headers and `host` when asked to, so Gloo and Envoy
    /// accept those names to remove, and so does this. The headers of `headerSecretRef`s are
    /// checked against the Secrets, where the Gateway is resolved.
    ///
    /// ```
    /// use gloo_core::model::headers::EarlyHeaderManipulation;
    /// let early: EarlyHeaderManipulation = serde_yaml_ng::from_str(
    ///     "headersToAdd: [{header: {key: ':path', value: /}}, {header: {key: x-a, value: 100%}}]
    /// headersToRemove: [':authority', \"x-\\nb\"]",
    /// )?;
    /// assert_eq!(
    ///     early.problems(),
    ///     [
    ///         "headersToAdd[0].header.key: :-prefixed or host headers may not be modified, found \":path\"",
    ///         "headersToAdd[1].header.value: Envoy reads header values as substitution formats: the % at byte 3 starts no command (%COMMAND%, %COMMAND(arg)%), so a literal % must be written %%",
    ///         "headersToRemove[1]: invalid header name \"x-\\nb\" (NUL, CR and LF are not allowed)",
    ///     ]
    /// );
    /// # Ok::<(), serde_yaml_ng::Error>(())
    /// ```
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        request_headers_to_add_problems(&self.headers_to_add, "headersToAdd", &mut problems);
        for (i, name) in self.headers_to_remove.iter().enumerate() {
            if name.contains(['\0', '\r', '\n']) {
                problems.push(format!(
                    "headersToRemove[{i}]: invalid header name {name:?} (NUL, CR and LF are not allowed)"
                ));
            }
        }
        problems
    }
}

impl HeaderManipulation {
    /// What Gloo (its headers plugin) or Envoy (its route configuration's header parser)
    /// refuses in these headers, each message a path below `headerManipulation`. Envoy refuses
    /// the whole route configuration over one of them, so they reject the resource instead:
    ///
    /// - `requestHeadersToAdd`: as in [`EarlyHeaderManipulation::problems`], a header neither
    ///   literal nor from a Secret (or both), a literal name Gloo refuses (a pseudo-header,
    ///   `host`, not an HTTP token: see [`added_header_name_problem`]) and a value Envoy
    ///   refuses (see [`header_value_problem`]). The headers of `headerSecretRef`s are checked
    ///   against the Secrets, where the resource is resolved.
    /// - `responseHeadersToAdd`: no `header` (Gloo: "header section of header value option
    ///   cannot be nil"), a pseudo-header or `host` (refused by Gloo and Envoy alike), an empty
    ///   name or one with NUL, CR or LF (Envoy's `HeaderValue.key`), and a value Envoy refuses
    ///   (it parses these as substitution formats too). Neither Gloo nor Envoy asks a response
    ///   header name to be an HTTP token, so neither does this.
    /// - `requestHeadersToRemove` and `responseHeadersToRemove`: an empty name or one with NUL,
    ///   CR or LF, and a pseudo-header or `host`, which Envoy refuses to remove here (its early
    ///   header mutation does remove them; this is the route-level parser).
    ///
    /// ```
    /// use gloo_core::model::headers::HeaderManipulation;
    /// let headers: HeaderManipulation = serde_yaml_ng::from_str(
    ///     "requestHeadersToAdd: [{header: {key: x-a, value: '%REQ(x-b)% 100%%'}}]
    /// responseHeadersToAdd: [{header: {key: x-c, value: ok}}, {header: {key: x-d, value: 100%}}]
    /// requestHeadersToRemove: [host]
    /// responseHeadersToRemove: [':status', x-e]",
    /// )?;
    /// assert_eq!(
    ///     headers.problems(),
    ///     [
    ///         "responseHeadersToAdd[1].header.value: Envoy reads header values as substitution formats: the % at byte 3 starts no command (%COMMAND%, %COMMAND(arg)%), so a literal % must be written %%",
    ///         "requestHeadersToRemove[0]: :-prefixed or host headers may not be removed, found \"host\"",
    ///         "responseHeadersToRemove[0]: :-prefixed or host headers may not be removed, found \":status\"",
    ///     ]
    /// );
    /// # Ok::<(), serde_yaml_ng::Error>(())
    /// ```
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        request_headers_to_add_problems(
            &self.request_headers_to_add,
            "requestHeadersToAdd",
            &mut problems,
        );
        for (i, option) in self.response_headers_to_add.iter().enumerate() {
            let at = format!("responseHeadersToAdd[{i}]");
            let Some(header) = &option.header else {
                problems.push(format!(
                    "{at}.header: required (header section of header value option cannot be nil)"
                ));
                continue;
            };
            if let Some(why) = response_header_name_problem(&header.key) {
                problems.push(format!("{at}.header.key: {why}"));
            }
            if let Some(why) = header_value_problem(&header.value) {
                problems.push(format!("{at}.header.value: {why}"));
            }
        }
        for (field, names) in [
            ("requestHeadersToRemove", &self.request_headers_to_remove),
            ("responseHeadersToRemove", &self.response_headers_to_remove),
        ] {
            for (i, name) in names.iter().enumerate() {
                if let Some(why) = removed_header_name_problem(name) {
                    problems.push(format!("{field}[{i}]: {why}"));
                }
            }
        }
        problems
    }
}

/// The problems of request headers to add (`field` names the list), as Gloo's
/// `ToEnvoyHeaderValueOptions` and Envoy see them: see [`EarlyHeaderManipulation::problems`].
fn request_headers_to_add_problems(
    options: &[RequestHeaderValueOption],
    field: &str,
    problems: &mut Vec<String>,
) {
    for (i, option) in options.iter().enumerate() {
        let at = format!("{field}[{i}]");
        match option.source() {
            Err(e) => problems.push(format!("{at}: {e}")),
            Ok(None) => problems.push(format!("{at}: set one of header, headerSecretRef")),
            Ok(Some(RequestHeaderSource::Header(header))) => {
                if let Some(why) = added_header_name_problem(&header.key) {
                    problems.push(format!("{at}.header.key: {why}"));
                }
                if let Some(why) = header_value_problem(&header.value) {
                    problems.push(format!("{at}.header.value: {why}"));
                }
            }
            Ok(Some(RequestHeaderSource::SecretRef(_))) => {}
        }
    }
}

/// Whether `name` is `host` or a pseudo-header (`:path`), which Envoy's route configuration
/// neither adds nor removes (its `HeaderUtility::isModifiableHeader` / `isRemovableHeader`).
fn pseudo_or_host(name: &str) -> bool {
    name.starts_with(':') || name.eq_ignore_ascii_case("host")
}

/// Why Gloo (its headers plugin's `convertResponseHeaderValueOption`) or Envoy would refuse
/// `name` as the name of a response header to add: empty or with NUL, CR or LF (Envoy's
/// `HeaderValue.key`), a pseudo-header or `host`.
fn response_header_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("empty HTTP header names are not allowed".to_string());
    }
    if name.contains(['\0', '\r', '\n']) {
        return Some(format!(
            "invalid header name {name:?} (NUL, CR and LF are not allowed)"
        ));
    }
    if name.starts_with(':') {
        return Some(format!(":-prefixed headers cannot be set: {name:?}"));
    }
    if name.eq_ignore_ascii_case("host") {
        return Some("cannot set Host header in response headers".to_string());
    }
    None
}

/// Why Envoy would refuse `name` as the name of a request or response header a route, virtual
/// host or weighted destination removes: empty or with NUL, CR or LF (the proto's rules), a
/// pseudo-header or `host` (its header parser).
fn removed_header_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("empty HTTP header names are not allowed".to_string());
    }
    if name.contains(['\0', '\r', '\n']) {
        return Some(format!(
            "invalid header name {name:?} (NUL, CR and LF are not allowed)"
        ));
    }
    if pseudo_or_host(name) {
        return Some(format!(
            ":-prefixed or host headers may not be removed, found {name:?}"
        ));
    }
    None
}

/// Why Gloo (its `validateCustomHeaders`) or Envoy would refuse `name` as the name of a request
/// header to add, if either would: an empty name, a pseudo-header (`:path`) or `host` (Envoy:
/// ":-prefixed or host headers may not be modified"), or a name that is not an HTTP token
/// (Gloo's `ValidateHeaderKey`: letters, digits and ``!#$%&'*+-.^_`|~``; Envoy lower-cases it).
///
/// ```
/// use gloo_core::model::headers::added_header_name_problem;
/// assert_eq!(added_header_name_problem("X-Tier"), None);
/// assert!(added_header_name_problem("Host").is_some());
/// assert!(added_header_name_problem(":authority").is_some());
/// assert!(added_header_name_problem("x tier").is_some());
/// assert!(added_header_name_problem("").is_some());
/// ```
pub fn added_header_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("empty HTTP header names are not allowed".to_string());
    }
    if pseudo_or_host(name) {
        return Some(format!(
            ":-prefixed or host headers may not be modified, found {name:?}"
        ));
    }
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if !name.bytes().all(token) {
        return Some(format!("{name:?} is an invalid HTTP header key"));
    }
    None
}

/// The longest header value Envoy takes (`HeaderValue.value`'s `max_bytes`).
const MAX_HEADER_VALUE_BYTES: usize = 16384;

/// Why Envoy would refuse `value` as the value of a header it adds, if it would: NUL, CR or
/// LF in it, more than 16384 bytes, or a `%` that starts no command operator. Envoy reads the
/// values of headers it adds as substitution formats (`%REQ(x-a)%`, `%START_TIME%`, `%%` for
/// one `%`), and refuses a listener with a format it cannot parse. Only the syntax is checked
/// here: a well-formed operator Envoy does not know (`%NOPE%`) is left to Envoy.
///
/// ```
/// use gloo_core::model::headers::header_value_problem;
/// assert_eq!(header_value_problem("gold"), None);
/// assert_eq!(header_value_problem("%REQ(x-tier):8% 100%%"), None);
/// assert!(header_value_problem("100%").is_some());
/// assert!(header_value_problem("%req(x)%").is_some());
/// assert!(header_value_problem("a\nb").is_some());
/// ```
pub fn header_value_problem(value: &str) -> Option<String> {
    if value.contains(['\0', '\r', '\n']) {
        return Some("NUL, CR and LF are not allowed in a header value".to_string());
    }
    if value.len() > MAX_HEADER_VALUE_BYTES {
        return Some(format!(
            "{} bytes is longer than the {MAX_HEADER_VALUE_BYTES} Envoy allows",
            value.len()
        ));
    }
    let bytes = value.as_bytes();
    let mut pos = 0;
    while let Some(offset) = bytes[pos..].iter().position(|b| *b == b'%') {
        let start = pos + offset;
        match command_operator_len(&bytes[start..]) {
            Some(len) => pos = start + len,
            None => {
                return Some(format!(
                    "Envoy reads header values as substitution formats: the % at byte {start} starts no command (%COMMAND%, %COMMAND(arg)%), so a literal % must be written %%"
                ))
            }
        }
    }
    None
}

/// The length of the `%%` or command operator at the start of `s` (which starts with `%`), as
/// Envoy's `SubstitutionFormatParser` reads it: `%`, a command of `A-Z`, `0-9` and `_`, an
/// optional `(argument)` without `)`, an optional `:length`, and `%`.
fn command_operator_len(s: &[u8]) -> Option<usize> {
    if s.get(1) == Some(&b'%') {
        return Some(2);
    }
    let mut i = 1;
    let command = s[i..]
        .iter()
        .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || **b == b'_')
        .count();
    if command == 0 {
        return None;
    }
    i += command;
    if s.get(i) == Some(&b'(') {
        let close = s[i..].iter().position(|b| *b == b')')?;
        i += close + 1;
    }
    if s.get(i) == Some(&b':') {
        let digits = s[i + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        i += 1 + digits;
    }
    (s.get(i) == Some(&b'%')).then_some(i + 1)
}

/// A response header to add (`headers.options.gloo.solo.io.HeaderValueOption`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderValueOption {
    /// The header to add.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<HeaderValue>,
    /// Whether to append to existing values (default true) instead of overwriting them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub append: Option<bool>,
}

/// A header name and value.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderValue {
    /// Header name.
    #[serde(default)]
    pub key: String,
    /// Header value.
    #[serde(default)]
    pub value: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    // docs/content/guides/traffic_management/request_processing/append_remove_headers/_index.md
    const DOC: &str = r#"
headerManipulation:

  # add headers to request
  requestHeadersToAdd:
  - header:
      key: HEADER_NAME
      value: HEADER_VALUE
    # if the header HEADER_NAME is already present,
    # append the value.
    append: true
  - header:
      key: HEADER_NAME
      value: HEADER_VALUE
    # if the header HEADER_NAME is already present,
    # overwrite the value.
    append: false
  - headerSecretRef:
      name: SECRET_NAME
      namespace: SECRET_NAMESPACE

  # remove headers from request
  requestHeadersToRemove:
  - "HEADER_NAME"
  - "HEADER_NAME"

  # add headers to response
  responseHeadersToAdd:
  - header:
      key: HEADER_NAME
      value: HEADER_VALUE
    append: true
  - header:
      key: HEADER_NAME
      value: HEADER_VALUE
    append: false

  # remove headers from response
  responseHeadersToRemove:
  - "HEADER_NAME"
  - "HEADER_NAME"
"#;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Wrapper {
        header_manipulation: HeaderManipulation,
    }

    #[test]
    fn parses_docs_example_and_round_trips() {
        let hm = serde_yaml_ng::from_str::<Wrapper>(DOC)
            .unwrap()
            .header_manipulation;
        assert_eq!(hm.request_headers_to_add.len(), 3);
        assert_eq!(hm.request_headers_to_add[0].append, Some(true));
        assert_eq!(
            hm.request_headers_to_add[0].source().unwrap(),
            Some(RequestHeaderSource::Header(&HeaderValue {
                key: "HEADER_NAME".into(),
                value: "HEADER_VALUE".into()
            }))
        );
        assert_eq!(
            hm.request_headers_to_add[2].source().unwrap(),
            Some(RequestHeaderSource::SecretRef(&ResourceRef::new(
                "SECRET_NAMESPACE",
                "SECRET_NAME"
            )))
        );
        assert_eq!(hm.response_headers_to_add[1].append, Some(false));
        assert_eq!(
            hm.response_headers_to_remove,
            vec!["HEADER_NAME", "HEADER_NAME"]
        );
        let json = serde_json::to_string(&hm).unwrap();
        let back: HeaderManipulation = serde_json::from_str(&json).unwrap();
        assert_eq!(hm, back);
    }

    #[test]
    fn both_header_and_secret_is_an_error() {
        let opt: RequestHeaderValueOption =
            serde_yaml_ng::from_str("header: {key: a, value: b}\nheaderSecretRef: {name: s}")
                .unwrap();
        let err = opt.source().unwrap_err();
        assert_eq!(err.set, vec!["header", "headerSecretRef"]);
    }

    #[test]
    fn unknown_field_is_rejected() {
        let err = serde_yaml_ng::from_str::<HeaderManipulation>("requestHeadersToAppend: []")
            .unwrap_err();
        assert!(err.to_string().contains("requestHeadersToAppend"), "{err}");
    }
}
