//! envoy-gloo's ModSecurity filter (`io.solo.filters.http.modsecurity`), served by
//! gloo-filters' [`WafLayer`]: Gloo's `options.waf` as gloo-core translates it. The connection
//! manager's `ModSecurity` config holds the gateway's rules, and a `ModSecurityPerRoute` on a
//! virtual host or route replaces them for its requests. Enabled by the `waf` feature, which
//! is off by default because it links the system libmodsecurity.
//!
//! The most specific config wins, whole: the route's, else its virtual host's, else the
//! filter's own, except that a per-route config without rule sets takes the filter's (see
//! gloo-core's `translate::waf`: only `disabled` turns the WAF off). A config that is
//! disabled, or that ends up with no rule sets, inspects nothing. The
//! rule sets are compiled by ModSecurity once per distinct list: routes and listeners with
//! the same rules share one compiled set, and it is kept only while some route uses it.
//! Rules ModSecurity refuses are refused with its message, naming the rule set
//! (`rule_sets[1].rule_str: Rules error. ...`), so the configuration in force keeps serving.
//! `regression_logs` is refused. Audit logs (both locations) are put in the response's
//! extensions and logged at the `gloo_filters::waf::audit` target.
//!
//! Without this feature, a listener whose connection manager lists the filter is refused
//! (the filter is not optional). So gloo-proxy never serves a WAF-protected route without its
//! WAF.
//!
//! ```
//! use envoy_types::pb::google::protobuf::Any;
//! use gloo_core::xds::waf::{ModSecurity, ModSecurityPerRoute, RuleSet};
//! use gloo_proxy::filter::FilterRegistry;
//! use gloo_proxy::waf::{MODSECURITY_PER_ROUTE_TYPE, MODSECURITY_TYPE, WAF};
//! use prost::Message;
//!
//! let registry = FilterRegistry::with_builtins();
//! let factory = registry.get(WAF).expect("registered with the builtins");
//! let listener = Any {
//!     type_url: MODSECURITY_TYPE.into(),
//!     value: ModSecurity { disabled: true, ..Default::default() }.encode_to_vec(),
//! };
//! // The listener's own config is disabled: requests without a route config are not inspected.
//! assert!(factory.layer(&listener, None).unwrap().is_none());
//! let route = |rules: &str| Any {
//!     type_url: MODSECURITY_PER_ROUTE_TYPE.into(),
//!     value: ModSecurityPerRoute {
//!         rule_sets: vec![RuleSet { rule_str: rules.into(), ..Default::default() }],
//!         ..Default::default()
//!     }
//!     .encode_to_vec(),
//! };
//! assert!(factory.layer(&listener, Some(&route("SecRuleEngine On"))).unwrap().is_some());
//! // Rules ModSecurity refuses are refused, naming the rule set.
//! let refused = factory.layer(&listener, Some(&route("SecRule ARGS"))).err().unwrap();
//! assert!(refused.starts_with("rule_sets[0].rule_str: "), "{refused}");
//! ```

use std::collections::HashMap;
use std::sync::Mutex;

use envoy_types::pb::google::protobuf::Any;
use gloo_core::xds::waf as pb;
use gloo_filters::waf::{
    AuditLogAction, Connection, RuleSet, WafBody, WafLayer, WafReply, WafRules, WeakWafRules,
};
use http::{Request, Response};
use prost::Message;
use tower::{Layer, ServiceExt};

use crate::body::Body;
use crate::filter::{decode_typed, FilterFactory, FilterLayer, FilterRegistry, HttpService};
use crate::proxy::{Downstream, LocalReply};

/// envoy-gloo's ModSecurity filter name.
pub const WAF: &str = "io.solo.filters.http.modsecurity";
/// The filter config's type URL.
pub const MODSECURITY_TYPE: &str =
    "type.googleapis.com/envoy.config.filter.http.modsecurity.v2.ModSecurity";
/// The per-route config's type URL.
pub const MODSECURITY_PER_ROUTE_TYPE: &str =
    "type.googleapis.com/envoy.config.filter.http.modsecurity.v2.ModSecurityPerRoute";

pub(crate) fn register(registry: &mut FilterRegistry) {
    registry.register(WAF, WafFactory::default());
}

/// Builds [`WafLayer`]s from envoy-gloo configs, compiling each distinct list of rule sets
/// once.
#[derive(Default)]
struct WafFactory {
    /// Compiled rules by the encoding of their rule sets; an entry lives as long as a layer
    /// holds its rules.
    compiled: Mutex<HashMap<Vec<u8>, WeakWafRules>>,
}

/// The settings a layer is built from: a `ModSecurity` or a `ModSecurityPerRoute`.
struct Settings {
    disabled: bool,
    rule_sets: Vec<pb::RuleSet>,
    message: String,
    audit: Option<pb::AuditLogging>,
    request_headers_only: bool,
    response_headers_only: bool,
}

impl Settings {
    fn of(config: &Any, per_route: Option<&Any>) -> Result<Self, String> {
        if let Some(per_route) = per_route {
            let r: pb::ModSecurityPerRoute = decode_typed(per_route, MODSECURITY_PER_ROUTE_TYPE)?;
            // Without rules of its own, it takes the filter's (the gateway's): only
            // `disabled` turns the WAF off.
            let rule_sets = if r.rule_sets.is_empty() {
                Self::of(config, None)?.rule_sets
            } else {
                r.rule_sets
            };
            return Ok(Self {
                disabled: r.disabled,
                rule_sets,
                message: r.custom_intervention_message,
                audit: r.audit_logging,
                request_headers_only: r.request_headers_only,
                response_headers_only: r.response_headers_only,
            });
        }
        // Registered everywhere, or listed without a config: nothing to inspect.
        if config.type_url.is_empty() && config.value.is_empty() {
            return Ok(Self {
                disabled: true,
                rule_sets: Vec::new(),
                message: String::new(),
                audit: None,
                request_headers_only: false,
                response_headers_only: false,
            });
        }
        let c: pb::ModSecurity = decode_typed(config, MODSECURITY_TYPE)?;
        if c.regression_logs {
            return Err("regression_logs: not supported by gloo-proxy".into());
        }
        Ok(Self {
            disabled: c.disabled,
            rule_sets: c.rule_sets,
            message: c.custom_intervention_message,
            audit: c.audit_logging,
            request_headers_only: c.request_headers_only,
            response_headers_only: c.response_headers_only,
        })
    }
}

fn audit_action(audit: Option<&pb::AuditLogging>) -> Result<AuditLogAction, String> {
    use pb::audit_logging::AuditLogAction as A;
    let Some(audit) = audit else {
        return Ok(AuditLogAction::Never);
    };
    match A::try_from(audit.action) {
        Ok(A::Never) => Ok(AuditLogAction::Never),
        Ok(A::RelevantOnly) => Ok(AuditLogAction::RelevantOnly),
        Ok(A::Always) => Ok(AuditLogAction::Always),
        Err(_) => Err(format!(
            "audit_logging.action: unknown value {}",
            audit.action
        )),
    }
}

impl WafFactory {
    /// The compiled `rule_sets`, shared with every other layer using the same list.
    fn rules(&self, rule_sets: &[pb::RuleSet]) -> Result<WafRules, String> {
        let key = rule_sets
            .iter()
            .flat_map(|r| r.encode_length_delimited_to_vec())
            .collect::<Vec<u8>>();
        let mut compiled = self
            .compiled
            .lock()
            .map_err(|_| "the WAF's rule cache is poisoned".to_string())?;
        if let Some(rules) = compiled.get(&key).and_then(WeakWafRules::upgrade) {
            return Ok(rules);
        }
        // Rules no layer holds any more are forgotten.
        compiled.retain(|_, weak| weak.upgrade().is_some());
        let rules = WafRules::compile(rule_sets.iter().map(|r| {
            let mut set = RuleSet::new();
            for file in &r.files {
                set = set.file(file);
            }
            if !r.directory.is_empty() {
                set = set.directory(&r.directory);
            }
            if !r.rule_str.is_empty() {
                set = set.with_rule_str(&r.rule_str);
            }
            set
        }))
        .map_err(|e| e.to_string())?;
        compiled.insert(key, rules.downgrade());
        Ok(rules)
    }
}

impl FilterFactory for WafFactory {
    fn layer(&self, config: &Any, per_route: Option<&Any>) -> Result<Option<FilterLayer>, String> {
        let settings = Settings::of(config, per_route)?;
        if settings.disabled || settings.rule_sets.is_empty() {
            return Ok(None);
        }
        let audit = audit_action(settings.audit.as_ref())?;
        let mut layer = WafLayer::new(self.rules(&settings.rule_sets)?)
            .audit_log(audit)
            .request_headers_only(settings.request_headers_only)
            .response_headers_only(settings.response_headers_only);
        if !settings.message.is_empty() {
            layer = layer.custom_intervention_message(settings.message);
        }
        Ok(Some(filter_layer(layer)))
    }
}

/// The layer as a gloo-proxy filter: ModSecurity sees the connection's addresses, the inner
/// service a plain [`Body`], and the layer's own answers are local replies.
fn filter_layer(layer: WafLayer) -> FilterLayer {
    FilterLayer::from_fn(move |inner: HttpService| {
        let inner = inner.map_request(|r: Request<WafBody<Body>>| r.map(Body::new));
        HttpService::new(
            layer
                .layer(inner)
                .map_request(with_connection)
                .map_response(finish_response),
        )
    })
}

fn with_connection(mut req: Request<Body>) -> Request<Body> {
    if let Some(d) = req.extensions().get::<Downstream>() {
        let connection = Connection::new(d.remote, d.local);
        req.extensions_mut().insert(connection);
    }
    req
}

fn finish_response(response: Response<WafBody<Body>>) -> Response<Body> {
    let mut response = response.map(Body::new);
    if response.extensions().get::<WafReply>().is_some() {
        response.extensions_mut().insert(LocalReply);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_route(rules: &str) -> Any {
        Any {
            type_url: MODSECURITY_PER_ROUTE_TYPE.into(),
            value: pb::ModSecurityPerRoute {
                rule_sets: vec![pb::RuleSet {
                    rule_str: rules.into(),
                    ..Default::default()
                }],
                ..Default::default()
            }
            .encode_to_vec(),
        }
    }

    fn listener(config: pb::ModSecurity) -> Any {
        Any {
            type_url: MODSECURITY_TYPE.into(),
            value: config.encode_to_vec(),
        }
    }

    #[test]
    fn the_same_rules_compile_once_while_in_use() {
        let factory = WafFactory::default();
        let sets = |rules: &str| {
            vec![pb::RuleSet {
                rule_str: rules.into(),
                ..Default::default()
            }]
        };
        let a = factory.rules(&sets("SecRuleEngine On")).unwrap();
        let b = factory.rules(&sets("SecRuleEngine On")).unwrap();
        assert!(a.ptr_eq(&b), "one compiled set for equal rule sets");
        let c = factory.rules(&sets("SecRuleEngine DetectionOnly")).unwrap();
        assert!(!a.ptr_eq(&c));
        drop((a, b));
        // Unused rules are dropped from the cache on the next compile.
        let _d = factory.rules(&sets("SecRuleEngine Off")).unwrap();
        assert_eq!(factory.compiled.lock().unwrap().len(), 2);
    }

    #[test]
    fn configs_that_inspect_nothing_build_no_layer() {
        let factory = WafFactory::default();
        let disabled = listener(pb::ModSecurity {
            disabled: true,
            ..Default::default()
        });
        assert!(factory.layer(&disabled, None).unwrap().is_none());
        assert!(factory.layer(&Any::default(), None).unwrap().is_none());
        let off = Any {
            type_url: MODSECURITY_PER_ROUTE_TYPE.into(),
            value: pb::ModSecurityPerRoute {
                disabled: true,
                rule_sets: vec![pb::RuleSet {
                    rule_str: "SecRuleEngine On".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }
            .encode_to_vec(),
        };
        assert!(factory.layer(&disabled, Some(&off)).unwrap().is_none());
        // A route's own rules apply even where the listener's are disabled.
        assert!(factory
            .layer(&disabled, Some(&per_route("SecRuleEngine On")))
            .unwrap()
            .is_some());
        // A route config without rules takes the listener's: none here...
        let no_rules = Any {
            type_url: MODSECURITY_PER_ROUTE_TYPE.into(),
            value: pb::ModSecurityPerRoute {
                request_headers_only: true,
                ..Default::default()
            }
            .encode_to_vec(),
        };
        assert!(factory.layer(&disabled, Some(&no_rules)).unwrap().is_none());
        // ... the gateway's there.
        let gateway = listener(pb::ModSecurity {
            rule_sets: vec![pb::RuleSet {
                rule_str: "SecRuleEngine On".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        assert!(factory.layer(&gateway, Some(&no_rules)).unwrap().is_some());
    }

    #[test]
    fn what_the_layer_does_not_take_is_refused() {
        let factory = WafFactory::default();
        let regression = listener(pb::ModSecurity {
            regression_logs: true,
            rule_sets: vec![pb::RuleSet::default()],
            ..Default::default()
        });
        assert_eq!(
            factory.layer(&regression, None).err().unwrap(),
            "regression_logs: not supported by gloo-proxy"
        );
        let wrong = Any {
            type_url: "type.googleapis.com/x.Y".into(),
            value: Vec::new(),
        };
        assert!(factory
            .layer(&Any::default(), Some(&wrong))
            .err()
            .unwrap()
            .starts_with("expected"));
        let missing = Any {
            type_url: MODSECURITY_PER_ROUTE_TYPE.into(),
            value: pb::ModSecurityPerRoute {
                rule_sets: vec![pb::RuleSet {
                    files: vec!["/nonexistent/waf.conf".into()],
                    ..Default::default()
                }],
                ..Default::default()
            }
            .encode_to_vec(),
        };
        let err = factory
            .layer(&Any::default(), Some(&missing))
            .err()
            .unwrap();
        assert!(err.starts_with("rule_sets[0].files[0]: "), "{err}");
    }
}
