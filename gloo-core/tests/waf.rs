//! The WAF (`options.waf`), field for field as Gloo Enterprise's waf plugin emits it
//! (solo-projects `projects/gloo/pkg/plugins/waf/plugin.go`), for the examples of Gloo's WAF
//! guide (`docs/content/guides/security/waf/_index.md`), and what gloo refuses.

mod common;

use common::*;
use gloo_core::model::Kind;
use gloo_core::translate::{Translator, CRS_RULES_DIR};
use serde_json::{json, Value};

const FILTER: &str = "io.solo.filters.http.modsecurity";
const PER_ROUTE: &str =
    "type.googleapis.com/envoy.config.filter.http.modsecurity.v2.ModSecurityPerRoute";

/// The guide's virtual service example: a rule string and a custom message.
const SCAMMER: &str = r#"waf:
  customInterventionMessage: 'ModSecurity intervention! Custom message details here..'
  ruleSets:
  - ruleStr: |
      SecRuleEngine On
      SecRule REQUEST_HEADERS:User-Agent "scammer" "deny,status:403,id:107,phase:1,msg:'blocked scammer'"
"#;

fn waf_filter(t: &gloo_core::translate::Translation) -> Option<Value> {
    http_filters(t).into_iter().find(|f| f["name"] == FILTER)
}

#[test]
fn a_virtual_host_waf_becomes_the_filter_and_a_per_route_config() {
    let t = translate(&docs(&[
        &up(),
        &vs_with_options("shop", "shop.example", SCAMMER, ""),
    ]));
    assert_no_rejections(&t);
    // The filter: after CORS (none here) and fault injection, before everything else; not
    // optional, so a stock Envoy refuses the listener instead of serving it unprotected.
    let filter = waf_filter(&t).expect("the WAF filter");
    assert_eq!(filter.get("isOptional"), None, "{filter:#}");
    // The gateway sets no WAF of its own: the filter's own config is disabled, as in Gloo.
    assert_eq!(
        filter["typedConfig"],
        json!({"@type": "type.googleapis.com/envoy.config.filter.http.modsecurity.v2.ModSecurity", "disabled": true})
    );
    let vhost = vhost_json(&t, "shop");
    assert_eq!(
        vhost["typedPerFilterConfig"][FILTER],
        json!({
            "@type": PER_ROUTE,
            "ruleSets": [{"ruleStr": "SecRuleEngine On\nSecRule REQUEST_HEADERS:User-Agent \"scammer\" \"deny,status:403,id:107,phase:1,msg:'blocked scammer'\"\n"}],
            "customInterventionMessage": "ModSecurity intervention! Custom message details here..",
        })
    );
    // Routes without WAF options of their own take the virtual host's.
    for route in vhost["routes"].as_array().unwrap() {
        assert!(
            route["typedPerFilterConfig"].get(FILTER).is_none(),
            "{route:#}"
        );
    }
}

#[test]
fn the_core_rule_set_is_its_settings_then_its_rules_after_the_rule_sets() {
    let options = r#"waf:
  auditLogging: {action: RELEVANT_ONLY, location: DYNAMIC_METADATA}
  requestHeadersOnly: true
  responseHeadersOnly: true
  ruleSets:
  - ruleStr: SecRuleEngine On
    files: [/etc/waf/extra.conf]
  - directory: /etc/waf/more
  coreRuleSet:
    customSettingsString: |
      SecAction "id:900990,phase:1,nolog,pass,t:none,setvar:tx.crs_setup_version=334"
"#;
    let t = translate(&docs(&[
        &up(),
        &vs_with_options("shop", "shop.example", "", options),
    ]));
    assert_no_rejections(&t);
    let vhost = vhost_json(&t, "shop");
    let route = &vhost["routes"][0];
    assert_eq!(route["match"]["prefix"], "/a");
    assert_eq!(
        route["typedPerFilterConfig"][FILTER],
        json!({
            "@type": PER_ROUTE,
            "ruleSets": [
                {"ruleStr": "SecRuleEngine On", "files": ["/etc/waf/extra.conf"]},
                {"directory": "/etc/waf/more"},
                {"ruleStr": "SecAction \"id:900990,phase:1,nolog,pass,t:none,setvar:tx.crs_setup_version=334\"\n"},
                {"directory": CRS_RULES_DIR},
            ],
            "auditLogging": {"action": "RELEVANT_ONLY", "location": "DYNAMIC_METADATA"},
            "requestHeadersOnly": true,
            "responseHeadersOnly": true,
        })
    );
    assert!(vhost["routes"][1]["typedPerFilterConfig"]
        .get(FILTER)
        .is_none());
    assert!(vhost["typedPerFilterConfig"].get(FILTER).is_none());

    // A settings file instead of a string.
    let options =
        "waf:\n  coreRuleSet: {customSettingsFile: /etc/modsecurity/crs/crs-setup.conf}\n";
    let t = translate(&docs(&[
        &up(),
        &vs_with_options("shop", "shop.example", options, ""),
    ]));
    assert_eq!(
        vhost_json(&t, "shop")["typedPerFilterConfig"][FILTER]["ruleSets"],
        json!([{"files": ["/etc/modsecurity/crs/crs-setup.conf"]}, {"directory": CRS_RULES_DIR}])
    );
}

#[test]
fn a_route_turns_its_virtual_hosts_waf_off_with_disabled() {
    let t = translate(&docs(&[
        &up(),
        &vs_with_options("shop", "shop.example", SCAMMER, "waf: {disabled: true}\n"),
    ]));
    assert_no_rejections(&t);
    let vhost = vhost_json(&t, "shop");
    assert_eq!(
        vhost["routes"][0]["typedPerFilterConfig"][FILTER],
        json!({"@type": PER_ROUTE, "disabled": true})
    );
    assert!(vhost["routes"][1]["typedPerFilterConfig"]
        .get(FILTER)
        .is_none());
}

#[test]
fn settings_without_rules_take_the_virtual_hosts_rules() {
    // Only `disabled` turns the WAF off: a route that sets only `requestHeadersOnly` keeps its
    // virtual host's rules (Gloo would pass its empty rule list on).
    let t = translate(&docs(&[
        &up(),
        &vs_with_options(
            "shop",
            "shop.example",
            SCAMMER,
            "waf: {requestHeadersOnly: true}\n",
        ),
    ]));
    assert_no_rejections(&t);
    let vhost = vhost_json(&t, "shop");
    let route = &vhost["routes"][0]["typedPerFilterConfig"][FILTER];
    assert_eq!(route["requestHeadersOnly"], true);
    assert_eq!(
        route["ruleSets"],
        vhost["typedPerFilterConfig"][FILTER]["ruleSets"]
    );
    assert!(
        route.get("customInterventionMessage").is_none(),
        "{route:#}"
    );
}

#[test]
fn waf_settings_with_nothing_in_force_emit_nothing() {
    // Disabled, or without rules: nothing is enforced, so no filter (which a stock Envoy would
    // refuse) and no per-route config.
    for (vh, route) in [
        ("waf: {disabled: true}\n", "waf: {disabled: true}\n"),
        ("waf: {customInterventionMessage: hi}\n", ""),
        (
            "",
            "waf: {disabled: true, ruleSets: [{ruleStr: SecRuleEngine On}]}\n",
        ),
    ] {
        let t = translate(&docs(&[
            &up(),
            &vs_with_options("shop", "shop.example", vh, route),
        ]));
        assert_no_rejections(&t);
        assert!(
            waf_filter(&t).is_none(),
            "{vh} {route}: {:?}",
            filter_names(&t)
        );
        let vhost = vhost_json(&t, "shop");
        assert!(
            !vhost.to_string().contains(FILTER),
            "{vh} {route}: {vhost:#}"
        );
    }
}

#[test]
fn the_filter_runs_after_cors_and_fault_injection_and_before_rate_limits_and_auth() {
    let vh_options = format!(
        "cors: {{allowOrigin: ['https://a.example']}}\n{SCAMMER}ratelimit:\n  localRatelimit: {{maxTokens: 5, tokensPerFill: 5, fillInterval: 1s}}\n"
    );
    let t = translate(&docs(&[
        &up(),
        &vs_with_options(
            "shop",
            "shop.example",
            &vh_options,
            "faults: {abort: {percentage: 1, httpStatus: 503}}\n",
        ),
    ]));
    assert_no_rejections(&t);
    assert_eq!(
        filter_names(&t),
        [
            "envoy.filters.http.fault",
            "envoy.filters.http.cors",
            FILTER,
            "envoy.filters.http.local_ratelimit",
            "envoy.filters.http.grpc_web",
            "envoy.filters.http.router",
        ]
    );
}

#[test]
fn a_gateway_waf_is_the_filters_own_config_and_routes_can_turn_it_off() {
    let t = translate(&docs(&[
        &up(),
        &gateway(
            "{name: gateway-proxy, namespace: gloo-system}",
            &format!(
                "bindAddress: '::'\nbindPort: 8080\nproxyNames: [gateway-proxy]\nhttpGateway:\n  options:\n{}",
                reindent(SCAMMER, 4)
            ),
        ),
        &vs_with_options("shop", "shop.example", "", "waf: {disabled: true}\n"),
        &vs_with_options("plain", "plain.example", "", ""),
    ]));
    assert_no_rejections(&t);
    let filter = waf_filter(&t).expect("the WAF filter");
    let config = &filter["typedConfig"];
    assert_eq!(config.get("disabled"), None);
    assert_eq!(
        config["customInterventionMessage"],
        "ModSecurity intervention! Custom message details here.."
    );
    assert_eq!(config["ruleSets"].as_array().unwrap().len(), 1);
    // The route that turns it off says so; the plain virtual host relies on the filter's own
    // config.
    let shop = vhost_json(&t, "shop");
    assert_eq!(
        shop["routes"][0]["typedPerFilterConfig"][FILTER],
        json!({"@type": PER_ROUTE, "disabled": true})
    );
    assert!(!vhost_json(&t, "plain").to_string().contains(FILTER));
}

#[test]
fn a_gateway_edit_retranslates_the_virtual_hosts_whose_waf_configs_depend_on_it() {
    let gateway_with = |waf: &str| {
        gateway(
            "{name: gateway-proxy, namespace: gloo-system}",
            &format!(
                "bindAddress: '::'\nbindPort: 8080\nproxyNames: [gateway-proxy]\nhttpGateway:\n  options:\n{}",
                reindent(waf, 4)
            ),
        )
    };
    let shop = vs_with_options("shop", "shop.example", "", "waf: {disabled: true}\n");
    let mut translator = Translator::new();
    let on = translate_with(
        &mut translator,
        &docs(&[&up(), &gateway_with(SCAMMER), &shop]),
    );
    assert!(vhost_json(&on, "shop").to_string().contains(FILTER));
    // The gateway's WAF goes: the route's `disabled` changes nothing any more, and goes too.
    let off = translate_with(
        &mut translator,
        &docs(&[&up(), &gateway_with("waf: {disabled: true}\n"), &shop]),
    );
    assert_no_rejections(&off);
    assert!(waf_filter(&off).is_none());
    assert!(!vhost_json(&off, "shop").to_string().contains(FILTER));
    let on = translate_with(
        &mut translator,
        &docs(&[&up(), &gateway_with(SCAMMER), &shop]),
    );
    assert!(vhost_json(&on, "shop").to_string().contains(FILTER));
}

#[test]
fn what_cannot_reach_modsecurity_is_refused() {
    let t = translate(&docs(&[
        &up(),
        &vs_with_options(
            "crs",
            "crs.example",
            "",
            "waf:\n  coreRuleSet: {customSettingsString: x, customSettingsFile: /y}\n  ruleSets: [{files: ['']}]\n",
        ),
    ]));
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("crs"),
        Rejected,
        &[
            "spec.virtualHost.routes[0].options.waf.coreRuleSet: only one of customSettingsString, customSettingsFile may be set, found both",
            "spec.virtualHost.routes[0].options.waf.ruleSets[0].files[0]: must name a file",
        ],
        &[],
    );
    assert!(t.proxies.is_empty() || vhost_names(route_config(&t)).is_empty());
}

#[test]
fn an_option_resource_with_invalid_waf_settings_is_never_applied_as_if_it_had_none() {
    let t = translate(&docs(&[
        &up(),
        &resource(
            "gateway.solo.io/v1",
            "VirtualHostOption",
            "{name: bad-waf, namespace: gloo-system}",
            "options:\n  waf:\n    configMapRuleSets: [{configMapRef: {name: rules}}]\n",
        ),
        &resource(
            "gateway.solo.io/v1",
            "RouteOption",
            "{name: good-waf, namespace: gloo-system}",
            &format!("options:\n{}", reindent(SCAMMER, 2)),
        ),
        &vs(
            "host",
            "domains: [host.example]\noptionsConfigRefs: {delegateOptions: [{name: bad-waf}]}\nroutes:\n- matchers: [{prefix: /}]\n  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}\n",
        ),
        &vs(
            "route",
            "domains: [route.example]\nroutes:\n- matchers: [{prefix: /}]\n  optionsConfigRefs: {delegateOptions: [{name: good-waf}]}\n  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}\n",
        ),
    ]));
    assert_eq!(
        status(&t, Kind::VirtualHostOption, &gs("bad-waf")).state,
        Rejected
    );
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("host"),
        Rejected,
        &["spec.virtualHost.optionsConfigRefs.delegateOptions[0]: VirtualHostOption gloo-system.bad-waf sets invalid WAF settings; the virtual host serves no routes rather than serving them without"],
        &[],
    );
    assert!(vhost_routes(route_config(&t), "gloo-system_host").is_empty());
    // A valid RouteOption's WAF is applied to the route that refers to it.
    assert_eq!(
        status(&t, Kind::RouteOption, &gs("good-waf")).state,
        Accepted
    );
    let route = &vhost_json(&t, "route")["routes"][0];
    assert_eq!(route["typedPerFilterConfig"][FILTER]["@type"], PER_ROUTE);
    assert!(waf_filter(&t).is_some());
}

// ----- configMapRuleSets ----------------------------------------------------------------------

/// A ConfigMap `gloo-system.<name>` with `data` (a YAML flow map).
fn config_map(name: &str, data: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: gloo-system}}\ndata: {data}\n")
}

fn rule_strs(settings: &Value) -> Vec<String> {
    settings["ruleSets"]
        .as_array()
        .unwrap_or_else(|| panic!("no rule sets in {settings:#}"))
        .iter()
        .map(|r| {
            r.get("ruleStr")
                .and_then(Value::as_str)
                .or_else(|| r.get("directory").and_then(Value::as_str))
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

#[test]
fn config_map_rule_sets_follow_the_rule_sets_and_the_core_rule_set_in_glooss_order() {
    // Without dataMapKeys every key, sorted; with them those keys in their order. A Gloo
    // Artifact serves like a ConfigMap.
    let options = r#"waf:
  ruleSets: [{ruleStr: own}]
  coreRuleSet: {customSettingsString: crs-settings}
  configMapRuleSets:
  - configMapRef: {name: all, namespace: gloo-system}
  - configMapRef: {name: picked, namespace: waf}
    dataMapKeys: [z.conf, a.conf]
"#;
    let artifact = "apiVersion: gloo.solo.io/v1\nkind: Artifact\nmetadata: {name: picked, namespace: waf}\ndata: {a.conf: picked-a, m.conf: unused, z.conf: picked-z}\n";
    let t = translate(&docs(&[
        &up(),
        &config_map("all", "{b.conf: all-b, a.conf: all-a, c.conf: all-c}"),
        artifact,
        &vs_with_options("shop", "shop.example", options, ""),
    ]));
    assert_no_rejections(&t);
    let host = &vhost_json(&t, "shop")["typedPerFilterConfig"][FILTER];
    assert_eq!(
        rule_strs(host),
        [
            "own",
            "crs-settings",
            CRS_RULES_DIR,
            "all-a",
            "all-b",
            "all-c",
            "picked-z",
            "picked-a"
        ]
    );
    assert_eq!(status(&t, Kind::ConfigMap, &gs("all")).state, Accepted);
}

#[test]
fn a_gateway_waf_with_only_config_map_rules_is_enforced() {
    let t = translate(&docs(&[
        &up(),
        &config_map("rules", "{r.conf: 'SecRuleEngine On'}"),
        &gateway(
            "{name: gateway-proxy, namespace: gloo-system}",
            "bindAddress: '::'\nbindPort: 8080\nproxyNames: [gateway-proxy]\nhttpGateway:\n  options:\n    waf:\n      configMapRuleSets: [{configMapRef: {name: rules, namespace: gloo-system}}]\n",
        ),
        &vs("shop", "domains: [shop.example]\nroutes:\n- matchers: [{prefix: /}]\n  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}\n"),
    ]));
    assert_no_rejections(&t);
    let filter = waf_filter(&t).expect("the WAF filter");
    let config = &filter["typedConfig"];
    assert_eq!(config.get("disabled"), None, "{config:#}");
    assert_eq!(rule_strs(config), ["SecRuleEngine On"]);
}

#[test]
fn config_maps_that_cannot_be_read_reject_what_names_them() {
    let vhost_options = r#"waf:
  configMapRuleSets:
  - configMapRef: {name: gone, namespace: gloo-system}
  - configMapRef: {name: rules}
  - configMapRef: {name: rules, namespace: gloo-system}
    dataMapKeys: [a.conf, missing.conf, logo.bin]
  - dataMapKeys: [a.conf]
  - configMapRef: {name: nul, namespace: gloo-system}
  - configMapRef: {name: nul, namespace: gloo-system}
    dataMapKeys: [n.conf]
"#;
    let binary = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: rules, namespace: gloo-system}\ndata: {a.conf: a}\nbinaryData: {logo.bin: AAEC}\n";
    let nul = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: nul, namespace: gloo-system}\ndata: {n.conf: \"Sec\\0Rule\"}\n";
    let t = translate(&docs(&[
        &up(),
        binary,
        nul,
        &vs_with_options("shop", "shop.example", vhost_options, ""),
        &rt(
            "{name: child, namespace: gloo-system}",
            "routes:\n- matchers: [{prefix: /}]\n  options: {waf: {configMapRuleSets: [{configMapRef: {name: gone, namespace: gloo-system}}]}}\n  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}\n",
        ),
        &resource(
            "gateway.solo.io/v1",
            "RouteOption",
            "{name: maps, namespace: gloo-system}",
            "options: {waf: {configMapRuleSets: [{configMapRef: {name: gone, namespace: gloo-system}}]}}\n",
        ),
    ]));
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("shop"),
        Rejected,
        &[
            "spec.virtualHost.options.waf.configMapRuleSets[0].configMapRef: ConfigMap gloo-system.gone not found",
            "spec.virtualHost.options.waf.configMapRuleSets[1].configMapRef: ConfigMap \"rules\" needs its namespace (Gloo looks a reference without one up in the namespace \"\")",
            "spec.virtualHost.options.waf.configMapRuleSets[2].dataMapKeys[1]: ConfigMap gloo-system.rules has no data key \"missing.conf\" (its keys: [\"a.conf\"])",
            "spec.virtualHost.options.waf.configMapRuleSets[2].dataMapKeys[2]: ConfigMap gloo-system.rules has \"logo.bin\" only in binaryData, which Gloo does not read (put it in data)",
            "spec.virtualHost.options.waf.configMapRuleSets[3].configMapRef: required",
            "spec.virtualHost.options.waf.configMapRuleSets[4].configMapRef: ConfigMap gloo-system.nul: \"n.conf\" contains a NUL byte",
            "spec.virtualHost.options.waf.configMapRuleSets[5].dataMapKeys[0]: ConfigMap gloo-system.nul: \"n.conf\" contains a NUL byte",
        ],
        &[],
    );
    assert_status(
        &t,
        Kind::RouteTable,
        &gs("child"),
        Rejected,
        &["spec.routes[0].options.waf.configMapRuleSets[0].configMapRef: ConfigMap gloo-system.gone not found"],
        &[],
    );
    assert_status(
        &t,
        Kind::RouteOption,
        &gs("maps"),
        Rejected,
        &["spec.options.waf.configMapRuleSets[0].configMapRef: ConfigMap gloo-system.gone not found"],
        &[],
    );
}

#[test]
fn a_config_map_edit_retranslates_and_a_deleted_one_never_leaves_the_waf_open() {
    let options =
        "waf:\n  configMapRuleSets: [{configMapRef: {name: rules, namespace: gloo-system}}]\n";
    let shop = vs_with_options("shop", "shop.example", options, "");
    let mut translator = Translator::new();
    let first = translate_with(
        &mut translator,
        &docs(&[&up(), &config_map("rules", "{r.conf: first}"), &shop]),
    );
    assert_no_rejections(&first);
    assert_eq!(
        rule_strs(&vhost_json(&first, "shop")["typedPerFilterConfig"][FILTER]),
        ["first"]
    );
    // Only the ConfigMap changes: the virtual host is translated again, with a new version.
    let second = translate_with(
        &mut translator,
        &docs(&[&up(), &config_map("rules", "{r.conf: second}"), &shop]),
    );
    assert_no_rejections(&second);
    assert_eq!(
        rule_strs(&vhost_json(&second, "shop")["typedPerFilterConfig"][FILTER]),
        ["second"]
    );
    let version = |t: &gloo_core::translate::Translation| {
        proxy(t)
            .routes
            .values()
            .map(|v| v.version.clone())
            .collect::<Vec<_>>()
    };
    assert_ne!(version(&first), version(&second));
    // The ConfigMap goes: the VirtualService is rejected, its last accepted version serves,
    // and with its rules unreadable its WAF denies everything (never inspects nothing).
    let gone = translate_with(&mut translator, &docs(&[&up(), &shop]));
    assert_status(
        &gone,
        Kind::VirtualService,
        &gs("shop"),
        Rejected,
        &[
            "spec.virtualHost.options.waf.configMapRuleSets[0].configMapRef: ConfigMap gloo-system.rules not found",
            "the last accepted version keeps serving",
        ],
        &[],
    );
    let rules = rule_strs(&vhost_json(&gone, "shop")["typedPerFilterConfig"][FILTER]);
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert!(
        rules[0].starts_with("SecRuleEngine On\nSecAction ")
            && rules[0].contains("deny,status:503"),
        "{rules:?}"
    );
}

#[test]
fn only_the_virtual_hosts_reading_a_config_map_are_translated_again_when_it_changes() {
    let options =
        "waf:\n  configMapRuleSets: [{configMapRef: {name: rules, namespace: gloo-system}}]\n";
    let config = |rules: &str, other: &str| {
        docs(&[
            &up(),
            &config_map("rules", rules),
            &config_map("unrelated", other),
            &vs_with_options("shop", "shop.example", options, ""),
            &vs_with_options("blog", "blog.example", "", ""),
        ])
    };
    let mut translator = Translator::new();
    let first = translate_with(&mut translator, &config("{r.conf: one}", "{k: a}"));
    assert_no_rejections(&first);
    assert_eq!(translator.virtual_hosts_translated, 2);
    // A ConfigMap no WAF reads changes (Kubernetes has many): nothing is translated again.
    let second = translate_with(&mut translator, &config("{r.conf: one}", "{k: b}"));
    assert_eq!(translator.virtual_hosts_translated, 0);
    assert_eq!(
        proxy(&first).routes.values().next().map(|v| &v.version),
        proxy(&second).routes.values().next().map(|v| &v.version)
    );
    // The one it reads changes: only its virtual host is translated again.
    let third = translate_with(&mut translator, &config("{r.conf: two}", "{k: b}"));
    assert_eq!(translator.virtual_hosts_translated, 1);
    assert_eq!(
        rule_strs(&vhost_json(&third, "shop")["typedPerFilterConfig"][FILTER]),
        ["two"]
    );
}

#[test]
fn an_option_resource_whose_config_map_goes_is_refused_where_it_is_used() {
    let vho = resource(
        "gateway.solo.io/v1",
        "VirtualHostOption",
        "{name: maps, namespace: gloo-system}",
        "options: {waf: {configMapRuleSets: [{configMapRef: {name: rules, namespace: gloo-system}}]}}\n",
    );
    let host = vs(
        "host",
        "domains: [host.example]\noptionsConfigRefs: {delegateOptions: [{name: maps}]}\nroutes:\n- matchers: [{prefix: /}]\n  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}\n",
    );
    let mut translator = Translator::new();
    let with = translate_with(
        &mut translator,
        &docs(&[&up(), &vho, &host, &config_map("rules", "{r.conf: rule}")]),
    );
    assert_no_rejections(&with);
    assert_eq!(
        rule_strs(&vhost_json(&with, "host")["typedPerFilterConfig"][FILTER]),
        ["rule"]
    );
    // The same translator (its resolved hosts cached): the ConfigMap's loss is seen.
    let without = translate_with(&mut translator, &docs(&[&up(), &vho, &host]));
    assert_status(
        &without,
        Kind::VirtualHostOption,
        &gs("maps"),
        Rejected,
        &["spec.options.waf.configMapRuleSets[0].configMapRef: ConfigMap gloo-system.rules not found"],
        &[],
    );
    assert_status(
        &without,
        Kind::VirtualService,
        &gs("host"),
        Rejected,
        &["spec.virtualHost.optionsConfigRefs.delegateOptions[0]: VirtualHostOption gloo-system.maps sets invalid WAF settings; the virtual host serves no routes rather than serving them without"],
        &[],
    );
    assert!(vhost_routes(route_config(&without), "gloo-system_host").is_empty());
}
