//! envoy-gloo's transformation filter (`io.solo.transformation`), served by gloo-filters'
//! [`TransformationLayer`](gloo_filters::transform::TransformationLayer): Gloo's
//! `transformations` / `stagedTransformations` options as gloo-core translates them
//! (`FilterTransformations` on the connection manager, one filter per stage, and a
//! `RouteTransformations` per virtual host, route or weighted cluster). Enabled by the
//! `transform` feature (on by default).
//!
//! Each filter instance runs the rules of its own `stage` (Gloo: 1 for `early`, 0 for
//! `regular` and the deprecated `transformations`), in the order listed, from the most
//! specific `RouteTransformations` (the weighted cluster's the request is sent to, else the
//! route's, else its virtual host's), as envoy-gloo does.
//! The deprecated top-level `request_transformation` / `response_transformation` apply (to
//! stage 0) only when `transformations` is empty, as in envoy-gloo.
//!
//! What the layer does not implement is refused, naming the field, never ignored:
//! listener-level rules, `clear_route_cache` (gloo-proxy picks the route before its filters
//! run, so it cannot route again), `log_request_response_info`, `span_transformer`, query
//! parameter and other route match criteria besides path, headers and methods. A template
//! the layer cannot compile is refused the same way, so the configuration in force keeps
//! serving.
//!
//! The layer's own answers (`400` for a failed transformation, `413` for a body over the
//! buffer limit) are local replies.
//!
//! ```
//! use gloo_core::xds::transformation::{
//!     route_transformation::{Match, RequestMatch},
//!     transformation::TransformationType, InjaTemplate, RouteTransformation,
//!     RouteTransformations, Transformation, TransformationTemplate,
//! };
//! use gloo_proxy::filter::FilterRegistry;
//! use gloo_proxy::transform::{TRANSFORMATION, ROUTE_TRANSFORMATIONS_TYPE};
//! use envoy_types::pb::google::protobuf::Any;
//! use prost::Message;
//!
//! let registry = FilterRegistry::with_builtins();
//! let factory = registry.get(TRANSFORMATION).expect("registered with the builtins");
//! let rules = |text: &str| RouteTransformations {
//!     transformations: vec![RouteTransformation {
//!         stage: 0,
//!         r#match: Some(Match::RequestMatch(RequestMatch {
//!             request_transformation: Some(Transformation {
//!                 transformation_type: Some(TransformationType::TransformationTemplate(
//!                     TransformationTemplate {
//!                         headers: [("x-a".to_string(), InjaTemplate { text: text.into() })].into(),
//!                         ..Default::default()
//!                     },
//!                 )),
//!                 log_request_response_info: None,
//!             }),
//!             ..Default::default()
//!         })),
//!     }],
//!     ..Default::default()
//! };
//! let any = |r: RouteTransformations| Any {
//!     type_url: ROUTE_TRANSFORMATIONS_TYPE.into(),
//!     value: r.encode_to_vec(),
//! };
//! // The filter of stage 0 (its config left empty) builds a layer for the route.
//! assert!(factory.layer(&Any::default(), Some(&any(rules("{{ header(\"x-b\") }}")))).unwrap().is_some());
//! // A template that does not compile is refused, naming the field.
//! let refused = factory.layer(&Any::default(), Some(&any(rules("{{ ")))).err().unwrap();
//! assert!(refused.starts_with("transformations[0].request_match.request_transformation"), "{refused}");
//! ```

use envoy_types::pb::envoy::config::route::v3::header_matcher::HeaderMatchSpecifier;
use envoy_types::pb::envoy::config::route::v3::{route_match, HeaderMatcher, RouteMatch};
use envoy_types::pb::envoy::r#type::matcher::v3::{string_matcher::MatchPattern, StringMatcher};
use envoy_types::pb::google::protobuf::Any;
use gloo_core::xds::transformation as pb;
use gloo_filters::transform as tf;
use http::{Request, Response};
use tower::{Layer, ServiceExt};

use crate::body::Body;
use crate::filter::{decode_typed, FilterFactory, FilterLayer, FilterRegistry, HttpService};
use crate::proxy::LocalReply;

/// envoy-gloo's transformation filter name.
pub const TRANSFORMATION: &str = "io.solo.transformation";
/// The filter config's type URL.
pub const FILTER_TRANSFORMATIONS_TYPE: &str =
    "type.googleapis.com/envoy.api.v2.filter.http.FilterTransformations";
/// The per-route config's type URL.
pub const ROUTE_TRANSFORMATIONS_TYPE: &str =
    "type.googleapis.com/envoy.api.v2.filter.http.RouteTransformations";

pub(crate) fn register(registry: &mut FilterRegistry) {
    registry.register(TRANSFORMATION, TransformationFactory);
}

/// Builds [`TransformationLayer`](tf::TransformationLayer)s from envoy-gloo configs.
struct TransformationFactory;

fn refuse_if(set: bool, field: &str) -> Result<(), String> {
    if set {
        Err(format!("{field}: not supported by gloo-proxy"))
    } else {
        Ok(())
    }
}

impl FilterFactory for TransformationFactory {
    fn layer(&self, config: &Any, per_route: Option<&Any>) -> Result<Option<FilterLayer>, String> {
        // The filter's own config names its stage; an empty one (registered everywhere, or
        // listed without a config) is stage 0.
        let filter = if config.type_url.is_empty() && config.value.is_empty() {
            pb::FilterTransformations::default()
        } else {
            decode_typed::<pb::FilterTransformations>(config, FILTER_TRANSFORMATIONS_TYPE)?
        };
        refuse_if(
            filter.log_request_response_info,
            "log_request_response_info",
        )?;
        // gloo-core emits no listener-level rules (the trimmed proto has none to decode).
        let Some(per_route) = per_route else {
            return Ok(None);
        };
        let route: pb::RouteTransformations = decode_typed(per_route, ROUTE_TRANSFORMATIONS_TYPE)?;
        let Some(rules) = stage_rules(&route, filter.stage)? else {
            return Ok(None);
        };
        let StageRules {
            transformations,
            origins,
        } = rules;
        let layer =
            tf::TransformationLayer::new(transformations).map_err(|e| origins.describe(&e))?;
        Ok(Some(filter_layer(layer)))
    }
}

/// One stage's rules in the layer's terms, with where each came from.
struct StageRules {
    transformations: tf::Transformations,
    origins: Origins,
}

/// The `RouteTransformations` field of each rule of a [`StageRules`].
#[derive(Default)]
struct Origins {
    /// The field of each request rule, in the layer's order.
    request_fields: Vec<String>,
    /// The field of each response rule, in the layer's order.
    response_fields: Vec<String>,
}

impl Origins {
    /// A layer error with its field as the `RouteTransformations` field.
    fn describe(&self, e: &tf::ConfigError) -> String {
        let field = e.field();
        let mapped = [
            ("request_transforms[", &self.request_fields),
            ("response_transforms[", &self.response_fields),
        ]
        .into_iter()
        .find_map(|(prefix, fields)| {
            let rest = field.strip_prefix(prefix)?;
            let (index, rest) = rest.split_once(']')?;
            let origin = fields.get(index.parse::<usize>().ok()?)?;
            Some(format!("{origin}{rest}"))
        });
        format!("{}: {}", mapped.as_deref().unwrap_or(field), e.message())
    }
}

/// The rules of `stage`, or `None` when it has none.
fn stage_rules(route: &pb::RouteTransformations, stage: u32) -> Result<Option<StageRules>, String> {
    use pb::route_transformation::Match;
    let mut out = StageRules {
        transformations: tf::Transformations::new(),
        origins: Origins::default(),
    };
    if route.transformations.is_empty() {
        // Older configs: the deprecated fields are one match-all stage-0 rule.
        if stage != 0
            || (route.request_transformation.is_none() && route.response_transformation.is_none())
        {
            return Ok(None);
        }
        refuse_if(route.clear_route_cache, "clear_route_cache")?;
        let mut rule = tf::RequestMatch::new();
        if let Some(t) = &route.request_transformation {
            rule = rule.request_transformation(transformation(t, "request_transformation")?);
        }
        if let Some(t) = &route.response_transformation {
            rule = rule.response_transformation(transformation(t, "response_transformation")?);
        }
        out.transformations = out.transformations.request_transform(rule);
        out.origins.request_fields.push(String::new());
        return Ok(Some(out));
    }
    for (i, rule) in route.transformations.iter().enumerate() {
        if rule.stage != stage {
            continue;
        }
        match &rule.r#match {
            Some(Match::RequestMatch(m)) => {
                let at = format!("transformations[{i}].request_match");
                refuse_if(m.clear_route_cache, &format!("{at}.clear_route_cache"))?;
                let mut r = tf::RequestMatch::new();
                if let Some(matcher) = &m.r#match {
                    r = r.matcher(route_matcher(matcher, &format!("{at}.match"))?);
                }
                if let Some(t) = &m.request_transformation {
                    r = r.request_transformation(transformation(
                        t,
                        &format!("{at}.request_transformation"),
                    )?);
                }
                if let Some(t) = &m.response_transformation {
                    r = r.response_transformation(transformation(
                        t,
                        &format!("{at}.response_transformation"),
                    )?);
                }
                out.transformations = out.transformations.request_transform(r);
                out.origins.request_fields.push(at);
            }
            Some(Match::ResponseMatch(m)) => {
                let at = format!("transformations[{i}].response_match");
                let t = m
                    .response_transformation
                    .as_ref()
                    .ok_or_else(|| format!("{at}.response_transformation: required"))?;
                let mut r = tf::ResponseMatch::new(transformation(
                    t,
                    &format!("{at}.response_transformation"),
                )?);
                if let Some(matcher) = &m.r#match {
                    r = r.matcher(response_matcher(matcher, &format!("{at}.match"))?);
                }
                out.transformations = out.transformations.response_transform(r);
                out.origins.response_fields.push(at);
            }
            None => return Err(format!("transformations[{i}].match: required")),
        }
    }
    Ok(
        (!out.origins.request_fields.is_empty() || !out.origins.response_fields.is_empty())
            .then_some(out),
    )
}

fn string_matcher(m: &StringMatcher, at: &str) -> Result<tf::StringMatcher, String> {
    let matcher = match &m.match_pattern {
        Some(MatchPattern::Exact(s)) => tf::StringMatcher::exact(s.as_str()),
        Some(MatchPattern::Prefix(s)) => tf::StringMatcher::prefix(s.as_str()),
        Some(MatchPattern::Suffix(s)) => tf::StringMatcher::suffix(s.as_str()),
        Some(MatchPattern::Contains(s)) => tf::StringMatcher::contains(s.as_str()),
        Some(MatchPattern::SafeRegex(r)) => tf::StringMatcher::regex(r.regex.as_str()),
        Some(_) => {
            return Err(format!(
                "{at}: this match pattern is not supported by gloo-proxy"
            ))
        }
        None => return Err(format!("{at}: no match pattern")),
    };
    Ok(matcher.ignore_case(m.ignore_case))
}

fn header_matcher(h: &HeaderMatcher, at: &str) -> Result<tf::HeaderMatcher, String> {
    refuse_if(
        h.treat_missing_header_as_empty,
        &format!("{at}.treat_missing_header_as_empty"),
    )?;
    let name = h.name.as_str();
    #[allow(deprecated)]
    let matcher = match &h.header_match_specifier {
        // Envoy: no specifier matches a present header.
        None => tf::HeaderMatcher::present(name, true),
        Some(HeaderMatchSpecifier::PresentMatch(p)) => tf::HeaderMatcher::present(name, *p),
        Some(HeaderMatchSpecifier::ExactMatch(v)) => tf::HeaderMatcher::exact(name, v.as_str()),
        Some(HeaderMatchSpecifier::SafeRegexMatch(r)) => {
            tf::HeaderMatcher::regex(name, r.regex.as_str())
        }
        Some(HeaderMatchSpecifier::PrefixMatch(v)) => {
            tf::HeaderMatcher::string(name, tf::StringMatcher::prefix(v.as_str()))
        }
        Some(HeaderMatchSpecifier::SuffixMatch(v)) => {
            tf::HeaderMatcher::string(name, tf::StringMatcher::suffix(v.as_str()))
        }
        Some(HeaderMatchSpecifier::ContainsMatch(v)) => {
            tf::HeaderMatcher::string(name, tf::StringMatcher::contains(v.as_str()))
        }
        Some(HeaderMatchSpecifier::StringMatch(m)) => {
            tf::HeaderMatcher::string(name, string_matcher(m, &format!("{at}.string_match"))?)
        }
        Some(_) => {
            return Err(format!(
                "{at}: this header match is not supported by gloo-proxy"
            ))
        }
    };
    Ok(matcher.invert(h.invert_match))
}

/// Gloo's request matcher: a path (prefix, exact or regex; all paths when unset), header
/// matchers and the methods (a `:method` header regex).
fn route_matcher(m: &RouteMatch, at: &str) -> Result<tf::RouteMatch, String> {
    refuse_if(
        !m.query_parameters.is_empty(),
        &format!("{at}.query_parameters"),
    )?;
    refuse_if(
        m.runtime_fraction.is_some(),
        &format!("{at}.runtime_fraction"),
    )?;
    refuse_if(m.grpc.is_some(), &format!("{at}.grpc"))?;
    refuse_if(m.tls_context.is_some(), &format!("{at}.tls_context"))?;
    refuse_if(
        !m.dynamic_metadata.is_empty(),
        &format!("{at}.dynamic_metadata"),
    )?;
    refuse_if(!m.filter_state.is_empty(), &format!("{at}.filter_state"))?;
    let mut out = match &m.path_specifier {
        None => tf::RouteMatch::prefix("/"),
        Some(route_match::PathSpecifier::Prefix(p)) => tf::RouteMatch::prefix(p.as_str()),
        Some(route_match::PathSpecifier::Path(p)) => tf::RouteMatch::path(p.as_str()),
        Some(route_match::PathSpecifier::SafeRegex(r)) => tf::RouteMatch::regex(r.regex.as_str()),
        Some(_) => {
            return Err(format!(
                "{at}: this path match is not supported by gloo-proxy"
            ))
        }
    };
    if let Some(cs) = &m.case_sensitive {
        out = out.case_sensitive(cs.value);
    }
    for (i, h) in m.headers.iter().enumerate() {
        out = out.header(header_matcher(h, &format!("{at}.headers[{i}]"))?);
    }
    Ok(out)
}

fn response_matcher(m: &pb::ResponseMatcher, at: &str) -> Result<tf::ResponseMatcher, String> {
    let mut out = tf::ResponseMatcher::new();
    for (i, h) in m.headers.iter().enumerate() {
        out = out.header(header_matcher(h, &format!("{at}.headers[{i}]"))?);
    }
    if let Some(d) = &m.response_code_details {
        out = out.response_code_details(string_matcher(d, &format!("{at}.response_code_details"))?);
    }
    Ok(out)
}

fn transformation(t: &pb::Transformation, at: &str) -> Result<tf::Transformation, String> {
    use pb::transformation::TransformationType;
    refuse_if(
        t.log_request_response_info
            .as_ref()
            .is_some_and(|v| v.value),
        &format!("{at}.log_request_response_info"),
    )?;
    match &t.transformation_type {
        Some(TransformationType::TransformationTemplate(tt)) => Ok(tf::Transformation::Template(
            template(tt, &format!("{at}.transformation_template"))?,
        )),
        Some(TransformationType::HeaderBodyTransform(h)) => Ok(tf::Transformation::HeaderBody(
            tf::HeaderBodyTransform::new().add_request_metadata(h.add_request_metadata),
        )),
        None => Err(format!("{at}: no transformation type")),
    }
}

fn template(
    t: &pb::TransformationTemplate,
    at: &str,
) -> Result<tf::TransformationTemplate, String> {
    use pb::transformation_template::{BodyTransformation, RequestBodyParse};
    refuse_if(
        t.span_transformer.is_some(),
        &format!("{at}.span_transformer"),
    )?;
    let mut out = tf::TransformationTemplate::new()
        .advanced_templates(t.advanced_templates)
        .ignore_error_on_parse(t.ignore_error_on_parse)
        .escape_characters(t.escape_characters)
        .parse_body_behavior(match RequestBodyParse::try_from(t.parse_body_behavior) {
            Ok(RequestBodyParse::ParseAsJson) => tf::RequestBodyParse::ParseAsJson,
            Ok(RequestBodyParse::DontParse) => tf::RequestBodyParse::DontParse,
            Err(_) => {
                return Err(format!(
                    "{at}.parse_body_behavior: unknown value {}",
                    t.parse_body_behavior
                ))
            }
        });
    for (name, e) in &t.extractors {
        out = out.extractor(
            name.as_str(),
            extraction(e, &format!("{at}.extractors[{name:?}]"))?,
        );
    }
    for (name, v) in &t.headers {
        out = out.header(name.as_str(), v.text.as_str());
    }
    for h in &t.headers_to_append {
        out = out.header_to_append(
            h.key.as_str(),
            h.value.as_ref().map_or("", |v| v.text.as_str()),
        );
    }
    for name in &t.headers_to_remove {
        out = out.header_to_remove(name.as_str());
    }
    out = match &t.body_transformation {
        None => out,
        Some(BodyTransformation::Body(b)) => out.body(b.text.as_str()),
        Some(BodyTransformation::Passthrough(_)) => out.passthrough(),
        Some(BodyTransformation::MergeExtractorsToBody(_)) => out.merge_extractors_to_body(),
        Some(BodyTransformation::MergeJsonKeys(m)) => {
            out.body_transformation(tf::BodyTransformation::MergeJsonKeys(
                m.json_keys
                    .iter()
                    .map(|(key, v)| {
                        tf::MergeJsonKey::new(
                            key.as_str(),
                            v.tmpl.as_ref().map_or("", |t| t.text.as_str()),
                        )
                        .override_empty(v.override_empty)
                    })
                    .collect(),
            ))
        }
    };
    for d in &t.dynamic_metadata_values {
        let mut value = tf::DynamicMetadataValue::new(
            d.key.as_str(),
            d.value.as_ref().map_or("", |v| v.text.as_str()),
        )
        .json_to_proto(d.json_to_proto);
        if !d.metadata_namespace.is_empty() {
            value = value.namespace(d.metadata_namespace.as_str());
        }
        out = out.dynamic_metadata(value);
    }
    Ok(out)
}

fn extraction(e: &pb::Extraction, at: &str) -> Result<tf::Extraction, String> {
    use pb::extraction::{Mode, Source};
    let out = match &e.source {
        Some(Source::Header(h)) => tf::Extraction::header(h.as_str(), e.regex.as_str()),
        Some(Source::Body(_)) => tf::Extraction::body(e.regex.as_str()),
        None => return Err(format!("{at}: no source: set header or body")),
    };
    let mode = match Mode::try_from(e.mode) {
        Ok(Mode::Extract) => tf::ExtractionMode::Extract,
        Ok(Mode::SingleReplace) => tf::ExtractionMode::SingleReplace,
        Ok(Mode::ReplaceAll) => tf::ExtractionMode::ReplaceAll,
        Err(_) => return Err(format!("{at}.mode: unknown mode {}", e.mode)),
    };
    let mut out = out.subgroup(e.subgroup).mode(mode);
    if let Some(text) = &e.replacement_text {
        out = out.replacement_text(text.value.as_str());
    }
    Ok(out)
}

/// The layer as a gloo-proxy filter: the inner service sees a plain [`Body`], and the layer's
/// own answers are marked as local replies.
fn filter_layer(layer: tf::TransformationLayer) -> FilterLayer {
    FilterLayer::from_fn(move |inner: HttpService| {
        let inner = inner.map_request(|r: Request<tf::TransformBody<Body>>| r.map(Body::new));
        HttpService::new(layer.layer(inner).map_response(finish_response))
    })
}

fn finish_response(response: Response<tf::TransformBody<Body>>) -> Response<Body> {
    let mut response = response.map(Body::new);
    if response
        .extensions()
        .get::<tf::TransformationFailed>()
        .is_some()
    {
        response.extensions_mut().insert(LocalReply);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::route::v3::QueryParameterMatcher;
    use envoy_types::pb::google::protobuf::BoolValue;
    use pb::route_transformation::{Match, RequestMatch, ResponseMatch};
    use pb::transformation::TransformationType;
    use prost::Message;

    fn headers(name: &str, text: &str) -> pb::Transformation {
        pb::Transformation {
            transformation_type: Some(TransformationType::TransformationTemplate(
                pb::TransformationTemplate {
                    headers: [(name.to_string(), pb::InjaTemplate { text: text.into() })].into(),
                    ..Default::default()
                },
            )),
            log_request_response_info: None,
        }
    }

    fn request_rule(stage: u32, t: pb::Transformation) -> pb::RouteTransformation {
        pb::RouteTransformation {
            stage,
            r#match: Some(Match::RequestMatch(RequestMatch {
                request_transformation: Some(t),
                ..Default::default()
            })),
        }
    }

    fn layer_for(
        stage: u32,
        route: &pb::RouteTransformations,
    ) -> Result<Option<FilterLayer>, String> {
        let config = Any {
            type_url: FILTER_TRANSFORMATIONS_TYPE.into(),
            value: pb::FilterTransformations {
                stage,
                log_request_response_info: false,
            }
            .encode_to_vec(),
        };
        let per_route = Any {
            type_url: ROUTE_TRANSFORMATIONS_TYPE.into(),
            value: route.encode_to_vec(),
        };
        TransformationFactory.layer(&config, Some(&per_route))
    }

    #[test]
    fn each_filter_uses_only_the_rules_of_its_stage() {
        let route = pb::RouteTransformations {
            transformations: vec![request_rule(1, headers("x-early", "e"))],
            ..Default::default()
        };
        assert!(layer_for(1, &route).unwrap().is_some());
        assert!(layer_for(0, &route).unwrap().is_none());
        // No per-route config: nothing to do.
        assert!(TransformationFactory
            .layer(&Any::default(), None)
            .unwrap()
            .is_none());
    }

    #[test]
    fn the_deprecated_fields_apply_to_stage_zero_only_without_rules() {
        let legacy = pb::RouteTransformations {
            request_transformation: Some(headers("x-legacy", "l")),
            ..Default::default()
        };
        assert!(layer_for(0, &legacy).unwrap().is_some());
        assert!(layer_for(1, &legacy).unwrap().is_none());
        // With rules, the deprecated fields are ignored (as envoy-gloo does): a broken legacy
        // template next to rules of another stage builds nothing for stage 0.
        let both = pb::RouteTransformations {
            request_transformation: Some(headers("x-legacy", "{{ ")),
            transformations: vec![request_rule(1, headers("x-early", "e"))],
            ..Default::default()
        };
        assert!(layer_for(0, &both).unwrap().is_none());
    }

    #[test]
    fn what_the_layer_does_not_implement_is_refused_naming_the_field() {
        let mut clear = request_rule(0, headers("x-a", "a"));
        if let Some(Match::RequestMatch(m)) = &mut clear.r#match {
            m.clear_route_cache = true;
        }
        let mut query = request_rule(0, headers("x-a", "a"));
        if let Some(Match::RequestMatch(m)) = &mut query.r#match {
            m.r#match = Some(RouteMatch {
                query_parameters: vec![QueryParameterMatcher::default()],
                ..Default::default()
            });
        }
        let mut logged = headers("x-a", "a");
        logged.log_request_response_info = Some(BoolValue { value: true });
        let mut span = headers("x-a", "a");
        if let Some(TransformationType::TransformationTemplate(t)) = &mut span.transformation_type {
            t.span_transformer = Some(Default::default());
        }
        for (rule, field) in [
            (clear, "transformations[0].request_match.clear_route_cache"),
            (query, "transformations[0].request_match.match.query_parameters"),
            (
                request_rule(0, logged),
                "transformations[0].request_match.request_transformation.log_request_response_info",
            ),
            (
                request_rule(0, span),
                "transformations[0].request_match.request_transformation.transformation_template.span_transformer",
            ),
        ] {
            let route = pb::RouteTransformations {
                transformations: vec![rule],
                ..Default::default()
            };
            let err = layer_for(0, &route).expect_err("refused");
            assert_eq!(err, format!("{field}: not supported by gloo-proxy"));
        }
    }

    #[test]
    fn a_layer_error_names_the_rule_as_listed_in_the_config() {
        // The broken response rule is the layer's response_transforms[0] but the config's
        // transformations[2] (a rule of another stage and a request rule come first).
        let route = pb::RouteTransformations {
            transformations: vec![
                request_rule(1, headers("x-early", "e")),
                request_rule(0, headers("x-a", "a")),
                pb::RouteTransformation {
                    stage: 0,
                    r#match: Some(Match::ResponseMatch(ResponseMatch {
                        r#match: None,
                        response_transformation: Some(headers("x-b", "{% if %}")),
                    })),
                },
            ],
            ..Default::default()
        };
        let err = layer_for(0, &route).expect_err("refused");
        assert!(
            err.starts_with(
                "transformations[2].response_match.response_transformation.transformation_template.headers[\"x-b\"]"
            ),
            "{err}"
        );
    }
}
