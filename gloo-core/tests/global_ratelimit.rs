//! Global rate limiting, field for field as Gloo emits it: the `envoy.filters.http.ratelimit`
//! filter of its rate limit plugins (`projects/gloo/pkg/plugins/ratelimit/{plugin,util,
//! raw_util}.go` and `plugin_test.go`, `raw_util_test.go`; the enterprise
//! `staged_translators.go`), route and virtual host `rate_limits` for the examples of Gloo's
//! docs (`docs/content/guides/security/rate_limiting/{envoy,set}/_index.md`), the rate limit
//! server's descriptors, and what gloo refuses.

mod common;

use common::*;
use gloo_core::model::Kind;
use gloo_core::translate::Translator;
use serde_json::{json, Value};

const RL: &str = "envoy.filters.http.ratelimit";
const TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit";

/// The rate limit server's upstream, as in `plugin_test.go` (`rl-upstream` in `ns`), without
/// `useHttp2`: gloo makes its cluster HTTP/2 anyway.
fn rl_upstream() -> String {
    resource(
        "gloo.solo.io/v1",
        "Upstream",
        "{name: rl-upstream, namespace: ns}",
        "static: {hosts: [{addr: ratelimit-default, port: 1234}]}",
    )
}

/// Settings `gloo-system.default` with `ratelimitServer` naming `rl-upstream` plus `extra`
/// fields (a YAML block, may be empty) and `spec` fields after it.
fn settings(server_extra: &str, spec_extra: &str) -> String {
    let mut spec =
        "ratelimitServer:\n  ratelimitServerRef: {name: rl-upstream, namespace: ns}\n".to_string();
    if !server_extra.is_empty() {
        spec.push_str(&reindent(server_extra, 2));
    }
    spec.push_str(spec_extra);
    resource(
        "gloo.solo.io/v1",
        "Settings",
        "{name: default, namespace: gloo-system}",
        &spec,
    )
}

/// The `route` of the virtual host's route `i`, as JSON.
fn route_action_json(t: &gloo_core::translate::Translation, vh: &str, i: usize) -> Value {
    vhost_json(t, vh)["routes"][i]["route"].clone()
}

/// The filter config `plugin_test.go` expects ("should have fail mode deny off by default"):
/// domain `custom`, `request_type: both`, 100ms, `envoy_grpc` to the server's cluster, V3.
fn filter_config(stage: u32) -> Value {
    json!({
        "@type": TYPE,
        "domain": "custom",
        "stage": stage,
        "requestType": "both",
        "timeout": "0.100s",
        "rateLimitService": {
            "grpcService": {"envoyGrpc": {"clusterName": "rl-upstream_ns"}},
            "transportApiVersion": "V3",
        },
    })
}

fn router() -> Value {
    json!({
        "name": "envoy.filters.http.router",
        "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
    })
}

// ----- the filter --------------------------------------------------------------------------

#[test]
fn envoy_api_header_values_example() {
    // docs/content/guides/security/rate_limiting/envoy/_index.md, "Header Values": descriptors
    // in the Settings, actions on the virtual host.
    let t = translate(&docs(&[
        &up(),
        &rl_upstream(),
        &settings(
            "",
            "ratelimit:\n  descriptors:\n  - key: type\n    rateLimit: {requestsPerUnit: 2, unit: MINUTE}\n",
        ),
        &limited_vs(
            "example",
            "ratelimit:\n  rateLimits:\n  - actions:\n    - requestHeaders: {descriptorKey: type, headerName: x-type}\n",
            "",
        ),
    ]));
    assert_no_rejections(&t);
    assert_eq!(
        http_filters(&t),
        [
            grpc_web_json(),
            json!({"name": RL, "typedConfig": filter_config(1)}),
            router()
        ]
    );
    assert_eq!(
        vhost_json(&t, "example")["rateLimits"],
        json!([{
            "stage": 1,
            "actions": [{"requestHeaders": {"headerName": "x-type", "descriptorKey": "type"}}],
        }])
    );
    // Routes without their own `ratelimit` get no `rate_limits` (the virtual host's apply).
    assert!(route_action_json(&t, "example", 0)
        .get("rateLimits")
        .is_none());
    assert!(route_action_json(&t, "example", 0)
        .get("includeVhRateLimits")
        .is_none());
    // The server's cluster is emitted, and HTTP/2 (Envoy calls it over gRPC).
    let cluster = proxy(&t).clusters["rl-upstream_ns"].resource().clone();
    let json = proxy_json(&t);
    let cluster_json = json["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "rl-upstream_ns")
        .cloned()
        .expect("rate limit server cluster");
    assert_eq!(cluster.name, "rl-upstream_ns");
    assert!(
        cluster_json["typedExtensionProtocolOptions"]
            ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["explicitHttpConfig"]
            .get("http2ProtocolOptions")
            .is_some(),
        "{cluster_json:#}"
    );
    // The server config: the Settings' descriptors for the domain every filter calls.
    let snapshot = gloo_core::snapshot::ConfigSnapshot::from_source(
        &snapshot(&docs(&[&settings(
            "",
            "ratelimit:\n  descriptors:\n  - key: type\n    rateLimit: {requestsPerUnit: 2, unit: MINUTE}\n",
        )])),
        &mut gloo_core::status::Reports::default(),
    );
    let configs = gloo_core::translate::rate_limit_server_configs(&snapshot);
    assert_eq!(
        serde_json::to_value(&configs).unwrap(),
        json!([{
            "domain": "custom",
            "descriptors": [{"key": "type", "rateLimit": {"unit": "MINUTE", "requestsPerUnit": 2}}],
        }])
    );
}

#[test]
fn before_auth_filter_as_plugin_test_expects_and_placed_before_jwt() {
    // plugin_test.go "should have fail mode deny off by default" (rateLimitBeforeAuth: true,
    // so stage 3) and "should be ordered before ext auth": gloo has no ext auth filter, so the
    // filter is checked against JWT (Gloo's AuthN stage) and local rate limiting (same stage,
    // by name).
    let t = translate(&docs(&[
        &up(),
        &rl_upstream(),
        &settings("rateLimitBeforeAuth: true\n", ""),
        &gateway(
            "{name: gateway-proxy, namespace: gloo-system}",
            "bindAddress: '::'\nbindPort: 8080\nhttpGateway:\n  options:\n    httpLocalRatelimit: {defaultLimit: {maxTokens: 5}}\n",
        ),
        &limited_vs(
            "default",
            "ratelimit:\n  rateLimits:\n  - actions: [{remoteAddress: {}}]\njwt:\n  providers:\n    p:\n      jwks: {local: {key: '{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}'}}\n",
            "",
        ),
    ]));
    assert_no_rejections(&t);
    assert_eq!(
        filter_names(&t),
        [
            "envoy.filters.http.local_ratelimit",
            RL,
            "envoy.filters.http.jwt_authn",
            // Gloo's default gRPC-Web filter, after auth.
            "envoy.filters.http.grpc_web",
            "envoy.filters.http.router"
        ]
    );
    assert_eq!(http_filters(&t)[1]["typedConfig"], filter_config(3));
    assert_eq!(
        vhost_json(&t, "default")["rateLimits"],
        json!([{"stage": 3, "actions": [{"remoteAddress": {}}]}])
    );
}

#[test]
fn after_auth_filter_runs_after_jwt() {
    // Gloo's `DefaultFilterStage` is `DuringStage(RateLimitStage)`: after AuthN and AuthZ.
    let t = translate(&docs(&[
        &up(),
        &rl_upstream(),
        &settings("", ""),
        &limited_vs(
            "default",
            "ratelimit:\n  rateLimits:\n  - actions: [{remoteAddress: {}}]\njwt:\n  providers:\n    p:\n      jwks: {local: {key: '{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}'}}\n",
            "",
        ),
    ]));
    assert_no_rejections(&t);
    assert_eq!(
        filter_names(&t),
        [
            "envoy.filters.http.jwt_authn",
            // Gloo's default gRPC-Web filter: `AfterStage(AuthZStage)`, before RateLimitStage.
            "envoy.filters.http.grpc_web",
            RL,
            "envoy.filters.http.router"
        ]
    );
}

#[test]
fn server_settings_fields_map_one_to_one() {
    // plugin_test.go: "should pass through authority to grpc service", "should have fail mode
    // deny on", "should custom timeout set"; and `enableXRatelimitHeaders` (util.go).
    let t = translate(&docs(&[
        &up(),
        &rl_upstream(),
        &settings(
            "requestTimeout: 1s\ndenyOnFail: true\nenableXRatelimitHeaders: true\ngrpcService: {authority: xyz}\n",
            "",
        ),
        &limited_vs(
            "default",
            "",
            "ratelimit:\n  rateLimits:\n  - actions: [{genericKey: {descriptorValue: per-minute}}]\n",
        ),
    ]));
    assert_no_rejections(&t);
    // After Gloo's default gRPC-Web filter.
    assert_eq!(
        http_filters(&t)[1]["typedConfig"],
        json!({
            "@type": TYPE,
            "domain": "custom",
            "stage": 1,
            "requestType": "both",
            "timeout": "1s",
            "failureModeDeny": true,
            "rateLimitService": {
                "grpcService": {"envoyGrpc": {"clusterName": "rl-upstream_ns", "authority": "xyz"}},
                "transportApiVersion": "V3",
            },
            "enableXRatelimitHeaders": "DRAFT_VERSION_03",
        })
    );
    // A route's `ratelimit` sets `include_vh_rate_limits` (false unless said otherwise).
    assert_eq!(
        route_action_json(&t, "default", 0)["rateLimits"],
        json!([{"stage": 1, "actions": [{"genericKey": {"descriptorValue": "per-minute"}}]}])
    );
    assert_eq!(
        route_action_json(&t, "default", 0)["includeVhRateLimits"],
        json!(false)
    );
    assert!(route_action_json(&t, "default", 1)
        .get("rateLimits")
        .is_none());
}

#[test]
fn no_filter_and_no_server_cluster_without_global_limits() {
    // The filter of a stage only where something uses it (removeUnusedFilters).
    let t = translate(&docs(&[
        &up(),
        &rl_upstream(),
        &settings("", ""),
        &limited_vs("default", "", ""),
    ]));
    assert_no_rejections(&t);
    assert_eq!(
        filter_names(&t),
        ["envoy.filters.http.grpc_web", "envoy.filters.http.router"]
    );
    assert!(!proxy(&t).clusters.contains_key("rl-upstream_ns"));
}

// ----- rate limits ---------------------------------------------------------------------------

#[test]
fn set_style_example_prepends_the_set_descriptor_key() {
    // docs/content/guides/security/rate_limiting/set/_index.md; raw_util_test.go "works with
    // set actions and request headers": `generic_key: solo.setDescriptor.uniqueValue` first,
    // `skip_if_absent` on every `request_headers`.
    let t = translate(&docs(&[
        &up(),
        &rl_upstream(),
        &settings(
            "",
            "ratelimit:\n  setDescriptors:\n  - simpleDescriptors:\n    - {key: type, value: a}\n    - {key: number, value: one}\n    rateLimit: {requestsPerUnit: 1, unit: MINUTE}\n",
        ),
        &limited_vs(
            "petstore",
            "ratelimit:\n  rateLimits:\n  - setActions:\n    - requestHeaders: {descriptorKey: number, headerName: x-number}\n    - requestHeaders: {descriptorKey: type, headerName: x-type}\n",
            "",
        ),
    ]));
    assert_no_rejections(&t);
    assert_eq!(
        vhost_json(&t, "petstore")["rateLimits"],
        json!([{
            "stage": 1,
            "actions": [
                {"genericKey": {"descriptorValue": "solo.setDescriptor.uniqueValue"}},
                {"requestHeaders": {"headerName": "x-number", "descriptorKey": "number", "skipIfAbsent": true}},
                {"requestHeaders": {"headerName": "x-type", "descriptorKey": "type", "skipIfAbsent": true}},
            ],
        }])
    );
}

#[test]
fn staged_options_get_their_stage_and_both_filters() {
    // staged_translators.go: `ratelimitEarly` → stage 3 (before auth), `ratelimitRegular` →
    // stage 1; both filters, the early one first. Tree-style entries before set-style ones.
    let t = translate(&docs(&[
        &up(),
        &rl_upstream(),
        &settings("", ""),
        &limited_vs(
            "default",
            "ratelimitEarly:\n  rateLimits:\n  - actions: [{remoteAddress: {}}]\n",
            "ratelimitRegular:\n  rateLimits:\n  - setActions: [{genericKey: {descriptorValue: gk}}]\n  - actions: [{destinationCluster: {}}, {sourceCluster: {}}]\n",
        ),
    ]));
    assert_no_rejections(&t);
    let filters = http_filters(&t);
    assert_eq!(
        filters,
        [
            json!({"name": RL, "typedConfig": filter_config(3)}),
            grpc_web_json(),
            json!({"name": RL, "typedConfig": filter_config(1)}),
            router()
        ]
    );
    assert_eq!(
        vhost_json(&t, "default")["rateLimits"],
        json!([{"stage": 3, "actions": [{"remoteAddress": {}}]}])
    );
    let route = route_action_json(&t, "default", 0);
    assert_eq!(
        route["rateLimits"],
        json!([
            {"stage": 1, "actions": [{"destinationCluster": {}}, {"sourceCluster": {}}]},
            {"stage": 1, "actions": [
                {"genericKey": {"descriptorValue": "solo.setDescriptor.uniqueValue"}},
                {"genericKey": {"descriptorValue": "gk"}},
            ]},
        ])
    );
    // Only `ratelimit` sets `include_vh_rate_limits`, as in Gloo.
    assert!(route.get("includeVhRateLimits").is_none());
}

#[test]
fn actions_convert_as_raw_util_does() {
    // raw_util_test.go: "should convert headermatch", "should convert metadata", "works with
    // regex"; plus a `limit` override from dynamic metadata.
    let t = translate(&docs(&[
        &up(),
        &rl_upstream(),
        &settings("", ""),
        &limited_vs(
            "default",
            "",
            "
ratelimit:
  includeVhRateLimits: true
  rateLimits:
  - actions:
    - headerValueMatch:
        descriptorValue: dv
        expectMatch: true
        headers:
        - {name: a, exactMatch: x, invertMatch: true}
        - {name: b, regexMatch: 'ab+'}
        - {name: c, rangeMatch: {start: 1, end: 5}}
        - {name: d, presentMatch: true}
        - {name: e, prefixMatch: pre}
        - {name: f, suffixMatch: suf}
    - metadata:
        descriptorKey: dk
        metadataKey: {key: envoy.filters.http.ext_authz, path: [{key: user}, {key: id}]}
        defaultValue: anonymous
        source: ROUTE_ENTRY
    limit:
      dynamicMetadata:
        metadataKey: {key: envoy.filters.http.ext_authz, path: [{key: limit}]}
",
        ),
    ]));
    assert_no_rejections(&t);
    let route = route_action_json(&t, "default", 0);
    assert_eq!(route["includeVhRateLimits"], json!(true));
    assert_eq!(
        route["rateLimits"],
        json!([{
            "stage": 1,
            "actions": [
                {"headerValueMatch": {
                    "descriptorValue": "dv",
                    "expectMatch": true,
                    "headers": [
                        {"name": "a", "exactMatch": "x", "invertMatch": true},
                        {"name": "b", "safeRegexMatch": {"regex": "ab+"}},
                        {"name": "c", "rangeMatch": {"start": "1", "end": "5"}},
                        {"name": "d", "presentMatch": true},
                        {"name": "e", "prefixMatch": "pre"},
                        {"name": "f", "suffixMatch": "suf"},
                    ],
                }},
                {"metadata": {
                    "descriptorKey": "dk",
                    "metadataKey": {"key": "envoy.filters.http.ext_authz", "path": [{"key": "user"}, {"key": "id"}]},
                    "defaultValue": "anonymous",
                    "source": "ROUTE_ENTRY",
                }},
            ],
            "limit": {"dynamicMetadata": {"metadataKey": {"key": "envoy.filters.http.ext_authz", "path": [{"key": "limit"}]}}},
        }])
    );
}

#[test]
fn rate_limit_before_auth_change_retranslates_cached_virtual_hosts() {
    // The stage of `ratelimit` follows Settings `rateLimitBeforeAuth`: a Settings edit alone
    // must change the (cached) virtual host.
    let vs = limited_vs(
        "default",
        "ratelimit:\n  rateLimits:\n  - actions: [{remoteAddress: {}}]\n",
        "",
    );
    let mut translator = Translator::new();
    let t = translate_with(
        &mut translator,
        &docs(&[&up(), &rl_upstream(), &settings("", ""), &vs]),
    );
    assert_eq!(vhost_json(&t, "default")["rateLimits"][0]["stage"], 1);
    let t = translate_with(
        &mut translator,
        &docs(&[
            &up(),
            &rl_upstream(),
            &settings("rateLimitBeforeAuth: true\n", ""),
            &vs,
        ]),
    );
    assert_eq!(vhost_json(&t, "default")["rateLimits"][0]["stage"], 3);
    assert_eq!(http_filters(&t)[0]["typedConfig"]["stage"], 3);
}

// ----- what gloo refuses ---------------------------------------------------------------------

const NO_SERVER: &str = "no rate limit server to enforce it: Settings spec.ratelimitServer.ratelimitServerRef is not set or names no Upstream";

#[test]
fn global_limits_without_a_rate_limit_server_are_rejected_naming_the_field() {
    let t = translate(&docs(&[
        &up(),
        &limited_vs(
            "default",
            "ratelimitEarly:\n  rateLimits:\n  - actions: [{remoteAddress: {}}]\n",
            "ratelimit:\n  rateLimits:\n  - actions: [{remoteAddress: {}}]\n",
        ),
        &rt(
            "{name: table, namespace: gloo-system}",
            "routes:\n- matchers: [{prefix: /t}]\n  options:\n    ratelimitRegular:\n      rateLimits:\n      - setActions: [{remoteAddress: {}}]\n  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}\n",
        ),
        &resource(
            "gateway.solo.io/v1",
            "RouteOption",
            "{name: ro, namespace: gloo-system}",
            "options: {ratelimit: {rateLimits: [{actions: [{remoteAddress: {}}]}]}}",
        ),
    ]));
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("default"),
        Rejected,
        &[
            &format!("spec.virtualHost.options.ratelimitEarly.rateLimits: {NO_SERVER}"),
            &format!("spec.virtualHost.routes[0].options.ratelimit.rateLimits: {NO_SERVER}"),
        ],
        &[],
    );
    assert_status(
        &t,
        Kind::RouteTable,
        &gs("table"),
        Rejected,
        &[&format!(
            "spec.routes[0].options.ratelimitRegular.rateLimits: {NO_SERVER}"
        )],
        &[],
    );
    assert_status(
        &t,
        Kind::RouteOption,
        &gs("ro"),
        Rejected,
        &[&format!("spec.options.ratelimit.rateLimits: {NO_SERVER}")],
        &[],
    );
    assert!(!proxy_json(&t).to_string().contains(RL));
}

#[test]
fn a_server_ref_naming_no_upstream_is_an_error_on_the_settings() {
    // Gloo's `ServerNotFound`; the routes that need the server are refused too.
    let t = translate(&docs(&[
        &up(),
        &settings("", ""),
        &limited_vs(
            "default",
            "ratelimit:\n  rateLimits:\n  - actions: [{remoteAddress: {}}]\n",
            "",
        ),
    ]));
    assert_status(
        &t,
        Kind::Settings,
        &gs("default"),
        Rejected,
        &["spec.ratelimitServer.ratelimitServerRef: upstream ns.rl-upstream not found"],
        &[],
    );
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("default"),
        Rejected,
        &[&format!(
            "spec.virtualHost.options.ratelimit.rateLimits: {NO_SERVER}"
        )],
        &[],
    );
}

#[test]
fn invalid_actions_are_rejected_naming_the_field() {
    // raw_util_test.go "Missing descriptor key in request headers", "Missing descriptorValue
    // in genericKey"; CEL and TOKEN limits are agentgateway's, Envoy has neither.
    let t = translate(&docs(&[
        &up(),
        &rl_upstream(),
        &settings("", ""),
        &limited_vs(
            "default",
            "",
            "
ratelimitEarly:
  rateLimits:
  - actions:
    - requestHeaders: {headerName: x-type}
    - genericKey: {}
  - setActions:
    - cel: {expression: 'true', key: k}
    type: TOKEN
",
        ),
    ]));
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("default"),
        Rejected,
        &[
            "spec.virtualHost.routes[0].options.ratelimitEarly.rateLimits[0].actions[0].requestHeaders: descriptorKey is required",
            "spec.virtualHost.routes[0].options.ratelimitEarly.rateLimits[0].actions[1].genericKey: descriptorValue is required",
            "spec.virtualHost.routes[0].options.ratelimitEarly.rateLimits[1].setActions[0].cel: CEL actions are for agentgateway only; Envoy has no such rate limit action",
            "spec.virtualHost.routes[0].options.ratelimitEarly.rateLimits[1].type: TOKEN limits are for agentgateway only; Envoy counts requests",
        ],
        &[],
    );
}

#[test]
fn invalid_settings_descriptors_are_an_error_and_left_out_of_the_server_config() {
    let yaml = docs(&[
        &rl_upstream(),
        &settings(
            "",
            "ratelimit:\n  descriptors:\n  - key: ''\n    rateLimit: {requestsPerUnit: 0, unit: MINUTE}\n",
        ),
    ]);
    let t = translate(&yaml);
    assert_status(
        &t,
        Kind::Settings,
        &gs("default"),
        Rejected,
        &[
            "spec.ratelimit.descriptors[0]: descriptor key must not be empty",
            "spec.ratelimit.descriptors[0].rateLimit: requestsPerUnit must be greater than 0",
        ],
        &[],
    );
    let snapshot = gloo_core::snapshot::ConfigSnapshot::from_source(
        &snapshot(&yaml),
        &mut gloo_core::status::Reports::default(),
    );
    assert!(gloo_core::translate::rate_limit_server_configs(&snapshot).is_empty());
}

// ----- RateLimitConfig references ------------------------------------------------------------

/// The RateLimitConfig of docs/content/guides/security/rate_limiting/setup.md ("In the
/// RateLimitConfig resource").
fn my_rate_limit_policy(extra: &str) -> String {
    resource(
        "ratelimit.solo.io/v1alpha1",
        "RateLimitConfig",
        "{name: my-rate-limit-policy, namespace: gloo-system}",
        &format!(
            "raw:\n  descriptors:\n  - key: generic_key\n    value: counter\n    rateLimit: {{requestsPerUnit: 1, unit: MINUTE}}\n  rateLimits:\n  - actions:\n    - genericKey: {{descriptorValue: counter}}\n{extra}"
        ),
    )
}

const POLICY_REF: &str =
    "rateLimitConfigs:\n  refs:\n  - name: my-rate-limit-policy\n    namespace: gloo-system\n";

#[test]
fn rate_limit_config_example_on_host_and_route() {
    // setup.md: the policy referenced from the virtual host ("All routes in the virtual host")
    // and from a route ("Per route"). Its actions are scoped by `generic_key:
    // gloo-system.my-rate-limit-policy`, at Gloo's `CrdRateLimitStage` (2), domain `crd`.
    let t = translate(&docs(&[
        &up(),
        &rl_upstream(),
        &settings("", ""),
        &my_rate_limit_policy(""),
        &limited_vs("default", POLICY_REF, POLICY_REF),
    ]));
    assert_no_rejections(&t);
    let mut crd_filter = filter_config(2);
    crd_filter["domain"] = json!("crd");
    assert_eq!(
        http_filters(&t),
        [
            grpc_web_json(),
            json!({"name": RL, "typedConfig": crd_filter}),
            router()
        ]
    );
    let expected = json!([{
        "stage": 2,
        "actions": [
            {"genericKey": {"descriptorValue": "gloo-system.my-rate-limit-policy"}},
            {"genericKey": {"descriptorValue": "counter"}},
        ],
    }]);
    assert_eq!(vhost_json(&t, "default")["rateLimits"], expected);
    assert_eq!(route_action_json(&t, "default", 0)["rateLimits"], expected);
    // The server config scopes the descriptors the same way.
    let snapshot = gloo_core::snapshot::ConfigSnapshot::from_source(
        &snapshot(&docs(&[&my_rate_limit_policy("")])),
        &mut gloo_core::status::Reports::default(),
    );
    assert_eq!(
        serde_json::to_value(gloo_core::translate::rate_limit_server_configs(&snapshot)).unwrap(),
        json!([{
            "domain": "crd",
            "descriptors": [{
                "key": "generic_key",
                "value": "gloo-system.my-rate-limit-policy",
                "descriptors": [{"key": "generic_key", "value": "counter", "rateLimit": {"unit": "MINUTE", "requestsPerUnit": 1}}],
            }],
        }])
    );
}

#[test]
fn early_config_refs_with_set_actions_run_before_auth() {
    // staged_translators.go: `rateLimitEarlyConfigs` → `CrdRateLimitStageBeforeAuth` (4); set
    // actions get the set-style marker, then the config's scope.
    let set = "  - setActions:\n    - requestHeaders: {descriptorKey: type, headerName: x-type}\n  setDescriptors:\n  - simpleDescriptors: [{key: type, value: a}]\n    rateLimit: {requestsPerUnit: 1, unit: MINUTE}\n";
    let t = translate(&docs(&[
        &up(),
        &rl_upstream(),
        &settings("", ""),
        &my_rate_limit_policy(set),
        &limited_vs(
            "default",
            "rateLimitEarlyConfigs:\n  refs: [{name: my-rate-limit-policy, namespace: gloo-system}]\n",
            "",
        ),
    ]));
    assert_no_rejections(&t);
    assert_eq!(http_filters(&t)[0]["typedConfig"]["stage"], 4);
    assert_eq!(http_filters(&t)[0]["typedConfig"]["domain"], "crd");
    assert_eq!(
        vhost_json(&t, "default")["rateLimits"],
        json!([
            {"stage": 4, "actions": [
                {"genericKey": {"descriptorValue": "gloo-system.my-rate-limit-policy"}},
                {"genericKey": {"descriptorValue": "counter"}},
            ]},
            {"stage": 4, "actions": [
                {"genericKey": {"descriptorValue": "solo.setDescriptor.uniqueValue"}},
                {"genericKey": {"descriptorValue": "gloo-system.my-rate-limit-policy"}},
                {"requestHeaders": {"headerName": "x-type", "descriptorKey": "type", "skipIfAbsent": true}},
            ]},
        ])
    );
    let snapshot = gloo_core::snapshot::ConfigSnapshot::from_source(
        &snapshot(&docs(&[&my_rate_limit_policy(set)])),
        &mut gloo_core::status::Reports::default(),
    );
    let configs =
        serde_json::to_value(gloo_core::translate::rate_limit_server_configs(&snapshot)).unwrap();
    assert_eq!(
        configs[0]["setDescriptors"],
        json!([{
            "simpleDescriptors": [
                {"key": "generic_key", "value": "gloo-system.my-rate-limit-policy"},
                {"key": "type", "value": "a"},
            ],
            "rateLimit": {"unit": "MINUTE", "requestsPerUnit": 1},
        }])
    );
}

#[test]
fn references_to_missing_or_invalid_configs_are_rejected_naming_the_ref() {
    // Gloo's `ConfigNotFoundErr` and `ReferencedConfigErr`; a reference without namespace
    // finds nothing, as in Gloo.
    let t = translate(&docs(&[
        &up(),
        &rl_upstream(),
        &settings("", ""),
        &resource(
            "ratelimit.solo.io/v1alpha1",
            "RateLimitConfig",
            "{name: broken, namespace: gloo-system}",
            "raw: {rateLimits: [{actions: []}]}",
        ),
        &limited_vs(
            "default",
            "rateLimitConfigs:\n  refs:\n  - {name: not, namespace: existing}\n  - {name: broken, namespace: gloo-system}\n",
            "rateLimitRegularConfigs:\n  refs: [{name: my-rate-limit-policy}]\n",
        ),
    ]));
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("default"),
        Rejected,
        &[
            "spec.virtualHost.options.rateLimitConfigs.refs[0]: could not find RateLimitConfig resource with name [not] in namespace [existing]",
            "spec.virtualHost.options.rateLimitConfigs.refs[1]: failed to process RateLimitConfig resource with name [broken] in namespace [gloo-system]: it is invalid (see its status)",
            "spec.virtualHost.routes[0].options.rateLimitRegularConfigs.refs[0]: could not find RateLimitConfig resource with name [my-rate-limit-policy] in namespace []",
        ],
        &[],
    );
    assert_eq!(
        status(&t, Kind::RateLimitConfig, &gs("broken")).state,
        Rejected
    );
}

#[test]
fn config_refs_without_a_server_are_rejected_naming_the_field() {
    let t = translate(&docs(&[
        &up(),
        &my_rate_limit_policy(""),
        &limited_vs("default", POLICY_REF, ""),
    ]));
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("default"),
        Rejected,
        &[&format!(
            "spec.virtualHost.options.rateLimitConfigs: {NO_SERVER}"
        )],
        &[],
    );
}

#[test]
fn a_rate_limit_config_edit_retranslates_the_hosts_that_reference_it() {
    let mut translator = Translator::new();
    let base = [up(), rl_upstream(), settings("", "")];
    let vs = limited_vs("default", POLICY_REF, "");
    let t = translate_with(
        &mut translator,
        &docs(&[&base[0], &base[1], &base[2], &my_rate_limit_policy(""), &vs]),
    );
    assert_eq!(
        vhost_json(&t, "default")["rateLimits"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let t = translate_with(
        &mut translator,
        &docs(&[
            &base[0],
            &base[1],
            &base[2],
            &my_rate_limit_policy("  - actions: [{remoteAddress: {}}]\n"),
            &vs,
        ]),
    );
    assert_no_rejections(&t);
    assert_eq!(
        vhost_json(&t, "default")["rateLimits"][1],
        json!({"stage": 2, "actions": [
            {"genericKey": {"descriptorValue": "gloo-system.my-rate-limit-policy"}},
            {"remoteAddress": {}},
        ]})
    );
}

#[test]
fn rate_limits_on_a_route_that_does_not_route_are_rejected() {
    // plugin.go: "cannot apply rate limits without a route action".
    let t = translate(&docs(&[
        &up(),
        &rl_upstream(),
        &settings("", ""),
        &vs(
            "default",
            "domains: ['*']\nroutes:\n- matchers: [{prefix: /}]\n  options:\n    ratelimit: {rateLimits: [{actions: [{remoteAddress: {}}]}]}\n  directResponseAction: {status: 200}\n",
        ),
    ]));
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("default"),
        Rejected,
        &["spec.virtualHost.routes[0].options.ratelimit.rateLimits: cannot apply rate limits without a route action"],
        &[],
    );
}

#[test]
fn a_listener_rate_limit_server_is_refused_rather_than_ignored() {
    // Gloo lets `httpGateway.options.ratelimitServer` override the Settings; gloo reads the
    // Settings only, so the override is refused rather than silently ignored.
    let t = translate(&docs(&[
        &up(),
        &gateway(
            "{name: gw, namespace: gloo-system}",
            "bindPort: 8080\nhttpGateway: {options: {ratelimitServer: {ratelimitServerRef: {name: rl-upstream, namespace: ns}}}}\n",
        ),
    ]));
    assert_status(
        &t,
        Kind::Gateway,
        &gs("gw"),
        Rejected,
        &["spec.httpGateway.options.ratelimitServer: gloo does not enforce this option yet, so it is rejected rather than served without it"],
        &[],
    );
}

#[test]
fn option_resources_with_invalid_rate_limits_refuse_what_uses_them() {
    // Applying the rest of such an option resource would serve the routes without its limits.
    let bad =
        "options: {ratelimit: {rateLimits: [{actions: [{requestHeaders: {headerName: x-type}}]}]}}";
    let t = translate(&docs(&[
        &up(),
        &rl_upstream(),
        &settings("", ""),
        &resource(
            "gateway.solo.io/v1",
            "RouteOption",
            "{name: ro, namespace: gloo-system}",
            bad,
        ),
        &resource(
            "gateway.solo.io/v1",
            "VirtualHostOption",
            "{name: vho, namespace: gloo-system}",
            bad,
        ),
        &vs(
            "routes",
            "domains: [routes.example]\nroutes:\n- matchers: [{prefix: /}]\n  optionsConfigRefs: {delegateOptions: [{name: ro}]}\n  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}\n",
        ),
        &vs(
            "host",
            "domains: [host.example]\noptionsConfigRefs: {delegateOptions: [{name: vho}]}\nroutes:\n- matchers: [{prefix: /}]\n  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}\n",
        ),
    ]));
    assert_status(
        &t,
        Kind::RouteOption,
        &gs("ro"),
        Rejected,
        &["spec.options.ratelimit.rateLimits[0].actions[0].requestHeaders: descriptorKey is required"],
        &[],
    );
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("routes"),
        Rejected,
        &["spec.virtualHost.routes[0].optionsConfigRefs.delegateOptions[0]: RouteOption gloo-system.ro sets invalid rate limits; the route answers 503 rather than being served without them"],
        &[],
    );
    let routes = vhost_routes(route_config(&t), "gloo-system_routes");
    match &routes[0].action {
        Some(envoy_types::pb::envoy::config::route::v3::route::Action::DirectResponse(d)) => {
            assert_eq!(d.status, 503)
        }
        other => panic!("expected a 503 direct response, got {other:?}"),
    }
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("host"),
        Rejected,
        &["spec.virtualHost.optionsConfigRefs.delegateOptions[0]: VirtualHostOption gloo-system.vho sets invalid rate limits; the virtual host serves no routes rather than serving them without"],
        &[],
    );
    assert!(vhost_routes(route_config(&t), "gloo-system_host").is_empty());
}

/// [`vs_with_options`] on `*`.
fn limited_vs(name: &str, vh_options: &str, route_options: &str) -> String {
    vs_with_options(name, "*", vh_options, route_options)
}

// ----- basic rate limits (`ratelimitBasic`) --------------------------------------------------

const BASIC: &str = "ratelimitBasic:\n  authorizedLimits: {requestsPerUnit: 200, unit: MINUTE}\n  anonymousLimits: {requestsPerUnit: 1000, unit: HOUR}\n";

/// Gloo's basic rate limits of `name` (its `generateEnvoyConfigForVhost`, at stage 0), the
/// user id read from `header`.
fn basic_rate_limits(name: &str, header: &str) -> Value {
    let present = json!([{"name": header, "presentMatch": true}]);
    json!([
        {"stage": 0, "actions": [
            {"genericKey": {"descriptorValue": name}},
            {"headerValueMatch": {"descriptorValue": "is-authenticated", "expectMatch": true, "headers": present}},
            {"requestHeaders": {"headerName": header, "descriptorKey": "userid"}},
        ]},
        {"stage": 0, "actions": [
            {"genericKey": {"descriptorValue": name}},
            {"headerValueMatch": {"descriptorValue": "not-authenticated", "expectMatch": false, "headers": present}},
            {"remoteAddress": {}},
        ]},
    ])
}

fn ingress_filter() -> Value {
    let mut config = filter_config(0);
    config["domain"] = json!("ingress");
    config.as_object_mut().expect("object").remove("stage");
    json!({"name": RL, "typedConfig": config})
}

#[test]
fn basic_limits_on_a_virtual_host_and_a_named_route_as_gloo_translates_them() {
    // The simple rate limiting guide (docs/content/guides/security/rate_limiting/simple):
    // authorized requests per user id (the header ext auth sets), anonymous ones per client
    // address; Gloo's ingress translator at stage 0, domain `ingress`, after auth.
    let vhost = format!(
        "domains: ['*']\noptions:\n{}routes:\n- matchers: [{{prefix: /named}}]\n  name: example-route\n  options:\n    ratelimitBasic: {{anonymousLimits: {{requestsPerUnit: 5, unit: SECOND}}}}\n  routeAction: {{single: {{upstream: {{name: up, namespace: gloo-system}}}}}}\n- matchers: [{{prefix: /}}]\n  routeAction: {{single: {{upstream: {{name: up, namespace: gloo-system}}}}}}\n",
        reindent(BASIC, 2)
    );
    let t = translate(&docs(&[
        &up(),
        &rl_upstream(),
        &settings("", ""),
        &vs("default", &vhost),
    ]));
    assert_no_rejections(&t);
    assert_eq!(
        http_filters(&t),
        [grpc_web_json(), ingress_filter(), router()]
    );
    assert_eq!(
        vhost_json(&t, "default")["rateLimits"],
        basic_rate_limits("gloo-system.default", "x-user-id")
    );
    // The route's own basic limits, scoped by its Gloo name; it has rate limits, so the
    // virtual host's do not apply to it (Envoy's default `OVERRIDE`).
    let route = route_action_json(&t, "default", 0);
    assert_eq!(
        route["rateLimits"],
        basic_rate_limits("vs:gloo-system_default_route:example-route", "x-user-id")
    );
    assert!(route.get("includeVhRateLimits").is_none());
    assert!(route_action_json(&t, "default", 1)
        .get("rateLimits")
        .is_none());

    // What the rate limit server loads, from the translation and from the snapshot alike.
    let expected = json!([{
        "domain": "ingress",
        "descriptors": [
            {"key": "generic_key", "value": "gloo-system.default", "descriptors": [
                {"key": "header_match", "value": "not-authenticated", "descriptors": [
                    {"key": "remote_address", "rateLimit": {"unit": "HOUR", "requestsPerUnit": 1000}},
                ]},
                {"key": "header_match", "value": "is-authenticated", "descriptors": [
                    {"key": "userid", "rateLimit": {"unit": "MINUTE", "requestsPerUnit": 200}},
                ]},
            ]},
            {"key": "generic_key", "value": "vs:gloo-system_default_route:example-route", "descriptors": [
                {"key": "header_match", "value": "not-authenticated", "descriptors": [
                    {"key": "remote_address", "rateLimit": {"unit": "SECOND", "requestsPerUnit": 5}},
                ]},
            ]},
        ],
    }]);
    assert_eq!(
        serde_json::to_value(&t.rate_limit_server_configs).unwrap(),
        expected
    );
    let snap = gloo_core::snapshot::ConfigSnapshot::from_source(
        &snapshot(&docs(&[
            &up(),
            &rl_upstream(),
            &settings("", ""),
            &vs("default", &vhost),
        ])),
        &mut gloo_core::status::Reports::default(),
    );
    assert_eq!(
        serde_json::to_value(gloo_core::translate::rate_limit_server_configs(&snap)).unwrap(),
        expected
    );
}

#[test]
fn the_user_id_header_is_the_one_ext_auth_settings_name() {
    let t = translate(&docs(&[
        &up(),
        &rl_upstream(),
        &settings(
            "",
            "extauth:\n  extauthzServerRef: {name: up, namespace: gloo-system}\n  userIdHeader: x-authenticated-user\n",
        ),
        &limited_vs("default", BASIC, ""),
    ]));
    assert_no_rejections(&t);
    assert_eq!(
        vhost_json(&t, "default")["rateLimits"],
        basic_rate_limits("gloo-system.default", "x-authenticated-user")
    );
}

#[test]
fn a_route_with_basic_limits_must_be_named_on_its_branch() {
    // Gloo scopes a route's basic limits by its name ("MissingNameErr"); a route table route
    // is named when the route delegating to it is.
    let table = rt(
        "{name: children, namespace: gloo-system}",
        "routes:\n- matchers: [{prefix: /parent/child}]\n  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}\n",
    );
    let t = translate(&docs(&[
        &up(),
        &rl_upstream(),
        &settings("", ""),
        &table,
        &vs(
            "unnamed",
            "domains: [unnamed.example]\nroutes:\n- matchers: [{prefix: /}]\n  options:\n    ratelimitBasic: {anonymousLimits: {requestsPerUnit: 1, unit: MINUTE}}\n  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}\n",
        ),
        &vs(
            "delegating",
            "domains: [delegating.example]\nroutes:\n- matchers: [{prefix: /parent}]\n  name: parent\n  options:\n    ratelimitBasic: {anonymousLimits: {requestsPerUnit: 1, unit: MINUTE}}\n  delegateAction: {ref: {name: children, namespace: gloo-system}}\n",
        ),
    ]));
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("unnamed"),
        Rejected,
        &["spec.virtualHost.routes[0].options.ratelimitBasic: a route with basic rate limits must be named (set `name` on it or on a route delegating to it); the route answers 503 rather than being served without them"],
        &[],
    );
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("delegating"),
        Accepted,
        &[],
        &[],
    );
    assert_eq!(
        route_action_json(&t, "delegating", 0)["rateLimits"],
        basic_rate_limits(
            "vs:gloo-system_delegating_route:parent_rt:gloo-system_children_route:<unnamed-0>",
            "x-user-id"
        )
    );
}

#[test]
fn basic_limits_need_a_server_valid_limits_and_limiting_after_auth() {
    // Without a server; with an invalid limit; with `rateLimitBeforeAuth` (Gloo's
    // `RateLimitAuthOrderingConflict`: basic limits depend on auth).
    let t = translate(&docs(&[
        &up(),
        &limited_vs("default", BASIC, ""),
        &limited_vs(
            "bad",
            "ratelimitBasic: {anonymousLimits: {requestsPerUnit: 0}}\n",
            "",
        ),
    ]));
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("default"),
        Rejected,
        &["spec.virtualHost.options.ratelimitBasic: no rate limit server to enforce it: Settings spec.ratelimitServer.ratelimitServerRef is not set or names no Upstream"],
        &[],
    );
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("bad"),
        Rejected,
        &[
            "spec.virtualHost.options.ratelimitBasic.anonymousLimits: unit is required (SECOND, MINUTE, HOUR, DAY, WEEK, MONTH or YEAR)",
            "spec.virtualHost.options.ratelimitBasic.anonymousLimits: requestsPerUnit must be greater than 0",
            "spec.virtualHost.options.ratelimitBasic: no rate limit server to enforce it: Settings spec.ratelimitServer.ratelimitServerRef is not set or names no Upstream",
        ],
        &[],
    );
    let t = translate(&docs(&[
        &up(),
        &rl_upstream(),
        &settings("rateLimitBeforeAuth: true\n", ""),
        &limited_vs("default", BASIC, ""),
    ]));
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("default"),
        Rejected,
        &["spec.virtualHost.options.ratelimitBasic: rate limiting specified to happen before auth, but auth-based rate limits provided in the virtual host (Settings spec.ratelimitServer.rateLimitBeforeAuth is true)"],
        &[],
    );
}

#[test]
fn filters_of_one_stage_are_ordered_by_domain_as_gloo_sorts_them() {
    // Gloo sorts the filters of one filter stage by name, type URL, then encoded config: the
    // domain comes first, so `crd` before `custom` before `ingress`, whatever the stage number.
    let t = translate(&docs(&[
        &up(),
        &rl_upstream(),
        &settings("", ""),
        &my_rate_limit_policy(""),
        &limited_vs(
            "default",
            &format!(
                "{BASIC}ratelimitEarly:\n  rateLimits: [{{actions: [{{remoteAddress: {{}}}}]}}]\nratelimitRegular:\n  rateLimits: [{{actions: [{{remoteAddress: {{}}}}]}}]\n{}rateLimitEarlyConfigs:\n  refs: [{{name: my-rate-limit-policy, namespace: gloo-system}}]\n",
                POLICY_REF
            ),
            "",
        ),
    ]));
    assert_no_rejections(&t);
    let stages: Vec<(String, u64)> = http_filters(&t)
        .iter()
        .filter(|f| f["name"] == RL)
        .map(|f| {
            (
                f["typedConfig"]["domain"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                f["typedConfig"]["stage"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        stages,
        [
            ("crd".to_string(), 4),
            ("custom".to_string(), 3),
            ("crd".to_string(), 2),
            ("custom".to_string(), 1),
            ("ingress".to_string(), 0),
        ]
    );
}

#[test]
fn a_rejected_edit_keeps_the_last_good_descriptors_for_the_rate_limit_server() {
    // The virtual hosts that use a rejected RateLimitConfig (or the Settings' descriptors)
    // keep serving their last good version, so the server keeps the matching descriptors.
    let mut translator = Translator::new();
    let settings_with = |n: u32| {
        settings(
            "",
            &format!(
                "ratelimit:\n  descriptors:\n  - key: generic_key\n    value: per-minute\n    rateLimit: {{requestsPerUnit: {n}, unit: MINUTE}}\n"
            ),
        )
    };
    let vs = limited_vs("default", POLICY_REF, "");
    let configs = |t: &gloo_core::translate::Translation| {
        serde_json::to_value(&t.rate_limit_server_configs).unwrap()
    };
    let good = translate_with(
        &mut translator,
        &docs(&[
            &up(),
            &rl_upstream(),
            &settings_with(5),
            &my_rate_limit_policy(""),
            &vs,
        ]),
    );
    assert_no_rejections(&good);
    let expected = configs(&good);
    assert_eq!(expected[0]["domain"], "custom");
    assert_eq!(expected[1]["domain"], "crd");
    // Both sources broken: both Rejected, the server config unchanged.
    let broken_policy =
        my_rate_limit_policy("").replace("requestsPerUnit: 1", "requestsPerUnit: 0");
    let bad = translate_with(
        &mut translator,
        &docs(&[
            &up(),
            &rl_upstream(),
            &settings_with(0),
            &broken_policy,
            &vs,
        ]),
    );
    assert_eq!(status(&bad, Kind::Settings, &gs("default")).state, Rejected);
    assert_eq!(configs(&bad), expected);
    // A good edit applies; a removed RateLimitConfig is forgotten.
    let edited = translate_with(
        &mut translator,
        &docs(&[
            &up(),
            &rl_upstream(),
            &settings_with(7),
            &limited_vs("default", "", ""),
        ]),
    );
    assert_no_rejections(&edited);
    assert_eq!(
        configs(&edited),
        json!([{
            "domain": "custom",
            "descriptors": [{"key": "generic_key", "value": "per-minute", "rateLimit": {"unit": "MINUTE", "requestsPerUnit": 7}}],
        }])
    );
}
