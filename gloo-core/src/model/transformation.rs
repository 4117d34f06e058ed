//! Request/response transformations: Gloo's `options/transformation/transformation.proto`
//! (`transformation.options.gloo.solo.io`), the user-facing form of the envoy-gloo
//! transformation filter (`external/envoy/extensions/transformation/transformation.proto`).
//!
//! `xsltTransformation` was removed in Gloo 1.22 (the proto reserves it), so it is rejected
//! as an unknown field like Gloo does.
//!
//! A route whose requests get an `x-foo` header holding their `foo` query parameter, with the
//! body passed through untouched:
//!
//! ```
//! use gloo_core::load::{parse_str, Format};
//! use gloo_core::model::transformation::{
//!     BodyTransformationRef, ExtractionSourceRef, TransformationTypeRef,
//! };
//! use gloo_core::model::Resource;
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
//!       - prefix: /
//!       routeAction:
//!         single:
//!           upstream:
//!             name: json-upstream
//!             namespace: gloo-system
//!       options:
//!         stagedTransformations:
//!           regular:
//!             requestTransforms:
//!             - requestTransformation:
//!                 transformationTemplate:
//!                   extractors:
//!                     foo:
//!                       header: ':path'
//!                       regex: '(.*foo=([^&]*).*)'
//!                       subgroup: 2
//!                   headers:
//!                     x-foo:
//!                       text: '{{ foo }}'
//!                   passthrough: {}
//! "#;
//! let parsed = parse_str(yaml, "default.yaml", Format::Yaml);
//! assert!(parsed.is_ok(), "{:?}", parsed.errors);
//! let Resource::VirtualService(vs) = &parsed.resources[0].resource else {
//!     panic!("expected a VirtualService");
//! };
//! let route = &vs.spec.virtual_host.as_ref().ok_or("no virtualHost")?.routes[0];
//! let stages = route.options.as_ref().and_then(|o| o.staged_transformations.as_deref());
//! let regular = stages.and_then(|s| s.regular.as_ref()).ok_or("no regular stage")?;
//!
//! let request = regular.request_transforms[0].request_transformation.as_ref();
//! let Some(TransformationTypeRef::Template(template)) =
//!     request.ok_or("no requestTransformation")?.transformation_type()?
//! else {
//!     panic!("expected a transformationTemplate");
//! };
//! let foo = &template.extractors["foo"];
//! assert_eq!(foo.source()?, Some(ExtractionSourceRef::Header(":path")));
//! assert_eq!(foo.subgroup, Some(2));
//! assert_eq!(template.headers["x-foo"].text.as_deref(), Some("{{ foo }}"));
//! assert_eq!(template.body_transformation()?, Some(BodyTransformationRef::Passthrough));
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::extauth::Empty;
use crate::model::routing::{HeaderMatcher, Matcher, OneofError};

/// Legacy (unstaged) transformations: the deprecated `transformations` option.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Transformations {
    /// Transformation applied to requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_transformation: Option<Transformation>,
    /// Clear the route cache if the request transformation was applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear_route_cache: Option<bool>,
    /// Transformation applied to responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_transformation: Option<Transformation>,
}

/// Staged transformations: the `stagedTransformations` option (`TransformationStages`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransformationStages {
    /// Runs before most other filters (auth, rate limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early: Option<RequestResponseTransformations>,
    /// Runs after auth and rate limit decisions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regular: Option<RequestResponseTransformations>,
    /// Runs in the router filter chain (Enterprise only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_routing: Option<RequestResponseTransformations>,
    /// Append the parent route's transformations (no effect on virtual hosts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inherit_transformation: Option<bool>,
    /// Log headers and bodies before and after these transformations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_request_response_info: Option<bool>,
    /// Inja JSON-escaping behaviour for all transformations here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escape_characters: Option<bool>,
}

impl TransformationStages {
    /// Gloo's `inheritStagedTransformations`: each of `parent`'s `early` and `regular` stages
    /// is taken whole where this has none, else its request and response transformations are
    /// appended after this one's (so on a conflict this one's apply).
    pub fn inherit_from(&mut self, parent: &TransformationStages) {
        for (own, parent) in [
            (&mut self.early, &parent.early),
            (&mut self.regular, &parent.regular),
        ] {
            let Some(parent) = parent else { continue };
            match own {
                None => *own = Some(parent.clone()),
                Some(own) => {
                    own.response_transforms
                        .extend(parent.response_transforms.iter().cloned());
                    own.request_transforms
                        .extend(parent.request_transforms.iter().cloned());
                }
            }
        }
    }
}

/// The transformations of one stage (`RequestResponseTransformations`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestResponseTransformations {
    /// Request transformations; the first that matches applies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_transforms: Vec<RequestMatch>,
    /// Response transformations, consulted only when the matched request transform has no
    /// response transformation; the first that matches applies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_transforms: Vec<ResponseMatch>,
}

/// A request-matched transformation (`RequestMatch`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestMatch {
    /// Which requests this applies to (all when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matcher: Option<Matcher>,
    /// Clear the route cache if this transformation matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear_route_cache: Option<bool>,
    /// Transformation applied to the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_transformation: Option<Transformation>,
    /// Transformation applied to the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_transformation: Option<Transformation>,
}

/// A response-matched transformation (`ResponseMatch`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResponseMatch {
    /// Response headers to match (`matchers.core.gloo.solo.io.HeaderMatcher`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matchers: Vec<HeaderMatcher>,
    /// Response code details to match (as logged by `%RESPONSE_CODE_DETAILS%`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_code_details: Option<String>,
    /// Transformation applied to the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_transformation: Option<Transformation>,
}

/// A transformation (`Transformation`, oneof `transformation_type`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Transformation {
    /// Template-based transformation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transformation_template: Option<TransformationTemplate>,
    /// Put the headers and body into a JSON body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_body_transform: Option<HeaderBodyTransform>,
    /// Log headers and bodies before and after this transformation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_request_response_info: Option<bool>,
}

/// The member of [`Transformation`]'s `transformation_type` oneof that is set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TransformationTypeRef<'a> {
    /// `transformationTemplate`.
    Template(&'a TransformationTemplate),
    /// `headerBodyTransform`.
    HeaderBody(&'a HeaderBodyTransform),
}

impl Transformation {
    /// The transformation type that is set, or an error if more than one is.
    pub fn transformation_type(&self) -> Result<Option<TransformationTypeRef<'_>>, OneofError> {
        OneofError::check(
            "transformation_type",
            &[
                (
                    "transformationTemplate",
                    self.transformation_template.is_some(),
                ),
                ("headerBodyTransform", self.header_body_transform.is_some()),
            ],
        )?;
        Ok(if let Some(t) = &self.transformation_template {
            Some(TransformationTypeRef::Template(t))
        } else {
            self.header_body_transform
                .as_ref()
                .map(TransformationTypeRef::HeaderBody)
        })
    }
}

/// Extracts a value from a header or the body with a regex (`Extraction`, oneof `source`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Extraction {
    /// Extract from this header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// Extract from the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Empty>,
    /// The regex (must match the whole source except in `REPLACE_ALL` mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// The capturing group to extract or replace (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subgroup: Option<u32>,
    /// Replacement for the `SINGLE_REPLACE` and `REPLACE_ALL` modes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement_text: Option<String>,
    /// The mode (default `EXTRACT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ExtractionMode>,
}

/// Where an [`Extraction`] reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtractionSourceRef<'a> {
    /// A header.
    Header(&'a str),
    /// The body.
    Body,
}

impl Extraction {
    /// The extraction source that is set, or an error if both are.
    pub fn source(&self) -> Result<Option<ExtractionSourceRef<'_>>, OneofError> {
        OneofError::check(
            "source",
            &[
                ("header", self.header.is_some()),
                ("body", self.body.is_some()),
            ],
        )?;
        Ok(if let Some(h) = &self.header {
            Some(ExtractionSourceRef::Header(h))
        } else {
            self.body.as_ref().map(|_| ExtractionSourceRef::Body)
        })
    }
}

/// How an extraction uses its regex (`Extraction.Mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExtractionMode {
    /// Extract the `subgroup` capturing group.
    #[default]
    Extract,
    /// Replace the `subgroup` capturing group with `replacementText`.
    SingleReplace,
    /// Replace every match with `replacementText`.
    ReplaceAll,
}

/// A transformation template (`TransformationTemplate`, oneof `body_transformation`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransformationTemplate {
    /// Use JSON pointer notation and `extraction("name")` in templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advanced_templates: Option<bool>,
    /// Named extractors, usable in templates.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extractors: BTreeMap<String, Extraction>,
    /// Headers to set (replacing existing values), name to template.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, InjaTemplate>,
    /// Header values to append.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers_to_append: Vec<HeaderToAppend>,
    /// Headers to remove (all instances).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers_to_remove: Vec<String>,
    /// Template for the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<InjaTemplate>,
    /// Don't buffer or transform the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passthrough: Option<Passthrough>,
    /// Merge all extractors into the (JSON) body, nesting on dots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_extractors_to_body: Option<MergeExtractorsToBody>,
    /// Merge rendered templates into keys of the JSON body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_json_keys: Option<MergeJsonKeys>,
    /// How the body is parsed (default `ParseAsJson`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parse_body_behavior: Option<RequestBodyParse>,
    /// Don't fail when the body isn't valid JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_error_on_parse: Option<bool>,
    /// Dynamic metadata entries to set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dynamic_metadata_values: Vec<DynamicMetadataValue>,
    /// Inja JSON-escaping behaviour for this template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escape_characters: Option<bool>,
    /// Tracing span changes (request transformations only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_transformer: Option<SpanTransformer>,
}

/// The member of [`TransformationTemplate`]'s `body_transformation` oneof that is set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BodyTransformationRef<'a> {
    /// `body`.
    Body(&'a InjaTemplate),
    /// `passthrough`.
    Passthrough,
    /// `mergeExtractorsToBody`.
    MergeExtractorsToBody,
    /// `mergeJsonKeys`.
    MergeJsonKeys(&'a MergeJsonKeys),
}

impl TransformationTemplate {
    /// The body transformation that is set, or an error if more than one is.
    pub fn body_transformation(&self) -> Result<Option<BodyTransformationRef<'_>>, OneofError> {
        OneofError::check(
            "body_transformation",
            &[
                ("body", self.body.is_some()),
                ("passthrough", self.passthrough.is_some()),
                (
                    "mergeExtractorsToBody",
                    self.merge_extractors_to_body.is_some(),
                ),
                ("mergeJsonKeys", self.merge_json_keys.is_some()),
            ],
        )?;
        Ok(if let Some(b) = &self.body {
            Some(BodyTransformationRef::Body(b))
        } else if self.passthrough.is_some() {
            Some(BodyTransformationRef::Passthrough)
        } else if self.merge_extractors_to_body.is_some() {
            Some(BodyTransformationRef::MergeExtractorsToBody)
        } else {
            self.merge_json_keys
                .as_ref()
                .map(BodyTransformationRef::MergeJsonKeys)
        })
    }
}

/// A header value to append (`TransformationTemplate.HeaderToAppend`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderToAppend {
    /// Header name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Template for the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<InjaTemplate>,
}

/// How the body is parsed (`TransformationTemplate.RequestBodyParse`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RequestBodyParse {
    /// Parse as JSON.
    #[default]
    ParseAsJson,
    /// Treat as plain text.
    DontParse,
}

/// A dynamic metadata entry (`TransformationTemplate.DynamicMetadataValue`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DynamicMetadataValue {
    /// Metadata namespace (default the filter's, `io.solo.transformation`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_namespace: Option<String>,
    /// Metadata key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Template for the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<InjaTemplate>,
    /// Parse the rendered value as JSON into a Struct.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_to_proto: Option<bool>,
}

/// Tracing span changes (`TransformationTemplate.SpanTransformer`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SpanTransformer {
    /// Template for the span name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<InjaTemplate>,
}

/// An Inja template (`InjaTemplate`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InjaTemplate {
    /// The template text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// Don't buffer the body (`Passthrough`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Passthrough {}

/// Merge extractors into the body (`MergeExtractorsToBody`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeExtractorsToBody {}

/// Templates merged into JSON body keys (`MergeJsonKeys`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MergeJsonKeys {
    /// Body key to template.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub json_keys: BTreeMap<String, OverridableTemplate>,
}

/// A template for a JSON body key (`MergeJsonKeys.OverridableTemplate`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OverridableTemplate {
    /// The template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpl: Option<InjaTemplate>,
    /// Set the key even when the rendered value is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_empty: Option<bool>,
}

/// Put headers (and request metadata) into a JSON body (`HeaderBodyTransform`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderBodyTransform {
    /// Also add query string, method, path and multi-value headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_request_metadata: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T>(v: &T)
    where
        T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug,
    {
        let json = serde_json::to_string(v).unwrap();
        assert_eq!(&serde_json::from_str::<T>(&json).unwrap(), v);
    }

    // docs/content/guides/traffic_management/request_processing/transformations/extract_query_params/_index.md
    #[test]
    fn template_with_extractors_and_headers() {
        let t: Transformations = serde_yaml_ng::from_str(
            r#"
requestTransformation:
  transformationTemplate:
    extractors:
      # This extracts the 'foo' query param to an extractor named 'foo'
      foo:
        # The :path pseudo-header contains the URI
        header: ':path'
        # Use a nested capturing group to extract the query param
        regex: '(.*foo=([^&]*).*)'
        subgroup: 2
      bar:
        header: ':path'
        regex: '(.*bar=([^&]*).*)'
        subgroup: 2
    # Add two new headers with the values of the 'foo' and 'bar' extractions
    headers:
      foo:
        text: '{{ foo }}'
      bar:
        text: '{{ bar }}'
"#,
        )
        .unwrap();
        let req = t.request_transformation.as_ref().unwrap();
        let Ok(Some(TransformationTypeRef::Template(tt))) = req.transformation_type() else {
            panic!("not a template");
        };
        let foo = &tt.extractors["foo"];
        assert_eq!(foo.source(), Ok(Some(ExtractionSourceRef::Header(":path"))));
        assert_eq!(foo.subgroup, Some(2));
        assert_eq!(foo.mode.unwrap_or_default(), ExtractionMode::Extract);
        assert_eq!(tt.headers["bar"].text.as_deref(), Some("{{ bar }}"));
        assert_eq!(tt.body_transformation(), Ok(None));
        round_trip(&t);
    }

    // docs/content/guides/traffic_management/request_processing/transformations/_index.md
    // (extractor replace-all example, body template, dynamic metadata).
    #[test]
    fn template_with_body_extractor_and_body_template() {
        let tt: TransformationTemplate = serde_yaml_ng::from_str(
            r#"
extractors:
  FooToBar:
    body: {}
    regex: 'foo'
    mode: REPLACE_ALL
    replacementText: 'bar'
headers:
  color:
    text: '{{ Favorites.Color }}'
body:
  text: '{{ FooToBar }}'
dynamicMetadataValues:
- metadataNamespace: "com.example"
  key: 'foo'
  value:
    text: '{{ header("foo") }}'
parseBodyBehavior: DontParse
"#,
        )
        .unwrap();
        let e = &tt.extractors["FooToBar"];
        assert_eq!(e.source(), Ok(Some(ExtractionSourceRef::Body)));
        assert_eq!(e.mode, Some(ExtractionMode::ReplaceAll));
        assert_eq!(e.replacement_text.as_deref(), Some("bar"));
        assert!(matches!(
            tt.body_transformation(),
            Ok(Some(BodyTransformationRef::Body(b))) if b.text.as_deref() == Some("{{ FooToBar }}")
        ));
        assert_eq!(
            tt.dynamic_metadata_values[0].metadata_namespace.as_deref(),
            Some("com.example")
        );
        assert_eq!(tt.parse_body_behavior, Some(RequestBodyParse::DontParse));
        round_trip(&tt);
    }

    // docs/content/guides/traffic_management/request_processing/transformations/add_headers_to_body/_index.md
    #[test]
    fn merge_extractors_to_body() {
        let tt: TransformationTemplate = serde_yaml_ng::from_str(
            r#"
# Merge the specified extractors to the request body
mergeExtractorsToBody: {}
extractors:
  root:
    header: 'root'
    regex: '.*'
  payload.nested:
    header: 'nested'
    regex: '.*'
"#,
        )
        .unwrap();
        assert_eq!(
            tt.body_transformation(),
            Ok(Some(BodyTransformationRef::MergeExtractorsToBody))
        );
        assert!(tt.extractors.contains_key("payload.nested"));
        let both: TransformationTemplate =
            serde_yaml_ng::from_str("passthrough: {}\nbody: {text: x}\n").unwrap();
        assert_eq!(
            both.body_transformation().unwrap_err().set,
            vec!["body", "passthrough"]
        );
    }

    // docs/content/guides/traffic_management/request_processing/transformations/debug_logging/_index.md
    #[test]
    fn staged_transformations() {
        let s: TransformationStages = serde_yaml_ng::from_str(
            r#"
early:
  requestTransforms:
  - requestTransformation:
      transformationTemplate:
        headers:
          x-early-request-header:
            text: "early"
regular:
  requestTransforms:
  - requestTransformation:
      logRequestResponseInfo: true
      transformationTemplate:
        headers:
          x-regular-request-header:
            text: "regular"
  responseTransforms:
  - matchers:
    - name: ":status"
      value: "404"
    responseTransformation:
      headerBodyTransform:
        addRequestMetadata: true
inheritTransformation: true
escapeCharacters: false
"#,
        )
        .unwrap();
        let regular = s.regular.as_ref().unwrap();
        let rt = regular.request_transforms[0]
            .request_transformation
            .as_ref()
            .unwrap();
        assert_eq!(rt.log_request_response_info, Some(true));
        let resp = &regular.response_transforms[0];
        assert_eq!(resp.matchers[0].name, ":status");
        assert!(matches!(
            resp.response_transformation.as_ref().unwrap().transformation_type(),
            Ok(Some(TransformationTypeRef::HeaderBody(h))) if h.add_request_metadata == Some(true)
        ));
        assert_eq!(s.inherit_transformation, Some(true));
        assert_eq!(s.escape_characters, Some(false));
        round_trip(&s);
    }

    // docs/content/guides/traffic_management/request_processing/transformations/_index.md
    // (inheritance example: a request transform with a matcher).
    #[test]
    fn request_transform_with_matcher() {
        let s: TransformationStages = serde_yaml_ng::from_str(
            r#"
regular:
  requestTransforms:
  - matcher:
      prefix: '/parent'
    clearRouteCache: true
    requestTransformation:
      transformationTemplate:
        headers:
          foo:
            text: 'bar'
"#,
        )
        .unwrap();
        let rm = &s.regular.as_ref().unwrap().request_transforms[0];
        assert_eq!(
            rm.matcher.as_ref().unwrap().prefix.as_deref(),
            Some("/parent")
        );
        assert_eq!(rm.clear_route_cache, Some(true));
        round_trip(&s);
    }

    #[test]
    fn rejects_unknown_field() {
        let err = serde_yaml_ng::from_str::<Transformation>("xsltTransformation: {xslt: x}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("xsltTransformation"), "{err}");
        let err = serde_yaml_ng::from_str::<TransformationTemplate>(
            "headers:\n  foo:\n    template: x\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("template"), "{err}");
    }
}
