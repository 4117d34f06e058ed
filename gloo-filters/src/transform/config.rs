//! The layer's configuration: plain builders that map 1:1 onto envoy-gloo's
//! `envoy.api.v2.filter.http` transformation protos
//! (`api/envoy/config/filter/http/transformation/v2/transformation_filter.proto`).
//!
//! Nothing here is validated; [`TransformationLayer::new`](super::TransformationLayer::new)
//! compiles and checks everything at once and names the offending field.

use std::fmt;

use http::Method;

/// One stage's transformations: Gloo's `RequestResponseTransformations`, i.e. envoy-gloo's
/// `RouteTransformations.transformations` of one stage.
///
/// * A request uses the first [`RequestMatch`] whose [`RouteMatch`] matches (list order).
/// * Its response uses that rule's response transformation; only when the matched rule has
///   none (or no rule matched) the [`ResponseMatch`]es are tried, first match wins.
#[derive(Clone, Debug, Default)]
pub struct Transformations {
    pub(crate) request_transforms: Vec<RequestMatch>,
    pub(crate) response_transforms: Vec<ResponseMatch>,
}

impl Transformations {
    /// No transformations.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a request-matched rule (`requestTransforms[]`).
    pub fn request_transform(mut self, rule: impl Into<RequestMatch>) -> Self {
        self.request_transforms.push(rule.into());
        self
    }

    /// Appends a response-matched rule (`responseTransforms[]`).
    pub fn response_transform(mut self, rule: impl Into<ResponseMatch>) -> Self {
        self.response_transforms.push(rule.into());
        self
    }
}

/// A request-matched rule (`RouteTransformation.RequestMatch`): which requests, and the
/// transformations applied to them and to their responses.
#[derive(Clone, Debug, Default)]
pub struct RequestMatch {
    pub(crate) matcher: Option<RouteMatch>,
    pub(crate) request_transformation: Option<Transformation>,
    pub(crate) response_transformation: Option<Transformation>,
    pub(crate) clear_route_cache: bool,
}

impl RequestMatch {
    /// A rule matching every request, transforming nothing yet. A rule with neither a request
    /// nor a response transformation is skipped when matching, as in envoy-gloo.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only requests matching `matcher` (`match`; default: all requests).
    pub fn matcher(mut self, matcher: impl Into<RouteMatch>) -> Self {
        self.matcher = Some(matcher.into());
        self
    }

    /// The transformation applied to matched requests (`request_transformation`).
    pub fn request_transformation(mut self, t: impl Into<Transformation>) -> Self {
        self.request_transformation = Some(t.into());
        self
    }

    /// The transformation applied to the responses of matched requests
    /// (`response_transformation`).
    pub fn response_transformation(mut self, t: impl Into<Transformation>) -> Self {
        self.response_transformation = Some(t.into());
        self
    }

    /// Whether a transformed request carries the [`ClearRouteCache`](super::ClearRouteCache)
    /// marker, telling a router to match routes again (`clear_route_cache`). Default `false`.
    pub fn clear_route_cache(mut self, clear: bool) -> Self {
        self.clear_route_cache = clear;
        self
    }
}

/// A response-matched rule (`RouteTransformation.ResponseMatch`).
#[derive(Clone, Debug)]
pub struct ResponseMatch {
    pub(crate) matcher: Option<ResponseMatcher>,
    pub(crate) response_transformation: Transformation,
}

impl ResponseMatch {
    /// Applies `t` to every response this rule is consulted for.
    pub fn new(t: impl Into<Transformation>) -> Self {
        Self {
            matcher: None,
            response_transformation: t.into(),
        }
    }

    /// Only responses matching `matcher` (`match`).
    pub fn matcher(mut self, matcher: impl Into<ResponseMatcher>) -> Self {
        self.matcher = Some(matcher.into());
        self
    }
}

/// Which requests a [`RequestMatch`] applies to: the subset of Envoy's `RouteMatch` that Gloo's
/// `Matcher` produces. The path is matched without the query string.
#[derive(Clone, Debug)]
pub struct RouteMatch {
    pub(crate) path: PathMatch,
    pub(crate) case_sensitive: bool,
    pub(crate) headers: Vec<HeaderMatcher>,
    pub(crate) methods: Vec<Method>,
}

#[derive(Clone, Debug)]
pub(crate) enum PathMatch {
    Prefix(String),
    Exact(String),
    Regex(String),
}

impl RouteMatch {
    fn with(path: PathMatch) -> Self {
        Self {
            path,
            case_sensitive: true,
            headers: Vec::new(),
            methods: Vec::new(),
        }
    }

    /// Paths starting with `prefix` (`prefix`). `prefix("/")` matches everything.
    pub fn prefix(prefix: impl Into<String>) -> Self {
        Self::with(PathMatch::Prefix(prefix.into()))
    }

    /// Exactly this path (`path`).
    pub fn path(path: impl Into<String>) -> Self {
        Self::with(PathMatch::Exact(path.into()))
    }

    /// Paths fully matching the regex (`safe_regex`; Rust `regex` syntax, checked when the
    /// layer is built).
    pub fn regex(regex: impl Into<String>) -> Self {
        Self::with(PathMatch::Regex(regex.into()))
    }

    /// Whether prefix and exact paths compare case-sensitively (`case_sensitive`, default
    /// `true`).
    pub fn case_sensitive(mut self, yes: bool) -> Self {
        self.case_sensitive = yes;
        self
    }

    /// Also requires this header match (`headers[]`; all must match).
    pub fn header(mut self, header: impl Into<HeaderMatcher>) -> Self {
        self.headers.push(header.into());
        self
    }

    /// Also requires one of these methods (Gloo's `methods`, a `:method` header match).
    pub fn method(mut self, method: impl Into<Method>) -> Self {
        self.methods.push(method.into());
        self
    }
}

/// Which responses a [`ResponseMatch`] applies to (envoy-gloo's `ResponseMatcher`).
#[derive(Clone, Debug, Default)]
pub struct ResponseMatcher {
    pub(crate) headers: Vec<HeaderMatcher>,
    pub(crate) response_code_details: Option<StringMatcher>,
}

impl ResponseMatcher {
    /// Matches every response.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also requires this response header match (`headers[]`; `:status` is the status code).
    pub fn header(mut self, header: impl Into<HeaderMatcher>) -> Self {
        self.headers.push(header.into());
        self
    }

    /// Also requires the response's [`ResponseCodeDetails`](super::ResponseCodeDetails)
    /// extension to match (`response_code_details`). A response without it never matches,
    /// like Envoy's responses without details.
    pub fn response_code_details(mut self, details: impl Into<StringMatcher>) -> Self {
        self.response_code_details = Some(details.into());
        self
    }
}

/// A header match (Envoy's `HeaderMatcher`). Several values of one header are joined with
/// `,` before matching; pseudo-headers (`:path`, `:method`, `:authority`, `:scheme`, `:status`)
/// can be matched too.
#[derive(Clone, Debug)]
pub struct HeaderMatcher {
    pub(crate) name: String,
    pub(crate) spec: HeaderMatchSpec,
    pub(crate) invert: bool,
}

#[derive(Clone, Debug)]
pub(crate) enum HeaderMatchSpec {
    Present(bool),
    String(StringMatcher),
}

impl HeaderMatcher {
    fn with(name: impl Into<String>, spec: HeaderMatchSpec) -> Self {
        Self {
            name: name.into(),
            spec,
            invert: false,
        }
    }

    /// The header is present (`present_match: true`), or absent with `present = false`.
    pub fn present(name: impl Into<String>, present: bool) -> Self {
        Self::with(name, HeaderMatchSpec::Present(present))
    }

    /// The header's value matches `matcher` (`string_match`).
    pub fn string(name: impl Into<String>, matcher: impl Into<StringMatcher>) -> Self {
        Self::with(name, HeaderMatchSpec::String(matcher.into()))
    }

    /// The header's value is exactly `value` (Gloo's `value`).
    pub fn exact(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self::string(name, StringMatcher::exact(value))
    }

    /// The header's value fully matches `regex` (Gloo's `value` with `regex: true`).
    pub fn regex(name: impl Into<String>, regex: impl Into<String>) -> Self {
        Self::string(name, StringMatcher::regex(regex))
    }

    /// Inverts the match (`invert_match`). An absent header still only matches a
    /// `present(name, true)` matcher when inverted, as in Envoy.
    pub fn invert(mut self, invert: bool) -> Self {
        self.invert = invert;
        self
    }
}

/// A string match (Envoy's `StringMatcher`).
#[derive(Clone, Debug)]
pub struct StringMatcher {
    pub(crate) kind: StringMatchKind,
    pub(crate) ignore_case: bool,
}

#[derive(Clone, Debug)]
pub(crate) enum StringMatchKind {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    Regex(String),
}

impl StringMatcher {
    fn with(kind: StringMatchKind) -> Self {
        Self {
            kind,
            ignore_case: false,
        }
    }

    /// Equal to `value`.
    pub fn exact(value: impl Into<String>) -> Self {
        Self::with(StringMatchKind::Exact(value.into()))
    }

    /// Starts with `value`.
    pub fn prefix(value: impl Into<String>) -> Self {
        Self::with(StringMatchKind::Prefix(value.into()))
    }

    /// Ends with `value`.
    pub fn suffix(value: impl Into<String>) -> Self {
        Self::with(StringMatchKind::Suffix(value.into()))
    }

    /// Contains `value`.
    pub fn contains(value: impl Into<String>) -> Self {
        Self::with(StringMatchKind::Contains(value.into()))
    }

    /// Fully matches the regex (`safe_regex`; Rust `regex` syntax).
    pub fn regex(regex: impl Into<String>) -> Self {
        Self::with(StringMatchKind::Regex(regex.into()))
    }

    /// Compares ASCII case-insensitively (`ignore_case`; not for regexes).
    pub fn ignore_case(mut self, yes: bool) -> Self {
        self.ignore_case = yes;
        self
    }
}

/// A transformation (`Transformation`, oneof `transformation_type`).
#[derive(Clone, Debug)]
pub enum Transformation {
    /// `transformation_template`: Inja templates for headers, body and metadata.
    Template(TransformationTemplate),
    /// `header_body_transform`: the headers (and body) as a JSON body.
    HeaderBody(HeaderBodyTransform),
}

impl From<TransformationTemplate> for Transformation {
    fn from(t: TransformationTemplate) -> Self {
        Self::Template(t)
    }
}

impl From<HeaderBodyTransform> for Transformation {
    fn from(t: HeaderBodyTransform) -> Self {
        Self::HeaderBody(t)
    }
}

/// Puts the headers, and the body as a string, into a JSON body `{"headers": {..}, "body":
/// ".."}` (`HeaderBodyTransform`). With [`add_request_metadata`](Self::add_request_metadata),
/// a request also gets `queryString`, `queryStringParameters`,
/// `multiValueQueryStringParameters`, `multiValueHeaders`, `httpMethod` and `path` (the AWS API
/// Gateway shape).
#[derive(Clone, Copy, Debug, Default)]
pub struct HeaderBodyTransform {
    pub(crate) add_request_metadata: bool,
}

impl HeaderBodyTransform {
    /// Headers and body only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether requests also get the AWS API Gateway metadata fields (`add_request_metadata`).
    pub fn add_request_metadata(mut self, yes: bool) -> Self {
        self.add_request_metadata = yes;
        self
    }
}

/// How the body is parsed (`TransformationTemplate.RequestBodyParse`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RequestBodyParse {
    /// Parse a non-empty body as JSON; its fields are the template context (`ParseAsJson`,
    /// the default).
    #[default]
    ParseAsJson,
    /// Keep the body as text (`DontParse`).
    DontParse,
}

/// What happens to the body (`TransformationTemplate`'s oneof `body_transformation`).
#[derive(Clone, Debug, Default)]
pub enum BodyTransformation {
    /// Unset: the body is kept as it is.
    #[default]
    Unchanged,
    /// `body`: the body becomes this rendered template.
    Body(String),
    /// `passthrough`: the body is neither buffered nor read; templates see an empty body.
    Passthrough,
    /// `merge_extractors_to_body`: the extractions are merged into the JSON body (names with
    /// dots nest), which becomes the body.
    MergeExtractorsToBody,
    /// `merge_json_keys`: each rendered template is parsed as JSON and set at its key of the
    /// JSON body. Requires `ParseAsJson` and no advanced templates; keys must not contain `.`.
    MergeJsonKeys(Vec<MergeJsonKey>),
}

/// One key of [`BodyTransformation::MergeJsonKeys`] (`MergeJsonKeys.json_keys` entry).
#[derive(Clone, Debug)]
pub struct MergeJsonKey {
    pub(crate) key: String,
    pub(crate) template: String,
    pub(crate) override_empty: bool,
}

impl MergeJsonKey {
    /// Sets `key` to the JSON rendered by `template`, unless it renders empty.
    pub fn new(key: impl Into<String>, template: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            template: template.into(),
            override_empty: false,
        }
    }

    /// Whether an empty rendering is still set (`override_empty`; it then fails to parse as
    /// JSON, as in envoy-gloo).
    pub fn override_empty(mut self, yes: bool) -> Self {
        self.override_empty = yes;
        self
    }
}

/// A dynamic metadata entry (`TransformationTemplate.DynamicMetadataValue`), published in the
/// message's [`DynamicMetadata`](super::DynamicMetadata) extension when it renders non-empty.
#[derive(Clone, Debug)]
pub struct DynamicMetadataValue {
    pub(crate) namespace: Option<String>,
    pub(crate) key: String,
    pub(crate) template: String,
    pub(crate) json_to_proto: bool,
}

impl DynamicMetadataValue {
    /// `key` set to the rendered `template` in the filter's namespace `io.solo.transformation`.
    pub fn new(key: impl Into<String>, template: impl Into<String>) -> Self {
        Self {
            namespace: None,
            key: key.into(),
            template: template.into(),
            json_to_proto: false,
        }
    }

    /// The metadata namespace (`metadata_namespace`).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Whether the rendered value is parsed as JSON (kept as a string if it is not JSON)
    /// (`json_to_proto`).
    pub fn json_to_proto(mut self, yes: bool) -> Self {
        self.json_to_proto = yes;
        self
    }
}

/// How an [`Extraction`] uses its regex (`Extraction.Mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExtractionMode {
    /// The regex must match the whole source; the value is capture group `subgroup` (empty
    /// when the regex does not match) (`EXTRACT`, the default).
    #[default]
    Extract,
    /// The regex must match the whole source; capture group `subgroup` is replaced with the
    /// replacement text (the source unchanged when it does not match) (`SINGLE_REPLACE`).
    SingleReplace,
    /// Every non-empty match is replaced with the replacement text, in which `$1`, `$&`, `$$`
    /// are expanded as by ECMAScript's `String.replace` (`REPLACE_ALL`).
    ReplaceAll,
}

/// Extracts a value from a header or the body with a regex (`Extraction`).
#[derive(Clone, Debug)]
pub struct Extraction {
    pub(crate) source: ExtractionSource,
    pub(crate) regex: String,
    pub(crate) subgroup: u32,
    pub(crate) replacement_text: Option<String>,
    pub(crate) mode: ExtractionMode,
}

#[derive(Clone, Debug)]
pub(crate) enum ExtractionSource {
    Header(String),
    Body,
}

impl Extraction {
    fn with(source: ExtractionSource, regex: impl Into<String>) -> Self {
        Self {
            source,
            regex: regex.into(),
            subgroup: 0,
            replacement_text: None,
            mode: ExtractionMode::Extract,
        }
    }

    /// From the first value of header `name` (`header`; pseudo-headers such as `:path` too).
    /// An absent header extracts the empty string.
    pub fn header(name: impl Into<String>, regex: impl Into<String>) -> Self {
        Self::with(ExtractionSource::Header(name.into()), regex)
    }

    /// From the body (`body`); makes the transformation buffer the body.
    pub fn body(regex: impl Into<String>) -> Self {
        Self::with(ExtractionSource::Body, regex)
    }

    /// The capture group to extract or replace (`subgroup`, default 0 = the whole match).
    pub fn subgroup(mut self, subgroup: u32) -> Self {
        self.subgroup = subgroup;
        self
    }

    /// The mode (`mode`).
    pub fn mode(mut self, mode: ExtractionMode) -> Self {
        self.mode = mode;
        self
    }

    /// The replacement of the replace modes (`replacement_text`).
    pub fn replacement_text(mut self, text: impl Into<String>) -> Self {
        self.replacement_text = Some(text.into());
        self
    }
}

/// Template-based transformation (`TransformationTemplate`); see the [module docs](super)
/// for the template language and the order in which the parts are applied.
#[derive(Clone, Debug, Default)]
pub struct TransformationTemplate {
    pub(crate) advanced_templates: bool,
    pub(crate) extractors: Vec<(String, Extraction)>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) headers_to_append: Vec<(String, String)>,
    pub(crate) headers_to_remove: Vec<String>,
    pub(crate) body: BodyTransformation,
    pub(crate) parse_body_behavior: RequestBodyParse,
    pub(crate) ignore_error_on_parse: bool,
    pub(crate) dynamic_metadata_values: Vec<DynamicMetadataValue>,
    pub(crate) escape_characters: bool,
}

impl TransformationTemplate {
    /// An empty template: parses the body as JSON and changes nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// JSON pointer notation (`{{ time/start }}`) instead of dots, and extractions read with
    /// `extraction("name")` instead of by name (`advanced_templates`).
    pub fn advanced_templates(mut self, yes: bool) -> Self {
        self.advanced_templates = yes;
        self
    }

    /// A named extractor (`extractors`). Extractors run in the order added.
    pub fn extractor(mut self, name: impl Into<String>, extraction: impl Into<Extraction>) -> Self {
        self.extractors.push((name.into(), extraction.into()));
        self
    }

    /// Sets header `name` to the rendered template, replacing its values; an empty rendering
    /// removes it (`headers`). Applied in the order added.
    pub fn header(mut self, name: impl Into<String>, template: impl Into<String>) -> Self {
        self.headers.push((name.into(), template.into()));
        self
    }

    /// Appends a value to header `name` unless the template renders empty
    /// (`headers_to_append`).
    pub fn header_to_append(
        mut self,
        name: impl Into<String>,
        template: impl Into<String>,
    ) -> Self {
        self.headers_to_append.push((name.into(), template.into()));
        self
    }

    /// Removes every value of header `name` (`headers_to_remove`).
    pub fn header_to_remove(mut self, name: impl Into<String>) -> Self {
        self.headers_to_remove.push(name.into());
        self
    }

    /// What happens to the body (oneof `body_transformation`).
    pub fn body_transformation(mut self, body: impl Into<BodyTransformation>) -> Self {
        self.body = body.into();
        self
    }

    /// The body becomes the rendered template (`body`).
    pub fn body(self, template: impl Into<String>) -> Self {
        self.body_transformation(BodyTransformation::Body(template.into()))
    }

    /// The body is not buffered (`passthrough`).
    pub fn passthrough(self) -> Self {
        self.body_transformation(BodyTransformation::Passthrough)
    }

    /// The extractions are merged into the JSON body (`merge_extractors_to_body`).
    pub fn merge_extractors_to_body(self) -> Self {
        self.body_transformation(BodyTransformation::MergeExtractorsToBody)
    }

    /// How the body is parsed (`parse_body_behavior`, default `ParseAsJson`).
    pub fn parse_body_behavior(mut self, parse: RequestBodyParse) -> Self {
        self.parse_body_behavior = parse;
        self
    }

    /// Whether a body that is not JSON is tolerated (context `{}`) instead of answering 400
    /// (`ignore_error_on_parse`).
    pub fn ignore_error_on_parse(mut self, yes: bool) -> Self {
        self.ignore_error_on_parse = yes;
        self
    }

    /// A dynamic metadata entry (`dynamic_metadata_values`).
    pub fn dynamic_metadata(mut self, value: impl Into<DynamicMetadataValue>) -> Self {
        self.dynamic_metadata_values.push(value.into());
        self
    }

    /// Whether rendered strings are JSON-escaped (without the quotes) (`escape_characters`).
    pub fn escape_characters(mut self, yes: bool) -> Self {
        self.escape_characters = yes;
        self
    }
}

impl fmt::Display for ExtractionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Extract => "EXTRACT",
            Self::SingleReplace => "SINGLE_REPLACE",
            Self::ReplaceAll => "REPLACE_ALL",
        })
    }
}
