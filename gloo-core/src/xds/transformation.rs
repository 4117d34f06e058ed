//! envoy-gloo's transformation filter messages (`io.solo.transformation`, package
//! `envoy.api.v2.filter.http`, `api/envoy/config/filter/http/transformation/v2/
//! transformation_filter.proto` in solo-io/envoy-gloo, Apache 2.0), written as prost structs:
//! stock Envoy has no such proto, so `envoy-types` has none. Only the messages and fields
//! Gloo's transformation plugin emits are here; field names and numbers are envoy-gloo's. The
//! same trimmed `.proto` is compiled into the descriptor set gloo-core prints JSON with
//! (`tools/envoy-descriptors/proto/envoy-gloo`).
//!
//! Maps are `BTreeMap`s, so a message always encodes to the same bytes.
//!
//! ```
//! use gloo_core::xds::transformation::{InjaTemplate, RouteTransformations, TransformationTemplate};
//! use prost::Message;
//!
//! let template = TransformationTemplate {
//!     headers: [("x-foo".to_string(), InjaTemplate { text: "{{ foo }}".into() })].into(),
//!     ..Default::default()
//! };
//! let bytes = template.encode_to_vec();
//! assert_eq!(TransformationTemplate::decode(bytes.as_slice()).unwrap(), template);
//! assert_eq!(RouteTransformations::default().encode_to_vec(), Vec::<u8>::new());
//! ```

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::route::v3::{HeaderMatcher, RouteMatch};
use envoy_types::pb::envoy::r#type::matcher::v3::StringMatcher;
use envoy_types::pb::google::protobuf::{BoolValue, Empty, StringValue};

/// The filter's own config (`FilterTransformations`): which stage this filter instance runs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FilterTransformations {
    /// Only route transformations of this stage are used by this filter (`stage`, 0-10).
    #[prost(uint32, tag = "2")]
    pub stage: u32,
    /// Log headers and bodies before and after each transformation.
    #[prost(bool, tag = "3")]
    pub log_request_response_info: bool,
}

/// The per-route config (`RouteTransformations`), on virtual hosts, routes and weighted
/// clusters.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RouteTransformations {
    /// Deprecated: the request transformation (older envoy-gloo only; ignored when
    /// `transformations` is set).
    #[prost(message, optional, tag = "1")]
    pub request_transformation: Option<Transformation>,
    /// Deprecated: the response transformation.
    #[prost(message, optional, tag = "2")]
    pub response_transformation: Option<Transformation>,
    /// Deprecated: clear the route cache after the request transformation.
    #[prost(bool, tag = "3")]
    pub clear_route_cache: bool,
    /// The transformations, each for one stage.
    #[prost(message, repeated, tag = "4")]
    pub transformations: Vec<RouteTransformation>,
}

/// One transformation rule of a stage (`RouteTransformations.RouteTransformation`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RouteTransformation {
    /// The stage whose filter uses this rule.
    #[prost(uint32, tag = "1")]
    pub stage: u32,
    /// A request- or a response-matched rule.
    #[prost(oneof = "route_transformation::Match", tags = "2, 3")]
    pub r#match: Option<route_transformation::Match>,
}

/// Nested messages of [`RouteTransformation`].
pub mod route_transformation {
    use super::*;

    /// The `match` oneof.
    // Boxing a variant would change the generated-code shape prost users expect.
    #[allow(clippy::large_enum_variant)]
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Match {
        /// Matched on the request.
        #[prost(message, tag = "2")]
        RequestMatch(RequestMatch),
        /// Matched on the response.
        #[prost(message, tag = "3")]
        ResponseMatch(ResponseMatch),
    }

    /// A request-matched rule (`RequestMatch`).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RequestMatch {
        /// Which requests (all when unset).
        #[prost(message, optional, tag = "1")]
        pub r#match: Option<RouteMatch>,
        /// Applied to matched requests.
        #[prost(message, optional, tag = "2")]
        pub request_transformation: Option<Transformation>,
        /// Applied to their responses.
        #[prost(message, optional, tag = "3")]
        pub response_transformation: Option<Transformation>,
        /// Clear the route cache if the request transformation was applied.
        #[prost(bool, tag = "4")]
        pub clear_route_cache: bool,
    }

    /// A response-matched rule (`ResponseMatch`).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResponseMatch {
        /// Which responses.
        #[prost(message, optional, tag = "1")]
        pub r#match: Option<ResponseMatcher>,
        /// Applied to matched responses.
        #[prost(message, optional, tag = "2")]
        pub response_transformation: Option<Transformation>,
    }
}

/// Which responses a response-matched rule applies to (`ResponseMatcher`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ResponseMatcher {
    /// Response headers (`:status` included) that must all match.
    #[prost(message, repeated, tag = "1")]
    pub headers: Vec<HeaderMatcher>,
    /// The response code details must match.
    #[prost(message, optional, tag = "2")]
    pub response_code_details: Option<StringMatcher>,
}

/// A transformation (`Transformation`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Transformation {
    /// The `transformation_type` oneof.
    #[prost(oneof = "transformation::TransformationType", tags = "1, 2")]
    pub transformation_type: Option<transformation::TransformationType>,
    /// Log headers and bodies before and after this transformation.
    #[prost(message, optional, tag = "4")]
    pub log_request_response_info: Option<BoolValue>,
}

/// Nested types of [`Transformation`] (named after the message, as prost names them).
#[allow(clippy::module_inception)]
pub mod transformation {
    use super::*;

    /// The `transformation_type` oneof.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum TransformationType {
        /// Inja templates.
        #[prost(message, tag = "1")]
        TransformationTemplate(TransformationTemplate),
        /// Headers and body as a JSON body.
        #[prost(message, tag = "2")]
        HeaderBodyTransform(HeaderBodyTransform),
    }
}

/// Extracts a value from a header or the body (`Extraction`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Extraction {
    /// The `source` oneof.
    #[prost(oneof = "extraction::Source", tags = "1, 4")]
    pub source: Option<extraction::Source>,
    /// The regex.
    #[prost(string, tag = "2")]
    pub regex: String,
    /// The capture group.
    #[prost(uint32, tag = "3")]
    pub subgroup: u32,
    /// The replacement of the replace modes.
    #[prost(message, optional, tag = "5")]
    pub replacement_text: Option<StringValue>,
    /// The mode ([`extraction::Mode`]).
    #[prost(enumeration = "extraction::Mode", tag = "6")]
    pub mode: i32,
}

/// Nested types of [`Extraction`].
pub mod extraction {
    use super::*;

    /// The `source` oneof.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Source {
        /// A header.
        #[prost(string, tag = "1")]
        Header(String),
        /// The body.
        #[prost(message, tag = "4")]
        Body(Empty),
    }

    /// `Extraction.Mode`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum Mode {
        /// Extract a capture group.
        Extract = 0,
        /// Replace a capture group.
        SingleReplace = 1,
        /// Replace every match.
        ReplaceAll = 2,
    }
}

/// A template transformation (`TransformationTemplate`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TransformationTemplate {
    /// JSON pointers and `extraction()`.
    #[prost(bool, tag = "1")]
    pub advanced_templates: bool,
    /// Named extractors.
    #[prost(btree_map = "string, message", tag = "2")]
    pub extractors: BTreeMap<String, Extraction>,
    /// Headers to set.
    #[prost(btree_map = "string, message", tag = "3")]
    pub headers: BTreeMap<String, InjaTemplate>,
    /// Header values to append.
    #[prost(message, repeated, tag = "10")]
    pub headers_to_append: Vec<transformation_template::HeaderToAppend>,
    /// Headers to remove.
    #[prost(string, repeated, tag = "11")]
    pub headers_to_remove: Vec<String>,
    /// The `body_transformation` oneof.
    #[prost(
        oneof = "transformation_template::BodyTransformation",
        tags = "4, 5, 6, 13"
    )]
    pub body_transformation: Option<transformation_template::BodyTransformation>,
    /// How the body is parsed ([`transformation_template::RequestBodyParse`]).
    #[prost(enumeration = "transformation_template::RequestBodyParse", tag = "7")]
    pub parse_body_behavior: i32,
    /// Tolerate a body that is not JSON.
    #[prost(bool, tag = "8")]
    pub ignore_error_on_parse: bool,
    /// Dynamic metadata to set.
    #[prost(message, repeated, tag = "9")]
    pub dynamic_metadata_values: Vec<transformation_template::DynamicMetadataValue>,
    /// JSON-escape rendered strings.
    #[prost(bool, tag = "12")]
    pub escape_characters: bool,
    /// Tracing span changes.
    #[prost(message, optional, tag = "15")]
    pub span_transformer: Option<transformation_template::SpanTransformer>,
}

/// Nested types of [`TransformationTemplate`].
pub mod transformation_template {
    use super::*;

    /// A header value to append (`HeaderToAppend`).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct HeaderToAppend {
        /// Header name.
        #[prost(string, tag = "1")]
        pub key: String,
        /// Template of the value.
        #[prost(message, optional, tag = "2")]
        pub value: Option<InjaTemplate>,
    }

    /// The `body_transformation` oneof.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum BodyTransformation {
        /// A body template.
        #[prost(message, tag = "4")]
        Body(InjaTemplate),
        /// Don't buffer the body.
        #[prost(message, tag = "5")]
        Passthrough(Passthrough),
        /// Extractors merged into the JSON body.
        #[prost(message, tag = "6")]
        MergeExtractorsToBody(MergeExtractorsToBody),
        /// Templates merged into JSON body keys.
        #[prost(message, tag = "13")]
        MergeJsonKeys(MergeJsonKeys),
    }

    /// `RequestBodyParse`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum RequestBodyParse {
        /// Parse as JSON.
        ParseAsJson = 0,
        /// Plain text.
        DontParse = 1,
    }

    /// A dynamic metadata entry (`DynamicMetadataValue`).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct DynamicMetadataValue {
        /// Namespace (default the filter's).
        #[prost(string, tag = "1")]
        pub metadata_namespace: String,
        /// Key.
        #[prost(string, tag = "2")]
        pub key: String,
        /// Template of the value.
        #[prost(message, optional, tag = "3")]
        pub value: Option<InjaTemplate>,
        /// Parse the value as JSON.
        #[prost(bool, tag = "4")]
        pub json_to_proto: bool,
    }

    /// Tracing span changes (`SpanTransformer`).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SpanTransformer {
        /// Template of the span name.
        #[prost(message, optional, tag = "1")]
        pub name: Option<InjaTemplate>,
    }
}

/// An Inja template (`InjaTemplate`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct InjaTemplate {
    /// The template text.
    #[prost(string, tag = "1")]
    pub text: String,
}

/// Don't buffer the body (`Passthrough`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Passthrough {}

/// Merge extractors into the body (`MergeExtractorsToBody`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct MergeExtractorsToBody {}

/// Templates merged into keys of the JSON body (`MergeJsonKeys`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct MergeJsonKeys {
    /// Key to template.
    #[prost(btree_map = "string, message", tag = "2")]
    pub json_keys: BTreeMap<String, merge_json_keys::OverridableTemplate>,
}

/// Nested types of [`MergeJsonKeys`].
pub mod merge_json_keys {
    use super::*;

    /// A key's template (`OverridableTemplate`).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct OverridableTemplate {
        /// The template.
        #[prost(message, optional, tag = "1")]
        pub tmpl: Option<InjaTemplate>,
        /// Set the key even when the template renders empty.
        #[prost(bool, tag = "2")]
        pub override_empty: bool,
    }
}

/// Headers and body into a JSON body (`HeaderBodyTransform`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct HeaderBodyTransform {
    /// Add the AWS API Gateway request fields.
    #[prost(bool, tag = "1")]
    pub add_request_metadata: bool,
}
