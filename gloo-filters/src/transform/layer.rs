//! The [`TransformationLayer`] and the compiled config it holds.

use std::sync::Arc;

use tower::Layer;

use super::config::Transformations;
use super::error::ConfigError;
use super::head::Head;
use super::matcher::{CompiledResponseMatcher, CompiledRouteMatch};
use super::service::Transform;
use super::transformer::Transformer;

/// envoy-gloo buffers up to the connection's buffer limit, Envoy's default
/// `per_connection_buffer_limit_bytes` of 1 MiB.
pub(crate) const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Debug)]
pub(crate) struct Rule {
    matcher: Option<CompiledRouteMatch>,
    pub(crate) request: Option<Transformer>,
    pub(crate) response: Option<Transformer>,
    pub(crate) clear_route_cache: bool,
}

#[derive(Debug)]
pub(crate) struct ResponseRule {
    matcher: Option<CompiledResponseMatcher>,
    pub(crate) transformer: Transformer,
}

/// A validated [`Transformations`], shared by all services of a layer.
#[derive(Debug)]
pub(crate) struct Compiled {
    rules: Vec<Rule>,
    response_rules: Vec<ResponseRule>,
}

/// Which response transformation applies to a response.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ResponseChoice {
    Rule(usize),
    ResponseRule(usize),
}

impl Compiled {
    fn compile(config: &Transformations) -> Result<Self, ConfigError> {
        let mut rules = Vec::new();
        for (i, rule) in config.request_transforms.iter().enumerate() {
            let field = format!("request_transforms[{i}]");
            let compile = |t: &Option<_>, name: &str| {
                t.as_ref()
                    .map(Transformer::compile)
                    .transpose()
                    .map_err(|e: ConfigError| e.within(name).within(&field))
            };
            let request = compile(&rule.request_transformation, "request_transformation")?;
            let response = compile(&rule.response_transformation, "response_transformation")?;
            let matcher = rule
                .matcher
                .as_ref()
                .map(CompiledRouteMatch::compile)
                .transpose()
                .map_err(|e| e.within("matcher").within(&field))?;
            // envoy-gloo keeps only rules that transform something.
            if request.is_some() || response.is_some() {
                rules.push(Rule {
                    matcher,
                    request,
                    response,
                    clear_route_cache: rule.clear_route_cache,
                });
            }
        }
        let mut response_rules = Vec::new();
        for (i, rule) in config.response_transforms.iter().enumerate() {
            let field = format!("response_transforms[{i}]");
            response_rules.push(ResponseRule {
                matcher: rule
                    .matcher
                    .as_ref()
                    .map(CompiledResponseMatcher::compile)
                    .transpose()
                    .map_err(|e| e.within("matcher").within(&field))?,
                transformer: Transformer::compile(&rule.response_transformation)
                    .map_err(|e| e.within("response_transformation").within(&field))?,
            });
        }
        Ok(Self {
            rules,
            response_rules,
        })
    }

    /// The first rule matching the request.
    pub(crate) fn match_request(&self, head: &Head) -> Option<usize> {
        self.rules
            .iter()
            .position(|r| r.matcher.as_ref().is_none_or(|m| m.matches(head)))
    }

    pub(crate) fn rule(&self, i: usize) -> Option<&Rule> {
        self.rules.get(i)
    }

    /// Whether a response may be transformed after `rule` matched the request.
    pub(crate) fn may_transform_response(&self, rule: Option<usize>) -> bool {
        !self.response_rules.is_empty()
            || rule
                .and_then(|i| self.rules.get(i))
                .is_some_and(|r| r.response.is_some())
    }

    /// The matched rule's response transformation, else the first matching response rule.
    pub(crate) fn match_response(
        &self,
        rule: Option<usize>,
        head: &Head,
        details: Option<&str>,
    ) -> Option<ResponseChoice> {
        if let Some(i) = rule.filter(|&i| self.rules.get(i).is_some_and(|r| r.response.is_some())) {
            return Some(ResponseChoice::Rule(i));
        }
        self.response_rules
            .iter()
            .position(|r| r.matcher.as_ref().is_none_or(|m| m.matches(head, details)))
            .map(ResponseChoice::ResponseRule)
    }

    pub(crate) fn response_transformer(&self, choice: ResponseChoice) -> Option<&Transformer> {
        match choice {
            ResponseChoice::Rule(i) => self.rules.get(i)?.response.as_ref(),
            ResponseChoice::ResponseRule(i) => Some(&self.response_rules.get(i)?.transformer),
        }
    }
}

/// Applies [`Transform`] to services: envoy-gloo's transformation filter
/// (`io.solo.transformation`) with one stage's [`Transformations`].
///
/// Building the layer compiles and validates everything (regexes, templates, header names);
/// the layer then holds the compiled config behind an `Arc`, so clones are cheap.
///
/// ```
/// use gloo_filters::transform::{TransformationLayer, TransformationTemplate, RequestMatch, Transformations};
///
/// let bad = Transformations::new().request_transform(
///     RequestMatch::new().request_transformation(
///         TransformationTemplate::new().header("x-foo", "{{ header(\"x-a\") "),
///     ),
/// );
/// let err = TransformationLayer::new(bad).unwrap_err();
/// assert_eq!(
///     err.field(),
///     "request_transforms[0].request_transformation.transformation_template.headers[\"x-foo\"].text"
/// );
/// assert!(err.message().starts_with("template error at line 1:"), "{err}");
/// ```
#[derive(Clone, Debug)]
pub struct TransformationLayer {
    compiled: Arc<Compiled>,
    max_body_bytes: usize,
}

impl TransformationLayer {
    /// Compiles `transformations`; the error names the first invalid field.
    pub fn new(transformations: impl Into<Transformations>) -> Result<Self, ConfigError> {
        Ok(Self {
            compiled: Arc::new(Compiled::compile(&transformations.into())?),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        })
    }

    /// The most body bytes buffered for a transformation that needs the body (default 1 MiB,
    /// Envoy's default connection buffer limit). A larger request is answered
    /// `413 payload too large`; a larger response becomes one, as in envoy-gloo.
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }
}

impl TransformationLayer {
    /// The context of one exchange whose request head is `parts` (for the ext_proc server,
    /// which runs the layer's steps without a tower service).
    #[cfg(feature = "extproc-transform")]
    pub(crate) fn exchange(&self, parts: &mut http::request::Parts) -> super::service::Ctx {
        super::service::Ctx::new(self.compiled.clone(), self.max_body_bytes, parts)
    }
}

impl<S> Layer<S> for TransformationLayer {
    type Service = Transform<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Transform::from_parts(inner, self.compiled.clone(), self.max_body_bytes)
    }
}
