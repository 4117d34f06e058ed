//! Local rate limiting, field for field as Gloo's `local_ratelimit` plugin emits it
//! (`projects/gloo/pkg/plugins/local_ratelimit/{plugin,utils}.go` and its `plugin_test.go`),
//! and what Gloo refuses.

mod common;

use common::*;
use gloo_core::model::Kind;
use gloo_core::translate::Translator;
use serde_json::{json, Value};

/// The default HTTP gateway on 8080 with `options` (a YAML block under `httpGateway.options`).
fn http_gateway(options: &str) -> String {
    gateway(
        "{name: gateway-proxy, namespace: gloo-system}",
        &format!(
            "bindAddress: '::'\nbindPort: 8080\nhttpGateway:\n  options:\n{}",
            reindent(options, 4)
        ),
    )
}

const LRL: &str = "envoy.filters.http.local_ratelimit";
const TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";

/// A config Gloo writes with a bucket: `filter_enabled` / `filter_enforced` at 100% (the
/// denominator HUNDRED is proto3's default and so not printed).
fn with_bucket(bucket: Value, per_connection: bool, headers: bool) -> Value {
    let mut v = json!({
        "@type": TYPE,
        "statPrefix": "http_local_ratelimit",
        "stage": 3,
        "tokenBucket": bucket,
        "filterEnabled": {"defaultValue": {"numerator": 100}},
        "filterEnforced": {"defaultValue": {"numerator": 100}},
    });
    if per_connection {
        v["localRateLimitPerDownstreamConnection"] = json!(true);
    }
    if headers {
        v["enableXRatelimitHeaders"] = json!("DRAFT_VERSION_03");
    }
    v
}

const GATEWAY_DEFAULT: &str = "
httpLocalRatelimit:
  defaultLimit: {maxTokens: 10, tokensPerFill: 10, fillInterval: 10s}
  localRateLimitPerDownstreamConnection: true
  enableXRatelimitHeaders: true
";

// ----- translation -------------------------------------------------------------------------

#[test]
fn nothing_is_emitted_without_a_local_limit_anywhere() {
    let t = translate(&docs(&[
        &up(),
        &http_gateway("httpConnectionManagerSettings: {useRemoteAddress: true}"),
        &vs_with_options("default", "*", "", ""),
    ]));
    assert_no_rejections(&t);
    assert_eq!(
        filter_names(&t),
        ["envoy.filters.http.grpc_web", "envoy.filters.http.router"]
    );
    let vh = vhost_json(&t, "default");
    assert!(vh.get("typedPerFilterConfig").is_none(), "{vh:#}");
    assert!(
        !proxy_json(&t).to_string().contains("local_ratelimit"),
        "no local rate limit anywhere"
    );
}

#[test]
fn listener_flags_without_a_default_limit_add_no_filter() {
    // Gloo (removeUnusedFilters) skips the filter when no bucket is set anywhere on the
    // listener, flags or not.
    let t = translate(&docs(&[
        &up(),
        &http_gateway(
            "httpLocalRatelimit: {enableXRatelimitHeaders: true, localRateLimitPerDownstreamConnection: true}",
        ),
        &vs_with_options("default", "*", "", ""),
    ]));
    assert_no_rejections(&t);
    assert_eq!(
        filter_names(&t),
        ["envoy.filters.http.grpc_web", "envoy.filters.http.router"]
    );
}

#[test]
fn gateway_default_limit_is_the_connection_manager_filter() {
    // plugin_test.go: "Should copy the http local rate limit config from the HTTP Listener to
    // the filter".
    let t = translate(&docs(&[
        &up(),
        &http_gateway(GATEWAY_DEFAULT),
        &vs_with_options("default", "*", "", ""),
    ]));
    assert_no_rejections(&t);
    let filters = http_filters(&t);
    assert_eq!(
        filters,
        [
            json!({
                "name": LRL,
                "typedConfig": with_bucket(
                    json!({"maxTokens": 10, "tokensPerFill": 10, "fillInterval": "10s"}),
                    true,
                    true,
                ),
            }),
            grpc_web_json(),
            json!({
                "name": "envoy.filters.http.router",
                "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
            }),
        ]
    );
    // No override where nothing sets its own bucket: the listener's default applies.
    assert!(vhost_json(&t, "default")
        .get("typedPerFilterConfig")
        .is_none());
}

#[test]
fn fill_interval_defaults_to_one_second_and_tokens_per_fill_stays_unset() {
    let t = translate(&docs(&[
        &up(),
        &http_gateway("httpLocalRatelimit: {defaultLimit: {maxTokens: 5}}"),
        &vs_with_options("default", "*", "", ""),
    ]));
    assert_no_rejections(&t);
    assert_eq!(
        http_filters(&t)[0]["typedConfig"],
        with_bucket(json!({"maxTokens": 5, "fillInterval": "1s"}), false, false)
    );
}

#[test]
fn virtual_host_and_route_limits_are_overrides_with_the_listener_flags_copied() {
    // plugin_test.go: the virtual host and route cases; the listener's flags are copied into
    // each override, which otherwise replaces them with false.
    let t = translate(&docs(&[
        &up(),
        &http_gateway(GATEWAY_DEFAULT),
        &vs_with_options(
            "default",
            "*",
            "ratelimit: {localRatelimit: {maxTokens: 20, tokensPerFill: 5, fillInterval: 30s}}",
            "ratelimit: {localRatelimit: {maxTokens: 3, tokensPerFill: 3, fillInterval: 0.5s}}",
        ),
    ]));
    assert_no_rejections(&t);
    let vh = vhost_json(&t, "default");
    assert_eq!(
        vh["typedPerFilterConfig"],
        json!({LRL: with_bucket(json!({"maxTokens": 20, "tokensPerFill": 5, "fillInterval": "30s"}), true, true)})
    );
    assert_eq!(
        vh["routes"][0]["typedPerFilterConfig"],
        json!({LRL: with_bucket(json!({"maxTokens": 3, "tokensPerFill": 3, "fillInterval": "0.500s"}), true, true)})
    );
    // The route without a bucket of its own gets none (the virtual host's applies).
    assert!(vh["routes"][1].get("typedPerFilterConfig").is_none());
}

#[test]
fn route_limits_without_a_gateway_default_get_a_bucketless_listener_filter() {
    // GenerateHTTPFilter with no default bucket: no token bucket and no filter_enabled /
    // filter_enforced (those at 100% without a bucket would refuse every request).
    let t = translate(&docs(&[
        &up(),
        &vs_with_options(
            "default",
            "*",
            "",
            "ratelimit: {localRatelimit: {maxTokens: 3}}",
        ),
    ]));
    assert_no_rejections(&t);
    assert_eq!(
        http_filters(&t)[0],
        json!({
            "name": LRL,
            "typedConfig": {"@type": TYPE, "statPrefix": "http_local_ratelimit", "stage": 3},
        })
    );
    let vh = vhost_json(&t, "default");
    assert_eq!(
        vh["routes"][0]["typedPerFilterConfig"],
        json!({LRL: with_bucket(json!({"maxTokens": 3, "fillInterval": "1s"}), false, false)})
    );
}

#[test]
fn the_filter_sits_after_fault_and_cors_and_before_the_router() {
    let t = translate(&docs(&[
        &up(),
        &vs_with_options(
            "default",
            "*",
            "cors: {allowOrigin: ['https://a.example']}",
            "faults: {abort: {percentage: 1, httpStatus: 503}}\nratelimit: {localRatelimit: {maxTokens: 3}}",
        ),
    ]));
    assert_no_rejections(&t);
    assert_eq!(
        filter_names(&t),
        [
            "envoy.filters.http.fault",
            "envoy.filters.http.cors",
            LRL,
            "envoy.filters.http.grpc_web",
            "envoy.filters.http.router"
        ]
    );
    // The route carries both its fault and its local rate limit override.
    let vh = vhost_json(&t, "default");
    let per_filter = vh["routes"][0]["typedPerFilterConfig"].as_object().unwrap();
    assert_eq!(
        per_filter.keys().collect::<Vec<_>>(),
        ["envoy.filters.http.fault", LRL]
    );
}

#[test]
fn ratelimit_early_local_limits_are_honoured() {
    let t = translate(&docs(&[
        &up(),
        &vs_with_options(
            "default",
            "*",
            "ratelimitEarly: {localRatelimit: {maxTokens: 7}}",
            "",
        ),
    ]));
    assert_no_rejections(&t);
    assert_eq!(filter_names(&t)[0], LRL);
    assert_eq!(
        vhost_json(&t, "default")["typedPerFilterConfig"],
        json!({LRL: with_bucket(json!({"maxTokens": 7, "fillInterval": "1s"}), false, false)})
    );
}

#[test]
fn a_delegated_route_takes_its_parent_local_limit_and_can_override_it() {
    let t = translate(&docs(&[
        &up(),
        &vs(
            "default",
            "domains: ['*']\nroutes:\n- matchers: [{prefix: /api}]\n  options: {ratelimit: {localRatelimit: {maxTokens: 9}}}\n  delegateAction: {ref: {name: child, namespace: gloo-system}}\n",
        ),
        &rt(
            "{name: child, namespace: gloo-system}",
            "routes:\n- matchers: [{prefix: /api/a}]\n  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}\n- matchers: [{prefix: /api/b}]\n  options: {ratelimit: {localRatelimit: {maxTokens: 2}}}\n  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}\n",
        ),
    ]));
    assert_no_rejections(&t);
    let vh = vhost_json(&t, "default");
    let max =
        |i: usize| vh["routes"][i]["typedPerFilterConfig"][LRL]["tokenBucket"]["maxTokens"].clone();
    assert_eq!((max(0), max(1)), (json!(9), json!(2)));
}

#[test]
fn hybrid_http_chains_use_their_own_gateway_options() {
    let t = translate(&docs(&[
        &up(),
        &vs_with_options(
            "default",
            "*",
            "",
            "ratelimit: {localRatelimit: {maxTokens: 3}}",
        ),
        &gateway(
            "{name: hybrid, namespace: gloo-system}",
            "
            bindAddress: '::'
            bindPort: 8080
            hybridGateway:
              matchedGateways:
              - matcher: {sourcePrefixRanges: [{addressPrefix: 10.0.0.0, prefixLen: 8}]}
                httpGateway:
                  options:
                    httpLocalRatelimit:
                      defaultLimit: {maxTokens: 100}
                      enableXRatelimitHeaders: true
              - httpGateway: {}
            ",
        ),
    ]));
    assert_no_rejections(&t);
    let json = proxy_json(&t);
    let chains = json["listeners"][0]["filterChains"].as_array().unwrap();
    let filters = |i: usize| chains[i]["filters"][0]["typedConfig"]["httpFilters"].clone();
    assert_eq!(
        filters(0)[0]["typedConfig"],
        with_bucket(json!({"maxTokens": 100, "fillInterval": "1s"}), false, true)
    );
    // The second chain has no default, but its virtual host has a route limit.
    assert_eq!(
        filters(1)[0]["typedConfig"],
        json!({"@type": TYPE, "statPrefix": "http_local_ratelimit", "stage": 3})
    );
    // One virtual host per chain, each with the flags of its own gateway.
    let route_override = |rc: &str| {
        let rc = json["routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == rc)
            .cloned()
            .unwrap();
        rc["virtualHosts"][0]["routes"][0]["typedPerFilterConfig"][LRL].clone()
    };
    assert_eq!(
        route_override("listener-::-8080-routes-0")["enableXRatelimitHeaders"],
        "DRAFT_VERSION_03"
    );
    assert!(route_override("listener-::-8080-routes-1")
        .get("enableXRatelimitHeaders")
        .is_none());
}

// ----- incremental translation ---------------------------------------------------------------

#[test]
fn a_gateway_flag_edit_retranslates_only_the_hosts_with_overrides() {
    let config = |headers: bool| {
        docs(&[
            &up(),
            &http_gateway(&format!(
                "httpLocalRatelimit: {{defaultLimit: {{maxTokens: 10}}, enableXRatelimitHeaders: {headers}}}"
            )),
            &vs_with_options(
                "limited",
                "limited.example",
                "",
                "ratelimit: {localRatelimit: {maxTokens: 3}}",
            ),
            &vs_with_options("plain", "plain.example", "", ""),
        ])
    };
    let mut translator = Translator::new();
    let first = translate_with(&mut translator, &config(false));
    assert_no_rejections(&first);
    assert_eq!(translator.virtual_hosts_translated, 2);
    let header = |t: &gloo_core::translate::Translation| {
        vhost_json(t, "limited")["routes"][0]["typedPerFilterConfig"][LRL]
            .get("enableXRatelimitHeaders")
            .cloned()
    };
    assert_eq!(header(&first), None);

    let second = translate_with(&mut translator, &config(true));
    assert_no_rejections(&second);
    // The cached virtual host must not be served with the old flags.
    assert_eq!(header(&second), Some(json!("DRAFT_VERSION_03")));
    assert_eq!(
        translator.virtual_hosts_translated, 1,
        "only the host with an override is translated again"
    );
    assert_ne!(
        proxy(&first).routes["listener-::-8080-routes"].version,
        proxy(&second).routes["listener-::-8080-routes"].version
    );

    // And back: the flags are part of the cache key, so this is a cache hit or a rebuild, never
    // stale.
    let third = translate_with(&mut translator, &config(false));
    assert_eq!(header(&third), None);
    assert_eq!(
        proxy(&first).routes["listener-::-8080-routes"].version,
        proxy(&third).routes["listener-::-8080-routes"].version
    );
}

#[test]
fn one_virtual_service_on_two_gateways_gets_each_gateway_flags() {
    let t = translate(&docs(&[
        &up(),
        &vs_with_options(
            "default",
            "*",
            "ratelimit: {localRatelimit: {maxTokens: 3}}",
            "",
        ),
        &gateway(
            "{name: a, namespace: gloo-system}",
            "bindPort: 8080\nhttpGateway:\n  options:\n    httpLocalRatelimit: {localRateLimitPerDownstreamConnection: true}\n",
        ),
        &gateway(
            "{name: b, namespace: gloo-system}",
            "bindPort: 8081\nhttpGateway: {}\n",
        ),
    ]));
    assert_no_rejections(&t);
    let json = proxy_json(&t);
    let per_connection = |rc: &str| {
        let rc = json["routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == rc)
            .cloned()
            .unwrap();
        rc["virtualHosts"][0]["typedPerFilterConfig"][LRL]
            .get("localRateLimitPerDownstreamConnection")
            .cloned()
    };
    assert_eq!(per_connection("listener-::-8080-routes"), Some(json!(true)));
    assert_eq!(per_connection("listener-::-8081-routes"), None);
}

// ----- validation ----------------------------------------------------------------------------

#[test]
fn bad_buckets_on_a_virtual_service_are_rejected_with_their_field_paths() {
    let t = translate(&docs(&[
        &up(),
        &vs_with_options(
            "default",
            "*",
            "ratelimit: {localRatelimit: {maxTokens: 0, tokensPerFill: 0, fillInterval: 0.049s}}",
            "ratelimit: {localRatelimit: {tokensPerFill: 1}}",
        ),
    ]));
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("default"),
        Rejected,
        &[
            "spec.virtualHost.options.ratelimit.localRatelimit.maxTokens: must be at least 1, found 0",
            "spec.virtualHost.options.ratelimit.localRatelimit.tokensPerFill: must be at least 1, found 0",
            "spec.virtualHost.options.ratelimit.localRatelimit.fillInterval: must be at least 50ms, found 0.049s",
            "spec.virtualHost.routes[0].options.ratelimit.localRatelimit.maxTokens: required, must be at least 1",
        ],
        &[],
    );
    // Never valid, so never served.
    assert!(!proxy_json(&t).to_string().contains("local_ratelimit"));
}

#[test]
fn a_good_bucket_is_accepted() {
    let t = translate(&docs(&[
        &up(),
        &http_gateway("httpLocalRatelimit: {defaultLimit: {maxTokens: 1, tokensPerFill: 1, fillInterval: 0.05s}}"),
        &vs_with_options(
            "default",
            "*",
            "ratelimit: {localRatelimit: {maxTokens: 1, fillInterval: 0.050s}}",
            "ratelimitEarly: {localRatelimit: {maxTokens: 4294967295, tokensPerFill: 1}}",
        ),
    ]));
    assert_status(&t, Kind::Gateway, &gs("gateway-proxy"), Accepted, &[], &[]);
    assert_status(&t, Kind::VirtualService, &gs("default"), Accepted, &[], &[]);
}

#[test]
fn ratelimit_regular_and_two_stages_are_rejected() {
    let t = translate(&docs(&[
        &up(),
        &vs_with_options(
            "default",
            "*",
            "ratelimitRegular: {localRatelimit: {maxTokens: 5}}",
            "ratelimit: {localRatelimit: {maxTokens: 5}}\nratelimitEarly: {localRatelimit: {maxTokens: 5}}",
        ),
    ]));
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("default"),
        Rejected,
        &[
            "spec.virtualHost.options.ratelimitRegular.localRatelimit: local rate limits are enforced before auth only; use ratelimit.localRatelimit or ratelimitEarly.localRatelimit",
            "spec.virtualHost.routes[0].options.ratelimitEarly.localRatelimit: only one of ratelimit.localRatelimit and ratelimitEarly.localRatelimit may be set, found both",
        ],
        &[],
    );
}

#[test]
fn a_bad_gateway_default_limit_rejects_the_gateway() {
    let t = translate(&docs(&[
        &up(),
        &http_gateway("httpLocalRatelimit: {defaultLimit: {maxTokens: 5, fillInterval: 0.010s}}"),
        &vs_with_options("default", "*", "", ""),
    ]));
    assert_status(
        &t,
        Kind::Gateway,
        &gs("gateway-proxy"),
        Rejected,
        &["spec.httpGateway.options.httpLocalRatelimit.defaultLimit.fillInterval: must be at least 50ms, found 0.010s"],
        &[],
    );
    assert!(t.proxies.is_empty(), "{:?}", t.proxies.keys());
}

#[test]
fn a_bad_default_limit_drops_only_its_hybrid_chain() {
    let t = translate(&docs(&[
        &up(),
        &vs_with_options("default", "*", "", ""),
        &gateway(
            "{name: hybrid, namespace: gloo-system}",
            "
            bindPort: 8080
            hybridGateway:
              matchedGateways:
              - matcher: {sourcePrefixRanges: [{addressPrefix: 10.0.0.0, prefixLen: 8}]}
                httpGateway:
                  options:
                    httpLocalRatelimit: {defaultLimit: {tokensPerFill: 0, maxTokens: 1}}
              - httpGateway: {}
            ",
        ),
    ]));
    assert_status(
        &t,
        Kind::Gateway,
        &gs("hybrid"),
        Rejected,
        &["spec.hybridGateway.matchedGateways[0].httpGateway.options.httpLocalRatelimit.defaultLimit.tokensPerFill: must be at least 1, found 0"],
        &[],
    );
    assert_eq!(
        proxy(&t).routes.keys().collect::<Vec<_>>(),
        ["listener-::-8080-routes-1"]
    );
}

#[test]
fn bad_buckets_on_route_tables_and_option_resources_are_rejected() {
    let t = translate(&docs(&[
        &up(),
        &vs(
            "default",
            "
            domains: ['*']
            optionsConfigRefs: {delegateOptions: [{name: vho}]}
            routes:
            - matchers: [{prefix: /api}]
              delegateAction: {ref: {name: child}}
            - matchers: [{prefix: /x}]
              optionsConfigRefs: {delegateOptions: [{name: ro}]}
              routeAction: {single: {upstream: {name: up}}}
            ",
        ),
        &rt(
            "{name: child, namespace: gloo-system}",
            "routes:\n- matchers: [{prefix: /api/a}]\n  options: {ratelimit: {localRatelimit: {maxTokens: 0}}}\n  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}\n",
        ),
        &resource(
            "gateway.solo.io/v1",
            "VirtualHostOption",
            "{name: vho, namespace: gloo-system}",
            "options: {ratelimit: {localRatelimit: {maxTokens: 1, fillInterval: 0s}}}",
        ),
        &resource(
            "gateway.solo.io/v1",
            "RouteOption",
            "{name: ro, namespace: gloo-system}",
            "options: {ratelimitRegular: {localRatelimit: {maxTokens: 1}}}",
        ),
    ]));
    assert_status(
        &t,
        Kind::RouteTable,
        &gs("child"),
        Rejected,
        &["spec.routes[0].options.ratelimit.localRatelimit.maxTokens: must be at least 1, found 0"],
        &[],
    );
    assert_status(
        &t,
        Kind::VirtualHostOption,
        &gs("vho"),
        Rejected,
        &["spec.options.ratelimit.localRatelimit.fillInterval: must be at least 50ms, found 0s"],
        &[],
    );
    assert_status(
        &t,
        Kind::RouteOption,
        &gs("ro"),
        Rejected,
        &["spec.options.ratelimitRegular.localRatelimit: local rate limits are enforced before auth only; use ratelimit.localRatelimit or ratelimitEarly.localRatelimit"],
        &[],
    );
    // Where they are referenced, rejected option resources are not applied (nothing invalid
    // reaches Envoy), and the referencing VirtualService says so.
    let s = status(&t, Kind::VirtualService, &gs("default"));
    assert!(
        s.warnings.iter().any(|w| w
            == "spec.virtualHost.optionsConfigRefs.delegateOptions[0]: VirtualHostOption gloo-system.vho is rejected; its options are not applied"),
        "{:?}",
        s.warnings
    );
    assert!(
        s.warnings.iter().any(|w| w
            == "spec.virtualHost.routes[1].optionsConfigRefs.delegateOptions[0]: RouteOption gloo-system.ro is rejected; its options are not applied"),
        "{:?}",
        s.warnings
    );
    assert!(!proxy_json(&t).to_string().contains("local_ratelimit"));
}

#[test]
fn unknown_fields_in_local_rate_limits_are_load_errors() {
    let t = translate(&docs(&[
        &up(),
        &http_gateway("httpLocalRatelimit: {defaultLimit: {maxTokens: 1, maxToken: 2}}"),
    ]));
    let text = t.reports.to_text();
    assert!(text.contains("maxToken"), "{text}");
    assert!(t.reports.has_rejections(), "{text}");
}
