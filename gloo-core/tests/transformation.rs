//! Transformations, field for field as Gloo's transformation plugin emits them
//! (`projects/gloo/pkg/plugins/transformation/plugin.go`), for the examples of Gloo's
//! transformation docs, and what Gloo refuses.

mod common;

use common::*;
use gloo_core::model::Kind;
use gloo_core::status::State;
use serde_json::{json, Value};

/// A VirtualService `gloo-system.<name>` with vhost options `vh_options` (YAML block, may be
/// empty) and one route `/` with `route_options` (may be empty).
fn transformed_vs(name: &str, vh_options: &str, route_options: &str) -> String {
    let mut vhost = format!("domains: ['{name}.example']\n");
    if !vh_options.is_empty() {
        vhost.push_str(&format!("options:\n{}", reindent(vh_options, 2)));
    }
    vhost.push_str("routes:\n- matchers: [{prefix: /}]\n");
    if !route_options.is_empty() {
        vhost.push_str(&format!("  options:\n{}", reindent(route_options, 4)));
    }
    vhost.push_str("  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}\n");
    vs(name, &vhost)
}

/// The `RouteTransformations` inside an optional `FilterConfig` wrapper.
fn wrapped(config: Value) -> Value {
    json!({
        "io.solo.transformation": {
            "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig",
            "config": config,
            "isOptional": true,
        }
    })
}

fn route_transformations(transformations: Value) -> Value {
    let mut v = transformations;
    v["@type"] = json!("type.googleapis.com/envoy.api.v2.filter.http.RouteTransformations");
    v
}

// docs/content/guides/traffic_management/request_processing/transformations/extract_query_params
#[test]
fn the_deprecated_transformations_become_the_legacy_fields_and_one_match_all_rule() {
    let t = translate(&docs(&[
        &up(),
        &transformed_vs(
            "legacy",
            "",
            "
transformations:
  clearRouteCache: true
  requestTransformation:
    transformationTemplate:
      extractors:
        foo:
          header: ':path'
          regex: '(.*foo=([^&]*).*)'
          subgroup: 2
      headers:
        foo:
          text: '{{ foo }}'
",
        ),
    ]));
    assert_no_rejections(&t);
    let template = json!({
        "transformationTemplate": {
            "extractors": {"foo": {"header": ":path", "regex": "(.*foo=([^&]*).*)", "subgroup": 2}},
            "headers": {"foo": {"text": "{{ foo }}"}},
        }
    });
    let route = &vhost_json(&t, "legacy")["routes"][0];
    assert_eq!(
        route["typedPerFilterConfig"],
        wrapped(route_transformations(json!({
            "requestTransformation": template,
            "clearRouteCache": true,
            "transformations": [{
                "requestMatch": {"requestTransformation": template, "clearRouteCache": true}
            }],
        })))
    );
    // Only the regular stage's filter, optional, right before the router (after Gloo's default
    // gRPC-Web filter, the same stage by name).
    let filters = http_filters(&t);
    let names: Vec<&str> = filters
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "envoy.filters.http.grpc_web",
            "io.solo.transformation",
            "envoy.filters.http.router"
        ]
    );
    assert_eq!(
        filters[1],
        json!({
            "name": "io.solo.transformation",
            "typedConfig": {"@type": "type.googleapis.com/envoy.api.v2.filter.http.FilterTransformations"},
            "isOptional": true,
        })
    );
}

// docs/content/guides/traffic_management/request_processing/transformations/debug_logging
// (stages, response matchers, logRequestResponseInfo) with Gloo's ordering: per stage, the
// response rules first, then the request rules; early is stage 1.
#[test]
fn staged_transformations_list_each_stage_with_its_number_and_log_every_transformation() {
    let t = translate(&docs(&[
        &up(),
        &transformed_vs(
            "staged",
            "
stagedTransformations:
  logRequestResponseInfo: true
  escapeCharacters: true
  early:
    requestTransforms:
    - requestTransformation:
        transformationTemplate:
          headers:
            x-early-request-header:
              text: early
  regular:
    requestTransforms:
    - matcher:
        prefix: /parent
        headers: [{name: x-a, value: 'b.*', regex: true}, {name: x-present}]
        methods: [GET, POST]
      clearRouteCache: true
      requestTransformation:
        transformationTemplate:
          escapeCharacters: false
          parseBodyBehavior: DontParse
          headers:
            x-regular-request-header:
              text: regular
    responseTransforms:
    - matchers:
      - name: ':status'
        value: '404'
      responseCodeDetails: route_not_found
      responseTransformation:
        headerBodyTransform:
          addRequestMetadata: true
",
            "",
        ),
    ]));
    assert_no_rejections(&t);
    let logged = json!(true);
    assert_eq!(
        vhost_json(&t, "staged")["typedPerFilterConfig"],
        wrapped(route_transformations(json!({
            "transformations": [
                {
                    "stage": 1,
                    "requestMatch": {"requestTransformation": {
                        "transformationTemplate": {
                            "headers": {"x-early-request-header": {"text": "early"}},
                            "escapeCharacters": true,
                        },
                        "logRequestResponseInfo": logged,
                    }},
                },
                {
                    "responseMatch": {
                        "match": {
                            "headers": [{"name": ":status", "exactMatch": "404"}],
                            "responseCodeDetails": {"exact": "route_not_found"},
                        },
                        "responseTransformation": {
                            "headerBodyTransform": {"addRequestMetadata": true},
                            "logRequestResponseInfo": logged,
                        },
                    },
                },
                {
                    "requestMatch": {
                        "match": {
                            "prefix": "/parent",
                            "headers": [
                                {"name": "x-a", "safeRegexMatch": {"googleRe2": {}, "regex": "b.*"}},
                                {"name": "x-present", "presentMatch": true},
                                {"name": ":method", "safeRegexMatch": {"googleRe2": {}, "regex": "GET|POST"}},
                            ],
                        },
                        "requestTransformation": {
                            "transformationTemplate": {
                                "headers": {"x-regular-request-header": {"text": "regular"}},
                                "parseBodyBehavior": "DontParse",
                            },
                            "logRequestResponseInfo": logged,
                        },
                        "clearRouteCache": true,
                    },
                },
            ],
        })))
    );
    // The early stage's filter right after fault injection (nothing here injects faults, so
    // first), the regular one right before the router, after Gloo's default gRPC-Web filter
    // (the same stage, ordered by name).
    let filters = http_filters(&t);
    assert_eq!(filters.len(), 4, "{filters:#?}");
    assert_eq!(filters[0]["typedConfig"]["stage"], 1);
    assert_eq!(filters[1]["name"], "envoy.filters.http.grpc_web");
    assert_eq!(filters[2]["name"], "io.solo.transformation");
    assert_eq!(filters[2]["typedConfig"].get("stage"), None);
    assert_eq!(filters[3]["name"], "envoy.filters.http.router");
}

#[test]
fn the_transformation_filters_sit_after_fault_injection_and_after_auth() {
    let t = translate(&docs(&[
        &up(),
        &transformed_vs(
            "order",
            "jwt: {providers: {p: {jwks: {local: {key: '{\"kty\": \"oct\", \"k\": \"c2VjcmV0\"}'}}}}}",
            "
faults: {abort: {percentage: 1, httpStatus: 503}}
cors: {allowOrigin: ['https://a.example']}
stagedTransformations:
  early: {requestTransforms: [{requestTransformation: {transformationTemplate: {headers: {x-e: {text: e}}}}}]}
  regular: {requestTransforms: [{requestTransformation: {transformationTemplate: {headers: {x-r: {text: r}}}}}]}
",
        ),
    ]));
    assert_no_rejections(&t);
    let names: Vec<String> = http_filters(&t)
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect();
    let at = |name: &str| names.iter().position(|n| n == name).unwrap();
    let transformations: Vec<usize> = names
        .iter()
        .enumerate()
        .filter(|(_, n)| *n == "io.solo.transformation")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(transformations.len(), 2, "{names:?}");
    assert_eq!(
        transformations[0],
        at("envoy.filters.http.fault") + 1,
        "{names:?}"
    );
    assert!(
        transformations[0] < at("envoy.filters.http.cors"),
        "{names:?}"
    );
    assert!(
        transformations[1] > at("envoy.filters.http.jwt_authn"),
        "{names:?}"
    );
    assert_eq!(
        transformations[1] + 1,
        at("envoy.filters.http.router"),
        "{names:?}"
    );
}

// docs/content/guides/traffic_management/request_processing/transformations/_index.md
// (extractor modes, body template, dynamic metadata, mergeJsonKeys).
#[test]
fn template_fields_extraction_modes_and_body_transformations_are_carried_over() {
    let t = translate(&docs(&[
        &up(),
        &vs(
            "multi",
            "
domains: [multi.example]
routes:
- matchers: [{prefix: /}]
  options:
    stagedTransformations:
      regular:
        requestTransforms:
        - requestTransformation:
            transformationTemplate:
              extractors:
                FooToBar: {body: {}, regex: 'foo', mode: REPLACE_ALL, replacementText: 'bar'}
                first: {header: 'x-name', regex: '(\\w+) (\\w+)', subgroup: 1, mode: SINGLE_REPLACE, replacementText: 'X'}
              headersToAppend: [{key: x-a, value: {text: '{{ FooToBar }}'}}]
              headersToRemove: [x-gone]
              mergeJsonKeys:
                jsonKeys:
                  greeting: {tmpl: {text: '\"hi\"'}, overrideEmpty: true}
              dynamicMetadataValues:
              - {metadataNamespace: com.example, key: foo, value: {text: '{{ header(\"foo\") }}'}, jsonToProto: true}
              ignoreErrorOnParse: true
              advancedTemplates: false
  routeAction:
    multi:
      destinations:
      - weight: 1
        destination: {upstream: {name: up, namespace: gloo-system}}
        options:
          transformations:
            responseTransformation:
              transformationTemplate:
                passthrough: {}
                headers: {x-w: {text: w}}
",
        ),
    ]));
    assert_no_rejections(&t);
    let route = &vhost_json(&t, "multi")["routes"][0];
    let rule = &route["typedPerFilterConfig"]["io.solo.transformation"]["config"]
        ["transformations"][0]["requestMatch"]["requestTransformation"]["transformationTemplate"];
    assert_eq!(
        rule,
        &json!({
            "extractors": {
                "FooToBar": {"body": {}, "regex": "foo", "replacementText": "bar", "mode": "REPLACE_ALL"},
                "first": {"header": "x-name", "regex": "(\\w+) (\\w+)", "subgroup": 1, "replacementText": "X", "mode": "SINGLE_REPLACE"},
            },
            "headersToAppend": [{"key": "x-a", "value": {"text": "{{ FooToBar }}"}}],
            "headersToRemove": ["x-gone"],
            "mergeJsonKeys": {"jsonKeys": {"greeting": {"tmpl": {"text": "\"hi\""}, "overrideEmpty": true}}},
            "ignoreErrorOnParse": true,
            "dynamicMetadataValues": [{
                "metadataNamespace": "com.example", "key": "foo",
                "value": {"text": "{{ header(\"foo\") }}"}, "jsonToProto": true,
            }],
        })
    );
    let weighted = &route["route"]["weightedClusters"]["clusters"][0];
    let template =
        json!({"transformationTemplate": {"headers": {"x-w": {"text": "w"}}, "passthrough": {}}});
    assert_eq!(
        weighted["typedPerFilterConfig"],
        wrapped(route_transformations(json!({
            "responseTransformation": template,
            "transformations": [{"requestMatch": {"responseTransformation": template}}],
        })))
    );
}

#[test]
fn stages_replace_the_deprecated_field_only_when_regular_is_set() {
    let legacy = "transformations: {requestTransformation: {transformationTemplate: {headers: {x-l: {text: l}}}}}";
    let t = translate(&docs(&[
        &up(),
        &transformed_vs(
            "both",
            "",
            &format!("{legacy}\nstagedTransformations: {{regular: {{requestTransforms: [{{requestTransformation: {{transformationTemplate: {{headers: {{x-r: {{text: r}}}}}}}}}}]}}}}"),
        ),
        &transformed_vs(
            "early",
            "",
            &format!("{legacy}\nstagedTransformations: {{early: {{requestTransforms: [{{requestTransformation: {{transformationTemplate: {{headers: {{x-e: {{text: e}}}}}}}}}}]}}}}"),
        ),
    ]));
    assert_no_rejections(&t);
    let config = |name: &str| {
        vhost_json(&t, name)["routes"][0]["typedPerFilterConfig"]["io.solo.transformation"]
            ["config"]
            .clone()
    };
    let both = config("both");
    assert_eq!(both.get("requestTransformation"), None, "{both:#}");
    assert_eq!(both["transformations"].as_array().unwrap().len(), 1);
    assert_eq!(
        both["transformations"][0]["requestMatch"]["requestTransformation"]
            ["transformationTemplate"]["headers"],
        json!({"x-r": {"text": "r"}})
    );
    let early = config("early");
    let stages: Vec<Value> = early["transformations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.get("stage").cloned().unwrap_or(json!(0)))
        .collect();
    assert_eq!(stages, [json!(0), json!(1)], "{early:#}");
    assert!(early.get("requestTransformation").is_some());
}

#[test]
fn a_listener_without_transformations_gets_no_transformation_filter() {
    let t = translate(&docs(&[&up(), &transformed_vs("plain", "", "")]));
    assert!(http_filters(&t)
        .iter()
        .all(|f| f["name"] != "io.solo.transformation"));
}

#[test]
fn invalid_transformations_are_rejected_naming_the_field() {
    let t = translate(&docs(&[
        &up(),
        &transformed_vs(
            "bad",
            "
stagedTransformations:
  regular:
    requestTransforms:
    - matcher: {regex: '(unclosed'}
      requestTransformation:
        transformationTemplate:
          extractors:
            a: {header: ':path', regex: '(a)', subgroup: 2}
            b: {regex: '.*'}
            c: {header: x, regex: '.*', replacementText: y}
            d: {body: {}, regex: 'x', mode: REPLACE_ALL}
          headers: {'Bad Header': {text: x}}
          mergeJsonKeys: {jsonKeys: {a.b: {tmpl: {text: '1'}}}}
    - requestTransformation: {}
    responseTransforms:
    - matchers: [{name: ':status', value: '4[0-9', regex: true}]
",
            "transformations: {responseTransformation: {transformationTemplate: {body: {text: x}, passthrough: {}}}}",
        ),
    ]));
    let base = "spec.virtualHost.options.stagedTransformations.regular";
    let tmpl = format!("{base}.requestTransforms[0].requestTransformation.transformationTemplate");
    let st = status(&t, Kind::VirtualService, &gs("bad"));
    assert_eq!(st.state, State::Rejected, "{st:?}");
    let reason = st.errors.join("\n");
    for expected in [
        format!("{base}.requestTransforms[0].matcher.regex: invalid regex \"(unclosed\""),
        format!("{tmpl}.extractors[\"a\"].subgroup: 2 is beyond the regex's 1 capturing group(s)"),
        format!("{tmpl}.extractors[\"b\"]: no source: set header or body"),
        format!("{tmpl}.extractors[\"c\"].replacementText: replacement text should not be set in mode EXTRACT"),
        format!("{tmpl}.extractors[\"d\"].replacementText: replacement text must be set in mode REPLACE_ALL"),
        format!("{tmpl}.headers: invalid header name \"Bad Header\""),
        format!("{tmpl}.mergeJsonKeys.jsonKeys[\"a.b\"]: merge_json_keys key a.b contains a period"),
        format!("{base}.requestTransforms[1].requestTransformation: no transformation type"),
        format!("{base}.responseTransforms[0].matchers[0].value: invalid regex \"4[0-9\""),
        format!("{base}.responseTransforms[0].responseTransformation: required"),
        "spec.virtualHost.routes[0].options.transformations.responseTransformation.transformationTemplate: ".to_string(),
    ] {
        assert!(reason.contains(&expected), "missing {expected:?} in {reason}");
    }
    assert!(vhost_names(route_config(&t)).is_empty());
}

#[test]
fn a_rejected_route_option_with_transformations_is_not_applied() {
    let t = translate(&docs(&[
        &up(),
        &resource(
            "gateway.solo.io/v1",
            "RouteOption",
            "{name: ro, namespace: gloo-system}",
            "options: {stagedTransformations: {regular: {requestTransforms: [{requestTransformation: {}}]}}}",
        ),
        &vs(
            "uses",
            "
domains: [uses.example]
routes:
- matchers: [{prefix: /}]
  optionsConfigRefs: {delegateOptions: [{name: ro}]}
  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}
",
        ),
    ]));
    let st = status(&t, Kind::RouteOption, &gs("ro"));
    assert_eq!(st.state, State::Rejected, "{st:?}");
    let route = &vhost_json(&t, "uses")["routes"][0];
    assert_eq!(route.get("typedPerFilterConfig"), None, "{route:#}");
}

/// The `x-` header each request rule of a route's config sets, in order.
fn rule_headers(route: &Value) -> Vec<String> {
    route["typedPerFilterConfig"]["io.solo.transformation"]["config"]["transformations"]
        .as_array()
        .unwrap_or_else(|| panic!("no transformations in {route:#}"))
        .iter()
        .flat_map(|r| {
            r["requestMatch"]["requestTransformation"]["transformationTemplate"]["headers"]
                .as_object()
                .map(|h| h.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
        })
        .collect()
}

// docs/content/guides/traffic_management/request_processing/transformations/_index.md
// ("Inheriting transformations"): a route with `inheritTransformation` gets its parent's
// (the virtual host's, or the delegating route's) rules after its own.
#[test]
fn inherit_transformation_appends_the_parents_rules_after_the_routes_own() {
    let rule = |h: &str| {
        format!("{{requestTransformation: {{transformationTemplate: {{headers: {{{h}: {{text: v}}}}}}}}}}")
    };
    let t = translate(&docs(&[
        &up(),
        &rt(
            "{name: child, namespace: gloo-system}",
            &format!(
                "
routes:
- matchers: [{{prefix: /parent/inherits}}]
  options: {{stagedTransformations: {{inheritTransformation: true, regular: {{requestTransforms: [{}]}}}}}}
  routeAction: {{single: {{upstream: {{name: up, namespace: gloo-system}}}}}}
- matchers: [{{prefix: /parent/own}}]
  options: {{stagedTransformations: {{regular: {{requestTransforms: [{}]}}}}}}
  routeAction: {{single: {{upstream: {{name: up, namespace: gloo-system}}}}}}
",
                rule("x-grandchild"),
                rule("x-own"),
            ),
        ),
        &vs(
            "inherit",
            &format!(
                "
domains: [inherit.example]
options: {{stagedTransformations: {{regular: {{requestTransforms: [{}]}}}}}}
routes:
- matchers: [{{prefix: /parent}}]
  options: {{stagedTransformations: {{inheritTransformation: true, regular: {{requestTransforms: [{}]}}}}}}
  delegateAction: {{ref: {{name: child, namespace: gloo-system}}}}
- matchers: [{{prefix: /inherits}}]
  options: {{stagedTransformations: {{inheritTransformation: true, regular: {{requestTransforms: [{}]}}}}}}
  routeAction: {{single: {{upstream: {{name: up, namespace: gloo-system}}}}}}
- matchers: [{{prefix: /own}}]
  options: {{stagedTransformations: {{regular: {{requestTransforms: [{}]}}}}}}
  routeAction: {{single: {{upstream: {{name: up, namespace: gloo-system}}}}}}
",
                rule("x-vhost"),
                rule("x-parent"),
                rule("x-route"),
                rule("x-alone"),
            ),
        ),
    ]));
    assert_no_rejections(&t);
    let vhost = vhost_json(&t, "inherit");
    let routes = vhost["routes"].as_array().unwrap();
    let by_prefix = |prefix: &str| {
        routes
            .iter()
            .find(|r| r["match"]["prefix"] == prefix)
            .unwrap_or_else(|| panic!("no route {prefix} in {vhost:#}"))
    };
    // The delegating route inherited the virtual host's; its child inherits both.
    assert_eq!(
        rule_headers(by_prefix("/parent/inherits")),
        ["x-grandchild", "x-parent", "x-vhost"]
    );
    assert_eq!(rule_headers(by_prefix("/parent/own")), ["x-own"]);
    assert_eq!(rule_headers(by_prefix("/inherits")), ["x-route", "x-vhost"]);
    assert_eq!(rule_headers(by_prefix("/own")), ["x-alone"]);
}

#[test]
fn an_upstream_group_with_an_invalid_transformation_is_rejected_and_not_served_untransformed() {
    let t = translate(&docs(&[
        &up(),
        &resource(
            "gloo.solo.io/v1",
            "UpstreamGroup",
            "{name: group, namespace: gloo-system}",
            "destinations:\n- weight: 1\n  destination: {upstream: {name: up, namespace: gloo-system}}\n  options: {stagedTransformations: {regular: {requestTransforms: [{requestTransformation: {}}]}}}",
        ),
        &vs(
            "grouped",
            "
domains: [grouped.example]
routes:
- matchers: [{prefix: /}]
  routeAction: {upstreamGroup: {name: group, namespace: gloo-system}}
",
        ),
    ]));
    assert_status(
        &t,
        Kind::UpstreamGroup,
        &gs("group"),
        State::Rejected,
        &["spec.destinations[0].options.stagedTransformations.regular.requestTransforms[0].requestTransformation: no transformation type: set transformationTemplate or headerBodyTransform"],
        &[],
    );
    // A rejected group is not used: the route has no destination (Envoy answers 503), so it
    // is never served without the transformation, and the rule without a type never reaches
    // the data plane.
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("grouped"),
        State::Warning,
        &[],
        &["spec.virtualHost.routes[0].routeAction.upstreamGroup: UpstreamGroup gloo-system.group is rejected; the route answers 503 until it is fixed"],
    );
    let route = &vhost_json(&t, "grouped")["routes"][0];
    assert_eq!(
        route["route"],
        json!({"cluster": "gloo-missing-destination"})
    );
    assert!(route.get("typedPerFilterConfig").is_none(), "{route:#}");
}

/// Settings' `gloo.logTransformationRequestResponseInfo` and
/// `gloo.transformationEscapeCharacters` are the defaults (Gloo's plugin `Init`): the filters
/// log, every transformation logs unless its stages say otherwise, and templates escape
/// unless they or their stages say otherwise. Changing them re-translates cached hosts.
#[test]
fn settings_give_the_logging_and_escaping_defaults() {
    let settings = |gloo: &str| {
        resource(
            "gloo.solo.io/v1",
            "Settings",
            "{name: default, namespace: gloo-system}",
            &format!("gloo: {gloo}"),
        )
    };
    let hosts = [
        up(),
        transformed_vs(
            "defaults",
            "",
            "stagedTransformations: {regular: {requestTransforms: [{requestTransformation: {transformationTemplate: {headers: {x-a: {text: a}}}}}]}}",
        ),
        transformed_vs(
            "own",
            "",
            "stagedTransformations: {logRequestResponseInfo: false, escapeCharacters: false, regular: {requestTransforms: [{requestTransformation: {transformationTemplate: {headers: {x-a: {text: a}}}}}]}}",
        ),
    ];
    let mut translator = gloo_core::translate::Translator::new();
    let with = |translator: &mut gloo_core::translate::Translator, gloo: &str| {
        let mut parts: Vec<&str> = hosts.iter().map(String::as_str).collect();
        let settings = settings(gloo);
        parts.push(&settings);
        translate_with(translator, &docs(&parts))
    };
    let request_transformation = |t: &gloo_core::translate::Translation, name: &str| {
        vhost_json(t, name)["routes"][0]["typedPerFilterConfig"]["io.solo.transformation"]["config"]
            ["transformations"][0]["requestMatch"]["requestTransformation"]
            .clone()
    };

    let t = with(
        &mut translator,
        "{logTransformationRequestResponseInfo: true, transformationEscapeCharacters: true}",
    );
    assert_no_rejections(&t);
    let filter = http_filters(&t)
        .into_iter()
        .find(|f| f["name"] == "io.solo.transformation")
        .unwrap();
    assert_eq!(filter["typedConfig"]["logRequestResponseInfo"], true);
    let defaults = request_transformation(&t, "defaults");
    assert_eq!(defaults["logRequestResponseInfo"], true, "{defaults:#}");
    assert_eq!(defaults["transformationTemplate"]["escapeCharacters"], true);
    let own = request_transformation(&t, "own");
    assert_eq!(own.get("logRequestResponseInfo"), None, "{own:#}");
    assert_eq!(own["transformationTemplate"].get("escapeCharacters"), None);

    // Settings without them: the same (cached) hosts are translated anew.
    let t = with(&mut translator, "{}");
    let defaults = request_transformation(&t, "defaults");
    assert_eq!(defaults.get("logRequestResponseInfo"), None, "{defaults:#}");
    assert_eq!(
        defaults["transformationTemplate"].get("escapeCharacters"),
        None
    );
}
