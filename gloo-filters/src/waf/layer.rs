//! The [`WafLayer`].

use std::sync::Arc;

use bytes::Bytes;
use tower::Layer;

use super::config::{AuditLogAction, WafRules};
use super::exchange::Settings;
use super::service::Waf;

/// Envoy's default connection buffer limit (`per_connection_buffer_limit_bytes`, 1 MiB): what
/// envoy-gloo's filter can buffer of a body.
pub(crate) const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Applies [`Waf`] to services: ModSecurity with the given [`WafRules`], as envoy-gloo's
/// `io.solo.filters.http.modsecurity` filter runs it for Gloo's `options.waf`.
///
/// The layer holds the compiled rules behind an `Arc`: clones (and every service it builds)
/// share them.
///
/// ```
/// use gloo_filters::waf::{AuditLogAction, RuleSet, WafLayer, WafRules};
///
/// let rules = WafRules::compile([RuleSet::rules("SecRuleEngine On")])?;
/// let layer = WafLayer::new(rules)
///     .custom_intervention_message("blocked")
///     .audit_log(AuditLogAction::RelevantOnly)
///     .max_body_bytes(64 * 1024);
/// # let _ = layer;
/// # Ok::<(), gloo_filters::waf::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct WafLayer {
    settings: Arc<Settings>,
}

impl WafLayer {
    /// A layer evaluating `rules`: the request headers and body, then the response headers
    /// and body; interventions answer with the rule's status and
    /// [`DEFAULT_INTERVENTION_MESSAGE`](super::DEFAULT_INTERVENTION_MESSAGE).
    pub fn new(rules: WafRules) -> Self {
        // The evaluation threads start now, where the config is built, not on a worker with
        // the first request waiting.
        let _ = super::blocking::evaluators();
        Self {
            settings: Arc::new(Settings::new(rules)),
        }
    }

    /// The settings every exchange of this layer runs with.
    #[cfg_attr(not(feature = "extproc-waf"), allow(dead_code))]
    pub(crate) fn settings(&self) -> &Arc<Settings> {
        &self.settings
    }

    fn with(mut self, f: impl FnOnce(&mut Settings)) -> Self {
        let settings = Arc::make_mut(&mut self.settings);
        f(settings);
        self
    }

    /// The body of an intervention's answer (`custom_intervention_message`).
    pub fn custom_intervention_message(self, message: impl Into<String>) -> Self {
        let message = Bytes::from(message.into());
        self.with(|s| s.message = message)
    }

    /// When to make an audit log (`audit_logging.action`; never by default).
    pub fn audit_log(self, action: AuditLogAction) -> Self {
        self.with(|s| s.audit = action)
    }

    /// Inspect the request's headers only (`request_headers_only`): phases 1 and 2 run when
    /// the headers arrive, and the body streams through uninspected.
    pub fn request_headers_only(self, yes: bool) -> Self {
        self.with(|s| s.request_headers_only = yes)
    }

    /// Inspect the response's headers only (`response_headers_only`): the body streams
    /// through uninspected.
    pub fn response_headers_only(self, yes: bool) -> Self {
        self.with(|s| s.response_headers_only = yes)
    }

    /// The most body bytes buffered for inspection (default 1 MiB, Envoy's buffer limit). A
    /// larger request is answered `413 Payload Too Large`, as Envoy answers a request that
    /// overflows a buffering filter; of a larger response the first bytes are inspected and
    /// the rest streams through (ModSecurity's `ProcessPartial`).
    pub fn max_body_bytes(self, limit: usize) -> Self {
        self.with(|s| s.max_body_bytes = limit)
    }
}

impl<S> Layer<S> for WafLayer {
    type Service = Waf<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Waf::from_parts(inner, self.settings.clone())
    }
}
