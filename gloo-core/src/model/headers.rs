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
