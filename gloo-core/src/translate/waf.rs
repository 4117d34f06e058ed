//! The web application firewall as Gloo Enterprise's `waf` plugin emits it
//! (solo-projects `projects/gloo/pkg/plugins/waf/plugin.go`): envoy-gloo's ModSecurity filter
//! `io.solo.filters.http.modsecurity` in the connection manager, and a `ModSecurityPerRoute`
//! on every virtual host and route that sets `options.waf`.
//!
//! * The filter's `ModSecurity` config holds the HTTP gateway's own `options.waf`. A gateway
//!   without rules (no `ruleSets`, `coreRuleSet` or `configMapRuleSets`) gets
//!   `disabled: true`, as in Gloo.
//! * A virtual host or route with `options.waf` gets a `ModSecurityPerRoute` with its
//!   `disabled`, `customInterventionMessage`, `auditLogging`, `requestHeadersOnly` and
//!   `responseHeadersOnly`. Its rule sets are Gloo's `getRuleSets`: the `ruleSets`, then, for
//!   a `coreRuleSet`, a rule set of its settings (`customSettingsString` as `rule_str`, or
//!   `customSettingsFile` as a file) and a rule set of the CRS rules directory
//!   ([`CRS_RULES_DIR`], Debian's `modsecurity-crs`, where Gloo's Envoy image has its own),
//!   then one `rule_str` rule set per entry of each `configMapRuleSets` ConfigMap (or Gloo
//!   Artifact): the values of its `dataMapKeys` in their order, or, without `dataMapKeys`,
//!   of all its `data` keys in sorted order (Gloo's `translateConfigMapToRuleSets`).
//!   The most specific config wins: route, else virtual host, else the gateway. It replaces
//!   the less specific ones whole, so a route must set `disabled: true` to turn off its virtual
//!   host's WAF (`disabled` is never inherited, as Gloo documents).
//! * Stage: Gloo's `WafStage`, after fault injection and CORS, before the local rate limit
//!   and every auth filter.
//!
//! **Never served unprotected.** Stock Envoy has no such filter. Unlike envoy-gloo's
//! transformation filter, this filter and its per-route configs are *not* marked optional. A
//! stock Envoy (or a gloo-proxy built without its `waf` feature) therefore refuses the
//! listener or route configuration that needs the WAF, and keeps serving its previous
//! configuration, rather than serving WAF-protected routes without it. Use gloo-proxy with
//! the `waf` feature, or put gloo-filters' ext_proc WAF service behind a stock Envoy's
//! `ext_proc` filter.
//!
//! Differences from Gloo:
//!
//! * Settings with no rules of their own (a route that only sets `requestHeadersOnly` or a
//!   message, say) take the rules of the next less specific settings that have some: a route
//!   takes its virtual host's (here), a virtual host the gateway's (gloo-proxy reads them
//!   from the filter's config). Gloo passes them on empty, which would leave that route
//!   uninspected. Only `disabled: true` turns the WAF off.
//! * The filter is emitted only on listeners where some WAF settings have rules and are not
//!   disabled (Gloo, without `removeUnusedFilters`, puts a disabled filter on every listener,
//!   which a stock Envoy would refuse). Per-route configs are emitted only in virtual hosts
//!   where the WAF is in force (at the gateway, the virtual host or one of its routes),
//!   because elsewhere they change nothing.
//! * A `configMapRuleSets` entry whose ConfigMap is missing, whose reference has no namespace,
//!   or that names a `dataMapKeys` key the ConfigMap lacks is an error on the resource that
//!   sets it (checked on every translation, as ConfigMaps change on their own): Gloo logs a
//!   warning and serves without those rules (without any of the ConfigMaps' rules, for a
//!   missing ConfigMap). When a rejected resource's last accepted version serves and its
//!   ConfigMap rules are gone, its WAF denies every request (503) rather than letting them
//!   through uninspected.
//! * A gateway's WAF with only `configMapRuleSets` enforces them (Gloo's filter config counts
//!   only `ruleSets` and `coreRuleSet`, and disables such a WAF).

use std::sync::Arc;

use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_filter, HttpFilter,
};
use envoy_types::pb::google::protobuf::Any;

use crate::model::artifact::ArtifactSpec;
use crate::model::gateway::HttpGateway;
use crate::model::waf::{AuditLogAction, AuditLogLocation, AuditLogging, Settings};
use crate::model::{Object, ResourceRef};
use crate::resolve::VirtualHostModel;
use crate::snapshot::ConfigSnapshot;
use crate::xds::pack;
use crate::xds::waf as pb;

/// envoy-gloo's ModSecurity filter name.
pub const WAF_FILTER: &str = "io.solo.filters.http.modsecurity";

/// The OWASP Core Rule Set rules `coreRuleSet` includes: Debian's `modsecurity-crs` package.
pub const CRS_RULES_DIR: &str = "/usr/share/modsecurity-crs/rules";

/// Whether `settings` put rules in force (not disabled, with rule sets or the CRS).
fn enforces(settings: &Settings) -> bool {
    !settings.is_disabled() && has_rules(settings)
}

fn has_rules(settings: &Settings) -> bool {
    settings.core_rule_set.is_some()
        || !settings.rule_sets.is_empty()
        || !settings.config_map_rule_sets.is_empty()
}

/// The HTTP gateway's own WAF settings.
pub(crate) fn gateway_settings(http: Option<&HttpGateway>) -> Option<&Settings> {
    http?.options.as_ref()?.waf.as_ref()
}

/// Whether the gateway's WAF is in force: part of the virtual host cache key of hosts with WAF
/// settings (their per-route configs are emitted only where the WAF is in force).
pub(crate) fn gateway_enforces(http: Option<&HttpGateway>) -> bool {
    gateway_settings(http).is_some_and(enforces)
}

/// Whether `host` (or one of its routes) sets `options.waf` at all.
pub(crate) fn host_uses(host: &VirtualHostModel) -> bool {
    host.options.waf.is_some() || host.routes.iter().any(|r| r.options.waf.is_some())
}

/// Whether the WAF is in force in `host` (on it or one of its routes).
fn host_enforces(host: &VirtualHostModel) -> bool {
    host.options.waf.as_deref().is_some_and(enforces)
        || host
            .routes
            .iter()
            .any(|r| r.options.waf.as_deref().is_some_and(enforces))
}

/// Gloo's `getRuleSets`: the rule sets, then the core rule set's settings and rules, then the
/// rules of the ConfigMaps. ConfigMap rules that cannot be read (checked, so only a rejected
/// resource's last accepted version meets them) are replaced by one rule set denying
/// everything: never served uninspected.
fn rule_sets(snapshot: &ConfigSnapshot, settings: &Settings) -> Vec<pb::RuleSet> {
    let mut out: Vec<pb::RuleSet> = settings
        .rule_sets
        .iter()
        .map(|r| pb::RuleSet {
            rule_str: r.rule_str.clone().unwrap_or_default(),
            files: r.files.clone(),
            directory: r.directory.clone().unwrap_or_default(),
        })
        .collect();
    if let Some(crs) = &settings.core_rule_set {
        out.push(pb::RuleSet {
            rule_str: crs.custom_settings_string.clone().unwrap_or_default(),
            files: crs.custom_settings_file.iter().cloned().collect(),
            directory: String::new(),
        });
        out.push(pb::RuleSet {
            directory: CRS_RULES_DIR.to_string(),
            ..Default::default()
        });
    }
    match config_map_rules(snapshot, settings, "") {
        Ok(rules) => out.extend(rules.into_iter().map(|rule_str| pb::RuleSet {
            rule_str,
            ..Default::default()
        })),
        Err(_) => {
            return vec![pb::RuleSet {
                rule_str: DENY_ALL.to_string(),
                ..Default::default()
            }]
        }
    }
    out
}

/// The Artifacts (ConfigMaps) some WAF `settings` read, each with its object in `snapshot`
/// (`None` when missing): what a translation of those settings depends on besides them.
pub(crate) type ArtifactsRead = Vec<(ResourceRef, Option<Arc<Object<ArtifactSpec>>>)>;

/// The [`ArtifactsRead`] of `settings`.
pub(crate) fn artifacts_read<'a>(
    snapshot: &ConfigSnapshot,
    settings: impl IntoIterator<Item = &'a Settings>,
) -> ArtifactsRead {
    settings
        .into_iter()
        .flat_map(|s| &s.config_map_rule_sets)
        .filter_map(|set| {
            set.config_map_ref
                .as_ref()?
                .with_required_namespace("")
                .ok()
        })
        .map(|reference| {
            let object = snapshot.artifacts.get(&reference).map(|e| e.object.clone());
            (reference, object)
        })
        .collect()
}

/// The [`ArtifactsRead`] of a virtual host's and its routes' WAF settings.
pub(crate) fn host_artifacts(snapshot: &ConfigSnapshot, host: &VirtualHostModel) -> ArtifactsRead {
    artifacts_read(
        snapshot,
        host.options
            .waf
            .as_deref()
            .into_iter()
            .chain(host.routes.iter().filter_map(|r| r.options.waf.as_deref())),
    )
}

/// Whether two [`ArtifactsRead`] name the same Artifacts, each the same object (or missing).
pub(crate) fn same_artifacts(a: &ArtifactsRead, b: &ArtifactsRead) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ra, a), (rb, b))| ra == rb && same_artifact(a.as_ref(), b.as_ref()))
}

/// Whether the Artifacts `read` are still what `snapshot` holds.
pub(crate) fn artifacts_unchanged(snapshot: &ConfigSnapshot, read: &ArtifactsRead) -> bool {
    read.iter().all(|(reference, then)| {
        same_artifact(
            then.as_ref(),
            snapshot.artifacts.get(reference).map(|e| &e.object),
        )
    })
}

/// Whether two lookups of an Artifact found the same object, or both found none.
fn same_artifact(
    a: Option<&Arc<Object<ArtifactSpec>>>,
    b: Option<&Arc<Object<ArtifactSpec>>>,
) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
        _ => false,
    }
}

/// The rule set of WAF settings whose ConfigMap rules are gone (see [`rule_sets`]).
const DENY_ALL: &str = "SecRuleEngine On\nSecAction \"id:99990,phase:1,deny,status:503,log,msg:'gloo: the WAF rules of a ConfigMap are missing'\"\n";

/// The rules of `settings`' `configMapRuleSets`, in Gloo's order, or every problem (each under
/// `path`, the path of the options).
fn config_map_rules(
    snapshot: &ConfigSnapshot,
    settings: &Settings,
    path: impl std::fmt::Display,
) -> Result<Vec<String>, Vec<String>> {
    let mut rules = Vec::new();
    let mut problems = Vec::new();
    for (i, set) in settings.config_map_rule_sets.iter().enumerate() {
        let at = format_args!("{path}.waf.configMapRuleSets[{i}]");
        let Some(reference) = &set.config_map_ref else {
            problems.push(format!("{at}.configMapRef: required"));
            continue;
        };
        let (found, artifact) = match snapshot.artifact(reference) {
            Ok(found) => found,
            Err(e) => {
                problems.push(format!("{at}.configMapRef: {e}"));
                continue;
            }
        };
        // A rule ModSecurity could not be handed (C strings end at NUL).
        let nul = |key: &str, rule: &str, at: &dyn std::fmt::Display| {
            rule.contains('\0')
                .then(|| format!("{at}: ConfigMap {found}: {key:?} contains a NUL byte"))
        };
        if set.data_map_keys.is_empty() {
            // Gloo sorts the keys "to maintain order"; a BTreeMap is sorted.
            for (key, rule) in &artifact.data {
                problems.extend(nul(key, rule, &format_args!("{at}.configMapRef")));
                rules.push(rule.clone());
            }
            continue;
        }
        for (j, key) in set.data_map_keys.iter().enumerate() {
            let at = format_args!("{at}.dataMapKeys[{j}]");
            match artifact.data.get(key) {
                Some(rule) => {
                    problems.extend(nul(key, rule, &at));
                    rules.push(rule.clone());
                }
                None => problems.push(format!(
                    "{at}: {}",
                    artifact.missing_key(key, &format!("ConfigMap {found}"))
                )),
            }
        }
    }
    if problems.is_empty() {
        Ok(rules)
    } else {
        Err(problems)
    }
}

fn audit_logging(audit: Option<&AuditLogging>) -> Option<pb::AuditLogging> {
    use pb::audit_logging::{AuditLogAction as A, AuditLogLocation as L};
    let audit = audit?;
    Some(pb::AuditLogging {
        action: match audit.action.unwrap_or_default() {
            AuditLogAction::Never => A::Never,
            AuditLogAction::RelevantOnly => A::RelevantOnly,
            AuditLogAction::Always => A::Always,
        } as i32,
        location: match audit.location.unwrap_or_default() {
            AuditLogLocation::FilterState => L::FilterState,
            AuditLogLocation::DynamicMetadata => L::DynamicMetadata,
        } as i32,
    })
}

/// The connection manager's WAF filter, when the WAF is in force on the listener: at the
/// gateway, or in one of its virtual hosts. Not optional (see the module docs).
pub(crate) fn http_filter(
    snapshot: &ConfigSnapshot,
    http: Option<&HttpGateway>,
    hosts: &[Arc<VirtualHostModel>],
) -> Option<HttpFilter> {
    let gateway = gateway_settings(http);
    if !gateway.is_some_and(enforces) && !hosts.iter().any(|h| host_enforces(h)) {
        return None;
    }
    let config = match gateway.filter(|s| has_rules(s)) {
        Some(s) => pb::ModSecurity {
            disabled: s.is_disabled(),
            rule_sets: rule_sets(snapshot, s),
            custom_intervention_message: s.custom_intervention_message.clone().unwrap_or_default(),
            audit_logging: audit_logging(s.audit_logging.as_ref()),
            request_headers_only: s.request_headers_only.unwrap_or(false),
            response_headers_only: s.response_headers_only.unwrap_or(false),
            regression_logs: false,
        },
        None => pb::ModSecurity {
            disabled: true,
            ..Default::default()
        },
    };
    Some(HttpFilter {
        name: WAF_FILTER.to_string(),
        config_type: Some(http_filter::ConfigType::TypedConfig(pack(&config))),
        // A stock Envoy must refuse WAF-protected routes, never serve them unprotected.
        is_optional: false,
        ..Default::default()
    })
}

/// The `typed_per_filter_config` entry of a virtual host or route with these settings; without
/// rules of their own, they take `inherited`'s.
fn per_filter_config(
    snapshot: &ConfigSnapshot,
    settings: &Settings,
    inherited: Option<&Settings>,
) -> (String, Any) {
    let rules = match inherited {
        Some(parent) if !has_rules(settings) && !settings.is_disabled() => {
            rule_sets(snapshot, parent)
        }
        _ => rule_sets(snapshot, settings),
    };
    let config = pb::ModSecurityPerRoute {
        disabled: settings.is_disabled(),
        rule_sets: rules,
        custom_intervention_message: settings
            .custom_intervention_message
            .clone()
            .unwrap_or_default(),
        audit_logging: audit_logging(settings.audit_logging.as_ref()),
        request_headers_only: settings.request_headers_only.unwrap_or(false),
        response_headers_only: settings.response_headers_only.unwrap_or(false),
    };
    (WAF_FILTER.to_string(), pack(&config))
}

/// Where a virtual host's WAF configs go, given whether the gateway's WAF is in force: the
/// host's own entry, if the WAF is in force here, and each route's through
/// [`WafScope::route`].
#[derive(Clone, Copy)]
pub(crate) struct WafScope<'a> {
    snapshot: &'a ConfigSnapshot,
    in_force: bool,
    /// The virtual host's settings, if they have rules (routes without rules take them).
    host_rules: Option<&'a Settings>,
}

impl<'a> WafScope<'a> {
    /// The scope of `host` on a listener whose gateway WAF is `gateway_in_force`.
    pub(crate) fn of(
        snapshot: &'a ConfigSnapshot,
        host: &'a VirtualHostModel,
        gateway_in_force: bool,
    ) -> Self {
        Self {
            snapshot,
            in_force: host_uses(host) && (gateway_in_force || host_enforces(host)),
            host_rules: host.options.waf.as_deref().filter(|s| has_rules(s)),
        }
    }

    /// The virtual host's entry (without rules of its own, the data plane takes the
    /// gateway's).
    pub(crate) fn host(self, host: &VirtualHostModel) -> Option<(String, Any)> {
        host.options
            .waf
            .as_deref()
            .filter(|_| self.in_force)
            .map(|s| per_filter_config(self.snapshot, s, None))
    }

    /// A route's entry: without rules of its own, it takes the virtual host's.
    pub(crate) fn route(self, settings: Option<&Settings>) -> Option<(String, Any)> {
        settings
            .filter(|_| self.in_force)
            .map(|s| per_filter_config(self.snapshot, s, self.host_rules))
    }
}

/// What gloo-core can check of WAF settings at `path` (`<...>.options`) on their own: the core
/// rule set's oneof, and rules that cannot reach ModSecurity (NUL bytes, empty file names).
/// Rule syntax is ModSecurity's to check: the data plane refuses a rule set ModSecurity
/// rejects. The ConfigMaps of `configMapRuleSets` are checked by [`check`], on every run.
pub(crate) fn validate(settings: Option<&Settings>, path: impl std::fmt::Display) -> Vec<String> {
    let Some(s) = settings else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    if let Some(crs) = &s.core_rule_set {
        if crs.custom_settings_string.is_some() && crs.custom_settings_file.is_some() {
            problems.push(format!(
                "{path}.waf.coreRuleSet: only one of customSettingsString, customSettingsFile may be set, found both"
            ));
        }
        if crs
            .custom_settings_string
            .as_deref()
            .is_some_and(|t| t.contains('\0'))
        {
            problems.push(format!(
                "{path}.waf.coreRuleSet.customSettingsString: contains a NUL byte"
            ));
        }
        if crs.custom_settings_file.as_deref().is_some_and(bad_path) {
            problems.push(format!(
                "{path}.waf.coreRuleSet.customSettingsFile: must name a file"
            ));
        }
    }
    for (i, r) in s.rule_sets.iter().enumerate() {
        if r.rule_str.as_deref().is_some_and(|t| t.contains('\0')) {
            problems.push(format!(
                "{path}.waf.ruleSets[{i}].ruleStr: contains a NUL byte"
            ));
        }
        for (j, f) in r.files.iter().enumerate() {
            if bad_path(f) {
                problems.push(format!(
                    "{path}.waf.ruleSets[{i}].files[{j}]: must name a file"
                ));
            }
        }
        if r.directory.as_deref().is_some_and(|d| d.contains('\0')) {
            problems.push(format!(
                "{path}.waf.ruleSets[{i}].directory: contains a NUL byte"
            ));
        }
    }
    problems
}

/// The problems of `settings`' `configMapRuleSets` (a missing ConfigMap or data key), under
/// `path` (`<...>.options`): checked on every run, as ConfigMaps change on their own.
pub(crate) fn check(
    snapshot: &ConfigSnapshot,
    settings: Option<&Settings>,
    path: impl std::fmt::Display,
) -> Vec<String> {
    match settings {
        Some(s) if !s.config_map_rule_sets.is_empty() => config_map_rules(snapshot, s, path)
            .err()
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// [`validate`] and [`check`]: everything wrong with WAF settings at `path`.
pub(crate) fn problems(
    snapshot: &ConfigSnapshot,
    settings: Option<&Settings>,
    path: impl std::fmt::Display,
) -> Vec<String> {
    let mut problems = validate(settings, &path);
    problems.extend(check(snapshot, settings, &path));
    problems
}

/// [`check`] for routes (of a VirtualService or RouteTable) under `path`.
pub(crate) fn check_routes(
    snapshot: &ConfigSnapshot,
    routes: &[crate::model::routing::Route],
    path: &str,
) -> Vec<String> {
    super::check_route_options(routes, path, |options, path| {
        check(snapshot, options.waf.as_deref(), path)
    })
}

/// [`check`] for a VirtualService's virtual host and routes.
pub(crate) fn check_virtual_service(
    snapshot: &ConfigSnapshot,
    spec: &crate::model::virtual_service::VirtualServiceSpec,
) -> Vec<String> {
    super::check_virtual_service_options(
        spec,
        |options, path| check(snapshot, options.waf.as_deref(), path),
        |options, path| check(snapshot, options.waf.as_deref(), path),
    )
}

fn bad_path(path: &str) -> bool {
    path.trim().is_empty() || path.contains('\0')
}
