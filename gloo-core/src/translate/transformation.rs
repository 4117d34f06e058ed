//! Request and response transformations as Gloo's transformation plugin emits them
//! (`projects/gloo/pkg/plugins/transformation/plugin.go`): envoy-gloo's
//! `io.solo.transformation` filter in the connection manager, once per stage in use, and a
//! `RouteTransformations` per virtual host, route and weighted destination that sets
//! `transformations` or `stagedTransformations`.
//!
//! * Stages: `early` is stage 1, a filter placed right after fault injection
//!   (`AfterStage(FaultStage)`); `regular` and the deprecated `transformations` are stage 0, a
//!   filter right after authorization (`AfterStage(AuthZStage)`). The early filter is emitted
//!   only when something uses the early stage, and neither filter when nothing on the listener
//!   transforms (Gloo with `removeUnusedFilters`, which gloo applies to every filter).
//! * The deprecated `transformations` becomes both the deprecated top-level fields (for older
//!   envoy-gloo builds) and one match-all stage-0 request rule, unless
//!   `stagedTransformations.regular` is set, which then replaces it.
//! * Each stage lists its response rules first, then its request rules (Gloo's order).
//! * `logRequestResponseInfo` on the stages sets it on every transformation; a template's
//!   `escapeCharacters` falls back to the stages' one.
//!
//! Envoy has no proto for this filter, so the filter is marked optional and every per-route
//! config is wrapped in an optional `envoy.config.route.v3.FilterConfig`: a stock Envoy skips
//! them (DESIGN.md: "Own protos only where Envoy has none, and such filters are marked
//! optional"). Settings' `logTransformationRequestResponseInfo` and
//! `transformationEscapeCharacters` are the defaults, as in Gloo. Difference from Gloo: the
//! early filter is emitted per listener rather than on every listener once
//! any listener uses it.
//!
//! Validation rejects at translation time what the data plane would: a transformation with no
//! type or with two, conflicting oneofs, extractors without a source or regex, invalid
//! regexes, subgroups beyond the regex's groups, replacement text in the wrong extraction
//! mode (Gloo's `translateExtractor` errors), invalid header names, dynamic metadata without a
//! key, and `mergeJsonKeys` with advanced templates, without JSON parsing or with a dotted key.
//! Templates themselves are compiled only by the data plane.

use envoy_types::pb::envoy::config::route::v3::header_matcher::HeaderMatchSpecifier;
use envoy_types::pb::envoy::config::route::v3::query_parameter_matcher::QueryParameterMatchSpecifier;
use envoy_types::pb::envoy::config::route::v3::{
    route_match, FilterConfig, HeaderMatcher as EnvoyHeaderMatcher, QueryParameterMatcher,
    RouteMatch,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_filter, HttpFilter,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{
    regex_matcher, string_matcher::MatchPattern, RegexMatcher, StringMatcher,
};
use envoy_types::pb::google::protobuf::{Any, BoolValue, Empty, StringValue};

use std::sync::Arc;

use super::Context;
use crate::model::options::{RouteOptions, VirtualHostOptions, WeightedDestinationOptions};
use crate::model::routing::{
    HeaderMatcher, Matcher, PathMatcher, RouteDestination, WeightedDestination,
};
use crate::model::transformation::{
    BodyTransformationRef, Extraction, ExtractionMode, ExtractionSourceRef, RequestBodyParse,
    RequestResponseTransformations, Transformation, TransformationStages, TransformationTemplate,
    TransformationTypeRef, Transformations,
};
use crate::resolve::{RouteModelAction, VirtualHostModel};
use crate::xds::pack;
use crate::xds::transformation as pb;

/// Gloo's `FilterName`: the envoy-gloo transformation filter.
pub const TRANSFORMATION_FILTER: &str = "io.solo.transformation";
/// Gloo's `RegularStageNumber`.
pub(crate) const REGULAR_STAGE: u32 = 0;
/// Gloo's `EarlyStageNumber`.
pub(crate) const EARLY_STAGE: u32 = 1;

/// Settings' transformation defaults (`gloo.logTransformationRequestResponseInfo`,
/// `gloo.transformationEscapeCharacters`). Cached virtual hosts are translated with them, so a
/// change re-translates every virtual host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SettingsDefaults {
    /// Log every transformation (and set the filters' flag).
    log: bool,
    /// The last fallback of a template's `escapeCharacters`.
    escape_characters: Option<bool>,
}

impl SettingsDefaults {
    /// The defaults of the snapshot's Settings (the first that sets `gloo`).
    pub(crate) fn of(snapshot: &crate::snapshot::ConfigSnapshot) -> Self {
        snapshot
            .settings
            .values()
            .find_map(|entry| entry.object.spec.gloo.as_ref())
            .map(|g| SettingsDefaults {
                log: g.log_transformation_request_response_info.unwrap_or(false),
                escape_characters: g.transformation_escape_characters,
            })
            .unwrap_or_default()
    }
}

/// The transformation options of a virtual host, route or weighted destination.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Options<'a> {
    legacy: Option<&'a Transformations>,
    staged: Option<&'a TransformationStages>,
}

impl<'a> Options<'a> {
    pub(crate) fn host(o: &'a VirtualHostOptions) -> Self {
        Options {
            legacy: o.transformations.as_deref(),
            staged: o.staged_transformations.as_deref(),
        }
    }

    pub(crate) fn route(o: &'a RouteOptions) -> Self {
        Options {
            legacy: o.transformations.as_deref(),
            staged: o.staged_transformations.as_deref(),
        }
    }

    pub(crate) fn weighted(o: Option<&'a WeightedDestinationOptions>) -> Self {
        Options {
            legacy: o.and_then(|o| o.transformations.as_ref()),
            staged: o.and_then(|o| o.staged_transformations.as_ref()),
        }
    }

    /// Whether anything is set (Gloo emits a config for an empty `stagedTransformations` too).
    pub(crate) fn is_set(&self) -> bool {
        self.legacy.is_some() || self.staged.is_some()
    }

    /// Whether the early stage is used.
    pub(crate) fn uses_early(&self) -> bool {
        self.staged.is_some_and(|s| s.early.is_some())
    }
}

/// Every transformation option set on these virtual hosts, their routes and their weighted
/// destinations (upstream groups included).
fn options_of<'a>(
    hosts: &'a [Arc<VirtualHostModel>],
    ctx: &'a Context<'_>,
) -> impl Iterator<Item = Options<'a>> + 'a {
    hosts.iter().flat_map(move |h| {
        std::iter::once(Options::host(&h.options)).chain(h.routes.iter().flat_map(move |r| {
            let destinations: &[WeightedDestination] = match &r.action {
                RouteModelAction::Route(a) => match a.destination() {
                    Ok(Some(RouteDestination::Multi(m))) => &m.destinations,
                    Ok(Some(RouteDestination::UpstreamGroup(g))) => ctx
                        .snapshot
                        .upstream_groups
                        .get(&g.resolved(crate::model::DEFAULT_NAMESPACE))
                        .map_or(&[][..], |g| &g.object.spec.destinations[..]),
                    _ => &[],
                },
                _ => &[],
            };
            std::iter::once(Options::route(&r.options)).chain(
                destinations
                    .iter()
                    .map(|d| Options::weighted(d.options.as_ref())),
            )
        }))
    })
}

/// The connection manager's transformation filters for a listener serving `hosts`: the early
/// stage's (to place right after fault injection) when anything uses it, and the regular
/// stage's (to place right after authorization) when anything transforms at all.
pub(crate) fn http_filters_for(
    hosts: &[Arc<VirtualHostModel>],
    ctx: &Context<'_>,
) -> (Option<HttpFilter>, Option<HttpFilter>) {
    let (mut used, mut early) = (false, false);
    for o in options_of(hosts, ctx) {
        used |= o.is_set();
        early |= o.uses_early();
        if early {
            break;
        }
    }
    http_filters(used, early, ctx.transformation)
}

fn http_filters(
    used: bool,
    early: bool,
    settings: SettingsDefaults,
) -> (Option<HttpFilter>, Option<HttpFilter>) {
    let filter = |stage| HttpFilter {
        name: TRANSFORMATION_FILTER.to_string(),
        config_type: Some(http_filter::ConfigType::TypedConfig(pack(
            &pb::FilterTransformations {
                stage,
                log_request_response_info: settings.log,
            },
        ))),
        // Stock Envoy has no such filter: it skips it instead of refusing the listener.
        is_optional: true,
        ..Default::default()
    };
    (
        (used && early).then(|| filter(EARLY_STAGE)),
        used.then(|| filter(REGULAR_STAGE)),
    )
}

/// The `typed_per_filter_config` entry for these options, if any: the `RouteTransformations`
/// wrapped in an optional `FilterConfig`.
pub(crate) fn per_filter_config(
    options: Options<'_>,
    settings: SettingsDefaults,
) -> Option<(String, Any)> {
    per_filter_config_with(options, settings, None)
}

/// [`per_filter_config`] with one more rule (the AWS stage's request transformation of a
/// Lambda destination, appended as Gloo's aws plugin appends it).
pub(crate) fn per_filter_config_with(
    options: Options<'_>,
    settings: SettingsDefaults,
    extra: Option<pb::RouteTransformation>,
) -> Option<(String, Any)> {
    let mut config = route_transformations(options, settings);
    if let Some(extra) = extra {
        config
            .get_or_insert_with(Default::default)
            .transformations
            .push(extra);
    }
    let config = config?;
    let wrapped = FilterConfig {
        config: Some(pack(&config)),
        is_optional: true,
        disabled: false,
    };
    Some((TRANSFORMATION_FILTER.to_string(), pack(&wrapped)))
}

/// Gloo's `ConvertTransformation`.
pub(crate) fn route_transformations(
    options: Options<'_>,
    settings: SettingsDefaults,
) -> Option<pb::RouteTransformations> {
    if !options.is_set() {
        return None;
    }
    let staged = options.staged;
    // A template's own `escapeCharacters`, else the stages', else Settings'.
    let stage_escape = staged
        .and_then(|s| s.escape_characters)
        .or(settings.escape_characters);
    let mut out = pb::RouteTransformations::default();
    if let Some(t) = options.legacy {
        if staged.is_none_or(|s| s.regular.is_none()) {
            // Kept for older envoy-gloo builds, which read only these; newer ones read
            // `transformations`, which must then carry the same rule.
            let request = t
                .request_transformation
                .as_ref()
                .and_then(|t| transformation(t, settings.escape_characters));
            let response = t
                .response_transformation
                .as_ref()
                .and_then(|t| transformation(t, settings.escape_characters));
            let clear = t.clear_route_cache.unwrap_or(false);
            out.request_transformation = request.clone();
            out.response_transformation = response.clone();
            out.clear_route_cache = clear;
            out.transformations.push(pb::RouteTransformation {
                stage: REGULAR_STAGE,
                r#match: Some(pb::route_transformation::Match::RequestMatch(
                    pb::route_transformation::RequestMatch {
                        r#match: None,
                        request_transformation: request,
                        response_transformation: response,
                        clear_route_cache: clear,
                    },
                )),
            });
        }
    }
    if let Some(s) = staged {
        for (stage, rules) in [(EARLY_STAGE, &s.early), (REGULAR_STAGE, &s.regular)] {
            if let Some(rules) = rules {
                out.transformations
                    .extend(stage_rules(stage, rules, stage_escape));
            }
        }
    }
    // The stages' `logRequestResponseInfo`, else Settings', logs every transformation.
    if staged
        .and_then(|s| s.log_request_response_info)
        .unwrap_or(settings.log)
    {
        for rule in &mut out.transformations {
            for t in rule_transformations(rule) {
                t.log_request_response_info = Some(BoolValue { value: true });
            }
        }
    }
    Some(out)
}

fn rule_transformations(rule: &mut pb::RouteTransformation) -> Vec<&mut pb::Transformation> {
    match &mut rule.r#match {
        Some(pb::route_transformation::Match::RequestMatch(m)) => m
            .request_transformation
            .iter_mut()
            .chain(m.response_transformation.iter_mut())
            .collect(),
        Some(pb::route_transformation::Match::ResponseMatch(m)) => {
            m.response_transformation.iter_mut().collect()
        }
        None => Vec::new(),
    }
}

/// Gloo's `getTransformations`: the response rules, then the request rules.
fn stage_rules(
    stage: u32,
    rules: &RequestResponseTransformations,
    stage_escape: Option<bool>,
) -> Vec<pb::RouteTransformation> {
    let responses = rules
        .response_transforms
        .iter()
        .map(|r| pb::RouteTransformation {
            stage,
            r#match: Some(pb::route_transformation::Match::ResponseMatch(
                pb::route_transformation::ResponseMatch {
                    r#match: Some(pb::ResponseMatcher {
                        headers: r.matchers.iter().map(header_matcher).collect(),
                        response_code_details: r
                            .response_code_details
                            .as_ref()
                            .filter(|d| !d.is_empty())
                            .map(|d| StringMatcher {
                                match_pattern: Some(MatchPattern::Exact(d.clone())),
                                ignore_case: false,
                            }),
                    }),
                    response_transformation: r
                        .response_transformation
                        .as_ref()
                        .and_then(|t| transformation(t, stage_escape)),
                },
            )),
        });
    let requests = rules
        .request_transforms
        .iter()
        .map(|r| pb::RouteTransformation {
            stage,
            r#match: Some(pb::route_transformation::Match::RequestMatch(
                pb::route_transformation::RequestMatch {
                    r#match: r.matcher.as_ref().map(request_matcher),
                    request_transformation: r
                        .request_transformation
                        .as_ref()
                        .and_then(|t| transformation(t, stage_escape)),
                    response_transformation: r
                        .response_transformation
                        .as_ref()
                        .and_then(|t| transformation(t, stage_escape)),
                    clear_route_cache: r.clear_route_cache.unwrap_or(false),
                },
            )),
        });
    responses.chain(requests).collect()
}

fn regex(pattern: &str) -> RegexMatcher {
    RegexMatcher {
        regex: pattern.to_string(),
        // Gloo's `convertRegex` names the RE2 engine (its program size limit unset).
        #[allow(deprecated)]
        engine_type: Some(regex_matcher::EngineType::GoogleRe2(
            regex_matcher::GoogleRe2::default(),
        )),
    }
}

/// Gloo's `envoyHeaderMatcher` (the v2-era `exact_match` / `safe_regex_match` /
/// `present_match` fields, as Gloo writes them).
fn header_matcher(h: &HeaderMatcher) -> EnvoyHeaderMatcher {
    #[allow(deprecated)]
    let specifier = if h.value.is_empty() {
        HeaderMatchSpecifier::PresentMatch(true)
    } else if h.regex {
        HeaderMatchSpecifier::SafeRegexMatch(regex(&h.value))
    } else {
        HeaderMatchSpecifier::ExactMatch(h.value.clone())
    };
    EnvoyHeaderMatcher {
        name: h.name.clone(),
        invert_match: h.invert_match,
        header_match_specifier: Some(specifier),
        ..Default::default()
    }
}

/// Gloo's `getRequestMatcher`: headers, query parameters, methods as a `:method` regex, and
/// the path only when one is set (no `case_sensitive`, as in Gloo).
fn request_matcher(m: &Matcher) -> RouteMatch {
    let mut headers: Vec<EnvoyHeaderMatcher> = m.headers.iter().map(header_matcher).collect();
    if !m.methods.is_empty() {
        #[allow(deprecated)]
        headers.push(EnvoyHeaderMatcher {
            name: ":method".to_string(),
            header_match_specifier: Some(HeaderMatchSpecifier::SafeRegexMatch(regex(
                &m.methods.join("|"),
            ))),
            ..Default::default()
        });
    }
    let query_parameters = m
        .query_parameters
        .iter()
        .map(|q| QueryParameterMatcher {
            name: q.name.clone(),
            query_parameter_match_specifier: Some(if q.value.is_empty() {
                QueryParameterMatchSpecifier::PresentMatch(true)
            } else {
                QueryParameterMatchSpecifier::StringMatch(StringMatcher {
                    match_pattern: Some(if q.regex {
                        MatchPattern::SafeRegex(regex(&q.value))
                    } else {
                        MatchPattern::Exact(q.value.clone())
                    }),
                    ignore_case: false,
                })
            }),
        })
        .collect();
    let path_specifier = match m.path() {
        Ok(Some(PathMatcher::Prefix(p))) => Some(route_match::PathSpecifier::Prefix(p.into())),
        Ok(Some(PathMatcher::Exact(p))) => Some(route_match::PathSpecifier::Path(p.into())),
        Ok(Some(PathMatcher::Regex(r))) => Some(route_match::PathSpecifier::SafeRegex(regex(r))),
        Ok(Some(PathMatcher::Connect)) => Some(route_match::PathSpecifier::ConnectMatcher(
            route_match::ConnectMatcher {},
        )),
        // Validation rejects conflicting path matchers before translation.
        Ok(None) | Err(_) => None,
    };
    RouteMatch {
        path_specifier,
        headers,
        query_parameters,
        ..Default::default()
    }
}

/// Gloo's `TranslateTransformation`. Validation rejects a transformation without a type (or
/// with two) before translation; one that gets here anyway (from an UpstreamGroup, which is
/// reported but still used) is emitted without a type, which the data plane refuses, rather
/// than dropped, which would serve the destination untransformed.
fn transformation(t: &Transformation, stage_escape: Option<bool>) -> Option<pb::Transformation> {
    let kind = match t.transformation_type() {
        Ok(Some(TransformationTypeRef::Template(tt))) => {
            pb::transformation::TransformationType::TransformationTemplate(template(
                tt,
                stage_escape,
            ))
        }
        Ok(Some(TransformationTypeRef::HeaderBody(h))) => {
            pb::transformation::TransformationType::HeaderBodyTransform(pb::HeaderBodyTransform {
                add_request_metadata: h.add_request_metadata.unwrap_or(false),
            })
        }
        Ok(None) | Err(_) => {
            return Some(pb::Transformation {
                transformation_type: None,
                log_request_response_info: None,
            })
        }
    };
    Some(pb::Transformation {
        transformation_type: Some(kind),
        log_request_response_info: (t.log_request_response_info == Some(true))
            .then_some(BoolValue { value: true }),
    })
}

fn inja(t: Option<&crate::model::transformation::InjaTemplate>) -> pb::InjaTemplate {
    pb::InjaTemplate {
        text: t.and_then(|t| t.text.clone()).unwrap_or_default(),
    }
}

/// Gloo's `translateTransformationTemplate` and `translateExtractor`.
fn template(t: &TransformationTemplate, stage_escape: Option<bool>) -> pb::TransformationTemplate {
    use pb::transformation_template as tt;
    let body_transformation = match t.body_transformation() {
        Ok(Some(BodyTransformationRef::Body(b))) => {
            Some(tt::BodyTransformation::Body(inja(Some(b))))
        }
        Ok(Some(BodyTransformationRef::Passthrough)) => {
            Some(tt::BodyTransformation::Passthrough(pb::Passthrough {}))
        }
        Ok(Some(BodyTransformationRef::MergeExtractorsToBody)) => Some(
            tt::BodyTransformation::MergeExtractorsToBody(pb::MergeExtractorsToBody {}),
        ),
        Ok(Some(BodyTransformationRef::MergeJsonKeys(m))) => {
            Some(tt::BodyTransformation::MergeJsonKeys(pb::MergeJsonKeys {
                json_keys: m
                    .json_keys
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            pb::merge_json_keys::OverridableTemplate {
                                tmpl: Some(inja(v.tmpl.as_ref())),
                                override_empty: v.override_empty.unwrap_or(false),
                            },
                        )
                    })
                    .collect(),
            }))
        }
        Ok(None) | Err(_) => None,
    };
    pb::TransformationTemplate {
        advanced_templates: t.advanced_templates.unwrap_or(false),
        extractors: t
            .extractors
            .iter()
            .map(|(name, e)| (name.clone(), extraction(e)))
            .collect(),
        headers: t
            .headers
            .iter()
            .map(|(name, v)| (name.clone(), inja(Some(v))))
            .collect(),
        headers_to_append: t
            .headers_to_append
            .iter()
            .map(|h| tt::HeaderToAppend {
                key: h.key.clone().unwrap_or_default(),
                value: Some(inja(h.value.as_ref())),
            })
            .collect(),
        headers_to_remove: t.headers_to_remove.clone(),
        body_transformation,
        parse_body_behavior: match t.parse_body_behavior.unwrap_or_default() {
            RequestBodyParse::ParseAsJson => tt::RequestBodyParse::ParseAsJson as i32,
            RequestBodyParse::DontParse => tt::RequestBodyParse::DontParse as i32,
        },
        ignore_error_on_parse: t.ignore_error_on_parse.unwrap_or(false),
        dynamic_metadata_values: t
            .dynamic_metadata_values
            .iter()
            .map(|d| tt::DynamicMetadataValue {
                metadata_namespace: d.metadata_namespace.clone().unwrap_or_default(),
                key: d.key.clone().unwrap_or_default(),
                value: Some(inja(d.value.as_ref())),
                json_to_proto: d.json_to_proto.unwrap_or(false),
            })
            .collect(),
        // The template's own setting, else the stages' (Gloo then falls back to Settings).
        escape_characters: t.escape_characters.or(stage_escape).unwrap_or(false),
        span_transformer: t.span_transformer.as_ref().map(|s| tt::SpanTransformer {
            name: Some(inja(s.name.as_ref())),
        }),
    }
}

fn extraction(e: &Extraction) -> pb::Extraction {
    use pb::extraction::{Mode, Source};
    let mode = e.mode.unwrap_or_default();
    pb::Extraction {
        source: match e.source() {
            Ok(Some(ExtractionSourceRef::Header(h))) => Some(Source::Header(h.to_string())),
            Ok(Some(ExtractionSourceRef::Body)) => Some(Source::Body(Empty {})),
            Ok(None) | Err(_) => None,
        },
        regex: e.regex.clone().unwrap_or_default(),
        // REPLACE_ALL has no subgroup (validation refuses one).
        subgroup: match mode {
            ExtractionMode::ReplaceAll => 0,
            _ => e.subgroup.unwrap_or(0),
        },
        // EXTRACT has no replacement text (validation refuses one).
        replacement_text: match mode {
            ExtractionMode::Extract => None,
            _ => e
                .replacement_text
                .clone()
                .map(|value| StringValue { value }),
        },
        mode: match mode {
            ExtractionMode::Extract => Mode::Extract as i32,
            ExtractionMode::SingleReplace => Mode::SingleReplace as i32,
            ExtractionMode::ReplaceAll => Mode::ReplaceAll as i32,
        },
    }
}

// ----- validation --------------------------------------------------------------------------

/// The problems of the transformation options at `path` (e.g. `spec.virtualHost.options`),
/// each naming the field.
pub(crate) fn validate(options: Options<'_>, path: impl std::fmt::Display) -> Vec<String> {
    let mut errors = Vec::new();
    if let Some(t) = options.legacy {
        let at = format!("{path}.transformations");
        for (name, t) in [
            ("requestTransformation", &t.request_transformation),
            ("responseTransformation", &t.response_transformation),
        ] {
            if let Some(t) = t {
                check_transformation(t, &format!("{at}.{name}"), &mut errors);
            }
        }
    }
    if let Some(s) = options.staged {
        let at = format!("{path}.stagedTransformations");
        for (name, rules) in [("early", &s.early), ("regular", &s.regular)] {
            let Some(rules) = rules else { continue };
            let at = format!("{at}.{name}");
            for (i, r) in rules.request_transforms.iter().enumerate() {
                let at = format!("{at}.requestTransforms[{i}]");
                if let Some(m) = &r.matcher {
                    check_matcher(m, &format!("{at}.matcher"), &mut errors);
                }
                for (name, t) in [
                    ("requestTransformation", &r.request_transformation),
                    ("responseTransformation", &r.response_transformation),
                ] {
                    if let Some(t) = t {
                        check_transformation(t, &format!("{at}.{name}"), &mut errors);
                    }
                }
            }
            for (i, r) in rules.response_transforms.iter().enumerate() {
                let at = format!("{at}.responseTransforms[{i}]");
                check_headers(&r.matchers, &format!("{at}.matchers"), &mut errors);
                match &r.response_transformation {
                    Some(t) => check_transformation(
                        t,
                        &format!("{at}.responseTransformation"),
                        &mut errors,
                    ),
                    None => errors.push(format!("{at}.responseTransformation: required")),
                }
            }
        }
    }
    errors
}

/// A regex's number of explicit capture groups, or why it is invalid (as RE2 would refuse it).
fn parse_regex(pattern: &str) -> Result<usize, String> {
    let hir = regex_syntax::Parser::new().parse(pattern).map_err(|e| {
        let e = e.to_string();
        let first = e.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        format!("invalid regex {pattern:?}: {first}")
    })?;
    if crate::resolve::max_repetition(&hir) > 1000 {
        return Err(format!(
            "invalid regex {pattern:?}: repetition counts above 1000 are not allowed (RE2)"
        ));
    }
    Ok(hir.properties().explicit_captures_len())
}

fn check_matcher(m: &Matcher, at: &str, errors: &mut Vec<String>) {
    match m.path() {
        Err(e) => errors.push(format!("{at}: {e}")),
        Ok(Some(PathMatcher::Regex(r))) => {
            if let Err(e) = parse_regex(r) {
                errors.push(format!("{at}.regex: {e}"));
            }
        }
        Ok(_) => {}
    }
    check_headers(&m.headers, &format!("{at}.headers"), errors);
    for (i, q) in m.query_parameters.iter().enumerate() {
        if q.regex {
            if let Err(e) = parse_regex(&q.value) {
                errors.push(format!("{at}.queryParameters[{i}].value: {e}"));
            }
        }
    }
    if !m.methods.is_empty() {
        if let Err(e) = parse_regex(&m.methods.join("|")) {
            errors.push(format!("{at}.methods: {e}"));
        }
    }
}

fn check_headers(headers: &[HeaderMatcher], at: &str, errors: &mut Vec<String>) {
    for (i, h) in headers.iter().enumerate() {
        if !valid_header_name(&h.name) {
            errors.push(format!("{at}[{i}].name: invalid header name {:?}", h.name));
        }
        if h.regex {
            if let Err(e) = parse_regex(&h.value) {
                errors.push(format!("{at}[{i}].value: {e}"));
            }
        }
    }
}

/// An HTTP header name (RFC 9110 token, lowercase as HTTP/2 requires) or one of the
/// pseudo-headers a transformation can read and set.
fn valid_header_name(name: &str) -> bool {
    const PSEUDO: &[&str] = &[":path", ":method", ":authority", ":scheme", ":status"];
    if PSEUDO.contains(&name) {
        return true;
    }
    !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
        })
}

fn check_transformation(t: &Transformation, at: &str, errors: &mut Vec<String>) {
    match t.transformation_type() {
        Err(e) => errors.push(format!("{at}: {e}")),
        Ok(None) => errors.push(format!(
            "{at}: no transformation type: set transformationTemplate or headerBodyTransform"
        )),
        Ok(Some(TransformationTypeRef::HeaderBody(_))) => {}
        Ok(Some(TransformationTypeRef::Template(tt))) => {
            check_template(tt, &format!("{at}.transformationTemplate"), errors)
        }
    }
}

fn check_template(t: &TransformationTemplate, at: &str, errors: &mut Vec<String>) {
    for (name, e) in &t.extractors {
        check_extraction(e, &format!("{at}.extractors[{name:?}]"), errors);
    }
    for name in t.headers.keys() {
        if !valid_header_name(name) {
            errors.push(format!("{at}.headers: invalid header name {name:?}"));
        }
    }
    for (i, h) in t.headers_to_append.iter().enumerate() {
        match h.key.as_deref() {
            None | Some("") => errors.push(format!("{at}.headersToAppend[{i}].key: required")),
            Some(k) if !valid_header_name(k) => errors.push(format!(
                "{at}.headersToAppend[{i}].key: invalid header name {k:?}"
            )),
            Some(_) => {}
        }
    }
    for (i, name) in t.headers_to_remove.iter().enumerate() {
        if !valid_header_name(name) {
            errors.push(format!(
                "{at}.headersToRemove[{i}]: invalid header name {name:?}"
            ));
        }
    }
    for (i, d) in t.dynamic_metadata_values.iter().enumerate() {
        if d.key.as_deref().is_none_or(str::is_empty) {
            errors.push(format!("{at}.dynamicMetadataValues[{i}].key: required"));
        }
    }
    match t.body_transformation() {
        Err(e) => errors.push(format!("{at}: {e}")),
        Ok(Some(BodyTransformationRef::MergeJsonKeys(m))) => {
            // Gloo's `translateTransformationTemplate` errors.
            if t.advanced_templates == Some(true) {
                errors.push(format!(
                    "{at}.mergeJsonKeys: merge_json_keys is not supported with advanced templates"
                ));
            }
            if t.parse_body_behavior.unwrap_or_default() != RequestBodyParse::ParseAsJson {
                errors.push(format!(
                    "{at}.mergeJsonKeys: merge_json_keys is only supported with parse_body_behavior set to PARSE_AS_JSON"
                ));
            }
            for key in m.json_keys.keys() {
                if key.contains('.') {
                    errors.push(format!(
                        "{at}.mergeJsonKeys.jsonKeys[{key:?}]: merge_json_keys key {key} contains a period, which is not currently supported"
                    ));
                }
            }
        }
        Ok(_) => {}
    }
}

fn check_extraction(e: &Extraction, at: &str, errors: &mut Vec<String>) {
    match e.source() {
        Err(err) => errors.push(format!("{at}: {err}")),
        Ok(None) => errors.push(format!("{at}: no source: set header or body")),
        Ok(Some(ExtractionSourceRef::Header(h))) if !valid_header_name(h) => {
            errors.push(format!("{at}.header: invalid header name {h:?}"))
        }
        Ok(Some(_)) => {}
    }
    let groups = match e.regex.as_deref() {
        None => {
            errors.push(format!("{at}.regex: required"));
            None
        }
        Some(r) => match parse_regex(r) {
            Ok(groups) => Some(groups),
            Err(err) => {
                errors.push(format!("{at}.regex: {err}"));
                None
            }
        },
    };
    let mode = e.mode.unwrap_or_default();
    let subgroup = e.subgroup.unwrap_or(0);
    // Gloo's `translateExtractor` errors.
    match mode {
        ExtractionMode::Extract => {
            if e.replacement_text.as_deref().is_some_and(|t| !t.is_empty()) {
                errors.push(format!(
                    "{at}.replacementText: replacement text should not be set in mode EXTRACT"
                ));
            }
        }
        ExtractionMode::SingleReplace => {
            if e.replacement_text.is_none() {
                errors.push(format!(
                    "{at}.replacementText: replacement text must be set in mode SINGLE_REPLACE"
                ));
            }
        }
        ExtractionMode::ReplaceAll => {
            if subgroup != 0 {
                errors.push(format!(
                    "{at}.subgroup: subgroup should not be set in mode REPLACE_ALL"
                ));
            }
            if e.replacement_text.is_none() {
                errors.push(format!(
                    "{at}.replacementText: replacement text must be set in mode REPLACE_ALL"
                ));
            }
        }
    }
    if let Some(groups) = groups {
        if mode != ExtractionMode::ReplaceAll && subgroup as usize > groups {
            errors.push(format!(
                "{at}.subgroup: {subgroup} is beyond the regex's {groups} capturing group(s)"
            ));
        }
    }
}
